//! The hot path's WebDriver commands (page scripts, clicks, typing, navigation) on a
//! connection the calling task drives itself.
//!
//! fantoccini hands every command to its session task, which hands it to hyper's pooled client,
//! whose connection task writes it; the answer travels back the same way. On the browser thread
//! (`browser_rt.rs`) those are three task switches and two channel hops per command, about a
//! third of the command's CPU on our side (BENCHMARKS.md, "Browser runs: synmon's own CPU,
//! session 16"), and a browser run sends 25-30 of them. Here the command is written and its
//! answer read by the task that awaits it, on one kept-alive HTTP/1.1 connection (hyper's own
//! client connection, polled beside the request); so do the commands synmon sends as they are
//! (a cookie, the browser log: `Browser::post`). Everything else (session setup, windows,
//! frames, screenshots) stays with fantoccini; both talk to the same session.
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
            let conn = guard.as_mut().expect("connection just set");
            let req = hyper::Request::post(&uri)
                .header(hyper::header::HOST, &self.authority)
                .header(
                    hyper::header::CONTENT_TYPE,
                    "application/json; charset=utf-8",
                )
                .body(Full::new(body.clone()))
                .map_err(|e| CmdError::InvalidArgument(path.to_string(), e.to_string()))?;
            let (answer, ended) = exchange(conn, req).await;
            if ended {
                *guard = None;
            }
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

/// Sends `req` on `c` and reads the whole answer, driving the connection meanwhile. Also says
/// whether the connection ended (it must not be polled again).
async fn exchange(
    c: &mut Conn,
    req: hyper::Request<Full<Bytes>>,
) -> (Result<(hyper::StatusCode, Bytes), Failure>, bool) {
    let Conn { send, driver } = c;
    let exchange = async {
        let resp = send.send_request(req).await?;
        let status = resp.status();
        let body = resp.into_body().collect().await?.to_bytes();
        Ok::<_, hyper::Error>((status, body))
    };
    let mut exchange = std::pin::pin!(exchange);
    tokio::select! {
        biased;
        r = &mut exchange => (r.map_err(Failure::Http), false),
        r = driver.as_mut() => match r {
            // The connection ended (`Connection: close`, or the driver went away): what it
            // delivered before ending is the exchange's to finish; with nothing delivered, the
            // exchange fails at once.
            Ok(()) => (
                exchange.await.map_err(|e| {
                    if e.is_canceled() {
                        Failure::Http(e)
                    } else {
                        Failure::Closed(Some(e))
                    }
                }),
                true,
            ),
            Err(e) => (Err(Failure::Closed(Some(e))), true),
        },
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

    /// A fake driver on the loopback: answers `answers` requests, one per connection, each with
    /// `Connection: close` when `close` (else it closes without answering), and counts the
    /// connections it accepted.
    async fn fake_driver(
        close_after_answer: bool,
    ) -> (url::Url, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = url::Url::parse(&format!("http://{}/", listener.local_addr().unwrap())).unwrap();
        let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            loop {
                let (mut sock, _) = listener.accept().await.unwrap();
                let n = count.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                let mut buf = vec![0u8; 4096];
                let mut got = Vec::new();
                // Headers and the (small) body of one request.
                while !got.windows(4).any(|w| w == b"\r\n\r\n") || !got.ends_with(b"}") {
                    let k = sock.read(&mut buf).await.unwrap();
                    if k == 0 {
                        break;
                    }
                    got.extend_from_slice(&buf[..k]);
                }
                if close_after_answer {
                    let body = format!("{{\"value\":{n}}}");
                    let resp = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    sock.write_all(resp.as_bytes()).await.unwrap();
                }
                drop(sock);
            }
        });
        (url, accepted)
    }

    #[tokio::test]
    async fn a_connection_the_driver_closed_is_replaced_before_the_next_command() {
        let (url, accepted) = fake_driver(true).await;
        let w = Wire::new(&url, "s1").unwrap();
        for i in 1..=3u64 {
            let v = w
                .post("execute/sync", r#"{"script":"","args":[]}"#.into())
                .await;
            assert_eq!(v.unwrap(), serde_json::json!(i), "command {i}");
        }
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_command_the_driver_took_and_never_answered_is_not_sent_again() {
        let (url, accepted) = fake_driver(false).await;
        let w = Wire::new(&url, "s1").unwrap();
        let e = w
            .post("element/e1/click", "{}".into())
            .await
            .expect_err("no answer came");
        assert!(matches!(e, CmdError::Lost(_)), "{e:?}");
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1);
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
