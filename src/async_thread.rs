//! Async work on a thread of its own, the one way tessera runs it outside the worker's
//! runtime: a single-thread tokio runtime, made on the caller's thread (so failing to make
//! one is the caller's error at once), runs one future on a named thread that carries the
//! caller's tracing span (an egress's id on every line). The LiveKit session, the browser
//! driver and the uploader each run this way.

use std::future::Future;
use std::io;
use std::thread::JoinHandle;

/// Runs the future `work` makes on a new thread called `name`; the handle joins to its
/// output.
pub fn spawn<T, F>(
    name: &str,
    work: impl FnOnce() -> F + Send + 'static,
) -> io::Result<JoinHandle<T>>
where
    F: Future<Output = T>,
    T: Send + 'static,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let span = tracing::Span::current();
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let _span = span.enter();
            runtime.block_on(work())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_future_runs_on_the_named_thread_with_a_timer() {
        let handle = spawn("async-test", || async {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            std::thread::current().name().map(str::to_owned)
        })
        .unwrap();
        assert_eq!(handle.join().unwrap().as_deref(), Some("async-test"));
    }
}
