//! Progress bars on a terminal, drawn with indicatif; nothing otherwise.

use std::io::IsTerminal;
use std::sync::RwLock;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Draws the library's progress on stderr when it is a terminal.
pub struct Bars {
    enabled: bool,
    bar: RwLock<ProgressBar>,
}

impl Bars {
    /// Bars that draw only if stderr is a terminal and `quiet` is off.
    pub fn new(quiet: bool) -> Self {
        let enabled = !quiet && std::io::stderr().is_terminal() && std::env::var_os("CI").is_none();
        Bars {
            enabled,
            bar: RwLock::new(ProgressBar::hidden()),
        }
    }
}

impl dvt::progress::Progress for Bars {
    fn start(&self, label: &str, total: u64, bytes: bool) {
        if !self.enabled {
            return;
        }
        let template = if bytes {
            "{msg:.bold} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}"
        } else {
            "{msg:.bold} [{bar:30}] {pos}/{len} eta {eta}"
        };
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr_with_hz(10));
        bar.set_style(
            ProgressStyle::with_template(template)
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_message(label.to_string());
        bar.enable_steady_tick(Duration::from_millis(200));
        if let Ok(mut slot) = self.bar.write() {
            *slot = bar;
        }
    }

    fn inc(&self, n: u64) {
        if self.enabled
            && let Ok(bar) = self.bar.read()
        {
            bar.inc(n);
        }
    }

    fn message(&self, text: &str) {
        if self.enabled
            && let Ok(bar) = self.bar.read()
        {
            bar.set_message(text.to_string());
        }
    }

    fn finish(&self) {
        if self.enabled
            && let Ok(mut slot) = self.bar.write()
        {
            slot.finish_and_clear();
            *slot = ProgressBar::hidden();
        }
    }
}
