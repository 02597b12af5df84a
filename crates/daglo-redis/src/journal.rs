//! [`RedisJournal`]: the job journal on Redis, so any replica can recover any replica's jobs.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use daglo_core::{Entry, EntryId, EntryState, Intent, Journal, JournalError, OutcomeKind, Rid};
use redis::AsyncCommands;

use crate::store::{RedisError, RedisStore, command};

/// The job journal on Redis: one hash per entry and a sorted index of them, under the store's
/// namespace and a journal name. Every replica that opens the same name sees every entry, so
/// any of them can resume the jobs another one submitted.
///
/// Each write has completed on Redis when its future returns; how durable that is across a
/// Redis restart is Redis's persistence setting (`appendonly yes` with `appendfsync always`
/// for the same guarantee as the SQLite journal). Like every journal it keeps no secret and no
/// transcript.
#[derive(Debug, Clone)]
pub struct RedisJournal {
    store: RedisStore,
    name: String,
}

impl RedisJournal {
    /// The journal called `name` (for example the batch or service it belongs to) on `store`.
    pub fn new(store: RedisStore, name: &str) -> Self {
        Self {
            store,
            name: name.to_owned(),
        }
    }

    fn key(&self, parts: &[&str]) -> String {
        let mut all = vec!["journal", self.name.as_str()];
        all.extend_from_slice(parts);
        self.store.key(&all)
    }

    fn entry_key(&self, id: EntryId) -> String {
        self.key(&["entry", &id.0.to_string()])
    }

    /// Sets fields of an existing entry; an entry the journal does not hold is an error.
    async fn update(&self, id: EntryId, fields: &[(&str, &str)]) -> Result<(), JournalError> {
        let key = self.entry_key(id);
        let updated: i64 = redis::Script::new(
            "if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end \
             redis.call('HSET', KEYS[1], unpack(ARGV)) return 1",
        )
        .key(&key)
        .arg(fields.iter().flat_map(|(k, v)| [*k, *v]).collect::<Vec<_>>())
        .invoke_async(&mut self.store.conn())
        .await
        .map_err(failed("update entry"))?;
        if updated == 0 {
            return Err(JournalError::message(format!("the journal has no entry {id}")));
        }
        Ok(())
    }
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
    async fn intend(&self, intent: Intent) -> Result<EntryId, JournalError> {
        let mut conn = self.store.conn();
        let id: i64 = conn
            .incr(self.key(&["seq"]), 1)
            .await
            .map_err(failed("INCR sequence"))?;
        let key = self.entry_key(EntryId(id));
        redis::pipe()
            .atomic()
            .hset_multiple(
                &key,
                &[
                    ("input", intent.input.as_str()),
                    ("options_digest", intent.options_digest.as_str()),
                    ("strategy", intent.strategy.as_str()),
                    ("at_ms", millis(intent.at).as_str()),
                    ("state", "intended"),
                ],
            )
            .ignore()
            .zadd(self.key(&["entries"]), id, id)
            .ignore()
            .hset(self.key(&["latest"]), intent.input.as_str(), id)
            .ignore()
            .exec_async(&mut conn)
            .await
            .map_err(failed("record intent"))?;
        Ok(EntryId(id))
    }

    async fn not_submitted(&self, id: EntryId, reason: &str) -> Result<(), JournalError> {
        self.update(id, &[("state", "not_submitted"), ("reason", reason)])
            .await
    }

    async fn submitted(&self, id: EntryId, rid: &Rid) -> Result<(), JournalError> {
        self.update(id, &[("state", "submitted"), ("rid", rid.as_str())])
            .await
    }

    async fn finished(
        &self,
        id: EntryId,
        outcome: &OutcomeKind,
        result: Option<&str>,
    ) -> Result<(), JournalError> {
        self.update(
            id,
            &[
                ("state", "finished"),
                ("outcome", outcome.as_str()),
                ("result", result.unwrap_or("")),
            ],
        )
        .await
    }

    async fn latest_for(&self, input: &str) -> Result<Option<Entry>, JournalError> {
        let mut conn = self.store.conn();
        let id: Option<i64> = conn
            .hget(self.key(&["latest"]), input)
            .await
            .map_err(failed("HGET latest entry"))?;
        let Some(id) = id else { return Ok(None) };
        let fields: HashMap<String, String> = conn
            .hgetall(self.entry_key(EntryId(id)))
            .await
            .map_err(failed("read entry"))?;
        if fields.is_empty() {
            return Ok(None);
        }
        read_entry(EntryId(id), &fields)
            .map(Some)
            .ok_or_else(|| corrupt(self.entry_key(EntryId(id))))
    }

    async fn entries(&self) -> Result<Vec<Entry>, JournalError> {
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
    }
}

fn read_entry(id: EntryId, fields: &HashMap<String, String>) -> Option<Entry> {
    let field = |name: &str| fields.get(name).cloned();
    let at = UNIX_EPOCH + Duration::from_millis(field("at_ms")?.parse().ok()?);
    let mut intent = Intent::new(field("input")?, field("options_digest")?, field("strategy")?);
    intent.at = at;
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
    let mut entry = Entry::new(id, intent);
    entry.state = state;
    Some(entry)
}
