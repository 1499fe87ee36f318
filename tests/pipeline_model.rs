//! Model-based runs of pipelines: a random `dvt.toml` of 3 to 6 stages (file
//! and directory outs, some `persist`, some with a metrics file beside; deps on
//! source files, a source directory and each other's outs; params listed or
//! written into the command as `${KEY}`), then seeded random steps: sources,
//! params and commands edited, outs and metrics edited or deleted by hand,
//! stages frozen and unfrozen, `repro` of everything, of one stage with what it
//! needs, `-s`, `--downstream`, `--pull` and `--no-commit`, `dvt commit` of a
//! stage (refused over changed inputs, or forced), git commits, `git checkout`
//! of older versions with `dvt checkout`, `push`, `pull`, `gc -w`, and `repro`
//! killed midway. A model says which stages run, which come back from the cache
//! or the run cache, what the cache and the remote hold, and what each out
//! holds; after every step the binary's `repro --json`, `status --json`, the
//! commands that really ran and the bytes on disk are checked against it. At
//! the end a clone pulls (with the run cache) and finds nothing to run, then
//! goes back to the inputs of an earlier commit: a stage that ran with them
//! here is restored from the runs it pulled, not run.
#![allow(clippy::disallowed_methods, clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::Path;
use std::time::Duration;

use common::{Rng, TestEnv};

/// What an out, or a dep, holds: a file's bytes, or a directory's files.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Out {
    File(Vec<u8>),
    Dir(BTreeMap<String, Vec<u8>>),
}

impl Out {
    /// What `cat` of it reads (`cat DIR/*` for a directory: its files by name).
    fn bytes(&self) -> Vec<u8> {
        match self {
            Out::File(b) => b.clone(),
            Out::Dir(files) => files.values().flatten().copied().collect(),
        }
    }

    /// The contents of its files.
    fn blobs(&self) -> Vec<&Vec<u8>> {
        match self {
            Out::File(b) => vec![b],
            Out::Dir(files) => files.values().collect(),
        }
    }

    /// What is at `path` on disk; `None` if nothing is.
    fn read(path: &Path) -> Option<Out> {
        let meta = path.symlink_metadata().ok()?;
        if !meta.is_dir() {
            return Some(Out::File(std::fs::read(path).unwrap()));
        }
        let files = std::fs::read_dir(path)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (e.file_name().into_string().unwrap(), std::fs::read(e.path()).unwrap())
            })
            .collect();
        Some(Out::Dir(files))
    }
}

const SOURCES: [&str; 2] = ["in/a.txt", "in/b.txt"];
const SOURCE_DIR: &str = "in/d";
const PARAMS: [&str; 3] = ["p0", "p1", "p2"];
/// What sources hold: a few values, so that edits come back to earlier ones
/// (and the run cache has something to give back).
const CONTENTS: [&str; 4] = ["alpha\n", "beta\n", "gamma gamma\n", ""];

#[derive(Clone, Copy, Debug, PartialEq)]
enum Dep {
    Source(usize),
    SourceDir,
    Stage(usize),
}

/// A stage `sI`: what it reads, which params it lists in `params` and which
/// it writes into its command as `${KEY}`, whether its out is a directory
/// (`out/sI/` with files `x` and `y`) or a file (`out/sI.txt`), and whether it
/// also writes a metrics file (`out/sI.json`: uncached, kept by git), and
/// whether its out is `persist` (not deleted before the command runs, so a
/// file added by hand to its directory stays; never in the run cache).
#[derive(Clone, Debug)]
struct Stage {
    deps: Vec<Dep>,
    listed: Vec<usize>,
    inlined: Vec<usize>,
    dir_out: bool,
    metrics: bool,
    persist: bool,
}

/// Each stage's metrics file, as the workspace or a commit holds it.
type Metrics = Vec<Option<Vec<u8>>>;

/// What a stage ran with: its command as run (the version number and the
/// params written into it), and its deps and listed params. A frozen stage
/// compares the command only.
type Key = (String, String);

/// What a commit holds: the sources, params, each stage's command (a version
/// number in it) and whether it is frozen (both in `dvt.toml`), and `dvt.lock`
/// (per stage: what it ran with, and its out).
#[derive(Clone, Debug, PartialEq)]
struct Version {
    sources: [Vec<u8>; 2],
    dir: BTreeMap<String, Vec<u8>>,
    params: [u32; 3],
    cmds: Vec<u32>,
    frozen: Vec<bool>,
    lock: Vec<Option<(Key, Out)>>,
}

/// What `repro` does to a stage, as `repro --json` names it.
const RAN: &str = "ran";
const SKIPPED: &str = "skipped";
const RESTORED: &str = "restored";
const FROM_RUN_CACHE: &str = "restored-from-run-cache";

struct Model {
    stages: Vec<Stage>,
    now: Version,
    /// Each stage's out in the workspace.
    outs: Vec<Option<Out>>,
    /// Each stage's metrics file in the workspace (`None` for a stage without).
    metrics: Metrics,
    /// The outs the cache holds (everything stored, less what `gc` deleted).
    cache: HashSet<Out>,
    /// Directory outs whose manifest the cache holds, with their files or
    /// not (`gc` gets a kept directory's manifest from the remote, not its files).
    manifests: HashSet<Out>,
    /// The outs the remote holds; `None` until the first push makes its directory.
    remote: Option<HashSet<Out>>,
    /// The run cache: (stage, what it ran with) -> its out.
    runs: HashMap<(usize, Key), Out>,
    /// The file `sh` appends each stage's name to when its command runs.
    log: std::path::PathBuf,
}

fn out_path(i: usize, dir: bool) -> String {
    if dir {
        format!("out/s{i}")
    } else {
        format!("out/s{i}.txt")
    }
}

impl Model {
    fn new(rng: &mut Rng, log: std::path::PathBuf) -> Model {
        let n = 3 + rng.below(4);
        let stages: Vec<Stage> = (0..n)
            .map(|i| {
                let mut deps: Vec<Dep> = [Dep::Source(0), Dep::Source(1), Dep::SourceDir]
                    .into_iter()
                    .filter(|_| rng.below(3) == 0)
                    .collect();
                deps.extend((0..i).filter(|_| rng.below(2) == 0).map(Dep::Stage));
                if deps.is_empty() {
                    deps.push(if i > 0 && rng.below(2) == 0 {
                        Dep::Stage(rng.below(i))
                    } else {
                        Dep::Source(rng.below(2))
                    });
                }
                let (mut listed, mut inlined) = (Vec::new(), Vec::new());
                for p in 0..PARAMS.len() {
                    match rng.below(6) {
                        0 | 1 => listed.push(p),
                        2 => inlined.push(p),
                        _ => {}
                    }
                }
                Stage {
                    deps,
                    listed,
                    inlined,
                    dir_out: rng.below(3) == 0,
                    metrics: rng.below(2) == 0,
                    persist: rng.below(3) == 0,
                }
            })
            .collect();
        let now = Version {
            sources: [CONTENTS[0].into(), CONTENTS[1].into()],
            dir: [("f1".to_string(), b"one\n".to_vec())].into(),
            params: [1, 1, 1],
            cmds: vec![0; n],
            frozen: vec![false; n],
            lock: vec![None; n],
        };
        Model {
            outs: vec![None; n],
            metrics: vec![None; n],
            stages,
            now,
            cache: HashSet::new(),
            manifests: HashSet::new(),
            remote: None,
            runs: HashMap::new(),
            log,
        }
    }

    fn out_path(&self, i: usize) -> String {
        out_path(i, self.stages[i].dir_out)
    }

    fn metrics_path(i: usize) -> String {
        format!("out/s{i}.json")
    }

    /// The metrics file the command writes beside out `out` of stage `i`:
    /// the size of what its out's main file holds.
    fn metrics_of(&self, i: usize, out: &Out) -> Option<Vec<u8>> {
        let main = match out {
            Out::File(b) => b.len(),
            Out::Dir(files) => files.get("x").map_or(0, Vec::len),
        };
        self.stages[i]
            .metrics
            .then(|| format!("{{\"bytes\": {main}}}\n").into_bytes())
    }

    /// Whether stage `i`'s out and metrics file in the workspace are those of
    /// `recorded` (the metrics file counts only if the stage has one).
    fn outs_match(&self, i: usize, recorded: &Out) -> bool {
        self.outs[i].as_ref() == Some(recorded) && self.metrics[i] == self.metrics_of(i, recorded)
    }

    /// The `dvt.toml` of the stages as they are now.
    fn toml(&self) -> String {
        let mut t = String::new();
        for (i, s) in self.stages.iter().enumerate() {
            let out = self.out_path(i);
            let deps: Vec<String> = s
                .deps
                .iter()
                .map(|d| match d {
                    Dep::Source(k) => SOURCES[*k].to_string(),
                    Dep::SourceDir => SOURCE_DIR.to_string(),
                    Dep::Stage(j) => self.out_path(*j),
                })
                .collect();
            let mut body = vec![format!("echo \"# s{i} v={}\"", self.now.cmds[i])];
            for (d, path) in s.deps.iter().zip(&deps) {
                let dir = match d {
                    Dep::SourceDir => true,
                    Dep::Stage(j) => self.stages[*j].dir_out,
                    Dep::Source(_) => false,
                };
                body.push(if dir {
                    format!("cat {path}/*")
                } else {
                    format!("cat {path}")
                });
            }
            body.extend(
                s.listed
                    .iter()
                    .map(|p| format!("grep \"^{}:\" params.yaml", PARAMS[*p])),
            );
            body.extend(s.inlined.iter().map(|p| format!("echo \"{0}=${{{0}}}\"", PARAMS[*p])));
            let body = body.join("; ");
            let (write, main) = if s.dir_out {
                (
                    format!("mkdir -p {out} && {{ {body}; }} > {out}/x && echo s{i} > {out}/y"),
                    format!("{out}/x"),
                )
            } else {
                (format!("mkdir -p out && {{ {body}; }} > {out}"), out.clone())
            };
            let (write, metrics) = match s.metrics {
                true => {
                    let path = Model::metrics_path(i);
                    (
                        format!("{write} && echo \"{{\\\"bytes\\\": $(wc -c < {main})}}\" > {path}"),
                        format!("metrics = [\"{path}\"]\n"),
                    )
                }
                false => (write, String::new()),
            };
            let quoted = |v: &[String]| v.iter().map(|d| format!("\"{d}\"")).collect::<Vec<_>>().join(", ");
            let params: Vec<String> = s.listed.iter().map(|p| PARAMS[*p].to_string()).collect();
            t += &format!(
                "[stages.s{i}]\ncmd = '{write}; echo s{i} >> {}'\ndeps = [{}]\nparams = [{}]\nouts = [{}]\n{metrics}{}\n",
                self.log.display(),
                quoted(&deps),
                quoted(&params),
                match s.persist {
                    true => format!("{{ path = \"{out}\", persist = true }}"),
                    false => format!("\"{out}\""),
                },
                if self.now.frozen[i] { "frozen = true\n" } else { "" },
            );
        }
        t
    }

    fn params_yaml(&self) -> String {
        PARAMS
            .iter()
            .zip(self.now.params)
            .map(|(p, v)| format!("{p}: {v}\n"))
            .collect()
    }

    /// Writes every input of `now` (sources, params, `dvt.toml`) to disk.
    fn write_inputs(&self, env: &TestEnv) {
        for (path, content) in SOURCES.iter().zip(&self.now.sources) {
            env.write(path, content);
        }
        let dir = env.path(SOURCE_DIR);
        let _ = std::fs::remove_dir_all(&dir);
        for (name, content) in &self.now.dir {
            env.write(&format!("{SOURCE_DIR}/{name}"), content);
        }
        env.write("params.yaml", self.params_yaml());
        env.write("dvt.toml", self.toml());
    }

    /// What a dep holds now. For `status`, `restorable` counts a missing out
    /// of a stage that `repro` would restore as what `dvt.lock` records.
    fn dep(&self, d: Dep, restorable: bool) -> Option<Out> {
        match d {
            Dep::Source(k) => Some(Out::File(self.now.sources[k].clone())),
            Dep::SourceDir => Some(Out::Dir(self.now.dir.clone())),
            Dep::Stage(j) => self.outs[j].clone().or_else(|| {
                let (_, recorded) = self.now.lock[j].as_ref()?;
                (restorable && self.cache.contains(recorded)).then(|| recorded.clone())
            }),
        }
    }

    /// What stage `i` runs with (command, deps, params); `None` when a dep is
    /// missing.
    fn key(&self, i: usize, restorable: bool) -> Option<Key> {
        let s = &self.stages[i];
        let deps: Option<Vec<Out>> = s.deps.iter().map(|d| self.dep(*d, restorable)).collect();
        let params = |ps: &[usize]| ps.iter().map(|p| self.now.params[*p]).collect::<Vec<_>>();
        Some((self.cmd(i), format!("{:?}", (deps?, params(&s.listed)))))
    }

    /// Stage `i`'s command as it runs: its version, and the params written into it.
    fn cmd(&self, i: usize) -> String {
        let inlined: Vec<u32> = self.stages[i].inlined.iter().map(|p| self.now.params[*p]).collect();
        format!("{:?}", (self.now.cmds[i], inlined))
    }

    /// Whether stage `i`'s recorded inputs are the ones it would run with now
    /// (for a frozen stage, its command only: deps and params are not looked at).
    fn inputs_recorded(&self, i: usize, recorded: &Key, restorable: bool) -> bool {
        if self.now.frozen[i] {
            recorded.0 == self.cmd(i)
        } else {
            self.key(i, restorable).as_ref() == Some(recorded)
        }
    }

    /// What stage `i`'s command writes now.
    fn produce(&self, i: usize) -> Out {
        let s = &self.stages[i];
        let mut content = format!("# s{i} v={}\n", self.now.cmds[i]).into_bytes();
        for d in &s.deps {
            content.extend(self.dep(*d, false).unwrap().bytes());
        }
        for p in &s.listed {
            content.extend(format!("{}: {}\n", PARAMS[*p], self.now.params[*p]).bytes());
        }
        for p in &s.inlined {
            content.extend(format!("{0}={1}\n", PARAMS[*p], self.now.params[*p]).bytes());
        }
        if s.dir_out {
            Out::Dir(
                [
                    ("x".to_string(), content),
                    ("y".to_string(), format!("s{i}\n").into_bytes()),
                ]
                .into(),
            )
        } else {
            Out::File(content)
        }
    }

    /// `repro` of stage `i`: what it does, and the state it leaves.
    fn repro(&mut self, i: usize) -> &'static str {
        self.repro_with(i, true)
    }

    /// `repro` of stage `i`, with `--no-commit` unless `commit`: then nothing
    /// is stored, nor restored from the run cache (the stage runs instead),
    /// and no run-cache entry is written.
    fn repro_with(&mut self, i: usize, commit: bool) -> &'static str {
        if let Some((k, recorded)) = &self.now.lock[i]
            && self.now.frozen[i]
            && self.inputs_recorded(i, k, false)
        {
            // Frozen, its command unchanged: it runs only for its out, and a
            // skip or restore writes no run-cache entry (its deps were not looked at).
            let recorded = recorded.clone();
            let metrics_kept = self.metrics[i] == self.metrics_of(i, &recorded);
            match &self.outs[i] {
                _ if self.outs_match(i, &recorded) => {
                    if commit {
                        self.store(&recorded);
                    }
                    return SKIPPED;
                }
                None if metrics_kept && self.cache.contains(&recorded) => {
                    self.outs[i] = Some(recorded);
                    return RESTORED;
                }
                _ => {}
            }
        }
        let key = self.key(i, false).expect("a dep of a stage to reproduce is missing");
        let persist = self.stages[i].persist;
        let from_run_cache =
            commit && !persist && self.runs.get(&(i, key.clone())).is_some_and(|o| self.cache.contains(o));
        let action = match &self.now.lock[i] {
            // A metrics file is not in the cache: missing or edited, it makes the stage run.
            Some((k, recorded)) if *k == key && !self.now.frozen[i] => match &self.outs[i] {
                _ if self.outs_match(i, recorded) => SKIPPED,
                None if self.metrics[i] == self.metrics_of(i, recorded) && self.cache.contains(recorded) => RESTORED,
                _ if from_run_cache => FROM_RUN_CACHE,
                _ => RAN,
            },
            _ if from_run_cache => FROM_RUN_CACHE,
            _ => RAN,
        };
        let out = match (action, &self.now.lock[i], &self.outs[i]) {
            (SKIPPED | RESTORED, Some((_, recorded)), _) => recorded.clone(),
            (FROM_RUN_CACHE, ..) => self.runs[&(i, key.clone())].clone(),
            // What a persist out held stays unless the command writes over it.
            (_, _, Some(Out::Dir(before))) if persist => match self.produce(i) {
                Out::Dir(made) => Out::Dir(before.clone().into_iter().chain(made).collect()),
                file => file,
            },
            _ => self.produce(i),
        };
        // Whatever repro does, the run cache has an entry for it after (a
        // skipped or restored stage's missing one, after a gc, is written),
        // unless the stage keeps its outs.
        if commit && !persist {
            self.runs.insert((i, key.clone()), out.clone());
        }
        self.outs[i] = Some(out.clone());
        self.metrics[i] = self.metrics_of(i, &out);
        self.now.lock[i] = Some((key, out.clone()));
        if commit {
            self.store(&out);
        }
        action
    }

    /// `commit` of stage `i` (with `--force` if `force`): `Err` if it must be
    /// refused (changing nothing), else the state it leaves. Not for a metrics
    /// file other than its out's (the model derives a recorded one from its out).
    fn commit(&mut self, i: usize, force: bool) -> Result<(), &'static str> {
        let Some((recorded_key, _)) = self.now.lock[i].clone() else {
            return Err("no entry in dvt.lock");
        };
        let Some(out) = self.outs[i].clone() else {
            return Err("its out is missing");
        };
        let now = self.key(i, false).expect("a dep of a stage to commit is missing");
        // A frozen stage keeps the deps and params it was recorded with (its
        // command alone is compared), unless forced.
        let key = match self.now.frozen[i] && !force {
            true => (now.0, recorded_key.1.clone()),
            false => now,
        };
        if key != recorded_key && !force {
            return Err("its inputs changed");
        }
        // Forced over changed inputs, it is recorded, but not as a run of them.
        if key == recorded_key && !self.stages[i].persist {
            self.runs.insert((i, key.clone()), out.clone());
        }
        self.now.lock[i] = Some((key, out.clone()));
        self.store(&out);
        Ok(())
    }

    /// `out` goes into the cache.
    fn store(&mut self, out: &Out) {
        self.cache.insert(out.clone());
        if matches!(out, Out::Dir(_)) {
            self.manifests.insert(out.clone());
        }
    }

    /// Whether the remote holds `out`.
    fn pushed(&self, out: &Out) -> bool {
        self.remote.as_ref().is_some_and(|r| r.contains(out))
    }

    /// The outs `dvt.lock` records now.
    fn recorded(&self) -> impl Iterator<Item = &Out> {
        self.now.lock.iter().flatten().map(|(_, o)| o)
    }

    /// The stages `status` lists as stale: those whose command, deps or
    /// params changed since `dvt.lock`, whose out was edited or is missing
    /// with no copy in the cache, and every stage downstream of one (a frozen
    /// stage: its command and out only).
    fn stale(&self) -> BTreeSet<String> {
        let mut stale = BTreeSet::new();
        for i in 0..self.stages.len() {
            let upstream = !self.now.frozen[i]
                && self.stages[i]
                    .deps
                    .iter()
                    .any(|d| matches!(d, Dep::Stage(j) if stale.contains(j)));
            let own = match &self.now.lock[i] {
                None => true,
                Some((k, recorded)) => {
                    !self.inputs_recorded(i, k, true)
                        || self.metrics[i] != self.metrics_of(i, recorded)
                        || match &self.outs[i] {
                            None => !self.cache.contains(recorded),
                            Some(o) => o != recorded,
                        }
                }
            };
            if upstream || own {
                stale.insert(i);
            }
        }
        stale.into_iter().map(|i| format!("s{i}")).collect()
    }

    /// The stages that depend on `i`, directly or not, with `i`; a frozen
    /// stage (other than `i`) is not selected, nor anything through it.
    fn downstream(&self, i: usize) -> BTreeSet<usize> {
        let mut down = BTreeSet::from([i]);
        for j in i + 1..self.stages.len() {
            if !self.now.frozen[j]
                && self.stages[j]
                    .deps
                    .iter()
                    .any(|d| matches!(d, Dep::Stage(k) if down.contains(k)))
            {
                down.insert(j);
            }
        }
        down
    }

    /// The stages `i` depends on, directly or not, with `i`; a frozen stage's
    /// own deps are not selected through it.
    fn upstream(&self, i: usize) -> BTreeSet<usize> {
        let mut up = BTreeSet::from([i]);
        for j in (0..i).rev() {
            if up
                .iter()
                .any(|k| !self.now.frozen[*k] && self.stages[*k].deps.contains(&Dep::Stage(j)))
            {
                up.insert(j);
            }
        }
        up
    }

    /// Whether every dep of the stages in `chosen` made outside them is there.
    fn deps_present(&self, chosen: &BTreeSet<usize>) -> bool {
        chosen.iter().all(|i| {
            self.stages[*i]
                .deps
                .iter()
                .all(|d| !matches!(d, Dep::Stage(j) if !chosen.contains(j) && self.outs[*j].is_none()))
        })
    }

    /// Whether `checkout` of `dvt.lock` would lose work: an out in the
    /// workspace, other than the recorded one, with a file the cache lacks.
    fn checkout_loses_work(&self) -> bool {
        let blobs: HashSet<&Vec<u8>> = self.cache.iter().flat_map(Out::blobs).collect();
        self.outs.iter().zip(&self.now.lock).any(|(o, l)| match (o, l) {
            (Some(o), Some((_, recorded))) => o != recorded && o.blobs().iter().any(|b| !blobs.contains(b)),
            _ => false,
        })
    }

    /// Checks the outs on disk and `status --json` against the model.
    fn check(&self, env: &TestEnv, ctx: &dyn Fn() -> String) {
        for i in 0..self.stages.len() {
            let disk = Out::read(&env.path(&self.out_path(i)));
            assert!(
                disk == self.outs[i],
                "out of s{i}: {disk:?} on disk, {:?} in the model; {}",
                self.outs[i],
                ctx()
            );
            if self.stages[i].metrics {
                let disk = std::fs::read(env.path(&Model::metrics_path(i))).ok();
                assert!(
                    disk == self.metrics[i],
                    "metrics of s{i}: {disk:?} on disk, {:?} in the model; {}",
                    self.metrics[i],
                    ctx()
                );
            }
        }
        let status = env.dvt(&["status", "--json"]).json();
        let stale: BTreeSet<String> = status["stale_stages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["stage"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(stale, self.stale(), "status's stale stages; {}", ctx());
        // Each out's state in the workspace, and whether the cache lacks it.
        let states: BTreeMap<String, (String, bool)> = status["pointers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                let lacking = !p["missing_from_cache"].as_array().unwrap().is_empty();
                (
                    p["path"].as_str().unwrap().to_string(),
                    (p["workspace"].as_str().unwrap().to_string(), lacking),
                )
            })
            .collect();
        for (i, recorded) in self.now.lock.iter().enumerate() {
            let Some((_, recorded)) = recorded else { continue };
            let want = match &self.outs[i] {
                None => "missing",
                Some(o) if o == recorded => "unchanged",
                Some(_) => "modified",
            };
            let lacking = !self.cache.contains(recorded);
            assert_eq!(
                states.get(&self.out_path(i)),
                Some(&(want.to_string(), lacking)),
                "status of out s{i} (state, not in cache); {}",
                ctx()
            );
        }
    }
}

/// Runs `dvt repro ARGS --json` and checks what it did to each stage, and
/// which commands ran, against `want` (stage -> action).
fn check_repro(env: &TestEnv, m: &Model, args: &[&str], want: &BTreeMap<String, &str>, ctx: &dyn Fn() -> String) {
    let _ = std::fs::remove_file(&m.log);
    let r = env.dvt(&[&["repro", "--json"][..], args].concat());
    assert_eq!(r.code, 0, "dvt repro {args:?}: {}; {}", r.stderr, ctx());
    let got: BTreeMap<String, String> = common::stage_actions(&r.json()).into_iter().collect();
    let want_owned: BTreeMap<String, String> = want.iter().map(|(k, v)| (k.clone(), v.to_string())).collect();
    assert_eq!(got, want_owned, "dvt repro {args:?}: {}; {}", r.stdout, ctx());
    let ran: BTreeSet<String> = std::fs::read_to_string(&m.log)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect();
    let want_ran: BTreeSet<String> = want
        .iter()
        .filter(|(_, a)| **a == RAN)
        .map(|(s, _)| s.clone())
        .collect();
    assert_eq!(ran, want_ran, "the commands that ran in dvt repro {args:?}; {}", ctx());
}

/// `dvt ARGS` (`checkout` or `pull`), which puts `dvt.lock`'s outs in place:
/// it must refuse, changing nothing, when that would lose an edited out the
/// cache lacks; `checkout --force` then does it.
fn outs_checked_out(
    env: &TestEnv,
    m: &mut Model,
    args: &[&str],
    log: &mut Vec<String>,
    ctx: &dyn Fn(&[String]) -> String,
) {
    log.push(format!("dvt {}", args.join(" ")));
    let mut r = env.dvt(args);
    if m.checkout_loses_work() {
        assert_eq!(r.code, 1, "{args:?} over edited outs: {}; {}", r.stderr, ctx(log));
        assert!(r.stderr.contains("--force"), "{}", r.stderr);
        m.check(env, &|| ctx(log));
        log.push("dvt checkout --force".into());
        r = env.dvt(&["checkout", "--force"]);
    }
    assert_eq!(r.code, 0, "{args:?}: {}; {}", r.stderr, ctx(log));
    m.outs = m.now.lock.iter().map(|l| l.as_ref().map(|(_, o)| o.clone())).collect();
}

fn run_model(seed: u64, steps: usize) {
    let env = TestEnv::new();
    let remote = env.home.join("remote");
    env.dvt(&["remote", "add", "-d", "store", remote.to_str().unwrap()])
        .ok();
    let mut rng = Rng(seed);
    let mut m = Model::new(&mut rng, env.home.join("runs.log"));
    m.write_inputs(&env);
    let mut log: Vec<String> = vec![format!("stages: {:?}", m.stages)];
    // Each commit: its id, its version, and the metrics files it holds.
    let mut versions: Vec<(String, Version, Metrics)> = Vec::new();
    let mut hand_edits = 0;
    for step in 0..steps {
        let ctx = |log: &[String]| format!("seed {seed}, step {step}; so far:\n  {}", log.join("\n  "));
        let n = m.stages.len();
        let i = rng.below(n);
        // The first step runs the whole pipeline.
        let what = if step == 0 { 21 } else { rng.below(27) };
        match what {
            0 => {
                let k = rng.below(SOURCES.len());
                m.now.sources[k] = rng.pick(&CONTENTS).as_bytes().to_vec();
                env.write(SOURCES[k], &m.now.sources[k]);
                log.push(format!(
                    "{} = {:?}",
                    SOURCES[k],
                    String::from_utf8_lossy(&m.now.sources[k])
                ));
            }
            1 => {
                let name = format!("f{}", 1 + rng.below(3));
                let path = format!("{SOURCE_DIR}/{name}");
                if m.now.dir.contains_key(&name) && m.now.dir.len() > 1 && rng.below(2) == 0 {
                    m.now.dir.remove(&name);
                    std::fs::remove_file(env.path(&path)).unwrap();
                    log.push(format!("rm {path}"));
                } else {
                    let content = rng.pick(&CONTENTS).as_bytes().to_vec();
                    env.write(&path, &content);
                    log.push(format!("{path} = {:?}", String::from_utf8_lossy(&content)));
                    m.now.dir.insert(name, content);
                }
            }
            2 => {
                let p = rng.below(PARAMS.len());
                m.now.params[p] = 1 + rng.below(3) as u32;
                env.write("params.yaml", m.params_yaml());
                log.push(format!("{} = {}", PARAMS[p], m.now.params[p]));
            }
            3 => {
                m.now.cmds[i] = rng.below(3) as u32;
                env.write("dvt.toml", m.toml());
                log.push(format!("command of s{i}: version {}", m.now.cmds[i]));
            }
            4..=6 if m.stages[i].metrics && m.metrics[i].is_some() && rng.below(3) == 0 => {
                let path = Model::metrics_path(i);
                hand_edits += 1;
                m.metrics[i] = if what == 6 {
                    std::fs::remove_file(env.path(&path)).unwrap();
                    None
                } else {
                    let edited = format!("{{\"bytes\": -{hand_edits}}}\n").into_bytes();
                    env.write(&path, &edited);
                    Some(edited)
                };
                log.push(format!(
                    "{path} edited by hand: {:?}",
                    m.metrics[i].as_ref().map(|b| String::from_utf8_lossy(b))
                ));
            }
            4..=6 => {
                let path = m.out_path(i);
                let Some(out) = m.outs[i].clone() else { continue };
                hand_edits += 1;
                let edited = format!("edited by hand {hand_edits}\n").into_bytes();
                m.outs[i] = match (what, out) {
                    (4, Out::File(_)) => {
                        env.write(&path, &edited);
                        Some(Out::File(edited))
                    }
                    (4, Out::Dir(mut files)) => {
                        env.write(&format!("{path}/x"), &edited);
                        files.insert("x".into(), edited);
                        Some(Out::Dir(files))
                    }
                    (5, Out::Dir(mut files)) => {
                        if rng.below(2) == 0 && files.remove("y").is_some() {
                            std::fs::remove_file(env.path(&format!("{path}/y"))).unwrap();
                        } else {
                            // A file the command does not write.
                            env.write(&format!("{path}/z"), &edited);
                            files.insert("z".into(), edited);
                        }
                        Some(Out::Dir(files))
                    }
                    _ => {
                        let p = env.path(&path);
                        if p.is_dir() {
                            std::fs::remove_dir_all(p).unwrap();
                        } else {
                            std::fs::remove_file(p).unwrap();
                        }
                        None
                    }
                };
                log.push(format!("{path} edited by hand: {:?}", m.outs[i]));
            }
            7 => {
                // One stage and what it needs (a frozen stage's deps aside,
                // which may be missing then).
                let chosen = m.upstream(i);
                if !m.deps_present(&chosen) {
                    continue;
                }
                let name = format!("s{i}");
                log.push(format!("dvt repro {name}"));
                let want = chosen.into_iter().map(|j| (format!("s{j}"), m.repro(j))).collect();
                check_repro(&env, &m, &[&name], &want, &|| ctx(&log));
            }
            8 | 9 => {
                // One stage alone, or with what depends on it, deps as they are.
                let (flag, chosen) = if what == 8 {
                    ("--single-item", BTreeSet::from([i]))
                } else {
                    ("--downstream", m.downstream(i))
                };
                if !m.deps_present(&chosen) {
                    continue;
                }
                let name = format!("s{i}");
                log.push(format!("dvt repro {flag} {name}"));
                let want = chosen.into_iter().map(|j| (format!("s{j}"), m.repro(j))).collect();
                check_repro(&env, &m, &[flag, &name], &want, &|| ctx(&log));
            }
            10 | 11 => {
                env.git(&["add", "-A"]);
                env.git(&["commit", "-q", "--allow-empty", "-m", &format!("step {step}")]);
                let sha = env.git(&["rev-parse", "HEAD"]).stdout.trim().to_string();
                log.push(format!("commit {sha}"));
                // Metrics files are git's: the commit holds them as they are.
                versions.push((sha, m.now.clone(), m.metrics.clone()));
            }
            12 | 13 => {
                if versions.is_empty() {
                    continue;
                }
                let (sha, version, metrics) = versions[rng.below(versions.len())].clone();
                // As a switch of branches would, files the version lacks go.
                std::fs::remove_dir_all(env.path("in")).unwrap();
                env.git(&["checkout", "-q", &sha, "--", "."]);
                log.push(format!("git checkout {sha} -- ."));
                m.now = version;
                // A metrics file the commit holds comes back; one it lacks stays as it is.
                for (now, then) in m.metrics.iter_mut().zip(metrics) {
                    if then.is_some() {
                        *now = then;
                    }
                }
                let cached = m.recorded().all(|o| m.cache.contains(o));
                if cached && rng.below(3) != 0 {
                    outs_checked_out(&env, &mut m, &["checkout"], &mut log, &ctx);
                }
            }
            14 => {
                log.push("dvt gc -w -f".into());
                let before = env.object_ids();
                let r = env.dvt(&["gc", "-w", "-f"]);
                // gc keeps what the workspace's and HEAD's dvt.lock name; a
                // directory whose manifest is gone (an earlier gc, then a
                // commit of an older dvt.lock; `--no-commit`) is read from the
                // remote, or made from the workspace if it holds that out as
                // the workspace's dvt.lock records it; else gc stops before it
                // deletes anything: what the directory holds cannot be known.
                let head = versions.last().map(|(_, v, _)| &v.lock);
                let kept: HashSet<Out> = [Some(&m.now.lock), head]
                    .into_iter()
                    .flatten()
                    .flatten()
                    .flatten()
                    .map(|(_, o)| o.clone())
                    .collect();
                let in_workspace = |o: &Out| {
                    (0..n).any(|i| m.now.lock[i].as_ref().is_some_and(|(_, r)| r == o) && m.outs[i].as_ref() == Some(o))
                };
                let unread: Vec<&Out> = kept
                    .iter()
                    .filter(|o| matches!(o, Out::Dir(_)) && !m.manifests.contains(o) && !in_workspace(o))
                    .collect();
                if unread.iter().any(|o| !m.pushed(o)) {
                    assert!(r.code == 1, "gc: {}; {}", r.stderr, ctx(&log));
                    let path = (0..n)
                        .map(|i| m.out_path(i))
                        .find(|p| r.stderr.contains(&format!("`{p}`")));
                    assert!(path.is_some(), "gc's error names no out: {}; {}", r.stderr, ctx(&log));
                    // It may have fetched kept manifests the remote has, before
                    // it came to the one it lacks; it deleted nothing.
                    let after = env.object_ids();
                    let gone: Vec<&String> = before.iter().filter(|id| !after.contains(id)).collect();
                    assert!(gone.is_empty(), "a gc that stopped deleted {gone:?}; {}", ctx(&log));
                    log.push("(stopped: a manifest is missing)".into());
                    m.check(&env, &|| ctx(&log));
                    continue;
                }
                assert_eq!(r.code, 0, "gc: {}; {}", r.stderr, ctx(&log));
                let fetched: Vec<Out> = unread.into_iter().cloned().collect();
                m.manifests.extend(fetched);
                m.cache.retain(|o| kept.contains(o));
                m.manifests.retain(|o| kept.contains(o));
                let cache = &m.cache;
                m.runs.retain(|_, o| cache.contains(o));
            }
            15 => {
                // Killed midway (its stages' commands may finish after it),
                // then run again: what it leaves must be what a whole run does.
                let after = Duration::from_micros(rng.below(60_000) as u64);
                log.push(format!("dvt repro killed after {after:?}"));
                env.dvt_killed_after(&["repro"], after);
                std::thread::sleep(Duration::from_millis(300));
                let r = env.dvt(&["fsck"]);
                assert_eq!(r.code, 0, "fsck after a kill: {}; {}", r.stderr, ctx(&log));
                env.dvt(&["repro"]).ok();
                for j in 0..n {
                    m.repro(j);
                }
            }
            16 => {
                // What dvt.lock records goes to the remote, as far as the
                // cache has it (the rest is named, and push fails).
                log.push("dvt push".into());
                let r = env.dvt(&["push"]);
                let complete = m.recorded().all(|o| m.cache.contains(o) || m.pushed(o));
                assert_eq!(r.code, i32::from(!complete), "push: {}; {}", r.stderr, ctx(&log));
                let sent: Vec<Out> = m.recorded().filter(|o| m.cache.contains(o)).cloned().collect();
                m.remote.get_or_insert_default().extend(sent);
            }
            17 => {
                // Fetches what the cache lacks, then checks out dvt.lock's outs.
                if m.remote.is_none() || !m.recorded().all(|o| m.cache.contains(o) || m.pushed(o)) {
                    continue;
                }
                let fetched: Vec<Out> = m.recorded().cloned().collect();
                for o in &fetched {
                    m.store(o);
                }
                outs_checked_out(&env, &mut m, &["pull"], &mut log, &ctx);
            }
            22 => {
                let verb = if m.now.frozen[i] { "unfreeze" } else { "freeze" };
                log.push(format!("dvt {verb} s{i}"));
                env.dvt(&[verb, &format!("s{i}")]).ok();
                m.now.frozen[i] = !m.now.frozen[i];
            }
            23 => {
                // The recorded outs the cache lacks come from the remote first,
                // so that stages are restored rather than run.
                log.push("dvt repro --pull".into());
                let fetched: Vec<Out> = m
                    .recorded()
                    .filter(|o| !m.cache.contains(o) && m.pushed(o))
                    .cloned()
                    .collect();
                for o in &fetched {
                    m.store(o);
                }
                let want = (0..n).map(|j| (format!("s{j}"), m.repro(j))).collect();
                check_repro(&env, &m, &["--pull"], &want, &|| ctx(&log));
            }
            24 | 26 => {
                // Outs as they are (edited by hand, or left by `--no-commit`)
                // recorded; refused when the inputs changed, unless forced.
                // (The model derives a recorded metrics file from its out:
                // not for a metrics file edited by hand.)
                let metrics_made = m.outs[i].as_ref().is_none_or(|o| m.metrics[i] == m.metrics_of(i, o));
                if m.now.lock[i].is_none()
                    || !metrics_made
                    || !m.deps_present(&BTreeSet::from([i]))
                    || m.key(i, false).is_none()
                {
                    continue;
                }
                let force = rng.below(3) == 0;
                let name = format!("s{i}");
                let args: &[&str] = if force {
                    &["commit", "--force", &name]
                } else {
                    &["commit", &name]
                };
                log.push(format!("dvt {}", args.join(" ")));
                let r = env.dvt(args);
                match m.commit(i, force) {
                    Ok(()) => assert_eq!(r.code, 0, "commit: {}; {}", r.stderr, ctx(&log)),
                    Err(why) => {
                        assert_eq!(r.code, 1, "commit must be refused ({why}): {}; {}", r.stderr, ctx(&log));
                        log.push(format!("(refused: {why})"));
                    }
                }
            }
            25 => {
                log.push("dvt repro --no-commit".into());
                let want = (0..n).map(|j| (format!("s{j}"), m.repro_with(j, false))).collect();
                check_repro(&env, &m, &["--no-commit"], &want, &|| ctx(&log));
            }
            _ => {
                log.push("dvt repro".into());
                let want = (0..n).map(|j| (format!("s{j}"), m.repro(j))).collect();
                check_repro(&env, &m, &[], &want, &|| ctx(&log));
            }
        }
        m.check(&env, &|| ctx(&log));
    }
    // Everything run, pushed and committed; a clone pulls it and has nothing to run.
    let want = (0..m.stages.len()).map(|j| (format!("s{j}"), m.repro(j))).collect();
    check_repro(&env, &m, &[], &want, &|| {
        format!("seed {seed}, the end; so far:\n  {}", log.join("\n  "))
    });
    // The runs go along: a clone has them to restore.
    env.dvt(&["push", "--run-cache"]).ok();
    env.git(&["add", "-A"]);
    env.git(&["commit", "-q", "--allow-empty", "-m", "last"]);
    let clone = env.clone_repo();
    clone.dvt(&["pull", "--run-cache"]).ok();
    for (i, out) in m.outs.iter().enumerate() {
        assert_eq!(
            Out::read(&clone.path(&m.out_path(i))).as_ref(),
            out.as_ref(),
            "s{i} in a clone, seed {seed}"
        );
        if m.stages[i].metrics {
            assert_eq!(
                std::fs::read(clone.path(&Model::metrics_path(i))).ok(),
                m.metrics[i],
                "the metrics of s{i} in a clone, seed {seed}"
            );
        }
    }
    let r = clone.dvt(&["repro", "--json"]).ok().json();
    for s in r["stages"].as_array().unwrap() {
        assert_eq!(s["action"], "skipped", "a clone's repro, seed {seed}: {s}");
    }
    // The clone goes back to the inputs of an earlier commit: what ran with
    // them here comes back from the runs it pulled, without running.
    let Some((sha, version, metrics)) = versions.get(rng.below(versions.len() + 1)).cloned() else {
        return;
    };
    std::fs::remove_dir_all(clone.path("in")).unwrap();
    clone.git(&["checkout", "-q", &sha, "--", "."]);
    let mut c = Model {
        stages: m.stages.clone(),
        now: version,
        outs: m.outs.clone(),
        metrics: m
            .metrics
            .iter()
            .zip(metrics)
            .map(|(now, then)| then.or(now.clone()))
            .collect(),
        cache: m.recorded().chain(m.runs.values()).cloned().collect(),
        manifests: HashSet::new(),
        remote: None,
        runs: m.runs.clone(),
        log: m.log.clone(),
    };
    let ctx = || format!("seed {seed}, a clone at {sha}; so far:\n  {}", log.join("\n  "));
    let want = (0..c.stages.len()).map(|j| (format!("s{j}"), c.repro(j))).collect();
    check_repro(&clone, &c, &[], &want, &ctx);
    c.check(&clone, &ctx);
}

#[test]
fn random_pipeline_steps_match_the_model_seed_1() {
    run_model(1, 40);
}

#[test]
fn random_pipeline_steps_match_the_model_seed_2() {
    run_model(2, 40);
}

/// A sweep, when asked for: `DVT_PIPELINE_SEEDS=1-50` (or `7`) and optionally
/// `DVT_PIPELINE_STEPS=150` (default 40), e.g. after a change to `repro`.
#[test]
fn random_pipeline_steps_sweep_of_the_seeds_asked_for() {
    let Some(seeds) = common::seeds_asked_for("DVT_PIPELINE_SEEDS") else {
        return;
    };
    let steps = std::env::var("DVT_PIPELINE_STEPS").map_or(40, |s| s.parse().unwrap());
    for seed in seeds {
        run_model(seed, steps);
    }
}
