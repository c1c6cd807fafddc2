use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::*;

async fn login_form(db: String) {
    let t = T::start(&db, |_| {}).await;
    let page = t.get("/login?next=/t/synthetic/inventory", None).await;
    assert_eq!(page.status, StatusCode::OK);
    for hook in [
        r#"data-test="login-form""#,
        r#"name="email" data-test="login-email""#,
        r#"type="password" name="password" data-test="login-password""#,
        r#"type="submit" data-test="login-submit""#,
        r#"value="/t/synthetic/inventory""#,
        r#"<html lang="en">"#,
    ] {
        assert!(page.text.contains(hook), "login page lacks {hook}");
    }

    // Wrong password: 401, the form again, the alert.
    let r = t
        .http
        .post(t.url("/login"))
        .form(&[("email", SYN_EMAIL), ("password", "nope")])
        .send()
        .await
        .unwrap();
    let r = T::read(r).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.text.contains(
        r#"<p class="error" data-test="login-error" role="alert">Invalid email or password</p>"#
    ));
    assert!(r.text.contains(r#"data-test="login-form""#));
    assert!(r.headers.get("set-cookie").is_none());

    // Right password: 303 to the categories page with an HttpOnly JWT cookie.
    let r = t
        .http
        .post(t.url("/login"))
        .form(&[("email", SYN_EMAIL), ("password", SYN_PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/t/synthetic/categories");
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.starts_with("rvp_session=ey"), "{cookie}");
    assert!(cookie.contains("HttpOnly"));

    // `next` is honoured for same-site paths only.
    for (next, want) in [
        ("/t/synthetic/inventory", "/t/synthetic/inventory"),
        ("//evil.example/x", "/t/synthetic/categories"),
        ("https://evil.example/", "/t/synthetic/categories"),
    ] {
        let r = t
            .http
            .post(t.url("/login"))
            .form(&[
                ("email", SYN_EMAIL),
                ("password", SYN_PASSWORD),
                ("next", next),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.headers()["location"], want, "next={next}");
    }

    // Pages: redirect without a session, 200 with it, 403 for another tenant's session.
    let r = t.get("/t/synthetic/categories", None).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.headers["location"], "/login?next=/t/synthetic/categories");
    let syn = t.cookie(SYN_EMAIL, SYN_PASSWORD).await;
    let r = t.page("/t/synthetic/categories", &syn).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = t.page("/t/pilot-01/categories", &syn).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = t.page("/t/no-such-tenant/categories", &syn).await;
    assert_json_error(&r, StatusCode::NOT_FOUND);
    let r = t
        .page("/t/synthetic/categories", "rvp_session=not.a.jwt")
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    t.stop().await;
}

async fn api_login(db: String) {
    let t = T::start(&db, |c| c.synthetic_password = "s3cret-probe".into()).await;
    let r = t
        .req(
            Method::POST,
            "/api/login",
            None,
            Some(json!({"email": SYN_EMAIL, "password": "s3cret-probe"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["tenant"], "synthetic");
    assert!(r.json["token"].as_str().unwrap().split('.').count() == 3);
    let exp = chrono::DateTime::parse_from_rfc3339(r.json["expires_at"].as_str().unwrap()).unwrap();
    assert!(exp > chrono::Utc::now());
    let token = r.json["token"].as_str().unwrap().to_string();
    let r = t.get("/api/t/synthetic/profile", Some(&token)).await;
    assert_eq!(r.status, StatusCode::OK);

    for body in [
        json!({"email": SYN_EMAIL, "password": SYN_PASSWORD}),
        json!({"email": "nobody@rvp.test", "password": "x"}),
    ] {
        let r = t.req(Method::POST, "/api/login", None, Some(body)).await;
        assert_json_error(&r, StatusCode::UNAUTHORIZED);
    }
    // No token, a forged token, another tenant's token.
    assert_json_error(
        &t.get("/api/t/synthetic/profile", None).await,
        StatusCode::UNAUTHORIZED,
    );
    assert_json_error(
        &t.get("/api/t/synthetic/profile", Some("a.b.c")).await,
        StatusCode::UNAUTHORIZED,
    );
    let pilot = t.pilot().await;
    assert_json_error(
        &t.get("/api/t/synthetic/profile", Some(&pilot)).await,
        StatusCode::FORBIDDEN,
    );
    t.stop().await;
}

dual!(login_form, api_login);
