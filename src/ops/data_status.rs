//! `dvt data status` (as `dvc data status`): the tracked data sorted as `git
//! status` sorts files — recorded in pointer files but not committed to git,
//! changed in the workspace but not recorded, missing from the cache or the
//! remote — and, if asked, the files neither git nor dvt tracks.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde::Serialize;

use crate::error::Result;
use crate::object::ObjectId;
use crate::ops::status::{PointerStatus, Workspace};
use crate::pointer::Kind;
use crate::progress::Progress;
use crate::repo::Repo;
use crate::workspace::{Targets, Tracked, display_path};

/// What `data_status` looks at.
#[derive(Debug, Clone, Default)]
pub struct DataStatusOptions {
    /// Data paths or pointer files (relative to `cwd`); empty: all.
    pub targets: Vec<PathBuf>,
    /// The directory relative targets start from.
    pub cwd: PathBuf,
    /// List files inside tracked directories too, not only the directories.
    pub granular: bool,
    /// Also list the data that matches its pointer.
    pub unchanged: bool,
    /// Also list the files neither git nor dvt tracks (git's untracked files).
    pub untracked: bool,
    /// Also list the data the remote lacks (this lists the remote).
    pub not_in_remote: bool,
    /// The remote for `not_in_remote` (`None`: the default).
    pub remote: Option<String>,
}

/// Paths by how they changed. Directories end with `/`.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct Changes {
    /// New paths.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub added: Vec<String>,
    /// Paths whose content (or executable bit) changed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub modified: Vec<String>,
    /// Paths that are gone.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub deleted: Vec<String>,
    /// Data whose path changed and content did not (a pointer moved).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub renamed: Vec<Renamed>,
}

/// A path that changed, its content the same.
#[derive(Debug, Default, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct Renamed {
    /// The path before.
    pub old: String,
    /// The path now.
    pub new: String,
}

impl Changes {
    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.modified.is_empty() && self.deleted.is_empty() && self.renamed.is_empty()
    }

    /// Each change as `state: path` (`renamed: old -> new`), added first.
    pub fn lines(&self) -> impl Iterator<Item = String> + '_ {
        [
            ("added", &self.added),
            ("modified", &self.modified),
            ("deleted", &self.deleted),
        ]
        .into_iter()
        .flat_map(|(state, paths)| paths.iter().map(move |p| format!("{state}: {p}")))
        .chain(self.renamed.iter().map(|r| format!("renamed: {} -> {}", r.old, r.new)))
    }
}

/// The report; each list is sorted, paths repo-relative, directories with a
/// trailing `/`. The JSON form has only the lists that are not empty, as DVC's.
#[derive(Debug, Default, Serialize)]
pub struct DataStatus {
    /// Data whose objects the cache lacks (`dvt fetch` gets them).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_in_cache: Vec<String>,
    /// Data whose objects the remote lacks (`dvt push` sends them); only asked
    /// for with [`DataStatusOptions::not_in_remote`].
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_in_remote: Vec<String>,
    /// Pointer files (and `dvt.lock`) changed since HEAD: recorded by dvt, not
    /// yet committed to git.
    #[serde(skip_serializing_if = "Changes::is_empty")]
    pub committed: Changes,
    /// Data changed in the workspace since its pointer recorded it: not yet
    /// recorded (`dvt add` or `dvt commit`).
    #[serde(skip_serializing_if = "Changes::is_empty")]
    pub uncommitted: Changes,
    /// Files neither git tracks nor ignores.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub untracked: Vec<String>,
    /// Data that matches its pointer.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unchanged: Vec<String>,
    /// Whether git sees other changes (files it tracks that differ from HEAD).
    #[serde(skip)]
    pub git_dirty: bool,
}

impl DataStatus {
    /// Whether nothing is listed.
    pub fn is_empty(&self) -> bool {
        self.not_in_cache.is_empty()
            && self.not_in_remote.is_empty()
            && self.committed.is_empty()
            && self.uncommitted.is_empty()
            && self.untracked.is_empty()
            && self.unchanged.is_empty()
    }
}

/// Sorts the targeted data (every tracked path when there are no targets) as
/// `git status` sorts files. Reads the workspace as `dvt status` does (a stat per
/// unchanged file), git's HEAD and index, and with `not_in_remote` lists the remote.
pub fn data_status(repo: &Repo, opts: &DataStatusOptions, progress: &dyn Progress) -> Result<DataStatus> {
    // First, so that a malformed pointer stops it with its own error.
    let tracked = Tracking::load(repo, opts)?;
    let status = crate::ops::status(
        repo,
        &crate::ops::StatusOptions {
            targets: opts.targets.clone(),
            cwd: opts.cwd.clone(),
            data_only: true,
            ..Default::default()
        },
        progress,
    )?;
    let mut report = DataStatus::default();
    let kinds: BTreeMap<&str, Option<Kind>> = status.pointers.iter().map(|p| (p.path.as_str(), p.kind)).collect();
    let shown = |path: &str| match kinds.get(path) {
        Some(Some(Kind::Dir)) => format!("{path}/"),
        _ => path.to_string(),
    };
    for st in &status.pointers {
        let files = opts.granular.then(|| tracked.files(repo, &st.path)).flatten();
        let shown = shown(&st.path);
        if !st.missing_from_cache.is_empty() {
            let missing: BTreeSet<&ObjectId> = st.missing_from_cache.iter().collect();
            report.not_in_cache.push(shown.clone());
            report.not_in_cache.extend(inside(&files, |id| missing.contains(id)));
        }
        sort_workspace(st, &shown, files.as_deref(), opts, &mut report);
    }
    if let Ok(git) = crate::git::Git::open(repo.root()) {
        report.committed = committed(repo, opts)?;
        report.git_dirty = git.head()?.is_some() && git.is_dirty()?;
        if opts.untracked {
            let targets = tracked.targets.clone();
            report.untracked = git
                .untracked_files()?
                .into_iter()
                .filter(|f| targets.is_empty() || targets.iter().any(|t| crate::pipeline::overlaps(t, f)))
                .collect();
        }
    }
    if opts.not_in_remote {
        let transfer = crate::ops::TransferOptions {
            targets: opts.targets.clone(),
            cwd: opts.cwd.clone(),
            remote: opts.remote.clone(),
            ..Default::default()
        };
        for p in crate::ops::remote_status(repo, &transfer, progress)?.pointers {
            let absent: BTreeSet<&ObjectId> = p.local_only.iter().chain(&p.missing).collect();
            if absent.is_empty() {
                continue;
            }
            let files = opts.granular.then(|| tracked.files(repo, &p.path)).flatten();
            report.not_in_remote.push(shown(&p.path));
            report.not_in_remote.extend(inside(&files, |id| absent.contains(id)));
        }
    }
    for list in [
        &mut report.not_in_cache,
        &mut report.not_in_remote,
        &mut report.committed.added,
        &mut report.committed.modified,
        &mut report.committed.deleted,
        &mut report.uncommitted.added,
        &mut report.uncommitted.modified,
        &mut report.uncommitted.deleted,
        &mut report.unchanged,
    ] {
        list.sort();
        list.dedup();
    }
    report.committed.renamed.sort();
    Ok(report)
}

/// The paths of `files` (a directory's, with `--granular`) whose id `wanted`.
fn inside(files: &Option<Vec<(String, ObjectId)>>, wanted: impl Fn(&ObjectId) -> bool) -> Vec<String> {
    files
        .iter()
        .flatten()
        .filter(|(_, id)| wanted(id))
        .map(|(p, _)| p.clone())
        .collect()
}

/// Files `uncommitted` and `unchanged` from one pointer's status.
fn sort_workspace(
    st: &PointerStatus,
    shown: &str,
    files: Option<&[(String, ObjectId)]>,
    opts: &DataStatusOptions,
    report: &mut DataStatus,
) {
    let all = || files.into_iter().flatten().map(|(p, _)| p.clone());
    match st.workspace {
        Workspace::Missing => {
            report.uncommitted.deleted.push(shown.to_string());
            report.uncommitted.deleted.extend(all());
        }
        Workspace::Modified => {
            report.uncommitted.modified.push(shown.to_string());
            if opts.granular && st.kind == Some(Kind::Dir) {
                report.uncommitted.added.extend(st.added.iter().cloned());
                report
                    .uncommitted
                    .modified
                    .extend(st.modified.iter().chain(&st.mode_changed).cloned());
                report.uncommitted.deleted.extend(st.deleted.iter().cloned());
                if opts.unchanged {
                    let changed: BTreeSet<&String> =
                        st.modified.iter().chain(&st.mode_changed).chain(&st.deleted).collect();
                    report.unchanged.extend(all().filter(|p| !changed.contains(p)));
                }
            }
        }
        Workspace::Unchanged if opts.unchanged => {
            report.unchanged.push(shown.to_string());
            report.unchanged.extend(all());
        }
        Workspace::Unchanged | Workspace::Unknown => {}
    }
}

/// What HEAD's pointers record against what the workspace's record (DVC's
/// "committed" changes: recorded, not yet in a git commit).
fn committed(repo: &Repo, opts: &DataStatusOptions) -> Result<Changes> {
    let targets = opts
        .targets
        .iter()
        .map(|t| Ok(repo.resolve(&opts.cwd, t)?.1.trim_end_matches('/').to_string()))
        .collect::<Result<Vec<_>>>()?;
    // Before the first commit, every tracked path is added.
    let diff = crate::ops::diff(
        repo,
        &crate::ops::DiffOptions {
            targets,
            pointers_only: true,
            ..Default::default()
        },
    )?;
    let dirs: Vec<&str> = [&diff.added, &diff.modified, &diff.deleted]
        .into_iter()
        .flatten()
        .map(|c| c.path.as_str())
        .chain(diff.renamed.iter().flat_map(|r| [r.old_path.as_str(), r.path.as_str()]))
        .filter(|p| p.ends_with('/'))
        .collect();
    // Without --granular, the tracked paths only: no row inside a directory's.
    let keep = |p: &String| opts.granular || !dirs.iter().any(|d| p.starts_with(d) && p.as_str() != *d);
    let paths = |list: &[crate::ops::diff::Change]| list.iter().map(|c| c.path.clone()).filter(keep).collect();
    Ok(Changes {
        added: paths(&diff.added),
        modified: paths(&diff.modified),
        deleted: paths(&diff.deleted),
        renamed: diff
            .renamed
            .iter()
            .filter(|r| keep(&r.old_path) && keep(&r.path))
            .map(|r| Renamed {
                old: r.old_path.clone(),
                new: r.path.clone(),
            })
            .collect(),
    })
}

/// The tracked paths in scope, to find a status row's directory and files.
struct Tracking {
    /// By data path (a target inside a directory: its display path).
    by_path: BTreeMap<String, Tracked>,
    /// The targets, repo-relative.
    targets: Vec<String>,
}

impl Tracking {
    fn load(repo: &Repo, opts: &DataStatusOptions) -> Result<Tracking> {
        let (pointers, outs) = crate::workspace::resolve_tracked(repo, &opts.cwd, Targets::given(&opts.targets))?;
        let mut by_path = BTreeMap::new();
        let mut all = pointers
            .iter()
            .map(|f| Tracked::load(repo, f))
            .collect::<Result<Vec<_>>>()?;
        all.extend(outs);
        // A path tracked twice would show once, by whichever came last.
        crate::workspace::check_tracked_once(&all.iter().collect::<Vec<_>>())?;
        for t in all {
            let path = match &t.within {
                Some(inner) => display_path(&t.data_rel, inner),
                None => t.data_rel.clone(),
            };
            by_path.insert(path, t);
        }
        let targets = opts
            .targets
            .iter()
            .map(|t| Ok(repo.resolve(&opts.cwd, t)?.1.trim_end_matches('/').to_string()))
            .collect::<Result<Vec<_>>>()?;
        Ok(Tracking { by_path, targets })
    }

    /// The files of the tracked directory at `path`, with their ids, if its
    /// manifest is in the cache.
    fn files(&self, repo: &Repo, path: &str) -> Option<Vec<(String, ObjectId)>> {
        let t = self.by_path.get(path)?;
        if t.pointer.kind != Kind::Dir || !repo.cache().contains(&t.pointer.id) {
            return None;
        }
        let sel = t.select(Some(t.manifest(repo.cache()).ok()?)).ok()?;
        let m = sel.manifest?;
        Some(
            m.files
                .iter()
                .map(|e| (display_path(&sel.tracked.data_rel, &e.path), e.id))
                .collect(),
        )
    }
}
