//! SSH remotes (`ssh://[user@]host[:port]/path`): a directory on a server,
//! reached over SFTP with russh, behind object_store's `ObjectStore` so that
//! transfers, packs, `status -c` and `gc -c` work as they do for every store.
//!
//! A write goes to a hidden temporary name in the object's directory and is
//! renamed into place once complete, so an object appears whole or not at all;
//! listings skip those names, and `gc -c` deletes those an hour old. The
//! connection itself (route, host key check, login) is made in `ssh.rs`.

use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use futures::stream::{self, BoxStream, TryStreamExt};
use object_store::{
    CopyOptions, GetOptions, GetResult, GetResultPayload, ListResult, MultipartUpload, ObjectMeta, PutMode,
    PutMultipartOptions, PutOptions, PutResult, RenameOptions, UploadPart,
};
use russh::client::Handle;
use russh_sftp::client::RawSftpSession;
use russh_sftp::client::error::Error as SftpError;
use russh_sftp::protocol::{FileAttributes, OpenFlags, StatusCode};

use super::ssh::{HostCheck, Target, Via, open_ssh};
use super::*;

/// Bytes per SFTP write request: what every server accepts (fewer if it
/// says so, `limits@openssh.com`). 128 KiB writes were slower against
/// loopback OpenSSH (one 68 MiB object: 0.29-0.30 s against 0.22 s, and
/// 0.38-0.42 s against 0.34-0.35 s through a jump host).
const WRITE_CHUNK: usize = 32 * 1024;
/// Bytes per SFTP read request, or fewer if the server says so; a server
/// that sends less than asked is asked again for the rest. Measured on
/// loopback OpenSSH, one 68 MiB object: 0.45-0.5 s at 128 KiB against
/// 0.75-0.94 s at 32 KiB.
const READ_CHUNK: usize = 128 * 1024;
/// Requests of one transfer sent before the first is answered. For reads,
/// 4 MiB asked for at once; 64 took a 68 MiB object over a 50 ms link in 1.2
/// s instead of 1.6 s, but holds 8 MiB per file being read.
const IN_FLIGHT: usize = 32;
/// Write requests of one file sent before the first is answered: 1.5 MiB,
/// under the 2 MiB window OpenSSH gives a session. One 68 MiB object over a
/// 50 ms link (a delaying proxy): 4.9 s with 32, 3.9 s with 48, 3.5 s with
/// 64; on loopback 64 (the whole window) cost 0.08 s more, 48 nothing.
const WRITES_IN_FLIGHT: usize = 48;
/// Names of unfinished writes start with this.
const TMP_MARK: &str = ".dvt-tmp-";
/// Objects asked about (stat) at once, at least: a question is a small
/// request on a session already open, and over a link of 50 ms round trips
/// 200 objects asked 8 at a time took 1.3 s.
pub(super) const CHECKS_AT_ONCE: usize = 64;
/// The store name of this module's errors.
pub(super) const STORE: &str = "SSH";

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// The store: a lazily opened SFTP session, shared by every transfer.
#[derive(Debug, Clone)]
pub(super) struct Sftp {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    target: Target,
    /// The connection's SFTP sessions, or why it could not be made (not
    /// tried again: every transfer of the command would wait for the same
    /// failure).
    conn: tokio::sync::OnceCell<std::result::Result<Vec<Arc<Conn>>, ConnectError>>,
    /// The session the next operation takes, round the pool.
    next: std::sync::atomic::AtomicUsize,
}

/// The SFTP session, each request ended as soon as the SSH connection under
/// it closes. russh-sftp stops reading at the connection's end without
/// telling the requests in flight, which then wait out the request timeout
/// (300 s by default: a push to a server that died hung that long).
struct Session {
    raw: RawSftpSession,
    /// Resolves (with an error) when the SSH session ends: its sender lives
    /// in the connection's handler.
    alive: tokio::sync::watch::Receiver<()>,
}

type SftpResult<T> = std::result::Result<T, SftpError>;
use russh_sftp::protocol::{Attrs, Data, Handle as FileHandle, Name, Packet, Status};

impl Session {
    /// `request`, or an error once the connection is gone. The request is
    /// polled first, and at once: it is sent on its first poll, and writes
    /// must reach the server in order (tokio's `select!` may skip a poll when
    /// the task's budget runs out, which reordered them).
    async fn guard<T>(&self, request: impl std::future::Future<Output = SftpResult<T>>) -> SftpResult<T> {
        let mut alive = self.alive.clone();
        let closed = alive.changed();
        let (request, closed) = (std::pin::pin!(request), std::pin::pin!(closed));
        match futures::future::select(request, closed).await {
            futures::future::Either::Left((answer, _)) => answer,
            futures::future::Either::Right(_) => Err(SftpError::UnexpectedBehavior("the SSH connection closed".into())),
        }
    }
    async fn open(&self, path: &str, flags: OpenFlags, attrs: FileAttributes) -> SftpResult<FileHandle> {
        self.guard(self.raw.open(path, flags, attrs)).await
    }
    async fn close(&self, handle: impl Into<String>) -> SftpResult<Status> {
        self.guard(self.raw.close(handle)).await
    }
    async fn read(&self, handle: &str, offset: u64, len: u32) -> SftpResult<Data> {
        self.guard(self.raw.read(handle, offset, len)).await
    }
    async fn write(&self, handle: &str, offset: u64, data: Vec<u8>) -> SftpResult<Status> {
        self.guard(self.raw.write(handle, offset, data)).await
    }
    async fn opendir(&self, path: &str) -> SftpResult<FileHandle> {
        self.guard(self.raw.opendir(path)).await
    }
    async fn readdir(&self, handle: &str) -> SftpResult<Name> {
        self.guard(self.raw.readdir(handle)).await
    }
    async fn remove(&self, path: impl Into<String>) -> SftpResult<Status> {
        self.guard(self.raw.remove(path)).await
    }
    async fn mkdir(&self, path: &str, attrs: FileAttributes) -> SftpResult<Status> {
        self.guard(self.raw.mkdir(path, attrs)).await
    }
    async fn stat(&self, path: impl Into<String>) -> SftpResult<Attrs> {
        self.guard(self.raw.stat(path)).await
    }
    async fn rename(&self, from: &str, to: &str) -> SftpResult<Status> {
        self.guard(self.raw.rename(from, to)).await
    }
    async fn extended(&self, request: &str, data: Vec<u8>) -> SftpResult<Packet> {
        self.guard(self.raw.extended(request, data)).await
    }
}

struct Conn {
    /// Keeps the SSH connection open.
    _keep: Arc<Keep>,
    sftp: Arc<Session>,
    /// Whether the server renames over an existing file atomically
    /// (`posix-rename@openssh.com`).
    posix_rename: bool,
    /// Bytes per read and per write request.
    read_chunk: usize,
    write_chunk: usize,
}

/// The SSH connection and what it goes through, open while a session uses it.
struct Keep {
    _ssh: Handle<HostCheck>,
    _route: Vec<Via>,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("posix_rename", &self.posix_rename)
            .field("read_chunk", &self.read_chunk)
            .field("write_chunk", &self.write_chunk)
            .finish()
    }
}

impl std::fmt::Display for Sftp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SFTP({}@{})", self.inner.target.user, self.inner.target.server())
    }
}

impl Sftp {
    pub(super) fn new(target: Target) -> Sftp {
        Sftp {
            inner: Arc::new(Inner {
                target,
                conn: tokio::sync::OnceCell::new(),
                next: std::sync::atomic::AtomicUsize::new(0),
            }),
        }
    }
}

impl Sftp {
    /// Deletes the temporary files of writes below `prefix` last modified
    /// more than `age` ago: what killed pushes left (a live push keeps
    /// writing its own).
    pub(super) async fn remove_leftovers(&self, prefix: &StorePath, age: Duration) -> object_store::Result<()> {
        let conn = self.inner.conn().await?;
        let cutoff = std::time::SystemTime::now() - age;
        for meta in walk(conn.clone(), prefix.clone(), true).await? {
            if std::time::SystemTime::from(meta.last_modified) < cutoff {
                match conn.sftp.remove(remote_path(&meta.location)).await {
                    Err(e) if !is_missing(&e) => return Err(store_error(meta.location.as_ref(), e)),
                    _ => {}
                }
            }
        }
        Ok(())
    }
}

impl Sftp {
    /// Whether connecting may ask on the terminal (`ask_password`, a host
    /// key known_hosts lacks).
    pub(super) fn asks(&self) -> bool {
        super::ssh::may_ask(&self.inner.target)
    }

    /// Connects and logs in now rather than at the first request.
    pub(super) async fn connect_now(&self) -> object_store::Result<()> {
        self.inner.conn().await.map(drop)
    }
}

impl Inner {
    /// One of the connection's SFTP sessions, in turn: an operation (a
    /// file's open, reads or writes, close) keeps to the one it was given.
    async fn conn(&self) -> object_store::Result<Arc<Conn>> {
        let made = self.conn.get_or_init(|| async { connect(&self.target).await }).await;
        match made {
            Ok(pool) => {
                let at = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                Ok(pool[at % pool.len()].clone())
            }
            Err(failure) => Err(object_store::Error::Generic {
                store: STORE,
                source: Box::new(failure.clone()),
            }),
        }
    }
}

/// SFTP sessions one connection carries. Each session is an SSH channel
/// with a window of its own (OpenSSH's: 2 MiB a client may send before the
/// server acknowledges), and a process of its own on the server: over a
/// link of 50 ms round trips one session moves at most 40 MiB/s whatever
/// the requests in flight. OpenSSH allows 10 per connection (`MaxSessions`).
const SESSIONS: usize = 4;

/// Opens an SFTP session on `ssh`.
async fn open_session(
    ssh: &Handle<HostCheck>,
    t: &Target,
    fail: &impl Fn(&str, &(dyn std::error::Error + 'static)) -> String,
) -> std::result::Result<RawSftpSession, String> {
    let channel = ssh
        .channel_open_session()
        .await
        .map_err(|e| fail("cannot open a session", &e))?;
    channel
        .request_subsystem(true, "sftp")
        .await
        .map_err(|e| fail("cannot start SFTP", &e))?;
    Ok(RawSftpSession::new_with_config(
        channel.into_stream(),
        russh_sftp::client::Config {
            request_timeout_secs: t.request_timeout.as_secs(),
            ..Default::default()
        },
    ))
}

async fn connect(t: &Target) -> std::result::Result<Vec<Arc<Conn>>, ConnectError> {
    let mut route = Vec::new();
    let (ssh, alive) = open_ssh(t, &mut route).await?;
    let server = t.server();
    let fail =
        |what: &str, e: &(dyn std::error::Error + 'static)| format!("`{server}`: {what}: {}", crate::error_chain(e));
    // Every session at once (each takes a few round trips to start); the
    // first must start, the others may not (a server that allows fewer is
    // used with what it allows).
    let mut opened = futures::future::join_all((0..SESSIONS).map(|_| async {
        let raw = open_session(&ssh, t, &fail).await?;
        let version = raw
            .init()
            .await
            .map_err(|e| fail("the server does not speak SFTP", &e))?;
        Ok::<_, String>((raw, version))
    }))
    .await
    .into_iter();
    let (sftp, version) = opened.next().unwrap_or_else(|| Err("no session".into()))?;
    let more: Vec<RawSftpSession> = opened.filter_map(|r| r.ok().map(|(raw, _)| raw)).collect();
    let posix_rename = version.extensions.contains_key("posix-rename@openssh.com");
    let (mut read_chunk, mut write_chunk) = (READ_CHUNK, WRITE_CHUNK);
    if version.extensions.contains_key("limits@openssh.com")
        && let Ok(limits) = sftp.limits().await
    {
        let most = |limit: u64, ours: usize| match limit {
            0 => ours,
            l => usize::try_from(l).unwrap_or(ours).min(ours),
        };
        read_chunk = most(limits.max_read_len, read_chunk);
        write_chunk = most(limits.max_write_len, write_chunk);
    }
    tracing::debug!(
        "SFTP on `{server}`: version {}, posix-rename {}, {IN_FLIGHT} reads of {} KiB and {WRITES_IN_FLIGHT} writes of {} KiB in flight",
        version.version,
        match posix_rename {
            true => "yes",
            false => "no (replace is remove, then rename)",
        },
        read_chunk / 1024,
        write_chunk / 1024
    );
    let keep = Arc::new(Keep {
        _ssh: ssh,
        _route: route,
    });
    let pool: Vec<Arc<Conn>> = std::iter::once(sftp)
        .chain(more)
        .map(|raw| {
            Arc::new(Conn {
                _keep: keep.clone(),
                sftp: Arc::new(Session {
                    raw,
                    alive: alive.clone(),
                }),
                posix_rename,
                read_chunk,
                write_chunk,
            })
        })
        .collect();
    tracing::debug!("SFTP on `{server}`: {} sessions", pool.len());
    Ok(pool)
}

/// The SFTP path of `location`: from `/`, or, below a first `~`, from the
/// login directory. Store paths percent-encode some characters (`~`, `%`,
/// `#`, …); the server's names are the decoded ones.
fn remote_path(location: &StorePath) -> String {
    let parts: Vec<String> = location.parts().map(|p| percent_decode(p.as_ref())).collect();
    match parts.split_first() {
        Some((first, rest)) if first == "~" => match rest.is_empty() {
            true => ".".to_string(),
            false => rest.join("/"),
        },
        _ => format!("/{}", parts.join("/")),
    }
}

fn parent(path: &str) -> Option<&str> {
    path.rsplit_once('/').map(|(p, _)| if p.is_empty() { "/" } else { p })
}

fn is_missing(e: &SftpError) -> bool {
    matches!(e, SftpError::Status(s) if s.status_code == StatusCode::NoSuchFile)
}

fn store_error(location: &str, e: SftpError) -> object_store::Error {
    match is_missing(&e) {
        true => object_store::Error::NotFound {
            path: location.to_string(),
            source: Box::new(e),
        },
        false => object_store::Error::Generic {
            store: STORE,
            source: format!("`{location}`: {e}").into(),
        },
    }
}

/// An SSH string: its length, then its bytes.
fn ssh_string(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

impl Conn {
    /// Creates `dir` and its missing parents (others may be creating them too).
    async fn make_dirs(&self, dir: &str) -> object_store::Result<()> {
        let mut missing = Vec::new();
        let mut at = Some(dir);
        while let Some(d) = at {
            match self.sftp.stat(d).await {
                Ok(_) => break,
                Err(e) if is_missing(&e) => missing.push(d.to_string()),
                Err(e) => return Err(store_error(d, e)),
            }
            at = parent(d).filter(|p| *p != d && *p != "." && !p.is_empty());
        }
        for d in missing.iter().rev() {
            if let Err(e) = self.sftp.mkdir(d.as_str(), FileAttributes::default()).await
                && !self.sftp.stat(d.as_str()).await.is_ok_and(|a| a.attrs.is_dir())
            {
                return Err(store_error(d, e));
            }
        }
        Ok(())
    }

    /// Opens a new temporary file beside `dest`, for writing. Returns its path
    /// and handle.
    async fn create_tmp(&self, dest: &str) -> object_store::Result<(String, String)> {
        let (dir, name) = dest.rsplit_once('/').unwrap_or((".", dest));
        let tmp = format!(
            "{dir}/{TMP_MARK}{name}.{}.{}",
            std::process::id(),
            TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let flags = OpenFlags::CREATE | OpenFlags::TRUNCATE | OpenFlags::WRITE;
        let opened = match self.sftp.open(tmp.as_str(), flags, FileAttributes::default()).await {
            Err(e) if is_missing(&e) => {
                self.make_dirs(dir).await?;
                self.sftp.open(tmp.as_str(), flags, FileAttributes::default()).await
            }
            r => r,
        };
        let handle = opened.map_err(|e| store_error(&tmp, e))?.handle;
        Ok((tmp, handle))
    }

    /// Moves the finished `tmp` to `dest`, replacing what is there; on failure
    /// `tmp` is deleted.
    async fn move_into_place(&self, tmp: &str, dest: &str) -> object_store::Result<()> {
        let moved = match self.posix_rename {
            true => {
                let mut data = Vec::new();
                ssh_string(&mut data, tmp);
                ssh_string(&mut data, dest);
                match self.sftp.extended("posix-rename@openssh.com", data).await {
                    Ok(russh_sftp::protocol::Packet::Status(s)) if s.status_code == StatusCode::Ok => Ok(()),
                    Ok(russh_sftp::protocol::Packet::Status(s)) => Err(SftpError::Status(s)),
                    Ok(_) => Err(SftpError::UnexpectedPacket),
                    Err(e) => Err(e),
                }
            }
            // SFTP's own rename refuses to replace a file on many servers:
            // then the old one goes first.
            false => match self.sftp.rename(tmp, dest).await {
                Err(_) if self.sftp.stat(dest).await.is_ok() => {
                    let _ = self.sftp.remove(dest).await;
                    self.sftp.rename(tmp, dest).await.map(|_| ())
                }
                r => r.map(|_| ()),
            },
        };
        if let Err(e) = moved {
            let _ = self.sftp.remove(tmp).await;
            return Err(store_error(dest, e));
        }
        Ok(())
    }
}

/// Writes `data` at `offset` of the open file `handle` (the file `shown`), a
/// chunk per request, several requests at once, sent in order (some servers,
/// rclone's among them, take a file's bytes only in order). A chunk is copied
/// into its request only when the request is sent, so a part of 8 MiB is not
/// held twice while it goes out.
async fn write_at(conn: &Conn, handle: &str, shown: &str, offset: u64, data: PutPayload) -> object_store::Result<()> {
    let mut pieces = Vec::new();
    let mut at = offset;
    for part in data.iter() {
        for start in (0..part.len()).step_by(conn.write_chunk) {
            let chunk = part.slice(start..(start + conn.write_chunk).min(part.len()));
            let len = chunk.len() as u64;
            pieces.push((at, chunk));
            at += len;
        }
    }
    stream::iter(pieces)
        .map(|(at, chunk)| async move { conn.sftp.write(handle, at, chunk.to_vec()).await.map(|_| ()) })
        .buffered(WRITES_IN_FLIGHT)
        .try_collect::<Vec<()>>()
        .await
        .map_err(|e| store_error(shown, e))?;
    Ok(())
}

/// Reads `len` bytes at `offset` of `handle` (a server may answer a read with
/// fewer bytes than asked: the rest is asked again).
async fn read_at(sftp: &Session, handle: &str, offset: u64, len: usize) -> std::result::Result<Bytes, SftpError> {
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        let want = (len - out.len()) as u32;
        match sftp.read(handle, offset + out.len() as u64, want).await {
            Ok(d) if !d.data.is_empty() => out.extend_from_slice(&d.data),
            Ok(_) => break,
            Err(SftpError::Status(s)) if s.status_code == StatusCode::Eof => break,
            Err(e) => return Err(e),
        }
    }
    if out.len() < len {
        return Err(SftpError::UnexpectedBehavior(format!(
            "the file ended {} bytes early (it changed while it was read)",
            len - out.len()
        )));
    }
    Ok(Bytes::from(out))
}

/// Every file below `dir` (none if it does not exist), by walking it a level
/// at a time, the directories of a level listed at once; with `unfinished`,
/// only the temporary files of writes instead.
async fn walk(conn: Arc<Conn>, dir: StorePath, unfinished: bool) -> object_store::Result<Vec<ObjectMeta>> {
    let mut out = Vec::new();
    let mut level = vec![dir];
    while !level.is_empty() {
        let listed: Vec<_> = stream::iter(level)
            .map(|d| {
                let conn = conn.clone();
                async move { read_dir(&conn, &d, unfinished).await.map(|entries| (d, entries)) }
            })
            .buffer_unordered(16)
            .try_collect()
            .await?;
        level = Vec::new();
        for (d, entries) in listed {
            for (name, attrs) in entries {
                let child = d.clone().join(name.as_str());
                match (attrs.is_dir(), name.starts_with(TMP_MARK)) {
                    (true, _) => level.push(child),
                    (false, tmp) if tmp == unfinished => out.push(meta_of(child, &attrs)),
                    (false, _) => {}
                }
            }
        }
    }
    Ok(out)
}

/// The entries of `dir` but `.`, `..` and, unless `unfinished`, the
/// temporary files of writes; none if it does not exist.
async fn read_dir(
    conn: &Conn,
    dir: &StorePath,
    unfinished: bool,
) -> object_store::Result<Vec<(String, FileAttributes)>> {
    let path = remote_path(dir);
    let handle = match conn.sftp.opendir(path.as_str()).await {
        Ok(h) => h.handle,
        Err(e) if is_missing(&e) => return Ok(Vec::new()),
        Err(e) => return Err(store_error(&path, e)),
    };
    let mut out = Vec::new();
    let result = loop {
        match conn.sftp.readdir(handle.as_str()).await {
            Ok(name) => out.extend(
                name.files
                    .into_iter()
                    .filter(|f| {
                        !matches!(f.filename.as_str(), "." | "..") && (unfinished || !f.filename.starts_with(TMP_MARK))
                    })
                    .map(|f| (f.filename, f.attrs)),
            ),
            Err(SftpError::Status(s)) if s.status_code == StatusCode::Eof => break Ok(out),
            Err(e) => break Err(store_error(&path, e)),
        }
    };
    let _ = conn.sftp.close(handle).await;
    result
}

fn meta_of(location: StorePath, attrs: &FileAttributes) -> ObjectMeta {
    let modified = std::time::UNIX_EPOCH + Duration::from_secs(u64::from(attrs.mtime.unwrap_or(0)));
    ObjectMeta {
        location,
        last_modified: modified.into(),
        size: attrs.size.unwrap_or(0),
        e_tag: None,
        version: None,
    }
}

#[async_trait]
impl ObjectStore for Sftp {
    async fn put_opts(
        &self,
        location: &StorePath,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        let conn = self.inner.conn().await?;
        let dest = remote_path(location);
        let (tmp, handle) = conn.create_tmp(&dest).await?;
        let written = write_at(&conn, &handle, &tmp, 0, payload).await;
        let closed = conn.sftp.close(handle).await.map_err(|e| store_error(&tmp, e));
        if let Err(e) = written.and(closed.map(|_| ())) {
            let _ = conn.sftp.remove(tmp).await;
            return Err(e);
        }
        if matches!(opts.mode, PutMode::Create) && conn.sftp.stat(dest.as_str()).await.is_ok() {
            let _ = conn.sftp.remove(tmp).await;
            return Err(object_store::Error::AlreadyExists {
                path: location.to_string(),
                source: "it exists".into(),
            });
        }
        conn.move_into_place(&tmp, &dest).await?;
        Ok(PutResult {
            e_tag: None,
            version: None,
            extensions: Default::default(),
        })
    }

    async fn put_multipart_opts(
        &self,
        location: &StorePath,
        _opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        let conn = self.inner.conn().await?;
        let dest = remote_path(location);
        let (tmp, handle) = conn.create_tmp(&dest).await?;
        Ok(Box::new(Upload {
            conn,
            handle: Arc::from(handle),
            tmp: Arc::from(tmp),
            dest,
            offset: 0,
            written: Arc::new(tokio::sync::watch::Sender::new(0)),
        }))
    }

    async fn get_opts(&self, location: &StorePath, options: GetOptions) -> object_store::Result<GetResult> {
        let conn = self.inner.conn().await?;
        let path = remote_path(location);
        let shown = location.to_string();
        // The file's attributes and, unless only they are asked for, a handle
        // to read it: both requests in one round trip.
        let stat = conn.sftp.stat(path.as_str());
        let (attrs, opened) = match options.head {
            true => (stat.await, None),
            false => {
                let open = conn
                    .sftp
                    .open(path.as_str(), OpenFlags::READ, FileAttributes::default());
                let (attrs, opened) = tokio::join!(stat, open);
                (attrs, Some(opened.map(|h| Arc::<str>::from(h.handle))))
            }
        };
        let close = |opened: Option<std::result::Result<Arc<str>, SftpError>>| async {
            if let Some(Ok(h)) = opened {
                let _ = conn.sftp.close(h.as_ref()).await;
            }
        };
        let attrs = match attrs {
            Ok(a) if !a.attrs.is_dir() => a.attrs,
            Ok(_) => {
                close(opened).await;
                return Err(object_store::Error::NotFound {
                    path: shown,
                    source: "it is a directory".into(),
                });
            }
            Err(e) => {
                close(opened).await;
                return Err(store_error(&shown, e));
            }
        };
        let meta = meta_of(location.clone(), &attrs);
        let range = match &options.range {
            Some(r) => match r.as_range(meta.size) {
                Ok(range) => range,
                Err(e) => {
                    close(opened).await;
                    return Err(object_store::Error::Generic {
                        store: STORE,
                        source: Box::new(e),
                    });
                }
            },
            None => 0..meta.size,
        };
        let payload: BoxStream<'static, object_store::Result<Bytes>> = match opened {
            None => stream::empty().boxed(),
            Some(opened) if range.is_empty() => {
                close(Some(opened)).await;
                stream::empty().boxed()
            }
            Some(opened) => {
                let handle = opened.map_err(|e| store_error(&shown, e))?;
                let chunk = conn.read_chunk;
                let starts: Vec<u64> = (range.start..range.end).step_by(chunk).collect();
                let end = range.end;
                let (reading, closing) = (conn.clone(), conn.clone());
                let (h, close_h) = (handle.clone(), handle);
                stream::iter(starts)
                    .map(move |at| {
                        let (conn, h, shown) = (reading.clone(), h.clone(), shown.clone());
                        async move {
                            let len = (end - at).min(chunk as u64) as usize;
                            read_at(&conn.sftp, &h, at, len)
                                .await
                                .map_err(|e| store_error(&shown, e))
                        }
                    })
                    .buffered(IN_FLIGHT)
                    .chain(
                        stream::once(async move {
                            let _ = closing.sftp.close(close_h.as_ref()).await;
                            None
                        })
                        .filter_map(|x: Option<object_store::Result<Bytes>>| async move { x }),
                    )
                    .boxed()
            }
        };
        Ok(GetResult {
            payload: GetResultPayload::Stream(payload),
            meta,
            range,
            attributes: Default::default(),
            extensions: Default::default(),
        })
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<StorePath>>,
    ) -> BoxStream<'static, object_store::Result<StorePath>> {
        let inner = self.inner.clone();
        locations
            .map(move |location| {
                let inner = inner.clone();
                async move {
                    let location = location?;
                    let conn = inner.conn().await?;
                    conn.sftp
                        .remove(remote_path(&location))
                        .await
                        .map_err(|e| store_error(location.as_ref(), e))?;
                    Ok(location)
                }
            })
            .buffer_unordered(IN_FLIGHT)
            .boxed()
    }

    fn list(&self, prefix: Option<&StorePath>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        let inner = self.inner.clone();
        let dir = prefix.cloned().unwrap_or_default();
        stream::once(async move {
            let conn = inner.conn().await?;
            walk(conn, dir, false).await
        })
        .map_ok(|metas| stream::iter(metas.into_iter().map(Ok)))
        .try_flatten()
        .boxed()
    }

    async fn list_with_delimiter(&self, prefix: Option<&StorePath>) -> object_store::Result<ListResult> {
        let conn = self.inner.conn().await?;
        let dir = prefix.cloned().unwrap_or_default();
        let mut result = ListResult {
            common_prefixes: Vec::new(),
            objects: Vec::new(),
            extensions: Default::default(),
        };
        for (name, attrs) in read_dir(&conn, &dir, false).await? {
            let child = dir.clone().join(name.as_str());
            match attrs.is_dir() {
                true => result.common_prefixes.push(child),
                false => result.objects.push(meta_of(child, &attrs)),
            }
        }
        Ok(result)
    }

    async fn copy_opts(&self, from: &StorePath, to: &StorePath, options: CopyOptions) -> object_store::Result<()> {
        let bytes = self.get(from).await?.bytes().await?;
        let mode = match options.mode {
            object_store::CopyMode::Create => PutMode::Create,
            _ => PutMode::Overwrite,
        };
        self.put_opts(
            to,
            PutPayload::from(bytes),
            PutOptions {
                mode,
                ..Default::default()
            },
        )
        .await
        .map(|_| ())
    }

    async fn rename_opts(&self, from: &StorePath, to: &StorePath, _options: RenameOptions) -> object_store::Result<()> {
        let conn = self.inner.conn().await?;
        let dest = remote_path(to);
        if let Some(dir) = parent(&dest) {
            conn.make_dirs(dir).await?;
        }
        conn.move_into_place(&remote_path(from), &dest).await
    }
}

/// A big upload: parts written in place, one after the other, into a
/// temporary file, which is renamed to its name when complete.
#[derive(Debug)]
struct Upload {
    conn: Arc<Conn>,
    handle: Arc<str>,
    tmp: Arc<str>,
    dest: String,
    offset: u64,
    /// How many bytes are written so far (`u64::MAX` once a part failed): a
    /// part starts when the parts before it are written.
    written: Arc<tokio::sync::watch::Sender<u64>>,
}

#[async_trait]
impl MultipartUpload for Upload {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        let at = self.offset;
        let len = data.content_length() as u64;
        self.offset += len;
        let (conn, handle, tmp, written) = (
            self.conn.clone(),
            self.handle.clone(),
            self.tmp.clone(),
            self.written.clone(),
        );
        Box::pin(async move {
            let mut turn = written.subscribe();
            let ready = turn.wait_for(|w| *w == at || *w == u64::MAX).await.ok().map(|w| *w);
            if ready != Some(at) {
                return Err(object_store::Error::Generic {
                    store: STORE,
                    source: format!("`{tmp}`: an earlier part failed").into(),
                });
            }
            let result = write_at(&conn, &handle, &tmp, at, data).await;
            written.send_replace(if result.is_ok() { at + len } else { u64::MAX });
            result
        })
    }

    async fn complete(&mut self) -> object_store::Result<PutResult> {
        if let Err(e) = self.conn.sftp.close(self.handle.as_ref()).await {
            let _ = self.conn.sftp.remove(self.tmp.as_ref()).await;
            return Err(store_error(&self.tmp, e));
        }
        self.conn.move_into_place(&self.tmp, &self.dest).await?;
        Ok(PutResult {
            e_tag: None,
            version: None,
            extensions: Default::default(),
        })
    }

    async fn abort(&mut self) -> object_store::Result<()> {
        let _ = self.conn.sftp.close(self.handle.as_ref()).await;
        let _ = self.conn.sftp.remove(self.tmp.as_ref()).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(
            remote_path(&StorePath::from("srv/dvt/objects/ab")),
            "/srv/dvt/objects/ab"
        );
        assert_eq!(remote_path(&StorePath::from("~/dvt/x")), "dvt/x");
        assert_eq!(remote_path(&StorePath::from("~")), ".");
        let odd = StorePath::from("srv").join("my data #1 ~%").join("a.csv");
        assert_eq!(remote_path(&odd), "/srv/my data #1 ~%/a.csv");
        assert_eq!(parent("/srv"), Some("/"));
        assert_eq!(parent("dvt/x"), Some("dvt"));
    }
}
