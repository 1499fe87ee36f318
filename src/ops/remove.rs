//! `dvt remove`: stop tracking a path, or delete a stage from the pipeline (as
//! `dvc remove`). The data and the cache are left alone, unless `outs`.

use std::path::PathBuf;

use serde::Serialize;

use crate::error::{Result, WorkspaceError};
use crate::pipeline::Pipeline;
use crate::repo::Repo;
use crate::workspace::{Targets, Tracked, rel_str, resolve_targets, stage_target};

/// What to stop tracking.
#[derive(Debug, Clone)]
pub struct RemoveOptions {
    /// Pointer files, data paths, or stages (`NAME` or `dvt.toml:NAME`; at least
    /// one). Tracked data wins over a stage of the same name.
    pub targets: Vec<PathBuf>,
    /// The directory relative targets start from.
    pub cwd: PathBuf,
    /// Also delete the data from the workspace: a pointer's, a stage's cached
    /// outs (DVC's `--outs`). Refused, before anything changes, for data whose
    /// content the cache does not hold.
    pub outs: bool,
}

/// What `remove` did.
#[derive(Debug, Default, Serialize)]
pub struct RemoveReport {
    /// Pointer files deleted, repo-relative.
    pub removed: Vec<String>,
    /// Stages deleted from `dvt.toml` (and `dvt.lock`).
    pub stages: Vec<String>,
    /// With `outs`: data paths deleted from the workspace.
    pub deleted: Vec<String>,
}

/// Deletes the targets' pointer files and their `.gitignore` entries; deletes
/// the stages they name from `dvt.toml` and `dvt.lock`, with the `.gitignore`
/// entries of their outs. With `outs`, the data goes too.
pub fn remove(repo: &Repo, opts: &RemoveOptions) -> Result<RemoveReport> {
    if opts.targets.is_empty() {
        return Ok(RemoveReport::default());
    }
    let pipeline = Pipeline::load(repo)?;
    let mut pointer_targets = Vec::new();
    let mut stage_names: Vec<String> = Vec::new();
    for t in &opts.targets {
        let named = match &pipeline {
            Some(p) => stage_target(repo, &opts.cwd, p, t)?,
            None => Vec::new(),
        };
        if named.is_empty() {
            pointer_targets.push(t.clone());
        }
        for s in named {
            if !stage_names.contains(&s.name) {
                stage_names.push(s.name.clone());
            }
        }
    }
    // No target left once the stages are taken out names no pointer.
    let pointers = resolve_targets(repo, &opts.cwd, Targets::Named(&pointer_targets))?;
    // The cached outs of the stages that go: their `.gitignore` entries, and with
    // `outs` their data.
    let stage_outs: Vec<&str> = stage_names
        .iter()
        .filter_map(|n| pipeline.as_ref().and_then(|p| p.stages.get(n)))
        .flat_map(|s| s.outs.iter().filter(|o| o.cache).map(|o| o.path.as_str()))
        .collect();
    let _lock = repo.lock("dvt remove")?;
    // Every check before the first change.
    let mut doomed: Vec<Tracked> = Vec::new();
    if opts.outs {
        for p in &pointers {
            doomed.push(Tracked::load(repo, p)?);
        }
        let recorded = crate::pipeline::lock_outs(repo)?;
        doomed.extend(
            recorded
                .into_iter()
                .filter(|t| stage_outs.contains(&t.data_rel.as_str())),
        );
        for t in &doomed {
            if fs_err::symlink_metadata(&t.data_abs).is_ok() {
                crate::ops::checkout::refuse_unrecorded_changes(repo, t).map_err(|e| match e {
                    crate::Error::Workspace(WorkspaceError::Conflicts { paths }) => {
                        WorkspaceError::RemoveUnrecorded { paths }.into()
                    }
                    e => e,
                })?;
            }
        }
    }
    let mut report = RemoveReport::default();
    if !stage_names.is_empty() {
        crate::ops::stages::remove_stages(repo, &stage_names)?;
        let mut lock = crate::pipeline::lock::Lock::load(repo)?;
        lock.stages.retain(|n, _| !stage_names.contains(n));
        lock.save(repo)?;
        for out in &stage_outs {
            let abs = repo.root().join(out);
            crate::gitignore::remove(abs.parent().unwrap_or(repo.root()), crate::workspace::file_name(out))?;
        }
        report.stages = stage_names;
    }
    // Each `.gitignore` is written once, without the entries of all its pointers.
    let mut data: Vec<PathBuf> = Vec::new();
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
        crate::autostage::note(&p);
        if !name.is_empty() {
            data.push(p.with_file_name(name));
        }
        report.removed.push(rel);
    }
    crate::gitignore::remove_beside(&data.iter().map(PathBuf::as_path).collect::<Vec<_>>())?;
    for t in doomed {
        match fs_err::symlink_metadata(&t.data_abs) {
            Ok(m) if m.is_dir() => fs_err::remove_dir_all(&t.data_abs)?,
            Ok(_) => fs_err::remove_file(&t.data_abs)?,
            Err(_) => continue,
        }
        report.deleted.push(t.data_rel);
    }
    Ok(report)
}
