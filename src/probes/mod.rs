//! Probes beside the journeys: HTTP API checks, SQL metric sources, TCP connect and DNS checks.
//! Each turns one attempt into a `RunResult`, like the browser runner does.

pub mod backoff;
pub mod http;
pub mod net;
pub mod sql;
pub mod tls;
