//! The browser thread: one current-thread tokio runtime on an OS thread of its own
//! (`synmon-browser`) where every browser run executes, with everything it spawns.
//!
//! A WebDriver command crosses several tasks: the run's, fantoccini's session task, hyper's
//! connection task, and back (the BiDi and DevTools sockets have tasks of their own too). On
//! the daemon's multi-threaded runtime each of those hand-offs could be a wake-up of another
//! worker thread, and kernel task switches and tokio's parking were over half of synmon's own
//! CPU per run (BENCHMARKS.md, "Browser cost, session 10"). Here they are task switches on one
//! thread; the caller's runtime hands a run over once and is woken once, when it ends.
//!
//! fantoccini, hyper and the BiDi client spawn their tasks on the runtime they are called
//! from, so a browser must be created, driven, renewed and closed from this thread: the
//! journey runner moves a run that needs a browser here as a whole ([`run`]), and the pool's
//! background work (`driver.rs`) is spawned from those runs. Many runs share the thread (all
//! of it is async; timeouts fire from this runtime's own timer); work that would block it or
//! burn CPU for long (writing artifacts, deleting a browser profile) goes to `spawn_blocking`.
//!
//! The runtime lives as long as the process. It never holds anything of a caller's runtime:
//! tests, each with a runtime of their own, hand runs to the same thread.

use std::future::Future;
use std::sync::OnceLock;

use tokio::runtime::Handle;
use tokio::task::JoinHandle;

static RUNTIME: OnceLock<Handle> = OnceLock::new();

/// The browser runtime's handle, started on first use.
fn handle() -> &'static Handle {
    RUNTIME.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .thread_name("synmon-browser-blocking")
            .build()
            .expect("the browser runtime");
        let handle = rt.handle().clone();
        std::thread::Builder::new()
            .name("synmon-browser".into())
            .spawn(move || rt.block_on(std::future::pending::<()>()))
            .expect("the browser thread");
        handle
    })
}

/// Whether the calling task already runs on the browser thread.
pub fn on_browser_thread() -> bool {
    Handle::try_current().is_ok_and(|h| h.id() == handle().id())
}

/// Runs `fut` on the browser thread and returns its output; inline when called from there.
/// Dropping the returned future (a caller's timeout) drops `fut` on the browser thread, as if
/// it had run in the caller's task; a panic in `fut` is the caller's.
pub async fn run<F>(fut: F) -> F::Output
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    if on_browser_thread() {
        return fut.await;
    }
    let mut task = AbortOnDrop(handle().spawn(fut));
    match (&mut task.0).await {
        Ok(out) => out,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        // Only this guard aborts the task, and the runtime is never shut down.
        Err(e) => panic!("a task on the browser thread was cancelled: {e}"),
    }
}

/// Aborts the task when the caller stops waiting for it.
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_run_goes_to_the_browser_thread_and_its_spawns_stay_there() {
        let (name, spawned) = run(async {
            let spawned = tokio::spawn(async { std::thread::current().name().map(str::to_string) })
                .await
                .unwrap();
            (std::thread::current().name().map(str::to_string), spawned)
        })
        .await;
        assert_eq!(name.as_deref(), Some("synmon-browser"));
        assert_eq!(spawned.as_deref(), Some("synmon-browser"));
        assert!(!on_browser_thread(), "the test's own task is not moved");
    }

    #[tokio::test]
    async fn from_the_browser_thread_a_run_is_inline() {
        let inline = run(async { run(async { std::thread::current().id() }).await }).await;
        let there = run(async { std::thread::current().id() }).await;
        assert_eq!(inline, there);
    }

    #[tokio::test]
    async fn a_caller_that_stops_waiting_drops_the_run() {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let waited = tokio::time::timeout(
            Duration::from_millis(20),
            run(async move {
                let _tx = tx;
                std::future::pending::<()>().await;
            }),
        )
        .await;
        assert!(waited.is_err());
        // The run's future, holding the sender, was dropped on the browser thread.
        assert!(rx.await.is_err());
    }

    #[tokio::test]
    #[should_panic(expected = "boom")]
    async fn a_panic_on_the_browser_thread_is_the_callers() {
        run(async { panic!("boom") }).await;
    }
}
