//! Objects in their stored form: for remotes, and between caches.

use super::*;

/// A new object being written from its stored form (as downloaded), checked as it
/// goes; it appears under its final name only in [`StoredWriter::commit`].
pub struct StoredWriter {
    id: ObjectId,
    tmp: PathBuf,
    file: Option<BufWriter<fs::File>>,
    verifier: StoredVerifier,
    written: u64,
    /// The decoded copy being kept (see [`Cache::keep_decoded`]).
    kept: Option<PathBuf>,
}

impl StoredWriter {
    /// Appends stored bytes. A decode error is returned as [`CacheError::Corrupt`].
    pub fn write(&mut self, chunk: &[u8]) -> Result<()> {
        self.verifier
            .update(chunk)
            .map_err(|reason| corrupt(&self.id, None, &reason))?;
        if let Some(f) = &mut self.file {
            crate::fsutil::write_chunked(f, chunk)?;
        }
        self.written += chunk.len() as u64;
        Ok(())
    }

    /// Verifies the whole object and moves it to its final name; returns the stored size.
    pub fn commit(mut self, cache: &Cache) -> Result<u64> {
        let verifier = std::mem::take(&mut self.verifier);
        let complete = verifier
            .finish_output(&self.id)
            .map_err(|reason| corrupt(&self.id, None, &reason))?;
        if let Some(f) = self.file.take() {
            f.into_inner().map_err(|e| e.into_error())?;
        }
        cache.publish(&self.tmp, &self.id)?;
        cache.arrived(&self.id, self.kept.take(), complete);
        Ok(self.written)
    }
}

impl Drop for StoredWriter {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = fs::remove_file(&self.tmp);
        }
        if let Some(kept) = self.kept.take() {
            let _ = fs::remove_file(kept);
        }
    }
}

impl Cache {
    /// Object `id`'s stored form (compressed or raw, as on disk), read whole and
    /// verified, for a push: a damaged object is [`CacheError::Corrupt`], never
    /// returned. A sealed object is checked against its seal (see [`crate::seal`]),
    /// any other, or one whose seal does not match, by decoding it.
    pub fn read_stored(&self, id: &ObjectId) -> Result<Vec<u8>> {
        let stored = self
            .open_object(id, None)?
            .read_all()
            .map_err(|e| read_error(id, None, e))?;
        if !crate::seal::matches(id, &stored) {
            verify_stored(id, &stored).map_err(|reason| corrupt(id, None, &reason))?;
        }
        Ok(stored)
    }

    /// Opens object `id`'s stored form for streaming; the caller verifies with a
    /// [`StoredVerifier`]. Returns a reader and the stored size.
    pub fn open_stored(&self, id: &ObjectId) -> Result<(Slice, u64)> {
        let s = self.open_object(id, None)?;
        let len = s.len();
        Ok((s, len))
    }

    /// Stores an object given in its stored form, after verifying it. Returns the
    /// stored size; a damaged object is [`CacheError::Corrupt`] and is not written.
    /// While a pull lays out directories, the content also goes where they need it
    /// (see [`Cache::plan_tree`]).
    pub fn import_stored(&self, id: &ObjectId, stored: &[u8]) -> Result<u64> {
        let content = stored_content(id, stored).map_err(|reason| corrupt(id, None, &reason))?;
        let pack = self.packable(content.len() as u64, &content[..content.len().min(16)]);
        let written = self.store(id, &[stored], pack)?;
        self.lay_out(id, &content);
        Ok(written)
    }

    /// Copies object `id` from another cache-shaped store `src` (a local remote, or
    /// the cache when pushing to one). With `link`, a hard link is tried first
    /// (falling back to a copy across filesystems). Either way the new file is
    /// verified before it gets its final name, so what is published is exactly what
    /// was checked. Returns the stored size. A damaged source is
    /// [`CacheError::Corrupt`]; a missing one [`CacheError::Missing`].
    ///
    /// `own` says that `src` is this machine's cache (a push): then a sealed object
    /// is checked against its seal instead of being decoded (see [`crate::seal`]).
    pub fn import_from(&self, src: &Cache, id: &ObjectId, link: bool, own: bool) -> Result<u64> {
        let from = src.object_path(id);
        // A packed source, or a small object while this cache packs: through memory.
        let stored_len = fs::metadata(&from).ok().map(|m| m.len());
        let through_memory = match stored_len {
            Some(len) => self.packs.active() && !link && len < PACKED_MAX,
            None => true,
        };
        if through_memory {
            return src.with_stored(id, None, |stored| self.import_stored(id, stored));
        }
        let dest = self.object_path(id);
        let dir = dest.parent().unwrap_or(&self.root).to_path_buf();
        // Into this machine's cache, the copy is made in its `tmp/`, where the next
        // command finds it if this one is killed ([`Cache::remove_abandoned_temporaries`]);
        // a push to a directory remote leaves it to that remote's leftover sweep.
        let tmp = match own {
            true => temp_in(&dir, "obj"),
            false => temp_in(&self.tmp_dir()?, "obj"),
        };
        let place = |tmp: &Path| -> std::io::Result<bool> {
            if link {
                match std::fs::hard_link(&from, tmp) {
                    Ok(()) => return Ok(true),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound && from.exists() => {
                        fs::create_dir_all(&dir)?;
                        if std::fs::hard_link(&from, tmp).is_ok() {
                            return Ok(true);
                        }
                    }
                    // Another filesystem, or one without hard links: copy instead.
                    Err(_) => {}
                }
            }
            match std::fs::copy(&from, tmp) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && from.exists() => {
                    fs::create_dir_all(&dir)?;
                    fs::copy(&from, tmp)?;
                }
                r => {
                    r?;
                }
            }
            Ok(false)
        };
        // A push checks a big source's seal while the kernel copies it; a small
        // object (a `pack = false` remote) is not worth a thread: it is decoded.
        let (placed, sealed) = if own && stored_len.is_some_and(|l| l >= PACKED_MAX) {
            std::thread::scope(|s| {
                let check = s.spawn(|| sealed_len(id, &from));
                let placed = place(&tmp);
                (placed, check.join().ok().flatten())
            })
        } else {
            (place(&tmp), None)
        };
        let linked = match placed {
            Ok(l) => l,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let _ = fs::remove_file(&tmp);
                return Err(CacheError::Missing { id: *id, path: None }.into());
            }
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                return Err(std::io::Error::new(e.kind(), format!("copying `{}`: {e}", from.display())).into());
            }
        };
        let mut kept = None;
        let checked = (|| -> Result<u64> {
            let mut f = fs::File::open(&tmp)?;
            let len = f.metadata()?.len();
            if sealed == Some(len) {
                self.publish(&tmp, id)?;
                return Ok(len);
            }
            let mut verifier;
            (verifier, kept) = self.arrival_verifier(id, len);
            let mut buf = vec![0u8; (len as usize).clamp(4096, CHUNK)];
            loop {
                let n = read_full(&mut f, &mut buf)?;
                if n == 0 {
                    break;
                }
                verifier
                    .update(&buf[..n])
                    .map_err(|reason| corrupt(id, None, &reason))?;
            }
            let complete = verifier
                .finish_output(id)
                .map_err(|reason| corrupt(id, None, &reason))?;
            self.publish(&tmp, id)?;
            self.arrived(id, kept.take(), complete);
            Ok(len)
        })();
        if let Some(k) = kept {
            let _ = fs::remove_file(k);
        }
        // rename() of a link onto a name for the same file leaves both names.
        if checked.is_err() || (linked && tmp.symlink_metadata().is_ok()) {
            let _ = fs::remove_file(&tmp);
        }
        checked
    }

    /// Copies pack `pack` of another cache-shaped store (the cache, when pushing to a
    /// directory remote) into this one whole, under its own name; with `link`, a hard
    /// link is tried first. Every object of the copy is verified before it is
    /// published (pack renamed in, then its index); `verified` is told the stored
    /// length of each. Returns the pack's size. A damaged object is
    /// [`CacheError::Corrupt`], and nothing is published.
    pub fn import_pack(&self, pack: &crate::pack::Pack, link: bool, verified: &(dyn Fn(u64) + Sync)) -> Result<u64> {
        let dir = self.packs.dir().to_path_buf();
        fs::create_dir_all(&dir)?;
        let tmp = temp_in(&dir, "pack");
        let result = (|| -> Result<u64> {
            if !(link && std::fs::hard_link(&pack.path, &tmp).is_ok()) {
                fs::copy(&pack.path, &tmp)?;
            }
            let file = Arc::new(fs::File::open(&tmp)?.into_parts().0);
            pack.entries.par_iter().try_for_each(|e| {
                // Decoded and hashed once, for the cache and a pull's workspace both.
                let slice = Slice::new(file.clone(), e.offset, e.len);
                read::with_read(slice, &e.id, None, |stored| {
                    let content = stored_content(&e.id, stored).map_err(|reason| corrupt(&e.id, None, &reason))?;
                    self.lay_out(&e.id, &content);
                    verified(e.len);
                    Ok(())
                })
            })?;
            let mut entries = pack.entries.clone();
            let (index, name) = crate::pack::encode_index(&mut entries);
            let dest = dir.join(format!("{name}.pack"));
            fs::rename(&tmp, &dest)?;
            crate::fsutil::atomic_write(&dest.with_extension("idx"), &index)?;
            Ok(file.metadata()?.len())
        })();
        // rename() of a link onto a name for the same file leaves both names.
        let _ = fs::remove_file(&tmp);
        self.packs.forget();
        result
    }

    /// Starts writing object `id` from its stored form (`stored_len` bytes), streamed.
    pub fn stored_writer(&self, id: &ObjectId, stored_len: u64) -> Result<StoredWriter> {
        // In `tmp/`, where a killed download is found by the next command.
        let tmp = temp_in(&self.tmp_dir()?, "obj");
        let file = fs::File::create(&tmp)?;
        let (verifier, kept) = self.arrival_verifier(id, stored_len);
        Ok(StoredWriter {
            id: *id,
            tmp,
            file: Some(BufWriter::with_capacity(crate::fsutil::WRITE_CHUNK, file)),
            verifier,
            written: 0,
            kept,
        })
    }
}
