//! The C allocator's settings for a long-running process (glibc only): fewer arenas, and free
//! memory given back to the system instead of kept.
//!
//! Why: with glibc's defaults the daemon took 1.7 times the memory it had in use from the
//! system, and more the busier the machine. `malloc_stats()` of `synmon run` with 1,000 HTTP
//! checks at 1 s (BENCHMARKS.md, "Peak RSS, session 13") read 31.6 MB in use of 54.8 MB taken
//! from the system, spread over 8 arenas. Two defaults make that:
//! - **an arena per thread that meets contention**, up to 8 per core: the two tokio workers, the
//!   four SQLite connection threads and `main` each ended with an arena and its free memory;
//! - **the dynamic mmap threshold**: once a large block (a 2 MB buffer) is freed, glibc raises
//!   the mmap threshold to its size and the trim threshold to twice that, so every arena then
//!   keeps up to 4 MB of free memory at its top instead of returning it.
//!
//! [`tune`] caps the arenas at one per core ([`arena_max`]) and pins both thresholds at glibc's
//! initial 128 KiB (pinning them also turns the dynamic adjustment off). Side by side under the
//! probe benchmark's load on 2 cores, the same binary's peak RSS went from 61.9 and 57.8 MiB to
//! 50.4 and 52.8 MiB (two runs each) at the same CPU per probe. It must run before the process
//! starts any thread: arenas are handed to threads as they first allocate.
//!
//! An operator's own settings win: with any `MALLOC_*` tuning variable, or `glibc.malloc.*` in
//! `GLIBC_TUNABLES`, nothing is changed.

/// Arenas at most: one per core (the runtime starts a worker per core), at least 2 and at most
/// 8, instead of glibc's 8 per core; the SQLite connection threads share them.
pub fn arena_max() -> i32 {
    let cores = std::thread::available_parallelism().map_or(2, usize::from);
    cores.clamp(2, 8) as i32
}

/// glibc's initial mmap and trim thresholds (128 KiB), pinned.
pub const THRESHOLD: i32 = 128 * 1024;

/// The environment variables through which glibc reads an operator's malloc settings.
const OPERATOR_VARIABLES: [&str; 7] = [
    "MALLOC_ARENA_MAX",
    "MALLOC_ARENA_TEST",
    "MALLOC_TRIM_THRESHOLD_",
    "MALLOC_MMAP_THRESHOLD_",
    "MALLOC_TOP_PAD_",
    "MALLOC_MMAP_MAX_",
    "MALLOC_PERTURB_",
];

/// What [`tune`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tuning {
    /// Arenas capped and thresholds pinned.
    Tuned,
    /// The operator set malloc tuning in the environment: left as it is.
    OperatorSettings,
    /// Not glibc (musl, another OS), or glibc refused a setting.
    Unavailable,
}

/// Whether the environment (read through `var`) carries an operator's malloc settings.
pub fn operator_tuned(var: impl Fn(&str) -> Option<String>) -> bool {
    OPERATOR_VARIABLES.iter().any(|v| var(v).is_some())
        || var("GLIBC_TUNABLES").is_some_and(|t| t.contains("glibc.malloc."))
}

/// Apply the settings above unless the operator has their own. Call first thing in `main`,
/// before any thread is started.
pub fn tune() -> Tuning {
    if operator_tuned(|v| std::env::var(v).ok()) {
        return Tuning::OperatorSettings;
    }
    set()
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn set() -> Tuning {
    let params = [
        (libc::M_ARENA_MAX, arena_max()),
        (libc::M_MMAP_THRESHOLD, THRESHOLD),
        (libc::M_TRIM_THRESHOLD, THRESHOLD),
    ];
    let mut all = true;
    for (param, value) in params {
        // SAFETY: `mallopt` takes two integers and only changes the allocator's parameters,
        // under glibc's own arena lock; every parameter and value here is one glibc documents.
        #[allow(unsafe_code)]
        let ok = unsafe { libc::mallopt(param, value) } == 1;
        all &= ok;
    }
    if all {
        Tuning::Tuned
    } else {
        Tuning::Unavailable
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn set() -> Tuning {
    Tuning::Unavailable
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    }

    #[test]
    fn an_operators_malloc_settings_win() {
        assert!(!operator_tuned(env(&[])));
        assert!(!operator_tuned(env(&[(
            "GLIBC_TUNABLES",
            "glibc.rtld.nns=2"
        )])));
        assert!(!operator_tuned(env(&[("MALLOC_CONF", "narenas:2")])));
        assert!(operator_tuned(env(&[("MALLOC_ARENA_MAX", "4")])));
        assert!(operator_tuned(env(&[("MALLOC_TRIM_THRESHOLD_", "0")])));
        assert!(operator_tuned(env(&[(
            "GLIBC_TUNABLES",
            "glibc.rtld.nns=2:glibc.malloc.arena_max=8"
        )])));
    }

    /// On this platform (glibc) every parameter is accepted.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn glibc_accepts_every_setting() {
        assert_eq!(set(), Tuning::Tuned);
    }
}
