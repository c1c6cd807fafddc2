//! Where a run's browser comes from: a supervised local chromedriver or a remote WebDriver, and
//! the pool of live browsers kept between runs.
//!
//! Starting a Chromium is most of a browser run's cost (a new session took 0.3-1.2 s and ~2 s
//! of CPU here, against ~100-150 ms for the steps themselves). With `isolation: context` the
//! pool keeps each browser alive and gives every run a fresh context of its own (over the
//! browser's DevTools socket or WebDriver BiDi: see `webdriver/control.rs`) instead: the run's tab, cookies, storage, HTTP cache and service workers are deleted with
//! the context when the run ends. The next run's context is prepared as soon as a run hands its
//! browser back, so its setup is off the next run's critical path; a lease only checks, in one
//! round trip, that the browser still answers (none when its renewal has just ended: see
//! [`Browser::just_renewed`]). With `isolation: clear` a browser keeps one tab
//! for all its runs, cleared after each (see `webdriver/clear.rs`): no new window or renderer
//! per run.
//!
//! All of it runs on the browser thread (`browser_rt.rs`): a lease and a give-back happen
//! inside a run, which the runner moves there, so the browsers' own tasks and the pool's
//! background work (renewals, discards) are spawned there too.
//!
//! A browser is replaced, never repaired: after `recycle_after` runs, after a run that ended in
//! a probe `error` (the browser may be hung or half-broken), and when its context cannot be
//! torn down or set up, or it does not answer at lease time (crashed).

use std::sync::Mutex;
use std::time::Duration;

use tokio::task::JoinHandle;

use super::chromedriver::Chromedriver;
use super::webdriver::{Browser, Isolation, StepError, WebDriverConfig};

/// How long a pooled browser has to answer the liveness check at lease time.
const ALIVE_TIMEOUT: Duration = Duration::from_secs(2);
/// A pooled browser whose renewal ended at most this long ago is leased without the liveness
/// round trip (see [`Browser::just_renewed`]); one idle longer is asked again.
const RENEWED_FRESH: Duration = Duration::from_millis(250);
/// How long a lease waits for a pooled browser's next context before replacing the browser.
const PREPARE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long closing a discarded browser may take before it is left to its driver.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// Where browser sessions come from.
enum Source {
    /// A chromedriver synmon starts and supervises.
    Local(Box<Chromedriver>),
    /// A remote WebDriver endpoint (Selenium Grid, chromedriver elsewhere).
    Remote(url::Url),
}

/// The browser side of the runner: the WebDriver endpoint and the browsers kept alive on it.
pub struct Driver {
    source: Source,
    config: WebDriverConfig,
    /// Browsers between runs, each being made ready for its next run (its old context torn
    /// down, a new one opened) or already ready; `None` when that failed.
    idle: Mutex<Vec<JoinHandle<Option<Browser>>>>,
    /// Warned once when a remote end offers no BiDi and runs fall back to a session each.
    warned_no_bidi: std::sync::atomic::AtomicBool,
}

/// A browser for one run, and what getting it cost.
pub struct Lease {
    pub browser: Browser,
    /// Whether a pooled browser served the run (else one was started for it).
    pub reused: bool,
}

impl Driver {
    /// How long after its renewal a pooled browser is leased without a liveness check: a
    /// browser that dies or hangs within it is not caught at the lease (its run ends in a probe
    /// error and the browser is replaced after it); one idle longer is checked.
    pub const RENEWED_FRESH: Duration = RENEWED_FRESH;

    pub fn from_config(webdriver: &WebDriverConfig) -> Self {
        let source = match &webdriver.remote_url {
            Some(u) => Source::Remote(u.clone()),
            None => Source::Local(Box::new(Chromedriver::new(
                &webdriver.chromedriver,
                webdriver.startup_timeout,
            ))),
        };
        Self {
            source,
            config: webdriver.clone(),
            idle: Mutex::new(Vec::new()),
            warned_no_bidi: Default::default(),
        }
    }

    pub async fn endpoint(&self) -> Result<url::Url, StepError> {
        match &self.source {
            Source::Local(c) => c.endpoint().await,
            Source::Remote(u) => Ok(u.clone()),
        }
    }

    pub fn local(&self) -> Option<&Chromedriver> {
        match &self.source {
            Source::Local(c) => Some(c),
            Source::Remote(_) => None,
        }
    }

    pub fn isolation(&self) -> Isolation {
        self.config.isolation
    }

    /// Browsers kept between runs (being prepared or ready).
    pub fn pooled(&self) -> usize {
        self.idle.lock().expect("browser pool lock").len()
    }

    /// A browser for one run, in a context of its own. Any failure is the probe's (`error`).
    pub async fn lease(&self, page_load: Duration, script: Duration) -> Result<Lease, StepError> {
        if self.config.isolation != Isolation::Session {
            loop {
                let next = {
                    // A browser whose next context is ready first; else the one given back
                    // earliest (the likeliest to be ready soon).
                    let mut idle = self.idle.lock().expect("browser pool lock");
                    match idle.iter().position(|h| h.is_finished()) {
                        Some(i) => Some(idle.remove(i)),
                        None if idle.is_empty() => None,
                        None => Some(idle.remove(0)),
                    }
                };
                let Some(mut prepared) = next else { break };
                let ready = match tokio::time::timeout(PREPARE_TIMEOUT, &mut prepared).await {
                    Ok(r) => r,
                    Err(_) => {
                        // Wedged while being prepared: not aborted (a browser dropped
                        // mid-preparation would leave its session open); it is closed once
                        // its preparation ends.
                        tracing::warn!("a pooled browser was not ready in time; replaced");
                        tokio::spawn(async move {
                            if let Ok(Some(b)) = prepared.await {
                                discard(b);
                            }
                        });
                        continue;
                    }
                };
                match ready {
                    Ok(Some(b))
                        if b.just_renewed(RENEWED_FRESH) || b.alive(ALIVE_TIMEOUT).await =>
                    {
                        return Ok(Lease {
                            browser: b,
                            reused: true,
                        });
                    }
                    Ok(Some(b)) => {
                        tracing::warn!(runs = b.runs(), "pooled browser does not answer; replaced");
                        discard(b);
                    }
                    _ => {}
                }
            }
        }
        let endpoint = self.endpoint().await?;
        let mut b = Browser::connect(
            &endpoint,
            &self.config,
            self.local().is_some(),
            page_load,
            script,
        )
        .await?;
        let ready = match self.config.isolation {
            Isolation::Clear if b.can_clear() => b.adopt_tab_for_clearing().await,
            Isolation::Context | Isolation::Clear if b.has_contexts() => {
                match b.next_context().await {
                    Ok(()) => Ok(()),
                    Err(e) => {
                        // User contexts refused (an older browser or grid node): this browser
                        // serves this run as a classic session and is not kept.
                        tracing::warn!(error = %e, "no user context: a classic session for this run");
                        b.drop_contexts();
                        Ok(())
                    }
                }
            }
            _ => b.adopt_first_tab().await,
        };
        if let Err(e) = ready {
            b.close().await;
            return Err(e);
        }
        if self.config.isolation != Isolation::Session
            && !b.renewable()
            && !self
                .warned_no_bidi
                .swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            // The host only: a grid URL may carry an access key.
            tracing::warn!(
                host = endpoint.host_str().unwrap_or_default(),
                "the browser offers no context socket (WebDriver BiDi, or a local browser's DevTools): each run gets a new session instead of a context of its own"
            );
        }
        Ok(Lease {
            browser: b,
            reused: false,
        })
    }

    /// Takes a browser back after its run. `healthy` is false when the run ended in a probe
    /// error: that browser is replaced. A healthy one is made ready for the next run in the
    /// background, and the caller does not wait for it.
    pub fn give_back(&self, b: Browser, healthy: bool) {
        let reuse = healthy
            && self.config.isolation != Isolation::Session
            && b.renewable()
            && b.runs() + 1 < self.config.recycle_after
            && self.pooled() < self.config.sessions as usize;
        if !reuse {
            discard(b);
            return;
        }
        let prepared = tokio::spawn(async move {
            let mut b = b;
            match b.renew().await {
                Ok(()) => Some(b),
                Err(e) => {
                    tracing::warn!(error = %e, "browser context not renewed; browser replaced");
                    discard(b);
                    None
                }
            }
        });
        self.idle.lock().expect("browser pool lock").push(prepared);
    }

    /// Quits the pooled browsers, then the local chromedriver. Bounded: a local chromedriver
    /// takes its browsers with it when its process group is killed; remote browsers are closed
    /// together, within [`CLOSE_TIMEOUT`] in all.
    pub async fn shutdown(&self) {
        let idle: Vec<_> = std::mem::take(&mut *self.idle.lock().expect("browser pool lock"));
        match &self.source {
            Source::Local(c) => {
                for prepared in idle {
                    prepared.abort();
                }
                c.shutdown().await;
            }
            Source::Remote(_) => {
                let closing = futures_util::future::join_all(idle.into_iter().map(|p| async {
                    if let Ok(Some(b)) = p.await {
                        b.close().await;
                    }
                }));
                if tokio::time::timeout(CLOSE_TIMEOUT, closing).await.is_err() {
                    tracing::warn!("pooled remote browsers did not all close in time");
                }
            }
        }
    }
}

/// Quits `b` in the background, bounded: a hung browser must not hold anyone up (its local
/// chromedriver reaps it at the latest when it stops).
fn discard(b: Browser) {
    tokio::spawn(async move {
        if tokio::time::timeout(CLOSE_TIMEOUT, b.close())
            .await
            .is_err()
        {
            tracing::warn!("a discarded browser did not close in time");
        }
    });
}
