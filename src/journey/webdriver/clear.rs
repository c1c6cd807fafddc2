//! `isolation: clear`: one tab kept for every run of a browser, cleared between runs through
//! the browser's DevTools server: in the tab's session on the browser's DevTools socket where
//! the contexts go through it (`control.rs`), else over a socket of the tab's own.
//!
//! A fresh user context per run (`isolation: context`) costs a new window, a new renderer
//! process and its teardown for every run: most of a pooled run's browser CPU (BENCHMARKS.md,
//! "Browser cost"). Keeping the tab keeps its renderer, as a Selenium script keeping one session
//! does; what a run left behind is then removed instead of thrown away with its context:
//!
//! - every cookie of the browser (`Network.clearBrowserCookies`) and its whole HTTP cache
//!   (`Network.clearBrowserCache`);
//! - for each origin the run's documents and frames had (the tab's navigation history and its
//!   frame tree at the run's end): all of its storage (`Storage.clearDataForOrigin`, `all`:
//!   local storage, IndexedDB, Cache Storage, service workers, file systems, ...);
//! - the tab's session storage of the origins still open at the run's end (`DOMStorage.clear`);
//! - granted permissions (`Browser.resetPermissions`).
//!
//! What it does not reach, and `context` does: the session storage of an origin the run left
//! before its end (DevTools reaches a tab's session storage only through a frame of that
//! origin), storage a third-party iframe kept under a partitioned key of a site no document of
//! the run was on, anything of windows a page opened (they are closed first), and the tab's
//! history (`history.length`, the back button: `Page.resetNavigationHistory` fails while the
//! tab is still moving to `about:blank`, and waiting for that would cost every run a round trip).

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{Value, json};

use super::bidi::{Bidi, BidiError, Events};

/// How long each DevTools command of the clearing may take.
const TIMEOUT: Duration = Duration::from_secs(5);

/// The storage `Storage.clearDataForOrigin` clears: what a page can keep (cookies go browser-wide
/// below). `all` would also wipe the shader cache and wait for it, on every run.
const STORAGE_TYPES: &str = "file_systems,indexeddb,local_storage,websql,service_workers,cache_storage,storage_buckets,shared_storage";

/// Clears what a run left in the browser whose DevTools server is at `devtools` and whose run
/// tab is `target_id`, over a socket of the tab's own (a browser whose contexts go through
/// WebDriver BiDi), leaving that tab on `about:blank`. Returns the origins cleared.
///
/// `more_urls`: the last URLs of the windows the run's pages opened (already closed), whose
/// origins' storage goes too.
pub(super) async fn clear_tab(
    devtools: &str,
    target_id: &str,
    more_urls: &[String],
) -> Result<Vec<String>, BidiError> {
    let (tx, mut events) = tokio::sync::mpsc::unbounded_channel::<Value>();
    let cdp = Bidi::connect_tab(devtools, target_id, Events::Channel(tx), TIMEOUT).await?;
    let tab = Tab {
        cdp: &cdp,
        session: None,
    };
    let left = async move {
        while let Some(e) = events.recv().await {
            if e["method"] == "Page.frameNavigated" && left_for_blank(&e["params"]["frame"]) {
                return true;
            }
        }
        false
    };
    clear(tab, more_urls, false, || left).await
}

/// The run tab as the clearing speaks to it: a socket, and the tab's DevTools session on it
/// (`None`: the socket is the tab's own).
#[derive(Clone, Copy)]
pub(super) struct Tab<'a> {
    pub cdp: &'a Bidi,
    pub session: Option<&'a str>,
}

impl Tab<'_> {
    async fn call(&self, method: &str, params: Value) -> Result<Value, BidiError> {
        self.cdp
            .call_in(self.session, method, params, TIMEOUT)
            .await
    }

    /// Sends every command at once and waits for all the answers: the tab's session runs them
    /// in the order sent, one round trip's wait for the lot. The first error, if any.
    async fn all(&self, calls: Vec<(&str, Value)>) -> Result<(), BidiError> {
        let answers = calls.into_iter().map(|(m, p)| self.call(m, p));
        futures_util::future::join_all(answers)
            .await
            .into_iter()
            .collect::<Result<Vec<_>, _>>()
            .map(drop)
    }
}

/// Whether a `Page.frameNavigated` event's frame is the tab's main frame on `about:blank`.
pub(super) fn left_for_blank(frame: &Value) -> bool {
    frame.get("parentId").is_none() && frame["url"] == "about:blank"
}

/// Clears what a run left in `tab` (see the module's doc), leaving it on `about:blank`; returns
/// the origins cleared. `page_enabled`: the session has the Page domain enabled already;
/// `wait_for_blank` starts waiting for the tab's main frame to reach `about:blank` (called
/// right before the page is told to go there), and its future says whether it did.
///
/// The tab leaves the run's page by a navigation the page itself makes (`location.replace`):
/// the `about:blank` it reaches stays in the page's renderer process, so the next run's first
/// load does not start a new one (a navigation from outside, `Page.navigate`, swaps the process
/// and the next load swaps it back: ~1.6 renderers started per run, measured). The page's
/// `pagehide` handlers run before anything is cleared. Commands that need no answer of another
/// go together ([`Tab::all`]): the next run of a kept tab waits for the clearing.
pub(super) async fn clear<F, W>(
    tab: Tab<'_>,
    more_urls: &[String],
    page_enabled: bool,
    wait_for_blank: W,
) -> Result<Vec<String>, BidiError>
where
    W: FnOnce() -> F,
    F: std::future::Future<Output = bool>,
{
    let mut origins: BTreeSet<String> = more_urls.iter().filter_map(|u| web_origin(u)).collect();
    let (tree, history) = futures_util::future::join(
        tab.call("Page.getFrameTree", json!({})),
        tab.call("Page.getNavigationHistory", json!({})),
    )
    .await;
    let (tree, history) = (tree?, history?);
    frame_origins(&tree["frameTree"], &mut origins);
    let main_url = tree["frameTree"]["frame"]["url"]
        .as_str()
        .unwrap_or_default();
    let main_origin = web_origin(main_url);
    for e in history["entries"].as_array().into_iter().flatten() {
        origins.extend(web_origin(e["url"].as_str().unwrap_or_default()));
    }
    // Session storage is the tab's, per origin, and DevTools reaches it only through a frame
    // of that origin: the frames' origins now, the main one again once on `about:blank`
    // (which keeps its origin), after the page's `pagehide` had its say. An origin no frame
    // is on any more answers an error, which changes nothing.
    let session_storage = |origin: &String| {
        tab.call(
            "DOMStorage.clear",
            json!({"storageId": {"securityOrigin": origin, "isLocalStorage": false}}),
        )
    };
    tab.call("DOMStorage.enable", json!({})).await?;
    futures_util::future::join_all(origins.iter().map(session_storage)).await;
    // Any page but `about:blank` leaves (a `blob:` or error page too: its scripts could still
    // write after the clearing).
    if main_url != "about:blank" {
        if !page_enabled {
            tab.call("Page.enable", json!({})).await?;
        }
        let left = wait_for_blank();
        tab.call(
            "Runtime.evaluate",
            json!({"expression": "location.replace('about:blank')"}),
        )
        .await?;
        if tokio::time::timeout(TIMEOUT, left).await != Ok(true) {
            return Err(BidiError::Timeout {
                method: "leaving the run's page".into(),
                after: TIMEOUT,
            });
        }
    }
    let mut calls: Vec<(&str, Value)> = Vec::new();
    if let Some(origin) = &main_origin {
        calls.push((
            "DOMStorage.clear",
            json!({"storageId": {"securityOrigin": origin, "isLocalStorage": false}}),
        ));
    }
    for origin in &origins {
        calls.push((
            "Storage.clearDataForOrigin",
            json!({"origin": origin, "storageTypes": STORAGE_TYPES}),
        ));
    }
    for method in [
        "Network.clearBrowserCookies",
        "Network.clearBrowserCache",
        "Browser.resetPermissions",
    ] {
        calls.push((method, json!({})));
    }
    tab.all(calls).await?;
    Ok(origins.into_iter().collect())
}

/// The origin of a document URL that can hold storage (`http`, `https`), serialized.
fn web_origin(url: &str) -> Option<String> {
    let u = url::Url::parse(url).ok()?;
    matches!(u.scheme(), "http" | "https").then(|| u.origin().ascii_serialization())
}

fn frame_origins(node: &Value, into: &mut BTreeSet<String>) {
    into.extend(web_origin(
        node["frame"]["url"].as_str().unwrap_or_default(),
    ));
    for child in node["childFrames"].as_array().into_iter().flatten() {
        frame_origins(child, into);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_come_from_web_documents_and_every_frame() {
        let tree = json!({"frame": {"url": "http://127.0.0.1:8080/t/x/categories"}, "childFrames": [
            {"frame": {"url": "https://cdn.example/widget"}, "childFrames": [
                {"frame": {"url": "about:blank"}}
            ]},
            {"frame": {"url": "data:text/html,hi"}}
        ]});
        let mut o = BTreeSet::new();
        frame_origins(&tree, &mut o);
        assert_eq!(
            o.into_iter().collect::<Vec<_>>(),
            ["http://127.0.0.1:8080", "https://cdn.example"]
        );
        assert_eq!(web_origin("chrome://newtab"), None);
    }
}
