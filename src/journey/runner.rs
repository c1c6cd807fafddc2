//! Runs one journey: opens a browser session when the journey needs one, executes its steps in
//! order, measures each, stops at the first failure and saves the evidence.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;
use tracing::Instrument;

pub use super::driver::Driver;
use super::model::*;
use super::webdriver::actions::{CookieSpec, FrameSel, SeenRequest, WindowSel};
use super::webdriver::{After, Arm, Browser, Cond, Finished, Next, StepError, WebDriverConfig};
use crate::clock::Clock;
use crate::config::{Identity, Redactor, Target};
use crate::outcome::Outcome;
use crate::run::*;
use crate::template::{Vars, render_json};

/// What follows a step in its journey: the script that ends the step may do it ahead (see
/// `webdriver::After`).
#[derive(Debug, Clone, Copy)]
enum Following<'a> {
    /// The journey's next step.
    Step(&'a Step),
    /// Nothing: the step is the journey's last.
    End,
    /// Not known here: a step repeated by `poll`.
    Inside,
}

/// What a journey run takes from the config; the assembler builds it
/// (`settings::Config::runner_settings`), so journeys never see the whole config.
#[derive(Debug, Clone)]
pub struct RunnerSettings {
    /// The tenant, login, location and variables every run's template variables start from.
    pub identity: Identity,
    pub webdriver: WebDriverConfig,
    pub navigation_timeout: Duration,
    /// A network request slower than this is listed in a failed run's evidence.
    pub slow_request_ms: u64,
    /// Screenshots, page HTML and console logs of failed runs go under `<dir>/<run id>/`.
    pub artifacts_dir: PathBuf,
    /// Every secret of the config, scrubbed from errors and artifacts.
    pub redactor: Redactor,
    /// The monitored database that `sql` steps query (`database.url`).
    pub database_url: Option<crate::config::Secret>,
}

/// Everything a run needs besides the journey. A clone shares all of it (a run that needs a
/// browser takes one to the browser thread).
#[derive(Clone)]
pub struct Runner {
    pub config: Arc<RunnerSettings>,
    pub driver: Arc<Driver>,
    pub clock: Arc<dyn Clock>,
    http: reqwest::Client,
    db: Arc<tokio::sync::OnceCell<sqlx::AnyPool>>,
    progress: Option<tokio::sync::mpsc::UnboundedSender<Progress>>,
    /// The logins runs captured, for journeys that may reuse them (`reuse_session`).
    sessions: Arc<super::session::Sessions>,
}

/// What a run is doing right now, for watchers (the status page, tests that must act at a
/// precise point of a journey).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    SessionReady { run_id: String },
    StepStarted { run_id: String, step: String },
}

/// How a step's latency was measured, as `exec` reports it.
enum Measured {
    /// By the page's clock (in-page timing, or an in-page wait).
    Page(f64),
    /// By the pages' clocks across a navigation, with the navigation's own timing.
    Navigation(f64, Option<NavTiming>),
    /// By synmon's HTTP/SQL client around its request.
    Client,
    /// Around the WebDriver calls.
    Outside,
}

/// Extra slack given to a WebDriver command beyond a step's own timeout before the probe is
/// declared stuck (the browser enforces the step timeout itself; this catches a hung driver).
const PROBE_GRACE: Duration = Duration::from_secs(10);

impl Runner {
    pub fn new(config: Arc<RunnerSettings>, driver: Arc<Driver>, clock: Arc<dyn Clock>) -> Self {
        crate::tls::install();
        let http = reqwest::Client::builder()
            .user_agent(concat!("synmon/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("HTTP client");
        Self {
            config,
            driver,
            clock,
            http,
            db: Default::default(),
            progress: None,
            sessions: Default::default(),
        }
    }

    /// Reports each run's progress on `tx`.
    pub fn with_progress(mut self, tx: tokio::sync::mpsc::UnboundedSender<Progress>) -> Self {
        self.progress = Some(tx);
        self
    }

    fn report(&self, p: Progress) {
        if let Some(tx) = &self.progress {
            let _ = tx.send(p);
        }
    }

    /// Runs `journey` against `target` and returns its result; never panics on target or probe
    /// failures (they are outcomes). A journey that needs a browser runs on the browser thread
    /// (see [`super::browser_rt`]), where its browser is leased, driven and given back; one
    /// without runs in the caller's task.
    pub async fn run(&self, journey: &Journey, target: &Target) -> RunResult {
        if !journey.needs_browser() || super::browser_rt::on_browser_thread() {
            return self.run_here(journey, target).await;
        }
        let (runner, journey, target) = (self.clone(), journey.clone(), target.clone());
        // The caller's span (the daemon's attempt) stays the run's parent on that thread.
        let run = async move { runner.run_here(&journey, &target).await };
        super::browser_rt::run(run.instrument(tracing::Span::current())).await
    }

    async fn run_here(&self, journey: &Journey, target: &Target) -> RunResult {
        let run_id = uuid::Uuid::new_v4().to_string();
        let span = tracing::info_span!("run", check = %journey.name, location = %self.config.identity.location, run_id = %run_id, target = %target.name);
        // The run's trace context, read by its requests (`http_step`) and stored with it.
        let trace =
            crate::trace::RunTrace::new(&journey.name, &self.config.identity.location, target);
        crate::trace::scope(
            trace,
            self.run_inner(journey, target, run_id).instrument(span),
        )
        .await
    }

    async fn run_inner(&self, journey: &Journey, target: &Target, run_id: String) -> RunResult {
        let started_at = self.clock.now();
        let t0 = Instant::now();
        let cfg = &self.config;
        let mut vars = Vars::for_target(&cfg.identity, target);
        vars.set("run_id", &run_id);
        let redactor = cfg.redactor.clone();
        let mut result = RunResult::begin(
            &journey.name,
            CheckKind::Journey,
            &target.name,
            &cfg.identity.location,
            started_at,
        );
        result.run_id = run_id.clone();
        result.trace_id = crate::trace::current_trace_id();

        // The journey's login, when it may be reused: the key of its captured session.
        let login = journey.reuse_session.as_ref().map(|r| {
            let user = vars.get("username");
            (
                r,
                super::session::key(&r.login, target.base_url.as_str(), user),
            )
        });
        // How many of the journey's first steps a reused login stands in for, and when that
        // login was captured.
        let mut skip = 0;
        let mut reused_at = None;
        let browser = if journey.needs_browser() {
            let created = Instant::now();
            let b = self
                .driver
                .lease(cfg.navigation_timeout, super::webdriver::SCRIPT_TIMEOUT)
                .await;
            result.session_create_ms = ms(created.elapsed());
            match b {
                Ok(mut lease) => {
                    result.browser_reused = Some(lease.reused);
                    // The tab's requests to the target carry the run's trace context (unless
                    // `webdriver.trace_requests: false`). Without it the run still runs: its
                    // steps are timed as always, the target's spans just do not hang under them.
                    let trace =
                        crate::trace::current().filter(|_| self.config.webdriver.trace_requests);
                    if let Some(trace) = trace {
                        match lease.browser.trace_requests(trace).await {
                            Ok(true) => {}
                            Ok(false) => tracing::debug!(
                                "browser requests not traced: no DevTools address (remote WebDriver)"
                            ),
                            Err(e) => tracing::warn!(error = %e, "browser requests not traced"),
                        }
                    }
                    // A login captured by an earlier run stands in for the journey's own.
                    if let Some((reuse, key)) = &login {
                        let fresh = self.sessions.fresh(key, self.clock.now(), reuse.max_age);
                        result.session_reused = Some(false);
                        if let Some(session) = fresh {
                            match lease.browser.set_cookies(&session.cookies).await {
                                Ok(()) => {
                                    skip = reuse.steps;
                                    result.session_reused = Some(true);
                                    reused_at = Some(session.at);
                                }
                                Err(e) => {
                                    tracing::warn!(error = %e, "captured login not set: logging in");
                                    self.sessions.forget(key, session.at);
                                }
                            }
                        }
                    }
                    // New documents are watched for every condition an action that may
                    // navigate awaits, by one script for the whole run. A condition whose
                    // template needs a value a step sets later is not announced (the action
                    // then watches for it itself).
                    let watched: Vec<Cond> = journey.steps[skip..]
                        .iter()
                        .filter(|s| {
                            s.action.may_navigate() || matches!(s.action, Action::Goto { .. })
                        })
                        .filter_map(|s| s.until.as_ref())
                        .filter_map(|u| self.cond(u, &vars).ok())
                        .collect();
                    lease.browser.watch_documents(&watched).await;
                    // Steps around chromedriver where the browser and every step allow it.
                    let direct = self.config.webdriver.local_steps == super::LocalSteps::Devtools
                        && journey.steps.iter().all(|s| s.action.direct_ok());
                    lease.browser.steps_over_devtools(direct).await;
                    self.report(Progress::SessionReady {
                        run_id: run_id.clone(),
                    });
                    Some(lease.browser)
                }
                Err(e) => {
                    tracing::error!(error = %e, "browser session could not be created");
                    result.outcome = Outcome::Error;
                    result.error = Some(redactor.redact(&e.message));
                    result.failed_step = Some("browser session".into());
                    result.total_ms = ms(t0.elapsed());
                    return result;
                }
            }
        } else {
            None
        };
        // The journey's viewport, device and network, on the run's own tab.
        let mut emulated: Option<&crate::run::Emulation> = None;
        if let (Some(b), Some(e)) = (&browser, &journey.emulation) {
            emulated = Some(e);
            if let Err(err) = b.emulate(e).await {
                tracing::error!(error = %err, "browser emulation could not be applied");
                result.outcome = Outcome::Error;
                result.error = Some(redactor.redact(&err.message));
                result.failed_step = Some("browser emulation".into());
            } else {
                result.emulation = Some(e.clone());
            }
        }

        // A run whose browser could not be set up runs no step.
        let steps = if result.outcome == Outcome::Pass {
            &journey.steps[skip..]
        } else {
            &[]
        };
        for (i, step) in steps.iter().enumerate() {
            // The step's requests (`http` steps, the browser's) hang under its span.
            crate::trace::enter_step(result.steps.len());
            let span = tracing::info_span!("step", step = %step.name, action = step.action.kind());
            self.report(Progress::StepStarted {
                run_id: run_id.clone(),
                step: step.name.clone(),
            });
            let sr = self
                .step(
                    browser.as_ref(),
                    step,
                    steps.get(i + 1).map_or(Following::End, Following::Step),
                    &mut vars,
                    &run_id,
                    &mut result.artifacts,
                )
                .instrument(span)
                .await;
            let failed = sr.outcome != Outcome::Pass;
            tracing::debug!(step = %sr.name, latency_ms = sr.latency_ms, outcome = %sr.outcome, "step done");
            if failed {
                result.outcome = sr.outcome;
                result.error = sr.error.as_ref().map(|e| format!("{}: {e}", step.name));
                result.failed_step = Some(sr.name.clone());
            }
            result.steps.push(sr);
            if failed {
                break;
            }
            // The login just done is captured for the runs after this one.
            if let (Some((reuse, key)), Some(b)) = (&login, &browser)
                && skip == 0
                && i + 1 == reuse.steps
            {
                self.capture_login(b, key).await;
            }
        }
        // A reused login that a run failed with may have expired: the next run logs in.
        if let (Some((_, key)), Some(at)) = (&login, reused_at)
            && result.outcome != Outcome::Pass
        {
            self.sessions.forget(key, at);
        }
        result.timed_latency_ms = result
            .steps
            .iter()
            .filter(|s| s.timed)
            .map(|s| s.latency_ms)
            .sum();

        if let Some(b) = browser {
            if let Some(ev) = b.evidence(cfg.slow_request_ms).await {
                result.page = Some(page_metrics(&ev, &redactor));
                if result.outcome != Outcome::Pass {
                    self.save_evidence(&b, &run_id, &ev, &mut result.artifacts, &redactor)
                        .await;
                }
            } else if result.outcome != Outcome::Pass {
                self.save_evidence(&b, &run_id, &Value::Null, &mut result.artifacts, &redactor)
                    .await;
            }
            // Network conditions hold for the whole session: the next run on this browser must
            // not inherit them. A browser that cannot be reset is replaced.
            let reset = match emulated {
                Some(e) => match b.reset_emulation(e).await {
                    Ok(()) => true,
                    Err(err) => {
                        tracing::warn!(error = %err, "emulation not reset; browser replaced");
                        false
                    }
                },
                None => true,
            };
            // A run that ended in a probe error may have left the browser hung or broken: it
            // is replaced rather than reused.
            self.driver
                .give_back(b, reset && result.outcome != Outcome::Error);
        }
        result.total_ms = ms(t0.elapsed());
        match result.outcome {
            Outcome::Pass => {
                tracing::info!(timed_latency_ms = result.timed_latency_ms, "journey passed")
            }
            o => {
                tracing::warn!(outcome = %o, error = result.error.as_deref().unwrap_or(""), "journey did not pass")
            }
        }
        result
    }

    /// Keeps the cookies a login left in the run's context as its session (see
    /// [`super::session`]); a login that cannot be read is simply not reused.
    async fn capture_login(&self, browser: &Browser, key: &str) {
        match browser.cookies().await {
            Ok(Some(cookies)) => self.sessions.capture(key, cookies, self.clock.now()),
            Ok(None) => tracing::debug!(
                "login not captured: a classic session (no context of the run's own)"
            ),
            Err(e) => tracing::warn!(error = %e, "login not captured"),
        }
    }

    async fn step(
        &self,
        browser: Option<&Browser>,
        step: &Step,
        following: Following<'_>,
        vars: &mut Vars,
        run_id: &str,
        artifacts: &mut Vec<Artifact>,
    ) -> StepResult {
        let redactor = &self.config.redactor;
        let started = Instant::now();
        let bound = step.timeout + PROBE_GRACE;
        let res = tokio::time::timeout(
            bound,
            self.exec(browser, step, following, vars, run_id, artifacts),
        )
        .await
        .unwrap_or_else(|_| {
            Err(StepError::error(format!(
                "the probe did not answer within {} ms (WebDriver stuck)",
                bound.as_millis()
            )))
        });
        let outside = ms(started.elapsed());
        let mut navigation = None;
        let (latency_ms, timing, outcome, error) = match res {
            Ok(Measured::Page(in_page)) => (in_page, Timing::InPage, Outcome::Pass, None),
            Ok(Measured::Navigation(across, nav)) => {
                navigation = nav;
                (across, Timing::InPageNavigation, Outcome::Pass, None)
            }
            Ok(Measured::Client) => (outside, Timing::Client, Outcome::Pass, None),
            Ok(Measured::Outside) => (outside, Timing::Outside, Outcome::Pass, None),
            Err(e) => {
                // Secrets typed into the page or sent in a request never reach a message.
                let mut r = redactor.clone();
                for s in vars.secrets() {
                    r.add(s);
                }
                (
                    outside,
                    Timing::Outside,
                    e.outcome,
                    Some(r.redact(&e.message)),
                )
            }
        };
        StepResult {
            name: redactor.redact(&step.name),
            action: step.action.kind().to_string(),
            latency_ms,
            timed: step.timed,
            timing,
            outcome,
            error,
            navigation,
        }
    }

    fn render(&self, t: &crate::template::Template, vars: &Vars) -> Result<String, StepError> {
        t.render(vars).map_err(StepError::error)
    }

    fn cond(&self, w: &WaitCond, vars: &Vars) -> Result<Cond, StepError> {
        Ok(Cond {
            selector: self.render(&w.selector, vars)?,
            text: w.text.as_ref().map(|t| self.render(t, vars)).transpose()?,
            visible: w.visible,
            gone: w.gone,
        })
    }

    /// The journey's next step as the step before it may find its element ahead (see
    /// [`Next`]): an action that finds an element, rendered and armed as it will be.
    fn next_action(&self, following: Following<'_>, vars: &Vars) -> Option<Next> {
        let Following::Step(n) = following else {
            return None;
        };
        Some(Next {
            selector: self.render(n.action.element()?, vars).ok()?,
            until: n
                .until
                .as_ref()
                .map(|u| self.cond(u, vars))
                .transpose()
                .ok()?,
            start: n.action.start_event()?,
            follow_navigation: n.action.may_navigate(),
        })
    }

    /// Executes one step and says how its latency was measured. `following`: what comes after
    /// it in the journey, which the script that ends it may do ahead (see [`After`]).
    fn exec<'a>(
        &'a self,
        browser: Option<&'a Browser>,
        step: &'a Step,
        following: Following<'a>,
        vars: &'a mut Vars,
        run_id: &'a str,
        artifacts: &'a mut Vec<Artifact>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Measured, StepError>> + Send + 'a>>
    {
        Box::pin(async move {
            let timeout = step.timeout;
            let need = || browser.ok_or_else(|| StepError::error("this step needs a browser"));
            let started = Instant::now();
            let until = step
                .until
                .as_ref()
                .map(|u| self.cond(u, vars))
                .transpose()?;
            // Every user action is timed in the page: from its start event to `until`, or,
            // without one, to the end of the page's handling of that event. An action that
            // can load a new document is followed into it.
            let arm = step.action.start_event().map(|start| Arm {
                until: until.as_ref(),
                start,
                follow_navigation: step.action.may_navigate(),
            });
            let handle = match &step.action {
                Action::Goto { url } => {
                    let u = self.absolute(&self.render(url, vars)?, vars)?;
                    let b = need()?;
                    return match &until {
                        Some(cond) => match b.goto_until(&u, cond, timeout).await? {
                            Some(f) => self.finished(b, f, cond, started, timeout).await,
                            None => {
                                b.wait_for(cond, timeout.saturating_sub(started.elapsed()))
                                    .await?;
                                Ok(Measured::Outside)
                            }
                        },
                        None => Ok(
                            match b
                                .goto_then(&u, timeout, self.next_action(following, vars).as_ref())
                                .await?
                            {
                                Some(nav) if nav.load_ms > 0.0 => {
                                    Measured::Navigation(nav.load_ms, Some(nav))
                                }
                                _ => Measured::Outside,
                            },
                        ),
                    };
                }
                Action::Click { selector } => {
                    need()?
                        .click_armed(&self.render(selector, vars)?, timeout, arm.as_ref())
                        .await?
                }
                Action::Fill {
                    selector,
                    value,
                    submit,
                } => {
                    let v = self.render(value, vars)?;
                    need()?
                        .fill_armed(
                            &self.render(selector, vars)?,
                            &v,
                            *submit,
                            timeout,
                            arm.as_ref(),
                        )
                        .await?
                }
                Action::Select { selector, by } => {
                    let sel = self.render(selector, vars)?;
                    let (value, label) = match by {
                        SelectBy::Value(v) => (Some(self.render(v, vars)?), None),
                        SelectBy::Label(l) => (None, Some(self.render(l, vars)?)),
                    };
                    need()?
                        .select_armed(
                            &sel,
                            value.as_deref(),
                            label.as_deref(),
                            timeout,
                            arm.as_ref(),
                        )
                        .await?
                }
                Action::Press { key, selector } => {
                    let code = super::keys::key_code(key).unwrap_or_default();
                    let sel = selector
                        .as_ref()
                        .map(|s| self.render(s, vars))
                        .transpose()?;
                    need()?
                        .press_armed(&code, sel.as_deref(), timeout, arm.as_ref())
                        .await?
                }
                Action::WaitFor(w) => {
                    let waited = need()?.wait_for(&self.cond(w, vars)?, timeout).await?;
                    return Ok(waited.map_or(Measured::Outside, Measured::Page));
                }
                Action::AssertText { selector, expect } => {
                    let sel = self.render(selector, vars)?;
                    let (text, waited) = need()?.text_of(&sel, timeout).await?;
                    if let Some(m) = self.mismatch(expect, &text, vars)? {
                        return Err(StepError::fail(format!("{sel}: text {m}")));
                    }
                    return Ok(waited.map_or(Measured::Outside, Measured::Page));
                }
                Action::AssertUrl { expect } => {
                    let url = need()?.current_url().await?;
                    if let Some(m) = self.mismatch(expect, &url, vars)? {
                        return Err(StepError::fail(format!("URL {m}")));
                    }
                    return Ok(Measured::Outside);
                }
                Action::Script(sc) => {
                    let args = sc
                        .args
                        .iter()
                        .map(|a| render_json(a, vars))
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(StepError::error)?;
                    let r = need()?
                        .run_script(&sc.js, &args, sc.is_async, timeout)
                        .await?;
                    if let Some(e) = &sc.expect {
                        self.expect_json(e, &r.value, vars)?;
                    }
                    if let Some(name) = &sc.capture {
                        vars.set(name, json_text(&r.value));
                    }
                    return Ok(Measured::Page(r.ms));
                }
                Action::Hover { selector } => {
                    need()?
                        .hover_armed(&self.render(selector, vars)?, timeout, arm.as_ref())
                        .await?
                }
                Action::Upload { selector, file } => {
                    need()?
                        .upload_armed(&self.render(selector, vars)?, file, timeout, arm.as_ref())
                        .await?
                }
                Action::Frame(to) => {
                    let sel;
                    let to = match to {
                        FrameTarget::Element(t) => {
                            sel = self.render(t, vars)?;
                            FrameSel::Element(&sel)
                        }
                        FrameTarget::Parent => FrameSel::Parent,
                        FrameTarget::Top => FrameSel::Top,
                    };
                    need()?.frame(to, timeout).await?;
                    return Ok(Measured::Outside);
                }
                Action::SwitchTo(to) => {
                    let title;
                    let to = match to {
                        WindowTarget::New => WindowSel::New,
                        WindowTarget::Index(i) => WindowSel::Index(*i),
                        WindowTarget::Title(t) => {
                            title = self.render(t, vars)?;
                            WindowSel::Title(&title)
                        }
                    };
                    need()?.switch_window(to, timeout).await?;
                    return Ok(Measured::Outside);
                }
                Action::SetCookie {
                    name,
                    value,
                    path,
                    domain,
                    secure,
                    http_only,
                } => {
                    let spec = CookieSpec {
                        name: self.render(name, vars)?,
                        value: self.render(value, vars)?,
                        path: path.as_ref().map(|p| self.render(p, vars)).transpose()?,
                        domain: domain.as_ref().map(|d| self.render(d, vars)).transpose()?,
                        secure: *secure,
                        http_only: *http_only,
                    };
                    need()?.set_cookie(spec).await?;
                    return Ok(Measured::Outside);
                }
                Action::SetStorage {
                    key,
                    value,
                    session,
                } => {
                    need()?
                        .set_storage(
                            &self.render(key, vars)?,
                            &self.render(value, vars)?,
                            *session,
                        )
                        .await?;
                    return Ok(Measured::Outside);
                }
                Action::ClearCookies => {
                    need()?.clear_cookies().await?;
                    return Ok(Measured::Outside);
                }
                Action::Assert { selector, check } => {
                    let sel = self.render(selector, vars)?;
                    self.assert_element(need()?, &sel, check, vars, timeout)
                        .await?;
                    return Ok(Measured::Outside);
                }
                Action::WaitForRequest { url, status } => {
                    self.wait_for_request(need()?, url, *status, timeout)
                        .await?;
                    return Ok(Measured::Outside);
                }
                Action::Screenshot { name } => {
                    let png = need()?.screenshot().await?;
                    if let Some(a) = self
                        .write_artifact(run_id, &format!("{name}.png"), "screenshot", png)
                        .await
                    {
                        artifacts.push(a);
                    }
                    return Ok(Measured::Outside);
                }
                Action::Capture {
                    name,
                    selector,
                    attribute,
                } => {
                    let sel = self.render(selector, vars)?;
                    let b = need()?;
                    let (value, waited) = match attribute {
                        Some(a) => {
                            let (v, waited) = b.attr_of(&sel, a, timeout).await?;
                            let v = v.ok_or_else(|| {
                                StepError::fail(format!("{sel}: has no attribute `{a}`"))
                            })?;
                            (v, waited)
                        }
                        None => b.text_of(&sel, timeout).await?,
                    };
                    vars.set(name, value);
                    return Ok(waited.map_or(Measured::Outside, Measured::Page));
                }
                Action::Http(h) => {
                    self.http_step(browser, h, vars, timeout).await?;
                    return Ok(Measured::Client);
                }
                Action::Sql(s) => {
                    self.sql_step(s, vars, timeout).await?;
                    return Ok(Measured::Client);
                }
                Action::Poll { step: inner, every } => {
                    let deadline = started + timeout;
                    let mut attempts = 0u32;
                    loop {
                        attempts += 1;
                        let left = deadline.saturating_duration_since(Instant::now());
                        let r = tokio::time::timeout(
                            left.max(Duration::from_millis(1)),
                            self.exec(browser, inner, Following::Inside, vars, run_id, artifacts),
                        )
                        .await;
                        match r {
                            // The poll as a whole is timed like the step it repeats.
                            Ok(Ok(Measured::Client)) => return Ok(Measured::Client),
                            Ok(Ok(_)) => return Ok(Measured::Outside),
                            Ok(Err(e)) if e.outcome == Outcome::Error => return Err(e),
                            Ok(Err(e)) if Instant::now() + *every >= deadline => {
                                return Err(StepError::fail(format!(
                                    "still failing after {attempts} attempts in {} ms: {}",
                                    timeout.as_millis(),
                                    e.message
                                )));
                            }
                            Err(_) => {
                                return Err(StepError::fail(format!(
                                    "not satisfied within {} ms ({attempts} attempts)",
                                    timeout.as_millis()
                                )));
                            }
                            Ok(Err(_)) => tokio::time::sleep(*every).await,
                        }
                    }
                }
            };
            let Some(h) = handle else {
                return Ok(Measured::Outside);
            };
            if h.pre
                && let Some(c) = &until
            {
                tracing::debug!(selector = %c.selector, "`until` already held before the action");
            }
            let b = need()?;
            let next = self.next_action(following, vars);
            let next_wait = match following {
                Following::Step(Step {
                    action: Action::WaitFor(w),
                    ..
                }) => self.cond(w, vars).ok(),
                _ => None,
            };
            let f = b
                .finish(
                    h,
                    timeout.saturating_sub(started.elapsed()),
                    match (following, &next, &next_wait) {
                        (_, Some(n), _) => After::Action(n),
                        (Following::End, None, _) => After::End {
                            slow_ms: self.config.slow_request_ms,
                        },
                        (_, None, Some(c)) => After::Wait(c),
                        _ => After::Nothing,
                    },
                )
                .await?;
            match &until {
                Some(cond) => self.finished(b, f, cond, started, timeout).await,
                None => match f {
                    Finished::InPage(ms) => Ok(Measured::Page(ms)),
                    Finished::Navigation(ms, nav) => Ok(Measured::Navigation(ms, nav)),
                    Finished::Unfollowed | Finished::TimedOut => Ok(Measured::Outside),
                },
            }
        })
    }

    /// Turns how a timed action ended into the step's measurement, or its failure.
    async fn finished(
        &self,
        b: &Browser,
        f: Finished,
        cond: &Cond,
        started: Instant,
        timeout: Duration,
    ) -> Result<Measured, StepError> {
        match f {
            Finished::InPage(ms) => Ok(Measured::Page(ms)),
            Finished::Navigation(ms, nav) => Ok(Measured::Navigation(ms, nav)),
            Finished::Unfollowed => {
                // Nothing watched the new document: it is awaited from outside.
                b.wait_for(cond, timeout.saturating_sub(started.elapsed()))
                    .await?;
                Ok(Measured::Outside)
            }
            Finished::TimedOut => {
                // Ask the page what is there instead, for a useful message.
                let detail = b
                    .wait_for(cond, Duration::from_millis(1))
                    .await
                    .err()
                    .map(|e| e.message)
                    .unwrap_or_else(|| format!("{}: held only after the deadline", cond.selector));
                Err(StepError::fail(detail.replace(
                    "after 1 ms",
                    &format!("after {} ms", timeout.as_millis()),
                )))
            }
        }
    }

    /// `None` when `actual` meets `expect`, else how it does not (`"x" does not contain "y"`,
    /// `is "x", expected "y"`, `"x" does not match /y/`), for the caller to prefix.
    fn mismatch(
        &self,
        expect: &TextMatch,
        actual: &str,
        vars: &Vars,
    ) -> Result<Option<String>, StepError> {
        Ok(match expect {
            TextMatch::Contains(t) => {
                let want = self.render(t, vars)?;
                (!actual.contains(&want)).then(|| format!("{actual:?} does not contain {want:?}"))
            }
            TextMatch::Equals(t) => {
                let want = self.render(t, vars)?;
                (actual != want).then(|| format!("is {actual:?}, expected {want:?}"))
            }
            TextMatch::Matches(p) => (!p.is_match(actual))
                .then(|| format!("{actual:?} does not match regex {:?}", p.source())),
        })
    }

    /// A script's result against its `expect`.
    fn expect_json(&self, e: &JsonExpect, value: &Value, vars: &Vars) -> Result<(), StepError> {
        let at = if e.pointer.is_empty() {
            "the result".to_string()
        } else {
            format!("the result's {}", e.pointer)
        };
        let Some(got) = value.pointer(&e.pointer) else {
            return Err(StepError::fail(format!(
                "{at} is missing (the result is {value})"
            )));
        };
        match &e.check {
            JsonCheck::Equals(want) => {
                let want = render_json(want, vars).map_err(StepError::error)?;
                if *got != want {
                    return Err(StepError::fail(format!("{at} is {got}, expected {want}")));
                }
            }
            JsonCheck::Matches(p) => {
                let text = json_text(got);
                if !p.is_match(&text) {
                    return Err(StepError::fail(format!(
                        "{at} {text:?} does not match regex {:?}",
                        p.source()
                    )));
                }
            }
        }
        Ok(())
    }

    /// Waits until `check` holds on `selector`, looking again at each change of the page, and
    /// fails with what was there at the deadline.
    async fn assert_element(
        &self,
        b: &Browser,
        sel: &str,
        check: &ElementCheck,
        vars: &Vars,
        timeout: Duration,
    ) -> Result<(), StepError> {
        let deadline = Instant::now() + timeout;
        let attr = match check {
            ElementCheck::Attribute { name, .. } => Some(name.as_str()),
            _ => None,
        };
        loop {
            let st = b.element_state(sel, attr).await?;
            let problem = match check {
                ElementCheck::Count(n) => {
                    (st.count != *n).then(|| format!("expected count {n}, found {}", st.count))
                }
                ElementCheck::Visible(want) => (st.visible != *want).then(|| {
                    if *want && st.count == 0 {
                        "expected visible, no element found".to_string()
                    } else if *want {
                        "expected visible, is hidden".to_string()
                    } else {
                        "expected hidden, is visible".to_string()
                    }
                }),
                _ if st.count == 0 => Some("no element found".to_string()),
                ElementCheck::Enabled(want) => (st.enabled != Some(*want)).then(|| {
                    format!(
                        "expected {}, is {}",
                        if *want { "enabled" } else { "disabled" },
                        if *want { "disabled" } else { "enabled" }
                    )
                }),
                ElementCheck::Checked(want) => (st.checked != Some(*want)).then(|| {
                    format!(
                        "expected {}, is {}",
                        if *want { "checked" } else { "unchecked" },
                        if *want { "unchecked" } else { "checked" }
                    )
                }),
                ElementCheck::Attribute { name, expect } => match (&st.attr, expect) {
                    (None, _) => Some(format!("attribute `{name}` is absent")),
                    (Some(_), None) => None,
                    (Some(v), Some(m)) => self
                        .mismatch(m, v, vars)?
                        .map(|m| format!("attribute `{name}` {m}")),
                },
            };
            let Some(problem) = problem else {
                return Ok(());
            };
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(StepError::fail(format!(
                    "{sel}: {problem} (after {} ms)",
                    timeout.as_millis()
                )));
            }
            b.next_change(left).await?;
        }
    }

    /// Waits for a request matching `url` (and `status`) in the current document's
    /// performance timeline (since the document loaded).
    async fn wait_for_request(
        &self,
        b: &Browser,
        url: &Pattern,
        status: Option<u16>,
        timeout: Duration,
    ) -> Result<(), StepError> {
        let deadline = Instant::now() + timeout;
        let mut seen: Vec<SeenRequest> = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            // A new document starts its timeline again: the list is always the current one's.
            seen = b.requests(seen.len(), left).await?;
            let hit = seen
                .iter()
                .any(|r| url.is_match(&r.url) && status.is_none_or(|s| r.status == s));
            if hit {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let listed: Vec<String> = seen
                    .iter()
                    .rev()
                    .take(8)
                    .map(|r| match r.status {
                        0 => r.url.clone(),
                        s => format!("{} ({s})", r.url),
                    })
                    .collect();
                return Err(StepError::fail(format!(
                    "no request matching regex {:?}{} after {} ms (latest: {})",
                    url.source(),
                    status
                        .map(|s| format!(" with status {s}"))
                        .unwrap_or_default(),
                    timeout.as_millis(),
                    if listed.is_empty() {
                        "none".to_string()
                    } else {
                        listed.join(", ")
                    }
                )));
            }
        }
    }

    fn absolute(&self, url: &str, vars: &Vars) -> Result<String, StepError> {
        if url.starts_with("http://") || url.starts_with("https://") {
            return Ok(url.to_string());
        }
        let base = vars.get("base_url").unwrap_or_default();
        Ok(format!("{base}/{}", url.trim_start_matches('/')))
    }

    async fn http_step(
        &self,
        browser: Option<&Browser>,
        h: &HttpStep,
        vars: &mut Vars,
        timeout: Duration,
    ) -> Result<(), StepError> {
        let url = self.absolute(&self.render(&h.url, vars)?, vars)?;
        let mut req = self.http.request(h.method.clone(), &url).timeout(timeout);
        // Trace headers only to the target's origin (and its `trace_origins`).
        req = crate::trace::propagate(req, &url);
        for (k, v) in &h.headers {
            req = req.header(k, self.render(v, vars)?);
        }
        if h.browser_cookies
            && let Some(b) = browser
        {
            let cookies = b.cookie_header().await?;
            if !cookies.is_empty() {
                req = req.header(reqwest::header::COOKIE, cookies);
            }
        }
        if let Some(body) = &h.json {
            req = req.json(&render_json(body, vars).map_err(StepError::error)?);
        }
        let what = format!("{} {}", h.method, self.render(&h.url, vars)?);
        let resp = req.send().await.map_err(|e| {
            if e.is_timeout() {
                StepError::fail(format!(
                    "{what}: no response within {} ms",
                    timeout.as_millis()
                ))
            } else {
                StepError::fail(format!("{what}: request failed: {e}"))
            }
        })?;
        let status = resp.status().as_u16();
        let body = resp.text().await.unwrap_or_default();
        let ok_status = match h.expect_status {
            Some(s) => s == status,
            None => (200..300).contains(&status),
        };
        if !ok_status {
            let snippet: String = body.chars().take(200).collect();
            return Err(StepError::fail(format!(
                "{what}: HTTP {status}{} {snippet}",
                h.expect_status
                    .map(|s| format!(" (expected {s})"))
                    .unwrap_or_default()
            )));
        }
        if h.expect_json.is_empty() && h.capture.is_empty() {
            return Ok(());
        }
        let json: Value = serde_json::from_str(&body)
            .map_err(|e| StepError::fail(format!("{what}: response is not JSON: {e}")))?;
        for (ptr, want) in &h.expect_json {
            let want = render_json(want, vars).map_err(StepError::error)?;
            let got = json.pointer(ptr).cloned().unwrap_or(Value::Null);
            if got != want {
                return Err(StepError::fail(format!(
                    "{what}: {ptr} is {got}, expected {want}"
                )));
            }
        }
        for (name, ptr) in &h.capture {
            let v = json
                .pointer(ptr)
                .ok_or_else(|| StepError::fail(format!("{what}: no {ptr} in the response")))?;
            vars.set(
                name,
                v.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string()),
            );
        }
        Ok(())
    }

    async fn sql_step(
        &self,
        s: &SqlStep,
        vars: &mut Vars,
        timeout: Duration,
    ) -> Result<(), StepError> {
        use sqlx::Row;
        let url = self
            .config
            .database_url
            .as_ref()
            .ok_or_else(|| StepError::error("no `database.url` configured for sql steps"))?;
        let pool = self
            .db
            .get_or_try_init(|| async {
                sqlx::any::install_default_drivers();
                sqlx::any::AnyPoolOptions::new()
                    .max_connections(2)
                    .acquire_timeout(timeout)
                    .connect_lazy(url.expose())
                    .map_err(|e| {
                        StepError::error(format!(
                            "database URL rejected: {}",
                            crate::probes::sql::scrub(&e.to_string())
                        ))
                    })
            })
            .await?;
        // The query text is the journey author's, from a reviewed file; values go in as binds.
        let mut q = sqlx::query(sqlx::AssertSqlSafe(s.query.clone()));
        for p in &s.params {
            q = q.bind(self.render(p, vars)?);
        }
        let rows = tokio::time::timeout(timeout, q.fetch_all(pool))
            .await
            .map_err(|_| {
                StepError::fail(format!(
                    "query did not finish within {} ms",
                    timeout.as_millis()
                ))
            })?
            .map_err(|e| {
                StepError::fail(format!(
                    "query failed: {}",
                    crate::probes::sql::scrub(&e.to_string())
                ))
            })?;
        if let Some(min) = s.min_rows
            && (rows.len() as u64) < min
        {
            return Err(StepError::fail(format!(
                "query returned {} rows, expected at least {min}",
                rows.len()
            )));
        }
        let cell = |row: &sqlx::any::AnyRow, col: &str| -> Option<String> {
            let idx: Option<usize> = row
                .columns()
                .iter()
                .position(|c| sqlx::Column::name(c) == col);
            let i = idx?;
            row.try_get::<String, _>(i)
                .ok()
                .or_else(|| row.try_get::<i64, _>(i).ok().map(|v| v.to_string()))
                .or_else(|| row.try_get::<f64, _>(i).ok().map(|v| v.to_string()))
                .or_else(|| row.try_get::<bool, _>(i).ok().map(|v| v.to_string()))
        };
        if let Some(want) = &s.expect_value {
            let want = self.render(want, vars)?;
            let got = rows.first().and_then(|r| {
                let name = r
                    .columns()
                    .first()
                    .map(|c| sqlx::Column::name(c).to_string())?;
                cell(r, &name)
            });
            if got.as_deref() != Some(want.as_str()) {
                return Err(StepError::fail(format!(
                    "query returned {}, expected {want:?}",
                    got.map(|g| format!("{g:?}"))
                        .unwrap_or_else(|| "no value".into())
                )));
            }
        }
        for (name, col) in &s.capture {
            let v = rows
                .first()
                .and_then(|r| cell(r, col))
                .ok_or_else(|| StepError::fail(format!("query returned no `{col}` to capture")))?;
            vars.set(name, v);
        }
        Ok(())
    }

    fn artifact_dir(&self, run_id: &str) -> PathBuf {
        self.config.artifacts_dir.join(run_id)
    }

    /// Writes an artifact off the browser thread (a blocking write must not hold up the other
    /// runs sharing it).
    async fn write_artifact(
        &self,
        run_id: &str,
        file: &str,
        kind: &str,
        bytes: Vec<u8>,
    ) -> Option<Artifact> {
        let dir = self.artifact_dir(run_id);
        let path = dir.join(file);
        let to = path.clone();
        let res = tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&dir).and_then(|_| std::fs::write(&to, bytes))
        })
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e)));
        match res {
            Ok(()) => Some(Artifact {
                kind: kind.to_string(),
                path: crate::config::yaml::display_path(&path),
            }),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "could not save artifact");
                None
            }
        }
    }

    async fn save_evidence(
        &self,
        b: &Browser,
        run_id: &str,
        ev: &Value,
        artifacts: &mut Vec<Artifact>,
        redactor: &Redactor,
    ) {
        if let Ok(png) = b.screenshot().await
            && let Some(a) = self
                .write_artifact(run_id, "screenshot.png", "screenshot", png)
                .await
        {
            artifacts.push(a);
        }
        if let Ok(html) = b.html_masked().await
            && let Some(a) = self
                .write_artifact(
                    run_id,
                    "page.html",
                    "html",
                    redactor.redact(&html).into_bytes(),
                )
                .await
        {
            artifacts.push(a);
        }
        let console = b.console_log().await;
        let text = redactor.redact(&console.join("\n"));
        if let Some(a) = self
            .write_artifact(run_id, "console.log", "console", text.into_bytes())
            .await
        {
            artifacts.push(a);
        }
        let requests = ev.get("requests").cloned().unwrap_or(Value::Array(vec![]));
        let text = redactor.redact(&serde_json::to_string_pretty(&requests).unwrap_or_default());
        if let Some(a) = self
            .write_artifact(run_id, "network.json", "network", text.into_bytes())
            .await
        {
            artifacts.push(a);
        }
    }
}

fn page_metrics(ev: &Value, redactor: &Redactor) -> PageMetrics {
    PageMetrics {
        url: redactor.redact(ev["url"].as_str().unwrap_or_default()),
        ttfb_ms: ev["nav"]["ttfb"].as_f64(),
        dom_content_loaded_ms: ev["nav"]["dcl"].as_f64(),
        load_ms: ev["nav"]["load"].as_f64(),
        lcp_ms: ev["lcp"].as_f64(),
        cls: ev["cls"].as_f64(),
    }
}

/// A JSON value as a template variable: a string as it is, anything else as JSON.
fn json_text(v: &Value) -> String {
    v.as_str()
        .map(str::to_string)
        .unwrap_or_else(|| v.to_string())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
