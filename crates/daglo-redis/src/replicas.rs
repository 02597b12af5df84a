//! [`Replicas`]: which replicas of a group are alive, and who follows a job another replica
//! started — so a job whose replica died is taken over by one other replica, never two.

use std::sync::LazyLock;
use std::time::Duration;

use crate::store::{RedisError, RedisStore, command};

/// Liveness and job holds of the replicas of one group, on Redis. Each replica calls
/// [`heartbeat`](Replicas::heartbeat) more often than its time to live; a replica whose
/// heartbeat lapsed is gone, and its running jobs are free to [`hold`](Replicas::hold).
#[derive(Debug, Clone)]
pub struct Replicas {
    store: RedisStore,
    group: String,
}

/// Takes or renews a hold: set when free, renewed when the holder is the caller; 1 if the
/// caller holds it now. KEYS: the hold. ARGV: the caller, the time to live in ms.
static HOLD: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        "local holder = redis.call('GET', KEYS[1]) \
         if holder and holder ~= ARGV[1] then return 0 end \
         redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1",
    )
});

impl Replicas {
    /// The replicas of `group` (say, one service's name) on `store`.
    pub fn new(store: RedisStore, group: &str) -> Self {
        Self {
            store,
            group: group.to_owned(),
        }
    }

    fn key(&self, parts: &[&str]) -> String {
        let mut all = vec!["replicas", self.group.as_str()];
        all.extend_from_slice(parts);
        self.store.key(&all)
    }

    /// Says `me` is alive for `ttl`.
    pub async fn heartbeat(&self, me: &str, ttl: Duration) -> Result<(), RedisError> {
        let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        redis::cmd("SET")
            .arg(self.key(&["alive", me]))
            .arg(1)
            .arg("PX")
            .arg(ms)
            .query_async::<()>(&mut self.store.conn())
            .await
            .map_err(command("SET alive"))
    }

    /// Whether `who`'s heartbeat is current.
    pub async fn is_alive(&self, who: &str) -> Result<bool, RedisError> {
        redis::cmd("EXISTS")
            .arg(self.key(&["alive", who]))
            .query_async::<bool>(&mut self.store.conn())
            .await
            .map_err(command("EXISTS alive"))
    }

    /// Takes (or renews) the hold on `job` for `me` for `ttl`; `false` while another replica
    /// holds it.
    pub async fn hold(&self, job: &str, me: &str, ttl: Duration) -> Result<bool, RedisError> {
        let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        HOLD.key(self.key(&["hold", job]))
            .arg(me)
            .arg(ms)
            .invoke_async::<bool>(&mut self.store.conn())
            .await
            .map_err(command("hold a job"))
    }
}
