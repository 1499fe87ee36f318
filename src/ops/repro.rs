//! `dvt repro`: run the pipeline's stages whose command, deps, params or outs
//! differ from `dvt.lock`, in dependency order; restore outs from the cache when
//! only they are missing; record each finished stage in `dvt.lock` at once.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Serialize;

use crate::error::{PipelineError, Result};
use crate::ops::add::identify_path;
use crate::pipeline::lock::{Entry, Lock, StageLock};
use crate::pipeline::params::ParamsCache;
use crate::pipeline::{Pipeline, Stage, run_cache};
use crate::pointer::Kind;
use crate::progress::{NoProgress, Progress};
use crate::repo::Repo;
use crate::statcache::StatCache;
use crate::workspace::{Counters, Identify, Tracked};

/// The reason a stage with no entry in `dvt.lock` runs.
pub const NEVER_RAN: &str = "it has never run";

/// What to reproduce.
#[derive(Debug, Clone, Default)]
pub struct ReproOptions {
    /// Stage names (default: all), with everything upstream of them.
    pub targets: Vec<String>,
    /// Run the selected stages even if nothing changed.
    pub force: bool,
    /// Say what would run; run nothing, write nothing.
    pub dry_run: bool,
    /// Select the targets and everything downstream of them instead.
    pub downstream: bool,
    /// Only the named stages, not those upstream (or downstream) of them.
    pub single_item: bool,
    /// First download the selected stages' recorded outs that the cache lacks
    /// from the default remote, so that they are restored rather than run; and
    /// for a stage that must run, look for its run in the remote's run cache
    /// (`push --run-cache` put it there) when this cache has no usable entry.
    pub pull: bool,
    /// With `pull`: the remote to download from (default: the default remote).
    pub remote: Option<String>,
    /// Record the outs in `dvt.lock` without storing them in the cache (`dvt
    /// commit` stores them later).
    pub no_commit: bool,
    /// Append what the stages' commands print (stdout and stderr) to this file
    /// instead of passing it to ours.
    pub log: Option<PathBuf>,
    /// Run each stage's command in a process group of its own, whose id this
    /// file holds while the command runs (for `dvt queue kill`, which signals
    /// the group). A file beside it, [`kill_request`], stops the stage: made
    /// before the stage starts, it keeps it from starting.
    pub group: Option<PathBuf>,
    /// Run stages even when the run cache holds an earlier run with the same
    /// command, deps and params (see [`crate::pipeline::run_cache`]).
    pub no_run_cache: bool,
    /// A stage whose command fails does not stop the run: the stages that
    /// depend on it, directly or not, are not run ([`Action::NotRun`]), the
    /// others are (DVC's `--keep-going`). The report lists it as
    /// [`Action::Failed`].
    pub keep_going: bool,
    /// A stage whose command fails stops nothing: the stages after it run too,
    /// on whatever its outs are then (DVC's `--ignore-errors`).
    pub ignore_errors: bool,
    /// Every stage of the pipelines the targets are in: those connected to them
    /// by deps, either way (DVC's `--pipeline`).
    pub whole_pipeline: bool,
    /// A stage runs when one it depends on ran, even if what that one made is
    /// what it made before (DVC's `--force-downstream`).
    pub force_downstream: bool,
    /// Data that is missing, with nothing else changed, does not make a stage
    /// run: an out that neither the workspace nor the cache has, or a dep that
    /// is gone from the workspace, counts as recorded (DVC's `--allow-missing`,
    /// e.g. `--dry-run --allow-missing` to check a clone without its data).
    pub allow_missing: bool,
    /// The targets are shell-style patterns of stage names (DVC's `--glob`;
    /// see [`Pipeline::stages_matching`]).
    pub glob: bool,
}

/// How `repro` picks stages beyond its targets, and goes on when one fails:
/// the options of [`ReproOptions`] that `dvt exp run` passes on, and that a
/// queued experiment keeps for when it runs. Each is the field of that name.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(default)]
pub struct StageFlags {
    /// [`ReproOptions::downstream`].
    pub downstream: bool,
    /// [`ReproOptions::single_item`].
    pub single_item: bool,
    /// [`ReproOptions::whole_pipeline`].
    pub whole_pipeline: bool,
    /// [`ReproOptions::force_downstream`].
    pub force_downstream: bool,
    /// [`ReproOptions::allow_missing`].
    pub allow_missing: bool,
    /// [`ReproOptions::keep_going`].
    pub keep_going: bool,
    /// [`ReproOptions::ignore_errors`].
    pub ignore_errors: bool,
}

impl StageFlags {
    /// The flags `opts` has set.
    pub fn of(opts: &ReproOptions) -> StageFlags {
        StageFlags {
            downstream: opts.downstream,
            single_item: opts.single_item,
            whole_pipeline: opts.whole_pipeline,
            force_downstream: opts.force_downstream,
            allow_missing: opts.allow_missing,
            keep_going: opts.keep_going,
            ignore_errors: opts.ignore_errors,
        }
    }

    /// Whether none is set.
    pub fn is_default(&self) -> bool {
        *self == StageFlags::default()
    }

    /// `opts` with these flags set.
    pub fn apply(self, opts: ReproOptions) -> ReproOptions {
        ReproOptions {
            downstream: self.downstream,
            single_item: self.single_item,
            whole_pipeline: self.whole_pipeline,
            force_downstream: self.force_downstream,
            allow_missing: self.allow_missing,
            keep_going: self.keep_going,
            ignore_errors: self.ignore_errors,
            ..opts
        }
    }
}

/// The file whose presence asks the stages of the run with group file
/// `group` ([`ReproOptions::group`]) to stop.
pub fn kill_request(group: &Path) -> PathBuf {
    group.with_extension("kill")
}

/// What happened to a stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// It ran.
    Ran,
    /// Nothing changed; not run.
    Skipped,
    /// Only outs were missing; restored from the cache.
    Restored,
    /// Its command, deps or params changed to those of an earlier run: that
    /// run's outs were restored from the run cache instead of running it.
    RestoredFromRunCache,
    /// Dry run: would run.
    WouldRun,
    /// Dry run: would restore.
    WouldRestore,
    /// With `keep_going` or `ignore_errors`: its command failed (the reason says
    /// how); `dvt.lock` keeps what it recorded of it.
    Failed,
    /// With `keep_going`: not run, because a stage it depends on failed.
    NotRun,
}

/// One stage's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct StageResult {
    /// The stage.
    pub stage: String,
    /// What happened.
    pub action: Action,
    /// Why it ran (the first difference found), if it did; for a skipped
    /// stage, [`OUTS_STORED`] when its outs went into the cache.
    pub reason: Option<String>,
    /// Whether it is frozen (its deps and params were not checked).
    pub frozen: bool,
}

impl StageResult {
    /// `stage` failed with `e` (under `keep_going` or `ignore_errors`).
    fn failed(stage: &Stage, e: &crate::Error) -> StageResult {
        StageResult {
            stage: stage.name.clone(),
            action: Action::Failed,
            reason: Some(crate::error_chain(e)),
            frozen: stage.frozen,
        }
    }
}

/// What `repro` did, stage by stage, in run order.
#[derive(Debug, Clone, Serialize, Default)]
pub struct ReproReport {
    /// Each selected stage.
    pub stages: Vec<StageResult>,
    /// Files read and hashed to decide (0 when the stat cache knew them all).
    pub hashed_files: u64,
    /// With `pull`: objects of recorded outs downloaded from the remote first.
    pub pulled: usize,
    /// With `pull`: why some could not be downloaded (their stages run instead).
    pub pull_error: Option<String>,
    /// With `pull`: why the remote's run cache stopped being asked for runs
    /// (a remote that is down); later stages that needed a run ran.
    pub run_cache_error: Option<String>,
    /// Stages `dvt.lock` stopped recording because `dvt.toml` no longer has
    /// them, with their outs left in the workspace.
    pub forgotten: Vec<crate::pipeline::lock::Forgotten>,
}

/// Called before a stage's command runs, with the stage and why; an error
/// (`repro -i` declined) stops the run there, the stages before it recorded.
pub type OnRun<'a> = &'a dyn Fn(&Stage, &str) -> Result<()>;

/// The current state of a path, as the lock would record it; `None` if absent.
fn state_of(
    repo: &Repo,
    rel: &str,
    how: Identify<'_>,
    stat: &StatCache,
    counters: &Counters,
    known: &Known,
) -> Result<Option<Entry>> {
    if let Some(e) = known.get(rel) {
        return Ok(Some(e.clone()));
    }
    let abs = repo.root().join(rel);
    let meta = match fs_err::symlink_metadata(&abs) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let (p, _) = identify_path(repo, &abs, rel, meta.is_dir(), how, stat, counters, &NoProgress)?;
    Ok(Some(Entry::from_pointer(rel, &p)))
}

/// In a dry run, what will become of a dep that is missing now.
pub(crate) enum Later {
    /// An upstream stage would run and produce it.
    Run,
    /// An upstream stage would restore it as recorded.
    Restored(Entry),
}

/// What a stage would be recorded with now: its cmd, deps and params (outs come
/// after it runs).
pub(crate) fn inputs(
    repo: &Repo,
    stage: &Stage,
    produced_later: &dyn Fn(&str) -> Option<Later>,
    stat: &StatCache,
    counters: &Counters,
    known: &Known,
    params: &mut ParamsCache,
) -> Result<(StageLock, Option<String>)> {
    let mut now = StageLock {
        cmd: stage.cmd.clone(),
        ..Default::default()
    };
    let mut pending = None;
    for d in &stage.deps {
        match state_of(repo, d, Identify::HashOnly, stat, counters, known)? {
            Some(e) => now.deps.push(e),
            // A dry run meets deps an upstream stage has yet to produce or restore.
            None => match produced_later(d) {
                Some(Later::Restored(e)) => now.deps.push(e),
                Some(Later::Run) => {
                    pending = Some(format!("dep `{d}` is produced by an upstream stage that would run"))
                }
                None => {
                    return Err(PipelineError::MissingDep {
                        stage: stage.name.clone(),
                        dep: d.clone(),
                    }
                    .into());
                }
            },
        }
    }
    now.deps.sort_by(|a, b| a.path.cmp(&b.path));
    for p in &stage.params {
        let v = params.value(repo, &stage.name, &p.file, &p.key)?;
        now.params.entry(p.file.clone()).or_default().insert(p.key.clone(), v);
    }
    Ok((now, pending))
}

/// Why `now` (cmd, deps, params) differs from `locked`: the first difference
/// found, or `None` if they match.
pub(crate) fn inputs_changed(now: &StageLock, locked: &StageLock) -> Option<String> {
    if locked.deps != now.deps {
        let changed = now
            .deps
            .iter()
            .find(|d| !locked.deps.contains(d))
            .map(|d| d.path.clone())
            .or_else(|| {
                locked
                    .deps
                    .iter()
                    .find(|d| !now.deps.contains(d))
                    .map(|d| d.path.clone())
            })
            .unwrap_or_default();
        return Some(format!("dep `{changed}` changed"));
    }
    if !crate::pipeline::lock::same_params(&locked.params, &now.params) {
        let mut which = String::new();
        for (file, vals) in &now.params {
            for (k, v) in vals {
                let before = locked.params.get(file).and_then(|m| m.get(k));
                if !before.is_some_and(|b| crate::pipeline::lock::same_value(b, v)) {
                    which = format!("param `{}` changed", crate::pipeline::param_name(file, k));
                }
            }
        }
        if which.is_empty() {
            which = "its params changed".into();
        }
        return Some(which);
    }
    // After params: a value put into the command from the params file changes
    // both, and the param is the better answer.
    if locked.cmd != now.cmd {
        return Some("its command changed".into());
    }
    None
}

/// Why a stage must run, comparing `now` (cmd, deps, params) and the workspace's
/// outs with `locked`; `None` if it need not. Also returns the outs that are only
/// missing and can be restored from the cache.
#[allow(clippy::too_many_arguments)]
fn decide(
    repo: &Repo,
    stage: &Stage,
    now: &StageLock,
    locked: Option<&StageLock>,
    stat: &StatCache,
    counters: &Counters,
    known: &Known,
    allow_missing: bool,
) -> Result<(Option<String>, Vec<Entry>)> {
    let Some(locked) = locked else {
        return Ok((Some(NEVER_RAN.into()), vec![]));
    };
    if let Some(why) = inputs_changed(now, locked) {
        return Ok((Some(why), vec![]));
    }
    let mut recorded: Vec<&str> = locked.outs.iter().map(|o| o.path.as_str()).collect();
    recorded.sort_unstable();
    let mut declared: Vec<&str> = stage.outs.iter().map(|o| o.path.as_str()).collect();
    declared.sort_unstable();
    if recorded != declared {
        return Ok((Some("its outs changed in `dvt.toml`".into()), vec![]));
    }
    let mut restore = Vec::new();
    for out in &stage.outs {
        let Some(rec) = locked.outs.iter().find(|o| o.path == out.path) else {
            continue;
        };
        match state_of(repo, &out.path, Identify::HashOnly, stat, counters, known)? {
            Some(cur) if cur.id == rec.id => {}
            Some(_) => return Ok((Some(format!("out `{}` changed", out.path)), vec![])),
            None if out.cache && objects_cached(repo, rec)? => restore.push(rec.clone()),
            None if allow_missing => {}
            None => return Ok((Some(format!("out `{}` is missing", out.path)), vec![])),
        }
    }
    Ok((None, restore))
}

/// The reason of a skipped stage whose outs the cache lacked, and `repro` stored.
pub const OUTS_STORED: &str = "its outs were not in the cache: stored from the workspace";

/// For a stage that did not change, whose outs the workspace holds as
/// `dvt.lock` records them: stores them if the cache lacks them (a `gc` while
/// another `dvt.lock` was checked out, a run with `--no-commit`), so that
/// `push` and a later restore find them; and writes the stage's run-cache
/// entry if there is none (a fresh clone, an entry `gc` deleted), so that
/// coming back to these inputs later restores rather than runs. Not for a
/// frozen stage's entry: its deps were not looked at. Whether it stored outs.
#[allow(clippy::too_many_arguments)]
fn cache_unchanged_stage(
    repo: &Repo,
    stage: &Stage,
    now: &StageLock,
    locked: Option<&StageLock>,
    frozen: bool,
    stat: &StatCache,
    counters: &Counters,
) -> Result<bool> {
    let Some(locked) = locked else {
        return Ok(false);
    };
    let mut lacking = false;
    for rec in &locked.outs {
        if !stage.outs.iter().any(|o| o.path == rec.path && o.cache) || objects_cached(repo, rec)? {
            continue;
        }
        // Missing from the workspace too (with `allow_missing`): nothing to store.
        if fs_err::symlink_metadata(repo.root().join(&rec.path)).is_err() {
            return Ok(false);
        }
        lacking = true;
    }
    let key = run_cache::key(stage, now).filter(|_| !frozen);
    let unrecorded = key.as_ref().is_some_and(|k| !run_cache::has(repo.cache().root(), k));
    if !lacking && !unrecorded {
        return Ok(false);
    }
    let storing = match key {
        Some(_) => Storing::All,
        None => Storing::Cached,
    };
    let done = record_outs(repo, stage, now, storing, stat, counters)?;
    let same = |e: &Entry| (e.path.clone(), e.id);
    if let Some(k) = key
        && done.outs.iter().map(same).eq(locked.outs.iter().map(same))
    {
        // Only a cache of work, as after a run.
        let _ = run_cache::save(repo.cache().root(), &k, &done);
    }
    Ok(lacking)
}

/// A frozen stage's cmd (as it is now), deps and params (as `dvt.lock` records
/// them, unchecked).
pub(crate) fn as_recorded(stage: &Stage, locked: Option<&StageLock>) -> StageLock {
    StageLock {
        cmd: stage.cmd.clone(),
        deps: locked.map(|l| l.deps.clone()).unwrap_or_default(),
        params: locked.map(|l| l.params.clone()).unwrap_or_default(),
        outs: Vec::new(),
    }
}

/// Whether the cache holds every object of a recorded out.
pub(crate) fn objects_cached(repo: &Repo, e: &Entry) -> Result<bool> {
    let cache = repo.cache();
    if !cache.contains(&e.id) {
        return Ok(false);
    }
    if e.kind == Kind::File || cache.known_complete(&e.id) {
        return Ok(true);
    }
    let m = crate::manifest::Manifest::parse(&cache.read(&e.id, Some(&e.path))?, &e.id)?;
    let ids: Vec<_> = m.files.iter().map(|f| f.id).collect();
    Ok(cache.missing_for_manifest(&e.id, &ids)?.is_empty())
}

/// Recorded outs as tracked paths (all cached), for checkout and transfers.
pub(crate) fn as_tracked(repo: &Repo, entries: &[Entry]) -> Vec<Tracked> {
    let mut lock = Lock::default();
    lock.stages.insert(
        String::new(),
        StageLock {
            outs: entries.to_vec(),
            ..Default::default()
        },
    );
    lock.tracked(repo, &|_, _| true)
}

/// Runs the stages of `dvt.toml` that need it. A failed command stops the run;
/// stages finished before it keep their new `dvt.lock` entries.
pub fn repro(repo: &Repo, opts: &ReproOptions, on_run: OnRun<'_>, progress: &dyn Progress) -> Result<ReproReport> {
    repro_knowing(repo, opts, &Known::new(), on_run, progress)
}

/// Paths (repo-relative) whose entry the caller has just found to be as
/// recorded, so that a dry run need not walk them again (`dvt status` has
/// compared every out with `dvt.lock` before it asks which stages are stale).
pub(crate) type Known = std::collections::HashMap<String, Entry>;

/// [`repro`], taking `known` entries as they are in a dry run.
pub(crate) fn repro_knowing(
    repo: &Repo,
    opts: &ReproOptions,
    known: &Known,
    on_run: OnRun<'_>,
    progress: &dyn Progress,
) -> Result<ReproReport> {
    // A stage that runs changes what it produces: only a dry run may trust them.
    let none = Known::new();
    let known = if opts.dry_run { known } else { &none };
    let pipeline = Pipeline::load_required(repo)?;
    crate::pipeline::check_outs_untracked(repo, &pipeline)?;
    let mut named = match opts.glob {
        true => pipeline.stages_matching(&opts.targets)?,
        false => pipeline.stage_names(&opts.targets)?,
    };
    if opts.whole_pipeline && !named.is_empty() {
        named = pipeline.connected(&named);
    }
    let mut selected = pipeline.select(&named, opts.downstream)?;
    if opts.single_item && !named.is_empty() {
        selected.retain(|s| named.contains(s));
    }
    if !opts.dry_run {
        // Before any command runs: git would go on committing a cached out it
        // tracks, whatever `.gitignore` says (as `stage add` and DVC refuse it).
        let cached = selected
            .iter()
            .flat_map(|name| pipeline.stages[name].outs.iter().filter(|o| o.cache))
            .map(|o| o.path.as_str());
        crate::ops::add::refuse_git_tracked(repo, cached)?;
    }
    let mut report = ReproReport::default();
    if opts.pull && !opts.dry_run {
        // Before taking the lock: fetch takes it too.
        let fetch = crate::ops::TransferOptions {
            targets: selected.iter().map(std::path::PathBuf::from).collect(),
            cwd: repo.root().to_path_buf(),
            remote: opts.remote.clone(),
            jobs: None,
            revisions: Default::default(),
            run_cache: false,
            revisions_only: false,
            allow_missing: false,
            only: Default::default(),
        };
        match crate::ops::fetch(repo, &fetch, progress) {
            Ok(r) => report.pulled = r.downloaded,
            Err(e) => report.pull_error = Some(crate::error_chain(&e)),
        }
    }
    // A dry run writes nothing (but the stat cache), so `dvt status` can run it
    // beside a writing command.
    let _lock = match opts.dry_run {
        true => None,
        false => Some(repo.lock("dvt repro")?),
    };
    let mut lock = Lock::load(repo)?;
    lock.version = crate::pipeline::lock::LOCK_VERSION;
    let stat = repo.stat_cache();
    let counters = Counters::default();
    let mut params = ParamsCache::default();
    let mut will_run: Vec<&Stage> = Vec::new();
    let mut will_restore: Vec<Entry> = Vec::new();
    let commit = crate::git::Git::open(repo.root())
        .ok()
        .and_then(|g| g.head().ok().flatten())
        .map(|c| c.to_string())
        .unwrap_or_default();
    let runs_from = opts
        .pull
        .then(|| crate::ops::transfer::RunSource::new(repo, opts.remote.as_deref()));
    // Stages that failed, and with `keep_going` those not run because of them.
    let mut broken: Vec<String> = Vec::new();
    // Stages that ran (or had a run restored), for `force_downstream`.
    let mut ran: Vec<String> = Vec::new();
    for name in &selected {
        let stage = &pipeline.stages[name];
        // A frozen stage does not look upstream, so nothing there stops it.
        if !opts.ignore_errors
            && (!stage.frozen || opts.force)
            && let Some(up) = broken.iter().find(|b| pipeline.upstream[name].contains(*b))
        {
            report.stages.push(StageResult {
                stage: name.clone(),
                action: Action::NotRun,
                reason: Some(format!("stage `{up}`, which it depends on, did not run through")),
                frozen: stage.frozen,
            });
            broken.push(name.clone());
            continue;
        }
        // In a dry run, an upstream stage that would run may change anything below.
        let produced_later = |d: &str| -> Option<Later> {
            if let Some(e) = will_restore.iter().find(|e| e.path == d) {
                return Some(Later::Restored(e.clone()));
            }
            if will_run
                .iter()
                .any(|s| s.outs.iter().any(|o| crate::pipeline::overlaps(&o.path, d)))
            {
                return Some(Later::Run);
            }
            // A dep that is gone counts as recorded.
            let recorded = lock.stages.get(name).and_then(|l| l.deps.iter().find(|e| e.path == d));
            recorded
                .filter(|_| opts.allow_missing)
                .map(|e| Later::Restored(e.clone()))
        };
        let locked = lock.stages.get(name);
        // A frozen stage's deps and params are not looked at, nor what runs upstream.
        let frozen = stage.frozen && !opts.force;
        let (mut now, pending) = match frozen {
            true => (as_recorded(stage, locked), None),
            false => match inputs(repo, stage, &produced_later, &stat, &counters, known, &mut params) {
                Ok(found) => found,
                // A dep that a failed stage did not make, under `ignore_errors`.
                Err(e) if goes_on(opts, &e) => {
                    report.stages.push(StageResult::failed(stage, &e));
                    broken.push(name.clone());
                    continue;
                }
                Err(e) => return Err(e),
            },
        };
        let upstream_runs = !frozen && will_run.iter().any(|s| pipeline.upstream[name].contains(&s.name));
        // With `force_downstream`, the stage upstream that ran: this one runs too,
        // not restored from the run cache (the point is to run it again).
        let forced_by = ran
            .iter()
            .find(|r| opts.force_downstream && !frozen && pipeline.upstream[name].contains(*r));
        let (mut reason, restore) = if opts.force {
            (Some("forced".to_string()), vec![])
        } else if let Some(p) = pending {
            // A stage that never ran says so, whatever its deps wait for.
            let why = match locked {
                None => "it has never run".to_string(),
                Some(_) => p,
            };
            (Some(why), vec![])
        } else if stage.always_changed && !frozen {
            (Some("it always runs (`always_changed = true`)".to_string()), vec![])
        } else if opts.dry_run && upstream_runs && locked.is_some() {
            // (A stage that never ran says so instead.)
            (Some("an upstream stage would run".to_string()), vec![])
        } else if let Some(up) = forced_by {
            (
                Some(format!("stage `{up}`, which it depends on, ran (`--force-downstream`)")),
                vec![],
            )
        } else {
            decide(repo, stage, &now, locked, &stat, &counters, known, opts.allow_missing)?
        };
        let mut stored = false;
        let action = match (&reason, restore.is_empty(), opts.dry_run) {
            (None, true, dry) => {
                stored = !dry
                    && !opts.no_commit
                    && cache_unchanged_stage(repo, stage, &now, locked, frozen, &stat, &counters)?;
                Action::Skipped
            }
            (None, false, true) => {
                will_restore.extend(restore.iter().cloned());
                Action::WouldRestore
            }
            (None, false, false) => {
                crate::ops::checkout::checkout_tracked(repo, as_tracked(repo, &restore), false, progress)?;
                if !opts.no_commit {
                    cache_unchanged_stage(repo, stage, &now, locked, frozen, &stat, &counters)?;
                }
                Action::Restored
            }
            (Some(_), _, true) => {
                will_run.push(stage);
                Action::WouldRun
            }
            (Some(why), _, false) => {
                if frozen {
                    // It runs all the same: record what it ran with.
                    now = inputs(repo, stage, &produced_later, &stat, &counters, known, &mut params)?.0;
                }
                // Runs are cached only when their outs are stored.
                let key = match opts.no_commit {
                    true => None,
                    false => run_cache::key(stage, &now),
                };
                let failed_before = runs_from.as_ref().is_some_and(crate::ops::transfer::RunSource::failed);
                let earlier = match &key {
                    Some(k) if !opts.force && !opts.no_run_cache && forced_by.is_none() => {
                        restore_run(repo, stage, k, &now, runs_from.as_ref(), progress)?
                    }
                    _ => None,
                };
                let (done, action) = match earlier {
                    Some(done) => (done, Action::RestoredFromRunCache),
                    None => {
                        // Said as the first stage runs for it: a later failure must not hide it.
                        match runs_from.as_ref().filter(|_| !failed_before).and_then(|r| r.failure()) {
                            Some(e) => on_run(
                                stage,
                                &format!(
                                    "{why}; the remote's run cache could not be read, so this and later stages it may hold run: {e}"
                                ),
                            )?,
                            _ => on_run(stage, why)?,
                        }
                        if let Err(e) = run_stage(repo, stage, &now, &commit, opts) {
                            if !goes_on(opts, &e) {
                                return Err(e);
                            }
                            report.stages.push(StageResult::failed(stage, &e));
                            broken.push(name.clone());
                            continue;
                        }
                        let storing = match (opts.no_commit, &key) {
                            (true, _) => Storing::Nothing,
                            // Uncached outs (metrics) too, for the run cache to restore.
                            (false, Some(_)) => Storing::All,
                            (false, None) => Storing::Cached,
                        };
                        let done = record_outs(repo, stage, &now, storing, &stat, &counters)?;
                        if let Some(k) = &key {
                            // Only a cache of work: failing to write it must not lose
                            // the run, which `dvt.lock` records next.
                            let _ = run_cache::save(repo.cache().root(), k, &done);
                        }
                        (done, Action::Ran)
                    }
                };
                lock.stages.insert(name.clone(), done);
                report.forgotten.extend(lock.forget_removed(repo, &pipeline));
                lock.save(repo)?;
                let _ = stat.save();
                action
            }
        };
        if matches!(action, Action::Ran | Action::RestoredFromRunCache) {
            ran.push(name.clone());
        }
        if stored {
            reason = Some(OUTS_STORED.into());
        }
        report.stages.push(StageResult {
            stage: name.clone(),
            action,
            reason,
            frozen: stage.frozen,
        });
    }
    let _ = stat.save();
    report.hashed_files = counters.hashed_files.into_inner();
    report.run_cache_error = runs_from.and_then(|r| r.failure());
    Ok(report)
}

/// Whether the run goes on past error `e` of one stage: with `keep_going` or
/// `ignore_errors`, when it is about the stage (its command failed, a dep is
/// missing), not about the repository or the disk.
fn goes_on(opts: &ReproOptions, e: &crate::Error) -> bool {
    (opts.keep_going || opts.ignore_errors) && matches!(e, crate::Error::Pipeline(_))
}

/// Which outs [`record_outs`] stores in the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Storing {
    /// None (`--no-commit`): they are hashed only.
    Nothing,
    /// Those the stage caches.
    Cached,
    /// Every one, uncached ones (metrics) too, for the run cache.
    All,
}

/// Whether the objects of every out of a run-cache entry are in the cache.
pub(crate) fn outs_cached(repo: &Repo, done: &StageLock) -> Result<bool> {
    for e in &done.outs {
        if !objects_cached(repo, e)? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// If the run cache holds an earlier run `key` of `stage` with `now` (cmd,
/// deps, params), and the cache every object of its outs: puts those outs in
/// place of the workspace's (as running the stage would) and returns that
/// run's lock entry. With `pull`, a run this cache cannot restore is looked
/// for on that remote (see [`crate::ops::transfer::RunSource`]).
fn restore_run(
    repo: &Repo,
    stage: &Stage,
    key: &str,
    now: &StageLock,
    pull: Option<&crate::ops::transfer::RunSource>,
    progress: &dyn Progress,
) -> Result<Option<StageLock>> {
    let usable = |done: &StageLock| -> Result<bool> {
        let mut recorded: Vec<&str> = done.outs.iter().map(|o| o.path.as_str()).collect();
        recorded.sort_unstable();
        let mut declared: Vec<&str> = stage.outs.iter().map(|o| o.path.as_str()).collect();
        declared.sort_unstable();
        Ok(recorded == declared && outs_cached(repo, done)?)
    };
    let mut done = run_cache::find(repo.cache().root(), key, now);
    if let Some(source) = pull
        && !done.as_ref().map_or(Ok(false), &usable)?
        && source.pull(key, progress)
    {
        done = run_cache::find(repo.cache().root(), key, now);
    }
    let Some(done) = done else {
        return Ok(None);
    };
    if !usable(&done)? {
        return Ok(None);
    }
    remove_outs(repo, stage)?;
    crate::ops::checkout::checkout_tracked(repo, as_tracked(repo, &done.outs), false, progress)?;
    for out in stage.outs.iter().filter(|o| o.cache) {
        ignore_out(repo, &out.path)?;
    }
    Ok(Some(done))
}

/// Adds a cached out to the `.gitignore` beside it.
fn ignore_out(repo: &Repo, path: &str) -> Result<()> {
    let abs = repo.root().join(path);
    let name = path.rsplit('/').next().unwrap_or(path);
    crate::gitignore::add(abs.parent().unwrap_or(repo.root()), name)?;
    Ok(())
}

/// Deletes a stage's outs before it runs, but those it keeps (`persist`).
fn remove_outs(repo: &Repo, stage: &Stage) -> Result<()> {
    for out in stage.outs.iter().filter(|o| !o.persist) {
        let abs = repo.root().join(&out.path);
        match fs_err::symlink_metadata(&abs) {
            Ok(m) if m.is_dir() => fs_err::remove_dir_all(&abs)?,
            Ok(_) => fs_err::remove_file(&abs)?,
            Err(_) => {}
        }
    }
    Ok(())
}

/// The lock entry of a stage that has produced its outs: `now` (cmd, deps,
/// params) with each out as it is. Outs are stored as `storing` says; cached
/// ones are git-ignored. A missing out is an error; nothing is recorded then.
pub(crate) fn record_outs(
    repo: &Repo,
    stage: &Stage,
    now: &StageLock,
    storing: Storing,
    stat: &StatCache,
    counters: &Counters,
) -> Result<StageLock> {
    let mut done = now.clone();
    let packing = repo.cache().begin_packing();
    let mut complete = Vec::new();
    for out in &stage.outs {
        let store = match storing {
            Storing::Nothing => false,
            Storing::Cached => out.cache,
            Storing::All => true,
        };
        let how = if store {
            Identify::Store(repo.cache())
        } else {
            Identify::HashOnly
        };
        let e = state_of(repo, &out.path, how, stat, counters, &Known::new())?.ok_or_else(|| {
            PipelineError::OutMissing {
                stage: stage.name.clone(),
                out: out.path.clone(),
            }
        })?;
        if e.kind == Kind::Dir && store {
            complete.push(e.id);
        }
        if out.cache {
            ignore_out(repo, &out.path)?;
        }
        done.outs.push(e);
    }
    packing.finish()?;
    for id in &complete {
        repo.cache().mark_complete(id);
    }
    done.outs.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(done)
}

/// Runs a stage's command with `sh -c` in its working directory, after deleting
/// its outs (unless `persist`). Its environment says what it runs with.
fn run_stage(repo: &Repo, stage: &Stage, now: &StageLock, commit: &str, opts: &ReproOptions) -> Result<()> {
    remove_outs(repo, stage)?;
    let deps: BTreeMap<&str, String> = now.deps.iter().map(|d| (d.path.as_str(), d.id.to_string())).collect();
    let mut params = serde_json::Map::new();
    for (file, vals) in &now.params {
        for (k, v) in vals {
            let json = serde_json::to_value(v).unwrap_or(serde_json::Value::Null);
            params.insert(crate::pipeline::param_name(file, k), json);
        }
    }
    let wdir = repo.root().join(Path::new(&stage.wdir));
    let failed = |status: String| PipelineError::StageFailed {
        stage: stage.name.clone(),
        cmd: stage.cmd.clone(),
        status,
    };
    let mut command = Command::new("sh");
    if let Some(log) = &opts.log {
        let file = fs_err::OpenOptions::new().create(true).append(true).open(log)?;
        command.stdout(file.file().try_clone()?).stderr(file.into_parts().0);
    }
    command
        .arg("-c")
        .arg(&stage.cmd)
        .current_dir(&wdir)
        .env("DVT_STAGE", &stage.name)
        .env("DVT_ROOT", repo.root())
        .env("DVT_COMMIT", commit)
        .env("DVT_DEPS", serde_json::to_string(&deps).unwrap_or_default())
        .env("DVT_PARAMS", serde_json::Value::Object(params).to_string());
    if !wdir.is_dir() {
        let why = format!(
            "could not start: its `wdir` `{}` is not a directory in the workspace",
            stage.wdir
        );
        return Err(failed(why).into());
    }
    let could_not_start = |e: std::io::Error| failed(format!("could not start: {e}"));
    let status = match &opts.group {
        None => crate::process::spawn(&mut command)
            .and_then(|mut child| child.wait())
            .map_err(could_not_start)?,
        Some(group_file) => {
            let kill = kill_request(group_file);
            if kill.exists() {
                return Err(failed("was not started: `dvt queue kill` stopped the experiment".into()).into());
            }
            let group = crate::process::Group::spawn(&mut command).map_err(could_not_start)?;
            fs_err::write(group_file, format!("{}\n", group.id()))?;
            // `queue kill` writes its request before it reads the group file:
            // one of the two sees the other.
            if kill.exists() {
                let _ = crate::process::signal_group(group.id(), false);
            }
            let status = group.wait();
            let _ = fs_err::remove_file(group_file);
            let status = status.map_err(could_not_start)?;
            if !status.success() && kill.exists() {
                return Err(failed("was stopped by `dvt queue kill`".into()).into());
            }
            status
        }
    };
    if !status.success() {
        use std::os::unix::process::ExitStatusExt;
        let how = match (status.code(), status.signal()) {
            (Some(c), _) => format!("exited with code {c}"),
            (None, Some(n)) => format!("was killed by {}", crate::process::signal_name(n)),
            (None, None) => "was killed by a signal".to_string(),
        };
        return Err(failed(how).into());
    }
    Ok(())
}
