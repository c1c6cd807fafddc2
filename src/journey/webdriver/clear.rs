//! `isolation: clear`: one tab kept for every run of a browser, cleared between runs through
//! the browser's DevTools server.
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
/// tab is `target_id`, leaving that tab on `about:blank`. Returns the origins cleared.
///
/// The tab leaves the run's page by a navigation the page itself makes (`location.replace`):
/// the `about:blank` it reaches stays in the page's renderer process, so the next run's first
/// load does not start a new one (a navigation from outside, `Page.navigate`, swaps the process
/// and the next load swaps it back: ~1.6 renderers started per run, measured). The page's
/// `pagehide` handlers run before anything is cleared.
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
    let mut origins: BTreeSet<String> = more_urls.iter().filter_map(|u| web_origin(u)).collect();
    let tree = cdp.call("Page.getFrameTree", json!({}), TIMEOUT).await?;
    frame_origins(&tree["frameTree"], &mut origins);
    let main_url = tree["frameTree"]["frame"]["url"]
        .as_str()
        .unwrap_or_default();
    let main_origin = web_origin(main_url);
    let history = cdp
        .call("Page.getNavigationHistory", json!({}), TIMEOUT)
        .await?;
    for e in history["entries"].as_array().into_iter().flatten() {
        origins.extend(web_origin(e["url"].as_str().unwrap_or_default()));
    }
    // Session storage is the tab's, per origin, and DevTools reaches it only through a frame
    // of that origin: the frames' origins now, the main one again once on `about:blank`
    // (which keeps its origin), after the page's `pagehide` had its say.
    cdp.call("DOMStorage.enable", json!({}), TIMEOUT).await?;
    for origin in &origins {
        let _ = cdp
            .call(
                "DOMStorage.clear",
                json!({"storageId": {"securityOrigin": origin, "isLocalStorage": false}}),
                TIMEOUT,
            )
            .await;
    }
    // Any page but `about:blank` leaves (a `blob:` or error page too: its scripts could still
    // write after the clearing).
    if main_url != "about:blank" {
        cdp.call("Page.enable", json!({}), TIMEOUT).await?;
        cdp.call(
            "Runtime.evaluate",
            json!({"expression": "location.replace('about:blank')"}),
            TIMEOUT,
        )
        .await?;
        let left = tokio::time::timeout(TIMEOUT, async {
            while let Some(e) = events.recv().await {
                let f = &e["params"]["frame"];
                if e["method"] == "Page.frameNavigated"
                    && f.get("parentId").is_none()
                    && f["url"] == "about:blank"
                {
                    return true;
                }
            }
            false
        })
        .await;
        if left != Ok(true) {
            return Err(BidiError::Timeout {
                method: "leaving the run's page".into(),
                after: TIMEOUT,
            });
        }
    }
    if let Some(origin) = &main_origin {
        cdp.call(
            "DOMStorage.clear",
            json!({"storageId": {"securityOrigin": origin, "isLocalStorage": false}}),
            TIMEOUT,
        )
        .await?;
    }
    for origin in &origins {
        cdp.call(
            "Storage.clearDataForOrigin",
            json!({"origin": origin, "storageTypes": STORAGE_TYPES}),
            TIMEOUT,
        )
        .await?;
    }
    for method in [
        "Network.clearBrowserCookies",
        "Network.clearBrowserCache",
        "Browser.resetPermissions",
    ] {
        cdp.call(method, json!({}), TIMEOUT).await?;
    }
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
