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
    /// Files under `objects/` that are not objects.
    pub strays: Vec<PathBuf>,
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
    })
}
