//! `dvt fsck`: verify every object in the cache.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use rayon::prelude::*;
use serde::Serialize;

use crate::error::Result;
use crate::object::ObjectId;
use crate::progress::Progress;
use crate::repo::Repo;

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
}

/// Decodes every object in the cache and checks its hash, on all cores.
pub fn fsck(repo: &Repo, progress: &dyn Progress) -> Result<FsckReport> {
    let (ids, strays) = repo.cache().list()?;
    progress.start("verifying objects", ids.len() as u64, false);
    let bytes = AtomicU64::new(0);
    let mut corrupt: Vec<Damaged> = ids
        .par_iter()
        .filter_map(|id| {
            let r = repo.cache().verify(id);
            progress.inc(1);
            match r {
                Ok(n) => {
                    bytes.fetch_add(n, Ordering::Relaxed);
                    None
                }
                Err(e) => Some(Damaged {
                    id: *id,
                    reason: crate::error_chain(&e),
                }),
            }
        })
        .collect();
    progress.finish();
    corrupt.sort_by_key(|d| d.id);
    Ok(FsckReport {
        checked: ids.len() as u64,
        bytes: bytes.into_inner(),
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
    })
}
