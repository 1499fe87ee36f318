//! Everything that reads or writes git goes through this module, with gix: finding
//! the work tree, resolving revisions, reading files at a revision, refs and tags,
//! history walks, the hooks folder. No `git` process is ever started.

use std::path::{Path, PathBuf};

pub use gix::ObjectId as GitId;
use gix::bstr::ByteSlice;
use std::os::unix::ffi::OsStrExt;

use crate::error::{GitError, GitFormat, RepoError, Result};

pub mod login;
mod send;
mod share;
pub use send::RefPush;
pub use share::{RefUpdate, RemoteExperiment};

/// The root of the git work tree containing `dir`, or `None` outside any git
/// work tree (or in a bare repository).
pub fn work_tree_root(dir: &Path) -> Result<Option<PathBuf>> {
    use gix::discover::upwards::Error as E;
    match gix::discover::upwards(dir) {
        Ok((path, _trust)) => Ok(path.into_repository_and_work_tree_directories().1),
        Err(e) => match e.downcast_any_ref::<E>() {
            Some(
                E::NoGitRepository { .. } | E::NoGitRepositoryWithinCeiling { .. } | E::NoGitRepositoryWithinFs { .. },
            ) => Ok(None),
            _ => Err(RepoError::Git {
                path: dir.to_path_buf(),
                source: e.to_string().into(),
            }
            .into()),
        },
    }
}

/// Every file of the work tree at `workdir` that git does not ignore,
/// work-tree-relative and `/`-separated, in walk order. `.git` is not entered,
/// nor a directory with a `.git` of its own: another repository (a submodule),
/// whose files are not this one's.
fn work_tree_files(workdir: &Path, what: &str) -> Result<Vec<String>> {
    let walk = ignore::WalkBuilder::new(workdir)
        .hidden(false)
        .ignore(false)
        .parents(false)
        .require_git(false)
        .follow_links(false)
        .filter_entry(|e| {
            e.file_name() != ".git"
                && !(e.depth() > 0 && e.file_type().is_some_and(|t| t.is_dir()) && e.path().join(".git").exists())
        })
        .build();
    let mut out = Vec::new();
    for entry in walk {
        let entry = entry.map_err(|e| GitError::Failed {
            what: what.into(),
            message: e.to_string(),
        })?;
        if entry.file_type().is_none_or(|t| t.is_dir()) {
            continue;
        }
        let rel = entry.path().strip_prefix(workdir).unwrap_or(entry.path());
        out.push(utf8_name(rel, what)?.to_string());
    }
    Ok(out)
}

/// `rel` as text; a name that is not UTF-8 is refused ([`not_utf8`]).
fn utf8_name<'a>(rel: &'a Path, what: &str) -> Result<&'a str> {
    rel.to_str().ok_or_else(|| not_utf8(rel, what))
}

/// The error for a work-tree file whose name is not UTF-8: refused, naming
/// it, rather than left out of a commit (which would delete the file from
/// what the commit records).
fn not_utf8(rel: &Path, what: &str) -> crate::Error {
    GitError::Failed {
        what: what.into(),
        message: format!(
            "`{}`: the name is not UTF-8, which dvt cannot record: rename it, or add it to .gitignore",
            rel.display()
        ),
    }
    .into()
}

/// Warns that `name`, below `dir` of a commit's tree, is left out of a
/// listing (and so of `get` and `list`): paths here are text, and it is not UTF-8.
fn left_out_name(dir: &str, name: &gix::bstr::BStr) {
    let name = name.to_str_lossy();
    match dir.trim_end_matches('/') {
        "" => tracing::warn!("`{name}` is left out: its name is not UTF-8"),
        dir => tracing::warn!("`{dir}/{name}` is left out: its name is not UTF-8"),
    }
}

/// When `dir` is inside a linked git worktree (`git worktree add`), the
/// directory in the main worktree that corresponds to it; `None` otherwise (a
/// main worktree, a bare main repository, or no git at all). Costs a few stats
/// outside linked worktrees, where `.git` is a directory.
pub fn in_main_worktree(dir: &Path) -> Option<PathBuf> {
    let top = dir.ancestors().find(|d| d.join(".git").symlink_metadata().is_ok())?;
    if !top.join(".git").symlink_metadata().ok()?.is_file() {
        return None;
    }
    let repo = gix::open(top).ok()?;
    if repo.kind() != gix::repository::Kind::LinkedWorkTree {
        return None;
    }
    let main = repo.main_repo().ok()?;
    let main_top = main.workdir()?;
    Some(main_top.join(dir.strip_prefix(top).ok()?))
}

/// Whether HOW of [`Git::last_move`] switched branch or commit, or merged
/// ([`Git::last_switch`]), rather than reset, cherry-picked or reverted.
pub fn is_switch(how: &str) -> bool {
    matches!(how, "checkout" | "merge" | "pull")
}

/// Those of `rels` (relative to the dvt root `root`) at or below which git's
/// index holds a file; none outside a git work tree. Reads the index file alone,
/// without opening the repository (`status` runs this every time).
pub fn indexed_among<'a>(root: &Path, rels: &[&'a str]) -> Result<Vec<&'a str>> {
    if rels.is_empty() {
        return Ok(Vec::new());
    }
    let Ok((path, _trust)) = gix::discover::upwards(root) else {
        return Ok(Vec::new());
    };
    let (git_dir, Some(work)) = path.into_repository_and_work_tree_directories() else {
        return Ok(Vec::new());
    };
    let Some(prefix) = tree_prefix(root, &work) else {
        return Ok(Vec::new());
    };
    // Its checksum is not verified (a large index costs milliseconds to hash).
    let index = gix::index::File::at_or_default(
        git_dir.join("index"),
        gix::hash::Kind::Sha1,
        true,
        gix::index::decode::Options::default(),
    )
    .map_err(|e| GitError::Failed {
        what: "reading git's index".into(),
        message: crate::error_chain(&e),
    })?;
    Ok(rels
        .iter()
        .copied()
        .filter(|rel| first_indexed(&index, &format!("{prefix}{rel}")).is_some())
        .collect())
}

/// The entry of `index` at `path` (from the work tree's root) or, failing that,
/// the first one below it.
fn first_indexed<'i>(index: &'i gix::index::File, path: &str) -> Option<&'i gix::index::Entry> {
    index.entry_by_path(path.as_bytes().as_bstr()).or_else(|| {
        index
            .prefixed_entries(format!("{path}/").as_bytes().as_bstr())
            .and_then(|entries| entries.first())
    })
}

/// Where `root` is in the work tree `work`: `/`-terminated, or empty at its
/// root; `None` if it is not inside it.
fn tree_prefix(root: &Path, work: &Path) -> Option<String> {
    let canon = |p: &Path| fs_err::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let rel = canon(root).strip_prefix(canon(work)).ok()?.to_path_buf();
    let mut prefix = rel.to_str().unwrap_or_default().replace('\\', "/");
    if !prefix.is_empty() {
        prefix.push('/');
    }
    Some(prefix)
}

/// The error for a repository gix opened but whose refs it cannot read.
fn check_format(repo: &gix::Repository, path: &Path) -> Result<()> {
    let refs = repo.config_snapshot().string("extensions.refStorage");
    match refs.is_some_and(|r| r.eq_ignore_ascii_case(b"reftable")) {
        true => Err(GitError::UnsupportedFormat {
            path: path.to_path_buf(),
            format: GitFormat::Reftable,
        }
        .into()),
        false => Ok(()),
    }
}

/// The error for a repository gix refused to open for its format, if that was why.
fn unsupported(path: &Path, e: &(dyn std::error::Error + 'static)) -> Option<crate::Error> {
    let chain = crate::error_chain(e);
    chain.contains("extensions.objectFormat").then(|| {
        GitError::UnsupportedFormat {
            path: path.to_path_buf(),
            format: GitFormat::Sha256,
        }
        .into()
    })
}

fn failed(what: impl Into<String>) -> impl FnOnce(gix::Error) -> crate::Error {
    let what = what.into();
    move |e| {
        GitError::Failed {
            what,
            message: crate::error_chain(&e),
        }
        .into()
    }
}

/// The `info/attributes` lines that give pointer files and `dvt.lock` dvt's merge driver.
const MERGE_ATTRIBUTES: [&str; 2] = ["*.dvt merge=dvt", "dvt.lock merge=dvt"];

/// A local branch or a tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RefKind {
    /// A local branch (`refs/heads/`).
    Branch,
    /// A tag (`refs/tags/`).
    Tag,
}

impl RefKind {
    /// `branch` or `tag`, as messages say it.
    pub fn name(self) -> &'static str {
        match self {
            RefKind::Branch => "branch",
            RefKind::Tag => "tag",
        }
    }
}

/// A git repository seen from a dvt repository inside its work tree.
#[derive(Clone)]
pub struct Git {
    repo: gix::Repository,
    /// The dvt root relative to the git work tree, `/`-terminated, or empty.
    prefix: String,
}

impl std::fmt::Debug for Git {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Git")
            .field("git_dir", &self.repo.git_dir())
            .field("prefix", &self.prefix)
            .finish()
    }
}

/// The size above which [`Git::commit_work_tree`] refuses a file git does not
/// track yet (GitHub warns at 50 MB).
pub const BIG_UNTRACKED: u64 = 50 << 20;

/// Where `dvt exp run` keeps experiments: `refs/exps/NAME`.
pub const EXP_REFS: &str = "refs/exps/";

/// Where the work trees that queued experiments run from are kept (as
/// commits named by their id) until they leave the queue.
pub const QUEUED_REFS: &str = "refs/dvt/queued/";

/// An experiment: a commit of the work tree made by `dvt exp run`, named by
/// `refs/exps/NAME`.
#[derive(Debug, Clone)]
pub struct Experiment {
    /// Its name.
    pub name: String,
    /// Its commit.
    pub commit: GitId,
    /// The commit it was run on (its parent).
    pub baseline: Option<GitId>,
    /// When it was recorded (seconds since the epoch).
    pub time: i64,
}

/// A file of a commit's tree, as [`Git::files`] lists it.
#[derive(Debug, Clone)]
pub struct GitFile {
    /// Path from the git work tree's root, `/`-separated.
    pub path: String,
    /// Its blob.
    pub blob: GitId,
    /// Whether it is executable.
    pub executable: bool,
    /// Whether it is a symbolic link (the blob is its target).
    pub link: bool,
}

/// A tracked-path-relevant tree entry: a repo-relative path and its blob.
#[derive(Debug, Clone)]
pub struct BlobEntry {
    /// Path relative to the dvt root, `/`-separated.
    pub path: String,
    /// The blob's git id.
    pub blob: GitId,
}

/// An entry of a commit's tree, as [`Git::list_tree`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeItem {
    /// Its path, `/`-separated.
    pub path: String,
    /// Whether it is a directory.
    pub dir: bool,
    /// A file's size in bytes (a symlink's: its target's length), if asked for.
    pub size: Option<u64>,
    /// Whether a file is executable.
    pub executable: bool,
    /// A file's blob (none for a symbolic link, a submodule, a directory, or
    /// what a work tree holds).
    pub blob: Option<GitId>,
}

/// What a path names in a commit's tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TreeAt {
    /// Nothing.
    Missing,
    /// A file (or symlink, or submodule).
    File(TreeItem),
    /// A directory, with its entries.
    Dir(Vec<TreeItem>),
}

/// How many pack files a clone kept by [`Git::fetch_clone`] may gather (one
/// per fetch that brought something) before it is made anew, as one.
pub const MAX_KEPT_PACKS: usize = 64;

/// What [`Git::fetch_clone`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeptClone {
    /// Cloned anew (there was none, or a damaged one, or too many packs).
    Made,
    /// Fetched what was new.
    Fetched,
    /// Nothing: it holds the commit asked for.
    Held,
}

/// Deletes what is at `path`, a directory or a file, if anything.
fn remove_any(path: &Path) -> std::io::Result<()> {
    match fs_err::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs_err::remove_dir_all(path),
        Ok(_) => fs_err::remove_file(path),
        Err(_) => Ok(()),
    }
}

/// Puts the clone made at `fresh` in the place of what is at `dir` (an old
/// clone, something damaged, or nothing). A directory is exchanged with it
/// in one step (`renameat2` with `RENAME_EXCHANGE`), so that a process
/// reading the old clone by its path finds the new one there, which holds
/// every object the old one did, and the old one's packs it has open stay
/// readable until it closes them; then the old one is deleted. Where the
/// file system cannot exchange, the old one is deleted first.
fn swap_in(fresh: &Path, dir: &Path) -> std::io::Result<()> {
    #[cfg(any(target_os = "linux", target_os = "android", target_vendor = "apple"))]
    if fs_err::symlink_metadata(dir).is_ok_and(|m| m.is_dir()) {
        let exchanged = rustix::fs::renameat_with(
            rustix::fs::CWD,
            fresh,
            rustix::fs::CWD,
            dir,
            rustix::fs::RenameFlags::EXCHANGE,
        );
        if exchanged.is_ok() {
            return fs_err::remove_dir_all(fresh);
        }
    }
    remove_any(dir)?;
    fs_err::rename(fresh, dir)
}

/// `con` asking the credential helpers of git's system and global
/// configuration for a login `url` needs (see [`login::git_credential_helpers`]):
/// the repositories dvt reads by URL read no git configuration of their own.
fn with_credential_helpers<'a, 'r, T: gix::protocol::transport::client::blocking_io::Transport>(
    mut con: gix::remote::Connection<'a, 'static, 'r, T>,
    url: &str,
) -> gix::remote::Connection<'a, 'static, 'r, T> {
    if let Some(helpers) = login::git_credential_helpers(url) {
        con.set_credentials(helpers);
    }
    con
}

/// The clone [`Git::fetch_clone`] keeps in `dir`, if there is a good one,
/// with whether it has gathered too many packs to be fetched into again.
fn kept_clone_at(dir: &Path) -> Option<(gix::Repository, bool)> {
    // Each fetch that brings commits adds a pack: past a few dozen, lookups
    // slow down, and a new clone (one pack) is cheaper than keeping them.
    let packs = fs_err::read_dir(dir.join("objects/pack")).map_or(0, |d| {
        d.flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "pack"))
            .count()
    });
    gix::open_opts(dir, gix::open::Options::isolated())
        .ok()
        .filter(|r| r.is_bare())
        .map(|r| (r, packs > MAX_KEPT_PACKS))
}

impl Git {
    /// Opens the git repository whose work tree contains the dvt root `root`.
    pub fn open(root: &Path) -> Result<Git> {
        if work_tree_root(root)?.is_none() {
            return Err(GitError::NoGit {
                root: root.to_path_buf(),
            }
            .into());
        }
        let repo = gix::discover(root).map_err(|e| {
            unsupported(root, &e).unwrap_or_else(|| {
                RepoError::Git {
                    path: root.to_path_buf(),
                    source: crate::error_chain(&e).into(),
                }
                .into()
            })
        })?;
        check_format(&repo, root)?;
        let work = repo.workdir().ok_or_else(|| GitError::NoGit {
            root: root.to_path_buf(),
        })?;
        let prefix = tree_prefix(root, work).ok_or_else(|| GitError::NoGit {
            root: root.to_path_buf(),
        })?;
        Ok(Git { repo, prefix })
    }

    /// Opens another repository by path: a work tree (or a directory in one), a
    /// bare repository, or a `.git` directory. The dvt root is taken to be the work
    /// tree's root, or the directory given if it is inside the work tree.
    pub fn open_external(path: &Path) -> Result<Git> {
        let failed = |message: String| GitError::Failed {
            what: format!("opening the git repository `{}`", path.display()),
            message,
        };
        if !path.exists() {
            return Err(failed("there is no such directory".into()).into());
        }
        let repo = gix::discover(path)
            .map_err(|e| unsupported(path, &e).unwrap_or_else(|| failed(crate::error_chain(&e)).into()))?;
        check_format(&repo, path)?;
        let mut prefix = String::new();
        let canon = |p: &Path| fs_err::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
        // A path in the git directory (`repo/.git`) names the repository, not a part of it.
        let in_git_dir = canon(path).starts_with(canon(repo.git_dir()));
        if let Some(work) = repo.workdir().filter(|_| !in_git_dir)
            && let Some(p) = tree_prefix(path, work)
        {
            prefix = p;
        }
        Ok(Git { repo, prefix })
    }

    /// Clones `url` (https://, http://, ssh://, git@host:path) bare into `dest`
    /// with gix's own transport, all refs, and opens it. Only the git objects
    /// arrive; data comes later from the remote the repository's config names.
    pub fn clone_bare(url: &str, dest: &Path) -> Result<Git> {
        let fail = |message: String| GitError::Failed {
            what: format!("cloning `{}`", login::shown(url)),
            message,
        };
        // Isolated: no system or user git config and no `git` binary is
        // consulted, but for the credential helpers it names.
        let helpers_for = url.to_string();
        let mut prepare = gix::clone::PrepareFetch::new(
            login::with_netrc_login(url).as_str(),
            dest,
            gix::create::Kind::Bare,
            gix::create::Options::default(),
            gix::open::Options::isolated(),
        )
        .map_err(|e| fail(crate::error_chain(&e)))?
        .configure_connection(move |con| {
            if let Some(helpers) = login::git_credential_helpers(&helpers_for) {
                con.set_credentials(helpers);
            }
            Ok(())
        });
        let (repo, _) = prepare
            .fetch_only(gix::progress::Discard, crate::fsutil::interrupt_flag())
            .map_err(|e| fail(crate::error_chain(&e)))?;
        Ok(Git {
            repo,
            prefix: String::new(),
        })
    }

    /// The repository at `url` as a bare clone kept in `dir` (see
    /// [`MAX_KEPT_PACKS`]): made beside it the first time, and moved into
    /// place once whole (in an empty repository: the URL is written nowhere,
    /// so credentials in it stay off the disk), brought up to date each time
    /// after, so that only new commits travel. Every branch and tag is
    /// fetched, forced (a tag moved there moves here), refs gone from `url` are
    /// deleted here, and HEAD names what `url`'s HEAD names. A `dir` that is
    /// not a repository any more (damaged), or has gathered too many packs, is
    /// made anew, and the old one stays until the new one replaces it (a
    /// failed clone leaves it as it was). A kept clone that
    /// holds commit `pinned` (40 hex digits) is not fetched: what a commit
    /// names never changes. The caller holds `dir` alone while this runs.
    pub fn fetch_clone(url: &str, dir: &Path, pinned: Option<&str>) -> Result<(Git, KeptClone)> {
        let kept = kept_clone_at(dir);
        let held = pinned.and_then(|c| gix::ObjectId::from_hex(c.as_bytes()).ok());
        // However many packs it has, a clone that holds the commit serves it.
        if let Some((repo, _)) = kept.as_ref().filter(|(r, _)| held.is_some_and(|id| r.has_object(id))) {
            let git = Git {
                repo: repo.clone(),
                prefix: String::new(),
            };
            return Ok((git, KeptClone::Held));
        }
        let kept = kept.filter(|(_, too_many)| !too_many).map(|(r, _)| r);
        let what = match kept {
            Some(_) => format!("fetching `{}` into its clone", login::shown(url)),
            None => format!("cloning `{}`", login::shown(url)),
        };
        let fail = |e: &(dyn std::error::Error + 'static)| GitError::Failed {
            what: what.clone(),
            message: crate::error_chain(e),
        };
        let made = kept.is_none();
        // A new clone is made beside `dir` and put in its place once whole
        // (see `swap_in`): a process still reading the old one goes on.
        let fresh = dir.with_extension("new");
        let repo = match kept {
            Some(repo) => repo,
            None => {
                // What a killed clone left there.
                remove_any(&fresh)?;
                gix::ThreadSafeRepository::init_opts(
                    &fresh,
                    gix::create::Kind::Bare,
                    gix::create::Options::default(),
                    gix::open::Options::isolated(),
                )
                .map_err(|e| fail(&e))?
                .to_thread_local()
            }
        };
        // Branches and tags, and HEAD (which writes no ref: listed, it says
        // which branch is the default); the server lists only those (not, on a
        // forge, its thousands of pull-request refs).
        let fetched = (|| -> std::result::Result<_, gix::Error> {
            repo.remote_at(login::with_netrc_login(url).as_str())?
                .with_fetch_tags(gix::remote::fetch::Tags::None)
                .with_refspecs(
                    ["+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*", "HEAD"],
                    gix::remote::Direction::Fetch,
                )?
                .connect(gix::remote::Direction::Fetch)
                .map(|con| with_credential_helpers(con, url))?
                .prepare_fetch(gix::progress::Discard, Default::default())?
                .receive(gix::progress::Discard, crate::fsutil::interrupt_flag())
        })();
        let outcome = match fetched {
            Ok(o) => o,
            Err(e) => {
                // A clone that never got anything is not kept (the old one stays).
                if made {
                    let _ = fs_err::remove_dir_all(&fresh);
                }
                return Err(fail(&e).into());
            }
        };
        use gix::protocol::handshake::Ref;
        let mut there = std::collections::HashSet::new();
        let mut head = None;
        for r in &outcome.ref_map.remote_refs {
            match r {
                Ref::Symbolic {
                    full_ref_name, target, ..
                } if full_ref_name == "HEAD" => head = Some(target.clone()),
                Ref::Direct { full_ref_name, .. }
                | Ref::Peeled { full_ref_name, .. }
                | Ref::Symbolic { full_ref_name, .. } => {
                    there.insert(full_ref_name.clone());
                }
                Ref::Unborn { .. } => {}
            }
        }
        use gix::refs::transaction::{Change, LogChange, PreviousValue, RefEdit, RefLog};
        let mut edits = Vec::new();
        for r in repo.references().map_err(|e| fail(&e))?.all().map_err(|e| fail(&e))? {
            let r = r.map_err(|e| fail(&e))?;
            let name = r.name().as_bstr().to_owned();
            let ours = name.starts_with(b"refs/heads/") || name.starts_with(b"refs/tags/");
            if ours && !there.contains(&name) {
                edits.push(RefEdit {
                    change: Change::Delete {
                        expected: PreviousValue::Any,
                        log: RefLog::AndReference,
                    },
                    name: r.name().to_owned(),
                    deref: false,
                });
            }
        }
        if let Some(target) = head.filter(|t| there.contains(t)) {
            let target: gix::refs::FullName = target.try_into().map_err(|e| fail(&e))?;
            edits.push(RefEdit {
                change: Change::Update {
                    log: LogChange::default(),
                    expected: PreviousValue::Any,
                    new: gix::refs::Target::Symbolic(target),
                },
                name: "HEAD".try_into().map_err(|e| fail(&e))?,
                deref: false,
            });
        }
        if !edits.is_empty() {
            repo.edit_references(edits).map_err(|e| fail(&e))?;
        }
        let repo = match made {
            true => {
                drop(repo);
                swap_in(&fresh, dir)?;
                gix::open_opts(dir, gix::open::Options::isolated()).map_err(|e| fail(&e))?
            }
            false => repo,
        };
        let git = Git {
            repo,
            prefix: String::new(),
        };
        Ok((git, if made { KeptClone::Made } else { KeptClone::Fetched }))
    }

    /// The commit `rev` (default `HEAD`: a branch, a tag, or a full ref name)
    /// names in the repository at `url` now, asked over the network as `git
    /// ls-remote` asks (only the refs travel, no objects), with gix's own
    /// transport and no git configuration, as [`Git::clone_bare`]. `None` if
    /// no ref of that name is there (a commit id, say). gix asks from a
    /// repository: an empty one is made at `scratch` (a directory that does not
    /// exist yet), which the caller deletes, so that a caller that stops waiting
    /// for an answer still cleans up.
    pub fn remote_tip(url: &str, rev: Option<&str>, scratch: &Path) -> Result<Option<GitId>> {
        let what = format!("asking `{url}` for its refs");
        let fail = |message: String| GitError::Failed {
            what: what.clone(),
            message,
        };
        let repo = gix::ThreadSafeRepository::init_opts(
            scratch,
            gix::create::Kind::Bare,
            gix::create::Options::default(),
            gix::open::Options::isolated(),
        )
        .map_err(|e| fail(crate::error_chain(&e)))?
        .to_thread_local();
        let remote = repo
            .remote_at(login::with_netrc_login(url).as_str())
            .map_err(|e| fail(crate::error_chain(&e)))?
            .with_fetch_tags(gix::remote::fetch::Tags::None);
        let options = gix::remote::ref_map::Options {
            prefix_from_spec_as_filter_on_remote: false,
            ..Default::default()
        };
        let (map, _) = remote
            .connect(gix::remote::Direction::Fetch)
            .map(|con| with_credential_helpers(con, url))
            .map_err(|e| fail(crate::error_chain(&e)))?
            .ref_map(gix::progress::Discard, options)
            .map_err(|e| fail(crate::error_chain(&e)))?;
        let rev = rev.unwrap_or("HEAD");
        let wanted = [rev.to_string(), format!("refs/heads/{rev}"), format!("refs/tags/{rev}")];
        let tips: Vec<(&[u8], GitId)> = map
            .remote_refs
            .iter()
            .filter_map(|r| match r {
                gix::protocol::handshake::Ref::Direct { full_ref_name, object }
                | gix::protocol::handshake::Ref::Peeled {
                    full_ref_name, object, ..
                }
                | gix::protocol::handshake::Ref::Symbolic {
                    full_ref_name, object, ..
                } => Some((full_ref_name.as_slice(), *object)),
                gix::protocol::handshake::Ref::Unborn { .. } => None,
            })
            .collect();
        Ok(wanted
            .iter()
            .find_map(|w| tips.iter().find(|(name, _)| *name == w.as_bytes()).map(|(_, id)| *id)))
    }

    /// Where the dvt root of this repository is on disk: the work tree (plus the
    /// prefix), or the git directory of a bare repository.
    pub fn root_dir(&self) -> PathBuf {
        match self.repo.workdir() {
            Some(w) => w.join(&self.prefix),
            None => self.repo.git_dir().to_path_buf(),
        }
    }

    /// The underlying gix repository.
    pub fn gix(&self) -> &gix::Repository {
        &self.repo
    }

    /// The commit that `rev` names (a tag, branch, commit id, `HEAD~2`, …).
    pub fn resolve(&self, rev: &str) -> Result<GitId> {
        let unknown = |message: String| GitError::UnknownRev {
            rev: rev.to_string(),
            message,
        };
        // An experiment's name works as a revision, as in DVC, unless git knows the name.
        let parsed = self.repo.rev_parse_single(rev).or_else(|e| {
            let exp = format!("{EXP_REFS}{rev}");
            match !rev.contains(['~', '^', ':', '@']) && self.has_ref(&exp).unwrap_or(false) {
                true => self.repo.rev_parse_single(exp.as_str()),
                false => Err(e),
            }
        });
        let id = parsed.map_err(|e| {
            if self.names_unborn_head(rev) {
                return GitError::NoCommitYet {
                    rev: rev.to_string(),
                    repo: None,
                };
            }
            let chain = crate::error_chain(&e);
            let mut message = match chain.contains("could not be found") {
                true => "no such tag, branch, commit or experiment".to_string(),
                false => chain,
            };
            if self.is_shallow() {
                message.push_str(" (this clone is shallow: `git fetch --unshallow` fetches the older history)");
            }
            unknown(message)
        })?;
        let commit = id
            .object()
            .map_err(failed(format!("reading `{rev}`")))?
            .peel_to_commit()
            .map_err(|e| unknown(format!("not a commit: {}", crate::error_chain(&e))))?;
        Ok(commit.id)
    }

    /// Whether `rev` names HEAD (`HEAD`, `@`, `HEAD~1`, the current branch…)
    /// of a repository that has no commit yet.
    fn names_unborn_head(&self, rev: &str) -> bool {
        let base = rev.split(['~', '^']).next().unwrap_or(rev);
        let names_head = base == "HEAD" || base == "@" || self.head_branch().ok().flatten().as_deref() == Some(base);
        names_head && matches!(self.head(), Ok(None))
    }

    /// The commit at HEAD, or `None` before the first commit.
    pub fn head(&self) -> Result<Option<GitId>> {
        let mut head = self.repo.head().map_err(failed("reading HEAD"))?;
        Ok(head
            .try_peel_to_id()
            .map_err(failed("reading HEAD"))?
            .map(|id| id.detach()))
    }

    /// The commits HEAD moved between when the last thing that moved it was a
    /// switch of branch or commit (`git checkout`, `git switch`) or a merge
    /// (`git merge`, `git pull`), as HEAD's reflog says: `(before, now)`, `now`
    /// being HEAD still. `None` after anything else (a commit, a reset), or
    /// without a reflog.
    pub fn last_switch(&self) -> Option<(GitId, GitId)> {
        self.last_move()
            .filter(|(_, _, how)| is_switch(how))
            .map(|(before, now, _)| (before, now))
    }

    /// [`Git::last_switch`], and also after a `git reset`, `git cherry-pick` or
    /// `git revert` (which may take data's pointers away too, and run no hook):
    /// `(before, now, HOW)`, HOW the git command (`checkout`, `reset`…). `None`
    /// after a commit (whose author chose what it tracks) or anything else.
    pub fn last_move(&self) -> Option<(GitId, GitId, &'static str)> {
        let head = self.repo.head().ok()?;
        let mut platform = head.log_iter();
        let line = platform.rev().ok()??.next()?.ok()?;
        let how = [
            ("checkout:", "checkout"),
            ("merge ", "merge"),
            ("pull:", "pull"),
            ("pull ", "pull"),
            ("reset:", "reset"),
            ("cherry-pick:", "cherry-pick"),
            ("revert:", "revert"),
        ]
        .into_iter()
        .find(|(prefix, _)| line.message.starts_with_str(prefix))?
        .1;
        let now = self.head().ok()??;
        (line.new_oid == now && !line.previous_oid.is_null() && line.previous_oid != now).then_some((
            line.previous_oid,
            now,
            how,
        ))
    }

    /// The name of the checked-out branch, if any.
    pub fn head_branch(&self) -> Result<Option<String>> {
        let head = self.repo.head_name().map_err(failed("reading HEAD"))?;
        Ok(head.map(|n| n.shorten().to_string()))
    }

    fn tree_of(&self, commit: GitId) -> Result<gix::Tree<'_>> {
        let c = self
            .repo
            .find_commit(commit)
            .map_err(self.read_failed(format!("reading commit {commit}")))?;
        c.tree()
            .map_err(self.read_failed(format!("reading the tree of {commit}")))
    }

    /// [`failed`] for reading an object, which a partial clone may lack: then
    /// the error names the promisor remote that has it.
    fn read_failed(&self, what: String) -> impl FnOnce(gix::Error) -> crate::Error + '_ {
        move |e| {
            let message = crate::error_chain(&e);
            match self.promisor_remote() {
                Some(remote) if message.contains("could not be found") => {
                    GitError::NotInPartialClone { what, remote }.into()
                }
                _ => GitError::Failed { what, message }.into(),
            }
        }
    }

    /// The remote a partial clone (`git clone --filter=…`) fetches the objects
    /// it left out from (`remote.NAME.promisor`, or `extensions.partialClone`).
    fn promisor_remote(&self) -> Option<String> {
        let config = self.repo.config_snapshot();
        self.repo
            .remote_names()
            .into_iter()
            .map(|n| n.to_string())
            .find(|n| config.boolean(format!("remote.{n}.promisor").as_str()) == Some(true))
            .or_else(|| config.string("extensions.partialClone").map(|s| s.to_string()))
    }

    /// The blob id of the file at `rel` (relative to the dvt root) in `commit`.
    pub fn blob_id(&self, commit: GitId, rel: &str) -> Result<Option<GitId>> {
        let tree = self.tree_of(commit)?;
        let path = format!("{}{rel}", self.prefix);
        let entry = tree
            .lookup_entry_by_path(Path::new(&path))
            .map_err(self.read_failed(format!("reading `{path}` at {commit}")))?;
        Ok(entry.filter(|e| e.mode().is_blob()).map(|e| e.object_id()))
    }

    /// The bytes of blob `blob`.
    pub fn read_blob(&self, blob: GitId) -> Result<Vec<u8>> {
        let b = self
            .repo
            .find_blob(blob)
            .map_err(self.read_failed(format!("reading blob {blob}")))?;
        Ok(b.data.clone())
    }

    /// The file at `rel` (relative to the dvt root) in `commit`, if there is one.
    pub fn read_file(&self, commit: GitId, rel: &str) -> Result<Option<Vec<u8>>> {
        match self.blob_id(commit, rel)? {
            Some(b) => Ok(Some(self.read_blob(b)?)),
            None => Ok(None),
        }
    }

    /// Every blob under the dvt root in `commit` whose name ends with `suffix`,
    /// sorted by path.
    pub fn files_ending_with(&self, commit: GitId, suffix: &str) -> Result<Vec<BlobEntry>> {
        let mut tree = self.tree_of(commit)?;
        if !self.prefix.is_empty() {
            let sub = tree
                .lookup_entry_by_path(Path::new(self.prefix.trim_end_matches('/')))
                .map_err(failed(format!("reading `{}` at {commit}", self.prefix)))?;
            match sub {
                Some(e) if e.mode().is_tree() => {
                    tree = self
                        .repo
                        .find_tree(e.object_id())
                        .map_err(failed(format!("reading `{}` at {commit}", self.prefix)))?;
                }
                _ => return Ok(Vec::new()),
            }
        }
        let mut rec = gix::traverse::tree::Recorder::default();
        tree.traverse().breadthfirst(&mut rec).map_err(|e| GitError::Failed {
            what: format!("walking the tree of {commit}"),
            message: crate::error_chain(&e),
        })?;
        let mut out: Vec<BlobEntry> = rec
            .records
            .into_iter()
            .filter(|r| r.mode.is_blob() && r.filepath.ends_with(suffix.as_bytes()))
            .filter_map(|r| {
                Some(BlobEntry {
                    path: r.filepath.to_str().ok()?.to_string(),
                    blob: r.oid,
                })
            })
            .collect();
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    /// What `dir` (relative to the dvt root; empty for the root) holds in
    /// `commit`: its entries, paths relative to `dir` (every file and directory below
    /// it if `recursive`, else its children), sorted by path; or the file it names.
    /// Blob sizes are read (one object header each) only if `sizes`.
    pub fn list_tree(&self, commit: GitId, dir: &str, recursive: bool, sizes: bool) -> Result<TreeAt> {
        let what = || format!("listing `{dir}` at {commit}");
        let mut tree = self.tree_of(commit)?;
        let path = self.tree_path(dir);
        let path = path.trim_end_matches('/');
        if !path.is_empty() {
            let Some(e) = tree.lookup_entry_by_path(Path::new(path)).map_err(failed(what()))? else {
                return Ok(TreeAt::Missing);
            };
            if !e.mode().is_tree() {
                return Ok(TreeAt::File(self.tree_item(
                    dir.to_string(),
                    e.mode(),
                    e.object_id(),
                    sizes,
                )?));
            }
            tree = self.repo.find_tree(e.object_id()).map_err(failed(what()))?;
        }
        let mut items = Vec::new();
        if recursive {
            let mut rec = gix::traverse::tree::Recorder::default();
            tree.traverse().breadthfirst(&mut rec).map_err(|e| GitError::Failed {
                what: what(),
                message: crate::error_chain(&e),
            })?;
            for r in rec.records {
                match r.filepath.to_str() {
                    Ok(p) => items.push(self.tree_item(p.to_string(), r.mode, r.oid, sizes)?),
                    Err(_) => left_out_name(dir, r.filepath.as_ref()),
                }
            }
        } else {
            for e in tree.iter() {
                let e = e.map_err(failed(what()))?;
                match e.filename().to_str() {
                    Ok(name) => items.push(self.tree_item(name.to_string(), e.mode(), e.object_id(), sizes)?),
                    Err(_) => left_out_name(dir, e.filename()),
                }
            }
        }
        items.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(TreeAt::Dir(items))
    }

    fn tree_item(&self, path: String, mode: gix::object::tree::EntryMode, id: GitId, sizes: bool) -> Result<TreeItem> {
        let size = if sizes && (mode.is_blob() || mode.is_link()) {
            let h = self.repo.find_header(id).map_err(failed(format!("reading `{path}`")))?;
            Some(h.size())
        } else {
            None
        };
        Ok(TreeItem {
            path,
            dir: mode.is_tree(),
            size,
            executable: mode.is_executable(),
            blob: mode.is_blob().then_some(id),
        })
    }

    /// The git blob id that `bytes` would have.
    pub fn blob_id_of(&self, bytes: &[u8]) -> Result<GitId> {
        gix::objs::compute_hash(self.repo.object_hash(), gix::objs::Kind::Blob, bytes).map_err(|e| {
            GitError::Failed {
                what: "hashing a blob".into(),
                message: e.to_string(),
            }
            .into()
        })
    }

    /// Every reference under `prefix` (`refs/tags/`) that leads to a commit,
    /// by its name after the prefix, sorted by name. Tags may point at trees or
    /// blobs: only commits carry data versions.
    fn refs_under(&self, prefix: &str, what: &str) -> Result<Vec<(String, gix::Commit<'_>)>> {
        let platform = self.repo.references().map_err(failed(what))?;
        let iter = platform.prefixed(prefix).map_err(failed(what))?;
        let mut out = Vec::new();
        for r in iter {
            let mut r = r.map_err(|e| GitError::Failed {
                what: what.into(),
                message: e.to_string(),
            })?;
            let full = r.name().as_bstr().to_string();
            let Some(name) = full.strip_prefix(prefix).map(str::to_string) else {
                continue;
            };
            let Ok(commit) = r.peel_to_commit() else { continue };
            out.push((name, commit));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    fn refs(&self, tags: bool) -> Result<Vec<(String, GitId)>> {
        let (prefix, what) = match tags {
            true => ("refs/tags/", "listing tags"),
            false => ("refs/heads/", "listing branches"),
        };
        Ok(self
            .refs_under(prefix, what)?
            .into_iter()
            .map(|(name, c)| (name, c.id))
            .collect())
    }

    /// Every tag that names a commit, with that commit, sorted by name.
    pub fn tags(&self) -> Result<Vec<(String, GitId)>> {
        self.refs(true)
    }

    /// Every local branch, with its tip, sorted by name.
    pub fn branches(&self) -> Result<Vec<(String, GitId)>> {
        self.refs(false)
    }

    /// Every remote-tracking branch of git remote `remote` (`refs/remotes/REMOTE/`),
    /// with its tip, sorted by name.
    pub fn remote_branches(&self, remote: &str) -> Result<Vec<(String, GitId)>> {
        Ok(self
            .refs_under(&format!("refs/remotes/{remote}/"), "listing remote-tracking branches")?
            .into_iter()
            .map(|(name, c)| (name, c.id))
            .collect())
    }

    /// When git last fetched into this repository (`FETCH_HEAD`'s time), if
    /// it ever did (a clone writes no `FETCH_HEAD`).
    pub fn last_fetch(&self) -> Option<std::time::SystemTime> {
        [self.repo.git_dir(), self.repo.common_dir()]
            .iter()
            .filter_map(|dir| fs_err::metadata(dir.join("FETCH_HEAD")).ok()?.modified().ok())
            .max()
    }

    /// Every remote-tracking branch (`refs/remotes/REMOTE/NAME`, as
    /// `REMOTE/NAME`), with its tip, sorted by name.
    pub fn all_remote_branches(&self) -> Result<Vec<(String, GitId)>> {
        Ok(self
            .refs_under("refs/remotes/", "listing remote-tracking branches")?
            .into_iter()
            .map(|(name, c)| (name, c.id))
            .collect())
    }

    /// The tags that name `commit`.
    pub fn tags_at(&self, commit: GitId) -> Result<Vec<String>> {
        Ok(self
            .tags()?
            .into_iter()
            .filter(|(_, c)| *c == commit)
            .map(|(n, _)| n)
            .collect())
    }

    /// Every commit reachable from `tips`, each once, newest first (by commit
    /// time), with its parents and commit time (seconds since the epoch).
    pub fn walk(&self, tips: &[GitId]) -> Result<Vec<WalkedCommit>> {
        self.walk_sorted(tips, gix::revision::walk::Sorting::ByCommitTime(NEWEST_FIRST))
    }

    /// The commits reachable from `tips` and not from `hidden` (as `git rev-list
    /// TIPS --not HIDDEN`), in no particular order.
    pub fn walk_excluding(&self, tips: &[GitId], hidden: &[GitId]) -> Result<Vec<GitId>> {
        if tips.is_empty() {
            return Ok(Vec::new());
        }
        let walk = self
            .repo
            .rev_walk(tips.iter().copied())
            .with_hidden(hidden.iter().copied())
            .all()
            .map_err(failed("walking history"))?;
        walk.map(|info| {
            info.map(|i| i.id).map_err(|e| {
                GitError::Failed {
                    what: "walking history".into(),
                    message: crate::error_chain(&e),
                }
                .into()
            })
        })
        .collect()
    }

    /// [`Git::walk`], only the commits made at or after `since` (seconds since
    /// the epoch): the walk stops where every commit left to visit is older.
    pub fn walk_since(&self, tips: &[GitId], since: i64) -> Result<Vec<WalkedCommit>> {
        let sorting = gix::revision::walk::Sorting::ByCommitTimeCutoff {
            order: NEWEST_FIRST,
            seconds: since,
        };
        self.walk_sorted(tips, sorting)
    }

    fn walk_sorted(&self, tips: &[GitId], sorting: gix::revision::walk::Sorting) -> Result<Vec<WalkedCommit>> {
        if tips.is_empty() {
            return Ok(Vec::new());
        }
        // Sorting by time makes the walk read each commit's time (a breadth-first
        // walk leaves it out).
        let walk = self
            .repo
            .rev_walk(tips.iter().copied())
            .sorting(sorting)
            .all()
            .map_err(failed("walking history"))?;
        // A shallow clone's oldest commits name parents it does not have: as
        // for git, they have none.
        let shallow: rustc_hash::FxHashSet<GitId> = self
            .repo
            .shallow_commits()
            .map_err(failed("reading the list of a shallow clone's oldest commits"))?
            .map(|c| c.iter().copied().collect())
            .unwrap_or_default();
        let mut out = Vec::new();
        for info in walk {
            let info = info.map_err(|e| GitError::Failed {
                what: "walking history".into(),
                message: crate::error_chain(&e),
            })?;
            let parents = match shallow.contains(&info.id) {
                true => Vec::new(),
                false => info.parent_ids.iter().copied().collect(),
            };
            out.push(WalkedCommit {
                id: info.id,
                parents,
                time: info.commit_time.unwrap_or_default(),
            });
        }
        Ok(out)
    }

    /// The commit time of `commit` (seconds since the epoch).
    pub fn commit_time(&self, commit: GitId) -> Result<i64> {
        let c = self
            .repo
            .find_commit(commit)
            .map_err(failed(format!("reading commit {commit}")))?;
        c.time()
            .map(|t| t.seconds)
            .map_err(failed(format!("reading commit {commit}")))
    }

    /// Whether this is a shallow clone: its oldest commits stand without their
    /// parents, so history before them is not here.
    pub fn is_shallow(&self) -> bool {
        self.repo.is_shallow().unwrap_or(false)
    }

    /// Whether tracked files differ between HEAD, the index and the work tree
    /// (untracked files do not count).
    pub fn is_dirty(&self) -> Result<bool> {
        self.repo.is_dirty().map_err(failed("computing git status"))
    }

    /// Checks that git takes `name` for a `kind` of ref, as `git
    /// check-ref-format` does: no spaces, no `..`, no `~^:?*[\`, …
    pub fn check_ref_name(kind: RefKind, name: &str) -> Result<()> {
        let prefix = match kind {
            RefKind::Tag => "refs/tags/",
            RefKind::Branch => "refs/heads/",
        };
        let bad = |why: String| GitError::BadRefName {
            kind: kind.name(),
            name: name.to_string(),
            why,
        };
        if name == "@" || name.starts_with('-') {
            return Err(bad("git takes no name that is `@` or starts with `-`".into()).into());
        }
        gix::refs::FullName::try_from(format!("{prefix}{name}")).map_err(|e| {
            bad(crate::error_chain(&e)
                .trim_start_matches("The ref name or path is not a valid ref name: ")
                .trim_end_matches(": Validation")
                .to_string())
        })?;
        Ok(())
    }

    /// Creates the annotated tag `name` on `commit`; fails if it exists.
    pub fn create_tag(&self, name: &str, commit: GitId, message: &str) -> Result<GitId> {
        let tagger = self
            .repo
            .committer()
            .transpose()
            .map_err(|e| GitError::Failed {
                what: "reading the committer identity".into(),
                message: e.to_string(),
            })?
            .ok_or(GitError::NoIdentity)?;
        Git::check_ref_name(RefKind::Tag, name)?;
        let exists = self
            .repo
            .try_find_reference(format!("refs/tags/{name}").as_str())
            .map_err(failed(format!("looking up tag `{name}`")))?
            .is_some();
        if exists {
            return Err(GitError::TagExists { name: name.to_string() }.into());
        }
        let tag = self
            .repo
            .tag(
                name,
                commit,
                gix::objs::Kind::Commit,
                Some(tagger),
                message,
                gix::refs::transaction::PreviousValue::MustNotExist,
            )
            .map_err(failed(format!("creating tag `{name}`")))?;
        Ok(tag.id().detach())
    }

    /// The experiments (`refs/exps/NAME`, written by `dvt exp run`), sorted by
    /// commit time, newest first.
    pub fn experiments(&self) -> Result<Vec<Experiment>> {
        let mut out: Vec<Experiment> = self
            .refs_under(EXP_REFS, "listing experiments")?
            .into_iter()
            .map(|(name, commit)| Experiment {
                name,
                commit: commit.id,
                baseline: commit.parent_ids().next().map(|p| p.detach()),
                time: commit.time().map(|t| t.seconds).unwrap_or_default(),
            })
            .collect();
        out.sort_by(|a, b| b.time.cmp(&a.time).then_with(|| a.name.cmp(&b.name)));
        Ok(out)
    }

    /// The commits the refs below `prefix` (`refs/…/`) point at.
    pub fn commits_under(&self, prefix: &str) -> Result<Vec<GitId>> {
        Ok(self
            .refs_under(prefix, "listing references")?
            .into_iter()
            .map(|(_, c)| c.id)
            .collect())
    }

    /// The first parent of `commit`, if it has one.
    pub fn parent_of(&self, commit: GitId) -> Result<Option<GitId>> {
        let c = self
            .repo
            .find_commit(commit)
            .map_err(failed(format!("reading commit {commit}")))?;
        Ok(c.parent_ids().next().map(|p| p.detach()))
    }

    /// Commits the git work tree as `git add -A` would see it (every file not
    /// ignored, tracked or not; nothing under `.git`) on top of `parent`,
    /// without touching the index, HEAD or any branch. A file bigger than
    /// [`BIG_UNTRACKED`] that `parent` does not have is refused: it is data
    /// that belongs in dvt (or in `.gitignore`), not in git's history.
    pub fn commit_work_tree(&self, parent: GitId, message: &str) -> Result<GitId> {
        self.commit_work_tree_with(parent, message, &[])
    }

    /// [`Git::commit_work_tree`], with the files at `include` (absolute paths
    /// in the work tree: files, or directories for every file below them)
    /// whether git ignores them or not (`dvt exp save -I`).
    pub fn commit_work_tree_with(&self, parent: GitId, message: &str, include: &[PathBuf]) -> Result<GitId> {
        let what = "recording the work tree";
        let Some(workdir) = self.repo.workdir().map(Path::to_path_buf) else {
            return Err(GitError::Failed {
                what: what.into(),
                message: "the repository has no work tree".into(),
            }
            .into());
        };
        let empty = gix::ObjectId::empty_tree(self.repo.object_hash());
        let mut editor = self.repo.edit_tree(empty).map_err(failed(what))?;
        // A submodule's gitlink comes from `parent` below.
        let mut added = std::collections::HashSet::new();
        for rel in work_tree_files(&workdir, what)? {
            if self.add_work_file(&mut editor, &workdir, &rel, parent)? {
                added.insert(rel);
            }
        }
        for path in include {
            let outside = || GitError::Failed {
                what: what.into(),
                message: format!("`{}` is not in the work tree `{}`", path.display(), workdir.display()),
            };
            let canonical = fs_err::canonicalize(path)?;
            let root = fs_err::canonicalize(&workdir)?;
            if !canonical.starts_with(&root) {
                return Err(outside().into());
            }
            for entry in walkdir::WalkDir::new(&canonical).sort_by_file_name() {
                let entry = entry.map_err(|e| GitError::Failed {
                    what: what.into(),
                    message: e.to_string(),
                })?;
                if entry.file_type().is_dir() {
                    continue;
                }
                let Ok(rel) = entry.path().strip_prefix(&root) else {
                    continue;
                };
                let rel = utf8_name(rel, what)?;
                if rel.split('/').any(|c| c == ".git") {
                    continue;
                }
                if self.add_work_file(&mut editor, &workdir, rel, parent)? {
                    added.insert(rel.to_string());
                }
            }
        }
        // As `git add -A`: files git tracks stay tracked even if ignored, and
        // submodules stay at the commit `parent` has for them.
        let mut rec = gix::traverse::tree::Recorder::default();
        self.tree_of(parent)?
            .traverse()
            .breadthfirst(&mut rec)
            .map_err(|e| GitError::Failed {
                what: what.into(),
                message: crate::error_chain(&e),
            })?;
        for r in rec.records {
            let Ok(path) = r.filepath.to_str() else {
                // Gone from the work tree, it is deleted; there, it is refused.
                let rel = Path::new(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(
                    &r.filepath,
                ));
                match workdir.join(rel).symlink_metadata() {
                    Ok(_) => return Err(not_utf8(rel, what)),
                    Err(_) => continue,
                }
            };
            if r.mode.is_commit() {
                editor
                    .upsert(path, gix::object::tree::EntryKind::Commit, r.oid)
                    .map_err(failed(what))?;
            } else if (r.mode.is_blob() || r.mode.is_link()) && !added.contains(path) {
                self.add_work_file(&mut editor, &workdir, path, parent)?;
            }
        }
        let tree = editor.write().map_err(failed(what))?;
        let fallback = gix::actor::Signature {
            name: "dvt".into(),
            email: "dvt@localhost".into(),
            time: gix::date::Time::now_local_or_utc(),
        };
        let who = match self.repo.committer() {
            Some(Ok(sig)) => sig.to_owned().map_err(|e| GitError::Failed {
                what: what.into(),
                message: e.to_string(),
            })?,
            _ => fallback,
        };
        let mut buf = gix::date::parse::TimeBuf::default();
        let sig = who.to_ref(&mut buf);
        let commit = self
            .repo
            .new_commit_as(sig, sig, message, tree.detach(), [parent])
            .map_err(failed(what))?;
        Ok(commit.id)
    }

    /// Puts the work tree's file (or symlink) at `rel` into `editor`; `false`
    /// if there is none. See [`Git::commit_work_tree`] for big files.
    fn add_work_file(
        &self,
        editor: &mut gix::object::tree::Editor<'_>,
        workdir: &Path,
        rel: &str,
        parent: GitId,
    ) -> Result<bool> {
        let what = "recording the work tree";
        let abs = workdir.join(rel);
        let meta = match fs_err::symlink_metadata(&abs) {
            Ok(m) if m.is_dir() => return Ok(false),
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e.into()),
        };
        let (kind, bytes) = if meta.file_type().is_symlink() {
            let target = fs_err::read_link(&abs)?;
            (
                gix::object::tree::EntryKind::Link,
                target.to_string_lossy().into_owned().into_bytes(),
            )
        } else {
            if meta.len() > BIG_UNTRACKED && !self.has_path(parent, rel)? {
                return Err(GitError::Failed {
                    what: what.into(),
                    message: format!(
                        "`{rel}` ({}) is neither tracked by dvt nor ignored by git, and is too big to \
                         commit to git: `dvt add` it, or add it to .gitignore",
                        indicatif::HumanBytes(meta.len())
                    ),
                }
                .into());
            }
            let kind = match std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o111 != 0 {
                true => gix::object::tree::EntryKind::BlobExecutable,
                false => gix::object::tree::EntryKind::Blob,
            };
            (kind, fs_err::read(&abs)?)
        };
        let id = self.repo.write_blob(&bytes).map_err(failed(what))?;
        editor.upsert(rel, kind, id).map_err(failed(what))?;
        Ok(true)
    }

    /// Whether `commit`'s tree has a file at `path` (from the work tree's root).
    fn has_path(&self, commit: GitId, path: &str) -> Result<bool> {
        let tree = self.tree_of(commit)?;
        Ok(tree
            .lookup_entry_by_path(Path::new(path))
            .map_err(failed(format!("looking up `{path}` at {commit}")))?
            .is_some())
    }

    /// Points the ref `full_name` (`refs/exps/NAME`, `refs/heads/NAME`,
    /// `refs/tags/NAME`) at `commit` (or a tag); fails if it exists, unless
    /// `replace`.
    pub fn set_ref(&self, full_name: &str, commit: GitId, replace: bool) -> Result<()> {
        use gix::refs::transaction::PreviousValue;
        let constraint = match replace {
            true => PreviousValue::Any,
            false => PreviousValue::MustNotExist,
        };
        self.repo
            .reference(full_name, commit, constraint, "dvt")
            .map_err(failed(format!("writing `{full_name}`")))?;
        Ok(())
    }

    /// Whether reference `full_name` exists.
    pub fn has_ref(&self, full_name: &str) -> Result<bool> {
        Ok(self
            .repo
            .try_find_reference(full_name)
            .map_err(failed(format!("looking up `{full_name}`")))?
            .is_some())
    }

    /// Deletes reference `full_name` (which must exist).
    pub fn delete_ref(&self, full_name: &str) -> Result<()> {
        let r = self
            .repo
            .find_reference(full_name)
            .map_err(failed(format!("looking up `{full_name}`")))?;
        r.delete().map_err(failed(format!("deleting `{full_name}`")))?;
        Ok(())
    }

    /// Whether the object database has `id` (so content with that id can be
    /// read back from git).
    pub fn has_object(&self, id: GitId) -> bool {
        self.repo.has_object(id)
    }

    /// Every file of `commit`'s whole tree (not only below the dvt root), with
    /// its blob and whether it is executable or a symlink.
    pub fn files(&self, commit: GitId) -> Result<Vec<GitFile>> {
        let what = format!("listing the files of {commit}");
        let tree = self.tree_of(commit)?;
        let mut rec = gix::traverse::tree::Recorder::default();
        tree.traverse().breadthfirst(&mut rec).map_err(|e| GitError::Failed {
            what: what.clone(),
            message: crate::error_chain(&e),
        })?;
        let mut out: Vec<GitFile> = rec
            .records
            .into_iter()
            .filter(|r| r.mode.is_blob() || r.mode.is_link())
            .filter_map(|r| {
                Some(GitFile {
                    path: r.filepath.to_str().ok()?.to_string(),
                    blob: r.oid,
                    executable: r.mode.is_executable(),
                    link: r.mode.is_link(),
                })
            })
            .collect();
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    /// Makes `dir` (absolute, absent or empty) a linked worktree of this
    /// repository named `name`, as `git worktree add --detach DIR COMMIT` does:
    /// HEAD detached at `commit`, with its index; the files written out are
    /// those of `files_of` (`commit` itself, or a snapshot of a work tree made
    /// on it, which then shows as changes). Git rehashes the files once, their
    /// stat data being unknown. The worktree shares the repository's objects
    /// and refs; a worktree of the same name left by a killed run is replaced.
    /// Undo with [`Git::remove_worktree`].
    pub fn add_worktree(&self, dir: &Path, name: &str, commit: GitId, files_of: GitId) -> Result<()> {
        let what = format!("making a worktree of {commit} in `{}`", dir.display());
        let admin = self.repo.common_dir().join("worktrees").join(name);
        if admin.exists() {
            fs_err::remove_dir_all(&admin)?;
        }
        fs_err::create_dir_all(&admin)?;
        fs_err::create_dir_all(dir)?;
        crate::fsutil::atomic_write(&admin.join("commondir"), b"../..\n")?;
        crate::fsutil::atomic_write(
            &admin.join("gitdir"),
            format!("{}\n", dir.join(".git").display()).as_bytes(),
        )?;
        crate::fsutil::atomic_write(&admin.join("HEAD"), format!("{commit}\n").as_bytes())?;
        crate::fsutil::atomic_write(&dir.join(".git"), format!("gitdir: {}\n", admin.display()).as_bytes())?;
        for f in self.files(files_of)? {
            let path = dir.join(&f.path);
            if let Some(parent) = path.parent() {
                fs_err::create_dir_all(parent)?;
            }
            let bytes = self.read_blob(f.blob)?;
            if f.link {
                std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(&bytes), &path)
                    .map_err(|e| std::io::Error::new(e.kind(), format!("{e}: linking `{}`", path.display())))?;
            } else {
                fs_err::write(&path, &bytes)?;
                if f.executable {
                    fs_err::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
                }
            }
        }
        let tree = self.tree_of(commit)?.id;
        let mut index = self.repo.index_from_tree(&tree).map_err(failed(what.clone()))?;
        index.set_path(admin.join("index"));
        index
            .write(gix::index::write::Options::default())
            .map_err(|e| GitError::Failed {
                what,
                message: e.to_string(),
            })?;
        Ok(())
    }

    /// Deletes the linked worktree at `dir` (files and git's record of it); a
    /// directory git does not know as one of this repository's worktrees is
    /// deleted all the same, git's records left alone.
    pub fn remove_worktree(&self, dir: &Path) -> Result<()> {
        let worktrees = self.repo.common_dir().join("worktrees");
        let admin = fs_err::read_to_string(dir.join(".git"))
            .ok()
            .and_then(|t| t.strip_prefix("gitdir:").map(|p| PathBuf::from(p.trim())))
            .filter(|a| a.parent() == Some(worktrees.as_path()));
        if dir.exists() {
            fs_err::remove_dir_all(dir)?;
        }
        if let Some(admin) = admin
            && admin.exists()
        {
            fs_err::remove_dir_all(&admin)?;
        }
        Ok(())
    }

    /// The git work tree's root, if there is one.
    pub fn work_tree(&self) -> Option<&Path> {
        self.repo.workdir()
    }

    /// The directory git runs hooks from (`core.hooksPath`, else `hooks` in the
    /// common git directory).
    pub fn hooks_dir(&self) -> PathBuf {
        let configured = self
            .repo
            .config_snapshot()
            .trusted_path("core.hooksPath")
            .ok()
            .flatten();
        match configured {
            Some(p) if p.is_absolute() => p,
            Some(p) => self.repo.workdir().map_or_else(|| p.clone(), |w| w.join(&p)),
            None => self.repo.common_dir().join("hooks"),
        }
    }

    /// Sets up dvt's merge driver for pointer files and `dvt.lock` with `command`
    /// (git's `%O %A %B %P` placeholders included), or removes it with `None`:
    /// `merge.dvt.driver` in the repository's own config, and `*.dvt merge=dvt`
    /// and `dvt.lock merge=dvt` in `info/attributes`; both local to this clone,
    /// as hooks are.
    pub fn set_merge_driver(&self, command: Option<&str>) -> Result<()> {
        let config = self.repo.common_dir().join("config");
        let failed = |e: &dyn std::fmt::Display| GitError::Failed {
            what: format!("editing `{}`", config.display()),
            message: e.to_string(),
        };
        let mut file = gix::config::File::from_path_no_includes(config.clone(), gix::config::Source::Local)
            .map_err(|e| failed(&e))?;
        match command {
            Some(cmd) => {
                // gix quotes and escapes what needs it.
                for (key, value) in [("name", "dvt: merge tracked directories file by file"), ("driver", cmd)] {
                    file.set_raw_value_by("merge", "dvt", key, value)
                        .map_err(|e| failed(&e))?;
                }
            }
            None => {
                file.remove_section("merge", "dvt");
            }
        }
        let mut text = Vec::new();
        file.write_to(&mut text)?;
        crate::fsutil::atomic_write(&config, &text)?;

        let info = self.repo.common_dir().join("info");
        let attributes = info.join("attributes");
        let existing = match fs_err::read_to_string(&attributes) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e.into()),
        };
        let mut lines: Vec<&str> = existing.lines().filter(|l| !MERGE_ATTRIBUTES.contains(l)).collect();
        if command.is_some() {
            lines.extend(MERGE_ATTRIBUTES);
        }
        let mut new = lines.join("\n");
        if !new.is_empty() {
            new.push('\n');
        }
        if new != existing {
            fs_err::create_dir_all(&info)?;
            crate::fsutil::atomic_write(&attributes, new.as_bytes())?;
        }
        Ok(())
    }

    /// Whether a rebase (of any kind) is in progress.
    pub fn rebase_in_progress(&self) -> bool {
        use gix::state::InProgress as P;
        matches!(
            self.repo.state(),
            Some(P::Rebase | P::RebaseInteractive | P::ApplyMailboxRebase)
        )
    }

    /// Stages the files at `paths` (absolute, in this work tree) in git's index,
    /// as `git add` does; a path that no longer exists is removed from the
    /// index, as `git rm --cached` does. Returns the paths staged, relative to
    /// the dvt root. Takes `.git/index.lock` as git does, and fails at once if
    /// git holds it. Paths outside the work tree are skipped.
    pub fn stage(&self, paths: &[PathBuf]) -> Result<Vec<String>> {
        let what = "staging files with git";
        let fail = |message: String| GitError::Failed {
            what: what.into(),
            message,
        };
        let Some(workdir) = self.repo.workdir().map(Path::to_path_buf) else {
            return Err(fail("the repository has no work tree".into()).into());
        };
        let mut index = match self.repo.open_index() {
            Ok(i) => i,
            Err(_) if !self.repo.index_path().exists() => {
                gix::index::File::from_state(gix::index::State::new(self.repo.object_hash()), self.repo.index_path())
            }
            Err(e) => return Err(fail(crate::error_chain(&e)).into()),
        };
        if index.link().is_some() {
            return Err(fail(
                "git's index is split (`core.splitIndex`), which dvt does not write: use `git add`".into(),
            )
            .into());
        }
        let mut staged = Vec::new();
        for path in paths {
            let Some(rel) = path.strip_prefix(&workdir).ok().and_then(|r| r.to_str()) else {
                continue;
            };
            let key = rel.as_bytes().as_bstr();
            match fs_err::symlink_metadata(path) {
                Ok(meta) if meta.is_file() => {
                    let id = self
                        .repo
                        .write_blob(fs_err::read(path)?)
                        .map_err(|e| fail(crate::error_chain(&e)))?
                        .detach();
                    let stat = gix::index::fs::Metadata::from_path_no_follow(path)
                        .ok()
                        .and_then(|m| gix::index::entry::Stat::from_fs(&m).ok())
                        .unwrap_or_default();
                    let mode = match std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o111 {
                        0 => gix::index::entry::Mode::FILE,
                        _ => gix::index::entry::Mode::FILE_EXECUTABLE,
                    };
                    // Any entry of the path goes, the stages of a conflict too,
                    // as `git add` resolves one.
                    index.remove_entries(|_, p, _| p == key);
                    index.dangerously_push_entry(stat, id, gix::index::entry::Flags::empty(), mode, key);
                    index.sort_entries();
                }
                Ok(_) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    let before = index.entries().len();
                    index.remove_entries(|_, p, _| p == key);
                    if index.entries().len() == before {
                        continue;
                    }
                }
                Err(e) => return Err(e.into()),
            }
            staged.push(rel.strip_prefix(&self.prefix).unwrap_or(rel).to_string());
        }
        if !staged.is_empty() {
            // Git builds commits from this cache of tree ids, which the entries
            // no longer match: without it, git recomputes them.
            index.remove_tree();
            index
                .write(gix::index::write::Options::default())
                .map_err(|e| fail(crate::error_chain(&e)))?;
        }
        Ok(staged)
    }

    /// The files of the dvt root that git neither tracks nor ignores, as `git
    /// status` lists them file by file: relative to the dvt root, sorted.
    /// Other repositories inside (submodules) are not searched.
    pub fn untracked_files(&self) -> Result<Vec<String>> {
        let what = "listing untracked files";
        let Some(workdir) = self.repo.workdir().map(Path::to_path_buf) else {
            return Ok(Vec::new());
        };
        let index = self.repo.index_or_empty().map_err(failed(what))?;
        let mut out: Vec<String> = work_tree_files(&workdir, what)?
            .into_iter()
            .filter(|rel| index.entry_by_path(rel.as_bytes().as_bstr()).is_none())
            .filter_map(|rel| rel.strip_prefix(&self.prefix).map(str::to_string))
            .collect();
        out.sort();
        Ok(out)
    }

    /// A path that git's index holds at `rel` (relative to the dvt root) or below
    /// it, relative to the dvt root; `None` if git tracks nothing there.
    pub fn tracked_at_or_below(&self, rel: &str) -> Result<Option<String>> {
        let index = self.repo.index_or_empty().map_err(failed("reading git's index"))?;
        Ok(first_indexed(&index, &self.tree_path(rel))
            .map(|e| e.path(&index).to_str_lossy()[self.prefix.len()..].to_string()))
    }

    /// Those of `paths` (relative to the dvt root, each with whether it is a
    /// directory) that git ignores: a `.gitignore` on the way, `.git/info/exclude`
    /// or `core.excludesFile`, as `git check-ignore` answers. Each comes with
    /// what git ignores: the path, or a directory above it (git does not look
    /// into an ignored directory), relative to the dvt root where it is inside
    /// it. None when git cannot say (a bare repository).
    pub fn ignored_among<'a>(&self, paths: &[(&'a str, bool)]) -> Result<Vec<(&'a str, String)>> {
        if self.repo.worktree().is_none() || paths.is_empty() {
            return Ok(Vec::new());
        }
        // A repository without an index yet (nothing ever staged) has rules too.
        let index = self.repo.index_or_empty().map_err(failed("reading git's index"))?;
        let mut excludes = self
            .repo
            .excludes(
                &index,
                None,
                gix::worktree::stack::state::ignore::Source::WorktreeThenIdMappingIfNotSkipped,
            )
            .map_err(failed("reading git's ignore rules"))?;
        let mut excluded = |tree_path: &str, is_dir: bool| -> Result<bool> {
            let mode = match is_dir {
                true => gix::index::entry::Mode::DIR,
                false => gix::index::entry::Mode::FILE,
            };
            Ok(excludes
                .at_path(tree_path, Some(mode))
                .map_err(failed("reading git's ignore rules"))?
                .is_excluded())
        };
        // Directories shared by several paths are asked about once.
        let mut dirs: rustc_hash::FxHashMap<String, bool> = Default::default();
        let mut out = Vec::new();
        for &(rel, is_dir) in paths {
            let path = self.tree_path(rel);
            let mut found = None;
            for (i, _) in path.match_indices('/') {
                let dir = &path[..i];
                let ignored = match dirs.get(dir) {
                    Some(&known) => known,
                    None => *dirs.entry(dir.to_string()).or_insert(excluded(dir, true)?),
                };
                if ignored {
                    found = Some(dir);
                    break;
                }
            }
            let found = match found {
                Some(dir) => Some(dir),
                None => excluded(&path, is_dir)?.then_some(path.as_str()),
            };
            if let Some(what) = found {
                out.push((rel, what.strip_prefix(&self.prefix).unwrap_or(what).to_string()));
            }
        }
        Ok(out)
    }

    /// The dvt root relative to the git work tree, `/`-terminated, or empty.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `rel` (relative to the dvt root) as a path in the git tree.
    pub fn tree_path(&self, rel: &str) -> String {
        format!("{}{rel}", self.prefix)
    }
}

const NEWEST_FIRST: gix::traverse::commit::simple::CommitTimeOrder =
    gix::traverse::commit::simple::CommitTimeOrder::NewestFirst;

/// One commit of a history walk.
#[derive(Debug, Clone)]
pub struct WalkedCommit {
    /// The commit.
    pub id: GitId,
    /// Its parents.
    pub parents: Vec<GitId>,
    /// Its commit time, seconds since the epoch.
    pub time: i64,
}

#[cfg(test)]
#[allow(clippy::disallowed_methods, clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::io::Read;

    /// A reader of the old clone keeps reading what it has open while the
    /// new one takes its path; nothing is left beside it.
    #[test]
    fn swap_in_exchanges_a_clone_under_a_reader() {
        let tmp = tempfile::tempdir().unwrap();
        let (dir, fresh) = (tmp.path().join("k.git"), tmp.path().join("k.new"));
        std::fs::create_dir_all(dir.join("objects/pack")).unwrap();
        std::fs::write(dir.join("objects/pack/old.pack"), "old bytes").unwrap();
        std::fs::create_dir_all(fresh.join("objects/pack")).unwrap();
        std::fs::write(fresh.join("objects/pack/new.pack"), "new bytes").unwrap();
        let mut open = std::fs::File::open(dir.join("objects/pack/old.pack")).unwrap();
        swap_in(&fresh, &dir).unwrap();
        let mut read = String::new();
        open.read_to_string(&mut read).unwrap();
        assert_eq!(read, "old bytes");
        assert_eq!(std::fs::read(dir.join("objects/pack/new.pack")).unwrap(), b"new bytes");
        assert!(!dir.join("objects/pack/old.pack").exists() && !fresh.exists());
        // Over a file (a damaged clone), or nothing: moved in the same.
        std::fs::create_dir_all(&fresh).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        std::fs::write(&dir, "not a clone").unwrap();
        swap_in(&fresh, &dir).unwrap();
        assert!(dir.is_dir() && !fresh.exists());
    }
}
