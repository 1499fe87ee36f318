//! Pointer files (`<path>.dvt`): what a tracked path's content is, in TOML.
//!
//! ```toml
//! version = 1
//! path = "raw"
//! kind = "dir"
//! id = "5b1c…"   # 64 hex digits
//! size = 1048576
//! files = 300
//! ```
//!
//! A pointer to an executable file also has `executable = true`. A pointer written
//! by `dvt import` ends with a `[source]` table: where the data came from.
//!
//! ```toml
//! [source]
//! repo = "https://github.com/org/datasets.git"   # or a local path, as given
//! rev = "v2"                                     # as given; absent: the default branch
//! commit = "1a2b…"                               # 40 hex digits: what rev resolved to
//! path = "data/raw"                              # the path in that repository
//! ```
//!
//! One written by `dvt import-url` records the URL instead, and a fingerprint of
//! what was there:
//!
//! ```toml
//! [source]
//! url = "s3://bucket/raw"     # as given; a local path is recorded absolute
//! fingerprint = "9f2c…"       # 64 hex digits, see `UrlSource::fingerprint`
//! ```
//!
//! With `--version-aware`, it also records the store's id of each version read:
//! `version = "…"` for a file, a `[source.versions]` table (path below the URL →
//! version id) for a directory.
//!
//! Keys are always written in this order. `path` is relative to the pointer's
//! directory; it is untrusted input and is validated by [`Pointer::parse`].

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{FormatError, Result};
use crate::object::ObjectId;

/// The pointer format version this dvt writes and reads.
pub const POINTER_VERSION: u32 = 1;
/// The extension of pointer files.
pub const POINTER_EXT: &str = "dvt";

/// What a pointer tracks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// One file; the id is its content's.
    File,
    /// A directory; the id is its manifest's.
    Dir,
}

/// A parsed, validated pointer file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pointer {
    /// Format version, [`POINTER_VERSION`].
    pub version: u32,
    /// The tracked path, relative to the pointer's directory, `/`-separated.
    pub path: String,
    /// File or directory.
    pub kind: Kind,
    /// The content id (file) or manifest id (directory).
    pub id: ObjectId,
    /// Total bytes of content.
    pub size: u64,
    /// Number of files, for directories.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<u64>,
    /// Whether a tracked file is executable (written only when true).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub executable: bool,
    /// What the data is, in the user's words (DVC's `desc`). This and the
    /// fields below up to `meta` are written by hand, never by a command, and
    /// every command that rewrites the pointer keeps them (see [`Pointer::keeping`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desc: Option<String>,
    /// What kind of thing it is, e.g. `model` or `dataset` (DVC's `type`).
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub data_type: Option<String>,
    /// Labels (DVC's `labels`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
    /// The remote this data is pushed to and fetched from instead of the
    /// default (DVC's per-output `remote`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<String>,
    /// `false`: `push` leaves this data out (DVC's `push: false`); fetch and
    /// pull still get it.
    #[serde(default = "yes", skip_serializing_if = "is_yes")]
    pub push: bool,
    /// Anything else the user keeps with the data (DVC's `meta`), as a table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<toml::Table>,
    /// For imported data: where it came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
}

fn yes() -> bool {
    true
}

fn is_yes(b: &bool) -> bool {
    *b
}

/// Where imported data came from: another dvt repository, or a URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Source {
    /// `dvt import`: a path in another dvt repository, at a commit.
    Repo(ImportSource),
    /// `dvt import-url`: an object or prefix of a store, or a local file or directory.
    Url(UrlSource),
}

impl Source {
    /// Where the data was imported from, as the pointer records it: the
    /// repository, or the URL.
    pub fn origin(&self) -> &str {
        match self {
            Source::Repo(s) => &s.repo,
            Source::Url(s) => &s.url,
        }
    }
}

impl<'de> Deserialize<'de> for Source {
    /// A table with `url` is a [`UrlSource`], any other an [`ImportSource`]: so
    /// that a mistake is reported against the one kind meant, not as "no variant".
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        use serde::de::Error;
        let table = toml::Table::deserialize(d)?;
        let is_url = table.contains_key("url");
        let value = toml::Value::Table(table);
        if is_url {
            value
                .try_into()
                .map(Source::Url)
                .map_err(|e| D::Error::custom(e.message()))
        } else {
            value
                .try_into()
                .map(Source::Repo)
                .map_err(|e| D::Error::custom(e.message()))
        }
    }
}

/// Where `dvt import-url` data came from, so that `dvt update` can tell whether it changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UrlSource {
    /// The URL as given (`s3://…`, `gs://…`, `az://…`, `http(s)://…`,
    /// `remote://NAME/path`), or a local path made absolute.
    pub url: String,
    /// BLAKE3 (hex) of the listing read when the data was downloaded: for each
    /// object, sorted by path, its path below the URL, size, and ETag (or
    /// modification time where the store gives no ETag).
    pub fingerprint: String,
    /// Options of the store given with `--fs-config` (DVC's), as a remote's
    /// options (`endpointurl`, `region`…; never secrets), used again by `update`.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub fs_config: std::collections::BTreeMap<String, String>,
    /// `--version-aware` (DVC's), of a URL naming one object: the store's id of
    /// the version read (an S3 version id, a GCS generation, an Azure version
    /// id), from which `fetch` and readers read the data when no cache or
    /// remote holds it, even after the object was overwritten.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// `--version-aware`, of a URL naming a directory: each object's version
    /// id, by its path below the URL.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub versions: std::collections::BTreeMap<String, String>,
}

impl UrlSource {
    /// Whether the import records the versions it read (`--version-aware`).
    pub fn version_aware(&self) -> bool {
        self.version.is_some() || !self.versions.is_empty()
    }
}

/// Where imported data came from (`dvt import`), so that `dvt update` can follow it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportSource {
    /// The repository, as given: a local path or a git URL.
    pub repo: String,
    /// The revision as given; `None` means the repository's HEAD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rev: Option<String>,
    /// The commit the revision resolved to (40 hex digits).
    pub commit: String,
    /// The path in that repository.
    pub path: String,
    /// The remote of that repository its data comes from, when not its
    /// default (`--remote`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<String>,
    /// A config file merged over that repository's (`--config`): relative to
    /// this repository's root, or absolute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<String>,
    /// Options set on that remote (`--remote-config`; never secrets).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub remote_config: std::collections::BTreeMap<String, String>,
}

impl Pointer {
    /// A pointer to a file.
    pub fn file(path: String, id: ObjectId, size: u64) -> Self {
        Pointer {
            version: POINTER_VERSION,
            path,
            kind: Kind::File,
            id,
            size,
            files: None,
            executable: false,
            desc: None,
            data_type: None,
            labels: Vec::new(),
            remote: None,
            push: true,
            meta: None,
            source: None,
        }
    }

    /// A pointer to a directory.
    pub fn dir(path: String, id: ObjectId, size: u64, files: u64) -> Self {
        Pointer {
            kind: Kind::Dir,
            files: Some(files),
            ..Pointer::file(path, id, size)
        }
    }

    /// This pointer with the fields the user wrote into `old` by hand
    /// (`desc`, `type`, `labels`, `remote`, `push`, `meta`), for a command
    /// that rewrites a pointer (re-`add`, `commit`, `update`): as DVC keeps an
    /// out's annotations when it records new data.
    pub fn keeping(self, old: Option<&Pointer>) -> Pointer {
        let Some(old) = old else { return self };
        Pointer {
            desc: old.desc.clone(),
            data_type: old.data_type.clone(),
            labels: old.labels.clone(),
            remote: old.remote.clone(),
            push: old.push,
            meta: old.meta.clone(),
            ..self
        }
    }

    /// Whether `other` has the same hand-written fields as this pointer (see [`Pointer::keeping`]).
    pub fn annotated_as(&self, other: &Pointer) -> bool {
        self.clone().keeping(Some(other)) == *self
    }

    /// Parses and validates pointer text read from `file` (named in errors).
    pub fn parse(text: &str, file: &Path) -> Result<Pointer> {
        let bad = |message: String| FormatError::Pointer {
            path: file.to_path_buf(),
            message,
        };
        // Conflict markers are never valid TOML, so they are looked for only when parsing fails.
        let table: toml::Table = toml::from_str(text).map_err(|e| match crate::error::conflict_line(text) {
            Some(line) => FormatError::Conflict {
                path: file.to_path_buf(),
                line,
            },
            None => bad(crate::error::toml_message(text, e.span(), e.message())),
        })?;
        match table.get("version") {
            Some(toml::Value::Integer(v)) if *v == i64::from(POINTER_VERSION) => {}
            Some(toml::Value::Integer(v)) => {
                return Err(FormatError::UnsupportedVersion {
                    path: file.to_path_buf(),
                    found: *v,
                    supported: POINTER_VERSION,
                }
                .into());
            }
            Some(_) => return Err(bad("`version` must be an integer".into()).into()),
            None => return Err(bad("missing `version`".into()).into()),
        }
        // Parsed again from the text on an error, for a message that names the line.
        let p: Pointer = table
            .try_into()
            .map_err(|e: toml::de::Error| match toml::from_str::<Pointer>(text) {
                Err(located) => bad(crate::error::toml_message(text, located.span(), located.message())),
                Ok(_) => bad(e.message().trim_end().to_string()),
            })?;
        if let Err(reason) = crate::relpath::validate(&p.path) {
            return Err(crate::error::PathError::Unsafe {
                path: p.path,
                source_file: file.to_path_buf(),
                reason,
            }
            .into());
        }
        // Paths below an import's URL name objects to read: none may climb out of it.
        if let Some(Source::Url(u)) = &p.source {
            if u.version.is_some() && p.kind == Kind::Dir {
                return Err(bad("a `dir` pointer records `versions` per file, not one `version`".into()).into());
            }
            if !u.versions.is_empty() && p.kind == Kind::File {
                return Err(bad("a `file` pointer records one `version`, not `versions`".into()).into());
            }
            for rel in u.versions.keys() {
                if let Err(reason) = crate::relpath::validate(rel) {
                    return Err(crate::error::PathError::Unsafe {
                        path: rel.clone(),
                        source_file: file.to_path_buf(),
                        reason,
                    }
                    .into());
                }
            }
        }
        match (p.kind, p.files) {
            (Kind::Dir, None) => return Err(bad("a `dir` pointer needs `files`".into()).into()),
            (Kind::File, Some(_)) => {
                return Err(bad("a `file` pointer has no `files`".into()).into());
            }
            (Kind::Dir, _) if p.executable => {
                return Err(bad("a `dir` pointer has no `executable`; the manifest records it per file".into()).into());
            }
            _ => {}
        }
        Ok(p)
    }

    /// Reads and validates the pointer file at `file`.
    pub fn load(file: &Path) -> Result<Pointer> {
        let text = fs_err::read_to_string(file)?;
        Self::parse(&text, file)
    }

    /// The canonical text of this pointer.
    pub fn to_text(&self) -> String {
        let mut out = String::from("# dvt pointer file: commit it with git; `dvt checkout` restores the data\n");
        // Serializing a plain struct of strings and integers cannot fail.
        out.push_str(&toml::to_string(self).unwrap_or_default());
        out
    }

    /// Writes this pointer to `file` atomically.
    pub fn save(&self, file: &Path) -> Result<()> {
        crate::fsutil::atomic_write(file, self.to_text().as_bytes())?;
        crate::autostage::note(file);
        Ok(())
    }
}

/// The pointer file for a data path: `data/raw` → `data/raw.dvt`.
pub fn pointer_path_for(data: &Path) -> PathBuf {
    let mut s = data.as_os_str().to_owned();
    s.push(".");
    s.push(POINTER_EXT);
    PathBuf::from(s)
}

/// Whether `path` names a pointer file.
pub fn is_pointer_path(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == POINTER_EXT)
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn id() -> ObjectId {
        ObjectId::of(b"x")
    }

    #[test]
    fn keys_in_fixed_order() {
        let text = Pointer::dir("raw".into(), id(), 10, 2).to_text();
        let keys: Vec<&str> = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split(" =").next())
            .collect();
        assert_eq!(keys, ["version", "path", "kind", "id", "size", "files"]);
    }

    #[test]
    fn rejects_escapes_and_newer_versions() {
        let f = Path::new("x.dvt");
        let text = |path: &str| Pointer::file(path.into(), id(), 1).to_text();
        for p in ["../x", "/etc/passwd", "a/../../b", "", "a//b"] {
            assert!(Pointer::parse(&text(p), f).is_err(), "{p:?} must be rejected");
        }
        let exec_dir = Pointer::dir("d".into(), id(), 1, 1).to_text() + "executable = true\n";
        assert!(Pointer::parse(&exec_dir, f).is_err());
        let newer = text("x").replace("version = 1", "version = 7");
        assert!(matches!(
            Pointer::parse(&newer, f),
            Err(crate::Error::Format(FormatError::UnsupportedVersion { found: 7, .. }))
        ));
    }

    proptest! {
        #[test]
        fn round_trip(path in "[a-zA-Z0-9 _.ä-]{1,20}(/[a-z0-9 é]{1,8}){0,3}", size in 0..i64::MAX as u64, files in proptest::option::of(0..i64::MAX as u64)) {
            prop_assume!(crate::relpath::validate(&path).is_ok());
            let p = match files {
                Some(n) => Pointer::dir(path, id(), size, n),
                None => Pointer::file(path, id(), size),
            };
            prop_assert_eq!(Pointer::parse(&p.to_text(), Path::new("p.dvt")).unwrap(), p);
        }
    }
}
