//! Remotes: a copy of the cache's `objects/` tree under a prefix of an object store
//! (a directory, S3, GCS, Azure Blob, WebDAV, SSH), reached through `object_store`
//! (SSH through our own `ObjectStore` over SFTP, in `remote/sftp.rs`).
//!
//! Every object moves in its stored form (the zstd frames or raw bytes of the cache)
//! and is verified as it moves: uploads refuse an object whose bytes do not decode to
//! its id, downloads are checked before they enter the cache. Objects are
//! content-addressed, so an upload may overwrite freely and a partial upload is
//! never visible under a final name (single PUTs and multipart uploads are atomic
//! on every object store; the local store renames a staged file; WebDAV uploads go
//! to a temporary name and are then moved).

mod aws_profile;
pub mod config;
mod known_hosts;
mod open;
mod packed;
mod runs;
mod sftp;
mod source;
mod ssh;
mod ssh_config;
mod webdav;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use object_store::path::Path as StorePath;
use object_store::{ClientOptions, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig, WriteMultipart};
use rustc_hash::FxHashSet;

use crate::cache::{Cache, SMALL_OBJECT};
use crate::error::{CacheError, RemoteError, Result};
use crate::object::ObjectId;
use crate::repo::Repo;

pub use config::{Location, RemoteSpec, Scheme};
pub use packed::{RemotePacks, Run};
pub use source::SourceEntry;
use webdav::WebDav;

/// Multipart uploads and streamed downloads move parts of this size.
const PART: usize = 8 * 1024 * 1024;
/// Other repositories push to a directory remote without this repository's lock:
/// only what was left unfinished this long ago is a killed writer's for sure.
const LEFTOVER_AGE: Duration = Duration::from_secs(3600);
/// The largest zstd block: a frame's first block decodes from at most this many bytes.
const ZSTD_BLOCK: u64 = 128 * 1024;
/// Up to this many objects, presence is asked with one HEAD each; above, by listing.
const HEAD_LIMIT: usize = 256;
/// Stored bytes held in memory at once by transfers, at most (in MiB).
const MEMORY_BUDGET_MIB: u32 = 96;

/// An opened remote, ready for transfers.
pub struct Remote {
    /// Its name.
    pub name: String,
    /// Its URL as configured.
    pub url: String,
    /// Which kind of store it is.
    pub scheme: Scheme,
    /// How many transfers run at once.
    pub jobs: usize,
    /// How many objects are asked about (HEAD, stat) at once: `jobs`, or
    /// more where the store says a question is cheap.
    checks: usize,
    store: Arc<dyn ObjectStore>,
    /// For a directory remote: the directory as a cache-shaped store (objects are
    /// copied, or hard-linked with `hardlink = true`, by plain file operations).
    dir: Option<(Cache, bool)>,
    /// Whether pushes pack small objects (`pack`, default true).
    pack: bool,
    /// An object store's packs, read on first need.
    packed: tokio::sync::Mutex<Option<Arc<packed::RemotePacks>>>,
    /// Where this repo keeps copies of an object store's pack indexes (they are
    /// named by their content, so a copy is never stale), if anywhere.
    index_copies: Option<std::path::PathBuf>,
    prefix: StorePath,
    secrets: Vec<String>,
    runtime: tokio::runtime::Runtime,
    memory: Arc<tokio::sync::Semaphore>,
    /// For a WebDAV remote: the client and origin that MOVE staged uploads into place.
    webdav: Option<WebDav>,
    /// For an SSH remote: the store again, for what object_store's interface
    /// has no call for (removing a killed push's temporary files).
    sftp: Option<sftp::Sftp>,
    /// An http(s) remote found to be a plain web server (it refused WebDAV's
    /// listing): read through `packs/list` and HEAD requests, never written.
    plain: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("scheme", &self.scheme)
            .finish_non_exhaustive()
    }
}

/// Default concurrency: transfers are network-bound, so several per core.
pub fn default_jobs() -> usize {
    4 * std::thread::available_parallelism().map_or(2, |n| n.get())
}

impl Remote {
    /// Opens remote `name` (or the default) of `repo`. `jobs` overrides the
    /// remote's `jobs` option. A local remote's directory is created when `create`.
    pub fn open(repo: &Repo, name: Option<&str>, jobs: Option<usize>, create: bool) -> Result<Remote> {
        let name = config::choose(repo.config(), name)?;
        let (spec, location) = config::spec(repo.config(), &name, repo.root())?;
        if tracing::enabled!(tracing::Level::DEBUG) {
            let options: Vec<String> = spec
                .options
                .iter()
                .map(|(k, v)| match config::SECRET_KEYS.contains(&k.as_str()) {
                    true => format!("{k}=(secret)"),
                    false => format!("{k}={v}"),
                })
                .collect();
            tracing::debug!(
                "remote `{name}`: {} ({}){}",
                spec.url,
                location.scheme.name(),
                match options.is_empty() {
                    true => String::new(),
                    false => format!(", {}", options.join(" ")),
                }
            );
        }
        let mut remote = Remote::from_spec(&spec, &location, jobs, create).map_err(|e| match e {
            crate::Error::Remote(RemoteError::NoSecret { remote, .. }) if repo.is_at_commit() => {
                RemoteError::NoSecret {
                    remote,
                    of_other_repo: true,
                }
                .into()
            }
            e => e,
        })?;
        tracing::debug!("remote `{name}`: {} transfers at once", remote.jobs);
        if remote.dir.is_none() {
            let url = blake3::hash(spec.url.as_bytes()).to_hex();
            remote.index_copies = Some(repo.tmp_dir()?.join("remote-packs").join(&url[..16]));
        }
        Ok(remote)
    }

    /// Runs a future on this remote's runtime.
    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.runtime.block_on(f)
    }

    fn objects_dir(&self) -> StorePath {
        self.prefix.clone().join("objects")
    }

    fn path_of(&self, id: &ObjectId) -> StorePath {
        let hex = id.to_string();
        self.objects_dir().join(&hex[..2]).join(&hex[2..])
    }

    /// A request error, with the remote's name and no secrets in it.
    fn fail(&self, what: &str, e: &object_store::Error) -> crate::Error {
        let (remote, message) = (
            self.name.clone(),
            redact(&format!("{what}: {}", describe(e)), &self.secrets),
        );
        match is_refusal(e) {
            true => RemoteError::Refused { remote, message },
            false => RemoteError::Request { remote, message },
        }
        .into()
    }

    /// Where object `id` is (or would be) on this remote: a URL, or for a
    /// directory remote an absolute path; and for an object in a pack, the byte
    /// range of its stored form in that pack file.
    pub async fn url_of(&self, id: &ObjectId) -> Result<(String, Option<std::ops::Range<u64>>)> {
        if let Some((dir, _)) = &self.dir {
            return Ok(match dir.locate(id)? {
                Some((path, range)) if path.extension().is_some_and(|e| e == "pack") => {
                    (path.display().to_string(), Some(range))
                }
                _ => (dir.object_path(id).display().to_string(), None),
            });
        }
        if let Some((url, range)) = self.packed_url(id).await? {
            return Ok((url, Some(range)));
        }
        let hex = id.to_string();
        Ok((self.key_url(&format!("objects/{}/{}", &hex[..2], &hex[2..])), None))
    }

    /// The URL of `rel` below this remote's prefix, naming the key it is stored
    /// under: object_store escapes some characters of a prefix's components
    /// (`~` as `%7E`, `%` as `%25`), and the URL says so where the remote's URL
    /// has any, so that another tool reading it finds the object (over HTTP,
    /// with the `%` of those escapes escaped in turn, as a URL's path is).
    /// SFTP stores under the components as written.
    pub(crate) fn key_url(&self, rel: &str) -> String {
        let url = self.url.trim_end_matches('/');
        let stored = self.prefix.as_ref();
        let written = percent_decode(stored);
        match (url.strip_suffix(written.as_str()), self.scheme) {
            (Some(_), _) if stored == written => format!("{url}/{rel}"),
            (Some(_), Scheme::Ssh) | (None, _) => format!("{url}/{rel}"),
            (Some(base), Scheme::Http) => format!("{base}{}/{rel}", stored.replace('%', "%25")),
            (Some(base), _) => format!("{base}{stored}/{rel}"),
        }
    }

    /// For a directory remote that packs: copies whole each pack of `cache` whose
    /// objects are all in `todo` (verified, see [`Cache::import_pack`]), and takes
    /// them out of `todo`. Returns the objects and bytes copied. A pack that fails is
    /// left to the object-by-object path, which names the damaged object.
    pub fn push_whole_packs(
        &self,
        cache: &Cache,
        todo: &mut Vec<ObjectId>,
        progress: &dyn crate::progress::Progress,
    ) -> Result<(usize, u64)> {
        match self.dir.as_ref().filter(|_| self.pack) {
            Some((dir, link)) => copy_whole_packs(cache, dir, *link, todo, progress, "Pushing packs"),
            None => Ok((0, 0)),
        }
    }

    /// For a directory remote: the directory, cache-shaped.
    pub fn directory(&self) -> Option<&Cache> {
        self.dir.as_ref().map(|(dir, _)| dir)
    }

    /// For a directory remote: the same the other way, its packs into `cache`.
    pub fn fetch_whole_packs(
        &self,
        cache: &Cache,
        todo: &mut Vec<ObjectId>,
        progress: &dyn crate::progress::Progress,
    ) -> Result<(usize, u64)> {
        match &self.dir {
            Some((dir, link)) => copy_whole_packs(dir, cache, *link, todo, progress, "Fetching packs"),
            None => Ok((0, 0)),
        }
    }

    /// For a directory remote that packs: from now until [`crate::cache::Packing::finish`],
    /// small objects pushed go to a pack on the remote instead of a file each.
    pub fn begin_packing(&self) -> Option<crate::cache::Packing> {
        match &self.dir {
            Some((dir, _)) if self.pack => Some(dir.begin_packing()),
            _ => None,
        }
    }

    /// How object `id` is stored on the remote, or `None` if the remote lacks it.
    pub async fn encoding_of(&self, id: &ObjectId) -> Result<Option<crate::cache::Encoding>> {
        if let Some((dir, _)) = &self.dir {
            return match dir.encoding(id) {
                Ok(e) => Ok(Some(e)),
                Err(crate::Error::Cache(CacheError::Missing { .. })) => Ok(None),
                Err(e) => Err(self.remote_side(e, *id, None)),
            };
        }
        let head = match self.get_packed(id, Some(8)).await? {
            Some(head) => Ok(head),
            None => self.store.get_range(&self.path_of(id), 0..8).await,
        };
        match head {
            Ok(head) => Ok(Some(crate::cache::detect(&head).ok_or_else(|| {
                RemoteError::Corrupt {
                    remote: self.name.clone(),
                    id: *id,
                    reason: "unknown object encoding".into(),
                }
            })?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.fail(&format!("cannot read object {id}"), &e)),
        }
    }

    /// Whether the remote has object `id`.
    pub async fn has(&self, id: &ObjectId) -> Result<bool> {
        if let Some((dir, _)) = &self.dir {
            return Ok(dir.contains(id));
        }
        if self.remote_packs().await?.contains(id) {
            return Ok(true);
        }
        match self.store.head(&self.path_of(id)).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(self.fail(&format!("cannot look up object {id}"), &e)),
        }
    }

    /// The ids among `ids` that the remote has: one HEAD each for a few, else a
    /// listing of the object directories that could hold them, run concurrently.
    /// `on_checked` is told how many of `ids` each step settled.
    pub async fn present(&self, ids: &[ObjectId], on_checked: &(dyn Fn(u64) + Sync)) -> Result<FxHashSet<ObjectId>> {
        let packs = self.remote_packs().await?;
        let (packed, loose): (Vec<ObjectId>, Vec<ObjectId>) = ids.iter().partition(|id| packs.contains(id));
        on_checked(packed.len() as u64);
        let mut out = self.present_loose(&loose, on_checked).await?;
        out.extend(packed);
        Ok(out)
    }

    async fn present_loose(&self, ids: &[ObjectId], on_checked: &(dyn Fn(u64) + Sync)) -> Result<FxHashSet<ObjectId>> {
        // More than one round of questions: one listing of `objects/` first
        // rules out the objects whose directory is not there (all of them,
        // on a new remote), a round trip instead of one per round.
        let dirs = match ids.len() > self.jobs {
            true => self.loose_dirs().await?,
            false => None,
        };
        let maybe: Vec<ObjectId>;
        let ids = match dirs {
            Some(dirs) => {
                maybe = ids
                    .iter()
                    .copied()
                    .filter(|id| dirs.contains(&id.as_bytes()[0]))
                    .collect();
                on_checked((ids.len() - maybe.len()) as u64);
                maybe.as_slice()
            }
            None => ids,
        };
        if ids.is_empty() {
            return Ok(FxHashSet::default());
        }
        // A plain web server cannot list: it is asked about each object.
        if ids.len() <= HEAD_LIMIT || self.is_plain() {
            let found: Vec<Result<Option<ObjectId>>> = futures::stream::iter(ids.iter().copied())
                .map(|id| async move {
                    let r = self.has(&id).await?.then_some(id);
                    on_checked(1);
                    Ok(r)
                })
                .buffer_unordered(self.checks)
                .collect()
                .await;
            let mut out = FxHashSet::default();
            for r in found {
                if let Some(id) = r? {
                    out.insert(id);
                }
            }
            return Ok(out);
        }
        let mut per_dir = [0u64; 256];
        for id in ids {
            per_dir[id.as_bytes()[0] as usize] += 1;
        }
        let dirs: Vec<u8> = (0..=255u8).filter(|d| per_dir[*d as usize] > 0).collect();
        let per_dir = &per_dir;
        let listed = self
            .per_first_byte(dirs, |d| async move {
                let r = self.list_dir(d).await;
                on_checked(per_dir[d as usize]);
                r
            })
            .await?;
        let wanted: FxHashSet<ObjectId> = ids.iter().copied().collect();
        Ok(listed.into_iter().filter(|id| wanted.contains(id)).collect())
    }

    /// The first bytes of the directories of loose objects (`objects/xx/`)
    /// the remote has, from one listing; `None` for a directory remote,
    /// where asking costs no round trip.
    async fn loose_dirs(&self) -> Result<Option<FxHashSet<u8>>> {
        if self.dir.is_some() || self.is_plain() {
            return Ok(None);
        }
        let listed = match self.store.list_with_delimiter(Some(&self.objects_dir())).await {
            Ok(l) => l.common_prefixes,
            Err(object_store::Error::NotFound { .. }) => Vec::new(),
            Err(e) if self.found_plain(&e) => return Ok(None),
            Err(e) => return Err(self.fail("cannot list `objects`", &e)),
        };
        Ok(Some(
            listed
                .iter()
                .filter_map(|p| u8::from_str_radix(p.filename()?, 16).ok())
                .collect(),
        ))
    }

    async fn list_dir(&self, first: u8) -> Result<Vec<ObjectId>> {
        Ok(self
            .list_dir_sized(first, false)
            .await?
            .into_iter()
            .map(|(id, _)| id)
            .collect())
    }

    /// The objects under `objects/xx/`, with their stored sizes when `sized` (a
    /// directory remote then pays one `stat` per object; other stores list sizes).
    async fn list_dir_sized(&self, first: u8, sized: bool) -> Result<Vec<(ObjectId, u64)>> {
        if let Some((dir, _)) = &self.dir {
            let dir = dir.clone();
            return tokio::task::spawn_blocking(move || -> Result<Vec<(ObjectId, u64)>> {
                let ids = dir.list_prefix(first)?;
                let mut out: Vec<(ObjectId, u64)> = ids
                    .into_iter()
                    .map(|id| {
                        let size = if sized {
                            fs_err::metadata(dir.object_path(&id)).map_or(0, |m| m.len())
                        } else {
                            0
                        };
                        (id, size)
                    })
                    .collect();
                out.extend(dir.list_packed(first)?);
                Ok(out)
            })
            .await
            .map_err(std::io::Error::other)?;
        }
        let mut out: Vec<(ObjectId, u64)> = self
            .list_loose(first)
            .await?
            .into_iter()
            .map(|(id, n, _)| (id, n))
            .collect();
        out.extend(self.remote_packs().await?.with_first_byte(first));
        Ok(out)
    }

    /// That this remote lacks object `id`, which `path` needed.
    pub(crate) fn missing(&self, id: ObjectId, path: Option<&str>) -> crate::Error {
        RemoteError::Missing {
            remote: self.name.clone(),
            id,
            path: path.map(str::to_string),
            served_copy: self.is_plain(),
        }
        .into()
    }

    /// Whether this remote is a plain web server (see [`Remote::found_plain`]).
    pub(crate) fn is_plain(&self) -> bool {
        self.plain.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether `e`, the failure of a listing, says that this http(s) remote is
    /// a plain web server; if so, it is read as one from now on.
    fn found_plain(&self, e: &object_store::Error) -> bool {
        let plain = self.scheme == Scheme::Http && not_webdav(e).is_some();
        if plain {
            self.set_plain();
        }
        plain
    }

    /// Reads this remote as a plain web server from now on.
    fn set_plain(&self) {
        tracing::debug!("remote `{}`: a plain web server, read through `packs/list`", self.name);
        self.plain.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// An error unless this remote can be written to: a plain web server
    /// cannot.
    pub(crate) fn writable(&self) -> Result<()> {
        match self.is_plain() {
            false => Ok(()),
            true => Err(RemoteError::Refused {
                remote: self.name.clone(),
                message: format!(
                    "`{}` is a plain web server (it does not take WebDAV requests): dvt reads from it, but writes \
                     only to a WebDAV server; push to the store it serves a copy of",
                    self.url
                ),
            }
            .into()),
        }
    }

    /// Every file the store lists below `prefix`: none if it does not exist; a
    /// failure is "cannot list `what`".
    async fn list_below(&self, prefix: &StorePath, what: &str) -> Result<Vec<object_store::ObjectMeta>> {
        let mut stream = self.store.list(Some(prefix));
        let mut out = Vec::new();
        while let Some(meta) = stream.next().await {
            match meta {
                Ok(m) => out.push(m),
                Err(object_store::Error::NotFound { .. }) => break,
                Err(e) => {
                    self.found_plain(&e);
                    return Err(self.fail(&format!("cannot list {what}"), &e));
                }
            }
        }
        Ok(out)
    }

    /// An object store's objects stored a file each under `objects/xx/`, with
    /// their stored sizes and times (the listing gives them).
    async fn list_loose(&self, first: u8) -> Result<Vec<Dated>> {
        let dir = format!("{first:02x}");
        let prefix = self.objects_dir().join(dir.as_str());
        let listed = self.list_below(&prefix, "objects").await?;
        Ok(listed
            .into_iter()
            .filter_map(|meta| {
                let name = meta.location.filename().unwrap_or("");
                let id = format!("{dir}{name}").parse::<ObjectId>().ok()?;
                Some((id, meta.size, Some(meta.last_modified.into())))
            })
            .collect())
    }

    /// [`Remote::list_loose`] of each first byte of `firsts`, several at once.
    async fn list_loose_in(&self, firsts: impl IntoIterator<Item = u8>) -> Result<Vec<Dated>> {
        self.per_first_byte(firsts, |first| self.list_loose(first)).await
    }

    /// `list` of each first byte of `firsts` (one directory `objects/xx/`
    /// each), up to 32 at once, joined; the first failure fails it all.
    async fn per_first_byte<T, F, Fut>(&self, firsts: impl IntoIterator<Item = u8>, list: F) -> Result<Vec<T>>
    where
        F: FnMut(u8) -> Fut,
        Fut: std::future::Future<Output = Result<Vec<T>>>,
    {
        let listed: Vec<Result<Vec<T>>> = futures::stream::iter(firsts)
            .map(list)
            .buffer_unordered(self.jobs.min(32))
            .collect()
            .await;
        let mut out = Vec::new();
        for part in listed {
            out.extend(part?);
        }
        Ok(out)
    }

    /// Every object id on the remote.
    pub async fn list_all(&self) -> Result<Vec<ObjectId>> {
        Ok(self
            .list_all_sized(false)
            .await?
            .into_iter()
            .map(|(id, _)| id)
            .collect())
    }

    /// Every object on the remote, with its stored size when `sized`.
    pub async fn list_all_sized(&self, sized: bool) -> Result<Vec<(ObjectId, u64)>> {
        let mut out = self
            .per_first_byte(0..=255u8, |d| self.list_dir_sized(d, sized))
            .await?;
        out.sort();
        // An object may be both packed and loose (or in two packs).
        out.dedup_by_key(|(id, _)| *id);
        Ok(out)
    }

    /// Every object on the remote, with its stored size and when it was written
    /// there, as the store says (a packed object: when its pack or its index
    /// was, whichever is later; an object stored twice: the later time). `gc`
    /// keeps what was written lately ([`crate::ops::GcOptions::remote_grace`]).
    pub async fn list_all_dated(&self) -> Result<Vec<Dated>> {
        let mut out: Vec<Dated> = match &self.dir {
            Some((dir, _)) => {
                let dir = dir.clone();
                tokio::task::spawn_blocking(move || list_cache_dated(&dir))
                    .await
                    .map_err(std::io::Error::other)??
            }
            None => {
                let packs = self.remote_packs().await?;
                let mut out = self.list_loose_in(0..=255u8).await?;
                out.extend(packs.each_entry().map(|(e, at)| (e.id, e.len, at)));
                out
            }
        };
        // Sorted by id, the latest time first: the copy kept is the newest.
        out.sort_by(|a, b| a.0.cmp(&b.0).then(b.2.cmp(&a.2)));
        out.dedup_by_key(|(id, _, _)| *id);
        Ok(out)
    }

    /// The first bytes of object `id`'s content (up to about `n`), decoded from a
    /// ranged read; used to tell manifests from files without a full download.
    pub async fn peek(&self, id: &ObjectId, n: usize) -> Result<Vec<u8>> {
        if let Some((dir, _)) = &self.dir {
            return dir.peek(id, n).map_err(|e| self.remote_side(e, *id, None));
        }
        // A zstd block decodes only whole: fetch one maximal block's worth.
        let want = (n as u64).max(ZSTD_BLOCK + 1024);
        if let Some(stored) = self.get_packed(id, Some(want)).await? {
            return Ok(crate::cache::decode_prefix(&stored, n));
        }
        let stored = match self.store.get_range(&self.path_of(id), 0..want).await {
            Ok(b) => b,
            Err(object_store::Error::NotFound { .. }) => return Err(self.missing(*id, None)),
            Err(e) => return Err(self.fail(&format!("cannot read object {id}"), &e)),
        };
        Ok(crate::cache::decode_prefix(&stored, n))
    }

    /// Deletes objects `ids` from the remote (missing ones are not an error),
    /// calling `on_deleted` after each. Returns how many were deleted.
    pub async fn delete(&self, ids: &[ObjectId], on_deleted: &(dyn Fn() + Sync)) -> Result<usize> {
        self.writable()?;
        if let Some((dir, _)) = &self.dir {
            dir.delete_many(ids, on_deleted)?;
            self.publish_pack_list(true).await?;
            return Ok(ids.len());
        }
        // A packed object has a file of its own too only after a race (two
        // pushes): list the directories of packed ones rather than send a DELETE
        // per object (one request each on GCS and Azure).
        let packs = self.remote_packs().await?;
        let mut firsts: Vec<u8> = ids
            .iter()
            .filter(|id| packs.contains(id))
            .map(|id| id.as_bytes()[0])
            .collect();
        firsts.sort_unstable();
        firsts.dedup();
        let loose_packed: FxHashSet<ObjectId> = self
            .list_loose_in(firsts)
            .await?
            .into_iter()
            .map(|(id, _, _)| id)
            .collect();
        let gone: FxHashSet<ObjectId> = ids.iter().copied().collect();
        self.delete_packed(&gone).await?;
        self.publish_pack_list(true).await?;
        let (paths, only_packed): (Vec<&ObjectId>, Vec<&ObjectId>) = ids
            .iter()
            .partition(|id| !packs.contains(id) || loose_packed.contains(id));
        only_packed.iter().for_each(|_| on_deleted());
        let paths: Vec<StorePath> = paths.into_iter().map(|id| self.path_of(id)).collect();
        self.delete_paths(paths, "cannot delete objects", on_deleted).await?;
        Ok(ids.len())
    }

    /// Deletes `paths` (missing ones are not an error), calling `on_deleted`
    /// after each; a failure is reported as `what`.
    pub(crate) async fn delete_paths(
        &self,
        paths: Vec<StorePath>,
        what: &str,
        on_deleted: &(dyn Fn() + Sync),
    ) -> Result<()> {
        let input = futures::stream::iter(paths.into_iter().map(Ok)).boxed();
        let mut results = self.store.delete_stream(input);
        while let Some(r) = results.next().await {
            match r {
                Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(self.fail(what, &e)),
            }
            on_deleted();
        }
        Ok(())
    }

    /// Removes what killed pushes left in a directory remote's `packs/`, or
    /// an SSH remote's unfinished writes, once they are an hour old
    /// (an object store never shows an unfinished upload).
    pub fn remove_leftovers(&self) -> Result<()> {
        match (&self.dir, &self.sftp) {
            (Some((dir, _)), _) => dir.remove_pack_leftovers(LEFTOVER_AGE),
            (None, Some(sftp)) => self
                .runtime
                .block_on(sftp.remove_leftovers(&self.prefix, LEFTOVER_AGE))
                .map_err(|e| self.fail("cannot remove what killed pushes left", &e)),
            (None, None) => Ok(()),
        }
    }

    async fn reserve(&self, bytes: u64) -> tokio::sync::OwnedSemaphorePermit {
        let mib = (bytes.div_ceil(1 << 20) as u32 + 1).min(MEMORY_BUDGET_MIB);
        // The semaphore is never closed, so this cannot fail.
        self.memory
            .clone()
            .acquire_many_owned(mib)
            .await
            .expect("the memory semaphore is never closed")
    }

    /// Uploads object `id` from `cache`, verifying its bytes as they are read. Returns
    /// the stored bytes sent. `on_bytes` is told of progress.
    pub async fn upload(&self, cache: &Cache, id: ObjectId, on_bytes: &(dyn Fn(u64) + Sync)) -> Result<u64> {
        if let Some((dir, link)) = &self.dir {
            let (dir, link, src) = (dir.clone(), *link, cache.clone());
            let n = tokio::task::spawn_blocking(move || dir.import_from(&src, &id, link, true))
                .await
                .map_err(std::io::Error::other)?
                .map_err(|e| match e {
                    crate::Error::Cache(CacheError::Corrupt { reason, .. }) => corrupt_local(&id, &reason),
                    e => e,
                })?;
            on_bytes(n);
            return Ok(n);
        }
        let (file, len) = cache.open_stored(&id)?;
        drop(file);
        let dest = self.path_of(&id);
        if len <= SMALL_OBJECT || self.scheme == Scheme::Http {
            let _permit = self.reserve(len).await;
            let c = cache.clone();
            let stored = tokio::task::spawn_blocking(move || c.read_stored(&id))
                .await
                .map_err(std::io::Error::other)?
                .map_err(|e| match e {
                    crate::Error::Cache(CacheError::Corrupt { reason, .. }) => corrupt_local(&id, &reason),
                    e => e,
                })?;
            let n = stored.len() as u64;
            self.put_whole(&dest, Bytes::from(stored)).await?;
            on_bytes(n);
            return Ok(n);
        }
        let _permit = self.reserve(3 * PART as u64).await;
        let (mut file, _) = cache.open_stored(&id)?;
        let mut verifier = crate::cache::OutgoingCheck::new(&id, &file)?;
        // From here on, every way out completes or aborts the upload. It is
        // counted before the store creates it: an interrupt that lands while
        // that request is out waits for it, and then aborts the upload.
        let in_flight = UploadInFlight::start();
        let upload = self
            .store
            .put_multipart(&dest)
            .await
            .map_err(|e| self.fail(&format!("cannot start uploading object {id}"), &e))?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART);
        let verified: Result<()> = loop {
            let step = tokio::task::spawn_blocking(move || {
                let mut buf = vec![0u8; PART];
                let read = crate::fsutil::read_full(&mut file, &mut buf).map_err(crate::Error::from);
                let outcome = read.and_then(|n| {
                    buf.truncate(n);
                    verifier.update(&buf).map_err(|reason| corrupt_local(&id, &reason))
                });
                (file, verifier, buf, outcome)
            })
            .await;
            let (f, v, chunk, outcome) = match step {
                Ok(step) => step,
                Err(e) => break Err(std::io::Error::other(e).into()),
            };
            (file, verifier) = (f, v);
            if let Err(e) = outcome {
                break Err(e);
            }
            if chunk.is_empty() {
                let c = cache.clone();
                break match tokio::task::spawn_blocking(move || verifier.finish(&c, &id)).await {
                    Ok(checked) => checked.map_err(|reason| corrupt_local(&id, &reason)),
                    Err(e) => Err(std::io::Error::other(e).into()),
                };
            }
            if let Err(e) = room_for_parts(&mut writer, 2).await {
                break Err(self.fail(&format!("cannot upload object {id}"), &e));
            }
            on_bytes(chunk.len() as u64);
            writer.put(Bytes::from(chunk));
        };
        // Every part sent (or the process interrupted) before the upload completes.
        let verified = match verified {
            Ok(()) => room_for_parts(&mut writer, 0)
                .await
                .map_err(|e| self.fail(&format!("cannot upload object {id}"), &e)),
            Err(e) => Err(e),
        };
        match verified {
            Ok(()) => {
                writer
                    .finish()
                    .await
                    .map_err(|e| self.fail(&format!("cannot finish uploading object {id}"), &e))?;
                in_flight.done();
                Ok(len)
            }
            Err(e) => {
                let _ = writer.abort().await;
                Err(e)
            }
        }
    }

    /// One PUT of a whole object. WebDAV servers may show a PUT in progress under
    /// its name, so there the object goes to a temporary name and is then moved.
    async fn put_whole(&self, dest: &StorePath, bytes: Bytes) -> Result<()> {
        self.writable()?;
        let what = || format!("cannot upload `{dest}`");
        if self.scheme != Scheme::Http {
            self.store
                .put(dest, PutPayload::from(bytes))
                .await
                .map_err(|e| self.fail(&what(), &e))?;
            return Ok(());
        }
        // object_store's WebDAV client creates missing parent collections on demand,
        // and concurrent uploads can race doing so: a failed attempt is tried again.
        let mut attempt = 0;
        loop {
            match self.put_via_tmp(dest, bytes.clone()).await {
                Ok(()) => return Ok(()),
                Err(_) if attempt < 3 => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(50 * attempt)).await;
                }
                Err(e) => return Err(self.fail(&what(), &e)),
            }
        }
    }

    async fn put_via_tmp(&self, dest: &StorePath, bytes: Bytes) -> std::result::Result<(), object_store::Error> {
        let tmp = self.prefix.clone().join("tmp").join(
            format!(
                "{}.{}.{}",
                dest.filename().unwrap_or("object"),
                std::process::id(),
                TMP_COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            )
            .as_str(),
        );
        self.store.put(&tmp, PutPayload::from(bytes)).await?;
        let moved = match &self.webdav {
            Some(dav) => dav.rename(&tmp, dest).await,
            None => self.store.rename(&tmp, dest).await,
        };
        if let Err(e) = moved {
            let _ = self.store.delete(&tmp).await;
            return Err(e);
        }
        Ok(())
    }

    /// Downloads object `id` into `cache`, verifying it before it gets its final
    /// name. Returns the stored bytes received.
    pub async fn download(
        &self,
        cache: &Cache,
        id: ObjectId,
        for_path: Option<&str>,
        on_bytes: &(dyn Fn(u64) + Sync),
    ) -> Result<u64> {
        if let Some((dir, link)) = &self.dir {
            let (dir, link, dest) = (dir.clone(), *link, cache.clone());
            let n = tokio::task::spawn_blocking(move || dest.import_from(&dir, &id, link, false))
                .await
                .map_err(std::io::Error::other)?
                .map_err(|e| self.remote_side(e, id, for_path))?;
            on_bytes(n);
            return Ok(n);
        }
        if let Some(stored) = self.get_packed(&id, None).await? {
            let c = cache.clone();
            let n = tokio::task::spawn_blocking(move || c.import_stored(&id, &stored))
                .await
                .map_err(std::io::Error::other)?
                .map_err(|e| self.remote_side(e, id, for_path))?;
            on_bytes(n);
            return Ok(n);
        }
        let result = match self.store.get(&self.path_of(&id)).await {
            Ok(r) => r,
            Err(object_store::Error::NotFound { .. }) => return Err(self.missing(id, for_path)),
            Err(e) => return Err(self.fail(&format!("cannot download object {id}"), &e)),
        };
        let size = result.meta.size;
        let corrupt = |e: crate::Error| match e {
            crate::Error::Cache(CacheError::Corrupt { reason, .. }) => RemoteError::Corrupt {
                remote: self.name.clone(),
                id,
                reason,
            }
            .into(),
            e => e,
        };
        if size <= SMALL_OBJECT {
            let _permit = self.reserve(size).await;
            let bytes = result
                .bytes()
                .await
                .map_err(|e| self.fail(&format!("cannot download object {id}"), &e))?;
            let c = cache.clone();
            let n = tokio::task::spawn_blocking(move || c.import_stored(&id, &bytes))
                .await
                .map_err(std::io::Error::other)?
                .map_err(corrupt)?;
            on_bytes(n);
            return Ok(n);
        }
        let _permit = self.reserve(2 * PART as u64).await;
        let mut writer = cache.stored_writer(&id, size)?;
        let mut stream = result.into_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| self.fail(&format!("cannot download object {id}"), &e))?;
            let w = &mut writer;
            tokio::task::block_in_place(|| w.write(&chunk)).map_err(corrupt)?;
            on_bytes(chunk.len() as u64);
        }
        let c = cache.clone();
        tokio::task::block_in_place(move || writer.commit(&c)).map_err(corrupt)
    }

    /// `e` as the remote's error when it is the disk of a directory remote that
    /// is full (the write names a path inside it): the cache's disk is not the one
    /// to free. Any other error is returned as it is.
    pub fn full_disk(&self, e: crate::Error) -> crate::Error {
        if let crate::Error::Remote(RemoteError::Transfer {
            remote,
            failed,
            total,
            first,
        }) = e
        {
            return RemoteError::Transfer {
                remote,
                failed,
                total,
                first: Box::new(self.full_disk(*first)),
            }
            .into();
        }
        let dir = match &self.dir {
            Some((dir, _)) if e.is_disk_full() => dir.root(),
            _ => return e,
        };
        let message = crate::error_chain(&e);
        match message.contains(&*dir.to_string_lossy()) {
            true => RemoteError::Full {
                remote: self.name.clone(),
                dir: dir.to_path_buf(),
                message,
            }
            .into(),
            false => e,
        }
    }

    /// A cache error about an object read from the remote, said of the remote.
    fn remote_side(&self, e: crate::Error, id: ObjectId, for_path: Option<&str>) -> crate::Error {
        match e {
            crate::Error::Cache(CacheError::Corrupt { reason, .. }) => RemoteError::Corrupt {
                remote: self.name.clone(),
                id,
                reason,
            }
            .into(),
            crate::Error::Cache(CacheError::Missing { .. }) => self.missing(id, for_path),
            e => e,
        }
    }

    /// Reads object `id` from the remote into memory, verified (for manifests).
    pub async fn read(&self, id: ObjectId) -> Result<Vec<u8>> {
        if let Some((dir, _)) = &self.dir {
            return dir.read(&id, None).map_err(|e| self.remote_side(e, id, None));
        }
        let packed = self.get_packed(&id, None).await?;
        let bytes = match packed {
            Some(b) => b,
            None => match self.store.get(&self.path_of(&id)).await {
                Ok(r) => r
                    .bytes()
                    .await
                    .map_err(|e| self.fail(&format!("cannot download object {id}"), &e))?,
                Err(object_store::Error::NotFound { .. }) => return Err(self.missing(id, None)),
                Err(e) => return Err(self.fail(&format!("cannot download object {id}"), &e)),
            },
        };
        crate::cache::decode_stored(&id, &bytes).map_err(|reason| {
            RemoteError::Corrupt {
                remote: self.name.clone(),
                id,
                reason,
            }
            .into()
        })
    }
}

/// An object a dated listing found: its id, its stored size, and when it was
/// written where it is (`None` when the store does not say).
pub type Dated = (ObjectId, u64, Option<std::time::SystemTime>);

/// [`Remote::list_all_dated`] of a directory remote: its loose objects' files
/// and its packs, by their modification times.
fn list_cache_dated(dir: &Cache) -> Result<Vec<Dated>> {
    let mut out = Vec::new();
    for first in 0..=255u8 {
        for id in dir.list_prefix(first)? {
            // Gone since it was listed (another gc): not there.
            if let Ok(m) = fs_err::metadata(dir.object_path(&id)) {
                out.push((id, m.len(), m.modified().ok()));
            }
        }
    }
    let packs = dir.packs().with_set(true, |s| s.packs.clone())?.unwrap_or_default();
    for pack in packs {
        let modified = |p: &std::path::Path| fs_err::metadata(p).ok().and_then(|m| m.modified().ok());
        let written = modified(&pack.path).max(modified(&pack.path.with_extension("idx")));
        out.extend(pack.entries.iter().map(|e| (e.id, e.len, written)));
    }
    Ok(out)
}

/// Copies into `to` each pack of `from` whose objects are all in `todo`, and takes
/// them out of `todo`; see [`Remote::push_whole_packs`]. The progress bar, under
/// `label`, counts the bytes verified.
fn copy_whole_packs(
    from: &Cache,
    to: &Cache,
    link: bool,
    todo: &mut Vec<ObjectId>,
    progress: &dyn crate::progress::Progress,
    label: &str,
) -> Result<(usize, u64)> {
    use rayon::prelude::*;
    let wanted: FxHashSet<ObjectId> = todo.iter().copied().collect();
    let packs = from.packs().with_set(true, |s| s.packs.clone())?.unwrap_or_default();
    let whole: Vec<&crate::pack::Pack> = packs
        .iter()
        .map(AsRef::as_ref)
        .filter(|p: &&crate::pack::Pack| p.entries.iter().all(|e| wanted.contains(&e.id)))
        .collect();
    if whole.is_empty() {
        return Ok((0, 0));
    }
    progress.start(label, whole.iter().flat_map(|p| &p.entries).map(|e| e.len).sum(), true);
    // Packs overlap: one is copied (system time) while another is verified.
    let done: Vec<(&crate::pack::Pack, u64)> = whole
        .into_par_iter()
        .filter_map(|p| to.import_pack(p, link, &|n| progress.inc(n)).ok().map(|n| (p, n)))
        .collect();
    progress.finish();
    let copied: FxHashSet<ObjectId> = done.iter().flat_map(|(p, _)| p.entries.iter().map(|e| e.id)).collect();
    todo.retain(|id| !copied.contains(id));
    Ok((copied.len(), done.iter().map(|(_, n)| n).sum()))
}

/// Multipart uploads started and neither completed nor aborted yet.
static UPLOADS_IN_FLIGHT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Set once the process is being interrupted: multipart uploads stop and abort.
fn interrupt_signal() -> &'static tokio::sync::watch::Sender<bool> {
    static SIGNAL: std::sync::OnceLock<tokio::sync::watch::Sender<bool>> = std::sync::OnceLock::new();
    SIGNAL.get_or_init(|| tokio::sync::watch::channel(false).0)
}

/// Multipart uploads that ended without completing after the process was told
/// to stop: aborted, or abandoned by a request that failed.
static UPLOADS_STOPPED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Counts one multipart upload in flight while it lives; [`UploadInFlight::done`]
/// when it completes.
struct UploadInFlight {
    completed: bool,
}

impl UploadInFlight {
    fn start() -> Self {
        UPLOADS_IN_FLIGHT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        UploadInFlight { completed: false }
    }

    fn done(mut self) {
        self.completed = true;
    }
}

impl Drop for UploadInFlight {
    fn drop(&mut self) {
        if !self.completed && *interrupt_signal().borrow() {
            UPLOADS_STOPPED.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        UPLOADS_IN_FLIGHT.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Waits until `w` has room for `max` parts in flight (0: until every part is
/// sent), or fails at once when the process is interrupted; the caller then
/// aborts the upload.
async fn room_for_parts(w: &mut WriteMultipart, max: usize) -> std::result::Result<(), object_store::Error> {
    let mut interrupted = interrupt_signal().subscribe();
    tokio::select! {
        r = w.wait_for_capacity(max) => r,
        _ = interrupted.wait_for(|stop| *stop) => Err(object_store::Error::Generic {
            store: "dvt",
            source: "interrupted".into(),
        }),
    }
}

/// For a process being interrupted (Ctrl-C, `SIGTERM`): makes every multipart
/// upload in flight stop and abort, so that the store drops the parts it holds,
/// and waits up to `limit` for that (one that was completing may still complete).
/// Returns how many uploads stopped unfinished.
pub fn abort_uploads(limit: Duration) -> usize {
    interrupt_signal().send_replace(true);
    let deadline = std::time::Instant::now() + limit;
    while UPLOADS_IN_FLIGHT.load(std::sync::atomic::Ordering::SeqCst) > 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    UPLOADS_STOPPED.load(std::sync::atomic::Ordering::SeqCst)
}

static TMP_COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn corrupt_local(id: &ObjectId, reason: &str) -> crate::Error {
    CacheError::Corrupt {
        id: *id,
        path: None,
        reason: format!("{reason}; it was not uploaded"),
    }
    .into()
}

/// An object_store error in one line: its message and the causes that add to it.
fn describe(e: &object_store::Error) -> String {
    match e {
        // Our own store's messages say all there is (no "Generic SSH error").
        object_store::Error::Generic {
            store: sftp::STORE,
            source,
        } => one_line(&crate::error_chain(source.as_ref())),
        _ => match not_webdav(e) {
            Some(status) => format!(
                "the server does not take WebDAV requests (PROPFIND: HTTP {status}): it is a plain web server, \
                 which dvt can fetch and pull from (through the list of packs a push writes) but not list or \
                 write to; push, gc and fsck of the remote need a WebDAV server (rclone serve webdav, nginx with \
                 dav_ext, Apache mod_dav, Nextcloud) or the store it serves a copy of"
            ),
            None if no_ranges(e) => "the server does not answer range requests (HTTP `Range`), with which dvt \
                                     reads objects out of packs: serve the copy with one that does (nginx, Apache, \
                                     Caddy, `rclone serve http`; Python's `http.server` does not)"
                .into(),
            None => one_line(&crate::error_chain(e)),
        },
    }
}

/// Whether `e` says that the server answered a ranged GET with the whole file.
fn no_ranges(e: &object_store::Error) -> bool {
    matches!(e, object_store::Error::NotSupported { .. })
        && crate::error_chain(e).contains("Range request not supported")
}

/// The status with which a plain web server answered WebDAV's listing ("not
/// implemented" or "not allowed", with an error page), if that is what `e` is.
fn not_webdav(e: &object_store::Error) -> Option<u16> {
    let text = crate::error_chain(e);
    if !text.contains("PROPFIND") {
        return None;
    }
    [501, 405].into_iter().find(|s| text.contains(&format!(" {s} ")))
}

/// Whether `e` is a refusal that trying again cannot mend and whose message
/// says what to do: a server whose host key is not trusted, a web server
/// that is not a WebDAV server or does not answer range requests.
fn is_refusal(e: &object_store::Error) -> bool {
    let mut causes = std::iter::successors(Some(e as &(dyn std::error::Error + 'static)), |e| e.source());
    causes.any(|e| matches!(e.downcast_ref::<ConnectError>(), Some(ConnectError::Refused(_))))
        || not_webdav(e).is_some()
        || no_ranges(e)
}

/// Why a connection to a server (SSH's) could not be made.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum ConnectError {
    /// The server was refused before anything was sent (its host key or
    /// certificate is unknown, changed or revoked); the message says what to
    /// do, and trying again would not help.
    #[error("{0}")]
    Refused(String),
    /// It failed: not reachable, logged out, not speaking SFTP.
    #[error("{0}")]
    Failed(String),
}

impl From<String> for ConnectError {
    fn from(message: String) -> Self {
        ConnectError::Failed(message)
    }
}

/// A store's error on one line: an XML error body (S3, Azure, GCS) shrinks to
/// its code and message, runs of whitespace become one space, and the rest of
/// a long body (a web server's error page) is cut.
fn one_line(text: &str) -> String {
    const MAX: usize = 400;
    let between = |open: &str, close: &str| {
        let start = text.find(open)? + open.len();
        let len = text[start..].find(close)?;
        Some(&text[start..start + len])
    };
    let body = text.find("<?xml").or_else(|| text.find("<Error>"));
    let text = match (body, between("<Code>", "</Code>")) {
        (Some(at), Some(code)) => match between("<Message>", "</Message>") {
            Some(message) => format!("{}{code}: {message}", &text[..at]),
            None => format!("{}{code}", &text[..at]),
        },
        _ => text.to_string(),
    };
    let mut out = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if out.len() > MAX {
        let mut cut = MAX;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out.push_str(" …");
    }
    out
}

/// `text` with every secret replaced by `***`.
pub fn redact(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_string();
    for s in secrets {
        if !s.is_empty() {
            out = out.replace(s.as_str(), "***");
        }
    }
    out
}

/// Once a request to the remote fails (after its retries), the transfers not yet
/// started are not tried: a server that is down would otherwise be asked once per
/// object. They count as skipped, and the next run picks them up.
#[derive(Default)]
pub(crate) struct Stop(std::sync::atomic::AtomicBool);

impl Stop {
    fn stopped(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn note<'a>(&self, results: impl IntoIterator<Item = &'a Result<u64>>) {
        let failed = |r: &Result<u64>| {
            matches!(
                r,
                Err(crate::Error::Remote(
                    RemoteError::Request { .. } | RemoteError::Refused { .. }
                ))
            )
        };
        if results.into_iter().any(failed) {
            self.0.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Runs one transfer, unless an earlier one failed.
    pub(crate) async fn guard(&self, transfer: impl std::future::Future<Output = Result<u64>>) -> Result<u64> {
        if self.stopped() {
            return Err(RemoteError::Skipped.into());
        }
        let r = transfer.await;
        self.note([&r]);
        r
    }

    /// Runs a transfer of the objects `ids` together (a pack, a run of packed
    /// objects), unless an earlier one failed.
    pub(crate) async fn guard_many(
        &self,
        ids: impl Iterator<Item = ObjectId>,
        transfer: impl std::future::Future<Output = Vec<(ObjectId, Result<u64>)>>,
    ) -> Vec<(ObjectId, Result<u64>)> {
        if self.stopped() {
            return ids.map(|id| (id, Err(RemoteError::Skipped.into()))).collect();
        }
        let out = transfer.await;
        self.note(out.iter().map(|(_, r)| r));
        out
    }
}

/// `s` with its `%XX` escapes decoded (what is not valid UTF-8 then, replaced).
pub(crate) fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (
            b[i],
            b.get(i + 1).copied().and_then(hex),
            b.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
