//! Reading objects out of the cache: whole, streamed, or copied into a file, verified.

use std::borrow::Cow;

use super::*;

impl Cache {
    /// Reads object `id` whole, verifying its hash. `for_path` names the
    /// workspace path that needs it, for error messages.
    pub fn read(&self, id: &ObjectId, for_path: Option<&str>) -> Result<Vec<u8>> {
        self.with_stored(id, for_path, |stored| {
            stored_content(id, stored)
                .map(Cow::into_owned)
                .map_err(|reason: String| corrupt(id, for_path, &reason).into())
        })
    }

    /// Writes the content of object `id`, of at most [`SMALL_OBJECT`] bytes, to
    /// `out`, verified first: nothing is written unless it matches. A raw
    /// object's content is written straight from the buffer it was read into.
    pub fn write_small(&self, id: &ObjectId, for_path: Option<&str>, out: &mut impl Write) -> Result<u64> {
        self.with_stored(id, for_path, |stored| {
            let content = stored_content(id, stored).map_err(|reason| corrupt(id, for_path, &reason))?;
            crate::fsutil::write_chunked(out, &content)?;
            Ok(content.len() as u64)
        })
    }

    /// Calls `f` with object `id`'s stored form, read whole and unverified (see
    /// [`with_read`]).
    pub(super) fn with_stored<T>(
        &self,
        id: &ObjectId,
        for_path: Option<&str>,
        f: impl FnOnce(&[u8]) -> Result<T>,
    ) -> Result<T> {
        with_read(self.open_object(id, for_path)?, id, for_path, f)
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
            return Err(corrupt(id, for_path, MISMATCH).into());
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
                    return Err(corrupt(id, for_path, MISMATCH).into());
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
                    corrupt(&self.id, self.path.as_deref(), MISMATCH),
                ));
            }
            self.done = true;
            return Ok(0);
        }
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
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

/// Calls `f` with all of `src`, the stored form of object `id`, read into a
/// buffer the thread keeps: not zeroed and allocated for every object, as a new
/// `Vec` would be. (1 GiB of 100 KB objects spent a third of a push's user time
/// zeroing them.)
pub(super) fn with_read<T>(
    mut src: Slice,
    id: &ObjectId,
    for_path: Option<&str>,
    f: impl FnOnce(&[u8]) -> Result<T>,
) -> Result<T> {
    let n = src.len() as usize;
    READ_BUFFER.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) if n <= KEPT_READ_BUFFER => {
            if buf.len() < n {
                buf.resize(n, 0);
            }
            src.read_exact(&mut buf[..n]).map_err(|e| read_error(id, for_path, e))?;
            f(&buf[..n])
        }
        // A big object, or `f` reading another: a buffer of its own.
        _ => f(&src.read_all().map_err(|e| read_error(id, for_path, e))?),
    })
}

/// The largest stored object [`with_read`] reads into [`READ_BUFFER`];
/// a bigger one gets a buffer of its own, so that no thread holds on to megabytes.
const KEPT_READ_BUFFER: usize = 1 << 20;

thread_local! {
    static READ_BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}
