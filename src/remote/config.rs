//! Remote configuration: `[remote.NAME]` tables in `.dvt/config.toml` (secrets in
//! `.dvt/config.local.toml`), the URL schemes dvt understands, and the option keys
//! each backend takes. Keys follow DVC's names so that DVC users can reuse them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use toml_edit::{DocumentMut, Item, Table, Value};

use crate::error::{RemoteError, Result};
use crate::repo::{Config, ConfigLevel, Repo};

/// Which kind of store a remote URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    /// A directory: a plain path or `file://`.
    Local,
    /// Amazon S3 or an S3-compatible store: `s3://bucket/prefix`.
    S3,
    /// Google Cloud Storage: `gs://bucket/prefix`.
    Gcs,
    /// Azure Blob Storage: `az://container/prefix` (or `azure://`).
    Azure,
    /// HTTP with WebDAV: `http(s)://host/path` (or `webdav(s)://`).
    Http,
    /// A directory on a server reached over SSH (SFTP):
    /// `ssh://[user@]host[:port]/path` (or `sftp://`).
    Ssh,
}

/// Keys every remote accepts.
const COMMON_KEYS: &[&str] = &["url", "jobs", "retries", "timeout", "pack"];
const LOCAL_KEYS: &[&str] = &["hardlink"];
const S3_KEYS: &[&str] = &[
    "endpointurl",
    "region",
    "profile",
    "credentialpath",
    "configpath",
    "access_key_id",
    "secret_access_key",
    "session_token",
    "allow_http",
    "ssl_verify",
    "sse",
    "sse_kms_key_id",
    "sse_customer_key",
    "sse_customer_algorithm",
];
const GCS_KEYS: &[&str] = &[
    "projectname",
    "credentialpath",
    "endpointurl",
    "allow_http",
    "ssl_verify",
];
const AZURE_KEYS: &[&str] = &[
    "account_name",
    "account_key",
    "connection_string",
    "sas_token",
    "tenant_id",
    "client_id",
    "client_secret",
    "endpointurl",
    "allow_http",
    "ssl_verify",
];
const HTTP_KEYS: &[&str] = &[
    "user",
    "password",
    "ask_password",
    "auth",
    "token",
    "custom_auth_header",
    "ssl_verify",
];
const SSH_KEYS: &[&str] = &[
    "user",
    "port",
    "keyfile",
    "passphrase",
    "password",
    "known_hosts",
    "allow_agent",
    "proxy_jump",
    "ask_password",
    "ask_passphrase",
];

/// Keys whose values are secrets: written to `config.local.toml`, never printed.
pub const SECRET_KEYS: &[&str] = &[
    "secret_access_key",
    "session_token",
    "account_key",
    "connection_string",
    "sas_token",
    "client_secret",
    "password",
    "passphrase",
    "token",
    "sse_customer_key",
];

/// Keys whose values are numbers or booleans rather than strings.
const INT_KEYS: &[&str] = &["jobs", "retries", "timeout", "port"];
/// Of those, the ones 0 makes no sense for: no transfers at once, no port.
const AT_LEAST_ONE: &[&str] = &["jobs", "port"];

/// What a number option must be, for its error message.
fn number_rule(key: &str) -> &'static str {
    match AT_LEAST_ONE.contains(&key) {
        true => "a whole number, 1 or more",
        false => "a whole number, 0 or more",
    }
}
const BOOL_KEYS: &[&str] = &[
    "allow_http",
    "hardlink",
    "pack",
    "allow_agent",
    "ask_password",
    "ask_passphrase",
];

impl Scheme {
    /// The name messages and reports use: `local`, `s3`, `gcs`, `azure`, `http`.
    pub fn name(self) -> &'static str {
        match self {
            Scheme::Local => "local",
            Scheme::S3 => "s3",
            Scheme::Gcs => "gcs",
            Scheme::Azure => "azure",
            Scheme::Http => "http",
            Scheme::Ssh => "ssh",
        }
    }

    /// The option keys this kind of remote takes (besides `url`, `jobs`, `retries`, `timeout`).
    pub fn keys(self) -> &'static [&'static str] {
        match self {
            Scheme::Local => LOCAL_KEYS,
            Scheme::S3 => S3_KEYS,
            Scheme::Gcs => GCS_KEYS,
            Scheme::Azure => AZURE_KEYS,
            Scheme::Http => HTTP_KEYS,
            Scheme::Ssh => SSH_KEYS,
        }
    }
}

/// A remote URL taken apart.
#[derive(Debug, Clone)]
pub struct Location {
    /// The kind of store.
    pub scheme: Scheme,
    /// Bucket or container (empty for local and HTTP remotes); for SSH, the
    /// server as `[user@]host[:port]`.
    pub bucket: String,
    /// Key prefix inside the bucket, without leading or trailing `/`. For SSH
    /// the directory's path, from `/`, or from the login directory when it
    /// starts with `~/`.
    pub prefix: String,
    /// For a local remote: its directory, absolute.
    pub dir: Option<PathBuf>,
    /// For an HTTP remote: the base URL, with `webdav` mapped to `http`.
    pub base_url: Option<String>,
}

/// The URL schemes dvt reads, as written before `://`.
const URL_SCHEMES: [&str; 13] = [
    "file", "s3", "gs", "gcs", "az", "azure", "abfs", "http", "https", "webdav", "webdavs", "ssh", "sftp",
];

/// Whether `url` is written as git's scp-like `[user@]host:path`: a colon
/// with no slash before it (and more than a drive letter).
fn scp_like(url: &str) -> bool {
    match url.split_once(':') {
        Some((server, _)) => server.len() > 1 && !server.contains('/') && !url.contains("://"),
        None => false,
    }
}

/// Whether a setting's value is a relative local path (`cache.dir`, a
/// directory remote's URL, a CA bundle), which a config file outside the
/// repository must not hold as such: not a URL, not `~/…`, not `true`/`false`.
pub(crate) fn relative_local_path(value: &str) -> bool {
    !value.contains("://")
        && !scp_like(value)
        && !value.starts_with('~')
        && !matches!(value, "true" | "false")
        && Path::new(value).is_relative()
}

/// A local path with a leading `~` or `~/` made the home directory's, as a
/// shell would; `~user` is refused rather than read as a directory named so.
pub(crate) fn expand_home(path: &str) -> std::result::Result<PathBuf, String> {
    let rest = match path.strip_prefix('~') {
        None => return Ok(PathBuf::from(path)),
        Some("") => "",
        Some(r) if r.starts_with('/') => r.trim_start_matches('/'),
        Some(_) => return Err(format!("`{path}`: write another user's home directory in full")),
    };
    let home = std::env::home_dir().ok_or_else(|| format!("`{path}`: HOME is not set"))?;
    Ok(home.join(rest))
}

/// A local path a setting names (a directory remote, `cache.dir`, a CA
/// bundle): `~/` is the home directory, a relative path the repository root's.
pub(crate) fn local_path(value: &str, root: &Path) -> std::result::Result<PathBuf, String> {
    let path = expand_home(value)?;
    Ok(if path.is_absolute() { path } else { root.join(path) })
}

/// Parses a remote URL. Relative local paths are relative to the repository
/// root; `~/` is the home directory. `[user@]host:dir` is SSH, as in git.
pub fn parse_url(remote: &str, url: &str, root: &Path) -> Result<Location> {
    let bad = |message: String| RemoteError::Config {
        remote: remote.to_string(),
        message,
    };
    let Some((scheme, rest)) = url.split_once("://") else {
        if url.is_empty() {
            return Err(bad("the URL is empty".into()).into());
        }
        return match url.split_once(':') {
            Some((head, tail)) if URL_SCHEMES.contains(&head.to_ascii_lowercase().as_str()) => {
                let tail = tail.trim_start_matches('/');
                let meant = match head.eq_ignore_ascii_case("file") {
                    true => format!("file:///{tail}"),
                    false => format!("{head}://{tail}"),
                };
                Err(bad(format!(
                    "`{url}` is not a URL (`{head}:` takes two slashes): did you mean `{meant}`?"
                ))
                .into())
            }
            // `[user@]host:path`, as git reads it: SSH, the path from the
            // login directory unless it starts with `/`.
            Some((server, path)) if scp_like(url) => {
                let path = match path.strip_prefix('/') {
                    Some(absolute) => absolute.trim_matches('/').to_string(),
                    None => format!("~/{}", path.trim_start_matches("~/").trim_matches('/')),
                };
                parse_url(remote, &format!("ssh://{server}/{path}"), root).map_err(|_| {
                    bad(format!(
                        "`{url}` names no directory: write `[USER@]HOST:DIR` (git's form of an SSH URL) or `ssh://HOST/DIR`"
                    ))
                    .into()
                })
            }
            _ => Ok(local(crate::repo::normalize(&local_path(url, root).map_err(bad)?))),
        };
    };
    let scheme_lc = scheme.to_ascii_lowercase();
    let kind = match scheme_lc.as_str() {
        "file" => {
            if !rest.starts_with('/') {
                return Err(bad(format!("`{url}`: a file:// URL needs an absolute path (file:///dir)")).into());
            }
            return Ok(local(PathBuf::from(rest)));
        }
        "s3" => Scheme::S3,
        "gs" | "gcs" => Scheme::Gcs,
        "az" | "azure" | "abfs" => Scheme::Azure,
        "http" | "https" | "webdav" | "webdavs" => Scheme::Http,
        "ssh" | "sftp" => Scheme::Ssh,
        _ => {
            return Err(bad(format!(
                "unsupported URL scheme `{scheme}://` in `{url}`; dvt supports a directory path, \
                 file://, s3://, gs://, az://, http(s):// (WebDAV, or a plain web server to read from) and ssh://"
            ))
            .into());
        }
    };
    if kind == Scheme::Ssh {
        let (server, path) = rest.split_once('/').unwrap_or((rest, ""));
        let host = server.rsplit_once('@').map_or(server, |(_, h)| h);
        if host.is_empty() || host.starts_with(':') {
            return Err(bad(format!("`{url}` names no host")).into());
        }
        let path = path.trim_matches('/');
        if path.is_empty() || path == "~" {
            return Err(bad(format!(
                "`{url}` names no directory: give its path after the host (`ssh://host/srv/dvt`, or \
                 `ssh://host/~/dvt` below your login directory)"
            ))
            .into());
        }
        return Ok(Location {
            scheme: kind,
            bucket: server.to_string(),
            prefix: path.to_string(),
            dir: None,
            base_url: None,
        });
    }
    if kind == Scheme::Http {
        let origin_scheme = match scheme_lc.as_str() {
            "webdav" | "http" => "http",
            _ => "https",
        };
        let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
        if host.is_empty() {
            return Err(bad(format!("`{url}` names no host")).into());
        }
        // The store is rooted at the server's origin and the URL's path is the
        // prefix: the WebDAV client then creates every missing collection itself.
        return Ok(Location {
            scheme: kind,
            bucket: String::new(),
            prefix: path.trim_matches('/').to_string(),
            dir: None,
            base_url: Some(format!("{origin_scheme}://{host}")),
        });
    }
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(bad(format!("`{url}` names no bucket or container")).into());
    }
    Ok(Location {
        scheme: kind,
        bucket: bucket.to_string(),
        prefix: prefix.trim_matches('/').to_string(),
        dir: None,
        base_url: None,
    })
}

fn local(dir: PathBuf) -> Location {
    Location {
        scheme: Scheme::Local,
        bucket: String::new(),
        prefix: String::new(),
        dir: Some(dir),
        base_url: None,
    }
}

/// One remote's settings, merged from both config files.
#[derive(Debug, Clone)]
pub struct RemoteSpec {
    /// The remote's name.
    pub name: String,
    /// Its URL as configured.
    pub url: String,
    /// Every other key, as strings.
    pub options: BTreeMap<String, String>,
}

impl RemoteSpec {
    /// An option's value.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.options.get(key).map(String::as_str)
    }

    /// An integer option, checked.
    pub fn int(&self, key: &str) -> Result<Option<u64>> {
        self.get(key)
            .map(|v| {
                v.parse::<u64>()
                    .ok()
                    .filter(|n| *n > 0 || !AT_LEAST_ONE.contains(&key))
                    .ok_or_else(|| {
                        RemoteError::Config {
                            remote: self.name.clone(),
                            message: format!("`{key}` must be {}, not `{v}`", number_rule(key)),
                        }
                        .into()
                    })
            })
            .transpose()
    }

    /// A boolean option, checked.
    pub fn flag(&self, key: &str) -> Result<Option<bool>> {
        self.get(key)
            .map(|v| match v {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(RemoteError::Config {
                    remote: self.name.clone(),
                    message: format!("`{key}` must be true or false, not `{v}`"),
                }
                .into()),
            })
            .transpose()
    }

    /// The values of secret options, to strip from messages.
    pub fn secrets(&self) -> Vec<String> {
        SECRET_KEYS
            .iter()
            .filter_map(|k| self.get(k))
            .filter(|v| v.len() >= 4)
            .map(str::to_string)
            .collect()
    }
}

fn value_string(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The configured remote names, sorted.
pub fn names(config: &Config) -> Vec<String> {
    config.remote.keys().cloned().collect()
}

/// Which remote to use: `asked` if given, else `core.remote`, else the only one.
pub fn choose(config: &Config, asked: Option<&str>) -> Result<String> {
    let known = names(config);
    let name = match asked.filter(|n| !n.is_empty()) {
        Some(n) => n.to_string(),
        None => match (&config.core.remote, known.as_slice()) {
            (Some(d), _) => d.clone(),
            (None, [only]) => only.clone(),
            (None, _) => return Err(RemoteError::NoDefault { known }.into()),
        },
    };
    if !config.remote.contains_key(&name) {
        return Err(RemoteError::Unknown { name, known }.into());
    }
    Ok(name)
}

/// The settings of remote `name`, checked against the keys its scheme takes.
pub fn spec(config: &Config, name: &str, root: &Path) -> Result<(RemoteSpec, Location)> {
    let Some(table) = config.remote.get(name) else {
        return Err(RemoteError::Unknown {
            name: name.to_string(),
            known: names(config),
        }
        .into());
    };
    let bad = |message: String| RemoteError::Config {
        remote: name.to_string(),
        message,
    };
    let url = match table.get("url") {
        Some(toml::Value::String(u)) => u.clone(),
        Some(_) => return Err(bad("`url` must be a string".into()).into()),
        None => return Err(bad("no `url` is set".into()).into()),
    };
    let location = parse_url(name, &url, root)?;
    let mut options = BTreeMap::new();
    for (k, v) in table {
        if k == "url" {
            continue;
        }
        check_key(name, location.scheme, k)?;
        let mut value = value_string(v);
        if k == "ssl_verify" && value != "true" && value != "false" {
            // A CA bundle, as the remote's directory: relative to the repository.
            value = local_path(&value, root)
                .map_err(|message| RemoteError::Config {
                    remote: name.to_string(),
                    message,
                })?
                .to_string_lossy()
                .into_owned();
        }
        options.insert(k.clone(), value);
    }
    Ok((
        RemoteSpec {
            name: name.to_string(),
            url,
            options,
        },
        location,
    ))
}

pub(crate) fn check_key(remote: &str, scheme: Scheme, key: &str) -> Result<()> {
    if COMMON_KEYS.contains(&key) || scheme.keys().contains(&key) {
        return Ok(());
    }
    let mut allowed: Vec<&str> = COMMON_KEYS.iter().chain(scheme.keys()).copied().collect();
    allowed.retain(|k| *k != "url");
    let why = match dvc_only(key) {
        Some(why) => format!(": {why}"),
        // `url` is set too (`remote modify NAME url URL`), though not listed.
        None => match crate::suggest::closest(key, allowed.iter().copied().chain(["url"])) {
            Some(k) => format!(" (did you mean `{k}`?)"),
            None => String::new(),
        },
    };
    Err(RemoteError::Config {
        remote: remote.to_string(),
        message: format!(
            "unknown option `{key}` for {} remotes{why}; they take: {}",
            scheme.name(),
            allowed.join(", ")
        ),
    }
    .into())
}

/// Why an option of DVC's remotes has no counterpart here, for those a DVC
/// user is likely to set.
fn dvc_only(key: &str) -> Option<&'static str> {
    Some(match key {
        "gss_auth" => {
            "Kerberos (GSSAPI) logins are not supported: log in with a key, the ssh agent, a certificate or a password"
        }
        "acl" | "grant_read" | "grant_read_acp" | "grant_write_acp" | "grant_full_control" => {
            "dvt sets no object ACLs: let the bucket own its objects (S3 Object Ownership) instead"
        }
        "version_aware" | "worktree" => {
            "cloud-versioned remotes are not supported: a remote keeps dvt's content-addressed layout"
        }
        "use_ssl" => "give `endpointurl` as `https://…` or `http://…` (with `allow_http`)",
        "listobjects" => "not needed: dvt lists or asks object by object as it sees fit",
        "read_timeout" | "connect_timeout" => {
            "set `timeout` (seconds) instead: dvt's limit for each request (for SSH, for connecting too)"
        }
        "method" => {
            "dvt uploads to a WebDAV server with PUT and MOVE, and never to a plain web server, which it only reads"
        }
        "cert_path" | "key_path" => "client TLS certificates are not supported: use `user`/`password` or a `token`",
        _ => return None,
    })
}

/// Checks a remote name: letters, digits, `-`, `_`, `.`.
pub fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        && !name.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(RemoteError::Config {
            remote: name.to_string(),
            message: "a remote name may hold only letters, digits, `-`, `_` and `.`".into(),
        }
        .into())
    }
}

/// A remote as `dvt remote list` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RemoteSummary {
    /// Its name.
    pub name: String,
    /// Its URL.
    pub url: String,
    /// Whether it is the default.
    pub default: bool,
    /// Its options other than `url`; secret values are shown as `***`.
    pub options: BTreeMap<String, String>,
}

/// Every configured remote, secrets masked.
pub fn list(repo: &Repo) -> Vec<RemoteSummary> {
    list_config(repo.config())
}

/// Every remote `config` holds, secrets masked.
pub fn list_config(config: &Config) -> Vec<RemoteSummary> {
    config
        .remote
        .iter()
        .map(|(name, table)| RemoteSummary {
            name: name.clone(),
            url: table.get("url").map(value_string).unwrap_or_default(),
            default: config.core.remote.as_deref() == Some(name.as_str()),
            options: table
                .iter()
                .filter(|(k, _)| k.as_str() != "url")
                .map(|(k, v)| {
                    let shown = if SECRET_KEYS.contains(&k.as_str()) {
                        "***".to_string()
                    } else {
                        value_string(v)
                    };
                    (k.clone(), shown)
                })
                .collect(),
        })
        .collect()
}

fn remotes_table(doc: &mut DocumentMut) -> &mut Table {
    let item = doc.entry("remote").or_insert_with(|| {
        let mut t = Table::new();
        t.set_implicit(true);
        Item::Table(t)
    });
    if !item.is_table() {
        *item = Item::Table(Table::new());
    }
    item.as_table_mut().expect("just made a table")
}

fn set_default_in(doc: &mut DocumentMut, name: Option<&str>) {
    let core = doc.entry("core").or_insert_with(|| Item::Table(Table::new()));
    if !core.is_table() {
        *core = Item::Table(Table::new());
    }
    let core = core.as_table_mut().expect("just made a table");
    match name {
        Some(n) => {
            core.insert("remote", toml_edit::value(n));
        }
        None => {
            core.remove("remote");
        }
    }
}

/// Refuses a relative path (`value` of `cache.dir`, or a remote's directory or
/// CA bundle) for a config file outside the repository: it would be read from
/// wherever the file is. The message says why.
pub(crate) fn check_outside_path(level: ConfigLevel, value: &str) -> std::result::Result<(), String> {
    match level.is_outside() && relative_local_path(value) {
        true => Err(format!(
            "`{value}` is a relative path: the {level} config applies to repositories anywhere, give an absolute one"
        )),
        false => Ok(()),
    }
}

/// Where in the repository a directory remote at `url` would be, if it is
/// inside it: git would see what `push` writes there.
pub fn inside_repository(repo: &Repo, url: &str) -> Option<String> {
    let dir = parse_url("", url, repo.root()).ok()?.dir?;
    let rel = dir.strip_prefix(repo.root()).ok()?;
    Some(rel.to_string_lossy().into_owned())
}

/// `dvt remote add`: records remote `name` at `url` in the file of `level`,
/// optionally as the default.
pub fn add(repo: &Repo, name: &str, url: &str, default: bool, level: ConfigLevel, force: bool) -> Result<()> {
    check_name(name)?;
    parse_url(name, url, repo.root())?;
    check_outside_path(level, url).map_err(|message| RemoteError::Config {
        remote: name.to_string(),
        message,
    })?;
    if repo.config().remote.contains_key(name) && !force {
        return Err(RemoteError::Exists { name: name.to_string() }.into());
    }
    repo.edit_config(level, |doc| {
        let mut t = Table::new();
        t.insert("url", toml_edit::value(url));
        remotes_table(doc).insert(name, Item::Table(t));
        if default {
            set_default_in(doc, Some(name));
        }
        Ok(())
    })
}

/// `dvt remote remove`: forgets remote `name` in the file of `level`, or
/// with `None` in both of the repository's.
pub fn remove(repo: &Repo, name: &str, level: Option<ConfigLevel>) -> Result<()> {
    replace(repo, name, None, level).map(|_| ())
}

/// `dvt remote rename`: renames remote `old` to `new` in the file of `level`,
/// or with `None` in both of the repository's, keeping its options and its
/// place as the default. Returns whether the committed `config.toml` changed.
pub fn rename(repo: &Repo, old: &str, new: &str, level: Option<ConfigLevel>) -> Result<bool> {
    check_name(new)?;
    if repo.config().remote.contains_key(new) {
        return Err(RemoteError::Config {
            remote: new.to_string(),
            message: "a remote of that name exists: remove it first, or choose another name".into(),
        }
        .into());
    }
    replace(repo, old, Some(new), level)
}

/// Renames remote `old` to `new`, or with `None` deletes it, in the file of
/// `level` (`None`: both of the repository's), default included. Returns
/// whether the committed file changed.
fn replace(repo: &Repo, old: &str, new: Option<&str>, level: Option<ConfigLevel>) -> Result<bool> {
    let config = repo.config();
    if !config.remote.contains_key(old) {
        return Err(RemoteError::Unknown {
            name: old.to_string(),
            known: names(config),
        }
        .into());
    }
    let levels = match level {
        Some(l) => vec![l],
        None => vec![ConfigLevel::Project, ConfigLevel::Local],
    };
    let (mut project, mut any) = (false, false);
    for &level in &levels {
        if !repo.config_file(level)?.exists() {
            continue;
        }
        let mut changed = false;
        repo.edit_config(level, |doc| {
            if let Some(t) = doc.get_mut("remote").and_then(Item::as_table_mut)
                && let Some(item) = t.remove(old)
            {
                if let Some(new) = new {
                    t.insert(new, item);
                }
                changed = true;
            }
            let is_default = doc
                .get("core")
                .and_then(|c| c.get("remote"))
                .and_then(Item::as_str)
                .is_some_and(|d| d == old);
            if is_default {
                set_default_in(doc, new);
                changed = true;
            }
            Ok(())
        })?;
        project |= changed && level == ConfigLevel::Project;
        any |= changed;
    }
    if !any {
        // Set in a file the command was not asked to change: name it.
        let holder = ConfigLevel::ALL.into_iter().filter(|l| !levels.contains(l)).find(|&l| {
            crate::ops::config::list(repo, crate::ops::config::Scope::Only(l))
                .is_ok_and(|set| set.iter().any(|s| s.name == format!("remote.{old}.url")))
        });
        let message = match holder {
            Some(l) => format!(
                "it is set in the {l} config (`{}`): run again with `--{l}`",
                repo.config_file(l)?.display()
            ),
            None => "the config file asked for does not set it".into(),
        };
        return Err(RemoteError::Config {
            remote: old.to_string(),
            message,
        }
        .into());
    }
    Ok(project)
}

/// `dvt remote default`: makes `name` the default remote (`None` unsets it)
/// in the file of `level`.
pub fn set_default(repo: &Repo, name: Option<&str>, level: ConfigLevel) -> Result<()> {
    if let Some(n) = name {
        choose(repo.config(), Some(n))?;
    }
    repo.edit_config(level, |doc| {
        set_default_in(doc, name);
        Ok(())
    })
}

/// `dvt remote modify`: sets (or with `value = None`, unsets) one option in
/// the file of `level`; secret keys asked of `config.toml` go to
/// `config.local.toml`. Returns the level written.
pub fn modify(repo: &Repo, name: &str, key: &str, value: Option<&str>, level: ConfigLevel) -> Result<ConfigLevel> {
    let config = repo.config();
    let (_, location) = spec(config, name, repo.root())?;
    check_key(name, location.scheme, key)?;
    if key == "url"
        && let Some(v) = value
    {
        parse_url(name, v, repo.root())?;
    }
    if let (Some(v), "url" | "ssl_verify") = (value, key) {
        check_outside_path(level, v).map_err(|message| RemoteError::Config {
            remote: name.to_string(),
            message,
        })?;
    }
    if level.is_outside() && !repo.config_at(level)?.remote.contains_key(name) {
        // Options alone there would be a remote without a URL in every other repository.
        return Err(RemoteError::Config {
            remote: name.to_string(),
            message: format!(
                "the {level} config does not define it: set its options with `--local`, or add it with \
                 `dvt remote add --{level}`"
            ),
        }
        .into());
    }
    let level = match level {
        ConfigLevel::Project if SECRET_KEYS.contains(&key) => ConfigLevel::Local,
        other => other,
    };
    let item = match value.map(|v| typed_value(name, key, v)).transpose()? {
        None => None,
        Some(toml::Value::Integer(i)) => Some(toml_edit::value(i)),
        Some(toml::Value::Boolean(b)) => Some(toml_edit::value(b)),
        Some(v) => Some(toml_edit::value(Value::from(v.as_str().unwrap_or_default()))),
    };
    repo.edit_config(level, |doc| {
        let remotes = remotes_table(doc);
        let entry = remotes.entry(name).or_insert_with(|| Item::Table(Table::new()));
        if !entry.is_table() {
            *entry = Item::Table(Table::new());
        }
        let t = entry.as_table_mut().expect("just made a table");
        match item {
            Some(i) => {
                t.insert(key, i);
            }
            None => {
                t.remove(key);
            }
        }
        Ok(())
    })?;
    Ok(level)
}

/// `value` of option `key` of remote `name` as the config stores it: a
/// number, a boolean, or a string.
pub fn typed_value(name: &str, key: &str, value: &str) -> Result<toml::Value> {
    let bad = |message: String| RemoteError::Config {
        remote: name.to_string(),
        message,
    };
    if INT_KEYS.contains(&key) {
        return value
            .parse::<u32>()
            .ok()
            .filter(|n| *n > 0 || !AT_LEAST_ONE.contains(&key))
            .map(|n| toml::Value::Integer(i64::from(n)))
            .ok_or_else(|| bad(format!("`{key}` must be {}, not `{value}`", number_rule(key))).into());
    }
    if BOOL_KEYS.contains(&key) {
        return match value {
            "true" => Ok(toml::Value::Boolean(true)),
            "false" => Ok(toml::Value::Boolean(false)),
            _ => Err(bad(format!("`{key}` must be true or false, not `{value}`")).into()),
        };
    }
    // DVC's http `auth`: `digest` is refused where the remote is opened, with why.
    if key == "auth" && !["basic", "custom", "digest"].contains(&value.to_ascii_lowercase().as_str()) {
        return Err(bad(format!("`auth` must be `basic` or `custom` (as DVC's), not `{value}`")).into());
    }
    Ok(toml::Value::String(value.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_into_locations() {
        let root = Path::new("/repo");
        let l = parse_url("r", "s3://bucket/some/prefix/", root).unwrap();
        assert_eq!(
            (l.scheme, l.bucket.as_str(), l.prefix.as_str()),
            (Scheme::S3, "bucket", "some/prefix")
        );
        let l = parse_url("r", "az://container", root).unwrap();
        assert_eq!(
            (l.scheme, l.bucket.as_str(), l.prefix.as_str()),
            (Scheme::Azure, "container", "")
        );
        let l = parse_url("r", "../store", root).unwrap();
        assert_eq!(l.dir.unwrap(), PathBuf::from("/store"));
        let l = parse_url("r", "file:///tmp/x", root).unwrap();
        assert_eq!(l.dir.unwrap(), PathBuf::from("/tmp/x"));
        let l = parse_url("r", "webdav://host:8080/dav/x/", root).unwrap();
        assert_eq!(
            (l.base_url.unwrap().as_str(), l.prefix.as_str()),
            ("http://host:8080", "dav/x")
        );
        let l = parse_url("r", "ssh://me@host:2222/srv/dvt/", root).unwrap();
        assert_eq!(
            (l.scheme, l.bucket.as_str(), l.prefix.as_str()),
            (Scheme::Ssh, "me@host:2222", "srv/dvt")
        );
        let l = parse_url("r", "sftp://host/~/dvt", root).unwrap();
        assert_eq!((l.bucket.as_str(), l.prefix.as_str()), ("host", "~/dvt"));
        // git's scp-like form: from the login directory unless absolute.
        for (url, server, prefix) in [
            ("me@host:dvt/store/", "me@host", "~/dvt/store"),
            ("host:~/dvt", "host", "~/dvt"),
            ("host:/srv/dvt", "host", "srv/dvt"),
        ] {
            let l = parse_url("r", url, root).unwrap();
            assert_eq!(
                (l.scheme, l.bucket.as_str(), l.prefix.as_str()),
                (Scheme::Ssh, server, prefix)
            );
        }
        for local_dir in ["C:/data", "./a:b", "a/b:c"] {
            assert_eq!(
                parse_url("r", local_dir, root).unwrap().scheme,
                Scheme::Local,
                "{local_dir}"
            );
        }
        assert!(parse_url("r", "host:", root).is_err());
        for bad in [
            "ssh://host",
            "ssh://host/",
            "ssh://host/~",
            "ssh://me@/x",
            "ssh://:22/x",
        ] {
            assert!(parse_url("r", bad, root).is_err(), "{bad}");
        }
        let e = parse_url("r", "ftp://host/x", root).unwrap_err().to_string();
        assert!(e.contains("unsupported URL scheme `ftp://`"), "{e}");
        assert!(parse_url("r", "s3:///prefix", root).is_err());
        assert!(parse_url("r", "file://relative", root).is_err());
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("store-1.backup_2").is_ok());
        for bad in ["", "a b", "a/b", ".hidden", "ü"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }
}
