//! End-to-end tests of the core commands: the real `dvt` binary in real git repos.
#![allow(clippy::disallowed_methods, clippy::unwrap_used)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use common::{HeldLock, Store, TestEnv, noise, snapshot};

fn dataset(env: &TestEnv) {
    env.write("data/raw/readings 01.csv", "t,v\n0,1.5\n1,1.7\n");
    env.write("data/raw/nested/deeper/ünïcödé name.txt", "grüße\n");
    env.write("data/raw/empty.bin", "");
    env.write("data/raw/scripts/run.sh", "#!/bin/sh\necho run\n");
    std::fs::set_permissions(
        env.path("data/raw/scripts/run.sh"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    std::fs::create_dir_all(env.path("data/raw/empty dir/inner empty")).unwrap();
    env.write("data/raw/blob.bin", noise(300_000, 1));
}

#[test]
fn init_creates_config_and_refuses_twice() {
    let env = TestEnv::new();
    assert!(env.exists(".dvt/config.toml"));
    let gi = String::from_utf8(env.read(".dvt/.gitignore")).unwrap();
    assert!(gi.contains("/cache/") && gi.contains("/tmp/") && gi.contains("/config.local.toml"));
    let r = env.dvt(&["init"]).fails();
    assert!(r.stderr.contains("already a dvt repository"), "{}", r.stderr);
    assert!(r.stderr.contains("`dvt init --force`"), "{}", r.stderr);
}

/// `dvt unprotect`, for scripts written for DVC: checked-out data is a
/// writable copy already, so it only checks the targets.
#[test]
fn unprotect_checks_targets_and_changes_nothing() {
    let env = TestEnv::new();
    env.write("model.bin", "weights");
    env.dvt(&["add", "model.bin"]).ok();
    std::fs::remove_file(env.path("model.bin")).unwrap();
    env.dvt(&["checkout"]).ok();
    let mode = std::fs::metadata(env.path("model.bin")).unwrap().permissions().mode();
    assert_eq!(mode & 0o200, 0o200, "checked out writable: {mode:o}");
    let r = env.dvt(&["unprotect", "model.bin.dvt"]).ok();
    assert!(r.stdout.starts_with("Nothing to unprotect"), "{}", r.stdout);
    assert!(env.dvt(&["-q", "unprotect", "model.bin"]).ok().stdout.is_empty());
    let r = env.dvt(&["unprotect", "weights.bin"]).fails();
    assert!(r.stderr.contains("`weights.bin` is not tracked"), "{}", r.stderr);
    env.dvt(&["status", "-q"]).ok();
}

/// `init --force` (DVC's `-f`) mends settings that no longer parse; unlike
/// DVC's, it keeps the cache, so data added before still checks out.
#[test]
fn init_force_starts_the_settings_over_and_keeps_the_cache() {
    let env = TestEnv::new();
    let template = env.read(".dvt/config.toml");
    env.write("a.csv", "x,y\n1,2\n");
    env.dvt(&["add", "a.csv"]).ok();
    env.dvt(&["remote", "add", "-d", "store", "/tmp/nowhere"]).ok();
    env.dvt(&["config", "--local", "cache.level", "5"]).ok();
    env.write(".dvt/config.toml", "[core\n");
    let r = env.dvt(&["status"]).fails();
    assert!(r.stderr.contains("invalid config file"), "{}", r.stderr);
    let r = env.dvt(&["init", "-f"]).ok();
    assert!(
        r.stdout.contains("Reinitialized") && r.stdout.contains("cache kept"),
        "{}",
        r.stdout
    );
    assert_eq!(env.read(".dvt/config.toml"), template);
    assert!(!env.exists(".dvt/config.local.toml"));
    std::fs::remove_file(env.path("a.csv")).unwrap();
    env.dvt(&["checkout"]).ok();
    assert_eq!(env.read("a.csv"), b"x,y\n1,2\n");
    // Where there is no repository yet, --force is a plain init.
    let fresh = TestEnv::bare();
    fresh.git(&["init", "-q"]);
    assert!(fresh.dvt(&["init", "--force"]).ok().stdout.starts_with("Initialized"));
}

#[test]
fn init_outside_git_is_refused_unless_no_scm() {
    let env = TestEnv::bare();
    let r = env.dvt(&["init"]).fails();
    assert!(r.stderr.contains("is not inside a git work tree"), "{}", r.stderr);
    assert!(r.stderr.contains("--no-scm"), "a hint names the way out: {}", r.stderr);
    assert!(!env.exists(".dvt"));
    env.dvt(&["init", "--no-scm"]).ok();
    assert!(env.exists(".dvt/config.toml"));
}

#[test]
fn init_refuses_a_git_repository_it_could_not_read_and_names_the_way_out() {
    for (format, says, way_out) in [
        (
            "--ref-format=reftable",
            "uses reftable to store its refs",
            "git refs migrate --ref-format=files",
        ),
        (
            "--object-format=sha256",
            "uses SHA-256 object ids",
            "without `--object-format=sha256`",
        ),
    ] {
        let env = TestEnv::bare();
        env.git(&["init", "-q", format]);
        let r = env.dvt(&["init"]).fails();
        assert!(r.stderr.contains(says) && r.stderr.contains(way_out), "{}", r.stderr);
        assert!(!env.exists(".dvt"), "nothing written");
    }
}

#[test]
fn init_in_a_git_subdirectory_needs_subdir() {
    let env = TestEnv::bare();
    env.git(&["init", "-q"]);
    std::fs::create_dir(env.path("sub")).unwrap();
    let r = env.dvt_in(&env.path("sub"), &["init"]).fails();
    assert!(r.stderr.contains("not the root of its git work tree"), "{}", r.stderr);
    env.dvt_in(&env.path("sub"), &["init", "--subdir"]).ok();
    assert!(env.exists("sub/.dvt/config.toml"));
}

#[test]
fn add_delete_checkout_round_trips_every_kind_of_entry() {
    let env = TestEnv::new();
    dataset(&env);
    env.write("models/model.bin", noise(2_000_000, 2));
    let before_data = snapshot(&env.path("data/raw"));
    let before_model = env.read("models/model.bin");

    let r = env.dvt(&["add", "data/raw", "models/model.bin"]).ok();
    assert!(r.stdout.contains("added data/raw (5 files"), "{}", r.stdout);
    assert!(
        r.stderr
            .contains("git add data/.gitignore data/raw.dvt models/.gitignore models/model.bin.dvt")
    );
    assert_eq!(String::from_utf8(env.read("data/.gitignore")).unwrap(), "/raw\n");
    assert_eq!(
        String::from_utf8(env.read("models/.gitignore")).unwrap(),
        "/model.bin\n"
    );

    // Git sees the pointers, not the data.
    env.git(&["add", "-A"]);
    let tracked = env.git(&["ls-files"]).stdout;
    assert!(tracked.contains("data/raw.dvt") && tracked.contains("models/model.bin.dvt"));
    assert!(
        !tracked.contains("readings") && !tracked.contains("models/model.bin\n"),
        "{tracked}"
    );

    std::fs::remove_dir_all(env.path("data/raw")).unwrap();
    std::fs::remove_file(env.path("models/model.bin")).unwrap();
    let st = env.dvt(&["status"]).ok();
    assert!(
        st.stdout.contains("data/raw.dvt: missing from the workspace"),
        "{}",
        st.stdout
    );

    let r = env.dvt(&["checkout"]).ok();
    assert!(r.stdout.contains("6 files restored"), "{}", r.stdout);
    assert_eq!(snapshot(&env.path("data/raw")), before_data);
    assert_eq!(env.read("models/model.bin"), before_model);
    assert!(env.dvt(&["status"]).ok().stdout.contains("up to date"));
    assert!(env.dvt(&["fsck"]).ok().stdout.contains("all intact"));

    // An empty directory removed from inside another leaves that one empty: it is
    // not new data (the pointer's directory goes there), so checkout needs no
    // `--force` to put the inner one back, and says it did.
    std::fs::remove_dir(env.path("data/raw/empty dir/inner empty")).unwrap();
    let st = env.dvt(&["status"]).ok().stdout;
    assert!(st.contains("deleted: data/raw/empty dir/inner empty/"), "{st}");
    assert!(!st.contains("added"), "{st}");
    let r = env.dvt(&["checkout", "data/raw"]).ok();
    assert_eq!(
        r.stdout,
        "restored data/raw/empty dir/inner empty/\n\
         0 files (0 B) and 1 empty directory restored, 0 paths already up to date\n"
    );
    assert_eq!(snapshot(&env.path("data/raw")), before_data);

    // A new file is work checkout will not delete unasked; a new empty
    // directory holds nothing to lose, and goes.
    env.write("data/raw/new.txt", "mine\n");
    std::fs::create_dir(env.path("data/raw/new dir")).unwrap();
    let r = env.dvt(&["checkout", "data/raw"]).fails();
    assert!(
        r.stderr.starts_with(
            "error: checkout would overwrite or delete 1 file with changes not recorded in a pointer:\n  \
             data/raw/new.txt\n"
        ),
        "{}",
        r.stderr
    );
    assert!(
        env.path("data/raw/new dir").is_dir(),
        "a refused checkout changes nothing"
    );
    std::fs::remove_file(env.path("data/raw/new.txt")).unwrap();
    env.dvt(&["checkout", "data/raw"]).ok();
    assert_eq!(snapshot(&env.path("data/raw")), before_data);
    env.write("data/raw/new.txt", "mine\n");
    let r = env.dvt(&["checkout", "--force", "data/raw"]).ok();
    assert!(r.stdout.contains("deleted data/raw/new.txt"), "{}", r.stdout);
    // The summary counts what it deleted as well as what it wrote.
    assert!(
        r.stdout
            .contains("0 files restored (0 B), 1 file deleted, 0 paths already up to date"),
        "{}",
        r.stdout
    );
    assert_eq!(snapshot(&env.path("data/raw")), before_data);
}

#[test]
fn pointer_file_is_stable_toml_in_fixed_order() {
    let env = TestEnv::new();
    env.write("data/a.csv", "x\n");
    env.write("data/set/b.csv", "y\n");
    env.dvt(&["add", "data/a.csv", "data/set"]).ok();
    let text = String::from_utf8(env.read("data/set.dvt")).unwrap();
    let keys: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split(" = ").next().unwrap())
        .collect();
    assert_eq!(keys, ["version", "path", "kind", "id", "size", "files"]);
    assert!(text.contains("path = \"set\"\nkind = \"dir\"") && text.contains("files = 1"));
    let file = String::from_utf8(env.read("data/a.csv.dvt")).unwrap();
    assert!(
        file.contains(&format!("id = \"{}\"", blake3::hash(b"x\n").to_hex())),
        "{file}"
    );
    // Adding again changes nothing, byte for byte.
    env.dvt(&["add", "data/a.csv", "data/set"]).ok();
    assert_eq!(String::from_utf8(env.read("data/set.dvt")).unwrap(), text);
}

#[test]
fn objects_are_compressed_when_it_pays_and_raw_when_not() {
    let env = TestEnv::new();
    let csv: String = (0..50_000)
        .map(|i| format!("{i},sensor-{},{}.5\n", i % 7, i % 100))
        .collect();
    env.write("text.csv", &csv);
    env.write("noise.bin", noise(1_000_000, 3));
    env.dvt(&["add", "text.csv", "noise.bin"]).ok();
    let obj = |content: &[u8]| env.stored(blake3::hash(content).to_hex().as_str());
    let z = obj(csv.as_bytes());
    assert_eq!(&z[..4], &[0x28, 0xB5, 0x2F, 0xFD], "a zstd frame");
    assert!(z.len() * 4 < csv.len(), "{} vs {}", z.len(), csv.len());
    let raw = obj(&noise(1_000_000, 3));
    assert_eq!(&raw[..8], b"dvtraw1\n");
    assert_eq!(raw.len(), 1_000_008);
}

#[test]
fn re_add_of_unchanged_data_hashes_nothing_and_one_change_hashes_one_file() {
    let env = TestEnv::new();
    for i in 0..50 {
        env.write(&format!("data/f{i:02}.csv"), format!("row {i}\n"));
    }
    env.settle();
    let first = env.dvt(&["add", "data", "--json"]).ok().json();
    assert_eq!(first["hashed_files"], 50);

    let again = env.dvt(&["add", "data", "--json"]).ok().json();
    assert_eq!(again["hashed_files"], 0, "{again}");
    assert_eq!(again["added"][0]["unchanged"], true);

    env.write("data/f07.csv", "changed\n");
    env.settle();
    let third = env.dvt(&["add", "data", "--json"]).ok().json();
    assert_eq!(third["hashed_files"], 1, "{third}");
    assert_eq!(third["added"][0]["unchanged"], false);

    let st = env.dvt(&["status", "--json"]).ok().json();
    assert_eq!(st["hashed_files"], 0, "an unchanged tree costs no reads: {st}");
}

#[test]
fn status_lists_added_modified_deleted_and_missing_objects() {
    let env = TestEnv::new();
    env.write("data/a.csv", "a\n");
    env.write("data/b.csv", "b\n");
    env.write("data/sub/c.csv", "c\n");
    env.write("model.bin", "weights");
    env.dvt(&["add", "data", "model.bin"]).ok();

    env.write("data/a.csv", "a changed\n");
    std::fs::remove_file(env.path("data/b.csv")).unwrap();
    env.write("data/sub/new.csv", "new\n");
    let r = env.dvt(&["status"]).ok();
    assert_eq!(
        r.stdout,
        "data.dvt: modified\n    added: data/sub/new.csv\n    modified: data/a.csv\n    deleted: data/b.csv\n"
    );
    let j = env.dvt(&["status", "--json", "data"]).ok().json();
    assert_eq!(j["pointers"].as_array().unwrap().len(), 1);
    assert_eq!(j["pointers"][0]["workspace"], "modified");
    assert_eq!(j["pointers"][0]["deleted"][0], "data/b.csv");

    // Lose model.bin's object from the cache.
    let id = blake3::hash(b"weights").to_hex().to_string();
    env.remove_object(&id);
    let j = env.dvt(&["status", "--json", "model.bin.dvt"]).ok().json();
    assert_eq!(j["pointers"][0]["missing_from_cache"][0], id.as_str());
    assert!(
        env.dvt(&["status", "model.bin"])
            .ok()
            .stdout
            .contains("not in cache: 1 object")
    );

    // A directory whose objects were all present a moment ago loses one.
    env.dvt(&["checkout", "--force", "data"]).ok();
    assert!(env.dvt(&["status", "data"]).ok().stdout.contains("up to date"));
    let id = blake3::hash(b"c\n").to_hex().to_string();
    env.remove_object(&id);
    let j = env.dvt(&["status", "--json", "data"]).ok().json();
    assert_eq!(j["pointers"][0]["missing_from_cache"][0], id.as_str(), "{j}");
}

#[test]
fn control_characters_in_names_reach_the_terminal_as_escapes() {
    let env = TestEnv::new();
    // A name that would clear the screen, and one whose carriage return would hide its start.
    let clear = "data/x\u{1b}[2Jy.csv";
    let cr = "data/hidden\rshown.csv";
    env.write(clear, "a\n");
    env.write(cr, "b\n");
    let added = env.dvt(&["add", "data"]).ok();
    assert!(!added.stdout.contains('\u{1b}'), "{}", added.stdout);
    std::fs::remove_file(env.path(clear)).unwrap();
    std::fs::remove_file(env.path(cr)).unwrap();
    let r = env.dvt(&["status"]).ok();
    assert_eq!(
        r.stdout,
        "data.dvt: modified\n    deleted: data/hidden\\rshown.csv\n    deleted: data/x\\x1b[2Jy.csv\n"
    );
    // JSON keeps the names exact.
    let j = env.dvt(&["status", "--json"]).ok().json();
    assert_eq!(j["pointers"][0]["deleted"][1], clear);
    // So do errors.
    let e = env.dvt(&["add", "data/x\u{1b}[2Jy.csv"]).fails();
    assert!(
        !e.stderr.contains('\u{1b}') && e.stderr.contains("\\x1b[2J"),
        "{}",
        e.stderr
    );
    let restored = env.dvt(&["checkout"]).ok();
    assert_eq!(env.read(clear), b"a\n");
    assert!(
        restored.stdout.contains("restored data/x\\x1b[2Jy.csv\n"),
        "{}",
        restored.stdout
    );

    // A newline would split a name over two lines of a list: it is quoted, as git does.
    env.write("data/two\nlines.csv", "c\n");
    env.dvt(&["add", "data"]).ok();
    std::fs::remove_file(env.path("data/two\nlines.csv")).unwrap();
    let r = env.dvt(&["status"]).ok();
    assert_eq!(r.stdout, "data.dvt: modified\n    deleted: \"data/two\\nlines.csv\"\n");
    // Tracked itself, such a name is ignored by git through a `?` in its
    // `.gitignore` line (a pattern cannot hold a line break), and nothing else is.
    env.write("two\nlines", "d\n");
    env.write("lines", "not data\n");
    let r = env.dvt(&["add", "two\nlines"]).ok();
    assert_eq!(r.stdout, "added \"two\\nlines\" (2 B) -> \"two\\nlines.dvt\"\n");
    assert_eq!(
        env.git(&["status", "--porcelain", "--untracked-files=all"]).stdout,
        "?? .dvt/.gitignore\n?? .dvt/config.toml\n?? .gitignore\n?? data.dvt\n?? lines\n?? \"two\\nlines.dvt\"\n"
    );
}

#[test]
fn checkout_refuses_to_overwrite_changes_without_force() {
    let env = TestEnv::new();
    env.write("data/a.csv", "original a\n");
    env.write("data/b.csv", "original b\n");
    env.write("file.txt", "original file\n");
    env.dvt(&["add", "data", "file.txt"]).ok();
    env.write("data/a.csv", "my edit\n");
    env.write("data/extra.csv", "my new file\n");
    env.write("file.txt", "edited file\n");
    std::fs::remove_file(env.path("data/b.csv")).unwrap();

    let r = env.dvt(&["checkout"]).fails();
    for p in ["data/a.csv", "data/extra.csv", "file.txt"] {
        assert!(r.stderr.contains(p), "names {p}: {}", r.stderr);
    }
    assert!(r.stderr.contains("--force"));
    assert_eq!(env.read("data/a.csv"), b"my edit\n", "nothing was touched");
    assert!(!env.exists("data/b.csv"), "not even the safe restore: all or nothing");

    env.dvt(&["checkout", "--force"]).ok();
    assert_eq!(env.read("data/a.csv"), b"original a\n");
    assert_eq!(env.read("data/b.csv"), b"original b\n");
    assert_eq!(env.read("file.txt"), b"original file\n");
    assert!(!env.exists("data/extra.csv"));
}

#[test]
fn checkout_fixes_executable_bits_and_replaces_type_changes() {
    let env = TestEnv::new();
    env.write("tools/run.sh", "#!/bin/sh\n");
    std::fs::set_permissions(env.path("tools/run.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    env.dvt(&["add", "tools"]).ok();
    std::fs::set_permissions(env.path("tools/run.sh"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let st = env.dvt(&["status"]).ok();
    assert!(st.stdout.contains("mode changed: tools/run.sh"), "{}", st.stdout);
    env.dvt(&["checkout"]).ok();
    let mode = env.mode("tools/run.sh");
    assert_eq!(mode & 0o111, 0o111);
}

#[test]
fn a_tracked_path_replaced_by_another_type_is_said_in_one_line_and_restored_only_with_force() {
    let env = TestEnv::new();
    env.write("data/a.csv", "a\n");
    env.write("data/b.csv", "b\n");
    env.dvt(&["add", "data"]).ok();
    std::fs::remove_dir_all(env.path("data")).unwrap();
    env.write("data", "a file now\n");
    let st = env.dvt(&["status"]).ok();
    assert_eq!(
        st.stdout,
        "data.dvt: modified\n    replaced: data is a file now, not the directory of 2 files that the pointer records\n"
    );
    // The JSON says it too, and keeps the detail.
    let j = env.dvt(&["status", "--json"]).ok().json();
    assert_eq!(j["pointers"][0]["replaced_by"], "file");
    assert_eq!(j["pointers"][0]["added"][0], "data");
    assert_eq!(j["pointers"][0]["deleted"].as_array().unwrap().len(), 2);
    let r = env.dvt(&["checkout"]).fails();
    assert!(r.stderr.contains("  data\n"), "{}", r.stderr);
    assert_eq!(env.read("data"), b"a file now\n");
    env.dvt(&["checkout", "--force"]).ok();
    assert_eq!(env.read("data/b.csv"), b"b\n");

    // A symlink where the directory was: named as one; checkout, even with --force,
    // neither follows nor removes it (git would remove it; here the link may be the
    // user's way to keep data elsewhere) and says how to let the data back.
    std::fs::rename(env.path("data"), env.path("elsewhere")).unwrap();
    std::os::unix::fs::symlink("elsewhere", env.path("data")).unwrap();
    let st = env.dvt(&["status", "data"]).fails();
    assert!(
        st.stdout.contains("data.dvt: error: `data` is a symbolic link"),
        "{}",
        st.stdout
    );
    env.write("elsewhere/a.csv", "changed\n");
    for force in [&[][..], &["--force"]] {
        let r = env.dvt(&[&["checkout", "data"][..], force].concat()).fails();
        assert!(
            r.stderr.contains("hint: dvt reads and writes only real files")
                && r.stderr.contains("(`rm data` leaves what it points to alone)"),
            "{}",
            r.stderr
        );
    }
    assert_eq!(env.read("elsewhere/a.csv"), b"changed\n");
    std::fs::remove_file(env.path("data")).unwrap();
    env.dvt(&["checkout", "data"]).ok();
    assert_eq!(env.read("data/a.csv"), b"a\n");

    // And a tracked file replaced by a directory.
    env.write("model.bin", "weights");
    env.dvt(&["add", "model.bin"]).ok();
    std::fs::remove_file(env.path("model.bin")).unwrap();
    env.write("model.bin/part", "p");
    let st = env.dvt(&["status", "model.bin"]).ok();
    assert_eq!(
        st.stdout,
        "model.bin.dvt: modified\n    replaced: model.bin is a directory now, not the file that the pointer records\n"
    );
    let j = env.dvt(&["status", "--json", "model.bin"]).ok().json();
    assert_eq!(j["pointers"][0]["replaced_by"], "dir");

    // A file inside a tracked directory replaced by a directory, named as a target.
    std::fs::remove_file(env.path("data/a.csv")).unwrap();
    env.write("data/a.csv/inner", "x");
    let st = env.dvt(&["status", "data/a.csv"]).ok();
    assert_eq!(
        st.stdout,
        "data/a.csv (in data.dvt): modified\n    replaced: data/a.csv is a directory now, not the file that the pointer records\n"
    );
    // For the directory it is a change inside, not a replacement of `data`.
    let j = env.dvt(&["status", "--json", "data"]).ok().json();
    assert_eq!(j["pointers"][0]["replaced_by"], serde_json::Value::Null);
}

/// A path that was a file at one commit and a directory at the next: after
/// `git checkout` of either, `dvt checkout` replaces the other version, as it
/// replaces another version of the same kind, when the cache holds all of it.
#[test]
fn checkout_replaces_a_recorded_version_of_the_other_kind() {
    let env = TestEnv::new();
    env.write("data", "a file\n");
    env.dvt(&["add", "data"]).ok();
    env.commit("file");
    std::fs::remove_file(env.path("data")).unwrap();
    env.write("data/x.csv", "x\n");
    env.write("data/sub/y.csv", "y\n");
    env.dvt(&["add", "data"]).ok();
    env.commit("dir");
    env.git(&["checkout", "-q", "HEAD~1"]);
    env.dvt(&["checkout"]).ok();
    assert_eq!(env.read("data"), b"a file\n");
    env.git(&["checkout", "-q", "main"]);
    env.dvt(&["checkout"]).ok();
    assert_eq!(env.read("data/sub/y.csv"), b"y\n");
    // A file no version recorded stops it, and nothing changes.
    env.write("data/sub/new.csv", "mine\n");
    env.git(&["checkout", "-q", "HEAD~1"]);
    let r = env.dvt(&["checkout"]).fails();
    assert!(r.stderr.contains("changes not recorded in a pointer"), "{}", r.stderr);
    assert_eq!(env.read("data/sub/new.csv"), b"mine\n");
}

#[test]
fn targets_may_name_the_data_or_the_pointer_from_any_directory() {
    let env = TestEnv::new();
    env.write("data/raw/x.csv", "x\n");
    env.write("data/other.csv", "o\n");
    env.dvt(&["add", "data/raw", "data/other.csv"]).ok();
    std::fs::remove_dir_all(env.path("data/raw")).unwrap();
    std::fs::remove_file(env.path("data/other.csv")).unwrap();
    let sub = env.path("data");
    env.dvt_in(&sub, &["checkout", "raw.dvt"]).ok();
    assert!(env.exists("data/raw/x.csv") && !env.exists("data/other.csv"));
    env.dvt_in(&sub, &["checkout", "other.csv"]).ok();
    assert!(env.exists("data/other.csv"));
    env.dvt_in(&sub, &["checkout", "raw/"]).ok();
    let r = env.dvt(&["status", "data/nothing"]).fails();
    assert!(r.stderr.contains("`data/nothing` is not tracked"), "{}", r.stderr);
    assert!(!r.stderr.contains("did you mean"), "{}", r.stderr);
    // A typo names the tracked path it is closest to, as typed from here.
    let r = env.dvt_in(&sub, &["checkout", "othr.csv"]).fails();
    assert!(r.stderr.contains("hint: did you mean `other.csv`?"), "{}", r.stderr);
    // A pointer's name typed twice is named as typed, less one `.dvt`.
    let r = env.dvt(&["checkout", "data/other.csv.dvt.dvt"]).fails();
    assert!(
        r.stderr
            .contains("`data/other.csv.dvt` is not tracked by dvt (no `data/other.csv.dvt.dvt` pointer file)"),
        "{}",
        r.stderr
    );
    // The root is never tracked data: said so, with the `-R` that names it all
    // written from where the command ran.
    let r = env.dvt_in(&env.path("data/raw"), &["status", "../.."]).fails();
    assert!(
        r.stderr.contains("the repository's root is not tracked data")
            && r.stderr.contains("(as `-R ../..` does)")
            && !r.stderr.contains("..dvt"),
        "{}",
        r.stderr
    );
    env.dvt_in(&env.path("data/raw"), &["status", "-R", "../.."]).ok();
}

#[test]
fn targets_inside_a_tracked_directory_act_on_that_part_only() {
    let env = TestEnv::new();
    env.write("data/imgs/1.bin", noise(3000, 1));
    env.write("data/imgs/2.bin", noise(3000, 2));
    env.write("data/txt/deep/b.txt", "b\n");
    env.write("data/txt/a.txt", "a\n");
    env.dvt(&["add", "data"]).ok();
    env.write("data/imgs/2.bin", "edited\n");
    env.write("data/txt/a.txt", "edited too\n");

    // status of a part lists only that part's changes.
    let r = env.dvt(&["status", "data/imgs"]).ok();
    assert!(r.stdout.contains("data/imgs (in data.dvt): modified"), "{}", r.stdout);
    assert!(
        r.stdout.contains("modified: data/imgs/2.bin") && !r.stdout.contains("a.txt"),
        "{}",
        r.stdout
    );
    let j = env.dvt(&["status", "data/txt/deep", "--json"]).ok().json();
    assert_eq!(j["pointers"][0]["workspace"], "unchanged", "{j}");
    let j = env.dvt(&["status", "data/txt/a.txt", "--json"]).ok().json();
    assert_eq!(
        (&j["pointers"][0]["kind"], &j["pointers"][0]["workspace"]),
        (&"file".into(), &"modified".into()),
        "{j}"
    );

    // checkout of a part: refuses to lose its edits, restores it with --force, and
    // leaves the rest of the directory as it was.
    let r = env.dvt(&["checkout", "data/imgs"]).fails();
    assert!(
        r.stderr.contains("data/imgs/2.bin") && !r.stderr.contains("a.txt"),
        "{}",
        r.stderr
    );
    let r = env.dvt(&["checkout", "--force", "data/imgs/2.bin"]).ok();
    assert!(r.stdout.contains("1 file restored ("), "{}", r.stdout);
    assert_eq!(env.read("data/imgs/2.bin"), noise(3000, 2));
    assert_eq!(env.read("data/txt/a.txt"), b"edited too\n");

    // A missing subdirectory comes back alone; its sibling stays missing.
    std::fs::remove_dir_all(env.path("data/txt")).unwrap();
    std::fs::remove_dir_all(env.path("data/imgs")).unwrap();
    env.dvt_in(&env.path("data"), &["checkout", "txt/deep/"]).ok();
    assert_eq!(env.read("data/txt/deep/b.txt"), b"b\n");
    assert!(!env.exists("data/txt/a.txt") && !env.exists("data/imgs"));
    // Naming the directory whole as well makes the part redundant.
    env.dvt(&["checkout", "data/imgs/1.bin", "data"]).ok();
    assert_eq!(env.read("data/imgs/1.bin"), noise(3000, 1));
    assert_eq!(env.read("data/txt/a.txt"), b"a\n");

    // A path the directory does not record is named as such, and nothing changes.
    let before = snapshot(&env.path("data"));
    for cmd in ["status", "checkout"] {
        let r = env.dvt(&[cmd, "data/imgs/3.bin"]).fails();
        let out = format!("{}{}", r.stdout, r.stderr);
        assert!(
            out.contains("`data/imgs/3.bin` is not in the tracked directory `data` as `data.dvt` records it"),
            "{cmd}: {out}"
        );
    }
    assert_eq!(snapshot(&env.path("data")), before);
}

#[test]
fn remove_stops_tracking_but_keeps_the_data() {
    let env = TestEnv::new();
    env.write(".gitignore", "*.log\n");
    env.write("data.csv", "d\n");
    env.write("keep.csv", "k\n");
    env.dvt(&["add", "data.csv", "keep.csv"]).ok();
    let r = env.dvt(&["remove", "data.csv.dvt"]).ok();
    assert!(!env.exists("data.csv.dvt"));
    assert_eq!(env.read("data.csv"), b"d\n");
    // Its `.gitignore` entry went with it: said, with the way to keep data out of git.
    assert!(
        r.stderr
            .contains("hint: git no longer ignores that data, so `git add -A` would commit it"),
        "{}",
        r.stderr
    );
    assert_eq!(String::from_utf8(env.read(".gitignore")).unwrap(), "*.log\n/keep.csv\n");
    env.dvt(&["remove", "keep.csv"]).ok();
    assert_eq!(String::from_utf8(env.read(".gitignore")).unwrap(), "*.log\n");
    env.write("dir/inner.csv", "i\n");
    env.dvt(&["add", "dir"]).ok();
    let r = env.dvt(&["remove", "dir/inner.csv"]).fails();
    assert!(
        r.stderr.contains(
            "`dir/inner.csv` is inside the tracked directory `dir`; this command takes whole tracked paths: name `dir`"
        ),
        "{}",
        r.stderr
    );
    assert!(env.exists("dir.dvt"));
}

#[test]
fn fsck_names_corrupt_objects() {
    let env = TestEnv::new();
    env.write("a.csv", "aaaa\n".repeat(100));
    env.write("b.bin", noise(10_000, 4));
    env.dvt(&["add", "a.csv", "b.bin"]).ok();
    let hex = blake3::hash(&noise(10_000, 4)).to_hex().to_string();
    env.damage(&hex, |bytes| bytes[100] ^= 0xff);
    let r = env.dvt(&["fsck"]).fails();
    assert!(r.stdout.contains(&format!("corrupt {hex}")), "{}", r.stdout);
    assert!(r.stdout.contains("1 corrupt"));
}

#[test]
fn fsck_repair_restores_damaged_objects_from_the_workspace_and_the_rest_comes_from_a_remote() {
    let env = TestEnv::new();
    let remote = tempfile::tempdir().unwrap();
    for i in 0..10 {
        env.write(&format!("data/r{i}.csv"), format!("id,v\n{i},{}\n", i * 3));
    }
    let model = noise(5_000_000, 7);
    env.write("model.bin", &model);
    env.dvt(&["add", "data", "model.bin"]).ok();
    env.dvt(&["remote", "add", "-d", "store", remote.path().to_str().unwrap()])
        .ok();
    env.dvt(&["push"]).ok();
    let id_of = |b: &[u8]| blake3::hash(b).to_hex().to_string();
    let (r3, r4, big) = (id_of(b"id,v\n3,9\n"), id_of(b"id,v\n4,12\n"), id_of(&model));
    // Two packed objects and a big one with a file of its own; r4's only intact
    // copy left is on the remote.
    for id in [&r3, &r4, &big] {
        env.damage(id, |b| {
            let n = b.len();
            b[n - 2] ^= 1;
        });
    }
    std::fs::remove_file(env.path("data/r4.csv")).unwrap();
    let pointers = (env.read("data.dvt"), env.read("model.bin.dvt"));
    let r = env.dvt(&["fsck"]).fails();
    assert!(r.stdout.contains("3 corrupt"), "{}", r.stdout);
    assert!(r.stderr.contains("dvt fsck --repair"), "{}", r.stderr);

    let r = env.dvt(&["fsck", "--repair"]).fails();
    assert!(
        r.stdout
            .contains("removed 3 damaged objects, restored 2 from the workspace, 1 missing"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains(&format!("missing {r4}")), "{}", r.stdout);
    assert!(env.dvt(&["fsck"]).ok().stdout.contains("all intact"));
    assert!(env.has_object(&r3) && env.has_object(&big) && !env.has_object(&r4));
    // No pointer changed; the workspace was only read.
    assert_eq!((env.read("data.dvt"), env.read("model.bin.dvt")), pointers);
    let j = env.dvt(&["status", "--json"]).ok().json();
    assert_eq!(j["pointers"][0]["missing_from_cache"][0], r4.as_str(), "{j}");

    // The remote has the rest; then everything checks out byte for byte.
    env.dvt(&["pull"]).ok();
    std::fs::remove_dir_all(env.path("data")).unwrap();
    std::fs::remove_file(env.path("model.bin")).unwrap();
    env.dvt(&["checkout"]).ok();
    assert_eq!(env.read("data/r4.csv"), b"id,v\n4,12\n");
    assert_eq!(env.read("data/r3.csv"), b"id,v\n3,9\n");
    assert!(env.read("model.bin") == model);
    let r = env.dvt(&["fsck", "--repair"]).ok();
    assert!(
        r.stdout.contains("all intact") && !r.stdout.contains("repaired"),
        "{}",
        r.stdout
    );
}

#[test]
fn killed_fsck_repair_loses_no_intact_object_and_a_rerun_finishes() {
    let env = TestEnv::new();
    let content = |i: usize| format!("t,v\n{i},{}\n", i % 89).repeat(30);
    for i in 0..3000 {
        env.write(&format!("data/part-{i:04}.csv"), content(i));
    }
    env.dvt(&["add", "data"]).ok();
    let damaged: Vec<String> = (0..3000)
        .step_by(10)
        .map(|i| blake3::hash(content(i).as_bytes()).to_hex().to_string())
        .collect();
    for id in &damaged {
        env.damage(id, |b| {
            let n = b.len();
            b[n - 3] ^= 4;
        });
    }
    // The damaged cache is kept aside; each kill starts from a copy of it, at a
    // fraction of the time an uninterrupted repair takes.
    let damaged_cache = env.root.parent().unwrap().join("damaged-cache");
    common::copy_tree(&env.path(".dvt/cache"), &damaged_cache);
    let started = std::time::Instant::now();
    env.dvt(&["fsck", "--repair"]).ok();
    let full = started.elapsed();
    for tenth in [1u32, 3, 5, 7, 9] {
        std::fs::remove_dir_all(env.path(".dvt/cache")).unwrap();
        common::copy_tree(&damaged_cache, &env.path(".dvt/cache"));
        env.dvt_killed_after(&["fsck", "--repair"], full * tenth / 10);
        // Whatever the kill interrupted, every intact object is still there, and
        // no pack index is damaged.
        let j = env.dvt(&["status", "--json"]).ok().json();
        for id in j["pointers"][0]["missing_from_cache"].as_array().unwrap() {
            assert!(damaged.contains(&id.as_str().unwrap().to_string()), "lost {id}");
        }
        let f = env.dvt(&["fsck", "--json"]).json();
        assert_eq!(f["bad_indexes"].as_array().unwrap().len(), 0, "{tenth}/10: {f}");
        // A rerun stores again what the killed run took out and did not put back.
        env.dvt(&["fsck", "--repair"]).ok();
        let j = env.dvt(&["status", "--json"]).ok().json();
        let missing = j["pointers"][0]["missing_from_cache"].as_array().unwrap();
        assert!(missing.is_empty(), "{tenth}/10: {j}");
        assert!(env.dvt(&["fsck"]).ok().stdout.contains("all intact"));
    }
    std::fs::remove_dir_all(env.path("data")).unwrap();
    env.dvt(&["checkout"]).ok();
    assert_eq!(env.read("data/part-0010.csv"), content(10).as_bytes());
    assert_eq!(env.read("data/part-2999.csv"), content(2999).as_bytes());
}

#[test]
fn dvtignore_excludes_paths_from_add_and_status() {
    let env = TestEnv::new();
    env.write("data/keep.csv", "k\n");
    env.write("data/scratch/tmp.csv", "t\n");
    env.write("data/notes.log", "l\n");
    env.write("data/.dvtignore", "scratch/\n*.log\n");
    env.write(".dvtignore", "*.bak\n");
    env.write("data/old.bak", "b\n");
    let j = env.dvt(&["add", "data", "--json"]).ok().json();
    assert_eq!(j["added"][0]["files"], 2, "keep.csv and .dvtignore itself: {j}");
    env.write("data/more.log", "ignored too\n");
    env.write("data/scratch/again.csv", "ignored\n");
    assert!(env.dvt(&["status"]).ok().stdout.contains("up to date"));

    // check-ignore names the rule that excluded each path, as add saw them.
    let paths = [
        "data/keep.csv",
        "data/scratch/tmp.csv",
        "data/notes.log",
        "data/old.bak",
        "data/scratch/",
        ".dvt/config.toml",
    ];
    let r = env.dvt(&[&["check-ignore", "-d", "-n"][..], &paths[..]].concat()).ok();
    assert_eq!(
        r.stdout,
        "::\tdata/keep.csv\n\
         data/.dvtignore:1:scratch/\tdata/scratch/tmp.csv\n\
         data/.dvtignore:2:*.log\tdata/notes.log\n\
         .dvtignore:1:*.bak\tdata/old.bak\n\
         data/.dvtignore:1:scratch/\tdata/scratch/\n\
         (built-in):0:.dvt/\t.dvt/config.toml\n"
    );
    let r = env.dvt(&[&["check-ignore"][..], &paths[..]].concat()).ok();
    assert_eq!(r.stdout.lines().count(), 5, "only excluded paths: {}", r.stdout);
    // `--stdin` (as DVC's): the same answers for paths read one per line.
    let mut child = env
        .dvt_cmd(&["check-ignore", "-d", "-n", "--stdin"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    std::io::Write::write_all(&mut input, format!("{}\n", paths.join("\n")).as_bytes()).unwrap();
    drop(input);
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        (out.status.code(), String::from_utf8(out.stdout).unwrap()),
        (Some(0), {
            let by_args = env.dvt(&[&["check-ignore", "-d", "-n"][..], &paths[..]].concat()).ok();
            by_args.stdout
        })
    );
    assert_eq!(
        env.dvt_in(&env.path("data"), &["check-ignore", "notes.log"])
            .ok()
            .stdout,
        "notes.log\n"
    );
    let r = env.dvt(&["check-ignore", "data/keep.csv"]).fails();
    assert!(r.stdout.is_empty() && r.stderr.is_empty(), "{r:?}");

    // A `!` rule re-includes: check-ignore says so, and add stores the file.
    env.write("data/.dvtignore", "scratch/\n*.log\n!keep.log\n");
    env.write("data/keep.log", "kept\n");
    let r = env.dvt(&["check-ignore", "-d", "-n", "data/keep.log"]).fails();
    assert_eq!(r.stdout, "data/.dvtignore:3:!keep.log\tdata/keep.log\n");
    let j = env.dvt(&["add", "data", "--json"]).ok().json();
    assert_eq!(j["added"][0]["files"], 3, "keep.log is stored now: {j}");

    let r = env.dvt(&["check-ignore", "../elsewhere"]).fails();
    assert!(r.stderr.contains("is outside the repository"), "{}", r.stderr);
}

/// What `.dvtignore` excludes is not dvt's to delete: checkout keeps it, and a
/// directory holding only such files is not recorded as an empty directory.
#[test]
fn checkout_leaves_dvtignored_files_and_their_directories_alone() {
    let env = TestEnv::new();
    env.write("data/.dvtignore", "*.tmp\n");
    env.write("data/x", "v1\n");
    env.write("data/a", "a\n");
    env.dvt(&["add", "data"]).ok();
    env.commit("v1");
    let pointer = env.read("data.dvt");
    env.write("data/run/log.tmp", "scratch\n");
    assert!(env.dvt(&["status"]).ok().stdout.contains("up to date"));
    assert!(env.dvt(&["add", "data"]).ok().stdout.starts_with("unchanged data"));
    assert_eq!(env.read("data.dvt"), pointer, "no empty directory `run` recorded");
    env.dvt(&["checkout", "--force", "data"]).ok();
    assert_eq!(env.read("data/run/log.tmp"), b"scratch\n");

    // A file of the pointer goes where a directory holds ignored files: the rest is
    // restored, and the error names a file in the way.
    std::fs::remove_file(env.path("data/x")).unwrap();
    env.write("data/x/y/s.tmp", "mine\n");
    env.write("data/a", "b\n");
    env.dvt(&["add", "data"]).ok();
    env.commit("v2");
    env.git(&["checkout", "HEAD~1", "--", "data.dvt"]);
    let r = env.dvt(&["checkout", "--force"]).fails();
    assert!(
        r.stderr.contains(
            "`data/x` is a directory holding files that a `.dvtignore` leaves out (`data/x/y/s.tmp`), \
             where the pointer has a file"
        ),
        "{}",
        r.stderr
    );
    assert_eq!(env.read("data/a"), b"a\n");
    assert_eq!(env.read("data/x/y/s.tmp"), b"mine\n");
    std::fs::remove_dir_all(env.path("data/x")).unwrap();
    env.dvt(&["checkout"]).ok();
    assert_eq!(env.read("data/x"), b"v1\n");
    assert!(env.dvt(&["status"]).ok().stdout.contains("up to date"));
}

#[test]
fn add_rejects_bad_paths_and_writes_nothing() {
    let env = TestEnv::new();
    env.write("data/ok.csv", "ok\n");
    env.write("tracked/inner.csv", "i\n");
    env.dvt(&["add", "tracked"]).ok();
    env.write("dir.dvt/x", "x\n");
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("x"), "x").unwrap();
    let outside_file = outside.path().join("x");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["missing.csv"], "`missing.csv` does not exist"),
        (vec![outside_file.to_str().unwrap()], "is outside the repository"),
        (vec!["../x"], "is outside the repository"),
        (vec![".dvt/config.toml"], "inside `.dvt` or `.git`"),
        (vec![".git"], "inside `.dvt` or `.git`"),
        (vec!["tracked/inner.csv"], "is inside the tracked directory `tracked`"),
        (vec!["data/ok.csv", "nope"], "`nope` does not exist"),
        (vec!["data/ok.csv/below"], "`data/ok.csv/below` does not exist"),
        (vec!["gone.dvt"], "`gone.dvt` does not exist"),
        (vec!["dir.dvt"], "`dir.dvt` cannot be tracked: it is a pointer file"),
        (vec!["."], "`.` cannot be tracked: it is the repository root"),
    ];
    for (args, msg) in cases {
        let mut full = vec!["add"];
        full.extend(args.iter());
        let r = env.dvt(&full).fails();
        assert!(r.stderr.contains(msg), "{args:?}: {}", r.stderr);
        assert!(r.stderr.starts_with("error: "), "{}", r.stderr);
    }
    assert!(
        !env.exists("data/ok.csv.dvt"),
        "a bad path in the list stops the whole add"
    );
    // A pointer names its data (as for every other command), and a path named
    // twice, as a shell's `dir/*` names data and pointer, is added once.
    env.write("tracked/inner.csv", "i, edited\n");
    env.write("data/ok.csv.dvt", "not a pointer\n");
    let r = env.dvt(&["add", "data/ok.csv.dvt"]).fails();
    assert!(r.stderr.contains("data/ok.csv.dvt"), "{}", r.stderr);
    std::fs::remove_file(env.path("data/ok.csv.dvt")).unwrap();
    env.dvt(&["add", "data/ok.csv"]).ok();
    let r = env
        .dvt(&["add", "tracked.dvt", "tracked", "data/ok.csv", "data/ok.csv.dvt"])
        .ok();
    assert_eq!(r.stdout.lines().count(), 2, "{}", r.stdout);
    assert!(
        r.stdout.contains("tracked (1 file") && r.stdout.contains("unchanged data/ok.csv"),
        "{}",
        r.stdout
    );
    assert!(env.dvt(&["status"]).ok().stdout.contains("up to date"));
    // An absolute path through a symbolic link to the repository (a home
    // directory linked to another disk) is inside it.
    let linked = env.home.join("linked-repo");
    std::os::unix::fs::symlink(&env.root, &linked).unwrap();
    let via_link = linked.join("data/ok.csv");
    env.dvt(&["add", via_link.to_str().unwrap()]).ok();
    assert!(env.exists("data/ok.csv.dvt"));
    env.dvt(&["status", via_link.to_str().unwrap()]).ok();
    // A link as the last part is the path's own: refused, not followed.
    std::os::unix::fs::symlink(env.path("data"), env.path("data-link")).unwrap();
    let r = env.dvt(&["add", linked.join("data-link").to_str().unwrap()]).fails();
    assert!(r.stderr.contains("is a symbolic link"), "{}", r.stderr);
}

/// The commands a hint suggests name paths from where the user is, so that
/// they work pasted there (messages name paths from the root, as status does).
#[test]
fn hints_work_pasted_in_a_subdirectory() {
    let env = TestEnv::new();
    env.write("data/raw/a.csv", "a\n");
    env.write("outer/inner/b.csv", "b\n");
    env.write("in git/c.csv", "c\n");
    env.write("work/deep/.keep", "");
    env.dvt(&["add", "data", "outer/inner"]).ok();
    env.git(&["add", "in git/c.csv"]);
    std::os::unix::fs::symlink("data", env.path("link")).unwrap();
    let here = env.path("work/deep");
    // The one command between backticks that the hint suggests, starting with `word`.
    let suggested = |stderr: &str, word: &str| -> String {
        let hint = stderr
            .lines()
            .find(|l| l.starts_with("hint: "))
            .unwrap_or_else(|| panic!("{stderr}"));
        let start = hint.find(&format!("`{word} ")).unwrap_or_else(|| panic!("{hint}")) + 1;
        hint[start..start + hint[start..].find('`').unwrap()].to_string()
    };
    for (target, word, command) in [
        ("../../data/raw", "dvt", "dvt add ../../data"),
        ("../../outer", "dvt", "dvt remove ../../outer/inner.dvt"),
        ("../../in git", "git", "git rm -r --cached '../../in git'"),
        ("../../link", "rm", "rm ../../link"),
    ] {
        let r = env.dvt_in(&here, &["add", target]).fails();
        assert!(!r.stderr.contains("/work/deep"), "{}", r.stderr);
        let cmd = suggested(&r.stderr, word);
        assert_eq!(cmd, command, "{}", r.stderr);
        env.sh_in(&here, &cmd).ok();
    }
    // Each followed, the path is addable from there.
    env.dvt_in(&here, &["add", "../../outer", "../../in git"]).ok();
    assert!(env.exists("outer.dvt") && env.exists("in git.dvt") && !env.exists("link"));
    // `-C` is where the command runs.
    let r = env.dvt(&["-C", "work", "add", "../data/raw"]).fails();
    assert_eq!(suggested(&r.stderr, "dvt"), "dvt add ../data");
    let r = env.dvt(&["add", "data/raw"]).fails();
    assert_eq!(suggested(&r.stderr, "dvt"), "dvt add data");
    // A pointer that cannot be read: the hint puts back the committed one.
    env.commit("tracked");
    let committed = env.read("data.dvt");
    env.write("data.dvt", "version = 1\n");
    let r = env.dvt_in(&here, &["checkout", "../../data"]).fails();
    let cmd = suggested(&r.stderr, "git");
    assert_eq!(cmd, "git checkout -- ../../data.dvt", "{}", r.stderr);
    env.sh_in(&here, &cmd).ok();
    assert_eq!(env.read("data.dvt"), committed);
}

/// As DVC does: data that git tracks (committed or only staged) is refused, since
/// git would go on committing what the `.gitignore` entry is meant to keep out. The
/// hint's commands make the same path addable.
#[test]
fn add_refuses_paths_that_git_tracks() {
    let env = TestEnv::new();
    env.write("data.csv", "t,v\n0,1\n");
    env.write("data/notes.txt", "collected by hand\n");
    env.write("data/raw.bin", "raw\n");
    env.git(&["add", "data.csv", "data/notes.txt"]);
    env.git(&["commit", "-q", "-m", "data in git"]);
    env.write("staged.csv", "s\n");
    env.git(&["add", "staged.csv"]);
    for (target, tracked) in [
        ("data.csv", "data.csv"),
        ("data", "data/notes.txt"),
        ("staged.csv", "staged.csv"),
    ] {
        let r = env.dvt(&["add", target]).fails();
        assert!(
            r.stderr
                .contains(&format!("`{target}` is tracked by git (`{tracked}` is in git's index)")),
            "{}",
            r.stderr
        );
        assert!(
            r.stderr.contains(&format!("git rm -r --cached {target}")),
            "{}",
            r.stderr
        );
        assert!(!env.exists(&format!("{target}.dvt")), "{target}: a pointer was written");
    }
    assert!(!env.exists(".gitignore"), "nothing was written");
    // Several targets: one tracked by git stops them all.
    env.write("free.csv", "f\n");
    env.dvt(&["add", "free.csv", "data.csv"]).fails();
    assert!(!env.exists("free.csv.dvt"));
    // Following the hint makes the path addable; the files stay.
    env.git(&["rm", "-q", "-r", "--cached", "data"]);
    env.git(&["commit", "-q", "-m", "stop tracking data"]);
    env.dvt(&["add", "data"]).ok();
    assert_eq!(env.read("data/notes.txt"), b"collected by hand\n");
    assert!(env.exists("data.dvt"));
}

#[test]
fn add_refuses_symlinks() {
    let env = TestEnv::new();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret"), "s").unwrap();
    std::os::unix::fs::symlink(outside.path(), env.path("link")).unwrap();
    let r = env.dvt(&["add", "link/secret"]).fails();
    assert!(
        r.stderr.contains("`link/secret` goes through the symbolic link `link`"),
        "{}",
        r.stderr
    );
    env.write("data/a.csv", "a\n");
    std::os::unix::fs::symlink("/etc/hostname", env.path("data/l")).unwrap();
    let r = env.dvt(&["add", "data"]).fails();
    // Named from the repository root, as every other path in an error.
    assert!(r.stderr.contains("error: `data/l` is a symbolic link"), "{}", r.stderr);
    assert!(!env.exists("data.dvt"));
    // A link named itself is said to be one, not to lead through itself.
    std::os::unix::fs::symlink("data/a.csv", env.path("alias.csv")).unwrap();
    let r = env.dvt(&["add", "alias.csv"]).fails();
    assert!(r.stderr.contains("`alias.csv` is a symbolic link"), "{}", r.stderr);
    assert!(!env.exists("alias.csv.dvt"));
    // Nor is a fifo data: it is refused by the name it was given.
    let made = std::process::Command::new("mkfifo")
        .arg(env.path("pipe"))
        .status()
        .unwrap();
    assert!(made.success());
    let r = env.dvt(&["add", "pipe"]).fails();
    assert!(
        r.stderr.contains("`pipe` is not a regular file or directory"),
        "{}",
        r.stderr
    );
    assert!(!env.exists("pipe.dvt"));
    // One inside a directory is named from the repository root.
    env.write("more/a.csv", "a\n");
    std::fs::rename(env.path("pipe"), env.path("more/pipe")).unwrap();
    let r = env.dvt(&["add", "more"]).fails();
    assert!(
        r.stderr
            .contains("error: `more/pipe` is not a regular file or directory"),
        "{}",
        r.stderr
    );
    assert!(!env.exists("more.dvt"));
}

#[test]
fn malformed_pointer_is_named_with_what_is_wrong() {
    let env = TestEnv::new();
    env.write("data.csv", "d\n");
    env.dvt(&["add", "data.csv"]).ok();
    let good = String::from_utf8(env.read("data.csv.dvt")).unwrap();
    let cases = [
        (
            "version = 1\npath = \"data.csv\"\nkind = \"file\"\n",
            "missing field `id`",
        ),
        ("this is not toml", "invalid pointer file `"),
        ("version = 1\npath = [\n", "line 2, column 9: unclosed array"),
        (
            &good.replace("kind = \"file\"", "kind = \"folder\""),
            "unknown variant `folder`",
        ),
        (&good.replace("version = 1", "version = 9"), "format version 9"),
        (&good.replace("size = 2", "size = \"big\""), "invalid type"),
        (&format!("{good}extra = 1\n"), "unknown field `extra`"),
        // A `[source]` is an import from a repository, or with `url`, from a URL.
        (
            &format!("{good}\n[source]\nurl = \"s3://b/k\"\n"),
            "missing field `fingerprint`",
        ),
        (
            &format!("{good}\n[source]\nrepo = \"r\"\nfingerprint = \"f\"\n"),
            "unknown field `fingerprint`, expected one of `repo`",
        ),
    ];
    for (text, msg) in cases {
        env.write("data.csv.dvt", text);
        let r = env.dvt(&["checkout", "--force"]).fails();
        assert!(r.stderr.contains("data.csv.dvt"), "names the file: {}", r.stderr);
        assert!(r.stderr.contains(msg), "says {msg:?}: {}", r.stderr);
        assert!(!r.stderr.contains(" | "), "one line, no drawing: {}", r.stderr);
        let st = env.dvt(&["status"]).fails();
        assert!(st.stdout.contains("data.csv.dvt: error:"), "{}", st.stdout);
        // A newer dvt's pointer is not to be mended by hand.
        let newer = msg == "format version 9";
        assert_eq!(st.stderr.contains("upgrade dvt"), newer, "{}", st.stderr);
        assert_eq!(st.stderr.contains("fix it by hand"), !newer, "{}", st.stderr);
    }
    env.write("data.csv.dvt", "this is not toml");
    let r = env.dvt(&["checkout"]).fails();
    assert!(
        r.stderr
            .contains("hint: fix it by hand, or put back the committed one with `git checkout -- "),
        "{}",
        r.stderr
    );
    // status reports it among the others, and says how to mend it, from where the user is.
    env.write("sub/.keep", "");
    let st = env.dvt_in(&env.path("sub"), &["status"]).fails();
    assert!(
        st.stderr
            .contains("put back the committed one with `git checkout -- ../data.csv.dvt`"),
        "{}",
        st.stderr
    );
}

#[test]
fn pointer_paths_that_escape_are_rejected_before_anything_is_written() {
    let env = TestEnv::new();
    env.write("sub/data.csv", "d\n");
    env.dvt(&["add", "sub/data.csv"]).ok();
    let good = String::from_utf8(env.read("sub/data.csv.dvt")).unwrap();
    for (bad, msg) in [
        ("../victim.csv", "`..` components"),
        ("/tmp/victim.csv", "absolute paths"),
        ("../.git/config", "`..` components"),
    ] {
        env.write(
            "sub/data.csv.dvt",
            good.replace("path = \"data.csv\"", &format!("path = \"{bad}\"")),
        );
        let r = env.dvt(&["checkout", "--force"]).fails();
        assert!(
            r.stderr.contains("unsafe path") && r.stderr.contains(msg),
            "{bad}: {}",
            r.stderr
        );
        assert!(r.stderr.contains("sub/data.csv.dvt"), "{}", r.stderr);
    }
    assert!(!env.exists("victim.csv") && !std::path::Path::new("/tmp/victim.csv").exists());

    // A pointer inside a symlinked directory would write outside the repo.
    let outside = tempfile::tempdir().unwrap();
    env.write("sub/data.csv.dvt", &good);
    std::fs::remove_file(env.path("sub/data.csv")).unwrap();
    std::fs::rename(env.path("sub"), env.path("real")).unwrap();
    std::fs::rename(env.path("real"), outside.path().join("real")).unwrap();
    std::os::unix::fs::symlink(outside.path().join("real"), env.path("sub")).unwrap();
    let r = env.dvt(&["checkout", "sub/data.csv.dvt"]).fails();
    assert!(
        r.stderr.contains("`sub/data.csv` goes through the symbolic link `sub`"),
        "{}",
        r.stderr
    );
    assert!(!outside.path().join("real/data.csv").exists());
}

#[test]
fn manifest_with_escaping_path_is_rejected() {
    let env = TestEnv::new();
    env.write("data/a.csv", "a\n");
    env.dvt(&["add", "data"]).ok();
    // Forge a manifest whose entry climbs out, store it under its true id, and
    // point data.dvt at it: hashes match, so only path validation can stop it.
    let content_id = blake3::hash(b"a\n").to_hex().to_string();
    let manifest = format!("dvt-manifest 1\nf {content_id} 2 ../../escaped.csv\n");
    let mid = blake3::hash(manifest.as_bytes()).to_hex().to_string();
    let mut stored = b"dvtraw1\n".to_vec();
    stored.extend_from_slice(manifest.as_bytes());
    env.write(&format!(".dvt/cache/objects/{}/{}", &mid[..2], &mid[2..]), stored);
    let pointer = String::from_utf8(env.read("data.dvt")).unwrap();
    let old_id = pointer.lines().find(|l| l.starts_with("id = ")).unwrap();
    env.write("data.dvt", pointer.replace(old_id, &format!("id = \"{mid}\"")));
    std::fs::remove_dir_all(env.path("data")).unwrap();
    let r = env.dvt(&["checkout"]).fails();
    assert!(r.stderr.contains("unsafe path `../../escaped.csv`"), "{}", r.stderr);
    assert!(!env.root.parent().unwrap().join("escaped.csv").exists());
    assert!(!env.exists("data"), "nothing was written");
}

#[test]
fn corrupt_or_missing_object_never_reaches_the_workspace() {
    let env = TestEnv::new();
    let big = noise(9_000_000, 5); // streamed path
    let mid = noise(100_000, 6); // packed, read whole
    env.write("data/small.csv", "s\n".repeat(1000));
    env.write("data/big.bin", &big);
    env.write("data/mid.bin", &mid);
    env.dvt(&["add", "data"]).ok();
    // Delete the small object, then corrupt the big and the middle ones.
    let small_id = blake3::hash("s\n".repeat(1000).as_bytes()).to_hex().to_string();
    env.remove_object(&small_id);
    let big_id = blake3::hash(&big).to_hex().to_string();
    let mid_id = blake3::hash(&mid).to_hex().to_string();
    for id in [&big_id, &mid_id] {
        env.damage(id, |bytes| {
            let n = bytes.len();
            bytes[n - 10] ^= 1;
        });
    }

    std::fs::remove_dir_all(env.path("data")).unwrap();
    let r = env.dvt(&["checkout"]).fails();
    assert!(
        r.stderr.contains(&format!("object {big_id} in the cache is corrupt")),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("data/big.bin"), "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!("object {mid_id} in the cache is corrupt")),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("data/mid.bin"), "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!("object {small_id} is not in the cache")),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("data/small.csv"), "{}", r.stderr);
    assert!(!env.exists("data/big.bin") && !env.exists("data/small.csv") && !env.exists("data/mid.bin"));
    let leftovers: Vec<_> = common::walk(&env.path("data"))
        .into_iter()
        .filter(|p| p.is_file())
        .collect();
    assert!(leftovers.is_empty(), "no temp files left: {leftovers:?}");

    // An existing file is not replaced by bad bytes either, even with --force.
    env.write("data/big.bin", "my own\n");
    env.dvt(&["checkout", "--force"]).fails();
    assert_eq!(env.read("data/big.bin"), b"my own\n");
}

/// `dvt destroy`, as `dvc destroy`: dvt's files go, the data stays as plain
/// files (still git-ignored), and so do dvt's hooks; never while the cache it
/// deletes holds the only copy of data the workspace lacks.
#[test]
fn destroy_leaves_plain_data_and_never_the_only_copy_behind() {
    let env = TestEnv::new();
    env.write("data/a.csv", "a\n");
    env.write("data/b.csv", "b\n");
    env.write("data/.dvtignore", "*.tmp\n");
    env.write("model.bin", "weights");
    env.dvt(&["add", "data", "model.bin"]).ok();
    env.dvt(&[
        "stage",
        "add",
        "-n",
        "copy",
        "-d",
        "model.bin",
        "-o",
        "out.bin",
        "cp model.bin out.bin",
    ])
    .ok();
    env.dvt(&["repro"]).ok();
    env.dvt(&["install-hooks"]).ok();
    env.commit("tracked");
    let gitignore = env.read(".gitignore");
    let everything = [
        ".dvt",
        "data.dvt",
        "model.bin.dvt",
        "dvt.toml",
        "dvt.lock",
        "data/.dvtignore",
    ];

    // Data only in the cache: refused, even with --force, and nothing goes.
    std::fs::remove_file(env.path("data/b.csv")).unwrap();
    let r = env.dvt(&["destroy", "-f"]).fails();
    assert!(
        r.stderr
            .contains("error: not deleting the cache: it may hold the only copy here of data the workspace lacks (data); `dvt checkout` puts data back"),
        "{}",
        r.stderr
    );
    let r = env.dvt(&["destroy", "--dry-run"]).ok();
    assert!(
        r.stderr.contains("only in the cache (and on remotes): data\n"),
        "{}",
        r.stderr
    );
    env.dvt(&["checkout", "data"]).ok();
    // A pointer dvt cannot read: what it tracks is unknown, so the same refusal,
    // named as such.
    let committed = env.read("model.bin.dvt");
    env.write("model.bin.dvt", "version = 1\npath = \"model.bin\"\n");
    let r = env.dvt(&["destroy", "-f"]).fails();
    assert!(
        r.stderr.contains(
            "it may hold the only copy here of whatever the pointers dvt cannot read track (model.bin.dvt); \
             `dvt status` says what is wrong with a pointer: mend it, or `dvt remove` it; then run `dvt destroy` again"
        ),
        "{}",
        r.stderr
    );
    let plan = env.dvt(&["destroy", "--dry-run", "--json"]).ok().json();
    assert_eq!(plan["plan"]["unreadable"], serde_json::json!(["model.bin.dvt"]));
    assert_eq!(plan["plan"]["at_risk"], serde_json::json!(["model.bin.dvt"]));
    env.write("model.bin.dvt", committed);
    // Without a terminal to ask on, only with --force.
    let r = env.dvt(&["destroy"]).fails();
    assert!(r.stderr.contains("pass `--force`"), "{}", r.stderr);
    let plan = env.dvt(&["destroy", "--dry-run", "--json"]).ok().json();
    assert_eq!(
        plan["plan"]["pointers"],
        serde_json::json!(["data.dvt", "model.bin.dvt"])
    );
    assert_eq!(plan["plan"]["ignore_files"], serde_json::json!(["data/.dvtignore"]));
    assert_eq!(plan["destroyed"], false);
    for f in everything {
        assert!(env.exists(f), "{f} was deleted");
    }
    // Not while an experiment runs (in a worktree under `.dvt`).
    let running = env.hold_lock(".dvt/tmp/exps/queue-1.lock", "pid 4242: dvt queue start");
    let r = env.dvt(&["destroy", "-f"]).fails();
    assert!(r.stderr.contains("(pid 4242: dvt queue start)"), "{}", r.stderr);
    assert!(env.exists(".dvt") && env.exists("data.dvt"));
    drop(running);

    let r = env.dvt(&["destroy", "-f"]).ok();
    assert!(
        r.stdout.contains("the data stays in place as plain files"),
        "{}",
        r.stdout
    );
    for f in everything {
        assert!(!env.exists(f), "{f} is still there");
    }
    assert_eq!(env.read("data/a.csv"), b"a\n");
    assert_eq!(env.read("data/b.csv"), b"b\n");
    assert_eq!(env.read("out.bin"), b"weights");
    assert_eq!(env.read(".gitignore"), gitignore);
    assert!(!env.exists(".git/hooks/post-checkout"));
    assert!(
        env.run("git", &["config", "--get-regexp", "^merge\\."])
            .stdout
            .is_empty()
    );
    // git sees the pointers deleted, the data still ignored.
    let st = env.run("git", &["status", "--porcelain"]).ok().stdout;
    assert!(st.contains(" D data.dvt") && !st.contains("model.bin\n"), "{st}");
    let r = env.dvt(&["status"]).fails();
    assert!(r.stderr.contains("dvt init"), "{}", r.stderr);

    // A cache elsewhere stays, and no longer keeps data for this repository.
    let b = TestEnv::new();
    let shared = b.root.parent().unwrap().join("shared-cache");
    b.dvt(&["config", "cache.dir", shared.to_str().unwrap()]).ok();
    b.write("x.bin", "x");
    b.dvt(&["add", "x.bin"]).ok();
    let r = b.dvt(&["destroy", "-f"]).ok();
    assert!(r.stderr.contains("is kept"), "{}", r.stderr);
    assert!(!b.exists(".dvt") && shared.join("repos").is_file());
    let listed = std::fs::read_to_string(shared.join("repos")).unwrap();
    assert!(!listed.contains(b.root.to_str().unwrap()), "{listed}");
}

#[test]
fn a_second_mutating_command_names_the_lock_holder() {
    let env = TestEnv::new();
    env.write("a.csv", "a\n");
    let lock = env.hold_lock(".dvt/tmp/lock", "pid 4242: dvt add big");
    let r = env.dvt(&["add", "a.csv"]).fails();
    assert!(
        r.stderr
            .contains("locked by another dvt process (pid 4242: dvt add big)"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("`--wait-for-lock` waits for you"), "{}", r.stderr);
    assert!(!env.exists("a.csv.dvt"));
    drop(lock);
    env.dvt(&["add", "a.csv"]).ok();
}

/// `--wait-for-lock` waits for the holder instead of failing, and says so once.
#[test]
fn wait_for_lock_waits_for_the_holder() {
    let env = TestEnv::new();
    env.write("a.csv", "a\n");
    let lock = env.hold_lock(".dvt/tmp/lock", "pid 4242: dvt add big");
    let mut waiting = env
        .dvt_cmd(&["--wait-for-lock", "add", "a.csv"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(700));
    assert!(waiting.try_wait().unwrap().is_none(), "it did not wait");
    assert!(!env.exists("a.csv.dvt"));
    drop(lock);
    let out = waiting.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert_eq!(
        err.matches("waiting: the repository is locked by another dvt process (pid 4242: dvt add big)")
            .count(),
        1,
        "{err}"
    );
    assert!(env.exists("a.csv.dvt"));
}

/// DVC's `gc --projects`: the data of other repositories, named, is kept as
/// this one's (their workspace, HEAD, and the revisions asked for there); a
/// path that is no dvt repository is an error, and nothing is deleted.
#[test]
fn gc_projects_keeps_the_data_other_repositories_need() {
    let (a, b) = (TestEnv::new(), TestEnv::new());
    let id = |s: &str| blake3::hash(s.as_bytes()).to_hex().to_string();
    let has = |content: &str| Store::at(a.path(".dvt/cache")).has(&id(content));
    a.write("shared.csv", "both have this");
    a.write("old.csv", "only an old commit of b has this");
    a.write("mine.csv", "only a old commit of a has this");
    a.dvt(&["add", "shared.csv", "old.csv", "mine.csv"]).ok();
    a.commit("a");
    a.dvt(&["remove", "shared.csv.dvt", "old.csv.dvt", "mine.csv.dvt"]).ok();
    a.commit("a drops them");
    b.write("shared.csv", "both have this");
    b.dvt(&["add", "shared.csv"]).ok();
    b.write("old.csv", "only an old commit of b has this");
    b.dvt(&["add", "old.csv"]).ok();
    b.commit("b");
    b.dvt(&["remove", "old.csv.dvt"]).ok();
    b.commit("b drops old.csv");

    let project = b.root.to_str().unwrap();
    let r = a.dvt(&["gc", "--dry-run", "-p", project]).ok();
    assert!(
        r.stderr.contains(&format!(
            "and by those of 1 other repository given with --projects: `{project}`"
        )),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("cache: 2 objects to delete"), "{}", r.stderr);
    // `--all-commits` goes for the projects too.
    let r = a.dvt(&["gc", "-f", "-A", "--projects", project, "-j", "2"]).ok();
    assert!(r.stdout.contains("Nothing to delete"), "{}{}", r.stdout, r.stderr);
    a.dvt(&["gc", "-f", "-p", project]).ok();
    assert!(has("both have this"));
    assert!(!has("only an old commit of b has this") && !has("only a old commit of a has this"));

    // Not a repository: an error, and nothing deleted.
    a.write("again.csv", "again");
    a.dvt(&["add", "again.csv"]).ok();
    a.dvt(&["remove", "again.csv.dvt"]).ok();
    let elsewhere = tempfile::tempdir().unwrap();
    let r = a.dvt(&["gc", "-f", "-p", elsewhere.path().to_str().unwrap()]).fails();
    assert!(r.stderr.contains("not a dvt repository"), "{}", r.stderr);
    let r = a.dvt(&["gc", "-f", "-p", "no/such/dir"]).fails();
    assert!(r.stderr.contains("no/such/dir` does not exist"), "{}", r.stderr);
    assert!(has("again"));
}

#[test]
fn gc_in_a_cache_shared_by_several_repos_keeps_what_each_needs() {
    // `a` keeps its cache in `.dvt/cache`; `b` and `c` use the same one (as a
    // second git worktree would, with `cache.dir` in its local config).
    let a = TestEnv::new();
    let (b, c) = (TestEnv::new(), TestEnv::new());
    let shared = a.path(".dvt/cache");
    for other in [&b, &c] {
        other.write(
            ".dvt/config.local.toml",
            format!("[cache]\ndir = \"{}\"\n", shared.display()),
        );
    }
    let id = |s: &str| blake3::hash(s.as_bytes()).to_hex().to_string();
    a.write("a.bin", "only a has this");
    a.dvt(&["add", "a.bin"]).ok();
    a.commit("a");
    b.write("data/b.csv", "only b has this");
    b.dvt(&["add", "data"]).ok();
    b.commit("b");
    b.write("wip.bin", "b's uncommitted work");
    b.dvt(&["add", "wip.bin"]).ok();
    c.write("c.bin", "only c has this");
    c.dvt(&["add", "c.bin"]).ok();

    // gc in any of them keeps what every workspace and HEAD needs.
    for env in [&a, &b] {
        let r = env.dvt(&["gc", "-f"]).ok();
        assert!(r.stdout.contains("Nothing to delete"), "{}{}", r.stdout, r.stderr);
    }
    // A fresh look each time: a cache reads its pack indexes once.
    let has = |content: &str| Store::at(&shared).has(&id(content));
    for content in [
        "only a has this",
        "only b has this",
        "b's uncommitted work",
        "only c has this",
    ] {
        assert!(has(content), "{content} kept");
    }
    std::fs::remove_file(b.path("data/b.csv")).unwrap();
    b.dvt(&["checkout"]).ok();
    assert_eq!(b.read("data/b.csv"), b"only b has this");

    // A repository deleted is forgotten, and its data goes.
    let c_root = c.root.clone();
    drop(c);
    let r = b.dvt(&["gc", "-f"]).ok();
    assert!(
        r.stderr
            .contains(&format!("`{}` no longer uses this cache", c_root.display()))
            && r.stderr
                .contains("and by the workspace and HEAD of 1 other repository sharing the cache"),
        "{}",
        r.stderr
    );
    assert!(!has("only c has this"));
    assert!(has("only a has this") && has("b's uncommitted work"));
    let listed = std::fs::read_to_string(shared.join("repos")).unwrap();
    assert!(!listed.contains(c_root.to_str().unwrap()), "{listed}");
    a.dvt(&["fsck"]).ok();

    // gc holds the cache alone: while a command of any repository sharing it
    // runs, gc stops at once; while gc runs, their commands do.
    let lock = HeldLock::shared(&shared.join("lock"));
    let r = a.dvt(&["gc", "-f"]).fails();
    assert!(
        r.stderr.contains("the cache is locked by another dvt process"),
        "{}",
        r.stderr
    );
    drop(lock);
    let lock = HeldLock::exclusive(&shared.join("lock"));
    b.write("new.bin", "new");
    let r = b.dvt(&["add", "new.bin"]).fails();
    assert!(
        r.stderr.contains("the cache is locked by another dvt process"),
        "{}",
        r.stderr
    );
    assert!(!b.exists("new.bin.dvt"));
    drop(lock);
    b.dvt(&["add", "new.bin"]).ok();
}

#[test]
fn two_adds_at_once_never_corrupt_anything() {
    let env = TestEnv::new();
    env.write("one.bin", noise(40_000_000, 6));
    env.write("two.bin", noise(40_000_000, 7));
    let first = env
        .dvt_cmd(&["add", "two.bin"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let second = env.dvt_cmd(&["add", "one.bin"]).output().unwrap();
    let first = first.wait_with_output().unwrap();
    let mut winners = 0;
    for out in [&first, &second] {
        let err = String::from_utf8_lossy(&out.stderr);
        if out.status.success() {
            winners += 1;
        } else {
            assert!(err.contains("locked by another dvt process (pid "), "{err}");
        }
    }
    assert!(winners >= 1);
    env.dvt(&["add", "one.bin", "two.bin"]).ok();
    assert!(env.dvt(&["fsck"]).ok().stdout.contains("all intact"));
}

#[test]
fn killed_add_leaves_no_partial_object_or_pointer() {
    let env = TestEnv::new();
    let big = noise(120_000_000, 8);
    env.write("big.bin", &big);
    // Kills at tenths of an uninterrupted add on this machine land while the
    // object is written and while it is published, however fast the machine is.
    let started = std::time::Instant::now();
    env.dvt(&["add", "big.bin"]).ok();
    let full = started.elapsed();
    for tenth in 1..10u32 {
        std::fs::remove_file(env.path("big.bin.dvt")).ok();
        std::fs::remove_dir_all(env.path(".dvt/cache")).ok();
        std::fs::remove_dir_all(env.path(".dvt/tmp")).ok();
        env.dvt_killed_after(&["add", "big.bin"], full * tenth / 10);
        // Either no pointer, or a complete one whose object is intact.
        if env.exists("big.bin.dvt") {
            env.dvt(&["status"]).ok();
        }
        let fsck = env.dvt(&["fsck"]).ok();
        assert!(
            fsck.stdout.contains("all intact") || fsck.stdout.contains("checked 0 objects"),
            "after a kill at {tenth}/10 of an add: {}",
            fsck.stdout
        );
        for p in env.objects() {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            assert!(
                name.len() == 62 || name.contains(".dvt-tmp-"),
                "unexpected object file {p:?}"
            );
        }
    }
    std::fs::remove_file(env.path("big.bin.dvt")).ok();
    env.dvt(&["add", "big.bin"]).ok();
    std::fs::remove_file(env.path("big.bin")).unwrap();
    env.dvt(&["checkout"]).ok();
    assert!(env.read("big.bin") == big);
}

#[test]
fn killed_checkout_leaves_no_partial_workspace_file() {
    let env = TestEnv::new();
    let big = noise(120_000_000, 9);
    env.write("big.bin", &big);
    env.dvt(&["add", "big.bin"]).ok();
    for delay_ms in [5u64, 60, 200] {
        std::fs::remove_file(env.path("big.bin")).ok();
        env.dvt_killed_after(&["checkout"], std::time::Duration::from_millis(delay_ms));
        if env.exists("big.bin") {
            assert!(env.read("big.bin") == big, "a file under its final name is complete");
        }
    }
    env.dvt(&["checkout"]).ok();
    assert!(env.read("big.bin") == big);
    let st = env.dvt(&["status"]).ok();
    assert!(st.stdout.contains("up to date"), "{}", st.stdout);
    assert_eq!(
        temporaries(&env.root),
        Vec::<String>::new(),
        "the next checkout removes leftovers"
    );
}

/// The names of dvt's temporary files and directories directly in `dir`.
fn temporaries(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.contains(".dvt-tmp-"))
                .collect()
        })
        .unwrap_or_default()
}

/// Runs `prepare`, then `dvt ARGS` sent `signal` `after` it took the repo lock;
/// when it finished first, tries again with half the delay. Returns the
/// interrupted run.
fn interrupt(
    env: &TestEnv,
    args: &[&str],
    signal: &str,
    after: std::time::Duration,
    prepare: &dyn Fn(),
) -> common::Run {
    let mut after = after;
    for _ in 0..8 {
        prepare();
        let r = env.dvt_signalled_after(args, signal, after);
        if r.code != 0 {
            return r;
        }
        after /= 2;
    }
    panic!("dvt {args:?} always finished before SIG{signal}");
}

/// Ctrl-C (SIGINT) or SIGTERM in the middle of `checkout` or `add`: dvt removes
/// its unfinished files before it exits with 130, so none is left in the
/// workspace (where `git status` would show it) or in the cache.
#[test]
fn interrupted_commands_leave_no_unfinished_files() {
    let env = TestEnv::new();
    let big = noise(150_000_000, 11);
    env.write("big.bin", &big);
    for i in 0..1500 {
        env.write(
            &format!("data/part-{}/r{i:04}.bin", i % 5),
            noise(20_000, (i % 251) as u8),
        );
    }
    let expected = snapshot(&env.path("data"));
    let started = std::time::Instant::now();
    env.dvt(&["add", "big.bin", "data"]).ok();
    let add_time = started.elapsed();
    let wipe = || {
        std::fs::remove_file(env.path("big.bin")).ok();
        std::fs::remove_dir_all(env.path("data")).ok();
    };
    wipe();
    let started = std::time::Instant::now();
    env.dvt(&["checkout"]).ok();
    let checkout_time = started.elapsed();

    for (signal, tenth) in [("INT", 2u32), ("TERM", 5), ("INT", 8)] {
        let r = interrupt(&env, &["checkout"], signal, checkout_time * tenth / 10, &wipe);
        assert_eq!(r.code, 130, "SIG{signal} at {tenth}/10: {r:?}");
        assert!(r.stderr.contains("dvt: interrupted; removed"), "{}", r.stderr);
        assert_eq!(
            temporaries(&env.root),
            Vec::<String>::new(),
            "SIG{signal} at {tenth}/10"
        );
        assert!(!env.exists("big.bin") || env.read("big.bin") == big);
        assert!(!env.exists("data") || snapshot(&env.path("data")) == expected);
    }
    env.dvt(&["checkout"]).ok();
    let forget = || {
        std::fs::remove_dir_all(env.path(".dvt/cache")).ok();
        std::fs::remove_file(env.path("big.bin.dvt")).ok();
        std::fs::remove_file(env.path("data.dvt")).ok();
    };
    for tenth in [3u32, 6] {
        let r = interrupt(
            &env,
            &["add", "big.bin", "data"],
            "TERM",
            add_time * tenth / 10,
            &forget,
        );
        assert_eq!(r.code, 130, "SIGTERM at {tenth}/10 of add: {r:?}");
        let left = common::temp_leftovers(&env.root);
        assert!(left.is_empty(), "SIGTERM at {tenth}/10 of add: {left:?}");
        env.dvt(&["fsck"]).ok();
    }
    env.dvt(&["add", "big.bin", "data"]).ok();
    wipe();
    env.dvt(&["checkout"]).ok();
    assert!(env.read("big.bin") == big);
    assert_eq!(snapshot(&env.path("data")), expected);
}

#[test]
fn errors_outside_a_repo_and_usage_errors_have_distinct_codes() {
    let env = TestEnv::bare();
    let r = env.dvt(&["status"]).fails();
    assert!(r.stderr.contains("not a dvt repository"), "{}", r.stderr);
    assert!(r.stderr.contains("hint: run `dvt init`"), "{}", r.stderr);
    let r = env.dvt(&["add"]);
    assert_eq!(r.code, 2, "usage error: {}", r.stderr);
    let r = env.dvt(&["frobnicate"]);
    assert_eq!(r.code, 2);
}

#[test]
fn killed_checkout_of_a_directory_leaves_it_absent_or_complete() {
    let env = TestEnv::new();
    for i in 0..2000 {
        env.write(
            &format!("data/part-{}/r{i:04}.json", i % 10),
            format!("{{\"i\": {i}}}\n"),
        );
    }
    env.write("data/big.bin", noise(60_000_000, 10));
    let expected = snapshot(&env.path("data"));
    env.dvt(&["add", "data"]).ok();
    for delay_ms in [5u64, 30, 120] {
        std::fs::remove_dir_all(env.path("data")).ok();
        env.dvt_killed_after(&["checkout"], std::time::Duration::from_millis(delay_ms));
        if env.exists("data") {
            assert_eq!(
                snapshot(&env.path("data")),
                expected,
                "the directory appears only when complete"
            );
        }
    }
    std::fs::remove_dir_all(env.path("data")).ok();
    env.dvt(&["checkout"]).ok();
    assert_eq!(snapshot(&env.path("data")), expected);
    let stages = temporaries(&env.root);
    assert!(
        stages.is_empty(),
        "stale staging directories are cleaned up: {stages:?}"
    );
    let st = env.dvt(&["status", "--json"]).ok().json();
    assert_eq!(st["hashed_files"], 0, "checked-out files are in the stat cache: {st}");
}

#[test]
fn a_broken_config_is_named_and_nothing_runs() {
    let env = TestEnv::new();
    env.write("a.csv", "a\n");
    env.write(".dvt/config.local.toml", "# local\n[cache\n");
    let r = env.dvt(&["add", "a.csv"]).fails();
    assert!(
        r.stderr.contains("invalid config file") && r.stderr.contains("config.local.toml"),
        "{}",
        r.stderr
    );
    // Where in the file, on one line, without the parser's drawing of it.
    assert!(r.stderr.contains("line 2, column 7: "), "{}", r.stderr);
    assert_eq!(
        r.stderr.lines().filter(|l| l.starts_with("error:")).count(),
        1,
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains(" | "), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("hint: fix `.dvt/config.local.toml` by hand: it holds this clone's settings"),
        "{}",
        r.stderr
    );
    // The committed one: git has it.
    let committed = env.read(".dvt/config.toml");
    env.write(".dvt/config.toml", "[core\n");
    let r = env.dvt(&["add", "a.csv"]).fails();
    assert!(
        r.stderr
            .contains("put back the committed one with `git checkout -- .dvt/config.toml`"),
        "{}",
        r.stderr
    );
    env.write(".dvt/config.toml", committed);
    env.write(".dvt/config.local.toml", "[cache]\nlevl = 3\n");
    let r = env.dvt(&["add", "a.csv"]).fails();
    assert!(r.stderr.contains("unknown field `levl`"), "{}", r.stderr);
    assert!(!env.exists("a.csv.dvt"));
    env.write(".dvt/config.local.toml", "[cache]\nlevel = 19\n");
    env.dvt(&["add", "a.csv"]).ok();
}

#[test]
fn a_tracked_file_keeps_its_executable_bit() {
    let env = TestEnv::new();
    env.write("tools/train.sh", "#!/bin/sh\necho train\n");
    std::fs::set_permissions(env.path("tools/train.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    env.write("plain.txt", "p\n");
    env.dvt(&["add", "tools/train.sh", "plain.txt"]).ok();
    assert!(
        String::from_utf8(env.read("tools/train.sh.dvt"))
            .unwrap()
            .contains("\nexecutable = true\n")
    );
    assert!(
        !String::from_utf8(env.read("plain.txt.dvt"))
            .unwrap()
            .contains("executable")
    );

    std::fs::set_permissions(env.path("tools/train.sh"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let st = env.dvt(&["status"]).ok();
    assert!(st.stdout.contains("mode changed: tools/train.sh"), "{}", st.stdout);
    env.dvt(&["checkout"]).ok();
    let mode = env.mode("tools/train.sh");
    assert_eq!(mode & 0o111, 0o111);

    std::fs::remove_file(env.path("tools/train.sh")).unwrap();
    env.dvt(&["checkout"]).ok();
    let mode = env.mode("tools/train.sh");
    assert_eq!(mode & 0o111, 0o111, "restored executable");
    assert!(env.dvt(&["status"]).ok().stdout.contains("up to date"));
}

fn pack_files(env: &TestEnv) -> Vec<PathBuf> {
    let dir = env.path(".dvt/cache/packs");
    common::walk(&dir)
        .into_iter()
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "pack"))
        .collect()
}

#[test]
fn small_files_share_a_pack_and_gc_rewrites_it() {
    let env = TestEnv::new();
    for i in 0..300 {
        env.write(&format!("data/r{i:03}.csv"), format!("id,v\n{i},{}\n", i * 7));
    }
    env.write("model.bin", noise(200_000, 9));
    env.dvt(&["add", "data", "model.bin"]).ok();
    // The 301 files share a pack (one more per core at most, when two threads
    // would wait on one); only the directory's manifest has a file of its own.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert!((1..=cores).contains(&pack_files(&env).len()), "{:?}", pack_files(&env));
    assert_eq!(env.objects().len(), 1, "{:?}", env.objects());
    assert_eq!(env.object_ids().len(), 302);

    // Half the records go: gc keeps the pack's other objects in a rewritten pack.
    for i in 0..150 {
        std::fs::remove_file(env.path(&format!("data/r{i:03}.csv"))).unwrap();
    }
    env.dvt(&["add", "data"]).ok();
    let before = pack_files(&env);
    env.dvt(&["gc", "-w", "-f"]).ok();
    assert_eq!(env.object_ids().len(), 152, "150 records, the model, the new manifest");
    let packs = pack_files(&env);
    assert!(packs.len() <= before.len(), "{packs:?}");
    let gone: Vec<_> = before.iter().filter(|p| !packs.contains(p)).collect();
    assert!(
        !gone.is_empty(),
        "a pack with dead objects was rewritten: {before:?} -> {packs:?}"
    );
    assert!(gone.iter().all(|p| !p.with_extension("idx").exists()));
    std::fs::remove_dir_all(env.path("data")).unwrap();
    std::fs::remove_file(env.path("model.bin")).unwrap();
    env.dvt(&["checkout"]).ok();
    assert_eq!(env.read("data/r299.csv"), b"id,v\n299,2093\n");
    assert!(env.read("model.bin") == noise(200_000, 9));
    assert!(!env.exists("data/r000.csv"));
    assert!(env.dvt(&["fsck"]).ok().stdout.contains("all intact"));

    // A damaged byte inside the pack: that file is refused, by object and path.
    let id = blake3::hash(b"id,v\n200,1400\n").to_hex().to_string();
    env.damage(&id, |b| {
        let n = b.len();
        b[n - 2] ^= 1;
    });
    std::fs::remove_dir_all(env.path("data")).unwrap();
    let r = env.dvt(&["checkout"]).fails();
    assert!(
        r.stderr.contains(&format!("object {id} in the cache is corrupt")),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("data/r200.csv"), "{}", r.stderr);
    assert!(!env.exists("data/r200.csv"));
}

#[test]
fn damaged_pack_index_is_reported_and_its_objects_are_missing() {
    let env = TestEnv::new();
    env.write("data/a.csv", "a\n1\n");
    env.write("data/b.csv", "b\n2\n");
    env.dvt(&["add", "data"]).ok();
    // Every index damaged (two threads may have written a pack each).
    let indexes: Vec<PathBuf> = pack_files(&env).iter().map(|p| p.with_extension("idx")).collect();
    for idx in &indexes {
        let mut bytes = std::fs::read(idx).unwrap();
        bytes[20] ^= 1;
        std::fs::write(idx, bytes).unwrap();
    }
    let r = env.dvt(&["fsck"]).fails();
    assert!(r.stdout.contains("damaged pack index"), "{}", r.stdout);
    for idx in &indexes {
        assert!(
            r.stdout.contains(idx.file_name().unwrap().to_str().unwrap()),
            "{}",
            r.stdout
        );
    }
    let r = env.dvt(&["status", "--json"]).ok().json();
    assert_eq!(
        r["pointers"][0]["missing_from_cache"].as_array().unwrap().len(),
        2,
        "{r}"
    );
    std::fs::remove_dir_all(env.path("data")).unwrap();
    let r = env.dvt(&["checkout"]).fails();
    assert!(r.stderr.contains("is not in the cache"), "{}", r.stderr);
    // gc leaves the damaged pack alone: nothing it cannot read is deleted.
    env.dvt(&["gc", "-w", "-f"]).ok();
    assert!(
        indexes
            .iter()
            .all(|idx| idx.exists() && idx.with_extension("pack").exists())
    );

    // `--repair` sets the damaged packs aside, kept, and stores again what the
    // workspace holds.
    env.write("data/a.csv", "a\n1\n");
    env.write("data/b.csv", "b\n2\n");
    let r = env.dvt(&["fsck", "--repair"]).ok();
    assert!(r.stdout.contains("set aside damaged pack index"), "{}", r.stdout);
    // (The packs written again may be byte for byte the same, under the same name.)
    for idx in &indexes {
        let aside = env.path(".dvt/cache/damaged").join(idx.file_name().unwrap());
        assert!(aside.exists() && aside.with_extension("pack").exists(), "{aside:?}");
    }
    assert!(env.dvt(&["fsck"]).ok().stdout.contains("all intact"));
    std::fs::remove_dir_all(env.path("data")).unwrap();
    env.dvt(&["checkout"]).ok();
    assert_eq!(env.read("data/b.csv"), b"b\n2\n");
}

#[test]
fn truncated_pack_is_reported_as_truncated() {
    let env = TestEnv::new();
    for i in 0..40 {
        env.write(&format!("data/f{i:02}.csv"), format!("row {i},{}\n", i * 3));
    }
    env.dvt(&["add", "data"]).ok();
    // Every pack (one per thread at most) cut short, inside an object.
    for pack in pack_files(&env) {
        let len = std::fs::metadata(&pack).unwrap().len();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&pack)
            .unwrap()
            .set_len(len.min(205) - 5)
            .unwrap();
    }
    let r = env.dvt(&["fsck"]).fails();
    assert!(
        r.stdout.contains("truncated") && !r.stdout.contains("unknown object encoding"),
        "{}",
        r.stdout
    );
    std::fs::remove_dir_all(env.path("data")).unwrap();
    let r = env.dvt(&["checkout"]).fails();
    assert!(r.stderr.contains("truncated"), "{}", r.stderr);
    // What was restored is whole; what was cut off is not there at all.
    let mut absent = 0;
    for i in 0..40 {
        let f = format!("data/f{i:02}.csv");
        if env.exists(&f) {
            assert_eq!(env.read(&f), format!("row {i},{}\n", i * 3).into_bytes(), "{f}");
        } else {
            absent += 1;
        }
    }
    assert!(absent > 0);
}

#[test]
fn killed_add_of_many_small_files_publishes_no_partial_pack() {
    let env = TestEnv::new();
    for i in 0..3000 {
        env.write(
            &format!("data/part-{i:04}.csv"),
            format!("t,v\n{i},{}\n", i % 97).repeat(20),
        );
    }
    for delay_ms in [5u64, 30, 80, 200] {
        env.dvt_killed_after(&["add", "data"], std::time::Duration::from_millis(delay_ms));
        if env.exists("data.dvt") {
            assert!(env.dvt(&["status"]).ok().stdout.contains("up to date"));
            std::fs::remove_file(env.path("data.dvt")).unwrap();
        }
        let fsck = env.dvt(&["fsck"]).ok();
        assert!(
            !fsck.stdout.contains("corrupt") && !fsck.stdout.contains("damaged"),
            "{}",
            fsck.stdout
        );
        // A kill between renaming a pack into place and writing its index may leave
        // a pack without an index: never read (fsck above is clean, and the add below
        // works), and removed by gc at the end.
    }
    env.dvt(&["add", "data"]).ok();
    std::fs::remove_dir_all(env.path("data")).unwrap();
    env.dvt(&["checkout"]).ok();
    assert_eq!(
        env.read("data/part-2999.csv"),
        format!("t,v\n2999,{}\n", 2999 % 97).repeat(20).as_bytes()
    );
    // gc removes what killed writers left in packs/, whichever file they were
    // writing when killed (the kills above may not hit an index write: plant one).
    env.write(
        &format!(".dvt/cache/packs/.{}.idx.dvt-tmp-1-2", "0".repeat(64)),
        "partial",
    );
    // And the unfinished loose objects and temporary files a killed add or fetch leaves.
    env.write(".dvt/cache/objects/ab/.obj.dvt-tmp-1-3", "partial");
    env.write(".dvt/cache/tmp/.obj.dvt-tmp-1-4", "partial");
    env.dvt(&["gc", "-w", "-f"]).ok();
    let left = common::temp_leftovers(&env.path(".dvt/cache"));
    assert!(left.is_empty(), "{left:?}");
    for p in pack_files(&env) {
        assert!(
            p.with_extension("idx").exists(),
            "gc left a pack without its index: {p:?}"
        );
    }
}

/// `-q`, as in git and DVC: commands that change something print nothing but
/// errors; what the user asked to see (status, lists, `--json`) is still printed.
#[test]
fn quiet_prints_only_errors_and_what_was_asked_for() {
    let env = TestEnv::new();
    env.write("data/a.csv", "t,v\n1,2\n");
    env.write("model.bin", noise(10_000, 3));
    let silent = |args: &[&str]| {
        let r = env.dvt(args).ok();
        assert!(r.stdout.is_empty() && r.stderr.is_empty(), "{args:?}: {r:?}");
    };
    silent(&["add", "-q", "data", "model.bin"]);
    assert!(env.exists("data.dvt") && env.exists("model.bin.dvt"));
    let store = env.root.parent().unwrap().join("store");
    silent(&["-q", "remote", "add", "-d", "store", store.to_str().unwrap()]);
    silent(&["push", "-q"]);
    silent(&["push", "-q"]);
    std::fs::remove_dir_all(env.path("data")).unwrap();
    silent(&["checkout", "-q"]);
    assert_eq!(env.read("data/a.csv"), b"t,v\n1,2\n");
    // status -q, as DVC's: no output, and the exit code says whether anything differs.
    silent(&["status", "-q"]);
    env.write("data/a.csv", "t,v\n9,9\n");
    let r = env.dvt(&["status", "-q"]).fails();
    assert!(r.stdout.is_empty() && r.stderr.is_empty(), "{r:?}");
    silent(&["checkout", "-q", "-f"]);
    let r = env.dvt(&["-q", "remote", "list"]).ok();
    assert!(r.stdout.starts_with("store\t"), "{r:?}");
    let r = env.dvt(&["push", "-q", "--json"]).ok();
    assert_eq!(r.json()["uploaded"], 0);
    let r = env.dvt(&["add", "-q", "missing.csv"]).fails();
    assert!(r.stderr.contains("missing.csv"), "{r:?}");
    silent(&["remove", "-q", "model.bin.dvt"]);
}

/// On a terminal, add and checkout draw a bar that names the step and counts
/// bytes; `-q` draws nothing there either.
#[test]
fn progress_bars_on_a_terminal_and_quiet_silences_them() {
    let env = TestEnv::new();
    for i in 0..20 {
        env.write(&format!("data/f{i}.bin"), noise(50_000, i));
    }
    let r = env.dvt_on_terminal(&["add", "data"]).ok();
    assert!(
        r.stdout.contains("adding data") && r.stdout.contains("/976.56 KiB"),
        "{}",
        r.stdout
    );
    std::fs::remove_dir_all(env.path("data")).unwrap();
    let r = env.dvt_on_terminal(&["checkout"]).ok();
    assert!(
        r.stdout.contains("checking out data") && r.stdout.contains("/976.56 KiB"),
        "{}",
        r.stdout
    );
    std::fs::remove_dir_all(env.path("data")).unwrap();
    let r = env.dvt_on_terminal(&["checkout", "-q"]).ok();
    assert!(r.stdout.is_empty(), "{}", r.stdout);
    assert_eq!(env.read("data/f3.bin"), noise(50_000, 3));
}

/// The data frames of a stored zstd object (their content sizes), and whether
/// anything follows them (the seal).
fn frames_of(stored: &[u8]) -> (Vec<Option<u64>>, usize) {
    let (mut sizes, mut at) = (Vec::new(), 0);
    while stored[at..].starts_with(&[0x28, 0xB5, 0x2F, 0xFD]) {
        let rest = &stored[at..];
        sizes.push(zstd::zstd_safe::get_frame_content_size(rest).unwrap());
        at += zstd::zstd_safe::find_frame_compressed_size(rest).unwrap();
    }
    (sizes, stored.len() - at)
}

/// A big compressible file is stored as a run of frames of 4 MiB of content each,
/// which any zstd decoder reads as one stream and dvt decodes on several threads:
/// check the layout, the round trip, a damaged frame in the middle of the run, and
/// an object written the old way (one frame of unknown size).
#[test]
fn big_objects_are_runs_of_frames_decoded_whole() {
    let env = TestEnv::new();
    let csv: String = noise(9 << 20, 41).iter().map(|b| format!("{b:02x}")).collect();
    env.write("data/readings.csv", &csv);
    env.dvt(&["add", "data/readings.csv"]).ok();
    let id = blake3::hash(csv.as_bytes()).to_hex().to_string();
    let stored = env.stored(&id);
    let mib = Some(1 << 20);
    let four = mib.map(|m| 4 * m);
    assert_eq!(
        frames_of(&stored),
        (vec![four, four, four, four, mib.map(|m| 2 * m)], 48)
    );
    assert!(zstd::stream::decode_all(&stored[..]).unwrap() == csv.as_bytes());
    std::fs::remove_file(env.path("data/readings.csv")).unwrap();
    env.dvt(&["checkout"]).ok();
    assert!(env.read("data/readings.csv") == csv.as_bytes());

    // One flipped bit in the fourth frame, which a worker thread decodes.
    let fourth: usize = (0..3).fold(0, |at, _| {
        at + zstd::zstd_safe::find_frame_compressed_size(&stored[at..]).unwrap()
    });
    env.damage(&id, |b| b[fourth + 5000] ^= 0x04);
    std::fs::remove_file(env.path("data/readings.csv")).unwrap();
    let r = env.dvt(&["checkout"]).fails();
    assert!(
        r.stderr.contains(&format!("object {id} in the cache is corrupt")) && r.stderr.contains("data/readings.csv"),
        "{}",
        r.stderr
    );
    let names: Vec<_> = common::walk(&env.path("data"))
        .iter()
        .filter(|p| p.is_file())
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "bad bytes reached the workspace: {names:?}");
    assert!(names.contains(&".gitignore".to_string()) && names.contains(&"readings.csv.dvt".to_string()));
    let r = env.dvt(&["fsck"]).fails();
    assert!(r.stdout.contains(&format!("corrupt {id}")), "{}", r.stdout);

    // Written the old way: one frame that does not declare its size.
    let old = zstd::stream::encode_all(csv.as_bytes(), 1).unwrap();
    assert_eq!(frames_of(&old).0, vec![None], "not the old layout");
    env.damage(&id, |b| *b = old);
    env.dvt(&["checkout"]).ok();
    assert!(env.read("data/readings.csv") == csv.as_bytes());
    env.dvt(&["fsck"]).ok();
}

/// `dvt move` leaves `dvt.toml` as it is (as `dvc move` leaves `dvc.yaml`),
/// and names what there still points at the old path.
#[test]
fn move_names_the_deps_and_artifacts_left_at_the_old_path() {
    let env = TestEnv::new();
    env.write("data/raw/a.csv", "a\n");
    env.write("data/other.csv", "o\n");
    env.dvt(&["add", "data/raw", "data/other.csv"]).ok();
    env.write(
        "dvt.toml",
        "[stages.prep]\ncmd = \"true\"\ndeps = [\"data/raw\"]\n\n\
         [stages.one]\ncmd = \"true\"\nwdir = \"data\"\ndeps = [\"raw/a.csv\"]\n\n\
         [stages.all]\ncmd = \"true\"\ndeps = [\"data\", \"data/other.csv\"]\n\n\
         [artifacts.raw]\npath = \"data/raw\"\n",
    );
    let before = env.read("dvt.toml");
    let r = env.dvt(&["move", "data/raw", "input"]).ok();
    let warnings: Vec<&str> = r.stderr.lines().filter(|l| l.starts_with("warning:")).collect();
    assert_eq!(
        warnings,
        [
            "warning: stage `one` in dvt.toml names `data/raw/a.csv`, which is now `input/a.csv`: edit dvt.toml",
            "warning: stage `prep` in dvt.toml names `data/raw`, which is now `input`: edit dvt.toml",
            "warning: artifact `raw` in dvt.toml names `data/raw`, which is now `input`: edit dvt.toml",
        ],
        "{}",
        r.stderr
    );
    assert_eq!(env.read("dvt.toml"), before, "dvt.toml is the user's to edit");
    let j = env.dvt(&["move", "data/other.csv", "other.csv", "--json"]).ok().json();
    assert_eq!(j["named_in_pipeline"][0]["what"], "stage `all`", "{j}");
    // Nothing names the new place's old path: no warning.
    let r = env.dvt(&["move", "input", "data/raw"]).ok();
    assert!(!r.stderr.contains("warning"), "{}", r.stderr);
}

/// `dvt move` (alias `mv`), as `dvc move`: the data, its pointer and its
/// `.gitignore` entry move together; an existing directory means "into it".
#[test]
fn move_renames_data_pointer_and_gitignore_entry() {
    let env = TestEnv::new();
    env.write("data/raw/a.csv", "a\n1\n");
    env.write("data/raw/sub/b c.csv", "b\n2\n");
    env.write("data/keep.csv", "k\n");
    env.write("model.bin", noise(10_000, 3));
    env.settle();
    env.dvt(&["add", "data/raw", "data/keep.csv", "model.bin"]).ok();
    env.commit("data");

    // A directory, named by its pointer, to a place whose parents do not exist yet.
    let r = env.dvt(&["move", "data/raw.dvt", "archive/2024/raw"]).ok();
    assert!(r.stdout.contains("moved data/raw -> archive/2024/raw"), "{}", r.stdout);
    assert!(
        r.stderr
            .contains("git add -A data/raw.dvt archive/2024/raw.dvt archive/2024/.gitignore data/.gitignore"),
        "{}",
        r.stderr
    );
    assert!(!env.exists("data/raw") && !env.exists("data/raw.dvt"));
    assert_eq!(env.read("archive/2024/raw/sub/b c.csv"), b"b\n2\n");
    let pointer = String::from_utf8(env.read("archive/2024/raw.dvt")).unwrap();
    assert!(pointer.contains("path = \"raw\"\nkind = \"dir\""), "{pointer}");
    assert_eq!(env.read("archive/2024/.gitignore"), b"/raw\n");
    assert_eq!(env.read("data/.gitignore"), b"/keep.csv\n");
    // The moved directory's files keep their stat-cache entries: nothing to hash.
    let r = env.dvt(&["add", "archive/2024/raw"]).ok();
    assert!(r.stderr.contains("hashed 0 files"), "{}", r.stderr);
    // Git sees the pointer moved and none of the data.
    env.git(&["add", "-A"]);
    let staged = env.git(&["status", "--porcelain"]).stdout;
    assert!(
        staged.contains("archive/2024/raw.dvt") && !staged.contains(".csv\n"),
        "{staged}"
    );

    // A file into an existing directory, with the alias; the root `.gitignore` goes.
    env.dvt(&["mv", "model.bin", "archive"]).ok();
    assert!(env.read("archive/model.bin") == noise(10_000, 3));
    assert!(env.read("archive/.gitignore") == b"/model.bin\n" && !env.exists(".gitignore"));
    assert!(env.dvt(&["status"]).ok().stdout.contains("up to date"));

    // Data not in the workspace: the pointer moves, and checkout restores it there.
    std::fs::remove_file(env.path("archive/model.bin")).unwrap();
    let r = env.dvt(&["mv", "archive/model.bin", "models/m.bin"]).ok();
    assert!(r.stdout.contains("the pointer only"), "{}", r.stdout);
    // A rename within one directory names its `.gitignore` once.
    let r = env.dvt(&["mv", "data/keep.csv", "data/kept.csv"]).ok();
    assert!(
        r.stderr
            .contains("git add -A data/keep.csv.dvt data/kept.csv.dvt data/.gitignore\n"),
        "{}",
        r.stderr
    );
    assert_eq!(env.read("data/.gitignore"), b"/kept.csv\n");
    env.dvt(&["checkout"]).ok();
    assert!(env.read("models/m.bin") == noise(10_000, 3));

    // Refused before anything changes.
    env.write("tracked/readme.md", "hi\n");
    env.commit("readme");
    std::fs::remove_file(env.path("tracked/readme.md")).unwrap();
    env.write("notes.txt", "mine\n");
    let workspace = || -> Vec<String> {
        common::snapshot(&env.root)
            .into_iter()
            .filter(|e| !e.contains(" .git") && !e.contains(" .dvt/tmp"))
            .collect()
    };
    let before = workspace();
    for (to, msg) in [
        ("notes.txt", "`notes.txt` already exists"),
        ("archive/2024/raw/inner", "a directory cannot move into itself"),
        ("archive/2024/raw", "it is the same path"),
        ("x.dvt", "not a pointer file"),
        (".git/raw", "inside `.dvt` or `.git`"),
        ("../raw", "is outside the repository"),
        ("data/kept.csv/raw", "inside the tracked directory"),
        ("tracked/readme.md", "tracked by git"),
    ] {
        let r = env.dvt(&["move", "archive/2024/raw", to]).fails();
        assert!(r.stderr.contains(msg), "{to}: {}", r.stderr);
    }
    let r = env.dvt(&["move", "nothing", "x"]).fails();
    assert!(r.stderr.contains("not tracked by dvt"), "{}", r.stderr);
    assert_eq!(workspace(), before, "a refused move changed files");

    // Another tracked copy of the same content is not taken for a move cut short.
    env.write("models/copy.bin", noise(10_000, 3));
    env.dvt(&["add", "models/copy.bin"]).ok();
    let r = env.dvt(&["move", "models/m.bin", "models/copy.bin"]).fails();
    assert!(r.stderr.contains("already exists"), "{}", r.stderr);
    assert!(env.exists("models/m.bin.dvt") && env.read("models/.gitignore") == b"/m.bin\n/copy.bin\n");

    // A move cut short after writing the new pointer: running it again finishes it.
    let moved = String::from_utf8(env.read("models/m.bin.dvt")).unwrap();
    env.write(
        "models/w.bin.dvt",
        moved.replace("path = \"m.bin\"", "path = \"w.bin\""),
    );
    env.dvt(&["move", "models/m.bin", "models/w.bin"]).ok();
    assert!(env.read("models/w.bin") == noise(10_000, 3) && !env.exists("models/m.bin.dvt"));
    assert_eq!(env.read("models/.gitignore"), b"/copy.bin\n/w.bin\n");
    assert!(env.dvt(&["status"]).ok().stdout.contains("up to date"));

    // Moved by hand first (`mv`, as `git mv` is often forgotten), then `dvt move`:
    // the data is there as recorded, so the pointer follows it, not into it.
    std::fs::rename(env.path("archive/2024/raw"), env.path("raw2")).unwrap();
    let r = env.dvt(&["move", "archive/2024/raw", "raw2"]).ok();
    assert!(
        r.stdout
            .contains("moved archive/2024/raw -> raw2 (the pointer only: the data was there already"),
        "{}",
        r.stdout
    );
    assert!(env.exists("raw2.dvt") && !env.exists("raw2/raw.dvt"));
    std::fs::rename(env.path("models/w.bin"), env.path("archive/w.bin")).unwrap();
    env.dvt(&["move", "models/w.bin", "archive"]).ok();
    assert!(env.exists("archive/w.bin.dvt") && !env.exists("archive/w.bin/w.bin"));
    assert!(env.dvt(&["status"]).ok().stdout.contains("up to date"));
    // Changed after the move: not the recorded data, so not taken for it.
    std::fs::rename(env.path("archive/w.bin"), env.path("w2.bin")).unwrap();
    env.write("w2.bin", "changed\n");
    let r = env.dvt(&["move", "archive/w.bin", "w2.bin"]).fails();
    assert!(r.stderr.contains("`w2.bin` already exists"), "{}", r.stderr);
}

/// The `git add` a hint suggests works when pasted where dvt ran: paths are
/// relative to that directory, and quoted where the shell needs it.
#[test]
fn git_hints_can_be_pasted_in_the_directory_dvt_ran_in() {
    let env = TestEnv::new();
    env.write("data/day 1.csv", "t,v\n1,2\n");
    env.write("models/m.bin", noise(5_000, 4));
    let data = env.path("data");
    // The `git add` line of a run's hints.
    let git_hint = |r: &common::Run| -> String {
        let line = r.stderr.lines().find(|l| l.trim_start().starts_with("git add"));
        line.unwrap_or_else(|| panic!("no git hint: {}", r.stderr))
            .trim()
            .to_string()
    };
    let r = env.dvt_in(&data, &["add", "day 1.csv", "../models/m.bin"]).ok();
    let hint = git_hint(&r);
    assert_eq!(
        hint, "git add .gitignore 'day 1.csv.dvt' ../models/.gitignore ../models/m.bin.dvt",
        "{}",
        r.stderr
    );
    env.run("sh", &["-c", &format!("cd data && {hint}")]).ok();
    let staged = env.git(&["diff", "--cached", "--name-only"]).stdout;
    for f in [
        "data/day 1.csv.dvt",
        "data/.gitignore",
        "models/m.bin.dvt",
        "models/.gitignore",
    ] {
        assert!(staged.contains(f), "{f} not staged: {staged}");
    }
    env.commit("data");

    let r = env.dvt_in(&data, &["mv", "day 1.csv", "day2.csv"]).ok();
    let hint = git_hint(&r);
    assert_eq!(
        hint, "git add -A 'day 1.csv.dvt' day2.csv.dvt .gitignore",
        "{}",
        r.stderr
    );
    env.run("sh", &["-c", &format!("cd data && {hint}")]).ok();
    let staged = env.git(&["status", "--porcelain"]).stdout;
    assert!(
        staged.contains("R  \"data/day 1.csv.dvt\" -> data/day2.csv.dvt"),
        "{staged}"
    );
}

/// A full disk during `checkout` and during `add`: one clear error naming the
/// paths, a hint, nothing half-written under a final name, and once space is
/// freed the same command finishes the job.
#[test]
fn a_full_disk_fails_clearly_and_loses_nothing() {
    let Some(env) = TestEnv::on_small_disk(32) else {
        return;
    };
    let model = noise(6 << 20, 31);
    let shards: Vec<Vec<u8>> = (0..3).map(|i| noise(1 << 20, 40 + i)).collect();
    env.write("model.bin", &model);
    for (i, s) in shards.iter().enumerate() {
        env.write(&format!("shards/{i}.bin"), s);
    }
    env.dvt(&["add", "model.bin", "shards"]).ok();
    std::fs::remove_file(env.path("model.bin")).unwrap();
    std::fs::remove_dir_all(env.path("shards")).unwrap();

    // Room for two shards, not for the model.
    env.fill_disk_but("filler", 2_500_000);
    let r = env.dvt(&["checkout"]).fails();
    assert!(
        r.stderr.contains("`model.bin`: No space left on device"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("hint: the disk is full"), "{}", r.stderr);
    assert!(!env.exists("model.bin"), "no partial model under its name");
    for (i, s) in shards.iter().enumerate() {
        let rel = format!("shards/{i}.bin");
        assert!(!env.exists(&rel) || env.read(&rel) == *s, "{rel} is whole or absent");
    }
    let leftovers = common::temp_leftovers(&env.root);
    assert!(leftovers.is_empty(), "{leftovers:?}");
    std::fs::remove_file(env.path("filler")).unwrap();
    env.dvt(&["checkout"]).ok();
    assert_eq!(env.read("model.bin"), model);
    for (i, s) in shards.iter().enumerate() {
        assert_eq!(env.read(&format!("shards/{i}.bin")), *s);
    }
    assert!(env.dvt(&["status"]).ok().stdout.contains("up to date"));

    // A new file that fits the workspace but not the cache: add writes nothing.
    let extra = noise(2 << 20, 50);
    env.write("extra.bin", &extra);
    let gitignore = env.read(".gitignore");
    env.fill_disk_but("filler", 1 << 20);
    let r = env.dvt(&["add", "extra.bin"]).fails();
    assert!(
        r.stderr.contains("error: cannot store `extra.bin` in the cache")
            && r.stderr.contains("No space left on device")
            && r.stderr.contains("hint: the disk is full"),
        "{}",
        r.stderr
    );
    assert!(!env.exists("extra.bin.dvt"));
    let leftovers = common::temp_leftovers(&env.root);
    assert!(
        leftovers.is_empty(),
        "a failed add leaves no temporary file: {leftovers:?}"
    );
    assert_eq!(env.read(".gitignore"), gitignore);
    assert_eq!(env.read("extra.bin"), extra);
    // A small file fails later, when its pack is flushed to disk: the same.
    std::fs::remove_file(env.path("filler")).unwrap();
    env.write("small.bin", noise(600 << 10, 51));
    env.fill_disk_but("filler", 256 << 10);
    let r = env.dvt(&["add", "small.bin"]).fails();
    assert!(
        r.stderr.contains("error: cannot store `small.bin` in the cache"),
        "{}",
        r.stderr
    );
    let leftovers = common::temp_leftovers(&env.root);
    assert!(
        leftovers.is_empty(),
        "a failed add leaves no temporary pack: {leftovers:?}"
    );
    std::fs::remove_file(env.path("small.bin")).unwrap();
    std::fs::remove_file(env.path("filler")).unwrap();
    let fsck = env.dvt(&["fsck"]).ok();
    assert!(!fsck.stdout.contains("corrupt"), "{}", fsck.stdout);
    env.dvt(&["add", "extra.bin"]).ok();
    std::fs::remove_file(env.path("extra.bin")).unwrap();
    env.dvt(&["checkout", "extra.bin"]).ok();
    assert_eq!(env.read("extra.bin"), extra);
}

/// A directory remote on a full disk: the push fails naming the remote and its
/// disk (not the cache's, which has room), with `gc -r` as the way to make room
/// there; it leaves no temporary file on the remote, and once space is freed the
/// same push finishes and a clone pulls every byte.
#[test]
fn a_push_to_a_full_remote_disk_names_the_remote_and_finishes_later() {
    let Some(disk) = TestEnv::on_small_disk(8) else {
        return;
    };
    let env = TestEnv::new();
    let big = noise(3 << 20, 60);
    env.write("model.bin", &big);
    for i in 0..40u8 {
        env.write(&format!("shards/{i}.bin"), noise(20 << 10, i));
    }
    env.dvt(&["add", "model.bin", "shards"]).ok();
    let store = disk.path("store");
    env.dvt(&["remote", "add", "-d", "store", store.to_str().unwrap()]).ok();
    env.commit("data");
    disk.fill_disk_but("filler", 1 << 20);
    for pack in ["true", "false"] {
        env.dvt(&["remote", "modify", "store", "pack", pack]).ok();
        let r = env.dvt(&["push"]).fails();
        assert!(
            r.stderr.contains("remote `store`: failed to write") && r.stderr.contains("No space left on device"),
            "pack = {pack}: {}",
            r.stderr
        );
        assert!(
            r.stderr.contains(&format!(
                "hint: the disk holding `store` (`{}`) is full: free some space there (`dvt gc -r store`",
                store.display()
            )),
            "pack = {pack}: {}",
            r.stderr
        );
        let leftovers = common::temp_leftovers(&store);
        assert!(leftovers.is_empty(), "pack = {pack}: {leftovers:?}");
    }
    std::fs::remove_file(disk.path("filler")).unwrap();
    env.dvt(&["push"]).ok();
    let clone = env.clone_repo();
    clone.dvt(&["pull"]).ok();
    assert_eq!(clone.read("model.bin"), big);
    assert_eq!(clone.read("shards/39.bin"), noise(20 << 10, 39));
}

/// File names up to the 255 bytes a file system allows: inside a tracked
/// directory any of them; tracked alone, up to 251, since the pointer's name adds
/// `.dvt`. A longer one is refused before anything is written, saying why.
#[test]
fn names_as_long_as_the_file_system_allows_are_tracked() {
    let env = TestEnv::new();
    let in_dir = format!("d/{}", "a".repeat(255));
    let alone = "b".repeat(251);
    let too_long = "c".repeat(252);
    env.write(&in_dir, "in a directory\n");
    env.write(&alone, "alone\n");
    env.write(&too_long, "refused\n");
    env.dvt(&["add", "d", &alone]).ok();
    assert!(env.exists(&format!("{alone}.dvt")));
    std::fs::remove_dir_all(env.path("d")).unwrap();
    std::fs::remove_file(env.path(&alone)).unwrap();
    env.dvt(&["checkout"]).ok();
    assert_eq!(env.read(&in_dir), b"in a directory\n");
    assert_eq!(env.read(&alone), b"alone\n");

    let gitignore = env.read(".gitignore");
    let r = env.dvt(&["add", &too_long]).fails();
    assert!(
        r.stderr
            .contains("cannot be tracked: its name is too long for a pointer file beside it"),
        "{}",
        r.stderr
    );
    assert_eq!(env.read(".gitignore"), gitignore);
    assert!(common::temp_leftovers(&env.root).is_empty());
    assert!(env.dvt(&["status"]).ok().stdout.contains("up to date"));
}

/// A pointer file git would ignore is refused before anything is written, as DVC
/// refuses a `.dvc` file git ignores: `git add` of it would fail and clones would
/// never get the data. The hint's rules let it through; `move` checks the same.
#[test]
fn a_pointer_git_would_ignore_is_refused() {
    let env = TestEnv::new();
    env.write(".gitignore", "data/\n*.log.dvt\n");
    env.write("data/sub/t.csv", "t\n");
    env.write("run.log", "log\n");
    env.write("m.bin", "m\n");
    let r = env.dvt(&["add", "data/sub/t.csv"]).fails();
    assert!(
        r.stderr.contains(
            "`data/sub/t.csv.dvt`, the pointer file for `data/sub/t.csv`, would be ignored by git (`data` is ignored)"
        ),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("`git check-ignore -v data/sub/t.csv.dvt` names the rule")
            && r.stderr
                .contains("`/data/**`, `!/data/**/`, `!/data/**/*.dvt` and `!/data/**/.gitignore`"),
        "{}",
        r.stderr
    );
    assert!(!env.exists("data/sub/t.csv.dvt") && !env.exists("data/sub/.gitignore"));
    let r = env.dvt(&["add", "run.log"]).fails();
    assert!(r.stderr.contains("add `!/run.log.dvt` below it"), "{}", r.stderr);

    // The rules the hint gives: the pointer and dvt's `.gitignore` reach git, the data does not.
    env.write(
        ".gitignore",
        "/data/**\n!/data/**/\n!/data/**/*.dvt\n!/data/**/.gitignore\n*.log.dvt\n!/run.log.dvt\n",
    );
    env.dvt(&["add", "data/sub/t.csv", "run.log", "m.bin"]).ok();
    env.git(&["add", "-A"]);
    let staged = env.git(&["diff", "--cached", "--name-only"]).stdout;
    for f in ["data/sub/t.csv.dvt", "data/sub/.gitignore", "run.log.dvt", "m.bin.dvt"] {
        assert!(staged.lines().any(|l| l == f), "{f} staged: {staged}");
    }
    assert!(!staged.lines().any(|l| l == "data/sub/t.csv"), "{staged}");

    // A move into a directory git ignores whole.
    env.write(
        ".gitignore",
        "/data/**\n!/data/**/\n!/data/**/*.dvt\n!/data/**/.gitignore\nattic/\n",
    );
    let r = env.dvt(&["move", "m.bin", "attic/m.bin"]).fails();
    assert!(
        r.stderr.contains("would be ignored by git (`attic` is ignored)"),
        "{}",
        r.stderr
    );
    assert!(env.exists("m.bin") && env.exists("m.bin.dvt"));
}

/// A report that cannot be written is an error (a script must not take a
/// truncated `--json` for a whole one), except when the reader stopped early
/// (`dvt status | head`), as for any Unix filter.
#[test]
fn output_that_cannot_be_written_is_an_error_but_a_closed_pipe_is_not() {
    let env = TestEnv::new();
    env.write("data/a.csv", "a\n");
    env.dvt(&["add", "data"]).ok();
    env.write("data/b.csv", "b\n");
    let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
    let out = env.dvt_cmd(&["status", "--json"]).stdout(full).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("could not write to standard output: No space left on device"),
        "{stderr}"
    );

    let mut child = env
        .dvt_cmd(&["status", "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// What a killed run leaves inside a tracked directory (hidden `.NAME.dvt-tmp-*`
/// files) is not data: `status` skips it, and the next `checkout` or `add`, which
/// hold the repository lock, delete it.
#[test]
fn leftovers_inside_a_tracked_directory_are_skipped_then_removed() {
    let env = TestEnv::new();
    env.write("data/a.csv", "a\n");
    env.write("data/sub/b.csv", "b\n");
    env.dvt(&["add", "data"]).ok();
    let pointer = env.read("data.dvt");
    let plant = || {
        env.write("data/sub/.b.csv.dvt-tmp-99999-0", "half of b");
        env.write("data/.stage.dvt-tmp-99999-1/x.bin", "half");
    };
    let planted = ["data/sub/.b.csv.dvt-tmp-99999-0", "data/.stage.dvt-tmp-99999-1"];
    plant();
    let st = env.dvt(&["status"]).ok();
    assert!(st.stdout.contains("up to date"), "{}", st.stdout);
    assert!(planted.iter().all(|p| env.exists(p)), "status deletes nothing");
    env.dvt(&["checkout"]).ok();
    assert!(planted.iter().all(|p| !env.exists(p)), "checkout removes them");
    plant();
    env.dvt(&["add", "data"]).ok();
    assert!(planted.iter().all(|p| !env.exists(p)), "add removes them");
    assert_eq!(env.read("data.dvt"), pointer);
}

/// `dvt config` reads and writes settings by name, as `dvc config` does: values are
/// checked before a file is touched, secrets go to the local file and are never
/// printed, and a moved cache is named.
#[test]
fn config_reads_and_changes_settings_and_never_prints_secrets() {
    let env = TestEnv::new();
    let r = env.dvt(&["config", "cache.level"]).fails();
    assert!(
        r.stdout.is_empty() && r.stderr.contains("`cache.level` is not set") && r.stderr.contains("default is 1"),
        "{}",
        r.stderr
    );
    env.dvt(&["config", "cache.level", "3"]).ok();
    assert_eq!(env.dvt(&["config", "cache.level"]).ok().stdout, "3\n");
    let committed = String::from_utf8(env.read(".dvt/config.toml")).unwrap();
    assert!(
        committed.contains("level = 3") && committed.contains("# zstd level"),
        "{committed}"
    );

    // Wrong names and values: an error that says what is wanted; no file changes.
    for (args, says) in [
        (&["config", "cache.level", "99"][..], "from 1 (fastest) to 22"),
        (&["config", "cache.level", "abc"], "not `abc`"),
        (&["config", "cache.fsync", "yes"], "must be true or false"),
        (&["config", "cache.size", "1"], "`cache.size` is not a dvt setting"),
        (
            &["config", "core.remot", "s"],
            "hint: did you mean `core.remote`? settings: ",
        ),
        (&["config", "hook.fetch", "true"], "did you mean `hooks.fetch`?"),
        (&["config", "cache.type", "symlink"], "always checks data out as copies"),
        (&["config", "core.autostage", "yes"], "must be true or false"),
        (&["config", "core.remote", "nowhere"], "no remote named `nowhere`"),
        (&["config", "remote.nowhere.region", "eu"], "nowhere"),
    ] {
        let r = env.dvt(args).fails();
        assert!(r.stderr.contains(says), "{args:?}: {}", r.stderr);
        assert_eq!(env.read(".dvt/config.toml"), committed.as_bytes(), "{args:?} wrote");
    }

    // A remote by its URL, then its options; a secret goes to the local file.
    env.dvt(&["config", "remote.store.url", "s3://bucket/prefix"]).ok();
    env.dvt(&["config", "core.remote", "store"]).ok();
    let r = env.dvt(&["config", "remote.store.endpoint_url", "http://x"]).fails();
    assert!(
        r.stderr
            .contains("unknown option `endpoint_url` for s3 remotes (did you mean `endpointurl`?)"),
        "{}",
        r.stderr
    );
    let r = env.dvt(&["config", "remote.store.urll", "s3://x"]).fails();
    assert!(r.stderr.contains("(did you mean `url`?)"), "{}", r.stderr);
    let r = env.dvt(&["push", "-r", "stor"]).fails();
    assert!(
        r.stderr
            .contains("hint: did you mean `store`? configured remotes: store"),
        "{}",
        r.stderr
    );
    assert_eq!(
        env.dvt(&["remote", "list"]).ok().stdout,
        "store\ts3://bucket/prefix\t(default)\n"
    );
    let r = env
        .dvt(&["config", "remote.store.secret_access_key", "s3cr3t-value"])
        .ok();
    assert!(
        r.stdout.contains("config.local.toml") && !r.stdout.contains("s3cr3t"),
        "{}",
        r.stdout
    );
    assert!(
        !String::from_utf8(env.read(".dvt/config.toml"))
            .unwrap()
            .contains("s3cr3t")
    );
    assert!(
        String::from_utf8(env.read(".dvt/config.local.toml"))
            .unwrap()
            .contains("s3cr3t-value")
    );
    let r = env.dvt(&["config", "remote.store.secret_access_key"]).fails();
    assert!(r.stderr.contains("is a secret") && !r.stderr.contains("s3cr3t") && r.stdout.is_empty());
    env.dvt(&["config", "--local", "cache.fsync", "true"]).ok();
    let r = env.dvt(&["config", "--list", "--show-origin"]).ok();
    assert_eq!(
        r.stdout,
        ".dvt/config.local.toml\tcache.fsync=true\n\
         .dvt/config.toml\tcache.level=3\n\
         .dvt/config.toml\tcore.remote=store\n\
         .dvt/config.local.toml\tremote.store.secret_access_key=***\n\
         .dvt/config.toml\tremote.store.url=s3://bucket/prefix\n"
    );
    assert_eq!(env.dvt(&["config", "cache.fsync"]).ok().stdout, "true\n");
    let r = env.dvt(&["config", "--project", "cache.fsync"]).fails();
    assert!(r.stderr.contains("not set in `.dvt/config.toml`"), "{}", r.stderr);

    // Unsetting: what the file holds goes; what it does not is an error.
    env.dvt(&["config", "--unset", "cache.level"]).ok();
    env.dvt(&["config", "cache.level"]).fails();
    let r = env.dvt(&["config", "--unset", "cache.level"]).fails();
    assert!(
        r.stderr.contains("`cache.level` is not set in `.dvt/config.toml`"),
        "{}",
        r.stderr
    );
    env.dvt(&["config", "--unset", "remote.store.secret_access_key"]).ok();
    assert!(
        !String::from_utf8(env.read(".dvt/config.local.toml"))
            .unwrap()
            .contains("s3cr3t")
    );
    let r = env.dvt(&["config", "--unset", "remote.store.url"]).fails();
    assert!(r.stderr.contains("dvt remote remove store"), "{}", r.stderr);

    // Moving the cache says that the objects stay where they were.
    env.write("data.csv", "x,y\n");
    env.dvt(&["add", "data.csv"]).ok();
    let r = env.dvt(&["config", "cache.dir", "../elsewhere"]).ok();
    assert!(r.stderr.contains("were not moved"), "{}", r.stderr);
    let r = env.dvt(&["status"]).ok();
    assert!(r.stdout.contains("not in cache: 1 object"), "{}", r.stdout);
    assert!(r.stderr.contains("`dvt fetch` gets missing objects"), "{}", r.stderr);
    env.dvt(&["add", "data.csv"]).ok();
    assert_eq!(env.dvt(&["status"]).ok().stdout, "Data and pointers are up to date.\n");
    assert!(env.path("../elsewhere/packs").is_dir() || env.path("../elsewhere/objects").is_dir());

    // A level written by hand is checked when any command reads the config.
    env.write(".dvt/config.local.toml", "[cache]\nlevel = 40\n");
    let r = env.dvt(&["status"]).fails();
    assert!(
        r.stderr
            .contains("`cache.level` must be from 1 (fastest) to 22 (smallest), not 40")
            && r.stderr.contains("config.local.toml"),
        "{}",
        r.stderr
    );
}

/// `status` ends with the command that helps in each case: `add`/`checkout` for
/// edits, `checkout` for deleted data, `fetch` for objects the cache lacks, and
/// `pull` in a fresh clone, where both are true.
#[test]
fn status_hints_name_the_command_that_helps() {
    let env = TestEnv::new();
    let remote = tempfile::tempdir().unwrap();
    env.write("d/a.csv", "a\n");
    env.write("f.bin", "f");
    env.dvt(&["add", "d", "f.bin"]).ok();
    env.dvt(&["remote", "add", "-d", "store", remote.path().to_str().unwrap()])
        .ok();
    env.dvt(&["push"]).ok();
    env.commit("data");
    let hints = |env: &TestEnv| -> Vec<String> {
        let r = env.dvt(&["status"]).ok();
        r.stderr
            .lines()
            .filter(|l| l.starts_with("hint:"))
            .map(str::to_string)
            .collect()
    };
    const EDITS: &str = "hint: `dvt add PATH` records changes; `dvt checkout PATH` discards them";
    const RESTORE: &str = "hint: `dvt checkout` restores what is missing from the workspace";
    const FETCH: &str = "hint: `dvt fetch` gets missing objects from a remote; `dvt commit PATH` stores those of unchanged data again from the workspace";
    const PULL: &str = "hint: `dvt pull` downloads what the cache lacks and restores the workspace";

    std::fs::remove_dir_all(env.path("d")).unwrap();
    assert_eq!(hints(&env), [RESTORE]);
    env.write("f.bin", "edited");
    assert_eq!(hints(&env), [EDITS, RESTORE]);
    env.dvt(&["checkout", "--force"]).ok();
    assert!(hints(&env).is_empty());
    env.remove_object(blake3::hash(b"f").to_hex().as_ref());
    assert_eq!(hints(&env), [FETCH]);

    let clone = env.clone_repo();
    assert_eq!(hints(&clone), [PULL]);
    clone.dvt(&["pull"]).ok();
    assert!(hints(&clone).is_empty());

    // With no remote at all, `pull` would fail: the hint says what comes first.
    clone.dvt(&["remote", "remove", "store"]).ok();
    std::fs::remove_file(clone.path("f.bin")).unwrap();
    clone.remove_object(blake3::hash(b"f").to_hex().as_ref());
    assert_eq!(
        hints(&clone),
        [
            "hint: the cache lacks data the pointers name, and no remote is configured to get it from: \
             `dvt remote add -d NAME URL` names the one it was pushed to, then `dvt pull` brings it"
        ]
    );
}

/// A change of mode alone (`chmod -x`) is reported as such, with the hint for
/// edits, not the one for another recorded version: the content is the one the
/// pointer records, which the cache holds, but no git command left it there.
#[test]
fn a_mode_change_alone_is_not_taken_for_another_version() {
    use std::os::unix::fs::PermissionsExt;
    let env = TestEnv::new();
    env.write("run.sh", "#!/bin/sh\necho hi\n");
    env.write("tools/build.sh", "#!/bin/sh\necho build\n");
    for f in ["run.sh", "tools/build.sh"] {
        std::fs::set_permissions(env.path(f), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    env.dvt(&["add", "run.sh", "tools"]).ok();
    for f in ["run.sh", "tools/build.sh"] {
        std::fs::set_permissions(env.path(f), std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    // Another command records the files' new stat: status then finds their ids by it.
    env.write("other.txt", "other\n");
    env.dvt(&["add", "other.txt"]).ok();
    let r = env.dvt(&["status"]).ok();
    assert!(
        r.stdout.contains("mode changed: run.sh") && r.stdout.contains("mode changed: tools/build.sh"),
        "{}",
        r.stdout
    );
    assert!(
        r.stderr.contains("hint: `dvt add PATH` records changes"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("the cache already holds"), "{}", r.stderr);
    let json = env.dvt(&["status", "--json"]).ok().json();
    for p in json["pointers"].as_array().unwrap() {
        assert!(p.get("workspace_in_cache").is_none(), "{p}");
    }
}

/// `dvt completion` prints a script that a shell sources: in bash it completes
/// commands and a command's options; other shells get their own format.
#[test]
fn completion_scripts_complete_commands_and_options() {
    let env = TestEnv::new();
    let script = env.dvt(&["completion"]).ok().stdout;
    env.write("dvt.bash", &script);
    let complete = |words: &str, cword: usize| {
        let probe = format!(
            "source dvt.bash; COMP_WORDS=({words}); COMP_CWORD={cword}; \
             _dvt dvt \"${{COMP_WORDS[$COMP_CWORD]}}\" \"${{COMP_WORDS[$COMP_CWORD-1]}}\"; \
             echo \"${{COMPREPLY[@]}}\""
        );
        let out = std::process::Command::new("bash")
            .args(["-c", &probe])
            .current_dir(&env.root)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    assert_eq!(complete("dvt pu", 1), "push pull");
    let push = complete("dvt push --", 2);
    for opt in ["--remote", "--jobs", "--all-tags", "--json"] {
        assert!(push.split(' ').any(|o| o == opt), "{opt} in {push}");
    }
    assert!(
        env.dvt(&["completion", "-s", "zsh"])
            .ok()
            .stdout
            .starts_with("#compdef dvt")
    );
    assert!(
        env.dvt(&["completion", "--shell", "fish"])
            .ok()
            .stdout
            .contains("complete -c dvt")
    );
    let r = env.dvt(&["completion", "-s", "tcsh"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("possible values: bash"), "{}", r.stderr);
}

/// What a killed `add` or `fetch` left in the cache (an unfinished pack, a big
/// object being stored) is removed by the next command that finds the cache idle,
/// not only by `gc`. Kept: files of a process that still runs, files written in the
/// last minute, and everything while another command uses the cache.
#[test]
fn the_next_command_removes_what_a_killed_writer_left_in_the_cache() {
    let env = TestEnv::new();
    env.write("a.csv", "a\n");
    env.dvt(&["add", "a.csv"]).ok();
    // A process that has exited names the abandoned files.
    let mut child = std::process::Command::new("true").spawn().unwrap();
    child.wait().unwrap();
    let dead = child.id();
    let plant = |rel: &str, minutes_ago: u32| {
        env.write(rel, vec![7u8; 1 << 20]);
        let status = std::process::Command::new("touch")
            .args(["-m", "-d", &format!("{minutes_ago} minutes ago")])
            .arg(env.path(rel))
            .status()
            .unwrap();
        assert!(status.success());
    };
    let abandoned = [
        format!(".dvt/cache/packs/.pack.dvt-tmp-{dead}-0"),
        format!(".dvt/cache/tmp/.obj.dvt-tmp-{dead}-1"),
    ];
    let fresh = format!(".dvt/cache/packs/.pack.dvt-tmp-{dead}-2");
    let running = format!(".dvt/cache/packs/.pack.dvt-tmp-{}-3", std::process::id());
    for p in &abandoned {
        plant(p, 5);
    }
    plant(&fresh, 0);
    plant(&running, 5);
    let all: Vec<&String> = abandoned.iter().chain([&fresh, &running]).collect();

    // Another command holds the cache: nothing is touched.
    let lock = HeldLock::shared(&env.path(".dvt/cache/lock"));
    env.write("b.csv", "b\n");
    env.dvt(&["add", "b.csv"]).ok();
    for p in &all {
        assert!(env.exists(p), "{p} kept while the cache is in use");
    }
    drop(lock);
    // Commands that only read do not sweep.
    env.dvt(&["status"]).ok();
    assert!(abandoned.iter().all(|p| env.exists(p)));

    env.write("c.csv", "c\n");
    env.dvt(&["add", "c.csv"]).ok();
    for p in &abandoned {
        assert!(!env.exists(p), "{p} removed by the next add");
    }
    assert!(env.exists(&fresh) && env.exists(&running));
    let fsck = env.dvt(&["fsck"]).ok();
    assert!(fsck.stdout.contains("all intact"), "{}", fsck.stdout);
    for f in ["a.csv", "b.csv", "c.csv"] {
        std::fs::remove_file(env.path(f)).unwrap();
    }
    env.dvt(&["checkout"]).ok();
    assert_eq!(env.read("c.csv"), b"c\n");
}

#[test]
fn doctor_reports_version_filesystems_cache_and_remotes_without_secrets() {
    let env = TestEnv::new();
    env.dvt(&["remote", "add", "-d", "store", "s3://bucket/prefix"]).ok();
    env.dvt(&["remote", "modify", "store", "secret_access_key", "s3cr3t-value"])
        .ok();
    env.dvt(&["remote", "add", "backup", "/srv/backup"]).ok();
    let r = env.dvt(&["doctor"]).ok();
    assert!(
        r.stdout.starts_with(&format!("dvt {}\n", env!("CARGO_PKG_VERSION"))),
        "{}",
        r.stdout
    );
    let root = std::fs::canonicalize(&env.root).unwrap();
    assert!(
        r.stdout.contains(&format!("repository: {} (git)", root.display())),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("remote: store (s3) (default)"), "{}", r.stdout);
    assert!(r.stdout.contains("remote: backup (local)"), "{}", r.stdout);
    assert!(r.stdout.contains("cache filesystem: "), "{}", r.stdout);
    assert!(r.stdout.contains("\ngit hooks: none of dvt's\n"), "{}", r.stdout);
    env.dvt(&["install-hooks"]).ok();
    env.dvt(&["config", "--local", "hooks.fetch", "true"]).ok();
    let r = env.dvt(&["doctor"]).ok();
    assert!(
        r.stdout
            .contains("\ngit hooks: post-checkout, post-merge, post-rewrite, pre-commit, pre-push; hooks.fetch on\n"),
        "{}",
        r.stdout
    );
    env.dvt(&["install-hooks", "--use-pre-commit-tool"]).ok();
    let r = env.dvt(&["doctor"]).ok();
    assert!(
        r.stdout
            .contains("\ngit hooks: through the pre-commit framework (.pre-commit-config.yaml); hooks.fetch on\n"),
        "{}",
        r.stdout
    );
    assert_eq!(
        env.dvt(&["doctor", "--json"]).ok().json()["repo"]["hooks"],
        "pre_commit"
    );
    assert!(
        !r.stdout.contains("s3cr3t") && !r.stderr.contains("s3cr3t"),
        "{}",
        r.stdout
    );
    // `version` is the same command, as in DVC.
    let j = env.dvt(&["version", "--json"]).ok().json();
    assert_eq!(j["repo"]["git"], true);
    assert_eq!(j["repo"]["remotes"].as_array().unwrap().len(), 2);
    assert!(
        j["repo"]["cache_fs"]["fs_type"].as_str().is_some_and(|t| !t.is_empty()),
        "{j}"
    );
    // Outside any repository it still answers.
    let out = TestEnv::bare();
    let r = out.dvt(&["doctor"]).ok();
    assert!(r.stdout.contains("repository: none here"), "{}", r.stdout);
}

/// `dvt root`, as `dvc root`: the root relative to where you are.
#[test]
fn root_prints_the_way_to_the_repository_root() {
    let env = TestEnv::new();
    env.write("a/b/x.txt", "x");
    assert_eq!(env.dvt(&["root"]).ok().stdout, ".\n");
    assert_eq!(env.dvt(&["-C", "a/b", "root"]).ok().stdout, "../..\n");
    let outside = tempfile::tempdir().unwrap();
    let r = env.dvt(&["-C", outside.path().to_str().unwrap(), "root"]).fails();
    assert!(r.stderr.contains("not a dvt repository"), "{}", r.stderr);

    // `-C` is `cd`: a path through `..` names what it leads to, and targets
    // are read from there.
    env.write("data.csv", "a\n");
    env.dvt(&["add", "data.csv"]).ok();
    let r = env
        .dvt_in(&env.path("a/b"), &["-C", "../..", "status", "data.csv"])
        .ok();
    assert!(r.stdout.contains("up to date"), "{}", r.stdout);
    assert_eq!(env.dvt_in(&env.path("a/b"), &["-C", "..", "root"]).ok().stdout, "..\n");
    let r = env.dvt(&["-C", "nowhere", "status"]).fails();
    assert!(
        r.stderr.contains("cannot run in `nowhere` (-C): no such directory"),
        "{}",
        r.stderr
    );
    // A file is no place to run in (it ran in the repository, as if not given).
    let r = env.dvt(&["-C", "data.csv", "status"]).fails();
    assert!(
        r.stderr.contains("cannot run in `data.csv` (-C): not a directory"),
        "{}",
        r.stderr
    );
}

/// `--global` and `--system` config files apply to every repository, under the
/// repository's own files; relative paths in them are from their directory.
#[test]
fn global_and_system_config_apply_to_every_repository() {
    let env = TestEnv::new();
    let global = env.home.join(".config/dvt/config.toml");
    let shared = env.home.join("shared-cache");
    let store = env.home.join("store");
    let other = env.path("../other");
    std::fs::create_dir_all(&other).unwrap();
    assert!(
        std::process::Command::new("git")
            .args(["init", "-q"])
            .current_dir(&other)
            .status()
            .unwrap()
            .success()
    );
    env.dvt_in(&other, &["init", "-q"]).ok();

    // Written once, outside any repository, read by both.
    let r = env
        .dvt_in(
            &env.home,
            &["config", "--global", "cache.dir", shared.to_str().unwrap()],
        )
        .ok();
    assert!(r.stdout.contains(&global.display().to_string()), "{}", r.stdout);
    env.dvt_in(&env.home, &["config", "--global", "cache.level", "5"]).ok();
    env.dvt(&["remote", "add", "--global", "-d", "store", store.to_str().unwrap()])
        .ok();
    env.write("data.csv", "x,y\n1,2\n");
    env.dvt(&["add", "data.csv"]).ok();
    env.dvt(&["push"]).ok();
    std::fs::write(other.join("more.csv"), "a\n").unwrap();
    env.dvt_in(&other, &["add", "more.csv"]).ok();
    env.dvt_in(&other, &["push"]).ok();
    assert!(shared.join("packs").is_dir() && !env.path(".dvt/cache/packs").exists());
    assert!(store.join("packs").is_dir());
    // The repository's own files win, and nothing of the global one is committed.
    assert!(
        !String::from_utf8(env.read(".dvt/config.toml"))
            .unwrap()
            .contains("store")
    );
    env.dvt(&["config", "cache.level", "3"]).ok();
    assert_eq!(env.dvt(&["config", "cache.level"]).ok().stdout, "3\n");
    assert_eq!(env.dvt(&["config", "--global", "cache.level"]).ok().stdout, "5\n");
    assert_eq!(env.dvt_in(&other, &["config", "cache.level"]).ok().stdout, "5\n");
    let shown = env.dvt(&["config", "-l", "--show-origin"]).ok().stdout;
    assert!(
        !shown.contains(&format!("{}\tcache.level=5", global.display()))
            && shown.contains(".dvt/config.toml\tcache.level=3")
            && shown.contains(&format!("{}\tremote.store.url=", global.display())),
        "{shown}"
    );

    // The system file, under the global one; a relative path in it is from its directory.
    let system = env.home.join("etc-dvt/config.toml");
    std::fs::create_dir_all(system.parent().unwrap()).unwrap();
    std::fs::write(&system, "[cache]\nlevel = 9\n[remote.team]\nurl = \"../team-store\"\n").unwrap();
    assert_eq!(env.dvt_in(&other, &["config", "cache.level"]).ok().stdout, "5\n");
    assert_eq!(
        env.dvt(&["remote", "list", "--system"]).ok().stdout,
        format!("team\t{}\n", env.home.join("team-store").display())
    );

    // A relative path given for a file outside the repository is refused.
    let before = std::fs::read(&global).unwrap();
    let r = env.dvt(&["config", "--global", "cache.dir", "cache-here"]).fails();
    assert!(r.stderr.contains("relative path"), "{}", r.stderr);
    let r = env.dvt(&["remote", "add", "--global", "near", "../near"]).fails();
    assert!(r.stderr.contains("relative path"), "{}", r.stderr);
    assert_eq!(std::fs::read(&global).unwrap(), before);
    // Options of a remote go where it is defined.
    env.dvt(&["remote", "add", "mine", "s3://bucket/x"]).ok();
    let r = env
        .dvt(&["remote", "modify", "--global", "mine", "region", "eu"])
        .fails();
    assert!(r.stderr.contains("does not define it"), "{}", r.stderr);
    env.dvt(&["remote", "modify", "--global", "store", "jobs", "8"]).ok();
    assert!(
        String::from_utf8(std::fs::read(&global).unwrap())
            .unwrap()
            .contains("jobs = 8")
    );
    env.dvt(&["remote", "remove", "mine"]).ok();
    let before = std::fs::read(&global).unwrap();
    // One level at a time.
    assert_eq!(env.dvt(&["config", "--local", "--global", "cache.level"]).code, 2);

    // Removing a remote changes the file asked for; one set elsewhere is named.
    let r = env.dvt(&["remote", "remove", "store"]).fails();
    assert!(
        r.stderr.contains("global config") && r.stderr.contains("--global"),
        "{}",
        r.stderr
    );
    assert_eq!(std::fs::read(&global).unwrap(), before);
    env.dvt(&["remote", "remove", "--global", "store"]).ok();
    assert_eq!(
        env.dvt(&["remote", "list"]).ok().stdout,
        format!("team\t{}\n", env.home.join("team-store").display())
    );

    // A broken global file stops every command, and is named.
    std::fs::write(&global, "[cache]\nlevel = 40\n").unwrap();
    let r = env.dvt_in(&other, &["status"]).fails();
    assert!(
        r.stderr.contains(&global.display().to_string()) && r.stderr.contains("not 40") && r.stderr.contains("by hand"),
        "{}",
        r.stderr
    );
}

/// `fetch --max-size` and `--type` take part of the targets' data, as DVC's:
/// the rest stays on the remote, and the command says how much it left out.
#[test]
fn fetch_takes_only_small_data_or_metrics_and_plots() {
    let a = TestEnv::new();
    let store = a.home.join("store");
    a.dvt(&["remote", "add", "-d", "store", store.to_str().unwrap()]).ok();
    a.write("small.txt", "tiny\n");
    a.write("big.dat", vec![7u8; 50_000]);
    a.write(
        "dvt.toml",
        r#"[stages.make]
cmd = "head -c 40000 /dev/zero > model.bin && echo '{\"acc\": 1}' > m.json && printf 'step,loss\n1,0.5\n' > p.csv"
outs = ["model.bin"]
metrics = [{ path = "m.json", cache = true }]
plots = [{ path = "p.csv", cache = true }]
"#,
    );
    a.dvt(&["add", "small.txt", "big.dat"]).ok();
    a.dvt(&["repro"]).ok();
    a.dvt(&["push"]).ok();
    a.git(&["add", "-A"]);
    a.git(&["commit", "-qm", "data"]);
    let have = |env: &TestEnv, path: &str| env.dvt(&["checkout", path]).code == 0;

    let b = a.clone_repo();
    let r = b.dvt(&["fetch", "--max-size", "1000"]).ok();
    assert!(r.stderr.contains("left out 2 tracked paths"), "{}", r.stderr);
    assert!(r.stdout.contains("fetched 3 objects"), "{}", r.stdout);
    for (path, fetched) in [
        ("small.txt", true),
        ("m.json", true),
        ("p.csv", true),
        ("big.dat", false),
        ("model.bin", false),
    ] {
        assert_eq!(have(&b, path), fetched, "{path}");
    }

    let c = a.clone_repo();
    c.dvt(&["fetch", "--type", "metrics"]).ok();
    for (path, fetched) in [("m.json", true), ("p.csv", false), ("small.txt", false)] {
        assert_eq!(have(&c, path), fetched, "{path}");
    }
    let r = c.dvt(&["fetch", "--type", "plots", "--type", "metrics", "--json"]).ok();
    assert_eq!(r.json()["left_out"], 3, "{}", r.stdout);
    assert!(have(&c, "p.csv"));
    assert!(!have(&c, "model.bin"));
    // Both at once: metrics and plots of at most 10 bytes (none).
    let r = c.dvt(&["fetch", "--type", "plots", "--max-size", "10", "--json"]).ok();
    assert_eq!(r.json()["left_out"], 5, "{}", r.stdout);
    assert_eq!(c.dvt(&["fetch", "--type", "params"]).code, 2);
    assert_eq!(c.dvt(&["fetch", "--max-size", "-1"]).code, 2);
}

/// `add --no-commit` writes the pointer and `.gitignore` entry but stores
/// nothing; `commit` stores the data later, from the workspace.
#[test]
fn add_no_commit_writes_pointers_and_leaves_the_cache_alone() {
    let env = TestEnv::new();
    env.write("d/a.txt", "alpha\n");
    env.write("d/b.txt", "beta\n");
    env.write("f.bin", vec![3u8; 10_000]);
    let r = env.dvt(&["add", "--no-commit", "d", "f.bin"]).ok();
    assert!(r.stderr.contains("`dvt commit d f.bin` stores it"), "{}", r.stderr);
    assert!(env.path("d.dvt").is_file() && env.path("f.bin.dvt").is_file());
    assert!(String::from_utf8(env.read(".gitignore")).unwrap().contains("/f.bin"));
    assert!(!env.path(".dvt/cache/packs").exists() && env.objects().is_empty());
    let status = env.dvt(&["status"]).ok().stdout;
    assert!(
        status.contains("f.bin.dvt: unchanged") && status.contains("not in cache"),
        "{status}"
    );
    // The pointers are those a plain add writes.
    let pointers = (env.read("d.dvt"), env.read("f.bin.dvt"));
    env.dvt(&["commit", "d", "f.bin"]).ok();
    assert_eq!((env.read("d.dvt"), env.read("f.bin.dvt")), pointers);
    assert_eq!(env.dvt(&["status"]).ok().stdout, "Data and pointers are up to date.\n");
    std::fs::remove_dir_all(env.path("d")).unwrap();
    env.dvt(&["checkout"]).ok();
    assert_eq!(env.read("d/b.txt"), b"beta\n");
    assert_eq!(env.dvt(&["add", "--no-commit", "-o", "x", "f.bin"]).code, 2);
}

/// A tracked directory whose manifest the cache lacks is still compared: status
/// hashes the workspace into a manifest and compares ids, so data copied in by
/// hand is unchanged (its files counted as not in cache; checkout has nothing to
/// do), and an edit is a change.
#[test]
fn status_compares_a_directory_whose_manifest_the_cache_lacks() {
    let env = TestEnv::new();
    env.write("d/a.txt", "alpha\n");
    env.write("d/sub/b.txt", "beta\n");
    env.dvt(&["add", "d"]).ok();
    env.git(&["add", "-A"]);
    env.git(&["commit", "-qm", "data"]);
    let c = env.clone_repo();
    // The data arrives by hand, not by pull: no manifest, no objects.
    c.write("d/a.txt", "alpha\n");
    c.write("d/sub/b.txt", "beta\n");
    let r = c.dvt(&["status", "--json"]).ok();
    let p = &r.json()["pointers"][0];
    assert_eq!(p["workspace"], "unchanged", "{}", r.stdout);
    // The manifest and both files.
    assert_eq!(p["missing_from_cache"].as_array().unwrap().len(), 3, "{}", r.stdout);
    let r = c.dvt(&["status"]).ok();
    assert_eq!(r.stdout, "d.dvt: unchanged\n    not in cache: 3 objects\n");
    assert!(r.stderr.contains("`dvt commit PATH` stores those"), "{}", r.stderr);
    // A part of it too (its object and the manifest are what it lacks).
    let r = c.dvt(&["status", "d/sub", "--json"]).ok();
    let p = &r.json()["pointers"][0];
    assert_eq!(
        (&p["workspace"], &p["kind"]),
        (&"unchanged".into(), &"dir".into()),
        "{}",
        r.stdout
    );
    assert_eq!(p["missing_from_cache"].as_array().unwrap().len(), 2, "{}", r.stdout);
    // Checkout finds it up to date, as it would a file whose object the cache lacks.
    let r = c.dvt(&["checkout"]).ok();
    assert!(r.stdout.contains("1 path already up to date"), "{}", r.stdout);
    c.dvt(&["checkout", "d/sub"]).ok();
    c.write("d/sub/b.txt", "BETA\n");
    // Changed, it has nothing to be restored from: the edit stays.
    let r = c.dvt(&["checkout", "--force", "d"]).fails();
    assert!(
        r.stderr.contains("is not in the cache (needed for `d`)"),
        "{}",
        r.stderr
    );
    assert_eq!(c.read("d/sub/b.txt"), b"BETA\n");
    let r = c.dvt(&["status"]).ok();
    assert_eq!(
        r.stdout,
        "d.dvt: modified\n    which files changed is not known: the recorded manifest is not in the cache\n    \
         not in cache: 1 object\n"
    );
    assert!(r.stderr.contains("`dvt add PATH` records changes"), "{}", r.stderr);
    std::fs::remove_dir_all(c.path("d")).unwrap();
    c.write("d", "now a file\n");
    let r = c.dvt(&["status", "--json"]).ok();
    assert_eq!(r.json()["pointers"][0]["replaced_by"], "file", "{}", r.stdout);
    assert!(
        c.dvt(&["status"])
            .ok()
            .stdout
            .contains("replaced: d is a file now, not the directory that"),
        "a file in its place"
    );
    std::fs::remove_file(c.path("d")).unwrap();
    c.write("d/a.txt", "alpha\n");
    c.write("d/sub/b.txt", "beta\n");
    // `commit` stores it all from the workspace; then nothing is missing.
    c.dvt(&["commit", "d"]).ok();
    assert_eq!(c.dvt(&["status"]).ok().stdout, "Data and pointers are up to date.\n");
}

/// `cache dir` prints the cache directory, and sets or unsets `cache.dir`.
#[test]
fn cache_dir_prints_and_sets_the_cache_directory() {
    let env = TestEnv::new();
    let default = env.path(".dvt/cache");
    assert_eq!(
        env.dvt(&["cache", "dir"]).ok().stdout,
        format!("{}\n", default.display())
    );
    let elsewhere = env.home.join("fast-cache");
    let r = env.dvt(&["cache", "dir", elsewhere.to_str().unwrap()]).ok();
    assert!(
        r.stdout.contains("cache.dir = ") && r.stdout.contains(".dvt/config.toml"),
        "{}",
        r.stdout
    );
    assert_eq!(
        env.dvt(&["cache", "dir"]).ok().stdout,
        format!("{}\n", elsewhere.display())
    );
    env.write("a.txt", "a\n");
    env.dvt(&["add", "a.txt"]).ok();
    assert!(elsewhere.join("packs").is_dir());
    env.dvt(&["cache", "dir", "--unset"]).ok();
    assert_eq!(
        env.dvt(&["cache", "dir"]).ok().stdout,
        format!("{}\n", default.display())
    );
    env.dvt(&["cache", "dir", "--local", "rel-cache"]).ok();
    assert!(
        String::from_utf8(env.read(".dvt/config.local.toml"))
            .unwrap()
            .contains("rel-cache")
    );
    assert_eq!(
        env.dvt(&["cache", "dir"]).ok().stdout,
        format!("{}\n", env.path("rel-cache").display())
    );
    // A cache dvt makes inside the work tree ignores itself: `git add -A`
    // would commit the data.
    env.write("b.txt", "b\n");
    env.dvt(&["add", "b.txt"]).ok();
    assert!(env.path("rel-cache/packs").is_dir());
    env.git(&["add", "-A"]);
    let staged = env.git(&["diff", "--cached", "--name-only"]).stdout;
    assert!(
        !staged.contains("rel-cache") && staged.contains("b.txt.dvt"),
        "{staged}"
    );
    let fsck = env.dvt(&["fsck"]).ok().stdout;
    assert!(fsck.contains("all intact"), "{fsck}");
    // ~/ is the home directory.
    env.dvt(&["cache", "dir", "--local", "~/home-cache"]).ok();
    assert_eq!(
        env.dvt(&["cache", "dir"]).ok().stdout,
        format!("{}\n", env.home.join("home-cache").display())
    );
}

/// DVC's spellings: `checkout --summary`, `gc -c` and `--dry`, `list --dvc-only`.
#[test]
fn dvc_spellings_of_checkout_gc_and_list_work() {
    let env = TestEnv::new();
    let store = env.home.join("store");
    std::fs::create_dir(&store).unwrap();
    env.dvt(&["remote", "add", "-d", "store", store.to_str().unwrap()]).ok();
    env.write("d/a.txt", "a\n");
    env.write("d/b.txt", "b\n");
    env.dvt(&["add", "d"]).ok();
    env.dvt(&["push"]).ok();
    env.commit("d");
    std::fs::remove_dir_all(env.path("d")).unwrap();
    let r = env.dvt(&["checkout", "--summary"]).ok();
    assert_eq!(r.stdout, "2 files restored (4 B), 0 paths already up to date\n");

    // An old version, only on the remote once gc -c has run.
    env.write("old.txt", "old\n");
    env.dvt(&["add", "old.txt"]).ok();
    env.dvt(&["push"]).ok();
    std::fs::remove_file(env.path("old.txt.dvt")).unwrap();
    std::fs::remove_file(env.path("old.txt")).unwrap();
    // (`--grace 0`: what was pushed a moment ago goes too.)
    let dry = env.dvt(&["gc", "-c", "--dry", "--grace", "0"]).ok().stderr;
    assert!(dry.contains("remote `store`: 1 object to delete"), "{dry}");
    assert_eq!(
        env.dvt(&["gc", "-c", "-f", "--grace", "0"]).ok().stdout,
        "deleted 2 objects\n"
    );
    let dry = env.dvt(&["gc", "-c", "--dry", "--grace", "0"]).ok().stderr;
    assert!(!dry.contains("remote `store`: 1 object"), "{dry}");

    env.write("plain.txt", "git's\n");
    let listed = env.dvt(&["list", ".", "--dvc-only"]).ok().stdout;
    assert!(listed.contains("d") && !listed.contains("plain.txt"), "{listed}");
}

/// Sets the modification time of every file below `dir` to `when` (as `touch
/// -d` reads it): a remote pushed to then.
fn backdate_files(dir: &std::path::Path, when: &str) {
    for entry in walkdir::WalkDir::new(dir) {
        let entry = entry.unwrap();
        if entry.file_type().is_file() {
            let r = std::process::Command::new("touch")
                .args(["-d", when])
                .arg(entry.path())
                .output()
                .unwrap();
            assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
        }
    }
}

/// `gc -r` leaves on the remote what another clone pushed lately for a commit
/// this repository has not seen (its data otherwise lost before that commit
/// lands): objects written less than `--grace` ago (default 24h) stay, and a
/// recent directory keeps every file it lists, however old. Older ones go, and
/// `--grace 0` deletes the recent ones too (DVC's behaviour).
#[test]
fn gc_remote_keeps_what_another_clone_pushed_lately() {
    let a = TestEnv::new();
    let store = a.home.join("store");
    a.dvt(&["remote", "add", "-d", "store", store.to_str().unwrap()]).ok();
    for i in 1..=3 {
        a.write(&format!("data/f{i}.csv"), format!("row {i}\n"));
    }
    a.dvt(&["add", "data"]).ok();
    a.commit("data v1");
    a.dvt(&["push"]).ok();
    backdate_files(&store, "2 days ago");
    // Another clone adds to the directory and pushes; its commit is not here.
    let b = a.clone_repo();
    b.dvt(&["pull"]).ok();
    b.write("data/f4.csv", "row 4\n");
    b.write("model.bin", "weights\n");
    b.dvt(&["add", "data", "model.bin"]).ok();
    b.dvt(&["push"]).ok();
    b.commit("data v2, model");
    // Here the data is dropped: nothing kept references the old directory.
    a.dvt(&["remove", "data.dvt"]).ok();
    a.commit("no data");

    let r = a.dvt(&["gc", "-r", "--dry-run"]).ok();
    assert!(r.stderr.contains("remote `store`: 1 object to delete"), "{}", r.stderr);
    assert!(
        r.stderr.contains("remote `store`: keeping 6 objects (")
            && r.stderr
                .contains("that nothing kept references but that were written there less than 24h ago")
            && r.stderr.contains("`--grace 0` deletes them too"),
        "{}",
        r.stderr
    );
    let plan = a.dvt(&["gc", "-r", "-f", "--json"]).ok().json();
    assert_eq!(
        plan["plan"]["remote_objects"]["manifests"].as_array().unwrap().len(),
        1,
        "{plan}"
    );
    assert_eq!(plan["plan"]["remote_recent"]["kept"], 6, "{plan}");
    assert_eq!(plan["plan"]["remote_recent"]["grace_secs"], 86_400, "{plan}");
    // What the other clone committed is whole on the remote.
    let c = b.clone_repo();
    c.dvt(&["pull"]).ok();
    assert_eq!(c.read("data/f1.csv"), b"row 1\n");
    assert_eq!(c.read("data/f4.csv"), b"row 4\n");
    assert_eq!(c.read("model.bin"), b"weights\n");

    // Nothing left to delete but what is recent: said so.
    let r = a.dvt(&["gc", "-r", "-f"]).ok();
    assert!(r.stdout.contains("Nothing to delete yet"), "{}", r.stdout);
    // A day later, or with a grace of 0 (`--grace 0`, or `gc.grace` in the
    // config, which the flag overrides), it goes.
    a.dvt(&["config", "gc.grace", "0"]).ok();
    assert!(a.read(".dvt/config.toml").ends_with(b"[gc]\ngrace = \"0\"\n"));
    let r = a.dvt(&["gc", "-r", "--dry-run", "--grace", "24h"]).ok();
    assert!(r.stdout.contains("Nothing to delete yet"), "{}", r.stdout);
    let r = a.dvt(&["gc", "-r", "-f"]).ok();
    assert_eq!(r.stdout, "deleted 6 objects\n");
    let d = b.clone_repo();
    let r = d.dvt(&["pull"]).fails();
    assert!(r.stderr.contains("remote `store` does not have object"), "{}", r.stderr);

    let r = a.dvt(&["gc", "-r", "--grace", "5x"]);
    assert_eq!(r.code, 2, "usage error: {}", r.stderr);
    assert!(r.stderr.contains("`5x` is not a span of time"), "{}", r.stderr);
    // The grace period is the remote's: without `-r`/`-c` it would change nothing.
    let r = a.dvt(&["gc", "-f", "--grace", "0"]);
    assert_eq!(r.code, 2, "usage error: {}", r.stderr);
    assert!(r.stderr.contains("<--remote [<NAME>]|--cloud>"), "{}", r.stderr);
    let r = a.dvt(&["gc", "-c", "--dry-run", "--grace", "0"]).ok();
    assert!(r.stdout.contains("Nothing to delete"), "{}", r.stdout);
    let r = a.dvt(&["gc", "-r", "--grace", "5x"]);
    assert!(r.stderr.contains("`5x` is not a span of time"), "{}", r.stderr);
    let r = a.dvt(&["config", "gc.grace", "a week"]).fails();
    assert!(r.stderr.contains("`a week` is not a span of time"), "{}", r.stderr);
    let config = String::from_utf8(a.read(".dvt/config.toml")).unwrap();
    a.write(".dvt/config.toml", config.replace("grace = \"0\"", "grace = \"soon\""));
    let r = a.dvt(&["gc", "-r", "-f"]).fails();
    assert!(
        r.stderr.contains(".dvt/config.toml") && r.stderr.contains("`gc.grace`: `soon` is not a span of time"),
        "{}",
        r.stderr
    );
}

/// `gc -a`/`-A` keeps the data of the remote-tracking branches too (others'
/// work fetched here), as git's gc keeps their commits: `gc -r -a` no longer
/// deletes from the remote what a colleague's pushed branch needs. One whose
/// pointers cannot be read (its data never pushed) is skipped with a warning.
/// Without `-a`, as DVC, only the workspace and HEAD are kept.
#[test]
fn gc_all_branches_keeps_what_fetched_remote_tracking_branches_need() {
    let a = TestEnv::new();
    let store = a.home.join("store");
    a.dvt(&["remote", "add", "-d", "store", store.to_str().unwrap()]).ok();
    a.write("data/f1.csv", "row 1\n");
    a.write("old.txt", "dropped\n");
    a.dvt(&["add", "data", "old.txt"]).ok();
    a.dvt(&["push"]).ok();
    a.dvt(&["remove", "old.txt.dvt"]).ok();
    a.commit("data");
    let b = a.clone_repo();
    b.git(&["checkout", "-q", "-b", "feature"]);
    b.write("model.bin", "weights v2\n");
    b.dvt(&["add", "model.bin"]).ok();
    b.dvt(&["push"]).ok();
    b.commit("model");
    b.git(&["checkout", "-q", "-b", "unpushed"]);
    b.write("more/x.csv", "x\n");
    b.dvt(&["add", "more"]).ok();
    b.commit("more, its data not pushed");
    let from = format!("{}", b.root.display());
    a.git(&["fetch", "-q", &from, "+refs/heads/*:refs/remotes/b/*"]);
    // Fetched three days ago, as far as gc can tell: it says so.
    a.run("touch", &["-d", "3 days ago", ".git/FETCH_HEAD"]).ok();
    // Pushed long ago: no grace period keeps it.
    backdate_files(&store, "2 days ago");

    let r = a.dvt(&["gc", "-r", "-a", "--dry-run"]).ok();
    assert!(
        r.stderr.contains("remote `store`: 1 object to delete ("),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("of them only remote-tracking branches reach: others' work, fetched here")
            && r.stderr.contains(
                "(remote-tracking branches as of the last `git fetch`, 3 days ago: fetch first to keep what others pushed since)"
            ),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("of a remote-tracking branch, whose pointers could not be read")
            && r.stderr.contains("(needed for `more`)"),
        "{}",
        r.stderr
    );
    let r = a.dvt(&["gc", "-r", "-A", "-f", "--json"]).ok().json();
    assert_eq!(r["plan"]["remote_tracking_revisions"], 2, "{r}");
    assert!(r["plan"]["stale_fetch_secs"].as_u64().unwrap() >= 3 * 86_400, "{r}");
    assert_eq!(r["plan"]["skipped"][0]["remote_tracking"], true, "{r}");
    assert_eq!(r["plan"]["remote_objects"]["files"].as_array().unwrap().len(), 1, "{r}");
    let c = b.clone_repo();
    c.git(&["checkout", "-q", "feature"]);
    c.dvt(&["pull"]).ok();
    assert_eq!(c.read("model.bin"), b"weights v2\n");

    a.git(&["fetch", "-q", &from, "+refs/heads/*:refs/remotes/b/*"]);
    let r = a.dvt(&["gc", "-r", "-a", "--dry-run", "--json"]).ok().json();
    assert!(r["plan"].get("stale_fetch_secs").is_none(), "{r}");

    // Plain `gc -r` keeps HEAD and the workspace only: the branch's model goes.
    let r = a.dvt(&["gc", "-r", "-f"]).ok();
    assert_eq!(r.stdout, "deleted 1 object\n");
    let d = b.clone_repo();
    d.git(&["checkout", "-q", "feature"]);
    let r = d.dvt(&["pull"]).fails();
    assert!(r.stderr.contains("does not have object"), "{}", r.stderr);
}

/// `--glob` (as DVC's `add --glob`, `push --glob`): quoted patterns of files to
/// add, or of tracked data for the other commands; a pattern matching nothing fails.
#[test]
fn glob_targets_match_files_to_add_and_tracked_data() {
    let env = TestEnv::new();
    for f in ["a", "b", "c"] {
        env.write(&format!("data/{f}.csv"), f);
    }
    env.write("data/sub/x.csv", "x");
    env.write("data/notes.txt", "n");
    let r = env.dvt(&["add", "data/*.csv"]).fails();
    assert!(r.stderr.contains("`data/*.csv` does not exist"), "{}", r.stderr);
    env.dvt(&["add", "--glob", "data/*.csv"]).ok();
    for (p, tracked) in [
        ("data/a.csv", true),
        ("data/c.csv", true),
        ("data/sub/x.csv", false),
        ("data/notes.txt", false),
    ] {
        assert_eq!(env.exists(&format!("{p}.dvt")), tracked, "{p}");
    }
    env.dvt(&["add", "--glob", "data/**/x.csv"]).ok();
    assert!(env.exists("data/sub/x.csv.dvt"));
    let r = env.dvt(&["add", "--glob", "data/*.parquet"]).fails();
    assert!(r.stderr.contains("matches no file or directory"), "{}", r.stderr);

    let store = env.home.join("store");
    std::fs::create_dir(&store).unwrap();
    env.dvt(&["remote", "add", "-d", "store", store.to_str().unwrap()]).ok();
    let r = env.dvt(&["push", "--glob", "data/[ab].csv", "--json"]).ok();
    assert_eq!(r.json()["uploaded"], 2, "{}", r.stdout);
    let r = env
        .dvt_in(&env.path("data"), &["push", "--glob", "*.csv", "--json"])
        .ok();
    assert_eq!(r.json()["uploaded"], 1, "{}", r.stdout);
    let r = env.dvt(&["status", "--remote", "--glob", "data/sub/*"]).ok();
    assert!(r.stdout.contains("data/sub/x.csv"), "{}", r.stdout);
    let r = env.dvt(&["pull", "--glob", "models/*"]).fails();
    assert!(
        r.stderr.contains("`models/*` matches no tracked data here"),
        "{}",
        r.stderr
    );
}

/// Config edits at once take turns: none loses another's change.
#[test]
fn config_edits_at_once_lose_nothing() {
    let env = TestEnv::new();
    let adds: Vec<Vec<String>> = (0..16)
        .map(|i| {
            let dir = env.home.join(format!("store-{i}"));
            ["remote", "add", &format!("r{i}"), dir.to_str().unwrap()]
                .map(String::from)
                .to_vec()
        })
        .collect();
    for r in env.dvt_at_once(&adds) {
        r.ok();
    }
    let listed = env.dvt(&["remote", "list"]).ok().stdout;
    assert_eq!(listed.lines().count(), 16, "{listed}");
}

/// The modes of everything in the cache of `env`, as `(mode, path)`, after
/// `dvt add` of a directory of small files and a large one under `umask 077`.
fn cache_modes_after_private_add(env: &TestEnv) -> Vec<(u32, PathBuf)> {
    for i in 0..40 {
        env.write(&format!("data/r{i}.csv"), format!("{i},{}\n", i * 7));
    }
    env.write("model.bin", noise(3 << 20, 9));
    env.sh_in(&env.root, "umask 077 && dvt add data model.bin").ok();
    common::walk(&env.path(".dvt/cache"))
        .into_iter()
        .map(|p| (std::fs::metadata(&p).unwrap().permissions().mode() & 0o7777, p))
        .collect()
}

#[test]
fn cache_shared_group_gives_what_dvt_writes_to_the_group() {
    // Without the setting, the umask rules: nothing is the group's.
    let env = TestEnv::new();
    let modes = cache_modes_after_private_add(&env);
    assert!(modes.len() > 5, "{modes:?}");
    for (mode, p) in &modes {
        assert_eq!(mode & 0o077, 0, "{} is {mode:o}", p.display());
    }

    // With it, every file and directory the group may read and write, and
    // others still get nothing, as the umask says.
    let env = TestEnv::new();
    let r = env.dvt(&["config", "cache.shared", "everyone"]).fails();
    assert!(r.stderr.contains("the only value is `group`"), "{}", r.stderr);
    env.dvt(&["config", "cache.shared", "group"]).ok();
    assert!(env.dvt(&["doctor"]).ok().stdout.contains("shared with the group"));
    let modes = cache_modes_after_private_add(&env);
    for (mode, p) in &modes {
        let want = if p.is_dir() { 0o770 } else { 0o660 };
        assert_eq!(mode & 0o777, want, "{} is {mode:o}", p.display());
    }
    assert_eq!(env.dvt(&["config", "cache.shared"]).ok().stdout, "group\n");
    env.dvt(&["config", "--unset", "cache.shared"]).ok();
    let r = env.dvt(&["config", "cache.shared"]).fails();
    assert!(r.stderr.contains("umask"), "{}", r.stderr);
}

/// Runs `script` with `sh` in `dir` as user `uid` (group `uid`, also in group
/// `group`), with the `dvt` under test first on `PATH`.
fn as_user(uid: u32, group: u32, dir: &std::path::Path, home: &std::path::Path, script: &str) -> common::Run {
    let bin_dir = std::path::Path::new(common::DVT).parent().unwrap();
    let run = std::process::Command::new("setpriv")
        .args([
            &format!("--reuid={uid}"),
            &format!("--regid={uid}"),
            &format!("--groups={group}"),
            "sh",
            "-c",
            script,
        ])
        .current_dir(dir)
        .env("HOME", home)
        .env(
            "PATH",
            format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap()),
        )
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_SYSTEM", "/dev/null")
        .env("DVT_SYSTEM_CONFIG_DIR", home.join("etc-dvt"))
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("DVT_GLOBAL_CONFIG_DIR")
        .output()
        .unwrap();
    common::Run::from(run)
}

#[test]
fn two_users_share_a_cache_through_their_group() {
    // Needs two real users: root runs the test and becomes each in turn.
    let setpriv = std::process::Command::new("setpriv")
        .args(["--reuid=4001", "true"])
        .output();
    if !setpriv.is_ok_and(|o| o.status.success()) {
        eprintln!("cannot switch users here (needs root and setpriv): not testing a cache two users share");
        return;
    }
    let (ana, ben, team) = (4001, 4002, 4300);
    for shared in [false, true] {
        let tmp = tempfile::tempdir().unwrap();
        let top = tmp.path();
        std::fs::set_permissions(top, std::fs::Permissions::from_mode(0o755)).unwrap();
        // The cache directory is the team's, as an administrator sets it up.
        let cache = top.join("cache");
        std::fs::create_dir(&cache).unwrap();
        std::os::unix::fs::chown(&cache, None, Some(team)).unwrap();
        std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o2775)).unwrap();
        let setting = if shared {
            "dvt config -q cache.shared group"
        } else {
            "true"
        };
        for uid in [ana, ben] {
            for d in ["home", "repo"] {
                let p = top.join(format!("{d}{uid}"));
                std::fs::create_dir(&p).unwrap();
                std::os::unix::fs::chown(&p, Some(uid), Some(uid)).unwrap();
            }
            let script = format!(
                "git init -q && dvt init -q && dvt config -q cache.dir {} && {setting} && mkdir data && \
                 for i in $(seq 1 {n}); do echo row $i > data/r$i; done",
                cache.display(),
                n = if uid == ana { 30 } else { 60 },
            );
            as_user(
                uid,
                team,
                &top.join(format!("repo{uid}")),
                &top.join(format!("home{uid}")),
                &script,
            )
            .ok();
        }
        let (repo_a, repo_b) = (top.join(format!("repo{ana}")), top.join(format!("repo{ben}")));
        let run = |uid: u32, script: &str| {
            let repo = if uid == ana { &repo_a } else { &repo_b };
            as_user(uid, team, repo, &top.join(format!("home{uid}")), script)
        };
        run(ana, "dvt add -q data").ok();
        // Ben's 30 new rows go into directories of the cache that Ana made.
        let r = run(ben, "dvt add -q data");
        if !shared {
            let r = r.fails();
            assert!(r.stderr.contains("you may not write to the cache"), "{}", r.stderr);
            assert!(r.stderr.contains("cache.shared group"), "{}", r.stderr);
            assert!(!repo_b.join("data.dvt").exists());
            continue;
        }
        r.ok();
        // Ben checks out Ana's version, read from objects she wrote.
        std::fs::copy(repo_a.join("data.dvt"), repo_b.join("data.dvt")).unwrap();
        run(ben, "dvt checkout -q --force data && ls data | wc -l && dvt status -q").ok();
        assert_eq!(std::fs::read_dir(repo_b.join("data")).unwrap().count(), 30);
        // Ben keeps his clone private: Ana's gc cannot tell what it needs, so
        // it deletes nothing (it once took him for gone, and deleted his data).
        std::fs::set_permissions(&repo_b, std::fs::Permissions::from_mode(0o700)).unwrap();
        let r = run(ana, "dvt gc -f").fails();
        assert!(
            r.stderr.contains(&format!("cannot read `{}`", repo_b.display())),
            "{}",
            r.stderr
        );
        assert!(
            std::fs::read_to_string(cache.join("repos"))
                .unwrap()
                .contains(repo_b.to_str().unwrap())
        );
        std::fs::set_permissions(&repo_b, std::fs::Permissions::from_mode(0o755)).unwrap();
        // Ana's gc deletes what Ben wrote and no one needs now: his 30 rows and
        // their listing, from directories of the cache that she or he made.
        let r = run(ana, "dvt gc -f").ok();
        assert!(r.stdout.contains("deleted 31 objects"), "{}", r.stdout);
        run(ben, "dvt fsck -q").ok();
    }
}

#[test]
fn a_path_tracked_by_two_pointers_is_refused_before_anything_is_written() {
    let env = TestEnv::new();
    env.write("data/a.csv", "a,1\n");
    env.write("data/b.csv", "b,1\n");
    env.dvt(&["add", "data"]).ok();
    // A copy of the pointer "to keep the old version", then a new version.
    std::fs::copy(env.path("data.dvt"), env.path("data-v1.dvt")).unwrap();
    env.write("data/b.csv", "b,2\n");
    env.dvt(&["add", "data"]).ok();

    let r = env.dvt(&["checkout"]).fails();
    assert!(
        r.stderr
            .contains("`data` is tracked twice: by `data-v1.dvt` and by `data.dvt`"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("delete `data-v1.dvt` (`git rm data-v1.dvt`"),
        "{}",
        r.stderr
    );
    assert_eq!(env.read("data/b.csv"), b"b,2\n", "checkout wrote the old version");
    let r = env.dvt(&["status"]).fails();
    assert!(r.stderr.contains("tracked twice"), "{}", r.stderr);
    let r = env.dvt(&["data", "status"]).fails();
    assert!(r.stderr.contains("tracked twice"), "{}", r.stderr);
    // Naming the data picks its own pointer, as before.
    env.dvt(&["status", "data"]).ok();
    std::fs::remove_file(env.path("data-v1.dvt")).unwrap();
    env.dvt(&["checkout"]).ok();
    assert_eq!(env.read("data/b.csv"), b"b,2\n");

    // A pointer whose path leads into another's directory.
    env.write("c.csv", "c,9\n");
    env.dvt(&["add", "c.csv"]).ok();
    std::fs::remove_file(env.path("c.csv")).unwrap();
    let text = String::from_utf8(env.read("c.csv.dvt")).unwrap();
    env.write("c.csv.dvt", text.replace("path = \"c.csv\"", "path = \"data/a.csv\""));
    let r = env.dvt(&["checkout"]).fails();
    assert!(
        r.stderr
            .contains("`data/a.csv` (tracked by `c.csv.dvt`) is inside `data`, which `data.dvt` tracks"),
        "{}",
        r.stderr
    );
    assert_eq!(env.read("data/a.csv"), b"a,1\n");
}

/// Adding or removing many paths at once writes each `.gitignore` once, with
/// every entry in the order given (timed in the benchmarks, not here).
#[test]
fn many_paths_at_once_keep_every_gitignore_entry_in_order() {
    let env = TestEnv::new();
    env.write("d/.gitignore", "# mine\n*.log\n");
    let mut names = Vec::new();
    for i in 0..40 {
        let dir = if i % 2 == 0 { "d" } else { "e" };
        env.write(&format!("{dir}/f{i}.csv"), format!("{i}\n"));
        names.push(format!("{dir}/f{i}.csv"));
    }
    let args: Vec<&str> = std::iter::once("add").chain(names.iter().map(String::as_str)).collect();
    env.dvt(&args).ok();
    // `d` holds the even files, `e` the odd ones.
    let entries = |from: usize| -> String { (from..40).step_by(2).map(|i| format!("/f{i}.csv\n")).collect() };
    assert_eq!(
        String::from_utf8(env.read("d/.gitignore")).unwrap(),
        format!("# mine\n*.log\n{}", entries(0))
    );
    assert_eq!(String::from_utf8(env.read("e/.gitignore")).unwrap(), entries(1));
    // git sees the pointers, not the data.
    let st = env.git(&["status", "--porcelain", "--untracked-files=all"]).stdout;
    assert!(!st.contains(".csv\n") && st.contains("e/f39.csv.dvt\n"), "{st}");

    // Removing half of `d`'s and all of `e`'s.
    let gone: Vec<String> = (0..40)
        .filter(|i| i % 2 == 1 || *i < 20)
        .map(|i| format!("{}.dvt", names[i]))
        .collect();
    let args: Vec<&str> = std::iter::once("remove")
        .chain(gone.iter().map(String::as_str))
        .collect();
    env.dvt(&args).ok();
    assert_eq!(
        String::from_utf8(env.read("d/.gitignore")).unwrap(),
        format!("# mine\n*.log\n{}", entries(20))
    );
    assert!(!env.exists("e/.gitignore"));
    assert!(env.exists("e/f1.csv") && !env.exists("e/f1.csv.dvt"));
}
