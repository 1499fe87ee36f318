//! known_hosts files, read once per connection as OpenSSH reads them: host
//! fields that are lists of patterns (`*`, `?`, `!` to exclude, `[host]:port`
//! off port 22) or hashed (`|1|salt|hash`, as `HashKnownHosts yes` writes them),
//! several keys for one host (a key matches if any line holding it names the
//! host; it has changed only if none does and a line holds another key of its
//! type), `@cert-authority` and `@revoked` lines, and the user's files before
//! the machine's (`/etc/ssh/ssh_known_hosts`). A line that does not parse is
//! skipped, as ssh skips it.

use std::path::{Path, PathBuf};

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use russh::keys::ssh_key::public::KeyData;
use russh::keys::{Algorithm, PublicKey};

/// Where a line is: the file and its line number (from 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Line {
    pub file: PathBuf,
    pub number: usize,
}

impl std::fmt::Display for Line {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {} of `{}`", self.number, self.file.display())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Marker {
    None,
    CertAuthority,
    Revoked,
}

#[derive(Debug)]
struct Entry {
    at: Line,
    marker: Marker,
    hosts: String,
    key: PublicKey,
}

/// What known_hosts says of a server's key.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Verdict {
    /// A line naming the host holds this key.
    Known,
    /// No line naming the host holds it, and this line holds another key of
    /// its type: the key was replaced, or someone is in the middle.
    Changed(Line),
    /// No line naming the host holds a key of its type.
    Unknown,
}

/// The lines of a set of known_hosts files, in the order ssh reads them.
#[derive(Debug, Default)]
pub(super) struct KnownHosts {
    entries: Vec<Entry>,
}

impl KnownHosts {
    /// The lines of `files`, in order. A file that cannot be read holds none.
    pub fn read(files: &[PathBuf]) -> KnownHosts {
        let mut entries = Vec::new();
        for file in files {
            let Ok(text) = fs_err::read_to_string(file) else {
                continue;
            };
            entries.extend(text.lines().enumerate().filter_map(|(i, line)| {
                parse_line(line).map(|(marker, hosts, key)| Entry {
                    at: Line {
                        file: file.clone(),
                        number: i + 1,
                    },
                    marker,
                    hosts: hosts.to_string(),
                    key,
                })
            }));
        }
        KnownHosts { entries }
    }

    /// The plain lines (no marker) naming `host` on `port`.
    fn for_host(&self, host: &str, port: u16) -> impl Iterator<Item = &Entry> {
        let name = host_name(host, port);
        self.entries
            .iter()
            .filter(move |e| e.marker == Marker::None && hosts_match(&e.hosts, &name))
    }

    /// Whether `key` is the key of `host` on `port`, as ssh decides.
    pub fn check(&self, host: &str, port: u16, key: &PublicKey) -> Verdict {
        let mut changed = None;
        for e in self.for_host(host, port) {
            if e.key.key_data() == key.key_data() {
                return Verdict::Known;
            }
            if changed.is_none() && e.key.algorithm() == key.algorithm() {
                changed = Some(e.at.clone());
            }
        }
        changed.map_or(Verdict::Unknown, Verdict::Changed)
    }

    /// Whether a line gives a key of `host` on `port`, or an authority for it.
    pub fn knows(&self, host: &str, port: u16) -> bool {
        self.for_host(host, port).next().is_some() || !self.cert_authorities(host, port).is_empty()
    }

    /// The algorithms of the keys known for `host` on `port`, each once, in
    /// the order of the lines: the server is asked for these first, as ssh
    /// asks, so that a host known by its ECDSA key is not met with its Ed25519
    /// one.
    pub fn algorithms(&self, host: &str, port: u16) -> Vec<Algorithm> {
        let mut out: Vec<Algorithm> = Vec::new();
        for e in self.for_host(host, port) {
            let a = e.key.algorithm();
            if !out.contains(&a) {
                out.push(a);
            }
        }
        out
    }

    /// The line that marks `key` `@revoked`, if one does (whatever hosts it
    /// names: a revoked key is never accepted).
    pub fn revoked(&self, key: &KeyData) -> Option<&Line> {
        self.entries
            .iter()
            .find(|e| e.marker == Marker::Revoked && e.key.key_data() == key)
            .map(|e| &e.at)
    }

    /// The keys of the `@cert-authority` lines naming `host` on `port`.
    pub fn cert_authorities(&self, host: &str, port: u16) -> Vec<PublicKey> {
        let name = host_name(host, port);
        self.entries
            .iter()
            .filter(|e| e.marker == Marker::CertAuthority && hosts_match(&e.hosts, &name))
            .map(|e| e.key.clone())
            .collect()
    }
}

/// `host`, or `[host]:port` off port 22: the name known_hosts lines give.
pub(super) fn host_name(host: &str, port: u16) -> String {
    match port {
        22 => host.to_string(),
        p => format!("[{host}]:{p}"),
    }
}

/// A line's marker, host field and key; `None` for a comment, a blank line or
/// one that does not parse.
fn parse_line(line: &str) -> Option<(Marker, &str, PublicKey)> {
    let mut fields = line.split_whitespace();
    let mut first = fields.next()?;
    let marker = match first {
        "@cert-authority" => Marker::CertAuthority,
        "@revoked" => Marker::Revoked,
        _ if first.starts_with('#') => return None,
        _ => Marker::None,
    };
    if marker != Marker::None {
        first = fields.next()?;
    }
    let (kind, data) = (fields.next()?, fields.next()?);
    let key = PublicKey::from_openssh(&format!("{kind} {data}")).ok()?;
    Some((marker, first, key))
}

/// Whether a line's host field names `name`: a hashed name (`|1|salt|hash`,
/// HMAC-SHA1 of the name keyed with the salt), or patterns as ssh_config's
/// `Host` takes them.
fn hosts_match(field: &str, name: &str) -> bool {
    if let Some(hashed) = field.strip_prefix("|1|") {
        let b64 = base64::engine::general_purpose::STANDARD;
        let Some((salt, hash)) = hashed.split_once('|') else {
            return false;
        };
        let (Ok(salt), Ok(hash)) = (b64.decode(salt), b64.decode(hash)) else {
            return false;
        };
        let Ok(mac) = Hmac::<sha1::Sha1>::new_from_slice(&salt) else {
            return false;
        };
        return mac.chain_update(name.as_bytes()).verify_slice(&hash).is_ok();
    }
    let patterns: Vec<String> = field.split(',').map(str::to_string).collect();
    super::ssh_config::host_matches(name, &patterns)
}

/// `name` hashed as ssh hashes it with `HashKnownHosts yes`: `|1|SALT|HASH`,
/// HASH the HMAC-SHA1 of the name keyed with SALT (20 bytes, base64). The
/// salt is stored in the line: it must differ from line to line, not be
/// secret.
pub(super) fn hashed(name: &str) -> String {
    let mut seed = blake3::Hasher::new();
    seed.update(name.as_bytes());
    seed.update(&std::process::id().to_le_bytes());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    seed.update(&now.as_nanos().to_le_bytes());
    let seed = seed.finalize();
    hashed_with(name, &seed.as_bytes()[..20])
}

fn hashed_with(name: &str, salt: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD;
    let Ok(mac) = Hmac::<sha1::Sha1>::new_from_slice(salt) else {
        return name.to_string();
    };
    let hash = mac.chain_update(name.as_bytes()).finalize().into_bytes();
    format!("|1|{}|{}", b64.encode(salt), b64.encode(hash))
}

/// The user's known_hosts files where none is configured.
pub(super) fn default_user_files(home: &Path) -> Vec<PathBuf> {
    vec![home.join(".ssh/known_hosts"), home.join(".ssh/known_hosts2")]
}

/// The machine's known_hosts files where `GlobalKnownHostsFile` names none.
pub(super) fn default_global_files() -> Vec<PathBuf> {
    vec![
        PathBuf::from("/etc/ssh/ssh_known_hosts"),
        PathBuf::from("/etc/ssh/ssh_known_hosts2"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILIG2T/B0l0gaqj3puu510tu9N1OkQ4znY3LYuEm5zCF";
    const ED2: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHUCvGrDbTzGYrEoyTdf4lZNz3mpfHKDTDgbk9JT79aK";

    fn known(text: &str) -> (tempfile::TempDir, KnownHosts) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("known_hosts");
        fs_err::write(&file, text).unwrap();
        let k = KnownHosts::read(&[file, dir.path().join("missing")]);
        (dir, k)
    }

    fn key(line: &str) -> PublicKey {
        PublicKey::from_openssh(line).unwrap()
    }

    #[test]
    fn hashed_names_and_patterns_match_as_ssh_matches_them() {
        // The hashed line is russh's test vector: `example.com`, salted.
        let text = format!(
            "|1|O33ESRMWPVkMYIwJ1Uw+n877jTo=|nuuC5vEqXlEZ/8BXQR7m619W6Ak= {ED}\n\
             *.lab,!gate.lab {ED}\n[10.0.0.?]:2222\t{ED} comment\n"
        );
        let (_d, k) = known(&text);
        let ed = key(ED);
        assert_eq!(k.check("example.com", 22, &ed), Verdict::Known);
        assert_eq!(k.check("example.org", 22, &ed), Verdict::Unknown);
        assert_eq!(k.check("gpu.lab", 22, &ed), Verdict::Known);
        assert_eq!(k.check("gate.lab", 22, &ed), Verdict::Unknown);
        assert_eq!(k.check("10.0.0.7", 2222, &ed), Verdict::Known);
        assert_eq!(k.check("10.0.0.7", 22, &ed), Verdict::Unknown);
    }

    #[test]
    fn a_key_is_known_if_any_line_holds_it_and_changed_only_if_none_does() {
        let (_d, k) = known(&format!("# keys\nhost {ED2}\nbroken line\nhost {ED}\n"));
        assert_eq!(k.check("host", 22, &key(ED)), Verdict::Known);
        let (d, k) = known(&format!("host {ED2}\n"));
        let at = Line {
            file: d.path().join("known_hosts"),
            number: 1,
        };
        assert_eq!(k.check("host", 22, &key(ED)), Verdict::Changed(at));
        assert_eq!(k.algorithms("host", 22), vec![Algorithm::Ed25519]);
        assert!(k.knows("host", 22) && !k.knows("other", 22));
    }

    #[test]
    fn hashed_names_are_written_as_ssh_writes_them() {
        // ssh-keygen -H's line for `example.com`, salt and all (russh's vector).
        let salt = base64::engine::general_purpose::STANDARD
            .decode("O33ESRMWPVkMYIwJ1Uw+n877jTo=")
            .unwrap();
        assert_eq!(
            hashed_with("example.com", &salt),
            "|1|O33ESRMWPVkMYIwJ1Uw+n877jTo=|nuuC5vEqXlEZ/8BXQR7m619W6Ak="
        );
        let (one, two) = (hashed("[10.0.0.7]:2222"), hashed("[10.0.0.7]:2222"));
        assert!(one != two, "the salt must differ");
        assert!(hosts_match(&one, "[10.0.0.7]:2222") && !hosts_match(&one, "10.0.0.7"));
    }

    #[test]
    fn markers_are_kept_apart_from_host_keys() {
        let (_d, k) = known(&format!("@revoked * {ED}\n@cert-authority *.lab {ED2}\n"));
        assert_eq!(k.check("a.lab", 22, &key(ED)), Verdict::Unknown);
        assert_eq!(k.revoked(key(ED).key_data()).map(|l| l.number), Some(1));
        assert_eq!(k.cert_authorities("a.lab", 22), vec![key(ED2)]);
        assert!(k.cert_authorities("a.org", 22).is_empty());
        assert!(k.knows("a.lab", 22));
    }
}
