//! The workspace: finding pointers, walking tracked paths, identifying file
//! content through the stat cache, and comparing it with what pointers record.

use std::collections::{HashMap, HashSet};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use fs_err as fs;
use rayon::prelude::*;
use serde::Serialize;

use crate::cache::{Cache, SMALL_OBJECT, same_content_stamp};
use crate::error::{CacheError, PathError, Result};
use crate::manifest::{Entry, Manifest};
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
    /// Its metadata (not following links).
    pub meta: std::fs::Metadata,
}

impl Found {
    /// Whether any execute bit is set.
    pub fn executable(&self) -> bool {
        self.meta.permissions().mode() & 0o111 != 0
    }
}

/// The content of a directory in the workspace.
#[derive(Debug, Default)]
pub struct Scan {
    /// Regular files, sorted by path.
    pub files: Vec<Found>,
    /// Directories with nothing (not ignored) below them, sorted.
    pub empty_dirs: Vec<String>,
}

/// Walks the directory `abs`, honouring `.dvtignore` files and skipping `.git`
/// and `.dvt`. Symbolic links and special files are errors.
pub fn scan_dir(abs: &Path) -> Result<Scan> {
    let walker = ignore::WalkBuilder::new(abs)
        .standard_filters(false)
        .hidden(false)
        .parents(true)
        .follow_links(false)
        .add_custom_ignore_filename(IGNORE_FILE)
        .filter_entry(|e| {
            e.depth() == 0 || {
                let n = e.file_name();
                n != ".git" && n != DVT_DIR
            }
        })
        .build_parallel();
    let found: Mutex<(Vec<Found>, Vec<String>, HashSet<String>)> = Mutex::default();
    let error: Mutex<Option<crate::Error>> = Mutex::new(None);
    let visit = |res: std::result::Result<ignore::DirEntry, ignore::Error>| -> Result<()> {
        let entry = res.map_err(|e| walk_error(e, abs))?;
        if entry.depth() == 0 {
            return Ok(());
        }
        let path = entry.path();
        let rel = path
            .strip_prefix(abs)
            .ok()
            .and_then(|p| p.to_str())
            .ok_or_else(|| PathError::NotUtf8 {
                path: path.to_path_buf(),
            })?
            .to_string();
        let meta = fs::symlink_metadata(path)?;
        let ft = meta.file_type();
        if ft.is_symlink() {
            return Err(PathError::Symlink {
                path: path.to_path_buf(),
                link: path.to_path_buf(),
            }
            .into());
        }
        if !ft.is_dir() && !ft.is_file() {
            return Err(PathError::Special {
                path: path.to_path_buf(),
            }
            .into());
        }
        let mut guard = found.lock().unwrap_or_else(|p| p.into_inner());
        let (files, dirs, parents) = &mut *guard;
        if let Some(i) = rel.rfind('/')
            && !parents.contains(&rel[..i])
        {
            parents.insert(rel[..i].to_string());
        }
        if ft.is_dir() {
            dirs.push(rel);
        } else {
            files.push(Found { rel, meta });
        }
        Ok(())
    };
    walker.run(|| {
        Box::new(|res| match visit(res) {
            Ok(()) => ignore::WalkState::Continue,
            Err(e) => {
                error.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(e);
                ignore::WalkState::Quit
            }
        })
    });
    if let Some(e) = error.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e);
    }
    let (mut files, dirs, parents) = found.into_inner().unwrap_or_else(|p| p.into_inner());
    let mut empty_dirs: Vec<String> = dirs.into_iter().filter(|d| !parents.contains(d)).collect();
    files.sort_unstable_by(|a, b| a.rel.as_bytes().cmp(b.rel.as_bytes()));
    empty_dirs.sort_unstable();
    Ok(Scan { files, empty_dirs })
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

/// The id of the workspace file `abs` (repo-relative `key`), from the stat cache
/// when its stamp is known, else by reading it.
pub fn identify_file(
    key: &str,
    abs: &Path,
    meta: &std::fs::Metadata,
    stat: &StatCache,
    how: Identify<'_>,
    counters: &Counters,
    started: SystemTime,
) -> Result<ObjectId> {
    let stamp = Stamp::of(meta);
    if let Some(id) = stat.get(key, &stamp) {
        match how {
            Identify::Store(cache) if !cache.contains(&id) => {}
            _ => return Ok(id),
        }
    }
    let id = match how {
        Identify::Store(cache) => {
            let stored = cache.put_file(abs, meta)?;
            counters.written_bytes.fetch_add(stored.written, Ordering::Relaxed);
            stored.id
        }
        Identify::HashOnly => hash_file(abs, meta)?,
    };
    counters.hashed_files.fetch_add(1, Ordering::Relaxed);
    counters.hashed_bytes.fetch_add(meta.len(), Ordering::Relaxed);
    if stamp.settled(started) {
        stat.put(key, stamp, id);
    }
    Ok(id)
}

/// Hashes a file without storing it; fails if it changes while being read.
pub fn hash_file(abs: &Path, meta: &std::fs::Metadata) -> Result<ObjectId> {
    let id = if meta.len() <= SMALL_OBJECT {
        ObjectId::of(&fs::read(abs)?)
    } else {
        let mut hasher = blake3::Hasher::new();
        hasher
            .update_mmap_rayon(abs)
            .map_err(|e| std::io::Error::new(e.kind(), format!("failed to read `{}`: {e}", abs.display())))?;
        ObjectId::from_hasher(&hasher)
    };
    let after = fs::symlink_metadata(abs)?;
    if !same_content_stamp(meta, &after) {
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
}

impl Tracked {
    /// Loads and validates the pointer file at `pointer_file` (absolute, inside the repo).
    pub fn load(repo: &Repo, pointer_file: &Path) -> Result<Tracked> {
        let pointer = Pointer::load(pointer_file)?;
        let pointer_rel = rel_str(repo.root(), pointer_file)?;
        let dir_rel = match pointer_rel.rfind('/') {
            Some(i) => &pointer_rel[..i],
            None => "",
        };
        let data_rel = if dir_rel.is_empty() {
            pointer.path.clone()
        } else {
            format!("{dir_rel}/{}", pointer.path)
        };
        repo.check_trackable(&data_rel).map_err(|e| match e {
            crate::Error::Path(PathError::Reserved { reason, .. }) => PathError::Unsafe {
                path: pointer.path.clone(),
                source_file: pointer_file.to_path_buf(),
                reason,
            }
            .into(),
            e => e,
        })?;
        Ok(Tracked {
            pointer_file: pointer_file.to_path_buf(),
            pointer_rel,
            data_abs: repo.root().join(&data_rel),
            data_rel,
            pointer,
        })
    }

    /// The manifest of a tracked directory, read (and verified) from the cache.
    pub fn manifest(&self, cache: &Cache) -> Result<Manifest> {
        let bytes = cache.read(&self.pointer.id, Some(&self.data_rel))?;
        Manifest::parse(&bytes, &self.pointer.id)
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

/// Every pointer file in the repository, sorted. Git-ignored paths (which include
/// tracked data) and `.dvtignore`d paths are not searched.
pub fn find_pointers(repo: &Repo) -> Result<Vec<PathBuf>> {
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
        if entry.file_type().is_some_and(|t| t.is_file()) && is_pointer_path(entry.path()) {
            out.push(entry.path().to_path_buf());
        }
    }
    out.sort();
    Ok(out)
}

/// The pointer files named by `targets` (data paths or pointer files, relative to
/// `cwd`); every pointer in the repository when `targets` is empty.
pub fn resolve_targets(repo: &Repo, cwd: &Path, targets: &[PathBuf]) -> Result<Vec<PathBuf>> {
    if targets.is_empty() {
        return find_pointers(repo);
    }
    let mut out = Vec::new();
    for t in targets {
        let (abs, rel) = repo.resolve(cwd, t)?;
        let trimmed = abs.to_string_lossy().trim_end_matches('/').to_string();
        let abs = PathBuf::from(trimmed);
        let candidate = if is_pointer_path(&abs) && abs.is_file() {
            abs
        } else {
            pointer_path_for(&abs)
        };
        if !candidate.is_file() {
            return Err(PathError::NotTracked {
                target: if rel.is_empty() {
                    ".".into()
                } else {
                    rel.trim_end_matches(&format!(".{POINTER_EXT}")).to_string()
                },
            }
            .into());
        }
        if !out.contains(&candidate) {
            out.push(candidate);
        }
    }
    Ok(out)
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

/// Compares the workspace with a tracked path. `manifest` is required for directories.
pub fn compare(
    stat: &StatCache,
    tracked: &Tracked,
    manifest: Option<&Manifest>,
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
            path: tracked.data_abs.clone(),
            link: tracked.data_abs.clone(),
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
                &meta,
                stat,
                Identify::HashOnly,
                counters,
                started,
            )? != tracked.pointer.id
        {
            changes.modified.push(String::new());
        }
        return Ok(WorkState::Present(changes));
    };
    if !meta.is_dir() {
        changes.added.push(String::new());
        changes.deleted.extend(manifest.files.iter().map(|e| e.path.clone()));
        return Ok(WorkState::Present(changes));
    }
    let scan = scan_dir(&tracked.data_abs)?;
    let expected: HashMap<&str, &Entry> = manifest.files.iter().map(|e| (e.path.as_str(), e)).collect();
    progress.start(
        &format!("checking {}", tracked.data_rel),
        scan.files.len() as u64,
        false,
    );
    let verdicts: Vec<Result<Option<(bool, &str)>>> = scan
        .files
        .par_iter()
        .map(|f| {
            progress.inc(1);
            let Some(e) = expected.get(f.rel.as_str()) else {
                return Ok(Some((true, f.rel.as_str())));
            };
            if f.meta.len() != e.size {
                return Ok(Some((false, f.rel.as_str())));
            }
            let key = format!("{}/{}", tracked.data_rel, f.rel);
            let abs = tracked.data_abs.join(&f.rel);
            let id = identify_file(&key, &abs, &f.meta, stat, Identify::HashOnly, counters, started)?;
            Ok((id != e.id).then_some((false, f.rel.as_str())))
        })
        .collect();
    progress.finish();
    for v in verdicts {
        match v? {
            Some((true, rel)) => changes.added.push(rel.to_string()),
            Some((false, rel)) => changes.modified.push(rel.to_string()),
            None => {}
        }
    }
    let present: HashMap<&str, &Found> = scan.files.iter().map(|f| (f.rel.as_str(), f)).collect();
    for e in &manifest.files {
        match present.get(e.path.as_str()) {
            None => changes.deleted.push(e.path.clone()),
            Some(f) if f.executable() != e.executable && !changes.modified.contains(&e.path) => {
                changes.mode_changed.push(e.path.clone())
            }
            Some(_) => {}
        }
    }
    let implied: HashSet<&str> = manifest
        .files
        .iter()
        .flat_map(|e| e.path.match_indices('/').map(|(i, _)| &e.path[..i]))
        .collect();
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
pub fn missing_objects(cache: &Cache, tracked: &Tracked, manifest: Option<&Manifest>) -> Vec<ObjectId> {
    let mut ids: Vec<ObjectId> = vec![tracked.pointer.id];
    if let Some(m) = manifest {
        ids.extend(m.files.iter().map(|e| e.id));
    }
    ids.sort_unstable();
    ids.dedup();
    ids.into_par_iter().filter(|id| !cache.contains(id)).collect()
}

/// Joins a tracked path and a path inside it, for messages.
pub fn display_path(data_rel: &str, inner: &str) -> String {
    if inner.is_empty() {
        data_rel.to_string()
    } else {
        format!("{data_rel}/{inner}")
    }
}
