//! The progress bar, fed by the strategy's progress events.

use std::time::Duration;

use daglo::{ProgressEvent, ProgressObserver};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A bar on stderr (hidden when stderr is not a terminal), moved by progress events.
#[derive(Debug, Clone)]
pub(crate) struct Bar(ProgressBar);

impl Bar {
    pub(crate) fn new() -> Self {
        let bar = ProgressBar::with_draw_target(Some(100), ProgressDrawTarget::stderr());
        if let Ok(style) =
            ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:40} {pos:>3}% {msg}")
        {
            bar.set_style(style);
        }
        bar.enable_steady_tick(Duration::from_millis(200));
        bar.set_message("submitted");
        Self(bar)
    }

    /// One job's line under a batch's overall bar.
    pub(crate) fn in_batch(multi: &MultiProgress, label: &str) -> Self {
        let bar = multi.add(ProgressBar::new(100));
        if let Ok(style) = ProgressStyle::with_template("  {bar:20} {pos:>3}% {prefix} {msg}") {
            bar.set_style(style);
        }
        bar.set_prefix(label.to_owned());
        bar.set_message("submitting");
        Self(bar)
    }

    pub(crate) fn finish(&self) {
        self.0.finish_and_clear();
    }
}

/// A batch's overall bar: inputs finished out of all, with an ETA.
pub(crate) fn overall(multi: &MultiProgress, total: usize) -> ProgressBar {
    let bar = multi.add(ProgressBar::new(total as u64));
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} inputs, ETA {eta} {msg}",
    ) {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// Where a batch draws: stderr, hidden when it is not a terminal.
pub(crate) fn multi() -> MultiProgress {
    MultiProgress::with_draw_target(ProgressDrawTarget::stderr())
}

impl ProgressObserver for Bar {
    fn on_event(&self, event: &ProgressEvent) {
        match event {
            ProgressEvent::Progress { status, percent, .. } => {
                if let Some(percent) = percent {
                    self.0.set_position(u64::from(*percent));
                }
                self.0.set_message(status.to_string());
            }
            ProgressEvent::Stalled { unchanged_for, .. } => {
                self.0
                    .set_message(format!("no progress for {}s", unchanged_for.as_secs()));
            }
            _ => {}
        }
    }
}
