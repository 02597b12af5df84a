//! Shared set-up for the polling tests.

#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use daglo_client::{Client, Error, StatusAnswer};
use daglo_core::{Rid, Status, StatusBody, SttResult};
use daglo_poll::StatusSource;
use daglo_sim::{SimConfig, Simulator};
use tokio::time::Instant;

pub async fn sim(config: SimConfig) -> Simulator {
    Simulator::start(config).await.expect("emulator starts")
}

/// A client for `sim` whose own submit pacing is off: these tests pace submits themselves, in
/// the virtual time they share with the emulator, and the client's budget runs on real time.
pub fn client(sim: &Simulator) -> Client {
    Client::builder()
        .token(sim.token())
        .base_url(sim.base_url())
        .submit_budget(Arc::new(daglo_client::TokenBucket::new(1e9, 1_000_000)))
        .build()
        .expect("client builds")
}

/// A scripted job: progress rises linearly from its start to `length`; errors may be scripted
/// for its first requests.
#[derive(Debug, Clone)]
pub struct ScriptedJob {
    pub start: Instant,
    pub length: Duration,
    /// Progress stays here for ever when set (a stuck job).
    pub stuck_at: Option<u32>,
    /// HTTP statuses answered to the first requests.
    pub errors: Vec<u16>,
}

/// A status source without I/O, driven by tokio's (paused) clock; it records every request.
#[derive(Debug, Default)]
pub struct Scripted {
    pub jobs: Mutex<HashMap<Rid, ScriptedJob>>,
    pub requests: Mutex<Vec<(Rid, Instant)>>,
}

impl Scripted {
    pub fn add(&self, rid: &str, length: Duration) -> Rid {
        let rid = Rid::new(rid);
        self.jobs.lock().unwrap().insert(
            rid.clone(),
            ScriptedJob {
                start: Instant::now(),
                length,
                stuck_at: None,
                errors: Vec::new(),
            },
        );
        rid
    }

    pub fn edit(&self, rid: &Rid, edit: impl FnOnce(&mut ScriptedJob)) {
        edit(self.jobs.lock().unwrap().get_mut(rid).unwrap());
    }

    pub fn requests_for(&self, rid: &Rid) -> usize {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|(r, _)| r == rid)
            .count()
    }

    pub fn total_requests(&self) -> usize {
        self.requests.lock().unwrap().len()
    }

    /// When the job ends.
    pub fn end_of(&self, rid: &Rid) -> Instant {
        let jobs = self.jobs.lock().unwrap();
        let job = &jobs[rid];
        job.start + job.length
    }
}

fn api_error(status: u16) -> Error {
    // The client's own mapping of statuses, reached through a real decode of nothing.
    match status {
        401 => Error::Unauthorized {
            message: String::new(),
        },
        403 => Error::Forbidden {
            message: String::new(),
        },
        404 => Error::NotFound {
            message: String::new(),
        },
        429 => Error::RateLimited { attempts: 1 },
        code => Error::Server {
            status: code,
            message: String::new(),
            attempts: 1,
        },
    }
}

#[async_trait]
impl StatusSource for Scripted {
    async fn fetch(&self, rid: &Rid) -> Result<StatusAnswer, Error> {
        let now = Instant::now();
        self.requests.lock().unwrap().push((rid.clone(), now));
        let mut jobs = self.jobs.lock().unwrap();
        let Some(job) = jobs.get_mut(rid) else {
            return Err(api_error(404));
        };
        if !job.errors.is_empty() {
            return Err(api_error(job.errors.remove(0)));
        }
        let elapsed = now.saturating_duration_since(job.start);
        let mut body = StatusBody::new(Status::Transcribing);
        body.rid = Some(rid.clone());
        if let Some(stuck) = job.stuck_at {
            body.progress = Some(stuck);
        } else if elapsed >= job.length {
            body.status = Status::Transcribed;
            body.progress = Some(100);
            body.stt_results = Some(vec![SttResult::new("scripted words")]);
        } else {
            body.progress = Some((elapsed.as_nanos() * 100 / job.length.as_nanos()) as u32);
        }
        Ok(StatusAnswer::Body(Box::new(body)))
    }
}

/// Collects progress events.
#[derive(Debug, Default)]
pub struct Events(pub Mutex<Vec<daglo_core::ProgressEvent>>);

impl daglo_core::ProgressObserver for Events {
    fn on_event(&self, event: &daglo_core::ProgressEvent) {
        self.0.lock().unwrap().push(event.clone());
    }
}

pub fn scripted() -> Arc<Scripted> {
    Arc::new(Scripted::default())
}
