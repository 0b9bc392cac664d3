//! Progress bars for copies (`put`, `get`, `cp`, `getmerge`, `append`): bytes, rate and ETA on
//! standard error, only when it is a terminal, so scripts and CI logs stay clean.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A copy's bar, or nothing when standard error is not a terminal.
pub(super) struct Progress(Option<ProgressBar>);

impl Progress {
    /// A bar for copying `total` bytes (a spinner with a byte count when the size is unknown,
    /// as for stdin), labelled `what`.
    pub(super) fn new(what: &str, total: Option<u64>) -> Progress {
        if !std::io::stderr().is_terminal() {
            return Progress(None);
        }
        let (bar, template) = match total {
            Some(n) => (
                ProgressBar::with_draw_target(Some(n), ProgressDrawTarget::stderr()),
                "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
            ),
            None => (
                ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()),
                "{msg} {spinner} {bytes} {bytes_per_sec}",
            ),
        };
        let style = ProgressStyle::with_template(template)
            .expect("the templates are valid")
            .progress_chars("=> ");
        let bar = bar.with_style(style).with_message(what.to_string());
        bar.enable_steady_tick(Duration::from_millis(200));
        Progress(Some(bar))
    }

    /// No bar (`cat`: its output is the terminal's).
    pub(super) fn none() -> Progress {
        Progress(None)
    }

    pub(super) fn add(&self, bytes: usize) {
        if let Some(b) = &self.0 {
            b.inc(bytes as u64);
        }
    }

    /// Leaves the bar at its final state.
    pub(super) fn finish(&self) {
        if let Some(b) = &self.0 {
            b.finish();
        }
    }
}

impl Drop for Progress {
    /// A copy that failed leaves its bar where it stopped, before the error line.
    fn drop(&mut self) {
        if let Some(b) = &self.0 {
            if !b.is_finished() {
                b.abandon();
            }
        }
    }
}
