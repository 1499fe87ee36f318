//! The content-addressed object store: compressed, verified, written atomically.
//!
//! An object lives at `objects/<2 hex>/<62 hex>` below the cache root. Its bytes are
//! either zstd frames (when compression pays; a run of them for big content, see
//! [`crate::frames`]) or the header [`RAW_HEADER`]
//! followed by the content unchanged. The id is the BLAKE3 hash of the content, so
//! every read can check what it got. While a command packs (see [`Cache::begin_packing`]),
//! small objects go into pack files instead (see [`crate::pack`]); readers find an
//! object in either place.

use std::cell::RefCell;
use std::io::{BufReader, BufWriter, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use fs_err as fs;
use rayon::prelude::*;

use crate::error::{CacheError, Result};
use crate::frames::StoredDecoder;
use crate::fsutil::{read_full, temp_in};
use crate::object::ObjectId;
use crate::pack::{PACKED_MAX, Packs, Slice};
use crate::statcache::Stamp;

/// The first bytes of an object stored without compression.
pub const RAW_HEADER: &[u8; 8] = b"dvtraw1\n";
/// The first bytes of a zstd frame.
pub const ZSTD_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];

/// Content up to this size is read, hashed and compressed in memory in one go.
pub const SMALL_OBJECT: u64 = 8 * 1024 * 1024;
/// Larger content streams through buffers of this size.
const CHUNK: usize = crate::frames::FRAME_CONTENT;
/// Content larger than this is first tried on a prefix of this size.
const SAMPLE: usize = 16 * 1024;
/// Compression is kept only if it saves at least this share of the bytes.
const MIN_SAVING: f64 = 0.10;

/// How an object's bytes are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// zstd frames.
    Zstd,
    /// [`RAW_HEADER`] then the content as is.
    Raw,
}

/// What storing one piece of content did.
#[derive(Debug, Clone, Copy)]
pub struct Stored {
    /// The content's id.
    pub id: ObjectId,
    /// The content's size.
    pub size: u64,
    /// Bytes written to the cache; 0 when the object was already there.
    pub written: u64,
}

/// A content-addressed object store in a directory.
#[derive(Debug, Clone)]
pub struct Cache {
    root: PathBuf,
    level: i32,
    packs: Arc<Packs>,
    stash: Arc<std::sync::Mutex<Stash>>,
}

/// Decoded copies of big objects, kept by a download for the checkout that follows
/// (see [`Cache::keep_decoded`]).
#[derive(Debug, Default)]
struct Stash {
    dir: Option<PathBuf>,
    files: rustc_hash::FxHashMap<ObjectId, PathBuf>,
}

/// While alive, big objects downloaded into the cache also leave their decoded,
/// verified content in a directory, for [`Cache::take_decoded`]. Dropping it
/// deletes whatever was not taken.
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

thread_local! {
    static COMPRESSOR: RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> = const { RefCell::new(None) };
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { RefCell::new(None) };
}

impl Cache {
    /// A cache rooted at `root`, compressing at zstd `level`.
    pub fn new(root: impl Into<PathBuf>, level: i32) -> Self {
        let root = root.into();
        Cache {
            packs: Arc::new(Packs::new(root.join("packs"))),
            stash: Arc::default(),
            root,
            level,
        }
    }

    /// From now until the guard is dropped, each object over [`PACKED_MAX`] that is
    /// downloaded into this cache (from a remote or a directory) also leaves its
    /// content, decoded in the same pass that verifies it, as a file in `dir`. A
    /// checkout that follows takes that file ([`Cache::take_decoded`]) instead of
    /// decompressing the object a second time. `dir` must be on the workspace's
    /// filesystem for that to pay; anything left in it is deleted with the guard.
    pub fn keep_decoded(&self, dir: PathBuf) -> Result<KeepDecoded> {
        fs::create_dir_all(&dir)?;
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
    fn arrival_verifier(&self, id: &ObjectId, stored_len: u64) -> (StoredVerifier, Option<PathBuf>) {
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
    fn arrived(&self, id: &ObjectId, kept: Option<PathBuf>, complete: bool) {
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

    /// The cache's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where object `id` is stored.
    pub fn object_path(&self, id: &ObjectId) -> PathBuf {
        self.root.join(id.relative_path())
    }

    /// Whether object `id` is present (not whether it is intact: see [`Cache::verify`]).
    pub fn contains(&self, id: &ObjectId) -> bool {
        // Packs first once their indexes are read; a loose file costs a `stat`, and
        // indexes are read only when a loose file is not there.
        if self.packs.with_set(false, |s| s.contains(id)).ok().flatten() == Some(true)
            || self.object_path(id).is_file()
            || (self.packs.active() && self.packs.pending(id))
        {
            return true;
        }
        self.packs.with_set(true, |s| s.contains(id)).ok().flatten() == Some(true)
    }

    /// Whether object `id` is in one of the published packs.
    pub fn is_packed(&self, id: &ObjectId) -> bool {
        self.packs.with_set(true, |s| s.contains(id)).ok().flatten() == Some(true)
    }

    /// The cache's packs.
    pub fn packs(&self) -> &Packs {
        &self.packs
    }

    /// From now until [`Packing::finish`], small new objects (but never directory
    /// manifests) are appended to a pack file instead of each getting a file.
    /// Objects appended are readable at once, but survive the process only once
    /// `finish` has published the pack: call it before writing anything that names them.
    pub fn begin_packing(&self) -> Packing {
        self.packs.begin();
        Packing {
            cache: self.clone(),
            done: false,
        }
    }

    /// Whether new content of `size` bytes starting with `prefix` goes into a pack.
    fn packable(&self, size: u64, prefix: &[u8]) -> bool {
        self.packs.active() && size < PACKED_MAX && !crate::manifest::looks_like(prefix)
    }

    /// Stores object `id` from its stored form in parts: in the pack being written
    /// when `pack`, else as its own file.
    fn store(&self, id: &ObjectId, parts: &[&[u8]], pack: bool) -> Result<u64> {
        if pack {
            self.packs.append(id, parts)
        } else {
            self.write_new(id, parts)
        }
    }

    /// Where object `id`'s stored form is: a file, and the byte range in it (the
    /// whole file for a loose object, a slice of a pack file for a packed one).
    pub fn locate(&self, id: &ObjectId) -> Result<Option<(PathBuf, std::ops::Range<u64>)>> {
        if let Some((pack, offset, len)) = self.packs.with_set(true, |s| s.find(id))?.flatten() {
            return Ok(Some((pack.path.clone(), offset..offset + len)));
        }
        let path = self.object_path(id);
        Ok(fs::metadata(&path).ok().map(|m| (path, 0..m.len())))
    }

    /// The stored size of object `id`, if present.
    pub fn stored_len(&self, id: &ObjectId) -> Option<u64> {
        self.open_object(id, None).ok().map(|s| s.len())
    }

    fn tmp_dir(&self) -> Result<PathBuf> {
        let dir = self.root.join("tmp");
        if !dir.is_dir() {
            fs::create_dir_all(&dir)?;
        }
        Ok(dir)
    }

    /// Moves a finished temporary file to its final name.
    fn publish(&self, tmp: &Path, id: &ObjectId) -> Result<()> {
        let dest = self.object_path(id);
        match fs::rename(tmp, &dest) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if let Some(parent) = dest.parent() {
                    fs::create_dir_all(parent)?;
                }
                fs::rename(tmp, &dest)?;
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    fn write_new(&self, id: &ObjectId, parts: &[&[u8]]) -> Result<u64> {
        // The temporary file sits beside its final name: threads writing different
        // objects then rarely contend for one directory's lock.
        let dest = self.object_path(id);
        let dir = dest.parent().unwrap_or(&self.root);
        let tmp = temp_in(dir, "obj");
        let result = (|| -> Result<u64> {
            let mut f = match fs::File::create(&tmp) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    fs::create_dir_all(dir)?;
                    fs::File::create(&tmp)?
                }
                r => r?,
            };
            let mut n = 0;
            for p in parts {
                f.write_all(p)?;
                n += p.len() as u64;
            }
            drop(f);
            self.publish(&tmp, id)?;
            Ok(n)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    /// Stores `data`, compressed if that pays. Nothing is written if the object exists.
    pub fn put_bytes(&self, data: &[u8]) -> Result<Stored> {
        let id = ObjectId::of(data);
        let size = data.len() as u64;
        if self.contains(&id) {
            return Ok(Stored { id, size, written: 0 });
        }
        // A sample tells incompressible data (media, weights) cheaply.
        let sample_pays = data.len() <= SAMPLE || self.compress_if_worth(&data[..SAMPLE])?.is_some();
        let compressed = if sample_pays {
            self.compress_if_worth(data)?
        } else {
            None
        };
        let pack = self.packable(size, &data[..data.len().min(16)]);
        let written = match compressed {
            Some(z) => self.store(&id, &[&z], pack)?,
            None => self.store(&id, &[RAW_HEADER, data], pack)?,
        };
        Ok(Stored { id, size, written })
    }

    /// Compresses `data` with the thread's reusable context; `None` if it does not pay.
    fn compress_if_worth(&self, data: &[u8]) -> Result<Option<Vec<u8>>> {
        if data.len() < 64 {
            return Ok(None);
        }
        let level = self.level;
        let z = COMPRESSOR.with(|cell| -> std::io::Result<Vec<u8>> {
            let mut slot = cell.borrow_mut();
            if slot.as_ref().map(|(l, _)| *l) != Some(level) {
                *slot = Some((level, zstd::bulk::Compressor::new(level)?));
            }
            let (_, c) = slot.as_mut().ok_or_else(|| std::io::Error::other("no compressor"))?;
            c.compress(data)
        })?;
        Ok(((z.len() as f64) <= (1.0 - MIN_SAVING) * data.len() as f64).then_some(z))
    }

    /// Stores the content of the file at `path`, whose stamp the caller read
    /// as `stamp`. Fails if the file changes while it is read.
    pub fn put_file(&self, path: &Path, stamp: &Stamp) -> Result<Stored> {
        let mut f = fs::File::open(path)?;
        let stored = if stamp.size() <= SMALL_OBJECT {
            let mut data = Vec::with_capacity(stamp.size() as usize + 1);
            f.read_to_end(&mut data)?;
            self.put_bytes(&data)?
        } else {
            self.put_stream(&mut f)?
        };
        let after = f.metadata()?;
        if !stamp.same_content(&Stamp::of(&after)) || stored.size != stamp.size() {
            return Err(CacheError::ChangedWhileReading {
                path: path.to_path_buf(),
            }
            .into());
        }
        Ok(stored)
    }

    /// Streams a large file into the cache in one pass: hashing as it reads and
    /// compressing on all cores into a run of frames (see [`crate::frames`]),
    /// deciding on compression from the first chunk.
    fn put_stream(&self, f: &mut fs::File) -> Result<Stored> {
        let mut buf = vec![0u8; CHUNK];
        let mut n = read_full(f, &mut buf)?;
        let first_frame = self.compress_if_worth(&buf[..n])?;
        let tmp = temp_in(&self.tmp_dir()?, "obj");
        let result = (|| -> Result<Stored> {
            let mut hasher = blake3::Hasher::new();
            let mut size = 0u64;
            let file = fs::File::create(&tmp)?;
            if let Some(first_frame) = first_frame {
                // The run is sealed (see `crate::seal`) so that a push can check it
                // without decompressing.
                let out = BufWriter::with_capacity(crate::fsutil::WRITE_CHUNK, crate::seal::Sealer::new(file));
                let mut enc = crate::frames::FrameEncoder::new(out, self.level);
                hasher.update(&buf[..n]);
                size += n as u64;
                enc.write_frame(&first_frame)?;
                while n == CHUNK {
                    let mut chunk = std::mem::replace(&mut buf, vec![0u8; CHUNK]);
                    n = read_full(f, &mut chunk)?;
                    chunk.truncate(n);
                    if n > 0 {
                        hasher.update(&chunk);
                        size += n as u64;
                        enc.push(chunk)?;
                    }
                }
                let sealer = enc.finish()?.into_inner().map_err(|e| e.into_error())?;
                sealer.seal(&ObjectId::from_hasher(&hasher))?;
            } else {
                let mut out = BufWriter::with_capacity(crate::fsutil::WRITE_CHUNK, file);
                out.write_all(RAW_HEADER)?;
                while n > 0 {
                    hasher.update_rayon(&buf[..n]);
                    crate::fsutil::write_chunked(&mut out, &buf[..n])?;
                    size += n as u64;
                    n = read_full(f, &mut buf)?;
                }
                out.flush()?;
            }
            let id = ObjectId::from_hasher(&hasher);
            let written = if self.contains(&id) {
                fs::remove_file(&tmp)?;
                0
            } else {
                let len = fs::metadata(&tmp)?.len();
                self.publish(&tmp, &id)?;
                len
            };
            Ok(Stored { id, size, written })
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    /// How object `id` is stored.
    pub fn encoding(&self, id: &ObjectId) -> Result<Encoding> {
        let head = head_of(id, None, &self.open_object(id, None)?)?;
        detect(&head).ok_or_else(|| corrupt(id, None, "unknown object encoding").into())
    }

    /// Object `id`'s stored form, wherever it is: a pack (published or being
    /// written) or its own file.
    fn open_object(&self, id: &ObjectId, for_path: Option<&str>) -> Result<Slice> {
        if let Some(s) = self.open_packed(id, for_path, false)? {
            return Ok(s);
        }
        match fs::File::open(self.object_path(id)) {
            Ok(f) => {
                let f = f.into_parts().0;
                let len = f.metadata()?.len();
                return Ok(Slice::new(Arc::new(f), 0, len));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        if self.packs.active()
            && let Some(s) = self.packs.open_pending(id)?
        {
            return Ok(s);
        }
        if let Some(s) = self.open_packed(id, for_path, true)? {
            return Ok(s);
        }
        Err(CacheError::Missing {
            id: *id,
            path: for_path.map(str::to_string),
        }
        .into())
    }

    fn open_packed(&self, id: &ObjectId, for_path: Option<&str>, load: bool) -> Result<Option<Slice>> {
        let Some((mut pack, mut offset, mut len)) = self.packs.with_set(load, |s| s.find(id))?.flatten() else {
            return Ok(None);
        };
        if pack.file().is_err() && !pack.path.exists() {
            // Rewritten by a `gc` since the indexes were read: read them again.
            self.packs.forget();
            match self.packs.with_set(true, |s| s.find(id))?.flatten() {
                Some(found) => (pack, offset, len) = found,
                None => return Ok(None),
            }
        }
        let file = pack.file().map_err(|e| {
            corrupt(
                id,
                for_path,
                &format!("its pack `{}` cannot be read: {e}", pack.path.display()),
            )
        })?;
        Ok(Some(Slice::new(file, offset, len)))
    }

    /// A decoding reader of `src` (an object's stored form) and the encoding.
    fn decoder(id: &ObjectId, for_path: Option<&str>, mut src: Slice) -> Result<(Box<dyn Read + Send>, Encoding)> {
        let head = head_of(id, for_path, &src)?;
        let encoding = detect(&head).ok_or_else(|| corrupt(id, for_path, "unknown object encoding"))?;
        let inner: Box<dyn Read + Send> = match encoding {
            Encoding::Raw => {
                let mut skip = [0u8; 8];
                src.read_exact(&mut skip)?;
                Box::new(BufReader::with_capacity(
                    crate::fsutil::WRITE_CHUNK.min(src.len() as usize + 1),
                    src,
                ))
            }
            Encoding::Zstd => Box::new(zstd::stream::read::Decoder::new(src)?),
        };
        Ok((inner, encoding))
    }

    /// Reads object `id` whole, verifying its hash. `for_path` names the
    /// workspace path that needs it, for error messages.
    pub fn read(&self, id: &ObjectId, for_path: Option<&str>) -> Result<Vec<u8>> {
        let mut stored = self
            .open_object(id, for_path)?
            .read_all()
            .map_err(|e| read_error(id, for_path, e))?;
        let data = match detect(&stored) {
            Some(Encoding::Raw) => {
                stored.drain(..RAW_HEADER.len());
                stored
            }
            Some(Encoding::Zstd) => decompress_all(&stored).map_err(|reason| corrupt(id, for_path, &reason))?,
            None => return Err(corrupt(id, for_path, "unknown object encoding").into()),
        };
        if ObjectId::of(&data) != *id {
            return Err(corrupt(id, for_path, "content does not match its id").into());
        }
        Ok(data)
    }

    /// Copies object `id` into `out`, verifying its hash as it streams. On error,
    /// whatever was written to `out` must be discarded by the caller.
    ///
    /// The caller's thread hashes and writes; a big object's frames are decoded on
    /// worker threads (see [`crate::frames`]). Handing the writes to another
    /// thread measured slower here, with the kernel's page-cache copy costing three
    /// times as much system time.
    pub fn copy_to(&self, id: &ObjectId, for_path: Option<&str>, out: &mut dyn Write) -> Result<u64> {
        let mut src = self.open_object(id, for_path)?;
        let mut decoder = StoredDecoder::new(Hashing {
            hasher: blake3::Hasher::new(),
            out,
            total: 0,
        });
        let mut buf = vec![0u8; crate::fsutil::WRITE_CHUNK.min(src.len() as usize + 1)];
        loop {
            let n = match src.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(read_error(id, for_path, e)),
            };
            decoder
                .write_all(&buf[..n])
                .map_err(|e| decode_error(id, for_path, e))?;
        }
        let hashed = decoder.finish().map_err(|e| decode_error(id, for_path, e))?;
        if ObjectId::from_hasher(&hashed.hasher) != *id {
            return Err(corrupt(id, for_path, "content does not match its id").into());
        }
        Ok(hashed.total)
    }

    /// Copies object `id`'s content into `out`, a new empty file, verified. A raw
    /// object with a file of its own is copied by the kernel (`copy_file_range`)
    /// while a second thread hashes the source; any other is decoded through
    /// [`Cache::copy_to`]. On error, whatever was written to `out` must be discarded.
    pub fn copy_to_file(&self, id: &ObjectId, for_path: Option<&str>, out: &mut std::fs::File) -> Result<u64> {
        if let Ok(src) = fs::File::open(self.object_path(id)) {
            let len = src.metadata()?.len();
            let mut head = [0u8; RAW_HEADER.len()];
            if len >= head.len() as u64 && src.file().read_exact_at(&mut head, 0).is_ok() && &head == RAW_HEADER {
                let size = len - head.len() as u64;
                let src = src.file();
                let (copied, hashed) = std::thread::scope(|s| {
                    let hashing = s.spawn(|| {
                        let mut hasher = blake3::Hasher::new();
                        // One thread: the other core is busy with the kernel's copy.
                        crate::fsutil::read_range(src, head.len() as u64, size, |b| {
                            hasher.update(b);
                        })
                        .map(|()| ObjectId::from_hasher(&hasher))
                    });
                    let mut from = src;
                    let copied = std::io::Seek::seek(&mut from, std::io::SeekFrom::Start(head.len() as u64))
                        .and_then(|_| std::io::copy(&mut from, out));
                    (copied, hashing.join())
                });
                let hashed = hashed.map_err(|_| std::io::Error::other("the hashing thread failed"))?;
                let hashed = hashed.map_err(|e| read_error(id, for_path, e))?;
                if copied? != size {
                    return Err(corrupt(id, for_path, "truncated: the file ends before the object does").into());
                }
                if hashed != *id {
                    return Err(corrupt(id, for_path, "content does not match its id").into());
                }
                return Ok(size);
            }
        }
        let mut w = BufWriter::with_capacity(crate::fsutil::WRITE_CHUNK, out);
        let n = self.copy_to(id, for_path, &mut w)?;
        w.flush()?;
        Ok(n)
    }

    /// A reader of object `id`'s content that hashes as it goes: the read that
    /// reaches the end fails (`InvalidData`) if the content does not match the id.
    pub fn reader(&self, id: &ObjectId, for_path: Option<&str>) -> Result<ObjectReader> {
        let (inner, _) = Self::decoder(id, for_path, self.open_object(id, for_path)?)?;
        Ok(ObjectReader {
            inner,
            hasher: blake3::Hasher::new(),
            id: *id,
            path: for_path.map(str::to_string),
            done: false,
        })
    }

    /// The first bytes of object `id`'s content (up to `n`), unverified: enough to
    /// tell a manifest from a file.
    pub fn peek(&self, id: &ObjectId, n: usize) -> Result<Vec<u8>> {
        let mut reader = self.reader(id, None)?;
        let mut out = vec![0u8; n];
        let got = read_full(&mut reader, &mut out).unwrap_or(0);
        out.truncate(got);
        Ok(out)
    }

    /// Deletes object `id`'s own file (absent is fine); packed objects go with
    /// [`Cache::delete_many`].
    pub fn delete(&self, id: &ObjectId) -> Result<()> {
        match fs::remove_file(self.object_path(id)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Checks that object `id` decodes and hashes to its id.
    pub fn verify(&self, id: &ObjectId) -> Result<u64> {
        self.copy_to(id, None, &mut std::io::sink())
    }

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

/// New small objects being packed; see [`Cache::begin_packing`]. Dropped without
/// [`Packing::finish`], the objects appended since the last published pack are discarded.
#[must_use = "objects packed are kept only once `finish` publishes them"]
#[derive(Debug)]
pub struct Packing {
    cache: Cache,
    done: bool,
}

impl Packing {
    /// Publishes what was packed, and stops packing.
    pub fn finish(mut self) -> Result<()> {
        self.done = true;
        self.cache.packs.finish()
    }
}

impl Drop for Packing {
    fn drop(&mut self) {
        if !self.done {
            self.cache.packs.abandon();
        }
    }
}

impl Cache {
    /// Deletes objects `ids`: their own files, and their entries in packs. A pack
    /// left with no live object is removed (index first); one that keeps some is
    /// rewritten with only those, the new pack published before the old one goes,
    /// so that a crash leaves both (harmless duplicates), never neither.
    /// `on_deleted` is told of each object.
    pub fn delete_many(&self, ids: &[ObjectId], on_deleted: &dyn Fn()) -> Result<()> {
        for id in ids {
            self.delete(id)?;
            on_deleted();
        }
        let gone: rustc_hash::FxHashSet<ObjectId> = ids.iter().copied().collect();
        let packs = self.packs.with_set(true, |s| s.packs.clone())?.unwrap_or_default();
        let result = (|| -> Result<()> {
            for pack in packs {
                let keep: Vec<&crate::pack::Entry> = pack.entries.iter().filter(|e| !gone.contains(&e.id)).collect();
                if keep.len() == pack.entries.len() {
                    continue;
                }
                if !keep.is_empty() {
                    let file = pack.file().map_err(|e| {
                        std::io::Error::other(format!("cannot read pack `{}`: {e}", pack.path.display()))
                    })?;
                    let mut w = crate::pack::PackWriter::new(self.packs.dir())?;
                    for e in keep {
                        w.append(&e.id, &[&read_verified(&file, e)?])?;
                    }
                    w.publish()?;
                }
                remove_if_present(&pack.index_path())?;
                remove_if_present(&pack.path)?;
            }
            Ok(())
        })();
        self.packs.forget();
        result
    }

    /// Removes what killed pack writers left in `packs/`: unfinished packs and
    /// indexes, and packs whose index was never written, last modified at least `min_age` ago.
    /// `Duration::ZERO` is only for a caller holding the repo lock, as every writer
    /// to the cache does; a directory remote, which other repos' pushes write to
    /// without that lock, passes an age no writer still at work can reach.
    pub fn remove_pack_leftovers(&self, min_age: Duration) -> Result<()> {
        for stray in self.packs.strays()? {
            let name = stray.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let old_enough = min_age.is_zero()
                || fs::symlink_metadata(&stray)
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age >= min_age);
            // Unfinished packs and indexes, whole-pack copies, packs without an index.
            if (crate::fsutil::is_temp_name(name) || name.ends_with(".pack")) && old_enough {
                remove_if_present(&stray)?;
            }
        }
        Ok(())
    }
}

/// The stored form of pack entry `e` read from `file`, verified.
fn read_verified(file: &Arc<std::fs::File>, e: &crate::pack::Entry) -> Result<Vec<u8>> {
    let stored = Slice::new(file.clone(), e.offset, e.len)
        .read_all()
        .map_err(|err| read_error(&e.id, None, err))?;
    verify_stored(&e.id, &stored).map_err(|reason| corrupt(&e.id, None, &reason))?;
    Ok(stored)
}

fn remove_if_present(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
        _ => Ok(()),
    }
}

/// Checks stored bytes as they stream past: feed the stored form of one object in
/// chunks, and [`StoredVerifier::finish`] says whether it decodes to content whose
/// hash is the object's id. Used for objects moving to and from remotes.
pub struct StoredVerifier {
    decoder: Box<StoredDecoder<HashSink>>,
}

/// Hashes decoded content (on a second thread for big objects, see [`crate::pipe`])
/// and, optionally, writes it to a file.
struct HashSink(crate::pipe::HashPipe<KeptCopy>);

/// The optional file a [`HashSink`] writes to. A failed write only drops the file
/// (the content's verification goes on): the copy is a shortcut, not the object.
struct KeptCopy {
    out: Option<BufWriter<std::fs::File>>,
    failed: bool,
}

impl Write for KeptCopy {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Some(out) = &mut self.out
            && crate::fsutil::write_chunked(out, buf).is_err()
        {
            self.out = None;
            self.failed = true;
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl HashSink {
    fn new(out: Option<std::fs::File>) -> Self {
        HashSink(crate::pipe::HashPipe::new(KeptCopy {
            out: out.map(|f| BufWriter::with_capacity(crate::fsutil::WRITE_CHUNK, f)),
            failed: false,
        }))
    }

    /// The hasher, and whether the whole content reached the output.
    fn end(self) -> std::result::Result<(blake3::Hasher, bool), String> {
        let (hasher, kept, _) = self.0.finish().map_err(|e| e.to_string())?;
        let written = match kept.out {
            Some(w) => !kept.failed && w.into_inner().is_ok(),
            None => false,
        };
        Ok((hasher, written))
    }
}

impl Write for HashSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Default for StoredVerifier {
    fn default() -> Self {
        Self::new()
    }
}

impl StoredVerifier {
    /// A verifier at the start of an object's stored bytes.
    pub fn new() -> Self {
        StoredVerifier {
            decoder: Box::new(StoredDecoder::new(HashSink::new(None))),
        }
    }

    /// Also writes the decoded content to `file` (see [`StoredVerifier::finish_output`]).
    /// Call it before any bytes are fed.
    pub fn with_output(self, file: std::fs::File) -> Self {
        StoredVerifier {
            decoder: Box::new(StoredDecoder::new(HashSink::new(Some(file)))),
        }
    }

    /// Feeds the next stored bytes. Fails (with a reason) when they cannot be decoded.
    pub fn update(&mut self, chunk: &[u8]) -> std::result::Result<(), String> {
        self.decoder.write_all(chunk).map_err(|e| fault_reason(&e))
    }

    /// Ends the stream: `Ok` when the content hashes to `id`.
    pub fn finish(self, id: &ObjectId) -> std::result::Result<(), String> {
        self.finish_output(id).map(|_| ())
    }

    /// Like [`StoredVerifier::finish`]; also tells whether the whole decoded content
    /// reached the output given to [`StoredVerifier::with_output`].
    pub fn finish_output(self, id: &ObjectId) -> std::result::Result<bool, String> {
        let sink = self.decoder.finish().map_err(|e| fault_reason(&e))?;
        let (hasher, written) = sink.end()?;
        if ObjectId::from_hasher(&hasher) == *id {
            Ok(written)
        } else {
            Err("content does not match its id (truncated or altered)".into())
        }
    }
}

/// Why decoding failed: the stored bytes' fault, or the error itself.
fn fault_reason(e: &std::io::Error) -> String {
    crate::frames::decode_fault(e).unwrap_or_else(|| e.to_string())
}

/// Checks an object of this machine's cache as its stored bytes stream out (a
/// push): against its seal when it has one (see [`crate::seal`]), else by decoding.
pub enum OutgoingCheck {
    /// The object ends with a seal.
    Sealed(Box<crate::seal::SealCheck>),
    /// No seal: the content is decoded and hashed.
    Decoded(StoredVerifier),
}

impl OutgoingCheck {
    /// A check of `src`, object `id`'s stored form, before any of it is read.
    pub fn new(id: &ObjectId, src: &Slice) -> std::io::Result<Self> {
        let tail = src.tail(crate::seal::LEN)?;
        Ok(match crate::seal::SealCheck::new(id, src.len(), &tail) {
            Some(c) => OutgoingCheck::Sealed(Box::new(c)),
            None => OutgoingCheck::Decoded(StoredVerifier::new()),
        })
    }

    /// Feeds the next stored bytes. Fails (with a reason) when they cannot be decoded.
    pub fn update(&mut self, chunk: &[u8]) -> std::result::Result<(), String> {
        match self {
            OutgoingCheck::Sealed(c) => {
                c.update(chunk);
                Ok(())
            }
            OutgoingCheck::Decoded(v) => v.update(chunk),
        }
    }

    /// Ends the stream: `Ok` when the bytes are object `id`'s. A seal that does not
    /// match sends the object in `cache` through the full check, by decoding.
    pub fn finish(self, cache: &Cache, id: &ObjectId) -> std::result::Result<(), String> {
        match self {
            OutgoingCheck::Sealed(c) if c.matches() => Ok(()),
            OutgoingCheck::Sealed(_) => cache.verify(id).map(|_| ()).map_err(|e| match e {
                crate::Error::Cache(CacheError::Corrupt { reason, .. }) => reason,
                e => e.to_string(),
            }),
            OutgoingCheck::Decoded(v) => v.finish(id),
        }
    }
}

/// Checks that `stored` (an object's stored form, whole) decodes to content with id `id`.
pub fn verify_stored(id: &ObjectId, stored: &[u8]) -> std::result::Result<(), String> {
    let content_id = match detect(stored) {
        Some(Encoding::Raw) => ObjectId::of(&stored[RAW_HEADER.len()..]),
        Some(Encoding::Zstd) => ObjectId::of(&decompress_all(stored)?),
        None if stored.len() < RAW_HEADER.len() => return Err("truncated: too short to be an object".into()),
        None => return Err("unknown object encoding".into()),
    };
    if content_id == *id {
        Ok(())
    } else {
        Err("content does not match its id (truncated or altered)".into())
    }
}

/// Decodes `stored` (an object's stored form, whole) into its content, verified.
pub fn decode_stored(id: &ObjectId, stored: &[u8]) -> std::result::Result<Vec<u8>, String> {
    let content = match detect(stored) {
        Some(Encoding::Raw) => stored[RAW_HEADER.len()..].to_vec(),
        Some(Encoding::Zstd) => decompress_all(stored)?,
        None if stored.len() < RAW_HEADER.len() => return Err("truncated: too short to be an object".into()),
        None => return Err("unknown object encoding".into()),
    };
    if ObjectId::of(&content) == *id {
        Ok(content)
    } else {
        Err("content does not match its id (truncated or altered)".into())
    }
}

/// A new object being written from its stored form (as downloaded), checked as it
/// goes; it appears under its final name only in [`StoredWriter::commit`].
pub struct StoredWriter {
    id: ObjectId,
    tmp: PathBuf,
    file: Option<BufWriter<fs::File>>,
    verifier: StoredVerifier,
    written: u64,
    /// The decoded copy being kept (see [`Cache::keep_decoded`]).
    kept: Option<PathBuf>,
}

impl StoredWriter {
    /// Appends stored bytes. A decode error is returned as [`CacheError::Corrupt`].
    pub fn write(&mut self, chunk: &[u8]) -> Result<()> {
        self.verifier
            .update(chunk)
            .map_err(|reason| corrupt(&self.id, None, &reason))?;
        if let Some(f) = &mut self.file {
            crate::fsutil::write_chunked(f, chunk)?;
        }
        self.written += chunk.len() as u64;
        Ok(())
    }

    /// Verifies the whole object and moves it to its final name; returns the stored size.
    pub fn commit(mut self, cache: &Cache) -> Result<u64> {
        let verifier = std::mem::take(&mut self.verifier);
        let complete = verifier
            .finish_output(&self.id)
            .map_err(|reason| corrupt(&self.id, None, &reason))?;
        if let Some(f) = self.file.take() {
            f.into_inner().map_err(|e| e.into_error())?;
        }
        cache.publish(&self.tmp, &self.id)?;
        cache.arrived(&self.id, self.kept.take(), complete);
        Ok(self.written)
    }
}

impl Drop for StoredWriter {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = fs::remove_file(&self.tmp);
        }
        if let Some(kept) = self.kept.take() {
            let _ = fs::remove_file(kept);
        }
    }
}

impl Cache {
    /// Object `id`'s stored form (compressed or raw, as on disk), read whole and
    /// verified, for a push: a damaged object is [`CacheError::Corrupt`], never
    /// returned. A sealed object is checked against its seal (see [`crate::seal`]),
    /// any other, or one whose seal does not match, by decoding it.
    pub fn read_stored(&self, id: &ObjectId) -> Result<Vec<u8>> {
        let stored = self
            .open_object(id, None)?
            .read_all()
            .map_err(|e| read_error(id, None, e))?;
        if !crate::seal::matches(id, &stored) {
            verify_stored(id, &stored).map_err(|reason| corrupt(id, None, &reason))?;
        }
        Ok(stored)
    }

    /// Opens object `id`'s stored form for streaming; the caller verifies with a
    /// [`StoredVerifier`]. Returns a reader and the stored size.
    pub fn open_stored(&self, id: &ObjectId) -> Result<(Slice, u64)> {
        let s = self.open_object(id, None)?;
        let len = s.len();
        Ok((s, len))
    }

    /// Stores an object given in its stored form, after verifying it. Returns the
    /// stored size; a damaged object is [`CacheError::Corrupt`] and is not written.
    pub fn import_stored(&self, id: &ObjectId, stored: &[u8]) -> Result<u64> {
        let content = decode_stored(id, stored).map_err(|reason| corrupt(id, None, &reason))?;
        let pack = self.packable(content.len() as u64, &content[..content.len().min(16)]);
        self.store(id, &[stored], pack)
    }

    /// Copies object `id` from another cache-shaped store `src` (a local remote, or
    /// the cache when pushing to one). With `link`, a hard link is tried first
    /// (falling back to a copy across filesystems). Either way the new file is
    /// verified before it gets its final name, so what is published is exactly what
    /// was checked. Returns the stored size. A damaged source is
    /// [`CacheError::Corrupt`]; a missing one [`CacheError::Missing`].
    ///
    /// `own` says that `src` is this machine's cache (a push): then a sealed object
    /// is checked against its seal instead of being decoded (see [`crate::seal`]).
    pub fn import_from(&self, src: &Cache, id: &ObjectId, link: bool, own: bool) -> Result<u64> {
        let from = src.object_path(id);
        // A packed source, or a small object while this cache packs: through memory.
        let stored_len = fs::metadata(&from).ok().map(|m| m.len());
        let through_memory = match stored_len {
            Some(len) => self.packs.active() && !link && len < PACKED_MAX,
            None => true,
        };
        if through_memory {
            let stored = src
                .open_object(id, None)?
                .read_all()
                .map_err(|e| read_error(id, None, e))?;
            return self.import_stored(id, &stored);
        }
        let dest = self.object_path(id);
        let dir = dest.parent().unwrap_or(&self.root).to_path_buf();
        let tmp = temp_in(&dir, "obj");
        let place = |tmp: &Path| -> std::io::Result<bool> {
            if link {
                match std::fs::hard_link(&from, tmp) {
                    Ok(()) => return Ok(true),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound && from.exists() => {
                        fs::create_dir_all(&dir)?;
                        if std::fs::hard_link(&from, tmp).is_ok() {
                            return Ok(true);
                        }
                    }
                    // Another filesystem, or one without hard links: copy instead.
                    Err(_) => {}
                }
            }
            match std::fs::copy(&from, tmp) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && from.exists() => {
                    fs::create_dir_all(&dir)?;
                    fs::copy(&from, tmp)?;
                }
                r => {
                    r?;
                }
            }
            Ok(false)
        };
        // A push checks a big source's seal while the kernel copies it; a small
        // object (a `pack = false` remote) is not worth a thread: it is decoded.
        let (placed, sealed) = if own && stored_len.is_some_and(|l| l >= PACKED_MAX) {
            std::thread::scope(|s| {
                let check = s.spawn(|| sealed_len(id, &from));
                let placed = place(&tmp);
                (placed, check.join().ok().flatten())
            })
        } else {
            (place(&tmp), None)
        };
        let linked = match placed {
            Ok(l) => l,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let _ = fs::remove_file(&tmp);
                return Err(CacheError::Missing { id: *id, path: None }.into());
            }
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                return Err(std::io::Error::new(e.kind(), format!("copying `{}`: {e}", from.display())).into());
            }
        };
        let mut kept = None;
        let checked = (|| -> Result<u64> {
            let mut f = fs::File::open(&tmp)?;
            let len = f.metadata()?.len();
            if sealed == Some(len) {
                self.publish(&tmp, id)?;
                return Ok(len);
            }
            let mut verifier;
            (verifier, kept) = self.arrival_verifier(id, len);
            let mut buf = vec![0u8; (len as usize).clamp(4096, CHUNK)];
            loop {
                let n = read_full(&mut f, &mut buf)?;
                if n == 0 {
                    break;
                }
                verifier
                    .update(&buf[..n])
                    .map_err(|reason| corrupt(id, None, &reason))?;
            }
            let complete = verifier
                .finish_output(id)
                .map_err(|reason| corrupt(id, None, &reason))?;
            self.publish(&tmp, id)?;
            self.arrived(id, kept.take(), complete);
            Ok(len)
        })();
        if let Some(k) = kept {
            let _ = fs::remove_file(k);
        }
        // rename() of a link onto a name for the same file leaves both names.
        if checked.is_err() || (linked && tmp.symlink_metadata().is_ok()) {
            let _ = fs::remove_file(&tmp);
        }
        checked
    }

    /// Copies pack `pack` of another cache-shaped store (the cache, when pushing to a
    /// directory remote) into this one whole, under its own name; with `link`, a hard
    /// link is tried first. Every object of the copy is verified before it is
    /// published (pack renamed in, then its index); `verified` is told the stored
    /// length of each. Returns the pack's size. A damaged object is
    /// [`CacheError::Corrupt`], and nothing is published.
    pub fn import_pack(&self, pack: &crate::pack::Pack, link: bool, verified: &(dyn Fn(u64) + Sync)) -> Result<u64> {
        let dir = self.packs.dir().to_path_buf();
        fs::create_dir_all(&dir)?;
        let tmp = temp_in(&dir, "pack");
        let result = (|| -> Result<u64> {
            if !(link && std::fs::hard_link(&pack.path, &tmp).is_ok()) {
                fs::copy(&pack.path, &tmp)?;
            }
            let file = Arc::new(fs::File::open(&tmp)?.into_parts().0);
            pack.entries.par_iter().try_for_each(|e| {
                read_verified(&file, e)?;
                verified(e.len);
                Ok::<_, crate::Error>(())
            })?;
            let mut entries = pack.entries.clone();
            let (index, name) = crate::pack::encode_index(&mut entries);
            let dest = dir.join(format!("{name}.pack"));
            fs::rename(&tmp, &dest)?;
            crate::fsutil::atomic_write(&dest.with_extension("idx"), &index)?;
            Ok(file.metadata()?.len())
        })();
        // rename() of a link onto a name for the same file leaves both names.
        let _ = fs::remove_file(&tmp);
        self.packs.forget();
        result
    }

    /// Starts writing object `id` from its stored form (`stored_len` bytes), streamed.
    pub fn stored_writer(&self, id: &ObjectId, stored_len: u64) -> Result<StoredWriter> {
        let dest = self.object_path(id);
        let dir = dest.parent().unwrap_or(&self.root).to_path_buf();
        fs::create_dir_all(&dir)?;
        let tmp = temp_in(&dir, "obj");
        let file = fs::File::create(&tmp)?;
        let (verifier, kept) = self.arrival_verifier(id, stored_len);
        Ok(StoredWriter {
            id: *id,
            tmp,
            file: Some(BufWriter::with_capacity(crate::fsutil::WRITE_CHUNK, file)),
            verifier,
            written: 0,
            kept,
        })
    }
}

/// The first bytes (up to `n`) of the content that `stored` (a prefix of a stored
/// object) decodes to; fewer if the prefix ends first or does not decode.
pub fn decode_prefix(stored: &[u8], n: usize) -> Vec<u8> {
    match detect(stored) {
        Some(Encoding::Raw) => stored[RAW_HEADER.len()..].iter().take(n).copied().collect(),
        Some(Encoding::Zstd) => {
            let mut out = vec![0u8; n];
            let got = match zstd::stream::read::Decoder::new(stored) {
                Ok(mut d) => read_full(&mut d, &mut out).unwrap_or(0),
                Err(_) => 0,
            };
            out.truncate(got);
            out
        }
        None => Vec::new(),
    }
}

/// A streaming reader of an object's content; see [`Cache::reader`].
pub struct ObjectReader {
    inner: Box<dyn Read + Send>,
    hasher: blake3::Hasher,
    id: ObjectId,
    path: Option<String>,
    done: bool,
}

impl std::fmt::Debug for ObjectReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectReader")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Read for ObjectReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.done || buf.is_empty() {
            return Ok(0);
        }
        let n = self.inner.read(buf).map_err(|e| match e.kind() {
            std::io::ErrorKind::Interrupted | std::io::ErrorKind::PermissionDenied => e,
            _ => std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                corrupt(&self.id, self.path.as_deref(), &format!("cannot decompress: {e}")),
            ),
        })?;
        if n == 0 {
            if ObjectId::from_hasher(&self.hasher) != self.id {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    corrupt(&self.id, self.path.as_deref(), "content does not match its id"),
                ));
            }
            self.done = true;
            return Ok(0);
        }
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// The length of the object file at `path` if it ends with a seal that matches
/// object `id` (see [`crate::seal`]).
fn sealed_len(id: &ObjectId, path: &Path) -> Option<u64> {
    let f = fs::File::open(path).ok()?;
    let len = f.metadata().ok()?.len();
    crate::seal::check(id, f.file(), 0, len).ok()?.then_some(len)
}

/// The encoding of a stored object, from its first 8 bytes.
pub fn detect(head: &[u8]) -> Option<Encoding> {
    if head.starts_with(&ZSTD_MAGIC) {
        Some(Encoding::Zstd)
    } else if head.starts_with(RAW_HEADER) {
        Some(Encoding::Raw)
    } else {
        None
    }
}

/// The first 8 stored bytes of `src` (fewer only if the object is that short).
fn head_of(id: &ObjectId, for_path: Option<&str>, src: &Slice) -> Result<Vec<u8>> {
    let head = src.head(8)?;
    if (head.len() as u64) < src.len().min(8) {
        return Err(corrupt(id, for_path, "truncated: the file ends before the object does").into());
    }
    Ok(head)
}

/// Content on its way to `out`, hashed and counted.
struct Hashing<'a> {
    hasher: blake3::Hasher,
    out: &'a mut dyn Write,
    total: u64,
}

impl Write for Hashing<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.out.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.total += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// An error decoding an object's stored bytes: the bytes' fault makes the object
/// corrupt; any other (writing the content) is passed on.
fn decode_error(id: &ObjectId, for_path: Option<&str>, e: std::io::Error) -> crate::Error {
    match crate::frames::decode_fault(&e) {
        Some(reason) => corrupt(id, for_path, &reason).into(),
        None => e.into(),
    }
}

/// An error reading an object's stored bytes: running short means it is damaged.
fn read_error(id: &ObjectId, for_path: Option<&str>, e: std::io::Error) -> crate::Error {
    if e.kind() == std::io::ErrorKind::UnexpectedEof {
        corrupt(id, for_path, &e.to_string()).into()
    } else {
        e.into()
    }
}

fn corrupt(id: &ObjectId, for_path: Option<&str>, reason: &str) -> CacheError {
    CacheError::Corrupt {
        id: *id,
        path: for_path.map(str::to_string),
        reason: reason.to_string(),
    }
}

/// The content of `stored` (a zstd object's stored form, whole), or why it does
/// not decode. A single small frame is decoded in one call.
fn decompress_all(stored: &[u8]) -> std::result::Result<Vec<u8>, String> {
    let single = zstd::zstd_safe::find_frame_compressed_size(stored).is_ok_and(|n| n == stored.len());
    match zstd::zstd_safe::get_frame_content_size(stored) {
        Ok(Some(len)) if single && len <= SMALL_OBJECT => DECOMPRESSOR
            .with(|cell| {
                let mut slot = cell.borrow_mut();
                if slot.is_none() {
                    *slot = Some(zstd::bulk::Decompressor::new()?);
                }
                let d = slot.as_mut().ok_or_else(|| std::io::Error::other("no decompressor"))?;
                let out = d.decompress(stored, len as usize)?;
                if out.len() as u64 != len {
                    return Err(std::io::Error::other("frame is shorter than it says"));
                }
                Ok(out)
            })
            .map_err(|e| format!("cannot decompress: {e}")),
        _ => {
            let mut decoder = StoredDecoder::new(Vec::new());
            decoder
                .write_all(stored)
                .and_then(|()| decoder.finish())
                .map_err(|e| fault_reason(&e))
        }
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)]
mod tests {
    use super::*;

    fn cache() -> (tempfile::TempDir, Cache) {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path().join("cache"), 1);
        (dir, cache)
    }

    #[test]
    fn compressible_and_incompressible_round_trip() {
        let (_d, cache) = cache();
        let text = "timestamp,sensor,value\n".repeat(1000).into_bytes();
        let s = cache.put_bytes(&text).unwrap();
        assert!(s.written > 0 && s.written < text.len() as u64 / 5);
        assert_eq!(cache.encoding(&s.id).unwrap(), Encoding::Zstd);
        assert_eq!(cache.read(&s.id, None).unwrap(), text);

        let mut noise = vec![0u8; 100_000];
        blake3::Hasher::new().finalize_xof().fill(&mut noise);
        let s = cache.put_bytes(&noise).unwrap();
        assert_eq!(cache.encoding(&s.id).unwrap(), Encoding::Raw);
        let mut out = Vec::new();
        cache.copy_to(&s.id, None, &mut out).unwrap();
        assert_eq!(out, noise);
        assert_eq!(cache.put_bytes(&noise).unwrap().written, 0, "second put writes nothing");
    }

    #[test]
    fn a_reader_follows_a_pack_rewritten_by_another_process() {
        let (d, cache) = cache();
        let packing = cache.begin_packing();
        let keep = cache
            .put_bytes(b"kept: some bytes long enough to be compressed or not")
            .unwrap();
        let gone = cache
            .put_bytes(b"dropped: other bytes, also long enough for a test")
            .unwrap();
        packing.finish().unwrap();
        assert!(cache.contains(&keep.id) && cache.contains(&gone.id));
        // Another process (another Cache on the same directory) rewrites the pack.
        let other = Cache::new(d.path().join("cache"), 1);
        other.delete_many(&[gone.id], &|| {}).unwrap();
        assert!(!other.contains(&gone.id));
        // The first cache read the old index; it finds the object in the new pack.
        assert_eq!(
            cache.read(&keep.id, None).unwrap(),
            b"kept: some bytes long enough to be compressed or not"
        );
    }

    #[test]
    fn corrupt_object_is_detected() {
        let (_d, cache) = cache();
        let s = cache
            .put_bytes(b"some bytes that are long enough to matter, some bytes")
            .unwrap();
        let p = cache.object_path(&s.id);
        let mut bytes = std::fs::read(&p).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&p, bytes).unwrap();
        assert!(matches!(
            cache.verify(&s.id),
            Err(crate::Error::Cache(CacheError::Corrupt { .. }))
        ));
        assert!(matches!(
            cache.read(&s.id, None),
            Err(crate::Error::Cache(CacheError::Corrupt { .. }))
        ));
    }
}
