//! `dvt config`: read and change the settings of the config files of every
//! [`ConfigLevel`] (`.dvt/config.toml`, `.dvt/config.local.toml`, the global
//! and system ones) by dotted name (`cache.dir`, `remote.store.region`), as
//! `dvc config` and `git config` do. Values are checked before anything is
//! written; secrets are never printed.

use std::path::{Path, PathBuf};

use toml_edit::{Item, Table};

use crate::error::{RepoError, Result};
use crate::remote::config::{self as remotes, SECRET_KEYS};
use crate::repo::{CACHE_LEVELS as LEVELS, ConfigLevel, DVT_DIR, Repo, Shared};

/// Which config files a read looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// All, a narrower level winning: what commands use.
    Merged,
    /// The file of one level only.
    Only(ConfigLevel),
}

/// One setting as a config file holds it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Setting {
    /// Its dotted name, e.g. `cache.level` or `remote.store.url`.
    pub name: String,
    /// Its value as text (a string without quotes); `***` for a secret.
    pub value: String,
    /// The file that sets it, relative to the repository root (absolute for
    /// the global and system files).
    pub file: PathBuf,
    /// Whether the value is a secret (and so masked).
    pub secret: bool,
}

/// A setting's name, taken apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Name<'a> {
    /// `core.remote`.
    DefaultRemote,
    /// `core.autostage`.
    Autostage,
    /// `cache.KEY`.
    Cache(CacheKey),
    /// `gc.grace`.
    GcGrace,
    /// `hooks.fetch`.
    HooksFetch,
    /// `remote.NAME.KEY` (the remote's name may hold dots).
    Remote { remote: &'a str, key: &'a str },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CacheKey {
    Dir,
    Level,
    Fsync,
    Shared,
}

impl CacheKey {
    fn key(self) -> &'static str {
        match self {
            CacheKey::Dir => "dir",
            CacheKey::Level => "level",
            CacheKey::Fsync => "fsync",
            CacheKey::Shared => "shared",
        }
    }
}

/// Every setting's name but the remotes' (`remote.NAME.KEY`).
pub const SETTINGS: [&str; 8] = [
    "core.remote",
    "core.autostage",
    "cache.dir",
    "cache.level",
    "cache.fsync",
    "cache.shared",
    "gc.grace",
    "hooks.fetch",
];

fn parse_name(name: &str) -> Result<Name<'_>> {
    let unknown = || RepoError::UnknownSetting { name: name.to_string() };
    match name {
        "core.remote" => return Ok(Name::DefaultRemote),
        "core.autostage" => return Ok(Name::Autostage),
        "cache.dir" => return Ok(Name::Cache(CacheKey::Dir)),
        "cache.level" => return Ok(Name::Cache(CacheKey::Level)),
        "cache.fsync" => return Ok(Name::Cache(CacheKey::Fsync)),
        "cache.shared" => return Ok(Name::Cache(CacheKey::Shared)),
        "gc.grace" => return Ok(Name::GcGrace),
        "hooks.fetch" => return Ok(Name::HooksFetch),
        _ => {}
    }
    let rest = name.strip_prefix("remote.").ok_or_else(unknown)?;
    let (remote, key) = rest.rsplit_once('.').ok_or_else(unknown)?;
    if remote.is_empty() || key.is_empty() {
        return Err(unknown().into());
    }
    Ok(Name::Remote { remote, key })
}

fn is_secret(name: &Name<'_>) -> bool {
    matches!(name, Name::Remote { key, .. } if SECRET_KEYS.contains(key))
}

/// What a setting is when no file sets it, in words.
fn default_of(name: &Name<'_>) -> Option<String> {
    match name {
        Name::DefaultRemote => Some("the only remote, when there is one".into()),
        Name::Cache(CacheKey::Dir) => Some(format!(
            "`{DVT_DIR}/cache` (in a linked git worktree, the main worktree's cache)"
        )),
        Name::Cache(CacheKey::Level) => Some("1".into()),
        Name::Cache(CacheKey::Fsync) | Name::Autostage | Name::HooksFetch => Some("false".into()),
        Name::Cache(CacheKey::Shared) => Some("unset: new files get the modes your umask gives".into()),
        Name::GcGrace => Some("24h".into()),
        Name::Remote { .. } => None,
    }
}

/// `file` as messages name it: relative to the repository root if it is one
/// of the repository's, else absolute.
pub fn relative(repo: &Repo, file: &Path) -> PathBuf {
    match file.strip_prefix(repo.root()) {
        Ok(rel) if rel.starts_with(DVT_DIR) => rel.to_path_buf(),
        _ => file.to_path_buf(),
    }
}

/// The settings the files of `scope` hold, sorted by name; with [`Scope::Merged`],
/// one per name, from the file that wins.
pub fn list(repo: &Repo, scope: Scope) -> Result<Vec<Setting>> {
    let levels = match scope {
        Scope::Merged => &ConfigLevel::ALL[..],
        Scope::Only(level) => &[level][..],
    };
    let mut found = std::collections::BTreeMap::new();
    for &level in levels {
        let Ok(path) = repo.config_file(level) else {
            continue;
        };
        let Some(table) = crate::repo::read_config_layer(&path)? else {
            continue;
        };
        let mut leaves = Vec::new();
        flatten("", &table, &mut leaves);
        for (name, value) in leaves {
            let secret = parse_name(&name).is_ok_and(|n| is_secret(&n));
            let value = match value {
                _ if secret => "***".to_string(),
                toml::Value::String(s) => s,
                other => other.to_string(),
            };
            let file = relative(repo, &path);
            found.insert(
                name.clone(),
                Setting {
                    name,
                    value,
                    file,
                    secret,
                },
            );
        }
    }
    Ok(found.into_values().collect())
}

fn flatten(prefix: &str, table: &toml::Table, out: &mut Vec<(String, toml::Value)>) {
    for (k, v) in table {
        let name = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            toml::Value::Table(t) => flatten(&name, t, out),
            other => out.push((name, other.clone())),
        }
    }
}

/// The setting `name` as the files of `scope` hold it. A secret is an error
/// ([`RepoError::Secret`]): dvt never prints one.
pub fn get(repo: &Repo, name: &str, scope: Scope) -> Result<Setting> {
    let parsed = parse_name(name)?;
    let found = list(repo, scope)?.into_iter().find(|s| s.name == name);
    match found {
        Some(s) if s.secret => Err(RepoError::Secret {
            name: s.name,
            file: s.file,
        }
        .into()),
        Some(s) => Ok(s),
        None => Err(RepoError::NotSet {
            name: name.to_string(),
            file: match scope {
                Scope::Merged => None,
                Scope::Only(level) => Some(relative(repo, &repo.config_file(level)?)),
            },
            default: default_of(&parsed),
        }
        .into()),
    }
}

/// What [`set`] or [`unset`] changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// The file written, relative to the repository root (absolute for the
    /// global and system files).
    pub file: PathBuf,
    /// Whether the setting is a secret (written to `config.local.toml` when
    /// `config.toml` was asked for).
    pub secret: bool,
}

/// Sets `name` to `value` in the file of `level`; secrets asked for
/// `config.toml` go to `config.local.toml`. Checks the value
/// first: a remote option as `dvt remote modify` does, `core.remote` names a
/// configured remote, `cache.level` is a level zstd has, `cache.fsync` a boolean,
/// `cache.shared` is `group`, `gc.grace` a span of time (`7d`, `0`),
/// `core.autostage` and `hooks.fetch` booleans.
/// `remote.NAME.url` of a new `NAME` adds that remote.
pub fn set(repo: &Repo, name: &str, value: &str, level: ConfigLevel) -> Result<Written> {
    let parsed = parse_name(name)?;
    let bad = |message: String| RepoError::BadSetting {
        name: name.to_string(),
        message,
    };
    let mut secret = false;
    let mut level = level;
    match parsed {
        Name::DefaultRemote => remotes::set_default(repo, Some(value), level)?,
        Name::Autostage | Name::HooksFetch => {
            let on = match value {
                "true" => true,
                "false" => false,
                _ => return Err(bad(format!("must be true or false, not `{value}`")).into()),
            };
            let at = match parsed {
                Name::Autostage => ("core", "autostage"),
                _ => ("hooks", "fetch"),
            };
            set_in(repo, level, at, toml_edit::value(on), bad)?;
        }
        Name::GcGrace => {
            crate::ops::gc::parse_span(value).map_err(bad)?;
            set_in(repo, level, ("gc", "grace"), toml_edit::value(value), bad)?;
        }
        Name::Remote { remote, key } => {
            if key == "url" && !repo.config().remote.contains_key(remote) {
                remotes::add(repo, remote, value, false, level, false)?;
            } else {
                level = remotes::modify(repo, remote, key, Some(value), level)?;
                secret = SECRET_KEYS.contains(&key);
            }
        }
        Name::Cache(key) => {
            let item = match key {
                CacheKey::Dir if value.is_empty() => {
                    return Err(bad("give a directory, or `--unset` it to use `.dvt/cache`".into()).into());
                }
                CacheKey::Dir => {
                    remotes::check_outside_path(level, value).map_err(bad)?;
                    toml_edit::value(value)
                }
                CacheKey::Level => match value.parse::<i64>() {
                    Ok(l) if LEVELS.contains(&l) => toml_edit::value(l),
                    _ => {
                        return Err(bad(format!(
                            "must be a whole number from {} (fastest) to {} (smallest), not `{value}`",
                            LEVELS.start(),
                            LEVELS.end()
                        ))
                        .into());
                    }
                },
                CacheKey::Fsync => match value {
                    "true" => toml_edit::value(true),
                    "false" => toml_edit::value(false),
                    _ => return Err(bad(format!("must be true or false, not `{value}`")).into()),
                },
                CacheKey::Shared if Shared::NAMES.contains(&value) => toml_edit::value(value),
                CacheKey::Shared => {
                    return Err(bad(format!(
                        "the only value is `group` (files the group may read and write), not `{value}`; \
                         `--unset` it to follow the umask"
                    ))
                    .into());
                }
            };
            repo.edit_config(level, |doc| {
                cache_table(doc).insert(key.key(), item);
                Ok(())
            })?;
        }
    }
    Ok(Written {
        file: relative(repo, &repo.config_file(level)?),
        secret,
    })
}

/// Sets `key` of table `table` (made if missing) in the file of `level`; `bad`
/// makes the error when that file holds something else under the table's name.
fn set_in(
    repo: &Repo,
    level: ConfigLevel,
    (table, key): (&str, &str),
    value: Item,
    bad: impl Fn(String) -> RepoError,
) -> Result<()> {
    repo.edit_config(level, |doc| {
        let item = doc.entry(table).or_insert_with(|| Item::Table(Table::new()));
        match item.as_table_mut() {
            Some(t) => {
                t.insert(key, value);
                Ok(())
            }
            None => Err(bad(format!("`{table}` is not a table in that file")).into()),
        }
    })
}

fn cache_table(doc: &mut toml_edit::DocumentMut) -> &mut Table {
    let item = doc.entry("cache").or_insert_with(|| Item::Table(Table::new()));
    if !item.is_table() {
        *item = Item::Table(Table::new());
    }
    item.as_table_mut().expect("just made a table")
}

/// Removes `name` from the file of `level` (`config.local.toml` for a secret
/// asked of `config.toml`); an error if that file does not set it. A remote's
/// `url` is not removed this way: `dvt remote remove` forgets the remote.
pub fn unset(repo: &Repo, name: &str, level: ConfigLevel) -> Result<Written> {
    let parsed = parse_name(name)?;
    let secret = is_secret(&parsed);
    let level = match level {
        ConfigLevel::Project if secret => ConfigLevel::Local,
        other => other,
    };
    if !list(repo, Scope::Only(level))?.iter().any(|s| s.name == name) {
        return Err(RepoError::NotSet {
            name: name.to_string(),
            file: Some(relative(repo, &repo.config_file(level)?)),
            default: None,
        }
        .into());
    }
    match parsed {
        Name::DefaultRemote => remotes::set_default(repo, None, level)?,
        Name::Autostage => repo.edit_config(level, |doc| {
            if let Some(t) = doc.get_mut("core").and_then(Item::as_table_mut) {
                t.remove("autostage");
            }
            Ok(())
        })?,
        Name::Remote { key: "url", remote } => {
            return Err(RepoError::BadSetting {
                name: name.to_string(),
                message: format!("a remote cannot lose its URL: `dvt remote remove {remote}` forgets the remote"),
            }
            .into());
        }
        Name::Remote { remote, key } => {
            remotes::modify(repo, remote, key, None, level)?;
        }
        Name::Cache(key) => repo.edit_config(level, |doc| {
            if let Some(t) = doc.get_mut("cache").and_then(Item::as_table_mut) {
                t.remove(key.key());
            }
            Ok(())
        })?,
        Name::GcGrace => repo.edit_config(level, |doc| {
            if let Some(t) = doc.get_mut("gc").and_then(Item::as_table_mut) {
                t.remove("grace");
            }
            Ok(())
        })?,
        Name::HooksFetch => repo.edit_config(level, |doc| {
            if let Some(t) = doc.get_mut("hooks").and_then(Item::as_table_mut) {
                t.remove("fetch");
            }
            Ok(())
        })?,
    }
    Ok(Written {
        file: relative(repo, &repo.config_file(level)?),
        secret,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_taken_apart() {
        for name in SETTINGS {
            assert!(parse_name(name).is_ok(), "{name}");
        }
        assert_eq!(parse_name("core.remote").unwrap(), Name::DefaultRemote);
        assert_eq!(parse_name("hooks.fetch").unwrap(), Name::HooksFetch);
        assert_eq!(parse_name("cache.level").unwrap(), Name::Cache(CacheKey::Level));
        assert_eq!(parse_name("gc.grace").unwrap(), Name::GcGrace);
        assert_eq!(
            parse_name("remote.my.store.region").unwrap(),
            Name::Remote {
                remote: "my.store",
                key: "region"
            }
        );
        for bad in [
            "cache",
            "cache.size",
            "gc",
            "gc.prune",
            "core",
            "remote.url",
            "remote..url",
            "remote.s3.",
            "level",
        ] {
            assert!(parse_name(bad).is_err(), "{bad} was accepted");
        }
    }
}
