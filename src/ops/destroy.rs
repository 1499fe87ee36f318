//! `dvt destroy`: stop using dvt in a repository, as `dvc destroy` does. The
//! pointer files, the pipeline's `dvt.toml` and `dvt.lock`, the `.dvtignore`
//! files and the `.dvt` directory (with the cache, when it is there) are
//! deleted; the data stays in the workspace as plain files, still ignored by
//! git. dvt's git hooks and merge driver are removed.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::Result;
use crate::ops::status::Workspace;
use crate::pointer::Kind;
use crate::progress::Progress;
use crate::repo::{DVT_DIR, Repo};

/// What `destroy` deletes, and what would be lost with it.
#[derive(Debug, Clone, Serialize)]
pub struct DestroyPlan {
    /// Pointer files, repo-relative.
    pub pointers: Vec<String>,
    /// `dvt.toml` and `dvt.lock`, those present.
    pub pipeline_files: Vec<String>,
    /// `.dvtignore` files, repo-relative.
    pub ignore_files: Vec<String>,
    /// The cache directory.
    pub cache: PathBuf,
    /// Whether the cache is deleted (it is inside `.dvt`); a cache elsewhere is kept.
    pub cache_deleted: bool,
    /// Tracked data (repo-relative) that the workspace does not hold whole, as
    /// the pointer records it: missing, with files deleted, or whose pointer
    /// cannot be read. Its only copy here may be the cache.
    pub at_risk: Vec<String>,
    /// Those of `at_risk` that are pointer files dvt cannot read (malformed, or
    /// with a git merge conflict): what they track is unknown until they are mended.
    pub unreadable: Vec<String>,
}

/// Takes the repository lock (and the cache alone), works out what to delete,
/// refuses if the cache to delete holds data the workspace lacks (`at_risk`),
/// asks `confirm` (which may print the plan; `false` deletes nothing), then
/// deletes it: the files first, `.dvt` last, so that a run cut short leaves a
/// repository that the next `destroy` finishes. Returns the plan and whether
/// it was carried out.
pub fn destroy(
    repo: &Repo,
    confirm: &mut dyn FnMut(&DestroyPlan) -> Result<bool>,
    progress: &dyn Progress,
) -> Result<(DestroyPlan, bool)> {
    let lock = repo.lock_cache_alone("dvt destroy")?;
    // Experiments run in worktrees under `.dvt`: none may be running.
    let runs = crate::ops::queue::hold_all_runs(repo, "dvt destroy")?;
    let plan = plan(repo, progress)?;
    if plan.cache_deleted && !plan.at_risk.is_empty() {
        // Not even `--force` deletes data whose only copy here is the cache.
        return Err(std::io::Error::other(refusal(&plan)).into());
    }
    if !confirm(&plan)? {
        return Ok((plan, false));
    }
    let git = crate::git::Git::open(repo.root()).ok();
    if git.is_some() {
        crate::ops::install_hooks(repo, true)?;
    }
    if !plan.cache_deleted {
        // A shared cache no longer keeps data for this repository.
        repo.forget_cache_users(&[repo.root().to_path_buf()])?;
    }
    let files = plan
        .pointers
        .iter()
        .chain(&plan.pipeline_files)
        .chain(&plan.ignore_files);
    for rel in files {
        let path = repo.root().join(rel);
        match fs_err::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
            _ => crate::autostage::note(&path),
        }
    }
    // The lock file is in `.dvt` too: deleted while held, as nothing may start meanwhile.
    fs_err::remove_dir_all(repo.root().join(DVT_DIR))?;
    for committed in ["config.toml", ".gitignore"] {
        crate::autostage::note(&repo.root().join(DVT_DIR).join(committed));
    }
    // Worktrees that killed experiments left went with `.dvt`: git forgets them too.
    if let Some(git) = &git {
        crate::ops::queue::forget_gone_worktrees(repo, git)?;
    }
    drop((runs, lock));
    Ok((plan, true))
}

impl DestroyPlan {
    /// Those of `at_risk` whose pointer was read: data the workspace lacks.
    pub fn lacking(&self) -> Vec<&str> {
        self.at_risk
            .iter()
            .filter(|p| !self.unreadable.contains(p))
            .map(String::as_str)
            .collect()
    }
}

/// Why [`destroy`] keeps a cache that holds data at risk, and what to do.
fn refusal(plan: &DestroyPlan) -> String {
    let lacking = plan.lacking();
    let mut what = Vec::new();
    if !lacking.is_empty() {
        what.push(format!("data the workspace lacks ({})", lacking.join(", ")));
    }
    if !plan.unreadable.is_empty() {
        what.push(format!(
            "whatever the pointers dvt cannot read track ({})",
            plan.unreadable.join(", ")
        ));
    }
    let mut fixes = Vec::new();
    if !lacking.is_empty() {
        fixes.push("`dvt checkout` puts data back, `dvt remove` gives it up");
    }
    if !plan.unreadable.is_empty() {
        fixes.push("`dvt status` says what is wrong with a pointer: mend it, or `dvt remove` it");
    }
    format!(
        "not deleting the cache: it may hold the only copy here of {}; {}; then run `dvt destroy` again",
        what.join(", and of "),
        fixes.join("; ")
    )
}

/// What [`destroy`] would delete; deletes nothing.
pub fn plan(repo: &Repo, progress: &dyn Progress) -> Result<DestroyPlan> {
    let root = repo.root();
    let rel = |p: &Path| crate::workspace::rel_str(root, p);
    let pipeline_files = [crate::pipeline::PIPELINE_FILE, crate::pipeline::LOCK_FILE]
        .into_iter()
        .filter(|f| root.join(f).is_file())
        .map(str::to_string)
        .collect();
    let status = crate::ops::status(
        repo,
        &crate::ops::StatusOptions {
            targets: vec![],
            cwd: root.to_path_buf(),
            data_only: true,
            ..Default::default()
        },
        progress,
    )?;
    // Every pointer file is in the report (found by the same search), besides
    // the pipeline's outs.
    let pointers = status
        .pointers
        .iter()
        .filter(|p| p.pointer != crate::pipeline::LOCK_FILE)
        .map(|p| p.pointer.clone())
        .collect();
    // `.dvtignore` files outside tracked data, and inside tracked directories
    // (which git ignores, so the first search does not enter them).
    let is_ignore_file = |p: &Path| p.file_name().is_some_and(|n| n == crate::workspace::IGNORE_FILE);
    let mut found = crate::workspace::find_files(repo, &is_ignore_file)?;
    for p in status
        .pointers
        .iter()
        .filter(|p| p.kind == Some(Kind::Dir) && !p.path.is_empty())
    {
        let inside = ignore::WalkBuilder::new(root.join(&p.path))
            .standard_filters(false)
            .follow_links(false)
            .build();
        found.extend(
            inside
                .filter_map(|e| e.ok())
                .filter(|e| e.file_type().is_some_and(|t| t.is_file()) && is_ignore_file(e.path()))
                .map(ignore::DirEntry::into_path),
        );
    }
    found.sort();
    found.dedup();
    let ignore_files = found.iter().map(|p| rel(p)).collect::<Result<Vec<_>>>()?;
    let at_risk = status
        .pointers
        .iter()
        .filter(|p| p.error.is_some() || p.workspace == Workspace::Missing || !p.deleted.is_empty())
        .map(|p| {
            if p.path.is_empty() {
                p.pointer.clone()
            } else {
                p.path.clone()
            }
        })
        .collect();
    let unreadable = status
        .pointers
        .iter()
        .filter(|p| p.unreadable())
        .map(|p| p.pointer.clone())
        .collect();
    let cache = repo.cache().root().to_path_buf();
    let dvt_dir = root.join(DVT_DIR);
    let inside = |p: &Path| {
        let canon = |p: &Path| fs_err::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
        canon(p).starts_with(canon(&dvt_dir))
    };
    Ok(DestroyPlan {
        pointers,
        pipeline_files,
        ignore_files,
        cache_deleted: inside(&cache),
        cache,
        at_risk,
        unreadable,
    })
}
