//! `dvt import-url`: track data that lives outside any dvt repository (an object or
//! prefix of S3, GCS, Azure or WebDAV, a file over HTTP, a local file or
//! directory), as `dvc import-url` does. The data is downloaded, stored in the
//! cache like added data, and its pointer records the URL and a fingerprint of
//! what was there, so that `dvt update` downloads it again only when it changed.
//!
//! Options a store needs (an endpoint, keys) come from the environment (`AWS_*`,
//! `GOOGLE_*`, `AZURE_*`), or from a configured remote: `remote://NAME/path` is
//! `path` below remote `NAME`'s URL, with its options.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use futures::StreamExt;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::cache::SMALL_OBJECT;
use crate::error::{PathError, RemoteError, Result};
use crate::manifest::{Entry, Manifest};
use crate::object::ObjectId;
use crate::ops::import::{Downloads, Updated, record, track, write_pointer};
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
    /// Send the data to a remote instead of the cache and workspace, as `dvc
    /// import-url --to-remote`: `Some(None)` for the default remote,
    /// `Some(Some(name))` for another.
    pub to_remote: Option<Option<String>>,
    /// Options of the store (`--fs-config`, DVC's): a remote's option names,
    /// over those a `remote://` URL's remote has; recorded in the pointer, so
    /// never secrets.
    pub fs_config: BTreeMap<String, String>,
    /// Read the data only to hash it, keeping no copy (DVC's `--no-download`):
    /// the pointer is written, and `dvt pull` downloads the data from the URL.
    pub no_download: bool,
    /// Record the store's version id of each object read (DVC's
    /// `--version-aware`; S3, GCS and Azure only), so that the data can be read
    /// from the store later as it was, even after it was overwritten there.
    pub version_aware: bool,
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
    /// With `--to-remote`: what went to the remote.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uploaded: Option<Uploaded>,
    /// Whether the data is here (in the cache and the workspace): not with
    /// `--no-download` or `--to-remote`.
    pub downloaded: bool,
}

/// What `import-url --to-remote` sent to the remote.
#[derive(Debug, Clone, Serialize)]
pub struct Uploaded {
    /// The remote's name.
    pub remote: String,
    /// Objects uploaded (the others were there already).
    pub objects: u64,
    /// Stored bytes uploaded.
    pub bytes: u64,
}

/// An entry of `dvt ls-url`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UrlEntry {
    /// Its path below the URL, `/`-separated (the object's name when the URL
    /// names one object).
    pub path: String,
    /// Whether it is a directory (objects share this prefix).
    pub isdir: bool,
    /// Its size in bytes; a directory's: every object below it.
    pub size: u64,
}

/// The objects of a recursive [`ls_url`] listing no deeper than `level`
/// levels: what lies deeper shows as its directory at that level, once, with
/// the size of everything below it (as `dvc ls-url -R -L`).
pub fn to_level(entries: Vec<UrlEntry>, level: usize) -> Vec<UrlEntry> {
    let mut kept: std::collections::BTreeMap<String, UrlEntry> = Default::default();
    for e in entries.into_iter().filter(|e| !e.isdir) {
        match super::list::dir_at_level(&e.path, level) {
            None => {
                kept.insert(e.path.clone(), e);
            }
            Some(dir) => {
                let dir = dir.to_string();
                let d = kept.entry(dir.clone()).or_insert(UrlEntry {
                    path: dir,
                    isdir: true,
                    size: 0,
                });
                d.size += e.size;
            }
        }
    }
    kept.into_values().collect()
}

/// `dvt ls-url`, as `dvc ls-url`: what `url` holds (a URL as `import-url`
/// takes it): the objects and directories just below it, or with `recursive`
/// every object below it. One object, if the URL names one. A relative path
/// starts from `cwd`; `repo` resolves `remote://NAME/…` URLs (outside a
/// repository, pass one made with [`Repo::at_commit`] and no config).
pub fn ls_url(
    repo: &Repo,
    cwd: &Path,
    url: &str,
    recursive: bool,
    fs_config: &BTreeMap<String, String>,
) -> Result<Vec<UrlEntry>> {
    let url = recorded_url(url, cwd);
    let unlisted = |e: crate::Error| match e {
        crate::Error::Remote(RemoteError::Source { url, message }) => RemoteError::Unlisted { url, message }.into(),
        e => e,
    };
    let source = open_source(repo, &url, None, fs_config).map_err(unlisted)?;
    let listing = list(&source, &url).map_err(unlisted)?;
    if let [only] = listing.as_slice()
        && only.rel.is_empty()
    {
        return Ok(vec![UrlEntry {
            path: last_component(&url),
            isdir: false,
            size: only.size,
        }]);
    }
    let mut out: Vec<UrlEntry> = Vec::new();
    for e in &listing {
        let (path, isdir) = match e.rel.split_once('/') {
            Some((dir, _)) if !recursive => (dir, true),
            _ => (e.rel.as_str(), false),
        };
        match out.last_mut() {
            Some(last) if isdir && last.isdir && last.path == path => last.size += e.size,
            _ => out.push(UrlEntry {
                path: path.to_string(),
                isdir,
                size: e.size,
            }),
        }
    }
    Ok(out)
}

/// Downloads what `opts.url` names into `opts.out` and tracks it with a pointer
/// that records the URL.
pub fn import_url(repo: &Repo, opts: &ImportUrlOptions, progress: &dyn Progress) -> Result<ImportUrlReport> {
    bring(repo, opts, true, progress)
}

/// `dvt add SRC -o OUT`, as `dvc add --out`: copies data from a path outside the
/// workspace (or anywhere) to `opts.out` and tracks it there like added data (or
/// with `to_remote`, sends it to a remote instead). Unlike `import_url`, the
/// pointer does not record where the data came from. `opts.url` is a local path.
pub fn add_external(repo: &Repo, opts: &ImportUrlOptions, progress: &dyn Progress) -> Result<ImportUrlReport> {
    if opts.url.contains("://") {
        return Err(PathError::AddUrl { url: opts.url.clone() }.into());
    }
    let src = crate::repo::normalize(&opts.cwd.join(&opts.url));
    if src.symlink_metadata().is_err() {
        return Err(PathError::NotFound { path: src }.into());
    }
    if opts.to_remote.is_some() {
        return bring(repo, opts, false, progress);
    }
    // A copy beside OUT, renamed into place, then added as any data is.
    let (out, _) = destination(repo, opts, crate::workspace::file_name(&src.to_string_lossy()))?;
    if let Some(parent) = out.parent() {
        fs_err::create_dir_all(parent)?;
    }
    let mut staging = Staging {
        path: crate::fsutil::temp_sibling(&out),
        live: true,
    };
    copy_tree(&src, &staging.path)?;
    remove_data(&out)?;
    fs_err::rename(&staging.path, &out)?;
    staging.live = false;
    let added = crate::ops::add::add(
        repo,
        &crate::ops::AddOptions {
            paths: vec![out.clone()],
            cwd: repo.root().to_path_buf(),
            no_commit: false,
        },
        progress,
    );
    // Refused (a file git tracks inside, say): the copy goes again.
    let added = added.inspect_err(|_| {
        let _ = remove_data(&out);
    })?;
    let a = added.added.into_iter().next().expect("one path was added");
    Ok(ImportUrlReport {
        url: src.display().to_string(),
        path: a.path,
        pointer: a.pointer,
        kind: a.kind,
        id: a.id,
        size: a.size,
        files: a.files,
        uploaded: None,
        downloaded: true,
    })
}

/// Copies the file or directory `src` to `dest` (which must not exist): files
/// with their permissions, directories (empty ones too), following symbolic
/// links as `cp -rL` does (a link loop or a dangling link is an error).
fn copy_tree(src: &Path, dest: &Path) -> Result<()> {
    let mut files = Vec::new();
    let walk = ignore::WalkBuilder::new(src)
        .standard_filters(false)
        .follow_links(true)
        .build();
    for entry in walk {
        let entry = entry.map_err(|e| std::io::Error::other(e.to_string()))?;
        let to = match entry.path().strip_prefix(src) {
            Ok(rel) if rel.as_os_str().is_empty() => dest.to_path_buf(),
            Ok(rel) => dest.join(rel),
            Err(_) => continue,
        };
        let Some(kind) = entry.file_type() else { continue };
        if kind.is_dir() {
            fs_err::create_dir(&to)?;
        } else {
            files.push((entry.into_path(), to));
        }
    }
    files.par_iter().try_for_each(|(from, to)| -> Result<()> {
        fs_err::copy(from, to)?;
        Ok(())
    })
}

/// Where `opts` puts the data (absolute, repo-relative), `default` in `cwd` if
/// it names no place; refused if it cannot be tracked there, or (without
/// `force`) if data or a pointer is there already.
fn destination(repo: &Repo, opts: &ImportUrlOptions, default: &str) -> Result<(PathBuf, String)> {
    let out = opts.cwd.join(opts.out.as_deref().unwrap_or(Path::new(default)));
    let (out, rel) = repo.resolve(&opts.cwd, &out)?;
    repo.check_trackable(&rel)?;
    if crate::pointer::is_pointer_path(&out) {
        return Err(PathError::Reserved {
            path: out,
            reason: "it would be a pointer file; name the data path instead",
        }
        .into());
    }
    if let Some(tracked) = crate::workspace::tracked_ancestor(repo, &rel) {
        return Err(PathError::InsideTracked { path: rel, tracked }.into());
    }
    crate::ops::add::refuse_git_tracked(repo, [rel.as_str()])?;
    crate::ops::add::refuse_ignored_pointers(repo, [rel.as_str()])?;
    if !opts.force && (out.symlink_metadata().is_ok() || pointer_path_for(&out).exists()) {
        return Err(PathError::Exists {
            path: out,
            flag: "--force",
        }
        .into());
    }
    Ok((out, rel))
}

/// `import_url`, recording the URL in the pointer or not.
fn bring(repo: &Repo, opts: &ImportUrlOptions, record_url: bool, progress: &dyn Progress) -> Result<ImportUrlReport> {
    if opts.url.trim().is_empty() {
        return Err(RemoteError::Source {
            url: opts.url.clone(),
            message: "the URL is empty".into(),
        }
        .into());
    }
    let url = recorded_url(&opts.url, &opts.cwd);
    // A URL that names no store is refused before it is turned into a path here.
    if record_url
        && let Some(key) = opts
            .fs_config
            .keys()
            .find(|k| crate::remote::config::SECRET_KEYS.contains(&k.as_str()))
    {
        return Err(RemoteError::SecretInPointer {
            key: key.clone(),
            command: "dvt import-url",
            flag: "--fs-config",
        }
        .into());
    }
    let source = open_source(repo, &url, opts.jobs, &opts.fs_config)?;
    if opts.version_aware && !matches!(source.scheme, Scheme::S3 | Scheme::Gcs | Scheme::Azure) {
        return Err(RemoteError::Source {
            url: url.clone(),
            message:
                "`--version-aware` reads the versions an object store keeps: it takes an s3://, gs:// or az:// URL \
                      (or a remote:// of one)"
                    .into(),
        }
        .into());
    }
    // A version named in the URL (as S3's console copies one) would be read as part of the key.
    if matches!(source.scheme, Scheme::S3 | Scheme::Gcs | Scheme::Azure)
        && ["?versionId=", "?generation=", "?versionid="]
            .iter()
            .any(|q| url.contains(q))
    {
        return Err(RemoteError::Source {
            url: url.clone(),
            message: "dvt does not read a version named in the URL: import the object's URL without it \
                      (`--version-aware` records the version it reads)"
                .into(),
        }
        .into());
    }
    let (out, rel) = destination(repo, opts, &last_component(&url))?;
    // The remote is opened (and its name checked) before anything is downloaded.
    let remote = match &opts.to_remote {
        Some(name) => Some(Remote::open(repo, name.as_deref(), opts.jobs, true)?),
        None => None,
    };
    let _lock = repo.lock(&format!("dvt import-url {url}"))?;
    let mut listing = list(&source, &url)?;
    // What `add -o` copies keeps its executable bits, as `add` would.
    if !record_url {
        listing.iter_mut().for_each(SourceEntry::note_mode);
    }
    if let Some(parent) = out.parent() {
        fs_err::create_dir_all(parent)?;
    }
    // Asked before the download, which checks that each object is still the one listed.
    let versions = versions_of(&source, &url, &listing, opts.version_aware, progress)?;
    let recorded = record_url.then(|| url_source(&url, &opts.fs_config, &listing, versions));
    let (p, uploaded) = match &remote {
        None if opts.no_download => {
            let mut pointer = hash_at_source(&source, &url, &listing, &rel, progress)?;
            pointer.source = recorded.clone();
            write_pointer(repo, &out, &rel, &pointer)?;
            (pointer, None)
        }
        Some(remote) => {
            let (mut pointer, uploaded) = send_to_remote(repo, &source, remote, &url, &listing, &rel, progress)?;
            pointer.source = recorded.clone();
            // The data is not here: what was at `out` (only with --force) goes.
            remove_data(&out)?;
            write_pointer(repo, &out, &rel, &pointer)?;
            (pointer, Some(uploaded))
        }
        None => {
            let mut got = download(repo, &source, &url, &listing, &out, &rel, None, progress)?;
            got.pointer.source = recorded.clone();
            place(repo, &out, &rel, &got.pointer, &mut got.staging, opts.force, progress)?;
            if record_url {
                Known::save(repo, &url, &rel, &listing, &got.pointer);
            }
            (got.pointer, None)
        }
    };
    Ok(ImportUrlReport {
        url,
        pointer: format!("{rel}.dvt"),
        path: rel,
        kind: p.kind,
        id: p.id,
        size: p.size,
        files: p.files,
        downloaded: uploaded.is_none() && !opts.no_download,
        uploaded,
    })
}

/// How `update` treats an import from a URL.
pub(crate) struct UrlUpdate<'a> {
    /// Replace local changes.
    pub force: bool,
    /// Downloads at once.
    pub jobs: Option<usize>,
    /// Send new data to this remote instead of the cache and workspace.
    pub to_remote: Option<&'a Remote>,
    /// Record the new content's id only, reading it without keeping it
    /// (`--no-download`): the workspace keeps the old data until `dvt pull`.
    pub no_download: bool,
}

/// Removes the file or directory at `path`, if there is one.
fn remove_data(path: &Path) -> Result<()> {
    match path.symlink_metadata() {
        Ok(m) if m.is_dir() => fs_err::remove_dir_all(path)?,
        Ok(_) => fs_err::remove_file(path)?,
        Err(_) => {}
    }
    Ok(())
}

/// Bytes `--to-remote` downloads at once, unless a single file is bigger: the
/// disk it needs is their objects, plus the big files being stored.
const TO_REMOTE_BATCH: u64 = 512 << 20;

/// The scratch directories of `--to-remote`, in `.dvt/tmp`.
const SCRATCH_PREFIX: &str = "to-remote-";

/// Files `--to-remote` downloads at once: each batch asks the remote which of
/// its objects it has, which for many costs a listing of the remote.
const TO_REMOTE_FILES: usize = 10_000;

/// Sends what `listing` names from `source` to `remote` without keeping it: a
/// batch at a time, stored as it arrives in a scratch cache under `.dvt/tmp` (so
/// it is hashed, compressed and verified exactly as `push` sends any object), the
/// objects the remote lacks uploaded, the batch deleted. A directory's manifest
/// goes up last, after all of its files, and stays in the repo's cache (it is
/// small, and lets `status` and `pull` know the files without asking the remote).
fn send_to_remote(
    repo: &Repo,
    source: &Remote,
    remote: &Remote,
    url: &str,
    listing: &[SourceEntry],
    rel: &str,
    progress: &dyn Progress,
) -> Result<(Pointer, Uploaded)> {
    // What a killed import left (the caller holds the repo lock, so no other is running).
    let tmp = repo.tmp_dir()?;
    for e in fs_err::read_dir(&tmp)?.flatten() {
        if e.file_name().to_string_lossy().starts_with(SCRATCH_PREFIX) {
            let _ = fs_err::remove_dir_all(e.path());
        }
    }
    let scratch = tempfile::Builder::new().prefix(SCRATCH_PREFIX).tempdir_in(&tmp)?;
    let mut uploaded = Uploaded {
        remote: remote.name.clone(),
        objects: 0,
        bytes: 0,
    };
    let mut batches = Vec::new();
    let mut start = 0;
    while start < listing.len() {
        let mut end = start + 1;
        let mut bytes = listing[start].size;
        while end < listing.len() && end - start < TO_REMOTE_FILES && bytes + listing[end].size <= TO_REMOTE_BATCH {
            bytes += listing[end].size;
            end += 1;
        }
        batches.push((&listing[start..end], bytes));
        start = end;
    }
    let mut ids = Vec::with_capacity(listing.len());
    for (k, (batch, bytes)) in batches.iter().enumerate() {
        let dir = scratch.path().join(format!("batch-{k}"));
        let files = dir.join("files");
        fs_err::create_dir_all(&files)?;
        let part = match batches.len() {
            1 => String::new(),
            n => format!(" (part {} of {n})", k + 1),
        };
        let cache = crate::cache::Cache::new(dir.join("cache"), repo.config().cache.level);
        let label = format!("downloading {url}{part}");
        let stored = store_entries(source, url, batch, &cache, &files, (&label, *bytes), progress)?;
        let (n, sent) = upload_missing(remote, &cache, &stored, progress)?;
        uploaded.objects += n;
        uploaded.bytes += sent;
        fs_err::remove_dir_all(&dir)?;
        ids.extend(stored);
    }
    let (pointer, manifest) = pointer_of(listing, ids, rel);
    if let Some(manifest) = manifest {
        repo.cache().put_bytes(&manifest.to_bytes())?;
        let (n, sent) = upload_missing(remote, repo.cache(), &[pointer.id], progress)?;
        uploaded.objects += n;
        uploaded.bytes += sent;
    }
    Ok((pointer, uploaded))
}

/// Stores each of `entries` of `source` (listed from `url`) in `cache` as it
/// arrives, `source.jobs` at a time, as `add` stores data (small objects
/// packed together): small ones from memory, big ones through a file in
/// `files`, deleted once stored. Their ids, in `entries`' order; the progress
/// bar is `bar` (its label and bytes).
fn store_entries(
    source: &Remote,
    url: &str,
    entries: &[SourceEntry],
    cache: &crate::cache::Cache,
    files: &Path,
    bar: (&str, u64),
    progress: &dyn Progress,
) -> Result<Vec<ObjectId>> {
    let packing = cache.begin_packing();
    progress.start(bar.0, bar.1, true);
    let on_bytes = |n| progress.inc(n);
    let mut results: Vec<(usize, Result<ObjectId>)> = source.block_on(
        futures::stream::iter(entries.iter().enumerate())
            .map(|(i, e)| {
                let dest = files.join(i.to_string());
                let on_bytes = &on_bytes;
                async move {
                    let id = async {
                        if e.size <= SMALL_OBJECT {
                            let data = source.read_source(e, on_bytes).await?;
                            return tokio::task::block_in_place(|| Ok(cache.put_bytes(&data)?.id));
                        }
                        // A local file is stored as `add` stores one, read once; a
                        // change while it is read fails as it would for `add`.
                        if let Some(path) = source.local_source(e).await? {
                            return tokio::task::block_in_place(|| {
                                // (A symbolic link in the source is read as the file it names.)
                                let stamp = crate::statcache::Stamp::of(&fs_err::metadata(&path)?);
                                let id = cache.put_file(&path, &stamp)?.id;
                                on_bytes(e.size);
                                Ok(id)
                            });
                        }
                        source.download_source(e, &dest, on_bytes).await?;
                        tokio::task::block_in_place(|| {
                            let stamp = crate::statcache::Stamp::of(&fs_err::symlink_metadata(&dest)?);
                            let id = cache.put_file(&dest, &stamp)?.id;
                            fs_err::remove_file(&dest)?;
                            Ok(id)
                        })
                    };
                    (i, id.await)
                }
            })
            .buffer_unordered(source.jobs)
            .collect(),
    );
    progress.finish();
    packing.finish()?;
    results.sort_unstable_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r.map_err(|e| about(e, url))).collect()
}

/// The pointer of data at `rel` made of `listing`, whose objects have `ids`
/// (in the listing's order): a file's, or a directory's with its manifest,
/// which the caller stores or not.
fn pointer_of(listing: &[SourceEntry], ids: Vec<ObjectId>, rel: &str) -> (Pointer, Option<Manifest>) {
    let name = crate::workspace::file_name(rel).to_string();
    if matches!(listing, [only] if only.rel.is_empty()) {
        let mut pointer = Pointer::file(name, ids[0], listing[0].size);
        pointer.executable = listing[0].executable;
        return (pointer, None);
    }
    let entries = listing
        .iter()
        .zip(ids)
        .map(|(e, id)| Entry {
            path: e.rel.clone(),
            id,
            size: e.size,
            executable: e.executable,
        })
        .collect();
    let manifest = Manifest::new(entries, vec![]);
    let id = ObjectId::of(&manifest.to_bytes());
    let pointer = Pointer::dir(name, id, manifest.total_size(), manifest.files.len() as u64);
    (pointer, Some(manifest))
}

/// The pointer data at `rel` made of `listing` gets, its bytes read from the
/// source and hashed as they arrive, none kept (`--no-download`): the one a
/// download would make (the manifest of a directory is not stored either).
fn hash_at_source(
    source: &Remote,
    url: &str,
    listing: &[SourceEntry],
    rel: &str,
    progress: &dyn Progress,
) -> Result<Pointer> {
    progress.start(&format!("reading {url}"), listing.iter().map(|e| e.size).sum(), true);
    let on_bytes = |n| progress.inc(n);
    let mut results: Vec<(usize, Result<ObjectId>)> = source.block_on(
        futures::stream::iter(listing.iter().enumerate())
            .map(|(i, e)| {
                let on_bytes = &on_bytes;
                async move { (i, source.hash_source(e, on_bytes).await) }
            })
            .buffer_unordered(source.jobs)
            .collect(),
    );
    progress.finish();
    results.sort_unstable_by_key(|(i, _)| *i);
    let ids = results
        .into_iter()
        .map(|(_, r)| r.map_err(|e| about(e, url)))
        .collect::<Result<_>>()?;
    Ok(pointer_of(listing, ids, rel).0)
}

/// Downloads into the cache what `t` imported from `src`'s URL, for a fetch
/// whose remote lacks it (it was never pushed, or imported with
/// `--no-download`), when what is there now is what the pointer records.
/// Nothing is written to the workspace.
pub(crate) fn fetch_from_url(repo: &Repo, t: &Tracked, src: &UrlSource, progress: &dyn Progress) -> Result<()> {
    let listing = store_from_url(repo, repo.cache(), src, &t.pointer, &t.pointer_rel, progress)?;
    // What `update` may then reuse, as after an import.
    Known::save(repo, &src.url, &t.data_rel, &listing, &t.pointer);
    Ok(())
}

/// The error of a fetch that found other data at `src`'s URL than `pointer`
/// (a pointer file) records, and `why`.
fn url_changed(src: &UrlSource, pointer: &str, why: &str) -> crate::Error {
    RemoteError::UrlChanged {
        url: src.url.clone(),
        pointer: pointer.to_string(),
        why: why.to_string(),
    }
    .into()
}

/// What `listing` alone tells, before anything is downloaded: whether it may
/// still be what `pointer` records (the same kind, size and number of files).
fn still_there(listing: &[SourceEntry], pointer: &Pointer, changed: &dyn Fn(&str) -> crate::Error) -> Result<()> {
    let is_dir = !matches!(listing, [only] if only.rel.is_empty());
    if is_dir != (pointer.kind == Kind::Dir) {
        return Err(changed(if is_dir { "a directory now" } else { "a single file now" }));
    }
    if listing.iter().map(|e| e.size).sum::<u64>() != pointer.size
        || (is_dir && pointer.files != Some(listing.len() as u64))
    {
        return Err(changed("other sizes"));
    }
    Ok(())
}

/// Stores in `cache` the data that `pointer` (of `pointer_rel`, in `repo`)
/// imported from `src`'s URL, read from there, when what is there is still
/// what it records: for a reader of that repository (`get`, `import`, `cat`,
/// the Python API) whose remote lacks the data (imported with
/// `--no-download`, or never pushed). Nothing else is written; the listing
/// read is returned.
pub(crate) fn store_from_url(
    repo: &Repo,
    cache: &crate::cache::Cache,
    src: &UrlSource,
    pointer: &Pointer,
    pointer_rel: &str,
    progress: &dyn Progress,
) -> Result<Vec<SourceEntry>> {
    let source = open_source(repo, &src.url, None, &src.fs_config)?;
    let listing = match src.version_aware() {
        true => pinned_listing(&source, src).map_err(|e| about(e, &src.url))?,
        false => list(&source, &src.url)?,
    };
    let changed = |why: &str| url_changed(src, pointer_rel, why);
    still_there(&listing, pointer, &changed)?;
    // Big files go through the cache's own `tmp`, which it cleans of what a
    // killed reader leaves.
    let tmp = cache.root().join("tmp");
    fs_err::create_dir_all(&tmp)?;
    let files = crate::fsutil::temp_in(&tmp, "url");
    fs_err::create_dir(&files)?;
    let label = format!("downloading {}", src.url);
    let stored = store_entries(
        &source,
        &src.url,
        &listing,
        cache,
        &files,
        (&label, pointer.size),
        progress,
    );
    let _ = fs_err::remove_dir_all(&files);
    let (got, manifest) = pointer_of(&listing, stored?, &pointer.path);
    if got.id != pointer.id {
        return Err(changed("other bytes"));
    }
    if let Some(m) = manifest {
        cache.put_bytes(&m.to_bytes())?;
        cache.mark_complete(&pointer.id);
    }
    Ok(listing)
}

/// Uploads those of `ids` (all in `cache`) that `remote` lacks, as `push` does;
/// returns how many and their stored bytes. Any failure stops the import: what
/// did go up stays, and is not sent again next time.
fn upload_missing(
    remote: &Remote,
    cache: &crate::cache::Cache,
    ids: &[ObjectId],
    progress: &dyn Progress,
) -> Result<(u64, u64)> {
    let mut report = crate::ops::transfer::PushReport::default();
    let (todo, failures) = remote.block_on(async {
        let there = remote.present(ids, &|_| {}).await?;
        let mut todo: Vec<ObjectId> = ids.iter().filter(|id| !there.contains(id)).copied().collect();
        todo.sort_unstable();
        todo.dedup();
        let n = todo.len();
        let failures = crate::ops::transfer::send_objects(remote, cache, todo, progress, &mut report).await?;
        Ok::<_, crate::Error>((n, failures))
    })?;
    crate::ops::transfer::failed_transfers(remote, failures, todo)?;
    Ok((report.uploaded as u64, report.uploaded_bytes))
}

/// Downloads data imported from `src` again if what is there changed since, and
/// checks it out. Local changes to it stop the update unless `force`.
pub(crate) fn update_from_url(
    repo: &Repo,
    t: &Tracked,
    src: &UrlSource,
    how: &UrlUpdate<'_>,
    progress: &dyn Progress,
) -> Result<Updated> {
    let force = how.force;
    let source = open_source(repo, &src.url, how.jobs, &src.fs_config)?;
    let listing = list(&source, &src.url)?;
    let mut updated = Updated {
        pointer: t.pointer_rel.clone(),
        url: Some(src.url.clone()),
        from: src.fingerprint.clone(),
        to: fingerprint(&listing),
        changed: false,
        downloaded: None,
    };
    if updated.to == updated.from {
        return Ok(updated);
    }
    // A version-aware import stays one, recording the versions there now.
    let versions = versions_of(&source, &src.url, &listing, src.version_aware(), progress)?;
    let recorded = Some(url_source(&src.url, &src.fs_config, &listing, versions));
    if how.no_download {
        let mut pointer = hash_at_source(&source, &src.url, &listing, &t.data_rel, progress)?;
        pointer.source = recorded.clone();
        updated.changed = pointer.id != t.pointer.id;
        write_pointer(repo, &t.data_abs, &t.data_rel, &pointer)?;
        return Ok(updated);
    }
    // The source changed: local changes the new data would overwrite stop the
    // update before anything is downloaded.
    if !force {
        crate::ops::checkout::refuse_unrecorded_changes(repo, t)?;
    }
    if let Some(remote) = how.to_remote {
        let (mut pointer, _) = send_to_remote(repo, &source, remote, &src.url, &listing, &t.data_rel, progress)?;
        pointer.source = recorded.clone();
        updated.downloaded = Some(Downloads {
            files: listing.len() as u64,
            bytes: listing.iter().map(|e| e.size).sum(),
        });
        updated.changed = pointer.id != t.pointer.id;
        // The old data is recorded (or `force` said to drop it), and the new is not here.
        if updated.changed {
            remove_data(&t.data_abs)?;
        }
        pointer.keeping(Some(&t.pointer)).save(&t.pointer_file)?;
        return Ok(updated);
    }
    let known = Known::load(repo, &src.url, &t.data_rel, &t.pointer);
    let mut got = download(
        repo,
        &source,
        &src.url,
        &listing,
        &t.data_abs,
        &t.data_rel,
        known.as_ref(),
        progress,
    )?;
    got.pointer.source = recorded.clone();
    updated.downloaded = Some(got.downloaded);
    updated.changed = got.pointer.id != t.pointer.id;
    if !updated.changed {
        // Same bytes under a new version (a rewrite, a copy): only the fingerprint moves.
        got.pointer.clone().keeping(Some(&t.pointer)).save(&t.pointer_file)?;
    } else {
        got.staging.remove();
        track(repo, &t.data_abs, &t.data_rel, &got.pointer, force, progress)?;
    }
    Known::save(repo, &src.url, &t.data_rel, &listing, &got.pointer);
    Ok(updated)
}

/// Whether what is at `src.url` differs from what was imported from it (its
/// listing's sizes and versions, not its bytes: nothing is downloaded).
pub(crate) fn source_changed(repo: &Repo, src: &UrlSource) -> Result<bool> {
    let source = open_source(repo, &src.url, None, &src.fs_config)?;
    Ok(fingerprint(&list(&source, &src.url)?) != src.fingerprint)
}

/// What the last download of a URL into a directory found: each object's size,
/// version and id, so that an update downloads only the objects whose size or
/// version changed. Kept in `.dvt/tmp/import-url/`, per URL and destination; it
/// only saves downloads, and a fresh clone without it downloads everything.
#[derive(Debug, Serialize, Deserialize)]
struct Known {
    /// The manifest the files made.
    manifest: ObjectId,
    /// Path below the URL → size, version, id.
    files: BTreeMap<String, (u64, String, ObjectId)>,
}

impl Known {
    fn file(repo: &Repo, url: &str, rel: &str) -> Result<PathBuf> {
        let key = blake3::hash(format!("{url}\0{rel}").as_bytes()).to_hex();
        Ok(repo.tmp_dir()?.join("import-url").join(format!("{}.json", &key[..32])))
    }

    /// What is known of `url` as downloaded to `rel`, if it is still what `pointer` records.
    fn load(repo: &Repo, url: &str, rel: &str, pointer: &Pointer) -> Option<Known> {
        let bytes = fs_err::read(Known::file(repo, url, rel).ok()?).ok()?;
        let known: Known = serde_json::from_slice(&bytes).ok()?;
        (pointer.kind == Kind::Dir && known.manifest == pointer.id).then_some(known)
    }

    /// Records what `listing` turned into (`pointer`'s manifest). Best effort:
    /// without it, the next update downloads everything.
    fn save(repo: &Repo, url: &str, rel: &str, listing: &[SourceEntry], pointer: &Pointer) {
        let Ok(file) = Known::file(repo, url, rel) else { return };
        if pointer.kind != Kind::Dir {
            let _ = fs_err::remove_file(&file);
            return;
        }
        let Ok(manifest) = repo
            .cache()
            .read(&pointer.id, Some(rel))
            .and_then(|b| Manifest::parse(&b, &pointer.id))
        else {
            return;
        };
        let ids: BTreeMap<&str, ObjectId> = manifest.files.iter().map(|e| (e.path.as_str(), e.id)).collect();
        let files = listing
            .iter()
            .filter_map(|e| Some((e.rel.clone(), (e.size, e.version.clone(), *ids.get(e.rel.as_str())?))))
            .collect();
        let known = Known {
            manifest: pointer.id,
            files,
        };
        if let (Some(dir), Ok(bytes)) = (file.parent(), serde_json::to_vec(&known)) {
            let _ = fs_err::create_dir_all(dir);
            let _ = crate::fsutil::atomic_write(&file, &bytes);
        }
    }

    /// The id of `e` if it is known and its object is in the cache.
    fn reuse(&self, e: &SourceEntry, repo: &Repo) -> Option<ObjectId> {
        let (size, version, id) = self.files.get(&e.rel)?;
        (*size == e.size && *version == e.version && repo.cache().contains(id)).then_some(*id)
    }
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
    let last = path.trim_end_matches('/').rsplit('/').next().unwrap_or(path);
    // A web URL's path is escaped (`%20`); the file gets the name it stands for.
    match url.starts_with("http://") || url.starts_with("https://") {
        true => crate::remote::percent_decode(last),
        false => last.to_string(),
    }
}

/// Opens the store `url` is in, rooted at what `url` names. A local path becomes
/// a store rooted at `/`, so that the path may name a file as well as a directory.
fn open_source(repo: &Repo, url: &str, jobs: Option<usize>, fs_config: &BTreeMap<String, String>) -> Result<Remote> {
    // A web URL's query (a presigned URL's signature, `?download=1`) would be
    // taken for part of the file's name, and the server would say "not found".
    if (url.starts_with("http://") || url.starts_with("https://")) && url.contains('?') {
        return Err(RemoteError::Source {
            url: url.to_string(),
            message: "dvt reads no web URL with a query (`?…`, as a presigned or a download link has): \
                      download the file (`curl -fLo FILE 'URL'`), then `dvt add FILE`"
                .into(),
        }
        .into());
    }
    let (spec, mut location) = match url.strip_prefix("remote://") {
        Some(rest) => {
            let (name, path) = rest.split_once('/').unwrap_or((rest, ""));
            if name.is_empty() {
                return Err(RemoteError::Source {
                    url: url.to_string(),
                    message: "name the remote: remote://NAME/path".into(),
                }
                .into());
            }
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
    // `--fs-config`: options as a remote of that kind takes them.
    let mut spec = spec;
    for (key, value) in fs_config {
        crate::remote::config::check_key(url, location.scheme, key)?;
        crate::remote::config::typed_value(url, key, value)?;
        spec.options.insert(key.clone(), value.clone());
    }
    if location.scheme == Scheme::Local {
        let dir = location.dir.take().unwrap_or_default();
        location.prefix = dir.to_string_lossy().trim_start_matches('/').to_string();
        location.dir = Some(PathBuf::from("/"));
    }
    Remote::from_spec(&spec, &location, jobs, false)
        .and_then(|r| r.at_key_prefix(&location.prefix))
        .map_err(|e| about(e, url))
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
        crate::Error::Remote(
            RemoteError::Request { message, .. }
            | RemoteError::Refused { message, .. }
            | RemoteError::Config { message, .. },
        ) => RemoteError::Source {
            url: url.to_string(),
            // `cannot read `URL`: cannot read it: …` says it twice.
            message: message
                .strip_prefix("cannot read it: ")
                .map_or(message.clone(), str::to_string),
        }
        .into(),
        e => e,
    }
}

/// What a pointer records of data downloaded from `url` as `listing` lists
/// it, with the `versions` read (see [`versions_of`]).
fn url_source(
    url: &str,
    fs_config: &BTreeMap<String, String>,
    listing: &[SourceEntry],
    mut versions: BTreeMap<String, String>,
) -> Source {
    Source::Url(UrlSource {
        url: url.to_string(),
        fingerprint: fingerprint(listing),
        fs_config: fs_config.clone(),
        version: versions.remove(""),
        versions,
    })
}

/// For a version-aware import (`aware`), the store's version id of each
/// object of `listing` (by its path below the URL; `""` for the one object a
/// URL names), asked of the store `source.jobs` at a time; each must still be
/// the version listed (as each download checks). Empty otherwise.
fn versions_of(
    source: &Remote,
    url: &str,
    listing: &[SourceEntry],
    aware: bool,
    progress: &dyn Progress,
) -> Result<BTreeMap<String, String>> {
    if !aware {
        return Ok(BTreeMap::new());
    }
    progress.start(&format!("reading versions of {url}"), listing.len() as u64, false);
    let versions: Vec<Result<(String, String)>> = source.block_on(
        futures::stream::iter(listing)
            .map(|e| async move {
                let v = source.version_of(e).await;
                progress.inc(1);
                Ok((e.rel.clone(), v?))
            })
            .buffer_unordered(source.jobs)
            .collect(),
    );
    progress.finish();
    versions.into_iter().map(|r| r.map_err(|e| about(e, url))).collect()
}

/// The objects a version-aware import `src` read, at the versions it records
/// (whatever the store holds now), sorted by path as a listing is.
fn pinned_listing(source: &Remote, src: &UrlSource) -> Result<Vec<SourceEntry>> {
    let wanted: Vec<(&str, &str)> = match &src.version {
        Some(v) => vec![("", v.as_str())],
        None => src.versions.iter().map(|(rel, v)| (rel.as_str(), v.as_str())).collect(),
    };
    let found: Vec<Result<SourceEntry>> = source.block_on(
        futures::stream::iter(wanted)
            .map(|(rel, v)| source.pinned_source(rel, v))
            .buffer_unordered(source.jobs)
            .collect(),
    );
    let mut found = found.into_iter().collect::<Result<Vec<_>>>()?;
    found.sort_by(|a, b| a.rel.as_bytes().cmp(b.rel.as_bytes()));
    Ok(found)
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
            let _ = remove_data(&self.path);
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
    /// What was downloaded.
    downloaded: Downloads,
}

/// Downloads `listing` beside `out` and stores it in the cache, as `dvt add` of
/// `rel` would; with `known`, only the objects it does not know as they are now
/// (the staging directory then holds only those). The pointer has no source:
/// the caller records where it came from (see [`url_source`]).
#[allow(clippy::too_many_arguments)]
fn download(
    repo: &Repo,
    source: &Remote,
    url: &str,
    listing: &[SourceEntry],
    out: &Path,
    rel: &str,
    known: Option<&Known>,
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
    let reused: Vec<Option<ObjectId>> = listing
        .iter()
        .map(|e| known.filter(|_| is_dir).and_then(|k| k.reuse(e, repo)))
        .collect();
    let wanted: Vec<&SourceEntry> = listing
        .iter()
        .zip(&reused)
        .filter(|(_, r)| r.is_none())
        .map(|(e, _)| e)
        .collect();
    let downloaded = Downloads {
        files: wanted.len() as u64,
        bytes: wanted.iter().map(|e| e.size).sum(),
    };
    let dest_of = |e: &SourceEntry| staging_path(&staging.path, e);
    if let Err(e) = fetch_all(source, url, &wanted, &staging.path, progress) {
        staging.remove();
        return Err(e);
    }
    let stat = repo.stat_cache();
    let counters = Counters::default();
    let packing = repo.cache().begin_packing();
    let how = Identify::Store(repo.cache());
    let pointer = match known {
        Some(_) if is_dir => {
            // The known objects as they are, the others from the download.
            let started = std::time::SystemTime::now();
            let mut entries = Vec::with_capacity(listing.len());
            for (e, reused) in listing.iter().zip(&reused) {
                let id = match reused {
                    Some(id) => *id,
                    None => {
                        let abs = dest_of(e);
                        let stamp = crate::statcache::Stamp::of(&fs_err::symlink_metadata(&abs)?);
                        let key = format!("{rel}/{}", e.rel);
                        crate::workspace::identify_file(&key, &abs, &stamp, &stat, how, &counters, started)?
                    }
                };
                entries.push(Entry {
                    path: e.rel.clone(),
                    id,
                    size: e.size,
                    executable: false,
                });
            }
            let manifest = Manifest::new(entries, vec![]);
            let stored = repo.cache().put_bytes(&manifest.to_bytes())?;
            counters.written_bytes.fetch_add(stored.written, Ordering::Relaxed);
            let name = crate::workspace::file_name(rel).to_string();
            Pointer::dir(name, stored.id, manifest.total_size(), manifest.files.len() as u64)
        }
        _ => crate::ops::add::identify_path(repo, &staging.path, rel, is_dir, how, &stat, &counters, progress)?.0,
    };
    packing.finish()?;
    if counters.written_bytes.load(Ordering::Relaxed) > 0 && repo.config().cache.fsync {
        crate::fsutil::sync_filesystem(repo.cache().root())?;
    }
    let _ = stat.save();
    Ok(Downloaded {
        pointer,
        staging,
        downloaded,
    })
}

/// Where `entry` goes in a download into `staging`: `staging` itself for the
/// one object a URL names, else its path below it.
fn staging_path(staging: &Path, entry: &SourceEntry) -> PathBuf {
    match entry.rel.is_empty() {
        true => staging.to_path_buf(),
        false => staging.join(&entry.rel),
    }
}

/// Downloads `entries` of `source` (listed from `url`) into `staging`,
/// `source.jobs` at a time, with a progress bar.
fn fetch_all(
    source: &Remote,
    url: &str,
    entries: &[&SourceEntry],
    staging: &Path,
    progress: &dyn Progress,
) -> Result<()> {
    progress.start(
        &format!("downloading {url}"),
        entries.iter().map(|e| e.size).sum(),
        true,
    );
    let on_bytes = |n| progress.inc(n);
    let results: Vec<Result<()>> = source.block_on(
        futures::stream::iter(entries)
            .map(|e| {
                let dest = staging_path(staging, e);
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
    match results.into_iter().find_map(Result::err) {
        Some(e) => Err(about(e, url)),
        None => Ok(()),
    }
}

/// What `dvt get-url URL [OUT]` downloads, as `dvc get-url`.
#[derive(Debug, Clone)]
pub struct DownloadUrlOptions {
    /// The URL (or local path) as the user gave it.
    pub url: String,
    /// Where to write (default: the URL's last component, in `cwd`).
    pub out: Option<PathBuf>,
    /// The directory relative paths start from.
    pub cwd: PathBuf,
    /// Replace what is at `out`, once the download is complete.
    pub force: bool,
    /// Downloads at once (default: the store's `jobs`, or 4 per core).
    pub jobs: Option<usize>,
    /// Options of the store (`--fs-config`, DVC's), as a remote's options.
    pub fs_config: BTreeMap<String, String>,
}

/// What `download_url` wrote.
#[derive(Debug, Clone, Serialize)]
pub struct DownloadUrlReport {
    /// The URL read.
    pub url: String,
    /// Where the data was written.
    pub out: PathBuf,
    /// File or directory.
    pub kind: Kind,
    /// Files written.
    pub files: u64,
    /// Bytes written.
    pub bytes: u64,
}

/// `dvt get-url URL [OUT]`, as `dvc get-url`: downloads the object or
/// directory at a URL (as `import-url` takes one) to `out`, tracking nothing.
/// The download goes beside `out` under a temporary name and is renamed into
/// place when whole; an object that changes while it is read is refused.
/// `repo` resolves `remote://NAME/…` (outside a repository, pass one made with
/// [`Repo::at_commit`] and no config).
pub fn download_url(repo: &Repo, opts: &DownloadUrlOptions, progress: &dyn Progress) -> Result<DownloadUrlReport> {
    if opts.url.trim().is_empty() {
        return Err(RemoteError::Source {
            url: opts.url.clone(),
            message: "the URL is empty".into(),
        }
        .into());
    }
    let url = recorded_url(&opts.url, &opts.cwd);
    let source = open_source(repo, &url, opts.jobs, &opts.fs_config)?;
    let out = crate::repo::normalize(
        &opts
            .cwd
            .join(opts.out.as_deref().unwrap_or(Path::new(&last_component(&url)))),
    );
    if out.symlink_metadata().is_ok() && !opts.force {
        return Err(PathError::Exists {
            path: out,
            flag: "--force",
        }
        .into());
    }
    let mut listing = list(&source, &url)?;
    if source.scheme == Scheme::Local {
        listing.iter_mut().for_each(SourceEntry::note_mode);
    }
    let is_dir = !matches!(listing.as_slice(), [only] if only.rel.is_empty());
    if let Some(parent) = out.parent() {
        fs_err::create_dir_all(parent)?;
    }
    let mut staging = Staging {
        path: crate::fsutil::temp_sibling(&out),
        live: true,
    };
    if is_dir {
        fs_err::create_dir(&staging.path)?;
    }
    let entries: Vec<&SourceEntry> = listing.iter().collect();
    fetch_all(&source, &url, &entries, &staging.path, progress)?;
    use std::os::unix::fs::PermissionsExt;
    for e in listing.iter().filter(|e| e.executable) {
        fs_err::set_permissions(staging_path(&staging.path, e), std::fs::Permissions::from_mode(0o755))?;
    }
    crate::ops::import::put_in_place(&staging.path, &out, opts.force)?;
    staging.live = false;
    Ok(DownloadUrlReport {
        url,
        out,
        kind: if is_dir { Kind::Dir } else { Kind::File },
        files: listing.len() as u64,
        bytes: listing.iter().map(|e| e.size).sum(),
    })
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
