//! Packing new small objects, and deleting objects from packs (gc).

use super::*;

/// New small objects being packed; see [`Cache::begin_packing`]. Dropped without
/// [`Packing::finish`], the objects appended since the last published pack are discarded.
#[must_use = "objects packed are kept only once `finish` publishes them"]
#[derive(Debug)]
pub struct Packing {
    cache: Cache,
    done: bool,
}

impl Packing {
    /// Publishes what was packed, and stops packing.
    pub fn finish(mut self) -> Result<()> {
        self.done = true;
        self.cache.packs.finish()
    }
}

impl Drop for Packing {
    fn drop(&mut self) {
        if !self.done {
            self.cache.packs.abandon();
        }
    }
}

impl Cache {
    /// From now until [`Packing::finish`], small new objects (but never directory
    /// manifests) are appended to a pack file instead of each getting a file.
    /// Objects appended are readable at once, but survive the process only once
    /// `finish` has published the pack: call it before writing anything that names them.
    pub fn begin_packing(&self) -> Packing {
        self.packs.begin();
        Packing {
            cache: self.clone(),
            done: false,
        }
    }

    /// Deletes objects `ids`: their own files, and their entries in packs. A pack
    /// left with no live object is removed (index first); one that keeps some is
    /// rewritten with only those, the new pack published before the old one goes,
    /// so that a crash leaves both (harmless duplicates), never neither.
    /// `on_deleted` is told of each object.
    pub fn delete_many(&self, ids: &[ObjectId], on_deleted: &dyn Fn()) -> Result<()> {
        for id in ids {
            self.delete(id)?;
            on_deleted();
        }
        let gone: rustc_hash::FxHashSet<ObjectId> = ids.iter().copied().collect();
        let packs = self.packs.with_set(true, |s| s.packs.clone())?.unwrap_or_default();
        let result = (|| -> Result<()> {
            for pack in packs {
                let keep: Vec<&crate::pack::Entry> = pack.entries.iter().filter(|e| !gone.contains(&e.id)).collect();
                if keep.len() == pack.entries.len() {
                    continue;
                }
                if !keep.is_empty() {
                    let file = pack.file().map_err(|e| {
                        std::io::Error::other(format!("cannot read pack `{}`: {e}", pack.path.display()))
                    })?;
                    let mut w = crate::pack::PackWriter::new(self.packs.dir())?;
                    for e in keep {
                        let entry = Slice::new(file.clone(), e.offset, e.len);
                        read::with_read(entry, &e.id, None, |stored| {
                            verify_stored(&e.id, stored).map_err(|reason| corrupt(&e.id, None, &reason))?;
                            w.append(&e.id, &[stored])
                        })?;
                    }
                    w.publish()?;
                }
                remove_if_present(&pack.index_path())?;
                remove_if_present(&pack.path)?;
            }
            Ok(())
        })();
        self.packs.forget();
        result
    }

    /// Removes what killed pack writers left in `packs/`: unfinished packs and
    /// indexes, and packs whose index was never written, last modified at least `min_age` ago.
    /// `Duration::ZERO` is only for a caller holding the repo lock, as every writer
    /// to the cache does; a directory remote, which other repos' pushes write to
    /// without that lock, passes an age no writer still at work can reach.
    pub fn remove_pack_leftovers(&self, min_age: Duration) -> Result<()> {
        for stray in self.packs.strays()? {
            let name = stray.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let old_enough = min_age.is_zero()
                || fs::symlink_metadata(&stray)
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age >= min_age);
            // Unfinished packs and indexes, whole-pack copies, packs without an index.
            if (crate::fsutil::is_temp_name(name) || name.ends_with(".pack")) && old_enough {
                remove_if_present(&stray)?;
            }
        }
        Ok(())
    }

    /// Deletes the temporary files in `packs/` and `tmp/` whose writer is gone:
    /// unfinished packs (up to 256 MiB each) and big objects a killed `add`
    /// left, named by a process that no longer runs and untouched for a minute.
    /// Cheap (two directory reads), for a caller that found the cache idle: holding
    /// its lock alone, so that no command of any repository writes to it. The
    /// process and age checks guard the commands that read through the cache
    /// without its lock (`cat`, `get-url`). Returns how many it removed.
    pub fn remove_abandoned_temporaries(&self) -> Result<usize> {
        let abandoned: Vec<PathBuf> = [self.packs.dir().to_path_buf(), self.root.join("tmp")]
            .iter()
            .flat_map(|dir| temp_files_in(dir))
            .filter(|p| {
                let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                let gone = crate::fsutil::temp_owner(name)
                    .is_some_and(|pid| pid != std::process::id() && !crate::fsutil::process_may_run(pid));
                let idle = fs::symlink_metadata(p)
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age >= ABANDONED_AFTER);
                gone && idle
            })
            .collect();
        crate::fsutil::remove_leftovers(&abandoned)?;
        Ok(abandoned.len())
    }

    /// Deletes what killed writers left anywhere in the cache: unfinished loose
    /// objects and temporary files, and (see [`Cache::remove_pack_leftovers`])
    /// unfinished packs. Only for a caller holding the repo lock.
    pub fn remove_leftovers(&self) -> Result<()> {
        self.remove_pack_leftovers(Duration::ZERO)?;
        let (_, strays) = self.list()?;
        let temps: Vec<PathBuf> = strays
            .into_iter()
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(crate::fsutil::is_temp_name)
            })
            .chain(temp_files_in(&self.root.join("tmp")))
            .collect();
        Ok(crate::fsutil::remove_leftovers(&temps)?)
    }
}

/// dvt's temporary files and directories directly in `dir` (none if it is missing
/// or unreadable).
fn temp_files_in(dir: &Path) -> Vec<PathBuf> {
    fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(crate::fsutil::is_temp_name)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// How long a temporary file must have been left untouched before
/// [`Cache::remove_abandoned_temporaries`] takes it for abandoned.
const ABANDONED_AFTER: Duration = Duration::from_secs(60);

fn remove_if_present(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
        _ => Ok(()),
    }
}
