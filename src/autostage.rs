//! `core.autostage` (as DVC's): the files dvt writes for git to keep — pointer
//! files, `.gitignore` entries, `dvt.lock`, `dvt.toml`, `.dvt/config.toml` —
//! are noted here as a command writes or deletes them, so that the command,
//! once it has succeeded, can stage exactly those with git
//! ([`crate::git::Git::stage`]) instead of asking the user to `git add` them.
//! Noting costs a lock and a push, and is done whether autostage is on or not.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

static TOUCHED: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Notes that `path` (absolute) was written or deleted.
pub fn note(path: &Path) {
    let mut touched = TOUCHED.lock().unwrap_or_else(|e| e.into_inner());
    if !touched.iter().any(|p| p == path) {
        touched.push(path.to_path_buf());
    }
}

/// The paths noted so far, in the order first noted; the list is kept (for a
/// hint that names them before [`take`] stages them).
pub fn noted() -> Vec<PathBuf> {
    TOUCHED.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Of `touched`, the files git keeps in the repository at `root`: everything
/// dvt wrote there except what is in `.dvt` (the cache, tmp, the local
/// config, an experiment's worktree), where only `config.toml` and
/// `.gitignore` are committed.
pub fn for_git(root: &Path, touched: Vec<PathBuf>) -> Vec<PathBuf> {
    let dvt_dir = root.join(crate::repo::DVT_DIR);
    let committed = [dvt_dir.join("config.toml"), dvt_dir.join(".gitignore")];
    touched
        .into_iter()
        .filter(|p| p.starts_with(root) && (!p.starts_with(&dvt_dir) || committed.contains(p)))
        .collect()
}

/// The paths noted so far, in the order first noted; the list is emptied.
pub fn take() -> Vec<PathBuf> {
    std::mem::take(&mut *TOUCHED.lock().unwrap_or_else(|e| e.into_inner()))
}
