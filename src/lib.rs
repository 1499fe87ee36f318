//! dvt versions large data next to the git repository that uses it.
//!
//! Data lives in a content-addressed, zstd-compressed cache (`.dvt/cache`); small
//! pointer files (`*.dvt`) committed with git say which content a path should have.
//! Everything the `dvt` command does is a call in this library first:
//!
//! ```
//! use dvt::ops::{AddOptions, CheckoutOptions, StatusOptions};
//! use dvt::progress::NoProgress;
//! use dvt::repo::{InitOptions, Repo};
//!
//! # fn main() -> dvt::Result<()> {
//! let dir = tempfile::tempdir()?;
//! let root = dir.path();
//! let repo = Repo::init(root, &InitOptions { no_scm: true, ..Default::default() })?;
//! std::fs::create_dir(root.join("data"))?;
//! std::fs::write(root.join("data/readings.csv"), "t,value\n0,0.5\n1,0.7\n")?;
//!
//! let report = dvt::ops::add(
//!     &repo,
//!     &AddOptions { paths: vec!["data".into()], cwd: root.to_path_buf(), ..Default::default() },
//!     &NoProgress,
//! )?;
//! assert_eq!(report.added[0].files, Some(1));
//! assert!(root.join("data.dvt").exists());
//!
//! // Lose the data, then get it back from the cache.
//! std::fs::remove_dir_all(root.join("data"))?;
//! let opts = CheckoutOptions { targets: vec![], cwd: root.to_path_buf(), force: false, allow_missing: false, keep_changed: false };
//! dvt::ops::checkout(&repo, &opts, &NoProgress)?;
//! assert_eq!(std::fs::read_to_string(root.join("data/readings.csv"))?, "t,value\n0,0.5\n1,0.7\n");
//!
//! let status = dvt::ops::status(&repo, &StatusOptions { targets: vec![], cwd: root.to_path_buf(), ..Default::default() }, &NoProgress)?;
//! assert!(status.is_clean());
//! # Ok(())
//! # }
//! ```
//!
//! Modules, one concern each: [`repo`] (root, config, lock), [`object`] and
//! [`cache`] (ids and the object store), [`mod@pointer`] and [`manifest`] (the file
//! formats), [`statcache`] and [`workspace`] (walking and comparing the work
//! tree), [`git`] (all git access), [`ops`] (the commands).

pub mod api;
pub mod autostage;
pub mod cache;
pub mod error;
#[cfg(test)]
mod format_fixtures;
pub mod frames;
pub mod fsutil;
pub mod git;
pub mod gitignore;
pub mod manifest;
pub mod object;
pub mod ops;
pub mod pack;
pub mod pipe;
pub mod pipeline;
pub mod pointer;
pub mod process;
pub mod progress;
pub mod relpath;
pub mod remote;
pub mod repo;
pub mod seal;
pub mod snapshot;
pub mod statcache;
pub mod suggest;
pub mod workspace;

pub use error::{Error, Result};
pub use object::ObjectId;

/// `word` as one shell word: as it is when plain, else in single quotes.
pub fn shell_word(word: &str) -> String {
    match word
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_-./+@%=:,".contains(c))
    {
        true => word.to_string(),
        false => format!("'{}'", word.replace('\'', "'\\''")),
    }
}

/// A count and its noun: `counted(1, "file")` is "1 file", `counted(2, "file")`
/// "2 files"; a noun ending in `y` takes `ies` ("repositories").
pub fn counted(n: impl TryInto<u64>, noun: &str) -> String {
    match (n.try_into().unwrap_or(u64::MAX), noun.strip_suffix('y')) {
        (1, _) => format!("1 {noun}"),
        (n, Some(stem)) => format!("{n} {stem}ies"),
        (n, None) => format!("{n} {noun}s"),
    }
}

/// An error and all its causes on one line, `: `-separated.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let msg = s.to_string();
        if !out.contains(&msg) {
            out.push_str(": ");
            out.push_str(&msg);
        }
        cur = s.source();
    }
    out
}
