//! Experiments outside the workspace, as DVC runs them: `dvt exp run --temp`
//! and `dvt queue start --temp|-j N`. Each runs in a linked git worktree under
//! `.dvt/tmp/exps/`, made for it and deleted after it: its HEAD is the commit
//! the experiment was queued (or started) on, its files the work tree as it was
//! then (a snapshot commit, so uncommitted code changes are in it), and the
//! data of its pointers is checked out from this repository's cache, which the
//! worktree shares (so do git's objects and refs: the experiment's commit and
//! `refs/exps/NAME` land in this repository). The workspace is never touched,
//! so several experiments can run at once, and the user can go on working
//! meanwhile.

use std::collections::{BTreeMap, VecDeque};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use crate::error::Result;
use crate::git::{Git, GitId};
use crate::ops::exp::{ExpRunOptions, ExpRunReport, OnSet, Queued};
use crate::ops::repro::{OnRun, ReproOptions};
use crate::progress::{NoProgress, Progress};
use crate::repo::{DVT_DIR, Repo};

/// Where experiments run outside the workspace.
fn worktrees_dir(repo: &Repo) -> Result<PathBuf> {
    let dir = repo.tmp_dir()?.join("exps");
    fs_err::create_dir_all(&dir)?;
    Ok(dir)
}

/// Where `dvt queue start --temp|-j N` writes what each queued experiment's
/// stages print (`ID.log`, read by `dvt queue logs ID`).
pub fn log_path(repo: &Repo, id: &str) -> Result<PathBuf> {
    let dir = repo.tmp_dir()?.join("exp-logs");
    fs_err::create_dir_all(&dir)?;
    Ok(dir.join(format!("{id}.log")))
}

/// `ID.pid` beside the log: the process group of the stage command queued
/// experiment `id` runs now ([`ReproOptions::group`]), for [`kill`]; `ID.kill`
/// beside it asks the experiment to stop.
fn pid_path(repo: &Repo, id: &str) -> Result<PathBuf> {
    Ok(log_path(repo, id)?.with_extension("pid"))
}

/// [`pid_path`] for an experiment that starts now, with the files a run
/// before it left cleared.
pub(crate) fn group_file(repo: &Repo, id: &str) -> Result<PathBuf> {
    let file = pid_path(repo, id)?;
    for stale in [crate::ops::repro::kill_request(&file), file.clone()] {
        match fs_err::remove_file(stale) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
            _ => {}
        }
    }
    Ok(file)
}

/// How the names git knows our worktrees by end: a mark of this dvt root
/// (several dvt roots may share one git repository).
fn root_mark(repo: &Repo) -> String {
    let hash = blake3::hash(repo.root().as_os_str().as_encoded_bytes()).to_hex();
    format!("-{}", &hash[..8])
}

/// The first line of queued experiment `q`'s log, by which [`find_log`] finds
/// it by name once it has left the queue.
fn log_header(q: &Queued) -> String {
    let name = q.name.as_deref().map(|n| format!(" `{n}`")).unwrap_or_default();
    format!("Queued experiment {}{name}, -S {}\n", q.id, q.set_params.join(" -S "))
}

/// The log of the queued experiment numbered or named `which` (queued or not).
pub fn find_log(repo: &Repo, which: &str) -> Result<Option<PathBuf>> {
    if let Some(q) = crate::ops::exp::queued(repo)?
        .into_iter()
        .find(|q| q.id == which || q.name.as_deref() == Some(which))
    {
        return Ok(Some(log_path(repo, &q.id)?).filter(|p| p.exists()));
    }
    let by_id = log_path(repo, which)?;
    if by_id.exists() {
        return Ok(Some(by_id));
    }
    let named = format!(" `{which}`, -S");
    for entry in fs_err::read_dir(by_id.parent().unwrap_or(Path::new(".")))? {
        let path = entry?.path();
        let first = fs_err::read_to_string(&path).unwrap_or_default();
        if first.lines().next().is_some_and(|l| l.contains(&named)) {
            return Ok(Some(path));
        }
    }
    Ok(None)
}

/// The name git knows worktree `name` by: `dvt-NAME-MARK`.
fn git_name(repo: &Repo, name: &str) -> String {
    format!("dvt-{name}{}", root_mark(repo))
}

/// `.dvt/tmp/exps/NAME.lock`, held while an experiment runs as `NAME`
/// (`queue-ID` for a queued one, wherever it runs); deleted when dropped.
pub(crate) struct Held {
    path: PathBuf,
    name: String,
    _file: crate::repo::LockFile,
}

impl Drop for Held {
    fn drop(&mut self) {
        let _ = fs_err::remove_file(&self.path);
    }
}

/// Holds the lock of experiment `NAME` (see [`Held`]). `queue status` and
/// [`sweep`] take it for a moment to see whether it is held: that is waited out.
pub(crate) fn hold(repo: &Repo, name: &str, what: &str) -> Result<Held> {
    let path = worktrees_dir(repo)?.join(format!("{name}.lock"));
    let file = repo.lock_named_patiently(&format!("exps/{name}"), what)?;
    Ok(Held {
        path,
        name: name.to_string(),
        _file: file,
    })
}

/// What a queued experiment is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum QueueState {
    /// Waiting for `queue start`.
    Queued,
    /// Running, in a worktree or the workspace.
    Running,
    /// Waiting again, having failed the last time it ran.
    Failed,
}

impl std::fmt::Display for QueueState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(match self {
            QueueState::Queued => "queued",
            QueueState::Running => "running",
            QueueState::Failed => "failed",
        })
    }
}

/// What queued experiment `q` is doing.
pub fn state(repo: &Repo, q: &Queued) -> Result<QueueState> {
    Ok(match (is_running(repo, &q.id)?, &q.failed) {
        (true, _) => QueueState::Running,
        (false, Some(_)) => QueueState::Failed,
        (false, None) => QueueState::Queued,
    })
}

/// Holds the lock of every experiment run as one is marked running (its lock
/// file present), so that none is running while the caller holds them; fails,
/// naming the holder, if one is running.
pub(crate) fn hold_all_runs(repo: &Repo, what: &str) -> Result<Vec<crate::repo::LockFile>> {
    let mut held = Vec::new();
    for entry in fs_err::read_dir(worktrees_dir(repo)?)? {
        let path = entry?.path();
        let Some(name) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".lock"))
        else {
            continue;
        };
        held.push(repo.lock_named(&format!("exps/{name}"), what)?);
    }
    Ok(held)
}

/// Whether queued experiment `id` is running now.
fn is_running(repo: &Repo, id: &str) -> Result<bool> {
    let name = format!("queue-{id}");
    if !worktrees_dir(repo)?.join(format!("{name}.lock")).exists() {
        return Ok(false);
    }
    match repo.lock_named(&format!("exps/{name}"), "dvt queue status") {
        Ok(_free) => Ok(false),
        Err(crate::Error::Repo(crate::error::RepoError::Locked { .. })) => Ok(true),
        Err(e) => Err(e),
    }
}

/// A worktree an experiment runs in; deleted, with git's record of it, when
/// dropped. Its lock ([`hold`], held by the caller from before it is made
/// until after it is gone) tells [`sweep`] it is in use.
struct Worktree<'a> {
    git: &'a Git,
    dir: PathBuf,
    _lock: &'a Held,
}

impl Worktree<'_> {
    fn add<'a>(repo: &Repo, git: &'a Git, lock: &'a Held, commit: GitId, files_of: GitId) -> Result<Worktree<'a>> {
        let name = &lock.name;
        let dir = worktrees_dir(repo)?.join(name);
        // What a killed run left under this name.
        git.remove_worktree(&dir)?;
        let worktree = Worktree { git, dir, _lock: lock };
        // Ctrl-C takes the files away at once; git's record of them goes at the next run.
        crate::fsutil::remove_if_interrupted(&worktree.dir);
        git.add_worktree(&worktree.dir, &git_name(repo, name), commit, files_of)?;
        Ok(worktree)
    }
}

impl Drop for Worktree<'_> {
    fn drop(&mut self) {
        // Interrupted: the handler deletes the files (and counts them), and git's
        // record goes at the next run.
        if !crate::fsutil::interrupted() {
            let _ = self.git.remove_worktree(&self.dir);
        }
    }
}

/// Deletes the worktrees killed runs left (those whose lock nobody holds), and
/// git's records of ours whose directory is gone.
fn sweep(repo: &Repo, git: &Git) -> Result<()> {
    sweep_worktrees(repo, git)?;
    forget_gone_worktrees(repo, git)
}

/// `dvt exp clean`: deletes the worktrees killed experiment runs left under
/// `.dvt/tmp/exps` (never one a run is using) and git's records of them, as
/// `dvc exp clean` does DVC's temporary files; queued experiments stay
/// queued. Returns how many worktrees went.
pub fn clean(repo: &Repo) -> Result<usize> {
    let git = Git::open(repo.root())?;
    let removed = sweep_worktrees(repo, &git)?;
    forget_gone_worktrees(repo, &git)?;
    Ok(removed)
}

/// Deletes the worktrees killed runs left (those whose lock nobody holds);
/// how many.
fn sweep_worktrees(repo: &Repo, git: &Git) -> Result<usize> {
    let mut removed = 0;
    let dir = worktrees_dir(repo)?;
    for entry in fs_err::read_dir(&dir)? {
        let path = entry?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()).map(str::to_string) else {
            continue;
        };
        if !path.is_dir() {
            continue;
        }
        if let Ok(_lock) = repo.lock_named(&format!("exps/{name}"), "deleting a worktree a killed run left") {
            git.remove_worktree(&path)?;
            let _ = fs_err::remove_file(path.with_extension("lock"));
            removed += 1;
        }
    }
    Ok(removed)
}

/// Deletes git's records of the worktrees of this repository's experiments
/// whose directory is gone (`git worktree prune` would, for ours only).
pub(crate) fn forget_gone_worktrees(repo: &Repo, git: &Git) -> Result<()> {
    let mark = root_mark(repo);
    let records = git.gix().common_dir().join("worktrees");
    let Ok(entries) = fs_err::read_dir(&records) else {
        return Ok(());
    };
    for entry in entries {
        let admin = entry?.path();
        let ours = admin
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("dvt-") && n.ends_with(&mark));
        let gone = fs_err::read_to_string(admin.join("gitdir"))
            .map(|d| !Path::new(d.trim()).exists())
            .unwrap_or(true);
        if ours && gone {
            fs_err::remove_dir_all(&admin)?;
        }
    }
    Ok(())
}

/// Runs the experiment `opts` in a new worktree named as `lock` (which the
/// caller holds, [`hold`]) holding the work tree
/// `snapshot` (a commit on the experiment's baseline; `None`: HEAD's files, on
/// HEAD), with `files` (params files, dvt-root-relative) written over it.
#[allow(clippy::too_many_arguments)]
fn run_in_worktree(
    repo: &Repo,
    lock: &Held,
    snapshot: Option<GitId>,
    files: &BTreeMap<String, String>,
    opts: &ExpRunOptions,
    on_set: OnSet<'_>,
    on_run: OnRun<'_>,
    progress: &dyn Progress,
) -> Result<ExpRunReport> {
    let git = Git::open(repo.root())?;
    let no_commit = crate::ops::exp::no_commit;
    let (baseline, files_of) = match snapshot {
        Some(s) => (git.parent_of(s)?.ok_or_else(no_commit)?, s),
        None => {
            let head = git.head()?.ok_or_else(no_commit)?;
            (head, head)
        }
    };
    let worktree = Worktree::add(repo, &git, lock, baseline, files_of)?;
    let root = match git.prefix().trim_end_matches('/') {
        "" => worktree.dir.clone(),
        prefix => worktree.dir.join(prefix),
    };
    // A commit without `.dvt/` must not let the worktree's commands find ours.
    fs_err::create_dir_all(root.join(DVT_DIR))?;
    let temp = Repo::open_root(root)?.with_cache_of(repo);
    for rel in &opts.copy_paths {
        copy_path(repo.root(), temp.root(), rel)?;
    }
    for (f, text) in files {
        let path = temp.root().join(f);
        if let Some(parent) = path.parent() {
            fs_err::create_dir_all(parent)?;
        }
        crate::fsutil::atomic_write(&path, text.as_bytes())?;
    }
    // The data of the pointers: what stages depend on must be in the cache;
    // the rest, which a command may read without saying so, as far as the
    // cache has it (as DVC's `checkout --allow-missing`). Outs of `dvt.lock`
    // are restored by `repro` itself where their stage need not run.
    let deps: Vec<String> = match crate::pipeline::Pipeline::load(&temp)? {
        Some(p) => p.stages.values().flat_map(|s| s.deps.iter().cloned()).collect(),
        None => Vec::new(),
    };
    let (mut needed, mut other) = (Vec::new(), Vec::new());
    for p in crate::workspace::find_pointers(&temp)? {
        let t = crate::workspace::Tracked::load(&temp, &p)?;
        match deps.iter().any(|d| crate::pipeline::overlaps(&t.data_rel, d)) {
            true => needed.push(t),
            false => other.push(t),
        }
    }
    let _lock = temp.lock("checking out an experiment's data")?;
    if !needed.is_empty() {
        crate::ops::checkout::checkout_tracked(&temp, needed, false, progress)?;
    }
    if !other.is_empty() {
        let _ = crate::ops::checkout::checkout_tracked(&temp, other, false, progress);
    }
    drop(_lock);
    crate::ops::exp::run(&temp, opts, on_set, on_run, progress)
}

/// Copies `rel` (a file, or a directory with all below it) from the workspace
/// at `from` into the worktree at `to`, for `exp run --copy-paths`: replacing
/// what the worktree's commit has there; symbolic links are copied as links.
fn copy_path(from: &Path, to: &Path, rel: &str) -> Result<()> {
    let src = from.join(rel);
    if src.symlink_metadata().is_err() {
        return Err(crate::ops::exp::refused(format!(
            "`--copy-paths {rel}`: there is no `{rel}` in the workspace to copy"
        )));
    }
    for entry in walkdir::WalkDir::new(&src) {
        let entry = entry.map_err(|e| std::io::Error::other(e.to_string()))?;
        let dest = to.join(entry.path().strip_prefix(from).map_err(std::io::Error::other)?);
        let kind = entry.file_type();
        if kind.is_dir() {
            fs_err::create_dir_all(&dest)?;
            continue;
        }
        if let Some(parent) = dest.parent() {
            fs_err::create_dir_all(parent)?;
        }
        if dest.symlink_metadata().is_ok() {
            fs_err::remove_file(&dest)?;
        }
        match kind.is_symlink() {
            true => std::os::unix::fs::symlink(fs_err::read_link(entry.path())?, &dest)?,
            false => {
                fs_err::copy(entry.path(), &dest)?;
            }
        }
    }
    Ok(())
}

/// `dvt exp run --temp`: [`crate::ops::exp::run`] in a worktree made for it
/// from the work tree as it is (on HEAD); the workspace is left as it is.
pub fn run_temp(
    repo: &Repo,
    opts: &ExpRunOptions,
    on_set: OnSet<'_>,
    on_run: OnRun<'_>,
    progress: &dyn Progress,
) -> Result<ExpRunReport> {
    let git = Git::open(repo.root())?;
    crate::ops::exp::check_free(&git, opts.name.as_deref(), opts.force)?;
    let head = git.head()?.ok_or_else(crate::ops::exp::no_commit)?;
    sweep(repo, &git)?;
    let files = crate::ops::exp::params_snapshot(repo, std::slice::from_ref(&opts.set_params))?;
    let snapshot = git.commit_work_tree(head, "dvt exp run --temp: the work tree as it was\n")?;
    let name = format!("run-{}", std::process::id());
    let lock = hold(repo, &name, "an experiment running outside the workspace")?;
    run_in_worktree(repo, &lock, Some(snapshot), &files, opts, on_set, on_run, progress)
}

/// The file `dvt queue stop` writes for the running queue to see.
fn stop_flag(repo: &Repo) -> Result<PathBuf> {
    Ok(worktrees_dir(repo)?.join("stop"))
}

/// `dvt queue stop`: asks the running `queue start` to start no other
/// experiment; those running go on until recorded. `false` if no queue runs.
pub fn request_stop(repo: &Repo) -> Result<bool> {
    if crate::ops::exp::queue_runner(repo)?.is_none() {
        return Ok(false);
    }
    crate::fsutil::atomic_write(&stop_flag(repo)?, b"stop\n")?;
    Ok(true)
}

/// Whether `dvt queue stop` asked the running queue to stop.
pub(crate) fn stop_requested(repo: &Repo) -> Result<bool> {
    Ok(stop_flag(repo)?.exists())
}

/// Forgets a request to stop (the queue starting, or ending).
pub(crate) fn clear_stop(repo: &Repo) -> Result<()> {
    match fs_err::remove_file(stop_flag(repo)?) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
        _ => Ok(()),
    }
}

/// The numbers of the queued experiments running now (for `queue stop --kill`).
pub fn running(repo: &Repo) -> Result<Vec<String>> {
    let mut ids = Vec::new();
    for q in crate::ops::exp::queued(repo)? {
        if state(repo, &q)? == QueueState::Running {
            ids.push(q.id);
        }
    }
    Ok(ids)
}

/// What [`kill`] did to a running queued experiment.
#[derive(Debug)]
pub struct Killed {
    /// The experiment.
    pub queued: Queued,
    /// Whether it stopped running within the time [`kill`] waits.
    pub stopped: bool,
}

/// `dvt queue kill`: stops the running queued experiments numbered or named in
/// `which`: their stage commands, and every process those started, get
/// `SIGTERM` (`SIGKILL` if `force`), and the experiments stay queued, marked
/// failed. Waits up to `wait` for each to stop running. Nothing is signalled
/// if one of `which` is not a running queued experiment.
pub fn kill(repo: &Repo, which: &[String], force: bool, wait: std::time::Duration) -> Result<Vec<Killed>> {
    let waiting = crate::ops::exp::queued(repo)?;
    let mut chosen = Vec::new();
    for w in which {
        let Some(q) = waiting
            .iter()
            .find(|q| q.id == *w || q.name.as_deref() == Some(w.as_str()))
        else {
            return Err(crate::ops::exp::refused(format!(
                "no queued experiment is numbered or named `{w}` (`dvt queue status` lists them)"
            )));
        };
        if state(repo, q)? != QueueState::Running {
            return Err(crate::ops::exp::refused(format!(
                "queued experiment {} is not running (`dvt queue remove {}` takes it off the queue)",
                q.id, q.id
            )));
        }
        chosen.push(q.clone());
    }
    for q in &chosen {
        let file = pid_path(repo, &q.id)?;
        // The request first: a stage starting meanwhile sees it (see `run_stage`).
        crate::fsutil::atomic_write(&crate::ops::repro::kill_request(&file), b"kill\n")?;
        if let Some(id) = fs_err::read_to_string(&file)
            .ok()
            .and_then(|t| t.trim().parse::<u32>().ok())
        {
            crate::process::signal_group(id, force)?;
        }
    }
    let deadline = std::time::Instant::now() + wait;
    let mut killed = Vec::new();
    for queued in chosen {
        let mut stopped = false;
        loop {
            if !is_running(repo, &queued.id)? {
                stopped = true;
                break;
            }
            if std::time::Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        killed.push(Killed { queued, stopped });
    }
    Ok(killed)
}

/// What happens to queued experiments run outside the workspace, as it happens.
#[derive(Debug)]
pub enum QueueEvent<'a> {
    /// One started; what its stages print goes to `log`.
    Started {
        /// The experiment.
        queued: &'a Queued,
        /// Its log.
        log: &'a Path,
    },
    /// One was recorded, and left the queue.
    Done {
        /// The experiment.
        queued: &'a Queued,
        /// What running it did.
        report: &'a ExpRunReport,
    },
    /// One failed, and stays queued.
    Failed {
        /// The experiment.
        queued: &'a Queued,
        /// Why.
        error: &'a str,
        /// Its log.
        log: &'a Path,
    },
}

/// What `dvt queue start --temp|-j N` did.
#[derive(Debug, Default)]
pub struct QueueOutcome {
    /// The experiments recorded, in queue order.
    pub done: Vec<(Queued, ExpRunReport)>,
    /// Those that failed (still queued), in queue order, with why.
    pub failed: Vec<(Queued, String)>,
}

/// `dvt queue start --temp|-j N`: runs the queued experiments, `jobs` at a
/// time, each in a worktree of HEAD with the params files it was queued with;
/// what their stages print goes to their logs ([`log_path`]). Each leaves the
/// queue once recorded; one that fails stays queued, and the others go on.
pub fn run_queue_outside(repo: &Repo, jobs: usize, on_event: &(dyn Fn(QueueEvent<'_>) + Sync)) -> Result<QueueOutcome> {
    let _running = crate::ops::exp::hold_queue(repo)?;
    clear_stop(repo)?;
    sweep(repo, &Git::open(repo.root())?)?;
    let waiting = crate::ops::exp::queued(repo)?;
    let workers = jobs.clamp(1, waiting.len().max(1));
    let todo = Mutex::new(waiting.into_iter().collect::<VecDeque<_>>());
    let outcome = Mutex::new(QueueOutcome::default());
    let fatal: Mutex<Option<crate::Error>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    if stop_requested(repo).unwrap_or(false) {
                        break;
                    }
                    let next = todo.lock().unwrap_or_else(PoisonError::into_inner).pop_front();
                    let Some(q) = next else { break };
                    match run_queued(repo, &q, on_event) {
                        Ok(Ok(report)) => outcome
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .done
                            .push((q, report)),
                        Ok(Err(why)) => outcome
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .failed
                            .push((q, why)),
                        Err(e) => {
                            // Not the experiment's fault (the queue or the disk): stop.
                            todo.lock().unwrap_or_else(PoisonError::into_inner).clear();
                            fatal.lock().unwrap_or_else(PoisonError::into_inner).get_or_insert(e);
                        }
                    }
                }
            });
        }
    });
    clear_stop(repo)?;
    crate::ops::exp::release_snapshots(repo, &Git::open(repo.root())?)?;
    if let Some(e) = fatal.into_inner().unwrap_or_else(PoisonError::into_inner) {
        return Err(e);
    }
    let mut outcome = outcome.into_inner().unwrap_or_else(PoisonError::into_inner);
    outcome.done.sort_by(|a, b| a.0.id.cmp(&b.0.id));
    outcome.failed.sort_by(|a, b| a.0.id.cmp(&b.0.id));
    Ok(outcome)
}

/// Runs one queued experiment in a worktree: `Ok(Err(why))` if it failed
/// (it stays queued), `Err` if the queue itself could not be worked.
fn run_queued(
    repo: &Repo,
    q: &Queued,
    on_event: &(dyn Fn(QueueEvent<'_>) + Sync),
) -> Result<std::result::Result<ExpRunReport, String>> {
    let log = log_path(repo, &q.id)?;
    fs_err::write(&log, log_header(q))?;
    on_event(QueueEvent::Started { queued: q, log: &log });
    let note = |text: &str| {
        if let Ok(mut f) = fs_err::OpenOptions::new().append(true).open(&log) {
            let _ = writeln!(f, "{text}");
        }
    };
    // The log's first line names the params already.
    let on_set = |_: &[crate::ops::exp::SetParam]| {};
    let on_run = |stage: &crate::pipeline::Stage, why: &str| {
        note(&format!("Running stage `{}` ({why}):\n> {}", stage.name, stage.cmd));
        Ok(())
    };
    let opts = q.run_options(ReproOptions {
        log: Some(log.clone()),
        group: Some(group_file(repo, &q.id)?),
        ..Default::default()
    });
    let name = format!("queue-{}", q.id);
    let snapshot =
        match &q.snapshot {
            Some(s) => Some(s.parse::<GitId>().map_err(|_| {
                crate::ops::exp::refused(format!("queued experiment {}: `{s}` is not a commit id", q.id))
            })?),
            None => None,
        };
    // Held until what became of it is written, so that `queue logs -f`,
    // which follows the log while it runs, prints the last line too.
    let lock = hold(repo, &name, "a queued experiment running outside the workspace")?;
    match run_in_worktree(repo, &lock, snapshot, &q.files, &opts, &on_set, &on_run, &NoProgress) {
        Ok(report) => {
            crate::ops::exp::unqueue(repo, q)?;
            note(&format!(
                "Experiment `{}` recorded: commit {}",
                report.name, report.commit
            ));
            on_event(QueueEvent::Done {
                queued: q,
                report: &report,
            });
            Ok(Ok(report))
        }
        // Stopped by Ctrl-C: it stays queued, not failed (the handler exits).
        Err(e) if crate::fsutil::interrupted() => Err(e),
        Err(e) => {
            let why = crate::error_chain(&e);
            note(&format!("Failed: {why}"));
            crate::ops::exp::mark_failed(repo, q, &why)?;
            on_event(QueueEvent::Failed {
                queued: q,
                error: &why,
                log: &log,
            });
            Ok(Err(why))
        }
    }
}
