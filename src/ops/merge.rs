//! Merging pointer files and `dvt.lock`: the git merge driver that
//! `dvt install-hooks` sets up. (`dvt.lock` merges stage by stage, with the same
//! three-way rule as a directory's files; see [`merge_files`].)
//!
//! Two branches that change different files of one tracked directory both change
//! the `id` line of its pointer, so git's line merge reports a conflict although
//! the data does not have one. The driver merges the directory's manifests
//! instead, path by path, the way git merges trees: a file changed on one branch
//! only takes that branch's version; a file changed the same way on both is kept;
//! a file changed differently on both (or changed on one and deleted on the other)
//! is a conflict. The merged manifest is stored in the cache and the merged
//! pointer names it; `dvt checkout` then brings the workspace to it.
//!
//! A tracked file changed on both branches cannot be merged (its content is
//! opaque), nor can imports that follow different sources. Those, and every
//! directory conflict, leave git's conflict markers in the pointer, and the
//! driver says which data paths conflict.
//!
//! Manifests not in the cache are fetched from the default remote, when there is
//! one; a version that can be found nowhere is a conflict too, never a guess.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::Path;

use serde::Serialize;

use crate::error::Result;
use crate::manifest::{Entry, Manifest};
use crate::pipeline::lock::Lock;
use crate::pointer::{Kind, Pointer};
use crate::repo::Repo;
use crate::snapshot::Objects;

/// What the merge driver did with one file.
#[derive(Debug, Clone, Serialize)]
pub struct MergeReport {
    /// The file, as git names it.
    pub file: String,
    /// What the merge produced, when it is clean.
    pub merged: Option<Merged>,
    /// Why it could not be merged, one line per reason; empty when clean.
    pub conflicts: Vec<String>,
}

/// A clean merge's result.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Merged {
    /// A pointer file.
    Pointer(Box<Pointer>),
    /// `dvt.lock`, with this many stages.
    Lock {
        /// Stages recorded.
        stages: usize,
    },
}

/// The merge driver: merges the texts in the files `base` (the common
/// ancestor's; empty when there is none), `ours` and `theirs` of the pointer
/// file or `dvt.lock` that git names `name`, and leaves the result in `ours`:
/// the merge, or git's conflict markers around the lines that differ. Without a
/// repository (`None`), only merges that need no directory listing succeed.
pub fn merge_files(repo: Option<&Repo>, base: &Path, ours: &Path, theirs: &Path, name: &str) -> Result<MergeReport> {
    let base_text = fs_err::read_to_string(base)?;
    let ours_text = fs_err::read_to_string(ours)?;
    let theirs_text = fs_err::read_to_string(theirs)?;
    let is_lock = Path::new(name).file_name() == Some(crate::pipeline::LOCK_FILE.as_ref());
    let merged = if is_lock {
        merge_lock_texts(&base_text, &ours_text, &theirs_text, name)
    } else {
        merge_pointer_texts(repo, &base_text, &ours_text, &theirs_text, name)
    };
    let (text, merged, conflicts) = match merged {
        Ok((text, merged)) => (text, Some(merged), Vec::new()),
        Err(conflicts) => (conflict_text(&ours_text, &theirs_text), None, conflicts),
    };
    crate::fsutil::atomic_write(ours, text.as_bytes())?;
    Ok(MergeReport {
        file: name.to_string(),
        merged,
        conflicts,
    })
}

/// Parses one side's text with `parse`, naming the side in the error.
fn parse_side<T>(
    text: &str,
    side: &str,
    name: &str,
    parse: impl Fn(&str, &Path) -> Result<T>,
) -> std::result::Result<T, String> {
    parse(text, Path::new(name)).map_err(|e| format!("{side} version of `{name}`: {e}"))
}

fn merge_pointer_texts(
    repo: Option<&Repo>,
    base: &str,
    ours: &str,
    theirs: &str,
    name: &str,
) -> std::result::Result<(String, Merged), Vec<String>> {
    // A broken ancestor (git's virtual one may hold markers) only loses the
    // common base: every difference then counts as a conflict.
    let base = parse_side(base, "the common", name, Pointer::parse).ok();
    let ours = parse_side(ours, "our", name, Pointer::parse).map_err(|e| vec![e])?;
    let theirs = parse_side(theirs, "their", name, Pointer::parse).map_err(|e| vec![e])?;
    let p = merge_pointers(repo, base.as_ref(), &ours, &theirs, name)?;
    Ok((p.to_text(), Merged::Pointer(Box::new(p))))
}

/// Merges `dvt.lock` stage by stage: each stage's record is a true account of a
/// run, so one taken from either branch stays true; `dvt repro` then reruns
/// what the merged inputs made stale. A stage run on both branches with
/// different results is a conflict.
fn merge_lock_texts(
    base: &str,
    ours: &str,
    theirs: &str,
    name: &str,
) -> std::result::Result<(String, Merged), Vec<String>> {
    let base = parse_side(base, "the common", name, Lock::parse).unwrap_or_else(|_| Lock {
        version: crate::pipeline::lock::LOCK_VERSION,
        ..Default::default()
    });
    let ours = parse_side(ours, "our", name, Lock::parse).map_err(|e| vec![e])?;
    let theirs = parse_side(theirs, "their", name, Lock::parse).map_err(|e| vec![e])?;
    let (stages, conflicts) = merge_maps(&base.stages, &ours.stages, &theirs.stages);
    if !conflicts.is_empty() {
        return Err(conflicts
            .into_iter()
            .map(|(stage, how)| format!("stage `{stage}`: {how}; keep one side, then `dvt repro {stage}`"))
            .collect());
    }
    let merged = Lock { stages, ..ours };
    Ok((
        merged.to_text(),
        Merged::Lock {
            stages: merged.stages.len(),
        },
    ))
}

/// The three-way rule for one key: the version both sides agree on, else the
/// one that changed from the base; `Err` says how they conflict.
fn pick<'a, V: PartialEq>(
    base: Option<&'a V>,
    ours: Option<&'a V>,
    theirs: Option<&'a V>,
) -> std::result::Result<Option<&'a V>, &'static str> {
    if ours == theirs || theirs == base {
        Ok(ours)
    } else if ours == base {
        Ok(theirs)
    } else {
        Err(match (base, ours, theirs) {
            (None, _, _) => "added on both branches with different content",
            (Some(_), None, _) | (Some(_), _, None) => "deleted on one branch and changed on the other",
            _ => "changed differently on both branches",
        })
    }
}

/// Merges three maps key by key with [`pick`]; also returns the conflicting keys.
fn merge_maps<V: PartialEq + Clone>(
    base: &BTreeMap<String, V>,
    ours: &BTreeMap<String, V>,
    theirs: &BTreeMap<String, V>,
) -> (BTreeMap<String, V>, Vec<(String, &'static str)>) {
    let keys: BTreeSet<&String> = ours.keys().chain(theirs.keys()).chain(base.keys()).collect();
    let mut merged = BTreeMap::new();
    let mut conflicts = Vec::new();
    for k in keys {
        match pick(base.get(k), ours.get(k), theirs.get(k)) {
            Ok(Some(v)) => {
                merged.insert(k.clone(), v.clone());
            }
            Ok(None) => {}
            Err(how) => conflicts.push((k.clone(), how)),
        }
    }
    (merged, conflicts)
}

/// Merges three versions of one pointer; `Err` lists the conflicts.
fn merge_pointers(
    repo: Option<&Repo>,
    base: Option<&Pointer>,
    ours: &Pointer,
    theirs: &Pointer,
    name: &str,
) -> std::result::Result<Pointer, Vec<String>> {
    if ours == theirs || base == Some(theirs) {
        return Ok(ours.clone());
    }
    if base == Some(ours) {
        return Ok(theirs.clone());
    }
    let data = name.strip_suffix(".dvt").unwrap_or(name);
    let one = |reason: String| Err(vec![reason]);
    match (ours.kind, theirs.kind) {
        (Kind::Dir, Kind::Dir) => {}
        (Kind::File, Kind::File) => {
            return one(format!(
                "`{data}`: changed on both branches; the versions of a file cannot be merged"
            ));
        }
        _ => return one(format!("`{data}`: a file on one branch and a directory on the other")),
    }
    if ours.path != theirs.path {
        return one(format!(
            "`{name}` points to `{}` on one branch and `{}` on the other",
            ours.path, theirs.path
        ));
    }
    if ours.source.is_some() || theirs.source.is_some() {
        return one(format!(
            "`{data}`: imported data changed on both branches; keep one side, then `dvt update` it"
        ));
    }
    let Some(repo) = repo else {
        return one(format!(
            "`{data}`: no dvt repository here to read the listings of its versions from"
        ));
    };
    let objects = Objects::new(repo, None);
    let load = |p: &Pointer| -> Result<Manifest> {
        objects.ensure(&p.id, Some(data))?;
        let bytes = repo.cache().read(&p.id, Some(data))?;
        Manifest::parse(&bytes, &p.id)
    };
    let unreadable = |e: crate::Error| {
        let mut reason = format!(
            "`{data}`: could not read a version to merge: {}",
            crate::error_chain(&e)
        );
        if let Some(h) = e.hint() {
            reason.push_str(&format!(" ({h})"));
        }
        vec![reason]
    };
    let base_manifest = match base {
        Some(b) if b.kind == Kind::Dir && b.path == ours.path => load(b).map_err(unreadable)?,
        // Added on both branches (or not a directory before): nothing in common.
        _ => Manifest::default(),
    };
    let ours_manifest = load(ours).map_err(unreadable)?;
    let theirs_manifest = load(theirs).map_err(unreadable)?;
    let merged = merge_manifests(&base_manifest, &ours_manifest, &theirs_manifest).map_err(|paths| {
        paths
            .into_iter()
            .map(|(p, how)| format!("`{data}/{p}`: {how}"))
            .collect::<Vec<_>>()
    })?;
    let store = || -> Result<Pointer> {
        let _lock = repo.lock("merge")?;
        let stored = repo.cache().put_bytes(&merged.to_bytes())?;
        // Hand-written fields (`desc`, `remote`…): theirs if only they changed them.
        let annotated = match base {
            Some(b) if ours.annotated_as(b) => theirs,
            _ => ours,
        };
        Ok(Pointer::dir(
            ours.path.clone(),
            stored.id,
            merged.total_size(),
            merged.files.len() as u64,
        )
        .keeping(Some(annotated)))
    };
    store().map_err(|e| {
        vec![format!(
            "`{data}`: could not store the merged listing: {}",
            crate::error_chain(&e)
        )]
    })
}

/// Merges three listings of one directory path by path. `Err` names each path
/// that conflicts (relative to the directory) and how.
pub fn merge_manifests(
    base: &Manifest,
    ours: &Manifest,
    theirs: &Manifest,
) -> std::result::Result<Manifest, Vec<(String, &'static str)>> {
    fn index(m: &Manifest) -> BTreeMap<String, Entry> {
        m.files.iter().map(|e| (e.path.clone(), e.clone())).collect()
    }
    let (files, mut conflicts) = merge_maps(&index(base), &index(ours), &index(theirs));
    let files: Vec<Entry> = files.into_values().collect();
    fn dirs_of(m: &Manifest) -> HashSet<&str> {
        m.empty_dirs.iter().map(String::as_str).collect()
    }
    let (db, d_o, dt) = (dirs_of(base), dirs_of(ours), dirs_of(theirs));
    let all_dirs: BTreeSet<&str> = d_o.iter().chain(&dt).chain(&db).copied().collect();
    // Of two sides that disagree on a boolean, one agrees with the base: take the other.
    let mut empty_dirs: Vec<&str> = all_dirs
        .into_iter()
        .filter(|d| {
            let (hb, ho, ht) = (db.contains(d), d_o.contains(d), dt.contains(d));
            if ho == ht { ho } else { !hb }
        })
        .collect();
    // Every directory that holds something in the result.
    let mut parents: HashSet<&str> = HashSet::new();
    for p in files.iter().map(|e| e.path.as_str()).chain(empty_dirs.iter().copied()) {
        let mut at = p;
        while let Some(i) = at.rfind('/') {
            at = &at[..i];
            if !parents.insert(at) {
                break;
            }
        }
    }
    let empty: HashSet<&str> = empty_dirs.iter().copied().collect();
    for e in &files {
        if parents.contains(e.path.as_str()) || empty.contains(e.path.as_str()) {
            conflicts.push((e.path.clone(), "a file on one branch and a directory on the other"));
        }
    }
    // A directory that was empty and now holds files is no longer empty.
    empty_dirs.retain(|d| !parents.contains(d));
    if !conflicts.is_empty() {
        return Err(conflicts);
    }
    let empty_dirs = empty_dirs.into_iter().map(str::to_string).collect();
    Ok(Manifest::new(files, empty_dirs))
}

/// `ours` and `theirs` with git's conflict markers around the lines that differ
/// (pointers keep their keys in one order, so the lines in common surround them).
pub fn conflict_text(ours: &str, theirs: &str) -> String {
    let o: Vec<&str> = ours.split_inclusive('\n').collect();
    let t: Vec<&str> = theirs.split_inclusive('\n').collect();
    let head = o.iter().zip(&t).take_while(|(a, b)| a == b).count();
    let tail = o[head..]
        .iter()
        .rev()
        .zip(t[head..].iter().rev())
        .take_while(|(a, b)| a == b)
        .count();
    let mut out = String::new();
    let push_lines = |lines: &[&str], out: &mut String| {
        for l in lines {
            out.push_str(l);
            if !l.ends_with('\n') {
                out.push('\n');
            }
        }
    };
    push_lines(&o[..head], &mut out);
    out.push_str("<<<<<<< ours\n");
    push_lines(&o[head..o.len() - tail], &mut out);
    out.push_str("=======\n");
    push_lines(&t[head..t.len() - tail], &mut out);
    out.push_str(">>>>>>> theirs\n");
    push_lines(&o[o.len() - tail..], &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::ObjectId;

    fn entry(path: &str, content: &str) -> Entry {
        Entry {
            path: path.into(),
            id: ObjectId::of(content.as_bytes()),
            size: content.len() as u64,
            executable: false,
        }
    }

    fn listing(files: &[(&str, &str)], dirs: &[&str]) -> Manifest {
        Manifest::new(
            files.iter().map(|(p, c)| entry(p, c)).collect(),
            dirs.iter().map(|d| d.to_string()).collect(),
        )
    }

    #[test]
    fn changes_to_different_files_merge() {
        let base = listing(&[("a", "1"), ("b", "1"), ("c", "1"), ("d", "1")], &["e"]);
        let ours = listing(&[("a", "2"), ("b", "1"), ("d", "1"), ("new/x", "o")], &["e"]);
        let theirs = listing(&[("a", "1"), ("b", "3"), ("c", "1"), ("d", "1"), ("e/y", "t")], &[]);
        let merged = merge_manifests(&base, &ours, &theirs).unwrap();
        // a from ours, b from theirs, c deleted by ours, e no longer empty.
        let want = listing(&[("a", "2"), ("b", "3"), ("d", "1"), ("e/y", "t"), ("new/x", "o")], &[]);
        assert_eq!(merged, want);
    }

    #[test]
    fn the_same_change_on_both_sides_is_no_conflict() {
        let base = listing(&[("a", "1")], &[]);
        let both = listing(&[("a", "2"), ("b", "2")], &["z"]);
        assert_eq!(merge_manifests(&base, &both, &both).unwrap(), both);
    }

    #[test]
    fn conflicts_name_each_path() {
        let base = listing(&[("a", "1"), ("b", "1")], &[]);
        let ours = listing(&[("a", "2"), ("c", "o"), ("d", "o")], &[]);
        let theirs = listing(&[("a", "3"), ("b", "3"), ("c", "t"), ("d/e", "t")], &[]);
        let err = merge_manifests(&base, &ours, &theirs).unwrap_err();
        let paths: Vec<(&str, &str)> = err.iter().map(|(p, how)| (p.as_str(), *how)).collect();
        assert_eq!(
            paths,
            [
                ("a", "changed differently on both branches"),
                ("b", "deleted on one branch and changed on the other"),
                ("c", "added on both branches with different content"),
                ("d", "a file on one branch and a directory on the other"),
            ]
        );
    }

    #[test]
    fn a_directory_emptied_on_one_side_stays_if_the_other_adds_nothing() {
        let base = listing(&[("x/a", "1"), ("y", "1")], &[]);
        let ours = listing(&[("y", "1")], &["x"]);
        let theirs = listing(&[("x/a", "1"), ("y", "2")], &[]);
        assert_eq!(
            merge_manifests(&base, &ours, &theirs).unwrap(),
            listing(&[("y", "2")], &["x"])
        );
    }

    #[test]
    fn conflict_markers_surround_only_the_lines_that_differ() {
        let ours = "# c\nversion = 1\nid = \"a\"\nsize = 1\nfiles = 1\n";
        let theirs = "# c\nversion = 1\nid = \"b\"\nsize = 2\nfiles = 1\n";
        assert_eq!(
            conflict_text(ours, theirs),
            "# c\nversion = 1\n<<<<<<< ours\nid = \"a\"\nsize = 1\n=======\nid = \"b\"\nsize = 2\n>>>>>>> theirs\nfiles = 1\n"
        );
        assert_eq!(conflict_text("x", "y"), "<<<<<<< ours\nx\n=======\ny\n>>>>>>> theirs\n");
    }
}
