//! `dvt push`, `dvt fetch`, `dvt pull` and `dvt status --remote`: moving objects
//! between the cache and a remote.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use futures::StreamExt;
use rayon::prelude::*;
use rustc_hash::{FxHashMap, FxHashSet};
use serde::Serialize;

use crate::cache::Cache;
use crate::error::{CacheError, Error, RemoteError, Result};
use crate::manifest::Manifest;
use crate::object::ObjectId;
use crate::pointer::Kind;
use crate::progress::Progress;
use crate::remote::{Remote, Stop};
use crate::repo::Repo;
use crate::workspace::{Targets, Tracked, display_path, resolve_tracked};

/// What to push, fetch or pull, and where.
#[derive(Debug, Clone, Default)]
pub struct TransferOptions {
    /// Data paths or pointer files; empty means every pointer.
    pub targets: Vec<PathBuf>,
    /// The directory relative targets start from.
    pub cwd: PathBuf,
    /// The remote's name; `None` for the default.
    pub remote: Option<String>,
    /// Transfers at once; `None` for the remote's `jobs` or the default.
    pub jobs: Option<usize>,
    /// Also the data of these revisions (push, fetch, and pull, which checks
    /// out only the workspace's).
    pub revisions: crate::snapshot::Revisions,
    /// Also the run cache (push, fetch, pull): its entries, and the objects of
    /// their outs (see [`crate::pipeline::run_cache`]).
    pub run_cache: bool,
    /// Only the data of `revisions`, not the workspace's (push and fetch; as
    /// `dvt exp push`/`pull` move an experiment's data).
    pub revisions_only: bool,
    /// Fetch and pull: objects the remote does not have are listed in
    /// [`FetchReport::missing`] instead of failing the command, and a pull checks
    /// out the rest (as DVC's `--allow-missing`). Other failures still fail.
    pub allow_missing: bool,
    /// Fetch: only the targets' data that passes this filter.
    pub only: DataFilter,
}

/// Which of the targets' data a fetch takes (DVC's `fetch --max-size` and
/// `--type`); the default takes all.
#[derive(Debug, Clone, Default)]
pub struct DataFilter {
    /// Only tracked files and directories of at most this many bytes (a
    /// directory: all its files together).
    pub max_size: Option<u64>,
    /// Only metrics or plots files (of a stage, or the top-level `metrics` and
    /// `plots` of `dvt.toml`); empty: any data.
    pub kinds: Vec<DataKind>,
}

/// A kind of data [`DataFilter`] can keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataKind {
    /// Metrics files.
    Metrics,
    /// Plots files.
    Plots,
}

impl DataFilter {
    /// Whether it takes everything.
    fn is_all(&self) -> bool {
        self.max_size.is_none() && self.kinds.is_empty()
    }

    /// Keeps the part of `tracked` the filter takes; returns how many it left out.
    fn apply(&self, repo: &Repo, tracked: &mut Vec<Tracked>) -> Result<usize> {
        if self.is_all() {
            return Ok(0);
        }
        let mut of_kind: FxHashSet<String> = FxHashSet::default();
        if let Some(p) = crate::pipeline::Pipeline::load(repo)? {
            let wanted = |k: DataKind| self.kinds.contains(&k);
            for out in p.stages.values().flat_map(|s| &s.outs) {
                if (out.metric && wanted(DataKind::Metrics)) || (out.plot.is_some() && wanted(DataKind::Plots)) {
                    of_kind.insert(out.path.clone());
                }
            }
            if wanted(DataKind::Metrics) {
                of_kind.extend(p.metrics.iter().cloned());
            }
            if wanted(DataKind::Plots) {
                of_kind.extend(p.plots.iter().map(|(path, _)| path.clone()));
            }
        }
        let before = tracked.len();
        tracked.retain(|t| {
            self.max_size.is_none_or(|max| t.pointer.size <= max)
                && (self.kinds.is_empty() || of_kind.contains(&t.data_rel))
        });
        Ok(before - tracked.len())
    }
}

/// An object a pointer needs that is not where it should be.
#[derive(Debug, Clone, Serialize)]
pub struct MissingObject {
    /// The workspace path that needs it.
    pub path: String,
    /// The object.
    pub id: ObjectId,
}

/// What push did.
#[derive(Debug, Default, Serialize)]
pub struct PushReport {
    /// The remote's name.
    pub remote: String,
    /// Objects uploaded.
    pub uploaded: usize,
    /// Stored (compressed) bytes uploaded.
    pub uploaded_bytes: u64,
    /// Objects the remote already had.
    pub already_on_remote: usize,
    /// Objects not pushed because the cache lacks them and the remote does too.
    pub missing_from_cache: Vec<MissingObject>,
    /// With `run_cache`: what happened to the run cache's entries.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runs: Option<RunsReport>,
    /// Tracked paths left out because their pointer says `push = false`.
    #[serde(skip_serializing_if = "is_zero")]
    pub not_pushed: usize,
    /// Tracked paths left out because they were imported from a URL without
    /// being downloaded (`import-url --no-download`): the URL gives them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_downloaded: Vec<String>,
    /// What went to the other remotes that pointers name (`remote = "NAME"`),
    /// one report each; their `missing_from_cache` is counted in this one's.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub also: Vec<PushReport>,
    /// Pointer files (and `dvt.lock`s) of the revisions asked for that could not
    /// be read, each with why: their data was left out.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unreadable: Vec<String>,
}

/// What a transfer with `--run-cache` did with the run cache's entries.
#[derive(Debug, Default, Serialize)]
pub struct RunsReport {
    /// Entries copied.
    pub copied: usize,
    /// Entries the destination had already.
    pub already_there: usize,
    /// Entries left behind: push, those whose objects the cache lacks; fetch,
    /// those whose objects the remote lacks, or that are damaged.
    pub skipped: usize,
}

/// What fetch did.
#[derive(Debug, Default, Serialize)]
pub struct FetchReport {
    /// The remote's name.
    pub remote: String,
    /// Objects downloaded into the cache.
    pub downloaded: usize,
    /// Stored (compressed) bytes downloaded.
    pub downloaded_bytes: u64,
    /// Objects the cache already had.
    pub already_cached: usize,
    /// With `run_cache`: what happened to the run cache's entries.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runs: Option<RunsReport>,
    /// With `allow_missing`: the objects the remote does not have, and the paths
    /// that need them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<MissingObject>,
    /// Imports (data paths) whose objects the remote lacked and that came from
    /// where they were imported: the dvt repository, or the URL.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub from_sources: Vec<String>,
    /// Tracked files and directories of the targets that [`TransferOptions::only`]
    /// left out.
    #[serde(skip_serializing_if = "is_zero")]
    pub left_out: usize,
    /// What came from the other remotes that pointers name (`remote = "NAME"`),
    /// one report each; their `missing` and `from_sources` are counted in this one's.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub also: Vec<FetchReport>,
    /// Pointer files (and `dvt.lock`s) of the revisions asked for that could not
    /// be read, each with why: their data was left out.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unreadable: Vec<String>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Orders transfers so that consecutive ones land in different object directories
/// (`objects/xx/`): concurrent file creations in one directory serialize on its lock.
fn spread(ids: &mut [ObjectId]) {
    ids.sort_unstable_by_key(|id| {
        let b = id.as_bytes();
        (b[1], b[0])
    });
}

/// The data of the targets, and of their versions in `opts.revisions`; with the
/// pointers of those revisions that could not be read (see [`Revisions::tracked`]).
///
/// [`Revisions::tracked`]: crate::snapshot::Revisions::tracked
fn load_all(repo: &Repo, opts: &TransferOptions) -> Result<(Vec<Tracked>, Vec<String>)> {
    let mut all = Vec::new();
    if !opts.revisions_only {
        let (pointers, outs) = resolve_tracked(repo, &opts.cwd, Targets::given(&opts.targets))?;
        all = pointers
            .iter()
            .map(|p| Tracked::load(repo, p))
            .collect::<Result<Vec<_>>>()?;
        // `dvt.toml` says where outs go (`remote`, `push`): it must be readable
        // for their data to move (its outs are read leniently elsewhere).
        if !outs.is_empty() {
            crate::pipeline::Pipeline::load(repo)?;
        }
        all.extend(outs);
    }
    let (old, unreadable) = opts.revisions.tracked(repo)?;
    if !old.is_empty() {
        let wanted: Vec<String> = opts
            .targets
            .iter()
            .map(|t| repo.resolve(&opts.cwd, t).map(|(_, rel)| rel))
            .collect::<Result<_>>()?;
        let mut seen: rustc_hash::FxHashSet<(String, ObjectId)> =
            all.iter().map(|t| (t.data_rel.clone(), t.pointer.id)).collect();
        for t in old {
            let named = wanted.is_empty()
                || wanted
                    .iter()
                    .any(|w| *w == t.data_rel || *w == t.pointer_rel || crate::pipeline::overlaps(w, &t.data_rel));
            if named && seen.insert((t.data_rel.clone(), t.pointer.id)) {
                all.push(t);
            }
        }
    }
    Ok((all, unreadable))
}

/// One remote's share of a transfer: its name (`None`: the default, which
/// may not be configured) and the data that goes to it or comes from it.
type Share = (Option<String>, Vec<Tracked>);

/// `tracked` by the remote each goes to or comes from, as DVC's per-output
/// `remote`: data whose pointer says `remote = "NAME"` goes to NAME, the rest
/// to the remote asked for (`-r`) or else the default, whose share comes
/// first. With `-r`, data whose pointer names another remote is left out (as
/// DVC leaves it). Never empty; the first share may hold no data, and is left
/// out only when others hold it all.
fn by_remote(repo: &Repo, opts: &TransferOptions, tracked: Vec<Tracked>) -> Result<Vec<Share>> {
    use crate::remote::config;
    let first = match &opts.remote {
        Some(asked) => Some(asked.clone()),
        None => config::choose(repo.config(), None).ok(),
    };
    let mut shares: Vec<Share> = vec![(first.clone(), Vec::new())];
    for t in tracked {
        let to = match (&opts.remote, &t.pointer.remote) {
            (_, None) => first.clone(),
            (Some(asked), Some(own)) if asked != own => continue,
            (_, Some(own)) if !repo.config().remote.contains_key(own) => {
                return Err(RemoteError::NamedByPointer {
                    pointer: match t.pointer_rel == crate::pipeline::LOCK_FILE {
                        true => format!("`{}` (out `{}`)", crate::pipeline::PIPELINE_FILE, t.data_rel),
                        false => format!("`{}`", t.pointer_rel),
                    },
                    name: own.clone(),
                    known: config::names(repo.config()),
                }
                .into());
            }
            (_, Some(own)) => Some(own.clone()),
        };
        match shares.iter_mut().find(|(name, _)| *name == to) {
            Some((_, share)) => share.push(t),
            None => shares.push((to, vec![t])),
        }
    }
    if shares.len() > 1 && shares[0].1.is_empty() {
        shares.remove(0);
    }
    Ok(shares)
}

/// A file object a target needs.
struct Need {
    id: ObjectId,
    /// The workspace path that needs it.
    path: String,
    size: u64,
}

/// The file objects a tracked directory needs, given its manifest `m`: all of its
/// files, or those of the part a target named ([`Tracked::within`]).
fn files_needed(t: &Tracked, m: Manifest) -> Result<Vec<Need>> {
    let sel = t.select(Some(m))?;
    let part = sel.tracked;
    Ok(match sel.manifest {
        Some(m) => m
            .files
            .into_iter()
            .map(|e| Need {
                id: e.id,
                path: display_path(&part.data_rel, &e.path),
                size: e.size,
            })
            .collect(),
        None => vec![Need {
            id: part.pointer.id,
            path: part.data_rel,
            size: part.pointer.size,
        }],
    })
}

/// Counts finished transfers for the progress display.
struct Meter<'a> {
    progress: &'a dyn Progress,
    label: &'static str,
    done: AtomicUsize,
    total: usize,
}

impl Meter<'_> {
    fn object_done(&self) {
        let n = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        self.progress
            .message(&format!("{} {n}/{} objects", self.label, self.total));
    }
}

/// Uploads every object the targets need that the remote lacks: files first,
/// then each directory's manifest once all of its files are there. A remote that
/// has a manifest therefore has all of that directory's files, which lets a push
/// with nothing to do ask one question per directory.
///
/// With `run_cache`, also each run-cache entry whose objects the cache holds,
/// after those objects (an entry on a remote can be trusted to have its data there).
pub fn push(repo: &Repo, opts: &TransferOptions, progress: &dyn Progress) -> Result<PushReport> {
    let (mut tracked, unreadable) = load_all(repo, opts)?;
    let mut not_pushed: Vec<&str> = tracked
        .iter()
        .filter(|t| !t.pointer.push)
        .map(|t| t.data_rel.as_str())
        .collect();
    not_pushed.sort_unstable();
    not_pushed.dedup();
    let not_pushed = not_pushed.len();
    tracked.retain(|t| t.pointer.push);
    // Imported from a URL without downloading it (`--no-download`): nothing to
    // send, and the URL gives it to a pull.
    let cache = repo.cache();
    let mut not_downloaded: Vec<String> = tracked
        .iter()
        .filter(|t| crate::snapshot::url_import_not_here(t, cache))
        .map(|t| t.data_rel.clone())
        .collect();
    not_downloaded.sort_unstable();
    not_downloaded.dedup();
    tracked.retain(|t| !not_downloaded.contains(&t.data_rel));
    let mut reports = Vec::new();
    for (i, (name, tracked)) in by_remote(repo, opts, tracked)?.into_iter().enumerate() {
        // The run cache goes with the first share: the remote asked for, or the default.
        reports.push(push_share(repo, opts, name.as_deref(), tracked, i == 0, progress)?);
    }
    let mut report = reports.remove(0);
    for other in &mut reports {
        report.missing_from_cache.append(&mut other.missing_from_cache);
    }
    report.also = reports;
    report.not_pushed = not_pushed;
    report.not_downloaded = not_downloaded;
    report.unreadable = unreadable;
    Ok(report)
}

/// [`push`] of one remote's share.
fn push_share(
    repo: &Repo,
    opts: &TransferOptions,
    name: Option<&str>,
    mut tracked: Vec<Tracked>,
    with_runs: bool,
    progress: &dyn Progress,
) -> Result<PushReport> {
    let remote = Remote::open(repo, name, opts.jobs, true)?;
    let mut runs = None;
    if opts.run_cache && with_runs {
        let mut report = RunsReport::default();
        let mut complete = Vec::new();
        for (key, done) in crate::pipeline::run_cache::entries(repo.cache().root()) {
            match crate::ops::repro::outs_cached(repo, &done)? {
                true => complete.push((key, done)),
                false => report.skipped += 1,
            }
        }
        let outs = run_outs(repo, &tracked, complete.iter().map(|(_, d)| d));
        tracked.extend(outs);
        runs = Some((report, complete));
    }
    let pushed = remote.block_on(async {
        let mut report = push_async(repo, &remote, &tracked, progress).await?;
        if let Some((mut done, entries)) = runs {
            let there: FxHashSet<String> = remote.run_keys().await?.into_iter().collect();
            for (key, lock) in entries {
                if there.contains(&key) {
                    done.already_there += 1;
                    continue;
                }
                let text = toml::to_string(&lock).map_err(|e| std::io::Error::other(e.to_string()))?;
                remote.put_run(&key, text).await?;
                done.copied += 1;
            }
            report.runs = Some(done);
        }
        Ok(report)
    });
    pushed.map_err(|e| remote.full_disk(e))
}

/// The outs of run-cache entries `runs` that `tracked` does not hold whole (a
/// part of a directory does not move its manifest), each once.
fn run_outs<'a>(
    repo: &Repo,
    tracked: &[Tracked],
    runs: impl Iterator<Item = &'a crate::pipeline::lock::StageLock>,
) -> Vec<Tracked> {
    let mut seen: FxHashSet<ObjectId> = tracked
        .iter()
        .filter(|t| t.within.is_none())
        .map(|t| t.pointer.id)
        .collect();
    let mut outs = Vec::new();
    for done in runs {
        for t in crate::ops::repro::as_tracked(repo, &done.outs) {
            if seen.insert(t.pointer.id) {
                outs.push(t);
            }
        }
    }
    outs
}

/// The run-cache entries on the remote that the cache lacks, read, and what
/// became of the others: those whose outs' objects the remote lacks (a manifest
/// there stands for its files, see [`push`]) or that are damaged are skipped.
async fn remote_runs(
    repo: &Repo,
    remote: &Remote,
) -> Result<(Vec<(String, crate::pipeline::lock::StageLock)>, RunsReport)> {
    use crate::pipeline::run_cache;
    let mut report = RunsReport::default();
    let local: FxHashSet<String> = run_cache::entries(repo.cache().root())
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    let (there, new): (Vec<String>, Vec<String>) =
        remote.run_keys().await?.into_iter().partition(|k| local.contains(k));
    report.already_there = there.len();
    let mut entries = Vec::new();
    for (key, text) in remote.get_runs(new).await? {
        match text.as_deref().and_then(run_cache::parse) {
            Some(done) => entries.push((key, done)),
            None => report.skipped += 1,
        }
    }
    let ids: Vec<ObjectId> = entries.iter().flat_map(|(_, d)| d.outs.iter().map(|o| o.id)).collect();
    let there = match ids.is_empty() {
        true => FxHashSet::default(),
        false => remote.present(&ids, &|_| {}).await?,
    };
    entries.retain(|(_, d)| {
        let complete = d.outs.iter().all(|o| there.contains(&o.id));
        report.skipped += usize::from(!complete);
        complete
    });
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    Ok((entries, report))
}

/// Where `repro --pull` looks for runs that this cache cannot restore: a
/// remote's run cache. The remote is opened when the first stage needs it; once
/// it fails (not a missing entry or object: a remote that is down, refused
/// credentials), no later stage asks it again, and [`RunSource::failure`] says why.
pub(crate) struct RunSource<'a> {
    repo: &'a Repo,
    name: Option<&'a str>,
    state: std::cell::RefCell<SourceState>,
}

/// Where a [`RunSource`] stands with its remote.
enum SourceState {
    /// Not needed yet.
    Unopened,
    /// Open and answering.
    Open(Box<Remote>),
    /// Failed, and why: it is asked no more.
    Failed(String),
}

impl<'a> RunSource<'a> {
    /// Runs from remote `name` (`None`: the default remote).
    pub(crate) fn new(repo: &'a Repo, name: Option<&'a str>) -> Self {
        RunSource {
            repo,
            name,
            state: std::cell::RefCell::new(SourceState::Unopened),
        }
    }

    /// With the repository lock held: run `key`'s entry, and the objects of its
    /// outs, into the cache. Whether it got both; if not, the stage runs.
    pub(crate) fn pull(&self, key: &str, progress: &dyn Progress) -> bool {
        let mut state = self.state.borrow_mut();
        if matches!(*state, SourceState::Unopened) {
            *state = match Remote::open(self.repo, self.name, None, false) {
                Ok(remote) => SourceState::Open(Box::new(remote)),
                Err(e) => SourceState::Failed(crate::error_chain(&e)),
            };
        }
        let SourceState::Open(remote) = &*state else {
            return false;
        };
        match remote.block_on(self.pull_from(remote, key, progress)) {
            Ok(pulled) => pulled,
            Err(e) => {
                *state = SourceState::Failed(crate::error_chain(&e));
                false
            }
        }
    }

    /// [`RunSource::pull`] from an open `remote`: an error is the remote's
    /// failure; an entry it lacks, or whose objects it lacks or holds damaged,
    /// is that entry's problem (`Ok(false)`).
    async fn pull_from(&self, remote: &Remote, key: &str, progress: &dyn Progress) -> Result<bool> {
        use crate::pipeline::run_cache;
        let Some(done) = remote.get_run(key).await?.and_then(|t| run_cache::parse(&t)) else {
            return Ok(false);
        };
        let outs = crate::ops::repro::as_tracked(self.repo, &done.outs);
        match fetch_async(self.repo, remote, &[], &outs, false, progress).await {
            Ok(_) => Ok(run_cache::save(self.repo.cache().root(), key, &done).is_ok()),
            Err(e) if entry_problem(&e) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Whether the remote stopped being asked.
    pub(crate) fn failed(&self) -> bool {
        matches!(&*self.state.borrow(), SourceState::Failed(_))
    }

    /// Why the remote stopped being asked, if it did.
    pub(crate) fn failure(&self) -> Option<String> {
        match &*self.state.borrow() {
            SourceState::Failed(why) => Some(why.clone()),
            _ => None,
        }
    }
}

/// Whether a failed fetch failed on what the remote holds (objects missing or
/// damaged), not on reaching it.
fn entry_problem(e: &crate::Error) -> bool {
    match e {
        crate::Error::Remote(RemoteError::Transfer { first, .. }) => entry_problem(first),
        crate::Error::Remote(RemoteError::Missing { .. } | RemoteError::Corrupt { .. }) => true,
        crate::Error::Cache(_) | crate::Error::Format(_) => true,
        _ => false,
    }
}

/// [`fetch_async`] of `tracked`, and with `run_cache`, of the run-cache entries
/// the remote has and the cache lacks: their objects, then the entries. What
/// the remote lacks is left for [`from_sources`].
async fn fetch_with_runs(
    repo: &Repo,
    remote: &Remote,
    tracked: &[Tracked],
    opts: &TransferOptions,
    progress: &dyn Progress,
) -> Result<FetchReport> {
    if !opts.run_cache {
        return fetch_async(repo, remote, tracked, &[], true, progress).await;
    }
    let (entries, mut runs) = remote_runs(repo, remote).await?;
    let outs = run_outs(repo, tracked, entries.iter().map(|(_, d)| d));
    let mut report = fetch_async(repo, remote, tracked, &outs, true, progress).await?;
    for (key, done) in &entries {
        crate::pipeline::run_cache::save(repo.cache().root(), key, done)?;
        runs.copied += 1;
    }
    report.runs = Some(runs);
    Ok(report)
}

/// What the remote lacked of imports comes from their sources (see
/// [`from_source`]); what is still missing then fails the fetch, unless
/// `allow_missing`.
fn from_sources(
    repo: &Repo,
    remote: &Remote,
    tracked: &[Tracked],
    mut report: FetchReport,
    allow_missing: bool,
    progress: &dyn Progress,
) -> Result<FetchReport> {
    let imports = tracked.iter().filter(|t| {
        t.pointer.source.is_some()
            && report
                .missing
                .iter()
                .any(|m| crate::relpath::within(&m.path, &t.data_rel))
    });
    let mut done: Vec<&str> = Vec::new();
    // Imports whose source could not give them: the data path, the source, why.
    let mut refused: Vec<(&str, String, String)> = Vec::new();
    let clones = crate::ops::import::Clones::default();
    for t in imports {
        if done.contains(&t.data_rel.as_str()) {
            continue;
        }
        done.push(&t.data_rel);
        // A source that cannot give it leaves the objects missing, as they were.
        match from_source(repo, t, &clones, progress) {
            Ok(()) => report.from_sources.push(t.data_rel.clone()),
            Err(e) => {
                let src = t.pointer.source.as_ref().map(|s| s.origin().to_string());
                refused.push((&t.data_rel, src.unwrap_or_default(), crate::error_chain(&e)));
            }
        }
    }
    let cache = repo.cache();
    report.missing.retain(|m| !cache.contains(&m.id));
    if allow_missing || report.missing.is_empty() {
        return Ok(report);
    }
    // Each object as the remote and, for an import, its source answered.
    let failures = report
        .missing
        .iter()
        .map(|m| {
            let source = refused.iter().find(|(path, ..)| crate::relpath::within(&m.path, path));
            let e = match source {
                Some((_, src, why)) => RemoteError::MissingFromSource {
                    remote: Some(remote.name.clone()),
                    id: m.id,
                    path: Some(m.path.clone()),
                    origin: Box::new((src.clone(), why.clone())),
                    read: false,
                }
                .into(),
                None => remote.missing(m.id, Some(&m.path)),
            };
            (m.id, e)
        })
        .collect();
    failed_transfers(remote, failures, report.downloaded + report.missing.len())?;
    Ok(report)
}

async fn push_async(repo: &Repo, remote: &Remote, tracked: &[Tracked], progress: &dyn Progress) -> Result<PushReport> {
    let cache = repo.cache();
    let mut report = PushReport {
        remote: remote.name.clone(),
        ..Default::default()
    };
    // A part of a directory is pushed file by file; its manifest stays back, since
    // a manifest on the remote says that all of the directory's files are there.
    let manifest_ids: Vec<ObjectId> = tracked
        .iter()
        .filter(|t| t.pointer.kind == Kind::Dir && t.within.is_none())
        .map(|t| t.pointer.id)
        .collect();
    let manifests_there = remote.present(&manifest_ids, &|_| {}).await?;

    // Which files each directory to push needs, and who needs each file.
    let mut dirs: Vec<(ObjectId, Vec<ObjectId>, String)> = Vec::new();
    let mut needed_by: FxHashMap<ObjectId, String> = FxHashMap::default();
    for t in tracked {
        match t.pointer.kind {
            Kind::File => {
                needed_by.entry(t.pointer.id).or_insert_with(|| t.data_rel.clone());
            }
            Kind::Dir if manifests_there.contains(&t.pointer.id) => {
                report.already_on_remote += 1 + t.pointer.files.unwrap_or(0) as usize;
            }
            Kind::Dir => match t.manifest(cache) {
                Ok(m) => {
                    let files = files_needed(t, m)?;
                    if t.within.is_none() {
                        dirs.push((t.pointer.id, files.iter().map(|f| f.id).collect(), t.data_rel.clone()));
                    }
                    for f in files {
                        needed_by.entry(f.id).or_insert(f.path);
                    }
                }
                Err(crate::Error::Cache(CacheError::Missing { .. })) => report.missing_from_cache.push(MissingObject {
                    path: t.data_rel.clone(),
                    id: t.pointer.id,
                }),
                Err(e) => return Err(e),
            },
        }
    }
    let ids: Vec<ObjectId> = needed_by.keys().copied().collect();
    let absent: FxHashSet<ObjectId> = cache.missing(&ids)?.into_iter().collect();
    // What the cache lacks but the remote has needs no upload (data fetched in
    // part, or gc'd here after a push): only objects in neither are missing.
    let absent_ids: Vec<ObjectId> = absent.iter().copied().collect();
    let absent_there = match absent_ids.is_empty() {
        true => FxHashSet::default(),
        false => remote.present(&absent_ids, &|_| {}).await?,
    };
    report.already_on_remote += absent_there.len();
    let missing: FxHashSet<ObjectId> = absent.difference(&absent_there).copied().collect();
    for id in &missing {
        report.missing_from_cache.push(MissingObject {
            path: needed_by[id].clone(),
            id: *id,
        });
    }
    report.missing_from_cache.sort_by(|a, b| a.path.cmp(&b.path));
    let local: Vec<ObjectId> = ids.into_iter().filter(|id| !absent.contains(id)).collect();

    progress.start("Checking remote", local.len() as u64, false);
    let there = remote.present(&local, &|n| progress.inc(n)).await;
    progress.finish();
    let there = there?;
    report.already_on_remote += there.len();
    let todo: Vec<ObjectId> = local.into_iter().filter(|id| !there.contains(id)).collect();
    tracing::debug!(
        "push to `{}`: {} needed ({} directories' manifests already there), {} not in the cache \
         ({} of them on the remote), {} already on the remote, {} to send",
        remote.name,
        crate::counted(needed_by.len(), "object"),
        manifests_there.len(),
        absent.len(),
        absent_there.len(),
        there.len(),
        todo.len()
    );
    let pushed = todo.len();
    let mut failures = send_objects(remote, cache, todo, progress, &mut report).await?;
    let bad: FxHashSet<ObjectId> = failures.iter().map(|(id, _)| *id).collect();

    // Manifests last, and only for directories whose files are all on the remote.
    let ready: Vec<ObjectId> = dirs
        .iter()
        .filter(|(_, files, _)| files.iter().all(|f| !bad.contains(f) && !missing.contains(f)))
        .map(|(m, _, _)| *m)
        .collect();
    failures.extend(upload_all(cache, remote, &ready, false, progress, "Pushing manifests", &mut report).await);
    failed_transfers(remote, failures, pushed + ready.len())?;
    Ok(report)
}

/// Uploads `todo` (all in `cache`, none on the remote) as well as the remote
/// takes them, and returns the failures. A directory remote takes the cache's
/// packs whole when it needs all they hold, and packs other small objects; the
/// pack is published with what arrived even when some uploads failed (and so
/// before any manifest goes up). An object store gets the objects the cache packs
/// as new packs.
pub(crate) async fn send_objects(
    remote: &Remote,
    cache: &Cache,
    mut todo: Vec<ObjectId>,
    progress: &dyn Progress,
    report: &mut PushReport,
) -> Result<Vec<(ObjectId, crate::Error)>> {
    remote.writable()?;
    let before = report.uploaded;
    spread(&mut todo);
    let (n, bytes) = remote.push_whole_packs(cache, &mut todo, progress)?;
    report.uploaded += n;
    report.uploaded_bytes += bytes;
    let packing = remote.begin_packing();
    let (packed, loose): (Vec<ObjectId>, Vec<ObjectId>) = if remote.packs_uploads() {
        todo.iter().partition(|id| cache.is_packed(id))
    } else {
        (Vec::new(), todo)
    };
    let mut failures = upload_all(cache, remote, &packed, true, progress, "Pushing", report).await;
    failures.extend(upload_all(cache, remote, &loose, false, progress, "Pushing", report).await);
    if let Some(p) = packing {
        p.finish()?;
    }
    // Before any manifest goes up: a reader that finds a directory's manifest
    // through a plain web server finds its files' packs in the list. After
    // failed uploads the push fails anyway, and the next one writes it; a
    // push that sent nothing (to a remote mounted read-only, say) still
    // succeeds.
    let sent = report.uploaded > before;
    if let Err(e) = remote.publish_pack_list(sent).await {
        match (failures.is_empty(), sent) {
            (true, true) => return Err(e),
            (true, false) => tracing::warn!(
                "remote `{}`: cannot update `packs/list`, which readers over plain HTTP go by: {}",
                remote.name,
                crate::error_chain(&e)
            ),
            (false, _) => {}
        }
    }
    Ok(failures)
}

/// Uploads `ids`: one by one, or when `packed`, as new packs.
async fn upload_all(
    cache: &Cache,
    remote: &Remote,
    ids: &[ObjectId],
    packed: bool,
    progress: &dyn Progress,
    label: &'static str,
    report: &mut PushReport,
) -> Vec<(ObjectId, crate::Error)> {
    if ids.is_empty() {
        return Vec::new();
    }
    let total_bytes: u64 = ids.par_iter().map(|id| cache.stored_len(id).unwrap_or(0)).sum();
    progress.start(label, total_bytes, true);
    let meter = Meter {
        progress,
        label,
        done: AtomicUsize::new(0),
        total: ids.len(),
    };
    let bytes = AtomicU64::new(0);
    let on_bytes = |n: u64| progress.inc(n);
    let stop = Stop::default();
    let results: Vec<(ObjectId, Result<u64>)> = if packed {
        let results = remote
            .upload_packed(cache, ids, &on_bytes, &|| meter.object_done())
            .await;
        bytes.fetch_add(
            results.iter().filter_map(|(_, r)| r.as_ref().ok()).sum::<u64>(),
            Ordering::Relaxed,
        );
        results
    } else {
        futures::stream::iter(ids.iter().copied())
            .map(|id| {
                let on_bytes = &on_bytes;
                let meter = &meter;
                let bytes = &bytes;
                let stop = &stop;
                async move {
                    let r = stop.guard(remote.upload(cache, id, on_bytes)).await;
                    if let Ok(n) = &r {
                        bytes.fetch_add(*n, Ordering::Relaxed);
                    }
                    meter.object_done();
                    (id, r)
                }
            })
            .buffer_unordered(remote.jobs)
            .collect()
            .await
    };
    progress.finish();
    let (done, failures) = split_results(results);
    report.uploaded += done;
    report.uploaded_bytes += bytes.into_inner();
    failures
}

/// Downloads every object the targets need that the cache lacks, each verified
/// before it enters the cache. Directory manifests come first (they say which
/// files are needed).
pub fn fetch(repo: &Repo, opts: &TransferOptions, progress: &dyn Progress) -> Result<FetchReport> {
    let (mut tracked, unreadable) = load_all(repo, opts)?;
    let left_out = opts.only.apply(repo, &mut tracked)?;
    let shares = open_shares(repo, opts, tracked)?;
    let _lock = repo.lock("dvt fetch")?;
    let report = fetch_shares(repo, opts, &shares, progress)?;
    Ok(FetchReport {
        left_out,
        unreadable,
        ..report
    })
}

/// The remotes of a fetch or pull, opened, with their shares (see
/// [`by_remote`]); the first remote is `None` when none is configured and
/// none was asked for, and its data is all imports (see [`open_remote`]).
fn open_shares(
    repo: &Repo,
    opts: &TransferOptions,
    tracked: Vec<Tracked>,
) -> Result<Vec<(Option<Remote>, Vec<Tracked>)>> {
    let mut opened = Vec::new();
    for (i, (name, tracked)) in by_remote(repo, opts, tracked)?.into_iter().enumerate() {
        let remote = match (i, name) {
            (0, None) => open_remote(repo, opts, &tracked)?,
            (_, name) => Some(Remote::open(repo, name.as_deref(), opts.jobs, false)?),
        };
        opened.push((remote, tracked));
    }
    Ok(opened)
}

/// Fetches each share from its remote (the run cache from the first), with
/// the repository lock held; one report, with the other remotes' in `also`.
fn fetch_shares(
    repo: &Repo,
    opts: &TransferOptions,
    shares: &[(Option<Remote>, Vec<Tracked>)],
    progress: &dyn Progress,
) -> Result<FetchReport> {
    let mut reports = Vec::new();
    for (i, (remote, tracked)) in shares.iter().enumerate() {
        let opts = TransferOptions {
            run_cache: opts.run_cache && i == 0,
            ..opts.clone()
        };
        reports.push(match remote {
            Some(remote) => {
                // Outside the remote's runtime: a source may have its own.
                let report = remote.block_on(fetch_with_runs(repo, remote, tracked, &opts, progress))?;
                from_sources(repo, remote, tracked, report, opts.allow_missing, progress)?
            }
            None => imports_from_sources(repo, tracked, progress)?,
        });
    }
    let mut report = reports.remove(0);
    for other in &mut reports {
        report.missing.append(&mut other.missing);
        report.from_sources.append(&mut other.from_sources);
    }
    report.also = reports;
    Ok(report)
}

/// The remote of a fetch or pull; `None` when none is configured and none
/// was asked for, but every pointer in `tracked` is an import, whose data its
/// source gives (a repository that only imports from a data registry, or from
/// URLs, needs no remote of its own, as with DVC).
fn open_remote(repo: &Repo, opts: &TransferOptions, tracked: &[Tracked]) -> Result<Option<Remote>> {
    let imports_only = !tracked.is_empty() && tracked.iter().all(|t| t.pointer.source.is_some());
    let no_remote = opts.remote.is_none() && repo.config().remote.is_empty();
    if no_remote && imports_only && !opts.run_cache && !opts.revisions_only {
        return Ok(None);
    }
    Remote::open(repo, opts.remote.as_deref(), opts.jobs, false).map(Some)
}

/// [`fetch`] without a remote: each import in `tracked` whose objects the
/// cache lacks comes from its source (see [`open_remote`]).
fn imports_from_sources(repo: &Repo, tracked: &[Tracked], progress: &dyn Progress) -> Result<FetchReport> {
    let cache = repo.cache();
    // No remote: its name is empty.
    let mut report = FetchReport::default();
    let clones = crate::ops::import::Clones::default();
    for t in tracked {
        let (lacking, objects) = match t.pointer.kind {
            Kind::File => (!cache.contains(&t.pointer.id), 1),
            Kind::Dir => match cache.contains(&t.pointer.id) {
                false => (true, 0),
                true => {
                    let ids: Vec<ObjectId> = files_needed(t, t.manifest(cache)?)?.iter().map(|f| f.id).collect();
                    let lacking = !cache.missing_for_manifest(&t.pointer.id, &ids)?.is_empty();
                    (lacking, ids.len() + 1)
                }
            },
        };
        if !lacking {
            report.already_cached += objects;
            continue;
        }
        if report.from_sources.contains(&t.data_rel) {
            continue;
        }
        from_source(repo, t, &clones, progress)?;
        report.from_sources.push(t.data_rel.clone());
    }
    Ok(report)
}

/// Brings into the cache the data of import `t` from where it was imported:
/// the dvt repository at the recorded commit (see
/// [`crate::ops::import::fetch_from_source`]), or the URL, if what is there is
/// still what the pointer records (see
/// [`crate::ops::import_url::fetch_from_url`]).
fn from_source(repo: &Repo, t: &Tracked, clones: &crate::ops::import::Clones, progress: &dyn Progress) -> Result<()> {
    match &t.pointer.source {
        Some(crate::pointer::Source::Repo(_)) => crate::ops::import::fetch_from_source(repo, t, clones, progress),
        Some(crate::pointer::Source::Url(src)) => crate::ops::import_url::fetch_from_url(repo, t, src, progress),
        None => Ok(()),
    }
}

/// Fetches what `tracked` and `extra` need; a pull lays out directories of
/// `tracked` as their files arrive, never those of `extra` (see [`Cache::plan_tree`]).
/// With `allow_missing`, objects the remote lacks are reported, not failed.
async fn fetch_async(
    repo: &Repo,
    remote: &Remote,
    tracked: &[Tracked],
    extra: &[Tracked],
    allow_missing: bool,
    progress: &dyn Progress,
) -> Result<FetchReport> {
    let cache = repo.cache();
    let mut report = FetchReport {
        remote: remote.name.clone(),
        ..Default::default()
    };
    let mut failures: Vec<(ObjectId, crate::Error)> = Vec::new();
    let mut attempted = 0;

    // Manifests first.
    let mut needed_by: FxHashMap<ObjectId, Wanted> = FxHashMap::default();
    for t in tracked.iter().chain(extra).filter(|t| t.pointer.kind == Kind::Dir) {
        needed_by.entry(t.pointer.id).or_insert_with(|| Wanted {
            path: t.data_rel.clone(),
            size: None,
        });
    }
    let manifest_ids: Vec<ObjectId> = needed_by.keys().copied().collect();
    let todo = cache.missing(&manifest_ids)?;
    let todo_manifests = todo.len();
    report.already_cached += manifest_ids.len() - todo.len();
    attempted += todo.len();
    failures.extend(
        download_all(
            remote,
            cache,
            &todo,
            &needed_by,
            progress,
            "Fetching manifests",
            &mut report,
        )
        .await,
    );
    let bad_manifests: FxHashSet<ObjectId> = failures.iter().map(|(id, _)| *id).collect();

    // Then every file object.
    let mut needed_by: FxHashMap<ObjectId, Wanted> = FxHashMap::default();
    let mut complete_dirs = Vec::new();
    let laid_out = tracked.len();
    for (i, t) in tracked.iter().chain(extra).enumerate() {
        match t.pointer.kind {
            Kind::File => {
                needed_by.entry(t.pointer.id).or_insert_with(|| Wanted {
                    path: t.data_rel.clone(),
                    size: Some(t.pointer.size),
                });
            }
            Kind::Dir if bad_manifests.contains(&t.pointer.id) => {}
            Kind::Dir => {
                let manifest = t.manifest(cache)?;
                // A pull into a workspace without this directory writes it while
                // the packs arrive (see `Cache::plan_tree`).
                if i < laid_out && t.within.is_none() && fs_err::symlink_metadata(&t.data_abs).is_err() {
                    let files = manifest.files.iter().map(|f| (f.path.as_str(), f.id));
                    cache.plan_tree(&t.data_rel, &t.data_abs, &t.pointer.id, files);
                }
                let files = files_needed(t, manifest)?;
                let ids: Vec<ObjectId> = files.iter().map(|f| f.id).collect();
                if cache.missing_for_manifest(&t.pointer.id, &ids)?.is_empty() {
                    report.already_cached += ids.len();
                    continue;
                }
                for f in files {
                    needed_by.entry(f.id).or_insert(Wanted {
                        path: f.path,
                        size: Some(f.size),
                    });
                }
                if t.within.is_none() {
                    complete_dirs.push(t.pointer.id);
                }
            }
        }
    }
    let ids: Vec<ObjectId> = needed_by.keys().copied().collect();
    let mut todo = cache.missing(&ids)?;
    spread(&mut todo);
    report.already_cached += ids.len() - todo.len();
    attempted += todo.len();
    tracing::debug!(
        "fetch from `{}`: {} ({} fetched), {} needed, {} already in the cache, {} to get",
        remote.name,
        crate::counted(manifest_ids.len(), "manifest"),
        todo_manifests,
        crate::counted(ids.len(), "file object"),
        ids.len() - todo.len(),
        todo.len()
    );
    failures.extend(download_into(remote, cache, todo, &needed_by, progress, &mut report).await?);
    if allow_missing {
        failures.retain(|(id, e)| match e {
            crate::Error::Remote(RemoteError::Missing { path, .. }) => {
                report.missing.push(MissingObject {
                    path: path.clone().unwrap_or_default(),
                    id: *id,
                });
                false
            }
            _ => true,
        });
    }
    failed_transfers(remote, failures, attempted)?;
    // A directory whose files are not all here is not marked complete.
    for m in complete_dirs.iter().filter(|_| report.missing.is_empty()) {
        cache.mark_complete(m);
    }
    Ok(report)
}

/// Downloads `todo` (objects `cache` lacks, `needed_by` says for whom) from
/// `remote`: a directory remote's packs that hold only needed objects are
/// copied whole; the rest many at a time, packed runs in one ranged GET each,
/// small objects into a pack of the cache. What arrived is kept when some
/// failed; the failures are returned.
async fn download_into(
    remote: &Remote,
    cache: &Cache,
    mut todo: Vec<ObjectId>,
    needed_by: &FxHashMap<ObjectId, Wanted>,
    progress: &dyn Progress,
    report: &mut FetchReport,
) -> Result<Vec<(ObjectId, crate::Error)>> {
    let (n, bytes) = remote.fetch_whole_packs(cache, &mut todo, progress)?;
    report.downloaded += n;
    report.downloaded_bytes += bytes;
    let packing = cache.begin_packing();
    let failures = download_all(remote, cache, &todo, needed_by, progress, "Fetching", report).await;
    packing.finish()?;
    Ok(failures)
}

/// Downloads from `remote` into `cache` the objects of `wanted` (each with
/// the path that needs it and its size) as `fetch` does, all of them together
/// ([`download_into`]): `get` and `import` of a directory. One error names
/// the remote and the first failure.
pub(crate) fn download_wanted(
    remote: &Remote,
    cache: &Cache,
    wanted: impl IntoIterator<Item = (ObjectId, String, u64)>,
    progress: &dyn Progress,
) -> Result<()> {
    let needed_by: FxHashMap<ObjectId, Wanted> = wanted
        .into_iter()
        .map(|(id, path, size)| (id, Wanted { path, size: Some(size) }))
        .collect();
    let mut todo: Vec<ObjectId> = needed_by.keys().copied().collect();
    spread(&mut todo);
    let total = todo.len();
    let mut report = FetchReport::default();
    let failures = remote.block_on(download_into(remote, cache, todo, &needed_by, progress, &mut report))?;
    failed_transfers(remote, failures, total)
}

/// One download: an object on its own, or a run of packed objects.
enum Job {
    One(ObjectId),
    Run(crate::remote::Run),
}

/// An object to download: who needs it, and its content size when known.
struct Wanted {
    path: String,
    size: Option<u64>,
}

async fn download_all(
    remote: &Remote,
    cache: &Cache,
    ids: &[ObjectId],
    needed_by: &FxHashMap<ObjectId, Wanted>,
    progress: &dyn Progress,
    label: &'static str,
    report: &mut FetchReport,
) -> Vec<(ObjectId, crate::Error)> {
    if ids.is_empty() {
        return Vec::new();
    }
    // Stored sizes are known only as each download starts, so the bar counts content
    // bytes (from the pointers and manifests) when every size is known, else objects.
    let sizes: Option<u64> = ids.iter().map(|id| needed_by.get(id).and_then(|w| w.size)).sum();
    progress.start(label, sizes.unwrap_or(ids.len() as u64), sizes.is_some());
    let meter = Meter {
        progress,
        label,
        done: AtomicUsize::new(0),
        total: ids.len(),
    };
    let bytes = AtomicU64::new(0);
    let on_bytes = |n: u64| {
        bytes.fetch_add(n, Ordering::Relaxed);
    };
    let stop = Stop::default();
    let done = |id: &ObjectId| {
        progress.inc(match sizes {
            Some(_) => needed_by.get(id).and_then(|w| w.size).unwrap_or(0),
            None => 1,
        });
        meter.object_done();
    };
    // Packed objects on an object store come in runs, one ranged GET each.
    let (loose, runs) = match remote.plan_downloads(ids).await {
        Ok(plan) => plan,
        Err(e) => {
            progress.finish();
            let mut out = vec![(ids[0], e)];
            out.extend(ids[1..].iter().map(|id| (*id, RemoteError::Skipped.into())));
            return out;
        }
    };
    let jobs = loose.into_iter().map(Job::One).chain(runs.into_iter().map(Job::Run));
    let results: Vec<Vec<(ObjectId, Result<u64>)>> = futures::stream::iter(jobs)
        .map(|job| {
            let on_bytes = &on_bytes;
            let stop = &stop;
            let done = &done;
            async move {
                match job {
                    Job::One(id) => {
                        let wanted = needed_by.get(&id);
                        let r = stop
                            .guard(remote.download(cache, id, wanted.map(|w| w.path.as_str()), on_bytes))
                            .await;
                        done(&id);
                        vec![(id, r)]
                    }
                    Job::Run(run) => {
                        let out = stop
                            .guard_many(run.ids(), remote.download_run(cache, &run, on_bytes))
                            .await;
                        out.iter().for_each(|(id, _)| done(id));
                        out
                    }
                }
            }
        })
        .buffer_unordered(remote.jobs)
        .collect()
        .await;
    let results: Vec<(ObjectId, Result<u64>)> = results.into_iter().flatten().collect();
    progress.finish();
    let (done, failures) = split_results(results);
    report.downloaded += done;
    report.downloaded_bytes += bytes.into_inner();
    failures
}

/// What `fsck -r` found on a remote, and what `--repair` did there.
#[derive(Debug, Default, Serialize)]
pub struct RemoteFsckReport {
    /// The remote's name.
    pub remote: String,
    /// Objects checked.
    pub checked: usize,
    /// Bytes read to check them: stored bytes downloaded, or for a directory
    /// remote (checked in place) content bytes verified.
    pub bytes: u64,
    /// Objects whose copy on the remote is damaged, with why.
    pub corrupt: Vec<crate::ops::fsck::Damaged>,
    /// With `--repair`: damaged objects uploaded again, intact, from the cache.
    pub replaced: Vec<ObjectId>,
    /// With `--repair`: damaged objects deleted from the remote that the cache does
    /// not have either: they must be pushed from a repository that has them.
    pub lost: Vec<ObjectId>,
    /// With `--repair`: manifests deleted from the remote because they list a lost
    /// object (a manifest on a remote means all its files are there); a push from
    /// a repository with all of the directory's files uploads it again.
    pub withdrawn: Vec<ObjectId>,
}

/// The stored bytes `fsck -r` downloads into one scratch cache before checking
/// and deleting them.
const VERIFY_BATCH: u64 = 1 << 30;

/// Checks every object on the remote: a directory remote in place, any other by
/// downloading it, about 1 GiB at a time, into a scratch cache under `.dvt/tmp`
/// (deleted after each batch), verified as `fetch` verifies. A failed request
/// stops it, with an error. With `repair`, damaged copies are deleted from the
/// remote (packs rewritten without them) and uploaded again from the cache where
/// it has them intact; see [`RemoteFsckReport`].
pub fn fsck_remote(
    repo: &Repo,
    opts: &TransferOptions,
    repair: bool,
    progress: &dyn Progress,
) -> Result<RemoteFsckReport> {
    let remote = Remote::open(repo, opts.remote.as_deref(), opts.jobs, false)?;
    let _lock = if repair {
        Some(repo.lock("dvt fsck --remote --repair")?)
    } else {
        None
    };
    let mut report = RemoteFsckReport {
        remote: remote.name.clone(),
        ..Default::default()
    };
    // Which files each manifest lists, and the manifests themselves (small), for
    // a repair to take off and put back those that list a damaged object.
    let kept = tempfile::Builder::new()
        .prefix("fsck-remote-manifests-")
        .tempdir_in(repo.tmp_dir()?)?;
    let manifests = Cache::new(kept.path(), repo.config().cache.level);
    let listing = match remote.directory() {
        Some(dir) => verify_in_place(dir, &mut report, &manifests, progress)?,
        None => remote.block_on(verify_by_download(repo, &remote, &mut report, &manifests, progress))?,
    };
    report.corrupt.sort_by_key(|d| d.id);
    if repair && !report.corrupt.is_empty() {
        remote.block_on(repair_remote(
            repo,
            &remote,
            &listing,
            &manifests,
            &mut report,
            progress,
        ))?;
    }
    Ok(report)
}

/// Manifests, each with the ids of the files it lists.
type Listing = Vec<(ObjectId, Vec<ObjectId>)>;

/// Adds to `listing` the manifests among `ids` in `from`, and copies each into
/// `manifests`.
fn note_manifests<'a>(
    from: &Cache,
    ids: impl Iterator<Item = &'a ObjectId>,
    manifests: &Cache,
    listing: &mut Listing,
) -> Result<()> {
    for id in ids {
        if from.contains(id) && crate::manifest::looks_like(&from.peek(id, 16).unwrap_or_default()) {
            let m = crate::manifest::Manifest::parse(&from.read(id, None)?, id)?;
            listing.push((*id, m.files.iter().map(|e| e.id).collect()));
            manifests.import_from(from, id, false, false)?;
        }
    }
    Ok(())
}

/// A directory remote is checked where it is, on all cores, as `fsck` checks the cache.
fn verify_in_place(
    dir: &Cache,
    report: &mut RemoteFsckReport,
    manifests: &Cache,
    progress: &dyn Progress,
) -> Result<Listing> {
    let (ids, _) = dir.list()?;
    report.checked = ids.len();
    let label = format!("verifying `{}`", report.remote);
    let (bytes, failures) = crate::ops::fsck::verify_objects(dir, &ids, &label, progress);
    report.bytes = bytes;
    for (id, e) in failures {
        match e {
            Error::Cache(CacheError::Corrupt { reason, .. }) => {
                report.corrupt.push(crate::ops::fsck::Damaged::wrong_bytes(id, reason))
            }
            // Deleted since it was listed (a gc elsewhere): nothing to check.
            Error::Cache(CacheError::Missing { .. }) => {}
            e => return Err(e),
        }
    }
    let damaged: FxHashSet<ObjectId> = report.corrupt.iter().map(|d| d.id).collect();
    let mut listing = Vec::new();
    note_manifests(
        dir,
        ids.iter().filter(|id| !damaged.contains(id)),
        manifests,
        &mut listing,
    )?;
    Ok(listing)
}

/// Any other remote is checked by downloading every object, verified as `fetch`
/// verifies, about 1 GiB at a time into a scratch cache that is deleted after.
async fn verify_by_download(
    repo: &Repo,
    remote: &Remote,
    report: &mut RemoteFsckReport,
    manifests: &Cache,
    progress: &dyn Progress,
) -> Result<Listing> {
    progress.start(&format!("listing remote `{}`", remote.name), 0, false);
    let listed = remote.list_all_sized(true).await?;
    progress.finish();
    report.checked = listed.len();
    let mut listing = Vec::new();
    let none = FxHashMap::default();
    let mut rest = &listed[..];
    while !rest.is_empty() {
        let mut n = 0;
        let mut bytes = 0;
        while n < rest.len() && (n == 0 || bytes + rest[n].1 <= VERIFY_BATCH) {
            bytes += rest[n].1;
            n += 1;
        }
        let (batch, after) = rest.split_at(n);
        rest = after;
        let ids: Vec<ObjectId> = batch.iter().map(|(id, _)| *id).collect();
        let scratch = tempfile::Builder::new()
            .prefix("fsck-remote-")
            .tempdir_in(repo.tmp_dir()?)?;
        let cache = Cache::new(scratch.path(), repo.config().cache.level);
        let mut fetched = FetchReport::default();
        // Small objects go into a pack: fewer files to create and delete.
        let packing = cache.begin_packing();
        let failures = download_all(remote, &cache, &ids, &none, progress, "Verifying", &mut fetched).await;
        packing.finish()?;
        report.bytes += fetched.downloaded_bytes;
        let mut others = Vec::new();
        for (id, e) in failures {
            match e {
                Error::Remote(RemoteError::Corrupt { reason, .. }) => {
                    report.corrupt.push(crate::ops::fsck::Damaged::wrong_bytes(id, reason))
                }
                // Deleted since it was listed (a gc elsewhere): nothing to check.
                Error::Remote(RemoteError::Missing { .. }) => {}
                e => others.push((id, e)),
            }
        }
        failed_transfers(remote, others, ids.len())?;
        note_manifests(&cache, ids.iter(), manifests, &mut listing)?;
    }
    Ok(listing)
}

/// Replaces the damaged objects `report` lists on `remote`, in an order that keeps
/// "a manifest on the remote means all of its files are there" true at every
/// moment, so that a repair killed at any point leaves what the next push mends:
/// first every manifest that lists a damaged object is taken off the remote, then
/// the damaged objects; the files the cache has go up again, then the manifests
/// (from the cache, or as they were downloaded into `manifests`) whose files are
/// all there again. A manifest that lists an object nobody here has stays off
/// (`withdrawn`).
async fn repair_remote(
    repo: &Repo,
    remote: &Remote,
    listing: &Listing,
    manifests: &Cache,
    report: &mut RemoteFsckReport,
    progress: &dyn Progress,
) -> Result<()> {
    let cache = repo.cache();
    let damaged: FxHashSet<ObjectId> = report.corrupt.iter().map(|d| d.id).collect();
    let is_manifest = |id: &ObjectId| crate::manifest::looks_like(&cache.peek(id, 16).unwrap_or_default());
    // Intact manifests that list a damaged object, with their files.
    let mut affected: Vec<(ObjectId, Vec<ObjectId>)> = listing
        .iter()
        .filter(|(_, files)| files.iter().any(|f| damaged.contains(f)))
        .cloned()
        .collect();
    // Damaged manifests the cache has: their files are known from there.
    let mut replacing_files = Vec::new();
    for id in report.corrupt.iter().map(|d| d.id) {
        if !cache.contains(&id) {
            report.lost.push(id);
        } else if is_manifest(&id) {
            let m = crate::manifest::Manifest::parse(&cache.read(&id, None)?, &id)?;
            affected.push((id, m.files.iter().map(|e| e.id).collect()));
        } else {
            replacing_files.push(id);
        }
    }
    progress.start(&format!("repairing `{}`", remote.name), 0, false);
    let withdraw: Vec<ObjectId> = affected
        .iter()
        .map(|(m, _)| *m)
        .filter(|m| !damaged.contains(m))
        .collect();
    remote.delete(&withdraw, &|| {}).await?;
    remote
        .delete(&report.corrupt.iter().map(|d| d.id).collect::<Vec<_>>(), &|| {})
        .await?;
    for id in &replacing_files {
        remote.upload(cache, *id, &|_| {}).await?;
        report.replaced.push(*id);
    }
    let lost: FxHashSet<ObjectId> = report.lost.iter().copied().collect();
    for (m, files) in &affected {
        if files.iter().any(|f| lost.contains(f)) {
            report.withdrawn.push(*m);
            continue;
        }
        let from = if cache.contains(m) { cache } else { manifests };
        remote.upload(from, *m, &|_| {}).await?;
        if damaged.contains(m) {
            report.replaced.push(*m);
        }
    }
    progress.finish();
    Ok(())
}

/// How many transfers succeeded, and the failures, a real one first (not a
/// transfer skipped because of it).
fn split_results(results: Vec<(ObjectId, Result<u64>)>) -> (usize, Vec<(ObjectId, crate::Error)>) {
    let mut done = 0;
    let mut failures = Vec::new();
    for (id, r) in results {
        match r {
            Ok(_) => done += 1,
            Err(e) => failures.push((id, e)),
        }
    }
    failures.sort_by_key(|(id, e)| (matches!(e, crate::Error::Remote(RemoteError::Skipped)), *id));
    (done, failures)
}

/// `Ok` when nothing failed, else one error naming the remote and the first failure.
pub(crate) fn failed_transfers(remote: &Remote, failures: Vec<(ObjectId, crate::Error)>, total: usize) -> Result<()> {
    let failed = failures.len();
    match failures.into_iter().next() {
        None => Ok(()),
        Some((_, first)) => Err(RemoteError::Transfer {
            remote: remote.name.clone(),
            failed,
            total,
            first: Box::new(first),
        }
        .into()),
    }
}

/// What pull did.
#[derive(Debug, Serialize)]
pub struct PullReport {
    /// The fetch.
    pub fetch: FetchReport,
    /// The checkout that followed.
    pub checkout: super::CheckoutReport,
    /// With a remote asked for (`-r`): the data paths left out, fetch and
    /// checkout, because their pointers name another remote.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub other_remotes: Vec<String>,
}

/// `fetch`, then `checkout` of the same targets. The data of
/// `opts.revisions` is fetched too (as DVC's `pull -a/-T/-A`); only the
/// workspace's is checked out.
pub fn pull(repo: &Repo, opts: &TransferOptions, force: bool, progress: &dyn Progress) -> Result<PullReport> {
    let (tracked, unreadable) = load_all(repo, opts)?;
    let shares = open_shares(repo, opts, tracked)?;
    // One lock for both halves: no other command runs between the fetch and the
    // checkout, and one that waits is told that a pull holds the repository.
    let _lock = repo.lock("dvt pull")?;
    let tmp = repo.tmp_dir()?;
    remove_stale_pull_dirs(&tmp);
    // Big objects fetched now are decoded once, while they are verified, and the
    // checkout below renames that copy into the workspace.
    let _keep = repo
        .cache()
        .keep_decoded(tmp.join(format!("pull-{}", std::process::id())))?;
    let fetch = FetchReport {
        unreadable,
        ..fetch_shares(repo, opts, &shares, progress)?
    };
    // `-r NAME` fetched nothing for pointers that name another remote: the
    // checkout leaves them out too.
    let (targets, other_remotes) = match &opts.remote {
        None => (opts.targets.clone(), Vec::new()),
        Some(asked) => {
            let (pointers, mut all) = resolve_tracked(repo, &opts.cwd, Targets::given(&opts.targets))?;
            for p in &pointers {
                all.push(Tracked::load(repo, p)?);
            }
            let (other, own): (Vec<Tracked>, Vec<Tracked>) = all
                .into_iter()
                .partition(|t| t.pointer.remote.as_ref().is_some_and(|r| r != asked));
            let other: Vec<String> = other.into_iter().map(|t| t.data_rel).collect();
            match (other.is_empty(), own.is_empty()) {
                (true, _) => (opts.targets.clone(), other),
                (false, true) => {
                    return Ok(PullReport {
                        fetch,
                        checkout: Default::default(),
                        other_remotes: other,
                    });
                }
                (false, false) => (own.into_iter().map(|t| t.data_abs).collect(), other),
            }
        }
    };
    let checkout = super::checkout::checkout_locked(
        repo,
        &super::CheckoutOptions {
            targets,
            cwd: opts.cwd.clone(),
            force,
            allow_missing: opts.allow_missing,
            keep_changed: false,
        },
        progress,
    )?;
    Ok(PullReport {
        fetch,
        checkout,
        other_remotes,
    })
}

/// Deletes what pulls killed before their end kept in `tmp` (see
/// [`crate::cache::Cache::keep_decoded`]). Called with the repository lock held,
/// so no other pull is using them.
fn remove_stale_pull_dirs(tmp: &std::path::Path) {
    let Ok(entries) = fs_err::read_dir(tmp) else { return };
    for e in entries.flatten() {
        if e.file_name().to_string_lossy().starts_with("pull-") {
            let _ = fs_err::remove_dir_all(e.path());
        }
    }
}

/// Where one pointer's objects are.
#[derive(Debug, Serialize)]
pub struct RemotePointerStatus {
    /// The pointer file, repo-relative.
    pub pointer: String,
    /// The data path, repo-relative.
    pub path: String,
    /// How many objects the pointer needs (as far as known: a directory whose
    /// manifest is nowhere counts as one); with revisions, all its versions do.
    pub objects: usize,
    /// In the cache only: `dvt push` would upload them.
    pub local_only: Vec<ObjectId>,
    /// On the remote only: `dvt fetch` would download them.
    pub remote_only: Vec<ObjectId>,
    /// In neither: this data cannot be restored from here.
    pub missing: Vec<ObjectId>,
    /// The remote compared with, when the pointer names one of its own
    /// (`remote = "NAME"`) other than the report's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote: Option<String>,
    /// Whether its pointer says `push = false`: what is only in the cache is
    /// meant to stay there, and does not count against being in sync.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub not_pushed: bool,
    /// For an import: where it was imported from (the repository or the URL
    /// its pointer records), which gives a pull what is `missing`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// `dvt status --remote`.
#[derive(Debug, Serialize)]
pub struct RemoteStatusReport {
    /// The remote's name.
    pub remote: String,
    /// One entry per pointer.
    pub pointers: Vec<RemotePointerStatus>,
}

impl RemoteStatusReport {
    /// Whether the cache and the remote hold every object of every pointer
    /// (data that is never pushed, in the cache).
    pub fn in_sync(&self) -> bool {
        self.pointers
            .iter()
            .all(|p| (p.local_only.is_empty() || p.not_pushed) && p.remote_only.is_empty() && p.missing.is_empty())
    }
}

/// Compares the objects the targets need with the cache and the remote (listing
/// the remote: this does not rely on what earlier pushes recorded). The
/// versions of a path that `opts.revisions` add are counted with it, as one entry.
pub fn remote_status(repo: &Repo, opts: &TransferOptions, progress: &dyn Progress) -> Result<RemoteStatusReport> {
    let (tracked, _) = load_all(repo, opts)?;
    let mut report: Option<RemoteStatusReport> = None;
    for (name, tracked) in by_remote(repo, opts, tracked)? {
        let remote = Remote::open(repo, name.as_deref(), opts.jobs, false)?;
        let mut pointers = remote_status_share(repo, &remote, &tracked, progress)?;
        match &mut report {
            None => {
                report = Some(RemoteStatusReport {
                    remote: remote.name.clone(),
                    pointers,
                })
            }
            Some(r) => {
                for p in &mut pointers {
                    p.remote = Some(remote.name.clone());
                }
                r.pointers.append(&mut pointers);
            }
        }
    }
    // `by_remote` gives at least one share.
    report.ok_or_else(|| std::io::Error::other("no remote to compare with").into())
}

/// [`remote_status`] of one remote's share.
fn remote_status_share(
    repo: &Repo,
    remote: &Remote,
    tracked: &[Tracked],
    progress: &dyn Progress,
) -> Result<Vec<RemotePointerStatus>> {
    let cache = repo.cache();
    remote.block_on(async {
        let mut needs: Vec<Vec<ObjectId>> = Vec::new();
        for t in tracked {
            let mut ids = vec![t.pointer.id];
            if t.pointer.kind == Kind::Dir {
                let manifest = if cache.contains(&t.pointer.id) {
                    Some(t.manifest(cache)?)
                } else {
                    match remote.read(t.pointer.id).await {
                        Ok(bytes) => Some(Manifest::parse(&bytes, &t.pointer.id)?),
                        Err(crate::Error::Remote(RemoteError::Missing { .. })) => None,
                        Err(e) => return Err(e),
                    }
                };
                if let Some(m) = manifest {
                    ids.extend(files_needed(t, m)?.iter().map(|f| f.id));
                }
            }
            ids.sort_unstable();
            ids.dedup();
            needs.push(ids);
        }
        let mut all: Vec<ObjectId> = needs.iter().flatten().copied().collect();
        all.sort_unstable();
        all.dedup();
        progress.start("Checking remote", all.len() as u64, false);
        let there = remote.present(&all, &|n| progress.inc(n)).await;
        progress.finish();
        let there = there?;
        let absent: FxHashSet<ObjectId> = cache.missing(&all)?.into_iter().collect();
        // One entry per path: the versions other revisions add join the workspace's.
        // (pointer, path), the objects it needs, whether it is never pushed, its source.
        type Needs = ((String, String), Vec<ObjectId>, bool, Option<String>);
        let mut paths: Vec<Needs> = Vec::new();
        let mut index: rustc_hash::FxHashMap<(String, String), usize> = Default::default();
        for (t, ids) in tracked.iter().zip(needs) {
            let path = match &t.within {
                Some(inner) => display_path(&t.data_rel, inner),
                None => t.data_rel.clone(),
            };
            let key = (t.pointer_rel.clone(), path);
            match index.get(&key) {
                Some(&i) => paths[i].1.extend(ids),
                None => {
                    index.insert(key.clone(), paths.len());
                    let source = t.pointer.source.as_ref().map(|s| s.origin().to_string());
                    paths.push((key, ids, !t.pointer.push, source));
                }
            }
        }
        let pointers = paths
            .into_iter()
            .map(|((pointer, path), mut ids, not_pushed, source)| {
                ids.sort_unstable();
                ids.dedup();
                let mut st = RemotePointerStatus {
                    pointer,
                    path,
                    objects: ids.len(),
                    local_only: vec![],
                    remote_only: vec![],
                    missing: vec![],
                    remote: None,
                    not_pushed,
                    source,
                };
                for id in ids {
                    match (!absent.contains(&id), there.contains(&id)) {
                        (true, false) => st.local_only.push(id),
                        (false, true) => st.remote_only.push(id),
                        (false, false) => st.missing.push(id),
                        (true, true) => {}
                    }
                }
                st
            })
            .collect();
        Ok(pointers)
    })
}
