//! Packs on an object store (S3, GCS, Azure, WebDAV): the cache's pack format
//! ([`crate::pack`]) below the remote's prefix, `packs/<name>.pack` and
//! `packs/<name>.idx`.
//!
//! `push` uploads the objects the cache keeps in packs (objects under 4 MiB, never
//! directory manifests) as new packs of at most [`PACK_TARGET`] bytes: the index is
//! computed before the upload starts (every stored length is known), so the pack goes
//! straight to its final name in one atomic PUT or multipart upload, and its index
//! follows only once the pack is complete. A pack without its index is never read.
//! `fetch` reads packed objects with ranged GETs, one per run of neighbouring
//! objects. A directory remote does all this through its own [`Cache`].

use std::ops::Range;
use std::sync::Arc;

use super::{UploadInFlight, room_for_parts};
use bytes::{Buf, Bytes, BytesMut};
use futures::StreamExt;
use futures::future::BoxFuture;
use object_store::path::Path as StorePath;
use object_store::{GetOptions, ObjectStoreExt, WriteMultipart};
use rustc_hash::{FxHashMap, FxHashSet};

use super::{PART, Remote, Scheme, corrupt_local};
use crate::cache::Cache;
use crate::error::{CacheError, RemoteError, Result};
use crate::object::ObjectId;
use crate::pack::{
    Entry, PACK_LIST, PACK_MAGIC, decode_index, decode_pack_list, encode_index, encode_pack_list, index_name,
};

/// A pack pushed to an object store holds at most about this many bytes.
const PACK_TARGET: u64 = 64 * 1024 * 1024;
/// One ranged GET covers at most this span of a pack.
const RUN_SPAN: u64 = 8 * 1024 * 1024;
/// Neighbouring packed objects closer than this are read with one ranged GET.
const RUN_GAP: u64 = 256 * 1024;
/// The most bytes a `packs/list` read from a plain web server may hold.
const PACK_LIST_MAX: u64 = 64 * 1024 * 1024;
/// The most bytes a pack index read from a remote may hold: 48 bytes an entry,
/// an entry at most every 8 bytes (a stored object's header) of a pack of at
/// most 260 MiB (256 MiB, and the last object's 4).
const INDEX_MAX: u64 = 48 * (260 << 20) / 8 + 64;
/// A download hands its objects to the cache, and an upload takes them from
/// it, this many stored bytes at a time.
const IMPORT_BATCH: u64 = 1024 * 1024;

/// The packs of an object-store remote, read once per command.
#[derive(Debug, Default)]
pub struct RemotePacks {
    /// Every pack found (listed, or named by `packs/list`), readable or not.
    names: Vec<String>,
    /// When each listed pack was written: the later of its pack's and its
    /// index's times in the listing (none from `packs/list`).
    times: FxHashMap<String, std::time::SystemTime>,
    packs: Vec<(String, Vec<Entry>)>,
    map: FxHashMap<ObjectId, (u32, u64, u64)>,
}

impl RemotePacks {
    fn find(&self, id: &ObjectId) -> Option<(&str, u64, u64)> {
        let &(i, offset, len) = self.map.get(id)?;
        Some((self.packs[i as usize].0.as_str(), offset, len))
    }

    /// Whether `id` is in one of the packs.
    pub fn contains(&self, id: &ObjectId) -> bool {
        self.map.contains_key(id)
    }

    /// Every packed object's entry, with when its pack was written, if the
    /// listing said.
    pub fn each_entry(&self) -> impl Iterator<Item = (&Entry, Option<std::time::SystemTime>)> + '_ {
        self.packs.iter().flat_map(|(name, entries)| {
            let at = self.times.get(name).copied();
            entries.iter().map(move |e| (e, at))
        })
    }

    /// The packed objects whose first byte is `first`, with their stored sizes.
    pub fn with_first_byte(&self, first: u8) -> impl Iterator<Item = (ObjectId, u64)> + '_ {
        self.map
            .iter()
            .filter(move |(id, _)| id.as_bytes()[0] == first)
            .map(|(id, &(_, _, len))| (*id, len))
    }
}

/// Packed objects read with one ranged GET: `entries` (id, offset, length), sorted
/// by offset, all within `span` of pack `pack`.
#[derive(Debug)]
pub struct Run {
    pack: String,
    span: Range<u64>,
    entries: Vec<(ObjectId, u64, u64)>,
}

impl Run {
    /// The objects this run reads.
    pub fn ids(&self) -> impl Iterator<Item = ObjectId> + '_ {
        self.entries.iter().map(|e| e.0)
    }
}

/// Objects being stored in the cache: their ids, and the task storing them.
type Importing = (Vec<ObjectId>, tokio::task::JoinHandle<Vec<(ObjectId, Result<u64>)>>);

/// Where a group of stored forms comes from when a pack is written: given objects
/// and their stored lengths, their stored bytes (each verified) or why not.
type Source<'a> = dyn Fn(Vec<(ObjectId, u64)>) -> BoxFuture<'a, Vec<(ObjectId, Result<Bytes>)>> + Sync + 'a;

impl Remote {
    fn packs_dir(&self) -> StorePath {
        self.prefix.clone().join("packs")
    }

    fn pack_file(&self, name: &str, ext: &str) -> StorePath {
        self.packs_dir().join(format!("{name}.{ext}").as_str())
    }

    /// Whether pushes to this remote pack small objects. A directory remote packs
    /// through its cache ([`Remote::begin_packing`]), not here.
    pub fn packs_uploads(&self) -> bool {
        self.pack && self.dir.is_none()
    }

    /// The remote's packs (none for a directory remote: its cache reads its own),
    /// read on first need and kept until a `gc` rewrites them.
    pub async fn remote_packs(&self) -> Result<Arc<RemotePacks>> {
        let mut guard = self.packed.lock().await;
        if let Some(p) = guard.as_ref() {
            return Ok(p.clone());
        }
        let loaded = Arc::new(self.load_packs().await?);
        *guard = Some(loaded.clone());
        Ok(loaded)
    }

    /// Makes the next use read the remote's pack indexes again.
    async fn forget_packs(&self) {
        *self.packed.lock().await = None;
    }

    async fn load_packs(&self) -> Result<RemotePacks> {
        let mut set = RemotePacks::default();
        if self.dir.is_some() {
            return Ok(set);
        }
        let listed = self.pack_listing().await.map(|(names, times)| {
            set.times = times;
            names
        });
        let names = match listed {
            Err(_) if self.is_plain() => self.read_pack_list().await?,
            // A listing refused with another client error (a CDN answers
            // PROPFIND with 403): a copy served with its list is a plain web
            // server too. (Not after a server error or none: a WebDAV server
            // having a bad moment is not taken for a read-only one.)
            Err(e) if self.scheme == Scheme::Http && crate::error_chain(&e).contains("status code: 4") => {
                match self.read_pack_list().await {
                    Ok(names) => {
                        self.set_plain();
                        names
                    }
                    Err(_) => return Err(e),
                }
            }
            listed => listed?,
        };
        self.prune_index_copies(&names);
        set.names.clone_from(&names);
        let indexes: Vec<Result<(String, Vec<Entry>)>> = futures::stream::iter(names)
            .map(|name| async move {
                if let Some(entries) = self.index_copy(&name) {
                    return Ok((name, entries));
                }
                let path = self.pack_file(&name, "idx");
                let bytes = match self.store.get(&path).await {
                    // Bigger than any index can be: not read, and, as a damaged
                    // one, its objects count as missing.
                    Ok(r) if r.meta.size > INDEX_MAX => {
                        tracing::warn!(
                            "remote `{}`: `{path}` holds {} bytes, more than a pack index can; its objects count as missing",
                            self.name,
                            r.meta.size
                        );
                        return Ok((name, Vec::new()));
                    }
                    Ok(r) => r.bytes().await,
                    Err(e) => Err(e),
                };
                let bytes = match bytes {
                    Ok(bytes) => bytes,
                    // Deleted by a `gc` since it was listed (or a stale
                    // `packs/list`): its objects count as missing.
                    Err(object_store::Error::NotFound { .. }) => return Ok((name, Vec::new())),
                    Err(e) => return Err(self.fail(&format!("cannot read pack index `{path}`"), &e)),
                };
                // A damaged index is skipped: its objects count as missing, as in the cache.
                let entries = decode_index(&bytes, &name).unwrap_or_default();
                if !entries.is_empty() {
                    self.keep_index_copy(&name, &bytes);
                }
                Ok((name, entries))
            })
            .buffer_unordered(self.jobs.min(16))
            .collect()
            .await;
        for r in indexes {
            let (name, entries) = r?;
            if entries.is_empty() {
                continue;
            }
            let i = set.packs.len() as u32;
            for e in &entries {
                set.map.insert(e.id, (i, e.offset, e.len));
            }
            set.packs.push((name, entries));
        }
        Ok(set)
    }

    /// The names of the remote's packs, from a listing of `packs/`.
    async fn pack_names(&self) -> Result<Vec<String>> {
        if let Some((dir, _)) = &self.dir {
            let listed = match fs_err::read_dir(dir.root().join("packs")) {
                Ok(entries) => entries,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
                Err(e) => return Err(e.into()),
            };
            let mut names = Vec::new();
            for entry in listed {
                let file = entry?.file_name();
                names.extend(file.to_str().and_then(index_name).map(str::to_string));
            }
            return Ok(names);
        }
        Ok(self.pack_listing().await?.0)
    }

    /// An object store's packs, from one listing of `packs/`: their names (of
    /// their indexes), and when each was written, the later of its pack's and
    /// its index's times.
    async fn pack_listing(&self) -> Result<(Vec<String>, FxHashMap<String, std::time::SystemTime>)> {
        let mut names = Vec::new();
        let mut times: FxHashMap<String, std::time::SystemTime> = FxHashMap::default();
        for meta in self.list_below(&self.packs_dir(), "packs").await? {
            let Some(file) = meta.location.filename() else { continue };
            names.extend(index_name(file).map(str::to_string));
            let Some((name, "pack" | "idx")) = file.rsplit_once('.') else {
                continue;
            };
            let at: std::time::SystemTime = meta.last_modified.into();
            let t = times.entry(name.to_string()).or_insert(at);
            *t = (*t).max(at);
        }
        Ok((names, times))
    }

    /// The pack names `packs/list` holds: a plain web server's only answer to
    /// which packs there are.
    async fn read_pack_list(&self) -> Result<Vec<String>> {
        let path = self.packs_dir().join(PACK_LIST);
        let bytes = match self.store.get(&path).await {
            // A million packs' names take 65 MB: a bigger list is not one.
            Ok(r) if r.meta.size > PACK_LIST_MAX => {
                return Err(RemoteError::Refused {
                    remote: self.name.clone(),
                    message: format!(
                        "`{path}` holds {} bytes, more than a list of packs can: it is not one",
                        r.meta.size
                    ),
                }
                .into());
            }
            Ok(r) => r.bytes().await,
            Err(e) => Err(e),
        };
        match bytes {
            Ok(bytes) => Ok(decode_pack_list(&String::from_utf8_lossy(&bytes))),
            Err(object_store::Error::NotFound { .. }) => Err(RemoteError::Refused {
                remote: self.name.clone(),
                message: format!(
                    "`{}` is a plain web server (it does not take WebDAV requests), and has no `packs/list`, \
                     which says what packs it has: check that the URL is the remote's (the directory holding \
                     `packs/`); if it is, push to the store it serves a copy of (a push writes the list), and \
                     copy that store here again",
                    self.url
                ),
            }
            .into()),
            Err(e) => Err(self.fail(&format!("cannot read `{path}`"), &e)),
        }
    }

    /// Writes `packs/list`, the names of the remote's packs, where it differs
    /// from them (or is missing): what a plain web server serving a copy of
    /// this remote answers instead of a listing. Unless `changed` (this
    /// command wrote or deleted packs), the packs read before are the names.
    ///
    /// After a write, `packs/` is listed again, and the list written again
    /// if a pack appeared meanwhile: of two pushes at once, the one that
    /// writes last then also checks last, so the list it leaves misses no
    /// pack that either uploaded.
    pub(crate) async fn publish_pack_list(&self, changed: bool) -> Result<()> {
        if self.is_plain() {
            return Ok(());
        }
        let mut names = match changed || self.dir.is_some() {
            true => self.pack_names().await?,
            false => self.remote_packs().await?.names.clone(),
        };
        for _ in 0..4 {
            let text = encode_pack_list(names);
            if self.pack_list().await.as_deref() == Some(text.as_bytes()) {
                return Ok(());
            }
            match &self.dir {
                Some((dir, _)) => {
                    let packs = dir.root().join("packs");
                    fs_err::create_dir_all(&packs)?;
                    crate::fsutil::atomic_write(&packs.join(PACK_LIST), text.as_bytes())?;
                }
                None => {
                    self.put_whole(&self.packs_dir().join(PACK_LIST), Bytes::from(text))
                        .await?
                }
            }
            names = self.pack_names().await?;
        }
        Ok(())
    }

    /// The bytes of `packs/list` as they are now, if it can be read.
    async fn pack_list(&self) -> Option<Bytes> {
        match &self.dir {
            Some((dir, _)) => fs_err::read(dir.root().join("packs").join(PACK_LIST))
                .ok()
                .map(Bytes::from),
            None => match self.store.get(&self.packs_dir().join(PACK_LIST)).await {
                Ok(r) => r.bytes().await.ok(),
                Err(_) => None,
            },
        }
    }

    /// This repo's copy of pack index `name`, if it has a good one (checked
    /// against the name, which is the hash of the index's bytes).
    fn index_copy(&self, name: &str) -> Option<Vec<Entry>> {
        let file = self.index_copies.as_ref()?.join(format!("{name}.idx"));
        let bytes = fs_err::read(file).ok()?;
        decode_index(&bytes, name).ok().filter(|e| !e.is_empty())
    }

    /// Keeps a copy of a pack index read from the remote. Only a cache: failing
    /// to write it costs a download next time.
    fn keep_index_copy(&self, name: &str, bytes: &[u8]) {
        if let Some(dir) = &self.index_copies
            && fs_err::create_dir_all(dir).is_ok()
        {
            let _ = crate::fsutil::atomic_write(&dir.join(format!("{name}.idx")), bytes);
        }
    }

    /// Drops copies of indexes whose packs are no longer on the remote (`gc`).
    fn prune_index_copies(&self, listed: &[String]) {
        let Some(entries) = self.index_copies.as_ref().and_then(|d| fs_err::read_dir(d).ok()) else {
            return;
        };
        let listed: FxHashSet<&str> = listed.iter().map(String::as_str).collect();
        for entry in entries.flatten() {
            let file = entry.file_name();
            let file = file.to_string_lossy();
            if !index_name(&file).is_some_and(|n| listed.contains(n)) {
                let _ = fs_err::remove_file(entry.path());
            }
        }
    }

    /// The stored form of object `id` if it is in one of the remote's packs.
    pub(super) async fn get_packed(&self, id: &ObjectId, within: Option<u64>) -> Result<Option<Bytes>> {
        let packs = self.remote_packs().await?;
        let Some((name, offset, len)) = packs.find(id) else {
            return Ok(None);
        };
        let len = within.map_or(len, |w| w.min(len));
        let path = self.pack_file(name, "pack");
        match self.store.get_range(&path, offset..offset + len).await {
            Ok(b) => Ok(Some(b)),
            // Deleted by a `gc` since its index was read.
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => match self.truncated(&path, offset + len).await {
                Some(reason) => Err(self.corrupt(*id, &reason)),
                None => Err(self.fail(&format!("cannot read object {id}"), &e)),
            },
        }
    }

    /// Why a ranged read of `path` up to `end` failed, if the pack is shorter than
    /// its index says (stores refuse such a range outright).
    async fn truncated(&self, path: &StorePath, end: u64) -> Option<String> {
        match self.store.head(path).await {
            Ok(meta) if meta.size < end => Some(format!(
                "its pack `{path}` holds {} bytes, fewer than its index lists",
                meta.size
            )),
            _ => None,
        }
    }

    /// The URL of the pack holding `id` and the object's byte range in it.
    pub(super) async fn packed_url(&self, id: &ObjectId) -> Result<Option<(String, Range<u64>)>> {
        let packs = self.remote_packs().await?;
        Ok(packs
            .find(id)
            .map(|(name, offset, len)| (self.key_url(&format!("packs/{name}.pack")), offset..offset + len)))
    }

    /// Splits `ids` into objects to download one by one and runs of packed objects
    /// to read with one ranged GET each.
    pub async fn plan_downloads(&self, ids: &[ObjectId]) -> Result<(Vec<ObjectId>, Vec<Run>)> {
        let packs = self.remote_packs().await?;
        let mut loose = Vec::new();
        let mut packed: Vec<(u32, u64, u64, ObjectId)> = Vec::new();
        for id in ids {
            match packs.map.get(id) {
                Some(&(p, offset, len)) => packed.push((p, offset, len, *id)),
                None => loose.push(*id),
            }
        }
        packed.sort_unstable_by_key(|e| (e.0, e.1));
        let mut runs: Vec<Run> = Vec::new();
        for (p, offset, len, id) in packed {
            let name = &packs.packs[p as usize].0;
            match runs.last_mut() {
                Some(r)
                    if r.pack == *name
                        && offset >= r.span.end
                        && offset - r.span.end <= RUN_GAP
                        && offset + len - r.span.start <= RUN_SPAN =>
                {
                    r.span.end = offset + len;
                    r.entries.push((id, offset, len));
                }
                _ => runs.push(Run {
                    pack: name.clone(),
                    span: offset..offset + len,
                    entries: vec![(id, offset, len)],
                }),
            }
        }
        Ok((loose, runs))
    }

    /// Downloads the objects of `run` into `cache` with one ranged GET, verifying
    /// each before it is stored. `on_bytes` is told of the stored bytes received.
    ///
    /// The objects are handed to the cache as the response arrives, about
    /// 1 MiB at a time (one batch is stored while the next arrives), so a run
    /// holds about two batches and its biggest object in memory, not its
    /// whole span.
    pub async fn download_run(
        &self,
        cache: &Cache,
        run: &Run,
        on_bytes: &(dyn Fn(u64) + Sync),
    ) -> Vec<(ObjectId, Result<u64>)> {
        let biggest = run.entries.iter().map(|e| e.2).max().unwrap_or(0);
        let _permit = self
            .reserve((run.span.end - run.span.start).min(2 * IMPORT_BATCH + biggest))
            .await;
        let path = self.pack_file(&run.pack, "pack");
        let options = GetOptions {
            range: Some(run.span.clone().into()),
            ..Default::default()
        };
        let mut stream = match self.store.get_opts(&path, options).await {
            Ok(response) => response.into_stream(),
            Err(e) => return self.run_failed(&path, run, e).await,
        };
        let mut out = Vec::with_capacity(run.entries.len());
        let mut buffer = BytesMut::new();
        // The pack offset of `buffer`'s first byte, and the entries complete so far.
        let (mut at, mut done) = (run.span.start, 0);
        let mut batch: Vec<(ObjectId, Bytes)> = Vec::new();
        let mut batch_bytes = 0;
        // The batch before, stored while the next one arrives.
        let mut importing = None;
        loop {
            let received = stream.next().await;
            let end = match received {
                Some(Ok(bytes)) => {
                    on_bytes(bytes.len() as u64);
                    buffer.extend_from_slice(&bytes);
                    false
                }
                Some(Err(e)) => {
                    out.extend(self.imported(importing).await);
                    if !batch.is_empty() {
                        out.extend(self.imported(Some(Self::import_batch(cache, batch))).await);
                    }
                    let rest = Run {
                        pack: run.pack.clone(),
                        span: run.span.clone(),
                        entries: run.entries[done..].to_vec(),
                    };
                    out.extend(self.run_failed(&path, &rest, e).await);
                    return out;
                }
                None => true,
            };
            while let Some(&(id, offset, len)) = run.entries.get(done)
                && offset + len <= at + buffer.len() as u64
            {
                buffer.advance((offset - at) as usize);
                batch.push((id, buffer.split_to(len as usize).freeze()));
                (at, done, batch_bytes) = (offset + len, done + 1, batch_bytes + len);
            }
            if !batch.is_empty() && (end || batch_bytes >= IMPORT_BATCH) {
                out.extend(self.imported(importing.take()).await);
                importing = Some(Self::import_batch(cache, std::mem::take(&mut batch)));
                batch_bytes = 0;
            }
            if end {
                break;
            }
        }
        out.extend(self.imported(importing).await);
        if done < run.entries.len() {
            let reason = match self.truncated(&path, run.span.end).await {
                Some(reason) => reason,
                None => format!("its pack `{path}` ended before it did"),
            };
            out.extend(
                run.entries[done..]
                    .iter()
                    .map(|e| (e.0, Err(self.corrupt(e.0, &reason)))),
            );
        }
        out
    }

    /// Stores downloaded objects (id, stored bytes) in `cache`, each verified
    /// first, on a blocking thread; [`Self::imported`] waits for the outcome.
    fn import_batch(cache: &Cache, batch: Vec<(ObjectId, Bytes)>) -> Importing {
        let ids: Vec<ObjectId> = batch.iter().map(|b| b.0).collect();
        let c = cache.clone();
        let task = tokio::task::spawn_blocking(move || {
            batch
                .into_iter()
                .map(|(id, bytes)| (id, c.import_stored(&id, &bytes)))
                .collect::<Vec<_>>()
        });
        (ids, task)
    }

    /// The outcome of an [`Self::import_batch`], if any.
    async fn imported(&self, importing: Option<Importing>) -> Vec<(ObjectId, Result<u64>)> {
        let Some((ids, task)) = importing else {
            return Vec::new();
        };
        match task.await {
            Ok(results) => results
                .into_iter()
                .map(|(id, r)| {
                    let r = r.map_err(|e| match e {
                        crate::Error::Cache(CacheError::Corrupt { reason, .. }) => self.corrupt(id, &reason),
                        e => e,
                    });
                    (id, r)
                })
                .collect(),
            Err(e) => {
                let msg = e.to_string();
                self.all_failed(ids.into_iter(), |_| std::io::Error::other(msg.clone()).into())
            }
        }
    }

    /// Every object of `run` fails after its ranged GET of pack `path` failed with `e`.
    async fn run_failed(&self, path: &StorePath, run: &Run, e: object_store::Error) -> Vec<(ObjectId, Result<u64>)> {
        if let object_store::Error::NotFound { .. } = e {
            return self.all_failed(run.ids(), |id| self.missing(id, None));
        }
        if let Some(reason) = self.truncated(path, run.span.end).await {
            return self.all_failed(run.ids(), |id| self.corrupt(id, &reason));
        }
        let err = self.fail(&format!("cannot download pack `{path}`"), &e);
        let mut out = vec![];
        let mut ids = run.ids();
        if let Some(first) = ids.next() {
            out.push((first, Err(err)));
        }
        out.extend(ids.map(|id| (id, Err(RemoteError::Skipped.into()))));
        out
    }

    fn corrupt(&self, id: ObjectId, reason: &str) -> crate::Error {
        RemoteError::Corrupt {
            remote: self.name.clone(),
            id,
            reason: reason.to_string(),
        }
        .into()
    }

    fn all_failed(
        &self,
        ids: impl Iterator<Item = ObjectId>,
        err: impl Fn(ObjectId) -> crate::Error,
    ) -> Vec<(ObjectId, Result<u64>)> {
        ids.map(|id| (id, Err(err(id)))).collect()
    }

    /// Uploads `ids` (objects the cache keeps in packs) as new packs, several at
    /// once. Returns each object's stored size sent, or why it was not.
    pub async fn upload_packed(
        &self,
        cache: &Cache,
        ids: &[ObjectId],
        on_bytes: &(dyn Fn(u64) + Sync),
        on_object: &(dyn Fn() + Sync),
    ) -> Vec<(ObjectId, Result<u64>)> {
        // In the cache's order, so that reading them is sequential.
        let mut located: Vec<(std::path::PathBuf, u64, ObjectId, u64)> = Vec::with_capacity(ids.len());
        let mut out = Vec::new();
        for id in ids {
            match cache.locate(id) {
                Ok(Some((path, range))) => located.push((path, range.start, *id, range.end - range.start)),
                Ok(None) => out.push((*id, Err(CacheError::Missing { id: *id, path: None }.into()))),
                Err(e) => out.push((*id, Err(e))),
            }
        }
        located.sort_unstable();
        let groups = by_size(located.into_iter().map(|(_, _, id, len)| (id, len)), self.pack_target());
        let source = |objects: Vec<(ObjectId, u64)>| -> BoxFuture<'_, Vec<(ObjectId, Result<Bytes>)>> {
            let c = cache.clone();
            Box::pin(async move {
                let read = tokio::task::spawn_blocking(move || {
                    objects
                        .into_iter()
                        .map(|(id, _)| {
                            let r = c.read_stored(&id).map(Bytes::from).map_err(|e| match e {
                                crate::Error::Cache(CacheError::Corrupt { reason, .. }) => corrupt_local(&id, &reason),
                                e => e,
                            });
                            (id, r)
                        })
                        .collect::<Vec<_>>()
                })
                .await;
                read.unwrap_or_default()
            })
        };
        let stop = super::Stop::default();
        let uploads: Vec<Vec<(ObjectId, Result<u64>)>> = futures::stream::iter(groups)
            .map(|g| {
                let (source, stop) = (&source, &stop);
                async move {
                    let ids: Vec<ObjectId> = g.iter().map(|(id, _)| *id).collect();
                    let r = stop
                        .guard_many(ids.into_iter(), self.write_pack(g, source, on_bytes))
                        .await;
                    for _ in &r {
                        on_object();
                    }
                    r
                }
            })
            .buffer_unordered((self.jobs / 2).max(1))
            .collect()
            .await;
        out.extend(uploads.into_iter().flatten());
        out
    }

    fn pack_target(&self) -> u64 {
        // WebDAV has no multipart upload: a pack goes up whole, from memory.
        if self.scheme == Scheme::Http {
            PART as u64
        } else {
            PACK_TARGET
        }
    }

    /// Writes one pack of `objects` (id, stored length), their bytes from `source`:
    /// the pack under its final name, then its index. An object that `source`
    /// cannot give (corrupt, missing) is left out and the pack is started again
    /// without it; a failed request fails the whole pack.
    async fn write_pack(
        &self,
        mut objects: Vec<(ObjectId, u64)>,
        source: &Source<'_>,
        on_bytes: &(dyn Fn(u64) + Sync),
    ) -> Vec<(ObjectId, Result<u64>)> {
        let mut out: Vec<(ObjectId, Result<u64>)> = Vec::new();
        'attempt: loop {
            if objects.is_empty() {
                return out;
            }
            let mut entries = Vec::with_capacity(objects.len());
            let mut offset = PACK_MAGIC.len() as u64;
            for &(id, len) in &objects {
                entries.push(Entry { id, offset, len });
                offset += len;
            }
            let total = offset;
            let (index, name) = encode_index(&mut entries);
            let pack_path = self.pack_file(&name, "pack");
            // Objects in groups of about IMPORT_BATCH bytes, each read (and
            // verified) at once, then copied into the upload's buffer.
            let parts = by_size(objects.iter().copied(), IMPORT_BATCH);
            let whole = total <= PART as u64 || self.scheme == Scheme::Http;
            let _permit = self.reserve(if whole { total } else { 3 * PART as u64 }).await;
            let mut buffer: Vec<u8> = Vec::new();
            let mut multipart = None;
            let mut in_flight = None;
            if whole {
                buffer.reserve(total as usize);
                buffer.extend_from_slice(PACK_MAGIC);
            } else {
                // Counted before the store creates it: an interrupt that lands
                // while the request is out waits for it, and aborts it.
                in_flight = Some(UploadInFlight::start());
                match self.store.put_multipart(&pack_path).await {
                    Ok(upload) => {
                        let mut w = WriteMultipart::new_with_chunk_size(upload, PART);
                        w.write(PACK_MAGIC);
                        multipart = Some(w);
                    }
                    Err(e) => {
                        let err = self.fail(&format!("cannot start uploading pack `{pack_path}`"), &e);
                        return self.pack_failed(out, &objects, err);
                    }
                }
            }
            for part in parts {
                for (id, r) in source(part).await {
                    let bytes = match r {
                        Ok(b) => b,
                        Err(e) => {
                            if let Some(w) = multipart.take() {
                                let _ = w.abort().await;
                            }
                            objects.retain(|(o, _)| *o != id);
                            out.push((id, Err(e)));
                            continue 'attempt;
                        }
                    };
                    match multipart.as_mut() {
                        Some(w) => {
                            if let Err(e) = room_for_parts(w, 2).await {
                                let err = self.fail(&format!("cannot upload pack `{pack_path}`"), &e);
                                if let Some(w) = multipart.take() {
                                    let _ = w.abort().await;
                                }
                                return self.pack_failed(out, &objects, err);
                            }
                            w.write(&bytes);
                        }
                        None => buffer.extend_from_slice(&bytes),
                    }
                    on_bytes(bytes.len() as u64);
                }
            }
            let sent = match multipart {
                // Every part sent (or the process interrupted) before the upload completes.
                Some(mut w) => match room_for_parts(&mut w, 0).await {
                    Ok(()) => w
                        .finish()
                        .await
                        .map(|_| ())
                        .map_err(|e| self.fail(&format!("cannot finish uploading pack `{pack_path}`"), &e)),
                    Err(e) => {
                        let _ = w.abort().await;
                        Err(self.fail(&format!("cannot upload pack `{pack_path}`"), &e))
                    }
                },
                None => self.put_whole(&pack_path, Bytes::from(buffer)).await,
            };
            if sent.is_ok()
                && let Some(upload) = in_flight.take()
            {
                upload.done();
            }
            let indexed = match sent {
                Ok(()) => self.put_whole(&self.pack_file(&name, "idx"), Bytes::from(index)).await,
                Err(e) => Err(e),
            };
            if let Err(e) = indexed {
                return self.pack_failed(out, &objects, e);
            }
            out.extend(objects.iter().map(|&(id, len)| (id, Ok(len))));
            return out;
        }
    }

    /// Every object of a pack that could not be written fails: the first with `err`,
    /// the others as not tried.
    fn pack_failed(
        &self,
        mut out: Vec<(ObjectId, Result<u64>)>,
        objects: &[(ObjectId, u64)],
        err: crate::Error,
    ) -> Vec<(ObjectId, Result<u64>)> {
        let mut err = Some(err);
        for (id, _) in objects {
            out.push((*id, Err(err.take().unwrap_or_else(|| RemoteError::Skipped.into()))));
        }
        out
    }

    /// Deletes the packed objects among `gone` from the remote's packs: a pack with
    /// nothing left is deleted (index first); one that keeps some objects is written
    /// anew with only those, verified, before the old one is deleted.
    pub(super) async fn delete_packed(&self, gone: &FxHashSet<ObjectId>) -> Result<()> {
        let packs = self.remote_packs().await?;
        if !gone.iter().any(|id| packs.contains(id)) {
            return Ok(());
        }
        let result = self.rewrite_packs(&packs, gone).await;
        self.forget_packs().await;
        result
    }

    async fn rewrite_packs(&self, packs: &RemotePacks, gone: &FxHashSet<ObjectId>) -> Result<()> {
        for (name, entries) in &packs.packs {
            let keep: Vec<&Entry> = entries.iter().filter(|e| !gone.contains(&e.id)).collect();
            if keep.len() == entries.len() {
                continue;
            }
            if !keep.is_empty() {
                let old = self.pack_file(name, "pack");
                let places: FxHashMap<ObjectId, (u64, u64)> = keep.iter().map(|e| (e.id, (e.offset, e.len))).collect();
                let places = &places;
                let old = &old;
                let source = move |objects: Vec<(ObjectId, u64)>| -> BoxFuture<'_, Vec<(ObjectId, Result<Bytes>)>> {
                    Box::pin(async move {
                        let spans: Vec<(u64, u64)> = objects.iter().map(|(id, _)| places[id]).collect();
                        let start = spans.iter().map(|s| s.0).min().unwrap_or(0);
                        let end = spans.iter().map(|s| s.0 + s.1).max().unwrap_or(0);
                        match self.store.get_range(old, start..end).await {
                            Ok(bytes) if bytes.len() as u64 == end - start => objects
                                .iter()
                                .zip(spans)
                                .map(|((id, _), (offset, len))| {
                                    let at = (offset - start) as usize;
                                    let stored = bytes.slice(at..at + len as usize);
                                    let r = crate::cache::verify_stored(id, &stored)
                                        .map(|()| stored)
                                        .map_err(|reason| self.corrupt(*id, &reason));
                                    (*id, r)
                                })
                                .collect(),
                            Ok(_) => objects
                                .iter()
                                .map(|(id, _)| (*id, Err(self.corrupt(*id, "its pack is truncated"))))
                                .collect(),
                            Err(e) => objects
                                .iter()
                                .map(|(id, _)| (*id, Err(self.fail(&format!("cannot read pack `{old}`"), &e))))
                                .collect(),
                        }
                    })
                };
                let objects: Vec<(ObjectId, u64)> = keep.iter().map(|e| (e.id, e.len)).collect();
                let written = self.write_pack(objects, &source, &|_| {}).await;
                if let Some((_, Err(e))) = written.into_iter().find(|(_, r)| r.is_err()) {
                    return Err(e);
                }
            }
            for ext in ["idx", "pack"] {
                let path = self.pack_file(name, ext);
                match self.store.delete(&path).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(self.fail(&format!("cannot delete `{path}`"), &e)),
                }
            }
        }
        Ok(())
    }
}

/// `objects` (id, stored length) in consecutive groups of at most `limit` bytes
/// each (an object bigger than that gets a group of its own).
fn by_size(objects: impl Iterator<Item = (ObjectId, u64)>, limit: u64) -> Vec<Vec<(ObjectId, u64)>> {
    let mut groups: Vec<Vec<(ObjectId, u64)>> = Vec::new();
    let mut size = 0;
    for (id, len) in objects {
        match groups.last_mut() {
            Some(g) if size + len <= limit => g.push((id, len)),
            _ => {
                groups.push(vec![(id, len)]);
                size = 0;
            }
        }
        size += len;
    }
    groups
}
