//! `dvt diff`: data added, modified, deleted and renamed between two revisions,
//! or between a revision and the workspace, down to files inside tracked
//! directories. The workspace side is what the workspace holds, as DVC's
//! `diff` hashes it: data changed and not yet added shows (files the stat
//! cache knows are not read).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::error::{PathError, Result};
use crate::manifest::Manifest;
use crate::object::ObjectId;
use crate::pointer::Kind;
use crate::repo::Repo;
use crate::snapshot::{Objects, Snapshot};
use crate::workspace::Tracked;

/// What to compare.
#[derive(Debug, Clone, Default)]
pub struct DiffOptions {
    /// The old side: a revision (default `HEAD`).
    pub a: Option<String>,
    /// The new side: a revision (default: the workspace: its data as it is,
    /// where its pointers are).
    pub b: Option<String>,
    /// The remote to read manifests from when the cache lacks them.
    pub remote: Option<String>,
    /// Only these paths (repo-relative, as DVC's `--targets`): tracked paths,
    /// directories holding some, or paths inside tracked directories. Empty: all.
    pub targets: Vec<String>,
    /// Without `b`: the workspace as its pointer files record it, not its data
    /// as it is (what `dvt data status` calls committed changes).
    pub pointers_only: bool,
}

/// One changed path.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Change {
    /// Repo-relative path; directories end with `/`.
    pub path: String,
    /// The old id, if the path existed before.
    pub old: Option<ObjectId>,
    /// The new id, if the path exists after.
    pub new: Option<ObjectId>,
    /// Old size in bytes.
    pub old_size: Option<u64>,
    /// New size in bytes.
    pub new_size: Option<u64>,
}

/// Content that moved: the same bytes gone from one path and found at another.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Rename {
    /// Where the content was (repo-relative; directories end with `/`).
    pub old_path: String,
    /// Where it is now.
    pub path: String,
    /// Its id, the same on both sides.
    pub id: ObjectId,
    /// Its size in bytes.
    pub size: u64,
}

/// The difference between two snapshots.
#[derive(Debug, Clone, Serialize, Default)]
pub struct DiffReport {
    /// The old side, as a label (`HEAD (1a2b3c4)`).
    pub from: String,
    /// The new side, as a label.
    pub to: String,
    /// Paths only on the new side.
    pub added: Vec<Change>,
    /// Paths whose content differs.
    pub modified: Vec<Change>,
    /// Paths only on the old side.
    pub deleted: Vec<Change>,
    /// Content deleted at one path and added at another, unchanged (as DVC's
    /// `renamed`): taken out of `deleted` and `added`. Empty files are never
    /// paired, as git pairs none.
    pub renamed: Vec<Rename>,
    /// Tracked directories whose file-level changes could not be listed because a
    /// manifest is neither in the cache nor on the remote.
    pub unlisted: Vec<String>,
}

impl DiffReport {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.modified.is_empty() && self.deleted.is_empty() && self.renamed.is_empty()
    }

    /// Pairs deleted and added paths of the same content as renames: a file
    /// with a file, a directory with a directory. Where several paths hold the
    /// same content, a path pairs first with one of the same file name, then
    /// in path order.
    fn find_renames(&mut self) {
        let name = |p: &str| {
            p.trim_end_matches('/')
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_string()
        };
        let is_dir = |c: &Change| c.path.ends_with('/');
        let mut gone: BTreeMap<(ObjectId, bool), Vec<usize>> = BTreeMap::new();
        for (i, c) in self.deleted.iter().enumerate() {
            if let (Some(id), Some(size)) = (c.old, c.old_size)
                && (size > 0 || is_dir(c))
            {
                gone.entry((id, is_dir(c))).or_default().push(i);
            }
        }
        let mut paired_old = vec![false; self.deleted.len()];
        let mut paired_new = vec![false; self.added.len()];
        for (j, c) in self.added.iter().enumerate() {
            let Some(id) = c.new else { continue };
            let Some(candidates) = gone.get_mut(&(id, is_dir(c))) else {
                continue;
            };
            let Some(at) = candidates
                .iter()
                .position(|&i| name(&self.deleted[i].path) == name(&c.path))
                .or(if candidates.is_empty() { None } else { Some(0) })
            else {
                continue;
            };
            let i = candidates.remove(at);
            paired_old[i] = true;
            paired_new[j] = true;
            self.renamed.push(Rename {
                old_path: self.deleted[i].path.clone(),
                path: c.path.clone(),
                id,
                size: c.new_size.unwrap_or_default(),
            });
        }
        let mut keep = paired_old.iter().map(|p| !p);
        self.deleted.retain(|_| keep.next().unwrap_or(true));
        let mut keep = paired_new.iter().map(|p| !p);
        self.added.retain(|_| keep.next().unwrap_or(true));
    }
}

/// Compares `opts.a` (default `HEAD`) with `opts.b` (default: the workspace).
///
/// The workspace side is what its pointer files record: data changed but not yet
/// `dvt add`ed is what `dvt status` shows.
pub fn diff(repo: &Repo, opts: &DiffOptions) -> Result<DiffReport> {
    // Before the first commit, the default old side is nothing at all.
    let a = match crate::ops::stages::base_rev(repo, opts.a.as_deref())? {
        Some(a) => Some(Snapshot::open(repo, Some(a))?),
        None => None,
    };
    let b = Snapshot::open(repo, opts.b.as_deref())?;
    let objects = Objects::new(repo, opts.remote.as_deref());
    let index = |s: &Snapshot<'_>| -> Result<BTreeMap<String, Tracked>> {
        Ok(s.pointers()?.into_iter().map(|t| (t.data_rel.clone(), t)).collect())
    };
    let old = match &a {
        Some(a) => index(a)?,
        None => BTreeMap::new(),
    };
    let mut new = index(&b)?;
    let targets: Vec<&str> = opts.targets.iter().map(|t| t.trim_end_matches('/')).collect();
    // A tracked path is looked at if a target is it, holds it, or is inside it.
    let within = crate::relpath::within;
    let looked_at = |path: &str| targets.is_empty() || targets.iter().any(|t| within(path, t) || within(t, path));
    let mut manifests = Manifests {
        objects: &objects,
        made: Default::default(),
    };
    if opts.b.is_none() && !opts.pointers_only {
        let stat = repo.stat_cache();
        for (_, t) in new.iter_mut().filter(|(p, _)| looked_at(p)) {
            if let Some((pointer, manifest)) = in_workspace(repo, t, &stat) {
                if let Some(m) = manifest {
                    manifests.made.insert(pointer.id, m);
                }
                t.pointer = pointer;
            }
        }
        let _ = stat.save();
    }
    let mut report = DiffReport {
        from: a.as_ref().map_or_else(|| "no commit yet".to_string(), Snapshot::label),
        to: b.label(),
        ..Default::default()
    };
    let mut paths: Vec<&String> = old.keys().chain(new.keys()).collect();
    paths.sort();
    paths.dedup();
    if let Some(t) = targets
        .iter()
        .find(|t| !paths.iter().any(|p| within(p, t) || within(t, p)))
    {
        return Err(PathError::NotTracked {
            target: t.to_string(),
            holds_tracked: false,
            closest: None,
        }
        .into());
    }
    paths.retain(|p| looked_at(p));
    for path in paths {
        match (old.get(path), new.get(path)) {
            (None, Some(n)) => side(&mut report, &manifests, n, false)?,
            (Some(o), None) => side(&mut report, &manifests, o, true)?,
            (Some(o), Some(n)) if o.pointer.id == n.pointer.id && o.pointer.kind == n.pointer.kind => {}
            (Some(o), Some(n)) if o.pointer.kind == Kind::Dir && n.pointer.kind == Kind::Dir => {
                report.modified.push(Change {
                    path: format!("{path}/"),
                    old: Some(o.pointer.id),
                    new: Some(n.pointer.id),
                    old_size: Some(o.pointer.size),
                    new_size: Some(n.pointer.size),
                });
                match (manifests.of(o), manifests.of(n)) {
                    (Some(mo), Some(mn)) => files(&mut report, path, &mo, &mn),
                    _ => report.unlisted.push(format!("{path}/")),
                }
            }
            (Some(o), Some(n)) if o.pointer.kind == Kind::File && n.pointer.kind == Kind::File => {
                report.modified.push(Change {
                    path: path.clone(),
                    old: Some(o.pointer.id),
                    new: Some(n.pointer.id),
                    old_size: Some(o.pointer.size),
                    new_size: Some(n.pointer.size),
                });
            }
            (Some(o), Some(n)) => {
                side(&mut report, &manifests, o, true)?;
                side(&mut report, &manifests, n, false)?;
            }
            (None, None) => {}
        }
    }
    // Of a tracked directory a target is inside, only what is below the target.
    let shown = |c: &Change| targets.is_empty() || targets.iter().any(|t| within(c.path.trim_end_matches('/'), t));
    for list in [&mut report.added, &mut report.modified, &mut report.deleted] {
        list.retain(shown);
    }
    report.find_renames();
    Ok(report)
}

/// Where the manifests of the two sides come from.
struct Manifests<'a> {
    /// The cache, then the remote.
    objects: &'a Objects<'a>,
    /// Made from the workspace (hashed, not stored), by id.
    made: rustc_hash::FxHashMap<ObjectId, Manifest>,
}

impl Manifests<'_> {
    /// The manifest of tracked directory `t`; `None` if nothing has it.
    fn of(&self, t: &Tracked) -> Option<std::borrow::Cow<'_, Manifest>> {
        match self.made.get(&t.pointer.id) {
            Some(m) => Some(std::borrow::Cow::Borrowed(m)),
            None => self.objects.manifest(t).ok().map(std::borrow::Cow::Owned),
        }
    }
}

/// What the workspace holds at `t`'s path when that differs from what its
/// pointer records: the pointer it would get, and a directory's manifest.
/// `None` when it is as recorded, or not there (data not checked out is
/// missing, not changed), or cannot be read (a warning says why: it is then
/// compared as its pointer records it).
fn in_workspace(
    repo: &Repo,
    t: &Tracked,
    stat: &crate::statcache::StatCache,
) -> Option<(crate::pointer::Pointer, Option<Manifest>)> {
    let meta = fs_err::symlink_metadata(&t.data_abs).ok()?;
    let identified = crate::ops::add::identify_path(
        repo,
        &t.data_abs,
        &t.data_rel,
        meta.is_dir(),
        crate::workspace::Identify::HashOnly,
        stat,
        &crate::workspace::Counters::default(),
        &crate::progress::NoProgress,
    );
    match identified {
        Ok((p, _)) if p.id == t.pointer.id && p.kind == t.pointer.kind => None,
        Ok((p, m)) => Some((p, m)),
        Err(e) => {
            tracing::warn!(
                "`{}` is compared as its pointer records it: {}",
                t.data_rel,
                crate::error_chain(&e)
            );
            None
        }
    }
}

/// Records a whole tracked path as added (or deleted), with its files.
fn side(report: &mut DiffReport, manifests: &Manifests<'_>, t: &Tracked, deleted: bool) -> Result<()> {
    let change = |path: String, id: ObjectId, size: u64| {
        if deleted {
            Change {
                path,
                old: Some(id),
                new: None,
                old_size: Some(size),
                new_size: None,
            }
        } else {
            Change {
                path,
                old: None,
                new: Some(id),
                old_size: None,
                new_size: Some(size),
            }
        }
    };
    let list = if deleted {
        &mut report.deleted
    } else {
        &mut report.added
    };
    match t.pointer.kind {
        Kind::File => list.push(change(t.data_rel.clone(), t.pointer.id, t.pointer.size)),
        Kind::Dir => {
            list.push(change(format!("{}/", t.data_rel), t.pointer.id, t.pointer.size));
            match manifests.of(t) {
                Some(m) => {
                    for e in &m.files {
                        list.push(change(format!("{}/{}", t.data_rel, e.path), e.id, e.size));
                    }
                }
                None => report.unlisted.push(format!("{}/", t.data_rel)),
            }
        }
    }
    Ok(())
}

/// File-level changes between two manifests of directory `dir`.
fn files(report: &mut DiffReport, dir: &str, old: &Manifest, new: &Manifest) {
    let (mut i, mut j) = (0, 0);
    while i < old.files.len() || j < new.files.len() {
        let o = old.files.get(i);
        let n = new.files.get(j);
        let order = match (o, n) {
            (Some(o), Some(n)) => o.path.as_bytes().cmp(n.path.as_bytes()),
            (Some(_), None) => std::cmp::Ordering::Less,
            _ => std::cmp::Ordering::Greater,
        };
        match (order, o, n) {
            (std::cmp::Ordering::Less, Some(o), _) => {
                report.deleted.push(Change {
                    path: format!("{dir}/{}", o.path),
                    old: Some(o.id),
                    new: None,
                    old_size: Some(o.size),
                    new_size: None,
                });
                i += 1;
            }
            (std::cmp::Ordering::Greater, _, Some(n)) => {
                report.added.push(Change {
                    path: format!("{dir}/{}", n.path),
                    old: None,
                    new: Some(n.id),
                    old_size: None,
                    new_size: Some(n.size),
                });
                j += 1;
            }
            (_, Some(o), Some(n)) => {
                if o.id != n.id {
                    report.modified.push(Change {
                        path: format!("{dir}/{}", o.path),
                        old: Some(o.id),
                        new: Some(n.id),
                        old_size: Some(o.size),
                        new_size: Some(n.size),
                    });
                }
                i += 1;
                j += 1;
            }
            _ => break,
        }
    }
}
