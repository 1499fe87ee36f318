//! `dvt exp run|show|list|apply|branch|remove`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::process::ExitCode;

use clap::Subcommand;
use dvt::ops;
use dvt::ops::exp::ExpRow;
use dvt::repo::Repo;

use super::json;
use super::progress::Bars;

#[derive(Debug, Subcommand)]
pub(super) enum ExpCommand {
    /// Change params (`-S`), reproduce the pipeline, and record the whole work
    /// tree as an experiment on top of HEAD (HEAD and the branch do not move)
    Run {
        /// Stages to reproduce, with everything upstream of them (default: all).
        stages: Vec<String>,
        /// Set a param first: `[FILE:]KEY=VALUE`, FILE defaulting to params.yaml
        /// (repeatable); `+KEY=VALUE` adds one, `++KEY=VALUE` sets or adds it, `~KEY` removes it.
        #[arg(short = 'S', long = "set-param", value_name = "[FILE:]KEY=VALUE")]
        set_param: Vec<String>,
        /// The experiment's name (default: one made from its commit).
        #[arg(short, long)]
        name: Option<String>,
        /// The first line of the experiment's commit message (the params set follow it).
        #[arg(short, long, short_alias = 'M')]
        message: Option<String>,
        /// Run the stages even if nothing changed, and replace an experiment of the same name.
        #[arg(short, long)]
        force: bool,
        /// Queue it for `dvt queue start` instead of running it; `-S KEY=A,B`
        /// (or `choice(A,B)`, `range(START,STOP,STEP)`) then queues one
        /// experiment per value (every combination, with several).
        #[arg(long)]
        queue: bool,
        /// Run it in a git worktree made for it under `.dvt/tmp/exps`, from the
        /// work tree as it is now, leaving this workspace as it is.
        #[arg(long, conflicts_with = "queue")]
        temp: bool,
        /// With `--temp` or `--queue`: copy this path (git ignores it, or does not
        /// track it: a secret, a local config) from the workspace into the run's
        /// worktree as it starts (repeatable; DVC's `--copy-paths`, without `-C`).
        #[arg(long = "copy-paths", value_name = "PATH")]
        copy_paths: Vec<std::path::PathBuf>,
        /// As `dvt repro --pull`: first download the stages' recorded outs, and
        /// look for runs the local run cache lacks in the remote's.
        #[arg(long, conflicts_with_all = ["queue", "temp"])]
        pull: bool,
        /// With `--pull`: this remote instead of the default one.
        #[arg(long, value_name = "NAME", requires = "pull")]
        remote: Option<String>,
        /// Run stages even when the run cache holds a run with the same
        /// command, deps and params (as `dvt repro --no-run-cache`).
        #[arg(long, conflicts_with_all = ["queue", "temp"])]
        no_run_cache: bool,
        /// As `dvt repro`'s; a queued experiment keeps them. A failed stage
        /// (`-k`, `--ignore-errors`) leaves the experiment unrecorded.
        #[command(flatten)]
        flags: super::pipeline::StageFlagArgs,
        /// Only say what would run with the params set, running and recording
        /// nothing; the params files are put back as they were (as DVC's `--dry`).
        #[arg(long = "dry-run", visible_alias = "dry", conflicts_with_all = ["queue", "temp", "run_all"])]
        dry_run: bool,
        /// Ask before each stage that is to run (as `dvt repro -i`).
        #[arg(short, long, conflicts_with_all = ["queue", "run_all", "dry_run"])]
        interactive: bool,
        /// The STAGEs are directories: the stages that run in each or below it
        /// (as `dvt repro -R`).
        #[arg(short = 'R', long, requires = "stages")]
        recursive: bool,
        /// Run every queued experiment instead, outside the workspace (as DVC's;
        /// `dvt queue start --temp`).
        #[arg(long, conflicts_with_all = ["queue", "stages", "set_param", "name"])]
        run_all: bool,
        /// With `--run-all`: this many at a time (as `dvt queue start -j`).
        #[arg(short, long, value_name = "N", requires = "run_all", value_parser = clap::value_parser!(u16).range(1..=64))]
        jobs: Option<u16>,
        /// Accepted for DVC users: dvt does not compose params with Hydra, so
        /// there is nothing to turn off.
        #[arg(long)]
        no_hydra: bool,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Record the workspace as an experiment without running anything (as `dvc
    /// exp save`): outs of stages and changed pointer data first, as `dvt commit
    /// --force` would, then the work tree as a commit on top of HEAD
    Save {
        /// Store only these first (stages, their outs, pointers; as `dvt
        /// commit` takes them); none: every stage and pointer. The experiment
        /// records the whole work tree either way.
        targets: Vec<String>,
        /// With targets: a directory stands for the pointers and outs below it
        /// (as `dvt commit -R`; DVC's).
        #[arg(short = 'R', long, requires = "targets")]
        recursive: bool,
        /// The experiment's name (default: one made from its commit).
        #[arg(short, long)]
        name: Option<String>,
        /// Replace an experiment of the same name.
        #[arg(short, long)]
        force: bool,
        /// The commit message (default: `dvt exp save on COMMIT`).
        #[arg(short, long, short_alias = 'M')]
        message: Option<String>,
        /// Record this file or directory too, though git ignores it (repeatable;
        /// as DVC's).
        #[arg(short = 'I', long = "include-untracked", value_name = "PATH")]
        include: Vec<std::path::PathBuf>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Compare the metrics and params of the workspace, HEAD and the experiments run on HEAD
    Show {
        #[command(flatten)]
        select: SelectArgs,
        /// Only the columns whose values differ between the rows.
        #[arg(long)]
        only_changed: bool,
        /// Print the table as Markdown (for a pull request or a report).
        #[arg(long, conflicts_with = "json")]
        md: bool,
        /// Print the table as CSV (for a spreadsheet or a script).
        #[arg(long, conflicts_with_all = ["json", "md"])]
        csv: bool,
        /// Leave out the metrics and params columns whose names match this
        /// regular expression (e.g. `'^train\.'`).
        #[arg(long, value_name = "REGEX")]
        drop: Option<String>,
        /// Keep the columns whose names match this regular expression, even
        /// if `--drop` or `--only-changed` would leave them out.
        #[arg(long, value_name = "REGEX")]
        keep: Option<String>,
        /// Sort the experiments by this metric or param (`KEY` or `FILE:KEY`).
        #[arg(long, value_name = "KEY")]
        sort_by: Option<String>,
        /// With `--sort-by`: `asc` (default) or `desc`.
        #[arg(long, value_parser = ["asc", "desc"], default_value = "asc", requires = "sort_by")]
        sort_order: String,
        /// Leave out the experiments waiting in the queue (and running from it).
        #[arg(long)]
        hide_queued: bool,
        /// Leave out the queued experiments that failed the last time they ran.
        #[arg(long)]
        hide_failed: bool,
        /// Leave out the workspace's row.
        #[arg(long)]
        hide_workspace: bool,
        /// Of the params, only those the stages list (not every key of the params files).
        #[arg(long)]
        param_deps: bool,
        /// Name the commits experiments were run on by their short id, not a branch or tag.
        #[arg(long)]
        sha: bool,
        /// Round numbers to N significant digits (default: as the files hold them).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=17))]
        precision: Option<u32>,
        /// Accepted for DVC scripts (`dvc exp show --no-pager`): dvt prints the
        /// table as it is, never through a pager.
        #[arg(long)]
        no_pager: bool,
        /// Accepted for DVC scripts (`dvc exp show -f`): dvt reads the
        /// experiments from git each time; there is no cache to refresh.
        #[arg(short = 'f', long = "force")]
        force_collect: bool,
        /// Accepted for DVC scripts (`dvc exp show --no-fetch`): dvt fetches nothing here.
        #[arg(long)]
        no_fetch: bool,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Metrics and params that differ between A (default HEAD) and B (default:
    /// the workspace): experiments, or any revisions
    Diff {
        /// The old side: an experiment or a revision.
        a: Option<String>,
        /// The new side (default: the workspace).
        b: Option<String>,
        /// Also the values that did not change (as DVC's).
        #[arg(short, long)]
        all: bool,
        /// Of the params, only those some stage lists (as DVC's).
        #[arg(long)]
        param_deps: bool,
        #[command(flatten)]
        shown: super::pipeline::ShownArgs,
        /// Print as Markdown tables.
        #[arg(long, conflicts_with = "json")]
        md: bool,
        /// Print as JSON: `metrics` and `params`, each a list of changes.
        #[arg(long)]
        json: bool,
    },
    /// List the experiments run on HEAD (as DVC's; `-A`: all), newest first,
    /// with the commit each was run on; with GIT_REMOTE, those of that git
    /// remote, by name
    #[command(alias = "ls")]
    List {
        /// A git remote (`origin`, a URL or a path): list its experiments instead.
        git_remote: Option<String>,
        #[command(flatten)]
        select: SelectArgs,
        /// Print only their names, one per line (as DVC's).
        #[arg(long, visible_alias = "names-only", conflicts_with_all = ["sha_only", "json"])]
        name_only: bool,
        /// Print only their commit ids, one per line (as DVC's).
        #[arg(long, visible_alias = "shas-only", conflicts_with = "json")]
        sha_only: bool,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Send experiments to a git remote (as `dvc exp push`): their data to the
    /// dvt remote first, then their commits
    Push {
        #[command(flatten)]
        share: ShareArgs,
    },
    /// Bring experiments from a git remote (as `dvc exp pull`): their commits,
    /// then their data from the dvt remote
    Pull {
        #[command(flatten)]
        share: ShareArgs,
    },
    /// Bring an experiment into the workspace: its files (params, code,
    /// dvt.lock, metrics, pointers), then its data
    Apply {
        /// The experiment.
        name: String,
        /// Overwrite changes that are in no commit or experiment.
        #[arg(short, long, conflicts_with = "no_force")]
        force: bool,
        /// Refuse to overwrite such changes: dvt's default, accepted for DVC
        /// scripts (DVC 3 overwrites unless given this).
        #[arg(long)]
        no_force: bool,
    },
    /// Create a git branch at an experiment's commit
    Branch {
        /// The experiment.
        name: String,
        /// The new branch (default: `NAME-branch`, as DVC's).
        branch: Option<String>,
    },
    /// Rename an experiment
    #[command(alias = "mv")]
    Rename {
        /// The experiment.
        name: String,
        /// Its new name.
        new_name: String,
        /// Replace an experiment that has the new name.
        #[arg(short, long)]
        force: bool,
        /// Rename it on this git remote (`origin`, a URL or a path) instead of
        /// here (as DVC's).
        #[arg(short, long, value_name = "GIT_REMOTE")]
        git_remote: Option<String>,
    },
    /// Delete the worktrees killed experiment runs left under `.dvt/tmp/exps`,
    /// and git's records of them (as `dvc exp clean`); queued experiments stay queued
    Clean,
    /// Delete experiments (their data stays in the cache until `dvt gc`)
    #[command(alias = "rm")]
    #[command(group(clap::ArgGroup::new("which").args(["names", "all", "rev", "num", "queue"]).multiple(true).required(true)))]
    Remove {
        /// The experiments.
        names: Vec<String>,
        /// Every experiment (DVC's `-A/--all-commits`: those of every commit).
        #[arg(short = 'A', long, visible_alias = "all-commits", conflicts_with_all = ["names", "rev", "num"])]
        all: bool,
        /// Those run on REV (as DVC's).
        #[arg(long, value_name = "REV", conflicts_with = "names")]
        rev: Option<String>,
        /// Those run on the N commits from REV (or HEAD) back, first parents.
        #[arg(short = 'n', long, value_name = "N", conflicts_with = "names", value_parser = clap::value_parser!(u32).range(1..))]
        num: Option<u32>,
        /// Keep the experiments named or selected, and remove all the others (as DVC's).
        #[arg(long, conflicts_with_all = ["all", "git_remote"])]
        keep: bool,
        /// Take every queued experiment off the queue (as DVC's; `dvt queue remove -A`).
        #[arg(long, conflicts_with_all = ["names", "all", "rev", "num", "keep", "git_remote"])]
        queue: bool,
        /// Remove them from this git remote (`origin`, a URL or a path) instead
        /// of here; their data stays on the dvt remote.
        #[arg(short, long, value_name = "GIT_REMOTE")]
        git_remote: Option<String>,
        /// Print as JSON (with `--git-remote`): each experiment's `name`,
        /// `commit` and `update` (`deleted`, or `unchanged` if it had gone).
        #[arg(long, requires = "git_remote")]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub(super) enum QueueCommand {
    /// Run the queued experiments: one after another in this workspace, or
    /// (`--temp`, `-j N`) each in a git worktree of its own, N at a time
    Start {
        /// Run N experiments at a time, each in a worktree of its own (implies `--temp`).
        #[arg(short, long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
        jobs: Option<u16>,
        /// Run each experiment in a git worktree made for it under
        /// `.dvt/tmp/exps` from the work tree as it was queued, leaving this
        /// workspace as it is; what its stages print goes to its log (`dvt queue logs ID`).
        #[arg(long)]
        temp: bool,
        /// Run the queue in the background, outside this workspace (implies
        /// `--temp`), and return at once, as `dvc queue start` does; what the
        /// runner prints goes to `.dvt/tmp/exp-logs/queue.log`.
        #[arg(short, long)]
        detach: bool,
        /// (The background runner that `--detach` starts.)
        #[arg(long, hide = true)]
        detached: bool,
    },
    /// Stop running queued experiments: their stage commands, and all they
    /// started, get SIGTERM (`--force`: SIGKILL); they stay queued, marked failed
    Kill {
        /// Their numbers (`000003`) or names.
        #[arg(required = true)]
        which: Vec<String>,
        /// Send SIGKILL instead, which no command can catch.
        #[arg(short, long)]
        force: bool,
    },
    /// Ask the running `queue start` to start no other experiment (those running
    /// go on until recorded), as `dvc queue stop`
    Stop {
        /// Also kill the experiments running now, as `dvt queue kill` does (as DVC's).
        #[arg(long)]
        kill: bool,
    },
    /// Print what the stages of a queued experiment run with `--temp` or `-j` printed
    Logs {
        /// Its number (`000003`) or name.
        which: String,
        /// Keep printing what it prints until it stops running (as `tail -f`).
        #[arg(short, long)]
        follow: bool,
    },
    /// List the queued experiments, in the order they run
    Status {
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Take experiments off the queue (by number or name)
    Remove {
        /// Their numbers (`000003`) or names.
        #[arg(required_unless_present_any = ["all", "queued", "failed", "success"])]
        which: Vec<String>,
        /// Every queued experiment.
        #[arg(short = 'A', long, conflicts_with_all = ["which", "queued", "failed", "success"])]
        all: bool,
        /// Those waiting to run, not those that failed (as DVC's).
        #[arg(long, conflicts_with = "which")]
        queued: bool,
        /// Those that failed the last time they ran (as DVC's).
        #[arg(long, conflicts_with = "which")]
        failed: bool,
        /// Accepted for DVC scripts: an experiment that ran well leaves the
        /// queue when it is recorded, so there are none to remove.
        #[arg(long, conflicts_with = "which")]
        success: bool,
    },
}

/// What `exp push` and `exp pull` take.
#[derive(Debug, clap::Args)]
pub(super) struct ShareArgs {
    /// The git remote: a remote of git's configuration (`origin`), a URL, or a path.
    git_remote: String,
    /// The experiments (default: those run on HEAD, as DVC's).
    #[arg(conflicts_with_all = ["all_commits", "all_branches", "all_tags", "rev", "num"])]
    names: Vec<String>,
    #[command(flatten)]
    select: SelectArgs,
    /// Replace an experiment of the same name that names another commit.
    #[arg(short, long)]
    force: bool,
    /// Move the commits only, not the data (DVC's flag name).
    #[arg(long)]
    no_cache: bool,
    /// The dvt remote for the data (default: the default one).
    #[arg(short, long, value_name = "NAME")]
    remote: Option<String>,
    /// With the data, the run cache: the entries of earlier stage runs and the
    /// data they produced (as DVC's).
    #[arg(long, conflicts_with = "no_cache", overrides_with = "no_run_cache")]
    run_cache: bool,
    /// Not the run cache (the default; DVC's flag, for scripts).
    #[arg(long, overrides_with = "run_cache")]
    no_run_cache: bool,
    /// Transfers at once (default: the remote's `jobs`, or 4 per core).
    #[arg(short, long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=256))]
    jobs: Option<u32>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// Which experiments, when none is named (DVC's `-A`, `--rev`, `-n`).
#[derive(Debug, clap::Args)]
pub(super) struct SelectArgs {
    /// Every experiment, whatever commit it was run on (DVC's flag).
    #[arg(short = 'A', long, alias = "all", conflicts_with_all = ["rev", "num"])]
    all_commits: bool,
    /// Also those run on the tip of every local branch (DVC's flag).
    #[arg(short = 'a', long, conflicts_with_all = ["all_commits", "rev", "num"])]
    all_branches: bool,
    /// Also those run on a commit a tag names (DVC's flag).
    #[arg(short = 'T', long, conflicts_with_all = ["all_commits", "rev", "num"])]
    all_tags: bool,
    /// Those run on REV instead of HEAD.
    #[arg(long, value_name = "REV")]
    rev: Option<String>,
    /// Those run on the N commits from REV (or HEAD) back, first parents.
    #[arg(short = 'n', long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    num: Option<u32>,
}

impl SelectArgs {
    fn selection(&self) -> ops::exp_share::Selection {
        use ops::exp_share::Selection;
        if self.all_branches || self.all_tags {
            return Selection::Tips {
                branches: self.all_branches,
                tags: self.all_tags,
            };
        }
        match (self.all_commits, &self.rev, self.num) {
            (true, ..) => Selection::All,
            (false, None, None) => Selection::Head,
            (false, rev, num) => Selection::Revs {
                rev: rev.clone().unwrap_or_else(|| "HEAD".into()),
                num: num.unwrap_or(1) as usize,
            },
        }
    }

    /// Which experiments were looked for, for "none found" (empty for all).
    fn which(&self) -> String {
        if self.all_branches || self.all_tags {
            return " run on HEAD, the branches' tips or the tagged commits asked for (`-A`: on any commit)".into();
        }
        match (self.all_commits, &self.rev, self.num) {
            (true, ..) => String::new(),
            (false, None, None) => " run on HEAD (`-A`: on any commit)".into(),
            (false, rev, num) => format!(
                " run on {} (`-A`: on any commit)",
                match num.unwrap_or(1) {
                    1 => rev.clone().unwrap_or_else(|| "HEAD".into()),
                    n => format!("the {n} commits from {}", rev.as_deref().unwrap_or("HEAD")),
                }
            ),
        }
    }
}

impl ShareArgs {
    /// Which experiments were looked for, for "none found" (empty when named
    /// or all).
    fn which(&self) -> String {
        match self.names.is_empty() {
            true => self.select.which(),
            false => String::new(),
        }
    }

    fn options(&self, cwd: &std::path::Path) -> ops::exp_share::ExpShareOptions {
        ops::exp_share::ExpShareOptions {
            git_remote: self.git_remote.clone(),
            names: self.names.clone(),
            select: self.select.selection(),
            force: self.force,
            no_data: self.no_cache,
            run_cache: self.run_cache && !self.no_run_cache,
            remote: self.remote.clone(),
            jobs: self.jobs.map(|j| j as usize),
            cwd: cwd.to_path_buf(),
        }
    }
}

/// Whether an experiment was not taken (the other side has another of its name).
fn kept(experiments: &[ops::exp_share::SharedExperiment]) -> bool {
    experiments.iter().any(|e| e.update == dvt::git::RefUpdate::Kept)
}

/// One line per experiment moved by `exp push`/`exp pull`: what became of it
/// on the receiving side (`to`).
fn print_shared(experiments: &[ops::exp_share::SharedExperiment], to: &str) -> Result<ExitCode, dvt::Error> {
    use dvt::git::RefUpdate;
    for e in experiments {
        let what = match e.update {
            RefUpdate::New => format!("new in {to}"),
            RefUpdate::Unchanged => format!("already in {to}"),
            RefUpdate::Replaced => format!("replaced in {to}"),
            RefUpdate::Kept => {
                format!("not taken: {to} has another experiment of that name (`--force` replaces it)")
            }
            RefUpdate::Deleted => format!("removed from {to}"),
        };
        out!("{:<24} {}  {what}", e.name, &e.commit[..7]);
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) fn run_queue(repo: &Repo, command: &QueueCommand, quiet: bool, bars: &Bars) -> Result<ExitCode, dvt::Error> {
    match command {
        QueueCommand::Start { jobs, detach: true, .. } => return start_detached(repo, *jobs, quiet),
        QueueCommand::Start {
            jobs, temp, detached, ..
        } if *temp || *detached || jobs.is_some() => {
            if *detached {
                dvt::process::detach()?;
            }
            return run_queue_outside(repo, jobs.map_or(1, usize::from), quiet);
        }
        QueueCommand::Start { .. } => {
            let on_run = |stage: &dvt::pipeline::Stage, why: &str| {
                note!(quiet, "Running stage `{}` ({why}):\n> {}", stage.name, stage.cmd);
                Ok(())
            };
            let on_start = |q: &ops::exp::Queued| {
                note!(quiet, "Running queued experiment {}: {}", q.id, describe(q));
            };
            let reports = ops::exp::run_queue(repo, &on_run, &on_start, bars)?;
            if reports.is_empty() {
                say!(quiet, "The queue is empty.");
            }
            for r in &reports {
                report_run(r, true)?;
            }
            if !reports.is_empty() {
                note!(quiet, "hint: `dvt exp show` compares them");
            }
        }
        QueueCommand::Kill { which, force } => {
            let killed = ops::queue::kill(repo, which, *force, std::time::Duration::from_secs(10))?;
            print_killed(&killed, *force, quiet)?;
        }
        QueueCommand::Stop { kill } => {
            match ops::queue::request_stop(repo)? {
                true if *kill => say!(quiet, "Asked the queue to start no other experiment."),
                true => say!(
                    quiet,
                    "Asked the queue to start no other experiment; those running go on until recorded."
                ),
                false => say!(quiet, "No queue is being run."),
            }
            let running = match kill {
                true => ops::queue::running(repo)?,
                false => Vec::new(),
            };
            if !running.is_empty() {
                let killed = ops::queue::kill(repo, &running, false, std::time::Duration::from_secs(10))?;
                print_killed(&killed, false, quiet)?;
            }
        }
        QueueCommand::Logs { which, follow } => {
            let Some(log) = ops::queue::find_log(repo, which)? else {
                return Err(dvt::error::PipelineError::Experiment {
                    message: format!(
                        "no log for queued experiment `{which}`: logs are written by \
                         `dvt queue start --temp` (or `-j N`), and kept until its number is used again"
                    ),
                }
                .into());
            };
            let id = log.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_string();
            let mut file = fs_err::File::open(&log)?;
            let mut stdout = std::io::stdout().lock();
            loop {
                // Whether it runs is asked before reading, so that nothing it
                // printed before it stopped is missed.
                let running = *follow
                    && match ops::exp::queued(repo)?.into_iter().find(|q| q.id == id) {
                        Some(q) => ops::queue::state(repo, &q)? == ops::queue::QueueState::Running,
                        None => false,
                    };
                std::io::copy(&mut file, &mut stdout)?;
                stdout.flush()?;
                if !running {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
        }
        QueueCommand::Status { json: as_json } => {
            let waiting = ops::exp::queued(repo)?;
            let mut states = Vec::new();
            for q in &waiting {
                states.push(ops::queue::state(repo, q)?);
            }
            if *as_json {
                let mut rows = Vec::new();
                for (q, state) in waiting.iter().zip(&states) {
                    let mut row = serde_json::to_value(q).map_err(|e| std::io::Error::other(e.to_string()))?;
                    if let Some(o) = row.as_object_mut() {
                        o.insert("state".into(), state.to_string().into());
                    }
                    rows.push(row);
                }
                return json(&rows);
            }
            if let Some(runner) = ops::exp::queue_runner(repo)? {
                note!(quiet, "The queue is being run ({runner}).");
            }
            if waiting.is_empty() {
                note!(
                    quiet,
                    "No experiments queued (`dvt exp run --queue` queues one; `dvt exp show` lists those run)."
                );
            }
            for (q, state) in waiting.iter().zip(&states) {
                match &q.failed {
                    Some(why) if *state == ops::queue::QueueState::Failed => {
                        out!("{}  {state:<7}  {}  ({why})", q.id, describe(q))
                    }
                    _ => out!("{}  {state:<7}  {}", q.id, describe(q)),
                }
            }
        }
        QueueCommand::Remove {
            which,
            all,
            queued,
            failed,
            success: _,
        } => {
            let removed = match (*queued, *failed) {
                (false, false) => ops::exp::dequeue(repo, which, *all)?,
                (waiting, failed) => ops::exp::dequeue_by_state(repo, waiting, failed)?,
            };
            for q in removed {
                say!(quiet, "Removed queued experiment {}: {}", q.id, describe(&q));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `dvt queue start --detach`: starts `dvt queue start --temp|-j N` in the
/// background, in a session of its own, and returns once it runs the queue
/// (or, if it ends first, with what it said and its exit code).
fn start_detached(repo: &Repo, jobs: Option<u16>, quiet: bool) -> Result<ExitCode, dvt::Error> {
    if let Some(runner) = ops::exp::queue_runner(repo)? {
        return Err(dvt::error::PipelineError::Experiment {
            message: format!("the queue is being run already ({runner})"),
        }
        .into());
    }
    if ops::exp::queued(repo)?.is_empty() {
        say!(quiet, "The queue is empty.");
        return Ok(ExitCode::SUCCESS);
    }
    let log = ops::queue::log_path(repo, "queue")?;
    let out = fs_err::File::create(&log)?;
    let mut command = std::process::Command::new(std::env::current_exe()?);
    command.args(["queue", "start", "--detached"]);
    if let Some(j) = jobs {
        command.args(["-j", &j.to_string()]);
    }
    // From the repository's root: `-C DIR` is not passed on.
    let mut runner = dvt::process::spawn(
        command
            .current_dir(repo.root())
            .stdin(std::process::Stdio::null())
            .stdout(out.file().try_clone()?)
            .stderr(out.into_parts().0),
    )?;
    let pid = runner.id();
    let shown = log.strip_prefix(repo.root()).unwrap_or(&log).display().to_string();
    for _ in 0..500 {
        if let Some(status) = runner.try_wait()? {
            // It ended before we saw it run the queue: an empty queue, or an error.
            let said = fs_err::read(&log)?;
            match status.success() {
                true => std::io::stdout().write_all(&said)?,
                false => std::io::stderr().write_all(&said)?,
            }
            return Ok(ExitCode::from(u8::try_from(status.code().unwrap_or(1)).unwrap_or(1)));
        }
        if ops::exp::queue_runner(repo)?.is_some_and(|r| r.starts_with(&format!("pid {pid}:"))) {
            say!(
                quiet,
                "Started the queue in the background (pid {pid}), {} at a time; what it says goes to {shown}",
                jobs.unwrap_or(1)
            );
            note!(
                quiet,
                "hint: `dvt queue status` shows how far it is, `dvt queue stop` stops it after the experiments running"
            );
            return Ok(ExitCode::SUCCESS);
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    say!(
        quiet,
        "Started the queue in the background (pid {pid}); what it says goes to {shown}"
    );
    Ok(ExitCode::SUCCESS)
}

/// `dvt queue start --temp|-j N`.
fn run_queue_outside(repo: &Repo, jobs: usize, quiet: bool) -> Result<ExitCode, dvt::Error> {
    let root = repo.root();
    let on_event = |event: ops::queue::QueueEvent<'_>| match event {
        ops::queue::QueueEvent::Started { queued, log } => {
            note!(
                quiet,
                "Started queued experiment {}: {} (its output: {})",
                queued.id,
                describe(queued),
                log.strip_prefix(root).unwrap_or(log).display()
            );
        }
        ops::queue::QueueEvent::Done { queued, report } => {
            // Written as it happens; a closed stdout ends nothing here.
            let _ = writeln!(
                std::io::stdout().lock(),
                "Queued experiment {} recorded as `{}`: commit {} on {}",
                queued.id,
                report.name,
                &report.commit[..7],
                &report.baseline[..7]
            );
        }
        ops::queue::QueueEvent::Failed { queued, error, .. } => {
            note!(
                false,
                "Queued experiment {} failed, and stays queued: {error} (`dvt queue logs {}` shows its output)",
                queued.id,
                queued.id
            );
        }
    };
    let started = std::time::Instant::now();
    let outcome = ops::queue::run_queue_outside(repo, jobs, &on_event)?;
    let ran = outcome.done.len() + outcome.failed.len();
    if ran == 0 {
        say!(quiet, "The queue is empty.");
    } else {
        say!(
            quiet,
            "Ran {} in {:.1} s, {} at a time: {} recorded, {} failed",
            dvt::counted(ran, "queued experiment"),
            started.elapsed().as_secs_f64(),
            jobs.min(ran),
            outcome.done.len(),
            outcome.failed.len()
        );
    }
    if !outcome.done.is_empty() {
        note!(quiet, "hint: `dvt exp show` compares them");
    }
    if !outcome.failed.is_empty() {
        note!(
            false,
            "{} failed and stayed queued; fix the cause and run `dvt queue start` again \
             (`dvt queue remove ID` drops one)",
            dvt::counted(outcome.failed.len(), "experiment")
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) fn run(
    repo: &Repo,
    cwd: &std::path::Path,
    command: &ExpCommand,
    quiet: bool,
    bars: &Bars,
) -> Result<ExitCode, dvt::Error> {
    match command {
        ExpCommand::Run {
            stages,
            set_param,
            name,
            message,
            force,
            queue,
            temp,
            copy_paths,
            pull,
            remote,
            no_run_cache,
            flags,
            dry_run,
            interactive,
            recursive,
            run_all,
            jobs,
            no_hydra: _,
            json: as_json,
        } => {
            if *run_all {
                return run_queue_outside(repo, jobs.map_or(1, usize::from), quiet);
            }
            let stages = match recursive {
                true => &ops::stages::stages_below(repo, cwd, stages)?,
                false => stages,
            };
            if !copy_paths.is_empty() && !*queue && !*temp {
                clap::Error::raw(
                    clap::error::ErrorKind::ArgumentConflict,
                    "--copy-paths copies into the worktree of a run outside the workspace: add --temp or --queue\n",
                )
                .exit();
            }
            let copy_paths = copy_paths
                .iter()
                .map(|p| Ok(repo.resolve(cwd, p)?.1))
                .collect::<Result<Vec<String>, dvt::Error>>()?;
            let opts = ops::exp::ExpRunOptions {
                name: name.clone(),
                set_params: set_param.clone(),
                repro: flags.flags().apply(ops::ReproOptions {
                    targets: stages.clone(),
                    force: *force,
                    pull: *pull,
                    remote: remote.clone(),
                    no_run_cache: *no_run_cache,
                    dry_run: *dry_run,
                    ..Default::default()
                }),
                force: *force,
                message: message.clone(),
                copy_paths,
            };
            if *queue {
                let queued = ops::exp::enqueue(repo, &opts)?;
                if *as_json {
                    return json(&queued);
                }
                for q in &queued {
                    out!("Queued experiment {}: {}", q.id, describe(q));
                }
                note!(
                    quiet,
                    "hint: `dvt queue start` runs them, one after another (`-j N`: N at a time, outside this workspace)"
                );
                return Ok(ExitCode::SUCCESS);
            }
            let on_run = |stage: &dvt::pipeline::Stage, why: &str| {
                if *interactive {
                    return match super::pipeline::confirm_stage(stage, why)? {
                        true => Ok(()),
                        false => Err(dvt::error::PipelineError::Declined {
                            stage: stage.name.clone(),
                        }
                        .into()),
                    };
                }
                note!(quiet, "Running stage `{}` ({why}):\n> {}", stage.name, stage.cmd);
                Ok(())
            };
            // Said before the stages run, whose output follows.
            let on_set = |set: &[ops::exp::SetParam]| print_set_params(set, false, quiet);
            let report = match temp {
                true => ops::queue::run_temp(repo, &opts, &on_set, &on_run, bars)?,
                false => ops::exp::run(repo, &opts, &on_set, &on_run, bars)?,
            };
            if *as_json {
                return json(&report);
            }
            if *dry_run {
                print_set_params(&report.set_params, true, quiet);
                return super::pipeline::print_stage_results(&report.repro, quiet);
            }
            super::pipeline::pull_note(&report.repro, *pull, quiet);
            report_run(&report, quiet)?;
            super::pipeline::forgotten_note(&report.repro.forgotten, quiet);
        }
        ExpCommand::Save {
            targets,
            recursive,
            name,
            force,
            message,
            include,
            json: as_json,
        } => {
            let targets = super::expand_targets(
                repo,
                cwd,
                targets.iter().map(std::path::PathBuf::from).collect(),
                *recursive,
                false,
            )?;
            let opts = ops::exp::ExpSaveOptions {
                name: name.clone(),
                force: *force,
                message: message.clone(),
                include: include.iter().map(|p| cwd.join(p)).collect(),
                targets: targets.iter().map(|t| t.to_string_lossy().into_owned()).collect(),
                cwd: cwd.to_path_buf(),
            };
            let report = ops::exp::save(repo, &opts, bars)?;
            if *as_json {
                return json(&report);
            }
            let changed = report.recorded.stages.iter().filter(|s| s.changed).count();
            let stages = match report.recorded.stages.is_empty() {
                true => String::new(),
                false => format!(" ({} recorded anew in dvt.lock)", dvt::counted(changed, "stage")),
            };
            out!(
                "Experiment `{}` saved: commit {} on {}{stages}",
                report.name,
                &report.commit[..7],
                &report.baseline[..7],
            );
            for s in &report.recorded.incomplete {
                note!(
                    quiet,
                    "note: stage `{s}` not recorded anew: an out of it is missing from the workspace"
                );
            }
            note!(
                quiet,
                "hint: `dvt exp show` compares it; `dvt exp apply {}` brings it back later",
                report.name
            );
        }
        ExpCommand::Show {
            select,
            only_changed,
            md,
            csv,
            drop,
            keep,
            sort_by,
            sort_order,
            hide_queued,
            hide_failed,
            hide_workspace,
            param_deps,
            sha,
            precision,
            no_pager: _,
            force_collect: _,
            no_fetch: _,
            json: as_json,
        } => {
            let pattern = |p: &Option<String>, flag: &str| -> Result<Option<regex::Regex>, dvt::Error> {
                p.as_deref()
                    .map(|p| {
                        regex::Regex::new(p).map_err(|e| {
                            // The crate's message draws a caret under the pattern; keep its last line.
                            let e = e.to_string();
                            let why = e.lines().last().unwrap_or_default().trim();
                            dvt::error::PipelineError::Experiment {
                                message: format!(
                                    "`{flag} {p}` is not a regular expression: {}",
                                    why.trim_start_matches("error: ")
                                ),
                            }
                            .into()
                        })
                    })
                    .transpose()
            };
            let columns = Columns {
                only_changed: *only_changed,
                drop: pattern(drop, "--drop")?,
                keep: pattern(keep, "--keep")?,
                precision: precision.map(|p| p as usize),
            };
            let show = ops::exp::ExpShowOptions {
                select: select.selection(),
                hide_queued: *hide_queued,
                hide_failed: *hide_failed,
                hide_workspace: *hide_workspace,
                param_deps: *param_deps,
                sha: *sha,
            };
            let mut rows = ops::exp::show(repo, &show)?;
            if let Some(key) = sort_by {
                ops::exp::sort_rows(&mut rows, key, sort_order == "desc")?;
            }
            if *as_json {
                return json(&rows);
            }
            let format = match (*md, *csv) {
                (true, _) => TableFormat::Markdown,
                (_, true) => TableFormat::Csv,
                _ => TableFormat::Text,
            };
            print_table(&rows, &columns, format)?;
        }
        ExpCommand::Diff {
            a,
            b,
            all,
            param_deps,
            shown,
            md,
            json: as_json,
        } => {
            let opts = ops::stages::ValuesOptions {
                all: *all,
                ..Default::default()
            };
            let metrics = ops::stages::metrics_diff(repo, a.as_deref(), b.as_deref(), &opts)?;
            let params_opts = ops::stages::ValuesOptions {
                deps_only: *param_deps,
                ..opts
            };
            let params = ops::stages::params_diff(repo, a.as_deref(), b.as_deref(), &params_opts)?;
            if *as_json {
                return json(&serde_json::json!({ "metrics": metrics, "params": params }));
            }
            use super::pipeline::Compared;
            for (what, changes) in [(Compared::Metrics, &metrics), (Compared::Params, &params)] {
                super::pipeline::print_changes(changes, false, *md, *shown, what, (a.as_deref(), b.as_deref()))?;
            }
        }
        ExpCommand::List {
            git_remote: Some(git_remote),
            select,
            name_only,
            sha_only,
            json: as_json,
        } => {
            let exps = ops::exp_share::remote_list(repo, git_remote, cwd, &select.selection())?;
            if *as_json {
                return json(&exps);
            }
            for e in exps {
                match (name_only, sha_only) {
                    (true, _) => out!("{}", e.name),
                    (_, true) => out!("{}", e.commit),
                    _ => out!("{:<24} {}", e.name, &e.commit[..7]),
                }
            }
        }
        ExpCommand::Pull { share } => {
            let r = ops::exp_share::pull(repo, &share.options(cwd), bars)?;
            if share.json {
                return json(&r);
            }
            if r.experiments.is_empty() {
                say!(quiet, "`{}` has no experiments{}", r.git_remote, share.which());
            }
            print_shared(&r.experiments, "this repository")?;
            if let Some(data) = &r.data {
                say!(quiet, "{}", super::fetched_line(data));
            }
            if kept(&r.experiments) {
                return Ok(ExitCode::from(1));
            }
        }
        ExpCommand::Push { share } => {
            let r = ops::exp_share::push(repo, &share.options(cwd), bars)?;
            if share.json {
                return json(&r);
            }
            if r.experiments.is_empty() {
                say!(
                    quiet,
                    "No experiments{} to push (`dvt exp run` makes them)",
                    share.which()
                );
            }
            if let Some(data) = &r.data {
                say!(quiet, "{}", super::pushed_line(data));
            }
            print_shared(&r.experiments, &format!("`{}`", r.git_remote))?;
            if kept(&r.experiments) {
                return Ok(ExitCode::from(1));
            }
            if r.data.as_ref().is_some_and(|d| !d.missing_from_cache.is_empty()) {
                note!(
                    quiet,
                    "hint: some of their data is in no cache here (`dvt push --json` lists it): a clone that pulls them cannot check it out"
                );
                return Ok(ExitCode::from(1));
            }
        }
        ExpCommand::List {
            git_remote: None,
            select,
            name_only,
            sha_only,
            json: as_json,
        } => {
            let exps = ops::exp::list(repo, &select.selection())?;
            if *as_json {
                let list: Vec<serde_json::Value> = exps
                    .iter()
                    .map(|e| {
                        serde_json::json!({
                            "name": e.name,
                            "commit": e.commit.to_string(),
                            "baseline": e.baseline.map(|b| b.to_string()),
                            "created": e.time,
                        })
                    })
                    .collect();
                return json(&list);
            }
            for e in exps {
                if *name_only || *sha_only {
                    out!(
                        "{}",
                        if *name_only {
                            e.name.clone()
                        } else {
                            e.commit.to_string()
                        }
                    );
                    continue;
                }
                let base = e.baseline.map(|b| b.to_string()[..7].to_string()).unwrap_or_default();
                out!(
                    "{:<24} {}  on {base}  {}",
                    e.name,
                    &e.commit.to_string()[..7],
                    super::dates::utc(e.time)
                );
            }
        }
        ExpCommand::Apply { name, force, .. } => {
            let r = ops::exp::apply(repo, name, *force, bars)?;
            out!(
                "Applied experiment `{}`: {} written, {} deleted; {} of data checked out",
                r.name,
                dvt::counted(r.written.len(), "file"),
                r.deleted.len(),
                dvt::counted(r.checkout.restored.len(), "file")
            );
        }
        ExpCommand::Branch { name, branch } => {
            let branch = branch.clone().unwrap_or_else(|| format!("{name}-branch"));
            let commit = ops::exp::branch(repo, name, &branch)?;
            out!("Branch `{branch}` created at experiment `{name}` ({})", &commit[..7]);
            note!(
                quiet,
                "hint: `git checkout {branch}` switches to it (then `dvt checkout`)"
            );
        }
        ExpCommand::Rename {
            name,
            new_name,
            force,
            git_remote: None,
        } => {
            let commit = ops::exp::rename(repo, name, new_name, *force)?;
            say!(quiet, "Renamed experiment `{name}` to `{new_name}` ({})", &commit[..7]);
        }
        ExpCommand::Rename {
            name,
            new_name,
            force,
            git_remote: Some(remote),
        } => {
            let commit = ops::exp_share::remote_rename(repo, remote, name, new_name, *force, cwd)?;
            say!(
                quiet,
                "Renamed experiment `{name}` to `{new_name}` on `{remote}` ({})",
                &commit[..7]
            );
        }
        ExpCommand::Clean => {
            let removed = ops::queue::clean(repo)?;
            say!(
                quiet,
                "{}",
                match removed {
                    0 => "Nothing to clean: no worktree of a killed run is left".to_string(),
                    n => format!("Removed {} that killed runs left", dvt::counted(n, "worktree")),
                }
            );
        }
        ExpCommand::Remove { queue: true, .. } => {
            for q in ops::exp::dequeue(repo, &[], true)? {
                say!(quiet, "Removed queued experiment {}: {}", q.id, describe(&q));
            }
        }
        ExpCommand::Remove { rev: Some(_), .. } | ExpCommand::Remove { num: Some(_), .. }
            if matches!(
                command,
                ExpCommand::Remove {
                    git_remote: Some(_),
                    ..
                }
            ) =>
        {
            return Err(dvt::error::PipelineError::Experiment {
                message: "`--rev` and `-n` select experiments here; on a git remote, name them or pass `-A`".into(),
            }
            .into());
        }
        ExpCommand::Remove {
            names,
            all,
            git_remote: Some(git_remote),
            json: as_json,
            ..
        } => {
            let removed = ops::exp_share::remote_remove(repo, git_remote, names, *all, cwd)?;
            if *as_json {
                return json(&removed);
            }
            if removed.is_empty() {
                say!(quiet, "`{git_remote}` has no experiments");
            }
            for e in removed {
                match e.update {
                    dvt::git::RefUpdate::Deleted => say!(quiet, "Removed experiment `{}` from `{git_remote}`", e.name),
                    _ => say!(quiet, "Experiment `{}` was already gone from `{git_remote}`", e.name),
                }
            }
        }
        ExpCommand::Remove {
            names,
            all,
            rev,
            num,
            keep,
            git_remote: None,
            ..
        } => {
            let mut chosen = names.clone();
            if rev.is_some() || num.is_some() {
                let select = ops::exp_share::Selection::Revs {
                    rev: rev.clone().unwrap_or_else(|| "HEAD".into()),
                    num: num.unwrap_or(1) as usize,
                };
                chosen = ops::exp::list(repo, &select)?.into_iter().map(|e| e.name).collect();
            }
            if *keep {
                let every = ops::exp::list(repo, &ops::exp_share::Selection::All)?;
                // A name that is no experiment is a typo: refuse before removing the rest.
                if let Some(n) = chosen.iter().find(|n| !every.iter().any(|e| &e.name == *n)) {
                    return Err(dvt::error::PipelineError::Experiment {
                        message: format!("there is no experiment `{n}` to keep; nothing was removed"),
                    }
                    .into());
                }
                chosen = every
                    .into_iter()
                    .map(|e| e.name)
                    .filter(|n| !chosen.contains(n))
                    .collect();
            }
            if !*all && chosen.is_empty() {
                say!(quiet, "No experiment to remove");
                return Ok(ExitCode::SUCCESS);
            }
            for n in ops::exp::remove(repo, &chosen, *all)? {
                say!(quiet, "Removed experiment `{n}`");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The params a run set (a dry run: would set), on stderr.
fn print_set_params(params: &[ops::exp::SetParam], dry: bool, quiet: bool) {
    let (set, removed, was) = match dry {
        true => ("with", "without", "now"),
        false => ("set", "removed", "was"),
    };
    for p in params {
        let name = dvt::pipeline::param_name(&p.file, &p.key);
        match (&p.old, &p.new) {
            (Some(old), Some(new)) => note!(quiet, "{set} {name} = {} ({was} {})", text(new), text(old)),
            (None, Some(new)) => note!(quiet, "{set} {name} = {} (added)", text(new)),
            (Some(old), None) => note!(quiet, "{removed} {name} ({was} {})", text(old)),
            (None, None) => {}
        }
    }
}

/// What `exp run` prints of a recorded experiment.
fn report_run(report: &ops::exp::ExpRunReport, quiet: bool) -> Result<ExitCode, dvt::Error> {
    let count = |action: ops::repro::Action| report.repro.stages.iter().filter(|s| s.action == action).count();
    let reused = match count(ops::repro::Action::RestoredFromRunCache) {
        0 => String::new(),
        n => format!(", {n} restored from the run cache"),
    };
    out!(
        "Experiment `{}` recorded: commit {} on {} ({}{reused})",
        report.name,
        &report.commit[..7],
        &report.baseline[..7],
        dvt::counted(count(ops::repro::Action::Ran), "stage run")
    );
    note!(
        quiet,
        "hint: `dvt exp show` compares it; `dvt exp apply {0}` brings it back later; \
         `dvt exp branch {0} BRANCH` keeps it as a branch",
        report.name
    );
    Ok(ExitCode::SUCCESS)
}

/// A queued experiment in one line: its name, if any, and its params.
fn describe(q: &ops::exp::Queued) -> String {
    let name = q.name.as_deref().map(|n| format!("`{n}` ")).unwrap_or_default();
    match q.set_params.is_empty() {
        true => format!("{name}(params as they are)"),
        false => format!("{name}-S {}", q.set_params.join(" -S ")),
    }
}

fn text(v: &toml::Value) -> String {
    value_text(v, None)
}

/// A metric's or param's value as tables print it: a string bare, a float to
/// `precision` significant digits when asked.
pub(super) fn value_text(v: &toml::Value, precision: Option<usize>) -> String {
    match (v, precision) {
        (toml::Value::String(s), _) => s.clone(),
        (toml::Value::Float(x), Some(p)) => significant(*x, p),
        (v, _) => v.to_string(),
    }
}

/// `x` rounded to `digits` significant digits, as Python's `{:.Ng}` prints it
/// (DVC's `--precision`): fixed notation, trailing zeros dropped, unless the
/// exponent is below -4 or not below `digits`.
fn significant(x: f64, digits: usize) -> String {
    if !x.is_finite() {
        // As without --precision: `nan`, `inf`, `-inf` (Python's spelling).
        return toml::Value::Float(x).to_string();
    }
    if x == 0.0 {
        return x.to_string();
    }
    // The exponent after rounding (9.9996 to 4 digits is 10.00, exponent 1).
    let sci = format!("{:.*e}", digits - 1, x);
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let trim = |s: &str| -> String {
        match s.contains('.') {
            true => s.trim_end_matches('0').trim_end_matches('.').to_string(),
            false => s.to_string(),
        }
    };
    if exp < -4 || exp >= digits as i32 {
        return format!("{}e{}{:02}", trim(mantissa), if exp < 0 { '-' } else { '+' }, exp.abs());
    }
    let decimals = (digits as i32 - 1 - exp).max(0) as usize;
    trim(&format!("{x:.decimals$}"))
}

/// Values by file, then dotted key.
type Values = BTreeMap<String, BTreeMap<String, toml::Value>>;

/// Which metrics and params columns `exp show` prints.
struct Columns {
    only_changed: bool,
    drop: Option<regex::Regex>,
    keep: Option<regex::Regex>,
    /// Significant digits of floats, if rounded.
    precision: Option<usize>,
}

impl Columns {
    fn shown(&self, header: &str, values: &[String]) -> bool {
        if self.keep.as_ref().is_some_and(|k| k.is_match(header)) {
            return true;
        }
        let dropped = self.drop.as_ref().is_some_and(|d| d.is_match(header));
        let same = self.only_changed && values.iter().all(|v| *v == values[0]);
        !dropped && !same
    }
}

#[derive(Clone, Copy, PartialEq)]
enum TableFormat {
    Text,
    Markdown,
    Csv,
}

/// The rows as a table: name, created, then each metric, then each param.
fn print_table(rows: &[ExpRow], shown: &Columns, format: TableFormat) -> Result<ExitCode, dvt::Error> {
    // Columns: (header, value per row).
    let mut columns: Vec<(String, Vec<String>)> = Vec::new();
    let metric_files: BTreeSet<&String> = rows.iter().flat_map(|r| r.metrics.keys()).collect();
    let mut add = |pick: &dyn Fn(&ExpRow) -> &Values, metric: bool| {
        let mut keys: BTreeSet<(String, String)> = BTreeSet::new();
        for r in rows {
            for (f, vals) in pick(r) {
                keys.extend(vals.keys().map(|k| (f.clone(), k.clone())));
            }
        }
        for (f, k) in keys {
            let header = match metric && metric_files.len() == 1 {
                true => k.clone(),
                false if metric => format!("{f}:{k}"),
                false => dvt::pipeline::param_name(&f, &k),
            };
            let values: Vec<String> = rows
                .iter()
                .map(|r| {
                    pick(r)
                        .get(&f)
                        .and_then(|m| m.get(&k))
                        .map_or("-".into(), |v| value_text(v, shown.precision))
                })
                .collect();
            if !shown.shown(&header, &values) {
                continue;
            }
            columns.push((header, values));
        }
    };
    add(&|r| &r.metrics, true);
    add(&|r| &r.params, false);
    let mut names: Vec<String> = vec!["Experiment".into()];
    let mut created: Vec<String> = vec!["Created".into()];
    for r in rows {
        names.push(match r.experiment {
            true => format!("  {}", r.name),
            false => r.name.clone(),
        });
        created.push(match (r.state, r.created) {
            (Some(state), _) => state.to_string(),
            (None, t) => t.map_or("-".into(), super::dates::utc),
        });
    }
    let mut table: Vec<Vec<String>> = vec![names, created];
    for (h, vals) in columns {
        let mut col = vec![h];
        col.extend(vals);
        table.push(col);
    }
    if format == TableFormat::Csv {
        // RFC 4180: a cell with a comma, a quote or a line break is quoted.
        let cell = |s: &str| {
            // A value that is missing is an empty cell.
            let s = match s.trim() {
                "-" => "",
                s => s,
            };
            match s.contains([',', '"', '\n', '\r']) {
                true => format!("\"{}\"", s.replace('"', "\"\"")),
                false => s.to_string(),
            }
        };
        for i in 0..=rows.len() {
            let line: Vec<String> = table.iter().map(|c| cell(&c[i])).collect();
            out!("{}", line.join(","));
        }
        return Ok(ExitCode::SUCCESS);
    }
    if format == TableFormat::Markdown {
        let cell = |s: &str| s.trim().replace('|', "\\|");
        let line = |i: usize| {
            format!(
                "| {} |",
                table.iter().map(|c| cell(&c[i])).collect::<Vec<_>>().join(" | ")
            )
        };
        out!("{}", line(0));
        let rule: Vec<&str> = (0..table.len()).map(|j| if j < 2 { "---" } else { "---:" }).collect();
        out!("| {} |", rule.join(" | "));
        for i in 1..=rows.len() {
            out!("{}", line(i));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let widths: Vec<usize> = table
        .iter()
        .map(|c| c.iter().map(|s| s.chars().count()).max().unwrap_or(0))
        .collect();
    for i in 0..=rows.len() {
        let line: Vec<String> = table
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(j, (col, w))| match j {
                0 | 1 => format!("{:<w$}", col[i]),
                _ => format!("{:>w$}", col[i]),
            })
            .collect();
        out!("{}", line.join("  ").trim_end());
    }
    Ok(ExitCode::SUCCESS)
}

/// What `queue kill` (or `queue stop --kill`) did to each experiment.
fn print_killed(killed: &[ops::queue::Killed], force: bool, quiet: bool) -> Result<ExitCode, dvt::Error> {
    let signal = if force { "SIGKILL" } else { "SIGTERM" };
    for k in killed {
        match k.stopped {
            true => say!(
                quiet,
                "Killed queued experiment {} ({signal}): {}; it stays queued, marked failed",
                k.queued.id,
                describe(&k.queued)
            ),
            false => say!(
                quiet,
                "Sent {signal} to queued experiment {}: {}, which still runs after 10 s{}",
                k.queued.id,
                describe(&k.queued),
                if force { "" } else { " (`--force` sends SIGKILL)" }
            ),
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::significant;

    #[test]
    fn significant_digits_print_as_pythons_g() {
        for (x, p, want) in [
            (0.53846153, 3, "0.538"),
            (2.497, 2, "2.5"),
            (3.0, 5, "3"),
            (1234.5678, 3, "1.23e+03"),
            (0.000012345, 2, "1.2e-05"),
            (9.99996, 5, "10"),
            (-0.125, 2, "-0.12"),
            (0.0, 3, "0"),
            (f64::NAN, 3, "nan"),
            (f64::NEG_INFINITY, 3, "-inf"),
        ] {
            assert_eq!(significant(x, p), want, "{x} to {p}");
        }
    }
}
