//! A hermetic test environment: a temp git repo with dvt initialised, a clean
//! HOME, no global git config, no progress bars; and helpers to run the real
//! `dvt` binary in it.
#![allow(dead_code, clippy::disallowed_methods, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const DVT: &str = env!("CARGO_BIN_EXE_dvt");

pub struct TestEnv {
    // Unmounted before the temp dir holding it is deleted (fields drop in order).
    _disk: Option<SmallDisk>,
    _tmp: tempfile::TempDir,
    pub root: PathBuf,
    pub home: PathBuf,
}

/// What a command did: exit code and both streams as text.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    #[track_caller]
    pub fn ok(self) -> Run {
        assert_eq!(
            self.code, 0,
            "command failed:\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }

    #[track_caller]
    pub fn fails(self) -> Run {
        assert_eq!(
            self.code, 1,
            "expected exit code 1:\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.stdout))
    }
}

impl TestEnv {
    /// A git repo with `dvt init` done.
    pub fn new() -> TestEnv {
        let env = TestEnv::bare();
        env.git(&["init", "-q", "-b", "main"]);
        env.dvt(&["init"]).ok();
        env
    }

    /// An empty directory, not a git repo.
    pub fn bare() -> TestEnv {
        let tmp = tempfile::tempdir().expect("temp dir");
        let root = tmp.path().join("repo");
        let home = tmp.path().join("home");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&home).unwrap();
        let root = root.canonicalize().unwrap();
        TestEnv {
            _disk: None,
            _tmp: tmp,
            root,
            home,
        }
    }

    /// A git repo with `dvt init` done, on a tmpfs of `mib` MiB of its own, so
    /// that the disk fills up. None where tmpfs cannot be mounted (not root).
    pub fn on_small_disk(mib: u32) -> Option<TestEnv> {
        let mut env = TestEnv::bare();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(&env.root)
            .output()
            .is_ok_and(|o| o.status.success());
        if !ok {
            eprintln!("cannot mount a tmpfs here (needs root): not testing a full disk");
            return None;
        }
        env._disk = Some(SmallDisk(env.root.clone()));
        env.git(&["init", "-q", "-b", "main"]);
        env.dvt(&["init"]).ok();
        Some(env)
    }

    /// Fills the disk holding the repo up to `free` bytes, with the file `rel`.
    pub fn fill_disk_but(&self, rel: &str, free: u64) {
        use std::io::Write;
        let path = self.path(rel);
        let mut f = std::fs::File::create(&path).unwrap();
        let block = vec![0x5a_u8; 64 << 10];
        let mut len = 0u64;
        while f.write_all(&block).is_ok() {
            len += block.len() as u64;
        }
        drop(f);
        // A failed write may leave part of a block; cut back to whole blocks.
        let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.set_len(len.saturating_sub(free)).unwrap();
    }

    fn command(&self, program: &str, dir: &Path) -> Command {
        let mut c = Command::new(program);
        c.current_dir(dir)
            .env("HOME", &self.home)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_SYSTEM", "/dev/null")
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.invalid")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.invalid")
            .env("NO_COLOR", "1")
            // The global config is under HOME; no test reads this machine's.
            .env_remove("XDG_CONFIG_HOME")
            // Nor its cache (dvt's clones of repositories read by URL).
            .env_remove("XDG_CACHE_HOME")
            .env_remove("DVT_GLOBAL_CONFIG_DIR")
            .env("DVT_SYSTEM_CONFIG_DIR", self.home.join("etc-dvt"))
            .env_remove("CI")
            // A dvt installed on this machine (another version) must not run
            // from the hooks of `env.git`: only `with_dvt` puts one on PATH.
            .env("PATH", path_without_dvt());
        c
    }

    /// The command line for `dvt ARGS` in the repo root (for spawning).
    pub fn dvt_cmd(&self, args: &[&str]) -> Command {
        let mut c = self.command(DVT, &self.root);
        c.args(args);
        c
    }

    /// Starts `dvt ARGS` in the background, its stdout and stderr piped (read
    /// them with `wait_with_output`).
    pub fn dvt_spawn(&self, args: &[&str]) -> std::process::Child {
        self.dvt_cmd(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start dvt")
    }

    /// Runs `dvt ARGS` with `input` on its stdin.
    pub fn dvt_with_input(&self, args: &[&str], input: &str) -> Run {
        use std::io::Write;
        let mut child = self
            .dvt_cmd(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start dvt");
        // A command that stops reading early closes the pipe: not an error here.
        let _ = child.stdin.take().expect("stdin").write_all(input.as_bytes());
        Run::from(child.wait_with_output().expect("wait for dvt"))
    }

    /// Starts every command of `commands` (each the arguments of one `dvt`)
    /// before waiting for any, then waits for all: how the tests of two or
    /// more processes at once start them.
    pub fn dvt_at_once(&self, commands: &[Vec<String>]) -> Vec<Run> {
        let children: Vec<_> = commands
            .iter()
            .map(|args| self.dvt_spawn(&args.iter().map(String::as_str).collect::<Vec<_>>()))
            .collect();
        children
            .into_iter()
            .map(|c| Run::from(c.wait_with_output().expect("wait for dvt")))
            .collect()
    }

    /// Starts `dvt ARGS`, kills it with SIGKILL `after` that long, and waits for it.
    pub fn dvt_killed_after(&self, args: &[&str], after: std::time::Duration) {
        let mut child = self
            .dvt_cmd(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start dvt");
        std::thread::sleep(after);
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Starts `dvt ARGS`, a command that takes the repository lock; once it holds
    /// the lock (so it is past its start-up), waits `after`, sends it `signal`
    /// (`INT`, `TERM`…) and returns what it did.
    pub fn dvt_signalled_after(&self, args: &[&str], signal: &str, after: std::time::Duration) -> Run {
        let child = self
            .dvt_cmd(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start dvt");
        let holder = format!("pid {}:", child.id());
        let lock = self.path(".dvt/tmp/lock");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while !std::fs::read_to_string(&lock).is_ok_and(|s| s.starts_with(&holder))
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(std::time::Duration::from_micros(200));
        }
        std::thread::sleep(after);
        let _ = Command::new("kill")
            .args([&format!("-{signal}"), &child.id().to_string()])
            .output();
        Run::from(child.wait_with_output().expect("wait for dvt"))
    }

    /// `dvt ARGS` on a terminal (a pseudo-terminal made by `script`): what a user
    /// sees, stdout and stderr together, in `stdout`.
    #[must_use = "check the outcome with .ok() or .fails()"]
    pub fn dvt_on_terminal(&self, args: &[&str]) -> Run {
        let quote = |s: &str| format!("'{}'", s.replace('\'', "'\\''"));
        let line: Vec<String> = std::iter::once(DVT).chain(args.iter().copied()).map(quote).collect();
        self.run("script", &["-qec", &line.join(" "), "/dev/null"])
    }

    #[must_use = "check the outcome with .ok() or .fails()"]
    pub fn dvt(&self, args: &[&str]) -> Run {
        self.dvt_in(&self.root, args)
    }

    #[must_use = "check the outcome with .ok() or .fails()"]
    pub fn dvt_in(&self, dir: &Path, args: &[&str]) -> Run {
        Run::from(self.command(DVT, dir).args(args).output().expect("run dvt"))
    }

    /// `git clone` of this repo into a fresh environment.
    pub fn clone_repo(&self) -> TestEnv {
        self.clone_with(&[self.root.to_str().unwrap()])
    }

    /// This repo's `file://` URL, which git clones as from a server (`--depth`,
    /// `--filter`), not by copying files.
    pub fn url(&self) -> String {
        format!("file://{}", self.root.display())
    }

    /// `git clone -q ARGS .` into a new environment.
    pub fn clone_with(&self, args: &[&str]) -> TestEnv {
        let b = TestEnv::bare();
        let out = self
            .command("git", &b.root)
            .args(["clone", "-q"])
            .args(args)
            .arg(".")
            .output()
            .expect("run git clone");
        Run::from(out).ok();
        b
    }

    /// Runs a program (not dvt or git) in the repo root with this environment.
    pub fn run(&self, program: &str, args: &[&str]) -> Run {
        Run::from(
            self.command(program, &self.root)
                .args(args)
                .output()
                .expect("run program"),
        )
    }

    pub fn git(&self, args: &[&str]) -> Run {
        Run::from(self.command("git", &self.root).args(args).output().expect("run git")).ok()
    }

    /// [`TestEnv::commit`] with author and committer date `date` (as git reads
    /// `GIT_COMMITTER_DATE`, e.g. `2026-01-01T12:00:00Z`).
    pub fn commit_at(&self, msg: &str, date: &str) {
        self.git(&["add", "-A"]);
        let out = self
            .command("git", &self.root)
            .args(["commit", "-q", "-m", msg])
            .env("GIT_AUTHOR_DATE", date)
            .env("GIT_COMMITTER_DATE", date)
            .output()
            .expect("run git");
        Run::from(out).ok();
    }

    /// `git add -A` and `git commit -m MSG`: pointers and `.gitignore`s go into git.
    pub fn commit(&self, msg: &str) {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "-m", msg]);
    }

    /// `git ARGS` with the `dvt` under test first on `PATH` (for hooks); not checked.
    pub fn git_with_dvt(&self, args: &[&str]) -> Run {
        Run::from(self.with_dvt("git", &self.root).args(args).output().expect("run git"))
    }

    /// `sh -c SCRIPT` in `dir`, as a user types it, with the `dvt` under test
    /// first on `PATH`; not checked.
    pub fn sh_in(&self, dir: &Path, script: &str) -> Run {
        Run::from(self.with_dvt("sh", dir).args(["-c", script]).output().expect("run sh"))
    }

    /// Runs the Python program `script` with arguments `args` in `dir`, with
    /// `dvt` on PATH and the repository's Python module (`python/dvt`) importable.
    pub fn python_in(&self, dir: &Path, script: &str, args: &[&str]) -> Run {
        let module = concat!(env!("CARGO_MANIFEST_DIR"), "/python");
        let mut c = self.with_dvt("python3", dir);
        c.env("PYTHONPATH", module)
            .env_remove("DVT")
            .args(["-c", script])
            .args(args);
        Run::from(c.output().expect("run python3"))
    }

    fn with_dvt(&self, program: &str, dir: &Path) -> Command {
        let bin_dir = Path::new(DVT).parent().unwrap();
        let path = format!("{}:{}", bin_dir.display(), path_without_dvt());
        let mut c = self.command(program, dir);
        c.env("PATH", path);
        c
    }

    /// Holds lock file `rel` alone, as a running dvt does, with `holder` written in
    /// it (what dvt names in its message); released when the file is dropped.
    /// Holds the exclusive lock on `rel`, as a dvt process would, with
    /// `holder` written in the file for the error messages to name.
    pub fn hold_lock(&self, rel: &str, holder: &str) -> HeldLock {
        let path = self.path(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, holder).unwrap();
        HeldLock::exclusive(&path)
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    pub fn write(&self, rel: &str, content: impl AsRef<[u8]>) {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }

    pub fn read(&self, rel: &str) -> Vec<u8> {
        std::fs::read(self.path(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
    }

    /// The permission bits of `rel`.
    pub fn mode(&self, rel: &str) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(self.path(rel)).unwrap_or_else(|e| panic!("stat {rel}: {e}"));
        meta.permissions().mode()
    }

    pub fn exists(&self, rel: &str) -> bool {
        self.path(rel).symlink_metadata().is_ok()
    }

    /// Waits until files written so far are older than the stat cache's racy
    /// window (files changed within the last moments are always re-hashed).
    pub fn settle(&self) {
        std::thread::sleep(std::time::Duration::from_millis(120));
    }

    /// The cache, as a store of objects.
    pub fn store(&self) -> Store {
        Store::at(self.path(".dvt/cache"))
    }

    /// The stored form of object `hex` (loose or packed).
    pub fn stored(&self, hex: &str) -> Vec<u8> {
        self.store().stored(hex)
    }

    /// Changes object `hex`'s stored bytes in place (same length when packed).
    pub fn damage(&self, hex: &str, f: impl FnOnce(&mut Vec<u8>)) {
        self.store().damage(hex, f)
    }

    /// The ids of every object in the cache, packed or not, sorted.
    pub fn object_ids(&self) -> Vec<String> {
        self.store().ids()
    }

    /// Whether object `hex` is in the cache, packed or not.
    pub fn has_object(&self, hex: &str) -> bool {
        self.store().has(hex)
    }

    /// Deletes object `hex` from the cache, packed or not.
    pub fn remove_object(&self, hex: &str) {
        self.store().remove(hex)
    }

    /// Every object file in the cache.
    pub fn objects(&self) -> Vec<PathBuf> {
        walk(&self.path(".dvt/cache/objects"))
            .into_iter()
            .filter(|p| p.is_file())
            .collect()
    }
}

/// A cache-shaped directory: a repo's cache, or a directory remote (objects with a
/// file each, and packs), read and changed through dvt's own cache code.
/// A tmpfs mounted for one test, unmounted when dropped.
struct SmallDisk(PathBuf);

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).output();
    }
}

pub struct Store {
    cache: dvt::cache::Cache,
}

impl Store {
    pub fn at(root: impl Into<PathBuf>) -> Store {
        Store {
            cache: dvt::cache::Cache::new(root.into(), 1),
        }
    }

    /// The file holding object `hex` and the byte range of its stored form in it.
    pub fn locate(&self, hex: &str) -> (PathBuf, std::ops::Range<u64>) {
        self.cache
            .locate(&hex.parse().unwrap())
            .unwrap()
            .unwrap_or_else(|| panic!("object {hex} is in {}", self.cache.root().display()))
    }

    /// The stored form of object `hex` (loose or packed).
    pub fn stored(&self, hex: &str) -> Vec<u8> {
        use std::os::unix::fs::FileExt;
        let (path, range) = self.locate(hex);
        let mut out = vec![0u8; (range.end - range.start) as usize];
        std::fs::File::open(path)
            .unwrap()
            .read_exact_at(&mut out, range.start)
            .unwrap();
        out
    }

    /// Changes object `hex`'s stored bytes in place (same length when packed).
    pub fn damage(&self, hex: &str, f: impl FnOnce(&mut Vec<u8>)) {
        let (path, range) = self.locate(hex);
        let mut file = std::fs::read(&path).unwrap();
        let mut stored = file[range.start as usize..range.end as usize].to_vec();
        f(&mut stored);
        if range.start == 0 && range.end == file.len() as u64 {
            file = stored;
        } else {
            assert_eq!(
                stored.len() as u64,
                range.end - range.start,
                "a packed object keeps its length"
            );
            file[range.start as usize..range.end as usize].copy_from_slice(&stored);
        }
        std::fs::write(&path, file).unwrap();
    }

    /// The ids of every object, packed or not, sorted.
    /// Whether object `hex` reads back whole here: its stored form decodes to
    /// content that has its id.
    pub fn intact(&self, hex: &str) -> bool {
        self.cache.verify(&hex.parse().unwrap()).is_ok()
    }

    pub fn ids(&self) -> Vec<String> {
        self.cache.list().unwrap().0.iter().map(|id| id.to_string()).collect()
    }

    /// Every readable manifest here, with the ids of the files it lists.
    pub fn manifests(&self) -> Vec<(String, Vec<String>)> {
        let (ids, _) = self.cache.list().unwrap();
        ids.iter()
            .filter(|id| dvt::manifest::looks_like(&self.cache.peek(id, 16).unwrap_or_default()))
            .filter_map(|id| {
                let m = dvt::manifest::Manifest::parse(&self.cache.read(id, None).ok()?, id).ok()?;
                Some((id.to_string(), m.files.iter().map(|e| e.id.to_string()).collect()))
            })
            .collect()
    }

    /// Whether object `hex` is here, packed or not.
    pub fn has(&self, hex: &str) -> bool {
        self.cache.contains(&hex.parse().unwrap())
    }

    /// Deletes object `hex`, packed or not.
    pub fn remove(&self, hex: &str) {
        let id = hex.parse().unwrap();
        assert!(self.cache.contains(&id), "object {hex} is present");
        self.cache.delete_many(&[id], &|| {}).unwrap();
        assert!(!Store::at(self.cache.root()).has(hex));
    }
}

/// This process's `PATH` without the directories that hold a `dvt`.
fn path_without_dvt() -> &'static str {
    static PATH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    PATH.get_or_init(|| {
        let all = std::env::var_os("PATH").unwrap_or_default();
        let kept: Vec<PathBuf> = std::env::split_paths(&all)
            .filter(|d| !d.join("dvt").exists())
            .collect();
        std::env::join_paths(kept).unwrap().into_string().unwrap()
    })
}

/// Every path below `p` (files and dirs), including `p`, sorted.
pub fn walk(p: &Path) -> Vec<PathBuf> {
    let mut out = vec![p.to_path_buf()];
    if p.is_dir() && !p.symlink_metadata().unwrap().file_type().is_symlink() {
        let mut kids: Vec<_> = std::fs::read_dir(p).unwrap().map(|e| e.unwrap().path()).collect();
        kids.sort();
        for k in kids {
            out.extend(walk(&k));
        }
    }
    out
}

/// Every path under `dir` (outside `.git`) whose name marks it as one of
/// dvt's temporary files or staging directories (`*.dvt-tmp-*`): what a
/// failed or killed command must not leave behind.
pub fn temp_leftovers(dir: &Path) -> Vec<PathBuf> {
    let git = dir.join(".git");
    walk(dir)
        .into_iter()
        .filter(|p| !p.starts_with(&git) && p.to_string_lossy().contains("dvt-tmp"))
        .collect()
}

/// Copies the tree at `from` to `to` (files and directories).
pub fn copy_tree(from: &Path, to: &Path) {
    for f in walk(from) {
        let dest = to.join(f.strip_prefix(from).unwrap());
        if f.is_dir() {
            std::fs::create_dir_all(&dest).unwrap();
        } else {
            std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
            std::fs::copy(&f, &dest).unwrap();
        }
    }
}

/// A description of a tree: every path with its kind, mode bits and content hash.
pub fn snapshot(root: &Path) -> Vec<String> {
    use std::os::unix::fs::PermissionsExt;
    walk(root)
        .into_iter()
        .map(|p| {
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            let m = p.symlink_metadata().unwrap();
            if m.is_dir() {
                format!("d {rel}")
            } else {
                let exec = m.permissions().mode() & 0o111 != 0;
                let hash = blake3::hash(&std::fs::read(&p).unwrap());
                format!("f {rel} exec={exec} {}", &hash.to_hex()[..16])
            }
        })
        .collect()
}

/// Deterministic pseudo-random bytes.
pub fn noise(len: usize, seed: u8) -> Vec<u8> {
    let mut out = vec![0u8; len];
    blake3::Hasher::new().update(&[seed]).finalize_xof().fill(&mut out);
    out
}

/// A project of one stage, `train`, that counts its runs in `runs.log` (see
/// [`runs`]) and writes `model.txt` (cached) and `metrics.json` from param `lr`.
pub fn counted_project() -> TestEnv {
    let env = TestEnv::new();
    write_counted_stage(&env);
    env
}

/// Writes [`counted_project`]'s files into `env`.
pub fn write_counted_stage(env: &TestEnv) {
    env.write("params.yaml", "lr: 0.1\n");
    env.write("in.txt", "rows\n");
    env.write(
        "dvt.toml",
        r#"[stages.train]
cmd = "echo run >> runs.log && grep lr params.yaml > model.txt && grep lr params.yaml | sed 's/lr: /{\"loss\": /; s/$/}/' > metrics.json"
deps = ["in.txt"]
params = ["lr"]
outs = ["model.txt"]
metrics = ["metrics.json"]
"#,
    );
}

/// Writes a pipeline of two stages, `one` copying `in.txt` (written as `input`)
/// to `one.txt`, and `two` copying that to `two.txt`.
pub fn write_copy_chain(env: &TestEnv, input: &str) {
    env.write("in.txt", input);
    env.write(
        "dvt.toml",
        r#"[stages.one]
cmd = "cp in.txt one.txt"
deps = ["in.txt"]
outs = ["one.txt"]

[stages.two]
cmd = "cp one.txt two.txt"
deps = ["one.txt"]
outs = ["two.txt"]
"#,
    );
}

/// How many times the stage of [`counted_project`] has run in `env`.
pub fn runs(env: &TestEnv) -> usize {
    match env.exists("runs.log") {
        true => String::from_utf8(env.read("runs.log")).unwrap().lines().count(),
        false => 0,
    }
}

/// A private CA (made with `openssl`) and a certificate it signed for 127.0.0.1,
/// as PEM files: `ca` to trust, `cert` and `key` for a server.
pub struct PrivateCa {
    pub ca: String,
    pub cert: String,
    pub key: String,
}

impl PrivateCa {
    /// Makes them in `dir`, running `openssl` in `env`.
    pub fn make(env: &TestEnv, dir: &Path) -> PrivateCa {
        let file = |name: &str| dir.join(name).to_str().unwrap().to_string();
        let (ca, ca_key, cert, key) = (file("ca.pem"), file("ca.key"), file("cert.pem"), file("key.pem"));
        let new_cert = ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"];
        let root = ["-subj", "/CN=dvt-test-ca", "-keyout", &ca_key, "-out", &ca];
        env.run("openssl", &[&new_cert[..], &root[..]].concat()).ok();
        let leaf = [
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-addext",
            "basicConstraints=critical,CA:FALSE",
            "-CA",
            &ca,
            "-CAkey",
            &ca_key,
            "-keyout",
            &key,
            "-out",
            &cert,
        ];
        env.run("openssl", &[&new_cert[..], &leaf[..]].concat()).ok();
        PrivateCa { ca, cert, key }
    }
}

/// A git smart-HTTP server (git http-backend) for the repositories under `root`.
pub struct GitHttp {
    child: std::process::Child,
    pub port: u16,
}

impl GitHttp {
    pub fn start(root: &std::path::Path) -> GitHttp {
        GitHttp::start_with(root, None, None)
    }

    /// With `login` (`USER:PASSWORD`), a request without it gets 401; with
    /// `tls`, HTTPS with its certificate and key.
    pub fn start_with(root: &std::path::Path, login: Option<&str>, tls: Option<&PrivateCa>) -> GitHttp {
        use std::io::BufRead;
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/git_http_server.py");
        let mut command = std::process::Command::new("python3");
        command.arg(script).arg(root).stdout(std::process::Stdio::piped());
        if let Some(login) = login {
            command.env("GIT_HTTP_AUTH", login);
        }
        if let Some(tls) = tls {
            command.env("GIT_HTTP_TLS", format!("{}:{}", tls.cert, tls.key));
        }
        let mut child = command.spawn().unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        GitHttp {
            child,
            port: line.trim().parse().unwrap(),
        }
    }
}

impl Drop for GitHttp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `git daemon` serving the repositories under `root` over git://, pushes
/// included.
pub struct GitDaemon {
    child: std::process::Child,
    pub port: u16,
}

impl GitDaemon {
    pub fn start(root: &std::path::Path) -> GitDaemon {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // git-daemon itself, not `git daemon`, which would leave it running
        // when killed.
        let exec_path = std::process::Command::new("git")
            .arg("--exec-path")
            .output()
            .unwrap()
            .stdout;
        let exec_path = String::from_utf8(exec_path).unwrap();
        let child = std::process::Command::new(std::path::Path::new(exec_path.trim()).join("git-daemon"))
            .args([
                "--reuseaddr",
                "--export-all",
                "--enable=receive-pack",
                "--listen=127.0.0.1",
            ])
            .arg(format!("--port={port}"))
            .arg(format!("--base-path={}", root.display()))
            .arg(root)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(std::time::Instant::now() < deadline, "git daemon did not start");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        GitDaemon { child, port }
    }

    /// Waits until the daemon serves no connection: a client killed after it
    /// sent all of a push leaves git finishing it on the server side.
    pub fn wait_idle(&self) {
        let parent_of = |pid: &str| -> Option<String> {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
            let line = status.lines().find(|l| l.starts_with("PPid:"))?;
            Some(line["PPid:".len()..].trim().to_string())
        };
        let daemon = self.child.id().to_string();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let busy = std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
                let mut pid = e.file_name().to_string_lossy().into_owned();
                // Any process descending from the daemon.
                while let Some(p) = parent_of(&pid) {
                    if p == daemon {
                        return true;
                    }
                    if p == "0" || p == "1" {
                        break;
                    }
                    pid = p;
                }
                false
            });
            if !busy {
                return;
            }
            assert!(std::time::Instant::now() < deadline, "git daemon still busy");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

impl Drop for GitDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// splitmix64: a seeded sequence, the same on every machine.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        let text = self.below(2) == 0;
        (0..len)
            .map(|_| {
                let b = self.next() as u8;
                if text {
                    b"abcdefgh,0123456789\n"[b as usize % 20]
                } else {
                    b
                }
            })
            .collect()
    }
}

/// The seeds of a model test's sweep that the environment variable `var`
/// asks for (`1-50`, or `7`); `None` when it is not set.
pub fn seeds_asked_for(var: &str) -> Option<std::ops::RangeInclusive<u64>> {
    let seeds = std::env::var(var).ok()?;
    let (first, last) = seeds.split_once('-').unwrap_or((&seeds, &seeds));
    Some(first.parse().unwrap()..=last.parse().unwrap())
}

/// The action `repro --json` (its output `json`) reported for each stage, in
/// run order: (stage, action).
pub fn stage_actions(json: &serde_json::Value) -> Vec<(String, String)> {
    json["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["stage"].as_str().unwrap().to_string(),
                s["action"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// A `flock` held by a child process (`flock -o … cat`) until dropped.
///
/// The lock is never open in the test process: a child that another test
/// forks meanwhile would inherit it and hold it until its exec, so a command
/// run right after the drop could still find it taken. Dropping waits for the
/// holder to exit, so the lock is free when `drop` returns.
pub struct HeldLock {
    holder: std::process::Child,
}

impl HeldLock {
    pub fn exclusive(path: &Path) -> HeldLock {
        HeldLock::take(path, "-x")
    }

    pub fn shared(path: &Path) -> HeldLock {
        HeldLock::take(path, "-s")
    }

    fn take(path: &Path, mode: &str) -> HeldLock {
        use std::io::BufRead;
        let mut holder = std::process::Command::new("flock")
            .args([mode, "-o"])
            .arg(path)
            .args(["sh", "-c", "echo held; exec cat > /dev/null"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("flock (util-linux) runs");
        let mut line = String::new();
        std::io::BufReader::new(holder.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line, "held\n", "flock did not take {}", path.display());
        HeldLock { holder }
    }
}

impl Drop for HeldLock {
    fn drop(&mut self) {
        drop(self.holder.stdin.take());
        let _ = self.holder.wait();
    }
}
