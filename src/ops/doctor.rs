//! `dvt doctor`: what a bug report needs to say about dvt, the machine and the
//! repository, as `dvc doctor` does. It reads and never writes.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::repo::Repo;

/// What `dvt doctor` reports.
#[derive(Debug, Serialize)]
pub struct Doctor {
    /// dvt's version.
    pub version: String,
    /// Operating system and architecture, and the kernel's release where known.
    pub platform: String,
    /// The kinds of remote this build can use.
    pub supports: Vec<&'static str>,
    /// The repository the command ran in, if any.
    pub repo: Option<RepoReport>,
}

/// The repository part of [`Doctor`].
#[derive(Debug, Serialize)]
pub struct RepoReport {
    /// Its root.
    pub root: PathBuf,
    /// Whether it is in a git work tree (`false`: `dvt init --no-scm`).
    pub git: bool,
    /// The workspace's filesystem, from `/proc/self/mountinfo`.
    pub workspace_fs: Option<Mount>,
    /// The cache's directory.
    pub cache_dir: PathBuf,
    /// Whether `cache.dir` moves it out of the repository.
    pub cache_shared: bool,
    /// The cache's filesystem.
    pub cache_fs: Option<Mount>,
    /// `cache.level`: the zstd level.
    pub cache_level: i32,
    /// `cache.fsync`.
    pub cache_fsync: bool,
    /// `cache.shared = "group"`: new files are the group's to write too.
    pub cache_group: bool,
    /// Each remote's name, kind, and whether it is the default.
    pub remotes: Vec<RemoteReport>,
    /// How the git hooks of `dvt install-hooks` are installed.
    pub hooks: crate::ops::hooks::Installed,
    /// `hooks.fetch`.
    pub hooks_fetch: bool,
}

/// A remote, without its options (which may hold secrets).
#[derive(Debug, Serialize)]
pub struct RemoteReport {
    /// Its name.
    pub name: String,
    /// `local`, `s3`, `gcs`, `azure`, `http`, or why its URL is not understood.
    pub kind: String,
    /// Whether it is the default.
    pub default: bool,
}

/// The filesystem a path is on.
#[derive(Debug, Clone, Serialize)]
pub struct Mount {
    /// Its type (`ext4`, `xfs`, `nfs4`…).
    pub fs_type: String,
    /// Where it is mounted.
    pub mount_point: String,
    /// What is mounted (a device, a server's export).
    pub source: String,
}

/// Gathers the report; `start` is where to look for a repository.
pub fn doctor(start: &Path) -> Doctor {
    let kernel = fs_err::read_to_string("/proc/sys/kernel/osrelease").ok();
    let platform = match kernel {
        Some(k) => format!(
            "{} {} (kernel {})",
            std::env::consts::OS,
            std::env::consts::ARCH,
            k.trim()
        ),
        None => format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
    };
    Doctor {
        version: env!("CARGO_PKG_VERSION").to_string(),
        platform,
        supports: vec![
            "local", "s3", "gs", "azure", "http", "webdav", "https", "webdavs", "ssh", "sftp",
        ],
        repo: Repo::open(start).ok().map(|r| repo_report(&r)),
    }
}

fn repo_report(repo: &Repo) -> RepoReport {
    let mounts = fs_err::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let config = repo.config();
    let remotes = crate::remote::config::names(config)
        .into_iter()
        .map(|name| {
            let kind = match crate::remote::config::spec(config, &name, repo.root()) {
                Ok((_, location)) => location.scheme.name().to_string(),
                Err(e) => format!("invalid: {e}"),
            };
            RemoteReport {
                default: config.core.remote.as_deref() == Some(name.as_str()),
                name,
                kind,
            }
        })
        .collect();
    let cache_dir = repo.cache().root().to_path_buf();
    RepoReport {
        root: repo.root().to_path_buf(),
        git: crate::git::Git::open(repo.root()).is_ok(),
        workspace_fs: mount_of(&mounts, repo.root()),
        cache_shared: config.cache.dir.is_some(),
        cache_fs: mount_of(&mounts, &cache_dir),
        cache_dir,
        cache_level: config.cache.level,
        cache_fsync: config.cache.fsync,
        cache_group: config.cache.shared == Some(crate::repo::Shared::Group),
        remotes,
        hooks: crate::ops::hooks::installed(repo),
        hooks_fetch: config.hooks.fetch,
    }
}

/// The mount in `mountinfo` (the text of `/proc/self/mountinfo`) that holds
/// `path`: the one with the longest mount point above it.
fn mount_of(mountinfo: &str, path: &Path) -> Option<Mount> {
    let path = fs_err::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    mountinfo
        .lines()
        .filter_map(|line| {
            // ID PARENT MAJ:MIN ROOT MOUNT_POINT OPTIONS [OPTIONAL...] - TYPE SOURCE SUPER_OPTIONS
            let (left, right) = line.split_once(" - ")?;
            let mount_point = unescape(left.split(' ').nth(4)?);
            let mut right = right.split(' ');
            let fs_type = right.next()?.to_string();
            let source = unescape(right.next()?);
            path.starts_with(&mount_point).then_some(Mount {
                fs_type,
                mount_point,
                source,
            })
        })
        .max_by_key(|m| m.mount_point.len())
}

/// A mountinfo field with its octal escapes (`\040` for a space) undone.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let code = bytes
            .get(i + 1..i + 4)
            .and_then(|d| u8::from_str_radix(std::str::from_utf8(d).ok()?, 8).ok());
        match (bytes[i], code) {
            (b'\\', Some(c)) => {
                out.push(c);
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_mount_point_above_a_path_holds_it() {
        let info = "22 1 8:1 / / rw - ext4 /dev/vda rw\n\
                    30 22 0:40 / /mnt/my\\040data rw shared:1 - nfs4 srv:/export rw\n\
                    31 22 0:41 / /mnt/other rw - tmpfs tmpfs rw\n";
        let m = mount_of(info, Path::new("/mnt/my data/repo/.dvt/cache")).unwrap();
        assert_eq!((m.fs_type.as_str(), m.mount_point.as_str()), ("nfs4", "/mnt/my data"));
        assert_eq!(m.source, "srv:/export");
        let m = mount_of(info, Path::new("/home/ana/repo")).unwrap();
        assert_eq!((m.fs_type.as_str(), m.source.as_str()), ("ext4", "/dev/vda"));
        assert_eq!(unescape("a\\134b"), "a\\b");
    }
}
