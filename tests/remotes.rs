//! Remotes against real servers on 127.0.0.1: a directory, moto (S3), Azurite
//! (Azure Blob), rclone's WebDAV server, and fake-gcs-server (GCS reads only: no
//! local server accepts object_store's GCS writes).
//!
//! `scripts/test.sh` starts the servers (scripts/servers.sh) and exports their
//! addresses as DVT_TEST_*; a test whose server is not given fails, unless
//! DVT_SKIP_REMOTE_TESTS is set.
#![allow(clippy::disallowed_methods, clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use common::{PrivateCa, Store, TestEnv, noise, runs, walk, write_counted_stage};

/// Azurite's published development-storage key (not a secret).
const AZURITE_KEY: &str = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

fn server(var: &str) -> Option<String> {
    if std::env::var_os("DVT_SKIP_REMOTE_TESTS").is_some() {
        eprintln!("skipped: DVT_SKIP_REMOTE_TESTS is set");
        return None;
    }
    Some(std::env::var(var).unwrap_or_else(|_| {
        panic!("{var} is not set: run ./scripts/test.sh, which starts the test servers (or set DVT_SKIP_REMOTE_TESTS)")
    }))
}

/// A bucket/container name no other test uses.
fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!("{prefix}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

const DATA_FILES: &[&str] = &[
    "data/readings.csv",
    "data/images/img-001.bin",
    "data/images/img-002.bin",
    "data/images/img-003.bin",
    "data/nested/deep/notes.txt",
    "model.bin",
];

/// A dataset directory and a model file (over 8 MiB, so it is uploaded in parts).
/// 7 objects: 4 data files, the data manifest, the model. Returns that count.
fn populate(a: &TestEnv) -> usize {
    let mut csv = String::from("t,sensor,value\n");
    for i in 0..5000 {
        csv.push_str(&format!("{i},s{},{}.{}\n", i % 7, i % 13, i % 100));
    }
    a.write("data/readings.csv", csv);
    for (i, name) in DATA_FILES[1..4].iter().enumerate() {
        a.write(name, noise(40_000 + i, i as u8 + 1));
    }
    a.write("data/nested/deep/notes.txt", "collected 2026-11-01\n");
    a.write("model.bin", noise(10 * 1024 * 1024 + 4321, 99));
    a.dvt(&["add", "data", "model.bin"]).ok();
    7
}

/// Push from A, a second push that does nothing, `git clone` into B, `configure`
/// B (credentials are not committed), pull in B, and compare bytes.
fn round_trip(a: &TestEnv, configure_clone: impl Fn(&TestEnv)) {
    let n = populate(a);
    let r = a.dvt(&["push", "--json"]).ok();
    assert_eq!(r.json()["uploaded"], n, "{}", r.stdout);
    let r = a.dvt(&["push"]).ok();
    assert!(r.stdout.contains("Nothing to push: remote"), "{}", r.stdout);
    let r = a.dvt(&["push", "--json"]).ok();
    assert_eq!(r.json()["uploaded"], 0);
    let r = a.dvt(&["status", "--remote"]).ok();
    assert!(r.stdout.contains(&format!("in sync ({n} objects)")), "{}", r.stdout);

    a.commit("data v1");
    let b = a.clone_repo();
    configure_clone(&b);
    let r = b.dvt(&["status", "--remote", "--json"]).ok();
    let remote_only: usize = r.json()["pointers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["remote_only"].as_array().unwrap().len())
        .sum();
    assert_eq!(remote_only, n, "{}", r.stdout);
    let r = b.dvt(&["pull"]).ok();
    assert!(r.stdout.contains(&format!("fetched {n} objects")), "{}", r.stdout);
    for f in DATA_FILES {
        assert!(a.read(f) == b.read(f), "{f} differs after pull");
    }
    b.dvt(&["status"]).ok();
    let r = b.dvt(&["status"]).ok();
    assert!(r.stdout.contains("up to date"), "{}", r.stdout);
    let r = b.dvt(&["pull"]).ok();
    assert!(r.stdout.contains("Nothing to fetch"), "{}", r.stdout);
}

#[test]
fn local_directory_remote_round_trip() {
    let (a, store) = dir_repo();
    round_trip(&a, |_| {});
    // The remote holds every object of the cache, byte for byte as the cache stores
    // it: small ones in a pack (with its index), the others and the manifests in a
    // file each; the list of packs; and nothing else.
    assert_eq!(a.object_ids(), Store::at(&store).ids());
    assert_remote_objects_whole(&a, &store);
    for f in files_under(&store) {
        let rel = f.strip_prefix(&store).unwrap().to_str().unwrap().to_string();
        let packed = rel.starts_with("packs/") && (rel.ends_with(".pack") || rel.ends_with(".idx"));
        assert!(
            rel.starts_with("objects/") || packed || rel == "packs/list",
            "unexpected file {rel}"
        );
    }
    // A pack per thread at most (`add` opens a second only when two threads would
    // wait on one), each with its index.
    let packed = files_under(&store.join("packs")).len() - 1;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert!(
        packed.is_multiple_of(2) && (2..=2 * cores).contains(&packed),
        "{packed} pack files"
    );
}

/// As DVC's per-output `remote` and `push: false`: a pointer that says
/// `remote = "models"` sends its data there and gets it from there, one with
/// `push = false` is left out of push; the fields written by hand (`desc`,
/// `type`, `labels`, `meta` too) survive a re-`add`; `-r` leaves out the data
/// of pointers that name another remote; a remote that is not configured is
/// named with its pointer.
#[test]
fn pointers_choose_their_remote_and_can_stay_out_of_push() {
    let (a, store) = dir_repo();
    let models = a.root.parent().unwrap().join("models");
    a.dvt(&["remote", "add", "models", models.to_str().unwrap()]).ok();
    a.write("raw.csv", "t,v\n0,1\n");
    a.write("model.bin", "weights v1");
    a.write("scratch.bin", "scratch");
    a.dvt(&["add", "raw.csv", "model.bin", "scratch.bin"]).ok();
    let annotations = "desc = \"the trained model\"\ntype = \"model\"\nlabels = [\"cnn\", \"v2\"]\nremote = \"models\"\n\n[meta]\nowner = \"ana\"\n";
    let pointer = String::from_utf8(a.read("model.bin.dvt")).unwrap();
    a.write("model.bin.dvt", format!("{pointer}{annotations}"));
    let pointer = String::from_utf8(a.read("scratch.bin.dvt")).unwrap();
    a.write("scratch.bin.dvt", format!("{pointer}push = false\n"));

    let r = a.dvt(&["push"]).ok();
    assert_eq!(
        r.stdout,
        "pushed 1 object (16 B) to `store`; 0 already there\n\
         pushed 1 object (18 B) to `models`; 0 already there\n\
         left out 1 path: its pointer says `push = false`\n",
        "{}",
        r.stderr
    );
    assert_eq!(Store::at(&store).ids(), [id_of(b"t,v\n0,1\n")]);
    assert_eq!(Store::at(&models).ids(), [id_of(b"weights v1")]);
    let j = a.dvt(&["push", "--json"]).ok().json();
    assert_eq!(
        (j["remote"].as_str(), j["not_pushed"].as_u64()),
        (Some("store"), Some(1)),
        "{j}"
    );
    assert_eq!(j["also"][0]["remote"], "models", "{j}");
    assert_eq!(j["also"][0]["already_on_remote"], 1, "{j}");
    // Data never pushed is where it should be: in sync (exit 0 for `-q`).
    let r = a.dvt(&["status", "-c"]).ok();
    assert_eq!(
        r.stdout,
        "Cache and remotes `store`, `models` are in sync (3 objects).\n\
         scratch.bin: 1 object only in the cache (its pointer says `push = false`)\n"
    );
    a.dvt(&["status", "-c", "-q"]).ok();

    // A new version keeps what was written by hand, and goes to `models` too.
    a.write("model.bin", "weights v2");
    a.dvt(&["add", "model.bin"]).ok();
    let pointer = String::from_utf8(a.read("model.bin.dvt")).unwrap();
    assert!(pointer.ends_with(annotations), "{pointer}");
    assert!(pointer.contains(&id_of(b"weights v2")), "{pointer}");
    // `-r store` leaves it out: its pointer names another remote.
    let r = a.dvt(&["push", "-r", "store"]).ok();
    assert_eq!(
        r.stdout,
        "Nothing to push: remote `store` has all 1 object.\nleft out 1 path: its pointer says `push = false`\n"
    );
    a.dvt(&["push"]).ok();
    assert_eq!(Store::at(&models).ids().len(), 2);
    a.commit("data");

    // A clone gets each from its remote (scratch.bin was never pushed); with
    // `-r store`, model.bin is left out, fetch and checkout, and says so.
    let b = a.clone_repo();
    let r = b.dvt(&["pull", "-r", "store", "raw.csv", "model.bin"]).ok();
    assert!(
        r.stderr
            .contains("left out 1 path: its pointer names another remote (`dvt pull` without `-r` gets it): model.bin"),
        "{}",
        r.stderr
    );
    assert_eq!(b.read("raw.csv"), b"t,v\n0,1\n");
    assert!(!b.path("model.bin").exists());
    let j = b.dvt(&["pull", "-r", "store", "model.bin", "--json"]).ok().json();
    assert_eq!(j["other_remotes"][0], "model.bin", "{j}");
    let r = b.dvt(&["pull", "--allow-missing"]).ok();
    assert!(
        r.stdout
            .contains("Nothing to fetch from `store`: the cache has all 1 object.\nfetched 1 object (")
            && r.stdout.contains(" from `models`; 0 already"),
        "{}",
        r.stdout
    );
    assert_eq!(b.read("model.bin"), b"weights v2");
    assert_eq!(b.read("raw.csv"), b"t,v\n0,1\n");
    assert!(!b.path("scratch.bin").exists());
    let r = b.dvt(&["status", "-c", "model.bin"]).ok();
    assert_eq!(r.stdout, "Cache and remote `models` are in sync (1 object).\n");
    // Readers of the repository find it there too: get-url, get from its URL, tag.
    let r = b.dvt(&["get-url", "model.bin"]).ok();
    assert!(r.stdout.starts_with(models.to_str().unwrap()), "{}", r.stdout);
    // (Not from A's cache: only `models` has it.)
    std::fs::remove_dir_all(a.path(".dvt/cache")).unwrap();
    let elsewhere = TestEnv::bare();
    let url = format!("file://{}", a.root.display());
    elsewhere.dvt(&["get", &url, "model.bin", "-o", "got.bin"]).ok();
    assert_eq!(elsewhere.read("got.bin"), b"weights v2");
    let r = a.dvt(&["tag", "v1"]).ok();
    assert!(
        r.stdout.contains("`store`, `models` hold its data (2 objects)"),
        "{}",
        r.stdout
    );
    let r = b.dvt(&["status", "-c", "model.bin", "raw.csv"]).ok();
    assert_eq!(
        r.stdout,
        "Cache and remotes `store`, `models` are in sync (2 objects).\n"
    );

    // A remote that is not configured: named with its pointer, nothing sent.
    let pointer = String::from_utf8(b.read("model.bin.dvt")).unwrap();
    b.write(
        "model.bin.dvt",
        pointer.replace("remote = \"models\"", "remote = \"nope\""),
    );
    for cmd in ["push", "fetch", "pull"] {
        let r = b.dvt(&[cmd]).fails();
        assert!(
            r.stderr.contains("`model.bin.dvt` says its data is on remote `nope` (`remote = \"nope\"`), which is not configured (there are: models, store)"),
            "{cmd}: {}",
            r.stderr
        );
    }
    // `push` must be a boolean.
    b.write("model.bin.dvt", pointer.replace("remote = \"models\"", "push = \"no\""));
    let r = b.dvt(&["status"]).fails();
    assert!(
        r.stdout.contains("model.bin.dvt: error: invalid pointer file")
            && r.stdout
                .contains("line 10, column 8: invalid type: string \"no\", expected a boolean"),
        "{}",
        r.stdout
    );
}

/// A stage's outs say it in `dvt.toml`, as DVC's `dvc.yaml` outs do:
/// `remote = "models"` and `push = false`.
#[test]
fn stage_outs_choose_their_remote_and_can_stay_out_of_push() {
    let (a, store) = dir_repo();
    let models = a.root.parent().unwrap().join("models");
    a.dvt(&["remote", "add", "models", models.to_str().unwrap()]).ok();
    a.write(
        "dvt.toml",
        r#"[stages.train]
cmd = "echo weights > model.bin && echo tmp > scratch.bin && echo log > train.log"
outs = [{ path = "model.bin", remote = "models", desc = "weights", labels = ["cnn"] }, { path = "scratch.bin", push = false }, "train.log"]
"#,
    );
    a.dvt(&["repro"]).ok();
    let r = a.dvt(&["push"]).ok();
    assert!(
        r.stdout.contains("to `store`")
            && r.stdout.contains("to `models`")
            && r.stdout.contains("left out 1 path: its pointer says `push = false`"),
        "{}",
        r.stdout
    );
    assert_eq!(Store::at(&store).ids(), [id_of(b"log\n")]);
    assert_eq!(Store::at(&models).ids(), [id_of(b"weights\n")]);
    a.commit("train");
    let b = a.clone_repo();
    b.dvt(&["pull", "--allow-missing"]).ok();
    assert_eq!(b.read("model.bin"), b"weights\n");
    assert_eq!(b.read("train.log"), b"log\n");

    a.write(
        "dvt.toml",
        String::from_utf8(a.read("dvt.toml"))
            .unwrap()
            .replace("\"models\"", "\"nope\""),
    );
    let r = a.dvt(&["push"]).fails();
    assert!(
        r.stderr
            .contains("`dvt.toml` (out `model.bin`) says its data is on remote `nope`"),
        "{}",
        r.stderr
    );
    a.write(
        "dvt.toml",
        String::from_utf8(a.read("dvt.toml")).unwrap().replace("\"nope\"", "7"),
    );
    let r = a.dvt(&["push"]).fails();
    assert!(
        r.stderr.contains("`remote` of `model.bin` must be a remote's name"),
        "{}",
        r.stderr
    );
    // Annotations (documentation only) are checked too.
    let toml = String::from_utf8(a.read("dvt.toml")).unwrap();
    a.write(
        "dvt.toml",
        toml.replace("remote = 7", "remote = \"models\"")
            .replace("[\"cnn\"]", "\"cnn\""),
    );
    let r = a.dvt(&["push"]).fails();
    assert!(
        r.stderr
            .contains("`labels` of `model.bin` must be a list of strings, not `\"cnn\"`"),
        "{}",
        r.stderr
    );
}

/// The id of `content` (as dvt names objects).
fn id_of(content: &[u8]) -> String {
    blake3::hash(content).to_hex().to_string()
}

/// `--run-cache`: A runs its stage with two values of a param and pushes the
/// run cache; B, a `git clone`, pulls it and, set back to the first value, gets
/// that run's outs from it instead of running the stage. Returns B.
fn run_cache_round_trip(a: &TestEnv, configure_clone: impl Fn(&TestEnv)) -> TestEnv {
    write_counted_stage(a);
    a.write(".gitignore", "/runs.log\n");
    a.dvt(&["repro"]).ok();
    a.write("params.yaml", "lr: 0.2\n");
    a.dvt(&["repro"]).ok();
    assert_eq!(runs(a), 2);
    let r = a.dvt(&["push", "--run-cache", "--json"]).ok();
    assert_eq!(r.json()["runs"]["copied"], 2, "{}", r.stdout);
    let r = a.dvt(&["push", "--run-cache"]).ok();
    assert!(
        r.stdout.contains("run cache: 0 runs pushed, 2 already on `"),
        "{}",
        r.stdout
    );
    // Without --run-cache, nothing is said of it.
    let r = a.dvt(&["push"]).ok();
    assert!(!r.stdout.contains("run cache"), "{}", r.stdout);
    a.commit("lr 0.2");

    let b = a.clone_repo();
    configure_clone(&b);
    let r = b.dvt(&["pull", "--run-cache"]).ok();
    assert!(
        r.stdout.contains("run cache: 2 runs fetched, 0 already here"),
        "{}",
        r.stdout
    );
    assert_eq!(b.read("model.txt"), b"lr: 0.2\n");
    b.write("params.yaml", "lr: 0.1\n");
    let r = b.dvt(&["repro"]).ok();
    assert!(
        r.stdout.contains("restored from the run cache, not run"),
        "{}",
        r.stdout
    );
    assert_eq!(runs(&b), 0, "the stage ran in B");
    assert_eq!(b.read("model.txt"), b"lr: 0.1\n");
    assert_eq!(b.read("metrics.json"), b"{\"loss\": 0.1}\n");
    let r = b.dvt(&["fetch", "--run-cache"]).ok();
    assert!(
        r.stdout.contains("run cache: 0 runs fetched, 2 already here"),
        "{}",
        r.stdout
    );

    // `repro --pull` in a clone with no run cache looks for the run it needs
    // on the remote.
    let c = a.clone_repo();
    configure_clone(&c);
    c.write("params.yaml", "lr: 0.1\n");
    let r = c.dvt(&["repro", "--pull"]).ok();
    assert!(
        r.stdout.contains("restored from the run cache, not run"),
        "{}",
        r.stdout
    );
    assert_eq!(runs(&c), 0, "the stage ran in C");
    assert_eq!(c.read("model.txt"), b"lr: 0.1\n");
    assert_eq!(c.read("metrics.json"), b"{\"loss\": 0.1}\n");
    b
}

/// The run cache through a directory remote, and what is left behind: entries
/// whose data the pushing cache lacks; on fetch, damaged entries and those
/// whose data the remote lacks (the stage then runs).
#[test]
fn run_cache_push_and_pull_through_a_directory() {
    let (a, store) = dir_repo();
    let b = run_cache_round_trip(&a, |_| {});

    a.write("params.yaml", "lr: 0.3\n");
    a.dvt(&["repro"]).ok();
    a.dvt(&["push", "--run-cache"]).ok();
    Store::at(&store).remove(&id_of(b"lr: 0.3\n"));
    let damaged = format!("{}/{}.toml", &"ab".repeat(32)[..2], "ab".repeat(32));
    std::fs::create_dir_all(store.join("runs/ab")).unwrap();
    std::fs::write(store.join("runs").join(&damaged), "cmd = [broken\n").unwrap();
    let r = b.dvt(&["fetch", "--run-cache"]).ok();
    assert!(
        r.stdout.contains(
            "run cache: 0 runs fetched, 2 already here; 2 not fetched: the remote lacks their data, or they are damaged"
        ),
        "{}",
        r.stdout
    );
    assert!(!b.exists(&format!(".dvt/cache/runs/{damaged}")));
    b.write("params.yaml", "lr: 0.3\n");
    let r = b.dvt(&["repro"]).ok();
    assert!(r.stderr.contains("Running stage `train`"), "{}", r.stderr);
    assert_eq!(runs(&b), 1);

    // A push leaves behind the entries whose data the cache lacks.
    let other = a.root.parent().unwrap().join("other");
    a.dvt(&["remote", "add", "other", other.to_str().unwrap()]).ok();
    a.remove_object(&id_of(b"lr: 0.1\n"));
    let r = a.dvt(&["push", "--run-cache", "-r", "other"]).ok();
    assert!(
        r.stdout
            .contains("run cache: 2 runs pushed, 0 already on `other`; 1 left here: the cache lacks their data"),
        "{}",
        r.stdout
    );
    assert!(!Store::at(&other).has(&id_of(b"lr: 0.1\n")));

    // `exp run --pull` too gets the run from the remote.
    let d = a.clone_repo();
    let r = d.dvt(&["exp", "run", "--pull", "-S", "lr=0.1"]).ok();
    assert!(
        r.stdout.contains("(0 stage runs, 1 restored from the run cache)"),
        "{}",
        r.stdout
    );
    assert_eq!(runs(&d), 0);
    assert_eq!(d.read("model.txt"), b"lr: 0.1\n");
    let r = d.dvt(&["exp", "run", "--pull", "--queue"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
}

/// `gc -r` deletes the remote's run-cache entries whose data it deletes there,
/// and keeps the others whole, the copies of their metrics files included, also
/// when this clone's cache has none of them: A pushes two runs, B (a clone
/// without run cache) runs gc, C (another) fetches what is left.
fn gc_of_remote_runs(a: &TestEnv, configure_clone: impl Fn(&TestEnv)) {
    write_counted_stage(a);
    a.write(".gitignore", "/runs.log\n");
    a.dvt(&["repro"]).ok();
    a.write("params.yaml", "lr: 0.2\n");
    a.dvt(&["repro"]).ok();
    a.dvt(&["push", "--run-cache"]).ok();
    a.commit("lr 0.2");

    // B has the workspace's data, no run cache: lr 0.1's run goes with its data.
    let b = a.clone_repo();
    configure_clone(&b);
    b.dvt(&["pull"]).ok();
    // (`--grace 0`: A pushed that data a moment ago.)
    let r = b.dvt(&["gc", "-r", "--dry-run", "--grace", "0"]).ok();
    assert!(
        r.stderr
            .contains("run cache: 1 entry to delete (their data is deleted or gone)"),
        "{}",
        r.stderr
    );
    let r = b.dvt(&["gc", "-r", "-f", "--json", "--grace", "0"]).ok().json();
    assert_eq!(r["plan"]["remote_run_cache_entries"].as_array().unwrap().len(), 1);
    assert_eq!(r["plan"]["run_cache_entries"].as_array().unwrap().len(), 0);
    assert_eq!(r["plan"]["remote_objects"]["files"].as_array().unwrap().len(), 2);
    let r = b.dvt(&["gc", "-r", "-f", "--grace", "0"]).ok();
    assert!(r.stdout.contains("Nothing to delete"), "{}", r.stdout);

    // What is left is whole: a new clone fetches it, and restores lr 0.2 from it.
    let c = a.clone_repo();
    configure_clone(&c);
    let r = c.dvt(&["fetch", "--run-cache"]).ok();
    assert!(
        r.stdout.contains("run cache: 1 run fetched, 0 already here\n"),
        "{}",
        r.stdout
    );
    c.write("params.yaml", "lr: 0.1\n");
    c.dvt(&["repro"]).ok();
    assert_eq!(runs(&c), 1);
    c.write("params.yaml", "lr: 0.2\n");
    let r = c.dvt(&["repro"]).ok();
    assert!(r.stdout.contains("restored from the run cache"), "{}", r.stdout);
    assert_eq!(c.read("metrics.json"), b"{\"loss\": 0.2}\n");
    assert_eq!(runs(&c), 1);
}

#[test]
fn gc_remote_deletes_the_remote_runs_whose_data_goes_and_keeps_the_others_whole() {
    let (a, store) = dir_repo();
    gc_of_remote_runs(&a, |_| {});
    assert_eq!(files_under(&store.join("runs")).len(), 1);
    let remote = Store::at(&store);
    assert!(!remote.has(&id_of(b"lr: 0.1\n")) && !remote.has(&id_of(b"{\"loss\": 0.1}\n")));
    assert!(remote.has(&id_of(b"lr: 0.2\n")) && remote.has(&id_of(b"{\"loss\": 0.2}\n")));
}

/// `gc -r` reads when each object was written from the store itself: what a
/// push wrote a moment ago (small files packed, a big one alone, and their
/// directory's manifest) stays while younger than the grace period, and goes
/// once older.
fn gc_grace_by_the_stores_times(a: &TestEnv) {
    for i in 0..5 {
        a.write(&format!("batch/r{i}.json"), format!("{{\"id\": {i}}}\n"));
    }
    a.write("batch/big.bin", noise(5 << 20, 3));
    a.dvt(&["add", "batch"]).ok();
    // Small files tracked one by one: packed too, with no manifest to keep them.
    for i in 0..3 {
        a.write(&format!("note{i}.txt"), format!("note {i}\n"));
        a.dvt(&["add", &format!("note{i}.txt")]).ok();
    }
    a.dvt(&["push"]).ok();
    let url = a.dvt(&["get-url", "note1.txt"]).ok().stdout;
    assert!(url.contains("/packs/"), "{url}");
    for p in ["batch.dvt", "note0.txt.dvt", "note1.txt.dvt", "note2.txt.dvt"] {
        a.dvt(&["remove", p]).ok();
    }
    let plan = a.dvt(&["gc", "-r", "--dry-run", "--json"]).ok().json();
    assert_eq!(plan["plan"]["remote_recent"]["kept"], 10, "{plan}");
    assert_eq!(
        plan["plan"]["remote_objects"]["files"].as_array().unwrap().len(),
        0,
        "{plan}"
    );
    std::thread::sleep(Duration::from_millis(2100));
    let plan = a.dvt(&["gc", "-r", "-f", "--grace", "1s", "--json"]).ok().json();
    assert!(plan["plan"].get("remote_recent").is_none(), "{plan}");
    assert_eq!(
        plan["plan"]["remote_objects"]["files"].as_array().unwrap().len(),
        9,
        "{plan}"
    );
    assert_eq!(
        plan["plan"]["remote_objects"]["manifests"].as_array().unwrap().len(),
        1,
        "{plan}"
    );
    let listed = a.dvt(&["gc", "-r", "--dry-run", "--grace", "0", "--json"]).ok().json();
    assert_eq!(
        listed["plan"]["remote_objects"]["files"].as_array().unwrap().len(),
        0,
        "{listed}"
    );
}

#[test]
fn gc_grace_on_s3() {
    let Some(endpoint) = server("DVT_TEST_S3_ENDPOINT") else {
        return;
    };
    gc_grace_by_the_stores_times(&s3_repo(&endpoint));
}

#[test]
fn gc_grace_on_azurite() {
    let Some(endpoint) = server("DVT_TEST_AZURE_ENDPOINT") else {
        return;
    };
    gc_grace_by_the_stores_times(&azure_repo(&endpoint));
}

#[test]
fn gc_grace_on_webdav() {
    let Some(url) = server("DVT_TEST_WEBDAV_URL") else {
        return;
    };
    gc_grace_by_the_stores_times(&webdav_repo(&url));
}

#[test]
fn gc_of_remote_runs_on_s3() {
    let Some(endpoint) = server("DVT_TEST_S3_ENDPOINT") else {
        return;
    };
    gc_of_remote_runs(&s3_repo(&endpoint), s3_secret);
}

#[test]
fn gc_of_remote_runs_on_azurite() {
    let Some(endpoint) = server("DVT_TEST_AZURE_ENDPOINT") else {
        return;
    };
    gc_of_remote_runs(&azure_repo(&endpoint), azure_key);
}

#[test]
fn gc_of_remote_runs_on_webdav() {
    let Some(url) = server("DVT_TEST_WEBDAV_URL") else {
        return;
    };
    gc_of_remote_runs(&webdav_repo(&url), |_| {});
}

/// `repro --pull` with a remote that cannot be reached: the stages run, and one
/// warning says why; the remote is not asked again for each later stage.
#[test]
fn repro_pull_from_a_remote_that_is_down_runs_the_stages_and_says_why() {
    let env = with_remote_down();
    common::write_copy_chain(&env, "a\n");
    let r = env.dvt(&["repro", "--pull"]).ok();
    assert_eq!(env.read("two.txt"), b"a\n");
    assert_eq!(
        r.stderr
            .matches("the remote's run cache could not be read, so this and later stages it may hold run: remote `s3`")
            .count(),
        1,
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("Running stage `one` (") && r.stderr.contains("Connection refused"),
        "{}",
        r.stderr
    );
}

#[test]
fn repro_pull_says_the_remote_is_down_even_when_a_stage_then_fails() {
    let env = with_remote_down();
    env.write("in.txt", "a\n");
    env.write(
        "dvt.toml",
        r#"[stages.one]
cmd = "exit 3"
deps = ["in.txt"]
outs = ["one.txt"]
"#,
    );
    let r = env.dvt(&["repro", "--pull"]).fails();
    assert!(r.stderr.contains("stage `one` failed"), "{}", r.stderr);
    assert!(
        r.stderr.contains("the remote's run cache could not be read") && r.stderr.contains("Connection refused"),
        "{}",
        r.stderr
    );
}

#[test]
fn run_cache_push_and_pull_through_s3() {
    let Some(endpoint) = server("DVT_TEST_S3_ENDPOINT") else {
        return;
    };
    run_cache_round_trip(&s3_repo(&endpoint), s3_secret);
}

#[test]
fn run_cache_push_and_pull_through_azurite() {
    let Some(endpoint) = server("DVT_TEST_AZURE_ENDPOINT") else {
        return;
    };
    run_cache_round_trip(&azure_repo(&endpoint), azure_key);
}

#[test]
fn run_cache_push_and_pull_through_webdav() {
    let Some(url) = server("DVT_TEST_WEBDAV_URL") else {
        return;
    };
    run_cache_round_trip(&webdav_repo(&url), |_| {});
}

/// A repo whose default remote (S3, no retries) is on a port where nothing listens.
fn with_remote_down() -> TestEnv {
    let env = TestEnv::new();
    s3_remote(&env, "http://127.0.0.1:1", "bucket");
    env.dvt(&["remote", "modify", "s3", "retries", "0"]).ok();
    env
}

fn s3_remote(env: &TestEnv, endpoint: &str, bucket: &str) {
    env.dvt(&["remote", "add", "-d", "s3", &format!("s3://{bucket}/project/data")])
        .ok();
    env.dvt(&["remote", "modify", "s3", "endpointurl", endpoint]).ok();
    env.dvt(&["remote", "modify", "s3", "access_key_id", "testing"]).ok();
    s3_secret(env);
}

/// Remote `name` at `url` on the S3 server (not the default), with its keys.
fn s3_named_remote(env: &TestEnv, name: &str, url: &str, endpoint: &str) {
    env.dvt(&["remote", "add", name, url]).ok();
    env.dvt(&["remote", "modify", name, "endpointurl", endpoint]).ok();
    env.dvt(&["remote", "modify", name, "access_key_id", "testing"]).ok();
    env.dvt(&["remote", "modify", name, "secret_access_key", "testing-secret"])
        .ok();
}

/// A new repository whose default remote is a new bucket on the S3 server.
fn s3_repo(endpoint: &str) -> TestEnv {
    let a = TestEnv::new();
    let bucket = new_bucket(&a, endpoint);
    s3_remote(&a, endpoint, &bucket);
    a
}

/// A new, empty bucket on the S3 server; its name.
fn new_bucket(env: &TestEnv, endpoint: &str) -> String {
    let bucket = unique("dvt");
    env.run("curl", &["-fsS", "-X", "PUT", &format!("{endpoint}/{bucket}")])
        .ok();
    bucket
}

/// `cmd` with none of this machine's AWS settings: what the test writes is
/// all there is (and the instance metadata server is a port nothing
/// listens on).
fn without_aws_env(cmd: &mut Command) -> &mut Command {
    for var in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_CONFIG_FILE",
        "AWS_SHARED_CREDENTIALS_FILE",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("AWS_METADATA_ENDPOINT", "http://127.0.0.1:1")
}

/// A new repository whose default remote is a directory beside it, and that directory.
fn dir_repo() -> (TestEnv, PathBuf) {
    let a = TestEnv::new();
    let store = a.root.parent().unwrap().join("store");
    a.dvt(&["remote", "add", "-d", "store", store.to_str().unwrap()]).ok();
    (a, store)
}

/// `git clone` of an S3 repository, with the secret its config does not commit.
fn s3_clone(a: &TestEnv) -> TestEnv {
    let b = a.clone_repo();
    s3_secret(&b);
    b
}

fn s3_secret(env: &TestEnv) {
    env.dvt(&["remote", "modify", "s3", "secret_access_key", "testing-secret"])
        .ok();
}

#[test]
fn s3_round_trip_with_moto() {
    let Some(endpoint) = server("DVT_TEST_S3_ENDPOINT") else {
        return;
    };
    round_trip(&s3_repo(&endpoint), s3_secret);
}

/// A bucket published for anyone to read (an S3 website, a public bucket, a
/// CDN in front of one): a clone with no credentials pulls over plain HTTP(S)
/// from the bucket's URL, as from DVC's `http` remote. S3 answers WebDAV's
/// PROPFIND with 405, so dvt reads it through the `packs/list` the push wrote.
#[test]
fn s3_bucket_read_without_credentials_over_https() {
    let Some(endpoint) = server("DVT_TEST_S3_ENDPOINT") else {
        return;
    };
    let a = TestEnv::new();
    // Readable by anyone (moto applies a bucket's public-read ACL to its
    // objects; S3 itself wants a bucket policy for that).
    let bucket = unique("public");
    a.run(
        "curl",
        &[
            "-fsS",
            "-X",
            "PUT",
            "-H",
            "x-amz-acl: public-read",
            &format!("{endpoint}/{bucket}"),
        ],
    )
    .ok();
    s3_remote(&a, &endpoint, &bucket);
    a.write("x.csv", "a,b\n1,2\n");
    for i in 0..30 {
        a.write(&format!("records/r{i:02}.json"), format!("{{\"id\": {i}}}\n"));
    }
    a.dvt(&["add", "x.csv", "records"]).ok();
    a.commit("data");
    a.dvt(&["push"]).ok();
    // No secret in this clone: the bucket's URL, read as a web server.
    let b = a.clone_repo();
    b.dvt(&[
        "remote",
        "add",
        "--local",
        "public",
        &format!("{endpoint}/{bucket}/project/data"),
    ])
    .ok();
    b.dvt(&["pull", "-r", "public"]).ok();
    assert_eq!(b.read("records/r29.json"), b"{\"id\": 29}\n");
    assert_eq!(b.read("x.csv"), b"a,b\n1,2\n");
}

/// Server-side encryption as the remote's options say, under DVC's names:
/// every object (packs, their indexes, a big object sent in parts) is
/// uploaded with SSE-KMS and the key asked for, which a bucket policy that
/// refuses unencrypted uploads wants; `sse = AES256` for SSE-S3; a clone
/// pulls every byte; wrong settings are one clear line each. (moto accepts
/// SSE-C but neither keeps nor checks the key: that a read needs it is
/// object_store's, untested here.)
#[test]
fn s3_uploads_are_encrypted_as_the_remote_says() {
    let Some(endpoint) = server("DVT_TEST_S3_ENDPOINT") else {
        return;
    };
    let a = s3_repo(&endpoint);
    a.write("model.bin", noise(9 * 1024 * 1024, 3));
    a.write("data/a.csv", "a,b\n1,2\n");
    a.write("data/b.csv", "a,b\n3,4\n");
    a.dvt(&["add", "model.bin", "data"]).ok();
    a.dvt(&["remote", "modify", "s3", "sse_kms_key_id", "alias/dvt-data"])
        .ok();
    a.dvt(&["push"]).ok();
    let sign = [
        "--aws-sigv4",
        "aws:amz:us-east-1:s3",
        "--user",
        "testing:testing-secret",
    ];
    let url = a.dvt(&["remote", "list", "--json"]).ok().json()[0]["url"]
        .as_str()
        .unwrap()
        .to_string();
    let (bucket, prefix) = url.trim_start_matches("s3://").split_once('/').unwrap();
    let headers_of_every_object = |prefix: &str| -> Vec<String> {
        let listing = a.run(
            "curl",
            &[
                &["-fsS", &format!("{endpoint}/{bucket}?list-type=2&prefix={prefix}/")][..],
                &sign,
            ]
            .concat(),
        );
        let keys: Vec<&str> = listing
            .stdout
            .split("<Key>")
            .skip(1)
            .map(|k| k.split('<').next().unwrap())
            .collect();
        assert!(keys.len() >= 4, "{}", listing.stdout);
        keys.iter()
            .map(|k| {
                a.run(
                    "curl",
                    &[&["-fsSI", &format!("{endpoint}/{bucket}/{k}")][..], &sign].concat(),
                )
                .stdout
            })
            .collect()
    };
    for head in headers_of_every_object(prefix) {
        assert!(head.contains("x-amz-server-side-encryption: aws:kms"), "{head}");
        assert!(
            head.contains("x-amz-server-side-encryption-aws-kms-key-id: alias/dvt-data"),
            "{head}"
        );
    }
    a.commit("data");
    let b = s3_clone(&a);
    b.dvt(&["pull"]).ok();
    assert!(a.read("model.bin") == b.read("model.bin") && a.read("data/b.csv") == b.read("data/b.csv"));

    // SSE-S3, to another prefix.
    a.dvt(&["remote", "modify", "s3", "url", &format!("s3://{bucket}/aes")])
        .ok();
    a.dvt(&["remote", "modify", "s3", "--unset", "sse_kms_key_id"]).ok();
    a.dvt(&["remote", "modify", "s3", "sse", "AES256"]).ok();
    a.dvt(&["push"]).ok();
    for head in headers_of_every_object("aes") {
        assert!(head.contains("x-amz-server-side-encryption: AES256"), "{head}");
    }

    // Wrong settings: one line naming the remote and what is wrong.
    let refused = |key: &str, value: &str, says: &str| {
        a.dvt(&["remote", "modify", "s3", key, value]).ok();
        let r = a.dvt(&["push"]).fails();
        assert!(
            r.stderr.starts_with("error: remote `s3`: ") && r.stderr.contains(says),
            "{}",
            r.stderr
        );
    };
    refused("sse", "rot13", "S3 takes `AES256`, `aws:kms` or `aws:kms:dsse`");
    a.dvt(&["remote", "modify", "s3", "sse", "AES256"]).ok();
    refused("sse_kms_key_id", "alias/x", "`sse_kms_key_id` needs `sse` = `aws:kms`");
    a.dvt(&["remote", "modify", "s3", "--unset", "sse"]).ok();
    refused("sse_customer_key", "c2VjcmV0", "exclude each other");
    let shown = a.dvt(&["config", "--list"]).ok().stdout;
    assert!(
        !shown.contains("c2VjcmV0") && shown.contains("sse_customer_key"),
        "{shown}"
    );
}

#[test]
fn s3_clone_without_the_secret_is_told_how_to_set_it() {
    let Some(endpoint) = server("DVT_TEST_S3_ENDPOINT") else {
        return;
    };
    let a = s3_repo(&endpoint);
    a.write("data.csv", "a,b\n1,2\n");
    a.dvt(&["add", "data.csv"]).ok();
    a.dvt(&["push"]).ok();
    a.commit("data");
    // The key id is in the committed config; the secret is not.
    let b = a.clone_repo();
    let r = b.dvt(&["pull"]).fails();
    assert!(
        r.stderr
            .contains("`access_key_id` is set but `secret_access_key` is not")
            && r.stderr.contains("`dvt remote modify s3 secret_access_key …`"),
        "{}",
        r.stderr
    );
    assert!(!b.exists("data.csv"));
    s3_secret(&b);
    b.dvt(&["pull"]).ok();
    assert_eq!(b.read("data.csv"), b"a,b\n1,2\n");
}

fn azure_remote(env: &TestEnv, endpoint: &str, container: &str) {
    env.dvt(&["remote", "add", "-d", "az", &format!("az://{container}/team/project")])
        .ok();
    env.dvt(&["remote", "modify", "az", "endpointurl", endpoint]).ok();
    env.dvt(&["remote", "modify", "az", "account_name", "devstoreaccount1"])
        .ok();
    env.dvt(&["remote", "modify", "az", "account_key", AZURITE_KEY]).ok();
}

fn azure_container(env: &TestEnv, endpoint: &str) -> String {
    let helper = server("DVT_TEST_AZURE_HELPER").unwrap();
    let container = unique("dvt");
    env.run("python3", &[&helper, endpoint, &container]).ok();
    container
}

#[test]
fn azure_round_trip_with_azurite() {
    let Some(endpoint) = server("DVT_TEST_AZURE_ENDPOINT") else {
        return;
    };
    round_trip(&azure_repo(&endpoint), azure_key);
}

/// A new repository whose default remote is a new container on Azurite.
fn azure_repo(endpoint: &str) -> TestEnv {
    let a = TestEnv::new();
    let container = azure_container(&a, endpoint);
    azure_remote(&a, endpoint, &container);
    a
}

/// A new repository whose default remote `dav` is a new prefix of the WebDAV
/// server at `url`.
fn webdav_repo(url: &str) -> TestEnv {
    let a = TestEnv::new();
    a.dvt(&["remote", "add", "-d", "dav", &format!("{url}/{}", unique("dvt"))])
        .ok();
    a
}

/// The key a clone of an [`azure_repo`] needs (its config does not commit it).
fn azure_key(b: &TestEnv) {
    b.dvt(&["remote", "modify", "az", "account_key", AZURITE_KEY]).ok();
}

#[test]
fn webdav_round_trip_with_rclone() {
    let Some(url) = server("DVT_TEST_WEBDAV_URL") else {
        return;
    };
    let a = TestEnv::new();
    a.dvt(&[
        "remote",
        "add",
        "-d",
        "dav",
        &format!("{url}/{}/nested/prefix", unique("dvt")),
    ])
    .ok();
    round_trip(&a, |_| {});
}

/// A WebDAV server that wants a user and password (HTTP basic authentication),
/// configured under DVC's option names; the password stays out of the committed
/// config and out of every message.
#[test]
fn webdav_with_a_user_and_password() {
    if server("DVT_TEST_WEBDAV_URL").is_none() {
        return;
    }
    let served = tempfile::tempdir().unwrap();
    let port = free_port();
    let password = "s3cret-Pa55word";
    let dav = start_webdav(served.path(), port, &["--user", "alice", "--pass", password]);
    let a = TestEnv::new();
    let r = refused_push(&a, &format!("http://127.0.0.1:{port}/data"));
    assert!(r.stderr.lines().next().unwrap().contains("401"), "{}", r.stderr);

    a.dvt(&["remote", "modify", "dav", "user", "alice"]).ok();
    a.dvt(&["remote", "modify", "dav", "password", "wrong-password"]).ok();
    let r = a.dvt(&["push"]).fails();
    assert!(r.stderr.lines().next().unwrap().contains("401"), "{}", r.stderr);
    assert!(!r.stderr.contains("wrong-password"), "secret leaked: {}", r.stderr);
    a.dvt(&["remote", "modify", "dav", "password", password]).ok();
    assert!(
        !String::from_utf8(a.read(".dvt/config.toml"))
            .unwrap()
            .contains(password)
    );
    assert!(
        String::from_utf8(a.read(".dvt/config.local.toml"))
            .unwrap()
            .contains(password)
    );
    let r = a.dvt(&["remote", "list", "--json"]).ok();
    assert!(!r.stdout.contains(password) && r.stdout.contains("***"), "{}", r.stdout);
    a.dvt(&["remove", "x.csv"]).ok();

    // round_trip adds data, pushes it, and pulls it into a clone, which needs
    // the password again (config.local.toml is not committed).
    round_trip(&a, |b| {
        let r = b.dvt(&["fetch"]).fails();
        assert!(r.stderr.contains("401"), "{}", r.stderr);
        b.dvt(&["remote", "modify", "dav", "user", "alice"]).ok();
        b.dvt(&["remote", "modify", "dav", "password", password]).ok();
    });
    // DVC's `auth = basic` and `ask_password`: asked on the terminal, never stored.
    let other = format!("http://127.0.0.1:{port}/other");
    a.dvt(&["remote", "add", "asked", &other]).ok();
    for (k, v) in [("user", "alice"), ("auth", "basic"), ("ask_password", "true")] {
        a.dvt(&["remote", "modify", "asked", k, v]).ok();
    }
    let shown = on_terminal(
        &a,
        &["push", "-r", "asked"],
        &[(&format!("Password for alice at {other}: "), password)],
    );
    let lines: Vec<&str> = shown.lines().collect();
    assert_eq!(
        lines[..2],
        [
            "1 error: remote `asked`: `ask_password` is set, but there is no terminal to ask on: set `password` instead",
            &format!("0 ['Password for alice at {other}: '] []"),
        ],
        "{shown}"
    );
    assert!(
        lines[2].starts_with("pushed ") && lines[2].ends_with("to `asked`; 0 already there"),
        "{shown}"
    );
    assert!(
        !shown.contains(password)
            && !String::from_utf8(a.read(".dvt/config.toml"))
                .unwrap()
                .contains(password)
    );
    a.dvt(&["remote", "modify", "asked", "auth", "digest"]).ok();
    let r = a.dvt(&["push", "-r", "asked"]).fails();
    assert!(
        r.stderr.contains("HTTP digest authentication is not supported"),
        "{}",
        r.stderr
    );
    let r = a.dvt(&["remote", "modify", "asked", "auth", "ntlm"]).fails();
    assert!(
        r.stderr
            .contains("`auth` must be `basic` or `custom` (as DVC's), not `ntlm`"),
        "{}",
        r.stderr
    );
    let r = a.dvt(&["remote", "modify", "asked", "read_timeout", "60"]).fails();
    assert!(r.stderr.contains("set `timeout` (seconds) instead"), "{}", r.stderr);

    a.dvt(&["remote", "modify", "dav", "--unset", "user"]).ok();
    let r = a.dvt(&["push"]).fails();
    assert!(
        r.stderr
            .contains("remote `dav`: `password` needs `user` (or `custom_auth_header`)"),
        "{}",
        r.stderr
    );
    drop(dav);
}

/// Adds remote `dav` at `url` to `a` and one file; a push must fail with a first
/// line that names the remote. Returns that push.
fn refused_push(a: &TestEnv, url: &str) -> common::Run {
    a.dvt(&["remote", "add", "-d", "dav", url]).ok();
    a.write("x.csv", "a,b\n1,2\n");
    a.dvt(&["add", "x.csv"]).ok();
    let r = a.dvt(&["push"]).fails();
    assert!(
        r.stderr.lines().next().unwrap().contains("remote `dav`"),
        "{}",
        r.stderr
    );
    r
}

/// An HTTPS WebDAV server whose certificate a private CA signed: refused by
/// default with one line that says why, then trusted through DVC's `ssl_verify`,
/// as a CA bundle (a path relative to the repository) or `false`.
#[test]
fn https_remote_with_a_private_ca() {
    if server("DVT_TEST_WEBDAV_URL").is_none() {
        return;
    }
    let tls = tempfile::tempdir().unwrap();
    let served = tempfile::tempdir().unwrap();
    let a = TestEnv::new();
    let PrivateCa { ca, cert, key } = PrivateCa::make(&a, tls.path());
    let port = free_port();
    let dav = start_webdav(served.path(), port, &["--cert", &cert, "--key", &key]);
    let r = refused_push(&a, &format!("https://127.0.0.1:{port}/data"));
    assert!(r.stderr.lines().next().unwrap().contains("certificate"), "{}", r.stderr);
    assert!(
        r.stderr.contains("dvt remote modify dav ssl_verify PATH/TO/ca.pem"),
        "{}",
        r.stderr
    );

    a.dvt(&["remote", "modify", "dav", "ssl_verify", "ca/missing.pem"]).ok();
    let r = a.dvt(&["push"]).fails();
    assert!(
        r.stderr
            .contains("remote `dav`: `ssl_verify` names a CA bundle that cannot be read"),
        "{}",
        r.stderr
    );
    std::fs::create_dir_all(a.path("ca")).unwrap();
    std::fs::copy(&ca, a.path("ca/team-ca.pem")).unwrap();
    a.dvt(&["remote", "modify", "dav", "ssl_verify", "ca/team-ca.pem"]).ok();
    a.dvt_in(&a.path("ca"), &["push"]).ok();
    let r = a.dvt(&["status", "--remote"]).ok();
    assert!(r.stdout.contains("in sync (1 object)"), "{}", r.stdout);

    a.dvt(&["remote", "modify", "dav", "ssl_verify", "false"]).ok();
    std::fs::remove_file(a.path("x.csv")).unwrap();
    std::fs::remove_dir_all(a.path(".dvt/cache")).unwrap();
    a.dvt(&["pull"]).ok();
    assert_eq!(a.read("x.csv"), b"a,b\n1,2\n");
    drop(dav);
}

/// fake-gcs-server answers object_store's reads but not its writes: objects are put
/// there through its JSON API, then B reads them with dvt.
#[test]
fn gcs_reads_with_fake_gcs_server() {
    let Some(endpoint) = server("DVT_TEST_GCS_ENDPOINT") else {
        return;
    };
    let (a, store) = dir_repo();
    // The directory remote's files (small objects in a pack) become the bucket's.
    let n = populate(&a);
    a.dvt(&["push"]).ok();
    let bucket = unique("dvt");
    a.run(
        "curl",
        &[
            "-fsS",
            "-X",
            "POST",
            &format!("{endpoint}/storage/v1/b"),
            "-H",
            "Content-Type: application/json",
            "-d",
            &format!("{{\"name\":\"{bucket}\"}}"),
        ],
    )
    .ok();
    for file in walk(&store).into_iter().filter(|p| p.is_file()) {
        let key = file.strip_prefix(&store).unwrap().to_str().unwrap();
        a.run(
            "curl",
            &[
                "-fsS",
                "-X",
                "POST",
                "--data-binary",
                &format!("@{}", file.display()),
                &format!("{endpoint}/upload/storage/v1/b/{bucket}/o?uploadType=media&name=proj/{key}"),
            ],
        )
        .ok();
    }
    a.dvt(&["remote", "add", "-d", "gcs", &format!("gs://{bucket}/proj")])
        .ok();
    a.commit("data");

    let b = a.clone_repo();
    let key = b.root.parent().unwrap().join("gcs-key.json");
    std::fs::write(
        &key,
        r#"{"private_key":"","private_key_id":"","client_email":"test@example.invalid","disable_oauth":true}"#,
    )
    .unwrap();
    b.dvt(&[
        "remote",
        "modify",
        "gcs",
        "credentialpath",
        key.to_str().unwrap(),
        "--local",
    ])
    .ok();
    // The emulator's URL as DVC's `endpointurl` (`http://` allows plain HTTP).
    b.dvt(&["remote", "modify", "gcs", "endpointurl", &endpoint, "--local"])
        .ok();
    let r = b.dvt(&["pull"]).ok();
    assert!(r.stdout.contains(&format!("fetched {n} objects")), "{}", r.stdout);
    for f in DATA_FILES {
        assert!(a.read(f) == b.read(f), "{f} differs after pull from GCS");
    }
    let r = b.dvt(&["status", "--remote"]).ok();
    assert!(r.stdout.contains(&format!("in sync ({n} objects)")), "{}", r.stdout);
    let r = b.dvt(&["push"]).ok();
    assert!(r.stdout.contains("Nothing to push"), "{}", r.stdout);
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// rclone's WebDAV server on `port`, serving `dir`, with `extra` arguments.
fn start_webdav(dir: &Path, port: u16, extra: &[&str]) -> KillOnDrop {
    let mut c = Command::new("rclone");
    c.args(["serve", "webdav"]).arg(dir);
    start_rclone(c.args(extra), port)
}

/// Starts `rclone` as `command` says, serving on `port` of 127.0.0.1, and
/// waits until the port answers. Dropping what it returns stops the server.
fn start_rclone(command: &mut Command, port: u16) -> KillOnDrop {
    serve(command.args(["--addr", &format!("127.0.0.1:{port}")]), port)
}

/// Starts `command`, a server that listens on `port` of 127.0.0.1 (its
/// output discarded), and waits until the port answers. Dropping what it
/// returns stops the server.
fn serve(command: &mut Command, port: u16) -> KillOnDrop {
    let what = command.get_program().to_string_lossy().into_owned();
    let child = command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    let server = KillOnDrop(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{what} did not start on port {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
    server
}

/// The names of the packs in `dir/packs` (a remote's), sorted.
fn packs_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join("packs"))
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name();
            name.to_str()?.strip_suffix(".idx").map(str::to_string)
        })
        .collect();
    names.sort();
    names
}

/// A git clone of `a` with remote `name` at `url`, in this clone only.
fn clone_reading(a: &TestEnv, name: &str, url: &str) -> TestEnv {
    let b = a.clone_repo();
    b.dvt(&["remote", "add", "--local", name, url]).ok();
    b
}

/// Waits for `command`, which must fail (exit 1) with an error naming remote
/// `remote`; returns its stderr.
fn failed_on(command: Child, remote: &str) -> String {
    let out = command.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "it should fail: {stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(stderr.contains(&format!("remote `{remote}`")), "{stderr}");
    stderr
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    walk(dir).into_iter().filter(|p| p.is_file()).collect()
}

/// Every object the remote (a directory, or what a server keeps in one) has is
/// whole: byte-identical to the cache's, or, for one the cache never held (sent
/// by `--to-remote`), decoding to content with its id.
fn assert_remote_objects_whole(a: &TestEnv, remote: &Path) {
    let store = Store::at(remote);
    for id in store.ids() {
        let whole = match a.has_object(&id) {
            true => store.stored(&id) == a.stored(&id),
            false => store.intact(&id),
        };
        assert!(whole, "remote object {id} is partial or wrong");
    }
}

/// A pack index bigger than any can be (a broken or hostile server; here a
/// sparse file of 2 GiB) is not read: a warning names it, its objects count
/// as missing, and the rest of the remote is read as usual.
#[test]
fn an_index_bigger_than_any_pack_needs_is_not_read() {
    if server("DVT_TEST_WEBDAV_URL").is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    // No directory cache: the file made below is listed at once.
    let _dav = start_webdav(dir.path(), port, &["--dir-cache-time", "0s"]);
    let a = TestEnv::new();
    a.dvt(&["remote", "add", "-d", "dav", &format!("http://127.0.0.1:{port}/store")])
        .ok();
    a.write("x.csv", "a,b\n1,2\n");
    a.dvt(&["add", "x.csv"]).ok();
    a.dvt(&["push"]).ok();
    a.commit("data");
    let huge = dir.path().join(format!("store/packs/{}.idx", "ab".repeat(32)));
    std::fs::File::create(&huge).unwrap().set_len(2 << 30).unwrap();
    let b = a.clone_repo();
    let r = b.dvt(&["pull"]).ok();
    assert_eq!(
        r.stderr
            .matches("holds 2147483648 bytes, more than a pack index can")
            .count(),
        1,
        "{}",
        r.stderr
    );
    assert_eq!(b.read("x.csv"), b"a,b\n1,2\n");
}

/// `packs/list` cannot be written (here a directory stands in its place): a
/// push that sent nothing succeeds with a warning naming the remote and the
/// file (the library emits it; the CLI prints it); a push that sent packs fails,
/// since readers over plain HTTP would not find them.
#[test]
fn a_push_that_cannot_write_the_pack_list_warns_or_fails() {
    let store = tempfile::tempdir().unwrap();
    let a = TestEnv::new();
    a.dvt(&["remote", "add", "-d", "dir", store.path().to_str().unwrap()])
        .ok();
    a.write("x.csv", "a,b\n1,2\n");
    a.dvt(&["add", "x.csv"]).ok();
    a.dvt(&["push"]).ok();
    let list = store.path().join("packs/list");
    std::fs::remove_file(&list).unwrap();
    std::fs::create_dir(&list).unwrap();
    let r = a.dvt(&["push", "-q"]).ok();
    assert_eq!(
        r.stderr
            .lines()
            .filter(|l| l.starts_with("warning: remote `dir`: cannot update `packs/list`"))
            .count(),
        1,
        "{}",
        r.stderr
    );
    a.write("y.csv", "c\n");
    a.dvt(&["add", "y.csv"]).ok();
    let r = a.dvt(&["push"]).fails();
    assert!(r.stderr.contains("packs/list"), "{}", r.stderr);
    std::fs::remove_dir(&list).unwrap();
    a.dvt(&["push"]).ok();
    assert!(list.is_file());
}

/// A plain web server (no WebDAV) serving a copy of a remote, as teams publish
/// data read-only (nginx, a CDN, `rclone serve http`): `pull` reads it through
/// the `packs/list` every push writes, and HEAD and ranged GET requests;
/// `push` and a copy without the list get one line each, with no hint to check
/// credentials or to try again. Before, every command failed with the server's
/// "405 Method Not Allowed".
#[test]
fn a_plain_web_server_serves_pulls_of_a_copied_remote() {
    if server("DVT_TEST_WEBDAV_URL").is_none() {
        return;
    }
    let served = tempfile::tempdir().unwrap();
    let store = served.path().join("store");
    let a = TestEnv::new();
    a.dvt(&["remote", "add", "-d", "dir", store.to_str().unwrap()]).ok();
    a.write("x.csv", "a,b\n1,2\n");
    for i in 0..40 {
        a.write(&format!("records/r{i:02}.json"), format!("{{\"id\": {i}}}\n"));
    }
    // Bigger than a packed object: a file of its own on the remote.
    let big: Vec<u8> = (0..5u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    a.write("model.bin", &big);
    a.dvt(&["add", "x.csv", "records", "model.bin"]).ok();
    a.commit("data");
    a.dvt(&["push"]).ok();
    // The list names exactly the packs there, sorted.
    let listed_in = |dir: &Path| {
        let names = packs_in(dir);
        assert!(!names.is_empty());
        names.iter().map(|p| format!("{p}\n")).collect::<String>()
    };
    let list = std::fs::read_to_string(store.join("packs/list")).unwrap();
    assert_eq!(list, listed_in(&store));
    // An object store's too (WebDAV here), written by the push that packs.
    let dav_dir = tempfile::tempdir().unwrap();
    let dav_port = free_port();
    let dav = start_webdav(dav_dir.path(), dav_port, &[]);
    a.dvt(&["remote", "add", "dav", &format!("http://127.0.0.1:{dav_port}/store")])
        .ok();
    a.dvt(&["push", "-r", "dav"]).ok();
    let dav_store = dav_dir.path().join("store");
    assert_eq!(
        std::fs::read_to_string(dav_store.join("packs/list")).unwrap(),
        listed_in(&dav_store)
    );
    drop(dav);

    let port = free_port();
    // Sizes not cached: the list is rewritten below while it serves.
    let _web = start_rclone(
        Command::new("rclone")
            .args(["serve", "http", "--dir-cache-time", "0s"])
            .arg(served.path()),
        port,
    );
    let url = format!("http://127.0.0.1:{port}/store");
    let b = clone_reading(&a, "web", &url);
    b.dvt(&["pull", "-r", "web"]).ok();
    assert_eq!(b.read("model.bin"), big);
    assert_eq!(b.read("records/r07.json"), b"{\"id\": 7}\n");
    assert_eq!(b.read("x.csv"), b"a,b\n1,2\n");
    b.dvt(&["status", "--remote", "-r", "web"]).ok();

    // Read-only: one line, no hint.
    b.write("new.csv", "c\n3\n");
    b.dvt(&["add", "new.csv"]).ok();
    let r = b.dvt(&["push", "-r", "web"]).fails();
    assert!(
        r.stderr.contains(&format!(
            "remote `web`: `{url}` is a plain web server (it does not take WebDAV requests): dvt reads from it"
        )) && r.stderr.contains("push to the store it serves a copy of")
            && !r.stderr.contains("hint:"),
        "{}",
        r.stderr
    );
    let r = b.dvt(&["gc", "-r", "web", "-f"]).fails();
    assert!(
        r.stderr
            .contains("the server does not take WebDAV requests (PROPFIND: HTTP 405): it is a plain web server")
            && !r.stderr.contains("hint:"),
        "{}",
        r.stderr
    );

    // A list naming a pack that is gone (a stale copy), and a line that is
    // no pack's name: the rest is read.
    std::fs::write(
        store.join("packs/list"),
        format!("{list}{}\nnot a pack\n", "f".repeat(64)),
    )
    .unwrap();
    let e = clone_reading(&a, "web", &url);
    e.dvt(&["pull", "-r", "web"]).ok();
    assert_eq!(e.read("records/r39.json"), b"{\"id\": 39}\n");

    // A copy older than the store it copies: its list lacks the newest pack.
    a.write("late.csv", "l\n1\n");
    a.dvt(&["add", "late.csv"]).ok();
    a.commit("late");
    a.dvt(&["push"]).ok();
    std::fs::write(store.join("packs/list"), &list).unwrap();
    let f = clone_reading(&a, "web", &url);
    let r = f.dvt(&["pull", "-r", "web"]).fails();
    assert!(
        r.stderr.contains("remote `web` does not have object")
            && r.stderr
                .contains("hint: `web` is a web server serving a copy of another store"),
        "{}",
        r.stderr
    );

    // A copy made before pushes wrote the list.
    std::fs::remove_file(store.join("packs/list")).unwrap();
    let c = clone_reading(&a, "web", &url);
    let r = c.dvt(&["fetch", "-r", "web"]).fails();
    assert!(
        r.stderr.contains("has no `packs/list`, which says what packs it has") && !r.stderr.contains("hint:"),
        "{}",
        r.stderr
    );
    // The next push to the store writes it again.
    a.dvt(&["push"]).ok();
    assert_eq!(
        std::fs::read_to_string(store.join("packs/list")).unwrap(),
        listed_in(&store)
    );
    c.dvt(&["pull", "-r", "web"]).ok();
    assert_eq!(c.read("model.bin"), big);

    // A list bigger than a million packs' names is not read.
    std::fs::File::create(store.join("packs/list"))
        .unwrap()
        .set_len(65 << 20)
        .unwrap();
    let g = clone_reading(&a, "web", &url);
    let r = g.dvt(&["fetch", "-r", "web"]).fails();
    assert!(
        r.stderr.contains("holds 68157440 bytes, more than a list of packs can"),
        "{}",
        r.stderr
    );
    a.dvt(&["push"]).ok();

    // Python's http.server answers a ranged GET with the whole file.
    let port = free_port();
    let _py = serve(
        Command::new("python3")
            .args(["-m", "http.server", &port.to_string(), "--bind", "127.0.0.1"])
            .current_dir(served.path()),
        port,
    );
    let d = clone_reading(&a, "py", &format!("http://127.0.0.1:{port}/store"));
    let r = d.dvt(&["fetch", "-r", "py", "records"]).fails();
    assert!(
        r.stderr
            .contains("the server does not answer range requests (HTTP `Range`)")
            && r.stderr.contains("Python's `http.server` does not")
            && !r.stderr.contains("hint:"),
        "{}",
        r.stderr
    );
}

/// Pushes at the same moment from several clones to one remote (WebDAV): the
/// `packs/list` left behind names every pack there. (Each push checks the
/// listing again after writing the list: without that, a push that listed
/// before another's pack arrived could write its list last.)
#[test]
fn concurrent_pushes_leave_a_complete_pack_list() {
    if server("DVT_TEST_WEBDAV_URL").is_none() {
        return;
    }
    let served = tempfile::tempdir().unwrap();
    let port = free_port();
    let _dav = start_webdav(served.path(), port, &[]);
    let remote = format!("http://127.0.0.1:{port}/store");
    let repos: Vec<TestEnv> = (0..4)
        .map(|i| {
            let r = TestEnv::new();
            r.dvt(&["remote", "add", "-d", "dav", &remote]).ok();
            r.write(&format!("part{i}/seed.txt"), format!("{i}\n"));
            r
        })
        .collect();
    for round in 0..3 {
        for (i, r) in repos.iter().enumerate() {
            for f in 0..20 {
                r.write(&format!("part{i}/r{round}-{f}.txt"), format!("{i} {round} {f}\n"));
            }
            r.dvt(&["add", &format!("part{i}")]).ok();
        }
        let pushes: Vec<_> = repos.iter().map(|r| r.dvt_spawn(&["push", "-q"])).collect();
        for p in pushes {
            let out = p.wait_with_output().unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        }
        let store = served.path().join("store");
        let names = packs_in(&store);
        let list = std::fs::read_to_string(store.join("packs/list")).unwrap();
        let listed: Vec<&str> = list.lines().collect();
        assert_eq!(listed, names, "round {round}");
    }
}

/// A CDN in front of a copy answers WebDAV's PROPFIND with 403 ("not
/// configured to allow the HTTP request method"), not 405: the copy's
/// `packs/list` marks it as a plain web server all the same. Without the list
/// the 403 is the error. (Python's server, which ignores ranges, with a
/// remote of loose objects: `pack = false`.)
#[test]
fn a_copy_behind_a_server_that_forbids_propfind_is_read_through_its_list() {
    if server("DVT_TEST_WEBDAV_URL").is_none() {
        return;
    }
    let served = tempfile::tempdir().unwrap();
    let store = served.path().join("store");
    let a = TestEnv::new();
    a.dvt(&["remote", "add", "-d", "dir", store.to_str().unwrap()]).ok();
    a.dvt(&["remote", "modify", "dir", "pack", "false"]).ok();
    a.write("x.csv", "a,b\n1,2\n");
    for i in 0..10 {
        a.write(&format!("records/r{i}.json"), format!("{{\"id\": {i}}}\n"));
    }
    a.dvt(&["add", "x.csv", "records"]).ok();
    a.commit("data");
    a.dvt(&["push"]).ok();
    assert_eq!(std::fs::read_to_string(store.join("packs/list")).unwrap(), "");
    let port = free_port();
    let script = "import http.server, os, sys\n\
        class H(http.server.SimpleHTTPRequestHandler):\n\
        \x20   def do_PROPFIND(self):\n\
        \x20       self.send_error(403, 'This distribution is not configured to allow the HTTP request method')\n\
        os.chdir(sys.argv[2])\n\
        http.server.ThreadingHTTPServer(('127.0.0.1', int(sys.argv[1])), H).serve_forever()\n";
    let _cdn = serve(
        Command::new("python3")
            .args(["-c", script, &port.to_string()])
            .arg(served.path()),
        port,
    );
    let url = format!("http://127.0.0.1:{port}/store");
    let b = clone_reading(&a, "cdn", &url);
    b.dvt(&["pull", "-r", "cdn"]).ok();
    assert_eq!(b.read("records/r9.json"), b"{\"id\": 9}\n");
    let r = b.dvt(&["push", "-r", "cdn"]).fails();
    assert!(r.stderr.contains("is a plain web server"), "{}", r.stderr);

    std::fs::remove_file(store.join("packs/list")).unwrap();
    let c = clone_reading(&a, "cdn", &url);
    c.dvt(&["remote", "modify", "--local", "cdn", "retries", "0"]).ok();
    let r = c.dvt(&["pull", "-r", "cdn"]).fails();
    assert!(r.stderr.contains("403 Forbidden"), "{}", r.stderr);
}

/// The run cache of a copy served by a plain web server: `repro --pull` finds
/// the run it needs by its key (a GET); `fetch --run-cache`, which must list
/// the entries, says in one line that it cannot.
#[test]
fn run_cache_from_a_plain_web_server() {
    if server("DVT_TEST_WEBDAV_URL").is_none() {
        return;
    }
    let served = tempfile::tempdir().unwrap();
    let (a, store) = (TestEnv::new(), served.path().join("store"));
    a.dvt(&["remote", "add", "-d", "dir", store.to_str().unwrap()]).ok();
    write_counted_stage(&a);
    a.write(".gitignore", "/runs.log\n");
    a.dvt(&["repro"]).ok();
    a.write("params.yaml", "lr: 0.2\n");
    a.dvt(&["repro"]).ok();
    a.dvt(&["push", "--run-cache"]).ok();
    a.commit("lr 0.2");
    let port = free_port();
    let _web = start_rclone(Command::new("rclone").args(["serve", "http"]).arg(served.path()), port);
    let url = format!("http://127.0.0.1:{port}/store");
    let c = clone_reading(&a, "web", &url);
    c.dvt(&["remote", "default", "--local", "web"]).ok();
    c.write("params.yaml", "lr: 0.1\n");
    let r = c.dvt(&["repro", "--pull"]).ok();
    assert!(
        r.stdout.contains("restored from the run cache, not run"),
        "{}",
        r.stdout
    );
    assert_eq!(runs(&c), 0, "the stage ran in C");
    assert_eq!(c.read("model.txt"), b"lr: 0.1\n");
    let r = c.dvt(&["fetch", "--run-cache"]).fails();
    assert!(
        r.stderr
            .contains("is a plain web server, whose run cache cannot be listed")
            && !r.stderr.contains("hint:"),
        "{}",
        r.stderr
    );
}

#[test]
fn server_stopped_mid_push_then_next_push_completes() {
    server_stopped_mid_push(false);
}

#[test]
fn server_stopped_mid_push_of_packs_then_next_push_completes() {
    server_stopped_mid_push(true);
}

/// A WebDAV server is stopped while a push uploads objects one by one, or (with
/// `pack`) packs of small objects; what is visible is whole, and the next push
/// finishes the job.
fn server_stopped_mid_push(pack: bool) {
    if server("DVT_TEST_WEBDAV_URL").is_none() {
        return;
    }
    let a = TestEnv::new();
    let files = if pack { 2000 } else { 600 };
    for i in 0..files {
        let body = [format!("{i}\n").into_bytes(), noise(16_384, (i % 251) as u8)].concat();
        a.write(&format!("data/part-{i:04}.bin"), body);
    }
    a.dvt(&["add", "data"]).ok();
    let total = files + 1;
    let served = a.root.parent().unwrap().join("served");
    std::fs::create_dir_all(&served).unwrap();
    let port = free_port();
    let dav = start_webdav(&served, port, &[]);
    a.dvt(&["remote", "add", "-d", "dav", &format!("http://127.0.0.1:{port}/store")])
        .ok();
    a.dvt(&["remote", "modify", "dav", "retries", "1"]).ok();
    a.dvt(&["remote", "modify", "dav", "pack", if pack { "true" } else { "false" }])
        .ok();

    let push = a.dvt_spawn(&["push", "-j", "1"]);
    let store = served.join("store");
    // Objects one by one: some have landed; packs: the first is published.
    let started = || match pack {
        true => files_under(&store.join("packs"))
            .iter()
            .any(|p| p.extension().is_some_and(|e| e == "idx")),
        false => files_under(&store.join("objects")).len() >= 20,
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while !started() {
        assert!(Instant::now() < deadline, "push made no progress");
        std::thread::sleep(Duration::from_millis(2));
    }
    drop(dav);
    let stderr = failed_on(push, "dav");
    assert!(stderr.contains("failed"), "{stderr}");
    let landed = Store::at(&store).ids().len();
    assert!(landed > 0 && landed < total, "landed {landed} of {total}");
    assert_remote_objects_whole(&a, &store);

    // Same directory, same port: the next push uploads only the rest.
    let dav = start_webdav(&served, port, &[]);
    let r = a.dvt(&["push", "--json"]).ok();
    let uploaded = r.json()["uploaded"].as_u64().unwrap() as usize;
    assert_eq!(uploaded, total - landed, "landed before: {landed}");
    assert_eq!(Store::at(&store).ids(), a.object_ids());
    assert_remote_objects_whole(&a, &store);
    a.commit("data");
    let b = a.clone_repo();
    b.dvt(&["pull"]).ok();
    assert!(common::snapshot(&a.path("data")) == common::snapshot(&b.path("data")));
    drop(dav);
}

#[test]
fn corrupt_or_truncated_remote_objects_are_rejected() {
    let (a, store) = dir_repo();
    populate(&a);
    a.dvt(&["push"]).ok();
    a.commit("data");
    let id_of = |pointer: &str| -> String {
        let text = String::from_utf8(a.read(pointer)).unwrap();
        let line = text.lines().find(|l| l.starts_with("id = ")).unwrap();
        line[6..line.len() - 1].to_string()
    };
    let obj = |id: &str| store.join("objects").join(&id[..2]).join(&id[2..]);
    // The model (a streamed download) loses its tail; a manifest gets a flipped byte.
    let model = id_of("model.bin.dvt");
    let f = obj(&model);
    let len = std::fs::metadata(&f).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&f)
        .unwrap()
        .set_len(len - 1000)
        .unwrap();
    let manifest = id_of("data.dvt");
    let mut bytes = std::fs::read(obj(&manifest)).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x20;
    std::fs::write(obj(&manifest), bytes).unwrap();

    let b = a.clone_repo();
    let r = b.dvt(&["pull"]).fails();
    assert!(r.stderr.contains("is corrupt"), "{}", r.stderr);
    assert!(
        r.stderr.contains(&manifest) || r.stderr.contains(&model),
        "{}",
        r.stderr
    );
    // Nothing damaged entered the cache, no temporary file is left, and the
    // workspace was not touched.
    let cache = b.path(".dvt/cache");
    assert!(
        !b.has_object(&model) && !b.has_object(&manifest),
        "a damaged object was stored"
    );
    let left = common::temp_leftovers(&cache);
    assert!(left.is_empty(), "left behind: {left:?}");
    assert!(!b.exists("model.bin") && !b.exists("data"));
    assert_no_pull_leftovers(&b);
    let r = b.dvt(&["fetch", "model.bin"]).fails();
    assert!(r.stderr.contains(&format!("object {model} is corrupt")), "{}", r.stderr);

    // Repair: delete the damaged copies, push again from A, pull in B.
    std::fs::remove_file(obj(&model)).unwrap();
    std::fs::remove_file(obj(&manifest)).unwrap();
    let r = a.dvt(&["push", "--json"]).ok();
    assert_eq!(r.json()["uploaded"], 2);
    b.dvt(&["pull"]).ok();
    for f in DATA_FILES {
        assert!(a.read(f) == b.read(f), "{f} differs after repair");
    }
}

/// `fsck -r` downloads and checks every object on a remote. `--repair` in a
/// repository without the data deletes the damaged copies and withdraws the
/// manifest that lists one (so that a push uploads the directory again); in the
/// repository that has the data it replaces them.
#[test]
fn fsck_remote_finds_damaged_copies_and_repair_withdraws_or_replaces_them() {
    let (a, store) = dir_repo();
    populate(&a);
    a.dvt(&["push"]).ok();
    a.commit("data");
    let r = a.dvt(&["fsck", "-r"]).ok();
    assert!(r.stdout.contains("checked 7 objects on `store`"), "{}", r.stdout);
    assert!(r.stdout.contains("all intact"), "{}", r.stdout);

    // A packed image and the model (a file of its own) are damaged on the remote.
    let img = blake3_hex(&noise(40_001, 2));
    let model = blake3_hex(&noise(10 * 1024 * 1024 + 4321, 99));
    let remote = common::Store::at(&store);
    remote.damage(&img, |b| {
        let n = b.len();
        b[n / 2] ^= 1;
    });
    remote.damage(&model, |b| b.truncate(b.len() - 1000));
    let b = a.clone_repo();
    let r = b.dvt(&["fsck", "-r"]).fails();
    for id in [&img, &model] {
        assert!(r.stdout.contains(&format!("corrupt {id} on `store`")), "{}", r.stdout);
    }
    assert!(r.stderr.contains("--repair"), "{}", r.stderr);

    // B has neither: both are lost, and the manifest listing the image goes too.
    let r = b.dvt(&["fsck", "-r", "--repair", "--json"]).fails().json();
    assert_eq!(r["lost"].as_array().unwrap().len(), 2, "{r}");
    assert_eq!(r["withdrawn"].as_array().unwrap().len(), 1, "{r}");
    assert!(b.dvt(&["fsck", "-r"]).ok().stdout.contains("checked 4 objects"));

    // A's push puts back what was lost, and B pulls every byte.
    let r = a.dvt(&["push", "--json"]).ok().json();
    assert_eq!(r["uploaded"], 3, "{r}");
    b.dvt(&["pull"]).ok();
    for f in DATA_FILES {
        assert!(a.read(f) == b.read(f), "{f} differs after repair");
    }

    // Damaged again: A, which has the data, replaces the copies in place.
    common::Store::at(&store).damage(&img, |b| {
        let n = b.len();
        b[n - 1] ^= 1;
    });
    let r = a.dvt(&["fsck", "-r", "--repair"]).ok();
    assert!(
        r.stdout.contains("replaced 1 damaged object from the cache, 0 lost"),
        "{}",
        r.stdout
    );
    // The manifest that lists the image went off first and came back last.
    let r = a.dvt(&["fsck", "-r"]).ok();
    assert!(
        r.stdout.contains("checked 7 objects") && r.stdout.contains("all intact"),
        "{}",
        r.stdout
    );
}

/// `fsck -r --repair` killed at tenths of its uninterrupted time, each time from a
/// copy of the same damaged remote: no manifest on the remote ever lists a file that
/// is not there (push relies on it), and a push then a second repair finish the job.
#[test]
fn killed_remote_repair_never_leaves_a_manifest_without_its_files() {
    let (a, store) = dir_repo();
    let content = |i: usize| format!("r,{i},{}\n", i * 7).repeat(40);
    for i in 0..600 {
        a.write(&format!("data/f{i:03}.csv"), content(i));
    }
    a.dvt(&["add", "data"]).ok();
    a.dvt(&["push"]).ok();
    let remote = Store::at(&store);
    for i in (0..600).step_by(20) {
        remote.damage(&blake3_hex(content(i).as_bytes()), |b| {
            let n = b.len();
            b[n - 3] ^= 4;
        });
    }
    let damaged_store = a.root.parent().unwrap().join("damaged-store");
    common::copy_tree(&store, &damaged_store);
    let started = Instant::now();
    let r = a.dvt(&["fsck", "-r", "--repair"]).ok();
    assert!(r.stdout.contains("replaced 30 damaged"), "{}", r.stdout);
    let full = started.elapsed();
    for tenth in [1u32, 3, 5, 7, 9] {
        std::fs::remove_dir_all(&store).unwrap();
        common::copy_tree(&damaged_store, &store);
        a.dvt_killed_after(&["fsck", "-r", "--repair"], full * tenth / 10);
        let remote = Store::at(&store);
        for (m, files) in remote.manifests() {
            for f in files {
                assert!(remote.has(&f), "{tenth}/10: manifest {m} lists {f}, which is not there");
            }
        }
        a.dvt(&["push"]).ok();
        a.dvt(&["fsck", "-r", "--repair"]).ok();
        let r = a.dvt(&["fsck", "-r"]).ok();
        assert!(
            r.stdout.contains("checked 601 objects") && r.stdout.contains("all intact"),
            "{tenth}/10: {}",
            r.stdout
        );
    }
}

/// A big object arrives as a run of zstd frames that fetch decodes on several
/// threads: a flipped bit in a frame in the middle of the run is caught, seal or
/// not (fetch never trusts a seal), and nothing of it is kept.
#[test]
fn fetch_rejects_a_big_object_with_a_damaged_middle_frame() {
    let (a, store) = dir_repo();
    let csv: String = noise(10 << 20, 43).iter().map(|b| format!("{b:02x}")).collect();
    a.write("readings.csv", &csv);
    a.dvt(&["add", "readings.csv"]).ok();
    a.dvt(&["push"]).ok();
    a.commit("readings");
    let id = blake3_hex(csv.as_bytes());
    let good = Store::at(&store).stored(&id);
    let mid = good.len() / 2;
    Store::at(&store).damage(&id, |b| b[mid] ^= 0x08);

    let b = a.clone_repo();
    let r = b.dvt(&["pull"]).fails();
    assert!(r.stderr.contains(&format!("object {id} is corrupt")), "{}", r.stderr);
    assert!(!b.has_object(&id) && !b.exists("readings.csv"));
    assert_no_pull_leftovers(&b);
    let left = common::temp_leftovers(&b.path(".dvt/cache"));
    assert!(left.is_empty(), "left behind: {left:?}");
    Store::at(&store).damage(&id, |b| *b = good);
    b.dvt(&["pull"]).ok();
    assert!(b.read("readings.csv") == csv.as_bytes());
}

/// A pull keeps decoded copies of big objects in `.dvt/tmp/pull-PID/` for its
/// checkout; none may outlive the pull.
/// The WebDAV server is stopped while a pull reads a pack (rclone holds it to
/// 2 MiB/s, so the pack takes seconds): the pull fails with one clear line and
/// keeps the objects that arrived whole, the workspace gets nothing, and the
/// next pull, from the server started again, downloads only the rest.
#[test]
fn server_stopped_mid_pull_keeps_what_arrived_and_the_next_pull_completes() {
    if server("DVT_TEST_WEBDAV_URL").is_none() {
        return;
    }
    let a = TestEnv::new();
    let files = 600;
    for i in 0..files {
        a.write(&format!("data/part-{i:04}.bin"), noise(16_384 + i, (i % 251) as u8));
    }
    a.dvt(&["add", "data"]).ok();
    let total = files + 1;
    let served = a.root.parent().unwrap().join("served");
    let port = free_port();
    let dav = start_webdav(&served, port, &[]);
    a.dvt(&["remote", "add", "-d", "dav", &format!("http://127.0.0.1:{port}/store")])
        .ok();
    a.dvt(&["remote", "modify", "dav", "retries", "0"]).ok();
    a.dvt(&["push"]).ok();
    a.commit("data");
    drop(dav);

    let dav = start_webdav(&served, port, &["--bwlimit", "2M"]);
    let b = a.clone_repo();
    let pull = b.dvt_spawn(&["pull", "-j", "1"]);
    std::thread::sleep(Duration::from_millis(2500));
    drop(dav);
    failed_on(pull, "dav");
    let arrived = b.object_ids();
    assert!(
        !arrived.is_empty() && arrived.len() < total,
        "{} of {total} objects arrived",
        arrived.len()
    );
    for id in &arrived {
        assert!(b.store().intact(id), "{id} is damaged in the cache");
    }
    assert!(!b.exists("data"), "the workspace got part of the data");
    assert_no_pull_leftovers(&b);
    assert!(common::temp_leftovers(&b.path(".dvt/cache")).is_empty());

    let dav = start_webdav(&served, port, &[]);
    let r = b.dvt(&["pull", "--json"]).ok().json();
    assert_eq!(r["fetch"]["downloaded"], total - arrived.len(), "{r}");
    assert!(common::snapshot(&a.path("data")) == common::snapshot(&b.path("data")));
    drop(dav);
}

fn assert_no_pull_leftovers(env: &TestEnv) {
    let tmp = env.path(".dvt/tmp");
    for e in std::fs::read_dir(&tmp).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        assert!(!name.starts_with("pull-"), "left behind: .dvt/tmp/{name}");
    }
}

/// Big objects (over the 4 MiB pack limit) are decoded once during a pull, while
/// they are verified, and that copy becomes the workspace file: check the bytes,
/// the execute bit, a second path with the same content, and what is left behind.
fn pull_of_big_objects(a: &TestEnv, configure_clone: impl Fn(&TestEnv)) {
    use std::os::unix::fs::PermissionsExt;
    // Hex text: compresses to about half, so it is stored as zstd and still over
    // the pack limit.
    let csv: String = noise(6 * 1024 * 1024, 5).iter().map(|b| format!("{b:02x}")).collect();
    a.write("big/readings.csv", &csv);
    a.write("big/copy-of-readings.csv", &csv);
    a.write("big/weights.bin", noise(5 * 1024 * 1024 + 17, 7));
    a.write("tool.bin", noise(6 * 1024 * 1024, 8));
    let exec = std::fs::Permissions::from_mode(0o755);
    std::fs::set_permissions(a.path("tool.bin"), exec).unwrap();
    a.dvt(&["add", "big", "tool.bin"]).ok();
    a.dvt(&["push"]).ok();
    a.commit("big data");

    let b = a.clone_repo();
    configure_clone(&b);
    // A stale directory of a pull killed earlier is cleared.
    std::fs::create_dir_all(b.path(".dvt/tmp/pull-999999999")).unwrap();
    std::fs::write(b.path(".dvt/tmp/pull-999999999/leftover"), "x").unwrap();
    let r = b.dvt(&["pull"]).ok();
    assert!(r.stdout.contains("fetched 4 objects"), "{}", r.stdout);
    for f in [
        "big/readings.csv",
        "big/copy-of-readings.csv",
        "big/weights.bin",
        "tool.bin",
    ] {
        assert!(a.read(f) == b.read(f), "{f} differs after pull");
    }
    let mode = b.mode("tool.bin");
    assert_eq!(mode & 0o111, 0o111, "tool.bin lost its execute bit: {mode:o}");
    let mode = b.mode("big/weights.bin");
    assert_eq!(mode & 0o111, 0, "weights.bin became executable: {mode:o}");
    assert_no_pull_leftovers(&b);
    let r = b.dvt(&["status"]).ok();
    assert!(r.stdout.contains("up to date"), "{}", r.stdout);
    // The cache holds every object, verified: a checkout from it alone works.
    b.dvt(&["fsck"]).ok();
    std::fs::remove_dir_all(b.path("big")).unwrap();
    std::fs::remove_file(b.path("tool.bin")).unwrap();
    b.dvt(&["checkout"]).ok();
    assert!(a.read("big/readings.csv") == b.read("big/readings.csv"));
    assert!(a.read("tool.bin") == b.read("tool.bin"));
}

#[test]
fn pull_of_big_objects_from_a_directory() {
    let (a, _) = dir_repo();
    pull_of_big_objects(&a, |_| {});
}

/// Small objects come from a directory remote as whole packs, and a pull into a
/// workspace without the directory writes each file as its pack is verified (see
/// `Cache::plan_tree`). Every path must get its own bytes and mode: two paths with
/// one content, an empty file, an executable; and a file of the user's own where a
/// pointer's data goes is not overwritten.
#[test]
fn pull_of_small_objects_from_a_directory_restores_every_path() {
    use std::os::unix::fs::PermissionsExt;
    let (a, _) = dir_repo();
    for i in 0..40 {
        a.write(&format!("data/part-{i:02}.bin"), part(3000, i));
    }
    a.write("data/same/one.bin", part(5000, 1));
    a.write("data/same/two.bin", part(5000, 1));
    a.write("data/empty", "");
    a.write("data/run.sh", "#!/bin/sh\necho hi\n");
    std::fs::set_permissions(a.path("data/run.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    a.write("notes.txt", "kept apart\n");
    a.dvt(&["add", "data", "notes.txt"]).ok();
    a.dvt(&["push"]).ok();
    a.commit("data");

    let b = a.clone_repo();
    b.dvt(&["pull"]).ok();
    for f in files_under(&a.path("data")) {
        let rel = f.strip_prefix(&a.root).unwrap().to_str().unwrap().to_string();
        assert!(a.read(&rel) == b.read(&rel), "{rel} differs after pull");
    }
    assert!(a.read("notes.txt") == b.read("notes.txt"));
    let mode = b.mode("data/run.sh");
    assert_eq!(mode & 0o111, 0o111, "run.sh lost its execute bit: {mode:o}");
    let mode = b.mode("data/part-00.bin");
    assert_eq!(mode & 0o111, 0, "part-00.bin became executable: {mode:o}");
    assert_no_pull_leftovers(&b);
    assert!(b.dvt(&["status"]).ok().stdout.contains("up to date"));
    // Again with every object cached: nothing is fetched, everything restored.
    std::fs::remove_dir_all(b.path("data")).unwrap();
    let r = b.dvt(&["pull"]).ok();
    assert!(
        r.stdout.contains("Nothing to fetch") && r.stdout.contains("44 files restored"),
        "{}",
        r.stdout
    );
    assert!(a.read("data/same/one.bin") == b.read("data/same/one.bin"));
    assert!(a.read("data/run.sh") == b.read("data/run.sh"));
    assert_no_pull_leftovers(&b);

    // A clone with a file of its own where a pointer's is: the pull fetches, then
    // refuses to check out and writes nothing; the copies it kept are removed, and
    // the data comes out of the cache once asked for alone.
    let c = a.clone_repo();
    c.write("notes.txt", "my own notes\n");
    let r = c.dvt(&["pull"]).fails();
    assert!(r.stderr.contains("notes.txt"), "{}", r.stderr);
    assert!(c.read("notes.txt") == b"my own notes\n");
    assert!(!c.exists("data"));
    assert_no_pull_leftovers(&c);
    c.dvt(&["checkout", "data"]).ok();
    assert!(a.read("data/same/two.bin") == c.read("data/same/two.bin"));
}

#[test]
fn pull_of_big_objects_from_s3() {
    let Some(endpoint) = server("DVT_TEST_S3_ENDPOINT") else {
        return;
    };
    pull_of_big_objects(&s3_repo(&endpoint), s3_secret);
}

/// A big compressed object ends with a seal (a checksum of its stored bytes, keyed
/// by its id), which push checks instead of decompressing. Check the seal's bytes,
/// that a damaged object or another object's file under its name is still refused,
/// and that a damaged seal alone only costs the long check: the push goes through
/// and a clone pulls the right bytes.
fn push_checks_big_objects_by_their_seal(a: &TestEnv, configure_clone: impl Fn(&TestEnv)) {
    // Hex text: compresses to about half, over 8 MiB stored (a multipart upload).
    let hex = |n, seed| -> String { noise(n, seed).iter().map(|b| format!("{b:02x}")).collect() };
    let (big, other) = (hex(12 << 20, 31), hex(10 << 20, 32));
    a.write("big.csv", &big);
    a.write("other.csv", &other);
    a.dvt(&["add", "big.csv", "other.csv"]).ok();
    let (id, other_id) = (blake3_hex(big.as_bytes()), blake3_hex(other.as_bytes()));
    let stored = a.store().stored(&id);
    assert!(stored.len() > 8 << 20 && stored.len() < big.len() / 2 + (1 << 20));
    let seal = &stored[stored.len() - 48..];
    assert_eq!(&seal[..16], b"\x5d\x2a\x4d\x18\x28\0\0\0dvtseal1", "{seal:02x?}");
    let on_remote = |a: &TestEnv| {
        let st = a.dvt(&["status", "--remote", "--json"]).ok().json();
        let local_only: Vec<String> = st["pointers"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|p| {
                p["local_only"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_str().unwrap().to_string())
            })
            .collect();
        !local_only.contains(&id)
    };
    let refused = |a: &TestEnv, what: &str| {
        let r = a.dvt(&["push"]).fails();
        assert!(
            r.stderr.contains("is corrupt") && r.stderr.contains(&id[..12]),
            "{what}: {}",
            r.stderr
        );
        assert!(!on_remote(a), "{what}: the object reached the remote");
    };
    // One flipped bit in the compressed bytes.
    a.damage(&id, |b| b[6 << 20] ^= 0x10);
    refused(a, "damaged object");
    // Another object's file, with its own valid seal, under this object's name.
    let other_stored = a.store().stored(&other_id);
    a.damage(&id, |b| *b = other_stored);
    refused(a, "another object's file");
    // A damaged seal on intact bytes: checked by decompressing instead, and sent.
    a.damage(&id, |b| {
        *b = stored.clone();
        let last = b.len() - 1;
        b[last] ^= 1;
    });
    a.dvt(&["push"]).ok();
    assert!(on_remote(a));
    a.commit("big csv");
    let b = a.clone_repo();
    configure_clone(&b);
    b.dvt(&["pull"]).ok();
    assert!(b.read("big.csv") == big.as_bytes() && b.read("other.csv") == other.as_bytes());
}

#[test]
fn push_checks_big_objects_by_their_seal_to_a_directory() {
    let (a, _) = dir_repo();
    push_checks_big_objects_by_their_seal(&a, |_| {});
}

#[test]
fn push_checks_big_objects_by_their_seal_to_webdav() {
    let Some(url) = server("DVT_TEST_WEBDAV_URL") else {
        return;
    };
    push_checks_big_objects_by_their_seal(&webdav_repo(&url), |_| {});
}

#[test]
fn push_checks_big_objects_by_their_seal_to_s3() {
    let Some(endpoint) = server("DVT_TEST_S3_ENDPOINT") else {
        return;
    };
    push_checks_big_objects_by_their_seal(&s3_repo(&endpoint), s3_secret);
}

#[test]
fn push_refuses_a_corrupt_cache_object_and_keeps_its_manifest_back() {
    let (a, store) = dir_repo();
    a.write("data/a.bin", noise(50_000, 1));
    a.write("data/b.bin", noise(50_000, 2));
    a.dvt(&["add", "data"]).ok();
    let victim = blake3_hex(&noise(50_000, 1));
    a.damage(&victim, |bytes| bytes[1000] ^= 1);
    let r = a.dvt(&["push"]).fails();
    assert!(r.stderr.contains("is corrupt"), "{}", r.stderr);
    assert!(r.stderr.contains("not uploaded"), "{}", r.stderr);
    // Only the intact file went up: not the corrupt one, nor the manifest, which
    // would claim a complete directory.
    assert_eq!(Store::at(&store).ids(), vec![blake3_hex(&noise(50_000, 2))]);
}

#[test]
fn missing_bucket_is_one_clear_line() {
    let Some(endpoint) = server("DVT_TEST_S3_ENDPOINT") else {
        return;
    };
    let a = TestEnv::new();
    s3_remote(&a, &endpoint, "dvt-no-such-bucket");
    a.write("x.csv", "a,b\n1,2\n");
    a.dvt(&["add", "x.csv"]).ok();
    let r = a.dvt(&["push"]).fails();
    let first = r.stderr.lines().next().unwrap();
    assert!(first.contains("remote `s3`"), "{}", r.stderr);
    // The server's XML error, shrunk to its code and message on the one line.
    assert!(
        first.contains("NoSuchBucket: The specified bucket does not exist"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.lines().nth(1).is_some_and(|l| l.starts_with("hint:")),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("testing-secret"), "secret leaked: {}", r.stderr);
}

/// Keys and region from the AWS shared files, as the AWS CLI finds them: a
/// profile's `credential_process` (run once, and again when its keys
/// expire), its `region` in `~/.aws/config`, static keys of
/// `~/.aws/credentials`; a process that fails, or prints no keys, and a
/// profile that is not there, each stop the command with one clear line.
#[test]
fn s3_keys_and_region_come_from_the_aws_profile() {
    let Some(endpoint) = server("DVT_TEST_S3_ENDPOINT") else {
        return;
    };
    let a = TestEnv::new();
    let bucket = new_bucket(&a, &endpoint);
    a.dvt(&["remote", "add", "-d", "s3", &format!("s3://{bucket}/p")]).ok();
    a.dvt(&["remote", "modify", "s3", "endpointurl", &endpoint]).ok();
    a.dvt(&["remote", "modify", "s3", "retries", "0"]).ok();
    let aws = a.home.join(".aws");
    std::fs::create_dir_all(&aws).unwrap();
    let runs = a.home.join("runs");
    let process = |json: &str| {
        let script = a.home.join("creds.sh");
        let text = format!("#!/bin/sh\necho run >> '{}'\n{json}\n", runs.display());
        std::fs::write(&script, text).unwrap();
        std::fs::write(
            aws.join("config"),
            format!(
                "[default]\nregion = us-west-2\n\n[profile lab]\nregion = eu-central-1\ncredential_process = sh {}\n",
                script.display()
            ),
        )
        .unwrap();
        let _ = std::fs::remove_file(&runs);
    };
    let runs_count = || std::fs::read_to_string(&runs).map_or(0, |t| t.lines().count());
    let dvt = |args: &[&str]| common::Run::from(without_aws_env(&mut a.dvt_cmd(args)).output().unwrap());
    a.write("x.csv", "a,b\n1,2\n");
    a.dvt(&["add", "x.csv"]).ok();
    a.dvt(&["remote", "modify", "s3", "profile", "lab"]).ok();

    // Keys that last: the process runs once; the profile's region is used.
    process(
        r#"echo '{"Version": 1, "AccessKeyId": "AKPROC", "SecretAccessKey": "sk-proc", "SessionToken": "tok", "Expiration": "2999-01-01T00:00:00Z"}'"#,
    );
    let r = dvt(&["push", "-v"]).ok();
    assert!(r.stdout.contains("pushed 1 object"), "{}", r.stdout);
    assert!(
        r.stderr.contains("region `eu-central-1`, of the AWS profile")
            && r.stderr.contains("keys of AWS profile `lab`'s credential_process"),
        "{}",
        r.stderr
    );
    assert_eq!(runs_count(), 1);
    assert!(!r.stderr.contains("sk-proc"), "{}", r.stderr);

    // Keys already expired: fetched again for each request.
    process(
        r#"echo '{"Version": 1, "AccessKeyId": "AKPROC", "SecretAccessKey": "sk-proc", "Expiration": "2001-01-01T00:00:00+00:00"}'"#,
    );
    a.write("y.csv", "y\n");
    a.dvt(&["add", "y.csv"]).ok();
    dvt(&["push"]).ok();
    assert!(runs_count() >= 2, "{}", runs_count());

    // A process that fails, or prints what is not keys: one line says so.
    a.write("z.csv", "z\n");
    a.dvt(&["add", "z.csv"]).ok();
    process("echo 'the token expired: log in again' >&2; exit 3");
    let r = dvt(&["push"]).fails();
    assert!(
        r.stderr
            .contains("error: remote `s3`: the credential_process of AWS profile `lab` failed (exit status: 3)")
            && r.stderr.contains("the token expired: log in again"),
        "{}",
        r.stderr
    );
    process("echo 'not json'");
    let r = dvt(&["push"]).fails();
    assert!(r.stderr.contains("`lab` did not print JSON"), "{}", r.stderr);
    process(r#"echo '{"Version": 1, "AccessKeyId": "AK"}'"#);
    let r = dvt(&["push"]).fails();
    assert!(
        r.stderr.contains("printed no `AccessKeyId` and `SecretAccessKey`"),
        "{}",
        r.stderr
    );

    // Static keys of ~/.aws/credentials win over the process.
    std::fs::write(
        aws.join("credentials"),
        "[lab]\naws_access_key_id = AKFILE\naws_secret_access_key = sk-file\n",
    )
    .unwrap();
    let r = dvt(&["push", "-v"]).ok();
    assert!(r.stderr.contains("keys of AWS profile `lab` in `"), "{}", r.stderr);

    // No such profile anywhere.
    a.dvt(&["remote", "modify", "s3", "profile", "nope"]).ok();
    let r = dvt(&["push"]).fails();
    assert!(
        r.stderr
            .contains("no AWS profile `nope` in the credentials or config file"),
        "{}",
        r.stderr
    );

    // A config file elsewhere, named by `configpath` (as DVC's).
    let elsewhere = a.home.join("team-aws-config");
    std::fs::write(
        &elsewhere,
        "[profile team]\nregion = ap-south-1\naws_access_key_id = AKTEAM\naws_secret_access_key = sk-team\n",
    )
    .unwrap();
    a.dvt(&["remote", "modify", "s3", "profile", "team"]).ok();
    a.dvt(&["remote", "modify", "s3", "configpath", elsewhere.to_str().unwrap()])
        .ok();
    let r = dvt(&["push", "-v"]).ok();
    assert!(
        r.stderr.contains("region `ap-south-1`, of the AWS profile")
            && r.stderr
                .contains(&format!("keys of AWS profile `team` in `{}`", elsewhere.display())),
        "{}",
        r.stderr
    );
    a.dvt(&["remote", "modify", "s3", "configpath", "/nonexistent/aws-config"])
        .ok();
    let r = dvt(&["push"]).fails();
    assert!(r.stderr.contains("/nonexistent/aws-config"), "{}", r.stderr);
}

/// With no credentials anywhere, object_store asks the instance metadata
/// server last; its failure would read as a network fault without the hint.
#[test]
fn no_credentials_at_all_are_named_as_such() {
    let a = TestEnv::new();
    a.dvt(&["remote", "add", "-d", "s3", "s3://bucket/data"]).ok();
    a.dvt(&["remote", "modify", "s3", "endpointurl", "http://127.0.0.1:1"])
        .ok();
    a.dvt(&["remote", "modify", "s3", "retries", "0"]).ok();
    a.write("x.csv", "a,b\n1,2\n");
    a.dvt(&["add", "x.csv"]).ok();
    let out = without_aws_env(&mut a.dvt_cmd(&["push"])).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("hint: no credentials for `s3` were in its config or the environment")
            && stderr.contains("`dvt remote modify s3 KEY VALUE`"),
        "{stderr}"
    );
    // With keys, the same fault is a server that cannot be reached.
    let r = with_remote_down().dvt(&["push"]).fails();
    assert!(r.stderr.contains("check that the server is reachable"), "{}", r.stderr);
}

#[test]
fn wrong_credentials_are_one_clear_line_without_the_secret() {
    let Some(endpoint) = server("DVT_TEST_AZURE_ENDPOINT") else {
        return;
    };
    let a = azure_repo(&endpoint);
    let wrong = "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXktd3Jvbmcta2V5LXdyb25nLWtleQ==";
    a.dvt(&["remote", "modify", "az", "account_key", wrong]).ok();
    a.write("x.csv", "a,b\n1,2\n");
    a.dvt(&["add", "x.csv"]).ok();
    let r = a.dvt(&["push"]).fails();
    let first = r.stderr.lines().next().unwrap();
    assert!(first.contains("remote `az`"), "{}", r.stderr);
    assert!(
        first.contains("403") || first.to_lowercase().contains("auth"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains(wrong) && !r.stdout.contains(wrong), "secret leaked");
    let r = a.dvt(&["remote", "list", "--json"]).ok();
    assert!(!r.stdout.contains(wrong) && r.stdout.contains("***"), "{}", r.stdout);
}

#[test]
fn unknown_remote_and_unsupported_scheme_are_refused() {
    let a = TestEnv::new();
    let r = a.dvt(&["push"]).fails();
    assert!(
        r.stderr.contains("no remote given and no default remote is set"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("dvt remote add -d NAME URL"), "{}", r.stderr);

    let before = a.read(".dvt/config.toml");
    let r = a.dvt(&["remote", "add", "x", "ftp://host/data"]).fails();
    assert!(r.stderr.contains("unsupported URL scheme `ftp://`"), "{}", r.stderr);
    assert_eq!(
        a.read(".dvt/config.toml"),
        before,
        "a refused remote changed the config"
    );

    // A scheme with one slash or none would be a directory named `s3:` in the
    // repository: refused, with the URL meant.
    for (typo, meant) in [
        ("s3:/bucket/x", "s3://bucket/x"),
        ("gs:bucket", "gs://bucket"),
        ("file:/srv/store", "file:///srv/store"),
    ] {
        let r = a.dvt(&["remote", "add", "x", typo]).fails();
        assert!(
            r.stderr.contains(&format!(
                "`{typo}` is not a URL (`{}:` takes two slashes): did you mean `{meant}`?",
                &typo[..typo.find(':').unwrap()]
            )),
            "{}",
            r.stderr
        );
    }
    assert_eq!(a.read(".dvt/config.toml"), before);
    // `~/` is the home directory, in the project's config and in the global one
    // (where a relative path is refused).
    a.write("f.csv", "f\n");
    a.dvt(&["add", "f.csv"]).ok();
    std::fs::create_dir_all(a.home.join("store")).unwrap();
    a.dvt(&["remote", "add", "home", "~/store"]).ok();
    a.dvt(&["push", "-r", "home"]).ok();
    assert!(a.home.join("store/packs").is_dir() && !a.exists("~"));
    a.dvt(&["remote", "add", "--global", "home2", "~/store"]).ok();
    let r = a.dvt(&["status", "-c", "-r", "home2", "--json"]).ok().json();
    assert_eq!(r["pointers"][0]["local_only"], serde_json::json!([]), "{r}");
    let r = a.dvt(&["remote", "add", "x", "~bob/store"]).fails();
    assert!(
        r.stderr
            .contains("`~bob/store`: write another user's home directory in full"),
        "{}",
        r.stderr
    );
    a.dvt(&["remote", "remove", "home"]).ok();
    a.dvt(&["remote", "remove", "--global", "home2"]).ok();
    // Counts are whole numbers: retries may be 0, jobs (as `-j`) not.
    a.dvt(&["remote", "add", "home", "~/store"]).ok();
    let r = a.dvt(&["remote", "modify", "home", "jobs", "--", "-3"]).fails();
    assert!(
        r.stderr.contains("`jobs` must be a whole number, 1 or more, not `-3`"),
        "{}",
        r.stderr
    );
    let r = a.dvt(&["remote", "modify", "home", "jobs", "0"]).fails();
    assert!(
        r.stderr.contains("`jobs` must be a whole number, 1 or more, not `0`"),
        "{}",
        r.stderr
    );
    a.dvt(&["remote", "modify", "home", "retries", "0"]).ok();
    // Written by hand, 0 jobs stops a push before anything is sent.
    let config = a.read(".dvt/config.toml");
    let config = String::from_utf8(config).unwrap().replace("retries = 0", "jobs = 0");
    a.write(".dvt/config.toml", config.as_bytes());
    let r = a.dvt(&["push", "-r", "home"]).fails();
    assert!(
        r.stderr
            .contains("remote `home`: `jobs` must be a whole number, 1 or more, not `0`"),
        "{}",
        r.stderr
    );
    a.dvt(&["remote", "remove", "home"]).ok();
    // A directory inside the repository is taken, with a warning.
    let r = a.dvt(&["remote", "add", "inside", "storage"]).ok();
    assert!(
        r.stderr.contains(
            "warning: the directory `storage` is inside the repository, where git sees what `dvt push` writes"
        ),
        "{}",
        r.stderr
    );
    a.dvt(&["remote", "remove", "inside"]).ok();

    a.dvt(&["remote", "add", "store", "../store"]).ok();
    let r = a.dvt(&["fetch", "-r", "nope"]).fails();
    assert!(r.stderr.contains("no remote named `nope`"), "{}", r.stderr);
    assert!(r.stderr.contains("configured remotes: store"), "{}", r.stderr);
    let r = a.dvt(&["remote", "modify", "store", "region", "eu-west-1"]).fails();
    assert!(
        r.stderr.contains("unknown option `region` for local remotes"),
        "{}",
        r.stderr
    );
    // An option of DVC's that dvt does without says why.
    let r = a.dvt(&["remote", "modify", "store", "version_aware", "true"]).fails();
    assert!(
        r.stderr
            .contains("unknown option `version_aware` for local remotes: cloud-versioned remotes are not supported"),
        "{}",
        r.stderr
    );
    let r = a.dvt(&["remote", "add", "store", "/elsewhere"]).fails();
    assert!(r.stderr.contains("already exists"), "{}", r.stderr);

    // A directory remote whose path is a file: one line naming the remote, for
    // push and fetch alike; the file is left as it was.
    a.write("data.csv", "a,b\n");
    a.dvt(&["add", "data.csv"]).ok();
    let file = a.root.parent().unwrap().join("not-a-dir");
    std::fs::write(&file, "mine").unwrap();
    a.dvt(&["remote", "add", "f", file.to_str().unwrap()]).ok();
    for cmd in ["push", "fetch"] {
        let r = a.dvt(&[cmd, "-r", "f"]).fails();
        let want = format!("remote `f`: `{}` is not a directory", file.display());
        assert!(r.stderr.contains(&want), "{cmd}: {}", r.stderr);
    }
    assert_eq!(std::fs::read(&file).unwrap(), b"mine");
}

#[test]
fn remote_config_commands_keep_secrets_local() {
    let a = TestEnv::new();
    a.dvt(&["remote", "add", "one", "s3://bucket/a"]).ok();
    a.dvt(&["remote", "add", "-d", "two", "az://container/b"]).ok();
    let r = a
        .dvt(&["remote", "modify", "one", "secret_access_key", "s3cr3t-value"])
        .ok();
    assert!(
        r.stdout.contains("config.local.toml") && !r.stdout.contains("s3cr3t"),
        "{}",
        r.stdout
    );
    a.dvt(&["remote", "modify", "one", "region", "eu-west-1"]).ok();
    let committed = String::from_utf8(a.read(".dvt/config.toml")).unwrap();
    assert!(
        !committed.contains("s3cr3t") && committed.contains("region = \"eu-west-1\""),
        "{committed}"
    );
    assert!(committed.contains("# zstd level"), "comments were lost: {committed}");
    let local = String::from_utf8(a.read(".dvt/config.local.toml")).unwrap();
    assert!(local.contains("secret_access_key = \"s3cr3t-value\""), "{local}");
    let r = a.dvt(&["remote", "list"]).ok();
    assert_eq!(r.stdout, "one\ts3://bucket/a\ntwo\taz://container/b\t(default)\n");
    a.dvt(&["remote", "default", "one"]).ok();
    let r = a.dvt(&["remote", "list"]).ok();
    assert!(r.stdout.starts_with("one\ts3://bucket/a\t(default)\n"), "{}", r.stdout);
    // Rename moves its options in both files, and the default with it.
    let r = a.dvt(&["remote", "rename", "one", "first"]).ok();
    assert!(r.stderr.contains("git add .dvt/config.toml"), "{}", r.stderr);
    let r = a.dvt(&["remote", "list"]).ok();
    assert_eq!(r.stdout, "first\ts3://bucket/a\t(default)\ntwo\taz://container/b\n");
    let r = a.dvt(&["remote", "list", "--json"]).ok().json();
    assert_eq!(r[0]["options"]["region"], "eu-west-1");
    assert_eq!(r[0]["options"]["secret_access_key"], "***");
    let local = String::from_utf8(a.read(".dvt/config.local.toml")).unwrap();
    assert!(
        local.contains("[remote.first]") && !local.contains("[remote.one]"),
        "{local}"
    );
    for (args, wanted) in [
        (
            ["remote", "rename", "first", "two"],
            "remote `two`: a remote of that name exists",
        ),
        (["remote", "rename", "nosuch", "x"], "no remote named `nosuch`"),
        (["remote", "rename", "first", "a/b"], "a remote name may hold only"),
    ] {
        let r = a.dvt(&args).fails();
        assert!(r.stderr.contains(wanted), "{args:?}: {}", r.stderr);
    }
    a.dvt(&["remote", "rename", "first", "one"]).ok();
    a.dvt(&["remote", "remove", "one"]).ok();
    let r = a.dvt(&["remote", "list"]).ok();
    assert_eq!(r.stdout, "two\taz://container/b\n");
    let local = String::from_utf8(a.read(".dvt/config.local.toml")).unwrap();
    assert!(!local.contains("s3cr3t"), "removing a remote keeps its secret: {local}");
    // With one remote and no default, that one is used.
    let r = a.dvt(&["status", "--remote"]).fails();
    assert!(r.stderr.contains("remote `two`"), "{}", r.stderr);
}

#[test]
fn hardlinked_directory_remote_shares_files_and_still_verifies() {
    use std::os::unix::fs::MetadataExt;
    let (a, store) = dir_repo();
    a.dvt(&["remote", "modify", "store", "hardlink", "true"]).ok();
    let n = populate(&a);
    let r = a.dvt(&["push", "--json"]).ok();
    assert_eq!(r.json()["uploaded"], n);
    for obj in a.objects() {
        let rel = obj.strip_prefix(a.path(".dvt/cache")).unwrap();
        let remote = std::fs::metadata(store.join(rel)).unwrap();
        assert_eq!(
            std::fs::metadata(&obj).unwrap().ino(),
            remote.ino(),
            "{} was copied",
            rel.display()
        );
    }
    a.commit("data");
    let b = a.clone_repo();
    b.dvt(&["pull"]).ok();
    for f in DATA_FILES {
        assert!(a.read(f) == b.read(f), "{f} differs");
    }
    // A damaged remote file is still refused, even though linking it would be free.
    let c = a.clone_repo();
    let victim = files_under(&store.join("objects"))
        .into_iter()
        .find(|p| std::fs::metadata(p).unwrap().len() > 1_000_000)
        .unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&victim)
        .unwrap()
        .set_len(1000)
        .unwrap();
    let r = c.dvt(&["pull"]).fails();
    assert!(r.stderr.contains("is corrupt"), "{}", r.stderr);
    assert!(!c.exists("model.bin"));
}

/// Push, fetch, pull and `status --remote` of a part of a tracked directory: a push
/// sends its files but keeps the directory's manifest back (a remote that has a
/// manifest has all of its files), and a clone pulls a part once the whole
/// directory is pushed.
fn parts_of_a_directory(a: &TestEnv, clone: impl Fn(&TestEnv) -> TestEnv) {
    populate(a);
    a.commit("data v1");
    let r = a
        .dvt(&["push", "data/images/img-002.bin", "data/nested", "--json"])
        .ok();
    assert_eq!(r.json()["uploaded"], 2, "{}", r.stdout);
    let j = a.dvt(&["status", "--remote", "data/images", "--json"]).ok().json();
    let p = &j["pointers"][0];
    assert_eq!(p["path"], "data/images", "{j}");
    assert_eq!(
        (p["objects"].as_u64(), p["local_only"].as_array().unwrap().len()),
        (Some(4), 3),
        "the manifest and img-001, img-003: {j}"
    );
    let b = clone(a);
    let r = b.dvt(&["pull", "data/nested"]).fails();
    assert!(
        r.stderr.contains("does not have object") && r.stderr.contains("(needed for `data`)"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("a push of part of a directory leaves the directory's manifest back"),
        "{}",
        r.stderr
    );
    assert!(!b.exists("data"), "nothing is checked out");

    a.dvt(&["push"]).ok();
    let r = b.dvt(&["pull", "data/images/img-002.bin", "data/nested/deep"]).ok();
    assert!(
        r.stdout.contains("fetched 3 objects"),
        "the manifest and two files: {}",
        r.stdout
    );
    for f in ["data/images/img-002.bin", "data/nested/deep/notes.txt"] {
        assert!(a.read(f) == b.read(f), "{f} differs after pull");
    }
    assert!(!b.exists("data/images/img-001.bin") && !b.exists("data/readings.csv"));
    let r = b.dvt(&["status", "data"]).ok();
    assert!(r.stdout.contains("not in cache: 3 objects"), "{}", r.stdout);
    let r = b.dvt(&["pull", "data"]).ok();
    assert!(r.stdout.contains("fetched 3 objects"), "{}", r.stdout);
    assert!(b.dvt(&["status", "data"]).ok().stdout.contains("up to date"));
}

#[test]
fn parts_of_a_directory_through_a_directory_remote() {
    let (a, _) = dir_repo();
    parts_of_a_directory(&a, TestEnv::clone_repo);
}

#[test]
fn parts_of_a_directory_through_s3() {
    let Some(endpoint) = server("DVT_TEST_S3_ENDPOINT") else {
        return;
    };
    parts_of_a_directory(&s3_repo(&endpoint), s3_clone);
}

/// DVC's `--allow-missing`: an object lost from the remote fails a pull, which
/// checks out nothing; with the flag, pull and checkout restore the rest of the
/// directory and the other pointers, warn with the paths left out, and exit 0. The
/// directory is not taken for complete: once the object is on the remote again, a
/// plain pull fetches it and finishes the directory.
#[test]
fn pull_and_checkout_allow_missing_restore_the_rest() {
    let (a, store) = dir_repo();
    a.write("data/one.csv", "a,b\n1,2\n");
    a.write("data/sub/two.csv", "a,b\n3,4\n");
    a.write("model.bin", noise(5000, 3));
    a.dvt(&["add", "data", "model.bin"]).ok();
    a.dvt(&["push"]).ok();
    a.commit("data v1");
    let two = blake3_hex(b"a,b\n3,4\n");
    Store::at(&store).remove(&two);

    let b = a.clone_repo();
    let r = b.dvt(&["pull"]).fails();
    assert!(
        r.stderr.contains(&format!("does not have object {two}")),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("`dvt pull --allow-missing`"), "{}", r.stderr);
    assert!(
        !b.exists("data") && !b.exists("model.bin"),
        "a failed pull checks out nothing"
    );

    let r = b.dvt(&["pull", "--allow-missing"]).ok();
    assert!(
        r.stderr.contains(
            "warning: neither the cache nor `store` has the data of 1 path, left as it was: data/sub/two.csv"
        ),
        "{}",
        r.stderr
    );
    assert_eq!(b.read("data/one.csv"), a.read("data/one.csv"));
    assert_eq!(b.read("model.bin"), a.read("model.bin"));
    assert!(!b.exists("data/sub/two.csv"));
    let j = b.dvt(&["pull", "--allow-missing", "--json"]).ok().json();
    assert_eq!(j["fetch"]["missing"][0]["id"], two.as_str(), "{j}");
    assert_eq!(j["checkout"]["missing"][0], "data/sub/two.csv", "{j}");
    let r = b.dvt(&["status", "data"]).ok();
    assert!(r.stdout.contains("not in cache: 1 object"), "{}", r.stdout);

    // checkout: the same, from the cache alone.
    std::fs::remove_dir_all(b.path("data")).unwrap();
    let r = b.dvt(&["checkout"]).fails();
    assert!(
        r.stderr.contains(&format!("object {two} is not in the cache")),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("`--allow-missing` checks out the rest"),
        "{}",
        r.stderr
    );
    let r = b.dvt(&["checkout", "--allow-missing"]).ok();
    assert!(
        r.stderr
            .contains("warning: the cache lacks the data of 1 path, left as it was: data/sub/two.csv"),
        "{}",
        r.stderr
    );
    assert_eq!(b.read("data/one.csv"), a.read("data/one.csv"));
    // Quiet: no warning; the report still lists it.
    let r = b.dvt(&["-q", "checkout", "--allow-missing"]).ok();
    assert_eq!(r.stderr, "");

    // A manifest on the remote vouches for its files, so A's push sends the lost
    // object only once the manifest is gone too; then a plain pull completes the
    // directory.
    let text = String::from_utf8(a.read("data.dvt")).unwrap();
    let line = text.lines().find(|l| l.starts_with("id = ")).unwrap();
    Store::at(&store).remove(&line[6..line.len() - 1]);
    let r = a.dvt(&["push", "--json"]).ok();
    assert_eq!(r.json()["uploaded"], 2, "{}", r.stdout);
    let r = b.dvt(&["pull"]).ok();
    assert!(r.stdout.contains("fetched 1 object"), "{}", r.stdout);
    assert_eq!(b.read("data/sub/two.csv"), a.read("data/sub/two.csv"));
    assert!(b.dvt(&["status"]).ok().stdout.contains("up to date"));
}

/// DVC's `-R`: a directory target that is not tracked itself stands for the data
/// tracked below it (pointers and pipeline outs), for push, status, pull and
/// checkout; without `-R` it is refused with a hint, and a directory with nothing
/// tracked below it is refused even with `-R`.
#[test]
fn recursive_targets_name_the_data_below_a_directory() {
    let (a, _) = dir_repo();
    a.write("sub/a.txt", "a\n");
    a.write("sub/deep/b.txt", "b\n");
    a.write("sub/set/x.txt", "x\n");
    a.write("other/o.txt", "o\n");
    a.dvt(&["add", "sub/a.txt", "sub/deep/b.txt", "sub/set", "other/o.txt"])
        .ok();
    a.dvt(&[
        "stage",
        "add",
        "-n",
        "gen",
        "-o",
        "sub/gen/out.txt",
        "mkdir -p sub/gen && echo g > sub/gen/out.txt",
    ])
    .ok();
    a.dvt(&["repro"]).ok();

    let r = a.dvt(&["push", "sub"]).fails();
    assert!(r.stderr.contains("`sub` is not tracked by dvt"), "{}", r.stderr);
    assert!(
        r.stderr.contains("data is tracked below `sub`: `-R` names all of it"),
        "{}",
        r.stderr
    );
    let r = a.dvt(&["push", "-R", "sub", "--json"]).ok();
    // a, b, x, the manifest of sub/set, the out; not other/o.txt.
    assert_eq!(r.json()["uploaded"], 5, "{}", r.stdout);
    let j = a.dvt(&["status", "--remote", "-R", "sub", "--json"]).ok().json();
    let paths: Vec<&str> = j["pointers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths.len(), 4, "{j}");
    assert!(!paths.contains(&"other/o.txt"), "{j}");
    a.commit("data");

    let b = a.clone_repo();
    let r = b.dvt(&["pull", "-R", "sub/deep"]).ok();
    assert!(r.stdout.contains("fetched 1 object"), "{}", r.stdout);
    assert_eq!(b.read("sub/deep/b.txt"), b"b\n");
    assert!(!b.exists("sub/a.txt"));
    let r = b.dvt(&["status", "-R", "sub"]).ok();
    assert!(
        r.stdout.contains("sub/a.txt.dvt: missing") && !r.stdout.contains("other"),
        "{}",
        r.stdout
    );
    let r = b.dvt(&["pull", "-R", "sub"]).ok();
    assert!(r.stdout.contains("fetched 4 objects"), "{}", r.stdout);
    assert_eq!(b.read("sub/set/x.txt"), b"x\n");
    assert_eq!(b.read("sub/gen/out.txt"), b"g\n");
    assert!(!b.exists("other/o.txt"));
    assert!(b.dvt(&["status", "-R", "sub"]).ok().stdout.contains("up to date"));

    // checkout -R, from the cache; the rest of the workspace is left alone.
    std::fs::remove_dir_all(b.path("sub/set")).unwrap();
    std::fs::remove_file(b.path("sub/a.txt")).unwrap();
    let r = b.dvt(&["checkout", "-R", "sub", "--json"]).ok();
    let restored = r.json()["restored"].as_array().unwrap().len();
    assert_eq!(restored, 2, "{}", r.stdout);
    assert_eq!(b.read("sub/a.txt"), b"a\n");

    std::fs::create_dir(b.path("empty")).unwrap();
    let r = b.dvt(&["pull", "-R", "empty"]).fails();
    assert!(r.stderr.contains("`empty` is not tracked by dvt"), "{}", r.stderr);
    assert!(!b.exists("other/o.txt"), "a refused target pulls nothing");
}

/// DVC's `-d`/`--with-deps`: a stage target, or an out of one, also takes the outs
/// of the stages upstream of it, and of no other stage.
#[test]
fn with_deps_targets_take_the_stages_upstream() {
    let (a, _) = dir_repo();
    for (name, deps, out, cmd) in [
        ("gen", "", "raw.txt", "echo raw > raw.txt"),
        (
            "prep",
            "raw.txt",
            "prep.txt",
            "cat raw.txt > prep.txt && echo p >> prep.txt",
        ),
        (
            "train",
            "prep.txt",
            "model.txt",
            "cat prep.txt > model.txt && echo m >> model.txt",
        ),
        ("other", "", "other.txt", "echo o > other.txt"),
    ] {
        let mut args = vec!["stage", "add", "-n", name, "-o", out];
        if !deps.is_empty() {
            args.extend(["-d", deps]);
        }
        args.push(cmd);
        a.dvt(&args).ok();
    }
    a.dvt(&["repro"]).ok();
    let r = a.dvt(&["push", "prep", "--json"]).ok();
    assert_eq!(r.json()["uploaded"], 1, "the stage's own out: {}", r.stdout);
    let r = a.dvt(&["push", "-d", "prep", "--json"]).ok();
    assert_eq!(
        (r.json()["uploaded"].as_u64(), r.json()["already_on_remote"].as_u64()),
        (Some(1), Some(1)),
        "raw.txt, and prep.txt again: {}",
        r.stdout
    );
    let r = a.dvt(&["status", "--remote"]).ok();
    assert!(
        r.stdout.contains("model.txt: 1 object only in the cache") && r.stdout.contains("other.txt: 1 object only"),
        "{}",
        r.stdout
    );
    a.dvt(&["push"]).ok();
    a.commit("pipeline");

    let b = a.clone_repo();
    // An out names its stage: model.txt brings train, prep and gen, not other.
    let r = b.dvt(&["pull", "-d", "model.txt"]).ok();
    assert!(r.stdout.contains("fetched 3 objects"), "{}", r.stdout);
    for f in ["raw.txt", "prep.txt", "model.txt"] {
        assert_eq!(b.read(f), a.read(f), "{f}");
    }
    assert!(!b.exists("other.txt"));
    std::fs::remove_file(b.path("raw.txt")).unwrap();
    std::fs::remove_file(b.path("model.txt")).unwrap();
    let j = b.dvt(&["checkout", "-d", "prep", "--json"]).ok().json();
    assert_eq!(j["restored"], serde_json::json!(["raw.txt"]), "{j}");
    let j = b.dvt(&["status", "-d", "train", "--json"]).ok().json();
    let missing: Vec<&str> = j["pointers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["workspace"] == "missing")
        .map(|p| p["path"].as_str().unwrap())
        .collect();
    assert_eq!(missing, ["model.txt"], "{j}");
}

#[test]
fn status_remote_tells_local_only_remote_only_and_lost_objects() {
    let (a, store) = dir_repo();
    a.write("data/one.csv", "a,b\n1,2\n");
    a.write("data/two.csv", "a,b\n3,4\n");
    a.write("model.bin", noise(5000, 3));
    a.write("notes.txt", "pushed later\n");
    a.dvt(&["add", "data", "model.bin"]).ok();
    a.dvt(&["push"]).ok();
    a.dvt(&["add", "notes.txt"]).ok();
    // model.bin: only on the remote now. data/one.csv's object: lost from both.
    a.remove_object(&blake3_hex(&noise(5000, 3)));
    let one = blake3_hex(b"a,b\n1,2\n");
    a.remove_object(&one);
    Store::at(&store).remove(&one);
    let r = a.dvt(&["status", "--remote", "-q"]).fails();
    assert!(
        r.stdout.is_empty() && r.stderr.is_empty(),
        "not in sync, said by the exit code: {r:?}"
    );
    let r = a.dvt(&["status", "--remote"]).ok();
    assert!(
        r.stdout.contains("data: 1 object in neither (lost here)"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("model.bin: 1 object only on the remote (to fetch)"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("notes.txt: 1 object only in the cache (to push)"),
        "{}",
        r.stdout
    );
    let j = a.dvt(&["status", "--remote", "--json"]).ok().json();
    let data = j["pointers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["path"] == "data")
        .unwrap();
    assert_eq!(data["missing"][0], one.as_str());
    assert_eq!(data["objects"], 3);
}

/// A push whose cache lacks objects uploads the rest, names what it left out,
/// holds back the manifest of a directory with a missing file, and exits 1; once
/// the data is added again the next push finishes the job.
#[test]
fn push_with_objects_missing_from_the_cache_names_them_and_pushes_the_rest() {
    let (a, store) = dir_repo();
    a.write("data/one.csv", "a,b\n1,2\n");
    a.write("data/two.csv", "a,b\n3,4\n");
    a.write("notes.txt", "notes\n");
    a.dvt(&["add", "data", "notes.txt"]).ok();
    let one = blake3_hex(b"a,b\n1,2\n");
    a.remove_object(&one);
    let r = a.dvt(&["push"]).fails();
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stdout
            .contains(&format!("not in the cache, not pushed: data/one.csv ({one})")),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains("Nothing to push"), "{}", r.stdout);
    assert!(r.stdout.contains("pushed 2 objects"), "{}", r.stdout);
    assert!(
        r.stderr.contains("hint: these objects are in no cache here"),
        "{}",
        r.stderr
    );
    let remote = Store::at(&store);
    assert!(remote.has(&blake3_hex(b"notes\n")) && remote.has(&blake3_hex(b"a,b\n3,4\n")));
    assert!(!remote.has(&one));
    let manifest = a.read("data.dvt");
    let manifest = String::from_utf8_lossy(&manifest);
    let manifest_id = manifest.split("id = \"").nth(1).unwrap().split('"').next().unwrap();
    assert!(
        !remote.has(manifest_id),
        "a manifest is pushed only after all its files"
    );

    // Adding the data again restores the object; the next push completes.
    a.dvt(&["add", "data"]).ok();
    let r = a.dvt(&["push"]).ok();
    assert!(r.stdout.contains("pushed 2 objects"), "{}", r.stdout);
    let remote = Store::at(&store);
    assert!(remote.has(&one) && remote.has(manifest_id), "{}", r.stdout);

    // When all that is left to push is missing, push does not claim the remote has it all.
    a.write("extra.txt", "extra\n");
    a.dvt(&["add", "extra.txt"]).ok();
    a.remove_object(&blake3_hex(b"extra\n"));
    let r = a.dvt(&["push"]).fails();
    assert!(
        r.stdout.contains("not in the cache, not pushed: extra.txt"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("pushed 0 objects (0 B) to `store`; 4 already there"),
        "{}",
        r.stdout
    );

    // An object the cache lost but the remote has is not missing: nothing to do.
    a.dvt(&["remove", "extra.txt.dvt"]).ok();
    a.remove_object(&blake3_hex(b"notes\n"));
    let r = a.dvt(&["push"]).ok();
    assert!(!r.stdout.contains("not in the cache"), "{}", r.stdout);
}

/// SIGTERM (or Ctrl-C) during a push to S3 aborts the multipart uploads in
/// flight, so the bucket keeps no parts that nothing will complete (and that
/// S3 would bill until a lifecycle rule removes them); the next push completes.
#[test]
fn interrupted_push_aborts_its_multipart_uploads() {
    let Some(endpoint) = server("DVT_TEST_S3_ENDPOINT") else {
        return;
    };
    let a = TestEnv::new();
    let bucket = new_bucket(&a, &endpoint);
    s3_remote(&a, &endpoint, &bucket);
    let model = noise(256 << 20, 17);
    a.write("model.bin", &model);
    a.dvt(&["add", "model.bin"]).ok();
    let uploads = || {
        let r = a.run("curl", &["-fsS", &format!("{endpoint}/{bucket}?uploads")]).ok();
        r.stdout.matches("<Upload>").count()
    };

    let push = a.dvt_spawn(&["push"]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while uploads() == 0 {
        assert!(Instant::now() < deadline, "no multipart upload started");
        std::thread::sleep(Duration::from_millis(5));
    }
    a.run("kill", &["-TERM", &push.id().to_string()]).ok();
    let out = push.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("and aborted 1 unfinished upload"), "{stderr}");
    assert_eq!(uploads(), 0, "an interrupted push leaves no multipart upload behind");

    let r = a.dvt(&["push", "--json"]).ok();
    assert_eq!(r.json()["uploaded"], 1, "{}", r.stdout);
    assert_eq!(uploads(), 0);
    a.commit("model");
    let b = s3_clone(&a);
    b.dvt(&["pull"]).ok();
    assert!(b.read("model.bin") == model);
}

fn blake3_hex(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

#[test]
fn directory_remote_packs_survive_a_killed_push_and_refuse_a_corrupt_entry() {
    let (a, store) = dir_repo();
    let content = |i: usize| [format!("part {i}\n").into_bytes(), noise(16_384, (i % 251) as u8)].concat();
    for i in 0..3000 {
        a.write(&format!("data/part-{i:04}.bin"), content(i));
    }
    a.dvt(&["add", "data"]).ok();
    let manifest = {
        let text = String::from_utf8(a.read("data.dvt")).unwrap();
        let line = text.lines().find(|l| l.starts_with("id = ")).unwrap();
        line[6..line.len() - 1].to_string()
    };
    for delay_ms in [3u64, 10, 20, 40, 80] {
        a.dvt_killed_after(&["push", "-j", "2"], Duration::from_millis(delay_ms));
        // Whatever is visible is whole, and a manifest only with all of its files.
        assert_remote_objects_whole(&a, &store);
        let there = Store::at(&store).ids();
        if there.contains(&manifest) {
            assert_eq!(there, a.object_ids(), "a manifest went up before its files");
        }
    }
    a.dvt(&["push"]).ok();
    assert_eq!(Store::at(&store).ids(), a.object_ids());
    assert!(a.dvt(&["push"]).ok().stdout.contains("Nothing to push"));

    // One packed object damaged on the remote: a pull refuses it by id and stores
    // nothing damaged; the others arrive.
    let victim = blake3_hex(&content(7));
    Store::at(&store).damage(&victim, |b| b[100] ^= 1);
    a.commit("data");
    let b = a.clone_repo();
    let r = b.dvt(&["pull"]).fails();
    assert!(
        r.stderr.contains(&format!("object {victim} is corrupt")),
        "{}",
        r.stderr
    );
    assert!(!b.has_object(&victim));
    assert!(b.has_object(&blake3_hex(&content(8))));
    assert!(!b.exists("data"), "the directory is not checked out incomplete");
    let left = common::temp_leftovers(&b.path(".dvt/cache"));
    assert!(left.is_empty(), "left behind: {left:?}");
    assert_no_pull_leftovers(&b);
}

/// Part `i` of a dataset of small noise files whose sizes start at `base` bytes.
fn part(base: usize, i: usize) -> Vec<u8> {
    noise(base + i, i as u8)
}

/// Writes `data/part-NN.bin` for NN in 0..count (see `part`) and adds `data`.
fn add_parts(a: &TestEnv, count: usize, base: usize) {
    for i in 0..count {
        a.write(&format!("data/part-{i:02}.bin"), part(base, i));
    }
    a.dvt(&["add", "data"]).ok();
}

/// On a terminal, push, fetch and pull show what moves with bytes done, the total
/// and the rate; piped, they print only their summaries.
#[test]
fn transfers_show_progress_on_a_terminal_only() {
    let (a, _) = dir_repo();
    add_parts(&a, 50, 30_000);
    a.write("model.bin", noise(5 << 20, 7));
    a.dvt(&["add", "model.bin"]).ok();
    a.commit("data");
    let r = a.dvt_on_terminal(&["push"]).ok();
    for shown in ["Pushing packs", "Pushing", "B/s", "pushed 52 objects"] {
        assert!(r.stdout.contains(shown), "{shown}: {}", r.stdout);
    }
    let b = a.clone_repo();
    let r = b.dvt_on_terminal(&["pull"]).ok();
    for shown in [
        "Fetching manifests",
        "Fetching packs",
        "Fetching",
        "checking out data",
        "MiB",
    ] {
        assert!(r.stdout.contains(shown), "{shown}: {}", r.stdout);
    }
    std::fs::remove_dir_all(b.path("data")).unwrap();
    std::fs::remove_dir_all(b.path(".dvt/cache")).unwrap();
    let r = b.dvt(&["pull"]).ok();
    assert!(
        !r.stderr.contains("Fetching") && !r.stdout.contains("Fetching"),
        "{r:?}"
    );
    assert!(r.stdout.contains("fetched 52 objects"), "{}", r.stdout);
}

#[test]
fn s3_packs_survive_gc_and_a_damaged_packed_object_is_refused() {
    let Some(endpoint) = server("DVT_TEST_S3_ENDPOINT") else {
        return;
    };
    let a = s3_repo(&endpoint);
    add_parts(&a, 40, 20_000);
    let r = a.dvt(&["push", "--json"]).ok();
    assert_eq!(r.json()["uploaded"], 41, "{}", r.stdout);
    let info = a.dvt(&["get-url", "data/part-05.bin", "--json"]).ok().json();
    let url = info["url"].as_str().unwrap().to_string();
    assert!(
        url.starts_with("s3://") && url.contains("/packs/") && url.ends_with(".pack"),
        "{url}"
    );
    assert!(info["on_remote"].as_bool().unwrap());
    assert_eq!(info["encoding"], "raw");

    let sign = [
        "--aws-sigv4",
        "aws:amz:us-east-1:s3",
        "--user",
        "testing:testing-secret",
    ];
    // gc of the remote drops one file's object: its pack is written anew without it.
    // A racing push may also have left that object as a file of its own: gc finds
    // and deletes that copy too.
    let gone = blake3_hex(&part(20_000, 0));
    let base = &url[..url.find("/packs/").unwrap()];
    let loose = format!(
        "{endpoint}/{}/objects/{}/{}",
        base.trim_start_matches("s3://"),
        &gone[..2],
        &gone[2..]
    );
    let copy = a.root.parent().unwrap().join("loose");
    std::fs::write(&copy, a.stored(&gone)).unwrap();
    a.run(
        "curl",
        &[&["-fsS", "-T", copy.to_str().unwrap(), &loose][..], &sign].concat(),
    )
    .ok();
    let http_status = |url: &str| {
        let r = a.run(
            "curl",
            &[&["-sS", "-o", "/dev/null", "-w", "%{http_code}", "-I", url][..], &sign].concat(),
        );
        r.stdout.trim().to_string()
    };
    assert_eq!(http_status(&loose), "200");
    std::fs::remove_file(a.path("data/part-00.bin")).unwrap();
    a.dvt(&["add", "data"]).ok();
    a.commit("data");
    a.dvt(&["push"]).ok();
    // Written there a moment ago (with the directory's old manifest): kept, by
    // the times S3 gives, until they are older than `--grace` (default 24h).
    let gc = a.dvt(&["gc", "-r", "--dry-run", "--json"]).ok().json();
    assert_eq!(gc["plan"]["remote_recent"]["kept"], 2, "{gc}");
    assert_eq!(
        gc["plan"]["remote_objects"]["files"].as_array().unwrap().len(),
        0,
        "{gc}"
    );
    std::thread::sleep(Duration::from_secs(2));
    let gc = a.dvt(&["gc", "-r", "-f", "--json", "--grace", "1s"]).ok().json();
    assert_eq!(
        gc["plan"]["remote_objects"]["files"].as_array().unwrap().len(),
        1,
        "{gc}"
    );
    assert_eq!(gc["deleted"], true);
    assert_eq!(http_status(&loose), "404");
    let st = a.dvt(&["status", "--remote", "--json"]).ok().json();
    assert_eq!(st["pointers"][0]["local_only"].as_array().unwrap().len(), 0, "{st}");
    let b = s3_clone(&a);
    b.dvt(&["pull"]).ok();
    assert!(common::snapshot(&a.path("data")) == common::snapshot(&b.path("data")));
    assert!(!b.has_object(&gone));
    assert!(b.dvt(&["push"]).ok().stdout.contains("Nothing to push"));

    // Flip a byte of one packed object in the bucket (through moto's plain HTTP).
    let info = a.dvt(&["get-url", "data/part-07.bin", "--json"]).ok().json();
    let key = info["url"].as_str().unwrap().trim_start_matches("s3://").to_string();
    let http = format!("{endpoint}/{key}");
    let fetched = a.root.parent().unwrap().join("pack");
    a.run(
        "curl",
        &[&["-fsS", "-o", fetched.to_str().unwrap(), &http][..], &sign].concat(),
    )
    .ok();
    let mut pack = std::fs::read(&fetched).unwrap();
    let at = info["range"]["start"].as_u64().unwrap() as usize + 5000;
    pack[at] ^= 1;
    std::fs::write(&fetched, pack).unwrap();
    // `-T`, not `--data-binary`: moto would take that for a form and store nothing.
    a.run(
        "curl",
        &[&["-fsS", "-T", fetched.to_str().unwrap(), &http][..], &sign].concat(),
    )
    .ok();
    let victim = blake3_hex(&part(20_000, 7));
    let c = s3_clone(&a);
    let r = c.dvt(&["pull"]).fails();
    assert!(
        r.stderr.contains(&format!("object {victim} is corrupt")),
        "{}",
        r.stderr
    );
    assert!(!c.has_object(&victim));
    assert!(
        c.has_object(&blake3_hex(&part(20_000, 8))),
        "the rest of the pack arrived"
    );
    assert!(!c.exists("data"));
    assert_no_pull_leftovers(&c);

    // `fsck -r` finds it; A, whose cache has it, replaces it (its pack is
    // rewritten without it); then C pulls every byte.
    let r = c.dvt(&["fsck", "-r"]).fails();
    assert!(r.stdout.contains(&format!("corrupt {victim} on `s3`")), "{}", r.stdout);
    let r = a.dvt(&["fsck", "-r", "--repair", "--json"]).ok().json();
    assert_eq!(r["replaced"][0], victim.as_str(), "{r}");
    assert!(c.dvt(&["fsck", "-r"]).ok().stdout.contains("all intact"));
    c.dvt(&["pull"]).ok();
    assert!(common::snapshot(&a.path("data")) == common::snapshot(&c.path("data")));
}

#[test]
fn s3_pack_bigger_than_one_part_goes_up_in_parts() {
    let Some(endpoint) = server("DVT_TEST_S3_ENDPOINT") else {
        return;
    };
    // Three objects just under the 4 MiB pack limit: one pack of ~10.5 MiB, sent
    // as a multipart upload of 8 MiB parts.
    let a = s3_repo(&endpoint);
    for i in 0..3u8 {
        a.write(&format!("weights/shard-{i}.bin"), noise(3_600_000, 40 + i));
    }
    a.dvt(&["add", "weights"]).ok();
    let r = a.dvt(&["push", "--json"]).ok();
    assert_eq!(r.json()["uploaded"], 4, "{}", r.stdout);
    let ends: Vec<u64> = (0..3)
        .map(|i| {
            let info = a
                .dvt(&["get-url", &format!("weights/shard-{i}.bin"), "--json"])
                .ok()
                .json();
            assert!(info["url"].as_str().unwrap().ends_with(".pack"), "{info}");
            info["range"]["end"].as_u64().unwrap()
        })
        .collect();
    assert!(
        ends.iter().any(|&e| e > 8 * 1024 * 1024),
        "one pack past one part: {ends:?}"
    );
    a.commit("weights");
    let b = s3_clone(&a);
    b.dvt(&["pull"]).ok();
    assert!(common::snapshot(&a.path("weights")) == common::snapshot(&b.path("weights")));
}

/// Pack indexes read from an object store are kept in `.dvt/tmp/remote-packs/`
/// (named by their content, so never stale): a damaged copy is read again from
/// the remote, new packs are seen, and copies of packs gc removed are dropped.
#[test]
fn remote_pack_index_copies_are_checked_refreshed_and_pruned() {
    let Some(endpoint) = server("DVT_TEST_S3_ENDPOINT") else {
        return;
    };
    let a = s3_repo(&endpoint);
    add_parts(&a, 30, 3_000);
    a.commit("data");
    a.dvt(&["push"]).ok();
    let b = s3_clone(&a);
    let copies = |env: &TestEnv| -> Vec<std::path::PathBuf> {
        common::walk(&env.path(".dvt/tmp/remote-packs"))
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "idx"))
            .collect()
    };
    let st = b.dvt(&["status", "--remote", "--json"]).ok().json();
    assert_eq!(st["pointers"][0]["remote_only"].as_array().unwrap().len(), 31, "{st}");
    let kept = copies(&b);
    assert_eq!(kept.len(), 1, "{kept:?}");
    std::fs::write(&kept[0], b"not an index").unwrap();
    b.dvt(&["pull"]).ok();
    assert!(common::snapshot(&a.path("data")) == common::snapshot(&b.path("data")));
    assert_ne!(std::fs::read(&kept[0]).unwrap(), b"not an index");

    // A second push adds a pack: B sees its objects.
    a.write("data/late.bin", noise(9_999, 99));
    a.dvt(&["add", "data"]).ok();
    a.git(&["commit", "-qam", "late"]);
    a.dvt(&["push"]).ok();
    b.git(&["pull", "-q", "origin", "HEAD"]);
    b.dvt(&["pull"]).ok();
    assert_eq!(b.read("data/late.bin"), noise(9_999, 99));
    assert_eq!(copies(&b).len(), 2);

    // gc on the remote rewrites both packs into new ones: B's old copies go.
    std::fs::remove_file(a.path("data/part-00.bin")).unwrap();
    a.dvt(&["add", "data"]).ok();
    a.git(&["commit", "-qam", "drop one"]);
    a.dvt(&["push"]).ok();
    a.dvt(&["gc", "-r", "-f", "--grace", "0"]).ok();
    let before = copies(&b);
    b.dvt(&["status", "--remote"]).ok();
    let after = copies(&b);
    assert_eq!(after.len(), 2, "{after:?}");
    assert_eq!(
        before.iter().filter(|p| !after.contains(p)).count(),
        1,
        "the copy of the rewritten pack is dropped: {before:?} -> {after:?}"
    );
}

/// What killed pushes leave in a directory remote's `packs/` (unfinished packs and
/// indexes) goes at the next `gc -r`, even one with nothing else to delete, once it
/// is an hour old; a newer one may be another repository's push at work and stays.
#[test]
fn gc_removes_killed_pushes_leftovers_from_a_directory_remote_once_an_hour_old() {
    let (a, store) = dir_repo();
    for i in 0..20 {
        a.write(&format!("data/part-{i:02}.csv"), format!("t,v\n{i},1\n").repeat(50));
    }
    a.dvt(&["add", "data"]).ok();
    a.commit("data");
    a.dvt(&["push"]).ok();
    let packs = store.join("packs");
    let zeros = "0".repeat(64);
    let old = [
        packs.join(format!(".{zeros}.idx.dvt-tmp-1-1")),
        packs.join(".pack.dvt-tmp-1-2"),
        packs.join(format!("{}.pack", "1".repeat(64))),
    ];
    let fresh = packs.join(format!(".{}.idx.dvt-tmp-1-3", "2".repeat(64)));
    for p in old.iter().chain([&fresh]) {
        std::fs::write(p, "partial").unwrap();
    }
    for p in &old {
        a.run("touch", &["-d", "2 hours ago", p.to_str().unwrap()]).ok();
    }
    let gc = a.dvt(&["gc", "-r", "-f", "--json"]).ok().json();
    assert_eq!(gc["deleted"], false, "nothing to delete: {gc}");
    for p in &old {
        assert!(!p.exists(), "left: {p:?}");
    }
    assert!(fresh.exists(), "a newer leftover may be a push at work");
    let b = a.clone_repo();
    b.dvt(&["pull"]).ok();
    assert!(common::snapshot(&a.path("data")) == common::snapshot(&b.path("data")));
}

/// Kills `dvt fetch`, then `dvt pull`, in clones of `a`, at tenths of the time the
/// uninterrupted command takes on this machine, so that kills land while objects
/// are copied into the cache and while the data is checked out. After each kill the
/// cache holds only whole, verified objects (`fsck`), the data directory is absent
/// or complete, and a new `pull` completes with the exact bytes.
fn killed_pull_leaves_only_whole_objects(a: &TestEnv, configure_clone: impl Fn(&TestEnv)) {
    // Small files (packed), and big ones stored alone, compressed and raw.
    let text = |i: usize| format!("t,v\n{i},{}\n", i * 7).repeat(300);
    for i in 0..400 {
        a.write(&format!("data/small/{i:03}.csv"), text(i));
    }
    for i in 0..4u8 {
        a.write(
            &format!("data/big/{i}.bin"),
            noise(8 * 1024 * 1024 + usize::from(i), 60 + i),
        );
    }
    a.write("data/big/log.csv", text(1).repeat(50));
    a.dvt(&["add", "data"]).ok();
    a.dvt(&["push"]).ok();
    a.commit("data");
    let clone = || {
        let b = a.clone_repo();
        configure_clone(&b);
        b
    };
    for command in ["fetch", "pull"] {
        let timed = clone();
        let started = Instant::now();
        timed.dvt(&[command, "-q"]).ok();
        let full = started.elapsed();
        for tenth in 1..10u32 {
            let b = clone();
            b.dvt_killed_after(&[command, "-q"], full * tenth / 10);
            // fsck reads and verifies every object the cache shows, and fails on
            // any that is not whole.
            b.dvt(&["fsck"]).ok();
            // B had no `data`: it is checked out whole or not at all.
            if b.exists("data") {
                assert!(
                    common::snapshot(&a.path("data")) == common::snapshot(&b.path("data")),
                    "after a kill at {tenth}/10 of a {command}: data is incomplete"
                );
            }
            b.dvt(&["pull"]).ok();
            assert!(common::snapshot(&a.path("data")) == common::snapshot(&b.path("data")));
            assert_no_pull_leftovers(&b);
        }
    }
}

#[test]
fn killed_pull_from_a_directory_leaves_only_whole_objects() {
    let (a, _) = dir_repo();
    killed_pull_leaves_only_whole_objects(&a, |_| {});
}

#[test]
fn killed_pull_from_s3_leaves_only_whole_objects() {
    let Some(endpoint) = server("DVT_TEST_S3_ENDPOINT") else {
        return;
    };
    killed_pull_leaves_only_whole_objects(&s3_repo(&endpoint), s3_secret);
}

/// Two pulls at once in one clone: the one refused names the pull holding the
/// repository (not the fetch or checkout inside it), no other command runs between
/// a pull's fetch and its checkout, and the data ends whole.
#[test]
fn two_pulls_at_once_name_the_pull_that_holds_the_lock() {
    let (a, _) = dir_repo();
    for i in 0..3u8 {
        a.write(&format!("data/{i}.bin"), noise(16 * 1024 * 1024, 80 + i));
    }
    for i in 0..200 {
        a.write(&format!("data/small/{i:03}.csv"), format!("{i}\n").repeat(100));
    }
    a.dvt(&["add", "data"]).ok();
    a.dvt(&["push"]).ok();
    a.commit("data");
    for _ in 0..3 {
        let b = a.clone_repo();
        let first = b.dvt_cmd(&["pull", "-q"]).stderr(Stdio::piped()).spawn().unwrap();
        let second = b.dvt_cmd(&["pull", "-q"]).output().unwrap();
        let first = first.wait_with_output().unwrap();
        for out in [&first, &second] {
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success() || err.contains(": dvt pull)"), "{err}");
        }
        assert!(first.status.success() || second.status.success());
        assert!(common::snapshot(&a.path("data")) == common::snapshot(&b.path("data")));
    }
}

/// Uploads `bytes` as `url`: a file on a WebDAV server, or with `sign`, an S3 key
/// on moto (which refuses unsigned writes to a bucket once signed requests used it).
fn put_object(env: &TestEnv, url: &str, bytes: &[u8], sign: bool) {
    let file = env.root.parent().unwrap().join("upload.tmp");
    std::fs::write(&file, bytes).unwrap();
    let data = format!("@{}", file.display());
    let mut args = vec!["-fsS", "-X", "PUT", "-H", "Content-Type: application/octet-stream"];
    if sign {
        args.extend([
            "--aws-sigv4",
            "aws:amz:us-east-1:s3",
            "--user",
            "testing:testing-secret",
        ]);
    }
    args.extend(["--data-binary", &data, url]);
    env.run("curl", &args).ok();
}

/// `import-url --no-download` of a bucket's prefix streams it to hash it and
/// keeps nothing; a clone's `pull` downloads it from the bucket, checked.
#[test]
fn import_url_no_download_from_s3_is_pulled_from_the_bucket() {
    let Some(endpoint) = server("DVT_TEST_S3_ENDPOINT") else {
        return;
    };
    let bucket = unique("src");
    let a = TestEnv::new();
    a.run("curl", &["-fsS", "-X", "PUT", &format!("{endpoint}/{bucket}")])
        .ok();
    let obj = |key: &str| format!("{endpoint}/{bucket}/{key}");
    put_object(&a, &obj("exports/readings.csv"), b"t,v\n0,1\n", true);
    put_object(&a, &obj("exports/images/img-1.bin"), &noise(7 * 1024 * 1024, 4), true);
    s3_named_remote(&a, "src", &format!("s3://{bucket}/exports"), &endpoint);
    let r = a.dvt(&["import-url", "remote://src", "data", "--no-download"]).ok();
    assert!(r.stdout.contains("no data downloaded"), "{}", r.stdout);
    assert!(!a.exists("data"));
    // The same id as a download's.
    let j = a.dvt(&["import-url", "remote://src", "copy", "--json"]).ok().json();
    let pointer = String::from_utf8(a.read("data.dvt")).unwrap();
    assert!(pointer.contains(&format!("id = {}", j["id"])), "{pointer}");
    a.dvt(&["remove", "copy.dvt"]).ok();
    a.commit("import");

    let b = a.clone_repo();
    b.dvt(&["remote", "modify", "src", "secret_access_key", "testing-secret"])
        .ok();
    let r = b.dvt(&["pull"]).ok();
    assert!(r.stdout.contains("from where they were imported: data"), "{}", r.stdout);
    assert_eq!(b.read("data/images/img-1.bin"), noise(7 * 1024 * 1024, 4));
    assert_eq!(b.read("data/readings.csv"), b"t,v\n0,1\n");
}

/// The value of `key = "…"` in a pointer's text (the first such line).
fn pointer_value(pointer: &str, key: &str) -> String {
    let prefix = format!("{key} = \"");
    let line = pointer
        .lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no {key} in {pointer}"));
    line[prefix.len()..line.len() - 1].to_string()
}

/// A remote whose prefix has characters object_store escapes (`~` is stored as
/// `%7E`): `get-url` prints the key the object is under, which a plain GET of the
/// bucket finds, packed or not.
#[test]
fn get_url_names_the_key_under_a_prefix_object_store_escapes() {
    let Some(endpoint) = server("DVT_TEST_S3_ENDPOINT") else {
        return;
    };
    let a = TestEnv::new();
    let bucket = new_bucket(&a, &endpoint);
    s3_named_remote(&a, "s3", &format!("s3://{bucket}/team~data"), &endpoint);
    a.write("small.csv", b"a,b\n1,2\n");
    a.write("big.bin", noise(5 * 1024 * 1024, 8));
    a.dvt(&["add", "small.csv", "big.bin"]).ok();
    a.dvt(&["push", "-r", "s3"]).ok();
    let sign = [
        "--aws-sigv4",
        "aws:amz:us-east-1:s3",
        "--user",
        "testing:testing-secret",
    ];
    for (path, len) in [("small.csv", 8), ("big.bin", 5 * 1024 * 1024)] {
        let info = a.dvt(&["get-url", path, "-r", "s3", "--json"]).ok().json();
        let url = info["url"].as_str().unwrap();
        assert!(url.starts_with(&format!("s3://{bucket}/team%7Edata/")), "{info}");
        // The key in an HTTP request to the bucket: its `%` escaped in turn.
        let http = format!("{endpoint}/{}", url.trim_start_matches("s3://").replace('%', "%25"));
        let fetched = a.root.parent().unwrap().join("fetched");
        a.run(
            "curl",
            &[&["-fsS", "-o", fetched.to_str().unwrap(), &http][..], &sign].concat(),
        )
        .ok();
        let stored = std::fs::metadata(&fetched).unwrap().len();
        match info["range"]["end"].as_u64() {
            Some(end) => assert!(stored >= end, "{info}: {stored} bytes"),
            None => assert!(stored >= len / 2, "{info}: {stored} bytes"),
        }
    }
}

/// `import-url --version-aware` (DVC's) records the S3 version id of each object
/// it read; after the objects are overwritten in the bucket, a clone's `pull`
/// reads exactly those versions back (a plain import of the same data can only
/// say it changed), and `update` moves the versions on. A version deleted from
/// the bucket, a bucket without versioning and a local path are each refused with
/// the reason, nothing written.
#[test]
fn import_url_version_aware_pulls_the_versions_it_recorded_after_the_bucket_moved_on() {
    let Some(endpoint) = server("DVT_TEST_S3_ENDPOINT") else {
        return;
    };
    let bucket = unique("versioned");
    let a = TestEnv::new();
    a.run("curl", &["-fsS", "-X", "PUT", &format!("{endpoint}/{bucket}")])
        .ok();
    let signed = [
        "--aws-sigv4",
        "aws:amz:us-east-1:s3",
        "--user",
        "testing:testing-secret",
    ];
    let versioning = format!("{endpoint}/{bucket}?versioning");
    let on = r#"<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Status>Enabled</Status></VersioningConfiguration>"#;
    let mut args = vec![
        "-fsS",
        "-X",
        "PUT",
        "-H",
        "Content-Type: application/xml",
        "--data-binary",
        on,
    ];
    args.extend(signed);
    args.push(&versioning);
    a.run("curl", &args).ok();
    let obj = |key: &str| format!("{endpoint}/{bucket}/{key}");
    put_object(&a, &obj("exports/readings.csv"), b"t,v\n0,1\n", true);
    put_object(&a, &obj("exports/images/img-1.bin"), &noise(9 * 1024 * 1024, 5), true);
    // A key with characters object_store escapes in a path part it builds.
    put_object(&a, &obj("exports/labels%5Bv1%5D~a.csv"), b"id\n1\n", true);
    put_object(&a, &obj("model.bin"), b"weights v1", true);
    s3_named_remote(&a, "src", &format!("s3://{bucket}"), &endpoint);
    a.dvt(&["import-url", "--version-aware", "remote://src/exports", "data"])
        .ok();
    a.dvt(&["import-url", "--version-aware", "remote://src/model.bin"]).ok();
    a.dvt(&["import-url", "remote://src/exports", "plain"]).ok();
    let data = String::from_utf8(a.read("data.dvt")).unwrap();
    assert!(data.contains("[source.versions]\n\"images/img-1.bin\" = \""), "{data}");
    let readings_v1 = pointer_value(&data, "\"readings.csv\"");
    let model = String::from_utf8(a.read("model.bin.dvt")).unwrap();
    let model_v1 = pointer_value(&model, "version");
    a.commit("import v1");

    // The bucket moves on; the clone has no cache and no dvt remote holds the data.
    put_object(&a, &obj("exports/readings.csv"), b"t,v\n0,2\n1,3\n", true);
    put_object(&a, &obj("model.bin"), b"weights v2", true);
    let b = a.clone_repo();
    b.dvt(&["remote", "modify", "src", "secret_access_key", "testing-secret"])
        .ok();
    // Without versions, the old data is gone from the bucket: said, nothing written.
    let r = b.dvt(&["pull", "plain"]).fails();
    assert!(r.stderr.contains("remote://src/exports"), "{}", r.stderr);
    assert!(!b.exists("plain"));
    let r = b.dvt(&["pull", "data", "model.bin"]).ok();
    assert!(
        r.stdout.contains("from where they were imported: data, model.bin"),
        "{}",
        r.stdout
    );
    assert_eq!(b.read("data/readings.csv"), b"t,v\n0,1\n");
    assert_eq!(b.read("data/images/img-1.bin"), noise(9 * 1024 * 1024, 5));
    assert_eq!(b.read("data/labels[v1]~a.csv"), b"id\n1\n");
    assert_eq!(b.read("model.bin"), b"weights v1");
    // `get-url` says where in the bucket each file was read from, at which version.
    let j = b.dvt(&["get-url", "data/readings.csv", "--json"]).ok().json();
    assert_eq!(j["imported_from"]["url"], "remote://src/exports/readings.csv");
    assert_eq!(j["imported_from"]["version"], readings_v1.as_str());

    // `update` records what is there now: the changed object's version only.
    let r = b.dvt(&["update", "data", "model.bin"]).ok();
    assert!(
        r.stdout
            .contains("updated data.dvt from remote://src/exports (downloaded 1 file"),
        "{}",
        r.stdout
    );
    assert_eq!(b.read("data/readings.csv"), b"t,v\n0,2\n1,3\n");
    assert_eq!(b.read("model.bin"), b"weights v2");
    let data_v2 = String::from_utf8(b.read("data.dvt")).unwrap();
    assert_ne!(pointer_value(&data_v2, "\"readings.csv\""), readings_v1);
    assert_eq!(
        pointer_value(&data_v2, "\"images/img-1.bin\""),
        pointer_value(&data, "\"images/img-1.bin\"")
    );

    // A recorded version deleted from the bucket: named, nothing written.
    let gone = format!("{}?versionId={model_v1}", obj("model.bin"));
    let mut args = vec!["-fsS", "-X", "DELETE"];
    args.extend(signed);
    args.push(&gone);
    a.run("curl", &args).ok();
    let c = a.clone_repo();
    c.dvt(&["remote", "modify", "src", "secret_access_key", "testing-secret"])
        .ok();
    let r = c.dvt(&["pull", "model.bin"]).fails();
    assert!(
        r.stderr.contains(&format!(
            "version {model_v1} is no longer there (deleted, or removed by a lifecycle rule)"
        )),
        "{}",
        r.stderr
    );
    assert!(!c.exists("model.bin"));

    // A bucket that keeps no versions, and a local path: refused before any download.
    let plain = unique("plain");
    a.run("curl", &["-fsS", "-X", "PUT", &format!("{endpoint}/{plain}")])
        .ok();
    put_object(&a, &format!("{endpoint}/{plain}/f.csv"), b"x\n", true);
    a.dvt(&["remote", "modify", "src", "url", &format!("s3://{plain}")])
        .ok();
    let r = a.dvt(&["import-url", "--version-aware", "remote://src/f.csv"]).fails();
    assert!(
        r.stderr
            .contains("the store gave no version id for it: `--version-aware` needs a bucket"),
        "{}",
        r.stderr
    );
    assert!(!a.exists("f.csv") && !a.exists("f.csv.dvt"));
    let pinned = format!("remote://src/f.csv?versionId={model_v1}");
    let r = a.dvt(&["import-url", &pinned, "pinned.csv"]).fails();
    assert!(
        r.stderr.contains("dvt does not read a version named in the URL"),
        "{}",
        r.stderr
    );
    let local = a.root.parent().unwrap().join("local.csv");
    std::fs::write(&local, b"y\n").unwrap();
    let r = a
        .dvt(&["import-url", "--version-aware", local.to_str().unwrap()])
        .fails();
    assert!(
        r.stderr.contains("it takes an s3://, gs:// or az:// URL"),
        "{}",
        r.stderr
    );
    assert!(!a.exists("local.csv.dvt"));
}

/// `import-url --version-aware` from GCS (fake-gcs-server, a bucket with object
/// versioning): the generation read is recorded, and read back after the object
/// was overwritten.
#[test]
fn import_url_version_aware_reads_the_gcs_generation_it_recorded() {
    let Some(endpoint) = server("DVT_TEST_GCS_ENDPOINT") else {
        return;
    };
    let a = TestEnv::new();
    let bucket = unique("gver");
    let body = format!("{{\"name\":\"{bucket}\",\"versioning\":{{\"enabled\":true}}}}");
    let buckets = format!("{endpoint}/storage/v1/b");
    a.run(
        "curl",
        &[
            "-fsS",
            "-X",
            "POST",
            &buckets,
            "-H",
            "Content-Type: application/json",
            "-d",
            &body,
        ],
    )
    .ok();
    let upload = |name: &str, bytes: &[u8]| {
        let file = a.root.parent().unwrap().join("upload.tmp");
        std::fs::write(&file, bytes).unwrap();
        let url = format!("{endpoint}/upload/storage/v1/b/{bucket}/o?uploadType=media&name={name}");
        a.run(
            "curl",
            &[
                "-fsS",
                "-X",
                "POST",
                "--data-binary",
                &format!("@{}", file.display()),
                &url,
            ],
        )
        .ok();
    };
    upload("exports/labels.csv", b"id,label\n1,cat\n");
    let key = a.root.parent().unwrap().join("gcs-key.json");
    std::fs::write(
        &key,
        r#"{"private_key":"","private_key_id":"","client_email":"test@example.invalid","disable_oauth":true}"#,
    )
    .unwrap();
    a.dvt(&["remote", "add", "g", &format!("gs://{bucket}")]).ok();
    a.dvt(&["remote", "modify", "g", "credentialpath", key.to_str().unwrap()])
        .ok();
    a.dvt(&["remote", "modify", "g", "endpointurl", &endpoint]).ok();
    a.dvt(&["import-url", "--version-aware", "remote://g/exports", "labels"])
        .ok();
    let pointer = String::from_utf8(a.read("labels.dvt")).unwrap();
    let generation = pointer_value(&pointer, "\"labels.csv\"");
    assert!(generation.bytes().all(|b| b.is_ascii_digit()), "{pointer}");
    a.commit("labels v1");
    upload("exports/labels.csv", b"id,label\n1,dog\n");
    std::fs::remove_dir_all(a.path("labels")).unwrap();
    std::fs::remove_dir_all(a.path(".dvt/cache")).unwrap();
    a.dvt(&["pull"]).ok();
    assert_eq!(a.read("labels/labels.csv"), b"id,label\n1,cat\n");
    a.dvt(&["update", "labels"]).ok();
    assert_eq!(a.read("labels/labels.csv"), b"id,label\n1,dog\n");
    let pointer = String::from_utf8(a.read("labels.dvt")).unwrap();
    assert_ne!(pointer_value(&pointer, "\"labels.csv\""), generation);
}

/// `dvt import-url` from S3 (through a configured remote's options, and through
/// the environment alone) and `dvt update` after the bucket changed; the imported
/// data then travels through a remote like added data.
#[test]
fn import_url_from_s3_and_update_after_the_bucket_changed() {
    let Some(endpoint) = server("DVT_TEST_S3_ENDPOINT") else {
        return;
    };
    let bucket = unique("src");
    let a = TestEnv::new();
    a.run("curl", &["-fsS", "-X", "PUT", &format!("{endpoint}/{bucket}")])
        .ok();
    let obj = |key: &str| format!("{endpoint}/{bucket}/{key}");
    put_object(&a, &obj("exports/2026/readings.csv"), b"t,v\n0,1\n", true);
    put_object(
        &a,
        &obj("exports/2026/images/img-1.bin"),
        &noise(9 * 1024 * 1024, 1),
        true,
    );
    // The empty "folder" object some S3 tools make: not a file.
    put_object(&a, &obj("exports/2026/images/"), b"", true);
    put_object(&a, &obj("models/model.bin"), &noise(50_000, 2), true);
    s3_named_remote(&a, "src", &format!("s3://{bucket}/exports"), &endpoint);
    // What is there, first (the empty "folder" object is no file).
    let r = a.dvt(&["ls-url", "remote://src/2026", "--size"]).ok();
    assert_eq!(
        r.stdout,
        "   9.00 MiB  images/
        8 B  readings.csv
"
    );
    let r = a.dvt(&["ls-url", "-R", "remote://src"]).ok();
    assert_eq!(
        r.stdout,
        "2026/images/img-1.bin
2026/readings.csv
"
    );
    let r = a.dvt(&["ls-url", "remote://src/2025"]).fails();
    assert!(
        r.stderr
            .contains("cannot list `remote://src/2025`: there is nothing there"),
        "{}",
        r.stderr
    );

    let r = a.dvt(&["import-url", "remote://src/2026", "data"]).ok();
    assert!(r.stdout.contains("imported data (2 files"), "{}", r.stdout);
    assert_eq!(a.read("data/readings.csv"), b"t,v\n0,1\n");
    assert_eq!(a.read("data/images/img-1.bin"), noise(9 * 1024 * 1024, 1));
    assert_eq!(walk(&a.path("data")).len(), 4, "{:?}", walk(&a.path("data")));
    // A URL of the store itself, with the endpoint and keys from the environment.
    let r = a
        .dvt_cmd(&["import-url", &format!("s3://{bucket}/models/model.bin")])
        .env("AWS_ENDPOINT_URL", &endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing-secret")
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert_eq!(a.read("model.bin"), noise(50_000, 2));
    a.commit("imports");
    // `get-url URL [OUT]` (DVC's): the same downloads, tracking nothing.
    let elsewhere = tempfile::tempdir().unwrap();
    let r = a
        .dvt_cmd(&["get-url", &format!("s3://{bucket}/models/model.bin")])
        .current_dir(elsewhere.path())
        .env("AWS_ENDPOINT_URL", &endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing-secret")
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert_eq!(
        std::fs::read(elsewhere.path().join("model.bin")).unwrap(),
        noise(50_000, 2)
    );
    a.dvt(&["get-url", "remote://src/2026", "copy"]).ok();
    assert_eq!(a.read("copy/images/img-1.bin"), noise(9 * 1024 * 1024, 1));
    assert_eq!(a.read("copy/readings.csv"), b"t,v\n0,1\n");
    std::fs::remove_dir_all(a.path("copy")).unwrap();

    let r = a.dvt(&["update", "data"]).ok();
    assert!(
        r.stdout.contains("data.dvt is up to date with remote://src/2026"),
        "{}",
        r.stdout
    );
    // Without the environment's keys, the other import cannot be checked.
    let r = a.dvt(&["update", "model.bin"]).fails();
    assert!(
        r.stderr
            .contains(&format!("cannot read `s3://{bucket}/models/model.bin`")),
        "{}",
        r.stderr
    );
    put_object(&a, &obj("exports/2026/readings.csv"), b"t,v\n0,1\n1,5\n", true);
    let r = a.dvt(&["update", "data", "--json"]).ok();
    assert_eq!(r.json()[0]["changed"], true, "{}", r.stdout);
    // The one object that changed, not the 9 MiB one beside it.
    assert_eq!(r.json()[0]["downloaded"]["files"], 1, "{}", r.stdout);
    assert_eq!(r.json()[0]["downloaded"]["bytes"], 12, "{}", r.stdout);
    assert_eq!(a.read("data/readings.csv"), b"t,v\n0,1\n1,5\n");
    a.commit("newer readings");

    // Pushed and pulled like added data.
    let store = a.root.parent().unwrap().join("store");
    a.dvt(&["remote", "add", "-d", "store", store.to_str().unwrap()]).ok();
    a.dvt(&["push"]).ok();
    a.commit("store");
    let b = a.clone_repo();
    b.dvt(&["pull"]).ok();
    for f in ["data/readings.csv", "data/images/img-1.bin", "model.bin"] {
        assert!(a.read(f) == b.read(f), "{f} differs after pull");
    }

    // Nothing at the URL, no such bucket: one clear line, nothing written.
    let r = a.dvt(&["import-url", "remote://src/2025"]).fails();
    assert!(
        r.stderr
            .contains("cannot read `remote://src/2025`: there is nothing there"),
        "{}",
        r.stderr
    );
    s3_named_remote(&a, "gone", "s3://dvt-no-such-bucket/x", &endpoint);
    let r = a.dvt(&["import-url", "remote://gone/readings.csv"]).fails();
    let first = r.stderr.lines().next().unwrap();
    assert!(
        first.starts_with("error: cannot read `remote://gone/readings.csv`:"),
        "{}",
        r.stderr
    );
    assert!(
        first.contains("NoSuchBucket: The specified bucket does not exist"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("testing-secret"), "{}", r.stderr);
    assert!(!a.exists("readings.csv") && !a.exists("readings.csv.dvt"));
    assert!(common::temp_leftovers(&a.root).is_empty());
}

/// From a WebDAV server: a URL ending in `/` is a directory (listed with
/// PROPFIND), any other names a file.
/// `--fs-config KEY=VALUE` (DVC's): the store's options on the command line,
/// as a remote of its kind takes them; import-url records them (never a
/// secret) and update reads them again. Keys come from the environment.
#[test]
fn fs_config_gives_a_url_its_store_options() {
    let Some(endpoint) = server("DVT_TEST_S3_ENDPOINT") else {
        return;
    };
    let bucket = unique("fsc");
    let a = TestEnv::new();
    a.run("curl", &["-fsS", "-X", "PUT", &format!("{endpoint}/{bucket}")])
        .ok();
    put_object(&a, &format!("{endpoint}/{bucket}/set/a.csv"), b"a\n", true);
    let url = format!("s3://{bucket}/set/");
    let endpoint_option = format!("endpointurl={endpoint}");
    let with_keys = |args: &[&str]| {
        a.dvt_cmd(args)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing-secret")
            .output()
            .unwrap()
    };
    let r = with_keys(&["ls-url", &url, "--fs-config", &endpoint_option]);
    assert_eq!(
        String::from_utf8_lossy(&r.stdout),
        "a.csv\n",
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    let r = with_keys(&["import-url", &url, "set", "--fs-config", &endpoint_option]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert_eq!(a.read("set/a.csv"), b"a\n");
    let pointer = String::from_utf8(a.read("set.dvt")).unwrap();
    assert!(
        pointer.contains(&format!("[source.fs_config]\nendpointurl = \"{endpoint}\"\n")),
        "{pointer}"
    );
    put_object(&a, &format!("{endpoint}/{bucket}/set/b.csv"), b"b\n", true);
    let r = with_keys(&["update", "set.dvt"]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert_eq!(a.read("set/b.csv"), b"b\n");
    let out = a.root.join("got.csv");
    let r = with_keys(&[
        "get-url",
        &format!("{url}a.csv"),
        out.to_str().unwrap(),
        "--fs-config",
        &endpoint_option,
    ]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert_eq!(a.read("got.csv"), b"a\n");

    // A secret would be committed with the pointer; an unknown option is named.
    let r = a
        .dvt(&[
            "import-url",
            &url,
            "again",
            "--fs-config",
            &endpoint_option,
            "--fs-config",
            "secret_access_key=x",
        ])
        .fails();
    assert!(
        r.stderr.contains(
            "`secret_access_key` is a secret, and `dvt import-url` records `--fs-config` in the pointer file"
        ),
        "{}",
        r.stderr
    );
    let r = a.dvt(&["ls-url", &url, "--fs-config", "colour=blue"]).fails();
    assert!(
        r.stderr.contains("unknown option `colour` for s3 remotes"),
        "{}",
        r.stderr
    );
    let r = a.dvt(&["ls-url", &url, "--fs-config", "endpointurl"]).fails();
    assert!(r.stderr.contains("`--fs-config` takes KEY=VALUE"), "{}", r.stderr);
    assert!(!a.path("again").exists());
}

#[test]
fn import_url_from_webdav() {
    let Some(url) = server("DVT_TEST_WEBDAV_URL") else {
        return;
    };
    let a = TestEnv::new();
    let base = format!("{url}/{}", unique("src"));
    for dir in ["", "/set", "/set/part"] {
        a.run("curl", &["-fsS", "-X", "MKCOL", &format!("{base}{dir}/")]).ok();
    }
    import_set_then_update(&a, &format!("{base}/set"), |rel, bytes| {
        put_object(&a, &format!("{base}/set/{rel}"), bytes, false)
    });
}

/// Imports directory `set_url` (which `put` fills with `a.csv` and
/// `part/b.bin` first) and its file `a.csv`; `update` finds nothing new, then,
/// after `put` rewrote `a.csv`, updates both imports.
fn import_set_then_update(a: &TestEnv, set_url: &str, put: impl Fn(&str, &[u8])) {
    put("a.csv", b"a\n");
    put("part/b.bin", &noise(100_000, 4));
    a.dvt(&["import-url", &format!("{set_url}/"), "set"]).ok();
    assert_eq!(a.read("set/a.csv"), b"a\n");
    assert_eq!(a.read("set/part/b.bin"), noise(100_000, 4));
    a.dvt(&["import-url", &format!("{set_url}/a.csv")]).ok();
    assert_eq!(a.read("a.csv"), b"a\n");
    let r = a.dvt(&["update"]).ok();
    assert!(r.stdout.contains("set.dvt is up to date"), "{}", r.stdout);
    put("a.csv", b"a\nb\n");
    let r = a.dvt(&["update"]).ok();
    assert!(
        r.stdout.contains("updated set.dvt") && r.stdout.contains("updated a.csv.dvt"),
        "{}",
        r.stdout
    );
    assert_eq!(a.read("set/a.csv"), b"a\nb\n");
    assert_eq!(a.read("a.csv"), b"a\nb\n");
}

/// From a plain web server (no ETag, no listing): a file, followed by its
/// modification time; a URL with nothing there is one clear line.
#[test]
fn import_url_from_a_plain_web_server() {
    let a = TestEnv::new();
    let served = tempfile::tempdir().unwrap();
    std::fs::write(served.path().join("weights.bin"), noise(300_000, 5)).unwrap();
    let port = free_port();
    let _server = serve(
        Command::new("python3")
            .args(["-m", "http.server", &port.to_string(), "--bind", "127.0.0.1"])
            .current_dir(served.path()),
        port,
    );
    let url = format!("http://127.0.0.1:{port}");
    a.dvt(&["import-url", &format!("{url}/weights.bin"), "model.bin"]).ok();
    assert_eq!(a.read("model.bin"), noise(300_000, 5));
    let r = a.dvt(&["update"]).ok();
    assert!(r.stdout.contains("model.bin.dvt is up to date"), "{}", r.stdout);
    // http.server's Last-Modified has whole seconds.
    std::thread::sleep(Duration::from_millis(1100));
    std::fs::write(served.path().join("weights.bin"), noise(300_001, 6)).unwrap();
    let r = a.dvt(&["update"]).ok();
    assert!(r.stdout.contains("updated model.bin.dvt"), "{}", r.stdout);
    assert_eq!(a.read("model.bin"), noise(300_001, 6));
    let r = a.dvt(&["import-url", &format!("{url}/missing.bin")]).fails();
    assert!(r.stderr.contains("there is nothing there"), "{}", r.stderr);
    // An escaped URL (as a browser copies it) names the file it stands for,
    // which gets that name here.
    std::fs::write(served.path().join("scan #1 [v2].csv"), b"a\n").unwrap();
    a.dvt(&["import-url", &format!("{url}/scan%20%231%20%5Bv2%5D.csv")])
        .ok();
    assert_eq!(a.read("scan #1 [v2].csv"), b"a\n");
}

/// From Azure Blob (Azurite), through a configured remote: the objects a push
/// stored there, imported as a directory, are the cache's stored files byte for byte.
#[test]
fn import_url_from_azure() {
    let Some(endpoint) = server("DVT_TEST_AZURE_ENDPOINT") else {
        return;
    };
    let a = azure_repo(&endpoint);
    a.dvt(&["remote", "modify", "az", "pack", "false"]).ok();
    a.write("in/a.bin", noise(20_000, 7));
    a.write("in/b.csv", "x,y\n1,2\n");
    a.dvt(&["add", "in"]).ok();
    a.dvt(&["push"]).ok();
    let pushed = a.object_ids();
    let r = a.dvt(&["import-url", "remote://az/objects", "stored"]).ok();
    assert!(r.stdout.contains("imported stored (3 files"), "{}", r.stdout);
    for hex in pushed {
        assert_eq!(
            a.read(&format!("stored/{}/{}", &hex[..2], &hex[2..])),
            a.stored(&hex),
            "{hex}"
        );
    }
    let r = a.dvt(&["update", "stored"]).ok();
    assert!(
        r.stdout.contains("stored.dvt is up to date with remote://az/objects"),
        "{}",
        r.stdout
    );
    let r = a.dvt(&["import-url", "remote://az/nothing"]).fails();
    assert!(r.stderr.contains("there is nothing there"), "{}", r.stderr);
}

/// A fetch killed while it downloads a big object leaves the partial file in
/// the cache's `tmp/`, which the next command sweeps once the file is abandoned
/// (see core.rs), not beside the objects, where only `gc` would look; the next
/// fetch completes.
#[test]
fn killed_fetch_leaves_its_partial_download_where_the_next_command_sweeps() {
    let Some(endpoint) = server("DVT_TEST_S3_ENDPOINT") else {
        return;
    };
    let a = s3_repo(&endpoint);
    let model = noise(96 << 20, 23);
    a.write("model.bin", &model);
    a.dvt(&["add", "model.bin"]).ok();
    a.dvt(&["push"]).ok();
    a.commit("model");
    let b = s3_clone(&a);
    let tmp = b.path(".dvt/cache/tmp");
    let partial = || {
        common::temp_leftovers(&tmp)
            .into_iter()
            .any(|p| p.metadata().is_ok_and(|m| m.is_file() && m.len() > 0))
    };
    let mut fetch = b.dvt_cmd(&["fetch", "-q"]).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !partial() {
        assert!(
            Instant::now() < deadline,
            "no partial download appeared in {}",
            tmp.display()
        );
        assert!(
            fetch.try_wait().unwrap().is_none(),
            "the fetch ended before it was killed"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    fetch.kill().unwrap();
    fetch.wait().unwrap();
    let objects = common::temp_leftovers(&b.path(".dvt/cache/objects"));
    assert!(objects.is_empty(), "{objects:?}");
    b.dvt(&["fsck"]).ok();
    b.dvt(&["pull"]).ok();
    assert!(b.read("model.bin") == model);
}

/// Objects in a repository's cache, loose (a file each under `objects/`).
fn cached_objects(env: &TestEnv) -> usize {
    walk(&env.path(".dvt/cache/objects"))
        .into_iter()
        .filter(|p| p.is_file())
        .count()
}

/// `import-url --to-remote`: S3 to S3 without a copy in the cache or the
/// workspace (only the directory's manifest stays); a clone pulls the bytes; a
/// second import uploads nothing.
#[test]
fn import_url_to_remote_sends_s3_data_to_s3_without_keeping_it() {
    let Some(endpoint) = server("DVT_TEST_S3_ENDPOINT") else {
        return;
    };
    let a = s3_repo(&endpoint);
    let bucket = unique("src");
    a.run("curl", &["-fsS", "-X", "PUT", &format!("{endpoint}/{bucket}")])
        .ok();
    let obj = |key: &str| format!("{endpoint}/{bucket}/{key}");
    put_object(&a, &obj("raw/readings.csv"), b"t,v\n0,1\n", true);
    put_object(&a, &obj("raw/images/img-1.bin"), &noise(9 * 1024 * 1024, 3), true);
    put_object(&a, &obj("model.bin"), &noise(70_000, 4), true);
    s3_named_remote(&a, "src", &format!("s3://{bucket}"), &endpoint);

    let r = a
        .dvt(&["import-url", "remote://src/raw", "data", "--to-remote", "--json"])
        .ok();
    let report = r.json();
    assert_eq!(report["files"], 2, "{}", r.stdout);
    assert_eq!(report["uploaded"]["remote"], "s3", "{}", r.stdout);
    assert_eq!(report["uploaded"]["objects"], 3, "{}", r.stdout);
    let r = a
        .dvt(&["import-url", "remote://src/model.bin", "--to-remote", "-r", "s3"])
        .ok();
    assert!(
        r.stdout
            .contains("imported model.bin (68.36 KiB) from remote://src/model.bin to remote `s3` (1 object uploaded"),
        "{}",
        r.stdout
    );
    // Nothing here but the pointers and the directory's manifest.
    assert!(!a.exists("data") && !a.exists("model.bin"));
    assert!(a.exists("data.dvt") && a.exists("model.bin.dvt"));
    assert_eq!(cached_objects(&a), 1);
    assert!(
        walk(&a.path(".dvt/tmp"))
            .iter()
            .all(|p| !p.to_string_lossy().contains("to-remote"))
    );
    let r = a.dvt(&["status"]).ok();
    assert!(
        r.stdout.contains("data.dvt: missing from the workspace"),
        "{}",
        r.stdout
    );
    let r = a.dvt(&["push"]).ok();
    assert!(r.stdout.contains("Nothing to push"), "{}", r.stdout);
    a.commit("imports sent to the remote");

    let b = s3_clone(&a);
    b.dvt(&["pull"]).ok();
    assert_eq!(b.read("data/readings.csv"), b"t,v\n0,1\n");
    assert_eq!(b.read("data/images/img-1.bin"), noise(9 * 1024 * 1024, 3));
    assert_eq!(b.read("model.bin"), noise(70_000, 4));

    // Again over what is there: refused without --force; with it, nothing to upload.
    let r = a
        .dvt(&["import-url", "remote://src/raw", "data", "--to-remote"])
        .fails();
    assert!(r.stderr.contains("already exists"), "{}", r.stderr);
    let r = a
        .dvt(&["import-url", "remote://src/raw", "data", "--to-remote", "-f", "--json"])
        .ok();
    assert_eq!(r.json()["uploaded"]["objects"], 0, "{}", r.stdout);
    assert!(a.git(&["status", "--porcelain"]).stdout.is_empty());
    // The source changes: update sends the new version to the remote too, and
    // the old data the workspace held goes (it is on the remote).
    a.dvt(&["pull", "data"]).ok();
    put_object(&a, &obj("raw/readings.csv"), b"t,v\n0,1\n1,7\n", true);
    let r = a.dvt(&["update", "data", "--to-remote", "--json"]).ok();
    assert_eq!(r.json()[0]["changed"], true, "{}", r.stdout);
    assert!(!a.exists("data"));
    // The image came with the earlier pull; the new readings are only on the remote.
    let r = a.dvt(&["status", "data"]).ok();
    assert!(r.stdout.contains("not in cache: 1 object"), "{}", r.stdout);
    a.commit("newer readings");
    b.git(&["pull", "-q"]);
    b.dvt(&["pull"]).ok();
    assert_eq!(b.read("data/readings.csv"), b"t,v\n0,1\n1,7\n");
    // A remote that is not there is named before anything is downloaded.
    let r = a
        .dvt(&[
            "import-url",
            "remote://src/model.bin",
            "m2.bin",
            "--to-remote",
            "-r",
            "nope",
        ])
        .fails();
    assert!(r.stderr.contains("no remote named `nope`"), "{}", r.stderr);
    assert!(!a.exists("m2.bin.dvt"));
}

/// `import-url --to-remote` of a local directory of more files than one batch
/// holds, to a directory remote: every file arrives, nothing stays behind.
#[test]
fn import_url_to_remote_of_many_files_goes_in_batches() {
    let (a, store) = dir_repo();
    let src = a.root.parent().unwrap().join("export");
    for i in 0..10_050 {
        let dir = src.join(format!("part-{}", i % 7));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("r{i}.txt")), format!("record {i}\n")).unwrap();
    }
    let r = a
        .dvt(&["import-url", src.to_str().unwrap(), "records", "--to-remote", "--json"])
        .ok();
    assert_eq!(r.json()["files"], 10_050, "{}", r.stdout);
    assert_eq!(r.json()["uploaded"]["objects"], 10_051, "{}", r.stdout);
    assert!(!a.exists("records"));
    assert_eq!(cached_objects(&a), 1);
    assert!(store.exists());
    a.commit("records");
    let b = a.clone_repo();
    b.dvt(&["pull", "-q"]).ok();
    assert_eq!(b.read("records/part-3/r10.txt"), b"record 10\n");
    assert_eq!(walk(&b.path("records")).iter().filter(|p| p.is_file()).count(), 10_050);
}

/// `import-url --to-remote` killed at any point: nothing damaged on the remote,
/// and a pointer only once all it names is there; the next run cleans up the
/// scratch cache and finishes.
#[test]
fn killed_import_url_to_remote_leaves_nothing_half_done() {
    let (a, store) = dir_repo();
    let src = a.root.parent().unwrap().join("export");
    for i in 0..2000 {
        let f = src.join(format!("p{}/r{i}.bin", i % 5));
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(
            &f,
            [format!("{i}\n").into_bytes(), noise(16_384, (i % 251) as u8)].concat(),
        )
        .unwrap();
    }
    std::fs::write(src.join("big.bin"), noise(12 << 20, 9)).unwrap();
    let args = ["import-url", src.to_str().unwrap(), "data", "--to-remote", "-j", "2"];
    // The late kills land once some objects are up, which the cache never holds.
    for delay_ms in [5u64, 30, 100, 300, 1000, 2000] {
        a.dvt_killed_after(&args, Duration::from_millis(delay_ms));
        assert_remote_objects_whole(&a, &store);
        if a.exists("data.dvt") {
            // It finished before the kill: the pull below checks it is all there.
            break;
        }
    }
    if !a.exists("data.dvt") {
        a.dvt(&args).ok();
    }
    let scratch: Vec<PathBuf> = walk(&a.path(".dvt/tmp"))
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("to-remote-"))
        .collect();
    assert!(scratch.is_empty(), "left behind: {scratch:?}");
    a.commit("export");
    let b = a.clone_repo();
    b.dvt(&["pull", "-q"]).ok();
    assert_eq!(b.read("data/big.bin"), noise(12 << 20, 9));
    assert_eq!(b.read("data/p3/r8.bin")[..2], *b"8\n");
    assert_eq!(walk(&b.path("data")).iter().filter(|p| p.is_file()).count(), 2001);
}

/// `add SRC -o OUT` copies data from outside the repository and tracks it (no
/// source recorded: it is added data, not an import); with `--to-remote` it goes
/// to the remote only.
#[test]
fn add_out_copies_outside_data_in_or_sends_it_to_the_remote() {
    let (a, _store) = dir_repo();
    let ext = a.root.parent().unwrap().join("mnt");
    std::fs::create_dir_all(ext.join("set/sub")).unwrap();
    std::fs::write(ext.join("set/a.csv"), "x\n1\n").unwrap();
    std::fs::write(ext.join("set/sub/b.bin"), noise(40_000, 5)).unwrap();
    std::fs::write(ext.join("model.bin"), noise(90_000, 6)).unwrap();
    // An executable, an empty directory and a link: as `add` of a copy (`cp -rL`).
    std::fs::write(ext.join("set/run.sh"), "#!/bin/sh\n").unwrap();
    let exec = std::os::unix::fs::PermissionsExt::from_mode(0o755);
    std::fs::set_permissions(ext.join("set/run.sh"), exec).unwrap();
    std::fs::create_dir(ext.join("set/empty")).unwrap();
    std::os::unix::fs::symlink("a.csv", ext.join("set/latest.csv")).unwrap();
    let path = |p: &str| ext.join(p).to_str().unwrap().to_string();
    let mode = |env: &TestEnv, p: &str| {
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(env.path(p)).unwrap().permissions()) & 0o111
    };

    let r = a.dvt(&["add", &path("set"), "-o", "data/raw"]).ok();
    assert!(
        r.stdout.starts_with("added data/raw (4 files, 39.08 KiB) from "),
        "{}",
        r.stdout
    );
    assert_eq!(a.read("data/raw/sub/b.bin"), noise(40_000, 5));
    assert_eq!(a.read("data/raw/latest.csv"), b"x\n1\n");
    assert!(a.path("data/raw/empty").is_dir());
    assert_ne!(mode(&a, "data/raw/run.sh"), 0);
    assert!(!String::from_utf8(a.read("data/raw.dvt")).unwrap().contains("[source]"));
    assert!(a.dvt(&["status"]).ok().stdout.contains("up to date"));
    let r = a.dvt(&["update", "data/raw"]).fails();
    assert!(r.stderr.contains("not made by `dvt import`"), "{}", r.stderr);

    let r = a
        .dvt(&["add", &path("model.bin"), "-o", "model.bin", "--to-remote", "--json"])
        .ok();
    assert_eq!(r.json()["uploaded"]["objects"], 1, "{}", r.stdout);
    assert!(!a.exists("model.bin") && a.exists("model.bin.dvt"));
    a.dvt(&["push"]).ok();
    let r = a
        .dvt(&["add", &path("set"), "-o", "sent", "--to-remote", "-r", "store"])
        .ok();
    assert!(r.stdout.contains("to remote `store`"), "{}", r.stdout);
    a.commit("data from the mount");
    let b = a.clone_repo();
    b.dvt(&["pull"]).ok();
    assert_eq!(b.read("model.bin"), noise(90_000, 6));
    assert_eq!(b.read("data/raw/a.csv"), b"x\n1\n");
    assert_eq!(b.read("sent/latest.csv"), b"x\n1\n");
    assert_ne!(mode(&b, "sent/run.sh"), 0, "the executable bit travels");
    assert_eq!(mode(&b, "sent/a.csv"), 0);

    // Wrong uses: one line each, nothing written.
    a.write("notes.txt", "mine");
    a.commit("notes");
    for (args, message) in [
        (
            vec!["add", &path("set"), &path("model.bin"), "-o", "both"],
            "`-o` names where one path goes, and 2 were given",
        ),
        (
            vec!["add", "s3://bucket/key", "-o", "k"],
            "`s3://bucket/key` is a URL: `dvt add -o` copies local paths",
        ),
        (vec!["add", &path("nope"), "-o", "nope"], "mnt/nope` does not exist"),
        (vec!["add", &path("set"), "-o", "data/raw"], "already exists"),
        (
            vec!["add", &path("model.bin"), "-o", "notes.txt", "-f"],
            "`notes.txt` is tracked by git",
        ),
    ] {
        let r = a.dvt(&args).fails();
        assert!(r.stderr.contains(message), "{args:?}: {}", r.stderr);
    }
    assert!(!a.exists("both.dvt") && !a.exists("k.dvt") && !a.exists("nope.dvt"));
    assert!(
        a.git(&["status", "--porcelain"]).stdout.is_empty(),
        "notes.txt is as committed"
    );
    let r = a.dvt(&["add", &path("model.bin"), "--to-remote"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("--out <OUT>"), "{}", r.stderr);
}

/// rclone's SFTP server on a free port, serving a new directory, with its own
/// host key; and a user key it accepts.
struct SftpServer {
    child: KillOnDrop,
    dir: tempfile::TempDir,
    port: u16,
}

impl SftpServer {
    /// Started with `extra` arguments (`--pass`, say); `None` when the test
    /// servers are not installed (rclone comes with them).
    fn start(extra: &[&str]) -> Option<SftpServer> {
        server("DVT_TEST_WEBDAV_URL")?;
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        std::fs::create_dir(dir.path().join("served")).unwrap();
        for key in ["host", "user", "stranger"] {
            keygen(&dir.path().join(key));
        }
        // And a key locked with a passphrase.
        let out = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "hunter22", "-C", "locked", "-f"])
            .arg(dir.path().join("locked"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let authorized = ["user.pub", "locked.pub"]
            .map(|k| std::fs::read_to_string(dir.path().join(k)).unwrap())
            .concat();
        std::fs::write(dir.path().join("authorized_keys"), authorized).unwrap();
        let child = Self::serve(dir.path(), port, extra);
        Some(SftpServer { child, dir, port })
    }

    fn serve(dir: &Path, port: u16, extra: &[&str]) -> KillOnDrop {
        let mut c = Command::new("rclone");
        c.args(["serve", "sftp"])
            .arg(dir.join("served"))
            // Files the tests write into the served directory are seen at once.
            .args(["--dir-cache-time", "0s", "--user", "tester", "--key"])
            .arg(dir.join("host"))
            .arg("--authorized-keys")
            .arg(dir.join("authorized_keys"))
            .args(extra);
        start_rclone(&mut c, port)
    }

    fn stop(&mut self) {
        let _ = self.child.0.kill();
        let _ = self.child.0.wait();
    }

    /// Started again, on the same port, serving the same directory.
    fn restart(&mut self) {
        self.stop();
        self.child = Self::serve(self.dir.path(), self.port, &[]);
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_str().unwrap().to_string()
    }

    /// A `known_hosts` file holding the key of `key` (`host`: the server's).
    fn known_hosts(&self, key: &str) -> String {
        let public = std::fs::read_to_string(self.dir.path().join(format!("{key}.pub"))).unwrap();
        let mut fields = public.split_whitespace();
        let line = format!(
            "[127.0.0.1]:{} {} {}\n",
            self.port,
            fields.next().unwrap(),
            fields.next().unwrap()
        );
        let file = self.path(&format!("known_hosts-{key}"));
        std::fs::write(&file, line).unwrap();
        file
    }

    fn url(&self, dir: &str) -> String {
        format!("ssh://tester@127.0.0.1:{}/{dir}", self.port)
    }
}

/// What a clone of an SSH repository sets for itself: this user's key and
/// known_hosts (paths of this machine, so `--local`).
fn ssh_local_keys(env: &TestEnv, sftp: &SftpServer) {
    env.dvt(&["remote", "modify", "--local", "ssh", "keyfile", &sftp.path("user")])
        .ok();
    env.dvt(&[
        "remote",
        "modify",
        "--local",
        "ssh",
        "known_hosts",
        &sftp.known_hosts("host"),
    ])
    .ok();
}

/// A repository with `x.csv` added and `url` as its default remote `name`,
/// with nothing else set (the test sets how to log in and what to trust).
fn repo_with_remote(name: &str, url: &str) -> TestEnv {
    let a = TestEnv::new();
    a.write("x.csv", "a,b\n1,2\n");
    a.dvt(&["add", "x.csv"]).ok();
    a.dvt(&["remote", "add", "-d", name, url]).ok();
    a
}

/// Runs `dvt ARGS` twice, as a user would: with no terminal at all (a new
/// session), then on a pseudo-terminal (Python's pty), typing each answer when
/// its question shows. Says, a line each: the first run's exit code and first
/// line of stderr; the second's exit code, the questions asked in order and
/// the answers the terminal showed (echoed); the last line it showed.
fn on_terminal(env: &TestEnv, args: &[&str], answers: &[(&str, &str)]) -> String {
    let script = r#"
import json, os, pty, re, subprocess, sys
answers = {q.encode(): (a + "\n").encode() for q, a in json.loads(sys.argv[1])}
args = sys.argv[2:]
r = subprocess.run(["dvt", *args], start_new_session=True, capture_output=True, text=True)
print(r.returncode, (r.stderr.splitlines() or [""])[0])
pid, fd = pty.fork()
if pid == 0:
    os.execvp("dvt", ["dvt", *args])
out, asked = b"", []
while True:
    try:
        chunk = os.read(fd, 1024)
    except OSError:
        break
    if not chunk:
        break
    out += chunk
    for q, a in answers.items():
        if out.count(q) > asked.count(q):
            asked.append(q)
            os.write(fd, a)
_, status = os.waitpid(pid, 0)
echoed = [a.strip().decode() for a in answers.values() if a.strip() in out]
print(os.waitstatus_to_exitcode(status), [q.decode() for q in asked], echoed)
print(re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", out.decode(errors="replace")).strip().splitlines()[-1])
"#;
    let answers = serde_json::to_string(answers).unwrap();
    let r = env.python_in(&env.root, script, &[&[answers.as_str()], args].concat());
    assert!(r.stderr.is_empty(), "{}", r.stderr);
    r.stdout
}

fn ssh_repo(sftp: &SftpServer) -> TestEnv {
    let a = TestEnv::new();
    a.dvt(&[
        "remote",
        "add",
        "-d",
        "ssh",
        &sftp.url(&format!("{}/store", unique("team"))),
    ])
    .ok();
    ssh_local_keys(&a, sftp);
    a
}

#[test]
fn ssh_round_trip_with_rclone_sftp() {
    let Some(sftp) = SftpServer::start(&[]) else {
        return;
    };
    let a = ssh_repo(&sftp);
    round_trip(&a, |b| ssh_local_keys(b, &sftp));
    // What reached the server is whole, and no unfinished write is left.
    let served = sftp.dir.path().join("served");
    let store = walk(&served)
        .into_iter()
        .find(|p| p.ends_with("store"))
        .expect("the remote's directory");
    assert_remote_objects_whole(&a, &store);
    let leftovers: Vec<_> = files_under(&served)
        .into_iter()
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(".dvt-tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn gc_of_remote_runs_on_sftp() {
    let Some(sftp) = SftpServer::start(&[]) else {
        return;
    };
    gc_of_remote_runs(&ssh_repo(&sftp), |b| ssh_local_keys(b, &sftp));
}

#[test]
fn gc_grace_on_sftp() {
    let Some(sftp) = SftpServer::start(&[]) else {
        return;
    };
    gc_grace_by_the_stores_times(&ssh_repo(&sftp));
}

#[test]
fn run_cache_push_and_pull_through_sftp() {
    let Some(sftp) = SftpServer::start(&[]) else {
        return;
    };
    run_cache_round_trip(&ssh_repo(&sftp), |b| ssh_local_keys(b, &sftp));
}

/// The server's key must be the one known_hosts records, and the error says
/// what to do; authentication says what it tried; secrets stay out of
/// messages; nothing is uploaded before the server is trusted.
#[test]
fn ssh_checks_the_host_key_and_says_what_authentication_tried() {
    let password = "pw-Sekr1t";
    let Some(sftp) = SftpServer::start(&["--pass", password]) else {
        return;
    };
    let a = repo_with_remote("ssh", &sftp.url("store"));
    let served = sftp.dir.path().join("served");

    // HOME has no known_hosts: the key is unknown.
    let r = a.dvt(&["push"]).fails();
    assert!(
        r.stderr
            .contains(&format!("the host key of `[127.0.0.1]:{}`", sftp.port))
            && r.stderr
                .contains(&format!("is not in `{}`", a.home.join(".ssh/known_hosts").display()))
            && r.stderr.contains("ssh-keyscan -p")
            && !r.stderr.contains("hint:"),
        "the message says what to do, and no hint says to try again: {}",
        r.stderr
    );
    // Another key recorded for it: refused, loudly.
    a.dvt(&[
        "remote",
        "modify",
        "--local",
        "ssh",
        "known_hosts",
        &sftp.known_hosts("stranger"),
    ])
    .ok();
    let r = a.dvt(&["push"]).fails();
    assert!(
        r.stderr.contains("is not the one line 1 of") && !r.stderr.contains("hint:"),
        "{}",
        r.stderr
    );
    assert!(
        files_under(&served).is_empty(),
        "nothing is sent to an untrusted server"
    );

    // The server's key in ~/.ssh/known_hosts, no key of ours anywhere.
    std::fs::create_dir_all(a.home.join(".ssh")).unwrap();
    std::fs::copy(sftp.known_hosts("host"), a.home.join(".ssh/known_hosts")).unwrap();
    a.dvt(&["remote", "modify", "--local", "--unset", "ssh", "known_hosts"])
        .ok();
    let r = a.dvt(&["push"]).fails();
    assert!(
        r.stderr.contains("refused user `tester`: no key or password was found"),
        "{}",
        r.stderr
    );
    a.dvt(&["remote", "modify", "ssh", "password", "wrong-Pw"]).ok();
    let r = a.dvt(&["push"]).fails();
    assert!(r.stderr.contains("tried the password"), "{}", r.stderr);
    assert!(!r.stderr.contains("wrong-Pw"), "secret leaked: {}", r.stderr);
    assert!(
        !String::from_utf8(a.read(".dvt/config.toml"))
            .unwrap()
            .contains("wrong-Pw"),
        "the password is not committed"
    );
    a.dvt(&["remote", "modify", "ssh", "password", password]).ok();
    a.dvt(&["push"]).ok();
    // The default key file (~/.ssh/id_ed25519) is found without a password.
    a.dvt(&["remote", "modify", "--unset", "ssh", "password"]).ok();
    std::fs::copy(sftp.path("user"), a.home.join(".ssh/id_ed25519")).unwrap();
    let r = a.dvt(&["status", "--remote"]).ok();
    assert!(r.stdout.contains("in sync (1 object)"), "{}", r.stdout);
    // A key locked with a passphrase: it is asked for, and a wrong one is named.
    a.dvt(&["remote", "modify", "--local", "ssh", "keyfile", &sftp.path("locked")])
        .ok();
    let r = a.dvt(&["status", "--remote"]).fails();
    assert!(
        r.stderr.contains("The key is encrypted (set `passphrase`)"),
        "{}",
        r.stderr
    );
    a.dvt(&["remote", "modify", "ssh", "passphrase", "wrong-Phrase"]).ok();
    let r = a.dvt(&["status", "--remote"]).fails();
    assert!(r.stderr.contains("(is `passphrase` right?)"), "{}", r.stderr);
    assert!(!r.stderr.contains("wrong-Phrase"), "secret leaked: {}", r.stderr);
    a.dvt(&["remote", "modify", "ssh", "passphrase", "hunter22"]).ok();
    a.dvt(&["status", "--remote"]).ok();
    // A key file that cannot be read is named.
    a.dvt(&["remote", "modify", "--local", "ssh", "keyfile", "/nonexistent/key"])
        .ok();
    let r = a.dvt(&["status", "--remote"]).fails();
    assert!(
        r.stderr.contains("cannot read the key file `/nonexistent/key`"),
        "{}",
        r.stderr
    );
}

#[test]
fn ssh_server_down_is_named() {
    let Some(sftp) = SftpServer::start(&[]) else {
        return;
    };
    let a = ssh_repo(&sftp);
    a.write("x.csv", "a,b\n1,2\n");
    a.dvt(&["add", "x.csv"]).ok();
    drop(sftp);
    let r = a.dvt(&["push"]).fails();
    assert!(r.stderr.contains("cannot connect to `[127.0.0.1]:"), "{}", r.stderr);
}

/// `import-url ssh://…` of a directory and of a file, and `update` after the
/// server's file changed (SSH gives no ETag: the modification time and size
/// tell versions apart).
#[test]
fn import_url_from_sftp() {
    let Some(sftp) = SftpServer::start(&[]) else {
        return;
    };
    // A plain URL has no remote's options: the user's ~/.ssh is read.
    let a = TestEnv::new();
    std::fs::create_dir_all(a.home.join(".ssh")).unwrap();
    std::fs::copy(sftp.known_hosts("host"), a.home.join(".ssh/known_hosts")).unwrap();
    std::fs::copy(sftp.path("user"), a.home.join(".ssh/id_ed25519")).unwrap();
    let set = sftp.dir.path().join("served/exports/set");
    import_set_then_update(&a, &sftp.url("exports/set"), |rel, bytes| {
        std::fs::create_dir_all(set.join(rel).parent().unwrap()).unwrap();
        std::fs::write(set.join(rel), bytes).unwrap();
    });
}

/// The server stops while a big object goes up in parts: nothing appears
/// under the object's name, and the next push, once the server is back,
/// uploads it whole.
#[test]
fn ssh_server_stopped_mid_upload_leaves_no_partial_object() {
    let Some(mut sftp) = SftpServer::start(&[]) else {
        return;
    };
    let a = ssh_repo(&sftp);
    let model = noise(64 << 20, 7);
    a.write("model.bin", &model);
    a.dvt(&["add", "model.bin"]).ok();
    let push = a.dvt_spawn(&["push", "-j", "1"]);
    let served = sftp.dir.path().join("served");
    let partial = || {
        files_under(&served).into_iter().any(|p| {
            p.file_name().unwrap().to_string_lossy().starts_with(".dvt-tmp-")
                && p.metadata().is_ok_and(|m| m.len() > 1 << 20)
        })
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while !partial() {
        assert!(Instant::now() < deadline, "push made no progress");
        std::thread::sleep(Duration::from_millis(2));
    }
    sftp.stop();
    let stopped = Instant::now();
    let out = push.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "push should fail: {stderr}");
    // At once, not after the 300 s each request in flight may wait for an answer.
    assert!(
        stopped.elapsed() < Duration::from_secs(60),
        "the push waited {:?} after the server was gone: {stderr}",
        stopped.elapsed()
    );
    assert!(stderr.contains("remote `ssh`"), "{stderr}");
    let store = walk(&served).into_iter().find(|p| p.ends_with("store")).unwrap();
    assert!(Store::at(&store).ids().is_empty(), "a partial object is visible");

    sftp.restart();
    let r = a.dvt(&["push", "--json"]).ok();
    assert_eq!(r.json()["uploaded"], 1, "{}", r.stdout);
    assert_eq!(Store::at(&store).ids(), a.object_ids());
    assert_remote_objects_whole(&a, &store);
    a.commit("model");
    let b = a.clone_repo();
    ssh_local_keys(&b, &sftp);
    b.dvt(&["pull"]).ok();
    assert!(b.read("model.bin") == model, "the clone's model differs");

    // The killed push's temporary file is left to `gc -c`, once it is an
    // hour old (a push still writing it would be younger).
    let unfinished = || -> Vec<PathBuf> {
        files_under(&served)
            .into_iter()
            .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(".dvt-tmp-"))
            .collect()
    };
    assert_eq!(unfinished().len(), 1);
    a.dvt(&["gc", "-c", "-f"]).ok();
    assert_eq!(unfinished().len(), 1, "a young temporary file is kept");
    let tmp = unfinished()[0].to_str().unwrap().to_string();
    a.run("touch", &["-d", "2 hours ago", &tmp]).ok();
    a.dvt(&["gc", "-c", "-f"]).ok();
    assert!(unfinished().is_empty());
    assert_eq!(Store::at(&store).ids(), a.object_ids(), "objects stay");
}

/// `ssh://labbox/…` reaches what `ssh labbox` reaches: HostName, Port, User,
/// IdentityFile and UserKnownHostsFile come from `~/.ssh/config`, the key
/// from a `Match` section (a `Match exec` one, which only ssh can evaluate,
/// is skipped).
#[test]
fn ssh_reads_the_host_alias_from_ssh_config() {
    let Some(sftp) = SftpServer::start(&[]) else {
        return;
    };
    let ssh_config = |env: &TestEnv| {
        std::fs::create_dir_all(env.home.join(".ssh")).unwrap();
        std::fs::write(
            env.home.join(".ssh/config"),
            format!(
                "Host labbox\n  HostName 127.0.0.1\n  Port {}\n  User tester\n  \
                 UserKnownHostsFile {}\nMatch exec \"true\"\n  IdentityFile /nonexistent\n\
                 Match originalhost labbox user tester\n  IdentityFile {}\nHost *\n  User nobody\n",
                sftp.port,
                sftp.known_hosts("host"),
                sftp.path("user")
            ),
        )
        .unwrap();
    };
    let a = TestEnv::new();
    a.dvt(&["remote", "add", "-d", "ssh", "ssh://labbox/team/store"]).ok();
    ssh_config(&a);
    round_trip(&a, ssh_config);
    assert!(sftp.dir.path().join("served/team/store/packs").is_dir());
    // git's scp-like form names the same store.
    a.dvt(&["remote", "add", "scp", "labbox:/team/store"]).ok();
    let r = a.dvt(&["status", "-c", "-r", "scp", "--json"]).ok().json();
    let pointers = r["pointers"].as_array().unwrap();
    assert!(
        !pointers.is_empty()
            && pointers
                .iter()
                .all(|p| p["local_only"] == serde_json::json!([]) && p["missing"] == serde_json::json!([])),
        "{r}"
    );
    assert_eq!(a.dvt(&["doctor"]).ok().stdout.matches("(ssh)").count(), 2);
}

/// With no key file anywhere, the keys of a running ssh agent log in (and
/// `allow_agent = false` keeps dvt from asking it).
#[test]
fn ssh_logs_in_with_the_agents_keys() {
    let Some(sftp) = SftpServer::start(&[]) else {
        return;
    };
    let a = repo_with_remote("ssh", &sftp.url("store"));
    a.dvt(&[
        "remote",
        "modify",
        "--local",
        "ssh",
        "known_hosts",
        &sftp.known_hosts("host"),
    ])
    .ok();
    let socket = sftp.dir.path().join("agent.sock");
    let _agent = ssh_agent(&socket, &[&sftp.path("user")]);
    let push = |extra_env: Option<&Path>| {
        let mut c = a.dvt_cmd(&["push"]);
        match extra_env {
            Some(s) => c.env("SSH_AUTH_SOCK", s),
            None => c.env_remove("SSH_AUTH_SOCK"),
        };
        common::Run::from(c.output().unwrap())
    };
    let r = push(None).fails();
    assert!(r.stderr.contains("no key or password was found"), "{}", r.stderr);
    a.dvt(&["remote", "modify", "ssh", "allow_agent", "false"]).ok();
    let r = push(Some(&socket)).fails();
    assert!(r.stderr.contains("no key or password was found"), "{}", r.stderr);
    a.dvt(&["remote", "modify", "--unset", "ssh", "allow_agent"]).ok();
    push(Some(&socket)).ok();
}

/// A new ed25519 key pair, `path` and `path.pub`, with no passphrase; its
/// comment is the file's name.
fn keygen(path: &Path) {
    let name = path.file_name().unwrap().to_str().unwrap();
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(path)
        .output()
        .expect("ssh-keygen (openssh-client) is installed by scripts/servers.sh");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// An ssh-agent listening on `socket`, holding `keys` (added in that order).
fn ssh_agent(socket: &Path, keys: &[&str]) -> KillOnDrop {
    let agent = KillOnDrop(
        Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(socket)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("ssh-agent (openssh-client) is installed by scripts/servers.sh"),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !socket.exists() {
        assert!(Instant::now() < deadline, "ssh-agent did not start");
        std::thread::sleep(Duration::from_millis(10));
    }
    for key in keys {
        // The socket may be there a moment before the agent listens on it.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let added = Command::new("ssh-add")
                .arg("-q")
                .arg(key)
                .env("SSH_AUTH_SOCK", socket)
                .output()
                .unwrap();
            if added.status.success() {
                break;
            }
            assert!(Instant::now() < deadline, "{}", String::from_utf8_lossy(&added.stderr));
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    agent
}

/// A child process killed when the test ends, passed or not.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Objects damaged on an SSH server (a packed file flipped, a big one cut
/// short) are refused on the way in: nothing damaged reaches the cache or the
/// workspace, the error names the object, and `fsck -r` finds both.
#[test]
fn ssh_refuses_damaged_objects() {
    let Some(sftp) = SftpServer::start(&[]) else {
        return;
    };
    let a = ssh_repo(&sftp);
    populate(&a);
    a.dvt(&["push"]).ok();
    a.commit("data");
    let served = sftp.dir.path().join("served");
    let store = walk(&served).into_iter().find(|p| p.ends_with("store")).unwrap();
    let img = blake3_hex(&noise(40_001, 2));
    let model = blake3_hex(&noise(10 * 1024 * 1024 + 4321, 99));
    let remote = common::Store::at(&store);
    remote.damage(&img, |b| {
        let n = b.len();
        b[n / 2] ^= 1;
    });
    remote.damage(&model, |b| b.truncate(b.len() - 1000));

    let r = a.dvt(&["fsck", "-r"]).fails();
    assert!(
        r.stdout.contains(&img) && r.stdout.contains(&model),
        "{}{}",
        r.stdout,
        r.stderr
    );
    let b = a.clone_repo();
    ssh_local_keys(&b, &sftp);
    let r = b.dvt(&["pull"]).fails();
    assert!(r.stderr.contains("is corrupt"), "{}", r.stderr);
    assert!(r.stderr.contains(&img) || r.stderr.contains(&model), "{}", r.stderr);
    assert!(
        !b.has_object(&img) && !b.has_object(&model),
        "a damaged object was stored"
    );
    assert!(!b.exists("model.bin"), "the workspace got a damaged model");
    assert_no_pull_leftovers(&b);
}

/// A pack cut short on the remote (a disk that filled, a copy stopped half way):
/// a pull keeps the objects before the cut, refuses those after it, naming the
/// pack, and checks nothing out.
#[test]
fn ssh_pull_of_a_truncated_pack_keeps_what_arrived_and_names_the_pack() {
    let Some(sftp) = SftpServer::start(&[]) else {
        return;
    };
    let a = ssh_repo(&sftp);
    add_parts(&a, 40, 20_000);
    a.dvt(&["push"]).ok();
    a.commit("data");
    let packs: Vec<_> = walk(&sftp.dir.path().join("served"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "pack"))
        .collect();
    assert_eq!(packs.len(), 1, "{packs:?}");
    let len = std::fs::metadata(&packs[0]).unwrap().len();
    let file = std::fs::OpenOptions::new().write(true).open(&packs[0]).unwrap();
    file.set_len(len / 2).unwrap();

    let b = a.clone_repo();
    ssh_local_keys(&b, &sftp);
    let r = b.dvt(&["pull"]).fails();
    assert!(r.stderr.contains("is corrupt"), "{}", r.stderr);
    assert!(
        r.stderr
            .contains(&format!("holds {} bytes, fewer than its index lists", len / 2)),
        "{}",
        r.stderr
    );
    let arrived = (0..40).filter(|&i| b.has_object(&blake3_hex(&part(20_000, i)))).count();
    assert!((15..25).contains(&arrived), "{arrived} of 40 objects arrived");
    assert!(!b.exists("data"));
    assert_no_pull_leftovers(&b);
}

/// OpenSSH's sshd on a free port of 127.0.0.1, as a jump host: it lets this
/// machine's user in with the key `authorized` and forwards connections.
struct Sshd {
    process: Option<KillOnDrop>,
    dir: tempfile::TempDir,
    port: u16,
}

impl Sshd {
    fn start(authorized: &str) -> Sshd {
        let dir = tempfile::tempdir().unwrap();
        keygen(&dir.path().join("host"));
        std::fs::copy(authorized, dir.path().join("authorized_keys")).unwrap();
        let d = dir.path().display();
        std::fs::write(
            dir.path().join("sshd_config"),
            format!(
                "ListenAddress 127.0.0.1\nHostKey {d}/host\nPidFile none\nAuthorizedKeysFile {d}/authorized_keys\n\
                 PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n\
                 PermitRootLogin prohibit-password\nStrictModes no\nAllowTcpForwarding yes\n\
                 Subsystem sftp internal-sftp\n"
            ),
        )
        .unwrap();
        // sshd's privilege separation directory.
        std::fs::create_dir_all("/run/sshd").unwrap();
        let mut sshd = Sshd {
            process: None,
            dir,
            port: free_port(),
        };
        sshd.restart();
        sshd
    }

    /// Started (again), on the same port.
    fn restart(&mut self) {
        self.process = None;
        let log = std::fs::File::create(self.dir.path().join("sshd.log")).unwrap();
        let child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-p", &self.port.to_string(), "-f"])
            .arg(self.dir.path().join("sshd_config"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("sshd (openssh-server) is installed by scripts/servers.sh");
        self.process = Some(KillOnDrop(child));
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "sshd did not start: {}",
                std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stop(&mut self) {
        self.process = None;
    }

    /// The URL of directory `store` below `served` on this server, as you.
    fn url(&self, served: &Path) -> String {
        format!("ssh://{}@127.0.0.1:{}{}/store", me(), self.port, served.display())
    }

    /// Adds `line` to sshd_config and starts again.
    fn set(&mut self, line: &str) {
        let config = self.dir.path().join("sshd_config");
        let text = std::fs::read_to_string(&config).unwrap();
        std::fs::write(&config, format!("{line}\n{text}")).unwrap();
        self.restart();
    }

    /// Presents a host certificate signed by the authority `ca` (a key file
    /// made by `ssh-keygen`) for `principals`, from its next start on.
    fn certify(&mut self, ca: &Path, principals: &str) {
        let out = Command::new("ssh-keygen")
            .args(["-q", "-s"])
            .arg(ca)
            .args(["-I", "test-host", "-h", "-n", principals])
            .arg(self.dir.path().join("host.pub"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let config = self.dir.path().join("sshd_config");
        let text = std::fs::read_to_string(&config).unwrap();
        let line = format!("HostCertificate {}\n", self.dir.path().join("host-cert.pub").display());
        if !text.contains(&line) {
            std::fs::write(&config, text + &line).unwrap();
        }
        self.restart();
    }

    /// Its line for a `known_hosts` file.
    fn known_host(&self) -> String {
        let public = std::fs::read_to_string(self.dir.path().join("host.pub")).unwrap();
        let mut fields = public.split_whitespace();
        format!(
            "[127.0.0.1]:{} {} {}\n",
            self.port,
            fields.next().unwrap(),
            fields.next().unwrap()
        )
    }
}

/// An OpenSSH server that lets in the key `user` of `keys` (which also holds
/// another key, for the test to use), and a repository whose remote `lab` is
/// the directory `store` below `served` on it, logging in with that key.
struct SshdRepo {
    keys: tempfile::TempDir,
    sshd: Sshd,
    served: tempfile::TempDir,
    a: TestEnv,
}

impl SshdRepo {
    /// `None` where the test servers are not installed.
    fn new(other_key: &str) -> Option<SshdRepo> {
        server("DVT_TEST_WEBDAV_URL")?;
        let keys = tempfile::tempdir().unwrap();
        keygen(&keys.path().join("user"));
        keygen(&keys.path().join(other_key));
        let sshd = Sshd::start(keys.path().join("user.pub").to_str().unwrap());
        let served = tempfile::tempdir().unwrap();
        let a = repo_with_remote("lab", &sshd.url(served.path()));
        log_in_with(&a, &keys.path().join("user"));
        Some(SshdRepo { keys, sshd, served, a })
    }
}

/// Makes `a`'s remote `lab` log in with the key file `key` (in this clone only).
fn log_in_with(a: &TestEnv, key: &Path) {
    a.dvt(&["remote", "modify", "--local", "lab", "keyfile", key.to_str().unwrap()])
        .ok();
}

/// known_hosts read as ssh reads it: hashed lines (`HashKnownHosts yes`, the
/// default of Debian's and Ubuntu's ssh_config), host patterns with `?` and
/// `!`, an old key of the host's type before its current one, a server known
/// by its ECDSA key that also has an Ed25519 one (asked for the kind known,
/// as ssh asks), and a key only in a machine-wide file
/// (`GlobalKnownHostsFile`). All but the hashed lines failed before dvt read
/// known_hosts itself (russh's reader matched names exactly and stopped at
/// the first key of the server's type).
#[test]
fn ssh_reads_known_hosts_as_ssh_does() {
    let Some(mut lab) = SshdRepo::new("old") else {
        return;
    };
    let SshdRepo { keys, sshd, a, .. } = &mut lab;
    a.write("x.csv", "a,b\n1,2\n");
    a.dvt(&["add", "x.csv"]).ok();
    let name = format!("[127.0.0.1]:{}", sshd.port);
    let key_of = |public: &Path| {
        let text = std::fs::read_to_string(public).unwrap();
        text.split_whitespace().take(2).collect::<Vec<_>>().join(" ")
    };
    let host_key = key_of(&sshd.dir.path().join("host.pub"));
    let old_key = key_of(&keys.path().join("old.pub"));
    let known_hosts = a.home.join(".ssh/known_hosts");
    std::fs::create_dir_all(known_hosts.parent().unwrap()).unwrap();
    let connects = |known: &str| {
        std::fs::write(&known_hosts, known).unwrap();
        a.dvt(&["status", "--remote", "-r", "lab"])
    };

    // Hashed by ssh-keygen, as ssh writes it with `HashKnownHosts yes`.
    std::fs::write(&known_hosts, format!("{name} {host_key}\n")).unwrap();
    let hashed = Command::new("ssh-keygen")
        .arg("-H")
        .arg("-f")
        .arg(&known_hosts)
        .output()
        .unwrap();
    assert!(hashed.status.success(), "{}", String::from_utf8_lossy(&hashed.stderr));
    let text = std::fs::read_to_string(&known_hosts).unwrap();
    assert!(text.starts_with("|1|") && !text.contains("127.0.0.1"), "{text}");
    connects(&text).ok();

    // Patterns, and a `!` that excludes this host.
    connects(&format!("[127.0.0.?]:{} {host_key}\n", sshd.port)).ok();
    let r = connects(&format!("[127.0.0.*]:{0},![127.0.0.1]:{0} {host_key}\n", sshd.port)).fails();
    assert!(r.stderr.contains("is not in"), "{}", r.stderr);

    // An old key of the same type first: the host's key is on the next line.
    connects(&format!("{name} {old_key}\n{name} {host_key}\n")).ok();
    let r = connects(&format!("# old\n{name} {old_key}\n")).fails();
    assert!(
        r.stderr
            .contains(&format!("is not the one line 2 of `{}` records", known_hosts.display())),
        "{}",
        r.stderr
    );

    // Known by its ECDSA key: the server offers its Ed25519 one first.
    let ecdsa = sshd.dir.path().join("host_ecdsa");
    let made = Command::new("ssh-keygen")
        .args(["-q", "-t", "ecdsa", "-N", "", "-f"])
        .arg(&ecdsa)
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    sshd.set(&format!("HostKey {}", ecdsa.display()));
    connects(&format!("{name} {}\n", key_of(&ecdsa.with_extension("pub")))).ok();

    // Only in the machine's file that ~/.ssh/config names.
    let global = a.home.join("ssh_known_hosts");
    std::fs::write(&global, format!("{name} {host_key}\n")).unwrap();
    std::fs::write(
        a.home.join(".ssh/config"),
        format!("GlobalKnownHostsFile {}\n", global.display()),
    )
    .unwrap();
    connects("").ok();
}

/// `~/.ssh/config` as teams write it for hosts reached through a tunnel or a
/// shared bastion: a key file per user and host named with `%` tokens (`%d`,
/// `%r`, `%h`, `%p`; before, only `%d` and `%h` were expanded, and a later
/// `HostName` did not reach them), a known_hosts file per host alias (`%k`)
/// and `HostKeyAlias`, under which the host key is looked up and recorded, as
/// OpenSSH does (without the port).
#[test]
fn ssh_config_tokens_and_host_key_alias_work_as_in_ssh() {
    let Some(mut lab) = SshdRepo::new("unused") else {
        return;
    };
    let SshdRepo { keys, sshd, a, .. } = &mut lab;
    a.write("x.csv", "a,b\n1,2\n");
    a.dvt(&["add", "x.csv"]).ok();
    let ssh_dir = a.home.join(".ssh");
    std::fs::create_dir_all(ssh_dir.join("keys")).unwrap();
    // The key only where the tokens lead, no agent, no keyfile option.
    let key = ssh_dir.join(format!("keys/{}-127.0.0.1-{}", me(), sshd.port));
    std::fs::copy(keys.path().join("user"), &key).unwrap();
    a.dvt(&["remote", "modify", "--local", "--unset", "lab", "keyfile"])
        .ok();
    std::fs::write(
        ssh_dir.join("config"),
        "Host *\n  IdentityFile %d/.ssh/keys/%r-%h-%p\n  UserKnownHostsFile ~/.ssh/known_hosts.%k\n  \
         GlobalKnownHostsFile /dev/null\n  HashKnownHosts no\n  IdentitiesOnly yes\n\
         Host 127.0.0.1\n  HostKeyAlias lab-server\n",
    )
    .unwrap();
    let known_hosts = ssh_dir.join("known_hosts.lab-server");
    let host_key = sshd.known_host();
    let host_key = host_key.split_once(' ').unwrap().1.trim_end();
    let status = |strict: &str| {
        let mut c = a.dvt_cmd(&["status", "--remote", "-v"]);
        c.env_remove("SSH_AUTH_SOCK");
        if !strict.is_empty() {
            std::fs::write(
                ssh_dir.join("config"),
                std::fs::read_to_string(ssh_dir.join("config")).unwrap()
                    + &format!("Host *\n  StrictHostKeyChecking {strict}\n"),
            )
            .unwrap();
        }
        common::Run::from(c.output().unwrap())
    };

    // Known under the address and port only: not under the alias.
    std::fs::write(&known_hosts, sshd.known_host()).unwrap();
    let r = status("").fails();
    assert!(
        r.stderr.contains(&format!(
            "is not in `{}` under its `HostKeyAlias` `lab-server`",
            known_hosts.display()
        )) && r.stderr.contains("sed 's/^[^ ]*/lab-server/'"),
        "{}",
        r.stderr
    );
    // Under the alias: trusted, and the key the tokens name logs in.
    std::fs::write(&known_hosts, format!("lab-server {host_key}\n")).unwrap();
    let r = status("").ok();
    assert!(r.stderr.contains(&key.display().to_string()), "{}", r.stderr);
    // A new key is recorded under the alias, as ssh records it.
    std::fs::remove_file(&known_hosts).unwrap();
    status("accept-new").ok();
    assert_eq!(
        std::fs::read_to_string(&known_hosts).unwrap(),
        format!(
            "lab-server {}\n",
            host_key.split_whitespace().take(2).collect::<Vec<_>>().join(" ")
        )
    );
    status("").ok();
}

/// Logins with SSH certificates, as teams with an SSH certificate authority
/// make them (the server trusts the CA with `TrustedUserCAKeys` and has no
/// authorized key for the user): `KEY-cert.pub` beside the key file, a
/// `CertificateFile` of `~/.ssh/config`, and a certificate the ssh agent holds
/// (`ssh-add` adds it with its key). The key alone is refused.
#[test]
fn ssh_logs_in_with_a_user_certificate() {
    let Some(mut lab) = SshdRepo::new("ca") else {
        return;
    };
    let SshdRepo { keys, sshd, a, .. } = &mut lab;
    let key = |name: &str| keys.path().join(name);
    keygen(&key("member"));
    sshd.set(&format!("TrustedUserCAKeys {}", key("ca.pub").display()));
    let ssh_dir = a.home.join(".ssh");
    std::fs::create_dir_all(&ssh_dir).unwrap();
    std::fs::write(ssh_dir.join("known_hosts"), sshd.known_host()).unwrap();
    log_in_with(a, &key("member"));
    a.write("x.csv", "a,b\n1,2\n");
    a.dvt(&["add", "x.csv"]).ok();
    let status = |agent: Option<&Path>| {
        let mut c = a.dvt_cmd(&["status", "--remote", "-v"]);
        match agent {
            Some(socket) => c.env("SSH_AUTH_SOCK", socket),
            None => c.env_remove("SSH_AUTH_SOCK"),
        };
        common::Run::from(c.output().unwrap())
    };
    let r = status(None).fails();
    assert!(
        r.stderr.contains("authentication failed") || r.stderr.contains("tried"),
        "{}",
        r.stderr
    );

    let signed = Command::new("ssh-keygen")
        .args(["-q", "-s"])
        .arg(key("ca"))
        .args(["-I", "member", "-n", &me()])
        .arg(key("member.pub"))
        .output()
        .unwrap();
    assert!(signed.status.success(), "{}", String::from_utf8_lossy(&signed.stderr));
    let cert = key("member-cert.pub");
    let r = status(None).ok();
    assert!(
        r.stderr.contains(&format!("with the certificate `{}`", cert.display())),
        "{}",
        r.stderr
    );

    // Elsewhere, named by `CertificateFile`.
    let moved = key("elsewhere.crt");
    std::fs::rename(&cert, &moved).unwrap();
    status(None).fails();
    std::fs::write(
        ssh_dir.join("config"),
        format!("Host *\n  CertificateFile {}\n", moved.display()),
    )
    .unwrap();
    let r = status(None).ok();
    assert!(
        r.stderr
            .contains(&format!("with the certificate `{}`", moved.display())),
        "{}",
        r.stderr
    );

    // Held by the agent, no key file named.
    std::fs::remove_file(ssh_dir.join("config")).unwrap();
    std::fs::rename(&moved, &cert).unwrap();
    a.dvt(&["remote", "modify", "--local", "--unset", "lab", "keyfile"])
        .ok();
    let socket = keys.path().join("agent.sock");
    let _agent = ssh_agent(&socket, &[key("member").to_str().unwrap()]);
    std::fs::remove_file(&cert).unwrap();
    let r = status(Some(&socket)).ok();
    assert!(r.stderr.contains("with a certificate of the ssh agent"), "{}", r.stderr);
}

/// This machine's user name (what the jump host is logged into as).
fn me() -> String {
    let out = Command::new("id").arg("-un").output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// A server whose key known_hosts lacks, as ssh meets it
/// (`StrictHostKeyChecking`, default `ask`): on a terminal the question is
/// asked, `no` refuses, the fingerprint typed out (or `yes`) trusts the key
/// and records it; `accept-new` records it with a warning; `yes` refuses
/// without asking; a key that differs from the recorded one is refused
/// whatever the setting. Nothing is sent to a server not trusted.
#[test]
fn ssh_asks_whether_to_trust_a_new_host_key_as_ssh_does() {
    let Some(SshdRepo { keys, sshd, served, a }) = SshdRepo::new("impostor") else {
        return;
    };
    let known_hosts = a.home.join(".ssh/known_hosts");
    let listed = Command::new("ssh-keygen")
        .args(["-E", "sha256", "-lf"])
        .arg(sshd.dir.path().join("host.pub"))
        .output()
        .unwrap();
    let listed = String::from_utf8(listed.stdout).unwrap();
    let fingerprint = listed.split_whitespace().nth(1).unwrap().to_string();
    let question = "Are you sure you want to continue connecting (yes/no/[fingerprint])? ";

    // No terminal: refused as before; on one, asked; `no` refuses.
    let shown = on_terminal(&a, &["push"], &[(question, "no")]);
    let lines: Vec<&str> = shown.lines().collect();
    assert!(
        lines[0].starts_with("1 error: remote `lab`") && lines[0].contains("is not in"),
        "{shown}"
    );
    assert_eq!(lines[1], format!("1 ['{question}'] ['no']"), "{shown}");
    assert!(
        lines[2].contains(&format!(
            "the host key of `[127.0.0.1]:{}` ({fingerprint}) was not accepted",
            sshd.port
        )),
        "{shown}"
    );
    assert!(
        !known_hosts.exists() && files_under(served.path()).is_empty(),
        "{shown}"
    );

    // The fingerprint typed out: trusted, recorded (as written: this
    // machine's /etc/ssh/ssh_config may say `HashKnownHosts yes`, which the
    // user's file overrides), and not asked again.
    let config = |lines: &str| std::fs::write(a.home.join(".ssh/config"), format!("Host 127.0.0.1\n{lines}")).unwrap();
    std::fs::create_dir_all(a.home.join(".ssh")).unwrap();
    config("  HashKnownHosts no\n");
    let shown = on_terminal(&a, &["push"], &[(question, &fingerprint)]);
    assert!(
        shown.ends_with("pushed 1 object (16 B) to `lab`; 0 already there\n"),
        "{shown}"
    );
    assert_eq!(std::fs::read_to_string(&known_hosts).unwrap(), sshd.known_host());
    a.write("y.csv", "y\n");
    a.dvt(&["add", "y.csv"]).ok();
    a.dvt(&["push"]).ok();

    // `accept-new`: recorded with a warning, nothing asked; with
    // `HashKnownHosts yes`, hashed, as ssh records it and finds it.
    std::fs::remove_file(&known_hosts).unwrap();
    config("  StrictHostKeyChecking accept-new\n  HashKnownHosts yes\n");
    let r = a.dvt(&["status", "-c"]).ok();
    assert!(
        r.stderr.contains(&format!(
            "warning: added the host key of `[127.0.0.1]:{}` (ssh-ed25519 {fingerprint}) to `{}`",
            sshd.port,
            known_hosts.display()
        )),
        "{}",
        r.stderr
    );
    let recorded = std::fs::read_to_string(&known_hosts).unwrap();
    let (name, key) = sshd
        .known_host()
        .trim()
        .split_once(' ')
        .map(|(n, k)| (n.to_string(), k.to_string()))
        .unwrap();
    assert!(
        recorded.starts_with("|1|") && recorded.trim().ends_with(&key),
        "{recorded}"
    );
    let found = Command::new("ssh-keygen")
        .args(["-F", &name, "-f"])
        .arg(&known_hosts)
        .output()
        .unwrap();
    assert!(found.status.success() && String::from_utf8_lossy(&found.stdout).contains(&key));
    a.dvt(&["status", "-c"]).ok();
    // A key other than the recorded one is refused, even with `accept-new`.
    let impostor = std::fs::read_to_string(keys.path().join("impostor.pub")).unwrap();
    let line = format!(
        "[127.0.0.1]:{} {}\n",
        sshd.port,
        impostor.split_whitespace().take(2).collect::<Vec<_>>().join(" ")
    );
    std::fs::write(&known_hosts, line).unwrap();
    a.write("z.csv", "z\n");
    a.dvt(&["add", "z.csv"]).ok();
    let before = files_under(served.path());
    let r = a.dvt(&["push"]).fails();
    assert!(
        r.stderr.contains("is not the one line 1 of") && !r.stderr.contains("hint:"),
        "{}",
        r.stderr
    );
    assert_eq!(files_under(served.path()), before);

    // `yes`: refused without a question, terminal or not.
    std::fs::remove_file(&known_hosts).unwrap();
    config("  StrictHostKeyChecking yes\n");
    let shown = on_terminal(&a, &["push"], &[(question, "yes")]);
    let lines: Vec<&str> = shown.lines().collect();
    assert_eq!(lines[1], "1 [] []", "{shown}");
    assert!(lines[2].contains("is not in"), "{shown}");
    assert!(!known_hosts.exists());
}

/// An ssh agent holding many keys, against a server that lets a client try
/// few (`MaxAuthTries`), as ssh handles it: the agent's copy of the key
/// file `~/.ssh/config` names goes first; `IdentitiesOnly yes` offers none
/// of the agent's other keys; `IdentityAgent` picks the agent, or none.
#[test]
fn ssh_offers_the_configured_key_first_and_honours_identities_only() {
    if server("DVT_TEST_WEBDAV_URL").is_none() {
        return;
    }
    let keys = tempfile::tempdir().unwrap();
    let key = |name: &str| keys.path().join(name).to_str().unwrap().to_string();
    for name in ["user", "other1", "other2", "other3"] {
        keygen(&keys.path().join(name));
    }
    let mut sshd = Sshd::start(&key("user.pub"));
    sshd.set("MaxAuthTries 2");
    let served = tempfile::tempdir().unwrap();
    let url = sshd.url(served.path());
    let a = repo_with_remote("lab", &url);
    let ssh_dir = a.home.join(".ssh");
    std::fs::create_dir_all(&ssh_dir).unwrap();
    std::fs::write(ssh_dir.join("known_hosts"), sshd.known_host()).unwrap();
    let config = |extra: &str| {
        let text = format!("Host 127.0.0.1\n  IdentityFile {}\n{extra}", key("user"));
        std::fs::write(ssh_dir.join("config"), text).unwrap();
    };
    let push = |socket: &Path| {
        common::Run::from(
            a.dvt_cmd(&["push", "-v"])
                .env("SSH_AUTH_SOCK", socket)
                .output()
                .unwrap(),
        )
    };

    // The agent holds three other keys before the configured one: that one
    // is offered first, by the agent.
    let socket = keys.path().join("all.sock");
    let _all = ssh_agent(&socket, &[&key("other1"), &key("other2"), &key("other3"), &key("user")]);
    config("");
    let r = push(&socket).ok();
    assert!(
        r.stderr
            .contains(&format!("with the key `{}` (held by the ssh agent)", key("user"))),
        "{}",
        r.stderr
    );

    // The agent holds only other keys: they use up the tries before the key
    // file gets its turn, unless `IdentitiesOnly yes`.
    let socket = keys.path().join("others.sock");
    let _others = ssh_agent(&socket, &[&key("other1"), &key("other2"), &key("other3")]);
    a.write("y.csv", "y\n");
    a.dvt(&["add", "y.csv"]).ok();
    let before = files_under(served.path());
    let r = push(&socket).fails();
    assert!(
        r.stderr.contains("refused user") || r.stderr.contains("authentication"),
        "{}",
        r.stderr
    );
    assert_eq!(files_under(served.path()), before, "nothing was sent");
    config("  IdentitiesOnly yes\n");
    let r = push(&socket).ok();
    assert!(
        r.stderr.contains(&format!("with the key `{}`", key("user"))),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("held by the ssh agent"), "{}", r.stderr);

    // `IdentityAgent none`: the agent is not asked; a socket path: that
    // agent, whatever SSH_AUTH_SOCK says.
    a.write("z.csv", "z\n");
    a.dvt(&["add", "z.csv"]).ok();
    config("  IdentityAgent none\n");
    let r = push(&socket).ok();
    assert!(
        r.stderr.contains(&format!("with the key `{}`", key("user"))),
        "{}",
        r.stderr
    );
    a.write("w.csv", "w\n");
    a.dvt(&["add", "w.csv"]).ok();
    config(&format!("  IdentityAgent {}\n", keys.path().join("all.sock").display()));
    let r = push(&keys.path().join("no-such.sock")).ok();
    assert!(r.stderr.contains("(held by the ssh agent)"), "{}", r.stderr);
}

/// A server reached only through other hosts: the remote's `proxy_jump`,
/// `ProxyJump` and `ProxyCommand` in `~/.ssh/config` (jump hosts set up from
/// that file alone, as ssh sets them up), chains of them; when the jump host
/// is down, or its key unknown, or a `ProxyJump` loops, the error says which.
#[test]
fn ssh_through_jump_hosts_and_proxy_commands() {
    let Some(sftp) = SftpServer::start(&[]) else {
        return;
    };
    let mut jump = Sshd::start(&sftp.path("user.pub"));
    let me = me();
    let jump_key = jump.known_host();
    // What `ssh` to the jump host needs in a home: the default key, the host's key.
    let jump_home = |env: &TestEnv| {
        let ssh = env.home.join(".ssh");
        std::fs::create_dir_all(&ssh).unwrap();
        std::fs::copy(sftp.path("user"), ssh.join("id_ed25519")).unwrap();
        std::fs::write(ssh.join("known_hosts"), &jump_key).unwrap();
    };
    let a = ssh_repo(&sftp);
    jump_home(&a);
    a.dvt(&[
        "remote",
        "modify",
        "ssh",
        "proxy_jump",
        &format!("{me}@127.0.0.1:{}", jump.port),
    ])
    .ok();
    round_trip(&a, |b| {
        ssh_local_keys(b, &sftp);
        jump_home(b);
    });

    // The server is up, the jump host is not: the connection goes through it.
    jump.stop();
    let r = a.dvt(&["status", "-c"]).fails();
    assert!(
        r.stderr
            .contains(&format!("cannot connect to jump host `[127.0.0.1]:{}`", jump.port)),
        "{}",
        r.stderr
    );
    jump.restart();
    let r = a.dvt(&["status", "-c", "-v"]).ok();
    assert!(
        r.stderr.contains(&format!(
            "connected to `[127.0.0.1]:{}` through jump host `[127.0.0.1]:{}`",
            sftp.port, jump.port
        )) && r.stderr.contains("logged in to `[127.0.0.1]:"),
        "{}",
        r.stderr
    );
    // An unknown jump host is refused by its key, as the server is.
    std::fs::write(a.home.join(".ssh/known_hosts"), "").unwrap();
    let r = a.dvt(&["status", "-c"]).fails();
    assert!(
        r.stderr
            .contains(&format!("the host key of jump host `[127.0.0.1]:{}`", jump.port)),
        "{}",
        r.stderr
    );
    jump_home(&a);
    a.dvt(&["remote", "modify", "--unset", "ssh", "proxy_jump"]).ok();

    // ~/.ssh/config: the server by an alias, through a chain of two jump
    // hosts (the same sshd twice), each set up by its own section.
    let ssh_dir = a.home.join(".ssh");
    std::fs::write(
        ssh_dir.join("config"),
        format!(
            "Host lab\n  HostName 127.0.0.1\n  Port {}\n  User tester\n  UserKnownHostsFile {}\n  \
             ProxyJump bastion,inner\n\
             Host bastion inner\n  HostName 127.0.0.1\n  Port {}\n  User {me}\n\
             Host loop1\n  ProxyJump loop2\nHost loop2\n  ProxyJump loop1\n",
            sftp.port,
            sftp.known_hosts("host"),
            jump.port
        ),
    )
    .unwrap();
    let store = a.dvt(&["remote", "list"]).ok().stdout;
    let dir = store.split(&format!("127.0.0.1:{}/", sftp.port)).nth(1).unwrap();
    let dir = dir.split_whitespace().next().unwrap();
    a.dvt(&["remote", "add", "lab", &format!("ssh://lab/{dir}")]).ok();
    let logins = || {
        std::fs::read_to_string(jump.dir.path().join("sshd.log"))
            .unwrap()
            .matches("Accepted publickey")
            .count()
    };
    let before = logins();
    let r = a.dvt(&["status", "-c", "-r", "lab"]).ok();
    assert!(r.stdout.contains("in sync"), "{}", r.stdout);
    assert_eq!(logins(), before + 2, "one login per jump host");
    a.dvt(&["remote", "add", "loop", "ssh://loop1/x"]).ok();
    let r = a.dvt(&["push", "-r", "loop"]).fails();
    assert!(r.stderr.contains("more than 8 jump hosts, `loop"), "{}", r.stderr);

    // ProxyCommand, with its tokens: here `ssh -W` through the jump host,
    // noting each use.
    let used = a.path("proxy-used");
    let command = format!(
        "sh -c 'echo %r@%h:%p >> {}; exec ssh -F /dev/null -i {} -o UserKnownHostsFile={} -o BatchMode=yes \
         -p {} -W %h:%p {me}@127.0.0.1'",
        used.display(),
        sftp.path("user"),
        ssh_dir.join("known_hosts").display(),
        jump.port
    );
    std::fs::write(
        ssh_dir.join("config"),
        format!("Host 127.0.0.1\n  ProxyCommand {command}\n"),
    )
    .unwrap();
    a.dvt(&["status", "-c"]).ok();
    assert_eq!(
        std::fs::read_to_string(&used).unwrap(),
        format!("tester@127.0.0.1:{}\n", sftp.port)
    );
    // A command that cannot connect: the error names it.
    jump.stop();
    let r = a.dvt(&["status", "-c"]).fails();
    assert!(r.stderr.contains("through the ProxyCommand `sh -c"), "{}", r.stderr);
    // `proxy_jump = none` goes straight to the server.
    a.dvt(&["remote", "modify", "ssh", "proxy_jump", "none"]).ok();
    a.dvt(&["status", "-c"]).ok();
}

/// A registry on S3 whose committed config has the key id but not the
/// secret (it is per clone): a consumer gives the secret for one `get` with
/// `--remote-config`, or in a file of its own with `--config`, which an
/// import records by its path only.
#[test]
fn get_and_import_from_an_s3_registry_with_credentials_of_ones_own() {
    let Some(endpoint) = server("DVT_TEST_S3_ENDPOINT") else {
        return;
    };
    let registry = s3_repo(&endpoint);
    populate(&registry);
    registry.dvt(&["push"]).ok();
    registry.commit("data");
    std::fs::remove_dir_all(registry.path(".dvt/cache")).unwrap();
    let src = registry.root.to_str().unwrap();

    let env = TestEnv::new();
    let r = env.dvt(&["get", src, "data", "-o", "plain"]).fails();
    assert!(r.stderr.contains("secret_access_key"), "{}", r.stderr);
    assert!(r.stderr.contains("--remote-config"), "{}", r.stderr);
    env.dvt(&[
        "get",
        src,
        "data",
        "--remote-config",
        "secret_access_key=testing-secret",
    ])
    .ok();
    assert_eq!(env.read("data/readings.csv"), registry.read("data/readings.csv"));
    // A directory's objects come as `fetch` gets them: together, `-j` at once.
    let r = env
        .dvt(&[
            "-v",
            "get",
            src,
            "data",
            "-o",
            "again",
            "-j",
            "3",
            "--remote-config",
            "secret_access_key=testing-secret",
        ])
        .ok();
    for said in ["remote `s3`: 3 transfers at once", "dvt::phase: Fetching: "] {
        assert!(r.stderr.contains(said), "{said}: {}", r.stderr);
    }
    assert_eq!(env.read("again/readings.csv"), registry.read("data/readings.csv"));

    let creds = env.root.parent().unwrap().join("registry-creds.toml");
    std::fs::write(&creds, "[remote.s3]\nsecret_access_key = \"testing-secret\"\n").unwrap();
    env.dvt(&["import", src, "model.bin", "--config", creds.to_str().unwrap()])
        .ok();
    assert_eq!(env.read("model.bin"), registry.read("model.bin"));
    let pointer = String::from_utf8(env.read("model.bin.dvt")).unwrap();
    assert!(
        pointer.contains(&format!("config = \"{}\"", creds.display())),
        "{pointer}"
    );
    assert!(!pointer.contains("testing-secret"), "{pointer}");
    env.commit("import");
    let b = env.clone_repo();
    let r = b.dvt(&["pull", "--json"]).ok();
    assert_eq!(r.json()["fetch"]["from_sources"][0], "model.bin", "{}", r.stdout);
    assert_eq!(b.read("model.bin"), registry.read("model.bin"));
}

/// `-v` says what happens, on stderr: the config files read, the remote (its
/// secrets masked), the plan, each phase with its count and time, and
/// object_store's own retries; stdout is what it is without it. `-vq` is
/// refused, and a `DVT_LOG` that does not parse is named, not obeyed.
#[test]
fn verbose_says_what_happens_and_masks_secrets() {
    let Some(endpoint) = server("DVT_TEST_S3_ENDPOINT") else {
        return;
    };
    let a = s3_repo(&endpoint);
    a.write("data/a.csv", "a,b\n1,2\n");
    a.write("data/b.csv", "a,b\n3,4\n");
    a.dvt(&["add", "data"]).ok();
    let r = a.dvt(&["push", "-v"]).ok();
    for said in [
        "DEBUG dvt::repo: repository ",
        ".dvt/config.toml, ",
        ".dvt/config.local.toml",
        "DEBUG dvt::remote: remote `s3`: s3://",
        "access_key_id=testing",
        "secret_access_key=(secret)",
        "push to `s3`: 2 objects needed",
        ", 2 to send",
        "dvt::phase: Pushing: ",
        "dvt::phase: Pushing manifests: ",
    ] {
        assert!(r.stderr.contains(said), "{said}: {}", r.stderr);
    }
    assert!(!r.stderr.contains("testing-secret"), "{}", r.stderr);
    assert!(r.stdout.starts_with("pushed 3 objects"), "{}", r.stdout);
    let plain = a.dvt(&["status", "-c"]).ok().stdout;
    let r = a.dvt(&["status", "-c", "-v"]).ok();
    assert_eq!(r.stdout, plain);
    assert!(r.stderr.contains("DEBUG"), "{}", r.stderr);

    // A server that does not answer: the library's retries show, each one.
    a.dvt(&["remote", "modify", "s3", "endpointurl", "http://127.0.0.1:1"])
        .ok();
    a.dvt(&["remote", "modify", "s3", "retries", "2"]).ok();
    let r = a.dvt(&["push", "-v"]).fails();
    assert!(
        r.stderr.contains("INFO object_store") && r.stderr.contains("retry 2 of 2"),
        "{}",
        r.stderr
    );

    let r = a.dvt(&["status", "-v", "-q"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("cannot be used with"), "{}", r.stderr);
    let r = common::Run::from(a.dvt_cmd(&["status"]).env("DVT_LOG", "dvt=loud").output().unwrap());
    assert!(r.stderr.contains("warning: DVT_LOG=`dvt=loud`"), "{}", r.stderr);
    let r = common::Run::from(
        a.dvt_cmd(&["status"])
            .env("DVT_LOG", "dvt::repo=debug")
            .output()
            .unwrap(),
    );
    assert!(r.stderr.contains("dvt::repo: repository"), "{}", r.stderr);
    assert!(!r.stderr.contains("dvt::remote"), "{}", r.stderr);
}

/// `ask_password` (as DVC's): the password is asked on the terminal, not
/// echoed, once; with no terminal the error says so and what to set instead.
#[test]
fn ssh_asks_for_the_password_on_the_terminal() {
    let password = "pw-Typed1";
    let Some(sftp) = SftpServer::start(&["--pass", password]) else {
        return;
    };
    let a = repo_with_remote("ssh", &sftp.url("store"));
    let known = sftp.known_hosts("host");
    a.dvt(&["remote", "modify", "--local", "ssh", "known_hosts", &known])
        .ok();
    a.dvt(&["remote", "modify", "ssh", "allow_agent", "false"]).ok();
    a.dvt(&["remote", "modify", "ssh", "ask_password", "true"]).ok();
    let password_question = "Password for tester@127.0.0.1: ";
    assert_eq!(
        on_terminal(&a, &["push"], &[(password_question, password)]),
        "1 error: remote `ssh`: `ask_password` is set, but there is no terminal to ask on: set `password` instead\n\
         0 ['Password for tester@127.0.0.1: '] []\n\
         pushed 1 object (16 B) to `ssh`; 0 already there\n",
    );
    // A key locked with a passphrase, asked for the same way.
    a.dvt(&["remote", "add", "locked", &sftp.url("other")]).ok();
    for (k, v) in [("known_hosts", known.clone()), ("keyfile", sftp.path("locked"))] {
        a.dvt(&["remote", "modify", "--local", "locked", k, &v]).ok();
    }
    a.dvt(&["remote", "modify", "locked", "allow_agent", "false"]).ok();
    a.dvt(&["remote", "modify", "locked", "ask_passphrase", "true"]).ok();
    let question = "Passphrase for the SSH key of remote `locked`: ";
    assert_eq!(
        on_terminal(&a, &["push", "-r", "locked"], &[(question, "hunter22")]),
        "1 error: remote `locked`: `ask_passphrase` is set, but there is no terminal to ask on: set `passphrase` instead\n\
         0 ['Passphrase for the SSH key of remote `locked`: '] []\n\
         pushed 1 object (16 B) to `locked`; 0 already there\n",
    );
    assert!(
        !String::from_utf8(a.read(".dvt/config.local.toml"))
            .unwrap()
            .contains(password)
    );
}

/// A server that logs in by keyboard-interactive only, with a password and
/// then a one-time code (a lab's PAM with a second factor; asyncssh's server
/// here): the password prompt gets `password` (or what `ask_password` asked),
/// the code is asked on the terminal; without `ask_password` the error names
/// the prompt and the option.
#[test]
fn ssh_answers_a_keyboard_interactive_login_with_a_second_factor() {
    if server("DVT_TEST_WEBDAV_URL").is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("host");
    keygen(&key);
    std::fs::create_dir(dir.path().join("root")).unwrap();
    let port = free_port();
    let python = concat!(env!("CARGO_MANIFEST_DIR"), "/.venv-test/bin/python");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/kbdint_sftp_server.py");
    let _server = KillOnDrop(
        Command::new(python)
            .arg(script)
            .arg(port.to_string())
            .arg(&key)
            .arg(dir.path().join("root"))
            .args(["pw-K1", "424242"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("asyncssh is installed into .venv-test by scripts/servers.sh"),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "the keyboard-interactive server did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    let mut fields = public.split_whitespace();
    let known = dir.path().join("known_hosts");
    std::fs::write(
        &known,
        format!(
            "[127.0.0.1]:{port} {} {}\n",
            fields.next().unwrap(),
            fields.next().unwrap()
        ),
    )
    .unwrap();

    let a = repo_with_remote("lab", &format!("ssh://tester@127.0.0.1:{port}/store"));
    a.dvt(&[
        "remote",
        "modify",
        "--local",
        "lab",
        "known_hosts",
        known.to_str().unwrap(),
    ])
    .ok();
    a.dvt(&["remote", "modify", "lab", "allow_agent", "false"]).ok();
    a.dvt(&["remote", "modify", "lab", "password", "pw-K1"]).ok();
    // The password alone does not get past the code.
    let r = a.dvt(&["push"]).fails();
    assert!(
        r.stderr
            .contains("asks `Verification code:` to log in: set `ask_password = true`"),
        "{}",
        r.stderr
    );
    // On a terminal: the password asked once, then the code.
    a.dvt(&["remote", "modify", "--unset", "lab", "password"]).ok();
    a.dvt(&["remote", "modify", "lab", "ask_password", "true"]).ok();
    let answers = [
        ("Password for tester@127.0.0.1: ", "pw-K1"),
        ("Verification code: ", "424242"),
    ];
    let shown = on_terminal(&a, &["push"], &answers);
    assert!(
        shown.ends_with(
            "\n0 ['Password for tester@127.0.0.1: ', 'Verification code: '] ['424242']\n\
             pushed 1 object (16 B) to `lab`; 0 already there\n"
        ),
        "{shown}"
    );
    assert!(dir.path().join("root/store").is_dir());
}

/// A server known only through its SSH certificate authority
/// (`@cert-authority` in known_hosts, as organisations with an SSH CA keep
/// it): its host certificate is checked as ssh checks it, and one signed by
/// another authority, or for another host, is refused before anything is sent.
#[test]
fn ssh_trusts_a_host_certificate_of_a_known_authority() {
    if server("DVT_TEST_WEBDAV_URL").is_none() {
        return;
    }
    let keys = tempfile::tempdir().unwrap();
    for key in ["user", "ca", "other-ca"] {
        keygen(&keys.path().join(key));
    }
    let path = |name: &str| keys.path().join(name).to_str().unwrap().to_string();
    let mut sshd = Sshd::start(&path("user.pub"));
    sshd.certify(&keys.path().join("ca"), "127.0.0.1,lab.example");
    let authority = |ca: &str| {
        let public = std::fs::read_to_string(keys.path().join(format!("{ca}.pub"))).unwrap();
        let file = keys.path().join(format!("known_hosts-{ca}"));
        std::fs::write(&file, format!("@cert-authority [127.0.0.1]:*,*.example {public}")).unwrap();
        file.to_str().unwrap().to_string()
    };
    let served = tempfile::tempdir().unwrap();
    let url = sshd.url(served.path());
    let a = repo_with_remote("lab", &url);
    a.dvt(&["remote", "modify", "--local", "lab", "keyfile", &path("user")])
        .ok();
    a.dvt(&["remote", "modify", "--local", "lab", "known_hosts", &authority("ca")])
        .ok();
    let r = a.dvt(&["push", "-v"]).ok();
    assert!(r.stdout.contains("pushed 1 object"), "{}{}", r.stdout, r.stderr);
    let before = files_under(served.path());
    assert!(!before.is_empty());

    // Signed by an authority not trusted for it: refused, nothing sent.
    a.dvt(&[
        "remote",
        "modify",
        "--local",
        "lab",
        "known_hosts",
        &authority("other-ca"),
    ])
    .ok();
    a.write("y.csv", "c\n3\n");
    a.dvt(&["add", "y.csv"]).ok();
    let r = a.dvt(&["push"]).fails();
    assert!(
        r.stderr.contains("the host certificate of `[127.0.0.1]:")
            && r.stderr.contains("is not signed by an authority"),
        "{}",
        r.stderr
    );
    // Trusted, but for other hosts only.
    a.dvt(&["remote", "modify", "--local", "lab", "known_hosts", &authority("ca")])
        .ok();
    sshd.certify(&keys.path().join("ca"), "lab.example");
    let r = a.dvt(&["push"]).fails();
    assert!(
        r.stderr.contains("does not name `127.0.0.1` among its hosts"),
        "{}",
        r.stderr
    );
    assert_eq!(files_under(served.path()), before, "y.csv was not sent");
}

/// A host key marked `@revoked` in known_hosts is refused even beside a line
/// that trusts it, before anything is sent.
#[test]
fn ssh_refuses_a_revoked_host_key() {
    let Some(sftp) = SftpServer::start(&[]) else {
        return;
    };
    let a = ssh_repo(&sftp);
    a.write("x.csv", "a,b\n1,2\n");
    a.dvt(&["add", "x.csv"]).ok();
    let trusted = std::fs::read_to_string(sftp.known_hosts("host")).unwrap();
    let key = trusted.split_once(' ').unwrap().1;
    let file = sftp.path("known_hosts-revoked");
    std::fs::write(&file, format!("{trusted}@revoked * {key}")).unwrap();
    a.dvt(&["remote", "modify", "--local", "ssh", "known_hosts", &file])
        .ok();
    let r = a.dvt(&["push"]).fails();
    assert!(
        r.stderr.contains("is revoked (line 2 of") && r.stderr.contains("nothing was sent"),
        "{}",
        r.stderr
    );
    assert!(files_under(&sftp.dir.path().join("served")).is_empty());
}

/// `dvt install --use-pre-commit-tool` (as DVC's): the hooks go into the team's
/// `.pre-commit-config.yaml`, and the real pre-commit framework runs them: a warning at
/// commit, data checked out on checkout and merge, data pushed with every branch git
/// pushes (pre-commit hands the hook only the first ref).
#[test]
fn the_pre_commit_framework_runs_dvts_hooks() {
    let Some(pre_commit) = server("DVT_TEST_PRE_COMMIT") else {
        return;
    };
    let env = TestEnv::new();
    let remote = tempfile::tempdir().unwrap();
    env.dvt(&["remote", "add", "-d", "store", remote.path().to_str().unwrap()])
        .ok();
    let mine = "# the team's checks\nrepos:\n- repo: local\n  hooks:\n  - id: mine\n    name: mine\n    entry: 'true'\n    language: system\n";
    env.write(".pre-commit-config.yaml", mine);
    let r = env.dvt(&["install", "--use-pre-commit-tool"]).ok();
    assert!(r.stdout.contains("added dvt's hooks to"), "{r:?}");
    assert!(r.stderr.contains("pre-commit install --hook-type pre-commit"), "{r:?}");
    let config = String::from_utf8(env.read(".pre-commit-config.yaml")).unwrap();
    assert!(config.starts_with(mine), "the team's lines stay: {config}");
    let r = env.dvt(&["install", "--use-pre-commit-tool"]).ok();
    assert!(r.stdout.contains("already"), "{r:?}");
    assert_eq!(String::from_utf8(env.read(".pre-commit-config.yaml")).unwrap(), config);
    // The hint's command, with the pre-commit installed for the tests.
    let install = r.stderr.split("`pre-commit install").nth(1).unwrap();
    let hooks = &install[..install.find('`').unwrap()];
    assert!(hooks.contains("--hook-type post-rewrite"), "{hooks}");
    env.sh_in(&env.root, &format!("{pre_commit} install{hooks}")).ok();

    env.write("model.bin", "model one");
    env.dvt(&["add", "model.bin"]).ok();
    env.git(&["add", "-A"]);
    let r = env.git_with_dvt(&["commit", "-q", "-m", "one"]).ok();
    assert!(
        r.stderr.contains("dvt status") && r.stderr.contains("mine"),
        "both hooks ran: {r:?}"
    );
    env.write("model.bin", "edited, not added");
    let r = env.git_with_dvt(&["commit", "-q", "--allow-empty", "-m", "empty"]).ok();
    assert!(r.stderr.contains("data changed but not added: model.bin"), "{r:?}");

    env.git_with_dvt(&["checkout", "-q", "-f", "-b", "two"]).ok();
    env.dvt(&["checkout", "--force"]).ok();
    env.write("model.bin", "model two");
    env.dvt(&["add", "model.bin"]).ok();
    env.git_with_dvt(&["commit", "-q", "-am", "two"]).ok();
    env.git_with_dvt(&["checkout", "-q", "main"]).ok();
    assert_eq!(
        env.read("model.bin"),
        b"model one",
        "post-checkout checked the data out"
    );
    env.git_with_dvt(&["merge", "-q", "two"]).ok();
    assert_eq!(env.read("model.bin"), b"model two", "post-merge checked the data out");
    // A branch rebased onto main: post-rewrite checks main's data out.
    env.git_with_dvt(&["checkout", "-q", "-b", "notes", "main~1"]).ok();
    assert_eq!(env.read("model.bin"), b"model one");
    env.write("notes.txt", "notes");
    env.git(&["add", "notes.txt"]);
    env.git_with_dvt(&["commit", "-q", "-m", "notes"]).ok();
    env.git_with_dvt(&["rebase", "-q", "main"]).ok();
    assert_eq!(env.read("model.bin"), b"model two", "post-rewrite checked the data out");
    env.git_with_dvt(&["checkout", "-q", "main"]).ok();
    env.git(&["branch", "-q", "-D", "notes"]);
    env.git_with_dvt(&["checkout", "-q", "-b", "three", "main~1"]).ok();
    env.write("model.bin", "model three");
    env.dvt(&["add", "model.bin"]).ok();
    env.git_with_dvt(&["commit", "-q", "-am", "three"]).ok();
    env.git_with_dvt(&["checkout", "-q", "main"]).ok();

    // A push of two branches: the data of both tips reaches the remote before git's.
    let bare = tempfile::tempdir().unwrap();
    env.git(&["init", "-q", "--bare", bare.path().to_str().unwrap()]);
    env.git(&["remote", "add", "origin", bare.path().to_str().unwrap()]);
    let r = env.git_with_dvt(&["push", "-q", "origin", "main", "three"]).ok();
    assert!(r.stdout.contains("dvt: pushed 2 objects"), "{r:?}");
    let store = Store::at(remote.path());
    for data in ["model two", "model three"] {
        assert!(
            store.has(&blake3::hash(data.as_bytes()).to_hex()),
            "`{data}` pushed: {r:?}"
        );
    }

    let r = env.dvt(&["install", "--uninstall", "--use-pre-commit-tool"]).ok();
    assert!(r.stdout.contains("took dvt's hooks out"), "{r:?}");
    assert_eq!(String::from_utf8(env.read(".pre-commit-config.yaml")).unwrap(), mine);
}
