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
}
