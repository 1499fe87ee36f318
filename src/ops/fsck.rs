//! `dvt fsck`: verify every object in the cache, and repair what is damaged.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use fs_err as fs;
use rayon::prelude::*;
use rustc_hash::FxHashSet;
use serde::Serialize;

use crate::error::{CacheError, Error, Result};
use crate::object::ObjectId;
use crate::pointer::Kind;
use crate::progress::Progress;
use crate::repo::Repo;
use crate::snapshot::Snapshot;
use crate::workspace::{Counters, Identify};

/// What `fsck` found.
#[derive(Debug, Default, Serialize)]
pub struct FsckReport {
    /// Objects checked.
    pub checked: u64,
    /// Bytes of content verified.
    pub bytes: u64,
    /// Objects that are damaged or unreadable, with the reason.
    pub corrupt: Vec<Damaged>,
    /// Files under `objects/` and `packs/` that are not objects or packs.
    pub strays: Vec<PathBuf>,
    /// Pack indexes that fail their checks (their objects cannot be found), with why.
    pub bad_indexes: Vec<BadIndex>,
    /// What `--repair` did, when asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repair: Option<Repair>,
}

impl FsckReport {
    /// Whether anything is damaged (or could not be read).
    pub fn bad(&self) -> bool {
        !self.corrupt.is_empty() || !self.bad_indexes.is_empty()
    }
}

/// One pack index that cannot be used.
#[derive(Debug, Serialize)]
pub struct BadIndex {
    /// The index file.
    pub path: PathBuf,
    /// What is wrong.
    pub reason: String,
}

/// One damaged object.
#[derive(Debug, Serialize)]
pub struct Damaged {
    /// The object's id (its file name).
    pub id: ObjectId,
    /// What is wrong.
    pub reason: String,
    /// Whether its bytes are wrong (`false`: they could not be read at all, which
    /// may pass, so `--repair` leaves the object alone).
    pub damaged: bool,
}

impl Damaged {
    /// An object whose bytes do not match its id.
    pub fn wrong_bytes(id: ObjectId, reason: String) -> Damaged {
        Damaged {
            id,
            reason,
            damaged: true,
        }
    }
}

/// What `fsck --repair` did.
#[derive(Debug, Default, Serialize)]
pub struct Repair {
    /// Damaged objects taken out of the cache (loose files deleted, packs
    /// rewritten without them).
    pub removed: Vec<ObjectId>,
    /// Objects stored again from workspace files that hold their content: removed
    /// ones, and any other that a pointer in the workspace needs and the cache
    /// lacked (one a killed repair took out, say).
    pub restored: Vec<ObjectId>,
    /// Removed objects that no workspace file holds: `dvt fetch` gets them from a remote.
    pub missing: Vec<ObjectId>,
    /// Damaged pack indexes moved, with their packs, to `damaged/` in the cache.
    pub set_aside: Vec<PathBuf>,
    /// Tracked paths that could not be read to restore objects, with why.
    pub unreadable: Vec<String>,
}

impl Repair {
    /// Whether the cache is whole again: nothing removed is still missing.
    pub fn complete(&self) -> bool {
        self.missing.is_empty() && self.unreadable.is_empty()
    }
}

/// Decodes every object in the cache and checks its hash, on all cores.
pub fn fsck(repo: &Repo, progress: &dyn Progress) -> Result<FsckReport> {
    let (ids, strays) = repo.cache().list()?;
    let (bytes, failures) = verify_objects(repo.cache(), &ids, "verifying objects", progress);
    let mut corrupt: Vec<Damaged> = failures
        .into_iter()
        .map(|(id, e)| match e {
            Error::Cache(CacheError::Corrupt { reason, .. }) => Damaged::wrong_bytes(id, reason),
            e => Damaged {
                id,
                reason: crate::error_chain(&e),
                damaged: false,
            },
        })
        .collect();
    corrupt.sort_by_key(|d| d.id);
    Ok(FsckReport {
        checked: ids.len() as u64,
        bytes,
        corrupt,
        strays,
        bad_indexes: repo
            .cache()
            .packs()
            .with_set(true, |s| {
                s.bad
                    .iter()
                    .map(|(path, reason)| BadIndex {
                        path: path.clone(),
                        reason: reason.clone(),
                    })
                    .collect()
            })?
            .unwrap_or_default(),
        repair: None,
    })
}

/// Decodes and hashes objects `ids` of `cache` on all cores. Returns the content
/// bytes verified and each object that failed, with why.
pub(crate) fn verify_objects(
    cache: &crate::cache::Cache,
    ids: &[ObjectId],
    label: &str,
    progress: &dyn Progress,
) -> (u64, Vec<(ObjectId, Error)>) {
    progress.start(label, ids.len() as u64, false);
    let bytes = AtomicU64::new(0);
    let failures = ids
        .par_iter()
        .filter_map(|id| {
            let r = cache.verify(id);
            progress.inc(1);
            match r {
                Ok(n) => {
                    bytes.fetch_add(n, Ordering::Relaxed);
                    None
                }
                Err(e) => Some((*id, e)),
            }
        })
        .collect();
    progress.finish();
    (bytes.into_inner(), failures)
}

/// Repairs what `report` (from [`fsck`]) found, under the repo lock: takes each
/// damaged object out of the cache, then stores again every one that a tracked
/// path in the workspace still holds (as `add` would; no pointer changes), and
/// moves each damaged pack index, with its pack, to `damaged/` below the cache
/// root, where nothing reads it and `gc` does not delete it. An object that could
/// not be read at all is left alone.
pub fn repair(repo: &Repo, report: &FsckReport, progress: &dyn Progress) -> Result<Repair> {
    let _lock = repo.lock("dvt fsck --repair")?;
    let cache = repo.cache();
    let removed: Vec<ObjectId> = report.corrupt.iter().filter(|d| d.damaged).map(|d| d.id).collect();
    cache.delete_many(&removed, &|| {})?;
    let mut set_aside = Vec::new();
    if !report.bad_indexes.is_empty() {
        let to = cache.root().join("damaged");
        fs::create_dir_all(&to)?;
        for b in &report.bad_indexes {
            // The pack first: an index left behind alone is still reported as
            // damaged, while a pack left alone would be deleted as a leftover.
            for from in [b.path.with_extension("pack"), b.path.clone()] {
                let Some(name) = from.file_name() else { continue };
                match fs::rename(&from, to.join(name)) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
                    _ => {}
                }
            }
            set_aside.push(to.join(b.path.file_name().unwrap_or_default()));
        }
        cache.packs().forget();
    }
    // What the workspace needs and the cache lacks (what this run took out, and
    // anything a killed earlier run took out without storing it again), and the
    // tracked paths that should hold it.
    let mut lacking: FxHashSet<ObjectId> = FxHashSet::default();
    let mut to_read = Vec::new();
    for t in Snapshot::workspace(repo).pointers()? {
        let before = lacking.len();
        lacking.extend(std::iter::once(t.pointer.id).filter(|id| !cache.contains(id)));
        if t.pointer.kind == Kind::Dir
            && let Ok(m) = t.manifest(cache)
        {
            lacking.extend(m.files.iter().map(|e| e.id).filter(|id| !cache.contains(id)));
        }
        if lacking.len() > before {
            to_read.push(t);
        }
    }
    let unreadable = restore(repo, &to_read, progress)?;
    let mut restored: Vec<ObjectId> = lacking.into_iter().filter(|id| cache.contains(id)).collect();
    restored.sort();
    let missing = removed.iter().copied().filter(|id| !cache.contains(id)).collect();
    Ok(Repair {
        removed,
        restored,
        missing,
        set_aside,
        unreadable,
    })
}

/// Reads the tracked paths `tracked` as `add` does, storing what the cache lacks.
/// Returns the ones that could not be read, with why.
fn restore(repo: &Repo, tracked: &[crate::workspace::Tracked], progress: &dyn Progress) -> Result<Vec<String>> {
    if tracked.is_empty() {
        return Ok(Vec::new());
    }
    let cache = repo.cache();
    let stat = repo.stat_cache();
    let counters = Counters::default();
    let mut unreadable = Vec::new();
    let packing = cache.begin_packing();
    for t in tracked {
        let is_dir = t.pointer.kind == Kind::Dir;
        let abs = repo.root().join(&t.data_rel);
        if fs::symlink_metadata(&abs).map_or(true, |m| m.is_dir() != is_dir) {
            continue;
        }
        let how = Identify::Store(cache);
        let stored = crate::ops::add::identify_path(repo, &abs, &t.data_rel, is_dir, how, &stat, &counters, progress);
        if let Err(e) = stored {
            unreadable.push(format!("{}: {}", t.data_rel, crate::error_chain(&e)));
        }
    }
    packing.finish()?;
    let _ = stat.save();
    Ok(unreadable)
}
