//! Server-rendered pages with small inline JS/CSS and stable `data-test` hooks.

use std::sync::Arc;

use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Query, State};
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::json;

use crate::AppState;
use crate::api::{self, JsonPath, TenantRow};
use crate::auth::{self, Claims};
use crate::copy;
use crate::error::ApiError;

type St = State<Arc<AppState>>;

/// HTML-escapes text for element content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const CSS: &str = r#"
*{box-sizing:border-box}
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1a1a1a;background:#fff}
a{color:#0b4f8a}
.skip{position:absolute;left:-999px}.skip:focus{left:1rem;top:1rem;background:#fff;padding:.5rem;z-index:10}
header{background:#0b3d6b;color:#fff;padding:.75rem 1.25rem}
header nav{display:flex;gap:1.25rem;align-items:center;flex-wrap:wrap}
header a{color:#fff}
header form{margin-left:auto}
main{max-width:64rem;margin:0 auto;padding:1.25rem}
h1{font-size:1.6rem;margin:.5rem 0 1rem}
button{font:inherit;cursor:pointer;border-radius:4px;border:1px solid #0b4f8a;background:#0b4f8a;color:#fff;padding:.4rem .9rem}
button.secondary{background:#fff;color:#0b4f8a}
button:disabled{opacity:.6;cursor:default}
:focus-visible{outline:3px solid #b35900;outline-offset:2px}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:.45rem .5rem;border-bottom:1px solid #c8c8c8;vertical-align:top}
caption{text-align:left;font-weight:600;padding:.5rem 0}
.banner{background:#fff4e0;border:1px solid #b35900;color:#4d2600;padding:.75rem 1rem;border-radius:4px;margin-bottom:1rem}
.banner small{display:block;color:#4d2600}
.drawer{position:fixed;top:0;right:0;bottom:0;width:min(34rem,100%);background:#fff;border-left:2px solid #0b3d6b;box-shadow:-4px 0 16px rgba(0,0,0,.25);padding:1.25rem;overflow:auto;z-index:20}
.drawer[hidden]{display:none}
.results{display:flex;flex-direction:column;gap:.35rem;margin:.75rem 0}
.results button{background:#fff;color:#1a1a1a;border-color:#767676;text-align:left}
.results button[aria-pressed="true"]{background:#e3f0fb;border-color:#0b4f8a}
label{display:block;font-weight:600;margin-top:.75rem}
input{font:inherit;padding:.4rem .5rem;border:1px solid #595959;border-radius:4px;width:100%;max-width:30rem}
.error{color:#a50016;min-height:1.5em;margin:.2rem 0}
.badge{display:inline-block;background:#0f5132;color:#fff;border-radius:999px;padding:.15rem .75rem;font-weight:600}
.toast-region{position:fixed;right:1rem;bottom:1rem;z-index:30;display:flex;flex-direction:column;gap:.5rem;pointer-events:none}
.toast{background:#d1e7dd;color:#0f3d26;border:1px solid #0f5132;border-radius:4px;padding:.6rem 1rem;font-weight:600}
footer.qa{margin-top:2rem;background:#f2f2f2;border-top:1px solid #c8c8c8;padding:.6rem 1.25rem;display:flex;gap:1rem;align-items:center;flex-wrap:wrap}
footer.qa h2{font-size:1rem;margin:0}
.status{font-weight:600}
.sr-only{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
"#;

const COMMON_JS: &str = r#"
const RVP = JSON.parse(document.getElementById('rvp-data').textContent);
function rvpClearToasts() {
  document.querySelectorAll('[data-test="toast"]').forEach(function (t) { t.remove(); });
}
function rvpToast(text) {
  const region = document.querySelector('[data-test="toast-region"]');
  rvpClearToasts();
  const el = document.createElement('div');
  el.setAttribute('data-test', 'toast');
  el.className = 'toast';
  el.textContent = text;
  region.appendChild(el);
}
async function rvpApi(method, url, body) {
  const opts = { method: method, credentials: 'same-origin', headers: { 'Accept': 'application/json' } };
  if (body !== undefined) { opts.headers['Content-Type'] = 'application/json'; opts.body = JSON.stringify(body); }
  let res;
  try { res = await fetch(url, opts); } catch (e) { return { ok: false, status: 0, data: { error: String(e) } }; }
  let data = null;
  try { data = await res.json(); } catch (e) { data = null; }
  return { ok: res.ok, status: res.status, data: data };
}
function rvpError(r, fallback) { return (r.data && r.data.error) ? r.data.error : (fallback + ' (' + r.status + ')'); }
document.querySelectorAll('[data-test="qa-link"]').forEach(function (a) {
  a.addEventListener('click', function () {
    if (!RVP.tenant) return;
    try {
      fetch('/api/t/' + encodeURIComponent(RVP.tenant) + '/qa-events', {
        method: 'POST', keepalive: true, credentials: 'same-origin',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ action: a.dataset.action, page: location.pathname })
      });
    } catch (e) { /* usage events are best effort */ }
  });
});
"#;

struct Ctx<'a> {
    tenant: &'a TenantRow,
    email: &'a str,
}

fn layout(title: &str, ctx: Option<&Ctx>, main: &str, script: &str) -> String {
    let data = json!({
        "tenant": ctx.map(|c| c.tenant.slug.clone()),
        "copy": {
            "saved": copy::TOAST_SAVED,
            "mapping_updated": copy::TOAST_MAPPING_UPDATED,
            "nap_complete": copy::NAP_COMPLETE,
            "name_required": copy::ERR_NAME_REQUIRED,
            "name_length": copy::ERR_NAME_LENGTH,
            "address_required": copy::ERR_ADDRESS_REQUIRED,
            "address_length": copy::ERR_ADDRESS_LENGTH,
            "phone_required": copy::ERR_PHONE_REQUIRED,
            "phone_invalid": copy::ERR_PHONE_INVALID,
            "hours_length": copy::ERR_HOURS_LENGTH,
        }
    })
    .to_string()
    .replace("</", "<\\/");
    let (nav, footer) = match ctx {
        Some(c) => {
            let t = esc(&c.tenant.slug);
            (
                format!(
                    r#"<header><nav aria-label="Main"><strong>RVP · {name}</strong>
<a href="/t/{t}/categories">Categories</a><a href="/t/{t}/settings/profile">Profile</a><a href="/t/{t}/inventory">Inventory</a>
<form method="post" action="/logout"><span class="sr-only">Signed in as </span><span>{email}</span> <button type="submit" class="secondary">Sign out</button></form></nav></header>"#,
                    name = esc(&c.tenant.name),
                    email = esc(c.email),
                ),
                format!(
                    r#"<footer class="qa" data-test="qa-footer" aria-labelledby="qa-title"><h2 id="qa-title">Quick Actions</h2>
<a data-test="qa-link" data-action="align_categories" href="/t/{t}/categories">Align categories</a>
<a data-test="qa-link" data-action="edit_profile" href="/t/{t}/settings/profile">Edit profile</a>
<a data-test="qa-link" data-action="push_feed" href="/t/{t}/inventory">Push feed</a></footer>"#
                ),
            )
        }
        None => (
            r#"<header><nav aria-label="Main"><strong>RVP</strong></nav></header>"#.to_string(),
            String::new(),
        ),
    };
    format!(
        r##"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · RVP</title><style>{CSS}</style></head>
<body><a class="skip" href="#main">Skip to content</a>
{nav}
{main}
<div class="toast-region" data-test="toast-region" role="status" aria-live="polite"></div>
{footer}
<script type="application/json" id="rvp-data">{data}</script>
<script>{COMMON_JS}{script}</script>
</body></html>"##,
        title = esc(title),
    )
}

fn html(status: StatusCode, body: String) -> Response {
    (status, Html(body)).into_response()
}

/// Page guard: 303 to /login without a session, 404 JSON for an unknown tenant,
/// 403 for a session scoped to another tenant.
async fn guard(
    st: &AppState,
    headers: &HeaderMap,
    slug: &str,
    path: &str,
) -> Result<(Claims, TenantRow), Response> {
    let Some(claims) = st.jwt.from_headers(headers) else {
        return Err(
            Redirect::to(&format!("/login?next={}", auth::url_encode(path))).into_response(),
        );
    };
    let db = st.db().map_err(IntoResponse::into_response)?;
    let tenant = api::tenant_by_slug(db, slug)
        .await
        .map_err(IntoResponse::into_response)?;
    if claims.tenant_scope != tenant.slug {
        let main = format!(
            r#"<main id="main" data-test="forbidden-page"><h1>Access denied</h1><p>Your session is for another tenant. <a href="/t/{}/categories">Go to your store</a>.</p></main>"#,
            esc(&claims.tenant_scope)
        );
        return Err(html(
            StatusCode::FORBIDDEN,
            layout("Access denied", None, &main, ""),
        ));
    }
    Ok((claims, tenant))
}

pub async fn root() -> Redirect {
    Redirect::to("/login")
}

#[derive(Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

fn login_html(next: Option<&str>, email: &str, error: bool) -> String {
    let next_field = next
        .map(|n| format!(r#"<input type="hidden" name="next" value="{}">"#, esc(n)))
        .unwrap_or_default();
    let err = if error {
        format!(
            r#"<p class="error" data-test="login-error" role="alert">{}</p>"#,
            copy::LOGIN_ERROR
        )
    } else {
        String::new()
    };
    let main = format!(
        r#"<main id="main" data-test="login-page"><h1>Sign in</h1>{err}
<form method="post" action="/login" data-test="login-form">{next_field}
<label for="login-email">Email</label><input id="login-email" name="email" data-test="login-email" type="email" autocomplete="username" required value="{email}">
<label for="login-password">Password</label><input id="login-password" type="password" name="password" data-test="login-password" autocomplete="current-password" required>
<p><button type="submit" data-test="login-submit">Sign in</button></p></form></main>"#,
        email = esc(email),
    );
    layout("Sign in", None, &main, "")
}

pub async fn login_page(
    q: Result<Query<NextQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let next = q
        .ok()
        .and_then(|Query(q)| auth::safe_next(q.next.as_deref()));
    html(StatusCode::OK, login_html(next.as_deref(), "", false))
}

#[derive(Deserialize)]
pub struct LoginForm {
    email: Option<String>,
    password: Option<String>,
    next: Option<String>,
}

pub async fn login_submit(State(st): St, form: Result<Form<LoginForm>, FormRejection>) -> Response {
    let Form(f) = match form {
        Ok(f) => f,
        Err(e) => return ApiError::new(e.status(), e.body_text()).into_response(),
    };
    let (Some(email), Some(password)) = (f.email, f.password) else {
        return ApiError::bad_request("missing field: email and password are required")
            .into_response();
    };
    let next = auth::safe_next(f.next.as_deref());
    match api::authenticate(&st, &email, &password).await {
        Ok(Some((uid, email, slug))) => {
            let (token, _) = st.jwt.issue(&uid.to_string(), &email, &slug);
            let to = next.unwrap_or_else(|| format!("/t/{slug}/categories"));
            let mut resp = Redirect::to(&to).into_response();
            if let Ok(v) = auth::session_cookie(&token).parse() {
                resp.headers_mut().insert(SET_COOKIE, v);
            }
            resp
        }
        Ok(None) => html(
            StatusCode::UNAUTHORIZED,
            login_html(next.as_deref(), &email, true),
        ),
        Err(e) => e.into_response(),
    }
}

pub async fn logout() -> Response {
    let mut resp = Redirect::to("/login").into_response();
    if let Ok(v) = auth::clear_cookie().parse() {
        resp.headers_mut().insert(SET_COOKIE, v);
    }
    resp
}

const CATEGORIES_JS: &str = r#"
(function () {
  const drawer = document.querySelector('[data-test="align-drawer"]');
  const search = document.getElementById('taxonomy-search');
  const results = document.getElementById('taxonomy-results');
  const selected = document.getElementById('taxonomy-selected');
  const err = document.getElementById('align-error');
  const catName = document.getElementById('align-category-name');
  const save = document.querySelector('[data-test="align-save"]');
  let current = null, opener = null, choice = null, timer = null, seq = 0;
  function open(btn) {
    const row = btn.closest('[data-test="category-row"]');
    current = row.dataset.categoryId; opener = btn; choice = null;
    catName.textContent = row.querySelector('[data-test="category-name"]').textContent;
    selected.textContent = 'None'; err.textContent = ''; search.value = '';
    results.replaceChildren();
    drawer.hidden = false;
    search.focus();
  }
  function close() {
    drawer.hidden = true; current = null;
    if (opener) opener.focus();
  }
  document.querySelectorAll('[data-test="align-category"]').forEach(function (b) {
    b.addEventListener('click', function () { open(b); });
  });
  document.querySelector('[data-test="align-cancel"]').addEventListener('click', close);
  document.addEventListener('keydown', function (e) {
    if (drawer.hidden) return;
    if (e.key === 'Escape') { e.preventDefault(); close(); return; }
    if (e.key === 'Tab') {
      const f = Array.from(drawer.querySelectorAll('button:not([disabled]), input'));
      if (!f.length) return;
      const first = f[0], last = f[f.length - 1];
      if (e.shiftKey && document.activeElement === first) { e.preventDefault(); last.focus(); }
      else if (!e.shiftKey && document.activeElement === last) { e.preventDefault(); first.focus(); }
      else if (!drawer.contains(document.activeElement)) { e.preventDefault(); first.focus(); }
    }
  });
  async function runSearch() {
    const mine = ++seq;
    const q = search.value.trim();
    if (!q) { results.replaceChildren(); return; }
    const r = await rvpApi('GET', '/api/taxonomy?q=' + encodeURIComponent(q));
    if (mine !== seq) return;
    if (!r.ok) { err.textContent = rvpError(r, 'Search failed'); return; }
    err.textContent = '';
    const items = r.data.map(function (t) {
      const b = document.createElement('button');
      b.type = 'button';
      b.setAttribute('data-test', 'taxonomy-result');
      b.dataset.taxonomyId = String(t.id);
      b.setAttribute('aria-pressed', 'false');
      b.textContent = t.path;
      b.addEventListener('click', function () {
        choice = t;
        selected.textContent = t.path;
        results.querySelectorAll('[aria-pressed]').forEach(function (x) { x.setAttribute('aria-pressed', 'false'); });
        b.setAttribute('aria-pressed', 'true');
      });
      return b;
    });
    if (!items.length) { const p = document.createElement('p'); p.textContent = 'No matching Google categories'; items.push(p); }
    results.replaceChildren.apply(results, items);
  }
  search.addEventListener('input', function () { clearTimeout(timer); timer = setTimeout(runSearch, 50); });
  save.addEventListener('click', async function (event) {
    // Latency truth for benchmarks: the page's own clock at the click and at the toast.
    window.__rvpTruth = { action: event.timeStamp };
    if (!current) return;
    if (!choice) { err.textContent = 'Choose a Google category first'; return; }
    const cat = current;
    rvpClearToasts();
    save.disabled = true;
    const r = await rvpApi('PUT', '/api/t/' + encodeURIComponent(RVP.tenant) + '/categories/' + cat + '/mapping', { taxonomy_id: choice.id });
    save.disabled = false;
    if (!r.ok) { err.textContent = rvpError(r, 'Saving the mapping failed'); return; }
    const row = document.querySelector('[data-test="category-row"][data-category-id="' + cat + '"]');
    if (row) row.querySelector('[data-test="category-mapping"]').textContent = r.data.path;
    if (r.data.unmapped_remaining === 0) {
      const banner = document.querySelector('[data-test="banner-unmapped"]');
      if (banner) banner.remove();
    }
    close();
    if (r.data.toast) {
      rvpToast(RVP.copy.mapping_updated);
      window.__rvpTruth.toast = performance.now();
    }
  });
})();
"#;

pub async fn categories(
    State(st): St,
    headers: HeaderMap,
    JsonPath(slug): JsonPath<String>,
) -> Response {
    let path = format!("/t/{slug}/categories");
    let (claims, tenant) = match guard(&st, &headers, &slug, &path).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let rows = match st.db() {
        Ok(db) => api::list_categories(db, tenant.id).await,
        Err(e) => Err(e),
    };
    let rows = match rows {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let banner = if rows.iter().any(|c| c.taxonomy_id.is_none()) {
        format!(
            r#"<div class="banner" data-test="banner-unmapped" role="note"><strong>{}</strong><small>{}</small></div>"#,
            copy::BANNER_UNMAPPED,
            copy::HELP_WHY_ALIGN
        )
    } else {
        String::new()
    };
    let mut body = String::new();
    for c in &rows {
        let id = c.id.to_string();
        body.push_str(&format!(
            r#"<tr data-test="category-row" data-category-id="{id}"><td id="cat-{id}" data-test="category-name">{name}</td><td>{skus}</td><td data-test="category-mapping">{mapping}</td><td><button type="button" data-test="align-category" aria-haspopup="dialog" aria-describedby="cat-{id}">{align}</button></td></tr>
"#,
            name = esc(&c.name),
            skus = c.sku_count,
            mapping = esc(c.taxonomy_path.as_deref().unwrap_or(copy::NOT_MAPPED)),
            align = copy::CTA_ALIGN,
        ));
    }
    let main = format!(
        r#"<main id="main" data-test="categories-page"><h1>Categories</h1>{banner}
<table><caption>Store categories and their Google product category</caption>
<thead><tr><th scope="col">Category</th><th scope="col">SKUs</th><th scope="col">Google category</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
<tbody>
{body}</tbody></table></main>
<div class="drawer" role="dialog" aria-modal="true" aria-labelledby="align-title" data-test="align-drawer" hidden>
<h2 id="align-title">Align <span id="align-category-name"></span></h2>
<p>{why}</p>
<label for="taxonomy-search">Search Google taxonomy</label>
<input id="taxonomy-search" type="search" autocomplete="off" data-test="taxonomy-search" aria-controls="taxonomy-results">
<div id="taxonomy-results" class="results" data-test="taxonomy-results" aria-label="Matching Google categories" role="group"></div>
<p>Selected: <span id="taxonomy-selected" data-test="taxonomy-selected">None</span></p>
<p id="align-error" class="error" data-test="align-error" role="alert"></p>
<p><button type="button" data-test="align-save">{save}</button> <button type="button" class="secondary" data-test="align-cancel">Cancel</button></p>
</div>"#,
        why = copy::HELP_WHY_ALIGN,
        save = copy::CTA_SAVE,
    );
    let ctx = Ctx {
        tenant: &tenant,
        email: &claims.email,
    };
    html(
        StatusCode::OK,
        layout("Categories", Some(&ctx), &main, CATEGORIES_JS),
    )
}

const PROFILE_JS: &str = r#"
(function () {
  const C = RVP.copy;
  function len(v) { return Array.from(v.trim()).length; }
  const rules = {
    name: function (v) { const n = len(v); if (!n) return C.name_required; if (n < 2 || n > 100) return C.name_length; return ''; },
    address: function (v) { const n = len(v); if (!n) return C.address_required; if (n < 5 || n > 200) return C.address_length; return ''; },
    phone: function (v) {
      v = v.trim(); if (!v) return C.phone_required;
      const body = v.charAt(0) === '+' ? v.slice(1) : v;
      if (!/^[0-9 ().\-]+$/.test(body)) return C.phone_invalid;
      const d = body.replace(/[^0-9]/g, '').length;
      return (d >= 7 && d <= 15) ? '' : C.phone_invalid;
    },
    hours: function (v) { return len(v) > 200 ? C.hours_length : ''; }
  };
  const keys = ['name', 'address', 'phone', 'hours'];
  function input(k) { return document.querySelector('[data-test="profile-' + k + '"]'); }
  function errEl(k) { return document.querySelector('[data-test="profile-' + k + '-error"]'); }
  function check(k) {
    const msg = rules[k](input(k).value);
    errEl(k).textContent = msg;
    input(k).setAttribute('aria-invalid', msg ? 'true' : 'false');
    return msg;
  }
  keys.forEach(function (k) { input(k).addEventListener('input', function () { check(k); }); });
  const form = document.querySelector('[data-test="profile-form"]');
  const status = document.querySelector('[data-test="nap-status"]');
  const formErr = document.getElementById('profile-form-error');
  const save = document.querySelector('[data-test="profile-save"]');
  form.addEventListener('submit', async function (e) {
    e.preventDefault();
    const bad = keys.filter(function (k) { return check(k) !== ''; });
    if (bad.length) { input(bad[0]).focus(); return; }
    const badge = document.querySelector('[data-test="nap-badge"]');
    if (badge) badge.remove();
    rvpClearToasts();
    formErr.textContent = '';
    save.disabled = true;
    const body = {};
    keys.forEach(function (k) { body[k] = input(k).value; });
    const r = await rvpApi('PUT', '/api/t/' + encodeURIComponent(RVP.tenant) + '/profile', body);
    save.disabled = false;
    if (!r.ok) {
      if (r.data && r.data.details) keys.forEach(function (k) { if (r.data.details[k]) errEl(k).textContent = r.data.details[k]; });
      formErr.textContent = rvpError(r, 'Saving failed');
      return;
    }
    if (r.data.toast) rvpToast(C.saved);
    if (r.data.nap_complete) {
      const b = document.createElement('span');
      b.setAttribute('data-test', 'nap-badge');
      b.className = 'badge';
      b.textContent = C.nap_complete;
      status.appendChild(b);
    }
  });
})();
"#;

pub async fn profile(
    State(st): St,
    headers: HeaderMap,
    JsonPath(slug): JsonPath<String>,
) -> Response {
    let path = format!("/t/{slug}/settings/profile");
    let (claims, tenant) = match guard(&st, &headers, &slug, &path).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let loaded = match st.db() {
        Ok(db) => api::load_profile(db, tenant.id).await,
        Err(e) => Err(e),
    };
    let (p, nap) = match loaded {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    let badge = if nap {
        format!(
            r#"<span data-test="nap-badge" class="badge">{}</span>"#,
            copy::NAP_COMPLETE
        )
    } else {
        String::new()
    };
    let field = |key: &str, label: &str, value: &str, kind: &str, auto: &str| {
        format!(
            r#"<label for="profile-{key}">{label}</label>
<input id="profile-{key}" name="{key}" type="{kind}" autocomplete="{auto}" value="{value}" data-test="profile-{key}" aria-describedby="profile-{key}-error">
<p id="profile-{key}-error" class="error" data-test="profile-{key}-error" aria-live="polite"></p>"#,
            value = esc(value),
        )
    };
    let main = format!(
        r#"<main id="main" data-test="profile-page"><h1>Business profile</h1>
<p>NAP (name, address, phone) status: <span data-test="nap-status" id="nap-status">{badge}</span></p>
<form data-test="profile-form" novalidate>
{name}{address}{phone}{hours}
<p id="profile-form-error" class="error" role="alert"></p>
<p><button type="submit" data-test="profile-save">{save}</button></p>
</form></main>"#,
        name = field("name", "Business name", &p.name, "text", "organization"),
        address = field("address", "Address", &p.address, "text", "street-address"),
        phone = field("phone", "Phone", &p.phone, "tel", "tel"),
        hours = field("hours", "Opening hours", &p.hours, "text", "off"),
        save = copy::CTA_SAVE,
    );
    let ctx = Ctx {
        tenant: &tenant,
        email: &claims.email,
    };
    html(
        StatusCode::OK,
        layout("Business profile", Some(&ctx), &main, PROFILE_JS),
    )
}

const INVENTORY_JS: &str = r#"
(function () {
  const btn = document.querySelector('[data-test="feed-push"]');
  const holder = document.getElementById('feed-job');
  const err = document.querySelector('[data-test="feed-error"]');
  const done = { success: true, failed: true };
  function poll(el) {
    const url = '/api/t/' + encodeURIComponent(RVP.tenant) + '/feed-jobs/' + el.dataset.jobId;
    async function tick() {
      if (!el.isConnected) return;
      const r = await rvpApi('GET', url);
      if (!el.isConnected) return;
      let delay = 25;
      if (r.ok) {
        el.textContent = r.data.status;
        if (done[r.data.status]) return;
        // Waiting minutes for a retry: poll less often until it is close.
        if (r.data.status === 'queued' && r.data.next_retry) {
          const wait = Date.parse(r.data.next_retry) - Date.now();
          if (wait > 1000) delay = Math.min(wait - 500, 1000);
        }
      } else if (r.status === 429) {
        delay = 1000;
      }
      setTimeout(tick, delay);
    }
    setTimeout(tick, 25);
  }
  btn.addEventListener('click', async function () {
    err.textContent = '';
    btn.disabled = true;
    const r = await rvpApi('POST', '/api/t/' + encodeURIComponent(RVP.tenant) + '/feed-push', {});
    btn.disabled = false;
    if (!r.ok) { err.textContent = rvpError(r, 'Feed push failed'); return; }
    const old = document.querySelector('[data-test="feed-job-status"]');
    if (old) old.remove();
    const el = document.createElement('span');
    el.className = 'status';
    el.setAttribute('data-test', 'feed-job-status');
    el.dataset.jobId = r.data.id;
    el.textContent = r.data.status;
    holder.appendChild(el);
    poll(el);
  });
})();
"#;

pub async fn inventory(
    State(st): St,
    headers: HeaderMap,
    JsonPath(slug): JsonPath<String>,
) -> Response {
    let path = format!("/t/{slug}/inventory");
    let (claims, tenant) = match guard(&st, &headers, &slug, &path).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let rows = match st.db() {
        Ok(db) => api::list_skus(db, tenant.id, false).await,
        Err(e) => Err(e),
    };
    let rows = match rows {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let mut body = String::new();
    for s in &rows {
        body.push_str(&format!(
            r#"<tr data-test="sku-row" data-sku="{sku}"><td>{sku}</td><td>{title}</td><td>{cat}</td><td>{qty}</td><td>{price}</td></tr>
"#,
            sku = esc(&s.sku),
            title = esc(&s.title),
            cat = esc(s.category.as_deref().unwrap_or("")),
            qty = s.quantity,
            price = esc(&api::price(s.price_cents)),
        ));
    }
    let main = format!(
        r#"<main id="main" data-test="inventory-page"><h1>Inventory</h1>
<p><button type="button" data-test="feed-push">{push}</button>
<span id="feed-job" aria-live="polite"><span class="sr-only">Feed job status: </span></span></p>
<p class="error" data-test="feed-error" role="alert"></p>
<table><caption>{n} SKUs</caption>
<thead><tr><th scope="col">SKU</th><th scope="col">Title</th><th scope="col">Category</th><th scope="col">In stock</th><th scope="col">Price</th></tr></thead>
<tbody>
{body}</tbody></table></main>"#,
        push = copy::PUSH_FEED,
        n = rows.len(),
    );
    let ctx = Ctx {
        tenant: &tenant,
        email: &claims.email,
    };
    html(
        StatusCode::OK,
        layout("Inventory", Some(&ctx), &main, INVENTORY_JS),
    )
}
