//! The run tab's requests to the target's origins carry the run's W3C trace context.
//!
//! A browser adds no header of ours by itself, and the ways in through the driver all stall:
//! a WebDriver BiDi intercept (`network.addIntercept`) holds each request until its
//! `continueRequest` is answered, and chromedriver answers no BiDi command while a classic one
//! waits for a page load, so a click that navigates never finishes (tried: see README,
//! "Tracing"). CDP's `Network.setExtraHTTPHeaders` does not stall but applies to every origin,
//! and a third party must never see synmon's trace ids.
//!
//! So synmon speaks the Chrome DevTools Protocol to the run's tab beside the driver (a local
//! browser publishes its DevTools address as `goog:chromeOptions.debuggerAddress`), asks
//! `Fetch.enable` to pause only the requests whose URL lies on an allowed origin, and lets each
//! go on at once with the headers added (`Fetch.continueRequest`). The browser's DevTools
//! server serves each socket on its own, so a classic command waiting for a load never holds
//! it. Where the browser's contexts go through its DevTools socket (`control.rs`), that
//! socket does it in the tab's session; otherwise a socket of the tab's own. Dropping the
//! [`Interceptor`] closes its socket (Chromium then lets any request still paused go on and
//! stops pausing) or ends the shared socket's answering with headers: a dead interceptor can
//! slow a run, never hang it.

use std::time::Duration;

use serde_json::{Value, json};

use super::bidi::{Bidi, BidiError, Events};
use crate::trace::RunTrace;

/// How long opening the tab's socket and enabling interception may take.
const SETUP_TIMEOUT: Duration = Duration::from_secs(5);

/// The request interception of one run's tab. Ends when dropped.
pub(super) enum Interceptor {
    /// A socket of its own to the tab, whose task answers every paused request (a local
    /// browser whose contexts go through WebDriver BiDi, or a classic session).
    Socket { _socket: Bidi },
    /// In the tab's session on the browser's DevTools socket (`local_protocol: devtools`),
    /// answered in that socket's task: no socket, no handshake, no DevTools session per run.
    Control {
        _shared: super::control::Interception,
    },
}

/// The `Fetch.enable` patterns that pause exactly the requests to `trace`'s allowed origins.
pub(super) fn patterns(trace: &RunTrace) -> Vec<Value> {
    trace
        .allowed_origins()
        .iter()
        .filter(|o| o.is_tuple())
        .map(|o| {
            // `*` and `?` are the pattern's wildcards, `\` its escape; an origin has none of
            // them except in an IPv6 literal's brackets, which are plain characters here.
            json!({"urlPattern": format!("{}/*", o.ascii_serialization()), "requestStage": "Request"})
        })
        .collect()
}

/// Starts intercepting the requests of the tab `target_id` of the browser whose DevTools
/// server is at `devtools` (`host:port`).
pub(super) async fn start(
    devtools: &str,
    target_id: &str,
    trace: RunTrace,
) -> Result<Interceptor, BidiError> {
    let patterns = patterns(&trace);
    // Answered in the socket's task as each pause arrives: the request waits for nothing else.
    let answer = move |event: &Value| {
        (event["method"] == "Fetch.requestPaused")
            .then(|| {
                (
                    None,
                    "Fetch.continueRequest",
                    continue_params(&event["params"], &trace),
                )
            })
            .into_iter()
            .collect()
    };
    let socket = Bidi::connect_tab(
        devtools,
        target_id,
        Events::Answer(Box::new(answer)),
        SETUP_TIMEOUT,
    )
    .await?;
    // A failed `Fetch.enable` drops the socket, and with it the answering (a socket kept
    // would put run N's headers on later runs' requests).
    socket
        .call("Fetch.enable", json!({"patterns": patterns}), SETUP_TIMEOUT)
        .await?;
    Ok(Interceptor::Socket { _socket: socket })
}

/// `Fetch.continueRequest`'s parameters for a paused request: its own headers plus the run's
/// `traceparent` (under the current step's span) and `tracestate`, when its URL is on an
/// allowed origin and the page did not set a `traceparent` of its own (its own tracing then
/// owns the request); otherwise the request goes on as it was.
pub(super) fn continue_params(paused: &Value, trace: &RunTrace) -> Value {
    let id = paused["requestId"].clone();
    let url = paused["request"]["url"].as_str().unwrap_or_default();
    let Some(own) = paused["request"]["headers"].as_object() else {
        return json!({"requestId": id});
    };
    let has = |name: &str| own.keys().any(|k| k.eq_ignore_ascii_case(name));
    let Some(h) = trace
        .headers_for(url, trace.current_parent())
        .filter(|_| !has(crate::trace::TRACEPARENT))
    else {
        return json!({"requestId": id});
    };
    let mut headers: Vec<Value> = own
        .iter()
        .filter(|(k, _)| !k.eq_ignore_ascii_case(crate::trace::TRACESTATE))
        .map(|(k, v)| json!({"name": k, "value": v.as_str().unwrap_or_default()}))
        .collect();
    headers.push(json!({"name": crate::trace::TRACEPARENT, "value": h.traceparent}));
    headers.push(json!({"name": crate::trace::TRACESTATE, "value": h.tracestate}));
    json!({"requestId": id, "headers": headers})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Target;

    fn trace() -> RunTrace {
        let target = Target {
            name: "staging".into(),
            base_url: "http://127.0.0.1:8080/app/".parse().unwrap(),
            trace_origins: vec![url::Url::parse("https://api.example").unwrap().origin()],
        };
        RunTrace::new("align_category", "eu", &target)
    }

    #[test]
    fn patterns_name_the_allowed_origins_only() {
        let p = patterns(&trace());
        assert_eq!(
            p,
            vec![
                json!({"urlPattern": "http://127.0.0.1:8080/*", "requestStage": "Request"}),
                json!({"urlPattern": "https://api.example/*", "requestStage": "Request"}),
            ]
        );
    }

    #[test]
    fn a_request_to_the_target_gets_the_headers_of_the_current_step() {
        let t = trace();
        t.enter_step(3);
        let paused = json!({"requestId": "r1", "request": {"url": "http://127.0.0.1:8080/x", "headers": {"Accept": "*/*", "tracestate": "other=1"}}});
        let p = continue_params(&paused, &t);
        let h = t.step_headers(3);
        assert_eq!(
            p,
            json!({"requestId": "r1", "headers": [
                {"name": "Accept", "value": "*/*"},
                {"name": "traceparent", "value": h.traceparent},
                {"name": "tracestate", "value": h.tracestate},
            ]})
        );
    }

    #[test]
    fn other_origins_and_requests_traced_by_the_page_go_on_untouched() {
        let t = trace();
        let elsewhere = json!({"requestId": "r2", "request": {"url": "http://127.0.0.1:9090/x", "headers": {}}});
        assert_eq!(continue_params(&elsewhere, &t), json!({"requestId": "r2"}));
        let traced = json!({"requestId": "r3", "request": {"url": "http://127.0.0.1:8080/x", "headers": {"Traceparent": "00-abc"}}});
        assert_eq!(continue_params(&traced, &t), json!({"requestId": "r3"}));
    }
}
