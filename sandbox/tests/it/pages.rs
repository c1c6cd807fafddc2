use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::*;

async fn categories_and_mapping_round_trip(db: String) {
    let t = T::start(&db, |_| {}).await;
    let cookie = t.cookie(SYN_EMAIL, SYN_PASSWORD).await;
    let page = t.page("/t/synthetic/categories", &cookie).await;
    assert_eq!(page.status, StatusCode::OK);
    for hook in [
        r#"data-test="categories-page""#,
        r#"data-test="banner-unmapped""#,
        "Some categories are not mapped to Google taxonomy",
        r#"data-test="category-row" data-category-id=""#,
        r#"data-test="category-mapping""#,
        r#"data-test="align-category" aria-haspopup="dialog""#,
        ">Align Category</button>",
        r#"role="dialog" aria-modal="true" aria-labelledby="align-title" data-test="align-drawer""#,
        r#"data-test="taxonomy-search""#,
        r#"data-test="taxonomy-results""#,
        r#"data-test="taxonomy-selected""#,
        r#"data-test="align-save">Save</button>"#,
        r#"data-test="toast-region" role="status" aria-live="polite""#,
        r#"data-test="qa-footer""#,
    ] {
        assert!(page.text.contains(hook), "categories page lacks {hook}");
    }
    assert_eq!(
        page.text.matches(r#"<tr data-test="category-row""#).count(),
        4
    );

    let token = t.syn().await;
    let cats = t.get("/api/t/synthetic/categories", Some(&token)).await;
    let unmapped: Vec<&serde_json::Value> = cats
        .json
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["mapped"] == false)
        .collect();
    assert_eq!(unmapped.len(), 2);
    let cat = unmapped[0]["id"].as_str().unwrap().to_string();

    let hits = t.get("/api/taxonomy?q=power%20tools", None).await;
    assert_eq!(hits.status, StatusCode::OK);
    let hits = t.get("/api/taxonomy?q=screws", None).await;
    let screws = hits
        .json
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["id"] == 2251)
        .expect("Screws (2251) in the taxonomy slice");
    assert_eq!(
        screws["path"],
        "Hardware > Hardware Accessories > Hardware Fasteners > Screws"
    );

    let path = format!("/api/t/synthetic/categories/{cat}/mapping");
    let r = t
        .req(
            Method::PUT,
            &path,
            Some(&token),
            Some(json!({"taxonomy_id": 2251})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["category_id"], cat.as_str());
    assert_eq!(r.json["taxonomy_id"], 2251);
    assert_eq!(
        r.json["path"],
        "Hardware > Hardware Accessories > Hardware Fasteners > Screws"
    );
    assert_eq!(r.json["toast"], true);
    assert_eq!(r.json["unmapped_remaining"], 1);

    let db = t.db().await;
    let mapped = scalar_i64(&db, "SELECT CAST(taxonomy_id AS BIGINT) FROM category_mappings WHERE CAST(category_id AS TEXT) = $1", &[&cat]).await;
    assert_eq!(mapped, 2251);
    let audits = scalar_i64(&db, "SELECT count(*) FROM audit_log WHERE entity = 'category' AND action = 'align' AND entity_id = $1", &[&cat]).await;
    assert_eq!(audits, 1);
    let diff = scalar_text(&db, "SELECT CAST(diff AS TEXT) FROM audit_log WHERE entity = 'category' AND action = 'align' AND entity_id = $1", &[&cat]).await.unwrap();
    let diff: serde_json::Value = serde_json::from_str(&diff).unwrap();
    assert_eq!(diff["old"], serde_json::Value::Null);
    assert_eq!(diff["new"]["taxonomy_id"], 2251);

    // Re-aligning is an update (repeatable forever), with the old value in the diff.
    let r = t
        .req(
            Method::PUT,
            &path,
            Some(&token),
            Some(json!({"taxonomy_id": 2408})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let rows = scalar_i64(
        &db,
        "SELECT count(*) FROM category_mappings WHERE CAST(category_id AS TEXT) = $1",
        &[&cat],
    )
    .await;
    assert_eq!(rows, 1);
    let audits = scalar_i64(&db, "SELECT count(*) FROM audit_log WHERE entity = 'category' AND action = 'align' AND entity_id = $1", &[&cat]).await;
    assert_eq!(audits, 2);
    let last = scalar_text(&db, "SELECT CAST(diff AS TEXT) FROM audit_log WHERE entity = 'category' AND action = 'align' AND entity_id = $1 ORDER BY timestamp DESC LIMIT 1", &[&cat]).await.unwrap();
    let last: serde_json::Value = serde_json::from_str(&last).unwrap();
    assert_eq!(last["old"]["taxonomy_id"], 2251);
    assert_eq!(last["new"]["taxonomy_id"], 2408);

    let page = t.page("/t/synthetic/categories", &cookie).await;
    assert!(page.text.contains("Hardware Fasteners &gt; Nails"));

    // Bad mapping requests.
    let r = t
        .req(
            Method::PUT,
            &path,
            Some(&token),
            Some(json!({"taxonomy_id": 999999999})),
        )
        .await;
    assert_json_error(&r, StatusCode::BAD_REQUEST);
    let other = format!(
        "/api/t/synthetic/categories/{}/mapping",
        uuid::Uuid::new_v4()
    );
    let r = t
        .req(
            Method::PUT,
            &other,
            Some(&token),
            Some(json!({"taxonomy_id": 2251})),
        )
        .await;
    assert_json_error(&r, StatusCode::NOT_FOUND);
    let r = t
        .req(
            Method::PUT,
            "/api/t/synthetic/categories/not-a-uuid/mapping",
            Some(&token),
            Some(json!({"taxonomy_id": 2251})),
        )
        .await;
    assert_json_error(&r, StatusCode::NOT_FOUND);
    // A pilot category is not reachable through the synthetic tenant.
    let pilot = t.pilot().await;
    let pcats = t.get("/api/t/pilot-01/categories", Some(&pilot)).await;
    let pcat = pcats.json[0]["id"].as_str().unwrap();
    let r = t
        .req(
            Method::PUT,
            &format!("/api/t/synthetic/categories/{pcat}/mapping"),
            Some(&token),
            Some(json!({"taxonomy_id": 2251})),
        )
        .await;
    assert_json_error(&r, StatusCode::NOT_FOUND);
    db.close().await;
    t.stop().await;
}

async fn profile_validation_and_badge(db: String) {
    let t = T::start(&db, |_| {}).await;
    let cookie = t.cookie(SYN_EMAIL, SYN_PASSWORD).await;
    let page = t.page("/t/synthetic/settings/profile", &cookie).await;
    assert_eq!(page.status, StatusCode::OK);
    for k in ["name", "address", "phone", "hours"] {
        for hook in [
            format!(r#"<label for="profile-{k}">"#),
            format!(r#"data-test="profile-{k}""#),
            format!(r#"data-test="profile-{k}-error""#),
        ] {
            assert!(page.text.contains(&hook), "profile page lacks {hook}");
        }
    }
    assert!(
        page.text
            .contains(r#"<button type="submit" data-test="profile-save">Save</button>"#)
    );
    assert!(
        !page.text.contains(r#"<span data-test="nap-badge""#),
        "seeded synthetic profile is incomplete"
    );

    let token = t.syn().await;
    let good = json!({"name": "Synthetic Store", "address": "1 Probe Way, Testville", "phone": "+1 (555) 010-9999", "hours": "Mon-Sun 0-24"});
    for (field, bad) in [
        ("phone", "call me"),
        ("phone", "12345"),
        ("phone", "+1 555 010 9999 9999 99"),
        ("name", ""),
        ("address", "x"),
    ] {
        let mut body = good.clone();
        body[field] = json!(bad);
        let r = t
            .req(
                Method::PUT,
                "/api/t/synthetic/profile",
                Some(&token),
                Some(body),
            )
            .await;
        assert_json_error(&r, StatusCode::BAD_REQUEST);
        assert!(
            r.json["details"][field].is_string(),
            "{field}={bad}: {}",
            r.text
        );
    }
    let r = t.get("/api/t/synthetic/profile", Some(&token)).await;
    assert_eq!(r.json["phone"], "", "rejected saves change nothing");

    for _ in 0..3 {
        let r = t
            .req(
                Method::PUT,
                "/api/t/synthetic/profile",
                Some(&token),
                Some(good.clone()),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.json, json!({"nap_complete": true, "toast": true}));
    }
    let r = t.get("/api/t/synthetic/profile", Some(&token)).await;
    assert_eq!(r.json["phone"], "+1 (555) 010-9999");
    assert_eq!(r.json["nap_complete"], true);
    let page = t.page("/t/synthetic/settings/profile", &cookie).await;
    assert!(
        page.text
            .contains(r#"<span data-test="nap-badge" class="badge">NAP complete</span>"#)
    );
    let db = t.db().await;
    let n = scalar_i64(
        &db,
        "SELECT count(*) FROM audit_log WHERE entity = 'profile' AND action = 'update'",
        &[],
    )
    .await;
    assert_eq!(n, 3);
    db.close().await;
    t.stop().await;
}

async fn inventory_page(db: String) {
    let t = T::start(&db, |_| {}).await;
    let cookie = t.cookie(SYN_EMAIL, SYN_PASSWORD).await;
    let page = t.page("/t/synthetic/inventory", &cookie).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.text
            .contains(r#"<main id="main" data-test="inventory-page">"#)
    );
    assert_eq!(page.text.matches(r#"<tr data-test="sku-row""#).count(), 10);
    assert!(
        page.text
            .contains(r#"<button type="button" data-test="feed-push">Push feed</button>"#)
    );
    assert!(
        page.text.contains("feed-job-status"),
        "the page script renders the job status"
    );
    // Quick Actions usage is recorded for the engagement metric.
    let token = t.syn().await;
    let r = t
        .req(
            Method::POST,
            "/api/t/synthetic/qa-events",
            Some(&token),
            Some(json!({"action": "push_feed", "page": "/t/synthetic/inventory"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let db = t.db().await;
    let n = scalar_i64(
        &db,
        "SELECT count(*) FROM qa_events q JOIN tenants t ON t.id = q.tenant_id WHERE t.slug = $1",
        &["synthetic"],
    )
    .await;
    assert_eq!(n, 1);
    db.close().await;
    t.stop().await;
}

dual!(
    categories_and_mapping_round_trip,
    profile_validation_and_badge,
    inventory_page
);
