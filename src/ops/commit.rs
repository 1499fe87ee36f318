//! `dvt commit`: record what the workspace holds now, as `dvc commit` does:
//! the outs of pipeline stages into `dvt.lock` (and the cache), and changed data
//! of `.dvt` pointers (as `dvt add` would).

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use serde::Serialize;

use crate::error::{PathError, PipelineError, Result};
use crate::object::ObjectId;
use crate::ops::add::{AddOptions, AddReport};
use crate::ops::repro::{Storing, as_recorded, inputs, inputs_changed, record_outs};
use crate::pipeline::Pipeline;
use crate::pipeline::lock::Lock;
use crate::pipeline::params::ParamsCache;
use crate::progress::Progress;
use crate::repo::Repo;
use crate::workspace::{Counters, Targets, Tracked, stage_target};

/// What to commit.
#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    /// Stage names (`NAME` or `dvt.toml:NAME`), outs of stages, or paths tracked
    /// by `.dvt` pointers; empty means every stage and every pointer.
    pub targets: Vec<String>,
    /// The directory relative paths start from.
    pub cwd: PathBuf,
    /// Record stages whose command, deps or params changed since `dvt.lock` was
    /// written (or that never ran) as they are.
    pub force: bool,
    /// Leave a stage whose outs are not all in the workspace as `dvt.lock`
    /// records it (listed in [`CommitReport::incomplete`]) instead of refusing.
    pub skip_incomplete: bool,
}

/// One stage's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct StageCommit {
    /// The stage.
    pub stage: String,
    /// Whether its entry in `dvt.lock` changed.
    pub changed: bool,
    /// Why it was recorded only thanks to `--force` ("dep `x` changed since
    /// `dvt.lock` was written"), if it was.
    pub forced: Option<String>,
    /// Its cached outs.
    pub outs: Vec<OutId>,
    /// Bytes of its outs newly written to the cache.
    pub stored_bytes: u64,
}

/// A cached out as recorded.
#[derive(Debug, Clone, Serialize)]
pub struct OutId {
    /// Its path, repo-relative.
    pub path: String,
    /// Its id (a directory's is its manifest's).
    pub id: ObjectId,
}

/// What `commit` did.
#[derive(Debug, Serialize)]
pub struct CommitReport {
    /// The stages committed, in pipeline order.
    pub stages: Vec<StageCommit>,
    /// The pointers committed (as `dvt add` reports them), if any.
    pub pointers: Option<AddReport>,
    /// Pointers skipped because they were made by `dvt import` or `import-url`.
    pub skipped_imports: Vec<String>,
    /// Stages skipped, when no targets were named, because `dvt.lock` has no
    /// entry for them (name one, with `--force`, to record it).
    pub never_ran: Vec<String>,
    /// Stages left as recorded because an out is missing from the workspace
    /// (with [`CommitOptions::skip_incomplete`]).
    pub incomplete: Vec<String>,
    /// Stages `dvt.lock` stopped recording because `dvt.toml` no longer has
    /// them, with their outs left in the workspace.
    pub forgotten: Vec<crate::pipeline::lock::Forgotten>,
}

/// Records the targets as they are now. Every target is checked, and every
/// selected stage compared with `dvt.lock`, before anything is written.
pub fn commit(repo: &Repo, opts: &CommitOptions, progress: &dyn Progress) -> Result<CommitReport> {
    let pipeline = Pipeline::load(repo)?;
    let (stages, paths) = split_targets(repo, pipeline.as_ref(), opts)?;
    let mut skipped_imports = Vec::new();
    let mut data: Vec<PathBuf> = Vec::new();
    // None given: every pointer; given, those of the targets that are not stages.
    let which = match opts.targets.is_empty() {
        true => Targets::All,
        false => Targets::Named(&paths),
    };
    let pointers = crate::workspace::resolve_targets(repo, &opts.cwd, which)?;
    for file in pointers {
        let t = Tracked::load(repo, &file)?;
        if t.pointer.source.is_some() {
            if !opts.targets.is_empty() {
                return Err(PathError::CommitImport { pointer: t.pointer_rel }.into());
            }
            skipped_imports.push(t.pointer_rel);
            continue;
        }
        // Without targets, data that is not in the workspace is left as recorded.
        if opts.targets.is_empty() && t.data_abs.symlink_metadata().is_err() {
            continue;
        }
        data.push(t.data_abs);
    }
    let mut report = CommitReport {
        stages: vec![],
        pointers: None,
        skipped_imports,
        never_ran: vec![],
        incomplete: vec![],
        forgotten: vec![],
    };
    if let Some(pipeline) = &pipeline {
        commit_stages(repo, pipeline, &stages, opts, &mut report)?;
    }
    if !data.is_empty() {
        let add = AddOptions {
            paths: data,
            cwd: repo.root().to_path_buf(),
            no_commit: false,
        };
        report.pointers = Some(crate::ops::add(repo, &add, progress)?);
    }
    Ok(report)
}

/// Splits targets into stage names (in pipeline order; all when there are no
/// targets) and paths for pointers.
fn split_targets(
    repo: &Repo,
    pipeline: Option<&Pipeline>,
    opts: &CommitOptions,
) -> Result<(Vec<String>, Vec<PathBuf>)> {
    let Some(p) = pipeline else {
        return Ok((vec![], opts.targets.iter().map(PathBuf::from).collect()));
    };
    if opts.targets.is_empty() {
        return Ok((p.order.clone(), vec![]));
    }
    let mut names = Vec::new();
    let mut paths = Vec::new();
    for t in &opts.targets {
        let named = stage_target(repo, &opts.cwd, p, Path::new(t))?;
        if !named.is_empty() {
            names.extend(named.iter().map(|s| s.name.clone()));
            continue;
        }
        let (_, rel) = repo.resolve(&opts.cwd, Path::new(t))?;
        match p.producer(rel.trim_end_matches('/')) {
            Some(stage) => names.push(stage.name.clone()),
            None => paths.push(PathBuf::from(t)),
        }
    }
    let order: Vec<String> = p.order.iter().filter(|s| names.contains(s)).cloned().collect();
    Ok((order, paths))
}

fn commit_stages(
    repo: &Repo,
    pipeline: &Pipeline,
    names: &[String],
    opts: &CommitOptions,
    report: &mut CommitReport,
) -> Result<()> {
    let (every, force) = (opts.targets.is_empty(), opts.force);
    if names.is_empty() {
        return Ok(());
    }
    let _lock = repo.lock("dvt commit")?;
    let mut lock = Lock::load(repo)?;
    lock.version = crate::pipeline::lock::LOCK_VERSION;
    let stat = repo.stat_cache();
    let counters = Counters::default();
    let mut params = ParamsCache::default();
    // Check every stage first: a refusal writes nothing.
    let mut checked = Vec::new();
    for name in names {
        let stage = &pipeline.stages[name];
        let why = match lock.stages.get(name) {
            // Without targets, a stage that never ran is not what the user means.
            None if every && !force => {
                report.never_ran.push(name.clone());
                continue;
            }
            None => Some("`dvt.lock` has no entry for it".to_string()),
            Some(_) => None,
        };
        if let Some(out) = stage
            .outs
            .iter()
            .find(|o| repo.root().join(&o.path).symlink_metadata().is_err())
        {
            if opts.skip_incomplete {
                report.incomplete.push(name.clone());
                continue;
            }
            return Err(PipelineError::CommitOutMissing {
                stage: name.clone(),
                out: out.path.clone(),
            }
            .into());
        }
        let now = match lock.stages.get(name) {
            // A frozen stage keeps the deps and params it was recorded with: they
            // are not checked while it is frozen, and are compared again after.
            Some(locked) if stage.frozen && !force => as_recorded(stage, Some(locked)),
            _ => {
                let known = crate::ops::repro::Known::new();
                inputs(repo, stage, &|_| None, &stat, &counters, &known, &mut params)?.0
            }
        };
        let why = why.or_else(|| {
            let locked = lock.stages.get(name)?;
            inputs_changed(&now, locked).map(|c| format!("{c} since `dvt.lock` was written"))
        });
        if let (Some(why), false) = (&why, force) {
            return Err(PipelineError::CommitChanged {
                stage: name.clone(),
                why: why.clone(),
            }
            .into());
        }
        checked.push((stage, now, why));
    }
    let mut written = 0;
    for (stage, now, why) in checked {
        // Outs of a run with the inputs recorded (`repro --no-commit`, then this)
        // go into the run cache as that run's; outs forced in over changed inputs
        // do not.
        let key = match why {
            None => crate::pipeline::run_cache::key(stage, &now),
            Some(_) => None,
        };
        let storing = if key.is_some() { Storing::All } else { Storing::Cached };
        let done = record_outs(repo, stage, &now, storing, &stat, &counters)?;
        if let Some(k) = &key {
            // Only a cache of work: failing to write it loses no result.
            let _ = crate::pipeline::run_cache::save(repo.cache().root(), k, &done);
        }
        let total = counters.written_bytes.load(Ordering::Relaxed);
        let stored_bytes = total - written;
        written = total;
        let changed = lock.stages.get(&stage.name) != Some(&done);
        let cached = |p: &str| stage.outs.iter().any(|o| o.path == p && o.cache);
        report.stages.push(StageCommit {
            stage: stage.name.clone(),
            changed,
            forced: why,
            outs: done
                .outs
                .iter()
                .filter(|e| cached(&e.path))
                .map(|e| OutId {
                    path: e.path.clone(),
                    id: e.id,
                })
                .collect(),
            stored_bytes,
        });
        lock.stages.insert(stage.name.clone(), done);
    }
    let forgotten = lock.forget_removed(repo, pipeline);
    if written > 0 && repo.config().cache.fsync {
        crate::fsutil::sync_filesystem(repo.cache().root())?;
    }
    if report.stages.iter().any(|s| s.changed) {
        lock.save(repo)?;
        report.forgotten = forgotten;
    }
    let _ = stat.save();
    Ok(())
}
