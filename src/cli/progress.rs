//! Progress bars on a terminal, drawn with indicatif; nothing otherwise.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use indicatif::{HumanBytes, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Draws the library's progress on stderr when it is a terminal; with
/// `-v`, logs each phase instead (its count and time).
pub struct Bars {
    enabled: bool,
    bar: RwLock<ProgressBar>,
    /// With `-v`: the phase under way.
    phase: Option<Mutex<Option<Phase>>>,
    done: AtomicU64,
}

/// A phase, for `-v`.
struct Phase {
    label: String,
    total: u64,
    bytes: bool,
    started: Instant,
}

impl Bars {
    /// Bars that draw only if stderr is a terminal and `quiet` is off; with
    /// `verbose`, none, and a line per phase.
    pub fn new(quiet: bool, verbose: bool) -> Self {
        let enabled = !quiet && !verbose && std::io::stderr().is_terminal() && std::env::var_os("CI").is_none();
        Bars {
            enabled,
            bar: RwLock::new(ProgressBar::hidden()),
            phase: verbose.then(|| Mutex::new(None)),
            done: AtomicU64::new(0),
        }
    }

    /// With `-v`: logs the end of the phase under way.
    fn end_phase(&self) {
        let Some(slot) = &self.phase else {
            return;
        };
        let Some(p) = slot.lock().unwrap_or_else(|e| e.into_inner()).take() else {
            return;
        };
        let done = self.done.swap(0, Ordering::Relaxed);
        let secs = p.started.elapsed().as_secs_f64();
        match p.bytes {
            true => tracing::debug!(
                target: "dvt::phase",
                "{}: {} of {} in {secs:.3} s",
                p.label,
                HumanBytes(done),
                HumanBytes(p.total)
            ),
            false => tracing::debug!(target: "dvt::phase", "{}: {done} of {} in {secs:.3} s", p.label, p.total),
        }
    }
}

impl dvt::progress::Progress for Bars {
    fn start(&self, label: &str, total: u64, bytes: bool) {
        if let Some(slot) = &self.phase {
            self.end_phase();
            match bytes {
                true => tracing::debug!(target: "dvt::phase", "{label}: {} to do", HumanBytes(total)),
                false => tracing::debug!(target: "dvt::phase", "{label}: {total} to do"),
            }
            *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(Phase {
                label: label.to_string(),
                total,
                bytes,
                started: Instant::now(),
            });
        }
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
        if self.phase.is_some() {
            self.done.fetch_add(n, Ordering::Relaxed);
        }
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
        self.end_phase();
        if self.enabled
            && let Ok(mut slot) = self.bar.write()
        {
            slot.finish_and_clear();
            *slot = ProgressBar::hidden();
        }
    }
}
