//! The run cache, as DVC's: what each run of a stage produced, by what it ran
//! with, so that `dvt repro` (and `dvt exp run`) can restore a stage's outs
//! instead of running it again when its command, deps and params are those of
//! an earlier run — going back to an earlier value of a param, say — even when
//! `dvt.lock` has moved on since.
//!
//! An entry is `runs/XX/KEY.toml` in the cache directory: the stage's lock
//! entry as `dvt.lock` records it. KEY is the BLAKE3 hash of what the run
//! depended on (see [`key`]); the entry is checked against it when read, and
//! restored only if the cache holds every object of its outs. `dvt push
//! --run-cache` copies entries to a remote (same layout under its prefix), with
//! the objects of their outs, and `fetch`/`pull --run-cache` copy them back;
//! `dvt gc` deletes the entries whose data it deletes (the stage then runs).

use std::path::{Path, PathBuf};

use super::Stage;
use super::lock::StageLock;

/// What the key of a run is made from, in this order.
const KEY_FORMAT: &str = "dvt run cache 1\n";

/// The key of a run of `stage` with `now` (its cmd, deps and params), or
/// `None` if the stage's runs are not cached: one that always runs, keeps its
/// outs between runs (`persist`), has none, or has an uncached out other than
/// a metrics or plots file (the run cache would have to copy into the cache
/// what `cache = false` keeps out of it).
pub fn key(stage: &Stage, now: &StageLock) -> Option<String> {
    let uncached_data = |o: &super::Out| !o.cache && !o.metric && o.plot.is_none();
    if stage.always_changed || stage.outs.is_empty() || stage.outs.iter().any(|o| o.persist || uncached_data(o)) {
        return None;
    }
    let inputs = StageLock {
        cmd: now.cmd.clone(),
        deps: now.deps.clone(),
        params: now.params.clone(),
        outs: Vec::new(),
    };
    let mut hasher = blake3::Hasher::new();
    hasher.update(KEY_FORMAT.as_bytes());
    hasher.update(toml::to_string(&inputs).ok()?.as_bytes());
    // Where the command runs, where the outs go (and whether git keeps them)
    // are part of what a run made.
    hasher.update(format!("wdir {}\n", stage.wdir).as_bytes());
    let mut outs: Vec<String> = stage.outs.iter().map(|o| format!("{} {}", o.path, o.cache)).collect();
    outs.sort();
    for o in outs {
        hasher.update(b"out ");
        hasher.update(o.as_bytes());
        hasher.update(b"\n");
    }
    Some(hasher.finalize().to_hex().to_string())
}

/// The directory of the entries, below a cache directory or a remote's prefix.
pub const DIR: &str = "runs";

/// Where the entry of run `key` is, below a cache directory or a remote's
/// prefix: `runs/XX/KEY.toml`.
pub fn rel_path(key: &str) -> String {
    format!("{DIR}/{}/{key}.toml", &key[..2])
}

/// Where the entry of run `key` is, below cache directory `cache`.
fn path(cache: &Path, key: &str) -> PathBuf {
    cache.join(rel_path(key))
}

/// Whether `key` is what [`key`] makes: 64 lowercase hex digits. Names read
/// from a remote are checked with it before they become paths.
pub fn is_key(key: &str) -> bool {
    key.len() == 64 && key.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// An entry's text read back, or `None` if it is damaged.
pub fn parse(text: &str) -> Option<StageLock> {
    toml::from_str(text).ok()
}

/// Every readable entry below cache directory `cache`, by key.
pub fn entries(cache: &Path) -> Vec<(String, StageLock)> {
    let mut out = Vec::new();
    let Ok(dirs) = fs_err::read_dir(cache.join(DIR)) else {
        return out;
    };
    for dir in dirs.flatten() {
        let Ok(files) = fs_err::read_dir(dir.path()) else {
            continue;
        };
        for file in files.flatten() {
            let name = file.file_name();
            let Some(key) = name
                .to_str()
                .and_then(|n| n.strip_suffix(".toml"))
                .filter(|k| is_key(k))
            else {
                continue;
            };
            if let Some(done) = fs_err::read_to_string(file.path()).ok().and_then(|t| parse(&t)) {
                out.push((key.to_string(), done));
            }
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Records that the run `key` produced `done`. Callers may ignore a failure:
/// the entry is only a cache of work.
pub fn save(cache: &Path, key: &str, done: &StageLock) -> crate::error::Result<()> {
    let file = path(cache, key);
    if let Some(dir) = file.parent() {
        fs_err::create_dir_all(dir)?;
    }
    let text = toml::to_string(done).map_err(|e| std::io::Error::other(e.to_string()))?;
    crate::fsutil::atomic_write(&file, text.as_bytes())?;
    Ok(())
}

/// Whether there is an entry for run `key` (readable or not).
pub fn has(cache: &Path, key: &str) -> bool {
    path(cache, key).is_file()
}

/// Deletes the entry of run `key` (none is no error).
pub fn remove(cache: &Path, key: &str) -> crate::error::Result<()> {
    match fs_err::remove_file(path(cache, key)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
        _ => Ok(()),
    }
}

/// What the run `key`, with `now` (cmd, deps, params), produced earlier, if
/// it is recorded. An entry that cannot be read, or that does not match `now`
/// (a damaged file), is no entry: the stage runs.
pub fn find(cache: &Path, key: &str, now: &StageLock) -> Option<StageLock> {
    let done = parse(&fs_err::read_to_string(path(cache, key)).ok()?)?;
    (done.cmd == now.cmd && done.deps == now.deps && super::lock::same_params(&done.params, &now.params))
        .then_some(done)
}
