//! Params files: YAML (`params.yaml`, the default), TOML or JSON, chosen by
//! extension. A param is a dotted key into nested tables; its value is recorded in
//! `dvt.lock` as a TOML value.

use std::collections::BTreeMap;

use crate::error::{PipelineError, Result};
use crate::repo::Repo;

/// A parsed params file, as a TOML table.
pub type Params = toml::Table;

fn bad(file: &str, message: impl Into<String>) -> crate::Error {
    PipelineError::ParamsFile {
        file: file.to_string(),
        message: message.into(),
    }
    .into()
}

/// Parses params text; `file` (its name) picks the format and names it in errors.
pub fn parse(file: &str, text: &str) -> Result<Params> {
    let lower = file.to_ascii_lowercase();
    if lower.ends_with(".toml") {
        return toml::from_str(text).map_err(|e| bad(file, crate::error::toml_message(text, e.span(), e.message())));
    }
    if lower.ends_with(".json") {
        let text = with_nonfinite_marked(text);
        let v: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| bad(file, format!("not valid JSON: {e}")))?;
        return match from_json(file, &v)? {
            toml::Value::Table(t) => Ok(t),
            _ => Err(bad(file, "the top level must be an object")),
        };
    }
    let docs = yaml_rust2::YamlLoader::load_from_str(text).map_err(|e| bad(file, format!("not valid YAML: {e}")))?;
    match docs.first() {
        None => Ok(Params::new()),
        Some(doc) => match from_yaml(file, doc)? {
            toml::Value::Table(t) => Ok(t),
            _ => Err(bad(file, "the top level must be a mapping")),
        },
    }
}

/// What [`with_nonfinite_marked`] puts for `NaN`, `Infinity` and `-Infinity`:
/// JSON strings no file holds (they start with a NUL), read back as numbers.
const NONFINITE: [(&str, &str, f64); 3] = [
    ("NaN", "\\u0000dvt:NaN", f64::NAN),
    ("Infinity", "\\u0000dvt:Infinity", f64::INFINITY),
    ("-Infinity", "\\u0000dvt:-Infinity", f64::NEG_INFINITY),
];

/// JSON text with the bare `NaN`, `Infinity` and `-Infinity` that Python's
/// `json.dump` writes (a diverged loss) replaced, outside strings, by marked
/// strings that standard JSON parses ([`NONFINITE`]).
pub(crate) fn with_nonfinite_marked(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains("NaN") && !text.contains("Infinity") {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 32);
    let (mut in_string, mut escaped) = (false, false);
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
        } else if c == '"' {
            in_string = true;
        } else if let Some((word, marked, _)) = NONFINITE.iter().find(|(w, _, _)| rest.starts_with(w)) {
            out.push('"');
            out.push_str(marked);
            out.push('"');
            rest = &rest[word.len()..];
            continue;
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    std::borrow::Cow::Owned(out)
}

/// Whether `s` is a string [`with_nonfinite_marked`] put for a number.
pub(crate) fn is_nonfinite_mark(s: &str) -> bool {
    s.starts_with("\0dvt:")
}

fn from_json(file: &str, v: &serde_json::Value) -> Result<toml::Value> {
    use serde_json::Value as J;
    Ok(match v {
        J::Null => return Err(bad(file, "null values cannot be params")),
        J::Bool(b) => toml::Value::Boolean(*b),
        J::Number(n) => match n.as_i64() {
            Some(i) => toml::Value::Integer(i),
            None => toml::Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        J::String(s) => match NONFINITE.iter().find(|(w, _, _)| s.strip_prefix("\0dvt:") == Some(w)) {
            Some((_, _, n)) => toml::Value::Float(*n),
            None => toml::Value::String(s.clone()),
        },
        J::Array(a) => toml::Value::Array(a.iter().map(|x| from_json(file, x)).collect::<Result<_>>()?),
        J::Object(o) => {
            let mut t = toml::Table::new();
            for (k, x) in o {
                if !x.is_null() {
                    t.insert(k.clone(), from_json(file, x)?);
                }
            }
            toml::Value::Table(t)
        }
    })
}

fn from_yaml(file: &str, y: &yaml_rust2::Yaml) -> Result<toml::Value> {
    use yaml_rust2::Yaml as Y;
    Ok(match y {
        Y::Real(s) => toml::Value::Float(match s.to_ascii_lowercase().as_str() {
            // YAML's spellings, as PyYAML writes a NaN or an infinite loss.
            ".nan" => f64::NAN,
            ".inf" | "+.inf" => f64::INFINITY,
            "-.inf" => f64::NEG_INFINITY,
            _ => s.parse().map_err(|_| bad(file, format!("bad number `{s}`")))?,
        }),
        Y::Integer(i) => toml::Value::Integer(*i),
        Y::String(s) => toml::Value::String(s.clone()),
        Y::Boolean(b) => toml::Value::Boolean(*b),
        Y::Array(a) => toml::Value::Array(a.iter().map(|x| from_yaml(file, x)).collect::<Result<_>>()?),
        Y::Hash(h) => {
            let mut t = toml::Table::new();
            let mut merged: Vec<&Y> = Vec::new();
            for (k, v) in h {
                // YAML's merge key (`<<: *defaults`, as PyYAML reads it): the
                // mappings named give the keys this one does not set itself.
                if matches!(k, Y::String(s) if s == "<<") {
                    match v {
                        Y::Hash(_) => merged.push(v),
                        Y::Array(list) if list.iter().all(|x| matches!(x, Y::Hash(_))) => merged.extend(list),
                        _ => return Err(bad(file, "`<<` merges a mapping, or a list of mappings")),
                    }
                    continue;
                }
                let key = match k {
                    Y::String(s) => s.clone(),
                    Y::Integer(i) => i.to_string(),
                    Y::Boolean(b) => b.to_string(),
                    Y::Real(r) => r.clone(),
                    _ => return Err(bad(file, "mapping keys must be strings or numbers")),
                };
                // A null value is no value: the key then reads as absent.
                if !matches!(v, Y::Null) {
                    t.insert(key, from_yaml(file, v)?);
                }
            }
            // Earlier mappings of a list win over later ones.
            for m in merged {
                if let toml::Value::Table(from) = from_yaml(file, m)? {
                    for (k, v) in from {
                        t.entry(k).or_insert(v);
                    }
                }
            }
            toml::Value::Table(t)
        }
        Y::Null => return Err(bad(file, "null values cannot be params")),
        Y::Alias(_) | Y::BadValue => return Err(bad(file, "unsupported YAML value")),
    })
}

/// The value at dotted `key`, if present.
pub fn lookup<'p>(params: &'p Params, key: &str) -> Option<&'p toml::Value> {
    let mut parts = key.split('.');
    let mut cur = params.get(parts.next()?)?;
    for p in parts {
        cur = cur.as_table()?.get(p)?;
    }
    Some(cur)
}

/// Params files read once each, by repo-relative path.
#[derive(Debug, Default)]
pub struct ParamsCache {
    files: BTreeMap<String, Option<Params>>,
}

impl ParamsCache {
    /// The value of `key` in `file` for `stage`: an error names all three if the
    /// file or the key is missing.
    pub fn value(&mut self, repo: &Repo, stage: &str, file: &str, key: &str) -> Result<toml::Value> {
        if !self.files.contains_key(file) {
            let loaded = match fs_err::read_to_string(repo.root().join(file)) {
                Ok(text) => Some(parse(file, &text)?),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => return Err(e.into()),
            };
            self.files.insert(file.to_string(), loaded);
        }
        let (stage, file, key) = (stage.to_string(), file.to_string(), key.to_string());
        match self.files.get(&file) {
            Some(Some(p)) => lookup(p, &key)
                .cloned()
                .ok_or_else(|| PipelineError::UnknownParam { stage, file, key }.into()),
            _ => Err(PipelineError::NoParamsFile { stage, file, key }.into()),
        }
    }
}

/// A value typed on the command line (`dvt exp run -S KEY=VALUE`), read as
/// YAML, as DVC reads it: `0.1`, `3`, `true` keep their type; `[64, 32]` (Hydra's
/// list, of such values or lists) is a list; `"0.1"` a string without its
/// quotes; anything else is a string as typed.
pub fn typed_value(text: &str) -> toml::Value {
    let parsed = yaml_rust2::YamlLoader::load_from_str(text)
        .ok()
        .and_then(|docs| docs.into_iter().next());
    // Written as a list, or quoted (`"0.1"`, `'null'`): YAML's reading, quotes off.
    let explicit = text.trim_start().starts_with(['[', '"', '\'']);
    match parsed.as_ref().and_then(|y| command_line_value(y, explicit)) {
        Some(v) => v,
        None => toml::Value::String(text.to_string()),
    }
}

/// A YAML value read from the command line, if it is a number, a boolean, or
/// (`explicit`: the text is written as a list or quoted) a string or a list of
/// those and lists.
fn command_line_value(y: &yaml_rust2::Yaml, explicit: bool) -> Option<toml::Value> {
    use yaml_rust2::Yaml;
    match y {
        Yaml::Integer(i) => Some(toml::Value::Integer(*i)),
        Yaml::Real(r) => r.parse().ok().map(toml::Value::Float),
        Yaml::Boolean(b) => Some(toml::Value::Boolean(*b)),
        Yaml::String(s) if explicit => Some(toml::Value::String(s.clone())),
        Yaml::Array(items) if explicit => items
            .iter()
            .map(|i| command_line_value(i, true))
            .collect::<Option<Vec<_>>>()
            .map(toml::Value::Array),
        _ => None,
    }
}

/// `text` of params file `file` (whose values are `parsed`) with the value at
/// dotted `key` replaced by `value`, the rest of the file (comments, order,
/// layout) as it was. The key must exist and hold a string, number, boolean or
/// list; a list is written in the flow style (`[64, 32]`).
pub fn set_value(file: &str, text: &str, parsed: &Params, key: &str, value: &toml::Value) -> Result<String> {
    let missing = || {
        bad(
            file,
            format!("has no value `{key}` to set (only existing values can be set)"),
        )
    };
    let current = lookup(parsed, key).ok_or_else(missing)?;
    if current.is_table() {
        return Err(bad(
            file,
            format!("`{key}` is a table; only single values and lists can be set"),
        ));
    }
    let lower = file.to_ascii_lowercase();
    let out = if lower.ends_with(".toml") {
        let mut doc = toml_doc(file, text)?;
        let mut item = doc.as_item_mut();
        for part in key.split('.') {
            item = item.get_mut(part).ok_or_else(missing)?;
        }
        let new = toml_edit::value(edit_value(value));
        // Keep the comment after the old value.
        let decor = item.as_value().map(|v| v.decor().clone());
        *item = new;
        if let (Some(decor), Some(v)) = (decor, item.as_value_mut()) {
            *v.decor_mut() = decor;
        }
        doc.to_string()
    } else if lower.ends_with(".json") {
        let mut doc = json_doc(file, text)?;
        let mut cur = &mut doc;
        for part in key.split('.') {
            cur = cur.get_mut(part).ok_or_else(missing)?;
        }
        *cur = serde_json::to_value(value).map_err(|e| bad(file, e.to_string()))?;
        json_text(file, &doc)?
    } else {
        match set_yaml(file, text, key, value) {
            Ok(out) => out,
            // A value a merge key gives (`<<: *base`): written into the
            // mapping itself, where it overrides the merged one.
            Err(_) if text.contains("<<:") => add_yaml(text, &key.split('.').collect::<Vec<_>>(), value),
            Err(e) => return Err(e),
        }
    };
    // What was written must read back as the value asked for.
    if lookup(&parse(file, &out)?, key) != Some(value) {
        return Err(bad(file, format!("could not set `{key}` here (write it by hand)")));
    }
    Ok(out)
}

/// `text` of params file `file` (whose values are `parsed`) with a new single
/// value at dotted `key`, which must not exist yet (as Hydra's and DVC's `-S +KEY=VALUE`): tables on the way
/// that do not exist are made; the rest of the file stays as it was.
pub fn add_value(file: &str, text: &str, parsed: &Params, key: &str, value: &toml::Value) -> Result<String> {
    if lookup(parsed, key).is_some() {
        return Err(bad(file, format!("already has `{key}` (`-S {key}=…` changes it)")));
    }
    let parts: Vec<&str> = key.split('.').collect();
    // Each table on the way must be a table, if it exists.
    for end in 1..parts.len() {
        let above = parts[..end].join(".");
        if lookup(parsed, &above).is_some_and(|v| !v.is_table()) {
            return Err(bad(
                file,
                format!("`{above}` is not a table, so `{key}` cannot be added"),
            ));
        }
    }
    let lower = file.to_ascii_lowercase();
    let out = if lower.ends_with(".toml") {
        let mut doc = toml_doc(file, text)?;
        let mut table: &mut dyn toml_edit::TableLike = doc.as_table_mut();
        // Inside an inline table (`train = { lr = 0.1 }`), new tables are inline too.
        let mut inline = false;
        for part in &parts[..parts.len() - 1] {
            if table.get(part).is_none() {
                let new = match inline {
                    true => toml_edit::Item::Value(toml_edit::InlineTable::new().into()),
                    false => toml_edit::table(),
                };
                table.insert(part, new);
            }
            let item = table
                .get_mut(part)
                .ok_or_else(|| bad(file, format!("cannot add `{key}`")))?;
            inline |= item.is_inline_table();
            table = item
                .as_table_like_mut()
                .ok_or_else(|| bad(file, format!("`{part}` is not a table, so `{key}` cannot be added")))?;
        }
        table.insert(parts[parts.len() - 1], toml_edit::value(edit_value(value)));
        if inline {
            // Its items spaced as toml_edit writes them (`{ lr = 0.1, epochs = 5 }`).
            table.fmt();
        }
        doc.to_string()
    } else if lower.ends_with(".json") {
        let mut doc = json_doc(file, text)?;
        let mut cur = &mut doc;
        for part in &parts[..parts.len() - 1] {
            cur = cur
                .as_object_mut()
                .ok_or_else(|| bad(file, "is not an object of params"))?
                .entry(part.to_string())
                .or_insert_with(|| serde_json::Value::Object(serde_json::Map::new()));
        }
        let leaf = serde_json::to_value(value).map_err(|e| bad(file, e.to_string()))?;
        cur.as_object_mut()
            .ok_or_else(|| bad(file, "is not an object of params"))?
            .insert(parts[parts.len() - 1].to_string(), leaf);
        json_text(file, &doc)?
    } else {
        add_yaml(text, &parts, value)
    };
    if lookup(&parse(file, &out)?, key) != Some(value) {
        return Err(bad(file, format!("could not add `{key}` here (write it by hand)")));
    }
    Ok(out)
}

/// `text` of params file `file` (whose values are `parsed`) without the value at
/// dotted `key` (as Hydra's and DVC's `-S ~KEY`), which must exist; the rest of the file stays as it was. In
/// YAML the key's line goes with the lines below it that belong to it.
pub fn remove_value(file: &str, text: &str, parsed: &Params, key: &str) -> Result<String> {
    let missing = || bad(file, format!("has no `{key}` to remove"));
    lookup(parsed, key).ok_or_else(missing)?;
    let parts: Vec<&str> = key.split('.').collect();
    let (last, above) = parts.split_last().ok_or_else(missing)?;
    let lower = file.to_ascii_lowercase();
    let out = if lower.ends_with(".toml") {
        let mut doc = toml_doc(file, text)?;
        let mut item = doc.as_item_mut();
        for part in above {
            item = item.get_mut(part).ok_or_else(missing)?;
        }
        item.as_table_like_mut()
            .and_then(|t| t.remove(last))
            .ok_or_else(missing)?;
        doc.to_string()
    } else if lower.ends_with(".json") {
        let mut doc = json_doc(file, text)?;
        let mut cur = &mut doc;
        for part in above {
            cur = cur.get_mut(part).ok_or_else(missing)?;
        }
        cur.as_object_mut()
            .and_then(|o| o.shift_remove(*last))
            .ok_or_else(missing)?;
        json_text(file, &doc)?
    } else {
        remove_yaml(text, &parts).ok_or_else(|| {
            bad(
                file,
                format!("could not find `{key}` as `key:` lines to remove (remove it by hand)"),
            )
        })?
    };
    // What was written must read back as the params before, less that key.
    let mut expected = parsed.clone();
    let mut table = &mut expected;
    for part in above {
        table = match table.get_mut(*part) {
            Some(toml::Value::Table(t)) => t,
            _ => return Err(missing()),
        };
    }
    table.remove(*last);
    if parse(file, &out)? != expected {
        return Err(bad(file, format!("could not remove `{key}` here (remove it by hand)")));
    }
    Ok(out)
}

/// The YAML removal: the `key:` line at `parts` (found by indentation, as
/// [`set_yaml`] does) and its block ([`block_end`]).
fn remove_yaml(text: &str, parts: &[&str]) -> Option<String> {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let mut path: Vec<(usize, String)> = Vec::new();
    let mut found = None;
    for (i, line) in lines.iter().enumerate() {
        let Some((indent, k, _)) = yaml_key_line(line) else {
            continue;
        };
        while path.last().is_some_and(|(d, _)| *d >= indent) {
            path.pop();
        }
        let here: Vec<&str> = path.iter().map(|(_, k)| k.as_str()).chain([k.as_str()]).collect();
        if here == parts {
            found = Some((i, indent));
            break;
        }
        path.push((indent, k));
    }
    let (start, indent) = found?;
    let end = block_end(&lines, start + 1, indent);
    Some(lines[..start].iter().chain(&lines[end..]).copied().collect())
}

/// A TOML params file, for editing in place.
fn toml_doc(file: &str, text: &str) -> Result<toml_edit::DocumentMut> {
    text.parse().map_err(|e: toml_edit::TomlError| bad(file, e.to_string()))
}

/// A JSON params file, keys in file order.
fn json_doc(file: &str, text: &str) -> Result<serde_json::Value> {
    serde_json::from_str(text).map_err(|e| bad(file, format!("not valid JSON: {e}")))
}

/// How an edited JSON params file is written: two-space indents, a final newline.
fn json_text(file: &str, doc: &serde_json::Value) -> Result<String> {
    let mut s = serde_json::to_string_pretty(doc).map_err(|e| bad(file, e.to_string()))?;
    s.push('\n');
    Ok(s)
}

/// A value as `toml_edit` writes it: a single value, or a list of them.
fn edit_value(value: &toml::Value) -> toml_edit::Value {
    match value {
        toml::Value::String(s) => s.as_str().into(),
        toml::Value::Integer(i) => (*i).into(),
        toml::Value::Float(f) => (*f).into(),
        toml::Value::Boolean(b) => (*b).into(),
        toml::Value::Array(items) => items.iter().map(edit_value).collect::<toml_edit::Array>().into(),
        other => other.to_string().into(),
    }
}

/// The YAML addition: finds the deepest block mapping on the way to `parts`
/// that exists, and appends the missing keys at the end of its block, indented
/// as its other children are (two spaces more than it when it has none).
fn add_yaml(text: &str, parts: &[&str], value: &toml::Value) -> String {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    // Each `key:` line: its index, indent and path of keys.
    let mut keyed: Vec<(usize, usize, Vec<String>)> = Vec::new();
    let mut path: Vec<(usize, String)> = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some((indent, k, _)) = yaml_key_line(line) else {
            continue;
        };
        while path.last().is_some_and(|(d, _)| *d >= indent) {
            path.pop();
        }
        path.push((indent, k));
        keyed.push((i, indent, path.iter().map(|(_, k)| k.clone()).collect()));
    }
    // The deepest existing table on the way, as (line, indent); `None` is the root.
    let mut at: Option<(usize, usize)> = None;
    let mut have = 0;
    for depth in (1..parts.len()).rev() {
        if let Some((i, indent, _)) = keyed
            .iter()
            .find(|(_, _, p)| p.iter().map(String::as_str).eq(parts[..depth].iter().copied()))
        {
            at = Some((*i, *indent));
            have = depth;
            break;
        }
    }
    let (insert_after, child_indent) = match at {
        None => (lines.len(), 0),
        Some((i, indent)) => {
            let deeper = |l: &&str| {
                let b = l.trim_end_matches(['\n', '\r']);
                let t = b.trim_start();
                !t.is_empty() && !t.starts_with('#') && b.len() - t.len() > indent
            };
            let mut last = i;
            let mut child = None;
            for (j, l) in lines.iter().enumerate().skip(i + 1) {
                let b = l.trim_end_matches(['\n', '\r']);
                let t = b.trim_start();
                if t.is_empty() || t.starts_with('#') {
                    continue;
                }
                if !deeper(l) {
                    break;
                }
                child.get_or_insert(b.len() - t.len());
                last = j;
            }
            (last + 1, child.unwrap_or(indent + 2))
        }
    };
    let step = match at {
        Some((_, indent)) => child_indent - indent,
        None => 2,
    };
    let mut added = String::new();
    let mut indent = child_indent;
    for part in &parts[have..parts.len() - 1] {
        added.push_str(&format!("{:indent$}{part}:\n", ""));
        indent += step;
    }
    added.push_str(&format!(
        "{:indent$}{}: {}\n",
        "",
        parts[parts.len() - 1],
        yaml_scalar(value)
    ));
    let mut out = String::with_capacity(text.len() + added.len() + 1);
    for (j, l) in lines.iter().enumerate() {
        if j == insert_after {
            out.push_str(&added);
        }
        out.push_str(l);
        if j + 1 == insert_after && !l.ends_with('\n') {
            out.push('\n');
        }
    }
    if insert_after >= lines.len() {
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(&added);
    }
    out
}

/// A `key: value` (or `key:`) line of a YAML block mapping: its indentation,
/// its key (unquoted) and what follows the colon; `None` for any other line.
fn yaml_key_line(line: &str) -> Option<(usize, String, &str)> {
    let body = line.trim_end_matches(['\n', '\r']);
    let trimmed = body.trim_start();
    if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with('-') {
        return None;
    }
    let (k, rest) = trimmed.split_once(':')?;
    if !(rest.is_empty() || rest.starts_with([' ', '\t'])) {
        return None;
    }
    let key = k.trim().trim_matches(['"', '\'']).to_string();
    Some((body.len() - trimmed.len(), key, rest))
}

/// The YAML edit: finds `key` among block mappings by indentation and replaces
/// the value after its colon, keeping a trailing comment. A block list below the
/// key (`- 64` lines) goes, the new value taking its place on the key's line.
fn set_yaml(file: &str, text: &str, key: &str, value: &toml::Value) -> Result<String> {
    let target: Vec<&str> = key.split('.').collect();
    let mut path: Vec<(usize, String)> = Vec::new();
    let mut out = String::with_capacity(text.len() + 16);
    let mut done = false;
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        i += 1;
        let body = line.trim_end_matches(['\n', '\r']);
        if let (false, Some((indent, k, rest))) = (done, yaml_key_line(line)) {
            while path.last().is_some_and(|(i, _)| *i >= indent) {
                path.pop();
            }
            let here: Vec<&str> = path.iter().map(|(_, k)| k.as_str()).chain([k.as_str()]).collect();
            let (val, comment) = match rest.find(" #") {
                Some(c) => (&rest[..c], &rest[c..]),
                None => (rest, ""),
            };
            if here == target {
                let lead = &body[..body.len() - rest.len()];
                let end = &line[body.len()..];
                let (before, after) = match val.trim().is_empty() {
                    // `key:` with its value in the lines below: they go.
                    true => {
                        i = block_end(&lines, i, indent);
                        (" ", val)
                    }
                    false => (&val[..val.len() - val.trim_start().len()], &val[val.trim_end().len()..]),
                };
                out.push_str(&format!("{lead}{before}{}{after}{comment}{end}", yaml_scalar(value)));
                done = true;
                continue;
            }
            path.push((indent, k));
        }
        out.push_str(line);
    }
    if !done {
        return Err(bad(
            file,
            format!("could not find `{key}` as `key: value` lines to change (write it by hand)"),
        ));
    }
    Ok(out)
}

/// Where the block value of the `key:` line before `start` (indented `indent`)
/// ends: the lines indented deeper, or list items at its own indent; blank and
/// comment lines at the end of the block stay after it.
fn block_end(lines: &[&str], start: usize, indent: usize) -> usize {
    let mut end = start;
    let mut kept = start;
    while let Some(line) = lines.get(end) {
        let trimmed = line.trim_start();
        let depth = line.len() - trimmed.len();
        let blank = trimmed.trim().is_empty() || trimmed.starts_with('#');
        if blank {
            end += 1;
        } else if depth > indent || (depth == indent && trimmed.starts_with('-')) {
            end += 1;
            kept = end;
        } else {
            break;
        }
    }
    kept
}

/// Whether YAML reads `s`, written plain, as the string `s`: not as a number,
/// a boolean or null, nor (for PyYAML, which training scripts read params with,
/// and which follows YAML 1.1) as the booleans `yes`, `no`, `on`, `off`, `y`, `n`.
fn reads_as_text(s: &str) -> bool {
    const YAML_1_1: [&str; 6] = ["yes", "no", "on", "off", "y", "n"];
    let parsed = yaml_rust2::YamlLoader::load_from_str(s)
        .ok()
        .and_then(|docs| docs.into_iter().next());
    matches!(parsed, Some(yaml_rust2::Yaml::String(p)) if p == s)
        && !YAML_1_1.contains(&s.to_ascii_lowercase().as_str())
}

/// Whether `text`, typed as a `-S` value, is YAML's null (`null`, `~`), which
/// params here cannot hold.
pub fn is_null(text: &str) -> bool {
    matches!(
        yaml_rust2::YamlLoader::load_from_str(text)
            .ok()
            .and_then(|docs| docs.into_iter().next()),
        Some(yaml_rust2::Yaml::Null)
    ) && !text.trim().is_empty()
}

/// `value` as a YAML value on one line: numbers and booleans bare, strings
/// quoted when they would otherwise read as something else, lists in the flow
/// style with their strings quoted.
fn yaml_scalar(value: &toml::Value) -> String {
    match value {
        toml::Value::Array(items) => {
            let items: Vec<String> = items
                .iter()
                .map(|v| match v {
                    toml::Value::String(s) => serde_json::to_string(s).unwrap_or_default(),
                    v => yaml_scalar(v),
                })
                .collect();
            format!("[{}]", items.join(", "))
        }
        toml::Value::String(s) => {
            let plain = !s.is_empty()
                && reads_as_text(s)
                && !s.contains(": ")
                && !s.contains(" #")
                && !s.starts_with(|c: char| "!&*{}[]|>'\"%@`#,?:- ".contains(c))
                && !s.ends_with([' ', ':']);
            match plain {
                true => s.clone(),
                false => serde_json::to_string(s).unwrap_or_default(),
            }
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [`set_value`] on a text parsed here.
    fn set_in(file: &str, text: &str, key: &str, value: &toml::Value) -> Result<String> {
        set_value(file, text, &parse(file, text)?, key, value)
    }

    /// YAML's merge key, as PyYAML applies it: keys set here win, then the
    /// mappings merged, earlier ones first.
    #[test]
    fn yaml_merge_keys_apply() {
        let yaml = "base: &base\n  lr: 0.1\n  layers: 3\nextra: &extra\n  layers: 9\n  drop: 0.5\n\
                    train:\n  <<: *base\n  lr: 0.2\nboth:\n  <<: [*base, *extra]\n";
        let p = parse("params.yaml", yaml).unwrap();
        assert_eq!(lookup(&p, "train.lr").and_then(toml::Value::as_float), Some(0.2));
        assert_eq!(lookup(&p, "train.layers").and_then(toml::Value::as_integer), Some(3));
        assert!(lookup(&p, "train.<<").is_none());
        assert_eq!(lookup(&p, "both.layers").and_then(toml::Value::as_integer), Some(3));
        assert_eq!(lookup(&p, "both.drop").and_then(toml::Value::as_float), Some(0.5));
        assert!(parse("params.yaml", "a:\n  <<: 3\n").is_err());
        // Setting a merged value writes it into the mapping; the anchor stays.
        let set = set_value("params.yaml", yaml, &p, "train.layers", &toml::Value::Integer(5)).unwrap();
        let after = parse("params.yaml", &set).unwrap();
        assert_eq!(
            lookup(&after, "train.layers").and_then(toml::Value::as_integer),
            Some(5)
        );
        assert_eq!(lookup(&after, "base.layers").and_then(toml::Value::as_integer), Some(3));
        assert_eq!(lookup(&after, "both.layers").and_then(toml::Value::as_integer), Some(3));
    }

    /// What Python's `json.dump` and PyYAML write for a NaN or an infinite
    /// loss reads as such; the same words inside strings stay text.
    #[test]
    fn nan_and_infinity_as_python_writes_them() {
        let json = r#"{"loss": NaN, "best": -Infinity, "worst": Infinity, "note": "NaN \" Infinity", "v": [NaN]}"#;
        let p = parse("m.json", json).unwrap();
        assert!(p["loss"].as_float().unwrap().is_nan());
        assert_eq!(p["best"].as_float(), Some(f64::NEG_INFINITY));
        assert_eq!(p["worst"].as_float(), Some(f64::INFINITY));
        assert_eq!(p["note"].as_str(), Some("NaN \" Infinity"));
        assert!(p["v"].as_array().unwrap()[0].as_float().unwrap().is_nan());
        let p = parse("m.yaml", "loss: .nan\nbest: -.inf\nworst: .Inf\nname: NaN\n").unwrap();
        assert!(p["loss"].as_float().unwrap().is_nan());
        assert_eq!(p["best"].as_float(), Some(f64::NEG_INFINITY));
        assert_eq!(p["worst"].as_float(), Some(f64::INFINITY));
        assert_eq!(p["name"].as_str(), Some("NaN"));
        assert!(parse("m.json", "{\"a\": NaNa}").is_err());
    }

    #[test]
    fn values_are_added_where_their_table_is() {
        let yaml = "# knobs\ntrain:\n    lr: 0.1  # rate\n    opt:\n        name: sgd\n\nseed: 1";
        let parsed = parse("params.yaml", yaml).unwrap();
        let add = |key: &str, v: &str| add_value("params.yaml", yaml, &parsed, key, &typed_value(v));
        assert_eq!(
            add("train.epochs", "5").unwrap(),
            "# knobs\ntrain:\n    lr: 0.1  # rate\n    opt:\n        name: sgd\n    epochs: 5\n\nseed: 1"
        );
        assert_eq!(
            add("train.opt.momentum", "0.9").unwrap(),
            "# knobs\ntrain:\n    lr: 0.1  # rate\n    opt:\n        name: sgd\n        momentum: 0.9\n\nseed: 1"
        );
        assert_eq!(
            add("model.depth", "3").unwrap(),
            format!("{yaml}\nmodel:\n  depth: 3\n")
        );
        assert_eq!(
            add("train.sched.kind", "cos").unwrap(),
            "# knobs\ntrain:\n    lr: 0.1  # rate\n    opt:\n        name: sgd\n    sched:\n        kind: cos\n\nseed: 1"
        );
        assert!(
            add("train.lr", "1")
                .unwrap_err()
                .to_string()
                .contains("already has `train.lr`")
        );
        assert!(
            add("seed.x", "1")
                .unwrap_err()
                .to_string()
                .contains("`seed` is not a table")
        );
        let toml = "name = 'x'\n[train]\nlr = 0.1\n";
        let parsed = parse("p.toml", toml).unwrap();
        let t = add_value("p.toml", toml, &parsed, "train.epochs", &typed_value("5")).unwrap();
        assert_eq!(t, "name = 'x'\n[train]\nlr = 0.1\nepochs = 5\n");
        let t = add_value("p.toml", toml, &parsed, "model.kind", &typed_value("cnn")).unwrap();
        assert_eq!(parse("p.toml", &t).unwrap()["model"]["kind"].as_str(), Some("cnn"));
        // Into an inline table, and a new table inside one: inline too.
        let toml = "train = { lr = 0.1 }\n";
        let parsed = parse("p.toml", toml).unwrap();
        let t = add_value("p.toml", toml, &parsed, "train.epochs", &typed_value("5")).unwrap();
        assert_eq!(t, "train = { lr = 0.1, epochs = 5 }\n");
        let t = add_value("p.toml", toml, &parsed, "train.opt.name", &typed_value("sgd")).unwrap();
        assert_eq!(
            parse("p.toml", &t).unwrap()["train"]["opt"]["name"].as_str(),
            Some("sgd")
        );
        assert!(!t.contains("[train"), "{t}");
        let json = r#"{"a": {"b": 1}}"#;
        let j = add_value(
            "p.json",
            json,
            &parse("p.json", json).unwrap(),
            "a.c.d",
            &typed_value("true"),
        )
        .unwrap();
        assert_eq!(
            j,
            "{\n  \"a\": {\n    \"b\": 1,\n    \"c\": {\n      \"d\": true\n    }\n  }\n}\n"
        );
    }

    #[test]
    fn values_are_removed_with_what_belongs_to_them() {
        let yaml = "# knobs\ntrain:\n  lr: 0.1  # rate\n  layers:\n  - 64\n  - 32\n  opt:\n    name: sgd\n    # momentum next\n    m: 0.9\n\n# the seed\nseed: 1\n";
        let parsed = parse("params.yaml", yaml).unwrap();
        let remove = |key: &str| remove_value("params.yaml", yaml, &parsed, key);
        assert_eq!(
            remove("train.lr").unwrap(),
            "# knobs\ntrain:\n  layers:\n  - 64\n  - 32\n  opt:\n    name: sgd\n    # momentum next\n    m: 0.9\n\n# the seed\nseed: 1\n"
        );
        assert_eq!(
            remove("train.layers").unwrap(),
            "# knobs\ntrain:\n  lr: 0.1  # rate\n  opt:\n    name: sgd\n    # momentum next\n    m: 0.9\n\n# the seed\nseed: 1\n"
        );
        // A whole table, its comments inside too; the blank line and the comment
        // before the next key stay.
        assert_eq!(
            remove("train.opt").unwrap(),
            "# knobs\ntrain:\n  lr: 0.1  # rate\n  layers:\n  - 64\n  - 32\n\n# the seed\nseed: 1\n"
        );
        assert_eq!(remove("seed").unwrap().lines().last(), Some("# the seed"));
        assert!(
            remove("train.nope")
                .unwrap_err()
                .to_string()
                .contains("has no `train.nope`")
        );

        let toml = "seed = 1 # fixed\n[train]\nlr = 0.1\nepochs = 3\n";
        assert_eq!(
            remove_value("p.toml", toml, &parse("p.toml", toml).unwrap(), "train.lr").unwrap(),
            "seed = 1 # fixed\n[train]\nepochs = 3\n"
        );
        let json = "{\"z\": 1, \"a\": {\"x\": 1, \"y\": 2}, \"m\": 3}";
        let out = remove_value("p.json", json, &parse("p.json", json).unwrap(), "a.x").unwrap();
        assert_eq!(out, "{\n  \"z\": 1,\n  \"a\": {\n    \"y\": 2\n  },\n  \"m\": 3\n}\n");
    }

    #[test]
    fn the_three_formats_give_the_same_values() {
        let y = parse(
            "params.yaml",
            "train:\n  lr: 0.01\n  epochs: 3\n  layers: [8, 4]\nname: x\n",
        )
        .ok();
        let t = parse(
            "p.toml",
            "name = 'x'\n[train]\nlr = 0.01\nepochs = 3\nlayers = [8, 4]\n",
        )
        .ok();
        let j = parse(
            "p.json",
            r#"{"train": {"lr": 0.01, "epochs": 3, "layers": [8, 4]}, "name": "x"}"#,
        )
        .ok();
        assert!(y.is_some() && y == t && t == j, "{y:?} {t:?} {j:?}");
        let y = y.unwrap_or_default();
        assert_eq!(lookup(&y, "train.epochs"), Some(&toml::Value::Integer(3)));
        assert_eq!(lookup(&y, "train.missing"), None);
        assert_eq!(lookup(&y, "name.deeper"), None);
        assert!(parse("params.yaml", "a: [1, 2\n").is_err());
    }

    #[test]
    fn values_are_set_in_place() {
        let yaml = "# training\ntrain:\n  lr: 0.01  # learning rate\n  name: base\n  nested:\n    lr: 5\nlr: 1\n";
        let set = |key: &str, v: &str| set_in("params.yaml", yaml, key, &typed_value(v));
        assert_eq!(
            set("train.lr", "0.2").unwrap(),
            yaml.replace("lr: 0.01  # learning rate", "lr: 0.2  # learning rate")
        );
        assert_eq!(set("lr", "3").unwrap(), yaml.replace("\nlr: 1\n", "\nlr: 3\n"));
        assert_eq!(set("train.nested.lr", "6").unwrap(), yaml.replace("lr: 5", "lr: 6"));
        assert_eq!(
            set("train.name", "a: b").unwrap(),
            yaml.replace("name: base", "name: \"a: b\"")
        );
        assert_eq!(set("train.name", "007").unwrap(), yaml.replace("name: base", "name: 7"));
        let quoted = set_in("params.yaml", yaml, "train.name", &toml::Value::String("007".into())).unwrap();
        assert_eq!(quoted, yaml.replace("name: base", "name: \"007\""));
        assert!(
            set("train.nope", "1")
                .unwrap_err()
                .to_string()
                .contains("has no value `train.nope`")
        );
        assert!(
            set("train", "1")
                .unwrap_err()
                .to_string()
                .contains("`train` is a table; only single values and lists can be set")
        );
        let toml = "[train]\nlr = 0.01 # rate\nepochs = 3\n";
        let t = set_in("p.toml", toml, "train.epochs", &typed_value("5")).unwrap();
        assert_eq!(t, "[train]\nlr = 0.01 # rate\nepochs = 5\n");
        let t = set_in("p.toml", toml, "train.lr", &typed_value("0.5")).unwrap();
        assert_eq!(t, "[train]\nlr = 0.5 # rate\nepochs = 3\n");
        let json = set_in("p.json", r#"{"a": {"b": 1}}"#, "a.b", &typed_value("true")).unwrap();
        assert_eq!(json, "{\n  \"a\": {\n    \"b\": true\n  }\n}\n");
        // The keys keep their order.
        let json = set_in("p.json", r#"{"z": 1, "a": 2}"#, "a", &typed_value("3")).unwrap();
        assert_eq!(json, "{\n  \"z\": 1,\n  \"a\": 3\n}\n");
    }

    /// Hydra's lists (`-S train.layers=[64,32]`): read from the command line, and
    /// written over a list in any of the three formats, a block list's lines
    /// replaced by the flow list on the key's line.
    #[test]
    fn lists_are_read_and_set() {
        use toml::Value::{Array, Boolean, Float, Integer, String as Text};
        assert_eq!(typed_value("[64, 32]"), Array(vec![Integer(64), Integer(32)]));
        assert_eq!(
            typed_value("[a, 0.5, true, [1]]"),
            Array(vec![
                Text("a".into()),
                Float(0.5),
                Boolean(true),
                Array(vec![Integer(1)])
            ])
        );
        assert_eq!(typed_value("[]"), Array(vec![]));
        // Not a list: kept as the text typed.
        assert_eq!(typed_value("[1, 2"), Text("[1, 2".into()));
        assert_eq!(typed_value("{a: 1}"), Text("{a: 1}".into()));
        assert_eq!(typed_value("a,b"), Text("a,b".into()));
        // Quoted: a string, quotes off, whatever it looks like.
        assert_eq!(typed_value("\"0.1\""), Text("0.1".into()));
        assert_eq!(typed_value("'null'"), Text("null".into()));
        assert!(is_null("null") && is_null("~") && !is_null("'null'") && !is_null(""));
        // Strings YAML (or PyYAML) would read as something else are written quoted.
        let yaml = "name: x\n";
        for (typed, written) in [
            ("yes", "\"yes\""),
            ("'null'", "\"null\""),
            ("'3'", "\"3\""),
            ("plain", "plain"),
        ] {
            let out = set_in("params.yaml", yaml, "name", &typed_value(typed)).unwrap();
            assert_eq!(out, format!("name: {written}\n"), "{typed}");
        }

        let yaml = "train:\n  layers:  # sizes\n  - 64\n  - 32\n\n  # next\n  lr: 0.1\n  flow: [1, 2]\nseed: 1\n";
        let set = |key: &str, v: &str| set_in("params.yaml", yaml, key, &typed_value(v));
        assert_eq!(
            set("train.layers", "[8, 4]").unwrap(),
            "train:\n  layers: [8, 4]  # sizes\n\n  # next\n  lr: 0.1\n  flow: [1, 2]\nseed: 1\n"
        );
        assert_eq!(
            set("train.flow", "[x, \"y, z\"]").unwrap(),
            yaml.replace("flow: [1, 2]", "flow: [\"x\", \"y, z\"]")
        );
        // A list may take the place of a single value, and the other way round.
        assert_eq!(set("seed", "[1, 2]").unwrap(), yaml.replace("seed: 1", "seed: [1, 2]"));
        assert_eq!(
            set("train.layers", "3").unwrap(),
            "train:\n  layers: 3  # sizes\n\n  # next\n  lr: 0.1\n  flow: [1, 2]\nseed: 1\n"
        );
        let toml = "[train]\nlayers = [64, 32] # sizes\n";
        let t = set_in("p.toml", toml, "train.layers", &typed_value("[[1, 2], [3]]")).unwrap();
        assert_eq!(t, "[train]\nlayers = [[1, 2], [3]] # sizes\n");
        let json = set_in("p.json", r#"{"a": [1]}"#, "a", &typed_value("[2, 3]")).unwrap();
        assert_eq!(json, "{\n  \"a\": [\n    2,\n    3\n  ]\n}\n");
    }
}
