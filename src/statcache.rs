//! The stat cache: file stat → content id, so unchanged files are never re-read.
//!
//! Stored in `.dvt/tmp/stat-cache` as a small binary file (it is only a cache:
//! deleting it costs a re-hash, nothing else). An entry is trusted only if size,
//! mtime, ctime and inode all still match. A file modified in the same clock tick
//! as it was hashed could keep its stat, so entries for files that changed very
//! recently ("racy" files, as git calls them) are not recorded by hashing.

use rayon::slice::ParallelSliceMut;
use rustc_hash::FxHashMap as HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::RwLock;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::object::ObjectId;

const MAGIC: &[u8; 8] = b"dvtstat1";

/// The parts of a file's metadata that change when its content does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
    ino: u64,
}

impl Stamp {
    /// The stamp of a file's metadata.
    pub fn of(meta: &std::fs::Metadata) -> Self {
        Stamp {
            size: meta.len(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
            ino: meta.ino(),
        }
    }

    /// The file's size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Whether `other` (read later) shows a file whose content cannot have
    /// changed since this stamp: same size, modification time and inode. The
    /// change time is left out: linking or a mode change moves it, not the bytes.
    pub fn same_content(&self, other: &Stamp) -> bool {
        self.size == other.size && self.mtime == other.mtime && self.ino == other.ino
    }

    /// Whether the file last changed long enough before `now` that a later change
    /// is sure to show in its stamp. Filesystems with whole-second times need
    /// a wider margin than those with nanosecond times.
    pub fn settled(&self, now: SystemTime) -> bool {
        let now_ns = now
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as i128)
            .unwrap_or(0);
        let latest = self.mtime.max(self.ctime);
        let margin: i128 = if latest.1 == 0 { 2_000_000_000 } else { 50_000_000 };
        (latest.0 as i128) * 1_000_000_000 + latest.1 as i128 + margin < now_ns
    }
}

#[derive(Debug, Clone, Copy)]
struct Record {
    stamp: Stamp,
    id: ObjectId,
}

/// An in-memory stat cache, shared by threads, saved on [`StatCache::save`].
///
/// What was loaded is read without a lock (most lookups, from many threads);
/// changes go to a locked overlay that is consulted first once it has anything.
#[derive(Debug)]
pub struct StatCache {
    file: PathBuf,
    base: std::sync::OnceLock<Base>,
    loading: std::sync::Mutex<Option<std::thread::JoinHandle<Base>>>,
    inner: RwLock<Inner>,
    changed: std::sync::atomic::AtomicBool,
}

#[derive(Debug, Default)]
struct Inner {
    /// New or replaced records; `None` marks a record removed from `base`.
    overlay: HashMap<String, Option<Record>>,
    dirty: bool,
}

impl StatCache {
    /// Loads the stat cache from `file`; a missing or unreadable one is empty.
    pub fn load(file: &Path) -> Self {
        let base = std::sync::OnceLock::new();
        let _ = base.set(read_file(file));
        StatCache {
            file: file.to_path_buf(),
            base,
            loading: std::sync::Mutex::new(None),
            inner: RwLock::new(Inner::default()),
            changed: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Like [`StatCache::load`], but reads and decodes the file on another thread,
    /// overlapping it with whatever the caller does until the first lookup.
    pub fn load_in_background(file: &Path) -> Self {
        let path = file.to_path_buf();
        let handle = std::thread::Builder::new()
            .name("dvt-stat-cache".into())
            .spawn(move || read_file(&path))
            .ok();
        let base = std::sync::OnceLock::new();
        if handle.is_none() {
            let _ = base.set(read_file(file));
        }
        StatCache {
            file: file.to_path_buf(),
            base,
            loading: std::sync::Mutex::new(handle),
            inner: RwLock::new(Inner::default()),
            changed: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// The loaded records, waiting for a background load to finish.
    fn base(&self) -> &Base {
        self.base.get_or_init(|| {
            let handle = self.loading.lock().unwrap_or_else(|e| e.into_inner()).take();
            handle.and_then(|h| h.join().ok()).unwrap_or_default()
        })
    }

    // A panic while holding the lock cannot leave the map inconsistent.
    fn lock(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    /// The recorded id of the file at `rel` (repo-relative), if its stamp still matches.
    pub fn get(&self, rel: &str, stamp: &Stamp) -> Option<ObjectId> {
        self.record(rel).filter(|r| r.stamp == *stamp).map(|r| r.id)
    }

    fn record(&self, rel: &str) -> Option<Record> {
        if self.changed.load(std::sync::atomic::Ordering::Acquire)
            && let Some(r) = self.read().overlay.get(rel)
        {
            return *r;
        }
        self.base().get(rel)
    }

    /// Makes room for `n` more entries at once (instead of growing step by step,
    /// each step holding the old table and the new one).
    pub fn reserve(&self, n: usize) {
        self.lock().overlay.reserve(n);
    }

    /// Records that the file at `rel` with `stamp` has content `id`.
    pub fn put(&self, rel: &str, stamp: Stamp, id: ObjectId) {
        let record = Record { stamp, id };
        if self.record(rel).is_some_and(|r| r.stamp == stamp && r.id == id) {
            return;
        }
        let mut inner = self.lock();
        inner.overlay.insert(rel.to_string(), Some(record));
        inner.dirty = true;
        self.changed.store(true, std::sync::atomic::Ordering::Release);
    }

    /// Forgets entries below `prefix` (a repo-relative directory) that `keep` rejects.
    pub fn retain_under(&self, prefix: &str, keep: impl Fn(&str) -> bool) {
        let dir = format!("{prefix}/");
        let under = |k: &str| k == prefix || k.starts_with(&dir);
        let mut inner = self.lock();
        let mut removed = false;
        for (k, _) in self.base().iter().filter(|(k, _)| under(k) && !keep(k)) {
            if !matches!(inner.overlay.get(k), Some(None)) {
                inner.overlay.insert(k.to_string(), None);
                removed = true;
            }
        }
        for (k, v) in inner.overlay.iter_mut() {
            if v.is_some() && under(k) && !keep(k) {
                *v = None;
                removed = true;
            }
        }
        if removed {
            inner.dirty = true;
            self.changed.store(true, std::sync::atomic::Ordering::Release);
        }
    }

    /// Moves the entries at and below `from` (repo-relative) to `to`, for data that
    /// was renamed: a renamed directory's files keep their stamps, so they need not
    /// be hashed again. (A renamed file's ctime changes, so its entry will not match.)
    pub fn rename_under(&self, from: &str, to: &str) {
        let dir = format!("{from}/");
        let under = |k: &str| k == from || k.starts_with(&dir);
        let moved: Vec<(String, Record)> = {
            let inner = self.read();
            let mut moved: Vec<(String, Record)> = self
                .base()
                .iter()
                .filter(|(k, _)| under(k) && !inner.overlay.contains_key(*k))
                .map(|(k, r)| (k.to_string(), r))
                .collect();
            moved.extend(
                inner
                    .overlay
                    .iter()
                    .filter_map(|(k, r)| r.filter(|_| under(k)).map(|r| (k.clone(), r))),
            );
            moved
        };
        if moved.is_empty() {
            return;
        }
        let mut inner = self.lock();
        for (k, r) in moved {
            let new = format!("{to}{}", &k[from.len()..]);
            inner.overlay.insert(k, None);
            inner.overlay.insert(new, Some(r));
        }
        inner.dirty = true;
        self.changed.store(true, std::sync::atomic::Ordering::Release);
    }

    /// Writes the cache back if anything changed. Failure is not fatal for callers:
    /// the next run re-hashes.
    pub fn save(&self) -> std::io::Result<()> {
        let mut inner = self.lock();
        if !inner.dirty {
            return Ok(());
        }
        if let Some(dir) = self.file.parent() {
            fs_err::create_dir_all(dir)?;
        }
        // Records sorted by path: `status` then reads them in the order it walks
        // the tree, sequentially through memory instead of at random.
        enum Source<'a> {
            Loaded(u32),
            New(&'a Record),
        }
        let base = self.base();
        let mut all: Vec<(&str, Source)> = base
            .index
            .values()
            .map(|&at| (base.at(at).0, Source::Loaded(at)))
            .filter(|(k, _)| !inner.overlay.contains_key(*k))
            .chain(
                inner
                    .overlay
                    .iter()
                    .filter_map(|(k, r)| r.as_ref().map(|r| (k.as_str(), Source::New(r)))),
            )
            .collect();
        all.par_sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        let merged = all.iter().map(|(k, source)| match source {
            Source::Loaded(at) => (*k, base.at(*at).1),
            Source::New(r) => (*k, **r),
        });
        crate::fsutil::atomic_write(&self.file, &encode(merged))?;
        inner.dirty = false;
        Ok(())
    }
}

fn read_file(file: &Path) -> Base {
    fs_err::read(file).ok().and_then(Base::decode).unwrap_or_default()
}

/// The records as loaded: the file's bytes, and where each path's record is in
/// them. Looking up a path costs a probe of a small table and one read of the
/// record, with no allocation per record at load.
#[derive(Debug, Default)]
struct Base {
    bytes: Vec<u8>,
    /// A hash of each path → the offset of its record in `bytes`. A second path
    /// with the same 64-bit hash is left out: a lookup of it misses, which costs
    /// a re-hash of that file, never a wrong answer.
    index: HashMap<u64, u32>,
}

/// Bytes of a record after its path: six numbers and an id.
const RECORD_TAIL: usize = 6 * 8 + 32;

fn path_hash(path: &[u8]) -> u64 {
    use std::hash::BuildHasher;
    rustc_hash::FxBuildHasher.hash_one(path)
}

impl Base {
    /// Checks every record of a stat-cache file and indexes them; `None` if any is
    /// malformed (the whole file is then ignored).
    fn decode(bytes: Vec<u8>) -> Option<Base> {
        let mut r = Reader { b: &bytes, pos: 0 };
        if r.take(8)? != MAGIC || bytes.len() > u32::MAX as usize {
            return None;
        }
        let n = r.u64()? as usize;
        let mut index = HashMap::with_capacity_and_hasher(n.min(bytes.len() / (4 + RECORD_TAIL)), Default::default());
        for _ in 0..n {
            let at = r.pos as u32;
            let len = u32::from_le_bytes(r.take(4)?.try_into().ok()?) as usize;
            let path = r.take(len)?;
            std::str::from_utf8(path).ok()?;
            r.take(RECORD_TAIL)?;
            index.entry(path_hash(path)).or_insert(at);
        }
        Some(Base { bytes, index })
    }

    /// The path and record at `at`, an offset the index holds (checked at load).
    fn at(&self, at: u32) -> (&str, Record) {
        let b = &self.bytes[at as usize..];
        let len = u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize;
        let path = std::str::from_utf8(&b[4..4 + len]).unwrap_or_default();
        let tail = &b[4 + len..4 + len + RECORD_TAIL];
        let n = |i: usize| u64::from_le_bytes(tail[i * 8..i * 8 + 8].try_into().unwrap_or_default());
        let mut id = [0u8; 32];
        id.copy_from_slice(&tail[48..80]);
        let record = Record {
            stamp: Stamp {
                size: n(0),
                mtime: (n(1) as i64, n(2) as i64),
                ctime: (n(3) as i64, n(4) as i64),
                ino: n(5),
            },
            id: ObjectId::from_bytes(id),
        };
        (path, record)
    }

    fn get(&self, rel: &str) -> Option<Record> {
        let at = *self.index.get(&path_hash(rel.as_bytes()))?;
        let (path, record) = self.at(at);
        (path == rel).then_some(record)
    }

    fn iter(&self) -> impl Iterator<Item = (&str, Record)> + '_ {
        self.index.values().map(|&at| self.at(at))
    }
}

fn encode<'a>(records: impl Iterator<Item = (&'a str, Record)>) -> Vec<u8> {
    // One buffer, the count patched in at the end: a second copy of 100,000 records
    // was the biggest single allocation of a checkout of (d).
    let mut out = Vec::with_capacity(16 + records.size_hint().0 * 120);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&0u64.to_le_bytes());
    let mut n = 0u64;
    for (path, r) in records {
        n += 1;
        let out = &mut out;
        out.extend_from_slice(&(path.len() as u32).to_le_bytes());
        out.extend_from_slice(path.as_bytes());
        let s = &r.stamp;
        for v in [
            s.size,
            s.mtime.0 as u64,
            s.mtime.1 as u64,
            s.ctime.0 as u64,
            s.ctime.1 as u64,
            s.ino,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(r.id.as_bytes());
    }
    out[MAGIC.len()..MAGIC.len() + 8].copy_from_slice(&n.to_le_bytes());
    out
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.b.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos += n;
        Some(s)
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)]
mod tests {
    use super::*;

    #[test]
    fn save_load_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("data.csv");
        std::fs::write(&f, b"a,b\n").unwrap();
        let stamp = Stamp::of(&std::fs::metadata(&f).unwrap());
        let file = dir.path().join("tmp/stat-cache");
        let c = StatCache::load(&file);
        let id = ObjectId::of(b"a,b\n");
        c.put("data.csv", stamp, id);
        c.save().unwrap();
        let c = StatCache::load(&file);
        assert_eq!(c.get("data.csv", &stamp), Some(id));
        std::fs::write(&f, b"a,c\n").unwrap();
        let changed = Stamp::of(&std::fs::metadata(&f).unwrap());
        assert_eq!(c.get("data.csv", &changed), None);
    }

    #[test]
    fn rename_under_moves_a_path_and_what_is_below_it_only() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("x");
        std::fs::write(&f, b"x").unwrap();
        let stamp = Stamp::of(&std::fs::metadata(&f).unwrap());
        let file = dir.path().join("stat-cache");
        let c = StatCache::load(&file);
        let id = ObjectId::of(b"x");
        // Saved ones (in the loaded base) and new ones (in the overlay) both move.
        c.put("raw/a", stamp, id);
        c.put("rawer/b", stamp, id);
        c.save().unwrap();
        let c = StatCache::load(&file);
        c.put("raw/sub/c", stamp, id);
        c.rename_under("raw", "old/raw");
        for (gone, there) in [("raw/a", "old/raw/a"), ("raw/sub/c", "old/raw/sub/c")] {
            assert_eq!(c.get(gone, &stamp), None);
            assert_eq!(c.get(there, &stamp), Some(id));
        }
        assert_eq!(c.get("rawer/b", &stamp), Some(id), "a sibling sharing the prefix stays");
        c.save().unwrap();
        let c = StatCache::load(&file);
        assert_eq!(c.get("old/raw/sub/c", &stamp), Some(id));
        assert_eq!(c.get("raw/a", &stamp), None);
    }

    #[test]
    fn garbage_file_is_an_empty_cache() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("stat-cache");
        std::fs::write(&file, b"dvtstat1\xff\xff\xff\xff\xff\xff\xff\x7fjunk").unwrap();
        let c = StatCache::load(&file);
        assert_eq!(c.base().iter().count(), 0);
        let c = StatCache::load_in_background(&file);
        assert_eq!(c.base().iter().count(), 0);
    }

    #[test]
    fn changes_overlay_the_loaded_records_and_merge_on_save() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("stat-cache");
        let f = dir.path().join("x");
        std::fs::write(&f, b"x").unwrap();
        let stamp = Stamp::of(&std::fs::metadata(&f).unwrap());
        let (a, b, c2) = (ObjectId::of(b"a"), ObjectId::of(b"b"), ObjectId::of(b"c"));
        let c = StatCache::load(&file);
        c.put("d/a", stamp, a);
        c.put("d/b", stamp, b);
        c.put("other", stamp, b);
        c.save().unwrap();
        let c = StatCache::load_in_background(&file);
        assert_eq!(c.get("d/b", &stamp), Some(b));
        c.retain_under("d", |k| k == "d/a");
        c.put("d/c", stamp, c2);
        assert_eq!(c.get("d/b", &stamp), None, "removed in the overlay");
        assert_eq!(c.get("d/a", &stamp), Some(a));
        c.save().unwrap();
        let c = StatCache::load(&file);
        assert_eq!(c.get("d/a", &stamp), Some(a));
        assert_eq!(c.get("d/b", &stamp), None);
        assert_eq!(c.get("d/c", &stamp), Some(c2));
        assert_eq!(c.get("other", &stamp), Some(b), "outside the prefix: kept");
    }

    #[test]
    fn fresh_files_are_not_settled() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("x");
        std::fs::write(&f, b"x").unwrap();
        let stamp = Stamp::of(&std::fs::metadata(&f).unwrap());
        assert!(!stamp.settled(SystemTime::now()));
        assert!(stamp.settled(SystemTime::now() + std::time::Duration::from_secs(3)));
    }
}
