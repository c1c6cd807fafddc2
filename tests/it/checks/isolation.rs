//! Pooled browsers (`webdriver.isolation: context`): each run in a fresh context of its own (a
//! DevTools browser context: a local browser's default `local_protocol`) of a browser kept alive (`clear`: in the browser's one tab, cleared after each
//! run), in real Chromium through real chromedriver. What one run
//! leaves behind (cookies, localStorage, sessionStorage, IndexedDB, a service worker, an HTTP
//! cache entry) is invisible to the next; a crashed or hung browser is replaced.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::http::header;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use synmon::Outcome;
use synmon::config::Target;
use synmon::journey::{Driver, RunResult, Runner};
use synmon::settings::Config;

use crate::support::*;

/// On load: reports in `#state` which traces of an earlier visit it finds, then leaves every
/// one of them, and shows `#done`. The HTTP cache is judged from the resource's own timing: a
/// `transferSize` of 0 is an answer from the cache.
const PAGE: &str = r#"<!doctype html><html><body><div id="state">checking</div><script>
(async () => {
  const has = {};
  has.cookie = document.cookie.includes('iso=1');
  has.local = localStorage.getItem('iso') === '1';
  has.session = sessionStorage.getItem('iso') === '1';
  has.idb = (await indexedDB.databases()).some(d => d.name === 'iso');
  has.sw = (await navigator.serviceWorker.getRegistrations()).length > 0;
  await (await fetch('/cached.txt')).text();
  const e = performance.getEntriesByName(new URL('/cached.txt', location.href).href)[0];
  has.cache = !!e && e.transferSize === 0;
  document.getElementById('state').textContent =
    Object.entries(has).map(([k, v]) => k + '=' + (v ? 'yes' : 'no')).join(' ');
  document.cookie = 'iso=1; max-age=3600; path=/';
  localStorage.setItem('iso', '1');
  sessionStorage.setItem('iso', '1');
  await new Promise((ok, bad) => {
    const r = indexedDB.open('iso', 1);
    r.onupgradeneeded = () => r.result.createObjectStore('s');
    r.onsuccess = () => { r.result.close(); ok(); };
    r.onerror = () => bad(r.error);
  });
  await navigator.serviceWorker.register('/sw.js');
  await navigator.serviceWorker.ready;
  const d = document.createElement('div'); d.id = 'done'; d.textContent = 'done';
  document.body.appendChild(d);
})().catch(e => { document.getElementById('state').textContent = 'error: ' + e; });
</script></body></html>"#;

const FRESH: &str = "cookie=no local=no session=no idb=no sw=no cache=no";
const SEEN: &str = "cookie=yes local=yes session=yes idb=yes sw=yes cache=yes";

/// One visit; `expect`: what `#state` must say.
fn visit(expect: &str) -> String {
    format!(
        "  - goto: /iso\n  - wait_for: {{ selector: \"#done\" }}\n  - assert_text: {{ selector: \"#state\", equals: \"{expect}\" }}\n"
    )
}

struct Pages {
    base_url: String,
    cache_hits: Arc<AtomicUsize>,
    _task: tokio::task::JoinHandle<()>,
}

async fn pages() -> Pages {
    let cache_hits = Arc::new(AtomicUsize::new(0));
    let hits = cache_hits.clone();
    let app = Router::new()
        .route("/iso", get(|| async { Html(PAGE) }))
        .route(
            "/sw.js",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/javascript")],
                    "self.addEventListener('install', () => self.skipWaiting());",
                )
            }),
        )
        .route(
            "/cached.txt",
            get(move || {
                let n = hits.fetch_add(1, Ordering::SeqCst) + 1;
                async move {
                    (
                        [
                            (header::CONTENT_TYPE, "text/plain"),
                            (header::CACHE_CONTROL, "max-age=3600"),
                        ],
                        format!("hit {n}"),
                    )
                        .into_response()
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    Pages {
        base_url: format!("http://{addr}"),
        cache_hits,
        _task: task,
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    pages: Pages,
    cfg: Config,
    target: Target,
    runner: Runner,
    driver: Arc<Driver>,
}

async fn fixture(webdriver: &str) -> Fixture {
    let pages = pages().await;
    let dir = tempfile::tempdir().unwrap();
    let jdir = dir.path().join("journeys");
    std::fs::create_dir_all(&jdir).unwrap();
    std::fs::write(
        jdir.join("fresh.yaml"),
        format!("name: fresh\nsteps:\n{}", visit(FRESH)),
    )
    .unwrap();
    std::fs::write(
        jdir.join("twice.yaml"),
        format!("name: twice\nsteps:\n{}{}", visit(FRESH), visit(SEEN)),
    )
    .unwrap();
    let file = dir.path().join("synmon.yaml");
    std::fs::write(
        &file,
        format!(
            "targets:\n  pages:\n    base_url: \"{}\"\ntenant: t\ncredentials:\n  username: u\n  password: pass-word\njourneys: journeys\nartifacts: artifacts\nwebdriver:\n{webdriver}",
            pages.base_url
        ),
    )
    .unwrap();
    let cfg = Config::load(&file).unwrap();
    let target = cfg.target(None).unwrap().clone();
    let (runner, driver) = runner(cfg.clone());
    Fixture {
        _dir: dir,
        pages,
        cfg,
        target,
        runner,
        driver,
    }
}

fn describe(r: &RunResult) -> String {
    serde_json::to_string_pretty(r).unwrap()
}

async fn run(f: &Fixture, journey: &str) -> RunResult {
    let j = f.cfg.journey(journey).unwrap();
    f.runner.run(&j, &f.target).await
}

/// The Chromium browser processes of the local chromedriver (its direct children).
async fn browser_pids(driver: &Driver) -> Vec<i32> {
    let parent = driver
        .local()
        .unwrap()
        .pid()
        .await
        .expect("chromedriver runs") as i32;
    children(parent)
}

/// The direct children of `parent`.
fn children(parent: i32) -> Vec<i32> {
    let mut pids = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // Fields after the command name, which is in parentheses: state, ppid, ...
        let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
        let ppid: i32 = rest
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        if ppid == parent {
            pids.push(pid);
        }
    }
    pids
}

fn signal(pids: &[i32], sig: nix::sys::signal::Signal) {
    for p in pids {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(*p), sig);
    }
}

/// The program a browser process runs (its `/proc/<pid>/exe`'s file name).
fn program_of(pid: i32) -> String {
    std::fs::read_link(format!("/proc/{pid}/exe"))
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The default: a local headless browser runs on Chromium's headless shell where it is
/// installed (`scripts/test.sh` installs it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_sees_nothing_an_earlier_run_left_in_the_same_browser() {
    nothing_left_for_the_next_run("  sessions: 1\n", "chromium-headless-shell").await;
}

/// `headless_shell: false`: the same, in Chromium's new headless mode, where a run's user
/// context opens a whole browser window.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_in_chromiums_new_headless_mode_sees_nothing_an_earlier_run_left() {
    nothing_left_for_the_next_run("  sessions: 1\n  headless_shell: false\n", "chromium").await;
}

/// `isolation: clear`: the same six traces, removed from the one kept tab instead of thrown
/// away with a context: in the tab's session on the browser's DevTools socket (the default),
/// and over a DevTools socket of the tab's own (a browser whose contexts go through BiDi).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cleared_tab_shows_the_next_run_nothing_an_earlier_run_left() {
    for protocol in ["devtools", "bidi"] {
        nothing_left_for_the_next_run(
            &format!("  sessions: 1\n  isolation: clear\n  local_protocol: {protocol}\n"),
            "chromium-headless-shell",
        )
        .await;
    }
}

/// Four runs in one browser running `program`, each blind to what the ones before it left.
async fn nothing_left_for_the_next_run(webdriver: &str, program: &str) {
    let _b = BROWSER.lock().await;
    let f = fixture(webdriver).await;
    // The page does see its own traces: the second visit of one run finds all six.
    let r = run(&f, "twice").await;
    assert_eq!(r.outcome, Outcome::Pass, "{}", describe(&r));
    assert_eq!(f.pages.cache_hits.load(Ordering::SeqCst), 1, "cached once");
    for i in 0..3 {
        let r = run(&f, "fresh").await;
        assert_eq!(r.outcome, Outcome::Pass, "run {i}: {}", describe(&r));
        assert_eq!(
            r.browser_reused,
            Some(true),
            "run {i}: the browser of the first run served: {}",
            describe(&r)
        );
    }
    assert_eq!(
        f.pages.cache_hits.load(Ordering::SeqCst),
        4,
        "every run fetched the cacheable resource from the server"
    );
    let browsers = browser_pids(&f.driver).await;
    assert_eq!(browsers.len(), 1, "one Chromium served all four runs");
    assert_eq!(
        program_of(browsers[0]),
        program,
        "the browser's program (the shell: apt-get install chromium-headless-shell)"
    );
    f.driver.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_isolation_starts_a_browser_per_run() {
    let _b = BROWSER.lock().await;
    let f = fixture("  sessions: 1\n  isolation: session\n").await;
    for i in 0..2 {
        let r = run(&f, "fresh").await;
        assert_eq!(r.outcome, Outcome::Pass, "run {i}: {}", describe(&r));
        assert_eq!(r.browser_reused, Some(false), "run {i}");
    }
    assert_eq!(f.driver.pooled(), 0, "nothing kept");
    f.driver.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_browser_is_replaced_and_the_next_run_passes() {
    let _b = BROWSER.lock().await;
    let f = fixture("  sessions: 1\n").await;
    let r = run(&f, "fresh").await;
    assert_eq!(r.outcome, Outcome::Pass, "{}", describe(&r));
    let before = browser_pids(&f.driver).await;
    assert_eq!(before.len(), 1, "one pooled browser");
    assert_eq!(f.driver.pooled(), 1, "the pool holds it for the next run");
    // A browser that dies while idle in the pool: past the window in which a lease trusts a
    // renewal that has just ended (a browser dying inside it is the run's probe error).
    tokio::time::sleep(Driver::RENEWED_FRESH * 2).await;
    signal(&before, nix::sys::signal::Signal::SIGKILL);
    let r = run(&f, "fresh").await;
    assert_eq!(r.outcome, Outcome::Pass, "{}", describe(&r));
    assert_eq!(r.browser_reused, Some(false), "a new browser served");
    let after = browser_pids(&f.driver).await;
    assert!(
        after.iter().all(|p| !before.contains(p)),
        "{before:?} -> {after:?}"
    );
    f.driver.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_browser_is_replaced_and_the_next_run_passes() {
    let _b = BROWSER.lock().await;
    let f = fixture("  sessions: 1\n").await;
    let r = run(&f, "fresh").await;
    assert_eq!(r.outcome, Outcome::Pass, "{}", describe(&r));
    let hung = browser_pids(&f.driver).await;
    assert_eq!(hung.len(), 1);
    // A browser that stops answering while idle in the pool (past the window in which a
    // lease trusts a renewal that has just ended): its process frozen.
    tokio::time::sleep(Driver::RENEWED_FRESH * 2).await;
    signal(&hung, nix::sys::signal::Signal::SIGSTOP);
    let r = run(&f, "fresh").await;
    signal(&hung, nix::sys::signal::Signal::SIGKILL);
    assert_eq!(r.outcome, Outcome::Pass, "{}", describe(&r));
    assert_eq!(r.browser_reused, Some(false), "a new browser served");
    assert!(
        r.session_create_ms >= 2000.0,
        "the liveness check waited its 2 s before giving up: {}",
        r.session_create_ms
    );
    f.driver.shutdown().await;
}

/// A headless shell found beside chromedriver that does not start (a broken install, another
/// version than chromedriver's) is tried once: the run passes on another browser (here the
/// shell on `PATH`, else chromedriver's own choice), and later browsers are not tried on the
/// broken one again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_headless_shell_that_does_not_start_is_tried_once_and_the_runs_pass() {
    use std::os::unix::fs::PermissionsExt;
    let _b = BROWSER.lock().await;
    let bin = tempfile::tempdir().unwrap();
    let real = synmon::journey::program::which("chromedriver").expect("chromedriver installed");
    let chromedriver = bin.path().join("chromedriver");
    std::fs::copy(std::fs::canonicalize(real).unwrap(), &chromedriver).unwrap();
    let tried = bin.path().join("tried");
    let shell = bin.path().join("chromium-headless-shell");
    std::fs::write(
        &shell,
        format!("#!/bin/sh\necho x >> '{}'\nexit 1\n", tried.display()),
    )
    .unwrap();
    std::fs::set_permissions(&shell, std::fs::Permissions::from_mode(0o755)).unwrap();

    let f = fixture(&format!(
        "  sessions: 1\n  recycle_after: 1\n  chromedriver: \"{}\"\n",
        chromedriver.display()
    ))
    .await;
    for i in 0..2 {
        let r = run(&f, "fresh").await;
        assert_eq!(r.outcome, Outcome::Pass, "run {i}: {}", describe(&r));
        assert_eq!(
            r.browser_reused,
            Some(false),
            "run {i}: recycled after each run"
        );
        let browsers = browser_pids(&f.driver).await;
        assert_eq!(browsers.len(), 1, "run {i}");
        // Debian's `/usr/bin/chromium*` programs on PATH are wrapper scripts that start the
        // browser as their child.
        let programs: Vec<String> = std::iter::once(browsers[0])
            .chain(children(browsers[0]))
            .map(program_of)
            .collect();
        assert!(
            programs.iter().any(|p| p.starts_with("chromium")),
            "run {i}: a live browser, not the broken shell: {programs:?}"
        );
    }
    let attempts = std::fs::read_to_string(&tried).unwrap_or_default();
    assert_eq!(
        attempts.lines().count(),
        1,
        "the shell was tried for the first browser only"
    );
    f.driver.shutdown().await;
}
