//! What the service's tests share: temporary directories, the sample, and a private Redis.

use std::path::PathBuf;

pub(crate) const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/data/standup.wav");

pub(crate) fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub(crate) fn temp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("daglo-serve-{}-{name}", std::process::id()))
}

#[path = "../../../../tests/shared/private_redis.rs"]
mod shared_redis;
#[allow(unused_imports)]
pub(crate) use shared_redis::{private_redis, private_redis_with};
