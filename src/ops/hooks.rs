//! `dvt install-hooks`: git hooks that keep data in step with git.
//!
//! - `post-checkout` runs `dvt checkout` after a branch or tag checkout (not after
//!   `git checkout -- FILE`, and not during a rebase);
//! - `post-merge` runs `dvt checkout` after a merge that completed (`git pull`,
//!   `git merge`); a merge stopped by conflicts runs no hook, so the data follows
//!   once the merge is committed and `dvt checkout` is run;
//! - `pre-push` runs `dvt push` to the default remote, and stops the git push if it
//!   fails (no commits reach the server whose data is not on the remote);
//! - `pre-commit` warns about tracked data changed but not `dvt add`ed;
//! - a merge driver for pointer files and `dvt.lock` ([`crate::ops::merge`]):
//!   `merge.dvt.driver` in the repository's config, and `*.dvt merge=dvt` and
//!   `dvt.lock merge=dvt` in `info/attributes`.
//!
//! Each hook is a short shell script that calls `dvt git-hook NAME ARGS`, where
//! the logic lives. A hook that already exists and is not dvt's is kept: it is
//! renamed `NAME.pre-dvt` and called first, with the same arguments and input;
//! `--uninstall` puts it back. Every hook does nothing in a repository without
//! `.dvt/`, and nothing if `dvt` is not on `PATH`.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::Result;
use crate::git::Git;
use crate::repo::Repo;

/// The hooks dvt installs.
pub const HOOKS: [&str; 4] = ["post-checkout", "post-merge", "pre-commit", "pre-push"];
/// The line that marks a hook as dvt's.
const MARK: &str = "# dvt-hook: installed by `dvt install-hooks`";
/// The suffix of a chained, pre-existing hook.
pub const CHAINED: &str = ".pre-dvt";

/// What install or uninstall did, per hook.
#[derive(Debug, Clone, Serialize)]
pub struct HookReport {
    /// The hooks directory.
    pub dir: PathBuf,
    /// Hooks written (or removed).
    pub hooks: Vec<String>,
    /// Pre-existing hooks now chained (or restored).
    pub chained: Vec<String>,
    /// The command git runs to merge pointer files (`None` after uninstalling).
    pub merge_driver: Option<String>,
}

fn script(name: &str, prefix: &str) -> String {
    let cd = if prefix.is_empty() {
        String::new()
    } else {
        format!(" -C '{}'", prefix.trim_end_matches('/').replace('\'', "'\\''"))
    };
    // pre-push receives the refs on stdin: both the chained hook and dvt read them.
    let (chain, exec) = if name == "pre-push" {
        (
            "input=$(cat)\nif [ -x \"$0.pre-dvt\" ]; then\n  printf '%s\\n' \"$input\" | \"$0.pre-dvt\" \"$@\" || exit $?\nfi\n",
            "printf '%s\\n' \"$input\" | exec",
        )
    } else {
        (
            "if [ -x \"$0.pre-dvt\" ]; then \"$0.pre-dvt\" \"$@\" || exit $?; fi\n",
            "exec",
        )
    };
    format!(
        "#!/bin/sh\n{MARK}; remove with `dvt install-hooks --uninstall`\n{chain}\
         command -v dvt >/dev/null 2>&1 || {{ echo \"dvt: not on PATH; skipping the {name} hook\" >&2; exit 0; }}\n\
         {exec} dvt{cd} git-hook {name} \"$@\"\n"
    )
}

/// What `merge.dvt.driver` runs: `dvt git-hook merge-driver` with git's
/// ancestor, ours, theirs and path placeholders.
fn merge_driver(prefix: &str) -> String {
    let cd = if prefix.is_empty() {
        String::new()
    } else {
        format!(" -C '{}'", prefix.trim_end_matches('/').replace('\'', "'\\''"))
    };
    format!("dvt{cd} git-hook merge-driver %O %A %B %P")
}

fn is_ours(path: &Path) -> bool {
    fs_err::read_to_string(path).is_ok_and(|t| t.contains(MARK))
}

/// Installs the hooks (or, with `uninstall`, removes them and restores chained ones).
pub fn install_hooks(repo: &Repo, uninstall: bool) -> Result<HookReport> {
    let git = Git::open(repo.root())?;
    let dir = git.hooks_dir();
    fs_err::create_dir_all(&dir)?;
    let mut report = HookReport {
        dir: dir.clone(),
        hooks: Vec::new(),
        chained: Vec::new(),
        merge_driver: (!uninstall).then(|| merge_driver(git.prefix())),
    };
    git.set_merge_driver(report.merge_driver.as_deref())?;
    for name in HOOKS {
        let path = dir.join(name);
        let chained = dir.join(format!("{name}{CHAINED}"));
        if uninstall {
            if is_ours(&path) {
                fs_err::remove_file(&path)?;
                report.hooks.push(name.to_string());
                if chained.exists() {
                    fs_err::rename(&chained, &path)?;
                    report.chained.push(name.to_string());
                }
            }
            continue;
        }
        if path.exists() && !is_ours(&path) {
            if chained.exists() {
                // Never overwrite a user's hook: both names are taken.
                return Err(std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    format!(
                        "both `{}` and `{}` exist and are not dvt's; move one away",
                        path.display(),
                        chained.display()
                    ),
                )
                .into());
            }
            fs_err::rename(&path, &chained)?;
            report.chained.push(name.to_string());
        }
        crate::fsutil::atomic_write(&path, script(name, git.prefix()).as_bytes())?;
        use std::os::unix::fs::PermissionsExt;
        fs_err::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
        report.hooks.push(name.to_string());
    }
    Ok(report)
}

/// Whether the `post-checkout` hook, called with git's `args` (old head, new head,
/// and `1` for a branch checkout), should check data out: a branch or tag
/// checkout, outside a rebase.
pub fn post_checkout_applies(repo: &Repo, args: &[String]) -> Result<bool> {
    if args.get(2).map(String::as_str) != Some("1") {
        return Ok(false);
    }
    Ok(!Git::open(repo.root())?.rebase_in_progress())
}

/// The commits a `pre-push` hook's input names (`<local ref> <local sha> <remote
/// ref> <remote sha>` per line), skipping deletions (an all-zero local sha).
pub fn pushed_commits(input: &str) -> Vec<String> {
    input
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .filter(|sha| !sha.chars().all(|c| c == '0'))
        .map(str::to_string)
        .collect()
}
