//! Commands that read data at git revisions, and the git-facing ones: `get-url`,
//! `cat`, `diff`, `describe`, `tag`, `versions`, `gc`, `install-hooks`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;
use dvt::repo::Repo;
use indicatif::HumanBytes;

use dvt::ops;

use super::progress::Bars;
use super::{files, json};

#[derive(Debug, Subcommand)]
pub(super) enum HistoryCommand {
    /// Print where a tracked file's data is on a remote, with its id, size and
    /// encoding. Given a URL (or an OUT), download it instead, as `dvc get-url`
    /// does: `dvt get-url s3://bucket/data.csv [OUT]`
    GetUrl {
        #[command(flatten)]
        at: DataAt,
        /// With a URL: where to write it (default: the URL's last component, here).
        out: Option<PathBuf>,
        /// With a URL: replace what is at OUT, once the download is whole.
        #[arg(short, long)]
        force: bool,
        /// With a URL: downloads at once (default: 4 per core).
        #[arg(short, long, value_name = "N")]
        jobs: Option<usize>,
        /// With a URL: an option of the store, as a remote of its kind takes it (`endpointurl`,
        /// `region`, `profile`…; repeatable; DVC's `--fs-config`).
        #[arg(long = "fs-config", value_name = "KEY=VALUE")]
        fs_config: Vec<String>,
        /// Print the answer as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Write a file's content to stdout: tracked data verified, from the cache or
    /// the remote; a file git keeps (at a revision) or the work tree holds, as
    /// DVC's API reads them.
    Cat {
        #[command(flatten)]
        at: DataAt,
    },
    /// Show data added, modified, deleted and renamed between two revisions, or between a
    /// revision (default HEAD) and the workspace: its data as it is, changes not added too
    /// (as DVC's).
    Diff {
        /// The old revision (default: HEAD).
        a: Option<String>,
        /// The new revision (default: the workspace).
        b: Option<String>,
        /// The remote to read directory manifests from when the cache lacks them.
        #[arg(short, long, value_name = "NAME")]
        remote: Option<String>,
        /// Only these paths: tracked data, directories holding some, or paths
        /// inside tracked directories (as DVC's).
        #[arg(long, value_name = "PATH", num_args = 1..)]
        targets: Vec<PathBuf>,
        /// Show the ids too: the old and the new, shortened.
        #[arg(long)]
        show_hash: bool,
        /// Print a Markdown table (e.g. for a pull request comment), as DVC's.
        #[arg(long, conflicts_with = "json")]
        md: bool,
        /// Accepted for DVC scripts: dvt's diff has no list of data missing from
        /// the cache to hide (data not checked out is not a change).
        #[arg(long)]
        hide_missing: bool,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print what a run should record: commit, tags, dirtiness, and every data id.
    Describe {
        /// Print the record as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Tag HEAD (annotated git tag) as a data version, if every pointer is committed
    /// and every object is on the remote.
    Tag {
        /// The tag's name.
        name: String,
        /// The tag's message.
        #[arg(short, long)]
        message: Option<String>,
        /// The remote that must have the data (default: the default remote).
        #[arg(short, long, value_name = "NAME")]
        remote: Option<String>,
        /// Then push the tag to this git remote (default `origin`), as `git push
        /// origin tag NAME` (GTO's `--push`).
        #[arg(long, value_name = "GIT_REMOTE", num_args = 0..=1, default_missing_value = "origin")]
        push: Option<String>,
        /// Tag this commit (a branch, tag or id) instead of HEAD; its data must be
        /// on the remote all the same.
        #[arg(long, value_name = "REV")]
        rev: Option<String>,
    },
    /// List the tags (with `--all`, the commits) at which a path's data changed.
    Versions {
        /// A tracked path, or a file inside a tracked directory.
        path: PathBuf,
        /// List commits, not only tags.
        #[arg(long)]
        all: bool,
        /// The remote to read directory manifests from when the cache lacks them.
        #[arg(short, long, value_name = "NAME")]
        remote: Option<String>,
        /// Print the list as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Delete cache objects that no kept pointer references (the workspace's and
    /// HEAD's are always kept).
    #[command(group(clap::ArgGroup::new("on_remote").args(["remote", "cloud"]).multiple(true)))]
    Gc {
        /// Accepted for DVC users: the workspace is always kept.
        #[arg(short, long)]
        workspace: bool,
        /// Which revisions' data to keep, besides the workspace's and HEAD's.
        #[command(flatten)]
        keep: super::RevArgs,
        /// With `--rev`: keep the data of N commits from each, following first
        /// parents (as DVC's `-n`).
        #[arg(short = 'n', long = "num", value_name = "N", requires = "rev", value_parser = clap::value_parser!(u32).range(1..))]
        num: Option<u32>,
        /// Also keep the data of every commit made on or after this day, midnight
        /// UTC (YYYY-MM-DD; as DVC's `--date`).
        #[arg(long, value_name = "YYYY-MM-DD", value_parser = super::dates::parse_day)]
        date: Option<i64>,
        /// Also delete from a remote: `--remote` for the default one, `-r NAME` for another.
        #[arg(short = 'r', long = "remote", value_name = "NAME", num_args = 0..=1, default_missing_value = "")]
        remote: Option<String>,
        /// Also delete from the default remote, or the one `-r` names (DVC's `-c`).
        #[arg(short = 'c', long, conflicts_with = "not_in_remote")]
        cloud: bool,
        /// Delete from the cache only what a remote has (`--not-in-remote` for the
        /// default one, `--not-in-remote NAME` for another): keep what would be
        /// lost (as DVC's).
        #[arg(long, value_name = "NAME", num_args = 0..=1, default_missing_value = "", conflicts_with = "remote")]
        not_in_remote: Option<String>,
        /// Only print what would be deleted.
        #[arg(long, visible_alias = "dry")]
        dry_run: bool,
        /// Delete without asking.
        #[arg(short, long)]
        force: bool,
        /// Keep also the data of these dvt repositories, as this one's: their
        /// workspace, HEAD and the revisions asked for there (as DVC's; those
        /// sharing the cache are kept anyway).
        #[arg(short = 'p', long, value_name = "DIR", num_args = 1..)]
        projects: Vec<PathBuf>,
        /// Transfers at once with the remote (default: its `jobs`).
        #[arg(short, long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=256))]
        jobs: Option<u32>,
        /// Skip a revision whose pointers cannot be read, with a warning, instead
        /// of stopping (as DVC's): what it alone needs is deleted.
        #[arg(long)]
        skip_failed: bool,
        /// On the remote, keep unreferenced objects written there less than this
        /// long ago (`30m`, `24h`, `7d`; `0`: keep none, as DVC): another clone may
        /// have pushed them for a commit not here yet [default: `gc.grace`, else 24h].
        #[arg(long, value_name = "SPAN", value_parser = dvt::ops::gc::parse_span, requires = "on_remote")]
        grace: Option<std::time::Duration>,
        /// Print the plan as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Install git hooks: checkout after `git checkout` and `git merge`/`pull`, push before `git push`, a
    /// warning before `git commit` about data not added, and a merge driver that
    /// merges tracked directories file by file. Existing hooks are chained.
    #[command(visible_alias = "install")]
    InstallHooks {
        /// Remove dvt's hooks and restore the ones they chained.
        #[arg(long)]
        uninstall: bool,
        /// Have the pre-commit framework (pre-commit.com) run the hooks: add them to
        /// `.pre-commit-config.yaml` instead of writing them into the hooks directory
        /// (with `--uninstall`: take them out of it).
        #[arg(long)]
        use_pre_commit_tool: bool,
    },
    /// List what a dvt repository holds at a revision: files in git and data
    /// tracked by dvt (as `dvc list`), e.g. to browse a registry before `get`.
    #[command(visible_alias = "ls", group(clap::ArgGroup::new("walk").args(["recursive", "tree"]).multiple(true)))]
    List {
        /// The repository: a local path (`.` for this one), a file:// URL, or a git URL.
        repo: String,
        /// The directory or file to list (default: the root); may be inside tracked data.
        path: Option<String>,
        /// The revision to read (default: a local work tree as it is; otherwise its HEAD).
        #[arg(long)]
        rev: Option<String>,
        /// List every file below the path, through tracked directories too.
        #[arg(short = 'R', long)]
        recursive: bool,
        /// Draw everything below the path as a tree (as DVC's `-T`).
        #[arg(short = 'T', long, conflicts_with_all = ["json", "size", "show_hash"])]
        tree: bool,
        /// With `-R` or `-T`: no deeper than N levels below the path.
        #[arg(short = 'L', long = "level", value_name = "N", requires = "walk", value_parser = clap::value_parser!(u32).range(1..))]
        level: Option<u32>,
        /// Show only data tracked by dvt (and the directories leading to it).
        #[arg(long, visible_alias = "dvc-only")]
        dvt_only: bool,
        /// Show sizes.
        #[arg(long)]
        size: bool,
        /// Show the id dvt stores each tracked file (or directory's manifest) under.
        #[arg(long)]
        show_hash: bool,
        #[command(flatten)]
        settings: ExternalArgs,
        /// Print the listing as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show how many bytes a path of a dvt repository holds at a revision, and
    /// each entry just below it: git's files and dvt's data together (as `dvc du`)
    Du {
        /// The repository: a local path (`.` for this one), a file:// URL, or a git URL.
        repo: String,
        /// The directory or file to measure (default: the root); may be inside tracked data.
        path: Option<String>,
        /// The revision to read (default: a local work tree as it is; otherwise its HEAD).
        #[arg(long)]
        rev: Option<String>,
        /// Print only the total.
        #[arg(short, long)]
        summarize: bool,
        /// Count only data tracked by dvt.
        #[arg(long, visible_alias = "dvc-only")]
        dvt_only: bool,
        /// Print sizes in bytes, not KiB, MiB, GiB.
        #[arg(short, long)]
        bytes: bool,
        #[command(flatten)]
        settings: ExternalArgs,
        /// Print as JSON (sizes in bytes).
        #[arg(long)]
        json: bool,
    },
    /// List what a URL holds, as `dvc ls-url`: the objects and directories just
    /// below it (`-R`: every object), e.g. before `dvt import-url`
    #[command(
        after_help = "URL: s3://bucket/key, gs://bucket/key, az://container/key, http(s)://host/path, \
        remote://NAME/path (below a configured remote, with its options), or a local path.",
        alias = "list-url"
    )]
    LsUrl {
        /// What to list.
        url: String,
        /// Every object below the URL, not only what is just below it.
        #[arg(short = 'R', long)]
        recursive: bool,
        /// Show sizes (a directory's: everything below it).
        #[arg(long)]
        size: bool,
        /// An option of the store, as a remote of its kind takes it (`endpointurl`,
        /// `region`, `profile`…; repeatable; DVC's `--fs-config`).
        #[arg(long = "fs-config", value_name = "KEY=VALUE")]
        fs_config: Vec<String>,
        /// Print the listing as JSON (`path`, `isdir`, `size`).
        #[arg(long)]
        json: bool,
        /// Draw everything below the URL as a tree (as DVC's `-T`).
        #[arg(short = 'T', long, conflicts_with_all = ["json", "size"])]
        tree: bool,
        /// With `-R` or `-T`: no deeper than N levels below the URL; what lies
        /// deeper shows as its directory at that level (as DVC's `-L`).
        #[arg(short = 'L', long = "level", value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
        level: Option<u32>,
    },
    /// Download data tracked in another dvt repository, or files git keeps there
    /// (with the data below them), without tracking it here.
    Get {
        #[command(flatten)]
        source: SourceArgs,
        /// Replace what is at the destination, once the new data is complete.
        #[arg(short, long)]
        force: bool,
        /// Download nothing: print where the data is on that repository's remote
        /// (as DVC's `--show-url`; a packed object's byte range on stderr).
        #[arg(long, conflicts_with_all = ["force", "out"])]
        show_url: bool,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Models and datasets by name: `[artifacts.NAME]` of `dvt.toml`, versioned
    /// by git tags (`NAME@v1.2.0`, stages `NAME#prod#N`), as `dvc artifacts`
    Artifacts {
        #[command(subcommand)]
        command: ArtifactsCommand,
    },
    /// Download data from another dvt repository and track it here, recording
    /// where it came from (for `dvt update`).
    Import {
        #[command(flatten)]
        source: SourceArgs,
        /// Write the pointer only; `dvt pull` downloads the data later (as DVC's;
        /// `--no-exec`, DVC's other flag for it, does the same here).
        #[arg(long, visible_alias = "no-exec")]
        no_download: bool,
        /// Replace an existing import (and its data) at the destination.
        #[arg(short, long)]
        force: bool,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Download a file or directory from a URL and track it here, recording the URL
    /// (for `dvt update`), as `dvc import-url`
    #[command(
        after_help = "URL: s3://bucket/key, gs://bucket/key, az://container/key, http(s)://host/path, \
        remote://NAME/path (below a configured remote, with its options), or a local path.\n\
        A URL that names no object is imported as a directory: every object below it."
    )]
    ImportUrl {
        /// What to import.
        url: String,
        /// Where to put it (default: the URL's last component, here).
        out: Option<PathBuf>,
        /// Replace an existing import (and its data) at the destination.
        #[arg(short, long)]
        force: bool,
        /// Downloads at once (default: 4 per core).
        #[arg(short, long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=256))]
        jobs: Option<u32>,
        /// Send the data straight to a remote, keeping no copy in the cache or the
        /// workspace (`dvt pull` gets it later).
        #[arg(long)]
        to_remote: bool,
        /// The remote for `--to-remote` (default: the default remote).
        #[arg(short, long, value_name = "NAME", requires = "to_remote")]
        remote: Option<String>,
        /// Write the pointer only, keeping no copy: the data is read to hash it,
        /// and `dvt pull` downloads it from the URL later (as DVC's; DVC's
        /// `--no-exec` does the same here).
        #[arg(long, visible_alias = "no-exec", conflicts_with = "to_remote")]
        no_download: bool,
        /// Record the store's id of each object's version (S3, GCS or Azure with
        /// versioning on; DVC's flag): `fetch`, `pull` and readers then read
        /// exactly those versions from the store when no cache or remote holds
        /// the data, even after the objects were overwritten there.
        #[arg(long)]
        version_aware: bool,
        /// An option of the store, as a remote of its kind takes it (`endpointurl`,
        /// `region`, `profile`…; repeatable; DVC's `--fs-config`; recorded in the pointer for `update`, so never a secret).
        #[arg(long = "fs-config", value_name = "KEY=VALUE")]
        fs_config: Vec<String>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Move imports to the newest commit of their revision (or to `--rev`); download
    /// data imported from a URL again if it changed there.
    Update {
        /// Import pointers or their data paths (default: every import).
        targets: Vec<PathBuf>,
        /// A directory target stands for every import below it (as DVC's `-R`).
        #[arg(short = 'R', long)]
        recursive: bool,
        /// Follow this revision from now on.
        #[arg(long)]
        rev: Option<String>,
        /// Replace local changes to the imported data.
        #[arg(short, long)]
        force: bool,
        /// Downloads at once (default: a source repository's remote's `jobs`, or 4 per core).
        #[arg(short, long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=256))]
        jobs: Option<u32>,
        /// For imports from URLs: send new data straight to a remote, keeping no
        /// copy in the cache or the workspace.
        #[arg(long)]
        to_remote: bool,
        /// The remote for `--to-remote` (default: the default remote).
        #[arg(short, long, value_name = "NAME", requires = "to_remote")]
        remote: Option<String>,
        /// Update the pointer only, not the data (`dvt pull` gets it; a URL's new
        /// content is read to hash it, and not kept).
        #[arg(long, conflicts_with = "to_remote")]
        no_download: bool,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run a git hook (called by the scripts `install-hooks` writes).
    #[command(hide = true)]
    GitHook {
        /// The hook.
        name: String,
        /// git's arguments.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

/// A tracked path at a revision, as `get-url` and `cat` take it.
#[derive(Debug, clap::Args)]
pub(super) struct DataAt {
    /// A tracked path, or a file inside a tracked directory.
    path: PathBuf,
    /// Read the pointers at this git revision (tag, branch, commit, `HEAD~2`).
    #[arg(long)]
    rev: Option<String>,
    /// The remote to ask when the cache lacks an object (default: the default remote).
    #[arg(short, long, value_name = "NAME")]
    remote: Option<String>,
    /// The dvt repository to read (a directory in it); PATH is then relative to its root.
    #[arg(long, value_name = "DIR")]
    repo: Option<PathBuf>,
}

/// Data of another repository, as `get` and `import` take it.
#[derive(Debug, Subcommand)]
pub(super) enum ArtifactsCommand {
    /// Download an artifact of a repository at a version or stage (default: its
    /// newest version), as `dvt get` downloads a path.
    Get {
        /// The repository: a local path, a file:// URL, or a git URL.
        repo: String,
        /// The artifact's name.
        name: String,
        /// The version (`1.2.0` or `v1.2.0`: the tag `NAME@v1.2.0`).
        #[arg(long, value_name = "VERSION", conflicts_with = "stage")]
        rev: Option<String>,
        /// The stage: what its latest `NAME#STAGE#N` tag names.
        #[arg(long)]
        stage: Option<String>,
        /// Where to write (default: the path's last component, here).
        #[arg(short, long)]
        out: Option<PathBuf>,
        /// Replace what is at the destination, once the new data is complete.
        #[arg(short, long)]
        force: bool,
        /// Downloads at once from its remote (default: that remote's `jobs`, or 4 per core).
        #[arg(short, long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=256))]
        jobs: Option<u32>,
        #[command(flatten)]
        settings: ExternalArgs,
        /// Download nothing: print where its data is on the repository's remote
        /// (as DVC's `--show-url`, and `dvt get --show-url`).
        #[arg(long, conflicts_with_all = ["force", "out"])]
        show_url: bool,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Move an artifact to a stage: tag its version's commit `NAME#STAGE#N`,
    /// N one more than the stage's last (as GTO's `assign`), once its data is
    /// on the remote.
    Assign {
        /// The artifact's name.
        name: String,
        /// The stage (`prod`, `staging`, ...).
        stage: String,
        /// The version to put there (`1.2.0` or `v1.2.0`; default: the newest).
        #[arg(long)]
        version: Option<String>,
        /// The remote that must have the data (default: the default remote).
        #[arg(short, long, value_name = "NAME")]
        remote: Option<String>,
        /// Then push the tag to this git remote (default `origin`).
        #[arg(long, value_name = "GIT_REMOTE", num_args = 0..=1, default_missing_value = "origin")]
        push: Option<String>,
    },
    /// Say where an artifact is at a version or stage (default: its newest
    /// version): its path and the commit, to read it with `--rev` (as
    /// `dvc.api.artifacts_show`). Nothing is downloaded.
    Show {
        /// The artifact's name.
        name: String,
        /// The repository (default: this one): a local path, a file:// URL, or a git URL.
        #[arg(default_value = ".")]
        repo: String,
        /// The version (`1.2.0` or `v1.2.0`: the tag `NAME@v1.2.0`).
        #[arg(long, value_name = "VERSION", conflicts_with = "stage")]
        rev: Option<String>,
        /// The stage: what its latest `NAME#STAGE#N` tag names.
        #[arg(long)]
        stage: Option<String>,
        /// Print it as JSON (`name`, `version`, `stage`, `commit`, `path`, `type`, `desc`, `labels`).
        #[arg(long)]
        json: bool,
    },
    /// List the artifacts of a repository, with their versions and stages.
    List {
        /// The repository (default: this one).
        #[arg(default_value = ".")]
        repo: String,
        /// The revision whose `dvt.toml` to read (default: its HEAD).
        #[arg(long)]
        rev: Option<String>,
        /// Print the list as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// The repository an artifacts command names: `.` is the one `cwd` is in.
fn this_or(cwd: &Path, repo: &str) -> Result<String, dvt::Error> {
    Ok(match repo {
        "." => Repo::find_root(cwd)?.display().to_string(),
        other => other.to_string(),
    })
}

/// What `dvt tag` (or `artifacts assign`) made, and the hint to share it.
fn print_tagged(r: &ops::TagReport, quiet: bool) -> Result<ExitCode, dvt::Error> {
    let holders = match r.other_remotes.is_empty() {
        true => format!("`{}` holds", r.remote),
        false => format!("`{}`, `{}` hold", r.remote, r.other_remotes.join("`, `")),
    };
    say!(
        quiet,
        "tagged {} as `{}`: {holders} its data ({})",
        &r.commit[..7],
        r.name,
        dvt::counted(r.objects, "object")
    );
    match &r.pushed_to {
        Some(to) => say!(quiet, "pushed tag `{}` to `{to}`", r.name),
        None => note!(
            quiet,
            "hint: share it with `git push origin {}` (`--push` tags and pushes at once)",
            // `#` would start a comment in the shell.
            match r.name.contains('#') {
                true => format!("'{}'", r.name),
                false => r.name.clone(),
            }
        ),
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, clap::Args)]
pub(super) struct SourceArgs {
    /// The repository: a local path, a file:// URL, or a git URL (https://, ssh://).
    repo: String,
    /// The path in it: tracked, inside a tracked directory, or kept by git (a file,
    /// or a directory with any data tracked below it; `.`: all of it, with `-o`).
    path: String,
    /// The revision to read, and for `import` to follow (default: its HEAD).
    #[arg(long)]
    rev: Option<String>,
    /// Where to write (default: the path's last component, here).
    #[arg(short, long)]
    out: Option<PathBuf>,
    /// Downloads at once from its remote (default: that remote's `jobs`, or 4 per core).
    #[arg(short, long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=256))]
    jobs: Option<u32>,
    #[command(flatten)]
    settings: ExternalArgs,
}

impl SourceArgs {
    fn options(&self, cwd: &Path) -> Result<ops::GetOptions, dvt::Error> {
        Ok(ops::GetOptions {
            repo: self.repo.clone(),
            path: self.path.clone(),
            rev: self.rev.clone(),
            out: self.out.clone(),
            cwd: cwd.to_path_buf(),
            force: false,
            settings: self.settings.settings(cwd)?,
            jobs: self.jobs.map(|j| j as usize),
        })
    }
}

/// Which of the other repository's remotes to read, and how (DVC's flags of
/// the same names).
#[derive(Debug, clap::Args)]
pub(super) struct ExternalArgs {
    /// Read its data from its remote NAME, not from its default remote.
    #[arg(long, value_name = "NAME")]
    remote: Option<String>,
    /// Set an option of that remote for this command, as `dvt remote modify` would (repeatable).
    #[arg(long = "remote-config", value_name = "KEY=VALUE")]
    remote_config: Vec<String>,
    /// A config file (as `.dvt/config.toml`) merged over its committed one: remotes of yours, with credentials.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

impl ExternalArgs {
    fn settings(&self, cwd: &Path) -> Result<ops::import::ExternalConfig, dvt::Error> {
        Ok(ops::import::ExternalConfig {
            config: self.config.as_ref().map(|c| cwd.join(c)),
            remote: self.remote.clone(),
            remote_config: ops::import::ExternalConfig::parse_remote_config(&self.remote_config)?,
        })
    }
}

/// The repository and the repo-relative path for a PATH argument.
/// The repository `cwd` is in, for commands that read URLs (`remote://NAME`
/// and the remotes' options come from it); outside one, a repository with no
/// config, in which there is no `remote://`.
fn repo_or_bare(cwd: &Path) -> Result<Repo, dvt::Error> {
    match Repo::open(cwd) {
        Err(dvt::Error::Repo(dvt::error::RepoError::NotInitialized { .. })) => Repo::at_commit(
            cwd.to_path_buf(),
            None,
            std::path::Path::new(".dvt/config.toml"),
            Vec::new(),
        ),
        r => r,
    }
}

/// Where `get` or `import` read: `at 1a2b3c4`, or `as its work tree is`.
fn read_at(commit: Option<&str>) -> String {
    match commit {
        Some(c) => format!("at {}", &c[..7.min(c.len())]),
        None => "as its work tree is".into(),
    }
}

/// Says which entries of a directory copied from git were not copied.
fn warn_left_out(left_out: &[String]) {
    if !left_out.is_empty() {
        note!(
            false,
            "warning: left out {} (symbolic links and submodules have no content to copy): {}",
            dvt::counted(left_out.len(), "path"),
            left_out.join(", ")
        );
    }
}

fn locate(cwd: &Path, path: &Path, repo_dir: Option<&PathBuf>) -> Result<(Repo, String), dvt::Error> {
    match repo_dir {
        Some(d) => {
            let repo = Repo::open(&cwd.join(d))?;
            let rel = path
                .to_str()
                .ok_or_else(|| dvt::error::PathError::NotUtf8 { path: path.into() })?;
            Ok((repo, rel.trim_start_matches("./").to_string()))
        }
        None => {
            let repo = Repo::open(cwd)?;
            let (_, rel) = repo.resolve(cwd, path)?;
            Ok((repo, rel))
        }
    }
}

pub(super) fn run(cwd: &Path, command: &HistoryCommand, quiet: bool, bars: &Bars) -> Result<ExitCode, dvt::Error> {
    match command {
        HistoryCommand::GetUrl {
            at,
            out,
            force,
            jobs,
            fs_config,
            json: as_json,
        } if out.is_some() || at.path.to_str().is_some_and(|p| p.contains("://")) => {
            if at.rev.is_some() || at.remote.is_some() || at.repo.is_some() {
                clap::Error::raw(
                    clap::error::ErrorKind::ArgumentConflict,
                    "`dvt get-url URL [OUT]` downloads what is at a URL: --rev, --remote and --repo are for a tracked path\n",
                )
                .exit();
            }
            let url = at
                .path
                .to_str()
                .ok_or_else(|| dvt::error::PathError::NotUtf8 { path: at.path.clone() })?;
            let r = ops::download_url(
                &repo_or_bare(cwd)?,
                &ops::DownloadUrlOptions {
                    url: url.to_string(),
                    out: out.clone(),
                    cwd: cwd.to_path_buf(),
                    force: *force,
                    jobs: *jobs,
                    fs_config: ops::import::parse_options(fs_config, "--fs-config")?,
                },
                bars,
            )?;
            if *as_json {
                return json(&r);
            }
            say!(
                quiet,
                "got {} ({}{}) from {}",
                r.out.display(),
                HumanBytes(r.bytes),
                match r.kind {
                    dvt::pointer::Kind::Dir => format!(", {}", files(r.files)),
                    dvt::pointer::Kind::File => String::new(),
                },
                r.url
            );
        }
        HistoryCommand::GetUrl { at, json: as_json, .. } => {
            let (repo, rel) = locate(cwd, &at.path, at.repo.as_ref())?;
            let info = dvt::api::get_url_in(&repo, &rel, at.rev.as_deref(), at.remote.as_deref())?;
            if *as_json {
                return json(&info);
            }
            out!("{}", info.url);
            let encoding = match info.encoding {
                Some(dvt::cache::Encoding::Zstd) => "zstd-compressed",
                Some(dvt::cache::Encoding::Raw) => "stored uncompressed",
                None => "encoding unknown",
            };
            let at = match &info.data.commit {
                Some(c) => format!("at {} ({})", info.data.rev.as_deref().unwrap_or(""), &c[..7]),
                None => "as the workspace's pointer records it".into(),
            };
            note!(
                false,
                "{} {} {}: id {}, {} ({} bytes), {}",
                if info.data.kind == dvt::pointer::Kind::Dir {
                    "directory"
                } else {
                    "file"
                },
                info.data.path,
                at,
                info.data.id,
                HumanBytes(info.data.size),
                info.data.size,
                encoding,
            );
            if let Some(r) = &info.range {
                note!(
                    false,
                    "packed: its stored form is bytes {}..{} of that pack file ({} bytes from offset {})",
                    r.start,
                    r.end,
                    r.end - r.start,
                    r.start
                );
            }
            if let Some(from) = &info.imported_from {
                let version = from
                    .version
                    .as_ref()
                    .map(|v| format!(" (version {v})"))
                    .unwrap_or_default();
                note!(false, "imported from {}{version}", from.url);
            }
            match (info.on_remote, &info.imported_from) {
                (true, _) => {}
                (false, None) => note!(
                    false,
                    "warning: remote `{}` does not have this object yet (`dvt push`)",
                    info.remote
                ),
                (false, Some(_)) => note!(
                    false,
                    "warning: remote `{}` does not have this object yet (`dvt push`); `dvt pull` reads it from where it was imported",
                    info.remote
                ),
            }
        }
        HistoryCommand::Cat { at } => {
            let (repo, rel) = locate(cwd, &at.path, at.repo.as_ref())?;
            let (_, mut reader) = dvt::api::open_file_in(&repo, &rel, at.rev.as_deref(), at.remote.as_deref())?;
            let mut stdout = std::io::stdout().lock();
            match std::io::copy(&mut reader, &mut stdout) {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(ExitCode::SUCCESS),
                Err(e) => return Err(e.into()),
            }
            stdout.flush()?;
        }
        HistoryCommand::Diff {
            a,
            b,
            remote,
            targets,
            show_hash,
            md,
            hide_missing: _,
            json: as_json,
        } => {
            let repo = Repo::open(cwd)?;
            let targets = targets
                .iter()
                .map(|t| repo.resolve(cwd, t).map(|(_, rel)| rel))
                .collect::<Result<Vec<_>, _>>()?;
            let report = ops::diff(
                &repo,
                &ops::DiffOptions {
                    a: a.clone(),
                    b: b.clone(),
                    remote: remote.clone(),
                    targets: targets.clone(),
                    pointers_only: false,
                },
            )?;
            if *as_json {
                return json(&report);
            }
            let lists = [
                ("added", &report.added),
                ("modified", &report.modified),
                ("deleted", &report.deleted),
            ];
            let hash = |c: &ops::diff::Change| {
                let short = |id: Option<dvt::object::ObjectId>| id.map(|i| i.to_string()[..8].to_string());
                match (short(c.old), short(c.new)) {
                    (Some(o), Some(n)) => format!("{o}..{n}"),
                    (o, n) => o.or(n).unwrap_or_default(),
                }
            };
            if *md {
                // As DVC prints it: one row per change, in this order.
                if *show_hash {
                    out!("| Status   | Hash               | Path   |\n|----------|--------------------|--------|");
                } else {
                    out!("| Status   | Path   |\n|----------|--------|");
                }
                let rows = lists
                    .iter()
                    .flat_map(|(status, list)| list.iter().map(move |c| (*status, hash(c), c.path.clone())))
                    .chain(report.renamed.iter().map(|r| {
                        let path = format!("{} -> {}", r.old_path, r.path);
                        ("renamed", r.id.to_string()[..8].to_string(), path)
                    }));
                for (status, hash, path) in rows {
                    let path = path.replace('|', "\\|");
                    if *show_hash {
                        out!("| {status:<8} | {hash:<18} | {path} |");
                    } else {
                        out!("| {status:<8} | {path} |");
                    }
                }
                return Ok(ExitCode::SUCCESS);
            }
            if report.is_empty() {
                out!("No data changes between {} and {}.", report.from, report.to);
                return Ok(ExitCode::SUCCESS);
            }
            for (status, list) in lists {
                if list.is_empty() {
                    continue;
                }
                let mut title = status.to_string();
                title[..1].make_ascii_uppercase();
                out!("{title}:");
                for c in list {
                    if *show_hash {
                        out!("    {:<18} {}", hash(c), super::quoted(&c.path));
                    } else {
                        out!("    {}", super::quoted(&c.path));
                    }
                }
            }
            if !report.renamed.is_empty() {
                out!("Renamed:");
            }
            for r in &report.renamed {
                let moved = format!("{} -> {}", super::quoted(&r.old_path), super::quoted(&r.path));
                if *show_hash {
                    out!("    {:<18} {moved}", &r.id.to_string()[..8]);
                } else {
                    out!("    {moved}");
                }
            }
            let files = |l: &[ops::diff::Change]| l.iter().filter(|c| !c.path.ends_with('/')).count();
            let renamed = match report.renamed.iter().filter(|r| !r.path.ends_with('/')).count() {
                0 => String::new(),
                n => format!(", {n} renamed"),
            };
            out!(
                "files summary: {} added, {} deleted{renamed}, {} modified ({} -> {})",
                files(&report.added),
                files(&report.deleted),
                files(&report.modified),
                report.from,
                report.to
            );
            for d in &report.unlisted {
                note!(
                    quiet,
                    "note: files inside {d} not listed: its manifest is in neither the cache nor the remote"
                );
            }
        }
        HistoryCommand::Describe { json: as_json } => {
            let repo = Repo::open(cwd)?;
            let d = ops::describe(&repo)?;
            if *as_json {
                return json(&d);
            }
            out!("commit: {}", d.commit.as_deref().unwrap_or("(none yet)"));
            if let Some(b) = &d.branch {
                out!("branch: {b}");
            }
            out!(
                "tags: {}",
                if d.tags.is_empty() {
                    "(none)".to_string()
                } else {
                    d.tags.join(", ")
                }
            );
            out!("dirty: {}", d.dirty);
            for p in &d.uncommitted_pointers {
                out!("  pointer not committed: {p}");
            }
            for p in &d.changed_data {
                out!("  data differs from its pointer: {p}");
            }
            if d.git_dirty {
                out!("  files tracked by git have uncommitted changes");
            }
            for t in &d.data {
                out!("{} {} {}", t.id, t.path, HumanBytes(t.size));
            }
        }
        HistoryCommand::Tag {
            name,
            message,
            remote,
            push,
            rev,
        } => {
            let repo = Repo::open(cwd)?;
            let r = ops::tag(
                &repo,
                &ops::TagOptions {
                    name: name.clone(),
                    message: message.clone(),
                    remote: remote.clone(),
                    push: push.clone(),
                    cwd: cwd.to_path_buf(),
                    rev: rev.clone(),
                },
            )?;
            return print_tagged(&r, quiet);
        }
        HistoryCommand::Versions {
            path,
            all,
            remote,
            json: as_json,
        } => {
            let repo = Repo::open(cwd)?;
            let (_, rel) = repo.resolve(cwd, path)?;
            let report = ops::versions(
                &repo,
                &ops::VersionsOptions {
                    path: rel,
                    all: *all,
                    remote: remote.clone(),
                },
            )?;
            if *as_json {
                return json(&report);
            }
            if report.versions.is_empty() {
                note!(
                    quiet,
                    "no tag names a version of {} (try `--all` for commits)",
                    report.path
                );
            }
            for v in &report.versions {
                let tags = if v.tags.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", v.tags.join(", "))
                };
                let when = super::dates::utc(v.time);
                match (v.id, v.size) {
                    (Some(id), Some(size)) => out!("{} {when}{tags} {id} {}", v.short, HumanBytes(size)),
                    _ => out!("{} {when}{tags} not tracked", v.short),
                }
            }
            if report.shallow {
                note!(
                    quiet,
                    "this clone is shallow: versions older than its history are not listed (`git fetch --unshallow` fetches it)"
                );
            }
        }
        HistoryCommand::Gc {
            workspace: _,
            keep,
            num,
            date,
            remote,
            cloud,
            not_in_remote,
            dry_run,
            force,
            projects,
            jobs,
            skip_failed,
            grace,
            json: as_json,
        } => {
            let repo = Repo::open(cwd)?;
            let named = |r: &Option<String>| r.as_ref().map(|r| Some(r.clone()).filter(|r| !r.is_empty()));
            // `-c` alone: the default remote.
            let remote = match (cloud, remote) {
                (true, None) => &Some(String::new()),
                (_, r) => r,
            };
            let opts = ops::GcOptions {
                revisions: dvt::snapshot::Revisions {
                    num: num.map(|n| n as usize),
                    since: *date,
                    ..keep.revisions()
                },
                remote: named(remote),
                not_in_remote: named(not_in_remote),
                dry_run: *dry_run,
                projects: projects.iter().map(|p| cwd.join(p)).collect(),
                jobs: jobs.map(|j| j as usize),
                skip_failed: *skip_failed,
                remote_grace: *grace,
            };
            let mut confirm = |plan: &ops::GcPlan| -> Result<bool, dvt::Error> {
                if !*as_json {
                    print_skipped(plan);
                    print_plan(plan);
                }
                if *dry_run {
                    return Ok(false);
                }
                if *force {
                    return Ok(true);
                }
                ask("Delete these objects? [y/N] ")
            };
            let (plan, done) = ops::gc(&repo, &opts, &mut confirm, bars)?;
            if *as_json {
                return json(&serde_json::json!({ "plan": plan, "deleted": done }));
            }
            let total = plan.cache.count() + plan.remote_objects.count();
            if !plan.deletes() {
                print_skipped(&plan);
                if !quiet {
                    print_recent(&plan);
                }
                for p in &plan.forgotten {
                    note!(quiet, "`{}` no longer uses this cache: taken off its list", p.display());
                }
                match &plan.not_in_remote {
                    Some(u) if u.kept > 0 => say!(
                        quiet,
                        "Nothing to delete: what is kept references {}, and remote `{}` lacks the other {}.",
                        dvt::counted(plan.kept_objects - u.kept, "object"),
                        u.remote,
                        u.kept
                    ),
                    _ if plan.remote_recent.is_some() => say!(
                        quiet,
                        "Nothing to delete yet: what is kept references {}, and the others are recent.",
                        dvt::counted(plan.kept_objects, "object")
                    ),
                    _ => say!(
                        quiet,
                        "Nothing to delete: what is kept references {}, and there is nothing else.",
                        dvt::counted(plan.kept_objects, "object")
                    ),
                }
            } else if done {
                let entries = match plan.run_cache_entries.len() + plan.remote_run_cache_entries.len() {
                    0 => String::new(),
                    n => format!(" and {}", dvt::counted(n, "run-cache entry")),
                };
                say!(quiet, "deleted {}{entries}", dvt::counted(total, "object"));
            } else if !*dry_run {
                say!(quiet, "nothing deleted");
            }
        }
        HistoryCommand::InstallHooks {
            uninstall,
            use_pre_commit_tool: true,
        } => {
            let repo = Repo::open(cwd)?;
            let r = ops::hooks::use_pre_commit_tool(&repo, *uninstall)?;
            let config = r.config.display();
            if !r.removed.hooks.is_empty() {
                say!(
                    quiet,
                    "removed dvt's own {} hooks from {}",
                    r.removed.hooks.join(", "),
                    r.removed.dir.display()
                );
            }
            match (*uninstall, r.changed) {
                (false, true) => say!(quiet, "added dvt's hooks to {config}"),
                (false, false) => say!(quiet, "dvt's hooks are in {config} already"),
                (true, true) => say!(quiet, "took dvt's hooks out of {config}"),
                (true, false) => say!(quiet, "no dvt hooks in {config}"),
            }
            say_merge_driver(quiet, &r.merge_driver)?;
            hint_hooks_fetch(&repo, *uninstall, quiet);
            if !*uninstall {
                note!(
                    quiet,
                    "hint: commit {} for everyone, and have pre-commit install the hooks in each clone: `{}`",
                    ops::hooks::PRE_COMMIT_CONFIG,
                    ops::hooks::PRE_COMMIT_INSTALL
                );
            }
        }
        HistoryCommand::InstallHooks { uninstall, .. } => {
            let repo = Repo::open(cwd)?;
            let r = ops::install_hooks(&repo, *uninstall)?;
            let verb = if *uninstall { "removed" } else { "installed" };
            if r.hooks.is_empty() {
                say!(quiet, "no dvt hooks to remove in {}", r.dir.display());
            } else {
                say!(quiet, "{verb} {} in {}", r.hooks.join(", "), r.dir.display());
            }
            say_merge_driver(quiet, &r.merge_driver)?;
            hint_hooks_fetch(&repo, *uninstall, quiet);
            for h in &r.chained {
                if *uninstall {
                    say!(quiet, "restored your previous {h} hook");
                } else {
                    say!(
                        quiet,
                        "your existing {h} hook is kept as {h}{} and runs first",
                        ops::hooks::CHAINED
                    );
                }
            }
        }
        HistoryCommand::List {
            repo,
            path,
            rev,
            recursive,
            tree,
            level,
            dvt_only,
            size,
            show_hash,
            settings,
            json: as_json,
        } => {
            let listing = ops::list(&ops::ListOptions {
                repo: repo.clone(),
                path: path.clone().unwrap_or_default(),
                rev: rev.clone(),
                recursive: *recursive || *tree,
                dvt_only: *dvt_only,
                sizes: *size || *as_json,
                depth: level.map(|l| l as usize),
                settings: settings.settings(cwd)?,
                ..Default::default()
            })?;
            if *as_json {
                return json(&listing);
            }
            if *tree {
                return print_tree(&listing.entries);
            }
            for e in &listing.entries {
                let slash = if e.kind == dvt::pointer::Kind::Dir { "/" } else { "" };
                let mark = if e.keeper == ops::list::Keeper::Dvt {
                    "  (dvt)"
                } else {
                    ""
                };
                let mut line = String::new();
                if *show_hash {
                    line += &format!("{:<64}  ", e.id.map_or("-".to_string(), |id| id.to_string()));
                }
                if *size {
                    line += &format!(
                        "{:>11}  ",
                        e.size.map_or("-".to_string(), |n| HumanBytes(n).to_string())
                    );
                }
                out!("{line}{}{slash}{mark}", e.path);
            }
        }
        HistoryCommand::Du {
            repo,
            path,
            rev,
            summarize,
            dvt_only,
            bytes,
            settings,
            json: as_json,
        } => {
            let usage = ops::du(&ops::ListOptions {
                repo: repo.clone(),
                path: path.clone().unwrap_or_default(),
                rev: rev.clone(),
                dvt_only: *dvt_only,
                settings: settings.settings(cwd)?,
                ..Default::default()
            })?;
            if *as_json {
                return json(&usage);
            }
            let shown = |n: u64| match bytes {
                true => n.to_string(),
                false => HumanBytes(n).to_string(),
            };
            if !summarize {
                for e in &usage.entries {
                    let slash = if e.kind == dvt::pointer::Kind::Dir { "/" } else { "" };
                    out!("{:>11}  {}{slash}", shown(e.size.unwrap_or(0)), e.path);
                }
            }
            out!("{:>11}  {}", shown(usage.size), usage.path);
        }
        HistoryCommand::LsUrl {
            url,
            recursive,
            size,
            fs_config,
            json: as_json,
            tree,
            level,
        } => {
            let walk = *recursive || *tree;
            if level.is_some() && !walk {
                clap::Error::raw(
                    clap::error::ErrorKind::MissingRequiredArgument,
                    "-L/--level goes with -R or -T\n",
                )
                .exit();
            }
            let fs_config = ops::import::parse_options(fs_config, "--fs-config")?;
            let mut entries = ops::ls_url(&repo_or_bare(cwd)?, cwd, url, walk, &fs_config)?;
            if let Some(level) = level {
                entries = ops::import_url::to_level(entries, *level as usize);
            }
            if *as_json {
                return json(&entries);
            }
            if *tree {
                // Sorted: the directories of objects come from their paths; a
                // directory shown is one cut at `-L`.
                let mut shown: Vec<(&str, bool)> = entries
                    .iter()
                    .filter(|e| !e.isdir || level.is_some())
                    .map(|e| (e.path.as_str(), e.isdir))
                    .collect();
                shown.sort_unstable();
                return draw_tree(shown.into_iter().map(|(p, dir)| (p, dir, false)));
            }
            for e in &entries {
                let slash = if e.isdir { "/" } else { "" };
                match size {
                    true => out!("{:>11}  {}{slash}", HumanBytes(e.size).to_string(), e.path),
                    false => out!("{}{slash}", e.path),
                }
            }
        }
        HistoryCommand::Artifacts { command } => match command {
            ArtifactsCommand::Assign {
                name,
                stage,
                version,
                remote,
                push,
            } => {
                let repo = Repo::open(cwd)?;
                let r = ops::artifacts::assign(
                    &repo,
                    &ops::artifacts::AssignOptions {
                        name: name.clone(),
                        stage: stage.clone(),
                        version: version.clone(),
                        remote: remote.clone(),
                        push: push.clone(),
                        cwd: cwd.to_path_buf(),
                    },
                )?;
                return print_tagged(&r, quiet);
            }
            ArtifactsCommand::Get {
                repo,
                name,
                rev,
                stage,
                out,
                force,
                jobs,
                settings,
                show_url,
                json: as_json,
            } => {
                let opts = ops::artifacts::ArtifactGetOptions {
                    repo: repo.clone(),
                    name: name.clone(),
                    version: rev.clone(),
                    stage: stage.clone(),
                    out: out.clone(),
                    cwd: cwd.to_path_buf(),
                    force: *force,
                    settings: settings.settings(cwd)?,
                    jobs: jobs.map(|j| j as usize),
                };
                if *show_url {
                    return print_shown_url(&ops::artifacts::show_url(&opts)?, *as_json, quiet);
                }
                let r = ops::artifacts::get(&opts, bars)?;
                if *as_json {
                    return json(&r);
                }
                say!(
                    quiet,
                    "got {name} {} ({}, {}) into {} from {repo} {}",
                    r.version.as_deref().unwrap_or("(no version tag)"),
                    r.path,
                    HumanBytes(r.get.bytes),
                    r.get.out.display(),
                    read_at(r.get.commit.as_deref())
                );
            }
            ArtifactsCommand::Show {
                name,
                repo,
                rev,
                stage,
                json: as_json,
            } => {
                let shown = ops::artifacts::show(&this_or(cwd, repo)?, name, rev.as_deref(), stage.as_deref())?;
                if *as_json {
                    return json(&shown);
                }
                out!(
                    "{name} {}: {} at {}",
                    shown.version.as_deref().unwrap_or("(no version tag)"),
                    shown.artifact.path,
                    shown.commit
                );
            }
            ArtifactsCommand::List {
                repo,
                rev,
                json: as_json,
            } => {
                let repo = this_or(cwd, repo)?;
                let list = ops::artifacts::list(&repo, rev.as_deref())?;
                if *as_json {
                    return json(&list);
                }
                for a in &list {
                    let stages: Vec<String> = a.stages.iter().map(|s| format!("{}={}", s.stage, s.holds)).collect();
                    out!(
                        "{}\t{}\t{}\t{}{}",
                        a.name,
                        a.artifact.kind.as_deref().unwrap_or("-"),
                        a.artifact.path,
                        a.versions.first().map(String::as_str).unwrap_or("(no versions)"),
                        match stages.is_empty() {
                            true => String::new(),
                            false => format!("\t{}", stages.join(" ")),
                        }
                    );
                }
            }
        },
        HistoryCommand::Get {
            source,
            show_url: true,
            json: as_json,
            ..
        } => {
            return print_shown_url(&ops::show_url(&source.options(cwd)?)?, *as_json, quiet);
        }
        HistoryCommand::Get {
            source,
            force,
            json: as_json,
            ..
        } => {
            let repo = &source.repo;
            let opts = ops::GetOptions {
                force: *force,
                ..source.options(cwd)?
            };
            let r = ops::get(&opts, bars)?;
            if *as_json {
                return json(&r);
            }
            say!(
                quiet,
                "got {} ({}) from {} {}",
                r.out.display(),
                HumanBytes(r.bytes),
                dvt::git::login::shown(repo),
                read_at(r.commit.as_deref())
            );
            warn_left_out(&r.left_out);
        }
        HistoryCommand::Import {
            source,
            force,
            no_download,
            json: as_json,
        } => {
            let (repo, path) = (&source.repo, &source.path);
            let here = Repo::open(cwd)?;
            let opts = ops::ImportOptions {
                get: source.options(cwd)?,
                force: *force,
                no_download: *no_download,
            };
            let r = ops::import(&here, &opts, bars)?;
            if *as_json {
                return json(&r);
            }
            let pointer = r.pointer.as_deref().unwrap_or("");
            say!(
                quiet,
                "imported {} ({}) from {} {} -> {pointer}{}",
                path,
                HumanBytes(r.bytes),
                dvt::git::login::shown(repo),
                read_at(r.commit.as_deref()),
                if *no_download {
                    "; no data downloaded (`dvt pull` gets it)"
                } else {
                    ""
                }
            );
            warn_left_out(&r.left_out);
            if dvt::git::login::without_login(repo).1 {
                note!(
                    quiet,
                    "note: {pointer} records the URL without its login, which git would publish; `dvt update` and \
                     `dvt pull` of it take the login from ~/.netrc (`machine HOST login USER password TOKEN`), \
                     or ask for it at the terminal"
                );
            }
            super::git_add_hint(quiet, &here, cwd, "to record it with git");
        }
        HistoryCommand::ImportUrl {
            url,
            out,
            force,
            jobs,
            to_remote,
            remote,
            fs_config,
            no_download,
            version_aware,
            json: as_json,
        } => {
            let repo = Repo::open(cwd)?;
            let opts = ops::ImportUrlOptions {
                no_download: *no_download,
                version_aware: *version_aware,
                url: url.clone(),
                out: out.clone(),
                cwd: cwd.to_path_buf(),
                force: *force,
                jobs: jobs.map(|j| j as usize),
                to_remote: to_remote.then(|| remote.clone()),
                fs_config: ops::import::parse_options(fs_config, "--fs-config")?,
            };
            let r = ops::import_url(&repo, &opts, bars)?;
            if *as_json {
                return json(&r);
            }
            print_brought(quiet, "imported", &r, &r.url, &repo, cwd)?;
        }
        HistoryCommand::Update {
            targets,
            recursive,
            rev,
            force,
            jobs,
            to_remote,
            remote,
            no_download,
            json: as_json,
        } => {
            let repo = Repo::open(cwd)?;
            let opts = ops::UpdateOptions {
                no_download: *no_download,
                targets: targets.clone(),
                recursive: *recursive,
                cwd: cwd.to_path_buf(),
                rev: rev.clone(),
                force: *force,
                jobs: jobs.map(|j| j as usize),
                to_remote: to_remote.then(|| remote.clone()),
            };
            let r = ops::update(&repo, &opts, bars)?;
            if *as_json {
                return json(&r);
            }
            if r.is_empty() {
                say!(quiet, "no imports to update");
            }
            for u in &r {
                if let Some(url) = &u.url {
                    match (u.from == u.to, u.changed) {
                        (true, _) => say!(quiet, "{} is up to date with {url}", u.pointer),
                        (false, true) => match u.downloaded {
                            Some(d) => say!(
                                quiet,
                                "updated {} from {url} (downloaded {}, {})",
                                u.pointer,
                                dvt::counted(d.files as usize, "file"),
                                HumanBytes(d.bytes)
                            ),
                            None => say!(quiet, "updated {} from {url}", u.pointer),
                        },
                        (false, false) => say!(
                            quiet,
                            "{}: {url} was rewritten with the same content; recorded its new version",
                            u.pointer
                        ),
                    }
                } else if u.from == u.to {
                    say!(quiet, "{} is up to date ({})", u.pointer, &u.to[..7]);
                } else if u.changed {
                    say!(quiet, "updated {}: {} -> {}", u.pointer, &u.from[..7], &u.to[..7]);
                } else {
                    say!(quiet, "{}: now at {} (the data did not change)", u.pointer, &u.to[..7]);
                }
            }
        }
        HistoryCommand::GitHook { name, args } => return git_hook(cwd, name, args, quiet, bars),
    }
    Ok(ExitCode::SUCCESS)
}

/// What `import-url` or `add -o` (`verb`) brought from `from`, and the hint to commit it.
pub(super) fn print_brought(
    quiet: bool,
    verb: &str,
    r: &ops::ImportUrlReport,
    from: &str,
    repo: &Repo,
    cwd: &Path,
) -> Result<ExitCode, dvt::Error> {
    let what = match r.files {
        Some(n) => format!("{}, {}", dvt::counted(n as usize, "file"), HumanBytes(r.size)),
        None => HumanBytes(r.size).to_string(),
    };
    match &r.uploaded {
        Some(u) => say!(
            quiet,
            "{verb} {} ({what}) from {from} to remote `{}` ({} uploaded, {}) -> {}",
            r.path,
            u.remote,
            dvt::counted(u.objects as usize, "object"),
            HumanBytes(u.bytes),
            r.pointer
        ),
        None if !r.downloaded => say!(
            quiet,
            "{verb} {} ({what}) from {from} -> {}; no data downloaded (`dvt pull` gets it from there)",
            r.path,
            r.pointer
        ),
        None => say!(quiet, "{verb} {} ({what}) from {from} -> {}", r.path, r.pointer),
    }
    super::git_add_hint(quiet, repo, cwd, "to record it with git");
    Ok(ExitCode::SUCCESS)
}

/// Draws `entries` (paths below the listed path, `/`-separated, sorted) as a
/// tree, directories from their paths, as `tree` and DVC's `list -T` do.
fn print_tree(entries: &[ops::list::ListEntry]) -> Result<ExitCode, dvt::Error> {
    draw_tree(entries.iter().map(|e| {
        (
            e.path.as_str(),
            e.kind == dvt::pointer::Kind::Dir,
            e.keeper == ops::list::Keeper::Dvt,
        )
    }))
}

/// Draws paths (`/`-separated, sorted; each with whether it is a directory
/// and whether dvt keeps it, marked `(dvt)`) as a tree.
fn draw_tree<'a>(entries: impl Iterator<Item = (&'a str, bool, bool)>) -> Result<ExitCode, dvt::Error> {
    // Every line: its depth, its name, whether it is a directory, whether dvt keeps it.
    let mut lines: Vec<(usize, String, bool, bool)> = Vec::new();
    let mut open: Vec<&str> = Vec::new();
    for (path, is_dir, dvt) in entries {
        let parts: Vec<&str> = path.split('/').collect();
        let (dirs, name) = parts.split_at(parts.len() - 1);
        let same = open.iter().zip(dirs).take_while(|(a, b)| a == b).count();
        open.truncate(same);
        for (depth, d) in dirs.iter().enumerate().skip(same) {
            lines.push((depth, d.to_string(), true, false));
            open.push(d);
        }
        lines.push((dirs.len(), name[0].to_string(), is_dir, dvt));
        if is_dir {
            open.truncate(dirs.len());
        }
    }
    out!(".");
    // A line is the last of its siblings if no later line at its depth comes
    // before one shallower.
    let last = |i: usize| {
        let depth = lines[i].0;
        lines[i + 1..].iter().find(|l| l.0 <= depth).is_none_or(|l| l.0 < depth)
    };
    let mut rails: Vec<bool> = Vec::new();
    for (i, (depth, name, dir, dvt)) in lines.iter().enumerate() {
        rails.truncate(*depth);
        let is_last = last(i);
        let prefix: String = rails.iter().map(|&more| if more { "│   " } else { "    " }).collect();
        let branch = if is_last { "└── " } else { "├── " };
        let slash = if *dir { "/" } else { "" };
        let mark = if *dvt { "  (dvt)" } else { "" };
        out!("{prefix}{branch}{name}{slash}{mark}");
        rails.push(!is_last);
    }
    Ok(ExitCode::SUCCESS)
}

/// `gc --skip-failed`: a warning per revision skipped.
fn print_skipped(plan: &ops::GcPlan) {
    for s in &plan.skipped {
        let repo = s
            .repo
            .as_ref()
            .map(|r| format!(" of `{}`", r.display()))
            .unwrap_or_default();
        let why = match s.remote_tracking {
            true => " of a remote-tracking branch",
            false => " (--skip-failed)",
        };
        eprintln!(
            "{}",
            super::visible(&format!(
                "dvt: warning: skipped revision {}{repo}{why}, whose pointers could not be read: {}",
                s.rev, s.error
            ))
        );
    }
}

fn print_plan(plan: &ops::GcPlan) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(
        err,
        "keeping {} referenced by the workspace and {}",
        dvt::counted(plan.kept_objects, "object"),
        dvt::counted(plan.kept_revisions, "revision")
    );
    if plan.remote_tracking_revisions > 0 {
        let _ = writeln!(
            err,
            "  ({} of them only remote-tracking branches reach: others' work, fetched here)",
            plan.remote_tracking_revisions
        );
    }
    if let Some(secs) = plan.stale_fetch_secs {
        let _ = writeln!(
            err,
            "  (remote-tracking branches as of the last `git fetch`, {}: fetch first to keep what others pushed since)",
            match secs / 86_400 {
                1 => "a day ago".to_string(),
                n => format!("{n} days ago"),
            }
        );
    }
    // "N other repositories: `a`, `b`".
    let repos = |roots: &[std::path::PathBuf]| {
        let named: Vec<String> = roots.iter().map(|p| format!("`{}`", p.display())).collect();
        (dvt::counted(roots.len(), "other repository"), named.join(", "))
    };
    if !plan.projects.is_empty() {
        let (n, named) = repos(&plan.projects);
        let _ = writeln!(err, "  and by those of {n} given with --projects: {named}");
    }
    if !plan.shared_with.is_empty() {
        let (n, named) = repos(&plan.shared_with);
        let _ = writeln!(err, "  and by the workspace and HEAD of {n} sharing the cache: {named}");
    }
    for p in &plan.forgotten {
        let _ = writeln!(
            err,
            "  `{}` no longer uses this cache: its data is not kept",
            p.display()
        );
    }
    if let Some(u) = &plan.not_in_remote {
        let _ = writeln!(
            err,
            "  and {} that remote `{}` lacks (with the files of such directories)",
            dvt::counted(u.kept, "unreferenced object"),
            u.remote
        );
    }
    let _ = writeln!(
        err,
        "cache: {} to delete ({})",
        dvt::counted(plan.cache.count(), "object"),
        HumanBytes(plan.cache.bytes)
    );
    if !plan.needed_by.is_empty() {
        use dvt::git::RefKind;
        let named = super::first_few(
            plan.needed_by
                .iter()
                .map(|n| format!("{} `{}` ({})", n.kind.name(), n.name, dvt::counted(n.objects, "object"))),
            5,
        );
        let has = |k: RefKind| plan.needed_by.iter().any(|n| n.kind == k);
        let keep = match (has(RefKind::Branch), has(RefKind::Tag)) {
            (true, true) => "`--all-branches` (`-a`) and `--all-tags` (`-T`) keep them",
            (true, false) => "`--all-branches` (`-a`) keeps them",
            _ => "`--all-tags` (`-T`) keeps them",
        };
        let _ = writeln!(
            err,
            "warning: this deletes data of {}: {keep}; what no remote has would be gone for good",
            named
        );
    }
    if !plan.run_cache_entries.is_empty() {
        let _ = writeln!(
            err,
            "run cache: {} to delete (their data is deleted or gone)",
            dvt::counted(plan.run_cache_entries.len(), "entry")
        );
    }
    if let Some(r) = &plan.remote {
        let _ = writeln!(
            err,
            "remote `{r}`: {} to delete ({})",
            dvt::counted(plan.remote_objects.count(), "object"),
            HumanBytes(plan.remote_objects.bytes)
        );
        print_recent(plan);
        if !plan.remote_run_cache_entries.is_empty() {
            let _ = writeln!(
                err,
                "remote `{r}` run cache: {} to delete (their data is deleted or gone)",
                dvt::counted(plan.remote_run_cache_entries.len(), "entry")
            );
        }
    }
}

/// The line of a gc plan about what the remote keeps for being recent, if any.
fn print_recent(plan: &ops::GcPlan) {
    if let (Some(r), Some(recent)) = (&plan.remote, &plan.remote_recent) {
        let grace = super::dates::span(recent.grace_secs);
        let _ = writeln!(
            std::io::stderr().lock(),
            "remote `{r}`: keeping {} ({}) that nothing kept references but that were written there \
             less than {grace} ago (another clone may be about to commit them; `--grace 0` deletes them too)",
            dvt::counted(recent.kept, "object"),
            HumanBytes(recent.bytes),
        );
    }
}

/// Asks a yes/no question on the terminal; refuses (with an error) when stdin is
/// not a terminal, since nobody can answer.
pub(super) fn ask(question: &str) -> Result<bool, dvt::Error> {
    use std::io::IsTerminal;
    if !std::io::stdin().is_terminal() {
        return Err(std::io::Error::other(
            "not deleting without confirmation: pass `--force` (or `--dry-run` to only look)",
        )
        .into());
    }
    eprint!("{}", super::visible(question));
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    Ok(matches!(line.trim(), "y" | "Y" | "yes"))
}

/// git's merge driver for pointer files and `dvt.lock`: `merge-driver BASE OURS THEIRS PATH`,
/// the file names relative to where git runs it (the top of the work tree).
/// Exit 0 leaves the merged pointer in OURS; 1 leaves conflict markers there.
fn merge_driver(cwd: &Path, args: &[String], quiet: bool) -> Result<ExitCode, dvt::Error> {
    let [base, ours, theirs, name] = args else {
        return Err(std::io::Error::other("usage: dvt git-hook merge-driver BASE OURS THEIRS PATH").into());
    };
    let here = std::env::current_dir()?;
    let (base, ours, theirs) = (here.join(base), here.join(ours), here.join(theirs));
    // The dvt repository the file is in (in a monorepo, one of several), found
    // from its path in the work tree, where git runs the driver.
    let path = here.join(name);
    let repo = path
        .ancestors()
        .skip(1)
        .find(|dir| dir.is_dir())
        .and_then(|dir| Repo::open(dir).ok())
        .or_else(|| Repo::open(cwd).ok());
    let report = ops::merge::merge_files(repo.as_ref(), &base, &ours, &theirs, name)?;
    match &report.merged {
        Some(merged) => {
            let what = match merged {
                ops::merge::Merged::Pointer(p) => match p.files {
                    Some(n) => format!(
                        "the data of both branches, file by file ({}, {})",
                        files(n),
                        HumanBytes(p.size)
                    ),
                    None => format!("{}", HumanBytes(p.size)),
                },
                ops::merge::Merged::Lock { stages } => {
                    format!("the stages of both branches ({})", dvt::counted(*stages, "stage"))
                }
            };
            note!(quiet, "dvt: merged `{name}`: {what}");
            Ok(ExitCode::SUCCESS)
        }
        None => {
            for c in &report.conflicts {
                note!(false, "dvt: conflict in `{name}`: {c}");
            }
            Ok(ExitCode::from(1))
        }
    }
}

/// After installing the hooks, when `hooks.fetch` is off: how to turn it on.
fn hint_hooks_fetch(repo: &Repo, uninstall: bool, quiet: bool) {
    if !uninstall && !repo.config().hooks.fetch {
        note!(
            quiet,
            "hint: `dvt config --local hooks.fetch true` has the checkout hooks fetch the data they lack \
             from the remote first, as git-lfs does"
        );
    }
}

/// Whether the merge driver is now installed (`driver`) or removed.
fn say_merge_driver(quiet: bool, driver: &Option<String>) -> Result<ExitCode, dvt::Error> {
    match driver {
        Some(_) => say!(
            quiet,
            "pointer files (*.dvt) and dvt.lock now merge with `dvt git-hook merge-driver`"
        ),
        None => say!(quiet, "removed the merge driver for pointer files and dvt.lock"),
    }
    Ok(ExitCode::SUCCESS)
}

/// `PRE_COMMIT_NAME`, set when the pre-commit framework runs a hook, if not empty.
fn pre_commit_var(name: &str) -> Option<String> {
    std::env::var(format!("PRE_COMMIT_{name}"))
        .ok()
        .filter(|v| !v.is_empty())
}

/// Says what [`ops::switch::leave_behind`] deleted, and what it left where git
/// would commit it.
pub(super) fn print_left_behind(left: &ops::switch::LeftBehind, quiet: bool) {
    let names = |paths: &mut dyn Iterator<Item = &String>| super::first_few(paths.map(|p| format!("`{p}`")), 10);
    if !left.removed.is_empty() {
        note!(
            quiet,
            "dvt: removed {}: tracked at {}, not here (the cache keeps it for when you go back)",
            names(&mut left.removed.iter()),
            left.from
        );
    }
    let mut reasons: Vec<&str> = left.kept.iter().map(|k| k.reason.as_str()).collect();
    reasons.sort_unstable();
    reasons.dedup();
    for reason in reasons {
        let paths: Vec<&String> = left
            .kept
            .iter()
            .filter(|k| k.reason == reason)
            .map(|k| &k.path)
            .collect();
        let add = match paths.as_slice() {
            [one] => format!("`dvt add {one}`"),
            _ => "`dvt add PATH`".into(),
        };
        note!(
            false,
            "dvt: left {} in place (tracked at {}, not here; {reason}): `git add -A` would now commit {}: \
             delete {}, or track {} here with {add}",
            names(&mut paths.iter().copied()),
            left.from,
            if paths.len() == 1 { "it" } else { "them" },
            if paths.len() == 1 { "it" } else { "them" },
            if paths.len() == 1 { "it" } else { "them" },
        );
    }
}

/// `hooks.fetch`: what the workspace's pointers need and the cache lacks,
/// from their remotes, before the checkout hooks check out. A failure is
/// reported, not fatal: the checkout then names what it could not write.
fn hook_fetch(repo: &Repo, quiet: bool, bars: &Bars) {
    if repo.config().remote.is_empty() {
        note!(quiet, "dvt: no remote configured; nothing fetched (hooks.fetch)");
        return;
    }
    let opts = ops::TransferOptions {
        targets: vec![],
        cwd: repo.root().to_path_buf(),
        remote: None,
        jobs: None,
        revisions: dvt::snapshot::Revisions::default(),
        run_cache: false,
        revisions_only: false,
        allow_missing: true,
        only: Default::default(),
    };
    match ops::fetch(repo, &opts, bars) {
        Ok(r) if r.downloaded > 0 => note!(
            quiet,
            "dvt: fetched {} ({}) from `{}`",
            dvt::counted(r.downloaded, "object"),
            indicatif::HumanBytes(r.downloaded_bytes),
            r.remote
        ),
        Ok(_) => {}
        Err(e) => note!(false, "dvt: data not fetched: {e}"),
    }
}

/// The logic behind the hook scripts. A repository without `.dvt` does nothing.
fn git_hook(cwd: &Path, name: &str, args: &[String], quiet: bool, bars: &Bars) -> Result<ExitCode, dvt::Error> {
    if name == "merge-driver" {
        return merge_driver(cwd, args, quiet);
    }
    let repo = match Repo::open(cwd) {
        Ok(r) => r,
        Err(dvt::Error::Repo(dvt::error::RepoError::NotInitialized { .. })) => return Ok(ExitCode::SUCCESS),
        Err(e) => return Err(e),
    };
    match name {
        "post-checkout" | "post-merge" | "post-rewrite" => {
            // After `--amend` the data is what it was; after a rebase, whose
            // checkouts post-checkout skipped, it follows the new HEAD.
            let rewrite = args.first().cloned().or_else(|| pre_commit_var("REWRITE_COMMAND"));
            if name == "post-rewrite" && rewrite.as_deref() != Some("rebase") {
                return Ok(ExitCode::SUCCESS);
            }
            // The pre-commit framework gives git's arguments in its variables.
            let args = match (args.is_empty(), pre_commit_var("CHECKOUT_TYPE")) {
                (true, Some(kind)) => vec![
                    pre_commit_var("FROM_REF").unwrap_or_default(),
                    pre_commit_var("TO_REF").unwrap_or_default(),
                    kind,
                ],
                _ => args.to_vec(),
            };
            if name == "post-checkout" && !ops::hooks::post_checkout_applies(&repo, &args)? {
                return Ok(ExitCode::SUCCESS);
            }
            // What git left of the data the old HEAD tracked and this one does not
            // (`ORIG_HEAD`: the HEAD before a merge or a rebase).
            let (old, new) = match name {
                "post-checkout" => (
                    args.first().cloned().unwrap_or_default(),
                    args.get(1).cloned().unwrap_or_default(),
                ),
                _ => ("ORIG_HEAD".to_string(), "HEAD".to_string()),
            };
            match ops::switch::leave_behind(&repo, &old, &new) {
                Ok(left) => print_left_behind(&left, quiet),
                Err(e) => note!(false, "dvt: data of the previous HEAD not cleaned up: {e}"),
            }
            if repo.config().hooks.fetch {
                hook_fetch(&repo, quiet, bars);
            }
            let opts = ops::CheckoutOptions {
                targets: vec![],
                cwd: repo.root().to_path_buf(),
                force: false,
                allow_missing: false,
                keep_changed: true,
            };
            // git has already switched: what has changes no pointer records stays
            // as it is, the rest follows; a failure here is reported, not fatal.
            match ops::checkout(&repo, &opts, bars) {
                Ok(r) => {
                    if !r.restored.is_empty() || !r.restored_dirs.is_empty() {
                        note!(
                            quiet,
                            "dvt: checked out {}",
                            dvt::counted(r.restored.len() + r.restored_dirs.len(), "path")
                        );
                    }
                    if !r.kept.is_empty() {
                        note!(
                            false,
                            "dvt: left {} as {} (changes no pointer records): `dvt checkout --force PATH` \
                             discards them, `dvt add PATH` records them",
                            super::first_few(r.kept.iter().map(|p| format!("`{p}`")), 10),
                            if r.kept.len() == 1 { "it is" } else { "they are" }
                        );
                    }
                }
                Err(e) => {
                    note!(false, "dvt: data not checked out: {e}");
                    // git runs hooks at the root: the hint's paths from there.
                    let from_root = |p: &str| {
                        Path::new(p)
                            .strip_prefix(repo.root())
                            .map_or(p.to_string(), |r| r.to_string_lossy().into_owned())
                    };
                    if let Some(h) = e.hint_from(&from_root) {
                        note!(false, "hint: {h}");
                    }
                }
            }
        }
        "pre-push" => {
            if repo.config().remote.is_empty() {
                note!(quiet, "dvt: no remote configured; data not pushed");
                return Ok(ExitCode::SUCCESS);
            }
            // git gives the refs being pushed on stdin: push their commits' data too.
            // Run by the pre-commit framework, the hook has the first ref pushed in
            // its variables instead (all pre-commit passes on), so the branches the
            // git remote lacks stand for the rest.
            let (git_remote, refs) = match pre_commit_var("REMOTE_NAME") {
                Some(git_remote) => {
                    let tip = pre_commit_var("TO_REF").or_else(|| pre_commit_var("LOCAL_BRANCH"));
                    let first = tip.map(|t| (t, pre_commit_var("FROM_REF")));
                    let others = ops::hooks::branches_ahead(&repo, &git_remote)?
                        .into_iter()
                        .map(|b| (b, None));
                    (git_remote, first.into_iter().chain(others).collect())
                }
                None => {
                    let mut input = String::new();
                    let _ = std::io::Read::read_to_string(&mut std::io::stdin(), &mut input);
                    (
                        args.first().cloned().unwrap_or_default(),
                        ops::hooks::pushed_refs(&input),
                    )
                }
            };
            // Every commit the push sends, not only the tips, so that each one a
            // colleague checks out has its data.
            let revs = ops::hooks::commits_pushed(&repo, &refs, &git_remote)?;
            let opts = ops::TransferOptions {
                targets: vec![],
                cwd: repo.root().to_path_buf(),
                remote: None,
                jobs: None,
                revisions: dvt::snapshot::Revisions {
                    revs,
                    ..Default::default()
                },
                run_cache: false,
                revisions_only: false,
                allow_missing: false,
                only: Default::default(),
            };
            let r = ops::push(&repo, &opts, bars)?;
            if !r.missing_from_cache.is_empty() {
                note!(
                    false,
                    "dvt: {} in no cache here; git push stopped",
                    dvt::counted(r.missing_from_cache.len(), "object")
                );
                return Ok(ExitCode::from(1));
            }
            note!(
                quiet,
                "dvt: pushed {} to `{}`",
                dvt::counted(r.uploaded, "object"),
                r.remote
            );
        }
        "pre-commit" => {
            let opts = ops::StatusOptions {
                targets: vec![],
                cwd: repo.root().to_path_buf(),
                data_only: false,
                ..Default::default()
            };
            let s = ops::status(&repo, &opts, bars)?;
            // The one thing this hook stops: data going into git's history.
            if !s.in_git_index.is_empty() {
                super::warn_data_in_git_index(&s.in_git_index, true);
                return Ok(ExitCode::from(1));
            }
            // Or the data of the branch just left, which nothing tracks here.
            let left = ops::switch::staged_left_behind(&repo)?;
            if let Some((_, from)) = left.first() {
                let paths: Vec<&str> = left.iter().map(|(p, _)| p.as_str()).collect();
                note!(
                    false,
                    "dvt: the commit stops here: git's index holds data that dvt tracked at {from}, the commit \
                     you switched from, and nothing tracks here: {}; committed, its bytes would stay in git's \
                     history\nhint: `git rm -r --cached {}` takes it out of the index and leaves the files; \
                     then delete them, or track them here with `dvt add PATH`; `git commit --no-verify` commits \
                     it all the same",
                    super::first_few(paths.iter().map(|p| p.to_string()), 10),
                    paths.join(" ")
                );
                return Ok(ExitCode::from(1));
            }
            let changed: Vec<&str> = s
                .pointers
                .iter()
                .filter(|p| p.workspace == ops::status::Workspace::Modified)
                .map(|p| p.path.as_str())
                .collect();
            if !changed.is_empty() {
                note!(
                    false,
                    "dvt: warning: data changed but not added: {}\nhint: `dvt add {}` to record it in this commit",
                    changed.join(", "),
                    changed.join(" ")
                );
            }
            // A commit whose dvt.lock does not match its code and params.
            if !s.stale_stages.is_empty() {
                let stages: Vec<String> = s
                    .stale_stages
                    .iter()
                    .map(|st| format!("{} ({})", st.stage, st.reason.as_deref().unwrap_or("")))
                    .collect();
                note!(
                    false,
                    "dvt: warning: dvt.lock is not up to date; `dvt repro` would run: {}\nhint: run `dvt repro` and \
                     `git add dvt.lock` to record results that match this commit",
                    stages.join(", ")
                );
            }
        }
        _ => {}
    }
    Ok(ExitCode::SUCCESS)
}

/// What `get --show-url` (or `artifacts get --show-url`) found: the URL on
/// stdout, a packed object's byte range on stderr.
fn print_shown_url(shown: &ops::ShownUrl, as_json: bool, quiet: bool) -> Result<ExitCode, dvt::Error> {
    if as_json {
        return json(shown);
    }
    out!("{}", shown.url);
    if let Some(r) = &shown.range {
        note!(
            quiet,
            "packed: its stored form is bytes {}..{} of that pack file (see `dvt get-url --help`)",
            r.start,
            r.end
        );
    }
    Ok(ExitCode::SUCCESS)
}
