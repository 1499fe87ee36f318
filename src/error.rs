//! Errors: one enum per area, wrapped by [`Error`].
//!
//! Every variant carries the path, object id or name it concerns, so that a
//! message read on its own says what failed and where.

use std::path::PathBuf;

use crate::object::ObjectId;
use crate::pointer::POINTER_EXT;

/// Result alias used throughout the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Any error the library returns.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Finding, creating, configuring or locking a repository failed.
    #[error(transparent)]
    Repo(#[from] RepoError),
    /// Reading or writing the object cache failed.
    #[error(transparent)]
    Cache(#[from] CacheError),
    /// A pointer file or manifest is malformed or unsafe.
    #[error(transparent)]
    Format(#[from] FormatError),
    /// A path given by the user or found in the workspace is not acceptable.
    #[error(transparent)]
    Path(#[from] PathError),
    /// The workspace could not be made to match the pointer files.
    #[error(transparent)]
    Workspace(#[from] WorkspaceError),
    /// Configuring or talking to a remote failed.
    #[error(transparent)]
    Remote(#[from] RemoteError),
    /// `dvt tag` refused.
    #[error(transparent)]
    Tag(#[from] TagError),
    /// A pipeline is malformed, or a stage failed.
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    /// `dvt artifacts` refused.
    #[error(transparent)]
    Artifact(#[from] ArtifactError),
    /// Reading or writing git failed, or a revision or path in it is wrong.
    #[error(transparent)]
    Git(#[from] GitError),
    /// A filesystem operation failed; the message names the path (via `fs_err`).
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// The way out of a committed file that cannot be read: mend it, or take git's
/// copy back (`file` as the user would type it).
pub fn put_back(file: &str) -> String {
    format!("fix it by hand, or put back the committed one with `git checkout -- {file}`")
}

impl Error {
    /// This error as met reading another repository's remote (`get`,
    /// `import`, `list`): an object missing there is that repository's to
    /// push, which `pull --allow-missing` cannot mend.
    pub(crate) fn in_read_repo(self) -> Error {
        match self {
            Error::Remote(RemoteError::Missing {
                remote,
                id,
                path,
                served_copy: false,
            }) => RemoteError::MissingInRead { remote, id, path }.into(),
            Error::Remote(RemoteError::Transfer {
                remote,
                failed,
                total,
                first,
            }) => RemoteError::Transfer {
                remote,
                failed,
                total,
                first: Box::new(first.in_read_repo()),
            }
            .into(),
            e => e,
        }
    }

    /// Whether this error, or one beneath it, is a full disk or an exceeded quota.
    pub fn is_disk_full(&self) -> bool {
        match self {
            Error::Workspace(WorkspaceError::Incomplete { disk_full, .. }) => *disk_full,
            _ => matches!(
                self.io_kind(),
                Some(std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded)
            ),
        }
    }

    /// The kind of the system error this one is, or stands on, if any.
    pub fn io_kind(&self) -> Option<std::io::ErrorKind> {
        if let Error::Io(e) = self {
            return Some(e.kind());
        }
        let mut cur = std::error::Error::source(self);
        while let Some(e) = cur {
            if let Some(io) = e.downcast_ref::<std::io::Error>() {
                return Some(io.kind());
            }
            cur = e.source();
        }
        None
    }

    /// What the user can do about this error, when we know. Paths in the
    /// commands it suggests are from the repository root; see [`Error::hint_from`].
    pub fn hint(&self) -> Option<String> {
        self.hint_from(&|rel| rel.to_string())
    }

    /// [`Error::hint`], with each workspace path that a suggested command takes
    /// written by `typed` (given the path from the repository root, or an
    /// absolute one), so that the command works pasted where the user is.
    pub fn hint_from(&self, typed: &dyn Fn(&str) -> String) -> Option<String> {
        if self.is_disk_full() {
            return Some(
                "the disk is full: free some space (`dvt gc` deletes cache objects no pointer needs) and run \
                 the command again; what was already in place is unchanged"
                    .into(),
            );
        }
        match self {
            Error::Repo(RepoError::NotInitialized { .. }) => {
                Some("run `dvt init` at the root of your git work tree".into())
            }
            Error::Repo(RepoError::NotGit { .. }) => {
                Some("run `git init` first, or `dvt init --no-scm` to use dvt without git".into())
            }
            Error::Repo(RepoError::NotGitRoot { root, .. }) => Some(format!(
                "run `dvt init` in `{}`, or pass `--subdir` to keep a separate dvt repo here",
                root.display()
            )),
            Error::Repo(RepoError::CacheDenied { dir, .. }) => Some(format!(
                "for a cache several users write to, give it to a group they are all in, let the group \
                 write what is there (`chgrp -R GROUP {0} && chmod -R g+rwX {0} && find {0} -type d -exec \
                 chmod g+s {{}} +`), and `dvt config cache.shared group` in every repository using it, so \
                 that what dvt writes there next is the group's too",
                dir.display()
            )),
            Error::Repo(RepoError::CacheUser { root, .. }) => Some(format!(
                "gc keeps the data of every repository sharing the cache, so it stops when one cannot be \
                 read: fix `{}`, or, if it no longer uses this cache, delete its line from the file `repos` \
                 in the cache directory",
                root.display()
            )),
            Error::Repo(RepoError::GcRevision { rev, .. }) => Some(format!(
                "gc must know all that a kept revision references: mend what the message names (data \
                 a remote has comes back with `dvt fetch --rev {rev}`), or skip that revision with \
                 `--skip-failed` (what only it references is then deleted)"
            )),
            Error::Repo(RepoError::GcWorkspace { .. }) => Some(
                "gc must know all that the workspace's pointers reference: `dvt fetch` gets what a \
                 remote has; data recorded but stored nowhere, and changed since, is lost: record what \
                 the workspace holds now (`dvt add PATH`, `dvt commit STAGE`) or make it again (`dvt repro`)"
                    .into(),
            ),
            Error::Repo(RepoError::UnknownSetting { name }) if name == "cache.type" => Some(
                "dvt stores objects compressed, so it always checks data out as copies, never as links \
                 into the cache (DVC's `cache.type`): there is nothing to choose"
                    .into(),
            ),
            Error::Repo(RepoError::UnknownSetting { name }) => Some(format!(
                "{}settings: {} and remote.NAME.KEY (`dvt remote modify --help` lists the keys); \
                 `dvt config --list` shows what is set",
                crate::suggest::did_you_mean(name, crate::ops::config::SETTINGS),
                crate::ops::config::SETTINGS.join(", ")
            )),
            Error::Repo(RepoError::NotSet { default: Some(d), .. }) => Some(format!("the default is {d}")),
            Error::Repo(RepoError::Locked { .. }) => Some(
                "wait for that command to finish and run this one again (`--wait-for-lock` waits \
                 for you); the lock is released as soon as the process exits"
                    .into(),
            ),
            Error::Cache(CacheError::Missing { .. }) => {
                Some(
                    "the data is not in the cache: fetch it from a remote, or store it again from the workspace \
                     (`dvt add PATH`, or `dvt commit STAGE` for a stage's outs)"
                        .into(),
                )
            }
            Error::Cache(CacheError::Corrupt { .. }) => Some(
                "`dvt fsck --repair` takes every damaged object out of the cache and stores \
                 again those the workspace holds; `dvt fetch` gets the rest from a remote"
                    .into(),
            ),
            Error::Format(FormatError::Conflict { path, .. }) => {
                let p = typed(&path.to_string_lossy());
                Some(format!(
                    "keep one side with `git checkout --ours {p}` (or `--theirs`), then `dvt checkout`; \
                     `dvt install-hooks` sets up a merge driver that merges tracked directories file by file"
                ))
            }
            // `REV:PATH`: a file of a commit, which no edit mends.
            Error::Format(FormatError::Pointer { path, .. })
                if path.is_relative() && path.to_string_lossy().contains(':') =>
            {
                Some(
                    "a commit holds it as it is, and history is not rewritten: name other revisions; a fixed \
                     pointer committed now serves the commits to come"
                        .into(),
                )
            }
            Error::Format(FormatError::Pointer { path, .. }) => Some(format!(
                "{}; commands given other targets do not read it",
                put_back(&typed(&path.to_string_lossy()))
            )),
            Error::Repo(RepoError::Config { path, .. }) => {
                let file = typed(&path.to_string_lossy());
                let in_repo = path
                    .parent()
                    .and_then(std::path::Path::file_name)
                    .is_some_and(|d| d == crate::repo::DVT_DIR);
                Some(match path.file_name().is_some_and(|n| n == "config.local.toml") {
                    true => format!("fix `{file}` by hand: it holds this clone's settings and secrets, not in git"),
                    false if !in_repo => format!("fix `{file}` by hand: it holds settings of every repository"),
                    false => put_back(&file),
                })
            }
            Error::Pipeline(PipelineError::Lock { file, .. }) => Some(format!(
                "{}; dvt writes it only once it reads it",
                put_back(&typed(&file.to_string_lossy()))
            )),
            Error::Format(FormatError::UnsupportedVersion { .. }) => {
                Some("this file was written by a newer dvt: upgrade dvt".into())
            }
            Error::Workspace(WorkspaceError::Conflicts { .. }) => {
                Some("commit or move your changes away, or run again with `--force` to discard them".into())
            }
            Error::Workspace(WorkspaceError::RemoveUnrecorded { .. }) => Some(
                "record them first (`dvt add`, `dvt commit`) or move them away; without `--outs` the data stays where it is"
                    .into(),
            ),
            Error::Path(PathError::Exists { flag, .. }) => {
                Some(format!("pass `{flag}` to replace it, or name another destination"))
            }
            Error::Path(PathError::MoveTargetExists { .. }) => {
                Some("move or delete what is there first, or name another destination".into())
            }
            Error::Path(PathError::ContainsTracked { pointer, .. }) => Some(format!(
                "stop tracking the inner path first with `dvt remove {}`, or add a sibling directory instead",
                typed(pointer)
            )),
            Error::Path(PathError::Symlink { link, .. }) => Some(format!(
                "dvt reads and writes only real files and directories: to track what the link points to, \
                 add it where it is; if the link stands where tracked data belongs, remove it (`rm {}` \
                 leaves what it points to alone) and `dvt checkout` puts the data there",
                match link.to_str() {
                    Some(rel) if link.is_relative() => typed(rel),
                    _ => link.display().to_string(),
                }
            )),
            Error::Path(PathError::PointerIgnored { pointer, ignored, .. }) => {
                let change = match ignored == pointer {
                    true => format!("add `!/{pointer}` below it"),
                    false => format!(
                        "to keep the rest of `{ignored}` out of git, the four lines `/{ignored}/**`, \
                         `!/{ignored}/**/`, `!/{ignored}/**/*.dvt` and `!/{ignored}/**/.gitignore` in place of \
                         what ignores it"
                    ),
                };
                Some(format!(
                    "`git check-ignore -v {}` names the rule: change it so that git sees the pointer file and the \
                     `.gitignore` dvt writes ({change}), then run this command again",
                    typed(pointer)
                ))
            }
            Error::Path(PathError::TrackedByGit { path, .. }) => Some(format!(
                "stop tracking it in git first, keeping the files: `git rm -r --cached {}` and \
                 `git commit -m \"stop tracking {path}\"`; then run this command again",
                typed(path)
            )),
            Error::Path(PathError::TrackedTwice {
                path,
                by,
                inside,
                other_by,
            }) => {
                // The one to go: a pointer beside a stage's out, else the copy,
                // not named after its data (`data.dvt` for `data`).
                let lock = crate::pipeline::LOCK_FILE;
                let (copy, kept) = if by == lock || (path == inside && *by == format!("{path}.{POINTER_EXT}")) {
                    (other_by, by)
                } else {
                    (by, other_by)
                };
                Some(format!(
                    "each path needs one pointer only, or `checkout` writes each version in turn: delete \
                     `{0}` (`git rm {0}`, or `rm {0}` if git does not have it). An old version stays in git's \
                     history of `{1}` (`dvt versions`, `dvt cat --rev`), not in a copy of the pointer",
                    typed(copy),
                    typed(kept)
                ))
            }
            Error::Pipeline(PipelineError::OwnOut { .. }) => Some(
                "a stage runs when what it reads changes, and its out changes each time it runs: write the out \
                 outside the dependency, or name the files the stage reads rather than the directory it writes into"
                    .into(),
            ),
            Error::Pipeline(PipelineError::OutTracked { stage, pointer, .. }) => Some(format!(
                "a path is a stage's out or tracked by a pointer, not both: give `{stage}` another out, or \
                 let the stage produce the data and stop tracking it with `dvt remove {}` (the data stays)",
                typed(pointer)
            )),
            Error::Path(PathError::StageOut { stage, .. }) => Some(format!(
                "a stage's outs are recorded in `dvt.lock` when it runs: `dvt repro {stage}`, or `dvt commit \
                 {stage}` to record what is there now"
            )),
            Error::Path(PathError::InsideTracked { tracked, .. }) => Some(format!(
                "`{tracked}` is tracked as a whole: run `dvt add {}` to record changes inside it",
                typed(tracked)
            )),
            Error::Repo(RepoError::AlreadyInitialized { .. }) => Some(
                "`dvt init --force` starts its settings over (`.dvt/config.toml`, `.dvt/config.local.toml`) \
                 and keeps its cache"
                    .into(),
            ),
            Error::Remote(RemoteError::NamedByPointer { name, .. }) => Some(format!(
                "add it with `dvt remote add {name} URL`, or take the `remote` line out of the pointer to use the default"
            )),
            Error::Remote(RemoteError::Unknown { known, .. }) if known.is_empty() => {
                Some("add one with `dvt remote add -d NAME URL`".into())
            }
            Error::Remote(RemoteError::Unknown { name, known }) => Some(format!(
                "{}configured remotes: {}",
                crate::suggest::did_you_mean(name, known.iter().map(String::as_str)),
                known.join(", ")
            )),
            Error::Remote(RemoteError::NoDefault { known }) if known.is_empty() => Some(
                "add one with `dvt remote add -d NAME URL` (s3://, gs://, az://, http(s)://, ssh://, or a directory)".into(),
            ),
            Error::Remote(RemoteError::NoDefault { known }) => Some(format!(
                "pass `-r NAME` or set a default with `dvt remote default NAME` (configured: {})",
                known.join(", ")
            )),
            Error::Remote(RemoteError::Corrupt { remote, .. }) => Some(format!(
                "the copy on `{remote}` is damaged: `dvt fsck -r {remote}` lists every damaged one, and \
                 `dvt fsck -r {remote} --repair`, run where the cache has them intact, replaces them"
            )),
            Error::Remote(RemoteError::Request { remote, message }) if message.contains("invalid peer certificate") => {
                Some(format!(
                    "if `{remote}` uses a certificate of your own CA, trust it with \
                     `dvt remote modify {remote} ssl_verify PATH/TO/ca.pem` (or `false` to accept any)"
                ))
            }
            Error::Remote(RemoteError::Request { remote, message }) if asked_instance_metadata(message) => {
                Some(format!(
                    "no credentials for `{remote}` were in its config or the environment, so the cloud's \
                     instance metadata server was asked, and gave none: export them (`AWS_ACCESS_KEY_ID` and \
                     `AWS_SECRET_ACCESS_KEY`, `GOOGLE_APPLICATION_CREDENTIALS`, `AZURE_STORAGE_ACCOUNT_KEY`) or set \
                     them with `dvt remote modify {remote} KEY VALUE` (secrets go to `.dvt/config.local.toml`)"
                ))
            }
            Error::Remote(RemoteError::Request { remote, .. }) => Some(format!(
                "check that the server is reachable and the URL, endpoint and credentials of `{remote}` \
                 (`dvt remote list --json`); a failed request is retried as often as option `retries` says"
            )),
            Error::Remote(RemoteError::MissingFromSource { read: true, .. }) => Some(
                "the data must be pushed (`dvt push`) to a remote of the repository read, or of one it \
                 imported it from, by a clone that has it"
                    .into(),
            ),
            Error::Remote(RemoteError::MissingFromSource { remote, .. }) => Some(format!(
                "{}, or make the source reachable again \
                 (its path or URL is in the pointer's `[source]` table; `dvt update` imports what is there now); `dvt pull --allow-missing` checks out the rest",
                match remote {
                    Some(r) => format!("`dvt push` it to `{r}` from a clone that has it"),
                    None => "add a remote that has it (`dvt remote add -d NAME URL`)".into(),
                }
            )),
            Error::Remote(RemoteError::MissingInRead { .. }) => Some(
                "nobody pushed it there: it must be pushed (`dvt push`) from a clone of that repository \
                 that has the data (`dvt status --remote` there lists what is not pushed)"
                    .into(),
            ),
            Error::Remote(RemoteError::Missing {
                remote,
                served_copy: true,
                ..
            }) => Some(format!(
                "`{remote}` is a web server serving a copy of another store, and the copy may be older than \
                 the store: copy the store to it again (its `packs/list` too), or pull from the store itself; \
                 or `dvt pull --allow-missing` to check out the rest"
            )),
            Error::Remote(RemoteError::Missing { remote, .. }) => Some(format!(
                "nobody pushed it to `{remote}`: run `dvt push` where that data was added \
                 (a push of part of a directory leaves the directory's manifest back), \
                 then fetch again; or `dvt pull --allow-missing` to check out the rest"
            )),
            // Its message is text, so `is_disk_full` above does not take it for the cache's.
            Error::Remote(RemoteError::Full { remote, dir, .. }) => Some(format!(
                "the disk holding `{remote}` (`{}`) is full: free some space there (`dvt gc -r {remote}` \
                 deletes the objects on it that no kept pointer needs) and run the command again; what was already \
                 in place is unchanged",
                dir.display()
            )),
            Error::Remote(RemoteError::Transfer { first, .. }) => {
                const AGAIN: &str = "run the same command again: what was transferred is kept, and only the rest moves";
                match (first.as_ref(), first.hint_from(typed)) {
                    (Error::Remote(RemoteError::Refused { .. }), _) => None,
                    (Error::Remote(RemoteError::Request { .. }), Some(h)) => Some(format!("{h}; then {AGAIN}")),
                    (_, Some(h)) => Some(h),
                    (_, None) => Some(AGAIN.into()),
                }
            }
            Error::Tag(TagError::Uncommitted { .. }) => {
                Some("`git add` and `git commit` them (or restore them), then tag again".into())
            }
            Error::Tag(TagError::NotOnRemote { .. }) => Some("run `dvt push`, then tag again".into()),
            Error::Tag(TagError::NotPushed { name, git_remote, .. }) => Some(format!(
                "once that is mended, `git push {} refs/tags/{name}` sends it (with `--force`, over a tag of that name there)",
                crate::shell_word(git_remote)
            )),
            Error::Pipeline(PipelineError::UnknownStage { name, known }) => Some(if known.is_empty() {
                "add one with `dvt stage add -n NAME ... CMD`".into()
            } else {
                format!(
                    "{}stages: {}",
                    crate::suggest::did_you_mean(name, known.iter().map(String::as_str)),
                    known.join(", ")
                )
            }),
            Error::Pipeline(PipelineError::NoPipeline) => {
                Some("declare stages with `dvt stage add -n NAME -d DEP -o OUT CMD`".into())
            }
            Error::Workspace(WorkspaceError::Incomplete { failures, .. })
                if failures.iter().any(|f| f.contains("is not in the cache")) =>
            {
                Some(
                    "`dvt pull` gets missing objects from the remote; pipeline outs that `dvt repro --no-commit` \
                     recorded were never stored, and `dvt repro` makes them again; `--allow-missing` \
                     checks out the rest"
                        .into(),
                )
            }
            Error::Pipeline(PipelineError::CommitChanged { stage, .. }) => Some(format!(
                "`dvt repro {stage}` runs it on its inputs; `dvt commit --force {stage}` records its outs as they \
                 are; or name only the stages to commit (`dvt commit STAGE`)"
            )),
            Error::Pipeline(PipelineError::CommitOutMissing { stage, .. }) => Some(format!(
                "`dvt repro {stage}` runs it (or restores its outs from the cache); nothing was written"
            )),
            Error::Path(PathError::CommitImport { .. }) => Some(
                "to track your changes as data of your own instead, `dvt add` its data path (the import's source is dropped)"
                    .into(),
            ),
            Error::Pipeline(PipelineError::StageFailed { .. }) => {
                Some("fix the command or its inputs and run `dvt repro` again: finished stages are not re-run".into())
            }
            Error::Git(GitError::NoCommitYet { repo: None, .. }) => {
                Some("make the first commit with git (`git add`, `git commit`)".into())
            }
            Error::Git(GitError::NoCommitYet { repo: Some(_), .. }) => {
                Some("data is read from a commit of it: make one there first".into())
            }
            Error::Git(GitError::UnknownRev { .. }) => {
                Some("name a tag, a branch, a commit or an experiment (`git tag`, `git log --oneline`, `dvt exp list` list them)".into())
            }
            Error::Path(PathError::NotTracked {
                target,
                holds_tracked: true,
                ..
            }) if target == "." => Some(format!(
                "leave the target out to name all the data (as `-R {}` does)",
                typed("")
            )),
            Error::Path(PathError::NotTracked {
                target,
                holds_tracked: true,
                ..
            }) => Some(format!(
                "data is tracked below `{}`: `-R` names all of it (status, checkout, push, fetch, pull, commit, update), as DVC's",
                typed(target)
            )),
            Error::Path(PathError::PipelineOut { stage, .. }) => Some(format!(
                "a stage's outs are what `dvt.toml` names: edit its `outs` there, or `dvt remove {stage}` removes \
                 the stage (with `--outs`, its outs too)"
            )),
            Error::Path(PathError::NotTracked {
                closest: Some(closest), ..
            }) => Some(format!("did you mean `{}`?", typed(closest))),
            Error::Git(GitError::NotTrackedAt {
                closest: Some(closest), ..
            }) => Some(format!("did you mean `{}`?", typed(closest))),
            Error::Git(GitError::NotTrackedAt { .. }) => Some(
                "name a path a `.dvt` pointer tracks there, or a file inside a tracked directory".into(),
            ),
            Error::Git(GitError::NoSuchPath { .. }) => Some(
                "`dvt list REPO DIR` shows what a directory holds; paths are relative to the repository's root".into(),
            ),
            Error::Git(GitError::NotCommitted { pointer, .. }) => Some(format!(
                "commit `{pointer}` with git (`git add`, `git commit`); `dvt tag` then makes that commit a data version"
            )),
            Error::Git(GitError::UnsupportedFormat { format, .. }) => Some(match format {
                GitFormat::Reftable => "convert its refs to files, with nothing else changed: `git refs migrate --ref-format=files` \
                                        (git 2.48 or newer; 2.46 and 2.47 refuse a repository with reflogs)"
                    .into(),
                GitFormat::Sha256 => "dvt needs a repository of SHA-1 object ids (`git init` without `--object-format=sha256`)".into(),
            }),
            // A git server asking for a login that gix has not got.
            Error::Git(GitError::Failed { what, message })
                if reaching_a_server(what)
                    && (message.contains("obtain credentials") || message.contains("refuses to use a given identity")) =>
            {
                Some(
                    "give dvt a login as you give git one: a credential helper in your git config \
                     (`credential.helper`, e.g. `gh auth setup-git`), ~/.netrc \
                     (`machine HOST login USER password TOKEN`) or the URL (`https://USER:TOKEN@HOST/PATH`), \
                     over https only; or use an ssh URL, which your ssh keys open"
                        .into(),
                )
            }
            Error::Git(GitError::Failed { what, message })
                if reaching_a_server(what) && message.contains("UnknownIssuer") =>
            {
                Some("a private CA signed the server's certificate: set `SSL_CERT_FILE` to a bundle that holds it".into())
            }
            Error::Git(GitError::NotInPartialClone { remote, .. }) => Some(format!(
                "fetch history's small files once, big ones still left out: `git config remote.{remote}.partialclonefilter \
                 blob:limit=1m && git fetch --refetch {remote}` (a dvt repository's git history is pointers and code)"
            )),
            Error::Git(GitError::NoIdentity) => {
                Some("set it with `git config user.name NAME` and `git config user.email EMAIL`".into())
            }
            Error::Git(GitError::NoGit { .. }) => {
                Some("revisions need git: this dvt repository is not inside a git work tree".into())
            }
            _ => None,
        }
    }
}

/// Errors about pipelines: `dvt.toml`, `dvt.lock`, params, running stages.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// `dvt.toml` is malformed.
    #[error("invalid `{file}`{}: {message}", stage.as_ref().map(|s| format!(", stage `{s}`")).unwrap_or_default())]
    Invalid {
        /// The file.
        file: String,
        /// The stage, when the problem is in one.
        stage: Option<String>,
        /// What is wrong.
        message: String,
    },
    /// No `dvt.toml`.
    #[error("no pipeline: `dvt.toml` does not exist")]
    NoPipeline,
    /// A stage name that `dvt.toml` does not define.
    #[error("no stage named `{name}` in `dvt.toml`")]
    UnknownStage {
        /// The name.
        name: String,
        /// The stages defined.
        known: Vec<String>,
    },
    /// Two stages produce the same path (or one inside the other).
    #[error("invalid `dvt.toml`: out `{out}` is claimed by stages `{}` and `{}`", stages[0], stages[1])]
    OutConflict {
        /// The path.
        out: String,
        /// The two stages.
        stages: Vec<String>,
    },
    /// A stage's out is data a pointer tracks, inside it, or holding it.
    #[error("{}", out_tracked_message(stage, out, tracked, pointer))]
    OutTracked {
        /// The stage.
        stage: String,
        /// Its out.
        out: String,
        /// The pointer's data path.
        tracked: String,
        /// The pointer file.
        pointer: String,
    },
    /// A stage one of whose deps is, holds or lies inside one of its outs: it
    /// would depend on what it writes.
    #[error(
        "invalid `dvt.toml`, stage `{stage}`: dep `{dep}` and out `{out}` overlap (it would depend on what it writes)"
    )]
    OwnOut {
        /// The stage.
        stage: String,
        /// The dep.
        dep: String,
        /// The out.
        out: String,
    },
    /// Stages that depend on each other in a circle.
    #[error("invalid `dvt.toml`: the stages form a cycle: {}", stages.join(" -> "))]
    Cycle {
        /// The cycle, first stage repeated at the end.
        stages: Vec<String>,
    },
    /// A dep that does not exist and no stage produces.
    #[error("stage `{stage}` (in `dvt.toml`): dependency `{dep}` does not exist and no stage produces it")]
    MissingDep {
        /// The stage.
        stage: String,
        /// The dep.
        dep: String,
    },
    /// A params file that does not exist.
    #[error("stage `{stage}` (in `dvt.toml`): params file `{file}` does not exist (it should hold `{key}`)")]
    NoParamsFile {
        /// The stage.
        stage: String,
        /// The params file.
        file: String,
        /// The key it should hold.
        key: String,
    },
    /// A param key missing from its file.
    #[error("stage `{stage}` (in `dvt.toml`): param `{key}` is not in `{file}`")]
    UnknownParam {
        /// The stage.
        stage: String,
        /// The params file.
        file: String,
        /// The key.
        key: String,
    },
    /// A params or metrics file that does not parse, or that `-S` cannot edit.
    #[error("`{file}`: {message}")]
    ParamsFile {
        /// The file.
        file: String,
        /// What is wrong.
        message: String,
    },
    /// A metrics or params file named on the command line that is nowhere.
    #[error("`{file}` does not exist {whence}")]
    ValuesFileMissing {
        /// The file, repo-relative.
        file: String,
        /// Where it was looked for: "in the workspace", "at HEAD or in the workspace".
        whence: String,
    },
    /// `repro -R` or `stage list -R` of what holds no stage.
    #[error("no stage runs in `{dir}` or below it (`-R` takes directories: the stages whose `wdir` is there)")]
    NoStagesBelow {
        /// The target, as given.
        dir: String,
    },
    /// `metrics -R` of a directory with no metrics file below it.
    #[error("`{dir}` holds no metrics file (`.json`, `.yaml`, `.yml`, `.toml`) below it")]
    NoMetricsBelow {
        /// The directory, repo-relative.
        dir: String,
    },
    /// `repro -i`: the user said no to running a stage.
    #[error("stopped before stage `{stage}`: not confirmed (`-i`); the stages before it are recorded")]
    Declined {
        /// The stage.
        stage: String,
    },
    /// A metrics, params or plots file that is a directory.
    #[error("`{file}` is a directory; name a file in it")]
    NotAFile {
        /// The path, repo-relative.
        file: String,
    },
    /// `dvt exp` refused.
    #[error("{message}")]
    Experiment {
        /// What is wrong, and what to do.
        message: String,
    },
    /// `dvt plots --html-template FILE`: the page has no place for the charts.
    #[error("the page template `{}` has no `{{plot_divs}}`: put it where the charts go", file.display())]
    PageTemplate {
        /// The template.
        file: PathBuf,
    },
    /// A plots file that cannot be drawn.
    #[error("plots file `{file}`{}: {message}", rev.as_ref().map(|r| format!(" at {r}")).unwrap_or_default())]
    Plot {
        /// The file, repo-relative.
        file: String,
        /// The revision it was read at (`None`: the workspace).
        rev: Option<String>,
        /// What is wrong.
        message: String,
    },
    /// A stage command that failed.
    #[error("stage `{stage}` failed: `{cmd}` {status}; its entry in `dvt.lock` is unchanged")]
    StageFailed {
        /// The stage.
        stage: String,
        /// The command.
        cmd: String,
        /// How it ended.
        status: String,
    },
    /// A stage that ran but did not produce an out.
    #[error("stage `{stage}` ran but did not produce its out `{out}`; its entry in `dvt.lock` is unchanged")]
    OutMissing {
        /// The stage.
        stage: String,
        /// The out.
        out: String,
    },
    /// `commit` of a stage whose inputs are not those `dvt.lock` records.
    #[error("stage `{stage}` is not committed: {why}, so its outs may not be what its command makes of its inputs")]
    CommitChanged {
        /// The stage.
        stage: String,
        /// The first difference ("dep `x` changed since `dvt.lock` was written").
        why: String,
    },
    /// `commit` of a stage whose out does not exist.
    #[error("stage `{stage}` is not committed: its out `{out}` does not exist")]
    CommitOutMissing {
        /// The stage.
        stage: String,
        /// The out.
        out: String,
    },
    /// `dvt.lock` is malformed.
    #[error("invalid lock file `{}`: {message}", file.display())]
    Lock {
        /// The file.
        file: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// `stage add` of a name that exists.
    #[error("stage `{name}` already exists in `dvt.toml` (use `--force` to replace it)")]
    StageExists {
        /// The name.
        name: String,
    },
}

/// Reasons `dvt tag` refuses.
#[derive(Debug, thiserror::Error)]
pub enum TagError {
    /// HEAD has no commit.
    #[error("there is no commit to tag yet")]
    NoCommit,
    /// Pointer files differ from HEAD.
    #[error("{} not committed:\n{}", crate::counted(pointers.len(), "pointer file"), list(pointers))]
    Uncommitted {
        /// The pointer files.
        pointers: Vec<String>,
    },
    /// Objects missing from the remote.
    #[error("not on remote `{remote}`: {} that HEAD's pointers name:\n{}", crate::counted(missing.len(), "object"), list(missing))]
    NotOnRemote {
        /// The remote.
        remote: String,
        /// `path (id)` of each missing object.
        missing: Vec<String>,
    },
    /// The tag was made, and `tag --push` could not push it.
    #[error("tag `{name}` is made here, but not pushed to `{git_remote}`: {reason}")]
    NotPushed {
        /// The tag.
        name: String,
        /// The git remote, as given.
        git_remote: String,
        /// Why.
        reason: String,
    },
}

/// Reasons `dvt artifacts` refuses.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    /// Not a name `[artifacts.NAME]` may have.
    #[error("`{name}` is not an artifact name")]
    BadName {
        /// The name given.
        name: String,
    },
    /// Not a name a stage (`NAME#STAGE#N`) may have.
    #[error("`{stage}` is not a stage name (letters, digits, `-`, `_`)")]
    BadStage {
        /// The stage given.
        stage: String,
    },
    /// `dvt.toml` of the repository has no `[artifacts.NAME]`.
    #[error("`dvt.toml` of `{repo}` names no artifact `{name}` ({})", match known.is_empty() {
        true => "it has no `[artifacts.NAME]`".to_string(),
        false => format!("it has: {}", known.join(", ")),
    })]
    Unknown {
        /// The name asked for.
        name: String,
        /// The repository, as given.
        repo: String,
        /// The artifacts it names.
        known: Vec<String>,
    },
    /// No tag `NAME@VERSION`.
    #[error(
        "artifact `{name}` has no version {version} (no tag `{name}@{version}`); {}",
        versions_of(known)
    )]
    NoVersion {
        /// The artifact.
        name: String,
        /// The version asked for (`v1.2.0`).
        version: String,
        /// The versions it has, newest first.
        known: Vec<String>,
    },
    /// No tag `NAME#STAGE#N`.
    #[error("artifact `{name}` has never been in stage `{stage}` (no tag `{name}#{stage}#N`)")]
    NeverInStage {
        /// The artifact.
        name: String,
        /// The stage.
        stage: String,
    },
    /// `assign` with no version given, and none tagged.
    #[error("artifact `{name}` has no version to assign: tag one first (`dvt tag {name}@v1.0.0`)")]
    NoVersionToAssign {
        /// The artifact.
        name: String,
    },
}

fn versions_of(known: &[String]) -> String {
    match known.is_empty() {
        true => "it has no version tags".into(),
        false => format!("its versions: {}", known.join(", ")),
    }
}

/// Errors about git: revisions, files at a revision, tags, hooks.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// The dvt repository is not inside a git work tree.
    #[error("`{}` is not inside a git work tree", root.display())]
    NoGit {
        /// The dvt root.
        root: PathBuf,
    },
    /// A revision that does not name a commit.
    #[error("unknown revision `{rev}`: {message}")]
    UnknownRev {
        /// The revision as given.
        rev: String,
        /// What git said.
        message: String,
    },
    /// HEAD (or the branch it names) before the repository's first commit.
    #[error("`{rev}` names no commit: {} has none yet", .repo.as_ref().map_or("the repository".to_string(), |r| format!("the repository `{r}`")))]
    NoCommitYet {
        /// The revision as given.
        rev: String,
        /// Another repository read (`import`, `get`), as given; `None` for this one.
        repo: Option<String>,
    },
    /// A path that no pointer covers at a revision.
    #[error("`{path}` is not tracked by dvt {}", at(.rev))]
    NotTrackedAt {
        /// The path asked for.
        path: String,
        /// The revision (or `the workspace`).
        rev: String,
        /// Inside a tracked directory: the file of it the path most likely
        /// misspells, if any.
        closest: Option<String>,
    },
    /// A path that neither git nor dvt has at a revision.
    #[error("`{path}` does not exist {}", at(.rev))]
    NoSuchPath {
        /// The path asked for.
        path: String,
        /// The revision.
        rev: String,
    },
    /// A path git keeps, where only data on a remote has an answer (`get --show-url`).
    #[error("`{path}` is kept by git {}, not by dvt: it has no URL on a remote (`dvt get` downloads it)", at(.rev))]
    KeptByGit {
        /// The path asked for.
        path: String,
        /// The revision.
        rev: String,
    },
    /// A path that names a directory inside a tracked directory where a file is needed.
    #[error("`{path}` is a directory {}; name a file inside it", at(.rev))]
    IsDirectory {
        /// The path asked for.
        path: String,
        /// The revision (or `the workspace`).
        rev: String,
    },
    /// Data tracked in the workspace whose pointer no commit holds yet.
    #[error("`{path}` has no version in git yet: `{pointer}`, which tracks it here, is not committed")]
    NotCommitted {
        /// The path asked for.
        path: String,
        /// The pointer file (or `dvt.lock`) that tracks it, repo-relative.
        pointer: String,
    },
    /// A repository in a format gix, dvt's git library, cannot read.
    #[error("the git repository at `{}` uses {format}, which dvt's git library (gix) cannot read yet", path.display())]
    UnsupportedFormat {
        /// The directory that was opened.
        path: PathBuf,
        /// The format.
        format: GitFormat,
    },
    /// An object a partial clone (`git clone --filter=…`) left on its promisor
    /// remote: git fetches such objects when it needs them, dvt cannot.
    #[error(
        "{what}: this partial clone left it on `{remote}` (`git clone --filter`), and dvt cannot fetch it as git does"
    )]
    NotInPartialClone {
        /// What was being read.
        what: String,
        /// The promisor remote that has it.
        remote: String,
    },
    /// No `user.name`/`user.email` for a tag.
    #[error("git does not know who you are (no user.name / user.email) to sign the tag")]
    NoIdentity,
    /// A name git does not take for a branch or tag (`git check-ref-format`).
    #[error("`{name}` cannot name a git {kind}: {why}")]
    BadRefName {
        /// `branch` or `tag`.
        kind: &'static str,
        /// The name as given.
        name: String,
        /// What git's rules say of it.
        why: String,
    },
    /// A tag of that name exists.
    #[error("tag `{name}` already exists")]
    TagExists {
        /// The tag.
        name: String,
    },
    /// A pre-commit framework config dvt cannot edit.
    #[error("`{path}`: {problem}; add these lines to its `repos` yourself:\n{block}")]
    PreCommitConfig {
        /// The config file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
        /// dvt's hooks, as they would have been added.
        block: String,
    },
    /// Any other failure reading or writing git.
    #[error("git: {what}: {message}")]
    Failed {
        /// What was being done.
        what: String,
        /// What gix reported.
        message: String,
    },
}

/// A git repository format dvt cannot read (see [`GitError::UnsupportedFormat`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GitFormat {
    /// Refs kept in reftable (`git init --ref-format=reftable`).
    Reftable,
    /// SHA-256 object ids (`git init --object-format=sha256`).
    Sha256,
}

impl std::fmt::Display for GitFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            GitFormat::Reftable => "reftable to store its refs (`--ref-format=reftable`)",
            GitFormat::Sha256 => "SHA-256 object ids (`--object-format=sha256`)",
        })
    }
}

/// Errors about remotes: their configuration and transfers to and from them.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// A pointer's `remote` names a remote that is not configured.
    #[error("{pointer} says its data is on remote `{name}` (`remote = \"{name}\"`), which is not configured{}",
        match known.is_empty() {
            true => String::new(),
            false => format!(" (there are: {})", known.join(", ")),
        })]
    NamedByPointer {
        /// Who says so: the pointer file (`` `data.dvt` ``), or the out of
        /// `dvt.toml` (`` `dvt.toml` (out `model.bin`) ``).
        pointer: String,
        /// The remote it names.
        name: String,
        /// The names that are configured.
        known: Vec<String>,
    },
    /// No remote by that name.
    #[error("no remote named `{name}`")]
    Unknown {
        /// The name asked for.
        name: String,
        /// The names that are configured.
        known: Vec<String>,
    },
    /// No `-r NAME` and no default remote.
    #[error("no remote given and no default remote is set")]
    NoDefault {
        /// The names that are configured.
        known: Vec<String>,
    },
    /// `remote add` of a name that exists.
    #[error("a remote named `{name}` already exists (use `--force` to replace it)")]
    Exists {
        /// The name.
        name: String,
    },
    /// A remote's configuration is invalid (bad name, URL, key or value).
    #[error("remote `{remote}`: {message}")]
    Config {
        /// The remote's name.
        remote: String,
        /// What is wrong.
        message: String,
    },
    /// An S3 remote's key id is set and its secret is not: the usual state
    /// of a fresh clone, as secrets are not committed.
    #[error(
        "remote `{remote}`: `access_key_id` is set but `secret_access_key` is not; {}",
        match .of_other_repo {
            false => format!(
                "secrets are not committed, so each clone sets its own: `dvt remote modify {remote} \
                 secret_access_key …` (kept in .dvt/config.local.toml)"
            ),
            true => "secrets are not committed: give it for this command with `--remote-config \
                     secret_access_key=…`, or in a file given with `--config` (`[remote.NAME]`)"
                .to_string(),
        }
    )]
    NoSecret {
        /// The remote's name.
        remote: String,
        /// Whether the remote is another repository's (`get`, `import`, `list`).
        of_other_repo: bool,
    },
    /// A `--remote-config` argument that is not `KEY=VALUE`.
    #[error("`{given}`: `{flag}` takes KEY=VALUE")]
    BadOption {
        /// The argument.
        given: String,
        /// The flag.
        flag: &'static str,
    },
    /// `import --remote-config` (or `import-url --fs-config`) of a secret,
    /// which the pointer would record.
    #[error(
        "`{key}` is a secret, and `{command}` records `{flag}` in the pointer file, which is committed: {}",
        match *flag {
            "--remote-config" => "put it in a file given with `--config` (only its path is recorded), or in the environment",
            _ => "give it in the environment, or import from `remote://NAME/path`, a remote whose secrets are in `.dvt/config.local.toml`",
        }
    )]
    SecretInPointer {
        /// The option.
        key: String,
        /// The command.
        command: &'static str,
        /// The flag that gave it.
        flag: &'static str,
    },
    /// A request to the remote failed (after retries).
    #[error("remote `{remote}`: {message}")]
    Request {
        /// The remote's name.
        remote: String,
        /// The operation and its cause, with secrets removed.
        message: String,
    },
    /// The remote was refused in a way that trying again cannot mend, and the
    /// message says what to do (so no hint follows): a server whose host key
    /// is not trusted; a plain web server asked to be written or listed, or
    /// one that ignores range requests or serves no usable `packs/list`.
    #[error("remote `{remote}`: {message}")]
    Refused {
        /// The remote's name.
        remote: String,
        /// What was refused and why, with secrets removed.
        message: String,
    },
    /// An object downloaded from the remote is damaged.
    #[error("remote `{remote}`: object {id} is corrupt ({reason}); it was not stored")]
    Corrupt {
        /// The remote's name.
        remote: String,
        /// The object.
        id: ObjectId,
        /// What was found wrong.
        reason: String,
    },
    /// An object is neither in the cache nor on the remote.
    #[error("remote `{remote}` does not have object {id}{}", for_path(path))]
    Missing {
        /// The remote's name.
        remote: String,
        /// The object.
        id: ObjectId,
        /// The workspace path that needed it, if known.
        path: Option<String>,
        /// The remote is a plain web server serving a copy of another store
        /// (which the copy may lag behind).
        served_copy: bool,
    },
    /// An object of another repository (read by `get`, `import`, `list`) is
    /// in neither its cache nor its remote.
    #[error(
        "the source repository's remote `{remote}` does not have object {id}{}",
        for_path(path)
    )]
    MissingInRead {
        /// The remote's name, in that repository's config.
        remote: String,
        /// The object.
        id: ObjectId,
        /// The path (in that repository) that needed it, if known.
        path: Option<String>,
    },
    /// An import's object is on neither the remote nor its source repository.
    #[error(
        "{} object {id}{}, and its source (`{}`) could not give it: {}",
        match remote {
            Some(r) => format!("remote `{r}` does not have"),
            None => "neither the cache nor a remote has".into(),
        },
        for_path(path),
        origin.0,
        origin.1
    )]
    MissingFromSource {
        /// The remote's name (`None`: there is no remote).
        remote: Option<String>,
        /// The object.
        id: ObjectId,
        /// The workspace path that needed it, if known.
        path: Option<String>,
        /// The source (repository or URL), as the pointer records it, and why it could
        /// not give the object (boxed: errors stay small).
        origin: Box<(String, String)>,
        /// Whether the import is another repository's (read by `get`, `import`, `cat`).
        read: bool,
    },
    /// What a reader that does not follow URLs (`list`, `du`, `diff`) needs of
    /// an import from a URL that nobody downloaded.
    #[error(
        "`{pointer}` was imported from `{url}` without being downloaded, and no remote has it: \
         `dvt pull` (or `get`, `import`, `cat`) reads it from there, `dvt ls-url {url}` lists it"
    )]
    NotDownloaded {
        /// The pointer file.
        pointer: String,
        /// The URL.
        url: String,
    },
    /// A fetch found other data at the URL an import's pointer records.
    #[error(
        "`{url}` is not what `{pointer}` imported from it any more ({why}): `dvt update` it to import \
         what is there now, or fetch it from a remote that has it"
    )]
    UrlChanged {
        /// The URL.
        url: String,
        /// The pointer file.
        pointer: String,
        /// What differs.
        why: String,
    },
    /// What `dvt import-url`, `update`, `ls-url` or `get-url URL` was to read cannot be.
    #[error("cannot read `{url}`: {message}")]
    Source {
        /// The URL as given.
        url: String,
        /// Why, with secrets removed.
        message: String,
    },
    /// What `dvt ls-url` was to list cannot be.
    #[error("cannot list `{url}`: {message}")]
    Unlisted {
        /// The URL as given.
        url: String,
        /// Why, with secrets removed.
        message: String,
    },
    /// The disk holding a directory remote is full: what failed to go there.
    #[error("remote `{remote}`: {message}")]
    Full {
        /// The remote's name.
        remote: String,
        /// Its directory.
        dir: PathBuf,
        /// The write that failed, and why.
        message: String,
    },
    /// A transfer not tried because an earlier request to the remote failed.
    #[error("not tried after an earlier request to the remote failed")]
    Skipped,
    /// Some transfers failed; the others completed.
    #[error(
        "{failed} of {total} transfer(s) with remote `{remote}` failed or were not tried; the first: {}",
        crate::error_chain(first)
    )]
    Transfer {
        /// The remote's name.
        remote: String,
        /// How many failed.
        failed: usize,
        /// How many were attempted.
        total: usize,
        /// The first failure.
        first: Box<Error>,
    },
}

/// Errors about the repository itself.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    /// No `.dvt` directory in the current directory or any parent.
    #[error("not a dvt repository (or any parent up to `/`): `{}`", start.display())]
    NotInitialized {
        /// Where the search started.
        start: PathBuf,
    },
    /// `dvt migrate` where there is no DVC project.
    #[error("`{}` holds no DVC project (no `.dvc` directory)", root.display())]
    NoDvcProject {
        /// The repository root.
        root: PathBuf,
    },
    /// `dvt init` ran twice.
    #[error("`{}` is already a dvt repository", root.display())]
    AlreadyInitialized {
        /// The repository root.
        root: PathBuf,
    },
    /// `dvt init` outside a git work tree.
    #[error("`{}` is not inside a git work tree", path.display())]
    NotGit {
        /// The directory given to init.
        path: PathBuf,
    },
    /// `dvt init` in a subdirectory of a git work tree.
    #[error("`{}` is not the root of its git work tree", path.display())]
    NotGitRoot {
        /// The directory given to init.
        path: PathBuf,
        /// The git work tree's root.
        root: PathBuf,
    },
    /// Opening the git repository failed.
    #[error("cannot read the git repository at `{}`", path.display())]
    Git {
        /// The directory given to init.
        path: PathBuf,
        /// What gix reported.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The config file does not parse.
    #[error("invalid config file `{}`: {message}", path.display())]
    Config {
        /// The config file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// `dvt config` was given a name that is not a setting.
    #[error("`{name}` is not a dvt setting")]
    UnknownSetting {
        /// The name given.
        name: String,
    },
    /// `dvt config` was given a value the setting cannot take, or asked for a change it refuses.
    #[error("`{name}`: {message}")]
    BadSetting {
        /// The setting.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// `dvt config NAME` or `--unset` of a setting that no config file sets.
    #[error("`{name}` is not set{}", in_file(file))]
    NotSet {
        /// The setting.
        name: String,
        /// The one file looked in, when the user chose it.
        file: Option<PathBuf>,
        /// What it is when unset, if it has a default.
        default: Option<String>,
    },
    /// `dvt config NAME` of a secret: dvt never prints one.
    #[error("`{name}` is a secret, and dvt does not print secrets; it is set in `{}`", file.display())]
    Secret {
        /// The setting.
        name: String,
        /// Where it is set.
        file: PathBuf,
    },
    /// This user may not write the cache's files (another user made them).
    #[error("you may not write to the cache `{}`: {message}", dir.display())]
    CacheDenied {
        /// The cache's directory.
        dir: PathBuf,
        /// The system's refusal, with the file it names.
        message: String,
    },
    /// A repository listed as sharing this cache cannot be read.
    #[error("cannot read `{}`, which shares this cache: {message}", root.display())]
    CacheUser {
        /// Its root.
        root: PathBuf,
        /// Why.
        message: String,
    },
    /// `gc` stopped, having deleted nothing: the pointers of a revision it
    /// keeps cannot be read (a malformed pointer file, a directory's manifest
    /// in neither the cache nor the remote), so what they reference cannot be
    /// known.
    #[error("gc stopped before deleting anything: the pointers of revision {rev} cannot be read: {message}")]
    GcRevision {
        /// The revision (short id).
        rev: String,
        /// Why, with the pointer it concerns.
        message: String,
    },
    /// `gc` stopped: a pointer of the workspace (or a stage's out in its
    /// `dvt.lock`) cannot be read, so what it keeps cannot be known.
    #[error("gc stopped before deleting anything: the workspace's pointers cannot be read: {message}")]
    GcWorkspace {
        /// Why, with the pointer it concerns.
        message: String,
    },
    /// Another process holds the repository's or the cache's lock.
    #[error("the {subject} is locked by another dvt process ({holder}); lock file `{}`", path.display())]
    Locked {
        /// "repository" or "cache".
        subject: &'static str,
        /// The lock file.
        path: PathBuf,
        /// Who holds it, as the holder wrote it.
        holder: String,
    },
}

/// Errors about the object cache.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// An object is not in the cache.
    #[error("object {id} is not in the cache{}", for_path(path))]
    Missing {
        /// The missing object.
        id: ObjectId,
        /// The workspace path that needed it, if known.
        path: Option<String>,
    },
    /// A directory's manifest is not in the cache, and looking for it
    /// elsewhere (the remote) failed.
    #[error("the manifest {id} of `{path}` is not in the cache, and {message}")]
    ManifestNowhere {
        /// The manifest.
        id: ObjectId,
        /// The tracked directory.
        path: String,
        /// Why looking elsewhere failed.
        message: String,
    },
    /// An object's bytes do not hash to its id, or it cannot be decoded.
    #[error("object {id} in the cache is corrupt{}: {reason}", for_path(path))]
    Corrupt {
        /// The damaged object.
        id: ObjectId,
        /// The workspace path that needed it, if known.
        path: Option<String>,
        /// What was found wrong.
        reason: String,
    },
    /// Writing data into the cache failed (a full disk, a read-only cache, ...).
    #[error("cannot store {what} in the cache")]
    Store {
        /// The data being stored, as the user named it.
        what: String,
        /// The failed write, naming the file.
        #[source]
        source: std::io::Error,
    },
    /// A file changed while it was being read into the cache.
    #[error("`{}` changed while it was being read; nothing was recorded for it", path.display())]
    ChangedWhileReading {
        /// The file.
        path: PathBuf,
    },
}

fn for_path(path: &Option<String>) -> String {
    match path {
        Some(p) => format!(" (needed for `{p}`)"),
        None => String::new(),
    }
}

/// Errors about pointer files and manifests.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// A pointer file is not valid.
    #[error("invalid pointer file `{}`: {message}", path.display())]
    Pointer {
        /// The pointer file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// A pointer file still holds git's conflict markers from a merge.
    #[error("`{}` has an unresolved git merge conflict (line {line})", path.display())]
    Conflict {
        /// The pointer file.
        path: PathBuf,
        /// The line of the first marker.
        line: usize,
    },
    /// A directory manifest is not valid.
    #[error("invalid directory manifest {id}: {message}")]
    Manifest {
        /// The manifest object.
        id: ObjectId,
        /// What is wrong with it.
        message: String,
    },
    /// A file was written by a newer format version.
    #[error("`{}` has format version {found}; this dvt reads version {supported}", path.display())]
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// The version in the file.
        found: i64,
        /// The version we support.
        supported: u32,
    },
}

/// Errors about a path the user named or a path found in the workspace.
#[derive(Debug, thiserror::Error)]
pub enum PathError {
    /// `--glob`: a pattern that matches nothing, or is no pattern.
    #[error("`{pattern}` {problem}")]
    Glob {
        /// The pattern as given.
        pattern: String,
        /// What is wrong: it matches nothing (and where it looked), or why it
        /// does not parse.
        problem: String,
    },
    /// The path does not exist.
    #[error("`{}` does not exist", path.display())]
    NotFound {
        /// The path as given.
        path: PathBuf,
    },
    /// `add -o` of a URL.
    #[error("`{url}` is a URL: `dvt add -o` copies local paths; `dvt import-url` downloads from URLs")]
    AddUrl {
        /// The URL.
        url: String,
    },
    /// `add -o` with more than one path.
    #[error("`-o` names where one path goes, and {count} were given: add them one at a time")]
    OutOfSeveral {
        /// How many paths were given.
        count: usize,
    },
    /// The path is outside the repository.
    #[error("`{}` is outside the repository `{}`", path.display(), root.display())]
    OutsideRepo {
        /// The path as given.
        path: PathBuf,
        /// The repository root.
        root: PathBuf,
    },
    /// The path is inside `.dvt` or `.git`, or is the repository root.
    #[error("`{}` cannot be tracked: {reason}", path.display())]
    Reserved {
        /// The path as given.
        path: PathBuf,
        /// Why.
        reason: &'static str,
    },
    /// `get` of a repository's root, with no `-o` to say where it goes.
    #[error("`{path}` is the whole repository: name the directory to write it to with `-o DIR`")]
    WholeRepoNeedsOut {
        /// The path as given.
        path: String,
    },
    /// A work-tree path that `cat` and `open` do not read: git's or dvt's own
    /// (other than the `.dvt` files git keeps).
    #[error("`{}` is inside `.git` or `.dvt`: dvt reads the repository's files, not git's or its own cache and settings", path.display())]
    Internal {
        /// The path, repo-relative.
        path: PathBuf,
    },
    /// The path is inside a directory that is already tracked.
    #[error("`{path}` is inside the tracked directory `{tracked}`")]
    InsideTracked {
        /// The path, relative to the repository root.
        path: String,
        /// The tracked directory, relative to the repository root.
        tracked: String,
    },
    /// Git tracks the path, or files below it.
    #[error("`{path}` is tracked by git (`{tracked}` is in git's index), so dvt cannot track it")]
    TrackedByGit {
        /// The path, relative to the repository root.
        path: String,
        /// The path git tracks: `path` itself or a file below it.
        tracked: String,
    },
    /// Git ignores the pointer file `add` would write, so it would never be
    /// committed and other clones would never see the data.
    #[error(
        "`{pointer}`, the pointer file for `{path}`, would be ignored by git (`{ignored}` is ignored), \
         so it could not be committed and no other clone would see the data"
    )]
    PointerIgnored {
        /// The data path, relative to the repository root.
        path: String,
        /// Its pointer file, relative to the repository root.
        pointer: String,
        /// What git ignores: the pointer file or a directory above it.
        ignored: String,
    },
    /// A path contains `..`, is absolute, or is otherwise not a plain relative path.
    #[error("unsafe path `{path}` in `{}`: {reason}", source_file.display())]
    Unsafe {
        /// The offending path as written.
        path: String,
        /// The file (pointer, manifest) it came from.
        source_file: PathBuf,
        /// Why it is rejected.
        reason: &'static str,
    },
    /// A path resolves through a symbolic link.
    #[error("{}; dvt does not follow links in tracked paths", symlink_subject(path, link))]
    Symlink {
        /// The path.
        path: PathBuf,
        /// The link on the way.
        link: PathBuf,
    },
    /// A file name is not valid UTF-8.
    #[error("`{}`: file names must be valid UTF-8", path.display())]
    NotUtf8 {
        /// The path, lossily shown.
        path: PathBuf,
    },
    /// Not a regular file or directory (socket, fifo, device).
    #[error("`{}` is not a regular file or directory", path.display())]
    Special {
        /// The path.
        path: PathBuf,
    },
    /// Two pointers (or a pointer and a stage's out) track one path, or one
    /// tracks a path inside the other's directory.
    #[error("{}", tracked_twice_message(path, by, inside, other_by))]
    TrackedTwice {
        /// The path one of them tracks, relative to the repository root.
        path: String,
        /// The pointer file (or `dvt.lock`) tracking `path`.
        by: String,
        /// The other's path: `path` itself, or a directory holding it.
        inside: String,
        /// The other pointer file.
        other_by: String,
    },
    /// A path to add overlaps a stage's out.
    #[error("{}", stage_out_message(path, out, stage))]
    StageOut {
        /// The path, relative to the repository root.
        path: String,
        /// The out.
        out: String,
        /// The stage.
        stage: String,
    },
    /// A directory to add already holds a pointer file.
    #[error("`{path}` contains the pointer file `{pointer}`: part of it is already tracked")]
    ContainsTracked {
        /// The directory, relative to the repository root.
        path: String,
        /// The pointer found inside, relative to the repository root.
        pointer: String,
    },
    /// A destination that exists (get, import).
    #[error("`{}` already exists; it is not overwritten", path.display())]
    Exists {
        /// The destination.
        path: PathBuf,
        /// The flag that would change that.
        flag: &'static str,
    },
    /// The destination of `dvt move` exists already.
    #[error("cannot move `{from}` to `{to}`: `{existing}` already exists")]
    MoveTargetExists {
        /// The tracked path, relative to the repository root.
        from: String,
        /// The destination, relative to the repository root.
        to: String,
        /// What is in the way: the destination or its pointer file.
        existing: String,
    },
    /// A `dvt move` that cannot be done as asked.
    #[error("cannot move `{from}` to `{to}`: {reason}")]
    BadMove {
        /// The tracked path, relative to the repository root.
        from: String,
        /// The destination, relative to the repository root.
        to: String,
        /// Why.
        reason: &'static str,
    },
    /// `update` of a pointer that is not an import.
    #[error("`{pointer}` was not made by `dvt import` or `dvt import-url`: there is nothing to update from")]
    NotImported {
        /// The pointer file.
        pointer: String,
    },
    /// `update -R` of directories holding no import.
    #[error("no data below {} was made by `dvt import` or `dvt import-url`: there is nothing to update", targets.iter().map(|t| format!("`{}`", t.display())).collect::<Vec<_>>().join(", "))]
    NoImportsBelow {
        /// The targets as given.
        targets: Vec<PathBuf>,
    },
    /// `update --rev` of data imported from a URL.
    #[error("`{pointer}` was imported from a URL, which has no revisions: drop `--rev`")]
    RevOfUrlImport {
        /// The pointer file.
        pointer: String,
    },
    /// `update --to-remote` of data imported from a dvt repository.
    #[error("`{pointer}` was imported from a dvt repository: `--to-remote` applies to imports from URLs")]
    ToRemoteOfRepoImport {
        /// The pointer file.
        pointer: String,
    },
    /// `commit` of data made by `dvt import` or `dvt import-url`.
    #[error("`{pointer}` was made by `dvt import` or `dvt import-url`: `dvt update` changes it, not `dvt commit`")]
    CommitImport {
        /// The pointer file.
        pointer: String,
    },
    /// A target inside a tracked directory names nothing the directory records.
    #[error("`{target}` is not in the tracked directory `{tracked}` as `{pointer}` records it")]
    NotInTrackedDir {
        /// The target, relative to the repository root.
        target: String,
        /// The tracked directory, relative to the repository root.
        tracked: String,
        /// The pointer file that records it.
        pointer: String,
    },
    /// A target inside a tracked directory, for a command that takes whole paths.
    #[error(
        "`{target}` is inside the tracked directory `{tracked}`; this command takes whole tracked paths: name `{tracked}`"
    )]
    WholeOnly {
        /// The target, relative to the repository root.
        target: String,
        /// The tracked directory, relative to the repository root.
        tracked: String,
    },
    /// A target names nothing that dvt tracks.
    #[error("{}", not_tracked(target))]
    NotTracked {
        /// The target as given.
        target: String,
        /// Whether it is a directory with tracked data below it.
        holds_tracked: bool,
        /// The tracked data path it most likely misspells, if any.
        closest: Option<String>,
    },
    /// A target a command takes as a pointer's that is a stage's out.
    #[error("`{target}` is an out of stage `{stage}` (`dvt.lock` records it), not data a `.dvt` pointer tracks")]
    PipelineOut {
        /// The target as given.
        target: String,
        /// The stage that writes it.
        stage: String,
    },
}

/// Errors while making the workspace match the pointers.
#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    /// Files whose content differs from the pointers would be overwritten or deleted.
    #[error(
        "checkout would overwrite or delete {} with changes not recorded in a pointer:\n{}",
        files_and_dirs(paths),
        list(paths)
    )]
    Conflicts {
        /// The affected paths, relative to the repository root.
        paths: Vec<String>,
    },
    /// `remove --outs` would delete files whose content the cache lacks.
    #[error("`dvt remove --outs` would delete {} with changes not recorded in a pointer, which the cache does not hold:\n{}", crate::counted(paths.len(), "file"), list(paths))]
    RemoveUnrecorded {
        /// The affected paths, relative to the repository root.
        paths: Vec<String>,
    },
    /// A file goes where a directory holds files a `.dvtignore` leaves out,
    /// which checkout does not delete.
    #[error(
        "`{path}` is a directory holding files that a `.dvtignore` leaves out (`{example}`), where the pointer has a file: move them away (or delete them), then check out again"
    )]
    IgnoredInTheWay {
        /// The directory, relative to the repository root.
        path: String,
        /// One file in it, relative to the repository root.
        example: String,
    },
    /// Some paths could not be restored; the others were.
    #[error("{} could not be checked out:\n{}", crate::counted(failures.len(), "path"), failures.iter().map(|f| format!("  {f}")).collect::<Vec<_>>().join("\n"))]
    Incomplete {
        /// One message per failed path.
        failures: Vec<String>,
        /// Whether any of them failed because the disk is full.
        disk_full: bool,
    },
}

/// How many of `paths` are files and how many empty directories (named with a
/// trailing `/`): `2 files`, `1 empty directory`, `1 file and 2 empty directories`.
fn files_and_dirs(paths: &[String]) -> String {
    let dirs = paths.iter().filter(|p| p.ends_with('/')).count();
    let files = paths.len() - dirs;
    let dirs_text = match dirs {
        1 => "1 empty directory".to_string(),
        n => format!("{n} empty directories"),
    };
    match (files, dirs) {
        (_, 0) => crate::counted(files, "file"),
        (0, _) => dirs_text,
        _ => format!("{} and {dirs_text}", crate::counted(files, "file")),
    }
}

fn list(paths: &[String]) -> String {
    const SHOWN: usize = 20;
    let mut out: Vec<String> = paths.iter().take(SHOWN).map(|p| format!("  {p}")).collect();
    if paths.len() > SHOWN {
        out.push(format!("  … and {} more", paths.len() - SHOWN));
    }
    out.join("\n")
}

/// A TOML parser's `message`, prefixed with where in `text` it applies
/// (`line 3, column 7: …`) when the parser knows the place.
pub(crate) fn toml_message(text: &str, span: Option<std::ops::Range<usize>>, message: &str) -> String {
    if let Some(line) = conflict_line(text) {
        return format!(
            "line {line}: unresolved git merge conflict: keep one side and delete the `<<<<<<<`, `=======` and `>>>>>>>` lines"
        );
    }
    let message = message.trim_end();
    let Some(at) = span.map(|s| s.start.min(text.len())) else {
        return message.to_string();
    };
    let before = &text.as_bytes()[..at];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let column = String::from_utf8_lossy(&before[line_start..]).chars().count() + 1;
    format!("line {line}, column {column}: {message}")
}

/// ` in `FILE`` when a file is named.
fn in_file(file: &Option<PathBuf>) -> String {
    file.as_ref()
        .map(|f| format!(" in `{}`", f.display()))
        .unwrap_or_default()
}

/// The line (from 1) of the first git conflict marker in `text`, if any.
pub(crate) fn conflict_line(text: &str) -> Option<usize> {
    let marker = |l: &str, m: &str| {
        l.strip_prefix(m)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(' '))
    };
    text.lines()
        .position(|l| marker(l, "<<<<<<<") || marker(l, ">>>>>>>") || l == "=======" || marker(l, "|||||||"))
        .map(|i| i + 1)
}

impl crate::Error {
    /// The same error with the workspace paths it names (a link, a special file, a
    /// name that is not UTF-8) made relative to `root`, the repository root, as the
    /// other errors name them.
    pub(crate) fn relative_to(self, root: &std::path::Path) -> Self {
        let rel = |p: PathBuf| p.strip_prefix(root).map(std::path::Path::to_path_buf).unwrap_or(p);
        match self {
            crate::Error::Path(PathError::Symlink { path, link }) => PathError::Symlink {
                path: rel(path),
                link: rel(link),
            }
            .into(),
            crate::Error::Path(PathError::Special { path }) => PathError::Special { path: rel(path) }.into(),
            crate::Error::Path(PathError::NotUtf8 { path }) => PathError::NotUtf8 { path: rel(path) }.into(),
            e => e,
        }
    }
}

/// What [`PathError::Symlink`] says about the link: the path is one, or leads through one.
fn symlink_subject(path: &std::path::Path, link: &std::path::Path) -> String {
    if path == link {
        format!("`{}` is a symbolic link", path.display())
    } else {
        format!(
            "`{}` goes through the symbolic link `{}`",
            path.display(),
            link.display()
        )
    }
}

/// Whether a request's error is from asking a cloud's instance metadata
/// service for credentials (AWS's IMDS, Azure's managed identity, GCE's
/// metadata server): object_store's last resort when none were configured.
fn asked_instance_metadata(message: &str) -> bool {
    [
        "/latest/api/token",
        "/latest/meta-data/",
        "/metadata/identity/oauth2/token",
        "/computeMetadata/v1/",
    ]
    .iter()
    .any(|path| message.contains(path))
}

fn tracked_twice_message(path: &str, by: &str, inside: &str, other_by: &str) -> String {
    if path == inside {
        format!("`{path}` is tracked twice: by `{by}` and by `{other_by}`")
    } else {
        format!("`{path}` (tracked by `{by}`) is inside `{inside}`, which `{other_by}` tracks")
    }
}

/// How `a` and `b`, two overlapping paths, lie: "holds", "is inside" or "is".
fn overlap_verb(a: &str, b: &str) -> &'static str {
    if a == b {
        "is"
    } else if a.starts_with(b) {
        "is inside"
    } else {
        "holds"
    }
}

fn out_tracked_message(stage: &str, out: &str, tracked: &str, pointer: &str) -> String {
    match overlap_verb(out, tracked) {
        "is" => format!("stage `{stage}`'s out `{out}` is tracked by `{pointer}` too"),
        verb => format!("stage `{stage}`'s out `{out}` {verb} `{tracked}`, which `{pointer}` tracks"),
    }
}

fn stage_out_message(path: &str, out: &str, stage: &str) -> String {
    match overlap_verb(path, out) {
        "is" => format!("`{path}` is an out of stage `{stage}`"),
        verb => format!("`{path}` {verb} `{out}`, an out of stage `{stage}`"),
    }
}

/// Whether a git failure's `what` is a clone or fetch from a git server.
fn reaching_a_server(what: &str) -> bool {
    what.starts_with("cloning") || what.starts_with("fetching")
}

/// What `PathError::NotTracked` says: the repository's root (`.`) is never
/// tracked data, so its message names no pointer file.
fn not_tracked(target: &str) -> String {
    if target == "." {
        "the repository's root is not tracked data: a target names a `.dvt` pointer or the data it tracks".into()
    } else {
        format!("`{target}` is not tracked by dvt (no `{target}.dvt` pointer file)")
    }
}

/// Where a path was looked for, as messages say it: `in the workspace`, or
/// `` at `v1` (1a2b3c4) `` for a revision.
fn at(rev: &str) -> String {
    if rev == "the workspace" {
        "in the workspace".to_string()
    } else {
        format!("at {rev}")
    }
}
