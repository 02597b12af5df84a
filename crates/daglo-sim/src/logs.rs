//! Capturing what the code under test logs, to prove what never appears there (tokens,
//! credentials, transcript text).

use daglo_core::internal::lock;
use std::fmt;
use std::io::Write;
use std::sync::{Arc, Mutex};

use tracing::subscriber::DefaultGuard;

/// Every `tracing` event at every level, formatted without colour, captured on this thread
/// while the capture lives.
///
/// The subscriber is the thread's default, so run the test on a current-thread runtime (every
/// task then logs through it), and keep such a test in a test binary of its own: tracing caches
/// per callsite whether anyone is interested, and a test running beside it without a subscriber
/// can switch a callsite off for the capturing one.
///
/// ```
/// use daglo_sim::LogCapture;
///
/// let logs = LogCapture::start();
/// tracing::warn!(user = "ada", "something happened");
/// assert!(logs.text().contains("something happened"));
/// assert!(!logs.text().contains("secret"));
/// ```
pub struct LogCapture {
    buffer: Buffer,
    _guard: DefaultGuard,
}

impl LogCapture {
    /// Starts capturing on this thread.
    pub fn start() -> Self {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        Self {
            buffer,
            _guard: tracing::subscriber::set_default(subscriber),
        }
    }

    /// Everything logged so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.buffer.lock()).into_owned()
    }
}

impl fmt::Debug for LogCapture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogCapture")
            .field("bytes", &self.buffer.lock().len())
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Buffer {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<u8>> {
        lock(&self.0)
    }
}

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.lock().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
