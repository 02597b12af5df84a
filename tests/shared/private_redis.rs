//! A private `redis-server` for a test that kills or flushes its Redis: one file, shared by path
//! by the test suites that need it (`daglo-cli`'s and `daglo-serve`'s).

use std::process::Command;

/// A private `redis-server` of the test's own (killed when the guard drops) — for a test that
/// kills or flushes its Redis, never the shared one. `None` (said on the terminal) when
/// redis-server is not installed, which CI must not allow.
pub(crate) fn private_redis(test: &str) -> Option<(String, RedisGuard)> {
    private_redis_with(test, &["--save", "", "--appendonly", "no"])
}

/// A private `redis-server` started with `args` (its persistence, its eviction policy…).
#[allow(dead_code)] // Not every suite that includes this file needs it.
pub(crate) fn private_redis_with(test: &str, args: &[&str]) -> Option<(String, RedisGuard)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let spawned = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    let Ok(child) = spawned else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must have redis-server installed"
        );
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED {test}: the Redis tests did not run — no DAGLO_TEST_REDIS_URL and no redis-server installed"
        );
        return None;
    };
    let guard = RedisGuard(child);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(std::time::Instant::now() < deadline, "redis-server did not start");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    Some((format!("redis://127.0.0.1:{port}"), guard))
}

/// Kills the private redis-server when dropped.
pub(crate) struct RedisGuard(pub(crate) std::process::Child);

impl Drop for RedisGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
