//! Helpers shared by the integration tests (each test file is its own crate
//! and includes this module, using only part of it).
#![allow(dead_code)]

pub mod kernel;
pub mod ring;
pub mod vhost_front;

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

/// Whether CI asked that every test needing a capability run
/// (`NVS_REQUIRE_PRIVILEGED=1`): root, CAP_NET_ADMIN, `/dev/net/tun`,
/// pinning threads to two cores.
pub fn privileged_required() -> bool {
    std::env::var("NVS_REQUIRE_PRIVILEGED").as_deref() == Ok("1")
}

/// The one way a test gives up for lack of a capability: under
/// `NVS_REQUIRE_PRIVILEGED=1` it fails; otherwise it says so on stderr
/// (`SKIPPED: …`) and the caller returns early (or runs the part it can).
pub fn cannot_run(needs: &str, why: &dyn std::fmt::Display) {
    assert!(
        !privileged_required(),
        "NVS_REQUIRE_PRIVILEGED=1 but this test cannot run: it needs {needs}: {why}"
    );
    eprintln!("SKIPPED: needs {needs}: {why}");
}
