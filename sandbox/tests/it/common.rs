//! Test harness: one sandbox per test, on SQLite (temp file) or on its own
//! PostgreSQL database (random name, dropped afterwards).

use std::future::Future;
use std::time::Duration;

use reqwest::{Method, StatusCode, header::HeaderMap};
use rvp_sandbox::db::Db;
use rvp_sandbox::{Sandbox, SandboxConfig};
use serde_json::Value;

pub const ADMIN: &str = "test-admin-token";
pub const SYN_EMAIL: &str = "synthetic@rvp.test";
pub const SYN_PASSWORD: &str = "synthetic-demo";
pub const PILOT_EMAIL: &str = "owner@pilot-01.rvp.test";
const PG_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Generates `NAME::sqlite` and `NAME::postgres` tests from `async fn NAME(db_url: String)`.
macro_rules! dual {
    ($($name:ident),* $(,)?) => { $(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                crate::common::run_sqlite(super::$name).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                crate::common::run_pg(super::$name).await
            }
        }
    )* };
}
pub(crate) use dual;

fn init() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn rethrow(res: Result<(), tokio::task::JoinError>) {
    if let Err(e) = res {
        if e.is_panic() {
            std::panic::resume_unwind(e.into_panic());
        }
        panic!("test task failed: {e}");
    }
}

pub async fn run_sqlite<F, Fut>(f: F)
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    init();
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("sandbox.db").display());
    let res = tokio::spawn(f(url)).await;
    drop(dir);
    rethrow(res);
}

pub async fn run_pg<F, Fut>(f: F)
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    init();
    let name = format!("sbx_{}", uuid::Uuid::new_v4().simple());
    let admin = sqlx::PgPool::connect(PG_ADMIN_URL)
        .await
        .expect("PostgreSQL at 127.0.0.1:5432 (trust auth, user postgres) must be running");
    let mut created = false;
    for _ in 0..5 {
        match sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&admin)
            .await
        {
            Ok(_) => {
                created = true;
                break;
            }
            // Concurrent CREATE DATABASE can collide on template1; try again.
            Err(e) => {
                eprintln!("CREATE DATABASE {name}: {e}; retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    assert!(created, "could not create database {name}");
    let url = format!("postgres://postgres@127.0.0.1:5432/{name}");
    let res = tokio::spawn(f(url)).await;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&admin)
    .await
    .expect("drop test database");
    admin.close().await;
    rethrow(res);
}

/// A running sandbox plus an HTTP client that does not follow redirects.
pub struct T {
    pub sb: Option<Sandbox>,
    pub base: String,
    pub http: reqwest::Client,
    pub db_url: String,
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub json: Value,
    pub text: String,
}

impl T {
    pub async fn start(db_url: &str, tweak: impl FnOnce(&mut SandboxConfig)) -> T {
        let mut cfg = SandboxConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            database_url: db_url.to_string(),
            admin_token: Some(ADMIN.into()),
            ..SandboxConfig::default()
        };
        tweak(&mut cfg);
        let sb = rvp_sandbox::start(cfg).await.expect("sandbox starts");
        let base = sb.base_url();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        T {
            sb: Some(sb),
            base,
            http,
            db_url: db_url.to_string(),
        }
    }

    pub async fn stop(mut self) {
        if let Some(sb) = self.sb.take() {
            sb.shutdown().await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn req(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Resp {
        let mut rb = self.http.request(method, self.url(path));
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        Self::read(rb.send().await.expect("request")).await
    }

    pub async fn read(r: reqwest::Response) -> Resp {
        let status = r.status();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap_or_default();
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Resp {
            status,
            headers,
            json,
            text,
        }
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Resp {
        self.req(Method::GET, path, token, None).await
    }

    pub async fn token(&self, email: &str, password: &str) -> String {
        let r = self
            .req(
                Method::POST,
                "/api/login",
                None,
                Some(serde_json::json!({ "email": email, "password": password })),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "login {email}: {}", r.text);
        r.json["token"].as_str().unwrap().to_string()
    }

    pub async fn syn(&self) -> String {
        self.token(SYN_EMAIL, SYN_PASSWORD).await
    }

    pub async fn pilot(&self) -> String {
        self.token(PILOT_EMAIL, rvp_sandbox::seed::PILOT_PASSWORD)
            .await
    }

    /// Calls the fault API with the admin token.
    pub async fn faults(&self, method: Method, body: Option<Value>) -> Resp {
        self.req(method, "/__sandbox/faults", Some(ADMIN), body)
            .await
    }

    pub async fn fault(&self, f: Value) {
        let r = self.faults(Method::POST, Some(f.clone())).await;
        assert_eq!(r.status, StatusCode::OK, "adding fault {f}: {}", r.text);
    }

    /// Session cookie for the pages, via the login form.
    pub async fn cookie(&self, email: &str, password: &str) -> String {
        let r = self
            .http
            .post(self.url("/login"))
            .form(&[("email", email), ("password", password)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        let set = r.headers()["set-cookie"].to_str().unwrap().to_string();
        set.split(';').next().unwrap().to_string()
    }

    pub async fn page(&self, path: &str, cookie: &str) -> Resp {
        let r = self
            .http
            .get(self.url(path))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap();
        Self::read(r).await
    }

    /// A separate connection to the sandbox's database, for checking rows.
    pub async fn db(&self) -> Db {
        Db::connect(&self.db_url).await.expect("test db connection")
    }

    /// Polls a feed job until `done(job)` or the deadline.
    pub async fn wait_job(
        &self,
        tenant: &str,
        token: &str,
        id: &str,
        deadline: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let start = tokio::time::Instant::now();
        loop {
            let r = self
                .get(&format!("/api/t/{tenant}/feed-jobs/{id}"), Some(token))
                .await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.text);
            if done(&r.json) {
                return r.json;
            }
            assert!(
                start.elapsed() < deadline,
                "job {id} did not reach the expected state in {deadline:?}: {}",
                r.json
            );
            tokio::time::sleep(Duration::from_millis(15)).await;
        }
    }
}

/// Runs a scalar query with text parameters against either dialect.
pub async fn scalar_i64(db: &Db, sql: &'static str, args: &[&str]) -> i64 {
    match db {
        Db::Sqlite(p) => {
            let mut q = sqlx::query_scalar::<_, i64>(sql);
            for a in args {
                q = q.bind(a.to_string());
            }
            q.fetch_one(p).await.expect(sql)
        }
        Db::Pg(p) => {
            let mut q = sqlx::query_scalar::<_, i64>(sql);
            for a in args {
                q = q.bind(a.to_string());
            }
            q.fetch_one(p).await.expect(sql)
        }
    }
}

pub async fn scalar_text(db: &Db, sql: &'static str, args: &[&str]) -> Option<String> {
    match db {
        Db::Sqlite(p) => {
            let mut q = sqlx::query_scalar::<_, Option<String>>(sql);
            for a in args {
                q = q.bind(a.to_string());
            }
            q.fetch_optional(p).await.expect(sql).flatten()
        }
        Db::Pg(p) => {
            let mut q = sqlx::query_scalar::<_, Option<String>>(sql);
            for a in args {
                q = q.bind(a.to_string());
            }
            q.fetch_optional(p).await.expect(sql).flatten()
        }
    }
}

pub fn assert_json_error(r: &Resp, status: StatusCode) {
    assert_eq!(r.status, status, "body: {}", r.text);
    assert!(
        r.json["error"].as_str().is_some_and(|e| !e.is_empty()),
        "expected a JSON error body, got: {}",
        r.text
    );
}
