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

mod inventory;
mod packing;
mod read;
mod stash;
mod stored;
mod verify;

pub use packing::Packing;
pub use read::ObjectReader;
use stash::Stash;
pub use stash::{KeepDecoded, LaidOut};
pub use stored::StoredWriter;
use verify::stored_content;
pub use verify::{OutgoingCheck, StoredVerifier, decode_prefix, decode_stored, verify_stored};

/// The first bytes of an object stored without compression.
pub const RAW_HEADER: &[u8; 8] = b"dvtraw1\n";
/// The first bytes of a zstd frame.
pub const ZSTD_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];

/// Content up to this size is read, hashed and compressed in memory in one go.
pub const SMALL_OBJECT: u64 = 8 * 1024 * 1024;
/// Why an object whose bytes decode is corrupt all the same.
const MISMATCH: &str = "content does not match its id (truncated or altered)";
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

    /// The cache's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Whether the cache holds any object, loose or packed (without reading one).
    pub fn holds_objects(&self) -> bool {
        ["objects", "packs"].iter().any(|d| {
            fs::read_dir(self.root.join(d))
                .map(|mut entries| entries.next().is_some())
                .unwrap_or(false)
        })
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
            // std's own `File::read_to_end` reads into the spare capacity; through
            // fs_err's wrapper, the generic one zeroed it first.
            f.file_mut().read_to_end(&mut data)?;
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

/// Why decoding failed: the stored bytes' fault, or the error itself.
fn fault_reason(e: &std::io::Error) -> String {
    crate::frames::decode_fault(e).unwrap_or_else(|| e.to_string())
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
