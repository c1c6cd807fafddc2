//! HTTP checks and SQL metric sources against the sandbox over real HTTP and real databases.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::json;
use synmon::Outcome;
use synmon::checks::http::HttpProber;
use synmon::checks::sql::SqlSource;
use synmon::journey::Vars;
use synmon::run::{CheckKind, RunResult};
use synmon::settings::Config;

use crate::support::*;

const PASSWORD: &str = "synthetic-demo";

fn example(env: &[(&str, &str)]) -> Config {
    let env: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("synmon.example.yaml");
    Config::load_with_env(&path, &env).expect("the example config is valid")
}

fn http_check<'a>(cfg: &'a Config, name: &str) -> &'a synmon::checks::HttpCheck {
    cfg.checks.http.iter().find(|h| h.name == name).unwrap()
}

fn vars(cfg: &Config) -> Vars {
    let mut v = Vars::default();
    let creds = cfg
        .credentials
        .as_ref()
        .expect("the test config has credentials");
    v.set(
        "tenant",
        cfg.tenant.as_deref().expect("the test config has a tenant"),
    );
    v.set("username", &creds.username);
    v.set_secret("password", creds.password.clone());
    v
}

fn run(name: &str) -> RunResult {
    RunResult::begin(
        name,
        CheckKind::Http,
        "staging",
        "local",
        "2026-11-26T00:00:00Z".parse().unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shipped_api_checks_pass_against_the_sandbox() {
    let dir = tempfile::tempdir().unwrap();
    let sbx = sqlite_sandbox(dir.path(), PASSWORD).await;
    let cfg = example(&[]);
    let prober = HttpProber::new(true);
    for h in &cfg.checks.http {
        let mut r = run(&h.name);
        let stats = prober
            .run(
                h,
                &sbx.base_url(),
                &vars(&cfg),
                &mut r,
                Duration::from_secs(5),
            )
            .await;
        assert_eq!(r.outcome, Outcome::Pass, "{}: {:?}", h.name, r.error);
        assert_eq!(stats.rate_limit_hits, 0);
        if h.name == "business_metrics" {
            assert!(
                stats.gauges.iter().all(|(_, v)| v.is_some()),
                "{:?}",
                stats.gauges
            );
        }
        if h.name == "swis_preview" {
            assert!(
                r.steps.iter().any(|s| s.name.starts_with("login")),
                "logs in first"
            );
        }
    }
    sbx.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_is_counted_and_retried_after_retry_after_until_the_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let sbx = sqlite_sandbox(dir.path(), PASSWORD).await;
    let cfg = example(&[]);
    let h = http_check(&cfg, "swis_preview");
    set_faults(
        &sbx.base_url(),
        json!({"kind": "rate_limit", "route": "/api/t/*/swis/preview"}),
    )
    .await;
    let mut r = run(&h.name);
    let started = tokio::time::Instant::now();
    let stats = HttpProber::new(true)
        .run(
            h,
            &sbx.base_url(),
            &vars(&cfg),
            &mut r,
            Duration::from_millis(2500),
        )
        .await;
    let took = started.elapsed();
    assert_eq!(r.outcome, Outcome::Fail, "{r:?}");
    assert!(
        r.error.as_deref().unwrap().contains("HTTP 429"),
        "{:?}",
        r.error
    );
    // The sandbox answers Retry-After: 1; within 2.5 s: tries at 0 s, 1 s, 2 s.
    assert_eq!(stats.rate_limit_hits, 3, "{r:#?}");
    assert!(
        took >= Duration::from_secs(2),
        "waited for Retry-After: {took:?}"
    );
    assert_eq!(
        r.steps
            .iter()
            .filter(|s| s.name.ends_with("(retried)"))
            .count(),
        2
    );
    sbx.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_route_is_a_timeout_failure() {
    let dir = tempfile::tempdir().unwrap();
    let sbx = sqlite_sandbox(dir.path(), PASSWORD).await;
    let cfg = example(&[]);
    let h = http_check(&cfg, "auth_health");
    set_faults(
        &sbx.base_url(),
        json!({"kind": "hang", "route": "/svc/auth/*"}),
    )
    .await;
    let mut r = run(&h.name);
    HttpProber::new(true)
        .run(
            h,
            &sbx.base_url(),
            &vars(&cfg),
            &mut r,
            Duration::from_millis(400),
        )
        .await;
    assert_eq!(r.outcome, Outcome::Fail);
    assert!(
        r.error.as_deref().unwrap().contains("no response within"),
        "{:?}",
        r.error
    );
    sbx.shutdown().await;
}

async fn shipped_sql_sources(database_url: &str, synmon_db_url: &str) {
    let sbx = sandbox(database_url, PASSWORD).await;
    let cfg = example(&[("RVP_DATABASE_URL", synmon_db_url)]);
    let src = SqlSource::new(cfg.database_url.as_ref().unwrap()).unwrap();
    for m in &cfg.checks.sql {
        let samples = src
            .query(m, Duration::from_secs(5))
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", m.name));
        assert!(!samples.is_empty(), "{} has values", m.name);
        for s in &samples {
            assert!(s.value.is_finite() && s.value >= 0.0, "{}: {s:?}", m.name);
            assert_eq!(s.labels.len(), m.label_columns.len());
        }
    }
    // A broken query yields no value at all: the metric goes stale, never 0.
    let mut broken = cfg.checks.sql[0].clone();
    for q in broken.queries.values_mut() {
        *q = "SELECT value FROM no_such_table".into();
    }
    let mut r = run("broken");
    assert!(
        src.run(&broken, &mut r, Duration::from_secs(5))
            .await
            .is_none()
    );
    assert_eq!(r.outcome, Outcome::Error);
    assert!(
        !r.error.unwrap().contains("://"),
        "no database URL in errors"
    );
    sbx.shutdown().await;
    sql_source_going_stale_in_the_daemon(synmon_db_url).await;
}

/// Runs `sql` on the database at `url` (SQLite or PostgreSQL).
async fn exec(url: &str, sql: &str) {
    use sqlx::Connection;
    if url.starts_with("sqlite:") {
        let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
            .execute(&mut c)
            .await
            .unwrap();
    } else {
        let mut c = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
            .execute(&mut c)
            .await
            .unwrap();
    }
}

/// The daemon runs a SQL source every second; once its query fails (the table is dropped) the
/// daemon itself marks the metric stale: the gauge is gone from the registry and from
/// `/metrics`, never a 0.
async fn sql_source_going_stale_in_the_daemon(database_url: &str) {
    let dir = tempfile::tempdir().unwrap();
    exec(
        database_url,
        "DROP TABLE IF EXISTS synmon_it_stale; CREATE TABLE synmon_it_stale (value DOUBLE PRECISION); INSERT INTO synmon_it_stale (value) VALUES (97.0)",
    )
    .await;
    let cfg = write_config(
        dir.path(),
        "http://127.0.0.1:9",
        PASSWORD,
        &format!(
            "store:\n  url: sqlite://synmon.db\ndatabase:\n  url: \"{database_url}\"\nchecks:\n  interval: 1s\n  journeys: []\n  sql:\n    - name: stale_probe\n      metric: feed_push_success_rate\n      query: SELECT value FROM synmon_it_stale\n"
        ),
    );
    let d = TestDaemon::spawn(Config::load(&cfg).unwrap()).await;
    let metrics = async || {
        reqwest::get(format!("{}/metrics", d.base_url()))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    eventually(
        "the SQL gauge from the daemon",
        Duration::from_secs(30),
        async || (d.registry().gauge("feed_push_success_rate", &[]) == Some(97.0)).then_some(()),
    )
    .await;
    assert!(metrics().await.contains("feed_push_success_ratio "));

    exec(database_url, "DROP TABLE synmon_it_stale").await;
    eventually(
        "the daemon marking the gauge stale",
        Duration::from_secs(30),
        async || {
            d.registry()
                .gauge("feed_push_success_rate", &[])
                .is_none()
                .then_some(())
        },
    )
    .await;
    // The gauge is marked stale before the run is recorded: wait for the record too.
    eventually(
        "the failed run of the source",
        Duration::from_secs(30),
        async || {
            d.last_run("stale_probe")
                .filter(|r| r.outcome == Outcome::Error)
        },
    )
    .await;
    let text = metrics().await;
    assert!(!text.contains("feed_push_success_ratio "), "{text}");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shipped_sql_sources_read_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("rvp.db").display());
    shipped_sql_sources(&url, &url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shipped_sql_sources_read_postgres() {
    let db = TempPg::create().await;
    shipped_sql_sources(&db.url, &db.url).await;
    db.drop_db().await;
}
