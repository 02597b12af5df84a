//! What the workspace's crates share and their users do not need: no stability promise.

use std::fmt::Write as _;

#[cfg(feature = "tls")]
pub use crate::tls::{install_crypto_provider, ring_provider};
pub use crate::transcript::srt_time;
use std::sync::{Mutex, MutexGuard};

/// Locks a mutex, recovering the data if a panicking thread poisoned it. Every critical section
/// in this workspace leaves its data consistent, so a panic elsewhere must not take the lock's
/// users down with it: the one poison-tolerant lock of the workspace.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

// Values from the network (rids, statuses, messages, file names) on a terminal: escaped and cut,
// so a hostile one can neither forge a line, move the cursor nor flood the screen. Both binaries
// (`daglo`, `daglo-serve`) print through these.

/// The most characters of one value shown.
pub const MAX_CHARS: usize = 200;

/// `value` with every control character escaped (`\n`, `\u{1b}`, …) and cut to [`MAX_CHARS`]
/// characters (an ellipsis says it was cut).
pub fn safe(value: &str) -> String {
    shown(value, MAX_CHARS)
}

/// `value` with every control character escaped, whole: for this program's own long lines
/// (paths, error chains of the journal) whose end matters.
pub fn escaped(value: &str) -> String {
    shown(value, usize::MAX)
}

fn shown(value: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(value.len().min(max_chars.saturating_add(8)));
    for (shown, c) in value.chars().enumerate() {
        if shown == max_chars {
            out.push('…');
            break;
        }
        if c.is_control()
            || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        {
            let _ = write!(out, "{}", c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Creates `dir` (and its parents) when missing; on Unix a folder it creates is `0700`.
pub fn private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Creates (or truncates) `path` for writing; on Unix a file it creates is `0600`.
pub fn private_file(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_long_values_cut() {
        assert_eq!(safe("r-1"), "r-1");
        assert_eq!(safe("a\nb\u{1b}[2J"), "a\\nb\\u{1b}[2J");
        assert_eq!(safe("x\u{202e}y"), "x\\u{202e}y");
        let long = "r".repeat(10_000);
        let shown = safe(&long);
        assert_eq!(shown.chars().count(), MAX_CHARS + 1);
        assert!(shown.ends_with('…'));
        assert_eq!(safe("다글로"), "다글로");
    }
}
