//! How long operations report progress. The library calls this trait; the CLI
//! draws it (or not). The library itself never prints.

/// Receives progress from long operations. Implementations must be cheap to call
/// from many threads.
pub trait Progress: Sync {
    /// A new phase begins: `label` names it, `total` counts its items or bytes.
    fn start(&self, label: &str, total: u64, bytes: bool);
    /// `n` more items or bytes of the current phase are done.
    fn inc(&self, n: u64);
    /// The current phase is over.
    fn finish(&self);
    /// Replaces the current phase's label (to show a second count, say).
    fn message(&self, _text: &str) {}
}

/// Progress that goes nowhere.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&self, _: &str, _: u64, _: bool) {}
    fn inc(&self, _: u64) {}
    fn finish(&self) {}
}
