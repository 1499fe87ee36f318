//! `dvt list`: what a dvt repository holds at a commit, files in git and data
//! tracked by dvt side by side, as `dvc list` shows them. For browsing a data
//! registry before `dvt get` or `dvt import`.
//!
//! The repository is read as `get` reads it (see [`mod@super::import`]): at a commit,
//! from its tree, so a bare clone or a git URL works; or, for a local work
//! tree with no revision given, as the work tree is (as `dvc list .` lists it). Listing inside a tracked
//! directory, or recursively through one, reads its manifest from the
//! repository's cache or its default remote; no data is downloaded.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use crate::cache::Cache;
use crate::error::{GitError, Result};
use crate::git::{TreeAt, TreeItem};
use crate::manifest::{Manifest, Part};
use crate::object::ObjectId;
use crate::pointer::Kind;
use crate::repo::Repo;
use crate::snapshot::{Located, Objects, Snapshot, inside, short};
use crate::workspace::Tracked;

use super::import::{local_work_tree, open_external, work_tree_label};

/// Options of `dvt list`.
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    /// The repository: a local path, a `file://` URL, or a git URL.
    pub repo: String,
    /// The directory (or file) to list, relative to its root; empty for the root.
    pub path: String,
    /// The revision (default: a local work tree as it is, with no remote
    /// options; otherwise its HEAD).
    pub rev: Option<String>,
    /// Every file below the path, through tracked directories too, instead of
    /// the path's children.
    pub recursive: bool,
    /// Only what dvt tracks (and the directories leading to it).
    pub dvt_only: bool,
    /// Read the sizes of the files git keeps (tracked data's sizes are always
    /// known: its pointer or manifest records them).
    pub sizes: bool,
    /// With `recursive`, outside tracked data: a tracked directory as one
    /// entry (its content's size from its pointer), not its files; no
    /// manifest is read for it.
    pub whole_tracked: bool,
    /// With `recursive`: no deeper than this many levels below the path (DVC's
    /// `-L`); what lies deeper shows as the directory at that level.
    pub depth: Option<usize>,
    /// Which of its remotes to read (manifests inside tracked directories), and how.
    pub settings: super::import::ExternalConfig,
}

/// Who keeps an entry's content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Keeper {
    /// git: a file committed as it is (pointer files among them).
    Git,
    /// dvt: tracked data, a file or directory inside tracked data, or a
    /// directory holding only tracked data.
    Dvt,
}

/// One line of a listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ListEntry {
    /// Its path, relative to the path listed (for a file listed alone: its name).
    pub path: String,
    /// File or directory.
    pub kind: Kind,
    /// Who keeps it.
    pub keeper: Keeper,
    /// Size in bytes: a file's; a tracked directory's content; unknown for other
    /// directories, and for git's files unless [`ListOptions::sizes`] asks.
    pub size: Option<u64>,
    /// Whether a file is executable.
    pub executable: bool,
    /// What dvt stores it as: a tracked file's object, a tracked directory's
    /// manifest (none for git's entries and directories inside tracked data).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<ObjectId>,
    /// Whether it is one of dvt's own files, not the repository's content (a
    /// pointer, `dvt.toml`, `dvt.lock`, a `.dvtignore`): listed, as `dvc list`
    /// lists `.dvc` files, but left out of copies and sizes, and out of
    /// `DvtFileSystem` (which reads this mark rather than knowing the names).
    pub dvt_file: bool,
}

/// What `dvt list` found.
#[derive(Debug, Clone, Serialize)]
pub struct Listing {
    /// The commit read; `None` for the work tree.
    pub commit: Option<String>,
    /// The entries, sorted by path.
    pub entries: Vec<ListEntry>,
    /// Whether the path listed is a file (its one entry), not a directory.
    #[serde(skip)]
    pub path_is_file: bool,
}

/// Lists `opts.path` of another (or this) repository at a commit, or in its
/// work tree (see [`ListOptions::rev`]).
pub fn list(opts: &ListOptions) -> Result<Listing> {
    let mut listing = list_all(opts)?;
    if let Some(depth) = opts.depth.filter(|_| opts.recursive) {
        let mut kept: BTreeMap<String, ListEntry> = BTreeMap::new();
        for e in listing.entries {
            match dir_at_level(&e.path, depth) {
                None => {
                    kept.insert(e.path.clone(), e);
                }
                // Deeper: the directory at the last level shown, once.
                Some(dir) => {
                    let dir = dir.to_string();
                    kept.entry(dir.clone())
                        .or_insert_with(|| ListEntry::dir(dir, e.keeper, None));
                }
            }
        }
        listing.entries = kept.into_values().collect();
    }
    Ok(listing)
}

/// The directory at `level` levels (at least 1) that `path` (`/`-separated)
/// lies below, if it lies deeper than that: what `-L` shows in its place.
pub(crate) fn dir_at_level(path: &str, level: usize) -> Option<&str> {
    path.match_indices('/').nth(level.max(1) - 1).map(|(i, _)| &path[..i])
}

/// What a listing reads: a commit's tree, or (a local work tree with no
/// revision and no remote options, as DVC lists one) the work tree as it is.
enum View {
    Commit(super::import::External),
    WorkTree(Repo),
}

impl View {
    fn open(opts: &ListOptions) -> Result<View> {
        if let Some(repo) = local_work_tree(&opts.repo, opts.rev.as_deref(), &opts.settings)? {
            return Ok(View::WorkTree(repo));
        }
        Ok(View::Commit(open_external(
            &opts.repo,
            opts.rev.as_deref(),
            &opts.settings,
        )?))
    }

    fn repo(&self) -> &Repo {
        match self {
            View::Commit(ext) => &ext.repo,
            View::WorkTree(repo) => repo,
        }
    }

    fn snapshot(&self) -> Snapshot<'_> {
        match self {
            View::Commit(ext) => Snapshot::at_commit(&ext.repo, ext.git.clone(), ext.label.clone(), ext.commit),
            View::WorkTree(repo) => Snapshot::workspace(repo),
        }
    }

    fn commit(&self) -> Option<String> {
        match self {
            View::Commit(ext) => Some(ext.commit.to_string()),
            View::WorkTree(_) => None,
        }
    }

    /// How errors name what was read.
    fn label(&self) -> String {
        match self {
            View::Commit(ext) => format!("`{}` ({})", ext.label, short(&ext.commit)),
            View::WorkTree(repo) => work_tree_label(repo),
        }
    }

    /// What `dir` holds besides tracked data, as [`crate::git::Git::list_tree`] says it.
    fn tree(&self, dir: &str, recursive: bool, sizes: bool) -> Result<TreeAt> {
        match self {
            View::Commit(ext) => ext.git.list_tree(ext.commit, dir, recursive, sizes),
            View::WorkTree(repo) => work_tree_at(repo.root(), dir, recursive),
        }
    }
}

/// What `dir` (root-relative; empty for the root) holds in the work tree at
/// `root`, as a commit's tree would: the files git does not ignore (tracked
/// or not), with their sizes. `.git` is not entered, and `.dvt` only for the
/// files git keeps there.
pub(crate) fn work_tree_at(root: &Path, dir: &str, recursive: bool) -> Result<TreeAt> {
    let top = root.join(dir);
    let meta = match top.symlink_metadata() {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(TreeAt::Missing),
        Err(e) => return Err(e.into()),
    };
    let item = |path: String, meta: &std::fs::Metadata| {
        use std::os::unix::fs::PermissionsExt;
        TreeItem {
            path,
            dir: meta.is_dir(),
            size: (!meta.is_dir()).then_some(meta.len()),
            executable: meta.is_file() && meta.permissions().mode() & 0o111 != 0,
            blob: None,
        }
    };
    if !meta.is_dir() {
        return Ok(TreeAt::File(item(dir.to_string(), &meta)));
    }
    let mut walk = ignore::WalkBuilder::new(&top);
    walk.standard_filters(false)
        .hidden(false)
        .git_ignore(true)
        .require_git(false)
        .parents(true)
        .follow_links(false)
        .filter_entry(|e| e.file_name() != ".git");
    if !recursive {
        walk.max_depth(Some(1));
    }
    let mut items = Vec::new();
    for entry in walk.build() {
        let entry = entry.map_err(|e| std::io::Error::other(e.to_string()))?;
        let Ok(rel) = entry.path().strip_prefix(&top) else {
            continue;
        };
        let Some(rel) = rel.to_str() else {
            let shown = Path::new(dir).join(rel);
            tracing::warn!("`{}` is left out: its name is not UTF-8", shown.display());
            continue;
        };
        if rel.is_empty() {
            continue;
        }
        let meta = entry.path().symlink_metadata()?;
        items.push(item(rel.to_string(), &meta));
    }
    items.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(TreeAt::Dir(items))
}

fn list_all(opts: &ListOptions) -> Result<Listing> {
    let view = View::open(opts)?;
    let at = || view.label();
    let Some(path) = normalize(&opts.path) else {
        return Err(GitError::NoSuchPath {
            path: opts.path.clone(),
            rev: at(),
        }
        .into());
    };
    let snap = view.snapshot();
    // A path inside tracked data is usually found by its pointer's name, without
    // reading every pointer; anything else needs them all.
    let covering = match path.is_empty() {
        true => None,
        false => snap.covering_by_name(&path)?,
    };
    let tracked = match covering {
        Some(_) => Vec::new(),
        None => snap.pointers()?,
    };
    let covering = covering.or_else(|| {
        tracked.iter().find_map(|t| {
            inside(&t.data_rel, &path).map(|inner| Located {
                tracked: t.clone(),
                inner,
            })
        })
    });
    // Manifests only, into a scratch cache removed afterwards: listing writes
    // nothing to the repository it reads.
    let scratch = tempfile::Builder::new().prefix("dvt-list-").tempdir()?;
    let objects = Objects::from_source(
        Cache::new(scratch.path(), view.repo().config().cache.level),
        view.repo(),
    );

    // Inside tracked data (or the tracked path itself): its manifest says it all.
    if let Some(Located { tracked: t, inner }) = covering.filter(|_| !path.is_empty()) {
        let name = path.rsplit('/').next().unwrap_or(&path).to_string();
        let (entries, path_is_file) = match t.pointer.kind {
            Kind::File => (
                vec![
                    ListEntry::file(name, Some(t.pointer.size), t.pointer.executable, Keeper::Dvt)
                        .with_id(t.pointer.id),
                ],
                true,
            ),
            Kind::Dir => {
                let manifest = objects.manifest(&t)?;
                if inner.is_empty() {
                    (manifest_entries(&manifest, "", opts.recursive), false)
                } else {
                    match manifest.part(&inner) {
                        Some(Part::File(e)) => (
                            vec![ListEntry::file(name, Some(e.size), e.executable, Keeper::Dvt).with_id(e.id)],
                            true,
                        ),
                        Some(Part::Dir(m)) => (manifest_entries(&m, "", opts.recursive), false),
                        None => return Err(GitError::NoSuchPath { path, rev: at() }.into()),
                    }
                }
            }
        };
        return Ok(Listing {
            commit: view.commit(),
            entries,
            path_is_file,
        });
    }

    let mut entries: BTreeMap<String, ListEntry> = BTreeMap::new();
    let mut path_is_file = false;
    match view.tree(&path, opts.recursive, opts.sizes)? {
        TreeAt::File(item) => {
            path_is_file = true;
            let name = path.rsplit('/').next().unwrap_or(&path).to_string();
            let e = ListEntry::file(name.clone(), item.size, item.executable, Keeper::Git).marked(&path);
            entries.insert(name, e);
        }
        TreeAt::Dir(items) => {
            for item in items.into_iter().filter(|i| !in_dvt_dir(&join_rel(&path, &i.path))) {
                let e = match item.dir {
                    true if opts.recursive => continue,
                    true => ListEntry::dir(item.path.clone(), Keeper::Git, None),
                    false => ListEntry::file(item.path.clone(), item.size, item.executable, Keeper::Git)
                        .marked(&join_rel(&path, &item.path)),
                };
                entries.insert(item.path, e);
            }
        }
        TreeAt::Missing => {}
    }
    let below: Vec<(&Tracked, String)> = tracked
        .iter()
        .filter_map(|t| {
            let rel = if path.is_empty() {
                t.data_rel.clone()
            } else {
                t.data_rel.strip_prefix(&format!("{path}/"))?.to_string()
            };
            Some((t, rel))
        })
        .collect();
    if below.is_empty() && entries.is_empty() {
        return Err(GitError::NoSuchPath { path, rev: at() }.into());
    }
    let mut holds_dvt: Vec<String> = Vec::new();
    for (t, rel) in below {
        match rel.split_once('/') {
            // Deeper down: the directory leading there.
            Some((top, _)) if !opts.recursive => {
                holds_dvt.push(top.to_string());
                entries
                    .entry(top.to_string())
                    .or_insert_with(|| ListEntry::dir(top.to_string(), Keeper::Dvt, None));
            }
            _ if opts.recursive && !opts.whole_tracked && t.pointer.kind == Kind::Dir => {
                for e in manifest_entries(&objects.manifest(t)?, &rel, true) {
                    entries.insert(e.path.clone(), e);
                }
            }
            _ => {
                let e = ListEntry {
                    path: rel.clone(),
                    kind: t.pointer.kind,
                    keeper: Keeper::Dvt,
                    size: Some(t.pointer.size),
                    executable: t.pointer.executable,
                    id: Some(t.pointer.id),
                    dvt_file: false,
                };
                entries.insert(rel, e);
            }
        }
    }
    let mut entries: Vec<ListEntry> = entries.into_values().collect();
    if opts.dvt_only {
        entries.retain(|e| e.keeper == Keeper::Dvt || holds_dvt.contains(&e.path));
    }
    Ok(Listing {
        commit: view.commit(),
        entries,
        path_is_file,
    })
}

/// What `dvt du` found.
#[derive(Debug, Clone, Serialize)]
pub struct Usage {
    /// The commit read; `None` for the work tree.
    pub commit: Option<String>,
    /// The path measured, relative to the repository's root (`.` for the root).
    pub path: String,
    /// The size of everything below it, in bytes (git's files and dvt's data).
    pub size: u64,
    /// What is just below it, each with the size of everything below it,
    /// sorted by path; empty for a file.
    pub entries: Vec<ListEntry>,
}

/// `dvt du`: how many bytes `opts.path` of a repository holds at a commit,
/// and each entry just below it: files git keeps and data dvt tracks, as
/// their content's size (not the cache's compressed size). Tracked
/// directories are measured by their pointers; a manifest is read only to
/// measure what is inside tracked data.
pub fn du(opts: &ListOptions) -> Result<Usage> {
    let mut listing = list(&ListOptions {
        recursive: true,
        whole_tracked: true,
        sizes: true,
        ..opts.clone()
    })?;
    let path = match normalize(&opts.path).unwrap_or_default() {
        p if p.is_empty() => ".".to_string(),
        p => p,
    };
    // dvt's own files are not the repository's content (as `dvc du` leaves
    // out `.dvc` files); a file named alone is measured whatever it is.
    if !listing.path_is_file {
        listing.entries.retain(|e| !e.dvt_file);
    }
    let size = listing.entries.iter().map(|e| e.size.unwrap_or(0)).sum();
    if listing.path_is_file {
        return Ok(Usage {
            commit: listing.commit,
            path,
            size,
            entries: Vec::new(),
        });
    }
    let mut top: BTreeMap<String, ListEntry> = BTreeMap::new();
    for e in listing.entries {
        match e.path.split_once('/') {
            None => {
                top.insert(e.path.clone(), e);
            }
            Some((first, _)) => {
                let dir = top
                    .entry(first.to_string())
                    .or_insert_with(|| ListEntry::dir(first.to_string(), e.keeper, Some(0)));
                if e.keeper == Keeper::Git {
                    dir.keeper = Keeper::Git;
                }
                dir.size = Some(dir.size.unwrap_or(0) + e.size.unwrap_or(0));
            }
        }
    }
    Ok(Usage {
        commit: listing.commit,
        path,
        size,
        entries: top.into_values().collect(),
    })
}

/// Whether `rel` (root-relative) is `.dvt` or inside it: dvt's own
/// directory, which listings leave out (as DVC's leave out `.dvc`).
pub(crate) fn in_dvt_dir(rel: &str) -> bool {
    rel.strip_prefix(crate::repo::DVT_DIR)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// Whether `rel` (root-relative) is one of dvt's files rather than the
/// repository's content: in `.dvt`, a pointer file, the pipeline's
/// `dvt.toml` or `dvt.lock`, or a `.dvtignore`. Copies of a directory (`get`,
/// `import`) and sizes (`du`) leave them out, as DVC's leave out `.dvc` files,
/// `dvc.yaml` and `.dvcignore`: they describe data in the repository read and
/// would mean something else (or be taken as this repository's own) where the
/// copy lands.
pub(crate) fn is_dvt_file(rel: &str) -> bool {
    let name = rel.rsplit('/').next().unwrap_or(rel);
    in_dvt_dir(rel)
        || crate::pointer::is_pointer_path(Path::new(name))
        || [
            crate::pipeline::PIPELINE_FILE,
            crate::pipeline::LOCK_FILE,
            crate::workspace::IGNORE_FILE,
        ]
        .contains(&name)
}

/// `inner` (relative to directory `dir`; empty `dir`: the root) made root-relative.
pub(crate) fn join_rel(dir: &str, inner: &str) -> String {
    match (dir.is_empty(), inner.is_empty()) {
        (true, _) => inner.to_string(),
        (false, true) => dir.to_string(),
        (false, false) => format!("{dir}/{inner}"),
    }
}

/// A path as given, made repo-relative: `.`, `./` and trailing `/` dropped;
/// `None` for an absolute path or one with `..`, which no repository holds.
/// `path` as a repo-relative path (`.` and the empty path: the root, ``); `None`
/// if it is not a plain relative path.
pub(crate) fn normalize(path: &str) -> Option<String> {
    let p = path.trim_start_matches("./").trim_end_matches('/');
    if p.is_empty() || p == "." {
        return Some(String::new());
    }
    crate::relpath::validate(p).ok()?;
    Some(p.to_string())
}

impl ListEntry {
    fn file(path: String, size: Option<u64>, executable: bool, keeper: Keeper) -> ListEntry {
        ListEntry {
            path,
            kind: Kind::File,
            keeper,
            size,
            executable,
            id: None,
            dvt_file: false,
        }
    }

    /// Marks a file git keeps at root-relative `rel` if it is one of dvt's own.
    fn marked(self, rel: &str) -> ListEntry {
        ListEntry {
            dvt_file: is_dvt_file(rel),
            ..self
        }
    }

    fn with_id(self, id: ObjectId) -> ListEntry {
        ListEntry { id: Some(id), ..self }
    }

    fn dir(path: String, keeper: Keeper, size: Option<u64>) -> ListEntry {
        ListEntry {
            path,
            kind: Kind::Dir,
            keeper,
            size,
            executable: false,
            id: None,
            dvt_file: false,
        }
    }
}

/// A manifest's entries under `prefix`: every file if `recursive`, else its
/// top-level files and directories (with their content's size).
fn manifest_entries(m: &Manifest, prefix: &str, recursive: bool) -> Vec<ListEntry> {
    let join = |p: &str| {
        if prefix.is_empty() {
            p.to_string()
        } else {
            format!("{prefix}/{p}")
        }
    };
    if recursive {
        return m
            .files
            .iter()
            .map(|e| ListEntry::file(join(&e.path), Some(e.size), e.executable, Keeper::Dvt).with_id(e.id))
            .collect();
    }
    let mut out: BTreeMap<String, ListEntry> = BTreeMap::new();
    for e in &m.files {
        match e.path.split_once('/') {
            None => {
                out.insert(
                    e.path.clone(),
                    ListEntry::file(join(&e.path), Some(e.size), e.executable, Keeper::Dvt).with_id(e.id),
                );
            }
            Some((top, _)) => {
                let d = out
                    .entry(top.to_string())
                    .or_insert_with(|| ListEntry::dir(join(top), Keeper::Dvt, Some(0)));
                d.size = Some(d.size.unwrap_or(0) + e.size);
            }
        }
    }
    for d in &m.empty_dirs {
        let top = d.split('/').next().unwrap_or(d);
        out.entry(top.to_string())
            .or_insert_with(|| ListEntry::dir(join(top), Keeper::Dvt, Some(0)));
    }
    out.into_values().collect()
}
