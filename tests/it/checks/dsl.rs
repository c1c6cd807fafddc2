//! The journey language beyond the RVP journeys, against a second app ("Corner Shop",
//! `support::shop`), in real Chromium through real chromedriver and the real runner: every
//! action and assertion the language grew (`script`, `hover`, `upload`, `frame`, `switch_to`,
//! `set_cookie`, `set_storage`, `clear_cookies`, `assert`, `wait_for_request`, `assert_url` /
//! `assert_text` with `equals`/`contains`/`matches`) passes on the shop, and each assertion
//! fails with a message naming the step, the selector, what was expected and what was there,
//! and a screenshot. The config has no `tenant` and no `credentials`: the shop has neither.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use synmon::Outcome;
use synmon::config::Target;
use synmon::journey::{Driver, RunResult, Runner, Timing};
use synmon::settings::Config;

use crate::support::shop::{Shop, shop};
use crate::support::*;

/// The shop's journeys, in the test tree.
fn shop_journeys() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/checks/shop/journeys")
}

fn describe(r: &RunResult) -> String {
    serde_json::to_string_pretty(r).unwrap()
}

struct Fixture {
    _dir: tempfile::TempDir,
    _shop: Shop,
    cfg: Config,
    target: Target,
    runner: Runner,
    driver: Arc<Driver>,
}

/// The shop and a config for it (no tenant, no credentials) whose journeys folder is
/// `journeys`.
async fn fixture(journeys: &Path) -> Fixture {
    fixture_with(journeys, "").await
}

async fn fixture_with(journeys: &Path, extra: &str) -> Fixture {
    let shop = shop().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("synmon.yaml");
    std::fs::write(
        &file,
        format!(
            "targets:\n  shop:\n    base_url: \"{}\"\njourneys: \"{}\"\nartifacts: artifacts\n{extra}",
            shop.base_url,
            journeys.display()
        ),
    )
    .unwrap();
    let cfg = Config::load(&file).unwrap_or_else(|e| panic!("{e}"));
    assert!(cfg.tenant.is_none() && cfg.credentials.is_none());
    let target = cfg.target(None).unwrap().clone();
    let (runner, driver) = runner(cfg.clone());
    Fixture {
        _dir: dir,
        _shop: shop,
        cfg,
        target,
        runner,
        driver,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shop_journeys_pass_with_every_new_action_and_assertion() {
    let _b = BROWSER.lock().await;
    let f = fixture(&shop_journeys()).await;
    let mut kinds = std::collections::BTreeSet::new();
    for name in ["search", "order", "upload", "storage"] {
        let j = f.cfg.journey(name).unwrap();
        let r = f.runner.run(&j, &f.target).await;
        assert_eq!(r.outcome, Outcome::Pass, "{name}: {}", describe(&r));
        assert_eq!(r.steps.len(), j.steps.len(), "{name}: {}", describe(&r));
        kinds.extend(r.steps.iter().map(|s| s.action.clone()));
        let step = |n: &str| r.steps.iter().find(|s| s.name == n).unwrap();
        match name {
            // A hover with `until` is one interaction timed in the page, like a click.
            "search" => {
                let hover = step("open departments");
                assert_eq!(hover.timing, Timing::InPage, "{}", describe(&r));
                assert!(hover.timed);
                // A page script runs by the page's clock.
                assert!(
                    r.steps
                        .iter()
                        .filter(|s| s.action == "script")
                        .all(|s| s.timing == Timing::InPage),
                    "{}",
                    describe(&r)
                );
                // The search waits for results the server sends late.
                let search = step("search");
                assert!(
                    search.latency_ms >= crate::support::shop::SEARCH_DELAY.as_millis() as f64,
                    "{}",
                    describe(&r)
                );
            }
            "upload" => {
                let up = step("choose the order file");
                assert_eq!(up.timing, Timing::InPage, "{}", describe(&r));
            }
            "order" => {
                let place = step("place order");
                assert_eq!(place.timing, Timing::InPageNavigation, "{}", describe(&r));
            }
            _ => {}
        }
    }
    for k in [
        "script",
        "hover",
        "upload",
        "frame",
        "switch_to",
        "set_cookie",
        "set_storage",
        "clear_cookies",
        "assert",
        "wait_for_request",
        "assert_url",
        "assert_text",
    ] {
        assert!(
            kinds.contains(k),
            "no shop journey step is a `{k}`: {kinds:?}"
        );
    }
    f.driver.shutdown().await;
}

/// One failing assertion: the journey's steps, the failing step's name, and the parts its
/// message must hold (selector, expected, actual).
struct Failing {
    steps: &'static str,
    step: &'static str,
    message: &'static [&'static str],
}

const FAILING: &[Failing] = &[
    Failing {
        steps: "  - goto: /order\n  - fill: { selector: \"#item\", value: tea }\n  - click: \"#place\"\n    until: { selector: \"#confirmation\" }\n  - assert_url: { equals: \"{base_url}/done/R999999\" }\n    name: exact url\n",
        step: "exact url",
        message: &[
            "URL is \"",
            "/done/R123453\", expected \"",
            "/done/R999999\"",
        ],
    },
    Failing {
        steps: "  - goto: /order\n  - assert_url: { matches: \"/done/R[0-9]{6}$\" }\n    name: url pattern\n",
        step: "url pattern",
        message: &[
            "URL \"",
            "/order\" does not match regex \"/done/R[0-9]{6}$\"",
        ],
    },
    Failing {
        steps: "  - goto: /\n  - assert_text: { selector: h1, matches: \"^Tea\" }\n    name: heading\n",
        step: "heading",
        message: &["h1: text \"Corner Shop\" does not match regex \"^Tea\""],
    },
    Failing {
        steps: "  - goto: /\n  - fill: { selector: \"#q\", value: tea }\n  - click: \"#go\"\n  - assert: { selector: li.result, count: 5 }\n    name: five results\n    timeout: 2s\n",
        step: "five results",
        message: &["li.result: expected count 5, found 3 (after 2000 ms)"],
    },
    Failing {
        steps: "  - goto: /\n  - assert: { selector: \"#docs\", attribute: { name: href, matches: \"^/docs/v3\" } }\n    name: docs link\n    timeout: 1s\n",
        step: "docs link",
        message: &[
            "#docs: attribute `href` \"/docs/v2\" does not match regex \"^/docs/v3\" (after 1000 ms)",
        ],
    },
    Failing {
        steps: "  - goto: /\n  - assert: { selector: \"#buy\", enabled: true }\n    name: buy enabled\n    timeout: 1s\n",
        step: "buy enabled",
        message: &["#buy: expected enabled, is disabled (after 1000 ms)"],
    },
    Failing {
        steps: "  - goto: /\n  - assert: { selector: \"#terms\", checked: true }\n    name: terms checked\n    timeout: 1s\n",
        step: "terms checked",
        message: &["#terms: expected checked, is unchecked (after 1000 ms)"],
    },
    Failing {
        steps: "  - goto: /\n  - assert: { selector: \"#submenu\", visible: true }\n    name: submenu shown\n    timeout: 1s\n",
        step: "submenu shown",
        message: &["#submenu: expected visible, is hidden (after 1000 ms)"],
    },
    Failing {
        steps: "  - goto: /\n  - script:\n      js: return window.shop.cartTotal();\n      expect: { pointer: /items/0/qty, equals: 3 }\n    name: cart quantity\n",
        step: "cart quantity",
        message: &["the result's /items/0/qty is 2, expected 3"],
    },
    Failing {
        steps: "  - goto: /\n  - script:\n      js: |\n        var cart = window.shop.cartTotal();\n        if (cart.total > 10) throw new Error('cart too big: ' + cart.total);\n        return cart;\n    name: cart check\n",
        step: "cart check",
        message: &["the script threw Error: cart too big: 42.5 (line 2 of `js`)"],
    },
    Failing {
        steps: "  - goto: /\n  - wait_for_request: { url_matches: \"/api/search\", status: 200 }\n    name: search request\n    timeout: 1s\n",
        step: "search request",
        message: &[
            "no request matching regex \"/api/search\" with status 200 after 1000 ms (latest: http://",
        ],
    },
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_assertion_fails_with_step_selector_expected_actual_and_a_screenshot() {
    let _b = BROWSER.lock().await;
    let journeys = tempfile::tempdir().unwrap();
    for (i, case) in FAILING.iter().enumerate() {
        std::fs::write(
            journeys.path().join(format!("fail{i:02}.yaml")),
            format!("name: fail{i:02}\nsteps:\n{}", case.steps),
        )
        .unwrap();
    }
    let f = fixture(journeys.path()).await;
    for (i, case) in FAILING.iter().enumerate() {
        let j = f.cfg.journey(&format!("fail{i:02}")).unwrap();
        let r = f.runner.run(&j, &f.target).await;
        let d = describe(&r);
        assert_eq!(r.outcome, Outcome::Fail, "{}: {d}", case.step);
        assert_eq!(r.failed_step.as_deref(), Some(case.step), "{d}");
        let error = r.error.clone().unwrap_or_default();
        assert!(
            error.starts_with(&format!("{}: ", case.step)),
            "the message names the step: {error}"
        );
        for part in case.message {
            assert!(error.contains(part), "{:?} not in {error:?}", part);
        }
        let shot = r
            .artifacts
            .iter()
            .find(|a| a.kind == "screenshot")
            .unwrap_or_else(|| panic!("{}: no screenshot: {d}", case.step));
        let png = std::fs::read(&shot.path).unwrap_or_else(|e| panic!("{}: {e}", shot.path));
        assert!(png.starts_with(b"\x89PNG"), "{}: not a PNG", shot.path);
    }
    f.driver.shutdown().await;
}

/// A `fill` replaces what a field holds (WebDriver's Element Clear, then typing) and types into
/// an empty field without the Clear, which would fire nothing there (chromedriver's clear of an
/// empty field sends no event) and cost a round trip. The page sees the same events either way:
/// recorded per field, with the chromedriver's own log counting the Clear commands it got.
/// The shop with the one journey `yaml` (file `name`.yaml) and chromedriver writing its own
/// command log, to count what a run sent: the fixture, the journeys folder (kept while the test
/// runs) and the log's path. `webdriver`: more `webdriver:` keys, each line indented.
async fn logged_fixture(
    name: &str,
    yaml: &str,
    webdriver: &str,
) -> (Fixture, tempfile::TempDir, PathBuf) {
    let journeys = tempfile::tempdir().unwrap();
    std::fs::write(journeys.path().join(format!("{name}.yaml")), yaml).unwrap();
    let log = journeys.path().join("chromedriver.log");
    let wrapper = chromedriver_wrapper(
        journeys.path(),
        "logging-chromedriver",
        "",
        &format!("--log-path={} --log-level=INFO", log.display()),
    );
    let f = fixture_with(
        journeys.path(),
        &format!(
            "webdriver:\n  chromedriver: \"{}\"\n{webdriver}",
            wrapper.display()
        ),
    )
    .await;
    (f, journeys, log)
}

/// Runs the journey `yaml` once through a chromedriver that keeps its command log; returns the
/// run and that log.
async fn run_logged(name: &str, yaml: &str, webdriver: &str) -> (RunResult, String) {
    let (f, _journeys, log) = logged_fixture(name, yaml, webdriver).await;
    let j = f.cfg.journey(name).unwrap();
    let r = f.runner.run(&j, &f.target).await;
    f.driver.shutdown().await;
    let log = std::fs::read_to_string(&log).unwrap();
    (r, log)
}

/// The steps as chromedriver commands (`webdriver.local_steps: webdriver`), for the tests that
/// count what chromedriver is sent; by default a local browser's steps go around it (see
/// [`by_default_a_local_browsers_steps_go_around_chromedriver_with_the_same_results`]).
const WEBDRIVER_STEPS: &str = "  local_steps: webdriver\n";

const FILLS: &str = r##"name: fills
steps:
  - goto: /order
  - script:
      js: |
        document.body.insertAdjacentHTML('beforeend',
          '<input id="full" value="old text"><input id="empty"><textarea id="area">kept?</textarea>');
        window.seen = [];
        ['full', 'empty', 'area'].forEach(function (id) {
          ['focus', 'blur', 'change'].forEach(function (t) {
            document.getElementById(id).addEventListener(t, function () { window.seen.push(id + ':' + t); });
          });
        });
        return true;
  - fill: { selector: "#empty", value: "typed" }
  - fill: { selector: "#full", value: "new" }
  - fill: { selector: "#area", value: "replaced" }
  - script:
      js: |
        return { empty: document.getElementById('empty').value,
                 full: document.getElementById('full').value,
                 area: document.getElementById('area').value,
                 seen: window.seen.join(' ') };
      expect: { equals: { empty: typed, full: new, area: replaced, seen: "empty:focus empty:change empty:blur full:focus full:change full:blur full:focus full:change full:blur area:focus area:change area:blur area:focus" } }
    name: values and events
"##;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fill_replaces_a_fields_text_and_sends_no_clear_for_an_empty_one() {
    let _b = BROWSER.lock().await;
    // chromedriver with its command log, to count the Clear commands it was sent.
    let (r, log) = run_logged("fills", FILLS, WEBDRIVER_STEPS).await;
    assert_eq!(r.outcome, Outcome::Pass, "{}", describe(&r));
    assert_eq!(
        log.matches("COMMAND ClearElement").count(),
        2,
        "one Clear each for the two fields that held text"
    );
    assert_eq!(log.matches("COMMAND TypeElement").count(), 3);
}

const LEAN: &str = r##"name: lean
steps:
  - goto: /order
  - fill: { selector: "#item", value: tea }
  - click: "#place"
    name: place order
    until: { selector: "#confirmation" }
  - goto: /order
    name: back to the form
    until: { selector: "#place" }
"##;

/// What a run sends the browser, counted in chromedriver's own command log: the page scripts
/// that end a step (the navigation's timing after a `goto`, the await of an action) find the
/// next action's element, so no action here looks for its element on its own (ready.js is
/// never sent); and one new-document watch per run covers both steps that cross to a new
/// document (the submit and the `goto` with `until`), where each used to add its own. The
/// watches go through chromedriver where the browser's contexts do (`local_protocol: bidi`),
/// so that is where they are counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_finds_each_element_ahead_and_watches_new_documents_once() {
    lean_runs("  sessions: 1\n  local_protocol: bidi\n", 2).await;
}

/// The same with the contexts over the browser's own DevTools socket (the default) and the
/// steps as chromedriver commands: the elements found ahead, both navigations timed in the
/// pages (the watch works), none of the watch through chromedriver.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_devtools_socket_a_run_finds_each_element_ahead_and_times_both_navigations() {
    lean_runs("  sessions: 1\n  local_steps: webdriver\n", 0).await;
}

/// Two runs of `LEAN` with `webdriver` (extra lines of the section): both pass, both
/// navigations timed in the page; then chromedriver's log shows one fill and one click per
/// run, no ready.js, and `watches` new-document watches.
async fn lean_runs(webdriver: &str, watches: usize) {
    let _b = BROWSER.lock().await;
    let (f, _journeys, log) = logged_fixture("lean", LEAN, webdriver).await;
    let j = f.cfg.journey("lean").unwrap();
    for _ in 0..2 {
        let r = f.runner.run(&j, &f.target).await;
        assert_eq!(r.outcome, Outcome::Pass, "{}", describe(&r));
        for step in ["place order", "back to the form"] {
            let s = r.steps.iter().find(|s| s.name == step).unwrap();
            assert_eq!(
                s.timing,
                Timing::InPageNavigation,
                "{step}: {}",
                describe(&r)
            );
            assert!(s.latency_ms > 0.0, "{step}: {}", describe(&r));
        }
    }
    f.driver.shutdown().await;
    let log = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        log.matches("COMMAND TypeElement").count(),
        2,
        "one fill per run"
    );
    assert_eq!(log.matches("COMMAND ClickElement").count(), 2);
    assert_eq!(
        log.matches("answer now, and the caller looks again in the next one")
            .count(),
        0,
        "ready.js sent: an element was not found ahead"
    );
    assert_eq!(
        log.matches("var watches = ").count(),
        watches,
        "new-document watches through chromedriver"
    );
}

/// The WebDriver commands of steps (scripts, element commands, navigations) in chromedriver's
/// log.
fn step_commands(log: &str) -> usize {
    [
        "COMMAND ExecuteScript",
        "COMMAND ExecuteAsyncScript",
        "COMMAND ClickElement",
        "COMMAND TypeElement",
        "COMMAND ClearElement",
        "COMMAND Navigate",
    ]
    .iter()
    .map(|c| log.matches(c).count())
    .sum()
}

/// By default (`local_steps: devtools`) a local browser's steps go over the DevTools socket
/// synmon holds for the run's context, around chromedriver, with the results the tests above
/// get over WebDriver: the fills' values and focus/change/blur events (asserted by the
/// journey's own script step), both navigations of a run timed in the pages with each element
/// found ahead, a button re-rendered after it was found clicked all the same, a navigating
/// submit awaited into its new document. chromedriver's log shows none of their commands.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn by_default_a_local_browsers_steps_go_around_chromedriver_with_the_same_results() {
    let _b = BROWSER.lock().await;
    for (name, yaml) in [
        ("fills", FILLS),
        ("lean", LEAN),
        ("rerender", RERENDER),
        ("confirmed", CONFIRMED),
    ] {
        let (f, _journeys, log) = logged_fixture(name, yaml, "  sessions: 1\n").await;
        let j = f.cfg.journey(name).unwrap();
        for _ in 0..2 {
            let r = f.runner.run(&j, &f.target).await;
            assert_eq!(r.outcome, Outcome::Pass, "{name}: {}", describe(&r));
            let timed = |step: &str, timing: Timing| {
                let s = r.steps.iter().find(|s| s.name == step).unwrap();
                assert_eq!(s.timing, timing, "{name} {step}: {}", describe(&r));
            };
            match name {
                "lean" => {
                    timed("place order", Timing::InPageNavigation);
                    timed("back to the form", Timing::InPageNavigation);
                }
                "rerender" => timed("next", Timing::InPage),
                "confirmed" => {
                    timed("place order", Timing::InPageNavigation);
                    timed("later", Timing::InPage);
                }
                _ => {}
            }
        }
        f.driver.shutdown().await;
        let log = std::fs::read_to_string(&log).unwrap();
        assert_eq!(step_commands(&log), 0, "{name}: steps sent to chromedriver");
    }
}

const SELECTS: &str = r##"name: selects
steps:
  - goto: /order
  - script:
      js: |
        document.body.insertAdjacentHTML('beforeend',
          '<select id="size"><option value="s">Small</option><option value="l">Large</option></select>');
        return true;
  - select: { selector: "#size", value: l }
  - script:
      js: return document.getElementById('size').value;
      expect: { equals: l }
"##;

/// A journey with a step only chromedriver sends (here `select`, which goes through its
/// element commands) runs over WebDriver as a whole, also under `local_steps: devtools`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journey_with_a_step_only_chromedriver_sends_runs_over_webdriver() {
    let _b = BROWSER.lock().await;
    let (r, log) = run_logged("selects", SELECTS, "  sessions: 1\n").await;
    assert_eq!(r.outcome, Outcome::Pass, "{}", describe(&r));
    assert!(
        log.contains("COMMAND Navigate"),
        "the goto went to chromedriver"
    );
    assert!(
        log.contains("COMMAND ExecuteScript"),
        "the scripts went to chromedriver"
    );
}

const NOISY: &str = r##"name: noisy
steps:
  - goto: /order
  - script:
      js: |
        console.error('direct-console-marker', 42);
        setTimeout(function () { throw new Error('direct-uncaught-marker'); }, 0);
        window.answered = window.confirm('sure?');
        return window.answered;
      expect: { equals: false }
  - fill: { selector: "#item", value: tea }
  - script:
      js: |
        window.addEventListener('beforeunload', function (e) { e.preventDefault(); e.returnValue = ''; });
        return true;
  - goto: /
    name: leave the edited form
  - assert_text: { selector: "#missing", equals: never }
    timeout: 300ms
"##;

/// Over the DevTools socket the run still has its browser console (WebDriver's browser log:
/// console messages and uncaught errors, in the failed run's `console.log` artifact) and a
/// dialog the page opens is dismissed (WebDriver's `unhandledPromptBehavior: dismiss`), noted
/// in that log, instead of holding the page; a `beforeunload` prompt (a page guarding typed
/// input) is accepted, as WebDriver does, so a `goto` away from it goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_devtools_socket_the_console_is_kept_and_dialogs_are_dismissed() {
    let _b = BROWSER.lock().await;
    let (f, _journeys, log) = logged_fixture("noisy", NOISY, "  sessions: 1\n").await;
    let r = f
        .runner
        .run(&f.cfg.journey("noisy").unwrap(), &f.target)
        .await;
    assert_eq!(r.outcome, Outcome::Fail, "{}", describe(&r));
    let leave = r
        .steps
        .iter()
        .find(|s| s.name == "leave the edited form")
        .unwrap_or_else(|| panic!("no step leaving the form: {}", describe(&r)));
    assert_eq!(leave.outcome, Outcome::Pass, "{}", describe(&r));
    assert_eq!(
        r.steps.last().map(|s| s.action.as_str()),
        Some("assert_text"),
        "{}",
        describe(&r)
    );
    let console = r
        .artifacts
        .iter()
        .find(|a| a.kind == "console")
        .unwrap_or_else(|| panic!("no console artifact: {}", describe(&r)));
    let text = std::fs::read_to_string(&console.path).unwrap();
    for part in [
        "SEVERE direct-console-marker 42",
        "direct-uncaught-marker",
        "a confirm dialog was dismissed: sure?",
        "a beforeunload dialog was accepted",
    ] {
        assert!(
            text.contains(part),
            "{part:?} not in the console log: {text}"
        );
    }
    f.driver.shutdown().await;
    let log = std::fs::read_to_string(&log).unwrap();
    assert_eq!(step_commands(&log), 0, "steps sent to chromedriver");
}

const POPUP: &str = r##"name: popup
steps:
  - goto: /
  - click: "#help"
  - switch_to: new_window
  - goto: /order
    name: popup form
    until: { selector: "#place" }
  - fill: { selector: "#item", value: tea }
  - click: "#place"
    name: place order in the popup
    until: { selector: "#confirmation" }
"##;

/// A window the run's page opened is watched as the run's own tab is: its navigations (a
/// `goto` and a submit, each with an `until` on the next document) are timed in the page, over
/// the local browser's DevTools socket (the default) and over BiDi.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn navigations_in_a_window_the_page_opened_are_timed_in_the_page() {
    let _b = BROWSER.lock().await;
    for webdriver in ["  sessions: 1\n", "  sessions: 1\n  local_protocol: bidi\n"] {
        let (f, _journeys, _log) = logged_fixture("popup", POPUP, webdriver).await;
        let j = f.cfg.journey("popup").unwrap();
        for _ in 0..2 {
            let r = f.runner.run(&j, &f.target).await;
            assert_eq!(r.outcome, Outcome::Pass, "{webdriver}: {}", describe(&r));
            for step in ["popup form", "place order in the popup"] {
                let s = r.steps.iter().find(|s| s.name == step).unwrap();
                assert_eq!(
                    s.timing,
                    Timing::InPageNavigation,
                    "{webdriver}{step}: {}",
                    describe(&r)
                );
            }
        }
        f.driver.shutdown().await;
    }
}

const CONFIRMED: &str = r##"name: confirmed
steps:
  - goto: /order
  - fill: { selector: "#item", value: tea }
  - click: "#place"
    name: place order
    until: { selector: "#confirmation" }
  - wait_for: { selector: "#confirmation" }
    name: confirmed
  - script:
      js: |
        document.body.insertAdjacentHTML('beforeend', '<button id="go">Go</button>');
        document.getElementById('go').addEventListener('click', function () {
          document.body.insertAdjacentHTML('beforeend', '<p id="now">now</p>');
          setTimeout(function () {
            document.body.insertAdjacentHTML('beforeend', '<p id="later">later</p>');
          }, 150);
        });
        return true;
  - click: "#go"
    until: { selector: "#now" }
  - wait_for: { selector: "#later" }
    name: later
"##;

/// The await of an action that navigated runs, most often, on the new document already (a
/// click's command returns once the page it loaded has loaded): it then awaits that document
/// in the same call, where a second script (nav_await.js) used to; and a `wait_for` right
/// after an action is checked by that action's await as it ends, so one that holds costs no
/// command. One that does not hold yet is waited for as before, by the page's clock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_navigating_action_is_awaited_in_one_call_and_a_wait_for_after_it_needs_none() {
    let _b = BROWSER.lock().await;
    let (r, log) = run_logged(
        "confirmed",
        CONFIRMED,
        &format!("  sessions: 1\n{WEBDRIVER_STEPS}"),
    )
    .await;
    assert_eq!(r.outcome, Outcome::Pass, "{}", describe(&r));
    let step = |name: &str| r.steps.iter().find(|s| s.name == name).unwrap();
    let place = step("place order");
    assert_eq!(place.timing, Timing::InPageNavigation, "{}", describe(&r));
    assert!(place.latency_ms > 0.0, "{}", describe(&r));
    let confirmed = step("confirmed");
    assert_eq!(confirmed.timing, Timing::InPage, "{}", describe(&r));
    assert_eq!(confirmed.latency_ms, 0.0, "held as the submit ended");
    // Shown 150 ms after the click that came before it: not answered ahead, but waited for.
    let later = step("later");
    assert_eq!(later.timing, Timing::InPage, "{}", describe(&r));
    assert!(later.latency_ms >= 100.0, "{}", describe(&r));
    assert_eq!(
        log.matches("Runs on the document an action navigated to")
            .count(),
        0,
        "nav_await.js sent: the submit's new document was awaited in a call of its own"
    );
    assert_eq!(
        log.matches("Waits inside the page for a condition").count(),
        1,
        "wait.js sent for `later` only"
    );
}

const RERENDER: &str = r##"name: rerender
steps:
  - goto: /order
  - script:
      js: |
        document.body.insertAdjacentHTML('beforeend', '<button id="open">Open</button>');
        document.getElementById('open').addEventListener('click', function () {
          // Later than the await reaches the page, so that it sees the first render.
          setTimeout(function () {
            document.body.insertAdjacentHTML('beforeend', '<p id="status">ready</p><button id="next">Next</button>');
            // Re-rendered right after it appeared (a framework's second pass): the button the
            // first render showed is gone before any command can reach it.
            Promise.resolve().then(function () {
              var fresh = document.createElement('button');
              fresh.id = 'next';
              fresh.textContent = 'Next';
              fresh.addEventListener('click', function () {
                document.body.insertAdjacentHTML('beforeend', '<p id="ok">clicked</p>');
              });
              document.getElementById('next').replaceWith(fresh);
            });
          }, 300);
        });
        return true;
  - click: "#open"
    until: { selector: "#status" }
  - click: "#next"
    name: next
    until: { selector: "#ok" }
"##;

/// An element found ahead (by the script that awaited the step before) can be replaced by the
/// page before it goes back as a reference: here the page re-renders the button in the
/// microtask after it appeared, after the await found it and before chromedriver serialized
/// the answer, which then fails as a whole (the one `stale element reference` in chromedriver's
/// log). The step before still gets its in-page time (asked again, without the element) and
/// the next one looks for its element itself and clicks the button the page shows now.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_element_found_ahead_that_the_page_replaced_is_looked_for_again() {
    let _b = BROWSER.lock().await;
    let (r, log) = run_logged("rerender", RERENDER, WEBDRIVER_STEPS).await;
    assert_eq!(r.outcome, Outcome::Pass, "{}", describe(&r));
    let next = r.steps.iter().find(|s| s.name == "next").unwrap();
    assert_eq!(next.timing, Timing::InPage, "{}", describe(&r));
    let open = r.steps.iter().find(|s| s.name == "click #open").unwrap();
    assert_eq!(open.timing, Timing::InPage, "{}", describe(&r));
    assert_eq!(log.matches("COMMAND ClickElement").count(), 2);
    assert_eq!(
        log.matches("RESPONSE ExecuteAsyncScript ERROR stale element reference")
            .count(),
        1,
        "the await's answer with the button found ahead"
    );
    // The run's evidence came with the await of its last action, not in a script of its own.
    let page = r.page.as_ref().expect("the run's page metrics");
    assert!(page.url.ends_with("/order"), "{}", describe(&r));
    assert_eq!(
        log.matches("__synmonEvidence(arguments[0]").count(),
        0,
        "evidence read by a script of its own"
    );
}

/// `viewport`, `device` and `network` apply to their run only: browsers are pooled (one here),
/// and the run after an emulated one, on the same browser, sees a desktop window, no touch
/// screen, the browser's own user agent and an online, unthrottled network.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emulation_applies_to_its_run_and_never_leaks_to_the_next_on_the_same_browser() {
    let _b = BROWSER.lock().await;
    let f = fixture_with(&shop_journeys(), "webdriver:\n  sessions: 1\n").await;
    let f = &f;
    let run = |name: &'static str| {
        let j = f.cfg.journey(name).unwrap();
        async move { f.runner.run(&j, &f.target).await }
    };
    let plain = |r: RunResult| {
        assert_eq!(r.outcome, Outcome::Pass, "{}", describe(&r));
        assert_eq!(r.emulation, None, "{}", describe(&r));
        r
    };
    let first = plain(run("plain").await);
    let mut runs = vec![first];
    for name in ["mobile", "narrow", "slow", "offline"] {
        let r = run(name).await;
        let d = describe(&r);
        let e = r
            .emulation
            .clone()
            .unwrap_or_else(|| panic!("{name}: not recorded: {d}"));
        match name {
            "mobile" => {
                assert_eq!(r.outcome, Outcome::Pass, "{d}");
                assert_eq!(e.device.as_deref(), Some("pixel-7"), "{d}");
                assert_eq!(e.viewport, Some((412, 915)), "{d}");
                assert!(e.mobile, "{d}");
            }
            "narrow" => {
                assert_eq!(r.outcome, Outcome::Pass, "{d}");
                assert_eq!(e.viewport, Some((500, 800)), "{d}");
                assert!(!e.mobile, "{d}");
            }
            "slow" => {
                assert_eq!(r.outcome, Outcome::Pass, "{d}");
                assert_eq!(e.network.as_ref().map(|n| n.latency_ms), Some(1500), "{d}");
                // The document's own load took the added round trip.
                assert!(r.steps[0].latency_ms >= 1500.0, "{d}");
            }
            "offline" => {
                assert_eq!(e.network.as_ref().map(|n| n.offline), Some(true), "{d}");
                assert_eq!(r.outcome, Outcome::Fail, "{d}");
                let error = r.error.clone().unwrap_or_default();
                assert!(error.contains("ERR_INTERNET_DISCONNECTED"), "{d}");
            }
            _ => unreachable!(),
        }
        runs.push(r);
        // The next run, on the same browser, has none of it.
        let after = plain(run("plain").await);
        assert_eq!(after.browser_reused, Some(true), "{}", describe(&after));
        assert!(
            after.steps[0].latency_ms < 1500.0,
            "the run after `{name}` is still throttled: {}",
            describe(&after)
        );
        runs.push(after);
    }
    f.driver.shutdown().await;
}

/// A browser that keeps its tab from one run to the next gets the tab back as found: after
/// `reset_emulation` the tab has the browser's own size, pixel ratio, touch points, user agent
/// and network.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_emulation_leaves_the_tab_as_it_found_it() {
    let _b = BROWSER.lock().await;
    let f = fixture(&shop_journeys()).await;
    let lease = f
        .driver
        .lease(
            std::time::Duration::from_secs(10),
            synmon::journey::webdriver::SCRIPT_TIMEOUT,
        )
        .await
        .unwrap();
    let b = lease.browser;
    let url = format!(
        "{}/layout",
        f.target.base_url.as_str().trim_end_matches('/')
    );
    let read = "return [innerWidth, devicePixelRatio, navigator.maxTouchPoints, navigator.userAgent, navigator.onLine];";
    b.goto(&url, std::time::Duration::from_secs(10))
        .await
        .unwrap();
    let before = b.eval(read).await.unwrap();
    let mut e = synmon::journey::emulation::of_device(
        synmon::journey::emulation::device("pixel-7").unwrap(),
    );
    e.network = Some(synmon::run::NetworkConditions {
        preset: None,
        offline: false,
        latency_ms: 50,
        down_kbps: 5000,
        up_kbps: 5000,
    });
    b.emulate(&e).await.unwrap();
    b.goto(&url, std::time::Duration::from_secs(10))
        .await
        .unwrap();
    let during = b.eval(read).await.unwrap();
    assert_eq!(during[0], 412, "{during}");
    assert!(during[3].as_str().unwrap().contains("Android"), "{during}");
    b.reset_emulation(&e).await.unwrap();
    b.goto(&url, std::time::Duration::from_secs(10))
        .await
        .unwrap();
    let after = b.eval(read).await.unwrap();
    assert_eq!(after, before, "during: {during}");
    f.driver.give_back(b, false);
    f.driver.shutdown().await;
}
