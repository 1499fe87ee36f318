//! End-to-end tests of pipelines: `dvt.toml`, `dvt repro`, `dvt.lock`, params and
//! metrics, on the example pipeline in fixtures/pipeline (Python standard library).
#![allow(clippy::disallowed_methods, clippy::unwrap_used)]

mod common;

use common::{TestEnv, counted_project, noise, runs};

fn example() -> TestEnv {
    let env = TestEnv::new();
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/pipeline");
    for e in std::fs::read_dir(&src).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), env.path(e.file_name().to_str().unwrap())).unwrap();
    }
    env
}

/// The action `repro --json` reported for each stage, in run order.
fn actions(env: &TestEnv, args: &[&str]) -> Vec<(String, String)> {
    let mut a = vec!["repro", "--json"];
    a.extend_from_slice(args);
    common::stage_actions(&env.dvt(&a).ok().json())
}

fn ran(acts: &[(String, String)]) -> Vec<&str> {
    acts.iter()
        .filter(|(_, a)| a == "ran")
        .map(|(s, _)| s.as_str())
        .collect()
}

/// The `[stages.NAME]` section of dvt.lock, params included.
fn lock_section(env: &TestEnv, name: &str) -> String {
    let text = String::from_utf8(env.read("dvt.lock")).unwrap();
    let start = text.find(&format!("[stages.{name}]")).unwrap();
    let rest = &text[start + 1..];
    let end = rest
        .match_indices("\n[stages.")
        .map(|(i, _)| i)
        .find(|i| !rest[i + 1..].starts_with(&format!("[stages.{name}.")))
        .unwrap_or(rest.len());
    text[start..start + 1 + end].to_string()
}

#[test]
fn repro_runs_what_changed_and_nothing_else() {
    let env = example();
    let all = ["generate", "preprocess", "featurize", "train", "evaluate"];
    assert_eq!(ran(&actions(&env, &[])), all);
    let metrics = env.read("metrics/eval.json");
    assert!(env.exists("dvt.lock"));
    assert_eq!(
        ran(&actions(&env, &[])),
        Vec::<&str>::new(),
        "a second repro runs nothing"
    );

    let st = env.dvt(&["status"]).ok();
    assert_eq!(st.stdout, "Data and pointers are up to date.\n");

    let params = String::from_utf8(env.read("params.yaml")).unwrap();
    env.write("params.yaml", params.replace("window: 24", "window: 12"));
    // `dvt status` says which stages are stale and why, as `dvc status` does.
    let st = env.dvt(&["status"]).ok();
    assert_eq!(
        st.stdout,
        "pipeline: 3 stages would run:\n    featurize: param `featurize.window` changed\n    \
         train: an upstream stage would run\n    evaluate: an upstream stage would run\n"
    );
    assert!(st.stderr.contains("hint: `dvt repro` runs them"), "{}", st.stderr);
    let json = env.dvt(&["status", "--json"]).ok().json();
    assert_eq!(json["stale_stages"][0]["stage"], "featurize");
    assert_eq!(json["stale_stages"][0]["action"], "would-run");
    assert_eq!(ran(&actions(&env, &[])), ["featurize", "train", "evaluate"]);
    assert_ne!(env.read("metrics/eval.json"), metrics);
    assert!(lock_section(&env, "featurize").contains("\"featurize.window\" = 12"));

    // A param only `train` reads: train and its downstream.
    let params = String::from_utf8(env.read("params.yaml")).unwrap();
    env.write(
        "params.yaml",
        params.replace("threshold_sigma: 3.0", "threshold_sigma: 2.5"),
    );
    assert_eq!(ran(&actions(&env, &[])), ["train", "evaluate"]);
    // A changed script re-runs its stage.
    let script = String::from_utf8(env.read("evaluate.py")).unwrap();
    env.write("evaluate.py", script + "\n# touched\n");
    assert_eq!(ran(&actions(&env, &[])), ["evaluate"]);
    // --force runs everything selected; a target brings its upstream along.
    assert_eq!(
        ran(&actions(&env, &["--force", "preprocess"])),
        ["generate", "preprocess"]
    );
    assert_eq!(
        ran(&actions(&env, &["--force", "--downstream", "train"])),
        ["train", "evaluate"]
    );
    // -s: the named stage alone, its deps taken as they are.
    assert_eq!(ran(&actions(&env, &["--force", "-s", "train"])), ["train"]);
    // Stages may be named as `dvt.toml:NAME`, as with the other commands.
    assert_eq!(ran(&actions(&env, &["--force", "-s", "dvt.toml:train"])), ["train"]);
    let r = env.dvt(&["repro", "dvt.toml:nosuch"]).fails();
    assert!(r.stderr.contains("no stage named `nosuch`"), "{}", r.stderr);
    let params = String::from_utf8(env.read("params.yaml")).unwrap();
    env.write("params.yaml", params.replace("window: 12", "window: 6"));
    let acts = actions(&env, &["-s", "train"]);
    assert_eq!(acts, [("train".to_string(), "skipped".to_string())]);
}

#[test]
fn a_deleted_out_is_restored_from_the_cache_without_running() {
    let env = example();
    actions(&env, &[]);
    let features = env.read("data/features/features.csv");
    let lock = env.read("dvt.lock");
    std::fs::remove_dir_all(env.path("data/features")).unwrap();
    let acts = actions(&env, &[]);
    assert!(acts.contains(&("featurize".into(), "restored".into())), "{acts:?}");
    assert_eq!(ran(&acts), Vec::<&str>::new());
    assert_eq!(env.read("data/features/features.csv"), features);
    assert_eq!(env.read("dvt.lock"), lock);

    // A dry run says what would happen and does nothing.
    std::fs::remove_dir_all(env.path("data/features")).unwrap();
    let acts = actions(&env, &["--dry-run"]);
    assert!(acts.contains(&("featurize".into(), "would-restore".into())), "{acts:?}");
    assert!(!env.exists("data/features"));
}

/// DVC's `repro -i`: a question before each stage that is to run; no (or the
/// end of the input) stops there, with the stages before it recorded, and the
/// next `repro` goes on from that stage.
#[test]
fn repro_interactive_asks_before_each_stage_and_stops_at_a_no() {
    let env = example();
    let r = env.dvt_with_input(&["repro", "-i"], "y\nyes\nn\n");
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("Going to run stage `generate` (it has never run):") && r.stderr.contains("Continue? [y/N]"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("stopped before stage `featurize`: not confirmed (`-i`); the stages before it are recorded"),
        "{}",
        r.stderr
    );
    let lock = String::from_utf8(env.read("dvt.lock")).unwrap();
    assert!(
        lock.contains("[stages.preprocess]") && !lock.contains("[stages.featurize]"),
        "{lock}"
    );
    // No answer at all is a no.
    let r = env.dvt_with_input(&["repro", "-i"], "");
    assert!(r.stderr.contains("stopped before stage `featurize`"), "{}", r.stderr);
    let r = env.dvt_with_input(&["repro", "--interactive"], "y\ny\ny\n");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!r.stderr.contains("stage `generate`"), "{}", r.stderr);
    assert_eq!(ran(&actions(&env, &[])), Vec::<&str>::new());
    let r = env.dvt(&["repro", "-i", "--dry-run"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
}

#[test]
fn a_failing_stage_stops_the_run_and_leaves_its_lock_entry_unchanged() {
    let env = example();
    actions(&env, &[]);
    let train_before = lock_section(&env, "train");
    let featurize_before = lock_section(&env, "featurize");
    let params = String::from_utf8(env.read("params.yaml")).unwrap();
    env.write("params.yaml", params.replace("window: 24", "window: 6"));
    env.write("train.py", "import sys\nprint('boom', file=sys.stderr)\nsys.exit(3)\n");
    let r = env.dvt(&["repro"]).fails();
    assert!(
        r.stderr.contains("stage `train` failed") && r.stderr.contains("code 3"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("boom"),
        "the command's own output is shown: {}",
        r.stderr
    );
    assert_eq!(lock_section(&env, "train"), train_before, "train's entry unchanged");
    let featurize_after = lock_section(&env, "featurize");
    assert_ne!(featurize_after, featurize_before, "featurize finished and was recorded");
    assert!(featurize_after.contains("= 6"));
    // The lock still parses and status still works.
    env.dvt(&["status", "--json"]).ok();
    // Fixed, the next run does only what is left.
    std::fs::copy(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/pipeline/train.py"),
        env.path("train.py"),
    )
    .unwrap();
    assert_eq!(ran(&actions(&env, &[])), ["train", "evaluate"]);
}

/// A stage named whose outs are all kept by git (metrics) is up to date, not
/// "no data is tracked", which only a repository without data hears.
#[test]
fn status_of_a_stage_without_cached_outs_is_up_to_date() {
    let env = TestEnv::new();
    assert!(env.dvt(&["status"]).ok().stdout.contains("No data is tracked"));
    env.dvt(&[
        "stage",
        "add",
        "-n",
        "met",
        "-M",
        "m.json",
        "echo '{\"a\": 1}' > m.json",
    ])
    .ok();
    env.dvt(&["repro"]).ok();
    let r = env.dvt(&["status", "met"]).ok();
    assert_eq!(r.stdout, "Data and pointers are up to date.\n");
}

/// A `wdir` that is not there: `stage add` refuses it (as DVC's), and a
/// `dvt.toml` written by hand fails at `repro` saying so, not that the
/// command could not be found.
#[test]
fn a_wdir_that_does_not_exist_is_named() {
    let env = TestEnv::new();
    let r = env
        .dvt(&["stage", "add", "-n", "a", "-w", "nodir", "-o", "x", "echo"])
        .fails();
    assert!(
        r.stderr
            .contains("stage `a`: its `wdir` `nodir` is not a directory in the workspace"),
        "{}",
        r.stderr
    );
    assert!(!env.exists("dvt.toml"));
    env.write("dvt.toml", "[stages.a]\ncmd = 'echo'\nwdir = 'nodir'\n");
    let r = env.dvt(&["repro"]).fails();
    assert!(
        r.stderr
            .contains("could not start: its `wdir` `nodir` is not a directory in the workspace"),
        "{}",
        r.stderr
    );
    env.write("nodir/.keep", "");
    env.dvt(&["repro"]).ok();
}

#[test]
fn pipeline_errors_name_the_stage_and_the_file() {
    let env = TestEnv::new();
    let cases = [
        (
            "[stages.a]\ncmd = 'true'\ndeps = ['b-out']\nouts = ['a-out']\n[stages.b]\ncmd = 'true'\ndeps = ['a-out']\nouts = ['b-out']\n",
            vec!["cycle", "a -> b -> a"],
        ),
        (
            "[stages.a]\ncmd = 'true'\ndeps = ['nothing.csv']\n",
            vec!["stage `a`", "dvt.toml", "`nothing.csv` does not exist"],
        ),
        (
            "[stages.a]\ncmd = 'true'\nparams = ['train.nope']\n",
            vec!["stage `a`", "dvt.toml", "`train.nope`", "params.yaml"],
        ),
        (
            "[stages.a]\ncmd = 'true'\nouts = ['x']\n[stages.b]\ncmd = 'true'\nouts = ['x']\n",
            vec!["`x`", "`a`", "`b`"],
        ),
        (
            "[stages.a]\ncmd = 'true'\ndeps = ['data']\nouts = ['data/out']\n",
            vec!["stage `a`", "dep `data` and out `data/out` overlap"],
        ),
        (
            "[stages.a]\ncmd = 'true'\nparams = ['nofile.yaml:lr']\n",
            vec![
                "stage `a`",
                "params file `nofile.yaml` does not exist (it should hold `lr`)",
            ],
        ),
        (
            "[stages.a]\ncmd = 'true'\nouput = ['x']\n",
            vec!["dvt.toml", "stage `a`", "unknown key `ouput`"],
        ),
        (
            "[stages.a]\ncmd = 'true'\nouts = ['../x']\n",
            vec!["dvt.toml", "stage `a`", "outside the repository"],
        ),
        ("[stages.a\ncmd = 'true'\n", vec!["invalid `dvt.toml`"]),
    ];
    env.write("params.yaml", "train:\n  lr: 1\n");
    for (text, wanted) in cases {
        env.write("dvt.toml", text);
        let r = env.dvt(&["repro"]).fails();
        for w in &wanted {
            assert!(r.stderr.contains(w), "{text}\nwanted {w:?} in: {}", r.stderr);
        }
        assert!(!env.exists("dvt.lock"), "nothing recorded");
        // `dvt status` reports it too, on its own line, and exits 1.
        let st = env.dvt(&["status"]).fails();
        assert!(st.stdout.starts_with("dvt.toml: error: "), "{}", st.stdout);
        for w in &wanted {
            assert!(st.stdout.contains(w), "{text}\nwanted {w:?} in: {}", st.stdout);
        }
    }
    env.write("dvt.toml", "[stages.a]\ncmd = 'true'\n");
    let r = env.dvt(&["repro", "nosuch"]).fails();
    assert!(r.stderr.contains("no stage named `nosuch`"), "{}", r.stderr);
    assert!(!r.stderr.contains("did you mean"), "{}", r.stderr);
    env.write("dvt.toml", "[stages.train]\ncmd = 'true'\n");
    let r = env.dvt(&["repro", "trian"]).fails();
    assert!(
        r.stderr.contains("hint: did you mean `train`? stages: train"),
        "{}",
        r.stderr
    );
    // Two letters swapped in a short name, which Jaro's measure alone missed.
    env.write("dvt.toml", "[stages.gen]\ncmd = 'true'\n[stages.met]\ncmd = 'true'\n");
    let r = env.dvt(&["freeze", "gne"]).fails();
    assert!(r.stderr.contains("hint: did you mean `gen`?"), "{}", r.stderr);

    // A params or metrics file that does not parse says which format it is not.
    env.write(
        "dvt.toml",
        "[stages.a]\ncmd = 'true'\nparams = ['train.lr']\nmetrics = ['m.json']\n",
    );
    env.write("params.yaml", "train: [1\n");
    let r = env.dvt(&["repro"]).fails();
    assert!(r.stderr.contains("`params.yaml`: not valid YAML: "), "{}", r.stderr);
    env.write("m.json", "{oops");
    let r = env.dvt(&["metrics", "show"]).fails();
    assert!(r.stderr.contains("`m.json`: not valid JSON: "), "{}", r.stderr);
}

/// A `dvt.lock` that cannot be read (hand-edited, half-merged) stops every
/// command that needs it, naming the file and the place; none writes it, and
/// the hint puts back the committed one.
#[test]
fn a_malformed_lock_file_is_named_and_never_overwritten() {
    let env = TestEnv::new();
    env.write(
        "dvt.toml",
        "[stages.a]\ncmd = 'echo hi > out.txt'\nouts = ['out.txt']\n",
    );
    env.dvt(&["repro", "-q"]).ok();
    env.commit("pipeline");
    let committed = env.read("dvt.lock");
    let broken = "version = 1\n[stages.a\n";
    env.write("dvt.lock", broken);
    std::fs::remove_file(env.path("out.txt")).unwrap();
    for args in [
        vec!["status"],
        vec!["repro"],
        vec!["checkout"],
        vec!["commit", "-f"],
        vec!["push", "-r", "nowhere"],
        vec!["gc", "-f"],
        vec!["destroy", "-f"],
    ] {
        let r = env.dvt(&args).fails();
        assert!(
            r.stderr.contains("invalid lock file `") && r.stderr.contains("dvt.lock`: line 2"),
            "{args:?}: {}",
            r.stderr
        );
        assert!(
            r.stderr
                .contains("put back the committed one with `git checkout -- dvt.lock`"),
            "{args:?}: {}",
            r.stderr
        );
        assert_eq!(env.read("dvt.lock"), broken.as_bytes(), "{args:?} wrote dvt.lock");
    }
    assert!(env.exists(".dvt") && !env.exists("out.txt"));
    env.git(&["checkout", "--", "dvt.lock"]);
    assert_eq!(env.read("dvt.lock"), committed);
    env.dvt(&["checkout"]).ok();
    assert_eq!(env.read("out.txt"), b"hi\n");
}

#[test]
fn stage_add_dag_params_and_metrics() {
    let env = TestEnv::new();
    env.write("params.yaml", "prep:\n  n: 3\ntrain:\n  k: 2\n");
    env.write("raw.txt", "a\nb\nc\nd\n");
    env.dvt(&[
        "stage",
        "add",
        "-n",
        "prep",
        "-d",
        "raw.txt",
        "-p",
        "prep.n",
        "-o",
        "prep.txt",
        "head -n $(grep ' n:' params.yaml | awk '{print $2}') raw.txt > prep.txt",
    ])
    .ok();
    let r = env.dvt(&[
        "stage", "add", "-n", "train", "-d", "prep.txt", "-p", "train.k", "-o", "model.txt", "-m", "metrics.json",
        "sh", "-c", "'wc -l < prep.txt > model.txt; echo \"{\\\"lines\\\": $(cat model.txt), \\\"stage\\\": \\\"$DVT_STAGE\\\"}\" > metrics.json; echo \"$DVT_DEPS\" > deps.json'",
    ])
    .ok();
    assert!(r.stderr.contains("git add dvt.toml"), "{}", r.stderr);
    let r = env.dvt(&["stage", "add", "-n", "prep", "true"]).fails();
    assert!(r.stderr.contains("already exists"), "{}", r.stderr);
    assert_eq!(env.dvt(&["dag"]).ok().stdout.trim(), "prep -> train");
    assert_eq!(
        env.dvt(&["stage", "list"]).ok().stdout,
        "prep   outs prep.txt\ntrain  outs model.txt; metrics metrics.json\n"
    );
    let list = env.dvt(&["stage", "list", "--json"]).ok().json();
    assert_eq!(list[1]["params"][0]["key"], "train.k");
    assert!(
        env.dvt(&["dag", "--mermaid"])
            .ok()
            .stdout
            .contains("s_prep --> s_train")
    );
    assert!(env.dvt(&["dag", "--dot"]).ok().stdout.contains("\"prep\" -> \"train\""));

    env.dvt(&["repro"]).ok();
    assert_eq!(env.read("prep.txt"), b"a\nb\nc\n");
    let m = env.dvt(&["metrics", "show", "--json"]).ok().json();
    assert_eq!(m["metrics.json"]["lines"], 3);
    assert_eq!(m["metrics.json"]["stage"], "train", "DVT_STAGE is set");
    let deps: serde_json::Value = serde_json::from_slice(&env.read("deps.json")).unwrap();
    assert_eq!(
        deps["prep.txt"],
        blake3::hash(b"a\nb\nc\n").to_hex().as_str(),
        "DVT_DEPS has the ids"
    );
    assert!(
        String::from_utf8(env.read(".gitignore")).unwrap().contains("/prep.txt"),
        "cached outs are git-ignored"
    );
    assert!(
        !String::from_utf8(env.read(".gitignore"))
            .unwrap()
            .contains("metrics.json")
    );

    env.commit("pipeline");
    env.write("params.yaml", "prep:\n  n: 2\ntrain:\n  k: 2\n");
    let d = env.dvt(&["params", "diff", "--json"]).ok().json();
    assert_eq!(d.as_array().unwrap().len(), 1, "{d}");
    assert_eq!(d[0]["key"], "prep.n");
    assert_eq!(d[0]["old"], 3);
    assert_eq!(d[0]["new"], 2);
    env.dvt(&["repro"]).ok();
    let d = env.dvt(&["metrics", "diff", "--json"]).ok().json();
    assert_eq!(d[0]["key"], "lines");
    assert_eq!((d[0]["old"].clone(), d[0]["new"].clone()), (3.into(), 2.into()));
    assert_eq!(d[0]["diff"], -1, "integers change by an integer: {d}");
    // As DVC's table: the revisions head the columns, and metrics have a Change.
    assert_eq!(
        env.dvt(&["metrics", "diff"]).ok().stdout,
        "Path          Metric  HEAD  workspace  Change\nmetrics.json  lines      3          2      -1\n"
    );
    // --md: Markdown tables, for a pull request or a report.
    assert_eq!(
        env.dvt(&["metrics", "diff", "--md"]).ok().stdout,
        "| Path | Metric | HEAD | workspace | Change |\n| --- | --- | ---: | ---: | ---: |\n| metrics.json | lines | 3 | 2 | -1 |\n"
    );
    assert!(
        env.dvt(&["params", "diff", "HEAD", "--md"])
            .ok()
            .stdout
            .contains("| params.yaml | prep.n | 3 | 2 |")
    );
    assert!(
        env.dvt(&["metrics", "show", "--md"])
            .ok()
            .stdout
            .contains("| metrics.json | lines | 2 |")
    );
}

#[test]
fn dag_draws_a_target_upstream_its_whole_pipeline_or_its_outs() {
    let env = example();
    let dag = |args: &[&str]| env.dvt(&[&["dag"], args].concat()).ok().stdout;
    // Edges in run order, by the stage they leave.
    assert_eq!(
        dag(&[]),
        "generate -> preprocess\npreprocess -> featurize\nfeaturize -> train\nfeaturize -> evaluate\ntrain -> evaluate\n"
    );
    // A target: itself and what it depends on, frozen stages included.
    env.dvt(&["freeze", "featurize"]).ok();
    assert_eq!(
        dag(&["train"]),
        "generate -> preprocess\npreprocess -> featurize\nfeaturize -> train\n"
    );
    assert_eq!(dag(&["dvt.toml:generate"]), "generate\n");
    // --full: the whole pipeline the target is in.
    assert_eq!(dag(&["--full", "preprocess"]), dag(&[]));
    // --outs: outs, joined where a stage reads another's out.
    let outs = dag(&["--outs", "train"]);
    assert_eq!(
        outs,
        "data/raw -> data/clean\ndata/clean -> data/features\ndata/features -> models/model.json\n"
    );
    let mermaid = dag(&["-o", "--mermaid"]);
    assert!(mermaid.contains("    o_3[\"models/model.json\"]\n"), "{mermaid}");
    assert!(mermaid.contains("    o_3 --> o_4\n"), "{mermaid}");
    assert!(dag(&["-o", "--dot", "train"]).contains("\"data/features\" -> \"models/model.json\";"));
    let r = env.dvt(&["dag", "nope"]).fails();
    assert!(r.stderr.contains("no stage named `nope`"), "{}", r.stderr);
}

#[test]
fn stage_list_takes_targets_and_lists_pointers_with_all() {
    let env = example();
    let list = |args: &[&str]| env.dvt(&[&["stage", "list"], args].concat()).ok().stdout;
    assert_eq!(
        list(&["train", "dvt.toml:generate"]),
        "train     outs models/model.json\ngenerate  outs data/raw\n"
    );
    assert_eq!(list(&["dvt.toml", "--name-only"]), list(&["--name-only"]));
    env.write("extra/notes.txt", "n\n");
    env.dvt(&["add", "extra/notes.txt"]).ok();
    // --all: pointers too, as DVC lists .dvc files; a pointer by either name.
    assert!(list(&["--all"]).ends_with("extra/notes.txt.dvt  outs extra/notes.txt\n"));
    assert_eq!(list(&["extra/notes.txt", "--name-only"]), "extra/notes.txt.dvt\n");
    assert_eq!(
        list(&["extra/notes.txt.dvt", "--json"])
            .matches("\"path\": \"extra/notes.txt\"")
            .count(),
        1
    );
    let r = env.dvt(&["stage", "list", "nope"]).fails();
    assert!(
        r.stderr.contains("no stage named `nope`") && r.stderr.contains("train"),
        "{}",
        r.stderr
    );
    // Nothing to list: --fail says so and exits 1; without it, nothing is printed.
    std::fs::remove_file(env.path("dvt.toml")).unwrap();
    env.dvt(&["remove", "extra/notes.txt.dvt"]).ok();
    assert_eq!(list(&["--all"]), "");
    let r = env.dvt(&["stage", "list", "--all", "--fail"]).fails();
    assert!(r.stderr.contains("no stages to list"), "{}", r.stderr);
    assert!(
        env.dvt(&["stage", "list"])
            .fails()
            .stderr
            .contains("`dvt.toml` does not exist")
    );
}

#[test]
fn pipeline_outs_are_pushed_pulled_checked_and_kept_like_added_data() {
    let env = example();
    let remote = tempfile::tempdir().unwrap();
    env.dvt(&["remote", "add", "-d", "store", remote.path().to_str().unwrap()])
        .ok();
    actions(&env, &[]);
    env.dvt(&["push"]).ok();
    env.commit("pipeline results");

    let clone = env.clone_repo();
    let r = clone.dvt(&["status"]).ok();
    assert!(
        r.stdout.contains("data/features (pipeline out, in dvt.lock): missing"),
        "{}",
        r.stdout
    );
    // Every stage looks stale, but pulling is what the clone needs first.
    assert!(r.stdout.contains("pipeline: 5 stages would run:"), "{}", r.stdout);
    assert!(
        r.stderr.contains(
            "hint: `dvt pull` downloads what the cache lacks and restores the workspace; `dvt repro` then runs"
        ),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("hint: `dvt repro` runs them"), "{}", r.stderr);
    // repro --pull restores a clone's results from the remote instead of running.
    let other = env.clone_repo();
    let r = other.dvt(&["repro", "--pull", "--json"]).ok().json();
    for s in r["stages"].as_array().unwrap() {
        assert_ne!(s["action"], "ran", "{r}");
    }
    assert!(r["pulled"].as_u64().unwrap() >= 4, "{r}");
    assert_eq!(other.read("models/model.json"), env.read("models/model.json"));
    // Without the remote, it says so and runs the stages.
    let lost = env.clone_repo();
    lost.dvt(&["remote", "remove", "store"]).ok();
    let r = lost.dvt(&["repro", "--pull"]).ok();
    assert!(
        r.stderr.contains("dvt: warning: not every out could be downloaded"),
        "{}",
        r.stderr
    );
    assert!(r.stdout.contains("Stage `generate` ran"), "{}", r.stdout);
    // -r names a remote that is not the default.
    let named = env.clone_repo();
    named.dvt(&["remote", "rename", "store", "backup"]).ok();
    named.dvt(&["remote", "default", "--unset"]).ok();
    let r = named.dvt(&["repro", "--pull", "-r", "backup", "--json"]).ok().json();
    assert!(r["pulled"].as_u64().unwrap() >= 4, "{r}");
    assert_eq!(named.read("models/model.json"), env.read("models/model.json"));

    // A stage's name stands for its outs, as in DVC.
    clone.dvt(&["pull", "train"]).ok();
    assert_eq!(clone.read("models/model.json"), env.read("models/model.json"));
    assert!(!clone.exists("data/raw"));
    let r = clone.dvt(&["fetch", "dvt.toml:nosuch"]).fails();
    assert!(r.stderr.contains("no stage named `nosuch`"), "{}", r.stderr);
    clone.dvt(&["pull"]).ok();
    assert_eq!(clone.read("models/model.json"), env.read("models/model.json"));
    assert_eq!(clone.read("data/raw/sensor.csv"), env.read("data/raw/sensor.csv"));
    assert_eq!(
        ran(&actions(&clone, &[])),
        Vec::<&str>::new(),
        "pulled results are up to date"
    );
    assert!(clone.dvt(&["status"]).ok().stdout.contains("up to date"));

    // gc keeps what dvt.lock references; cat reads an out at a revision.
    env.dvt(&["gc", "-f"]).ok();
    assert_eq!(ran(&actions(&env, &[])), Vec::<&str>::new());
    std::fs::remove_dir_all(env.path("data/clean")).unwrap();
    // A file inside an out directory, as inside an added one.
    let r = env.dvt(&["status", "data/clean/sensor.csv"]).ok();
    assert!(
        r.stdout
            .contains("data/clean/sensor.csv (pipeline out, in dvt.lock): missing"),
        "{}",
        r.stdout
    );
    env.dvt(&["checkout", "data/clean/sensor.csv"]).ok();
    assert!(env.exists("data/clean/sensor.csv"));
    std::fs::remove_dir_all(env.path("data/clean")).unwrap();
    env.dvt(&["checkout", "data/clean"]).ok();
    assert!(env.exists("data/clean/sensor.csv"));
    let c = env.dvt(&["cat", "data/features/features.csv", "--rev", "HEAD"]).ok();
    assert_eq!(c.stdout.as_bytes(), env.read("data/features/features.csv"));
}

#[test]
fn wdir_persist_and_uncached_outs() {
    let env = TestEnv::new();
    env.write("sub/input.txt", "x\n");
    env.write(
        "dvt.toml",
        r#"[stages.grow]
cmd = "cat input.txt >> log.txt; cat input.txt > copy.txt; echo run >> ../runs.txt"
wdir = "sub"
deps = ["input.txt"]
outs = [{ path = "log.txt", persist = true, cache = false }, "copy.txt"]
"#,
    );
    env.dvt(&["repro"]).ok();
    assert_eq!(env.read("sub/log.txt"), b"x\n");
    assert_eq!(env.read("sub/copy.txt"), b"x\n");
    let lock = String::from_utf8(env.read("dvt.lock")).unwrap();
    assert!(
        lock.contains("path = \"sub/input.txt\"") && lock.contains("path = \"sub/log.txt\""),
        "{lock}"
    );
    let ignore = String::from_utf8(env.read("sub/.gitignore")).unwrap();
    assert!(
        ignore.contains("/copy.txt") && !ignore.contains("log.txt"),
        "only cached outs are ignored: {ignore}"
    );
    env.write("sub/input.txt", "y\n");
    env.dvt(&["repro"]).ok();
    assert_eq!(
        env.read("sub/log.txt"),
        b"x\ny\n",
        "a persistent out is kept when the stage runs"
    );
    assert_eq!(env.read("sub/copy.txt"), b"y\n");
    // An uncached out that is deleted cannot be restored: the stage runs again.
    std::fs::remove_file(env.path("sub/log.txt")).unwrap();
    assert_eq!(ran(&actions(&env, &[])), ["grow"]);
    assert_eq!(env.read("runs.txt"), b"run\nrun\nrun\n");
    // status lists only the cached out.
    let s = env.dvt(&["status", "--json"]).ok().json();
    let paths: Vec<&str> = s["pointers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["sub/copy.txt"]);
}

#[test]
fn dvt_lock_merges_stage_by_stage_between_branches() {
    let env = example();
    env.dvt(&["install-hooks"]).ok();
    assert_eq!(ran(&actions(&env, &[])).len(), 5);
    env.commit("pipeline");
    // One branch retrains with another threshold; the other adds a stage of its own.
    env.git(&["checkout", "-q", "-b", "report"]);
    env.dvt(&[
        "stage",
        "add",
        "-n",
        "report",
        "-d",
        "params.yaml",
        "-o",
        "report.txt",
        "cp params.yaml report.txt",
    ])
    .ok();
    assert_eq!(ran(&actions(&env, &[])), ["report"]);
    env.commit("report stage");
    env.git_with_dvt(&["checkout", "-q", "main"]).ok();
    let params = String::from_utf8(env.read("params.yaml")).unwrap();
    env.write(
        "params.yaml",
        params.replace("threshold_sigma: 3.0", "threshold_sigma: 2.5"),
    );
    assert_eq!(ran(&actions(&env, &["train"])), ["train"]);
    env.commit("retrain");

    let r = env.git_with_dvt(&["merge", "report", "-m", "merge report"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr
            .contains("dvt: merged `dvt.lock`: the stages of both branches (6 stages)"),
        "{}",
        r.stderr
    );
    // Each record is what a run produced, so only what is stale runs again:
    // report (it read the old params) and evaluate (main ran train alone);
    // train's run on main is not repeated.
    assert!(lock_section(&env, "report").contains("report.txt"));
    assert_eq!(ran(&actions(&env, &[])), ["evaluate", "report"]);

    // The same stage run on both branches with different results conflicts.
    env.commit("after merge");
    env.git(&["checkout", "-q", "-b", "other"]);
    let params = String::from_utf8(env.read("params.yaml")).unwrap();
    env.write(
        "params.yaml",
        params.replace("threshold_sigma: 2.5", "threshold_sigma: 2.0"),
    );
    actions(&env, &["train"]);
    env.commit("other threshold");
    env.git_with_dvt(&["checkout", "-q", "main"]).ok();
    let params = String::from_utf8(env.read("params.yaml")).unwrap();
    env.write(
        "params.yaml",
        params.replace("threshold_sigma: 2.5", "threshold_sigma: 1.5"),
    );
    actions(&env, &["train"]);
    env.commit("main threshold");
    let r = env.git_with_dvt(&["merge", "other", "-m", "merge other"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr
            .contains("conflict in `dvt.lock`: stage `train`: changed differently on both branches"),
        "{}",
        r.stderr
    );
}

/// The ids of `dvt.lock`'s outs that the status report finds missing from the cache.
fn uncached_outs(env: &TestEnv) -> Vec<String> {
    let r = env.dvt(&["status", "--json"]).ok().json();
    r["pointers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| !p["missing_from_cache"].as_array().unwrap().is_empty())
        .map(|p| p["path"].as_str().unwrap().to_string())
        .collect()
}

/// `repro --no-commit` records outs without caching them; `dvt commit` stores
/// them, records hand-made changes to outs, and refuses a stage whose inputs
/// changed unless `--force`, writing nothing then.
#[test]
fn commit_records_outs_as_they_are_and_refuses_changed_inputs() {
    let env = example();
    let acts = actions(&env, &["--no-commit"]);
    assert_eq!(ran(&acts).len(), 5);
    assert!(env.object_ids().is_empty(), "--no-commit stored {:?}", env.object_ids());
    assert_eq!(
        uncached_outs(&env),
        ["data/features", "data/raw", "data/clean", "models/model.json"]
    );
    let lock = env.read("dvt.lock");
    // Run again with --no-commit: nothing runs, and nothing is stored yet (a
    // plain repro would store them: repro_stores_the_outs_of_an_unchanged_stage_that_the_cache_lacks).
    assert_eq!(
        ran(&actions(&env, &["--no-commit"])),
        Vec::<&str>::new(),
        "the outs match dvt.lock"
    );
    let model = env.read("models/model.json");
    std::fs::remove_file(env.path("models/model.json")).unwrap();
    let err = env.dvt(&["checkout", "models/model.json"]).fails();
    assert!(
        err.stderr
            .contains("`dvt repro --no-commit` recorded were never stored"),
        "{}",
        err.stderr
    );
    env.write("models/model.json", model);

    // Commit stores what --no-commit left out; dvt.lock stays as it is.
    let r = env.dvt(&["commit", "--json"]).ok().json();
    for s in r["stages"].as_array().unwrap() {
        assert_eq!(s["changed"], false, "{s}");
    }
    assert!(r["stages"][0]["stored_bytes"].as_u64().unwrap() > 0, "{r}");
    assert!(uncached_outs(&env).is_empty());
    assert_eq!(env.read("dvt.lock"), lock);
    let features = env.read("data/features/features.csv");
    std::fs::remove_dir_all(env.path("data/features")).unwrap();
    env.dvt(&["checkout", "data/features"]).ok();
    assert_eq!(env.read("data/features/features.csv"), features);

    // An out edited by hand: status points at repro and commit.
    let model = String::from_utf8(env.read("models/model.json")).unwrap();
    let edited = model.replacen('{', "{\"note\": \"tuned by hand\", ", 1);
    env.write("models/model.json", &edited);
    let st = env.dvt(&["status"]).ok();
    assert!(
        st.stderr.contains("`dvt commit STAGE` records their outs"),
        "{}",
        st.stderr
    );
    // Committing everything would also record `evaluate`, whose dep changed: refused.
    let err = env.dvt(&["commit"]).fails();
    assert!(
        err.stderr.contains(
            "stage `evaluate` is not committed: dep `models/model.json` changed since `dvt.lock` was written"
        ),
        "{}",
        err.stderr
    );
    assert!(err.stderr.contains("dvt commit --force evaluate"), "{}", err.stderr);
    assert!(
        err.stderr.contains("or name only the stages to commit"),
        "{}",
        err.stderr
    );
    assert_eq!(env.read("dvt.lock"), lock, "a refusal writes nothing");
    // The stage that produced it, named by its out.
    let r = env.dvt(&["commit", "--json", "models/model.json"]).ok().json();
    assert_eq!(r["stages"].as_array().unwrap().len(), 1);
    assert_eq!(r["stages"][0]["stage"], "train");
    assert_eq!(r["stages"][0]["changed"], true);
    let id = blake3::hash(edited.as_bytes()).to_hex().to_string();
    assert!(lock_section(&env, "train").contains(&id));
    assert!(env.has_object(&id));
    assert_eq!(
        actions(&env, &["--dry-run"]),
        [
            ("generate".to_string(), "skipped".to_string()),
            ("preprocess".into(), "skipped".into()),
            ("featurize".into(), "skipped".into()),
            ("train".into(), "skipped".into()),
            ("evaluate".into(), "would-run".into()),
        ]
    );
    // --force records `evaluate` as it is, and says why it had to.
    let r = env
        .dvt(&["commit", "--force", "--json", "dvt.toml:evaluate"])
        .ok()
        .json();
    assert_eq!(
        r["stages"][0]["forced"],
        "dep `models/model.json` changed since `dvt.lock` was written"
    );
    assert_eq!(ran(&actions(&env, &[])), Vec::<&str>::new());

    // Wrong targets and a missing out: a clear error, nothing written.
    let lock = env.read("dvt.lock");
    let err = env.dvt(&["commit", "dvt.toml:nosuch"]).fails();
    assert!(err.stderr.contains("no stage named `nosuch`"), "{}", err.stderr);
    let err = env.dvt(&["commit", "nosuch"]).fails();
    assert!(err.stderr.contains("`nosuch` is not tracked by dvt"), "{}", err.stderr);
    let err = env.dvt(&["push", "models/modle.json"]).fails();
    assert!(
        err.stderr.contains("did you mean `models/model.json`?"),
        "{}",
        err.stderr
    );
    let eval = env.read("metrics/eval.json");
    std::fs::remove_file(env.path("metrics/eval.json")).unwrap();
    let err = env.dvt(&["commit", "evaluate"]).fails();
    assert!(
        err.stderr
            .contains("stage `evaluate` is not committed: its out `metrics/eval.json` does not exist"),
        "{}",
        err.stderr
    );
    assert_eq!(env.read("dvt.lock"), lock);
    env.write("metrics/eval.json", eval);

    // A stage that never ran: skipped when nothing is named, refused when named.
    env.dvt(&["stage", "add", "-n", "extra", "-o", "extra.txt", "echo hi > extra.txt"])
        .ok();
    env.write("extra.txt", "made by hand\n");
    let mtime = std::fs::metadata(env.path("dvt.lock")).unwrap().modified().unwrap();
    let r = env.dvt(&["commit"]).ok();
    assert!(
        r.stderr.contains("skipped stage `extra`: it has never run"),
        "{}",
        r.stderr
    );
    assert_eq!(env.read("dvt.lock"), lock);
    let after = std::fs::metadata(env.path("dvt.lock")).unwrap().modified().unwrap();
    assert_eq!(mtime, after, "an unchanged dvt.lock is not rewritten");
    let err = env.dvt(&["commit", "extra"]).fails();
    assert!(err.stderr.contains("`dvt.lock` has no entry for it"), "{}", err.stderr);
    env.dvt(&["commit", "-f", "extra"]).ok();
    assert!(lock_section(&env, "extra").contains("extra.txt"));

    // Data tracked under a stage's name wins over the stage, as in the other
    // commands; `dvt.toml:NAME` still names the stage.
    env.write("extra", "data v1");
    env.dvt(&["add", "extra"]).ok();
    env.write("extra", "data v2");
    env.write("extra.txt", "made by hand again\n");
    let r = env.dvt(&["commit", "--json", "extra"]).ok().json();
    assert_eq!(r["stages"], serde_json::json!([]), "{r}");
    assert_eq!(r["pointers"]["added"][0]["path"], "extra", "{r}");
    let r = env.dvt(&["commit", "--json", "dvt.toml:extra"]).ok().json();
    assert_eq!(r["stages"][0]["stage"], "extra", "{r}");
}

/// Without a pipeline, `dvt commit` records changed data of pointers as `dvt add`
/// would, leaves imports to `dvt update`, and refuses to commit an import.
/// DVC's `params diff --deps`, and `--no-path` and `--precision` of both diffs;
/// `exp diff --all` and `--param-deps`.
#[test]
fn value_diffs_narrow_to_deps_drop_the_path_and_round() {
    let env = TestEnv::new();
    env.write("params.yaml", "train:\n  lr: 0.1\nunused: 1\n");
    env.dvt(&[
        "stage",
        "add",
        "-n",
        "t",
        "-p",
        "train.lr",
        "-M",
        "m.json",
        "python3 -c \"import json; json.dump({'loss': 2/3}, open('m.json', 'w'))\"",
    ])
    .ok();
    env.dvt(&["repro"]).ok();
    env.commit("base");
    env.write("params.yaml", "train:\n  lr: 0.2\nunused: 2\n");
    env.write("m.json", "{\"loss\": 0.123456}");

    let r = env.dvt(&["params", "diff"]).ok();
    assert!(
        r.stdout.contains("unused") && r.stdout.contains("train.lr"),
        "{}",
        r.stdout
    );
    let r = env.dvt(&["params", "diff", "--deps", "--no-path"]).ok();
    assert_eq!(
        r.stdout.lines().collect::<Vec<_>>(),
        ["Param     HEAD  workspace", "train.lr   0.1        0.2",]
    );
    let r = env.dvt(&["metrics", "diff", "--precision", "3", "--md"]).ok();
    assert_eq!(
        r.stdout,
        "| Path | Metric | HEAD | workspace | Change |\n| --- | --- | ---: | ---: | ---: |\n| m.json | loss | 0.667 | 0.123 | -0.543 |\n"
    );

    env.dvt(&["exp", "run", "-n", "e", "-S", "train.lr=0.3"]).ok();
    let j = env.dvt(&["exp", "diff", "HEAD", "e", "--json"]).ok().json();
    assert_eq!(j["params"].as_array().unwrap().len(), 2, "lr and unused changed: {j}");
    let j = env
        .dvt(&["exp", "diff", "HEAD", "e", "--param-deps", "--json"])
        .ok()
        .json();
    assert_eq!(j["params"].as_array().unwrap().len(), 1, "{j}");
    let j = env.dvt(&["exp", "diff", "e", "e", "--all", "--json"]).ok().json();
    assert_eq!(j["params"].as_array().unwrap().len(), 2, "unchanged values too: {j}");
}

/// `dvt remove STAGE` (as `dvc remove`): the stage leaves `dvt.toml` (the rest of
/// the file as it was), `dvt.lock` and the `.gitignore`; its outs stay unless
/// `--outs`, which refuses data the cache does not hold. A `foreach` case goes
/// only with its group.
#[test]
fn remove_deletes_a_stage_and_with_outs_its_data() {
    let env = TestEnv::new();
    env.write(
        "dvt.toml",
        r#"# our pipeline

# makes g
[stages.gen]
cmd = "echo g > g.txt"
outs = ["g.txt"]

[stages.keep]
cmd = "echo k > k.txt"  # stays
outs = ["k.txt"]

[stages.each]
foreach = ["a", "b"]
[stages.each.do]
cmd = "echo ${item} > e-${item}.txt"
outs = ["e-${item}.txt"]
"#,
    );
    env.dvt(&["repro"]).ok();
    // Data a pointer tracks, which removing stages leaves alone.
    env.write("raw.csv", "r\n");
    env.dvt(&["add", "raw.csv"]).ok();
    // A stage's out is not a pointer's: the error names its stage.
    let r = env.dvt(&["remove", "g.txt"]).fails();
    assert!(
        r.stderr
            .contains("`g.txt` is an out of stage `gen` (`dvt.lock` records it), not data a `.dvt` pointer tracks")
            && r.stderr.contains("`dvt remove gen` removes the stage")
            && !r.stderr.contains("did you mean"),
        "{}",
        r.stderr
    );
    let r = env.dvt(&["remove", "gen"]).ok();
    assert!(!r.stdout.contains("raw.csv"), "{}", r.stdout);
    assert!(env.exists("raw.csv.dvt"));
    assert!(
        r.stdout.contains("removed stage `gen` from dvt.toml and dvt.lock"),
        "{}",
        r.stdout
    );
    let toml = String::from_utf8(env.read("dvt.toml")).unwrap();
    assert!(!toml.contains("stages.gen") && !toml.contains("# makes g"), "{toml}");
    assert!(
        toml.starts_with("# our pipeline\n\n[stages.keep]") && toml.contains("# stays"),
        "{toml}"
    );
    let lock = String::from_utf8(env.read("dvt.lock")).unwrap();
    assert!(
        !lock.contains("[stages.gen]") && lock.contains("[stages.keep]"),
        "{lock}"
    );
    let ignore = String::from_utf8(env.read(".gitignore")).unwrap();
    assert!(!ignore.contains("/g.txt") && ignore.contains("/k.txt"), "{ignore}");
    assert_eq!(env.read("g.txt"), b"g\n", "without --outs the data stays");

    let r = env.dvt(&["remove", "each@a"]).fails();
    assert!(
        r.stderr
            .contains("`each@a` is one case of its `foreach`: remove `each`"),
        "{}",
        r.stderr
    );
    env.dvt(&["remove", "dvt.toml:each"]).ok();
    assert!(!String::from_utf8(env.read("dvt.toml")).unwrap().contains("each"));

    // --outs: an out edited since (not in the cache) stops it, and nothing changes.
    env.write("k.txt", "edited\n");
    let r = env.dvt(&["remove", "keep", "--outs"]).fails();
    assert!(
        r.stderr
            .contains("`dvt remove --outs` would delete 1 file with changes not recorded in a pointer"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("k.txt") && !r.stderr.contains("--force"),
        "{}",
        r.stderr
    );
    assert!(String::from_utf8(env.read("dvt.toml")).unwrap().contains("stages.keep"));
    env.write("k.txt", "k\n");
    let r = env.dvt(&["remove", "keep", "--outs"]).ok();
    assert!(r.stdout.contains("deleted k.txt"), "{}", r.stdout);
    assert!(!env.exists("k.txt"));
    // A stage's outs only: every pointer's data was deleted with them once.
    assert!(!r.stdout.contains("raw.csv"), "{}", r.stdout);
    assert!(env.exists("raw.csv.dvt") && env.read("raw.csv") == b"r\n");
    let ignore = String::from_utf8(env.read(".gitignore")).unwrap();
    assert!(ignore.contains("/raw.csv"), "{ignore}");
}

/// DVC's `repro -p`, `-P`, `--force-downstream` and `--allow-missing`.
#[test]
fn repro_pipeline_force_downstream_and_allow_missing() {
    let env = TestEnv::new();
    for args in [
        &[
            "-n",
            "a",
            "-d",
            "in.txt",
            "-o",
            "a.txt",
            "cat in.txt > a.txt; echo a >> log",
        ][..],
        &[
            "-n",
            "b",
            "-d",
            "a.txt",
            "-o",
            "b.txt",
            "cut -c1 a.txt > b.txt; echo b >> log",
        ],
        &[
            "-n",
            "c",
            "-d",
            "b.txt",
            "-o",
            "c.txt",
            "cat b.txt > c.txt; echo c >> log",
        ],
        &["-n", "x", "-o", "x.txt", "echo x > x.txt; echo x >> log"],
    ] {
        let mut all = vec!["stage", "add"];
        all.extend(args);
        env.dvt(&all).ok();
    }
    env.write("in.txt", "hello\n");
    env.dvt(&["repro"]).ok();
    let stages = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["repro", "--dry-run", "--json", "-f"];
        all.extend(args);
        env.dvt(&all).ok().json()["stages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["stage"].as_str().unwrap().to_string())
            .collect()
    };
    // -p: b's whole pipeline, downstream too, not x; -P: everything.
    assert_eq!(stages(&["b"]), ["a", "b"]);
    assert_eq!(stages(&["-p", "b"]), ["a", "b", "c"]);
    assert_eq!(stages(&["-P"]), ["a", "b", "c", "x"]);
    let r = env.dvt(&["repro", "-P", "b"]);
    assert_eq!(r.code, 2, "{}", r.stderr);

    // b's out comes out the same ("h"): c is skipped, unless --force-downstream,
    // which runs it (not from the run cache).
    env.write("log", "");
    env.write("in.txt", "hallo\n");
    env.dvt(&["repro"]).ok();
    assert_eq!(env.read("log"), b"a\nb\n");
    env.write("log", "");
    env.write("in.txt", "hullo\n");
    let r = env.dvt(&["repro", "--force-downstream"]).ok();
    assert!(
        r.stderr
            .contains("Running stage `c` (stage `b`, which it depends on, ran (`--force-downstream`))"),
        "{}",
        r.stderr
    );
    assert_eq!(env.read("log"), b"a\nb\nc\n");

    // A clone without data: everything would run, unless missing data is allowed;
    // a real change still shows.
    for f in ["a.txt", "b.txt", "c.txt", "x.txt"] {
        std::fs::remove_file(env.path(f)).unwrap();
    }
    std::fs::remove_dir_all(env.path(".dvt/cache")).unwrap();
    let r = env.dvt(&["repro", "--dry-run"]).ok();
    assert!(
        r.stdout.contains("Stage `x` would run: out `x.txt` is missing"),
        "{}",
        r.stdout
    );
    let r = env.dvt(&["repro", "--dry-run", "--allow-missing"]).ok();
    assert!(!r.stdout.contains("would"), "{}", r.stdout);
    // A dep gone from the workspace counts as recorded too.
    std::fs::remove_file(env.path("in.txt")).unwrap();
    let r = env.dvt(&["repro", "--dry-run", "--allow-missing"]).ok();
    assert!(!r.stdout.contains("would"), "{}", r.stdout);
    env.write("in.txt", "changed\n");
    let r = env.dvt(&["repro", "--dry-run", "--allow-missing"]).ok();
    assert!(
        r.stdout.contains("Stage `a` would run: dep `in.txt` changed"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("Stage `x` didn't change"), "{}", r.stdout);
}

/// DVC's `repro -k` and `--ignore-errors`: a failed stage stops only the stages
/// that depend on it (or, ignoring errors, nothing); the exit code is still 1.
#[test]
fn repro_keep_going_runs_what_does_not_depend_on_a_failed_stage() {
    let env = TestEnv::new();
    for args in [
        &["-n", "a", "-o", "a.txt", "echo a > a.txt"][..],
        &["-n", "bad", "-d", "a.txt", "-o", "b.txt", "exit 3"],
        &["-n", "after", "-d", "b.txt", "-o", "c.txt", "cat b.txt > c.txt"],
        &["-n", "other", "-o", "o.txt", "echo o > o.txt"],
    ] {
        let mut all = vec!["stage", "add"];
        all.extend(args);
        env.dvt(&all).ok();
    }
    let r = env.dvt(&["repro"]).fails();
    assert!(r.stderr.contains("stage `bad` failed"), "{}", r.stderr);
    assert!(!env.exists("o.txt"), "without -k the run stops");

    let r = env.dvt(&["repro", "-k"]).fails();
    assert!(r.stdout.contains("Stage `other` ran"), "{}", r.stdout);
    assert!(
        r.stderr
            .contains("Stage `after` not run: stage `bad`, which it depends on, did not run through"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("error: 1 stage failed, 1 stage not run because of them; the others ran as they should"),
        "{}",
        r.stderr
    );
    assert_eq!(env.read("o.txt"), b"o\n");
    assert!(!env.exists("c.txt"));
    let lock = String::from_utf8(env.read("dvt.lock")).unwrap();
    assert!(
        lock.contains("[stages.other]") && !lock.contains("[stages.bad]"),
        "{lock}"
    );

    let r = env.dvt(&["repro", "--keep-going", "--json"]).fails();
    let actions = common::stage_actions(&r.json());
    let want = [
        ("a", "skipped"),
        ("bad", "failed"),
        ("after", "not-run"),
        ("other", "skipped"),
    ];
    assert_eq!(actions, want.map(|(a, b)| (a.to_string(), b.to_string())));

    // Ignoring errors, `after` is tried too: its dep is missing, so it fails.
    let r = env.dvt(&["repro", "--ignore-errors"]).fails();
    assert!(
        r.stderr
            .contains("error: stage `after` (in `dvt.toml`): dependency `b.txt` does not exist"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("error: 2 stages failed"), "{}", r.stderr);
    let r = env.dvt(&["repro", "-k", "--ignore-errors"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
}

/// `commit -R DIR` records the pointers below DIR only; `commit -d STAGE` the
/// stage and those upstream of it, not those after it.
#[test]
fn commit_recursive_and_with_deps_choose_as_dvc_does() {
    let env = TestEnv::new();
    env.dvt(&["stage", "add", "-n", "gen", "-o", "raw.txt", "echo raw > raw.txt"])
        .ok();
    env.dvt(&[
        "stage",
        "add",
        "-n",
        "prep",
        "-d",
        "raw.txt",
        "-o",
        "prep.txt",
        "cat raw.txt > prep.txt",
    ])
    .ok();
    env.dvt(&[
        "stage",
        "add",
        "-n",
        "train",
        "-d",
        "prep.txt",
        "-o",
        "model.txt",
        "cat prep.txt > model.txt",
    ])
    .ok();
    env.dvt(&["repro"]).ok();
    env.write("sub/a.txt", "a\n");
    env.write("other.txt", "o\n");
    env.dvt(&["add", "sub/a.txt", "other.txt"]).ok();

    env.write("sub/a.txt", "a2\n");
    env.write("other.txt", "o2\n");
    env.dvt(&["commit", "-R", "sub"]).ok();
    let r = env.dvt(&["status", "--json"]).ok().json();
    let changed: Vec<&str> = r["pointers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["workspace"] != "unchanged")
        .map(|p| p["path"].as_str().unwrap())
        .collect();
    assert_eq!(changed, ["other.txt"], "{r}");

    env.write("raw.txt", "raw2\n");
    env.write("prep.txt", "prep2\n");
    env.write("model.txt", "model2\n");
    env.dvt(&["commit", "-f", "-d", "prep"]).ok();
    let lock = String::from_utf8(env.read("dvt.lock")).unwrap();
    let id = |s: &str| blake3::hash(s.as_bytes()).to_hex().to_string();
    assert!(lock.contains(&id("raw2\n")) && lock.contains(&id("prep2\n")), "{lock}");
    assert!(!lock.contains(&id("model2\n")), "train is after prep: {lock}");
}

#[test]
fn commit_records_changed_pointers_and_leaves_imports_alone() {
    let env = TestEnv::new();
    env.write("data/a.txt", "one");
    env.write("model.bin", "weights v1");
    env.dvt(&["add", "data", "model.bin"]).ok();
    let source = tempfile::tempdir().unwrap();
    std::fs::write(source.path().join("ext.csv"), "x,y\n").unwrap();
    env.dvt(&["import-url", source.path().join("ext.csv").to_str().unwrap()])
        .ok();
    let imported = env.read("ext.csv.dvt");

    env.write("model.bin", "weights v2");
    env.write("ext.csv", "edited locally\n");
    let r = env.dvt(&["commit"]).ok();
    assert!(r.stdout.contains("added model.bin"), "{}", r.stdout);
    assert!(!r.stdout.contains("data"), "unchanged data is not listed: {}", r.stdout);
    assert!(
        r.stderr
            .contains("skipped ext.csv.dvt: imports change with `dvt update`"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("git add model.bin.dvt"), "{}", r.stderr);
    let id = blake3::hash(b"weights v2").to_hex().to_string();
    assert!(String::from_utf8(env.read("model.bin.dvt")).unwrap().contains(&id));
    assert_eq!(env.read("ext.csv.dvt"), imported);

    let err = env.dvt(&["commit", "ext.csv"]).fails();
    assert!(
        err.stderr
            .contains("`ext.csv.dvt` was made by `dvt import` or `dvt import-url`"),
        "{}",
        err.stderr
    );
    assert_eq!(env.read("ext.csv.dvt"), imported);
    let r = env.dvt(&["commit"]).ok();
    assert_eq!(r.stdout, "", "nothing changed, nothing listed");
    // No pipeline: a name that is no path is not tracked.
    let err = env.dvt(&["commit", "train"]).fails();
    assert!(err.stderr.contains("`train` is not tracked by dvt"), "{}", err.stderr);
}

/// The pre-commit hook warns, without blocking, when the commit's dvt.lock does
/// not match its params and code, and when tracked data changed but was not added.
#[test]
fn pre_commit_hook_warns_about_stale_stages_and_unadded_data() {
    let env = example();
    env.write("notes.bin", "v1");
    env.dvt(&["add", "notes.bin"]).ok();
    actions(&env, &[]);
    env.dvt(&["install-hooks"]).ok();
    env.git(&["add", "-A"]);
    let r = env.git_with_dvt(&["commit", "-q", "-m", "v1"]).ok();
    assert!(!r.stderr.contains("warning"), "{}", r.stderr);

    let params = String::from_utf8(env.read("params.yaml")).unwrap();
    env.write("params.yaml", params.replace("window: 24", "window: 12"));
    env.write("notes.bin", "v2");
    let r = env.git_with_dvt(&["commit", "-q", "-am", "v2"]).ok();
    assert!(
        r.stderr.contains(
            "dvt: warning: dvt.lock is not up to date; `dvt repro` would run: featurize (param `featurize.window` changed), train"
        ),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("dvt: warning: data changed but not added: notes.bin"),
        "{}",
        r.stderr
    );
    let log = env.git(&["log", "--oneline"]).ok();
    assert_eq!(log.stdout.lines().count(), 2, "the hook never blocks a commit");
}

/// The pre-commit hook stops a commit that would put data dvt tracks into git's
/// history (forced into the index, or its `.gitignore` entry gone), and says how to
/// take it out; `dvt status` warns of it too.
#[test]
fn pre_commit_hook_stops_a_commit_of_tracked_data() {
    let env = example();
    env.write("notes/a.bin", "v1");
    env.dvt(&["add", "notes"]).ok();
    actions(&env, &[]);
    env.dvt(&["install-hooks"]).ok();
    env.git(&["add", "-A"]);
    env.git_with_dvt(&["commit", "-q", "-m", "v1"]).ok();
    // A file of a tracked directory, and a stage's out.
    env.git(&["add", "-f", "notes/a.bin", "models/model.json"]);
    let st = env.dvt(&["status"]).ok();
    assert!(
        st.stderr
            .contains("warning: git's index holds data that dvt tracks: notes, models/model.json"),
        "{}",
        st.stderr
    );
    let r = env.git_with_dvt(&["commit", "-q", "-m", "data in git"]);
    assert_ne!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("dvt: the commit stops here"), "{}", r.stderr);
    assert_eq!(env.git(&["log", "--oneline"]).stdout.lines().count(), 1);
    // The hint's command takes them out of the index; then the commit goes through.
    let command = r.stderr.split("`git rm -r --cached ").nth(1).unwrap();
    let paths: Vec<&str> = command[..command.find('`').unwrap()].split(' ').collect();
    assert_eq!(paths, ["notes", "models/model.json"]);
    env.git(&[&["rm", "-r", "-q", "--cached"], &paths[..]].concat());
    env.git_with_dvt(&["commit", "-q", "--allow-empty", "-m", "no data in git"])
        .ok();
    assert!(env.exists("notes/a.bin") && env.exists("models/model.json"));
    let tree = env.git(&["ls-tree", "-r", "--name-only", "HEAD"]).stdout;
    assert!(
        !tree.contains("notes/a.bin") && !tree.contains("models/model.json"),
        "{tree}"
    );
}

/// A stage reading data added with `dvt add`: `dvt status` compares the pointer
/// and reuses that verdict for the stage's dep, and still sees a change to it.
#[test]
fn status_checks_stages_whose_deps_are_added_data() {
    let env = TestEnv::new();
    env.write("raw/a.csv", "1\n");
    env.write("raw/b.csv", "2\n");
    env.write("count.sh", "#!/bin/sh\nls raw | wc -l > count.txt\n");
    env.run("chmod", &["+x", "count.sh"]).ok();
    env.dvt(&["add", "raw", "count.sh"]).ok();
    env.dvt(&[
        "stage",
        "add",
        "-n",
        "count",
        "-d",
        "raw",
        "-d",
        "count.sh",
        "-o",
        "count.txt",
        "./count.sh",
    ])
    .ok();
    env.dvt(&["repro"]).ok();
    assert_eq!(env.dvt(&["status"]).ok().stdout, "Data and pointers are up to date.\n");
    env.write("raw/c.csv", "3\n");
    let st = env.dvt(&["status"]).ok();
    assert!(st.stdout.contains("raw.dvt: modified"), "{}", st.stdout);
    assert!(st.stdout.contains("    count: dep `raw` changed"), "{}", st.stdout);
}

/// `dvt freeze` (as `dvc freeze`): a frozen stage's deps and params are not
/// checked, the stages above it are not selected through it, and `dvt commit`
/// keeps what it was recorded with; `dvt unfreeze` makes it stale again.
/// `always_changed` stages run every time.
#[test]
fn frozen_stages_wait_and_always_changed_stages_always_run() {
    let env = example();
    actions(&env, &[]);
    let r = env.dvt(&["freeze", "train"]).ok();
    assert!(r.stdout.contains("Froze stage `train`"), "{}", r.stdout);
    let toml = String::from_utf8(env.read("dvt.toml")).unwrap();
    assert!(
        toml.starts_with("# The anomaly-detection pipeline"),
        "comments kept: {toml}"
    );
    assert!(
        toml.contains("outs = [\"models/model.json\"]\nfrozen = true\n"),
        "{toml}"
    );
    let r = env.dvt(&["freeze", "dvt.toml:train"]).ok();
    assert!(r.stdout.contains("Stage `train` was already frozen"), "{}", r.stdout);
    assert_eq!(env.read("dvt.toml"), toml.as_bytes());
    let list = env.dvt(&["stage", "list"]).ok().stdout;
    assert!(
        list.contains("\ntrain       outs models/model.json (frozen)\n"),
        "{list}"
    );

    // A changed param upstream: `repro train` selects nothing above it.
    let params = String::from_utf8(env.read("params.yaml")).unwrap();
    env.write("params.yaml", params.replace("window: 24", "window: 6"));
    let train_lock = lock_section(&env, "train");
    let acts = actions(&env, &["train"]);
    assert_eq!(acts, [("train".to_string(), "skipped".to_string())]);
    let r = env.dvt(&["repro", "train"]).ok();
    assert!(r.stdout.contains("Stage `train` is frozen, skipping"), "{}", r.stdout);
    // Status names featurize as stale, and the stages below it that look at their deps.
    let st = env.dvt(&["status", "--json"]).ok().json();
    let stale: Vec<&str> = st["stale_stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["stage"].as_str().unwrap())
        .collect();
    assert_eq!(stale, ["featurize", "evaluate"], "{st}");
    assert_eq!(ran(&actions(&env, &[])), ["featurize", "evaluate"]);
    // Its deps changed under it; `dvt commit` records nothing new for it.
    env.dvt(&["commit"]).ok();
    assert_eq!(lock_section(&env, "train"), train_lock);
    // A deleted out is restored, an edited one makes it run, as before.
    std::fs::remove_file(env.path("models/model.json")).unwrap();
    let acts = actions(&env, &["-s", "train"]);
    assert_eq!(acts, [("train".to_string(), "restored".to_string())]);
    env.write("models/model.json", "{}");
    assert_eq!(ran(&actions(&env, &["-s", "train"])), ["train"]);
    assert_ne!(
        lock_section(&env, "train"),
        train_lock,
        "recorded with its deps as they are"
    );

    // Unfrozen, a stage whose deps changed while it was frozen is stale again.
    env.dvt(&["repro", "-s", "train", "--force"]).ok();
    env.dvt(&["freeze", "train"]).ok();
    env.write("params.yaml", params.clone());
    let acts = actions(&env, &[]);
    // Back to the params featurize first ran with: the run cache has its outs.
    assert_eq!(
        acts[2],
        ("featurize".to_string(), "restored-from-run-cache".to_string())
    );
    assert_eq!(ran(&acts), ["evaluate"]);
    let r = env.dvt(&["unfreeze", "train"]).ok();
    assert!(r.stdout.contains("Unfroze stage `train`"), "{}", r.stdout);
    assert!(!String::from_utf8(env.read("dvt.toml")).unwrap().contains("frozen"));
    // Its deps are back to those of its first run: the run cache has its outs, and
    // evaluate's.
    let acts = actions(&env, &[]);
    let reused: Vec<&str> = acts
        .iter()
        .filter(|(_, a)| a == "restored-from-run-cache")
        .map(|(s, _)| s.as_str())
        .collect();
    assert_eq!(reused, ["train", "evaluate"], "{acts:?}");

    // always_changed: runs on every repro, and status says so.
    env.dvt(&[
        "stage",
        "add",
        "-n",
        "fetch",
        "--desc",
        "Reads the sensor feed",
        "--always-changed",
        "-o",
        "feed.txt",
        "date +%s%N > feed.txt",
    ])
    .ok();
    assert_eq!(ran(&actions(&env, &[])), ["fetch"]);
    assert_eq!(ran(&actions(&env, &[])), ["fetch"]);
    let list = env.dvt(&["stage", "list"]).ok().stdout;
    assert!(
        list.contains("\nfetch       Reads the sensor feed (always changed)\n"),
        "{list}"
    );
    let st = env.dvt(&["status"]).ok();
    assert!(st.stdout.contains("fetch: it always runs"), "{}", st.stdout);

    // Wrong input: a clear error, dvt.toml untouched.
    let before = env.read("dvt.toml");
    let r = env.dvt(&["freeze", "nosuch"]).fails();
    assert!(r.stderr.contains("no stage named `nosuch`"), "{}", r.stderr);
    assert_eq!(env.read("dvt.toml"), before);
    assert_eq!(env.dvt(&["unfreeze"]).code, 2, "a stage is required");
    let mut bad = String::from_utf8(before).unwrap();
    bad.push_str("frozen = \"yes\"\n");
    env.write("dvt.toml", bad);
    let r = env.dvt(&["repro"]).fails();
    assert!(r.stderr.contains("`frozen` must be true or false"), "{}", r.stderr);
}

/// `${KEY}` in dvt.toml, as in dvc.yaml: values from `[vars]` and params.yaml go
/// into commands and paths, and those from params.yaml are tracked as params.
#[test]
fn templated_values_come_from_vars_and_params() {
    let env = TestEnv::new();
    env.write("params.yaml", "train:\n  lr: 0.01\n  epochs: 3\n  note: unused\n");
    env.write(
        "dvt.toml",
        r#"[vars]
out_dir = "results"

[stages.train]
cmd = "mkdir -p ${out_dir} && echo lr=${train.lr} epochs=${train.epochs} > ${out_dir}/model.txt"
outs = ["${out_dir}/model.txt"]

[stages.literal]
cmd = "echo '\\${HOME}' > literal.txt"
outs = ["literal.txt"]
"#,
    );
    assert_eq!(ran(&actions(&env, &[])), ["literal", "train"]);
    assert_eq!(env.read("results/model.txt"), b"lr=0.01 epochs=3\n");
    assert_eq!(env.read("literal.txt"), b"${HOME}\n");
    let train = lock_section(&env, "train");
    assert!(
        train.contains("cmd = \"mkdir -p results && echo lr=0.01 epochs=3 > results/model.txt\""),
        "{train}"
    );
    assert!(train.contains("\"train.lr\" = 0.01"), "{train}");
    assert!(train.contains("\"train.epochs\" = 3"), "{train}");
    assert!(!train.contains("train.note"), "{train}");
    let list = env.dvt(&["stage", "list", "--json"]).ok().json();
    assert_eq!(list[1]["outs"][0]["path"], "results/model.txt", "{list}");

    // A value nobody uses changes nothing; a used one makes the stage stale, by name.
    env.write("params.yaml", "train:\n  lr: 0.01\n  epochs: 3\n  note: changed\n");
    assert_eq!(ran(&actions(&env, &[])), Vec::<&str>::new());
    env.write("params.yaml", "train:\n  lr: 0.02\n  epochs: 3\n  note: changed\n");
    let st = env.dvt(&["status"]).ok();
    assert!(st.stdout.contains("train: param `train.lr` changed"), "{}", st.stdout);
    assert_eq!(ran(&actions(&env, &[])), ["train"]);
    assert_eq!(env.read("results/model.txt"), b"lr=0.02 epochs=3\n");

    // Wrong input: one clear error naming the stage, nothing run.
    let good = env.read("dvt.toml");
    let text = String::from_utf8(good.clone()).unwrap();
    env.write("dvt.toml", text.replace("${train.epochs}", "${train.epoch}"));
    let r = env.dvt(&["repro"]).fails();
    assert!(
        r.stderr.contains(
            "stage `train`: `${train.epoch}` is defined nowhere: not in `vars` of dvt.toml, a vars file or params.yaml"
        ),
        "{}",
        r.stderr
    );
    env.write("dvt.toml", text.replace("out_dir = ", "train = "));
    let r = env.dvt(&["status"]).fails();
    assert!(
        r.stdout
            .contains("`train` is defined both in `[vars]` and in params.yaml"),
        "{}{}",
        r.stdout,
        r.stderr
    );
    env.write("dvt.toml", good);
    assert_eq!(ran(&actions(&env, &[])), Vec::<&str>::new());
}

/// `vars` may list files, as in dvc.yaml: their values fill `${KEY}`, and the
/// ones used are params of the stage.
#[test]
fn vars_files_give_values_that_are_tracked_as_params() {
    let env = TestEnv::new();
    env.write("config.yaml", "model:\n  name: cnn\n  size: 3\n");
    env.write("other.toml", "seed = 7\n[unused]\nx = 1\n");
    env.write("params.yaml", "epochs: 2\n");
    let text = r#"vars = ["config.yaml", "other.toml:seed", { out = "res" }]

[stages.train]
cmd = "mkdir -p ${out} && echo ${model.name} ${seed} ${epochs} > ${out}/m.txt"
outs = ["${out}/m.txt"]
"#;
    env.write("dvt.toml", text);
    assert_eq!(ran(&actions(&env, &[])), ["train"]);
    assert_eq!(env.read("res/m.txt"), b"cnn 7 2\n");
    let train = lock_section(&env, "train");
    for p in ["\"model.name\" = \"cnn\"", "\"seed\" = 7", "\"epochs\" = 2"] {
        assert!(train.contains(p), "{p} in {train}");
    }
    assert!(!train.contains("model.size"), "{train}");
    env.git(&["add", "-A"]);
    env.git(&["commit", "-qm", "v1"]);

    // An unused value changes nothing; a used one makes the stage stale, by name.
    env.write("config.yaml", "model:\n  name: cnn\n  size: 4\n");
    assert_eq!(ran(&actions(&env, &[])), Vec::<&str>::new());
    env.write("config.yaml", "model:\n  name: rnn\n  size: 4\n");
    let st = env.dvt(&["status"]).ok();
    assert!(
        st.stdout.contains("train: param `config.yaml:model.name` changed"),
        "{}",
        st.stdout
    );
    let diff = env.dvt(&["params", "diff"]).ok();
    assert!(
        diff.stdout.contains("config.yaml") && diff.stdout.contains("cnn") && diff.stdout.contains("rnn"),
        "{}",
        diff.stdout
    );
    assert_eq!(ran(&actions(&env, &[])), ["train"]);
    assert_eq!(env.read("res/m.txt"), b"rnn 7 2\n");
    // The committed lock's outs are still read at that revision.
    env.dvt(&["diff", "HEAD"]).ok();

    // Wrong input: one clear error, nothing run, dvt.toml as it was.
    for (bad, message) in [
        ("\"config.yaml\", ", "vars file `nope.yaml` does not exist"),
        ("\"other.toml:seed\"", "vars file `other.toml` has no key `nokey`"),
        ("\"config.yaml\", ", "vars file `../x.yaml` is outside the repository"),
        (
            "\"other.toml:seed\"",
            "`seed` is defined both in other.toml and in params.yaml",
        ),
        (
            "vars = [\"config.yaml\", \"other.toml:seed\", { out = \"res\" }]",
            "`vars` is a table, or a list of tables and files",
        ),
    ] {
        let broken = match message {
            m if m.contains("nope") => text.replace(bad, "\"config.yaml\", \"nope.yaml\", "),
            m if m.contains("nokey") => text.replace(bad, "\"other.toml:seed,nokey\""),
            m if m.contains("outside") => text.replace(bad, "\"config.yaml\", \"../x.yaml\", "),
            m if m.contains("both") => {
                env.write("params.yaml", "epochs: 2\nseed: 1\n");
                text.to_string()
            }
            _ => text.replace(bad, "vars = 3"),
        };
        env.write("dvt.toml", &broken);
        let r = env.dvt(&["repro"]).fails();
        assert!(r.stderr.contains(message), "{message}: {}", r.stderr);
        assert_eq!(env.read("res/m.txt"), b"rnn 7 2\n");
        env.write("params.yaml", "epochs: 2\n");
    }
    env.write("dvt.toml", text);
    assert_eq!(ran(&actions(&env, &[])), Vec::<&str>::new());
}

/// A stage may have `vars` of its own, as in dvc.yaml: tables, and files
/// relative to its `wdir`; values from its files are its params.
#[test]
fn stage_vars_are_the_stages_own() {
    let env = TestEnv::new();
    env.write("sub/local.yaml", "threshold: 0.5\nunused: 1\n");
    let text = r#"[vars]
out = "o"

[stages.eval]
wdir = "sub"
vars = ["local.yaml", { suffix = "x" }]
cmd = "echo ${threshold}-${suffix} > ${out}.txt"
outs = ["${out}.txt"]
"#;
    env.write("dvt.toml", text);
    assert_eq!(ran(&actions(&env, &[])), ["eval"]);
    assert_eq!(env.read("sub/o.txt"), b"0.5-x\n");
    let lock = lock_section(&env, "eval");
    assert!(
        lock.contains("[stages.eval.params.\"sub/local.yaml\"]") && lock.contains("\"threshold\" = 0.5"),
        "{lock}"
    );
    env.write("sub/local.yaml", "threshold: 0.7\nunused: 1\n");
    let st = env.dvt(&["status"]).ok().stdout;
    assert!(st.contains("eval: param `sub/local.yaml:threshold` changed"), "{st}");
    // A key defined by the stage and by the pipeline is refused, naming both.
    env.write("dvt.toml", text.replace("suffix = ", "out = "));
    let r = env.dvt(&["repro"]).fails();
    assert!(
        r.stderr
            .contains("stage `eval`: `out` is defined both in `[vars]` and in `vars` of stage `eval`"),
        "{}",
        r.stderr
    );
}

/// `dvt plots`: the files of `plots` (or named ones) drawn as SVG line charts
/// in one HTML page, from the workspace and from revisions.
#[test]
fn plots_draw_files_from_the_workspace_and_revisions() {
    let env = TestEnv::new();
    env.write("src.csv", "epoch,loss,acc\n1,0.9,0.5\n2,0.5,0.7\n3,0.2,0.8\n");
    env.write("src.json", r#"[{"auc": 0.6}, {"auc": 0.8}]"#);
    let png_v1: &[u8] = b"\x89PNG\r\n\x1a\n\xff\xfe v1";
    std::fs::write(env.path("src.png"), png_v1).unwrap();
    env.write(
        "dvt.toml",
        r#"[stages.train]
cmd = "cp src.csv loss.csv && cp src.json cached.json && cp src.png confusion.png"
deps = ["src.csv", "src.json", "src.png"]
plots = [{ path = "loss.csv", x = "epoch", title = "Training" }, { path = "cached.json", cache = true }, "confusion.png"]
"#,
    );
    assert_eq!(ran(&actions(&env, &[])), ["train"]);
    let list = env.dvt(&["stage", "list"]).ok().stdout;
    assert!(list.contains("plots loss.csv, cached.json, confusion.png"), "{list}");
    env.git(&["add", "-A"]);
    env.git(&["commit", "-qm", "v1"]);

    // One chart per file: a line per numeric field, a dot per record.
    let r = env.dvt(&["plots", "show"]).ok();
    assert!(
        r.stdout.starts_with("file:///") && r.stdout.trim_end().ends_with("/dvt_plots/index.html"),
        "{}",
        r.stdout
    );
    let page = String::from_utf8(env.read("dvt_plots/index.html")).unwrap();
    assert!(
        page.contains("<h2>Training</h2>") && page.contains("<h2>cached.json</h2>"),
        "{page}"
    );
    // The page is not for git: the default directory ignores itself.
    assert!(env.git(&["status", "--porcelain"]).stdout.is_empty());
    assert_eq!(page.matches("<polyline").count(), 3, "{page}");
    assert_eq!(page.matches("<circle").count(), 3 * 2 + 2, "{page}");
    assert!(page.contains("<title>epoch = 2, loss = 0.5</title>"), "{page}");
    let shown = env.dvt(&["plots", "show", "--json", "loss.csv"]).ok().json();
    assert_eq!(shown[0]["x"], "epoch");
    assert_eq!(shown[0]["series"][0]["y"], "loss");
    assert_eq!(
        shown[0]["series"][0]["points"],
        serde_json::json!([[1.0, 0.9], [2.0, 0.5], [3.0, 0.2]])
    );
    assert_eq!(shown[0]["series"][1]["y"], "acc");

    // diff: HEAD and the workspace on the same chart; a cached plot is read from the cache.
    env.write("src.csv", "epoch,loss,acc\n1,0.8,0.5\n2,0.3,0.75\n");
    env.write("src.json", r#"[{"auc": 0.7}]"#);
    std::fs::write(env.path("src.png"), b"\x89PNG\r\n\x1a\n v2, longer").unwrap();
    assert_eq!(ran(&actions(&env, &[])), ["train"]);
    let d = env.dvt(&["plots", "diff", "--json"]).ok().json();
    let series = |plot: &serde_json::Value| -> Vec<(String, String, usize)> {
        plot["series"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                let rev = s["rev"].as_str().unwrap().to_string();
                (
                    rev,
                    s["y"].as_str().unwrap().to_string(),
                    s["points"].as_array().unwrap().len(),
                )
            })
            .collect()
    };
    let want = |v: &[(&str, &str, usize)]| -> Vec<(String, String, usize)> {
        v.iter().map(|(a, b, n)| (a.to_string(), b.to_string(), *n)).collect()
    };
    assert_eq!(
        series(&d[0]),
        want(&[
            ("HEAD", "loss", 3),
            ("HEAD", "acc", 3),
            ("workspace", "loss", 2),
            ("workspace", "acc", 2)
        ])
    );
    assert_eq!(series(&d[1]), want(&[("HEAD", "auc", 2), ("workspace", "auc", 1)]));
    // An image is shown as it is, per revision, its bytes untouched.
    assert_eq!(
        d[2]["images"],
        serde_json::json!([{"rev": "HEAD", "size": 13}, {"rev": "workspace", "size": 19}])
    );
    env.dvt(&["plots", "diff", "HEAD", "-o", "out"]).ok();
    let page = String::from_utf8(env.read("out/index.html")).unwrap();
    assert!(page.contains("HEAD: loss") && page.contains("workspace: acc"), "{page}");
    // base64 of the HEAD image's 13 bytes.
    assert!(
        page.contains("<img src=\"data:image/png;base64,iVBORw0KGgr//iB2MQ==\""),
        "{page}"
    );
    // -x, -y and --title win over dvt.toml.
    let r = env
        .dvt(&[
            "plots", "show", "--json", "loss.csv", "-x", "acc", "-y", "loss", "--title", "T",
        ])
        .ok()
        .json();
    assert_eq!((r[0]["x"].clone(), r[0]["title"].clone()), ("acc".into(), "T".into()));
    assert_eq!(
        r[0]["series"][0]["points"],
        serde_json::json!([[0.5, 0.8], [0.75, 0.3]])
    );
    assert_eq!(r[0]["series"].as_array().unwrap().len(), 1);
    // Any file, named; JSON records with no `step` go by their number.
    let r = env.dvt(&["plots", "show", "--json", "src.json"]).ok().json();
    assert_eq!(r[0]["series"][0]["points"], serde_json::json!([[0.0, 0.7]]));

    // stage add --plots
    env.dvt(&["stage", "add", "-n", "eval", "--plots", "eval.csv", "echo"])
        .ok();
    assert!(
        String::from_utf8(env.read("dvt.toml"))
            .unwrap()
            .contains("plots = [\"eval.csv\"]")
    );

    // Wrong input: one clear error naming the file.
    for (args, message) in [
        (
            vec!["plots", "show", "nope.csv"],
            "plots file `nope.csv`: it does not exist in the workspace",
        ),
        (
            vec!["plots", "diff", "HEAD", "HEAD", "--targets", "eval.csv"],
            "plots file `eval.csv`: it does not exist at any of HEAD, HEAD",
        ),
        (vec!["plots", "diff", "nosuch"], "unknown revision `nosuch`"),
    ] {
        let r = env.dvt(&args).fails();
        assert!(r.stderr.contains(message), "{args:?}: {}", r.stderr);
    }
    let toml = String::from_utf8(env.read("dvt.toml")).unwrap();
    env.write("dvt.toml", toml.replace("x = \"epoch\"", "x = \"epoc\""));
    let r = env.dvt(&["plots", "show", "loss.csv"]).fails();
    assert!(
        r.stderr
            .contains("plots file `loss.csv`: it has no field `epoc` (fields: epoch, loss, acc)"),
        "{}",
        r.stderr
    );
    env.write("bad.csv", "a,b\n1,2\n3\n");
    let r = env.dvt(&["plots", "show", "bad.csv"]).fails();
    assert!(
        r.stderr
            .contains("plots file `bad.csv`: line 3 has 1 fields, the header 2"),
        "{}",
        r.stderr
    );
    env.write("dvt.toml", "");
    let r = env.dvt(&["plots", "show"]).fails();
    assert!(r.stderr.contains("no plots: name files"), "{}", r.stderr);
}

/// Top-level `metrics`, `params` and `plots`, as in dvc.yaml: files no stage
/// writes, read by `metrics`, `params diff`, `plots` and `exp show` all the same.
/// Before the first commit, the comparisons that start from HEAD by default
/// start from nothing, as `dvt diff` (and `git diff`) do: every value is new.
/// Naming HEAD (or the unborn branch) says there is no commit yet.
#[test]
fn comparisons_before_the_first_commit_start_from_nothing() {
    let env = TestEnv::new();
    env.write("eval/m.json", r#"{"acc": 0.5}"#);
    env.write("config.yaml", "lr: 0.1\n");
    env.write("loss.csv", "step,loss\n0,1\n1,0.5\n");
    env.write(
        "dvt.toml",
        "metrics = [\"eval/m.json\"]\nparams = [\"config.yaml\"]\nplots = [\"loss.csv\"]\n",
    );
    let d = env.dvt(&["params", "diff", "--json"]).ok().json();
    assert_eq!(
        d,
        serde_json::json!([{"file": "config.yaml", "key": "lr", "old": null, "new": 0.1}]),
        "{d}"
    );
    let d = env.dvt(&["metrics", "diff", "--json"]).ok().json();
    assert_eq!(
        (d[0]["key"].as_str(), d[0]["new"].as_f64()),
        (Some("acc"), Some(0.5)),
        "{d}"
    );
    assert!(d[0]["old"].is_null(), "{d}");
    let d = env
        .dvt(&["metrics", "diff", "-R", "--json", "--targets", "eval"])
        .ok()
        .json();
    assert_eq!(d[0]["file"], "eval/m.json", "{d}");
    let p = env.dvt(&["plots", "diff", "--json"]).ok().json();
    assert_eq!(p[0]["path"], "loss.csv", "{p}");
    let drawn: Vec<&serde_json::Value> = p[0]["series"].as_array().unwrap().iter().map(|s| &s["rev"]).collect();
    assert_eq!(drawn, ["workspace"], "{p}");
    for rev in ["HEAD", "main", "HEAD~1"] {
        let r = env.dvt(&["params", "diff", rev]).fails();
        assert!(
            r.stderr
                .contains(&format!("`{rev}` names no commit: the repository has none yet")),
            "{}",
            r.stderr
        );
        assert!(r.stderr.contains("make the first commit"), "{}", r.stderr);
    }
    let r = env.dvt(&["params", "diff", "nosuch"]).fails();
    assert!(r.stderr.contains("unknown revision `nosuch`"), "{}", r.stderr);
}

#[test]
fn top_level_metrics_params_and_plots_need_no_stage() {
    let env = TestEnv::new();
    env.write("eval/m.json", r#"{"acc": 0.5, "f1": {"macro": 0.4}}"#);
    env.write("config.yaml", "lr: 0.1\nlayers: 3\n");
    env.write("loss.csv", "step,loss\n0,1\n1,0.5\n");
    env.write(
        "dvt.toml",
        "metrics = [\"eval/m.json\"]\nparams = [\"config.yaml\"]\nplots = [{ path = \"loss.csv\", title = \"Loss\" }]\n",
    );
    env.git(&["add", "-A"]);
    env.git(&["commit", "-qm", "v1"]);
    env.write("eval/m.json", r#"{"acc": 0.7, "f1": {"macro": 0.4}}"#);
    env.write("config.yaml", "lr: 0.2\nlayers: 3\n");
    let shown = env.dvt(&["metrics", "show", "--json"]).ok().json();
    assert_eq!(shown["eval/m.json"]["acc"], 0.7);
    let d = env.dvt(&["metrics", "diff", "--json"]).ok().json();
    assert_eq!(d.as_array().unwrap().len(), 1, "{d}");
    assert_eq!((d[0]["key"].as_str(), d[0]["new"].as_f64()), (Some("acc"), Some(0.7)));
    // The change as written in the files' decimals: 0.2, not 0.19999999999999996.
    assert_eq!(d[0]["diff"].as_f64(), Some(0.2), "{d}");
    let d = env.dvt(&["params", "diff", "--json"]).ok().json();
    assert_eq!(
        (d[0]["file"].as_str(), d[0]["key"].as_str()),
        (Some("config.yaml"), Some("lr")),
        "{d}"
    );
    let p = env.dvt(&["plots", "show", "--json"]).ok().json();
    assert_eq!(
        (p[0]["path"].as_str(), p[0]["title"].as_str()),
        (Some("loss.csv"), Some("Loss"))
    );
    // Targets: any file, listed or not, relative to the current directory; --all
    // reports unchanged values too.
    env.write("eval/other.json", r#"{"x": 1}"#);
    let shown = env
        .dvt_cmd(&["metrics", "show", "--json", "other.json"])
        .current_dir(env.path("eval"))
        .output()
        .unwrap();
    assert!(shown.status.success(), "{}", String::from_utf8_lossy(&shown.stderr));
    let shown: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(shown, serde_json::json!({"eval/other.json": {"x": 1}}));
    let d = env.dvt(&["metrics", "diff", "--all", "--json"]).ok().json();
    let keys: Vec<&str> = d
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["acc", "f1.macro"]);
    assert_eq!(d[1]["old"], d[1]["new"]);
    assert_eq!(d[1]["diff"], 0.0, "an unchanged number changed by 0: {d}");
    let d = env
        .dvt(&["params", "diff", "--targets", "config.yaml", "--all", "--json"])
        .ok()
        .json();
    assert_eq!(d.as_array().unwrap().len(), 2, "{d}");
    // A diverged run: Python's json.dump writes NaN and Infinity, read as such
    // (`--json` gives null, as JSON has no such numbers).
    env.write("eval/m.json", r#"{"acc": NaN, "f1": {"macro": -Infinity}}"#);
    let r = env.dvt(&["metrics", "show"]).ok();
    assert!(
        r.stdout.contains("acc: nan") && r.stdout.contains("f1.macro: -inf"),
        "{}",
        r.stdout
    );
    let d = env.dvt(&["metrics", "diff", "--json"]).ok().json();
    assert_eq!(
        (d[0]["key"].as_str(), &d[0]["new"]),
        (Some("acc"), &serde_json::Value::Null),
        "{d}"
    );
    env.write("eval/m.json", r#"{"acc": 0.7, "f1": {"macro": 0.4}}"#);
    let d = env
        .dvt(&["metrics", "diff", "--targets", "eval/other.json", "--json"])
        .ok()
        .json();
    assert_eq!(
        d,
        serde_json::json!([{"file": "eval/other.json", "key": "x", "old": null, "new": 1}])
    );
    let r = env.dvt(&["metrics", "show", "nope.json"]).fails();
    assert!(
        r.stderr.contains("`nope.json` does not exist in the workspace"),
        "{}",
        r.stderr
    );
    let r = env.dvt(&["metrics", "show", "eval"]).fails();
    assert!(
        r.stderr.contains("`eval` is a directory; name a file in it"),
        "{}",
        r.stderr
    );
    let r = env.dvt(&["metrics", "diff", "--targets", "nope.json"]).fails();
    assert!(
        r.stderr
            .contains("`nope.json` does not exist at HEAD or in the workspace"),
        "{}",
        r.stderr
    );
    let r = env.dvt(&["exp", "save", "-n", "by-hand"]).ok();
    assert!(r.stdout.starts_with("Experiment `by-hand` saved"), "{}", r.stdout);
    let table = env.dvt(&["exp", "show"]).ok().stdout;
    let header = table.lines().next().unwrap();
    assert!(
        header.contains("acc") && header.contains("f1.macro") && header.contains("config.yaml:lr"),
        "{table}"
    );
    // Wrong entries: one clear error.
    for (toml, message) in [
        (
            "metrics = [\"/abs.json\"]",
            "metrics file `/abs.json` must be a relative path",
        ),
        ("params = [\"../up.yaml\"]", "params file `../up.yaml`"),
        ("params = [1]", "top-level `params` must be an array of params files"),
        (
            "plots = [{ path = \"a.csv\", cache = true }]",
            "`cache` in top-level `plots`: those files are in no stage",
        ),
        (
            "metrics = [{ path = \"m.json\", persist = true }]",
            "`persist` in top-level `metrics`: those files are in no stage",
        ),
        (
            "metrics = [{ path = \"m.json\", x = \"step\" }]",
            "unknown key `x` in an entry of `metrics` (known: path)",
        ),
        ("plot = []", "unknown top-level key `plot`"),
    ] {
        env.write("dvt.toml", toml);
        let r = env.dvt(&["metrics", "show"]).fails();
        assert!(r.stderr.contains(message), "{toml}: {}", r.stderr);
    }
}

/// DVC's plot templates: scatter, confusion matrices and horizontal bars.
#[test]
fn plots_templates_draw_dots_matrices_and_bars() {
    let env = TestEnv::new();
    env.write(
        "cm.csv",
        "actual,predicted\ncat,cat\ncat,dog\ndog,dog\nbird,cat\ncat,cat\n",
    );
    env.write(
        "imp.json",
        r#"[{"feature": "age", "gain": 0.2}, {"feature": "zip", "gain": 0.7}]"#,
    );
    env.write("pts.csv", "x,y\n0.1,1\n0.2,3\n0.3,2\n");
    env.write(
        "dvt.toml",
        r#"[stages.eval]
cmd = "true"
plots = [{ path = "cm.csv", template = "confusion" }, { path = "imp.json", template = "bar_horizontal_sorted" }, { path = "pts.csv", template = "scatter", x = "x" }]
"#,
    );
    env.git(&["add", "-A"]);
    env.git(&["commit", "-qm", "v1"]);
    let d = env.dvt(&["plots", "show", "--json"]).ok().json();
    assert_eq!(d[0]["template"], "confusion");
    assert_eq!(
        (d[0]["x"].as_str(), d[0]["y"].as_str()),
        (Some("actual"), Some("predicted"))
    );
    // Rows are actual classes, columns predicted ones, sorted.
    assert_eq!(
        d[0]["matrices"],
        serde_json::json!([{"rev": "workspace", "classes": ["bird", "cat", "dog"],
            "counts": [[0, 1, 0], [0, 2, 1], [0, 0, 1]]}])
    );
    assert_eq!(
        d[1]["bars"],
        serde_json::json!([{"rev": "workspace", "bars": [["age", 0.2], ["zip", 0.7]]}])
    );
    assert_eq!(
        (d[1]["x"].as_str(), d[1]["y"].as_str()),
        (Some("gain"), Some("feature"))
    );
    assert_eq!(d[2]["template"], "scatter");
    env.dvt(&["plots", "show"]).ok();
    let page = String::from_utf8(env.read("dvt_plots/index.html")).unwrap();
    // A scatter plot has dots and no lines; a matrix a cell per pair; bars a bar per record.
    assert_eq!(page.matches("<polyline").count(), 0, "{page}");
    assert_eq!(page.matches("<circle").count(), 3, "{page}");
    assert!(
        page.contains("<title>actual = cat, predicted = cat: 2</title>"),
        "{page}"
    );
    assert!(
        page.contains("<title>workspace: feature = zip, gain = 0.7</title>"),
        "{page}"
    );
    // Sorted bars: the longest first.
    assert!(page.find(">zip</text>").unwrap() < page.find(">age</text>").unwrap());

    // diff: a matrix per revision; -t overrides dvt.toml; normalized rows sum to 1.
    env.write("cm.csv", "actual,predicted\ncat,cat\ndog,cat\n");
    let d = env.dvt(&["plots", "diff", "--json", "--targets", "cm.csv"]).ok().json();
    let revs: Vec<&str> = d[0]["matrices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["rev"].as_str().unwrap())
        .collect();
    assert_eq!(revs, ["HEAD", "workspace"]);
    env.dvt(&["plots", "show", "cm.csv", "-t", "confusion_normalized", "-o", "n"])
        .ok();
    let page = String::from_utf8(env.read("n/index.html")).unwrap();
    assert!(
        page.contains("<title>actual = dog, predicted = cat: 1.00</title>"),
        "{page}"
    );
    assert!(
        page.contains("<title>actual = cat, predicted = dog: 0.00</title>"),
        "{page}"
    );

    // Wrong input: a clear error.
    let r = env.dvt(&["plots", "show", "pts.csv", "-t", "confusion"]).fails();
    assert!(
        r.stderr
            .contains("plots file `pts.csv`: it has no field `predicted` (fields: x, y)"),
        "{}",
        r.stderr
    );
    let r = env.dvt(&["plots", "show", "cm.csv", "-t", "bar_horizontal"]).fails();
    assert!(
        r.stderr.contains("no field of numbers for the bars' lengths"),
        "{}",
        r.stderr
    );
    let r = env.dvt(&["plots", "show", "-t", "pie"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("unknown template (known: linear,"), "{}", r.stderr);
    env.write(
        "dvt.toml",
        "[stages.eval]\ncmd = \"true\"\nplots = [{ path = \"cm.csv\", template = \"pie\" }]\n",
    );
    let r = env.dvt(&["plots", "show"]).fails();
    assert!(r.stderr.contains("plot template `pie` is unknown"), "{}", r.stderr);
}

/// `foreach` stages, as in dvc.yaml: one stage per case, named `NAME@CASE`; the
/// group's name stands for all its cases.
#[test]
fn foreach_stages_repeat_a_stage_per_case() {
    let env = TestEnv::new();
    env.write("params.yaml", "regions:\n  us: {lr: 0.1}\n  uk: {lr: 0.2}\n");
    env.write(
        "dvt.toml",
        r#"[stages.prep]
foreach = ["a", "b"]
[stages.prep.do]
cmd = "echo ${item} > prep-${item}.txt"
outs = ["prep-${item}.txt"]

[stages.train]
foreach = "${regions}"
[stages.train.do]
cmd = "cat prep-a.txt > model-${key}.txt && echo ${item.lr} >> model-${key}.txt"
deps = ["prep-a.txt"]
outs = ["model-${key}.txt"]
"#,
    );
    let list = env.dvt(&["stage", "list"]).ok().stdout;
    let names: Vec<&str> = list.lines().map(|l| l.split_whitespace().next().unwrap()).collect();
    assert_eq!(names, ["prep@a", "prep@b", "train@uk", "train@us"]);
    // DVC's `dag --collapse-foreach-matrix`: a group is one node.
    let r = env.dvt(&["dag"]).ok();
    assert!(
        r.stdout.contains("prep@a -> train@uk\nprep@a -> train@us\n"),
        "{}",
        r.stdout
    );
    let r = env.dvt(&["dag", "--collapse-foreach-matrix"]).ok();
    assert_eq!(r.stdout, "prep -> train\n");
    let r = env.dvt(&["dag", "--collapse-foreach-matrix", "--dot"]).ok();
    assert_eq!(
        r.stdout,
        "digraph pipeline {\n    \"prep\";\n    \"train\";\n    \"prep\" -> \"train\";\n}\n"
    );
    // Nothing ran yet: each says so, downstream ones too (not "an upstream
    // stage would run").
    let st = env.dvt(&["status"]).ok().stdout;
    assert_eq!(st.matches("it has never run").count(), 4, "{st}");
    // The group's name selects its cases and what they depend on.
    assert_eq!(ran(&actions(&env, &["train"])), ["prep@a", "train@uk", "train@us"]);
    assert_eq!(env.read("model-uk.txt"), b"a\n0.2\n");
    assert_eq!(ran(&actions(&env, &["dvt.toml:prep@b"])), ["prep@b"]);
    // -q: a run prints nothing; a dry run still answers.
    let r = env.dvt(&["-q", "repro", "--force", "prep"]).ok();
    assert_eq!((r.stdout.as_str(), r.stderr.as_str()), ("", ""));
    let r = env.dvt(&["-q", "repro", "--dry-run", "--force", "prep"]).ok();
    assert!(r.stdout.contains("Stage `prep@b` would run: forced"), "{}", r.stdout);
    assert!(lock_section(&env, "\"train@us\"").contains("echo 0.1 >> model-us.txt"));
    // A changed value reruns only the case it belongs to.
    env.write("params.yaml", "regions:\n  us: {lr: 0.3}\n  uk: {lr: 0.2}\n");
    assert_eq!(ran(&actions(&env, &[])), ["train@us"]);
    assert_eq!(env.read("model-us.txt"), b"a\n0.3\n");
    std::fs::remove_file(env.path("model-uk.txt")).unwrap();
    env.dvt(&["checkout", "train"]).ok();
    assert_eq!(env.read("model-uk.txt"), b"a\n0.2\n");
    // A case taken out of the list: its entry leaves `dvt.lock` when it is next
    // written, and repro says so, naming the out it leaves in the workspace.
    env.write("params.yaml", "regions:\n  us: {lr: 0.4}\n");
    let r = env.dvt(&["repro"]).ok();
    assert!(r.stdout.contains("Stage `train@us` ran"), "{}", r.stdout);
    assert!(
        r.stderr.contains(
            "note: stage `train@uk` is no longer in dvt.toml, so dvt.lock forgets it; \
             its outs stay in the workspace: model-uk.txt"
        ),
        "{}",
        r.stderr
    );
    assert_eq!(env.read("model-uk.txt"), b"a\n0.2\n");
    let lock = String::from_utf8(env.read("dvt.lock")).unwrap();
    assert!(!lock.contains("train@uk") && lock.contains("train@us"), "{lock}");
    // Said once: the next write has nothing more to forget.
    env.write("params.yaml", "regions:\n  us: {lr: 0.5}\n");
    let r = env.dvt(&["repro", "--json"]).ok().json();
    assert_eq!(r["forgotten"], serde_json::json!([]), "{r}");
    env.write("params.yaml", "regions:\n  us: {lr: 0.3}\n  uk: {lr: 0.2}\n");
    // Both cases come back from the run cache: each ran with these values before.
    let acts = actions(&env, &[]);
    let back: Vec<&str> = acts
        .iter()
        .filter(|(_, a)| a == "restored-from-run-cache")
        .map(|(s, _)| s.as_str())
        .collect();
    assert_eq!(back, ["train@uk", "train@us"], "{acts:?}");

    // Freezing goes in the `do` table; bad cases are clear errors.
    let r = env.dvt(&["freeze", "train"]).fails();
    assert!(
        r.stderr.contains("put `frozen = true` in its `do` table"),
        "{}",
        r.stderr
    );
    let good = String::from_utf8(env.read("dvt.toml")).unwrap();
    for (from, to, says) in [
        (
            "[\"a\", \"b\"]",
            "[\"a b\"]",
            "`foreach` case `a b` cannot name a stage",
        ),
        ("[\"a\", \"b\"]", "[]", "`foreach` has nothing to repeat over"),
        ("[\"a\", \"b\"]", "[\"1\", 1]", "`foreach` has the case `1` twice"),
        (
            "foreach = \"${regions}\"",
            "foreach = \"${nowhere}\"",
            "`${nowhere}` is defined nowhere",
        ),
        ("[stages.train.do]", "[stages.train.todo]", "only `foreach` and `do`"),
    ] {
        env.write("dvt.toml", good.replace(from, to));
        let r = env.dvt(&["repro"]).fails();
        assert!(r.stderr.contains(says), "{says}: {}", r.stderr);
    }

    // matrix: one case per combination, values as `${item.NAME}`.
    env.write(
        "params.yaml",
        "regions:\n  us: {lr: 0.3}\n  uk: {lr: 0.2}\nsplits: [test, val]\n",
    );
    let matrix = r#"
[stages.eval]
matrix = { model = ["cnn", "xgb"], split = "${splits}" }
cmd = "echo ${item.model} ${item.split} > eval-${item.model}-${item.split}.txt"
outs = ["eval-${item.model}-${item.split}.txt"]
"#;
    env.write("dvt.toml", format!("{good}{matrix}"));
    assert_eq!(
        ran(&actions(&env, &["eval"])),
        ["eval@cnn-test", "eval@cnn-val", "eval@xgb-test", "eval@xgb-val"]
    );
    assert_eq!(env.read("eval-xgb-val.txt"), b"xgb val\n");
    env.write(
        "dvt.toml",
        format!("{good}{}", matrix.replace("matrix = {", "foreach = [1]\nmatrix = {")),
    );
    let r = env.dvt(&["repro"]).fails();
    assert!(
        r.stderr.contains("a stage has `matrix` or `foreach`, not both"),
        "{}",
        r.stderr
    );
}

/// `plots show --open` hands the page to the desktop's opener; without one, the
/// page is still written and a note says so.
/// DVC's `x_label`/`y_label` (in `dvt.toml`, or `--x-label`/`--y-label`, which win).
#[test]
fn plots_take_axis_labels() {
    let env = TestEnv::new();
    env.write("loss.csv", "step,loss\n0,1\n1,0.5\n");
    env.write(
        "dvt.toml",
        "plots = [{ path = \"loss.csv\", x_label = \"epoch\", y_label = \"cross-entropy\" }]\n",
    );
    let j = env.dvt(&["plots", "show", "--json"]).ok().json();
    assert_eq!(
        (j[0]["x_label"].as_str(), j[0]["y_label"].as_str()),
        (Some("epoch"), Some("cross-entropy")),
        "{j}"
    );
    env.dvt(&["plots", "show"]).ok();
    let page = String::from_utf8(env.read("dvt_plots/index.html")).unwrap();
    assert!(
        page.contains(">epoch</text>") && page.contains(">cross-entropy</text>"),
        "labels drawn"
    );
    env.dvt(&["plots", "show", "--x-label", "pass", "--y-label", "loss <nats>"])
        .ok();
    let page = String::from_utf8(env.read("dvt_plots/index.html")).unwrap();
    assert!(
        page.contains(">pass</text>") && page.contains(">loss &lt;nats&gt;</text>"),
        "escaped"
    );
    assert!(!page.contains(">epoch</text>"));
    env.write("dvt.toml", "plots = [{ path = \"loss.csv\", x_lable = \"epoch\" }]\n");
    let r = env.dvt(&["plots", "show"]).fails();
    assert!(r.stderr.contains("x_lable"), "{}", r.stderr);
}

#[test]
fn plots_open_hands_the_page_to_the_opener() {
    let env = TestEnv::new();
    env.write("loss.csv", "step,loss\n0,1\n1,0.5\n");
    let bin = env.path("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let opened = env.path("opened.txt");
    let script = bin.join("xdg-open");
    // Written under another name, then renamed: the test sees the file only whole.
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$1\" > '{0}.tmp' && mv '{0}.tmp' '{0}'\n",
            opened.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let out = env
        .dvt_cmd(&["plots", "show", "loss.csv", "--open"])
        .env("PATH", &path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let page = env.path("dvt_plots/index.html").canonicalize().unwrap();
    for _ in 0..100 {
        if opened.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let got = std::fs::read_to_string(&opened).unwrap();
    assert_eq!(got.trim(), page.to_str().unwrap());
    // No opener on PATH: a note, and the page all the same.
    std::fs::remove_file(env.path("dvt_plots/index.html")).unwrap();
    let out = env
        .dvt_cmd(&["plots", "show", "loss.csv", "--open"])
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("could not open it with `xdg-open`"), "{stderr}");
    assert!(env.exists("dvt_plots/index.html"));
}

/// A top-level plot whose `y` names files draws fields of several files on one
/// chart, as DVC's plot definitions do.
#[test]
fn a_plot_of_several_files_draws_them_on_one_chart() {
    let env = TestEnv::new();
    env.write("train.csv", "epoch,loss\n0,1.0\n1,0.6\n");
    env.write("test.csv", "epoch,loss,acc\n0,1.2,0.5\n1,0.9,0.7\n");
    env.write(
        "dvt.toml",
        r#"plots = [
  { name = "train_vs_test", x = "epoch", title = "Loss", y = { "train.csv" = "loss", "test.csv" = ["loss", "acc"] } },
]
"#,
    );
    let plots = env.dvt(&["plots", "show", "--json"]).ok().json();
    let plot = &plots[0];
    assert_eq!(plot["path"], "train_vs_test", "{plots}");
    assert_eq!(plot["title"], "Loss");
    assert_eq!(plot["x"], "epoch");
    let ys: Vec<&str> = plot["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["y"].as_str().unwrap())
        .collect();
    // Files in name order (TOML tables have no order), fields as listed.
    assert_eq!(ys, ["test.csv: loss", "test.csv: acc", "train.csv: loss"]);
    assert_eq!(plot["series"][1]["points"], serde_json::json!([[0.0, 0.5], [1.0, 0.7]]));
    // Named like a file; drawn into the page with a legend entry per file and field.
    env.dvt(&["plots", "show", "train_vs_test"]).ok();
    let page = String::from_utf8(env.read("dvt_plots/index.html")).unwrap();
    assert!(
        page.contains("<h2>Loss</h2>") && page.contains("test.csv: acc"),
        "{page}"
    );

    for (toml, message) in [
        (
            "plots = [{ x = \"epoch\", y = { \"train.csv\" = \"loss\" } }]",
            "a plot whose `y` names files needs a `name`",
        ),
        (
            "plots = [{ name = \"p\", template = \"confusion\", y = { \"train.csv\" = \"loss\" } }]",
            "plot `p`: a plot of several files draws lines or dots",
        ),
        (
            "plots = [{ name = \"p\", y = { \"train.csv\" = 1 } }]",
            "plot `p`: `y` of `train.csv` is a field name or a list of them",
        ),
        (
            "plots = [{ name = \"p\", path = \"x.csv\", y = { \"train.csv\" = \"loss\" } }]",
            "unknown key `path` in a plot of several files",
        ),
        (
            "[stages.s]\ncmd = \"true\"\nplots = [{ name = \"p\", y = { \"train.csv\" = \"loss\" } }]",
            "goes in the top-level `plots`, not a stage's",
        ),
        (
            "plots = [{ name = \"p\", y = { \"gone.csv\" = \"loss\" } }]",
            "plots file `p`: none of its files (gone.csv) exists in the workspace",
        ),
    ] {
        env.write("dvt.toml", toml);
        let r = env.dvt(&["plots", "show"]).fails();
        assert!(r.stderr.contains(message), "{toml}: {}", r.stderr);
    }
}

/// A plots path that is a directory is a chart per file in it (images, say), at
/// every revision that has it.
#[test]
fn a_directory_of_plots_is_a_chart_per_file() {
    let env = TestEnv::new();
    env.write("eval/images/a.png", "\u{89}PNG one");
    env.write("eval/curves/roc.csv", "fpr,tpr\n0,0\n1,1\n");
    env.write("dvt.toml", "plots = [\"eval/images\", \"eval/curves\"]\n");
    env.commit("eval");
    env.write("eval/images/b.png", "\u{89}PNG two");
    let plots = env.dvt(&["plots", "diff", "--json"]).ok().json();
    let paths: Vec<&str> = plots
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["eval/images/a.png", "eval/images/b.png", "eval/curves/roc.csv"]);
    let revs = |i: usize| -> Vec<String> {
        plots[i]["images"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["rev"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(revs(0), ["HEAD", "workspace"]);
    assert_eq!(revs(1), ["workspace"]);
    assert_eq!(
        plots[2]["series"].as_array().unwrap().len(),
        4,
        "fpr and tpr at two revisions"
    );
    std::fs::create_dir_all(env.path("eval/empty")).unwrap();
    let r = env.dvt(&["plots", "show", "eval/empty"]).fails();
    assert!(
        r.stderr
            .contains("plots file `eval/empty`: it is a directory with no files in it"),
        "{}",
        r.stderr
    );
}

/// `stage add --run` runs the new stage at once; `--outs-persist` outs are kept
/// across runs.
#[test]
fn stage_add_run_and_persistent_outs() {
    let env = TestEnv::new();
    env.write("in.txt", "x\n");
    let r = env
        .dvt(&[
            "stage",
            "add",
            "-n",
            "grow",
            "-d",
            "in.txt",
            "--outs-persist",
            "log.txt",
            "--outs-persist-no-cache",
            "seen.txt",
            "--run",
            "cat in.txt >> log.txt && echo run >> seen.txt",
        ])
        .ok();
    assert!(r.stdout.contains("Ran stage `grow`"), "{}", r.stdout);
    let toml = String::from_utf8(env.read("dvt.toml")).unwrap();
    assert!(
        toml.contains(r#"{ path = "log.txt", persist = true }"#)
            && toml.contains(r#"{ path = "seen.txt", cache = false, persist = true }"#),
        "{toml}"
    );
    assert!(env.exists("dvt.lock"));
    assert_eq!(
        env.dvt(&["status", "--json"]).ok().json()["stale_stages"],
        serde_json::json!([])
    );
    env.write("in.txt", "y\n");
    env.dvt(&["repro", "-q"]).ok();
    assert_eq!(env.read("log.txt"), b"x\ny\n");
    assert_eq!(env.read("seen.txt"), b"run\nrun\n");
}

/// DVC's `-M/--metrics-no-cache` and `--plots-no-cache` are accepted (dvt's
/// metrics and plots are not cached anyway); an option `stage add` does not
/// know is refused rather than taken as the start of the command.
#[test]
fn stage_add_takes_dvcs_no_cache_flags_and_refuses_unknown_ones() {
    let env = TestEnv::new();
    let r = env.dvt(&["stage", "add", "-n", "t", "-X", "m.json", "echo hi"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("`-X` is not an option of `dvt stage add`"),
        "{}",
        r.stderr
    );
    assert!(!env.exists("dvt.toml"));
    env.dvt(&[
        "stage",
        "add",
        "-n",
        "t",
        "-M",
        "m.json",
        "--plots-no-cache",
        "p.csv",
        "echo hi",
    ])
    .ok();
    let toml = String::from_utf8(env.read("dvt.toml")).unwrap();
    assert!(
        toml.contains(r#"metrics = ["m.json"]"#)
            && toml.contains(r#"plots = ["p.csv"]"#)
            && toml.contains(r#"cmd = "echo hi""#),
        "{toml}"
    );
}

/// `metrics show -a/-T/-A`: the metrics at every branch, tag or commit, beside
/// the workspace's, as `dvc metrics show`.
/// DVC's `metrics show -R`/`metrics diff -R`: a directory target stands for the
/// metrics files below it (other files left out), at each side for a diff.
#[test]
fn metrics_recursive_reads_the_metrics_files_below_a_directory() {
    let env = TestEnv::new();
    env.write("eval/a.json", "{\"acc\": 0.9}\n");
    env.write("eval/per-class/cat.yaml", "f1: 0.5\n");
    env.write("eval/README.md", "not metrics\n");
    let r = env.dvt(&["metrics", "show", "eval"]).fails();
    assert!(r.stderr.contains("`eval` is a directory"), "{}", r.stderr);
    let r = env.dvt(&["metrics", "show", "-R", "eval"]).ok();
    assert_eq!(
        r.stdout,
        "eval/a.json:\n    acc: 0.9\neval/per-class/cat.yaml:\n    f1: 0.5\n"
    );
    env.commit("eval");
    env.write("eval/a.json", "{\"acc\": 0.95}\n");
    std::fs::remove_file(env.path("eval/per-class/cat.yaml")).unwrap();
    env.write("eval/per-class/dog.toml", "f1 = 0.6\n");
    let r = env
        .dvt(&["metrics", "diff", "--recursive", "--targets", "eval", "--json"])
        .ok()
        .json();
    let files: Vec<&str> = r
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["file"].as_str().unwrap())
        .collect();
    assert_eq!(
        files,
        ["eval/a.json", "eval/per-class/cat.yaml", "eval/per-class/dog.toml"],
        "{r}"
    );
    std::fs::create_dir(env.path("empty")).unwrap();
    let r = env.dvt(&["metrics", "show", "-R", "empty"]).fails();
    assert!(r.stderr.contains("`empty` holds no metrics file"), "{}", r.stderr);
}

#[test]
fn metrics_show_across_revisions() {
    let env = TestEnv::new();
    env.write("dvt.toml", "metrics = [\"m.json\"]\n");
    env.write("m.json", "{\"acc\": 0.5}\n");
    env.commit("first");
    env.git(&["tag", "v1"]);
    env.git(&["branch", "old"]);
    env.write("m.json", "{\"acc\": 0.7, \"loss\": 0.2}\n");
    env.commit("second");
    env.write("m.json", "{\"acc\": 0.8}\n");

    let r = env.dvt(&["metrics", "show", "-a", "-T"]).ok();
    assert_eq!(
        r.stdout,
        "Revision   Path    acc  loss\n\
         workspace  m.json  0.8     —\n\
         main       m.json  0.7   0.2\n\
         old        m.json  0.5     —\n\
         v1         m.json  0.5     —\n"
    );
    let r = env.dvt(&["metrics", "show", "-A", "--json"]).ok();
    let j = r.json();
    let labels: Vec<&String> = j.as_object().unwrap().keys().collect();
    assert_eq!(labels.len(), 3, "{}", r.stdout);
    assert_eq!(labels[0], "workspace");
    assert_eq!(
        j[labels[1].as_str()]["m.json"]["acc"],
        0.7,
        "newest commit first: {}",
        r.stdout
    );
    assert_eq!(j[labels[2].as_str()]["m.json"]["acc"], 0.5, "{}", r.stdout);
    let r = env.dvt(&["metrics", "show", "-T", "--md"]).ok();
    assert!(r.stdout.contains("| v1 | m.json | 0.5 |"), "{}", r.stdout);
}

/// A one-stage project whose stage counts its runs in `runs.log` (not an out)
/// and writes a cached out and an uncached metrics file from `params.yaml`.
/// gc keeps the run-cache entries whose data it keeps, with the copies of their
/// metrics (which git keeps, so no pointer names them), and deletes the others
/// with their data.
#[test]
fn gc_keeps_the_runs_whose_data_it_keeps() {
    let env = counted_project();
    env.dvt(&["repro"]).ok();
    env.write("params.yaml", "lr: 0.2\n");
    env.dvt(&["repro"]).ok();
    let r = env.dvt(&["gc", "--dry-run"]).ok();
    assert!(r.stderr.contains("run cache: 1 entry to delete"), "{}", r.stderr);
    let r = env.dvt(&["gc", "-f"]).ok();
    assert!(
        r.stdout.contains("deleted 2 objects and 1 run-cache entry"),
        "{}",
        r.stdout
    );
    // lr 0.1's run is gone with its data: the stage runs.
    env.write("params.yaml", "lr: 0.1\n");
    env.dvt(&["repro"]).ok();
    assert_eq!(runs(&env), 3);
    // lr 0.2's was kept, metrics included.
    env.write("params.yaml", "lr: 0.2\n");
    let r = env.dvt(&["repro"]).ok();
    assert!(r.stdout.contains("restored from the run cache"), "{}", r.stdout);
    assert_eq!(runs(&env), 3);
    assert_eq!(env.read("metrics.json"), b"{\"loss\": 0.2}\n");
    let r = env.dvt(&["gc", "-f"]).ok();
    assert!(
        r.stdout.contains("deleted 2 objects and 1 run-cache entry"),
        "{}",
        r.stdout
    );
}

/// Back to the inputs of an earlier run, a stage's outs (metrics too) come
/// from the run cache, and `dvt.lock` says what that run recorded.
#[test]
fn the_run_cache_restores_an_earlier_runs_outs_instead_of_running() {
    let env = counted_project();
    assert_eq!(ran(&actions(&env, &[])), ["train"]);
    let first_lock = env.read("dvt.lock");
    env.write("params.yaml", "lr: 0.2\n");
    assert_eq!(ran(&actions(&env, &[])), ["train"]);
    assert_eq!(env.read("model.txt"), b"lr: 0.2\n");
    env.write("params.yaml", "lr: 0.1\n");
    let r = env.dvt(&["repro"]).ok();
    assert!(
        r.stdout.contains(
            "Stage `train`: param `lr` changed, to what an earlier run had; that run's outs restored from the run cache, not run"
        ),
        "{}",
        r.stdout
    );
    assert_eq!(runs(&env), 2);
    assert_eq!(env.read("model.txt"), b"lr: 0.1\n");
    assert_eq!(env.read("metrics.json"), b"{\"loss\": 0.1}\n");
    assert_eq!(env.read("dvt.lock"), first_lock);
    // The hint names what was written for git (as DVC's "To track the changes").
    assert!(
        r.stderr
            .contains("hint: to record the results with git, run:\n    git add dvt.lock\n"),
        "{}",
        r.stderr
    );
    // With no dvt.lock at all, a stage whose run the run cache has is restored whole.
    std::fs::remove_file(env.path("dvt.lock")).unwrap();
    let r = env.dvt(&["repro"]).ok();
    assert!(
        r.stdout.contains(
            "Stage `train`: an earlier run had the same command, deps and params; its outs restored from the run cache, not run"
        ),
        "{}",
        r.stdout
    );
    assert_eq!(runs(&env), 2);
    assert_eq!(env.read("dvt.lock"), first_lock);
    // Nothing changed, nothing written: no hint.
    let r = env.dvt(&["repro"]).ok();
    assert!(!r.stderr.contains("git add"), "{}", r.stderr);
    assert_eq!(env.dvt(&["status"]).ok().stdout, "Data and pointers are up to date.\n");
    let ignored = String::from_utf8(env.read(".gitignore")).unwrap();
    assert!(
        ignored.contains("/model.txt") && !ignored.contains("metrics.json"),
        "{ignored}"
    );
    // `--force` and `--no-run-cache` run it.
    assert_eq!(ran(&actions(&env, &["--force"])), ["train"]);
    env.write("params.yaml", "lr: 0.2\n");
    assert_eq!(ran(&actions(&env, &["--no-run-cache"])), ["train"]);
    assert_eq!(runs(&env), 4);
    // So does an experiment going back to a value tried before, without running.
    env.git(&["add", "-A"]);
    env.git(&["commit", "-qm", "lr 0.2"]);
    let r = env.dvt(&["exp", "run", "-S", "lr=0.1", "-n", "back"]).ok();
    assert!(
        r.stdout.contains("(0 stage runs, 1 restored from the run cache)"),
        "{}",
        r.stdout
    );
    assert_eq!(runs(&env), 4);
    // A run with `--no-commit` goes into the run cache once `dvt commit` stores it.
    env.write("params.yaml", "lr: 0.3\n");
    assert_eq!(ran(&actions(&env, &["--no-commit"])), ["train"]);
    env.dvt(&["commit", "-q"]).ok();
    env.write("params.yaml", "lr: 0.1\n");
    actions(&env, &[]);
    env.write("params.yaml", "lr: 0.3\n");
    let reused = [("train".to_string(), "restored-from-run-cache".to_string())];
    assert_eq!(actions(&env, &[]), reused);
    assert_eq!(env.read("metrics.json"), b"{\"loss\": 0.3}\n");
    assert_eq!(runs(&env), 5);
}

/// A run-cache entry that cannot be restored (its objects gone, or the entry
/// damaged) is no entry: the stage runs.
#[test]
fn a_run_cache_entry_that_cannot_be_restored_lets_the_stage_run() {
    let env = counted_project();
    actions(&env, &[]);
    env.write("params.yaml", "lr: 0.2\n");
    actions(&env, &[]);
    let entries: Vec<std::path::PathBuf> = walk(&env.path(".dvt/cache/runs"));
    assert_eq!(entries.len(), 2, "{entries:?}");
    for e in &entries {
        std::fs::write(e, "not = [a run").unwrap();
    }
    env.write("params.yaml", "lr: 0.1\n");
    assert_eq!(ran(&actions(&env, &[])), ["train"]);
    assert_eq!(env.read("model.txt"), b"lr: 0.1\n");
    // Its entry is written again; now without the objects it names.
    let gone = ["objects", "packs"].map(|d| std::fs::remove_dir_all(env.path(&format!(".dvt/cache/{d}"))).is_ok());
    assert!(gone.contains(&true));
    env.write("params.yaml", "lr: 0.2\n");
    assert_eq!(ran(&actions(&env, &[])), ["train"]);
    env.write("params.yaml", "lr: 0.1\n");
    assert_eq!(ran(&actions(&env, &[])), ["train"]);
    assert_eq!(runs(&env), 5);
    // A run cache that cannot be written loses no run: dvt.lock records it.
    std::fs::remove_dir_all(env.path(".dvt/cache/runs")).unwrap();
    env.write(".dvt/cache/runs", "in the way");
    env.write("params.yaml", "lr: 0.4\n");
    assert_eq!(ran(&actions(&env, &[])), ["train"]);
    let lock = String::from_utf8(env.read("dvt.lock")).unwrap();
    assert!(lock.contains("\"lr\" = 0.4"), "{lock}");
}

/// `gc -w` after `repro --no-commit` of a directory out: the out's manifest
/// was never stored, but the workspace holds the out as `dvt.lock` records it,
/// so gc makes the manifest from there and keeps what of it the cache holds
/// (a file the earlier, committed run made too), deleting the rest.
#[test]
fn gc_keeps_what_an_uncommitted_directory_out_shares_with_the_cache() {
    let env = TestEnv::new();
    env.write("v.txt", "1\n");
    env.write(
        "dvt.toml",
        "[stages.s]\ncmd = \"mkdir -p out && echo kept > out/a && cat v.txt > out/b\"\ndeps = [\"v.txt\"]\nouts = [\"out\"]\n",
    );
    env.dvt(&["repro"]).ok();
    let (kept, old) = (
        blake3::hash(b"kept\n").to_hex().to_string(),
        blake3::hash(b"1\n").to_hex().to_string(),
    );
    assert!(env.has_object(&kept) && env.has_object(&old));
    env.write("v.txt", "2\n");
    env.dvt(&["repro", "--no-commit"]).ok();
    env.git(&["add", "-A"]);
    env.git(&["commit", "-qm", "uncommitted out"]);
    let r = env.dvt(&["gc", "-w", "-f"]).ok();
    assert!(r.stdout.contains("deleted 2 objects"), "{}", r.stdout);
    assert!(env.has_object(&kept), "the file the out still holds");
    // v.txt's `1` is gone: the out holds `2` now, and nothing kept names `1`.
    assert!(!env.has_object(&old));
    // Changed in the workspace, it cannot be known: gc stops, deleting nothing.
    env.write("out/a", "edited\n");
    let before = env.object_ids();
    let r = env.dvt(&["gc", "-w", "-f"]).fails();
    assert!(
        r.stderr
            .contains("gc stopped before deleting anything: the workspace's pointers cannot be read")
            && r.stderr.contains("(needed for `out`)"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("`dvt commit STAGE`"), "{}", r.stderr);
    assert_eq!(env.object_ids(), before);
}

/// A stage that did not change, whose out the workspace holds as `dvt.lock`
/// records it but the cache lacks (gc ran while another `dvt.lock` was
/// checked out, its out still in place): `repro` stores the out again, with
/// its run-cache entry, rather than leaving `push` nothing to send and a
/// deleted out nothing to come back from; `--no-commit` leaves it alone.
#[test]
fn repro_stores_the_outs_of_an_unchanged_stage_that_the_cache_lacks() {
    let env = counted_project();
    let store = env.root.parent().unwrap().join("store");
    env.dvt(&["remote", "add", "-d", "store", store.to_str().unwrap()]).ok();
    actions(&env, &[]);
    env.commit("lr 0.1");
    let first = env.git(&["rev-parse", "HEAD"]).stdout.trim().to_string();
    env.write("params.yaml", "lr: 0.2\n");
    actions(&env, &[]);
    env.commit("lr 0.2");
    let second = env.git(&["rev-parse", "HEAD"]).stdout.trim().to_string();
    env.git(&["checkout", &first, "--", "."]);
    env.dvt(&["checkout"]).ok();
    // The second version's dvt.lock, the first one's model.txt: gc keeps the second's.
    env.git(&["checkout", &second, "--", "."]);
    env.dvt(&["gc", "-w", "-f"]).ok();
    env.git(&["checkout", &first, "--", "."]);
    let lacking = |env: &TestEnv| {
        let status = env.dvt(&["status", "--json"]).json();
        let model = status["pointers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["path"] == "model.txt")
            .cloned();
        model.unwrap()["missing_from_cache"].as_array().unwrap().len()
    };
    assert_eq!(lacking(&env), 1);
    let runs_before = runs(&env);

    assert_eq!(actions(&env, &["--no-commit"]), [("train".into(), "skipped".into())]);
    assert_eq!(lacking(&env), 1);
    let r = env.dvt(&["repro"]).ok();
    let said = format!("{}{}", r.stdout, r.stderr);
    assert!(
        said.contains(
            "Stage `train` didn't change, skipping; its outs were not in the cache: stored from the workspace"
        ),
        "{said}"
    );
    assert_eq!(lacking(&env), 0);
    assert_eq!(runs(&env), runs_before);
    env.dvt(&["push"]).ok();
    // The out comes back from the cache, and the run from the run cache.
    std::fs::remove_file(env.path("model.txt")).unwrap();
    assert_eq!(actions(&env, &[]), [("train".into(), "restored".into())]);
    env.write("params.yaml", "lr: 0.2\n");
    actions(&env, &[]);
    env.write("params.yaml", "lr: 0.1\n");
    assert_eq!(actions(&env, &[]), [("train".into(), "restored-from-run-cache".into())]);
    assert_eq!(env.read("model.txt"), b"lr: 0.1\n");
    assert_eq!(runs(&env), runs_before);
}

/// A fresh clone's cache has no run-cache entries; its first `repro` of the
/// pulled pipeline, with nothing to run, writes them: a param tried there and
/// set back restores the pulled result instead of running the stage again.
#[test]
fn a_clones_first_repro_records_the_pulled_runs_in_its_run_cache() {
    let env = counted_project();
    let store = env.root.parent().unwrap().join("store");
    env.dvt(&["remote", "add", "-d", "store", store.to_str().unwrap()]).ok();
    actions(&env, &[]);
    env.dvt(&["push"]).ok();
    env.commit("v1");
    let clone = env.clone_repo();
    clone.dvt(&["pull"]).ok();
    assert_eq!(actions(&clone, &[]), [("train".into(), "skipped".into())]);
    let before = runs(&clone);
    clone.write("params.yaml", "lr: 0.2\n");
    assert_eq!(actions(&clone, &[]), [("train".into(), "ran".into())]);
    clone.write("params.yaml", "lr: 0.1\n");
    assert_eq!(
        actions(&clone, &[]),
        [("train".into(), "restored-from-run-cache".into())]
    );
    assert_eq!(runs(&clone), before + 1);
    assert_eq!(clone.read("model.txt"), b"lr: 0.1\n");
    assert_eq!(clone.read("metrics.json"), env.read("metrics.json"));
}

/// Every file below `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        match p.is_dir() {
            true => found.extend(walk(&p)),
            false => found.push(p),
        }
    }
    found
}

/// An out kept out of the cache (`cache = false`, not metrics or plots) keeps
/// its stage out of the run cache, which would have to copy it in.
#[test]
fn stages_with_uncached_data_are_not_run_cached() {
    let env = counted_project();
    let toml = String::from_utf8(env.read("dvt.toml")).unwrap();
    env.write(
        "dvt.toml",
        toml.replace(
            "outs = [\"model.txt\"]",
            "outs = [{ path = \"model.txt\", cache = false }]",
        ),
    );
    for lr in ["0.1", "0.2", "0.1"] {
        env.write("params.yaml", format!("lr: {lr}\n"));
        assert_eq!(ran(&actions(&env, &[])), ["train"]);
    }
    assert!(!env.exists(".dvt/cache/runs"));
}

/// `repro --pull` when the remote's run-cache entry names an object the remote
/// does not have: that stage runs, and the remote is still asked for the next.
#[test]
fn repro_pull_runs_a_stage_whose_remote_entry_lacks_an_object_and_asks_again_for_the_next() {
    let env = TestEnv::new();
    let remote = tempfile::tempdir().unwrap();
    env.dvt(&["remote", "add", "-d", "store", remote.path().to_str().unwrap()])
        .ok();
    common::write_copy_chain(&env, "a\n");
    env.dvt(&["repro"]).ok();
    env.write("in.txt", "b\n");
    env.dvt(&["repro"]).ok();
    env.dvt(&["push", "--run-cache"]).ok();
    env.commit("in b");

    // Stage one's entry for in.txt = "a" now names an out the remote lacks.
    let a = blake3::hash(b"a\n").to_hex().to_string();
    let absent = blake3::hash(b"not on the remote\n").to_hex().to_string();
    let mut damaged = 0;
    for dir in std::fs::read_dir(remote.path().join("runs")).unwrap() {
        for entry in std::fs::read_dir(dir.unwrap().path()).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            if text.contains("cmd = \"cp in.txt one.txt\"") && text.contains(&a) {
                let (deps, outs) = text.split_once("[[outs]]").unwrap();
                std::fs::write(&path, format!("{deps}[[outs]]{}", outs.replace(&a, &absent))).unwrap();
                damaged += 1;
            }
        }
    }
    assert_eq!(damaged, 1);

    let clone = env.clone_repo();
    clone.write("in.txt", "a\n");
    let r = clone.dvt(&["repro", "--pull"]).ok();
    assert!(r.stdout.contains("Stage `one` ran"), "{}", r.stdout);
    assert!(
        r.stdout.contains("Stage `two`: ") && r.stdout.contains("restored from the run cache, not run"),
        "{}",
        r.stdout
    );
    assert!(!r.stderr.contains("could not be read"), "{}", r.stderr);
    assert_eq!(clone.read("two.txt"), b"a\n");
}

/// `repro --glob` takes shell-style patterns of stage names, as DVC's.
#[test]
fn repro_glob_picks_stages_by_pattern() {
    let env = TestEnv::new();
    env.write(
        "dvt.toml",
        r#"[stages.train-a]
cmd = "echo a > a.txt"
outs = ["a.txt"]

[stages.train-b]
cmd = "echo b > b.txt"
outs = ["b.txt"]

[stages.eval]
cmd = "echo e > e.txt"
outs = ["e.txt"]
"#,
    );
    assert_eq!(ran(&actions(&env, &["--glob", "train-*"])), ["train-a", "train-b"]);
    assert!(!env.path("e.txt").exists());
    assert_eq!(ran(&actions(&env, &["--glob", "dvt.toml:e?al"])), ["eval"]);
    // Without --glob a pattern is a name; a pattern matching nothing is an error.
    let r = env.dvt(&["repro", "train-*"]).fails();
    assert!(r.stderr.contains("train-*"), "{}", r.stderr);
    let r = env.dvt(&["repro", "--glob", "test-*"]).fails();
    assert!(r.stderr.contains("test-*") && r.stderr.contains("eval"), "{}", r.stderr);
    let r = env.dvt(&["repro", "--glob", "[train"]).fails();
    assert!(r.stderr.contains("is not a pattern"), "{}", r.stderr);
}

/// `plots show --html-template FILE` writes the charts into the user's page,
/// where it says `{plot_divs}` (as DVC's); a page without it is refused.
#[test]
fn plots_fill_a_page_template() {
    let env = TestEnv::new();
    env.write("loss.csv", "step,loss\n1,0.9\n2,0.4\n");
    env.write(
        "page.html",
        "<html><body><h1>Team page</h1>\n{plot_divs}<footer>end</footer></body></html>\n",
    );
    let r = env
        .dvt(&["plots", "show", "loss.csv", "--html-template", "page.html"])
        .ok();
    assert!(r.stdout.contains("dvt_plots/index.html"), "{}", r.stdout);
    let page = String::from_utf8(env.read("dvt_plots/index.html")).unwrap();
    let (h1, svg, footer) = (page.find("Team page"), page.find("<svg"), page.find("<footer>"));
    assert!(h1 < svg && svg < footer && h1.is_some(), "{page}");
    assert!(
        !page.contains("{plot_divs}") && !page.contains("<title>dvt plots"),
        "{page}"
    );

    env.write("bare.html", "<html><body></body></html>\n");
    let r = env
        .dvt(&["plots", "show", "loss.csv", "--html-template", "bare.html"])
        .fails();
    assert!(r.stderr.contains("has no `{plot_divs}`"), "{}", r.stderr);
    assert_eq!(
        env.read("dvt_plots/index.html"),
        page.as_bytes(),
        "the page was rewritten"
    );
}

/// `plots show --show-vega` prints Vega-Lite specifications, data inline.
#[test]
fn plots_show_vega_prints_vega_lite_specs() {
    let env = TestEnv::new();
    env.write("loss.csv", "step,loss,acc\n1,0.9,0.5\n2,0.4,0.8\n");
    env.write("cm.csv", "actual,predicted\na,a\na,b\nb,b\n");
    let r = env.dvt(&["plots", "show", "loss.csv", "--show-vega"]).ok();
    let spec = r.json();
    assert_eq!(
        spec["$schema"], "https://vega.github.io/schema/vega-lite/v5.json",
        "{spec}"
    );
    assert_eq!(spec["mark"]["type"], "line");
    assert_eq!(spec["encoding"]["x"]["title"], "step");
    let values = spec["data"]["values"].as_array().unwrap();
    assert_eq!(values.len(), 4, "{spec}");
    assert!(
        values
            .iter()
            .any(|v| v["field"] == "acc" && v["x"] == 2.0 && v["y"] == 0.8),
        "{spec}"
    );
    assert!(!env.exists("dvt_plots"), "a page was written");

    let r = env
        .dvt(&[
            "plots",
            "show",
            "cm.csv",
            "-t",
            "confusion_normalized",
            "-x",
            "actual",
            "-y",
            "predicted",
            "--show-vega",
        ])
        .ok();
    let spec = r.json();
    assert_eq!(spec["mark"], "rect");
    let cell = |a: &str, p: &str| {
        spec["data"]["values"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["actual"] == a && v["predicted"] == p)
            .map(|v| v["value"].as_f64().unwrap())
    };
    assert_eq!(
        (cell("a", "a"), cell("a", "b"), cell("b", "b")),
        (Some(0.5), Some(0.5), Some(1.0))
    );

    env.write("val.csv", "step,loss\n1,1.0\n");
    let r = env.dvt(&["plots", "show", "loss.csv", "val.csv", "--show-vega"]).ok();
    assert_eq!(r.json().as_array().map(Vec::len), Some(2), "{}", r.stdout);
    assert_eq!(env.dvt(&["plots", "show", "--show-vega", "--json"]).code, 2);
}

/// `stage add` at once, as a script might run them: every stage is kept.
#[test]
fn stage_adds_at_once_keep_every_stage() {
    let env = TestEnv::new();
    let adds: Vec<Vec<String>> = (0..12)
        .map(|i| {
            [
                "stage",
                "add",
                "-n",
                &format!("s{i}"),
                "-o",
                &format!("out{i}.txt"),
                "echo",
                "x",
            ]
            .map(String::from)
            .to_vec()
        })
        .collect();
    for r in env.dvt_at_once(&adds) {
        r.ok();
    }
    let names = env.dvt(&["stage", "list", "--name-only"]).ok().stdout;
    assert_eq!(names.lines().count(), 12, "{names}");
}

/// A CSV without a header row (`--no-header`, or `header = false` in
/// `dvt.toml`, as DVC's): its fields are named by place, `0`, `1`, ...
#[test]
fn plots_of_files_without_a_header() {
    let env = TestEnv::new();
    env.write("loss.csv", "1,0.9\n2,0.4\n3,0.2\n");
    let r = env
        .dvt(&["plots", "show", "loss.csv", "--no-header", "-x", "0", "--json"])
        .ok();
    let plot = &r.json()[0];
    assert_eq!(plot["series"][0]["y"], "1", "{plot}");
    assert_eq!(plot["series"][0]["points"].as_array().unwrap().len(), 3, "{plot}");
    // Without it, the first row is taken for names: two records only.
    let r = env.dvt(&["plots", "show", "loss.csv", "--json"]).ok();
    assert_eq!(r.json()[0]["series"][0]["points"].as_array().unwrap().len(), 2);
    env.write(
        "dvt.toml",
        "plots = [{ path = \"loss.csv\", header = false, x = \"0\", y = \"1\" }]\n",
    );
    let r = env.dvt(&["plots", "show", "--json"]).ok();
    assert_eq!(
        r.json()[0]["series"][0]["points"].as_array().unwrap().len(),
        3,
        "{}",
        r.stdout
    );
    env.write("dvt.toml", "plots = [{ path = \"loss.csv\", header = \"no\" }]\n");
    let r = env.dvt(&["plots", "show"]).fails();
    assert!(r.stderr.contains("`header` of a plot is true or false"), "{}", r.stderr);
}

/// A param that is NaN (`.nan`, as PyYAML writes one) is unchanged while it
/// stays NaN: the stage does not run again each time (NaN != NaN).
#[test]
fn a_nan_param_stays_unchanged() {
    let env = TestEnv::new();
    env.write("params.yaml", "thr: .nan\nk: 1\n");
    env.dvt(&[
        "stage",
        "add",
        "-n",
        "s",
        "-p",
        "thr,k",
        "-o",
        "o.txt",
        "echo hi > o.txt",
    ])
    .ok();
    assert_eq!(ran(&actions(&env, &[])), ["s"]);
    assert_eq!(
        env.dvt(&["status", "--json"]).ok().json()["stale_stages"],
        serde_json::json!([])
    );
    assert!(ran(&actions(&env, &[])).is_empty());
    env.write("params.yaml", "thr: 0.5\nk: 1\n");
    let r = env.dvt(&["status"]).ok();
    assert!(r.stdout.contains("param `thr` changed"), "{}", r.stdout);
    // Nor does a NaN metric count as changed against a NaN.
    env.write("m.json", r#"{"loss": NaN}"#);
    env.git(&["add", "-A"]);
    env.git(&["commit", "-qm", "nan"]);
    let r = env.dvt(&["metrics", "diff", "--targets", "m.json"]).ok();
    assert_eq!(r.stdout, "No metrics changed.\n");
}

/// Gaps in a training log: a value left out, empty, or NaN/Infinity (as
/// Python's json.dump writes a diverged loss) is a point left out; a field
/// with text in it is still no field of numbers.
#[test]
fn plots_leave_out_missing_and_nonfinite_points() {
    let env = TestEnv::new();
    env.write(
        "log.json",
        r#"[{"step": 0, "loss": 1.0}, {"step": 1, "loss": NaN, "val": 0.9}, {"step": 2, "loss": 0.5, "val": Infinity}, {"step": 3, "loss": 0.25, "val": 0.4}]"#,
    );
    env.write(
        "log.csv",
        "step,loss,val
0,1.0,
1,nan,0.9
2,0.5,0.4
",
    );
    let points = |file: &str| -> Vec<(String, Vec<f64>)> {
        let p = env.dvt(&["plots", "show", file, "--json"]).ok().json();
        p[0]["series"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                let xs = s["points"].as_array().unwrap().iter().map(|p| p[0].as_f64().unwrap());
                (s["y"].as_str().unwrap().to_string(), xs.collect())
            })
            .collect()
    };
    assert_eq!(
        points("log.json"),
        [
            ("loss".to_string(), vec![0.0, 2.0, 3.0]),
            ("val".to_string(), vec![1.0, 3.0])
        ]
    );
    assert_eq!(
        points("log.csv"),
        [
            ("loss".to_string(), vec![0.0, 2.0]),
            ("val".to_string(), vec![1.0, 2.0])
        ]
    );
    env.write(
        "text.csv",
        "step,loss
0,1.0
1,diverged
",
    );
    let r = env.dvt(&["plots", "show", "text.csv"]).fails();
    assert!(r.stderr.contains("no field of numbers"), "{}", r.stderr);
}

/// As DVC refuses it: a cached out that git tracks (its bytes would go on
/// into git's history); an uncached one (`-O`) is git's to keep.
#[test]
fn stage_add_refuses_a_cached_out_git_tracks() {
    let env = TestEnv::new();
    env.write("result.txt", "r\n");
    env.git(&["add", "result.txt"]);
    let r = env
        .dvt(&["stage", "add", "-n", "s", "-o", "result.txt", "echo new > result.txt"])
        .fails();
    assert!(
        r.stderr.contains("`result.txt` is tracked by git") && r.stderr.contains("git rm -r --cached result.txt"),
        "{}",
        r.stderr
    );
    assert!(!env.exists("dvt.toml"));
    env.dvt(&["stage", "add", "-n", "s", "-O", "result.txt", "echo new > result.txt"])
        .ok();
}

/// A `dvt.toml` written by hand (or a teammate's) whose cached out git tracks:
/// `repro` refuses before any command runs, and the file keeps its bytes.
#[test]
fn repro_refuses_a_cached_out_git_tracks() {
    let env = TestEnv::new();
    env.write("model/w.bin", "old\n");
    env.git(&["add", "model"]);
    env.write(
        "dvt.toml",
        "[stages.train]\ncmd = \"mkdir -p model && echo new > model/w.bin\"\nouts = [\"model\"]\n",
    );
    env.commit("model in git");
    for args in [&["repro"][..], &["exp", "run"]] {
        let r = env.dvt(args).fails();
        assert!(
            r.stderr
                .contains("`model` is tracked by git (`model/w.bin` is in git's index)")
                && r.stderr.contains("git rm -r --cached model"),
            "{args:?}: {}",
            r.stderr
        );
        assert_eq!(env.read("model/w.bin"), b"old\n");
        assert!(!env.exists("dvt.lock") && !env.exists(".gitignore"));
    }
    // A dry run still says what would run (as `status` does).
    env.dvt(&["repro", "--dry-run"]).ok();
    env.git(&["rm", "-rq", "--cached", "model"]);
    env.dvt(&["repro"]).ok();
    assert_eq!(env.read("model/w.bin"), b"new\n");
}

#[test]
fn a_stage_out_and_a_pointer_never_track_one_path() {
    let env = TestEnv::new();
    env.write("data/a.csv", "a,1\n");
    env.dvt(&["add", "data"]).ok();
    // stage add: refused, dvt.toml unwritten.
    let r = env
        .dvt(&["stage", "add", "-n", "extra", "-o", "data/z.txt", "echo z > data/z.txt"])
        .fails();
    assert!(
        r.stderr
            .contains("stage `extra`'s out `data/z.txt` is inside `data`, which `data.dvt` tracks"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("`dvt remove data.dvt`"), "{}", r.stderr);
    assert!(!env.exists("dvt.toml"));

    // add: a stage's out is the stage's to record.
    env.dvt(&["stage", "add", "-n", "mk", "-o", "out.txt", "echo z > out.txt"])
        .ok();
    env.write("out.txt", "by hand\n");
    let r = env.dvt(&["add", "out.txt"]).fails();
    assert!(r.stderr.contains("`out.txt` is an out of stage `mk`"), "{}", r.stderr);
    assert!(r.stderr.contains("`dvt commit mk`"), "{}", r.stderr);
    assert!(!env.exists("out.txt.dvt"));
    // Inside a directory out, which dvt's own `.gitignore` lists: said as such,
    // not as a pointer git would ignore.
    env.dvt(&[
        "stage",
        "add",
        "-n",
        "mkd",
        "-o",
        "outdir",
        "mkdir -p outdir && echo z > outdir/f",
    ])
    .ok();
    env.dvt(&["repro", "mkd"]).ok();
    let r = env.dvt(&["add", "outdir/f"]).fails();
    assert!(
        r.stderr
            .contains("`outdir/f` is inside `outdir`, an out of stage `mkd`"),
        "{}",
        r.stderr
    );

    // A dvt.toml edited by hand: repro and status refuse it, nothing runs.
    let toml = String::from_utf8(env.read("dvt.toml")).unwrap();
    env.write(
        "dvt.toml",
        format!("{toml}\n[stages.bad]\ncmd = \"echo x > data/a.csv\"\nouts = [\"data\"]\n"),
    );
    let r = env.dvt(&["repro"]).fails();
    assert!(
        r.stderr
            .contains("stage `bad`'s out `data` is tracked by `data.dvt` too"),
        "{}",
        r.stderr
    );
    assert_eq!(env.read("data/a.csv"), b"a,1\n");
    assert_eq!(env.read("out.txt"), b"by hand\n");
    let r = env.dvt(&["status"]).fails();
    assert!(r.stdout.contains("is tracked by `data.dvt` too"), "{}", r.stdout);
}

/// A DVC 3 project as DVC writes it: remotes, a `.dvcignore`, `.dvc` files
/// (one an import, one whose data was never pulled) and a `dvc.yaml`.
fn dvc_project() -> TestEnv {
    let env = TestEnv::bare();
    env.git(&["init", "-q", "-b", "main"]);
    env.write(
        ".dvc/config",
        "[core]\n    remote = storage\n    autostage = true\n['remote \"storage\"']\n    url = ../../dvc-storage\n\
         ['remote \"s3\"']\n    url = s3://ml-bucket/project\n    region = eu-west-1\n[cache]\n    type = symlink\n",
    );
    env.write(
        ".dvc/config.local",
        "['remote \"s3\"']\n    secret_access_key = s3cr3t\n",
    );
    env.write(".dvc/.gitignore", "/config.local\n/tmp\n/cache\n");
    env.write(".dvcignore", "*.tmp\n");
    for i in 1..=3 {
        env.write(&format!("data/raw/part{i}.csv"), format!("t,v\n{i},{}\n", i * 10));
    }
    env.write("data/raw/scratch.tmp", "ignored");
    env.write(
        "data/raw.dvc",
        "outs:\n- md5: 1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d.dir\n  size: 30\n  nfiles: 3\n  hash: md5\n  path: raw\n",
    );
    env.write("model.bin", noise(50_000, 3));
    env.write(
        "model.bin.dvc",
        "outs:\n- md5: 0123456789abcdef0123456789abcdef\n  size: 50000\n  hash: md5\n  path: model.bin\n\
         \x20 desc: the model\n  type: model\n  labels:\n  - cnn\n  remote: storage\n  meta:\n    owner: ana\n    epochs: 3\n",
    );
    env.write(
        "never-pulled.csv.dvc",
        "outs:\n- md5: 0123456789abcdef0123456789abcdef\n  size: 3\n  hash: md5\n  path: never-pulled.csv\n",
    );
    env.write(
        "ext.csv.dvc",
        "md5: ab\nfrozen: true\ndeps:\n- etag: x\n  path: https://example.com/ext.csv\nouts:\n- md5: cd\n  path: ext.csv\n",
    );
    // DVC's external outputs: data outside the repository, which dvt does not track.
    let outside = env.root.parent().unwrap().join("outside.csv");
    std::fs::write(&outside, "o\n").unwrap();
    env.write(
        "outside.csv.dvc",
        format!(
            "outs:\n- md5: 00\n  size: 2\n  hash: md5\n  path: {}\n",
            outside.display()
        ),
    );
    env.write(".gitignore", "/model.bin\n/never-pulled.csv\n/ext.csv\n");
    env.write("data/.gitignore", "/raw\n/prepared\n");
    env.write(
        "params.yaml",
        "prepare:\n  split: 0.2\ntrain:\n  seed: 7\n  n_est: 50\n",
    );
    env.write(
        "dvc.yaml",
        "stages:\n  prepare:\n    cmd: mkdir -p data/prepared && cat data/raw/*.csv > data/prepared/all.csv\n\
         \x20   deps:\n    - data/raw\n    params:\n    - prepare.split\n    outs:\n    - data/prepared\n\
         \x20 train:\n    cmd:\n    - echo training\n    - wc -l data/prepared/all.csv > trained.txt\n    - echo 1 > metrics.json\n\
         \x20   deps:\n    - data/prepared\n    params:\n    - params.yaml:\n      - train.seed\n      - train.n_est\n\
         \x20   outs:\n    - trained.txt:\n        desc: what training made\n        push: false\n        checkpoint: true\n    metrics:\n    - metrics.json:\n        cache: false\n",
    );
    env.run(
        "sh",
        &[
            "-c",
            "mkdir -p data/prepared && cat data/raw/*.csv > data/prepared/all.csv",
        ],
    )
    .ok();
    env.commit("a DVC project");
    env
}

#[test]
fn migrate_carries_a_dvc_project_over() {
    let r = TestEnv::bare().dvt(&["migrate"]).fails();
    assert!(r.stderr.contains("holds no DVC project"), "{}", r.stderr);

    let env = dvc_project();
    let r = env.dvt(&["migrate"]).ok();
    let out = &r.stdout;
    assert!(out.contains("Initialized dvt repository"), "{out}");
    assert!(
        out.contains("remote storage (default): ../dvc-storage -> .dvt/config.toml"),
        "{out}"
    );
    assert!(
        out.contains("remote s3: s3://ml-bucket/project -> .dvt/config.toml"),
        "{out}"
    );
    assert!(out.contains(".dvtignore: copied from .dvcignore"), "{out}");
    assert!(out.contains("data/raw.dvc: data/raw -> data/raw.dvt"), "{out}");
    assert!(out.contains("model.bin.dvc: model.bin -> model.bin.dvt"), "{out}");
    assert!(
        out.contains("dvc.yaml: 2 stages -> dvt.toml; 1 recorded in dvt.lock"),
        "{out}"
    );
    let err = &r.stderr;
    for warned in [
        "ext.csv.dvc not carried over: an import from a URL: `dvt import-url https://example.com/ext.csv ext.csv`",
        "`never-pulled.csv` is not in the workspace: `dvc pull` it",
        "outside.csv` is outside the repository `",
        ".dvc/config: cache.type not carried over",
        "`checkpoint` of `trained.txt`: dvt has no such setting",
        "stage `train` is not recorded in dvt.lock",
        "`dvt push` stores the data there",
    ] {
        assert!(err.contains(warned), "{warned}: {err}");
    }
    // DVC's core.autostage came over, and staged what migrate wrote for git.
    let staged = env.git(&["diff", "--cached", "--name-only"]).stdout;
    for f in [
        ".dvt/.gitignore",
        ".dvt/config.toml",
        ".dvtignore",
        "data/raw.dvt",
        "dvt.toml",
        "dvt.lock",
    ] {
        assert!(staged.lines().any(|l| l == f), "{f} not staged: {staged}");
    }
    assert!(!staged.contains("config.local"), "{staged}");
    // The secret went where secrets go; the region where settings go.
    let local = String::from_utf8(env.read(".dvt/config.local.toml")).unwrap();
    assert!(local.contains("secret_access_key = \"s3cr3t\""), "{local}");
    assert!(env.dvt(&["config", "remote.s3.region"]).ok().stdout == "eu-west-1\n");

    // The data is dvt's now: the .dvcignore'd file was left out, and a
    // deleted file comes back from dvt's cache.
    let r = env.dvt(&["status", "data/raw", "model.bin"]).ok();
    assert_eq!(r.stdout, "Data and pointers are up to date.\n");
    let pointer = String::from_utf8(env.read("data/raw.dvt")).unwrap();
    assert!(pointer.contains("files = 3\n"), "{pointer}");
    // DVC's hand-written fields of an out came over with it.
    let pointer = String::from_utf8(env.read("model.bin.dvt")).unwrap();
    assert!(
        pointer.ends_with(
            "desc = \"the model\"\ntype = \"model\"\nlabels = [\"cnn\"]\nremote = \"storage\"\n\n[meta]\nepochs = 3\nowner = \"ana\"\n"
        ),
        "{pointer}"
    );
    let toml = String::from_utf8(env.read("dvt.toml")).unwrap();
    assert!(
        toml.contains("push = false") && toml.contains("desc = \"what training made\""),
        "{toml}"
    );
    assert!(!err.contains("`desc` of"), "{err}");
    std::fs::remove_file(env.path("model.bin")).unwrap();
    env.dvt(&["checkout", "model.bin"]).ok();
    assert_eq!(env.read("model.bin"), noise(50_000, 3));

    // DVC's remote path was relative to `.dvc/`; dvt's is to the root: the same place.
    env.dvt(&["push", "data/raw", "model.bin"]).ok();
    let storage = env.root.parent().unwrap().join("dvc-storage");
    assert!(
        common::walk(&storage).len() > 3,
        "nothing pushed to {}",
        storage.display()
    );

    // The pipeline: prepare is recorded as it is, train never ran.
    let r = env.dvt(&["repro"]).ok();
    assert!(r.stderr.contains("Running stage `train`"), "{}", r.stderr);
    assert!(!r.stderr.contains("Running stage `prepare`"), "{}", r.stderr);
    assert_eq!(env.read("trained.txt"), b"6 data/prepared/all.csv\n");

    // Again: nothing breaks, and dvt.toml is not replaced.
    let r = env.dvt(&["migrate"]).ok();
    assert!(
        r.stderr.contains("`dvt.toml` exists: it is not replaced"),
        "{}",
        r.stderr
    );
}

/// A `dvc.yaml` below the root (a project of several pipelines) comes over
/// too: its stages join `dvt.toml` as `DIR-NAME`, each running in its
/// directory (paths, params and `${…}` as DVC read them there), its top-level
/// metrics with the directory before their paths; a file that does not
/// convert is named and left out, the others come over.
#[test]
fn migrate_brings_the_stages_of_dvc_yaml_files_below_the_root() {
    let env = TestEnv::bare();
    env.git(&["init", "-q", "-b", "main"]);
    env.write(".dvc/config", "");
    env.write("params.yaml", "prepare:\n  rows: 2\n");
    env.write(
        "dvc.yaml",
        "stages:\n  prepare:\n    cmd: seq ${prepare.rows} > data.txt\n    outs:\n    - data.txt\n",
    );
    env.write("models/params.yaml", "train:\n  epochs: 3\n");
    env.write(
        "models/dvc.yaml",
        "vars:\n- tag: v1\nstages:\n  train:\n    cmd: wc -l < ../data.txt > model-${tag}.txt && echo ${train.epochs} >> model-${tag}.txt\n\
         \x20   deps:\n    - ../data.txt\n    params:\n    - train.epochs\n    outs:\n    - model-${tag}.txt\n\
         \x20 evaluate:\n    cmd: \"echo '{\\\"acc\\\": 0.5}' > eval.json\"\n    deps:\n    - model-v1.txt\n    metrics:\n    - eval.json:\n        cache: false\n\
         metrics:\n- eval.json\n",
    );
    env.write(
        "reports/dvc.yaml",
        "stages:\n  train:\n    cmd: echo r > r.txt\n    outs:\n    - r.txt\n",
    );
    env.write("broken/dvc.yaml", "stages:\n  x:\n    cmd: true\n    nonsense: 1\n");
    env.commit("a DVC project of several pipelines");

    let r = env.dvt(&["migrate"]).ok();
    for said in [
        "models/dvc.yaml: stage `train` -> `models-train` (running in `models`)",
        "reports/dvc.yaml: stage `train` -> `reports-train` (running in `reports`)",
        "dvc.yaml, models/dvc.yaml, reports/dvc.yaml: 4 stages -> dvt.toml",
    ] {
        assert!(r.stdout.contains(said), "{said}: {}", r.stdout);
    }
    assert!(
        r.stderr
            .contains("warning: broken/dvc.yaml not carried over: it does not convert"),
        "{}",
        r.stderr
    );
    let r = env.dvt(&["repro"]).ok();
    assert!(r.stderr.contains("Running stage `models-train`"), "{}", r.stderr);
    assert_eq!(env.read("models/model-v1.txt"), b"2\n3\n");
    assert_eq!(env.read("reports/r.txt"), b"r\n");
    // Its params are read where DVC read them.
    env.write("models/params.yaml", "train:\n  epochs: 4\n");
    let r = env.dvt(&["status"]).ok();
    assert!(
        r.stdout
            .contains("models-train: param `models/params.yaml:train.epochs` changed"),
        "{}",
        r.stdout
    );
    let r = env.dvt(&["metrics", "show"]).ok();
    assert!(r.stdout.contains("models/eval.json:\n    acc: 0.5"), "{}", r.stdout);
    // DVC's address of the stage names it still.
    let r = env.dvt(&["repro", "models/dvc.yaml:train"]).ok();
    assert!(r.stderr.contains("Running stage `models-train`"), "{}", r.stderr);
    assert_eq!(env.read("models/model-v1.txt"), b"2\n4\n");
    let r = env.dvt(&["repro", "reports/dvc.yaml:nope"]).fails();
    assert!(r.stderr.contains("no stage named `reports-nope`"), "{}", r.stderr);
    // DVC's `-R DIR`: the stages of the dvc.yaml files there, which run there.
    let r = env.dvt(&["stage", "list", "-R", "models", "--name-only"]).ok();
    assert_eq!(r.stdout, "models-train\nmodels-evaluate\n");
    let r = env.dvt(&["repro", "-R", "reports", "--force"]).ok();
    assert!(
        r.stderr.contains("Running stage `reports-train`") && !r.stderr.contains("models-"),
        "{}",
        r.stderr
    );
    let r = env.dvt(&["repro", "-R", "broken"]).fails();
    assert!(
        r.stderr.contains("no stage runs in `broken` or below it"),
        "{}",
        r.stderr
    );
}

/// `-p a,b` is written one key per entry, as DVC writes dvc.yaml (a key
/// given twice, once), and the stage reads each.
#[test]
fn stage_add_writes_one_param_per_entry() {
    let env = TestEnv::new();
    env.write("params.yaml", "train:\n  lr: 0.1\n  epochs: 3\n");
    env.write("cfg.yaml", "a: 1\nb: 2\n");
    env.dvt(&[
        "stage",
        "add",
        "-n",
        "train",
        "-p",
        "train.lr,train.epochs",
        "-p",
        "cfg.yaml:a,b",
        "-p",
        "cfg.yaml:a",
        "-o",
        "out.txt",
        "echo x > out.txt",
    ])
    .ok();
    let toml = String::from_utf8(env.read("dvt.toml")).unwrap();
    assert!(
        toml.contains(r#"params = ["train.lr", "train.epochs", "cfg.yaml:a", "cfg.yaml:b"]"#),
        "{toml}"
    );
    env.dvt(&["repro"]).ok();
    env.write("cfg.yaml", "a: 1\nb: 5\n");
    let r = env.dvt(&["status"]).ok();
    assert!(r.stdout.contains("train: param `cfg.yaml:b` changed"), "{}", r.stdout);
}

/// `params show` (workspace, `--rev`, `--deps`, `--json`, targets) and the
/// Python API's `params_show` and `metrics_show`, as a training script reads
/// its settings.
#[test]
fn params_show_and_the_python_api_read_params_and_metrics() {
    let env = TestEnv::new();
    env.write("params.yaml", "train:\n  lr: 0.1\n  epochs: 3\nunused: 1\n");
    env.write("cfg/model.toml", "[net]\nlayers = [64, 32]\n");
    env.write("src/keep", "");
    env.dvt(&[
        "stage",
        "add",
        "-n",
        "train",
        "-p",
        "train.lr",
        "-p",
        "cfg/model.toml:net",
        "-m",
        "metrics.json",
        "-o",
        "model.bin",
        "echo '{\"loss\": {\"val\": 0.5}}' > metrics.json; echo m > model.bin",
    ])
    .ok();
    env.dvt(&[
        "stage",
        "add",
        "-n",
        "prep",
        "-p",
        "train.epochs",
        "-o",
        "prep.txt",
        "echo p > prep.txt",
    ])
    .ok();
    env.dvt(&["repro"]).ok();
    env.commit("v1");
    env.write("params.yaml", "train:\n  lr: 0.2\n  epochs: 3\nunused: 1\n");

    assert_eq!(
        env.dvt(&["params", "show"]).ok().stdout,
        "cfg/model.toml:\n    net.layers: [64, 32]\nparams.yaml:\n    train.epochs: 3\n    train.lr: 0.2\n    unused: 1\n"
    );
    assert_eq!(
        env.dvt(&["params", "show", "--rev", "HEAD", "--deps", "params.yaml"])
            .ok()
            .stdout,
        "params.yaml:\n    train.epochs: 3\n    train.lr: 0.1\n"
    );
    // A stage's own params, as `dvc.api.params_show(stages=...)`.
    assert_eq!(
        env.dvt(&["params", "show", "--stage", "prep"]).ok().stdout,
        "params.yaml:\n    train.epochs: 3\n"
    );
    assert_eq!(
        env.dvt(&["params", "show", "--stage", "train"]).ok().stdout,
        "cfg/model.toml:\n    net.layers: [64, 32]\nparams.yaml:\n    train.lr: 0.2\n"
    );
    let r = env.dvt(&["params", "show", "--stage", "tain"]).fails();
    assert!(
        r.stderr.contains("no stage named `tain`") && r.stderr.contains("train"),
        "{}",
        r.stderr
    );
    let j = env.dvt(&["params", "show", "--json"]).ok().json();
    assert_eq!(j["params.yaml"]["train"]["lr"], 0.2);
    assert_eq!(j["cfg/model.toml"]["net"]["layers"][1], 32);
    let r = env.dvt(&["params", "show", "nope.yaml"]).fails();
    assert!(
        r.stderr.contains("`nope.yaml` does not exist in the workspace"),
        "{}",
        r.stderr
    );

    let r = env.python_in(
        &env.path("src"),
        r#"
import dvt.api as api
p = api.params_show()
print(p["train"], p["net"]["layers"], p["unused"])
print(api.params_show(rev="HEAD", deps=True))
print(api.params_show("cfg/model.toml"))
print(api.params_show(stages="prep"), api.params_show(stages=["prep", "train"]) == api.params_show(deps=True))
print(api.metrics_show())
try:
    api.params_show("nope.yaml")
except api.DvtError as e:
    print("DvtError", e)
"#,
        &[],
    );
    assert_eq!(
        r.stdout,
        "{'epochs': 3, 'lr': 0.2} [64, 32] 1\n\
         {'net': {'layers': [64, 32]}, 'train': {'epochs': 3, 'lr': 0.1}}\n\
         {'net': {'layers': [64, 32]}}\n\
         {'train': {'epochs': 3}} True\n\
         {'metrics.json': {'loss': {'val': 0.5}}}\n\
         DvtError error: `nope.yaml` does not exist in the workspace\n",
        "{}",
        r.stderr
    );
}

/// `dvt plots modify` (as DVC's) sets how a plots file is drawn on its entry in
/// `dvt.toml`, a stage's or the top level's, keeping the rest of the file;
/// `--unset` brings a default back. Bad input changes nothing.
#[test]
fn plots_modify_sets_how_a_plots_file_is_drawn() {
    let env = TestEnv::new();
    env.write("logs/loss.csv", "epoch,loss,acc\n1,0.5,0.1\n2,0.3,0.2\n");
    env.write("eval/pr.json", "[{\"p\": 1, \"r\": 0.5}]\n");
    let pipeline = "# my pipeline\nplots = [\"eval/pr.json\"]\n\n\
                    [stages.train]\ncmd = \"true\"\nplots = [{ path = \"logs/loss.csv\", cache = false }]\n";
    env.write("dvt.toml", pipeline);
    let args = [
        "-x", "epoch", "-y", "loss", "-y", "acc", "--title", "Loss", "-t", "scatter",
    ];
    let r = env
        .dvt(&[&["plots", "modify", "logs/loss.csv"][..], &args].concat())
        .ok();
    assert_eq!(r.stdout, "modified `logs/loss.csv` in the plots of stage `train`\n");
    let r = env
        .dvt_in(&env.path("eval"), &["plots", "modify", "pr.json", "-x", "r"])
        .ok();
    assert_eq!(r.stdout, "modified `eval/pr.json` in the top-level plots\n");
    let text = String::from_utf8(env.read("dvt.toml")).unwrap();
    assert_eq!(
        text,
        "# my pipeline\nplots = [{ path = \"eval/pr.json\", x = \"r\" }]\n\n\
         [stages.train]\ncmd = \"true\"\nplots = [{ path = \"logs/loss.csv\", cache = false, \
         template = \"scatter\", x = \"epoch\", title = \"Loss\", y = [\"loss\", \"acc\"] }]\n"
    );
    // `plots show` draws them so.
    let shown = env.dvt(&["plots", "show", "--json"]).ok().json();
    let loss = shown
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["path"] == "logs/loss.csv")
        .unwrap();
    assert_eq!(
        (loss["x"].as_str(), loss["title"].as_str()),
        (Some("epoch"), Some("Loss")),
        "{loss}"
    );
    env.dvt(&["plots", "modify", "logs/loss.csv", "--unset", "title", "template", "y"])
        .ok();
    assert!(
        String::from_utf8(env.read("dvt.toml"))
            .unwrap()
            .contains("plots = [{ path = \"logs/loss.csv\", cache = false, x = \"epoch\" }]")
    );
    let before = env.read("dvt.toml");
    for (args, says) in [
        (
            vec!["nope.csv", "-x", "a"],
            "plots file `nope.csv`: it is in no `plots` of dvt.toml",
        ),
        (
            vec!["logs/loss.csv", "--unset", "colour"],
            "`--unset colour`: no such property",
        ),
    ] {
        let r = env.dvt(&[&["plots", "modify"][..], &args].concat()).fails();
        assert!(r.stderr.contains(says), "{args:?}: {}", r.stderr);
    }
    let r = env.dvt(&["plots", "modify", "logs/loss.csv", "-t", "pie"]);
    assert!(r.code == 2 && r.stderr.contains("unknown template"), "{r:?}");
    assert_eq!(env.read("dvt.toml"), before, "nothing written");
}

/// Scripts written for DVC run unchanged: DVC's other spellings of commands
/// and flags (`experiments`, `rm`, `list-url`, `--names-only`, `--dry`, `-u`,
/// `--all-commits`), and its flags that mean nothing for dvt's copies
/// (`--no-relink`, `--relink`, `--no-run-cache`, `--no-remote-refresh`),
/// which do what the command does without them.
#[test]
fn dvc_spellings_of_commands_and_flags_are_accepted() {
    let env = counted_project();
    let store = tempfile::tempdir().unwrap();
    env.dvt(&["remote", "add", "-d", "store", store.path().to_str().unwrap()])
        .ok();
    env.dvt(&["remote", "modify", "store", "jobs", "3"]).ok();
    env.dvt(&["remote", "modify", "store", "-u", "jobs"]).ok();
    assert!(
        !String::from_utf8(env.read(".dvt/config.toml"))
            .unwrap()
            .contains("jobs")
    );
    env.write("data.csv", "a,b\n");
    env.dvt(&["add", "--no-relink", "data.csv"]).ok();
    let r = env.dvt(&["repro", "--dry"]).ok();
    assert!(r.stdout.contains("Stage `train` would run"), "{}", r.stdout);
    env.dvt(&["repro"]).ok();
    env.dvt(&["commit", "--no-relink"]).ok();
    let r = env.dvt(&["push", "--no-run-cache", "--json"]).ok();
    assert_eq!(r.json().get("runs"), None, "{}", r.stdout);
    let r = env.dvt(&["push", "--run-cache", "--no-run-cache", "--json"]).ok();
    assert_eq!(r.json().get("runs"), None, "the last one wins: {}", r.stdout);
    let r = env.dvt(&["status", "-c", "-j", "2"]).ok();
    assert!(r.stdout.contains("in sync"), "{}", r.stdout);
    env.dvt(&["data", "status", "--not-in-remote", "--no-remote-refresh"])
        .ok();
    std::fs::remove_file(env.path("data.csv")).unwrap();
    env.dvt(&["checkout", "--relink"]).ok();
    assert_eq!(env.read("data.csv"), b"a,b\n");
    assert_eq!(env.dvt(&["stage", "list", "--names-only"]).ok().stdout, "train\n");
    let r = env.dvt(&["list-url", store.path().to_str().unwrap()]).ok();
    assert!(r.stdout.contains("packs/"), "{}", r.stdout);
    env.commit("trained");
    env.dvt(&["experiments", "run", "-S", "lr=0.3", "-n", "fast"]).ok();
    assert_eq!(env.dvt(&["exp", "list", "--names-only"]).ok().stdout, "fast\n");
    let shown = env
        .dvt(&["exp", "show", "--no-pager", "--no-fetch", "-f", "--csv"])
        .ok()
        .stdout;
    assert!(shown.lines().any(|l| l.starts_with("fast,")), "{shown}");
    env.dvt(&["exp", "remove", "--all-commits"]).ok();
    assert_eq!(env.dvt(&["exp", "list", "--names-only"]).ok().stdout, "");
    env.dvt(&["rm", "data.csv.dvt"]).ok();
    assert!(!env.path("data.csv.dvt").exists());
    env.dvt(&["remote", "default", "-u"]).ok();
    let config = String::from_utf8(env.read(".dvt/config.toml")).unwrap();
    assert!(!config.contains("remote = \"store\""), "{config}");
}

/// With `dvt.toml` unreadable (a merge left conflict markers in it), which of
/// `dvt.lock`'s outs are cached is unknown: the ones git keeps (metrics) are
/// not taken for data. Before, `status` told the user to `git rm --cached`
/// the metrics file, and `checkout` would restore an edited one.
#[test]
fn with_dvt_toml_in_conflict_the_metrics_git_keeps_are_not_taken_for_data() {
    let env = TestEnv::new();
    let toml = r#"[stages.train]
cmd = '''printf m > model.bin && printf '{"s": 1}' > metrics.json'''
outs = ["model.bin"]
metrics = ["metrics.json"]
"#;
    env.write("dvt.toml", toml);
    env.dvt(&["repro"]).ok();
    env.commit("train");
    assert!(
        !env.git(&["ls-files", "metrics.json"]).stdout.is_empty(),
        "git keeps the metrics"
    );

    env.write(
        "dvt.toml",
        format!("{toml}<<<<<<< HEAD\n[stages.a]\n=======\n[stages.b]\n>>>>>>> other\n"),
    );
    env.write("metrics.json", r#"{"s": 2}"#);
    let status = env.dvt(&["status"]).fails();
    let said = format!("{}{}", status.stdout, status.stderr);
    assert!(said.contains("unresolved git merge conflict"), "{said}");
    assert!(!said.contains("git rm"), "{said}");
    let report = env.dvt(&["status", "--json"]).json();
    let paths: Vec<&str> = report["pointers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["model.bin"], "{report}");
    assert!(report.get("in_git_index").is_none(), "{report}");

    let checkout = env.dvt(&["checkout"]).ok();
    assert!(!checkout.stderr.contains("metrics.json"), "{}", checkout.stderr);
    assert_eq!(env.read("metrics.json"), br#"{"s": 2}"#);
    // The cached out is still data: deleted, it comes back.
    std::fs::remove_file(env.path("model.bin")).unwrap();
    env.dvt(&["checkout"]).ok();
    assert_eq!(env.read("model.bin"), b"m");
}
