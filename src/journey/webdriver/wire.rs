//! The hot path's WebDriver commands (page scripts, clicks, typing, navigation) on a
//! connection the calling task drives itself.
//!
//! fantoccini hands every command to its session task, which hands it to hyper's pooled client,
//! whose connection task writes it; the answer travels back the same way. On the browser thread
//! (`browser_rt.rs`) those are three task switches and two channel hops per command, about a
//! third of the command's CPU on our side (BENCHMARKS.md, "Browser runs: synmon's own CPU,
//! session 16"), and a browser run sends 25-30 of them. Here the command is written and its
//! answer read by the task that awaits it, on one kept-alive HTTP/1.1 connection (hyper's own
//! client connection, polled beside the request). Everything else (session setup, windows,
//! frames, cookies, screenshots) stays with fantoccini; both talk to the same session.
//!
//! Only for a local chromedriver (plain HTTP on the loopback): a remote endpoint (a grid behind
//! TLS or a proxy with credentials) keeps fantoccini's client.

use bytes::Bytes;
use fantoccini::error::{CmdError, ErrorStatus, WebDriver};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use serde_json::Value;

/// One kept-alive connection to chromedriver and the session it talks to.
pub(super) struct Wire {
    /// `host:port` of the chromedriver.
    authority: String,
    /// `/session/{id}/`, the path every command starts with.
    prefix: String,
    conn: tokio::sync::Mutex<Option<Conn>>,
}

struct Conn {
    send: http1::SendRequest<Full<Bytes>>,
    /// Driven by whoever sends a request; ends when the connection closes.
    driver: std::pin::Pin<Box<http1::Connection<TokioIo<tokio::net::TcpStream>, Full<Bytes>>>>,
}

impl Wire {
    /// For the session `session` of the chromedriver at `endpoint`; `None` for an endpoint
    /// this does not speak to (not plain HTTP, or with credentials or a path prefix).
    pub(super) fn new(endpoint: &url::Url, session: &str) -> Option<Self> {
        if endpoint.scheme() != "http"
            || !endpoint.username().is_empty()
            || endpoint.password().is_some()
            || endpoint.path() != "/"
        {
            return None;
        }
        let authority = format!(
            "{}:{}",
            endpoint.host_str()?,
            endpoint.port_or_known_default()?
        );
        Some(Self {
            authority,
            prefix: format!("/session/{session}/"),
            conn: tokio::sync::Mutex::new(None),
        })
    }

    /// POSTs `body` to the session's `path` and returns the answer's `value`, or the WebDriver
    /// error it carries, as fantoccini would.
    pub(super) async fn post(&self, path: &str, body: String) -> Result<Value, CmdError> {
        let uri = format!("{}{path}", self.prefix);
        let body = Bytes::from(body);
        let mut guard = self.conn.lock().await;
        // One retry, and only for a request that was never written: a kept connection the
        // driver closed just before it. A command is never sent twice.
        for attempt in 0..2 {
            let reusable = match guard.as_mut() {
                Some(c) => ready(c).await,
                None => false,
            };
            if !reusable {
                *guard = Some(self.connect().await?);
            }
            let Conn { send, driver } = guard.as_mut().expect("connection just set");
            let req = hyper::Request::post(&uri)
                .header(hyper::header::HOST, &self.authority)
                .header(
                    hyper::header::CONTENT_TYPE,
                    "application/json; charset=utf-8",
                )
                .body(Full::new(body.clone()))
                .map_err(|e| CmdError::InvalidArgument(path.to_string(), e.to_string()))?;
            let exchange = async {
                let resp = send.send_request(req).await?;
                let status = resp.status();
                let body = resp.into_body().collect().await?.to_bytes();
                Ok::<_, hyper::Error>((status, body))
            };
            let answer = tokio::select! {
                r = exchange => r.map_err(Failure::Http),
                r = driver.as_mut() => Err(Failure::Closed(r.err())),
            };
            match answer {
                Ok((status, body)) => {
                    drop(guard);
                    return answer_of(status.is_success(), &body);
                }
                Err(Failure::Http(e)) if e.is_canceled() && attempt == 0 => *guard = None,
                Err(f) => {
                    *guard = None;
                    return Err(CmdError::Lost(f.into_io()));
                }
            }
        }
        unreachable!("the second attempt returns")
    }

    async fn connect(&self) -> Result<Conn, CmdError> {
        let stream = tokio::net::TcpStream::connect(&self.authority)
            .await
            .map_err(CmdError::Lost)?;
        stream.set_nodelay(true).map_err(CmdError::Lost)?;
        let (send, driver) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| CmdError::Lost(std::io::Error::other(e)))?;
        Ok(Conn {
            send,
            driver: Box::pin(driver),
        })
    }
}

/// How an exchange failed.
enum Failure {
    Http(hyper::Error),
    /// The connection ended (with its error, if any) before the answer came.
    Closed(Option<hyper::Error>),
}

impl Failure {
    fn into_io(self) -> std::io::Error {
        match self {
            Failure::Http(e) | Failure::Closed(Some(e)) => std::io::Error::other(e),
            Failure::Closed(None) => std::io::Error::new(
                std::io::ErrorKind::ConnectionAborted,
                "chromedriver closed the connection",
            ),
        }
    }
}

/// Whether `c` can take a request now; drives the connection meanwhile, so a close the peer
/// already sent is seen here.
async fn ready(c: &mut Conn) -> bool {
    tokio::select! {
        biased;
        _ = c.driver.as_mut() => false,
        r = c.send.ready() => r.is_ok(),
    }
}

/// The `value` of a WebDriver answer, or its error (W3C "send an error").
fn answer_of(success: bool, body: &[u8]) -> Result<Value, CmdError> {
    let json: Value = serde_json::from_slice(body)
        .map_err(|_| CmdError::NotJson(String::from_utf8_lossy(body).into_owned()))?;
    let Value::Object(mut obj) = json else {
        return Err(CmdError::NotW3C(json));
    };
    let Some(value) = obj.remove("value") else {
        return Err(CmdError::NotW3C(Value::Object(obj)));
    };
    if success {
        return Ok(value);
    }
    let (Some(error), Some(message)) = (
        value.get("error").and_then(Value::as_str),
        value.get("message").and_then(Value::as_str),
    ) else {
        return Err(CmdError::NotW3C(value));
    };
    let status: ErrorStatus = error.parse()?;
    let mut e = WebDriver::new(status, message.to_string());
    if let Some(trace) = value.get("stacktrace").and_then(Value::as_str) {
        e = e.with_stacktrace(trace.to_string());
    }
    if let Some(data) = value.get("data") {
        e = e.with_data(data.clone());
    }
    Err(CmdError::Standard(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_reads_as_fantoccini_reads_it() {
        assert_eq!(
            answer_of(true, br#"{"value":{"ok":true}}"#).unwrap(),
            serde_json::json!({"ok": true})
        );
        let e = answer_of(
            false,
            br#"{"value":{"error":"script timeout","message":"timed out","stacktrace":"at x"}}"#,
        )
        .unwrap_err();
        match e {
            CmdError::Standard(w) => {
                assert_eq!(w.error, ErrorStatus::ScriptTimeout);
                assert_eq!(w.message, "timed out");
                assert_eq!(w.stacktrace, "at x");
            }
            other => panic!("not a WebDriver error: {other:?}"),
        }
        assert!(matches!(
            answer_of(false, br#"{"value":{"message":"no code"}}"#),
            Err(CmdError::NotW3C(_))
        ));
        assert!(matches!(
            answer_of(true, b"<html>"),
            Err(CmdError::NotJson(_))
        ));
    }

    #[test]
    fn only_plain_local_endpoints_are_spoken_to() {
        let ok = url::Url::parse("http://127.0.0.1:9515/").unwrap();
        let w = Wire::new(&ok, "abc").unwrap();
        assert_eq!(w.authority, "127.0.0.1:9515");
        assert_eq!(w.prefix, "/session/abc/");
        for no in [
            "https://grid.example:4444/",
            "http://user:key@grid.example:4444/",
            "http://grid.example:4444/wd/hub/",
        ] {
            assert!(
                Wire::new(&url::Url::parse(no).unwrap(), "abc").is_none(),
                "{no}"
            );
        }
    }
}
