//! `-v`: what dvt does, as it does it, on stderr (tracing's events).

use std::io::{IsTerminal, Write};

use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Starts writing events to stderr: with `-v` dvt's debug lines and the
/// libraries' information (object_store's retries, say), with `-vv` dvt's
/// trace lines and the libraries' debug lines. `DVT_LOG` (`target=level,…`,
/// as `dvt=trace,russh=debug`) chooses instead. Nothing without either.
/// Whether events are written (progress bars then stay away).
pub fn start(verbose: u8) -> bool {
    let from_env = std::env::var("DVT_LOG").ok().filter(|v| !v.trim().is_empty());
    let targets = match (&from_env, verbose) {
        (Some(spec), _) => match spec.parse::<Targets>() {
            Ok(t) => t,
            Err(e) => {
                eprintln!("warning: DVT_LOG=`{spec}` is not `target=level,…` ({e}); ignored");
                return false;
            }
        },
        (None, 0) => {
            // dvt's warnings still reach the user, as one line each.
            let _ = tracing_subscriber::registry()
                .with(Warnings)
                .with(Targets::new().with_target("dvt", LevelFilter::WARN))
                .try_init();
            return false;
        }
        (None, 1) => Targets::new()
            .with_target("dvt", LevelFilter::DEBUG)
            .with_default(LevelFilter::INFO),
        (None, _) => Targets::new()
            .with_target("dvt", LevelFilter::TRACE)
            .with_default(LevelFilter::DEBUG),
    };
    let stderr = std::io::stderr();
    let lines = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(stderr.is_terminal())
        .with_timer(tracing_subscriber::fmt::time::uptime());
    // Another subscriber cannot be set already: this runs once, first.
    tracing_subscriber::registry()
        .with(lines)
        .with(targets)
        .try_init()
        .is_ok()
}

/// Writes dvt's warning events (`tracing::warn!` in the library, which prints
/// nothing itself) to stderr as `warning: MESSAGE`, when `-v` is not given.
struct Warnings;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Warnings {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        struct Message(String);
        impl tracing::field::Visit for Message {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                if field.name() == "message" {
                    self.0 = format!("{value:?}");
                }
            }
        }
        let mut m = Message(String::new());
        event.record(&mut m);
        let _ = writeln!(std::io::stderr().lock(), "warning: {}", super::visible(&m.0));
    }
}
