//! The 3-step page of the browser-cost comparison: open it, fill an input, click a button, and a
//! toast appears 100 ms later. synmon (as a journey) and the Selenium peer drive the very same
//! page, so the two CPU figures differ only by the driver.
//!
//! Served by the bench's helper process (the one that also runs the sandbox), never by the
//! process whose CPU is measured. The page keeps its own truth in `window.__truth`:
//! `performance.now()` in a capture-phase `click` listener on `window` (the earliest script can
//! see the click) and right after the toast is inserted.

use std::net::SocketAddr;

use axum::Router;
use axum::response::Html;
use axum::routing::get;

/// The path of the page on the helper's server.
pub const PATH: &str = "/toast";
/// The toast's text starts with this once the save succeeded (an empty name gives another text).
pub const TOAST_OK: &str = "Saved";
pub const INPUT: &str = "[data-test=name]";
pub const BUTTON: &str = "[data-test=save]";
pub const TOAST: &str = "[data-test=toast]";
/// How long after the click the page shows the toast.
pub const TOAST_DELAY_MS: u32 = 100;

/// The journey synmon runs against the page (the `toast` target's base URL is the server).
pub const JOURNEY_NAME: &str = "toast_page";
/// Its interaction step (click -> toast, timed in the page).
pub const STEP: &str = "save";
pub const JOURNEY_YAML: &str = r#"# The browser-cost bench's 3-step page: goto, fill, click -> toast.
name: toast_page
description: Open the page, type a name, save, see the toast.
steps:
  - goto: /toast
    name: open page
  - fill: { selector: "[data-test=name]", value: "synmon" }
    name: fill name
  - click: "[data-test=save]"
    name: save
    until: { selector: "[data-test=toast]", text: "Saved" }
"#;

fn html() -> String {
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Toast</title></head>
<body>
<label>Name <input data-test="name" autocomplete="off"></label>
<button type="button" data-test="save">Save</button>
<div data-test="toasts"></div>
<script>
  window.__truth = null;
  // Capture phase on window: runs before any other click listener of the page.
  window.addEventListener('click', function (e) {{
    if (e.target && e.target.closest && e.target.closest('[data-test=save]')) {{
      window.__truth = {{ click: performance.now() }};
    }}
  }}, true);
  document.querySelector('[data-test=save]').addEventListener('click', function () {{
    var name = document.querySelector('[data-test=name]').value;
    setTimeout(function () {{
      var t = document.createElement('div');
      t.setAttribute('data-test', 'toast');
      t.textContent = name ? '{TOAST_OK}, ' + name : 'Name required';
      document.querySelector('[data-test=toasts]').replaceChildren(t);
      window.__truth.toast = performance.now();
    }}, {TOAST_DELAY_MS});
  }});
</script>
</body></html>
"#
    )
}

/// Serves the page on `listener` until the process ends.
pub async fn serve(listener: tokio::net::TcpListener) -> std::io::Result<()> {
    let page = html();
    let app = Router::new().route(PATH, get(move || std::future::ready(Html(page.clone()))));
    axum::serve(listener, app).await
}

/// Binds 127.0.0.1:0 and returns the listener with its address.
pub async fn bind() -> std::io::Result<(tokio::net::TcpListener, SocketAddr)> {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = l.local_addr()?;
    Ok((l, addr))
}
