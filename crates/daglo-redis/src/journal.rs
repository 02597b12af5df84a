//! [`RedisJournal`]: the job journal on Redis, so any replica can recover any replica's jobs.

use std::collections::{BTreeMap, HashMap};
use std::sync::LazyLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use daglo_core::{
    Claim, Entry, EntryId, EntryPage, EntryQuery, EntryState, Intent, JobId, JobLog, Journal, JournalError,
    OutcomeKind, Recovery, Rid, Stage, Status,
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
    /// Set once the indexes of stages, labels and ended entries hold every entry (those
    /// written by an older version are added on first use).
    indexed: std::sync::Arc<tokio::sync::OnceCell<()>>,
    rows_read: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl RedisJournal {
    /// The journal called `name` (for example the batch or service it belongs to) on `store`.
    pub fn new(store: RedisStore, name: &str) -> Self {
        Self {
            store,
            name: name.to_owned(),
            generation: std::sync::Arc::default(),
            indexed: std::sync::Arc::default(),
            rows_read: std::sync::Arc::default(),
        }
    }

    /// How many entries [`page`](Journal::page), [`recover`](Journal::recover) and
    /// [`prune`](Journal::prune) have read since this handle was made (clones share the
    /// count): what shows a page reads what it returns and one more.
    pub fn rows_read(&self) -> u64 {
        self.rows_read.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn counted_rows(&self, rows: usize) {
        self.rows_read
            .fetch_add(rows as u64, std::sync::atomic::Ordering::Relaxed);
    }

    /// The journal's key prefix, ending with the separator: what the scripts name the index
    /// keys with (`<prefix>stage:<n>`, `<prefix>ended`).
    fn prefix(&self) -> String {
        self.key(&[""])
    }

    /// The index of the entries labelled `name` = `value` (any stage); `<it>:<stage>` is the
    /// index of those in one stage. Name and value are written in hex: no label can make
    /// another's key.
    fn label_key(&self, name: &str, value: &str) -> String {
        self.key(&["label", &hex(name), &hex(value)])
    }

    /// The index of the entries in `stage`.
    fn stage_key(&self, stage: Stage) -> String {
        self.key(&["stage", &stage.index().to_string()])
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
        let moves = if fields.iter().any(|(name, _)| *name == "state") {
            "1"
        } else {
            ""
        };
        let updated: i64 = UPDATE
            .key(&key)
            .key(self.key(&["generation"]))
            .arg(generation)
            .arg(self.prefix())
            .arg(id.0)
            .arg(moves)
            .arg(&now)
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

/// Lua shared by the scripts that move an entry between stages: `stage_of(state, outcome)`
/// (the numbers of `Stage::index`), and `place(prefix, entry, id, from, to, at)` — the entry
/// out of the indexes of stage `from` (its own and its labels') and into those of `to`
/// (`nil`: none), and into the index of ended entries by time when `to` has ended.
const PLACE: &str = "\
local function stage_of(state, outcome) \
  if state == 'intended' then return 0 end \
  if state == 'submitted' then return 1 end \
  if state == 'finished' then \
    if outcome == 'transcript' or outcome == 'empty' then return 2 end \
    return 3 \
  end \
  if state == 'not_submitted' then return 4 end \
  return nil \
end \
local function place(prefix, entry, id, from, to, at) \
  local labels = redis.call('HGET', entry, 'label_keys') \
  if from ~= nil then redis.call('ZREM', prefix .. 'stage:' .. from, id) end \
  if to ~= nil then redis.call('ZADD', prefix .. 'stage:' .. to, id, id) end \
  if labels then \
    for base in string.gmatch(labels, '%S+') do \
      if from ~= nil then redis.call('ZREM', base .. ':' .. from, id) end \
      if to ~= nil then redis.call('ZADD', base .. ':' .. to, id, id) end \
    end \
  end \
  if to ~= nil and to >= 2 then redis.call('ZADD', prefix .. 'ended', at, id) \
  else redis.call('ZREM', prefix .. 'ended', id) end \
end ";

/// Sets fields of an entry that exists, in the journal's generation: 1, or 0 for no such
/// entry, or -1 for another generation (flushed). A write that changes the state moves the
/// entry between the indexes of stages; any write to an ended entry moves its time in the
/// index of ended entries. KEYS: entry, generation. ARGV: the generation, the key prefix, the
/// entry id, `1` when the state changes (else `''`), now in ms, then field/value pairs.
static UPDATE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(&format!(
        "{PLACE} \
         if redis.call('GET', KEYS[2]) ~= ARGV[1] then return -1 end \
         if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end \
         local before = redis.call('HMGET', KEYS[1], 'state', 'outcome') \
         local from = stage_of(before[1], before[2]) \
         redis.call('HSET', KEYS[1], unpack(ARGV, 6)) \
         if ARGV[4] ~= '' then \
           local after = redis.call('HMGET', KEYS[1], 'state', 'outcome') \
           place(ARGV[2], KEYS[1], ARGV[3], from, stage_of(after[1], after[2]), ARGV[5]) \
         elseif from ~= nil and from >= 2 then \
           redis.call('ZADD', ARGV[2] .. 'ended', ARGV[5], ARGV[3]) \
         end \
         return 1"
    ))
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
/// print a 16-digit number in exponent form). The new entry goes into the indexes: every
/// entry, its stage (intended), each of its labels (any stage and intended). KEYS: sequence,
/// entries, latest, keys, jobs, generation. ARGV: entry key prefix, input, caller key (`''`
/// for none), job id, generation, the journal's key prefix, then the entry's field/value pairs
/// (`label_keys` among them when it has labels).
static CLAIM: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(&format!(
        "{PLACE} \
         if redis.call('GET', KEYS[6]) ~= ARGV[5] then return {{-1, 0}} end \
         if redis.call('EXISTS', KEYS[1]) == 0 then \
           local t = redis.call('TIME') \
           redis.call('SET', KEYS[1], t[1] .. string.format('%06d', tonumber(t[2]))) \
         end \
         if ARGV[3] ~= '' then \
           local held = redis.call('HGET', KEYS[4], ARGV[3]) \
           if held and redis.call('HGET', ARGV[1] .. held, 'state') ~= 'not_submitted' then \
             return {{0, tonumber(held)}} \
           end \
           if held then redis.call('HDEL', ARGV[1] .. held, 'key') end \
         end \
         local id = redis.call('INCR', KEYS[1]) \
         local sid = string.format('%d', id) \
         redis.call('HSET', ARGV[1] .. sid, unpack(ARGV, 7)) \
         redis.call('ZADD', KEYS[2], id, sid) \
         redis.call('HSET', KEYS[3], ARGV[2], sid) \
         if ARGV[3] ~= '' then redis.call('HSET', KEYS[4], ARGV[3], sid) end \
         redis.call('HSET', KEYS[5], ARGV[4], sid) \
         local labels = redis.call('HGET', ARGV[1] .. sid, 'label_keys') \
         if labels then \
           for base in string.gmatch(labels, '%S+') do redis.call('ZADD', base, id, sid) end \
         end \
         place(ARGV[6], ARGV[1] .. sid, sid, nil, 0, 0) \
         return {{1, id}}"
    ))
});

/// Removes the ended entries among ARGV[4..] last changed before ARGV[3], with their index
/// entries (every index: entries, latest, keys, jobs, stages, labels, ended): the job ids of
/// those removed, or -1 in another generation. KEYS: entries, latest, keys, jobs, generation.
/// ARGV: generation, the journal's key prefix, cut-off in ms, then entry ids.
static PRUNE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(&format!(
        "{PLACE} \
         if redis.call('GET', KEYS[5]) ~= ARGV[1] then return -1 end \
         local removed = {{}} \
         for i = 4, #ARGV do \
           local id = ARGV[i] \
           local entry = ARGV[2] .. 'entry:' .. id \
           local f = redis.call('HMGET', entry, 'state', 'updated_ms', 'at_ms', 'input', 'key', 'job', 'outcome') \
           local at = tonumber(f[2] or f[3]) \
           if f[1] and (f[1] == 'finished' or f[1] == 'not_submitted') and at and at < tonumber(ARGV[3]) then \
             place(ARGV[2], entry, id, stage_of(f[1], f[7]), nil, 0) \
             local labels = redis.call('HGET', entry, 'label_keys') \
             if labels then \
               for base in string.gmatch(labels, '%S+') do redis.call('ZREM', base, id) end \
             end \
             redis.call('DEL', entry) \
             redis.call('ZREM', KEYS[1], id) \
             if redis.call('HGET', KEYS[2], f[4]) == id then redis.call('HDEL', KEYS[2], f[4]) end \
             if f[5] and redis.call('HGET', KEYS[3], f[5]) == id then redis.call('HDEL', KEYS[3], f[5]) end \
             if f[6] then redis.call('HDEL', KEYS[4], f[6]) end \
             table.insert(removed, f[6] or ('entry-' .. id)) \
           end \
         end \
         return removed"
    ))
});

/// The entry an index names for a field, in one round trip: `nil`, or `{id, fields}` (`fields`
/// empty when the entry is gone). KEYS: the index. ARGV: the field, the entry key prefix.
static LOOKUP: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        "local id = redis.call('HGET', KEYS[1], ARGV[1]) \
         if not id then return nil end \
         return {id, redis.call('HGETALL', ARGV[2] .. id)}",
    )
});

/// Index entries written before the indexes of stages, labels and ended entries: each entry
/// named in ARGV[3..] gets its `label_keys` (from ARGV pairs: id, then its label keys or `''`)
/// and its places. KEYS: generation. ARGV: generation, the journal's key prefix, then pairs of
/// entry id and space-separated label keys.
static REINDEX: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(&format!(
        "{PLACE} \
         if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end \
         for i = 3, #ARGV, 2 do \
           local id = ARGV[i] \
           local entry = ARGV[2] .. 'entry:' .. id \
           local f = redis.call('HMGET', entry, 'state', 'outcome', 'updated_ms', 'at_ms') \
           if f[1] then \
             if ARGV[i + 1] ~= '' then \
               redis.call('HSET', entry, 'label_keys', ARGV[i + 1]) \
               for base in string.gmatch(ARGV[i + 1], '%S+') do redis.call('ZADD', base, id, id) end \
             end \
             place(ARGV[2], entry, id, nil, stage_of(f[1], f[2]), f[3] or f[4] or 0) \
           end \
         end \
         return 1"
    ))
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

    /// The entry an index (`latest`, `keys`, `jobs`) names for `field`, if any — looked up and
    /// read in one round trip.
    async fn indexed(&self, index: &str, field: &str) -> Result<Option<Entry>, JournalError> {
        counted("read", async {
            let found: Option<(String, HashMap<String, String>)> = LOOKUP
                .key(self.key(&[index]))
                .arg(field)
                .arg(self.key(&["entry", ""]))
                .invoke_async(&mut self.store.conn())
                .await
                .map_err(failed("read an entry by index"))?;
            let Some((id, fields)) = found else {
                return Ok(None);
            };
            let id: i64 = id.parse().map_err(|_| corrupt(self.key(&[index])))?;
            if fields.is_empty() {
                return Ok(None);
            }
            let entry =
                read_entry(EntryId(id), &fields).ok_or_else(|| corrupt(self.entry_key(EntryId(id))))?;
            // An index names an entry only if the entry says the same: after a flush, or a write
            // by an older version, an index must never hand one input another's entry.
            Ok(Some(entry).filter(|entry| match index {
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
            let label_keys = intent
                .labels
                .iter()
                .map(|(name, value)| self.label_key(name, value))
                .collect::<Vec<_>>()
                .join(" ");
            if !label_keys.is_empty() {
                fields.push(("label_keys", &label_keys));
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
                .arg(self.prefix())
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

    async fn prune(&self, before: SystemTime, at_most: usize) -> Result<Vec<Entry>, JournalError> {
        counted("prune", async {
            self.ensure_indexed().await?;
            let before = millis(before);
            // The oldest ended entries, from the index of ended entries by time.
            let ids: Vec<i64> = redis::cmd("ZRANGEBYSCORE")
                .arg(self.key(&["ended"]))
                .arg("-inf")
                .arg(format!("({before}"))
                .arg("LIMIT")
                .arg(0)
                .arg(at_most)
                .query_async(&mut self.store.conn())
                .await
                .map_err(failed("ZRANGEBYSCORE ended"))?;
            if ids.is_empty() {
                return Ok(Vec::new());
            }
            // Read first, so what is reported is what was removed.
            let mut conn = self.store.conn();
            let mut pipe = redis::pipe();
            for id in &ids {
                pipe.hgetall(self.entry_key(EntryId(*id)));
            }
            let hashes: Vec<HashMap<String, String>> = pipe
                .query_async(&mut conn)
                .await
                .map_err(failed("read entries to prune"))?;
            self.counted_rows(ids.len());
            let removed = self.remove(&before, &ids).await?;
            Ok(ids
                .into_iter()
                .zip(hashes)
                .filter_map(|(id, fields)| read_entry(EntryId(id), &fields))
                .filter(|entry| removed.contains(&entry.intent.job))
                .collect())
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
            // The prune script with a cut-off in the far future: this ended entry, whenever.
            Ok(!self
                .remove(&i64::MAX.to_string(), &[entry.id.0])
                .await?
                .is_empty())
        })
        .await
    }

    async fn page(&self, query: &EntryQuery) -> Result<EntryPage, JournalError> {
        counted("page", async {
            self.ensure_indexed().await?;
            let limit = query.limit.max(1);
            let streams: Vec<String> = match (query.leading_label(), query.stages.is_empty()) {
                (None, true) => vec![self.key(&["entries"])],
                (None, false) => query.stages.iter().map(|stage| self.stage_key(*stage)).collect(),
                (Some((name, value)), true) => vec![self.label_key(name, value)],
                (Some((name, value)), false) => query
                    .stages
                    .iter()
                    .map(|stage| format!("{}:{}", self.label_key(name, value), stage.index()))
                    .collect(),
            };
            let mut conn = self.store.conn();
            let mut entries: Vec<Entry> = Vec::new();
            let mut before = query.before.map_or(i64::MAX, |entry| entry.0);
            loop {
                // The newest ids of each stream below the position, merged; then the entries
                // of as many as the page still needs (and one more), in one round trip each.
                let need = limit + 1 - entries.len();
                let mut pipe = redis::pipe();
                for stream in &streams {
                    pipe.cmd("ZREVRANGEBYSCORE")
                        .arg(stream)
                        .arg(format!("({before}"))
                        .arg("-inf")
                        .arg("LIMIT")
                        .arg(0)
                        .arg(need);
                }
                let found: Vec<Vec<i64>> = pipe
                    .query_async(&mut conn)
                    .await
                    .map_err(failed("read a page of the journal"))?;
                let exhausted = found.iter().all(|ids| ids.len() < need);
                let mut ids: Vec<i64> = found.into_iter().flatten().collect();
                ids.sort_unstable_by(|a, b| b.cmp(a));
                ids.dedup();
                ids.truncate(need);
                let Some(&last) = ids.last() else { break };
                let mut pipe = redis::pipe();
                for id in &ids {
                    pipe.hgetall(self.entry_key(EntryId(*id)));
                }
                let hashes: Vec<HashMap<String, String>> = pipe
                    .query_async(&mut conn)
                    .await
                    .map_err(failed("read a page of the journal"))?;
                self.counted_rows(ids.len());
                for (id, fields) in ids.into_iter().zip(hashes) {
                    // Gone since the index named it (pruned, forgotten): not in the page.
                    if fields.is_empty() {
                        continue;
                    }
                    let entry = read_entry(EntryId(id), &fields)
                        .ok_or_else(|| corrupt(self.entry_key(EntryId(id))))?;
                    if query.matches(&entry) {
                        entries.push(entry);
                    }
                }
                before = last;
                if entries.len() > limit || exhausted {
                    break;
                }
            }
            let more = entries.len() > limit;
            entries.truncate(limit);
            Ok(EntryPage::new(entries, more))
        })
        .await
    }

    async fn recover(&self) -> Result<Recovery, JournalError> {
        counted("recover", async {
            self.ensure_indexed().await?;
            let mut conn = self.store.conn();
            let (intended, submitted): (Vec<i64>, Vec<i64>) = redis::pipe()
                .zrange(self.stage_key(Stage::Intended), 0, -1)
                .zrange(self.stage_key(Stage::Submitted), 0, -1)
                .query_async(&mut conn)
                .await
                .map_err(failed("read the entries not ended"))?;
            let mut ids: Vec<i64> = intended.into_iter().chain(submitted).collect();
            ids.sort_unstable();
            let mut recovery = Recovery::default();
            for chunk in ids.chunks(1000) {
                let mut pipe = redis::pipe();
                for id in chunk {
                    pipe.hgetall(self.entry_key(EntryId(*id)));
                }
                let hashes: Vec<HashMap<String, String>> = pipe
                    .query_async(&mut conn)
                    .await
                    .map_err(failed("read the entries not ended"))?;
                self.counted_rows(chunk.len());
                for (id, fields) in chunk.iter().zip(hashes) {
                    if fields.is_empty() {
                        continue;
                    }
                    let entry = read_entry(EntryId(*id), &fields)
                        .ok_or_else(|| corrupt(self.entry_key(EntryId(*id))))?;
                    match entry.state {
                        EntryState::Submitted { .. } => recovery.pending.push(entry),
                        EntryState::Intended => recovery.uncertain.push(entry),
                        _ => {}
                    }
                }
            }
            Ok(recovery)
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

impl RedisJournal {
    /// Removes the ended entries among `ids` changed before `before` (ms), with every index
    /// entry: the job ids of those removed.
    async fn remove(&self, before: &str, ids: &[i64]) -> Result<Vec<JobId>, JournalError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let generation = self.generation().await?.to_owned();
        let [entries, latest, keys, jobs] = self.indexes();
        let removed: redis::Value = PRUNE
            .key(entries)
            .key(latest)
            .key(keys)
            .key(jobs)
            .key(self.key(&["generation"]))
            .arg(&generation)
            .arg(self.prefix())
            .arg(before)
            .arg(ids)
            .invoke_async(&mut self.store.conn())
            .await
            .map_err(failed("prune entries"))?;
        match removed {
            redis::Value::Int(-1) => Err(self.flushed()),
            redis::Value::Array(jobs) => Ok(jobs
                .into_iter()
                .filter_map(|job| redis::from_redis_value::<String>(job).ok())
                .filter_map(|job| job.parse().ok())
                .collect()),
            _ => Ok(Vec::new()),
        }
    }

    /// Adds the entries written before the indexes of stages, labels and ended entries to them
    /// — once per handle, in steps of a thousand; a journal written by this version is indexed
    /// already and costs one read.
    async fn ensure_indexed(&self) -> Result<(), JournalError> {
        self.indexed
            .get_or_try_init(|| async {
                let mark = self.key(&["indexed"]);
                let mut conn = self.store.conn();
                let done: Option<String> = conn.get(&mark).await.map_err(failed("read the index mark"))?;
                if done.as_deref() == Some(INDEX_VERSION) {
                    return Ok(());
                }
                let generation = self.generation().await?.to_owned();
                let ids: Vec<i64> = conn
                    .zrange(self.key(&["entries"]), 0, -1)
                    .await
                    .map_err(failed("ZRANGE entries"))?;
                for chunk in ids.chunks(1000) {
                    let mut pipe = redis::pipe();
                    for id in chunk {
                        pipe.hget(self.entry_key(EntryId(*id)), "labels");
                    }
                    let labels: Vec<Option<String>> = pipe
                        .query_async(&mut conn)
                        .await
                        .map_err(failed("read labels to index"))?;
                    let mut args = Vec::with_capacity(chunk.len() * 2);
                    for (id, labels) in chunk.iter().zip(labels) {
                        let labels: BTreeMap<String, String> = labels
                            .and_then(|json| serde_json::from_str(&json).ok())
                            .unwrap_or_default();
                        args.push(id.to_string());
                        args.push(
                            labels
                                .iter()
                                .map(|(name, value)| self.label_key(name, value))
                                .collect::<Vec<_>>()
                                .join(" "),
                        );
                    }
                    let indexed: i64 = REINDEX
                        .key(self.key(&["generation"]))
                        .arg(&generation)
                        .arg(self.prefix())
                        .arg(args)
                        .invoke_async(&mut conn)
                        .await
                        .map_err(failed("index older entries"))?;
                    if indexed == -1 {
                        return Err(self.flushed());
                    }
                }
                let () = conn
                    .set(&mark, INDEX_VERSION)
                    .await
                    .map_err(failed("write the index mark"))?;
                Ok(())
            })
            .await
            .map(drop)
    }
}

/// The version of the indexes a journal's `indexed` mark names once they hold every entry.
const INDEX_VERSION: &str = "2";

/// `text` in lower-case hex: a label's name or value in an index key.
fn hex(text: &str) -> String {
    use std::fmt::Write as _;
    text.bytes()
        .fold(String::with_capacity(text.len() * 2), |mut out, byte| {
            let _ = write!(out, "{byte:02x}");
            out
        })
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

    async fn forget_all(&self, list: &str, sets: &[&str], jobs: &[JobId]) -> Result<(), JournalError> {
        counted("clear", async {
            // One pipeline for the lot.
            let mut pipe = redis::pipe();
            for job in jobs {
                pipe.del(self.key(&["log", job.as_str(), list])).ignore();
            }
            for set in sets {
                if !jobs.is_empty() {
                    let members: Vec<&str> = jobs.iter().map(JobId::as_str).collect();
                    pipe.srem(self.key(&["marks", set]), members).ignore();
                }
            }
            pipe.query_async::<()>(&mut self.store.conn())
                .await
                .map_err(failed("DEL logs"))
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
