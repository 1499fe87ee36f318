//! The repository: its root, its configuration, its lock, and paths inside it.

use std::io::{Read, Seek, Write};
use std::path::{Component, Path, PathBuf};

use fs_err as fs;
use serde::Deserialize;

use crate::cache::Cache;
use crate::error::{PathError, RepoError, Result};
use crate::statcache::StatCache;

/// The directory that marks a dvt repository.
pub const DVT_DIR: &str = ".dvt";

const CONFIG_TEMPLATE: &str = "\
# dvt configuration, committed with git. Machine-specific settings and secrets
# belong in `.dvt/config.local.toml`, which git ignores.

[cache]
# zstd level for compressing objects (1 = fastest; 3-9 = smaller, slower).
# level = 1
# Flush new objects to disk (one syncfs) before a pointer file names them.
# Off by default: a crash can then only leave objects that fail their hash
# check (found by `dvt fsck`), never wrong data, and `add` keeps the workspace.
# fsync = false
# Keep the cache somewhere else (relative paths are relative to the repo root).
# dir = \"/mnt/fast/dvt-cache\"

# `remote` names the default remote (`dvt remote default NAME`). Remotes are
# added with `dvt remote add [-d] NAME URL`, which writes [remote.NAME] tables
# below this one; credentials go to `.dvt/config.local.toml`.
[core]
";

const DVT_GITIGNORE: &str = "/cache/\n/tmp/\n/config.local.toml\n";

/// Settings read from `.dvt/config.toml`, overlaid by `.dvt/config.local.toml`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Config {
    /// The `[core]` table.
    #[serde(default)]
    pub core: CoreConfig,
    /// The `[cache]` table.
    #[serde(default)]
    pub cache: CacheConfig,
    /// The `[remote.NAME]` tables, by name; checked when a remote is used.
    #[serde(default)]
    pub remote: std::collections::BTreeMap<String, toml::Table>,
}

/// The `[core]` table of the config.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoreConfig {
    /// The remote used when a command is given no `-r NAME`.
    pub remote: Option<String>,
}

/// The `[cache]` table of the config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheConfig {
    /// Where the object cache lives; default `.dvt/cache`.
    pub dir: Option<PathBuf>,
    /// zstd compression level.
    #[serde(default = "default_level")]
    pub level: i32,
    /// Whether to flush objects to disk before writing pointers.
    #[serde(default)]
    pub fsync: bool,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            dir: None,
            level: default_level(),
            fsync: false,
        }
    }
}

fn default_level() -> i32 {
    1
}

/// Options for [`Repo::init`].
#[derive(Debug, Clone, Default)]
pub struct InitOptions {
    /// Allow a repository outside any git work tree.
    pub no_scm: bool,
    /// Allow a repository in a subdirectory of a git work tree.
    pub subdir: bool,
}

/// An open dvt repository.
#[derive(Debug)]
pub struct Repo {
    root: PathBuf,
    config: Config,
    cache: Cache,
}

impl Repo {
    /// Makes `dir` a dvt repository: creates `.dvt/config.toml` and `.dvt/.gitignore`.
    pub fn init(dir: &Path, opts: &InitOptions) -> Result<Repo> {
        let dir = std::path::absolute(dir)?;
        if dir.join(DVT_DIR).is_dir() {
            return Err(RepoError::AlreadyInitialized { root: dir }.into());
        }
        if !opts.no_scm {
            match crate::git::work_tree_root(&dir)? {
                None => return Err(RepoError::NotGit { path: dir }.into()),
                Some(root) => {
                    let same = fs::canonicalize(&root)? == fs::canonicalize(&dir)?;
                    if !same && !opts.subdir {
                        return Err(RepoError::NotGitRoot { path: dir, root }.into());
                    }
                }
            }
        }
        let dvt = dir.join(DVT_DIR);
        fs::create_dir_all(&dvt)?;
        crate::fsutil::atomic_write(&dvt.join(".gitignore"), DVT_GITIGNORE.as_bytes())?;
        crate::fsutil::atomic_write(&dvt.join("config.toml"), CONFIG_TEMPLATE.as_bytes())?;
        Repo::open_root(dir)
    }

    /// Opens the repository containing `start` (a `.dvt` directory in it or a parent).
    pub fn open(start: &Path) -> Result<Repo> {
        let start = std::path::absolute(start)?;
        let mut dir = start.as_path();
        loop {
            if dir.join(DVT_DIR).is_dir() {
                return Repo::open_root(dir.to_path_buf());
            }
            match dir.parent() {
                Some(p) => dir = p,
                None => return Err(RepoError::NotInitialized { start }.into()),
            }
        }
    }

    fn open_root(root: PathBuf) -> Result<Repo> {
        let dvt = root.join(DVT_DIR);
        let mut table = toml::Table::new();
        for name in ["config.toml", "config.local.toml"] {
            let path = dvt.join(name);
            if !path.exists() {
                continue;
            }
            let text = fs::read_to_string(&path)?;
            let layer: toml::Table = toml::from_str(&text).map_err(|e| RepoError::Config {
                path: path.clone(),
                message: crate::error::toml_message(&text, e.span(), e.message()),
            })?;
            merge(&mut table, layer);
        }
        Repo::from_table(
            root,
            table,
            &dvt.join("config.toml"),
            dvt.join("config.local.toml").exists(),
        )
    }

    /// A repository seen at a commit, not on disk as such: `root` is where it is
    /// (a work tree or a bare git directory), `config_text` its committed
    /// `.dvt/config.toml` (named `named` in errors). Its cache is the one under
    /// `root`, if any; its remotes resolve relative paths from `root`.
    pub fn at_commit(root: PathBuf, config_text: Option<&str>, named: &Path) -> Result<Repo> {
        let table: toml::Table = match config_text {
            Some(t) => toml::from_str(t).map_err(|e| RepoError::Config {
                path: named.to_path_buf(),
                message: crate::error::toml_message(t, e.span(), e.message()),
            })?,
            None => toml::Table::new(),
        };
        Repo::from_table(root, table, named, false)
    }

    fn from_table(root: PathBuf, table: toml::Table, named: &Path, has_local: bool) -> Result<Repo> {
        let dvt = root.join(DVT_DIR);
        let config: Config = table.try_into().map_err(|e: toml::de::Error| RepoError::Config {
            path: named.to_path_buf(),
            message: if has_local {
                format!(
                    "{} (in it or in `{}`, which overrides it)",
                    e.message(),
                    dvt.join("config.local.toml").display()
                )
            } else {
                e.message().to_string()
            },
        })?;
        let cache_dir = match &config.cache.dir {
            Some(d) if d.is_absolute() => d.clone(),
            Some(d) => root.join(d),
            None => dvt.join("cache"),
        };
        let cache = Cache::new(cache_dir, config.cache.level);
        Ok(Repo { root, config, cache })
    }

    /// The repository's root directory (absolute).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The merged configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The object cache.
    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// `.dvt/tmp`, created on demand.
    pub fn tmp_dir(&self) -> Result<PathBuf> {
        let dir = self.root.join(DVT_DIR).join("tmp");
        fs::create_dir_all(&dir)?;
        Ok(dir)
    }

    /// The stat cache of this repository.
    pub fn stat_cache(&self) -> StatCache {
        StatCache::load_in_background(&self.root.join(DVT_DIR).join("tmp").join("stat-cache"))
    }

    /// Takes the repository lock for a mutating command described by `what`.
    /// Fails at once, naming the holder, if another process has it.
    pub fn lock(&self, what: &str) -> Result<RepoLock> {
        let path = self.tmp_dir()?.join("lock");
        let mut file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        match file.file().try_lock() {
            Ok(()) => {
                file.set_len(0)?;
                file.rewind()?;
                write!(file, "pid {}: {what}", std::process::id())?;
                Ok(RepoLock { _file: file })
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                // The holder writes who it is just after locking: give it a moment.
                let mut holder = String::new();
                for _ in 0..20 {
                    holder.clear();
                    let _ = file.rewind();
                    let _ = file.read_to_string(&mut holder);
                    if !holder.trim().is_empty() {
                        break;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                if holder.trim().is_empty() {
                    holder = "holder unknown".into();
                }
                Err(RepoError::Locked {
                    path,
                    holder: holder.trim().to_string(),
                }
                .into())
            }
            Err(std::fs::TryLockError::Error(e)) => Err(e.into()),
        }
    }

    /// Resolves a path the user typed (relative to `cwd`) to an absolute path and a
    /// `/`-separated path relative to the root. Rejects paths outside the repository.
    pub fn resolve(&self, cwd: &Path, arg: &Path) -> Result<(PathBuf, String)> {
        let abs = normalize(&cwd.join(arg));
        let rel = abs.strip_prefix(&self.root).map_err(|_| PathError::OutsideRepo {
            path: arg.to_path_buf(),
            root: self.root.clone(),
        })?;
        let rel = rel
            .to_str()
            .ok_or_else(|| PathError::NotUtf8 {
                path: arg.to_path_buf(),
            })?
            .to_string();
        Ok((abs, rel))
    }

    /// Checks that `rel` (repo-relative) may be tracked: not the root, not in
    /// `.dvt` or `.git`, and reached without going through a symbolic link.
    pub fn check_trackable(&self, rel: &str) -> Result<()> {
        self.check_not_reserved(rel)?;
        self.check_no_symlink_parents(rel)
    }

    /// Checks that `rel` (repo-relative) is not the root and not in `.dvt` or `.git`.
    pub fn check_not_reserved(&self, rel: &str) -> Result<()> {
        let path = PathBuf::from(rel);
        if rel.is_empty() {
            return Err(PathError::Reserved {
                path,
                reason: "it is the repository root",
            }
            .into());
        }
        let first = rel.split('/').next().unwrap_or("");
        if first == DVT_DIR || first == ".git" || rel.split('/').any(|c| c == ".git" || c == DVT_DIR) {
            return Err(PathError::Reserved {
                path,
                reason: "it is inside `.dvt` or `.git`",
            }
            .into());
        }
        Ok(())
    }

    /// Fails if a directory on the way from the root to `rel` is a symbolic link.
    pub fn check_no_symlink_parents(&self, rel: &str) -> Result<()> {
        let mut cur = self.root.clone();
        let parts: Vec<&str> = rel.split('/').collect();
        for part in &parts[..parts.len().saturating_sub(1)] {
            cur.push(part);
            match fs::symlink_metadata(&cur) {
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(PathError::Symlink {
                        path: self.root.join(rel),
                        link: cur,
                    }
                    .into());
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// Held while a mutating command runs; released when dropped or when the process exits.
#[derive(Debug)]
pub struct RepoLock {
    _file: fs::File,
}

fn merge(base: &mut toml::Table, layer: toml::Table) {
    for (k, v) in layer {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(l)) => merge(b, l),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

/// Removes `.` and resolves `..` lexically (without touching the filesystem).
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}
