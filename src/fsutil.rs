//! Small filesystem helpers: atomic replace, temporary names, flushing to disk.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex, MutexGuard, PoisonError};

use rustc_hash::FxHashSet;

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

/// What an interrupted run must remove: the directories this process has named
/// temporary files in, and directories it owns outright (see
/// [`remove_own_temporaries`]).
#[derive(Default)]
struct Temporaries {
    dirs: FxHashSet<PathBuf>,
    owned: Vec<PathBuf>,
}

static TEMPORARIES: LazyLock<Mutex<Temporaries>> = LazyLock::new(Mutex::default);

fn temporaries() -> MutexGuard<'static, Temporaries> {
    TEMPORARIES.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A name for a temporary file next to `path`, unique within this process and
/// recognisable (`.NAME.dvt-tmp-PID-N`) so that a leftover can be identified.
pub fn temp_sibling(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    temp_in(path.parent().unwrap_or(Path::new("")), &name)
}

/// A unique temporary file name inside `dir`, in the same recognisable form.
pub fn temp_in(dir: &Path, prefix: &str) -> PathBuf {
    let mut t = temporaries();
    if !t.dirs.contains(dir) {
        t.dirs.insert(dir.to_path_buf());
    }
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    dir.join(format!(".{}.dvt-tmp-{}-{n}", temp_stem(prefix), pid()))
}

/// The part of a temporary name that `name` gives: `name` itself, cut (at a
/// character) where it would make the temporary name longer than the 255 bytes
/// a file name may have, although `name` itself fits.
fn temp_stem(name: &str) -> &str {
    // `.` + `.dvt-tmp-` + a pid (10 digits) + `-` + a counter (20 digits).
    const ROOM: usize = 255 - 1 - 9 - 10 - 1 - 20;
    let mut end = name.len().min(ROOM);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name[..end]
}

/// Marks `dir`, made by this process for its own use, to be deleted whole if the
/// process is interrupted (see [`remove_own_temporaries`]).
pub fn remove_if_interrupted(dir: &Path) {
    temporaries().owned.push(dir.to_path_buf());
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Says the process is being interrupted, before anything else the handler
/// does: from then on [`interrupted`] is true, so that the main thread, seeing
/// its work fail as the handler stops it, leaves the cleanup to the handler.
pub fn begin_interrupt() {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Whether the process is being interrupted ([`begin_interrupt`]): its main
/// thread should wait for the handler to finish rather than exit itself, and
/// not record its failing work as a failure of its own.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// The flag behind [`interrupted`], for code that polls one (gix's fetch), so
/// that an interrupt stops it too.
pub fn interrupt_flag() -> &'static AtomicBool {
    &INTERRUPTED
}

/// For a process that is being interrupted (Ctrl-C, `SIGTERM`): deletes every
/// temporary file and directory this process named ([`temp_sibling`],
/// [`temp_in`]) that is still there, and the directories marked with
/// [`remove_if_interrupted`]; returns how many it deleted. From then on, asking
/// for a temporary name blocks forever, so no thread starts a new one; the
/// caller is expected to exit. A file whose creation was under way is caught by
/// a second look shortly after.
pub fn remove_own_temporaries() -> usize {
    INTERRUPTED.store(true, Ordering::SeqCst);
    let t = temporaries();
    let tag = format!(".dvt-tmp-{}-", pid());
    let mut removed = 0;
    for _ in 0..10 {
        let mut found = 0;
        for dir in &t.dirs {
            let Ok(entries) = fs::read_dir(dir) else { continue };
            for entry in entries.flatten() {
                let name = entry.file_name();
                let name = name.to_string_lossy();
                if !(name.starts_with('.') && name.contains(&tag)) {
                    continue;
                }
                found += 1;
                let path = entry.path();
                let gone = if entry.file_type().is_ok_and(|k| k.is_dir()) {
                    remove_dir_in_use(&path)
                } else {
                    fs::remove_file(&path)
                };
                removed += usize::from(gone.is_ok());
            }
        }
        for dir in &t.owned {
            if dir.exists() {
                found += 1;
                removed += usize::from(remove_dir_in_use(dir).is_ok());
            }
        }
        if found == 0 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // Keep the lock: no new temporary name from here to the exit.
    std::mem::forget(t);
    removed
}

/// Deletes a directory that other threads may still be writing files into: it is
/// renamed first, so that they can no longer open paths inside it.
fn remove_dir_in_use(dir: &Path) -> std::io::Result<()> {
    let mut gone = dir.as_os_str().to_owned();
    gone.push("-gone");
    let gone = PathBuf::from(gone);
    fs::rename(dir, &gone)?;
    fs::remove_dir_all(&gone)
}

/// Deletes `paths`, dvt's temporary files and directories found by a scan (see
/// `workspace::Scan::leftovers`); one already gone is fine. Only for a caller
/// holding the repository lock.
pub fn remove_leftovers(paths: &[PathBuf]) -> std::io::Result<()> {
    for p in paths {
        let gone = match fs::symlink_metadata(p) {
            Ok(m) if m.is_dir() => fs::remove_dir_all(p),
            Ok(_) => fs::remove_file(p),
            Err(e) => Err(e),
        };
        match gone {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

/// Deletes what killed dvt processes left beside each of `paths`: temporary files
/// and directories named `.NAME.dvt-tmp-*` for that path's name. Reads each
/// parent directory once. Only for a caller holding the repository lock, as every
/// dvt process writing there does.
pub fn remove_stale_siblings(paths: &[&Path]) -> std::io::Result<()> {
    let mut by_parent: rustc_hash::FxHashMap<&Path, FxHashSet<&str>> = Default::default();
    for p in paths {
        if let (Some(parent), Some(name)) = (p.parent(), p.file_name().and_then(|n| n.to_str())) {
            by_parent.entry(parent).or_default().insert(temp_stem(name));
        }
    }
    for (parent, names) in by_parent {
        let entries = match fs::read_dir(parent) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            r => r?,
        };
        for entry in entries {
            let entry = entry?;
            let file_name = entry.file_name();
            let Some(stale) = file_name.to_str().and_then(|n| n.strip_prefix('.')) else {
                continue;
            };
            let Some((name, _)) = stale.rsplit_once(".dvt-tmp-") else {
                continue;
            };
            if !names.contains(name) {
                continue;
            }
            if entry.file_type()?.is_dir() {
                fs::remove_dir_all(entry.path())?;
            } else {
                fs::remove_file(entry.path())?;
            }
        }
    }
    Ok(())
}

/// Whether `name` is one of dvt's temporary files (never data; left only by a
/// process that was killed mid-write).
pub fn is_temp_name(name: &str) -> bool {
    name.starts_with('.') && name.contains(".dvt-tmp-")
}

/// The process id that named temporary file `name` (`.NAME.dvt-tmp-PID-N`).
pub fn temp_owner(name: &str) -> Option<u32> {
    let (_, tail) = name.rsplit_once(".dvt-tmp-")?;
    tail.split('-').next()?.parse().ok()
}

/// Whether process `pid` may be running on this machine: `false` only when
/// `/proc` shows that it is not (elsewhere, or when unsure, `true`).
pub fn process_may_run(pid: u32) -> bool {
    let proc = Path::new("/proc");
    !proc.join("self").exists() || proc.join(pid.to_string()).exists()
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
