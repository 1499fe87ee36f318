//! `-v`: what dvt does, as it does it, on stderr (tracing's events).

use std::io::IsTerminal;

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
        (None, 0) => return false,
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
