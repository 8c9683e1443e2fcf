//! The progress bar: bytes read of the current file, on standard error.

use crate::analyze::Progress;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// An indicatif bar on standard error: bytes read of the current file.
pub(super) struct Bar {
    bar: ProgressBar,
}

impl Bar {
    pub(super) fn new() -> Self {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        Bar { bar }
    }
}

impl Progress for Bar {
    fn start_file(&mut self, name: &str, size: Option<u64>) {
        let template = if size.is_some() {
            "{msg} [{bar:40}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta})"
        } else {
            "{msg} {bytes} ({bytes_per_sec})"
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            self.bar.set_style(style.progress_chars("=> "));
        }
        self.bar.set_length(size.unwrap_or(0));
        self.bar.set_position(0);
        self.bar.set_message(name.to_owned());
    }

    fn advance(&mut self, bytes_read: u64) {
        self.bar.set_position(bytes_read);
    }

    fn finish(&mut self) {
        self.bar.finish_and_clear();
    }
}
