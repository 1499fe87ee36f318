#!/usr/bin/env python3
"""Checks the mdBook in docs/ without building it.

- every relative link points to a file that exists, and every `#anchor` to a
  heading of that file (ids made as mdBook makes them);
- every page under docs/ is listed in docs/SUMMARY.md;
- with the path of a `dvt` binary: every command of `dvt --help` has a page whose
  title names it (`# dvt NAME`, or a title listing several commands);
- the options table of remotes.md and the option lists of src/remote/config.rs
  agree: each option a row names is one its kind of remote takes, and each one
  a kind takes is in the page.

Prints one line per problem and exits 1 if there is any.
"""

import pathlib
import re
import subprocess
import sys

DOCS = pathlib.Path(__file__).resolve().parent.parent / "docs"
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^(```|~~~)")


def prose(text):
    """The lines of a page outside fenced code blocks."""
    inside = False
    for line in text.splitlines():
        if FENCE.match(line.strip()):
            inside = not inside
            continue
        if not inside:
            yield line


def heading_ids(page):
    """The ids mdBook gives the headings of `page`."""
    ids, seen = set(), {}
    for line in prose(page.read_text()):
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not m:
            continue
        text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", m.group(1))
        base = "".join(
            c if c.isalnum() or c in "-_" else "-" if c.isspace() else ""
            for c in text.lower()
        )
        n = seen.get(base, 0)
        seen[base] = n + 1
        ids.add(base if n == 0 else f"{base}-{n}")
    return ids


def check_links(problems):
    for page in sorted(DOCS.rglob("*.md")):
        # A link's text may run over two lines; inline code may hold text that
        # looks like a link.
        text = "\n".join(prose(page.read_text()))
        for target in LINK.findall(re.sub(r"`[^`\n]*`", "", text)):
            if re.match(r"^[a-z]+:", target):
                continue
            path, _, anchor = target.partition("#")
            dest = (page.parent / path).resolve() if path else page
            where = page.relative_to(DOCS)
            if not dest.exists():
                problems.append(f"{where}: link to a missing file: {target}")
            elif anchor and dest.suffix == ".md" and anchor not in heading_ids(dest):
                problems.append(f"{where}: link to a missing heading: {target}")


def check_summary(problems):
    listed = {
        (DOCS / t).resolve()
        for t in LINK.findall((DOCS / "SUMMARY.md").read_text())
    }
    for page in sorted(DOCS.rglob("*.md")):
        if page.name != "SUMMARY.md" and page.resolve() not in listed:
            problems.append(f"{page.relative_to(DOCS)}: not listed in SUMMARY.md")


def check_commands(dvt, problems):
    help_text = subprocess.run([dvt, "--help"], capture_output=True, text=True, check=True).stdout
    commands = re.search(r"^Commands:\n(.*?)\n\n", help_text, re.S | re.M).group(1)
    names = [line.split()[0] for line in commands.splitlines() if line.startswith("  ")]
    titles = " ".join(
        page.read_text().splitlines()[0] for page in (DOCS / "commands").glob("*.md")
    )
    for name in names:
        if name != "help" and not re.search(rf"`?dvt {re.escape(name)}\b", titles):
            problems.append(f"dvt {name}: no page of docs/commands/ has it in its title")


def check_remote_options(problems):
    source = (DOCS.parent / "src" / "remote" / "config.rs").read_text()
    lists = {
        m.group(1): re.findall(r'"([a-z_0-9]+)"', m.group(2))
        for m in re.finditer(r"const ([A-Z0-9]+)_KEYS: &\[&str\] = &\[(.*?)\];", source, re.S)
    }
    common = set(lists.get("COMMON", []))
    rows = {"S3": "S3", "GCS": "GCS", "Azure": "AZURE", "directory": "LOCAL", "SSH": "SSH", "WebDAV": "HTTP"}
    page = (DOCS / "remotes.md").read_text()
    for line in page.splitlines():
        cells = line.split("|")
        if len(cells) < 3 or cells[1].strip() not in rows:
            continue
        kind = rows[cells[1].strip()]
        takes = set(lists.get(kind, [])) | common
        for name in re.findall(r"`([a-z][a-z0-9_]*)`", cells[2]):
            if name not in takes and name not in ("true", "false", "none"):
                problems.append(f"remotes.md: the {cells[1].strip()} row names `{name}`, which {kind}_KEYS lacks")
    for kind, names in lists.items():
        for name in names:
            if name != "url" and f"`{name}`" not in page:
                problems.append(f"remotes.md: `{name}` ({kind}_KEYS) is not in the page")


def main():
    problems = []
    check_links(problems)
    check_summary(problems)
    check_remote_options(problems)
    if len(sys.argv) > 1:
        check_commands(sys.argv[1], problems)
    for p in problems:
        print(p)
    if problems:
        sys.exit(1)
    print("docs: links, anchors, summary" + (" and command pages" if len(sys.argv) > 1 else "") + " check out")


if __name__ == "__main__":
    main()
