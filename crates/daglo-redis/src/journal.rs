//! [`RedisJournal`]: the job journal on Redis, so any replica can recover any replica's jobs.

use std::collections::{BTreeMap, HashMap};
use std::sync::LazyLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use daglo_core::{
    Claim, Entry, EntryId, EntryState, Intent, JobId, JobLog, Journal, JournalError, OutcomeKind, Rid, Status,
};
use redis::AsyncCommands;

use crate::store::{RedisError, RedisStore, command};

/// The job journal on Redis: one hash per entry and a sorted index of them, under the store's
/// namespace and a journal name. Every replica that opens the same name sees every entry, so
/// any of them can resume the jobs another one submitted.
///
/// A key is claimed in one script (look up, record, index), so two replicas starting one key
/// make one entry. Each write has completed on Redis when its future returns; how durable that is across a
/// Redis restart is Redis's persistence setting (`appendonly yes` with `appendfsync always`
/// for the same guarantee as the SQLite journal). Like every journal it keeps no secret and no
/// transcript.
///
/// Entry ids are never reused, not even after a `FLUSHALL` or a Redis restart without
/// persistence: a fresh sequence starts at Redis's clock in microseconds. And the journal
/// notices that it was flushed: the first use marks it with a random generation, and every
/// write checks the mark, failing with [`JournalError::gone`] when it changed — a process never
/// writes one input's outcome into another's entry, and its caller stops submitting.
#[derive(Debug, Clone)]
pub struct RedisJournal {
    store: RedisStore,
    name: String,
    generation: std::sync::Arc<tokio::sync::OnceCell<String>>,
}

impl RedisJournal {
    /// The journal called `name` (for example the batch or service it belongs to) on `store`.
    pub fn new(store: RedisStore, name: &str) -> Self {
        Self {
            store,
            name: name.to_owned(),
            generation: std::sync::Arc::default(),
        }
    }

    /// The journal's generation mark, set on its first use by any process.
    async fn generation(&self) -> Result<&str, JournalError> {
        self.generation
            .get_or_try_init(|| async {
                let mark = JobId::random().to_string();
                let (generation,): (String,) = redis::pipe()
                    .cmd("SET")
                    .arg(self.key(&["generation"]))
                    .arg(&mark)
                    .arg("NX")
                    .ignore()
                    .get(self.key(&["generation"]))
                    .query_async(&mut self.store.conn())
                    .await
                    .map_err(failed("read the journal's generation"))?;
                Ok(generation)
            })
            .await
            .map(String::as_str)
    }

    fn flushed(&self) -> JournalError {
        JournalError::gone(format!(
            "the journal `{}` on Redis was flushed or replaced while in use",
            self.name.escape_debug()
        ))
    }

    fn key(&self, parts: &[&str]) -> String {
        let mut all = vec!["journal", self.name.as_str()];
        all.extend_from_slice(parts);
        self.store.key(&all)
    }

    fn entry_key(&self, id: EntryId) -> String {
        self.key(&["entry", &id.0.to_string()])
    }

    /// The indexes every entry is listed in: entries, latest per input, by key, by job.
    fn indexes(&self) -> [String; 4] {
        [
            self.key(&["entries"]),
            self.key(&["latest"]),
            self.key(&["keys"]),
            self.key(&["jobs"]),
        ]
    }

    /// Sets fields of an existing entry (and its `updated_ms`); an entry the journal does not
    /// hold is an error.
    async fn update(
        &self,
        operation: &'static str,
        id: EntryId,
        fields: &[(&str, &str)],
    ) -> Result<(), JournalError> {
        counted(operation, self.update_uncounted(id, fields)).await
    }

    async fn update_uncounted(&self, id: EntryId, fields: &[(&str, &str)]) -> Result<(), JournalError> {
        let key = self.entry_key(id);
        let now = millis(SystemTime::now());
        let generation = self.generation().await?;
        let updated: i64 = UPDATE
            .key(&key)
            .key(self.key(&["generation"]))
            .arg(generation)
            .arg(
                fields
                    .iter()
                    .flat_map(|(k, v)| [*k, *v])
                    .chain(["updated_ms", now.as_str()])
                    .collect::<Vec<_>>(),
            )
            .invoke_async(&mut self.store.conn())
            .await
            .map_err(failed("update entry"))?;
        if updated == -1 {
            return Err(self.flushed());
        }
        if updated == 0 {
            return Err(JournalError::message(format!("the journal has no entry {id}")));
        }
        Ok(())
    }
}

/// Sets fields of an entry that exists, in the journal's generation: 1, or 0 for no such
/// entry, or -1 for another generation (flushed). KEYS: entry, generation. ARGV: the
/// generation, then field/value pairs.
static UPDATE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        "if redis.call('GET', KEYS[2]) ~= ARGV[1] then return -1 end \
         if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end \
         redis.call('HSET', KEYS[1], unpack(ARGV, 2)) return 1",
    )
});

/// Renews the lease of an entry with no answer yet (its `updated_ms`): 1, 0 for an entry that
/// is not waiting, -1 for another generation. KEYS: entry, generation. ARGV: generation, now.
static RENEW: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        "if redis.call('GET', KEYS[2]) ~= ARGV[1] then return -1 end \
         if redis.call('HGET', KEYS[1], 'state') ~= 'intended' then return 0 end \
         redis.call('HSET', KEYS[1], 'updated_ms', ARGV[2]) return 1",
    )
});

/// Records an entry unless its key is held (by an entry that was submitted or may have been;
/// a provably not-submitted holder gives the key up): `{1, id}` for a new entry, `{0, id}` for
/// the holder, `{-1, 0}` in another generation. A fresh sequence starts at Redis's clock in
/// microseconds, so ids are not reused after a flush (ids are written with `%d`: Lua would
/// print a 16-digit number in exponent form). KEYS: sequence, entries, latest, keys,
/// jobs, generation. ARGV: entry key prefix, input, caller key (`''` for none), job id,
/// generation, then the entry's field/value pairs.
static CLAIM: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        "if redis.call('GET', KEYS[6]) ~= ARGV[5] then return {-1, 0} end \
         if redis.call('EXISTS', KEYS[1]) == 0 then \
           local t = redis.call('TIME') \
           redis.call('SET', KEYS[1], t[1] .. string.format('%06d', tonumber(t[2]))) \
         end \
         if ARGV[3] ~= '' then \
           local held = redis.call('HGET', KEYS[4], ARGV[3]) \
           if held and redis.call('HGET', ARGV[1] .. held, 'state') ~= 'not_submitted' then \
             return {0, tonumber(held)} \
           end \
           if held then redis.call('HDEL', ARGV[1] .. held, 'key') end \
         end \
         local id = redis.call('INCR', KEYS[1]) \
         local sid = string.format('%d', id) \
         redis.call('HSET', ARGV[1] .. sid, unpack(ARGV, 6)) \
         redis.call('ZADD', KEYS[2], id, sid) \
         redis.call('HSET', KEYS[3], ARGV[2], sid) \
         if ARGV[3] ~= '' then redis.call('HSET', KEYS[4], ARGV[3], sid) end \
         redis.call('HSET', KEYS[5], ARGV[4], sid) \
         return {1, id}",
    )
});

/// Removes one ended entry last changed before ARGV[2], and its index entries: 1 if removed,
/// -1 in another generation. KEYS: entry, entries, latest, keys, jobs, generation. ARGV: entry
/// id, cut-off in ms, generation.
static PRUNE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        "if redis.call('GET', KEYS[6]) ~= ARGV[3] then return -1 end \
         local f = redis.call('HMGET', KEYS[1], 'state', 'updated_ms', 'at_ms', 'input', 'key', 'job') \
         if not f[1] or (f[1] ~= 'finished' and f[1] ~= 'not_submitted') then return 0 end \
         local at = tonumber(f[2] or f[3]) \
         if not at or at >= tonumber(ARGV[2]) then return 0 end \
         redis.call('DEL', KEYS[1]) \
         redis.call('ZREM', KEYS[2], ARGV[1]) \
         if redis.call('HGET', KEYS[3], f[4]) == ARGV[1] then redis.call('HDEL', KEYS[3], f[4]) end \
         if f[5] and redis.call('HGET', KEYS[4], f[5]) == ARGV[1] then redis.call('HDEL', KEYS[4], f[5]) end \
         if f[6] then redis.call('HDEL', KEYS[5], f[6]) end \
         return 1",
    )
});

impl RedisJournal {
    /// The entry `id`, if the journal holds it.
    async fn read(&self, id: EntryId) -> Result<Option<Entry>, JournalError> {
        let fields: HashMap<String, String> = self
            .store
            .conn()
            .hgetall(self.entry_key(id))
            .await
            .map_err(failed("read entry"))?;
        if fields.is_empty() {
            return Ok(None);
        }
        read_entry(id, &fields)
            .map(Some)
            .ok_or_else(|| corrupt(self.entry_key(id)))
    }

    /// The entry an index (`latest`, `keys`, `jobs`) names for `field`, if any.
    async fn indexed(&self, index: &str, field: &str) -> Result<Option<Entry>, JournalError> {
        counted("read", async {
            let id: Option<i64> = self
                .store
                .conn()
                .hget(self.key(&[index]), field)
                .await
                .map_err(failed("HGET index"))?;
            let Some(id) = id else { return Ok(None) };
            // An index names an entry only if the entry says the same: after a flush, or a write
            // by an older version, an index must never hand one input another's entry.
            Ok(self.read(EntryId(id)).await?.filter(|entry| match index {
                "latest" => entry.intent.input == field,
                "keys" => entry.intent.key.as_deref() == Some(field),
                "jobs" => entry.intent.job.as_str() == field,
                _ => false,
            }))
        })
        .await
    }
}

/// Runs a journal operation, counting it and its time (`daglo_journal_operations_total`).
async fn counted<T>(
    operation: &'static str,
    work: impl std::future::Future<Output = Result<T, JournalError>>,
) -> Result<T, JournalError> {
    let started = std::time::Instant::now();
    let span = tracing::info_span!(
        "daglo.journal",
        db.system.name = "redis",
        db.operation.name = operation
    );
    let done = tracing::Instrument::instrument(work, span).await;
    daglo_core::telemetry::journal_operation(
        "redis",
        operation,
        done.is_ok(),
        started.elapsed().as_secs_f64(),
    );
    done
}

fn failed(what: &'static str) -> impl FnOnce(redis::RedisError) -> JournalError {
    move |e| JournalError::new(format!("Redis: {what}"), command(what)(e))
}

fn corrupt(key: String) -> JournalError {
    JournalError::new(
        "Redis: unreadable journal entry",
        RedisError::Corrupt {
            key,
            reason: "missing or unknown fields".to_owned(),
        },
    )
}

fn millis(at: SystemTime) -> String {
    at.duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis()
        .to_string()
}

#[async_trait]
impl Journal for RedisJournal {
    async fn check(&self) -> Result<(), JournalError> {
        // Gone when the mark this process knows is not the one on Redis (flushed, replaced).
        let known = self.generation().await?.to_owned();
        let now: Option<String> = self
            .store
            .conn()
            .get(self.key(&["generation"]))
            .await
            .map_err(failed("read the journal's generation"))?;
        if now.as_deref() == Some(known.as_str()) {
            Ok(())
        } else {
            Err(self.flushed())
        }
    }

    async fn intend(&self, intent: Intent) -> Result<EntryId, JournalError> {
        let key = intent.key.clone();
        match self.claim(intent).await? {
            Claim::Created(id) => Ok(id),
            _ => Err(JournalError::key_held(key.as_deref())),
        }
    }

    async fn claim(&self, intent: Intent) -> Result<Claim, JournalError> {
        counted("claim", async {
            let labels = if intent.labels.is_empty() {
                String::new()
            } else {
                serde_json::to_string(&intent.labels)
                    .map_err(|e| JournalError::new("cannot write the labels", e))?
            };
            let at = millis(intent.at);
            let mut fields: Vec<(&str, &str)> = vec![
                ("input", intent.input.as_str()),
                ("options_digest", intent.options_digest.as_str()),
                ("strategy", intent.strategy.as_str()),
                ("at_ms", at.as_str()),
                ("updated_ms", at.as_str()),
                ("state", "intended"),
                ("job", intent.job.as_str()),
            ];
            if let Some(key) = &intent.key {
                fields.push(("key", key));
            }
            if !labels.is_empty() {
                fields.push(("labels", &labels));
            }
            if let Some(callback_key) = &intent.callback_key {
                fields.push(("callback_key", callback_key));
            }
            if let Some(owner) = &intent.owner {
                fields.push(("owner", owner));
            }
            let generation = self.generation().await?;
            let [entries, latest, keys, jobs] = self.indexes();
            let (created, id): (i64, i64) = CLAIM
                .key(self.key(&["seq"]))
                .key(entries)
                .key(latest)
                .key(keys)
                .key(jobs)
                .key(self.key(&["generation"]))
                .arg(self.key(&["entry", ""]))
                .arg(&intent.input)
                .arg(intent.key.as_deref().unwrap_or(""))
                .arg(intent.job.as_str())
                .arg(generation)
                .arg(fields.iter().flat_map(|(k, v)| [*k, *v]).collect::<Vec<_>>())
                .invoke_async(&mut self.store.conn())
                .await
                .map_err(failed("record intent"))?;
            if created == -1 {
                return Err(self.flushed());
            }
            if created == 1 {
                return Ok(Claim::Created(EntryId(id)));
            }
            match self.read(EntryId(id)).await? {
                Some(entry) => Ok(Claim::Existing(Box::new(entry))),
                None => Err(corrupt(self.entry_key(EntryId(id)))),
            }
        })
        .await
    }

    async fn not_submitted(&self, id: EntryId, reason: &str) -> Result<(), JournalError> {
        self.update(
            "not_submitted",
            id,
            &[("state", "not_submitted"), ("reason", reason)],
        )
        .await
    }

    async fn submitted(&self, id: EntryId, rid: &Rid) -> Result<(), JournalError> {
        self.update("submitted", id, &[("state", "submitted"), ("rid", rid.as_str())])
            .await
    }

    async fn finished(
        &self,
        id: EntryId,
        outcome: &OutcomeKind,
        result: Option<&str>,
    ) -> Result<(), JournalError> {
        self.update(
            "finished",
            id,
            &[
                ("state", "finished"),
                ("outcome", outcome.as_str()),
                ("result", result.unwrap_or("")),
            ],
        )
        .await
    }

    /// The callback key secret, kept in Redis beside the journal (made on first use by any
    /// replica, `SET NX`), so every replica of one journal accepts every replica's callback
    /// keys, and a restarted one accepts the callbacks of the jobs it resumes. Whoever can read
    /// this Redis can read it: guard Redis like the secret.
    async fn key_secret(&self) -> Result<Option<Vec<u8>>, JournalError> {
        let fresh = daglo_callback::Secret::random()
            .ok_or_else(|| JournalError::message("the system gave no randomness for a key secret"))?;
        let key = self.key(&["key_secret"]);
        let (hex,): (String,) = redis::pipe()
            .cmd("SET")
            .arg(&key)
            .arg(fresh.expose())
            .arg("NX")
            .ignore()
            .get(&key)
            .query_async(&mut self.store.conn())
            .await
            .map_err(failed("read the key secret"))?;
        let bytes: Option<Vec<u8>> = (0..hex.len())
            .step_by(2)
            .map(|i| {
                hex.get(i..i + 2)
                    .and_then(|pair| u8::from_str_radix(pair, 16).ok())
            })
            .collect();
        match bytes {
            Some(bytes) if bytes.len() >= 16 => Ok(Some(bytes)),
            _ => Err(corrupt(key)),
        }
    }

    async fn renew(&self, id: EntryId) -> Result<(), JournalError> {
        counted("renew", async {
            let generation = self.generation().await?;
            let renewed: i64 = RENEW
                .key(self.entry_key(id))
                .key(self.key(&["generation"]))
                .arg(generation)
                .arg(millis(SystemTime::now()))
                .invoke_async(&mut self.store.conn())
                .await
                .map_err(failed("renew a claim"))?;
            if renewed == -1 {
                return Err(self.flushed());
            }
            Ok(())
        })
        .await
    }

    async fn requested(&self, id: EntryId, status_requests: u64) -> Result<(), JournalError> {
        self.update(
            "requested",
            id,
            &[("status_requests", &status_requests.to_string())],
        )
        .await
    }

    async fn progressed(
        &self,
        id: EntryId,
        status: &Status,
        progress: Option<u32>,
    ) -> Result<(), JournalError> {
        let progress = progress.map(|p| p.to_string()).unwrap_or_default();
        self.update(
            "progressed",
            id,
            &[("status", status.as_str()), ("progress", &progress)],
        )
        .await
    }

    async fn latest_for(&self, input: &str) -> Result<Option<Entry>, JournalError> {
        self.indexed("latest", input).await
    }

    async fn by_key(&self, key: &str) -> Result<Option<Entry>, JournalError> {
        self.indexed("keys", key).await
    }

    async fn by_job(&self, job: &JobId) -> Result<Option<Entry>, JournalError> {
        if let Some(entry) = self.indexed("jobs", job.as_str()).await? {
            return Ok(Some(entry));
        }
        // An entry from before jobs had ids answers to `entry-<n>`.
        match job.as_str().strip_prefix("entry-").and_then(|n| n.parse().ok()) {
            Some(id) => Ok(self
                .read(EntryId(id))
                .await?
                .filter(|entry| &entry.intent.job == job)),
            None => Ok(None),
        }
    }

    async fn prune(&self, before: SystemTime) -> Result<Vec<JobId>, JournalError> {
        counted("prune", async {
            let before = millis(before);
            let generation = self.generation().await?.to_owned();
            let mut pruned = Vec::new();
            for entry in self.entries().await? {
                if !entry.is_ended() {
                    continue;
                }
                let [entries, latest, keys, jobs] = self.indexes();
                let removed: i64 = PRUNE
                    .key(self.entry_key(entry.id))
                    .key(entries)
                    .key(latest)
                    .key(keys)
                    .key(jobs)
                    .key(self.key(&["generation"]))
                    .arg(entry.id.0)
                    .arg(&before)
                    .arg(&generation)
                    .invoke_async(&mut self.store.conn())
                    .await
                    .map_err(failed("prune entry"))?;
                if removed == -1 {
                    return Err(self.flushed());
                }
                if removed == 1 {
                    // Its logs (`JobLog`) expire on their own, a week after their last record.
                    pruned.push(entry.intent.job);
                }
            }
            Ok(pruned)
        })
        .await
    }

    async fn forget(&self, job: &JobId) -> Result<bool, JournalError> {
        counted("forget", async {
            let Some(entry) = self.by_job(job).await? else {
                return Ok(false);
            };
            if !entry.is_ended() {
                return Ok(false);
            }
            let generation = self.generation().await?.to_owned();
            let [entries, latest, keys, jobs] = self.indexes();
            // The prune script with a cut-off in the far future: this ended entry, whenever.
            let removed: i64 = PRUNE
                .key(self.entry_key(entry.id))
                .key(entries)
                .key(latest)
                .key(keys)
                .key(jobs)
                .key(self.key(&["generation"]))
                .arg(entry.id.0)
                .arg(i64::MAX)
                .arg(&generation)
                .invoke_async(&mut self.store.conn())
                .await
                .map_err(failed("forget entry"))?;
            if removed == -1 {
                return Err(self.flushed());
            }
            Ok(removed == 1)
        })
        .await
    }

    async fn entries(&self) -> Result<Vec<Entry>, JournalError> {
        counted("read", async {
            let mut conn = self.store.conn();
            let ids: Vec<i64> = conn
                .zrange(self.key(&["entries"]), 0, -1)
                .await
                .map_err(failed("ZRANGE entries"))?;
            if ids.is_empty() {
                return Ok(Vec::new());
            }
            let mut pipe = redis::pipe();
            for id in &ids {
                pipe.hgetall(self.entry_key(EntryId(*id)));
            }
            let hashes: Vec<HashMap<String, String>> = pipe
                .query_async(&mut conn)
                .await
                .map_err(failed("read entries"))?;
            ids.into_iter()
                .zip(hashes)
                .filter(|(_, fields)| !fields.is_empty())
                .map(|(id, fields)| {
                    read_entry(EntryId(id), &fields).ok_or_else(|| corrupt(self.entry_key(EntryId(id))))
                })
                .collect()
        })
        .await
    }
}

fn read_entry(id: EntryId, fields: &HashMap<String, String>) -> Option<Entry> {
    let field = |name: &str| fields.get(name).cloned();
    let at = UNIX_EPOCH + Duration::from_millis(field("at_ms")?.parse().ok()?);
    let mut intent = Intent::new(field("input")?, field("options_digest")?, field("strategy")?);
    intent.at = at;
    intent.job = match field("job") {
        Some(job) => job.parse().ok()?,
        None => JobId::legacy(id.0),
    };
    intent.key = field("key");
    intent.labels = match field("labels") {
        Some(json) => serde_json::from_str::<BTreeMap<String, String>>(&json).ok()?,
        None => BTreeMap::new(),
    };
    intent.callback_key = field("callback_key");
    intent.owner = field("owner");
    let state = match field("state")?.as_str() {
        "intended" => EntryState::Intended,
        "not_submitted" => EntryState::NotSubmitted {
            reason: field("reason").unwrap_or_default(),
        },
        "submitted" => EntryState::Submitted {
            rid: Rid::new(field("rid")?),
        },
        "finished" => EntryState::Finished {
            rid: Rid::new(field("rid")?),
            outcome: OutcomeKind::parse(&field("outcome")?),
            result: field("result").filter(|r| !r.is_empty()),
        },
        _ => return None,
    };
    let updated_at = match field("updated_ms") {
        Some(ms) => UNIX_EPOCH + Duration::from_millis(ms.parse().ok()?),
        None => at,
    };
    let mut entry = Entry::new(id, intent);
    entry.state = state;
    entry.status = field("status")
        .filter(|s| !s.is_empty())
        .map(|s| Status::parse(&s));
    entry.progress = field("progress").and_then(|p| p.parse().ok());
    entry.status_requests = field("status_requests").and_then(|n| n.parse().ok()).unwrap_or(0);
    entry.updated_at = updated_at;
    Some(entry)
}

/// How long a job's log lives on Redis after its last record: a week (the SQLite journal keeps
/// logs until the job is pruned).
const LOG_TTL_MS: u64 = 7 * 24 * 3600 * 1000;

#[async_trait]
impl JobLog for RedisJournal {
    async fn append(&self, list: &str, job: &JobId, record: &str, keep: usize) -> Result<(), JournalError> {
        counted("append", async {
            // One list per job and name; pushed, trimmed and given its expiry in one round trip.
            let key = self.key(&["log", job.as_str(), list]);
            let keep = isize::try_from(keep.max(1)).unwrap_or(isize::MAX);
            redis::pipe()
                .atomic()
                .rpush(&key, record)
                .ignore()
                .ltrim(&key, -keep, -1)
                .ignore()
                .pexpire(&key, LOG_TTL_MS as i64)
                .ignore()
                .query_async::<()>(&mut self.store.conn())
                .await
                .map_err(failed("append to a job log"))
        })
        .await
    }

    async fn read(&self, list: &str, job: &JobId) -> Result<Vec<String>, JournalError> {
        counted("read", async {
            self.store
                .conn()
                .lrange(self.key(&["log", job.as_str(), list]), 0, -1)
                .await
                .map_err(failed("read a job log"))
        })
        .await
    }

    async fn clear(&self, list: &str, job: &JobId) -> Result<(), JournalError> {
        counted("clear", async {
            self.store
                .conn()
                .del::<_, ()>(self.key(&["log", job.as_str(), list]))
                .await
                .map_err(failed("DEL log"))
        })
        .await
    }

    async fn mark(&self, set: &str, job: &JobId, member: bool) -> Result<(), JournalError> {
        counted("mark", async {
            let key = self.key(&["marks", set]);
            let mut conn = self.store.conn();
            if member {
                conn.sadd::<_, _, ()>(key, job.as_str()).await
            } else {
                conn.srem::<_, _, ()>(key, job.as_str()).await
            }
            .map_err(failed("mark a job"))
        })
        .await
    }

    async fn marked(&self, set: &str) -> Result<Vec<JobId>, JournalError> {
        counted("read", async {
            let jobs: Vec<String> = self
                .store
                .conn()
                .smembers(self.key(&["marks", set]))
                .await
                .map_err(failed("read marked jobs"))?;
            Ok(jobs.iter().filter_map(|job| job.parse().ok()).collect())
        })
        .await
    }
}
