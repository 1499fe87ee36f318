//! What `~/.ssh/config`, then `/etc/ssh/ssh_config`, say about a host, read
//! as OpenSSH reads them, so that `ssh://gpu-box/path` reaches the machine
//! `ssh gpu-box` reaches: `Host` sections (patterns with `*` and `?`, `!` to
//! exclude), `Include`, and the keywords an SFTP connection needs:
//! `HostName`, `User`, `Port`, `IdentityFile`, `CertificateFile`,
//! `IdentitiesOnly`, `IdentityAgent`, `UserKnownHostsFile`,
//! `GlobalKnownHostsFile`, `HashKnownHosts`, `HostKeyAlias`,
//! `StrictHostKeyChecking`, `ConnectTimeout`, `ProxyJump`, `ProxyCommand`. For
//! each keyword the first value found wins (every `IdentityFile` counts; of
//! `ProxyJump` and `ProxyCommand`, the first found). `Match` sections apply
//! as ssh applies them for `all`, `host`, `originalhost`, `user`, `localuser`
//! and `final` (and `!` before any); one with `exec`, `canonical`, `tagged`
//! or `localnetwork`, which only ssh itself can evaluate, is skipped.
//!
//! As in ssh, the files named by `IdentityFile`, `CertificateFile`,
//! `IdentityAgent`, `UserKnownHostsFile` and `GlobalKnownHostsFile` may hold
//! `%` tokens and `${VARIABLE}`s, expanded once both files are read, with the
//! host, user and port finally chosen (see [`Tokens::expand`]); `HostName`
//! takes `%h` and `%%`.

use std::path::{Path, PathBuf};

/// The settings `~/.ssh/config` gives one host; `None` where it is silent.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct HostConfig {
    pub host_name: Option<String>,
    pub user: Option<String>,
    pub port: Option<u16>,
    pub identity_files: Vec<PathBuf>,
    /// `CertificateFile`s: certificates offered with the keys they certify.
    pub certificate_files: Vec<PathBuf>,
    /// `IdentitiesOnly`: of the agent's keys, only those of `identity_files`.
    pub identities_only: Option<bool>,
    /// `IdentityAgent`: which agent holds the keys.
    pub agent: Option<Agent>,
    /// `UserKnownHostsFile`: the user's known_hosts files (new keys go to
    /// the first); `none` is `/dev/null`.
    pub known_hosts: Option<Vec<PathBuf>>,
    /// `GlobalKnownHostsFile`: the machine's known_hosts files.
    pub global_known_hosts: Option<Vec<PathBuf>>,
    /// `StrictHostKeyChecking`: what to do with a server whose key
    /// known_hosts does not have.
    pub new_host_keys: Option<NewHostKeys>,
    /// `HashKnownHosts`: record new host keys with hashed names.
    pub hash_known_hosts: Option<bool>,
    /// `HostKeyAlias`: the name the host's key is found and recorded under
    /// in known_hosts, instead of its address and port.
    pub host_key_alias: Option<String>,
    /// `ConnectTimeout`, in seconds.
    pub connect_timeout: Option<u64>,
    /// How to reach the host: through other SSH hosts, or a command's
    /// standard input and output (`none` in the file: directly).
    pub proxy: Option<Proxy>,
}

/// What to do with a server whose key is not in known_hosts (a key that
/// differs from the one recorded is always refused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) enum NewHostKeys {
    /// Ask on the terminal, as ssh asks (`ask`, ssh's default); refuse
    /// where there is none.
    #[default]
    Ask,
    /// Add it to known_hosts and go on (`accept-new`; `no` and `off` too,
    /// where ssh would also go on with a changed key).
    Accept,
    /// Refuse it (`yes`).
    Refuse,
}

/// The ssh agent to ask for keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Agent {
    /// The one `SSH_AUTH_SOCK` names (the default).
    FromEnv,
    /// The one listening on this socket.
    Socket(PathBuf),
    /// None (`IdentityAgent none`, or the remote's `allow_agent = false`).
    Off,
}

/// `ProxyJump` or `ProxyCommand`, as written (`%` tokens not expanded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Proxy {
    /// `ProxyJump`: comma-separated `[user@]host[:port]`, the first hop first.
    Jump(String),
    /// `ProxyCommand`: a shell command line.
    Command(String),
}

/// Reads the settings for `host` from `file`, then from the machine's file
/// `system`, as ssh reads `/etc/ssh/ssh_config` after the user's (the first
/// value found wins; a missing file gives none). `home` expands `~`; `user`
/// and `port` are those given outside the files (the URL's, or the remote's
/// options), for `Match user` and the `%r` and `%p` tokens. A relative
/// `Include` is below `~/.ssh` in the user's file and below the system file's
/// directory in that one.
pub(super) fn with_system(
    file: &Path,
    system: Option<&Path>,
    host: &str,
    (user, port): (Option<&str>, Option<u16>),
    home: &Path,
) -> HostConfig {
    let mut out = HostConfig::default();
    let mut written = Written::default();
    let files = [
        Some((file, home.join(".ssh"))),
        system.map(|s| (s, s.parent().unwrap_or(s).to_path_buf())),
    ];
    for (file, base) in files.into_iter().flatten() {
        let mut reader = Reader {
            host,
            user,
            home,
            base,
            out: &mut out,
            written: &mut written,
            depth: 0,
        };
        reader.read_file(file);
    }
    let remote_user = user
        .map(str::to_string)
        .or_else(|| out.user.clone())
        .or_else(super::ssh::local_user)
        .unwrap_or_default();
    let host_name = out.host_name.clone().unwrap_or_else(|| host.to_string());
    let tokens = Tokens {
        home,
        key_alias: out.host_key_alias.clone().unwrap_or_else(|| host.to_string()),
        host: host_name,
        original: host,
        port: port.or(out.port).unwrap_or(22),
        user: remote_user,
    };
    written.expand_into(&mut out, &tokens);
    out
}

/// The path-valued settings as written: their tokens stand for the host,
/// user and port finally chosen, which a later line may still set.
#[derive(Default)]
struct Written {
    identity_files: Vec<String>,
    certificate_files: Vec<String>,
    agent: Option<String>,
    known_hosts: Option<Vec<String>>,
    global_known_hosts: Option<Vec<String>>,
}

impl Written {
    fn expand_into(self, out: &mut HostConfig, tokens: &Tokens) {
        let path = |value: &str| tokens.path(&tokens.expand(value));
        // `none` is `/dev/null`, which holds no key.
        let files = |values: Vec<String>| -> Vec<PathBuf> {
            values
                .iter()
                .map(|v| match v.as_str() {
                    "none" => PathBuf::from("/dev/null"),
                    v => path(v),
                })
                .collect()
        };
        out.identity_files = self.identity_files.iter().map(|v| path(v)).collect();
        out.certificate_files = self.certificate_files.iter().map(|v| path(v)).collect();
        out.known_hosts = self.known_hosts.map(files);
        out.global_known_hosts = self.global_known_hosts.map(files);
        out.agent = self.agent.map(|value| match value.as_str() {
            "none" => Agent::Off,
            "SSH_AUTH_SOCK" | "$SSH_AUTH_SOCK" | "${SSH_AUTH_SOCK}" => Agent::FromEnv,
            _ => match value.strip_prefix('$') {
                // Another variable that names the socket.
                Some(var) => match std::env::var_os(var.trim_matches(['{', '}'])) {
                    Some(socket) => Agent::Socket(PathBuf::from(socket)),
                    None => Agent::Off,
                },
                None => Agent::Socket(path(&value)),
            },
        });
    }
}

/// What the `%` tokens of a path stand for.
struct Tokens<'a> {
    home: &'a Path,
    /// The host connected to (`HostName`, else the name given).
    host: String,
    /// The name given (`ssh NAME`, the URL's host).
    original: &'a str,
    /// `HostKeyAlias`, else the name given.
    key_alias: String,
    port: u16,
    /// The user logged in as on the host.
    user: String,
}

impl Tokens<'_> {
    /// `value` with ssh's tokens replaced: `%d` home, `%h` the host, `%n` the
    /// name given, `%k` the host key alias (else the name given), `%p` the
    /// port, `%r` the remote user, `%u` the local user, `%i` the local user's
    /// id, `%l` this machine's name (`%L` up to its first dot), `%%` a `%`;
    /// and `${NAME}` the environment variable's value. Others (`%C`, `%j`, an
    /// unset variable) are kept as written.
    fn expand(&self, value: &str) -> String {
        let mut out = String::new();
        let mut rest = value;
        while let Some(at) = rest.find(['%', '$']) {
            out.push_str(&rest[..at]);
            rest = &rest[at..];
            let token = rest.get(..2).unwrap_or(rest);
            let expanded = match token {
                "%%" => Some("%".to_string()),
                "%d" => Some(self.home.to_string_lossy().into_owned()),
                "%h" => Some(self.host.clone()),
                "%n" => Some(self.original.to_string()),
                "%k" => Some(self.key_alias.clone()),
                "%p" => Some(self.port.to_string()),
                "%r" => Some(self.user.clone()),
                "%u" => super::ssh::local_user(),
                "%i" => Some(rustix::process::getuid().as_raw().to_string()),
                "%l" | "%L" => {
                    let uname = rustix::system::uname();
                    let name = uname.nodename().to_string_lossy().into_owned();
                    Some(match token {
                        "%L" => name.split('.').next().unwrap_or_default().to_string(),
                        _ => name,
                    })
                }
                "${" => match rest.find('}') {
                    Some(end) => match std::env::var(&rest[2..end]) {
                        Ok(v) => {
                            out.push_str(&v);
                            rest = &rest[end + 1..];
                            continue;
                        }
                        Err(_) => None,
                    },
                    None => None,
                },
                _ => None,
            };
            match expanded {
                Some(text) => {
                    out.push_str(&text);
                    rest = &rest[token.len()..];
                }
                None => {
                    let one = rest.chars().next().map_or(1, char::len_utf8);
                    out.push_str(&rest[..one]);
                    rest = &rest[one..];
                }
            }
        }
        out.push_str(rest);
        out
    }

    /// `~/x` below home; a relative path below `~/.ssh` (as ssh reads it).
    fn path(&self, value: &str) -> PathBuf {
        match value.strip_prefix("~/") {
            Some(rest) => self.home.join(rest),
            None if Path::new(value).is_absolute() => PathBuf::from(value),
            None => self.home.join(".ssh").join(value),
        }
    }
}

struct Reader<'a> {
    host: &'a str,
    user: Option<&'a str>,
    home: &'a Path,
    /// Where the files a relative `Include` names are.
    base: PathBuf,
    out: &'a mut HostConfig,
    written: &'a mut Written,
    depth: usize,
}

impl Reader<'_> {
    fn read_file(&mut self, file: &Path) {
        // An unreadable file is what ssh itself would complain about; here it
        // adds nothing, and the connection says what went wrong.
        let Ok(text) = fs_err::read_to_string(file) else {
            return;
        };
        let mut applies = true;
        for line in text.lines() {
            let Some((key, args, rest)) = split_line(line) else {
                continue;
            };
            match key.as_str() {
                "host" => applies = host_matches(self.host, &args),
                "match" => applies = self.match_applies(&args),
                "include" if applies && self.depth < 8 => {
                    for pattern in &args {
                        for f in self.include_files(pattern) {
                            self.depth += 1;
                            self.read_file(&f);
                            self.depth -= 1;
                        }
                    }
                }
                "proxycommand" if applies => self.set_proxy(Proxy::Command(rest)),
                "proxyjump" if applies => self.set_proxy(Proxy::Jump(rest)),
                _ if applies => self.set(&key, &args),
                _ => {}
            }
        }
    }

    fn set(&mut self, key: &str, args: &[String]) {
        let Some(value) = args.first().cloned() else {
            return;
        };
        let (o, w) = (&mut *self.out, &mut *self.written);
        match key {
            // `%h` here is the name given.
            "hostname" if o.host_name.is_none() => {
                o.host_name = Some(
                    value
                        .replace("%%", "\u{0}")
                        .replace("%h", self.host)
                        .replace('\u{0}', "%"),
                );
            }
            "user" if o.user.is_none() => o.user = Some(value),
            "port" if o.port.is_none() => o.port = value.parse().ok(),
            "identityfile" if value != "none" => w.identity_files.push(value),
            "certificatefile" if value != "none" => w.certificate_files.push(value),
            "identitiesonly" if o.identities_only.is_none() => {
                o.identities_only = Some(value.eq_ignore_ascii_case("yes"));
            }
            "identityagent" if w.agent.is_none() => w.agent = Some(value),
            "hashknownhosts" if o.hash_known_hosts.is_none() => {
                o.hash_known_hosts = Some(value.eq_ignore_ascii_case("yes"));
            }
            "hostkeyalias" if o.host_key_alias.is_none() => o.host_key_alias = Some(value),
            "connecttimeout" if o.connect_timeout.is_none() => o.connect_timeout = value.parse().ok(),
            "stricthostkeychecking" if o.new_host_keys.is_none() => {
                o.new_host_keys = match value.to_ascii_lowercase().as_str() {
                    "ask" => Some(NewHostKeys::Ask),
                    "accept-new" | "no" | "off" => Some(NewHostKeys::Accept),
                    "yes" => Some(NewHostKeys::Refuse),
                    _ => None,
                };
            }
            "userknownhostsfile" if w.known_hosts.is_none() => w.known_hosts = Some(args.to_vec()),
            "globalknownhostsfile" if w.global_known_hosts.is_none() => {
                w.global_known_hosts = Some(args.to_vec());
            }
            _ => {}
        }
    }

    /// Whether a `Match` line's criteria all hold for this host (`None`
    /// from one only ssh can evaluate: the section is skipped).
    fn match_applies(&self, args: &[String]) -> bool {
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            let (negated, criterion) = match arg.strip_prefix('!') {
                Some(c) => (true, c.to_ascii_lowercase()),
                None => (false, arg.to_ascii_lowercase()),
            };
            let holds = match criterion.as_str() {
                "all" | "final" => true,
                "host" | "originalhost" | "user" | "localuser" => {
                    let Some(patterns) = args.next() else {
                        return false;
                    };
                    let against = match criterion.as_str() {
                        "host" => self.out.host_name.clone().unwrap_or_else(|| self.host.to_string()),
                        "originalhost" => self.host.to_string(),
                        "user" => match (self.user, &self.out.user) {
                            (Some(u), _) => u.to_string(),
                            (None, Some(u)) => u.clone(),
                            (None, None) => super::ssh::local_user().unwrap_or_default(),
                        },
                        _ => super::ssh::local_user().unwrap_or_default(),
                    };
                    let list: Vec<String> = patterns.split(',').map(str::to_string).collect();
                    host_matches(&against, &list)
                }
                _ => return false,
            };
            if holds == negated {
                return false;
            }
        }
        true
    }

    /// The first of `ProxyJump` and `ProxyCommand` wins; `none` says
    /// "directly" and wins too.
    fn set_proxy(&mut self, proxy: Proxy) {
        if self.out.proxy.is_none() {
            self.out.proxy = Some(proxy);
        }
    }

    /// The files an `Include` names: a path, or a `*`/`?` pattern in its last
    /// component, sorted as ssh sorts them.
    fn include_files(&self, pattern: &str) -> Vec<PathBuf> {
        let path = match pattern.strip_prefix("~/") {
            Some(rest) => self.home.join(rest),
            None => self.base.join(pattern),
        };
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !name.contains(['*', '?']) {
            return vec![path];
        }
        let Some(dir) = path.parent() else {
            return Vec::new();
        };
        let mut files: Vec<PathBuf> = fs_err::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| wildcard(&name, &e.file_name().to_string_lossy()))
            .map(|e| e.path())
            .collect();
        files.sort();
        files
    }
}

/// A config line as its keyword (lowercase), its arguments (quotes
/// removed), and the arguments as written; `None` for blank lines and
/// comments.
fn split_line(line: &str) -> Option<(String, Vec<String>, String)> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let (key, rest) = match line.find(|c: char| c.is_whitespace() || c == '=') {
        Some(at) => (
            &line[..at],
            line[at..].trim_start_matches(|c: char| c.is_whitespace() || c == '='),
        ),
        None => (line, ""),
    };
    let mut args = Vec::new();
    let written = rest.trim().to_string();
    let mut rest = rest.trim();
    while !rest.is_empty() {
        let (arg, after) = match rest.strip_prefix('"') {
            Some(quoted) => quoted.split_once('"').unwrap_or((quoted, "")),
            None => rest.split_once(char::is_whitespace).unwrap_or((rest, "")),
        };
        args.push(arg.to_string());
        rest = after.trim_start();
    }
    Some((key.to_ascii_lowercase(), args, written))
}

/// Whether a `Host` line's patterns take `host`: one positive pattern
/// matches, and no `!` pattern does.
pub(super) fn host_matches(host: &str, patterns: &[String]) -> bool {
    let host = host.to_ascii_lowercase();
    let mut matched = false;
    for p in patterns {
        let p = p.to_ascii_lowercase();
        match p.strip_prefix('!') {
            Some(neg) if wildcard(neg, &host) => return false,
            Some(_) => {}
            None => matched |= wildcard(&p, &host),
        }
    }
    matched
}

/// `*` (any run of characters) and `?` (any one), as ssh_config's patterns.
fn wildcard(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let mut back: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                back = Some((pi, ti));
                pi += 1;
            }
            Some(&c) if c == '?' || c == t[ti] => {
                pi += 1;
                ti += 1;
            }
            _ => match back {
                Some((bp, bt)) => {
                    pi = bp + 1;
                    ti = bt + 1;
                    back = Some((bp, bt + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn for_host(file: &Path, host: &str, user: Option<&str>, home: &Path) -> HostConfig {
        with_system(file, None, host, (user, None), home)
    }

    #[test]
    fn the_machines_file_comes_after_the_users() {
        let dir = tempfile::tempdir().unwrap();
        let (home, etc) = (dir.path().join("home"), dir.path().join("etc"));
        fs_err::create_dir_all(home.join(".ssh")).unwrap();
        fs_err::create_dir_all(etc.join("ssh_config.d")).unwrap();
        fs_err::write(home.join(".ssh/config"), "Host *\n  User mine\n").unwrap();
        fs_err::write(
            etc.join("ssh_config"),
            "Include ssh_config.d/*.conf\nHost *\n  User theirs\n  HashKnownHosts yes\n",
        )
        .unwrap();
        fs_err::write(etc.join("ssh_config.d/port.conf"), "Port 2022\n").unwrap();
        let c = with_system(
            &home.join(".ssh/config"),
            Some(&etc.join("ssh_config")),
            "h",
            (None, None),
            &home,
        );
        assert_eq!(
            (c.user, c.port, c.hash_known_hosts),
            (Some("mine".into()), Some(2022), Some(true))
        );
    }

    #[test]
    fn expands_tokens_with_the_host_user_and_port_finally_chosen() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path();
        fs_err::create_dir_all(home.join(".ssh")).unwrap();
        // `%h` stands for the `HostName` a later section sets, as in ssh.
        fs_err::write(
            home.join(".ssh/config"),
            "Host *\n  IdentityFile %d/keys/%r@%h:%p\n  IdentityFile id_%n_%k_%%_%C_${HOME}_${DVT_NO_SUCH_VAR}\n  \
             CertificateFile ~/%u.crt\n  UserKnownHostsFile ~/kh.%k none\n  IdentityAgent ~/agent.%L\n\
             Host lab\n  HostName %h.example.org\n  User ana\n  Port 2200\n  HostKeyAlias lab-key\n",
        )
        .unwrap();
        let file = home.join(".ssh/config");
        let c = for_host(&file, "lab", None, home);
        let host_home = std::env::var("HOME").unwrap();
        let me = crate::remote::ssh::local_user().unwrap();
        let uname = rustix::system::uname();
        let machine = uname.nodename().to_string_lossy();
        let short = machine.split('.').next().unwrap();
        assert_eq!(
            (c.host_name.as_deref(), c.host_key_alias.as_deref()),
            (Some("lab.example.org"), Some("lab-key"))
        );
        assert_eq!(
            c.identity_files,
            vec![
                home.join("keys/ana@lab.example.org:2200"),
                home.join(format!(".ssh/id_lab_lab-key_%_%C_{host_home}_${{DVT_NO_SUCH_VAR}}")),
            ]
        );
        assert_eq!(c.certificate_files, vec![home.join(format!("{me}.crt"))]);
        assert_eq!(
            c.known_hosts,
            Some(vec![home.join("kh.lab-key"), PathBuf::from("/dev/null")])
        );
        assert_eq!(c.agent, Some(Agent::Socket(home.join(format!("agent.{short}")))));
        // Odd text is kept as written.
        let tokens = Tokens {
            home,
            host: "h".into(),
            original: "o",
            key_alias: "k".into(),
            port: 22,
            user: "u".into(),
        };
        assert_eq!(tokens.expand("a%"), "a%");
        assert_eq!(tokens.expand("${HOME"), "${HOME");
        assert_eq!(tokens.expand("é%hé%%%"), "éhé%%");
        // The user and port given outside the files win; no alias: `%k` is the name.
        let c = with_system(&file, None, "other", (Some("bo"), Some(22)), home);
        assert_eq!(c.identity_files[0], home.join("keys/bo@other:22"));
        assert_eq!(
            c.known_hosts,
            Some(vec![home.join("kh.other"), PathBuf::from("/dev/null")])
        );
    }

    #[test]
    fn reads_a_host_as_ssh_does() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path();
        fs_err::create_dir_all(home.join(".ssh/config.d")).unwrap();
        fs_err::write(
            home.join(".ssh/config.d/lab"),
            "Host gpu-*\n  IdentityFile ~/.ssh/lab_key\n  User labuser\n  ProxyJump bastion,me@inner:2200\n",
        )
        .unwrap();
        fs_err::write(
            home.join(".ssh/config"),
            "# comment\nInclude config.d/*\n\
             Host gpu-box !gpu-old\n  HostName=10.0.0.5\n  Port 2222\n  User first\n  IdentityFile \"id_%h\"\n  CertificateFile ~/.ssh/lab-cert.pub\n\
             Match host gpu-box\n  User never\n\
             Host *\n  User fallback\n  UserKnownHostsFile ~/kh /etc/kh2\n  GlobalKnownHostsFile none\n  Port 22\n  IdentitiesOnly yes\n  \
             IdentityAgent \"~/agent sock\"\n  ConnectTimeout 7\n  StrictHostKeyChecking accept-new\n  ProxyCommand  ssh -W \"%h:%p\" gate  \n\
             Host *\n  IdentitiesOnly no\n  IdentityAgent none\n",
        )
        .unwrap();
        let c = for_host(&home.join(".ssh/config"), "GPU-box", None, home);
        assert_eq!(
            c,
            HostConfig {
                host_name: Some("10.0.0.5".into()),
                user: Some("labuser".into()),
                port: Some(2222),
                identity_files: vec![home.join(".ssh/lab_key"), home.join(".ssh/id_10.0.0.5")],
                certificate_files: vec![home.join(".ssh/lab-cert.pub")],
                identities_only: Some(true),
                hash_known_hosts: None,
                host_key_alias: None,
                agent: Some(Agent::Socket(home.join("agent sock"))),
                known_hosts: Some(vec![home.join("kh"), PathBuf::from("/etc/kh2")]),
                global_known_hosts: Some(vec![PathBuf::from("/dev/null")]),
                new_host_keys: Some(NewHostKeys::Accept),
                connect_timeout: Some(7),
                proxy: Some(Proxy::Jump("bastion,me@inner:2200".into())),
            }
        );
        for (line, agent) in [
            ("IdentityAgent none", Agent::Off),
            ("IdentityAgent SSH_AUTH_SOCK", Agent::FromEnv),
            ("IdentityAgent $SSH_AUTH_SOCK", Agent::FromEnv),
            ("IdentityAgent $DVT_TEST_NO_SUCH_VARIABLE", Agent::Off),
            ("IdentityAgent /run/agent.sock", Agent::Socket("/run/agent.sock".into())),
        ] {
            fs_err::write(home.join("one"), format!("Host *\n  {line}\n")).unwrap();
            assert_eq!(
                for_host(&home.join("one"), "h", None, home).agent,
                Some(agent),
                "{line}"
            );
        }
        // A command is kept as written, quotes and all.
        assert_eq!(
            for_host(&home.join(".ssh/config"), "elsewhere", None, home).proxy,
            Some(Proxy::Command("ssh -W \"%h:%p\" gate".into()))
        );
        let old = for_host(&home.join(".ssh/config"), "gpu-old", None, home);
        assert_eq!(
            (old.host_name, old.user, old.port),
            (None, Some("labuser".into()), Some(22))
        );
        assert_eq!(for_host(&home.join("missing"), "x", None, home), HostConfig::default());

        // `Match`, as ssh evaluates it where it can.
        let me = crate::remote::ssh::local_user().unwrap();
        fs_err::write(
            home.join(".ssh/config"),
            format!(
                "Host lab\n  HostName 10.2.0.7\n\
                 Match originalhost lab user alice,bob\n  Port 2200\n\
                 Match host 10.2.0.* !localuser nobody-{me}\n  IdentityFile ~/.ssh/matched\n\
                 Match exec \"true\"\n  User never\n\
                 Match host lab\n  User not-after-hostname\n\
                 Match localuser {me}\n  UserKnownHostsFile ~/mine\n\
                 Match all\n  ProxyJump gate\n"
            ),
        )
        .unwrap();
        let c = for_host(&home.join(".ssh/config"), "lab", Some("alice"), home);
        assert_eq!(
            (c.port, c.identity_files, c.user, c.known_hosts, c.proxy),
            (
                Some(2200),
                vec![home.join(".ssh/matched")],
                None,
                Some(vec![home.join("mine")]),
                Some(Proxy::Jump("gate".into()))
            )
        );
        // `user` is the user given, else the file's so far, else this user.
        assert_eq!(
            for_host(&home.join(".ssh/config"), "lab", Some("carol"), home).port,
            None
        );
        assert_eq!(for_host(&home.join(".ssh/config"), "lab", None, home).port, None);
        assert!(wildcard("a*b?c", "axxbyc") && !wildcard("a*b", "ab c") && wildcard("*", ""));
    }
}
