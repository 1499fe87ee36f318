//! `dvt exp`: experiments, as DVC's. `dvt exp run` changes params (`-S`),
//! reproduces the pipeline, and records the whole work tree — params, code,
//! `dvt.lock`, metrics, pointers — as a commit named `refs/exps/NAME` on top of
//! HEAD, without touching HEAD, the branch or the index. The outs it produced
//! stay in the cache (and `dvt gc` keeps them) until the experiment is removed.
//! `exp show` compares the metrics and params of HEAD, the workspace and the
//! experiments; `exp apply` brings one back into the workspace; `exp branch`
//! makes a branch of one; `exp remove` deletes them.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::error::{PipelineError, Result};
use crate::git::{EXP_REFS, Experiment, Git, GitId, QUEUED_REFS};
use crate::ops::queue::QueueState;
use crate::ops::repro::{Action, OnRun, ReproOptions, ReproReport, StageFlags};
use crate::ops::stages::{flat_file, flat_text, metric_files, params_files, pipeline_at};
use crate::pipeline::{DEFAULT_PARAMS, params};
use crate::progress::Progress;
use crate::repo::Repo;

pub(crate) fn refused(message: impl Into<String>) -> crate::Error {
    PipelineError::Experiment {
        message: message.into(),
    }
    .into()
}

/// Why there can be no experiment yet.
pub(crate) fn no_commit() -> crate::Error {
    refused("an experiment starts from a commit, and HEAD has none yet: commit first")
}

/// What `dvt exp run` does.
#[derive(Debug, Clone, Default)]
pub struct ExpRunOptions {
    /// The experiment's name (default: one made from its commit, `bold-fox`).
    pub name: Option<String>,
    /// `[FILE:]KEY=VALUE`: params to change first (FILE defaults to params.yaml).
    pub set_params: Vec<String>,
    /// What to reproduce.
    pub repro: ReproOptions,
    /// Replace an experiment of the same name.
    pub force: bool,
    /// The first line of the experiment's commit message (default: `dvt exp run
    /// on COMMIT`); the params set follow it (DVC's `-m`).
    pub message: Option<String>,
    /// Paths (repo-relative) that git ignores or does not track, copied from
    /// the workspace into the worktree of a run outside it (`--temp`, or
    /// queued and run with `--temp` or `-j`) as it starts (DVC's `--copy-paths`).
    pub copy_paths: Vec<String>,
}

/// A param `exp run -S` changed.
#[derive(Debug, Clone, Serialize)]
pub struct SetParam {
    /// The params file, repo-relative.
    pub file: String,
    /// The dotted key.
    pub key: String,
    /// The value before (`None`: the key was added, `-S +KEY=VALUE`).
    pub old: Option<toml::Value>,
    /// The value now (`None`: the key was removed, `-S ~KEY`).
    pub new: Option<toml::Value>,
}

/// Told the params a run set, once they are written and before any stage runs.
pub type OnSet<'a> = &'a dyn Fn(&[SetParam]);

/// What `dvt exp run` did.
#[derive(Debug, Clone, Serialize)]
pub struct ExpRunReport {
    /// The experiment's name.
    pub name: String,
    /// Its commit.
    pub commit: String,
    /// The commit it was run on (HEAD).
    pub baseline: String,
    /// The params it changed.
    pub set_params: Vec<SetParam>,
    /// What the reproduction did.
    pub repro: ReproReport,
}

/// Checks an experiment name: what a git ref and a shell take without quoting.
pub(crate) fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && !name.starts_with(['-', '.'])
        && !name.ends_with(['.', '/'])
        && !name.contains("..")
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    match ok {
        true => Ok(()),
        false => Err(refused(format!(
            "`{name}` cannot name an experiment: use letters, digits, `-`, `_` and `.`"
        ))),
    }
}

/// Changes the params `specs` (`[FILE:]KEY=VALUE`) name, each file written once,
/// all specs checked before any file is written.
pub fn set_params(repo: &Repo, specs: &[String]) -> Result<Vec<SetParam>> {
    let mut files: BTreeMap<String, String> = BTreeMap::new();
    let out = edit_params(repo, &mut files, specs)?;
    for (file, text) in &files {
        crate::fsutil::atomic_write(&repo.root().join(file), text.as_bytes())?;
    }
    Ok(out)
}

/// Applies `specs` to the texts of params files in `files` (repo-relative path
/// → text), reading from the workspace a file `files` lacks.
fn edit_params(repo: &Repo, files: &mut BTreeMap<String, String>, specs: &[String]) -> Result<Vec<SetParam>> {
    let mut out = Vec::new();
    for spec in specs {
        let (target, value) = match spec.split_once('=') {
            Some((t, v)) => (t.trim(), Some(v)),
            None => (spec.trim(), None),
        };
        // Hydra's (and DVC's) `+KEY` adds a key, `++KEY` sets or adds it, `~KEY`
        // removes it; the sign may come before `FILE:` or after it.
        let (mode, target) = add_mode(target);
        let (file, key) = match target.rsplit_once(':') {
            Some((f, k)) => (f.trim().to_string(), k.trim().to_string()),
            None => (DEFAULT_PARAMS.to_string(), target.to_string()),
        };
        let (mode, key) = match mode {
            KeyMode::Existing => {
                let (m, k) = add_mode(&key);
                (m, k.to_string())
            }
            m => (m, key),
        };
        if value.is_none() && mode != KeyMode::Remove {
            return Err(refused(format!(
                "`-S {spec}`: expected `[FILE:]KEY=VALUE` (or `~KEY` to remove a key)"
            )));
        }
        if key.is_empty() || key.split('.').any(str::is_empty) {
            return Err(refused(format!("`-S {spec}`: `{key}` is not a key")));
        }
        repo.check_not_reserved(&file)?;
        if !files.contains_key(&file) {
            let text = match crate::pipeline::read_file(repo, &file)? {
                Some(t) => t,
                None => return Err(refused(format!("`-S {spec}`: params file `{file}` does not exist"))),
            };
            files.insert(file.clone(), text);
        }
        let text = &files[&file];
        let parsed = params::parse(&file, text)?;
        let old = match params::lookup(&parsed, &key) {
            None if mode == KeyMode::Remove => {
                return Err(refused(format!("`-S {spec}`: {file} has no `{key}` to remove")));
            }
            None if mode != KeyMode::Existing => None,
            Some(_) if mode == KeyMode::New => {
                return Err(refused(format!(
                    "`-S {spec}`: {file} already has `{key}` (`-S {key}=…` changes it)"
                )));
            }
            None => {
                return Err(refused(format!(
                    "`-S {spec}`: {file} has no `{key}` (`-S +{key}=…` adds it)"
                )));
            }
            Some(v) if v.is_table() => {
                return Err(refused(format!(
                    "`-S {spec}`: `{key}` is a table in {file}; `-S` sets single values and lists (`[A, B]`)"
                )));
            }
            Some(v) => Some(v.clone()),
        };
        if let Some(value) = value
            && sweep_values(spec, value)?.is_some()
        {
            return Err(refused(format!(
                "`-S {spec}`: a sweep (`choice`, `range`) queues one experiment per value: use `--queue`"
            )));
        }
        if let Some(text) = value.filter(|v| params::is_null(v)) {
            return Err(refused(format!(
                "`-S {spec}`: `{}` is YAML's null, which dvt's params cannot hold (strings, numbers, booleans, \
                 lists): `-S ~{key}` removes the key, or quote it (`'\"{}\"'`) for the text",
                text.trim(),
                text.trim()
            )));
        }
        let new = value.map(params::typed_value);
        if let (Some(text), Some(toml::Value::String(_))) = (value, &new)
            && text.trim_start().starts_with('[')
        {
            return Err(refused(format!(
                "`-S {spec}`: `{}` is not a list: write one as `[A, B]`, its values numbers, booleans, strings or lists",
                text.trim()
            )));
        }
        let edited = match (&old, &new) {
            // `~KEY=VALUE` removes the key only if it holds that value, as in Hydra.
            (Some(old), Some(v)) if mode == KeyMode::Remove && old != v => {
                return Err(refused(format!(
                    "`-S {spec}`: `{key}` in {file} is {old}, not {v}, so it is not removed"
                )));
            }
            (_, _) if mode == KeyMode::Remove => params::remove_value(&file, text, &parsed, &key)?,
            (Some(_), Some(v)) => params::set_value(&file, text, &parsed, &key, v)?,
            (None, Some(v)) => params::add_value(&file, text, &parsed, &key, v)?,
            (_, None) => unreachable!("a spec without a value removes"),
        };
        let new = new.filter(|_| mode != KeyMode::Remove);
        files.insert(file.clone(), edited);
        out.push(SetParam { file, key, old, new });
    }
    Ok(out)
}

/// Whether a `-S` key must exist: as is (it must), `+KEY` (it must not), `++KEY`
/// (either), `~KEY` (it must, and is removed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyMode {
    /// The key must exist.
    Existing,
    /// The key must not exist (`+KEY`).
    New,
    /// Either (`++KEY`).
    Any,
    /// The key must exist, and goes (`~KEY`).
    Remove,
}

fn add_mode(target: &str) -> (KeyMode, &str) {
    if let Some(rest) = target.strip_prefix('~') {
        (KeyMode::Remove, rest.trim())
    } else if let Some(rest) = target.strip_prefix("++") {
        (KeyMode::Any, rest.trim())
    } else if let Some(rest) = target.strip_prefix('+') {
        (KeyMode::New, rest.trim())
    } else {
        (KeyMode::Existing, target)
    }
}

/// `dvt exp run`: changes params, reproduces, records the work tree as
/// experiment `refs/exps/NAME` on top of HEAD.
pub fn run(
    repo: &Repo,
    opts: &ExpRunOptions,
    on_set: OnSet<'_>,
    on_run: OnRun<'_>,
    progress: &dyn Progress,
) -> Result<ExpRunReport> {
    let git = Git::open(repo.root())?;
    let baseline = git.head()?.ok_or_else(no_commit)?;
    if opts.repro.dry_run {
        return dry_run(repo, opts, baseline, progress);
    }
    check_free(&git, opts.name.as_deref(), opts.force)?;
    let set = set_params(repo, &opts.set_params)?;
    on_set(&set);
    let report = crate::ops::repro::repro(repo, &opts.repro, on_run, progress)?;
    // With `-k` or `--ignore-errors` a failed stage ends the run without an error.
    let failed: Vec<String> = report
        .stages
        .iter()
        .filter(|s| s.action == Action::Failed)
        .map(|s| {
            s.reason
                .clone()
                .unwrap_or_else(|| format!("stage `{}` failed", s.stage))
        })
        .collect();
    if !failed.is_empty() {
        return Err(refused(format!(
            "{}; the experiment was not recorded (the stages that ran are in `dvt.lock` and the workspace)",
            failed.join("; ")
        )));
    }
    let mut message = match &opts.message {
        Some(m) => format!("{}\n", m.trim_end()),
        None => format!("dvt exp run on {}\n", crate::snapshot::short(&baseline)),
    };
    for p in &set {
        let name = crate::pipeline::param_name(&p.file, &p.key);
        match &p.new {
            Some(v) => message.push_str(&format!("\n-S {name}={v}")),
            None => message.push_str(&format!("\n-S ~{name}")),
        }
    }
    let (name, commit) = record(
        &git,
        baseline,
        &format!("{message}\n"),
        opts.name.as_deref(),
        opts.force,
    )?;
    Ok(ExpRunReport {
        name,
        commit: commit.to_string(),
        baseline: baseline.to_string(),
        set_params: set,
        repro: report,
    })
}

/// `dvt exp run --dry` (DVC's): what the experiment would run with its params
/// set, nothing run or recorded. The params files are set as the run would set
/// them, then put back byte for byte; the report has no name nor commit.
fn dry_run(repo: &Repo, opts: &ExpRunOptions, baseline: GitId, progress: &dyn Progress) -> Result<ExpRunReport> {
    let files = params_snapshot(repo, std::slice::from_ref(&opts.set_params))?;
    let mut before = Vec::new();
    for f in files.keys() {
        before.push((f.clone(), crate::pipeline::read_file(repo, f)?));
    }
    let result = set_params(repo, &opts.set_params).and_then(|set| {
        Ok((
            set,
            crate::ops::repro::repro(repo, &opts.repro, &|_, _| Ok(()), progress)?,
        ))
    });
    for (f, text) in before {
        let path = repo.root().join(&f);
        match text {
            Some(t) => crate::fsutil::atomic_write(&path, t.as_bytes())?,
            None => {
                let _ = fs_err::remove_file(&path);
            }
        }
    }
    let (set, report) = result?;
    Ok(ExpRunReport {
        name: String::new(),
        commit: String::new(),
        baseline: baseline.to_string(),
        set_params: set,
        repro: report,
    })
}

/// Refuses a name that cannot name an experiment, or (unless `force`) one in use.
pub(crate) fn check_free(git: &Git, name: Option<&str>, force: bool) -> Result<()> {
    if let Some(name) = name {
        check_name(name)?;
        if git.has_ref(&format!("{EXP_REFS}{name}"))? && !force {
            return Err(refused(format!(
                "experiment `{name}` already exists (`-f` replaces it, `dvt exp remove {name}` deletes it)"
            )));
        }
    }
    Ok(())
}

/// Commits the work tree on `baseline` and names the commit `refs/exps/NAME`
/// (`name`, or one made from the commit); returns the name and the commit.
fn record(git: &Git, baseline: GitId, message: &str, name: Option<&str>, force: bool) -> Result<(String, GitId)> {
    record_with(git, baseline, message, name, force, &[])
}

/// [`record`], with the files at `include` though git ignores them.
fn record_with(
    git: &Git,
    baseline: GitId,
    message: &str,
    name: Option<&str>,
    force: bool,
    include: &[std::path::PathBuf],
) -> Result<(String, GitId)> {
    let commit = git.commit_work_tree_with(baseline, message, include)?;
    if let Some(name) = name {
        git.set_ref(&format!("{EXP_REFS}{name}"), commit, force)?;
        return Ok((name.to_string(), commit));
    }
    // Experiments running beside this one may take the name found free first.
    let mut tries = 0;
    loop {
        let name = free_name(git, commit)?;
        match git.set_ref(&format!("{EXP_REFS}{name}"), commit, false) {
            Ok(()) => return Ok((name, commit)),
            Err(_) if tries < 5 && git.has_ref(&format!("{EXP_REFS}{name}"))? => tries += 1,
            Err(e) => return Err(e),
        }
    }
}

/// What `dvt exp save` does.
#[derive(Debug, Clone, Default)]
pub struct ExpSaveOptions {
    /// The experiment's name (default: one made from its commit).
    pub name: Option<String>,
    /// Replace an experiment of the same name.
    pub force: bool,
    /// The commit message (default: `dvt exp save on COMMIT`).
    pub message: Option<String>,
    /// Files or directories to record though git ignores them (absolute;
    /// DVC's `--include-untracked`).
    pub include: Vec<std::path::PathBuf>,
    /// What to store first, as `dvt commit` takes targets (stages, outs,
    /// pointers; relative to `cwd`); empty: every stage and pointer.
    pub targets: Vec<String>,
    /// The directory relative targets start from.
    pub cwd: std::path::PathBuf,
}

/// What `dvt exp save` did.
#[derive(Debug, Serialize)]
pub struct ExpSaveReport {
    /// The experiment's name.
    pub name: String,
    /// Its commit.
    pub commit: String,
    /// The commit it was saved on (HEAD).
    pub baseline: String,
    /// What recording the workspace's outs and pointers did (`dvt commit --force`).
    pub recorded: crate::ops::commit::CommitReport,
}

/// `dvt exp save`, as `dvc exp save`: records the workspace as an experiment
/// without running anything — the outs of stages that ran and data of pointers
/// that changed are first recorded as `dvt commit --force` would, then the work
/// tree is committed as `refs/exps/NAME` on top of HEAD. For work done outside
/// `dvt repro` (a notebook, a script run by hand) that should sit beside the
/// experiments in `exp show`.
pub fn save(repo: &Repo, opts: &ExpSaveOptions, progress: &dyn Progress) -> Result<ExpSaveReport> {
    let git = Git::open(repo.root())?;
    let baseline = git.head()?.ok_or_else(no_commit)?;
    check_free(&git, opts.name.as_deref(), opts.force)?;
    // Before anything is recorded: each path asked for is there, in the repository.
    for p in &opts.include {
        let inside = fs_err::canonicalize(p)
            .ok()
            .zip(fs_err::canonicalize(repo.root()).ok())
            .is_some_and(|(p, root)| p.starts_with(root));
        if !inside {
            return Err(refused(format!(
                "`{}` is not in the work tree: `-I` takes files and directories of the repository",
                p.display()
            )));
        }
    }
    let commit_opts = crate::ops::commit::CommitOptions {
        targets: opts.targets.clone(),
        cwd: opts.cwd.clone(),
        force: true,
        skip_incomplete: true,
    };
    let recorded = crate::ops::commit::commit(repo, &commit_opts, progress)?;
    let message = match &opts.message {
        Some(m) => format!("{}\n", m.trim_end()),
        None => format!("dvt exp save on {}\n", crate::snapshot::short(&baseline)),
    };
    let (name, commit) = record_with(
        &git,
        baseline,
        &message,
        opts.name.as_deref(),
        opts.force,
        &opts.include,
    )?;
    Ok(ExpSaveReport {
        name,
        commit: commit.to_string(),
        baseline: baseline.to_string(),
        recorded,
    })
}

/// A name made from `commit` (`bold-fox`), with a number if it is taken.
fn free_name(git: &Git, commit: GitId) -> Result<String> {
    const ADJECTIVES: [&str; 32] = [
        "amber", "bold", "brisk", "calm", "clever", "crisp", "dusty", "eager", "fair", "fleet", "gentle", "glad",
        "grand", "happy", "keen", "lucky", "mellow", "misty", "noble", "plucky", "proud", "quick", "quiet", "rapid",
        "rosy", "sharp", "shiny", "silent", "sunny", "swift", "tidy", "witty",
    ];
    const NOUNS: [&str; 32] = [
        "badger", "bison", "crane", "eagle", "falcon", "ferret", "finch", "fox", "gecko", "heron", "ibis", "jackal",
        "koala", "lark", "lemur", "lynx", "marten", "moose", "newt", "otter", "owl", "panda", "puffin", "quail",
        "raven", "seal", "shrew", "stoat", "tapir", "trout", "vole", "wren",
    ];
    let bytes = commit.as_bytes();
    let base = format!(
        "{}-{}",
        ADJECTIVES[usize::from(bytes[0]) % ADJECTIVES.len()],
        NOUNS[usize::from(bytes[1]) % NOUNS.len()]
    );
    let mut name = base.clone();
    let mut n = 2;
    while git.has_ref(&format!("{EXP_REFS}{name}"))? {
        name = format!("{base}-{n}");
        n += 1;
    }
    Ok(name)
}

/// One row of `dvt exp show`.
#[derive(Debug, Clone, Serialize)]
pub struct ExpRow {
    /// `workspace`, the baseline's branch (or short commit), or the experiment's name.
    pub name: String,
    /// Whether it is an experiment.
    pub experiment: bool,
    /// Its commit (none for the workspace).
    pub commit: Option<String>,
    /// The commit it was run on, for an experiment.
    pub baseline: Option<String>,
    /// When it was committed (seconds since the epoch; none for the workspace).
    pub created: Option<i64>,
    /// Metrics: file → dotted key → value.
    pub metrics: BTreeMap<String, BTreeMap<String, toml::Value>>,
    /// Params: file → dotted key → value.
    pub params: BTreeMap<String, BTreeMap<String, toml::Value>>,
    /// For an experiment still in the queue: what it is doing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<QueueState>,
}

/// Which rows `dvt exp show` has.
#[derive(Debug, Clone, Default)]
pub struct ExpShowOptions {
    /// Which experiments: those run (or queued) on HEAD, on some commits, or all.
    pub select: crate::ops::exp_share::Selection,
    /// Leave out experiments waiting in the queue (or running from it).
    pub hide_queued: bool,
    /// Leave out queued experiments that failed the last time they ran.
    pub hide_failed: bool,
    /// Leave out the workspace's row.
    pub hide_workspace: bool,
    /// Of the params, only those some stage of the workspace's `dvt.toml` lists
    /// (DVC's `--param-deps`), not every key of the params files.
    pub param_deps: bool,
    /// Name baseline rows by their short commit id, not by a branch or tag.
    pub sha: bool,
}

/// The experiments that `select` picks, newest first.
pub fn list(repo: &Repo, select: &crate::ops::exp_share::Selection) -> Result<Vec<Experiment>> {
    let git = Git::open(repo.root())?;
    let wanted = select.baselines(&git)?;
    let mut all = git.experiments()?;
    if let Some(wanted) = wanted {
        all.retain(|e| e.baseline.is_some_and(|b| wanted.contains(&b)));
    }
    Ok(all)
}

/// `dvt exp show`: the workspace, HEAD, and the experiments run on HEAD (with
/// `all`, every experiment), with their metrics and params; then, as DVC's,
/// those queued on HEAD (with `all`, every one), with the params they will
/// run with and their state.
pub fn show(repo: &Repo, opts: &ExpShowOptions) -> Result<Vec<ExpRow>> {
    let git = Git::open(repo.root())?;
    let head = git.head()?;
    let mut rows = Vec::new();
    if !opts.hide_workspace {
        rows.push(row(repo, None, "workspace".into(), false)?);
    }
    let experiments = git.experiments()?;
    let mut waiting = Vec::new();
    for q in queued(repo)? {
        let state = crate::ops::queue::state(repo, &q)?;
        let failed = state == QueueState::Failed;
        if (opts.hide_queued && !failed) || (opts.hide_failed && failed) {
            continue;
        }
        let snapshot = q.snapshot.as_deref().and_then(|s| s.parse::<GitId>().ok());
        let baseline = match snapshot {
            Some(s) => git.parent_of(s)?,
            None => head,
        };
        waiting.push((q, state, baseline));
    }
    // Each baseline, then what was run and queued on it (as DVC groups them).
    let baselines = match opts.select.baselines(&git)? {
        Some(b) => b,
        None => {
            let mut b: Vec<GitId> = head.into_iter().collect();
            let others = experiments
                .iter()
                .map(|e| e.baseline)
                .chain(waiting.iter().map(|w| w.2));
            for x in others.flatten() {
                if !b.contains(&x) {
                    b.push(x);
                }
            }
            b
        }
    };
    let names = match opts.sha {
        true => Vec::new(),
        false => baseline_names(&git, head)?,
    };
    for b in baselines {
        let name = names
            .iter()
            .find(|(c, _)| *c == b)
            .map_or_else(|| crate::snapshot::short(&b).to_string(), |(_, n)| n.clone());
        rows.push(row(repo, Some((&git, b, None)), name, false)?);
        for e in experiments.iter().filter(|e| e.baseline == Some(b)) {
            rows.push(row(repo, Some((&git, e.commit, Some(e))), e.name.clone(), true)?);
        }
        for (q, state, _) in waiting.iter().filter(|w| w.2 == Some(b)) {
            rows.push(queued_row(repo, q, Some(b), *state)?);
        }
    }
    // With every experiment: those whose baseline is not known come last.
    if matches!(opts.select, crate::ops::exp_share::Selection::All) {
        for e in experiments.iter().filter(|e| e.baseline.is_none()) {
            rows.push(row(repo, Some((&git, e.commit, Some(e))), e.name.clone(), true)?);
        }
    }
    if opts.param_deps {
        let pipeline = crate::pipeline::Pipeline::load(repo)?;
        let wanted = |file: &str, key: &str| pipeline.as_ref().is_some_and(|p| p.uses_param(file, key));
        for r in &mut rows {
            for (file, values) in r.params.iter_mut() {
                values.retain(|k, _| wanted(file, k));
            }
            r.params.retain(|_, values| !values.is_empty());
        }
    }
    Ok(rows)
}

/// How `exp show` names a baseline commit: HEAD by its branch, another commit by
/// a branch or tag at it; the rest by their short id (the caller's fallback).
fn baseline_names(git: &Git, head: Option<GitId>) -> Result<Vec<(GitId, String)>> {
    let mut names = Vec::new();
    if let (Some(h), Some(branch)) = (head, git.head_branch()?) {
        names.push((h, branch));
    }
    names.extend(git.branches()?.into_iter().map(|(n, c)| (c, n)));
    names.extend(git.tags()?.into_iter().map(|(n, c)| (c, n)));
    Ok(names)
}

/// The row of queued experiment `q`: the params it will run with, no metrics.
fn queued_row(repo: &Repo, q: &Queued, baseline: Option<GitId>, state: QueueState) -> Result<ExpRow> {
    let mut files = q.files.clone();
    // A spec that no longer applies shows the params as queued; running it says why.
    let _ = edit_params(repo, &mut files, &q.set_params);
    let mut params = BTreeMap::new();
    for (f, text) in &files {
        if let Ok(values) = flat_text(f, text)
            && !values.is_empty()
        {
            params.insert(f.clone(), values);
        }
    }
    Ok(ExpRow {
        name: q.name.clone().unwrap_or_else(|| q.id.clone()),
        experiment: true,
        commit: None,
        baseline: baseline.map(|b| b.to_string()),
        created: None,
        metrics: BTreeMap::new(),
        params,
        state: Some(state),
    })
}

/// Sorts the experiments of `rows` (the workspace and HEAD stay first) by the
/// metric or param `key` (`KEY`, or `FILE:KEY` when several files have it),
/// numbers in order, rows without a number last.
pub fn sort_rows(rows: &mut [ExpRow], key: &str, descending: bool) -> Result<()> {
    let (file, k) = match key.rsplit_once(':') {
        Some((f, k)) => (Some(f), k),
        None => (None, key),
    };
    let value = |r: &ExpRow| -> Option<toml::Value> {
        r.metrics
            .iter()
            .chain(r.params.iter())
            .filter(|(f, _)| file.is_none_or(|want| want == f.as_str()))
            .find_map(|(_, vals)| vals.get(k).cloned())
    };
    if !rows.iter().any(|r| value(r).is_some()) {
        return Err(refused(format!("no metric or param `{key}` to sort by")));
    }
    let number = |r: &ExpRow| match value(r) {
        Some(toml::Value::Integer(i)) => Some(i as f64),
        Some(toml::Value::Float(f)) => Some(f),
        _ => None,
    };
    let first_exp = rows.iter().position(|r| r.experiment).unwrap_or(rows.len());
    rows[first_exp..].sort_by(|a, b| match (number(a), number(b)) {
        (Some(x), Some(y)) => {
            let o = x.total_cmp(&y);
            if descending { o.reverse() } else { o }
        }
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    });
    Ok(())
}

fn row(repo: &Repo, at: Option<(&Git, GitId, Option<&Experiment>)>, name: String, experiment: bool) -> Result<ExpRow> {
    let side = at.map(|(git, c, _)| (git.clone(), c));
    let pipeline = pipeline_at(repo, side.as_ref()).ok().flatten();
    let mut metrics = BTreeMap::new();
    let mut params = BTreeMap::new();
    if let Some(p) = &pipeline {
        for f in metric_files(p) {
            metrics.insert(
                f.clone(),
                flat_file(repo, side.as_ref(), &f).ok().flatten().unwrap_or_default(),
            );
        }
        let mut files = params_files(p);
        files.push(DEFAULT_PARAMS.to_string());
        files.sort();
        files.dedup();
        for f in files {
            let values = flat_file(repo, side.as_ref(), &f).ok().flatten().unwrap_or_default();
            if !values.is_empty() {
                params.insert(f, values);
            }
        }
    }
    let (commit, baseline, created) = match at {
        Some((git, c, e)) => (
            Some(c.to_string()),
            e.and_then(|e| e.baseline).map(|b| b.to_string()),
            Some(git.commit_time(c)?),
        ),
        None => (None, None, None),
    };
    Ok(ExpRow {
        name,
        experiment,
        commit,
        baseline,
        created,
        metrics,
        params,
        state: None,
    })
}

fn find(git: &Git, name: &str) -> Result<Experiment> {
    let mut all = git.experiments()?;
    match all.iter().position(|e| e.name == name) {
        Some(i) => Ok(all.swap_remove(i)),
        None => {
            let closest = crate::suggest::did_you_mean(name, all.iter().map(|e| e.name.as_str()));
            Err(refused(format!(
                "no experiment named `{name}` ({closest}`dvt exp list` lists them)"
            )))
        }
    }
}

/// What `dvt exp apply` did.
#[derive(Debug, Serialize)]
pub struct ExpApplyReport {
    /// The experiment.
    pub name: String,
    /// Files written from it, from the git work tree's root.
    pub written: Vec<String>,
    /// Files deleted because it does not have them (HEAD had them).
    pub deleted: Vec<String>,
    /// Data checked out to match its pointers and `dvt.lock`.
    pub checkout: crate::ops::CheckoutReport,
}

/// `dvt exp apply NAME`: makes the work tree's files what the experiment
/// recorded, then checks out its data. Refuses (writing nothing) to overwrite
/// or delete a file whose content git does not have — work that would be lost
/// — unless `force`.
pub fn apply(repo: &Repo, name: &str, force: bool, progress: &dyn Progress) -> Result<ExpApplyReport> {
    let git = Git::open(repo.root())?;
    let exp = find(&git, name)?;
    let Some(work) = git.work_tree().map(std::path::Path::to_path_buf) else {
        return Err(refused("the git repository has no work tree"));
    };
    let files = git.files(exp.commit)?;
    let mut at_head = match git.head()? {
        Some(h) => git.files(h)?,
        None => Vec::new(),
    };
    let recorded: std::collections::HashSet<&str> = files.iter().map(|f| f.path.as_str()).collect();
    at_head.retain(|f| !recorded.contains(f.path.as_str()));
    // Content git has can be recovered; anything else would be lost.
    let recoverable = |bytes: &[u8]| -> Result<bool> { Ok(git.has_object(git.blob_id_of(bytes)?)) };
    let mut writes = Vec::new();
    let mut lost = Vec::new();
    for f in &files {
        let abs = work.join(&f.path);
        let now = match current(&abs)? {
            Some(bytes) => Some(git.blob_id_of(&bytes)?),
            None => None,
        };
        match now {
            Some(id) if id == f.blob => {
                if !f.link {
                    let meta = fs_err::metadata(&abs)?;
                    let exec = std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o111 != 0;
                    if exec != f.executable {
                        writes.push(f);
                    }
                }
            }
            Some(id) => {
                if !force && !git.has_object(id) {
                    lost.push(f.path.clone());
                }
                writes.push(f);
            }
            None => writes.push(f),
        }
    }
    let mut deletes = Vec::new();
    for f in &at_head {
        let abs = work.join(&f.path);
        if let Some(bytes) = current(&abs)? {
            if !force && !recoverable(&bytes)? {
                lost.push(f.path.clone());
            }
            deletes.push(f.path.clone());
        }
    }
    if !lost.is_empty() {
        lost.sort();
        return Err(refused(format!(
            "applying `{name}` would overwrite changes that are in no commit or experiment:\n  {}\n\
             hint: commit them, or run again with `--force` to discard them",
            lost.join("\n  ")
        )));
    }
    let mut written = Vec::new();
    for f in writes {
        let abs = work.join(&f.path);
        let bytes = git.read_blob(f.blob)?;
        if let Some(parent) = abs.parent() {
            fs_err::create_dir_all(parent)?;
        }
        if let Ok(m) = fs_err::symlink_metadata(&abs)
            && (m.is_dir() || m.file_type().is_symlink() || f.link)
        {
            match m.is_dir() {
                true => fs_err::remove_dir_all(&abs)?,
                false => fs_err::remove_file(&abs)?,
            }
        }
        if f.link {
            fs_err::os::unix::fs::symlink(String::from_utf8_lossy(&bytes).as_ref(), &abs)?;
        } else {
            crate::fsutil::atomic_write(&abs, &bytes)?;
            let mode = if f.executable { 0o755 } else { 0o644 };
            fs_err::set_permissions(&abs, std::os::unix::fs::PermissionsExt::from_mode(mode))?;
        }
        written.push(f.path.clone());
    }
    for path in &deletes {
        fs_err::remove_file(work.join(path))?;
    }
    let checkout = crate::ops::checkout(
        repo,
        &crate::ops::CheckoutOptions {
            targets: Vec::new(),
            cwd: repo.root().to_path_buf(),
            force,
            allow_missing: false,
            keep_changed: false,
        },
        progress,
    )
    .map_err(|e| {
        refused(format!(
            "the files of experiment `{name}` are in place, but not its data: {e}\n\
             hint: move those changes away and run `dvt checkout`, or `dvt exp apply {name} --force` to discard them"
        ))
    })?;
    Ok(ExpApplyReport {
        name: name.to_string(),
        written,
        deleted: deletes,
        checkout,
    })
}

/// The bytes at `abs` (a symlink's target), `None` if there is nothing there;
/// a directory counts as content to keep.
fn current(abs: &std::path::Path) -> Result<Option<Vec<u8>>> {
    match fs_err::symlink_metadata(abs) {
        Ok(m) if m.file_type().is_symlink() => Ok(Some(
            fs_err::read_link(abs)?.to_string_lossy().into_owned().into_bytes(),
        )),
        Ok(m) if m.is_dir() => Ok(Some(Vec::from(*b"\0a directory\0"))),
        Ok(_) => Ok(Some(fs_err::read(abs)?)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// `dvt exp branch NAME BRANCH`: a new branch at the experiment's commit.
pub fn branch(repo: &Repo, name: &str, branch: &str) -> Result<String> {
    let git = Git::open(repo.root())?;
    let exp = find(&git, name)?;
    Git::check_ref_name(crate::git::RefKind::Branch, branch)?;
    let full = format!("refs/heads/{branch}");
    if git.has_ref(&full)? {
        return Err(refused(format!("branch `{branch}` already exists")));
    }
    git.set_ref(&full, exp.commit, false)?;
    Ok(exp.commit.to_string())
}

/// `dvt exp rename OLD NEW` (as `dvc exp rename`): the experiment keeps its
/// commit under the new name. A name in use is refused unless `force`.
pub fn rename(repo: &Repo, old: &str, new: &str, force: bool) -> Result<String> {
    let git = Git::open(repo.root())?;
    let exp = find(&git, old)?;
    if exp.name == new {
        return Ok(exp.commit.to_string());
    }
    check_free(&git, Some(new), force)?;
    // The new name first: an interruption leaves both names, never neither.
    git.set_ref(&format!("{EXP_REFS}{new}"), exp.commit, force)?;
    git.delete_ref(&format!("{EXP_REFS}{}", exp.name))?;
    Ok(exp.commit.to_string())
}

/// `dvt exp remove NAME...` (or every experiment with `all`): deletes them,
/// and takes those NAMEs (or numbers) that are still queued off the queue.
/// Their data stays in the cache until `dvt gc`.
pub fn remove(repo: &Repo, names: &[String], all: bool) -> Result<Vec<String>> {
    let git = Git::open(repo.root())?;
    let exps = git.experiments()?;
    let mut waiting = Vec::new();
    let doomed: Vec<String> = match all {
        true => exps.iter().map(|e| e.name.clone()).collect(),
        false => {
            let queued = queued(repo)?;
            let mut out = Vec::new();
            for n in names {
                // A name still in the queue goes from there, as DVC's `exp remove` does.
                match find(&git, n) {
                    Err(_)
                        if queued
                            .iter()
                            .any(|q| q.name.as_deref() == Some(n.as_str()) || q.id == *n) =>
                    {
                        waiting.push(n.clone());
                    }
                    found => out.push(found?.name),
                }
            }
            out
        }
    };
    if !waiting.is_empty() {
        dequeue(repo, &waiting, false)?;
    }
    for n in &doomed {
        git.delete_ref(&format!("{EXP_REFS}{n}"))?;
    }
    Ok(doomed.into_iter().chain(waiting).collect())
}

/// An experiment waiting in the queue (`dvt exp run --queue`) for `dvt queue start`.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Queued {
    /// Its place in the queue (the order they run in).
    pub id: String,
    /// The name asked for, if any.
    pub name: Option<String>,
    /// Its `-S` specs, one value each.
    pub set_params: Vec<String>,
    /// The stages to reproduce (default: all).
    pub stages: Vec<String>,
    /// The params files as they were when it was queued: it runs from them.
    pub files: BTreeMap<String, String>,
    /// The work tree as it was when it was queued (a commit on the HEAD of
    /// then, kept by a ref under `refs/dvt/queued/`): what it runs from outside
    /// the workspace. `None` in entries queued before dvt recorded it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<String>,
    /// Why it failed the last time it ran, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<String>,
    /// The commit message asked for (`-m`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// How it picks stages and goes on when one fails (`exp run -k`, `-s`, ...).
    #[serde(default, skip_serializing_if = "StageFlags::is_default")]
    pub flags: StageFlags,
    /// `exp run --copy-paths`: copied from the workspace when it runs outside it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub copy_paths: Vec<String>,
}

impl Queued {
    /// The options it runs with: `repro` (its log, its process group) with
    /// its stages and flags.
    pub(crate) fn run_options(&self, repro: ReproOptions) -> ExpRunOptions {
        ExpRunOptions {
            name: self.name.clone(),
            set_params: self.set_params.clone(),
            repro: self.flags.apply(ReproOptions {
                targets: self.stages.clone(),
                ..repro
            }),
            force: false,
            message: self.message.clone(),
            copy_paths: self.copy_paths.clone(),
        }
    }
}

fn queue_dir(repo: &Repo) -> Result<std::path::PathBuf> {
    Ok(repo.tmp_dir()?.join("exp-queue"))
}

/// The most experiments one `exp run --queue` may queue.
const MAX_GRID: usize = 10_000;

/// The `-S` specs expanded, as DVC does for a queue: `KEY=A,B` (or
/// `KEY=choice(A,B)`, or `KEY=range(START,STOP[,STEP])`) is one experiment per
/// value, and several such specs make every combination.
fn grid(specs: &[String]) -> Result<Vec<Vec<String>>> {
    let mut combos: Vec<Vec<String>> = vec![Vec::new()];
    for spec in specs {
        let Some((target, values)) = spec.split_once('=') else {
            // `~KEY` (checked when the experiment runs) goes into every one.
            combos.iter_mut().for_each(|c| c.push(spec.clone()));
            continue;
        };
        let values = sweep_values(spec, values)?.unwrap_or_else(|| split_outside_lists(values));
        if combos.len().saturating_mul(values.len()) > MAX_GRID {
            return Err(refused(format!(
                "`-S {spec}`: that makes over {MAX_GRID} experiments to queue"
            )));
        }
        let mut next = Vec::new();
        for c in &combos {
            for v in &values {
                let mut c = c.clone();
                c.push(format!("{target}={}", v.trim()));
                next.push(c);
            }
        }
        combos = next;
    }
    Ok(combos)
}

/// `A,B,C` split at its commas, but not at those inside a list or quotes
/// (`[64,32],[8]` is two values, `"a,b",c` too, as Hydra reads them).
fn split_outside_lists(values: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    let mut start = 0;
    for (i, c) in values.char_indices() {
        match c {
            q if quote == Some(q) => quote = None,
            _ if quote.is_some() => {}
            '"' | '\'' => quote = Some(c),
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                out.push(values[start..i].to_string());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(values[start..].to_string());
    out
}

/// The values of a sweep written as Hydra's (and DVC's) `choice(A,B,…)` or
/// `range(START,STOP[,STEP])` (STOP excluded; STEP 1 by default; whole numbers
/// stay whole); `None` for any other value.
fn sweep_values(spec: &str, value: &str) -> Result<Option<Vec<String>>> {
    let value = value.trim();
    let inner = |f: &str| value.strip_prefix(f).and_then(|r| r.strip_suffix(')'));
    if let Some(args) = inner("choice(") {
        let out: Vec<String> = args.split(',').map(|a| a.trim().to_string()).collect();
        if out.iter().any(String::is_empty) {
            return Err(refused(format!(
                "`-S {spec}`: `choice` takes values separated by commas"
            )));
        }
        return Ok(Some(out));
    }
    let Some(args) = inner("range(") else {
        return Ok(None);
    };
    let wrong = || {
        refused(format!(
            "`-S {spec}`: `range` takes START, STOP and an optional STEP, numbers (STOP is excluded)"
        ))
    };
    let args: Vec<&str> = args.split(',').map(str::trim).collect();
    if !(2..=3).contains(&args.len()) {
        return Err(wrong());
    }
    let step_text = args.get(2).copied().unwrap_or("1");
    let too_many = || refused(format!("`-S {spec}`: that range has over {MAX_GRID} values"));
    let ints: Option<Vec<i64>> = [args[0], args[1], step_text].iter().map(|a| a.parse().ok()).collect();
    if let Some([start, stop, step]) = ints.as_deref() {
        let (start, stop, step) = (*start, *stop, *step);
        if step == 0 {
            return Err(wrong());
        }
        let mut out = Vec::new();
        let mut v = start;
        while (step > 0 && v < stop) || (step < 0 && v > stop) {
            if out.len() == MAX_GRID {
                return Err(too_many());
            }
            out.push(v.to_string());
            v = v.checked_add(step).ok_or_else(wrong)?;
        }
        return nonempty(spec, out);
    }
    let floats: Option<Vec<f64>> = [args[0], args[1], step_text].iter().map(|a| a.parse().ok()).collect();
    let Some([start, stop, step]) = floats.as_deref() else {
        return Err(wrong());
    };
    let (start, stop, step) = (*start, *stop, *step);
    if step == 0.0 || !step.is_finite() || !start.is_finite() || !stop.is_finite() {
        return Err(wrong());
    }
    // As many decimals as the arguments have, so 0.1 + 0.2 prints as 0.3.
    let decimals = [args[0], args[1], step_text]
        .iter()
        .map(|a| a.split_once('.').map_or(0, |(_, d)| d.len()))
        .max()
        .unwrap_or(0)
        .max(1);
    let count = ((stop - start) / step - 1e-9).ceil();
    if count > MAX_GRID as f64 {
        return Err(too_many());
    }
    let mut out = Vec::new();
    let mut i = 0.0;
    while i < count {
        let text = format!("{:.decimals$}", start + i * step);
        let trimmed = text.trim_end_matches('0');
        out.push(match trimmed.ends_with('.') {
            true => format!("{trimmed}0"),
            false => trimmed.to_string(),
        });
        i += 1.0;
    }
    nonempty(spec, out)
}

fn nonempty(spec: &str, values: Vec<String>) -> Result<Option<Vec<String>>> {
    match values.is_empty() {
        true => Err(refused(format!("`-S {spec}`: that range has no values"))),
        false => Ok(Some(values)),
    }
}

/// `dvt exp run --queue`: queues one experiment per combination of the `-S`
/// values, each to run from the params files as they are now. Every
/// combination is checked first; nothing is queued if one is wrong.
pub fn enqueue(repo: &Repo, opts: &ExpRunOptions) -> Result<Vec<Queued>> {
    let git = Git::open(repo.root())?;
    let head = git.head()?.ok_or_else(no_commit)?;
    let combos = grid(&opts.set_params)?;
    let names: Vec<Option<String>> = match (&opts.name, combos.len()) {
        (None, _) => vec![None; combos.len()],
        (Some(n), 1) => vec![Some(n.clone())],
        (Some(n), k) => (1..=k).map(|i| Some(format!("{n}-{i}"))).collect(),
    };
    for n in names.iter().flatten() {
        check_name(n)?;
        if git.has_ref(&format!("{EXP_REFS}{n}"))? && !opts.force {
            return Err(refused(format!("experiment `{n}` already exists")));
        }
    }
    let base = params_snapshot(repo, &combos)?;
    // The code as it is now, for runs outside the workspace (as DVC's queue).
    let snapshot = git.commit_work_tree(head, "dvt exp run --queue: the work tree as queued\n")?;
    // Numbers, names and snapshot refs change under this lock only.
    let _editing = edit_lock(repo)?;
    let waiting = queued(repo)?;
    for n in names.iter().flatten() {
        if waiting.iter().any(|q| q.name.as_deref() == Some(n.as_str())) {
            return Err(refused(format!("experiment `{n}` is already queued")));
        }
    }
    git.set_ref(&format!("{QUEUED_REFS}{snapshot}"), snapshot, true)?;
    fs_err::create_dir_all(queue_dir(repo)?)?;
    let first = waiting
        .iter()
        .filter_map(|q| q.id.parse::<u64>().ok())
        .max()
        .map_or(1, |m| m + 1);
    let mut out = Vec::new();
    for (next, (combo, name)) in (first..).zip(combos.into_iter().zip(names)) {
        let q = Queued {
            id: format!("{next:06}"),
            name,
            set_params: combo,
            stages: opts.repro.targets.clone(),
            files: base.clone(),
            snapshot: Some(snapshot.to_string()),
            failed: None,
            message: opts.message.clone(),
            flags: StageFlags::of(&opts.repro),
            copy_paths: opts.copy_paths.clone(),
        };
        // The number is used again: the log of the experiment that had it
        // before is not this one's (`dvt queue logs` would show it).
        match fs_err::remove_file(crate::ops::queue::log_path(repo, &q.id)?) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
            _ => {}
        }
        write_entry(repo, &q)?;
        out.push(q);
    }
    Ok(out)
}

/// Held while the queue's entries are numbered or its snapshot refs change
/// (two `exp run --queue` at once, or one beside a running queue).
fn edit_lock(repo: &Repo) -> Result<crate::ops::queue::Held> {
    crate::ops::queue::hold(repo, "queue-edit", "changing the experiment queue")
}

/// What experiments setting `combos` run from: the params files of the
/// pipeline and those the `-S` specs name, as they are in the workspace now
/// (checking that each combination applies to them).
pub(crate) fn params_snapshot(repo: &Repo, combos: &[Vec<String>]) -> Result<BTreeMap<String, String>> {
    let mut base: BTreeMap<String, String> = BTreeMap::new();
    let mut files: Vec<String> = match crate::pipeline::Pipeline::load(repo)? {
        Some(p) => params_files(&p),
        None => Vec::new(),
    };
    files.push(DEFAULT_PARAMS.to_string());
    for f in files {
        if let Some(text) = crate::pipeline::read_file(repo, &f)? {
            base.insert(f, text);
        }
    }
    for combo in combos {
        let mut check = base.clone();
        edit_params(repo, &mut check, combo)?;
        for (f, text) in check {
            if let std::collections::btree_map::Entry::Vacant(slot) = base.entry(f) {
                let now = crate::pipeline::read_file(repo, slot.key())?.unwrap_or(text);
                slot.insert(now);
            }
        }
    }
    Ok(base)
}

/// The queued experiments, in the order they run.
pub fn queued(repo: &Repo) -> Result<Vec<Queued>> {
    let dir = queue_dir(repo)?;
    let entries = match fs_err::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let mut out = Vec::new();
    for e in entries {
        let path = e?.path();
        if path.extension().is_none_or(|x| x != "json") {
            continue;
        }
        let bytes = fs_err::read(&path)?;
        let q: Queued = serde_json::from_slice(&bytes)
            .map_err(|err| refused(format!("the queue entry `{}` is damaged: {err}", path.display())))?;
        out.push(q);
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}

/// Writes queue entry `q`.
fn write_entry(repo: &Repo, q: &Queued) -> Result<()> {
    let text = serde_json::to_vec_pretty(q).map_err(|e| refused(e.to_string()))?;
    crate::fsutil::atomic_write(&queue_dir(repo)?.join(format!("{}.json", q.id)), &text)?;
    Ok(())
}

/// Notes in queue entry `q`, which stays queued, why it failed.
pub(crate) fn mark_failed(repo: &Repo, q: &Queued, why: &str) -> Result<()> {
    write_entry(
        repo,
        &Queued {
            failed: Some(why.to_string()),
            ..q.clone()
        },
    )
}

/// Takes `q`, which ran, off the queue (see [`release_snapshots`]).
pub(crate) fn unqueue(repo: &Repo, q: &Queued) -> Result<()> {
    match fs_err::remove_file(queue_dir(repo)?.join(format!("{}.json", q.id))) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
        _ => Ok(()),
    }
}

/// Deletes the refs of work trees that no queued experiment runs from any more.
pub(crate) fn release_snapshots(repo: &Repo, git: &Git) -> Result<()> {
    let _editing = edit_lock(repo)?;
    let waiting: Vec<String> = queued(repo)?.into_iter().filter_map(|q| q.snapshot).collect();
    for commit in git.commits_under(QUEUED_REFS)? {
        if !waiting.contains(&commit.to_string()) {
            git.delete_ref(&format!("{QUEUED_REFS}{commit}"))?;
        }
    }
    Ok(())
}

/// Holds the queue for `dvt queue start` while the returned file lives; fails,
/// naming the holder, if another `queue start` runs. (`queue status` takes the
/// same lock for a moment to see whether one runs: that is waited out.)
pub(crate) fn hold_queue(repo: &Repo) -> Result<crate::repo::LockFile> {
    repo.lock_named_patiently("exp-queue", "dvt queue start")
}

/// Who runs the queue now (`pid N: dvt queue start`), if anyone does.
pub fn queue_runner(repo: &Repo) -> Result<Option<String>> {
    match repo.lock_named("exp-queue", "dvt queue status") {
        Ok(_free) => Ok(None),
        Err(crate::Error::Repo(crate::error::RepoError::Locked { holder, .. })) => Ok(Some(holder)),
        Err(e) => Err(e),
    }
}

/// Takes queued experiments (by id or name; `all`: every one not running) off
/// the queue; one that is running is refused: it leaves the queue when recorded.
pub fn dequeue(repo: &Repo, which: &[String], all: bool) -> Result<Vec<Queued>> {
    let waiting = queued(repo)?;
    let mut running = Vec::new();
    for q in &waiting {
        if crate::ops::queue::state(repo, q)? == QueueState::Running {
            running.push(q.id.clone());
        }
    }
    let doomed: Vec<Queued> = match all {
        // Those running leave the queue when recorded.
        true => waiting.into_iter().filter(|q| !running.contains(&q.id)).collect(),
        false => {
            let mut out = Vec::new();
            for w in which {
                let q = waiting
                    .iter()
                    .find(|q| q.id == *w || q.name.as_deref() == Some(w.as_str()))
                    .ok_or_else(|| refused(format!("nothing queued is named `{w}` (`dvt queue status` lists them)")))?;
                out.push(q.clone());
            }
            out
        }
    };
    for q in &doomed {
        if running.contains(&q.id) {
            return Err(refused(format!(
                "queued experiment {} is running; it leaves the queue when it is recorded",
                q.id
            )));
        }
    }
    for q in &doomed {
        unqueue(repo, q)?;
    }
    release_snapshots(repo, &Git::open(repo.root())?)?;
    Ok(doomed)
}

/// `dvt queue remove --queued/--failed` (as DVC's): takes off the queue those
/// waiting to run (`waiting`: not failed) and/or those that failed the last
/// time they ran; none that is running.
pub fn dequeue_by_state(repo: &Repo, waiting: bool, failed: bool) -> Result<Vec<Queued>> {
    let mut ids = Vec::new();
    for q in queued(repo)? {
        let chosen = if q.failed.is_some() { failed } else { waiting };
        if chosen && crate::ops::queue::state(repo, &q)? != QueueState::Running {
            ids.push(q.id);
        }
    }
    match ids.is_empty() {
        true => Ok(Vec::new()),
        false => dequeue(repo, &ids, false),
    }
}

/// `dvt queue start`: runs the queued experiments one after another, in this
/// workspace, each from the params files it was queued with; each leaves the
/// queue once recorded. A failing one stops the queue and stays in it. Before
/// each, params files whose content is in no commit or experiment are not
/// overwritten: the queue stops and says so.
pub fn run_queue(
    repo: &Repo,
    on_run: OnRun<'_>,
    on_start: &dyn Fn(&Queued),
    progress: &dyn Progress,
) -> Result<Vec<ExpRunReport>> {
    let _running = hold_queue(repo)?;
    crate::ops::queue::clear_stop(repo)?;
    let git = Git::open(repo.root())?;
    let mut done = Vec::new();
    for q in queued(repo)? {
        if crate::ops::queue::stop_requested(repo)? {
            crate::ops::queue::clear_stop(repo)?;
            break;
        }
        // What the params files hold now: checked, and put back if the run fails.
        // (`files` holds every params file the run writes: those `-S` names too.)
        let mut before = Vec::new();
        for f in q.files.keys() {
            before.push((f.clone(), crate::pipeline::read_file(repo, f)?));
        }
        let mut lost = Vec::new();
        for (f, now) in &before {
            if let Some(now) = now
                && *now != q.files[f]
                && !git.has_object(git.blob_id_of(now.as_bytes())?)
            {
                lost.push(f.clone());
            }
        }
        if !lost.is_empty() {
            return Err(refused(format!(
                "queued experiment {} would overwrite changes to {} that are in no commit or experiment; \
                 commit them (or `dvt exp run` them) first",
                q.id,
                lost.join(", ")
            )));
        }
        for (f, text) in &q.files {
            crate::fsutil::atomic_write(&repo.root().join(f), text.as_bytes())?;
        }
        on_start(&q);
        let group = crate::ops::queue::group_file(repo, &q.id)?;
        let _running = crate::ops::queue::hold(repo, &format!("queue-{}", q.id), "a queued experiment running")?;
        let opts = q.run_options(ReproOptions {
            group: Some(group),
            ..Default::default()
        });
        let report = match run(repo, &opts, &|_| {}, on_run, progress) {
            Ok(r) => r,
            Err(e) => {
                for (f, text) in &before {
                    let path = repo.root().join(f);
                    match text {
                        Some(t) => crate::fsutil::atomic_write(&path, t.as_bytes())?,
                        None => fs_err::remove_file(&path)?,
                    }
                }
                mark_failed(repo, &q, &crate::error_chain(&e))?;
                return Err(refused(format!(
                    "queued experiment {} failed, and stays queued with those after it \
                     (its params files are back as they were): {e}",
                    q.id
                )));
            }
        };
        unqueue(repo, &q)?;
        release_snapshots(repo, &git)?;
        done.push(report);
    }
    crate::ops::queue::clear_stop(repo)?;
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(v: &str) -> Vec<String> {
        sweep_values("k=…", v).unwrap().unwrap()
    }

    #[test]
    fn lists_and_quotes_keep_their_commas_in_a_sweep() {
        assert_eq!(split_outside_lists("1,2"), ["1", "2"]);
        assert_eq!(split_outside_lists("[64,32],[8]"), ["[64,32]", "[8]"]);
        assert_eq!(split_outside_lists("[[1,2],[3]],4"), ["[[1,2],[3]]", "4"]);
        assert_eq!(split_outside_lists(r#""a,b",'c,[d',e"#), [r#""a,b""#, "'c,[d'", "e"]);
        assert_eq!(split_outside_lists(""), [""]);
    }

    #[test]
    fn sweeps_expand_as_hydra_does() {
        assert_eq!(values("choice(a, b,c)"), ["a", "b", "c"]);
        assert_eq!(values("range(1,4)"), ["1", "2", "3"]);
        assert_eq!(values("range(10, 0, -5)"), ["10", "5"]);
        assert_eq!(values("range(0.1, 0.5, 0.1)"), ["0.1", "0.2", "0.3", "0.4"]);
        assert_eq!(values("range(0, 1, 0.25)"), ["0.0", "0.25", "0.5", "0.75"]);
        assert_eq!(sweep_values("k", "0.1,0.2").unwrap(), None);
        for bad in [
            "range(1)",
            "range(1,2,0)",
            "range(a,b)",
            "range(3,1)",
            "choice(a,,b)",
            "range(0,1e9)",
        ] {
            assert!(sweep_values("k", bad).is_err(), "{bad}");
        }
        let combos = grid(&["a=range(1,3)".into(), "b=choice(x,y)".into(), "c=5".into()]).unwrap();
        assert_eq!(
            combos,
            [
                ["a=1", "b=x", "c=5"],
                ["a=1", "b=y", "c=5"],
                ["a=2", "b=x", "c=5"],
                ["a=2", "b=y", "c=5"]
            ]
        );
        assert!(grid(&["a=range(0,200)".into(), "b=range(0,200)".into()]).is_err());
    }
}
