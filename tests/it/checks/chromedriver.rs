//! The chromedriver supervisor's start: a chromedriver that exits at once (its port taken by
//! another process between the draw and its bind) is started again on another port.

use std::path::Path;
use std::time::Duration;

use synmon::journey::chromedriver::Chromedriver;

use crate::support::chromedriver_wrapper;

/// A wrapper script that exits with 1 its first `failures` times, then runs the real
/// chromedriver with the arguments it was given; it counts its starts in `<dir>/starts`.
fn flaky_chromedriver(dir: &Path, failures: u32) -> String {
    let starts = dir.join("starts");
    let before = format!(
        "n=$(cat '{s}' 2>/dev/null || echo 0)\necho $((n + 1)) > '{s}'\n\
         [ \"$n\" -ge {failures} ] || exit 1\n",
        s = starts.display()
    );
    chromedriver_wrapper(dir, "flaky-chromedriver", &before, "")
        .display()
        .to_string()
}

fn starts(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("starts"))
        .unwrap()
        .trim()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chromedriver_that_exits_at_start_is_started_again_on_another_port() {
    let dir = tempfile::tempdir().unwrap();
    let cd = Chromedriver::new(&flaky_chromedriver(dir.path(), 2), Duration::from_secs(20));
    let url = cd.endpoint().await.expect("ready at the third start");
    assert_eq!(starts(dir.path()), "3");
    assert_eq!(cd.starts(), 1, "one chromedriver became ready");
    let status: serde_json::Value = reqwest::get(url.join("status").unwrap())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["value"]["ready"], true);
    cd.shutdown().await;

    // One that never starts fails after three tries, and says so.
    let dir = tempfile::tempdir().unwrap();
    let cd = Chromedriver::new(&flaky_chromedriver(dir.path(), 99), Duration::from_secs(20));
    let err = cd.endpoint().await.expect_err("never ready").to_string();
    assert!(
        err.contains("exited at start") && err.contains("3 times"),
        "{err}"
    );
    assert_eq!(starts(dir.path()), "3");
}
