//! `dvt artifacts`: models and datasets by name. `dvt.toml` names them
//! (`[artifacts.NAME]`, with the tracked `path`, as dvc.yaml's `artifacts`),
//! and git tags give their versions and stages, as GTO writes them:
//! `NAME@v1.2.0` is version 1.2.0 (on the commit it tags), `NAME#prod#3`
//! the third assignment of stage `prod` (the highest number is the current
//! one). `dvt tag` makes either, once the data is pushed.

use std::path::PathBuf;

use serde::Serialize;

use crate::error::{ArtifactError, Result};
use crate::git::GitId;
use crate::ops::import::{ExternalConfig, GetOptions, GetReport, get_from, open_git, refuse_existing_out};
use crate::pipeline::{Artifact, PIPELINE_FILE, Pipeline};
use crate::progress::Progress;

/// What `dvt artifacts get` fetches, and where to.
#[derive(Debug, Clone)]
pub struct ArtifactGetOptions {
    /// The repository: a local path, a `file://` URL, or a git URL.
    pub repo: String,
    /// The artifact's name.
    pub name: String,
    /// The version (`1.2.0` or `v1.2.0`: the tag `NAME@v1.2.0`).
    pub version: Option<String>,
    /// The stage (`prod`: the commit its latest `NAME#prod#N` tag names).
    pub stage: Option<String>,
    /// Where to write (default: the path's last component, in `cwd`).
    pub out: Option<PathBuf>,
    /// The directory `out` is relative to.
    pub cwd: PathBuf,
    /// Replace what is at `out`.
    pub force: bool,
    /// Which of its remotes to read, and how.
    pub settings: ExternalConfig,
    /// Downloads at once from its remote (default: that remote's `jobs`).
    pub jobs: Option<usize>,
}

/// What `dvt artifacts get` did.
#[derive(Debug, Clone, Serialize)]
pub struct ArtifactGetReport {
    /// The artifact.
    pub name: String,
    /// Its version read (`v1.2.0`), if a version tag names the commit.
    pub version: Option<String>,
    /// The stage asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    /// Its path in the repository.
    pub path: String,
    /// The download.
    #[serde(flatten)]
    pub get: GetReport,
}

/// One artifact of a repository, with the versions and stages its tags give.
#[derive(Debug, Clone, Serialize)]
pub struct ArtifactEntry {
    /// Its name.
    pub name: String,
    /// As `dvt.toml` describes it.
    #[serde(flatten)]
    pub artifact: Artifact,
    /// Its versions, newest first (`v1.2.0`).
    pub versions: Vec<String>,
    /// Each stage, with what it holds now.
    pub stages: Vec<StageHeld>,
}

/// A stage of an artifact, and what it holds now.
#[derive(Debug, Clone, Serialize)]
pub struct StageHeld {
    /// The stage (`prod`).
    pub stage: String,
    /// The version its latest tag names (`v1.2.0`), or the commit (short)
    /// when no version tag names that one.
    pub holds: String,
}

fn no_version(name: &str, version: String, known: &[(String, GitId)]) -> crate::Error {
    ArtifactError::NoVersion {
        name: name.to_string(),
        version,
        known: known.iter().map(|(v, _)| v.clone()).collect(),
    }
    .into()
}

/// A version tag's version, as numbers to order by (`v1.10.0` after `v1.9.2`).
fn semver(version: &str) -> Option<Vec<u64>> {
    let v = version.strip_prefix('v')?;
    v.split('.').map(|p| p.parse().ok()).collect()
}

/// A version as given (`1.2.0` or `v1.2.0`) as its tag spells it: `v1.2.0`.
fn tag_version(v: &str) -> String {
    match v.starts_with('v') {
        true => v.to_string(),
        false => format!("v{v}"),
    }
}

/// The versions of `name` among `tags` (`v1.2.0`, with the commit), newest first.
fn versions(name: &str, tags: &[(String, GitId)]) -> Vec<(String, GitId)> {
    let prefix = format!("{name}@");
    let mut found: Vec<(String, GitId)> = tags
        .iter()
        .filter_map(|(t, c)| t.strip_prefix(&prefix).map(|v| (v.to_string(), *c)))
        .filter(|(v, _)| semver(v).is_some())
        .collect();
    found.sort_by_key(|v| std::cmp::Reverse(semver(&v.0)));
    found
}

/// The commit stage `stage` of `name` holds now: its `NAME#STAGE#N` tag of the
/// highest N (or a plain `NAME#STAGE`).
fn stage_commit(name: &str, stage: &str, tags: &[(String, GitId)]) -> Option<GitId> {
    let prefix = format!("{name}#{stage}");
    tags.iter()
        .filter_map(|(t, c)| {
            let rest = t.strip_prefix(&prefix)?;
            match rest.strip_prefix('#') {
                Some(n) => n.parse::<u64>().ok().map(|n| (n, *c)),
                None if rest.is_empty() => Some((0, *c)),
                None => None,
            }
        })
        .max_by_key(|(n, _)| *n)
        .map(|(_, c)| c)
}

/// Every stage of `name` (`NAME#STAGE#N` tags), with the commit it holds now.
fn stages(name: &str, tags: &[(String, GitId)]) -> Vec<(String, GitId)> {
    let prefix = format!("{name}#");
    let mut names: Vec<String> = tags
        .iter()
        .filter_map(|(t, _)| t.strip_prefix(&prefix))
        .map(|rest| rest.split('#').next().unwrap_or(rest).to_string())
        .collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter_map(|s| stage_commit(name, &s, tags).map(|c| (s, c)))
        .collect()
}

/// Where an artifact is at a version or stage: what `dvt artifacts show`
/// prints, and `dvt.api.artifacts_show` returns (as DVC's: `rev` and `path`).
#[derive(Debug, Clone, Serialize)]
pub struct ArtifactShown {
    /// The artifact.
    pub name: String,
    /// The version read (`v1.2.0`), if a version tag names the commit.
    pub version: Option<String>,
    /// The stage asked for.
    pub stage: Option<String>,
    /// The commit that version or stage names (with neither and no version
    /// tag: the repository's HEAD).
    pub commit: String,
    /// As `dvt.toml` at that commit describes it (`path`, `type`, `desc`, `labels`).
    #[serde(flatten)]
    pub artifact: Artifact,
}

/// Artifact `name` of `open` at `version` (`1.2.0` or `v1.2.0`) or `stage`
/// (default: its newest version; with none, the repository's HEAD): the
/// repository opened at that commit (its remote as `settings` say), and
/// where the artifact is there.
fn locate(
    open: crate::ops::import::OpenGit,
    name: &str,
    version: Option<&str>,
    stage: Option<&str>,
    settings: &ExternalConfig,
) -> Result<(crate::ops::import::External, ArtifactShown)> {
    let tags = open.git.tags()?;
    let known = versions(name, &tags);
    let commit = match (version, stage) {
        (Some(v), _) => {
            let v = tag_version(v);
            match known.iter().find(|(k, _)| *k == v) {
                Some((_, c)) => Some(*c),
                None => return Err(no_version(name, v, &known)),
            }
        }
        (None, Some(s)) => match stage_commit(name, s, &tags) {
            Some(c) => Some(c),
            None => {
                return Err(ArtifactError::NeverInStage {
                    name: name.to_string(),
                    stage: s.to_string(),
                }
                .into());
            }
        },
        (None, None) => known.first().map(|(_, c)| *c),
    };
    let version = commit.and_then(|c| known.iter().find(|(_, k)| *k == c).map(|(v, _)| v.clone()));
    let rev = commit.map(|c| c.to_string());
    let ext = open.at(rev.as_deref(), settings)?;
    let artifact = artifact_at(&ext, name)?;
    let shown = ArtifactShown {
        name: name.to_string(),
        version,
        stage: stage.map(str::to_string),
        commit: ext.commit.to_string(),
        artifact,
    };
    Ok((ext, shown))
}

/// `dvt artifacts show`: where artifact `name` of `repo` is at `version` or
/// `stage` (default: its newest version), without downloading it.
pub fn show(repo: &str, name: &str, version: Option<&str>, stage: Option<&str>) -> Result<ArtifactShown> {
    locate(open_git(repo)?, name, version, stage, &ExternalConfig::default()).map(|(_, shown)| shown)
}

/// The artifact `opts` asks for, at its version or stage, in its repository.
fn locate_for(opts: &ArtifactGetOptions) -> Result<(crate::ops::import::External, ArtifactShown)> {
    let (ext, shown) = locate(
        open_git(&opts.repo)?,
        &opts.name,
        opts.version.as_deref(),
        opts.stage.as_deref(),
        &opts.settings,
    )?;
    Ok((ext, shown))
}

/// `dvt artifacts get`: downloads artifact `opts.name` of `opts.repo` at the
/// version or stage asked for (default: its newest version; with none, the
/// repository's HEAD), as `dvt get` downloads a path.
pub fn get(opts: &ArtifactGetOptions, progress: &dyn Progress) -> Result<ArtifactGetReport> {
    let (ext, shown) = locate_for(opts)?;
    let artifact = shown.artifact;
    let version = shown.version;
    let g = GetOptions {
        repo: opts.repo.clone(),
        path: artifact.path.clone(),
        rev: None,
        out: opts.out.clone(),
        cwd: opts.cwd.clone(),
        force: opts.force,
        settings: opts.settings.clone(),
        jobs: opts.jobs,
    };
    refuse_existing_out(&g)?;
    let get = get_from(&ext, &g, progress)?;
    Ok(ArtifactGetReport {
        name: opts.name.clone(),
        version,
        stage: opts.stage.clone(),
        path: artifact.path,
        get,
    })
}

/// Where artifact `opts.name`'s data is on its repository's remote, as `dvt
/// get --show-url` says it (DVC's `artifacts get --show-url`): nothing is
/// downloaded; `out`, `force` and `jobs` are not used.
pub fn show_url(opts: &ArtifactGetOptions) -> Result<crate::ops::ShownUrl> {
    let (ext, shown) = locate_for(opts)?;
    crate::ops::show_url(&GetOptions {
        repo: opts.repo.clone(),
        path: shown.artifact.path,
        rev: Some(ext.commit.to_string()),
        out: None,
        cwd: opts.cwd.clone(),
        force: false,
        settings: opts.settings.clone(),
        jobs: None,
    })
}

/// The pipeline of `ext` at its commit (none: an empty one).
fn pipeline_of(ext: &crate::ops::import::External) -> Result<Option<Pipeline>> {
    let read = |rel: &str| -> Result<Option<String>> {
        Ok(ext
            .git
            .read_file(ext.commit, rel)?
            .map(|b| String::from_utf8_lossy(&b).into_owned()))
    };
    match read(PIPELINE_FILE)? {
        Some(text) => Pipeline::parse_with(&text, &read).map(Some),
        None => Ok(None),
    }
}

/// Artifact `name` as `dvt.toml` of `ext` describes it.
fn artifact_at(ext: &crate::ops::import::External, name: &str) -> Result<Artifact> {
    let pipeline = pipeline_of(ext)?;
    let all = pipeline.map(|p| p.artifacts).unwrap_or_default();
    all.get(name).cloned().ok_or_else(|| {
        ArtifactError::Unknown {
            name: name.to_string(),
            repo: ext.label.clone(),
            known: all.keys().cloned().collect(),
        }
        .into()
    })
}

/// `dvt artifacts list`: the artifacts `dvt.toml` of `repo` names at `rev`
/// (default: HEAD), with the versions and stages of each.
pub fn list(repo: &str, rev: Option<&str>) -> Result<Vec<ArtifactEntry>> {
    let open = open_git(repo)?;
    let tags = open.git.tags()?;
    let ext = open.at(rev, &ExternalConfig::default())?;
    let Some(pipeline) = pipeline_of(&ext)? else {
        return Ok(Vec::new());
    };
    Ok(pipeline
        .artifacts
        .into_iter()
        .map(|(name, artifact)| {
            let known = versions(&name, &tags);
            let stages = stages(&name, &tags)
                .into_iter()
                .map(|(stage, c)| StageHeld {
                    stage,
                    holds: known
                        .iter()
                        .find(|(_, k)| *k == c)
                        .map(|(v, _)| v.clone())
                        .unwrap_or_else(|| crate::snapshot::short(&c)),
                })
                .collect();
            ArtifactEntry {
                versions: known.into_iter().map(|(v, _)| v).collect(),
                stages,
                name,
                artifact,
            }
        })
        .collect())
}

/// What `dvt artifacts assign` does.
#[derive(Debug, Clone)]
pub struct AssignOptions {
    /// The artifact.
    pub name: String,
    /// The stage.
    pub stage: String,
    /// The version to assign (default: the newest).
    pub version: Option<String>,
    /// The remote that must hold the data (default: the default remote).
    pub remote: Option<String>,
    /// The git remote to push the tag to.
    pub push: Option<String>,
    /// The directory a relative path to the git remote starts from.
    pub cwd: PathBuf,
}

/// `dvt artifacts assign`: tags the commit of a version of artifact `name`
/// `NAME#STAGE#N`, N one more than the stage's highest (as GTO's `assign`),
/// with [`crate::ops::describe::tag`]'s checks: its data must be on the remote.
pub fn assign(repo: &crate::repo::Repo, opts: &AssignOptions) -> Result<crate::ops::describe::TagReport> {
    if !crate::pipeline::valid_artifact_name(&opts.name) {
        return Err(ArtifactError::BadName {
            name: opts.name.clone(),
        }
        .into());
    }
    let stage_ok = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    if opts.stage.is_empty() || !opts.stage.chars().all(stage_ok) {
        return Err(ArtifactError::BadStage {
            stage: opts.stage.clone(),
        }
        .into());
    }
    let git = crate::git::Git::open(repo.root())?;
    let tags = git.tags()?;
    let known = versions(&opts.name, &tags);
    let version = match &opts.version {
        Some(v) => {
            let v = tag_version(v);
            if !known.iter().any(|(k, _)| *k == v) {
                return Err(no_version(&opts.name, v, &known));
            }
            v
        }
        None => match known.first() {
            Some((v, _)) => v.clone(),
            None => {
                return Err(ArtifactError::NoVersionToAssign {
                    name: opts.name.clone(),
                }
                .into());
            }
        },
    };
    let prefix = format!("{}#{}#", opts.name, opts.stage);
    let next = tags
        .iter()
        .filter_map(|(t, _)| t.strip_prefix(&prefix)?.parse::<u64>().ok())
        .max()
        .unwrap_or(0)
        + 1;
    crate::ops::describe::tag(
        repo,
        &crate::ops::describe::TagOptions {
            name: format!("{prefix}{next}"),
            message: Some(format!("{} {version} in stage {}", opts.name, opts.stage)),
            remote: opts.remote.clone(),
            push: opts.push.clone(),
            cwd: opts.cwd.clone(),
            rev: Some(format!("refs/tags/{}@{version}", opts.name)),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_order_by_number_and_stages_take_the_latest_assignment() {
        let c = |n: u8| GitId::from_bytes_or_panic(&[n; 20]);
        let tags = vec![
            ("model@v1.9.2".to_string(), c(1)),
            ("model@v1.10.0".to_string(), c(2)),
            ("model@latest".to_string(), c(3)),
            ("model#prod#1".to_string(), c(1)),
            ("model#prod#2".to_string(), c(2)),
            ("model#dev".to_string(), c(3)),
            ("other@v9.0.0".to_string(), c(4)),
        ];
        let v: Vec<String> = versions("model", &tags).into_iter().map(|(v, _)| v).collect();
        assert_eq!(v, ["v1.10.0", "v1.9.2"]);
        assert_eq!(stage_commit("model", "prod", &tags), Some(c(2)));
        assert_eq!(stage_commit("model", "dev", &tags), Some(c(3)));
        assert_eq!(stage_commit("model", "staging", &tags), None);
        let s: Vec<String> = stages("model", &tags).into_iter().map(|(s, _)| s).collect();
        assert_eq!(s, ["dev", "prod"]);
    }
}
