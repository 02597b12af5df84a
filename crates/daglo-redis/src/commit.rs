//! Group commit of the registry's compare-and-sets, on a writer thread of their own.
//!
//! - **Group commit.** The writes that queue up while earlier ones are in flight go to Redis
//!   together, as one script call that publishes one wake-up. Each writer still waits until
//!   Redis has applied its write — nothing is answered before it is stored — but a burst of
//!   callbacks costs Redis one command, one script run and one published message per batch
//!   instead of per callback. A batch gathers while the one before it is applied, and takes
//!   the writes that keep coming for up to 100 µs; a lone write goes after one look at the
//!   queue.
//! - **A writer thread.** The batches run on a thread with a runtime of its own and a Redis
//!   connection of its own, so a reply is read the moment it arrives rather than when a busy
//!   worker of the application's runtime next looks at its sockets (1.2× the callbacks a second
//!   on 2 cores, `cargo bench --bench receiver`). The thread ends when its registry is dropped.
//! - **A writer that looks before it sleeps.** While writes come close together, the writer
//!   looks for the next one for up to 200 µs before it sleeps, so a callback's write wakes no
//!   thread; once they come further apart it sleeps at once (the Redis row from a median 0.51×
//!   to 0.59× of the in-memory one on 2 cores, alternated runs).
//!
//! `docs/architecture.md`, "Group commit and the writer thread" and "The writer looks before
//! it sleeps", has the measurements.

use daglo_core::internal::lock;
use std::sync::Arc;

use redis::Script;
use redis::aio::ConnectionManager;
use tokio::sync::{OnceCell, mpsc, oneshot};
use tracing::warn;

use crate::store::{RedisError, RedisStore, command};

/// Writes in one script call at most (a batch holds Redis for well under a millisecond).
const MAX_BATCH: usize = 64;
/// How long the writer looks for the next write before it sleeps, while writes come closer
/// together than this.
const LOOK: std::time::Duration = std::time::Duration::from_micros(200);
/// How long a batch may wait for more writes, while they keep coming.
const LINGER: std::time::Duration = std::time::Duration::from_micros(100);

/// One compare-and-set.
pub(crate) struct Write {
    /// The job's hash.
    pub(crate) hash: String,
    /// The job key (named in the wake-up).
    pub(crate) key: String,
    /// The version the writer started from.
    pub(crate) version: u64,
    /// The new state, encoded.
    pub(crate) state: String,
}

/// What Redis did with one write.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Written {
    /// Stored at this version, and published.
    At(u64),
    /// The job is not registered.
    Gone,
    /// Another writer came first: the stored version and state.
    Conflict(u64, String),
}

type Answer = oneshot::Sender<Result<Written, RedisError>>;

/// The queue of writes, and the thread that commits them.
pub(crate) struct Committer {
    queue: mpsc::UnboundedSender<(Write, Answer)>,
    /// The writer thread's runtime, if there is one.
    runtime: Option<tokio::runtime::Handle>,
}

impl Committer {
    /// A committer writing through a connection of its own to `store`'s Redis, publishing on
    /// `channel`. Its thread ends when the committer is dropped (batches in flight are
    /// answered first).
    pub(crate) fn start(store: RedisStore, channel: String) -> Self {
        let (queue, pending) = mpsc::unbounded_channel();
        let writer = Writer {
            store,
            script: Script::new(include_str!("scripts/cas_views.lua")),
            channel,
            connection: OnceCell::new(),
        };
        let (mut writer, pending) = match spawn_thread(writer, pending) {
            Ok(runtime) => {
                return Self {
                    queue,
                    runtime: Some(runtime),
                };
            }
            Err(back) => *back,
        };
        // No thread to be had: the batches run on the caller's runtime, through the store's
        // shared connection (correct, only slower).
        writer.connection = OnceCell::new_with(Some(writer.store.conn()));
        tokio::spawn(commit(writer, pending));
        Self { queue, runtime: None }
    }

    /// The writer thread's runtime, for other Redis work that should not wait for a busy
    /// application runtime (the wake-up subscription); `None` without a writer thread.
    pub(crate) fn runtime(&self) -> Option<&tokio::runtime::Handle> {
        self.runtime.as_ref()
    }

    /// Commits `write`, answering once Redis applied it (or the command failed).
    pub(crate) async fn write(&self, write: Write) -> Result<Written, RedisError> {
        let (done, answer) = oneshot::channel();
        if self.queue.send((write, done)).is_err() {
            return Err(stopped());
        }
        answer.await.unwrap_or_else(|_| Err(stopped()))
    }
}

type Pending = mpsc::UnboundedReceiver<(Write, Answer)>;

/// Starts the writer thread and answers its runtime; gives the writer back if the thread could
/// not be started.
fn spawn_thread(writer: Writer, pending: Pending) -> Result<tokio::runtime::Handle, Box<(Writer, Pending)>> {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            warn!(%error, "no runtime for the Redis writer thread; writing from the caller's");
            return Err(Box::new((writer, pending)));
        }
    };
    // The thread takes both only once it runs: a failed spawn hands them back.
    let handle = runtime.handle().clone();
    let handoff = Arc::new(std::sync::Mutex::new(Some((writer, pending))));
    let taken = handoff.clone();
    let spawned = std::thread::Builder::new()
        .name("daglo-redis-writer".to_owned())
        .spawn(move || {
            let taken = lock(&taken).take();
            if let Some((writer, pending)) = taken {
                runtime.block_on(commit(writer, pending));
            }
        });
    match spawned {
        Ok(_) => Ok(handle),
        Err(error) => {
            warn!(%error, "cannot start the Redis writer thread; writing from the caller's runtime");
            // A failed spawn never ran the closure: the hand-off is still there.
            match lock(&handoff).take() {
                Some(back) => Err(Box::new(back)),
                None => Ok(handle),
            }
        }
    }
}

/// What the writer needs.
struct Writer {
    store: RedisStore,
    script: Script,
    channel: String,
    /// Opened on the writer's runtime at the first batch, and again after a failed open.
    connection: OnceCell<ConnectionManager>,
}

impl Writer {
    /// The writer's connection, opened if need be (a failed open is tried again next time).
    async fn connection(&self) -> Result<ConnectionManager, RedisError> {
        self.connection
            .get_or_try_init(|| self.store.open_another())
            .await
            .cloned()
    }

    /// One script call for `writes`; one reply for each, in order.
    async fn apply(&self, writes: &[Write]) -> Result<Vec<Written>, RedisError> {
        let mut invocation = self.script.prepare_invoke();
        invocation.arg(&self.channel);
        for write in writes {
            invocation
                .key(&write.hash)
                .arg(write.version)
                .arg(&write.state)
                .arg(&write.key);
        }
        let replies: Vec<(i64, u64, String)> = invocation
            .invoke_async(&mut self.connection().await?)
            .await
            .map_err(command("compare-and-set jobs"))?;
        if replies.len() != writes.len() {
            return Err(RedisError::Corrupt {
                key: self.channel.clone(),
                reason: format!(
                    "the compare-and-set answered {} replies for {} writes",
                    replies.len(),
                    writes.len()
                ),
            });
        }
        Ok(replies
            .into_iter()
            .map(|(written, version, state)| match written {
                -1 => Written::Gone,
                -2 => Written::Conflict(version, state),
                version => Written::At(version.unsigned_abs()),
            })
            .collect())
    }
}

/// Takes the queued writes in batches until the queue closes. One batch is in flight at a
/// time: the next one gathers while Redis applies it (two in flight made batches smaller and
/// the bench no faster).
async fn commit(writer: Writer, pending: Pending) {
    let mut queue = Queue { pending, look: false };
    while let Some(first) = queue.next().await {
        let (writes, answers): (Vec<Write>, Vec<Answer>) = queue.more(first).await.into_iter().unzip();
        match writer.apply(&writes).await {
            Ok(replies) => {
                for (answer, reply) in answers.into_iter().zip(replies) {
                    let _ = answer.send(Ok(reply));
                }
            }
            Err(error) => {
                for answer in answers {
                    let _ = answer.send(Err(error.clone()));
                }
            }
        }
    }
}

/// The writes waiting for the writer, and how it waits for them.
struct Queue {
    pending: Pending,
    /// Whether the last write came within [`LOOK`] of the writer starting to wait for it.
    look: bool,
}

impl Queue {
    /// The next write; `None` once the queue is closed.
    ///
    /// While writes come close together the writer looks for the next one for up to [`LOOK`]
    /// (yielding to its runtime in between, so replies are read meanwhile) before it sleeps: a
    /// write that arrives while it looks wakes nobody, where waking a sleeping thread costs the
    /// sender and the machine more than the whole rest of an in-memory callback. Once writes
    /// come further apart, it sleeps at once.
    async fn next(&mut self) -> Option<(Write, Answer)> {
        let started = std::time::Instant::now();
        if self.look {
            while started.elapsed() < LOOK {
                match self.pending.try_recv() {
                    Ok(write) => return Some(write),
                    Err(mpsc::error::TryRecvError::Disconnected) => return None,
                    Err(mpsc::error::TryRecvError::Empty) => tokio::task::yield_now().await,
                }
            }
        }
        let write = self.pending.recv().await;
        self.look = started.elapsed() < LOOK;
        write
    }

    /// A batch: `first`, and the writes that come after it while they keep coming (each look
    /// that finds none ends it), for up to [`LINGER`] and [`MAX_BATCH`] writes.
    async fn more(&mut self, first: (Write, Answer)) -> Vec<(Write, Answer)> {
        let started = std::time::Instant::now();
        let mut batch = vec![first];
        let mut came = true;
        while batch.len() < MAX_BATCH {
            match self.pending.try_recv() {
                Ok(write) => {
                    batch.push(write);
                    came = true;
                }
                Err(mpsc::error::TryRecvError::Empty) if came && started.elapsed() < LINGER => {
                    came = false;
                    tokio::task::yield_now().await;
                }
                Err(_) => break,
            }
        }
        batch
    }
}

/// The writer is gone (only while its registry is being dropped).
fn stopped() -> RedisError {
    command("compare-and-set jobs")(redis::RedisError::from((
        redis::ErrorKind::Client,
        "the registry's writer stopped",
    )))
}
