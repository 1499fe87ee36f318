//! `dvt remove`: stop tracking a path. The data and the cache are left alone.

use std::path::PathBuf;

use serde::Serialize;

use crate::error::Result;
use crate::repo::Repo;
use crate::workspace::{rel_str, resolve_targets};

/// What to stop tracking.
#[derive(Debug, Clone)]
pub struct RemoveOptions {
    /// Pointer files or data paths (at least one).
    pub targets: Vec<PathBuf>,
    /// The directory relative targets start from.
    pub cwd: PathBuf,
}

/// What `remove` did.
#[derive(Debug, Default, Serialize)]
pub struct RemoveReport {
    /// Pointer files deleted, repo-relative.
    pub removed: Vec<String>,
}

/// Deletes the targets' pointer files and their `.gitignore` entries.
pub fn remove(repo: &Repo, opts: &RemoveOptions) -> Result<RemoveReport> {
    if opts.targets.is_empty() {
        return Ok(RemoveReport::default());
    }
    let pointers = resolve_targets(repo, &opts.cwd, &opts.targets)?;
    let _lock = repo.lock("dvt remove")?;
    let mut report = RemoveReport::default();
    for p in pointers {
        let rel = rel_str(repo.root(), &p)?;
        // The data's name is the pointer's name without `.dvt`, whatever the
        // pointer says: a malformed pointer can still be removed.
        let name = p
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".dvt"))
            .unwrap_or_default()
            .to_string();
        fs_err::remove_file(&p)?;
        if let Some(dir) = p.parent() {
            crate::gitignore::remove(dir, &name)?;
        }
        report.removed.push(rel);
    }
    Ok(report)
}
