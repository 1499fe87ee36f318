//! Pack files: many small objects in one file.
//!
//! Creating a file costs far more than writing a few KiB into one (on ext4, inode
//! allocation dominates `dvt add` of 100,000 small files), so `add`, `repro` and
//! `fetch` append small objects to a pack instead of giving each its own file.
//!
//! Below the cache root, `packs/<name>.pack` holds [`PACK_MAGIC`] followed by
//! objects in their stored form (exactly the bytes a loose object file would hold),
//! back to back. `packs/<name>.idx` lists them: [`IDX_MAGIC`], the entry count
//! (u64, little-endian), then per object its id (32 bytes), offset and stored length
//! in the pack (u64 each), sorted by id, and finally the BLAKE3 hash of everything
//! before it. `<name>` is that hash in hex. A pack is published by renaming the
//! finished pack into place and only then writing its index, so a pack without an
//! index (a killed writer) is never read and `dvt gc` removes it.

use std::io::{BufWriter, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use fs_err as fs;
use rustc_hash::FxHashMap;

use crate::error::Result;
use crate::fsutil::{atomic_write, temp_in};
use crate::object::ObjectId;

/// The first bytes of a pack file.
pub const PACK_MAGIC: &[u8; 8] = b"dvtpack1";
/// The first bytes of a pack index.
pub const IDX_MAGIC: &[u8; 8] = b"dvtidx1\n";
/// Content smaller than this is packed (when the command packs at all).
pub const PACKED_MAX: u64 = 4 * 1024 * 1024;
/// A pack being written is published and a new one started past this size.
const PACK_TARGET: u64 = 256 * 1024 * 1024;
const ENTRY: usize = 32 + 8 + 8;

/// One object's place in a pack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// The object's id.
    pub id: ObjectId,
    /// Where its stored form starts in the pack file.
    pub offset: u64,
    /// The length of its stored form.
    pub len: u64,
}

/// The bytes of a pack index listing `entries` (sorted here), and the pack's name.
pub fn encode_index(entries: &mut [Entry]) -> (Vec<u8>, String) {
    entries.sort_by_key(|e| e.id);
    let mut out = Vec::with_capacity(16 + entries.len() * ENTRY + 32);
    out.extend_from_slice(IDX_MAGIC);
    out.extend_from_slice(&(entries.len() as u64).to_le_bytes());
    for e in entries.iter() {
        out.extend_from_slice(e.id.as_bytes());
        out.extend_from_slice(&e.offset.to_le_bytes());
        out.extend_from_slice(&e.len.to_le_bytes());
    }
    let sum = blake3::hash(&out);
    out.extend_from_slice(sum.as_bytes());
    (out, sum.to_hex().to_string())
}

/// Parses a pack index, checking its checksum, order and bounds; `name` is the
/// hex name the index is stored under, which must be its checksum.
pub fn decode_index(bytes: &[u8], name: &str) -> std::result::Result<Vec<Entry>, String> {
    if bytes.len() < 16 + 32 || &bytes[..8] != IDX_MAGIC {
        return Err("not a dvt pack index".into());
    }
    let (body, sum) = bytes.split_at(bytes.len() - 32);
    let expected = blake3::hash(body);
    if expected.as_bytes() != sum || expected.to_hex().as_str() != name {
        return Err("checksum mismatch (damaged or renamed index)".into());
    }
    let count = u64::from_le_bytes(body[8..16].try_into().unwrap_or_default());
    if (body.len() - 16) as u64 != count.saturating_mul(ENTRY as u64) {
        return Err("entry count does not match the index's length".into());
    }
    let mut entries = Vec::with_capacity(count as usize);
    for chunk in body[16..].chunks_exact(ENTRY) {
        let id = ObjectId::from_bytes(chunk[..32].try_into().unwrap_or_default());
        let offset = u64::from_le_bytes(chunk[32..40].try_into().unwrap_or_default());
        let len = u64::from_le_bytes(chunk[40..48].try_into().unwrap_or_default());
        if offset < PACK_MAGIC.len() as u64 || offset.checked_add(len).is_none() {
            return Err(format!("entry for {id} points outside the pack"));
        }
        if entries.last().is_some_and(|p: &Entry| p.id >= id) {
            return Err("entries are not sorted".into());
        }
        entries.push(Entry { id, offset, len });
    }
    Ok(entries)
}

/// One published pack.
#[derive(Debug)]
pub struct Pack {
    /// Its name (the index's checksum, hex).
    pub name: String,
    /// The pack file.
    pub path: PathBuf,
    /// Its objects, sorted by id.
    pub entries: Vec<Entry>,
    file: OnceLock<std::result::Result<Arc<std::fs::File>, String>>,
}

impl Pack {
    fn new(dir: &Path, name: String, entries: Vec<Entry>) -> Self {
        Pack {
            path: dir.join(format!("{name}.pack")),
            name,
            entries,
            file: OnceLock::new(),
        }
    }

    /// The index file beside the pack.
    pub fn index_path(&self) -> PathBuf {
        self.path.with_extension("idx")
    }

    /// The pack file, opened once and shared by every reader.
    pub fn file(&self) -> std::result::Result<Arc<std::fs::File>, String> {
        self.file
            .get_or_init(|| {
                fs::File::open(&self.path)
                    .map(|f| Arc::new(f.into_parts().0))
                    .map_err(|e| e.to_string())
            })
            .clone()
    }
}

/// The slice of a file that holds one object's stored form; reads with `pread`,
/// so many readers share one open file.
#[derive(Debug)]
pub struct Slice {
    file: Arc<std::fs::File>,
    start: u64,
    len: u64,
    pos: u64,
}

impl Slice {
    /// `len` bytes of `file` from `start`.
    pub fn new(file: Arc<std::fs::File>, start: u64, len: u64) -> Self {
        Slice {
            file,
            start,
            len,
            pos: 0,
        }
    }

    /// The stored length.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the object's stored form is empty (never for a valid object).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Up to `n` bytes from the start, without moving the read position.
    pub fn head(&self, n: usize) -> std::io::Result<Vec<u8>> {
        let mut out = vec![0u8; n.min(self.len as usize)];
        let mut filled = 0;
        while filled < out.len() {
            match self.file.read_at(&mut out[filled..], self.start + filled as u64)? {
                0 => break,
                k => filled += k,
            }
        }
        out.truncate(filled);
        Ok(out)
    }

    /// The last `n` bytes (fewer only if the object is that short).
    pub fn tail(&self, n: usize) -> std::io::Result<Vec<u8>> {
        let n = n.min(self.len as usize);
        let mut out = vec![0u8; n];
        self.file.read_exact_at(&mut out, self.start + self.len - n as u64)?;
        Ok(out)
    }

    /// The whole stored form.
    pub fn read_all(mut self) -> std::io::Result<Vec<u8>> {
        let mut out = vec![0u8; (self.len - self.pos) as usize];
        self.read_exact(&mut out)?;
        Ok(out)
    }
}

impl Read for Slice {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let want = (buf.len() as u64).min(self.len - self.pos) as usize;
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.start + self.pos)?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "truncated: the file ends before the object does",
            ));
        }
        self.pos += n as u64;
        Ok(n)
    }
}

/// Every published pack of a cache, and where each packed object is.
#[derive(Debug, Default)]
pub struct PackSet {
    /// The packs, in no particular order.
    pub packs: Vec<Arc<Pack>>,
    map: FxHashMap<ObjectId, (u32, u64, u64)>,
    /// Index files that could not be read, with why.
    pub bad: Vec<(PathBuf, String)>,
}

impl PackSet {
    fn load(dir: &Path) -> Result<PackSet> {
        let mut set = PackSet::default();
        let entries = match fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(set),
            Err(e) => return Err(e.into()),
        };
        for entry in entries {
            let path = entry?.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()).and_then(index_name) else {
                continue;
            };
            let name = name.to_string();
            match fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|b| decode_index(&b, &name))
            {
                Ok(list) => set.insert(Pack::new(dir, name, list)),
                Err(reason) => set.bad.push((path, reason)),
            }
        }
        set.bad.sort();
        Ok(set)
    }

    fn insert(&mut self, pack: Pack) {
        if self.packs.iter().any(|p| p.name == pack.name) {
            return;
        }
        let i = self.packs.len() as u32;
        self.map.reserve(pack.entries.len());
        for e in &pack.entries {
            self.map.insert(e.id, (i, e.offset, e.len));
        }
        self.packs.push(Arc::new(pack));
    }

    /// The pack holding `id`, and the object's place in it.
    pub fn find(&self, id: &ObjectId) -> Option<(Arc<Pack>, u64, u64)> {
        let &(i, offset, len) = self.map.get(id)?;
        Some((self.packs[i as usize].clone(), offset, len))
    }

    /// Whether `id` is in some pack.
    pub fn contains(&self, id: &ObjectId) -> bool {
        self.map.contains_key(id)
    }
}

/// The file in a remote's `packs/` that names its packs, one per line,
/// sorted: what a reader that cannot list the directory (a plain web server
/// in front of a copy of the remote) reads instead. Every push and every
/// `gc` of the remote rewrites it; the cache has none.
pub const PACK_LIST: &str = "list";

/// The text of a pack list naming `names`.
pub fn encode_pack_list(mut names: Vec<String>) -> String {
    names.sort();
    names.dedup();
    names.iter().map(|n| format!("{n}\n")).collect()
}

/// The pack names a pack list holds; a line that is not a pack's name (64
/// lowercase hex digits) is skipped.
pub fn decode_pack_list(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|line| index_name(&format!("{}.idx", line.trim())).map(str::to_string))
        .collect()
}

/// `NAME` if `file_name` is `NAME.idx` with a 64-hex-digit name.
pub fn index_name(file_name: &str) -> Option<&str> {
    let name = file_name.strip_suffix(".idx")?;
    (name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())).then_some(name)
}

/// A pack being written: objects are appended, and it becomes visible only when
/// published. Dropped unpublished, its temporary file is removed.
pub struct PackWriter {
    dir: PathBuf,
    tmp: PathBuf,
    file: Option<BufWriter<fs::File>>,
    offset: u64,
    entries: Vec<Entry>,
    pending: FxHashMap<ObjectId, (u64, u64)>,
}

impl PackWriter {
    /// Starts a pack in `dir`.
    pub fn new(dir: &Path) -> Result<Self> {
        fs::create_dir_all(dir)?;
        let tmp = temp_in(dir, "pack");
        // 1 MiB writes, unlike the 256 KiB of `crate::fsutil::WRITE_CHUNK`: measured
        // alternating on (c), `add` took 0.50 s with 1 MiB writes to its packs and
        // 0.59-0.84 s with 256 KiB.
        let mut file = BufWriter::with_capacity(1 << 20, fs::File::create(&tmp)?);
        file.write_all(PACK_MAGIC)?;
        Ok(PackWriter {
            dir: dir.to_path_buf(),
            tmp,
            file: Some(file),
            offset: PACK_MAGIC.len() as u64,
            entries: Vec::new(),
            pending: FxHashMap::default(),
        })
    }

    /// Appends object `id` (its stored form, in parts); 0 if it is already here.
    pub fn append(&mut self, id: &ObjectId, parts: &[&[u8]]) -> Result<u64> {
        if self.pending.contains_key(id) {
            return Ok(0);
        }
        let file = self
            .file
            .as_mut()
            .ok_or_else(|| std::io::Error::other("pack already published"))?;
        let mut len = 0u64;
        for p in parts {
            file.write_all(p)?;
            len += p.len() as u64;
        }
        self.entries.push(Entry {
            id: *id,
            offset: self.offset,
            len,
        });
        self.pending.insert(*id, (self.offset, len));
        self.offset += len;
        Ok(len)
    }

    /// Whether the pack has reached the size at which a new one should start.
    pub fn is_full(&self) -> bool {
        self.offset >= PACK_TARGET
    }

    /// An appended object, read back from the unpublished file.
    pub fn open(&mut self, id: &ObjectId) -> Result<Option<Slice>> {
        let Some(&(offset, len)) = self.pending.get(id) else {
            return Ok(None);
        };
        if let Some(f) = self.file.as_mut() {
            f.flush()?;
        }
        let file = fs::File::open(&self.tmp)?.into_parts().0;
        Ok(Some(Slice::new(Arc::new(file), offset, len)))
    }

    /// Renames the pack into place and writes its index; `None` when nothing was
    /// appended.
    pub fn publish(mut self) -> Result<Option<Pack>> {
        let Some(file) = self.file.take() else { return Ok(None) };
        // Flushing the last bytes can fail (a full disk): the file goes too.
        if let Err(e) = file.into_inner() {
            let _ = fs::remove_file(&self.tmp);
            return Err(e.into_error().into());
        }
        if self.entries.is_empty() {
            let _ = fs::remove_file(&self.tmp);
            return Ok(None);
        }
        let mut entries = std::mem::take(&mut self.entries);
        let (index, name) = encode_index(&mut entries);
        let pack = Pack::new(&self.dir, name, entries);
        let published = fs::rename(&self.tmp, &pack.path)
            .map_err(crate::Error::from)
            .and_then(|()| atomic_write(&pack.index_path(), &index).map_err(crate::Error::from));
        if let Err(e) = published {
            let _ = fs::remove_file(&self.tmp);
            let _ = fs::remove_file(&pack.path);
            return Err(e);
        }
        Ok(Some(pack))
    }
}

impl Drop for PackWriter {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// A cache's packs: the published set (read on first need) and, while a command
/// packs, the packs being written: up to one per worker thread, so that two
/// threads never wait on each other's writes (timed on dataset (c): one shared
/// pack kept `add` at 80% of two cores).
#[derive(Debug)]
pub struct Packs {
    dir: PathBuf,
    set: RwLock<Option<PackSet>>,
    writers: Vec<Mutex<Option<PackWriter>>>,
    /// Every id appended to a pack being written, with the writer that has it;
    /// an id is claimed once, so two threads storing the same content write it once.
    claimed: Mutex<FxHashMap<ObjectId, usize>>,
    active: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for PackWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PackWriter")
            .field("tmp", &self.tmp)
            .field("objects", &self.entries.len())
            .finish()
    }
}

impl Packs {
    /// The packs in `dir`.
    pub fn new(dir: PathBuf) -> Self {
        Packs {
            dir,
            set: RwLock::new(None),
            // One per thread of the pool that stores objects.
            writers: (0..rayon::current_num_threads().max(1))
                .map(|_| Mutex::new(None))
                .collect(),
            claimed: Mutex::new(FxHashMap::default()),
            active: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// The `packs/` directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Runs `f` on the published set, reading it from disk first if needed (or, with
    /// `load` false, only if it was already read).
    pub fn with_set<T>(&self, load: bool, f: impl FnOnce(&PackSet) -> T) -> Result<Option<T>> {
        {
            let guard = self.set.read().unwrap_or_else(|e| e.into_inner());
            if let Some(set) = guard.as_ref() {
                return Ok(Some(f(set)));
            }
        }
        if !load {
            return Ok(None);
        }
        let mut guard = self.set.write().unwrap_or_else(|e| e.into_inner());
        if guard.is_none() {
            *guard = Some(PackSet::load(&self.dir)?);
        }
        Ok(guard.as_ref().map(f))
    }

    /// Forgets the published set, so that the next use reads it again.
    pub fn forget(&self) {
        *self.set.write().unwrap_or_else(|e| e.into_inner()) = None;
    }

    fn add_published(&self, pack: Pack) {
        let mut guard = self.set.write().unwrap_or_else(|e| e.into_inner());
        if let Some(set) = guard.as_mut() {
            set.insert(pack);
        }
    }

    /// Whether a command is packing new objects.
    pub fn active(&self) -> bool {
        self.active.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Starts packing new small objects.
    pub fn begin(&self) {
        self.active.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Appends object `id` to a pack being written (starting one, or a new one
    /// when it is full): the first that no other thread is writing to, so a
    /// second pack opens only when two threads would wait on each other. Returns
    /// the bytes written (0 if already there).
    pub fn append(&self, id: &ObjectId, parts: &[&[u8]]) -> Result<u64> {
        let mut guard = {
            let mut claimed = lock(&self.claimed);
            if claimed.contains_key(id) {
                return Ok(0);
            }
            let free = self
                .writers
                .iter()
                .enumerate()
                .find_map(|(lane, w)| match w.try_lock() {
                    Ok(g) => Some((lane, g)),
                    Err(std::sync::TryLockError::Poisoned(e)) => Some((lane, e.into_inner())),
                    Err(std::sync::TryLockError::WouldBlock) => None,
                });
            let (lane, guard) = match free {
                Some(free) => free,
                None => {
                    let lane = rayon::current_thread_index().unwrap_or(0) % self.writers.len();
                    (lane, lock(&self.writers[lane]))
                }
            };
            // The writer is locked before the claim is seen, so a reader that finds
            // the claim waits for the append (see `open_pending`).
            claimed.insert(*id, lane);
            guard
        };
        let appended = (|| {
            if guard.as_ref().is_some_and(PackWriter::is_full)
                && let Some(pack) = guard.take().map(PackWriter::publish).transpose()?.flatten()
            {
                self.add_published(pack);
            }
            if guard.is_none() {
                *guard = Some(PackWriter::new(&self.dir)?);
            }
            match guard.as_mut() {
                Some(w) => w.append(id, parts),
                None => Ok(0),
            }
        })();
        if appended.is_err() {
            // The writer first: `append` takes the claims, then a writer.
            drop(guard);
            lock(&self.claimed).remove(id);
        }
        appended
    }

    /// Whether `id` was appended to a pack being written.
    pub fn pending(&self, id: &ObjectId) -> bool {
        lock(&self.claimed).contains_key(id)
    }

    /// Object `id` from the pack being written that has it.
    pub fn open_pending(&self, id: &ObjectId) -> Result<Option<Slice>> {
        let Some(lane) = lock(&self.claimed).get(id).copied() else {
            return Ok(None);
        };
        match lock(&self.writers[lane]).as_mut() {
            Some(w) => w.open(id),
            None => Ok(None),
        }
    }

    /// Publishes the packs being written and stops packing.
    pub fn finish(&self) -> Result<()> {
        self.active.store(false, std::sync::atomic::Ordering::Relaxed);
        // Every writer is published or removed, even after one fails.
        let mut failed = None;
        for writer in &self.writers {
            let writer = lock(writer).take();
            match writer.map(PackWriter::publish).transpose() {
                Ok(Some(Some(pack))) => self.add_published(pack),
                Ok(_) => {}
                Err(e) => {
                    failed.get_or_insert(e);
                }
            }
        }
        lock(&self.claimed).clear();
        failed.map_or(Ok(()), Err)
    }

    /// Stops packing and drops what was written since the last publish.
    pub fn abandon(&self) {
        self.active.store(false, std::sync::atomic::Ordering::Relaxed);
        for writer in &self.writers {
            drop(lock(writer).take());
        }
        lock(&self.claimed).clear();
    }

    /// Files in `packs/` that are neither an index nor a pack with one: leftovers
    /// of killed writers.
    pub fn strays(&self) -> Result<Vec<PathBuf>> {
        // A damaged index and its pack are reported as such, not as strays.
        let known: Vec<(PathBuf, PathBuf)> = self
            .with_set(true, |s| {
                let good = s.packs.iter().map(|p| (p.path.clone(), p.index_path()));
                let bad = s.bad.iter().map(|(idx, _)| (idx.with_extension("pack"), idx.clone()));
                good.chain(bad).collect()
            })?
            .unwrap_or_default();
        let mut out = Vec::new();
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(e.into()),
        };
        for entry in entries {
            let path = entry?.path();
            let listed = path.file_name().is_some_and(|n| n == PACK_LIST);
            if !listed && !known.iter().any(|(p, i)| *p == path || *i == path) {
                out.push(path);
            }
        }
        out.sort();
        Ok(out)
    }
}

/// Locks `m`, taking the data of a poisoned lock as it is (a panicking writer
/// leaves at worst an unpublished pack, which is never read).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_list_round_trip_skips_what_is_no_pack_name() {
        let (a, b) = ("a".repeat(64), "0".repeat(64));
        let text = encode_pack_list(vec![a.clone(), b.clone(), a.clone()]);
        assert_eq!(text, format!("{b}\n{a}\n"));
        assert_eq!(decode_pack_list(&text), vec![b.clone(), a.clone()]);
        let messy = format!("{a}\r\n../../etc/passwd\n{}\n{}\n\n", "A".repeat(64), &b[1..]);
        assert_eq!(decode_pack_list(&messy), vec![a]);
        assert!(decode_pack_list("").is_empty());
    }

    #[test]
    fn index_round_trip_and_damage() {
        let mut entries: Vec<Entry> = (0..5u8)
            .map(|i| Entry {
                id: ObjectId::of(&[i]),
                offset: 8 + u64::from(i) * 10,
                len: 10,
            })
            .collect();
        let (bytes, name) = encode_index(&mut entries);
        assert_eq!(decode_index(&bytes, &name), Ok(entries));
        let mut bad = bytes.clone();
        bad[20] ^= 1;
        assert!(decode_index(&bad, &name).is_err());
        assert!(decode_index(&bytes, &"0".repeat(64)).is_err());
        assert!(decode_index(&bytes[..bytes.len() - 1], &name).is_err());
    }

    #[test]
    fn threads_appending_at_once_store_each_object_once_and_readably() {
        use rayon::prelude::*;
        let dir = tempfile::tempdir().unwrap();
        let packs = Packs::new(dir.path().to_path_buf());
        packs.begin();
        // Every object three times over, appended from all threads at once.
        let objects: Vec<Vec<u8>> = (0..600u32)
            .map(|i| format!("object {}", i % 200).into_bytes())
            .collect();
        let written: u64 = objects
            .par_iter()
            .map(|o| packs.append(&ObjectId::of(o), &[o]).unwrap())
            .sum();
        let unique: u64 = objects[..200].iter().map(|o| o.len() as u64).sum();
        assert_eq!(written, unique, "each object written once");
        for o in &objects[..200] {
            let id = ObjectId::of(o);
            assert!(packs.pending(&id));
            assert_eq!(packs.open_pending(&id).unwrap().unwrap().read_all().unwrap(), *o);
        }
        packs.finish().unwrap();
        let cores = rayon::current_num_threads();
        let found = packs
            .with_set(true, |set| {
                assert!((1..=cores).contains(&set.packs.len()), "{} packs", set.packs.len());
                objects[..200].iter().all(|o| set.contains(&ObjectId::of(o)))
            })
            .unwrap();
        assert_eq!(found, Some(true));
    }
}
