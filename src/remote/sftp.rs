//! SSH remotes (`ssh://[user@]host[:port]/path`): a directory on a server,
//! reached over SFTP with russh, behind object_store's `ObjectStore` so that
//! transfers, packs, `status -c` and `gc -c` work as they do for every store.
//!
//! A write goes to a hidden temporary name in the object's directory and is
//! renamed into place once complete, so an object appears whole or not at all;
//! listings skip those names, and `gc -c` deletes those an hour old. The
//! server's host key must be in `known_hosts`
//! (`~/.ssh/known_hosts`, or the remote's `known_hosts` option), as OpenSSH's
//! `StrictHostKeyChecking=yes` wants it: an unknown or changed key stops the
//! connection before anything is sent.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use futures::stream::{self, BoxStream, TryStreamExt};
use object_store::{
    CopyOptions, GetOptions, GetResult, GetResultPayload, ListResult, MultipartUpload, ObjectMeta, PutMode,
    PutMultipartOptions, PutOptions, PutResult, RenameOptions, UploadPart,
};
use russh::client::Handle;
use russh::keys::agent::AgentIdentity;
use russh::keys::{HashAlg, PrivateKeyWithHashAlg};
use russh_sftp::client::RawSftpSession;
use russh_sftp::client::error::Error as SftpError;
use russh_sftp::protocol::{FileAttributes, OpenFlags, StatusCode};

use super::ssh_config::Proxy;
use super::*;

/// Bytes per SFTP write request: what every server accepts (fewer if it
/// says so, `limits@openssh.com`). 128 KiB writes were slower against
/// loopback OpenSSH (one 68 MiB object: 0.38-0.41 s against 0.29-0.31 s).
const WRITE_CHUNK: usize = 32 * 1024;
/// Bytes per SFTP read request, or fewer if the server says so; a server
/// that sends less than asked is asked again for the rest. Measured on
/// loopback OpenSSH, one 68 MiB object: 0.45-0.5 s at 128 KiB against
/// 0.75-0.94 s at 32 KiB.
const READ_CHUNK: usize = 128 * 1024;
/// Requests of one transfer sent before the first is answered.
const IN_FLIGHT: usize = 32;
/// Names of unfinished writes start with this.
const TMP_MARK: &str = ".dvt-tmp-";
/// The store name of this module's errors.
pub(super) const STORE: &str = "SSH";

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Where and as whom to connect, from the remote's URL and options.
#[derive(Debug, Clone)]
pub(super) struct Target {
    /// The host as the URL (or `ProxyJump`) names it, before `HostName`.
    alias: String,
    host: String,
    port: u16,
    user: String,
    /// The remote's `keyfile`: the one key tried, and an error if unreadable.
    keyfile: Option<PathBuf>,
    /// `IdentityFile`s of `~/.ssh/config` for this host, tried after the
    /// agent's keys instead of the default ones.
    config_keys: Vec<PathBuf>,
    passphrase: Option<String>,
    password: Option<String>,
    known_hosts: PathBuf,
    allow_agent: bool,
    /// For connecting and logging in (the `timeout` option, default 30 s).
    timeout: Duration,
    /// For each SFTP request once connected (the `timeout` option, default
    /// 300 s: on a slow link the last of a transfer's requests in flight is
    /// answered only after the others' bytes went through).
    request_timeout: Duration,
    /// How the connection reaches the host.
    route: Route,
    /// A jump host on the way to the remote's server, not the server.
    is_jump: bool,
}

/// How a connection reaches its host.
#[derive(Debug, Clone)]
enum Route {
    Direct,
    /// Through an SSH connection to this host (`ProxyJump`).
    Jump(Box<Target>),
    /// Through the standard input and output of this shell command
    /// (`ProxyCommand`, its `%` tokens expanded).
    Command(String),
}

/// Messages a jump host's connection holds for the connection it carries
/// before it stops reading from the network. The carried connection's session
/// stops reading while it waits to write, and it waits for the window adjusts
/// the jump host's connection reads: a full buffer would stop both for good
/// (with 10, a 68 MiB upload through a jump host hung every time; russh's
/// default is 100). 512 is far more than the 32 requests in flight can answer
/// with (and holds at most 16 MiB, in 32 KiB messages).
const JUMP_CHANNEL_BUFFER: usize = 512;

/// Jump hosts one connection may go through (a `ProxyJump` of a jump host
/// that leads back to itself stops here).
const MOST_JUMPS: usize = 8;

impl Target {
    /// Reads the server from `location` (`[user@]host[:port]`) and the rest
    /// from `spec`'s options: `user`, `port`, `keyfile`, `passphrase`,
    /// `password`, `known_hosts`, `allow_agent`, `proxy_jump`, `timeout`.
    /// What neither sets comes from `~/.ssh/config` (`HostName`, `User`,
    /// `Port`, `IdentityFile`, `UserKnownHostsFile`, `ProxyJump`,
    /// `ProxyCommand`), as for `ssh HOST`.
    pub(super) fn from_spec(spec: &RemoteSpec, location: &Location) -> Result<Target> {
        let bad = |message: String| RemoteError::Config {
            remote: spec.name.clone(),
            message,
        };
        let (user, server) = match location.bucket.rsplit_once('@') {
            Some((u, s)) => (Some(u.to_string()), s),
            None => (None, location.bucket.as_str()),
        };
        let (alias, port) = split_port(server).map_err(bad)?;
        let home = std::env::var_os("HOME").map(PathBuf::from);
        let mut config = host_config(home.as_deref(), alias);
        let port = match (port, spec.int("port")?, config.port) {
            (Some(p), _, _) => p,
            (None, Some(p), _) => u16::try_from(p).map_err(|_| bad(format!("`port` {p} is not a TCP port")))?,
            (None, None, Some(p)) => p,
            (None, None, None) => 22,
        };
        let user = user
            .or_else(|| spec.get("user").map(str::to_string))
            .or(config.user.take())
            .or_else(local_user)
            .ok_or_else(|| bad("no user name: put it in the URL (`ssh://USER@host/path`) or set `user`".into()))?;
        let tilde = |p: &str| match (p.strip_prefix("~/"), &home) {
            (Some(rest), Some(h)) => h.join(rest),
            _ => PathBuf::from(p),
        };
        let known_hosts = match (spec.get("known_hosts"), config.known_hosts.take()) {
            (Some(p), _) => tilde(p),
            (None, Some(p)) => p,
            (None, None) => default_known_hosts(home.as_deref()).map_err(bad)?,
        };
        let proxy = match spec.get("proxy_jump") {
            Some(jumps) => Some(Proxy::Jump(jumps.to_string())),
            None => config.proxy.take(),
        };
        let timeout = Duration::from_secs(spec.int("timeout")?.unwrap_or(30).max(1));
        let mut target = Target {
            alias: alias.to_string(),
            host: config.host_name.take().unwrap_or_else(|| alias.to_string()),
            port,
            user,
            keyfile: spec.get("keyfile").map(tilde),
            config_keys: config.identity_files,
            passphrase: spec.get("passphrase").map(str::to_string),
            password: spec.get("password").map(str::to_string),
            known_hosts,
            allow_agent: spec.flag("allow_agent")?.unwrap_or(true),
            timeout,
            request_timeout: Duration::from_secs(spec.int("timeout")?.unwrap_or(300).max(1)),
            route: Route::Direct,
            is_jump: false,
        };
        target.route = target.route_for(proxy, home.as_deref(), 0).map_err(bad)?;
        Ok(target)
    }

    /// A jump host named as `ProxyJump` names them (`[user@]host[:port]`,
    /// or as an `ssh://` URL), set up from `~/.ssh/config` alone: the
    /// remote's options (`keyfile`, `known_hosts`, …) are the server's, as
    /// `ssh -i KEY -J JUMP` uses KEY for the server only. Its route is
    /// direct; the proxy its settings give it comes back beside it.
    fn jump(
        written: &str,
        home: Option<&Path>,
        timeout: Duration,
    ) -> std::result::Result<(Target, Option<Proxy>), String> {
        let server = written.strip_prefix("ssh://").unwrap_or(written).trim_end_matches('/');
        let (user, server) = match server.rsplit_once('@') {
            Some((u, s)) => (Some(u.to_string()), s),
            None => (None, server),
        };
        let (alias, port) = split_port(server)?;
        if alias.is_empty() {
            return Err(format!("`{written}` names no jump host"));
        }
        let mut config = host_config(home, alias);
        let user = user
            .or(config.user.take())
            .or_else(local_user)
            .ok_or_else(|| format!("no user name for the jump host `{written}`: write it `USER@{server}`"))?;
        let known_hosts = match config.known_hosts.take() {
            Some(p) => p,
            None => default_known_hosts(home)?,
        };
        let target = Target {
            alias: alias.to_string(),
            host: config.host_name.take().unwrap_or_else(|| alias.to_string()),
            port: port.or(config.port).unwrap_or(22),
            user,
            keyfile: None,
            config_keys: config.identity_files,
            passphrase: None,
            password: None,
            known_hosts,
            allow_agent: true,
            timeout,
            request_timeout: timeout,
            route: Route::Direct,
            is_jump: true,
        };
        Ok((target, config.proxy))
    }

    /// The route `proxy` gives this host. `ProxyJump a,b` reaches `b`
    /// through `a` (and `a` as its own settings say), then this host
    /// through `b`.
    fn route_for(&self, proxy: Option<Proxy>, home: Option<&Path>, depth: usize) -> std::result::Result<Route, String> {
        match proxy {
            None => Ok(Route::Direct),
            Some(Proxy::Command(c)) if c.eq_ignore_ascii_case("none") => Ok(Route::Direct),
            Some(Proxy::Jump(j)) if j.trim().eq_ignore_ascii_case("none") => Ok(Route::Direct),
            Some(Proxy::Command(c)) => Ok(Route::Command(self.expand(&c))),
            Some(Proxy::Jump(list)) => {
                let hops: Vec<&str> = list.split(',').map(str::trim).collect();
                if hops.iter().any(|h| h.is_empty()) {
                    return Err(format!("`ProxyJump {list}`: an empty jump host"));
                }
                if depth + hops.len() > MOST_JUMPS {
                    return Err(format!(
                        "more than {MOST_JUMPS} jump hosts, `{}` going through `{}`: does a `ProxyJump` lead back?",
                        self.alias, hops[0]
                    ));
                }
                let (mut via, proxy) = Target::jump(hops[0], home, self.timeout)?;
                via.route = via.route_for(proxy, home, depth + hops.len())?;
                for hop in &hops[1..] {
                    let (mut next, _) = Target::jump(hop, home, self.timeout)?;
                    next.route = Route::Jump(Box::new(via));
                    via = next;
                }
                Ok(Route::Jump(Box::new(via)))
            }
        }
    }

    /// `ProxyCommand`'s tokens: `%h` (host), `%p` (port), `%r` (user),
    /// `%n` (the name as written), `%%`.
    fn expand(&self, command: &str) -> String {
        let mut out = String::new();
        let mut chars = command.chars();
        while let Some(c) = chars.next() {
            match (c, chars.clone().next()) {
                ('%', Some(t @ ('h' | 'p' | 'r' | 'n' | '%'))) => {
                    chars.next();
                    match t {
                        'h' => out.push_str(&self.host),
                        'p' => out.push_str(&self.port.to_string()),
                        'r' => out.push_str(&self.user),
                        'n' => out.push_str(&self.alias),
                        _ => out.push('%'),
                    }
                }
                _ => out.push(c),
            }
        }
        out
    }

    fn server(&self) -> String {
        match self.port {
            22 => self.host.clone(),
            p => format!("[{}]:{p}", self.host),
        }
    }

    /// The server as messages name it: "`host`", or "jump host `host`".
    fn shown(&self) -> String {
        match self.is_jump {
            true => format!("jump host `{}`", self.server()),
            false => format!("`{}`", self.server()),
        }
    }
}

fn host_config(home: Option<&Path>, alias: &str) -> super::ssh_config::HostConfig {
    match home {
        Some(h) => super::ssh_config::for_host(&h.join(".ssh/config"), alias, h),
        None => Default::default(),
    }
}

fn default_known_hosts(home: Option<&Path>) -> std::result::Result<PathBuf, String> {
    home.map(|h| h.join(".ssh/known_hosts"))
        .ok_or_else(|| "HOME is not set: give the `known_hosts` file to check the server against".into())
}

/// The user ssh logs in as when none is named: `USER`, `LOGNAME`, or the
/// name `/etc/passwd` gives this process's user.
fn local_user() -> Option<String> {
    std::env::var("USER")
        .ok()
        .or_else(|| std::env::var("LOGNAME").ok())
        .filter(|u| !u.is_empty())
        .or_else(login_name)
}

/// This process's user's name, from `/etc/passwd` (as `ssh` finds it when
/// USER is not set, in a container say).
fn login_name() -> Option<String> {
    let uid = rustix::process::getuid().as_raw().to_string();
    let passwd = fs_err::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let mut f = line.split(':');
        let (name, _, id) = (f.next()?, f.next()?, f.next()?);
        (id == uid && !name.is_empty()).then(|| name.to_string())
    })
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`.
fn split_port(server: &str) -> std::result::Result<(&str, Option<u16>), String> {
    let (host, port) = match server.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((h, "")) => (h, None),
            Some((h, p)) => (h, Some(p.strip_prefix(':').unwrap_or(p))),
            None => return Err(format!("`{server}`: `[` without `]`")),
        },
        None => match server.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (server, None),
        },
    };
    let port = port
        .map(|p| {
            p.parse::<u16>()
                .map_err(|_| format!("`{server}`: the port is not a number"))
        })
        .transpose()?;
    Ok((host, port))
}

/// The store: a lazily opened SFTP session, shared by every transfer.
#[derive(Debug, Clone)]
pub(super) struct Sftp {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    target: Target,
    /// The connection, or why it could not be made (not tried again: every
    /// transfer of the command would wait for the same failure).
    conn: tokio::sync::OnceCell<std::result::Result<Arc<Conn>, String>>,
}

struct Conn {
    /// Keep the SSH connection open.
    _ssh: Handle<HostCheck>,
    _route: Vec<Via>,
    sftp: Arc<RawSftpSession>,
    /// Whether the server renames over an existing file atomically
    /// (`posix-rename@openssh.com`).
    posix_rename: bool,
    /// Bytes per read and per write request.
    read_chunk: usize,
    write_chunk: usize,
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

impl Inner {
    async fn conn(&self) -> object_store::Result<Arc<Conn>> {
        let made = self
            .conn
            .get_or_init(|| async { connect(&self.target).await.map(Arc::new) })
            .await;
        made.clone().map_err(|message| object_store::Error::Generic {
            store: STORE,
            source: message.into(),
        })
    }
}

/// Checks the server's key against `known_hosts`, and keeps what was wrong.
struct HostCheck {
    target: Target,
    refused: Arc<std::sync::Mutex<Option<String>>>,
}

impl russh::client::Handler for HostCheck {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &russh::keys::PublicKeyOrCertificate,
    ) -> std::result::Result<bool, Self::Error> {
        let t = &self.target;
        let russh::keys::PublicKeyOrCertificate::PublicKey { key, .. } = key else {
            *self.refused.lock().unwrap_or_else(|e| e.into_inner()) = Some(format!(
                "{} offered a host certificate; dvt checks plain host keys only",
                t.shown()
            ));
            return Ok(false);
        };
        let verdict = match russh::keys::check_known_hosts_path(&t.host, t.port, key, &t.known_hosts) {
            Ok(true) => return Ok(true),
            Ok(false) => format!(
                "the host key of {} ({}) is not in `{}`: check that it is the server's, then add it \
                 (`ssh-keyscan -p {} {} >> {}`, or connect once with `ssh`)",
                t.shown(),
                key.fingerprint(HashAlg::Sha256),
                t.known_hosts.display(),
                t.port,
                t.host,
                t.known_hosts.display()
            ),
            Err(russh::keys::Error::KeyChanged { line }) => format!(
                "the host key of {} ({}) is not the one line {line} of `{}` records: the server's key \
                 was replaced, or someone is in the middle of the connection; nothing was sent",
                t.shown(),
                key.fingerprint(HashAlg::Sha256),
                t.known_hosts.display()
            ),
            Err(e) => format!("cannot check the host key against `{}`: {e}", t.known_hosts.display()),
        };
        *self.refused.lock().unwrap_or_else(|e| e.into_inner()) = Some(verdict);
        Ok(false)
    }
}

/// What a connection goes through, kept open while it is used.
enum Via {
    Ssh { _jump: Handle<HostCheck> },
    Command { _process: ProxyCommand },
}

/// A `ProxyCommand` process, stopped when the connection closes.
struct ProxyCommand(std::process::Child);

impl Drop for ProxyCommand {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn connect(t: &Target) -> std::result::Result<Conn, String> {
    let mut route = Vec::new();
    let ssh = open_ssh(t, &mut route).await?;
    let server = t.server();
    let fail =
        |what: &str, e: &(dyn std::error::Error + 'static)| format!("`{server}`: {what}: {}", crate::error_chain(e));
    let channel = ssh
        .channel_open_session()
        .await
        .map_err(|e| fail("cannot open a session", &e))?;
    channel
        .request_subsystem(true, "sftp")
        .await
        .map_err(|e| fail("cannot start SFTP", &e))?;
    let sftp = RawSftpSession::new_with_config(
        channel.into_stream(),
        russh_sftp::client::Config {
            request_timeout_secs: t.request_timeout.as_secs(),
            ..Default::default()
        },
    );
    let version = sftp
        .init()
        .await
        .map_err(|e| fail("the server does not speak SFTP", &e))?;
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
        "SFTP on `{server}`: version {}, posix-rename {}, reads of {} KiB, writes of {} KiB, {IN_FLIGHT} in flight",
        version.version,
        match posix_rename {
            true => "yes",
            false => "no (replace is remove, then rename)",
        },
        read_chunk / 1024,
        write_chunk / 1024
    );
    Ok(Conn {
        _ssh: ssh,
        _route: route,
        sftp: Arc::new(sftp),
        posix_rename,
        read_chunk,
        write_chunk,
    })
}

/// An SSH connection to `t`, logged in, made as its route says; what it
/// goes through is pushed onto `route`.
fn open_ssh<'a>(
    t: &'a Target,
    route: &'a mut Vec<Via>,
) -> futures::future::BoxFuture<'a, std::result::Result<Handle<HostCheck>, String>> {
    Box::pin(async move {
        let config = Arc::new(russh::client::Config {
            keepalive_interval: Some(Duration::from_secs(15)),
            channel_buffer_size: match t.is_jump {
                true => JUMP_CHANNEL_BUFFER,
                false => russh::client::Config::default().channel_buffer_size,
            },
            ..Default::default()
        });
        let refused = Arc::new(std::sync::Mutex::new(None));
        let handler = HostCheck {
            target: t.clone(),
            refused: refused.clone(),
        };
        let shown = t.shown();
        let started = std::time::Instant::now();
        let connected = match &t.route {
            Route::Direct => {
                let connecting = russh::client::connect(config, (t.host.as_str(), t.port), handler);
                tokio::time::timeout(t.timeout, connecting).await
            }
            Route::Jump(via) => {
                let jump = open_ssh(via, route).await?;
                let channel = jump
                    .channel_open_direct_tcpip(t.host.as_str(), u32::from(t.port), "127.0.0.1", 0)
                    .await
                    .map_err(|e| {
                        format!(
                            "{} did not open a connection to {shown}: {}",
                            via.shown(),
                            crate::error_chain(&e)
                        )
                    })?;
                route.push(Via::Ssh { _jump: jump });
                let connecting = russh::client::connect_stream(config, channel.into_stream(), handler);
                tokio::time::timeout(t.timeout, connecting).await
            }
            Route::Command(command) => {
                let (child, stream) = start_proxy_command(command).map_err(|e| {
                    format!(
                        "cannot start the ProxyCommand `{command}` for {shown}: {}",
                        crate::error_chain(&e)
                    )
                })?;
                route.push(Via::Command { _process: child });
                let connecting = russh::client::connect_stream(config, stream, handler);
                tokio::time::timeout(t.timeout, connecting).await
            }
        };
        let mut ssh = match connected {
            Err(_) => return Err(format!("{shown} did not answer within {} s", t.timeout.as_secs())),
            Ok(Err(e)) => {
                let why = refused.lock().unwrap_or_else(|e| e.into_inner()).take();
                let through = match &t.route {
                    Route::Command(command) => format!(" through the ProxyCommand `{command}`"),
                    _ => String::new(),
                };
                return Err(
                    why.unwrap_or_else(|| format!("cannot connect to {shown}{through}: {}", crate::error_chain(&e)))
                );
            }
            Ok(Ok(h)) => h,
        };
        let how = match &t.route {
            Route::Direct => String::new(),
            Route::Jump(via) => format!(" through {}", via.shown()),
            Route::Command(c) => format!(" through the ProxyCommand `{c}`"),
        };
        tracing::debug!("connected to {shown}{how}, host key known");
        let method = tokio::time::timeout(t.timeout, authenticate(&mut ssh, t))
            .await
            .map_err(|_| format!("{shown} did not finish authenticating within {} s", t.timeout.as_secs()))??;
        tracing::debug!(
            "logged in to {shown} as `{}` with {method} ({:.3} s)",
            t.user,
            started.elapsed().as_secs_f64()
        );
        Ok(ssh)
    })
}

/// Starts `command` with `sh -c`; its standard input and output carry the
/// connection, its errors go to ours (as ssh runs a `ProxyCommand`).
fn start_proxy_command(
    command: &str,
) -> std::io::Result<(
    ProxyCommand,
    tokio::io::Join<tokio::process::ChildStdout, tokio::process::ChildStdin>,
)> {
    use std::process::Stdio;
    let mut child = ProxyCommand(crate::process::spawn(
        std::process::Command::new("sh")
            .arg("-c")
            .arg(command)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped()),
    )?);
    let (Some(stdin), Some(stdout)) = (child.0.stdin.take(), child.0.stdout.take()) else {
        return Err(std::io::Error::other("no pipes to the command"));
    };
    let stream = tokio::io::join(
        tokio::process::ChildStdout::from_std(stdout)?,
        tokio::process::ChildStdin::from_std(stdin)?,
    );
    Ok((child, stream))
}

/// As OpenSSH tries: the key file given (else the agent's keys, then the
/// `IdentityFile`s of `~/.ssh/config`, or without them `~/.ssh/id_ed25519`,
/// `id_ecdsa`, `id_rsa`), then the password.
/// Returns how it logged in (for `-v`).
async fn authenticate(ssh: &mut Handle<HostCheck>, t: &Target) -> std::result::Result<String, String> {
    let rsa_hash = ssh.best_supported_rsa_hash().await.ok().flatten().flatten();
    let mut tried: Vec<String> = Vec::new();
    let failed = |e: &(dyn std::error::Error + 'static)| {
        format!("{}: authentication failed: {}", t.shown(), crate::error_chain(e))
    };
    let keyfiles: Vec<PathBuf> = match &t.keyfile {
        Some(k) => vec![k.clone()],
        None => {
            if t.allow_agent
                && std::env::var_os("SSH_AUTH_SOCK").is_some()
                && let Ok(mut agent) = russh::keys::agent::client::AgentClient::connect_env().await
                && let Ok(ids) = agent.request_identities().await
            {
                for id in ids {
                    if let AgentIdentity::PublicKey { key, .. } = id
                        && let Ok(r) = ssh
                            .authenticate_publickey_with(&t.user, key, rsa_hash, &mut agent)
                            .await
                        && r.success()
                    {
                        return Ok("a key of the ssh agent".into());
                    }
                }
                tried.push("the ssh agent's keys".into());
            }
            let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
            let defaults = ["id_ed25519", "id_ecdsa", "id_rsa"].map(|n| home.join(".ssh").join(n));
            match t.config_keys.is_empty() {
                true => defaults.into_iter().collect(),
                false => t.config_keys.clone(),
            }
            .into_iter()
            .filter(|p| p.is_file())
            .collect()
        }
    };
    for path in keyfiles {
        let key = fs_err::read_to_string(&path)
            .map_err(|e| e.to_string())
            .and_then(|text| russh::keys::decode_secret_key(&text, t.passphrase.as_deref()).map_err(|e| e.to_string()));
        let key = match key {
            Ok(k) => k,
            Err(e) if t.keyfile.is_some() => {
                let hint = match t.passphrase {
                    None if e.contains("encrypted") || e.contains("password") => " (set `passphrase`)",
                    Some(_) if e.contains("cryptographic") || e.contains("decrypt") => " (is `passphrase` right?)",
                    _ => "",
                };
                return Err(format!("cannot read the key file `{}`: {e}{hint}", path.display()));
            }
            Err(e) => {
                tried.push(format!("`{}` (unreadable: {e})", path.display()));
                continue;
            }
        };
        let r = ssh
            .authenticate_publickey(&t.user, PrivateKeyWithHashAlg::new(Arc::new(key), rsa_hash))
            .await
            .map_err(|e| failed(&e))?;
        if r.success() {
            return Ok(format!("the key `{}`", path.display()));
        }
        tried.push(format!("the key `{}`", path.display()));
    }
    if let Some(password) = &t.password {
        let r = ssh
            .authenticate_password(&t.user, password)
            .await
            .map_err(|e| failed(&e))?;
        if r.success() {
            return Ok("the password".into());
        }
        tried.push("the password".into());
    }
    let tried = match tried.is_empty() {
        true => "no key or password was found".to_string(),
        false => format!("tried {}", tried.join(", ")),
    };
    let what_to_do = match t.is_jump {
        true => format!(
            "give it an `IdentityFile` under `Host {}` in ~/.ssh/config, or add the key to the ssh agent",
            t.alias
        ),
        false => "set `keyfile` (and `passphrase`) or `password` with `dvt remote modify`".to_string(),
    };
    Err(format!(
        "{} refused user `{}`: {tried}; {what_to_do}",
        t.shown(),
        t.user
    ))
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

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (
            b[i],
            b.get(i + 1).copied().and_then(hex),
            b.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
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
/// rclone's among them, take a file's bytes only in order).
async fn write_at(conn: &Conn, handle: &str, shown: &str, offset: u64, data: PutPayload) -> object_store::Result<()> {
    let mut pieces = Vec::new();
    let mut at = offset;
    for part in data.iter() {
        for chunk in part.chunks(conn.write_chunk) {
            pieces.push((at, chunk.to_vec()));
            at += chunk.len() as u64;
        }
    }
    stream::iter(pieces)
        .map(|(at, chunk)| async move { conn.sftp.write(handle, at, chunk).await.map(|_| ()) })
        .buffered(IN_FLIGHT)
        .try_collect::<Vec<()>>()
        .await
        .map_err(|e| store_error(shown, e))?;
    Ok(())
}

/// Reads `len` bytes at `offset` of `handle` (a server may answer a read with
/// fewer bytes than asked: the rest is asked again).
async fn read_at(
    sftp: &RawSftpSession,
    handle: &str,
    offset: u64,
    len: usize,
) -> std::result::Result<Bytes, SftpError> {
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
    fn servers_and_paths() {
        assert_eq!(split_port("host").unwrap(), ("host", None));
        assert_eq!(split_port("host:2222").unwrap(), ("host", Some(2222)));
        assert_eq!(split_port("[::1]:2222").unwrap(), ("::1", Some(2222)));
        assert_eq!(split_port("[::1]").unwrap(), ("::1", None));
        assert!(split_port("host:ssh").is_err());
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

    /// The hosts of a route, from the first hop to `t`.
    fn hops(t: &Target) -> Vec<String> {
        let mut out = match &t.route {
            Route::Direct => Vec::new(),
            Route::Jump(via) => hops(via),
            Route::Command(c) => vec![format!("({c})")],
        };
        out.push(format!("{}@{}", t.user, t.server()));
        out
    }

    #[test]
    fn jump_hosts_chain_as_ssh_chains_them() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path();
        fs_err::create_dir_all(home.join(".ssh")).unwrap();
        fs_err::write(
            home.join(".ssh/config"),
            "Host gate\n  HostName 10.1.1.1\n  ProxyJump ssh://outer\n  User g\n\
             Host inner\n  ProxyJump ignored\n  User i\n\
             Host outer\n  ProxyCommand nc -x proxy %h %p %%\n  User o\n\
             Host a\n  ProxyJump b\nHost b\n  ProxyJump a\n",
        )
        .unwrap();
        let (mut t, _) = Target::jump("me@server:2222", Some(home), Duration::from_secs(1)).unwrap();
        t.route = t
            .route_for(Some(Proxy::Jump("gate, u@inner:2200".into())), Some(home), 0)
            .unwrap();
        assert_eq!(
            hops(&t),
            [
                "(nc -x proxy outer 22 %)",
                "o@outer",
                "g@10.1.1.1",
                "u@[inner]:2200",
                "me@[server]:2222"
            ]
        );
        assert_eq!(t.expand("%r@%h:%p %n %% %x"), "me@server:2222 server % %x");
        for (proxy, error) in [
            ("a", "more than 8 jump hosts"),
            ("gate,,x", "an empty jump host"),
            ("x:port", "the port is not a number"),
        ] {
            let e = t.route_for(Some(Proxy::Jump(proxy.into())), Some(home), 0).unwrap_err();
            assert!(e.contains(error), "{proxy}: {e}");
        }
        let direct = t.route_for(Some(Proxy::Jump("none".into())), Some(home), 0).unwrap();
        assert!(matches!(direct, Route::Direct));
    }
}
