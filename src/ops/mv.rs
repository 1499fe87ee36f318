//! `dvt move`: rename tracked data together with its pointer and its `.gitignore`
//! entry, as `dvc move` does. Nothing is hashed and the cache is not touched; the
//! stat cache's entries move with the data, so a moved directory is not hashed again.

use std::path::{Path, PathBuf};

use fs_err as fs;
use serde::Serialize;

use crate::error::{PathError, Result};
use crate::pointer::{Pointer, is_pointer_path, pointer_path_for};
use crate::repo::Repo;
use crate::workspace::{Targets, Tracked, file_name, rel_str, resolve_targets, tracked_ancestor};

/// What to move where.
#[derive(Debug, Clone)]
pub struct MoveOptions {
    /// The tracked data path or its pointer file.
    pub from: PathBuf,
    /// The new data path; an existing directory means "into it", as with `mv`.
    pub to: PathBuf,
    /// The directory relative paths start from.
    pub cwd: PathBuf,
}

/// What `move` did.
#[derive(Debug, Serialize)]
pub struct MoveReport {
    /// The old data path, repo-relative.
    pub from: String,
    /// The new data path, repo-relative.
    pub to: String,
    /// The pointer file written, repo-relative.
    pub pointer: String,
    /// The pointer file deleted, repo-relative.
    pub old_pointer: String,
    /// Whether data was in the workspace to be renamed (else only the pointer moved).
    pub moved_data: bool,
    /// Whether the data was at the new path already, as the pointer records it
    /// (moved by hand, `mv data data2`): the pointer followed it.
    pub moved_by_hand: bool,
    /// The `.gitignore` files changed, repo-relative.
    pub gitignores: Vec<String>,
    /// What `dvt.toml` names at the old path, left for the user to edit (as
    /// `dvc move`, `move` does not rewrite `dvt.toml`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub named_in_pipeline: Vec<NamedInPipeline>,
}

/// A path of `dvt.toml` at or inside moved data.
#[derive(Debug, Serialize)]
pub struct NamedInPipeline {
    /// `stage NAME` (a dependency) or `artifact NAME`.
    pub what: String,
    /// The path it names, repo-relative.
    pub path: String,
}

/// The deps and artifacts of `repo`'s `dvt.toml` at or inside `from`; none if
/// it cannot be read (the move does not need it).
fn named_in_pipeline(repo: &Repo, from: &str) -> Vec<NamedInPipeline> {
    let Ok(Some(pipeline)) = crate::pipeline::Pipeline::load(repo) else {
        return Vec::new();
    };
    let moved = |p: &str| crate::snapshot::inside(from, p).is_some();
    let deps = pipeline.stages.values().flat_map(|s| {
        s.deps.iter().filter(|d| moved(d)).map(|d| NamedInPipeline {
            what: format!("stage `{}`", s.name),
            path: d.clone(),
        })
    });
    let artifacts = pipeline
        .artifacts
        .iter()
        .filter(|(_, a)| moved(&a.path))
        .map(|(name, a)| NamedInPipeline {
            what: format!("artifact `{name}`"),
            path: a.path.clone(),
        });
    deps.chain(artifacts).collect()
}

/// Moves tracked data from `opts.from` to `opts.to`.
///
/// Every check is made before anything changes. Then, in this order: the new
/// pointer and its `.gitignore` entry are written (each atomically), the data is
/// renamed, and the old pointer and its entry go. A command killed in between
/// leaves both pointers, never neither; running the same move again finishes it.
pub fn mv(repo: &Repo, opts: &MoveOptions) -> Result<MoveReport> {
    let old_pointer = resolve_targets(repo, &opts.cwd, Targets::Named(std::slice::from_ref(&opts.from)))?
        .into_iter()
        .next()
        .ok_or_else(|| PathError::NotTracked {
            target: opts.from.display().to_string(),
            holds_tracked: false,
            closest: None,
        })?;
    // Loaded as every command loads it: the data path is the one the pointer names,
    // checked like any other.
    let Tracked {
        pointer,
        data_abs: old_data,
        data_rel: from,
        ..
    } = Tracked::load(repo, &old_pointer)?;

    let (mut new_data, mut to) = repo.resolve(&opts.cwd, &opts.to)?;
    let exists = |p: &Path| fs::symlink_metadata(p).is_ok();
    // `mv data data2` first, then `dvt move data data2`: the data is there
    // already, as recorded; the pointer follows it (not into it).
    let found = |abs: &Path, rel: &str| {
        !exists(&old_data) && exists(abs) && !is_pointer_path(abs) && holds_recorded(repo, &pointer, abs, rel)
    };
    let mut by_hand = found(&new_data, &to);
    let to_is_dir = fs::symlink_metadata(&new_data).is_ok_and(|m| m.is_dir());
    if to_is_dir && !by_hand && new_data != old_data && !pointer_path_for(&new_data).is_file() {
        new_data = new_data.join(file_name(&from));
        to = rel_str(repo.root(), &new_data)?;
        by_hand = found(&new_data, &to);
    }
    let bad = |reason| PathError::BadMove {
        from: from.clone(),
        to: to.clone(),
        reason,
    };
    if is_pointer_path(&new_data) {
        return Err(bad("name the new data path, not a pointer file").into());
    }
    if to == from {
        return Err(bad("it is the same path").into());
    }
    if to.starts_with(&format!("{from}/")) {
        return Err(bad("a directory cannot move into itself").into());
    }
    repo.check_trackable(&to)?;
    if let Some(tracked) = tracked_ancestor(repo, &to) {
        return Err(PathError::InsideTracked { path: to, tracked }.into());
    }
    crate::ops::add::refuse_ignored_pointers(repo, [to.as_str()])?;
    let new_pointer = pointer_path_for(&new_data);
    // A pointer already there that says the same is a move that was cut short,
    // unless data is at both places: then it is another tracked copy.
    let resuming = Pointer::load(&new_pointer).is_ok_and(|p| p.id == pointer.id && p.kind == pointer.kind)
        && !(exists(&old_data) && exists(&new_data));
    if !resuming {
        for (path, existing) in [(&new_pointer, format!("{to}.dvt")), (&new_data, to.clone())] {
            if exists(path) && !(by_hand && *path == new_data) {
                return Err(PathError::MoveTargetExists { from, to, existing }.into());
            }
        }
    }
    if let Ok(git) = crate::git::Git::open(repo.root())
        && let Some(tracked) = git.tracked_at_or_below(&to)?
    {
        return Err(PathError::TrackedByGit { path: to, tracked }.into());
    }

    let _lock = repo.lock(&format!("dvt move {from} {to}"))?;
    // Read before the move: a dependency that no longer exists is an error.
    let named_in_pipeline = named_in_pipeline(repo, &from);
    let new_dir = new_data.parent().unwrap_or(repo.root());
    fs::create_dir_all(new_dir)?;
    let mut moved = pointer.clone();
    moved.path = file_name(&to).to_string();
    moved.save(&new_pointer)?;
    let mut gitignores = Vec::new();
    if crate::gitignore::add(new_dir, file_name(&to))? {
        gitignores.push(rel_str(repo.root(), &new_dir.join(".gitignore"))?);
    }
    let moved_data = exists(&old_data) && !exists(&new_data);
    if moved_data {
        fs::rename(&old_data, &new_data)?;
        // The stat cache only saves work: failing to write it is not an error.
        let stat = repo.stat_cache();
        stat.rename_under(&from, &to);
        let _ = stat.save();
    }
    fs::remove_file(&old_pointer)?;
    crate::autostage::note(&old_pointer);
    let old_dir = old_data.parent().unwrap_or(repo.root());
    let old_gitignore = rel_str(repo.root(), &old_dir.join(".gitignore"))?;
    if crate::gitignore::remove(old_dir, file_name(&from))? && !gitignores.contains(&old_gitignore) {
        gitignores.push(old_gitignore);
    }
    Ok(MoveReport {
        old_pointer: rel_str(repo.root(), &old_pointer)?,
        pointer: format!("{to}.dvt"),
        from,
        to,
        moved_data,
        moved_by_hand: by_hand,
        gitignores,
        named_in_pipeline,
    })
}

/// Whether `abs` (repo-relative `rel`) holds exactly the data `pointer` records.
fn holds_recorded(repo: &Repo, pointer: &Pointer, abs: &Path, rel: &str) -> bool {
    let pointer_rel = format!("{rel}.dvt");
    let Ok(t) = Tracked::from_pointer(repo, &pointer_rel, named(pointer, rel), Path::new(&pointer_rel), false) else {
        return false;
    };
    debug_assert_eq!(t.data_abs, abs);
    t.workspace_state(repo.cache(), &repo.stat_cache())
        .is_ok_and(|(state, _)| state.is_unchanged())
}

/// `pointer`, naming the data `rel` (its file name).
fn named(pointer: &Pointer, rel: &str) -> Pointer {
    let mut p = pointer.clone();
    p.path = file_name(rel).to_string();
    p
}
