//! Group commit of the registry's compare-and-sets, on a writer thread of their own.
//!
//! - **Group commit.** The writes that queue up while earlier ones are in flight go to Redis
//!   together, as one script call that publishes one wake-up. Each writer still waits until
//!   Redis has applied its write — nothing is answered before it is stored — but a burst of
//!   callbacks costs Redis one command, one script run and one published message per batch
//!   instead of per callback. A batch gathers while the one before it is applied, and takes
//!   the writes that keep coming for up to 100 µs; a lone write goes after one look at the
//!   queue.
//! - **A writer thread.** The batches run on a thread with a runtime of its own, each registry
//!   with a Redis connection of its own, so a reply is read the moment it arrives rather than
//!   when a busy worker of the application's runtime next looks at its sockets (1.2× the
//!   callbacks a second on 2 cores, `cargo bench --bench receiver`). One thread serves every
//!   registry of the process (`daglo-redis-writer`, started by the first); a registry's work on
//!   it ends with the registry.
//! - **A writer that sleeps at once.** The writer waits for the next write without looking for
//!   it in a loop first: looking saved a thread wake-up per write on an idle machine, but on a
//!   busy one three writers looking took a quarter of two cores from the receivers
//!   (`docs/architecture.md`, "One writer thread per process, and it sleeps at once").
//!
//! `docs/architecture.md`, "Group commit and the writer thread", has the measurements.

use redis::Script;
use redis::aio::ConnectionManager;
use tokio::sync::{OnceCell, mpsc, oneshot};
use tracing::warn;

use crate::store::{RedisError, RedisStore, command};

/// Writes in one script call at most (a batch holds Redis for well under a millisecond).
const MAX_BATCH: usize = 64;
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
        let mut writer = Writer {
            store,
            script: Script::new(include_str!("scripts/cas_views.lua")),
            channel,
            connection: OnceCell::new(),
        };
        if let Some(runtime) = writer_runtime() {
            runtime.spawn(commit(writer, pending));
            return Self {
                queue,
                runtime: Some(runtime.clone()),
            };
        }
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

/// The process's writer thread's runtime, started on first use; `None` if no thread or runtime
/// could be had (then every registry writes from its caller's runtime).
fn writer_runtime() -> Option<&'static tokio::runtime::Handle> {
    static RUNTIME: std::sync::OnceLock<Option<tokio::runtime::Handle>> = std::sync::OnceLock::new();
    RUNTIME.get_or_init(start_writer_thread).as_ref()
}

/// Starts the writer thread: a runtime of its own that runs the registries' batches and
/// wake-up subscriptions for as long as the process lives (idle, it only sleeps).
fn start_writer_thread() -> Option<tokio::runtime::Handle> {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            warn!(%error, "no runtime for the Redis writer thread; writing from the caller's");
            return None;
        }
    };
    let handle = runtime.handle().clone();
    let spawned = std::thread::Builder::new()
        .name("daglo-redis-writer".to_owned())
        .spawn(move || runtime.block_on(std::future::pending::<()>()));
    match spawned {
        Ok(_) => Some(handle),
        Err(error) => {
            warn!(%error, "cannot start the Redis writer thread; writing from the caller's runtime");
            None
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
        invocation
            .arg(&self.channel)
            .arg(crate::known::PUBLISHED_STATE_BYTES);
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
    let mut queue = Queue { pending };
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

/// The writes waiting for the writer.
struct Queue {
    pending: Pending,
}

impl Queue {
    /// The next write; `None` once the queue is closed.
    async fn next(&mut self) -> Option<(Write, Answer)> {
        self.pending.recv().await
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
