use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::*;

fn ts(v: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(
        v.as_str()
            .unwrap_or_else(|| panic!("timestamp expected: {v}")),
    )
    .unwrap()
    .with_timezone(&Utc)
}

async fn push(t: &T, tenant: &str, token: &str, body: Value) -> String {
    let r = t
        .req(
            Method::POST,
            &format!("/api/t/{tenant}/feed-push"),
            Some(token),
            Some(body),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.json["status"], "queued");
    r.json["id"].as_str().unwrap().to_string()
}

fn finished(j: &Value) -> bool {
    j["status"] == "success" || j["status"] == "failed"
}

async fn feed_push_reaches_success(db: String) {
    let t = T::start(&db, |_| {}).await;
    let token = t.syn().await;
    let approvals =
        |db| async move { scalar_i64(&db, "SELECT count(*) FROM merchant_approvals", &[]).await };
    let before = approvals(t.db().await).await;

    let started = tokio::time::Instant::now();
    let id = push(&t, "synthetic", &token, json!({})).await;
    let job = t
        .wait_job("synthetic", &token, &id, Duration::from_secs(5), finished)
        .await;
    let took = started.elapsed();
    assert_eq!(job["status"], "success", "{job}");
    assert_eq!(job["id"], id.as_str());
    assert_eq!(job["tenant"], "synthetic");
    assert_eq!(job["sku"], Value::Null);
    assert_eq!(job["retry_count"], 0);
    assert_eq!(job["error_message"], Value::Null);
    assert_eq!(job["next_retry"], Value::Null);
    assert!(ts(&job["last_attempt"]) >= ts(&job["created_at"]));
    // One push is 50 ms of simulated work after a 20 ms poll; a retry would come a minute later
    // (`retry_count` is 0 above). 4 s leaves room for a loaded 2-core machine.
    assert!(
        took < Duration::from_secs(4),
        "a healthy push took {took:?}"
    );
    let attempts = t
        .get(
            &format!("/api/t/synthetic/feed-jobs/{id}/attempts"),
            Some(&token),
        )
        .await;
    assert_eq!(attempts.json.as_array().unwrap().len(), 1);
    assert_eq!(attempts.json[0]["outcome"], "success");
    // The synthetic tenant never reaches the simulated Merchant Center review.
    assert_eq!(approvals(t.db().await).await, before);

    // A pilot push of one SKU is reviewed.
    let pilot = t.pilot().await;
    let id = push(&t, "pilot-01", &pilot, json!({"sku": "P01-00001"})).await;
    let job = t
        .wait_job("pilot-01", &pilot, &id, Duration::from_secs(5), finished)
        .await;
    assert_eq!(job["status"], "success");
    assert_eq!(job["sku"], "P01-00001");
    assert_eq!(approvals(t.db().await).await, before + 1);

    // An empty body is a full-feed push, like `{}`.
    let r = t
        .http
        .post(t.url("/api/t/synthetic/feed-push"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    // Unknown job ids.
    let r = t
        .get(
            &format!("/api/t/synthetic/feed-jobs/{}", uuid::Uuid::new_v4()),
            Some(&token),
        )
        .await;
    assert_json_error(&r, StatusCode::NOT_FOUND);
    let r = t.get("/api/t/synthetic/feed-jobs/123", Some(&token)).await;
    assert_json_error(&r, StatusCode::BAD_REQUEST);
    // Another tenant's job is not visible.
    let r = t
        .get(&format!("/api/t/pilot-01/feed-jobs/{id}"), Some(&token))
        .await;
    assert_json_error(&r, StatusCode::FORBIDDEN);
    t.stop().await;
}

async fn retry_schedule_walks_to_failed(db: String) {
    const SCALE: f64 = 6000.0;
    let t = T::start(&db, |c| c.time_scale = SCALE).await;
    t.fault(json!({"kind": "feed_jobs_fail", "rate": 1.0}))
        .await;
    let token = t.syn().await;
    let id = push(&t, "synthetic", &token, json!({"sku": "SYN-0001"})).await;
    let job = t
        .wait_job("synthetic", &token, &id, Duration::from_secs(15), finished)
        .await;
    assert_eq!(job["status"], "failed", "{job}");
    assert_eq!(job["retry_count"], 5);
    assert_eq!(job["next_retry"], Value::Null);
    assert!(
        job["error_message"]
            .as_str()
            .unwrap()
            .contains("5 attempts"),
        "{job}"
    );

    let a = t
        .get(
            &format!("/api/t/synthetic/feed-jobs/{id}/attempts"),
            Some(&token),
        )
        .await;
    let a = a.json.as_array().unwrap().clone();
    assert_eq!(a.len(), 5, "{a:?}");
    // The retry schedule: +1 min, +5 min, +15 min, +1 h, divided by the time scale.
    let gaps_secs = [60.0, 300.0, 900.0, 3600.0];
    for (i, at) in a.iter().enumerate() {
        assert_eq!(at["attempt"], i as i64 + 1);
        assert_eq!(at["outcome"], "failure");
        assert!(at["error_message"].is_string());
        if i < 4 {
            let gap = ts(&at["next_retry"]) - ts(&at["finished_at"]);
            let want = chrono::Duration::microseconds((gaps_secs[i] * 1e6 / SCALE).round() as i64);
            assert_eq!(gap, want, "gap after attempt {}", i + 1);
            // The next attempt did not start before it was due, and not much later.
            let next_start = ts(&a[i + 1]["started_at"]);
            assert!(
                next_start >= ts(&at["next_retry"]),
                "attempt {} started early",
                i + 2
            );
            assert!(next_start - ts(&at["next_retry"]) < chrono::Duration::milliseconds(500));
        } else {
            assert_eq!(
                at["next_retry"],
                Value::Null,
                "no retry after the fifth attempt"
            );
        }
    }
    t.stop().await;
}

async fn worker_pauses_while_db_down(db: String) {
    // time_scale 60: the first retry is due one second after the failure.
    let t = T::start(&db, |c| c.time_scale = 60.0).await;
    let token = t.syn().await;
    t.fault(json!({"kind": "feed_jobs_fail", "rate": 1.0}))
        .await;
    let id = push(&t, "synthetic", &token, json!({})).await;
    let job = t
        .wait_job("synthetic", &token, &id, Duration::from_secs(5), |j| {
            j["retry_count"] == 1
        })
        .await;
    let due = ts(&job["next_retry"]);
    t.faults(Method::DELETE, None).await;
    t.fault(json!({"kind": "db_down"})).await;
    let r = t
        .get(&format!("/api/t/synthetic/feed-jobs/{id}"), Some(&token))
        .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.json, json!({"error": "database unavailable"}));
    // Give the worker every chance to pick the due job up; it must not.
    while Utc::now() < due + chrono::Duration::milliseconds(400) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let db = t.db().await;
    let status = scalar_text(
        &db,
        "SELECT job_status FROM feed_push_jobs WHERE CAST(id AS TEXT) = $1",
        &[&id],
    )
    .await;
    assert_eq!(
        status.as_deref(),
        Some("queued"),
        "worker ran while the database was down"
    );
    db.close().await;
    t.faults(Method::DELETE, None).await;
    let job = t
        .wait_job("synthetic", &token, &id, Duration::from_secs(5), finished)
        .await;
    assert_eq!(job["status"], "success");
    assert_eq!(job["retry_count"], 1);
    t.stop().await;
}

dual!(
    feed_push_reaches_success,
    retry_schedule_walks_to_failed,
    worker_pauses_while_db_down
);
