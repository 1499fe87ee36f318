//! `dvt exp`: experiments recorded as commits under refs/exps/, compared,
//! applied back into the workspace and kept by gc.
#![allow(clippy::disallowed_methods, clippy::unwrap_used)]

mod common;

use common::{GitDaemon, GitHttp, TestEnv};

/// A small pipeline: `train` writes a model and a metric from params.yaml.
fn project() -> TestEnv {
    let env = TestEnv::new();
    env.write(
        "params.yaml",
        "# knobs\ntrain:\n  lr: 0.1  # learning rate\n  epochs: 2\n",
    );
    env.write(
        "train.py",
        "import re\n\
         p = open('params.yaml').read()\n\
         lr = float(re.search(r'lr: ([0-9.]+)', p).group(1))\n\
         open('model.bin', 'w').write('model lr=%s\\n' % lr)\n\
         open('metrics.json', 'w').write('{\"loss\": %s}\\n' % round(1 - lr, 3))\n",
    );
    env.write(
        "dvt.toml",
        r#"[stages.train]
cmd = "python3 train.py"
deps = ["train.py"]
params = ["train.lr"]
outs = ["model.bin"]
metrics = ["metrics.json"]
"#,
    );
    env.dvt(&["repro", "-q"]).ok();
    env.git(&["add", "-A"]);
    env.git(&["commit", "-qm", "baseline"]);
    env
}

fn git_out(env: &TestEnv, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .args(args)
        .current_dir(env.path(""))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The `name` of each row of `exp show --json`.
fn row_names(rows: &serde_json::Value) -> Vec<String> {
    rows.as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_string())
        .collect()
}

/// DVC's `exp remove --rev`, `-n` and `--keep`.
#[test]
fn exp_remove_takes_experiments_by_baseline_and_keeps_on_request() {
    let env = project();
    env.dvt(&["exp", "run", "-n", "old-a", "-S", "train.lr=0.2"]).ok();
    env.dvt(&["exp", "run", "-n", "old-b", "-S", "train.lr=0.3"]).ok();
    env.git(&["commit", "-qam", "lr 0.3"]);
    env.dvt(&["exp", "run", "-n", "new-a", "-S", "train.lr=0.4"]).ok();
    env.dvt(&["exp", "run", "-n", "new-b", "-S", "train.lr=0.5"]).ok();
    let left = || {
        let mut names: Vec<String> = env
            .dvt(&["exp", "list", "-A", "--json"])
            .ok()
            .json()
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["name"].as_str().unwrap().to_string())
            .collect();
        names.sort();
        names
    };
    // list --name-only / --sha-only (HEAD's); branch's default name.
    let sorted = |text: String| {
        let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
        lines.sort();
        lines
    };
    assert_eq!(
        sorted(env.dvt(&["exp", "list", "--name-only"]).ok().stdout),
        ["new-a", "new-b"]
    );
    let shas = sorted(env.dvt(&["exp", "list", "--sha-only"]).ok().stdout);
    let want = sorted(git_out(&env, &["rev-parse", "refs/exps/new-a", "refs/exps/new-b"]));
    assert_eq!(shas, want);
    let r = env.dvt(&["exp", "branch", "new-a"]).ok();
    assert!(r.stdout.contains("Branch `new-a-branch` created"), "{}", r.stdout);
    assert_eq!(
        git_out(&env, &["rev-parse", "new-a-branch"]),
        git_out(&env, &["rev-parse", "refs/exps/new-a"])
    );

    let r = env.dvt(&["exp", "remove", "--keep", "new-a", "nosuch"]).fails();
    assert!(r.stderr.contains("no experiment `nosuch` to keep"), "{}", r.stderr);
    assert_eq!(left().len(), 4);
    env.dvt(&["exp", "remove", "--rev", "HEAD~1", "--keep"]).ok();
    assert_eq!(left(), ["old-a", "old-b"]);
    env.dvt(&["exp", "run", "-n", "new-c", "-S", "train.lr=0.6"]).ok();
    env.dvt(&["exp", "remove", "-n", "1"]).ok();
    assert_eq!(left(), ["old-a", "old-b"]);
    env.dvt(&["exp", "remove", "--keep", "old-b"]).ok();
    assert_eq!(left(), ["old-b"]);
    let r = env.dvt(&["exp", "remove"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
}

/// DVC's `exp run -m`: the message heads the experiment's commit, run here or
/// from the queue; the params set follow it.
/// DVC's `exp run --dry`: what would run with the params set, nothing run
/// or recorded, the params file put back byte for byte; `-i` asks first;
/// `--run-all` runs the queue; `-M` and `--no-hydra` are taken.
#[test]
fn exp_run_dry_interactive_and_run_all_as_dvc_has_them() {
    let env = project();
    let params = env.read("params.yaml");
    let r = env.dvt(&["exp", "run", "--dry", "-S", "train.lr=0.3"]).ok();
    assert!(r.stderr.contains("with train.lr = 0.3 (now 0.1)"), "{}", r.stderr);
    assert!(
        r.stdout.contains("Stage `train` would run: param `train.lr` changed"),
        "{}",
        r.stdout
    );
    assert_eq!(env.read("params.yaml"), params);
    assert_eq!(env.read("model.bin"), b"model lr=0.1\n");
    assert!(env.dvt(&["exp", "list"]).ok().stdout.is_empty());

    // A no at the question: nothing recorded, the params stay set (as a run leaves them).
    let r = env.dvt_with_input(&["exp", "run", "-i", "-S", "train.lr=0.3", "-M", "tried"], "n\n");
    assert!(r.stderr.contains("stopped before stage `train`"), "{}", r.stderr);
    assert!(env.dvt(&["exp", "list"]).ok().stdout.is_empty());
    let r = env.dvt_with_input(&["exp", "run", "-i", "--no-hydra", "-M", "tried"], "y\n");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(env.read("model.bin"), b"model lr=0.3\n");

    env.dvt(&["exp", "run", "--queue", "-S", "train.lr=0.4,0.5"]).ok();
    let r = env.dvt(&["exp", "run", "--run-all", "-j", "2"]).ok();
    assert!(r.stderr.contains("Started queued experiment 000002"), "{}", r.stderr);
    let listed = env.dvt(&["exp", "list", "--name-only"]).ok().stdout;
    assert_eq!(listed.lines().count(), 3, "{listed}");
    let r = env.dvt(&["exp", "run", "--run-all", "-S", "train.lr=1"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
}

#[test]
fn exp_run_message_heads_the_experiment_commit() {
    let env = project();
    env.dvt(&["exp", "run", "-n", "here", "-m", "lower lr", "-S", "train.lr=0.05"])
        .ok();
    assert_eq!(
        git_out(&env, &["log", "-1", "--format=%B", "refs/exps/here"]),
        "lower lr\n\n-S train.lr=0.05\n\n"
    );
    env.dvt(&[
        "exp",
        "run",
        "--queue",
        "-n",
        "later",
        "--message",
        "queued",
        "-S",
        "train.lr=0.2",
    ])
    .ok();
    env.dvt(&["queue", "start"]).ok();
    assert!(
        git_out(&env, &["log", "-1", "--format=%B", "refs/exps/later"]).starts_with("queued\n\n-S train.lr=0.2"),
        "{}",
        git_out(&env, &["log", "-1", "--format=%B", "refs/exps/later"])
    );
    env.dvt(&["exp", "run", "-n", "plain", "-S", "train.lr=0.3"]).ok();
    assert!(git_out(&env, &["log", "-1", "--format=%s", "refs/exps/plain"]).starts_with("dvt exp run on "));
}

/// `exp show --hide-workspace`, `--sha`, `--param-deps` and `--precision`.
#[test]
fn exp_show_hides_the_workspace_names_by_sha_keeps_param_deps_and_rounds() {
    let env = project();
    env.dvt(&["exp", "run", "-n", "fine", "-S", "train.lr=0.123456"]).ok();
    let head = git_out(&env, &["rev-parse", "--short=7", "HEAD"]).trim().to_string();
    let csv = env
        .dvt(&[
            "exp",
            "show",
            "--csv",
            "--hide-workspace",
            "--sha",
            "--param-deps",
            "--precision",
            "2",
        ])
        .ok()
        .stdout;
    let lines: Vec<&str> = csv.lines().collect();
    // train.epochs is in params.yaml, but no stage lists it.
    assert_eq!(lines[0], "Experiment,Created,loss,train.lr", "{csv}");
    assert!(lines[1].starts_with(&format!("{head},")), "{csv}");
    assert!(
        lines[2].starts_with("fine,") && lines[2].ends_with(",0.88,0.12"),
        "{csv}"
    );
    assert_eq!(lines.len(), 3, "{csv}");
    let csv = env.dvt(&["exp", "show", "--csv"]).ok().stdout;
    assert!(csv.lines().next().unwrap().contains("train.epochs"), "{csv}");
    assert!(csv.contains(",0.877,2,0.123456"), "unrounded by default: {csv}");
    // DVC's CI recipes pass --no-pager: accepted, the same table.
    assert_eq!(env.dvt(&["exp", "show", "--csv", "--no-pager"]).ok().stdout, csv);
}

/// `exp show` picks experiments as DVC's: those run on HEAD, on `--rev REV`, on
/// `-n N` commits back, or all (`-A`); each baseline row comes first, then what
/// was run on it.
#[test]
fn exp_show_groups_experiments_under_their_baselines() {
    let env = project();
    // Newest first, and by name within a second: old-a either way.
    env.dvt(&["exp", "run", "-n", "old-b", "-S", "train.lr=0.2"]).ok();
    env.dvt(&["exp", "run", "-n", "old-a", "-S", "train.lr=0.3"]).ok();
    let old = git_out(&env, &["rev-parse", "--short=7", "HEAD"]).trim().to_string();
    env.git(&["commit", "-qam", "lr 0.3"]);
    env.git(&["tag", "v2"]);
    env.dvt(&["exp", "run", "-n", "new", "-S", "train.lr=0.4"]).ok();
    let names = |args: &[&str]| {
        let mut all = vec!["exp", "show", "--json"];
        all.extend(args);
        row_names(&env.dvt(&all).ok().json())
    };
    assert_eq!(names(&[]), ["workspace", "main", "new"]);
    assert_eq!(
        names(&["--rev", "HEAD~1"]),
        ["workspace", old.as_str(), "old-a", "old-b"]
    );
    let both = ["workspace", "main", "new", old.as_str(), "old-a", "old-b"];
    assert_eq!(names(&["-n", "2"]), both);
    assert_eq!(names(&["-A"]), both);
    assert_eq!(names(&["--all-commits"]), both);
    // A baseline that is not HEAD is named by a tag or branch at it.
    env.git(&["tag", "v1", "HEAD~1"]);
    assert_eq!(names(&["--rev", "v1"]), ["workspace", "v1", "old-a", "old-b"]);
    let r = env.dvt(&["exp", "show", "-A", "--rev", "v1"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
}

#[test]
fn exp_run_records_the_work_tree_without_moving_head() {
    let env = project();
    let head = git_out(&env, &["rev-parse", "HEAD"]);
    // `+KEY` adds a param, as with DVC (Hydra's syntax), in its table.
    let r = env
        .dvt(&[
            "exp",
            "run",
            "-S",
            "+train.dropout=0.5",
            "-S",
            "params.yaml:++train.seed=7",
            "-S",
            "~train.epochs",
            "-n",
            "added",
        ])
        .ok();
    assert!(r.stderr.contains("set train.dropout = 0.5 (added)"), "{}", r.stderr);
    assert!(r.stderr.contains("removed train.epochs (was 2)"), "{}", r.stderr);
    assert_eq!(
        git_out(&env, &["show", "refs/exps/added:params.yaml"]),
        "# knobs\ntrain:\n  lr: 0.1  # learning rate\n  dropout: 0.5\n  seed: 7\n"
    );
    env.git(&["checkout", "params.yaml"]);
    env.dvt(&["exp", "remove", "added"]).ok();
    let r = env.dvt(&["exp", "run", "-S", "train.lr=0.3", "-n", "lr3"]).ok();
    assert!(
        r.stdout.starts_with("Experiment `lr3` recorded: commit "),
        "{}",
        r.stdout
    );
    // Said before the stage runs, not after.
    let set = r.stderr.find("set train.lr = 0.3 (was 0.1)");
    let ran = r.stderr.find("Running stage `train`");
    assert!(set.is_some() && ran.is_some() && set < ran, "{}", r.stderr);
    // The param was set in place, comments kept; the stage ran.
    assert_eq!(
        env.read("params.yaml"),
        b"# knobs\ntrain:\n  lr: 0.3  # learning rate\n  epochs: 2\n"
    );
    assert_eq!(env.read("model.bin"), b"model lr=0.3\n");
    // HEAD, the branch and the index did not move; the experiment is a child of HEAD.
    assert_eq!(git_out(&env, &["rev-parse", "HEAD"]), head);
    assert_eq!(git_out(&env, &["rev-parse", "refs/exps/lr3^"]), head);
    assert_eq!(git_out(&env, &["diff", "--cached", "--name-only"]), "");
    assert_eq!(
        git_out(&env, &["show", "refs/exps/lr3:metrics.json"]),
        "{\"loss\": 0.7}\n"
    );
    let lock = git_out(&env, &["show", "refs/exps/lr3:dvt.lock"]);
    assert!(lock.contains("\"train.lr\" = 0.3"), "{lock}");
    // Git-ignored data is not in the commit; its pointer (dvt.lock) is.
    let files = git_out(&env, &["ls-tree", "-r", "--name-only", "refs/exps/lr3"]);
    assert!(!files.contains("model.bin") && files.contains("train.py"), "{files}");

    // A second one, named for us; show compares them with HEAD and the workspace.
    let r = env.dvt(&["exp", "run", "-S", "train.lr=0.5", "--json"]).ok().json();
    let auto = r["name"].as_str().unwrap().to_string();
    assert!(auto.contains('-'), "{auto}");
    let rows = env.dvt(&["exp", "show", "--json"]).ok().json();
    let names = row_names(&rows);
    assert_eq!(names[..2], ["workspace", "main"]);
    assert!(names.contains(&"lr3".to_string()) && names.contains(&auto), "{names:?}");
    let loss = |name: &str| {
        rows.as_array().unwrap().iter().find(|r| r["name"] == name).unwrap()["metrics"]["metrics.json"]["loss"].clone()
    };
    assert_eq!(loss("main"), 0.9);
    assert_eq!(loss("lr3"), 0.7);
    assert_eq!(loss(&auto), 0.5);
    let table = env.dvt(&["exp", "show", "--only-changed"]).ok().stdout;
    let header = table.lines().next().unwrap();
    assert!(header.contains("loss") && header.contains("train.lr"), "{table}");
    assert!(!header.contains("train.epochs"), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.trim_start().starts_with("lr3") && l.contains("0.7")),
        "{table}"
    );
    let list = env.dvt(&["exp", "list"]).ok().stdout;
    assert_eq!(list.lines().count(), 2, "{list}");
    // Sorted by a metric; the workspace and HEAD stay on top.
    for (order, want) in [("asc", [auto.as_str(), "lr3"]), ("desc", ["lr3", auto.as_str()])] {
        let rows = env
            .dvt(&["exp", "show", "--json", "--sort-by", "loss", "--sort-order", order])
            .ok()
            .json();
        let names = row_names(&rows);
        assert_eq!(names[2..], want, "{order}");
        assert_eq!(names[..2], ["workspace", "main"]);
    }
    let md = env
        .dvt(&["exp", "show", "--md", "--only-changed", "--sort-by", "loss"])
        .ok()
        .stdout;
    let lines: Vec<&str> = md.lines().collect();
    assert_eq!(lines[0], "| Experiment | Created | loss | train.lr |", "{md}");
    assert_eq!(lines[1], "| --- | --- | ---: | ---: |", "{md}");
    assert!(lines[2].starts_with("| workspace | - | "), "{md}");
    assert!(
        lines[4].starts_with(&format!("| {auto} | ")) && lines[4].ends_with("| 0.5 | 0.5 |"),
        "{md}"
    );
    let r = env.dvt(&["exp", "show", "--sort-by", "nope"]).fails();
    assert!(
        r.stderr.contains("no metric or param `nope` to sort by"),
        "{}",
        r.stderr
    );
    // An experiment's name is a revision, as in DVC.
    assert_eq!(
        env.dvt(&["cat", "model.bin", "--rev", "lr3"]).ok().stdout,
        "model lr=0.3\n"
    );
    let diff = env.dvt(&["metrics", "diff", "main", "lr3", "--json"]).ok().json();
    assert_eq!(diff[0]["new"], 0.7, "{diff}");
    // exp diff: metrics and params together, as dvc exp diff.
    let diff = env.dvt(&["exp", "diff", "main", "lr3", "--json"]).ok().json();
    assert_eq!(diff["metrics"][0]["new"], 0.7, "{diff}");
    assert_eq!(
        (diff["params"][0]["key"].clone(), diff["params"][0]["new"].clone()),
        ("train.lr".into(), 0.3.into())
    );
    let text = env.dvt(&["exp", "diff", "lr3", &auto]).ok().stdout;
    assert!(text.contains("metrics.json") && text.contains("params.yaml"), "{text}");

    // apply: the files, then the data, of that experiment.
    env.dvt(&["exp", "apply", "lr3"]).ok();
    assert_eq!(env.read("model.bin"), b"model lr=0.3\n");
    assert!(env.read("params.yaml").windows(7).any(|w| w == b"lr: 0.3"));
    let st = env.dvt(&["status"]).ok().stdout;
    assert!(st.contains("Data and pointers are up to date."), "{st}");

    // gc keeps the data of every experiment; remove, then gc, drops it.
    env.dvt(&["exp", "apply", &auto]).ok();
    env.dvt(&["gc", "-f"]).ok();
    // DVC's --no-force is dvt's default, accepted.
    env.dvt(&["exp", "apply", "lr3", "--no-force"]).ok();
    assert_eq!(env.read("model.bin"), b"model lr=0.3\n");

    // branch: a real git branch at the experiment.
    env.dvt(&["exp", "branch", "lr3", "try-lr3"]).ok();
    assert_eq!(
        git_out(&env, &["rev-parse", "try-lr3"]),
        git_out(&env, &["rev-parse", "refs/exps/lr3"])
    );
    env.dvt(&["exp", "remove", "lr3"]).ok();
    assert_eq!(env.dvt(&["exp", "list"]).ok().stdout.lines().count(), 1);
    env.dvt(&["exp", "remove", "--all"]).ok();
    assert_eq!(env.dvt(&["exp", "list"]).ok().stdout, "");
}

#[test]
fn exp_apply_refuses_to_lose_work_and_bad_input_is_refused() {
    let env = project();
    // A file git tracks although .gitignore matches it stays in experiments, as with `git add -A`.
    env.write("notes.log", "kept\n");
    env.write(".gitignore", "*.log\n");
    env.git(&["add", "-f", "notes.log", ".gitignore"]);
    env.git(&["commit", "-qm", "notes"]);
    env.dvt(&["exp", "run", "-q", "-S", "train.lr=0.3", "-n", "a"]).ok();
    assert_eq!(git_out(&env, &["show", "refs/exps/a:notes.log"]), "kept\n");
    // An edit that is in no commit or experiment is not overwritten.
    env.write("train.py", "print('my unsaved work')\n");
    let r = env.dvt(&["exp", "apply", "a"]).fails();
    assert!(
        r.stderr
            .contains("would overwrite changes that are in no commit or experiment:\n  train.py"),
        "{}",
        r.stderr
    );
    assert_eq!(env.read("train.py"), b"print('my unsaved work')\n");
    env.dvt(&["exp", "apply", "a", "--force"]).ok();
    assert!(env.read("train.py").starts_with(b"import re"));
    assert_eq!(env.read("notes.log"), b"kept\n");
    // Data changed by hand is not overwritten either: checkout refuses, and says so.
    env.write("model.bin", "hand-tuned\n");
    let r = env.dvt(&["exp", "apply", "a"]).fails();
    assert!(
        r.stderr
            .contains("the files of experiment `a` are in place, but not its data")
            && r.stderr.contains("model.bin"),
        "{}",
        r.stderr
    );
    assert_eq!(env.read("model.bin"), b"hand-tuned\n");
    env.dvt(&["exp", "apply", "a", "-f"]).ok();
    assert_eq!(env.read("model.bin"), b"model lr=0.3\n");

    let before = env.read("params.yaml");
    for (args, message) in [
        (vec!["exp", "run", "-n", "a"], "experiment `a` already exists"),
        (
            vec!["exp", "run", "-n", "no good"],
            "`no good` cannot name an experiment",
        ),
        (
            vec!["exp", "run", "-S", "train.nope=1"],
            "`-S train.nope=1`: params.yaml has no `train.nope`",
        ),
        (
            vec!["exp", "run", "-S", "+train.lr=1"],
            "params.yaml already has `train.lr` (`-S train.lr=…` changes it)",
        ),
        (
            vec!["exp", "run", "-S", "++train.lr.x=1"],
            "`train.lr` is not a table, so `train.lr.x` cannot be added",
        ),
        (
            vec!["exp", "run", "-S", "train=1"],
            "`train` is a table in params.yaml; `-S` sets single values and lists (`[A, B]`)",
        ),
        (
            vec!["exp", "run", "-S", "train.lr=[0.1,"],
            "`[0.1,` is not a list: write one as `[A, B]`",
        ),
        (
            vec!["exp", "run", "-S", "train.lr=null"],
            "`null` is YAML's null, which dvt's params cannot hold",
        ),
        (vec!["exp", "run", "-S", "train.lr"], "expected `[FILE:]KEY=VALUE`"),
        (
            vec!["exp", "run", "-S", "~train.nope"],
            "`-S ~train.nope`: params.yaml has no `train.nope` to remove",
        ),
        (
            vec!["exp", "run", "-S", "~train.epochs=3"],
            "`train.epochs` in params.yaml is 2, not 3, so it is not removed",
        ),
        (
            vec!["exp", "run", "-S", "other.yaml:x=1"],
            "params file `other.yaml` does not exist",
        ),
        (vec!["exp", "apply", "nope"], "no experiment named `nope`"),
        (
            vec!["exp", "apply", "aa"],
            "no experiment named `aa` (did you mean `a`? `dvt exp list`",
        ),
        (vec!["exp", "branch", "a", "main"], "branch `main` already exists"),
        (vec!["exp", "remove", "nope"], "no experiment named `nope`"),
    ] {
        let r = env.dvt(&args).fails();
        assert!(r.stderr.contains(message), "{args:?}: {}", r.stderr);
        assert_eq!(env.read("params.yaml"), before, "{args:?} changed params.yaml");
    }
    // -f replaces an experiment of the same name.
    env.dvt(&["exp", "run", "-q", "-f", "-n", "a", "-S", "train.lr=0.4"])
        .ok();
    assert_eq!(
        git_out(&env, &["show", "refs/exps/a:metrics.json"]),
        "{\"loss\": 0.6}\n"
    );

    // A big file that neither dvt nor .gitignore covers is not put into git.
    let big = std::fs::File::create(env.path("big.bin")).unwrap();
    big.set_len(51 << 20).unwrap();
    let r = env.dvt(&["exp", "run", "-n", "big"]).fails();
    assert!(
        r.stderr
            .contains("`big.bin` (51.00 MiB) is neither tracked by dvt nor ignored by git"),
        "{}",
        r.stderr
    );
    assert!(!env.dvt(&["exp", "list"]).ok().stdout.contains("big"));
    std::fs::remove_file(env.path("big.bin")).unwrap();

    // Without a commit to start from, exp run says so.
    let fresh = TestEnv::new();
    fresh.write("dvt.toml", "[stages.a]\ncmd = \"true\"\n");
    let r = fresh.dvt(&["exp", "run"]).fails();
    assert!(r.stderr.contains("an experiment starts from a commit"), "{}", r.stderr);
}

/// Hydra's lists, as DVC takes them: `-S train.layers=[64,32]` replaces a list
/// (a block list too), the stage that uses it runs again, and with `--queue`
/// the commas inside a list do not split it: `[8],[16,16]` is two experiments.
#[test]
fn experiments_set_lists_and_sweep_over_them() {
    let env = TestEnv::new();
    env.write("params.yaml", "train:\n  layers:  # sizes\n  - 4\n  - 2\n  lr: 0.1\n");
    env.write(
        "dvt.toml",
        r#"[stages.train]
cmd = "grep -A1 layers params.yaml > model.txt"
params = ["train.layers"]
outs = ["model.txt"]
"#,
    );
    env.dvt(&["repro", "-q"]).ok();
    env.git(&["add", "-A"]);
    env.git(&["commit", "-qm", "baseline"]);

    let r = env
        .dvt(&["exp", "run", "-n", "wide", "-S", "train.layers=[64,32]"])
        .ok();
    assert!(r.stdout.contains("Experiment `wide` recorded"), "{}", r.stdout);
    assert!(
        r.stderr.contains("set train.layers = [64, 32] (was [4, 2])"),
        "{}",
        r.stderr
    );
    assert_eq!(
        env.read("params.yaml"),
        b"train:\n  layers: [64, 32]  # sizes\n  lr: 0.1\n"
    );
    assert_eq!(env.read("model.txt"), b"  layers: [64, 32]  # sizes\n  lr: 0.1\n");
    let show = env.dvt(&["exp", "show", "--json"]).ok().json();
    let text = show.to_string();
    assert!(text.contains("[64,32]"), "{text}");

    env.git(&["checkout", "-q", "params.yaml"]);
    env.dvt(&["checkout", "-q", "-f"]).ok();
    let r = env
        .dvt(&["exp", "run", "--queue", "-S", "train.layers=[8],[16,16]", "-n", "q"])
        .ok();
    assert!(r.stdout.contains("`q-1` -S train.layers=[8]"), "{}", r.stdout);
    assert!(r.stdout.contains("`q-2` -S train.layers=[16,16]"), "{}", r.stdout);
    env.dvt(&["queue", "start", "-q"]).ok();
    assert_eq!(
        git_out(&env, &["show", "refs/exps/q-2:params.yaml"]),
        "train:\n  layers: [16, 16]  # sizes\n  lr: 0.1\n"
    );
    // Each ran its stage with its own list.
    let r = env.dvt(&["cat", "model.txt", "--rev", "q-1"]).ok();
    assert_eq!(r.stdout, "  layers: [8]  # sizes\n  lr: 0.1\n");
}

#[test]
fn queued_experiments_run_one_after_another_from_their_own_params() {
    let env = project();
    let head = git_out(&env, &["rev-parse", "HEAD"]);
    // A grid: one experiment per value; nothing runs yet.
    let r = env
        .dvt(&["exp", "run", "--queue", "-S", "train.lr=0.2,0.4", "-n", "q"])
        .ok();
    assert!(
        r.stdout.contains("Queued experiment 000001: `q-1` -S train.lr=0.2"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("Queued experiment 000002: `q-2` -S train.lr=0.4"),
        "{}",
        r.stdout
    );
    assert_eq!(env.dvt(&["queue", "status"]).ok().stdout.lines().count(), 2);
    assert_eq!(env.dvt(&["exp", "list"]).ok().stdout, "");
    assert_eq!(env.read("model.bin"), b"model lr=0.1\n");

    // A wrong value queues nothing.
    let r = env.dvt(&["exp", "run", "--queue", "-S", "train.nope=1,2"]).fails();
    assert!(r.stderr.contains("params.yaml has no `train.nope`"), "{}", r.stderr);
    assert_eq!(env.dvt(&["queue", "status"]).ok().stdout.lines().count(), 2);

    // Sweeps written as Hydra's: `range` (stop excluded) and `choice`; only queued.
    let r = env
        .dvt(&[
            "exp",
            "run",
            "--queue",
            "-S",
            "train.lr=range(0.5, 0.9, 0.2)",
            "-S",
            "train.epochs=choice(3,4)",
        ])
        .ok();
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{}", r.stdout);
    assert!(lines[0].ends_with("-S train.lr=0.5 -S train.epochs=3"), "{}", r.stdout);
    assert!(lines[3].ends_with("-S train.lr=0.7 -S train.epochs=4"), "{}", r.stdout);
    env.dvt(&["queue", "remove", "000003", "000004", "000005", "000006"])
        .ok();
    let r = env.dvt(&["exp", "run", "-S", "train.lr=range(1,3)"]).fails();
    assert!(
        r.stderr
            .contains("a sweep (`choice`, `range`) queues one experiment per value: use `--queue`"),
        "{}",
        r.stderr
    );
    assert_eq!(env.read("model.bin"), b"model lr=0.1\n");

    // Unsaved edits to a params file stop the queue before it overwrites them.
    env.write("params.yaml", "train:\n  lr: 0.9\n  epochs: 2\n");
    let r = env.dvt(&["queue", "start"]).fails();
    assert!(
        r.stderr.contains("would overwrite changes to params.yaml"),
        "{}",
        r.stderr
    );
    assert_eq!(env.read("params.yaml"), b"train:\n  lr: 0.9\n  epochs: 2\n");
    env.git(&["checkout", "params.yaml"]);

    let r = env.dvt(&["queue", "start"]).ok();
    assert!(r.stdout.contains("Experiment `q-1` recorded") && r.stdout.contains("Experiment `q-2` recorded"));
    let r = env.dvt(&["queue", "status"]).ok();
    assert_eq!(r.stdout, "", "nothing for a script to read");
    assert!(r.stderr.contains("No experiments queued"), "{}", r.stderr);
    assert_eq!(git_out(&env, &["rev-parse", "HEAD"]), head);
    // Each ran from the params as they were queued, with only its own value changed.
    assert_eq!(
        git_out(&env, &["show", "refs/exps/q-1:metrics.json"]),
        "{\"loss\": 0.8}\n"
    );
    assert_eq!(
        git_out(&env, &["show", "refs/exps/q-2:metrics.json"]),
        "{\"loss\": 0.6}\n"
    );
    assert_eq!(
        git_out(&env, &["show", "refs/exps/q-2:params.yaml"]),
        "# knobs\ntrain:\n  lr: 0.4  # learning rate\n  epochs: 2\n"
    );

    // A failing experiment stops the queue and stays in it, with those after it.
    env.dvt(&["exp", "run", "-q", "--queue", "-S", "train.lr=oops", "-n", "bad"])
        .ok();
    env.dvt(&["exp", "run", "-q", "--queue", "-S", "train.lr=0.3", "-n", "after"])
        .ok();
    let r = env.dvt(&["queue", "start"]).fails();
    assert!(
        r.stderr.contains("queued experiment 000001 failed, and stays queued"),
        "{}",
        r.stderr
    );
    // Its params are undone: the workspace is as the last recorded experiment left it.
    assert_eq!(
        env.read("params.yaml"),
        b"# knobs
train:
  lr: 0.4  # learning rate
  epochs: 2
"
    );
    let waiting = env.dvt(&["queue", "status"]).ok().stdout;
    assert!(waiting.contains("`bad`") && waiting.contains("`after`"), "{waiting}");
    assert!(waiting.contains("000001  failed   `bad`"), "{waiting}");
    assert!(waiting.contains("000002  queued   `after`"), "{waiting}");
    // DVC's `--failed` takes the failed one only (`--success`: none is left).
    assert_eq!(env.dvt(&["queue", "remove", "--success"]).ok().stdout, "");
    let r = env.dvt(&["queue", "remove", "--failed"]).ok();
    assert!(
        r.stdout.starts_with("Removed queued experiment 000001") && r.stdout.lines().count() == 1,
        "{}",
        r.stdout
    );
    let waiting = env.dvt(&["queue", "status"]).ok().stdout;
    assert!(!waiting.contains("`bad`") && waiting.contains("`after`"), "{waiting}");
    env.dvt(&["queue", "start", "-q"]).ok();
    assert_eq!(
        git_out(&env, &["show", "refs/exps/after:metrics.json"]),
        "{\"loss\": 0.7}\n"
    );
    let r = env.dvt(&["queue", "remove", "nope"]).fails();
    assert!(r.stderr.contains("nothing queued is named `nope`"), "{}", r.stderr);
    // `exp remove` takes a queued name off the queue, as DVC's does.
    env.dvt(&["exp", "run", "-q", "--queue", "-S", "train.lr=0.6", "-n", "later"])
        .ok();
    let r = env.dvt(&["exp", "remove", "later"]).ok();
    assert!(r.stdout.contains("Removed experiment `later`"), "{}", r.stdout);
    assert_eq!(env.dvt(&["queue", "status"]).ok().stdout, "");
    // What the experiments were queued from is let go once none waits.
    env.dvt(&["exp", "run", "-q", "--queue", "-S", "train.lr=0.5"]).ok();
    assert_eq!(git_out(&env, &["for-each-ref", "refs/dvt/"]).lines().count(), 1);
    // `--queued`: those waiting (here the one).
    env.dvt(&["queue", "remove", "--queued"]).ok();
    assert_eq!(git_out(&env, &["for-each-ref", "refs/dvt/"]), "");
}

#[test]
fn push_and_fetch_all_experiments_move_their_data() {
    let env = project();
    let store = tempfile::tempdir().unwrap();
    env.dvt(&["remote", "add", "-d", "store", store.path().to_str().unwrap()])
        .ok();
    env.dvt(&["exp", "run", "-q", "-S", "train.lr=0.3", "-n", "a"]).ok();
    env.dvt(&["exp", "run", "-q", "-S", "train.lr=0.4", "-n", "b"]).ok();
    // Only the workspace's data (b's model) moves without -e.
    env.dvt(&["push", "-q"]).ok();
    std::fs::remove_dir_all(env.path(".dvt/cache")).unwrap();
    let r = env.dvt(&["exp", "apply", "a"]).fails();
    assert!(r.stderr.contains("model.bin"), "{}", r.stderr);
    env.dvt(&["exp", "apply", "b"]).ok();
    // Make the cache whole again, push every experiment's data, and get it back from scratch.
    env.dvt(&["exp", "run", "-q", "-f", "-S", "train.lr=0.3", "-n", "a"])
        .ok();
    env.dvt(&["push", "-q", "-e"]).ok();
    std::fs::remove_dir_all(env.path(".dvt/cache")).unwrap();
    env.dvt(&["fetch", "-q", "-e"]).ok();
    env.dvt(&["exp", "apply", "b"]).ok();
    assert_eq!(env.read("model.bin"), b"model lr=0.4\n");
    env.dvt(&["exp", "apply", "a"]).ok();
    assert_eq!(env.read("model.bin"), b"model lr=0.3\n");
}

/// Two `queue start` at once: the second says who runs the queue, and does nothing.
#[test]
fn one_queue_runner_at_a_time() {
    let env = project();
    let toml = String::from_utf8(env.read("dvt.toml")).unwrap();
    env.write(
        "dvt.toml",
        toml.replace("python3 train.py", "sleep 2 && python3 train.py"),
    );
    env.git(&["commit", "-qam", "slow"]);
    env.dvt(&["exp", "run", "-q", "--queue", "-S", "train.lr=0.2", "-n", "slow"])
        .ok();
    let mut first = env.dvt_spawn(&["queue", "start", "-q"]);
    std::thread::sleep(std::time::Duration::from_millis(500));
    let r = env.dvt(&["queue", "start"]).fails();
    assert!(
        r.stderr.contains("locked by another dvt process (pid") && r.stderr.contains("dvt queue start"),
        "{}",
        r.stderr
    );
    let r = env.dvt(&["queue", "status"]).ok();
    assert!(
        r.stderr.contains("The queue is being run (pid ") && r.stdout.contains("000001  running  `slow`"),
        "{}{}",
        r.stdout,
        r.stderr
    );
    // What runs cannot be taken off the queue; `-A` leaves it there.
    let r = env.dvt(&["queue", "remove", "slow"]).fails();
    assert!(r.stderr.contains("queued experiment 000001 is running"), "{}", r.stderr);
    env.dvt(&["queue", "remove", "-A"]).ok();
    assert!(first.wait().unwrap().success());
    let r = env.dvt(&["queue", "status"]).ok();
    assert!(!r.stderr.contains("being run"), "{}", r.stderr);
    assert_eq!(
        git_out(&env, &["show", "refs/exps/slow:metrics.json"]),
        "{\"loss\": 0.8}\n"
    );
}

#[test]
fn exp_save_records_work_done_by_hand() {
    let env = project();
    let head = git_out(&env, &["rev-parse", "HEAD"]);
    // A stage that never ran and has no outs is left alone, not refused.
    let mut toml = String::from_utf8(env.read("dvt.toml")).unwrap();
    toml.push_str("\n[stages.report]\ncmd = \"echo > report.txt\"\nouts = [\"report.txt\"]\n");
    env.write("dvt.toml", &toml);
    // The user changes a param and runs the script by hand, not through repro.
    env.write(
        "params.yaml",
        "# knobs\ntrain:\n  lr: 0.4  # learning rate\n  epochs: 2\n",
    );
    let run = std::process::Command::new("python3")
        .arg("train.py")
        .current_dir(env.path(""))
        .status()
        .unwrap();
    assert!(run.success());
    let r = env.dvt(&["exp", "save", "-n", "by-hand", "-m", "tried lr 0.4"]).ok();
    assert!(
        r.stdout.starts_with("Experiment `by-hand` saved: commit ")
            && r.stdout.contains("(1 stage recorded anew in dvt.lock)"),
        "{}",
        r.stdout
    );
    assert!(r.stderr.contains("stage `report` not recorded anew"), "{}", r.stderr);
    // HEAD did not move; the experiment holds the new lock, params and metrics.
    assert_eq!(git_out(&env, &["rev-parse", "HEAD"]), head);
    assert_eq!(
        git_out(&env, &["log", "-1", "--format=%B", "refs/exps/by-hand"]),
        "tried lr 0.4\n\n"
    );
    assert_eq!(
        git_out(&env, &["show", "refs/exps/by-hand:metrics.json"]),
        "{\"loss\": 0.6}\n"
    );
    let lock = git_out(&env, &["show", "refs/exps/by-hand:dvt.lock"]);
    assert!(lock.contains("0.4"), "{lock}");
    // The workspace is now up to date for `train`, and its model is in the cache.
    let status = env.dvt(&["status"]).ok();
    assert!(!status.stdout.contains("train"), "{}", status.stdout);
    std::fs::remove_file(env.path("model.bin")).unwrap();
    env.dvt(&["checkout", "model.bin"]).ok();
    assert_eq!(env.read("model.bin"), b"model lr=0.4\n");
    // It sits beside the others in `exp show`.
    let rows = env.dvt(&["exp", "show", "--json"]).ok().json();
    assert_eq!(row_names(&rows), ["workspace", "main", "by-hand"]);
    // --csv for a spreadsheet (a missing value is an empty cell); --drop and
    // --keep pick columns by regular expression.
    let csv = env.dvt(&["exp", "show", "--csv"]).ok().stdout;
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "Experiment,Created,loss,train.epochs,train.lr");
    assert_eq!(lines[1], "workspace,,0.6,2,0.4");
    assert!(
        lines[3].starts_with("by-hand,20") && lines[3].ends_with(",0.6,2,0.4"),
        "{csv}"
    );
    let csv = env.dvt(&["exp", "show", "--csv", "--drop", "^train\\."]).ok().stdout;
    assert!(csv.starts_with("Experiment,Created,loss\n"), "{csv}");
    let csv = env
        .dvt(&["exp", "show", "--csv", "--drop", ".", "--keep", "lr$"])
        .ok()
        .stdout;
    assert!(csv.starts_with("Experiment,Created,train.lr\n"), "{csv}");
    let r = env.dvt(&["exp", "show", "--drop", "("]).fails();
    assert_eq!(
        r.stderr.trim(),
        "error: `--drop (` is not a regular expression: unclosed group"
    );

    // A name in use is refused, and `-f` replaces it.
    let again = env.dvt(&["exp", "save", "-n", "by-hand"]).fails();
    assert!(
        again.stderr.contains("experiment `by-hand` already exists"),
        "{}",
        again.stderr
    );
    env.dvt(&["exp", "save", "-n", "by-hand", "-f"]).ok();
    // rename keeps the commit under the new name; a name in use is refused.
    let commit = git_out(&env, &["rev-parse", "refs/exps/by-hand"]);
    env.dvt(&["exp", "save", "-q", "-n", "other"]).ok();
    let r = env.dvt(&["exp", "rename", "by-hand", "other"]).fails();
    assert!(r.stderr.contains("experiment `other` already exists"), "{}", r.stderr);
    let r = env.dvt(&["exp", "rename", "by-hand", "kept"]).ok();
    assert!(
        r.stdout.starts_with("Renamed experiment `by-hand` to `kept`"),
        "{}",
        r.stdout
    );
    assert_eq!(git_out(&env, &["rev-parse", "refs/exps/kept"]), commit);
    let names = env.dvt(&["exp", "list"]).ok().stdout;
    assert!(names.contains("kept") && !names.contains("by-hand"), "{names}");
    let r = env.dvt(&["exp", "rename", "by-hand", "x"]).fails();
    assert!(r.stderr.contains("no experiment named `by-hand`"), "{}", r.stderr);
    env.dvt(&["exp", "rename", "kept", "by-hand"]).ok();
    assert!(git_out(&env, &["log", "-1", "--format=%B", "refs/exps/by-hand"]).starts_with("dvt exp save on "));
}

/// `project()` whose stage also reads data that dvt tracks (`data.txt`), and
/// first runs `before` (a shell snippet).
fn project_with_data(before: &str) -> TestEnv {
    let env = project();
    env.write("data.txt", "rows\n");
    env.dvt(&["add", "-q", "data.txt"]).ok();
    let toml = String::from_utf8(env.read("dvt.toml")).unwrap();
    env.write(
        "dvt.toml",
        toml.replace(
            "cmd = \"python3 train.py\"\ndeps = [\"train.py\"]",
            &format!(
                "cmd = \"{before}python3 train.py && cat data.txt >> model.bin\"\ndeps = [\"train.py\", \"data.txt\"]"
            ),
        ),
    );
    env.dvt(&["repro", "-q"]).ok();
    env.git(&["add", "-A"]);
    env.git(&["commit", "-qm", "with data"]);
    env
}

/// `--copy-paths` (DVC's): a file git ignores (a local config, a secret) is
/// copied into the worktree of a run outside the workspace, which git's
/// files alone would not give it; with `--queue`, when the queue runs it.
#[test]
fn copy_paths_bring_ignored_files_into_runs_outside_the_workspace() {
    let env = project();
    env.write("local.cfg", "token=abc\n");
    env.write(".gitignore", "/local.cfg\n");
    let toml = String::from_utf8(env.read("dvt.toml")).unwrap();
    env.write(
        "dvt.toml",
        toml.replace("python3 train.py\"", "python3 train.py && cat local.cfg >> model.bin\""),
    );
    env.dvt(&["repro", "-q"]).ok();
    env.commit("reads local.cfg");

    let r = env
        .dvt(&["exp", "run", "--temp", "-S", "train.lr=0.3", "-n", "bare"])
        .fails();
    assert!(r.stderr.contains("local.cfg"), "{}", r.stderr);
    env.dvt(&[
        "exp",
        "run",
        "--temp",
        "-S",
        "train.lr=0.3",
        "-n",
        "t",
        "--copy-paths",
        "local.cfg",
    ])
    .ok();
    let r = env.dvt(&["cat", "model.bin", "--rev", "refs/exps/t"]).ok();
    assert_eq!(r.stdout, "model lr=0.3\ntoken=abc\n");
    env.dvt(&[
        "exp",
        "run",
        "--queue",
        "-S",
        "train.lr=0.4",
        "-n",
        "q",
        "--copy-paths",
        "local.cfg",
    ])
    .ok();
    // `-j 1` implies `--temp`, as `-j 2` does: the workspace is left as it is.
    let params = env.read("params.yaml");
    env.dvt(&["queue", "start", "-j", "1"]).ok();
    let r = env.dvt(&["cat", "model.bin", "--rev", "refs/exps/q"]).ok();
    assert_eq!(r.stdout, "model lr=0.4\ntoken=abc\n");
    assert_eq!(env.read("params.yaml"), params, "the run stayed in its worktree");
    // Only for runs outside the workspace; only what is there.
    let r = env.dvt(&["exp", "run", "--copy-paths", "local.cfg"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    let r = env.dvt(&["exp", "run", "--temp", "--copy-paths", "nope.cfg"]).fails();
    assert!(
        r.stderr
            .contains("`--copy-paths nope.cfg`: there is no `nope.cfg` in the workspace"),
        "{}",
        r.stderr
    );
}

/// Waits (up to 30 s) until `queue status` shows `n` experiments running.
fn wait_until_running(env: &TestEnv, n: usize) {
    for _ in 0..300 {
        let status = env.dvt(&["queue", "status"]).ok().stdout;
        if status.lines().filter(|l| l.contains("  running  ")).count() >= n {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("{n} queued experiments did not start running within 30 s");
}

/// Kills the queue `runner` once `n` experiments run, each in a worktree of its own.
fn kill_once_running(env: &TestEnv, mut runner: std::process::Child, n: usize) {
    wait_until_running(env, n);
    for _ in 0..300 {
        if worktrees(env) == n + 1 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    runner.kill().unwrap();
    runner.wait().unwrap();
}

/// `git worktree list`, a line each: only the workspace once dvt is done.
fn worktrees(env: &TestEnv) -> usize {
    git_out(env, &["worktree", "list"]).lines().count()
}

#[test]
fn queued_experiments_run_side_by_side_outside_the_workspace() {
    // Each stage run waits (up to 20 s) until two have started: only runs
    // side by side finish quickly, and one after another would fail.
    let meet = tempfile::tempdir().unwrap();
    let wait = format!(
        "touch {0}/$$ && for i in $(seq 200); do [ $(ls {0} | wc -l) -ge 2 ] && break; sleep 0.1; done && \
         [ $(ls {0} | wc -l) -ge 2 ] && ",
        meet.path().display()
    );
    // (Two there already for the baseline's run.)
    std::fs::write(meet.path().join("a"), "").unwrap();
    std::fs::write(meet.path().join("b"), "").unwrap();
    let env = project_with_data(&wait);
    std::fs::remove_dir_all(meet.path()).unwrap();
    std::fs::create_dir(meet.path()).unwrap();
    // A code change not committed yet is queued with them (as DVC's queue does)...
    let train = String::from_utf8(env.read("train.py")).unwrap();
    env.write("train.py", train.replace("'model lr=", "'model v2 lr="));
    env.dvt(&["exp", "run", "-q", "--queue", "-S", "train.lr=0.2,0.4", "-n", "side"])
        .ok();
    assert_eq!(git_out(&env, &["for-each-ref", "refs/dvt/"]).lines().count(), 1);
    // `exp show` lists them, with the params they will run with.
    let shown = env.dvt(&["exp", "show"]).ok().stdout;
    let row = shown.lines().find(|l| l.contains("side-2")).unwrap_or_default();
    assert!(row.contains("queued") && row.contains("0.4"), "{shown}");
    // ... and work in progress after it is not; the experiments must not touch it.
    env.write("train.py", train.replace("'model lr=", "'model v3 lr="));
    env.write("params.yaml", "train:\n  lr: 0.9\n  epochs: 2\n");
    let status = git_out(&env, &["status", "--porcelain"]);

    let r = env.dvt(&["queue", "start", "-j", "2"]).ok();
    assert!(
        r.stdout.contains("Queued experiment 000001 recorded as `side-1`"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("Queued experiment 000002 recorded as `side-2`"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("Ran 2 queued experiments in ") && r.stdout.contains(" s, 2 at a time: 2 recorded, 0 failed"),
        "{}",
        r.stdout
    );
    assert!(
        r.stderr.contains("(its output: .dvt/tmp/exp-logs/000001.log)"),
        "{}",
        r.stderr
    );
    assert_eq!(env.dvt(&["queue", "status"]).ok().stdout, "");
    assert_eq!(git_out(&env, &["status", "--porcelain"]), status);
    assert_eq!(env.read("params.yaml"), b"train:\n  lr: 0.9\n  epochs: 2\n");
    assert_eq!(env.read("model.bin"), b"model lr=0.1\nrows\n");
    // Each ran from the params it was queued with, on HEAD's data.
    assert_eq!(
        git_out(&env, &["show", "refs/exps/side-2:params.yaml"]),
        "# knobs\ntrain:\n  lr: 0.4  # learning rate\n  epochs: 2\n"
    );
    assert_eq!(
        git_out(&env, &["show", "refs/exps/side-2:metrics.json"]),
        "{\"loss\": 0.6}\n"
    );
    // What they made is in this repository's cache.
    env.git(&["checkout", "params.yaml", "train.py"]);
    env.dvt(&["exp", "apply", "side-1"]).ok();
    assert_eq!(env.read("model.bin"), b"model v2 lr=0.2\nrows\n");
    // Each on the commit it was queued on, which kept what it ran from until it ran.
    assert_eq!(
        git_out(&env, &["rev-parse", "refs/exps/side-1^"]),
        git_out(&env, &["rev-parse", "HEAD"])
    );
    assert_eq!(git_out(&env, &["for-each-ref", "refs/dvt/"]), "");
    // Their stages' output went to their logs; their worktrees are gone.
    // (By name too, once it has left the queue.)
    let log = env.dvt(&["queue", "logs", "side-2"]).ok().stdout;
    assert!(
        log.starts_with("Queued experiment 000002 `side-2`, -S train.lr=0.4\n"),
        "{log}"
    );
    assert!(
        log.contains("Running stage `train`") && log.contains("Experiment `side-2` recorded"),
        "{log}"
    );
    assert_eq!(worktrees(&env), 1);
    assert_eq!(std::fs::read_dir(env.path(".dvt/tmp/exps")).unwrap().count(), 0);

    // One that fails stays queued, with its log; the others are recorded.
    env.git(&["checkout", "--", "."]);
    std::fs::remove_dir_all(meet.path()).unwrap();
    std::fs::create_dir(meet.path()).unwrap();
    env.dvt(&["exp", "run", "-q", "--queue", "-S", "train.lr=oops", "-n", "bad"])
        .ok();
    env.dvt(&["exp", "run", "-q", "--queue", "-S", "train.lr=0.3", "-n", "good"])
        .ok();
    let r = env.dvt(&["queue", "start", "-j", "2"]).fails();
    assert!(
        r.stderr
            .contains("Queued experiment 000001 failed, and stays queued: stage `train` failed"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("1 experiment failed and stayed queued"),
        "{}",
        r.stderr
    );
    assert!(r.stdout.contains("recorded as `good`"), "{}", r.stdout);
    let waiting = env.dvt(&["queue", "status"]).ok().stdout;
    assert!(
        waiting.contains("000001  failed   `bad` -S train.lr=oops  (stage `train` failed"),
        "{waiting}"
    );
    let shown = env.dvt(&["exp", "show"]).ok().stdout;
    assert!(
        shown.lines().any(|l| l.contains("bad") && l.contains("failed")),
        "{shown}"
    );
    let shown = env.dvt(&["exp", "show", "--hide-failed"]).ok().stdout;
    assert!(!shown.contains("bad"), "{shown}");
    let log = env.dvt(&["queue", "logs", "bad"]).ok().stdout;
    assert!(
        log.contains("AttributeError") && log.contains("Failed: stage `train` failed"),
        "{log}"
    );
    assert_eq!(worktrees(&env), 1);
    let r = env.dvt(&["queue", "logs", "000042"]).fails();
    assert!(
        r.stderr.contains("no log for queued experiment `000042`"),
        "{}",
        r.stderr
    );
    // `good` has left the queue, so its number is given again: the new
    // experiment has no log yet, and is not shown `good`'s.
    let r = env
        .dvt(&["exp", "run", "--queue", "-S", "train.lr=0.4", "-n", "next"])
        .ok();
    assert!(r.stdout.contains("Queued experiment 000002"), "{}", r.stdout);
    let r = env.dvt(&["queue", "logs", "next"]).fails();
    assert!(r.stderr.contains("no log for queued experiment `next`"), "{}", r.stderr);
    let r = env.dvt(&["queue", "start", "-j", "0"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
}

#[test]
fn exp_run_temp_leaves_the_workspace_as_it_is() {
    let env = project_with_data("");
    env.write("notes.txt", "work in progress\n");
    let r = env.dvt(&["exp", "run", "--temp", "-S", "train.lr=0.3", "-n", "t"]).ok();
    assert!(r.stdout.contains("Experiment `t` recorded"), "{}", r.stdout);
    assert_eq!(
        git_out(&env, &["show", "refs/exps/t:metrics.json"]),
        "{\"loss\": 0.7}\n"
    );
    // The workspace's params and outs are as they were.
    assert_eq!(env.read("model.bin"), b"model lr=0.1\nrows\n");
    assert!(
        String::from_utf8(env.read("params.yaml")).unwrap().contains("lr: 0.1"),
        "params.yaml changed"
    );
    let files = git_out(&env, &["ls-tree", "--name-only", "refs/exps/t"]);
    assert!(files.contains("model.bin.dvt") || files.contains("dvt.lock"), "{files}");
    // As `exp run`, it records the whole work tree: files no commit holds too.
    assert!(files.contains("notes.txt"), "{files}");
    assert_eq!(worktrees(&env), 1);
    env.dvt(&["exp", "apply", "t"]).ok();
    assert_eq!(env.read("model.bin"), b"model lr=0.3\nrows\n");
    // Without the data in the cache, it says what is missing and leaves nothing behind.
    env.git(&["checkout", "--", "."]);
    std::fs::remove_dir_all(env.path(".dvt/cache")).unwrap();
    let r = env.dvt(&["exp", "run", "--temp", "-S", "train.lr=0.5"]).fails();
    assert!(
        r.stderr.contains("is not in the cache (needed for `data.txt`)"),
        "{}",
        r.stderr
    );
    assert_eq!(worktrees(&env), 1);
    let r = env.dvt(&["exp", "run", "--temp", "--queue"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
}

/// A `queue start -j` killed mid-run: the experiments stay queued, and the next
/// run deletes the worktrees it left and records them.
#[test]
fn killed_queue_runner_leaves_its_experiments_queued() {
    let env = project_with_data("sleep 3 && ");
    env.dvt(&["exp", "run", "-q", "--queue", "-S", "train.lr=0.2,0.4", "-n", "k"])
        .ok();
    let runner = env.dvt_spawn(&["queue", "start", "-j", "2"]);
    // Each holds its lock from just before its worktree is made.
    kill_once_running(&env, runner, 2);
    assert_eq!(env.dvt(&["queue", "status"]).ok().stdout.lines().count(), 2);
    assert_eq!(worktrees(&env), 3);
    // `exp clean` deletes them (and git's records), and keeps the queue.
    let r = env.dvt(&["exp", "clean"]).ok();
    assert_eq!(r.stdout, "Removed 2 worktrees that killed runs left\n");
    assert_eq!(worktrees(&env), 1);
    assert_eq!(env.dvt(&["queue", "status"]).ok().stdout.lines().count(), 2);
    let r = env.dvt(&["exp", "clean"]).ok();
    assert_eq!(r.stdout, "Nothing to clean: no worktree of a killed run is left\n");
    env.dvt(&["queue", "start", "-q", "--temp"]).ok();
    assert_eq!(env.dvt(&["queue", "status"]).ok().stdout, "");
    assert_eq!(worktrees(&env), 1);
    assert_eq!(
        git_out(&env, &["show", "refs/exps/k-2:metrics.json"]),
        "{\"loss\": 0.6}\n"
    );
    assert_eq!(std::fs::read_dir(env.path(".dvt/tmp/exps")).unwrap().count(), 0);
}

/// `destroy` after a killed run: the worktree it left under `.dvt` goes with
/// `.dvt`, and git's record of it too (`git worktree list` shows none).
#[test]
fn destroy_after_a_killed_run_leaves_git_no_worktree_record() {
    let env = project_with_data("sleep 3 && ");
    env.dvt(&["exp", "run", "-q", "--queue", "-S", "train.lr=0.2", "-n", "k"])
        .ok();
    let runner = env.dvt_spawn(&["queue", "start", "--temp"]);
    kill_once_running(&env, runner, 1);
    assert_eq!(worktrees(&env), 2);
    env.dvt(&["destroy", "-f"]).ok();
    assert!(!env.exists(".dvt"));
    assert_eq!(worktrees(&env), 1);
}

/// Data added before queuing and replaced after it survives `gc` until the
/// experiment has run from it.
#[test]
fn gc_keeps_the_data_queued_experiments_run_from() {
    let env = project_with_data("");
    env.write("data.txt", "queued rows\n");
    env.dvt(&["add", "-q", "data.txt"]).ok();
    env.dvt(&["exp", "run", "-q", "--queue", "-S", "train.lr=0.2", "-n", "g"])
        .ok();
    env.write("data.txt", "later rows\n");
    env.dvt(&["add", "-q", "data.txt"]).ok();
    env.dvt(&["gc", "-f", "-q"]).ok();
    env.dvt(&["queue", "start", "-q", "--temp"]).ok();
    env.dvt(&["exp", "apply", "-f", "g"]).ok();
    assert_eq!(env.read("model.bin"), b"model lr=0.2\nqueued rows\n");
}

/// A worktree gets the data its stages depend on, and the rest as far as the
/// cache has it (a command may read data it does not declare).
#[test]
fn temp_runs_need_only_the_data_stages_depend_on() {
    let env = project_with_data("test -e data.txt && cat other.bin >> metrics.log; ");
    env.write("other.bin", "read without being declared\n");
    env.dvt(&["add", "-q", "other.bin"]).ok();
    env.git(&["add", "-A"]);
    env.git(&["commit", "-qm", "more data"]);
    // A pointer whose object is in the cache no more.
    env.write("gone.bin", "no longer in the cache\n");
    env.dvt(&["add", "-q", "gone.bin"]).ok();
    let pointer = env.read("gone.bin.dvt");
    std::fs::remove_file(env.path("gone.bin")).unwrap();
    std::fs::remove_file(env.path("gone.bin.dvt")).unwrap();
    env.dvt(&["gc", "-q", "-f"]).ok();
    std::fs::write(env.path("gone.bin.dvt"), pointer).unwrap();
    let r = env.dvt(&["checkout", "gone.bin"]).fails();
    assert!(r.stderr.contains("is not in the cache"), "{}", r.stderr);
    env.dvt(&["exp", "run", "-q", "--temp", "-S", "train.lr=0.3", "-n", "only"])
        .ok();
    assert_eq!(
        git_out(&env, &["show", "refs/exps/only:metrics.log"]),
        "read without being declared\n"
    );
}

/// Several `exp run --queue` at once: each experiment gets a number of its own.
#[test]
fn experiments_queued_at_once_are_all_kept() {
    let env = project();
    let runs: Vec<Vec<String>> = (1..=4)
        .map(|i| {
            ["exp", "run", "-q", "--queue", "-S", &format!("train.lr=0.{i}")]
                .map(String::from)
                .to_vec()
        })
        .collect();
    for r in env.dvt_at_once(&runs) {
        r.ok();
    }
    let waiting = env.dvt(&["queue", "status"]).ok().stdout;
    assert_eq!(waiting.lines().count(), 4, "{waiting}");
    for i in 1..=4 {
        assert!(waiting.contains(&format!("train.lr=0.{i}\n")), "{waiting}");
    }
}

/// `queue logs -f` prints what a running experiment prints until it is done.
#[test]
fn queue_logs_follow_a_running_experiment() {
    let env = project_with_data("echo warming up && sleep 2 && ");
    env.dvt(&["exp", "run", "-q", "--queue", "-S", "train.lr=0.2", "-n", "f"])
        .ok();
    let mut runner = env.dvt_spawn(&["queue", "start", "-q", "--temp"]);
    wait_until_running(&env, 1);
    let log = env.dvt(&["queue", "logs", "-f", "f"]).ok().stdout;
    assert!(
        log.contains("warming up") && log.contains("Experiment `f` recorded"),
        "{log}"
    );
    assert!(runner.wait().unwrap().success());
}

/// `queue stop`: the running experiment is recorded, no other starts.
#[test]
fn queue_stop_lets_the_running_experiment_finish() {
    let env = project_with_data("sleep 2 && ");
    let r = env.dvt(&["queue", "stop"]).ok();
    assert_eq!(r.stdout, "No queue is being run.\n");
    env.dvt(&["exp", "run", "-q", "--queue", "-S", "train.lr=0.2,0.3,0.4", "-n", "s"])
        .ok();
    let runner = env.dvt_spawn(&["queue", "start", "--temp"]);
    wait_until_running(&env, 1);
    let r = env.dvt(&["queue", "stop"]).ok();
    assert!(
        r.stdout.contains("Asked the queue to start no other experiment"),
        "{}",
        r.stdout
    );
    let out = runner.wait_with_output().unwrap();
    assert!(out.status.success());
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("Ran 1 queued experiment in"), "{said}");
    let waiting = env.dvt(&["queue", "status"]).ok().stdout;
    assert_eq!(waiting.lines().count(), 2, "{waiting}");
    assert!(
        waiting.contains("queued   `s-2`") && waiting.contains("queued   `s-3`"),
        "{waiting}"
    );
    // The next run starts them again.
    env.dvt(&["queue", "start", "-q", "-j", "2"]).ok();
    assert_eq!(env.dvt(&["queue", "status"]).ok().stdout, "");
}

/// A project whose stage, once begun (it leaves `began` in the directory
/// returned), starts a process of its own and then waits: each, once it has
/// waited 3 s, leaves a file there too.
fn project_whose_stage_starts_a_child() -> (TestEnv, tempfile::TempDir) {
    let late = tempfile::tempdir().unwrap();
    let l = late.path().display();
    let env = project_with_data(&format!(
        "touch {l}/began; (sleep 3; touch {l}/child) & sleep 3 && touch {l}/stage && "
    ));
    // Its first run (in `project_with_data`) left all three.
    for f in ["began", "child", "stage"] {
        std::fs::remove_file(late.path().join(f)).unwrap();
    }
    (env, late)
}

/// Waits (up to 30 s) until the stage of `project_whose_stage_starts_a_child`
/// has begun.
fn wait_until_begun(late: &tempfile::TempDir) {
    let began = late.path().join("began");
    for _ in 0..300 {
        if began.exists() {
            std::fs::remove_file(began).unwrap();
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("the stage did not begin within 30 s");
}

/// What the stage and its child left, 4 s on: nothing, if they were stopped.
fn left_after_their_time(late: &tempfile::TempDir) -> Vec<String> {
    std::thread::sleep(std::time::Duration::from_secs(4));
    let mut left: Vec<String> = std::fs::read_dir(late.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    left
}

/// `queue kill`: the stage and every process it started stop; the experiment
/// stays queued, marked failed; the queue runner goes on (and here ends).
#[test]
fn queue_kill_stops_the_stage_and_what_it_started() {
    let (env, late) = project_whose_stage_starts_a_child();
    env.dvt(&["exp", "run", "-q", "--queue", "-S", "train.lr=0.2", "-n", "k"])
        .ok();
    let r = env.dvt(&["queue", "kill", "k"]).fails();
    assert!(
        r.stderr.contains("queued experiment 000001 is not running"),
        "{}",
        r.stderr
    );
    let runner = env.dvt_spawn(&["queue", "start", "--temp"]);
    wait_until_begun(&late);
    let r = env.dvt(&["queue", "kill", "nope"]).fails();
    assert!(
        r.stderr.contains("no queued experiment is numbered or named `nope`"),
        "{}",
        r.stderr
    );
    let r = env.dvt(&["queue", "kill", "k"]).ok();
    assert!(
        r.stdout.starts_with("Killed queued experiment 000001 (SIGTERM): `k`"),
        "{}",
        r.stdout
    );
    let out = runner.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("was stopped by `dvt queue kill`"), "{said}");
    let status = env.dvt(&["queue", "status"]).ok().stdout;
    assert!(
        status.starts_with("000001  failed   `k`") && status.contains("was stopped by `dvt queue kill`"),
        "{status}"
    );
    assert_eq!(worktrees(&env), 1);
    assert_eq!(left_after_their_time(&late), Vec::<String>::new());
}

/// `queue stop --kill` (DVC's): no other experiment starts, and the running
/// one is killed as `queue kill` kills it; the next stays queued.
#[test]
fn queue_stop_kill_stops_the_queue_and_the_running_experiment() {
    let (env, late) = project_whose_stage_starts_a_child();
    env.dvt(&["exp", "run", "-q", "--queue", "-S", "train.lr=0.2,0.3", "-n", "sk"])
        .ok();
    let runner = env.dvt_spawn(&["queue", "start", "--temp"]);
    wait_until_begun(&late);
    let r = env.dvt(&["queue", "stop", "--kill"]).ok();
    assert!(
        r.stdout.starts_with(
            "Asked the queue to start no other experiment.\nKilled queued experiment 000001 (SIGTERM): `sk-1`"
        ),
        "{}",
        r.stdout
    );
    let out = runner.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let status = env.dvt(&["queue", "status"]).ok().stdout;
    assert!(
        status.starts_with("000001  failed   `sk-1`") && status.contains("000002  queued   `sk-2`"),
        "{status}"
    );
    assert_eq!(left_after_their_time(&late), Vec::<String>::new());
}

/// Ctrl-C of `queue start` reaches the stage, which runs in a process group of
/// its own, and what it started; the experiment's worktree goes, and the
/// experiment stays queued (not failed).
#[test]
fn an_interrupted_queue_runner_stops_its_stage() {
    let (env, late) = project_whose_stage_starts_a_child();
    env.dvt(&["exp", "run", "-q", "--queue", "-S", "train.lr=0.2", "-n", "i"])
        .ok();
    let runner = env.dvt_spawn(&["queue", "start", "--temp"]);
    wait_until_begun(&late);
    env.run("kill", &["-INT", &runner.id().to_string()]).ok();
    let out = runner.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("dvt: interrupted; removed 1 unfinished file"), "{said}");
    assert!(!env.exists(".dvt/tmp/exps/queue-000001"));
    assert_eq!(left_after_their_time(&late), Vec::<String>::new());
    assert!(
        env.dvt(&["queue", "status"])
            .ok()
            .stdout
            .starts_with("000001  queued   `i`")
    );
}

/// `queue start --detach` returns once the queue runs, in the background and
/// outside the workspace; what the runner says goes to a log.
#[test]
fn queue_start_detach_runs_the_queue_in_the_background() {
    let env = project_with_data("sleep 2 && ");
    let r = env.dvt(&["queue", "start", "-d"]).ok();
    assert_eq!(r.stdout, "The queue is empty.\n");
    env.dvt(&["exp", "run", "-q", "--queue", "-S", "train.lr=0.2,0.4", "-n", "d"])
        .ok();
    let params = env.read("params.yaml");
    // From elsewhere, with -C: the runner runs in the repository all the same.
    let elsewhere = tempfile::tempdir().unwrap();
    let root = env.root.to_str().unwrap();
    let r = env
        .dvt_in(elsewhere.path(), &["-C", root, "queue", "start", "-d", "-j", "2"])
        .ok();
    assert!(
        r.stdout.starts_with("Started the queue in the background (pid ")
            && r.stdout
                .contains("2 at a time; what it says goes to .dvt/tmp/exp-logs/queue.log"),
        "{}",
        r.stdout
    );
    let r = env.dvt(&["queue", "status"]).ok();
    assert!(r.stderr.contains("The queue is being run (pid "), "{}", r.stderr);
    let r = env.dvt(&["queue", "start", "-d"]).fails();
    assert!(
        r.stderr.contains("the queue is being run already (pid "),
        "{}",
        r.stderr
    );
    let mut waited = 0;
    while env.dvt(&["queue", "status"]).ok().stderr.contains("being run") {
        assert!(waited < 600, "the background queue did not end within 60 s");
        std::thread::sleep(std::time::Duration::from_millis(100));
        waited += 1;
    }
    assert_eq!(env.dvt(&["queue", "status"]).ok().stdout, "");
    let names = env.dvt(&["exp", "list"]).ok().stdout;
    assert!(names.contains("d-1") && names.contains("d-2"), "{names}");
    let said = String::from_utf8(env.read(".dvt/tmp/exp-logs/queue.log")).unwrap();
    assert!(said.contains("Ran 2 queued experiments in"), "{said}");
    assert_eq!(env.read("params.yaml"), params);
}

/// A bare repository `origin.git` in a temp dir, holding `env`'s `main`, added
/// to `env` as the git remote `origin`; and a directory remote `store` for the data.
fn shared(env: &TestEnv) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let origin = dir.path().join("origin.git");
    let store = dir.path().join("store");
    env.dvt(&["remote", "add", "-d", "store", store.to_str().unwrap()]).ok();
    env.git(&["add", "-A"]);
    env.git(&["commit", "-qm", "remote"]);
    env.git(&["init", "-q", "--bare", "-b", "main", origin.to_str().unwrap()]);
    env.git(&["remote", "add", "origin", origin.to_str().unwrap()]);
    env.git(&["push", "-q", "origin", "main"]);
    (dir, origin)
}

/// The experiment refs of the git repository `git_dir`, as `git for-each-ref` lists them.
fn exp_refs(env: &TestEnv, git_dir: &str) -> String {
    env.git(&["--git-dir", git_dir, "for-each-ref", "refs/exps"]).stdout
}

/// As `dvc exp push`/`pull`: an experiment's data goes to the dvt remote, its
/// commit to the git remote (a directory here, which dvt writes itself); a clone
/// pulls both and applies it, byte for byte. An experiment of the same name that
/// names another commit is replaced only with `--force`, on either side.
#[test]
fn experiments_travel_between_clones_through_a_git_remote_on_disk() {
    let a = project();
    let (_dir, origin) = shared(&a);
    a.dvt(&["exp", "run", "-S", "train.lr=0.3", "-n", "fast"]).ok();
    let r = a.dvt(&["exp", "push", "origin"]).ok();
    assert!(r.stdout.contains("pushed 1 object"), "{}", r.stdout);
    assert!(r.stdout.contains("new in `origin`"), "{}", r.stdout);
    let refs = exp_refs(&a, origin.to_str().unwrap());
    assert!(refs.contains("refs/exps/fast"), "{refs}");
    a.git(&["--git-dir", origin.to_str().unwrap(), "fsck", "--strict"]);

    let b = TestEnv::bare();
    b.run("git", &["clone", "-q", origin.to_str().unwrap(), "."]).ok();
    let r = b.dvt(&["exp", "list", "origin"]).ok();
    assert!(r.stdout.starts_with("fast "), "{}", r.stdout);
    let r = b.dvt(&["exp", "list", "nosuch"]).fails();
    assert!(
        r.stderr.contains("`nosuch`: neither a remote of git's configuration"),
        "{}",
        r.stderr
    );
    let r = b.dvt(&["exp", "pull", "origin", "nope"]).fails();
    assert!(
        r.stderr.contains("`origin` has no experiment `nope` (it has `fast`)"),
        "{}",
        r.stderr
    );
    let r = b.dvt(&["exp", "pull", "origin"]).ok();
    assert!(r.stdout.contains("new in this repository"), "{}", r.stdout);
    assert!(r.stdout.contains("fetched 1 object"), "{}", r.stdout);
    b.dvt(&["exp", "apply", "fast"]).ok();
    assert_eq!(b.read("model.bin"), b"model lr=0.3\n");
    let r = b.dvt(&["exp", "pull", "origin", "--json"]).ok().json();
    assert_eq!(r["experiments"][0]["update"], "unchanged", "{r}");
    assert_eq!(r["data"]["downloaded"], 0, "{r}");

    // The same name for another run: kept on the other side unless --force.
    a.dvt(&["exp", "run", "-S", "train.lr=0.4", "-n", "fast", "-f"]).ok();
    let r = a.dvt(&["exp", "push", "origin", "fast"]).fails();
    assert!(
        r.stdout.contains("not taken: `origin` has another experiment"),
        "{}",
        r.stdout
    );
    a.dvt(&["exp", "push", "origin", "fast", "-f"]).ok();
    let r = b.dvt(&["exp", "pull", "origin"]).fails();
    assert!(
        r.stdout.contains("not taken: this repository has another"),
        "{}",
        r.stdout
    );
    let r = b.dvt(&["exp", "pull", "origin", "-f"]).ok();
    assert!(r.stdout.contains("replaced in this repository"), "{}", r.stdout);
    b.dvt(&["exp", "apply", "fast"]).ok();
    assert_eq!(b.read("model.bin"), b"model lr=0.4\n");

    // --no-cache moves the commit alone.
    a.dvt(&["exp", "run", "-S", "train.lr=0.6", "-n", "slow"]).ok();
    let r = a
        .dvt(&["exp", "push", "origin", "slow", "--no-cache", "--json"])
        .ok()
        .json();
    assert!(r["data"].is_null(), "{r}");
    let r = b.dvt(&["exp", "pull", "origin", "slow", "--no-cache"]).ok();
    assert!(!r.stdout.contains("fetch"), "{}", r.stdout);
    let r = b.dvt(&["exp", "apply", "slow"]).fails();
    assert!(r.stderr.contains("model.bin"), "{}", r.stderr);

    // As `dvc exp rename -g`: on the git remote only; a name in use there needs -f.
    let git_dir = origin.to_str().unwrap();
    let slow = a.git(&["--git-dir", git_dir, "rev-parse", "refs/exps/slow"]).stdout;
    let r = b.dvt(&["exp", "rename", "-g", "origin", "slow", "fast"]).fails();
    assert!(
        r.stderr
            .contains("`origin` has an experiment named `fast` already (`-f` replaces it)"),
        "{}",
        r.stderr
    );
    let r = b.dvt(&["exp", "rename", "-g", "origin", "slow", "slower"]).ok();
    assert!(
        r.stdout.contains("Renamed experiment `slow` to `slower` on `origin`"),
        "{}",
        r.stdout
    );
    let refs = exp_refs(&a, git_dir);
    assert!(
        refs.contains("refs/exps/slower") && !refs.contains("refs/exps/slow\n"),
        "{refs}"
    );
    assert_eq!(
        a.git(&["--git-dir", git_dir, "rev-parse", "refs/exps/slower"]).stdout,
        slow
    );
    assert!(b.dvt(&["exp", "list"]).ok().stdout.contains("slow "));
    b.dvt(&["exp", "rename", "-g", "origin", "slower", "slow"]).ok();

    // As `dvc exp remove -g`: from the git remote only; an unknown name removes nothing.
    let r = b.dvt(&["exp", "remove", "-g", "origin", "slow", "nope"]).fails();
    assert!(
        r.stderr.contains("has no experiment `nope` (it has `fast`, `slow`)"),
        "{}",
        r.stderr
    );
    let r = b.dvt(&["exp", "remove", "-g", "origin", "slow"]).ok();
    assert!(
        r.stdout.contains("Removed experiment `slow` from `origin`"),
        "{}",
        r.stdout
    );
    let refs = exp_refs(&a, git_dir);
    assert!(refs.contains("refs/exps/fast") && !refs.contains("slow"), "{refs}");
    assert!(b.dvt(&["exp", "list"]).ok().stdout.contains("slow"));
    let r = b
        .dvt(&["exp", "remove", "--git-remote", "origin", "-A", "--json"])
        .ok()
        .json();
    assert_eq!(r[0]["name"], "fast", "{r}");
    assert_eq!(r[0]["update"], "deleted", "{r}");
    assert_eq!(exp_refs(&a, git_dir), "");
    let r = b.dvt(&["exp", "remove", "-g", "origin", "-A"]).ok();
    assert!(r.stdout.contains("`origin` has no experiments"), "{}", r.stdout);
}

/// Across the network (smart HTTP, `git http-backend`): `exp push` sends the
/// data, then the commits in git's own push protocol, which git checks object by
/// object; a clone lists, pulls and applies the experiment; a second push sends
/// nothing; a replaced experiment needs `-f`; a ref the server refuses to move is
/// an error that names the experiment and the server's reason.
#[test]
fn experiments_travel_over_http_both_ways() {
    let a = project();
    let (dir, origin) = shared(&a);
    let git_dir = origin.to_str().unwrap();
    let server = GitHttp::start(dir.path());
    let url = format!("http://127.0.0.1:{}/origin.git", server.port);
    // Enough files that the pack has trees within trees and blobs of all sizes.
    for i in 0..300 {
        a.write(&format!("notes/{:02}/{i}.txt", i % 12), "note ".repeat(i * 7) + "\n");
    }
    a.dvt(&["exp", "run", "-S", "train.lr=0.3", "-n", "fast"]).ok();
    // Packed, with deltas between the notes: the push reuses them.
    a.git(&["gc", "-q", "--aggressive"]);
    let r = a.dvt(&["exp", "push", &url]).ok();
    assert!(r.stdout.contains("pushed 1 object"), "{}", r.stdout);
    assert!(r.stdout.contains(&format!("new in `{url}`")), "{}", r.stdout);
    a.git(&["--git-dir", git_dir, "fsck", "--strict", "--no-dangling"]);
    let there = a.git(&["--git-dir", git_dir, "rev-parse", "refs/exps/fast"]).stdout;
    let here = a.git(&["rev-parse", "refs/exps/fast"]).stdout;
    assert_eq!(there, here);
    let listed = a
        .git(&["--git-dir", git_dir, "ls-tree", "-r", "--name-only", "refs/exps/fast"])
        .stdout;
    assert_eq!(listed.lines().filter(|l| l.starts_with("notes/")).count(), 300);
    let r = a.dvt(&["exp", "push", &url, "--json"]).ok().json();
    assert_eq!(r["experiments"][0]["update"], "unchanged", "{r}");

    let b = TestEnv::bare();
    b.run("git", &["clone", "-q", &url, "."]).ok();
    let r = b.dvt(&["exp", "list", &url, "--json"]).ok().json();
    assert_eq!(r[0]["name"], "fast", "{r}");
    let r = b.dvt(&["exp", "pull", &url]).ok();
    assert!(r.stdout.contains("new in this repository"), "{}", r.stdout);
    b.dvt(&["exp", "apply", "fast"]).ok();
    assert_eq!(b.read("model.bin"), b"model lr=0.3\n");
    assert_eq!(b.read("notes/07/31.txt"), a.read("notes/07/31.txt"));

    // The same name for another commit: kept there without -f, replaced with it.
    a.dvt(&["exp", "remove", "fast"]).ok();
    a.dvt(&["exp", "run", "-S", "train.lr=0.4", "-n", "fast"]).ok();
    let r = a.dvt(&["exp", "push", &url]).fails();
    assert!(r.stdout.contains("not taken"), "{}", r.stdout);
    assert_eq!(
        a.git(&["--git-dir", git_dir, "rev-parse", "refs/exps/fast"]).stdout,
        there
    );
    // Received packs are kept whole, so the objects there count what was sent:
    // only what differs from the experiment it replaces (not the 300 notes).
    a.git(&["--git-dir", git_dir, "config", "receive.unpackLimit", "1"]);
    let in_packs = || {
        let counts = a.git(&["--git-dir", git_dir, "count-objects", "-v"]).stdout;
        let line = counts.lines().find(|l| l.starts_with("in-pack:")).unwrap().to_string();
        line["in-pack:".len()..].trim().parse::<usize>().unwrap()
    };
    let before = in_packs();
    let r = a.dvt(&["exp", "push", &url, "-f"]).ok();
    assert!(r.stdout.contains("replaced in"), "{}", r.stdout);
    let sent = in_packs() - before;
    assert!((1..10).contains(&sent), "{sent} objects sent");
    let now = a.git(&["--git-dir", git_dir, "rev-parse", "refs/exps/fast"]).stdout;
    assert_eq!(now, a.git(&["rev-parse", "refs/exps/fast"]).stdout);
    a.git(&["--git-dir", git_dir, "fsck", "--strict", "--no-dangling"]);

    // A server whose hook refuses the push says so; nothing moves.
    let hook = origin.join("hooks/pre-receive");
    std::fs::write(&hook, "#!/bin/sh\necho 'experiments are frozen' >&2\nexit 1\n").unwrap();
    std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    a.dvt(&["exp", "remove", "fast"]).ok();
    a.dvt(&["exp", "run", "-S", "train.lr=0.5", "-n", "fast"]).ok();
    let r = a.dvt(&["exp", "push", &url, "-f", "--no-cache"]).fails();
    assert!(r.stderr.contains("refused `refs/exps/fast`"), "{}", r.stderr);
    assert!(r.stderr.contains("remote: experiments are frozen"), "{}", r.stderr);
    assert_eq!(
        a.git(&["--git-dir", git_dir, "rev-parse", "refs/exps/fast"]).stdout,
        now
    );

    // Renamed there over HTTP (the hook refuses any change: lift it), by a
    // clone that never fetched that commit; then removed.
    std::fs::remove_file(&hook).unwrap();
    let r = b.dvt(&["exp", "rename", "-g", &url, "fast", "quick"]).ok();
    assert!(
        r.stdout.contains("Renamed experiment `fast` to `quick`"),
        "{}",
        r.stdout
    );
    assert_eq!(
        a.git(&["--git-dir", git_dir, "rev-parse", "refs/exps/quick"]).stdout,
        now
    );
    assert!(!exp_refs(&a, git_dir).contains("refs/exps/fast"));
    a.git(&["--git-dir", git_dir, "fsck", "--strict", "--no-dangling"]);
    let r = b.dvt(&["exp", "remove", "-g", &url, "quick"]).ok();
    assert!(r.stdout.contains("Removed experiment `quick`"), "{}", r.stdout);
    assert_eq!(exp_refs(&a, git_dir), "");
    a.git(&["--git-dir", git_dir, "fsck", "--strict", "--no-dangling"]);

    let missing = format!("http://127.0.0.1:{}/missing.git", server.port);
    let r = b.dvt(&["exp", "list", &missing]).fails();
    assert!(r.stderr.contains("404"), "{}", r.stderr);
    let r = a.dvt(&["exp", "push", &missing, "--no-cache"]).fails();
    assert!(r.stderr.contains("404"), "{}", r.stderr);
}

/// Over git:// (`git daemon`, one connection kept open for the whole exchange):
/// a push, a push with nothing to do, and a pull into a clone.
#[test]
fn experiments_travel_over_the_git_protocol() {
    let a = project();
    let (dir, origin) = shared(&a);
    let daemon = GitDaemon::start(dir.path());
    let url = format!("git://127.0.0.1:{}/origin.git", daemon.port);
    a.dvt(&["exp", "run", "-S", "train.lr=0.3", "-n", "fast"]).ok();
    a.dvt(&["exp", "run", "-S", "train.lr=0.2", "-n", "slow"]).ok();
    let r = a.dvt(&["exp", "push", &url]).ok();
    assert!(r.stdout.contains("fast") && r.stdout.contains("slow"), "{}", r.stdout);
    let git_dir = origin.to_str().unwrap();
    a.git(&["--git-dir", git_dir, "fsck", "--strict", "--no-dangling"]);
    let r = a.dvt(&["exp", "push", &url, "--json"]).ok().json();
    assert_eq!(r["experiments"][0]["update"], "unchanged", "{r}");
    assert_eq!(r["experiments"][1]["update"], "unchanged", "{r}");

    let b = TestEnv::bare();
    b.run("git", &["clone", "-q", origin.to_str().unwrap(), "."]).ok();
    let r = b.dvt(&["exp", "pull", &url, "slow"]).ok();
    assert!(r.stdout.contains("new in this repository"), "{}", r.stdout);
    b.dvt(&["exp", "apply", "slow"]).ok();
    assert_eq!(b.read("model.bin"), b"model lr=0.2\n");
}

/// Over ssh, through gix's ssh transport: `ssh` is a stand-in (git's
/// `core.sshCommand`) that runs git's server side here, as sshd would there.
/// Push, list, pull into a clone, and remove there.
#[test]
fn experiments_travel_over_ssh() {
    let a = project();
    let (_dir, origin) = shared(&a);
    let ssh = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/fake_ssh.sh");
    let url = format!("ssh://git@example.invalid{}", origin.display());
    a.git(&["config", "core.sshCommand", ssh.to_str().unwrap()]);
    a.dvt(&["exp", "run", "-S", "train.lr=0.3", "-n", "fast"]).ok();
    let r = a.dvt(&["exp", "push", &url]).ok();
    assert!(r.stdout.contains("new in"), "{}", r.stdout);
    let git_dir = origin.to_str().unwrap();
    a.git(&["--git-dir", git_dir, "fsck", "--strict", "--no-dangling"]);

    let b = TestEnv::bare();
    b.run("git", &["clone", "-q", git_dir, "."]).ok();
    b.git(&["config", "core.sshCommand", ssh.to_str().unwrap()]);
    assert!(b.dvt(&["exp", "list", &url]).ok().stdout.starts_with("fast "));
    b.dvt(&["exp", "pull", &url, "fast"]).ok();
    b.dvt(&["exp", "apply", "fast"]).ok();
    assert_eq!(b.read("model.bin"), b"model lr=0.3\n");
    let r = b.dvt(&["exp", "remove", "-g", &url, "fast"]).ok();
    assert!(r.stdout.contains("Removed experiment `fast`"), "{}", r.stdout);
    assert_eq!(exp_refs(&a, git_dir), "");
}

/// As DVC's: without names, `exp push`/`exp pull` move (and `exp list` lists)
/// the experiments run on HEAD; `--rev`, `-n` and `-A` choose others, on disk
/// and across the network (where what each was run on is learnt by fetching
/// its commit).
#[test]
fn experiments_run_on_head_travel_unless_told_otherwise() {
    let a = project();
    let (dir, origin) = shared(&a);
    a.dvt(&["exp", "run", "-S", "train.lr=0.3", "-n", "old"]).ok();
    a.write("notes.txt", "a second commit\n");
    a.git(&["add", "notes.txt"]);
    a.git(&["commit", "-qm", "second"]);
    a.git(&["push", "-q", "origin", "main"]);
    a.dvt(&["exp", "run", "-S", "train.lr=0.2", "-n", "new"]).ok();
    let names = |r: &serde_json::Value| -> Vec<String> {
        r["experiments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["name"].as_str().unwrap().to_string())
            .collect()
    };
    let r = a.dvt(&["exp", "push", "origin", "--json"]).ok().json();
    assert_eq!(names(&r), ["new"], "{r}");
    let r = a
        .dvt(&["exp", "push", "origin", "--rev", "HEAD~1", "--json"])
        .ok()
        .json();
    assert_eq!(names(&r), ["old"], "{r}");
    let r = a
        .dvt(&["exp", "push", "origin", "--rev", "main~1", "-n", "2", "--json"])
        .ok()
        .json();
    assert_eq!(names(&r), ["old"], "{r}");
    let r = a.dvt(&["exp", "push", "origin", "--rev", "main~1", "-n", "5"]).ok();
    assert!(r.stdout.contains("old") && !r.stdout.contains("new"), "{}", r.stdout);
    let r = a.dvt(&["exp", "push", "origin", "-A", "--json"]).ok().json();
    assert_eq!(names(&r), ["new", "old"], "{r}");
    // `exp list` chooses the same way, here and on the git remote.
    let listed = |args: &[&str]| -> Vec<String> {
        let r = a.dvt(args).ok().json();
        let mut names: Vec<String> = r
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["name"].as_str().unwrap().to_string())
            .collect();
        names.sort();
        names
    };
    assert_eq!(listed(&["exp", "list", "--json"]), ["new"]);
    assert_eq!(listed(&["exp", "list", "-A", "--json"]), ["new", "old"]);
    assert_eq!(listed(&["exp", "list", "--rev", "HEAD~1", "--json"]), ["old"]);
    assert_eq!(listed(&["exp", "list", "origin", "--json"]), ["new"]);
    assert_eq!(listed(&["exp", "list", "origin", "-n", "2", "--json"]), ["new", "old"]);
    let r = a.dvt(&["exp", "push", "origin", "-A", "new"]);
    assert_eq!(r.code, 2, "usage error: {}", r.stderr);
    assert!(r.stderr.contains("cannot be used with"), "{}", r.stderr);

    let server = GitHttp::start(dir.path());
    let url = format!("http://127.0.0.1:{}/origin.git", server.port);
    for remote in [origin.to_str().unwrap(), url.as_str()] {
        let b = TestEnv::bare();
        b.run("git", &["clone", "-q", origin.to_str().unwrap(), "."]).ok();
        let r = b.dvt(&["exp", "list", remote, "-A"]).ok();
        assert!(r.stdout.contains("new") && r.stdout.contains("old"), "{}", r.stdout);
        let r = b.dvt(&["exp", "list", remote]).ok();
        assert!(r.stdout.contains("new") && !r.stdout.contains("old"), "{}", r.stdout);
        let r = b.dvt(&["exp", "pull", remote, "--no-cache", "--json"]).ok().json();
        assert_eq!(names(&r), ["new"], "{remote}: {r}");
        let r = b
            .dvt(&["exp", "pull", remote, "-n", "2", "--no-cache", "--json"])
            .ok()
            .json();
        assert_eq!(names(&r), ["new", "old"], "{remote}: {r}");
        b.git(&["checkout", "-q", "HEAD~1"]);
        let r = b.dvt(&["exp", "pull", remote, "--no-cache"]).ok();
        assert!(r.stdout.contains("old") && !r.stdout.contains("new "), "{}", r.stdout);
    }
}

/// A push across the network killed part way moves nothing there (git keeps
/// what it received apart until the pack is whole), and the next one completes.
#[test]
fn a_killed_exp_push_over_the_network_is_finished_by_the_next() {
    let a = project();
    let (dir, origin) = shared(&a);
    let daemon = GitDaemon::start(dir.path());
    let url = format!("git://127.0.0.1:{}/origin.git", daemon.port);
    for i in 0..3000 {
        a.write(
            &format!("notes/{:02}/{i}.txt", i % 40),
            format!("note {i}\n").repeat(40),
        );
    }
    a.dvt(&["exp", "save", "-n", "many"]).ok();
    let git_dir = origin.to_str().unwrap();
    let commit = a.git(&["rev-parse", "refs/exps/many"]).stdout;
    for ms in [10, 40, 120] {
        a.dvt_killed_after(
            &["exp", "push", &url, "--no-cache"],
            std::time::Duration::from_millis(ms),
        );
        daemon.wait_idle();
        a.git(&["--git-dir", git_dir, "fsck", "--strict", "--no-dangling"]);
        let there = a.run(
            "git",
            &["--git-dir", git_dir, "rev-parse", "-q", "--verify", "refs/exps/many"],
        );
        assert!(there.stdout.is_empty() || there.stdout == commit, "{}", there.stdout);
    }
    let r = a.dvt(&["exp", "push", &url, "--no-cache"]).ok();
    assert!(r.stdout.contains("many"), "{}", r.stdout);
    a.git(&["--git-dir", git_dir, "fsck", "--strict", "--no-dangling"]);
    assert_eq!(
        a.git(&["--git-dir", git_dir, "rev-parse", "refs/exps/many"]).stdout,
        commit
    );
}

/// A push into a git remote on disk killed part way leaves it whole: every
/// object there has all it names, so the next push, which skips what is there,
/// completes it, and git finds nothing missing.
#[test]
fn a_killed_exp_push_to_a_directory_is_finished_by_the_next() {
    let a = project();
    let (_dir, origin) = shared(&a);
    for i in 0..2000 {
        a.write(&format!("notes/{:02}/{i}.txt", i % 40), format!("note {i}\n"));
    }
    a.dvt(&["exp", "save", "-n", "many"]).ok();
    let git_dir = origin.to_str().unwrap();
    for ms in [20, 60, 150] {
        a.dvt_killed_after(
            &["exp", "push", "origin", "--no-cache"],
            std::time::Duration::from_millis(ms),
        );
        a.git(&["--git-dir", git_dir, "fsck", "--strict", "--no-dangling"]);
    }
    let r = a.dvt(&["exp", "push", "origin", "--no-cache"]).ok();
    assert!(r.stdout.contains("many"), "{}", r.stdout);
    a.git(&["--git-dir", git_dir, "fsck", "--strict", "--no-dangling"]);
    let listed = a
        .git(&["--git-dir", git_dir, "ls-tree", "-r", "--name-only", "refs/exps/many"])
        .stdout;
    assert_eq!(listed.lines().filter(|l| l.starts_with("notes/")).count(), 2000);
}

/// `exp run` takes `repro`'s stage flags: `-k` goes on past a failed stage but
/// records no experiment; a queued experiment keeps its flags for its run.
#[test]
fn exp_run_takes_repros_stage_flags_and_a_failure_records_nothing() {
    let env = project();
    let toml = String::from_utf8(env.read("dvt.toml")).unwrap();
    env.write(
        "dvt.toml",
        format!(
            "{toml}\n[stages.flaky]\ncmd = \"test -e go && echo ok > flaky.txt\"\nparams = [\"train.epochs\"]\nouts = [\"flaky.txt\"]\n"
        ),
    );
    env.git(&["add", "-A"]);
    env.git(&["commit", "-qm", "flaky stage"]);

    // `-k`: `train` runs though `flaky` fails (stages run in name order: flaky first).
    let r = env
        .dvt(&[
            "exp",
            "run",
            "-k",
            "-S",
            "train.lr=0.3",
            "-S",
            "train.epochs=3",
            "-n",
            "kept",
        ])
        .fails();
    assert!(
        r.stderr.contains("stage `flaky` failed") && r.stderr.contains("the experiment was not recorded"),
        "{}",
        r.stderr
    );
    assert_eq!(env.read("model.bin"), b"model lr=0.3\n");
    assert_eq!(git_out(&env, &["for-each-ref", "refs/exps/"]), "");
    // Without it, the first failure stops the run.
    env.write("params.yaml", "train:\n  lr: 0.4\n  epochs: 4\n");
    let r = env.dvt(&["exp", "run", "-n", "stopped"]).fails();
    assert!(r.stderr.contains("stage `flaky`"), "{}", r.stderr);
    assert_ne!(env.read("model.bin"), b"model lr=0.4\n");

    // `-s`: only the stage named; then it is recorded.
    env.git(&["checkout", "-q", "--", "params.yaml"]);
    env.git(&["clean", "-qfd"]);
    let r = env
        .dvt(&[
            "exp",
            "run",
            "-s",
            "train",
            "-S",
            "train.lr=0.5",
            "-n",
            "single",
            "--json",
        ])
        .ok();
    let stages: Vec<String> = r.json()["repro"]["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["stage"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(stages, ["train"]);
    assert!(git_out(&env, &["for-each-ref", "refs/exps/"]).contains("single"));

    // Queued with `-k`, it keeps the flag: its run fails the same way, and stays queued.
    env.dvt(&["exp", "run", "--queue", "-k", "-S", "train.lr=0.6", "-n", "later"])
        .ok();
    let r = env.dvt(&["queue", "start"]).fails();
    assert!(r.stderr.contains("the experiment was not recorded"), "{}", r.stderr);
    assert!(env.dvt(&["queue", "status"]).ok().stdout.contains("failed"));
    assert!(!git_out(&env, &["for-each-ref", "refs/exps/"]).contains("later"));
}

/// `exp save -I PATH` records files git ignores too (as DVC's
/// `--include-untracked`); without it they stay out.
/// DVC's `exp save TARGET... [-R]`: only the targets are stored first (the
/// experiment records the work tree either way).
#[test]
fn exp_save_stores_only_its_targets() {
    let env = project();
    env.write("data/a.csv", "a\n");
    env.write("data/b.csv", "b\n");
    env.write("other.csv", "o\n");
    env.dvt(&["add", "data/a.csv", "data/b.csv", "other.csv"]).ok();
    env.git(&["add", "-A"]);
    env.git(&["commit", "-qm", "data"]);
    env.write("data/a.csv", "a2\n");
    env.write("other.csv", "o2\n");
    let r = env
        .dvt(&["exp", "save", "-n", "only-data", "-R", "data", "--json"])
        .ok();
    let j = r.json();
    let pointers: Vec<&str> = j["recorded"]["pointers"]["added"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["unchanged"] == false)
        .filter_map(|p| p["pointer"].as_str())
        .collect();
    assert_eq!(pointers, ["data/a.csv.dvt"], "{}", r.stdout);
    let saved = git_out(&env, &["show", "refs/exps/only-data:other.csv.dvt"]);
    assert_eq!(saved, String::from_utf8(env.read("other.csv.dvt")).unwrap());
    assert!(env.dvt(&["status", "other.csv"]).ok().stdout.contains("modified"));
    let r = env.dvt(&["exp", "save", "-R"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
}

#[test]
fn exp_save_includes_ignored_files_asked_for() {
    let env = project();
    env.write(".gitignore", "logs/\nscratch.txt\n");
    env.write("logs/run.log", "epoch 1\n");
    env.write("scratch.txt", "notes\n");
    env.git(&["add", ".gitignore"]);
    env.git(&["commit", "-qm", "ignore logs"]);
    env.dvt(&["exp", "save", "-n", "plain"]).ok();
    let r = std::process::Command::new("git")
        .args(["cat-file", "-e", "refs/exps/plain:logs/run.log"])
        .current_dir(env.path(""))
        .status()
        .unwrap();
    assert!(!r.success(), "an ignored file was recorded without -I");
    env.dvt(&[
        "exp",
        "save",
        "-n",
        "with-logs",
        "-I",
        "logs",
        "--include-untracked",
        "scratch.txt",
    ])
    .ok();
    assert_eq!(
        git_out(&env, &["show", "refs/exps/with-logs:logs/run.log"]),
        "epoch 1\n"
    );
    assert_eq!(git_out(&env, &["show", "refs/exps/with-logs:scratch.txt"]), "notes\n");
    let outside = tempfile::tempdir().unwrap();
    let r = env
        .dvt(&["exp", "save", "-n", "bad", "-I", outside.path().to_str().unwrap()])
        .fails();
    assert!(r.stderr.contains("is not in the work tree"), "{}", r.stderr);
    let r = env.dvt(&["exp", "save", "-n", "bad", "-I", "nothing-here"]).fails();
    assert!(r.stderr.contains("nothing-here"), "{}", r.stderr);
}

/// DVC's flags: `metrics show --precision`, `stage list --name-only`, `dag
/// --md`, `exp remove --queue`.
#[test]
fn metrics_precision_stage_names_dag_md_and_queue_removal() {
    let env = project();
    env.write("metrics.json", "{\"loss\": 0.123456789}\n");
    let r = env.dvt(&["metrics", "show", "--precision", "3"]).ok();
    assert_eq!(r.stdout, "metrics.json:\n    loss: 0.123\n");
    let r = env.dvt(&["metrics", "show", "--md", "--precision", "2"]).ok();
    assert!(r.stdout.contains("| metrics.json | loss | 0.12 |"), "{}", r.stdout);
    assert_eq!(env.dvt(&["stage", "list", "--name-only"]).ok().stdout, "train\n");
    let r = env.dvt(&["dag", "--md"]).ok();
    assert!(
        r.stdout.starts_with("```mermaid\nflowchart") && r.stdout.ends_with("\n```\n"),
        "{}",
        r.stdout
    );

    env.dvt(&["exp", "run", "--queue", "-S", "train.lr=0.2,0.3"]).ok();
    assert_eq!(env.dvt(&["queue", "status"]).ok().stdout.lines().count(), 2);
    let r = env.dvt(&["exp", "remove", "--queue"]).ok();
    assert_eq!(r.stdout.matches("Removed queued experiment").count(), 2, "{}", r.stdout);
    assert_eq!(env.dvt(&["queue", "status"]).ok().stdout, "");
}

/// `-a`/`-T` (as DVC's): the experiments of HEAD, and of every branch's tip
/// or tagged commit too.
#[test]
fn experiments_of_branch_tips_and_tags() {
    let env = project();
    env.dvt(&["exp", "run", "-S", "train.lr=0.2", "-n", "on-main"]).ok();
    env.git(&["checkout", "-q", "--", "."]);
    env.git(&["tag", "v1"]);
    env.git(&["checkout", "-q", "-b", "other"]);
    env.write("notes.txt", "other branch\n");
    env.commit("other work");
    env.dvt(&["exp", "run", "-S", "train.lr=0.3", "-n", "on-other"]).ok();
    env.git(&["checkout", "-q", "--", "."]);
    env.git(&["checkout", "-q", "main"]);
    env.write("later.txt", "later\n");
    env.commit("later on main");
    let names = |args: &[&str]| {
        let mut a = vec!["exp", "list", "--name-only"];
        a.extend_from_slice(args);
        let mut n: Vec<String> = env.dvt(&a).ok().stdout.lines().map(str::to_string).collect();
        n.sort();
        n
    };
    assert_eq!(names(&[]), Vec::<String>::new());
    assert_eq!(names(&["-a"]), ["on-other"]);
    assert_eq!(names(&["-T"]), ["on-main"]);
    assert_eq!(names(&["-a", "-T"]), ["on-main", "on-other"]);
    let shown = env.dvt(&["exp", "show", "-a"]).ok().stdout;
    assert!(shown.contains("on-other") && !shown.contains("on-main"), "{shown}");
    assert_eq!(env.dvt(&["exp", "list", "-a", "-A"]).code, 2);
}

/// `exp push --run-cache` and `exp pull --run-cache` (as DVC's) move the run
/// cache with the data: a clone then restores the run instead of running it.
#[test]
fn exp_push_and_pull_take_the_run_cache_when_asked() {
    let a = project();
    let (_dir, origin) = shared(&a);
    let origin = origin.to_str().unwrap();
    a.dvt(&["exp", "run", "-S", "train.lr=0.3", "-n", "fast"]).ok();
    let r = a.dvt(&["exp", "push", origin, "fast", "--json"]).ok().json();
    assert!(r["data"]["runs"].is_null(), "{r}");
    let r = a
        .dvt(&["exp", "push", origin, "fast", "--run-cache", "--json"])
        .ok()
        .json();
    assert!(r["data"]["runs"]["copied"].as_u64().unwrap() >= 1, "{r}");

    let b = TestEnv::bare();
    b.run("git", &["clone", "-q", origin, "."]).ok();
    let r = b
        .dvt(&["exp", "pull", origin, "fast", "--run-cache", "--json"])
        .ok()
        .json();
    assert!(r["data"]["runs"]["copied"].as_u64().unwrap() >= 1, "{r}");
    // The same params here: restored from the run cache, not run.
    b.write("params.yaml", a.read("params.yaml"));
    let r = b.dvt(&["repro", "--json"]).ok().json();
    assert_eq!(r["stages"][0]["action"], "restored-from-run-cache", "{r}");
    assert_eq!(b.read("model.bin"), b"model lr=0.3\n");
    assert_eq!(a.dvt(&["exp", "push", origin, "--run-cache", "--no-cache"]).code, 2);
}

/// A work-tree file whose name is not UTF-8 is refused by name, not left out
/// of the experiment's commit (which would delete it from what the
/// experiment records); once git ignores it, the save goes through, and a
/// tracked one deleted from the work tree is a deletion.
#[test]
fn a_file_name_that_is_not_utf8_is_refused_not_dropped() {
    use std::os::unix::ffi::OsStrExt;
    let env = project();
    let odd = env.root.join(std::ffi::OsStr::from_bytes(b"notes-\xe9t\xe9.txt"));
    std::fs::write(&odd, "latin-1 name\n").unwrap();
    let r = env.dvt(&["exp", "save", "-n", "odd"]).fails();
    assert!(
        r.stderr.contains("notes-") && r.stderr.contains("the name is not UTF-8"),
        "{}",
        r.stderr
    );
    assert!(git_out(&env, &["for-each-ref", "refs/exps/"]).is_empty());
    env.write(".gitignore", "/notes-*\n");
    env.dvt(&["exp", "save", "-n", "ignored"]).ok();
    // Tracked by git, then deleted: the experiment records the deletion.
    std::fs::write(env.path(".gitignore"), "").unwrap();
    env.git(&["add", "-A"]);
    env.git(&["commit", "-qm", "odd name"]);
    std::fs::remove_file(&odd).unwrap();
    env.dvt(&["exp", "save", "-n", "deleted"]).ok();
    let files = git_out(&env, &["ls-tree", "--name-only", "refs/exps/deleted"]);
    assert!(!files.contains("notes-"), "{files}");
}

/// `dvt.api.exp_show` and `exp_save`, as DVC's: rows a DataFrame takes, with
/// DVC's column names, and the workspace saved as an experiment from Python.
#[test]
fn python_api_shows_and_saves_experiments_as_dvcs_does() {
    let env = project();
    env.dvt(&["exp", "run", "-q", "-n", "fast", "-S", "train.lr=0.3"]).ok();
    env.write("notes.log", "ignored by git\n");
    env.write(".git/info/exclude", "*.log\n");
    let script = r#"
import dvt.api as api
for r in api.exp_show():
    print(r["Experiment"], r["rev"] if r["typ"] != "branch_base" else "-", r["typ"], r["Created"] is None, r["train.lr"], r["loss"], r["train.epochs"])
commit = api.exp_save(name="by-hand", include_untracked=["notes.log"])
rows = api.exp_show()
print(len(commit), [r["Experiment"] for r in rows], [r["typ"] for r in rows])
saved = [r for r in rows if r["Experiment"] == "by-hand"][0]
print(saved["rev"] == commit[:7], saved["loss"], api.read("notes.log", rev="by-hand").strip())
try:
    api.exp_save(name="by-hand")
except api.DvtError as e:
    print("DvtError", "by-hand" in str(e))
"#;
    let r = env.python_in(&env.root, script, &[]);
    assert_eq!(
        r.stdout,
        "None workspace workspace True 0.3 0.7 2\n\
         None main baseline False 0.1 0.9 2\n\
         fast - branch_base False 0.3 0.7 2\n\
         40 [None, None, 'by-hand', 'fast'] ['workspace', 'baseline', 'branch_commit', 'branch_base']\n\
         True 0.7 ignored by git\n\
         DvtError True\n",
        "{}",
        r.stderr
    );
    // A key two files hold is named FILE:KEY, as in DVC's.
    let pipeline = String::from_utf8(env.read("dvt.toml")).unwrap();
    env.write("dvt.toml", format!("metrics = [\"other.json\"]\n{pipeline}"));
    env.write("other.json", "{\"loss\": 7}\n");
    let r = env.python_in(
        &env.root,
        "import dvt.api as api\nr = api.exp_show()[0]\nprint(r['metrics.json:loss'], r['other.json:loss'], 'loss' in r)\n",
        &[],
    );
    assert_eq!(r.stdout, "0.7 7 False\n", "{}", r.stderr);
}
