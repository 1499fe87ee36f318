//! Directory manifests: the canonical listing of a tracked directory.
//!
//! A manifest is stored as an object like any file; its id is the directory's id.
//! The text is one header line, then one line per entry, sorted by path bytes:
//!
//! ```text
//! dvt-manifest 1
//! f 3b0a…(64 hex) 1024 readings/day 1.csv
//! x 9f12…(64 hex) 311 scripts/run.sh
//! d - 0 empty/folder
//! ```
//!
//! `f` is a file, `x` an executable file, `d` an empty directory. The path is the
//! rest of the line, `/`-separated, with `\` written `\\`, newline `\n` and carriage
//! return `\r`. The same entries always give the same bytes, hence the same id.

use std::fmt::Write as _;

use crate::error::{FormatError, Result};
use crate::object::ObjectId;

const HEADER: &str = "dvt-manifest 1";

/// Whether `content_prefix` (the first bytes of an object's content) is the start
/// of a manifest.
pub fn looks_like(content_prefix: &[u8]) -> bool {
    content_prefix.starts_with(b"dvt-manifest ")
}

/// One file in a tracked directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Path relative to the tracked directory, `/`-separated.
    pub path: String,
    /// The content's id.
    pub id: ObjectId,
    /// The content's size in bytes.
    pub size: u64,
    /// Whether the file is executable.
    pub executable: bool,
}

/// What a manifest records at a path inside its directory (see [`Manifest::part`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part<'a> {
    /// A file.
    File(&'a Entry),
    /// A subdirectory: the entries below it, with paths relative to it.
    Dir(Manifest),
}

/// The content of a tracked directory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Manifest {
    /// Files, sorted by path.
    pub files: Vec<Entry>,
    /// Directories with nothing below them, sorted.
    pub empty_dirs: Vec<String>,
}

impl Manifest {
    /// Builds a manifest, sorting the entries.
    pub fn new(mut files: Vec<Entry>, mut empty_dirs: Vec<String>) -> Self {
        files.sort_unstable_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
        empty_dirs.sort_unstable();
        Manifest { files, empty_dirs }
    }

    /// What the directory holds at `inner` (relative to it, `/`-separated): a file,
    /// a subdirectory (empty ones included), or nothing.
    pub fn part(&self, inner: &str) -> Option<Part<'_>> {
        if let Some(e) = self.files.iter().find(|e| e.path == inner) {
            return Some(Part::File(e));
        }
        let prefix = format!("{inner}/");
        let files: Vec<Entry> = self
            .files
            .iter()
            .filter_map(|e| {
                let path = e.path.strip_prefix(&prefix)?.to_string();
                Some(Entry { path, ..e.clone() })
            })
            .collect();
        let empty_dirs: Vec<String> = self
            .empty_dirs
            .iter()
            .filter_map(|d| d.strip_prefix(&prefix).map(str::to_string))
            .collect();
        if files.is_empty() && empty_dirs.is_empty() && !self.empty_dirs.iter().any(|d| d == inner) {
            return None;
        }
        Some(Part::Dir(Manifest::new(files, empty_dirs)))
    }

    /// Total bytes of all files.
    pub fn total_size(&self) -> u64 {
        self.files.iter().map(|e| e.size).sum()
    }

    /// The canonical bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = String::with_capacity(HEADER.len() + 1 + self.files.len() * 100);
        out.push_str(HEADER);
        out.push('\n');
        let mut files = self.files.iter().peekable();
        let mut dirs = self.empty_dirs.iter().peekable();
        loop {
            let take_file = match (files.peek(), dirs.peek()) {
                (Some(f), Some(d)) => f.path.as_bytes() < d.as_bytes(),
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => break,
            };
            if take_file {
                if let Some(e) = files.next() {
                    let kind = if e.executable { 'x' } else { 'f' };
                    let _ = write!(out, "{kind} {} {} ", e.id, e.size);
                    escape_into(&e.path, &mut out);
                }
            } else if let Some(d) = dirs.next() {
                out.push_str("d - 0 ");
                escape_into(d, &mut out);
            }
            out.push('\n');
        }
        out.into_bytes()
    }

    /// Parses and validates manifest bytes stored as object `id`.
    pub fn parse(bytes: &[u8], id: &ObjectId) -> Result<Manifest> {
        let bad = |message: String| FormatError::Manifest { id: *id, message };
        let text = std::str::from_utf8(bytes).map_err(|_| bad("not UTF-8".into()))?;
        let mut lines = text.split_terminator('\n');
        match lines.next() {
            Some(HEADER) => {}
            Some(h) if h.starts_with("dvt-manifest ") => {
                return Err(bad(format!("unsupported version `{h}`; upgrade dvt")).into());
            }
            _ => return Err(bad("missing `dvt-manifest 1` header".into()).into()),
        }
        let mut files = Vec::new();
        let mut empty_dirs = Vec::new();
        let mut prev: &str = "";
        for (n, line) in lines.enumerate() {
            let lineno = n + 2;
            let mut parts = line.splitn(4, ' ');
            let (Some(kind), Some(id_s), Some(size_s), Some(raw_path)) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                return Err(bad(format!("line {lineno}: expected `KIND ID SIZE PATH`")).into());
            };
            // Sortedness is checked on the escaped text: escaping keeps the order of
            // paths without `\\`, `\n`, `\r`; others fall back to a full check below.
            let plain = !raw_path.contains('\\');
            if plain && !prev.is_empty() && prev.as_bytes() >= raw_path.as_bytes() {
                return Err(bad(format!("line {lineno}: entries are not sorted or repeat `{raw_path}`")).into());
            }
            let path = if plain {
                raw_path.to_string()
            } else {
                unescape(raw_path).ok_or_else(|| bad(format!("line {lineno}: bad escape in path")))?
            };
            if let Err(reason) = crate::relpath::validate(&path) {
                return Err(bad(format!("line {lineno}: unsafe path `{path}`: {reason}")).into());
            }
            prev = if plain { raw_path } else { "" };
            match kind {
                "f" | "x" => {
                    let id = id_s
                        .parse()
                        .map_err(|_| bad(format!("line {lineno}: bad object id `{id_s}`")))?;
                    let size = size_s
                        .parse()
                        .map_err(|_| bad(format!("line {lineno}: bad size `{size_s}`")))?;
                    files.push(Entry {
                        path,
                        id,
                        size,
                        executable: kind == "x",
                    });
                }
                "d" if id_s == "-" && size_s == "0" => empty_dirs.push(path),
                _ => return Err(bad(format!("line {lineno}: unknown entry `{kind} {id_s} {size_s}`")).into()),
            }
        }
        // Entries with escapes skipped the cheap order check: check the whole order.
        if text.contains('\\') {
            let mut all: Vec<&str> = files
                .iter()
                .map(|e| e.path.as_str())
                .chain(empty_dirs.iter().map(String::as_str))
                .collect();
            let n = all.len();
            all.sort_unstable();
            all.dedup();
            if all.len() != n {
                return Err(bad("entries repeat".into()).into());
            }
            if !files.is_sorted_by(|a, b| a.path < b.path) || !empty_dirs.is_sorted_by(|a, b| a < b) {
                return Err(bad("entries are not sorted".into()).into());
            }
        }
        // No entry may sit below a file or below an "empty" directory. Both lists are
        // sorted, so ancestors are found by binary search, and runs of entries in
        // one directory check that directory's ancestors once.
        let is_leaf = |p: &str| {
            files.binary_search_by(|e| e.path.as_str().cmp(p)).is_ok()
                || empty_dirs.binary_search_by(|d| d.as_str().cmp(p)).is_ok()
        };
        let mut checked_dir: &str = "";
        for path in files
            .iter()
            .map(|e| e.path.as_str())
            .chain(empty_dirs.iter().map(String::as_str))
        {
            let Some(last) = path.rfind('/') else { continue };
            if &path[..last] == checked_dir {
                continue;
            }
            let mut cut = path.len();
            while let Some(i) = path[..cut].rfind('/') {
                if is_leaf(&path[..i]) {
                    return Err(bad(format!(
                        "`{path}` is below the file or empty directory `{}`",
                        &path[..i]
                    ))
                    .into());
                }
                cut = i;
            }
            checked_dir = &path[..last];
        }
        Ok(Manifest { files, empty_dirs })
    }
}

fn escape_into(path: &str, out: &mut String) {
    for c in path.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
}

fn unescape(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next()? {
                '\\' => out.push('\\'),
                'n' => out.push('\n'),
                'r' => out.push('\r'),
                _ => return None,
            }
        } else {
            out.push(c);
        }
    }
    Some(out)
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn entry(path: &str, exec: bool) -> Entry {
        Entry {
            path: path.into(),
            id: ObjectId::of(path.as_bytes()),
            size: path.len() as u64,
            executable: exec,
        }
    }

    #[test]
    fn canonical_and_round_trips() {
        let m = Manifest::new(
            vec![entry("b/x y.csv", false), entry("a\\b\nc", true), entry("a.txt", false)],
            vec!["empty".into()],
        );
        let bytes = m.to_bytes();
        let id = ObjectId::of(&bytes);
        assert_eq!(Manifest::parse(&bytes, &id).unwrap(), m);
        let shuffled = Manifest::new(m.files.iter().rev().cloned().collect(), m.empty_dirs.clone());
        assert_eq!(shuffled.to_bytes(), bytes, "order of input does not change the bytes");
    }

    #[test]
    fn rejects_unsafe_and_inconsistent() {
        let id = ObjectId::of(b"");
        let z = ObjectId::of(b"z");
        for body in [
            format!("f {z} 1 ../etc/passwd\n"),
            format!("f {z} 1 /abs\n"),
            format!("f {z} 1 b\nf {z} 1 a\n"),
            format!("f {z} 1 a\nf {z} 1 a/b\n"),
            format!("f {z} 1 a\nf {z} 1 a-b\nf {z} 1 a/b/c\n"),
            format!("f {z} 1 k/a\nf {z} 1 k/a-b\nf {z} 1 k/a/b/c\n"),
            format!("d - 0 e\nf {z} 1 e/x\n"),
            "f nothex 1 a\n".to_string(),
            format!("q {z} 1 a\n"),
        ] {
            let text = format!("{HEADER}\n{body}");
            assert!(Manifest::parse(text.as_bytes(), &id).is_err(), "{body}");
        }
        assert!(Manifest::parse(b"dvt-manifest 9\n", &id).is_err());
    }

    proptest! {
        #[test]
        fn round_trip(names in proptest::collection::btree_set("[a-zé \\\\\n]{1,6}(/[a-z]{1,4}){0,2}", 0..20)) {
            let files: Vec<Entry> = names.iter().filter(|n| crate::relpath::validate(n).is_ok()).map(|n| entry(n, n.len() % 2 == 0)).collect();
            let leaves: std::collections::HashSet<&str> = files.iter().map(|e| e.path.as_str()).collect();
            prop_assume!(files.iter().all(|e| !e.path.match_indices('/').any(|(i, _)| leaves.contains(&e.path[..i]))));
            let m = Manifest::new(files, vec![]);
            let bytes = m.to_bytes();
            prop_assert_eq!(Manifest::parse(&bytes, &ObjectId::of(&bytes)).unwrap(), m);
        }
    }
}
