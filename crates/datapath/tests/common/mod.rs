//! Helpers shared by the integration tests (each test file is its own crate and includes this module).

use std::time::{Duration, Instant};

/// Polls `cond` until it returns `Some` (polling threads and the kernel work
/// asynchronously); panics if that takes longer than `limit`.
pub fn eventually<T>(what: &str, limit: Duration, mut cond: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = cond() {
            return v;
        }
        assert!(Instant::now() < deadline, "never happened: {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}
