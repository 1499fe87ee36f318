//! `dvt import-url`: track data that lives outside any dvt repository (an object or
//! prefix of S3, GCS, Azure or WebDAV, a file over HTTP, a local file or
//! directory), as `dvc import-url` does. The data is downloaded, stored in the
//! cache like added data, and its pointer records the URL and a fingerprint of
//! what was there, so that `dvt update` downloads it again only when it changed.
//!
//! Options a store needs (an endpoint, keys) come from the environment (`AWS_*`,
//! `GOOGLE_*`, `AZURE_*`), or from a configured remote: `remote://NAME/path` is
//! `path` below remote `NAME`'s URL, with its options.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use futures::StreamExt;
use serde::Serialize;

use crate::error::{PathError, RemoteError, Result};
use crate::object::ObjectId;
use crate::ops::import::{Updated, record, track};
use crate::pointer::{Kind, Pointer, Source, UrlSource, pointer_path_for};
use crate::progress::Progress;
use crate::remote::config::{RemoteSpec, Scheme, parse_url, spec};
use crate::remote::{Remote, SourceEntry};
use crate::repo::Repo;
use crate::workspace::{Counters, Identify, Tracked};

/// What to import, and where.
#[derive(Debug, Clone)]
pub struct ImportUrlOptions {
    /// The URL (or local path) as the user gave it.
    pub url: String,
    /// Where to put the data (default: the URL's last component, in `cwd`).
    pub out: Option<PathBuf>,
    /// The directory relative paths start from.
    pub cwd: PathBuf,
    /// Replace existing data and pointer at the destination.
    pub force: bool,
    /// Downloads at once (default: the store's `jobs`, or 4 per core).
    pub jobs: Option<usize>,
}

/// What `import-url` did.
#[derive(Debug, Clone, Serialize)]
pub struct ImportUrlReport {
    /// The URL as recorded in the pointer.
    pub url: String,
    /// Where the data is, repo-relative.
    pub path: String,
    /// The pointer file, repo-relative.
    pub pointer: String,
    /// File or directory.
    pub kind: Kind,
    /// The content (file) or manifest (directory) id.
    pub id: ObjectId,
    /// Total bytes.
    pub size: u64,
    /// Number of files, for a directory.
    pub files: Option<u64>,
}

/// Downloads what `opts.url` names into `opts.out` and tracks it with a pointer
/// that records the URL.
pub fn import_url(repo: &Repo, opts: &ImportUrlOptions, progress: &dyn Progress) -> Result<ImportUrlReport> {
    let url = recorded_url(&opts.url, &opts.cwd);
    let out = match &opts.out {
        Some(o) => opts.cwd.join(o),
        None => opts.cwd.join(last_component(&url)),
    };
    let (out, rel) = repo.resolve(&opts.cwd, &out)?;
    repo.check_trackable(&rel)?;
    if let Some(tracked) = crate::workspace::tracked_ancestor(repo, &rel) {
        return Err(PathError::InsideTracked { path: rel, tracked }.into());
    }
    if !opts.force && (out.symlink_metadata().is_ok() || pointer_path_for(&out).exists()) {
        return Err(PathError::Exists {
            path: out,
            flag: "--force",
        }
        .into());
    }
    let _lock = repo.lock(&format!("dvt import-url {url}"))?;
    let source = open_source(repo, &url, opts.jobs)?;
    let listing = list(&source, &url)?;
    if let Some(parent) = out.parent() {
        fs_err::create_dir_all(parent)?;
    }
    let mut got = download(repo, &source, &url, &listing, &out, &rel, progress)?;
    place(repo, &out, &rel, &got.pointer, &mut got.staging, opts.force, progress)?;
    let p = got.pointer;
    Ok(ImportUrlReport {
        url,
        pointer: format!("{rel}.dvt"),
        path: rel,
        kind: p.kind,
        id: p.id,
        size: p.size,
        files: p.files,
    })
}

/// Downloads data imported from `src` again if what is there changed since, and
/// checks it out. Local changes to it stop the update unless `force`.
pub(crate) fn update_from_url(
    repo: &Repo,
    t: &Tracked,
    src: &UrlSource,
    force: bool,
    jobs: Option<usize>,
    progress: &dyn Progress,
) -> Result<Updated> {
    let source = open_source(repo, &src.url, jobs)?;
    let listing = list(&source, &src.url)?;
    let mut updated = Updated {
        pointer: t.pointer_rel.clone(),
        url: Some(src.url.clone()),
        from: src.fingerprint.clone(),
        to: fingerprint(&listing),
        changed: false,
    };
    if updated.to == updated.from {
        return Ok(updated);
    }
    let mut got = download(repo, &source, &src.url, &listing, &t.data_abs, &t.data_rel, progress)?;
    updated.changed = got.pointer.id != t.pointer.id;
    if !updated.changed {
        // Same bytes under a new version (a rewrite, a copy): only the fingerprint moves.
        got.pointer.save(&t.pointer_file)?;
        return Ok(updated);
    }
    if !force {
        crate::ops::checkout::refuse_unrecorded_changes(repo, t)?;
    }
    got.staging.remove();
    track(repo, &t.data_abs, &t.data_rel, &got.pointer, force, progress)?;
    Ok(updated)
}

/// A local path is recorded absolute; URLs as given.
fn recorded_url(url: &str, cwd: &Path) -> String {
    if url.contains("://") {
        return url.to_string();
    }
    crate::repo::normalize(&cwd.join(url)).display().to_string()
}

/// The name data from `url` gets by default: the last component of its path.
fn last_component(url: &str) -> String {
    let path = url.split_once("://").map_or(url, |(_, rest)| rest);
    path.trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or(path)
        .to_string()
}

/// Opens the store `url` is in, rooted at what `url` names. A local path becomes
/// a store rooted at `/`, so that the path may name a file as well as a directory.
fn open_source(repo: &Repo, url: &str, jobs: Option<usize>) -> Result<Remote> {
    let (spec, mut location) = match url.strip_prefix("remote://") {
        Some(rest) => {
            let (name, path) = rest.split_once('/').unwrap_or((rest, ""));
            let (mut spec, mut location) = spec(repo.config(), name, repo.root())?;
            let path = path.trim_matches('/');
            match (&location.dir, path.is_empty()) {
                (_, true) => {}
                (Some(dir), false) => location.dir = Some(dir.join(path)),
                (None, false) if location.prefix.is_empty() => location.prefix = path.to_string(),
                (None, false) => location.prefix = format!("{}/{path}", location.prefix),
            }
            spec.name = url.to_string();
            (spec, location)
        }
        None => {
            let location = parse_url(url, url, repo.root()).map_err(|e| about(e, url))?;
            let spec = RemoteSpec {
                name: url.to_string(),
                url: url.to_string(),
                options: Default::default(),
            };
            (spec, location)
        }
    };
    if location.scheme == Scheme::Local {
        let dir = location.dir.take().unwrap_or_default();
        location.prefix = dir.to_string_lossy().trim_start_matches('/').to_string();
        location.dir = Some(PathBuf::from("/"));
    }
    Remote::from_spec(&spec, &location, jobs, false).map_err(|e| about(e, url))
}

/// What is at the source, which must be something.
fn list(source: &Remote, url: &str) -> Result<Vec<SourceEntry>> {
    let listing = source
        .block_on(source.list_source(url.ends_with('/')))
        .map_err(|e| about(e, url))?;
    if listing.is_empty() {
        return Err(RemoteError::Source {
            url: url.to_string(),
            message: "there is nothing there (no object by that name, and none below it)".into(),
        }
        .into());
    }
    Ok(listing)
}

/// A remote's error, said of the URL being imported.
fn about(e: crate::Error, url: &str) -> crate::Error {
    match e {
        crate::Error::Remote(RemoteError::Request { message, .. } | RemoteError::Config { message, .. }) => {
            RemoteError::Source {
                url: url.to_string(),
                message,
            }
            .into()
        }
        e => e,
    }
}

/// What the source holds, in one hash: see [`UrlSource::fingerprint`].
fn fingerprint(listing: &[SourceEntry]) -> String {
    let mut h = blake3::Hasher::new();
    for e in listing {
        h.update(e.rel.as_bytes());
        h.update(b"\0");
        h.update(e.size.to_string().as_bytes());
        h.update(b"\0");
        h.update(e.version.as_bytes());
        h.update(b"\n");
    }
    h.finalize().to_hex().to_string()
}

/// A download beside its destination, deleted unless it is moved into place.
struct Staging {
    path: PathBuf,
    live: bool,
}

impl Staging {
    fn remove(&mut self) {
        if std::mem::take(&mut self.live) {
            let _ = match self.path.is_dir() {
                true => fs_err::remove_dir_all(&self.path),
                false => fs_err::remove_file(&self.path),
            };
        }
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        self.remove();
    }
}

struct Downloaded {
    pointer: Pointer,
    staging: Staging,
}

/// Downloads `listing` beside `out` and stores it in the cache, as `dvt add` of
/// `rel` would. The pointer records `url`.
fn download(
    repo: &Repo,
    source: &Remote,
    url: &str,
    listing: &[SourceEntry],
    out: &Path,
    rel: &str,
    progress: &dyn Progress,
) -> Result<Downloaded> {
    let is_dir = !matches!(listing, [only] if only.rel.is_empty());
    // What a killed download left beside `out` (the caller holds the lock).
    crate::fsutil::remove_stale_siblings(&[out])?;
    let mut staging = Staging {
        path: crate::fsutil::temp_sibling(out),
        live: true,
    };
    if is_dir {
        fs_err::create_dir(&staging.path)?;
    }
    let total = listing.iter().map(|e| e.size).sum();
    progress.start(&format!("downloading {url}"), total, true);
    let on_bytes = |n| progress.inc(n);
    let results: Vec<Result<()>> = source.block_on(
        futures::stream::iter(listing)
            .map(|e| {
                let dest = match e.rel.is_empty() {
                    true => staging.path.clone(),
                    false => staging.path.join(&e.rel),
                };
                let on_bytes = &on_bytes;
                async move {
                    if let Some(parent) = dest.parent() {
                        fs_err::create_dir_all(parent)?;
                    }
                    source.download_source(e, &dest, on_bytes).await
                }
            })
            .buffer_unordered(source.jobs)
            .collect(),
    );
    progress.finish();
    if let Some(e) = results.into_iter().find_map(Result::err) {
        staging.remove();
        return Err(about(e, url));
    }
    let stat = repo.stat_cache();
    let counters = Counters::default();
    let packing = repo.cache().begin_packing();
    let how = Identify::Store(repo.cache());
    let mut pointer =
        crate::ops::add::identify_path(repo, &staging.path, rel, is_dir, how, &stat, &counters, progress)?;
    packing.finish()?;
    if counters.written_bytes.load(Ordering::Relaxed) > 0 && repo.config().cache.fsync {
        crate::fsutil::sync_filesystem(repo.cache().root())?;
    }
    let _ = stat.save();
    pointer.source = Some(Source::Url(UrlSource {
        url: url.to_string(),
        fingerprint: fingerprint(listing),
    }));
    Ok(Downloaded { pointer, staging })
}

/// Puts downloaded data in place at `out` and writes its pointer: by renaming
/// the download if nothing is there, else by a checkout from the cache (which
/// refuses to replace changed data unless `force`).
fn place(
    repo: &Repo,
    out: &Path,
    rel: &str,
    pointer: &Pointer,
    staging: &mut Staging,
    force: bool,
    progress: &dyn Progress,
) -> Result<()> {
    if out.symlink_metadata().is_err() {
        fs_err::rename(&staging.path, out)?;
        staging.live = false;
        return record(repo, out, rel, pointer);
    }
    staging.remove();
    track(repo, out, rel, pointer, force, progress)
}
