use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::*;

fn rate_headers(r: &Resp) -> (u32, u32, i64) {
    let h = |k: &str| {
        r.headers
            .get(k)
            .unwrap_or_else(|| panic!("{k} missing on {} response", r.status))
            .to_str()
            .unwrap()
            .to_string()
    };
    (
        h("x-ratelimit-limit").parse().unwrap(),
        h("x-ratelimit-remaining").parse().unwrap(),
        h("x-ratelimit-reset").parse().unwrap(),
    )
}

async fn rate_limit_headers_and_429(db: String) {
    let t = T::start(&db, |c| c.rate_limit_per_minute = 6).await;
    let now = chrono::Utc::now().timestamp();
    // Anonymous clients are keyed by IP: login counts, as do errors.
    let token = t.syn().await; // 1
    let responses = [
        t.get("/api/taxonomy?q=dog", None).await,          // 2: 200
        t.get("/api/t/synthetic/profile", None).await,     // 3: 401
        t.get("/api/t/nope/profile", Some("x.y.z")).await, // 4: 401 (forged token -> IP)
        t.get("/api/no-such-route", None).await,           // 5: 404
    ];
    let mut last_remaining = 6;
    for r in &responses {
        let (limit, remaining, reset) = rate_headers(r);
        assert_eq!(limit, 6);
        assert!(remaining < last_remaining, "remaining must go down");
        last_remaining = remaining;
        assert!(
            reset >= now && reset <= now + 61,
            "reset {reset} vs now {now}"
        );
    }
    assert_eq!(last_remaining, 1);
    let r = t.get("/api/taxonomy?q=cat", None).await; // 6
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(rate_headers(&r).1, 0);
    let r = t.get("/api/taxonomy?q=cat", None).await; // 7: over the limit
    assert_json_error(&r, StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    assert_eq!(rate_headers(&r).1, 0);
    // A client with a token has its own budget.
    let before = chrono::Utc::now().timestamp();
    let r = t.get("/api/t/synthetic/profile", Some(&token)).await;
    let after = chrono::Utc::now().timestamp();
    assert_eq!(r.status, StatusCode::OK);
    let (limit, remaining, reset) = rate_headers(&r);
    assert_eq!((limit, remaining), (6, 5));
    // Its first request: the window frees that slot a full minute after it was made.
    assert!(
        (before + 60..=after + 60).contains(&reset),
        "reset {reset}, request made between {before} and {after}"
    );
    // Pages are not rate limited (only /api is).
    assert_eq!(t.get("/login", None).await.status, StatusCode::OK);
    t.stop().await;
}

async fn bad_input_is_4xx_json(db: String) {
    let t = T::start(&db, |_| {}).await;
    let token = t.syn().await;
    let send_raw = |method: Method, path: &str, body: Vec<u8>| {
        let rb = t
            .http
            .request(method, t.url(path))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(body);
        async move { T::read(rb.send().await.unwrap()).await }
    };
    // Malformed JSON.
    for (m, path) in [
        (Method::POST, "/api/login"),
        (Method::PUT, "/api/t/synthetic/profile"),
        (Method::POST, "/api/t/synthetic/feed-push"),
        (Method::POST, "/api/t/synthetic/qa-events"),
    ] {
        let r = send_raw(m, path, b"{\"email\": ".to_vec()).await;
        assert_json_error(&r, StatusCode::BAD_REQUEST);
    }
    // Missing fields / wrong types.
    let r = t
        .req(
            Method::POST,
            "/api/login",
            None,
            Some(json!({"email": SYN_EMAIL})),
        )
        .await;
    assert!(
        r.status.is_client_error() && r.json["error"].is_string(),
        "{}",
        r.text
    );
    let r = t
        .req(
            Method::PUT,
            "/api/t/synthetic/profile",
            Some(&token),
            Some(json!({"name": "x"})),
        )
        .await;
    assert!(
        r.status.is_client_error() && r.json["error"].is_string(),
        "{}",
        r.text
    );
    let cats = t.get("/api/t/synthetic/categories", Some(&token)).await;
    let cat = cats.json[0]["id"].as_str().unwrap().to_string();
    let r = t
        .req(
            Method::PUT,
            &format!("/api/t/synthetic/categories/{cat}/mapping"),
            Some(&token),
            Some(json!({"taxonomy_id": "screws"})),
        )
        .await;
    assert!(
        r.status.is_client_error() && r.json["error"].is_string(),
        "{}",
        r.text
    );
    let r = t
        .req(
            Method::POST,
            "/api/t/synthetic/feed-push",
            Some(&token),
            Some(json!({"sku": "NOPE-1"})),
        )
        .await;
    assert_json_error(&r, StatusCode::BAD_REQUEST);
    let r = t
        .req(
            Method::POST,
            "/api/t/synthetic/feed-push",
            Some(&token),
            Some(json!([1, 2])),
        )
        .await;
    assert!(
        r.status.is_client_error() && r.json["error"].is_string(),
        "{}",
        r.text
    );
    // Oversized bodies.
    let big = format!("{{\"name\": \"{}\"}}", "x".repeat(100 * 1024));
    for (m, path) in [
        (Method::PUT, "/api/t/synthetic/profile"),
        (Method::POST, "/api/login"),
        (Method::POST, "/api/t/synthetic/feed-push"),
    ] {
        let r = send_raw(m, path, big.clone().into_bytes()).await;
        assert_json_error(&r, StatusCode::PAYLOAD_TOO_LARGE);
    }
    // Unknown tenant, route, method.
    let r = t
        .get("/api/t/no-such-tenant/categories", Some(&token))
        .await;
    assert_json_error(&r, StatusCode::NOT_FOUND);
    let r = t.get("/svc/billing/healthz", None).await;
    assert_json_error(&r, StatusCode::NOT_FOUND);
    let r = t.get("/definitely/not/here", None).await;
    assert_json_error(&r, StatusCode::NOT_FOUND);
    let r = t.req(Method::DELETE, "/api/login", None, None).await;
    assert_json_error(&r, StatusCode::METHOD_NOT_ALLOWED);
    // The login form with missing fields.
    let r = t
        .http
        .post(t.url("/login"))
        .form(&[("email", SYN_EMAIL)])
        .send()
        .await
        .unwrap();
    let r = T::read(r).await;
    assert_json_error(&r, StatusCode::BAD_REQUEST);
    let r = t
        .http
        .post(t.url("/login"))
        .header("content-type", "text/plain")
        .body("hello")
        .send()
        .await
        .unwrap();
    let r = T::read(r).await;
    assert!(
        r.status.is_client_error() && r.json["error"].is_string(),
        "{}",
        r.text
    );
    // Profile field errors name the field.
    let r = t
        .req(
            Method::PUT,
            "/api/t/synthetic/profile",
            Some(&token),
            Some(json!({"name": "A", "address": "", "phone": "abc", "hours": ""})),
        )
        .await;
    assert_json_error(&r, StatusCode::BAD_REQUEST);
    for f in ["name", "address", "phone"] {
        assert!(r.json["details"][f].is_string(), "{f}: {}", r.text);
    }
    t.stop().await;
}

dual!(rate_limit_headers_and_429, bad_input_is_4xx_json);
