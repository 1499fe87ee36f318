//! `dvt add`: store files and directories in the cache and write their pointers.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use fs_err as fs;
use rayon::prelude::*;
use serde::Serialize;

use crate::error::{CacheError, PathError, Result};
use crate::manifest::{Entry, Manifest};
use crate::object::ObjectId;
use crate::pointer::{Kind, Pointer, is_pointer_path, pointer_path_for};
use crate::progress::Progress;
use crate::repo::Repo;
use crate::workspace::{Counters, Identify, file_name, identify_file, scan_dir};

/// What to add.
#[derive(Debug, Clone, Default)]
pub struct AddOptions {
    /// Paths to add, relative to `cwd` or absolute.
    pub paths: Vec<PathBuf>,
    /// The directory relative paths start from.
    pub cwd: PathBuf,
    /// Write the pointers (and `.gitignore` entries) only, storing nothing in
    /// the cache (as DVC's `add --no-commit`): `dvt commit` stores it later.
    pub no_commit: bool,
}

/// What `add` did, per path.
#[derive(Debug, Default, Serialize)]
pub struct AddReport {
    /// One entry per added path, in the order given.
    pub added: Vec<Added>,
    /// Files read and hashed, over all paths (0 when nothing changed).
    pub hashed_files: u64,
    /// Bytes read and hashed.
    pub hashed_bytes: u64,
    /// Bytes newly written to the cache.
    pub written_bytes: u64,
}

/// One added path.
#[derive(Debug, Serialize)]
pub struct Added {
    /// The data path, repo-relative.
    pub path: String,
    /// The pointer file written, repo-relative.
    pub pointer: String,
    /// File or directory.
    pub kind: Kind,
    /// Content or manifest id.
    pub id: ObjectId,
    /// Total bytes.
    pub size: u64,
    /// Number of files, for directories.
    pub files: Option<u64>,
    /// Whether the pointer already said exactly this.
    pub unchanged: bool,
    /// Its pointer changed, and the cache held all of it already (nothing was
    /// written): a version added before, most likely, such as the one a `git
    /// reset` or `stash` leaves in the workspace when it moves the pointer away.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub known_version: bool,
    /// The `.gitignore` that lists the data path, repo-relative.
    pub gitignore: String,
}

struct Target {
    abs: PathBuf,
    rel: String,
    is_dir: bool,
}

/// Adds `opts.paths` to the cache and writes a pointer file for each.
///
/// Every path is checked before anything is written; then content is stored
/// (small files packed together, see [`crate::pack`]), flushed to disk (`cache.fsync`), and only then are pointers and `.gitignore`
/// entries written, each atomically.
pub fn add(repo: &Repo, opts: &AddOptions, progress: &dyn Progress) -> Result<AddReport> {
    // A path named twice (`dvt add d/*` names `x` and `x.dvt`) is added once.
    let mut targets: Vec<Target> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for p in &opts.paths {
        let t = check_target(repo, &opts.cwd, p)?;
        if seen.insert(t.rel.clone()) {
            targets.push(t);
        }
    }
    refuse_git_tracked(repo, targets.iter().map(|t| t.rel.as_str()))?;
    refuse_stage_outs(repo, targets.iter().map(|t| t.rel.as_str()))?;
    // After the stage outs: dvt's own `.gitignore` lists those.
    refuse_ignored_pointers(repo, targets.iter().map(|t| t.rel.as_str()))?;
    let _lock = repo.lock(&format!(
        "dvt add {}",
        targets.iter().map(|t| t.rel.as_str()).collect::<Vec<_>>().join(" ")
    ))?;
    // What killed runs left beside the data, its pointer and its `.gitignore`.
    let pointers: Vec<_> = targets.iter().map(|t| pointer_path_for(&t.abs)).collect();
    let gitignores: Vec<_> = targets
        .iter()
        .map(|t| t.abs.parent().unwrap_or(repo.root()).join(".gitignore"))
        .collect();
    let beside: Vec<&Path> = targets
        .iter()
        .map(|t| t.abs.as_path())
        .chain(pointers.iter().map(PathBuf::as_path))
        .chain(gitignores.iter().map(PathBuf::as_path))
        .collect();
    crate::fsutil::remove_stale_siblings(&beside)?;
    let stat = repo.stat_cache();
    let counters = Counters::default();
    let mut results = Vec::new();
    let packing = repo.cache().begin_packing();
    // A failed write names the data it was for, not only the cache's file.
    let storing = |what: String| {
        move |e: crate::Error| match e {
            crate::Error::Io(source) => CacheError::Store { what, source }.into(),
            other => other,
        }
    };
    // Whether each target wrote nothing to the cache.
    let mut wrote_nothing = Vec::new();
    for t in &targets {
        let how = match opts.no_commit {
            true => Identify::HashOnly,
            false => Identify::Store(repo.cache()),
        };
        let own = Counters::default();
        results.push(
            identify_path(repo, &t.abs, &t.rel, t.is_dir, how, &stat, &own, progress)
                .map_err(storing(format!("`{}`", t.rel)))?
                .0,
        );
        wrote_nothing.push(!opts.no_commit && own.written_bytes.load(Ordering::Relaxed) == 0);
        counters.absorb(own);
    }
    let all: Vec<String> = targets.iter().map(|t| format!("`{}`", t.rel)).collect();
    packing.finish().map_err(storing(all.join(", ")))?;
    if counters.written_bytes.load(Ordering::Relaxed) > 0 && repo.config().cache.fsync {
        crate::fsutil::sync_filesystem(repo.cache().root())?;
    }
    let mut added = Vec::new();
    // Each pointer is flushed to disk before it is renamed into place: a wait
    // for the disk per file, which threads overlap when there are many (as
    // checkout's, 4 per core).
    let save = || -> Result<Vec<(bool, bool)>> {
        targets
            .par_iter()
            .zip(&results)
            .map(|(t, pointer)| {
                let pointer_file = pointer_path_for(&t.abs);
                let old = Pointer::load(&pointer_file).ok();
                let pointer = &pointer.clone().keeping(old.as_ref());
                let unchanged = old.as_ref() == Some(pointer);
                if !unchanged {
                    pointer.save(&pointer_file)?;
                }
                Ok((unchanged, old.is_some()))
            })
            .collect()
    };
    let unchanged = match targets.len() {
        0..=8 => save()?,
        _ => rayon::ThreadPoolBuilder::new()
            .num_threads(4 * std::thread::available_parallelism().map_or(1, |n| n.get()))
            .build()
            .map_err(std::io::Error::other)?
            .install(save)?,
    };
    for (((t, pointer), (unchanged, had_pointer)), wrote_nothing) in
        targets.iter().zip(results).zip(unchanged).zip(wrote_nothing)
    {
        let parent_rel = t.rel.rfind('/').map(|i| &t.rel[..=i]).unwrap_or("");
        added.push(Added {
            path: t.rel.clone(),
            pointer: format!("{}.dvt", t.rel),
            kind: pointer.kind,
            id: pointer.id,
            size: pointer.size,
            files: pointer.files,
            unchanged,
            known_version: had_pointer && !unchanged && wrote_nothing,
            gitignore: format!("{parent_rel}.gitignore"),
        });
    }
    // Each `.gitignore` is written once, with the entries of all its targets.
    crate::gitignore::add_beside(&targets.iter().map(|t| t.abs.as_path()).collect::<Vec<_>>())?;
    // The stat cache only saves work; failing to write it is not an error.
    for (t, a) in targets.iter().zip(&added) {
        if t.is_dir && !opts.no_commit {
            repo.cache().mark_complete(&a.id);
        }
    }
    let _ = stat.save();
    Ok(AddReport {
        added,
        hashed_files: counters.hashed_files.into_inner(),
        hashed_bytes: counters.hashed_bytes.into_inner(),
        written_bytes: counters.written_bytes.into_inner(),
    })
}

fn check_target(repo: &Repo, cwd: &Path, arg: &Path) -> Result<Target> {
    let (abs, rel) = repo.resolve(cwd, arg)?;
    repo.check_trackable(&rel)?;
    // A pointer names its data, as a target of the other commands does.
    if is_pointer_path(&abs) && abs.is_file() {
        let t = crate::workspace::Tracked::load(repo, &abs)?;
        if !is_pointer_path(&t.data_abs) {
            return check_target(repo, cwd, &t.data_abs);
        }
    }
    if is_pointer_path(&abs) && fs::symlink_metadata(&abs).is_ok() {
        return Err(PathError::Reserved {
            path: arg.to_path_buf(),
            reason: "it is a pointer file; add the data path it names instead",
        }
        .into());
    }
    let meta = match fs::symlink_metadata(&abs) {
        Ok(m) => m,
        // (`NotADirectory`: a path below a file, `model.bin/x`.)
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
            ) =>
        {
            return Err(PathError::NotFound {
                path: arg.to_path_buf(),
            }
            .into());
        }
        Err(e) => return Err(e.into()),
    };
    let ft = meta.file_type();
    if ft.is_symlink() {
        // From the root, as every link dvt meets is named (the hint says it from here).
        return Err(PathError::Symlink {
            path: rel.clone().into(),
            link: rel.into(),
        }
        .into());
    }
    if !ft.is_file() && !ft.is_dir() {
        return Err(PathError::Special {
            path: arg.to_path_buf(),
        }
        .into());
    }
    // Refuse a path below a tracked directory: its pointer owns it.
    if let Some(tracked) = crate::workspace::tracked_ancestor(repo, &rel) {
        return Err(PathError::InsideTracked { path: rel, tracked }.into());
    }
    Ok(Target {
        abs,
        rel,
        is_dir: ft.is_dir(),
    })
}

/// Refuses a target that git tracks, or that holds files git tracks, as DVC does:
/// git would go on committing the data that the `.gitignore` entry is meant to
/// keep out. Without git (`init --no-scm`) there is nothing to check.
pub(crate) fn refuse_git_tracked<'a>(repo: &Repo, rels: impl IntoIterator<Item = &'a str>) -> Result<()> {
    // The index is read once, however many paths (a pipeline's every out).
    let rels: Vec<&str> = rels.into_iter().collect();
    let Some(rel) = crate::git::indexed_among(repo.root(), &rels)?.first().copied() else {
        return Ok(());
    };
    let tracked = crate::git::Git::open(repo.root())?
        .tracked_at_or_below(rel)?
        .unwrap_or_else(|| rel.to_string());
    Err(PathError::TrackedByGit {
        path: rel.to_string(),
        tracked,
    }
    .into())
}

/// Refuses a target whose pointer file git would ignore (the file, or a
/// directory above it, matches a `.gitignore` rule), as DVC refuses a `.dvc`
/// file that git ignores: `git add` of it would fail, and a clone would lack it.
/// Without git there is nothing to check.
pub(crate) fn refuse_ignored_pointers<'a>(repo: &Repo, rels: impl IntoIterator<Item = &'a str>) -> Result<()> {
    let Ok(git) = crate::git::Git::open(repo.root()) else {
        return Ok(());
    };
    let pointers: Vec<String> = rels
        .into_iter()
        .map(|rel| format!("{rel}.{}", crate::pointer::POINTER_EXT))
        .collect();
    let asked: Vec<(&str, bool)> = pointers.iter().map(|p| (p.as_str(), false)).collect();
    match git.ignored_among(&asked)?.into_iter().next() {
        Some((pointer, ignored)) => {
            let path = pointer
                .strip_suffix(&format!(".{}", crate::pointer::POINTER_EXT))
                .unwrap_or(pointer);
            Err(PathError::PointerIgnored {
                path: path.to_string(),
                pointer: pointer.to_string(),
                ignored,
            }
            .into())
        }
        None => Ok(()),
    }
}

/// Refuses a target that is, holds or lies inside a stage's out, as DVC does:
/// the stage writes that data and `dvt.lock` records it (`dvt repro`, `dvt commit`).
pub(crate) fn refuse_stage_outs<'a>(repo: &Repo, rels: impl IntoIterator<Item = &'a str>) -> Result<()> {
    let Some(pipeline) = crate::pipeline::Pipeline::load(repo)? else {
        return Ok(());
    };
    for rel in rels {
        for stage in pipeline.stages.values() {
            if let Some(out) = stage.outs.iter().find(|o| crate::pipeline::overlaps(&o.path, rel)) {
                return Err(PathError::StageOut {
                    path: rel.to_string(),
                    out: out.path.clone(),
                    stage: stage.name.clone(),
                }
                .into());
            }
        }
    }
    Ok(())
}

/// The pointer that `abs` (repo-relative `rel`, a file or a directory) would get:
/// its id, size and, for a directory, its manifest (returned too), which is
/// stored in the cache when `how` stores (with every file) and only hashed
/// otherwise. Unchanged files are known from the stat cache.
#[allow(clippy::too_many_arguments)]
pub fn identify_path(
    repo: &Repo,
    abs: &Path,
    rel: &str,
    is_dir: bool,
    how: Identify<'_>,
    stat: &crate::statcache::StatCache,
    counters: &Counters,
    progress: &dyn Progress,
) -> Result<(Pointer, Option<Manifest>)> {
    if is_dir {
        let t = Target {
            abs: abs.to_path_buf(),
            rel: rel.to_string(),
            is_dir,
        };
        return add_dir(repo, &t, how, stat, counters, progress).map(|(p, m)| (p, Some(m)));
    }
    let meta = fs::symlink_metadata(abs)?;
    progress.start(&format!("adding {rel}"), meta.len(), true);
    let id = identify_file(
        rel,
        abs,
        &crate::statcache::Stamp::of(&meta),
        stat,
        how,
        counters,
        SystemTime::now(),
    )?;
    progress.inc(meta.len());
    progress.finish();
    let mut p = Pointer::file(file_name(rel).to_string(), id, meta.len());
    p.executable = std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o111 != 0;
    Ok((p, None))
}

/// The manifest that tracked directory `t` records, made from the workspace
/// when the cache lacks it: the directory there is hashed (files the stat cache
/// knows are not read) and its manifest returned if its id is the recorded one,
/// which makes it that manifest, byte for byte. `None` when the path is not a
/// directory or its content differs.
pub(crate) fn recorded_manifest_from_workspace(
    repo: &Repo,
    t: &crate::workspace::Tracked,
    stat: &crate::statcache::StatCache,
    counters: &Counters,
    progress: &dyn Progress,
) -> Result<Option<Manifest>> {
    if !fs::symlink_metadata(&t.data_abs).is_ok_and(|m| m.is_dir()) {
        return Ok(None);
    }
    let (p, m) = identify_path(
        repo,
        &t.data_abs,
        &t.data_rel,
        true,
        Identify::HashOnly,
        stat,
        counters,
        progress,
    )?;
    Ok(m.filter(|_| p.id == t.pointer.id))
}

fn add_dir(
    repo: &Repo,
    t: &Target,
    how: Identify<'_>,
    stat: &crate::statcache::StatCache,
    counters: &Counters,
    progress: &dyn Progress,
) -> Result<(Pointer, Manifest)> {
    let started = SystemTime::now();
    let scan = scan_dir(repo.root(), &t.abs)?;
    if matches!(how, Identify::Store(_)) {
        // Storing means holding the repo lock: no dvt process is writing these.
        crate::fsutil::remove_leftovers(&scan.leftovers)?;
    }
    // A pointer inside means part of this directory is tracked on its own.
    if let Some(p) = scan
        .files
        .iter()
        .find(|f| crate::pointer::is_pointer_path(Path::new(&f.rel)))
    {
        return Err(PathError::ContainsTracked {
            path: t.rel.clone(),
            pointer: format!("{}/{}", t.rel, p.rel),
        }
        .into());
    }
    let total: u64 = scan.files.iter().map(|f| f.stamp.size()).sum();
    progress.start(&format!("adding {}", t.rel), total, true);
    let entries = scan
        .files
        .par_iter()
        .map(|f| {
            let key = format!("{}/{}", t.rel, f.rel);
            let id = identify_file(&key, &t.abs.join(&f.rel), &f.stamp, stat, how, counters, started)?;
            progress.inc(f.stamp.size());
            Ok(Entry {
                path: f.rel.clone(),
                id,
                size: f.stamp.size(),
                executable: f.executable(),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    progress.finish();
    let seen: HashSet<String> = scan.files.iter().map(|f| format!("{}/{}", t.rel, f.rel)).collect();
    stat.retain_under(&t.rel, |k| seen.contains(k));
    let manifest = Manifest::new(entries, scan.empty_dirs);
    let id = match how {
        Identify::Store(cache) => {
            let stored = cache.put_bytes(&manifest.to_bytes())?;
            counters.written_bytes.fetch_add(stored.written, Ordering::Relaxed);
            stored.id
        }
        Identify::HashOnly => ObjectId::of(&manifest.to_bytes()),
    };
    let pointer = Pointer::dir(
        file_name(&t.rel).to_string(),
        id,
        manifest.total_size(),
        manifest.files.len() as u64,
    );
    Ok((pointer, manifest))
}
