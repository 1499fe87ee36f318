//! Command-line parsing and rendering. No logic here that the library lacks.

mod log;
mod progress;

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use dvt::ops;
use dvt::repo::{ConfigLevel, InitOptions, Repo};
use indicatif::HumanBytes;

use progress::Bars;

/// Version large data and models next to your git repository.
#[derive(Debug, Parser)]
#[command(name = "dvt", version, about, max_term_width = 100)]
struct Cli {
    /// Print only errors and what was asked for (lists, reports, --json): no summaries, hints or progress bars; `status -q` prints nothing and exits 1 if anything differs.
    #[arg(short, long, global = true)]
    quiet: bool,
    /// Say what happens on stderr as it happens: config files read, remotes and
    /// connections opened, each phase with its count and time, retries (`-vv`:
    /// also the libraries' own debug lines). Replaces the progress bars.
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    verbose: u8,
    /// Run as if started in DIR.
    #[arg(short = 'C', value_name = "DIR", global = true)]
    dir: Option<PathBuf>,
    /// When another dvt process holds the repository (or the cache), wait for it
    /// instead of failing at once (as DVC's).
    #[arg(long, global = true)]
    wait_for_lock: bool,
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
        /// In a dvt repository already: start its settings over (its config
        /// files are written anew; the cache is kept, unlike DVC's).
        #[arg(short, long)]
        force: bool,
    },
    /// Store files or directories in the cache and write their `.dvt` pointers.
    Add {
        /// Files or directories to track.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Copy the one path given (e.g. outside the repository) to OUT and track it
        /// there (as `dvc add --out`).
        #[arg(short, long, value_name = "OUT")]
        out: Option<PathBuf>,
        /// With `-o`: send the data straight to a remote, keeping no copy in the
        /// cache or the workspace (`dvt pull` gets it later).
        #[arg(long, requires = "out")]
        to_remote: bool,
        /// The remote for `--to-remote` (default: the default remote).
        #[arg(short, long, value_name = "NAME", requires = "to_remote")]
        remote: Option<String>,
        /// With `-o`: transfers at once, from the source and to the remote
        /// (default: the remote's `jobs`, or 4 per core; as DVC's).
        #[arg(long, value_name = "N", requires = "out", value_parser = clap::value_parser!(u32).range(1..=256))]
        remote_jobs: Option<u32>,
        /// Accepted for DVC scripts: dvt's workspace files are copies, never links to relink.
        #[arg(long)]
        no_relink: bool,
        /// With `-o`: replace data and a pointer already at OUT.
        #[arg(short, long, requires = "out")]
        force: bool,
        /// Write the pointers only, storing nothing in the cache; `dvt commit`
        /// stores the data later (as `dvc add --no-commit`).
        #[arg(long, conflicts_with = "out")]
        no_commit: bool,
        /// Paths with `*`, `?` or `[...]` are patterns of files and directories
        /// (quote them from the shell; `**` crosses directories; as DVC's).
        #[arg(long, conflicts_with = "out")]
        glob: bool,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show how the workspace and the cache differ from the pointers.
    Status {
        #[command(flatten)]
        targets: Targets,
        /// Compare the cache with a remote instead of the workspace: the default
        /// remote, or the one `-r` names (DVC's `-c`/`--cloud` is accepted too).
        #[arg(short = 'c', long = "remote", visible_alias = "cloud")]
        remote: bool,
        /// The remote to compare with; implies `--remote`.
        #[arg(short = 'r', value_name = "NAME")]
        remote_name: Option<String>,
        // With `--remote`: the data of these revisions too (as DVC's `status -c -a/-T/-A`).
        #[command(flatten)]
        revs: RevArgs,
        /// Do not ask the sources of imports whether they moved on (as DVC's):
        /// no network.
        #[arg(long)]
        no_updates: bool,
        /// With `--remote`: requests at once (default: the remote's `jobs`, or 4 per core).
        #[arg(short, long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=256))]
        jobs: Option<u32>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Tracked data sorted as `git status` sorts files (as `dvc data status`).
    Data {
        #[command(subcommand)]
        command: DataCommand,
    },
    /// Configure remotes: where `push` sends data and `fetch`/`pull` get it from.
    Remote {
        #[command(subcommand)]
        command: RemoteCommand,
    },
    /// Read or change a setting (as `dvc config`): core.remote, core.autostage,
    /// cache.dir, cache.level, cache.fsync, cache.shared, gc.grace, hooks.fetch, remote.NAME.KEY. Secrets are never printed.
    Config {
        /// The setting, e.g. `cache.dir` or `remote.store.region`.
        #[arg(required_unless_present = "list")]
        name: Option<String>,
        /// Its new value; without one, print the current value.
        #[arg(conflicts_with = "unset")]
        value: Option<String>,
        /// Remove the setting.
        #[arg(short, long)]
        unset: bool,
        /// Print every setting the config files hold, `name=value` (secrets as `***`).
        #[arg(short, long, conflicts_with_all = ["name", "unset"])]
        list: bool,
        /// Which file: reads otherwise see every file merged, the narrower
        /// level winning; writes go to `.dvt/config.toml`.
        #[command(flatten)]
        level: LevelArgs,
        /// Print the file each setting comes from.
        #[arg(long)]
        show_origin: bool,
    },
    /// The cache's settings (as `dvc cache`).
    Cache {
        #[command(subcommand)]
        command: CacheCommand,
    },
    /// Upload the objects that the targets need and the remote lacks.
    Push {
        #[command(flatten)]
        transfer: TransferArgs,
        #[command(flatten)]
        revs: RevArgs,
    },
    /// Download the objects that the targets need and the cache lacks.
    Fetch {
        #[command(flatten)]
        transfer: TransferArgs,
        #[command(flatten)]
        revs: RevArgs,
        /// Only tracked files and directories of at most this many bytes (a
        /// directory: its files together).
        #[arg(long, value_name = "BYTES")]
        max_size: Option<u64>,
        /// Only metrics or plots files (of stages, or listed at the top of `dvt.toml`).
        #[arg(long = "type", value_enum, value_name = "TYPE")]
        kinds: Vec<KindArg>,
    },
    /// Fetch, then check out.
    Pull {
        #[command(flatten)]
        transfer: TransferArgs,
        // Fetched, not checked out (as DVC's `pull -a/-T/-A`).
        #[command(flatten)]
        revs: RevArgs,
        /// Overwrite or delete files with changes no pointer records.
        #[arg(short, long)]
        force: bool,
        /// Check out what could be fetched; leave out, with a warning, the paths
        /// whose objects neither the cache nor the remote has (as DVC's).
        #[arg(long)]
        allow_missing: bool,
    },
    /// Make the workspace match the pointers, from the cache.
    Checkout {
        #[command(flatten)]
        targets: Targets,
        /// Overwrite or delete files with changes no pointer records.
        #[arg(short, long)]
        force: bool,
        /// Leave out, with a warning, the paths whose objects the cache lacks,
        /// instead of failing (as DVC's), e.g. after fetching part of the data.
        #[arg(long)]
        allow_missing: bool,
        /// Print only the closing count, not each path restored or deleted (as DVC's).
        #[arg(long, conflicts_with = "json")]
        summary: bool,
        /// Accepted for DVC scripts: dvt's workspace files are copies, never links
        /// to recreate; files that differ from their pointers are restored as always.
        #[arg(long)]
        relink: bool,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Rename tracked data together with its pointer and `.gitignore` entry (as `dvc move`).
    #[command(alias = "mv")]
    Move {
        /// The tracked data path, or its `.dvt` file.
        from: PathBuf,
        /// The new data path; an existing directory means "into it", as with `mv`.
        to: PathBuf,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Stop tracking: delete the pointer and its `.gitignore` entry; keep the data
    /// (`--outs`: delete it too). A stage's name deletes it from `dvt.toml` (as `dvc remove`).
    #[command(alias = "rm")]
    Remove {
        /// `.dvt` files, data paths, or stages of `dvt.toml` (deleted from it and `dvt.lock`).
        #[arg(required = true)]
        targets: Vec<PathBuf>,
        /// Also delete the data from the workspace (a stage's: its cached outs), if the
        /// cache holds it (as DVC's).
        #[arg(long)]
        outs: bool,
    },
    /// Stop using dvt here (as `dvc destroy`): delete the pointer files, `dvt.toml`,
    /// `dvt.lock`, `.dvtignore` files and `.dvt` (with the cache inside it), and dvt's git
    /// hooks. The data stays in the workspace as plain files.
    Destroy {
        /// Do not ask (needed without a terminal).
        #[arg(short, long)]
        force: bool,
        /// Only print what would be deleted.
        #[arg(long)]
        dry_run: bool,
        /// Print the plan and whether it was carried out as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Say which paths `.dvtignore` files exclude from tracked directories (as
    /// `dvc check-ignore`); exits 0 if any is excluded, 1 if none.
    CheckIgnore {
        /// Paths, existing or not (end one with `/` to check it as a directory).
        #[arg(required_unless_present = "stdin")]
        targets: Vec<PathBuf>,
        /// Read the paths from standard input, one per line, answering each as
        /// it comes (as DVC's), e.g. `find data | dvt check-ignore --stdin`.
        #[arg(long, conflicts_with_all = ["targets", "json"])]
        stdin: bool,
        /// Show the rule that decides each path: `FILE:LINE:PATTERN<TAB>PATH`.
        #[arg(short, long)]
        details: bool,
        /// With `--details`, also the paths no rule excludes.
        #[arg(short, long, requires = "details")]
        non_matching: bool,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Verify every object in the cache.
    Fsck {
        /// Take damaged objects out of the cache and store again those the workspace
        /// holds; with `--remote`, replace damaged remote copies from the cache.
        #[arg(long)]
        repair: bool,
        /// Check a remote's objects instead of the cache's (a directory remote in
        /// place, any other by downloading them): `--remote` for the default one,
        /// `-r NAME` for another.
        #[arg(short = 'r', long = "remote", value_name = "NAME", num_args = 0..=1, default_missing_value = "")]
        remote: Option<String>,
        /// Transfers at once, with `--remote` (default: the remote's `jobs`).
        #[arg(short = 'j', long, value_name = "N", requires = "remote")]
        jobs: Option<u32>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    #[command(flatten)]
    History(history::HistoryCommand),
    #[command(flatten)]
    Pipeline(pipeline::PipelineCommand),
    /// Print what a bug report needs: dvt's version, the platform, and the
    /// repository's filesystems, cache and remotes (as `dvc doctor`; no secrets)
    #[command(alias = "version")]
    Doctor {
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Accepted for scripts written for DVC (`dvc unprotect`): dvt's workspace
    /// files are copies, never links into the cache, so they are writable
    /// already; checks that the targets are tracked and says so.
    Unprotect {
        /// Data paths or `.dvt` files.
        #[arg(required = true)]
        targets: Vec<PathBuf>,
    },
    /// Turn the DVC project here into a dvt one, in place: remotes, `.dvcignore`
    /// files, the data of `.dvc` files (hashed again: it must be in the workspace)
    /// and `dvc.yaml` (as `dvt.toml`, its stages recorded in `dvt.lock` as the
    /// workspace holds them). DVC's files stay until you delete them
    Migrate {
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print the path of the repository's root relative to the current directory
    /// (as `dvc root`), e.g. `cd "$(dvt root)"`
    Root,
    /// Print a shell completion script (as `dvc completion`), e.g.
    /// `source <(dvt completion)` in bash, `dvt completion -s zsh > _dvt`.
    Completion {
        /// The shell.
        #[arg(short, long, value_enum, default_value_t = clap_complete::Shell::Bash)]
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, clap::Args)]
struct TransferArgs {
    #[command(flatten)]
    targets: Targets,
    /// The remote (default: the one set with `dvt remote default`).
    #[arg(short, long, value_name = "NAME")]
    remote: Option<String>,
    /// Transfers at once (default: the remote's `jobs`, or 4 per core).
    #[arg(short, long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=256))]
    jobs: Option<u32>,
    /// Also the run cache: the entries of earlier stage runs (`dvt repro`), with
    /// the data they produced (as DVC's `--run-cache`).
    #[arg(long, overrides_with = "no_run_cache")]
    run_cache: bool,
    /// Not the run cache (the default; DVC's flag, for scripts).
    #[arg(long, overrides_with = "run_cache")]
    no_run_cache: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

impl TransferArgs {
    fn options(&self, repo: &Repo, cwd: PathBuf) -> Result<ops::TransferOptions, dvt::Error> {
        Ok(ops::TransferOptions {
            targets: self.targets.resolve(repo, &cwd)?,
            cwd,
            remote: self.remote.clone(),
            jobs: self.jobs.map(|j| j as usize),
            revisions: Default::default(),
            run_cache: self.run_cache && !self.no_run_cache,
            revisions_only: false,
            allow_missing: false,
            only: Default::default(),
        })
    }
}

/// `fetch --type`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum KindArg {
    Metrics,
    Plots,
}

impl KindArg {
    fn kind(self) -> ops::DataKind {
        match self {
            KindArg::Metrics => ops::DataKind::Metrics,
            KindArg::Plots => ops::DataKind::Plots,
        }
    }
}

/// Which config file a command writes, or reads alone (as DVC's and git's
/// `--local/--project/--global/--system`).
#[derive(Debug, clap::Args)]
#[group(multiple = false)]
struct LevelArgs {
    /// `.dvt/config.local.toml`: this clone only, not committed.
    #[arg(long)]
    local: bool,
    /// `.dvt/config.toml`: committed (where writes go by default).
    #[arg(long)]
    project: bool,
    /// The user's config, `~/.config/dvt/config.toml`: every repository.
    #[arg(long)]
    global: bool,
    /// The machine's config, `/etc/xdg/dvt/config.toml`: every user.
    #[arg(long)]
    system: bool,
}

impl LevelArgs {
    /// The level asked for, if any.
    fn level(&self) -> Option<ConfigLevel> {
        [
            (self.local, ConfigLevel::Local),
            (self.project, ConfigLevel::Project),
            (self.global, ConfigLevel::Global),
            (self.system, ConfigLevel::System),
        ]
        .into_iter()
        .find_map(|(asked, level)| asked.then_some(level))
    }

    /// The level a write goes to: the one asked for, else `.dvt/config.toml`.
    fn written(&self) -> ConfigLevel {
        self.level().unwrap_or(ConfigLevel::Project)
    }

    /// The repository `cwd` is in; outside any, with `--global` or
    /// `--system`, the settings of those files alone ([`Repo::outside`]).
    fn open(&self, cwd: &std::path::Path) -> Result<Repo, dvt::Error> {
        match Repo::open(cwd) {
            Err(dvt::Error::Repo(dvt::error::RepoError::NotInitialized { .. }))
                if self.level().is_some_and(ConfigLevel::is_outside) =>
            {
                Repo::outside(cwd)
            }
            opened => opened,
        }
    }
}

/// The config file of `level`, as messages name it: relative to the
/// repository root, absolute outside it.
fn shown_file(repo: &Repo, level: ConfigLevel) -> Result<String, dvt::Error> {
    Ok(dvt::ops::config::relative(repo, &repo.config_file(level)?)
        .display()
        .to_string())
}

/// The targets of `status`, `checkout`, `push`, `fetch` and `pull`.
#[derive(Debug, clap::Args)]
struct Targets {
    /// Data paths, `.dvt` files or stages (default: all).
    targets: Vec<PathBuf>,
    /// A directory target stands for all the data tracked below it (as DVC's `-R`).
    #[arg(short = 'R', long)]
    recursive: bool,
    /// A stage target, or an out of one, also stands for the stages upstream of it
    /// (as DVC's `-d`).
    #[arg(short = 'd', long)]
    with_deps: bool,
    /// Targets with `*`, `?` or `[...]` are patterns of tracked data paths
    /// (quote them from the shell; as DVC's `push --glob`).
    #[arg(long)]
    glob: bool,
}

impl Targets {
    /// The targets as the library takes them: with `--glob`, `-R` and `-d`
    /// expanded (see [`dvt::workspace::expand_glob_tracked`],
    /// [`dvt::workspace::expand_recursive`], [`dvt::workspace::expand_with_deps`]).
    fn resolve(&self, repo: &Repo, cwd: &std::path::Path) -> Result<Vec<PathBuf>, dvt::Error> {
        let targets = match self.glob {
            true => dvt::workspace::expand_glob_tracked(repo, cwd, &self.targets)?,
            false => self.targets.clone(),
        };
        expand_targets(repo, cwd, targets, self.recursive, self.with_deps)
    }
}

/// `targets` with `-R` and `-d` applied.
fn expand_targets(
    repo: &Repo,
    cwd: &std::path::Path,
    mut targets: Vec<PathBuf>,
    recursive: bool,
    with_deps: bool,
) -> Result<Vec<PathBuf>, dvt::Error> {
    if recursive {
        targets = dvt::workspace::expand_recursive(repo, cwd, &targets)?;
    }
    if with_deps {
        targets = dvt::workspace::expand_with_deps(repo, cwd, &targets)?;
    }
    Ok(targets)
}

/// Which revisions' data, besides the workspace's (as DVC's push, fetch and gc).
#[derive(Debug, clap::Args)]
struct RevArgs {
    /// Also the data of this revision (repeatable).
    #[arg(long, value_name = "REV")]
    rev: Vec<String>,
    #[command(flatten)]
    across: AcrossArgs,
    /// Also the data of every experiment (`dvt exp run`).
    #[arg(short = 'e', long)]
    all_experiments: bool,
}

impl RevArgs {
    fn revisions(&self) -> dvt::snapshot::Revisions {
        dvt::snapshot::Revisions {
            revs: self.rev.clone(),
            all_branches: self.across.all_branches,
            all_tags: self.across.all_tags,
            all_commits: self.across.all_commits,
            all_experiments: self.all_experiments,
            num: None,
            since: None,
        }
    }
}

/// `-a/-T/-A`: revisions besides the workspace, as DVC's flags of these names
/// (push, fetch, gc, metrics show).
#[derive(Debug, clap::Args)]
pub(super) struct AcrossArgs {
    /// Also every local branch's tip (`gc`: the remote-tracking branches' too).
    #[arg(short = 'a', long)]
    all_branches: bool,
    /// Also every tag.
    #[arg(short = 'T', long)]
    all_tags: bool,
    /// Also every commit (reachable from HEAD, the branches and the tags; `gc`:
    /// the remote-tracking branches too).
    #[arg(short = 'A', long)]
    all_commits: bool,
}

impl AcrossArgs {
    pub(super) fn across(&self) -> dvt::ops::stages::AcrossRevisions {
        dvt::ops::stages::AcrossRevisions {
            branches: self.all_branches,
            tags: self.all_tags,
            commits: self.all_commits,
        }
    }
}

#[derive(Debug, Subcommand)]
enum DataCommand {
    /// Data recorded but not committed to git, changed but not recorded, not in
    /// the cache (or the remote), and files nothing tracks (as `dvc data status`).
    Status {
        #[command(flatten)]
        targets: Targets,
        /// List files inside tracked directories too.
        #[arg(long)]
        granular: bool,
        /// Also list the data that matches its pointer.
        #[arg(long)]
        unchanged: bool,
        /// Also list the files neither git nor dvt tracks (`no`: do not).
        #[arg(long, value_name = "WHICH", num_args = 0..=1, default_missing_value = "all", value_parser = ["no", "all"])]
        untracked_files: Option<String>,
        /// Also list the data the remote lacks (the remote is listed).
        #[arg(long)]
        not_in_remote: bool,
        /// Accepted for DVC scripts: `--not-in-remote` always lists the remote as it is now.
        #[arg(long)]
        no_remote_refresh: bool,
        /// The remote for `--not-in-remote` (default: the default remote).
        #[arg(short, long, value_name = "NAME")]
        remote: Option<String>,
        /// Print the lists as JSON (only those not empty, as DVC's).
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum CacheCommand {
    /// Print the cache directory; with PATH, set `cache.dir` (as `dvc cache dir`).
    Dir {
        /// The new cache directory (relative paths: from the repository root).
        #[arg(conflicts_with = "unset")]
        path: Option<String>,
        /// Go back to the default, `.dvt/cache`.
        #[arg(short, long)]
        unset: bool,
        /// Which file to write (default `.dvt/config.toml`).
        #[command(flatten)]
        level: LevelArgs,
    },
}

#[derive(Debug, Subcommand)]
enum RemoteCommand {
    /// Add a remote: a directory, s3://bucket/prefix, gs://bucket/prefix,
    /// az://container/prefix, http(s)://host/path (WebDAV), or
    /// ssh://[user@]host[:port]/path (SFTP).
    Add {
        /// Its name.
        name: String,
        /// Its URL.
        url: String,
        /// Make it the default remote.
        #[arg(short, long)]
        default: bool,
        #[command(flatten)]
        level: LevelArgs,
        /// Replace a remote of the same name.
        #[arg(short, long)]
        force: bool,
    },
    /// List the remotes (secrets are masked): of every config file, or of one.
    List {
        /// Print the list as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        level: LevelArgs,
    },
    /// Forget a remote (the data on it is not touched): in both of the
    /// repository's config files, or in the one given.
    Remove {
        /// Its name.
        name: String,
        #[command(flatten)]
        level: LevelArgs,
    },
    /// Rename a remote, keeping its options and whether it is the default: in
    /// both of the repository's config files, or in the one given.
    Rename {
        /// Its name.
        old: String,
        /// Its new name.
        new: String,
        #[command(flatten)]
        level: LevelArgs,
    },
    /// Set the default remote, or with `--unset` clear it.
    Default {
        /// Its name.
        #[arg(required_unless_present = "unset")]
        name: Option<String>,
        /// Clear the default.
        #[arg(short, long, conflicts_with = "name")]
        unset: bool,
        #[command(flatten)]
        level: LevelArgs,
    },
    /// Set one option of a remote (DVC's key names: endpointurl, region, profile,
    /// credentialpath, access_key_id, secret_access_key, account_name, ...).
    Modify {
        /// The remote's name.
        name: String,
        /// The option.
        key: String,
        /// Its value.
        #[arg(required_unless_present = "unset")]
        value: Option<String>,
        /// Remove the option instead.
        #[arg(short, long, conflicts_with = "value")]
        unset: bool,
        /// Which file (default `.dvt/config.toml`; secrets asked of it go to
        /// `.dvt/config.local.toml`).
        #[command(flatten)]
        level: LevelArgs,
    },
}

/// Parses the command line, runs it, renders errors; returns the exit code.
pub fn run() -> ExitCode {
    // Ctrl-C, SIGTERM, SIGHUP: take away this run's unfinished files, then exit as
    // an interrupted command does. (SIGKILL cannot be caught: its leftovers are
    // removed by the next command that writes there.)
    let _ = ctrlc::set_handler(|| {
        dvt::fsutil::begin_interrupt();
        // Stage commands run in groups of their own, which Ctrl-C does not reach.
        dvt::process::interrupt_all();
        let removed = dvt::fsutil::remove_own_temporaries();
        // Multipart uploads abort, or the store would keep (and bill) their parts.
        let aborted = dvt::remote::abort_uploads(std::time::Duration::from_secs(5));
        let mut err = std::io::stderr();
        // Below the progress bar, if one is drawn.
        let _ = writeln!(
            err,
            "{}dvt: interrupted; removed {}{}, kept what was finished; run the command \
             again to complete it",
            if std::io::IsTerminal::is_terminal(&err) {
                "\n"
            } else {
                ""
            },
            dvt::counted(removed, "unfinished file"),
            match aborted {
                0 => String::new(),
                n => format!(" and aborted {}", dvt::counted(n, "unfinished upload")),
            }
        );
        std::process::exit(130);
    });
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    LOGGING.store(log::start(cli.verbose), std::sync::atomic::Ordering::Relaxed);
    if cli.wait_for_lock {
        let on_wait: fn(&str) = match cli.quiet {
            true => |_| {},
            false => |holder| eprintln!("waiting: {holder}"),
        };
        dvt::repo::wait_for_locks(on_wait);
    }
    let outcome = execute(&cli);
    // An interrupt makes work in flight fail; the handler reports and exits.
    while dvt::fsutil::interrupted() {
        std::thread::park();
    }
    match outcome {
        Ok(code) => {
            autostage(&cli);
            code
        }
        Err(e) => {
            render_error(&e, cli.dir.as_deref());
            ExitCode::from(1)
        }
    }
}

/// Prints `e`, its causes and its hint; the paths of the commands the hint
/// suggests are written from where the command ran (`dir`, from `-C`, or the
/// current directory), as the `git add` hints are.
fn render_error(e: &dvt::Error, dir: Option<&std::path::Path>) {
    let cwd = start_dir(dir).ok();
    // Not `Repo::open`: the error may be that its configuration cannot be read.
    let root = cwd.as_deref().and_then(|c| Repo::find_root(c).ok());
    // Paths come from the root, or absolute (those errors name files on disk).
    let typed = |path: &str| match (&root, &cwd) {
        (Some(root), Some(cwd)) => match std::path::Path::new(path).strip_prefix(root) {
            Ok(rel) => shell_paths(root, cwd, &[&rel.to_string_lossy()]),
            Err(_) if std::path::Path::new(path).is_absolute() => path.to_string(),
            Err(_) => shell_paths(root, cwd, &[path]),
        },
        _ => path.to_string(),
    };
    let mut err = std::io::stderr().lock();
    // Servers' messages may end in a newline: one line per message.
    let _ = writeln!(err, "error: {}", visible(e.to_string().trim_end()));
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        let _ = writeln!(err, "  caused by: {}", visible(c.to_string().trim_end()));
        cause = c.source();
    }
    if let Some(h) = e.hint_from(&typed) {
        let _ = writeln!(err, "hint: {}", visible(&h));
    }
}

/// `text` as it may reach a terminal: control characters other than newline
/// and tab (an escape sequence in a file name, a carriage return in a param)
/// are written as escapes (`\x1b`, `\r`), so data can neither redraw the
/// terminal nor hide a line of output. JSON escapes them itself.
fn visible(text: &str) -> std::borrow::Cow<'_, str> {
    let hidden = |c: char| c.is_control() && c != '\n' && c != '\t';
    if !text.contains(hidden) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut shown = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\r' => shown.push_str("\\r"),
            // Control characters all lie below U+00A0.
            c if hidden(c) => shown.push_str(&format!("\\x{:02x}", c as u32)),
            c => shown.push(c),
        }
    }
    std::borrow::Cow::Owned(shown)
}

/// A path in a list printed one per line: as it is, or, when it holds a
/// newline (which would split it over two lines), in double quotes with `\n`,
/// `\"` and `\\` escaped, as git prints such paths.
fn quoted(path: &str) -> std::borrow::Cow<'_, str> {
    if !path.contains('\n') {
        return std::borrow::Cow::Borrowed(path);
    }
    let mut q = String::with_capacity(path.len() + 4);
    q.push('"');
    for c in path.chars() {
        match c {
            '\n' => q.push_str("\\n"),
            '"' => q.push_str("\\\""),
            '\\' => q.push_str("\\\\"),
            c => q.push(c),
        }
    }
    q.push('"');
    std::borrow::Cow::Owned(q)
}

/// Writes to stdout. A closed pipe (`dvt status | head`) is not an error; any
/// other failure (a full disk under `> report.json`) is, so that a script does
/// not take a truncated report for a whole one.
macro_rules! out {
    ($($t:tt)*) => {{
        let mut o = std::io::stdout().lock();
        if let Err(e) = writeln!(o, "{}", $crate::cli::visible(&format!($($t)*))) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                return Ok(ExitCode::SUCCESS);
            }
            return Err(std::io::Error::new(e.kind(), format!("could not write to standard output: {e}")).into());
        }
    }};
}

/// Writes a command's account of what it did to stdout, unless quiet (`-q`). What
/// the user asked to see (status, lists, reports, `--json`) goes through `out!`.
macro_rules! say {
    ($quiet:expr, $($t:tt)*) => {{
        if !$quiet { out!($($t)*); }
    }};
}

/// Writes a hint to stderr unless quiet.
macro_rules! note {
    ($quiet:expr, $($t:tt)*) => {{
        if !$quiet { let _ = writeln!(std::io::stderr().lock(), "{}", $crate::cli::visible(&format!($($t)*))); }
    }};
}

mod dates;
mod exp;
mod history;
mod pipeline;

/// The hints after a `status` that is not clean: what each kind of difference
/// wants (add or checkout, pull, repro, fetch), one line each.
fn print_status_hints(q: bool, repo: &Repo, cwd: &std::path::Path, report: &ops::status::StatusReport) {
    use ops::status::Workspace;
    let ptrs = &report.pointers;
    let is_out = |p: &&ops::status::PointerStatus| p.pointer == dvt::pipeline::LOCK_FILE;
    let absent = ptrs.iter().any(|p| p.workspace == Workspace::Missing);
    let uncached = ptrs.iter().any(|p| !p.missing_from_cache.is_empty());
    let named = |paths: &[&str]| paths.iter().map(|p| format!("`{p}`")).collect::<Vec<_>>().join(", ");
    // Another recorded version in the workspace, where the cache lacks
    // the one the pointer names: `pull`, not `checkout`, brings it.
    let to_pull = |p: &&ops::status::PointerStatus| p.workspace_in_cache && !p.missing_from_cache.is_empty();
    if ptrs
        .iter()
        .filter(|p| !is_out(p) && !to_pull(p))
        .any(|p| p.workspace == Workspace::Modified)
    {
        note!(
            q,
            "hint: `dvt add PATH` records changes; `dvt checkout PATH` discards them"
        );
    }
    // Content the cache holds already: another recorded version, most
    // likely, that a git command moved the pointer away from.
    let older: Vec<&str> = ptrs
        .iter()
        .filter(|p| p.workspace_in_cache && !to_pull(p))
        .map(|p| p.path.as_str())
        .collect();
    // The same, where the version the pointer names is not here yet:
    // a teammate's, after a `git pull` whose hook could not check it out.
    let to_fetch: Vec<&str> = ptrs.iter().filter(to_pull).map(|p| p.path.as_str()).collect();
    if !to_fetch.is_empty() {
        note!(
            q,
            "hint: the workspace holds another recorded version at {}, and the cache lacks the one \
             the pointer names (new from `git pull`?): `dvt pull {}` brings it, and `dvt add` would \
             record the workspace's over it",
            named(&to_fetch),
            shell_paths(repo.root(), cwd, &to_fetch)
        );
    }
    if !older.is_empty() {
        note!(
            q,
            "hint: the cache already holds what the workspace has at {}: another recorded version, \
             left there if a git command that runs no hook (`reset`, `stash`, `revert`) moved the \
             pointer; then `dvt checkout {}` brings the version the pointer names, and `dvt add` would \
             record the workspace's over it",
            named(&older),
            shell_paths(repo.root(), cwd, &older)
        );
    }
    let out_modified = ptrs.iter().filter(is_out).any(|p| p.workspace == Workspace::Modified);
    if out_modified {
        note!(
            q,
            "hint: `dvt repro` runs the stages again; `dvt commit STAGE` records their outs as they \
             are; `dvt checkout PATH` discards the changes"
        );
    }
    let stale = !report.stale_stages.is_empty() && !out_modified;
    if stale && !(absent && uncached) {
        note!(q, "hint: `dvt repro` runs them (`dvt repro --dry-run` says the same)");
    }
    // Data to download, and nowhere to download it from: say that, or `pull`
    // fails on it. (Data in the workspace whose objects the cache lacks has
    // `dvt commit` below.)
    let no_remote = absent && uncached && dvt::remote::config::names(repo.config()).is_empty();
    if no_remote {
        note!(
            q,
            "hint: the cache lacks data the pointers name, and no remote is configured to get it \
             from: `dvt remote add -d NAME URL` names the one it was pushed to, then `dvt pull` \
             brings it"
        );
    } else if absent && uncached && stale {
        note!(
            q,
            "hint: `dvt pull` downloads what the cache lacks and restores the workspace; \
             `dvt repro` then runs the stages still stale"
        );
    } else if absent && uncached {
        note!(
            q,
            "hint: `dvt pull` downloads what the cache lacks and restores the workspace"
        );
    } else if absent {
        note!(q, "hint: `dvt checkout` restores what is missing from the workspace");
    } else if uncached {
        note!(
            q,
            "hint: `dvt fetch` gets missing objects from a remote; `dvt commit PATH` stores \
             those of unchanged data again from the workspace"
        );
    }
}

/// Repo-relative paths as arguments for a `git` command typed in `cwd`: relative
/// to it, and shell-quoted where needed, so that a hint can be pasted as it is.
fn shell_paths(root: &std::path::Path, cwd: &std::path::Path, rels: &[&str]) -> String {
    let here: Vec<&str> = match cwd.strip_prefix(root).ok().and_then(|p| p.to_str()) {
        Some(p) => p.split('/').filter(|c| !c.is_empty()).collect(),
        None => Vec::new(),
    };
    rels.iter()
        .map(|rel| {
            let parts: Vec<&str> = rel.split('/').filter(|c| !c.is_empty() && *c != ".").collect();
            let common = here.iter().zip(&parts).take_while(|(a, b)| a == b).count();
            let mut out: Vec<&str> = vec![".."; here.len() - common];
            out.extend(&parts[common..]);
            let path = if out.is_empty() { ".".to_string() } else { out.join("/") };
            dvt::shell_word(&path)
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `hint: {lead}, run:` and the `git add` of every file the command has
/// written for git to keep (`dvt.lock`, `.gitignore` files, pointers), as
/// DVC's "To track the changes with git, run: …"; nothing if it wrote none,
/// or with `core.autostage`, which stages them.
fn git_add_hint(q: bool, repo: &Repo, cwd: &std::path::Path, lead: &str) {
    let files = dvt::autostage::for_git(repo.root(), dvt::autostage::noted());
    // Sorted: commands write pointers from several threads at once.
    let mut rels: Vec<String> = files
        .iter()
        .filter_map(|f| f.strip_prefix(repo.root()).ok()?.to_str().map(str::to_string))
        .collect();
    rels.sort_unstable();
    if rels.is_empty() {
        return;
    }
    let rels: Vec<&str> = rels.iter().map(String::as_str).collect();
    note!(
        q || autostaging(),
        "hint: {lead}, run:\n    git add {}",
        shell_paths(repo.root(), cwd, &rels)
    );
}

/// The count line of `checkout` and `pull`: files written, empty directories
/// made, pointers already matching.
fn restored_line(report: &ops::CheckoutReport) -> String {
    let restored = files(report.restored.len());
    let bytes = HumanBytes(report.bytes);
    let done = match report.restored_dirs.len() {
        0 => format!("{restored} restored ({bytes})"),
        1 => format!("{restored} ({bytes}) and 1 empty directory restored"),
        n => format!("{restored} ({bytes}) and {n} empty directories restored"),
    };
    let deleted = match report.deleted.len() {
        0 => String::new(),
        n => format!(", {} deleted", files(n)),
    };
    format!(
        "{done}{deleted}, {} already up to date",
        dvt::counted(report.unchanged.len(), "path")
    )
}

/// "1 file", "2 files".
fn files(n: impl TryInto<u64>) -> String {
    dvt::counted(n, "file")
}

fn json(value: &impl serde::Serialize) -> Result<ExitCode, dvt::Error> {
    let text = serde_json::to_string_pretty(value).map_err(std::io::Error::other)?;
    out!("{text}");
    Ok(ExitCode::SUCCESS)
}

/// Whether `core.autostage` is on in the repository the command runs in (as
/// it was when the command started): the hints that say to `git add` what
/// dvt wrote are then left out, since [`autostage`] stages it.
fn autostaging() -> bool {
    AUTOSTAGING.load(std::sync::atomic::Ordering::Relaxed)
}

static AUTOSTAGING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether `-v` (or `DVT_LOG`) writes events: no progress bars then.
static LOGGING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The root of the repository the command started in, if any.
static STARTED_IN: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();

/// `core.autostage` (as DVC's): once a command has succeeded, stages with git
/// the files it wrote for git to keep (see [`dvt::autostage`]), if the setting
/// is on now, and says which. Files under `.dvt/` other than `config.toml`
/// (an experiment's worktree, say) are not staged. A failure is a warning:
/// the command's work is done, and `git add` stages the same files.
fn autostage(cli: &Cli) {
    let touched = dvt::autostage::take();
    if touched.is_empty() {
        return;
    }
    let cwd = start_dir(cli.dir.as_deref());
    let root = match cwd.as_ref().ok().map(|c| Repo::open(c)) {
        Some(Ok(repo)) if repo.config().core.autostage => repo.root().to_path_buf(),
        Some(Ok(_)) => return,
        // `destroy` took the repository away: the setting as the command found it.
        _ => match STARTED_IN.get() {
            Some(root) if autostaging() && !root.join(dvt::repo::DVT_DIR).exists() => root.clone(),
            _ => return,
        },
    };
    let keep = dvt::autostage::for_git(&root, touched);
    let staged = dvt::git::Git::open(&root).and_then(|g| g.stage(&keep));
    let mut err = std::io::stderr().lock();
    match staged {
        Ok(s) if s.is_empty() => {}
        Ok(s) if !cli.quiet => {
            let _ = writeln!(err, "staged with git (core.autostage): {}", s.join(" "));
        }
        Ok(_) => {}
        Err(e) => {
            let _ = writeln!(
                err,
                "warning: could not stage with git (core.autostage): {}\nhint: `git add` the files dvt wrote",
                dvt::error_chain(&e)
            );
        }
    }
}

/// Where the command runs: `-C DIR` as `cd DIR` would make it (`..` and
/// links resolved, as the current directory is), else the current directory.
fn start_dir(dir: Option<&std::path::Path>) -> std::io::Result<std::path::PathBuf> {
    match dir {
        Some(d) => {
            let abs = fs_err::canonicalize(d).map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => std::io::Error::new(
                    e.kind(),
                    format!("cannot run in `{}` (-C): no such directory", d.display()),
                ),
                _ => e,
            })?;
            match abs.is_dir() {
                true => Ok(abs),
                false => Err(std::io::Error::new(
                    std::io::ErrorKind::NotADirectory,
                    format!("cannot run in `{}` (-C): not a directory", d.display()),
                )),
            }
        }
        None => std::env::current_dir(),
    }
}

fn execute(cli: &Cli) -> Result<ExitCode, dvt::Error> {
    let cwd = start_dir(cli.dir.as_deref())?;
    if let Ok(repo) = Repo::open(&cwd) {
        AUTOSTAGING.store(repo.config().core.autostage, std::sync::atomic::Ordering::Relaxed);
        let _ = STARTED_IN.set(repo.root().to_path_buf());
    }
    let bars = Bars::new(cli.quiet, LOGGING.load(std::sync::atomic::Ordering::Relaxed));
    let q = cli.quiet;
    match &cli.command {
        Command::Unprotect { targets } => {
            let repo = Repo::open(&cwd)?;
            dvt::workspace::resolve_targets(&repo, &cwd, dvt::workspace::Targets::given(targets))?;
            say!(
                q,
                "Nothing to unprotect: dvt checks data out as copies, never as links into the cache, so it can be edited in place"
            );
        }
        Command::Migrate { json: as_json } => {
            let repo = match Repo::open(&cwd) {
                Err(dvt::Error::Repo(dvt::error::RepoError::NotInitialized { .. })) => {
                    // The DVC project's root, as `dvc` finds it.
                    let Some(root) = cwd.ancestors().find(|d| d.join(".dvc").is_dir()).map(PathBuf::from) else {
                        return Err(dvt::error::RepoError::NoDvcProject { root: cwd.clone() }.into());
                    };
                    let repo = Repo::init(&root, &InitOptions::default())?;
                    say!(q || *as_json, "Initialized dvt repository in {}", repo.root().display());
                    repo
                }
                r => r?,
            };
            let r = ops::migrate::migrate(&repo, &bars)?;
            if *as_json {
                return json(&r);
            }
            print_migrated(q, &repo, &cwd, &r)?;
        }
        Command::Root => {
            let repo = Repo::open(&cwd)?;
            out!("{}", relative_to(repo.root(), &cwd).display());
        }
        Command::Doctor { json: as_json } => {
            let d = ops::doctor::doctor(&cwd);
            if *as_json {
                return json(&d);
            }
            out!("dvt {}", d.version);
            out!("platform: {}", d.platform);
            out!("supports: {}", d.supports.join(", "));
            let Some(r) = &d.repo else {
                out!("repository: none here");
                return Ok(ExitCode::SUCCESS);
            };
            let fs = |m: &Option<ops::doctor::Mount>| match m {
                Some(m) => format!("{} on {} ({})", m.fs_type, m.mount_point, m.source),
                None => "unknown".to_string(),
            };
            out!(
                "repository: {} ({})",
                r.root.display(),
                if r.git { "git" } else { "no git" }
            );
            out!("workspace filesystem: {}", fs(&r.workspace_fs));
            out!(
                "cache: {}{}, zstd level {}, fsync {}{}",
                r.cache_dir.display(),
                if r.cache_shared { " (cache.dir)" } else { "" },
                r.cache_level,
                if r.cache_fsync { "on" } else { "off" },
                if r.cache_group { ", shared with the group" } else { "" }
            );
            out!("cache filesystem: {}", fs(&r.cache_fs));
            if r.remotes.is_empty() {
                out!("remotes: none");
            }
            for rm in &r.remotes {
                let mark = if rm.default { " (default)" } else { "" };
                out!("remote: {} ({}){mark}", rm.name, rm.kind);
            }
            let fetch = if r.hooks_fetch { "on" } else { "off" };
            match &r.hooks {
                ops::hooks::Installed::Own(hooks) => out!("git hooks: {}; hooks.fetch {fetch}", hooks.join(", ")),
                ops::hooks::Installed::PreCommit => out!(
                    "git hooks: through the pre-commit framework ({}); hooks.fetch {fetch}",
                    ops::hooks::PRE_COMMIT_CONFIG
                ),
                ops::hooks::Installed::None => out!("git hooks: none of dvt's"),
            }
        }
        Command::Completion { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            let mut script = Vec::new();
            clap_complete::generate(*shell, &mut cmd, "dvt", &mut script);
            out!("{}", String::from_utf8_lossy(&script).trim_end());
        }
        Command::Init { no_scm, subdir, force } => {
            let again = *force && cwd.join(dvt::repo::DVT_DIR).is_dir();
            let repo = Repo::init(
                &cwd,
                &InitOptions {
                    no_scm: *no_scm,
                    subdir: *subdir,
                    force: *force,
                },
            )?;
            match again {
                true => say!(
                    q,
                    "Reinitialized dvt repository in {}: settings started over, cache kept",
                    repo.root().display()
                ),
                false => say!(q, "Initialized dvt repository in {}", repo.root().display()),
            }
            let staging = repo.config().core.autostage;
            AUTOSTAGING.store(staging, std::sync::atomic::Ordering::Relaxed);
            match staging {
                true => note!(q, "hint: commit it with `git commit -m \"Initialize dvt\"`"),
                false => note!(
                    q,
                    "hint: commit it with `git add .dvt && git commit -m \"Initialize dvt\"`"
                ),
            }
        }
        Command::Add {
            paths,
            out: Some(out),
            to_remote,
            remote,
            remote_jobs,
            force,
            json: as_json,
            ..
        } => {
            let repo = Repo::open(&cwd)?;
            let [src] = paths.as_slice() else {
                return Err(dvt::error::PathError::OutOfSeveral { count: paths.len() }.into());
            };
            let opts = ops::ImportUrlOptions {
                url: src.to_string_lossy().into_owned(),
                out: Some(out.clone()),
                cwd: cwd.clone(),
                force: *force,
                jobs: remote_jobs.map(|n| n as usize),
                to_remote: to_remote.then(|| remote.clone()),
                fs_config: Default::default(),
                no_download: false,
                version_aware: false,
            };
            let r = ops::add_external(&repo, &opts, &bars)?;
            if *as_json {
                return json(&r);
            }
            history::print_brought(q, "added", &r, &src.to_string_lossy(), &repo, &cwd)?;
        }
        Command::Add {
            paths,
            no_commit,
            glob,
            json: as_json,
            ..
        } => {
            let repo = Repo::open(&cwd)?;
            let opts = ops::AddOptions {
                paths: match glob {
                    true => dvt::workspace::expand_glob_files(&cwd, paths)?,
                    false => paths.clone(),
                },
                cwd: cwd.clone(),
                no_commit: *no_commit,
            };
            let report = ops::add(&repo, &opts, &bars)?;
            if *as_json {
                return json(&report);
            }
            print_added(q, &report, true)?;
            git_add_hint(q, &repo, &cwd, "to record this version with git");
            if *no_commit {
                let shown: Vec<&str> = report.added.iter().map(|a| a.path.as_str()).collect();
                note!(
                    q,
                    "note: nothing was stored in the cache: `dvt commit {}` stores it",
                    shown.join(" ")
                );
            }
        }
        Command::Status {
            targets,
            remote,
            remote_name,
            revs,
            jobs,
            json: as_json,
            ..
        } if *remote || remote_name.is_some() => {
            let repo = Repo::open(&cwd)?;
            let opts = ops::TransferOptions {
                targets: targets.resolve(&repo, &cwd)?,
                cwd,
                remote: remote_name.clone(),
                jobs: jobs.map(|n| n as usize),
                revisions: revs.revisions(),
                run_cache: false,
                revisions_only: false,
                allow_missing: false,
                only: Default::default(),
            };
            let report = ops::remote_status(&repo, &opts, &bars)?;
            if *as_json {
                return json(&report);
            }
            // As DVC's `status -q`: no output; the exit code says whether in sync.
            if q {
                return Ok(ExitCode::from(u8::from(!report.in_sync())));
            }
            let total: usize = report.pointers.iter().map(|p| p.objects).sum();
            if report.pointers.is_empty() {
                out!("No data is tracked: add some with `dvt add PATH`.");
            } else if report.in_sync() {
                let mut others: Vec<String> = report
                    .pointers
                    .iter()
                    .filter_map(|p| Some(format!("`{}`", p.remote.as_ref()?)))
                    .collect();
                others.dedup();
                let remotes = match others.is_empty() {
                    true => format!("remote `{}` are", report.remote),
                    false => format!("remotes `{}`, {} are", report.remote, others.join(", ")),
                };
                out!("Cache and {remotes} in sync ({}).", dvt::counted(total, "object"));
            }
            for p in &report.pointers {
                let mut parts = Vec::new();
                let local = match p.not_pushed {
                    true => "only in the cache (its pointer says `push = false`)",
                    false => "only in the cache (to push)",
                };
                let neither = match &p.source {
                    Some(source) => format!("in neither (imported from {source}: `dvt pull` downloads from there)"),
                    None => "in neither (lost here)".to_string(),
                };
                for (n, what) in [
                    (p.local_only.len(), local),
                    (p.remote_only.len(), "only on the remote (to fetch)"),
                    (p.missing.len(), neither.as_str()),
                ] {
                    if n > 0 {
                        parts.push(format!("{n} object{} {what}", if n == 1 { "" } else { "s" }));
                    }
                }
                match (&p.remote, parts.is_empty()) {
                    (_, true) => {}
                    (Some(remote), false) => out!("{} (remote `{remote}`): {}", p.path, parts.join(", ")),
                    (None, false) => out!("{}: {}", p.path, parts.join(", ")),
                }
            }
        }
        Command::Data {
            command:
                DataCommand::Status {
                    targets,
                    granular,
                    unchanged,
                    untracked_files,
                    not_in_remote,
                    remote,
                    json: as_json,
                    ..
                },
        } => {
            let repo = Repo::open(&cwd)?;
            let opts = ops::DataStatusOptions {
                targets: targets.resolve(&repo, &cwd)?,
                cwd: cwd.clone(),
                granular: *granular,
                unchanged: *unchanged,
                untracked: untracked_files.as_deref() == Some("all"),
                not_in_remote: *not_in_remote,
                remote: remote.clone(),
            };
            let report = ops::data_status(&repo, &opts, &bars)?;
            if *as_json {
                return json(&report);
            }
            return print_data_status(&report, q);
        }
        Command::Status {
            targets,
            no_updates,
            revs,
            json: as_json,
            ..
        } => {
            if revs.revisions().any() {
                clap::Error::raw(
                    clap::error::ErrorKind::MissingRequiredArgument,
                    "--rev, -a, -T, -A and -e compare those revisions' data with a remote: add -c (or -r NAME)\n",
                )
                .exit();
            }
            let repo = Repo::open(&cwd)?;
            let opts = ops::StatusOptions {
                targets: targets.resolve(&repo, &cwd)?,
                cwd: cwd.clone(),
                data_only: false,
                check_updates: !no_updates,
            };
            let report = ops::status(&repo, &opts, &bars)?;
            if *as_json {
                return json(&report);
            }
            // As DVC's `status -q` (and `git diff --quiet`): no output; exit code 1
            // when anything differs, for scripts (`dvt status -q || dvt pull`).
            if q {
                return Ok(ExitCode::from(u8::from(!report.is_clean())));
            }
            let any_error = report.pointers.iter().any(|p| p.error.is_some()) || report.pipeline_error.is_some();
            let updates = report.updates.iter().any(|u| u.available);
            if report.is_clean() && report.pointers.is_empty() && opts.targets.is_empty() {
                out!("No data is tracked: add some with `dvt add PATH`.");
            } else if report.is_clean() && !updates {
                out!("Data and pointers are up to date.");
            }
            warn_data_in_git_index(&report.in_git_index, false);
            warn_left_behind(&repo, &cwd, &report.left_behind);
            for u in &report.updates {
                let from = match &u.rev {
                    Some(rev) => format!("`{}` at `{rev}`", u.source),
                    None => format!("`{}`", u.source),
                };
                match &u.error {
                    Some(e) => note!(q, "warning: {}: could not ask {from} for updates: {e}", u.pointer),
                    None if u.available => out!(
                        "{}: update available from {from} (`dvt update {}`)",
                        u.pointer,
                        u.pointer
                    ),
                    None => {}
                }
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
                if p.pointer == dvt::pipeline::LOCK_FILE {
                    out!("{} (pipeline out, in {}): {state}", p.path, p.pointer);
                } else if p.pointer != format!("{}.{}", p.path, dvt::pointer::POINTER_EXT) {
                    // A target inside a tracked directory.
                    out!("{} (in {}): {state}", p.path, p.pointer);
                } else {
                    out!("{}: {state}", p.pointer);
                }
                // A directory replaced by a file, or the other way round: one line,
                // not every file as deleted (or the directory as a modified file).
                let unlisted = [&p.added, &p.modified, &p.deleted, &p.mode_changed]
                    .iter()
                    .all(|l| l.is_empty());
                if p.replaced_by == Some(dvt::pointer::Kind::File) && unlisted {
                    out!(
                        "    replaced: {} is a file now, not the directory that the pointer records",
                        quoted(&p.path)
                    );
                } else if p.replaced_by == Some(dvt::pointer::Kind::File) {
                    out!(
                        "    replaced: {} is a file now, not the directory of {} that the pointer records",
                        quoted(&p.path),
                        dvt::counted(p.deleted.len(), "file")
                    );
                } else if p.workspace == ops::status::Workspace::Modified && unlisted && p.replaced_by.is_none() {
                    out!("    which files changed is not known: the recorded manifest is not in the cache");
                } else if p.replaced_by == Some(dvt::pointer::Kind::Dir) {
                    out!(
                        "    replaced: {} is a directory now, not the file that the pointer records",
                        quoted(&p.path)
                    );
                } else {
                    for (label, list) in [
                        ("added", &p.added),
                        ("modified", &p.modified),
                        ("deleted", &p.deleted),
                        ("mode changed", &p.mode_changed),
                    ] {
                        for path in list {
                            out!("    {label}: {}", quoted(path));
                        }
                    }
                }
                if !p.missing_from_cache.is_empty() {
                    out!(
                        "    not in cache: {}",
                        dvt::counted(p.missing_from_cache.len(), "object")
                    );
                }
            }
            if let Some(e) = &report.pipeline_error {
                out!("{}: error: {e}", dvt::pipeline::PIPELINE_FILE);
            }
            if !report.stale_stages.is_empty() {
                out!(
                    "pipeline: {} would run:",
                    dvt::counted(report.stale_stages.len(), "stage")
                );
                for st in &report.stale_stages {
                    out!("    {}: {}", st.stage, st.reason.as_deref().unwrap_or(""));
                }
            }
            // A pointer that cannot be read (its report has no path): how to mend it.
            use dvt::ops::status::Unread;
            let unread = |why| report.pointers.iter().find(|p| p.unread_because == Some(why));
            if unread(Unread::NewerFormat).is_some() {
                note!(q, "hint: a newer dvt wrote it: upgrade dvt to read it");
            } else if let Some(bad) = unread(Unread::Conflict) {
                // `git checkout -- FILE` refuses a file with a conflict.
                let file = shell_paths(repo.root(), &cwd, &[&bad.pointer]);
                note!(
                    q,
                    "hint: keep one side (`git checkout --ours {file}` or `--theirs`), or mend it by hand and \
                     `git add {file}`; then `dvt checkout`"
                );
            } else if let Some(bad) = report.pointers.iter().find(|p| p.unreadable()) {
                let file = shell_paths(repo.root(), &cwd, &[&bad.pointer]);
                note!(q, "hint: {}", dvt::error::put_back(&file));
            }
            if !report.is_clean() && !any_error {
                print_status_hints(q, &repo, &cwd, &report);
            }
            if any_error {
                return Ok(ExitCode::from(1));
            }
        }
        Command::Checkout {
            targets,
            force,
            allow_missing,
            summary,
            json: as_json,
            ..
        } => {
            let repo = Repo::open(&cwd)?;
            let opts = ops::CheckoutOptions {
                targets: targets.resolve(&repo, &cwd)?,
                cwd,
                force: *force,
                allow_missing: *allow_missing,
                keep_changed: false,
            };
            // After `git checkout` without hooks: what the old HEAD left, as the hooks do.
            let left = match opts.targets.is_empty() {
                true => ops::switch::leave_behind_last_switch(&repo)?,
                false => Default::default(),
            };
            let mut report = ops::checkout(&repo, &opts, &bars)?;
            report.left_behind = left;
            if *as_json {
                return json(&report);
            }
            history::print_left_behind(&report.left_behind, q);
            left_out_note(q, &report.missing, "the cache lacks");
            for p in report.deleted.iter().filter(|_| !*summary) {
                say!(q, "deleted {}", quoted(p));
            }
            for p in report.mode_fixed.iter().filter(|_| !*summary) {
                say!(q, "mode fixed {}", quoted(p));
            }
            if report.restored.len() + report.restored_dirs.len() <= 20 && !*summary {
                for p in report.restored.iter().chain(&report.restored_dirs) {
                    say!(q, "restored {}", quoted(p));
                }
            }
            say!(q, "{}", restored_line(&report));
        }
        Command::Move {
            from,
            to,
            json: as_json,
        } => {
            let repo = Repo::open(&cwd)?;
            let opts = ops::MoveOptions {
                from: from.clone(),
                to: to.clone(),
                cwd: cwd.clone(),
            };
            let report = ops::mv(&repo, &opts)?;
            if *as_json {
                return json(&report);
            }
            say!(
                q,
                "moved {} -> {}{}",
                report.from,
                report.to,
                match (report.moved_data, report.moved_by_hand) {
                    (true, _) => "",
                    (false, true) => " (the pointer only: the data was there already, as recorded)",
                    (false, false) => " (the pointer only: the data was not in the workspace)",
                }
            );
            for n in &report.named_in_pipeline {
                let now = format!("{}{}", report.to, &n.path[report.from.len()..]);
                note!(
                    false,
                    "warning: {} in dvt.toml names `{}`, which is now `{now}`: edit dvt.toml",
                    n.what,
                    n.path
                );
            }
            let mut files = vec![report.old_pointer.as_str(), report.pointer.as_str()];
            files.extend(report.gitignores.iter().map(String::as_str));
            note!(
                q || autostaging(),
                "hint: to record the move with git, run:\n    git add -A {}",
                shell_paths(repo.root(), &cwd, &files)
            );
        }
        Command::Remove { targets, outs } => {
            let repo = Repo::open(&cwd)?;
            let report = ops::remove(
                &repo,
                &ops::RemoveOptions {
                    targets: targets.clone(),
                    cwd,
                    outs: *outs,
                },
            )?;
            for s in &report.stages {
                say!(q, "removed stage `{s}` from dvt.toml and dvt.lock");
            }
            for p in &report.removed {
                match outs {
                    true => say!(q, "removed {p}"),
                    false => say!(q, "removed {p}; the data stays in place, no longer tracked"),
                }
            }
            if !*outs && !report.removed.is_empty() {
                // Its `.gitignore` entry went too: a large dataset is one
                // `git add -A` away from git's history.
                note!(
                    q,
                    "hint: git no longer ignores that data, so `git add -A` would commit it: delete it \
                     (`dvt remove --outs` deletes it with the pointer) or ignore it yourself if you keep it"
                );
            }
            for p in &report.deleted {
                say!(
                    q,
                    "deleted {} (its content stays in the cache until `dvt gc`)",
                    quoted(p)
                );
            }
        }
        Command::Destroy {
            force,
            dry_run,
            json: as_json,
        } => {
            let repo = Repo::open(&cwd)?;
            let mut confirm = |plan: &ops::DestroyPlan| -> Result<bool, dvt::Error> {
                if !*as_json {
                    print_destroy_plan(plan);
                }
                Ok(*force || history::ask("Delete dvt's files from this repository? [y/N] ")?)
            };
            let (plan, done) = match dry_run {
                true => (ops::destroy::plan(&repo, &bars)?, false),
                false => ops::destroy(&repo, &mut confirm, &bars)?,
            };
            if *dry_run && !*as_json {
                print_destroy_plan(&plan);
            }
            if *as_json {
                return json(&serde_json::json!({ "plan": plan, "destroyed": done }));
            }
            if !done {
                if !*dry_run {
                    say!(q, "nothing deleted");
                }
                return Ok(ExitCode::SUCCESS);
            }
            say!(
                q,
                "dvt removed from `{}`: the data stays in place as plain files",
                repo.root().display()
            );
            let deleted_any = !plan.pointers.is_empty() || !plan.pipeline_files.is_empty();
            if deleted_any && !autostaging() && dvt::git::Git::open(repo.root()).is_ok() {
                note!(
                    q,
                    "hint: if they were committed, record their removal with git: `git add -A`, then commit"
                );
            }
        }
        Command::CheckIgnore {
            targets,
            stdin,
            details,
            non_matching,
            json: as_json,
        } => {
            let repo = Repo::open(&cwd)?;
            let check = |t: &std::path::Path| -> Result<dvt::workspace::IgnoreCheck, dvt::Error> {
                let (_, rel) = repo.resolve(&cwd, t)?;
                let is_dir = t.as_os_str().to_string_lossy().ends_with('/');
                dvt::workspace::check_ignore(repo.root(), &rel, is_dir)
            };
            let paths: Box<dyn Iterator<Item = std::io::Result<PathBuf>>> = match stdin {
                true => Box::new(std::io::stdin().lock().lines().map(|l| l.map(PathBuf::from))),
                false => Box::new(targets.iter().cloned().map(Ok)),
            };
            let mut any = false;
            let mut checks = Vec::new();
            for t in paths {
                let t = t?;
                if t.as_os_str().is_empty() {
                    continue;
                }
                let c = check(&t)?;
                any |= c.ignored;
                if *as_json {
                    checks.push(c);
                    continue;
                }
                if !c.ignored && !*non_matching {
                    continue;
                }
                // Each answer goes out as its line does (stdout is line-buffered).
                let shown = t.display();
                match (&c.rule, *details) {
                    (_, false) => out!("{shown}"),
                    (Some(r), true) => out!("{}:{}:{}\t{shown}", r.source, r.line, r.pattern),
                    (None, true) => out!("::\t{shown}"),
                }
            }
            if *as_json {
                json(&checks)?;
            }
            return Ok(ExitCode::from(if any { 0 } else { 1 }));
        }
        Command::Remote { command } => return remote_command(&cwd, command, q),
        Command::Config {
            name,
            value,
            unset,
            list,
            level,
            show_origin,
        } => {
            use dvt::ops::config::{self, Scope};
            let repo = level.open(&cwd)?;
            let scope = match level.level() {
                Some(l) => Scope::Only(l),
                None => Scope::Merged,
            };
            let origin = |s: &config::Setting| {
                if *show_origin {
                    format!("{}\t", s.file.display())
                } else {
                    String::new()
                }
            };
            let name = name.as_deref().unwrap_or_default();
            if *list {
                for s in config::list(&repo, scope)? {
                    out!("{}{}={}", origin(&s), s.name, s.value);
                }
            } else if *unset || value.is_some() {
                let value = if *unset { None } else { value.as_deref() };
                return write_setting(&cwd, level, name, value, q);
            } else {
                let s = config::get(&repo, name, scope)?;
                out!("{}{}", origin(&s), s.value);
            }
        }
        Command::Cache {
            command: CacheCommand::Dir { path, unset, level },
        } => {
            if path.is_none() && !*unset {
                let repo = level.open(&cwd)?;
                out!("{}", repo.cache().root().display());
                return Ok(ExitCode::SUCCESS);
            }
            return write_setting(&cwd, level, "cache.dir", path.as_deref(), q);
        }
        Command::History(command) => return history::run(&cwd, command, q, &bars),
        Command::Pipeline(command) => return pipeline::run(&cwd, command, q, &bars),
        Command::Push { transfer, revs } => {
            let repo = Repo::open(&cwd)?;
            let opts = ops::TransferOptions {
                revisions: revs.revisions(),
                ..transfer.options(&repo, cwd)?
            };
            let report = ops::push(&repo, &opts, &bars)?;
            let incomplete = !report.missing_from_cache.is_empty();
            if transfer.json {
                json(&report)?;
            } else {
                warn_unreadable(&report.unreadable);
                for m in report.missing_from_cache.iter().take(20) {
                    out!("not in the cache, not pushed: {} ({})", m.path, m.id);
                }
                if report.missing_from_cache.len() > 20 {
                    out!("… and {} more not in the cache", report.missing_from_cache.len() - 20);
                }
                say!(q, "{}", pushed_line(&report));
                if let Some(runs) = &report.runs {
                    say!(q, "{}", runs_line(runs, true, &report.remote));
                }
            }
            if incomplete {
                note!(
                    q,
                    "hint: these objects are in no cache here: `dvt fetch` them from another remote, or `dvt add` the data again"
                );
                return Ok(ExitCode::from(1));
            }
        }
        Command::Fetch {
            transfer,
            revs,
            max_size,
            kinds,
        } => {
            let repo = Repo::open(&cwd)?;
            let opts = ops::TransferOptions {
                revisions: revs.revisions(),
                only: ops::DataFilter {
                    max_size: *max_size,
                    kinds: kinds.iter().map(|k| k.kind()).collect(),
                },
                ..transfer.options(&repo, cwd)?
            };
            let report = ops::fetch(&repo, &opts, &bars)?;
            if transfer.json {
                return json(&report);
            }
            warn_unreadable(&report.unreadable);
            if report.left_out > 0 {
                note!(
                    q,
                    "left out {} tracked path{} (--max-size, --type)",
                    report.left_out,
                    if report.left_out == 1 { "" } else { "s" }
                );
            }
            say!(q, "{}", fetched_line(&report));
            if let Some(runs) = &report.runs {
                say!(q, "{}", runs_line(runs, false, &report.remote));
            }
        }
        Command::Pull {
            transfer,
            revs,
            force,
            allow_missing,
        } => {
            let repo = Repo::open(&cwd)?;
            let opts = ops::TransferOptions {
                allow_missing: *allow_missing,
                revisions: revs.revisions(),
                ..transfer.options(&repo, cwd)?
            };
            let left = match opts.targets.is_empty() {
                true => ops::switch::leave_behind_last_switch(&repo)?,
                false => Default::default(),
            };
            let mut report = ops::pull(&repo, &opts, *force, &bars)?;
            report.checkout.left_behind = left;
            if transfer.json {
                return json(&report);
            }
            history::print_left_behind(&report.checkout.left_behind, q);
            warn_unreadable(&report.fetch.unreadable);
            left_out_note(
                q,
                &report.checkout.missing,
                &format!("neither the cache nor `{}` has", report.fetch.remote),
            );
            say!(q, "{}", fetched_line(&report.fetch));
            if let Some(runs) = &report.fetch.runs {
                say!(q, "{}", runs_line(runs, false, &report.fetch.remote));
            }
            say!(q, "{}", restored_line(&report.checkout));
            if !report.other_remotes.is_empty() {
                let named: Vec<String> = report.other_remotes.iter().map(|p| quoted(p).into_owned()).collect();
                note!(
                    q,
                    "left out {}: {} another remote (`dvt pull` without `-r` gets {}): {}",
                    dvt::counted(named.len(), "path"),
                    if named.len() == 1 {
                        "its pointer names"
                    } else {
                        "their pointers name"
                    },
                    if named.len() == 1 { "it" } else { "them" },
                    named.join(", ")
                );
            }
        }
        Command::Fsck {
            repair,
            remote: Some(remote),
            jobs,
            json: as_json,
        } => {
            let repo = Repo::open(&cwd)?;
            let opts = ops::TransferOptions {
                targets: Vec::new(),
                cwd,
                remote: Some(remote.clone()).filter(|r| !r.is_empty()),
                jobs: jobs.map(|j| j as usize),
                revisions: Default::default(),
                run_cache: false,
                revisions_only: false,
                allow_missing: false,
                only: Default::default(),
            };
            let report = ops::fsck_remote(&repo, &opts, *repair, &bars)?;
            if *as_json {
                json(&report)?;
            } else {
                for d in &report.corrupt {
                    out!("corrupt {} on `{}`: {}", d.id, report.remote, d.reason);
                }
                out!(
                    "checked {} on `{}` ({} read): {}",
                    dvt::counted(report.checked, "object"),
                    report.remote,
                    HumanBytes(report.bytes),
                    if report.corrupt.is_empty() {
                        "all intact".to_string()
                    } else {
                        format!("{} corrupt", report.corrupt.len())
                    }
                );
                if *repair && !report.corrupt.is_empty() {
                    for id in &report.lost {
                        out!(
                            "lost {id}: deleted from `{}`, and the cache does not have it",
                            report.remote
                        );
                    }
                    for id in &report.withdrawn {
                        out!("withdrawn manifest {id}: it lists a lost object");
                    }
                    out!(
                        "repaired `{}`: replaced {} from the cache, {} lost, {} withdrawn",
                        report.remote,
                        dvt::counted(report.replaced.len(), "damaged object"),
                        report.lost.len(),
                        dvt::counted(report.withdrawn.len(), "manifest")
                    );
                    if !report.lost.is_empty() {
                        note!(
                            q,
                            "hint: `dvt push` from a repository whose cache has the lost objects uploads them again"
                        );
                    }
                } else if !report.corrupt.is_empty() {
                    note!(
                        q,
                        "hint: `dvt fsck -r {} --repair` replaces damaged copies from this cache where it has them",
                        report.remote
                    );
                }
            }
            let fixed = *repair && report.lost.is_empty();
            if !report.corrupt.is_empty() && !fixed {
                return Ok(ExitCode::from(1));
            }
        }
        Command::Fsck {
            repair,
            remote: None,
            jobs: _,
            json: as_json,
        } => {
            let repo = Repo::open(&cwd)?;
            let mut report = ops::fsck(&repo, &bars)?;
            if *repair {
                report.repair = Some(ops::repair(&repo, &report, &bars)?);
            }
            let bad = match &report.repair {
                Some(r) => !r.complete() || report.corrupt.iter().any(|d| !d.damaged),
                None => report.bad(),
            };
            if *as_json {
                json(&report)?;
            } else {
                for d in &report.corrupt {
                    let what = if d.damaged { "corrupt" } else { "unreadable" };
                    out!("{what} {}: {}", d.id, d.reason);
                }
                for s in &report.strays {
                    out!("stray file (not an object): {}", s.display());
                }
                for b in &report.bad_indexes {
                    out!(
                        "damaged pack index {}: {} (its objects cannot be read)",
                        b.path.display(),
                        b.reason
                    );
                }
                out!(
                    "checked {} ({}): {}",
                    dvt::counted(report.checked, "object"),
                    HumanBytes(report.bytes),
                    if report.bad() {
                        format!(
                            "{} corrupt, {} damaged pack index(es)",
                            report.corrupt.len(),
                            report.bad_indexes.len()
                        )
                    } else {
                        "all intact".to_string()
                    }
                );
                if let Some(r) = report.repair.as_ref().filter(|r| {
                    !r.removed.is_empty()
                        || !r.restored.is_empty()
                        || !r.set_aside.is_empty()
                        || !r.unreadable.is_empty()
                }) {
                    for p in &r.set_aside {
                        out!("set aside damaged pack index and its pack: {}", p.display());
                    }
                    for id in &r.missing {
                        out!("missing {id}: removed, and no workspace file holds it");
                    }
                    for u in &r.unreadable {
                        out!("cannot restore from {u}");
                    }
                    out!(
                        "repaired: removed {}, restored {} from the workspace, {} missing",
                        dvt::counted(r.removed.len(), "damaged object"),
                        r.restored.len(),
                        r.missing.len()
                    );
                    if !r.missing.is_empty() || !r.set_aside.is_empty() {
                        note!(
                            q,
                            "hint: `dvt status` lists what the workspace's pointers still miss; \
                             `dvt fetch` gets it from a remote (`--rev`, `-T`, `-A` for other versions)"
                        );
                    }
                } else if report.bad() && report.repair.is_none() {
                    note!(
                        q,
                        "hint: `dvt fsck --repair` takes damaged objects out of the cache and stores \
                         again those the workspace holds"
                    );
                }
            }
            if bad {
                return Ok(ExitCode::from(1));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Pointer files of past revisions that a push, fetch or pull could not read
/// (history keeps them as they are): one warning each, ten at most.
fn warn_unreadable(unreadable: &[String]) {
    for u in unreadable.iter().take(10) {
        eprintln!("warning: {u}; its data is left out (a commit holds the file as it is)");
    }
    if unreadable.len() > 10 {
        eprintln!(
            "warning: … and {} more pointer files of those revisions left out",
            unreadable.len() - 10
        );
    }
}

/// What `--run-cache` did with the run cache's entries, on one line.
fn runs_line(r: &ops::RunsReport, push: bool, remote: &str) -> String {
    let (done, there, skipped) = match push {
        true => (
            "pushed",
            format!("already on `{remote}`"),
            "left here: the cache lacks their data",
        ),
        false => (
            "fetched",
            "already here".to_string(),
            "not fetched: the remote lacks their data, or they are damaged",
        ),
    };
    let mut line = format!(
        "run cache: {} {done}, {} {there}",
        dvt::counted(r.copied, "run"),
        r.already_there
    );
    if r.skipped > 0 {
        line.push_str(&format!("; {} {skipped}", r.skipped));
    }
    line
}

/// What a push did: a line per remote (pointers may name their own), and
/// what `push = false` left out.
fn pushed_line(r: &ops::PushReport) -> String {
    let mut lines = vec![pushed_to(r)];
    lines.extend(r.also.iter().map(pushed_to));
    if r.not_pushed > 0 {
        lines.push(format!(
            "left out {}: {} `push = false`",
            dvt::counted(r.not_pushed, "path"),
            if r.not_pushed == 1 {
                "its pointer says"
            } else {
                "their pointers say"
            }
        ));
    }
    if !r.not_downloaded.is_empty() {
        lines.push(format!(
            "left out {} imported from a URL and not downloaded (`dvt pull` gets {} from there): {}",
            dvt::counted(r.not_downloaded.len(), "path"),
            if r.not_downloaded.len() == 1 { "it" } else { "them" },
            r.not_downloaded.join(", ")
        ));
    }
    lines.join("\n")
}

fn pushed_to(r: &ops::PushReport) -> String {
    if r.uploaded == 0 && r.missing_from_cache.is_empty() {
        format!(
            "Nothing to push: remote `{}` has all {}.",
            r.remote,
            dvt::counted(r.already_on_remote, "object")
        )
    } else {
        format!(
            "pushed {} ({}) to `{}`; {} already there",
            dvt::counted(r.uploaded, "object"),
            HumanBytes(r.uploaded_bytes),
            r.remote,
            r.already_on_remote
        )
    }
}

/// The first `shown` of `items`, joined with `, `, then `and N more` for the rest.
pub(crate) fn first_few(items: impl IntoIterator<Item = String>, shown: usize) -> String {
    let mut named = Vec::new();
    let mut more = 0;
    for item in items {
        match named.len() < shown {
            true => named.push(item),
            false => more += 1,
        }
    }
    if more > 0 {
        named.push(format!("and {more} more"));
    }
    named.join(", ")
}

/// Warns (unless quiet) that `paths` were not checked out: `who` lacks their data.
fn left_out_note(q: bool, paths: &[String], who: &str) {
    if paths.is_empty() {
        return;
    }
    note!(
        q,
        "warning: {who} the data of {}, left as it was: {}",
        dvt::counted(paths.len(), "path"),
        first_few(paths.iter().map(|p| quoted(p).into_owned()), 10)
    );
}

/// What a fetch did: a line per remote (pointers may name their own).
fn fetched_line(r: &ops::FetchReport) -> String {
    let named = !r.also.is_empty();
    let mut lines = vec![fetched_from(r, named)];
    lines.extend(r.also.iter().map(|a| fetched_from(a, named)));
    lines.join("\n")
}

/// One remote's line; `named`: say which remote even when nothing came.
fn fetched_from(r: &ops::FetchReport, named: bool) -> String {
    if !r.from_sources.is_empty() {
        let named: Vec<String> = r.from_sources.iter().map(|p| quoted(p).into_owned()).collect();
        if r.remote.is_empty() {
            return format!(
                "no remote is configured: fetched from where they were imported: {}; \
                 {} already in the cache",
                named.join(", "),
                dvt::counted(r.already_cached, "object")
            );
        }
        let line = format!(
            "fetched {} ({}) from `{}`; {} already in the cache; from where they were imported: {}",
            dvt::counted(r.downloaded, "object"),
            HumanBytes(r.downloaded_bytes),
            r.remote,
            r.already_cached,
            named.join(", ")
        );
        return line;
    }
    if r.downloaded == 0 {
        format!(
            "Nothing to fetch{}: the cache has all {}.",
            match named {
                true => format!(" from `{}`", r.remote),
                false => String::new(),
            },
            dvt::counted(r.already_cached, "object")
        )
    } else {
        format!(
            "fetched {} ({}) from `{}`; {} already in the cache",
            dvt::counted(r.downloaded, "object"),
            HumanBytes(r.downloaded_bytes),
            r.remote,
            r.already_cached
        )
    }
}

fn remote_command(cwd: &std::path::Path, command: &RemoteCommand, q: bool) -> Result<ExitCode, dvt::Error> {
    use dvt::remote::config;
    let level = match command {
        RemoteCommand::Add { level, .. }
        | RemoteCommand::List { level, .. }
        | RemoteCommand::Remove { level, .. }
        | RemoteCommand::Rename { level, .. }
        | RemoteCommand::Default { level, .. }
        | RemoteCommand::Modify { level, .. } => level,
    };
    let repo = level.open(cwd)?;
    let commit_hint = |written: ConfigLevel| {
        if written == ConfigLevel::Project {
            note!(q || autostaging(), "hint: commit it with `git add .dvt/config.toml`");
        }
    };
    match command {
        RemoteCommand::Add {
            name,
            url,
            default,
            level,
            force,
        } => {
            config::add(&repo, name, url, *default, level.written(), *force)?;
            say!(
                q,
                "added remote `{name}` -> {url}{}",
                if *default { " (default)" } else { "" }
            );
            match config::inside_repository(&repo, url).as_deref() {
                None => {}
                Some("") => note!(
                    q,
                    "warning: that directory is the repository's root, where git sees what `dvt push` writes: \
                     a remote belongs outside the repository"
                ),
                Some(rel) => note!(
                    q,
                    "warning: the directory `{rel}` is inside the repository, where git sees what `dvt push` writes: \
                     a remote belongs outside it (or write `/{rel}/` in `.gitignore`)"
                ),
            }
            commit_hint(level.written());
        }
        RemoteCommand::List { json: as_json, level } => {
            let list = match level.level() {
                Some(l) => config::list_config(&repo.config_at(l)?),
                None => config::list(&repo),
            };
            if *as_json {
                return json(&list);
            }
            for r in &list {
                out!("{}\t{}{}", r.name, r.url, if r.default { "\t(default)" } else { "" });
            }
        }
        RemoteCommand::Remove { name, level } => {
            config::remove(&repo, name, level.level())?;
            say!(q, "removed remote `{name}`; the data on it is untouched");
        }
        RemoteCommand::Rename { old, new, level } => {
            let project = config::rename(&repo, old, new, level.level())?;
            say!(q, "renamed remote `{old}` to `{new}`");
            if project {
                note!(
                    q || autostaging(),
                    "hint: commit the change with `git add .dvt/config.toml`"
                );
            }
        }
        RemoteCommand::Default { name, unset, level } => {
            let name = if *unset { None } else { name.as_deref() };
            config::set_default(&repo, name, level.written())?;
            match name {
                Some(n) => say!(q, "default remote: `{n}`"),
                None => say!(q, "no default remote"),
            }
        }
        RemoteCommand::Modify {
            name,
            key,
            value,
            unset,
            level,
        } => {
            let value = if *unset { None } else { value.as_deref() };
            let written = config::modify(&repo, name, key, value, level.written())?;
            let file = shown_file(&repo, written)?;
            let shown = match value {
                None => "unset".to_string(),
                Some(_) if config::SECRET_KEYS.contains(&key.as_str()) => "set (secret, not shown)".to_string(),
                Some(v) => format!("= {v}"),
            };
            say!(q, "remote `{name}`: {key} {shown} in {file}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `dvt config [LEVEL] NAME VALUE` (with `None`: `--unset NAME`), and what
/// it says: where it wrote, the `git add` hint, and that a cache moved
/// without its objects.
fn write_setting(
    cwd: &std::path::Path,
    level: &LevelArgs,
    name: &str,
    value: Option<&str>,
    q: bool,
) -> Result<ExitCode, dvt::Error> {
    use dvt::ops::config;
    let repo = level.open(cwd)?;
    let old_cache = repo.cache();
    let written = match value {
        Some(v) => config::set(&repo, name, v, level.written())?,
        None => config::unset(&repo, name, level.written())?,
    };
    let file = written.file.display();
    match value {
        None => say!(q, "{name} unset in {file}"),
        Some(_) if written.secret => say!(q, "{name} set (secret, not shown) in {file}"),
        Some(v) => say!(q, "{name} = {v} in {file}"),
    }
    if written.file == std::path::Path::new(".dvt/config.toml") {
        note!(q || autostaging(), "hint: commit it with `git add .dvt/config.toml`");
    }
    let new_cache = level.open(cwd)?.cache().root().to_path_buf();
    if new_cache != old_cache.root() && old_cache.holds_objects() {
        note!(
            q,
            "note: the cache is now `{}`; the objects in `{}` were not moved: move them there \
             yourself, or `dvt fetch` them again",
            new_cache.display(),
            old_cache.root().display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints what `add` (or `commit`, with `!unchanged`: only what changed) did to
/// pointers, and (if `hint`) the `git add` hint.
pub(super) fn print_added(q: bool, report: &ops::AddReport, unchanged: bool) -> Result<ExitCode, dvt::Error> {
    for a in report.added.iter().filter(|a| unchanged || !a.unchanged) {
        let what = match a.files {
            Some(n) => format!("{}, {}", files(n), HumanBytes(a.size)),
            None => format!("{}", HumanBytes(a.size)),
        };
        let state = if a.unchanged { "unchanged" } else { "added" };
        say!(q, "{state} {} ({what}) -> {}", quoted(&a.path), quoted(&a.pointer));
    }
    note_hashed(q, report);
    // A version the cache held: perhaps one a git command left behind.
    for a in report.added.iter().filter(|a| a.known_version) {
        note!(
            q,
            "note: the cache held this content of {} already: a version added before. If `git reset`, `stash` \
             or `revert` left it in the workspace, this recorded it over the version the pointer named; \
             `git checkout -- PATH.dvt`, then `dvt checkout PATH`, put that one back",
            quoted(&a.path)
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// What an add read and stored, on stderr.
fn note_hashed(q: bool, report: &ops::AddReport) {
    note!(
        q,
        "hashed {} ({}), wrote {} to the cache",
        files(report.hashed_files),
        HumanBytes(report.hashed_bytes),
        HumanBytes(report.written_bytes)
    );
}

/// What `dvt migrate` carried over and what it left, then what to do next.
fn print_migrated(
    q: bool,
    repo: &Repo,
    cwd: &std::path::Path,
    r: &ops::migrate::MigrateReport,
) -> Result<ExitCode, dvt::Error> {
    for (name, url, file) in &r.remotes {
        let default = if r.default_remote.as_deref() == Some(name) {
            " (default)"
        } else {
            ""
        };
        say!(q, "remote {name}{default}: {url} -> {file}");
    }
    for i in &r.ignores {
        say!(q, "{i}: copied from .dvcignore");
    }
    if let Some(add) = &r.add {
        for (dvc, data) in &r.added {
            if let Some(a) = add.added.iter().find(|a| &a.path == data) {
                say!(q, "{dvc}: {} -> {}", a.path, a.pointer);
            }
        }
        note_hashed(q, add);
    }
    for (file, old, new) in &r.renamed {
        let dir = file.trim_end_matches("dvc.yaml").trim_end_matches('/');
        say!(q, "{file}: stage `{old}` -> `{new}` (running in `{dir}`)");
    }
    if !r.stages.is_empty() {
        say!(
            q,
            "{}: {} -> dvt.toml; {} recorded in dvt.lock as the workspace holds them",
            r.pipelines.join(", "),
            match r.stages.len() {
                1 => "1 stage".to_string(),
                n => format!("{n} stages"),
            },
            r.committed.len()
        );
    }
    for s in &r.unrecorded {
        note!(
            q,
            "note: stage `{s}` is not recorded in dvt.lock: its outs are not all in the workspace (`dvt repro` runs it)"
        );
    }
    for (what, why) in &r.skipped {
        eprintln!("warning: {what} not carried over: {why}");
    }
    let mut to_add: Vec<String> = vec![".dvt".into()];
    if let Some(add) = &r.add {
        for a in &add.added {
            to_add.push(a.pointer.clone());
            if !to_add.contains(&a.gitignore) {
                to_add.push(a.gitignore.clone());
            }
        }
    }
    to_add.extend(r.ignores.iter().cloned());
    if !r.stages.is_empty() {
        to_add.push("dvt.toml".into());
    }
    if !r.committed.is_empty() {
        to_add.push("dvt.lock".into());
    }
    let to_add: Vec<&str> = to_add.iter().map(String::as_str).collect();
    note!(
        q || autostaging(),
        "hint: check with `dvt status`, then record it with git:\n    git add {}",
        shell_paths(repo.root(), cwd, &to_add)
    );
    if !r.remotes.is_empty() {
        note!(
            q,
            "hint: dvt cannot read what DVC stored on its remotes: `dvt push` stores the data there as dvt's"
        );
    }
    note!(
        q,
        "hint: once you are satisfied, stop using DVC: `dvc destroy`, or delete .dvc/, the .dvc files, \
         dvc.yaml and dvc.lock"
    );
    Ok(ExitCode::SUCCESS)
}

/// What `dvt destroy` is about to delete, on stderr.
fn print_destroy_plan(plan: &ops::DestroyPlan) {
    let mut what = vec![dvt::counted(plan.pointers.len(), "pointer file")];
    what.extend(plan.pipeline_files.iter().map(|f| format!("`{f}`")));
    if !plan.ignore_files.is_empty() {
        what.push(dvt::counted(plan.ignore_files.len(), "`.dvtignore` file"));
    }
    what.push(match plan.cache_deleted {
        true => "`.dvt` (configuration and cache)".to_string(),
        false => "`.dvt` (configuration)".to_string(),
    });
    note!(false, "this deletes {}", what.join(", "));
    note!(
        false,
        "the tracked data stays in the workspace as plain files (their `.gitignore` entries stay too){}",
        match plan.cache_deleted {
            true => String::new(),
            false => format!("; the cache `{}` is kept", plan.cache.display()),
        }
    );
    let listed = |paths: &[&str]| paths.iter().map(|p| quoted(p)).collect::<Vec<_>>().join(", ");
    let lacking = listed(&plan.lacking());
    if !lacking.is_empty() {
        note!(
            false,
            "not in the workspace as recorded, so only in the cache (and on remotes): {lacking}"
        );
    }
    if !plan.unreadable.is_empty() {
        note!(
            false,
            "pointer files dvt cannot read (what they track may be only in the cache): {}",
            listed(&plan.unreadable.iter().map(String::as_str).collect::<Vec<_>>())
        );
    }
    if !plan.at_risk.is_empty() && plan.cache_deleted {
        note!(
            false,
            "dvt deletes the cache only once they are back (`dvt checkout`), mended, or given up (`dvt remove`)"
        );
    }
}

/// `root` as seen from `cwd`, inside it: `.`, `..`, `../..`…
fn relative_to(root: &std::path::Path, cwd: &std::path::Path) -> PathBuf {
    let cwd = fs_err::canonicalize(cwd).unwrap_or_else(|_| cwd.to_path_buf());
    let root = fs_err::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    match cwd.strip_prefix(&root) {
        Ok(below) if below.as_os_str().is_empty() => PathBuf::from("."),
        Ok(below) => below.components().map(|_| "..").collect(),
        Err(_) => root,
    }
}

/// `dvt data status` as DVC prints it: a section per list, each with what to do
/// about it (not with `-q`), then a word on changes git sees besides.
fn print_data_status(report: &ops::DataStatus, quiet: bool) -> Result<ExitCode, dvt::Error> {
    if report.is_empty() {
        out!("No changes.");
    }
    let lines = |l: &[String]| l.to_vec();
    let sections: [(&str, &[&str], Vec<String>); 6] = [
        (
            "Not in cache",
            &["use \"dvt fetch <file>...\" to download files"],
            lines(&report.not_in_cache),
        ),
        (
            "Not in remote",
            &["use \"dvt push <file>...\" to upload files"],
            lines(&report.not_in_remote),
        ),
        (
            "DVT committed changes",
            &["git commit the corresponding dvt files to update the repo"],
            report.committed.lines().collect(),
        ),
        (
            "DVT uncommitted changes",
            &[
                "use \"dvt add <file>...\" or \"dvt commit <file>...\" to track changes",
                "use \"dvt checkout <file>...\" to discard changes",
            ],
            report.uncommitted.lines().collect(),
        ),
        (
            "Untracked files",
            &["use \"git add <file> ...\" or \"dvt add <file>...\" to commit to git or to dvt"],
            lines(&report.untracked),
        ),
        ("DVT unchanged files", &[], lines(&report.unchanged)),
    ];
    let mut first = true;
    for (title, hints, items) in sections {
        if items.is_empty() {
            continue;
        }
        if !first {
            out!("");
        }
        first = false;
        out!("{title}:");
        if !quiet {
            for h in hints {
                out!("  ({h})");
            }
        }
        for item in items {
            out!("        {}", quoted(&item));
        }
    }
    if report.git_dirty && !quiet {
        let other = if report.is_empty() { "" } else { "other " };
        out!("(there are {other}changes not tracked by dvt, use \"git status\" to see)");
    }
    Ok(ExitCode::SUCCESS)
}

/// Names the data HEAD's last move left in the workspace (see
/// [`ops::switch::LeftHere`]) and how to be rid of it or keep it.
fn warn_left_behind(repo: &Repo, cwd: &std::path::Path, left: &[ops::switch::LeftHere]) {
    /// Paths named one by one, at most; past that, a count.
    const SHOWN: usize = 10;
    let Some(first) = left.first() else {
        return;
    };
    let few = left.len() <= SHOWN;
    // Those `pick` keeps, as paths to paste (or, many, how many).
    let name = |pick: &dyn Fn(&ops::switch::LeftHere) -> bool| {
        let paths: Vec<&str> = left.iter().filter(|l| pick(l)).map(|l| l.path.as_str()).collect();
        match (paths.is_empty(), few) {
            (true, _) => None,
            (false, true) => Some(shell_paths(repo.root(), cwd, &paths)),
            (false, false) => Some(format!("{} of them", paths.len())),
        }
    };
    let mut hints = Vec::new();
    if let Some(p) = name(&|l| l.checkout_deletes) {
        hints.push(format!("`dvt checkout` deletes {p} (the cache keeps a copy)"));
    }
    match name(&|l| l.as_recorded && !l.checkout_deletes) {
        Some(p) if few => hints.push(format!("`rm -r {p}` loses nothing (the cache keeps a copy)")),
        Some(p) => hints.push(format!("deleting {p} loses nothing (the cache keeps a copy)")),
        None => {}
    }
    if let Some(p) = name(&|l| !l.as_recorded) {
        hints.push(format!(
            "{p} holds what {} did not record or the cache lacks",
            first.from
        ));
    }
    let mut listed = left
        .iter()
        .take(SHOWN)
        .map(|l| l.path.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    if !few {
        listed += &format!(" and {} more (`dvt status --json` lists them)", left.len() - SHOWN);
    }
    let again = match name(&|_| true) {
        Some(p) if few => p,
        _ => "PATH".into(),
    };
    note!(
        false,
        "warning: `git {}` left in the workspace data that {} tracked: nothing tracks it now and git does not \
         ignore it (`git add -A` would commit it): {listed}\nhint: {}; or track it again: `dvt add {again}`",
        first.by,
        first.from,
        hints.join("; "),
    );
}

/// Warns (or, for the pre-commit hook, says why the commit stops) that git's
/// index holds tracked data, and how to take it out.
pub(crate) fn warn_data_in_git_index(paths: &[String], stops_commit: bool) {
    if paths.is_empty() {
        return;
    }
    let list = paths.join(" ");
    let what = match stops_commit {
        true => "dvt: the commit stops here: git's index holds data that dvt tracks",
        false => "warning: git's index holds data that dvt tracks",
    };
    note!(
        false,
        "{what}: {}; committed, its bytes would stay in git's history\nhint: `git rm -r --cached {list}` takes it \
         out of the index and leaves the files; `dvt add PATH` (`dvt commit STAGE` for a stage's out) writes back \
         the `.gitignore` entry that keeps git away from it{}",
        paths.join(", "),
        match stops_commit {
            true => "; `git commit --no-verify` commits it all the same",
            false => "",
        }
    );
}
