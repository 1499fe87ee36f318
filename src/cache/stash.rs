//! What a pull lays out while it fetches, for the checkout that follows: decoded
//! copies of big objects, and whole directories written in place.

use super::*;
use rustc_hash::FxHashMap;

/// What downloads keep for the checkout that follows (see [`Cache::keep_decoded`]).
#[derive(Debug, Default)]
pub(super) struct Stash {
    pub(super) dir: Option<PathBuf>,
    /// Decoded copies of big objects, by id.
    files: FxHashMap<ObjectId, PathBuf>,
    /// Directories being laid out (see [`Cache::plan_tree`]).
    trees: Vec<Tree>,
    /// Every file the trees wait for: (id, index in `trees`, index in its
    /// `paths`), sorted by id. Indexes, not paths: 100,000 files cost 4 MiB.
    planned: Vec<(ObjectId, u32, u32)>,
}

/// A tracked directory written, file by file, as its objects arrive.
#[derive(Debug)]
struct Tree {
    data_rel: String,
    manifest: ObjectId,
    root: PathBuf,
    /// The manifest's file paths, in its order.
    paths: Vec<String>,
    /// Which of them hold their content, verified.
    written: Vec<bool>,
    taken: bool,
}

/// A directory laid out by a pull (see [`Cache::take_tree`]).
#[derive(Debug)]
pub struct LaidOut {
    /// Where it is, on the workspace's filesystem: rename it into place.
    pub root: PathBuf,
    /// For each file of the manifest, in its order: whether it holds its content,
    /// verified.
    pub written: Vec<bool>,
}

/// While alive, big objects downloaded into the cache also leave their decoded,
/// verified content in a directory, for [`Cache::take_decoded`], and the
/// directories planned with [`Cache::plan_tree`] are written as their objects
/// arrive. Dropping it deletes whatever was not taken.
#[derive(Debug)]
pub struct KeepDecoded {
    cache: Cache,
    dir: PathBuf,
}

impl Drop for KeepDecoded {
    fn drop(&mut self) {
        if let Ok(mut s) = self.cache.stash.lock() {
            *s = Stash::default();
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

impl Cache {
    /// From now until the guard is dropped, each object over [`PACKED_MAX`] that is
    /// downloaded into this cache (from a remote or a directory) also leaves its
    /// content, decoded in the same pass that verifies it, as a file in `dir`. A
    /// checkout that follows takes that file ([`Cache::take_decoded`]) instead of
    /// decompressing the object a second time. `dir` must be on the workspace's
    /// filesystem for that to pay; anything left in it is deleted with the guard.
    pub fn keep_decoded(&self, dir: PathBuf) -> Result<KeepDecoded> {
        fs::create_dir_all(&dir)?;
        crate::fsutil::remove_if_interrupted(&dir);
        if let Ok(mut s) = self.stash.lock() {
            s.dir = Some(dir.clone());
        }
        Ok(KeepDecoded {
            cache: self.clone(),
            dir,
        })
    }

    /// A file holding object `id`'s content, verified, if a download kept one (see
    /// [`Cache::keep_decoded`]). It is the caller's from now on: rename it or delete it.
    pub fn take_decoded(&self, id: &ObjectId) -> Option<PathBuf> {
        self.stash.lock().ok()?.files.remove(id)
    }

    /// A verifier for object `id` arriving in this cache, writing the decoded content
    /// to a kept file while a [`KeepDecoded`] is alive (`None` then means no file).
    pub(super) fn arrival_verifier(&self, id: &ObjectId, stored_len: u64) -> (StoredVerifier, Option<PathBuf>) {
        let dir = match self.stash.lock() {
            Ok(s) if stored_len >= PACKED_MAX && !s.files.contains_key(id) => s.dir.clone(),
            _ => None,
        };
        let kept = dir.map(|d| temp_in(&d, &id.to_string()));
        match kept
            .as_ref()
            .and_then(|p| fs::File::create(p).ok())
            .map(|f| f.into_parts().0)
        {
            Some(f) => (StoredVerifier::new().with_output(f), kept),
            None => (StoredVerifier::new(), None),
        }
    }

    /// Records a kept file once its object verified and entered the cache; deletes it
    /// when it is incomplete.
    pub(super) fn arrived(&self, id: &ObjectId, kept: Option<PathBuf>, complete: bool) {
        let Some(path) = kept else { return };
        if complete
            && let Ok(mut s) = self.stash.lock()
            && s.dir.is_some()
        {
            if let Some(old) = s.files.insert(*id, path) {
                let _ = fs::remove_file(old);
            }
            return;
        }
        let _ = fs::remove_file(path);
    }

    /// While a [`KeepDecoded`] is alive: lays out the tracked directory `data_rel`
    /// (whose data path, `data_abs`, does not exist; `manifest` its id) as the
    /// objects of `files` (the manifest's paths and ids, in its order) arrive, so
    /// that its checkout renames one directory instead of writing every file.
    /// Returns whether it will: not when nothing is kept, or when the directory
    /// would be on another filesystem than the kept files.
    pub fn plan_tree<'a>(
        &self,
        data_rel: &str,
        data_abs: &Path,
        manifest: &ObjectId,
        files: impl Iterator<Item = (&'a str, ObjectId)>,
    ) -> bool {
        let Ok(mut s) = self.stash.lock() else { return false };
        let Some(dir) = s.dir.clone() else { return false };
        if !same_filesystem(&dir, data_abs) {
            return false;
        }
        let n = s.trees.len() as u32;
        let root = dir.join(format!("tree-{n}"));
        let mut paths = Vec::new();
        for (i, (path, id)) in files.enumerate() {
            s.planned.push((id, n, i as u32));
            paths.push(path.to_string());
        }
        s.planned.sort_unstable();
        // Every directory now, so that each file costs one `open` later.
        let mut dirs: Vec<&str> = paths.iter().filter_map(|p| p.rfind('/').map(|i| &p[..i])).collect();
        dirs.sort_unstable();
        dirs.dedup();
        let made = fs::create_dir(&root).is_ok() && dirs.iter().all(|d| fs::create_dir_all(root.join(d)).is_ok());
        s.trees.push(Tree {
            data_rel: data_rel.to_string(),
            manifest: *manifest,
            root,
            written: vec![false; paths.len()],
            paths,
            taken: !made,
        });
        made
    }

    /// Writes `content` (object `id`'s, verified) wherever a planned tree needs it.
    /// A file that cannot be written is left out: the checkout writes it then.
    pub(super) fn lay_out(&self, id: &ObjectId, content: &[u8]) {
        let places: Vec<(usize, usize, PathBuf)> = match self.stash.lock() {
            Ok(s) => {
                let from = s.planned.partition_point(|p| p.0 < *id);
                s.planned[from..]
                    .iter()
                    .take_while(|p| p.0 == *id)
                    .map(|&(_, n, i)| (n as usize, i as usize))
                    .filter(|&(n, _)| !s.trees[n].taken)
                    .map(|(n, i)| (n, i, s.trees[n].root.join(&s.trees[n].paths[i])))
                    .collect()
            }
            Err(_) => return,
        };
        for (n, i, abs) in places {
            let written = fs::File::create(&abs).and_then(|mut f| crate::fsutil::write_chunked(&mut f, content));
            match written {
                Ok(()) => {
                    if let Ok(mut s) = self.stash.lock() {
                        s.trees[n].written[i] = true;
                    }
                }
                Err(_) => {
                    let _ = fs::remove_file(&abs);
                }
            }
        }
    }

    /// The directory laid out for `data_rel` (manifest `manifest`) during this
    /// pull, if one was planned; it is the caller's from now on.
    pub fn take_tree(&self, data_rel: &str, manifest: &ObjectId) -> Option<LaidOut> {
        let mut s = self.stash.lock().ok()?;
        let tree = s
            .trees
            .iter_mut()
            .find(|t| t.data_rel == data_rel && t.manifest == *manifest && !t.taken)?;
        tree.taken = true;
        Some(LaidOut {
            root: tree.root.clone(),
            written: std::mem::take(&mut tree.written),
        })
    }
}

/// Whether `a` and the nearest existing directory at or above `b` are on one
/// filesystem, so that a rename can move one into the other.
fn same_filesystem(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let dev = |p: &Path| fs::symlink_metadata(p).map(|m| m.dev());
    let Ok(da) = dev(a) else { return false };
    b.ancestors().find_map(|p| dev(p).ok()).is_some_and(|db| db == da)
}
