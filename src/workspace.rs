//! The workspace: finding pointers, walking tracked paths, identifying file
//! content through the stat cache, and comparing it with what pointers record.

use std::collections::HashSet;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use fs_err as fs;
use ignore::gitignore::{Gitignore, GitignoreBuilder};
use rayon::prelude::*;
use serde::Serialize;

use crate::cache::{Cache, SMALL_OBJECT};
use crate::error::{CacheError, PathError, Result};
use crate::manifest::{Entry, Manifest, Part};
use crate::object::ObjectId;
use crate::pointer::{Kind, POINTER_EXT, Pointer, is_pointer_path, pointer_path_for};
use crate::progress::Progress;
use crate::repo::{DVT_DIR, Repo};
use crate::statcache::{Stamp, StatCache};

/// The name of dvt's ignore files (gitignore syntax).
pub const IGNORE_FILE: &str = ".dvtignore";

/// A file found in the workspace.
#[derive(Debug, Clone)]
pub struct Found {
    /// Path relative to the walked directory, `/`-separated.
    pub rel: String,
    /// What tells a change of its content (not following links).
    pub stamp: Stamp,
    /// Its permission bits.
    pub mode: u32,
}

impl Found {
    /// Whether any execute bit is set.
    pub fn executable(&self) -> bool {
        self.mode & 0o111 != 0
    }
}

/// The content of a directory in the workspace.
#[derive(Debug, Default)]
pub struct Scan {
    /// Regular files, sorted by path.
    pub files: Vec<Found>,
    /// Directories with nothing (not ignored) below them, sorted.
    pub empty_dirs: Vec<String>,
    /// dvt's temporary files and directories found (and skipped): left by killed
    /// runs, unless a dvt process is writing them now.
    pub leftovers: Vec<PathBuf>,
}

/// Walks the directory `abs` inside the repository at `root`, honouring
/// `.dvtignore` files (in `abs`, below it, and in its parents up to `root`) and
/// skipping `.git`, `.dvt` and dvt's temporary files. Symbolic links and special
/// files are errors. Subdirectories are walked in parallel, and every `stat` is
/// relative to an open directory.
pub fn scan_dir(root: &Path, abs: &Path) -> Result<Scan> {
    let mut ignores = Vec::new();
    if let Ok(rel) = abs.strip_prefix(root) {
        let mut dir = root.to_path_buf();
        let mut parts = rel.components().peekable();
        loop {
            if let Some(m) = load_ignore(&dir)? {
                ignores.push(Arc::new(m));
            }
            match parts.next() {
                Some(c) if parts.peek().is_some() => dir.push(c),
                _ => break,
            }
        }
    }
    let mut scan = walk(abs, "", &ignores).map_err(|e| e.relative_to(root))?;
    scan.empty_dirs.sort_unstable();
    Ok(scan)
}

fn load_ignore(dir: &Path) -> Result<Option<Gitignore>> {
    let file = dir.join(IGNORE_FILE);
    if !file.is_file() {
        return Ok(None);
    }
    let mut b = GitignoreBuilder::new(dir);
    if let Some(e) = b.add(&file) {
        return Err(bad_ignore(&file, &e));
    }
    b.build().map(Some).map_err(|e| bad_ignore(&file, &e))
}

fn bad_ignore(file: &Path, e: &ignore::Error) -> crate::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("invalid pattern in `{}`: {e}", file.display()),
    )
    .into()
}

fn is_ignored(ignores: &[Arc<Gitignore>], path: &Path, is_dir: bool) -> bool {
    for m in ignores.iter().rev() {
        match m.matched(path, is_dir) {
            ignore::Match::Ignore(_) => return true,
            ignore::Match::Whitelist(_) => return false,
            ignore::Match::None => {}
        }
    }
    false
}

/// The `.dvtignore` rule that decides a path, as `dvt check-ignore -d` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IgnoreRule {
    /// The `.dvtignore` file, relative to the root; `(built-in)` for `.git` and `.dvt`.
    pub source: String,
    /// Its line number (1-based; 0 for a built-in rule).
    pub line: usize,
    /// The pattern as written (a leading `!` re-includes).
    pub pattern: String,
}

/// Whether `add` and `status` skip a path inside tracked data, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IgnoreCheck {
    /// The path, relative to the root.
    pub path: String,
    /// Whether it is excluded (it, or a directory above it, matches an ignore rule).
    pub ignored: bool,
    /// The rule that decided: the one that excludes it, or a `!` rule that
    /// re-includes it; `None` when no rule matches.
    pub rule: Option<IgnoreRule>,
}

/// Checks repo-relative `rel` against the `.dvtignore` files from the root down,
/// as a walk of a tracked directory would: a path is excluded when it or any
/// directory above it matches (the last matching rule wins, and a walk does not
/// enter an excluded directory). `is_dir` says what `rel` is when it does not exist.
pub fn check_ignore(root: &Path, rel: &str, is_dir: bool) -> Result<IgnoreCheck> {
    let parts: Vec<&str> = rel.split('/').filter(|p| !p.is_empty() && *p != ".").collect();
    let mut ignores: Vec<Gitignore> = Vec::new();
    let mut dir = root.to_path_buf();
    let mut rule = None;
    for (i, part) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        if *part == ".git" || *part == DVT_DIR {
            let rule = IgnoreRule {
                source: "(built-in)".into(),
                line: 0,
                pattern: format!("{part}/"),
            };
            return Ok(IgnoreCheck {
                path: rel.to_string(),
                ignored: true,
                rule: Some(rule),
            });
        }
        if let Some(m) = load_ignore(&dir)? {
            ignores.push(m);
        }
        let path = dir.join(part);
        let path_is_dir = !last || fs::symlink_metadata(&path).map(|m| m.is_dir()).unwrap_or(is_dir);
        rule = None;
        for m in ignores.iter().rev() {
            let glob = match m.matched(&path, path_is_dir) {
                ignore::Match::Ignore(g) | ignore::Match::Whitelist(g) => g,
                ignore::Match::None => continue,
            };
            let found = ignore_rule(root, glob)?;
            if !glob.is_whitelist() {
                return Ok(IgnoreCheck {
                    path: rel.to_string(),
                    ignored: true,
                    rule: Some(found),
                });
            }
            rule = Some(found);
            break;
        }
        dir = path;
    }
    Ok(IgnoreCheck {
        path: rel.to_string(),
        ignored: false,
        rule,
    })
}

/// Where a matching glob is written: its file (relative to `root`) and line.
fn ignore_rule(root: &Path, glob: &ignore::gitignore::Glob) -> Result<IgnoreRule> {
    let file = glob.from().unwrap_or(root);
    let text = fs::read_to_string(file)?;
    // The builder keeps each line right-trimmed (unless it ends in an escaped
    // space); the last such line is the one that wins.
    let line = text
        .lines()
        .enumerate()
        .filter(|(_, l)| *l == glob.original() || l.trim_end() == glob.original())
        .last()
        .map_or(0, |(i, _)| i + 1);
    Ok(IgnoreRule {
        source: file.strip_prefix(root).unwrap_or(file).to_string_lossy().into_owned(),
        line,
        pattern: glob.original().to_string(),
    })
}

enum Item {
    File(Found),
    Dir(PathBuf, String),
    Leftover(PathBuf),
    /// Left out: `.git`, `.dvt`, or what a `.dvtignore` excludes.
    Excluded,
}

fn walk(dir: &Path, rel: &str, parent_ignores: &[Arc<Gitignore>]) -> Result<Scan> {
    let mut entries = Vec::new();
    let mut has_ignore_file = false;
    for e in fs::read_dir(dir)? {
        let e = e?;
        if e.file_name() == IGNORE_FILE {
            has_ignore_file = true;
        }
        entries.push(e);
    }
    let own;
    let ignores: &[Arc<Gitignore>] = if has_ignore_file {
        let mut v = parent_ignores.to_vec();
        if let Some(m) = load_ignore(dir)? {
            v.push(Arc::new(m));
        }
        own = v;
        &own
    } else {
        parent_ignores
    };
    let items = entries
        .par_iter()
        .map(|e| -> Result<Option<Item>> {
            let path = e.path();
            let name = e.file_name();
            let name = name.to_str().ok_or_else(|| PathError::NotUtf8 { path: path.clone() })?;
            if name == ".git" || name == DVT_DIR {
                return Ok(Some(Item::Excluded));
            }
            if crate::fsutil::is_temp_name(name) {
                return Ok(Some(Item::Leftover(path)));
            }
            let meta = e.metadata().map_err(|err| {
                std::io::Error::new(
                    err.kind(),
                    format!("failed to read metadata of `{}`: {err}", path.display()),
                )
            })?;
            let ft = meta.file_type();
            if ft.is_symlink() {
                return Err(PathError::Symlink {
                    path: path.clone(),
                    link: path,
                }
                .into());
            }
            if !ft.is_dir() && !ft.is_file() {
                return Err(PathError::Special { path }.into());
            }
            if !ignores.is_empty() && is_ignored(ignores, &path, ft.is_dir()) {
                return Ok(Some(Item::Excluded));
            }
            let child = if rel.is_empty() {
                name.to_string()
            } else {
                format!("{rel}/{name}")
            };
            Ok(Some(if ft.is_dir() {
                Item::Dir(path, child)
            } else {
                Item::File(Found {
                    rel: child,
                    stamp: Stamp::of(&meta),
                    mode: meta.permissions().mode(),
                })
            }))
        })
        .collect::<Result<Vec<_>>>()?;
    // Siblings in the order of their full paths' bytes (a directory's paths all
    // go on with `/`): the parts then join up sorted, with no sort of the whole.
    let mut items: Vec<Item> = items.into_iter().flatten().collect();
    items.sort_unstable_by(|a, b| {
        let (a, a_dir) = a.sort_key();
        let (b, b_dir) = b.sort_key();
        let n = a.len().min(b.len());
        let next = |s: &[u8], dir: bool| s.get(n).copied().or(dir.then_some(b'/'));
        a[..n].cmp(&b[..n]).then_with(|| next(a, a_dir).cmp(&next(b, b_dir)))
    });
    let mut scan = Scan::default();
    let mut excluded = false;
    items.retain(|item| match item {
        Item::Leftover(p) => {
            scan.leftovers.push(p.clone());
            false
        }
        Item::Excluded => {
            excluded = true;
            false
        }
        _ => true,
    });
    // A directory holding only what is left out is not an empty one to record
    // (as git does not track one holding only ignored files): `checkout` could
    // not delete it without deleting them.
    if items.is_empty() && !rel.is_empty() && !excluded {
        scan.empty_dirs.push(rel.to_string());
    }
    let parts = items
        .par_iter()
        .filter_map(|item| match item {
            Item::Dir(p, r) => Some(walk(p, r, ignores)),
            Item::File(_) | Item::Leftover(_) | Item::Excluded => None,
        })
        .collect::<Result<Vec<_>>>()?;
    let mut parts = parts.into_iter();
    for item in items {
        match item {
            Item::File(f) => scan.files.push(f),
            Item::Dir(..) => {
                let part = parts.next().unwrap_or_default();
                scan.files.extend(part.files);
                scan.empty_dirs.extend(part.empty_dirs);
                scan.leftovers.extend(part.leftovers);
            }
            Item::Leftover(_) | Item::Excluded => {}
        }
    }
    Ok(scan)
}

impl Item {
    /// The entry's path, and whether it is a directory.
    fn sort_key(&self) -> (&[u8], bool) {
        match self {
            Item::File(f) => (f.rel.as_bytes(), false),
            Item::Dir(_, r) => (r.as_bytes(), true),
            Item::Leftover(p) => (p.as_os_str().as_encoded_bytes(), false),
            Item::Excluded => (&[], false),
        }
    }
}

fn walk_error(e: ignore::Error, abs: &Path) -> crate::Error {
    match e.into_io_error() {
        Some(io) => io.into(),
        None => std::io::Error::other(format!("cannot walk `{}`: bad `{IGNORE_FILE}` pattern", abs.display())).into(),
    }
}
/// How to learn the id of a file the stat cache does not know.
#[derive(Debug, Clone, Copy)]
pub enum Identify<'a> {
    /// Hash it and store it in the cache (`add`).
    Store(&'a Cache),
    /// Only hash it (`status`, `checkout`).
    HashOnly,
}

/// Work counters, for reports and tests: what had to be read.
#[derive(Debug, Default)]
pub struct Counters {
    /// Files whose content was read and hashed.
    pub hashed_files: AtomicU64,
    /// Bytes read and hashed.
    pub hashed_bytes: AtomicU64,
    /// Bytes newly written to the cache.
    pub written_bytes: AtomicU64,
}

impl Counters {
    /// Adds what `part` counted (one target's work) to these totals.
    pub fn absorb(&self, part: Counters) {
        for (total, n) in [
            (&self.hashed_files, part.hashed_files),
            (&self.hashed_bytes, part.hashed_bytes),
            (&self.written_bytes, part.written_bytes),
        ] {
            total.fetch_add(n.into_inner(), std::sync::atomic::Ordering::Relaxed);
        }
    }
}

/// The id of the workspace file `abs` (repo-relative `key`), from the stat cache
/// when its stamp is known, else by reading it.
pub fn identify_file(
    key: &str,
    abs: &Path,
    stamp: &Stamp,
    stat: &StatCache,
    how: Identify<'_>,
    counters: &Counters,
    started: SystemTime,
) -> Result<ObjectId> {
    if let Some(id) = stat.get(key, stamp) {
        match how {
            Identify::Store(cache) if !cache.contains(&id) => {}
            _ => return Ok(id),
        }
    }
    let id = match how {
        Identify::Store(cache) => {
            let stored = cache.put_file(abs, stamp)?;
            counters.written_bytes.fetch_add(stored.written, Ordering::Relaxed);
            stored.id
        }
        Identify::HashOnly => hash_file(abs, stamp)?,
    };
    counters.hashed_files.fetch_add(1, Ordering::Relaxed);
    counters.hashed_bytes.fetch_add(stamp.size(), Ordering::Relaxed);
    if stamp.settled(started) {
        stat.put(key, *stamp, id);
    }
    Ok(id)
}

/// Hashes a file without storing it; fails if it changes while being read.
pub fn hash_file(abs: &Path, stamp: &Stamp) -> Result<ObjectId> {
    let id = if stamp.size() <= SMALL_OBJECT {
        ObjectId::of(&fs::read(abs)?)
    } else {
        let mut hasher = blake3::Hasher::new();
        hasher
            .update_mmap_rayon(abs)
            .map_err(|e| std::io::Error::new(e.kind(), format!("failed to read `{}`: {e}", abs.display())))?;
        ObjectId::from_hasher(&hasher)
    };
    let after = fs::symlink_metadata(abs)?;
    if !stamp.same_content(&Stamp::of(&after)) {
        return Err(CacheError::ChangedWhileReading {
            path: abs.to_path_buf(),
        }
        .into());
    }
    Ok(id)
}

/// A pointer file and the data path it tracks.
#[derive(Debug, Clone)]
pub struct Tracked {
    /// The pointer file, absolute.
    pub pointer_file: PathBuf,
    /// The pointer file, repo-relative.
    pub pointer_rel: String,
    /// The data path, absolute.
    pub data_abs: PathBuf,
    /// The data path, repo-relative.
    pub data_rel: String,
    /// The parsed pointer.
    pub pointer: Pointer,
    /// The repository root.
    pub root: PathBuf,
    /// A file or subdirectory of a tracked directory that a target named (relative
    /// to the directory, `/`-separated): the command acts on that part only. See
    /// [`Tracked::select`].
    pub within: Option<String>,
}

/// The part of a tracked path that a command acts on (see [`Tracked::select`]).
#[derive(Debug, Clone)]
pub struct Selection {
    /// The part, as a tracked file or directory of its own: its data path is the
    /// part's. For a part of a directory, the id is still the whole directory's
    /// manifest, so use [`Selection::manifest`], not [`Tracked::manifest`].
    pub tracked: Tracked,
    /// Its manifest when it is a directory: the entries below it, re-rooted.
    pub manifest: Option<Manifest>,
}

impl Tracked {
    /// Loads and validates the pointer file at `pointer_file` (absolute, inside the repo).
    pub fn load(repo: &Repo, pointer_file: &Path) -> Result<Tracked> {
        let pointer = Pointer::load(pointer_file)?;
        let pointer_rel = rel_str(repo.root(), pointer_file)?;
        Tracked::from_pointer(repo, &pointer_rel, pointer, pointer_file, true)
    }

    /// A parsed pointer found at `pointer_rel` (repo-relative; `named` in errors).
    /// Its data path must not be reserved; when `on_disk`, no directory on the way
    /// to it may be a symbolic link.
    pub fn from_pointer(
        repo: &Repo,
        pointer_rel: &str,
        pointer: Pointer,
        named: &Path,
        on_disk: bool,
    ) -> Result<Tracked> {
        let dir_rel = match pointer_rel.rfind('/') {
            Some(i) => &pointer_rel[..i],
            None => "",
        };
        let data_rel = if dir_rel.is_empty() {
            pointer.path.clone()
        } else {
            format!("{dir_rel}/{}", pointer.path)
        };
        let checked = if on_disk {
            repo.check_trackable(&data_rel)
        } else {
            repo.check_not_reserved(&data_rel)
        };
        checked.map_err(|e| match e {
            crate::Error::Path(PathError::Reserved { reason, .. }) => PathError::Unsafe {
                path: pointer.path.clone(),
                source_file: named.to_path_buf(),
                reason,
            }
            .into(),
            e => e,
        })?;
        Ok(Tracked {
            pointer_file: repo.root().join(pointer_rel),
            pointer_rel: pointer_rel.to_string(),
            data_abs: repo.root().join(&data_rel),
            data_rel,
            pointer,
            root: repo.root().to_path_buf(),
            within: None,
        })
    }

    /// The manifest of a tracked directory, read (and verified) from the cache.
    pub fn manifest(&self, cache: &Cache) -> Result<Manifest> {
        let bytes = cache.read(&self.pointer.id, Some(&self.data_rel))?;
        Manifest::parse(&bytes, &self.pointer.id)
    }

    /// The workspace compared with this record, without progress output, and the
    /// directory's manifest it was compared with (`None` for a tracked file).
    /// Fails when the cache lacks the manifest.
    pub fn workspace_state(&self, cache: &Cache, stat: &StatCache) -> Result<(WorkState, Option<Manifest>)> {
        let manifest = match self.pointer.kind {
            Kind::Dir => Some(self.manifest(cache)?),
            Kind::File => None,
        };
        let state = compare(
            stat,
            self,
            manifest.as_ref(),
            &Counters::default(),
            &crate::progress::NoProgress,
        )?;
        Ok((state, manifest))
    }

    /// The part of this tracked path that [`Tracked::within`] names, given the
    /// directory's manifest `m` (`None` for a tracked file): the whole path when it
    /// names no part; a file inside the directory as a tracked file; a
    /// subdirectory with the entries below it. Fails if the directory holds no
    /// such part.
    pub fn select(&self, m: Option<Manifest>) -> Result<Selection> {
        let (Some(inner), Some(m)) = (&self.within, &m) else {
            let tracked = Tracked {
                within: None,
                ..self.clone()
            };
            return Ok(Selection { tracked, manifest: m });
        };
        let (pointer, manifest) = match m.part(inner) {
            Some(Part::File(e)) => (
                Pointer {
                    executable: e.executable,
                    ..Pointer::file(display_path(&self.pointer.path, inner), e.id, e.size)
                },
                None,
            ),
            Some(Part::Dir(sub)) => (
                Pointer::dir(
                    display_path(&self.pointer.path, inner),
                    self.pointer.id,
                    sub.total_size(),
                    sub.files.len() as u64,
                ),
                Some(sub),
            ),
            None => {
                return Err(PathError::NotInTrackedDir {
                    target: display_path(&self.data_rel, inner),
                    tracked: self.data_rel.clone(),
                    pointer: self.pointer_rel.clone(),
                }
                .into());
            }
        };
        let tracked = Tracked {
            data_rel: display_path(&self.data_rel, inner),
            data_abs: self.data_abs.join(inner),
            pointer,
            within: None,
            ..self.clone()
        };
        Ok(Selection { tracked, manifest })
    }
}

/// `path` relative to `root`, `/`-separated.
pub fn rel_str(root: &Path, path: &Path) -> Result<String> {
    let rel = path.strip_prefix(root).map_err(|_| PathError::OutsideRepo {
        path: path.to_path_buf(),
        root: root.to_path_buf(),
    })?;
    Ok(rel
        .to_str()
        .ok_or_else(|| PathError::NotUtf8 {
            path: path.to_path_buf(),
        })?
        .to_string())
}

/// The data paths (repo-relative) that `pointers` name by their file names,
/// whether they parse or not (one with conflict markers still claims its path).
pub fn named_data_paths(repo: &Repo, pointers: &[PathBuf]) -> Vec<String> {
    let suffix = format!(".{POINTER_EXT}");
    pointers
        .iter()
        .filter_map(|p| rel_str(repo.root(), p).ok())
        .filter_map(|r| r.strip_suffix(&suffix).map(str::to_string))
        .collect()
}

/// Every pointer file in the repository, sorted. Git-ignored paths (which include
/// tracked data) and `.dvtignore`d paths are not searched.
pub fn find_pointers(repo: &Repo) -> Result<Vec<PathBuf>> {
    find_files(repo, &|p| is_pointer_path(p))
}

/// Every file of the repository for which `wanted` holds, sorted, searched as
/// [`find_pointers`] searches.
pub fn find_files(repo: &Repo, wanted: &dyn Fn(&Path) -> bool) -> Result<Vec<PathBuf>> {
    let walker = ignore::WalkBuilder::new(repo.root())
        .standard_filters(false)
        .hidden(false)
        .git_ignore(true)
        .require_git(false)
        .parents(false)
        .follow_links(false)
        .add_custom_ignore_filename(IGNORE_FILE)
        .filter_entry(|e| {
            let n = e.file_name();
            e.depth() == 0 || (n != ".git" && n != DVT_DIR)
        })
        .build();
    let mut out = Vec::new();
    for entry in walker {
        let entry = entry.map_err(|e| walk_error(e, repo.root()))?;
        if entry.file_type().is_some_and(|t| t.is_file()) && wanted(entry.path()) {
            out.push(entry.path().to_path_buf());
        }
    }
    out.sort();
    Ok(out)
}

/// Fails if two of `tracked` (from different pointer files, or a pointer and
/// `dvt.lock`) track one path, or one a path inside the other's directory:
/// each would have the workspace hold its own version (as DVC's overlapping
/// outputs). Parts of one pointer, as targets inside it make, do not count.
pub fn check_tracked_once(tracked: &[&Tracked]) -> Result<()> {
    let by_path: std::collections::BTreeMap<&str, &str> = tracked
        .iter()
        .map(|t| (t.data_rel.as_str(), t.pointer_rel.as_str()))
        .collect();
    for t in tracked {
        let path = t.data_rel.as_str();
        let found = by_path
            .get(path)
            .filter(|by| **by != t.pointer_rel)
            .map(|by| (path, *by))
            .or_else(|| {
                path.match_indices('/').find_map(|(i, _)| {
                    let up = &path[..i];
                    by_path.get(up).filter(|by| **by != t.pointer_rel).map(|by| (up, *by))
                })
            });
        if let Some((inside, other_by)) = found {
            return Err(PathError::TrackedTwice {
                path: path.to_string(),
                by: t.pointer_rel.clone(),
                inside: inside.to_string(),
                other_by: other_by.to_string(),
            }
            .into());
        }
    }
    Ok(())
}

/// The last component of `rel`, a `/`-separated relative path.
pub fn file_name(rel: &str) -> &str {
    rel.rsplit('/').next().unwrap_or(rel)
}

/// The nearest directory above `rel` (repo-relative) that a pointer tracks, if any:
/// a path inside it belongs to that pointer.
pub fn tracked_ancestor(repo: &Repo, rel: &str) -> Option<String> {
    let mut cut = rel.len();
    while let Some(i) = rel[..cut].rfind('/') {
        let ancestor = &rel[..i];
        if pointer_path_for(&repo.root().join(ancestor)).is_file() {
            return Some(ancestor.to_string());
        }
        cut = i;
    }
    None
}

/// Which tracked data a command is about: all of it, or what is named. A list
/// that filtering left empty names nothing; only [`Targets::given`], for the
/// list a user typed, reads an empty one as all.
#[derive(Debug, Clone, Copy)]
pub enum Targets<'a> {
    /// Everything tracked: the command was given no target.
    All,
    /// What these paths (relative to the command's directory) name; none: nothing.
    Named(&'a [PathBuf]),
}

impl<'a> Targets<'a> {
    /// The targets as the user gave them: none means all, as in DVC and git.
    pub fn given(targets: &'a [PathBuf]) -> Targets<'a> {
        match targets.is_empty() {
            true => Targets::All,
            false => Targets::Named(targets),
        }
    }
}

/// The pointer files `targets` name (data paths or pointer files, relative to
/// `cwd`); with [`Targets::All`], every pointer in the repository.
pub fn resolve_targets(repo: &Repo, cwd: &Path, targets: Targets<'_>) -> Result<Vec<PathBuf>> {
    let targets = match targets {
        Targets::All => return find_pointers(repo),
        Targets::Named(t) => t,
    };
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for t in targets {
        let (abs, rel) = repo.resolve(cwd, t)?;
        let candidate = named_pointer(&abs);
        if !candidate.is_file() {
            if let Some(t) = enclosing(repo, &[], rel.trim_end_matches('/'))? {
                return Err(PathError::WholeOnly {
                    target: rel.trim_end_matches('/').to_string(),
                    tracked: t.data_rel,
                }
                .into());
            }
            let pointers = find_pointers(repo)?;
            let holds_tracked = abs.is_dir() && pointers.iter().any(|p| p.starts_with(&abs));
            let target = if rel.is_empty() {
                ".".to_string()
            } else {
                let rel = rel.trim_end_matches('/');
                rel.strip_suffix(&format!(".{POINTER_EXT}")).unwrap_or(rel).to_string()
            };
            // A slip of the fingers: the tracked path it is closest to.
            let outs = crate::pipeline::lock_outs(repo).unwrap_or_default();
            // Not a slip: a stage's out, which dvt.lock tracks.
            if outs.iter().any(|o| o.data_rel == target)
                && let Ok(Some(pipeline)) = crate::pipeline::Pipeline::load(repo)
                && let Some(stage) = pipeline
                    .stages
                    .values()
                    .find(|s| s.outs.iter().any(|o| o.path == target))
            {
                return Err(PathError::PipelineOut {
                    target,
                    stage: stage.name.clone(),
                }
                .into());
            }
            let mut tracked = named_data_paths(repo, &pointers);
            tracked.extend(outs.into_iter().map(|t| t.data_rel));
            tracked.retain(|t| *t != target);
            let closest = (!holds_tracked)
                .then(|| crate::suggest::closest(&target, tracked.iter().map(String::as_str)))
                .flatten()
                .map(str::to_string);
            return Err(PathError::NotTracked {
                target,
                holds_tracked,
                closest,
            }
            .into());
        }
        if seen.insert(candidate.clone()) {
            out.push(candidate);
        }
    }
    Ok(out)
}

/// The pointer files and the cached pipeline outs (from `dvt.lock`) that
/// `targets` name; all of them with [`Targets::All`]. A target may name a
/// pointer, its data path, or a pipeline out; or a file or subdirectory inside a
/// tracked directory, as DVC allows: that part comes back in the second list, as
/// the whole directory with [`Tracked::within`] set.
pub fn resolve_tracked(repo: &Repo, cwd: &Path, targets: Targets<'_>) -> Result<(Vec<PathBuf>, Vec<Tracked>)> {
    let outs = crate::pipeline::lock_outs(repo)?;
    let targets = match targets {
        Targets::All => return Ok((find_pointers(repo)?, outs)),
        Targets::Named(t) => t,
    };
    let mut pointers = Vec::new();
    let mut chosen: Vec<Tracked> = Vec::new();
    // Read only if some target is neither an out nor a pointer's data.
    let mut pipeline: Option<Option<crate::pipeline::Pipeline>> = None;
    for t in targets {
        let (abs, rel) = repo.resolve(cwd, t)?;
        let rel = rel.trim_end_matches('/');
        let part = if let Some(o) = outs.iter().find(|o| o.data_rel == rel) {
            Some(o.clone())
        } else if named_pointer(&abs).is_file() {
            None
        } else {
            enclosing(repo, &outs, rel)?
        };
        if let Some(p) = part {
            if !chosen
                .iter()
                .any(|c| c.pointer_rel == p.pointer_rel && c.data_rel == p.data_rel && c.within == p.within)
            {
                chosen.push(p);
            }
            continue;
        }
        let loaded = match &pipeline {
            Some(loaded) => loaded,
            None => pipeline.insert(crate::pipeline::Pipeline::load(repo)?),
        };
        let named = match loaded {
            Some(p) => stage_target(repo, cwd, p, t)?,
            None => Vec::new(),
        };
        if !named.is_empty() {
            // Their recorded cached outs.
            let ours = |o: &&Tracked| {
                named
                    .iter()
                    .any(|stage| stage.outs.iter().any(|s| s.cache && s.path == o.data_rel))
            };
            for o in outs.iter().filter(ours) {
                if !chosen.iter().any(|c| c.data_rel == o.data_rel && c.within.is_none()) {
                    chosen.push(o.clone());
                }
            }
            continue;
        }
        for p in resolve_targets(repo, cwd, Targets::Named(std::slice::from_ref(t)))? {
            if !pointers.contains(&p) {
                pointers.push(p);
            }
        }
    }
    // A part of a directory that is also named whole adds nothing.
    let whole: Vec<(String, String)> = chosen
        .iter()
        .filter(|c| c.within.is_none())
        .map(|c| (c.pointer_rel.clone(), c.data_rel.clone()))
        .collect();
    chosen.retain(|c| {
        c.within.is_none()
            || !(pointers.contains(&c.pointer_file) || whole.contains(&(c.pointer_rel.clone(), c.data_rel.clone())))
    });
    Ok((pointers, chosen))
}

/// Whether `target` holds a shell wildcard (`*`, `?`, `[`).
fn is_pattern(target: &Path) -> bool {
    target.to_string_lossy().contains(['*', '?', '['])
}

/// A shell-style pattern of paths, as `--glob` takes it: `*` and `?` within a
/// name, `**` across directories, `[abc]`; relative to `cwd`.
fn path_glob(pattern: &Path) -> Result<globset::GlobMatcher> {
    let text = pattern.to_string_lossy();
    globset::GlobBuilder::new(text.trim_start_matches("./"))
        .literal_separator(true)
        .build()
        .map(|g| g.compile_matcher())
        .map_err(|e| {
            PathError::Glob {
                pattern: text.to_string(),
                problem: format!("is not a pattern: {}", e.kind()),
            }
            .into()
        })
}

/// DVC's `--glob` for commands on tracked data (`push`, `status`, ...): each
/// target holding a wildcard stands for the tracked data paths (pointers' and
/// `dvt.lock` outs') it matches, relative to `cwd`; other targets are kept. A
/// pattern that matches none is an error.
pub fn expand_glob_tracked(repo: &Repo, cwd: &Path, targets: &[PathBuf]) -> Result<Vec<PathBuf>> {
    if !targets.iter().any(|t| is_pattern(t)) {
        return Ok(targets.to_vec());
    }
    let (pointers, outs) = resolve_tracked(repo, cwd, Targets::All)?;
    let mut tracked: Vec<PathBuf> = outs.iter().map(|t| t.data_abs.clone()).collect();
    for p in pointers {
        tracked.push(p.with_extension(""));
    }
    let base = std::path::absolute(cwd)?;
    expand_patterns(targets, "matches no tracked data here", |glob| {
        Ok(tracked
            .iter()
            .filter_map(|abs| abs.strip_prefix(&base).ok())
            .filter(|rel| glob.is_match(rel))
            .map(Path::to_path_buf)
            .collect())
    })
}

/// `targets`, each holding a wildcard replaced by what `matching` finds for
/// its pattern (an error saying `none` if nothing), each path once.
fn expand_patterns(
    targets: &[PathBuf],
    none: &str,
    mut matching: impl FnMut(&globset::GlobMatcher) -> Result<Vec<PathBuf>>,
) -> Result<Vec<PathBuf>> {
    let mut out: Vec<PathBuf> = Vec::new();
    for t in targets {
        if !is_pattern(t) {
            out.push(t.clone());
            continue;
        }
        let found = matching(&path_glob(t)?)?;
        if found.is_empty() {
            return Err(PathError::Glob {
                pattern: t.display().to_string(),
                problem: none.into(),
            }
            .into());
        }
        for f in found {
            if !out.contains(&f) {
                out.push(f);
            }
        }
    }
    Ok(out)
}

/// DVC's `add --glob`: each target holding a wildcard stands for the files and
/// directories below `cwd` it matches (a directory that matches is taken whole;
/// `.git` and `.dvt` are not looked into), sorted; other targets are kept. A
/// pattern that matches nothing is an error.
pub fn expand_glob_files(cwd: &Path, targets: &[PathBuf]) -> Result<Vec<PathBuf>> {
    expand_patterns(targets, "matches no file or directory here", |glob| {
        let mut found = Vec::new();
        let mut walk = walkdir::WalkDir::new(cwd).min_depth(1).sort_by_file_name().into_iter();
        while let Some(entry) = walk.next() {
            let entry = entry.map_err(|e| std::io::Error::other(e.to_string()))?;
            let rel = entry.path().strip_prefix(cwd).unwrap_or(entry.path());
            let name = entry.file_name();
            if name == ".git" || name == crate::repo::DVT_DIR || crate::pointer::is_pointer_path(entry.path()) {
                if entry.file_type().is_dir() {
                    walk.skip_current_dir();
                }
                continue;
            }
            if glob.is_match(rel) {
                found.push(rel.to_path_buf());
                if entry.file_type().is_dir() {
                    walk.skip_current_dir();
                }
            }
        }
        Ok(found)
    })
}

/// DVC's `-R`/`--recursive`: each target that is a directory, neither tracked
/// itself nor inside tracked data, stands for every pointer file below it and
/// every pipeline out (`dvt.lock`) below it. Other targets are kept as they are,
/// and so is a directory with nothing tracked below it (the command then says it
/// is not tracked). The result goes to a command's targets.
pub fn expand_recursive(repo: &Repo, cwd: &Path, targets: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut tracked: Option<(Vec<PathBuf>, Vec<Tracked>)> = None;
    let mut out: Vec<PathBuf> = Vec::new();
    for t in targets {
        let (abs, rel) = repo.resolve(cwd, t)?;
        let rel = rel.trim_end_matches('/');
        let is_dir = fs::symlink_metadata(&abs).is_ok_and(|m| m.is_dir());
        if !is_dir || named_pointer(&abs).is_file() || tracked_ancestor(repo, rel).is_some() {
            out.push(t.clone());
            continue;
        }
        let (pointers, outs) = match &tracked {
            Some(both) => both,
            None => tracked.insert((find_pointers(repo)?, crate::pipeline::lock_outs(repo)?)),
        };
        let within = crate::relpath::within;
        if outs.iter().any(|o| within(rel, &o.data_rel)) {
            out.push(t.clone());
            continue;
        }
        let mut found: Vec<PathBuf> = pointers.iter().filter(|p| p.starts_with(&abs)).cloned().collect();
        found.extend(
            outs.iter()
                .filter(|o| within(&o.data_rel, rel))
                .map(|o| o.data_abs.clone()),
        );
        if found.is_empty() {
            out.push(t.clone());
        }
        for f in found {
            if !out.contains(&f) {
                out.push(f);
            }
        }
    }
    Ok(out)
}

/// DVC's `-d`/`--with-deps`: a target that names a stage, or an out of one, stands
/// also for every stage upstream of it, as `dvt.toml:NAME` targets (a command takes
/// their cached outs). Other targets are kept as they are.
pub fn expand_with_deps(repo: &Repo, cwd: &Path, targets: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let Some(pipeline) = crate::pipeline::Pipeline::load(repo)? else {
        return Ok(targets.to_vec());
    };
    let mut out: Vec<PathBuf> = Vec::new();
    for t in targets {
        if !out.contains(t) {
            out.push(t.clone());
        }
        let mut names: Vec<String> = stage_target(repo, cwd, &pipeline, t)?
            .iter()
            .map(|s| s.name.clone())
            .collect();
        if names.is_empty() {
            let (_, rel) = repo.resolve(cwd, t)?;
            names.extend(pipeline.producer(rel.trim_end_matches('/')).map(|s| s.name.clone()));
        }
        if names.is_empty() {
            continue;
        }
        for name in pipeline.select(&names, false)? {
            let stage = PathBuf::from(format!("{}:{name}", crate::pipeline::PIPELINE_FILE));
            if !out.contains(&stage) {
                out.push(stage);
            }
        }
    }
    Ok(out)
}

/// The stages a target names (`NAME` or `dvt.toml:NAME`, see
/// [`Pipeline::stage_named`](crate::pipeline::Pipeline::stage_named)), unless a
/// `.dvt` pointer is at that path: tracked data wins over a stage of the same name.
pub(crate) fn stage_target<'p>(
    repo: &Repo,
    cwd: &Path,
    pipeline: &'p crate::pipeline::Pipeline,
    target: &Path,
) -> Result<Vec<&'p crate::pipeline::Stage>> {
    let Some(t) = target.to_str() else {
        return Ok(Vec::new());
    };
    let stages = pipeline.stage_named(t)?;
    let bare = !t.starts_with(&format!("{}:", crate::pipeline::PIPELINE_FILE));
    if !stages.is_empty() && bare && named_pointer(&repo.resolve(cwd, target)?.0).is_file() {
        return Ok(Vec::new());
    }
    Ok(stages)
}

/// The pointer file a target at `abs` names: itself if it is a pointer file, else
/// the pointer beside its data path (which may not exist).
fn named_pointer(abs: &Path) -> PathBuf {
    if is_pointer_path(abs) && abs.is_file() {
        abs.to_path_buf()
    } else {
        pointer_path_for(abs)
    }
}

/// The tracked directory (a pointer's or a pipeline out's) that holds the
/// repo-relative path `rel`, with `within` set to the rest of the path.
fn enclosing(repo: &Repo, outs: &[Tracked], rel: &str) -> Result<Option<Tracked>> {
    let mut end = rel.len();
    while let Some(i) = rel[..end].rfind('/') {
        end = i;
        let (dir, inner) = (&rel[..i], &rel[i + 1..]);
        let found = match outs.iter().find(|o| o.data_rel == dir) {
            Some(o) => Some(o.clone()),
            None => {
                let pointer = pointer_path_for(&repo.root().join(dir));
                if pointer.is_file() {
                    Some(Tracked::load(repo, &pointer)?)
                } else {
                    None
                }
            }
        };
        if let Some(t) = found {
            if t.pointer.kind != Kind::Dir {
                return Ok(None);
            }
            return Ok(Some(Tracked {
                within: Some(inner.to_string()),
                ..t
            }));
        }
    }
    Ok(None)
}

/// What differs between a tracked path and its pointer. Paths are relative to the
/// tracked directory (empty for a tracked file itself).
#[derive(Debug, Default, Clone, Serialize)]
pub struct Changes {
    /// In the workspace, not in the pointer.
    pub added: Vec<String>,
    /// Content differs.
    pub modified: Vec<String>,
    /// In the pointer, not in the workspace.
    pub deleted: Vec<String>,
    /// Same content, different executable bit.
    pub mode_changed: Vec<String>,
    /// dvt's temporary files inside a tracked directory (see [`Scan::leftovers`]):
    /// not data, so not a change; deleted by commands that hold the repo lock.
    #[serde(skip)]
    pub leftovers: Vec<PathBuf>,
}

impl Changes {
    /// Whether nothing differs.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.modified.is_empty() && self.deleted.is_empty() && self.mode_changed.is_empty()
    }
}

/// The workspace side of a tracked path.
#[derive(Debug, Clone)]
pub enum WorkState {
    /// The data path does not exist.
    Missing,
    /// It exists; these are the differences.
    Present(Changes),
}

impl WorkState {
    /// Whether the workspace holds exactly what is recorded.
    pub fn is_unchanged(&self) -> bool {
        matches!(self, WorkState::Present(c) if c.is_empty())
    }
}

/// Compares the workspace with a tracked path. `manifest` is required for directories.
pub fn compare(
    stat: &StatCache,
    tracked: &Tracked,
    manifest: Option<&Manifest>,
    counters: &Counters,
    progress: &dyn Progress,
) -> Result<WorkState> {
    compare_scanned(stat, tracked, manifest, None, counters, progress)
}

/// [`compare`], with the tracked directory's scan already made (by a caller that
/// overlapped it with reading the manifest).
pub fn compare_scanned(
    stat: &StatCache,
    tracked: &Tracked,
    manifest: Option<&Manifest>,
    scan: Option<Scan>,
    counters: &Counters,
    progress: &dyn Progress,
) -> Result<WorkState> {
    let started = SystemTime::now();
    let meta = match fs::symlink_metadata(&tracked.data_abs) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(WorkState::Missing),
        Err(e) => return Err(e.into()),
    };
    if meta.file_type().is_symlink() {
        return Err(PathError::Symlink {
            path: tracked.data_rel.clone().into(),
            link: tracked.data_rel.clone().into(),
        }
        .into());
    }
    let mut changes = Changes::default();
    let Some(manifest) = manifest.filter(|_| tracked.pointer.kind == Kind::Dir) else {
        // A tracked file.
        if !meta.is_file()
            || meta.len() != tracked.pointer.size
            || identify_file(
                &tracked.data_rel,
                &tracked.data_abs,
                &Stamp::of(&meta),
                stat,
                Identify::HashOnly,
                counters,
                started,
            )? != tracked.pointer.id
        {
            changes.modified.push(String::new());
        } else if (meta.permissions().mode() & 0o111 != 0) != tracked.pointer.executable {
            changes.mode_changed.push(String::new());
        }
        return Ok(WorkState::Present(changes));
    };
    if !meta.is_dir() {
        changes.added.push(String::new());
        changes.deleted.extend(manifest.files.iter().map(|e| e.path.clone()));
        return Ok(WorkState::Present(changes));
    }
    let mut scan = match scan {
        Some(s) => s,
        None => scan_dir(&tracked.root, &tracked.data_abs)?,
    };
    changes.leftovers = std::mem::take(&mut scan.leftovers);
    progress.start(
        &format!("checking {}", tracked.data_rel),
        scan.files.len() as u64,
        false,
    );
    // Both lists are sorted by path bytes: one merge pairs them, no hashing.
    let mut pairs: Vec<(&Found, Option<&Entry>)> = Vec::with_capacity(scan.files.len());
    let mut entries = manifest.files.iter().peekable();
    for f in &scan.files {
        while let Some(e) = entries.next_if(|e| e.path.as_bytes() < f.rel.as_bytes()) {
            changes.deleted.push(e.path.clone());
        }
        pairs.push((f, entries.next_if(|e| e.path == f.rel)));
    }
    changes.deleted.extend(entries.map(|e| e.path.clone()));
    #[derive(Clone, Copy)]
    enum Verdict {
        Added,
        Modified,
        ModeChanged,
    }
    let verdicts: Vec<Result<Option<Verdict>>> = pairs
        .par_iter()
        .map_init(String::new, |key, &(f, e)| {
            progress.inc(1);
            let Some(e) = e else {
                return Ok(Some(Verdict::Added));
            };
            if f.stamp.size() != e.size {
                return Ok(Some(Verdict::Modified));
            }
            key.clear();
            key.push_str(&tracked.data_rel);
            key.push('/');
            key.push_str(&f.rel);
            let id = match stat.get(key, &f.stamp) {
                Some(id) => id,
                None => {
                    let abs = tracked.data_abs.join(&f.rel);
                    identify_file(key, &abs, &f.stamp, stat, Identify::HashOnly, counters, started)?
                }
            };
            if id != e.id {
                return Ok(Some(Verdict::Modified));
            }
            Ok((f.executable() != e.executable).then_some(Verdict::ModeChanged))
        })
        .collect();
    progress.finish();
    for (v, (f, _)) in verdicts.into_iter().zip(&pairs) {
        match v? {
            Some(Verdict::Added) => changes.added.push(f.rel.clone()),
            Some(Verdict::Modified) => changes.modified.push(f.rel.clone()),
            Some(Verdict::ModeChanged) => changes.mode_changed.push(f.rel.clone()),
            None => {}
        }
    }
    // Directories that hold files, or empty directories, are not empty ones to
    // add: the data recorded puts something in them (`checkout` fills them).
    let implied: HashSet<&str> = if scan.empty_dirs.is_empty() {
        HashSet::new()
    } else {
        manifest
            .files
            .iter()
            .map(|e| e.path.as_str())
            .chain(manifest.empty_dirs.iter().map(String::as_str))
            .flat_map(|p| p.match_indices('/').map(|(i, _)| &p[..i]))
            .collect()
    };
    let want_empty: HashSet<&str> = manifest.empty_dirs.iter().map(String::as_str).collect();
    let have_empty: HashSet<&str> = scan.empty_dirs.iter().map(String::as_str).collect();
    for d in &scan.empty_dirs {
        if !want_empty.contains(d.as_str()) && !implied.contains(d.as_str()) {
            changes.added.push(format!("{d}/"));
        }
    }
    for d in &manifest.empty_dirs {
        if !have_empty.contains(d.as_str()) && !tracked.data_abs.join(d).is_dir() {
            changes.deleted.push(format!("{d}/"));
        }
    }
    changes.modified.sort();
    Ok(WorkState::Present(changes))
}

/// The objects a tracked path needs that the cache lacks.
pub fn missing_objects(cache: &Cache, tracked: &Tracked, manifest: Option<&Manifest>) -> Result<Vec<ObjectId>> {
    let mut ids: Vec<ObjectId> = vec![tracked.pointer.id];
    if let Some(m) = manifest {
        ids.extend(m.files.iter().map(|e| e.id));
    }
    ids.sort_unstable();
    ids.dedup();
    match manifest {
        Some(_) => cache.missing_for_manifest(&tracked.pointer.id, &ids),
        None => cache.missing(&ids),
    }
}

/// Joins a tracked path and a path inside it, for messages.
pub fn display_path(data_rel: &str, inner: &str) -> String {
    if inner.is_empty() {
        data_rel.to_string()
    } else {
        format!("{data_rel}/{inner}")
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)]
mod tests {
    use super::*;

    #[test]
    fn scan_lists_files_in_byte_order_of_their_full_paths() {
        let dir = tempfile::tempdir().unwrap();
        // A directory's paths go on with `/` (0x2f): after `a.txt` and `a-b`
        // (0x2e, 0x2d), before `a0` (0x30); `é` sorts after every ASCII name.
        let names = ["a/x", "a/y/z", "a.txt", "a-b/c", "a0", "ab", "é/1", "b c", "a/y.txt"];
        for n in names {
            let p = dir.path().join(n);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, n).unwrap();
        }
        let scan = scan_dir(dir.path(), dir.path()).unwrap();
        let got: Vec<&str> = scan.files.iter().map(|f| f.rel.as_str()).collect();
        let mut want = names.to_vec();
        want.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        assert_eq!(got, want);
    }
}
