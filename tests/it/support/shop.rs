//! "Corner Shop": a second target app, unrelated to RVP, for the journey language's actions
//! and assertions. A search whose results arrive late, a hover menu, a popup window, an
//! iframe, a file upload, a form whose submit redirects to a confirmation page, cookies and
//! storage shown on the page, and a page whose layout depends on the viewport.

use std::time::Duration;

use axum::Router;
use axum::extract::{Form, Path, Query};
use axum::response::{Html, Redirect};
use axum::routing::get;

/// How late the search results arrive: long enough that a journey must wait for them.
pub const SEARCH_DELAY: Duration = Duration::from_millis(400);

const HOME: &str = r#"<!doctype html><html><head><title>Corner Shop</title>
<style>#submenu { display: none } #menu:hover #submenu, #menu.open #submenu { display: block }</style>
</head><body>
<h1>Corner Shop</h1>
<nav><div id="menu">Departments<ul id="submenu"><li><a href="/order">Order</a></li></ul></div></nav>
<form id="search" onsubmit="return false"><input id="q" name="q"><button id="go" type="button">Search</button></form>
<ul id="results"></ul>
<p id="status">idle</p>
<label><input type="checkbox" id="terms"> I accept the terms</label>
<button id="buy" disabled>Buy</button>
<a id="docs" href="/docs/v2" data-kind="guide">Docs</a>
<button id="help" type="button">Help</button>
<p id="greeting"></p>
<iframe id="promo" src="/promo" title="promo"></iframe>
<script>
var menu = document.getElementById('menu');
menu.addEventListener('mouseover', function () { menu.classList.add('open'); });
document.getElementById('terms').addEventListener('change', function (e) {
  document.getElementById('buy').disabled = !e.target.checked;
});
document.getElementById('go').addEventListener('click', function () {
  var q = document.getElementById('q').value;
  document.getElementById('status').textContent = 'searching';
  fetch('/api/search?q=' + encodeURIComponent(q)).then(function (r) { return r.json(); }).then(function (items) {
    var ul = document.getElementById('results');
    ul.innerHTML = '';
    items.forEach(function (it) { var li = document.createElement('li'); li.className = 'result'; li.textContent = it; ul.appendChild(li); });
    document.getElementById('status').textContent = items.length + ' results';
  });
});
document.getElementById('help').addEventListener('click', function () { window.open('/help', 'help'); });
var shopper = (document.cookie.match(/(?:^|; )shopper=([^;]*)/) || [])[1] || 'nobody';
document.getElementById('greeting').textContent =
  'shopper=' + shopper + ' theme=' + (localStorage.getItem('theme') || 'none') + ' tab=' + (sessionStorage.getItem('tab') || 'none');
window.shop = { cartTotal: function () { return { total: 42.5, items: [{ sku: 'TEA-1', qty: 2 }] }; } };
</script></body></html>"#;

const PROMO: &str = r#"<!doctype html><html><body>
<button id="claim" type="button">Claim</button><p id="code"></p>
<script>document.getElementById('claim').addEventListener('click', function () {
  document.getElementById('code').textContent = 'SAVE10';
});</script></body></html>"#;

const HELP: &str = r#"<!doctype html><html><head><title>Help - Corner Shop</title></head>
<body><h1 id="help-title">How can we help?</h1></body></html>"#;

const UPLOAD: &str = r#"<!doctype html><html><body>
<input type="file" id="file"><p id="uploaded">nothing yet</p>
<script>document.getElementById('file').addEventListener('change', function (e) {
  var f = e.target.files[0];
  var r = new FileReader();
  r.onload = function () {
    document.getElementById('uploaded').textContent = f.name + ': ' + f.size + ' bytes: ' + String(r.result).split('\n')[0];
  };
  r.readAsText(f);
});</script></body></html>"#;

const ORDER: &str = r#"<!doctype html><html><body>
<form method="post" action="/order"><input id="item" name="item"><button id="place" type="submit">Place order</button></form>
</body></html>"#;

/// Shows `#desktop-nav` on a wide window and `#mobile-nav` on a narrow one, as a responsive
/// shop does, and what it knows of the device.
const LAYOUT: &str = r#"<!doctype html><html><head><meta name="viewport" content="width=device-width, initial-scale=1">
<style>#mobile-nav { display: none } @media (max-width: 600px) { #mobile-nav { display: block } #desktop-nav { display: none } }</style>
</head><body><nav id="desktop-nav">Desktop menu</nav><nav id="mobile-nav">Mobile menu</nav>
<p id="device"></p>
<script>document.getElementById('device').textContent = 'width=' + window.innerWidth + ' dpr=' + window.devicePixelRatio +
  ' touch=' + (navigator.maxTouchPoints > 0) + ' online=' + navigator.onLine + ' ua=' + navigator.userAgent;</script>
</body></html>"#;

#[derive(serde::Deserialize)]
struct Search {
    q: String,
}

#[derive(serde::Deserialize)]
struct Order {
    item: String,
}

pub struct Shop {
    pub base_url: String,
    _task: tokio::task::JoinHandle<()>,
}

/// Starts the shop on port 0.
pub async fn shop() -> Shop {
    let app = Router::new()
        .route("/", get(|| async { Html(HOME) }))
        .route("/promo", get(|| async { Html(PROMO) }))
        .route("/help", get(|| async { Html(HELP) }))
        .route("/upload", get(|| async { Html(UPLOAD) }))
        .route("/layout", get(|| async { Html(LAYOUT) }))
        .route(
            "/order",
            get(|| async { Html(ORDER) }).post(|Form(o): Form<Order>| async move {
                // The order number is the item's length: deterministic, and not the item.
                Redirect::to(&format!("/done/R{:06}", 123450 + o.item.len()))
            }),
        )
        .route(
            "/done/{id}",
            get(|Path(id): Path<String>| async move {
                Html(format!(
                    "<!doctype html><html><body><h1 id=\"confirmation\">Order {id} confirmed</h1></body></html>"
                ))
            }),
        )
        .route(
            "/api/search",
            get(|Query(s): Query<Search>| async move {
                // The shop's search backend is slow: the results arrive after the page.
                tokio::time::sleep(SEARCH_DELAY).await;
                let all = ["green tea", "black tea", "teapot", "coffee"];
                let hits: Vec<&str> = all.into_iter().filter(|i| i.contains(&s.q)).collect();
                axum::Json(hits)
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    Shop {
        base_url: format!("http://{addr}"),
        _task: task,
    }
}
