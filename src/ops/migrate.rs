//! `dvt migrate`: turns a DVC project into a dvt one in place. DVC's remotes
//! (`.dvc/config`, `.dvc/config.local`) become dvt's, `.dvcignore` files become
//! `.dvtignore` files, the data of each `.dvc` file is added (dvt's ids are
//! BLAKE3 of the bytes, DVC's MD5, so the data must be in the workspace: it is
//! hashed again), and `dvc.yaml` (with those below the root, whose stages run
//! in their directories under names of their own) becomes `dvt.toml`, whose stages are recorded
//! in `dvt.lock` as the workspace holds their outs. DVC's own files are left
//! where they are, for the user to delete once satisfied.

use std::path::{Path, PathBuf};

use serde::Serialize;
use yaml_rust2::Yaml;

use crate::error::{PipelineError, RepoError, Result};
use crate::pipeline::{PIPELINE_FILE, Pipeline};
use crate::progress::Progress;
use crate::repo::{ConfigLevel, Repo};

/// What [`migrate`] did, and what it left for the user.
#[derive(Debug, Default, Serialize)]
pub struct MigrateReport {
    /// Remotes configured, as `(name, url, level file)`.
    pub remotes: Vec<(String, String, String)>,
    /// The default remote set (DVC's `core.remote`).
    pub default_remote: Option<String>,
    /// `.dvtignore` files written from `.dvcignore` files.
    pub ignores: Vec<String>,
    /// Data added: `(.dvc file, data path)`.
    pub added: Vec<(String, String)>,
    /// The add itself, when anything was added.
    pub add: Option<crate::ops::add::AddReport>,
    /// The `dvc.yaml` files whose stages `dvt.toml` got: the root's first.
    pub pipelines: Vec<String>,
    /// Stages of a `dvc.yaml` below the root, renamed: `(file, name, new name)`.
    pub renamed: Vec<(String, String, String)>,
    /// The stages `dvt.toml` got from `dvc.yaml`.
    pub stages: Vec<String>,
    /// Of those, the ones `dvt.lock` records as the workspace holds them.
    pub committed: Vec<String>,
    /// And the ones it does not: their outs are not all in the workspace.
    pub unrecorded: Vec<String>,
    /// What was not carried over, and why: `(what, why)`.
    pub skipped: Vec<(String, String)>,
}

/// The DVC project files of the repository at `root`: where they are.
const DVC_DIR: &str = ".dvc";

/// Carries the DVC project at `repo`'s root over to dvt (see the module's
/// documentation). Fails only when there is no DVC project or its files cannot
/// be read; what cannot be carried over is listed in [`MigrateReport::skipped`].
pub fn migrate(repo: &Repo, progress: &dyn Progress) -> Result<MigrateReport> {
    let root = repo.root().to_path_buf();
    if !root.join(DVC_DIR).is_dir() {
        return Err(RepoError::NoDvcProject { root }.into());
    }
    let mut report = MigrateReport::default();
    migrate_remotes(&root, &mut report)?;
    let repo = Repo::open(&root)?;
    migrate_ignores(&repo, &mut report)?;
    migrate_pointers(&repo, progress, &mut report)?;
    migrate_pipeline(&repo, progress, &mut report)?;
    Ok(report)
}

/// One section of DVC's INI-style config: its header and its `key = value` lines.
type Section = (String, Vec<(String, String)>);

fn read_dvc_config(path: &Path) -> Result<Vec<Section>> {
    let text = match fs_err::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let mut sections: Vec<Section> = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(head) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            // `['remote "store"']` (configobj) or `[remote "store"]`.
            let head = head.trim().trim_matches('\'').trim();
            sections.push((head.to_string(), Vec::new()));
        } else if let (Some((k, v)), Some(last)) = (line.split_once('='), sections.last_mut()) {
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                .unwrap_or(v);
            last.1.push((k.trim().to_string(), v.to_string()));
        }
    }
    Ok(sections)
}

/// A remote's URL as dvt reads it: DVC resolves a relative path from the
/// config file's directory (`.dvc/`), dvt from the repository root.
fn remote_url(url: &str) -> String {
    let is_url = url.contains("://");
    if is_url || Path::new(url).is_absolute() {
        return url.to_string();
    }
    let mut parts: Vec<&str> = vec![DVC_DIR];
    for c in url.split('/').filter(|c| !c.is_empty() && *c != ".") {
        match (c, parts.last()) {
            ("..", Some(&last)) if last != ".." => {
                parts.pop();
            }
            _ => parts.push(c),
        }
    }
    if parts.is_empty() { ".".into() } else { parts.join("/") }
}

fn migrate_remotes(root: &Path, report: &mut MigrateReport) -> Result<()> {
    use crate::remote::config as remotes;
    for (file, level) in [("config", ConfigLevel::Project), ("config.local", ConfigLevel::Local)] {
        let dvc_file = format!("{DVC_DIR}/{file}");
        let mut sections = read_dvc_config(&root.join(&dvc_file))?;
        // Remotes first: `core.remote` names one.
        sections.sort_by_key(|(head, _)| head == "core");
        for (head, keys) in sections {
            let name = head
                .strip_prefix("remote")
                .map(|n| n.trim().trim_matches('"').to_string())
                .filter(|n| !n.is_empty());
            if head == "core" {
                for (k, v) in &keys {
                    let repo = Repo::open(root)?;
                    if k == "remote" {
                        match remotes::set_default(&repo, Some(v), level) {
                            Ok(()) => report.default_remote = Some(v.clone()),
                            Err(e) => report.skipped.push((format!("{dvc_file}: core.remote"), e.to_string())),
                        }
                    } else if k == "autostage" {
                        if let Err(e) = crate::ops::config::set(&repo, "core.autostage", &v.to_lowercase(), level) {
                            report
                                .skipped
                                .push((format!("{dvc_file}: core.autostage"), e.to_string()));
                        }
                    } else {
                        report
                            .skipped
                            .push((format!("{dvc_file}: core.{k}"), "no dvt setting of that name".into()));
                    }
                }
                continue;
            }
            let Some(name) = name else {
                let why = match head.as_str() {
                    "cache" => "dvt's cache is its own (`dvt config cache.…`; it always checks out copies)",
                    _ => "no dvt setting of that name",
                };
                for (k, _) in &keys {
                    report.skipped.push((format!("{dvc_file}: {head}.{k}"), why.into()));
                }
                continue;
            };
            let repo = Repo::open(root)?;
            let known = repo.config().remote.contains_key(&name);
            let url = keys.iter().find(|(k, _)| k == "url").map(|(_, v)| remote_url(v));
            match (&url, known) {
                (Some(url), false) => {
                    if let Err(e) = remotes::add(&repo, &name, url, false, level, false) {
                        report
                            .skipped
                            .push((format!("{dvc_file}: remote `{name}`"), e.to_string()));
                        continue;
                    }
                    report.remotes.push((
                        name.clone(),
                        url.clone(),
                        crate::ops::config::relative(&repo, &repo.config_file(level)?)
                            .display()
                            .to_string(),
                    ));
                }
                (None, false) => {
                    report
                        .skipped
                        .push((format!("{dvc_file}: remote `{name}`"), "it has no `url`".into()));
                    continue;
                }
                // Set already (a second run), or given its URL in the other file.
                (_, true) => {}
            }
            for (k, v) in keys.iter().filter(|(k, _)| k != "url") {
                let repo = Repo::open(root)?;
                if let Err(e) = remotes::modify(&repo, &name, k, Some(v), level) {
                    report
                        .skipped
                        .push((format!("{dvc_file}: remote `{name}` {k}"), e.to_string()));
                }
            }
        }
    }
    Ok(())
}

fn migrate_ignores(repo: &Repo, report: &mut MigrateReport) -> Result<()> {
    let found = crate::workspace::find_files(repo, &|p| p.file_name().is_some_and(|n| n == ".dvcignore"))?;
    for dvcignore in found {
        let dvtignore = dvcignore.with_file_name(crate::workspace::IGNORE_FILE);
        let rel = crate::workspace::rel_str(repo.root(), &dvtignore)?;
        let text = fs_err::read(&dvcignore)?;
        match fs_err::read(&dvtignore) {
            Ok(have) if have == text => {}
            Ok(_) => report
                .skipped
                .push((rel, "it exists and differs from `.dvcignore` beside it".into())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                crate::fsutil::atomic_write(&dvtignore, &text)?;
                crate::autostage::note(&dvtignore);
                report.ignores.push(rel);
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

fn yaml_file(path: &Path) -> Result<Yaml> {
    let text = fs_err::read_to_string(path)?;
    let docs = yaml_rust2::YamlLoader::load_from_str(&text).map_err(|e| PipelineError::Invalid {
        file: path.display().to_string(),
        stage: None,
        message: e.to_string(),
    })?;
    Ok(docs.into_iter().next().unwrap_or(Yaml::Null))
}

fn migrate_pointers(repo: &Repo, progress: &dyn Progress, report: &mut MigrateReport) -> Result<()> {
    let dvc_dir = repo.root().join(DVC_DIR);
    let files = crate::workspace::find_files(repo, &|p| {
        p.extension().is_some_and(|e| e == "dvc") && !p.starts_with(&dvc_dir)
    })?;
    let mut paths: Vec<PathBuf> = Vec::new();
    // Each out's hand-written fields (`desc`, `remote`…), for its new pointer.
    let mut annotated: Vec<(PathBuf, Yaml)> = Vec::new();
    for file in files {
        let rel = crate::workspace::rel_str(repo.root(), &file)?;
        let dir = file.parent().unwrap_or(repo.root()).to_path_buf();
        let doc = match yaml_file(&file) {
            Ok(d) => d,
            Err(e) => {
                report.skipped.push((rel, crate::error_chain(&e)));
                continue;
            }
        };
        if !doc["deps"].is_badvalue() {
            let dep = &doc["deps"][0];
            let out = doc["outs"][0]["path"].as_str().unwrap_or("OUT");
            // From the root, where the hint's command runs.
            let out = crate::workspace::rel_str(repo.root(), &dir.join(out)).unwrap_or_else(|_| out.to_string());
            let source = dep["path"].as_str().unwrap_or("PATH");
            let why = match dep["repo"]["url"].as_str() {
                Some(url) => format!(
                    "an import from the DVC repository `{url}`: dvt imports from dvt repositories; once that one \
                     is migrated, `dvt import {url} {source} -o {out}`"
                ),
                None => format!("an import from a URL: `dvt import-url {source} {out}` imports it again"),
            };
            report.skipped.push((rel, why));
            continue;
        }
        let outs = doc["outs"].as_vec().cloned().unwrap_or_default();
        if outs.is_empty() {
            report.skipped.push((rel.clone(), "it has no `outs`".into()));
        }
        for out in outs {
            let Some(path) = out["path"].as_str() else {
                report.skipped.push((rel.clone(), "an out without a `path`".into()));
                continue;
            };
            let abs = dir.join(path);
            let data = crate::workspace::rel_str(repo.root(), &abs).unwrap_or_else(|_| path.to_string());
            if fs_err::symlink_metadata(&abs).is_err() {
                report.skipped.push((
                    rel.clone(),
                    format!("`{data}` is not in the workspace: `dvc pull` it, then `dvt add {data}`"),
                ));
                continue;
            }
            report.added.push((rel.clone(), data));
            annotated.push((abs.clone(), out.clone()));
            paths.push(abs);
        }
    }
    if paths.is_empty() {
        return Ok(());
    }
    migrate_pointer_data(repo, progress, report, paths)?;
    for (abs, out) in annotated {
        let file = crate::pointer::pointer_path_for(&abs);
        // Skipped by `add` (named in the report): no pointer to annotate.
        let Ok(pointer) = crate::pointer::Pointer::load(&file) else {
            continue;
        };
        let annotated = annotations(&out, pointer);
        annotated.save(&file)?;
    }
    Ok(())
}

/// `pointer` with the fields DVC's out `out` was annotated with by hand:
/// `desc`, `type`, `labels`, `meta`, `remote`, `push`.
fn annotations(out: &Yaml, mut pointer: crate::pointer::Pointer) -> crate::pointer::Pointer {
    let text = |key: &str| out[key].as_str().map(str::to_string);
    pointer.desc = text("desc");
    pointer.data_type = text("type");
    pointer.remote = text("remote");
    pointer.labels = out["labels"]
        .as_vec()
        .map(|l| l.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    pointer.push = out["push"].as_bool().unwrap_or(true);
    pointer.meta = match to_toml(&out["meta"]) {
        Some(toml::Value::Table(t)) if !t.is_empty() => Some(t),
        _ => None,
    };
    pointer
}

/// `dvt add` of the data of DVC's `.dvc` files, `paths`, noted in `report`.
fn migrate_pointer_data(
    repo: &Repo,
    progress: &dyn Progress,
    report: &mut MigrateReport,
    paths: Vec<PathBuf>,
) -> Result<()> {
    let add = |paths: Vec<PathBuf>| {
        let opts = crate::ops::add::AddOptions {
            paths,
            cwd: repo.root().to_path_buf(),
            no_commit: false,
        };
        crate::ops::add::add(repo, &opts, progress)
    };
    // All at once; if `add` refuses one (outside the repository, tracked by
    // git…), it wrote nothing, and each is added alone so the rest come over.
    let whole = match add(paths.clone()) {
        Ok(r) => r,
        Err(_) => {
            let mut whole = crate::ops::add::AddReport::default();
            let tried = std::mem::take(&mut report.added);
            for ((dvc_file, data), abs) in tried.into_iter().zip(paths) {
                match add(vec![abs]) {
                    Ok(r) => {
                        whole.added.extend(r.added);
                        whole.hashed_files += r.hashed_files;
                        whole.hashed_bytes += r.hashed_bytes;
                        whole.written_bytes += r.written_bytes;
                        report.added.push((dvc_file, data));
                    }
                    Err(e) => report.skipped.push((dvc_file, crate::error_chain(&e))),
                }
            }
            whole
        }
    };
    report.add = Some(whole);
    Ok(())
}

/// A YAML value as TOML; a null in a mapping becomes an empty table (DVC's
/// `- eval/prc:`, an out with no options), elsewhere it is dropped.
fn to_toml(y: &Yaml) -> Option<toml::Value> {
    Some(match y {
        Yaml::Real(s) => toml::Value::Float(s.parse().ok()?),
        Yaml::Integer(i) => toml::Value::Integer(*i),
        Yaml::String(s) => toml::Value::String(s.clone()),
        Yaml::Boolean(b) => toml::Value::Boolean(*b),
        Yaml::Array(a) => toml::Value::Array(a.iter().filter_map(to_toml).collect()),
        Yaml::Hash(h) => {
            let mut t = toml::Table::new();
            for (k, v) in h {
                let key = match k {
                    Yaml::String(s) | Yaml::Real(s) => s.clone(),
                    Yaml::Integer(i) => i.to_string(),
                    Yaml::Boolean(b) => b.to_string(),
                    _ => continue,
                };
                let v = match v {
                    Yaml::Null => toml::Value::Table(toml::Table::new()),
                    v => to_toml(v)?,
                };
                t.insert(key, v);
            }
            toml::Value::Table(t)
        }
        Yaml::Null | Yaml::Alias(_) | Yaml::BadValue => return None,
    })
}

/// The keys of an out's table dvt reads: the rest of DVC's (`checkpoint`…)
/// are dropped, each noted in `dropped`.
const OUT_KEYS: [&str; 15] = [
    "cache", "persist", "remote", "push", "desc", "type", "labels", "meta", "x", "y", "title", "x_label", "y_label",
    "template", "header",
];

/// DVC's entries of `outs`, `metrics` or `plots` (`- path` or `- path: {…}`,
/// or a top-level plot `- NAME: {y: {file: field}}`) as dvt's.
fn convert_outs(v: &toml::Value, dropped: &mut Vec<String>) -> toml::Value {
    let Some(items) = v.as_array() else { return v.clone() };
    let mut out = Vec::new();
    for item in items {
        let Some(t) = item.as_table().filter(|t| t.len() == 1) else {
            out.push(item.clone());
            continue;
        };
        let Some((path, opts)) = t.iter().next() else { continue };
        let opts = opts.as_table().cloned().unwrap_or_default();
        if opts.is_empty() {
            out.push(toml::Value::String(path.clone()));
            continue;
        }
        let mut entry = toml::Table::new();
        let several = opts.get("y").is_some_and(toml::Value::is_table);
        entry.insert(
            if several { "name" } else { "path" }.into(),
            toml::Value::String(path.clone()),
        );
        for (k, v) in opts {
            if OUT_KEYS.contains(&k.as_str()) {
                entry.insert(k, v);
            } else {
                dropped.push(format!("`{k}` of `{path}`"));
            }
        }
        out.push(toml::Value::Table(entry));
    }
    toml::Value::Array(out)
}

/// DVC's `params` entries (`- key` or `- file.yaml: [keys]`) as dvt's `FILE:KEY,…`.
fn convert_params(v: &toml::Value, dropped: &mut Vec<String>) -> toml::Value {
    let Some(items) = v.as_array() else { return v.clone() };
    let mut out = Vec::new();
    for item in items {
        match item.as_table() {
            None => out.push(item.clone()),
            Some(t) => {
                for (file, keys) in t {
                    let keys: Vec<&str> = keys
                        .as_array()
                        .map(|a| a.iter().filter_map(toml::Value::as_str).collect())
                        .unwrap_or_default();
                    if keys.is_empty() {
                        dropped.push(format!("params of the whole `{file}` (list its keys)"));
                    } else {
                        out.push(toml::Value::String(format!("{file}:{}", keys.join(","))));
                    }
                }
            }
        }
    }
    toml::Value::Array(out)
}

/// One stage of `dvc.yaml` (or the `do` of a `foreach`) as dvt's, in place.
fn convert_stage(t: &mut toml::Table, dropped: &mut Vec<String>) {
    if let Some(toml::Value::Table(body)) = t.get_mut("do") {
        convert_stage(body, dropped);
    }
    if let Some(toml::Value::Array(lines)) = t.get("cmd") {
        let lines: Vec<&str> = lines.iter().filter_map(toml::Value::as_str).collect();
        let joined = lines.join(" && ");
        t.insert("cmd".into(), toml::Value::String(joined));
    }
    if let Some(p) = t.get("params") {
        let p = convert_params(p, dropped);
        t.insert("params".into(), p);
    }
    for key in ["outs", "metrics", "plots"] {
        if let Some(v) = t.get(key) {
            let v = convert_outs(v, dropped);
            t.insert(key.into(), v);
        }
    }
}

fn migrate_pipeline(repo: &Repo, progress: &dyn Progress, report: &mut MigrateReport) -> Result<()> {
    // The root's first, then those below it, by path.
    let mut files = crate::workspace::find_files(repo, &|p| p.file_name().is_some_and(|n| n == "dvc.yaml"))?;
    files.sort_by_key(|f| (f.parent() != Some(repo.root()), f.clone()));
    if files.is_empty() {
        return Ok(());
    }
    let dvt_toml = repo.root().join(PIPELINE_FILE);
    if dvt_toml.exists() {
        for f in &files {
            report.skipped.push((
                crate::workspace::rel_str(repo.root(), f)?,
                format!("`{PIPELINE_FILE}` exists: it is not replaced"),
            ));
        }
        return Ok(());
    }
    // dvt has one `dvt.toml`, at the root: a `dvc.yaml` below it brings its
    // stages there, each running where DVC ran it, under a name of its own.
    let mut doc = toml::Table::new();
    let mut pipeline = None;
    for file in &files {
        let rel = crate::workspace::rel_str(repo.root(), file)?;
        let dir = rel
            .strip_suffix("dvc.yaml")
            .unwrap_or("")
            .trim_end_matches('/')
            .to_string();
        // One below the root that does not parse stays behind; the root's stops all.
        let yaml = match yaml_file(file) {
            Ok(y) => y,
            Err(e) if !dir.is_empty() => {
                report.skipped.push((rel, crate::error_chain(&e)));
                continue;
            }
            Err(e) => return Err(e),
        };
        let Some(toml::Value::Table(mut this)) = to_toml(&yaml) else {
            report.skipped.push((rel, "it holds no mapping".into()));
            continue;
        };
        let mut dropped = Vec::new();
        if let Some(toml::Value::Table(stages)) = this.get_mut("stages") {
            for (_, stage) in stages.iter_mut() {
                if let toml::Value::Table(t) = stage {
                    convert_stage(t, &mut dropped);
                }
            }
        }
        if let Some(p) = this.get("plots") {
            let p = convert_outs(p, &mut dropped);
            this.insert("plots".into(), p);
        }
        for d in dropped {
            report
                .skipped
                .push((rel.clone(), format!("{d}: dvt has no such setting")));
        }
        let mut merged = doc.clone();
        let renamed = match dir.is_empty() {
            true => {
                merged = this;
                Vec::new()
            }
            false => {
                let own_params = repo.root().join(&dir).join("params.yaml").is_file();
                match merge_nested(&mut merged, this, &dir, own_params) {
                    Ok(renamed) => renamed,
                    Err(why) => {
                        report.skipped.push((rel, why));
                        continue;
                    }
                }
            }
        };
        let text = pipeline_text(&merged)?;
        match Pipeline::parse_with(&text, &|f| crate::pipeline::read_file(repo, f)) {
            Ok(p) => {
                doc = merged;
                pipeline = Some((p, text));
                report.pipelines.push(rel.clone());
                report
                    .renamed
                    .extend(renamed.into_iter().map(|(old, new)| (rel.clone(), old, new)));
            }
            Err(e) => {
                report
                    .skipped
                    .push((rel, format!("it does not convert: {}", crate::error_chain(&e))));
                // Without the root's pipeline, none: its stages are what the others join.
                if dir.is_empty() {
                    return Ok(());
                }
            }
        }
    }
    let Some((pipeline, text)) = pipeline else {
        return Ok(());
    };
    crate::fsutil::atomic_write(&dvt_toml, text.as_bytes())?;
    crate::autostage::note(&dvt_toml);
    report.stages = pipeline.order.clone();
    // Record in `dvt.lock` each stage whose outs are all in the workspace, as
    // they are: what `dvc.lock` recorded of them, if DVC's status was clean.
    let opts = crate::ops::commit::CommitOptions {
        targets: pipeline.order.clone(),
        cwd: repo.root().to_path_buf(),
        force: true,
        skip_incomplete: true,
    };
    let committed = crate::ops::commit::commit(repo, &opts, progress)?;
    for s in &pipeline.order {
        if committed.incomplete.iter().any(|i| i == s) {
            report.unrecorded.push(s.clone());
        } else {
            report.committed.push(s.clone());
        }
    }
    Ok(())
}

/// `dvt.toml`'s text for `doc`.
fn pipeline_text(doc: &toml::Table) -> Result<String> {
    let body = toml::to_string_pretty(doc).map_err(|e| PipelineError::Invalid {
        file: PIPELINE_FILE.to_string(),
        stage: None,
        message: e.to_string(),
    })?;
    Ok(format!("# Made by `dvt migrate` from dvc.yaml.\n{body}"))
}

/// Adds to `doc` the pipeline `nested` of the `dvc.yaml` in directory `dir`
/// (converted): each stage as `DIR-NAME`, running in `dir` (joined to its own
/// `wdir`), with the file's `vars` (and, with `own_params`, the `params.yaml`
/// beside it, as DVC reads it for `${…}`); its top-level metrics, params and
/// plots with `dir/` before their paths. The stages renamed, `(old, new)`; an
/// error says why the file cannot come over.
fn merge_nested(
    doc: &mut toml::Table,
    mut nested: toml::Table,
    dir: &str,
    own_params: bool,
) -> std::result::Result<Vec<(String, String)>, String> {
    let mut vars: Vec<toml::Value> = match nested.remove("vars") {
        Some(toml::Value::Array(v)) => v,
        Some(t @ toml::Value::Table(_)) => vec![t],
        Some(_) => return Err("its `vars` is neither a list nor a table".into()),
        None => Vec::new(),
    };
    let interpolates = |v: &toml::Value| toml::to_string(v).is_ok_and(|t| t.contains("${"));
    if own_params && !vars.iter().any(|v| v.as_str() == Some("params.yaml")) {
        vars.push(toml::Value::String("params.yaml".into()));
    }
    let mut renamed = Vec::new();
    let stages = match nested.remove("stages") {
        Some(toml::Value::Table(t)) => t,
        Some(_) => return Err("its `stages` is not a mapping".into()),
        None => toml::Table::new(),
    };
    let all = doc
        .entry("stages")
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    let Some(all) = all.as_table_mut() else {
        return Err("the root's `stages` is not a mapping".into());
    };
    let mut added = toml::Table::new();
    for (name, mut stage) in stages {
        let new = crate::pipeline::migrated_name(dir, &name);
        if all.contains_key(&new) || added.contains_key(&new) {
            return Err(format!("stage `{name}` would be `{new}`, a name another stage has"));
        }
        let Some(t) = stage.as_table_mut() else {
            return Err(format!("stage `{name}` is not a mapping"));
        };
        let uses_vars = interpolates(&toml::Value::Table(t.clone()));
        // A `foreach` or `matrix` stage says where it runs in its `do`.
        let body = match t.get_mut("do") {
            Some(toml::Value::Table(b)) => b,
            _ => t,
        };
        let wdir = match body.get("wdir").and_then(toml::Value::as_str) {
            None | Some(".") | Some("") => dir.to_string(),
            Some(w) => format!("{dir}/{w}"),
        };
        body.insert("wdir".into(), toml::Value::String(wdir));
        if uses_vars && !vars.is_empty() {
            let mut own = vars.clone();
            if let Some(toml::Value::Array(v)) = body.remove("vars") {
                own.extend(v);
            }
            body.insert("vars".into(), toml::Value::Array(own));
        }
        renamed.push((name, new.clone()));
        added.insert(new, stage);
    }
    all.extend(added);
    let under = |p: &str| format!("{dir}/{p}");
    for key in ["metrics", "params"] {
        if let Some(toml::Value::Array(items)) = nested.remove(key) {
            let list = doc.entry(key).or_insert_with(|| toml::Value::Array(Vec::new()));
            let Some(list) = list.as_array_mut() else {
                return Err(format!("the root's `{key}` is not a list"));
            };
            list.extend(
                items
                    .iter()
                    .filter_map(toml::Value::as_str)
                    .map(|p| toml::Value::String(under(p))),
            );
        }
    }
    if let Some(toml::Value::Array(items)) = nested.remove("plots") {
        let list = doc.entry("plots").or_insert_with(|| toml::Value::Array(Vec::new()));
        let Some(list) = list.as_array_mut() else {
            return Err("the root's `plots` is not a list".into());
        };
        for item in items {
            list.push(match item {
                toml::Value::String(p) => toml::Value::String(under(&p)),
                toml::Value::Table(mut t) => {
                    if let Some(toml::Value::String(p)) = t.get("path") {
                        let p = under(p);
                        t.insert("path".into(), toml::Value::String(p));
                    }
                    // `{ name, y = { FILE = FIELD } }`: the files are the keys.
                    for axis in ["x", "y"] {
                        if let Some(toml::Value::Table(files)) = t.get_mut(axis) {
                            *files = std::mem::take(files).into_iter().map(|(f, v)| (under(&f), v)).collect();
                        }
                    }
                    toml::Value::Table(t)
                }
                other => other,
            });
        }
    }
    if let Some(key) = nested.keys().next() {
        return Err(format!("its top-level `{key}` has no place in dvt.toml"));
    }
    Ok(renamed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_remote_paths_move_from_the_dvc_directory_to_the_root() {
        assert_eq!(remote_url("../../storage"), "../storage");
        assert_eq!(remote_url("../store"), "store");
        assert_eq!(remote_url("cache-remote"), ".dvc/cache-remote");
        assert_eq!(remote_url("/srv/dvc"), "/srv/dvc");
        assert_eq!(remote_url("s3://b/p"), "s3://b/p");
    }
}
