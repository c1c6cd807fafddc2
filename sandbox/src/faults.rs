//! Fault switches: what `/__sandbox/faults` turns on.

use std::sync::RwLock;
use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fault {
    Latency {
        route: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ms: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        dist: Option<Dist>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        median_ms: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        p95_ms: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min_ms: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_ms: Option<f64>,
    },
    Error {
        route: String,
        #[serde(default = "one")]
        rate: f64,
        #[serde(default = "default_status")]
        status: u16,
    },
    SuppressToast,
    FeedJobsFail {
        #[serde(default = "one")]
        rate: f64,
    },
    RateLimit {
        route: String,
    },
    DbDown,
    Hang {
        route: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dist {
    Fixed,
    Uniform,
    Lognormal,
}

fn one() -> f64 {
    1.0
}

fn default_status() -> u16 {
    503
}

/// z-score of the 95th percentile of the standard normal distribution.
const Z95: f64 = 1.644_853_626_951_472_2;
/// Longest injected latency (a longer wait is what `hang` is for).
const MAX_LATENCY_MS: f64 = 600_000.0;

impl Fault {
    /// Parses and validates one fault object; the error says what is wrong.
    pub fn parse(v: &Value) -> Result<Fault, String> {
        let obj = v.as_object().ok_or("a fault must be a JSON object")?;
        let kind = obj
            .get("kind")
            .and_then(Value::as_str)
            .ok_or("missing string field `kind`")?;
        let allowed: &[&str] = match kind {
            "latency" => &[
                "route",
                "ms",
                "dist",
                "median_ms",
                "p95_ms",
                "min_ms",
                "max_ms",
            ],
            "error" => &["route", "rate", "status"],
            "suppress_toast" | "db_down" => &[],
            "feed_jobs_fail" => &["rate"],
            "rate_limit" | "hang" => &["route"],
            other => return Err(format!("unknown fault kind `{other}`")),
        };
        if let Some(k) = obj
            .keys()
            .find(|k| k.as_str() != "kind" && !allowed.contains(&k.as_str()))
        {
            return Err(format!("unknown field `{k}` for fault kind `{kind}`"));
        }
        let needs_route = matches!(kind, "latency" | "error" | "rate_limit" | "hang");
        if needs_route && !obj.contains_key("route") {
            return Err(format!("fault kind `{kind}` needs a `route` glob"));
        }
        let f: Fault = serde_json::from_value(v.clone()).map_err(|e| e.to_string())?;
        f.validate()?;
        Ok(f)
    }

    fn validate(&self) -> Result<(), String> {
        let rate_ok = |r: f64| (0.0..=1.0).contains(&r);
        match self {
            Fault::Latency {
                route,
                ms,
                dist,
                median_ms,
                p95_ms,
                min_ms,
                max_ms,
            } => {
                check_route(route)?;
                let ok = |x: f64| x.is_finite() && (0.0..=MAX_LATENCY_MS).contains(&x);
                match (dist.unwrap_or(Dist::Fixed), ms, median_ms, p95_ms, min_ms, max_ms) {
                    (Dist::Fixed, Some(ms), None, None, None, None) if ok(*ms) => Ok(()),
                    (Dist::Lognormal, None, Some(m), Some(p), None, None)
                        if ok(*m) && ok(*p) && *m > 0.0 && p >= m =>
                    {
                        Ok(())
                    }
                    (Dist::Uniform, None, None, None, Some(lo), Some(hi))
                        if ok(*lo) && ok(*hi) && lo <= hi =>
                    {
                        Ok(())
                    }
                    _ => Err("latency needs `ms`, or `dist:\"lognormal\"` with 0 < median_ms <= p95_ms, \
                              or `dist:\"uniform\"` with min_ms <= max_ms (all <= 600000)"
                        .into()),
                }
            }
            Fault::Error {
                route,
                rate,
                status,
            } => {
                check_route(route)?;
                if !rate_ok(*rate) {
                    return Err("`rate` must be within 0..1".into());
                }
                if !(400..=599).contains(status) {
                    return Err("`status` must be 400..599".into());
                }
                Ok(())
            }
            Fault::FeedJobsFail { rate } => {
                if rate_ok(*rate) {
                    Ok(())
                } else {
                    Err("`rate` must be within 0..1".into())
                }
            }
            Fault::RateLimit { route } | Fault::Hang { route } => check_route(route),
            Fault::SuppressToast | Fault::DbDown => Ok(()),
        }
    }

    /// The route glob, for the kinds that have one.
    pub fn route(&self) -> Option<&str> {
        match self {
            Fault::Latency { route, .. }
            | Fault::Error { route, .. }
            | Fault::RateLimit { route }
            | Fault::Hang { route } => Some(route),
            _ => None,
        }
    }

    /// Draws one latency sample for a latency fault.
    pub fn sample_latency(&self) -> Duration {
        let Fault::Latency {
            ms,
            dist,
            median_ms,
            p95_ms,
            min_ms,
            max_ms,
            ..
        } = self
        else {
            return Duration::ZERO;
        };
        let mut rng = rand::rng();
        let ms = match dist.unwrap_or(Dist::Fixed) {
            Dist::Fixed => ms.unwrap_or(0.0),
            Dist::Uniform => {
                let (lo, hi) = (min_ms.unwrap_or(0.0), max_ms.unwrap_or(0.0));
                lo + rng.random::<f64>() * (hi - lo)
            }
            Dist::Lognormal => {
                let m = median_ms.unwrap_or(1.0).max(f64::MIN_POSITIVE);
                let p = p95_ms.unwrap_or(m).max(m);
                let sigma = (p.ln() - m.ln()) / Z95;
                (m.ln() + sigma * standard_normal(&mut rng)).exp()
            }
        };
        Duration::from_secs_f64(ms.clamp(0.0, MAX_LATENCY_MS) / 1000.0)
    }
}

fn check_route(route: &str) -> Result<(), String> {
    if route.is_empty() || route.len() > 512 {
        Err("`route` must be a non-empty glob (at most 512 chars)".into())
    } else {
        Ok(())
    }
}

/// Box-Muller.
fn standard_normal(rng: &mut impl Rng) -> f64 {
    let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Glob over a request path: `*` matches any run of characters (including `/`),
/// `?` one character; everything else literally.
pub fn glob_match(pattern: &str, path: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let s: Vec<char> = path.chars().collect();
    let (mut pi, mut si) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && (p[pi] == '?' || (p[pi] != '*' && p[pi] == s[si])) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, si));
            pi += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

/// The active faults.
#[derive(Default)]
pub struct Faults {
    active: RwLock<Vec<Fault>>,
}

impl Faults {
    pub fn list(&self) -> Vec<Fault> {
        self.active.read().map(|v| v.clone()).unwrap_or_default()
    }

    pub fn add(&self, faults: Vec<Fault>) {
        if let Ok(mut v) = self.active.write() {
            v.extend(faults);
        }
    }

    pub fn clear(&self) {
        if let Ok(mut v) = self.active.write() {
            v.clear();
        }
    }

    fn any(&self, pred: impl Fn(&Fault) -> bool) -> bool {
        self.active
            .read()
            .map(|v| v.iter().any(pred))
            .unwrap_or(false)
    }

    pub fn db_down(&self) -> bool {
        self.any(|f| matches!(f, Fault::DbDown))
    }

    pub fn suppress_toast(&self) -> bool {
        self.any(|f| matches!(f, Fault::SuppressToast))
    }

    /// Highest failure probability among active `feed_jobs_fail` faults.
    pub fn feed_fail_rate(&self) -> f64 {
        self.active
            .read()
            .map(|v| {
                v.iter()
                    .filter_map(|f| match f {
                        Fault::FeedJobsFail { rate } => Some(*rate),
                        _ => None,
                    })
                    .fold(0.0, f64::max)
            })
            .unwrap_or(0.0)
    }

    /// Faults whose route glob matches `path`.
    pub fn matching(&self, path: &str) -> Vec<Fault> {
        self.active
            .read()
            .map(|v| {
                v.iter()
                    .filter(|f| f.route().is_some_and(|r| glob_match(r, path)))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn globs() {
        assert!(glob_match("*", "/"));
        assert!(glob_match("*", "/t/synthetic/categories"));
        assert!(glob_match("/t/*/categories", "/t/synthetic/categories"));
        assert!(!glob_match("/t/*/categories", "/t/synthetic/inventory"));
        assert!(glob_match("/api/*", "/api/t/x/feed-jobs/1"));
        assert!(!glob_match("/api/*", "/login"));
        assert!(glob_match("/svc/*/healthz", "/svc/auth/healthz"));
        assert!(glob_match("/login", "/login"));
        assert!(!glob_match("/login", "/login2"));
        assert!(glob_match("/a?c", "/abc"));
    }

    #[test]
    fn parses_documented_shapes() {
        for v in [
            json!({"kind":"latency","route":"*","ms":600}),
            json!({"kind":"latency","route":"*","dist":"lognormal","median_ms":120,"p95_ms":350}),
            json!({"kind":"latency","route":"*","dist":"uniform","min_ms":10,"max_ms":20}),
            json!({"kind":"error","route":"*","rate":0.5,"status":503}),
            json!({"kind":"suppress_toast"}),
            json!({"kind":"feed_jobs_fail","rate":1.0}),
            json!({"kind":"rate_limit","route":"/api/*"}),
            json!({"kind":"db_down"}),
            json!({"kind":"hang","route":"/svc/*"}),
        ] {
            let f = Fault::parse(&v).unwrap_or_else(|e| panic!("{v}: {e}"));
            assert_eq!(serde_json::to_value(&f).unwrap()["kind"], v["kind"]);
        }
    }

    #[test]
    fn rejects_bad_shapes() {
        for v in [
            json!({"kind":"latency","route":"*"}),
            json!({"kind":"latency","route":"*","ms":5,"median_ms":3}),
            json!({"kind":"latency","route":"*","dist":"lognormal","median_ms":300,"p95_ms":100}),
            json!({"kind":"error","route":"*","rate":2.0}),
            json!({"kind":"error","route":"*","status":200}),
            json!({"kind":"hang"}),
            json!({"kind":"db_down","route":"*"}),
            json!({"kind":"nope"}),
            json!([1]),
        ] {
            assert!(Fault::parse(&v).is_err(), "{v} should be rejected");
        }
    }

    #[test]
    fn lognormal_median_is_close() {
        let f = Fault::parse(
            &json!({"kind":"latency","route":"*","dist":"lognormal","median_ms":120,"p95_ms":350}),
        )
        .unwrap();
        let mut xs: Vec<f64> = (0..4000)
            .map(|_| f.sample_latency().as_secs_f64() * 1000.0)
            .collect();
        xs.sort_by(f64::total_cmp);
        let median = xs[2000];
        let p95 = xs[3800];
        assert!((100.0..145.0).contains(&median), "median {median}");
        assert!((280.0..440.0).contains(&p95), "p95 {p95}");
    }
}
