//! Pipelines: `dvt.toml` declares stages, `dvt.lock` records what each ran with.
//!
//! ```toml
//! [stages.featurize]
//! cmd = "python3 featurize.py"
//! deps = ["featurize.py", "data/clean"]
//! params = ["featurize.window", "params.toml:train.seed"]   # [FILE:]KEY, FILE defaults to params.yaml
//! outs = ["data/features", { path = "logs/featurize.log", cache = false, persist = true }]
//! metrics = ["metrics/featurize.json"]                      # not cached unless `cache = true`
//! plots = [{ path = "plots/loss.csv", x = "epoch", y = "loss" }]  # for `dvt plots`; not cached either
//! wdir = "."                                                # paths and cmd are relative to it
//! ```
//!
//! Paths are untrusted input: after joining `wdir`, each must stay inside the
//! repository and out of `.dvt`/`.git`. The DAG comes from outs→deps: a stage
//! depends on the stage that produces one of its deps (or a path inside one).

pub mod lock;
pub mod params;
pub mod run_cache;
mod template;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::Serialize;

use crate::error::{PipelineError, Result};
use crate::repo::Repo;

/// The pipeline file, at the repository root.
pub const PIPELINE_FILE: &str = "dvt.toml";
/// The lock file, at the repository root.
pub const LOCK_FILE: &str = "dvt.lock";
/// The params file used when a param names none.
pub const DEFAULT_PARAMS: &str = "params.yaml";

/// A parameter a stage reads: a dotted key in a params file.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct ParamRef {
    /// The params file, repo-relative.
    pub file: String,
    /// The dotted key.
    pub key: String,
}

/// How a param is named to the user: `KEY` in the default params file,
/// `FILE:KEY` in another (as `params` of a stage names it).
pub fn param_name(file: &str, key: &str) -> String {
    match file == DEFAULT_PARAMS {
        true => key.to_string(),
        false => format!("{file}:{key}"),
    }
}

/// An output of a stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Out {
    /// Repo-relative path.
    pub path: String,
    /// Whether it is stored in the cache (and git-ignored).
    pub cache: bool,
    /// Whether it is kept, not deleted, before the stage runs.
    pub persist: bool,
    /// Whether it is a metrics file.
    pub metric: bool,
    /// For a plots file (`plots` of a stage): how to draw it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plot: Option<PlotAxes>,
    /// The remote its data goes to and comes from instead of the default (as
    /// a pointer's `remote`; DVC's per-output `remote`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote: Option<String>,
    /// `false`: `push` leaves its data out (DVC's `push: false`).
    pub push: bool,
}

impl Out {
    /// An out at `path` with the defaults: cached, not kept, no metrics or plot.
    pub fn at(path: String) -> Out {
        Out {
            path,
            cache: true,
            persist: false,
            metric: false,
            plot: None,
            remote: None,
            push: true,
        }
    }
}

/// How `dvt plots` draws a plots file, as DVC's plot properties: which field is
/// across, which go up, and the title.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PlotAxes {
    /// The field across (default: `step` if there is one, else the row number).
    pub x: Option<String>,
    /// The fields up (default: every numeric field but `x`).
    pub y: Vec<String>,
    /// The title (default: the file's path).
    pub title: Option<String>,
    /// The label across (default: the field's name), as DVC's `x_label`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub x_label: Option<String>,
    /// The label up (default: none for lines; the field's name for the others),
    /// as DVC's `y_label`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub y_label: Option<String>,
    /// How to draw it (default: lines).
    pub template: Option<PlotTemplate>,
    /// For a top-level plot that draws fields of several files on one chart
    /// (named by `name`, as DVC's): each file and its fields up. Empty for a
    /// plot of one file.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<(String, Vec<String>)>,
    /// A CSV or TSV file without a header row (`header = false`, DVC's
    /// `--no-header`): its fields are named by their place, `0`, `1`, ...
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub no_header: bool,
}

/// How `dvt plots` draws a plots file: DVC's template names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PlotTemplate {
    /// A line per field up (DVC's `linear`; `simple` and `smooth` draw the same).
    Linear,
    /// A dot per record, no lines.
    Scatter,
    /// A confusion matrix: `x` is the actual class, `y` the predicted one, and
    /// each cell counts the records with that pair.
    Confusion,
    /// A confusion matrix whose rows (actual classes) sum to 1.
    ConfusionNormalized,
    /// One bar per category (`y`) of length `x`, one per revision.
    BarHorizontal,
    /// As `BarHorizontal`, longest bar first.
    BarHorizontalSorted,
}

impl PlotTemplate {
    /// The names taken, each with its template.
    pub const NAMES: [(&str, PlotTemplate); 8] = [
        ("linear", PlotTemplate::Linear),
        ("simple", PlotTemplate::Linear),
        ("smooth", PlotTemplate::Linear),
        ("scatter", PlotTemplate::Scatter),
        ("confusion", PlotTemplate::Confusion),
        ("confusion_normalized", PlotTemplate::ConfusionNormalized),
        ("bar_horizontal", PlotTemplate::BarHorizontal),
        ("bar_horizontal_sorted", PlotTemplate::BarHorizontalSorted),
    ];

    /// The template a name stands for.
    pub fn from_name(name: &str) -> Option<PlotTemplate> {
        Self::NAMES.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
    }

    /// Its name in `dvt.toml` (the first of [`PlotTemplate::NAMES`] for it).
    pub fn name(self) -> &'static str {
        Self::NAMES
            .iter()
            .find(|(_, t)| *t == self)
            .map_or("linear", |(n, _)| n)
    }

    /// What a wrong name is told: the names taken.
    pub fn expected() -> String {
        Self::NAMES.map(|(n, _)| n).join(", ")
    }
}

/// The keys of a `plots` entry that say how to draw it (DVC's property names).
pub const PLOT_PROPERTIES: [&str; 7] = ["x", "y", "title", "x_label", "y_label", "template", "header"];

/// What an entry of a stage's `outs`, `metrics` or `plots` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OutKind {
    Out,
    Metric,
    Plot,
}

/// One stage of the pipeline.
#[derive(Debug, Clone, Serialize)]
pub struct Stage {
    /// Its name.
    pub name: String,
    /// The shell command.
    pub cmd: String,
    /// The directory the command runs in, repo-relative (empty: the root).
    pub wdir: String,
    /// Dependencies, repo-relative.
    pub deps: Vec<String>,
    /// Parameters.
    pub params: Vec<ParamRef>,
    /// Outputs, then metrics, then plots.
    pub outs: Vec<Out>,
    /// What the stage is for (`desc`), shown by `dvt stage list`.
    pub desc: Option<String>,
    /// `frozen = true` (set by `dvt freeze`): its deps and params are not
    /// checked and the stages upstream of it are not selected through it; it
    /// runs only when forced, when its command changed or when an out changed.
    pub frozen: bool,
    /// `always_changed = true`: it runs on every `dvt repro` (a stage that reads
    /// from outside the repository, say).
    pub always_changed: bool,
}

/// The parsed, validated `dvt.toml`, with its DAG.
#[derive(Debug, Clone)]
pub struct Pipeline {
    /// Stages by name.
    pub stages: BTreeMap<String, Stage>,
    /// For each stage, the stages it depends on.
    pub upstream: BTreeMap<String, BTreeSet<String>>,
    /// Stage names, every stage after those it depends on.
    pub order: Vec<String>,
    /// Metrics files no stage writes (top-level `metrics`, as in dvc.yaml):
    /// read by `dvt metrics` and `dvt exp show` as a stage's metrics are.
    pub metrics: Vec<String>,
    /// Params files to compare whole (top-level `params`), besides those stages read.
    pub params: Vec<String>,
    /// Plots files no stage writes (top-level `plots`), with how to draw each.
    pub plots: Vec<(String, PlotAxes)>,
    /// Models and datasets by name (`[artifacts.NAME]`, as dvc.yaml's
    /// `artifacts`), for `dvt artifacts`.
    pub artifacts: BTreeMap<String, Artifact>,
}

/// A model or dataset `dvt artifacts get` fetches by name, at a version or
/// stage its git tags give (GTO's `NAME@v1.2.0`, `NAME#prod#3`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Artifact {
    /// The tracked path, repo-relative.
    pub path: String,
    /// `type`: what it is (`model`, `dataset`, ...), free text.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// `desc`: what it is for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub desc: Option<String>,
    /// `labels`: free tags.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
}

/// Whether `name` may name an artifact: GTO's rule, lowercase letters, digits
/// and inner `-` (so that `NAME@v1.0.0` and `NAME#stage#1` are unambiguous).
pub fn valid_artifact_name(name: &str) -> bool {
    let ok = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    !name.is_empty() && name.chars().all(|c| ok(c) || c == '-') && name.starts_with(ok) && name.ends_with(ok)
}

/// The `artifacts` table of `dvt.toml`.
fn artifacts(table: &toml::Table) -> Result<BTreeMap<String, Artifact>> {
    let mut out = BTreeMap::new();
    let Some(v) = table.get("artifacts") else {
        return Ok(out);
    };
    let whole = || {
        bad(
            None,
            "`artifacts` is a table of artifacts (`[artifacts.NAME]`, with `path`)",
        )
    };
    for (name, body) in v.as_table().ok_or_else(whole)? {
        let wrong = |m: String| bad(None, format!("artifact `{name}`: {m}"));
        if !valid_artifact_name(name) {
            return Err(wrong(
                "names use lowercase letters, digits and `-` inside (as GTO's)".into(),
            ));
        }
        let t = body.as_table().ok_or_else(whole)?;
        let text = |key: &str| -> Result<Option<String>> {
            match t.get(key) {
                None => Ok(None),
                Some(toml::Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(wrong(format!("`{key}` must be a string"))),
            }
        };
        for k in t.keys() {
            if !["path", "type", "desc", "labels", "meta"].contains(&k.as_str()) {
                return Err(wrong(format!("unknown key `{k}` (path, type, desc, labels, meta)")));
            }
        }
        let path = text("path")?.ok_or_else(|| wrong("`path` is required".into()))?;
        let given = std::path::Path::new(&path);
        let clean = crate::repo::normalize(given);
        let climbs = given.components().any(|c| c == std::path::Component::ParentDir);
        if given.is_absolute() || climbs || clean.as_os_str().is_empty() {
            return Err(wrong(format!("`path` must be inside the repository, not `{path}`")));
        }
        let labels = match t.get("labels") {
            None => Vec::new(),
            Some(toml::Value::Array(a)) => a
                .iter()
                .map(|l| l.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| wrong("`labels` must be a list of strings".into()))?,
            Some(_) => return Err(wrong("`labels` must be a list of strings".into())),
        };
        out.insert(
            name.clone(),
            Artifact {
                path: clean.to_string_lossy().into_owned(),
                kind: text("type")?,
                desc: text("desc")?,
                labels,
            },
        );
    }
    Ok(out)
}

fn bad(stage: Option<&str>, message: impl Into<String>) -> crate::Error {
    PipelineError::Invalid {
        file: PIPELINE_FILE.into(),
        stage: stage.map(str::to_string),
        message: message.into(),
    }
    .into()
}

/// The name `dvt migrate` gives a stage of the `dvc.yaml` in directory `dir`
/// (repo-relative, `/`-separated; empty for the root): `NAME` at the root,
/// else `DIR-NAME`, with what a name cannot hold in `dir` made `-`.
pub fn migrated_name(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        return name.to_string();
    }
    let prefix: String = dir
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("{prefix}-{name}")
}

/// DVC's address of a stage, `[DIR/]dvc.yaml:NAME`, as the name `dvt
/// migrate` gave it (see [`migrated_name`]), so that scripts written for DVC
/// name the same stages; `None` for any other target.
pub fn dvc_address(target: &str) -> Option<String> {
    let (file, name) = target.split_once(':')?;
    let dir = file.strip_suffix("dvc.yaml")?;
    let dir = match dir {
        "" | "./" => "",
        d => d.strip_suffix('/')?.trim_start_matches("./"),
    };
    Some(migrated_name(dir, name))
}

/// Joins `wdir` and `path` and checks the result stays inside the repository.
fn repo_path(stage: Option<&str>, wdir: &str, path: &str, what: &str) -> Result<String> {
    if path.is_empty() || path.starts_with('/') {
        return Err(bad(stage, format!("{what} `{path}` must be a relative path")));
    }
    let joined = if wdir.is_empty() {
        path.to_string()
    } else {
        format!("{wdir}/{path}")
    };
    let mut parts: Vec<&str> = Vec::new();
    for part in joined.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(bad(stage, format!("{what} `{path}` is outside the repository")));
                }
            }
            p => parts.push(p),
        }
    }
    let rel = parts.join("/");
    if rel.is_empty() {
        return Err(bad(stage, format!("{what} `{path}` is the repository root")));
    }
    if let Some(reserved) = parts.iter().find(|p| **p == ".git" || **p == crate::repo::DVT_DIR) {
        return Err(bad(stage, format!("{what} `{path}` is inside `{reserved}`")));
    }
    Ok(rel)
}

fn strings(stage: &str, key: &str, v: &toml::Value) -> Result<Vec<String>> {
    let arr = v
        .as_array()
        .ok_or_else(|| bad(Some(stage), format!("`{key}` must be an array of strings")))?;
    arr.iter()
        .map(|x| {
            x.as_str()
                .map(str::to_string)
                .ok_or_else(|| bad(Some(stage), format!("`{key}` must be an array of strings")))
        })
        .collect()
}

/// Top-level `metrics`, `params` and `plots`, as in dvc.yaml: files no stage
/// writes (or, for params, reads) that `dvt metrics`, `params diff`, `plots` and
/// `exp show` read all the same. Paths are relative to the repository root.
type TopLevel = (Vec<String>, Vec<String>, Vec<(String, PlotAxes)>);

fn top_level_files(table: &toml::Table) -> Result<TopLevel> {
    let files = |key: &str, kind: OutKind| -> Result<Vec<Out>> {
        let Some(v) = table.get(key) else {
            return Ok(Vec::new());
        };
        outs(None, "", key, v, kind)
    };
    let metrics = files("metrics", OutKind::Metric)?.into_iter().map(|o| o.path).collect();
    let plots = files("plots", OutKind::Plot)?
        .into_iter()
        .map(|o| (o.path, o.plot.unwrap_or_default()))
        .collect();
    let params = match table.get("params") {
        None => Vec::new(),
        Some(v) => v
            .as_array()
            .filter(|a| a.iter().all(toml::Value::is_str))
            .ok_or_else(|| bad(None, "top-level `params` must be an array of params files"))?
            .iter()
            .filter_map(toml::Value::as_str)
            .map(|f| repo_path(None, "", f, "params file"))
            .collect::<Result<_>>()?,
    };
    Ok((metrics, params, plots))
}

fn outs(stage: Option<&str>, wdir: &str, key: &str, v: &toml::Value, kind: OutKind) -> Result<Vec<Out>> {
    let arr = v
        .as_array()
        .ok_or_else(|| bad(stage, format!("`{key}` must be an array")))?;
    // Metrics and plots are small files, kept in git rather than the cache.
    let cached = kind == OutKind::Out;
    // `y` is read unless `!fields_y` (a plot of several files reads its own).
    let plot = |t: Option<&toml::Table>, fields_y: bool| -> Result<Option<PlotAxes>> {
        if kind != OutKind::Plot {
            return Ok(None);
        }
        let text = |name: &str| -> Result<Option<String>> {
            match t.and_then(|t| t.get(name)) {
                None => Ok(None),
                Some(toml::Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
                Some(_) => Err(bad(stage, format!("`{name}` of a plot must be a non-empty string"))),
            }
        };
        let y = match t.filter(|_| fields_y).and_then(|t| t.get("y")) {
            None => Vec::new(),
            Some(toml::Value::String(s)) => vec![s.clone()],
            Some(toml::Value::Array(a)) if a.iter().all(toml::Value::is_str) => {
                a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect()
            }
            Some(_) => return Err(bad(stage, "`y` of a plot is a field name or a list of them")),
        };
        let template = match text("template")? {
            None => None,
            Some(name) => Some(PlotTemplate::from_name(&name).ok_or_else(|| {
                bad(
                    stage,
                    format!(
                        "plot template `{name}` is unknown (known: {})",
                        PlotTemplate::expected()
                    ),
                )
            })?),
        };
        let no_header = match t.and_then(|t| t.get("header")) {
            None => false,
            Some(toml::Value::Boolean(b)) => !b,
            Some(_) => return Err(bad(stage, "`header` of a plot is true or false")),
        };
        Ok(Some(PlotAxes {
            x: text("x")?,
            y,
            title: text("title")?,
            x_label: text("x_label")?,
            y_label: text("y_label")?,
            template,
            files: Vec::new(),
            no_header,
        }))
    };
    // A top-level plot of several files: `name`, and `y` a table of file → field(s).
    let several = |t: &toml::Table, y: &toml::Table| -> Result<(String, PlotAxes)> {
        let known = ["name", "x", "y", "title", "x_label", "y_label", "template"];
        if let Some(k) = t.keys().find(|k| !known.contains(&k.as_str())) {
            return Err(bad(
                stage,
                format!(
                    "unknown key `{k}` in a plot of several files (known: {})",
                    known.join(", ")
                ),
            ));
        }
        let name = match t.get("name") {
            Some(toml::Value::String(n)) if !n.trim().is_empty() => n.clone(),
            _ => return Err(bad(stage, "a plot whose `y` names files needs a `name`")),
        };
        let mut files = Vec::new();
        for (file, fields) in y {
            let fields = match fields {
                toml::Value::String(f) => vec![f.clone()],
                toml::Value::Array(a) if !a.is_empty() && a.iter().all(toml::Value::is_str) => {
                    a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect()
                }
                _ => {
                    return Err(bad(
                        stage,
                        format!("plot `{name}`: `y` of `{file}` is a field name or a list of them"),
                    ));
                }
            };
            files.push((repo_path(stage, wdir, file, "plots file")?, fields));
        }
        if files.is_empty() {
            return Err(bad(stage, format!("plot `{name}`: `y` names no file")));
        }
        let mut axes = plot(Some(t), false)?.unwrap_or_default();
        if !matches!(axes.template, None | Some(PlotTemplate::Linear | PlotTemplate::Scatter)) {
            return Err(bad(
                stage,
                format!("plot `{name}`: a plot of several files draws lines or dots (template linear or scatter)"),
            ));
        }
        axes.files = files;
        Ok((name, axes))
    };
    let mut out = Vec::new();
    for x in arr {
        let (path, cache, persist, axes, remote, push) = match x {
            toml::Value::String(p) => (p.clone(), cached, false, plot(None, true)?, None, true),
            toml::Value::Table(t) if kind == OutKind::Plot && t.get("y").is_some_and(toml::Value::is_table) => {
                if stage.is_some() {
                    return Err(bad(
                        stage,
                        "a plot of several files (`y` naming files) goes in the top-level `plots`, not a stage's",
                    ));
                }
                let Some(toml::Value::Table(y)) = t.get("y") else {
                    continue;
                };
                let (name, axes) = several(t, y)?;
                out.push(Out {
                    cache: false,
                    plot: Some(axes),
                    ..Out::at(name)
                });
                continue;
            }
            toml::Value::Table(t) => {
                // Top-level files are in no stage: nothing caches or keeps them.
                let staged: &[&str] = if stage.is_some() { &STAGED_OUT_KEYS } else { &[] };
                let annotated: &[&str] = if stage.is_some() { &OUT_ANNOTATIONS } else { &[] };
                let drawn: &[&str] = if kind == OutKind::Plot { &PLOT_PROPERTIES } else { &[] };
                let known: Vec<&str> = [&["path"], staged, annotated, drawn].concat();
                if let Some(k) = t.keys().find(|k| !known.contains(&k.as_str())) {
                    let message = match stage {
                        None if STAGED_OUT_KEYS.contains(&k.as_str()) => {
                            format!(
                                "`{k}` in top-level `{key}`: those files are in no stage, and dvt does not cache them"
                            )
                        }
                        _ => format!("unknown key `{k}` in an entry of `{key}` (known: {})", known.join(", ")),
                    };
                    return Err(bad(stage, message));
                }
                let path = t
                    .get("path")
                    .and_then(|p| p.as_str())
                    .ok_or_else(|| bad(stage, format!("an entry of `{key}` needs `path`")))?;
                let flag = |name: &str, default: bool| -> Result<bool> {
                    match t.get(name) {
                        None => Ok(default),
                        Some(toml::Value::Boolean(b)) => Ok(*b),
                        Some(_) => Err(bad(stage, format!("`{name}` of `{path}` must be true or false"))),
                    }
                };
                check_annotations(stage, path, t)?;
                let remote = match t.get("remote") {
                    None => None,
                    Some(toml::Value::String(r)) if !r.is_empty() => Some(r.clone()),
                    Some(_) => return Err(bad(stage, format!("`remote` of `{path}` must be a remote's name"))),
                };
                (
                    path.to_string(),
                    flag("cache", cached)?,
                    flag("persist", false)?,
                    plot(Some(t), true)?,
                    remote,
                    flag("push", true)?,
                )
            }
            _ => {
                return Err(bad(stage, format!("`{key}` entries are paths or tables with `path`")));
            }
        };
        let what = match kind {
            OutKind::Out => "out",
            OutKind::Metric => "metrics file",
            OutKind::Plot => "plots file",
        };
        out.push(Out {
            path: repo_path(stage, wdir, &path, what)?,
            cache,
            persist,
            metric: kind == OutKind::Metric,
            plot: axes,
            remote,
            push,
        });
    }
    Ok(out)
}

/// Parses a `[FILE:]KEY[,KEY]` param spec, FILE relative to `wdir`.
pub fn parse_param_spec(stage: &str, wdir: &str, spec: &str) -> Result<Vec<ParamRef>> {
    let (file, keys) = match spec.rsplit_once(':') {
        Some((f, k)) => (f, k),
        None => (DEFAULT_PARAMS, spec),
    };
    let file = repo_path(Some(stage), wdir, file, "params file")?;
    let mut out = Vec::new();
    for key in keys.split(',') {
        let key = key.trim();
        if key.is_empty() || key.split('.').any(str::is_empty) {
            return Err(bad(Some(stage), format!("param `{spec}`: empty key")));
        }
        out.push(ParamRef {
            file: file.clone(),
            key: key.to_string(),
        });
    }
    Ok(out)
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

impl Pipeline {
    /// Reads `dvt.toml` of `repo` (and `params.yaml` and vars files if `dvt.toml`
    /// takes values from them); `None` if there is none.
    pub fn load(repo: &Repo) -> Result<Option<Pipeline>> {
        let path = repo.root().join(PIPELINE_FILE);
        match fs_err::read_to_string(&path) {
            Ok(text) => Ok(Some(Pipeline::parse_with(&text, &|f| read_file(repo, f))?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Reads `dvt.toml`, failing if there is none.
    pub fn load_required(repo: &Repo) -> Result<Pipeline> {
        Pipeline::load(repo)?.ok_or_else(|| PipelineError::NoPipeline.into())
    }

    /// Parses and validates the text of a `dvt.toml` that takes no `${KEY}` from
    /// a file.
    pub fn parse(text: &str) -> Result<Pipeline> {
        Pipeline::parse_with(text, &|_| Ok(None))
    }

    /// Parses and validates the text of a `dvt.toml`; `read` gives the text of a
    /// file of the repository by its repo-relative path (`None` if there is none):
    /// the files `vars` names, and the default params file if some `${KEY}` may
    /// need it.
    pub fn parse_with(text: &str, read: &dyn Fn(&str) -> Result<Option<String>>) -> Result<Pipeline> {
        let table: toml::Table =
            toml::from_str(text).map_err(|e| bad(None, crate::error::toml_message(text, e.span(), e.message())))?;
        for k in table.keys() {
            if !["stages", "vars", "metrics", "params", "plots", "artifacts"].contains(&k.as_str()) {
                return Err(bad(
                    None,
                    format!(
                        "unknown top-level key `{k}` (stages go in `[stages.NAME]`, values for `${{KEY}}` in \
                         `vars`; also `metrics`, `params`, `plots`, `artifacts`)"
                    ),
                ));
            }
        }
        let (metrics, params, plots) = top_level_files(&table)?;
        let artifacts = artifacts(&table)?;
        let mut sources = vars_sources(table.get("vars"), read, "", None)?;
        if text.contains("${")
            && !sources.iter().any(|s| s.file.as_deref() == Some(DEFAULT_PARAMS))
            && let Some(t) = read(DEFAULT_PARAMS)?
        {
            sources.push(template::Source {
                file: Some(DEFAULT_PARAMS.into()),
                stage: None,
                values: params::parse(DEFAULT_PARAMS, &t)?,
            });
        }
        let vars = template::Vars {
            sources: &sources,
            locals: None,
        };
        vars.check(None)?;
        let mut stages = BTreeMap::new();
        if let Some(v) = table.get("stages") {
            let st = v
                .as_table()
                .ok_or_else(|| bad(None, "`stages` must be a table of stages"))?;
            for (name, body) in st {
                if !valid_name(name) {
                    return Err(bad(Some(name), "stage names use letters, digits, `_` and `-`"));
                }
                let Some(t) = body.as_table() else {
                    return Err(bad(Some(name), "a stage is a table (`[stages.NAME]`)"));
                };
                // A repeated stage: its cases, and the stage each one fills in.
                let (cases, one) = if let Some(m) = t.get("matrix") {
                    if t.contains_key("foreach") || t.contains_key("do") {
                        return Err(bad(Some(name), "a stage has `matrix` or `foreach`, not both"));
                    }
                    let mut one = t.clone();
                    one.remove("matrix");
                    (template::matrix_cases(name, m, &vars)?, toml::Value::Table(one))
                } else if t.contains_key("foreach") || t.contains_key("do") {
                    (template::cases(name, t, &vars)?, t["do"].clone())
                } else {
                    stages.insert(name.clone(), Stage::resolve_with_vars(name, body, &vars, read)?);
                    continue;
                };
                for (suffix, locals) in cases {
                    let case = template::Vars {
                        locals: Some(&locals),
                        ..vars
                    };
                    let full = format!("{name}@{suffix}");
                    stages.insert(full.clone(), Stage::resolve_with_vars(&full, &one, &case, read)?);
                }
            }
        }
        let (upstream, order) = dag(&stages)?;
        Ok(Pipeline {
            stages,
            upstream,
            order,
            metrics,
            params,
            plots,
            artifacts,
        })
    }

    /// The stages a command-line target names, as DVC accepts them: `NAME`,
    /// `dvt.toml:NAME`, or DVC's `DIR/dvc.yaml:NAME` (see [`dvc_address`]); the name of a `foreach` stage stands for all its cases
    /// (`NAME@…`). Empty when the target is no stage name (callers take it as a
    /// path); after `dvt.toml:`, an unknown name is an error.
    pub fn stage_named(&self, target: &str) -> Result<Vec<&Stage>> {
        let from_dvc = dvc_address(target);
        let prefixed = target
            .strip_prefix(PIPELINE_FILE)
            .and_then(|r| r.strip_prefix(':'))
            .or(from_dvc.as_deref());
        let name = prefixed.unwrap_or(target);
        if let Some(stage) = self.stages.get(name) {
            return Ok(vec![stage]);
        }
        let group = format!("{name}@");
        let cases: Vec<&Stage> = self
            .stages
            .range(group.clone()..)
            .take_while(|(k, _)| k.starts_with(&group))
            .map(|(_, s)| s)
            .collect();
        match (cases.is_empty(), prefixed.is_some()) {
            (true, true) => Err(self.unknown(name)),
            _ => Ok(cases),
        }
    }

    /// The stage one of whose outs is at the repo-relative path `rel`.
    pub fn producer(&self, rel: &str) -> Option<&Stage> {
        self.outs().find(|(_, o)| o.path == rel).map(|(s, _)| s)
    }

    /// The names of the stages `targets` name (`NAME` or `dvt.toml:NAME`);
    /// anything else is an error.
    pub fn stage_names(&self, targets: &[String]) -> Result<Vec<String>> {
        let mut names = Vec::new();
        for t in targets {
            let named = self.stage_named(t)?;
            if named.is_empty() {
                return Err(self.unknown(t));
            }
            names.extend(named.iter().map(|s| s.name.clone()));
        }
        Ok(names)
    }

    /// The stage names matching each of `patterns`, shell-style (`*`, `?`,
    /// `[...]`; as DVC's `--glob`), in pipeline order: a name is given as
    /// `NAME` or `dvt.toml:NAME`, and a `foreach` case as `NAME@KEY`. A
    /// pattern that matches nothing, or does not parse, is an error.
    pub fn stages_matching(&self, patterns: &[String]) -> Result<Vec<String>> {
        let mut names = Vec::new();
        for p in patterns {
            let from_dvc = dvc_address(p);
            let bare = p
                .strip_prefix(PIPELINE_FILE)
                .and_then(|r| r.strip_prefix(':'))
                .or(from_dvc.as_deref())
                .unwrap_or(p);
            let glob = globset::GlobBuilder::new(bare)
                .literal_separator(false)
                .build()
                .map_err(|e| bad(None, format!("`{p}` is not a pattern: {}", e.kind())))?
                .compile_matcher();
            let before = names.len();
            names.extend(
                self.order
                    .iter()
                    .filter(|n| glob.is_match(n.as_str()) && !names.contains(*n))
                    .cloned()
                    .collect::<Vec<_>>(),
            );
            if names.len() == before && !self.stages.keys().any(|n| glob.is_match(n.as_str())) {
                return Err(self.unknown(p));
            }
        }
        Ok(names)
    }

    fn unknown(&self, name: &str) -> crate::Error {
        PipelineError::UnknownStage {
            name: name.to_string(),
            known: self.stages.keys().cloned().collect(),
        }
        .into()
    }

    /// The stages to consider for `targets` (stage names, also as
    /// `dvt.toml:NAME`; all stages when empty): each target and everything
    /// upstream of it, or with `downstream`, each target and everything that
    /// depends on it; in run order.
    pub fn select(&self, targets: &[String], downstream: bool) -> Result<Vec<String>> {
        let named = self.stage_names(targets)?;
        if named.is_empty() {
            return Ok(self.order.clone());
        }
        let mut keep: BTreeSet<String> = named.iter().cloned().collect();
        let mut todo: Vec<String> = named;
        while let Some(s) = todo.pop() {
            // A frozen stage is cut off from the stages it depends on.
            let next: Vec<String> = if downstream {
                self.upstream
                    .iter()
                    .filter(|(n, ups)| ups.contains(&s) && !self.stages[*n].frozen)
                    .map(|(n, _)| n.clone())
                    .collect()
            } else if self.stages[&s].frozen {
                Vec::new()
            } else {
                self.upstream
                    .get(&s)
                    .map(|u| u.iter().cloned().collect())
                    .unwrap_or_default()
            };
            for n in next {
                if keep.insert(n.clone()) {
                    todo.push(n);
                }
            }
        }
        Ok(self.order.iter().filter(|s| keep.contains(*s)).cloned().collect())
    }

    /// Whether some stage lists param `key` of params file `file`, itself or a
    /// section holding it (`train` holds `train.lr`; an empty key, the file).
    pub fn uses_param(&self, file: &str, key: &str) -> bool {
        self.uses_param_in(None, file, key)
    }

    /// Whether one of `stages` (`None`: any stage) lists `key` of `file`.
    pub fn uses_param_in(&self, stages: Option<&[String]>, file: &str, key: &str) -> bool {
        let chosen = |name: &String| stages.is_none_or(|s| s.contains(name));
        self.stages
            .iter()
            .filter(|(n, _)| chosen(n))
            .flat_map(|(_, s)| &s.params)
            .any(|d| {
                d.file == file
                    && (d.key.is_empty() || crate::relpath::within(&key.replace('.', "/"), &d.key.replace('.', "/")))
            })
    }

    /// `names` and every stage connected to them by deps, upstream or downstream,
    /// at any distance: the pipelines they are in (DVC's `repro --pipeline`).
    pub fn connected(&self, names: &[String]) -> Vec<String> {
        let mut keep: BTreeSet<String> = names.iter().cloned().collect();
        let mut todo: Vec<String> = names.to_vec();
        while let Some(s) = todo.pop() {
            let ups = self.upstream.get(&s).into_iter().flatten().cloned();
            let downs = self
                .upstream
                .iter()
                .filter(|(_, ups)| ups.contains(&s))
                .map(|(n, _)| n.clone());
            for n in ups.chain(downs).collect::<Vec<_>>() {
                if keep.insert(n.clone()) {
                    todo.push(n);
                }
            }
        }
        self.order.iter().filter(|s| keep.contains(*s)).cloned().collect()
    }

    /// Every out of every stage, with its stage.
    pub fn outs(&self) -> impl Iterator<Item = (&Stage, &Out)> {
        self.stages.values().flat_map(|s| s.outs.iter().map(move |o| (s, o)))
    }
}

impl Stage {
    /// The stage `body` describes, with `vars` of its own (as DVC's stage-level
    /// `vars`: tables, and files relative to its `wdir`) added to `vars`.
    fn resolve_with_vars(
        name: &str,
        body: &toml::Value,
        vars: &template::Vars,
        read: &dyn Fn(&str) -> Result<Option<String>>,
    ) -> Result<Stage> {
        let Some(own) = body.as_table().and_then(|t| t.get("vars")) else {
            return Stage::resolve(name, body, vars);
        };
        let wdir = match body.get("wdir") {
            Some(toml::Value::String(w)) if !w.contains("${") => repo_path(Some(name), "", w, "wdir")?,
            _ => String::new(),
        };
        let mut sources: Vec<template::Source> = vars.sources.to_vec();
        sources.extend(vars_sources(Some(own), read, &wdir, Some(name))?);
        let with_own = template::Vars {
            sources: &sources,
            locals: vars.locals,
        };
        with_own.check(Some(name))?;
        let mut body = body.clone();
        if let Some(t) = body.as_table_mut() {
            t.remove("vars");
        }
        Stage::resolve(name, &body, &with_own)
    }

    /// The stage `body` describes, with its `${KEY}`s filled in from `vars`;
    /// those taken from a file become params of the stage.
    fn resolve(name: &str, body: &toml::Value, vars: &template::Vars) -> Result<Stage> {
        let mut tracked = BTreeSet::new();
        let body = vars.value(name, body, &mut tracked)?;
        let empty = toml::Table::new();
        let mut stage = Stage::parse(name, body.as_table().unwrap_or(&empty))?;
        for p in tracked {
            let covered = stage
                .params
                .iter()
                .any(|q| q.file == p.file && (q.key == p.key || p.key.starts_with(&format!("{}.", q.key))));
            if !covered {
                stage.params.push(p);
            }
        }
        Ok(stage)
    }

    fn parse(name: &str, t: &toml::Table) -> Result<Stage> {
        const KEYS: [&str; 10] = [
            "cmd",
            "deps",
            "params",
            "outs",
            "metrics",
            "plots",
            "wdir",
            "desc",
            "frozen",
            "always_changed",
        ];
        for k in t.keys() {
            if !KEYS.contains(&k.as_str()) {
                return Err(bad(
                    Some(name),
                    format!("unknown key `{k}` (known: {})", KEYS.join(", ")),
                ));
            }
        }
        let flag = |key: &str| match t.get(key) {
            None => Ok(false),
            Some(toml::Value::Boolean(b)) => Ok(*b),
            Some(_) => Err(bad(Some(name), format!("`{key}` must be true or false"))),
        };
        let desc = match t.get("desc") {
            None => None,
            Some(toml::Value::String(d)) => Some(d.clone()),
            Some(_) => return Err(bad(Some(name), "`desc` must be a string")),
        };
        let cmd = match t.get("cmd") {
            Some(toml::Value::String(c)) if !c.trim().is_empty() => c.clone(),
            Some(_) => return Err(bad(Some(name), "`cmd` must be a non-empty string")),
            None => return Err(bad(Some(name), "missing `cmd`")),
        };
        let wdir = match t.get("wdir") {
            None => String::new(),
            Some(toml::Value::String(w)) if w == "." || w.is_empty() => String::new(),
            Some(toml::Value::String(w)) => repo_path(Some(name), "", w, "wdir")?,
            Some(_) => return Err(bad(Some(name), "`wdir` must be a string")),
        };
        let deps = match t.get("deps") {
            Some(v) => strings(name, "deps", v)?
                .iter()
                .map(|d| repo_path(Some(name), &wdir, d, "dep"))
                .collect::<Result<Vec<_>>>()?,
            None => Vec::new(),
        };
        let mut params = Vec::new();
        if let Some(v) = t.get("params") {
            for spec in strings(name, "params", v)? {
                params.extend(parse_param_spec(name, &wdir, &spec)?);
            }
        }
        let mut all_outs = Vec::new();
        for (key, kind) in [
            ("outs", OutKind::Out),
            ("metrics", OutKind::Metric),
            ("plots", OutKind::Plot),
        ] {
            if let Some(v) = t.get(key) {
                all_outs.extend(outs(Some(name), &wdir, key, v, kind)?);
            }
        }
        let mut seen = BTreeSet::new();
        for o in &all_outs {
            if !seen.insert(o.path.as_str()) {
                return Err(bad(Some(name), format!("out `{}` is listed twice", o.path)));
            }
            if deps.contains(&o.path) {
                return Err(bad(Some(name), format!("`{}` is both a dep and an out", o.path)));
            }
        }
        Ok(Stage {
            name: name.to_string(),
            cmd,
            wdir,
            deps,
            params,
            outs: all_outs,
            desc,
            frozen: flag("frozen")?,
            always_changed: flag("always_changed")?,
        })
    }
}

/// The text of the repo-relative `file` in `repo`'s workspace, if there is one.
pub fn read_file(repo: &Repo, file: &str) -> Result<Option<String>> {
    match fs_err::read_to_string(repo.root().join(file)) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The sources of `${KEY}` values that `vars` of `dvt.toml` gives, as in DVC: a
/// table, or a list of tables and of files (`"config.yaml"`, or
/// `"config.yaml:train,eval"` for only those keys), read with `read`.
fn vars_sources(
    vars: Option<&toml::Value>,
    read: &dyn Fn(&str) -> Result<Option<String>>,
    wdir: &str,
    stage: Option<&str>,
) -> Result<Vec<template::Source>> {
    const WHAT: &str =
        "`vars` is a table, or a list of tables and files (`\"config.yaml\"`, `\"config.yaml:train,eval\"`)";
    let items = match vars {
        None => return Ok(Vec::new()),
        Some(v @ toml::Value::Table(_)) => std::slice::from_ref(v),
        Some(toml::Value::Array(a)) => a.as_slice(),
        Some(_) => return Err(bad(stage, WHAT)),
    };
    let mut out = Vec::new();
    for item in items {
        match item {
            toml::Value::Table(t) => out.push(template::Source {
                file: None,
                stage: stage.map(str::to_string),
                values: t.clone(),
            }),
            toml::Value::String(spec) => {
                let (file, keys) = match spec.split_once(':') {
                    Some((f, k)) => (f, Some(k)),
                    None => (spec.as_str(), None),
                };
                let file = repo_path(stage, wdir, file.trim(), "vars file")?;
                let text = read(&file)?.ok_or_else(|| bad(stage, format!("vars file `{file}` does not exist")))?;
                let all = params::parse(&file, &text)?;
                let values = match keys {
                    None => all,
                    Some(keys) => {
                        let mut picked = toml::Table::new();
                        for key in keys.split(',').map(str::trim) {
                            let v = params::lookup(&all, key)
                                .filter(|_| !key.is_empty())
                                .ok_or_else(|| bad(stage, format!("vars file `{file}` has no key `{key}`")))?;
                            insert_at(&mut picked, key, v.clone());
                        }
                        picked
                    }
                };
                out.push(template::Source {
                    file: Some(file),
                    stage: None,
                    values,
                });
            }
            _ => return Err(bad(stage, WHAT)),
        }
    }
    Ok(out)
}

/// Puts `v` at dotted `key` in `t`, making the tables on the way.
fn insert_at(t: &mut toml::Table, key: &str, v: toml::Value) {
    match key.split_once('.') {
        None => {
            t.insert(key.to_string(), v);
        }
        Some((head, rest)) => {
            let sub = t
                .entry(head.to_string())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if !sub.is_table() {
                *sub = toml::Value::Table(toml::Table::new());
            }
            if let toml::Value::Table(sub) = sub {
                insert_at(sub, rest, v);
            }
        }
    }
}

/// Fails if an out of a stage of `pipeline` is, holds or lies inside data
/// that a pointer file of the workspace tracks: the stage and `checkout`
/// would each write their own version there (DVC refuses such overlapping
/// outputs too).
pub fn check_outs_untracked(repo: &Repo, pipeline: &Pipeline) -> Result<()> {
    let outs: Vec<(&str, &str)> = pipeline
        .stages
        .values()
        .flat_map(|s| s.outs.iter().map(move |o| (s.name.as_str(), o.path.as_str())))
        .collect();
    if outs.is_empty() {
        return Ok(());
    }
    for file in crate::workspace::find_pointers(repo)? {
        // A malformed pointer is reported by the commands that read it.
        let Ok(t) = crate::workspace::Tracked::load(repo, &file) else {
            continue;
        };
        if let Some((stage, out)) = outs.iter().find(|(_, out)| overlaps(out, &t.data_rel)) {
            return Err(PipelineError::OutTracked {
                stage: stage.to_string(),
                out: out.to_string(),
                tracked: t.data_rel,
                pointer: t.pointer_rel,
            }
            .into());
        }
    }
    Ok(())
}

/// Whether `a` and `b` are the same path or one is inside the other.
pub fn overlaps(a: &str, b: &str) -> bool {
    a == b || a.starts_with(&format!("{b}/")) || b.starts_with(&format!("{a}/"))
}

type Dag = (BTreeMap<String, BTreeSet<String>>, Vec<String>);

fn dag(stages: &BTreeMap<String, Stage>) -> Result<Dag> {
    // Every out belongs to exactly one stage, and no out contains another.
    let all: Vec<(&str, &str)> = stages
        .values()
        .flat_map(|s| s.outs.iter().map(move |o| (s.name.as_str(), o.path.as_str())))
        .collect();
    for (i, (sa, a)) in all.iter().enumerate() {
        for (sb, b) in &all[i + 1..] {
            if overlaps(a, b) && sa != sb {
                return Err(PipelineError::OutConflict {
                    out: if a.len() <= b.len() { a } else { b }.to_string(),
                    stages: vec![sa.to_string(), sb.to_string()],
                }
                .into());
            }
        }
    }
    let mut upstream: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for s in stages.values() {
        let ups = upstream.entry(s.name.clone()).or_default();
        for d in &s.deps {
            for (producer, out) in &all {
                if overlaps(d, out) {
                    if *producer == s.name {
                        return Err(PipelineError::OwnOut {
                            stage: s.name.clone(),
                            dep: d.clone(),
                            out: out.to_string(),
                        }
                        .into());
                    }
                    ups.insert(producer.to_string());
                }
            }
        }
    }
    // Depth-first, parents first; a grey node met again closes a cycle.
    let mut order = Vec::new();
    let mut state: BTreeMap<&str, u8> = BTreeMap::new(); // 1 = on the path, 2 = done
    fn visit<'a>(
        n: &'a str,
        upstream: &'a BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<&'a str, u8>,
        path: &mut Vec<String>,
        order: &mut Vec<String>,
    ) -> Result<()> {
        match state.get(n) {
            Some(2) => return Ok(()),
            Some(1) => {
                let start = path.iter().position(|p| p == n).unwrap_or(0);
                let mut cycle: Vec<String> = path[start..].to_vec();
                cycle.push(n.to_string());
                return Err(PipelineError::Cycle { stages: cycle }.into());
            }
            _ => {}
        }
        state.insert(n, 1);
        path.push(n.to_string());
        if let Some(ups) = upstream.get(n) {
            for u in ups {
                visit(u, upstream, state, path, order)?;
            }
        }
        path.pop();
        state.insert(n, 2);
        order.push(n.to_string());
        Ok(())
    }
    for name in stages.keys() {
        visit(name, &upstream, &mut state, &mut Vec::new(), &mut order)?;
    }
    Ok((upstream, order))
}

/// The cached outs that `lock_text` records, as tracked paths (their pointer
/// file is `dvt.lock`); `pipeline_text` (the `dvt.toml` beside it, with `read`
/// giving the files beside that) says which outs are cached. Without a
/// readable one (missing, or with a merge's conflict markers), the outs that
/// `in_git` says git keeps (given all the lock's outs) are taken as uncached
/// (metrics and plots kept in git: no cached out may be there), the others as
/// cached.
pub fn outs_from(
    repo: &Repo,
    lock_text: &str,
    lock_name: &Path,
    pipeline_text: Option<&str>,
    read: &dyn Fn(&str) -> Result<Option<String>>,
    in_git: &dyn Fn(&[&str]) -> BTreeSet<String>,
) -> Result<Vec<crate::workspace::Tracked>> {
    let lock = lock::Lock::parse(lock_text, lock_name)?;
    let pipeline = pipeline_text.and_then(|t| Pipeline::parse_with(t, read).ok());
    let kept_by_git = match &pipeline {
        Some(_) => BTreeSet::new(),
        None => {
            let paths: Vec<&str> = lock
                .stages
                .values()
                .flat_map(|s| &s.outs)
                .map(|o| o.path.as_str())
                .collect();
            in_git(&paths)
        }
    };
    let cached = |stage: &str, path: &str| -> bool {
        match &pipeline {
            Some(p) => p
                .stages
                .get(stage)
                .and_then(|s| s.outs.iter().find(|o| o.path == path))
                .is_none_or(|o| o.cache),
            None => !kept_by_git.contains(path),
        }
    };
    let mut outs = lock.tracked(repo, &cached);
    // Where each goes (`remote`, `push`), as its entry in `dvt.toml` says.
    if let Some(p) = &pipeline {
        for t in &mut outs {
            if let Some(o) = p.stages.values().flat_map(|s| &s.outs).find(|o| o.path == t.data_rel) {
                t.pointer.remote = o.remote.clone();
                t.pointer.push = o.push;
            }
        }
    }
    Ok(outs)
}

/// The keys of an out's table that mean something only in a stage.
const STAGED_OUT_KEYS: [&str; 4] = ["cache", "persist", "remote", "push"];

/// What a stage's out may say about itself for the reader, as a pointer file
/// and DVC's outs may: checked, and otherwise only documentation.
const OUT_ANNOTATIONS: [&str; 4] = ["desc", "type", "labels", "meta"];

/// Checks the annotations (see [`OUT_ANNOTATIONS`]) of out `path`'s table `t`.
fn check_annotations(stage: Option<&str>, path: &str, t: &toml::Table) -> Result<()> {
    let fits = |key: &str, v: &toml::Value| match key {
        "labels" => v.as_array().is_some_and(|a| a.iter().all(toml::Value::is_str)),
        "meta" => v.is_table(),
        _ => v.is_str(),
    };
    for key in OUT_ANNOTATIONS {
        if let Some(v) = t.get(key).filter(|v| !fits(key, v)) {
            let want = match key {
                "labels" => "a list of strings",
                "meta" => "a table",
                _ => "a string",
            };
            return Err(bad(stage, format!("`{key}` of `{path}` must be {want}, not `{v}`")));
        }
    }
    Ok(())
}

/// The cached outs recorded in the workspace's `dvt.lock` (none without one).
pub fn lock_outs(repo: &Repo) -> Result<Vec<crate::workspace::Tracked>> {
    let lock_path = repo.root().join(LOCK_FILE);
    let text = match fs_err::read_to_string(&lock_path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let pipeline = fs_err::read_to_string(repo.root().join(PIPELINE_FILE)).ok();
    // An index that cannot be read holds nothing here.
    let in_index = |paths: &[&str]| -> BTreeSet<String> {
        crate::git::indexed_among(repo.root(), paths)
            .unwrap_or_default()
            .into_iter()
            .map(str::to_string)
            .collect()
    };
    outs_from(
        repo,
        &text,
        &lock_path,
        pipeline.as_deref(),
        &|f| read_file(repo, f),
        &in_index,
    )
}

/// `rel` joined to the repository root.
pub fn abs(repo: &Repo, rel: &str) -> std::path::PathBuf {
    repo.root().join(Path::new(rel))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dvc_addresses_name_the_stages_migrate_made() {
        assert_eq!(dvc_address("dvc.yaml:train").as_deref(), Some("train"));
        assert_eq!(dvc_address("./dvc.yaml:train").as_deref(), Some("train"));
        assert_eq!(dvc_address("models/dvc.yaml:train").as_deref(), Some("models-train"));
        assert_eq!(dvc_address("a b/c.d/dvc.yaml:x").as_deref(), Some("a-b-c-d-x"));
        assert_eq!(dvc_address("dvt.toml:train"), None);
        assert_eq!(dvc_address("models/mydvc.yaml:train"), None);
        assert_eq!(dvc_address("train"), None);
    }

    #[test]
    fn dag_orders_stages_and_names_cycles_and_conflicts() {
        let p = Pipeline::parse(
            r#"
[stages.train]
cmd = "t"
deps = ["features"]
outs = ["model.bin"]
metrics = ["m.json"]
[stages.featurize]
cmd = "f"
deps = ["raw/x.csv"]
outs = ["features"]
params = ["a.b", "p.toml:c,d"]
"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.order, ["featurize", "train"]);
        assert_eq!(p.stages["featurize"].params.len(), 3);
        assert_eq!(p.stages["featurize"].params[0].file, "params.yaml");
        assert!(!p.stages["train"].outs[1].cache, "metrics are not cached by default");

        let cycle = Pipeline::parse(
            "[stages.a]\ncmd='x'\ndeps=['b']\nouts=['a']\n[stages.b]\ncmd='y'\ndeps=['a/f']\nouts=['b']\n",
        );
        let msg = cycle.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(msg.contains("cycle") && msg.contains("a") && msg.contains("b"), "{msg}");

        let twice = Pipeline::parse("[stages.a]\ncmd='x'\nouts=['o']\n[stages.b]\ncmd='y'\nouts=['o/inner']\n");
        let msg = twice.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(msg.contains("`o`") && msg.contains("a") && msg.contains("b"), "{msg}");

        for bad in [
            "[stages.a]\ncmd='x'\ndeps=['../escape']\n",
            "[stages.a]\ncmd='x'\nouts=['/abs']\n",
            "[stages.a]\ndeps=['x']\n",
            "[stages.a]\ncmd='x'\ncommand='y'\n",
            "[stages.a]\ncmd='x'\nouts=['.git/hooks']\n",
        ] {
            let msg = Pipeline::parse(bad).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(msg.contains("dvt.toml") && msg.contains("stage `a`"), "{bad}: {msg}");
        }
    }
}
