//! `dvt checkout`: make the workspace match the pointer files.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use fs_err as fs;
use rayon::prelude::*;
use serde::Serialize;

use crate::cache::SMALL_OBJECT;
use crate::error::{Result, WorkspaceError};
use crate::manifest::Manifest;
use crate::object::ObjectId;
use crate::pointer::Kind;
use crate::progress::Progress;
use crate::repo::Repo;
use crate::statcache::{Stamp, StatCache};
use crate::workspace::{Changes, Counters, Targets, Tracked, WorkState, compare, display_path};

/// What to check out.
#[derive(Debug, Clone)]
pub struct CheckoutOptions {
    /// Data paths or pointer files; empty means every pointer.
    pub targets: Vec<PathBuf>,
    /// The directory relative targets start from.
    pub cwd: PathBuf,
    /// Overwrite or delete files whose changes no pointer records.
    pub force: bool,
    /// Leave out, instead of failing, the paths whose objects the cache lacks
    /// (listed in [`CheckoutReport::missing`]), as DVC's `--allow-missing`.
    pub allow_missing: bool,
    /// Leave the paths with changes no pointer records as they are and check out
    /// the rest (listed in [`CheckoutReport::kept`]), instead of writing nothing:
    /// for a git hook, after git has switched already.
    pub keep_changed: bool,
}

/// What checkout did.
#[derive(Debug, Default, Serialize)]
pub struct CheckoutReport {
    /// Files written from the cache, repo-relative.
    pub restored: Vec<String>,
    /// Files deleted, repo-relative: in a tracked directory, those its manifest
    /// does not list, and a file where the directory goes (whose content no
    /// pointer records, only with `force`).
    pub deleted: Vec<String>,
    /// Files whose executable bit was corrected.
    pub mode_fixed: Vec<String>,
    /// Empty directories of a manifest made again, repo-relative, with a
    /// trailing `/` (as `status` names them).
    pub restored_dirs: Vec<String>,
    /// Pointers whose data already matched.
    pub unchanged: Vec<String>,
    /// Bytes written to the workspace.
    pub bytes: u64,
    /// With `allow_missing`: paths left as they were because the cache lacks their
    /// objects (a directory whose manifest is missing is one path).
    pub missing: Vec<String>,
    /// With `keep_changed`: the files with changes no pointer records, whose
    /// tracked paths were left as they were.
    pub kept: Vec<String>,
    /// Data the commit HEAD left tracked and this one does not, deleted or left
    /// (see [`crate::ops::switch`]): filled by a caller that asked for it first.
    #[serde(skip_serializing_if = "crate::ops::switch::LeftBehind::is_empty")]
    pub left_behind: crate::ops::switch::LeftBehind,
}

struct Plan {
    tracked: Tracked,
    manifest: Option<Manifest>,
    state: WorkState,
}

/// Restores the targeted data from the cache, verifying every object as it is
/// read. Nothing is written if a file with unrecorded changes would be lost
/// (unless `force`); a file is replaced only once its new content is complete
/// and verified.
pub fn checkout(repo: &Repo, opts: &CheckoutOptions, progress: &dyn Progress) -> Result<CheckoutReport> {
    // Read every pointer first: a malformed one stops us before anything is written.
    let (pointers, _) = crate::workspace::resolve_tracked(repo, &opts.cwd, Targets::given(&opts.targets))?;
    for p in &pointers {
        Tracked::load(repo, p)?;
    }
    let _lock = repo.lock("dvt checkout")?;
    checkout_locked(repo, opts, progress)
}

/// [`checkout`] for a caller that already holds the repo lock.
pub fn checkout_locked(repo: &Repo, opts: &CheckoutOptions, progress: &dyn Progress) -> Result<CheckoutReport> {
    let (pointers, outs) = crate::workspace::resolve_tracked(repo, &opts.cwd, Targets::given(&opts.targets))?;
    let mut tracked = pointers
        .iter()
        .map(|p| Tracked::load(repo, p))
        .collect::<Result<Vec<_>>>()?;
    tracked.extend(outs);
    let mode = Mode {
        force: opts.force,
        allow_missing: opts.allow_missing,
        keep_changed: opts.keep_changed,
    };
    checkout_some(repo, tracked, mode, progress)
}

/// Checks out `tracked` paths (from pointer files or `dvt.lock`); the caller holds
/// the repo lock.
pub fn checkout_tracked(
    repo: &Repo,
    tracked: Vec<Tracked>,
    force: bool,
    progress: &dyn Progress,
) -> Result<CheckoutReport> {
    let mode = Mode {
        force,
        ..Default::default()
    };
    checkout_some(repo, tracked, mode, progress)
}

/// How [`checkout_some`] treats what it cannot restore (see [`CheckoutOptions`]).
#[derive(Default, Clone, Copy)]
struct Mode {
    force: bool,
    allow_missing: bool,
    keep_changed: bool,
}

fn checkout_some(repo: &Repo, tracked: Vec<Tracked>, mode: Mode, progress: &dyn Progress) -> Result<CheckoutReport> {
    let Mode {
        force,
        allow_missing,
        keep_changed,
    } = mode;
    crate::workspace::check_tracked_once(&tracked.iter().collect::<Vec<_>>())?;
    // What killed checkouts left beside the paths: unfinished files, staged directories.
    crate::fsutil::remove_stale_siblings(&tracked.iter().map(|t| t.data_abs.as_path()).collect::<Vec<_>>())?;
    let stat = repo.stat_cache();
    let counters = Counters::default();
    let mut plans = Vec::new();
    let mut failures = Failures {
        allow_missing,
        ..Default::default()
    };
    let mut conflicts = Vec::new();
    let mut kept = Vec::new();
    for t in tracked {
        let manifest = match t.pointer.kind {
            // A directory whose manifest the cache lacks may stand in the
            // workspace as recorded (copied there by hand): then there is
            // nothing to restore, as for a file whose object the cache lacks.
            Kind::Dir => match t.manifest(repo.cache()) {
                Ok(m) => Ok(Some(m)),
                Err(e) if crate::snapshot::is_missing(&e) => {
                    crate::ops::add::recorded_manifest_from_workspace(repo, &t, &stat, &counters, progress)
                        .ok()
                        .flatten()
                        .map(Some)
                        .ok_or(e)
                }
                Err(e) => Err(e),
            },
            Kind::File => Ok(None),
        };
        // A target inside a tracked directory checks out that part only.
        let shown = t.data_rel.clone();
        let (t, manifest) = match manifest.and_then(|m| t.select(m)) {
            Ok(sel) => (sel.tracked, sel.manifest),
            Err(e) => {
                failures.add(&shown, &e);
                continue;
            }
        };
        let state = compare(&stat, &t, manifest.as_ref(), &counters, progress)?;
        let changed = unrecorded(repo, &stat, &t, &state);
        if keep_changed && !force && !changed.is_empty() {
            kept.extend(changed);
            continue;
        }
        conflicts.extend(changed);
        plans.push(Plan {
            tracked: t,
            manifest,
            state,
        });
    }
    if !conflicts.is_empty() && !force {
        return Err(WorkspaceError::Conflicts { paths: conflicts }.into());
    }
    let mut report = CheckoutReport {
        kept,
        ..Default::default()
    };
    // Creating files waits on the filesystem more than on the CPU: measured on
    // 100,000 small files, 8 threads on 2 cores took 6 s where 2 took 9 s.
    let threads = 4 * std::thread::available_parallelism().map_or(1, |n| n.get());
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(std::io::Error::other)?;
    pool.install(|| {
        for plan in plans {
            if let Err(e) = apply(repo, &stat, &plan, &mut report, &mut failures, progress) {
                failures.add(&plan.tracked.data_rel, &e);
            }
        }
    });
    let _ = stat.save();
    report.missing = std::mem::take(&mut failures.missing);
    if !failures.lines.is_empty() {
        let Failures { lines, disk_full, .. } = failures;
        return Err(WorkspaceError::Incomplete {
            failures: lines,
            disk_full,
        }
        .into());
    }
    Ok(report)
}

/// The paths a checkout could not restore, for [`WorkspaceError::Incomplete`].
#[derive(Default)]
struct Failures {
    lines: Vec<String>,
    disk_full: bool,
    /// Paths whose objects the cache lacks go to `missing` instead.
    allow_missing: bool,
    missing: Vec<String>,
}

impl Failures {
    /// Records that `path` failed: the cause, led by the path unless the cause
    /// names it already (an I/O error such as a full disk does not).
    fn add(&mut self, path: &str, e: &crate::Error) {
        if self.allow_missing && matches!(e, crate::Error::Cache(crate::error::CacheError::Missing { .. })) {
            self.missing.push(path.to_string());
            return;
        }
        let cause = crate::error_chain(e);
        self.disk_full |= e.is_disk_full();
        self.lines.push(if cause.contains(&format!("`{path}`")) {
            cause
        } else {
            format!("`{path}`: {cause}")
        });
    }
}

/// The workspace files of `t` whose content no pointer records and the cache
/// lacks: what replacing the data would lose. An empty directory holds no
/// content: one the pointer does not record goes without asking (another
/// version's, left by `git checkout` of a branch, as often as one made by hand).
fn unrecorded(repo: &Repo, stat: &StatCache, t: &Tracked, state: &WorkState) -> Vec<String> {
    let WorkState::Present(c) = state else {
        return Vec::new();
    };
    c.added
        .iter()
        .chain(&c.modified)
        .map(|p| (p, display_path(&t.data_rel, p)))
        .filter(|(p, key)| !p.ends_with('/') && !is_cached(repo, stat, key))
        .map(|(_, key)| key)
        .collect()
}

/// Fails, naming the files, if replacing `t`'s data would lose unrecorded work.
pub fn refuse_unrecorded_changes(repo: &Repo, t: &Tracked) -> Result<()> {
    let stat = repo.stat_cache();
    let (state, _) = t.workspace_state(repo.cache(), &stat)?;
    let paths = unrecorded(repo, &stat, t, &state);
    if paths.is_empty() {
        Ok(())
    } else {
        Err(WorkspaceError::Conflicts { paths }.into())
    }
}

/// Whether the workspace file `key` (repo-relative) has content the cache holds:
/// replacing it loses nothing (as after `git checkout` of another data version).
/// A directory where a file is tracked (the other version was a directory):
/// whether every file below it has.
fn is_cached(repo: &Repo, stat: &StatCache, key: &str) -> bool {
    let abs = repo.root().join(key);
    let Ok(meta) = fs::symlink_metadata(&abs) else {
        return false;
    };
    if meta.is_dir() {
        return walkdir::WalkDir::new(&abs).min_depth(1).into_iter().all(|e| {
            e.ok().is_some_and(|e| {
                let rel = e.path().strip_prefix(repo.root()).ok().and_then(Path::to_str);
                e.file_type().is_dir() || rel.is_some_and(|rel| is_cached(repo, stat, rel))
            })
        });
    }
    if !meta.is_file() {
        return false;
    }
    let stamp = Stamp::of(&meta);
    let id = match stat.get(key, &stamp) {
        Some(id) => id,
        None => match crate::workspace::hash_file(&abs, &stamp) {
            Ok(id) => id,
            Err(_) => return false,
        },
    };
    repo.cache().contains(&id)
}

/// One file to write.
struct Job<'a> {
    inner: &'a str,
    id: ObjectId,
    size: u64,
    executable: bool,
}

fn apply(
    repo: &Repo,
    stat: &StatCache,
    plan: &Plan,
    report: &mut CheckoutReport,
    failures: &mut Failures,
    progress: &dyn Progress,
) -> Result<()> {
    let t = &plan.tracked;
    repo.check_no_symlink_parents(&t.data_rel)?;
    if let WorkState::Present(c) = &plan.state {
        crate::fsutil::remove_leftovers(&c.leftovers)?;
    }
    let changes = match &plan.state {
        WorkState::Missing => None,
        WorkState::Present(c) if c.is_empty() => {
            report.unchanged.push(t.data_rel.clone());
            return Ok(());
        }
        WorkState::Present(c) => Some(c),
    };
    let Some(manifest) = &plan.manifest else {
        // A tracked file: replace it whole.
        if fs::symlink_metadata(&t.data_abs).is_ok_and(|m| m.is_dir()) {
            fs::remove_dir_all(&t.data_abs)?;
        }
        let job = Job {
            inner: "",
            id: t.pointer.id,
            size: t.pointer.size,
            executable: t.pointer.executable,
        };
        if let Some(c) = changes
            && c.modified.is_empty()
            && !c.mode_changed.is_empty()
        {
            set_executable(&t.data_abs, t.pointer.executable)?;
            report.mode_fixed.push(t.data_rel.clone());
            return Ok(());
        }
        restore(repo, stat, t, &job, None)?;
        report.restored.push(t.data_rel.clone());
        report.bytes += t.pointer.size;
        return Ok(());
    };
    if changes.is_none() {
        return restore_whole_dir(repo, stat, t, manifest, report, failures, progress);
    }
    let empty = Changes::default();
    let changes = changes.unwrap_or(&empty);
    if plan_is_not_a_dir(&t.data_abs) {
        fs::remove_file(&t.data_abs)?;
        report.deleted.push(t.data_rel.clone());
    }
    fs::create_dir_all(&t.data_abs)?;
    // Unrecorded files go first (only reached with --force), deepest first.
    let mut extra: Vec<&String> = changes.added.iter().filter(|p| !p.is_empty()).collect();
    extra.sort_by_key(|p| std::cmp::Reverse(p.matches('/').count()));
    for p in extra {
        let abs = t.data_abs.join(p.trim_end_matches('/'));
        let res = if p.ends_with('/') {
            fs::remove_dir(&abs)
        } else {
            fs::remove_file(&abs)
        };
        res?;
        prune_empty_parents(&t.data_abs, &abs);
        report.deleted.push(display_path(&t.data_rel, p));
    }
    let todo: std::collections::HashSet<&str> = changes
        .deleted
        .iter()
        .chain(&changes.modified)
        .map(String::as_str)
        .collect();
    let jobs: Vec<Job> = manifest
        .files
        .iter()
        .filter(|e| plan_needs(&plan.state, &todo, &e.path))
        .map(|e| Job {
            inner: &e.path,
            id: e.id,
            size: e.size,
            executable: e.executable,
        })
        .collect();
    for d in &manifest.empty_dirs {
        let abs = t.data_abs.join(d);
        if !abs.is_dir() {
            fs::create_dir_all(abs)?;
            report.restored_dirs.push(display_path(&t.data_rel, &format!("{d}/")));
        }
    }
    for p in &changes.mode_changed {
        let abs = t.data_abs.join(p);
        let exec = manifest.files.iter().any(|e| &e.path == p && e.executable);
        set_executable(&abs, exec)?;
        report.mode_fixed.push(display_path(&t.data_rel, p));
    }
    let total: u64 = jobs.iter().map(|j| j.size).sum();
    progress.start(&format!("checking out {}", t.data_rel), total, true);
    let results: Vec<(String, u64, Result<()>)> = jobs
        .par_iter()
        .map(|j| {
            let r = restore(repo, stat, t, j, Some(j.inner));
            progress.inc(j.size);
            (display_path(&t.data_rel, j.inner), j.size, r)
        })
        .collect();
    progress.finish();
    for (path, size, r) in results {
        match r {
            Ok(()) => {
                report.restored.push(path);
                report.bytes += size;
            }
            Err(e) => failures.add(&path, &e),
        }
    }
    Ok(())
}

fn plan_is_not_a_dir(abs: &Path) -> bool {
    fs::symlink_metadata(abs).is_ok_and(|m| !m.is_dir())
}

fn plan_needs(state: &WorkState, todo: &std::collections::HashSet<&str>, path: &str) -> bool {
    matches!(state, WorkState::Missing) || todo.contains(path)
}

fn prune_empty_parents(top: &Path, removed: &Path) {
    let mut dir = removed.parent();
    while let Some(d) = dir {
        if d == top || fs::remove_dir(d).is_err() {
            break;
        }
        dir = d.parent();
    }
}

/// Restores a tracked directory that is missing altogether: the tree is built in
/// a hidden sibling directory with plain file creations, then renamed into place in
/// one step. This costs one directory operation per file instead of three (create a
/// temporary name, rename it), and a killed checkout leaves only the hidden sibling,
/// which the next checkout removes.
fn restore_whole_dir(
    repo: &Repo,
    stat: &StatCache,
    t: &Tracked,
    manifest: &Manifest,
    report: &mut CheckoutReport,
    failures: &mut Failures,
    progress: &dyn Progress,
) -> Result<()> {
    let parent = t.data_abs.parent().unwrap_or(repo.root());
    fs::create_dir_all(parent)?;
    // A pull may have written the directory already, as its packs arrived.
    let (stage, written) = match repo.cache().take_tree(&t.data_rel, &t.pointer.id) {
        Some(laid) => (laid.root, laid.written),
        None => {
            let stage = crate::fsutil::temp_sibling(&t.data_abs);
            fs::create_dir(&stage)?;
            (stage, Vec::new())
        }
    };
    let mut dirs: Vec<&str> = manifest.empty_dirs.iter().map(String::as_str).collect();
    dirs.extend(
        manifest
            .files
            .iter()
            .filter_map(|e| e.path.rfind('/').map(|i| &e.path[..i])),
    );
    dirs.sort_unstable();
    dirs.dedup();
    for d in dirs {
        fs::create_dir_all(stage.join(d))?;
    }
    let total: u64 = manifest.files.iter().map(|e| e.size).sum();
    progress.start(&format!("checking out {}", t.data_rel), total, true);
    let results: Vec<Result<Stamp>> = manifest
        .files
        .par_iter()
        .enumerate()
        .map(|(i, e)| {
            let job = Job {
                inner: &e.path,
                id: e.id,
                size: e.size,
                executable: e.executable,
            };
            let dest = stage.join(&e.path);
            let r = if written.get(i).copied().unwrap_or(false) {
                finish_in_place(&dest, &job)
            } else {
                write_object(repo, &job, &dest, &display_path(&t.data_rel, &e.path))
            };
            if r.is_err() {
                let _ = fs::remove_file(&dest);
            }
            progress.inc(e.size);
            r
        })
        .collect();
    progress.finish();
    fs::rename(&stage, &t.data_abs)?;
    stat.reserve(manifest.files.len());
    for (e, r) in manifest.files.iter().zip(results) {
        match r {
            Ok(stamp) => {
                // Renaming the directory leaves its files' stat unchanged.
                stat.put(&format!("{}/{}", t.data_rel, e.path), stamp, e.id);
                report.restored.push(display_path(&t.data_rel, &e.path));
                report.bytes += e.size;
            }
            Err(err) => failures.add(&display_path(&t.data_rel, &e.path), &err),
        }
    }
    Ok(())
}

/// Writes object `job.id`, verified, to the new file `dest`; returns the file's
/// stamp. On error the caller removes `dest`.
fn write_object(repo: &Repo, job: &Job, dest: &Path, shown: &str) -> Result<Stamp> {
    // A pull's fetch may have left the content, decoded and verified, beside the
    // workspace: then a rename replaces decompressing the object again.
    if let Some(kept) = repo.cache().take_decoded(&job.id) {
        if fs::rename(&kept, dest).is_ok() {
            return finish_in_place(dest, job);
        }
        let _ = fs::remove_file(&kept);
    }
    let mut f = fs::OpenOptions::new().write(true).create_new(true).open(dest)?;
    if job.size <= SMALL_OBJECT {
        repo.cache().write_small(&job.id, Some(shown), f.file_mut())?;
    } else {
        repo.cache().copy_to_file(&job.id, Some(shown), f.file_mut())?;
    }
    finish_file(f, job)
}

/// [`finish_file`] for `dest`, already holding its content, verified.
fn finish_in_place(dest: &Path, job: &Job) -> Result<Stamp> {
    finish_file(fs::OpenOptions::new().write(true).open(dest)?, job)
}

/// Sets the execute bits a new workspace file should have; returns its stamp.
fn finish_file(f: fs::File, job: &Job) -> Result<Stamp> {
    if job.executable {
        let mut perm = f.metadata()?.permissions();
        perm.set_mode(with_exec(perm.mode(), true));
        f.set_permissions(perm)?;
    }
    Ok(Stamp::of(&f.metadata()?))
}

/// Writes one object to its workspace path through a temporary file, verified.
fn restore(repo: &Repo, stat: &StatCache, t: &Tracked, job: &Job, inner: Option<&str>) -> Result<()> {
    let dest = match inner {
        Some(p) => t.data_abs.join(p),
        None => t.data_abs.clone(),
    };
    let shown = display_path(&t.data_rel, job.inner);
    if let Some(parent) = dest.parent() {
        fs::create_dir_all(parent)?;
    }
    // Beside its final name, so the rename stays in one directory; scans skip it.
    let tmp_file = crate::fsutil::temp_sibling(&dest);
    let result = (|| -> Result<()> {
        write_object(repo, job, &tmp_file, &shown)?;
        if fs::symlink_metadata(&dest).is_ok_and(|m| m.is_dir()) {
            // What is left inside is what `.dvtignore` hides from the scan:
            // not ours to delete.
            if let Err(e) = fs::remove_dir(&dest) {
                return Err(match first_file_below(&dest) {
                    Some(f) if e.kind() == std::io::ErrorKind::DirectoryNotEmpty => WorkspaceError::IgnoredInTheWay {
                        path: shown.clone(),
                        example: f.strip_prefix(repo.root()).unwrap_or(&f).to_string_lossy().into_owned(),
                    }
                    .into(),
                    _ => e.into(),
                });
            }
        }
        fs::rename(&tmp_file, &dest)?;
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp_file);
        return result;
    }
    // We wrote these bytes and verified them: record them for status. A rename
    // changes the file's ctime, so stat it at its final name.
    let key = match inner {
        Some(p) => format!("{}/{p}", t.data_rel),
        None => t.data_rel.clone(),
    };
    if let Ok(meta) = fs::symlink_metadata(&dest) {
        stat.put(&key, Stamp::of(&meta), job.id);
    }
    Ok(())
}

/// The first file below directory `dir`, if there is one.
fn first_file_below(dir: &Path) -> Option<PathBuf> {
    walkdir::WalkDir::new(dir)
        .sort_by_file_name()
        .into_iter()
        .filter_map(|e| e.ok())
        .find(|e| !e.file_type().is_dir())
        .map(walkdir::DirEntry::into_path)
}

/// `mode` with execute bits set wherever it has read bits (as git does), or cleared.
fn with_exec(mode: u32, exec: bool) -> u32 {
    if exec {
        mode | ((mode & 0o444) >> 2)
    } else {
        mode & !0o111
    }
}

fn set_executable(abs: &Path, exec: bool) -> std::io::Result<()> {
    let mut perm = fs::metadata(abs)?.permissions();
    perm.set_mode(with_exec(perm.mode(), exec));
    fs::set_permissions(abs, perm)
}
