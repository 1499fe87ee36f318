//! The stable programmatic surface for pipelines: where a tracked file's data is
//! ([`get_url`]) and its verified bytes ([`open`], [`read`]), at any revision.
//!
//! Every call takes the same four arguments, as `dvc.api` does:
//! - `path`: relative to the repository root; a tracked file, a tracked
//!   directory (for `get_url`), or a file inside a tracked directory; for
//!   [`open`] and [`read`] also a file git keeps (code, params), and in the
//!   workspace any file no pointer covers, as DVC reads them;
//! - `repo`: a directory inside the dvt repository (`None`: the current directory);
//! - `rev`: a git revision, read from the commit without touching the work tree
//!   (`None`: the pointer files in the work tree);
//! - `remote`: the remote to ask when the cache lacks an object (`None`: the
//!   default remote).
//!
//! ```
//! # fn main() -> dvt::Result<()> {
//! # let dir = tempfile::tempdir()?;
//! # let root = dir.path();
//! # let repo = dvt::repo::Repo::init(root, &dvt::repo::InitOptions { no_scm: true, ..Default::default() })?;
//! # std::fs::create_dir(root.join("data"))?;
//! # std::fs::write(root.join("data/readings.csv"), "t,value\n0,0.5\n")?;
//! # let opts = dvt::ops::AddOptions { paths: vec!["data".into()], cwd: root.to_path_buf(), ..Default::default() };
//! # dvt::ops::add(&repo, &opts, &dvt::progress::NoProgress)?;
//! # let store = tempfile::tempdir()?;
//! # dvt::remote::config::add(&repo, "store", store.path().to_str().unwrap(), true, dvt::repo::ConfigLevel::Project, false)?;
//! use std::io::Read;
//!
//! // `data` is a tracked directory; ask for one file inside it.
//! let mut text = String::new();
//! dvt::api::open("data/readings.csv", Some(root), None, None)?.read_to_string(&mut text)?;
//! assert_eq!(text, "t,value\n0,0.5\n");
//! assert_eq!(dvt::api::read("data/readings.csv", Some(root), None, None)?, text.as_bytes());
//!
//! // Where it lives on the default remote (`store`, a directory here).
//! let info = dvt::api::get_url("data/readings.csv", Some(root), None, None)?;
//! assert_eq!(info.data.size, 14);
//! assert_eq!(info.data.id, dvt::ObjectId::of(text.as_bytes()));
//! assert!(info.url.ends_with(&info.data.id.relative_path()));
//! assert!(!info.on_remote, "not pushed yet");
//! # Ok(())
//! # }
//! ```

use std::path::Path;

use serde::Serialize;

use crate::cache::{Encoding, ObjectReader};
use crate::error::{GitError, Result};
use crate::object::ObjectId;
use crate::pointer::Kind;
use crate::repo::Repo;
use crate::snapshot::{FileData, Located, Objects, PlainFile, Snapshot, open_repo};

/// A tracked path's data located at a revision.
#[derive(Debug, Clone, Serialize)]
pub struct Resolved {
    /// The path, repo-relative.
    pub path: String,
    /// The revision asked for, if any.
    pub rev: Option<String>,
    /// The commit it resolved to (full hex), if any.
    pub commit: Option<String>,
    /// The pointer file that covers the path, repo-relative.
    pub pointer: String,
    /// The object id (for a directory: its manifest's).
    pub id: ObjectId,
    /// Content bytes (for a directory: all its files').
    pub size: u64,
    /// File or directory.
    pub kind: Kind,
    /// Whether the file is executable.
    pub executable: bool,
}

/// Where a tracked path's data is on a remote.
#[derive(Debug, Clone, Serialize)]
pub struct UrlInfo {
    /// The object's URL (for a directory remote: its absolute path). For an object
    /// stored in a pack, the pack's, and [`UrlInfo::range`] says where in it.
    pub url: String,
    /// For an object in a pack: the byte range of its stored form in the pack file
    /// at `url` (`start`, `end` exclusive). `None` when the object has a file of its own.
    pub range: Option<std::ops::Range<u64>>,
    /// The remote's name.
    pub remote: String,
    /// How the object is stored (`zstd` or `raw`); `None` if neither the cache
    /// nor the remote has it.
    pub encoding: Option<Encoding>,
    /// Whether the remote has the object.
    pub on_remote: bool,
    /// For data `dvt import-url` brought: where it is at the source, which a
    /// fetch reads when no remote has it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub imported_from: Option<ImportedFrom>,
    /// What the path resolved to.
    #[serde(flatten)]
    pub data: Resolved,
}

/// Where data imported from a URL is there (see [`UrlInfo::imported_from`]).
#[derive(Debug, Clone, Serialize)]
pub struct ImportedFrom {
    /// The URL of the path: the import's URL as recorded (`remote://NAME/…` too),
    /// with the path below it for a part of an imported directory.
    pub url: String,
    /// The store's version id of that object, for a version-aware import
    /// (`import-url --version-aware`) of a file; `None` otherwise.
    pub version: Option<String>,
}

impl ImportedFrom {
    /// Where `loc` is at the URL its pointer imported it from, if it did.
    fn of(loc: &Located) -> Option<ImportedFrom> {
        let Some(crate::pointer::Source::Url(src)) = &loc.tracked.pointer.source else {
            return None;
        };
        Some(match loc.inner.is_empty() {
            true => ImportedFrom {
                url: src.url.clone(),
                version: src.version.clone(),
            },
            false => ImportedFrom {
                url: format!("{}/{}", src.url.trim_end_matches('/'), loc.inner),
                version: src.versions.get(&loc.inner).cloned(),
            },
        })
    }
}

/// Locates repo-relative `rel` at `rev` in `repo`; manifests missing from the
/// cache are fetched through `objects`.
pub fn resolve(repo: &Repo, rel: &str, rev: Option<&str>, objects: &Objects<'_>) -> Result<Resolved> {
    let snap = Snapshot::open(repo, rev)?;
    let loc = snap.locate(rel)?;
    resolve_located(&snap, loc, rel, rev, objects)
}

/// [`resolve`], for `rel` as `snap.locate` found it.
fn resolve_located(
    snap: &Snapshot<'_>,
    loc: Located,
    rel: &str,
    rev: Option<&str>,
    objects: &Objects<'_>,
) -> Result<Resolved> {
    let FileData {
        id,
        size,
        kind,
        executable,
    } = snap.file_data(&loc, objects)?;
    Ok(Resolved {
        path: rel.trim_end_matches('/').to_string(),
        rev: rev.map(str::to_string),
        commit: snap.commit().map(|c| c.to_string()),
        pointer: loc.tracked.pointer_rel,
        id,
        size,
        kind,
        executable,
    })
}

/// The URL of the data at `rel` on remote `remote` of an open repository.
pub fn get_url_in(repo: &Repo, rel: &str, rev: Option<&str>, remote: Option<&str>) -> Result<UrlInfo> {
    let objects = Objects::new(repo, remote);
    let snap = Snapshot::open(repo, rev)?;
    let loc = snap.locate(rel)?;
    let imported_from = ImportedFrom::of(&loc);
    let data = resolve_located(&snap, loc, rel, rev, &objects)?;
    let r = match objects.remote_for(&data.id, Some(&data.path)) {
        // No remote at all (said as the object missing, for reads): a URL
        // needs one, whatever the cache holds.
        Err(crate::Error::Cache(crate::error::CacheError::Missing { .. })) => objects.remote()?,
        r => r?,
    };
    let on_remote = r.block_on(r.encoding_of(&data.id))?;
    let encoding = match on_remote {
        Some(e) => Some(e),
        None if repo.cache().contains(&data.id) => Some(repo.cache().encoding(&data.id)?),
        None => None,
    };
    let (url, range) = r.block_on(r.url_of(&data.id))?;
    Ok(UrlInfo {
        url,
        range,
        remote: r.name.clone(),
        encoding,
        on_remote: on_remote.is_some(),
        imported_from,
        data,
    })
}

/// Opens the content of file `rel` in an open repository: from the cache, or
/// downloaded (and verified) into it from the remote. The whole object is
/// verified before the reader is returned, and the reader checks the hash again
/// as it streams, failing the last read if the bytes changed meanwhile.
pub fn open_in(repo: &Repo, rel: &str, rev: Option<&str>, remote: Option<&str>) -> Result<(Resolved, ObjectReader)> {
    let objects = Objects::new(repo, remote).following_sources();
    let data = resolve(repo, rel, rev, &objects)?;
    read_data(repo, data, rev, &objects)
}

/// The content of `data`, a file, from `objects` (see [`open_in`]).
fn read_data(
    repo: &Repo,
    data: Resolved,
    rev: Option<&str>,
    objects: &Objects<'_>,
) -> Result<(Resolved, ObjectReader)> {
    if data.kind == Kind::Dir {
        return Err(GitError::IsDirectory {
            path: data.path,
            rev: rev.map_or_else(|| "the workspace".to_string(), |r| format!("`{r}`")),
        }
        .into());
    }
    objects.ensure(&data.id, Some(&data.path))?;
    repo.cache().verify(&data.id).map_err(|e| with_path(e, &data.path))?;
    let reader = repo.cache().reader(&data.id, Some(&data.path))?;
    Ok((data, reader))
}

/// What [`open_file_in`] found at a path.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "source", rename_all = "lowercase")]
pub enum Opened {
    /// Data dvt tracks, read from its cache (or remote), verified.
    Data(Resolved),
    /// A file no pointer covers: git's at a revision, the work tree's otherwise.
    Plain {
        /// The path, repo-relative.
        path: String,
        /// The commit it was read from (none in the workspace).
        commit: Option<String>,
        /// Its size in bytes.
        size: u64,
        /// Whether it is executable.
        executable: bool,
    },
}

/// A reader of a file's content, as [`open`] returns it: tracked data, whose
/// hash is checked again as it streams, or a file git (or the work tree) holds.
#[derive(Debug)]
pub struct FileReader(Content);

#[derive(Debug)]
enum Content {
    // Boxed: the hasher inside is large.
    Data(Box<ObjectReader>),
    Git(std::io::Cursor<Vec<u8>>),
    Disk(fs_err::File),
}

impl std::io::Read for FileReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match &mut self.0 {
            Content::Data(r) => r.read(buf),
            Content::Git(r) => r.read(buf),
            Content::Disk(r) => r.read(buf),
        }
    }
}

/// Opens file `rel` of an open repository at `rev` as DVC's API reads a
/// path: tracked data as [`open_in`] does; a path no pointer covers from git
/// at a revision, or from the work tree without one.
pub fn open_file_in(repo: &Repo, rel: &str, rev: Option<&str>, remote: Option<&str>) -> Result<(Opened, FileReader)> {
    let snap = Snapshot::open(repo, rev)?;
    match snap.locate(rel) {
        Err(crate::Error::Git(GitError::NotTrackedAt { .. })) => {}
        located => {
            let objects = Objects::new(repo, remote).following_sources();
            let data = resolve_located(&snap, located?, rel, rev, &objects)?;
            let (data, reader) = read_data(repo, data, rev, &objects)?;
            return Ok((Opened::Data(data), FileReader(Content::Data(Box::new(reader)))));
        }
    }
    let path = rel.trim_end_matches('/').to_string();
    let commit = snap.commit().map(|c| c.to_string());
    let (size, executable, content) = match snap.plain_file(&path)? {
        Some(PlainFile::Git { bytes, executable }) => (
            bytes.len() as u64,
            executable,
            Content::Git(std::io::Cursor::new(bytes)),
        ),
        Some(PlainFile::Disk { file, size, executable }) => (size, executable, Content::Disk(file)),
        None => {
            return Err(GitError::NoSuchPath {
                path,
                rev: snap.label(),
            }
            .into());
        }
    };
    let opened = Opened::Plain {
        path,
        commit,
        size,
        executable,
    };
    Ok((opened, FileReader(content)))
}

fn with_path(e: crate::Error, path: &str) -> crate::Error {
    match e {
        crate::Error::Cache(crate::error::CacheError::Corrupt { id, reason, .. }) => {
            crate::error::CacheError::Corrupt {
                id,
                path: Some(path.to_string()),
                reason,
            }
            .into()
        }
        e => e,
    }
}

/// The URL, id, size and encoding of the data at `path` on a remote. See the
/// [module docs](self) for the arguments.
pub fn get_url(path: &str, repo: Option<&Path>, rev: Option<&str>, remote: Option<&str>) -> Result<UrlInfo> {
    get_url_in(&open_repo(repo)?, path, rev, remote)
}

/// A streaming reader of the content of file `path`: tracked data verified,
/// or a file git keeps. See [`open_file_in`] and the [module docs](self).
pub fn open(path: &str, repo: Option<&Path>, rev: Option<&str>, remote: Option<&str>) -> Result<FileReader> {
    Ok(open_file_in(&open_repo(repo)?, path, rev, remote)?.1)
}

/// The verified content of file `path`, whole. See the [module docs](self).
pub fn read(path: &str, repo: Option<&Path>, rev: Option<&str>, remote: Option<&str>) -> Result<Vec<u8>> {
    use std::io::Read;
    let mut out = Vec::new();
    open(path, repo, rev, remote)?.read_to_end(&mut out)?;
    Ok(out)
}
