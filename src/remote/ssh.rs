//! Reaching an SSH server for an SSH remote: where and as whom (the URL,
//! the remote's options, `~/.ssh/config`), the route (directly, through jump
//! hosts, or through a `ProxyCommand`), the host key check against
//! `known_hosts`, and the login (key file, agent, default keys, password).
//! The server's host key is checked against the known_hosts files as ssh
//! checks it (`known_hosts.rs` reads them): a changed key stops the
//! connection before anything is sent; an unknown one is asked about, accepted
//! or refused as `StrictHostKeyChecking` says. `sftp.rs` runs SFTP over the
//! connection made here.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use russh::client::Handle;
use russh::keys::agent::AgentIdentity;
use russh::keys::ssh_key::public::KeyData;
use russh::keys::{Algorithm, Certificate, HashAlg, PrivateKeyWithHashAlg};

use super::ConnectError;
use super::config::{Location, RemoteSpec};
use super::known_hosts::{self, KnownHosts, Verdict};
use super::ssh_config::{Agent, NewHostKeys, Proxy};
use crate::error::{RemoteError, Result};

/// Where and as whom to connect, from the remote's URL and options.
#[derive(Debug, Clone)]
pub(super) struct Target {
    /// The host as the URL (or `ProxyJump`) names it, before `HostName`.
    alias: String,
    host: String,
    port: u16,
    pub(super) user: String,
    /// The remote's `keyfile`: the one key tried, and an error if unreadable.
    keyfile: Option<PathBuf>,
    /// `IdentityFile`s of `~/.ssh/config` for this host, tried instead of
    /// the default ones (those the agent holds first, as ssh tries them).
    config_keys: Vec<PathBuf>,
    /// `CertificateFile`s of `~/.ssh/config`: offered with the keys they
    /// certify, as `KEY-cert.pub` beside a key file is.
    config_certificates: Vec<PathBuf>,
    /// `IdentitiesOnly`: of the agent's keys, only those of the key files.
    identities_only: bool,
    passphrase: Option<String>,
    password: Option<String>,
    /// The user's known_hosts file: where a new key is recorded, and the one
    /// messages name.
    known_hosts: PathBuf,
    /// Every known_hosts file read, in order: the user's (`known_hosts`
    /// first), then the machine's.
    known_hosts_files: Vec<PathBuf>,
    /// `HashKnownHosts`: a new key's line names the host hashed.
    hash_known_hosts: bool,
    /// `HostKeyAlias`: the name known_hosts knows the host's key by.
    host_key_alias: Option<String>,
    /// What to do with a key `known_hosts` does not have
    /// (`StrictHostKeyChecking`).
    new_host_keys: NewHostKeys,
    /// The agent asked for keys (`IdentityAgent`; none if `allow_agent` is false).
    agent: Agent,
    /// `ask_password`: what a keyboard-interactive login asks beyond the
    /// password (a one-time code) is asked on the terminal too.
    pub(super) ask: bool,
    /// For connecting and logging in (the `timeout` option, default 30 s).
    timeout: Duration,
    /// For each SFTP request once connected (the `timeout` option, default
    /// 300 s: on a slow link the last of a transfer's requests in flight is
    /// answered only after the others' bytes went through).
    pub(super) request_timeout: Duration,
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
    /// `password`, `known_hosts`, `allow_agent`, `proxy_jump`, `timeout`,
    /// and `ask_password`/`ask_passphrase` (asked on the terminal here).
    /// What neither sets comes from `~/.ssh/config` (`HostName`, `User`,
    /// `Port`, `IdentityFile`, `IdentitiesOnly`, `IdentityAgent`,
    /// `ConnectTimeout`, `UserKnownHostsFile`, `ProxyJump`, `ProxyCommand`),
    /// as for `ssh HOST`.
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
        let given_user = user.as_deref().or(spec.get("user"));
        let given_port = match (port, spec.int("port")?) {
            (Some(p), _) => Some(p),
            (None, Some(p)) => Some(u16::try_from(p).map_err(|_| bad(format!("`port` {p} is not a TCP port")))?),
            (None, None) => None,
        };
        let mut config = host_config(home.as_deref(), alias, (given_user, given_port));
        let port = given_port.or(config.port).unwrap_or(22);
        let user = user
            .or_else(|| spec.get("user").map(str::to_string))
            .or(config.user.take())
            .or_else(local_user)
            .ok_or_else(|| bad("no user name: put it in the URL (`ssh://USER@host/path`) or set `user`".into()))?;
        let tilde = |p: &str| super::config::expand_home(p).unwrap_or_else(|_| PathBuf::from(p));
        let (known_hosts, known_hosts_files) =
            known_hosts_files(spec.get("known_hosts").map(tilde), &mut config, home.as_deref()).map_err(bad)?;
        let proxy = match spec.get("proxy_jump") {
            Some(jumps) => Some(Proxy::Jump(jumps.to_string())),
            None => config.proxy.take(),
        };
        let timeout = match (spec.int("timeout")?, config.connect_timeout) {
            (Some(t), _) => Duration::from_secs(t.max(1)),
            (None, Some(t)) => Duration::from_secs(t.max(1)),
            (None, None) => Duration::from_secs(30),
        };
        let host = config.host_name.take().unwrap_or_else(|| alias.to_string());
        // Asked now, before any transfer draws a progress bar over the prompt.
        let ask = |key: &str, given: Option<&str>, question: String| -> Result<Option<String>> {
            match (given, spec.flag(key)?.unwrap_or(false)) {
                (Some(v), _) => Ok(Some(v.to_string())),
                (None, false) => Ok(None),
                (None, true) => ask_on_terminal(&question, true, false)
                    .map(Some)
                    .map_err(|e| bad(format!("`{key}` is set, but {e}: set `{}` instead", &key[4..])).into()),
            }
        };
        let password = ask(
            "ask_password",
            spec.get("password"),
            format!("Password for {user}@{host}: "),
        )?;
        let passphrase = ask(
            "ask_passphrase",
            spec.get("passphrase"),
            format!("Passphrase for the SSH key of remote `{}`: ", spec.name),
        )?;
        let mut target = Target {
            alias: alias.to_string(),
            host,
            port,
            user,
            keyfile: spec.get("keyfile").map(tilde),
            config_keys: config.identity_files,
            config_certificates: config.certificate_files,
            identities_only: config.identities_only.unwrap_or(false),
            passphrase,
            password,
            known_hosts,
            known_hosts_files,
            hash_known_hosts: config.hash_known_hosts.unwrap_or(false),
            host_key_alias: config.host_key_alias.take(),
            new_host_keys: config.new_host_keys.unwrap_or_default(),
            agent: match spec.flag("allow_agent")?.unwrap_or(true) {
                true => config.agent.unwrap_or(Agent::FromEnv),
                false => Agent::Off,
            },
            ask: spec.flag("ask_password")?.unwrap_or(false),
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
        let mut config = host_config(home, alias, (user.as_deref(), port));
        let user = user
            .or(config.user.take())
            .or_else(local_user)
            .ok_or_else(|| format!("no user name for the jump host `{written}`: write it `USER@{server}`"))?;
        let (known_hosts, known_hosts_files) = known_hosts_files(None, &mut config, home)?;
        let target = Target {
            alias: alias.to_string(),
            host: config.host_name.take().unwrap_or_else(|| alias.to_string()),
            port: port.or(config.port).unwrap_or(22),
            user,
            keyfile: None,
            config_keys: config.identity_files,
            config_certificates: config.certificate_files,
            identities_only: config.identities_only.unwrap_or(false),
            passphrase: None,
            password: None,
            known_hosts,
            known_hosts_files,
            hash_known_hosts: config.hash_known_hosts.unwrap_or(false),
            host_key_alias: config.host_key_alias.take(),
            new_host_keys: config.new_host_keys.unwrap_or_default(),
            agent: config.agent.unwrap_or(Agent::FromEnv),
            ask: false,
            timeout: config
                .connect_timeout
                .map_or(timeout, |t| Duration::from_secs(t.max(1))),
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

    /// The name and port known_hosts knows the server's key by: the
    /// `HostKeyAlias` (as on port 22: ssh looks it up without a port), else
    /// the host and port.
    fn key_name(&self) -> (&str, u16) {
        match &self.host_key_alias {
            Some(alias) => (alias, 22),
            None => (&self.host, self.port),
        }
    }

    /// `host`, or `[host]:port` off port 22 (as known_hosts writes it).
    pub(super) fn server(&self) -> String {
        match self.port {
            22 => self.host.clone(),
            p => format!("[{}]:{p}", self.host),
        }
    }

    /// What this host's known_hosts files say, read now.
    fn read_known_hosts(&self) -> KnownHosts {
        KnownHosts::read(&self.known_hosts_files)
    }

    /// The server as messages name it: "`host`", or "jump host `host`".
    fn shown(&self) -> String {
        match self.is_jump {
            true => format!("jump host `{}`", self.server()),
            false => format!("`{}`", self.server()),
        }
    }
}

/// A keyboard-interactive login (PAM's, often a password and then a one-time
/// code): a hidden prompt that names a password gets `password`, once; with
/// `ask_password`, the other prompts are asked on the terminal, as ssh asks
/// them. Whether the server let the user in.
async fn keyboard_interactive(ssh: &mut Handle<HostCheck>, t: &Target) -> std::result::Result<bool, String> {
    use russh::client::KeyboardInteractiveAuthResponse as Reply;
    let failed = |e: russh::Error| format!("{}: authentication failed: {}", t.shown(), crate::error_chain(&e));
    let mut password = t.password.clone();
    let mut reply = ssh
        .authenticate_keyboard_interactive_start(&t.user, None)
        .await
        .map_err(failed)?;
    loop {
        let prompts = match reply {
            Reply::Success => return Ok(true),
            Reply::Failure { .. } => return Ok(false),
            Reply::InfoRequest { prompts, .. } => prompts,
        };
        let mut answers = Vec::new();
        for p in prompts {
            let names_password = !p.echo && p.prompt.to_ascii_lowercase().contains("password");
            let answer = match (names_password, password.take()) {
                (true, Some(pw)) => pw,
                (_, unused) => {
                    password = unused;
                    if !t.ask {
                        return Err(format!(
                            "{} asks `{}` to log in: set `ask_password = true` to answer it on the terminal",
                            t.shown(),
                            p.prompt.trim()
                        ));
                    }
                    ask_on_terminal(&p.prompt, false, p.echo)
                        .map_err(|e| format!("{} asks `{}`, but {e}", t.shown(), p.prompt.trim()))?
                }
            };
            answers.push(answer);
        }
        reply = ssh
            .authenticate_keyboard_interactive_respond(answers)
            .await
            .map_err(failed)?;
    }
}

/// Asks `question` on the terminal (`/dev/tty`, as ssh asks), the answer
/// echoed only with `echo`; with `remember`, each question once per process
/// (not a one-time code).
pub(super) fn ask_on_terminal(question: &str, remember: bool, echo: bool) -> std::result::Result<String, String> {
    use rustix::termios::{LocalModes, OptionalActions, tcgetattr, tcsetattr};
    use std::io::{BufRead, Write};
    static ANSWERS: std::sync::Mutex<Vec<(String, String)>> = std::sync::Mutex::new(Vec::new());
    let mut answers = ANSWERS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, a)) = answers.iter().find(|(q, _)| remember && q == question) {
        return Ok(a.clone());
    }
    let mut tty = fs_err::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .map_err(|_| "there is no terminal to ask on".to_string())?;
    let shown = tcgetattr(tty.file()).map_err(|e| format!("cannot use the terminal: {e}"))?;
    let mut hidden = shown.clone();
    if !echo {
        hidden.local_modes -= LocalModes::ECHO;
    }
    tcsetattr(tty.file(), OptionalActions::Flush, &hidden).map_err(|e| format!("cannot use the terminal: {e}"))?;
    let mut line = String::new();
    let read = write!(tty, "{question}")
        .and_then(|()| tty.flush())
        .and_then(|()| std::io::BufReader::new(tty.file()).read_line(&mut line));
    let _ = tcsetattr(tty.file(), OptionalActions::Now, &shown);
    if !echo {
        let _ = writeln!(tty);
    }
    match read {
        Ok(0) => Err("the terminal gave no answer".into()),
        Ok(_) => {
            let answer = line.trim_end_matches(['\n', '\r']).to_string();
            if remember {
                answers.push((question.to_string(), answer.clone()));
            }
            Ok(answer)
        }
        Err(e) => Err(format!("cannot read the terminal: {e}")),
    }
}

fn host_config(home: Option<&Path>, alias: &str, given: (Option<&str>, Option<u16>)) -> super::ssh_config::HostConfig {
    match home {
        Some(h) => super::ssh_config::with_system(
            &h.join(".ssh/config"),
            Some(Path::new("/etc/ssh/ssh_config")),
            alias,
            given,
            h,
        ),
        None => Default::default(),
    }
}

/// The known_hosts file new keys go to, and every one read, as ssh reads
/// them: the remote's `known_hosts` option, else `UserKnownHostsFile`, else
/// `~/.ssh/known_hosts` and `~/.ssh/known_hosts2`; then
/// `GlobalKnownHostsFile`, else `/etc/ssh/ssh_known_hosts` and
/// `/etc/ssh/ssh_known_hosts2`.
fn known_hosts_files(
    given: Option<PathBuf>,
    config: &mut super::ssh_config::HostConfig,
    home: Option<&Path>,
) -> std::result::Result<(PathBuf, Vec<PathBuf>), String> {
    let user = match (given, config.known_hosts.take(), home) {
        (Some(p), _, _) => vec![p],
        (None, Some(files), _) if !files.is_empty() => files,
        (None, _, Some(h)) => known_hosts::default_user_files(h),
        (None, _, None) => {
            return Err("HOME is not set: give the `known_hosts` file to check the server against".into());
        }
    };
    let global = config
        .global_known_hosts
        .take()
        .unwrap_or_else(known_hosts::default_global_files);
    Ok((user[0].clone(), [user, global].concat()))
}

/// The user ssh logs in as when none is named: `USER`, `LOGNAME`, or the
/// name `/etc/passwd` gives this process's user.
pub(super) fn local_user() -> Option<String> {
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

/// Checks the server's key against `known_hosts`, and keeps what was wrong.
pub(super) struct HostCheck {
    target: Target,
    /// The target's known_hosts files, read when the connection started.
    known: KnownHosts,
    refused: Arc<std::sync::Mutex<Option<String>>>,
    /// Dropped with the handler when the session ends: its receivers learn
    /// that the connection is gone.
    _alive: tokio::sync::watch::Sender<()>,
}

/// Changes (with an error) when the SSH connection it came with closes.
pub(super) type Alive = tokio::sync::watch::Receiver<()>;

impl russh::client::Handler for HostCheck {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &russh::keys::PublicKeyOrCertificate,
    ) -> std::result::Result<bool, Self::Error> {
        let t = &self.target;
        let key = match key {
            russh::keys::PublicKeyOrCertificate::PublicKey { key, .. } => key,
            russh::keys::PublicKeyOrCertificate::Certificate(cert) => {
                return match check_certificate(t, &self.known, cert) {
                    Ok(()) => Ok(true),
                    Err(why) => {
                        *self.refused.lock().unwrap_or_else(|e| e.into_inner()) = Some(why);
                        Ok(false)
                    }
                };
            }
        };
        if let Some(line) = self.known.revoked(key.key_data()) {
            *self.refused.lock().unwrap_or_else(|e| e.into_inner()) = Some(format!(
                "the host key of {} ({}) is revoked ({line}): refusing it; nothing was sent",
                t.shown(),
                key.fingerprint(HashAlg::Sha256),
            ));
            return Ok(false);
        }
        let unknown = || {
            let add = match &t.host_key_alias {
                // ssh-keyscan writes the address; the line must name the alias.
                Some(alias) => format!(
                    "`ssh-keyscan -p {} {} | sed 's/^[^ ]*/{alias}/' >> {}`",
                    t.port,
                    t.host,
                    t.known_hosts.display()
                ),
                None => format!("`ssh-keyscan -p {} {} >> {}`", t.port, t.host, t.known_hosts.display()),
            };
            let under = match &t.host_key_alias {
                Some(alias) => format!(" under its `HostKeyAlias` `{alias}`"),
                None => String::new(),
            };
            format!(
                "the host key of {} ({}) is not in `{}`{under}: check that it is the server's, then add it \
                 ({add}, or connect once with `ssh`)",
                t.shown(),
                key.fingerprint(HashAlg::Sha256),
                t.known_hosts.display(),
            )
        };
        let (name, port) = t.key_name();
        let verdict = match self.known.check(name, port, key) {
            Verdict::Known => return Ok(true),
            Verdict::Unknown => {
                let accepted = match t.new_host_keys {
                    NewHostKeys::Refuse => Err(unknown()),
                    NewHostKeys::Accept => Ok(true),
                    NewHostKeys::Ask => {
                        let (asked_for, asked_key) = (t.clone(), key.clone());
                        match tokio::task::spawn_blocking(move || ask_host_key(&asked_for, &asked_key)).await {
                            Ok(Ok(yes)) => Ok(yes),
                            // No terminal to ask on: as `StrictHostKeyChecking yes`.
                            _ => Err(unknown()),
                        }
                    }
                };
                match accepted {
                    Ok(true) => match learn_host_key(t, key) {
                        Ok(()) => {
                            tracing::warn!(
                                "added the host key of {} ({} {}) to `{}`",
                                t.shown(),
                                key.algorithm(),
                                key.fingerprint(HashAlg::Sha256),
                                t.known_hosts.display()
                            );
                            return Ok(true);
                        }
                        Err(e) => format!(
                            "cannot add the host key of {} to `{}`: {e}; nothing was sent",
                            t.shown(),
                            t.known_hosts.display()
                        ),
                    },
                    Ok(false) => format!(
                        "the host key of {} ({}) was not accepted; nothing was sent",
                        t.shown(),
                        key.fingerprint(HashAlg::Sha256)
                    ),
                    Err(why) => why,
                }
            }
            Verdict::Changed(line) => format!(
                "the host key of {} ({}) is not the one {line} records: the server's key \
                 was replaced, or someone is in the middle of the connection; nothing was sent",
                t.shown(),
                key.fingerprint(HashAlg::Sha256),
            ),
        };
        *self.refused.lock().unwrap_or_else(|e| e.into_inner()) = Some(verdict);
        Ok(false)
    }
}

/// Asks on the terminal whether to trust `key`, a key known_hosts does not
/// have, as ssh asks: `yes`, or the key's fingerprint typed out, trusts it;
/// `no` does not. `Err` if there is no terminal to ask on.
fn ask_host_key(t: &Target, key: &russh::keys::PublicKey) -> std::result::Result<bool, String> {
    let fingerprint = key.fingerprint(HashAlg::Sha256).to_string();
    let mut question = format!(
        "The authenticity of {} can't be established.\n{} key fingerprint is {fingerprint}.\n\
         Are you sure you want to continue connecting (yes/no/[fingerprint])? ",
        match t.is_jump {
            true => t.shown(),
            false => format!("host {}", t.shown()),
        },
        key.algorithm().as_str().trim_start_matches("ssh-").to_ascii_uppercase(),
    );
    for _ in 0..3 {
        let answer = ask_on_terminal(&question, false, true)?;
        match answer.trim() {
            a if a.eq_ignore_ascii_case("yes") || a == fingerprint => return Ok(true),
            a if a.eq_ignore_ascii_case("no") => return Ok(false),
            _ => question = "Please type 'yes', 'no' or the fingerprint: ".into(),
        }
    }
    Ok(false)
}

/// Appends `key` for `t`'s host to `t`'s known_hosts, as ssh records a key
/// it was told to trust (`~/.ssh` made private if it is new; the host's name
/// hashed with `HashKnownHosts yes`).
fn learn_host_key(t: &Target, key: &russh::keys::PublicKey) -> std::result::Result<(), String> {
    if let Some(dir) = t.known_hosts.parent()
        && !dir.as_os_str().is_empty()
        && !dir.exists()
    {
        fs_err::create_dir_all(dir).map_err(|e| e.to_string())?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs_err::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(|e| e.to_string())?;
        }
    }
    let (name, port) = t.key_name();
    let name = known_hosts::host_name(name, port);
    let name = match t.hash_known_hosts {
        true => known_hosts::hashed(&name),
        false => name,
    };
    let key = key.to_openssh().map_err(|e| e.to_string())?;
    let before = match fs_err::read(&t.known_hosts) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e.to_string()),
    };
    let newline = match before.last() {
        Some(b'\n') | None => "",
        Some(_) => "\n",
    };
    let mut file = fs_err::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&t.known_hosts)
        .map_err(|e| e.to_string())?;
    std::io::Write::write_all(&mut file, format!("{newline}{name} {}\n", key.trim()).as_bytes())
        .map_err(|e| e.to_string())
}

/// Whether connecting to `t` (or a jump host on the way) may ask on the
/// terminal: `ask_password`, or a host whose key known_hosts lacks.
pub(super) fn may_ask(t: &Target) -> bool {
    let (name, port) = t.key_name();
    let key_unknown = t.new_host_keys == NewHostKeys::Ask && !t.read_known_hosts().knows(name, port);
    t.ask
        || key_unknown
        || match &t.route {
            Route::Jump(via) => may_ask(via),
            _ => false,
        }
}

/// Whether `cert` proves the server is `t`'s host, as ssh checks a host
/// certificate: signed by an authority known_hosts trusts for it, a host
/// certificate, valid now, naming the host among its principals (if it names
/// any), with no critical option.
fn check_certificate(
    t: &Target,
    known: &KnownHosts,
    cert: &russh::keys::Certificate,
) -> std::result::Result<(), String> {
    let (name, port) = t.key_name();
    let cas = known.cert_authorities(name, port);
    let trusted: Vec<_> = cas.iter().map(|k| k.fingerprint(HashAlg::Sha256)).collect();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let wrong = |what: &str| {
        format!(
            "the host certificate of {} ({}) {what}; nothing was sent",
            t.shown(),
            cert.key_id()
        )
    };
    for (key, whose) in [(cert.public_key(), "its key"), (cert.signature_key(), "its authority")] {
        if let Some(line) = known.revoked(key) {
            return Err(wrong(&format!("is revoked: {whose} is on {line}")));
        }
    }
    if cert.validate_at(now, &trusted).is_err() {
        return Err(wrong(&format!(
            "is not signed by an authority `{}` trusts for it, or is not valid now",
            t.known_hosts.display()
        )));
    }
    if !cert.cert_type().is_host() {
        return Err(wrong("is not a host certificate"));
    }
    let principals = cert.valid_principals();
    if !principals.is_empty() && !principals.iter().any(|p| p == name) {
        return Err(wrong(&format!("does not name `{name}` among its hosts")));
    }
    if !cert.critical_options().is_empty() {
        return Err(wrong("has critical options dvt does not know"));
    }
    Ok(())
}

/// Whether a key of algorithm `known` is offered under `offered`: RSA keys
/// under every RSA signature algorithm (`rsa-sha2-512`, `rsa-sha2-256`).
fn same_kind(known: &Algorithm, offered: &Algorithm) -> bool {
    match (known, offered) {
        (Algorithm::Rsa { .. }, Algorithm::Rsa { .. }) => true,
        (k, o) => k == o,
    }
}

/// A TCP connection to an SSH server that acknowledges what it receives at
/// once, instead of after the kernel's delayed-ACK timer (40 ms on Linux).
///
/// OpenSSH's sshd leaves Nagle's algorithm on for a connection with no
/// interactive session, which is what a jump host's is: its small packets
/// (a carried server's replies, window adjusts) wait for our ACK of the one
/// before, and while we wait for them we send nothing an ACK could ride on.
/// Each such wait cost 40 ms: a 68 MiB push through a jump host took 2.1 s
/// instead of 0.3 s direct. Linux clears `TCP_QUICKACK` as it sees fit, so
/// it is set again after every read.
struct QuickAck(tokio::net::TcpStream);

impl tokio::io::AsyncRead for QuickAck {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let read = std::pin::Pin::new(&mut self.0).poll_read(cx, buf);
        #[cfg(any(target_os = "linux", target_os = "android"))]
        if read.is_ready() {
            let _ = rustix::net::sockopt::set_tcp_quickack(&self.0, true);
        }
        read
    }
}

impl tokio::io::AsyncWrite for QuickAck {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }
}

/// What a connection goes through, kept open while it is used.
pub(super) enum Via {
    Ssh { _jump: Handle<HostCheck> },
    Command { _process: ProxyCommand },
}

/// A `ProxyCommand` process, stopped when the connection closes.
pub(super) struct ProxyCommand(std::process::Child);

impl Drop for ProxyCommand {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// An SSH connection to `t`, logged in, made as its route says, and what
/// tells when it closes; what it goes through is pushed onto `route`.
pub(super) fn open_ssh<'a>(
    t: &'a Target,
    route: &'a mut Vec<Via>,
) -> futures::future::BoxFuture<'a, std::result::Result<(Handle<HostCheck>, Alive), ConnectError>> {
    Box::pin(async move {
        let known = t.read_known_hosts();
        let mut preferred = russh::Preferred::default();
        // The algorithms of the keys known for the host first, as ssh orders
        // them: a server known by its ECDSA key is asked for that one, not
        // for its Ed25519 key, which known_hosts would not have.
        let (name, port) = t.key_name();
        let algorithms = known.algorithms(name, port);
        if !algorithms.is_empty() {
            let (first, rest): (Vec<Algorithm>, Vec<Algorithm>) = preferred
                .key
                .iter()
                .cloned()
                .partition(|a| algorithms.iter().any(|k| same_kind(k, a)));
            preferred.key = std::borrow::Cow::Owned([first, rest].concat());
        }
        // A server is asked for a host certificate only where known_hosts
        // names an authority for it, as ssh asks.
        if !known.cert_authorities(name, port).is_empty() {
            use russh::keys::EcdsaCurve;
            preferred.host_key_certificates = std::borrow::Cow::Owned(vec![
                Algorithm::Ed25519,
                Algorithm::Ecdsa {
                    curve: EcdsaCurve::NistP256,
                },
                Algorithm::Ecdsa {
                    curve: EcdsaCurve::NistP384,
                },
                Algorithm::Ecdsa {
                    curve: EcdsaCurve::NistP521,
                },
                Algorithm::Rsa {
                    hash: Some(HashAlg::Sha512),
                },
                Algorithm::Rsa {
                    hash: Some(HashAlg::Sha256),
                },
            ]);
        }
        let config = Arc::new(russh::client::Config {
            keepalive_interval: Some(Duration::from_secs(15)),
            // What the server may send before we acknowledge it (russh's
            // default is 2 MiB): over a 50 ms link a 68 MiB download took
            // 4.2 s with 2 MiB and 1.6 s with 16 MiB; loopback, the same.
            window_size: 16 << 20,
            channel_buffer_size: match t.is_jump {
                true => JUMP_CHANNEL_BUFFER,
                false => russh::client::Config::default().channel_buffer_size,
            },
            preferred,
            ..Default::default()
        });
        let refused = Arc::new(std::sync::Mutex::new(None));
        let (alive_tx, alive) = tokio::sync::watch::channel(());
        let handler = HostCheck {
            target: t.clone(),
            known,
            refused: refused.clone(),
            _alive: alive_tx,
        };
        let shown = t.shown();
        let started = std::time::Instant::now();
        let connected = match &t.route {
            Route::Direct => {
                let connecting = async {
                    let socket = tokio::net::TcpStream::connect((t.host.as_str(), t.port)).await?;
                    socket.set_nodelay(true)?;
                    russh::client::connect_stream(config, QuickAck(socket), handler).await
                };
                tokio::time::timeout(t.timeout, connecting).await
            }
            Route::Jump(via) => {
                let (jump, _) = open_ssh(via, route).await?;
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
            Err(_) => return Err(format!("{shown} did not answer within {} s", t.timeout.as_secs()).into()),
            Ok(Err(e)) => {
                let why = refused.lock().unwrap_or_else(|e| e.into_inner()).take();
                let through = match &t.route {
                    Route::Command(command) => format!(" through the ProxyCommand `{command}`"),
                    _ => String::new(),
                };
                return Err(match why {
                    Some(why) => ConnectError::Refused(why),
                    None => format!("cannot connect to {shown}{through}: {}", crate::error_chain(&e)).into(),
                });
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
        Ok((ssh, alive))
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

/// The agent `agent` names, if it answers.
/// A connection to an ssh agent.
type AgentClient =
    russh::keys::agent::client::AgentClient<Box<dyn russh::keys::agent::client::AgentStream + Send + Unpin>>;

async fn connect_agent(agent: &Agent) -> Option<AgentClient> {
    let client = match agent {
        Agent::Off => return None,
        Agent::FromEnv => russh::keys::agent::client::AgentClient::connect_env().await,
        Agent::Socket(path) => russh::keys::agent::client::AgentClient::connect_uds(path).await,
    };
    match client {
        Ok(c) => Some(c.dynamic()),
        Err(e) => {
            tracing::debug!("no ssh agent ({agent:?}): {e}");
            None
        }
    }
}

/// The certificates of the key in file `key_file` whose public half is
/// `public`: `KEY_FILE-cert.pub` (as `ssh-keygen -s` writes it beside the
/// key), then those of `configured` (`CertificateFile`) that certify it.
fn certificates_of<'a>(
    key_file: &Path,
    public: &'a KeyData,
    configured: &'a [PathBuf],
) -> impl Iterator<Item = (PathBuf, Certificate)> + 'a {
    let mut beside = key_file.as_os_str().to_owned();
    beside.push("-cert.pub");
    std::iter::once(PathBuf::from(beside))
        .chain(configured.iter().cloned())
        .filter_map(|file| {
            let text = fs_err::read_to_string(&file).ok()?;
            let cert = Certificate::from_openssh(text.trim()).ok()?;
            Some((file, cert))
        })
        .filter(move |(_, cert)| cert.public_key() == public)
}

/// The public half of key file `path`: from `PATH.pub` as ssh writes it,
/// else from the key itself if no passphrase locks it.
fn public_key_of(path: &Path) -> Option<russh::keys::PublicKey> {
    let mut public = path.as_os_str().to_owned();
    public.push(".pub");
    if let Ok(text) = fs_err::read_to_string(PathBuf::from(public))
        && let Some(base64) = text.split_whitespace().nth(1)
        && let Ok(key) = russh::keys::parse_public_key_base64(base64)
    {
        return Some(key);
    }
    let text = fs_err::read_to_string(path).ok()?;
    let secret = russh::keys::decode_secret_key(&text, None).ok()?;
    Some(secret.public_key().clone())
}

/// As OpenSSH tries: the key file given (else the agent's keys, then the
/// `IdentityFile`s of `~/.ssh/config`, or without them `~/.ssh/id_ed25519`,
/// `id_ecdsa`, `id_rsa`), then the password.
/// Returns how it logged in (for `-v`).
/// What an offer from the agent logged in with.
enum Offered {
    Certificate,
    Key,
}

/// Offers `certs`, then `keys`, each signed by `agent`, until the server
/// takes one; which kind it took, if any.
async fn offer_from_agent(
    ssh: &mut Handle<HostCheck>,
    t: &Target,
    rsa_hash: Option<HashAlg>,
    agent: &mut AgentClient,
    certs: Vec<Certificate>,
    keys: Vec<russh::keys::PublicKey>,
) -> Option<Offered> {
    for cert in certs {
        let r = ssh.authenticate_certificate_with(&t.user, cert, rsa_hash, agent).await;
        if r.is_ok_and(|r| r.success()) {
            return Some(Offered::Certificate);
        }
    }
    for key in keys {
        let r = ssh.authenticate_publickey_with(&t.user, key, rsa_hash, agent).await;
        if r.is_ok_and(|r| r.success()) {
            return Some(Offered::Key);
        }
    }
    None
}

async fn authenticate(ssh: &mut Handle<HostCheck>, t: &Target) -> std::result::Result<String, String> {
    let rsa_hash = ssh.best_supported_rsa_hash().await.ok().flatten().flatten();
    let mut tried: Vec<String> = Vec::new();
    let failed = |e: &(dyn std::error::Error + 'static)| {
        format!("{}: authentication failed: {}", t.shown(), crate::error_chain(e))
    };
    let keyfiles: Vec<PathBuf> = match &t.keyfile {
        Some(k) => vec![k.clone()],
        None => {
            let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
            let defaults = ["id_ed25519", "id_ecdsa", "id_rsa"].map(|n| home.join(".ssh").join(n));
            let mut files: Vec<PathBuf> = match t.config_keys.is_empty() {
                true => defaults.into_iter().collect(),
                false => t.config_keys.clone(),
            }
            .into_iter()
            .filter(|p| p.is_file())
            .collect();
            if let Some(mut agent) = connect_agent(&t.agent).await
                && let Ok(ids) = agent.request_identities().await
            {
                // As ssh orders them: the agent's copies of the key files
                // first, then its other keys (none with `IdentitiesOnly`),
                // then the key files it does not hold. A server counts every
                // key offered against its `MaxAuthTries` (6 by default).
                let publics: Vec<(PathBuf, russh::keys::PublicKey)> = files
                    .iter()
                    .filter_map(|f| Some((f.clone(), public_key_of(f)?)))
                    .collect();
                let (mut certificates, mut keys) = (Vec::new(), Vec::new());
                for id in ids {
                    match id {
                        AgentIdentity::PublicKey { key, .. } => keys.push(key),
                        AgentIdentity::Certificate { certificate, .. } => certificates.push(certificate),
                    }
                }
                let file_of = |data: &KeyData| publics.iter().find(|(_, p)| p.key_data() == data).map(|(f, _)| f);
                for key in keys.iter().filter(|k| file_of(k.key_data()).is_some()) {
                    let Some(file) = file_of(key.key_data()) else {
                        continue;
                    };
                    files.retain(|f| f != file);
                    let held = format!("the key `{}` (held by the ssh agent)", file.display());
                    // Its certificates first: the agent's, then those on disk.
                    let mut certs: Vec<Certificate> = certificates
                        .iter()
                        .filter(|c| c.public_key() == key.key_data())
                        .cloned()
                        .collect();
                    // (The agent's copy is usually the one on disk: offered once.)
                    for (_, c) in certificates_of(file, key.key_data(), &t.config_certificates) {
                        if !certs.contains(&c) {
                            certs.push(c);
                        }
                    }
                    match offer_from_agent(ssh, t, rsa_hash, &mut agent, certs, vec![key.clone()]).await {
                        Some(Offered::Certificate) => return Ok(format!("a certificate of {held}")),
                        Some(Offered::Key) => return Ok(held),
                        None => tried.push(held),
                    }
                }
                if !t.identities_only {
                    certificates.retain(|c| file_of(c.public_key()).is_none());
                    keys.retain(|k| file_of(k.key_data()).is_none());
                    let offered = !certificates.is_empty() || !keys.is_empty();
                    match offer_from_agent(ssh, t, rsa_hash, &mut agent, certificates, keys).await {
                        Some(Offered::Certificate) => return Ok("a certificate of the ssh agent".into()),
                        Some(Offered::Key) => return Ok("a key of the ssh agent".into()),
                        None if offered => tried.push("the ssh agent's keys".into()),
                        None => {}
                    }
                }
            }
            files
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
        let key = Arc::new(key);
        for (file, cert) in certificates_of(&path, key.public_key().key_data(), &t.config_certificates) {
            let r = ssh
                .authenticate_openssh_cert(&t.user, key.clone(), cert)
                .await
                .map_err(|e| failed(&e))?;
            if r.success() {
                return Ok(format!("the certificate `{}`", file.display()));
            }
            tried.push(format!("the certificate `{}`", file.display()));
        }
        let r = ssh
            .authenticate_publickey(&t.user, PrivateKeyWithHashAlg::new(key, rsa_hash))
            .await
            .map_err(|e| failed(&e))?;
        if r.success() {
            return Ok(format!("the key `{}`", path.display()));
        }
        tried.push(format!("the key `{}`", path.display()));
    }
    // Whether the server takes keyboard-interactive (unknown: try it).
    let mut kbdint = true;
    if let Some(password) = &t.password {
        let r = ssh
            .authenticate_password(&t.user, password)
            .await
            .map_err(|e| failed(&e))?;
        match r {
            russh::client::AuthResult::Success => return Ok("the password".into()),
            russh::client::AuthResult::Failure { remaining_methods, .. } => {
                kbdint = remaining_methods.contains(&russh::MethodKind::KeyboardInteractive);
            }
        }
        tried.push("the password".into());
    }
    if kbdint && (t.password.is_some() || t.ask) {
        match keyboard_interactive(ssh, t).await? {
            true => return Ok("keyboard-interactive".into()),
            false => tried.push("keyboard-interactive".into()),
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers() {
        assert_eq!(split_port("host").unwrap(), ("host", None));
        assert_eq!(split_port("host:2222").unwrap(), ("host", Some(2222)));
        assert_eq!(split_port("[::1]:2222").unwrap(), ("::1", Some(2222)));
        assert_eq!(split_port("[::1]").unwrap(), ("::1", None));
        assert!(split_port("host:ssh").is_err());
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[test]
    fn reads_are_acknowledged_at_once() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let socket = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
                .await
                .unwrap();
            let (mut server, _) = listener.accept().await.unwrap();
            let mut client = QuickAck(socket);
            for _ in 0..3 {
                rustix::net::sockopt::set_tcp_quickack(&client.0, false).unwrap();
                server.write_all(b"SSH-2.0").await.unwrap();
                let mut got = [0; 7];
                client.read_exact(&mut got).await.unwrap();
                assert!(rustix::net::sockopt::tcp_quickack(&client.0).unwrap());
            }
        });
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
