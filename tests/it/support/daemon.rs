//! `TestDaemon`: the daemon in-process, the one way a test starts it. It listens on port 0 and
//! stores where its config says (tests write configs into a temporary folder, so the store is
//! temporary too). Tests read the daemon only through the accessors below, so a change of the
//! daemon's internals changes this file, not the scenarios.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use synmon::clock::{Clock, SystemClock};
use synmon::daemon::{Daemon, Options};
use synmon::journey::Driver;
use synmon::metrics::Registry;
use synmon::run::RunResult;
use synmon::settings::Config;
use synmon::store::Store;
use synmon::view::Alerting;

use super::eventually;

pub struct TestDaemon {
    daemon: Daemon,
}

impl TestDaemon {
    /// Options for tests: port 0, every check at once (no start offsets), rules evaluated and
    /// notifications delivered only when the test asks (`evaluate_now`, `notify_now`).
    pub fn options() -> Options {
        Options {
            listen: Some("127.0.0.1:0".parse().unwrap()),
            no_offsets: true,
            manual_evaluation: true,
            ..Options::default()
        }
    }

    /// Starts `config` with [`TestDaemon::options`] on the system clock.
    pub async fn spawn(config: Config) -> TestDaemon {
        Self::spawn_with(config, Self::options(), Arc::new(SystemClock)).await
    }

    /// Starts `config` with the given options and clock; listens on port 0 unless the options
    /// say where.
    pub async fn spawn_with(
        config: Config,
        mut options: Options,
        clock: Arc<dyn Clock>,
    ) -> TestDaemon {
        options
            .listen
            .get_or_insert_with(|| "127.0.0.1:0".parse().unwrap());
        let daemon = Daemon::start(config, options, clock)
            .await
            .expect("the daemon starts");
        TestDaemon { daemon }
    }

    pub fn addr(&self) -> SocketAddr {
        self.daemon.addr
    }

    /// `http://127.0.0.1:N`, the daemon's HTTP server.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.daemon.addr)
    }

    /// The last finished run of `check`, if any.
    pub fn last_run(&self, check: &str) -> Option<RunResult> {
        self.daemon
            .shared
            .last
            .read()
            .expect("last-run lock")
            .get(check)
            .cloned()
    }

    /// The last finished run of every check that has one, by check name.
    pub fn last_runs(&self) -> std::collections::HashMap<String, RunResult> {
        self.daemon
            .shared
            .last
            .read()
            .expect("last-run lock")
            .clone()
    }

    /// Waits (up to `timeout`) for a finished run of `check` whose run id is not `after`.
    pub async fn next_run(&self, check: &str, after: Option<&str>, timeout: Duration) -> RunResult {
        eventually(&format!("a new run of {check}"), timeout, async || {
            self.last_run(check)
                .filter(|r| Some(r.run_id.as_str()) != after)
        })
        .await
    }

    pub fn registry(&self) -> &Registry {
        &self.daemon.shared.registry
    }

    pub fn store(&self) -> &Store {
        &self.daemon.shared.store
    }

    /// The evaluator's alert state, locked (tests may read or plant state).
    pub async fn alerting(&self) -> tokio::sync::MutexGuard<'_, Alerting> {
        self.daemon.shared.alerting.lock().await
    }

    /// The config in force (after reloads).
    pub fn config(&self) -> Arc<Config> {
        self.daemon.shared.config()
    }

    /// The daemon's chromedriver (to open a second session on it).
    pub fn driver(&self) -> Arc<Driver> {
        self.daemon
            .shared
            .driver
            .read()
            .expect("driver lock")
            .clone()
    }

    pub async fn evaluate_now(&self) -> Vec<synmon::rules::eval::Transition> {
        self.daemon.evaluate_now().await
    }

    pub async fn notify_now(
        &self,
    ) -> Result<synmon::notify::deliver::Pass, synmon::store::StoreError> {
        self.daemon.notify_now().await
    }

    /// Stops gracefully, as SIGTERM does.
    pub async fn stop(self) {
        self.daemon.shutdown().await
    }
}
