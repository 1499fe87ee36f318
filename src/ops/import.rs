//! `dvt get`, `dvt import`, `dvt update`: data tracked in another dvt repository.
//!
//! The other repository is read at a commit (its HEAD unless a revision is given):
//! its pointer files and its committed `.dvt/config.toml` come from that commit's
//! tree, so a bare repository works as well as a work tree. Objects come from its
//! cache when it is a local repository that has them, else from its default
//! remote; every object is verified before it is used.
//!
//! A path no pointer covers is read from git at that commit, as DVC reads it:
//! a file, or a directory of git's files with the data tracked below it (see
//! [`find_noting`]).
//!
//! `get` writes the data and nothing else. `import` also tracks it here, with a
//! pointer whose `[source]` table records the repository, the revision and the
//! commit it resolved to; `update` moves such a pointer to the newest commit of
//! its revision.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use rayon::prelude::*;
use serde::Serialize;

use crate::cache::Cache;
use crate::error::{GitError, PathError, Result};
use crate::git::{Git, GitId, KeptClone, TreeAt, TreeItem};
use crate::manifest::{Entry, Manifest, Part};
use crate::object::ObjectId;
use crate::pointer::{ImportSource, Kind, Pointer, Source, pointer_path_for};
use crate::progress::Progress;
use crate::repo::Repo;
use crate::snapshot::{Located, Objects, Snapshot, short};
use crate::workspace::Targets;

/// Another dvt repository, read at one commit.
#[derive(Debug)]
pub struct External {
    /// Its git repository.
    pub git: Rc<Git>,
    /// The repository as configured at that commit.
    pub repo: Repo,
    /// The commit.
    pub commit: GitId,
    /// How messages name it: `REPO@REV`.
    pub label: String,
    /// For a repository cloned from a URL: the temporary clone, removed when
    /// the last of its users is dropped.
    _clone: Option<Rc<tempfile::TempDir>>,
}

/// Whether `repo` is a URL git must fetch from (not a local path or file:// URL).
pub fn is_remote_url(repo: &str) -> bool {
    if repo.starts_with("file://") {
        return false;
    }
    if repo.contains("://") {
        return true;
    }
    // scp-like `user@host:path`, but not a local path with a colon in it.
    match (repo.find('@'), repo.find(':'), repo.find('/')) {
        (Some(at), Some(colon), slash) => at < colon && slash.is_none_or(|s| colon < s),
        _ => false,
    }
}

/// Which of another repository's remotes its data comes from, and with what
/// settings (DVC's `--remote`, `--remote-config` and `--config`): a registry
/// whose default remote is not the one to read, or needs options of yours.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExternalConfig {
    /// A config file (as `.dvt/config.toml`) merged over the repository's
    /// committed one.
    pub config: Option<PathBuf>,
    /// The remote to read instead of its default.
    pub remote: Option<String>,
    /// Options set on that remote (`KEY` to `VALUE`, as `dvt remote modify`
    /// takes them).
    pub remote_config: BTreeMap<String, String>,
}

/// `KEY=VALUE` arguments of `flag` (`--remote-config`, `--fs-config`) as a map.
pub fn parse_options(args: &[String], flag: &'static str) -> Result<BTreeMap<String, String>> {
    args.iter()
        .map(|a| match a.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
            _ => Err(crate::error::RemoteError::BadOption { given: a.clone(), flag }.into()),
        })
        .collect()
}

impl ExternalConfig {
    /// Parses `--remote-config` arguments: `KEY=VALUE` each.
    pub fn parse_remote_config(args: &[String]) -> Result<BTreeMap<String, String>> {
        parse_options(args, "--remote-config")
    }

    /// The layers `self` puts over the config of a repository whose config
    /// so far is `base`.
    fn layers(&self, base: &Repo) -> Result<Vec<(PathBuf, toml::Table)>> {
        if self.remote.is_none() && self.remote_config.is_empty() {
            return Ok(Vec::new());
        }
        let name = crate::remote::config::choose(base.config(), self.remote.as_deref())?;
        let mut options = toml::Table::new();
        for (key, value) in &self.remote_config {
            options.insert(key.clone(), crate::remote::config::typed_value(&name, key, value)?);
        }
        let mut layer = toml::Table::new();
        layer.insert(
            "core".into(),
            toml::Value::Table(toml::Table::from_iter([(
                "remote".to_string(),
                toml::Value::from(name.clone()),
            )])),
        );
        layer.insert(
            "remote".into(),
            toml::Value::Table(toml::Table::from_iter([(name, toml::Value::Table(options))])),
        );
        Ok(vec![(PathBuf::from("--remote-config"), layer)])
    }
}

/// The dvt repository `repo` names, to be read as its work tree is, as DVC
/// reads a local repository given no revision: when `repo` is a local path
/// (not a URL, not `file://`) of a dvt work tree, no `rev` is given, and no
/// remote options either (they are for another repository's remote). Its
/// settings are its committed ones, as at a commit. `None` otherwise (a bare
/// repository among them), to be read at a commit.
pub(crate) fn local_work_tree(repo: &str, rev: Option<&str>, settings: &ExternalConfig) -> Result<Option<Repo>> {
    let local = !is_remote_url(repo) && !repo.starts_with("file://");
    let plain = settings.remote.is_none() && settings.remote_config.is_empty() && settings.config.is_none();
    if rev.is_some() || !local || !plain {
        return Ok(None);
    }
    let Some(root) = dvt_root_of(Path::new(repo))? else {
        return Ok(None);
    };
    // Its committed settings, as at a commit: neither this machine's global
    // files nor its local one choose another repository's remote. Only where
    // its cache is comes from its local file.
    let file = root.join(".dvt/config.toml");
    let mut layers: Vec<_> = crate::repo::read_config_layer(&file)?
        .map(|t| (file.clone(), t))
        .into_iter()
        .collect();
    layers.extend(crate::repo::local_cache_layer(&root)?);
    Ok(Some(Repo::at_commit(root, None, &file, layers)?))
}

/// The root of the dvt repository that local path `path` is in: the nearest
/// directory at or above it that holds `.dvt`, not beyond the git repository
/// `path` is in (a git work tree's root, or a bare repository: a clone kept
/// inside a project is that clone, not the project). A path inside a
/// repository thus reads the whole repository, at a commit as in its work
/// tree (as DVC reads one); `None` outside any dvt repository, or if `path`
/// does not exist.
fn dvt_root_of(path: &Path) -> Result<Option<PathBuf>> {
    // A path that is not there names no repository, not the one around it.
    if fs_err::symlink_metadata(path).is_err() {
        return Ok(None);
    }
    let start = std::path::absolute(path)?;
    let mut dir = start.as_path();
    loop {
        if dir.join(crate::repo::DVT_DIR).is_dir() {
            return Ok(Some(dir.to_path_buf()));
        }
        let git_dir = dir.join("HEAD").is_file() && dir.join("objects").is_dir();
        // A work tree's `.git` names that work tree; any other git directory
        // is a bare repository, read as it is.
        if dir.join(".git").exists() || (git_dir && dir.file_name() != Some(".git".as_ref())) {
            return Ok(None);
        }
        match dir.parent() {
            Some(p) => dir = p,
            None => return Ok(None),
        }
    }
}

/// How messages name a work tree read by [`local_work_tree`]: `` `/src/registry` (work tree) ``.
pub(crate) fn work_tree_label(repo: &Repo) -> String {
    format!("`{}` (work tree)", repo.root().display())
}

/// Opens `repo` at `rev` (default `HEAD`): a local path or `file://` URL is read in
/// place; any other git URL through the clone dvt keeps of it, fetched first
/// unless `rev` is a commit id it holds. `settings` says which of its remotes
/// to read, and how.
pub fn open_external(repo: &str, rev: Option<&str>, settings: &ExternalConfig) -> Result<External> {
    open_git_at(repo, rev)?.at(rev, settings)
}

/// Another repository's git, before a revision is chosen (see [`open_external`]).
pub struct OpenGit {
    /// The repository as given.
    repo: String,
    /// Its git repository.
    pub git: Rc<Git>,
    /// For a repository cloned from a URL: the temporary clone.
    clone: Option<Rc<tempfile::TempDir>>,
    /// Whether its refs are as the URL's now: false for a kept clone read
    /// without a fetch (for a commit it holds).
    fetched: bool,
}

/// Opens the git repository `repo` (a local path, a `file://` URL, or a git
/// URL, read through the clone dvt keeps of it, fetched first).
pub fn open_git(repo: &str) -> Result<OpenGit> {
    open_git_at(repo, None)
}

/// [`open_git`], for reading `rev`: a commit id (40 hex digits) that the
/// kept clone of a URL holds needs no fetch (what a commit names never changes).
fn open_git_at(repo: &str, rev: Option<&str>) -> Result<OpenGit> {
    let pinned = rev.filter(|r| r.len() == 40 && r.bytes().all(|b| b.is_ascii_hexdigit()));
    let (git, clone, fetched) = if is_remote_url(repo) {
        match kept_clone(repo, pinned)? {
            Some((git, fetched)) => (git, None, fetched),
            None => {
                let tmp = tempfile::Builder::new().prefix("dvt-clone-").tempdir()?;
                let started = std::time::Instant::now();
                let git = Git::clone_bare(repo, tmp.path())?;
                tracing::debug!(
                    "cloned {} into {} in {:.3} s",
                    crate::git::login::shown(repo),
                    tmp.path().display(),
                    started.elapsed().as_secs_f64()
                );
                (git, Some(Rc::new(tmp)), true)
            }
        }
    } else {
        let path = Path::new(repo.strip_prefix("file://").unwrap_or(repo));
        let root = dvt_root_of(path)?;
        (Git::open_external(root.as_deref().unwrap_or(path))?, None, true)
    };
    Ok(OpenGit {
        repo: repo.to_string(),
        git: Rc::new(git),
        clone,
        fetched,
    })
}

/// Where dvt keeps the clones of repositories it reads by URL:
/// `$XDG_CACHE_HOME/dvt/clones`, else `~/.cache/dvt/clones`.
fn clones_dir() -> Option<PathBuf> {
    let base = match std::env::var_os("XDG_CACHE_HOME").filter(|d| Path::new(d).is_absolute()) {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(std::env::var_os("HOME").filter(|h| !h.is_empty())?).join(".cache"),
    };
    Some(base.join("dvt").join("clones"))
}

/// The repository at `url` from the clone dvt keeps of it ([`clones_dir`]):
/// made the first time, fetched (only what is new) each time after, one
/// process at a time (another waits); not fetched when it holds commit
/// `pinned`. With whether it was fetched. `None` when there is nowhere to
/// keep it (no home directory, or one that cannot be written): the caller
/// clones into a temporary directory.
fn kept_clone(url: &str, pinned: Option<&str>) -> Result<Option<(Git, bool)>> {
    let Some(base) = clones_dir() else {
        return Ok(None);
    };
    // For messages: the password a URL may carry, hidden.
    let shown = crate::git::login::shown(url);
    if let Err(e) = fs_err::create_dir_all(&base) {
        tracing::debug!("no clone kept of {shown}: {e}");
        return Ok(None);
    }
    // One clone per repository, whichever login reaches it.
    let key = blake3::hash(crate::git::login::without_login(url).0.as_bytes()).to_hex();
    let dir = base.join(format!("{}.git", &key[..32]));
    let lock = fs_err::File::create(base.join(format!("{}.lock", &key[..32])))?;
    lock.file().lock()?;
    // When it was last used, for `prune_unused_clones`.
    let _ = lock.file().set_modified(std::time::SystemTime::now());
    let started = std::time::Instant::now();
    let (git, did) = Git::fetch_clone(url, &dir, pinned)?;
    let took = started.elapsed().as_secs_f64();
    if did == KeptClone::Made {
        prune_unused_clones(&base);
    }
    match did {
        KeptClone::Held => tracing::debug!(
            "{shown}: its clone {} holds {}: not fetched",
            dir.display(),
            pinned.unwrap_or_default()
        ),
        KeptClone::Made => tracing::debug!("cloned {shown} into {} in {took:.3} s", dir.display()),
        KeptClone::Fetched => tracing::debug!("fetched {shown} into {} in {took:.3} s", dir.display()),
    }
    Ok(Some((git, did != KeptClone::Held)))
}

/// Kept clones unused for this long are deleted when another one is made.
const CLONE_UNUSED_FOR: std::time::Duration = std::time::Duration::from_secs(90 * 24 * 3600);

/// Deletes the kept clones in `base` that no command has used for
/// [`CLONE_UNUSED_FOR`] (their lock file says when one last did), each under
/// its lock, skipping any that another process holds. Their lock files stay
/// (empty): deleting one could let two processes lock different files of one
/// name. Failures are only logged: a clone left is a clone kept.
fn prune_unused_clones(base: &Path) {
    let Ok(entries) = fs_err::read_dir(base) else { return };
    let now = std::time::SystemTime::now();
    for e in entries.flatten() {
        let path = e.path();
        if path.extension().is_none_or(|x| x != "lock") {
            continue;
        }
        let clone = path.with_extension("git");
        let unused = e
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| now.duration_since(t).is_ok_and(|d| d > CLONE_UNUSED_FOR));
        if !unused || !clone.exists() {
            continue;
        }
        let Ok(lock) = fs_err::OpenOptions::new().write(true).open(&path) else {
            continue;
        };
        if lock.file().try_lock().is_err() {
            continue;
        }
        match fs_err::remove_dir_all(&clone) {
            Ok(()) => tracing::debug!("deleted {}: unused for 90 days", clone.display()),
            Err(e) => tracing::debug!("could not delete an unused clone: {e}"),
        }
    }
}

/// The repositories one command opens from URLs, each cloned once (as DVC
/// keeps its clones for the length of a command): `update` or `fetch` of
/// several imports from one registry clone it once, and every import is read
/// from the refs that one clone brought.
#[derive(Default)]
pub(crate) struct Clones {
    opened: std::cell::RefCell<std::collections::HashMap<String, OpenGit>>,
}

impl Clones {
    /// [`open_external`], fetching a URL only the first time a revision
    /// needs it (a commit its clone holds does not).
    pub(crate) fn external(&self, repo: &str, rev: Option<&str>, settings: &ExternalConfig) -> Result<External> {
        if !is_remote_url(repo) {
            return open_external(repo, rev, settings);
        }
        let reuse = self.opened.borrow().get(repo).and_then(|open| {
            let holds = || rev.is_some_and(|r| open.git.resolve(r).is_ok_and(|c| c == r));
            (open.fetched || holds()).then(|| open.share())
        });
        let open = match reuse {
            Some(open) => open,
            None => {
                let open = open_git_at(repo, rev)?;
                self.opened.borrow_mut().insert(repo.to_string(), open.share());
                open
            }
        };
        open.at(rev, settings)
    }
}

impl OpenGit {
    /// Another handle on the same repository (and clone).
    fn share(&self) -> OpenGit {
        OpenGit {
            repo: self.repo.clone(),
            git: self.git.clone(),
            clone: self.clone.clone(),
            fetched: self.fetched,
        }
    }

    /// The dvt repository at `rev` (default: HEAD), its config as `settings`
    /// change it.
    pub fn at(self, rev: Option<&str>, settings: &ExternalConfig) -> Result<External> {
        let OpenGit { repo, git, clone, .. } = self;
        let repo = repo.as_str();
        let rev_s = rev.unwrap_or("HEAD");
        let commit = git.resolve(rev_s).map_err(|e| match e {
            crate::Error::Git(crate::error::GitError::NoCommitYet { rev, repo: None }) => {
                crate::error::GitError::NoCommitYet {
                    rev,
                    repo: Some(crate::git::login::shown(repo)),
                }
                .into()
            }
            e => e,
        })?;
        let label = format!("{}@{rev_s}", crate::git::login::shown(repo));
        // A plain git repository (no `.dvt/config.toml` there) is read as DVC
        // reads one: its files, and no data, remote or settings.
        let config = git
            .read_file(commit, ".dvt/config.toml")?
            .map(|c| String::from_utf8_lossy(&c).into_owned());
        let named = PathBuf::from(format!("{label}:.dvt/config.toml"));
        let mut layers = Vec::new();
        if !is_remote_url(repo) {
            // A repository read in place keeps its data where this machine's
            // settings for it say.
            layers.extend(crate::repo::local_cache_layer(&git.root_dir())?);
        }
        if let Some(file) = &settings.config {
            let table = crate::repo::read_config_layer(file)?.ok_or_else(|| crate::error::RepoError::Config {
                path: file.clone(),
                message: "no such file (given with `--config`)".into(),
            })?;
            layers.push((file.clone(), table));
        }
        let mut repo = Repo::at_commit(git.root_dir(), config.as_deref(), &named, layers.clone())?;
        let more = settings.layers(&repo)?;
        if !more.is_empty() {
            layers.extend(more);
            repo = Repo::at_commit(git.root_dir(), config.as_deref(), &named, layers)?;
        }
        tracing::debug!("reading {label} at commit {commit}");
        Ok(External {
            git,
            repo,
            commit,
            label,
            _clone: clone,
        })
    }
}

/// What a path of another repository holds: a file, or a directory (a whole
/// tracked directory or a directory inside one) as a manifest.
#[derive(Debug, Clone)]
pub enum Found {
    /// One file.
    File {
        /// Its id.
        id: ObjectId,
        /// Its size.
        size: u64,
        /// Its executable bit.
        executable: bool,
    },
    /// A directory.
    Dir(Manifest),
}

/// Locates `path` in `ext` and reads what it holds (manifests through `objects`).
/// A path no pointer covers is read from git, as [`find_noting`] says.
pub fn find(ext: &External, path: &str, objects: &Objects<'_>) -> Result<Found> {
    find_noting(ext, path, objects, &mut Vec::new())
}

/// [`find`], noting in `left_out` what a directory holds that cannot be copied.
///
/// A path no pointer covers is what git keeps there, as DVC's `get` and
/// `import` read it: a file, or a directory of git's files together with the
/// data tracked below it. Git's files are stored in `objects`' cache as the
/// objects their content makes, so they are then written (and imported) as
/// tracked data is; symbolic links and submodules, which have no content of
/// their own, are left out and noted.
pub fn find_noting(ext: &External, path: &str, objects: &Objects<'_>, left_out: &mut Vec<String>) -> Result<Found> {
    let searched = Searched {
        snap: Snapshot::at_commit(&ext.repo, ext.git.clone(), ext.label.clone(), ext.commit),
        files: Files::Commit(&ext.git, ext.commit),
        label: format!("`{}` ({})", ext.label, short(&ext.commit)),
    };
    find_in(&searched, path, objects, left_out)
}

/// What [`find_in`] searches: the pointers of `snap`, the files no pointer
/// covers in `files`, named `label` in messages.
struct Searched<'f, 'r> {
    snap: Snapshot<'r>,
    files: Files<'f>,
    label: String,
}

/// Where [`find_in`] reads what no pointer covers.
enum Files<'a> {
    /// A commit's tree.
    Commit(&'a Git, GitId),
    /// A work tree, as it is: the files git does not ignore.
    WorkTree(&'a Path),
}

impl Files<'_> {
    /// What `dir` holds, everything below it (see [`Git::list_tree`]).
    fn list(&self, dir: &str) -> Result<TreeAt> {
        match self {
            Files::Commit(git, commit) => git.list_tree(*commit, dir, true, false),
            Files::WorkTree(root) => super::list::work_tree_at(root, dir, true),
        }
    }

    /// Stores the content of file `rel` (listed as `item`) in `cache`; `None`
    /// for what has none of its own (a symbolic link, a submodule).
    fn store(&self, rel: &str, item: &TreeItem, cache: &Cache) -> Result<Option<crate::cache::Stored>> {
        match self {
            // The blob the listing found: no walk down the tree again.
            Files::Commit(git, _) => match item.blob {
                Some(blob) => Ok(Some(cache.put_bytes(&git.read_blob(blob)?)?)),
                None => Ok(None),
            },
            Files::WorkTree(root) => {
                let abs = root.join(rel);
                let meta = fs_err::symlink_metadata(&abs)?;
                if !meta.is_file() {
                    return Ok(None);
                }
                Ok(Some(cache.put_file(&abs, &crate::statcache::Stamp::of(&meta))?))
            }
        }
    }
}

/// [`find_noting`] in what `searched` names.
fn find_in(
    searched: &Searched<'_, '_>,
    path: &str,
    objects: &Objects<'_>,
    left_out: &mut Vec<String>,
) -> Result<Found> {
    let (snap, label) = (&searched.snap, searched.label.as_str());
    let loc: Located = match snap.locate(path) {
        Err(crate::Error::Git(GitError::NotTrackedAt { .. })) => {
            let Some(path) = super::list::normalize(path) else {
                return Err(GitError::NoSuchPath {
                    path: path.to_string(),
                    rev: label.to_string(),
                }
                .into());
            };
            return find_in_files(searched, &path, objects, left_out);
        }
        found => found?,
    };
    let p = &loc.tracked.pointer;
    objects.note(&loc.tracked);
    match (p.kind, loc.inner.is_empty()) {
        (Kind::File, _) => Ok(Found::File {
            id: p.id,
            size: p.size,
            executable: p.executable,
        }),
        (Kind::Dir, true) => Ok(Found::Dir(objects.manifest(&loc.tracked)?)),
        (Kind::Dir, false) => {
            let m = objects.manifest(&loc.tracked)?;
            match m.part(&loc.inner) {
                Some(Part::File(e)) => Ok(Found::File {
                    id: e.id,
                    size: e.size,
                    executable: e.executable,
                }),
                Some(Part::Dir(sub)) => Ok(Found::Dir(sub)),
                None => Err(GitError::NotTrackedAt {
                    path: path.to_string(),
                    rev: label.to_string(),
                    closest: None,
                }
                .into()),
            }
        }
    }
}

/// `path` where no pointer covers it, read from `files` (see [`find_noting`]).
fn find_in_files(
    searched: &Searched<'_, '_>,
    path: &str,
    objects: &Objects<'_>,
    left_out: &mut Vec<String>,
) -> Result<Found> {
    let Searched { snap, files, label } = searched;
    let full = |inner: &str| super::list::join_rel(path, inner);
    let store = |inner: &str, item: &TreeItem, left_out: &mut Vec<String>| -> Result<Option<Entry>> {
        let Some(stored) = files.store(&full(inner), item, objects.cache())? else {
            left_out.push(full(inner));
            return Ok(None);
        };
        Ok(Some(Entry {
            path: inner.to_string(),
            id: stored.id,
            size: stored.size,
            executable: item.executable,
        }))
    };
    let mut entries: BTreeMap<String, Entry> = BTreeMap::new();
    // Many small files: into a pack, not a file each.
    let packing = objects.cache().begin_packing();
    match files.list(path)? {
        TreeAt::File(item) => {
            let stored = store("", &item, &mut Vec::new())?;
            packing.finish()?;
            return match stored {
                Some(e) => Ok(Found::File {
                    id: e.id,
                    size: e.size,
                    executable: e.executable,
                }),
                None => Err(PathError::Symlink {
                    path: path.into(),
                    link: path.into(),
                }
                .into()),
            };
        }
        TreeAt::Dir(items) => {
            // dvt's own files describe the data of the repository read: not copied.
            for item in items
                .iter()
                .filter(|i| !i.dir && !super::list::is_dvt_file(&full(&i.path)))
            {
                if let Some(e) = store(&item.path, item, left_out)? {
                    entries.insert(e.path.clone(), e);
                }
            }
        }
        TreeAt::Missing => {}
    }
    packing.finish()?;
    // The data tracked below it (pointers, and pipeline outs git ignores).
    let mut empty_dirs = Vec::new();
    let outs = snap.lock_outs().unwrap_or_default();
    for t in snap.pointers()?.into_iter().chain(outs) {
        let Some(rel) = below(path, &t.data_rel) else {
            continue;
        };
        match t.pointer.kind {
            Kind::File => {
                objects.note(&t);
                let e = Entry {
                    path: rel.clone(),
                    id: t.pointer.id,
                    size: t.pointer.size,
                    executable: t.pointer.executable,
                };
                entries.insert(rel, e);
            }
            Kind::Dir => {
                let m = objects.manifest(&t)?;
                for mut e in m.files {
                    e.path = format!("{rel}/{}", e.path);
                    entries.insert(e.path.clone(), e);
                }
                empty_dirs.extend(m.empty_dirs.iter().map(|d| format!("{rel}/{d}")));
            }
        }
    }
    if entries.is_empty() && empty_dirs.is_empty() {
        return Err(GitError::NoSuchPath {
            path: path.to_string(),
            rev: label.to_string(),
        }
        .into());
    }
    Ok(Found::Dir(Manifest::new(entries.into_values().collect(), empty_dirs)))
}

/// `rel` relative to directory `dir` if it lies strictly below it (every path
/// lies below the root, the empty `dir`).
fn below(dir: &str, rel: &str) -> Option<String> {
    if dir.is_empty() {
        return Some(rel.to_string());
    }
    rel.strip_prefix(dir)?.strip_prefix('/').map(str::to_string)
}

/// Makes sure every object of `found` is in `objects`' cache.
fn ensure_all(found: &Found, path: &str, objects: &Objects<'_>, progress: &dyn Progress) -> Result<()> {
    match found {
        Found::File { id, size, .. } => {
            progress.start(&format!("getting {path}"), *size, true);
            objects.ensure(id, Some(path))?;
            progress.inc(*size);
        }
        Found::Dir(m) => {
            progress.start(&format!("getting {path}"), m.total_size(), true);
            // What a cache here has is copied (copies wait on I/O: a few at a
            // time per core).
            let rest: Vec<_> = m
                .files
                .par_iter()
                .with_max_len(1)
                .filter(|e| match objects.ensure_local(&e.id) {
                    true => {
                        progress.inc(e.size);
                        false
                    }
                    false => true,
                })
                .collect();
            progress.finish();
            // The rest from the remote all together, as `fetch` gets them:
            // packs whole or in runs, many requests at once; a remote at a
            // time where pointers name their own.
            for group in objects.by_remote(rest, |e| e.id) {
                let first = group[0];
                let got = objects
                    .remote_for(&first.id, Some(&format!("{path}/{}", first.path)))
                    .and_then(|remote| {
                        let wanted = group.iter().map(|e| (e.id, format!("{path}/{}", e.path), e.size));
                        crate::ops::transfer::download_wanted(&remote, objects.cache(), wanted, progress)
                            .map_err(|e| objects.as_met(e))
                    });
                match got {
                    // The data of an import the remote lacks: from its source, once
                    // for the whole import (each later file is then in the cache).
                    Err(_) if objects.from_source_of(&first.id) => {
                        for e in group.iter().filter(|e| !objects.cache().contains(&e.id)) {
                            objects.ensure(&e.id, Some(&format!("{path}/{}", e.path)))?;
                        }
                    }
                    got => got?,
                }
            }
            return Ok(());
        }
    }
    progress.finish();
    Ok(())
}

/// Writes `found` to `out`, which must not exist, each file from the first of
/// `caches` that has it: into a temporary name beside `out` first, renamed into
/// place when complete and verified. `progress` counts the bytes written.
fn materialize(found: &Found, caches: [&Cache; 2], out: &Path, replace: bool, progress: &dyn Progress) -> Result<u64> {
    let parent = out.parent().unwrap_or(Path::new("."));
    fs_err::create_dir_all(parent)?;
    // Each file's bytes reach the disk before `out` names them: one file is
    // flushed alone; a directory's files with one flush of the file system
    // (one per file made a get of 2,000 small files 4x slower).
    let write_file = |id: &ObjectId, executable: bool, dest: &Path, flush: bool| -> Result<u64> {
        let mut f = fs_err::File::create(dest)?;
        // The first cache that has it: each copy is verified as it is written.
        let cache = caches.into_iter().find(|c| c.contains(id)).unwrap_or(caches[0]);
        let n = cache.copy_to(id, None, &mut f)?;
        progress.inc(n);
        if flush {
            f.sync_all()?;
        }
        // Temporary files are private (0600); the result is an ordinary file.
        use std::os::unix::fs::PermissionsExt;
        let mode = if executable { 0o755 } else { 0o644 };
        fs_err::set_permissions(dest, std::fs::Permissions::from_mode(mode))?;
        Ok(n)
    };
    match found {
        Found::File { id, executable, .. } => {
            let tmp = tempfile::Builder::new()
                .prefix(".dvt-get-")
                .tempfile_in(parent)?
                .into_temp_path();
            let n = write_file(id, *executable, &tmp, true)?;
            put_in_place(&tmp, out, replace)?;
            let _ = tmp.keep();
            Ok(n)
        }
        Found::Dir(m) => {
            let stage = tempfile::Builder::new().prefix(".dvt-get-").tempdir_in(parent)?;
            for d in &m.empty_dirs {
                fs_err::create_dir_all(stage.path().join(d))?;
            }
            let bytes = m
                .files
                .par_iter()
                .map(|e| {
                    let dest = stage.path().join(&e.path);
                    if let Some(p) = dest.parent() {
                        fs_err::create_dir_all(p)?;
                    }
                    write_file(&e.id, e.executable, &dest, false)
                })
                .try_reduce(|| 0, |a, b| Ok(a + b))?;
            use std::os::unix::fs::PermissionsExt;
            fs_err::set_permissions(stage.path(), std::fs::Permissions::from_mode(0o755))?;
            crate::fsutil::sync_filesystem(stage.path())?;
            put_in_place(stage.path(), out, replace)?;
            // The stage is now `out`: do not let the guard delete it.
            std::mem::forget(stage);
            Ok(bytes)
        }
    }
}

/// Renames the complete `new` to `out`. With `replace`, what is at `out` is first
/// moved aside, and deleted only once `new` is in its place (put back if that fails).
pub(crate) fn put_in_place(new: &Path, out: &Path, replace: bool) -> Result<()> {
    let old = match out.symlink_metadata() {
        Ok(_) if replace => {
            let aside = crate::fsutil::temp_sibling(out);
            fs_err::rename(out, &aside)?;
            Some(aside)
        }
        _ => None,
    };
    if let Err(e) = fs_err::rename(new, out) {
        if let Some(aside) = &old {
            let _ = fs_err::rename(aside, out);
        }
        return Err(e.into());
    }
    if let Some(aside) = old {
        match aside.symlink_metadata() {
            Ok(m) if m.is_dir() => fs_err::remove_dir_all(&aside)?,
            _ => fs_err::remove_file(&aside)?,
        }
    }
    Ok(())
}

/// Options of `dvt get`.
#[derive(Debug, Clone)]
pub struct GetOptions {
    /// The other repository: a local path, a `file://` URL, or a git URL.
    pub repo: String,
    /// The path in it (relative to its root).
    pub path: String,
    /// The revision (default: its HEAD).
    pub rev: Option<String>,
    /// Where to write (default: the path's last component, in `cwd`).
    pub out: Option<PathBuf>,
    /// The directory `out` is relative to.
    pub cwd: PathBuf,
    /// `get`: replace what is at `out` (once the new data is complete).
    pub force: bool,
    /// Which of its remotes to read, and how.
    pub settings: ExternalConfig,
    /// Downloads at once from its remote (default: that remote's `jobs`, else
    /// 4 per core), as DVC's `-j`; not recorded by `import`.
    pub jobs: Option<usize>,
}

/// What `get` or `import` did.
#[derive(Debug, Clone, Serialize)]
pub struct GetReport {
    /// Where the data was written.
    pub out: PathBuf,
    /// The commit read; `None` for a work tree read as it is.
    pub commit: Option<String>,
    /// File or directory.
    pub kind: Kind,
    /// The id (directories: the manifest's).
    pub id: ObjectId,
    /// Bytes written.
    pub bytes: u64,
    /// For `import`: the pointer written.
    pub pointer: Option<String>,
    /// What the directory held in git that was not copied: symbolic links and
    /// submodules (paths relative to the repository's root).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub left_out: Vec<String>,
}

fn default_out(cwd: &Path, path: &str, out: Option<&PathBuf>) -> PathBuf {
    match out {
        Some(o) => cwd.join(o),
        None => cwd.join(path.trim_end_matches('/').rsplit('/').next().unwrap_or(path)),
    }
}

fn id_of(found: &Found) -> ObjectId {
    match found {
        Found::File { id, .. } => *id,
        Found::Dir(m) => ObjectId::of(&m.to_bytes()),
    }
}

/// Downloads `opts.path` of another repository to `opts.out`; nothing is
/// tracked. A local work tree given no revision nor remote options is read
/// as it is (its pointers, the files git does not ignore, its committed
/// settings), as DVC's `get` reads one.
pub fn get(opts: &GetOptions, progress: &dyn Progress) -> Result<GetReport> {
    refuse_existing_out(opts)?;
    if let Some(repo) = local_work_tree(&opts.repo, opts.rev.as_deref(), &opts.settings)? {
        let searched = Searched {
            snap: Snapshot::workspace(&repo),
            files: Files::WorkTree(repo.root()),
            label: work_tree_label(&repo),
        };
        return get_with(&repo, None, opts, progress, &|objects, left_out| {
            find_in(&searched, &opts.path, objects, left_out)
        });
    }
    get_from(
        &open_external(&opts.repo, opts.rev.as_deref(), &opts.settings)?,
        opts,
        progress,
    )
}

/// Where a path of another repository is on its remote: what `dvt get
/// --show-url` prints (DVC's flag), and `dvt.api.get_url` of a URL.
#[derive(Debug, Clone, Serialize)]
pub struct ShownUrl {
    /// The object's URL (a directory's: its manifest's); for a directory remote,
    /// a path. For an object in a pack, the pack's.
    pub url: String,
    /// For an object in a pack: the byte range of its stored form in the pack.
    pub range: Option<std::ops::Range<u64>>,
    /// The remote's name, in that repository's config.
    pub remote: String,
    /// The path, relative to that repository's root.
    pub path: String,
    /// The revision asked for.
    pub rev: Option<String>,
    /// The commit read.
    pub commit: String,
    /// The object's id.
    pub id: ObjectId,
    /// Content bytes (a directory: all its files').
    pub size: u64,
    /// File or directory.
    pub kind: Kind,
}

/// Where `opts.path` of another repository is on that repository's remote (the
/// one `opts.settings` names, else its default), as `dvc get --show-url`
/// prints it. Nothing is downloaded but, for a path inside a tracked
/// directory, its manifest. A path git keeps has no such URL.
pub fn show_url(opts: &GetOptions) -> Result<ShownUrl> {
    let ext = open_external(&opts.repo, opts.rev.as_deref(), &opts.settings)?;
    let snap = Snapshot::at_commit(&ext.repo, ext.git.clone(), ext.label.clone(), ext.commit);
    let at = || format!("`{}` ({})", ext.label, short(&ext.commit));
    let path = opts.path.trim_end_matches('/').to_string();
    let loc = match snap.locate(&path) {
        Err(crate::Error::Git(GitError::NotTrackedAt { .. })) => {
            let in_git = super::list::normalize(&path)
                .map(|p| ext.git.list_tree(ext.commit, &p, false, false))
                .transpose()?;
            return Err(match in_git {
                Some(TreeAt::File(_) | TreeAt::Dir(_)) => GitError::KeptByGit { path, rev: at() },
                _ => GitError::NoSuchPath { path, rev: at() },
            }
            .into());
        }
        found => found?,
    };
    let scratch = tempfile::Builder::new().prefix("dvt-show-url-").tempdir()?;
    let objects = Objects::from_source(Cache::new(scratch.path(), ext.repo.config().cache.level), &ext.repo);
    let data = snap.file_data(&loc, &objects)?;
    let remote = objects.remote_for(&data.id, Some(&path))?;
    let (url, range) = remote.block_on(remote.url_of(&data.id))?;
    Ok(ShownUrl {
        url,
        range,
        remote: remote.name.clone(),
        path,
        rev: opts.rev.clone(),
        commit: ext.commit.to_string(),
        id: data.id,
        size: data.size,
        kind: data.kind,
    })
}

/// Fails if `opts.out` exists and `opts.force` is not set.
pub(crate) fn refuse_existing_out(opts: &GetOptions) -> Result<()> {
    if opts.out.is_none() && super::list::normalize(&opts.path).is_some_and(|p| p.is_empty()) {
        return Err(PathError::WholeRepoNeedsOut {
            path: opts.path.clone(),
        }
        .into());
    }
    let out = default_out(&opts.cwd, &opts.path, opts.out.as_ref());
    if out.symlink_metadata().is_ok() && !opts.force {
        return Err(PathError::Exists {
            path: out,
            flag: "--force",
        }
        .into());
    }
    Ok(())
}

/// [`get`] from `ext`, the repository opened at the revision (`opts.repo`
/// and `opts.rev` are not read).
pub(crate) fn get_from(ext: &External, opts: &GetOptions, progress: &dyn Progress) -> Result<GetReport> {
    refuse_existing_out(opts)?;
    get_with(&ext.repo, Some(ext.commit), opts, progress, &|objects, left_out| {
        find_noting(ext, &opts.path, objects, left_out)
    })
}

/// What `get` does once it knows where to look: `find` locates the path,
/// reading through the objects of `source` (read at `commit`, or in its work tree).
fn get_with(
    source: &Repo,
    commit: Option<GitId>,
    opts: &GetOptions,
    progress: &dyn Progress,
    find: &dyn Fn(&Objects<'_>, &mut Vec<String>) -> Result<Found>,
) -> Result<GetReport> {
    let out = default_out(&opts.cwd, &opts.path, opts.out.as_ref());
    let parent = out.parent().unwrap_or(Path::new("."));
    fs_err::create_dir_all(parent)?;
    // A scratch cache beside the output: same filesystem, removed afterwards.
    let scratch = tempfile::Builder::new().prefix(".dvt-get-cache-").tempdir_in(parent)?;
    let cache = Cache::new(scratch.path(), source.config().cache.level);
    let objects = Objects::from_source(cache.clone(), source)
        .with_jobs(opts.jobs)
        .following_sources();
    let mut left_out = Vec::new();
    let found = find(&objects, &mut left_out)?;
    // What the source's own cache holds is read from there as it is written
    // out (checked as any copy is), not copied into the scratch cache first:
    // the data is written once, not twice. Only the rest is fetched.
    let there = source.cache();
    let wanted = match &found {
        Found::File { id, .. } if there.contains(id) => None,
        Found::File { .. } => Some(found.clone()),
        Found::Dir(m) => {
            let rest: Vec<_> = m.files.iter().filter(|e| !there.contains(&e.id)).cloned().collect();
            (!rest.is_empty()).then(|| Found::Dir(crate::manifest::Manifest::new(rest, vec![])))
        }
    };
    if let Some(wanted) = &wanted {
        ensure_all(wanted, &opts.path, &objects, progress)?;
    }
    let total = match &found {
        Found::File { size, .. } => *size,
        Found::Dir(m) => m.total_size(),
    };
    progress.start(&format!("writing {}", out.display()), total, true);
    let bytes = materialize(&found, [&cache, there], &out, opts.force, progress);
    progress.finish();
    let bytes = bytes?;
    Ok(GetReport {
        out,
        commit: commit.map(|c| c.to_string()),
        kind: kind_of(&found),
        id: id_of(&found),
        bytes,
        pointer: None,
        left_out,
    })
}

fn kind_of(found: &Found) -> Kind {
    match found {
        Found::File { .. } => Kind::File,
        Found::Dir(_) => Kind::Dir,
    }
}

/// The pointer for `found`, storing a directory's manifest in `cache`.
fn pointer_for(found: &Found, name: &str, cache: &Cache, source: ImportSource) -> Result<Pointer> {
    let mut p = match found {
        Found::File { id, size, executable } => {
            let mut p = Pointer::file(name.to_string(), *id, *size);
            p.executable = *executable;
            p
        }
        Found::Dir(m) => {
            let stored = cache.put_bytes(&m.to_bytes())?;
            Pointer::dir(name.to_string(), stored.id, m.total_size(), m.files.len() as u64)
        }
    };
    p.source = Some(Source::Repo(source));
    Ok(p)
}

/// How a repository argument is recorded: URLs as given, less the login an
/// http(s) URL may carry (git would publish it), local paths absolute.
fn recorded_repo(repo: &str, cwd: &Path) -> String {
    if repo.contains("://") || is_remote_url(repo) {
        return crate::git::login::without_login(repo).0;
    }
    let abs = crate::repo::normalize(&cwd.join(repo));
    abs.display().to_string()
}

/// How a `--config` file is recorded: relative to the repository's root
/// when inside it (a file committed with it), else absolute.
fn recorded_config(repo: &Repo, file: &Path) -> String {
    let abs = crate::repo::normalize(file);
    match abs.strip_prefix(repo.root()) {
        Ok(rel) => rel.to_string_lossy().into_owned(),
        Err(_) => abs.to_string_lossy().into_owned(),
    }
}

impl ImportSource {
    /// The settings recorded at import, a recorded config file read from
    /// `root` if relative.
    pub fn settings(&self, root: &Path) -> ExternalConfig {
        ExternalConfig {
            config: self.config.as_ref().map(|c| root.join(c)),
            remote: self.remote.clone(),
            remote_config: self.remote_config.clone(),
        }
    }
}

/// Options of `dvt import`.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// What to get, and where (`out` must be inside this repository).
    pub get: GetOptions,
    /// Replace an existing import at `out`.
    pub force: bool,
    /// Write the pointer (with a directory's manifest in the cache) but download
    /// no data: `dvt pull` gets it later, from the remote or else from the source
    /// (DVC's `--no-download`).
    pub no_download: bool,
}

/// Downloads data from another repository and tracks it here with a pointer that
/// records where it came from.
pub fn import(repo: &Repo, opts: &ImportOptions, progress: &dyn Progress) -> Result<GetReport> {
    let g = &opts.get;
    let out = default_out(&g.cwd, &g.path, g.out.as_ref());
    let (out, rel) = repo.resolve(&g.cwd, &out)?;
    repo.check_trackable(&rel)?;
    crate::ops::add::refuse_ignored_pointers(repo, [rel.as_str()])?;
    let pointer_file = pointer_path_for(&out);
    if !opts.force && (out.symlink_metadata().is_ok() || pointer_file.exists()) {
        return Err(PathError::Exists {
            path: out,
            flag: "--force",
        }
        .into());
    }
    // The pointer records the settings, and is committed: no secrets in it.
    if let Some(key) = g
        .settings
        .remote_config
        .keys()
        .find(|k| crate::remote::config::SECRET_KEYS.contains(&k.as_str()))
    {
        return Err(crate::error::RemoteError::SecretInPointer {
            key: key.clone(),
            command: "dvt import",
            flag: "--remote-config",
        }
        .into());
    }
    let _lock = repo.lock(&format!("dvt import {}", g.path))?;
    let ext = open_external(&g.repo, g.rev.as_deref(), &g.settings)?;
    let objects = Objects::from_source(repo.cache().clone(), &ext.repo)
        .with_jobs(g.jobs)
        .following_sources();
    let mut left_out = Vec::new();
    let found = find_noting(&ext, &g.path, &objects, &mut left_out)?;
    if !opts.no_download {
        ensure_all(&found, &g.path, &objects, progress)?;
    }
    let source = ImportSource {
        repo: recorded_repo(&g.repo, &g.cwd),
        rev: g.rev.clone(),
        commit: ext.commit.to_string(),
        path: g.path.clone(),
        remote: g.settings.remote.clone(),
        remote_config: g.settings.remote_config.clone(),
        config: g.settings.config.as_ref().map(|c| recorded_config(repo, c)),
    };
    let name = rel.rsplit('/').next().unwrap_or(&rel).to_string();
    let pointer = pointer_for(&found, &name, repo.cache(), source)?;
    match opts.no_download {
        true => write_pointer(repo, &out, &rel, &pointer)?,
        false => track(repo, &out, &rel, &pointer, opts.force, progress)?,
    }
    Ok(GetReport {
        out,
        commit: Some(ext.commit.to_string()),
        kind: pointer.kind,
        id: pointer.id,
        bytes: pointer.size,
        pointer: Some(format!("{rel}.dvt")),
        left_out,
    })
}

/// Copies into the cache every object of import `t` from where it came from:
/// its source repository at the recorded commit (that repository's cache or
/// remote), verified. Used by fetch and pull when the remote lacks them.
/// `clones`: the repositories this command has cloned so far.
pub(crate) fn fetch_from_source(
    repo: &Repo,
    t: &crate::workspace::Tracked,
    clones: &Clones,
    progress: &dyn Progress,
) -> Result<()> {
    let Some(Source::Repo(src)) = &t.pointer.source else {
        return Ok(());
    };
    store_from_source(repo, repo.cache(), src, &t.pointer, true, clones, progress)
}

/// Copies into `cache` every object of the import `pointer` records (with not
/// `whole`, a directory's manifest only), from source `src` at the recorded commit
/// (its cache or remote, or, if it imported the data too, that import's source),
/// verified. `repo`: the repository whose pointer it is, which the source's
/// settings are relative to.
pub(crate) fn store_from_source(
    repo: &Repo,
    cache: &Cache,
    src: &ImportSource,
    pointer: &Pointer,
    whole: bool,
    clones: &Clones,
    progress: &dyn Progress,
) -> Result<()> {
    let ext = clones.external(&src.repo, Some(&src.commit), &src.settings(repo.root()))?;
    let objects = match whole {
        true => Objects::from_source(cache.clone(), &ext.repo).following_sources(),
        false => Objects::from_source(cache.clone(), &ext.repo),
    };
    let found = find(&ext, &src.path, &objects)?;
    if id_of(&found) != pointer.id {
        return Err(GitError::NotTrackedAt {
            path: format!("{} with id {}", src.path, pointer.id),
            rev: format!("`{}` ({})", src.repo, short(&ext.commit)),
            closest: None,
        }
        .into());
    }
    // A sub-directory's manifest is made here (its id is checked above).
    if let Found::Dir(m) = &found {
        cache.put_bytes(&m.to_bytes())?;
    }
    match whole {
        true => ensure_all(&found, &src.path, &objects, progress),
        false => Ok(()),
    }
}

/// Writes `pointer` for `out` (`rel`), its `.gitignore` entry, and checks it out.
pub(crate) fn track(
    repo: &Repo,
    out: &Path,
    rel: &str,
    pointer: &Pointer,
    force: bool,
    progress: &dyn Progress,
) -> Result<()> {
    record(repo, out, rel, pointer)?;
    crate::ops::checkout::checkout_locked(
        repo,
        &crate::ops::CheckoutOptions {
            targets: vec![pointer_path_for(out)],
            cwd: repo.root().to_path_buf(),
            force,
            allow_missing: false,
            keep_changed: false,
        },
        progress,
    )?;
    Ok(())
}

/// Writes `pointer` for `out` (`rel`) and its `.gitignore` entry; the data is in
/// the cache, and `out` is not touched.
pub(crate) fn record(repo: &Repo, out: &Path, rel: &str, pointer: &Pointer) -> Result<()> {
    if pointer.kind == Kind::Dir {
        repo.cache().mark_complete(&pointer.id);
    }
    write_pointer(repo, out, rel, pointer)
}

/// Writes `pointer` for `out` (`rel`) and its `.gitignore` entry, whether or not
/// the data is in the cache. What the user wrote into a pointer already there
/// (`desc`, `remote`…) is kept.
pub(crate) fn write_pointer(repo: &Repo, out: &Path, rel: &str, pointer: &Pointer) -> Result<()> {
    // `-o` may name a directory that does not exist yet (as with DVC).
    let dir = out.parent().unwrap_or(repo.root());
    fs_err::create_dir_all(dir)?;
    let file = pointer_path_for(out);
    let old = Pointer::load(&file).ok();
    pointer.clone().keeping(old.as_ref()).save(&file)?;
    crate::gitignore::add(dir, rel.rsplit('/').next().unwrap_or(rel))?;
    Ok(())
}

/// What `update` did to one pointer.
#[derive(Debug, Clone, Serialize)]
pub struct Updated {
    /// The pointer file.
    pub pointer: String,
    /// For an import from a URL (`dvt import-url`): the URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The commit recorded before (for a URL, the fingerprint of what was there).
    pub from: String,
    /// The commit recorded now (for a URL, the fingerprint of what is there).
    pub to: String,
    /// Whether the data changed.
    pub changed: bool,
    /// For an import from a URL that changed: the objects and bytes downloaded
    /// (only those whose size or version changed, when the last download is known).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub downloaded: Option<Downloads>,
}

/// How much an update downloaded.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Downloads {
    /// Files.
    pub files: u64,
    /// Bytes.
    pub bytes: u64,
}

/// What `update` updates, and how.
#[derive(Debug, Clone, Default)]
pub struct UpdateOptions {
    /// Import pointers or their data paths; empty means every import.
    pub targets: Vec<PathBuf>,
    /// A directory target stands for every import below it (other pointers
    /// there are skipped), as DVC's `update -R`.
    pub recursive: bool,
    /// The directory relative paths start from.
    pub cwd: PathBuf,
    /// For imports from dvt repositories: follow this revision from now on.
    pub rev: Option<String>,
    /// Replace local changes to imported data.
    pub force: bool,
    /// Downloads at once (default: the source's remote's `jobs`, else 4 per core).
    pub jobs: Option<usize>,
    /// For imports from URLs: send new data to a remote instead of the cache and
    /// workspace, as `import-url --to-remote` (`Some(None)`: the default remote).
    pub to_remote: Option<Option<String>>,
    /// Move the pointer to the new commit (or the URL's new content) and id
    /// only; the data is not downloaded (a URL's is read to hash it, and not
    /// kept) nor the workspace changed (`dvt pull` gets it), as DVC's `update
    /// --no-download`.
    pub no_download: bool,
}

/// Moves imported pointers to the newest commit of their revision (or, with
/// `rev`, to another revision), fetching and checking out the new data;
/// downloads data imported from a URL again if what is there changed. Local
/// changes to imported data stop the update unless `force`.
pub fn update(repo: &Repo, opts: &UpdateOptions, progress: &dyn Progress) -> Result<Vec<Updated>> {
    let targets = match opts.recursive {
        true => crate::workspace::expand_recursive(repo, &opts.cwd, &opts.targets)?,
        false => opts.targets.clone(),
    };
    // None given: every import; given, what `-R` made of them.
    let which = match opts.targets.is_empty() {
        true => Targets::All,
        false => Targets::Named(&targets),
    };
    let pointers = crate::workspace::resolve_targets(repo, &opts.cwd, which)?;
    let _lock = repo.lock("dvt update")?;
    let mut imports = Vec::new();
    for pf in pointers {
        let t = crate::workspace::Tracked::load(repo, &pf)?;
        match &t.pointer.source {
            None if opts.targets.is_empty() || opts.recursive => continue,
            None => return Err(PathError::NotImported { pointer: t.pointer_rel }.into()),
            Some(Source::Repo(_)) if opts.to_remote.is_some() => {
                return Err(PathError::ToRemoteOfRepoImport { pointer: t.pointer_rel }.into());
            }
            Some(_) => imports.push(t),
        }
    }
    if imports.is_empty() && opts.recursive && !opts.targets.is_empty() {
        return Err(PathError::NoImportsBelow {
            targets: opts.targets.clone(),
        }
        .into());
    }
    let remote = match &opts.to_remote {
        Some(name) => Some(crate::remote::Remote::open(repo, name.as_deref(), opts.jobs, true)?),
        None => None,
    };
    let mut out = Vec::new();
    let clones = Clones::default();
    for t in imports {
        let updated = match t.pointer.source.clone() {
            None => continue,
            Some(Source::Repo(src)) => update_from_repo(repo, &t, src, opts, &clones, progress)?,
            Some(Source::Url(src)) => {
                if opts.rev.is_some() {
                    return Err(PathError::RevOfUrlImport { pointer: t.pointer_rel }.into());
                }
                let how = crate::ops::import_url::UrlUpdate {
                    force: opts.force,
                    jobs: opts.jobs,
                    to_remote: remote.as_ref(),
                    no_download: opts.no_download,
                };
                crate::ops::import_url::update_from_url(repo, &t, &src, &how, progress)?
            }
        };
        out.push(updated);
    }
    Ok(out)
}

/// Whether an import's source has moved on since it was imported (what `dvt
/// status` says, as DVC's, unless `--no-updates`).
#[derive(Debug, Clone, Serialize)]
pub struct UpdateCheck {
    /// The pointer file, repo-relative.
    pub pointer: String,
    /// Where the data came from: the repository, or the URL.
    pub source: String,
    /// For an import from a repository: the revision it follows (none: HEAD).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rev: Option<String>,
    /// Whether `dvt update` would bring something new.
    pub available: bool,
    /// Why that could not be told (the source unreachable, say).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Asks the source of each import among `tracked` (others are skipped)
/// whether it moved on: a repository whether its revision names another
/// commit now (over the network only the refs travel), a URL whether what is
/// there differs (a listing). An import pinned to a commit id never moves.
/// A source that cannot be asked gives an [`UpdateCheck::error`], not an error.
/// Repositories are asked all at once, and answers that take longer than
/// [`UPDATE_WAIT`] are given up on (their questions are left to end with the
/// process): a source behind a firewall that drops packets would otherwise
/// hold `status` for minutes.
pub fn check_updates(repo: &Repo, tracked: &[crate::workspace::Tracked]) -> Vec<UpdateCheck> {
    // One question per source and revision, however many imports share it.
    let mut tips = ask_tips(tracked, update_wait());
    let mut out = Vec::new();
    for t in tracked {
        let Some(source) = &t.pointer.source else { continue };
        if out.iter().any(|c: &UpdateCheck| c.pointer == t.pointer_rel) {
            continue;
        }
        let (name, rev, moved) = match source {
            Source::Repo(src) => {
                let tip = match is_pinned(src) {
                    true => Ok(Some(src.commit.clone())),
                    false => tips
                        .entry((src.repo.clone(), src.rev.clone()))
                        .or_insert_with(|| Err("it was not asked".into()))
                        .clone(),
                };
                let moved = tip.and_then(|tip| match tip {
                    Some(c) => Ok(c != src.commit),
                    None => Err(format!(
                        "it has no branch or tag `{}` now",
                        src.rev.as_deref().unwrap_or("HEAD")
                    )),
                });
                (src.repo.clone(), src.rev.clone(), moved)
            }
            Source::Url(src) => {
                let moved = crate::ops::import_url::source_changed(repo, src).map_err(|e| crate::error_chain(&e));
                (src.url.clone(), None, moved)
            }
        };
        out.push(UpdateCheck {
            pointer: t.pointer_rel.clone(),
            source: name,
            rev,
            available: moved.as_ref().is_ok_and(|m| *m),
            error: moved.err(),
        });
    }
    out
}

/// How long `status` waits for the sources of imports to answer: 10 s, or
/// `DVT_UPDATE_WAIT` seconds.
pub const UPDATE_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

fn update_wait() -> std::time::Duration {
    std::env::var("DVT_UPDATE_WAIT")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .and_then(|s| std::time::Duration::try_from_secs_f64(s).ok())
        .unwrap_or(UPDATE_WAIT)
}

/// Whether an import follows a commit id (its `rev` names the commit it has),
/// which never moves: its source is not asked.
fn is_pinned(src: &crate::pointer::ImportSource) -> bool {
    src.rev
        .as_deref()
        .is_some_and(|r| r.len() >= 7 && src.commit.starts_with(r))
}

type Tips = std::collections::BTreeMap<(String, Option<String>), std::result::Result<Option<String>, String>>;

/// Asks every repository that imports among `tracked` follow (unpinned) for
/// the commit of their revision, each in a thread of its own, waiting up to
/// `wait` for all; one not answered by then gets an error saying so.
fn ask_tips(tracked: &[crate::workspace::Tracked], wait: std::time::Duration) -> Tips {
    let mut asked = std::collections::BTreeSet::new();
    for t in tracked {
        if let Some(Source::Repo(src)) = &t.pointer.source
            && !is_pinned(src)
        {
            asked.insert((src.repo.clone(), src.rev.clone()));
        }
    }
    let (send, answers) = std::sync::mpsc::channel();
    // Each question to a remote's scratch repository lives in here, deleted
    // when this returns, answered or not (made only if a remote is asked).
    let scratch = asked
        .iter()
        .any(|(repo, _)| is_remote_url(repo))
        .then(|| tempfile::Builder::new().prefix("dvt-ls-remote-").tempdir());
    for (n, key) in asked.iter().enumerate() {
        let (send, key) = (send.clone(), key.clone());
        let scratch = match &scratch {
            Some(Ok(s)) => Ok(s.path().join(n.to_string())),
            Some(Err(e)) => Err(e.to_string()),
            None => Ok(PathBuf::new()),
        };
        // Detached: one that hangs is left to end with the process.
        std::thread::spawn(move || {
            let tip = scratch.and_then(|s| tip_of(&key.0, key.1.as_deref(), &s));
            let _ = send.send((key, tip));
        });
    }
    drop(send);
    let deadline = std::time::Instant::now() + wait;
    let mut tips = Tips::new();
    while tips.len() < asked.len() {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match answers.recv_timeout(left) {
            Ok((key, tip)) => {
                tips.insert(key, tip);
            }
            Err(_) => break,
        }
    }
    for key in asked {
        tips.entry(key).or_insert_with(|| {
            Err(format!(
                "no answer within {} s (`--no-updates` skips the check)",
                wait.as_secs_f64()
            ))
        });
    }
    tips
}

/// The commit `rev` (default HEAD) of repository `repo` names now.
/// `scratch`: where to make the empty repository a remote is asked from
/// ([`Git::remote_tip`]).
fn tip_of(repo: &str, rev: Option<&str>, scratch: &Path) -> std::result::Result<Option<String>, String> {
    let tip = match is_remote_url(repo) {
        true => Git::remote_tip(repo, rev, scratch),
        false => open_git(repo)
            .and_then(|g| g.git.resolve(rev.unwrap_or("HEAD")))
            .map(Some),
    };
    tip.map(|c| c.map(|c| c.to_string()))
        .map_err(|e| crate::error_chain(&e))
}

fn update_from_repo(
    repo: &Repo,
    t: &crate::workspace::Tracked,
    src: ImportSource,
    opts: &UpdateOptions,
    clones: &Clones,
    progress: &dyn Progress,
) -> Result<Updated> {
    let rev = opts.rev.clone().or(src.rev.clone());
    let ext = clones.external(&src.repo, rev.as_deref(), &src.settings(repo.root()))?;
    let to = ext.commit.to_string();
    if to == src.commit && rev == src.rev {
        return Ok(Updated {
            pointer: t.pointer_rel.clone(),
            url: None,
            from: src.commit,
            to,
            changed: false,
            downloaded: None,
        });
    }
    let objects = Objects::from_source(repo.cache().clone(), &ext.repo)
        .with_jobs(opts.jobs)
        .following_sources();
    let found = find(&ext, &src.path, &objects)?;
    let name = t.pointer.path.clone();
    let source = ImportSource {
        rev: rev.clone(),
        commit: to.clone(),
        ..src.clone()
    };
    let pointer = pointer_for(&found, &name, repo.cache(), source)?;
    let changed = pointer.id != t.pointer.id;
    if opts.no_download {
        write_pointer(repo, &t.data_abs, &t.data_rel, &pointer)?;
    } else {
        // Before downloading anything: local changes the update would overwrite stop it.
        if !opts.force && changed {
            crate::ops::checkout::refuse_unrecorded_changes(repo, t)?;
        }
        ensure_all(&found, &src.path, &objects, progress)?;
        track(repo, &t.data_abs, &t.data_rel, &pointer, opts.force, progress)?;
    }
    Ok(Updated {
        pointer: t.pointer_rel.clone(),
        url: None,
        from: src.commit,
        to,
        changed,
        downloaded: None,
    })
}
