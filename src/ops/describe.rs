//! `dvt describe` (the run record a training job logs) and `dvt tag` (an
//! annotated git tag that names a data version, made only when that version is
//! committed and on the remote).

use serde::Serialize;

use crate::error::{Result, TagError};
use crate::git::{Git, GitId, RefPush, RefUpdate};
use crate::object::ObjectId;
use crate::pointer::Kind;
use crate::progress::NoProgress;
use crate::repo::Repo;
use crate::snapshot::{Objects, Snapshot};

/// One tracked path in a run record.
#[derive(Debug, Clone, Serialize)]
pub struct TrackedId {
    /// The data path, repo-relative.
    pub path: String,
    /// File or directory.
    pub kind: Kind,
    /// The content id (directories: the manifest's).
    pub id: ObjectId,
    /// Bytes.
    pub size: u64,
    /// Files, for directories.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub files: Option<u64>,
}

/// What a training run needs to record to find its code and data again.
#[derive(Debug, Clone, Serialize)]
pub struct Description {
    /// The commit at HEAD (full hex), `None` before the first commit.
    pub commit: Option<String>,
    /// The checked-out branch, if any.
    pub branch: Option<String>,
    /// Tags naming HEAD.
    pub tags: Vec<String>,
    /// Whether anything differs from HEAD: tracked git files, pointer files, or
    /// tracked data not yet added.
    pub dirty: bool,
    /// Files git tracks that differ between HEAD, the index and the work tree.
    pub git_dirty: bool,
    /// Pointer files that are new, changed or deleted relative to HEAD.
    pub uncommitted_pointers: Vec<String>,
    /// Tracked paths whose data differs from their pointer (what `dvt status` shows).
    pub changed_data: Vec<String>,
    /// Every tracked path in the workspace, with the id its pointer records.
    pub data: Vec<TrackedId>,
}

/// Pointer files in the workspace that differ from HEAD (new, changed or deleted).
pub fn uncommitted_pointers(repo: &Repo, git: &Git, head: Option<GitId>) -> Result<Vec<String>> {
    let ws = Snapshot::workspace(repo);
    let mut out = Vec::new();
    let mut in_ws = std::collections::BTreeSet::new();
    for t in ws.pointers()? {
        in_ws.insert(t.pointer_rel.clone());
        let bytes = fs_err::read(&t.pointer_file)?;
        let committed = match head {
            Some(h) => git.blob_id(h, &t.pointer_rel)?,
            None => None,
        };
        if committed != Some(git.blob_id_of(&bytes)?) {
            out.push(t.pointer_rel);
        }
    }
    if let Some(h) = head {
        for f in git.files_ending_with(h, &format!(".{}", crate::pointer::POINTER_EXT))? {
            if !in_ws.contains(&f.path) {
                out.push(f.path);
            }
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Describes HEAD and the workspace: commit, tags, dirtiness, and every tracked id.
pub fn describe(repo: &Repo) -> Result<Description> {
    let git = Git::open(repo.root())?;
    let head = git.head()?;
    let uncommitted = uncommitted_pointers(repo, &git, head)?;
    let status = crate::ops::status(
        repo,
        &crate::ops::StatusOptions {
            targets: vec![],
            cwd: repo.root().to_path_buf(),
            data_only: true,
            ..Default::default()
        },
        &NoProgress,
    )?;
    let changed_data: Vec<String> = status
        .pointers
        .iter()
        .filter(|p| !matches!(p.workspace, crate::ops::status::Workspace::Unchanged))
        .map(|p| p.path.clone())
        .collect();
    let data = Snapshot::workspace(repo)
        .pointers()?
        .into_iter()
        .map(|t| TrackedId {
            path: t.data_rel,
            kind: t.pointer.kind,
            id: t.pointer.id,
            size: t.pointer.size,
            files: t.pointer.files,
        })
        .collect();
    let git_dirty = head.is_some() && git.is_dirty()?;
    Ok(Description {
        commit: head.map(|h| h.to_string()),
        branch: git.head_branch()?,
        tags: match head {
            Some(h) => git.tags_at(h)?,
            None => Vec::new(),
        },
        dirty: git_dirty || !uncommitted.is_empty() || !changed_data.is_empty(),
        git_dirty,
        uncommitted_pointers: uncommitted,
        changed_data,
        data,
    })
}

/// Options of `dvt tag`.
#[derive(Debug, Clone, Default)]
pub struct TagOptions {
    /// The tag's name.
    pub name: String,
    /// Its message (default: `data version NAME`).
    pub message: Option<String>,
    /// The remote that must hold the data (default: the default remote).
    pub remote: Option<String>,
    /// The git remote to push the tag to, once made (a remote of git's
    /// configuration, a URL or a path), as `git push GIT_REMOTE tag NAME`.
    pub push: Option<String>,
    /// The directory a relative path to the git remote starts from.
    pub cwd: std::path::PathBuf,
    /// The commit to tag (default: HEAD, whose pointers must then all be
    /// committed).
    pub rev: Option<String>,
}

/// What `dvt tag` did.
#[derive(Debug, Clone, Serialize)]
pub struct TagReport {
    /// The tag.
    pub name: String,
    /// The commit it names.
    pub commit: String,
    /// The remote checked.
    pub remote: String,
    /// The other remotes checked, which pointers name (`remote = "NAME"`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub other_remotes: Vec<String>,
    /// Objects checked on the remotes.
    pub objects: usize,
    /// The git remote the tag was pushed to, if asked.
    pub pushed_to: Option<String>,
}

/// Creates annotated tag `opts.name` at HEAD, only if every pointer file is
/// committed and every object HEAD's pointers name is on the remote.
pub fn tag(repo: &Repo, opts: &TagOptions) -> Result<TagReport> {
    Git::check_ref_name(crate::git::RefKind::Tag, &opts.name)?;
    let git = std::rc::Rc::new(Git::open(repo.root())?);
    // (Named `head` for the commit tagged, HEAD's or that of `opts.rev`.)
    let head = match &opts.rev {
        Some(rev) => git.resolve(rev)?,
        None => {
            let head = git.head()?.ok_or(TagError::NoCommit)?;
            let uncommitted = uncommitted_pointers(repo, &git, Some(head))?;
            if !uncommitted.is_empty() {
                return Err(TagError::Uncommitted { pointers: uncommitted }.into());
            }
            head
        }
    };
    let label = opts.rev.clone().unwrap_or_else(|| "HEAD".into());
    let objects = Objects::new(repo, opts.remote.as_deref());
    let snap = Snapshot::at_commit(repo, git.clone(), label, head);
    let needed = snap.objects(&objects)?;
    // Each remote is asked about its own: pointers may name theirs.
    let by_remote = objects.by_remote(&needed, |n| n.0);
    let mut checked: Vec<String> = Vec::new();
    if by_remote.is_empty() {
        // Nothing to check; the remote must still be there.
        checked.push(objects.remote()?.name.clone());
    }
    for group in by_remote {
        // With no remote at all, the error says so (`remote_for` would say the
        // object is not in the cache, which it is).
        let remote = match objects.named_remote(&group[0].0) {
            Some(_) => objects.remote_for(&group[0].0, Some(&group[0].1))?,
            None => objects.remote()?,
        };
        checked.push(remote.name.clone());
        let ids: Vec<ObjectId> = group.iter().map(|(id, _)| *id).collect();
        let present = remote.block_on(remote.present(&ids, &|_| {}))?;
        let missing: Vec<String> = group
            .iter()
            .filter(|(id, _)| !present.contains(id))
            .map(|(id, path)| format!("{path} ({id})"))
            .collect();
        if !missing.is_empty() {
            return Err(TagError::NotOnRemote {
                remote: remote.name.clone(),
                missing,
            }
            .into());
        }
    }
    let message = opts
        .message
        .clone()
        .unwrap_or_else(|| format!("data version {}", opts.name));
    if let Some(git_remote) = &opts.push {
        git.check_push_remote(git_remote, &opts.cwd)?;
    }
    let tag = git.create_tag(&opts.name, head, &message)?;
    if let Some(git_remote) = &opts.push {
        let not_pushed = |reason: String| TagError::NotPushed {
            name: opts.name.clone(),
            git_remote: git_remote.clone(),
            reason,
        };
        let pushed = git
            .push_refs(
                git_remote,
                &opts.cwd,
                &[RefPush {
                    name: format!("refs/tags/{}", opts.name),
                    id: Some(tag),
                }],
                false,
                &format!("tag `{}`", opts.name),
            )
            .map_err(|e| not_pushed(e.to_string()))?;
        if pushed.first() == Some(&RefUpdate::Kept) {
            return Err(not_pushed("it has another tag of that name".into()).into());
        }
    }
    Ok(TagReport {
        name: opts.name.clone(),
        commit: head.to_string(),
        remote: checked.remove(0),
        other_remotes: checked,
        objects: needed.len(),
        pushed_to: opts.push.clone(),
    })
}
