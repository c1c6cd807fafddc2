use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::*;

const METRICS: [&str; 9] = [
    "feed_approval_rate",
    "category_mapping_coverage_pct",
    "qa_footer_engagement_rate",
    "time_to_alignment_median_ms",
    "taxonomy_version_active_age_days",
    "feed_push_success_rate",
    "feed_queue_depth",
    "oauth_error_rate",
    "pilot_satisfaction_pct",
];

async fn metrics(t: &T) -> Value {
    let r = t.get("/api/metrics/business", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.json
}

async fn push_and_finish(t: &T, tenant: &str, token: &str) -> Value {
    let r = t
        .req(
            Method::POST,
            &format!("/api/t/{tenant}/feed-push"),
            Some(token),
            Some(json!({})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let id = r.json["id"].as_str().unwrap().to_string();
    t.wait_job(tenant, token, &id, Duration::from_secs(10), |j| {
        j["status"] == "success" || j["status"] == "failed"
    })
    .await
}

async fn business_metrics_exclude_synthetic(db: String) {
    // A huge time scale makes the whole retry schedule take milliseconds.
    let t = T::start(&db, |c| c.time_scale = 1_000_000.0).await;
    let m0 = metrics(&t).await;
    for k in METRICS {
        assert!(m0[k].is_number(), "{k} has no value from the seed: {m0}");
    }
    let pct = |m: &Value, k: &str| m[k].as_f64().unwrap();
    for k in [
        "feed_approval_rate",
        "category_mapping_coverage_pct",
        "qa_footer_engagement_rate",
        "feed_push_success_rate",
        "oauth_error_rate",
        "pilot_satisfaction_pct",
    ] {
        assert!((0.0..=100.0).contains(&pct(&m0, k)), "{k} = {}", m0[k]);
    }
    assert!(
        pct(&m0, "category_mapping_coverage_pct") < 100.0,
        "pilots are partly mapped"
    );
    assert!(pct(&m0, "feed_queue_depth") >= 1.0);
    assert!((11.0..13.0).contains(&pct(&m0, "taxonomy_version_active_age_days")));
    assert!(pct(&m0, "time_to_alignment_median_ms") > 1000.0);

    // Synthetic activity: failing pushes, alignments, Quick Actions use.
    let syn = t.syn().await;
    t.fault(json!({"kind": "feed_jobs_fail", "rate": 1.0}))
        .await;
    for _ in 0..4 {
        let job = push_and_finish(&t, "synthetic", &syn).await;
        assert_eq!(job["status"], "failed");
    }
    let cats = t.get("/api/t/synthetic/categories", Some(&syn)).await;
    for c in cats.json.as_array().unwrap() {
        let path = format!(
            "/api/t/synthetic/categories/{}/mapping",
            c["id"].as_str().unwrap()
        );
        let r = t
            .req(
                Method::PUT,
                &path,
                Some(&syn),
                Some(json!({"taxonomy_id": 632})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK);
    }
    t.req(
        Method::POST,
        "/api/t/synthetic/qa-events",
        Some(&syn),
        Some(json!({"action": "push_feed"})),
    )
    .await;
    let m1 = metrics(&t).await;
    for k in [
        "feed_push_success_rate",
        "feed_queue_depth",
        "category_mapping_coverage_pct",
        "feed_approval_rate",
        "time_to_alignment_median_ms",
        "qa_footer_engagement_rate",
    ] {
        assert_eq!(m1[k], m0[k], "{k} moved because of synthetic activity");
    }

    // The same failure on a pilot tenant does move the metric: it is live SQL.
    let pilot = t.pilot().await;
    let job = push_and_finish(&t, "pilot-01", &pilot).await;
    assert_eq!(job["status"], "failed");
    let m2 = metrics(&t).await;
    assert!(
        pct(&m2, "feed_push_success_rate") < pct(&m0, "feed_push_success_rate"),
        "{} vs {}",
        m2["feed_push_success_rate"],
        m0["feed_push_success_rate"]
    );
    t.faults(Method::DELETE, None).await;
    let before = metrics(&t).await;
    let job = push_and_finish(&t, "pilot-01", &pilot).await;
    assert_eq!(job["status"], "success");
    let after = metrics(&t).await;
    assert!(pct(&after, "feed_push_success_rate") > pct(&before, "feed_push_success_rate"));
    t.stop().await;
}

async fn services_swis_and_restart(db: String) {
    let t = T::start(&db, |_| {}).await;
    for s in ["auth", "inventory", "business_profile", "integrations"] {
        let r = t.get(&format!("/svc/{s}/healthz"), None).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.json, json!({"status": "ok", "service": s}));
    }
    let token = t.syn().await;
    let r = t.get("/api/t/synthetic/swis/preview", Some(&token)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["tenant"], "synthetic");
    let products = r.json["products"].as_array().unwrap();
    assert_eq!(products.len(), 10);
    assert!(
        products
            .iter()
            .all(|p| p["availability"] == "in_stock" && p["quantity"].as_i64().unwrap() > 0)
    );
    let pilot = t.pilot().await;
    let r = t.get("/api/t/pilot-01/swis/preview", Some(&pilot)).await;
    let n = r.json["count"].as_u64().unwrap();
    assert!(n > 50, "pilot in-stock products: {n}");
    let skus = t.get("/api/t/pilot-01/skus", Some(&pilot)).await;
    assert!(
        skus.json.as_array().unwrap().len() > 100,
        "pilots have >100 SKUs"
    );
    assert!(
        (n as usize) < skus.json.as_array().unwrap().len(),
        "out-of-stock SKUs are not previewed"
    );
    t.stop().await;

    // Restart on the same database: migrations are idempotent, seeding runs once,
    // and a changed synthetic password takes effect.
    let t = T::start(&db, |c| c.synthetic_password = "rotated".into()).await;
    let d = t.db().await;
    assert_eq!(
        scalar_i64(&d, "SELECT count(*) FROM tenants", &[]).await,
        11
    );
    assert_eq!(
        scalar_i64(
            &d,
            "SELECT count(*) FROM tenants WHERE slug LIKE 'pilot-%'",
            &[]
        )
        .await,
        10
    );
    d.close().await;
    t.token(SYN_EMAIL, "rotated").await;
    let r = t
        .req(
            Method::POST,
            "/api/login",
            None,
            Some(json!({"email": SYN_EMAIL, "password": SYN_PASSWORD})),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    t.stop().await;
}

dual!(
    business_metrics_exclude_synthetic,
    services_swis_and_restart
);
