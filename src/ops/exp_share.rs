//! `dvt exp pull`, `dvt exp push` and `dvt exp list GIT_REMOTE` (as DVC's):
//! sharing experiments between clones. An experiment's commit goes through the
//! git remote (`refs/exps/NAME` there), its data through the dvt remote, as a
//! branch's commits go through git and its data through `dvt push`.

use std::path::PathBuf;

use serde::Serialize;

use crate::error::{GitError, Result};

use crate::git::{EXP_REFS, Git, GitId, RefUpdate, RemoteExperiment};
use crate::ops::transfer::{FetchReport, PushReport, TransferOptions};
use crate::progress::Progress;
use crate::repo::Repo;
use crate::snapshot::Revisions;

/// What `exp pull` / `exp push` move, and where.
#[derive(Debug, Clone, Default)]
pub struct ExpShareOptions {
    /// The git remote: a remote of git's configuration (`origin`), a URL, or a path.
    pub git_remote: String,
    /// The experiments, by name; none means those `select` picks (on the git
    /// remote for a pull, here for a push).
    pub names: Vec<String>,
    /// Which experiments, when `names` is empty.
    pub select: Selection,
    /// Replace an experiment of the same name that names another commit.
    pub force: bool,
    /// Move the commits only, not the data (DVC's `--no-cache`).
    pub no_data: bool,
    /// With the data, the run cache too: its entries and their outs (DVC's
    /// `--run-cache`), so that the other side restores runs it did not make.
    pub run_cache: bool,
    /// The dvt remote for the data; `None` for the default one.
    pub remote: Option<String>,
    /// Transfers at once; `None` for the remote's `jobs` or the default.
    pub jobs: Option<usize>,
    /// The directory a relative path to the git remote starts from.
    pub cwd: PathBuf,
}

/// An experiment moved (or not) between repositories.
#[derive(Debug, Clone, Serialize)]
pub struct SharedExperiment {
    /// Its name.
    pub name: String,
    /// Its commit.
    pub commit: String,
    /// What became of the receiving side's `refs/exps/NAME`.
    pub update: RefUpdate,
}

/// Which experiments `exp push`/`exp pull` move when none is named (DVC's
/// `--all-commits`, `--rev`, `--num`).
#[derive(Debug, Clone, Default)]
pub enum Selection {
    /// Those run on HEAD (DVC's default).
    #[default]
    Head,
    /// Those run on `rev` or on one of the `num - 1` commits before it (first
    /// parents); `num` 0 counts as 1.
    Revs {
        /// Where to start.
        rev: String,
        /// How many commits.
        num: usize,
    },
    /// Those run on HEAD, on the tip of every local branch (`branches`), or
    /// on a commit a tag names (`tags`): DVC's `-a` and `-T`.
    Tips {
        /// Every local branch's tip.
        branches: bool,
        /// Every tagged commit.
        tags: bool,
    },
    /// Every experiment.
    All,
}

impl Selection {
    /// The commits whose experiments are chosen, from the newest back; `None`
    /// for all.
    pub(crate) fn baselines(&self, git: &Git) -> Result<Option<Vec<GitId>>> {
        let (start, num) = match self {
            Selection::All => return Ok(None),
            Selection::Tips { branches, tags } => {
                let mut out: Vec<GitId> = git.head()?.into_iter().collect();
                let mut tips = Vec::new();
                if *branches {
                    tips.extend(git.branches()?);
                }
                if *tags {
                    tips.extend(git.tags()?);
                }
                for (_, commit) in tips {
                    if !out.contains(&commit) {
                        out.push(commit);
                    }
                }
                return Ok(Some(out));
            }
            // No commit yet: no experiment either.
            Selection::Head => (git.head()?, 1),
            Selection::Revs { rev, num } => (Some(git.resolve(rev)?), (*num).max(1)),
        };
        let mut out = Vec::new();
        let mut at = start;
        while let Some(commit) = at.filter(|_| out.len() < num) {
            out.push(commit);
            at = git.parent_of(commit)?;
        }
        Ok(Some(out))
    }
}

/// What `exp pull` did.
#[derive(Debug, Serialize)]
pub struct ExpPullReport {
    /// The git remote, as given.
    pub git_remote: String,
    /// The experiments, by name.
    pub experiments: Vec<SharedExperiment>,
    /// The fetch of their data, unless `no_data` or none was taken.
    pub data: Option<FetchReport>,
}

/// What `exp push` did.
#[derive(Debug, Serialize)]
pub struct ExpPushReport {
    /// The git remote, as given.
    pub git_remote: String,
    /// The experiments, by name.
    pub experiments: Vec<SharedExperiment>,
    /// The push of their data, unless `no_data`.
    pub data: Option<PushReport>,
}

/// An experiment of a git remote, as `exp list GIT_REMOTE` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct ListedExperiment {
    /// Its name.
    pub name: String,
    /// Its commit there.
    pub commit: String,
}

/// The experiments of the git remote `git_remote` that `select` picks, by
/// name.
pub fn remote_list(
    repo: &Repo,
    git_remote: &str,
    cwd: &std::path::Path,
    select: &Selection,
) -> Result<Vec<ListedExperiment>> {
    let git = Git::open(repo.root())?;
    let there = git.remote_experiments(git_remote, cwd)?;
    Ok(select_remote(&git, git_remote, cwd, there, select)?
        .into_iter()
        .map(|e| ListedExperiment {
            name: e.name,
            commit: e.commit.to_string(),
        })
        .collect())
}

/// Brings the experiments `opts.names` (or, if none, those `opts.select`
/// picks; from across the network this fetches every experiment's commits to
/// learn what each was run on) of the git remote here,
/// then fetches their data from the dvt remote. An experiment of the same name
/// here that names another commit stays as it is unless `force`, and its data
/// is not fetched.
pub fn pull(repo: &Repo, opts: &ExpShareOptions, progress: &dyn Progress) -> Result<ExpPullReport> {
    let git = Git::open(repo.root())?;
    let there = git.remote_experiments(&opts.git_remote, &opts.cwd)?;
    let chosen = match opts.names.is_empty() {
        false => choose(&there, &opts.names, || format!("`{}`", opts.git_remote))?,
        true => select_remote(&git, &opts.git_remote, &opts.cwd, there, &opts.select)?,
    };
    let updates = git.pull_experiments(&opts.git_remote, &opts.cwd, &chosen, opts.force)?;
    let experiments: Vec<SharedExperiment> = chosen
        .iter()
        .zip(updates)
        .map(|(e, u)| SharedExperiment {
            name: e.name.clone(),
            commit: e.commit.to_string(),
            update: u,
        })
        .collect();
    let revs: Vec<String> = experiments
        .iter()
        .filter(|e| e.update != RefUpdate::Kept)
        .map(|e| e.commit.clone())
        .collect();
    let data = match opts.no_data || revs.is_empty() {
        true => None,
        false => Some(crate::ops::fetch(repo, &data_of(opts, revs), progress)?),
    };
    Ok(ExpPullReport {
        git_remote: opts.git_remote.clone(),
        experiments,
        data,
    })
}

/// Pushes the data of the experiments `opts.names` (or, if none, those
/// `opts.select` picks) to the dvt
/// remote, then their commits to the git remote. An experiment of the same
/// name there that names another commit stays as it is unless `force`.
pub fn push(repo: &Repo, opts: &ExpShareOptions, progress: &dyn Progress) -> Result<ExpPushReport> {
    let git = Git::open(repo.root())?;
    let wanted = match opts.names.is_empty() {
        true => opts.select.baselines(&git)?,
        false => None,
    };
    let here: Vec<RemoteExperiment> = git
        .experiments()?
        .into_iter()
        .filter(|e| match &wanted {
            Some(w) => e.baseline.is_some_and(|b| w.contains(&b)),
            None => true,
        })
        .map(|e| RemoteExperiment {
            name: e.name,
            commit: e.commit,
        })
        .collect();
    let mut chosen = choose(&here, &opts.names, || "this repository".to_string())?;
    chosen.sort_by(|a, b| a.name.cmp(&b.name));
    // Data first: a commit that arrives before its data would make a pull of
    // it fail in the next clone.
    let data = match opts.no_data || chosen.is_empty() {
        true => None,
        false => Some(crate::ops::push(
            repo,
            &data_of(opts, chosen.iter().map(|e| e.commit.to_string()).collect()),
            progress,
        )?),
    };
    let updates = git.push_experiments(&opts.git_remote, &opts.cwd, &chosen, opts.force)?;
    let experiments = chosen
        .iter()
        .zip(updates)
        .map(|(e, update)| SharedExperiment {
            name: e.name.clone(),
            commit: e.commit.to_string(),
            update,
        })
        .collect();
    Ok(ExpPushReport {
        git_remote: opts.git_remote.clone(),
        experiments,
        data,
    })
}

/// Renames the experiment `old` on the git remote `git_remote` to `new` (as
/// `dvc exp rename --git-remote`): `refs/exps/NEW` there names its commit,
/// then `refs/exps/OLD` goes, so an interruption leaves both names, never
/// neither. A name in use there is refused unless `force`; nothing here
/// changes. Returns the commit.
pub fn remote_rename(
    repo: &Repo,
    git_remote: &str,
    old: &str,
    new: &str,
    force: bool,
    cwd: &std::path::Path,
) -> Result<String> {
    crate::ops::exp::check_name(new)?;
    let git = Git::open(repo.root())?;
    let there = git.remote_experiments(git_remote, cwd)?;
    let exp = choose(&there, &[old.to_string()], || format!("`{git_remote}`"))?.remove(0);
    if exp.name == new {
        return Ok(exp.commit.to_string());
    }
    if !force && there.iter().any(|e| e.name == new) {
        return Err(crate::ops::exp::refused(format!(
            "`{git_remote}` has an experiment named `{new}` already (`-f` replaces it)"
        )));
    }
    let refs = [
        crate::git::RefPush {
            name: format!("{EXP_REFS}{new}"),
            id: Some(exp.commit),
        },
        crate::git::RefPush {
            name: format!("{EXP_REFS}{}", exp.name),
            id: None,
        },
    ];
    git.push_refs(git_remote, cwd, &refs, force, "the renaming of an experiment")?;
    Ok(exp.commit.to_string())
}

/// Deletes the experiments `names` (all of them with `all`) from the git
/// remote `git_remote` (as `dvc exp remove --git-remote`); their data stays on
/// the dvt remote. An experiment the git remote lacks is an error that names
/// those it has, and nothing is deleted.
pub fn remote_remove(
    repo: &Repo,
    git_remote: &str,
    names: &[String],
    all: bool,
    cwd: &std::path::Path,
) -> Result<Vec<SharedExperiment>> {
    let git = Git::open(repo.root())?;
    let there = git.remote_experiments(git_remote, cwd)?;
    let chosen = match all {
        true => there,
        false => choose(&there, names, || format!("`{git_remote}`"))?,
    };
    if chosen.is_empty() {
        return Ok(Vec::new());
    }
    let names: Vec<String> = chosen.iter().map(|e| e.name.clone()).collect();
    let updates = git.remove_remote_experiments(git_remote, cwd, &names)?;
    Ok(chosen
        .into_iter()
        .zip(updates)
        .map(|(e, update)| SharedExperiment {
            name: e.name,
            commit: e.commit.to_string(),
            update,
        })
        .collect())
}

/// Those of `there`, the experiments of the git remote `git_remote`, that
/// `select` picks: from across the network, learning what each was run on
/// means fetching its commit.
fn select_remote(
    git: &Git,
    git_remote: &str,
    cwd: &std::path::Path,
    there: Vec<RemoteExperiment>,
    select: &Selection,
) -> Result<Vec<RemoteExperiment>> {
    let Some(wanted) = select.baselines(git)? else {
        return Ok(there);
    };
    let baselines = git.remote_experiment_baselines(git_remote, cwd, &there)?;
    Ok(there
        .into_iter()
        .zip(baselines)
        .filter(|(_, b)| b.is_some_and(|b| wanted.contains(&b)))
        .map(|(e, _)| e)
        .collect())
}

/// Those of `all` named in `names` (all of them if none), or an error naming
/// the first that `all` lacks, said to be missing from `place()`.
fn choose(all: &[RemoteExperiment], names: &[String], place: impl Fn() -> String) -> Result<Vec<RemoteExperiment>> {
    if names.is_empty() {
        return Ok(all.to_vec());
    }
    let mut out = Vec::new();
    for n in names {
        match all.iter().find(|e| e.name == *n) {
            Some(e) if !out.contains(e) => out.push(e.clone()),
            Some(_) => {}
            None => {
                return Err(GitError::Failed {
                    what: "finding experiments".into(),
                    message: format!(
                        "{} has no experiment `{n}` ({})",
                        place(),
                        match all.is_empty() {
                            true => "it has none".to_string(),
                            false => format!(
                                "it has {}",
                                all.iter()
                                    .map(|e| format!("`{}`", e.name))
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        }
                    ),
                }
                .into());
            }
        }
    }
    Ok(out)
}

/// A transfer of the data of the commits `revs` alone.
fn data_of(opts: &ExpShareOptions, revs: Vec<String>) -> TransferOptions {
    TransferOptions {
        cwd: opts.cwd.clone(),
        remote: opts.remote.clone(),
        jobs: opts.jobs,
        revisions: Revisions {
            revs,
            ..Default::default()
        },
        revisions_only: true,
        allow_missing: false,
        run_cache: opts.run_cache,
        ..Default::default()
    }
}
