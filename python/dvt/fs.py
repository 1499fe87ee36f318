"""A read-only file system over a dvt repository at one revision, as
`dvc.api.DVCFileSystem` gives one over a DVC repository: the files git keeps
and the data dvt tracks, side by side, under the paths they have in the
repository.

    from dvt.api import DvtFileSystem
    fs = DvtFileSystem("https://github.com/org/registry", rev="data-v2")
    fs.ls("data")                       # [{"name": "data/train.csv", "type": "file", ...}, ...]
    with fs.open("data/train.csv") as f:
        header = f.readline()
    fs.get("data/images", "images", recursive=True)

The method names and their answers are fsspec's (`ls`, `info`, `find`,
`walk`, `exists`, `open`, `cat_file`, `get`, ...), so code written for
DVCFileSystem reads the same; fsspec itself is not needed. As DVCFileSystem
leaves out DVC's own files, this leaves out dvt's: pointer files, `dvt.toml`,
`dvt.lock`, `.dvtignore` and `.dvt`. Every call runs the
`dvt` binary: `dvt list` for what is there (once, then remembered), `dvt cat`
or `dvt get` for content, which dvt verifies before Python sees a byte.
"""

import json
import os
import posixpath
import tempfile

from . import api as _api


class DvtFileSystem:
    """The files of a dvt repository at a revision (see the module's doc).

    url: a local path inside the repository (default: the current directory)
    or a git URL (https://, ssh://, git@host:path, file://); `repo` is accepted
    for it too, as `dvc.api` names it.
    rev: a git revision or an experiment's name. Default: a local
    repository's work tree as it is (its pointers' data, and the files git
    does not ignore), as DVCFileSystem reads it; a URL's default branch.
    remote, remote_config, config: as in `dvt.api.open` (the last two for
    URLs only).

    Paths are relative to the repository's root (a leading `/` is allowed);
    the listing is read once, at the commit the revision names then, and
    every later call reads that commit (a work tree is read as it is at
    each call).
    """

    protocol = "dvt"

    def __init__(self, url=None, rev=None, remote=None, config=None, remote_config=None, repo=None):
        if url is not None and repo is not None:
            raise ValueError("give the repository as url= or repo=, not both")
        url = url if url is not None else repo
        _api._only_for_urls(url, config, remote_config)
        if _api._is_url(url):
            self._repo = os.fspath(url)
            self._local = None
        else:
            self._local = os.path.abspath(_api._root(url))
            self._repo = self._local
        self._rev = rev
        self._remote = remote
        self._config = config
        self._remote_config = remote_config
        self._files = None
        self._dirs = None
        self.commit = None

    # -- what is there ---------------------------------------------------

    def _run_with_source(self, cmd, rev):
        """Runs `cmd` (a `dvt list` or `dvt get` of the repository) with the
        revision and the remote options of this file system."""
        with tempfile.TemporaryDirectory(prefix="dvt-fs-") as tmp:
            return _api._run(cmd + _api._source_options(rev, self._remote, self._config, self._remote_config, tmp))

    def _load(self):
        if self._files is not None:
            return
        cmd = [_api._binary(), "-q", "list", self._repo, "-R", "--size", "--json"]
        listing = json.loads(self._run_with_source(cmd, self._rev))
        self.commit = listing["commit"]
        self._rev = self.commit or self._rev
        files, dirs = {}, {"": set()}
        for e in listing["entries"]:
            path = e["path"]
            # dvt's own files (pointers, dvt.toml, ...): `dvt list` marks them.
            if e.get("dvt_file"):
                continue
            files[path] = {
                "name": path,
                "type": "file",
                "size": e.get("size"),
                "isexec": e.get("executable", False),
                "isdvt": e.get("keeper") == "dvt",
                "id": e.get("id"),
            }
            child = path
            while child:
                parent = posixpath.dirname(child)
                dirs.setdefault(parent, set()).add(child)
                child = parent
        self._files, self._dirs = files, dirs

    @staticmethod
    def _path(path):
        path = os.fspath(path).strip("/")
        return "" if path in ("", ".") else posixpath.normpath(path)

    def _dir_info(self, path):
        below = [f for p, f in self._files.items() if path == "" or p.startswith(path + "/")]
        known = [f["size"] for f in below]
        return {
            "name": path,
            "type": "directory",
            "size": sum(known) if None not in known else None,
            "isexec": False,
            # Whether everything in it is dvt's data.
            "isdvt": bool(below) and all(f["isdvt"] for f in below),
            "id": None,
        }

    def info(self, path):
        """What is at `path`: a dict with name, type ("file" or "directory"),
        size, isexec, isdvt (dvt keeps it) and id (dvt's id of a file it
        keeps). FileNotFoundError if nothing."""
        self._load()
        path = self._path(path)
        if path in self._files:
            return dict(self._files[path])
        if path in self._dirs:
            return self._dir_info(path)
        raise FileNotFoundError(path)

    def exists(self, path):
        try:
            self.info(path)
            return True
        except FileNotFoundError:
            return False

    def isdir(self, path):
        return self.exists(path) and self.info(path)["type"] == "directory"

    def isfile(self, path):
        return self.exists(path) and self.info(path)["type"] == "file"

    def size(self, path):
        return self.info(path)["size"]

    def ls(self, path="", detail=True):
        """The entries just below directory `path` (a file: itself), sorted by
        name; dicts as `info` gives them, or (detail=False) their paths."""
        info = self.info(path)
        if info["type"] == "file":
            entries = [info]
        else:
            entries = [self.info(child) for child in sorted(self._dirs.get(info["name"], ()))]
        return entries if detail else [e["name"] for e in entries]

    def find(self, path="", maxdepth=None, withdirs=False, detail=False, dvt_only=False, dvc_only=False):
        """Every file below `path` (with withdirs=True, directories too),
        sorted; no deeper than `maxdepth` levels. dvt_only (or dvc_only, as
        DVCFileSystem names it): only what dvt keeps."""
        info = self.info(path)
        base = info["name"]
        if info["type"] == "file":
            found = {base: info}
        else:
            found = {}
            for p, f in self._files.items():
                if base and not p.startswith(base + "/"):
                    continue
                rest = p[len(base) + 1 :] if base else p
                depth = rest.count("/") + 1
                if maxdepth is not None and depth > maxdepth:
                    continue
                found[p] = f
                if withdirs:
                    parent = posixpath.dirname(p)
                    while parent != base and parent not in found:
                        found[parent] = self._dir_info(parent)
                        parent = posixpath.dirname(parent)
        if dvt_only or dvc_only:
            found = {p: f for p, f in found.items() if f["isdvt"]}
        names = sorted(found)
        return {n: dict(found[n]) for n in names} if detail else names

    def walk(self, path="", maxdepth=None, detail=False):
        """As os.walk: (directory, its directories, its files) for `path` and
        every directory below it, top down."""
        info = self.info(path)
        if info["type"] != "directory":
            return
        top = info["name"]
        todo = [(top, 1)]
        while todo:
            current, depth = todo.pop()
            dirs, files = {}, {}
            for child in sorted(self._dirs.get(current, ())):
                name = posixpath.basename(child)
                if child in self._files:
                    files[name] = dict(self._files[child])
                else:
                    dirs[name] = self._dir_info(child)
            yield (current, dirs, files) if detail else (current, sorted(dirs), sorted(files))
            if maxdepth is None or depth < maxdepth:
                # Depth first, in name order, as os.walk goes.
                todo.extend((posixpath.join(current, d) if current else d, depth + 1) for d in sorted(dirs, reverse=True))

    def du(self, path="", total=True):
        """Bytes below `path`: their sum, or (total=False) each file's."""
        sizes = {p: f["size"] or 0 for p, f in self.find(path, detail=True).items()}
        return sum(sizes.values()) if total else sizes

    # -- content -----------------------------------------------------------

    def _source(self, path):
        """The arguments `dvt.api.open` and `read` take for file `path`."""
        info = self.info(path)
        if info["type"] == "directory":
            raise IsADirectoryError(info["name"])
        return dict(
            path=info["name"],
            repo=self._repo,
            rev=self._rev,
            remote=self._remote,
            config=self._config,
            remote_config=self._remote_config,
        )

    def open(self, path, mode="rb", encoding=None):
        """A file object of `path`'s content, for `with`; binary by default,
        as in DVCFileSystem (mode "r" for text). Read only."""
        if mode not in ("r", "rb"):
            raise ValueError('mode must be "r" or "rb" (the file system is read only), not {!r}'.format(mode))
        return _api.open(mode=mode, encoding=encoding, **self._source(path))

    def cat_file(self, path):
        """The whole content of file `path`, as bytes."""
        return _api.read(mode="rb", **self._source(path))

    read_bytes = cat_file

    def read_text(self, path, encoding=None):
        data = self.cat_file(path)
        return data.decode(encoding or "utf-8")

    def cat(self, path):
        return self.cat_file(path)

    def get(self, rpath, lpath, recursive=False):
        """Writes `rpath` (a file, or with recursive=True a directory and all
        below it) to local path `lpath`, or into it if it is a directory, as
        `cp` does; what is written is verified (`dvt get`)."""
        info = self.info(rpath)
        if info["type"] == "directory" and not recursive:
            raise IsADirectoryError("{} is a directory: pass recursive=True".format(info["name"] or "/"))
        lpath = os.fspath(lpath)
        name = posixpath.basename(info["name"]) or posixpath.basename(self._repo.rstrip("/")) or "repository"
        out = os.path.join(lpath, name) if os.path.isdir(lpath) else lpath
        cmd = [_api._binary(), "-q", "get", self._repo, info["name"] or ".", "-o", os.path.abspath(out), "--force"]
        self._run_with_source(cmd, self._rev)
        return out

    def get_file(self, rpath, lpath):
        """Writes file `rpath` to `lpath`."""
        self._source(rpath)
        return self.get(rpath, lpath)

    def download(self, rpath, lpath, recursive=False):
        return self.get(rpath, lpath, recursive=recursive)

    def __repr__(self):
        return "DvtFileSystem({!r}, rev={!r})".format(self._repo, self._rev)


__all__ = ["DvtFileSystem"]
