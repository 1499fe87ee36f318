//! Command-line parsing and rendering. No logic here that the library lacks.

mod progress;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use dvt::ops;
use dvt::repo::{InitOptions, Repo};
use indicatif::HumanBytes;

use progress::Bars;

/// Version large data and models next to your git repository.
#[derive(Debug, Parser)]
#[command(name = "dvt", version, about, max_term_width = 100)]
struct Cli {
    /// Print nothing but errors and data; no progress bars.
    #[arg(short, long, global = true)]
    quiet: bool,
    /// Run as if started in DIR.
    #[arg(short = 'C', value_name = "DIR", global = true)]
    dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Make the current directory (a git work tree root) a dvt repository.
    Init {
        /// Allow a repository outside any git work tree.
        #[arg(long)]
        no_scm: bool,
        /// Allow a repository in a subdirectory of a git work tree.
        #[arg(long)]
        subdir: bool,
    },
    /// Store files or directories in the cache and write their `.dvt` pointers.
    Add {
        /// Files or directories to track.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show how the workspace and the cache differ from the pointers.
    Status {
        /// Data paths or `.dvt` files (default: all).
        targets: Vec<PathBuf>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Make the workspace match the pointers, from the cache.
    Checkout {
        /// Data paths or `.dvt` files (default: all).
        targets: Vec<PathBuf>,
        /// Overwrite or delete files with changes no pointer records.
        #[arg(short, long)]
        force: bool,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Stop tracking: delete the pointer and its `.gitignore` entry; keep the data.
    Remove {
        /// `.dvt` files or data paths.
        #[arg(required = true)]
        targets: Vec<PathBuf>,
    },
    /// Verify every object in the cache.
    Fsck {
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Parses the command line, runs it, renders errors; returns the exit code.
pub fn run() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    match execute(&cli) {
        Ok(code) => code,
        Err(e) => {
            render_error(&e);
            ExitCode::from(1)
        }
    }
}

fn render_error(e: &dvt::Error) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "error: {e}");
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        let _ = writeln!(err, "  caused by: {c}");
        cause = c.source();
    }
    if let Some(h) = e.hint() {
        let _ = writeln!(err, "hint: {h}");
    }
}

/// Writes to stdout; a closed pipe (`dvt status | head`) is not an error.
macro_rules! out {
    ($($t:tt)*) => {{
        let mut o = std::io::stdout().lock();
        if writeln!(o, $($t)*).is_err() { return Ok(ExitCode::SUCCESS); }
    }};
}

/// Writes a hint to stderr unless quiet.
macro_rules! note {
    ($quiet:expr, $($t:tt)*) => {{
        if !$quiet { let _ = writeln!(std::io::stderr().lock(), $($t)*); }
    }};
}

fn json(value: &impl serde::Serialize) -> Result<ExitCode, dvt::Error> {
    let text = serde_json::to_string_pretty(value).map_err(std::io::Error::other)?;
    out!("{text}");
    Ok(ExitCode::SUCCESS)
}

fn execute(cli: &Cli) -> Result<ExitCode, dvt::Error> {
    let cwd = match &cli.dir {
        Some(d) => std::path::absolute(d)?,
        None => std::env::current_dir()?,
    };
    let bars = Bars::new(cli.quiet);
    let q = cli.quiet;
    match &cli.command {
        Command::Init { no_scm, subdir } => {
            let repo = Repo::init(
                &cwd,
                &InitOptions {
                    no_scm: *no_scm,
                    subdir: *subdir,
                },
            )?;
            out!("Initialized dvt repository in {}", repo.root().display());
            note!(
                q,
                "hint: commit it with `git add .dvt && git commit -m \"Initialize dvt\"`"
            );
        }
        Command::Add { paths, json: as_json } => {
            let repo = Repo::open(&cwd)?;
            let opts = ops::AddOptions {
                paths: paths.clone(),
                cwd,
            };
            let report = ops::add(&repo, &opts, &bars)?;
            if *as_json {
                return json(&report);
            }
            for a in &report.added {
                let what = match a.files {
                    Some(n) => format!("{n} files, {}", HumanBytes(a.size)),
                    None => format!("{}", HumanBytes(a.size)),
                };
                let state = if a.unchanged { "unchanged" } else { "added" };
                out!("{state} {} ({what}) -> {}", a.path, a.pointer);
            }
            note!(
                q,
                "hashed {} files ({}), wrote {} to the cache",
                report.hashed_files,
                HumanBytes(report.hashed_bytes),
                HumanBytes(report.written_bytes)
            );
            let mut files: Vec<&str> = Vec::new();
            for a in report.added.iter().filter(|a| !a.unchanged) {
                files.push(&a.pointer);
                if !files.contains(&a.gitignore.as_str()) {
                    files.push(&a.gitignore);
                }
            }
            if !files.is_empty() {
                note!(
                    q,
                    "hint: to record this version with git, run:\n    git add {}",
                    files.join(" ")
                );
            }
        }
        Command::Status { targets, json: as_json } => {
            let repo = Repo::open(&cwd)?;
            let opts = ops::StatusOptions {
                targets: targets.clone(),
                cwd,
            };
            let report = ops::status(&repo, &opts, &bars)?;
            if *as_json {
                return json(&report);
            }
            let any_error = report.pointers.iter().any(|p| p.error.is_some());
            if report.pointers.is_empty() {
                out!("No data is tracked: add some with `dvt add PATH`.");
            } else if report.is_clean() {
                out!("Data and pointers are up to date.");
            }
            for p in report.pointers.iter().filter(|p| {
                p.workspace != ops::status::Workspace::Unchanged
                    || !p.missing_from_cache.is_empty()
                    || p.error.is_some()
            }) {
                if let Some(e) = &p.error {
                    out!("{}: error: {e}", p.pointer);
                    continue;
                }
                let state = match p.workspace {
                    ops::status::Workspace::Unchanged => "unchanged",
                    ops::status::Workspace::Modified => "modified",
                    ops::status::Workspace::Missing => "missing from the workspace",
                    ops::status::Workspace::Unknown => "not comparable (its manifest is not in the cache)",
                };
                out!("{}: {state}", p.pointer);
                for (label, list) in [
                    ("added", &p.added),
                    ("modified", &p.modified),
                    ("deleted", &p.deleted),
                    ("mode changed", &p.mode_changed),
                ] {
                    for path in list {
                        out!("    {label}: {path}");
                    }
                }
                if !p.missing_from_cache.is_empty() {
                    out!("    not in cache: {} object(s)", p.missing_from_cache.len());
                }
            }
            if !report.is_clean() && !any_error {
                note!(
                    q,
                    "hint: `dvt add PATH` records changes; `dvt checkout PATH` discards them"
                );
            }
            if any_error {
                return Ok(ExitCode::from(1));
            }
        }
        Command::Checkout {
            targets,
            force,
            json: as_json,
        } => {
            let repo = Repo::open(&cwd)?;
            let opts = ops::CheckoutOptions {
                targets: targets.clone(),
                cwd,
                force: *force,
            };
            let report = ops::checkout(&repo, &opts, &bars)?;
            if *as_json {
                return json(&report);
            }
            for p in &report.deleted {
                out!("deleted {p}");
            }
            for p in &report.mode_fixed {
                out!("mode fixed {p}");
            }
            if report.restored.len() <= 20 {
                for p in &report.restored {
                    out!("restored {p}");
                }
            }
            let n = report.restored.len();
            out!(
                "{n} file{} restored ({}), {} path(s) already up to date",
                if n == 1 { "" } else { "s" },
                HumanBytes(report.bytes),
                report.unchanged.len()
            );
        }
        Command::Remove { targets } => {
            let repo = Repo::open(&cwd)?;
            let report = ops::remove(
                &repo,
                &ops::RemoveOptions {
                    targets: targets.clone(),
                    cwd,
                },
            )?;
            for p in &report.removed {
                out!("removed {p}; the data stays in place, no longer tracked");
            }
        }
        Command::Fsck { json: as_json } => {
            let repo = Repo::open(&cwd)?;
            let report = ops::fsck(&repo, &bars)?;
            let bad = !report.corrupt.is_empty();
            if *as_json {
                json(&report)?;
            } else {
                for d in &report.corrupt {
                    out!("corrupt {}: {}", d.id, d.reason);
                }
                for s in &report.strays {
                    out!("stray file (not an object): {}", s.display());
                }
                out!(
                    "checked {} objects ({}): {}",
                    report.checked,
                    HumanBytes(report.bytes),
                    if bad {
                        format!("{} corrupt", report.corrupt.len())
                    } else {
                        "all intact".to_string()
                    }
                );
            }
            if bad {
                return Ok(ExitCode::from(1));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
