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

/// A config file, by how widely it applies (as `git config`'s and DVC's
/// levels). Files are merged key by key, a narrower level winning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ConfigLevel {
    /// `$DVT_SYSTEM_CONFIG_DIR/config.toml`, else `/etc/xdg/dvt/config.toml`:
    /// every user of the machine.
    System,
    /// `$DVT_GLOBAL_CONFIG_DIR/config.toml`, else `$XDG_CONFIG_HOME/dvt/config.toml`,
    /// else `~/.config/dvt/config.toml`: every repository of one user.
    Global,
    /// `.dvt/config.toml`: committed, shared by every clone.
    Project,
    /// `.dvt/config.local.toml`: this clone only, not committed.
    Local,
}

impl ConfigLevel {
    /// Every level, widest first (the order files are merged in).
    pub const ALL: [ConfigLevel; 4] = [
        ConfigLevel::System,
        ConfigLevel::Global,
        ConfigLevel::Project,
        ConfigLevel::Local,
    ];

    /// The level's name, as its command-line flag (`--global`) says it.
    pub fn name(self) -> &'static str {
        match self {
            ConfigLevel::System => "system",
            ConfigLevel::Global => "global",
            ConfigLevel::Project => "project",
            ConfigLevel::Local => "local",
        }
    }

    /// Whether the level's file is outside the repository (global, system).
    pub fn is_outside(self) -> bool {
        matches!(self, ConfigLevel::System | ConfigLevel::Global)
    }

    /// The file of a level outside the repository; `None` for the global one
    /// when neither `$DVT_GLOBAL_CONFIG_DIR`, `$XDG_CONFIG_HOME` nor a home is set.
    fn outside_file(self) -> Option<PathBuf> {
        let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
        let dir = match self {
            ConfigLevel::System => var("DVT_SYSTEM_CONFIG_DIR").unwrap_or_else(|| PathBuf::from("/etc/xdg/dvt")),
            ConfigLevel::Global => var("DVT_GLOBAL_CONFIG_DIR")
                .or_else(|| var("XDG_CONFIG_HOME").map(|d| d.join("dvt")))
                .or_else(|| std::env::home_dir().map(|h| h.join(".config").join("dvt")))?,
            ConfigLevel::Project | ConfigLevel::Local => return None,
        };
        Some(dir.join("config.toml"))
    }
}

impl std::fmt::Display for ConfigLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Settings read from the config files of every [`ConfigLevel`], merged.
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
    /// The `[gc]` table.
    #[serde(default)]
    pub gc: GcConfig,
    /// The `[hooks]` table.
    #[serde(default)]
    pub hooks: HooksConfig,
}

/// The `[hooks]` table of the config: what the git hooks of
/// `dvt install-hooks` do.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HooksConfig {
    /// The checkout hooks (`post-checkout`, `post-merge`, `post-rewrite`)
    /// first fetch what the new HEAD's data lacks from its remotes, as
    /// git-lfs does on `git checkout` and `git pull`.
    #[serde(default)]
    pub fetch: bool,
}

/// The `[gc]` table of the config.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GcConfig {
    /// How long `gc -r` keeps unreferenced objects written to a remote lately
    /// (`7d`, `0`; see [`crate::ops::GcOptions::remote_grace`]), as written;
    /// checked when the file is read.
    pub grace: Option<String>,
}

impl GcConfig {
    /// `grace` as a duration, if set.
    pub fn grace(&self) -> Option<std::time::Duration> {
        self.grace.as_deref().and_then(|s| crate::ops::gc::parse_span(s).ok())
    }
}

/// The `[core]` table of the config.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoreConfig {
    /// The remote used when a command is given no `-r NAME`.
    pub remote: Option<String>,
    /// Stage with git the files dvt writes for it (pointers, `.gitignore`
    /// entries, `dvt.lock`, `dvt.toml`, `.dvt/config.toml`) after each command,
    /// as DVC's `core.autostage`.
    #[serde(default)]
    pub autostage: bool,
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
    /// Whom the files dvt creates are for, as DVC's `cache.shared`: `None`
    /// follows the umask; [`Shared::Group`] gives the owning group the rights
    /// the owner has, for a cache several users write to.
    #[serde(default)]
    pub shared: Option<Shared>,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            dir: None,
            level: default_level(),
            fsync: false,
            shared: None,
        }
    }
}

/// The values `cache.shared` takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Shared {
    /// New files and directories are readable and writable by their group
    /// (`umask` without group bits: 664 and 775 under the usual 022).
    Group,
}

impl Shared {
    /// The spelling of the value in config files.
    pub const NAMES: &[&str] = &["group"];

    /// Clears the group's bits from the process's umask, so that every file
    /// and directory created from now on, in the cache and elsewhere, gives
    /// the group what the owner gets. The bits for others stay the user's.
    pub fn apply(self) {
        use rustix::fs::Mode;
        match self {
            Shared::Group => {
                let old = rustix::process::umask(Mode::empty());
                rustix::process::umask(old & !Mode::RWXG);
            }
        }
    }
}

/// The levels `cache.level` may take: zstd's, from 1 (fastest) to 22 (smallest).
pub const CACHE_LEVELS: std::ops::RangeInclusive<i64> = 1..=22;

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
    /// In a repository already: start its settings over (as `dvc init
    /// --force`): `.dvt/config.toml` and `.dvt/.gitignore` are written anew and
    /// `.dvt/config.local.toml` is deleted. Unlike DVC's, the cache is kept.
    pub force: bool,
}

/// An open dvt repository.
#[derive(Debug)]
pub struct Repo {
    root: PathBuf,
    config: Config,
    cache: Cache,
    /// Seen at a commit ([`Repo::at_commit`]): another repository's config,
    /// which the user cannot change from here.
    at_commit: bool,
}

impl Repo {
    /// Makes `dir` a dvt repository: creates `.dvt/config.toml` and `.dvt/.gitignore`.
    pub fn init(dir: &Path, opts: &InitOptions) -> Result<Repo> {
        let dir = std::path::absolute(dir)?;
        if dir.join(DVT_DIR).is_dir() && !opts.force {
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
                    // A repository dvt could not read later is refused now.
                    crate::git::Git::open(&dir)?;
                }
            }
        }
        let dvt = dir.join(DVT_DIR);
        fs::create_dir_all(&dvt)?;
        crate::fsutil::atomic_write(&dvt.join(".gitignore"), DVT_GITIGNORE.as_bytes())?;
        crate::fsutil::atomic_write(&dvt.join("config.toml"), CONFIG_TEMPLATE.as_bytes())?;
        // For `core.autostage` (set globally, or carried over by `migrate`).
        crate::autostage::note(&dvt.join("config.toml"));
        crate::autostage::note(&dvt.join(".gitignore"));
        match fs::remove_file(repo_config_file(&dir, ConfigLevel::Local)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
            _ => {}
        }
        Repo::open_root(dir)
    }

    /// Opens the repository containing `start` (a `.dvt` directory in it or a parent).
    pub fn open(start: &Path) -> Result<Repo> {
        Repo::open_root(Repo::find_root(start)?)
    }

    /// The root of the dvt repository containing `start` (the nearest directory
    /// with a `.dvt` inside), without reading its configuration.
    pub fn find_root(start: &Path) -> Result<PathBuf> {
        let start = std::path::absolute(start)?;
        let mut dir = start.as_path();
        loop {
            if dir.join(DVT_DIR).is_dir() {
                return Ok(dir.to_path_buf());
            }
            match dir.parent() {
                Some(p) => dir = p,
                None => return Err(RepoError::NotInitialized { start }.into()),
            }
        }
    }

    pub(crate) fn open_root(root: PathBuf) -> Result<Repo> {
        let mut layers = outside_layers()?;
        for level in [ConfigLevel::Project, ConfigLevel::Local] {
            let path = repo_config_file(&root, level);
            if let Some(layer) = read_config_layer(&path)? {
                layers.push((path, layer));
            }
        }
        let repo = Repo::from_layers(root, layers)?;
        if let Some(shared) = repo.config.cache.shared {
            shared.apply();
        }
        Ok(repo)
    }

    /// A repository's settings where there is no repository: those of the
    /// global and system config files, for `dvt config --global` and `dvt
    /// remote … --global` run outside one. `dir` stands for its root.
    pub fn outside(dir: &Path) -> Result<Repo> {
        Repo::from_layers(std::path::absolute(dir)?, outside_layers()?)
    }

    /// A repository seen at a commit, not on disk as such: `root` is where it is
    /// (a work tree or a bare git directory), `config_text` its committed
    /// `.dvt/config.toml` (named `named` in errors), and over it `more` (a
    /// file, or what an option set, and its table). Its cache is the one
    /// under `root`, if any; its remotes resolve relative paths from `root`.
    pub fn at_commit(
        root: PathBuf,
        config_text: Option<&str>,
        named: &Path,
        more: Vec<(PathBuf, toml::Table)>,
    ) -> Result<Repo> {
        // Not this machine's global and system files: their remotes and default
        // would change which of its own remotes another repository's data comes from.
        let mut layers = Vec::new();
        if let Some(t) = config_text {
            let table = toml::from_str(t).map_err(|e| RepoError::Config {
                path: named.to_path_buf(),
                message: crate::error::toml_message(t, e.span(), e.message()),
            })?;
            layers.push((named.to_path_buf(), table));
        }
        layers.extend(more);
        let repo = Repo::from_layers(root, layers)?;
        Ok(Repo {
            at_commit: true,
            ..repo
        })
    }

    /// The repository at `root` with the settings of `layers` (a file and what
    /// it holds, widest first). Each file is checked alone, so that an error
    /// names the file at fault.
    fn from_layers(root: PathBuf, layers: Vec<(PathBuf, toml::Table)>) -> Result<Repo> {
        log_config_files(&root, &layers);
        let mut table = toml::Table::new();
        for (path, layer) in layers {
            check_config(&path, layer.clone())?;
            merge(&mut table, layer);
        }
        let config = check_config(&repo_config_file(&root, ConfigLevel::Project), table)?;
        let cache_dir = match &config.cache.dir {
            // `~/…` is the home directory's, as for a directory remote.
            Some(d) => d
                .to_str()
                .and_then(|d| crate::remote::config::local_path(d, &root).ok())
                .unwrap_or_else(|| root.join(d)),
            None => main_worktree_cache(&root).unwrap_or_else(|| root.join(DVT_DIR).join("cache")),
        };
        let cache = Cache::new(cache_dir, config.cache.level);
        Ok(Repo {
            root,
            config,
            cache,
            at_commit: false,
        })
    }

    /// The repository's root directory (absolute).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The merged configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The settings of the file of `level` alone (none if it does not exist).
    pub fn config_at(&self, level: ConfigLevel) -> Result<Config> {
        let path = self.config_file(level)?;
        let Some(mut layer) = read_config_layer(&path)? else {
            return Ok(Config::default());
        };
        if let (true, Some(dir)) = (level.is_outside(), path.parent()) {
            absolutize_paths(&mut layer, dir);
        }
        check_config(&path, layer)
    }

    /// The config file of `level`. Fails for the global one when there is no
    /// home directory to find it in.
    pub fn config_file(&self, level: ConfigLevel) -> Result<PathBuf> {
        match level {
            ConfigLevel::Project | ConfigLevel::Local => Ok(repo_config_file(&self.root, level)),
            outside => outside.outside_file().ok_or_else(|| {
                RepoError::Config {
                    path: PathBuf::from("~/.config/dvt/config.toml"),
                    message: "there is no home directory: set `DVT_GLOBAL_CONFIG_DIR` or `HOME`".into(),
                }
                .into()
            }),
        }
    }

    /// Edits one config file in place (comments and layout kept), atomically.
    /// The repository's loaded [`Config`] is not refreshed: open it again to see the change.
    /// Two edits at once take turns (a lock beside the file), so neither loses
    /// the other's change.
    pub(crate) fn edit_config(
        &self,
        level: ConfigLevel,
        f: impl FnOnce(&mut toml_edit::DocumentMut) -> Result<()>,
    ) -> Result<()> {
        let path = self.config_file(level)?;
        let _turn = match level.is_outside() {
            true => {
                if let Some(dir) = path.parent() {
                    fs::create_dir_all(dir)?;
                }
                hold_for_a_moment(&path.with_file_name(".config.toml.lock"), "editing the config")?
            }
            false => self.take_turn("config", "editing the config")?,
        };
        let (text, header) = match fs::read_to_string(&path) {
            Ok(t) => (t, ""),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && level != ConfigLevel::Project => {
                let header = match level {
                    ConfigLevel::Local => {
                        "# Machine-specific dvt settings and secrets. Not committed (see .dvt/.gitignore).\n\n"
                    }
                    ConfigLevel::Global => "# dvt settings of every repository of this user.\n\n",
                    _ => "# dvt settings of every user of this machine.\n\n",
                };
                if let Some(dir) = path.parent() {
                    fs::create_dir_all(dir)?;
                }
                (String::new(), header)
            }
            Err(e) => return Err(e.into()),
        };
        let mut doc: toml_edit::DocumentMut = text.parse().map_err(|e: toml_edit::TomlError| RepoError::Config {
            path: path.clone(),
            message: crate::error::toml_message(&text, e.span(), e.message()),
        })?;
        f(&mut doc)?;
        crate::fsutil::atomic_write(&path, format!("{header}{doc}").as_bytes())?;
        if level == ConfigLevel::Project {
            crate::autostage::note(&path);
        }
        Ok(())
    }

    /// Holds `.dvt/tmp/NAME.lock` for an edit of a file that other commands
    /// edit too (a config file, `dvt.toml`), waiting up to ten seconds for an
    /// edit under way: read, change and write the file while it is held, and
    /// no edit is lost to another made at the same time.
    pub(crate) fn take_turn(&self, name: &str, what: &str) -> Result<LockFile> {
        hold_for_a_moment(&self.tmp_dir()?.join(format!("{name}.lock")), what)
    }

    /// This repository, storing into and reading from `other`'s cache (a
    /// temporary worktree running an experiment of `other`).
    pub(crate) fn with_cache_of(self, other: &Repo) -> Repo {
        Repo {
            cache: other.cache.clone(),
            ..self
        }
    }

    /// Whether this is a repository seen at a commit, its config not this
    /// user's to change ([`Repo::at_commit`]).
    pub fn is_at_commit(&self) -> bool {
        self.at_commit
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

    /// Takes the repository lock for a mutating command described by `what`, and
    /// a shared hold on the cache's lock (several repositories may share a cache,
    /// see [`Repo::lock_cache_alone`]). Fails at once, naming the holder, if another
    /// process has the repository, or holds the cache alone.
    pub fn lock(&self, what: &str) -> Result<RepoLock> {
        self.lock_as(what, false)
    }

    /// Holds `.dvt/tmp/NAME.lock` alone for as long as the returned file lives,
    /// for work that spans several locked commands (`dvt queue start`); fails,
    /// naming the holder, if another process holds it.
    pub fn lock_named(&self, name: &str, what: &str) -> Result<LockFile> {
        hold(
            &self.tmp_dir()?.join(format!("{name}.lock")),
            "repository",
            what,
            Hold::Alone,
        )
    }

    /// [`Repo::lock_named`], waiting up to a second for the lock: for locks that
    /// other commands take for a moment only to see whether they are held
    /// (`dvt queue status`). A holder that keeps it longer still fails the call.
    pub fn lock_named_patiently(&self, name: &str, what: &str) -> Result<LockFile> {
        let path = self.tmp_dir()?.join(format!("{name}.lock"));
        hold_within(&path, "repository", what, std::time::Duration::from_secs(1))
    }

    /// Like [`Repo::lock`], but holds the cache alone: no command of any
    /// repository sharing it runs meanwhile. For `gc`, which deletes what no
    /// repository's pointers need, and must not race a command adding a pointer.
    pub fn lock_cache_alone(&self, what: &str) -> Result<RepoLock> {
        self.lock_as(what, true)
    }

    fn lock_as(&self, what: &str, cache_alone: bool) -> Result<RepoLock> {
        let repo = hold_patiently(&self.tmp_dir()?.join("lock"), "repository", what, Hold::Alone)?;
        // The cache's first files: where a cache another user made refuses
        // this one, say so before any work is done.
        let denied = |e: crate::Error| match e.io_kind() {
            Some(std::io::ErrorKind::PermissionDenied) => RepoError::CacheDenied {
                dir: self.cache.root().to_path_buf(),
                message: e.to_string(),
            }
            .into(),
            _ => e,
        };
        if !self.cache.root().exists() {
            fs::create_dir_all(self.cache.root()).map_err(|e| denied(e.into()))?;
            // A `cache.dir` inside the work tree would be seen by git, and
            // `git add -A` would commit the data: the cache ignores itself.
            if !self.cache.root().starts_with(self.root.join(DVT_DIR)) {
                let _ = crate::fsutil::atomic_write(&self.cache.root().join(".gitignore"), CACHE_GITIGNORE);
            }
        }
        if !cache_alone {
            self.sweep_if_cache_idle();
        }
        let how = if cache_alone { Hold::Alone } else { Hold::Shared };
        let what = format!("{what} in `{}`", self.root.display());
        let cache = hold_patiently(&self.cache.root().join("lock"), "cache", &what, how).map_err(denied)?;
        self.register_in_cache().map_err(denied)?;
        Ok(RepoLock {
            _repo: repo,
            cache,
            cache_alone,
        })
    }

    /// When no command of any repository uses the cache (its lock can be taken
    /// alone), removes, holding it alone for that moment, what killed writers
    /// left in it ([`Cache::remove_abandoned_temporaries`]): a killed `add` or
    /// `fetch` then holds its disk space until the next command, not until `gc`.
    /// Best effort: a failure here is left for `gc`.
    fn sweep_if_cache_idle(&self) {
        let path = self.cache.root().join("lock");
        let Ok(file) = open_lock_file(&path) else {
            return;
        };
        let taken = file.file().try_lock().is_ok();
        let file = LockFile::new(file, &path);
        if taken {
            let _ = self.cache.remove_abandoned_temporaries();
        }
        // Closing the file releases the lock.
        drop(file);
    }

    /// The file in the cache listing the repositories that use it, one root per line.
    fn cache_users_file(&self) -> PathBuf {
        self.cache.root().join("repos")
    }

    /// The bytes of the cache's list of users (empty if there is none yet).
    fn cache_users_listed(&self) -> Result<Vec<u8>> {
        match fs::read(self.cache_users_file()) {
            Ok(b) => Ok(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(e.into()),
        }
    }

    /// Adds this repository to the cache's list of users, if it is not there.
    /// Called under the cache lock; appending one line is atomic, so repositories
    /// registering at once do not lose each other.
    fn register_in_cache(&self) -> Result<()> {
        use std::os::unix::ffi::OsStrExt;
        let root = self.root.as_os_str().as_bytes();
        if root.contains(&b'\n') {
            return Ok(());
        }
        let known = self.cache_users_listed()?;
        if known.split(|&b| b == b'\n').any(|l| l == root) {
            return Ok(());
        }
        let mut line = root.to_vec();
        line.push(b'\n');
        let mut f = fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(self.cache_users_file())?;
        f.write_all(&line)?;
        Ok(())
    }

    /// The other repositories that use this repository's cache, and the roots
    /// listed that no longer do (deleted, no longer dvt repositories, or using
    /// another cache now). Read under [`Repo::lock_cache_alone`].
    pub fn cache_users(&self) -> Result<(Vec<Repo>, Vec<PathBuf>)> {
        use std::os::unix::ffi::OsStrExt;
        let known = self.cache_users_listed()?;
        let ours = fs::canonicalize(self.cache.root())?;
        let (mut users, mut gone) = (Vec::new(), Vec::new());
        for line in known.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let root = PathBuf::from(std::ffi::OsStr::from_bytes(line));
            if root == self.root {
                continue;
            }
            let unreadable = |e: crate::Error| RepoError::CacheUser {
                root: root.clone(),
                message: crate::error_chain(&e),
            };
            // Gone only when the system says so: a repository this user may not
            // read (another user's, private) still uses the cache.
            let vanished = |e: &std::io::Error| {
                matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                )
            };
            match fs::metadata(root.join(DVT_DIR)) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    gone.push(root);
                    continue;
                }
                Err(e) if vanished(&e) => {
                    gone.push(root);
                    continue;
                }
                Err(e) => return Err(unreadable(e.into()).into()),
            }
            let other = Repo::open(&root).map_err(unreadable)?;
            let same_cache = match fs::canonicalize(other.cache.root()) {
                Ok(theirs) => theirs == ours,
                Err(e) if vanished(&e) => false,
                Err(e) => return Err(unreadable(e.into()).into()),
            };
            if other.root != root || !same_cache {
                gone.push(root);
            } else {
                users.push(other);
            }
        }
        Ok((users, gone))
    }

    /// Rewrites the cache's list of users without `gone`. Under
    /// [`Repo::lock_cache_alone`].
    pub fn forget_cache_users(&self, gone: &[PathBuf]) -> Result<()> {
        use std::os::unix::ffi::OsStrExt;
        if gone.is_empty() {
            return Ok(());
        }
        let known = self.cache_users_listed()?;
        let mut kept = Vec::new();
        for line in known.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            if !gone.iter().any(|g| g.as_os_str().as_bytes() == line) {
                kept.extend_from_slice(line);
                kept.push(b'\n');
            }
        }
        crate::fsutil::atomic_write(&self.cache_users_file(), &kept)?;
        Ok(())
    }

    /// Resolves a path the user typed (relative to `cwd`) to an absolute path and a
    /// `/`-separated path relative to the root. Rejects paths outside the repository.
    pub fn resolve(&self, cwd: &Path, arg: &Path) -> Result<(PathBuf, String)> {
        let mut abs = normalize(&cwd.join(arg));
        // Reached through a symbolic link to the repository (a home directory
        // linked to another disk, `$PWD/data` in a linked directory): the
        // directories above it as they really are. The last part stays as
        // given: a link there is the path's own, not the way to it.
        if !abs.starts_with(&self.root)
            && let Some(real) = physical_parent(&abs)
        {
            abs = real;
        }
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
    /// `.dvt` or `.git`, reached without going through a symbolic link, and with a
    /// name short enough for its pointer file's name.
    pub fn check_trackable(&self, rel: &str) -> Result<()> {
        self.check_not_reserved(rel)?;
        let name = rel.trim_end_matches('/').rsplit('/').next().unwrap_or(rel);
        // What Linux and macOS file systems allow for one name, in bytes.
        const NAME_MAX: usize = 255;
        if name.len() + 1 + crate::pointer::POINTER_EXT.len() > NAME_MAX {
            return Err(PathError::Reserved {
                path: PathBuf::from(rel),
                reason: "its name is too long for a pointer file beside it (a file name may have 255 bytes, \
                         and the pointer's adds `.dvt`): rename it, or track the directory it is in",
            }
            .into());
        }
        self.check_no_symlink_parents(rel)
    }

    /// Checks that `rel` (repo-relative) is not the root and not in `.dvt` or `.git`.
    pub fn check_not_reserved(&self, rel: &str) -> Result<()> {
        let path = PathBuf::from(rel);
        if rel.is_empty() {
            return Err(PathError::Reserved {
                path: PathBuf::from("."),
                reason: "it is the repository root; add the files or directories in it",
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
                        path: rel.into(),
                        link: cur.strip_prefix(&self.root).unwrap_or(&cur).to_path_buf(),
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
    _repo: LockFile,
    cache: LockFile,
    cache_alone: bool,
}

impl Drop for RepoLock {
    fn drop(&mut self) {
        // Only a sole holder writes its name; clear it so nobody reads it stale.
        if let (true, Some(cache)) = (self.cache_alone, &self.cache.file) {
            let _ = cache.set_len(0);
        }
    }
}

/// A lock file this process holds; closed, which releases the lock, when
/// dropped. Never closed while a child is being started: the child's copy of
/// it would keep it locked ([`crate::process::spawn`]).
#[derive(Debug)]
pub struct LockFile {
    file: Option<fs::File>,
    path: PathBuf,
}

/// The lock files this process holds now (see [`LockFile`]).
static HELD: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

fn held_here() -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
    HELD.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl LockFile {
    fn new(file: fs::File, path: &Path) -> LockFile {
        held_here().push(path.to_path_buf());
        LockFile {
            file: Some(file),
            path: path.to_path_buf(),
        }
    }
}

impl Drop for LockFile {
    fn drop(&mut self) {
        let _closing = crate::process::lock_files_may_close();
        drop(self.file.take());
        let mut held = held_here();
        if let Some(i) = held.iter().position(|p| *p == self.path) {
            held.swap_remove(i);
        }
    }
}

/// How a lock file is held.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Hold {
    /// By this process alone; it writes who it is into the file.
    Alone,
    /// With any other shared holders; only a sole holder keeps it out.
    Shared,
}

/// `abs` with its directories resolved as they really are (symbolic links
/// followed), its last part kept as it is: from the nearest directory above
/// it that exists. `None` if none does, or nothing changes.
fn physical_parent(abs: &Path) -> Option<PathBuf> {
    let name = abs.file_name()?;
    let mut rest = vec![name];
    let mut dir = abs.parent()?;
    loop {
        if let Ok(real) = fs::canonicalize(dir) {
            let mut out = real;
            out.extend(rest.iter().rev());
            return (out != abs).then_some(out);
        }
        rest.push(dir.file_name()?);
        dir = dir.parent()?;
    }
}

/// The `.gitignore` dvt writes in a cache directory it makes outside `.dvt`.
const CACHE_GITIGNORE: &[u8] = b"# Written by dvt: a dvt cache, which git must not track.\n*\n";

/// Opens (creating it if needed) a lock file, without touching what it holds.
fn open_lock_file(path: &Path) -> std::io::Result<fs::File> {
    fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
}

/// [`hold`] of a lock others hold only for a moment (a config edit): waited
/// for, up to ten seconds, whether or not [`wait_for_locks`] was called.
fn hold_for_a_moment(path: &Path, what: &str) -> Result<LockFile> {
    hold_within(path, "config", what, std::time::Duration::from_secs(10))
}

/// [`hold`] alone, trying again every 10 ms for up to `wait` while it is taken.
fn hold_within(path: &Path, subject: &'static str, what: &str, wait: std::time::Duration) -> Result<LockFile> {
    let deadline = std::time::Instant::now() + wait;
    loop {
        match hold(path, subject, what, Hold::Alone) {
            Err(crate::Error::Repo(RepoError::Locked { .. })) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            held => return held,
        }
    }
}

/// Set by [`wait_for_locks`]: what to call when a lock is found taken.
static WAITING: std::sync::OnceLock<fn(&str)> = std::sync::OnceLock::new();

/// From now on, a command that finds the repository or the cache locked
/// waits until it is free instead of failing (DVC's `--wait-for-lock`),
/// calling `on_wait` with the holder's description once per lock waited for.
/// Locks taken only to see whether they are held are not waited for.
pub fn wait_for_locks(on_wait: fn(&str)) {
    let _ = WAITING.set(on_wait);
}

/// [`hold`], waiting for the lock while it is taken if [`wait_for_locks`] said so.
fn hold_patiently(path: &Path, subject: &'static str, what: &str, how: Hold) -> Result<LockFile> {
    let Some(on_wait) = WAITING.get() else {
        return hold(path, subject, what, how);
    };
    let mut told = false;
    loop {
        match hold(path, subject, what, how) {
            Err(crate::Error::Repo(RepoError::Locked { holder, .. })) => {
                if !told {
                    on_wait(&format!("the {subject} is locked by another dvt process ({holder})"));
                    told = true;
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            held => return held,
        }
    }
}

/// Takes the lock `path` of the `subject` ("repository", "cache") as `how`, for
/// the command `what`; fails at once, naming the holder, if it is taken.
fn hold(path: &Path, subject: &'static str, what: &str, how: Hold) -> Result<LockFile> {
    let mut file = open_lock_file(path)?;
    let try_lock = |file: &fs::File| match how {
        Hold::Alone => file.file().try_lock(),
        Hold::Shared => file.file().try_lock_shared(),
    };
    let mut taken = try_lock(&file);
    // Waited out: a command that found the cache idle holds its lock alone for
    // the moment it takes to sweep it (`Repo::sweep_if_cache_idle`); a lock
    // this process released, which a child it is starting holds until it runs
    // (a moment: see `crate::process::spawn`).
    for _ in 0..100 {
        if !matches!(taken, Err(std::fs::TryLockError::WouldBlock)) {
            break;
        }
        let sweeping = how == Hold::Shared;
        if !sweeping && !released_here(&mut file, path) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
        taken = try_lock(&file);
    }
    match taken {
        Ok(()) => {
            if how == Hold::Alone {
                file.set_len(0)?;
                file.rewind()?;
                // One write: a command that finds the lock taken reads it whole.
                file.write_all(format!("pid {}: {what}", std::process::id()).as_bytes())?;
            }
            Ok(LockFile::new(file, path))
        }
        Err(std::fs::TryLockError::WouldBlock) => {
            // A sole holder writes who it is just after locking: give it a moment.
            // Shared holders write nothing.
            let mut holder = String::new();
            for _ in 0..20 {
                holder = holder_of(&mut file);
                // Complete once it names the command after the pid.
                if holder.contains(": ") {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            if holder.trim().is_empty() {
                holder = match (subject, how) {
                    ("cache", Hold::Alone) => "commands of the repositories that share this cache".into(),
                    _ => "holder unknown".into(),
                };
            }
            Err(RepoError::Locked {
                subject,
                path: path.to_path_buf(),
                holder: holder.trim().to_string(),
            }
            .into())
        }
        Err(std::fs::TryLockError::Error(e)) => Err(e.into()),
    }
}

/// What the sole holder of lock `file` wrote: who it is.
fn holder_of(file: &mut fs::File) -> String {
    let mut holder = String::new();
    let _ = file.rewind();
    let _ = file.read_to_string(&mut holder);
    holder
}

/// Whether the lock `path`, taken, was last held alone by this process, which
/// holds it no more: a child being started holds it, for a moment.
fn released_here(file: &mut fs::File, path: &Path) -> bool {
    holder_of(file).starts_with(&format!("pid {}: ", std::process::id())) && !held_here().iter().any(|p| p == path)
}

/// In a linked git worktree, the cache of the same dvt repository in the main
/// worktree (which follows that one's `cache.dir`), if it is initialized there:
/// worktrees share data as they share git's objects.
fn main_worktree_cache(root: &Path) -> Option<PathBuf> {
    let main_root = crate::git::in_main_worktree(root)?;
    if main_root == root || !main_root.join(DVT_DIR).is_dir() {
        return None;
    }
    let main = Repo::open_root(main_root).ok()?;
    Some(main.cache.root().to_path_buf())
}

/// `.dvt/config.toml` or `.dvt/config.local.toml` of the repository at `root`.
fn repo_config_file(root: &Path, level: ConfigLevel) -> PathBuf {
    let name = match level {
        ConfigLevel::Local => "config.local.toml",
        _ => "config.toml",
    };
    root.join(DVT_DIR).join(name)
}

/// The system and global config files that exist, and what they hold, with
/// relative paths in them made absolute from the file's directory (as DVC does):
/// they apply to repositories anywhere.
fn outside_layers() -> Result<Vec<(PathBuf, toml::Table)>> {
    let mut layers = Vec::new();
    for level in [ConfigLevel::System, ConfigLevel::Global] {
        let Some(path) = level.outside_file() else {
            continue;
        };
        if let Some(mut layer) = read_config_layer(&path)? {
            if let Some(dir) = path.parent() {
                absolutize_paths(&mut layer, dir);
            }
            layers.push((path, layer));
        }
    }
    Ok(layers)
}

/// Makes the relative paths of a config file outside the repository (its
/// `cache.dir`, remote URLs that are local directories, CA bundles) relative
/// to `dir`, its directory.
fn absolutize_paths(layer: &mut toml::Table, dir: &Path) {
    let absolute = |value: &mut toml::Value| {
        if let toml::Value::String(p) = value
            && crate::remote::config::relative_local_path(p)
        {
            *p = normalize(&dir.join(p.as_str())).to_string_lossy().into_owned();
        }
    };
    if let Some(d) = layer
        .get_mut("cache")
        .and_then(toml::Value::as_table_mut)
        .and_then(|c| c.get_mut("dir"))
    {
        absolute(d);
    }
    for (_, remote) in layer
        .get_mut("remote")
        .and_then(toml::Value::as_table_mut)
        .into_iter()
        .flatten()
    {
        for key in ["url", "ssl_verify"] {
            if let Some(v) = remote.as_table_mut().and_then(|t| t.get_mut(key)) {
                absolute(v);
            }
        }
    }
}

/// The settings `table` holds, checked, as the config file `path` holds them.
fn check_config(path: &Path, table: toml::Table) -> Result<Config> {
    let invalid = |message: String| RepoError::Config {
        path: path.to_path_buf(),
        message,
    };
    let config: Config = table
        .try_into()
        .map_err(|e: toml::de::Error| invalid(e.message().to_string()))?;
    if !CACHE_LEVELS.contains(&i64::from(config.cache.level)) {
        return Err(invalid(format!(
            "`cache.level` must be from {} (fastest) to {} (smallest), not {}",
            CACHE_LEVELS.start(),
            CACHE_LEVELS.end(),
            config.cache.level
        ))
        .into());
    }
    if let Some(grace) = &config.gc.grace {
        crate::ops::gc::parse_span(grace).map_err(|e| invalid(format!("`gc.grace`: {e}")))?;
    }
    Ok(config)
}

/// For `-v`: which config files a repository's settings come from, once per
/// repository in a process (a command opens its repository more than once).
fn log_config_files(root: &Path, layers: &[(PathBuf, toml::Table)]) {
    static LOGGED: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());
    if !tracing::enabled!(tracing::Level::DEBUG) {
        return;
    }
    let mut logged = LOGGED.lock().unwrap_or_else(|e| e.into_inner());
    if logged.iter().any(|r| r == root) {
        return;
    }
    logged.push(root.to_path_buf());
    let files: Vec<String> = layers.iter().map(|(p, _)| p.display().to_string()).collect();
    tracing::debug!(
        "repository {}: settings from {}",
        root.display(),
        match files.is_empty() {
            true => "no config file".to_string(),
            false => files.join(", "),
        }
    );
}

/// One config file as a table, `None` if it does not exist; a syntax error names
/// the file and the line.
/// Where this machine keeps the cache of the repository at `root`, when its
/// `.dvt/config.local.toml` says (`cache.dir`, as `dvt cache dir --local`
/// writes it): the one local setting that another command reading `root`'s
/// data must follow to find it there, and that chooses no remote.
pub(crate) fn local_cache_layer(root: &Path) -> Result<Option<(PathBuf, toml::Table)>> {
    let file = repo_config_file(root, ConfigLevel::Local);
    let Some(mut table) = read_config_layer(&file)? else {
        return Ok(None);
    };
    let dir = match table.remove("cache") {
        Some(toml::Value::Table(mut cache)) => cache.remove("dir"),
        _ => None,
    };
    Ok(dir.map(|dir| {
        let cache = toml::Table::from_iter([("dir".to_string(), dir)]);
        (
            file,
            toml::Table::from_iter([("cache".to_string(), toml::Value::Table(cache))]),
        )
    }))
}

pub(crate) fn read_config_layer(path: &Path) -> Result<Option<toml::Table>> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let table = toml::from_str(&text).map_err(|e| RepoError::Config {
        path: path.to_path_buf(),
        message: crate::error::toml_message(&text, e.span(), e.message()),
    })?;
    Ok(Some(table))
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A lock this process released can be taken again at once, even while
    /// another thread starts processes (which, between fork and exec, hold a
    /// copy of every open file, and so of the lock).
    #[test]
    fn a_released_lock_is_free_while_other_threads_spawn() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock");
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let spawner = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let mut child = crate::process::spawn(&mut std::process::Command::new("true")).unwrap();
                    child.wait().unwrap();
                }
            })
        };
        let mut failures = 0;
        for _ in 0..5_000 {
            let held = hold(&path, "repository", "a test", Hold::Alone).unwrap();
            drop(held);
            if hold(&path, "repository", "a test", Hold::Alone).is_err() {
                failures += 1;
            }
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        spawner.join().unwrap();
        assert_eq!(failures, 0);
    }
}
