//! What a run in flight costs in memory: the daemon boxes each run's future, so its size is what
//! every probe in flight holds. A `match` over the kinds is as large as its largest arm (the
//! journey's, which keeps a whole browser conversation), and an HTTP probe carrying that was
//! 55 KB instead of 3 (BENCHMARKS.md, "Peak RSS, session 14").

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use synmon::checks::{CheckDef, Context, HttpProber};
use synmon::clock::{Clock, SystemClock};
use synmon::journey::{Driver, Runner, Vars};
use synmon::run::CheckKind;
use synmon::settings::Config;

#[tokio::test]
async fn a_probes_run_does_not_carry_a_journeys_future_state() {
    let cfg = Config::load(Path::new("synmon.example.yaml")).unwrap();
    let target = cfg.targets.values().next().unwrap().clone();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let driver = Arc::new(Driver::from_config(&cfg.webdriver));
    let runner = Runner::new(cfg.runner_settings(), driver, clock.clone());
    let http = HttpProber::new(true);
    let vars = Vars::for_target(&cfg.identity(), &target);
    let cx = Context::standalone(
        &cfg.location,
        &cfg.journeys,
        &target,
        &vars,
        &*clock,
        &runner,
        &http,
    );
    let defs = cfg.checks.defs();
    let t = Duration::from_secs(1);
    let journey = defs
        .iter()
        .find_map(|d| match d {
            CheckDef::Journey(j) => Some(j),
            _ => None,
        })
        .unwrap();
    // The journey's own future is large (tens of KB); boxed apart, it is not in the others'.
    let own = std::mem::size_of_val(&synmon::checks::Check::run(journey, &cx, t));
    assert!(own > 16 * 1024, "a journey's future is {own} bytes");
    let has = |k: CheckKind| defs.iter().any(|d| d.kind() == k);
    assert!(has(CheckKind::Http) && has(CheckKind::Sql));
    for d in &defs {
        let size = std::mem::size_of_val(&d.run(&cx, t));
        assert!(
            size < 8 * 1024,
            "{:?} {}: a run's future is {size} bytes",
            d.kind(),
            d.name()
        );
    }
}
