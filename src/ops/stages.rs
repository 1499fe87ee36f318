//! `dvt stage add`, `dvt freeze`/`unfreeze`, `dvt dag`, `dvt params diff`, `dvt metrics show|diff`.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::error::{PipelineError, Result};
use crate::git::Git;
use crate::pipeline::params::parse as parse_params;
use crate::pipeline::{DEFAULT_PARAMS, PIPELINE_FILE, Pipeline};
use crate::repo::Repo;
use crate::workspace::Targets;

/// A stage to add to `dvt.toml`, as on DVC's command line.
#[derive(Debug, Clone, Default)]
pub struct StageAddOptions {
    /// Its name.
    pub name: String,
    /// The command.
    pub cmd: String,
    /// `-d` deps.
    pub deps: Vec<String>,
    /// `-o` outs (cached).
    pub outs: Vec<String>,
    /// `-O` outs not cached.
    pub outs_no_cache: Vec<String>,
    /// `--outs-persist` outs, cached and kept before the stage runs.
    pub outs_persist: Vec<String>,
    /// `--outs-persist-no-cache` outs, not cached, kept before the stage runs.
    pub outs_persist_no_cache: Vec<String>,
    /// `-p [FILE:]KEY[,KEY]` params.
    pub params: Vec<String>,
    /// `-m` metrics files (not cached).
    pub metrics: Vec<String>,
    /// `--plots` plots files (not cached).
    pub plots: Vec<String>,
    /// `-w` working directory.
    pub wdir: Option<String>,
    /// `--desc`: what the stage is for.
    pub desc: Option<String>,
    /// `--always-changed`: run it on every `dvt repro`.
    pub always_changed: bool,
    /// Replace a stage of that name.
    pub force: bool,
}

/// Adds (or with `force`, replaces) a stage in `dvt.toml`, keeping the rest of the
/// file as it is. The result is validated before it is written.
pub fn stage_add(repo: &Repo, opts: &StageAddOptions) -> Result<()> {
    edit_pipeline_checked(repo, |stages| add_to(stages, opts), &|p| {
        crate::pipeline::check_outs_untracked(repo, p)?;
        // As DVC's: a command cannot run in a directory that is not there.
        if let Some(stage) = p.stages.get(&opts.name)
            && !repo.root().join(&stage.wdir).is_dir()
        {
            return Err(PipelineError::Invalid {
                file: PIPELINE_FILE.into(),
                stage: Some(opts.name.clone()),
                message: format!("its `wdir` `{}` is not a directory in the workspace", stage.wdir),
            }
            .into());
        }
        // A cached out that git tracks would go on into git's history (as DVC
        // refuses it); an uncached one (`-O`, metrics) is git's to keep.
        let cached = p
            .stages
            .get(&opts.name)
            .into_iter()
            .flat_map(|s| s.outs.iter().filter(|o| o.cache).map(|o| o.path.as_str()));
        crate::ops::add::refuse_git_tracked(repo, cached)
    })
}

/// Applies `edit` to the `[stages]` table of `dvt.toml` (made if missing),
/// keeping comments and layout, and writes the result if it is a valid pipeline.
fn edit_pipeline<T>(repo: &Repo, edit: impl FnOnce(&mut toml_edit::Table) -> Result<T>) -> Result<T> {
    edit_pipeline_checked(repo, edit, &|_| Ok(()))
}

/// [`edit_pipeline`], where `check` sees the pipeline so made before it is written.
fn edit_pipeline_checked<T>(
    repo: &Repo,
    edit: impl FnOnce(&mut toml_edit::Table) -> Result<T>,
    check: &dyn Fn(&Pipeline) -> Result<()>,
) -> Result<T> {
    edit_document(
        repo,
        |doc| {
            if !doc.contains_key("stages") {
                let mut t = toml_edit::Table::new();
                t.set_implicit(true);
                doc.insert("stages", toml_edit::Item::Table(t));
            }
            let stages = doc["stages"].as_table_mut().ok_or_else(|| PipelineError::Invalid {
                file: PIPELINE_FILE.into(),
                stage: None,
                message: "`stages` must be a table".into(),
            })?;
            edit(stages)
        },
        check,
    )
}

/// Applies `edit` to the whole of `dvt.toml`, keeping comments and layout,
/// and writes the result if it is a valid pipeline that `check` accepts.
fn edit_document<T>(
    repo: &Repo,
    edit: impl FnOnce(&mut toml_edit::DocumentMut) -> Result<T>,
    check: &dyn Fn(&Pipeline) -> Result<()>,
) -> Result<T> {
    let _turn = repo.take_turn("pipeline", "editing dvt.toml")?;
    let path = repo.root().join(PIPELINE_FILE);
    let text = match fs_err::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e.into()),
    };
    let mut doc: toml_edit::DocumentMut = text.parse().map_err(|e: toml_edit::TomlError| PipelineError::Invalid {
        file: PIPELINE_FILE.into(),
        stage: None,
        message: crate::error::toml_message(&text, e.span(), e.message()),
    })?;
    let result = edit(&mut doc)?;
    let new_text = doc.to_string();
    if new_text != text {
        check(&Pipeline::parse_with(&new_text, &|f| {
            crate::pipeline::read_file(repo, f)
        })?)?;
        crate::fsutil::atomic_write(&path, new_text.as_bytes())?;
        crate::autostage::note(&path);
    }
    Ok(result)
}

/// `dvt plots modify` (as `dvc plots modify` edits `dvc.yaml`): sets what
/// `props` gives (what is `None` or empty is left as it is; `files` is not
/// taken) and removes the properties `unset` names
/// ([`crate::pipeline::PLOT_PROPERTIES`]: their defaults apply again) on every
/// `plots` entry of `dvt.toml` for `target` (a root-relative path, or the name
/// of a top-level plot of several files), in stages and at the top level,
/// keeping the rest of the file as it is; a path entry becomes a table. The
/// result is checked as any edit is. Returns where each entry is: a stage's
/// name, or `None` for the top-level `plots`.
pub fn plots_modify(
    repo: &Repo,
    target: &str,
    props: &crate::pipeline::PlotAxes,
    unset: &[String],
) -> Result<Vec<Option<String>>> {
    use crate::pipeline::PLOT_PROPERTIES;
    if let Some(bad) = unset.iter().find(|p| !PLOT_PROPERTIES.contains(&p.as_str())) {
        return Err(PipelineError::Plot {
            file: target.into(),
            rev: None,
            message: format!(
                "`--unset {bad}`: no such property (known: {})",
                PLOT_PROPERTIES.join(", ")
            ),
        }
        .into());
    }
    edit_document(
        repo,
        |doc| {
            let mut found = Vec::new();
            if let Some(stages) = doc.get_mut("stages").and_then(|s| s.as_table_like_mut()) {
                for (name, stage) in stages.iter_mut() {
                    let plots = stage.as_table_like_mut().and_then(|t| t.get_mut("plots"));
                    if let Some(list) = plots.and_then(|p| p.as_array_mut())
                        && set_plot_props(list, target, props, unset)
                    {
                        found.push(Some(name.get().to_string()));
                    }
                }
            }
            if let Some(list) = doc.get_mut("plots").and_then(|p| p.as_array_mut())
                && set_plot_props(list, target, props, unset)
            {
                found.push(None);
            }
            if found.is_empty() {
                return Err(PipelineError::Plot {
                    file: target.into(),
                    rev: None,
                    message: "it is in no `plots` of dvt.toml: list it in a stage's `plots` (or the \
                              top-level `plots`) first"
                        .into(),
                }
                .into());
            }
            Ok(found)
        },
        &|_| Ok(()),
    )
}

/// Sets `props` on the entries of `list` for `target`, removing `unset`;
/// whether there was one.
fn set_plot_props(
    list: &mut toml_edit::Array,
    target: &str,
    props: &crate::pipeline::PlotAxes,
    unset: &[String],
) -> bool {
    let mut any = false;
    for entry in list.iter_mut() {
        let named = match &*entry {
            toml_edit::Value::String(p) => p.value() == target,
            toml_edit::Value::InlineTable(t) => ["path", "name"]
                .iter()
                .any(|k| t.get(k).and_then(|v| v.as_str()) == Some(target)),
            _ => false,
        };
        if !named {
            continue;
        }
        any = true;
        if let toml_edit::Value::String(p) = &*entry {
            let mut t = toml_edit::InlineTable::new();
            t.insert("path", p.value().as_str().into());
            *entry = toml_edit::Value::InlineTable(t);
        }
        let Some(t) = entry.as_inline_table_mut() else {
            continue;
        };
        for name in unset {
            t.remove(name);
        }
        let template = props.template.map(|t| t.name().to_string());
        let text = [
            ("template", &template),
            ("x", &props.x),
            ("title", &props.title),
            ("x_label", &props.x_label),
            ("y_label", &props.y_label),
        ];
        for (key, value) in text {
            if let Some(v) = value {
                t.insert(key, v.as_str().into());
            }
        }
        match props.y.as_slice() {
            [] => {}
            [one] => {
                t.insert("y", one.as_str().into());
            }
            many => {
                t.insert("y", toml_edit::Value::Array(many.iter().map(String::as_str).collect()));
            }
        }
        if props.no_header {
            t.insert("header", false.into());
        }
        t.fmt();
    }
    any
}

/// Deletes the stages `names` from `dvt.toml`, keeping the rest of the file as
/// it is. A stage made by `foreach` goes only with all its cases (by the
/// group's name).
pub(crate) fn remove_stages(repo: &Repo, names: &[String]) -> Result<()> {
    let pipeline = Pipeline::load_required(repo)?;
    let mut keys: Vec<String> = Vec::new();
    for name in names {
        let key = name.split_once('@').map_or(name.as_str(), |(group, _)| group);
        let cases = pipeline.stage_named(key)?;
        if cases.iter().any(|c| !names.contains(&c.name)) {
            return Err(PipelineError::Invalid {
                file: PIPELINE_FILE.into(),
                stage: Some(key.to_string()),
                message: format!("`{name}` is one case of its `foreach`: remove `{key}`, or edit its `foreach` list"),
            }
            .into());
        }
        if !keys.iter().any(|k| k == key) {
            keys.push(key.to_string());
        }
    }
    edit_pipeline(repo, |stages| {
        for k in &keys {
            let position = |t: &toml_edit::Table| t.position().unwrap_or(isize::MAX);
            let first = stages.iter().filter_map(|(_, v)| v.as_table()).map(position).min();
            let Some(gone) = stages.remove(k) else {
                continue;
            };
            // Above the file's first stage, the comments before a blank line are
            // the file's (those right above the stage were its own): they move to
            // the stage that is now first.
            let Some(gone) = gone.as_table().filter(|t| Some(position(t)) == first) else {
                continue;
            };
            let lead = gone.decor().prefix().and_then(|p| p.as_str()).unwrap_or("");
            let lead = lead.rfind("\n\n").map_or("", |i| &lead[..i + 2]).to_string();
            let next = stages
                .iter_mut()
                .filter_map(|(_, v)| v.as_table_mut())
                .min_by_key(|t| position(t));
            if let Some(next) = next {
                let own = next.decor().prefix().and_then(|p| p.as_str()).unwrap_or("").to_string();
                next.decor_mut().set_prefix(lead + own.trim_start_matches('\n'));
            }
        }
        Ok(())
    })
}

/// Sets (`dvt freeze`) or clears (`dvt unfreeze`) `frozen` on the stages
/// `targets` name (`NAME` or `dvt.toml:NAME`), as `dvc freeze`/`unfreeze` do;
/// returns each stage named and whether its setting changed.
pub fn set_frozen(repo: &Repo, targets: &[String], frozen: bool) -> Result<Vec<(String, bool)>> {
    let names = Pipeline::load_required(repo)?.stage_names(targets)?;
    if let Some((group, _)) = names.iter().find_map(|n| n.split_once('@')) {
        return Err(PipelineError::Invalid {
            file: PIPELINE_FILE.into(),
            stage: Some(group.to_string()),
            message: "its cases come from `foreach`: put `frozen = true` in its `do` table to freeze them all".into(),
        }
        .into());
    }
    edit_pipeline(repo, |stages| {
        let mut changed = Vec::new();
        for name in names {
            let Some(stage) = stages.get_mut(&name).and_then(|s| s.as_table_like_mut()) else {
                continue;
            };
            let was = stage.get("frozen").and_then(|v| v.as_bool()).unwrap_or(false);
            if was != frozen {
                match frozen {
                    true => stage.insert("frozen", toml_edit::value(true)),
                    false => stage.remove("frozen"),
                };
            }
            changed.push((name, was != frozen));
        }
        Ok(changed)
    })
}

/// `[FILE:]KEY[,KEY]` as one `[FILE:]KEY` per key.
fn split_param_spec(spec: &str) -> Vec<String> {
    let (file, keys) = match spec.rsplit_once(':') {
        Some((f, k)) => (format!("{f}:"), k),
        None => (String::new(), spec),
    };
    match keys.contains(',') {
        true => keys.split(',').map(|k| format!("{file}{}", k.trim())).collect(),
        false => vec![spec.to_string()],
    }
}

fn add_to(stages: &mut toml_edit::Table, opts: &StageAddOptions) -> Result<()> {
    if stages.contains_key(&opts.name) && !opts.force {
        return Err(PipelineError::StageExists {
            name: opts.name.clone(),
        }
        .into());
    }
    let mut t = toml_edit::Table::new();
    if let Some(d) = &opts.desc {
        t.insert("desc", toml_edit::value(d.as_str()));
    }
    t.insert("cmd", toml_edit::value(opts.cmd.as_str()));
    if let Some(w) = &opts.wdir {
        t.insert("wdir", toml_edit::value(w.as_str()));
    }
    let arr = |xs: &[String]| {
        let mut a = toml_edit::Array::new();
        for x in xs {
            a.push(x.as_str());
        }
        toml_edit::value(a)
    };
    if !opts.deps.is_empty() {
        t.insert("deps", arr(&opts.deps));
    }
    if !opts.params.is_empty() {
        // `-p a,b` and `-p f.yaml:a,b` are written one key per entry, as DVC
        // writes them in dvc.yaml.
        let mut params: Vec<String> = Vec::new();
        for p in opts.params.iter().flat_map(|spec| split_param_spec(spec)) {
            if !params.contains(&p) {
                params.push(p);
            }
        }
        t.insert("params", arr(&params));
    }
    let mut outs = toml_edit::Array::new();
    for o in &opts.outs {
        outs.push(o.as_str());
    }
    let kinds = [
        (&opts.outs_no_cache, false, false),
        (&opts.outs_persist, true, true),
        (&opts.outs_persist_no_cache, false, true),
    ];
    for (paths, cache, persist) in kinds {
        for o in paths {
            let mut it = toml_edit::InlineTable::new();
            it.insert("path", o.as_str().into());
            if !cache {
                it.insert("cache", false.into());
            }
            if persist {
                it.insert("persist", true.into());
            }
            outs.push(it);
        }
    }
    if !outs.is_empty() {
        t.insert("outs", toml_edit::value(outs));
    }
    if !opts.metrics.is_empty() {
        t.insert("metrics", arr(&opts.metrics));
    }
    if !opts.plots.is_empty() {
        t.insert("plots", arr(&opts.plots));
    }
    if opts.always_changed {
        t.insert("always_changed", toml_edit::value(true));
    }
    stages.insert(&opts.name, toml_edit::Item::Table(t));
    Ok(())
}

/// The stages `dvt stage list` shows, in run order: those `targets` name
/// (`NAME`, `dvt.toml:NAME`, `dvt.toml` for all of them, or a pointer or its
/// data path, relative to `cwd`), or with no targets every stage of
/// `dvt.toml`. With `all` (DVC's `--all`), every pointer as well, as a stage
/// with no command whose out is its data, named by its pointer file (DVC lists
/// `.dvc` files so). Without `all` or targets, `dvt.toml` must exist.
pub fn list(repo: &Repo, cwd: &std::path::Path, targets: &[String], all: bool) -> Result<Vec<crate::pipeline::Stage>> {
    let pipeline = match targets.is_empty() && !all {
        true => Some(Pipeline::load_required(repo)?),
        false => Pipeline::load(repo)?,
    };
    let mut stages = Vec::new();
    let mut pointers = Vec::new();
    if targets.is_empty() {
        stages.extend(
            pipeline
                .iter()
                .flat_map(|p| p.order.iter().map(|n| p.stages[n].clone())),
        );
        if all {
            pointers = crate::workspace::find_pointers(repo)?;
        }
    }
    for t in targets {
        if let Some(p) = &pipeline {
            let named = match t.as_str() {
                PIPELINE_FILE => p.order.iter().map(|n| &p.stages[n]).collect(),
                _ => p.stage_named(t)?,
            };
            if !named.is_empty() {
                for s in named {
                    if !stages.iter().any(|k: &crate::pipeline::Stage| k.name == s.name) {
                        stages.push(s.clone());
                    }
                }
                continue;
            }
            // Neither a stage nor a path: say which stages there are.
            let pointer = cwd.join(format!("{t}.{}", crate::pointer::POINTER_EXT));
            if !cwd.join(t).exists() && !pointer.exists() {
                p.stage_names(std::slice::from_ref(t))?;
            }
        }
        for f in crate::workspace::resolve_targets(repo, cwd, Targets::Named(&[t.into()]))? {
            if !pointers.contains(&f) {
                pointers.push(f);
            }
        }
    }
    for f in pointers {
        let tracked = crate::workspace::Tracked::load(repo, &f)?;
        stages.push(crate::pipeline::Stage {
            name: tracked.pointer_rel,
            cmd: String::new(),
            wdir: String::new(),
            deps: Vec::new(),
            params: Vec::new(),
            outs: vec![crate::pipeline::Out::at(tracked.data_rel)],
            desc: None,
            frozen: false,
            always_changed: false,
        });
    }
    Ok(stages)
}

/// What `dag` draws, and how.
#[derive(Debug, Clone, Default)]
pub struct DagOptions {
    /// Stages to draw with the stages upstream of them (as `dvc dag TARGET`):
    /// `NAME`, `dvt.toml:NAME` or a `foreach` stage's name; empty: every stage.
    pub targets: Vec<String>,
    /// With targets: draw the whole pipeline each target is in, downstream
    /// stages too (DVC's `--full`).
    pub full: bool,
    /// Draw outs instead of stages (DVC's `--outs`): an edge `a -> b` when the
    /// stage writing `b` depends on `a`.
    pub outs: bool,
    /// How to draw.
    pub format: DagFormat,
    /// Draw the cases of a `foreach` or `matrix` stage (`NAME@KEY`) as one node,
    /// `NAME` (DVC's `--collapse-foreach-matrix`).
    pub collapse: bool,
}

/// The DAG drawn as Mermaid, Graphviz dot, or plain `a -> b` lines; edges in
/// run order (by the node they leave, then the one they reach).
pub fn dag(pipeline: &Pipeline, opts: &DagOptions) -> Result<String> {
    let named = pipeline.stage_names(&opts.targets)?;
    let stages: Vec<&String> = if named.is_empty() {
        pipeline.order.iter().collect()
    } else if opts.full {
        let keep = pipeline.connected(&named);
        pipeline.order.iter().filter(|s| keep.contains(*s)).collect()
    } else {
        // Upstream at any distance; unlike `repro`, frozen stages cut nothing
        // off: the drawing is of what depends on what.
        let mut keep: BTreeSet<&String> = named.iter().collect();
        let mut todo: Vec<&String> = named.iter().collect();
        while let Some(s) = todo.pop() {
            for u in pipeline.upstream.get(s).into_iter().flatten() {
                if keep.insert(u) {
                    todo.push(u);
                }
            }
        }
        pipeline.order.iter().filter(|s| keep.contains(*s)).collect()
    };
    let (nodes, edges): (Vec<String>, Vec<(usize, usize)>) = if opts.outs {
        let mut nodes = Vec::new();
        let mut of_stage: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for s in &stages {
            for o in &pipeline.stages[*s].outs {
                of_stage.entry(s.as_str()).or_default().push(nodes.len());
                nodes.push(o.path.clone());
            }
        }
        let mut edges = Vec::new();
        for s in &stages {
            let stage = &pipeline.stages[*s];
            for u in pipeline.upstream.get(*s).into_iter().flatten() {
                for &a in of_stage.get(u.as_str()).into_iter().flatten() {
                    if !stage.deps.iter().any(|d| crate::pipeline::overlaps(d, &nodes[a])) {
                        continue;
                    }
                    edges.extend(of_stage.get(s.as_str()).into_iter().flatten().map(|&b| (a, b)));
                }
            }
        }
        (nodes, edges)
    } else {
        let at = |n: &str| stages.iter().position(|s| *s == n);
        let mut edges = Vec::new();
        for (b, s) in stages.iter().enumerate() {
            for u in pipeline.upstream.get(*s).into_iter().flatten() {
                edges.extend(at(u).map(|a| (a, b)));
            }
        }
        (stages.iter().map(|s| s.to_string()).collect(), edges)
    };
    let (nodes, mut edges) = match opts.collapse && !opts.outs {
        true => collapse_cases(nodes, edges),
        false => (nodes, edges),
    };
    edges.sort_unstable();
    edges.dedup();
    // Mermaid ids: a stage's name made safe; an out, which may hold any
    // character, by its place.
    let id = |i: usize| match opts.outs {
        true => format!("o_{i}"),
        false => format!(
            "s_{}",
            nodes[i].replace(|c: char| !c.is_ascii_alphanumeric() && c != '_', "_")
        ),
    };
    let quote = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
    let mut out = String::new();
    match opts.format {
        DagFormat::Mermaid => {
            out.push_str("flowchart TD\n");
            for (i, n) in nodes.iter().enumerate() {
                out.push_str(&format!("    {}[\"{}\"]\n", id(i), n.replace('"', "#quot;")));
            }
            for (a, b) in &edges {
                out.push_str(&format!("    {} --> {}\n", id(*a), id(*b)));
            }
        }
        DagFormat::Dot => {
            out.push_str("digraph pipeline {\n");
            for n in &nodes {
                out.push_str(&format!("    \"{}\";\n", quote(n)));
            }
            for (a, b) in &edges {
                out.push_str(&format!(
                    "    \"{}\" -> \"{}\";\n",
                    quote(&nodes[*a]),
                    quote(&nodes[*b])
                ));
            }
            out.push_str("}\n");
        }
        DagFormat::Text => {
            for (a, b) in &edges {
                out.push_str(&format!("{} -> {}\n", nodes[*a], nodes[*b]));
            }
            for (i, n) in nodes.iter().enumerate() {
                if !edges.iter().any(|(a, b)| *a == i || *b == i) {
                    out.push_str(&format!("{n}\n"));
                }
            }
        }
    }
    Ok(out)
}

/// `nodes` (stage names) with each `foreach`/`matrix` stage's cases
/// (`NAME@KEY`) made one node, `NAME`, where the first of them was; `edges`
/// between them, none from a node to itself.
fn collapse_cases(nodes: Vec<String>, edges: Vec<(usize, usize)>) -> (Vec<String>, Vec<(usize, usize)>) {
    let mut groups: Vec<String> = Vec::new();
    let mut to_group = Vec::with_capacity(nodes.len());
    for n in &nodes {
        let group = n.split_once('@').map_or(n.as_str(), |(g, _)| g);
        let i = match groups.iter().position(|g| g == group) {
            Some(i) => i,
            None => {
                groups.push(group.to_string());
                groups.len() - 1
            }
        };
        to_group.push(i);
    }
    let edges = edges
        .into_iter()
        .map(|(a, b)| (to_group[a], to_group[b]))
        .filter(|(a, b)| a != b)
        .collect();
    (groups, edges)
}

/// How `dag` draws.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DagFormat {
    /// `a -> b` lines.
    #[default]
    Text,
    /// A Mermaid flowchart.
    Mermaid,
    /// Graphviz dot.
    Dot,
}

/// One changed value between two revisions.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ValueChange {
    /// The file.
    pub file: String,
    /// The dotted key.
    pub key: String,
    /// The value before (`None`: absent).
    pub old: Option<toml::Value>,
    /// The value after (`None`: absent).
    pub new: Option<toml::Value>,
    /// Metrics only: `new − old` when both are numbers (DVC's `diff`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<toml::Value>,
}

/// `new − old` when both are numbers. Integers stay integers; a difference of floats is
/// rounded to the decimals the two values are written with, so 0.7 − 0.55 is 0.15 as a
/// reader subtracting them gets, not 0.1499999….
fn difference(old: Option<&toml::Value>, new: Option<&toml::Value>) -> Option<toml::Value> {
    use toml::Value::{Float, Integer};
    let float = |v: &toml::Value| match v {
        Integer(i) => Some(*i as f64),
        Float(x) => Some(*x),
        _ => None,
    };
    let (old, new) = (old?, new?);
    if let (Integer(o), Integer(n)) = (old, new) {
        return n.checked_sub(*o).map(Integer);
    }
    let (o, n) = (float(old)?, float(new)?);
    // Rust writes a float as the shortest decimal that reads back as it.
    let decimals = |x: f64| x.to_string().split_once('.').map_or(0, |(_, d)| d.len()).min(17);
    let places = decimals(o).max(decimals(n));
    let d = n - o;
    Some(Float(format!("{d:.places$}").parse().unwrap_or(d)))
}

/// Reads repo-relative `rel` at `rev` (`None`: the workspace).
pub(crate) fn read_at(repo: &Repo, git: Option<&(Git, crate::git::GitId)>, rel: &str) -> Result<Option<String>> {
    Ok(read_bytes_at(repo, git, rel)?.map(|b| String::from_utf8_lossy(&b).into_owned()))
}

/// The bytes of repo-relative `rel` at one side: from git at a revision, else
/// from the workspace; `None` if it is not there.
pub(crate) fn read_bytes_at(repo: &Repo, git: Option<&(Git, crate::git::GitId)>, rel: &str) -> Result<Option<Vec<u8>>> {
    match git {
        Some((g, c)) => g.read_file(*c, rel),
        None => match fs_err::read(repo.root().join(rel)) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::IsADirectory => {
                Err(PipelineError::NotAFile { file: rel.to_string() }.into())
            }
            Err(e) => Err(e.into()),
        },
    }
}

pub(crate) fn side(repo: &Repo, rev: Option<&str>) -> Result<Option<(Git, crate::git::GitId)>> {
    match rev {
        None => Ok(None),
        Some(r) => {
            let g = Git::open(repo.root())?;
            let c = g.resolve(r)?;
            Ok(Some((g, c)))
        }
    }
}

/// The revision a comparison starts from: `a` if named, else HEAD, or `None`
/// (nothing) before the first commit, as `git diff` and `dvc diff` compare.
pub fn base_rev<'a>(repo: &Repo, a: Option<&'a str>) -> Result<Option<&'a str>> {
    Ok(match a {
        Some(a) => Some(a),
        None => Git::open(repo.root())?.head()?.map(|_| "HEAD"),
    })
}

/// `file` of one side, flattened to dotted keys; `None` if it is not there.
pub(crate) fn flat_file(
    repo: &Repo,
    at: Option<&(Git, crate::git::GitId)>,
    file: &str,
) -> Result<Option<BTreeMap<String, toml::Value>>> {
    let Some(text) = read_at(repo, at, file)? else {
        return Ok(None);
    };
    flat_text(file, &text).map(Some)
}

/// The values of params or metrics file `file` whose text is `text`, by dotted key.
pub(crate) fn flat_text(file: &str, text: &str) -> Result<BTreeMap<String, toml::Value>> {
    let mut out = BTreeMap::new();
    flatten("", &toml::Value::Table(parse_params(file, text)?), &mut out);
    Ok(out)
}

/// Dotted keys back into nested tables, as the file held them (`train.lr`
/// becomes `{train: {lr: …}}`).
pub fn unflatten(values: &BTreeMap<String, toml::Value>) -> toml::Value {
    let mut root = toml::Table::new();
    for (key, value) in values {
        let mut table = &mut root;
        let mut parts = key.split('.').peekable();
        while let Some(part) = parts.next() {
            if parts.peek().is_none() {
                table.insert(part.to_string(), value.clone());
                break;
            }
            // A key that holds a value and also a dotted key below it (keys
            // with dots of their own): the rest stays one key.
            if table.get(part).is_some_and(|v| !v.is_table()) {
                let rest: Vec<&str> = parts.collect();
                table.insert(format!("{part}.{}", rest.join(".")), value.clone());
                break;
            }
            let entry = table
                .entry(part.to_string())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            let toml::Value::Table(t) = entry else { break };
            table = t;
        }
    }
    toml::Value::Table(root)
}

fn flatten(prefix: &str, v: &toml::Value, out: &mut BTreeMap<String, toml::Value>) {
    match v {
        toml::Value::Table(t) => {
            for (k, x) in t {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, x, out);
            }
        }
        other => {
            out.insert(prefix.to_string(), other.clone());
        }
    }
}

/// The pipeline at one side.
pub(crate) fn pipeline_at(repo: &Repo, at: Option<&(Git, crate::git::GitId)>) -> Result<Option<Pipeline>> {
    match read_at(repo, at, PIPELINE_FILE)? {
        Some(t) => Ok(Some(Pipeline::parse_with(&t, &|f| read_at(repo, at, f))?)),
        None => Ok(None),
    }
}

/// Values by file, then by dotted key.
pub type FileValues = BTreeMap<String, BTreeMap<String, toml::Value>>;

/// Which revisions `metrics show` reads besides the workspace, as `dvc
/// metrics show -a/-T/-A`.
#[derive(Debug, Clone, Copy, Default)]
pub struct AcrossRevisions {
    /// Every branch's head.
    pub branches: bool,
    /// Every tag.
    pub tags: bool,
    /// Every commit reachable from HEAD, the branches and the tags.
    pub commits: bool,
}

impl AcrossRevisions {
    /// Whether any revision is asked for.
    pub fn any(&self) -> bool {
        self.branches || self.tags || self.commits
    }
}

/// The metrics of `metrics show` (see [`metrics_show`]) in the workspace and
/// at the revisions `across` selects, each labelled (`workspace`, a branch or
/// tag name, a short commit id), newest commit first after the workspace. A
/// revision without a file that is asked for, or a pipeline, has none of its values.
pub fn metrics_show_across(
    repo: &Repo,
    targets: &[String],
    across: AcrossRevisions,
) -> Result<Vec<(String, FileValues)>> {
    let mut out = vec![("workspace".to_string(), metrics_show(repo, targets)?)];
    let git = Git::open(repo.root())?;
    let mut revs: Vec<(String, crate::git::GitId)> = Vec::new();
    if across.branches {
        revs.extend(git.branches()?);
    }
    if across.tags {
        revs.extend(git.tags()?);
    }
    if across.commits {
        let mut tips: Vec<crate::git::GitId> = git.head()?.into_iter().collect();
        tips.extend(git.branches()?.into_iter().map(|(_, c)| c));
        tips.extend(git.tags()?.into_iter().map(|(_, c)| c));
        let mut walked = git.walk(&tips)?;
        walked.sort_by_key(|c| std::cmp::Reverse(c.time));
        revs.extend(
            walked
                .into_iter()
                .map(|c| (crate::snapshot::short(&c.id).to_string(), c.id)),
        );
    }
    let mut seen = BTreeSet::new();
    for (label, commit) in revs {
        if !seen.insert(label.clone()) {
            continue;
        }
        let at = (git.clone(), commit);
        let files = match targets.is_empty() {
            true => pipeline_at(repo, Some(&at))?
                .map(|p| metric_files(&p))
                .unwrap_or_default(),
            false => targets.to_vec(),
        };
        let mut values = BTreeMap::new();
        for f in files {
            if let Some(v) = flat_file(repo, Some(&at), &f)? {
                values.insert(f, v);
            }
        }
        out.push((label, values));
    }
    Ok(out)
}

/// Which metrics or params files `metrics show`, `metrics diff` and `params
/// diff` read, and what they report.
#[derive(Debug, Clone, Default)]
pub struct ValuesOptions {
    /// Files, repo-relative (any file, in the pipeline or not); empty means the
    /// files the pipeline names.
    pub targets: Vec<String>,
    /// With `diff`: report values that did not change too (`old` equal to `new`).
    pub all: bool,
    /// Params: only those some stage of the workspace's pipeline lists (DVC's
    /// `params diff --deps`).
    pub deps_only: bool,
}

fn diff_files(
    repo: &Repo,
    (a, b): (Option<&str>, Option<&str>),
    opts: &ValuesOptions,
    files: &dyn Fn(&Pipeline) -> Vec<String>,
    default: &[&str],
) -> Result<Vec<ValueChange>> {
    let whence = format!(
        "at {} or {}",
        a.unwrap_or("HEAD"),
        b.map_or("in the workspace".to_string(), |b| format!("at {b}"))
    );
    // `None`: before the first commit, compared with nothing.
    let a = base_rev(repo, a)?.map(|a| side(repo, Some(a))).transpose()?.flatten();
    let b = side(repo, b)?;
    let mut names: BTreeSet<String> = opts.targets.iter().cloned().collect();
    if opts.targets.is_empty() {
        names.extend(default.iter().map(|s| s.to_string()));
        let mut sides = vec![b.as_ref()];
        sides.extend(a.as_ref().map(Some));
        for at in sides {
            if let Some(p) = pipeline_at(repo, at)? {
                names.extend(files(&p));
            }
        }
    }
    let mut out = Vec::new();
    for file in names {
        let old = match &a {
            Some(a) => flat_file(repo, Some(a), &file)?,
            None => None,
        };
        let new = flat_file(repo, b.as_ref(), &file)?;
        if old.is_none() && new.is_none() && opts.targets.contains(&file) {
            return Err(PipelineError::ValuesFileMissing {
                file,
                whence: whence.clone(),
            }
            .into());
        }
        let (old, new) = (old.unwrap_or_default(), new.unwrap_or_default());
        let keys: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
        for k in keys {
            let (o, n) = (old.get(k), new.get(k));
            let same = match (o, n) {
                (Some(o), Some(n)) => crate::pipeline::lock::same_value(o, n),
                _ => o == n,
            };
            if !same || opts.all {
                out.push(ValueChange {
                    file: file.clone(),
                    key: k.clone(),
                    old: o.cloned(),
                    new: n.cloned(),
                    diff: None,
                });
            }
        }
    }
    Ok(out)
}

/// Params that differ between revision `a` (default HEAD) and `b` (default: the
/// workspace), in every params file the pipeline names (and `params.yaml`).
pub fn params_diff(repo: &Repo, a: Option<&str>, b: Option<&str>, opts: &ValuesOptions) -> Result<Vec<ValueChange>> {
    let mut changes = diff_files(repo, (a, b), opts, &params_files, &[DEFAULT_PARAMS])?;
    if opts.deps_only {
        let pipeline = Pipeline::load(repo)?;
        changes.retain(|c| pipeline.as_ref().is_some_and(|p| p.uses_param(&c.file, &c.key)));
    }
    Ok(changes)
}

/// Every param value at `rev` (`None`: the workspace), by file then dotted
/// key: of `targets` (repo-relative; any file), or else of `params.yaml` (if
/// it is there) and every params file the pipeline at `rev` names; with
/// `deps_only`, only the keys some stage lists; with `stages`, only the keys
/// (and files) those stages list. As `dvc.api.params_show`.
pub fn params_show(
    repo: &Repo,
    rev: Option<&str>,
    targets: &[String],
    deps_only: bool,
    stages: &[String],
) -> Result<FileValues> {
    let at = side(repo, rev)?;
    let pipeline = pipeline_at(repo, at.as_ref())?;
    for name in stages {
        if !pipeline.as_ref().is_some_and(|p| p.stages.contains_key(name)) {
            return Err(PipelineError::UnknownStage {
                name: name.clone(),
                known: pipeline.iter().flat_map(|p| p.order.iter().cloned()).collect(),
            }
            .into());
        }
    }
    let only = (!stages.is_empty()).then_some(stages);
    let files = match (targets.is_empty(), only, &pipeline) {
        (false, _, _) => targets.to_vec(),
        (true, Some(names), Some(p)) => unique(
            names
                .iter()
                .flat_map(|n| p.stages[n].params.iter().map(|r| r.file.clone())),
        ),
        (true, _, _) => {
            unique(std::iter::once(DEFAULT_PARAMS.to_string()).chain(pipeline.iter().flat_map(params_files)))
        }
    };
    let deps_only = deps_only || only.is_some();
    let mut out = FileValues::new();
    for file in files {
        match flat_file(repo, at.as_ref(), &file)? {
            Some(mut values) => {
                if deps_only {
                    values.retain(|k, _| pipeline.as_ref().is_some_and(|p| p.uses_param_in(only, &file, k)));
                }
                out.insert(file, values);
            }
            None if targets.is_empty() && file == DEFAULT_PARAMS => {}
            None => {
                return Err(PipelineError::ValuesFileMissing {
                    file,
                    whence: rev.map_or("in the workspace".into(), |r| format!("at {r}")),
                }
                .into());
            }
        }
    }
    Ok(out)
}

/// The params files the stages of `p` read.
pub(crate) fn params_files(p: &Pipeline) -> Vec<String> {
    let read = p.stages.values().flat_map(|s| s.params.iter().map(|r| r.file.clone()));
    unique(read.chain(p.params.iter().cloned()))
}

/// The metrics files of `p`: those of stages, then top-level ones.
pub(crate) fn metric_files(p: &Pipeline) -> Vec<String> {
    let written = p.outs().filter(|(_, o)| o.metric).map(|(_, o)| o.path.clone());
    unique(written.chain(p.metrics.iter().cloned()))
}

/// The distinct values, in the order they first come.
fn unique(values: impl Iterator<Item = String>) -> Vec<String> {
    let mut seen = BTreeSet::new();
    values.filter(|v| seen.insert(v.clone())).collect()
}

/// DVC's `-R` of `repro` and `stage list`: the stages of the `dvc.yaml` files
/// in each of directories `dirs` (relative to `cwd`) and below, which are,
/// after `dvt migrate`, the stages that run there: those whose `wdir` is the
/// directory or below it (every stage, for the root). A directory with none is
/// an error.
pub fn stages_below(repo: &Repo, cwd: &std::path::Path, dirs: &[String]) -> Result<Vec<String>> {
    let pipeline = Pipeline::load_required(repo)?;
    let mut names = Vec::new();
    for d in dirs {
        let (abs, rel) = repo.resolve(cwd, std::path::Path::new(d))?;
        if !abs.is_dir() {
            return Err(PipelineError::NoStagesBelow { dir: d.clone() }.into());
        }
        let below: Vec<&String> = pipeline
            .order
            .iter()
            .filter(|n| {
                let wdir = &pipeline.stages[*n].wdir;
                rel.is_empty() || *wdir == rel || wdir.starts_with(&format!("{rel}/"))
            })
            .collect();
        if below.is_empty() {
            return Err(PipelineError::NoStagesBelow { dir: d.clone() }.into());
        }
        names.extend(below.into_iter().cloned());
    }
    Ok(unique(names.into_iter()))
}

/// The files `metrics -R` reads for directory targets: those ending in
/// `.json`, `.yaml`, `.yml` or `.toml`.
const METRIC_EXTENSIONS: [&str; 4] = [".json", ".yaml", ".yml", ".toml"];

/// `targets` (repo-relative) with each one that is a directory, in the
/// workspace (`None`) or in git at one of `revs`, standing for the metrics
/// files below it there, sorted (DVC's `metrics -R`; see
/// `METRIC_EXTENSIONS`); other targets stay as they are. A directory with
/// none is an error.
pub fn metric_files_below(repo: &Repo, targets: &[String], revs: &[Option<&str>]) -> Result<Vec<String>> {
    let is_metric = |p: &str| {
        let lower = p.to_ascii_lowercase();
        METRIC_EXTENSIONS.iter().any(|e| lower.ends_with(e))
    };
    let sides: Vec<Option<(Git, crate::git::GitId)>> = revs.iter().map(|r| side(repo, *r)).collect::<Result<_>>()?;
    let mut out = Vec::new();
    for t in targets {
        let mut found: BTreeSet<String> = BTreeSet::new();
        let mut dir = false;
        for at in &sides {
            match at {
                None => {
                    let abs = repo.root().join(t);
                    if !abs.is_dir() {
                        continue;
                    }
                    dir = true;
                    let walk = walkdir::WalkDir::new(&abs).into_iter().filter_entry(|e| {
                        let name = e.file_name();
                        name != ".git" && name != crate::repo::DVT_DIR
                    });
                    for e in walk {
                        let e = e.map_err(|e| std::io::Error::other(e.to_string()))?;
                        let Ok(rel) = e.path().strip_prefix(repo.root()) else {
                            continue;
                        };
                        let rel = rel.to_string_lossy().replace('\\', "/");
                        if e.file_type().is_file() && is_metric(&rel) {
                            found.insert(rel);
                        }
                    }
                }
                Some((g, c)) => {
                    if let crate::git::TreeAt::Dir(items) = g.list_tree(*c, t, true, false)? {
                        dir = true;
                        let prefix = t.trim_end_matches('/');
                        found.extend(items.into_iter().filter(|i| !i.dir && is_metric(&i.path)).map(|i| {
                            match prefix.is_empty() {
                                true => i.path,
                                false => format!("{prefix}/{}", i.path),
                            }
                        }));
                    }
                }
            }
        }
        match (dir, found.is_empty()) {
            (false, _) => out.push(t.clone()),
            (true, true) => {
                return Err(PipelineError::NoMetricsBelow { dir: t.clone() }.into());
            }
            (true, false) => out.extend(found),
        }
    }
    Ok(unique(out.into_iter()))
}

/// Metrics that differ between revision `a` (default HEAD) and `b` (default: the
/// workspace).
pub fn metrics_diff(repo: &Repo, a: Option<&str>, b: Option<&str>, opts: &ValuesOptions) -> Result<Vec<ValueChange>> {
    let mut changes = diff_files(repo, (a, b), opts, &metric_files, &[])?;
    for c in &mut changes {
        c.diff = difference(c.old.as_ref(), c.new.as_ref());
    }
    Ok(changes)
}

/// Every metric value in the workspace, by file then dotted key: of `targets`
/// (repo-relative; any file), or of every metrics file of the pipeline.
pub fn metrics_show(repo: &Repo, targets: &[String]) -> Result<BTreeMap<String, BTreeMap<String, toml::Value>>> {
    let files = match targets.is_empty() {
        true => metric_files(&Pipeline::load_required(repo)?),
        false => targets.to_vec(),
    };
    let mut out = BTreeMap::new();
    for f in files {
        match flat_file(repo, None, &f)? {
            Some(values) => {
                out.insert(f, values);
            }
            None if targets.is_empty() => {
                out.insert(f, BTreeMap::new());
            }
            None => {
                return Err(PipelineError::ValuesFileMissing {
                    file: f,
                    whence: "in the workspace".into(),
                }
                .into());
            }
        }
    }
    Ok(out)
}
