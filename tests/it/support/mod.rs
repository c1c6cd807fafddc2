//! Helpers shared by the integration tests: the daemon in-process (`TestDaemon`) or as the real
//! binary (`Child`), `eventually` for waiting, the sandbox on port 0, temporary PostgreSQL
//! databases, synmon configs written to temp folders, and the browser lock.

mod daemon;
mod eventually;
pub mod grid;
mod process;
pub mod shop;

pub use daemon::TestDaemon;
pub use eventually::eventually;
pub use process::{Child, free_port, get_json, wait_for_api, wait_healthy};

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rvp_sandbox::{Sandbox, SandboxConfig};
use synmon::clock::SystemClock;
use synmon::journey::{Driver, Runner};
use synmon::settings::Config;

/// Browser tests run one at a time: two cores do not run two Chromiums deterministically.
pub static BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub const ADMIN_TOKEN: &str = "test-admin-token";

/// The repo's journeys folder.
pub fn journeys_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("journeys")
}

pub fn postgres_admin_url() -> String {
    std::env::var("SYNMON_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

/// A PostgreSQL database with a random name, dropped by `drop_db`.
pub struct TempPg {
    pub name: String,
    pub url: String,
}

impl TempPg {
    pub async fn create() -> TempPg {
        use sqlx::Connection;
        let admin = postgres_admin_url();
        let name = format!("synmon_it_{}", uuid::Uuid::new_v4().simple());
        let mut c = sqlx::PgConnection::connect(&admin)
            .await
            .expect("PostgreSQL reachable at SYNMON_TEST_POSTGRES_URL");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut c)
            .await
            .expect("create database");
        let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
        TempPg {
            url: format!("{base}/{name}"),
            name,
        }
    }

    pub async fn drop_db(self) {
        use sqlx::Connection;
        let mut c = sqlx::PgConnection::connect(&postgres_admin_url())
            .await
            .expect("PostgreSQL reachable");
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        )))
        .execute(&mut c)
        .await;
    }
}

pub async fn sandbox(database_url: &str, password: &str) -> Sandbox {
    rvp_sandbox::start(SandboxConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        database_url: database_url.to_string(),
        admin_token: Some(ADMIN_TOKEN.to_string()),
        synthetic_password: password.to_string(),
        ..SandboxConfig::default()
    })
    .await
    .expect("sandbox starts")
}

pub async fn sqlite_sandbox(dir: &Path, password: &str) -> Sandbox {
    sandbox(
        &format!("sqlite://{}", dir.join("rvp.db").display()),
        password,
    )
    .await
}

/// Writes a synmon.yaml for `base_url` into `dir` (artifacts and store inside it) and loads it.
pub fn write_config(dir: &Path, base_url: &str, password: &str, extra: &str) -> PathBuf {
    let file = dir.join("synmon.yaml");
    let text = format!(
        "targets:\n  staging:\n    base_url: \"{base_url}\"\ntenant: synthetic\ncredentials:\n  username: synthetic@rvp.test\n  password: \"{password}\"\njourneys: \"{}\"\nartifacts: artifacts\n{extra}",
        journeys_dir().display()
    );
    std::fs::write(&file, text).unwrap();
    file
}

/// Writes `<dir>/<name>`, a shell script that runs `before` (shell lines, may be empty) and then
/// Debian's chromedriver with `args` and the arguments it was given; returns its path, for
/// `webdriver.chromedriver` or `Chromedriver::new`.
pub fn chromedriver_wrapper(dir: &Path, name: &str, before: &str, args: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let script = dir.join(name);
    std::fs::write(
        &script,
        format!("#!/bin/sh\n{before}exec /usr/bin/chromedriver {args} \"$@\"\n"),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script
}

pub fn runner(config: Config) -> (Runner, Arc<Driver>) {
    let config = Arc::new(config);
    let driver = Arc::new(Driver::from_config(&config.webdriver));
    (
        Runner::new(
            config.runner_settings(),
            driver.clone(),
            Arc::new(SystemClock),
        ),
        driver,
    )
}

/// Sets sandbox faults through its admin API.
pub async fn set_faults(base_url: &str, faults: serde_json::Value) {
    synmon::tls::install();
    let r = reqwest::Client::new()
        .post(format!("{base_url}/__sandbox/faults"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&faults)
        .send()
        .await
        .expect("fault API reachable");
    assert!(r.status().is_success(), "fault API said {}", r.status());
}

/// Clears every sandbox fault.
pub async fn clear_faults(base_url: &str) {
    synmon::tls::install();
    let r = reqwest::Client::new()
        .delete(format!("{base_url}/__sandbox/faults"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("fault API reachable");
    assert!(r.status().is_success(), "fault API said {}", r.status());
}
