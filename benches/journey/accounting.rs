//! Where the bench's CPU and memory figures come from.
//!
//! **Why a cgroup v2 per side.** Chromium starts and kills renderer, GPU-less compositor and
//! utility processes all the time, also during one run. Sampling `/proc` of live processes misses
//! every process that exited between two samples (its parent's `cutime` only has it when the
//! parent waited for it and is itself still alive), and Chromium's crashpad handlers are
//! double-forked to init here (parent pid 1), so they are nobody's descendant at all.
//! `getrusage(RUSAGE_CHILDREN)` only counts descendants that were waited for all the way up:
//! those crashpad handlers never are, and when chromedriver is killed its Chromium children are
//! re-parented to init and their CPU never reaches the bench either. A cgroup v2 group's
//! `cpu.stat` `usage_usec` counts every process that was ever in the group, exited or not, and a
//! child starts in its parent's group. So each side gets its own group, entered by exec'ing
//! through a two-line `sh` wrapper that first writes its own pid to `cgroup.procs` (the bench
//! forbids unsafe code, so no `pre_exec` hook): synmon's chromedriver (its config's
//! `webdriver.chromedriver` is the wrapper) and the Selenium peer script (which starts its own
//! chromedriver). synmon's own CPU is the bench process's `/proc/self/stat` (all its threads),
//! which holds nothing else: the sandbox and the toast page run in a helper process.
//!
//! On this kind of machine `/sys/fs/cgroup` is a hybrid v1/v2 layout with the v2 hierarchy at
//! `/sys/fs/cgroup/unified`, writable by root; it has no controllers enabled, but the kernel keeps
//! `cpu.stat` (usage, user, system) for every v2 group regardless. Without a writable cgroup v2
//! the bench falls back to the live `/proc` walk and says so next to every figure it affects.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Clock ticks per second for /proc/*/stat times.
pub fn clk_tck() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// The fields after `comm` of /proc/<pid>/stat (index 0 is field 3, `state`).
fn stat_fields(pid: &str) -> Option<Vec<u64>> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    Some(
        rest.split_whitespace()
            .map(|f| f.parse().unwrap_or(0))
            .collect(),
    )
}

/// This process's CPU time (all its threads, also exited ones) in µs, by the kernel's exact
/// per-thread accounting (`CLOCK_PROCESS_CPUTIME_ID`): the figures in /proc are in 10 ms ticks,
/// +-0.25 ms per run over 40 runs, too coarse for a 5 ms goal.
pub fn self_cpu_us() -> u64 {
    let ts = nix::time::clock_gettime(nix::time::ClockId::CLOCK_PROCESS_CPUTIME_ID)
        .expect("clock_gettime(CLOCK_PROCESS_CPUTIME_ID)");
    ts.tv_sec() as u64 * 1_000_000 + ts.tv_nsec() as u64 / 1_000
}

/// (utime, stime) of this process, in ticks.
pub fn self_cpu_split() -> (u64, u64) {
    stat_fields("self")
        .map(|f| (f[11], f[12]))
        .unwrap_or((0, 0))
}

/// Live processes: pid -> (parent, utime + stime + cutime + cstime in ticks).
fn process_table() -> HashMap<u64, (u64, u64)> {
    let mut table = HashMap::new();
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            let name = e.file_name();
            let Some(pid) = name.to_str().and_then(|n| n.parse::<u64>().ok()) else {
                continue;
            };
            if let Some(f) = stat_fields(&pid.to_string()) {
                table.insert(pid, (f[1], f[11] + f[12] + f[13] + f[14]));
            }
        }
    }
    table
}

/// `root` and its live descendants.
pub fn tree_pids(root: u32) -> Vec<u32> {
    let table = process_table();
    let mut children: HashMap<u64, Vec<u64>> = HashMap::new();
    for (&pid, &(ppid, _)) in &table {
        children.entry(ppid).or_default().push(pid);
    }
    let mut out = Vec::new();
    let mut stack = vec![root as u64];
    while let Some(p) = stack.pop() {
        if table.contains_key(&p) {
            out.push(p as u32);
        }
        stack.extend(children.get(&p).map(Vec::as_slice).unwrap_or(&[]));
    }
    out
}

/// utime + stime + cutime + cstime summed over `root` and its *live* descendants, in ticks.
/// Children reaped inside the tree are in their parent's cutime/cstime; others are lost.
pub fn tree_cpu_ticks(root: u32) -> u64 {
    let table = process_table();
    tree_pids(root)
        .iter()
        .filter_map(|p| table.get(&(*p as u64)).map(|&(_, cpu)| cpu))
        .sum()
}

/// A `/proc/<pid>/status` field in KiB (0 when the process is gone).
pub fn status_kib(pid: &str, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Summed VmRSS of `pids`, in KiB.
pub fn rss_sum_kib(pids: &[u32]) -> u64 {
    pids.iter()
        .map(|p| status_kib(&p.to_string(), "VmRSS:"))
        .sum()
}

// ---------------------------------------------------------------------------------------------
// cgroup v2.

/// CPU used by a group, in microseconds.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuUsage {
    pub usage_us: u64,
    pub user_us: u64,
    pub system_us: u64,
}

impl std::ops::Sub for CpuUsage {
    type Output = CpuUsage;
    fn sub(self, o: CpuUsage) -> CpuUsage {
        CpuUsage {
            usage_us: self.usage_us.saturating_sub(o.usage_us),
            user_us: self.user_us.saturating_sub(o.user_us),
            system_us: self.system_us.saturating_sub(o.system_us),
        }
    }
}

/// The bench's own cgroup v2 subtree (`<mount>/synmon-journey-bench-<pid>`), removed on drop
/// after killing whatever is still in it (only processes the bench started ever are).
pub struct Cgroups {
    root: PathBuf,
    scopes: Vec<PathBuf>,
}

/// One accounting scope: a leaf group.
#[derive(Clone)]
pub struct Scope {
    dir: PathBuf,
}

/// The cgroup v2 mount point from /proc/self/mountinfo.
fn cgroup2_mount() -> Option<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    info.lines().find_map(|l| {
        let (pre, post) = l.split_once(" - ")?;
        let mount_point = pre.split_whitespace().nth(4)?;
        (post.split_whitespace().next()? == "cgroup2").then(|| PathBuf::from(mount_point))
    })
}

impl Cgroups {
    /// Creates the subtree, or says why it cannot.
    pub fn create() -> Result<Self, String> {
        let mount = cgroup2_mount().ok_or("no cgroup2 file system is mounted")?;
        let root = mount.join(format!("synmon-journey-bench-{}", std::process::id()));
        std::fs::create_dir(&root).map_err(|e| format!("cannot create {}: {e}", root.display()))?;
        if !root.join("cpu.stat").is_file() {
            let _ = std::fs::remove_dir(&root);
            return Err(format!("{} has no cpu.stat", mount.display()));
        }
        Ok(Self {
            root,
            scopes: Vec::new(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A new leaf group `name`.
    pub fn scope(&mut self, name: &str) -> io::Result<Scope> {
        let dir = self.root.join(name);
        std::fs::create_dir(&dir)?;
        self.scopes.push(dir.clone());
        Ok(Scope { dir })
    }
}

impl Cgroups {
    /// Kills what is left in the groups, waits (bounded) until they are empty, removes them.
    pub async fn remove(mut self) {
        let scopes = std::mem::take(&mut self.scopes);
        for dir in &scopes {
            let scope = Scope { dir: dir.clone() };
            scope.kill_all();
            // A group can be removed once its last process has exited.
            let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
            while !scope.pids().is_empty() && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            if let Err(e) = std::fs::remove_dir(dir) {
                eprintln!("journey bench: cannot remove {}: {e}", dir.display());
            }
        }
        // Drop removes the (now empty) root.
    }
}

/// Best effort on an early exit: kill, then try to remove (a group whose processes are still
/// dying stays behind, empty, and is harmless).
impl Drop for Cgroups {
    fn drop(&mut self) {
        for dir in &self.scopes {
            Scope { dir: dir.clone() }.kill_all();
            let _ = std::fs::remove_dir(dir);
        }
        if let Err(e) = std::fs::remove_dir(&self.root) {
            eprintln!("journey bench: cannot remove {}: {e}", self.root.display());
        }
    }
}

impl Scope {
    /// CPU of every process that was ever in the group.
    pub fn usage(&self) -> CpuUsage {
        let text = std::fs::read_to_string(self.dir.join("cpu.stat")).unwrap_or_default();
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
                .unwrap_or(0)
        };
        CpuUsage {
            usage_us: field("usage_usec"),
            user_us: field("user_usec"),
            system_us: field("system_usec"),
        }
    }

    /// The processes in the group now.
    pub fn pids(&self) -> Vec<u32> {
        std::fs::read_to_string(self.dir.join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }

    /// Writes an executable `sh` wrapper `file` that enters this group, then execs `program`
    /// with the wrapper's arguments.
    pub fn wrapper(&self, file: &Path, program: &str) -> io::Result<PathBuf> {
        use std::os::unix::fs::PermissionsExt;
        let procs = self.dir.join("cgroup.procs");
        let text = format!(
            "#!/bin/sh\n# Generated by the journey bench: account this program to {}.\necho $$ > '{}' || exit 97\nexec '{}' \"$@\"\n",
            self.dir.display(),
            procs.display(),
            program
        );
        std::fs::write(file, text)?;
        std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o755))?;
        Ok(file.to_path_buf())
    }

    /// Kills every process in the group (`cgroup.kill`, Linux 5.14+; else SIGKILL one by one).
    pub fn kill_all(&self) {
        if std::fs::write(self.dir.join("cgroup.kill"), "1").is_err() {
            for pid in self.pids() {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid as i32),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }
}

/// What the browser side's figures are read from.
pub enum Meter {
    /// Every process that was ever in the group: exact.
    Cgroup(Scope),
    /// Live processes under chromedriver only (no writable cgroup v2): exited Chromium
    /// processes whose parent did not wait for them are missing.
    LiveTree { root: Option<u32> },
}

impl Meter {
    pub fn exact(&self) -> bool {
        matches!(self, Meter::Cgroup(_))
    }

    /// CPU so far, in microseconds.
    pub fn cpu_us(&self, tck: f64) -> u64 {
        match self {
            Meter::Cgroup(s) => s.usage().usage_us,
            Meter::LiveTree { root } => root
                .map(|r| (tree_cpu_ticks(r) as f64 * 1e6 / tck) as u64)
                .unwrap_or(0),
        }
    }

    /// chromedriver and all its descendants now.
    pub fn pids(&self) -> Vec<u32> {
        match self {
            Meter::Cgroup(s) => s.pids(),
            Meter::LiveTree { root } => root.map(tree_pids).unwrap_or_default(),
        }
    }

    /// Those of [`Meter::pids`] that still have memory (an exiting process or a zombie has none).
    pub fn live_pids(&self) -> Vec<u32> {
        self.pids()
            .into_iter()
            .filter(|p| status_kib(&p.to_string(), "VmRSS:") > 0)
            .collect()
    }

    /// Summed VmRSS of chromedriver and all its descendants, in KiB.
    pub fn rss_kib(&self) -> u64 {
        rss_sum_kib(&self.pids())
    }
}

// ---------------------------------------------------------------------------------------------
// Settling and the cost profile.

/// Waits until a group has been quiet (under 1 ms of CPU in 50 ms, 2 % of a core) or 3 s
/// have passed, and returns how long it waited.
///
/// A pooled browser is made ready for its next run in the background after `Runner::run`
/// returns (the next context switched to, the last one deleted, the one after next created).
/// A CPU counter read right after a batch's last run would leave that work out of the batch and
/// let it land in whatever is measured next (the Selenium peer's batch runs meanwhile, in its
/// own group, so there it is counted nowhere). Reading after the group settled puts exactly one
/// preparation per run in every batch. The same wait is applied to the peer, so that both
/// sides' windows close alike.
pub async fn settle(cpu_us: impl Fn() -> u64) -> Duration {
    const SLICE: Duration = Duration::from_millis(50);
    const QUIET_US: u64 = 1_000;
    let start = tokio::time::Instant::now();
    let mut last = cpu_us();
    while start.elapsed() < Duration::from_secs(3) {
        tokio::time::sleep(SLICE).await;
        let now = cpu_us();
        if now.saturating_sub(last) < QUIET_US {
            break;
        }
        last = now;
    }
    start.elapsed()
}

/// A process's arguments (Chromium's children rewrite theirs into one space-separated string).
fn cmdline(pid: u32) -> Option<Vec<String>> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let mut args: Vec<String> = raw
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    // Chromium's child processes rewrite their command line into one space-separated string.
    if args.len() == 1 && args[0].contains(" --") {
        args = args[0].split_whitespace().map(str::to_string).collect();
    }
    Some(args)
}

/// The browser process a renderer belongs to, as a key (`pid:N`): its zygote's parent. Chromium's
/// headless shell gives its renderers no `--user-data-dir`.
fn browser_of(renderer: u32) -> Option<String> {
    let ppid = |pid: u32| stat_fields(&pid.to_string()).and_then(|f| f.get(1).copied());
    let zygote = ppid(renderer)?;
    Some(format!("pid:{}", ppid(zygote as u32)?))
}

fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .find_map(|a| a.strip_prefix(name).map(str::to_string))
}

/// What a process of a browser side is, from its command line: `chromedriver`, `browser`
/// (Chromium's main process), `renderer`, `renderer (top-chrome WebUI)` (a renderer Chromium
/// starts for its own WebUI, not for a page), `gpu`, `network` (the network service),
/// `utility (...)` (other utility processes), `zygote`, `crashpad`, `script` (the Selenium
/// peer's Python), or the program's name.
pub fn process_kind(pid: u32) -> String {
    let Some(args) = cmdline(pid) else {
        return "gone".into();
    };
    let Some(argv0) = args.first() else {
        return "gone".into();
    };
    let program = Path::new(argv0)
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    if program.contains("chromedriver") {
        return "chromedriver".into();
    }
    if program.contains("crashpad") {
        return "crashpad".into();
    }
    if program.starts_with("python") {
        return "script".into();
    }
    if !program.contains("chrom") {
        return program;
    }
    let flag = |name: &str| flag(&args, name);
    match flag("--type=").as_deref() {
        None => "browser".into(),
        Some("renderer") if args.iter().any(|a| a == "--top-chrome-webui") => {
            "renderer (top-chrome WebUI)".into()
        }
        Some("renderer") => "renderer".into(),
        Some("gpu-process") => "gpu".into(),
        Some("zygote") => "zygote".into(),
        Some("crashpad-handler") => "crashpad".into(),
        Some("utility") => match flag("--utility-sub-type=") {
            Some(s) if s.contains("NetworkService") => "network".into(),
            Some(s) => format!("utility ({})", s.rsplit('.').next().unwrap_or(s.as_str())),
            None => "utility".into(),
        },
        Some(other) => other.to_string(),
    }
}

/// The live processes of a side at one instant: pid -> (start time, kind, own utime + stime
/// in ticks; a reaped child's time, which its parent's `cutime` holds, is left out).
#[derive(Default)]
pub struct Snapshot {
    procs: HashMap<u32, (u64, String, u64)>,
    /// Per browser (its `--user-data-dir`), the highest `--renderer-client-id` of its live
    /// renderers: the browser numbers every renderer it starts, so the difference between two
    /// snapshots counts the renderers started in between, also those that already ended.
    renderer_ids: HashMap<String, u64>,
}

impl Snapshot {
    pub fn take(pids: &[u32]) -> Self {
        let mut procs = HashMap::new();
        let mut renderer_ids: HashMap<String, u64> = HashMap::new();
        for &pid in pids {
            if let Some(f) = stat_fields(&pid.to_string()) {
                // Field 22 (`starttime`) tells a reused pid from the process seen before.
                procs.insert(pid, (f[19], process_kind(pid), f[11] + f[12]));
            }
            if let Some(args) = cmdline(pid)
                && let Some(id) =
                    flag(&args, "--renderer-client-id=").and_then(|v| v.parse::<u64>().ok())
                && let Some(dir) = flag(&args, "--user-data-dir=").or_else(|| browser_of(pid))
            {
                let max = renderer_ids.entry(dir).or_default();
                *max = (*max).max(id);
            }
        }
        Self {
            procs,
            renderer_ids,
        }
    }
}

/// Where a side's CPU went over some windows, by process kind, in µs. A process alive at both
/// ends of a window is `kept`; one that appeared in it is `started`; what the group's exact
/// counter has beyond the live processes' own times is `exited` (a process that ended in the
/// window, its time since the window opened or since it started).
#[derive(Debug, Default, Clone)]
pub struct Profile {
    pub rows: std::collections::BTreeMap<String, u64>,
    pub exited_us: u64,
    /// Processes present at a window's end that were not at its start.
    pub started: usize,
    /// Processes present at a window's start that were gone at its end.
    pub ended: usize,
    /// Renderers started in the windows (by their browsers' numbering; see [`Snapshot`]), and
    /// whether any browser lived through a window (else there is nothing to count by).
    pub renderers_started: u64,
    pub renderers_counted: bool,
}

impl Profile {
    /// Adds one window: `s0` and `s1` taken at its ends, `total_us` the group's exact counter
    /// over it.
    pub fn add(&mut self, s0: &Snapshot, s1: &Snapshot, total_us: u64, tck: f64) {
        let us = |ticks: u64| (ticks as f64 * 1e6 / tck) as u64;
        let mut seen = 0u64;
        for (pid, (start, kind, ticks)) in &s1.procs {
            let (key, delta) = match s0.procs.get(pid) {
                Some((start0, _, ticks0)) if start0 == start => {
                    (format!("{kind}, kept"), ticks.saturating_sub(*ticks0))
                }
                _ => {
                    self.started += 1;
                    (format!("{kind}, started"), *ticks)
                }
            };
            let d = us(delta);
            seen += d;
            *self.rows.entry(key).or_default() += d;
        }
        self.ended += s0
            .procs
            .iter()
            .filter(|(pid, (start, _, _))| s1.procs.get(pid).is_none_or(|p| p.0 != *start))
            .count();
        self.exited_us += total_us.saturating_sub(seen);
        for (dir, id1) in &s1.renderer_ids {
            if let Some(id0) = s0.renderer_ids.get(dir) {
                self.renderers_started += id1.saturating_sub(*id0);
                self.renderers_counted = true;
            }
        }
    }
}
