//! `dvt.lock`: for each stage, what it last ran with. TOML, stages sorted by name,
//! each dep and out on one line, so that a change touches few lines:
//!
//! ```toml
//! version = 1
//!
//! [stages.featurize]
//! cmd = "python3 featurize.py"
//! deps = [
//!     { path = "data/clean", kind = "dir", id = "5b1c…", size = 10240, files = 12 },
//!     { path = "featurize.py", kind = "file", id = "0e4f…", size = 812 },
//! ]
//! outs = [
//!     { path = "data/features", kind = "dir", id = "77aa…", size = 4096, files = 3 },
//! ]
//!
//! [stages.featurize.params."params.yaml"]
//! "featurize.window" = 24
//! ```
//!
//! Paths are repo-relative and validated like pointer paths when read.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{PipelineError, Result};
use crate::object::ObjectId;
use crate::pointer::{Kind, Pointer};
use crate::repo::Repo;
use crate::workspace::Tracked;

/// The lock format version this dvt writes and reads.
pub const LOCK_VERSION: u32 = 1;

/// One recorded dep or out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// Repo-relative path.
    pub path: String,
    /// File or directory.
    pub kind: Kind,
    /// Content id (directories: the manifest's).
    pub id: ObjectId,
    /// Bytes.
    pub size: u64,
    /// Files, for directories.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<u64>,
    /// Whether a file is executable.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub executable: bool,
}

impl Entry {
    /// The entry that `pointer` (of `path`) describes.
    pub fn from_pointer(path: &str, p: &Pointer) -> Entry {
        Entry {
            path: path.to_string(),
            kind: p.kind,
            id: p.id,
            size: p.size,
            files: p.files,
            executable: p.executable,
        }
    }

    fn pointer(&self) -> Pointer {
        let mut p = match self.kind {
            Kind::File => Pointer::file(self.path.clone(), self.id, self.size),
            Kind::Dir => Pointer::dir(self.path.clone(), self.id, self.size, self.files.unwrap_or(0)),
        };
        p.executable = self.executable;
        p
    }
}

/// What one stage last ran with. Equal when every field is, a NaN param
/// equal to a NaN ([`same_params`]).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageLock {
    /// The command.
    pub cmd: String,
    /// Dependencies, sorted by path.
    #[serde(default)]
    pub deps: Vec<Entry>,
    /// Outputs (metrics included), sorted by path.
    #[serde(default)]
    pub outs: Vec<Entry>,
    /// Param values by params file, then key.
    #[serde(default)]
    pub params: ParamValues,
}

impl PartialEq for StageLock {
    fn eq(&self, other: &StageLock) -> bool {
        self.cmd == other.cmd
            && self.deps == other.deps
            && self.outs == other.outs
            && same_params(&self.params, &other.params)
    }
}

/// Param values by params file, then key, as a stage ran with them.
pub type ParamValues = BTreeMap<String, BTreeMap<String, toml::Value>>;

/// Whether two records of params hold the same values. Unlike `==`, a NaN
/// equals a NaN: a param that is NaN (`.nan` in YAML) stays unchanged.
pub fn same_params(a: &ParamValues, b: &ParamValues) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|((fa, va), (fb, vb))| {
            fa == fb
                && va.len() == vb.len()
                && va
                    .iter()
                    .zip(vb)
                    .all(|((ka, xa), (kb, xb))| ka == kb && same_value(xa, xb))
        })
}

/// `a == b`, with a NaN equal to a NaN (see [`same_params`]).
pub fn same_value(a: &toml::Value, b: &toml::Value) -> bool {
    use toml::Value as V;
    match (a, b) {
        (V::Float(x), V::Float(y)) => x == y || (x.is_nan() && y.is_nan()),
        (V::Array(x), V::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_value(x, y)),
        (V::Table(x), V::Table(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|((kx, vx), (ky, vy))| kx == ky && same_value(vx, vy))
        }
        _ => a == b,
    }
}

/// A stage `dvt.lock` no longer records because `dvt.toml` no longer has it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Forgotten {
    /// The stage's name.
    pub stage: String,
    /// Its outs still in the workspace that no stage writes now (left as
    /// they are, `.gitignore` entries too).
    pub outs: Vec<String>,
}

/// The whole lock file.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lock {
    /// Format version.
    pub version: u32,
    /// Stages by name.
    #[serde(default)]
    pub stages: BTreeMap<String, StageLock>,
}

fn quote(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

fn key(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        s.to_string()
    } else {
        quote(s)
    }
}

fn entry_line(e: &Entry) -> String {
    let mut s = format!(
        "    {{ path = {}, kind = \"{}\", id = \"{}\", size = {}",
        quote(&e.path),
        match e.kind {
            Kind::File => "file",
            Kind::Dir => "dir",
        },
        e.id,
        e.size
    );
    if let Some(f) = e.files {
        s.push_str(&format!(", files = {f}"));
    }
    if e.executable {
        s.push_str(", executable = true");
    }
    s.push_str(" },\n");
    s
}

impl Lock {
    /// Parses lock text read from `file` (named in errors), validating paths.
    pub fn parse(text: &str, file: &Path) -> Result<Lock> {
        let bad = |message: String| PipelineError::Lock {
            file: file.to_path_buf(),
            message,
        };
        let lock: Lock =
            toml::from_str(text).map_err(|e| bad(crate::error::toml_message(text, e.span(), e.message())))?;
        if lock.version != LOCK_VERSION {
            return Err(crate::error::FormatError::UnsupportedVersion {
                path: file.to_path_buf(),
                found: i64::from(lock.version),
                supported: LOCK_VERSION,
            }
            .into());
        }
        for (name, s) in &lock.stages {
            for e in s.deps.iter().chain(&s.outs) {
                if let Err(reason) = crate::relpath::validate(&e.path) {
                    return Err(bad(format!("stage `{name}`: path `{}`: {reason}", e.path)).into());
                }
                if (e.kind == Kind::Dir) != e.files.is_some() {
                    return Err(bad(format!(
                        "stage `{name}`: `{}`: `files` goes with kind = \"dir\"",
                        e.path
                    ))
                    .into());
                }
            }
        }
        Ok(lock)
    }

    /// Reads `dvt.lock` of `repo` (empty if there is none).
    pub fn load(repo: &Repo) -> Result<Lock> {
        let path = repo.root().join(super::LOCK_FILE);
        match fs_err::read_to_string(&path) {
            Ok(text) => Lock::parse(&text, &path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Lock {
                version: LOCK_VERSION,
                ..Default::default()
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// The canonical text.
    pub fn to_text(&self) -> String {
        let mut out = format!("# dvt.lock: written by `dvt repro`; commit it with git\nversion = {LOCK_VERSION}\n");
        for (name, s) in &self.stages {
            out.push_str(&format!("\n[stages.{}]\ncmd = {}\n", key(name), quote(&s.cmd)));
            for (label, list) in [("deps", &s.deps), ("outs", &s.outs)] {
                if list.is_empty() {
                    continue;
                }
                out.push_str(&format!("{label} = [\n"));
                for e in list {
                    out.push_str(&entry_line(e));
                }
                out.push_str("]\n");
            }
            for (file, values) in &s.params {
                out.push_str(&format!("\n[stages.{}.params.{}]\n", key(name), quote(file)));
                for (k, v) in values {
                    out.push_str(&format!("{} = {}\n", quote(k), inline(v)));
                }
            }
        }
        out
    }

    /// Drops the entries of stages `pipeline` no longer has (a stage deleted
    /// from `dvt.toml`, a `foreach` case taken out), and says what of them is
    /// left behind: each dropped stage with its outs that the workspace still
    /// holds and no stage of `pipeline` writes.
    pub fn forget_removed(&mut self, repo: &Repo, pipeline: &super::Pipeline) -> Vec<Forgotten> {
        let written: std::collections::BTreeSet<&str> = pipeline
            .stages
            .values()
            .flat_map(|s| s.outs.iter().map(|o| o.path.as_str()))
            .collect();
        let (kept, gone) = std::mem::take(&mut self.stages)
            .into_iter()
            .partition(|(name, _)| pipeline.stages.contains_key(name));
        self.stages = kept;
        gone.into_iter()
            .map(|(stage, s)| Forgotten {
                stage,
                outs: s
                    .outs
                    .into_iter()
                    .map(|e| e.path)
                    .filter(|p| !written.contains(p.as_str()) && repo.root().join(p).symlink_metadata().is_ok())
                    .collect(),
            })
            .collect()
    }

    /// Writes the lock atomically.
    pub fn save(&self, repo: &Repo) -> Result<()> {
        let file = repo.root().join(super::LOCK_FILE);
        crate::fsutil::atomic_write(&file, self.to_text().as_bytes())?;
        crate::autostage::note(&file);
        Ok(())
    }

    /// The cached outs recorded here, as tracked paths (their "pointer file" is
    /// `dvt.lock`), for status, push, pull, checkout and gc. `cached` says which
    /// outs are cached; without a pipeline, every directory and every non-metric
    /// out recorded is taken as cached.
    pub fn tracked(&self, repo: &Repo, cached: &dyn Fn(&str, &str) -> bool) -> Vec<Tracked> {
        let mut out = Vec::new();
        for (stage, s) in &self.stages {
            for e in &s.outs {
                if !cached(stage, &e.path) {
                    continue;
                }
                out.push(Tracked {
                    pointer_file: repo.root().join(super::LOCK_FILE),
                    pointer_rel: super::LOCK_FILE.to_string(),
                    data_abs: repo.root().join(&e.path),
                    data_rel: e.path.clone(),
                    pointer: e.pointer(),
                    root: repo.root().to_path_buf(),
                    within: None,
                });
            }
        }
        out
    }
}

/// A TOML value on one line.
fn inline(v: &toml::Value) -> String {
    match v {
        toml::Value::Table(t) => {
            let parts: Vec<String> = t.iter().map(|(k, v)| format!("{} = {}", key(k), inline(v))).collect();
            format!("{{ {} }}", parts.join(", "))
        }
        toml::Value::Array(a) => format!("[{}]", a.iter().map(inline).collect::<Vec<_>>().join(", ")),
        other => other.to_string(),
    }
}

/// The path of the lock file of `repo`.
pub fn path(repo: &Repo) -> PathBuf {
    repo.root().join(super::LOCK_FILE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_round_trips() {
        let mut lock = Lock {
            version: 1,
            ..Default::default()
        };
        let id = ObjectId::of(b"x");
        let mut s = StageLock {
            cmd: "python3 \"train.py\" --x 'y'".into(),
            ..Default::default()
        };
        s.deps.push(Entry {
            path: "data/raw dir".into(),
            kind: Kind::Dir,
            id,
            size: 3,
            files: Some(2),
            executable: false,
        });
        s.outs.push(Entry {
            path: "model.bin".into(),
            kind: Kind::File,
            id,
            size: 1,
            files: None,
            executable: true,
        });
        let mut vals = BTreeMap::new();
        vals.insert("train.lr".to_string(), toml::Value::Float(0.5));
        vals.insert("layers".to_string(), toml::Value::Array(vec![toml::Value::Integer(3)]));
        s.params.insert("params.yaml".into(), vals);
        lock.stages.insert("train-1".into(), s);
        let text = lock.to_text();
        let back = Lock::parse(&text, Path::new("dvt.lock")).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(back, lock, "{text}");
        let bad = text.replace("model.bin", "../model.bin");
        assert!(Lock::parse(&bad, Path::new("dvt.lock")).is_err());
    }
}
