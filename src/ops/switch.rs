//! What a branch switch leaves behind. git deletes the files the old commit
//! tracked and the new one does not; the data dvt tracked there stays in the
//! workspace, no longer in any `.gitignore`, where the next `git add -A` would
//! commit it. [`leave_behind`] deletes that data when nothing is lost: it is as
//! the old commit recorded it, and the cache holds it (so going back checks it
//! out again), as `dvc checkout` deletes the outputs it wrote that no stage
//! names any more (treeverse/dvc#2146).

use std::collections::BTreeSet;

use serde::Serialize;

use crate::error::Result;
use crate::git::Git;
use crate::repo::Repo;
use crate::snapshot::{Snapshot, short};
use crate::workspace::{Tracked, missing_objects};

/// What [`leave_behind`] did with the data the old commit tracked and the
/// workspace no longer does.
#[derive(Debug, Default, Serialize)]
pub struct LeftBehind {
    /// The old commit, short.
    pub from: String,
    /// Data paths deleted (repo-relative): as the old commit recorded them, and
    /// in the cache.
    pub removed: Vec<String>,
    /// Data paths left in place, each with why.
    pub kept: Vec<Kept>,
}

impl LeftBehind {
    /// Whether nothing was removed or left.
    pub fn is_empty(&self) -> bool {
        self.removed.is_empty() && self.kept.is_empty()
    }
}

/// Data left in the workspace after a switch.
#[derive(Debug, Serialize)]
pub struct Kept {
    /// The data path, repo-relative.
    pub path: String,
    /// Why it stays: changes the old commit did not record, or data the cache lacks.
    pub reason: String,
}

/// Deletes the data that commit `old` tracked (pointer files and `dvt.lock`'s
/// cached outs) and neither commit `new` nor the workspace tracks (as git
/// deletes the files one tree has and the other lacks), where nothing is lost: the
/// workspace holds exactly what `old` recorded and the cache holds all of it.
/// Data with changes `old` did not record, or that the cache lacks, stays and is
/// named in [`LeftBehind::kept`]. Paths that the workspace tracks (a pointer, a
/// stage's out) or git tracks, at, above or below them, are not touched. An
/// `old` that does not name a commit (a fresh clone's all-zero id) leaves
/// everything.
pub fn leave_behind(repo: &Repo, old: &str, new: &str) -> Result<LeftBehind> {
    let Ok(git) = Git::open(repo.root()) else {
        return Ok(LeftBehind::default());
    };
    let (Ok(id), Ok(new_id)) = (git.resolve(old), git.resolve(new)) else {
        return Ok(LeftBehind::default());
    };
    leave_behind_between(repo, git, (id, old), (new_id, new))
}

/// [`leave_behind`] with the repository open and both commits resolved, each
/// as its id and the name messages give it.
fn leave_behind_between(
    repo: &Repo,
    git: Git,
    (id, old): (crate::git::GitId, &str),
    (new_id, new): (crate::git::GitId, &str),
) -> Result<LeftBehind> {
    if id == new_id {
        return Ok(LeftBehind::default());
    }
    let git = std::rc::Rc::new(git);
    // Held from here: what the workspace tracks must not change meanwhile.
    let _lock = repo.lock("dvt checkout")?;
    let gone = left_in_workspace(repo, untracked_since(repo, &git, (id, old), (new_id, new))?)?;
    let mut report = LeftBehind {
        from: short(&id),
        ..Default::default()
    };
    if gone.is_empty() {
        return Ok(report);
    }
    let stat = repo.stat_cache();
    for t in gone {
        match unchanged_and_cached(repo, &stat, &t) {
            Ok(()) => {
                match fs_err::symlink_metadata(&t.data_abs) {
                    Ok(m) if m.is_dir() => fs_err::remove_dir_all(&t.data_abs)?,
                    _ => fs_err::remove_file(&t.data_abs)?,
                }
                remove_empty_parents(repo, &t.data_abs);
                report.removed.push(t.data_rel);
            }
            Err(reason) => report.kept.push(Kept {
                path: t.data_rel,
                reason,
            }),
        }
    }
    let _ = stat.save();
    Ok(report)
}

/// Of `gone`, what is still in the workspace and not in git's index (git's
/// own, once there).
fn left_in_workspace(repo: &Repo, mut gone: Vec<Tracked>) -> Result<Vec<Tracked>> {
    gone.retain(|t| fs_err::symlink_metadata(&t.data_abs).is_ok());
    let rels: Vec<&str> = gone.iter().map(|t| t.data_rel.as_str()).collect();
    let in_git: BTreeSet<String> = crate::git::indexed_among(repo.root(), &rels)?
        .into_iter()
        .map(str::to_string)
        .collect();
    gone.retain(|t| !in_git.contains(&t.data_rel));
    Ok(gone)
}

/// The data commit `old` tracked (pointer files and `dvt.lock`'s cached outs)
/// that neither commit `new` nor the workspace tracks, itself or above or below
/// it. Each commit comes as its id and the name messages give it.
fn untracked_since(
    repo: &Repo,
    git: &std::rc::Rc<Git>,
    (old, old_name): (crate::git::GitId, &str),
    (new, new_name): (crate::git::GitId, &str),
) -> Result<Vec<Tracked>> {
    let then = Snapshot::at_commit(repo, git.clone(), old_name.to_string(), old);
    // A pointer `new` holds as it is names data `new` tracks: only the others,
    // and `dvt.lock`'s outs if it changed, are read (`status` asks after every
    // `git checkout`).
    let mut gone: Vec<Tracked> = then.pointers_not_in(new)?;
    let lock = crate::pipeline::LOCK_FILE;
    if git.blob_id(old, lock)? != git.blob_id(new, lock)? {
        gone.extend(then.lock_outs().unwrap_or_default());
    }
    if gone.is_empty() {
        return Ok(gone);
    }
    let mut kept_here = tracked_here(&Snapshot::workspace(repo));
    kept_here.extend(tracked_here(&Snapshot::at_commit(
        repo,
        git.clone(),
        new_name.to_string(),
        new,
    )));
    gone.retain(|t| !claimed(&kept_here, &t.data_rel));
    Ok(gone)
}

/// What the last switch left behind ([`Git::last_switch`]: data the old commit
/// tracked and nothing tracks now) where git's index holds files that HEAD
/// lacks, at or below it: a commit now would put that data into git's history
/// (`git add -A` after a switch whose hooks or checkout left it, changed).
/// Each with the old commit, short.
pub fn staged_left_behind(repo: &Repo) -> Result<Vec<(String, String)>> {
    let Ok(git) = Git::open(repo.root()) else {
        return Ok(Vec::new());
    };
    let Some((old, new)) = git.last_switch() else {
        return Ok(Vec::new());
    };
    let git = std::rc::Rc::new(git);
    let gone = untracked_since(repo, &git, (old, &old.to_string()), (new, &new.to_string()))?;
    let rels: Vec<&str> = gone.iter().map(|t| t.data_rel.as_str()).collect();
    let mut staged = Vec::new();
    for rel in crate::git::indexed_among(repo.root(), &rels)? {
        if matches!(git.list_tree(new, rel, false, false)?, crate::git::TreeAt::Missing) {
            staged.push((rel.to_string(), short(&old)));
        }
    }
    Ok(staged)
}

/// Data that the commit before HEAD's last move ([`Git::last_move`]: a
/// `git checkout`, merge, pull, reset, cherry-pick or revert) tracked, that
/// nothing tracks now, and that is still in the workspace where git neither
/// holds nor ignores it: the next `git add -A` would commit it.
#[derive(Debug, Serialize)]
pub struct LeftHere {
    /// The data path, repo-relative.
    pub path: String,
    /// The commit that tracked it, short.
    pub from: String,
    /// The git command that moved HEAD away from it (`checkout`, `reset`…).
    pub by: String,
    /// Whether it is as `from` recorded it, all in the cache: deleting it
    /// loses nothing.
    pub as_recorded: bool,
    /// Whether a plain `dvt checkout` deletes it: after a switch or merge
    /// ([`leave_behind_last_switch`]), if it is as recorded.
    pub checkout_deletes: bool,
}

/// What HEAD's last move left in the workspace (see [`LeftHere`]); nothing is
/// changed. `status` names it, since no hook runs for `git reset` and the
/// others, and after `git checkout` only when hooks are installed.
pub fn left_here(repo: &Repo) -> Result<Vec<LeftHere>> {
    let Ok(git) = Git::open(repo.root()) else {
        return Ok(Vec::new());
    };
    let Some((old, new, how)) = git.last_move() else {
        return Ok(Vec::new());
    };
    let git = std::rc::Rc::new(git);
    let gone = untracked_since(repo, &git, (old, &old.to_string()), (new, &new.to_string()))?;
    let gone = left_in_workspace(repo, gone)?;
    let paths: Vec<(&str, bool)> = gone
        .iter()
        .map(|t| (t.data_rel.as_str(), t.data_abs.is_dir()))
        .collect();
    let ignored: BTreeSet<String> = git
        .ignored_among(&paths)?
        .into_iter()
        .map(|(rel, _)| rel.to_string())
        .collect();
    let switched = crate::git::is_switch(how);
    let stat = repo.stat_cache();
    let mut out = Vec::new();
    for t in gone.into_iter().filter(|t| !ignored.contains(&t.data_rel)) {
        let as_recorded = unchanged_and_cached(repo, &stat, &t).is_ok();
        out.push(LeftHere {
            path: t.data_rel,
            from: short(&old),
            by: how.to_string(),
            as_recorded,
            checkout_deletes: switched && as_recorded,
        });
    }
    let _ = stat.save();
    Ok(out)
}

/// [`leave_behind`] for the last switch of HEAD that its reflog records, if
/// that is the last thing that moved HEAD ([`Git::last_switch`]): what a plain
/// `dvt checkout` after `git checkout` (no hooks) does, as `dvc checkout`
/// deletes the outputs no stage names any more. Run again, it finds nothing new.
pub fn leave_behind_last_switch(repo: &Repo) -> Result<LeftBehind> {
    let Ok(git) = Git::open(repo.root()) else {
        return Ok(LeftBehind::default());
    };
    let Some((old, new)) = git.last_switch() else {
        return Ok(LeftBehind::default());
    };
    leave_behind_between(repo, git, (old, &old.to_string()), (new, &new.to_string()))
}

/// The data paths `snap` tracks: its pointers and `dvt.lock`'s outs, and in the
/// workspace every out `dvt.toml` declares.
fn tracked_here(snap: &Snapshot<'_>) -> BTreeSet<String> {
    let mut paths: BTreeSet<String> = snap
        .pointers_lenient()
        .unwrap_or_default()
        .into_iter()
        .chain(snap.lock_outs().unwrap_or_default())
        .map(|t| t.data_rel)
        .collect();
    if snap.commit().is_none() {
        let repo = snap.repo();
        if let Ok(Some(p)) = crate::pipeline::Pipeline::load(repo) {
            paths.extend(p.stages.values().flat_map(|s| s.outs.iter().map(|o| o.path.clone())));
        }
        // A pointer that does not parse (conflict markers) still claims the
        // path its name gives.
        let pointers = crate::workspace::find_pointers(repo).unwrap_or_default();
        paths.extend(crate::workspace::named_data_paths(repo, &pointers));
    }
    paths
}

/// Whether `paths` holds `rel`, a directory above it or a path below it, in
/// a few lookups (a branch may track thousands of files one by one).
fn claimed(paths: &BTreeSet<String>, rel: &str) -> bool {
    let mut at = rel;
    loop {
        if paths.contains(at) {
            return true;
        }
        match at.rfind('/') {
            Some(i) => at = &at[..i],
            None => break,
        }
    }
    let below = format!("{rel}/");
    paths
        .range(below.clone()..)
        .next()
        .is_some_and(|p| p.starts_with(&below))
}

/// `Ok` if the workspace holds exactly what `t` records and the cache holds it
/// all; else why not.
fn unchanged_and_cached(
    repo: &Repo,
    stat: &crate::statcache::StatCache,
    t: &Tracked,
) -> std::result::Result<(), String> {
    let not_cached = || "data the cache lacks".to_string();
    let (state, manifest) = t.workspace_state(repo.cache(), stat).map_err(|e| match e {
        crate::error::Error::Cache(_) | crate::error::Error::Format(_) => not_cached(),
        e => e.to_string(),
    })?;
    if !state.is_unchanged() {
        return Err("changes not recorded there".into());
    }
    match missing_objects(repo.cache(), t, manifest.as_ref()) {
        Ok(missing) if missing.is_empty() => Ok(()),
        _ => Err(not_cached()),
    }
}

/// Deletes the directories above `abs` that are now empty, up to the root, as
/// git does for the files it deletes.
fn remove_empty_parents(repo: &Repo, abs: &std::path::Path) {
    let mut dir = abs.parent();
    while let Some(d) = dir {
        if d == repo.root() || !d.starts_with(repo.root()) || fs_err::remove_dir(d).is_err() {
            break;
        }
        dir = d.parent();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_is_claimed_by_itself_a_directory_above_or_a_path_below() {
        let paths: BTreeSet<String> = ["data/raw", "models/a.bin", "out"].map(String::from).into();
        for (rel, want) in [
            ("data/raw", true),
            ("data/raw/x.csv", true),
            ("data", true),
            ("data/raw2", false),
            ("data/ra", false),
            ("models", true),
            ("models/b.bin", false),
            ("out/deep/file", true),
            ("outs", false),
            ("z", false),
        ] {
            assert_eq!(claimed(&paths, rel), want, "{rel}");
        }
    }
}
