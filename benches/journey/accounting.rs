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

/// utime + stime of this process (all its threads, also exited ones), in ticks.
pub fn self_cpu_ticks() -> u64 {
    let (u, s) = self_cpu_split();
    u + s
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
