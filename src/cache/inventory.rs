//! What the cache holds: which of many ids it lacks, and listings by prefix.

use super::*;

impl Cache {
    /// The ids among `ids` that the cache lacks. Many ids are answered by listing
    /// the object directories (256 `readdir`s) rather than one `stat` each.
    pub fn missing(&self, ids: &[ObjectId]) -> Result<Vec<ObjectId>> {
        if ids.len() < 4096 {
            return Ok(ids.par_iter().filter(|id| !self.contains(id)).copied().collect());
        }
        let (present, _) = self.list()?;
        let present: rustc_hash::FxHashSet<ObjectId> = present.into_iter().collect();
        Ok(ids.iter().filter(|id| !present.contains(id)).copied().collect())
    }

    /// A fingerprint of the object directories' metadata: adding or deleting any
    /// object changes it. Costs 256 `stat` calls.
    fn objects_stamp(&self) -> u64 {
        use std::os::unix::fs::MetadataExt;
        let mut h = blake3::Hasher::new();
        let objects = self.root.join("objects");
        let dirs = (0..256u32).map(|i| objects.join(format!("{i:02x}")));
        // Pack indexes count too: one rewritten in place must not go unnoticed.
        let indexes = fs::read_dir(self.packs.dir())
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect::<Vec<_>>())
            .unwrap_or_default();
        for dir in dirs.chain([self.packs.dir().to_path_buf()]).chain(indexes) {
            let m = fs::symlink_metadata(dir).ok();
            let v = m.map_or([0i64; 5], |m| {
                [m.mtime(), m.mtime_nsec(), m.ctime(), m.ctime_nsec(), m.ino() as i64]
            });
            for x in v {
                h.update(&x.to_le_bytes());
            }
        }
        let b = h.finalize();
        u64::from_le_bytes(b.as_bytes()[..8].try_into().unwrap_or_default())
    }

    fn complete_file(&self) -> PathBuf {
        self.root.join("tmp").join("complete-manifests")
    }

    /// The directory manifests known to have every object present, valid while the
    /// object directories are unchanged since that was checked.
    fn load_complete(&self, stamp: u64) -> Vec<ObjectId> {
        let Ok(bytes) = fs::read(self.complete_file()) else {
            return Vec::new();
        };
        if bytes.len() < 8 || bytes.len() % 32 != 8 || bytes[..8] != stamp.to_le_bytes() {
            return Vec::new();
        }
        bytes[8..]
            .chunks_exact(32)
            .filter_map(|c| c.try_into().ok().map(ObjectId::from_bytes))
            .collect()
    }

    /// The ids among `ids` (the objects of directory manifest `manifest`) that the
    /// cache lacks. When a previous call found them all and no object has been
    /// added or deleted since, this costs 256 `stat` calls instead of a listing.
    pub fn missing_for_manifest(&self, manifest: &ObjectId, ids: &[ObjectId]) -> Result<Vec<ObjectId>> {
        let stamp = self.objects_stamp();
        let mut known = self.load_complete(stamp);
        if known.contains(manifest) {
            return Ok(Vec::new());
        }
        let missing = self.missing(ids)?;
        if missing.is_empty() {
            known.push(*manifest);
            self.save_complete(stamp, &known);
        }
        Ok(missing)
    }

    /// Whether every object of directory manifest `manifest` is known to be
    /// present (checked since the object directories last changed), so that
    /// asking needs no read of the manifest.
    pub fn known_complete(&self, manifest: &ObjectId) -> bool {
        self.load_complete(self.objects_stamp()).contains(manifest)
    }

    /// Records that every object of directory manifest `manifest` is present, as
    /// `add` knows right after storing them.
    pub fn mark_complete(&self, manifest: &ObjectId) {
        let stamp = self.objects_stamp();
        let mut known = self.load_complete(stamp);
        if !known.contains(manifest) {
            known.push(*manifest);
            self.save_complete(stamp, &known);
        }
    }

    fn save_complete(&self, stamp: u64, known: &[ObjectId]) {
        let mut out = stamp.to_le_bytes().to_vec();
        for id in known {
            out.extend_from_slice(id.as_bytes());
        }
        // Only a cache of work: failing to record it costs a listing next time.
        let _ = fs::create_dir_all(self.root.join("tmp"));
        let _ = crate::fsutil::atomic_write(&self.complete_file(), &out);
    }

    /// The ids of the objects whose first byte is `first` (one directory listing).
    pub fn list_prefix(&self, first: u8) -> Result<Vec<ObjectId>> {
        let hex = format!("{first:02x}");
        let dir = self.root.join("objects").join(&hex);
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let mut ids = Vec::new();
        for entry in entries {
            let name = entry?.file_name();
            if let Some(id) = name.to_str().and_then(|n| format!("{hex}{n}").parse().ok()) {
                ids.push(id);
            }
        }
        Ok(ids)
    }

    /// The packed objects whose first byte is `first`, with their stored sizes.
    pub fn list_packed(&self, first: u8) -> Result<Vec<(ObjectId, u64)>> {
        Ok(self
            .packs
            .with_set(true, |s| {
                s.packs
                    .iter()
                    .flat_map(|p| p.entries.iter())
                    .filter(|e| e.id.as_bytes()[0] == first)
                    .map(|e| (e.id, e.len))
                    .collect()
            })?
            .unwrap_or_default())
    }

    /// Every object id present in the cache (loose or packed), and paths under
    /// `objects/` and `packs/` that are not objects, packs or their indexes.
    pub fn list(&self) -> Result<(Vec<ObjectId>, Vec<PathBuf>)> {
        let (mut ids, mut strays) = self.list_loose()?;
        let packed = self
            .packs
            .with_set(true, |s| {
                s.packs
                    .iter()
                    .flat_map(|p| p.entries.iter().map(|e| e.id))
                    .collect::<Vec<_>>()
            })?
            .unwrap_or_default();
        if !packed.is_empty() {
            ids.extend(packed);
            ids.sort();
            ids.dedup();
        }
        strays.extend(self.packs.strays()?);
        strays.sort();
        Ok((ids, strays))
    }

    fn list_loose(&self) -> Result<(Vec<ObjectId>, Vec<PathBuf>)> {
        let objects = self.root.join("objects");
        if !objects.is_dir() {
            return Ok((Vec::new(), Vec::new()));
        }
        let mut dirs = Vec::new();
        for entry in fs::read_dir(&objects)? {
            dirs.push(entry?.path());
        }
        let found: Vec<Result<(Vec<ObjectId>, Vec<PathBuf>)>> = dirs
            .par_iter()
            .map(|dir| {
                let mut ids = Vec::new();
                let mut strays = Vec::new();
                let prefix = dir.file_name().and_then(|s| s.to_str()).unwrap_or("");
                if !dir.is_dir() || prefix.len() != 2 {
                    strays.push(dir.clone());
                    return Ok((ids, strays));
                }
                for entry in fs::read_dir(dir)? {
                    let entry = entry?;
                    let name = entry.file_name();
                    match name.to_str().and_then(|n| format!("{prefix}{n}").parse().ok()) {
                        Some(id) => ids.push(id),
                        None => strays.push(entry.path()),
                    }
                }
                Ok((ids, strays))
            })
            .collect();
        let mut ids = Vec::new();
        let mut strays = Vec::new();
        for r in found {
            let (i, s) = r?;
            ids.extend(i);
            strays.extend(s);
        }
        ids.sort();
        strays.sort();
        Ok((ids, strays))
    }
}
