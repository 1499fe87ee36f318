//! `dvt install-hooks`: git hooks that keep data in step with git.
//!
//! - `post-checkout` runs `dvt checkout` after a branch or tag checkout (not after
//!   `git checkout -- FILE`, and not during a rebase);
//! - `post-merge` runs `dvt checkout` after a merge that completed (`git pull`,
//!   `git merge`); a merge stopped by conflicts runs no hook, so the data follows
//!   once the merge is committed and `dvt checkout` is run;
//! - `post-rewrite` runs `dvt checkout` after a rebase (`git pull --rebase`,
//!   `git rebase`), whose checkouts `post-checkout` skips; not after `--amend`;
//! - `pre-push` runs `dvt push` to the default remote, of the workspace and of every
//!   commit git pushes ([`commits_pushed`]), and stops the git push if it fails (no
//!   commits reach the server whose data is not on the remote);
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

use yaml_rust2::Yaml;

use crate::error::{GitError, Result};
use crate::git::Git;
use crate::repo::Repo;

/// The hooks dvt installs.
pub const HOOKS: [&str; 5] = ["post-checkout", "post-merge", "post-rewrite", "pre-commit", "pre-push"];
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

/// ` -C 'DIR'` when the dvt root is directory `prefix` of the git work tree (a hook
/// runs at the work tree's root), else nothing.
fn dash_c(prefix: &str) -> String {
    match prefix.is_empty() {
        true => String::new(),
        false => format!(" -C '{}'", prefix.trim_end_matches('/').replace('\'', "'\\''")),
    }
}

/// Hook `name` for the dvt repositories at `prefixes` of the work tree (`""`:
/// its root): one `dvt git-hook` call for each, as in a monorepo with a dvt
/// project per directory (`dvt init --subdir`); the hook fails if one does.
fn script(name: &str, prefixes: &[String]) -> String {
    // pre-push receives the refs on stdin: both the chained hook and dvt read them.
    let (chain, feed) = if name == "pre-push" {
        (
            "input=$(cat)\nif [ -x \"$0.pre-dvt\" ]; then\n  printf '%s\\n' \"$input\" | \"$0.pre-dvt\" \"$@\" || exit $?\nfi\n",
            "printf '%s\\n' \"$input\" | ",
        )
    } else {
        (
            "if [ -x \"$0.pre-dvt\" ]; then \"$0.pre-dvt\" \"$@\" || exit $?; fi\n",
            "",
        )
    };
    let calls = match prefixes {
        [one] => format!("{feed}exec dvt{} git-hook {name} \"$@\"\n", dash_c(one)),
        all => {
            let each: String = all
                .iter()
                .map(|p| format!("{feed}dvt{} git-hook {name} \"$@\" || status=$?\n", dash_c(p)))
                .collect();
            format!("status=0\n{each}exit $status\n")
        }
    };
    format!(
        "#!/bin/sh\n{MARK}; remove with `dvt install-hooks --uninstall`\n{chain}\
         command -v dvt >/dev/null 2>&1 || {{ echo \"dvt: not on PATH; skipping the {name} hook\" >&2; exit 0; }}\n\
         {calls}"
    )
}

/// The dvt repositories (prefixes of the work tree, `""` for its root) that
/// dvt's hook script `text` calls, in order.
fn hooked_prefixes(text: &str, name: &str) -> Vec<String> {
    let call = format!(" git-hook {name} ");
    text.lines()
        .filter_map(|l| {
            // `… dvt -C 'DIR' git-hook NAME …`, or `… dvt git-hook NAME …` for the root.
            let before = &l[..l.find(&call)?];
            if before.ends_with(" dvt") || before == "dvt" {
                return Some(String::new());
            }
            let quoted = &before[before.find("dvt -C '")? + "dvt -C '".len()..];
            Some(quoted.strip_suffix('\'')?.replace("'\\''", "'"))
        })
        .fold(Vec::new(), |mut all, p| {
            if !all.contains(&p) {
                all.push(p);
            }
            all
        })
}

/// What `merge.dvt.driver` runs: `dvt git-hook merge-driver` with git's
/// ancestor, ours, theirs and path placeholders. It finds the dvt repository
/// of each file from its path, so one driver serves every dvt project of a
/// monorepo.
const MERGE_DRIVER: &str = "dvt git-hook merge-driver %O %A %B %P";

fn is_ours(path: &Path) -> bool {
    fs_err::read_to_string(path).is_ok_and(|t| t.contains(MARK))
}

/// How dvt's hooks are installed in a repository.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Installed {
    /// These hooks of [`HOOKS`] are dvt's own scripts in the hooks directory.
    Own(Vec<&'static str>),
    /// [`PRE_COMMIT_CONFIG`] lists dvt's hooks, for the pre-commit framework.
    PreCommit,
    /// Neither.
    None,
}

/// How dvt's hooks are installed (nothing outside git).
pub fn installed(repo: &Repo) -> Installed {
    let Ok(git) = Git::open(repo.root()) else {
        return Installed::None;
    };
    let dir = git.hooks_dir();
    let own: Vec<&str> = HOOKS.into_iter().filter(|name| is_ours(&dir.join(name))).collect();
    if !own.is_empty() {
        return Installed::Own(own);
    }
    let top = git.work_tree().unwrap_or(repo.root());
    let listed = fs_err::read_to_string(top.join(PRE_COMMIT_CONFIG))
        .ok()
        .and_then(|t| parse_yaml(&t).ok())
        .is_some_and(|doc| has_dvt_hooks(&doc));
    if listed { Installed::PreCommit } else { Installed::None }
}

/// Installs the hooks (or, with `uninstall`, removes them and restores chained ones).
pub fn install_hooks(repo: &Repo, uninstall: bool) -> Result<HookReport> {
    let git = Git::open(repo.root())?;
    let dir = git.hooks_dir();
    fs_err::create_dir_all(&dir)?;
    let here = git.prefix().trim_end_matches('/').to_string();
    // The other dvt projects of the work tree whose hooks these scripts run too.
    let others = |name: &str| -> Vec<String> {
        let path = dir.join(name);
        match is_ours(&path) {
            true => fs_err::read_to_string(&path)
                .map(|t| hooked_prefixes(&t, name))
                .unwrap_or_default()
                .into_iter()
                .filter(|p| *p != here)
                .collect(),
            false => Vec::new(),
        }
    };
    let still_used = uninstall && HOOKS.iter().any(|name| !others(name).is_empty());
    let mut report = HookReport {
        dir: dir.clone(),
        hooks: Vec::new(),
        chained: Vec::new(),
        merge_driver: (!uninstall || still_used).then(|| MERGE_DRIVER.to_string()),
    };
    git.set_merge_driver(report.merge_driver.as_deref())?;
    for name in HOOKS {
        let path = dir.join(name);
        let chained = dir.join(format!("{name}{CHAINED}"));
        let mut prefixes = others(name);
        if uninstall {
            if !is_ours(&path) {
                continue;
            }
            report.hooks.push(name.to_string());
            if !prefixes.is_empty() {
                // Another project's calls stay.
                write_hook(&path, &script(name, &prefixes))?;
                continue;
            }
            fs_err::remove_file(&path)?;
            if chained.exists() {
                fs_err::rename(&chained, &path)?;
                report.chained.push(name.to_string());
            }
            continue;
        }
        prefixes.push(here.clone());
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
        write_hook(&path, &script(name, &prefixes))?;
        report.hooks.push(name.to_string());
    }
    Ok(report)
}

/// Writes hook script `text` at `path`, executable, as git runs only such hooks.
fn write_hook(path: &Path, text: &str) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    crate::fsutil::atomic_write(path, text.as_bytes())?;
    fs_err::set_permissions(path, std::fs::Permissions::from_mode(0o755))?;
    Ok(())
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
/// ref> <remote sha>` per line), skipping deletions (an all-zero local sha): each
/// pushed tip with the remote's sha for it (`None` for a ref new there).
pub fn pushed_refs(input: &str) -> Vec<(String, Option<String>)> {
    let zero = |sha: &str| sha.chars().all(|c| c == '0');
    input
        .lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            let local = words.nth(1)?;
            let remote = words.nth(1);
            (!zero(local)).then(|| (local.to_string(), remote.filter(|r| !zero(r)).map(str::to_string)))
        })
        .collect()
}

/// Every commit a push of `refs` (tips, with what the remote had for each; see
/// [`pushed_refs`]) to git remote `git_remote` sends: those reachable from the tips
/// and from neither what the remote had nor its remote-tracking branches. A tip
/// with nothing to measure against (a first push to that remote) stands for itself
/// alone: its whole history is not sent to the data remote unasked.
pub fn commits_pushed(repo: &Repo, refs: &[(String, Option<String>)], git_remote: &str) -> Result<Vec<String>> {
    let git = Git::open(repo.root())?;
    let tracking: Vec<crate::git::GitId> = git.remote_branches(git_remote)?.into_iter().map(|(_, id)| id).collect();
    let mut out: Vec<String> = Vec::new();
    for (tip, had) in refs {
        let Ok(tip_id) = git.resolve(tip) else {
            out.push(tip.clone());
            continue;
        };
        let mut hidden = tracking.clone();
        hidden.extend(had.as_deref().and_then(|h| git.resolve(h).ok()));
        match hidden.is_empty() {
            true => out.push(tip.clone()),
            false => out.extend(git.walk_excluding(&[tip_id], &hidden)?.iter().map(|c| c.to_string())),
        }
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// The tips of the local branches that differ from their namesakes among git remote
/// `remote`'s remote-tracking branches, or have none there: what a push to it may be
/// sending. The pre-commit framework hands a `pre-push` hook the first ref pushed
/// only; these stand for the others.
pub fn branches_ahead(repo: &Repo, remote: &str) -> Result<Vec<String>> {
    let git = Git::open(repo.root())?;
    let there: std::collections::HashMap<String, crate::git::GitId> =
        git.remote_branches(remote)?.into_iter().collect();
    Ok(git
        .branches()?
        .into_iter()
        .filter(|(name, tip)| there.get(name) != Some(tip))
        .map(|(_, tip)| tip.to_string())
        .collect())
}

/// The pre-commit framework's config, at the root of the git work tree.
pub const PRE_COMMIT_CONFIG: &str = ".pre-commit-config.yaml";
/// The lines around dvt's entry in [`PRE_COMMIT_CONFIG`].
const BLOCK_START: &str = "# dvt's git hooks, run by pre-commit (`dvt install --use-pre-commit-tool`)";
const BLOCK_END: &str = "# end of dvt's git hooks";
/// Each hook as pre-commit runs it: its stage (the git hook) and its name.
const PRE_COMMIT_HOOKS: [(&str, &str); 5] = [
    ("pre-commit", "dvt status (data or pipeline changed but not recorded)"),
    ("pre-push", "dvt push (the data of what git pushes)"),
    ("post-checkout", "dvt checkout"),
    ("post-merge", "dvt checkout"),
    ("post-rewrite", "dvt checkout (after a rebase)"),
];

/// `pre-commit install` with every hook type dvt's entry uses.
pub const PRE_COMMIT_INSTALL: &str = "pre-commit install --hook-type pre-commit --hook-type pre-push \
                                      --hook-type post-checkout --hook-type post-merge --hook-type post-rewrite";

/// What `dvt install --use-pre-commit-tool` did.
#[derive(Debug, Clone, Serialize)]
pub struct PreCommitReport {
    /// The pre-commit framework's config file.
    pub config: PathBuf,
    /// Whether it changed (`false`: dvt's hooks were in it already or, uninstalling,
    /// were not).
    pub changed: bool,
    /// dvt's own hooks taken out of the hooks directory (pre-commit's run instead).
    pub removed: HookReport,
    /// The command git runs to merge pointer files (`None` after uninstalling).
    pub merge_driver: Option<String>,
}

/// dvt's entry for the `repos` list of a pre-commit config, each line after `indent`.
/// Hooks of `language: system` run the `dvt` on `PATH`, with no file names.
fn pre_commit_block(indent: &str, prefix: &str) -> String {
    let cd = dash_c(prefix);
    let mut lines = vec![BLOCK_START.to_string(), "- repo: local".into(), "  hooks:".into()];
    for (stage, name) in PRE_COMMIT_HOOKS {
        lines.extend([
            format!("    - id: dvt-{stage}"),
            format!("      name: {name}"),
            format!("      entry: dvt{cd} git-hook {stage}"),
            "      language: system".into(),
            format!("      stages: [{stage}]"),
            "      pass_filenames: false".into(),
            "      always_run: true".into(),
            "      verbose: true".into(),
        ]);
    }
    lines.push(BLOCK_END.into());
    lines.iter().map(|l| format!("{indent}{l}\n")).collect()
}

/// Has the hooks run by the [pre-commit framework](https://pre-commit.com) instead of
/// dvt's own scripts (as `dvc install --use-pre-commit-tool`): adds dvt's entry to
/// the `repos` of `.pre-commit-config.yaml` at the root of the git work tree (written
/// if missing; the rest of the file kept as it is), takes dvt's own hooks out of the
/// hooks directory, and installs the merge driver, which pre-commit has no place for.
/// `uninstall` takes the entry out again and removes the merge driver.
pub fn use_pre_commit_tool(repo: &Repo, uninstall: bool) -> Result<PreCommitReport> {
    let git = Git::open(repo.root())?;
    let top = git.work_tree().unwrap_or(repo.root()).to_path_buf();
    let config = top.join(PRE_COMMIT_CONFIG);
    let text = match fs_err::read_to_string(&config) {
        Ok(t) => Some(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e.into()),
    };
    let edited = match uninstall {
        true => text.as_deref().and_then(without_block),
        false => with_current_block(&config, text.as_deref().unwrap_or(""), git.prefix())?,
    };
    // The file first: a config dvt cannot edit leaves the hooks as they were.
    let removed = install_hooks(repo, true)?;
    let merge_driver = (!uninstall).then(|| MERGE_DRIVER.to_string());
    git.set_merge_driver(merge_driver.as_deref())?;
    if let Some(t) = &edited {
        crate::fsutil::atomic_write(&config, t.as_bytes())?;
    }
    Ok(PreCommitReport {
        config,
        changed: edited.is_some(),
        removed,
        merge_driver,
    })
}

fn parse_yaml(text: &str) -> std::result::Result<Yaml, String> {
    let docs = yaml_rust2::YamlLoader::load_from_str(text).map_err(|e| e.to_string())?;
    Ok(docs.into_iter().next().unwrap_or(Yaml::Null))
}

/// Whether `repos` has an entry with one of dvt's hooks.
fn has_dvt_hooks(doc: &Yaml) -> bool {
    doc["repos"].as_vec().is_some_and(|repos| {
        repos.iter().any(|r| {
            r["hooks"].as_vec().is_some_and(|hooks| {
                hooks
                    .iter()
                    .any(|h| h["id"].as_str().is_some_and(|id| id.starts_with("dvt-")))
            })
        })
    })
}

/// `text` with dvt's entry added to its `repos` (`None`: it has one already). The file
/// is edited as text, so its comments and layout stay; the result is read back to
/// check that `repos` has gained exactly that entry.
fn with_block(path: &Path, text: &str, prefix: &str) -> Result<Option<String>> {
    let refuse = |problem: &str| GitError::PreCommitConfig {
        path: path.to_path_buf(),
        problem: problem.to_string(),
        block: pre_commit_block("  ", prefix),
    };
    let doc = parse_yaml(text).map_err(|e| refuse(&format!("not YAML ({e})")))?;
    let before = match (&doc, &doc["repos"]) {
        (Yaml::Null, _) | (Yaml::Hash(_), Yaml::BadValue | Yaml::Null) => 0,
        (Yaml::Hash(_), Yaml::Array(a)) => a.len(),
        (Yaml::Hash(_), _) => return Err(refuse("its `repos` is not a list").into()),
        _ => return Err(refuse("not a mapping of settings").into()),
    };
    if has_dvt_hooks(&doc) {
        return Ok(None);
    }
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let repos_line = lines.iter().position(|l| {
        l.strip_prefix("repos:")
            .is_some_and(|rest| matches!(rest.trim(), "" | "[]") || rest.trim_start().starts_with('#'))
    });
    match repos_line {
        None if matches!(doc["repos"], Yaml::BadValue) => {
            lines.push("repos:".into());
            lines.extend(pre_commit_block("  ", prefix).lines().map(str::to_string));
        }
        None => return Err(refuse("its `repos` is not written as a list of `- repo:` items").into()),
        Some(at) => {
            if lines[at].trim_end().ends_with("[]") {
                lines[at] = "repos:".into();
            }
            // The list runs on while lines are indented, list items, comments or blank.
            let end = (at + 1..lines.len())
                .find(|&i| !(lines[i].trim().is_empty() || lines[i].starts_with([' ', '\t', '-', '#'])))
                .unwrap_or(lines.len());
            let last = (at + 1..end)
                .rev()
                .find(|&i| !lines[i].trim().is_empty() && !lines[i].starts_with('#'))
                .unwrap_or(at);
            let indent = lines[at + 1..end]
                .iter()
                .find(|l| l.trim_start().starts_with('-'))
                .map_or("  ".to_string(), |l| l[..l.len() - l.trim_start().len()].to_string());
            let block = pre_commit_block(&indent, prefix);
            lines.splice(last + 1..last + 1, block.lines().map(str::to_string));
        }
    }
    let edited = lines.join("\n") + "\n";
    let after = parse_yaml(&edited).ok();
    let added = after.as_ref().and_then(|d| d["repos"].as_vec()).is_some_and(|repos| {
        repos.len() == before + 1 && repos.last().is_some_and(|r| r["repo"].as_str() == Some("local"))
    });
    if !added || !after.as_ref().is_some_and(has_dvt_hooks) {
        return Err(refuse("dvt could not add its entry to the `repos` list as the file writes it").into());
    }
    Ok(Some(edited))
}

/// [`with_block`], and an entry an older dvt wrote that lacks some of today's
/// hooks (`post-rewrite` came later) written anew.
fn with_current_block(path: &Path, text: &str, prefix: &str) -> Result<Option<String>> {
    let lacking = PRE_COMMIT_HOOKS
        .iter()
        .any(|(stage, _)| !text.contains(&format!("id: dvt-{stage}\n")));
    match without_block(text).filter(|_| lacking) {
        Some(older) => Ok(Some(with_block(path, &older, prefix)?.unwrap_or(older))),
        None => with_block(path, text, prefix),
    }
}

/// `text` without dvt's entry (`None`: it has none), and `repos: []` if the list is
/// then empty (pre-commit requires the key).
fn without_block(text: &str) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.iter().position(|l| l.trim() == BLOCK_START)?;
    let end = start + lines[start..].iter().position(|l| l.trim() == BLOCK_END)?;
    let mut kept: Vec<String> = lines[..start]
        .iter()
        .chain(&lines[end + 1..])
        .map(|l| l.to_string())
        .collect();
    if parse_yaml(&(kept.join("\n") + "\n")).is_ok_and(|d| matches!(d["repos"], Yaml::Null))
        && let Some(l) = kept.iter_mut().find(|l| l.trim_end() == "repos:")
    {
        *l = "repos: []".into();
    }
    Some(kept.join("\n") + "\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The projects a hook script calls are read back from it as written, for
    /// any directory name, root included, in every hook's form.
    #[test]
    fn hook_scripts_name_their_projects() {
        let projects: Vec<String> = ["", "my-dvt-dir", "it's here", "a/b"].map(String::from).to_vec();
        for name in HOOKS {
            for n in 1..=projects.len() {
                let text = script(name, &projects[..n]);
                assert_eq!(hooked_prefixes(&text, name), projects[..n], "{name}:\n{text}");
            }
        }
    }

    fn added(text: &str) -> String {
        with_block(Path::new(".pre-commit-config.yaml"), text, "")
            .unwrap()
            .unwrap()
    }

    #[test]
    fn the_entry_joins_the_list_as_the_file_writes_it_and_leaves_the_same_way() {
        // Items at the key's indentation, with a key and comments after the list.
        let flush = "# mine\nrepos:\n- repo: local\n  hooks:\n  - id: x\n    name: x\n    entry: 'true'\n    language: system\n\n# later\nfail_fast: true\n";
        let with = added(flush);
        assert!(with.starts_with("# mine\nrepos:\n- repo: local\n"), "{with}");
        assert!(
            with.contains("    entry: 'true'\n    language: system\n# dvt's git hooks"),
            "{with}"
        );
        assert!(
            with.ends_with("# end of dvt's git hooks\n\n# later\nfail_fast: true\n"),
            "{with}"
        );
        let doc = parse_yaml(&with).unwrap();
        assert_eq!(doc["repos"].as_vec().unwrap().len(), 2);
        assert_eq!(doc["fail_fast"].as_bool(), Some(true));
        assert_eq!(
            doc["repos"][1]["hooks"][1]["entry"].as_str(),
            Some("dvt git-hook pre-push")
        );
        assert_eq!(without_block(&with).unwrap(), flush, "uninstalling gives the file back");
        // Items indented below the key: the entry is indented the same.
        let indented = "repos:\n  - repo: local\n    hooks: []\n";
        let with = added(indented);
        assert!(
            with.contains("\n  - repo: local\n    hooks:\n      - id: dvt-pre-commit\n"),
            "{with}"
        );
        assert_eq!(without_block(&with).unwrap(), indented);
        // Installing twice changes nothing.
        assert_eq!(with_block(Path::new("c"), &with, "").unwrap(), None);
    }

    #[test]
    fn an_entry_an_older_dvt_wrote_gets_the_hooks_it_lacks() {
        let text = "# mine\nrepos:\n- repo: local\n  hooks: []\n";
        let today = added(text);
        let start = today.find("    - id: dvt-post-rewrite").unwrap();
        let end = today[start..].find("# end of").unwrap();
        let older = format!("{}  {}", &today[..start], &today[start + end..]);
        assert!(!older.contains("dvt-post-rewrite"), "{older}");
        let path = Path::new("c");
        assert_eq!(with_current_block(path, &older, "").unwrap().unwrap(), today);
        assert_eq!(with_current_block(path, &today, "").unwrap(), None);
    }

    #[test]
    fn a_missing_or_empty_list_is_made_and_an_emptied_one_stays_a_list() {
        for text in ["", "repos: []\n", "repos:\n", "default_stages: [pre-commit]\n"] {
            let with = added(text);
            let doc = parse_yaml(&with).unwrap();
            assert_eq!(doc["repos"].as_vec().map(Vec::len), Some(1), "{text:?} -> {with}");
            let back = without_block(&with).unwrap();
            assert_eq!(
                parse_yaml(&back).unwrap()["repos"].as_vec().map(Vec::len),
                Some(0),
                "{back}"
            );
        }
        // A dvt root below the work tree's: the hooks run dvt there.
        let sub = with_block(Path::new("c"), "", "ml/").unwrap().unwrap();
        assert!(sub.contains("entry: dvt -C 'ml' git-hook post-merge"), "{sub}");
        assert_eq!(without_block("repos: []\n"), None, "nothing of dvt's: nothing changes");
    }

    #[test]
    fn a_config_dvt_cannot_edit_is_refused_with_the_lines_to_add() {
        for (text, problem) in [
            ("repos: [{repo: local, hooks: []}]\n", "not written as a list"),
            ("repos: {a: 1}\n", "`repos` is not a list"),
            ("- just\n- a list\n", "not a mapping"),
            ("repos: [\n", "not YAML"),
        ] {
            let e = with_block(Path::new(".pre-commit-config.yaml"), text, "")
                .unwrap_err()
                .to_string();
            assert!(
                e.contains(problem) && e.contains("      entry: dvt git-hook pre-commit"),
                "{text:?}: {e}"
            );
        }
    }
}
