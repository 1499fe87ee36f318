//! End-to-end tests of the git integration: data at revisions, tags as data
//! versions, hooks, diff, gc. Real git repos (built with the git CLI), the real
//! `dvt` binary, a directory remote.
#![allow(clippy::disallowed_methods, clippy::unwrap_used)]

mod common;

use common::{GitDaemon, GitHttp, PrivateCa, Store, TestEnv, noise, temp_leftovers};

/// A repo with two tagged data versions and a commit between them that is not
/// tagged; every version is pushed to a directory remote `store`.
/// v1: data/{a,b}.csv, model.bin; mid: a changed; v2: a changed again, b deleted,
/// c added, model changed.
struct Versions {
    env: TestEnv,
    _remote: tempfile::TempDir,
}

fn versions() -> Versions {
    let env = TestEnv::new();
    let remote = tempfile::tempdir().unwrap();
    env.dvt(&["remote", "add", "-d", "store", remote.path().to_str().unwrap()])
        .ok();
    let commit = |msg: &str| {
        env.dvt(&["add", "data", "model.bin"]).ok();
        env.dvt(&["push"]).ok();
        env.commit(msg);
    };
    env.write("data/a.csv", "t,v\n0,1\n");
    env.write("data/b.csv", "t,v\n0,2\n");
    env.write("model.bin", "model one");
    commit("v1");
    env.git(&["tag", "v1"]);
    env.write("data/a.csv", "t,v\n0,1\n1,1\n");
    commit("mid");
    env.write("data/a.csv", "t,v\n0,1\n1,1\n2,1\n");
    std::fs::remove_file(env.path("data/b.csv")).unwrap();
    env.write("data/sub/c.csv", "t,v\n0,3\n");
    env.write("model.bin", "model two");
    commit("v2");
    env.git(&["tag", "v2"]);
    Versions { env, _remote: remote }
}

#[test]
fn cat_and_get_url_at_each_tag_return_that_version() {
    let Versions { env, _remote } = versions();
    for (rev, a, model) in [
        ("v1", "t,v\n0,1\n", "model one"),
        ("v2", "t,v\n0,1\n1,1\n2,1\n", "model two"),
        ("HEAD~1", "t,v\n0,1\n1,1\n", "model one"),
    ] {
        assert_eq!(env.dvt(&["cat", "data/a.csv", "--rev", rev]).ok().stdout, a);
        assert_eq!(env.dvt(&["cat", "model.bin", "--rev", rev]).ok().stdout, model);
        let info = env.dvt(&["get-url", "data/a.csv", "--rev", rev, "--json"]).ok().json();
        let id = blake3::hash(a.as_bytes()).to_hex().to_string();
        assert_eq!(info["id"], id.as_str());
        assert_eq!(info["size"], a.len());
        assert_eq!(info["on_remote"], true);
        assert_eq!(info["remote"], "store");
        assert_eq!(info["encoding"], "raw", "tiny content is not worth compressing");
        // Small objects are packed on a directory remote: the URL is the pack's,
        // and the range says where the object's stored form is in it.
        let url = info["url"].as_str().unwrap();
        assert!(url.ends_with(".pack"), "{url}");
        let (start, end) = (
            info["range"]["start"].as_u64().unwrap(),
            info["range"]["end"].as_u64().unwrap(),
        );
        let pack = std::fs::read(url).unwrap();
        assert_eq!(
            &pack[start as usize..end as usize],
            [b"dvtraw1\n", a.as_bytes()].concat()
        );
        assert_eq!(info["commit"].as_str().unwrap().len(), 40);
    }
    // The workspace was never touched; data dirs and pointer paths work too.
    assert_eq!(env.read("data/a.csv"), b"t,v\n0,1\n1,1\n2,1\n");
    let dir = env.dvt(&["get-url", "data", "--rev", "v1", "--json"]).ok().json();
    assert_eq!(dir["kind"], "dir");
    assert_eq!(
        env.dvt(&["cat", "data.dvt/../model.bin", "--rev", "v1"]).ok().stdout,
        "model one"
    );
    // From a subdirectory, paths are relative to it.
    let r = env.dvt_in(&env.path("data"), &["cat", "b.csv", "--rev", "v1"]).ok();
    assert_eq!(r.stdout, "t,v\n0,2\n");
    // Through --repo, paths are relative to that repo's root.
    let other = tempfile::tempdir().unwrap();
    let r = env
        .dvt_in(
            other.path(),
            &["cat", "data/b.csv", "--rev", "v1", "--repo", env.root.to_str().unwrap()],
        )
        .ok();
    assert_eq!(r.stdout, "t,v\n0,2\n");
}

#[test]
fn cat_fetches_from_the_remote_when_the_cache_lacks_the_object() {
    let Versions { env, _remote } = versions();
    let clone = env.clone_repo();
    // A fresh clone has no cache; its config names the remote.
    assert_eq!(
        clone.dvt(&["cat", "data/b.csv", "--rev", "v1"]).ok().stdout,
        "t,v\n0,2\n"
    );
    assert_eq!(clone.dvt(&["cat", "data/sub/c.csv"]).ok().stdout, "t,v\n0,3\n");
    assert!(!clone.exists("data"), "cat writes nothing to the workspace");
}

#[test]
fn rev_errors_name_the_revision_and_the_path() {
    let Versions { env, _remote } = versions();
    let r = env.dvt(&["cat", "data/a.csv", "--rev", "v9"]).fails();
    assert!(r.stderr.contains("unknown revision `v9`"), "{}", r.stderr);
    let r = env.dvt(&["cat", "data/sub/c.csv", "--rev", "v1"]).fails();
    assert!(
        r.stderr.contains("`data/sub/c.csv` is not tracked by dvt at `v1`"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("did you mean"), "{}", r.stderr);
    // A slip in a file name inside a tracked directory: its closest file there.
    let r = env.dvt(&["cat", "data/b.cvs", "--rev", "v1"]).fails();
    assert!(r.stderr.contains("hint: did you mean `data/b.csv`?"), "{}", r.stderr);
    let r = env.dvt(&["cat", "data/sub/c.cvs"]).fails();
    assert!(
        r.stderr
            .contains("`data/sub/c.cvs` is not tracked by dvt in the workspace")
            && r.stderr.contains("hint: did you mean `data/sub/c.csv`?"),
        "{}",
        r.stderr
    );
    let r = env.dvt(&["cat", "notes.txt", "--rev", "v1"]).fails();
    assert!(r.stderr.contains("`notes.txt` does not exist at `v1`"), "{}", r.stderr);
    let r = env.dvt(&["cat", "data", "--rev", "v1"]).fails();
    assert!(r.stderr.contains("is a directory"), "{}", r.stderr);

    // A malformed pointer and an escaping pointer, committed.
    env.write("bad.dvt", "version = 1\npath = \"bad\"\n");
    env.write(
        "evil.dvt",
        format!(
            "version = 1\npath = \"../outside\"\nkind = \"file\"\nid = \"{}\"\nsize = 1\n",
            "ab".repeat(32)
        ),
    );
    env.git(&["add", "bad.dvt", "evil.dvt"]);
    env.git(&["commit", "-q", "-m", "broken pointers"]);
    env.git(&["tag", "broken"]);
    std::fs::remove_file(env.path("bad.dvt")).unwrap();
    std::fs::remove_file(env.path("evil.dvt")).unwrap();
    let r = env.dvt(&["cat", "bad", "--rev", "broken"]).fails();
    assert!(
        r.stderr.contains("invalid pointer file `broken:bad.dvt`"),
        "{}",
        r.stderr
    );
    let r = env.dvt(&["diff", "v2", "broken"]).fails();
    assert!(r.stderr.contains("broken:"), "{}", r.stderr);
    let r = env.dvt(&["cat", "outside", "--rev", "broken"]).fails();
    assert!(
        r.stderr.contains("`outside` does not exist at `broken`") || r.stderr.contains("unsafe path"),
        "{}",
        r.stderr
    );
    let r = env.dvt(&["get-url", "evil.dvt", "--rev", "broken"]).fails();
    assert!(
        r.stderr.contains("unsafe path `../outside` in `broken:evil.dvt`"),
        "{}",
        r.stderr
    );
    assert!(!env.root.parent().unwrap().join("outside").exists());
}

#[test]
fn object_missing_from_cache_and_remote_is_an_error_naming_it() {
    let Versions { env, _remote } = versions();
    let id = blake3::hash(b"model one").to_hex().to_string();
    env.remove_object(&id);
    Store::at(_remote.path()).remove(&id);
    let r = env.dvt(&["cat", "model.bin", "--rev", "v1"]).fails();
    assert!(r.stderr.contains(&id) && r.stderr.contains("store"), "{}", r.stderr);
    assert!(r.stdout.is_empty(), "no bytes were written: {}", r.stdout);
    let info = env.dvt(&["get-url", "model.bin", "--rev", "v1", "--json"]).ok().json();
    assert_eq!(info["on_remote"], false);
}

/// Without any remote, `get-url` says that a URL needs one, not that the
/// cache lacks the object (it holds it).
#[test]
fn get_url_without_a_remote_says_so() {
    let env = TestEnv::new();
    env.write("model.bin", "weights");
    env.dvt(&["add", "model.bin"]).ok();
    let r = env.dvt(&["get-url", "model.bin"]).fails();
    assert!(
        r.stderr.contains("no remote given and no default remote is set"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("not in the cache"), "{}", r.stderr);
    assert_eq!(env.dvt(&["cat", "model.bin"]).ok().stdout, "weights");
}

/// `import` from a repository with no commit yet names that repository.
#[test]
fn import_from_a_repository_without_commits_names_it() {
    let (env, source) = (TestEnv::new(), TestEnv::new());
    source.write("a.csv", "a\n");
    source.dvt(&["add", "a.csv"]).ok();
    let r = env.dvt(&["import", source.root.to_str().unwrap(), "a.csv"]).fails();
    assert!(
        r.stderr.contains(&format!(
            "`HEAD` names no commit: the repository `{}` has none yet",
            source.root.display()
        )),
        "{}",
        r.stderr
    );
    assert!(!env.exists("a.csv") && !env.exists("a.csv.dvt"));
    // Its work tree is read as it is, without a revision.
    env.dvt(&["get", source.root.to_str().unwrap(), "a.csv"]).ok();
    assert_eq!(env.read("a.csv"), b"a\n");
}

#[test]
fn cat_refuses_a_corrupt_object_and_writes_no_bytes() {
    let Versions { env, _remote } = versions();
    let id = blake3::hash(b"model two").to_hex().to_string();
    env.damage(&id, |bytes| {
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
    });
    let r = env.dvt(&["cat", "model.bin"]).fails();
    assert!(r.stderr.contains("corrupt") && r.stderr.contains(&id), "{}", r.stderr);
    assert!(r.stdout.is_empty());
}

#[test]
fn diff_between_tags_names_exactly_the_changed_files() {
    let Versions { env, _remote } = versions();
    let d = env.dvt(&["diff", "v1", "v2", "--json"]).ok().json();
    let paths = |k: &str| -> Vec<String> {
        d[k].as_array()
            .unwrap()
            .iter()
            .map(|c| c["path"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(paths("added"), ["data/sub/c.csv"]);
    assert_eq!(paths("deleted"), ["data/b.csv"]);
    assert_eq!(paths("modified"), ["data/", "data/a.csv", "model.bin"]);
    let text = env.dvt(&["diff", "v1", "v2"]).ok().stdout;
    assert!(text.contains("files summary: 1 added, 1 deleted, 2 modified"), "{text}");
    // HEAD against the workspace: what the workspace holds, as DVC's `diff`
    // hashes it: changes not added show, nothing is stored, data not checked
    // out is missing and not changed.
    let r = env.dvt(&["diff"]).ok();
    assert!(r.stdout.starts_with("No data changes"), "{}", r.stdout);
    let objects = || {
        walkdir::WalkDir::new(env.path(".dvt/cache"))
            .into_iter()
            .filter(|e| e.as_ref().unwrap().file_type().is_file())
            .count()
    };
    let stored = objects();
    env.write("data/d.csv", "new\n");
    env.write("model.bin", "model edited");
    let d = env.dvt(&["diff", "--json"]).ok().json();
    assert_eq!(d["to"], "the workspace", "{d}");
    assert_eq!(d["added"][0]["path"], "data/d.csv", "{d}");
    assert_eq!(d["added"][0]["new"], blake3::hash(b"new\n").to_hex().as_str(), "{d}");
    let modified: Vec<&str> = d["modified"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["path"].as_str().unwrap())
        .collect();
    assert_eq!(modified, ["data/", "model.bin"], "{d}");
    assert_eq!(d["modified"][1]["new"], blake3::hash(b"model edited").to_hex().as_str());
    assert_eq!(objects(), stored, "diff stores nothing");
    let r = env.dvt(&["diff", "--targets", "model.bin"]).ok();
    assert!(
        r.stdout.contains("    model.bin") && !r.stdout.contains("d.csv"),
        "{}",
        r.stdout
    );
    let text = env.dvt(&["diff", "v1", "v2"]).ok().stdout;
    assert!(text.contains("files summary: 1 added, 1 deleted, 2 modified"), "{text}");
    std::fs::remove_file(env.path("model.bin")).unwrap();
    let r = env.dvt(&["diff"]).ok();
    assert!(
        r.stdout.contains("    data/d.csv") && !r.stdout.contains("model.bin"),
        "{}",
        r.stdout
    );
    env.dvt(&["add", "data"]).ok();
    let d = env.dvt(&["diff", "--json"]).ok().json();
    assert_eq!(d["added"][0]["path"], "data/d.csv");

    // Before the first commit, everything recorded is added.
    let fresh = TestEnv::new();
    fresh.write("a.csv", "x\n");
    fresh.dvt(&["add", "a.csv"]).ok();
    let d = fresh.dvt(&["diff", "--json"]).ok().json();
    assert_eq!(d["added"][0]["path"], "a.csv", "{d}");
    assert_eq!(d["from"], "no commit yet");
}

/// Content that moved shows as renamed (as DVC's `diff` and `data status`
/// show it): inside a directory, a pointer moved with `dvt move`, a whole
/// directory; duplicates pair by file name; empty files and changed content
/// stay added and deleted.
#[test]
fn diff_and_data_status_show_moved_content_as_renamed() {
    let env = TestEnv::new();
    env.write("data/imgs/cat.png", "cat\n");
    env.write("data/imgs/dog.png", "dog\n");
    env.write("data/imgs/copy/dog.png", "dog\n");
    env.write("data/imgs/empty", "");
    env.write("data/imgs/edit.txt", "one\n");
    env.write("model.bin", "weights\n");
    env.write("set/x.csv", "x\n");
    env.dvt(&["add", "data/imgs", "model.bin", "set"]).ok();
    env.commit("v1");
    fs_err::rename(env.path("data/imgs/cat.png"), env.path("data/imgs/kitten.png")).unwrap();
    fs_err::rename(env.path("data/imgs/copy/dog.png"), env.path("data/imgs/copy/hound.png")).unwrap();
    fs_err::rename(env.path("data/imgs/empty"), env.path("data/imgs/void")).unwrap();
    fs_err::rename(env.path("data/imgs/edit.txt"), env.path("data/imgs/edited.txt")).unwrap();
    env.write("data/imgs/edited.txt", "two\n");
    env.write("data/imgs/other/dog.png", "dog\n");
    fs_err::remove_file(env.path("data/imgs/dog.png")).unwrap();
    env.dvt(&["add", "data/imgs"]).ok();
    env.dvt(&["move", "model.bin", "models/model.bin"]).ok();
    env.dvt(&["move", "set", "sets/set"]).ok();

    let d = env.dvt(&["diff", "--json"]).ok().json();
    let list = |k: &str| -> Vec<String> {
        d[k].as_array()
            .unwrap()
            .iter()
            .map(|c| match c["old_path"].as_str() {
                Some(old) => format!("{old} -> {}", c["path"].as_str().unwrap()),
                None => c["path"].as_str().unwrap().to_string(),
            })
            .collect()
    };
    assert_eq!(
        list("renamed"),
        [
            "data/imgs/copy/dog.png -> data/imgs/copy/hound.png",
            "data/imgs/cat.png -> data/imgs/kitten.png",
            "data/imgs/dog.png -> data/imgs/other/dog.png",
            "model.bin -> models/model.bin",
            "set/ -> sets/set/",
            "set/x.csv -> sets/set/x.csv",
        ],
        "{d}"
    );
    assert_eq!(list("added"), ["data/imgs/edited.txt", "data/imgs/void"], "{d}");
    assert_eq!(list("deleted"), ["data/imgs/edit.txt", "data/imgs/empty"], "{d}");
    assert_eq!(list("modified"), ["data/imgs/"], "{d}");
    assert_eq!(
        d["renamed"][3]["id"],
        blake3::hash(b"weights\n").to_hex().as_str(),
        "{d}"
    );
    assert_eq!(d["renamed"][3]["size"], 8, "{d}");

    let r = env.dvt(&["diff"]).ok();
    assert!(
        r.stdout
            .contains("Renamed:\n    data/imgs/copy/dog.png -> data/imgs/copy/hound.png\n")
            && r.stdout
                .contains("files summary: 2 added, 2 deleted, 5 renamed, 0 modified"),
        "{}",
        r.stdout
    );
    // DVC's `--hide-missing` is accepted: dvt's diff lists nothing of the kind.
    assert_eq!(env.dvt(&["diff", "--hide-missing"]).ok().stdout, r.stdout);
    let id = &blake3::hash(b"weights\n").to_hex()[..8];
    let r = env.dvt(&["diff", "--show-hash"]).ok();
    assert!(
        r.stdout
            .contains(&format!("    {id}{} model.bin -> models/model.bin\n", " ".repeat(10))),
        "{}",
        r.stdout
    );
    let r = env.dvt(&["diff", "--md", "--targets", "model.bin", "models"]).ok();
    assert_eq!(
        r.stdout,
        "| Status   | Path   |\n|----------|--------|\n| renamed  | model.bin -> models/model.bin |\n"
    );
    // Only one side in the targets: what is there is added (or deleted).
    let d = env.dvt(&["diff", "--json", "--targets", "models"]).ok().json();
    assert_eq!(d["added"][0]["path"], "models/model.bin", "{d}");
    assert!(d["renamed"].as_array().unwrap().is_empty(), "{d}");

    // `data status` names the tracked paths (with --granular, the files too).
    let s = env.dvt(&["data", "status", "--json"]).ok().json();
    assert_eq!(
        s["committed"]["renamed"],
        serde_json::json!([
            {"old": "model.bin", "new": "models/model.bin"},
            {"old": "set/", "new": "sets/set/"}
        ]),
        "{s}"
    );
    assert_eq!(s["committed"]["modified"], serde_json::json!(["data/imgs/"]), "{s}");
    assert!(s["committed"].get("added").is_none(), "{s}");
    let r = env.dvt(&["data", "status"]).ok();
    assert!(
        r.stdout.contains("        renamed: model.bin -> models/model.bin\n"),
        "{}",
        r.stdout
    );
    let s = env.dvt(&["data", "status", "--granular", "--json"]).ok().json();
    assert_eq!(s["committed"]["renamed"].as_array().unwrap().len(), 6, "{s}");
}

/// `dvt data status`, as `dvc data status`: each list in its section, with
/// `--granular`, `--unchanged`, `--untracked-files`, `--not-in-remote`,
/// targets and `--json`.
#[test]
fn data_status_sorts_data_as_git_status_sorts_files() {
    let env = TestEnv::new();
    env.write("data/a.csv", "1\n");
    env.write("data/b.csv", "2\n");
    env.write("model.bin", "m1");
    env.dvt(&["add", "data", "model.bin"]).ok();
    let store = tempfile::tempdir().unwrap();
    env.dvt(&["remote", "add", "-d", "store", store.path().to_str().unwrap()])
        .ok();
    env.dvt(&["push"]).ok();
    env.commit("v1");
    let status = |args: &[&str]| env.dvt(&[&["data", "status"], args].concat()).ok().stdout;
    let json = |args: &[&str]| env.dvt(&[&["data", "status", "--json"], args].concat()).ok().json();
    assert_eq!(status(&[]), "No changes.\n");
    assert_eq!(json(&[]), serde_json::json!({}));
    assert_eq!(
        json(&["--unchanged", "--granular"]),
        serde_json::json!({"unchanged": ["data/", "data/a.csv", "data/b.csv", "model.bin"]})
    );

    // Changed, not recorded: "uncommitted"; a deleted file of a directory too.
    env.write("data/a.csv", "1 changed\n");
    std::fs::remove_file(env.path("data/b.csv")).unwrap();
    env.write("data/c.csv", "3\n");
    let out = status(&[]);
    assert!(
        out.starts_with(
            "DVT uncommitted changes:\n  (use \"dvt add <file>...\" or \"dvt commit <file>...\" to track changes)\n"
        ),
        "{out}"
    );
    assert!(
        out.contains("\n        modified: data/\n") && !out.contains("a.csv"),
        "{out}"
    );
    assert_eq!(
        json(&["--granular", "--unchanged"]),
        serde_json::json!({
            "uncommitted": {"added": ["data/c.csv"], "modified": ["data/", "data/a.csv"], "deleted": ["data/b.csv"]},
            "unchanged": ["model.bin"],
        })
    );
    // Recorded, not committed to git: "committed"; not yet pushed: "not in remote".
    env.dvt(&["add", "data"]).ok();
    let j = json(&["--granular", "--not-in-remote"]);
    assert_eq!(
        j,
        serde_json::json!({
            "not_in_remote": ["data/", "data/a.csv", "data/c.csv"],
            "committed": {"added": ["data/c.csv"], "modified": ["data/", "data/a.csv"], "deleted": ["data/b.csv"]},
        })
    );
    let out = status(&[]);
    assert!(out.contains("DVT committed changes:\n  (git commit the corresponding dvt files to update the repo)\n        modified: data/\n"), "{out}");
    assert!(
        out.ends_with("(there are other changes not tracked by dvt, use \"git status\" to see)\n"),
        "{out}"
    );
    // Targets narrow every list; -q drops the hints.
    assert_eq!(json(&["model.bin", "--not-in-remote"]), serde_json::json!({}));
    assert_eq!(
        env.dvt(&["-q", "data", "status", "data"]).ok().stdout,
        "DVT committed changes:\n        modified: data/\n"
    );

    // Files neither git nor dvt tracks, only when asked; ignored ones never.
    env.write("notes/todo.txt", "t\n");
    env.write(".gitignore", "/data\n/model.bin\n*.log\n");
    env.write("run.log", "l\n");
    assert!(!status(&[]).contains("todo"));
    assert_eq!(
        json(&["--untracked-files"])["untracked"],
        serde_json::json!(["notes/todo.txt"])
    );
    assert!(json(&["--untracked-files=no"]).get("untracked").is_none());

    env.dvt(&["push"]).ok();
    assert!(json(&["--not-in-remote"]).get("not_in_remote").is_none());
    // Not in cache: the objects are gone, so the files cannot be listed.
    env.commit("v2");
    std::fs::remove_dir_all(env.path(".dvt/cache")).unwrap();
    std::fs::remove_dir_all(env.path("data")).unwrap();
    let out = status(&["--granular"]);
    assert!(
        out.starts_with(
            "Not in cache:\n  (use \"dvt fetch <file>...\" to download files)\n        data/\n        model.bin\n"
        ),
        "{out}"
    );
    assert!(out.contains("        deleted: data/\n"), "{out}");
    env.dvt(&["pull"]).ok();
    assert_eq!(status(&["--granular"]), "No changes.\n");

    // A malformed pointer stops it, named.
    env.write("model.bin.dvt", "version = 1\npath = ");
    let r = env.dvt(&["data", "status"]).fails();
    assert!(r.stderr.contains("model.bin.dvt"), "{}", r.stderr);
}

/// DVC's `diff --targets`, `--show-hash` and `--md`.
#[test]
fn diff_narrows_to_targets_and_prints_hashes_and_markdown() {
    let Versions { env, _remote } = versions();
    let paths = |j: &serde_json::Value, key: &str| -> Vec<String> {
        j[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["path"].as_str().unwrap().to_string())
            .collect()
    };
    // A file inside a tracked directory, and a tracked file: no `data/` row.
    let j = env
        .dvt(&["diff", "v1", "v2", "--targets", "data/a.csv", "model.bin", "--json"])
        .ok()
        .json();
    assert_eq!(paths(&j, "modified"), ["data/a.csv", "model.bin"], "{j}");
    assert!(paths(&j, "added").is_empty() && paths(&j, "deleted").is_empty(), "{j}");
    // A subdirectory, named from inside the tracked directory.
    let r = env.dvt_in(&env.path("data"), &["diff", "v1", "v2", "--targets", "sub", "--json"]);
    let j = r.ok().json();
    assert_eq!(paths(&j, "added"), ["data/sub/c.csv"], "{j}");
    assert!(paths(&j, "modified").is_empty(), "{j}");

    let r = env.dvt(&["diff", "v1", "v2", "--targets", "model.bin", "--md"]).ok();
    assert_eq!(
        r.stdout,
        "| Status   | Path   |\n|----------|--------|\n| modified | model.bin |\n"
    );
    let old = &blake3::hash(b"model one").to_hex()[..8];
    let new = &blake3::hash(b"model two").to_hex()[..8];
    let r = env
        .dvt(&["diff", "v1", "v2", "--targets", "model.bin", "--md", "--show-hash"])
        .ok();
    assert!(
        r.stdout.contains(&format!("| modified | {old}..{new} | model.bin |")),
        "{}",
        r.stdout
    );
    let r = env.dvt(&["diff", "v1", "v2", "--show-hash"]).ok();
    assert!(
        r.stdout.contains(&format!("    {old}..{new} model.bin")),
        "{}",
        r.stdout
    );
    let c = &blake3::hash(b"t,v\n0,3\n").to_hex()[..8];
    assert!(
        r.stdout.contains(&format!("    {c}{} data/sub/c.csv", " ".repeat(10))),
        "{}",
        r.stdout
    );

    let r = env.dvt(&["diff", "v1", "v2", "--targets", "nothing.csv"]).fails();
    assert!(r.stderr.contains("`nothing.csv` is not tracked"), "{}", r.stderr);
    let r = env.dvt(&["diff", "--md", "--json"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
}

#[test]
fn versions_lists_tags_and_with_all_the_commits_where_data_changed() {
    let Versions { env, _remote } = versions();
    let v = env.dvt(&["versions", "data/a.csv", "--json"]).ok().json();
    let tags: Vec<&str> = v["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["tags"][0].as_str().unwrap())
        .collect();
    assert_eq!(tags, ["v1", "v2"]);
    // Each version's time is its commit's (it was 0 while the walk did not read times).
    let v1_time: i64 = env
        .git(&["log", "-1", "--format=%ct", "v1"])
        .stdout
        .trim()
        .parse()
        .unwrap();
    assert_eq!(v["versions"][0]["time"], v1_time, "{v}");
    let all = env.dvt(&["versions", "data/a.csv", "--all", "--json"]).ok().json();
    assert_eq!(all["versions"].as_array().unwrap().len(), 3, "v1, mid, v2: {all}");
    assert_eq!(
        all["versions"][1]["id"],
        blake3::hash(b"t,v\n0,1\n1,1\n").to_hex().as_str()
    );
    // model.bin did not change at the untagged commit.
    let all = env.dvt(&["versions", "model.bin", "--all", "--json"]).ok().json();
    assert_eq!(all["versions"].as_array().unwrap().len(), 2);
    let r = env.dvt(&["versions", "nothing.csv"]).fails();
    assert!(r.stderr.contains("not tracked"), "{}", r.stderr);
    // A file its directory gained at v2, and one it lost there: the tags where
    // the directory did not hold it are no error.
    let id = |b: &[u8]| blake3::hash(b).to_hex().to_string();
    let out = env.dvt(&["versions", "data/sub/c.csv"]).ok().stdout;
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(out.contains("(v2)") && out.contains(&id(b"t,v\n0,3\n")), "{out}");
    let gone = env.dvt(&["versions", "data/b.csv", "--all", "--json"]).ok().json();
    assert_eq!(gone["versions"][0]["id"], id(b"t,v\n0,2\n").as_str(), "{gone}");
    assert_eq!(gone["versions"][1]["id"], serde_json::Value::Null, "{gone}");
    assert!(
        env.dvt(&["versions", "data/b.csv"])
            .ok()
            .stdout
            .contains("(v2) not tracked")
    );
    // Never in the directory: as for a path nothing tracks.
    let r = env.dvt(&["versions", "data/none.csv"]).fails();
    assert!(
        r.stderr.contains("not tracked by dvt at HEAD or any tag"),
        "{}",
        r.stderr
    );
    // Added, not committed: no version yet, and the way to make one.
    env.write("fresh.csv", "f\n");
    env.dvt(&["add", "fresh.csv"]).ok();
    let r = env.dvt(&["versions", "fresh.csv"]).fails();
    assert!(
        r.stderr
            .contains("`fresh.csv` has no version in git yet: `fresh.csv.dvt`, which tracks it here, is not committed")
            && r.stderr.contains("commit `fresh.csv.dvt` with git"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_shallow_clone_lists_the_versions_it_has_and_pulls_its_data() {
    let Versions { env, _remote } = versions();
    // The newest two commits: `mid` and `v2`; `mid` names a parent the clone lacks.
    let clone = env.clone_with(&["--depth", "2", &env.url()]);
    let all = clone.dvt(&["versions", "data/a.csv", "--all", "--json"]).ok().json();
    let ids: Vec<&str> = all["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_str().unwrap())
        .collect();
    // As `git log` shows it, the oldest commit the clone has brings the data.
    let id = |b: &[u8]| blake3::hash(b).to_hex().to_string();
    assert_eq!(ids, [id(b"t,v\n0,1\n1,1\n"), id(b"t,v\n0,1\n1,1\n2,1\n")], "{all}");
    let tagged = clone.dvt(&["versions", "data/a.csv", "--json"]).ok().json();
    assert_eq!(
        tagged["versions"].as_array().unwrap().len(),
        1,
        "only v2 came: {tagged}"
    );
    assert_eq!(tagged["versions"][0]["tags"][0], "v2");
    // The listing says what it cannot show; a full clone has nothing to say.
    assert_eq!(all["shallow"], true, "{all}");
    let r = clone.dvt(&["versions", "data/a.csv"]).ok();
    assert!(
        r.stderr
            .contains("this clone is shallow: versions older than its history are not listed"),
        "{}",
        r.stderr
    );
    let r = env.dvt(&["versions", "data/a.csv"]).ok();
    assert!(!r.stderr.contains("shallow"), "{}", r.stderr);
    clone.dvt(&["pull"]).ok();
    assert_eq!(clone.read("data/a.csv"), b"t,v\n0,1\n1,1\n2,1\n");
    assert_eq!(
        clone.dvt(&["cat", "data/a.csv", "--rev", "HEAD~1"]).ok().stdout,
        "t,v\n0,1\n1,1\n"
    );
    let r = clone.dvt(&["cat", "data/a.csv", "--rev", "HEAD~2"]).fails();
    assert!(r.stderr.contains("this clone is shallow"), "{}", r.stderr);
    // gc over every commit keeps what both commits reference.
    clone.dvt(&["fetch", "--all-commits"]).ok();
    let before = clone.object_ids();
    clone.dvt(&["gc", "--all-commits", "-f"]).ok();
    assert_eq!(clone.object_ids(), before);
}

#[test]
fn a_partial_clone_names_the_remote_git_left_history_on_and_the_hint_brings_it() {
    let Versions { env, _remote } = versions();
    env.git(&["config", "uploadpack.allowFilter", "true"]);
    let clone = env.clone_with(&["--filter=blob:none", &env.url()]);
    // HEAD's files are checked out, so its data comes as in any clone.
    clone.dvt(&["pull"]).ok();
    assert_eq!(clone.read("data/a.csv"), b"t,v\n0,1\n1,1\n2,1\n");
    // Older pointer files stayed on `origin`: git would fetch them, dvt says so.
    let r = clone.dvt(&["versions", "data/a.csv", "--all"]).fails();
    assert!(
        r.stderr.contains("this partial clone left it on `origin`"),
        "{}",
        r.stderr
    );
    let hint = r.stderr.lines().find(|l| l.starts_with("hint:")).unwrap();
    let commands: Vec<&str> = hint.split('`').nth(1).unwrap().split(" && ").collect();
    assert_eq!(commands.len(), 2, "{hint}");
    for c in commands {
        let args: Vec<&str> = c.split_whitespace().skip(1).collect();
        clone.git(&args);
    }
    let all = clone.dvt(&["versions", "data/a.csv", "--all", "--json"]).ok().json();
    assert_eq!(all["versions"].as_array().unwrap().len(), 3, "v1, mid, v2: {all}");
}

#[test]
fn describe_records_commit_tags_dirtiness_and_ids() {
    let Versions { env, _remote } = versions();
    let d = env.dvt(&["describe", "--json"]).ok().json();
    let head = env.git(&["rev-parse", "HEAD"]).stdout.trim().to_string();
    assert_eq!(d["commit"], head.as_str());
    assert_eq!(d["tags"][0], "v2");
    assert_eq!(d["dirty"], false, "{d}");
    let model = d["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["path"] == "model.bin")
        .unwrap();
    assert_eq!(model["id"], blake3::hash(b"model two").to_hex().as_str());

    env.write("model.bin", "retrained");
    let d = env.dvt(&["describe", "--json"]).ok().json();
    assert_eq!(d["dirty"], true);
    assert_eq!(d["changed_data"][0], "model.bin");
    env.dvt(&["add", "model.bin"]).ok();
    let d = env.dvt(&["describe", "--json"]).ok().json();
    assert_eq!(d["uncommitted_pointers"][0], "model.bin.dvt");
}

#[test]
fn tag_refuses_until_pointers_are_committed_and_data_is_pushed() {
    let Versions { env, _remote } = versions();
    env.write("model.bin", "model three");
    env.dvt(&["add", "model.bin"]).ok();
    let r = env.dvt(&["tag", "v3"]).fails();
    assert!(
        r.stderr.contains("model.bin.dvt") && r.stderr.contains("not committed"),
        "{}",
        r.stderr
    );
    env.git(&["commit", "-q", "-am", "v3"]);
    let r = env.dvt(&["tag", "v3"]).fails();
    let id = blake3::hash(b"model three").to_hex().to_string();
    assert!(r.stderr.contains(&format!("model.bin ({id})")), "{}", r.stderr);
    assert!(r.stderr.contains("dvt push"), "{}", r.stderr);
    assert!(env.git(&["tag", "-l", "v3"]).stdout.is_empty(), "no tag was made");
    env.dvt(&["push"]).ok();
    env.dvt(&["tag", "v3", "-m", "retrained model"]).ok();
    assert_eq!(env.git(&["cat-file", "-t", "v3"]).stdout.trim(), "tag", "annotated");
    assert!(env.git(&["tag", "-n1", "v3"]).stdout.contains("retrained model"));
    let r = env.dvt(&["tag", "v3"]).fails();
    assert!(r.stderr.contains("already exists"), "{}", r.stderr);
    // Without a remote there is nothing to check against: the error says so,
    // not that data the cache holds is missing from it.
    env.dvt(&["remote", "remove", "store"]).ok();
    let r = env.dvt(&["tag", "v4"]).fails();
    assert!(r.stderr.contains("no default remote is set"), "{}", r.stderr);
    assert!(!r.stderr.contains("not in the cache"), "{}", r.stderr);
    // A name git refuses is refused first, as git says it.
    for (bad, why) in [
        ("v 4", "contains invalid byte"),
        ("v..4", "repeated dots"),
        ("@", "is `@` or starts with `-`"),
    ] {
        let r = env.dvt(&["tag", "--", bad]).fails();
        assert!(
            r.stderr.contains(&format!("`{bad}` cannot name a git tag: ")) && r.stderr.contains(why),
            "{}",
            r.stderr
        );
    }
}

/// `tag --push` (GTO's `--push`): the annotated tag, and the commits it needs,
/// go to the git remote (`origin` by default; on disk, and over smart HTTP);
/// a remote that has another tag of that name refuses it, and the tag here stays.
#[test]
fn tag_push_sends_the_annotated_tag_to_the_git_remote() {
    let Versions { env, _remote } = versions();
    let served = tempfile::tempdir().unwrap();
    let origin = served.path().join("origin.git");
    let git_dir = origin.to_str().unwrap();
    env.git(&["init", "-q", "--bare", git_dir]);
    env.git(&["remote", "add", "origin", git_dir]);
    // Packed, with deltas: the push reuses them (git checks each).
    env.git(&["gc", "-q", "--aggressive"]);
    let r = env.dvt(&["tag", "v3", "--push"]).ok();
    assert!(r.stdout.contains("pushed tag `v3` to `origin`"), "{}", r.stdout);
    assert_eq!(
        env.git(&["--git-dir", git_dir, "cat-file", "-t", "v3"]).stdout.trim(),
        "tag"
    );
    assert_eq!(
        env.git(&["--git-dir", git_dir, "rev-parse", "v3^{commit}"]).stdout,
        env.git(&["rev-parse", "HEAD"]).stdout
    );
    // The whole history came with it: the remote had nothing.
    let log = env.git(&["--git-dir", git_dir, "log", "--format=%s", "v3"]).stdout;
    assert_eq!(log.lines().collect::<Vec<_>>(), ["v2", "mid", "v1"]);
    env.git(&["--git-dir", git_dir, "fsck", "--strict"]);

    let server = GitHttp::start(served.path());
    let url = format!("http://127.0.0.1:{}/origin.git", server.port);
    env.write("model.bin", "model four");
    env.dvt(&["add", "model.bin"]).ok();
    env.dvt(&["push"]).ok();
    env.commit("v4");
    let r = env.dvt(&["tag", "v4", "--push", &url]).ok();
    assert!(r.stdout.contains("pushed tag `v4`"), "{}", r.stdout);
    assert_eq!(
        env.git(&["--git-dir", git_dir, "cat-file", "-t", "v4"]).stdout.trim(),
        "tag"
    );
    env.git(&["--git-dir", git_dir, "fsck", "--strict"]);

    // Another tag of that name there: refused, the tag here stays.
    env.git(&["--git-dir", git_dir, "tag", "v5", "v3"]);
    let r = env.dvt(&["tag", "v5", "--push", &url]).fails();
    assert!(
        r.stderr.contains(&format!(
            "tag `v5` is made here, but not pushed to `{url}`: it has another tag"
        )),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("git push"), "{}", r.stderr);
    assert_eq!(env.git(&["cat-file", "-t", "v5"]).stdout.trim(), "tag");
    // A git remote that does not exist is found out before the tag is made.
    let r = env.dvt(&["tag", "v6", "--push", "nowhere"]).fails();
    assert!(r.stderr.contains("`nowhere`: neither a remote"), "{}", r.stderr);
    assert!(env.git(&["tag", "-l", "v6"]).stdout.is_empty());
}

#[test]
fn hooks_check_out_data_on_git_checkout_and_chain_existing_hooks() {
    let Versions { env, _remote } = versions();
    let log = env.root.parent().unwrap().join("user-hook.log");
    env.write(
        ".git/hooks/post-checkout",
        format!("#!/bin/sh\necho \"$3\" >> '{}'\n", log.display()),
    );
    env.run("chmod", &["+x", ".git/hooks/post-checkout"]).ok();
    let r = env.dvt(&["install-hooks"]).ok();
    assert!(r.stdout.contains("post-checkout.pre-dvt"), "{}", r.stdout);

    env.git_with_dvt(&["checkout", "-q", "v1"]).ok();
    assert_eq!(env.read("data/a.csv"), b"t,v\n0,1\n");
    assert_eq!(env.read("data/b.csv"), b"t,v\n0,2\n");
    assert!(!env.exists("data/sub/c.csv"));
    assert_eq!(env.read("model.bin"), b"model one");
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "1\n",
        "the user's hook ran first"
    );

    // A single-file checkout does not check data out.
    env.write("model.bin", "scratch");
    env.git_with_dvt(&["checkout", "v2", "--", "data.dvt"]).ok();
    assert_eq!(env.read("model.bin"), b"scratch");
    assert_eq!(env.read("data/a.csv"), b"t,v\n0,1\n", "file checkout leaves data alone");

    // Unrecorded work is not overwritten by the hook: it says so and checks out
    // the rest (git has switched already), and git's checkout still succeeds.
    let r = env.git_with_dvt(&["checkout", "-q", "-f", "main"]).ok();
    assert!(
        r.stderr
            .contains("dvt: left `model.bin` as it is (changes no pointer records)")
            && r.stderr.contains("dvt: checked out 2 paths"),
        "{}",
        r.stderr
    );
    assert_eq!(env.read("model.bin"), b"scratch", "unsaved work kept");
    assert_eq!(env.read("data/a.csv"), b"t,v\n0,1\n1,1\n2,1\n");
    env.dvt(&["checkout", "--force"]).ok();
    assert_ne!(env.read("model.bin"), b"scratch");

    // DVC's name for it, `install`, is the same command.
    env.dvt(&["install", "--uninstall"]).ok();
    let restored = std::fs::read_to_string(env.path(".git/hooks/post-checkout")).unwrap();
    assert!(restored.contains("user-hook.log"), "{restored}");
    assert!(!env.exists(".git/hooks/pre-push"));
}

/// git deletes the files that the old branch tracked and the new one does not;
/// the hooks do the same for data (a pointer's, a stage's out), where nothing is
/// lost, so that `git add -A` on the new branch does not commit it.
#[test]
fn switching_away_from_a_branch_removes_the_data_only_it_tracked() {
    let env = TestEnv::new();
    env.dvt(&["install-hooks"]).ok();
    env.write("params.txt", "p\n");
    env.write("keep/base.csv", "b\n");
    env.dvt(&["add", "keep"]).ok();
    env.commit("main");
    env.git(&["checkout", "-qb", "exp"]);
    env.write("data/raw/a.csv", "a\n");
    env.dvt(&["add", "data/raw"]).ok();
    env.write("notes/n.txt", "mine\n");
    env.dvt(&["add", "notes"]).ok();
    env.dvt(&[
        "stage",
        "add",
        "-n",
        "report",
        "-d",
        "params.txt",
        "-o",
        "out/report.txt",
        "mkdir -p out && cp params.txt out/report.txt",
    ])
    .ok();
    env.dvt(&["repro"]).ok();
    env.commit("exp");
    // Changed since exp recorded it: stays, named.
    env.write("notes/n.txt", "mine, edited\n");

    let r = env.git_with_dvt(&["checkout", "-q", "main"]).ok();
    assert!(
        r.stderr
            .contains("dvt: removed `data/raw`, `out/report.txt`: tracked at ")
            && r.stderr.contains("dvt: left `notes` in place (tracked at ")
            && r.stderr.contains(
                "changes not recorded there): `git add -A` would now commit it: delete it, or track it here with `dvt add notes`"
            ),
        "{}",
        r.stderr
    );
    // Emptied directories go too, as git's do; main's data is untouched.
    assert!(!env.exists("data") && !env.exists("out"));
    assert_eq!(env.read("notes/n.txt"), b"mine, edited\n");
    assert_eq!(env.read("keep/base.csv"), b"b\n");
    env.git(&["add", "-A"]);
    let staged = env.git(&["diff", "--cached", "--name-only"]).stdout;
    assert_eq!(staged.trim(), "notes/n.txt");
    // The pre-commit hook stops that commit: nothing here tracks `notes` now.
    let r = env.git_with_dvt(&["commit", "-qm", "notes into git"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("dvt: the commit stops here: git's index holds data that dvt tracked at ")
            && r.stderr.contains("`git rm -r --cached notes`"),
        "{}",
        r.stderr
    );
    env.git(&["reset", "-q"]);
    // A commit of something else goes through.
    env.write("other.txt", "o\n");
    env.git(&["add", "other.txt"]);
    env.git_with_dvt(&["commit", "-qm", "other"]).ok();
    std::fs::remove_dir_all(env.path("notes")).unwrap();

    // Back on exp, the cache checks it all out again.
    let r = env.git_with_dvt(&["checkout", "-q", "exp"]).ok();
    assert!(r.stderr.contains("dvt: checked out 3 paths"), "{}", r.stderr);
    assert_eq!(env.read("data/raw/a.csv"), b"a\n");
    assert_eq!(env.read("out/report.txt"), b"p\n");
    assert_eq!(env.read("notes/n.txt"), b"mine\n");

    // Data that the new branch tracks from higher up, or that git tracks there,
    // is the new branch's: left alone.
    env.git_with_dvt(&["checkout", "-qb", "whole", "main"]).ok();
    env.write("data/raw/a.csv", "a\n");
    env.write("data/other.csv", "o\n");
    env.dvt(&["add", "data"]).ok();
    std::fs::create_dir_all(env.path("out")).unwrap();
    env.write("out/report.txt", "p\n");
    env.git(&["add", "-f", "out/report.txt"]);
    // Into git on purpose: past the pre-commit hook, which stops it otherwise.
    let r = env.git_with_dvt(&["commit", "-qm", "whole"]);
    assert!(r.code == 1 && r.stderr.contains("out/report.txt"), "{}", r.stderr);
    env.git(&["add", "-A"]);
    env.git(&["commit", "-qm", "whole", "--no-verify"]);
    env.git_with_dvt(&["checkout", "-q", "exp"]).ok();
    let r = env.git_with_dvt(&["checkout", "-q", "whole"]).ok();
    assert!(r.stderr.contains("dvt: removed `notes`: tracked at "), "{}", r.stderr);
    assert_eq!(env.read("data/raw/a.csv"), b"a\n");
    assert_eq!(env.read("out/report.txt"), b"p\n");
    // notes: exp's, with nothing changed, the cache has it.
    assert!(!env.exists("notes"));

    // A new branch at the same commit switches no tree: data whose pointer was
    // just removed (not committed) stays, as git leaves a file `git rm --cached` left.
    env.git_with_dvt(&["checkout", "-q", "exp"]).ok();
    env.dvt(&["remove", "notes.dvt"]).ok();
    let r = env.git_with_dvt(&["checkout", "-q", "-b", "side"]).ok();
    assert!(!r.stderr.contains("removed"), "{}", r.stderr);
    assert_eq!(env.read("notes/n.txt"), b"mine\n");

    // A pointer the new commit has but that does not parse (conflict markers)
    // still claims its path.
    env.write("notes.dvt", "<<<<<<< HEAD\n");
    env.git(&["add", "notes.dvt"]);
    env.git(&["commit", "-qm", "broken pointer"]);
    env.git_with_dvt(&["checkout", "-q", "exp"]).ok();
    let r = env.git_with_dvt(&["checkout", "-q", "side"]);
    assert!(
        !r.stderr.contains("removed") && r.stderr.contains("`git checkout --ours notes.dvt`"),
        "{}",
        r.stderr
    );
    assert_eq!(env.read("notes/n.txt"), b"mine\n");
}

/// A repository on `main` after `git checkout main` (no hooks) from branch
/// `exp`, whose commit (returned, short) tracks `d` and `m.bin`, both left in
/// the workspace.
fn left_behind_by_a_switch() -> (TestEnv, String) {
    let env = TestEnv::new();
    env.write("a.txt", "a\n");
    env.commit("init");
    env.git(&["checkout", "-qb", "exp"]);
    env.write("d/x.csv", "x\n");
    env.write("m.bin", "m\n");
    env.dvt(&["add", "d", "m.bin"]).ok();
    env.commit("exp");
    let exp = env.git(&["rev-parse", "--short=7", "HEAD"]).stdout.trim().to_string();
    env.git(&["checkout", "-q", "main"]);
    (env, exp)
}

/// Without hooks, `git checkout` then `dvt checkout` (as DVC users type it)
/// does what the hooks do, from HEAD's reflog: only when the last thing that
/// moved HEAD was a switch or a merge, and only for a checkout of everything.
#[test]
fn checkout_after_a_git_checkout_without_hooks_removes_what_the_old_branch_left() {
    let (env, _) = left_behind_by_a_switch();
    assert!(env.exists("d/x.csv") && env.exists("m.bin"));
    // Targets: that data only.
    env.dvt(&["checkout", "a.txt"]).fails();
    assert!(env.exists("d/x.csv"));
    env.write("m.bin", "m, edited\n");
    let r = env.dvt(&["checkout", "--json"]).ok();
    let report = r.json();
    assert_eq!(
        report["left_behind"]["removed"],
        serde_json::json!(["d"]),
        "{}",
        r.stdout
    );
    assert_eq!(report["left_behind"]["kept"][0]["path"], "m.bin", "{}", r.stdout);
    assert!(!env.exists("d") && env.exists("m.bin"));

    // After a commit, the switch is history: nothing more is removed.
    std::fs::remove_file(env.path("m.bin")).unwrap();
    env.write("b.txt", "b\n");
    env.commit("more");
    env.write("d/x.csv", "x\n");
    let r = env.dvt(&["checkout"]).ok();
    assert!(!r.stderr.contains("removed"), "{}", r.stderr);
    assert!(env.exists("d/x.csv"));
    std::fs::remove_dir_all(env.path("d")).unwrap();

    // `git pull` of a commit that stops tracking data, then `dvt pull`.
    let store = env.root.parent().unwrap().join("store");
    env.dvt(&["remote", "add", "-d", "store", store.to_str().unwrap()]).ok();
    env.git(&["checkout", "-q", "exp"]);
    env.dvt(&["checkout"]).ok();
    env.dvt(&["push"]).ok();
    env.commit("remote");
    let mate = env.clone_repo();
    mate.git(&["checkout", "-q", "exp"]);
    mate.dvt(&["pull"]).ok();
    env.dvt(&["remove", "d.dvt", "--outs"]).ok();
    env.commit("drop d");
    mate.git(&["pull", "-q", "origin", "exp"]);
    assert!(mate.exists("d/x.csv"));
    let r = mate.dvt(&["pull"]).ok();
    assert!(r.stderr.contains("dvt: removed `d`: tracked at "), "{}", r.stderr);
    assert!(!mate.exists("d") && mate.exists("m.bin"));
}

/// No hook runs for `git reset`, `git revert` or `git cherry-pick`, nor for
/// `git checkout` without hooks: `status` names the data such a move left,
/// which `git add -A` would commit, and says what deletes or keeps it.
#[test]
fn status_names_the_data_the_last_git_move_left_behind() {
    let (env, exp) = left_behind_by_a_switch();
    env.write("m.bin", "m, edited\n");
    let r = env.dvt(&["status"]).ok();
    assert!(
        r.stderr.contains(&format!(
            "warning: `git checkout` left in the workspace data that {exp} tracked: nothing tracks it now and git \
             does not ignore it (`git add -A` would commit it): d, m.bin"
        )),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("hint: `dvt checkout` deletes d (the cache keeps a copy); m.bin holds what"),
        "{}",
        r.stderr
    );
    let j = env.dvt(&["status", "--json"]).ok().json();
    assert_eq!(j["left_behind"][0]["by"], "checkout", "{j}");
    assert_eq!(j["left_behind"][1]["as_recorded"], false, "{j}");
    // What git ignores would not be committed: not named.
    env.write(".git/info/exclude", "/d\n/m.bin\n");
    assert!(!env.dvt(&["status"]).ok().stderr.contains("warning"));
    env.write(".git/info/exclude", "");

    // A reset, with the data as recorded: deleting it loses nothing.
    env.git(&["checkout", "-q", "exp"]);
    env.dvt(&["checkout", "--force"]).ok();
    env.git(&["reset", "-q", "--hard", "main"]);
    let r = env.dvt(&["status"]).ok();
    assert!(
        r.stderr.contains("`git reset` left in the workspace data"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("hint: `rm -r d m.bin` loses nothing"), "{}", r.stderr);
    // `dvt checkout` deletes nothing after a reset (`--soft` looks the same).
    env.dvt(&["checkout"]).ok();
    assert!(env.exists("d/x.csv") && env.exists("m.bin"));
    // Once git holds it (the user meant it), it is git's.
    env.git(&["add", "m.bin"]);
    let r = env.dvt(&["status"]).ok();
    assert!(
        r.stderr.contains("data that ")
            && r.stderr.contains(
                "tracked: nothing tracks it now and git does not ignore it (`git add -A` would commit it): d\n"
            ),
        "{}",
        r.stderr
    );
    // After a commit, the move is history.
    env.git(&["reset", "-q"]);
    env.write("b.txt", "b\n");
    env.commit("more");
    assert!(!env.dvt(&["status"]).ok().stderr.contains("warning"));

    // Many paths: ten named, then a count.
    std::fs::remove_dir_all(env.path("d")).unwrap();
    std::fs::remove_file(env.path("m.bin")).unwrap();
    env.git(&["checkout", "-qb", "many"]);
    let files: Vec<String> = (0..12).map(|i| format!("f{i:02}.bin")).collect();
    for f in &files {
        env.write(f, f.as_str());
    }
    let mut add = vec!["add"];
    add.extend(files.iter().map(String::as_str));
    env.dvt(&add).ok();
    env.commit("many");
    env.git(&["checkout", "-q", "main"]);
    let r = env.dvt(&["status"]).ok();
    assert!(
        r.stderr
            .contains("f08.bin, f09.bin and 2 more (`dvt status --json` lists them)")
            && r.stderr.contains("`dvt checkout` deletes 12 of them")
            && r.stderr.contains("`dvt add PATH`"),
        "{}",
        r.stderr
    );
    assert_eq!(
        env.dvt(&["status", "--json"]).ok().json()["left_behind"]
            .as_array()
            .unwrap()
            .len(),
        12
    );
}

/// A teammate stops tracking a dataset: after `git pull`, the post-merge hook
/// deletes it here too (as git deletes a file another commit removed).
#[test]
fn pulling_a_commit_that_stops_tracking_data_removes_it_here() {
    let env = TestEnv::new();
    let store = env.root.parent().unwrap().join("store");
    env.dvt(&["remote", "add", "-d", "store", store.to_str().unwrap()]).ok();
    env.write("old/a.csv", "a\n");
    env.write("model.bin", "m\n");
    env.dvt(&["add", "old", "model.bin"]).ok();
    env.dvt(&["push"]).ok();
    env.commit("data");
    let mate = env.clone_repo();
    mate.dvt(&["install-hooks"]).ok();
    mate.dvt(&["pull"]).ok();

    env.dvt(&["remove", "old.dvt", "--outs"]).ok();
    env.commit("drop old");
    let r = mate.git_with_dvt(&["pull", "-q"]).ok();
    assert!(r.stderr.contains("dvt: removed `old`: tracked at "), "{}", r.stderr);
    assert!(!mate.exists("old"));
    assert_eq!(mate.read("model.bin"), b"m\n");

    // What the cache lacks (a `gc` since, say) stays, named: deleting it would lose it.
    mate.remove_object(blake3::hash(b"m\n").to_hex().as_str());
    env.dvt(&["remove", "model.bin.dvt", "--outs"]).ok();
    env.commit("drop model");
    let r = mate.git_with_dvt(&["pull", "-q"]).ok();
    assert!(
        r.stderr.contains("dvt: left `model.bin` in place (tracked at ") && r.stderr.contains("data the cache lacks)"),
        "{}",
        r.stderr
    );
    assert_eq!(mate.read("model.bin"), b"m\n");
}

/// `hooks.fetch`: `git pull` of a teammate's new data version brings the
/// data too, as git-lfs does; without it the hook names what the cache lacks.
/// A remote that is down leaves git's work done and says so.
#[test]
fn with_hooks_fetch_git_pull_and_git_checkout_bring_the_data() {
    let env = TestEnv::new();
    let store = env.root.parent().unwrap().join("store");
    env.dvt(&["remote", "add", "-d", "store", store.to_str().unwrap()]).ok();
    env.write("data/a.csv", "v1\n");
    env.dvt(&["add", "data"]).ok();
    env.dvt(&["push"]).ok();
    env.commit("v1");
    let mate = env.clone_repo();
    let r = mate.dvt(&["install-hooks"]).ok();
    assert!(
        r.stderr.contains("`dvt config --local hooks.fetch true`"),
        "{}",
        r.stderr
    );
    mate.dvt(&["pull"]).ok();

    env.write("data/a.csv", "v2\n");
    env.dvt(&["add", "data"]).ok();
    env.dvt(&["push"]).ok();
    env.commit("v2");
    let r = mate.git_with_dvt(&["pull", "-q"]).ok();
    assert!(r.stderr.contains("is not in the cache"), "{}", r.stderr);
    assert_eq!(mate.read("data/a.csv"), b"v1\n");

    mate.dvt(&["config", "--local", "hooks.fetch", "true"]).ok();
    mate.git_with_dvt(&["checkout", "-q", "HEAD~1"]).ok();
    mate.git_with_dvt(&["checkout", "-q", "-"]).ok();
    assert_eq!(mate.read("data/a.csv"), b"v2\n");
    env.write("data/b.csv", "b\n");
    env.dvt(&["add", "data"]).ok();
    env.dvt(&["push"]).ok();
    env.commit("v3");
    let r = mate.git_with_dvt(&["pull", "-q"]).ok();
    assert!(r.stderr.contains("dvt: fetched 2 objects"), "{}", r.stderr);
    assert_eq!(mate.read("data/b.csv"), b"b\n");
    assert!(mate.dvt(&["status"]).ok().stdout.contains("up to date"));

    // The remote gone: git's pull stands, and the hook says what it could not do.
    std::fs::rename(&store, store.with_extension("gone")).unwrap();
    env.write("data/c.csv", "c\n");
    env.dvt(&["add", "data"]).ok();
    env.commit("v4");
    let r = mate.git_with_dvt(&["pull", "-q"]).ok();
    assert!(
        r.stderr
            .contains("dvt: data not fetched: remote `store`: the directory")
            && r.stderr.contains("is not in the cache (needed for `data`)"),
        "{}",
        r.stderr
    );
    assert!(mate.exists("data.dvt") && !mate.exists("data/c.csv"));
    assert!(!mate.dvt(&["install-hooks"]).ok().stderr.contains("hooks.fetch"));
    let bad = mate.dvt(&["config", "--local", "hooks.fetch", "yes"]).fails();
    assert!(
        bad.stderr.contains("must be true or false, not `yes`"),
        "{}",
        bad.stderr
    );
}

/// A branch whose data has an empty directory more (or a file where the other
/// has a directory): switching back and forth checks each version out, with no
/// `--force`. The empty directory held nothing to lose.
#[test]
fn switching_branches_takes_empty_directories_and_file_for_directory_swaps_along() {
    let env = TestEnv::new();
    env.dvt(&["install-hooks"]).ok();
    env.write("data/a.csv", "a\n");
    env.write("data/x", "a file on main\n");
    env.dvt(&["add", "data"]).ok();
    env.git(&["add", "-A"]);
    env.git(&["commit", "-qm", "main"]);
    env.git(&["checkout", "-qb", "side"]);
    std::fs::create_dir(env.path("data/incoming")).unwrap();
    std::fs::remove_file(env.path("data/x")).unwrap();
    env.write("data/x/inner.txt", "a directory on side\n");
    env.dvt(&["add", "data"]).ok();
    env.git(&["add", "-A"]);
    env.git(&["commit", "-qm", "side"]);
    for (branch, x, incoming) in [
        ("main", "data/x", false),
        ("side", "data/x/inner.txt", true),
        ("main", "data/x", false),
    ] {
        let r = env.git_with_dvt(&["checkout", "-q", branch]).ok();
        assert!(!r.stderr.contains("not checked out"), "{branch}: {}", r.stderr);
        assert!(env.path(x).is_file(), "{branch}: {x}");
        assert_eq!(env.path("data/incoming").is_dir(), incoming, "{branch}");
        assert!(env.dvt(&["status"]).ok().stdout.contains("up to date"), "{branch}");
    }
}

#[test]
fn hooks_do_nothing_in_a_repo_without_dvt_and_pre_push_pushes() {
    let Versions { env, _remote } = versions();
    env.dvt(&["install-hooks"]).ok();
    // pre-push: new data reaches the remote before git pushes.
    let bare = tempfile::tempdir().unwrap();
    Versions::bare_git(&env, bare.path());
    env.write("model.bin", "model four");
    env.dvt(&["add", "model.bin"]).ok();
    env.git(&["commit", "-q", "-am", "four"]);
    env.git_with_dvt(&["push", "-q", bare.path().to_str().unwrap(), "main"])
        .ok();
    let id = blake3::hash(b"model four").to_hex().to_string();
    assert!(Store::at(_remote.path()).has(&id));

    // Later pushes send every new commit's data, not only the tip's: each commit a
    // colleague checks out has it. (A first push, as above, sends the tip's only.)
    env.git(&["remote", "add", "origin", bare.path().to_str().unwrap()]);
    env.git_with_dvt(&["push", "-q", "-u", "origin", "main"]).ok();
    for model in ["model five", "model six"] {
        env.write("model.bin", model);
        env.dvt(&["add", "model.bin"]).ok();
        env.git(&["commit", "-q", "-am", model]);
    }
    let r = env.git_with_dvt(&["push", "-q", "origin", "main"]).ok();
    assert!(r.stderr.contains("dvt: pushed 2 objects"), "{}", r.stderr);
    for model in ["model five", "model six"] {
        let id = blake3::hash(model.as_bytes()).to_hex().to_string();
        assert!(Store::at(_remote.path()).has(&id), "{model}");
    }

    // Without .dvt, every hook is a no-op.
    std::fs::rename(env.path(".dvt"), env.path("dvt-moved")).unwrap();
    let r = env.git_with_dvt(&["checkout", "-q", "v1"]).ok();
    assert!(r.stderr.is_empty(), "{}", r.stderr);
    assert_eq!(env.read("model.bin"), b"model six");
}

/// A monorepo with a dvt project per directory (`init --subdir`): each project
/// installs the hooks, and the scripts call dvt for both, so `git checkout`
/// switches the data of both and the merge driver merges each project's
/// directory from that project's cache. Uninstalling one keeps the other's.
#[test]
fn hooks_serve_every_dvt_project_of_a_monorepo() {
    let env = TestEnv::bare();
    env.git(&["init", "-q", "-b", "main"]);
    let projects = ["vision", "speech"];
    for p in projects {
        env.write(&format!("{p}/d/a.txt"), "one\n");
        let dir = env.path(p);
        env.dvt_in(&dir, &["init", "--subdir"]).ok();
        env.dvt_in(&dir, &["add", "d"]).ok();
        env.dvt_in(&dir, &["install-hooks"]).ok();
    }
    env.git(&["add", "-A"]);
    env.git(&["commit", "-qm", "one"]);
    let edit = |file: &str, text: &str| {
        for p in projects {
            env.write(&format!("{p}/d/{file}"), text);
            env.dvt_in(&env.path(p), &["add", "d"]).ok();
        }
    };
    env.git_with_dvt(&["checkout", "-q", "-b", "feature"]).ok();
    edit("b.txt", "from feature\n");
    env.git(&["commit", "-qam", "feature"]);
    env.git_with_dvt(&["checkout", "-q", "main"]).ok();
    for p in projects {
        assert!(
            !env.exists(&format!("{p}/d/b.txt")),
            "{p}: the hook checked out main's data"
        );
    }
    edit("c.txt", "from main\n");
    env.git(&["commit", "-qam", "main"]);
    let r = env.git_with_dvt(&["merge", "-q", "feature", "-m", "merge"]).ok();
    for p in projects {
        assert!(
            r.stderr.contains(&format!(
                "dvt: merged `{p}/d.dvt`: the data of both branches, file by file"
            )),
            "{}",
            r.stderr
        );
        assert_eq!(env.read(&format!("{p}/d/b.txt")), b"from feature\n", "{p}");
        assert_eq!(env.read(&format!("{p}/d/c.txt")), b"from main\n", "{p}");
    }

    // One project leaves; the other's hooks go on.
    env.dvt_in(&env.path("vision"), &["install-hooks", "--uninstall"]).ok();
    env.git_with_dvt(&["checkout", "-q", "HEAD~1"]).ok();
    assert!(!env.exists("speech/d/b.txt"), "speech's hook still runs");
    assert!(env.exists("vision/d/b.txt"), "vision's hook is gone");
    let hook = String::from_utf8(env.read(".git/hooks/post-checkout")).unwrap();
    assert!(
        hook.contains("dvt -C 'speech' git-hook") && !hook.contains("vision"),
        "{hook}"
    );
    env.dvt_in(&env.path("speech"), &["install-hooks", "--uninstall"]).ok();
    assert!(!env.exists(".git/hooks/post-checkout"));
    assert_eq!(env.run("git", &["config", "--get", "merge.dvt.driver"]).code, 1);
}

/// A commit whose pointer file is malformed stays so: history is not rewritten.
/// `push -A` and `fetch -A` move the data of every other pointer, warn about
/// that one, and succeed, rather than fail on every run from then on; a command
/// that reads that revision says what is wrong and that no edit mends it.
#[test]
fn a_malformed_pointer_in_history_does_not_stop_transfers_of_all_commits() {
    let env = TestEnv::new();
    let remote = tempfile::tempdir().unwrap();
    env.dvt(&["remote", "add", "-d", "store", remote.path().to_str().unwrap()])
        .ok();
    env.write("a.csv", "first\n");
    env.write("b.csv", "kept\n");
    env.dvt(&["add", "a.csv", "b.csv"]).ok();
    env.commit("first");
    env.write("a.csv.dvt", "garbage\n");
    env.commit("broken by hand");
    let broken = env.git(&["rev-parse", "--short", "HEAD"]).stdout.trim().to_string();
    env.write("a.csv", "second\n");
    std::fs::remove_file(env.path("a.csv.dvt")).unwrap();
    env.dvt(&["add", "a.csv"]).ok();
    env.commit("mended");

    let r = env.dvt(&["push", "-A"]).ok();
    assert!(
        r.stderr
            .contains(&format!("warning: invalid pointer file `{broken}:a.csv.dvt`: line 1"))
            && r.stderr.contains("its data is left out"),
        "{}",
        r.stderr
    );
    let json = env.dvt(&["push", "-A", "--json"]).ok().json();
    assert_eq!(json["unreadable"].as_array().unwrap().len(), 1, "{json}");
    for text in ["first\n", "second\n", "kept\n"] {
        let id = blake3::hash(text.as_bytes()).to_hex().to_string();
        assert!(Store::at(remote.path()).has(&id), "{text}");
    }
    let clone = env.clone_repo();
    let r = clone.dvt(&["fetch", "-A"]).ok();
    assert!(r.stderr.contains("its data is left out"), "{}", r.stderr);
    clone.dvt(&["checkout"]).ok();
    assert_eq!(clone.read("a.csv"), b"second\n");

    let r = env.dvt(&["cat", "a.csv", "--rev", &broken]).fails();
    assert!(
        r.stderr
            .contains("hint: a commit holds it as it is, and history is not rewritten"),
        "{}",
        r.stderr
    );
}

impl Versions {
    fn bare_git(env: &TestEnv, dir: &std::path::Path) {
        env.git(&["init", "-q", "--bare", dir.to_str().unwrap()]);
    }
}

#[test]
fn gc_keeps_what_kept_revisions_need_and_drops_the_rest() {
    let Versions { env, _remote } = versions();
    let mid = blake3::hash(b"t,v\n0,1\n1,1\n").to_hex().to_string();
    let v1 = blake3::hash(b"t,v\n0,1\n").to_hex().to_string();
    // Uncommitted work is referenced by the workspace pointer: never deleted.
    env.write("model.bin", "uncommitted model");
    env.dvt(&["add", "model.bin"]).ok();
    let wip = blake3::hash(b"uncommitted model").to_hex().to_string();

    let r = env.dvt(&["gc"]).fails();
    assert!(r.stderr.contains("--force"), "no terminal to ask: {}", r.stderr);
    let plan = env.dvt(&["gc", "--all-tags", "--dry-run", "--json"]).ok().json();
    assert_eq!(plan["deleted"], false);
    assert!(env.has_object(&mid), "dry run deletes nothing");

    env.dvt(&["gc", "--all-tags", "-f"]).ok();
    assert!(env.has_object(&v1), "tagged v1 kept");
    assert!(!env.has_object(&mid), "untagged intermediate dropped");
    assert!(env.has_object(&wip), "the workspace's data kept");
    for rev in ["v1", "v2"] {
        env.dvt(&["cat", "data/a.csv", "--rev", rev]).ok();
    }
    // The remote still has it; gc of the remote drops it there too.
    assert!(Store::at(_remote.path()).has(&mid));
    env.dvt(&["gc", "-T", "-r", "-f", "--grace", "0"]).ok();
    assert!(!Store::at(_remote.path()).has(&mid));
    assert!(Store::at(_remote.path()).has(&v1));

    // Plain gc keeps only HEAD and the workspace: v1 goes, the workspace stays.
    // The plan warns that tag v1's data goes, and names the flag that keeps it.
    let plan = env.dvt(&["gc", "--dry-run", "--json"]).ok().json();
    let needed = &plan["plan"]["needed_by"];
    assert!(
        needed
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["kind"] == "tag" && n["name"] == "v1" && n["objects"].as_u64() > Some(0)),
        "{needed}"
    );
    let r = env.dvt(&["gc", "-f"]).ok();
    assert!(
        r.stderr.contains("warning: this deletes data of tag `v1` ("),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("`--all-tags` (`-T`) keeps them"), "{}", r.stderr);
    assert!(!env.has_object(&v1));
    assert!(env.has_object(&wip));
    env.dvt(&["checkout", "--force"]).ok();
    assert!(
        env.dvt(&["status"]).ok().stdout.contains("unchanged")
            || env.dvt(&["status", "--json"]).ok().stdout.contains("unchanged")
    );
}

/// A revision whose pointers cannot be read stops `gc -A` before it deletes
/// anything; DVC's `--skip-failed` skips it, with a warning naming it, and
/// goes on (what only that revision needed is deleted).
#[test]
fn gc_skip_failed_skips_a_revision_whose_pointers_cannot_be_read() {
    let env = TestEnv::new();
    env.write("a.csv", "first\n");
    env.dvt(&["add", "a.csv"]).ok();
    env.commit("first");
    let first = blake3::hash(b"first\n").to_hex().to_string();
    // A commit with a pointer no dvt can read, fixed in the next one.
    env.write(
        "b.csv.dvt",
        "version = 1\npath = \"b.csv\"\nkind = \"file\"\nid = \"nope\"\n",
    );
    env.commit("broken");
    let broken = env.git(&["rev-parse", "--short=7", "HEAD"]).stdout.trim().to_string();
    std::fs::remove_file(env.path("b.csv.dvt")).unwrap();
    env.write("a.csv", "second\n");
    env.dvt(&["add", "a.csv"]).ok();
    env.commit("second");

    let r = env.dvt(&["gc", "-A", "-f"]).fails();
    assert!(r.stderr.contains("b.csv.dvt"), "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!(
            "gc stopped before deleting anything: the pointers of revision {broken} cannot be read"
        )) && r.stderr.contains("--skip-failed"),
        "{}",
        r.stderr
    );
    assert!(env.has_object(&first));
    let r = env.dvt(&["gc", "-A", "-f", "--skip-failed"]).ok();
    assert!(
        r.stderr.contains(&format!(
            "dvt: warning: skipped revision {broken} (--skip-failed), whose pointers could not be read:"
        )) && r.stderr.contains("b.csv.dvt"),
        "{}",
        r.stderr
    );
    // The other revisions were read: the first commit's data is kept.
    assert!(r.stdout.contains("Nothing to delete"), "{}", r.stdout);
    assert!(env.has_object(&first));
    let j = env
        .dvt(&["gc", "-A", "--skip-failed", "--dry-run", "--json"])
        .ok()
        .json();
    assert_eq!(j["plan"]["skipped"][0]["rev"], broken.as_str(), "{j}");
}

/// HEAD's directory whose manifest the cache lost (a `gc` of a workspace
/// that had moved on, then a commit of the old pointer): gc cannot know what
/// the directory holds, so it stops, deleting nothing, names the revision and
/// says how out, whether the remote does not exist yet or lacks the manifest;
/// once the remote has it, gc reads it from there.
#[test]
fn gc_stops_at_a_kept_directory_whose_manifest_is_nowhere() {
    let env = TestEnv::new();
    let store = env.root.parent().unwrap().join("store");
    env.dvt(&["remote", "add", "-d", "store", store.to_str().unwrap()]).ok();
    env.write("d/a.csv", "a\n");
    env.write("d/b.csv", "b\n");
    env.dvt(&["add", "d"]).ok();
    env.commit("v1");
    let head = env.git(&["rev-parse", "--short=7", "HEAD"]).stdout.trim().to_string();
    let pointer = std::fs::read_to_string(env.path("d.dvt")).unwrap();
    let manifest = pointer.split('"').find(|s| s.len() == 64).unwrap().to_string();
    env.remove_object(&manifest);
    env.write("d/b.csv", "b, edited\n");
    env.dvt(&["add", "d"]).ok();
    let before = env.object_ids();

    for remote_state in ["not there", "empty"] {
        if remote_state == "empty" {
            std::fs::create_dir(&store).unwrap();
        }
        let r = env.dvt(&["gc", "-f"]).fails();
        assert!(
            r.stderr.contains(&format!(
                "gc stopped before deleting anything: the pointers of revision {head} cannot be read"
            )) && r.stderr.contains(&manifest)
                && r.stderr.contains(&format!("dvt fetch --rev {head}"))
                && r.stderr.contains("--skip-failed"),
            "remote {remote_state}: {}",
            r.stderr
        );
        assert_eq!(env.object_ids(), before, "remote {remote_state}");
    }
    // With the manifest on the remote, gc reads it there and keeps HEAD's files.
    env.git(&["stash", "-q"]);
    env.write("d/b.csv", "b\n");
    let a = blake3::hash(b"a\n").to_hex().to_string();
    env.dvt(&["add", "d"]).ok();
    env.dvt(&["push"]).ok();
    env.git(&["stash", "pop", "-q"]);
    env.dvt(&["add", "d"]).ok();
    env.remove_object(&manifest);
    env.dvt(&["gc", "-f"]).ok();
    assert!(env.has_object(&a));
    assert!(env.has_object(blake3::hash(b"b\n").to_hex().as_ref()));
}

/// DVC's `gc --rev REV -n N`, `--date` and `--not-in-remote`: what each keeps.
#[test]
fn gc_keeps_commits_back_from_a_rev_commits_since_a_day_and_what_the_remote_lacks() {
    let env = TestEnv::new();
    let store = env.root.parent().unwrap().join("store");
    env.dvt(&["remote", "add", "-d", "store", store.to_str().unwrap()]).ok();
    let mut ids = Vec::new();
    for (i, month) in ["01", "02", "03", "04"].iter().enumerate() {
        let content = format!("model {}", i + 1);
        env.write("model.bin", &content);
        env.dvt(&["add", "model.bin"]).ok();
        env.commit_at(&format!("v{}", i + 1), &format!("2026-{month}-01T12:00:00Z"));
        ids.push(blake3::hash(content.as_bytes()).to_hex().to_string());
    }
    let plan_files = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["gc", "--dry-run", "--json"];
        all.extend(args);
        let j = env.dvt(&all).ok().json();
        let mut files: Vec<String> = j["plan"]["cache"]["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        files.sort();
        files
    };
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    // -n: HEAD~1 and its parent are kept, with HEAD.
    assert_eq!(plan_files(&["--rev", "HEAD~1", "-n", "2"]), [ids[0].clone()]);
    assert_eq!(
        plan_files(&["--rev", "HEAD~1"]),
        sorted(vec![ids[0].clone(), ids[1].clone()])
    );
    let r = env.dvt(&["gc", "-n", "2", "--dry-run"]);
    assert_eq!(r.code, 2, "-n needs --rev: {}", r.stderr);
    // --date: commits of that day (from midnight UTC) and after.
    assert_eq!(
        plan_files(&["--date", "2026-03-01"]),
        sorted(vec![ids[0].clone(), ids[1].clone()])
    );
    assert_eq!(
        plan_files(&["--date", "2026-02-02"]),
        sorted(vec![ids[0].clone(), ids[1].clone()])
    );
    assert_eq!(plan_files(&["--date", "2026-02-01"]), [ids[0].clone()]);
    let r = env.dvt(&["gc", "--date", "2026-02-30", "--dry-run"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("`2026-02-30` is not a date as YYYY-MM-DD"),
        "{}",
        r.stderr
    );

    // --not-in-remote: only v2 is on the remote besides HEAD's v4, so only v2 goes.
    env.dvt(&["push"]).ok();
    env.dvt(&["push", "--rev", "HEAD~2"]).ok();
    let r = env.dvt(&["gc", "--not-in-remote", "-f"]).ok();
    assert!(r.stdout.contains("deleted 1 object"), "{}", r.stdout);
    assert!(
        r.stderr
            .contains("and 2 unreferenced objects that remote `store` lacks"),
        "{}",
        r.stderr
    );
    assert!(!env.has_object(&ids[1]));
    assert!(env.has_object(&ids[0]) && env.has_object(&ids[2]) && env.has_object(&ids[3]));
    let r = env.dvt(&["gc", "--not-in-remote", "-f"]).ok();
    assert!(
        r.stdout
            .contains("Nothing to delete: what is kept references 1 object, and remote `store` lacks the other 2."),
        "{}",
        r.stdout
    );
    // It only ever deletes from the cache: with `-r` it is refused.
    let r = env.dvt(&["gc", "--not-in-remote", "-r", "-f"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(env.has_object(&ids[0]));
    // A remote that does not exist: an error, nothing deleted.
    let r = env.dvt(&["gc", "--not-in-remote", "nosuch", "-f"]).fails();
    assert!(r.stderr.contains("no remote named `nosuch`"), "{}", r.stderr);
    assert!(env.has_object(&ids[0]));
}

/// `get` from a local repository reads the files its cache holds from there,
/// checked as they are written: a damaged object fails the get naming it, and
/// leaves nothing at the output or beside it; the intact directory arrives whole.
#[test]
fn get_from_a_local_cache_checks_each_file_it_reads_there() {
    let src = TestEnv::new();
    src.write("data/a.csv", b"t,v\n0,1\n");
    src.write("data/sub/b.csv", b"t,v\n0,2\n");
    src.write("model.bin", noise(300_000, 3));
    src.dvt(&["add", "data", "model.bin"]).ok();
    src.commit("data");
    let elsewhere = tempfile::tempdir().unwrap();
    let here = elsewhere.path();
    let repo = src.root.to_str().unwrap();
    let r = src.dvt_in(here, &["get", repo, "data"]).ok();
    assert!(r.stdout.contains("got"), "{}", r.stdout);
    assert_eq!(std::fs::read(here.join("data/sub/b.csv")).unwrap(), b"t,v\n0,2\n");
    let model = blake3::hash(&noise(300_000, 3)).to_hex().to_string();
    src.damage(&model, |b| {
        let at = b.len() - 10;
        b[at] ^= 1;
    });
    let r = src.dvt_in(here, &["get", repo, "model.bin"]).fails();
    assert!(r.stderr.contains(&model), "{}", r.stderr);
    let names: Vec<_> = std::fs::read_dir(here)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["data"], "nothing left of the failed get: {names:?}");
}

#[test]
fn get_downloads_data_of_another_repo_at_a_revision_without_tracking_it() {
    let Versions { env, _remote } = versions();
    let elsewhere = tempfile::tempdir().unwrap();
    let here = elsewhere.path();
    let src = env.root.to_str().unwrap();
    env.dvt_in(here, &["get", src, "data", "--rev", "v1"]).ok();
    assert_eq!(std::fs::read(here.join("data/a.csv")).unwrap(), b"t,v\n0,1\n");
    assert_eq!(std::fs::read(here.join("data/b.csv")).unwrap(), b"t,v\n0,2\n");
    env.dvt_in(here, &["get", src, "data/sub/c.csv", "-o", "c.csv"]).ok();
    assert_eq!(std::fs::read(here.join("c.csv")).unwrap(), b"t,v\n0,3\n");
    env.dvt_in(here, &["get", src, "data/sub", "--rev", "v2", "-o", "sub"])
        .ok();
    assert_eq!(std::fs::read(here.join("sub/c.csv")).unwrap(), b"t,v\n0,3\n");
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(here.join("c.csv")).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o644);
    let names: Vec<_> = std::fs::read_dir(here)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 3, "no scratch files left: {names:?}");

    let r = env.dvt_in(here, &["get", src, "model.bin", "-o", "c.csv"]).fails();
    assert!(r.stderr.contains("already exists"), "{}", r.stderr);
    assert!(r.stderr.contains("pass `--force` to replace it"), "{}", r.stderr);
    assert_eq!(std::fs::read(here.join("c.csv")).unwrap(), b"t,v\n0,3\n");
    // -f replaces a file with a file, a directory with a file, a file with a directory.
    env.dvt_in(here, &["get", src, "model.bin", "-o", "c.csv", "-f"]).ok();
    assert_eq!(std::fs::read(here.join("c.csv")).unwrap(), b"model two");
    env.dvt_in(here, &["get", src, "model.bin", "-o", "sub", "--force"])
        .ok();
    assert_eq!(std::fs::read(here.join("sub")).unwrap(), b"model two");
    env.dvt_in(here, &["get", src, "data", "-o", "sub", "-f"]).ok();
    assert_eq!(std::fs::read(here.join("sub/a.csv")).unwrap(), b"t,v\n0,1\n1,1\n2,1\n");
    // A failed get leaves what was there.
    let r = env
        .dvt_in(here, &["get", src, "data/zzz.csv", "-o", "c.csv", "-f"])
        .fails();
    assert!(r.stderr.contains("not tracked"), "{}", r.stderr);
    assert_eq!(std::fs::read(here.join("c.csv")).unwrap(), b"model two");
    let names: Vec<_> = std::fs::read_dir(here)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 3, "nothing set aside is left: {names:?}");
    let r = env.dvt_in(here, &["get", src, "data/zzz.csv"]).fails();
    assert!(r.stderr.contains("not tracked"), "{}", r.stderr);

    // --show-url (DVC's): where the data is on its remote, as `get-url` says
    // there, downloading nothing; a file git keeps has no such URL.
    for (path, rev) in [("model.bin", "v1"), ("data/sub/c.csv", "v2"), ("data", "v2")] {
        let shown = env
            .dvt_in(here, &["get", src, path, "--rev", rev, "--show-url", "--json"])
            .ok()
            .json();
        let there = env.dvt(&["get-url", path, "--rev", rev, "--json"]).ok().json();
        for key in ["url", "range", "remote", "id", "size", "kind", "commit"] {
            assert_eq!(shown[key], there[key], "{path} {key}: {shown}");
        }
    }
    let r = env.dvt_in(here, &["get", src, "model.bin", "--show-url"]).ok();
    assert!(r.stdout.starts_with(_remote.path().to_str().unwrap()), "{}", r.stdout);
    let r = env.dvt_in(here, &["get", src, "data.dvt", "--show-url"]).ok();
    assert!(!r.stdout.is_empty(), "a pointer names its data");
    let r = env.dvt_in(here, &["get", src, ".gitignore", "--show-url"]).fails();
    assert!(r.stderr.contains("`.gitignore` is kept by git at"), "{}", r.stderr);
    let names: Vec<_> = std::fs::read_dir(here).unwrap().collect();
    assert_eq!(names.len(), 3, "--show-url wrote nothing");

    // A bare clone has no cache: the objects come from the remote its config names.
    let bare = here.join("bare.git");
    env.git(&["clone", "-q", "--bare", src, bare.to_str().unwrap()]);
    let url = format!("file://{}", bare.display());
    env.dvt_in(here, &["get", &url, "model.bin", "--rev", "v1", "-o", "m1"])
        .ok();
    assert_eq!(std::fs::read(here.join("m1")).unwrap(), b"model one");
}

/// As DVC's `get`, `import` and API read them, the files git keeps are read
/// beside dvt's data: `cat` of a file at a revision or in the work tree, `get`
/// of a file, of a directory holding git's files and tracked data together,
/// and of the whole repository; `import` of git's files, which `update`
/// follows. A symbolic link has no content to copy and is named as left out.
#[test]
fn cat_get_and_import_read_the_files_git_keeps() {
    let Versions { env, _remote } = versions();
    env.write("src/train.py", "print('one')\n");
    env.write("src/conf/params.yaml", "lr: 0.1\n");
    std::os::unix::fs::symlink("train.py", env.path("src/latest.py")).unwrap();
    env.write("data.txt", "a note\n");
    env.commit("code");
    env.git(&["tag", "code-v1"]);
    env.write("src/train.py", "print('two')\n");
    env.commit("code two");
    env.write("src/train.py", "print('three, not committed')\n");

    assert_eq!(
        env.dvt(&["cat", "src/train.py", "--rev", "code-v1"]).ok().stdout,
        "print('one')\n"
    );
    assert_eq!(
        env.dvt(&["cat", "src/train.py", "--rev", "HEAD"]).ok().stdout,
        "print('two')\n"
    );
    // No revision: the work tree's file, as DVC's API reads it.
    assert_eq!(
        env.dvt(&["cat", "src/train.py"]).ok().stdout,
        "print('three, not committed')\n"
    );
    let sub = env.path("src");
    assert_eq!(env.dvt_in(&sub, &["cat", "conf/params.yaml"]).ok().stdout, "lr: 0.1\n");
    // Tracked data still comes from its pointer (verified), not from the disk.
    env.write("model.bin", "changed on disk");
    assert_eq!(env.dvt(&["cat", "model.bin"]).ok().stdout, "model two");
    for (args, message) in [
        (
            vec!["cat", "src/nope.py", "--rev", "HEAD"],
            "`src/nope.py` does not exist at `HEAD`",
        ),
        (
            vec!["cat", "src/nope.py"],
            "`src/nope.py` does not exist in the workspace",
        ),
        // Below a file: tracked (`model.bin`) or git's.
        (
            vec!["cat", "model.bin/x"],
            "`model.bin/x` does not exist in the workspace",
        ),
        (
            vec!["cat", "model.bin/x", "--rev", "HEAD"],
            "`model.bin/x` does not exist at `HEAD`",
        ),
        (
            vec!["cat", "src/train.py/x"],
            "`src/train.py/x` does not exist in the workspace",
        ),
        (vec!["cat", "src", "--rev", "HEAD"], "`src` is a directory at `HEAD`"),
        (vec!["cat", "src"], "`src` is a directory in the workspace"),
        (vec!["cat", "src/latest.py"], "`src/latest.py` is a symbolic link"),
        (
            vec!["cat", "src/latest.py", "--rev", "HEAD"],
            "`src/latest.py` is a symbolic link",
        ),
        (vec!["cat", ".dvt/config.local.toml"], "is inside `.git` or `.dvt`"),
        (vec!["cat", ".git/HEAD"], "is inside `.git` or `.dvt`"),
        // A path inside tracked data that its manifest lacks is not read from the disk.
        (vec!["cat", "data/new.csv"], "`data/new.csv` is not tracked by dvt"),
    ] {
        env.write("data/new.csv", "new\n");
        let r = env.dvt(&args).fails();
        assert!(r.stderr.contains(message), "{args:?}: {}", r.stderr);
        assert!(r.stdout.is_empty(), "{args:?}: {}", r.stdout);
    }
    assert!(
        env.dvt(&["cat", ".dvt/config.toml"])
            .ok()
            .stdout
            .contains("[remote.store]")
    );

    // get: a file, a directory of git's files, a directory of both, the whole repository.
    let elsewhere = tempfile::tempdir().unwrap();
    let here = elsewhere.path();
    let src = env.root.to_str().unwrap();
    env.dvt_in(here, &["get", src, "src/train.py", "--rev", "code-v1"]).ok();
    assert_eq!(std::fs::read(here.join("train.py")).unwrap(), b"print('one')\n");
    let r = env.dvt_in(here, &["get", src, "src", "-o", "code"]).ok();
    assert!(
        r.stderr.contains(
            "warning: left out 1 path (symbolic links and submodules have no content to copy): src/latest.py"
        ),
        "{}",
        r.stderr
    );
    // No revision, a local work tree: as it is (DVC's `get` of a local repository).
    assert_eq!(
        std::fs::read(here.join("code/train.py")).unwrap(),
        b"print('three, not committed')\n"
    );
    assert_eq!(std::fs::read(here.join("code/conf/params.yaml")).unwrap(), b"lr: 0.1\n");
    assert!(!here.join("code/latest.py").exists());
    let r = env
        .dvt_in(here, &["get", src, "src", "--rev", "HEAD", "-o", "committed"])
        .ok();
    assert!(r.stdout.contains(" at "), "{}", r.stdout);
    assert_eq!(
        std::fs::read(here.join("committed/train.py")).unwrap(),
        b"print('two')\n"
    );
    // Tracked data in a work tree: its pointer's, not what the disk holds.
    let r = env.dvt_in(here, &["get", src, ".", "-o", "tree"]).ok();
    assert!(r.stdout.contains("as its work tree is"), "{}", r.stdout);
    assert_eq!(std::fs::read(here.join("tree/model.bin")).unwrap(), b"model two");
    assert!(!here.join("tree/data/new.csv").exists());
    assert_eq!(
        std::fs::read(here.join("tree/src/train.py")).unwrap(),
        b"print('three, not committed')\n"
    );
    let r = env.dvt_in(here, &["get", src, ".", "--rev", "v2"]).fails();
    assert!(
        r.stderr.contains("`.` is the whole repository: name the directory"),
        "{}",
        r.stderr
    );
    env.dvt_in(here, &["get", src, ".", "--rev", "v2", "-o", "all"]).ok();
    assert_eq!(std::fs::read(here.join("all/data/sub/c.csv")).unwrap(), b"t,v\n0,3\n");
    assert_eq!(std::fs::read(here.join("all/model.bin")).unwrap(), b"model two");
    // dvt's own files are not copied (as DVC's `get` leaves out `.dvc` files):
    // here they would describe data this repository does not have.
    assert!(!here.join("all/data.dvt").exists() && !here.join("all/.dvt").exists());
    assert!(here.join("all/.gitignore").is_file());
    // Named alone, one is read.
    env.dvt_in(here, &["get", src, ".dvt/config.toml", "--rev", "v2", "-o", "cfg.toml"])
        .ok();
    assert!(
        std::fs::read_to_string(here.join("cfg.toml"))
            .unwrap()
            .contains("[remote.")
    );
    assert!(!here.join("all/src").exists(), "src was committed after v2");
    let r = env.dvt_in(here, &["get", src, "src/nope.py"]).fails();
    assert!(r.stderr.contains("`src/nope.py` does not exist at"), "{}", r.stderr);

    // import: git's files tracked here as data, and followed by update.
    let other = TestEnv::new();
    other.dvt(&["import", src, "src/conf", "--rev", "main"]).ok();
    other.dvt(&["import", src, "data.txt", "-o", "note.txt"]).ok();
    assert_eq!(other.read("conf/params.yaml"), b"lr: 0.1\n");
    assert_eq!(other.read("note.txt"), b"a note\n");
    other.commit("imports");
    env.write("src/conf/params.yaml", "lr: 0.2\n");
    env.commit("lr");
    other.dvt(&["update", "conf"]).ok();
    assert_eq!(other.read("conf/params.yaml"), b"lr: 0.2\n");
    // Its data is in the cache like any other: a checkout restores it.
    std::fs::remove_dir_all(other.path("conf")).unwrap();
    other.dvt(&["checkout"]).ok();
    assert_eq!(other.read("conf/params.yaml"), b"lr: 0.2\n");
}

/// A plain git repository (no dvt in it) is read as DVC reads one: its files
/// are listed, downloaded and imported; `--show-url` has nothing to say of them.
#[test]
fn list_get_and_import_read_a_plain_git_repository() {
    let plain = TestEnv::bare();
    plain.git(&["init", "-q", "-b", "main"]);
    plain.write("README.md", "# tools\n");
    plain.write("src/prep.py", "print('prep')\n");
    plain.commit("code");
    let src = plain.root.to_str().unwrap();
    let env = TestEnv::new();
    let r = env.dvt(&["list", src, "-R"]).ok();
    assert_eq!(r.stdout, "README.md\nsrc/prep.py\n");
    let here = tempfile::tempdir().unwrap();
    env.dvt_in(here.path(), &["get", src, "src"]).ok();
    assert_eq!(
        std::fs::read(here.path().join("src/prep.py")).unwrap(),
        b"print('prep')\n"
    );
    env.dvt(&["import", src, "README.md", "-o", "docs/tools.md"]).ok();
    assert_eq!(env.read("docs/tools.md"), b"# tools\n");
    assert!(env.read("docs/tools.md.dvt").starts_with(b"# dvt pointer file"));
    let r = env.dvt(&["get", src, "README.md", "--show-url"]).fails();
    assert!(r.stderr.contains("is kept by git"), "{}", r.stderr);
    let r = env.dvt(&["get", src, "data"]).fails();
    assert!(r.stderr.contains("`data` does not exist at"), "{}", r.stderr);
}

/// DVC's `list -T`, `-L` and `--show-hash`.
#[test]
fn list_draws_a_tree_limits_depth_and_shows_ids() {
    let Versions { env, _remote } = versions();
    let src = env.root.to_str().unwrap();
    let r = env.dvt(&["list", src, "data", "-T"]).ok();
    assert_eq!(
        r.stdout, ".\n├── a.csv  (dvt)\n└── sub/\n    └── c.csv  (dvt)\n",
        "{}",
        r.stdout
    );
    let r = env.dvt(&["list", src, "-T", "-L", "1", "--dvt-only"]).ok();
    assert_eq!(r.stdout, ".\n├── data/  (dvt)\n└── model.bin  (dvt)\n", "{}", r.stdout);
    let r = env.dvt(&["list", src, "-R", "-L", "2", "--dvt-only"]).ok();
    assert_eq!(
        r.stdout, "data/a.csv  (dvt)\ndata/sub/  (dvt)\nmodel.bin  (dvt)\n",
        "{}",
        r.stdout
    );
    let r = env.dvt(&["list", src, "-L", "1"]);
    assert_eq!(r.code, 2, "-L needs -R or -T: {}", r.stderr);

    let r = env.dvt(&["list", src, "--show-hash", "--dvt-only"]).ok();
    let model = blake3::hash(b"model two").to_hex().to_string();
    assert!(r.stdout.contains(&format!("{model}  model.bin  (dvt)")), "{}", r.stdout);
    let j = env.dvt(&["list", src, "data", "--json"]).ok().json();
    let a = blake3::hash(b"t,v\n0,1\n1,1\n2,1\n").to_hex().to_string();
    assert_eq!(j["entries"][0]["id"], a.as_str(), "{j}");
}

/// Without `--rev`, a local work tree is listed as it is, as `dvc list .`
/// lists it: data added and not committed, files git does not ignore whether
/// committed or not, in a repository with no commit yet too; `--rev` reads the
/// commit, and a bare clone its HEAD.
#[test]
fn list_and_du_read_a_local_work_tree_without_a_revision() {
    let env = TestEnv::new();
    env.write("data/a.csv", "t,v\n0,1\n");
    env.dvt(&["add", "data"]).ok();
    env.write("notes.md", "todo\n");
    let r = env.dvt(&["list", "."]).ok();
    assert_eq!(
        r.stdout, ".gitignore\ndata/  (dvt)\ndata.dvt\nnotes.md\n",
        "no commit yet: {}",
        r.stderr
    );
    let j = env.dvt(&["list", ".", "-R", "--json"]).ok().json();
    assert!(j["commit"].is_null(), "{j}");
    let sizes: Vec<(String, u64)> = j["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["path"].as_str().unwrap().to_string(), e["size"].as_u64().unwrap()))
        .collect();
    let pointer = std::fs::metadata(env.path("data.dvt")).unwrap().len();
    assert_eq!(
        sizes,
        [
            (".gitignore".to_string(), 6),
            ("data.dvt".to_string(), pointer),
            ("data/a.csv".to_string(), 8),
            ("notes.md".to_string(), 5)
        ]
    );
    // dvt's own files are marked (DvtFileSystem leaves them out by the mark).
    let marked: Vec<&str> = j["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["dvt_file"] == true)
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert_eq!(marked, ["data.dvt"], "{j}");
    env.commit("data");
    env.write("data/b.csv", "t,v\n0,2\n");
    env.dvt(&["add", "data"]).ok();
    env.write("scratch.log", "x\n");
    env.write(".gitignore", "/data\n*.log\n");
    let r = env.dvt(&["list", ".", "data"]).ok();
    assert_eq!(r.stdout, "a.csv  (dvt)\nb.csv  (dvt)\n");
    let r = env.dvt(&["list", ".", "data", "--rev", "HEAD"]).ok();
    assert_eq!(r.stdout, "a.csv  (dvt)\n");
    let r = env.dvt(&["list", "."]).ok();
    assert!(!r.stdout.contains("scratch.log"), "git ignores it: {}", r.stdout);
    let r = env
        .dvt_in(&env.path("data"), &["du", "..", "data", "-s", "--bytes"])
        .ok();
    assert_eq!(r.stdout.trim(), "16  data");
    let r = env.dvt(&["list", ".", "nope"]).fails();
    assert!(
        r.stderr.contains("`nope` does not exist at `") && r.stderr.contains("` (work tree)"),
        "{}",
        r.stderr
    );
    // A bare clone has no work tree: its HEAD (manifests from the remote).
    let store = tempfile::tempdir().unwrap();
    env.dvt(&["remote", "add", "-d", "store", store.path().to_str().unwrap()])
        .ok();
    env.dvt(&["push", "--rev", "HEAD"]).ok();
    env.git(&["add", ".dvt/config.toml"]);
    env.git(&["commit", "-q", "-m", "remote"]);
    let bare = tempfile::tempdir().unwrap();
    let bare = bare.path().join("b.git");
    env.git(&[
        "clone",
        "-q",
        "--bare",
        env.root.to_str().unwrap(),
        bare.to_str().unwrap(),
    ]);
    let r = env.dvt(&["list", bare.to_str().unwrap(), "data"]).ok();
    assert_eq!(r.stdout, "a.csv  (dvt)\n");

    // A path inside the repository (or its `.git`) names the whole repository,
    // at a commit as in the work tree (as DVC reads one): paths stay the root's.
    let inside = env.path("data").to_str().unwrap().to_string();
    let git_dir = env.path(".git").to_str().unwrap().to_string();
    let (committed, as_is) = ("a.csv  (dvt)\n", "a.csv  (dvt)\nb.csv  (dvt)\n");
    for (repo, rev, listed) in [
        (&inside, None, as_is),
        (&inside, Some("HEAD"), committed),
        (&git_dir, Some("HEAD"), committed),
    ] {
        let mut args = vec!["list", repo.as_str(), "data"];
        args.extend(rev.iter().flat_map(|r| ["--rev", *r]));
        assert_eq!(env.dvt(&args).ok().stdout, listed, "{args:?}");
    }
    // A bare clone kept inside the project is that clone, not the project.
    let kept = env.path("vendor/registry.git");
    std::fs::create_dir_all(env.path("vendor")).unwrap();
    env.git(&["clone", "-q", "--bare", bare.to_str().unwrap(), kept.to_str().unwrap()]);
    env.write("only-here.md", "not in the clone\n");
    assert!(env.dvt(&["list", "."]).ok().stdout.contains("only-here.md"));
    let r = env.dvt(&["list", kept.to_str().unwrap()]).ok();
    assert!(
        !r.stdout.contains("only-here.md") && r.stdout.contains("data/"),
        "{}",
        r.stdout
    );
}

/// A repository whose cache is elsewhere by its local settings (`dvt cache
/// dir --local`, as for a shared cache) is read from there by `get` and
/// `import` of it as a local path, at a commit and as its work tree is; its
/// local file gives nothing else (no remote).
#[test]
fn get_and_import_of_a_local_repository_follow_its_local_cache_dir() {
    let env = TestEnv::new();
    let shared = tempfile::tempdir().unwrap();
    let shared_cache = shared.path().join("cache");
    env.dvt(&["cache", "dir", "--local", shared_cache.to_str().unwrap()])
        .ok();
    env.write("model.bin", "weights one\n");
    env.write("data/a.csv", "t,v\n0,1\n");
    env.dvt(&["add", "-q", "model.bin", "data"]).ok();
    assert!(!env.path(".dvt/cache").exists(), "the cache is elsewhere");
    env.commit("data");
    std::fs::remove_file(env.path("model.bin")).unwrap();
    std::fs::remove_dir_all(env.path("data")).unwrap();
    let out = tempfile::tempdir().unwrap();
    let o = |name: &str| out.path().join(name).to_str().unwrap().to_string();
    env.dvt(&["get", ".", "model.bin", "-o", &o("work.bin")]).ok();
    env.dvt(&["get", ".", "model.bin", "--rev", "HEAD", "-o", &o("head.bin")])
        .ok();
    env.dvt(&["get", ".", "data", "-o", &o("data")]).ok();
    for name in ["work.bin", "head.bin"] {
        assert_eq!(std::fs::read(out.path().join(name)).unwrap(), b"weights one\n");
    }
    assert_eq!(std::fs::read(out.path().join("data/a.csv")).unwrap(), b"t,v\n0,1\n");
    let dest = env.clone_repo();
    let r = dest
        .dvt(&["import", env.root.to_str().unwrap(), "model.bin", "-o", "imported.bin"])
        .ok();
    assert!(r.stdout.contains("imported model.bin"), "{}", r.stdout);
    assert_eq!(dest.read("imported.bin"), b"weights one\n");
    // Without it, the data is nowhere the reader looks: the error says so.
    std::fs::remove_file(env.path(".dvt/config.local.toml")).unwrap();
    let r = env.dvt(&["get", ".", "model.bin", "-o", &o("gone.bin")]).fails();
    assert!(r.stderr.contains("is not in the cache"), "{}", r.stderr);
    assert!(!out.path().join("gone.bin").exists());
}

/// `dvt du` adds up git's files and dvt's data below a path at a revision; a
/// tracked directory is measured by its pointer, without its manifest.
#[test]
fn du_adds_up_git_files_and_tracked_data() {
    let env = TestEnv::new();
    env.write("data/raw/a.bin", vec![7u8; 1000]);
    env.write("data/raw/sub/c.txt", "0123456789");
    env.write("model.bin", vec![1u8; 5000]);
    env.write("src/train.py", "print('training')\n");
    env.dvt(&["add", "-q", "data/raw", "model.bin"]).ok();
    env.commit("one");
    env.write("model.bin", vec![2u8; 7000]);
    env.dvt(&["add", "-q", "model.bin"]).ok();
    env.commit("two");
    let du = |args: &[&str]| {
        let mut all = vec!["du", "."];
        all.extend_from_slice(args);
        env.dvt(&all).ok().stdout
    };
    let git_bytes = |rel: &str| env.read(rel).len() as u64;
    assert_eq!(
        du(&["data/raw", "-b"]),
        "       1000  a.bin\n         10  sub/\n       1010  data/raw\n"
    );
    assert_eq!(du(&["data/raw/sub/c.txt", "-b"]), "         10  data/raw/sub/c.txt\n");
    assert_eq!(du(&["model.bin", "-b", "--rev", "HEAD~1"]), "       5000  model.bin\n");
    assert_eq!(du(&["src", "-s"]), "       18 B  src\n");
    // dvt's own files (pointers, `.dvt`) are not counted, as `dvc du` leaves out
    // `.dvc` files; a pointer named alone is measured.
    let data = 1010 + git_bytes("data/.gitignore");
    let r = du(&["data", "-b"]);
    assert!(
        r.contains("       1010  raw/\n") && r.ends_with(&format!("{data:>11}  data\n")),
        "{r}"
    );
    assert_eq!(du(&["--dvt-only", "-s", "-b"]), "       8010  .\n");
    let pointer = git_bytes("model.bin.dvt");
    assert_eq!(du(&["model.bin.dvt", "-b"]), format!("{pointer:>11}  model.bin.dvt\n"));
    // Without the cache (so without any manifest), the pointers still say.
    std::fs::remove_dir_all(env.path(".dvt/cache")).unwrap();
    let v = env.dvt(&["du", ".", "--json"]).ok().json();
    let entries = v["entries"].as_array().unwrap();
    let size_of = |p: &str| {
        entries.iter().find(|e| e["path"] == p).unwrap()["size"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(
        (size_of("data"), size_of("model.bin"), size_of("src")),
        (data, 7000, 18)
    );
    let names: Vec<&str> = entries.iter().map(|e| e["path"].as_str().unwrap()).collect();
    assert_eq!(names, [".gitignore", "data", "model.bin", "src"]);
    let total: u64 = entries.iter().map(|e| e["size"].as_u64().unwrap()).sum();
    assert_eq!(v["size"].as_u64(), Some(total));
    let r = env.dvt(&["du", ".", "nothing"]).fails();
    assert!(r.stderr.contains("`nothing` does not exist at"), "{}", r.stderr);
}

/// `dvt list` shows git's files and dvt's data side by side at a revision, inside
/// tracked directories too; a bare clone reads manifests from the remote.
#[test]
fn list_shows_git_files_and_tracked_data_at_a_revision() {
    let Versions { env, _remote } = versions();
    let elsewhere = tempfile::tempdir().unwrap();
    let here = elsewhere.path();
    let src = env.root.to_str().unwrap();
    let ls = |args: &[&str]| {
        let mut all = vec!["list", src];
        all.extend_from_slice(args);
        env.dvt_in(here, &all).ok().stdout
    };
    assert_eq!(
        ls(&[]),
        ".gitignore\ndata/  (dvt)\ndata.dvt\nmodel.bin  (dvt)\nmodel.bin.dvt\n"
    );
    assert_eq!(ls(&["--dvt-only"]), "data/  (dvt)\nmodel.bin  (dvt)\n");
    assert_eq!(ls(&["data"]), "a.csv  (dvt)\nsub/  (dvt)\n");
    assert_eq!(
        ls(&["data", "--rev", "v1", "--size"]),
        "        8 B  a.csv  (dvt)\n        8 B  b.csv  (dvt)\n"
    );
    assert_eq!(ls(&["data/sub/"]), "c.csv  (dvt)\n");
    assert_eq!(ls(&["data/sub/c.csv", "--size"]), "        8 B  c.csv  (dvt)\n");
    // A pointer file is a file git keeps, whatever it points to.
    let pointer_size = env.read("model.bin.dvt").len();
    assert_eq!(
        ls(&["model.bin.dvt", "--size"]),
        format!("{:>9} B  model.bin.dvt\n", pointer_size)
    );
    let r = ls(&["-R", "--dvt-only"]);
    assert_eq!(r, "data/a.csv  (dvt)\ndata/sub/c.csv  (dvt)\nmodel.bin  (dvt)\n");
    for missing in ["data/zzz.csv", "nothing", "../outside"] {
        let r = env.dvt_in(here, &["list", src, missing]).fails();
        assert!(
            r.stderr.contains(&format!("`{missing}` does not exist at")),
            "{}",
            r.stderr
        );
    }

    // A bare clone has no cache: the manifest comes from the remote, no data does.
    let bare = here.join("bare.git");
    env.git(&["clone", "-q", "--bare", src, bare.to_str().unwrap()]);
    let url = format!("file://{}", bare.display());
    let r = env
        .dvt_in(here, &["ls", &url, "data", "-R", "--rev", "v1", "--json"])
        .ok();
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let entries: Vec<(String, u64, String)> = v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["path"].as_str().unwrap().to_string(),
                e["size"].as_u64().unwrap(),
                e["keeper"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        entries,
        [
            ("a.csv".to_string(), 8, "dvt".to_string()),
            ("b.csv".to_string(), 8, "dvt".to_string())
        ]
    );
    assert_eq!(
        std::fs::read_dir(here).unwrap().count(),
        1,
        "list wrote nothing but the clone"
    );

    // A malformed pointer elsewhere does not stop a listing inside tracked data,
    // found by its pointer's name; a listing that needs every pointer names it.
    env.write("broken.dvt", "not = [toml");
    env.commit("a broken pointer");
    assert_eq!(ls(&["data/sub"]), "c.csv  (dvt)\n");
    let r = env.dvt_in(here, &["list", src]).fails();
    assert!(r.stderr.contains("broken.dvt"), "{}", r.stderr);
}

#[test]
fn import_records_the_source_and_update_follows_it() {
    let Versions { env: source, _remote } = versions();
    let env = TestEnv::new();
    let src = source.root.to_str().unwrap();
    env.dvt(&["import", src, "data", "--rev", "v1", "-o", "input"]).ok();
    assert_eq!(env.read("input/a.csv"), b"t,v\n0,1\n");
    let pointer = String::from_utf8(env.read("input.dvt")).unwrap();
    let v1 = source.git(&["rev-parse", "v1^{commit}"]).stdout.trim().to_string();
    assert!(
        pointer.contains("[source]") && pointer.contains(&format!("commit = \"{v1}\"")),
        "{pointer}"
    );
    assert!(
        pointer.contains("rev = \"v1\"") && pointer.contains("path = \"data\""),
        "{pointer}"
    );
    assert!(String::from_utf8(env.read(".gitignore")).unwrap().contains("/input"));
    env.commit("import");
    assert_eq!(
        env.dvt(&["status", "--json"]).ok().json()["pointers"][0]["workspace"],
        "unchanged"
    );

    let r = env.dvt(&["update"]).ok();
    assert!(r.stdout.contains("up to date"), "{}", r.stdout);
    // Unrecorded edits stop an update that would replace them.
    env.write("input/a.csv", "my edit\n");
    let r = env.dvt(&["update", "input", "--rev", "v2"]).fails();
    assert!(r.stderr.contains("input/a.csv"), "{}", r.stderr);
    assert_eq!(env.read("input/a.csv"), b"my edit\n");
    env.dvt(&["update", "input", "--rev", "v2", "--force"]).ok();
    assert_eq!(env.read("input/a.csv"), b"t,v\n0,1\n1,1\n2,1\n");
    assert!(!env.exists("input/b.csv"));
    let pointer = String::from_utf8(env.read("input.dvt")).unwrap();
    let v2 = source.git(&["rev-parse", "v2^{commit}"]).stdout.trim().to_string();
    assert!(pointer.contains(&v2) && pointer.contains("rev = \"v2\""), "{pointer}");

    // The source moves on; update follows its branch.
    env.dvt(&["import", src, "model.bin", "--rev", "main"]).ok();
    source.write("model.bin", "model five");
    source.dvt(&["add", "model.bin"]).ok();
    source.dvt(&["push"]).ok();
    source.git(&["commit", "-q", "-am", "five"]);
    let r = env.dvt(&["update", "model.bin"]).ok();
    assert!(r.stdout.contains("updated model.bin.dvt"), "{}", r.stdout);
    assert_eq!(env.read("model.bin"), b"model five");

    // `--no-download` moves the pointer only; `pull` brings the data.
    source.write("model.bin", "model six");
    source.dvt(&["add", "model.bin"]).ok();
    source.dvt(&["push"]).ok();
    source.git(&["commit", "-q", "-am", "six"]);
    let r = env.dvt(&["update", "--no-download", "model.bin"]).ok();
    assert!(r.stdout.contains("updated model.bin.dvt"), "{}", r.stdout);
    assert_eq!(env.read("model.bin"), b"model five");
    let six = source.git(&["rev-parse", "HEAD"]).stdout.trim().to_string();
    assert!(String::from_utf8(env.read("model.bin.dvt")).unwrap().contains(&six));
    let r = env.dvt(&["status", "model.bin"]).ok();
    assert!(r.stdout.contains("not in cache"), "{}", r.stdout);
    // A repository of imports alone needs no remote: the sources give the data.
    let r = env.dvt(&["pull", "model.bin", "--force"]).ok();
    assert!(
        r.stdout
            .contains("no remote is configured: fetched from where they were imported: model.bin"),
        "{}",
        r.stdout
    );
    assert_eq!(env.read("model.bin"), b"model six");
    let r = env.dvt(&["fetch"]).ok();
    assert!(r.stdout.contains("Nothing to fetch"), "{}", r.stdout);

    let r = env.dvt(&["import", src, "model.bin"]).fails();
    assert!(
        r.stderr.contains("already exists") && r.stderr.contains("--force"),
        "{}",
        r.stderr
    );
    env.write("own.csv", "x");
    env.dvt(&["add", "own.csv"]).ok();
    // Data of its own needs a remote again.
    let r = env.dvt(&["pull"]).fails();
    assert!(r.stderr.contains("no default remote"), "{}", r.stderr);
    let r = env.dvt(&["update", "own.csv"]).fails();
    assert!(r.stderr.contains("not made by `dvt import`"), "{}", r.stderr);
    let r = env.dvt(&["update", "model.bin", "--to-remote"]).fails();
    assert!(
        r.stderr
            .contains("`model.bin.dvt` was imported from a dvt repository: `--to-remote` applies to imports from URLs"),
        "{}",
        r.stderr
    );
}

/// An import's data that the remote lacks comes from the repository it was
/// imported from, at the recorded commit; `import --no-download` (as DVC's)
/// writes only the pointer, for `dvt pull` to fill.
#[test]
fn pull_gets_imports_from_their_source_when_the_remote_lacks_them() {
    let Versions { env: source, _remote } = versions();
    let src = source.root.to_str().unwrap();
    let env = TestEnv::new();
    let store = env.root.parent().unwrap().join("consumer-store");
    std::fs::create_dir(&store).unwrap();
    env.dvt(&["remote", "add", "-d", "store", store.to_str().unwrap()]).ok();
    let r = env
        .dvt(&["import", src, "data", "--rev", "v1", "-o", "input", "--no-download"])
        .ok();
    assert!(r.stdout.contains("no data downloaded"), "{}", r.stdout);
    assert!(env.exists("input.dvt") && !env.exists("input"));
    let r = env.dvt(&["status", "input"]).ok();
    assert!(r.stdout.contains("not in cache"), "{}", r.stdout);

    // Nobody pushed it to `store`: it comes from the source repository.
    let r = env.dvt(&["pull"]).ok();
    assert!(
        r.stdout.contains("from where they were imported: input"),
        "{}",
        r.stdout
    );
    assert_eq!(env.read("input/a.csv"), b"t,v\n0,1\n");
    assert_eq!(env.read("input/b.csv"), b"t,v\n0,2\n");
    env.commit("import");

    // A clone pulls the same way; once pushed, from the remote.
    let b = env.clone_repo();
    let r = b.dvt(&["pull", "--json"]).ok();
    assert_eq!(r.json()["fetch"]["from_sources"][0], "input", "{}", r.stdout);
    assert_eq!(b.read("input/a.csv"), b"t,v\n0,1\n");
    env.dvt(&["push"]).ok();
    let c = env.clone_repo();
    let r = c.dvt(&["pull", "--json"]).ok();
    assert!(r.json()["fetch"]["from_sources"].is_null(), "{}", r.stdout);

    // A source that is gone: the remote's error, as for any missing object.
    let d = env.clone_repo();
    std::fs::remove_dir_all(&store).unwrap();
    std::fs::create_dir(&store).unwrap();
    std::fs::rename(&source.root, source.root.with_extension("gone")).unwrap();
    let r = d.dvt(&["pull"]).fails();
    assert!(r.stderr.contains("does not have object"), "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!(
            "and its source (`{}`) could not give it",
            source.root.display()
        )),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("make the source reachable again"), "{}", r.stderr);
    std::fs::rename(source.root.with_extension("gone"), &source.root).unwrap();
}

/// DVC's `update -R`: every import below a directory, other pointers there left
/// alone; a directory with no import below it is an error, not "everything".
#[test]
fn update_recursive_moves_the_imports_below_a_directory() {
    let Versions { env: source, _remote } = versions();
    let env = TestEnv::new();
    let src = source.root.to_str().unwrap();
    env.dvt(&["import", src, "model.bin", "--rev", "main", "-o", "ext/model.bin"])
        .ok();
    env.dvt(&["import", src, "data/a.csv", "--rev", "main", "-o", "ext/deep/a.csv"])
        .ok();
    env.dvt(&["import", src, "data/sub/c.csv", "--rev", "main", "-o", "top.csv"])
        .ok();
    env.write("ext/own.csv", "mine\n");
    env.write("local/x.csv", "x\n");
    env.dvt(&["add", "ext/own.csv", "local/x.csv"]).ok();
    env.commit("imports");
    source.write("model.bin", "model five");
    source.write("data/a.csv", "t,v\n5,5\n");
    source.write("data/sub/c.csv", "t,v\n6,6\n");
    source.dvt(&["add", "model.bin", "data"]).ok();
    source.dvt(&["push"]).ok();
    source.git(&["commit", "-q", "-am", "five"]);

    let r = env.dvt(&["update", "ext"]).fails();
    assert!(r.stderr.contains("`-R` names all of it"), "{}", r.stderr);
    let j = env.dvt(&["update", "-R", "ext", "--json"]).ok().json();
    assert_eq!(j.as_array().unwrap().len(), 2, "{j}");
    assert_eq!(env.read("ext/model.bin"), b"model five");
    assert_eq!(env.read("ext/deep/a.csv"), b"t,v\n5,5\n");
    assert_eq!(env.read("top.csv"), b"t,v\n0,3\n", "outside the directory: not updated");
    assert_eq!(env.read("ext/own.csv"), b"mine\n");
    let r = env.dvt(&["update", "-R", "local"]).fails();
    assert!(
        r.stderr.contains("no data below `local` was made by `dvt import`"),
        "{}",
        r.stderr
    );
}

/// Imports from one registry across the network: `update` and `fetch` fetch
/// it once for all of them, not once per import, and not at all for commits
/// its kept clone holds.
#[test]
fn update_and_fetch_clone_a_registry_once_for_all_its_imports() {
    let Versions { env: source, _remote } = versions();
    let daemon = GitDaemon::start(source.root.parent().unwrap());
    let url = format!("git://127.0.0.1:{}/repo", daemon.port);
    let env = TestEnv::new();
    env.dvt(&["import", &url, "model.bin", "--rev", "main"]).ok();
    env.dvt(&["import", &url, "data/a.csv", "--rev", "main", "-o", "a.csv"])
        .ok();
    env.commit("imports");
    source.write("model.bin", "model five");
    source.write("data/a.csv", "t,v\n5,5\n");
    source.dvt(&["add", "model.bin", "data"]).ok();
    source.dvt(&["push"]).ok();
    source.git(&["commit", "-q", "-am", "five"]);
    let clones = |stderr: &str| stderr.matches(&format!(" {url} into ")).count();

    let r = env.dvt(&["-v", "update"]).ok();
    assert_eq!(clones(&r.stderr), 1, "{}", r.stderr);
    assert_eq!(env.read("model.bin"), b"model five");
    assert_eq!(env.read("a.csv"), b"t,v\n5,5\n");
    // No remote here: fetch gets both from the registry. The commits they
    // record are in the kept clone: no fetch of it at all; without the clone,
    // one for both.
    std::fs::remove_dir_all(env.path(".dvt/cache")).unwrap();
    let r = env.dvt(&["-v", "fetch"]).ok();
    assert_eq!(clones(&r.stderr), 0, "{}", r.stderr);
    assert!(r.stderr.contains(": not fetched"), "{}", r.stderr);
    std::fs::remove_dir_all(env.path(".dvt/cache")).unwrap();
    std::fs::remove_dir_all(env.home.join(".cache/dvt/clones")).unwrap();
    let r = env.dvt(&["-v", "fetch"]).ok();
    assert_eq!(clones(&r.stderr), 1, "{}", r.stderr);
    env.dvt(&["checkout", "--force"]).ok();
    assert_eq!(env.read("model.bin"), b"model five");
}

#[test]
fn push_fetch_and_pull_take_revisions_as_dvc_does() {
    let env = TestEnv::new();
    let remote = tempfile::tempdir().unwrap();
    env.dvt(&["remote", "add", "-d", "store", remote.path().to_str().unwrap()])
        .ok();
    for (v, text) in [("v1", "one"), ("v2", "two"), ("v3", "three")] {
        env.write("model.bin", text);
        env.dvt(&["add", "model.bin"]).ok();
        env.commit(v);
        env.git(&["tag", v]);
    }
    let on_remote = |t: &str| {
        let id = blake3::hash(t.as_bytes()).to_hex().to_string();
        Store::at(remote.path()).has(&id)
    };
    env.dvt(&["push"]).ok();
    assert!(on_remote("three") && !on_remote("one"), "only the workspace's data");
    // status -c takes them too (DVC's `status -c -a/-T/-A`): v1's data is not pushed.
    let r = env.dvt(&["status", "-c"]).ok();
    assert!(
        r.stdout.starts_with("Cache and remote `store` are in sync (1 object)."),
        "{}",
        r.stdout
    );
    let r = env.dvt(&["status", "-c", "--rev", "v1"]).ok();
    assert_eq!(r.stdout, "model.bin: 1 object only in the cache (to push)\n");
    // Every version of a path on its one line (here v1's and v2's, v3's pushed).
    let r = env.dvt(&["status", "-c", "-T", "--json"]).ok().json();
    assert_eq!(r["pointers"].as_array().unwrap().len(), 1, "{r}");
    assert_eq!(
        (
            r["pointers"][0]["objects"].clone(),
            r["pointers"][0]["local_only"].as_array().unwrap().len()
        ),
        (3.into(), 2),
        "{r}"
    );
    // A usage error, as clap's (exit code 2).
    let r = env.dvt(&["status", "-T"]);
    assert!(r.code == 2 && r.stderr.contains("add -c (or -r NAME)"), "{r:?}");
    env.dvt(&["push", "--rev", "v1"]).ok();
    assert!(on_remote("one") && !on_remote("two"));
    env.dvt(&["push", "--all-tags"]).ok();
    assert!(on_remote("two"));

    let clone = env.clone_repo();
    clone.dvt(&["fetch", "--rev", "v1", "model.bin"]).ok();
    assert_eq!(clone.dvt(&["cat", "model.bin", "--rev", "v1"]).ok().stdout, "one");
    // That fetched the workspace's data (v3) and v1's; --all-commits adds v2's.
    let r = clone.dvt(&["fetch", "-A", "--json"]).ok().json();
    assert_eq!(
        (r["downloaded"].clone(), r["already_cached"].clone()),
        (1.into(), 2.into()),
        "{r}"
    );
    let r = clone.dvt(&["fetch", "--rev", "nope"]).fails();
    assert!(r.stderr.contains("unknown revision `nope`"), "{}", r.stderr);

    // pull takes them as DVC's does: their data is fetched, the workspace's
    // alone checked out.
    let other = env.clone_repo();
    let r = other.dvt(&["pull", "-T", "--json"]).ok().json();
    assert_eq!(r["fetch"]["downloaded"], 3, "{r}");
    assert_eq!(other.read("model.bin"), b"three");
    assert_eq!(other.dvt(&["cat", "model.bin", "--rev", "v1"]).ok().stdout, "one");
    let r = other.dvt(&["pull", "--rev", "nope"]).fails();
    assert!(r.stderr.contains("unknown revision `nope`"), "{}", r.stderr);
}

/// [`versions`] served over smart HTTP (git http-backend) from a bare clone.
struct Served {
    source: TestEnv,
    _remote: tempfile::TempDir,
    _dir: tempfile::TempDir,
    /// The bare clone served.
    bare: std::path::PathBuf,
    server: GitHttp,
    /// Its URL.
    url: String,
}

/// The clones of repositories read by URL that dvt keeps for `env`.
fn kept_clones(env: &TestEnv) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(env.home.join(".cache/dvt/clones"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "git"))
        .collect()
}

fn served_versions() -> Served {
    served_versions_with(None, None)
}

/// [`served_versions`] by a server that asks for `login`, over HTTPS with `tls`.
fn served_versions_with(login: Option<&str>, tls: Option<&PrivateCa>) -> Served {
    let Versions { env: source, _remote } = versions();
    let dir = tempfile::tempdir().unwrap();
    let bare = dir.path().join("data.git");
    source.git(&[
        "clone",
        "-q",
        "--bare",
        source.root.to_str().unwrap(),
        bare.to_str().unwrap(),
    ]);
    let server = GitHttp::start_with(dir.path(), login, tls);
    let scheme = if tls.is_some() { "https" } else { "http" };
    let url = format!("{scheme}://127.0.0.1:{}/data.git", server.port);
    Served {
        source,
        _remote,
        _dir: dir,
        bare,
        server,
        url,
    }
}

#[test]
fn get_and_import_from_a_git_url_over_http() {
    let served = served_versions();
    let (source, url) = (&served.source, served.url.clone());

    let out = tempfile::tempdir().unwrap();
    let r = source
        .dvt_in(out.path(), &["get", &url, "data", "--rev", "v1", "-o", "d1"])
        .ok();
    assert!(r.stdout.contains("got"), "{}", r.stdout);
    assert_eq!(std::fs::read(out.path().join("d1/a.csv")).unwrap(), b"t,v\n0,1\n");
    let r = source.dvt_in(out.path(), &["list", &url, "data", "-R", "--size"]).ok();
    assert_eq!(r.stdout, "       16 B  a.csv  (dvt)\n        8 B  sub/c.csv  (dvt)\n");

    let env = TestEnv::new();
    env.dvt(&["import", &url, "model.bin", "--rev", "v1"]).ok();
    assert_eq!(env.read("model.bin"), b"model one");
    let pointer = String::from_utf8(env.read("model.bin.dvt")).unwrap();
    assert!(pointer.contains(&format!("repo = \"{url}\"")), "{pointer}");
    env.dvt(&["update", "model.bin", "--rev", "v2"]).ok();
    assert_eq!(env.read("model.bin"), b"model two");

    let r = env
        .dvt(&[
            "get",
            &format!("http://127.0.0.1:{}/missing.git", served.server.port),
            "x",
        ])
        .fails();
    assert!(r.stderr.contains("cloning") && r.stderr.contains("404"), "{}", r.stderr);
}

#[test]
fn a_git_server_that_asks_for_a_login_gets_a_hint_that_says_where_to_put_it() {
    let served = served_versions_with(Some("tester:s3cret"), None);
    let env = TestEnv::new();
    for login in ["", "tester:s3cret@"] {
        let url = served.url.replace("http://", &format!("http://{login}"));
        // Without a login gix asks at the terminal, as git does: `setsid` takes
        // the terminal away from a run of the tests started at one. With a
        // login, it refuses to send it over plain http.
        let r = env.run("setsid", &["-w", env!("CARGO_BIN_EXE_dvt"), "get", &url, "model.bin"]);
        assert_eq!(r.code, 1, "{}", r.stderr);
        assert!(
            r.stderr.contains("a credential helper in your git config") && r.stderr.contains("https://USER:TOKEN@"),
            "{}",
            r.stderr
        );
        assert!(!env.exists("model.bin"));
    }
}

/// A git server over HTTPS that asks for a login: given in the URL, it is
/// used, hidden in messages, and recorded nowhere (not in the pointer, not in
/// the kept clone); later reads take it from `~/.netrc`, as git does.
#[test]
fn a_login_in_the_url_or_in_netrc_reaches_a_git_server_and_is_recorded_nowhere() {
    let tls = tempfile::tempdir().unwrap();
    let ca = PrivateCa::make(&TestEnv::bare(), tls.path());
    let served = served_versions_with(Some("tester:s3cret"), Some(&ca));
    let url = served.url.clone();
    let with_login = url.replace("https://", "https://tester:s3cret@");
    let env = TestEnv::new();
    // dvt trusts the private CA through SSL_CERT_FILE; `setsid` takes away a
    // terminal gix could ask for a login at.
    let cert = format!("SSL_CERT_FILE={}", ca.ca);
    let dvt = |args: &[&str]| {
        env.run(
            "env",
            &[&[cert.as_str(), "setsid", "-w", env!("CARGO_BIN_EXE_dvt")], args].concat(),
        )
    };

    let r = dvt(&["import", &with_login, "model.bin", "--rev", "v1"]).ok();
    assert_eq!(env.read("model.bin"), b"model one");
    let said = format!("{}{}", r.stdout, r.stderr);
    assert!(!said.contains("s3cret") && said.contains("tester:***@"), "{said}");
    assert!(said.contains("records the URL without its login"), "{said}");
    let pointer = String::from_utf8(env.read("model.bin.dvt")).unwrap();
    assert!(pointer.contains(&format!("repo = \"{url}\"")), "{pointer}");

    // No login anywhere now: refused, the hint names ~/.netrc, nothing changed.
    let r = dvt(&["update", "model.bin", "--rev", "v2"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("~/.netrc") && !r.stderr.contains("s3cret"),
        "{}",
        r.stderr
    );
    assert_eq!(env.read("model.bin"), b"model one");
    std::fs::write(
        env.home.join(".netrc"),
        "machine 127.0.0.1\n  login tester\n  password s3cret\n",
    )
    .unwrap();
    dvt(&["update", "model.bin", "--rev", "v2"]).ok();
    assert_eq!(env.read("model.bin"), b"model two");

    // One clone served both URLs, and it holds no login.
    let clones = kept_clones(&env);
    assert_eq!(clones.len(), 1, "{clones:?}");
    let grep = env.run("grep", &["-r", "-l", "s3cret", clones[0].to_str().unwrap()]);
    assert_eq!(grep.stdout, "", "the login is in the clone");
}

/// git's credential helpers (`credential.helper` in the global git config: a
/// keychain, `gh auth git-credential`, `store`) give the login for a private
/// repository, as they give it to git: to the first clone, to the fetches after,
/// and to `status`'s question whether an import has an update.
#[test]
fn git_credential_helpers_give_the_login_of_a_git_server() {
    let tls = tempfile::tempdir().unwrap();
    let ca = PrivateCa::make(&TestEnv::bare(), tls.path());
    let served = served_versions_with(Some("tester:s3cret"), Some(&ca));
    let env = TestEnv::new();
    let gitconfig = env.home.join("gitconfig");
    let store = env.home.join("git-credentials");
    std::fs::write(
        &gitconfig,
        format!("[credential]\n\thelper = store --file {}\n", store.display()),
    )
    .unwrap();
    std::fs::write(
        &store,
        format!("https://tester:s3cret@127.0.0.1:{}\n", served.server.port),
    )
    .unwrap();
    let dvt = |config: &std::path::Path, args: &[&str]| {
        let global = format!("GIT_CONFIG_GLOBAL={}", config.display());
        let cert = format!("SSL_CERT_FILE={}", ca.ca);
        env.run(
            "env",
            &[
                &[
                    global.as_str(),
                    cert.as_str(),
                    "setsid",
                    "-w",
                    env!("CARGO_BIN_EXE_dvt"),
                ],
                args,
            ]
            .concat(),
        )
    };
    let url = served.url.as_str();
    // Without the helper: refused, with the way to give a login.
    let r = dvt(
        std::path::Path::new("/dev/null"),
        &["import", url, "model.bin", "--rev", "v1"],
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("a credential helper in your git config"),
        "{}",
        r.stderr
    );
    assert!(!env.exists("model.bin"));

    dvt(&gitconfig, &["import", url, "model.bin", "--rev", "v1"]).ok();
    assert_eq!(env.read("model.bin"), b"model one");
    // status asks the server whether `v1` moved: the helper answers for it too.
    let r = dvt(std::path::Path::new("/dev/null"), &["status"]).ok();
    assert!(r.stderr.contains("warning"), "{}", r.stderr);
    let r = dvt(&gitconfig, &["status"]).ok();
    assert!(
        r.stdout.contains("up to date") && r.stderr.is_empty(),
        "{}{}",
        r.stdout,
        r.stderr
    );
    dvt(&gitconfig, &["update", "model.bin", "--rev", "v2"]).ok();
    assert_eq!(env.read("model.bin"), b"model two");
    // The login went nowhere: not in the pointer, not in the kept clone.
    let pointer = String::from_utf8(env.read("model.bin.dvt")).unwrap();
    assert!(!pointer.contains("s3cret") && !pointer.contains("tester"), "{pointer}");
    let clones = kept_clones(&env);
    let grep = env.run("grep", &["-r", "-l", "s3cret", clones[0].to_str().unwrap()]);
    assert_eq!(grep.stdout, "", "the login is in the clone");
}

/// A repository read by URL is cloned once into `~/.cache/dvt/clones` and
/// fetched after: new commits arrive, a tag moved there moves here, a branch
/// deleted there is gone here, HEAD follows the default branch; the URL is
/// written nowhere in the clone, a damaged clone is made anew, two
/// processes at once take turns, and a commit it holds is read offline.
#[test]
fn a_repository_read_by_url_is_kept_cloned_and_fetched() {
    let served = served_versions();
    let (source, bare, url) = (&served.source, &served.bare, served.url.clone());
    let there = |args: &[&str]| source.git(&[&["--git-dir", bare.to_str().unwrap()], args].concat());
    there(&["branch", "old", "v1"]);
    let env = TestEnv::new();
    // The model as `get` reads it there, and what `-v` said.
    let get = |args: &[&str]| -> (String, String) {
        let r = env
            .dvt(&[&["-v", "get", &url, "model.bin", "-o", "got.bin", "-f"], args].concat())
            .ok();
        (String::from_utf8(env.read("got.bin")).unwrap(), r.stderr)
    };
    let cat = |args: &[&str]| env.dvt(&[&["get", &url, "model.bin", "-o", "x.bin"], args].concat());

    let (got, said) = get(&["--rev", "old"]);
    assert_eq!(got, "model one");
    assert!(said.contains(&format!("cloned {url} into ")), "{said}");
    let clones = kept_clones(&env);
    assert_eq!(clones.len(), 1, "{clones:?}");
    let config = std::fs::read_to_string(clones[0].join("config")).unwrap();
    assert!(!config.contains("127.0.0.1"), "{config}");

    // A new commit there: fetched, not cloned again.
    source.write("model.bin", "model three");
    source.dvt(&["add", "model.bin"]).ok();
    source.dvt(&["push"]).ok();
    source.commit("v3");
    source.git(&[
        "push",
        "-q",
        bare.to_str().unwrap(),
        "HEAD:refs/heads/main",
        "HEAD:refs/heads/master",
    ]);
    let (got, said) = get(&[]);
    assert_eq!(got, "model three");
    assert!(said.contains(&format!("fetched {url} into ")), "{said}");
    // A tag moved, a branch deleted, the default branch changed there.
    there(&["tag", "-f", "v1", "v2"]);
    there(&["branch", "-D", "old"]);
    there(&["branch", "other", "v2"]);
    there(&["symbolic-ref", "HEAD", "refs/heads/other"]);
    assert_eq!(get(&["--rev", "v1"]).0, "model two");
    let r = cat(&["--rev", "old"]).fails();
    assert!(!env.path("x.bin").exists());
    assert!(r.stderr.contains("unknown revision `old`"), "{}", r.stderr);
    assert_eq!(get(&[]).0, "model two");
    // Too many packs gathered by fetches: made anew, as one.
    for n in 0..=64 {
        std::fs::write(clones[0].join(format!("objects/pack/pack-{n:040}.pack")), "").unwrap();
    }
    let (got, said) = get(&["--rev", "v2"]);
    assert_eq!(got, "model two");
    assert!(said.contains(&format!("cloned {url} into ")), "{said}");
    let packs = std::fs::read_dir(clones[0].join("objects/pack")).unwrap().count();
    assert!(packs <= 3, "{packs}");
    assert!(!clones[0].with_extension("new").exists(), "made beside, then moved in");
    // Damaged: made anew.
    std::fs::remove_dir_all(&clones[0]).unwrap();
    std::fs::write(&clones[0], "not a repository").unwrap();
    let (got, said) = get(&["--rev", "v2"]);
    assert_eq!(got, "model two");
    assert!(said.contains(&format!("cloned {url} into ")), "{said}");
    // Clones no command used for 90 days go when another is made; others stay.
    let kept = env.home.join(".cache/dvt/clones");
    let (old, recent) = (kept.join(format!("{:032}.git", 1)), kept.join(format!("{:032}.git", 2)));
    for (clone, days) in [(&old, 91), (&recent, 89)] {
        std::fs::create_dir_all(clone.join("objects")).unwrap();
        let lock = std::fs::File::create(clone.with_extension("lock")).unwrap();
        let then = std::time::SystemTime::now() - std::time::Duration::from_secs(days * 24 * 3600);
        lock.set_modified(then).unwrap();
    }
    // Two at once, on a clone neither has: one waits for the other.
    let url = format!("http://127.0.0.1:{}/data.git/", served.server.port);
    let children: Vec<_> = ["a.bin", "b.bin"]
        .map(|out| env.dvt_spawn(&["get", &url, "model.bin", "--rev", "v1", "-o", out]))
        .into_iter()
        .collect();
    for child in children {
        common::Run::from(child.wait_with_output().unwrap()).ok();
    }
    assert_eq!(
        (env.read("a.bin"), env.read("b.bin")),
        (b"model two".to_vec(), b"model two".to_vec())
    );
    assert!(!old.exists() && old.with_extension("lock").exists());
    assert!(recent.exists() && clones[0].exists());
    // A commit the clone holds is read without asking the server: with it gone too.
    let v2 = there(&["rev-parse", "v2^{commit}"]).stdout.trim().to_string();
    drop(served.server);
    let r = env
        .dvt(&["-v", "get", &url, "model.bin", "--rev", &v2, "-o", "offline.bin"])
        .ok();
    assert!(r.stderr.contains(&format!("holds {v2}: not fetched")), "{}", r.stderr);
    assert_eq!(env.read("offline.bin"), b"model two");
    let r = env.dvt(&["get", &url, "model.bin", "-o", "tip.bin"]).fails();
    assert!(
        r.stderr.contains(&format!("fetching `{url}` into its clone")),
        "{}",
        r.stderr
    );
    // A clone to make anew (too many packs) is made beside the old one and
    // swapped in when whole: failing here (no server), it leaves the old one,
    // which still serves the commits it holds.
    let key = &blake3::hash(url.as_bytes()).to_hex()[..32];
    let dir = kept.join(format!("{key}.git"));
    for n in 0..=64 {
        std::fs::write(dir.join(format!("objects/pack/pack-{n:040}.pack")), "").unwrap();
    }
    let r = env.dvt(&["get", &url, "model.bin", "-o", "tip.bin"]).fails();
    assert!(r.stderr.contains(&format!("cloning `{url}`")), "{}", r.stderr);
    assert!(dir.join("HEAD").is_file() && !dir.with_extension("new").exists());
    env.dvt(&["get", &url, "model.bin", "--rev", &v2, "-o", "held.bin"])
        .ok();
    assert_eq!(env.read("held.bin"), b"model two");
}

/// As DVC's `status`, dvt's asks each import's source whether it moved on:
/// over the network only the refs travel. A pinned import never moves, an
/// unreachable source is a warning, and `--no-updates` asks nothing.
#[test]
fn status_says_which_imports_have_an_update() {
    let served = served_versions();
    let (source, bare, url) = (&served.source, &served.bare, served.url.clone());
    let env = TestEnv::new();
    env.dvt(&["import", &url, "model.bin", "--rev", "main"]).ok();
    env.dvt(&["import", &url, "model.bin", "--rev", "v1", "-o", "v1.bin"])
        .ok();
    env.dvt(&["import", source.root.to_str().unwrap(), "data", "-o", "local"])
        .ok();
    let r = env.dvt(&["status"]).ok();
    assert_eq!(r.stdout, "Data and pointers are up to date.\n");

    source.write("model.bin", "model five");
    source.dvt(&["add", "model.bin"]).ok();
    source.dvt(&["push"]).ok();
    source.git(&["commit", "-q", "-am", "five"]);
    source.git(&["push", "-q", bare.to_str().unwrap(), "main"]);
    let r = env.dvt(&["status"]).ok();
    assert_eq!(
        r.stdout,
        format!(
            "local.dvt: update available from `{}` (`dvt update local.dvt`)\n\
             model.bin.dvt: update available from `{url}` at `main` (`dvt update model.bin.dvt`)\n",
            source.root.display()
        )
    );
    let updates = env.dvt(&["status", "--json"]).ok().json()["updates"].clone();
    let available: Vec<(&str, bool)> = updates
        .as_array()
        .unwrap()
        .iter()
        .map(|u| (u["pointer"].as_str().unwrap(), u["available"].as_bool().unwrap()))
        .collect();
    assert_eq!(
        available,
        [("local.dvt", true), ("model.bin.dvt", true), ("v1.bin.dvt", false)]
    );
    assert_eq!(
        env.dvt(&["status", "--no-updates"]).ok().stdout,
        "Data and pointers are up to date.\n"
    );
    // Updates are news, not differences: `status -q` still exits 0.
    assert_eq!(env.dvt(&["status", "-q"]).code, 0);
    env.dvt(&["update", "model.bin"]).ok();
    assert!(
        !env.dvt(&["status", "model.bin"])
            .ok()
            .stdout
            .contains("update available")
    );

    drop(served.server);
    let r = env.dvt(&["status", "model.bin"]).ok();
    assert!(
        r.stderr.contains("warning: model.bin.dvt: could not ask") && r.stdout.contains("up to date"),
        "{}{}",
        r.stdout,
        r.stderr
    );

    // A source that takes the connection and never answers (a firewall
    // dropping packets, say) is given up on after DVT_UPDATE_WAIT seconds, and
    // the scratch repository it was asked from is not left in the temp dir.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let pointer = String::from_utf8(env.read("model.bin.dvt")).unwrap();
    env.write(
        "model.bin.dvt",
        pointer.replace(&url, &format!("http://127.0.0.1:{port}/data.git")),
    );
    let tmp = tempfile::tempdir().unwrap();
    let out = env
        .dvt_cmd(&["status", "model.bin"])
        .env("DVT_UPDATE_WAIT", "0.5")
        .env("TMPDIR", tmp.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("could not ask") && stderr.contains("no answer within 0.5 s"),
        "{stderr}"
    );
    let left: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "left in the temp dir: {left:?}");
}

/// `core.autostage` (as DVC's): what a command wrote for git to keep is
/// staged, and only that; git reads the index dvt wrote as its own.
#[test]
fn autostage_stages_what_dvt_wrote_for_git() {
    // Set for every repository (the global config), it stages what `init` wrote.
    let fresh = TestEnv::bare();
    fresh.git(&["init", "-q", "-b", "main"]);
    fresh.dvt(&["config", "--global", "core.autostage", "true"]).ok();
    let r = fresh.dvt(&["init"]).ok();
    assert!(r.stderr.contains("staged with git (core.autostage)"), "{}", r.stderr);
    assert_eq!(
        fresh.git(&["diff", "--cached", "--name-only"]).stdout,
        ".dvt/.gitignore\n.dvt/config.toml\n"
    );

    let env = TestEnv::new();
    env.commit("init");
    let staged = || env.git(&["diff", "--cached", "--name-status", "--no-renames"]).stdout;
    // Off by default: the hint says what to add, and nothing is staged.
    env.write("model.bin", "m1");
    let r = env.dvt(&["add", "model.bin"]).ok();
    assert!(
        r.stderr.contains("git add") && !r.stderr.contains("staged with git"),
        "{}",
        r.stderr
    );
    assert_eq!(staged(), "");
    env.commit("model");

    env.dvt(&["config", "core.autostage", "true"]).ok();
    assert_eq!(staged(), "M\t.dvt/config.toml\n");
    env.write("data/a.csv", "1\n");
    env.write("notes.txt", "not dvt's\n");
    let r = env.dvt(&["add", "data"]).ok();
    assert!(
        r.stderr
            .contains("staged with git (core.autostage): data.dvt .gitignore"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("git add"), "{}", r.stderr);
    assert_eq!(staged(), "M\t.dvt/config.toml\nM\t.gitignore\nA\tdata.dvt\n");
    // What is staged is what is on disk: git sees no difference left.
    assert_eq!(env.git(&["diff", "--name-only"]).stdout, "");
    env.dvt(&["move", "model.bin", "models/model.bin"]).ok();
    assert_eq!(
        staged(),
        "M\t.dvt/config.toml\nM\t.gitignore\nA\tdata.dvt\nD\tmodel.bin.dvt\nA\tmodels/.gitignore\nA\tmodels/model.bin.dvt\n"
    );
    // A stage and its results: dvt.toml, dvt.lock and the out's .gitignore.
    env.write("params.yaml", "k: 1\n");
    let r = env
        .dvt(&[
            "-q",
            "stage",
            "add",
            "-n",
            "count",
            "-d",
            "data",
            "-o",
            "count.txt",
            "ls data > count.txt",
        ])
        .ok();
    assert_eq!(r.stderr, "");
    env.dvt(&["repro", "-q"]).ok();
    let now = staged();
    assert!(now.contains("A\tdvt.lock\nA\tdvt.toml\n"), "{now}");
    assert!(
        !now.contains("notes.txt") && !now.contains(".dvt/tmp") && !now.contains("params.yaml"),
        "{now}"
    );
    env.git(&["commit", "-q", "-m", "staged by dvt"]);
    let left = env.git(&["status", "--porcelain"]).stdout;
    assert_eq!(left, "?? notes.txt\n?? params.yaml\n");

    // Git holding its index: the command's work stands, a warning says so.
    std::fs::write(env.path(".git/index.lock"), "").unwrap();
    env.write("data/b.csv", "2\n");
    let r = env.dvt(&["add", "data"]).ok();
    assert!(
        r.stderr.contains("warning: could not stage with git (core.autostage)"),
        "{}",
        r.stderr
    );
    std::fs::remove_file(env.path(".git/index.lock")).unwrap();
    assert_eq!(staged(), "");
    assert_eq!(env.git(&["status", "--porcelain", "data.dvt"]).stdout, " M data.dvt\n");
    // Off again: unstaging nothing, staging nothing.
    env.dvt(&["config", "--unset", "core.autostage"]).ok();
    assert_eq!(staged(), "");

    // `destroy` stages what it deleted, though the setting went with `.dvt`.
    env.dvt(&["config", "core.autostage", "true"]).ok();
    env.git(&["commit", "-q", "-am", "before destroy"]);
    let r = env.dvt(&["destroy", "-f"]).ok();
    assert!(r.stderr.contains("staged with git (core.autostage)"), "{}", r.stderr);
    assert!(!r.stderr.contains("git add -A"), "{}", r.stderr);
    assert_eq!(
        staged(),
        "D\t.dvt/.gitignore\nD\t.dvt/config.toml\nD\tdata.dvt\nD\tdvt.lock\nD\tdvt.toml\nD\tmodels/model.bin.dvt\n"
    );
    assert_eq!(
        env.git(&["status", "--porcelain"])
            .stdout
            .lines()
            .filter(|l| l.starts_with(' '))
            .count(),
        0
    );
}

#[test]
fn post_checkout_does_nothing_during_a_rebase() {
    let env = TestEnv::new();
    env.write("model.bin", "base model");
    env.dvt(&["add", "model.bin"]).ok();
    env.commit("base");
    env.dvt(&["install-hooks"]).ok();
    env.git(&["checkout", "-q", "-b", "feat"]);
    env.write("model.bin", "feature model");
    env.dvt(&["add", "model.bin"]).ok();
    env.git(&["commit", "-q", "-am", "feature model"]);
    env.git_with_dvt(&["checkout", "-q", "main"]).ok();
    assert_eq!(env.read("model.bin"), b"base model");
    env.write("notes.txt", "unrelated\n");
    env.git(&["add", "notes.txt"]);
    env.git(&["commit", "-q", "-m", "notes"]);
    env.git_with_dvt(&["checkout", "-q", "feat"]).ok();
    assert_eq!(env.read("model.bin"), b"feature model");
    // git runs post-checkout as the rebase checks out `main`: dvt must leave the
    // data alone, so that after the rebase it still matches feat's pointers.
    env.git_with_dvt(&["rebase", "-q", "main"]).ok();
    assert_eq!(env.read("model.bin"), b"feature model");
    let s = env.dvt(&["status", "--json"]).ok().json();
    assert_eq!(s["pointers"][0]["workspace"], "unchanged", "{s}");
}

/// The `id` in the pointer `file` at git revision `rev`.
fn pointer_id_at(env: &TestEnv, rev: &str, file: &str) -> String {
    let text = env.git(&["show", &format!("{rev}:{file}")]).stdout;
    let line = text.lines().find(|l| l.starts_with("id = ")).unwrap();
    line.trim_start_matches("id = ").trim_matches('"').to_string()
}

#[test]
fn the_merge_driver_merges_directories_file_by_file_and_marks_real_conflicts() {
    let env = TestEnv::new();
    let remote = tempfile::tempdir().unwrap();
    env.dvt(&["remote", "add", "-d", "store", remote.path().to_str().unwrap()])
        .ok();
    let r = env.dvt(&["install-hooks"]).ok();
    assert!(r.stdout.contains("merge-driver"), "{}", r.stdout);
    let save = |msg: &str| {
        env.dvt(&["add", "data", "model.bin"]).ok();
        env.dvt(&["push"]).ok();
        env.commit(msg);
    };
    env.write("data/a.csv", "a0\n");
    env.write("data/b.csv", "b0\n");
    env.write("data/c.csv", "c0\n");
    env.write("model.bin", "model base");
    save("base");
    env.git(&["checkout", "-q", "-b", "feat"]);
    env.write("data/a.csv", "a0\na-feat\n");
    env.write("data/new/d.csv", "d-feat\n");
    env.write("model.bin", "model feat");
    save("feat");
    // A description written by hand on one branch only: the merge keeps it.
    let described = format!(
        "{}desc = \"sensor readings\"\n",
        String::from_utf8(env.read("data.dvt")).unwrap()
    );
    env.write("data.dvt", described);
    env.commit("describe the data");
    env.git_with_dvt(&["checkout", "-q", "main"]).ok();
    env.write("data/b.csv", "b0\nb-main\n");
    std::fs::remove_file(env.path("data/c.csv")).unwrap();
    env.write("model.bin", "model main");
    env.dvt(&["add", "data", "model.bin"]).ok();
    env.commit("main");
    // As after a colleague's push: feat's listing and new file are only on the remote.
    env.remove_object(&pointer_id_at(&env, "feat", "data.dvt"));
    env.remove_object(blake3::hash(b"a0\na-feat\n").to_hex().as_ref());

    let r = env.git_with_dvt(&["merge", "feat", "-m", "merge feat"]);
    assert_eq!(r.code, 1, "model.bin conflicts: {}", r.stdout);
    assert!(r.stderr.contains("dvt: merged `data.dvt`"), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("conflict in `model.bin.dvt`: `model.bin`: changed on both branches"),
        "{}",
        r.stderr
    );
    assert_eq!(
        env.git(&["status", "--porcelain"]).stdout,
        "M  data.dvt\nUU model.bin.dvt\n"
    );
    let merged = String::from_utf8(env.read("data.dvt")).unwrap();
    assert!(merged.ends_with("desc = \"sensor readings\"\n"), "{merged}");
    let conflicted = String::from_utf8(env.read("model.bin.dvt")).unwrap();
    assert!(
        conflicted.contains("<<<<<<< ours\n") && conflicted.contains(">>>>>>> theirs\n"),
        "{conflicted}"
    );
    // Every command names the conflict and says how to resolve it.
    let r = env.dvt(&["checkout"]).fails();
    assert!(
        r.stderr
            .contains("model.bin.dvt` has an unresolved git merge conflict (line 5)")
            && r.stderr.contains("git checkout --ours ")
            && r.stderr.contains("model.bin.dvt` (or `--theirs`)"),
        "{}",
        r.stderr
    );
    // status too, without `git checkout -- FILE`, which git refuses mid-merge.
    let r = env.dvt(&["status"]).fails();
    assert!(
        r.stderr.contains(
            "hint: keep one side (`git checkout --ours model.bin.dvt` or `--theirs`), or mend it by hand and \
             `git add model.bin.dvt`; then `dvt checkout`"
        ) && !r.stderr.contains("git checkout -- "),
        "{}",
        r.stderr
    );
    env.git(&["checkout", "--theirs", "model.bin.dvt"]);
    env.dvt(&["pull"]).ok();
    assert_eq!(env.read("data/a.csv"), b"a0\na-feat\n", "feat's change");
    assert_eq!(env.read("data/b.csv"), b"b0\nb-main\n", "main's change");
    assert!(!env.exists("data/c.csv"), "main's deletion");
    assert_eq!(env.read("data/new/d.csv"), b"d-feat\n", "feat's new file");
    assert_eq!(env.read("model.bin"), b"model feat");
    env.commit("merged");
    let s = env.dvt(&["status", "--json"]).ok().json();
    assert!(
        s["pointers"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["workspace"] == "unchanged"),
        "{s}"
    );
    env.dvt(&["fsck"]).ok();

    // The same file changed differently on both branches is a conflict, named.
    env.git(&["checkout", "-q", "-b", "other"]);
    env.write("data/a.csv", "a-other\n");
    save("other");
    env.git_with_dvt(&["checkout", "-q", "main"]).ok();
    env.write("data/a.csv", "a-main\n");
    env.write("data/b.csv", "b-main-2\n");
    save("main 2");
    let r = env.git_with_dvt(&["merge", "other", "-m", "merge other"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr
            .contains("conflict in `data.dvt`: `data/a.csv`: changed differently on both branches"),
        "{}",
        r.stderr
    );
    assert!(
        String::from_utf8(env.read("data.dvt"))
            .unwrap()
            .contains("<<<<<<< ours")
    );
    env.git(&["merge", "--abort"]);

    // A merge that completes checks the data out (post-merge), as `git pull` does.
    env.git(&["checkout", "-q", "-b", "ahead"]);
    env.write("data/b.csv", "b-ahead\n");
    save("ahead");
    env.git_with_dvt(&["checkout", "-q", "main"]).ok();
    assert_eq!(env.read("data/b.csv"), b"b-main-2\n");
    env.git_with_dvt(&["merge", "-q", "ahead"]).ok();
    assert_eq!(env.read("data/b.csv"), b"b-ahead\n");

    // A rebase (`git pull --rebase`) checks the data out at its end (post-rewrite):
    // its own checkouts are skipped, and without it the workspace kept the old
    // data, which a `dvt add` would then have recorded over the new.
    env.git_with_dvt(&["checkout", "-q", "-b", "notes", "main~1"]).ok();
    assert_eq!(env.read("data/b.csv"), b"b-main-2\n");
    env.write("notes.txt", "notes\n");
    env.git(&["add", "notes.txt"]);
    env.git_with_dvt(&["commit", "-q", "-m", "notes"]).ok();
    let r = env.git_with_dvt(&["rebase", "-q", "main"]).ok();
    assert_eq!(env.read("data/b.csv"), b"b-ahead\n", "{}", r.stderr);
    // `--amend` changes no data: nothing to check out, nothing said.
    let r = env
        .git_with_dvt(&["commit", "-q", "--amend", "-m", "notes, amended"])
        .ok();
    assert!(!r.stderr.contains("dvt:"), "{}", r.stderr);
    env.git_with_dvt(&["checkout", "-q", "main"]).ok();

    env.dvt(&["install-hooks", "--uninstall"]).ok();
    assert!(!env.exists(".git/hooks/post-rewrite"));
    assert!(env.run("git", &["config", "merge.dvt.driver"]).stdout.is_empty());
    let attributes = std::fs::read_to_string(env.path(".git/info/attributes")).unwrap_or_default();
    assert!(!attributes.contains("merge=dvt"), "{attributes}");
}

/// After `git reset` (which runs no hook) the workspace holds another recorded
/// version: `status` says the cache holds it, and that `dvt checkout` brings the
/// pointer's, before a `dvt add` records the workspace's over it; `add` says it
/// again, with the way back.
#[test]
fn status_says_when_the_workspace_holds_another_recorded_version() {
    let env = TestEnv::new();
    let settle = || std::thread::sleep(std::time::Duration::from_millis(120));
    let version = |n: &str| {
        env.write("d.txt", format!("d {n}\n"));
        env.write("dir/a", format!("a {n}\n"));
        env.write(&format!("dir/only-{n}"), "x\n");
        settle();
        env.dvt(&["add", "d.txt", "dir"]).ok();
        env.commit(n);
    };
    version("one");
    std::fs::remove_file(env.path("dir/only-one")).unwrap();
    version("two");
    let two = env.git(&["rev-parse", "HEAD"]).stdout.trim().to_string();
    env.git(&["reset", "-q", "--hard", "HEAD~1"]);
    let r = env.dvt(&["status"]).ok();
    assert!(
        r.stderr
            .contains("the cache already holds what the workspace has at `d.txt`, `dir`")
            && r.stderr
                .contains("`dvt checkout d.txt dir` brings the version the pointer names"),
        "{}",
        r.stderr
    );
    let j = env.dvt(&["status", "--json"]).ok().json();
    assert!(
        j["pointers"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["workspace_in_cache"] == true),
        "{j}"
    );
    // Added all the same, it is said once more, with the way back.
    let r = env.dvt(&["add", "d.txt"]).ok();
    assert!(
        r.stderr.contains("note: the cache held this content of d.txt already"),
        "{}",
        r.stderr
    );
    env.git(&["checkout", "--", "d.txt.dvt"]);
    env.dvt(&["checkout", "d.txt", "dir"]).ok();
    assert_eq!(env.read("d.txt"), b"d one\n");
    assert_eq!(env.read("dir/a"), b"a one\n");
    // A change of your own is not a recorded version: no such hint.
    env.write("d.txt", "edited\n");
    settle();
    let r = env.dvt(&["status"]).ok();
    assert!(r.stdout.contains("d.txt.dvt: modified"), "{}", r.stdout);
    assert!(!r.stderr.contains("already holds"), "{}", r.stderr);

    // The pointer names a version the cache lacks (a teammate's, after a `git
    // pull` whose hook could not check it out): `pull`, not `checkout`.
    let store = env.home.join("store");
    env.dvt(&["remote", "add", "-d", "store", store.to_str().unwrap()]).ok();
    env.git(&["checkout", &two, "--", "d.txt.dvt"]);
    env.dvt(&["push", "d.txt"]).ok();
    env.remove_object(blake3::hash(b"d two\n").to_hex().as_ref());
    env.write("d.txt", "d one\n");
    settle();
    let r = env.dvt(&["status"]).ok();
    assert!(
        r.stderr
            .contains("the cache lacks the one the pointer names (new from `git pull`?): `dvt pull d.txt` brings it"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("`dvt checkout PATH` discards"), "{}", r.stderr);
    env.dvt(&["pull", "d.txt"]).ok();
    assert_eq!(env.read("d.txt"), b"d two\n");
}

#[test]
fn the_merge_driver_marks_a_conflict_when_a_version_is_nowhere() {
    let env = TestEnv::new();
    env.dvt(&["install-hooks"]).ok();
    env.write("data/a.csv", "a0\n");
    env.write("data/b.csv", "b0\n");
    env.dvt(&["add", "data"]).ok();
    env.commit("base");
    env.git(&["checkout", "-q", "-b", "feat"]);
    env.write("data/a.csv", "a-feat\n");
    env.dvt(&["add", "data"]).ok();
    env.commit("feat");
    env.git_with_dvt(&["checkout", "-q", "main"]).ok();
    env.write("data/b.csv", "b-main\n");
    env.dvt(&["add", "data"]).ok();
    env.commit("main");
    let ours = String::from_utf8(env.read("data.dvt")).unwrap();
    env.remove_object(&pointer_id_at(&env, "feat", "data.dvt"));
    // No remote to fetch feat's listing from: a conflict that says why, not a guess.
    let r = env.git_with_dvt(&["merge", "feat", "-m", "merge"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr
            .contains("conflict in `data.dvt`: `data`: could not read a version to merge")
            && r.stderr.contains(&pointer_id_at(&env, "feat", "data.dvt")),
        "{}",
        r.stderr
    );
    let text = String::from_utf8(env.read("data.dvt")).unwrap();
    assert!(
        text.starts_with(ours.lines().next().unwrap()) && text.contains("<<<<<<< ours"),
        "{text}"
    );
    assert_eq!(env.read("data/b.csv"), b"b-main\n", "the workspace is untouched");
}

#[test]
fn a_linked_worktree_uses_the_main_worktrees_cache() {
    let env = TestEnv::new();
    env.write("data/a.csv", "a\n");
    env.dvt(&["add", "data"]).ok();
    env.commit("data");
    let wt = env.root.parent().unwrap().join("wt");
    env.git(&["worktree", "add", "-q", wt.to_str().unwrap(), "-b", "exp"]);
    // No remote, no fetch: the objects are the main worktree's.
    env.dvt_in(&wt, &["checkout"]).ok();
    assert_eq!(std::fs::read(wt.join("data/a.csv")).unwrap(), b"a\n");
    std::fs::write(wt.join("model.bin"), "trained in the worktree").unwrap();
    env.dvt_in(&wt, &["add", "model.bin"]).ok();
    assert!(!wt.join(".dvt/cache").exists(), "no second cache");
    let model = blake3::hash(b"trained in the worktree").to_hex().to_string();
    assert!(env.has_object(&model));
    // gc in the main worktree keeps what the linked one needs, until it is removed.
    let r = env.dvt(&["gc", "-f"]).ok();
    assert!(r.stdout.contains("Nothing to delete"), "{}{}", r.stdout, r.stderr);
    assert!(env.has_object(&model));
    env.git(&["worktree", "remove", "--force", wt.to_str().unwrap()]);
    let r = env.dvt(&["gc", "-f"]).ok();
    assert!(r.stderr.contains("no longer uses this cache"), "{}", r.stderr);
    assert!(!env.has_object(&model));
    env.dvt(&["fsck"]).ok();
}

/// `dvt get-url URL [OUT]`, as `dvc get-url`: what is at a URL (a local path
/// with OUT) is downloaded, outside any repository too, and nothing is
/// tracked; OUT is replaced only with `--force`, once the download is whole.
#[test]
fn get_url_downloads_a_url_without_tracking_it() {
    let outside = tempfile::tempdir().unwrap();
    let src = outside.path().join("exports");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::write(src.join("readings.csv"), "t,v\n0,1\n").unwrap();
    std::fs::write(src.join("sub/run.sh"), "echo hi\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(src.join("sub/run.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let here = tempfile::tempdir().unwrap();
    let env = TestEnv::bare();
    let url = format!("file://{}", src.display());
    let r = env.dvt_in(here.path(), &["get-url", &url]).ok();
    assert!(r.stdout.contains("(16 B, 2 files) from file://"), "{}", r.stdout);
    assert_eq!(
        std::fs::read(here.path().join("exports/readings.csv")).unwrap(),
        b"t,v\n0,1\n"
    );
    let mode = std::fs::metadata(here.path().join("exports/sub/run.sh"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o755);
    // A local path, with OUT; a file.
    let csv = src.join("readings.csv");
    let j = env
        .dvt_in(here.path(), &["get-url", csv.to_str().unwrap(), "copy.csv", "--json"])
        .ok()
        .json();
    assert_eq!(
        (j["kind"].as_str(), j["files"].as_u64(), j["bytes"].as_u64()),
        (Some("file"), Some(1), Some(8))
    );
    let r = env.dvt_in(here.path(), &["get-url", &url, "copy.csv"]).fails();
    assert!(r.stderr.contains("already exists"), "{}", r.stderr);
    assert_eq!(std::fs::read(here.path().join("copy.csv")).unwrap(), b"t,v\n0,1\n");
    env.dvt_in(here.path(), &["get-url", &url, "copy.csv", "-f"]).ok();
    assert!(here.path().join("copy.csv/sub/run.sh").is_file());
    let r = env
        .dvt_in(here.path(), &["get-url", &format!("{url}/nothing"), "x"])
        .fails();
    assert!(r.stderr.contains("there is nothing there"), "{}", r.stderr);
    let r = env.dvt_in(here.path(), &["get-url", &url, "x", "--rev", "HEAD"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    let names: Vec<_> = std::fs::read_dir(here.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 2, "nothing else written: {names:?}");
}

/// `import-url --no-download` (DVC's) reads the data only to hash it: the
/// pointer records the same ids a download would, and nothing is kept. `push`
/// leaves it out and says so, `status -c` names the URL, and `pull` downloads
/// it from there, checked against the pointer (in a clone with no remote at
/// all, too); a URL whose data changed since is an error naming `dvt update`,
/// and `update --no-download` moves the pointer without keeping the data.
#[test]
fn import_url_no_download_writes_the_pointer_and_pull_gets_the_data_from_the_url() {
    let env = TestEnv::new();
    let outside = tempfile::tempdir().unwrap();
    let src = outside.path().join("exports");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::write(src.join("readings.csv"), "t,v\n0,1\n").unwrap();
    std::fs::write(src.join("sub/big.bin"), noise(3_000_000, 5)).unwrap();
    let model = outside.path().join("model.bin");
    std::fs::write(&model, noise(70_000, 3)).unwrap();
    let (src_s, model_s) = (src.to_str().unwrap(), model.to_str().unwrap());
    let store = outside.path().join("store");
    std::fs::create_dir(&store).unwrap();
    env.dvt(&["remote", "add", "-d", "store", store.to_str().unwrap()]).ok();

    let r = env.dvt(&["import-url", src_s, "data", "--no-download"]).ok();
    assert!(
        r.stdout.contains("imported data (2 files")
            && r.stdout.contains("no data downloaded (`dvt pull` gets it from there)"),
        "{}",
        r.stdout
    );
    let j = env.dvt(&["import-url", model_s, "--no-exec", "--json"]).ok().json();
    assert_eq!(j["downloaded"], false, "{j}");
    assert!(!env.exists("data") && !env.exists("model.bin"));
    assert!(env.exists("data.dvt") && env.exists("model.bin.dvt"));
    // The ids are those a download makes.
    let got = TestEnv::new().dvt(&["import-url", src_s, "--json"]).ok().json();
    let pointer = String::from_utf8(env.read("data.dvt")).unwrap();
    assert!(pointer.contains(&format!("id = {}", got["id"])), "{pointer}");
    let r = env.dvt(&["status", "data"]).ok();
    assert!(r.stdout.contains("not in cache"), "{}", r.stdout);
    let r = env.dvt(&["status", "-c"]).ok();
    assert!(
        r.stdout.contains(&format!(
            "data: 1 object in neither (imported from {src_s}: `dvt pull` downloads from there)"
        )),
        "{}",
        r.stdout
    );

    // gc has nothing of it to keep, and does not stop for its manifest; what
    // lists files without reading data says where they are.
    env.dvt(&["gc", "-f"]).ok();
    let r = env.dvt(&["list", ".", "data"]).fails();
    assert!(
        r.stderr.contains(&format!(
            "`data.dvt` was imported from `{src_s}` without being downloaded, and no remote has it"
        )),
        "{}",
        r.stderr
    );

    // Nothing to push, and no failure for it.
    let r = env.dvt(&["push"]).ok();
    assert!(
        r.stdout.contains(
            "left out 2 paths imported from a URL and not downloaded (`dvt pull` gets them from there): data, model.bin"
        ),
        "{}",
        r.stdout
    );
    assert_eq!(
        env.dvt(&["push", "--json"]).ok().json()["not_downloaded"][1],
        "model.bin"
    );
    env.commit("imports");
    // A tag does not ask the remote for it either.
    env.dvt(&["tag", "v1"]).ok();

    // A clone pulls it from the URLs, though the remote never had it.
    let b = env.clone_repo();
    let r = b.dvt(&["pull"]).ok();
    assert!(
        r.stdout.contains("from where they were imported: data, model.bin"),
        "{}",
        r.stdout
    );
    assert_eq!(b.read("data/sub/big.bin"), noise(3_000_000, 5));
    assert_eq!(b.read("model.bin"), noise(70_000, 3));
    assert!(temp_leftovers(&b.root).is_empty(), "{:?}", temp_leftovers(&b.root));
    // Now in its cache, it is pushed as any data.
    let r = b.dvt(&["push"]).ok();
    assert!(r.stdout.contains("pushed 4 objects"), "{}", r.stdout);
    std::fs::remove_dir_all(&store).unwrap();

    // With no remote at all, the URL alone gives it.
    let c = env.clone_repo();
    c.dvt(&["remote", "remove", "store"]).ok();
    let r = c.dvt(&["pull", "model.bin"]).ok();
    assert!(
        r.stdout
            .contains("no remote is configured: fetched from where they were imported: model.bin"),
        "{}",
        r.stdout
    );
    assert_eq!(c.read("model.bin"), noise(70_000, 3));

    // The URL has other bytes now: an error that says so; nothing checked out.
    std::fs::write(src.join("sub/big.bin"), noise(3_000_000, 6)).unwrap();
    let r = c.dvt(&["pull", "data"]).fails();
    assert!(
        r.stderr.contains(&format!(
            "`{src_s}` is not what `data.dvt` imported from it any more (other bytes): `dvt update` it"
        )),
        "{}",
        r.stderr
    );
    assert!(!c.exists("data"));
    std::fs::write(src.join("readings.csv"), "t,v\n0,1\n1,2\n").unwrap();
    let r = c.dvt(&["pull", "data"]).fails();
    assert!(r.stderr.contains("(other sizes)"), "{}", r.stderr);

    // `update --no-download` records what is there now, keeping nothing.
    let r = c.dvt(&["update", "--no-download", "data"]).ok();
    assert!(
        r.stdout.contains(&format!("updated data.dvt from {src_s}")),
        "{}",
        r.stdout
    );
    assert!(!c.exists("data"));
    c.dvt(&["pull", "data"]).ok();
    assert_eq!(c.read("data/sub/big.bin"), noise(3_000_000, 6));
    assert_eq!(c.read("data/readings.csv"), b"t,v\n0,1\n1,2\n");

    // `--to-remote` keeps no copy either, but the two do not go together.
    let r = env.dvt(&["import-url", model_s, "m2", "--no-download", "--to-remote"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
}

/// A registry that imported from URLs with `--no-download` (its remote never
/// had the data): `get`, `import` and `cat` of it read the data from the URLs,
/// checked against its pointers, as a pull there would; a URL whose data
/// changed since is an error that says so.
#[test]
fn readers_of_a_registry_get_its_url_imports_from_the_urls() {
    let registry = TestEnv::new();
    let outside = tempfile::tempdir().unwrap();
    let src = outside.path().join("exports");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::write(src.join("readings.csv"), "t,v\n0,1\n").unwrap();
    std::fs::write(src.join("sub/big.bin"), noise(2_000_000, 7)).unwrap();
    let model = outside.path().join("model.bin");
    std::fs::write(&model, noise(70_000, 3)).unwrap();
    registry
        .dvt(&["import-url", src.to_str().unwrap(), "data", "--no-download"])
        .ok();
    registry
        .dvt(&["import-url", model.to_str().unwrap(), "--no-download"])
        .ok();
    registry.commit("imports");
    let reg = registry.root.to_str().unwrap();

    let user = TestEnv::new();
    user.dvt(&["get", reg, "data", "-o", "got"]).ok();
    assert_eq!(user.read("got/sub/big.bin"), noise(2_000_000, 7));
    assert_eq!(user.read("got/readings.csv"), b"t,v\n0,1\n");
    user.dvt(&["import", reg, "model.bin"]).ok();
    assert_eq!(user.read("model.bin"), noise(70_000, 3));
    let r = user.dvt(&["cat", "--repo", reg, "data/readings.csv"]).ok();
    assert_eq!(r.stdout, "t,v\n0,1\n");

    // What is at the URL now is not what the registry imported: an error.
    std::fs::write(&model, noise(70_000, 4)).unwrap();
    let other = TestEnv::new();
    let r = other.dvt(&["get", reg, "model.bin"]).fails();
    assert!(
        r.stderr.contains(&format!(
            "`{}` is not what `model.bin.dvt` imported from it any more (other bytes)",
            model.display()
        )),
        "{}",
        r.stderr
    );
    assert!(!other.exists("model.bin"));

    // In the registry itself, `cat` reads it too (nothing was downloaded there).
    std::fs::write(&model, noise(70_000, 3)).unwrap();
    let r = registry.dvt(&["cat", "model.bin"]).ok();
    assert_eq!(r.stdout, String::from_utf8_lossy(&noise(70_000, 3)));
}

/// Registries that import from registries: readers follow each import to where
/// its data is, however many repositories away (as DVC's), when no remote on the
/// way has it; the data is checked against every pointer on the way.
#[test]
fn readers_follow_a_chain_of_imports_to_the_data() {
    // a: the data, pushed to its remote (its cache emptied: the remote is all there is).
    let a = TestEnv::new();
    let a_remote = tempfile::tempdir().unwrap();
    a.dvt(&["remote", "add", "-d", "store", a_remote.path().to_str().unwrap()])
        .ok();
    a.write("data/readings.csv", "t,v\n0,1\n");
    a.write("data/sub/big.bin", noise(300_000, 5));
    a.dvt(&["add", "data"]).ok();
    a.commit("data");
    a.dvt(&["push"]).ok();
    std::fs::remove_dir_all(a.path(".dvt/cache")).unwrap();
    // b imports it without downloading it; c imports it from b, and no remote
    // of theirs has it.
    let b = TestEnv::new();
    b.dvt(&["import", a.root.to_str().unwrap(), "data", "-o", "raw", "--no-download"])
        .ok();
    b.commit("import");
    let c = TestEnv::new();
    c.dvt(&["import", b.root.to_str().unwrap(), "raw", "--no-download"])
        .ok();
    c.commit("import");
    let c_url = format!("file://{}", c.root.display());
    for env in [&b, &c] {
        std::fs::remove_dir_all(env.path(".dvt/cache")).unwrap();
    }

    let user = TestEnv::new();
    // Listing needs the directory's manifest only, which comes the same way.
    let r = user.dvt(&["list", &c_url, "raw", "-R"]).ok();
    assert!(
        r.stdout.contains("readings.csv") && r.stdout.contains("sub/big.bin"),
        "{}",
        r.stdout
    );
    user.dvt(&["get", &c_url, "raw", "-o", "got"]).ok();
    assert_eq!(user.read("got/sub/big.bin"), noise(300_000, 5));
    assert_eq!(user.read("got/readings.csv"), b"t,v\n0,1\n");
    let r = user
        .dvt(&["cat", "--repo", c.root.to_str().unwrap(), "raw/readings.csv"])
        .ok();
    assert_eq!(r.stdout, "t,v\n0,1\n");
    user.dvt(&["import", &c_url, "raw", "-o", "mine"]).ok();
    assert_eq!(user.read("mine/sub/big.bin"), noise(300_000, 5));

    // The end of the chain lacks it (and no cache on the way has it since): the
    // error says where dvt looked last.
    for env in [&b, &c] {
        let _ = std::fs::remove_dir_all(env.path(".dvt/cache"));
    }
    for entry in std::fs::read_dir(a_remote.path()).unwrap() {
        let path = entry.unwrap().path();
        match path.is_dir() {
            true => std::fs::remove_dir_all(path).unwrap(),
            false => std::fs::remove_file(path).unwrap(),
        }
    }
    let other = TestEnv::new();
    let r = other.dvt(&["get", &c_url, "raw", "-o", "got"]).fails();
    let (b_path, a_path) = (b.root.to_str().unwrap(), a.root.to_str().unwrap());
    assert!(
        r.stderr.contains(&format!("its source (`{b_path}`) could not give it"))
            && r.stderr.contains(&format!("its source (`{a_path}`) could not give it"))
            && r.stderr
                .contains("the source repository's remote `store` does not have object"),
        "each repository on the way is named: {}",
        r.stderr
    );
    assert!(!other.exists("got"));
}

/// A local file too big to read into memory (over 8 MiB) is stored as `add` stores
/// one, straight from where it is; a symbolic link is read as the file it names.
#[test]
fn import_url_stores_big_local_files_from_where_they_are() {
    let env = TestEnv::new();
    let outside = tempfile::tempdir().unwrap();
    let src = outside.path().join("exports");
    std::fs::create_dir_all(&src).unwrap();
    let big = noise(9 << 20, 11);
    std::fs::write(outside.path().join("weights.bin"), &big).unwrap();
    std::fs::write(src.join("model.bin"), &big).unwrap();
    std::os::unix::fs::symlink(outside.path().join("weights.bin"), src.join("linked.bin")).unwrap();
    env.dvt(&["import-url", src.to_str().unwrap(), "models"]).ok();
    for f in ["models/model.bin", "models/linked.bin"] {
        assert!(env.read(f) == big, "{f}");
    }
    assert!(temp_leftovers(&env.root).is_empty(), "{:?}", temp_leftovers(&env.root));
    // What was stored is what the pointer says: checked out again from the cache alone.
    std::fs::remove_dir_all(env.path("models")).unwrap();
    env.dvt(&["checkout", "models"]).ok();
    assert!(env.read("models/linked.bin") == big);
    env.dvt(&["fsck"]).ok();
}

/// A path with characters object_store escapes in the paths it builds (`~`,
/// `[`, `#`, `%`) is read as it is: `ls-url` lists the file, `import-url` and
/// `update` read it.
#[test]
fn import_url_reads_a_local_file_whose_path_has_characters_stores_escape() {
    let a = TestEnv::new();
    let outside = a.root.parent().unwrap().join("exports~2026");
    std::fs::create_dir_all(&outside).unwrap();
    let name = "scan #1 [v2] 100%.csv";
    let file = outside.join(name);
    std::fs::write(&file, b"id\n1\n").unwrap();
    let r = a.dvt(&["ls-url", file.to_str().unwrap()]).ok();
    assert_eq!(r.stdout, format!("{name}\n"));
    a.dvt(&["import-url", file.to_str().unwrap(), "scan.csv"]).ok();
    assert_eq!(a.read("scan.csv"), b"id\n1\n");
    std::fs::write(&file, b"id\n1\n2\n").unwrap();
    let r = a.dvt(&["update", "scan.csv"]).ok();
    assert!(r.stdout.contains("updated scan.csv.dvt"), "{}", r.stdout);
    assert_eq!(a.read("scan.csv"), b"id\n1\n2\n");
}

#[test]
fn import_url_tracks_a_local_file_or_directory_and_update_follows_it() {
    let env = TestEnv::new();
    let outside = tempfile::tempdir().unwrap();
    let src = outside.path().join("exports");
    std::fs::create_dir_all(src.join("sub/deeper")).unwrap();
    std::fs::write(src.join("readings.csv"), "t,v\n0,1\n").unwrap();
    std::fs::write(src.join("sub/with space é.txt"), "héllo\n").unwrap();
    std::fs::write(src.join("sub/deeper/empty"), "").unwrap();
    std::fs::write(outside.path().join("model.bin"), noise(70_000, 3)).unwrap();
    let src_s = src.to_str().unwrap();

    // A directory, to a destination of our choosing; a file, to its own name.
    std::fs::create_dir_all(env.path("data")).unwrap();
    let r = env.dvt_in(&env.path("data"), &["import-url", src_s, "raw"]).ok();
    assert!(
        r.stdout.contains("imported data/raw (3 files") && r.stdout.contains("-> data/raw.dvt"),
        "{}",
        r.stdout
    );
    assert!(r.stderr.contains("git add .gitignore raw.dvt"), "{}", r.stderr);
    for f in ["readings.csv", "sub/with space é.txt", "sub/deeper/empty"] {
        assert_eq!(
            env.read(&format!("data/raw/{f}")),
            std::fs::read(src.join(f)).unwrap(),
            "{f}"
        );
    }
    let model = outside.path().join("model.bin");
    let r = env.dvt(&["import-url", model.to_str().unwrap(), "--json"]).ok();
    assert_eq!(r.json()["kind"], "file");
    assert_eq!(r.json()["pointer"], "model.bin.dvt");
    assert_eq!(env.read("model.bin"), noise(70_000, 3));
    let pointer = String::from_utf8(env.read("data/raw.dvt")).unwrap();
    assert!(
        pointer.contains(&format!("[source]\nurl = \"{src_s}\"\nfingerprint = \"")),
        "{pointer}"
    );
    assert!(String::from_utf8(env.read("data/.gitignore")).unwrap().contains("/raw"));
    assert!(temp_leftovers(&env.root).is_empty(), "{:?}", temp_leftovers(&env.root));
    env.commit("imports");
    assert!(env.dvt(&["status"]).ok().stdout.contains("up to date"));

    // Nothing changed at the source: nothing is downloaded.
    let r = env.dvt(&["update"]).ok();
    assert!(
        r.stdout.contains(&format!("data/raw.dvt is up to date with {src_s}")),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("model.bin.dvt is up to date"), "{}", r.stdout);

    // The source changes: update downloads it again, unless that would replace
    // edits made here; `--force` replaces them.
    std::fs::write(src.join("readings.csv"), "t,v\n0,1\n1,2\n").unwrap();
    std::fs::write(src.join("new.csv"), "n\n").unwrap();
    env.write("data/raw/readings.csv", "my edit\n");
    let cache_before = common::walk(&env.path(".dvt/cache"));
    let r = env.dvt(&["update", "data/raw"]).fails();
    assert!(r.stderr.contains("data/raw/readings.csv"), "{}", r.stderr);
    assert_eq!(env.read("data/raw/readings.csv"), b"my edit\n");
    // It stopped before downloading anything.
    assert_eq!(common::walk(&env.path(".dvt/cache")), cache_before);
    assert_eq!(env.read("data/raw.dvt"), pointer.as_bytes());
    // What a killed download left beside the data goes with the next one.
    env.write("data/.raw.dvt-tmp-999999-7/readings.csv", "half");
    let r = env.dvt(&["update", "data/raw.dvt", "--force"]).ok();
    assert!(temp_leftovers(&env.root).is_empty(), "{:?}", temp_leftovers(&env.root));
    // Only what changed at the source is downloaded: the edited file and the new one.
    assert!(r.stdout.contains("updated data/raw.dvt from"), "{}", r.stdout);
    assert!(r.stdout.contains("(downloaded 2 files, 14 B)"), "{}", r.stdout);
    assert_eq!(env.read("data/raw/readings.csv"), b"t,v\n0,1\n1,2\n");
    assert_eq!(env.read("data/raw/new.csv"), b"n\n");
    // The manifest built from the known ids and the two downloads is the one a
    // whole download makes.
    let whole = env.dvt(&["import-url", src_s, "whole", "--json"]).ok().json();
    let id_line = |p: &str| {
        let text = String::from_utf8(env.read(p)).unwrap();
        text.lines().find(|l| l.starts_with("id = ")).unwrap().to_string()
    };
    assert_eq!(
        id_line("data/raw.dvt"),
        format!("id = \"{}\"", whole["id"].as_str().unwrap())
    );
    env.dvt(&["remove", "whole.dvt"]).ok();
    std::fs::remove_dir_all(env.path("whole")).unwrap();
    let r = env.dvt(&["status", "--json"]).ok();
    assert!(
        r.json()["pointers"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["workspace"] == "unchanged")
    );
    // Rewritten with the same bytes: the new version is recorded, the data stays.
    std::fs::remove_file(&model).unwrap();
    std::fs::write(&model, noise(70_000, 3)).unwrap();
    let before = String::from_utf8(env.read("model.bin.dvt")).unwrap();
    let r = env.dvt(&["update", "model.bin", "--json"]).ok();
    assert_eq!(r.json()[0]["changed"], false, "{}", r.stdout);
    let after = String::from_utf8(env.read("model.bin.dvt")).unwrap();
    assert_ne!(before, after);
    assert_eq!(
        before.lines().take(6).collect::<Vec<_>>(),
        after.lines().take(6).collect::<Vec<_>>()
    );

    // Wrong inputs: a clear error, nothing written.
    let r = env.dvt(&["import-url", &format!("{src_s}/nothing-here")]).fails();
    assert!(r.stderr.contains("there is nothing there"), "{}", r.stderr);
    assert!(!env.exists("nothing-here.dvt") && !env.exists("nothing-here"));
    let r = env.dvt(&["import-url", src_s, "data/raw"]).fails();
    assert!(
        r.stderr.contains("already exists") && r.stderr.contains("--force"),
        "{}",
        r.stderr
    );
    let r = env
        .dvt(&["import-url", model.to_str().unwrap(), "data/raw/inner.bin"])
        .fails();
    assert!(
        r.stderr.contains("inside the tracked directory `data/raw`"),
        "{}",
        r.stderr
    );
    let r = env.dvt(&["import-url", "ftp://host/file.csv"]).fails();
    assert!(
        r.stderr
            .contains("cannot read `ftp://host/file.csv`: unsupported URL scheme"),
        "{}",
        r.stderr
    );
    for (url, says) in [
        ("", "cannot read ``: the URL is empty"),
        ("s3://", "names no bucket or container"),
        ("remote:///x", "name the remote: remote://NAME/path"),
        // A query would be taken for part of the name: said, with the way round.
        (
            "https://example.invalid/data.csv?X-Amz-Signature=abc",
            "dvt reads no web URL with a query (`?…`, as a presigned or a download link has): \
             download the file (`curl -fLo FILE 'URL'`), then `dvt add FILE`",
        ),
    ] {
        let r = env.dvt(&["import-url", url]).fails();
        assert!(r.stderr.contains(says), "{url}: {}", r.stderr);
    }
    // A server that is not there: said once, with what the connection said.
    let r = env.dvt(&["import-url", "http://127.0.0.1:1/x.csv"]).fails();
    assert!(
        r.stderr.contains("cannot read `http://127.0.0.1:1/x.csv`: ")
            && r.stderr.contains("Connection refused")
            && !r.stderr.contains("cannot read it"),
        "{}",
        r.stderr
    );
    let r = env.dvt(&["import-url", model.to_str().unwrap(), "weights.dvt"]).fails();
    assert!(r.stderr.contains("it would be a pointer file"), "{}", r.stderr);
    assert!(!env.exists("weights.dvt") && !env.exists("weights.dvt.dvt"));
    let r = env.dvt(&["import-url", "remote://nowhere/file.csv"]).fails();
    assert!(r.stderr.contains("no remote named `nowhere`"), "{}", r.stderr);
    let r = env.dvt(&["update", "model.bin", "--rev", "v1"]).fails();
    assert!(r.stderr.contains("imported from a URL"), "{}", r.stderr);
    assert!(temp_leftovers(&env.root).is_empty(), "{:?}", temp_leftovers(&env.root));
    // `-f` replaces an import, as `dvt import -f` does.
    let r = env.dvt(&["import-url", model.to_str().unwrap(), "data/raw", "-f"]).ok();
    assert!(r.stdout.contains("imported data/raw (68.36 KiB)"), "{}", r.stdout);
    assert_eq!(env.read("data/raw"), noise(70_000, 3));
    // Into a directory that does not exist yet.
    env.dvt(&["import-url", model.to_str().unwrap(), "models/v1/model.bin"])
        .ok();
    assert_eq!(env.read("models/v1/model.bin"), noise(70_000, 3));
    assert!(
        String::from_utf8(env.read("models/v1/.gitignore"))
            .unwrap()
            .contains("/model.bin")
    );
}

/// `dvt ls-url` lists what a URL holds, in a repository or outside one.
#[test]
fn ls_url_lists_what_a_url_holds() {
    let env = TestEnv::new();
    let src = env.root.parent().unwrap().join("exports");
    std::fs::create_dir_all(src.join("images/raw")).unwrap();
    std::fs::create_dir_all(src.join("notes")).unwrap();
    std::fs::write(src.join("readings.csv"), "t,v\n0,1\n").unwrap();
    std::fs::write(src.join("images/a.bin"), noise(3000, 1)).unwrap();
    std::fs::write(src.join("images/raw/b.bin"), noise(1000, 2)).unwrap();
    std::fs::write(src.join("notes/n.txt"), "n\n").unwrap();
    let url = src.to_str().unwrap();

    let r = env.dvt(&["ls-url", url]).ok();
    assert_eq!(r.stdout, "images/\nnotes/\nreadings.csv\n");
    let r = env.dvt(&["ls-url", url, "--size"]).ok();
    assert_eq!(
        r.stdout,
        "   3.91 KiB  images/\n        2 B  notes/\n        8 B  readings.csv\n"
    );
    let r = env.dvt(&["ls-url", "-R", url]).ok();
    assert_eq!(r.stdout, "images/a.bin\nimages/raw/b.bin\nnotes/n.txt\nreadings.csv\n");
    let r = env.dvt(&["ls-url", "-T", url]).ok();
    assert_eq!(
        r.stdout,
        ".\n├── images/\n│   ├── a.bin\n│   └── raw/\n│       └── b.bin\n├── notes/\n│   └── n.txt\n└── readings.csv\n"
    );
    // `-L N` (as DVC's): no deeper than N levels; deeper shows as its directory.
    let r = env.dvt(&["ls-url", "-R", "-L", "2", "--size", url]).ok();
    assert_eq!(
        r.stdout,
        "   2.93 KiB  images/a.bin\n     1000 B  images/raw/\n        2 B  notes/n.txt\n        8 B  readings.csv\n"
    );
    let r = env.dvt(&["ls-url", "-T", "-L", "1", url]).ok();
    assert_eq!(
        r.stdout,
        ".
├── images/
├── notes/
└── readings.csv
"
    );
    let r = env.dvt(&["ls-url", "-L", "1", url]);
    assert!(
        r.code == 2 && r.stderr.contains("-L/--level goes with -R or -T"),
        "{r:?}"
    );
    let r = env.dvt(&["ls-url", &format!("{url}/images"), "--json"]).ok();
    assert_eq!(r.json()[0]["path"], "a.bin", "{}", r.stdout);
    assert_eq!(r.json()[1]["path"], "raw", "{}", r.stdout);
    assert_eq!(r.json()[1]["isdir"], true, "{}", r.stdout);
    assert_eq!(r.json()[1]["size"], 1000, "{}", r.stdout);
    let r = env.dvt(&["ls-url", &format!("{url}/readings.csv"), "--size"]).ok();
    assert_eq!(r.stdout, "        8 B  readings.csv\n");
    // A path relative to where dvt runs; outside any repository too.
    let r = env.dvt(&["-C", src.to_str().unwrap(), "ls-url", "images"]).ok();
    assert_eq!(r.stdout, "a.bin\nraw/\n");

    let r = env.dvt(&["ls-url", &format!("{url}/nothing")]).fails();
    assert!(
        r.stderr.contains("cannot list") && r.stderr.contains("there is nothing there"),
        "{}",
        r.stderr
    );
    let r = env.dvt(&["ls-url", "ftp://host/x"]).fails();
    assert!(
        r.stderr.contains("cannot list `ftp://host/x`: unsupported URL scheme"),
        "{}",
        r.stderr
    );
    let r = env
        .dvt(&["-C", src.to_str().unwrap(), "ls-url", "remote://store/x"])
        .fails();
    assert!(r.stderr.contains("no remote named `store`"), "{}", r.stderr);
}

/// `artifacts get` fetches a model by name at a version (`NAME@vX.Y.Z` tags,
/// newest by default) or a stage (`NAME#STAGE#N`, the latest N); `artifacts
/// list` shows them; unknown names, versions and stages are refused.
#[test]
fn artifacts_are_fetched_by_name_version_and_stage() {
    let registry = TestEnv::new();
    let store = tempfile::tempdir().unwrap();
    registry
        .dvt(&["remote", "add", "-d", "store", store.path().to_str().unwrap()])
        .ok();
    registry.write(
        "dvt.toml",
        "[artifacts.churn-model]\npath = \"models/churn.bin\"\ntype = \"model\"\nlabels = [\"tabular\"]\n",
    );
    for (content, version) in [("one", "v1.9.0"), ("two", "v1.10.0"), ("three", "")] {
        registry.write("models/churn.bin", content);
        registry.dvt(&["add", "models/churn.bin"]).ok();
        registry.dvt(&["push"]).ok();
        registry.commit(content);
        if !version.is_empty() {
            registry.dvt(&["tag", &format!("churn-model@{version}")]).ok();
        }
    }
    // Stages: GTO's tags, by hand or by `artifacts assign` (the next number).
    registry.git(&["tag", "churn-model#prod#1", "churn-model@v1.10.0"]);
    let r = registry
        .dvt(&["artifacts", "assign", "churn-model", "prod", "--version", "1.9.0"])
        .ok();
    assert!(r.stdout.contains("as `churn-model#prod#2`"), "{}", r.stdout);
    assert!(
        r.stderr.contains("git push origin 'churn-model#prod#2'"),
        "{}",
        r.stderr
    );
    let r = registry
        .dvt(&["artifacts", "assign", "churn-model", "prod", "--version", "7.0.0"])
        .fails();
    assert!(
        r.stderr.contains("no version v7.0.0") && r.stderr.contains("its versions: v1.10.0, v1.9.0"),
        "{}",
        r.stderr
    );
    for (args, says) in [
        (&["Bad Name", "prod"][..], "`Bad Name` is not an artifact name"),
        (&["churn-model", "pr/od"], "`pr/od` is not a stage name"),
        (&["fraud-model", "prod"], "`fraud-model` has no version to assign"),
    ] {
        let r = registry.dvt(&[&["artifacts", "assign"], args].concat()).fails();
        assert!(r.stderr.contains(says), "{args:?}: {}", r.stderr);
    }
    // `tag --rev` tags another commit, once its data is on the remote.
    registry.dvt(&["tag", "churn-model@v1.8.0", "--rev", "HEAD~2"]).ok();
    let v18 = registry.git(&["rev-parse", "churn-model@v1.8.0^{commit}"]).stdout;
    let v19 = registry.git(&["rev-parse", "churn-model@v1.9.0^{commit}"]).stdout;
    assert_eq!(v18, v19);

    let listed = registry.dvt(&["artifacts", "list"]).ok().stdout;
    assert_eq!(listed, "churn-model\tmodel\tmodels/churn.bin\tv1.10.0\tprod=v1.9.0\n");
    // `show`: where it is, downloading nothing; `dvt.api.artifacts_show` as DVC's.
    let v110 = registry.git(&["rev-parse", "churn-model@v1.10.0^{commit}"]).stdout;
    let r = registry.dvt(&["artifacts", "show", "churn-model"]).ok();
    assert_eq!(
        r.stdout,
        format!("churn-model v1.10.0: models/churn.bin at {}\n", v110.trim())
    );
    let j = registry
        .dvt(&["artifacts", "show", "churn-model", ".", "--stage", "prod", "--json"])
        .ok()
        .json();
    assert_eq!(j["version"], "v1.9.0", "{j}");
    assert_eq!(j["commit"], v19.trim(), "{j}");
    assert_eq!(
        (&j["path"], &j["type"], &j["labels"][0]),
        (&"models/churn.bin".into(), &"model".into(), &"tabular".into())
    );
    let r = registry
        .dvt(&["artifacts", "show", "churn-model", "--rev", "2.0.0"])
        .fails();
    assert!(r.stderr.contains("no version v2.0.0"), "{}", r.stderr);
    let script = r#"
import sys
from dvt import api
print(api.artifacts_show("churn-model", stage="prod", repo=sys.argv[1]))
shown = api.artifacts_show("churn-model", version="1.10.0", repo=sys.argv[1])
print(api.read(shown["path"], repo=sys.argv[1], rev=shown["rev"]))
print(api.artifacts_show("churn-model")["rev"] == shown["rev"])
"#;
    let src_dir = registry.root.to_str().unwrap();
    let r = registry.python_in(&registry.path("models"), script, &[src_dir]);
    assert_eq!(
        r.stdout,
        format!("{{'rev': '{}', 'path': 'models/churn.bin'}}\ntwo\nTrue\n", v19.trim()),
        "{}",
        r.stderr
    );

    let here = TestEnv::new();
    let src = registry.root.to_str().unwrap();
    // The newest version by number (v1.10.0 after v1.9.0), not HEAD.
    let r = here
        .dvt(&["artifacts", "get", src, "churn-model", "--json"])
        .ok()
        .json();
    assert_eq!(r["version"], "v1.10.0", "{r}");
    assert_eq!(here.read("churn.bin"), b"two");
    here.dvt(&[
        "artifacts",
        "get",
        src,
        "churn-model",
        "--stage",
        "prod",
        "-o",
        "prod.bin",
    ])
    .ok();
    assert_eq!(here.read("prod.bin"), b"one");
    here.dvt(&[
        "artifacts",
        "get",
        src,
        "churn-model",
        "--rev",
        "1.9.0",
        "-o",
        "old.bin",
    ])
    .ok();
    assert_eq!(here.read("old.bin"), b"one");
    // `--show-url` (DVC's): where that version's data is, as `get --show-url` says.
    let shown = here
        .dvt(&[
            "artifacts",
            "get",
            src,
            "churn-model",
            "--rev",
            "1.9.0",
            "--show-url",
            "--json",
        ])
        .ok()
        .json();
    let at_tag = here
        .dvt(&[
            "get",
            src,
            "models/churn.bin",
            "--rev",
            "churn-model@v1.9.0",
            "--show-url",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(shown["url"], at_tag["url"], "{shown}");
    assert_eq!(shown["id"], blake3::hash(b"one").to_hex().as_str(), "{shown}");
    let r = here
        .dvt(&["artifacts", "get", src, "churn-model", "--rev", "v3.0.0"])
        .fails();
    assert!(
        r.stderr.contains("no version v3.0.0") && r.stderr.contains("v1.10.0, v1.9.0"),
        "{}",
        r.stderr
    );
    let r = here
        .dvt(&["artifacts", "get", src, "churn-model", "--stage", "dev"])
        .fails();
    assert!(r.stderr.contains("never been in stage `dev`"), "{}", r.stderr);
    let r = here.dvt(&["artifacts", "get", src, "fraud-model"]).fails();
    assert!(
        r.stderr.contains("names no artifact `fraud-model`") && r.stderr.contains("churn-model"),
        "{}",
        r.stderr
    );
    let r = here.dvt(&["artifacts", "get", src, "churn-model"]).fails();
    assert!(r.stderr.contains("already exists"), "{}", r.stderr);
    assert_eq!(here.read("churn.bin"), b"two");
    // Which of its remotes, and how, as `dvt get` takes them.
    for (flags, says) in [
        (["--remote", "nosuch"], "no remote named `nosuch`"),
        (["--remote-config", "jobs=many"], "`jobs` must be a whole number"),
    ] {
        let r = here
            .dvt(&[&["artifacts", "get", src, "churn-model", "-o", "x.bin"][..], &flags].concat())
            .fails();
        assert!(r.stderr.contains(says), "{flags:?}: {}", r.stderr);
    }
    // Across the network (git://): the clone brings the tags that name versions.
    let daemon = GitDaemon::start(registry.root.parent().unwrap());
    let url = format!("git://127.0.0.1:{}/repo", daemon.port);
    here.dvt(&[
        "artifacts",
        "get",
        &url,
        "churn-model",
        "--stage",
        "prod",
        "-o",
        "net.bin",
    ])
    .ok();
    assert_eq!(here.read("net.bin"), b"one");

    // A bad entry is named.
    registry.write("dvt.toml", "[artifacts.Churn]\npath = \"../x\"\n");
    registry.commit("bad");
    let r = registry.dvt(&["artifacts", "list"]).fails();
    assert!(r.stderr.contains("artifact `Churn`"), "{}", r.stderr);
}

/// Your global remotes do not change where another repository's data comes
/// from: `get` still finds its only remote, which it relies on as default.
#[test]
fn a_global_remote_does_not_change_another_repositorys_remote() {
    let source = TestEnv::new();
    let store = tempfile::tempdir().unwrap();
    source
        .dvt(&["remote", "add", "store", store.path().to_str().unwrap()])
        .ok();
    source.write("model.bin", "weights");
    source.dvt(&["add", "model.bin"]).ok();
    source.dvt(&["push"]).ok();
    source.commit("model");
    std::fs::remove_dir_all(source.path(".dvt/cache")).unwrap();

    let here = TestEnv::new();
    let global = here.home.join(".config/dvt/config.toml");
    std::fs::create_dir_all(global.parent().unwrap()).unwrap();
    std::fs::write(
        &global,
        "[core]\nremote = \"mine\"\n[remote.mine]\nurl = \"/nonexistent/dvt-store\"\n",
    )
    .unwrap();
    here.dvt(&["get", source.root.to_str().unwrap(), "model.bin"]).ok();
    assert_eq!(here.read("model.bin"), b"weights");
}

/// The Python module `dvt.api` (python/dvt), as a training script uses it:
/// data at a tag and in the workspace, streamed or whole, from a directory
/// below the root; dvt's errors raised as `DvtError`, and no bytes of an
/// object that is not intact.
#[test]
fn python_api_reads_verified_data_and_raises_dvt_errors() {
    let env = TestEnv::new();
    env.write("data/train.csv", "x,y\n1,2\n");
    env.write("data/images/cat.bin", [0u8, 159, 146, 150]);
    env.dvt(&["add", "data/train.csv", "data/images"]).ok();
    env.commit("data v1");
    env.git(&["tag", "data-v1"]);
    env.write("data/train.csv", "x,y\n1,2\n3,4\n");
    env.dvt(&["add", "data/train.csv"]).ok();
    env.write("src/keep", "");
    let store = env.root.parent().unwrap().join("store");
    env.dvt(&["remote", "add", "-d", "store", store.to_str().unwrap()]).ok();
    env.dvt(&["push"]).ok();
    let script = r#"
import os, sys
import dvt.api as api
info = api.get_url_info("data/train.csv")
url = api.get_url("data/train.csv")
print(url == info["url"], url.startswith(sys.argv[1]), os.path.isfile(url), info["on_remote"], info["size"])
print(repr(api.read("data/train.csv", rev="data-v1")))
print(repr(api.read("data/train.csv")))
with api.open("data/train.csv") as f:
    print([line for line in f] == ["x,y\n", "1,2\n", "3,4\n"])
with api.open("data/images/cat.bin", rev="data-v1", mode="rb") as f:
    print(repr(f.read()))
d = api.describe()
print(d["commit"] == api.describe(repo="..")["commit"], sorted(x["path"] for x in d["data"]))
for call in (lambda: api.read("data/nope.csv"), lambda: api.open("data/nope.csv").__enter__()):
    try:
        call()
    except api.DvtError as e:
        print("DvtError", e.returncode, str(e).splitlines()[0])
try:
    api.read("data/train.csv", mode="w")
except ValueError as e:
    print("ValueError", e)
"#;
    let r = env.python_in(&env.path("src"), script, &[store.to_str().unwrap()]);
    assert_eq!(
        r.stdout,
        "True True True True 12\n\
         'x,y\\n1,2\\n'\n\
         'x,y\\n1,2\\n3,4\\n'\n\
         True\n\
         b'\\x00\\x9f\\x92\\x96'\n\
         True ['data/images', 'data/train.csv']\n\
         DvtError 1 error: `data/nope.csv` does not exist in the workspace\n\
         DvtError 1 error: `data/nope.csv` does not exist in the workspace\n\
         ValueError mode must be \"r\" or \"rb\" (data is read only), not 'w'\n",
        "{}",
        r.stderr
    );

    // From the repository's URL, anywhere: downloaded from its remote, as `dvt get`.
    env.commit("data v2");
    let elsewhere = tempfile::tempdir().unwrap();
    let url = format!("file://{}", env.root.display());
    let r = env.python_in(
        elsewhere.path(),
        r#"
import os, sys
import dvt.api as api
print(repr(api.read("data/train.csv", repo=sys.argv[1], rev="data-v1")))
with api.open("data/images/cat.bin", repo=sys.argv[1], mode="rb") as f:
    print(repr(f.read()))
for call in (lambda: api.read("data/images", repo=sys.argv[1]), lambda: api.get_url("src/keep", repo=sys.argv[1])):
    try:
        call()
    except api.DvtError as e:
        print("DvtError", str(e).splitlines()[0])
info = api.get_url_info("data/train.csv", repo=sys.argv[1])
print(info["id"] == sys.argv[2], api.get_url("data/train.csv", repo=sys.argv[1]) == info["url"] != None)
print(sorted(os.listdir(".")))
"#,
        &[&url, blake3::hash(b"x,y\n1,2\n3,4\n").to_hex().as_ref()],
    );
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(
        lines[..3],
        [
            "'x,y\\n1,2\\n'",
            "b'\\x00\\x9f\\x92\\x96'",
            "DvtError `data/images` is a directory; name a file in it"
        ],
        "{}",
        r.stderr
    );
    // A file git keeps has no URL on a remote; tracked data's, from its URL, as locally.
    assert!(
        lines[3].starts_with("DvtError error: `src/keep` is kept by git at `file://"),
        "{}",
        r.stdout
    );
    assert_eq!(lines[4..], ["True True", "[]"], "{}", r.stderr);

    // A damaged object: the error names it, and Python gets none of its bytes.
    let id = blake3::hash(b"x,y\n1,2\n3,4\n").to_hex().to_string();
    env.damage(&id, |b| {
        let last = b.len() - 1;
        b[last] ^= 1;
    });
    let r = env.python_in(
        &env.root,
        r#"
import dvt.api as api
got = []
try:
    with api.open("data/train.csv") as f:
        got.append(f.read())
except api.DvtError as e:
    print("DvtError", "corrupt" in str(e) or "damaged" in str(e), got)
"#,
        &[],
    );
    assert_eq!(r.stdout, "DvtError True []\n", "{}", r.stderr);
}

/// `dvt.api.DvtFileSystem`, as DVCFileSystem is used: listing, walking and
/// reading git's files and dvt's data together at a revision, from a local
/// clone and from the repository's URL, and copying a directory out.
#[test]
fn python_file_system_lists_and_reads_git_files_and_data_together() {
    let Versions { env, _remote } = versions();
    env.write("src/train.py", "print('v2')\n");
    env.commit("code");
    env.git(&["tag", "code"]);
    env.write("src/train.py", "print('work tree')\n");
    let script = r#"
import os, sys, tempfile
from dvt.api import DvtFileSystem
for fs in (DvtFileSystem(rev="code"), DvtFileSystem(sys.argv[1], rev="code"), DvtFileSystem(repo="src", rev="HEAD")):
    print(fs.ls("", detail=False))
    print([(e["name"], e["type"], e["size"], e["isdvt"]) for e in fs.ls("/data")])
    print(fs.find("data"), fs.find("", dvt_only=True, maxdepth=1), fs.find("data", withdirs=True))
    print([w for w in fs.walk("data")])
    print(fs.isdir("data/sub"), fs.isfile("data/sub/c.csv"), fs.exists("data/nope"), fs.info("model.bin")["size"])
    print(fs.cat_file("data/sub/c.csv"), fs.read_text("src/train.py"), fs.du("data"))
    with fs.open("data/a.csv", "r") as f:
        print(f.readline().strip())
    out = tempfile.mkdtemp()
    print(os.path.basename(fs.get("data", out, recursive=True)), sorted(os.listdir(os.path.join(out, "data"))))
    fs.get_file("src/train.py", os.path.join(out, "t.py"))
    print(open(os.path.join(out, "t.py")).read().strip(), len(fs.commit))
    for call in (lambda: fs.info("nope"), lambda: fs.open("data"), lambda: fs.get("data", out), lambda: fs.open("x", "w")):
        try:
            call()
        except (FileNotFoundError, IsADirectoryError, ValueError) as e:
            print(type(e).__name__)
"#;
    let url = format!("file://{}", env.root.display());
    let r = env.python_in(&env.root, script, &[&url]);
    let once = "['.gitignore', 'data', 'model.bin', 'src']\n\
         [('data/a.csv', 'file', 16, True), ('data/sub', 'directory', 8, True)]\n\
         ['data/a.csv', 'data/sub/c.csv'] ['model.bin'] ['data/a.csv', 'data/sub', 'data/sub/c.csv']\n\
         [('data', ['sub'], ['a.csv']), ('data/sub', [], ['c.csv'])]\n\
         True True False 9\n\
         b't,v\\n0,3\\n' print('v2')\n 24\n\
         t,v\n\
         data ['a.csv', 'sub']\n\
         print('v2') 40\n\
         FileNotFoundError\nIsADirectoryError\nIsADirectoryError\nValueError\n";
    assert_eq!(r.stdout, once.repeat(3), "{}", r.stderr);

    // No revision, a local repository: its work tree as it is, as DVCFileSystem reads one.
    env.write("notes.md", "draft\n");
    let r = env.python_in(
        &env.root,
        r#"
import os, tempfile
from dvt.fs import DvtFileSystem
import dvt.api
assert dvt.api.DvtFileSystem is DvtFileSystem
fs = DvtFileSystem()
print(fs.read_text("src/train.py").strip(), fs.cat_file("notes.md"), fs.commit, "notes.md" in fs.ls("", detail=False))
out = tempfile.mkdtemp()
fs.get("src", out, recursive=True)
print(open(os.path.join(out, "src", "train.py")).read().strip())
"#,
        &[],
    );
    assert_eq!(
        r.stdout, "print('work tree') b'draft\\n' None True\nprint('work tree')\n",
        "{}",
        r.stderr
    );
}

/// A registry whose default remote is not where its data is (DVC's
/// `--remote`, `--remote-config`, `--config` of get, import, list and
/// artifacts get): the data comes from the remote named, with the options
/// given; an import records them (no secrets), and update and a clone's pull
/// use them again.
#[test]
fn get_import_and_list_read_the_remote_and_options_given() {
    let Versions { env: registry, _remote } = versions();
    let store = _remote.path().to_str().unwrap().to_string();
    // Its default remote is now an empty one, and its cache is gone: only
    // `store` has the data.
    let empty = tempfile::tempdir().unwrap();
    registry
        .dvt(&["remote", "add", "-d", "empty", empty.path().to_str().unwrap()])
        .ok();
    registry.commit("default remote: empty");
    std::fs::remove_dir_all(registry.path(".dvt/cache")).unwrap();
    let src = registry.root.to_str().unwrap();

    let env = TestEnv::new();
    let gone = format!("{src}-gone");
    for args in [
        vec!["get", &gone, "data"],
        vec!["list", &gone],
        vec!["import", &gone, "data"],
    ] {
        let r = env.dvt(&args).fails();
        assert!(
            r.stderr.contains(&format!(
                "opening the git repository `{gone}`: there is no such directory"
            )),
            "{args:?}: {}",
            r.stderr
        );
    }
    // Nor is a path that does not exist inside this repository this repository.
    for args in [
        vec!["list", "nothere"],
        vec!["du", "nothere"],
        vec!["get", "nothere", "x"],
    ] {
        let r = env.dvt(&args).fails();
        assert!(
            r.stderr
                .contains("opening the git repository `nothere`: there is no such directory"),
            "{args:?}: {}",
            r.stderr
        );
    }
    let r = env.dvt(&["get", src, "data", "-o", "plain"]).fails();
    assert!(
        r.stderr
            .contains("the source repository's remote `empty` does not have object"),
        "{}",
        r.stderr
    );
    // Its owners must push it: `pull --allow-missing` (fetch's hint) means nothing here.
    assert!(
        r.stderr.contains("from a clone of that repository") && !r.stderr.contains("allow-missing"),
        "{}",
        r.stderr
    );
    assert!(!env.exists("plain"));
    env.dvt(&["get", src, "data", "-o", "got", "--remote", "store"]).ok();
    assert_eq!(env.read("got/a.csv"), registry.read("data/a.csv"));
    assert_eq!(env.read("got/sub/c.csv"), b"t,v\n0,3\n");

    // Options of that remote: here its URL, as for a mirror.
    env.dvt(&["get", src, "model.bin", "--remote-config", &format!("url={store}")])
        .ok();
    assert_eq!(env.read("model.bin"), b"model two");

    // A config file of one's own: a remote the registry does not name.
    let mine = env.root.parent().unwrap().join("mine.toml");
    std::fs::write(
        &mine,
        format!("[core]\nremote = \"mirror\"\n[remote.mirror]\nurl = \"{store}\"\njobs = 2\n"),
    )
    .unwrap();
    env.dvt(&[
        "get",
        src,
        "data/a.csv",
        "-o",
        "a.csv",
        "--config",
        mine.to_str().unwrap(),
    ])
    .ok();
    assert_eq!(env.read("a.csv"), registry.read("data/a.csv"));

    // Inside a tracked directory, `list` needs the manifest: from the remote named.
    let r = env.dvt(&["list", src, "data/sub"]).fails();
    assert!(r.stderr.contains("remote `empty`"), "{}", r.stderr);
    let r = env.dvt(&["list", src, "data/sub", "--remote", "store"]).ok();
    assert!(r.stdout.contains("c.csv"), "{}", r.stdout);

    // Wrong uses: one line each, nothing written.
    for (args, message) in [
        (vec!["--remote", "nosuch"], "no remote named `nosuch`"),
        (
            vec!["--remote-config", "jobs"],
            "`jobs`: `--remote-config` takes KEY=VALUE",
        ),
        (
            vec!["--remote-config", "jobs=many"],
            "`jobs` must be a whole number, 1 or more, not `many`",
        ),
        (
            vec!["--remote-config", "region=x"],
            "unknown option `region` for local remotes",
        ),
        (vec!["--config", "nope.toml"], "no such file (given with `--config`)"),
    ] {
        let mut all = vec!["get", src, "model.bin", "-o", "wrong.bin"];
        all.extend(&args);
        let r = env.dvt(&all).fails();
        assert!(r.stderr.contains(message), "{args:?}: {}", r.stderr);
        assert!(!env.exists("wrong.bin"));
    }

    // An import records the remote and its options, and uses them again.
    let r = env
        .dvt(&["import", src, "data", "-o", "input", "--rev", "v1", "--remote", "store"])
        .ok();
    assert!(r.stdout.contains("input"), "{}", r.stdout);
    let pointer = String::from_utf8(env.read("input.dvt")).unwrap();
    assert!(pointer.contains("remote = \"store\""), "{pointer}");
    assert_eq!(env.read("input/b.csv"), b"t,v\n0,2\n");
    env.commit("import from the registry's store");
    let b = env.clone_repo();
    let r = b.dvt(&["pull", "--json"]).ok();
    assert_eq!(r.json()["fetch"]["from_sources"][0], "input", "{}", r.stdout);
    assert_eq!(b.read("input/b.csv"), b"t,v\n0,2\n");
    let r = env.dvt(&["update", "input", "--rev", "v2"]).ok();
    assert!(r.stdout.contains("input"), "{}", r.stdout);
    assert!(!env.exists("input/b.csv") && env.exists("input/sub/c.csv"));
    let pointer = String::from_utf8(env.read("input.dvt")).unwrap();
    assert!(pointer.contains("remote = \"store\""), "{pointer}");
    // Options too, read back by the next command.
    env.dvt(&[
        "import",
        src,
        "model.bin",
        "-o",
        "m1.bin",
        "--remote-config",
        &format!("url={store}"),
    ])
    .ok();
    let pointer = String::from_utf8(env.read("m1.bin.dvt")).unwrap();
    assert!(
        pointer.contains(&format!("[source.remote_config]\nurl = \"{store}\"")),
        "{pointer}"
    );
    env.dvt(&["status", "m1.bin"]).ok();
    std::fs::remove_dir_all(env.path(".dvt/cache")).unwrap();
    let r = env.dvt(&["pull", "m1.bin", "--json"]).ok();
    assert_eq!(r.json()["fetch"]["from_sources"][0], "m1.bin", "{}", r.stdout);

    // A secret would be committed with the pointer: refused, nothing written.
    let r = env
        .dvt(&[
            "import",
            src,
            "model.bin",
            "-o",
            "m.bin",
            "--remote-config",
            "password=hunter2",
        ])
        .fails();
    assert!(r.stderr.contains("`password` is a secret"), "{}", r.stderr);
    assert!(!r.stderr.contains("hunter2"), "{}", r.stderr);
    assert!(!env.exists("m.bin") && !env.exists("m.bin.dvt"));

    // The same from Python, as `dvc.api.read`'s remote=, remote_config=, config=.
    let r = env.python_in(
        &env.root,
        r#"
import sys
import dvt.api as api
url, store = sys.argv[1], sys.argv[2]
print(api.read("model.bin", repo=url, remote="store"))
print(api.read("model.bin", repo=url, rev="v1", remote_config={"url": store, "jobs": 2}))
mirror = {"core": {"remote": "mirror"}, "remote": {"mirror": {"url": store, "pack": True}}}
with api.open("data/a.csv", repo=url, config=mirror) as f:
    print(f.read().count("\n"))
for call in (lambda: api.read("model.bin", repo=url), lambda: api.read("model.bin", config=mirror)):
    try:
        call()
    except api.DvtError as e:
        print("DvtError", str(e).splitlines()[0][:42])
"#,
        &[&format!("file://{src}"), &store],
    );
    assert_eq!(
        r.stdout,
        "model two\n\
         model one\n\
         4\n\
         DvtError error: the source repository's remote `emp\n\
         DvtError config= and remote_config= are for a repos\n",
        "{}",
        r.stderr
    );
}

/// A name in a commit's tree that is not UTF-8 cannot be a path here: `list`
/// and `get` leave it out with a warning that names it, and read the rest.
#[test]
fn list_and_get_warn_of_git_names_that_are_not_utf8() {
    use std::os::unix::ffi::OsStrExt;
    let env = TestEnv::new();
    env.write("docs/readme.md", "hello\n");
    let odd = env.path("docs").join(std::ffi::OsStr::from_bytes(b"caf\xe9.md"));
    std::fs::write(odd, "latin-1\n").unwrap();
    env.commit("docs");
    let elsewhere = tempfile::tempdir().unwrap();
    let here = elsewhere.path();
    let src = env.root.to_str().unwrap();
    let said = "`docs/caf\u{fffd}.md` is left out: its name is not UTF-8";
    let r = env.dvt_in(here, &["list", src, "docs", "--rev", "HEAD"]).ok();
    assert_eq!(r.stdout, "readme.md\n");
    assert!(r.stderr.contains(said), "{}", r.stderr);
    // The work tree as it is, too.
    let r = env.dvt_in(here, &["list", src, "docs"]).ok();
    assert_eq!(r.stdout, "readme.md\n");
    assert!(r.stderr.contains(said), "{}", r.stderr);
    let r = env.dvt_in(here, &["get", src, "docs", "--rev", "HEAD"]).ok();
    assert!(r.stderr.contains(said), "{}", r.stderr);
    assert_eq!(std::fs::read(here.join("docs/readme.md")).unwrap(), b"hello\n");
    assert_eq!(std::fs::read_dir(here.join("docs")).unwrap().count(), 1);
}
