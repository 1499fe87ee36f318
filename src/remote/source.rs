//! Reading a store's own objects, not dvt's, for `dvt import-url`: what is at a URL
//! (the object it names, or every object below it) and downloading each to a file.

use std::io::Write;
use std::path::Path;

use super::*;

/// How much of a local file [`Remote::stream_source`] reads at a time.
const LOCAL_BLOCK: usize = 1 << 20;

/// One object found at an import URL.
#[derive(Debug, Clone)]
pub struct SourceEntry {
    /// Where it is in the store.
    pub location: StorePath,
    /// Its path below the URL, `/`-separated; empty when the URL names the object itself.
    pub rel: String,
    /// Its size in bytes.
    pub size: u64,
    /// What tells one version from the next: its ETag, or where the store gives
    /// none, its modification time.
    pub version: String,
    /// Whether it is an executable file: known only for local files (see
    /// [`SourceEntry::note_mode`]), else `false`.
    pub executable: bool,
    /// The store's id of the version to read, for an entry of a version-aware
    /// import (see [`Remote::pinned_source`]); `None` reads the current one.
    pub pinned: Option<String>,
}

impl SourceEntry {
    fn of(meta: &object_store::ObjectMeta, rel: String) -> Self {
        SourceEntry {
            location: meta.location.clone(),
            rel,
            size: meta.size,
            version: meta
                .e_tag
                .clone()
                .unwrap_or_else(|| meta.last_modified.timestamp_nanos_opt().unwrap_or(0).to_string()),
            executable: false,
            pinned: None,
        }
    }

    /// For an entry of a local directory store rooted at `/`: reads whether the
    /// file is executable (object stores keep no such bit).
    pub fn note_mode(&mut self) {
        use std::os::unix::fs::PermissionsExt;
        let path = Path::new("/").join(self.location.as_ref());
        self.executable = fs_err::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o111 != 0);
    }
}

impl Remote {
    /// This store, reading the keys below `prefix` (a URL's path) as they are:
    /// for a store's own objects, whose keys may hold `[`, `~`, `#`, `%`… A
    /// remote's prefix, built component by component, has object_store escape
    /// those (`%7E`), and stays so for the data stored under it already. The
    /// path of an `http(s)://` URL is percent-decoded first (`%20` is a space,
    /// `%23` a `#`), as a browser's; a bucket's key is taken as written.
    pub fn at_key_prefix(mut self, prefix: &str) -> Result<Remote> {
        let prefix = match self.scheme {
            // The SFTP client decodes the escaped components itself.
            Scheme::Ssh => return Ok(self),
            Scheme::Http => super::percent_decode(prefix),
            _ => prefix.to_string(),
        };
        let parts: Vec<&str> = prefix.split('/').filter(|s| !s.is_empty()).collect();
        self.prefix = StorePath::parse(parts.join("/")).map_err(|e| RemoteError::Request {
            remote: self.name.clone(),
            message: format!("`{prefix}` cannot name an object: {e}"),
        })?;
        Ok(self)
    }

    /// What this remote's URL names: one object (a single entry with an empty
    /// `rel`), or else every object below it as a directory, sorted by `rel`;
    /// only the latter when `dir` (the URL ends with `/`). Empty when there is
    /// nothing there.
    pub async fn list_source(&self, dir: bool) -> Result<Vec<SourceEntry>> {
        let mut head_failed = None;
        let mut not_found = false;
        if !dir && self.prefix.parts().next().is_some() {
            match self.store.head(&self.prefix).await {
                Ok(meta) => return Ok(vec![SourceEntry::of(&meta, String::new())]),
                Err(object_store::Error::NotFound { .. }) => not_found = true,
                // A server that answers HEAD on a directory with an error, as some
                // WebDAV servers do, may still list it.
                Err(e) if self.scheme == Scheme::Http => head_failed = Some(e),
                Err(e) => return Err(self.fail("cannot read it", &e)),
            }
        }
        let mut out = Vec::new();
        let mut listing = self.store.list(Some(&self.prefix));
        while let Some(meta) = listing.next().await {
            let meta = match meta {
                Ok(m) => m,
                Err(object_store::Error::NotFound { .. }) => break,
                Err(e) => match &head_failed {
                    // Not a WebDAV server, or not a server at all: what HEAD said is the news.
                    Some(h) => return Err(self.fail("cannot read it", h)),
                    // A plain HTTP server said "not found" and cannot list: nothing there.
                    None if not_found && self.scheme == Scheme::Http => return Ok(vec![]),
                    None => return Err(self.fail("cannot list it", &e)),
                },
            };
            let Some(parts) = meta.location.prefix_match(&self.prefix) else {
                continue;
            };
            let rel = parts.map(|p| p.as_ref().to_string()).collect::<Vec<_>>().join("/");
            if rel.is_empty() {
                continue;
            }
            if let Err(reason) = crate::relpath::validate(&rel) {
                return Err(RemoteError::Request {
                    remote: self.name.clone(),
                    message: format!("the store lists `{rel}`, which cannot be a path here: {reason}"),
                }
                .into());
            }
            out.push(SourceEntry::of(&meta, rel));
        }
        out.sort_by(|a, b| a.rel.as_bytes().cmp(b.rel.as_bytes()));
        // An empty object named like a directory (the "folder" some S3 tools make)
        // is that directory, not a file.
        let folders: Vec<bool> = (0..out.len())
            .map(|i| {
                out[i].size == 0
                    && out[i + 1..]
                        .iter()
                        .take_while(|e| e.rel.starts_with(&out[i].rel))
                        .any(|e| e.rel.as_bytes().get(out[i].rel.len()) == Some(&b'/'))
            })
            .collect();
        let mut folders = folders.into_iter();
        out.retain(|_| !folders.next().unwrap_or(false));
        Ok(out)
    }

    /// Downloads `entry` to a new file at `dest`, calling `on_bytes` as bytes
    /// arrive. Fails if the object is no longer the version that was listed.
    pub async fn download_source(
        &self,
        entry: &SourceEntry,
        dest: &Path,
        on_bytes: &(dyn Fn(u64) + Sync),
    ) -> Result<()> {
        // A buffer no bigger than the file: see `stream_source`.
        let buffer = (entry.size as usize).clamp(8 << 10, 1 << 20);
        let mut file = std::io::BufWriter::with_capacity(buffer, fs_err::File::create(dest)?);
        self.stream_source(entry, on_bytes, &mut |chunk| {
            tokio::task::block_in_place(|| file.write_all(chunk))
        })
        .await?;
        tokio::task::block_in_place(|| file.flush())?;
        Ok(())
    }

    /// Downloads `entry` into memory (for small objects), as
    /// [`Remote::download_source`] does to a file.
    pub async fn read_source(&self, entry: &SourceEntry, on_bytes: &(dyn Fn(u64) + Sync)) -> Result<Vec<u8>> {
        let mut data = Vec::with_capacity(entry.size as usize);
        self.stream_source(entry, on_bytes, &mut |chunk| {
            data.extend_from_slice(chunk);
            Ok(())
        })
        .await?;
        Ok(data)
    }

    /// The id of `entry`'s bytes, read from the store and kept nowhere
    /// (`import-url --no-download`), checked as [`Remote::download_source`]
    /// checks a download.
    pub async fn hash_source(&self, entry: &SourceEntry, on_bytes: &(dyn Fn(u64) + Sync)) -> Result<ObjectId> {
        let mut hasher = blake3::Hasher::new();
        self.stream_source(entry, on_bytes, &mut |chunk| {
            // Big blocks (a local file's) are hashed on every core.
            match chunk.len() >= LOCAL_BLOCK {
                true => tokio::task::block_in_place(|| hasher.update_rayon(chunk)),
                false => hasher.update(chunk),
            };
            Ok(())
        })
        .await?;
        Ok(ObjectId::from_hasher(&hasher))
    }

    /// Where `entry` is on this machine, if the store is a local directory and it
    /// is still the version listed: a caller may then read the file itself (as
    /// `add` reads one) rather than copy it first.
    pub async fn local_source(&self, entry: &SourceEntry) -> Result<Option<std::path::PathBuf>> {
        if self.scheme != Scheme::Local {
            return Ok(None);
        }
        Ok(match self.get_source(entry).await?.payload {
            object_store::GetResultPayload::File(_, path) => Some(path),
            object_store::GetResultPayload::Stream(_) => None,
        })
    }

    /// The store's id of the version of `entry` that was listed, for a
    /// version-aware import (`import-url --version-aware`): asked of the store
    /// after the download, and refused if the object changed since it was
    /// listed, or if the store keeps no versions of it.
    pub async fn version_of(&self, entry: &SourceEntry) -> Result<String> {
        let meta = match self.store.head(&entry.location).await {
            Ok(m) => m,
            Err(object_store::Error::NotFound { .. }) => return Err(self.source_changed(entry).into()),
            Err(e) => return Err(self.fail(&format!("cannot read {}", shown(entry)), &e)),
        };
        if moved(&meta, entry) {
            return Err(RemoteError::Request {
                remote: self.name.clone(),
                message: format!("{} changed since it was listed; run again", shown(entry)),
            }
            .into());
        }
        // S3 calls the version of an object written while versioning was off "null".
        match meta.version.filter(|v| v != "null") {
            Some(v) => Ok(v),
            None => Err(RemoteError::Request {
                remote: self.name.clone(),
                message: format!(
                    "the store gave no version id for {}: `--version-aware` needs a bucket (or container) \
                     that keeps versions (S3 Versioning, GCS Object Versioning, Azure blob versioning)",
                    shown(entry)
                ),
            }
            .into()),
        }
    }

    /// The entry for version `version` of the object at `rel` below this
    /// store's URL (`""`: the object the URL names), as a version-aware import
    /// recorded it: read from the store, whatever its current version is.
    pub async fn pinned_source(&self, rel: &str, version: &str) -> Result<SourceEntry> {
        // Parsed, not built from parts, which would percent-encode `[`, `~`, `#`…
        // of the key as a listing gives it.
        let location = match rel.is_empty() {
            true => self.prefix.clone(),
            false => StorePath::parse(format!("{}/{rel}", self.prefix.as_ref())).map_err(|e| RemoteError::Request {
                remote: self.name.clone(),
                message: format!("`{rel}` cannot name an object here: {e}"),
            })?,
        };
        let options = object_store::GetOptions {
            head: true,
            version: Some(version.to_string()),
            ..Default::default()
        };
        let named = || match rel.is_empty() {
            true => format!("version {version}"),
            false => format!("version {version} of `{rel}`"),
        };
        let meta = match self.store.get_opts(&location, options).await {
            Ok(r) => r.meta,
            Err(object_store::Error::NotFound { .. }) => {
                return Err(RemoteError::Request {
                    remote: self.name.clone(),
                    message: format!(
                        "{} is no longer there (deleted, or removed by a lifecycle rule)",
                        named()
                    ),
                }
                .into());
            }
            Err(e) => return Err(self.fail(&format!("cannot read {}", named()), &e)),
        };
        let mut entry = SourceEntry::of(&meta, rel.to_string());
        entry.location = location;
        entry.pinned = Some(version.to_string());
        Ok(entry)
    }

    /// `entry`, opened, if it is still the version that was listed (or, for a
    /// pinned entry, that version, wherever the object is now).
    async fn get_source(&self, entry: &SourceEntry) -> Result<object_store::GetResult> {
        let options = object_store::GetOptions {
            version: entry.pinned.clone(),
            ..Default::default()
        };
        let result = match self.store.get_opts(&entry.location, options).await {
            Ok(r) => r,
            Err(object_store::Error::NotFound { .. }) => return Err(self.source_changed(entry).into()),
            Err(e) => return Err(self.fail(&format!("cannot download {}", shown(entry)), &e)),
        };
        if moved(&result.meta, entry) {
            return Err(self.source_changed(entry).into());
        }
        Ok(result)
    }

    /// The error of an `entry` that is no longer the version listed.
    fn source_changed(&self, entry: &SourceEntry) -> RemoteError {
        RemoteError::Request {
            remote: self.name.clone(),
            message: format!("{} changed while it was downloaded; run again", shown(entry)),
        }
    }

    /// Streams `entry` into `sink`, checking that it is still the version that
    /// was listed, whole.
    async fn stream_source(
        &self,
        entry: &SourceEntry,
        on_bytes: &(dyn Fn(u64) + Sync),
        sink: &mut (dyn FnMut(&[u8]) -> std::io::Result<()> + Send),
    ) -> Result<()> {
        let result = self.get_source(entry).await?;
        let _permit = self.reserve(2 * PART as u64).await;
        let mut got = 0;
        match result.payload {
            // A local file: read here in big blocks, not as object_store streams
            // it (8 KiB at a time, each through tokio's blocking pool: a third of
            // the time of hashing a 1 GiB file went there).
            object_store::GetResultPayload::File(mut file, _) => {
                tokio::task::block_in_place(|| -> Result<()> {
                    use std::io::Read;
                    // No bigger than the file (and one byte to see its end): a
                    // zeroed MiB for each of 10,000 small files cost more than
                    // reading them (page faults, clearing, unmapping).
                    let mut block = vec![0u8; (entry.size as usize).saturating_add(1).min(LOCAL_BLOCK)];
                    loop {
                        let n = match file.read(&mut block) {
                            Ok(0) => return Ok(()),
                            Ok(n) => n,
                            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                            Err(e) => return Err(e.into()),
                        };
                        sink(&block[..n])?;
                        got += n as u64;
                        on_bytes(n as u64);
                    }
                })?;
            }
            object_store::GetResultPayload::Stream(mut stream) => {
                while let Some(chunk) = stream.next().await {
                    let chunk = chunk.map_err(|e| self.fail(&format!("cannot download {}", shown(entry)), &e))?;
                    sink(&chunk)?;
                    got += chunk.len() as u64;
                    on_bytes(chunk.len() as u64);
                }
            }
        }
        if got != entry.size {
            return Err(self.source_changed(entry).into());
        }
        Ok(())
    }
}

/// Whether `meta`, read of `entry`'s object, is another version than the one
/// listed: another size or ETag.
fn moved(meta: &object_store::ObjectMeta, entry: &SourceEntry) -> bool {
    // Stores quote ETags in one answer and not in another (Azure's listing).
    let bare = |t: &str| t.trim_start_matches("W/").trim_matches('"').to_string();
    meta.size != entry.size || meta.e_tag.as_deref().is_some_and(|t| bare(t) != bare(&entry.version))
}

/// `entry` as messages name it.
fn shown(entry: &SourceEntry) -> String {
    match entry.rel.is_empty() {
        true => "it".to_string(),
        false => format!("`{}`", entry.rel),
    }
}
