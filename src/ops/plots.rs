//! `dvt plots show|diff`, as DVC's: line charts of plots files (CSV, TSV, JSON
//! or YAML records, such as a training loop writes one row per epoch), from the
//! workspace and from revisions, drawn as one self-contained HTML page of SVG.
//! Image files (PNG, JPEG, GIF, SVG, WebP) are shown as they are, side by side
//! per revision.
//!
//! Which field goes across and which go up comes from the file's entry in
//! `plots` of a stage ([`PlotAxes`]), else: across, `step` if the file has that
//! field, else the row number; up, every field whose values are all numbers.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use serde::Serialize;

use crate::error::{GitError, PipelineError, Result};
use crate::git::{Git, GitId};
use crate::ops::stages::{pipeline_at, read_bytes_at, side};
use crate::pipeline::PlotAxes;
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

/// One chart: a plots file, read at each revision asked for.
#[derive(Debug, Clone, Serialize)]
pub struct Plot {
    /// The file, repo-relative.
    pub path: String,
    /// The title: `title` of its entry, else the path.
    pub title: String,
    /// The field across (`step` when that is the row number).
    pub x: String,
    /// One line per revision and field up.
    pub series: Vec<Series>,
    /// For an image file: the image at each revision.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<PlotImage>,
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
        .collect::<Result<Vec<_>>>()?;
    // How to draw each file: as its entry in a pipeline says, the workspace's first.
    let mut declared: Vec<(String, PlotAxes)> = Vec::new();
    let mut pipelines = vec![crate::pipeline::Pipeline::load(repo)?];
    for (_, at) in &sides {
        if at.is_some() {
            pipelines.push(pipeline_at(repo, at.as_ref()).ok().flatten());
        }
    }
    for p in pipelines.iter().flatten() {
        for (_, out) in p.outs() {
            if let Some(axes) = &out.plot
                && !declared.iter().any(|(path, _)| *path == out.path)
            {
                declared.push((out.path.clone(), axes.clone()));
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
            message: "no plots: name files, or list them in `plots` of a stage".into(),
        }
        .into());
    }
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
        let mut plot = Plot {
            title: axes.title.clone().unwrap_or_else(|| path.clone()),
            x: axes.x.clone().unwrap_or_else(|| STEP.into()),
            path: path.clone(),
            series: Vec::new(),
            images: Vec::new(),
        };
        let mut found = false;
        for (rev, at) in &sides {
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
            let table = records(&path, &String::from_utf8_lossy(&bytes)).map_err(bad)?;
            for (y, points) in lines(&table, &axes).map_err(bad)? {
                plot.series.push(Series {
                    rev: label.clone(),
                    y,
                    points,
                });
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
            return Err(PipelineError::Plot {
                file: path,
                rev: None,
                message: format!("it does not exist {whence}"),
            }
            .into());
        }
        out.push(plot);
    }
    Ok(out)
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

/// Parses CSV or TSV (a header row, then one row per record), JSON or YAML (a
/// list of records, or a table holding one), by extension.
fn records(path: &str, text: &str) -> std::result::Result<Records, String> {
    let lower = path.to_ascii_lowercase();
    if lower.ends_with(".json") {
        let v: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        return from_value(&v);
    }
    if lower.ends_with(".yaml") || lower.ends_with(".yml") {
        let docs = yaml_rust2::YamlLoader::load_from_str(text).map_err(|e| e.to_string())?;
        let v = docs.first().map(yaml_json).unwrap_or(serde_json::Value::Null);
        return from_value(&v);
    }
    let sep = if lower.ends_with(".tsv") { '\t' } else { ',' };
    let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
    let Some((_, header)) = lines.next() else {
        return Err("it is empty".into());
    };
    let fields: Vec<String> = split(header, sep).into_iter().map(|f| f.trim().to_string()).collect();
    let mut rows = Vec::new();
    for (i, line) in lines {
        let cells = split(line, sep);
        if cells.len() != fields.len() {
            return Err(format!(
                "line {} has {} fields, the header {}",
                i + 1,
                cells.len(),
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

/// A field up and its `[x, y]` points.
type Line = (String, Vec<[f64; 2]>);

/// The lines to draw: each field up with its points.
fn lines(t: &Records, axes: &PlotAxes) -> std::result::Result<Vec<Line>, String> {
    if t.rows.is_empty() {
        return Err("it has no rows".into());
    }
    let column = |name: &str| -> std::result::Result<usize, String> {
        t.fields
            .iter()
            .position(|f| f == name)
            .ok_or_else(|| format!("it has no field `{name}` (fields: {})", t.fields.join(", ")))
    };
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
            .filter(|i| Some(*i) != x && t.rows.iter().all(|r| number(r[*i].as_ref()).is_some()))
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
                number(row[col].as_ref()).ok_or_else(|| {
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
                None => i as f64,
            };
            points.push([across, value(y)?]);
        }
        out.push((t.fields[y].clone(), points));
    }
    Ok(out)
}

const COLORS: [&str; 8] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];

/// One HTML page with a chart per plot: inline SVG, no scripts, nothing fetched.
pub fn render_html(plots: &[Plot]) -> String {
    let mut html = String::from(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>dvt plots</title>\n<style>\n\
         body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }\n\
         section { margin-bottom: 3em; }\n\
         figure { display: inline-block; margin: 0 1em 1em 0; vertical-align: top; }\n\
         figure img { max-width: 480px; border: 1px solid #ddd; }\n\
         svg text { font-size: 12px; fill: #444; }\n\
         .legend span { display: inline-block; margin-right: 1.5em; }\n\
         </style>\n</head>\n<body>\n",
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
    html.push_str("</body>\n</html>\n");
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
    let mut out: Vec<&str> = Vec::new();
    for v in values {
        if !out.contains(&v) {
            out.push(v);
        }
    }
    out
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
    let (xs, ys) = (span(all().map(|p| p[0])), span(all().map(|p| p[1])));
    let (xt, yt) = (ticks(xs), ticks(ys));
    let (x0, x1) = (xt[0].min(xs.0), xt[xt.len() - 1].max(xs.1));
    let (y0, y1) = (yt[0].min(ys.0), yt[yt.len() - 1].max(ys.1));
    let px = |x: f64| LEFT + (x - x0) / (x1 - x0) * (W - LEFT - RIGHT);
    let py = |y: f64| H - BOTTOM - (y - y0) / (y1 - y0) * (H - TOP - BOTTOM);
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
    let step = |t: &[f64]| if t.len() > 1 { t[1] - t[0] } else { 1.0 };
    for &t in &xt {
        let _ = writeln!(
            s,
            "<line x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"{TOP}\" y2=\"{1}\" stroke=\"#eee\"/><text x=\"{0:.1}\" y=\"{2}\" text-anchor=\"middle\">{3}</text>",
            px(t),
            H - BOTTOM,
            H - BOTTOM + 16.0,
            tick_text(t, step(&xt))
        );
    }
    for &t in &yt {
        let _ = writeln!(
            s,
            "<line x1=\"{LEFT}\" x2=\"{0}\" y1=\"{1:.1}\" y2=\"{1:.1}\" stroke=\"#eee\"/><text x=\"{2}\" y=\"{3:.1}\" text-anchor=\"end\">{4}</text>",
            W - RIGHT,
            py(t),
            LEFT - 6.0,
            py(t) + 4.0,
            tick_text(t, step(&yt))
        );
    }
    let _ = writeln!(
        s,
        "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
        LEFT + (W - LEFT - RIGHT) / 2.0,
        H - 8.0,
        escape(&plot.x)
    );
    for (i, series) in plot.series.iter().enumerate() {
        let (color, dash) = style(plot, i);
        let points: Vec<String> = series
            .points
            .iter()
            .map(|p| format!("{:.2},{:.2}", px(p[0]), py(p[1])))
            .collect();
        let _ = writeln!(
            s,
            "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" stroke-dasharray=\"{dash}\" points=\"{}\"><title>{}</title></polyline>",
            points.join(" "),
            escape(&label(plot, series))
        );
        // Few points: a dot for each, with its values on hover.
        if series.points.len() <= 100 {
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
        let csv = records("loss.csv", "epoch,loss,note\n1,0.9,\"a, b\"\n2,0.5,x\n\n").unwrap();
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
        let tsv = records("m.tsv", "step\tacc\n10\t0.5\n20\t0.7\n").unwrap();
        assert_eq!(
            lines(&tsv, &PlotAxes::default()).unwrap()[0].1,
            vec![[10.0, 0.5], [20.0, 0.7]]
        );
        let json = records("m.json", r#"{"train": [{"acc": 0.5}, {"acc": 0.6}]}"#).unwrap();
        assert_eq!(
            lines(&json, &PlotAxes::default()).unwrap()[0].1,
            vec![[0.0, 0.5], [1.0, 0.6]]
        );
        let yaml = records("m.yaml", "- acc: 0.5\n- acc: 0.75\n").unwrap();
        assert_eq!(
            lines(&yaml, &PlotAxes::default()).unwrap()[0].1,
            vec![[0.0, 0.5], [1.0, 0.75]]
        );
        assert!(
            records("a.csv", "a,b\n1\n")
                .unwrap_err()
                .contains("line 2 has 1 fields, the header 2")
        );
        assert!(
            records("a.json", "{\"a\": 1}")
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
    fn ticks_are_round_and_cover_the_values() {
        let text = |t: Vec<f64>| t.iter().map(|v| tick_text(*v, t[1] - t[0])).collect::<Vec<_>>();
        assert_eq!(text(ticks((0.0, 1.0))), ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"]);
        assert_eq!(text(ticks((3.0, 97.0))), ["0", "20", "40", "60", "80", "100"]);
        assert_eq!(text(ticks((-0.03, 0.01))), ["-0.03", "-0.02", "-0.01", "0.00", "0.01"]);
        assert_eq!(span([2.0, 2.0].into_iter()), (1.0, 3.0));
    }
}
