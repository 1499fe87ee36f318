//! `dvt status`: how the workspace and the cache compare with the pointers.

use std::path::PathBuf;

use serde::Serialize;

use crate::error::{FormatError, Result};
use crate::object::ObjectId;
use crate::ops::repro::{Action, Known, ReproOptions, StageResult};
use crate::pipeline::lock::Entry;
use crate::pointer::Kind;
use crate::progress::Progress;
use crate::repo::Repo;
use crate::workspace::{Counters, Targets, Tracked, WorkState, compare_scanned, display_path, missing_objects};

/// What to look at.
#[derive(Debug, Clone, Default)]
pub struct StatusOptions {
    /// Data paths or pointer files; empty means every pointer.
    pub targets: Vec<PathBuf>,
    /// The directory relative targets start from.
    pub cwd: PathBuf,
    /// Only the data: do not ask the pipeline which stages are stale.
    pub data_only: bool,
    /// Ask the source of every import whether it moved on (as DVC's `status`
    /// does unless `--no-updates`): this reaches the network for imports from
    /// URLs and from repositories not on disk.
    pub check_updates: bool,
}

/// The state of every pointer looked at.
#[derive(Debug, Serialize)]
pub struct StatusReport {
    /// One entry per pointer, sorted by pointer path.
    pub pointers: Vec<PointerStatus>,
    /// Stages of `dvt.toml` that `dvt repro` would run, and why (looked at only
    /// when no targets are named).
    pub stale_stages: Vec<StageResult>,
    /// Why the pipeline could not be checked, if it could not.
    pub pipeline_error: Option<String>,
    /// Files read and hashed to decide (0 when the stat cache knew them all).
    pub hashed_files: u64,
    /// With [`StatusOptions::check_updates`]: each import, and whether its
    /// source moved on since (`dvt update` brings that).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub updates: Vec<crate::ops::import::UpdateCheck>,
    /// Tracked data paths that git's index holds (at or below them): staged,
    /// or committed earlier, their bytes would go into git's history.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub in_git_index: Vec<String>,
    /// Data the last `git checkout`, merge, pull, reset, cherry-pick or revert
    /// left in the workspace, tracked by nothing and not ignored by git (looked
    /// at only when no targets are named).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub left_behind: Vec<crate::ops::switch::LeftHere>,
}

impl StatusReport {
    /// Whether every pointer matches the workspace and has its objects cached,
    /// and no stage of the pipeline would run.
    pub fn is_clean(&self) -> bool {
        self.pointers
            .iter()
            .all(|p| p.workspace == Workspace::Unchanged && p.missing_from_cache.is_empty() && p.error.is_none())
            && self.stale_stages.is_empty()
            && self.pipeline_error.is_none()
    }
}

/// How a tracked path's workspace side compares with its pointer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Workspace {
    /// Matches the pointer.
    Unchanged,
    /// Differs from the pointer.
    Modified,
    /// The data path does not exist.
    Missing,
    /// Could not be determined (see `error` or `missing_from_cache`).
    Unknown,
}

/// The state of one pointer.
#[derive(Debug, Serialize)]
pub struct PointerStatus {
    /// The pointer file, repo-relative.
    pub pointer: String,
    /// The data path, repo-relative (empty if the pointer could not be read).
    pub path: String,
    /// File or directory.
    pub kind: Option<Kind>,
    /// The workspace's state.
    pub workspace: Workspace,
    /// Paths (repo-relative) present but not recorded.
    pub added: Vec<String>,
    /// Paths whose content differs.
    pub modified: Vec<String>,
    /// Recorded paths that are gone.
    pub deleted: Vec<String>,
    /// Paths whose executable bit differs.
    pub mode_changed: Vec<String>,
    /// For a modified path: whether the cache already holds what the workspace
    /// has there (every changed file's content). Another recorded version, most
    /// likely, left by a git command that moved the pointer and ran no hook (`git
    /// reset`, `stash`, `revert`), which `dvt checkout` would bring up to date.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub workspace_in_cache: bool,
    /// What now stands at the data path when it is not what the pointer records:
    /// `file` where a directory was tracked, `dir` where a file was. The lists
    /// above still say it file by file (the path added, every recorded file deleted).
    pub replaced_by: Option<Kind>,
    /// Objects the pointer needs that the cache lacks.
    pub missing_from_cache: Vec<ObjectId>,
    /// Why the pointer could not be checked, if it could not.
    pub error: Option<String>,
    /// Why, when the way out is not to mend the file by hand.
    #[serde(skip)]
    pub unread_because: Option<Unread>,
}

/// Why a pointer could not be read, when that calls for something else than
/// mending it by hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unread {
    /// A newer dvt wrote it (a format version this one does not read): upgrade dvt.
    NewerFormat,
    /// It holds git's conflict markers (a merge not finished): keep one side.
    Conflict,
}

impl PointerStatus {
    /// Whether the pointer file itself could not be read (malformed, or with git's
    /// conflict markers): then `error` says why and `path` is empty.
    pub fn unreadable(&self) -> bool {
        self.error.is_some() && self.path.is_empty()
    }

    /// A status not yet known, for `pointer`.
    fn new(pointer: String) -> Self {
        PointerStatus {
            pointer,
            path: String::new(),
            kind: None,
            workspace: Workspace::Unknown,
            added: vec![],
            modified: vec![],
            deleted: vec![],
            mode_changed: vec![],
            workspace_in_cache: false,
            replaced_by: None,
            missing_from_cache: vec![],
            error: None,
            unread_because: None,
        }
    }
}

/// Compares every targeted pointer with the workspace and the cache. Unchanged
/// files cost one `stat` each: their ids come from the stat cache.
pub fn status(repo: &Repo, opts: &StatusOptions, progress: &dyn Progress) -> Result<StatusReport> {
    let (pointers, outs) = crate::workspace::resolve_tracked(repo, &opts.cwd, Targets::given(&opts.targets))?;
    let stat = repo.stat_cache();
    let counters = Counters::default();
    let mut out = Vec::new();
    // What was found as recorded, for the pipeline's dry run below.
    let mut known = Known::new();
    let mut imports = Vec::new();
    let loaded: Vec<(PathBuf, Result<Tracked>)> = pointers
        .into_iter()
        .map(|f| (f.clone(), Tracked::load(repo, &f)))
        .collect();
    let all: Vec<&Tracked> = loaded
        .iter()
        .filter_map(|(_, t)| t.as_ref().ok())
        .chain(&outs)
        .collect();
    crate::workspace::check_tracked_once(&all)?;
    for (file, t) in loaded {
        let pointer_rel = crate::workspace::rel_str(repo.root(), &file)?;
        let mut st = PointerStatus::new(pointer_rel);
        let checked = t.and_then(|t| {
            check_one(repo, &stat, &counters, progress, &t, &mut st)?;
            st.workspace_in_cache = workspace_in_cache(repo, &stat, &st);
            if st.workspace == Workspace::Unchanged && t.within.is_none() {
                known.insert(t.data_rel.clone(), Entry::from_pointer(&t.data_rel, &t.pointer));
            }
            if opts.check_updates && t.pointer.source.is_some() {
                imports.push(t);
            }
            Ok(())
        });
        if let Err(e) = checked {
            st.unread_because = match e {
                crate::Error::Format(FormatError::UnsupportedVersion { .. }) => Some(Unread::NewerFormat),
                crate::Error::Format(FormatError::Conflict { .. }) => Some(Unread::Conflict),
                _ => None,
            };
            st.error = Some(crate::error_chain(&e));
        }
        out.push(st);
    }
    for t in outs {
        let mut st = PointerStatus::new(t.pointer_rel.clone());
        if let Err(e) = check_one(repo, &stat, &counters, progress, &t, &mut st) {
            st.error = Some(crate::error_chain(&e));
        }
        st.workspace_in_cache = workspace_in_cache(repo, &stat, &st);
        if st.workspace == Workspace::Unchanged && t.within.is_none() {
            known.insert(t.data_rel.clone(), Entry::from_pointer(&t.data_rel, &t.pointer));
        }
        out.push(st);
    }
    let _ = stat.save();
    let mut report = StatusReport {
        pointers: out,
        stale_stages: vec![],
        pipeline_error: None,
        hashed_files: counters.hashed_files.into_inner(),
        updates: crate::ops::import::check_updates(repo, &imports),
        in_git_index: vec![],
        left_behind: vec![],
    };
    let paths: Vec<&str> = report
        .pointers
        .iter()
        .map(|p| p.path.as_str())
        .filter(|p| !p.is_empty())
        .collect();
    report.in_git_index = crate::git::indexed_among(repo.root(), &paths)?
        .into_iter()
        .map(str::to_string)
        .collect();
    if opts.targets.is_empty() {
        // A warning only: git failing to answer does not fail `status`.
        report.left_behind = crate::ops::switch::left_here(repo).unwrap_or_default();
    }
    if opts.targets.is_empty() && !opts.data_only && repo.root().join(crate::pipeline::PIPELINE_FILE).exists() {
        let dry = ReproOptions {
            dry_run: true,
            ..Default::default()
        };
        match crate::ops::repro::repro_knowing(repo, &dry, &known, &|_, _| Ok(()), progress) {
            Ok(r) => {
                report.hashed_files += r.hashed_files;
                report.stale_stages = r.stages.into_iter().filter(|s| s.action == Action::WouldRun).collect();
            }
            Err(e) => report.pipeline_error = Some(crate::error_chain(&e)),
        }
    }
    Ok(report)
}

fn check_one(
    repo: &Repo,
    stat: &crate::statcache::StatCache,
    counters: &Counters,
    progress: &dyn Progress,
    tracked: &Tracked,
    st: &mut PointerStatus,
) -> Result<()> {
    if let Some(inner) = &tracked.within {
        // A target inside a tracked directory: that part only.
        let cache = repo.cache();
        st.path = display_path(&tracked.data_rel, inner);
        let manifest = if cache.contains(&tracked.pointer.id) {
            tracked.manifest(cache)?
        } else if let Some(m) =
            crate::ops::add::recorded_manifest_from_workspace(repo, tracked, stat, counters, progress)?
        {
            // The whole directory stands as recorded: so does this part.
            m
        } else {
            // Without the directory's manifest, not even the part's kind is known.
            st.missing_from_cache = vec![tracked.pointer.id];
            st.workspace = presence(&tracked.data_abs.join(inner));
            return Ok(());
        };
        let sel = tracked.select(Some(manifest))?;
        let part = &sel.tracked;
        st.kind = Some(part.pointer.kind);
        st.missing_from_cache = missing_objects(cache, part, sel.manifest.as_ref())?;
        let scan = sel.manifest.as_ref().and_then(|_| listing(part)).transpose()?;
        return record_changes(stat, part, sel.manifest.as_ref(), scan, counters, progress, st);
    }
    st.path = tracked.data_rel.clone();
    st.kind = Some(tracked.pointer.kind);
    // Reading the manifest (decompress, verify, parse) and checking the cache for
    // its objects are independent of walking the directory: do them at once.
    let (manifest, scan) = match tracked.pointer.kind {
        Kind::Dir if repo.cache().contains(&tracked.pointer.id) => {
            let (m, scan) = rayon::join(
                || -> Result<_> {
                    let m = tracked.manifest(repo.cache())?;
                    let missing = missing_objects(repo.cache(), tracked, Some(&m))?;
                    Ok((m, missing))
                },
                || listing(tracked),
            );
            let (m, missing) = m?;
            st.missing_from_cache = missing;
            (Some(m), scan.transpose()?)
        }
        _ => {
            st.missing_from_cache = missing_objects(repo.cache(), tracked, None)?;
            (None, None)
        }
    };
    if tracked.pointer.kind == Kind::Dir && manifest.is_none() {
        return compare_without_manifest(repo, stat, counters, progress, tracked, st);
    }
    record_changes(stat, tracked, manifest.as_ref(), scan, counters, progress, st)
}

/// A tracked directory whose manifest the cache lacks: the workspace's side is
/// hashed into a manifest of its own (unchanged files from the stat cache, as
/// `add` would) and its id compared with the recorded one. Equal ids mean equal
/// content, and that manifest then says which file objects the cache lacks too;
/// different ids say that something changed, but not which files, as DVC's
/// `status` does without the `.dir` object.
fn compare_without_manifest(
    repo: &Repo,
    stat: &crate::statcache::StatCache,
    counters: &Counters,
    progress: &dyn Progress,
    tracked: &Tracked,
    st: &mut PointerStatus,
) -> Result<()> {
    let meta = match fs_err::symlink_metadata(&tracked.data_abs) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            st.workspace = Workspace::Missing;
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    if !meta.is_dir() {
        st.workspace = Workspace::Modified;
        st.replaced_by = Some(Kind::File);
        return Ok(());
    }
    match crate::ops::add::recorded_manifest_from_workspace(repo, tracked, stat, counters, progress)? {
        Some(m) => {
            st.workspace = Workspace::Unchanged;
            st.missing_from_cache = missing_objects(repo.cache(), tracked, Some(&m))?;
        }
        None => st.workspace = Workspace::Modified,
    }
    Ok(())
}

/// The listing of a tracked directory's workspace side, if it is a directory.
fn listing(t: &Tracked) -> Option<Result<crate::workspace::Scan>> {
    match fs_err::symlink_metadata(&t.data_abs) {
        Ok(meta) if meta.is_dir() => Some(crate::workspace::scan_dir(&t.root, &t.data_abs)),
        _ => None,
    }
}

/// Missing, or present in a state that could not be told.
fn presence(path: &std::path::Path) -> Workspace {
    if fs_err::symlink_metadata(path).is_ok() {
        Workspace::Unknown
    } else {
        Workspace::Missing
    }
}

/// See [`PointerStatus::workspace_in_cache`]: the ids of the changed files come
/// from the stat cache, which the comparison has just filled (a file changed too
/// recently for it to trust has none, and the answer is no).
fn workspace_in_cache(repo: &Repo, stat: &crate::statcache::StatCache, st: &PointerStatus) -> bool {
    if st.workspace != Workspace::Modified || st.replaced_by.is_some() {
        return false;
    }
    // The files whose content changed (a file alone or in a directory); a change
    // of mode alone leaves the content the pointer records, which says nothing.
    let files: Vec<&str> = st.added.iter().chain(&st.modified).map(String::as_str).collect();
    !files.is_empty()
        && files.iter().all(|rel| {
            fs_err::symlink_metadata(repo.root().join(rel)).is_ok_and(|meta| {
                stat.get(rel, &crate::statcache::Stamp::of(&meta))
                    .is_some_and(|id| repo.cache().contains(&id))
            })
        })
}

/// Compares `tracked` with the workspace (with `scan`, its directory's listing
/// if one was made) and records what differs in `st`.
fn record_changes(
    stat: &crate::statcache::StatCache,
    tracked: &Tracked,
    manifest: Option<&crate::manifest::Manifest>,
    scan: Option<crate::workspace::Scan>,
    counters: &Counters,
    progress: &dyn Progress,
    st: &mut PointerStatus,
) -> Result<()> {
    match compare_scanned(stat, tracked, manifest, scan, counters, progress)? {
        WorkState::Missing => st.workspace = Workspace::Missing,
        WorkState::Present(c) => {
            let full = |v: Vec<String>| v.into_iter().map(|p| display_path(&tracked.data_rel, &p)).collect();
            st.workspace = if c.is_empty() {
                Workspace::Unchanged
            } else {
                Workspace::Modified
            };
            st.added = full(c.added);
            st.modified = full(c.modified);
            st.deleted = full(c.deleted);
            st.mode_changed = full(c.mode_changed);
            if st.workspace == Workspace::Modified {
                // One more stat, for a changed path only.
                let now = match fs_err::symlink_metadata(&tracked.data_abs) {
                    Ok(m) if m.is_dir() => Kind::Dir,
                    _ => Kind::File,
                };
                st.replaced_by = (now != tracked.pointer.kind).then_some(now);
            }
        }
    }
    Ok(())
}
