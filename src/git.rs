//! Everything that reads git goes through this module, with gix.

use std::path::{Path, PathBuf};

use crate::error::{RepoError, Result};

/// The root of the git work tree containing `dir`, or `None` outside any git
/// work tree (or in a bare repository).
pub fn work_tree_root(dir: &Path) -> Result<Option<PathBuf>> {
    use gix::discover::upwards::Error as E;
    match gix::discover::upwards(dir) {
        Ok((path, _trust)) => Ok(path.into_repository_and_work_tree_directories().1),
        Err(e) => match e.downcast_any_ref::<E>() {
            Some(
                E::NoGitRepository { .. } | E::NoGitRepositoryWithinCeiling { .. } | E::NoGitRepositoryWithinFs { .. },
            ) => Ok(None),
            _ => Err(RepoError::Git {
                path: dir.to_path_buf(),
                source: e.to_string().into(),
            }
            .into()),
        },
    }
}
