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

use super::bidi::{Bidi, BidiError};

/// How long each DevTools command of the clearing may take.
const TIMEOUT: Duration = Duration::from_secs(5);

/// Clears what a run left in the browser whose DevTools server is at `devtools` and whose run
/// tab is `target_id`, leaving that tab on `about:blank`. Returns the origins cleared.
pub(super) async fn clear_tab(devtools: &str, target_id: &str) -> Result<Vec<String>, BidiError> {
    let url = format!("ws://{devtools}/devtools/page/{target_id}");
    let cdp = tokio::time::timeout(TIMEOUT, Bidi::connect(&url, None))
        .await
        .map_err(|_| BidiError::Timeout {
            method: "connect".into(),
            after: TIMEOUT,
        })??;
    let mut origins = BTreeSet::new();
    let tree = cdp.call("Page.getFrameTree", json!({}), TIMEOUT).await?;
    frame_origins(&tree["frameTree"], &mut origins);
    // Session storage is the tab's, per origin, and DevTools reaches it only through a frame
    // of that origin: cleared for the documents still open, before they go.
    cdp.call("DOMStorage.enable", json!({}), TIMEOUT).await?;
    for origin in &origins {
        cdp.call(
            "DOMStorage.clear",
            json!({"storageId": {"securityOrigin": origin, "isLocalStorage": false}}),
            TIMEOUT,
        )
        .await?;
    }
    let history = cdp
        .call("Page.getNavigationHistory", json!({}), TIMEOUT)
        .await?;
    for e in history["entries"].as_array().into_iter().flatten() {
        origins.extend(web_origin(e["url"].as_str().unwrap_or_default()));
    }
    cdp.call("Page.navigate", json!({"url": "about:blank"}), TIMEOUT)
        .await?;
    for origin in &origins {
        cdp.call(
            "Storage.clearDataForOrigin",
            json!({"origin": origin, "storageTypes": "all"}),
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
