//! `dvt versions PATH`: the tags (or, with `all`, the commits) at which a tracked
//! path's data changed, with ids and sizes. History is walked once.

use std::rc::Rc;

use rustc_hash::FxHashMap;
use serde::Serialize;

use crate::error::{GitError, Result};
use crate::git::{Git, GitId};
use crate::object::ObjectId;
use crate::pointer::Kind;
use crate::repo::Repo;
use crate::snapshot::{FileData, Objects, Snapshot, short};

/// What to list.
#[derive(Debug, Clone, Default)]
pub struct VersionsOptions {
    /// The path, repo-relative: tracked, or a file inside a tracked directory.
    pub path: String,
    /// List every commit reachable from HEAD, branches and tags at which the data
    /// changed, not only tags.
    pub all: bool,
    /// The remote to read manifests from when the cache lacks them.
    pub remote: Option<String>,
}

/// One version of the data.
#[derive(Debug, Clone, Serialize)]
pub struct Version {
    /// The commit (full hex).
    pub commit: String,
    /// Its first 7 hex digits.
    pub short: String,
    /// Commit time, seconds since the epoch.
    pub time: i64,
    /// Tags naming the commit.
    pub tags: Vec<String>,
    /// The data id there; `None` where the path is not tracked.
    pub id: Option<ObjectId>,
    /// Bytes.
    pub size: Option<u64>,
    /// File or directory.
    pub kind: Option<Kind>,
}

/// The versions of one path, oldest first.
#[derive(Debug, Clone, Serialize)]
pub struct VersionsReport {
    /// The path.
    pub path: String,
    /// Each version where the data changed.
    pub versions: Vec<Version>,
    /// The clone is shallow: versions older than its history are not listed, and
    /// the oldest listed may be older than it looks.
    pub shallow: bool,
}

/// Lists the versions of `opts.path`.
pub fn versions(repo: &Repo, opts: &VersionsOptions) -> Result<VersionsReport> {
    let git = Rc::new(Git::open(repo.root())?);
    let objects = Objects::new(repo, opts.remote.as_deref());
    let tags = git.tags()?;
    let mut tags_by_commit: FxHashMap<GitId, Vec<String>> = FxHashMap::default();
    for (name, c) in &tags {
        tags_by_commit.entry(*c).or_default().push(name.clone());
    }
    let mut memo: FxHashMap<GitId, Option<FileData>> = FxHashMap::default();
    let mut data_at = |commit: GitId| -> Result<Option<FileData>> {
        if let Some(d) = memo.get(&commit) {
            return Ok(d.clone());
        }
        let snap = Snapshot::at_commit(repo, git.clone(), short(&commit), commit);
        // Not tracked there, or a file its tracked directory did not hold yet.
        let d = match snap.locate(&opts.path).and_then(|loc| snap.file_data(&loc, &objects)) {
            Ok(d) => Some(d),
            Err(crate::Error::Git(GitError::NotTrackedAt { .. })) => None,
            Err(e) => return Err(e),
        };
        memo.insert(commit, d.clone());
        Ok(d)
    };
    let row = |commit: GitId, time: i64, d: &Option<FileData>| Version {
        commit: commit.to_string(),
        short: short(&commit),
        time,
        tags: tags_by_commit.get(&commit).cloned().unwrap_or_default(),
        id: d.as_ref().map(|d| d.id),
        size: d.as_ref().map(|d| d.size),
        kind: d.as_ref().map(|d| d.kind),
    };
    let mut out = Vec::new();
    if opts.all {
        let mut tips: Vec<GitId> = git.head()?.into_iter().collect();
        tips.extend(git.branches()?.into_iter().map(|(_, c)| c));
        tips.extend(tags.iter().map(|(_, c)| *c));
        tips.sort();
        tips.dedup();
        for c in parents_first(git.walk(&tips)?) {
            let d = data_at(c.id)?;
            let before = match c.parents.first() {
                Some(p) => data_at(*p)?,
                None => None,
            };
            if d.as_ref().map(|d| d.id) != before.as_ref().map(|b| b.id) {
                out.push(row(c.id, c.time, &d));
            }
        }
    } else {
        // Tagged commits in history order (parents first), from one walk.
        let mut tagged: Vec<GitId> = tags.iter().map(|(_, c)| *c).collect();
        tagged.sort();
        tagged.dedup();
        let commits: Vec<(i64, GitId)> = parents_first(git.walk(&tagged)?)
            .into_iter()
            .filter(|c| tags_by_commit.contains_key(&c.id))
            .map(|c| (c.time, c.id))
            .collect();
        let mut last: Option<ObjectId> = None;
        for (time, c) in commits {
            let d = data_at(c)?;
            let id = d.as_ref().map(|d| d.id);
            if id != last && (id.is_some() || last.is_some()) {
                out.push(row(c, time, &d));
            }
            last = id;
        }
    }
    if out.is_empty() {
        let at_head = match git.head()? {
            Some(h) => data_at(h)?,
            None => None,
        };
        if at_head.is_none() {
            // Tracked here, with a pointer no commit holds yet: say that.
            let here = Snapshot::workspace(repo);
            if let Ok(loc) = here.locate(&opts.path)
                && here.file_data(&loc, &objects).is_ok()
            {
                return Err(GitError::NotCommitted {
                    path: opts.path.clone(),
                    pointer: loc.tracked.pointer_rel,
                }
                .into());
            }
            return Err(GitError::NotTrackedAt {
                path: opts.path.clone(),
                rev: "HEAD or any tag".into(),
                closest: None,
            }
            .into());
        }
    }
    Ok(VersionsReport {
        path: opts.path.clone(),
        versions: out,
        shallow: git.is_shallow(),
    })
}

/// The commits ordered so that every parent comes before its children (oldest
/// first), ties broken by commit time.
fn parents_first(mut commits: Vec<crate::git::WalkedCommit>) -> Vec<crate::git::WalkedCommit> {
    commits.sort_by_key(|c| c.time);
    let index: FxHashMap<GitId, usize> = commits.iter().enumerate().map(|(i, c)| (c.id, i)).collect();
    let mut done = vec![false; commits.len()];
    let mut order = Vec::with_capacity(commits.len());
    for start in 0..commits.len() {
        // Iterative post-order: emit a commit once all its parents are emitted.
        let mut stack = vec![(start, false)];
        while let Some((i, expanded)) = stack.pop() {
            if done[i] {
                continue;
            }
            if expanded {
                done[i] = true;
                order.push(i);
                continue;
            }
            stack.push((i, true));
            for p in &commits[i].parents {
                if let Some(&j) = index.get(p)
                    && !done[j]
                {
                    stack.push((j, false));
                }
            }
        }
    }
    let mut slots: Vec<Option<crate::git::WalkedCommit>> = commits.into_iter().map(Some).collect();
    order.into_iter().filter_map(|i| slots[i].take()).collect()
}
