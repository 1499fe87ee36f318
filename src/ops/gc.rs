//! `dvt gc`: delete cache (and remote) objects that no kept pointer references.
//!
//! What is kept: everything the workspace's pointer files, HEAD's and every
//! experiment's (`dvt exp run`) name, always; plus, on request, every branch tip,
//! every tag, or every commit. A cache shared by
//! several repositories (`cache.dir`) also keeps what every other one's workspace
//! and HEAD name: each repository that locks a cache lists itself in it, and gc
//! holds the cache alone while it works, so no command of any of them adds a
//! pointer to an object gc is deleting. A directory keeps
//! its manifest and every file its manifest lists; a manifest that can be read
//! neither from the cache nor the remote stops gc (it cannot know what to keep).
//! Deletion removes unreferenced manifests before files, so that a manifest present
//! always means its files are present (what `push` relies on to skip directories).
//! A run-cache entry whose data outs are all kept keeps the copies of its
//! metrics and plots files too (git keeps those, so no pointer names the
//! copies); any other entry goes with its data: it could restore nothing, and
//! `fetch --run-cache` brings back whole ones. With a remote, its entries are
//! sorted the same way by what stays on the remote.

use rustc_hash::{FxHashMap, FxHashSet};
use serde::Serialize;

use crate::error::Result;
use crate::git::{Git, GitId};
use crate::manifest::Manifest;
use crate::object::ObjectId;
use crate::pipeline::lock::{Entry, StageLock};
use crate::pointer::Kind;
use crate::progress::Progress;
use crate::repo::Repo;
use crate::snapshot::{Objects, Snapshot, short};

/// What to keep, and where to delete.
#[derive(Debug, Clone, Default)]
pub struct GcOptions {
    /// Keep also what these revisions reference (named ones, every branch tip,
    /// every tag, every commit).
    pub revisions: crate::snapshot::Revisions,
    /// Also delete from this remote (`Some(None)`: the default remote).
    pub remote: Option<Option<String>>,
    /// Delete from the cache only the objects this remote has (`Some(None)`: the
    /// default remote), and keep the others, as DVC's `--not-in-remote`. A kept
    /// manifest keeps its files too.
    pub not_in_remote: Option<Option<String>>,
    /// Only work out the plan: delete nothing, not even leftovers of killed writers.
    pub dry_run: bool,
    /// Other dvt repositories whose data to keep as well, as this one's: their
    /// workspace, HEAD, experiments and the revisions `revisions` selects
    /// there (DVC's `--projects`; those that share the cache are kept anyway).
    pub projects: Vec<std::path::PathBuf>,
    /// Transfers at once with the remote (default: its `jobs`).
    pub jobs: Option<usize>,
    /// A revision whose pointers cannot be read (a malformed pointer, a
    /// directory's manifest nowhere) is skipped, with a warning, instead of
    /// stopping gc (DVC's `--skip-failed`); what it alone needs is deleted.
    pub skip_failed: bool,
    /// On the remote, unreferenced objects written less than this long ago are
    /// kept (a directory's manifest with every file it lists): another clone
    /// may have pushed them for a commit this repository has not seen yet.
    /// `None`: the config's `gc.grace`, else [`DEFAULT_REMOTE_GRACE`]; zero
    /// keeps none (DVC's behaviour).
    pub remote_grace: Option<std::time::Duration>,
}

/// How long unreferenced objects stay on a remote after they were written there,
/// unless `gc --grace` says otherwise: a day, time enough between a `dvt push`
/// in one clone and the `git push` of the commit that names its data.
pub const DEFAULT_REMOTE_GRACE: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// A span of time as `30m`, `24h`, `7d`, `2w` (also `s`), or `0`: as a duration.
pub fn parse_span(s: &str) -> Result<std::time::Duration, String> {
    let bad =
        || format!("`{s}` is not a span of time: give a number and a unit (s, m, h, d, w), as `24h` or `7d`, or `0`");
    if s == "0" {
        return Ok(std::time::Duration::ZERO);
    }
    let unit = match s.chars().last() {
        Some('s') => 1,
        Some('m') => 60,
        Some('h') => 3600,
        Some('d') => 86_400,
        Some('w') => 7 * 86_400,
        _ => return Err(bad()),
    };
    let n: u64 = s[..s.len() - 1].parse().map_err(|_| bad())?;
    n.checked_mul(unit).map(std::time::Duration::from_secs).ok_or_else(bad)
}

/// Unreferenced objects that a remote keeps because they were written lately.
#[derive(Debug, Clone, Serialize)]
pub struct Recent {
    /// How many: those written within the grace period, and the files their
    /// directories list.
    pub kept: usize,
    /// Their stored bytes.
    pub bytes: u64,
    /// The grace period, in seconds.
    pub grace_secs: u64,
}

/// A revision `--skip-failed` skipped, or one of a remote-tracking branch
/// whose pointers could not be read.
#[derive(Debug, Clone, Serialize)]
pub struct SkippedRevision {
    /// The repository's root, when it is not this one (`--projects`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repo: Option<std::path::PathBuf>,
    /// The commit, short.
    pub rev: String,
    /// Whether it was kept only as a commit of a remote-tracking branch (see
    /// [`GcPlan::remote_tracking_revisions`]): skipped without `--skip-failed`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub remote_tracking: bool,
    /// Why its pointers could not be read.
    pub error: String,
}

/// Objects to delete from one place.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Doomed {
    /// Unreferenced manifests: deleted first.
    pub manifests: Vec<ObjectId>,
    /// Other unreferenced objects.
    pub files: Vec<ObjectId>,
    /// Their stored bytes.
    pub bytes: u64,
}

impl Doomed {
    /// How many objects.
    pub fn count(&self) -> usize {
        self.manifests.len() + self.files.len()
    }
}

/// Unreferenced objects that `gc --not-in-remote` keeps.
#[derive(Debug, Clone, Serialize)]
pub struct Unpushed {
    /// The remote that lacks them.
    pub remote: String,
    /// How many objects were kept: those the remote lacks, and the files of such
    /// manifests.
    pub kept: usize,
}

/// A branch or tag gc does not keep whose data is among what it deletes.
#[derive(Debug, Clone, Serialize)]
pub struct NeededBy {
    /// Branch or tag.
    pub kind: crate::git::RefKind,
    /// Its name.
    pub name: String,
    /// How many of the objects to delete (from the cache or the remote) it needs.
    pub objects: usize,
}

/// What gc would delete (or did).
#[derive(Debug, Clone, Serialize)]
pub struct GcPlan {
    /// Revisions whose pointers were kept, besides the workspace.
    pub kept_revisions: usize,
    /// Of those, with `--all-branches` or `--all-commits`: the commits only
    /// remote-tracking branches (`origin/…`) reach, kept as local branches are,
    /// since they are others' work that this clone has fetched.
    pub remote_tracking_revisions: usize,
    /// With `--all-branches` or `--all-commits` and a remote to delete from:
    /// how long ago git last fetched here (seconds), when that was over a day
    /// ago; what others pushed since is not in the remote-tracking branches.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stale_fetch_secs: Option<u64>,
    /// Local branches and tags not kept whose data is among what is deleted
    /// (`--all-branches`, `--all-tags` keep them).
    pub needed_by: Vec<NeededBy>,
    /// Objects referenced.
    pub kept_objects: usize,
    /// From the cache.
    pub cache: Doomed,
    /// With `not_in_remote`: what was kept because that remote lacks it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_in_remote: Option<Unpushed>,
    /// Other repositories sharing the cache, whose workspace and HEAD were kept.
    pub shared_with: Vec<std::path::PathBuf>,
    /// The repositories `--projects` named (their roots), whose data was kept
    /// as this one's.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub projects: Vec<std::path::PathBuf>,
    /// Repositories listed as sharing the cache that no longer do (deleted, or
    /// using another cache): taken off the list.
    pub forgotten: Vec<std::path::PathBuf>,
    /// With `skip_failed`: the revisions skipped, and why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<SkippedRevision>,
    /// The remote's name, when one was asked for.
    pub remote: Option<String>,
    /// From the remote.
    pub remote_objects: Doomed,
    /// What the remote keeps because it was written lately (see
    /// [`GcOptions::remote_grace`]), when it keeps any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_recent: Option<Recent>,
    /// The keys of the run-cache entries to delete, whose outs' objects are
    /// among those deleted from the cache or already gone.
    pub run_cache_entries: Vec<String>,
    /// The same on the remote: entries whose outs' objects are among those
    /// deleted from the remote or not there.
    pub remote_run_cache_entries: Vec<String>,
}

impl GcPlan {
    /// Whether it deletes anything.
    pub fn deletes(&self) -> bool {
        self.cache.count()
            + self.remote_objects.count()
            + self.run_cache_entries.len()
            + self.remote_run_cache_entries.len()
            > 0
    }
}

/// Everything the kept pointers reference.
struct Referenced {
    keep: FxHashSet<ObjectId>,
    revisions: usize,
    remote_tracking: usize,
    shared_with: Vec<std::path::PathBuf>,
    projects: Vec<std::path::PathBuf>,
    forgotten: Vec<std::path::PathBuf>,
    skipped: Vec<SkippedRevision>,
}

/// Everything the kept pointers reference, this repository's and those of the
/// other repositories sharing its cache.
fn referenced(repo: &Repo, opts: &GcOptions, objects: &Objects<'_>) -> Result<Referenced> {
    let mut keep = FxHashSet::default();
    let mut manifests_done = FxHashSet::default();
    let mut add = |snap: &Snapshot<'_>, keep: &mut FxHashSet<ObjectId>| -> Result<()> {
        for t in snap.pointers()? {
            keep.insert(t.pointer.id);
            if t.pointer.kind == Kind::Dir && manifests_done.insert(t.pointer.id) {
                // Never stored (`repro --no-commit`, `add --no-commit`) and
                // nowhere to be read, but standing in the workspace as
                // recorded: its manifest is made from there, and what of it
                // the cache holds is kept.
                let from_workspace = || {
                    let r = snap.repo();
                    let found = (snap.source() == &crate::snapshot::Source::Workspace).then(|| {
                        crate::ops::add::recorded_manifest_from_workspace(
                            r,
                            &t,
                            &r.stat_cache(),
                            &crate::workspace::Counters::default(),
                            &crate::progress::NoProgress,
                        )
                    });
                    found.and_then(|f| f.ok().flatten())
                };
                match objects.manifest(&t) {
                    Ok(m) => keep.extend(m.files.iter().map(|e| e.id)),
                    // Imported from a URL without downloading: nothing of it is
                    // stored, and its URL gives it again.
                    Err(e) if crate::snapshot::not_downloaded(&t, &e) => {}
                    Err(_) if let Some(m) = from_workspace() => keep.extend(m.files.iter().map(|e| e.id)),
                    // Say what was being looked for when the remote failed.
                    Err(e) if !crate::snapshot::is_missing(&e) && !repo.cache().contains(&t.pointer.id) => {
                        return Err(crate::error::CacheError::ManifestNowhere {
                            id: t.pointer.id,
                            path: t.data_rel.clone(),
                            message: crate::error_chain(&e),
                        }
                        .into());
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    };
    let mut skipped = Vec::new();
    // A repository's workspace and the commits `opts` selects there; how many,
    // and how many of them only remote-tracking branches reach.
    let mut add_repo =
        |r: &Repo, keep: &mut FxHashSet<ObjectId>, skipped: &mut Vec<SkippedRevision>| -> Result<(usize, usize)> {
            // A directory's manifest nowhere to be read: say that gc stopped.
            add(&Snapshot::workspace(r), keep).map_err(|e| match e {
                crate::Error::Cache(_) | crate::Error::Remote(_) => crate::error::RepoError::GcWorkspace {
                    message: crate::error_chain(&e),
                }
                .into(),
                e => e,
            })?;
            match Git::open(r.root()) {
                Ok(git) => {
                    let git = std::rc::Rc::new(git);
                    // Experiments are kept until `dvt exp remove`: their data may exist nowhere else.
                    let revisions = crate::snapshot::Revisions {
                        all_experiments: true,
                        ..opts.revisions.clone()
                    };
                    let commits: Vec<GitId> = revisions.commits(&git, true)?;
                    let tracking = remote_tracking_commits(&git, &opts.revisions, &commits)?;
                    let all = commits
                        .iter()
                        .map(|c| (c, false))
                        .chain(tracking.iter().map(|c| (c, true)));
                    for (c, remote_tracking) in all {
                        match add(&Snapshot::at_commit(r, git.clone(), short(c), *c), keep) {
                            Err(e) if opts.skip_failed || remote_tracking => skipped.push(SkippedRevision {
                                repo: (r.root() != repo.root()).then(|| r.root().to_path_buf()),
                                rev: short(c),
                                remote_tracking,
                                error: crate::error_chain(&e),
                            }),
                            Err(e) => {
                                return Err(crate::error::RepoError::GcRevision {
                                    rev: short(c),
                                    message: crate::error_chain(&e),
                                }
                                .into());
                            }
                            Ok(()) => {}
                        }
                    }
                    Ok((commits.len() + tracking.len(), tracking.len()))
                }
                // Without git there is only the workspace; asking for history is an error.
                Err(e) if opts.revisions.any() => Err(e),
                Err(_) => Ok((0, 0)),
            }
        };
    let (commits, remote_tracking) = add_repo(repo, &mut keep, &mut skipped)?;
    let mut projects: Vec<std::path::PathBuf> = Vec::new();
    for dir in &opts.projects {
        let dir = crate::repo::normalize(dir);
        if !dir.is_dir() {
            return Err(crate::error::PathError::NotFound { path: dir }.into());
        }
        let project = Repo::open(&dir)?;
        if project.root() == repo.root() || projects.iter().any(|p| p == project.root()) {
            continue;
        }
        add_repo(&project, &mut keep, &mut skipped)?;
        projects.push(project.root().to_path_buf());
    }
    let (mut users, forgotten) = repo.cache_users()?;
    users.retain(|u| !projects.iter().any(|p| p == u.root()));
    for user in &users {
        add(&Snapshot::workspace(user), &mut keep)?;
        if let Ok(git) = Git::open(user.root()) {
            let git = std::rc::Rc::new(git);
            let experiments = crate::snapshot::Revisions {
                all_experiments: true,
                ..Default::default()
            };
            for c in experiments.commits(&git, true)? {
                add(&Snapshot::at_commit(user, git.clone(), short(&c), c), &mut keep)?;
            }
        }
    }
    Ok(Referenced {
        keep,
        revisions: commits,
        remote_tracking,
        shared_with: users.iter().map(|u| u.root().to_path_buf()).collect(),
        projects,
        forgotten,
        skipped,
    })
}

/// With `--all-branches` (`--all-commits`): the tips of the remote-tracking
/// branches (and every commit they reach) that are not among `commits` already.
/// `git gc` counts them as reachable; DVC's gc does not, so a `gc -r -A` there
/// deletes the data of every branch a colleague pushed that is not checked out
/// here.
fn remote_tracking_commits(git: &Git, revisions: &crate::snapshot::Revisions, commits: &[GitId]) -> Result<Vec<GitId>> {
    if !(revisions.all_branches || revisions.all_commits) {
        return Ok(Vec::new());
    }
    let mut tips: Vec<GitId> = git.all_remote_branches()?.into_iter().map(|(_, c)| c).collect();
    if revisions.all_commits && !tips.is_empty() {
        tips = git.walk(&tips)?.into_iter().map(|c| c.id).collect();
    }
    let known: FxHashSet<&GitId> = commits.iter().collect();
    tips.retain(|c| !known.contains(c));
    tips.sort();
    tips.dedup();
    Ok(tips)
}

/// Takes the repo lock, works out what to delete, asks `confirm` (which may print
/// the plan; `false` deletes nothing), then deletes it. Returns the plan and
/// whether it was carried out.
pub fn gc(
    repo: &Repo,
    opts: &GcOptions,
    confirm: &mut dyn FnMut(&GcPlan) -> Result<bool>,
    progress: &dyn Progress,
) -> Result<(GcPlan, bool)> {
    let _lock = repo.lock_cache_alone("dvt gc")?;
    let plan = gc_plan(repo, opts, progress)?;
    let deleting = plan.deletes();
    if deleting {
        if !confirm(&plan)? {
            return Ok((plan, false));
        }
        apply(repo, &plan, opts.jobs, progress)?;
    }
    // What killed writers left in the cache goes too, with or without anything to delete.
    if !opts.dry_run {
        repo.forget_cache_users(&plan.forgotten)?;
        repo.cache().remove_leftovers()?;
        if let Some(name) = &plan.remote {
            Objects::new(repo, Some(name)).remote()?.remove_leftovers()?;
        }
    }
    Ok((plan, deleting))
}

/// Works out what gc would delete; deletes nothing.
pub fn gc_plan(repo: &Repo, opts: &GcOptions, progress: &dyn Progress) -> Result<GcPlan> {
    let remote_name = opts.remote.clone().flatten();
    let objects = Objects::new(repo, remote_name.as_deref()).with_jobs(opts.jobs);
    progress.start("finding referenced objects", 0, false);
    let Referenced {
        mut keep,
        revisions: kept_revisions,
        remote_tracking: remote_tracking_revisions,
        shared_with,
        projects,
        forgotten,
        skipped,
    } = referenced(repo, opts, &objects)?;
    progress.finish();
    let cache = repo.cache();
    let riders = riders(repo);
    let (ids, _strays) = cache.list()?;
    let not_in_remote = match &opts.not_in_remote {
        Some(name) => Some(keep_unpushed(
            repo,
            name.as_deref(),
            &ids,
            &mut keep,
            opts.jobs,
            progress,
        )?),
        None => None,
    };
    let run_cache_entries = sort_runs(repo, &riders, &mut keep)?;
    let mut local = Doomed::default();
    for id in ids.into_iter().filter(|id| !keep.contains(id)) {
        local.bytes += cache.stored_len(&id).unwrap_or(0);
        if crate::manifest::looks_like(&cache.peek(&id, 16).unwrap_or_default()) {
            local.manifests.push(id);
        } else {
            local.files.push(id);
        }
    }
    let mut remote_objects = Doomed::default();
    let mut remote_run_cache_entries = Vec::new();
    let mut remote = None;
    let mut remote_recent = None;
    if opts.remote.is_some() {
        let r = objects.remote()?;
        remote = Some(r.name.clone());
        progress.start(&format!("listing remote `{}`", r.name), 0, false);
        let listed = r.block_on(r.list_all_dated())?;
        let grace = opts
            .remote_grace
            .or_else(|| repo.config().gc.grace())
            .unwrap_or(DEFAULT_REMOTE_GRACE);
        remote_recent = keep_recent(&objects, &listed, grace, &mut keep)?;
        let there: FxHashSet<ObjectId> = listed.iter().map(|(id, _, _)| *id).collect();
        remote_run_cache_entries = sort_remote_runs(&objects, &riders, &there, &mut keep)?;
        progress.finish();
        let doomed: Vec<(ObjectId, u64)> = listed
            .into_iter()
            .filter(|(id, _, _)| !keep.contains(id))
            .map(|(id, size, _)| (id, size))
            .collect();
        let manifests = manifests_among(&objects, doomed.iter().map(|(id, _)| *id))?;
        for (id, size) in doomed {
            remote_objects.bytes += size;
            match manifests.contains(&id) {
                true => remote_objects.manifests.push(id),
                false => remote_objects.files.push(id),
            }
        }
    }
    // Branches others pushed since the last fetch are not known here: said
    // when that was more than a day ago.
    let stale_fetch_secs = (opts.remote.is_some() && (opts.revisions.all_branches || opts.revisions.all_commits))
        .then(|| Git::open(repo.root()).ok()?.last_fetch()?.elapsed().ok())
        .flatten()
        .map(|age| age.as_secs())
        .filter(|&secs| secs > 24 * 3600);
    let doomed: FxHashSet<ObjectId> = [&local, &remote_objects]
        .iter()
        .flat_map(|d| d.files.iter().chain(&d.manifests))
        .copied()
        .collect();
    let needed_by = needed_elsewhere(repo, &opts.revisions, &doomed);
    Ok(GcPlan {
        kept_revisions,
        remote_tracking_revisions,
        stale_fetch_secs,
        needed_by,
        kept_objects: keep.len() - remote_recent.as_ref().map_or(0, |r: &Recent| r.kept),
        cache: local,
        not_in_remote,
        shared_with,
        projects,
        forgotten,
        skipped,
        remote,
        remote_objects,
        remote_recent,
        run_cache_entries,
        remote_run_cache_entries,
    })
}

/// The local branches and tags (those `revisions` does not keep) whose data
/// is among `doomed`, with how much of it each needs: a branch never pushed
/// may have its data nowhere else. Read from the cache alone (a directory
/// whose manifest it lacks counts as its manifest only); a revision that
/// cannot be read is passed over, as this only warns.
fn needed_elsewhere(
    repo: &Repo,
    revisions: &crate::snapshot::Revisions,
    doomed: &FxHashSet<ObjectId>,
) -> Vec<NeededBy> {
    let Some(git) = (!doomed.is_empty() && !revisions.all_commits)
        .then(|| Git::open(repo.root()).ok())
        .flatten()
    else {
        return Vec::new();
    };
    let branches = match revisions.all_branches {
        true => Vec::new(),
        false => git.branches().unwrap_or_default(),
    };
    let tags = match revisions.all_tags {
        true => Vec::new(),
        false => git.tags().unwrap_or_default(),
    };
    let git = std::rc::Rc::new(git);
    // Each directory's files, read once: tags often share a version.
    let mut files_of: FxHashMap<ObjectId, Vec<ObjectId>> = FxHashMap::default();
    let mut out = Vec::new();
    for (kind, (name, commit)) in branches
        .into_iter()
        .map(|b| (crate::git::RefKind::Branch, b))
        .chain(tags.into_iter().map(|t| (crate::git::RefKind::Tag, t)))
    {
        let snap = Snapshot::at_commit(repo, git.clone(), name.clone(), commit);
        let Ok(pointers) = snap.pointers() else { continue };
        let mut needs: FxHashSet<ObjectId> = FxHashSet::default();
        for t in &pointers {
            needs.insert(t.pointer.id);
            if t.pointer.kind == Kind::Dir {
                let files = files_of.entry(t.pointer.id).or_insert_with(|| {
                    t.manifest(repo.cache())
                        .map(|m| m.files.iter().map(|e| e.id).collect())
                        .unwrap_or_default()
                });
                needs.extend(files.iter().copied());
            }
        }
        let objects = needs.intersection(doomed).count();
        if objects > 0 {
            out.push(NeededBy { kind, name, objects });
        }
    }
    out
}

/// Which of the remote's objects `ids` are directory manifests, by their first
/// bytes: from the cache when it has them, else ranged reads of the remote,
/// `jobs` at once.
fn manifests_among(objects: &Objects<'_>, ids: impl IntoIterator<Item = ObjectId>) -> Result<FxHashSet<ObjectId>> {
    use futures::StreamExt;
    let cache = objects.cache();
    let (here, there): (Vec<ObjectId>, Vec<ObjectId>) = ids.into_iter().partition(|id| cache.contains(id));
    let mut out: FxHashSet<ObjectId> = here
        .into_iter()
        .filter(|id| crate::manifest::looks_like(&cache.peek(id, 16).unwrap_or_default()))
        .collect();
    if there.is_empty() {
        return Ok(out);
    }
    let r = objects.remote()?;
    let remote: &crate::remote::Remote = &r;
    let heads: Vec<(ObjectId, Result<Vec<u8>>)> = r.block_on(
        futures::stream::iter(there)
            .map(|id| async move { (id, remote.peek(&id, 16).await) })
            .buffer_unordered(r.jobs)
            .collect(),
    );
    for (id, head) in heads {
        if crate::manifest::looks_like(&head?) {
            out.insert(id);
        }
    }
    Ok(out)
}

/// Adds to `keep` the objects of the remote's listing that it lacks and that
/// were written there less than `grace` ago, with every file of such a
/// directory's manifest (a manifest present means its files are, which `push`
/// relies on); returns what that kept, if anything. An object whose time the
/// store does not give is not kept for it.
fn keep_recent(
    objects: &Objects<'_>,
    listed: &[crate::remote::Dated],
    grace: std::time::Duration,
    keep: &mut FxHashSet<ObjectId>,
) -> Result<Option<Recent>> {
    let Some(cutoff) = std::time::SystemTime::now()
        .checked_sub(grace)
        .filter(|_| !grace.is_zero())
    else {
        return Ok(None);
    };
    let unreferenced: Vec<(ObjectId, u64)> = listed
        .iter()
        .filter(|(id, _, _)| !keep.contains(id))
        .map(|&(id, size, _)| (id, size))
        .collect();
    let recent: Vec<ObjectId> = listed
        .iter()
        .filter(|(id, _, written)| !keep.contains(id) && written.is_some_and(|t| t >= cutoff))
        .map(|(id, _, _)| *id)
        .collect();
    let r = objects.remote()?;
    let cache = objects.cache();
    keep.extend(recent.iter().copied());
    for id in manifests_among(objects, recent)? {
        let bytes = match cache.contains(&id) {
            true => cache.read(&id, None)?,
            false => r.block_on(r.read(id))?,
        };
        keep.extend(Manifest::parse(&bytes, &id)?.files.iter().map(|e| e.id));
    }
    let kept: Vec<&(ObjectId, u64)> = unreferenced.iter().filter(|(id, _)| keep.contains(id)).collect();
    Ok((!kept.is_empty()).then(|| Recent {
        kept: kept.len(),
        bytes: kept.iter().map(|(_, size)| size).sum(),
        grace_secs: grace.as_secs(),
    }))
}

/// Adds to `keep` the objects of `ids` that it lacks and that remote `name` (the
/// default when `None`) does not have, with the files of such manifests; returns
/// what that kept.
fn keep_unpushed(
    repo: &Repo,
    name: Option<&str>,
    ids: &[ObjectId],
    keep: &mut FxHashSet<ObjectId>,
    jobs: Option<usize>,
    progress: &dyn Progress,
) -> Result<Unpushed> {
    let remote = crate::remote::Remote::open(repo, name, jobs, false)?;
    let doomed: Vec<ObjectId> = ids.iter().filter(|id| !keep.contains(id)).copied().collect();
    progress.start(
        &format!("checking remote `{}`", remote.name),
        doomed.len() as u64,
        false,
    );
    let there = remote.block_on(remote.present(&doomed, &|n| progress.inc(n)))?;
    progress.finish();
    let cache = repo.cache();
    let before = keep.len();
    for id in doomed.into_iter().filter(|id| !there.contains(id)) {
        keep.insert(id);
        if crate::manifest::looks_like(&cache.peek(&id, 16).unwrap_or_default())
            && let Ok(m) = cache.read(&id, None).and_then(|b| Manifest::parse(&b, &id))
        {
            keep.extend(m.files.iter().map(|e| e.id));
        }
    }
    Ok(Unpushed {
        remote: remote.name.clone(),
        kept: keep.len() - before,
    })
}

/// The paths of the pipeline's metrics and plots outs (git keeps those files;
/// a run-cache entry keeps the cache's copies of them), or none without a pipeline.
fn riders(repo: &Repo) -> FxHashSet<String> {
    match crate::pipeline::Pipeline::load(repo) {
        Ok(Some(p)) => p
            .stages
            .values()
            .flat_map(|s| s.outs.iter().filter(|o| !o.cache).map(|o| o.path.clone()))
            .collect(),
        _ => FxHashSet::default(),
    }
}

/// What run `done` keeps if it stays: `Some` with the objects of its metrics
/// and plots outs (`riders`) when every out is `present` and every data out is
/// in `keep`; `None` when it could restore nothing and goes. `files` reads a
/// directory rider's manifest.
fn run_keeps(
    done: &StageLock,
    riders: &FxHashSet<String>,
    keep: &FxHashSet<ObjectId>,
    present: impl Fn(&ObjectId) -> bool,
    files: impl Fn(&Entry) -> Result<Manifest>,
) -> Option<Vec<ObjectId>> {
    let whole = done
        .outs
        .iter()
        .all(|o| present(&o.id) && (riders.contains(&o.path) || keep.contains(&o.id)));
    if !whole {
        return None;
    }
    let mut kept = Vec::new();
    for o in done.outs.iter().filter(|o| riders.contains(&o.path)) {
        kept.push(o.id);
        if o.kind == Kind::Dir {
            // A manifest that cannot be read: the entry restores nothing.
            kept.extend(files(o).ok()?.files.iter().map(|e| e.id));
        }
    }
    Some(kept)
}

/// The run-cache entries to delete: those with a data out whose objects are
/// not kept, or an out whose object the cache lacks. The others keep their
/// metrics and plots files' copies (added to `keep`); which outs those are is
/// read from the pipeline, by path.
fn sort_runs(repo: &Repo, riders: &FxHashSet<String>, keep: &mut FxHashSet<ObjectId>) -> Result<Vec<String>> {
    let cache = repo.cache();
    let mut doomed = Vec::new();
    for (key, done) in crate::pipeline::run_cache::entries(cache.root()) {
        let files = |o: &Entry| Manifest::parse(&cache.read(&o.id, Some(&o.path))?, &o.id);
        match run_keeps(&done, riders, keep, |id| cache.contains(id), files) {
            Some(ids) => keep.extend(ids),
            None => doomed.push(key),
        }
    }
    Ok(doomed)
}

/// The same for the remote's entries, whose objects must be on the remote
/// (`there`). An entry that cannot be read as one is left alone (a fetch skips
/// it; a later dvt may have written it).
fn sort_remote_runs(
    objects: &Objects<'_>,
    riders: &FxHashSet<String>,
    there: &FxHashSet<ObjectId>,
    keep: &mut FxHashSet<ObjectId>,
) -> Result<Vec<String>> {
    let r = objects.remote()?;
    let mut entries = r.block_on(async { r.get_runs(r.run_keys().await?).await })?;
    entries.sort();
    let mut doomed = Vec::new();
    for (key, text) in entries {
        let Some(done) = text.as_deref().and_then(crate::pipeline::run_cache::parse) else {
            continue;
        };
        let files = |o: &Entry| -> Result<Manifest> {
            objects.ensure(&o.id, Some(&o.path))?;
            Manifest::parse(&objects.cache().read(&o.id, Some(&o.path))?, &o.id)
        };
        match run_keeps(&done, riders, keep, |id| there.contains(id), files) {
            Some(ids) => keep.extend(ids),
            None => doomed.push(key),
        }
    }
    Ok(doomed)
}

/// Deletes what `plan` lists: on the remote first (run-cache entries, manifests,
/// then files), then in the cache (the same).
fn apply(repo: &Repo, plan: &GcPlan, jobs: Option<usize>, progress: &dyn Progress) -> Result<()> {
    if let Some(name) = &plan.remote {
        let objects = Objects::new(repo, Some(name)).with_jobs(jobs);
        let r = objects.remote()?;
        let d = &plan.remote_objects;
        progress.start(&format!("deleting from `{name}`"), d.count() as u64, false);
        let tick = || progress.inc(1);
        // Entries first: one present always means its outs are there.
        r.block_on(r.delete_runs(&plan.remote_run_cache_entries))?;
        r.block_on(r.delete(&d.manifests, &tick))?;
        r.block_on(r.delete(&d.files, &tick))?;
        progress.finish();
    }
    let cache = repo.cache();
    for key in &plan.run_cache_entries {
        crate::pipeline::run_cache::remove(cache.root(), key)?;
    }
    progress.start("deleting from the cache", plan.cache.count() as u64, false);
    let tick = || progress.inc(1);
    cache.delete_many(&plan.cache.manifests, &tick)?;
    cache.delete_many(&plan.cache.files, &tick)?;
    progress.finish();
    Ok(())
}
