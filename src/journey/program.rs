//! Which browser program a local session starts.
//!
//! A pooled run opens a window for its user context (`isolation: context`). In Chromium's new
//! headless mode (`--headless=new`) that window is a whole browser window, toolbar and tab
//! strip included, built and torn down per run; Chromium's headless shell (the "old" headless
//! mode, shipped apart as Debian's `chromium-headless-shell` and Chrome for Testing's
//! `chrome-headless-shell`) has the same renderer, network stack and DevTools, without any of
//! the browser's windows. On this project's bench it costs a quarter to a third less browser
//! CPU per pooled run (BENCHMARKS.md, "The headless shell"), which is why Playwright runs its
//! headless Chromium on the shell by default too. So a local headless session uses the shell
//! when one is installed, unless the config names its browser or says `headless_shell: false`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::WebDriverConfig;

/// The shell's program names: Debian's, Chrome for Testing's.
const HEADLESS_SHELLS: [&str; 2] = ["chromium-headless-shell", "chrome-headless-shell"];

/// The browser a new session asks chromedriver for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    /// `goog:chromeOptions.binary`; `None` leaves the choice to chromedriver.
    pub binary: Option<String>,
    /// Whether it is a headless shell: chromedriver then wants `browserName:
    /// chrome-headless-shell` (under `chrome` it waits forever for a first tab the shell never
    /// opens by itself), and `--headless=new` means nothing to it.
    pub headless_shell: bool,
}

impl Program {
    /// The program for `cfg`: its `browser_binary` when set; else, for a local headless
    /// session with `headless_shell` on, a headless shell found beside chromedriver (the
    /// same package's, so the same version) or on `PATH` that has not failed to start in
    /// this process ([`refuse`]); else chromedriver's choice.
    pub fn for_config(cfg: &WebDriverConfig) -> Self {
        if let Some(b) = &cfg.browser_binary {
            return Self {
                // A Grid matches nodes by `browserName`, whose nodes offer `chrome`: a remote
                // end is asked for what it was asked for before the shell was known here.
                headless_shell: cfg.remote_url.is_none() && is_headless_shell(b),
                binary: Some(b.clone()),
            };
        }
        let found = (cfg.remote_url.is_none() && cfg.headless && cfg.headless_shell)
            .then(|| find_headless_shell(&cfg.chromedriver))
            .flatten();
        Self {
            headless_shell: found.is_some(),
            binary: found.map(|p| p.display().to_string()),
        }
    }
}

/// Headless shells found here that did not start a session in this process: not tried again.
static REFUSED: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

/// Marks the headless shell at `path` as one that does not start (see [`Program::for_config`]).
pub fn refuse(path: &str) {
    REFUSED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(path.to_string());
}

fn refused(path: &Path) -> bool {
    REFUSED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .contains(&*path.to_string_lossy())
}

/// Whether `binary` names a headless shell (by its file name).
pub fn is_headless_shell(binary: &str) -> bool {
    Path::new(binary)
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.contains("headless-shell"))
}

/// A headless shell in the directory chromedriver's program really lives in (Debian:
/// `/usr/bin/chromedriver` is a link into `/usr/lib/chromium/`, where the shell is), else on
/// `PATH`.
fn find_headless_shell(chromedriver: &str) -> Option<PathBuf> {
    let beside = which(chromedriver)
        .and_then(|p| std::fs::canonicalize(p).ok())
        .and_then(|p| p.parent().map(Path::to_path_buf));
    beside
        .into_iter()
        .flat_map(|dir| HEADLESS_SHELLS.map(|n| dir.join(n)))
        .find(|p| is_executable(p) && !refused(p))
        .or_else(|| {
            HEADLESS_SHELLS
                .iter()
                .filter_map(|n| which(n))
                .find(|p| !refused(p))
        })
}

/// A program by name on `PATH`, or by path when the name has a `/`.
pub fn which(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        let p = PathBuf::from(name);
        return is_executable(&p).then_some(p);
    }
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|d| d.join(name))
            .find(|p| is_executable(p))
    })
}

/// Whether `p` is a file someone may execute.
pub fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn config(chromedriver: &Path) -> WebDriverConfig {
        WebDriverConfig {
            chromedriver: chromedriver.display().to_string(),
            ..crate::journey::webdriver::tests::config(Default::default())
        }
    }

    fn program(path: &Path) {
        std::fs::write(path, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn the_shell_beside_chromedriver_is_used_only_where_the_config_allows_it() {
        let dir = tempfile::tempdir().unwrap();
        let lib = dir.path().join("lib");
        std::fs::create_dir(&lib).unwrap();
        program(&lib.join("chromedriver"));
        // Found through a link, as Debian's /usr/bin/chromedriver.
        let link = dir.path().join("chromedriver");
        std::os::unix::fs::symlink(lib.join("chromedriver"), &link).unwrap();
        let cfg = config(&link);
        let shell = lib.join("chromium-headless-shell");
        program(&shell);
        let p = Program::for_config(&cfg);
        assert_eq!(p.binary.as_deref(), Some(shell.to_str().unwrap()));
        assert!(p.headless_shell);
        // One that did not start is not found again (PATH's may be).
        refuse(shell.to_str().unwrap());
        assert_ne!(
            Program::for_config(&cfg).binary.as_deref(),
            Some(shell.to_str().unwrap())
        );

        for off in [
            WebDriverConfig {
                headless_shell: false,
                ..config(&link)
            },
            WebDriverConfig {
                headless: false,
                ..config(&link)
            },
            WebDriverConfig {
                remote_url: Some("http://grid:4444".parse().unwrap()),
                ..config(&link)
            },
        ] {
            let chromedrivers_choice = Program {
                binary: None,
                headless_shell: false,
            };
            assert_eq!(Program::for_config(&off), chromedrivers_choice);
        }
        // A named browser is kept as named, and recognised as a shell by its name.
        let named = Program::for_config(&WebDriverConfig {
            browser_binary: Some("/opt/chrome-headless-shell-linux64/chrome-headless-shell".into()),
            ..config(&link)
        });
        assert!(named.headless_shell);
        let on_a_grid = Program::for_config(&WebDriverConfig {
            browser_binary: Some("/opt/chrome-headless-shell-linux64/chrome-headless-shell".into()),
            remote_url: Some("http://grid:4444".parse().unwrap()),
            ..config(&link)
        });
        assert!(!on_a_grid.headless_shell, "a Grid node offers `chrome`");
        let full = Program::for_config(&WebDriverConfig {
            browser_binary: Some("/usr/lib/chromium/chromium".into()),
            ..config(&link)
        });
        assert_eq!(full.binary.as_deref(), Some("/usr/lib/chromium/chromium"));
        assert!(!full.headless_shell);
    }
}
