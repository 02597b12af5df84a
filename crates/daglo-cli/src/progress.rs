//! The progress bar, fed by the strategy's progress events.

use std::time::Duration;

use daglo::{ProgressEvent, ProgressObserver};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

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
        Bar(bar)
    }

    pub(crate) fn finish(&self) {
        self.0.finish_and_clear();
    }
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
