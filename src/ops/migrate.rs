//! `dvt migrate`: turns a DVC project into a dvt one in place. DVC's remotes
//! (`.dvc/config`, `.dvc/config.local`) become dvt's, `.dvcignore` files become
//! `.dvtignore` files, the data of each `.dvc` file is added (dvt's ids are
//! BLAKE3 of the bytes, DVC's MD5, so the data must be in the workspace: it is
//! hashed again), and `dvc.yaml` becomes `dvt.toml`, whose stages are recorded
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
    let dvc_yaml = repo.root().join("dvc.yaml");
    // dvt has one `dvt.toml`, at the root.
    for other in crate::workspace::find_files(repo, &|p| p.file_name().is_some_and(|n| n == "dvc.yaml"))? {
        if other != dvc_yaml {
            report.skipped.push((
                crate::workspace::rel_str(repo.root(), &other)?,
                format!("dvt reads one pipeline, `{PIPELINE_FILE}` at the root: move its stages there"),
            ));
        }
    }
    if !dvc_yaml.is_file() {
        return Ok(());
    }
    let dvt_toml = repo.root().join(PIPELINE_FILE);
    if dvt_toml.exists() {
        report.skipped.push((
            "dvc.yaml".into(),
            format!("`{PIPELINE_FILE}` exists: it is not replaced"),
        ));
        return Ok(());
    }
    let Some(toml::Value::Table(mut doc)) = to_toml(&yaml_file(&dvc_yaml)?) else {
        report.skipped.push(("dvc.yaml".into(), "it holds no mapping".into()));
        return Ok(());
    };
    let mut dropped = Vec::new();
    if let Some(toml::Value::Table(stages)) = doc.get_mut("stages") {
        for (_, stage) in stages.iter_mut() {
            if let toml::Value::Table(t) = stage {
                convert_stage(t, &mut dropped);
            }
        }
    }
    if let Some(p) = doc.get("plots") {
        let p = convert_outs(p, &mut dropped);
        doc.insert("plots".into(), p);
    }
    for d in dropped {
        report
            .skipped
            .push(("dvc.yaml".into(), format!("{d}: dvt has no such setting")));
    }
    let text = format!(
        "# Made by `dvt migrate` from dvc.yaml.\n{}",
        toml::to_string_pretty(&doc).map_err(|e| PipelineError::Invalid {
            file: PIPELINE_FILE.to_string(),
            stage: None,
            message: e.to_string(),
        })?
    );
    let pipeline = match Pipeline::parse_with(&text, &|f| crate::pipeline::read_file(repo, f)) {
        Ok(p) => p,
        Err(e) => {
            report.skipped.push((
                "dvc.yaml".into(),
                format!("it does not convert: {}", crate::error_chain(&e)),
            ));
            return Ok(());
        }
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
