//! The network probes the check kinds in `checks/` call (TCP connect, DNS, TLS handshake) and
//! what several rooms share (retry backoff, scrubbing database URLs out of error messages).
//! Each probe turns one attempt into a `RunResult`, like the browser runner does.

pub mod backoff;
pub mod net;
pub mod sql;
pub mod tls;
