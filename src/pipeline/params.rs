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
        let v: serde_json::Value = serde_json::from_str(text).map_err(|e| bad(file, e.to_string()))?;
        return match from_json(file, &v)? {
            toml::Value::Table(t) => Ok(t),
            _ => Err(bad(file, "the top level must be an object")),
        };
    }
    let docs = yaml_rust2::YamlLoader::load_from_str(text).map_err(|e| bad(file, e.to_string()))?;
    match docs.first() {
        None => Ok(Params::new()),
        Some(doc) => match from_yaml(file, doc)? {
            toml::Value::Table(t) => Ok(t),
            _ => Err(bad(file, "the top level must be a mapping")),
        },
    }
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
        J::String(s) => toml::Value::String(s.clone()),
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
        Y::Real(s) => toml::Value::Float(s.parse().map_err(|_| bad(file, format!("bad number `{s}`")))?),
        Y::Integer(i) => toml::Value::Integer(*i),
        Y::String(s) => toml::Value::String(s.clone()),
        Y::Boolean(b) => toml::Value::Boolean(*b),
        Y::Array(a) => toml::Value::Array(a.iter().map(|x| from_yaml(file, x)).collect::<Result<_>>()?),
        Y::Hash(h) => {
            let mut t = toml::Table::new();
            for (k, v) in h {
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
        let missing = || PipelineError::UnknownParam {
            stage: stage.to_string(),
            file: file.to_string(),
            key: key.to_string(),
        };
        match self.files.get(file) {
            Some(Some(p)) => lookup(p, key).cloned().ok_or_else(|| missing().into()),
            _ => Err(missing().into()),
        }
    }
}

/// A value typed on the command line (`dvt exp run -S KEY=VALUE`), read as a
/// YAML scalar, as DVC reads it: `0.1`, `3`, `true` keep their type; anything
/// else is a string.
pub fn typed_value(text: &str) -> toml::Value {
    let scalar = yaml_rust2::YamlLoader::load_from_str(text)
        .ok()
        .and_then(|docs| docs.into_iter().next());
    match scalar {
        Some(yaml_rust2::Yaml::Integer(i)) => toml::Value::Integer(i),
        Some(yaml_rust2::Yaml::Real(r)) => r
            .parse()
            .map(toml::Value::Float)
            .unwrap_or_else(|_| toml::Value::String(text.to_string())),
        Some(yaml_rust2::Yaml::Boolean(b)) => toml::Value::Boolean(b),
        _ => toml::Value::String(text.to_string()),
    }
}

/// `text` of params file `file` with the value at dotted `key` replaced by
/// `value`, the rest of the file (comments, order, layout) as it was. The key
/// must exist and hold a string, number or boolean.
pub fn set_value(file: &str, text: &str, key: &str, value: &toml::Value) -> Result<String> {
    let missing = || {
        bad(
            file,
            format!("has no value `{key}` to set (only existing values can be set)"),
        )
    };
    let current = lookup(&parse(file, text)?, key).cloned().ok_or_else(missing)?;
    if current.is_array() || current.is_table() {
        return Err(bad(
            file,
            format!("`{key}` is a list or table; only single values can be set"),
        ));
    }
    let lower = file.to_ascii_lowercase();
    let out = if lower.ends_with(".toml") {
        let mut doc: toml_edit::DocumentMut = text
            .parse()
            .map_err(|e: toml_edit::TomlError| bad(file, e.to_string()))?;
        let mut item = doc.as_item_mut();
        for part in key.split('.') {
            item = item.get_mut(part).ok_or_else(missing)?;
        }
        let new = match value {
            toml::Value::String(s) => toml_edit::value(s.as_str()),
            toml::Value::Integer(i) => toml_edit::value(*i),
            toml::Value::Float(f) => toml_edit::value(*f),
            toml::Value::Boolean(b) => toml_edit::value(*b),
            other => toml_edit::value(other.to_string()),
        };
        // Keep the comment after the old value.
        let decor = item.as_value().map(|v| v.decor().clone());
        *item = new;
        if let (Some(decor), Some(v)) = (decor, item.as_value_mut()) {
            *v.decor_mut() = decor;
        }
        doc.to_string()
    } else if lower.ends_with(".json") {
        let mut doc: serde_json::Value = serde_json::from_str(text).map_err(|e| bad(file, e.to_string()))?;
        let mut cur = &mut doc;
        for part in key.split('.') {
            cur = cur.get_mut(part).ok_or_else(missing)?;
        }
        *cur = serde_json::to_value(value).map_err(|e| bad(file, e.to_string()))?;
        let mut s = serde_json::to_string_pretty(&doc).map_err(|e| bad(file, e.to_string()))?;
        s.push('\n');
        s
    } else {
        set_yaml(file, text, key, value)?
    };
    // What was written must read back as the value asked for.
    if lookup(&parse(file, &out)?, key) != Some(value) {
        return Err(bad(file, format!("could not set `{key}` here (write it by hand)")));
    }
    Ok(out)
}

/// The YAML edit: finds `key` among block mappings by indentation and replaces
/// the scalar after its colon, keeping a trailing comment.
fn set_yaml(file: &str, text: &str, key: &str, value: &toml::Value) -> Result<String> {
    let target: Vec<&str> = key.split('.').collect();
    let mut path: Vec<(usize, String)> = Vec::new();
    let mut out = String::with_capacity(text.len() + 16);
    let mut done = false;
    for line in text.split_inclusive('\n') {
        let body = line.trim_end_matches(['\n', '\r']);
        let indent = body.len() - body.trim_start().len();
        let trimmed = body.trim_start();
        let is_key = !trimmed.is_empty() && !trimmed.starts_with('#') && !trimmed.starts_with('-');
        if let (false, true, Some((k, rest))) = (done, is_key, trimmed.split_once(':'))
            && (rest.is_empty() || rest.starts_with([' ', '\t']))
        {
            let k = k.trim().trim_matches(['"', '\'']).to_string();
            while path.last().is_some_and(|(i, _)| *i >= indent) {
                path.pop();
            }
            let here: Vec<&str> = path.iter().map(|(_, k)| k.as_str()).chain([k.as_str()]).collect();
            let (val, comment) = match rest.find(" #") {
                Some(c) => (&rest[..c], &rest[c..]),
                None => (rest, ""),
            };
            if here == target && !val.trim().is_empty() {
                let lead = &body[..body.len() - rest.len()];
                let end = &line[body.len()..];
                let before = &val[..val.len() - val.trim_start().len()];
                let after = &val[val.trim_end().len()..];
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

/// `value` as a YAML scalar: numbers and booleans bare, strings quoted when
/// they would otherwise read as something else.
fn yaml_scalar(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => {
            let plain = !s.is_empty()
                && matches!(typed_value(s), toml::Value::String(_))
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
        let set = |key: &str, v: &str| set_value("params.yaml", yaml, key, &typed_value(v));
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
        let quoted = set_value("params.yaml", yaml, "train.name", &toml::Value::String("007".into())).unwrap();
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
                .contains("is a list or table")
        );
        let toml = "[train]\nlr = 0.01 # rate\nepochs = 3\n";
        let t = set_value("p.toml", toml, "train.epochs", &typed_value("5")).unwrap();
        assert_eq!(t, "[train]\nlr = 0.01 # rate\nepochs = 5\n");
        let t = set_value("p.toml", toml, "train.lr", &typed_value("0.5")).unwrap();
        assert_eq!(t, "[train]\nlr = 0.5 # rate\nepochs = 3\n");
        let json = set_value("p.json", r#"{"a": {"b": 1}}"#, "a.b", &typed_value("true")).unwrap();
        assert_eq!(json, "{\n  \"a\": {\n    \"b\": true\n  }\n}\n");
    }
}
