//! `dvt plots show|diff`, as DVC's: charts of plots files (CSV, TSV, JSON
//! or YAML records, such as a training loop writes one row per epoch), from the
//! workspace and from revisions, drawn as one self-contained HTML page of SVG.
//! Image files (PNG, JPEG, GIF, SVG, WebP) are shown as they are, side by side
//! per revision.
//!
//! Which field goes across and which go up, and how the file is drawn (lines,
//! dots, a confusion matrix, bars: [`PlotTemplate`]), come from the file's entry
//! in `plots` of a stage ([`PlotAxes`]), else: lines; across, `step` if the file
//! has that field, else the row number; up, every field whose values are all
//! numbers.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt::Write as _;

use serde::Serialize;

use crate::error::{GitError, PipelineError, Result};
use crate::git::{Git, GitId};
use crate::ops::stages::{pipeline_at, read_bytes_at, side};
use crate::pipeline::{PlotAxes, PlotTemplate};
use crate::repo::Repo;

/// What to draw.
#[derive(Debug, Clone, Default)]
pub struct PlotsOptions {
    /// Plots files, repo-relative (default: every `plots` entry of the pipeline).
    pub targets: Vec<String>,
    /// The revisions to read them at; `None` is the workspace.
    pub revs: Vec<Option<String>>,
    /// What is given here wins over each file's entry in `plots`.
    pub axes: PlotAxes,
}

/// Writes `text` up the left edge of a chart, centred at height `y`.
fn label_up(s: &mut String, y: f64, text: &str) {
    let _ = writeln!(
        s,
        "<text x=\"12\" y=\"{y:.1}\" text-anchor=\"middle\" transform=\"rotate(-90 12 {y:.1})\">{}</text>",
        escape(text)
    );
}

/// One chart: a plots file, read at each revision asked for.
#[derive(Debug, Clone, Serialize)]
pub struct Plot {
    /// The file, repo-relative.
    pub path: String,
    /// The title: `title` of its entry, else the path.
    pub title: String,
    /// The field across (`step` when that is the row number).
    pub x: String,
    /// The labels across and up, when given (`x_label`, `y_label`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub x_label: Option<String>,
    /// See [`Plot::x_label`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub y_label: Option<String>,
    /// One line per revision and field up.
    pub series: Vec<Series>,
    /// For an image file: the image at each revision.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<PlotImage>,
    /// How it is drawn.
    pub template: PlotTemplate,
    /// The field up, for confusion matrices and bars (lines name theirs in `series`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
    /// For a confusion matrix: the matrix at each revision.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub matrices: Vec<Matrix>,
    /// For bars: the bars at each revision.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub bars: Vec<Bars>,
}

/// A confusion matrix at one revision: how many records have each pair of
/// actual (`x`) and predicted (`y`) class.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Matrix {
    /// The revision it was read at (`workspace` for the workspace).
    pub rev: String,
    /// The classes, of rows (actual) and columns (predicted) alike: sorted,
    /// as numbers when they all are.
    pub classes: Vec<String>,
    /// `counts[actual][predicted]`.
    pub counts: Vec<Vec<u64>>,
}

/// Horizontal bars at one revision: a length (`x`) per category (`y`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bars {
    /// The revision it was read at (`workspace` for the workspace).
    pub rev: String,
    /// `[category, length]` per record, in file order.
    pub bars: Vec<(String, f64)>,
}

/// An image plots file at one revision.
#[derive(Debug, Clone, Serialize)]
pub struct PlotImage {
    /// The revision it was read at (`workspace` for the workspace).
    pub rev: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its bytes.
    #[serde(skip)]
    pub bytes: Vec<u8>,
}

/// The media type of an image plots file, by extension; `None` for data.
fn image_type(path: &str) -> Option<&'static str> {
    let ext = path.rsplit_once('.')?.1.to_ascii_lowercase();
    Some(match ext.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "svg" => "image/svg+xml",
        "webp" => "image/webp",
        _ => return None,
    })
}

/// One line of a chart.
#[derive(Debug, Clone, Serialize)]
pub struct Series {
    /// The revision it was read at (`workspace` for the workspace).
    pub rev: String,
    /// The field up.
    pub y: String,
    /// `[x, y]` per row, in file order.
    pub points: Vec<[f64; 2]>,
}

/// The field that stands for the row number when a file has no field across.
const STEP: &str = "step";

/// Reads every plots file `opts` names at every revision it names.
pub fn plots(repo: &Repo, opts: &PlotsOptions) -> Result<Vec<Plot>> {
    let revs: Vec<Option<String>> = match opts.revs.is_empty() {
        true => vec![None],
        false => opts.revs.clone(),
    };
    let sides = revs
        .iter()
        .map(|r| Ok((r.clone(), side(repo, r.as_deref())?)))
        .collect::<Result<Vec<Side>>>()?;
    // How to draw each file: as its entry in a pipeline says, the workspace's first.
    let mut declared: Vec<(String, PlotAxes)> = Vec::new();
    let mut pipelines = vec![crate::pipeline::Pipeline::load(repo)?];
    for (_, at) in &sides {
        if at.is_some() {
            pipelines.push(pipeline_at(repo, at.as_ref()).ok().flatten());
        }
    }
    for p in pipelines.iter().flatten() {
        let written = p.outs().filter_map(|(_, o)| Some((&o.path, o.plot.as_ref()?)));
        for (path, axes) in written.chain(p.plots.iter().map(|(f, a)| (f, a))) {
            if !declared.iter().any(|(known, _)| known == path) {
                declared.push((path.clone(), axes.clone()));
            }
        }
    }
    let targets: Vec<(String, PlotAxes)> = match opts.targets.is_empty() {
        true => declared.clone(),
        false => opts
            .targets
            .iter()
            .map(|t| {
                let axes = declared.iter().find(|(p, _)| p == t).map(|(_, a)| a.clone());
                (t.clone(), axes.unwrap_or_default())
            })
            .collect(),
    };
    if targets.is_empty() {
        return Err(PipelineError::Plot {
            file: "dvt.toml".into(),
            rev: None,
            message: "no plots: name files, or list them in `plots` (of a stage, or top-level)".into(),
        }
        .into());
    }
    // A directory (of images, say) is a chart per file in it, as with DVC.
    let mut expanded = Vec::with_capacity(targets.len());
    for (path, axes) in targets {
        let listed = match axes.files.is_empty() {
            true => files_in_dir(repo, &sides, &path)?,
            false => None,
        };
        match listed {
            None => expanded.push((path, axes)),
            Some(files) if files.is_empty() => {
                return Err(PipelineError::Plot {
                    file: path,
                    rev: None,
                    message: "it is a directory with no files in it".into(),
                }
                .into());
            }
            Some(files) => expanded.extend(files.into_iter().map(|f| (f, axes.clone()))),
        }
    }
    let targets = expanded;
    let mut out = Vec::new();
    for (path, mut axes) in targets {
        if opts.axes.x.is_some() {
            axes.x.clone_from(&opts.axes.x);
        }
        if !opts.axes.y.is_empty() {
            axes.y.clone_from(&opts.axes.y);
        }
        if opts.axes.title.is_some() {
            axes.title.clone_from(&opts.axes.title);
        }
        if opts.axes.template.is_some() {
            axes.template = opts.axes.template;
        }
        if opts.axes.x_label.is_some() {
            axes.x_label.clone_from(&opts.axes.x_label);
        }
        if opts.axes.y_label.is_some() {
            axes.y_label.clone_from(&opts.axes.y_label);
        }
        axes.no_header |= opts.axes.no_header;
        let template = axes.template.unwrap_or(PlotTemplate::Linear);
        let mut plot = Plot {
            title: axes.title.clone().unwrap_or_else(|| path.clone()),
            x: axes.x.clone().unwrap_or_else(|| STEP.into()),
            x_label: axes.x_label.clone(),
            y_label: axes.y_label.clone(),
            path: path.clone(),
            series: Vec::new(),
            images: Vec::new(),
            template,
            y: None,
            matrices: Vec::new(),
            bars: Vec::new(),
        };
        let mut found = false;
        if !axes.files.is_empty() {
            found = several_files(repo, &sides, &axes, &mut plot)?;
        }
        for (rev, at) in sides.iter().filter(|_| axes.files.is_empty()) {
            let Some(bytes) = read(repo, at.as_ref(), rev.as_deref(), &path)? else {
                continue;
            };
            found = true;
            let label = rev.clone().unwrap_or_else(|| "workspace".into());
            if image_type(&path).is_some() {
                plot.images.push(PlotImage {
                    rev: label,
                    size: bytes.len() as u64,
                    bytes,
                });
                continue;
            }
            let bad = |message: String| -> crate::Error {
                PipelineError::Plot {
                    file: path.clone(),
                    rev: rev.clone(),
                    message,
                }
                .into()
            };
            let table = records(&path, &String::from_utf8_lossy(&bytes), !axes.no_header).map_err(bad)?;
            match template {
                PlotTemplate::Linear | PlotTemplate::Scatter => {
                    for (y, points) in lines(&table, &axes).map_err(bad)? {
                        plot.series.push(Series {
                            rev: label.clone(),
                            y,
                            points,
                        });
                    }
                }
                PlotTemplate::Confusion | PlotTemplate::ConfusionNormalized => {
                    let (x, y, classes, counts) = confusion(&table, &axes).map_err(bad)?;
                    (plot.x, plot.y) = (x, Some(y));
                    plot.matrices.push(Matrix {
                        rev: label,
                        classes,
                        counts,
                    });
                }
                PlotTemplate::BarHorizontal | PlotTemplate::BarHorizontalSorted => {
                    let (x, y, bars) = bars(&table, &axes).map_err(bad)?;
                    (plot.x, plot.y) = (x, Some(y));
                    plot.bars.push(Bars { rev: label, bars });
                }
            }
        }
        if !found {
            let whence = match revs.as_slice() {
                [None] => "in the workspace".to_string(),
                _ => format!(
                    "at any of {}",
                    revs.iter()
                        .map(|r| r.as_deref().unwrap_or("the workspace"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            };
            let message = match axes.files.is_empty() {
                true => format!("it does not exist {whence}"),
                false => format!(
                    "none of its files ({}) exists {whence}",
                    axes.files
                        .iter()
                        .map(|(f, _)| f.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            };
            return Err(PipelineError::Plot {
                file: path,
                rev: None,
                message,
            }
            .into());
        }
        out.push(plot);
    }
    Ok(out)
}

/// The lines of a plot of several files (`axes.files`), each named `FILE: FIELD`,
/// at each side; whether any of its files was found.
/// The files below `path` (repo-relative, sorted, those of every side together)
/// if it is a directory at any of `sides`; `None` if it is a file or nothing.
fn files_in_dir(repo: &Repo, sides: &[Side], path: &str) -> Result<Option<Vec<String>>> {
    if path.is_empty() {
        return Ok(None);
    }
    let mut files = BTreeSet::new();
    let mut dir = false;
    for (_, at) in sides {
        match at {
            None => {
                let abs = repo.root().join(path);
                if !abs.is_dir() {
                    continue;
                }
                dir = true;
                let walk = ignore::WalkBuilder::new(&abs).standard_filters(false).build();
                for entry in walk {
                    let entry = entry.map_err(|e| std::io::Error::other(e.to_string()))?;
                    if entry.file_type().is_some_and(|t| t.is_file())
                        && let Ok(rel) = entry.path().strip_prefix(&abs)
                    {
                        files.insert(format!("{path}/{}", rel.to_string_lossy()));
                    }
                }
            }
            Some((git, commit)) => {
                if let crate::git::TreeAt::Dir(items) = git.list_tree(*commit, path, true, false)? {
                    dir = true;
                    files.extend(
                        items
                            .into_iter()
                            .filter(|i| !i.dir)
                            .map(|i| format!("{path}/{}", i.path)),
                    );
                }
            }
        }
    }
    Ok(dir.then(|| files.into_iter().collect()))
}

/// A revision asked for (`None`: the workspace) and where to read it.
type Side = (Option<String>, Option<(Git, GitId)>);

fn several_files(repo: &Repo, sides: &[Side], axes: &PlotAxes, plot: &mut Plot) -> Result<bool> {
    let mut found = false;
    for (rev, at) in sides {
        let label = rev.clone().unwrap_or_else(|| "workspace".into());
        for (file, fields) in &axes.files {
            let Some(bytes) = read(repo, at.as_ref(), rev.as_deref(), file)? else {
                continue;
            };
            found = true;
            let bad = |message: String| -> crate::Error {
                PipelineError::Plot {
                    file: file.clone(),
                    rev: rev.clone(),
                    message,
                }
                .into()
            };
            let table = records(file, &String::from_utf8_lossy(&bytes), !axes.no_header).map_err(bad)?;
            let one = PlotAxes {
                x: axes.x.clone(),
                y: fields.clone(),
                ..PlotAxes::default()
            };
            for (y, points) in lines(&table, &one).map_err(bad)? {
                plot.series.push(Series {
                    rev: label.clone(),
                    y: format!("{file}: {y}"),
                    points,
                });
            }
        }
    }
    Ok(found)
}

/// `rel` at one side: from git or the workspace, or for a cached plots file at
/// a revision, its data there from the cache (or the default remote).
fn read(repo: &Repo, at: Option<&(Git, GitId)>, rev: Option<&str>, rel: &str) -> Result<Option<Vec<u8>>> {
    let in_git = read_bytes_at(repo, at, rel)?;
    if in_git.is_some() || rev.is_none() {
        return Ok(in_git);
    }
    match crate::api::open_in(repo, rel, rev, None) {
        Ok((_, mut reader)) => {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut reader, &mut bytes)?;
            Ok(Some(bytes))
        }
        Err(crate::Error::Git(GitError::NotTrackedAt { .. })) => Ok(None),
        Err(e) => Err(e),
    }
}

/// A plots file as rows of fields, in the order the file gives them.
#[derive(Debug, Default, PartialEq)]
struct Records {
    fields: Vec<String>,
    rows: Vec<Vec<Option<String>>>,
}

/// Parses CSV or TSV (a header row, then one row per record; without
/// `header`, only records, whose fields are named `0`, `1`, ...), JSON or YAML
/// (a list of records, or a table holding one), by extension.
fn records(path: &str, text: &str, header: bool) -> std::result::Result<Records, String> {
    let lower = path.to_ascii_lowercase();
    if lower.ends_with(".json") {
        // NaN and Infinity, as Python writes them, are points left out.
        let text = crate::pipeline::params::with_nonfinite_marked(text);
        let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
        return from_value(&v);
    }
    if lower.ends_with(".yaml") || lower.ends_with(".yml") {
        let docs = yaml_rust2::YamlLoader::load_from_str(text).map_err(|e| e.to_string())?;
        let v = docs.first().map(yaml_json).unwrap_or(serde_json::Value::Null);
        return from_value(&v);
    }
    let sep = if lower.ends_with(".tsv") { '\t' } else { ',' };
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .peekable();
    let fields: Vec<String> = match (header, lines.peek()) {
        (_, None) => return Err("it is empty".into()),
        (true, Some(_)) => {
            let (_, first) = lines.next().unwrap_or_default();
            split(first, sep).into_iter().map(|f| f.trim().to_string()).collect()
        }
        (false, Some((_, first))) => (0..split(first, sep).len()).map(|i| i.to_string()).collect(),
    };
    let mut rows = Vec::new();
    for (i, line) in lines {
        let cells = split(line, sep);
        if cells.len() != fields.len() {
            return Err(format!(
                "line {} has {} fields, the {} {}",
                i + 1,
                cells.len(),
                if header { "header" } else { "first line" },
                fields.len()
            ));
        }
        rows.push(cells.into_iter().map(|c| Some(c.trim().to_string())).collect());
    }
    Ok(Records { fields, rows })
}

/// The cells of one CSV line; a cell may be quoted (`"a, b"`, `""` for `"`).
fn split(line: &str, sep: char) -> Vec<String> {
    let mut cells = vec![String::new()];
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        let cell = cells.last_mut().expect("cells is never empty");
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                cell.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            c if c == sep && !quoted => cells.push(String::new()),
            c => cell.push(c),
        }
    }
    cells
}

/// Records from a JSON value: a list of objects, or an object with one such list.
fn from_value(v: &serde_json::Value) -> std::result::Result<Records, String> {
    use serde_json::Value as J;
    const WHAT: &str = "expected a list of records, or a table holding one list of records";
    let list = match v {
        J::Array(a) => a,
        J::Object(o) => {
            let lists: Vec<&Vec<J>> = o.values().filter_map(J::as_array).collect();
            match lists.as_slice() {
                [one] => *one,
                _ => return Err(WHAT.into()),
            }
        }
        _ => return Err(WHAT.into()),
    };
    let mut fields: Vec<String> = Vec::new();
    for r in list {
        let J::Object(o) = r else {
            return Err(WHAT.into());
        };
        for k in o.keys() {
            if !fields.contains(k) {
                fields.push(k.clone());
            }
        }
    }
    let rows = list
        .iter()
        .filter_map(J::as_object)
        .map(|o| {
            fields
                .iter()
                .map(|f| match o.get(f) {
                    Some(J::String(s)) if crate::pipeline::params::is_nonfinite_mark(s) => None,
                    Some(J::String(s)) => Some(s.clone()),
                    Some(J::Number(n)) => Some(n.to_string()),
                    Some(J::Bool(b)) => Some(b.to_string()),
                    _ => None,
                })
                .collect()
        })
        .collect();
    Ok(Records { fields, rows })
}

fn yaml_json(y: &yaml_rust2::Yaml) -> serde_json::Value {
    use serde_json::Value as J;
    use yaml_rust2::Yaml as Y;
    match y {
        Y::Real(s) => s
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map_or(J::Null, J::Number),
        Y::Integer(i) => J::Number((*i).into()),
        Y::String(s) => J::String(s.clone()),
        Y::Boolean(b) => J::Bool(*b),
        Y::Array(a) => J::Array(a.iter().map(yaml_json).collect()),
        Y::Hash(h) => J::Object(
            h.iter()
                .filter_map(|(k, v)| {
                    Some((
                        k.as_str()
                            .map(str::to_string)
                            .or_else(|| k.as_i64().map(|i| i.to_string()))?,
                        yaml_json(v),
                    ))
                })
                .collect(),
        ),
        _ => J::Null,
    }
}

fn number(cell: Option<&String>) -> Option<f64> {
    cell.and_then(|c| c.parse::<f64>().ok()).filter(|n| n.is_finite())
}

/// A cell of a line's field: `Some(Some(x))` a point, `Some(None)` a gap (no
/// value, or NaN or an infinity: a diverged loss, a metric logged every few
/// steps), `None` not a number at all.
fn point(cell: Option<&String>) -> Option<Option<f64>> {
    match cell.map(|c| c.trim()) {
        None | Some("") => Some(None),
        Some(c) => c.parse::<f64>().ok().map(|n| n.is_finite().then_some(n)),
    }
}

/// A field up and its `[x, y]` points.
type Line = (String, Vec<[f64; 2]>);

/// The lines to draw: each field up with its points.
fn lines(t: &Records, axes: &PlotAxes) -> std::result::Result<Vec<Line>, String> {
    if t.rows.is_empty() {
        return Err("it has no rows".into());
    }
    let column = |name: &str| column(t, name);
    let x = match &axes.x {
        Some(x) => Some(column(x)?),
        None => t.fields.iter().position(|f| f == STEP),
    };
    let ys: Vec<usize> = match axes.y.is_empty() {
        false => axes
            .y
            .iter()
            .map(|y| column(y))
            .collect::<std::result::Result<_, _>>()?,
        true => (0..t.fields.len())
            .filter(|i| {
                let cells = || t.rows.iter().map(|r| point(r[*i].as_ref()));
                Some(*i) != x && cells().all(|p| p.is_some()) && cells().any(|p| p.flatten().is_some())
            })
            .collect(),
    };
    if ys.is_empty() {
        return Err("it has no field of numbers to draw (name one with `y`)".into());
    }
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    for y in ys {
        if !seen.insert(y) {
            continue;
        }
        let mut points = Vec::with_capacity(t.rows.len());
        for (i, row) in t.rows.iter().enumerate() {
            let value = |col: usize| {
                point(row[col].as_ref()).ok_or_else(|| {
                    format!(
                        "record {} has `{}` = `{}`, not a number",
                        i + 1,
                        t.fields[col],
                        row[col].as_deref().unwrap_or("")
                    )
                })
            };
            let across = match x {
                Some(c) => value(c)?,
                None => Some(i as f64),
            };
            // A gap on either axis is a point left out.
            if let (Some(across), Some(up)) = (across, value(y)?) {
                points.push([across, up]);
            }
        }
        out.push((t.fields[y].clone(), points));
    }
    Ok(out)
}

/// The index of field `name`, or what is wrong.
fn column(t: &Records, name: &str) -> std::result::Result<usize, String> {
    t.fields
        .iter()
        .position(|f| f == name)
        .ok_or_else(|| format!("it has no field `{name}` (fields: {})", t.fields.join(", ")))
}

/// The text of field `col` of record `i`, or what is wrong.
fn cell(t: &Records, i: usize, col: usize) -> std::result::Result<&str, String> {
    t.rows[i][col]
        .as_deref()
        .ok_or_else(|| format!("record {} has no `{}`", i + 1, t.fields[col]))
}

/// A confusion matrix: the fields across (actual: `x`, default `actual`) and
/// up (predicted: the first `y`, default `predicted`), the classes, and the
/// counts.
type Confusion = (String, String, Vec<String>, Vec<Vec<u64>>);

fn confusion(t: &Records, axes: &PlotAxes) -> std::result::Result<Confusion, String> {
    if t.rows.is_empty() {
        return Err("it has no rows".into());
    }
    let x = axes.x.clone().unwrap_or_else(|| "actual".into());
    let y = axes.y.first().cloned().unwrap_or_else(|| "predicted".into());
    let (cx, cy) = (column(t, &x)?, column(t, &y)?);
    let mut pairs = Vec::with_capacity(t.rows.len());
    for i in 0..t.rows.len() {
        pairs.push((cell(t, i, cx)?, cell(t, i, cy)?));
    }
    let mut classes: Vec<&str> = unique(pairs.iter().flat_map(|(a, p)| [*a, *p]));
    let numbers: Option<Vec<f64>> = classes.iter().map(|c| c.parse::<f64>().ok()).collect();
    match numbers {
        Some(_) => classes.sort_by(|a, b| {
            let (a, b) = (a.parse::<f64>().unwrap_or(0.0), b.parse::<f64>().unwrap_or(0.0));
            a.total_cmp(&b)
        }),
        None => classes.sort_unstable(),
    }
    if classes.len() > 200 {
        return Err(format!(
            "it has {} classes; a confusion matrix draws at most 200",
            classes.len()
        ));
    }
    let index: HashMap<&str, usize> = classes.iter().enumerate().map(|(i, c)| (*c, i)).collect();
    let mut counts = vec![vec![0u64; classes.len()]; classes.len()];
    for (a, p) in pairs {
        counts[index[a]][index[p]] += 1;
    }
    Ok((x, y, classes.into_iter().map(str::to_string).collect(), counts))
}

/// Bars: the field of lengths (`x`, default the first field of numbers), the
/// field of categories (the first `y`, default the first field not all
/// numbers), and `[category, length]` per record.
type BarData = (String, String, Vec<(String, f64)>);

fn bars(t: &Records, axes: &PlotAxes) -> std::result::Result<BarData, String> {
    if t.rows.is_empty() {
        return Err("it has no rows".into());
    }
    let numeric = |i: usize| t.rows.iter().all(|r| number(r[i].as_ref()).is_some());
    let cy = match axes.y.first() {
        Some(y) => column(t, y)?,
        None => (0..t.fields.len())
            .find(|i| !numeric(*i))
            .ok_or("it has no field of categories (name one with `y`)")?,
    };
    let cx = match &axes.x {
        Some(x) => column(t, x)?,
        None => (0..t.fields.len())
            .find(|i| *i != cy && numeric(*i))
            .ok_or("it has no field of numbers for the bars' lengths (name one with `x`)")?,
    };
    let mut out = Vec::with_capacity(t.rows.len());
    for i in 0..t.rows.len() {
        let length = number(t.rows[i][cx].as_ref()).ok_or_else(|| {
            format!(
                "record {} has `{}` = `{}`, not a number",
                i + 1,
                t.fields[cx],
                t.rows[i][cx].as_deref().unwrap_or("")
            )
        })?;
        out.push((cell(t, i, cy)?.to_string(), length));
    }
    Ok((t.fields[cx].clone(), t.fields[cy].clone(), out))
}

const COLORS: [&str; 8] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];

/// The chart of `plot` as a Vega-Lite (v5) specification, data inline, for
/// other tools to draw (DVC's `--show-vega`); `None` for an image file.
pub fn vega_lite(plot: &Plot) -> Option<serde_json::Value> {
    use serde_json::json;
    if !plot.images.is_empty() {
        return None;
    }
    let revs: Vec<&str> = unique(
        plot.series
            .iter()
            .map(|s| s.rev.as_str())
            .chain(plot.matrices.iter().map(|m| m.rev.as_str()))
            .chain(plot.bars.iter().map(|b| b.rev.as_str())),
    );
    let title_x = plot.x_label.clone().unwrap_or_else(|| plot.x.clone());
    let (values, mark, encoding) = if !plot.matrices.is_empty() {
        let normalized = plot.template == PlotTemplate::ConfusionNormalized;
        let mut values = Vec::new();
        for m in &plot.matrices {
            for (i, actual) in m.classes.iter().enumerate() {
                let total: u64 = m.counts[i].iter().sum();
                for (j, predicted) in m.classes.iter().enumerate() {
                    let count = m.counts[i][j];
                    let value = match (normalized, total) {
                        (true, 0) => json!(0.0),
                        (true, t) => json!(count as f64 / t as f64),
                        (false, _) => json!(count),
                    };
                    values.push(json!({"rev": m.rev, "actual": actual, "predicted": predicted, "value": value}));
                }
            }
        }
        let encoding = json!({
            "x": {"field": "predicted", "type": "nominal", "title": plot.y_label.clone().or(plot.y.clone()).unwrap_or("predicted".into())},
            "y": {"field": "actual", "type": "nominal", "title": title_x},
            "color": {"field": "value", "type": "quantitative"},
            "column": {"field": "rev", "type": "nominal", "title": null},
        });
        (values, json!("rect"), encoding)
    } else if !plot.bars.is_empty() {
        let mut values = Vec::new();
        for b in &plot.bars {
            for (category, length) in &b.bars {
                values.push(json!({"rev": b.rev, "category": category, "length": length}));
            }
        }
        let sort = match plot.template {
            PlotTemplate::BarHorizontalSorted => json!("-x"),
            _ => json!(null),
        };
        let encoding = json!({
            "x": {"field": "length", "type": "quantitative", "title": title_x},
            "y": {"field": "category", "type": "nominal", "sort": sort, "title": plot.y_label.clone().or(plot.y.clone())},
            "yOffset": {"field": "rev"},
            "color": {"field": "rev", "type": "nominal", "sort": revs},
        });
        (values, json!("bar"), encoding)
    } else {
        let mut values = Vec::new();
        for (i, s) in plot.series.iter().enumerate() {
            for [x, y] in &s.points {
                values
                    .push(json!({"rev": s.rev, "field": s.y, "series": label(plot, &plot.series[i]), "x": x, "y": y}));
            }
        }
        let fields: Vec<&str> = unique(plot.series.iter().map(|s| s.y.as_str()));
        let mark = match plot.template {
            PlotTemplate::Scatter => json!("point"),
            _ => json!({"type": "line", "point": true}),
        };
        let encoding = json!({
            "x": {"field": "x", "type": "quantitative", "title": title_x},
            "y": {"field": "y", "type": "quantitative", "title": plot.y_label.clone().unwrap_or(fields.join(", "))},
            "color": {"field": "series", "type": "nominal", "title": null},
        });
        (values, mark, encoding)
    };
    Some(json!({
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "title": plot.title,
        "data": {"values": values},
        "mark": mark,
        "encoding": encoding,
    }))
}

/// Where a page template ([`render_in`]) takes the charts, as DVC's.
pub const PLOT_DIVS: &str = "{plot_divs}";

/// The page [`render_html`] writes the charts into.
const PAGE: &str = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>dvt plots</title>\n\
     <style>\nbody { font-family: system-ui, sans-serif; margin: 2em; color: #222; }\n</style>\n</head>\n<body>\n\
     {plot_divs}</body>\n</html>\n";

/// One HTML page with a chart per plot: inline SVG, no scripts, nothing fetched.
pub fn render_html(plots: &[Plot]) -> String {
    PAGE.replacen(PLOT_DIVS, &render_charts(plots), 1)
}

/// The page `template` (an HTML file's text, as DVC's `--html-template`)
/// with the charts where it says [`PLOT_DIVS`]; `None` if it does not.
pub fn render_in(template: &str, plots: &[Plot]) -> Option<String> {
    template
        .contains(PLOT_DIVS)
        .then(|| template.replacen(PLOT_DIVS, &render_charts(plots), 1))
}

/// The charts, each a `<section>`, after the style they need.
fn render_charts(plots: &[Plot]) -> String {
    let mut html = String::from(
        "<style>\n\
         section { margin-bottom: 3em; }\n\
         figure { display: inline-block; margin: 0 1em 1em 0; vertical-align: top; }\n\
         figure img { max-width: 480px; border: 1px solid #ddd; }\n\
         svg text { font-size: 12px; fill: #444; }\n\
         .legend span { display: inline-block; margin-right: 1.5em; }\n\
         </style>\n",
    );
    for plot in plots {
        let _ = write!(html, "<section>\n<h2>{}</h2>\n", escape(&plot.title));
        if let Some(mime) = image_type(&plot.path) {
            use base64::Engine as _;
            for image in &plot.images {
                let data = base64::engine::general_purpose::STANDARD.encode(&image.bytes);
                let _ = writeln!(
                    html,
                    "<figure><img src=\"data:{mime};base64,{data}\" alt=\"{0} at {1}\"><figcaption>{1}</figcaption></figure>",
                    escape(&plot.path),
                    escape(&image.rev)
                );
            }
            html.push_str("</section>\n");
            continue;
        }
        if !plot.matrices.is_empty() {
            let normalized = plot.template == PlotTemplate::ConfusionNormalized;
            for m in &plot.matrices {
                let _ = writeln!(
                    html,
                    "<figure>{}<figcaption>{}</figcaption></figure>",
                    matrix_svg(plot, m, normalized),
                    escape(&m.rev)
                );
            }
            html.push_str("</section>\n");
            continue;
        }
        if !plot.bars.is_empty() {
            html.push_str(&bars_svg(plot));
            html.push_str("<div class=\"legend\">");
            for (i, b) in plot.bars.iter().enumerate() {
                let _ = write!(
                    html,
                    "<span><svg width=\"14\" height=\"10\"><rect width=\"14\" height=\"10\" fill=\"{}\"/></svg> {}</span>",
                    COLORS[i % COLORS.len()],
                    escape(&b.rev)
                );
            }
            html.push_str("</div>\n</section>\n");
            continue;
        }
        html.push_str(&svg(plot));
        html.push_str("<div class=\"legend\">");
        for (i, s) in plot.series.iter().enumerate() {
            let (color, dash) = style(plot, i);
            let _ = write!(
                html,
                "<span><svg width=\"28\" height=\"10\"><line x1=\"0\" x2=\"28\" y1=\"5\" y2=\"5\" \
                 stroke=\"{color}\" stroke-width=\"2\" stroke-dasharray=\"{dash}\"/></svg> {}</span>",
                escape(&label(plot, s))
            );
        }
        html.push_str("</div>\n</section>\n");
    }
    html
}

/// The color and dashes of line `i`: with one field, a color per revision;
/// with several, a color per field and, when there are several revisions,
/// dashes for all but the last.
fn style(plot: &Plot, i: usize) -> (&'static str, &'static str) {
    const DASHES: [&str; 3] = ["6 4", "2 3", "10 3 2 3"];
    let fields: Vec<&str> = unique(plot.series.iter().map(|s| s.y.as_str()));
    let revs: Vec<&str> = unique(plot.series.iter().map(|s| s.rev.as_str()));
    let s = &plot.series[i];
    let rev = revs.iter().position(|r| *r == s.rev).unwrap_or(0);
    if fields.len() == 1 {
        return (COLORS[rev % COLORS.len()], "none");
    }
    let field = fields.iter().position(|f| *f == s.y).unwrap_or(0);
    let dash = match rev + 1 == revs.len() {
        true => "none",
        false => DASHES[rev % DASHES.len()],
    };
    (COLORS[field % COLORS.len()], dash)
}

/// The distinct values, in the order they first come.
fn unique<'a>(values: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut seen = HashSet::new();
    values.filter(|v| seen.insert(*v)).collect()
}

/// How a line is named in the legend: its field, and its revision when there are several.
pub fn label(plot: &Plot, s: &Series) -> String {
    match unique(plot.series.iter().map(|s| s.rev.as_str())).len() {
        1 => s.y.clone(),
        _ => format!("{}: {}", s.rev, s.y),
    }
}

fn svg(plot: &Plot) -> String {
    const W: f64 = 720.0;
    const H: f64 = 360.0;
    const LEFT: f64 = 70.0;
    const RIGHT: f64 = 20.0;
    const TOP: f64 = 15.0;
    const BOTTOM: f64 = 45.0;
    let all = || plot.series.iter().flat_map(|s| s.points.iter());
    let xa = Axis::over(all().map(|p| p[0]), (LEFT, W - RIGHT));
    let ya = Axis::over(all().map(|p| p[1]), (H - BOTTOM, TOP));
    let (px, py) = (|x| xa.at(x), |y| ya.at(y));
    let mut s = String::new();
    let _ = writeln!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" role=\"img\">"
    );
    let _ = writeln!(
        s,
        "<rect x=\"{LEFT}\" y=\"{TOP}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#999\"/>",
        W - LEFT - RIGHT,
        H - TOP - BOTTOM
    );
    xa.draw_across(&mut s, TOP, H - BOTTOM);
    ya.draw_up(&mut s, LEFT, W - RIGHT);
    let _ = writeln!(
        s,
        "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
        LEFT + (W - LEFT - RIGHT) / 2.0,
        H - 8.0,
        escape(plot.x_label.as_deref().unwrap_or(&plot.x))
    );
    if let Some(up) = &plot.y_label {
        label_up(&mut s, TOP + (H - TOP - BOTTOM) / 2.0, up);
    }
    for (i, series) in plot.series.iter().enumerate() {
        let (color, dash) = style(plot, i);
        let points: Vec<String> = series
            .points
            .iter()
            .map(|p| format!("{:.2},{:.2}", px(p[0]), py(p[1])))
            .collect();
        let scatter = plot.template == PlotTemplate::Scatter;
        if !scatter {
            let _ = writeln!(
                s,
                "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" stroke-dasharray=\"{dash}\" points=\"{}\"><title>{}</title></polyline>",
                points.join(" "),
                escape(&label(plot, series))
            );
        }
        // A dot for each point (with few points, or for a scatter plot), its values on hover.
        if scatter || series.points.len() <= 100 {
            for p in &series.points {
                let _ = writeln!(
                    s,
                    "<circle cx=\"{:.2}\" cy=\"{:.2}\" r=\"3\" fill=\"{color}\"><title>{} = {}, {} = {}</title></circle>",
                    px(p[0]),
                    py(p[1]),
                    escape(&plot.x),
                    p[0],
                    escape(&series.y),
                    p[1]
                );
            }
        }
    }
    s.push_str("</svg>\n");
    s
}

/// One confusion matrix: actual classes down the left, predicted across the
/// bottom, each cell shaded by its count (or, normalized, by its share of the
/// row) and labelled with it.
fn matrix_svg(plot: &Plot, m: &Matrix, normalized: bool) -> String {
    const LEFT: f64 = 110.0;
    const TOP: f64 = 10.0;
    const BOTTOM: f64 = 70.0;
    let n = m.classes.len().max(1) as f64;
    let size = (420.0 / n).clamp(6.0, 48.0);
    let (w, h) = (LEFT + size * n + 10.0, TOP + size * n + BOTTOM);
    let value = |a: usize, p: usize| -> f64 {
        let count = m.counts[a][p] as f64;
        match normalized {
            true => {
                let row: u64 = m.counts[a].iter().sum();
                if row == 0 { 0.0 } else { count / row as f64 }
            }
            false => count,
        }
    };
    let max = (0..m.classes.len())
        .flat_map(|a| (0..m.classes.len()).map(move |p| (a, p)))
        .map(|(a, p)| value(a, p))
        .fold(0.0, f64::max);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w:.0}\" height=\"{h:.0}\" viewBox=\"0 0 {w:.0} {h:.0}\" role=\"img\">"
    );
    let text_size = (size * 0.35).clamp(6.0, 12.0);
    for (a, actual) in m.classes.iter().enumerate() {
        let y = TOP + a as f64 * size;
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            LEFT - 6.0,
            y + size / 2.0 + 4.0,
            escape(actual)
        );
        for (p, predicted) in m.classes.iter().enumerate() {
            let x = LEFT + p as f64 * size;
            let v = value(a, p);
            let share = if max > 0.0 { v / max } else { 0.0 };
            let shown = match normalized {
                true => format!("{v:.2}"),
                false => m.counts[a][p].to_string(),
            };
            let ink = if share > 0.5 { "#fff" } else { "#222" };
            let _ = writeln!(
                s,
                "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{size:.1}\" height=\"{size:.1}\" fill=\"#1f77b4\" fill-opacity=\"{:.3}\" stroke=\"#ddd\"><title>{} = {}, {} = {}: {shown}</title></rect>",
                0.05 + 0.95 * share,
                escape(&plot.x),
                escape(actual),
                escape(plot.y.as_deref().unwrap_or("")),
                escape(predicted)
            );
            if size >= 20.0 {
                let _ = writeln!(
                    s,
                    "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" style=\"font-size:{text_size:.0}px;fill:{ink}\">{shown}</text>",
                    x + size / 2.0,
                    y + size / 2.0 + text_size / 3.0
                );
            }
        }
    }
    for (p, predicted) in m.classes.iter().enumerate() {
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            LEFT + p as f64 * size + size / 2.0,
            TOP + size * n + 16.0,
            escape(predicted)
        );
    }
    let _ = writeln!(
        s,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
        LEFT + size * n / 2.0,
        h - 20.0,
        escape(plot.y_label.as_deref().or(plot.y.as_deref()).unwrap_or(""))
    );
    label_up(&mut s, TOP + size * n / 2.0, plot.x_label.as_deref().unwrap_or(&plot.x));
    s.push_str("</svg>\n");
    s
}

/// Horizontal bars: a row per category (in the order they first come, or
/// longest first when sorted), a bar per revision in it.
fn bars_svg(plot: &Plot) -> String {
    const W: f64 = 720.0;
    const LEFT: f64 = 150.0;
    const RIGHT: f64 = 30.0;
    const TOP: f64 = 10.0;
    const BOTTOM: f64 = 45.0;
    const BAR: f64 = 14.0;
    let mut categories: Vec<&str> = unique(plot.bars.iter().flat_map(|b| b.bars.iter().map(|(c, _)| c.as_str())));
    // Each revision's bar by category: a category's first record, if it has several.
    let by_category: Vec<HashMap<&str, f64>> = plot
        .bars
        .iter()
        .map(|b| {
            let mut m = HashMap::new();
            for (c, v) in &b.bars {
                m.entry(c.as_str()).or_insert(*v);
            }
            m
        })
        .collect();
    let length = |i: usize, c: &str| by_category[i].get(c).copied();
    if plot.template == PlotTemplate::BarHorizontalSorted {
        let last = plot.bars.len() - 1;
        categories.sort_by(|a, b| {
            let (a, b) = (length(last, a).unwrap_or(f64::MIN), length(last, b).unwrap_or(f64::MIN));
            b.total_cmp(&a)
        });
    }
    let values = || plot.bars.iter().flat_map(|b| b.bars.iter().map(|(_, v)| *v));
    let axis = Axis::over(values().chain([0.0]), (LEFT, W - RIGHT));
    let px = |x| axis.at(x);
    let group = BAR * plot.bars.len() as f64 + 8.0;
    let h = TOP + group * categories.len() as f64 + BOTTOM;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{h:.0}\" viewBox=\"0 0 {W} {h:.0}\" role=\"img\">"
    );
    axis.draw_across(&mut s, TOP, h - BOTTOM);
    for (k, c) in categories.iter().enumerate() {
        let top = TOP + k as f64 * group;
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            LEFT - 6.0,
            top + group / 2.0,
            escape(c)
        );
        for (i, b) in plot.bars.iter().enumerate() {
            let Some(v) = length(i, c) else { continue };
            let (a, z) = (px(0.0).min(px(v)), px(0.0).max(px(v)));
            let _ = writeln!(
                s,
                "<rect x=\"{a:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{}\" fill=\"{}\"><title>{}: {} = {}, {} = {v}</title></rect>",
                top + BAR * i as f64,
                (z - a).max(0.5),
                BAR - 2.0,
                COLORS[i % COLORS.len()],
                escape(&b.rev),
                escape(plot.y.as_deref().unwrap_or("")),
                escape(c),
                escape(&plot.x)
            );
        }
    }
    let _ = writeln!(
        s,
        "<line x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"{TOP}\" y2=\"{1:.1}\" stroke=\"#999\"/>",
        px(0.0),
        h - BOTTOM
    );
    let _ = writeln!(
        s,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
        LEFT + (W - LEFT - RIGHT) / 2.0,
        h - 8.0,
        escape(plot.x_label.as_deref().unwrap_or(&plot.x))
    );
    if let Some(up) = &plot.y_label {
        label_up(&mut s, TOP + (h - TOP - BOTTOM) / 2.0, up);
    }
    s.push_str("</svg>\n");
    s
}

/// A value axis: round ticks and the range they cover, mapped onto pixels
/// `from..to` (`to` < `from` for an axis drawn upwards).
struct Axis {
    ticks: Vec<f64>,
    lo: f64,
    hi: f64,
    from: f64,
    to: f64,
}

impl Axis {
    fn over(values: impl Iterator<Item = f64>, (from, to): (f64, f64)) -> Axis {
        let (lo, hi) = span(values);
        let ticks = ticks((lo, hi));
        Axis {
            lo: ticks[0].min(lo),
            hi: ticks[ticks.len() - 1].max(hi),
            ticks,
            from,
            to,
        }
    }

    /// Where value `v` is drawn.
    fn at(&self, v: f64) -> f64 {
        self.from + (v - self.lo) / (self.hi - self.lo) * (self.to - self.from)
    }

    /// Each tick's label.
    fn labels(&self) -> impl Iterator<Item = (f64, String)> + '_ {
        let step = if self.ticks.len() > 1 {
            self.ticks[1] - self.ticks[0]
        } else {
            1.0
        };
        self.ticks.iter().map(move |&t| (self.at(t), tick_text(t, step)))
    }

    /// Vertical grid lines from `top` to `bottom`, labelled below.
    fn draw_across(&self, s: &mut String, top: f64, bottom: f64) {
        for (x, text) in self.labels() {
            let _ = writeln!(
                s,
                "<line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{top}\" y2=\"{bottom:.1}\" stroke=\"#eee\"/><text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{text}</text>",
                bottom + 16.0
            );
        }
    }

    /// Horizontal grid lines from `left` to `right`, labelled on the left.
    fn draw_up(&self, s: &mut String, left: f64, right: f64) {
        for (y, text) in self.labels() {
            let _ = writeln!(
                s,
                "<line x1=\"{left}\" x2=\"{right}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#eee\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{text}</text>",
                left - 6.0,
                y + 4.0
            );
        }
    }
}

/// The smallest and largest value, widened when they are equal.
fn span(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    match (lo.is_finite(), lo == hi) {
        (false, _) => (0.0, 1.0),
        (true, true) => (lo - 1.0, hi + 1.0),
        (true, false) => (lo, hi),
    }
}

/// About six round values (1, 2 or 5 times a power of ten apart) covering `lo..=hi`.
fn ticks((lo, hi): (f64, f64)) -> Vec<f64> {
    let raw = (hi - lo) / 6.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let first = (lo / step).floor() as i64;
    let last = (hi / step).ceil() as i64;
    (first..=last).map(|k| k as f64 * step).collect()
}

fn tick_text(v: f64, step: f64) -> String {
    let decimals = (-step.log10().floor()).max(0.0) as usize;
    format!("{v:.decimals$}")
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_become_records_and_lines() {
        let csv = records("loss.csv", "epoch,loss,note\n1,0.9,\"a, b\"\n2,0.5,x\n\n", true).unwrap();
        assert_eq!(csv.fields, ["epoch", "loss", "note"]);
        assert_eq!(csv.rows[0][2].as_deref(), Some("a, b"));
        let axes = PlotAxes {
            x: Some("epoch".into()),
            ..PlotAxes::default()
        };
        assert_eq!(
            lines(&csv, &axes).unwrap(),
            [("loss".to_string(), vec![[1.0, 0.9], [2.0, 0.5]])]
        );
        // No x: `step` if there is one, else the row number.
        let bare = records("loss.csv", "1,0.9\n2,0.5\n", false).unwrap();
        assert_eq!(bare.fields, ["0", "1"]);
        assert_eq!(bare.rows.len(), 2);
        let tsv = records("m.tsv", "step\tacc\n10\t0.5\n20\t0.7\n", true).unwrap();
        assert_eq!(
            lines(&tsv, &PlotAxes::default()).unwrap()[0].1,
            vec![[10.0, 0.5], [20.0, 0.7]]
        );
        let json = records("m.json", r#"{"train": [{"acc": 0.5}, {"acc": 0.6}]}"#, true).unwrap();
        assert_eq!(
            lines(&json, &PlotAxes::default()).unwrap()[0].1,
            vec![[0.0, 0.5], [1.0, 0.6]]
        );
        let yaml = records("m.yaml", "- acc: 0.5\n- acc: 0.75\n", true).unwrap();
        assert_eq!(
            lines(&yaml, &PlotAxes::default()).unwrap()[0].1,
            vec![[0.0, 0.5], [1.0, 0.75]]
        );
        assert!(
            records("a.csv", "a,b\n1\n", true)
                .unwrap_err()
                .contains("line 2 has 1 fields, the header 2")
        );
        assert!(
            records("a.json", "{\"a\": 1}", true)
                .unwrap_err()
                .contains("expected a list of records")
        );
        let y = PlotAxes {
            y: vec!["note".into()],
            ..PlotAxes::default()
        };
        assert!(
            lines(&csv, &y)
                .unwrap_err()
                .contains("record 1 has `note` = `a, b`, not a number")
        );
        let y = PlotAxes {
            y: vec!["nope".into()],
            ..PlotAxes::default()
        };
        assert!(
            lines(&csv, &y)
                .unwrap_err()
                .contains("no field `nope` (fields: epoch, loss, note)")
        );
    }

    #[test]
    fn confusion_classes_sort_as_numbers_when_they_are() {
        let t = records("cm.csv", "actual,predicted\n10,2\n2,2\n1,10\n", true).unwrap();
        let (x, y, classes, counts) = confusion(&t, &PlotAxes::default()).unwrap();
        assert_eq!((x.as_str(), y.as_str()), ("actual", "predicted"));
        assert_eq!(classes, ["1", "2", "10"]);
        assert_eq!(counts, [[0, 0, 1], [0, 1, 0], [0, 1, 0]]);
        let t = records("cm.json", r#"[{"actual": "a"}]"#, true).unwrap();
        let axes = PlotAxes {
            y: vec!["actual".into()],
            x: Some("nope".into()),
            ..PlotAxes::default()
        };
        assert!(confusion(&t, &axes).unwrap_err().contains("no field `nope`"));
    }

    #[test]
    fn ticks_are_round_and_cover_the_values() {
        let text = |t: Vec<f64>| t.iter().map(|v| tick_text(*v, t[1] - t[0])).collect::<Vec<_>>();
        assert_eq!(text(ticks((0.0, 1.0))), ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"]);
        assert_eq!(text(ticks((3.0, 97.0))), ["0", "20", "40", "60", "80", "100"]);
        assert_eq!(text(ticks((-0.03, 0.01))), ["-0.03", "-0.02", "-0.01", "0.00", "0.01"]);
        assert_eq!(span([2.0, 2.0].into_iter()), (1.0, 3.0));
    }
}
