//! Small filesystem helpers: atomic replace, temporary names, flushing to disk.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use fs_err as fs;

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// The most bytes handed to one `write` of a new file. Linux gives a buffered write
/// page-cache folios as large as the write (ext4, 6.x). Here, on a VM that hands free
/// 2 MiB blocks back to its host, writes of 1–2 MiB took 0.6–2.7 s per 2 GiB and
/// writes of 256 KiB a steady 0.66–0.69 s (`dd`, five runs each, alternating).
/// Pack files, written by many small appends, are the exception (see `crate::pack`).
pub const WRITE_CHUNK: usize = 256 << 10;

fn pid() -> u32 {
    static PID: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *PID.get_or_init(std::process::id)
}

/// A name for a temporary file next to `path`, unique within this process and
/// recognisable (`.NAME.dvt-tmp-PID-N`) so that a leftover can be identified.
pub fn temp_sibling(path: &Path) -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = path
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.dvt-tmp-{}-{n}", pid()))
}

/// A unique temporary file name inside `dir`, in the same recognisable form.
pub fn temp_in(dir: &Path, prefix: &str) -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    dir.join(format!(".{prefix}.dvt-tmp-{}-{n}", pid()))
}

/// Whether `name` is one of dvt's temporary files (never data; left only by a
/// process that was killed mid-write).
pub fn is_temp_name(name: &str) -> bool {
    name.starts_with('.') && name.contains(".dvt-tmp-")
}

/// Replaces `path` with `bytes` atomically: a temporary file beside it is written,
/// flushed to disk and renamed over it. A crash leaves either the old or the new file.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = temp_sibling(path);
    let result = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_data()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Flushes every written page of the filesystem holding `path` to disk.
///
/// Objects are written without a flush each (that would cost a disk round trip
/// per file); one `syncfs` before a pointer file is written makes sure that a
/// pointer never names objects that a power cut could lose.
#[allow(unsafe_code)]
pub fn sync_filesystem(path: &Path) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let dir = fs::File::open(path)?;
    // SAFETY: `syncfs` only reads the descriptor, which `dir` keeps open.
    let rc = unsafe { libc::syncfs(dir.as_raw_fd()) };
    if rc != 0 {
        let e = std::io::Error::last_os_error();
        return Err(std::io::Error::new(
            e.kind(),
            format!("failed to flush `{}` to disk: {e}", path.display()),
        ));
    }
    Ok(())
}

/// Reads until `buf` is full or the reader ends; returns how many bytes were read.
pub fn read_full(reader: &mut impl std::io::Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Writes all of `buf` to `w` in writes of at most [`WRITE_CHUNK`] bytes.
pub fn write_chunked(w: &mut (impl Write + ?Sized), buf: &[u8]) -> std::io::Result<()> {
    buf.chunks(WRITE_CHUNK).try_for_each(|piece| w.write_all(piece))
}

/// Reads `len` bytes of `file` from offset `start` in chunks of [`WRITE_CHUNK`]
/// (small enough to stay in the CPU's cache between reading and using them),
/// handing each to `f`. Positional reads: the file's offset does not move.
pub fn read_range(file: &std::fs::File, start: u64, len: u64, mut f: impl FnMut(&[u8])) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0u8; WRITE_CHUNK.min(len as usize)];
    let mut pos = 0u64;
    while pos < len {
        let want = ((len - pos) as usize).min(buf.len());
        file.read_exact_at(&mut buf[..want], start + pos)?;
        f(&buf[..want]);
        pos += want as u64;
    }
    Ok(())
}
