//! `${KEY}` in `dvt.toml`, as in DVC's `dvc.yaml`: a string of a stage may name
//! a value of `vars` in `dvt.toml` (a table, or a list of tables and of files),
//! or of the default params file (`params.yaml`, at the repository root); a
//! dotted key reaches into nested tables. Values taken from a file become params
//! of the stage, so a change to them makes the stage stale. `\${` writes a
//! literal `${`.

use std::collections::BTreeSet;

use super::params::lookup;
use super::{ParamRef, bad};
use crate::error::Result;

/// Values for `${KEY}` from one place.
#[derive(Debug, Clone)]
pub(super) struct Source {
    /// The repo-relative file they were read from; `None` for a table in `dvt.toml`.
    pub file: Option<String>,
    /// For `vars` of a stage, the stage.
    pub stage: Option<String>,
    /// The values.
    pub values: toml::Table,
}

impl Source {
    fn name(&self) -> String {
        match (&self.file, &self.stage) {
            (Some(f), _) => f.clone(),
            (None, Some(s)) => format!("`vars` of stage `{s}`"),
            (None, None) => "`[vars]`".into(),
        }
    }
}

/// Where `${KEY}` values come from.
pub(super) struct Vars<'a> {
    /// `vars` of `dvt.toml` and the default params file, in the order they were
    /// read; no top-level key is in two of them (see [`Vars::check`]).
    pub sources: &'a [Source],
    /// In a `foreach` stage: `item` (and `key`, for a table) of the case at hand.
    pub locals: Option<&'a toml::Table>,
}

/// The cases of a `foreach` stage (`[stages.NAME]` with `foreach` and a `do`
/// table): for each, the suffix of its name (`NAME@SUFFIX`) and its locals.
/// `foreach` is a list (`${item}`; a case is named by its value, or its index if
/// that is not a scalar), a table (`${key}`, `${item}`; named by its key), or a
/// string `${KEY}` naming either.
pub(super) fn cases(stage: &str, t: &toml::Table, vars: &Vars) -> Result<Vec<(String, toml::Table)>> {
    const WHAT: &str = "`foreach` is a list, a table, or a string `${KEY}` naming one";
    if let Some(k) = t.keys().find(|k| *k != "foreach" && *k != "do") {
        return Err(bad(
            Some(stage),
            format!("a `foreach` stage has only `foreach` and `do` (the stage), not `{k}`"),
        ));
    }
    if !t.get("do").is_some_and(toml::Value::is_table) {
        return Err(bad(
            Some(stage),
            "a `foreach` stage needs a `do` table: the stage to repeat",
        ));
    }
    let over = match t.get("foreach") {
        Some(v) => named(stage, v, vars, WHAT)?,
        None => return Err(bad(Some(stage), "a stage with `do` needs `foreach`")),
    };
    let mut out = Vec::new();
    match over {
        toml::Value::Array(items) => {
            for (i, item) in items.into_iter().enumerate() {
                let suffix = scalar_text(&item).unwrap_or_else(|| i.to_string());
                let mut locals = toml::Table::new();
                locals.insert("item".into(), item);
                out.push((suffix, locals));
            }
        }
        toml::Value::Table(items) => {
            for (k, item) in items {
                let mut locals = toml::Table::new();
                locals.insert("key".into(), toml::Value::String(k.clone()));
                locals.insert("item".into(), item);
                out.push((k, locals));
            }
        }
        _ => return Err(bad(Some(stage), WHAT)),
    }
    check_cases(stage, "foreach", &out)?;
    Ok(out)
}

/// The cases of a `matrix` stage, as in DVC: `matrix` is a table of lists (or
/// of strings `${KEY}` naming lists); a case takes one value from each, as
/// `${item.NAME}`, and is named by them joined with `-` (a value that is not a
/// scalar by its list's name and index: `model0`). Lists are taken in the
/// order of their names.
pub(super) fn matrix_cases(stage: &str, m: &toml::Value, vars: &Vars) -> Result<Vec<(String, toml::Table)>> {
    const WHAT: &str = "`matrix` is a table of lists (or of strings `${KEY}` naming lists)";
    let m = m.as_table().ok_or_else(|| bad(Some(stage), WHAT))?;
    let mut cases: Vec<(Vec<String>, toml::Table)> = vec![(Vec::new(), toml::Table::new())];
    for (name, list) in m {
        let toml::Value::Array(values) = named(stage, list, vars, WHAT)? else {
            return Err(bad(Some(stage), WHAT));
        };
        let mut next = Vec::new();
        for (parts, item) in &cases {
            for (i, v) in values.iter().enumerate() {
                let mut parts = parts.clone();
                parts.push(scalar_text(v).unwrap_or_else(|| format!("{name}{i}")));
                let mut item = item.clone();
                item.insert(name.clone(), v.clone());
                next.push((parts, item));
            }
        }
        cases = next;
    }
    let out: Vec<(String, toml::Table)> = match m.is_empty() {
        true => Vec::new(),
        false => cases
            .into_iter()
            .map(|(parts, item)| {
                let mut locals = toml::Table::new();
                locals.insert("item".into(), toml::Value::Table(item));
                (parts.join("-"), locals)
            })
            .collect(),
    };
    check_cases(stage, "matrix", &out)?;
    Ok(out)
}

/// `v`, or the value a string `${KEY}` names.
fn named(stage: &str, v: &toml::Value, vars: &Vars, what: &str) -> Result<toml::Value> {
    let toml::Value::String(s) = v else {
        return Ok(v.clone());
    };
    let key = s
        .trim()
        .strip_prefix("${")
        .and_then(|r| r.strip_suffix('}'))
        .map(str::trim)
        .ok_or_else(|| bad(Some(stage), what))?;
    vars.find(key)
        .map(|(v, _)| v.clone())
        .ok_or_else(|| undefined(stage, key))
}

/// A string, number or boolean as text; `None` for a list or table.
fn scalar_text(v: &toml::Value) -> Option<String> {
    match v {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Array(_) | toml::Value::Table(_) => None,
        other => Some(other.to_string()),
    }
}

/// Refuses no cases, a case twice, and case names that cannot name a stage.
fn check_cases(stage: &str, what: &str, out: &[(String, toml::Table)]) -> Result<()> {
    if out.is_empty() {
        return Err(bad(Some(stage), format!("`{what}` has nothing to repeat over")));
    }
    let mut seen = BTreeSet::new();
    for (suffix, _) in out {
        if !seen.insert(suffix.as_str()) {
            return Err(bad(Some(stage), format!("`{what}` has the case `{suffix}` twice")));
        }
        let ok = !suffix.is_empty()
            && suffix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if !ok {
            return Err(bad(
                Some(stage),
                format!("`{what}` case `{suffix}` cannot name a stage (letters, digits, `_`, `-`, `.`)"),
            ));
        }
    }
    Ok(())
}

fn undefined(stage: &str, key: &str) -> crate::Error {
    bad(
        Some(stage),
        format!(
            "`${{{key}}}` is defined nowhere: not in `vars` of dvt.toml, a vars file or {}",
            super::DEFAULT_PARAMS
        ),
    )
}

impl Vars<'_> {
    /// Refuses a top-level key defined in both places: which one `${KEY}` means
    /// would otherwise depend on a rule the reader has to know.
    pub fn check(&self, stage: Option<&str>) -> Result<()> {
        for (i, a) in self.sources.iter().enumerate() {
            for b in &self.sources[i + 1..] {
                if let Some(k) = a.values.keys().find(|k| b.values.contains_key(*k)) {
                    return Err(bad(
                        stage,
                        format!("`{k}` is defined both in {} and in {}", a.name(), b.name()),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Every string in `v` with its `${KEY}`s replaced; keys read from a file are
    /// added to `tracked`.
    pub fn value(&self, stage: &str, v: &toml::Value, tracked: &mut BTreeSet<ParamRef>) -> Result<toml::Value> {
        Ok(match v {
            toml::Value::String(s) => toml::Value::String(self.string(stage, s, tracked)?),
            toml::Value::Array(a) => {
                toml::Value::Array(a.iter().map(|x| self.value(stage, x, tracked)).collect::<Result<_>>()?)
            }
            toml::Value::Table(t) => toml::Value::Table(
                t.iter()
                    .map(|(k, x)| Ok((k.clone(), self.value(stage, x, tracked)?)))
                    .collect::<Result<_>>()?,
            ),
            other => other.clone(),
        })
    }

    fn string(&self, stage: &str, s: &str, tracked: &mut BTreeSet<ParamRef>) -> Result<String> {
        if !s.contains("${") {
            return Ok(s.to_string());
        }
        let mut out = String::with_capacity(s.len());
        let mut rest = s;
        while let Some(i) = rest.find("${") {
            if rest[..i].ends_with('\\') {
                out.push_str(&rest[..i - 1]);
                out.push_str("${");
                rest = &rest[i + 2..];
                continue;
            }
            out.push_str(&rest[..i]);
            let Some(end) = rest[i..].find('}') else {
                return Err(bad(Some(stage), format!("`{s}`: `${{` without a closing `}}`")));
            };
            let key = rest[i + 2..i + end].trim();
            out.push_str(&self.lookup(stage, key, tracked)?);
            rest = &rest[i + end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    /// The value of `key`, and the file it comes from (`None`: `dvt.toml`).
    fn find(&self, key: &str) -> Option<(&toml::Value, Option<&str>)> {
        if let Some(v) = self.locals.and_then(|l| lookup(l, key)) {
            return Some((v, None));
        }
        self.sources
            .iter()
            .find_map(|s| lookup(&s.values, key).map(|v| (v, s.file.as_deref())))
    }

    fn lookup(&self, stage: &str, key: &str, tracked: &mut BTreeSet<ParamRef>) -> Result<String> {
        if key.is_empty() || key.split('.').any(str::is_empty) {
            return Err(bad(Some(stage), format!("`${{{key}}}`: not a key")));
        }
        let (value, file) = self.find(key).ok_or_else(|| undefined(stage, key))?;
        let text = match value {
            toml::Value::String(s) => s.clone(),
            toml::Value::Array(_) | toml::Value::Table(_) => {
                let what = if value.is_array() { "list" } else { "table" };
                return Err(bad(
                    Some(stage),
                    format!("`${{{key}}}` is a {what}; only strings, numbers and booleans go into a string"),
                ));
            }
            other => other.to_string(),
        };
        if let Some(file) = file {
            tracked.insert(ParamRef {
                file: file.to_string(),
                key: key.to_string(),
            });
        }
        Ok(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(file: Option<&str>, text: &str) -> Source {
        Source {
            file: file.map(str::to_string),
            stage: None,
            values: toml::from_str(text).unwrap(),
        }
    }

    #[test]
    fn values_are_put_in_and_those_from_files_are_tracked() {
        let sources = [
            source(None, "model = 'resnet'\n[paths]\nout = 'models'"),
            source(Some("config.yaml"), "seed = 7"),
            source(
                Some("params.yaml"),
                "[train]\nlr = 0.001\nepochs = 3\nwarm = true\nsizes = [1, 2]",
            ),
        ];
        let vars = Vars {
            sources: &sources,
            locals: None,
        };
        vars.check(None).unwrap();
        let mut tracked = BTreeSet::new();
        let s = |x: &str, t: &mut BTreeSet<ParamRef>| vars.string("s", x, t);
        assert_eq!(
            s(
                "train --lr ${train.lr} -n ${ train.epochs } ${train.warm} --seed ${seed}",
                &mut tracked
            )
            .unwrap(),
            "train --lr 0.001 -n 3 true --seed 7"
        );
        assert_eq!(
            s("${paths.out}/${model}.bin \\${HOME}", &mut tracked).unwrap(),
            "models/resnet.bin ${HOME}"
        );
        let names: Vec<String> = tracked.into_iter().map(|p| format!("{}:{}", p.file, p.key)).collect();
        assert_eq!(
            names,
            [
                "config.yaml:seed",
                "params.yaml:train.epochs",
                "params.yaml:train.lr",
                "params.yaml:train.warm"
            ]
        );
        let err = |x: &str| s(x, &mut BTreeSet::new()).unwrap_err().to_string();
        assert!(err("${train.nope}").contains("`${train.nope}` is defined nowhere"));
        assert!(err("${train.sizes}").contains("is a list; only strings"));
        assert!(err("${train.lr").contains("without a closing"));
        assert!(err("${}").contains("not a key"));
        let clash = [
            source(None, "model = 'resnet'"),
            source(Some("params.yaml"), "model = 'x'"),
        ];
        let both = Vars {
            sources: &clash,
            locals: None,
        };
        assert!(
            both.check(None)
                .unwrap_err()
                .to_string()
                .contains("`model` is defined both in `[vars]` and in params.yaml")
        );
    }
}
