//! What the pointer files say, either in the workspace or at a git revision.
//!
//! A [`Snapshot`] reads pointers (and, through [`Objects`], manifests) from one
//! source without touching the other: at a revision, pointer files come from the
//! commit's tree with gix, never from the work tree. Paths in pointers are
//! validated exactly as in the workspace; errors name the file as `REV:path`.

use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::{Arc, Mutex};

use crate::cache::Cache;
use crate::error::{CacheError, GitError, PathError, RemoteError, Result};
use crate::git::{Git, GitId};
use crate::manifest::{Entry, Manifest};
use crate::object::ObjectId;
use crate::pointer::{Kind, POINTER_EXT, Pointer};
use crate::remote::Remote;
use crate::repo::Repo;
use crate::workspace::Tracked;

/// Where pointer files are read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The work tree as it is now.
    Workspace,
    /// A commit.
    Commit {
        /// The revision as the user gave it.
        rev: String,
        /// The commit it resolved to.
        id: GitId,
    },
}

/// The pointers of a repository at one [`Source`].
#[derive(Debug)]
pub struct Snapshot<'r> {
    repo: &'r Repo,
    git: Option<Rc<Git>>,
    source: Source,
}

/// A path located in a snapshot: the pointer that covers it, and the path inside
/// the tracked directory (empty for the tracked path itself).
#[derive(Debug, Clone)]
pub struct Located {
    /// The pointer.
    pub tracked: Tracked,
    /// Path relative to the tracked directory, or empty.
    pub inner: String,
}

/// A file that no pointer covers, as a [`Snapshot`] holds it: what `cat`,
/// `get` and `open` serve for the files git keeps (code, params, small files),
/// as DVC serves them beside its data.
#[derive(Debug)]
pub enum PlainFile {
    /// The file git keeps at a commit: its blob's bytes.
    Git {
        /// The content.
        bytes: Vec<u8>,
        /// Whether git records it executable.
        executable: bool,
    },
    /// A file of the work tree, open for reading.
    Disk {
        /// The open file.
        file: fs_err::File,
        /// Its size when opened.
        size: u64,
        /// Whether it is executable.
        executable: bool,
    },
}

/// One file's data: what `cat`, `get-url` and `open` serve.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FileData {
    /// The object id (for a directory: its manifest's).
    pub id: ObjectId,
    /// Content bytes (for a directory: all its files').
    pub size: u64,
    /// File or directory.
    pub kind: Kind,
    /// Whether the file is executable.
    pub executable: bool,
}

impl<'r> Snapshot<'r> {
    /// The workspace's pointers.
    pub fn workspace(repo: &'r Repo) -> Snapshot<'r> {
        Snapshot {
            repo,
            git: None,
            source: Source::Workspace,
        }
    }

    /// The pointers at `rev` (`None`: the workspace).
    pub fn open(repo: &'r Repo, rev: Option<&str>) -> Result<Snapshot<'r>> {
        let Some(rev) = rev else {
            return Ok(Snapshot::workspace(repo));
        };
        let git = Rc::new(Git::open(repo.root())?);
        let id = git.resolve(rev)?;
        Ok(Snapshot {
            repo,
            git: Some(git),
            source: Source::Commit {
                rev: rev.to_string(),
                id,
            },
        })
    }

    /// The pointers at commit `id` of `git`, called `rev` in messages.
    pub fn at_commit(repo: &'r Repo, git: Rc<Git>, rev: String, id: GitId) -> Snapshot<'r> {
        Snapshot {
            repo,
            git: Some(git),
            source: Source::Commit { rev, id },
        }
    }

    /// The repository.
    pub fn repo(&self) -> &'r Repo {
        self.repo
    }

    /// Where the pointers come from.
    pub fn source(&self) -> &Source {
        &self.source
    }

    /// The resolved commit, for a revision.
    pub fn commit(&self) -> Option<GitId> {
        match &self.source {
            Source::Workspace => None,
            Source::Commit { id, .. } => Some(*id),
        }
    }

    /// How messages name this source: `the workspace` or `` `v1` (1a2b3c4) ``.
    pub fn label(&self) -> String {
        match &self.source {
            Source::Workspace => "the workspace".into(),
            Source::Commit { rev, id } => format!("`{rev}` ({})", short(id)),
        }
    }

    fn rev_path(&self, rel: &str) -> PathBuf {
        match &self.source {
            Source::Workspace => self.repo.root().join(rel),
            Source::Commit { rev, .. } => PathBuf::from(format!("{rev}:{rel}")),
        }
    }

    /// Parses the pointer file `pointer_rel` from `text`, validating its path.
    fn tracked_from(&self, pointer_rel: &str, text: &[u8]) -> Result<Tracked> {
        let named = self.rev_path(pointer_rel);
        let text = std::str::from_utf8(text).map_err(|_| crate::error::FormatError::Pointer {
            path: named.clone(),
            message: "not UTF-8".into(),
        })?;
        let pointer = Pointer::parse(text, &named)?;
        Tracked::from_pointer(self.repo, pointer_rel, pointer, &named, false)
    }

    /// The pointer file `pointer_rel`, if this snapshot has it.
    pub fn pointer(&self, pointer_rel: &str) -> Result<Option<Tracked>> {
        match (&self.source, &self.git) {
            (Source::Commit { id, .. }, Some(git)) => match git.read_file(*id, pointer_rel)? {
                Some(bytes) => Ok(Some(self.tracked_from(pointer_rel, &bytes)?)),
                None => Ok(None),
            },
            _ => {
                let abs = self.repo.root().join(pointer_rel);
                if abs.is_file() {
                    Ok(Some(Tracked::load(self.repo, &abs)?))
                } else {
                    Ok(None)
                }
            }
        }
    }

    /// Every pointer in this snapshot, sorted by pointer path, then the cached
    /// pipeline outs its `dvt.lock` records.
    pub fn pointers(&self) -> Result<Vec<Tracked>> {
        let mut out = match (&self.source, &self.git) {
            (Source::Commit { id, .. }, Some(git)) => {
                let suffix = format!(".{POINTER_EXT}");
                let mut out = Vec::new();
                for f in git.files_ending_with(*id, &suffix)? {
                    let bytes = git.read_blob(f.blob)?;
                    out.push(self.tracked_from(&f.path, &bytes)?);
                }
                out
            }
            _ => crate::workspace::find_pointers(self.repo)?
                .iter()
                .map(|p| Tracked::load(self.repo, p))
                .collect::<Result<Vec<_>>>()?,
        };
        out.extend(self.lock_outs()?);
        Ok(out)
    }

    /// [`Snapshot::pointers`], reading on past a pointer file (or a `dvt.lock`)
    /// that cannot be read: what was read, and why each of the others was not.
    /// For a commit, whose files history keeps as they are.
    pub fn readable_pointers(&self) -> Result<(Vec<Tracked>, Vec<crate::Error>)> {
        let (Source::Commit { id, .. }, Some(git)) = (&self.source, &self.git) else {
            return Ok((self.pointers()?, Vec::new()));
        };
        let suffix = format!(".{POINTER_EXT}");
        let (mut out, mut unreadable) = (Vec::new(), Vec::new());
        for f in git.files_ending_with(*id, &suffix)? {
            let bytes = git.read_blob(f.blob)?;
            match self.tracked_from(&f.path, &bytes) {
                Ok(t) => out.push(t),
                Err(e) => unreadable.push(e),
            }
        }
        match self.lock_outs() {
            Ok(outs) => out.extend(outs),
            Err(e) => unreadable.push(e),
        }
        Ok((out, unreadable))
    }

    /// The cached pipeline outs of this snapshot's `dvt.lock`.
    pub fn lock_outs(&self) -> Result<Vec<Tracked>> {
        use crate::pipeline::{LOCK_FILE, PIPELINE_FILE, outs_from};
        match (&self.source, &self.git) {
            (Source::Commit { id, .. }, Some(git)) => {
                let Some(lock) = git.read_file(*id, LOCK_FILE)? else {
                    return Ok(Vec::new());
                };
                let pipeline = git.read_file(*id, PIPELINE_FILE)?;
                outs_from(
                    self.repo,
                    &String::from_utf8_lossy(&lock),
                    &self.rev_path(LOCK_FILE),
                    pipeline.as_deref().map(String::from_utf8_lossy).as_deref(),
                    &|f| {
                        let text = git.read_file(*id, f)?;
                        Ok(text.map(|t| String::from_utf8_lossy(&t).into_owned()))
                    },
                    &|paths| {
                        // A path the tree cannot be asked about is taken as not in git.
                        paths
                            .iter()
                            .filter(|p| {
                                git.list_tree(*id, p, false, false)
                                    .is_ok_and(|t| !matches!(t, crate::git::TreeAt::Missing))
                            })
                            .map(|p| (*p).to_string())
                            .collect()
                    },
                )
            }
            _ => crate::pipeline::lock_outs(self.repo),
        }
    }

    /// Every pointer that parses and is safe, skipping the others.
    pub(crate) fn pointers_lenient(&self) -> Result<Vec<Tracked>> {
        match (&self.source, &self.git) {
            (Source::Commit { id, .. }, Some(git)) => {
                let mut out = Vec::new();
                for f in git.files_ending_with(*id, &format!(".{POINTER_EXT}"))? {
                    if let Ok(t) = self.tracked_from(&f.path, &git.read_blob(f.blob)?) {
                        out.push(t);
                    }
                }
                Ok(out)
            }
            _ => Ok(crate::workspace::find_pointers(self.repo)?
                .iter()
                .filter_map(|p| Tracked::load(self.repo, p).ok())
                .collect()),
        }
    }

    /// [`Snapshot::pointers_lenient`] of a commit, only those commit `other`
    /// does not hold as they are (absent there, or with other content): what
    /// can name data `other` does not track. Reads no pointer the two share,
    /// so two commits of thousands of pointers cost two tree walks. Of the
    /// workspace: all of them.
    pub(crate) fn pointers_not_in(&self, other: crate::git::GitId) -> Result<Vec<Tracked>> {
        let (Source::Commit { id, .. }, Some(git)) = (&self.source, &self.git) else {
            return self.pointers_lenient();
        };
        let suffix = format!(".{POINTER_EXT}");
        let theirs: rustc_hash::FxHashSet<(String, crate::git::GitId)> = git
            .files_ending_with(other, &suffix)?
            .into_iter()
            .map(|f| (f.path, f.blob))
            .collect();
        let mut out = Vec::new();
        for f in git.files_ending_with(*id, &suffix)? {
            if !theirs.contains(&(f.path.clone(), f.blob))
                && let Ok(t) = self.tracked_from(&f.path, &git.read_blob(f.blob)?)
            {
                out.push(t);
            }
        }
        Ok(out)
    }

    /// The pointer covering repo-relative `rel`: a tracked path, a file or directory
    /// inside a tracked directory, or a pointer file itself.
    pub fn locate(&self, rel: &str) -> Result<Located> {
        let rel = rel.trim_end_matches('/');
        let not_tracked = || GitError::NotTrackedAt {
            path: if rel.is_empty() { ".".into() } else { rel.to_string() },
            rev: self.label(),
            closest: None,
        };
        if rel.is_empty() {
            return Err(not_tracked().into());
        }
        let suffix = format!(".{POINTER_EXT}");
        if rel.ends_with(&suffix)
            && let Some(t) = self.pointer(rel)?
        {
            return Ok(Located {
                tracked: t,
                inner: String::new(),
            });
        }
        if let Some(loc) = self.covering_by_name(rel)? {
            return Ok(loc);
        }
        // A pipeline out, or a pointer whose `path` differs from its file name:
        // look at all of them (one that does not parse cannot be the one asked for).
        let outs = self.lock_outs().unwrap_or_default();
        for t in outs.into_iter().chain(self.pointers_lenient()?) {
            if let Some(inner) = inside_tracked(&t, rel) {
                return Ok(Located { tracked: t, inner });
            }
        }
        Err(not_tracked().into())
    }

    /// The pointer covering repo-relative `rel` in the usual layout, where
    /// `data/raw.dvt` tracks `data/raw`: the path's own pointer, then each
    /// ancestor's, deepest first. A few lookups and no walk; `None` when the
    /// path is not tracked that way (or at all).
    pub fn covering_by_name(&self, rel: &str) -> Result<Option<Located>> {
        let rel = rel.trim_end_matches('/');
        let mut cut = rel.len();
        while cut > 0 {
            let prefix = &rel[..cut];
            if let Some(t) = self.pointer(&format!("{prefix}.{POINTER_EXT}"))?
                && let Some(inner) = inside_tracked(&t, rel)
            {
                return Ok(Some(Located { tracked: t, inner }));
            }
            cut = prefix.rfind('/').unwrap_or(0);
        }
        Ok(None)
    }

    /// The file at repo-relative `rel` outside dvt's data: at a commit, the one
    /// git keeps there; in the workspace, the one on disk, which must not be
    /// under `.git` or `.dvt` nor reached through a symbolic link. `None` when
    /// there is no file; a directory or a link there is an error. Callers ask
    /// [`Snapshot::locate`] first: tracked data is read from its pointer.
    pub fn plain_file(&self, rel: &str) -> Result<Option<PlainFile>> {
        let rel = rel.trim_end_matches('/');
        if rel.is_empty() || crate::relpath::validate(rel).is_err() {
            return Ok(None);
        }
        let is_dir = || GitError::IsDirectory {
            path: rel.to_string(),
            rev: self.label(),
        };
        match (&self.source, &self.git) {
            (Source::Commit { id, .. }, Some(git)) => match git.list_tree(*id, rel, false, false)? {
                crate::git::TreeAt::Missing => Ok(None),
                crate::git::TreeAt::Dir(_) => Err(is_dir().into()),
                crate::git::TreeAt::File(item) => match git.read_file(*id, rel)? {
                    Some(bytes) => Ok(Some(PlainFile::Git {
                        bytes,
                        executable: item.executable,
                    })),
                    // A symbolic link or a submodule: no content of its own.
                    None => Err(PathError::Symlink {
                        path: rel.into(),
                        link: rel.into(),
                    }
                    .into()),
                },
            },
            _ => {
                // Of dvt's own files, those git keeps (the others hold the cache
                // and secrets).
                let committed = [".dvt/config.toml", ".dvt/.gitignore"].contains(&rel);
                if !committed && self.repo.check_not_reserved(rel).is_err() {
                    return Err(PathError::Internal { path: rel.into() }.into());
                }
                self.repo.check_no_symlink_parents(rel)?;
                let path = self.repo.root().join(rel);
                let meta = match path.symlink_metadata() {
                    Ok(m) => m,
                    // (`NotADirectory`: below a file, `model.bin/x`.)
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                        ) =>
                    {
                        return Ok(None);
                    }
                    Err(e) => return Err(e.into()),
                };
                if meta.is_dir() {
                    return Err(is_dir().into());
                }
                if meta.file_type().is_symlink() {
                    return Err(PathError::Symlink {
                        path: rel.into(),
                        link: rel.into(),
                    }
                    .into());
                }
                if !meta.is_file() {
                    return Err(PathError::Special { path: rel.into() }.into());
                }
                use std::os::unix::fs::PermissionsExt;
                Ok(Some(PlainFile::Disk {
                    file: fs_err::File::open(&path)?,
                    size: meta.len(),
                    executable: meta.permissions().mode() & 0o111 != 0,
                }))
            }
        }
    }

    /// Every object this snapshot's pointers name for `push` (not those that say
    /// `push = false`), each once with the first path that needs it: files,
    /// manifests, and the files listed in manifests (read through `objects`,
    /// which notes the remotes pointers name).
    pub fn objects(&self, objects: &Objects<'_>) -> Result<Vec<(ObjectId, String)>> {
        let mut seen = rustc_hash::FxHashSet::default();
        let mut out = Vec::new();
        // Imported from a URL without downloading it: push leaves it out too.
        for t in self
            .pointers()?
            .into_iter()
            .filter(|t| t.pointer.push && !url_import_not_here(t, objects.cache()))
        {
            objects.note(&t);
            if seen.insert(t.pointer.id) {
                out.push((t.pointer.id, t.data_rel.clone()));
            }
            if t.pointer.kind == Kind::Dir {
                for e in objects.manifest(&t)?.files {
                    if seen.insert(e.id) {
                        out.push((e.id, format!("{}/{}", t.data_rel, e.path)));
                    }
                }
            }
        }
        Ok(out)
    }

    /// The data at a located path: the whole tracked path, or one file inside a
    /// tracked directory (whose manifest is read through `objects`).
    pub fn file_data(&self, loc: &Located, objects: &Objects<'_>) -> Result<FileData> {
        let p = &loc.tracked.pointer;
        objects.note(&loc.tracked);
        if loc.inner.is_empty() {
            return Ok(FileData {
                id: p.id,
                size: p.size,
                kind: p.kind,
                executable: p.executable,
            });
        }
        let manifest = objects.manifest(&loc.tracked)?;
        if let Some(e) = find_entry(&manifest, &loc.inner) {
            return Ok(FileData {
                id: e.id,
                size: e.size,
                kind: Kind::File,
                executable: e.executable,
            });
        }
        let full = format!("{}/{}", loc.tracked.data_rel, loc.inner);
        let dir_prefix = format!("{}/", loc.inner);
        if manifest.files.iter().any(|e| e.path.starts_with(&dir_prefix)) || manifest.empty_dirs.contains(&loc.inner) {
            return Err(GitError::IsDirectory {
                path: full,
                rev: self.label(),
            }
            .into());
        }
        let closest = crate::suggest::closest(&loc.inner, manifest.files.iter().map(|e| e.path.as_str()))
            .map(|p| format!("{}/{p}", loc.tracked.data_rel));
        Err(GitError::NotTrackedAt {
            path: full,
            rev: self.label(),
            closest,
        }
        .into())
    }
}

/// `rel` relative to tracked path `data_rel`, if it is that path (empty) or inside it.
pub(crate) fn inside(data_rel: &str, rel: &str) -> Option<String> {
    if rel == data_rel {
        return Some(String::new());
    }
    rel.strip_prefix(data_rel)?.strip_prefix('/').map(str::to_string)
}

fn find_entry<'m>(manifest: &'m Manifest, path: &str) -> Option<&'m Entry> {
    manifest
        .files
        .binary_search_by(|e| e.path.as_bytes().cmp(path.as_bytes()))
        .ok()
        .map(|i| &manifest.files[i])
}

/// The first 7 hex digits of a commit id.
pub fn short(id: &GitId) -> String {
    id.to_hex_with_len(7).to_string()
}

/// An import that a read pointer records: its source (a repository or a URL), the
/// pointer, and the pointer's file.
type Imported = (crate::pointer::Source, crate::pointer::Pointer, String);

/// Objects from the cache, or, when the cache lacks them, from another repository's
/// cache (for `get`/`import` from a local repository) or a remote; whatever comes
/// from elsewhere is copied into the cache and verified on the way. The remote is
/// opened on first need. With no remote asked for, an object whose pointer says
/// `remote = "NAME"` (noted as pointers and manifests are read) comes from NAME.
pub struct Objects<'a> {
    dest: Cache,
    source_cache: Option<Cache>,
    config_repo: &'a Repo,
    remote_name: Option<String>,
    jobs: Option<usize>,
    remote: std::sync::OnceLock<Arc<Remote>>,
    /// Objects whose pointers name their remote, by id (see [`Objects::note`]).
    named: Mutex<rustc_hash::FxHashMap<ObjectId, String>>,
    /// The remotes `named` names, opened on first use.
    others: Mutex<Vec<Arc<Remote>>>,
    /// Imports, by their objects' ids (a directory's manifest and files): the
    /// source, the pointer and its file (see [`Objects::note`]), for what the
    /// remote lacks.
    imports: Mutex<rustc_hash::FxHashMap<ObjectId, Arc<Imported>>>,
    /// Whether what the remote lacks of an import comes from its source (see
    /// [`Objects::following_sources`]).
    follow_sources: bool,
    /// Whether the objects are another repository's ([`Objects::from_source`]).
    read_repo: bool,
}

impl std::fmt::Debug for Objects<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Objects").field("remote", &self.remote_name).finish()
    }
}

impl<'a> Objects<'a> {
    /// Objects of `repo`'s cache, falling back to remote `remote` (or the default).
    pub fn new(repo: &'a Repo, remote: Option<&str>) -> Self {
        Objects {
            dest: repo.cache().clone(),
            source_cache: None,
            config_repo: repo,
            remote_name: remote.map(str::to_string),
            jobs: None,
            remote: std::sync::OnceLock::new(),
            named: Mutex::default(),
            others: Mutex::default(),
            imports: Mutex::default(),
            follow_sources: false,
            read_repo: false,
        }
    }

    /// Objects of another repository `source` (its cache, then its default remote),
    /// copied into `dest` as they are needed.
    pub fn from_source(dest: Cache, source: &'a Repo) -> Self {
        let source_cache = Some(source.cache().clone()).filter(|c| c.root() != dest.root() && c.root().is_dir());
        Objects {
            dest,
            source_cache,
            config_repo: source,
            remote_name: None,
            jobs: None,
            remote: std::sync::OnceLock::new(),
            named: Mutex::default(),
            others: Mutex::default(),
            imports: Mutex::default(),
            follow_sources: false,
            read_repo: true,
        }
    }

    /// Downloads at once from the remote (default: the remote's `jobs`, else
    /// [`crate::remote::default_jobs`]).
    pub fn with_jobs(self, jobs: Option<usize>) -> Self {
        Objects { jobs, ..self }
    }

    /// What the remote lacks of an import comes from where it was imported, as
    /// `fetch` gets it: from the URL (imported with `--no-download`, or never
    /// pushed), or from the source repository at the recorded commit, which may
    /// itself have imported it (a chain of registries is followed to its end).
    /// For those that read data (`get`, `import`, `cat`, the API): reading a whole
    /// dataset to learn a directory's files would be no way to list it or collect
    /// garbage.
    pub fn following_sources(self) -> Self {
        Objects {
            follow_sources: true,
            ..self
        }
    }

    /// The cache objects land in.
    pub fn cache(&self) -> &Cache {
        &self.dest
    }

    /// The remote asked for (or the default), opened on first call.
    pub fn remote(&self) -> Result<Arc<Remote>> {
        if let Some(r) = self.remote.get() {
            return Ok(r.clone());
        }
        let r = Remote::open(self.config_repo, self.remote_name.as_deref(), self.jobs, false)?;
        Ok(self.remote.get_or_init(|| Arc::new(r)).clone())
    }

    /// Notes that tracked `t`'s object comes from the remote its pointer names
    /// (`remote = "NAME"`), if it names one and no remote was asked for; and,
    /// for an import, that its source gives what the remote lacks.
    pub fn note(&self, t: &Tracked) {
        self.note_ids(t, std::iter::once(t.pointer.id), false);
    }

    /// [`Objects::note`] for objects `ids` of tracked `t` (its own, or its manifest's
    /// `files`). A directory's files are noted as an import's only when they may come
    /// from its source (see [`Objects::following_sources`]): nothing else asks.
    fn note_ids(&self, t: &Tracked, ids: impl Iterator<Item = ObjectId> + Clone, files: bool) {
        if let Some(src) = t.pointer.source.as_ref().filter(|_| self.follow_sources || !files) {
            let mut imports = self.imports.lock().unwrap_or_else(|e| e.into_inner());
            // One record shared by a directory's every file.
            let noted = Arc::new((src.clone(), t.pointer.clone(), t.pointer_rel.clone()));
            imports.extend(ids.clone().map(|id| (id, noted.clone())));
        }
        let (None, Some(name)) = (&self.remote_name, &t.pointer.remote) else {
            return;
        };
        let mut named = self.named.lock().unwrap_or_else(|e| e.into_inner());
        named.extend(ids.map(|id| (id, name.clone())));
    }

    /// `items` in groups by the remote each one's object comes from (see
    /// [`Objects::note`]): the remote asked for (or the default) first, then
    /// each remote pointers name. No group is empty.
    pub fn by_remote<T>(&self, items: impl IntoIterator<Item = T>, id: impl Fn(&T) -> ObjectId) -> Vec<Vec<T>> {
        let mut groups: Vec<(Option<String>, Vec<T>)> = Vec::new();
        for item in items {
            let name = self.named_remote(&id(&item));
            match groups.iter_mut().find(|(n, _)| *n == name) {
                Some((_, group)) => group.push(item),
                None => groups.push((name, vec![item])),
            }
        }
        groups.sort_by_key(|(name, _)| name.is_some());
        groups.into_iter().map(|(_, group)| group).collect()
    }

    /// The remote a pointer said object `id` is on (see [`Objects::note`]), if any.
    pub fn named_remote(&self, id: &ObjectId) -> Option<String> {
        self.named.lock().unwrap_or_else(|e| e.into_inner()).get(id).cloned()
    }

    /// Whether object `id` is in the cache now, copied there from the source's
    /// cache if that has it; nothing is downloaded.
    pub fn ensure_local(&self, id: &ObjectId) -> bool {
        self.dest.contains(id)
            || self
                .source_cache
                .as_ref()
                .is_some_and(|src| src.contains(id) && self.dest.import_from(src, id, false, false).is_ok())
    }

    /// The remote objects not in a cache come from. With no remote at all, the
    /// error is that `id` (needed for `for_path`) is missing: there is nowhere
    /// else to look.
    pub fn remote_for(&self, id: &ObjectId, for_path: Option<&str>) -> Result<Arc<Remote>> {
        if let Some(name) = self.named_remote(id) {
            let mut others = self.others.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(r) = others.iter().find(|r| r.name == name) {
                return Ok(r.clone());
            }
            let r = Arc::new(Remote::open(self.config_repo, Some(&name), self.jobs, false)?);
            others.push(r.clone());
            return Ok(r);
        }
        match self.remote() {
            Err(crate::Error::Remote(RemoteError::NoDefault { known })) if known.is_empty() => {
                Err(CacheError::Missing {
                    id: *id,
                    path: for_path.map(str::to_string),
                }
                .into())
            }
            r => r,
        }
    }

    /// Makes sure object `id` is in the cache, copying or downloading it if
    /// needed; what the remote lacks of an import comes from its source (see
    /// [`Objects::following_sources`]).
    pub fn ensure(&self, id: &ObjectId, for_path: Option<&str>) -> Result<()> {
        if self.ensure_local(id) {
            return Ok(());
        }
        let got = self.remote_for(id, for_path).and_then(|remote| {
            remote
                .block_on(remote.download(&self.dest, *id, for_path, &|_| {}))
                .map_err(|e| self.as_met(e))
        });
        match got {
            Ok(_) => Ok(()),
            Err(e) if self.follow_sources && is_missing(&e) => self.read_source(id, e, true),
            // Another repository's directory imported from a repository: its manifest
            // (small) from there, so that it can be listed.
            Err(e) if self.read_repo && is_missing(&e) && self.repo_import_manifest(id) => {
                self.read_source(id, e, false)
            }
            Err(e) if is_missing(&e) => match self.noted_import(id).as_deref() {
                Some((crate::pointer::Source::Url(src), _, pointer_rel)) => Err(RemoteError::NotDownloaded {
                    pointer: pointer_rel.clone(),
                    url: src.url.clone(),
                }
                .into()),
                _ => Err(e),
            },
            Err(e) => Err(e),
        }
    }

    /// Whether what the remote lacks of object `id` comes from where it was
    /// imported (see [`Objects::following_sources`]).
    pub fn from_source_of(&self, id: &ObjectId) -> bool {
        self.follow_sources && self.noted_import(id).is_some()
    }

    /// The import whose data `id` is, if a read pointer noted one.
    fn noted_import(&self, id: &ObjectId) -> Option<Arc<Imported>> {
        self.imports.lock().unwrap_or_else(|e| e.into_inner()).get(id).cloned()
    }

    /// Whether `id` is the manifest of a directory a read pointer records as
    /// imported from a repository.
    fn repo_import_manifest(&self, id: &ObjectId) -> bool {
        self.noted_import(id).is_some_and(|noted| {
            let (source, pointer, _) = &*noted;
            matches!(source, crate::pointer::Source::Repo(_)) && pointer.kind == Kind::Dir && pointer.id == *id
        })
    }

    /// When the remote lacks `id` (error `missing`) and `id` is data of an import
    /// a read pointer records: the import read from its source (all of it, or with
    /// not `whole` the manifest of a directory imported from a repository), if that
    /// still has what the pointer records (as a fetch gets it); else `missing`,
    /// with why the source could not give it.
    fn read_source(&self, id: &ObjectId, missing: crate::Error, whole: bool) -> Result<()> {
        let Some(noted) = self.noted_import(id) else {
            return Err(missing);
        };
        let (source, pointer, pointer_rel) = &*noted;
        let progress = crate::progress::NoProgress;
        let read = match &source {
            crate::pointer::Source::Url(src) => crate::ops::import_url::store_from_url(
                self.config_repo,
                &self.dest,
                src,
                pointer,
                pointer_rel,
                &progress,
            )
            .map(drop),
            // Once per import: what it brings makes every later `ensure` of it local.
            crate::pointer::Source::Repo(src) => {
                let clones = crate::ops::import::Clones::default();
                crate::ops::import::store_from_source(
                    self.config_repo,
                    &self.dest,
                    src,
                    pointer,
                    whole,
                    &clones,
                    &progress,
                )
            }
        };
        let why = match read {
            Ok(()) if self.dest.contains(id) => return Ok(()),
            Ok(()) => return Err(missing),
            Err(why) => why,
        };
        let origin = Box::new((source.origin().to_string(), crate::error_chain(&why)));
        Err(match missing {
            crate::Error::Remote(RemoteError::Missing { remote, id, path, .. })
            | crate::Error::Remote(RemoteError::MissingInRead { remote, id, path }) => RemoteError::MissingFromSource {
                remote: Some(remote),
                id,
                path,
                origin,
                read: self.read_repo,
            }
            .into(),
            // No remote: the source was the only place to look. A repository says
            // which one it was (it may have imported the data in turn).
            crate::Error::Cache(CacheError::Missing { id, path })
                if matches!(source, crate::pointer::Source::Repo(_)) =>
            {
                RemoteError::MissingFromSource {
                    remote: None,
                    id,
                    path,
                    origin,
                    read: self.read_repo,
                }
                .into()
            }
            _ => why,
        })
    }

    /// `e`, met downloading: for another repository's objects, said as such
    /// (see [`crate::Error::in_read_repo`]).
    pub(crate) fn as_met(&self, e: crate::Error) -> crate::Error {
        match self.read_repo {
            true => e.in_read_repo(),
            false => e,
        }
    }

    /// The manifest of tracked directory `t`.
    pub fn manifest(&self, t: &Tracked) -> Result<Manifest> {
        if t.pointer.kind != Kind::Dir {
            return Err(PathError::NotTracked {
                target: t.data_rel.clone(),
                holds_tracked: false,
                closest: None,
            }
            .into());
        }
        self.note(t);
        self.ensure(&t.pointer.id, Some(&t.data_rel))?;
        let m = t.manifest(&self.dest)?;
        self.note_ids(t, m.files.iter().map(|e| e.id), true);
        Ok(m)
    }
}

/// Where `rel` is inside what `t` tracks (empty: `rel` is its path); `None`
/// if it is not, or if it would be below a tracked file (`model.bin/x`).
fn inside_tracked(t: &Tracked, rel: &str) -> Option<String> {
    inside(&t.data_rel, rel).filter(|inner| inner.is_empty() || t.pointer.kind == Kind::Dir)
}

/// Whether tracked `t` was imported from a URL and `cache` lacks its data (its
/// object, or a directory's manifest): imported with `--no-download`, and not
/// pulled since. `push` leaves it out, and so does what `tag` requires.
pub fn url_import_not_here(t: &Tracked, cache: &Cache) -> bool {
    matches!(t.pointer.source, Some(crate::pointer::Source::Url(_))) && !cache.contains(&t.pointer.id)
}

/// Whether `e`, met reading tracked `t`, says that it was imported from a URL
/// and never downloaded: none of it is stored anywhere dvt looks, and its URL
/// gives it (see [`Objects::following_sources`]).
pub fn not_downloaded(t: &Tracked, e: &crate::Error) -> bool {
    matches!(t.pointer.source, Some(crate::pointer::Source::Url(_)))
        && (is_missing(e) || matches!(e, crate::Error::Remote(RemoteError::NotDownloaded { .. })))
}

/// Whether `e` says an object is nowhere it was looked for (the remote, or
/// the cache when there is no remote), rather than that looking failed.
pub(crate) fn is_missing(e: &crate::Error) -> bool {
    matches!(
        e,
        crate::Error::Remote(RemoteError::Missing { .. } | RemoteError::MissingInRead { .. })
            | crate::Error::Cache(CacheError::Missing { .. })
    )
}

/// Which revisions' pointers an operation covers, besides the workspace's.
#[derive(Debug, Clone, Default)]
pub struct Revisions {
    /// Named revisions (tags, branches, commits).
    pub revs: Vec<String>,
    /// Every local branch's tip.
    pub all_branches: bool,
    /// Every tag.
    pub all_tags: bool,
    /// Every commit reachable from HEAD, the branches and the tags.
    pub all_commits: bool,
    /// Every experiment (`dvt exp run`), and the work trees queued ones run from.
    pub all_experiments: bool,
    /// Each of `revs` counts for this many commits: itself and its first-parent
    /// ancestors (DVC's `gc --rev REV -n N`); `None` means 1.
    pub num: Option<usize>,
    /// Every commit reachable from HEAD, the branches and the tags that was made
    /// at or after this time, in seconds since the epoch (DVC's `gc --date`).
    pub since: Option<i64>,
}

impl Revisions {
    /// Whether any revision is asked for.
    pub fn any(&self) -> bool {
        !self.revs.is_empty()
            || self.all_branches
            || self.all_tags
            || self.all_commits
            || self.all_experiments
            || self.since.is_some()
    }

    /// The commits selected, each once, with `head` (HEAD) added when asked.
    pub fn commits(&self, git: &Git, head: bool) -> Result<Vec<GitId>> {
        let mut tips: Vec<GitId> = if head {
            git.head()?.into_iter().collect()
        } else {
            Vec::new()
        };
        for r in &self.revs {
            let mut commit = git.resolve(r)?;
            tips.push(commit);
            for _ in 1..self.num.unwrap_or(1) {
                let Some(parent) = git.parent_of(commit)? else {
                    break;
                };
                tips.push(parent);
                commit = parent;
            }
        }
        if let Some(since) = self.since {
            let mut heads: Vec<GitId> = git.head()?.into_iter().collect();
            heads.extend(git.branches()?.into_iter().map(|(_, c)| c));
            heads.extend(git.tags()?.into_iter().map(|(_, c)| c));
            tips.extend(git.walk_since(&heads, since)?.into_iter().map(|c| c.id));
        }
        if self.all_branches || self.all_commits {
            tips.extend(git.branches()?.into_iter().map(|(_, c)| c));
        }
        if self.all_tags || self.all_commits {
            tips.extend(git.tags()?.into_iter().map(|(_, c)| c));
        }
        if self.all_experiments {
            tips.extend(git.experiments()?.into_iter().map(|e| e.commit));
            // And what queued experiments will run from.
            tips.extend(git.commits_under(crate::git::QUEUED_REFS)?);
        }
        tips.sort();
        tips.dedup();
        if self.all_commits {
            return Ok(git.walk(&tips)?.into_iter().map(|c| c.id).collect());
        }
        Ok(tips)
    }

    /// The tracked paths of the selected revisions (not the workspace), each
    /// (path, id) once.
    ///
    /// A pointer file (or `dvt.lock`) a commit holds that cannot be read is left
    /// out, its error (with the commit) in the second list: history cannot be
    /// mended, and what the others need still moves.
    pub fn tracked(&self, repo: &Repo) -> Result<(Vec<Tracked>, Vec<String>)> {
        if !self.any() {
            return Ok((Vec::new(), Vec::new()));
        }
        let git = Rc::new(Git::open(repo.root())?);
        let mut seen = rustc_hash::FxHashSet::default();
        let (mut out, mut unreadable) = (Vec::new(), Vec::new());
        for c in self.commits(&git, false)? {
            let (read, failed) = Snapshot::at_commit(repo, git.clone(), short(&c), c).readable_pointers()?;
            for t in read {
                if seen.insert((t.data_rel.clone(), t.pointer.id)) {
                    out.push(t);
                }
            }
            unreadable.extend(failed.iter().map(|e| crate::error_chain(e)));
        }
        Ok((out, unreadable))
    }
}

/// Resolves the repository for an API call: `repo` (a directory inside a dvt
/// repository) or the current directory.
pub fn open_repo(repo: Option<&Path>) -> Result<Repo> {
    match repo {
        Some(p) => Repo::open(p),
        None => Repo::open(&std::env::current_dir()?),
    }
}
