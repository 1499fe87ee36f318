//! Experiments between repositories: listing the `refs/exps/*` of a git remote,
//! bringing their commits here, and taking ours there. Network remotes go
//! through gix's own transport (pushes through [`super::send`]); a remote on
//! disk is opened as a repository and its objects are copied, so no `git`
//! process is ever started (gix's transport for `file://` would start `git
//! upload-pack` or `git receive-pack`).

use std::collections::HashSet;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use gix::bstr::ByteSlice;
use gix::objs::Write as _;

use super::send::RefPush;
use super::{EXP_REFS, Git, GitId, failed};
use crate::error::{GitError, Result};

/// An experiment on a git remote: `refs/exps/NAME` there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteExperiment {
    /// Its name.
    pub name: String,
    /// The commit it names there.
    pub commit: GitId,
}

/// What taking an experiment from one repository to another did to the ref of
/// the receiving one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RefUpdate {
    /// It did not exist: created.
    New,
    /// It named the same commit already.
    Unchanged,
    /// It named another commit, and was replaced (`--force`).
    Replaced,
    /// It names another commit, and was left as it is (no `--force`).
    Kept,
    /// It was deleted (`exp remove --git-remote`).
    Deleted,
}

/// Where a git remote is.
enum Location {
    /// A repository on this machine.
    Disk(PathBuf),
    /// Anything gix's transport reaches (https://, http://, ssh://, git://).
    Network(gix::Url),
}

impl Git {
    /// `remote` as git's `fetch`/`push` take it: the name of a remote in git's
    /// configuration (`origin`, whose `pushurl` is used to push, if it has one),
    /// a URL, or a path. A relative path is taken from `cwd` (given on the
    /// command line) or from the work tree (configured).
    fn locate(&self, remote: &str, cwd: &Path, direction: gix::remote::Direction) -> Result<(Location, String)> {
        let fail = |message: String| GitError::Failed {
            what: format!("finding the git remote `{remote}`"),
            message,
        };
        let (url, base) = match self.repo.try_find_remote(remote.as_bytes().as_bstr()) {
            Some(found) => {
                let found = found.map_err(|e| fail(crate::error_chain(&e)))?;
                let url = found
                    .url(direction)
                    .cloned()
                    .ok_or_else(|| fail("it has no URL in git's configuration".into()))?;
                (url, self.root_dir())
            }
            None => {
                let url = gix::url::parse(remote.as_bytes().as_bstr()).map_err(|e| {
                    fail(format!(
                        "neither a remote of git's configuration (`git remote -v` lists them) nor a URL: {}",
                        crate::error_chain(&e)
                    ))
                })?;
                (url, cwd.to_path_buf())
            }
        };
        let shown = url.to_bstring().to_string();
        if url.scheme == gix::url::Scheme::File {
            let path = base.join(Path::new(std::ffi::OsStr::from_bytes(url.path.as_slice())));
            if !path.exists() {
                return Err(fail(format!(
                    "neither a remote of git's configuration (`git remote -v` lists them), nor a URL, nor a \
                     path that exists (`{}`)",
                    path.display()
                ))
                .into());
            }
            return Ok((Location::Disk(path), shown));
        }
        Ok((Location::Network(url), shown))
    }

    /// Fails unless `remote` names a git remote to push to (a remote of git's
    /// configuration, a URL, or a path that exists), before anything is made
    /// for it.
    pub fn check_push_remote(&self, remote: &str, cwd: &Path) -> Result<()> {
        self.locate(remote, cwd, gix::remote::Direction::Push).map(|_| ())
    }

    /// The experiments of the git remote `remote` (a remote of git's configuration,
    /// a URL or a path, as `git fetch` takes it), by name.
    pub fn remote_experiments(&self, remote: &str, cwd: &Path) -> Result<Vec<RemoteExperiment>> {
        let (location, url) = self.locate(remote, cwd, gix::remote::Direction::Fetch)?;
        let what = format!("listing the experiments of `{url}`");
        let mut out = match location {
            Location::Disk(path) => Git::open_external(&path)?
                .refs_under(EXP_REFS, &what)?
                .into_iter()
                .map(|(name, commit)| RemoteExperiment {
                    name,
                    commit: commit.id,
                })
                .collect(),
            Location::Network(url) => {
                let fail = |e: gix::Error| GitError::Failed {
                    what: what.clone(),
                    message: crate::error_chain(&e),
                };
                let remote = self
                    .repo
                    .remote_at(url)
                    .map_err(fail)?
                    .with_fetch_tags(gix::remote::fetch::Tags::None)
                    .with_refspecs(
                        [format!("{EXP_REFS}*:{EXP_REFS}*").as_str()],
                        gix::remote::Direction::Fetch,
                    )
                    .map_err(fail)?;
                let (map, _) = remote
                    .connect(gix::remote::Direction::Fetch)
                    .map_err(fail)?
                    .ref_map(gix::progress::Discard, Default::default())
                    .map_err(fail)?;
                map.mappings
                    .iter()
                    .filter_map(|m| {
                        let name = m.remote.as_name()?.to_str().ok()?.strip_prefix(EXP_REFS)?.to_string();
                        Some(RemoteExperiment {
                            name,
                            commit: m.remote.as_id()?.to_owned(),
                        })
                    })
                    .collect::<Vec<_>>()
            }
        };
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// The commit each of `exps` (as [`Git::remote_experiments`] listed them)
    /// was run on: its first parent, read there for a repository on disk; from
    /// across the network the commits are fetched first (no ref moves).
    pub fn remote_experiment_baselines(
        &self,
        remote: &str,
        cwd: &Path,
        exps: &[RemoteExperiment],
    ) -> Result<Vec<Option<GitId>>> {
        let there = match self.locate(remote, cwd, gix::remote::Direction::Fetch)?.0 {
            Location::Disk(path) => Git::open_external(&path)?,
            Location::Network(_) => {
                self.bring_commits(remote, cwd, exps)?;
                self.clone()
            }
        };
        exps.iter().map(|e| there.parent_of(e.commit)).collect()
    }

    /// Brings here the commits of `exps` (as [`Git::remote_experiments`] listed
    /// them) that this repository lacks, with everything they need, and points
    /// `refs/exps/NAME` at each: created, or replaced only with `force`.
    pub fn pull_experiments(
        &self,
        remote: &str,
        cwd: &Path,
        exps: &[RemoteExperiment],
        force: bool,
    ) -> Result<Vec<RefUpdate>> {
        self.bring_commits(remote, cwd, exps)?;
        exps.iter()
            .map(|e| set_exp_ref(self, &e.name, e.commit, force))
            .collect()
    }

    /// Brings here the commits of `exps` that this repository lacks, with
    /// everything they need; no ref moves.
    fn bring_commits(&self, remote: &str, cwd: &Path, exps: &[RemoteExperiment]) -> Result<()> {
        let (location, url) = self.locate(remote, cwd, gix::remote::Direction::Fetch)?;
        let what = format!("fetching experiments from `{url}`");
        let lacking: Vec<&RemoteExperiment> = exps.iter().filter(|e| !self.repo.has_object(e.commit)).collect();
        if !lacking.is_empty() {
            match location {
                Location::Disk(path) => {
                    let there = Git::open_external(&path)?;
                    for e in &lacking {
                        copy_objects(&there.repo, &self.repo, e.commit, &what)?;
                    }
                }
                Location::Network(url) => {
                    let fail = |e: gix::Error| GitError::Failed {
                        what: what.clone(),
                        message: crate::error_chain(&e),
                    };
                    // Refspecs without a destination: the objects come, no ref
                    // moves (`pull_experiments` sets them, by the same rule as
                    // from disk).
                    let specs: Vec<String> = lacking.iter().map(|e| format!("{EXP_REFS}{}", e.name)).collect();
                    self.repo
                        .remote_at(url)
                        .map_err(fail)?
                        .with_fetch_tags(gix::remote::fetch::Tags::None)
                        .with_refspecs(specs.iter().map(String::as_str), gix::remote::Direction::Fetch)
                        .map_err(fail)?
                        .connect(gix::remote::Direction::Fetch)
                        .map_err(fail)?
                        .prepare_fetch(gix::progress::Discard, Default::default())
                        .map_err(fail)?
                        .receive(gix::progress::Discard, crate::fsutil::interrupt_flag())
                        .map_err(fail)?;
                }
            }
            for e in &lacking {
                if !self.repo.has_object(e.commit) {
                    return Err(GitError::Failed {
                        what,
                        message: format!(
                            "experiment `{}` changed there while it was fetched (it no longer names {}): run the command again",
                            e.name,
                            e.commit.to_hex_with_len(7)
                        ),
                    }
                    .into());
                }
            }
        }
        Ok(())
    }

    /// Takes the experiments `exps` (name and commit, from [`Git::experiments`])
    /// to the git remote `remote`: their commits with everything they need, then
    /// `refs/exps/NAME` there, by [`Git::push_refs`]' rule.
    pub fn push_experiments(
        &self,
        remote: &str,
        cwd: &Path,
        exps: &[RemoteExperiment],
        force: bool,
    ) -> Result<Vec<RefUpdate>> {
        let refs: Vec<RefPush> = exps
            .iter()
            .map(|e| RefPush {
                name: format!("{EXP_REFS}{}", e.name),
                id: Some(e.commit),
            })
            .collect();
        self.push_refs(remote, cwd, &refs, force, "experiments")
    }

    /// Sets `refs` on the git remote `remote` (as `git push` takes it), with
    /// everything they need that it lacks, as `git push` does; `what` names them
    /// in errors. A ref there that names another object is replaced only with
    /// `force`. Into a repository on this machine dvt writes the objects
    /// itself; across the network it speaks git's push protocol.
    pub fn push_refs(
        &self,
        remote: &str,
        cwd: &Path,
        refs: &[RefPush],
        force: bool,
        what: &str,
    ) -> Result<Vec<RefUpdate>> {
        let (location, url) = self.locate(remote, cwd, gix::remote::Direction::Push)?;
        let what = format!("pushing {what} to `{url}`");
        match location {
            Location::Disk(path) => {
                let there = Git::open_external(&path)?;
                refs.iter()
                    .map(|r| match r.id {
                        Some(id) => {
                            copy_objects(&self.repo, &there.repo, id, &what)?;
                            set_ref_by_rule(&there, &r.name, id, force)
                        }
                        None => match there.has_ref(&r.name)? {
                            true => there.delete_ref(&r.name).map(|()| RefUpdate::Deleted),
                            false => Ok(RefUpdate::Unchanged),
                        },
                    })
                    .collect()
            }
            Location::Network(url) => self.push_refs_over_network(url, refs, force, &what),
        }
    }
}

impl Git {
    /// Deletes the experiments `names` from the git remote `remote` (as
    /// [`Git::remote_experiments`] takes it); one that is not there is
    /// [`RefUpdate::Unchanged`].
    pub fn remove_remote_experiments(&self, remote: &str, cwd: &Path, names: &[String]) -> Result<Vec<RefUpdate>> {
        let refs: Vec<RefPush> = names
            .iter()
            .map(|n| RefPush {
                name: format!("{EXP_REFS}{n}"),
                id: None,
            })
            .collect();
        self.push_refs(remote, cwd, &refs, false, "the removal of experiments")
    }
}

/// Points `refs/exps/NAME` of `git` at `commit`, by [`RefUpdate`]'s rule.
fn set_exp_ref(git: &Git, name: &str, commit: GitId, force: bool) -> Result<RefUpdate> {
    set_ref_by_rule(git, &format!("{EXP_REFS}{name}"), commit, force)
}

/// Points the ref `full` of `git` at `id`, by [`RefUpdate`]'s rule.
fn set_ref_by_rule(git: &Git, full: &str, id: GitId, force: bool) -> Result<RefUpdate> {
    let now = git
        .repo
        .try_find_reference(full)
        .map_err(failed(format!("looking up `{full}`")))?
        .and_then(|r| r.target().try_id().map(|t| t.to_owned()));
    let update = match now {
        None => RefUpdate::New,
        Some(t) if t == id => return Ok(RefUpdate::Unchanged),
        Some(_) if force => RefUpdate::Replaced,
        Some(_) => return Ok(RefUpdate::Kept),
    };
    git.set_ref(full, id, update == RefUpdate::Replaced)?;
    Ok(update)
}

/// Copies `tip` and every object it reaches that `to` lacks from `from` to
/// `to`. An object `to` has is taken to come with all it reaches, as git does;
/// so each object is written only after all it reaches, and a copy cut short
/// leaves no object whose parts are missing.
fn copy_objects(from: &gix::Repository, to: &gix::Repository, tip: GitId, what: &str) -> Result<()> {
    let fail = |message: String| GitError::Failed {
        what: what.to_string(),
        message,
    };
    // Depth first; an object read waits on the stack below the objects it names.
    enum Step {
        Visit(GitId),
        Write(GitId, gix::objs::Kind, Vec<u8>),
    }
    let mut todo = vec![Step::Visit(tip)];
    let mut seen = HashSet::new();
    while let Some(step) = todo.pop() {
        let id = match step {
            Step::Write(id, kind, data) => {
                to.objects
                    .write_buf(kind, &data)
                    .map_err(|e| fail(format!("writing object {id}: {e}")))?;
                continue;
            }
            Step::Visit(id) => id,
        };
        if !seen.insert(id) || to.has_object(id) {
            continue;
        }
        let object = from
            .find_object(id)
            .map_err(|e| fail(format!("reading object {id}: {}", crate::error_chain(&e))))?;
        let mut names = Vec::new();
        match gix::objs::ObjectRef::from_bytes(&object.data, object.kind, from.object_hash())
            .map_err(|e| fail(format!("object {id}: {e}")))?
        {
            gix::objs::ObjectRef::Commit(c) => {
                names.push(c.tree());
                names.extend(c.parents());
            }
            // Submodules' commits live in other repositories.
            gix::objs::ObjectRef::Tree(t) => names.extend(
                t.entries
                    .iter()
                    .filter(|e| !e.mode.is_commit())
                    .map(|e| e.oid.to_owned()),
            ),
            gix::objs::ObjectRef::Tag(t) => names.push(t.target()),
            gix::objs::ObjectRef::Blob(_) => {}
        }
        todo.push(Step::Write(id, object.kind, object.data.clone()));
        todo.extend(names.into_iter().map(Step::Visit));
    }
    Ok(())
}
