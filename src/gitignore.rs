//! Keeping tracked data out of git: entries in the `.gitignore` beside a pointer.

use std::path::Path;

use crate::error::Result;
use crate::fsutil::atomic_write;

/// The `.gitignore` line that ignores `name` in its own directory only.
/// A line break cannot be written in a pattern, so it is written as `?` (any
/// one character but `/`): the name is ignored, and so would be one that
/// differs from it only there.
pub fn entry_for(name: &str) -> String {
    let mut out = String::from("/");
    for (i, c) in name.chars().enumerate() {
        if matches!(c, '\n' | '\r') {
            out.push('?');
            continue;
        }
        if matches!(c, '*' | '?' | '[' | ']' | '\\') || (i == 0 && matches!(c, '#' | '!')) {
            out.push('\\');
        }
        out.push(c);
    }
    if out.ends_with(' ') {
        let trimmed = out.trim_end_matches(' ').len();
        let spaces = out.len() - trimmed;
        out.truncate(trimmed);
        out.push_str(&"\\ ".repeat(spaces));
    }
    out
}

/// Adds an entry for `name` to `dir/.gitignore` unless it is there. Returns whether
/// the file changed.
pub fn add(dir: &Path, name: &str) -> Result<bool> {
    add_all(dir, &[name])
}

/// Adds the entries for `names` missing from `dir/.gitignore`, in one write
/// (each write is flushed to disk: one per file, not one per name). Returns
/// whether the file changed.
pub fn add_all(dir: &Path, names: &[&str]) -> Result<bool> {
    let file = dir.join(".gitignore");
    let mut text = match fs_err::read_to_string(&file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e.into()),
    };
    let mut have: std::collections::HashSet<String> = text.lines().map(str::to_string).collect();
    let before = text.len();
    let eol = line_end(&text);
    for name in names {
        let line = entry_for(name);
        if have.contains(&line) {
            continue;
        }
        if !text.is_empty() && !text.ends_with('\n') {
            text.push_str(eol);
        }
        text.push_str(&line);
        text.push_str(eol);
        have.insert(line);
    }
    if text.len() == before {
        return Ok(false);
    }
    atomic_write(&file, text.as_bytes())?;
    crate::autostage::note(&file);
    Ok(true)
}

/// Adds the entries for the data at `paths` to the `.gitignore` beside each,
/// writing each `.gitignore` once (see [`add_all`]).
pub fn add_beside(paths: &[&Path]) -> Result<()> {
    for (dir, names) in by_directory(paths) {
        add_all(dir, &names)?;
    }
    Ok(())
}

/// Removes the entries for the data at `paths` from the `.gitignore` beside
/// each, writing each `.gitignore` once (see [`remove_all`]).
pub fn remove_beside(paths: &[&Path]) -> Result<()> {
    for (dir, names) in by_directory(paths) {
        remove_all(dir, &names)?;
    }
    Ok(())
}

/// `paths` grouped by their directory, in the order first met, each as its
/// file name.
fn by_directory<'a>(paths: &[&'a Path]) -> Vec<(&'a Path, Vec<&'a str>)> {
    let mut groups: Vec<(&Path, Vec<&str>)> = Vec::new();
    for p in paths {
        let (Some(dir), Some(name)) = (p.parent(), p.file_name().and_then(|n| n.to_str())) else {
            continue;
        };
        match groups.iter_mut().find(|(d, _)| *d == dir) {
            Some((_, names)) => names.push(name),
            None => groups.push((dir, vec![name])),
        }
    }
    groups
}

/// The line ending a `.gitignore` uses: `\r\n` where git wrote it so
/// (`core.autocrlf`), which lines dvt adds keep to.
fn line_end(text: &str) -> &'static str {
    match text.contains("\r\n") {
        true => "\r\n",
        false => "\n",
    }
}

/// Removes the entry for `name` from `dir/.gitignore`, deleting the file if
/// nothing else is left in it. Returns whether the file changed.
pub fn remove(dir: &Path, name: &str) -> Result<bool> {
    remove_all(dir, &[name])
}

/// Removes the entries for `names` from `dir/.gitignore` in one write,
/// deleting the file if nothing else is left in it. Returns whether the file
/// changed.
pub fn remove_all(dir: &Path, names: &[&str]) -> Result<bool> {
    let file = dir.join(".gitignore");
    let gone: std::collections::HashSet<String> = names.iter().map(|n| entry_for(n)).collect();
    let text = match fs_err::read_to_string(&file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e.into()),
    };
    if !text.lines().any(|l| gone.contains(l)) {
        return Ok(false);
    }
    let kept: Vec<&str> = text.lines().filter(|l| !gone.contains(*l)).collect();
    if kept.iter().all(|l| l.trim().is_empty()) {
        fs_err::remove_file(&file)?;
    } else {
        let eol = line_end(&text);
        atomic_write(&file, (kept.join(eol) + eol).as_bytes())?;
    }
    crate::autostage::note(&file);
    Ok(true)
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)]
mod tests {
    use super::*;

    #[test]
    fn escapes_glob_characters() {
        assert_eq!(entry_for("raw"), "/raw");
        assert_eq!(entry_for("a*b [1]"), "/a\\*b \\[1\\]");
        assert_eq!(entry_for("#x"), "/\\#x");
        assert_eq!(entry_for("x "), "/x\\ ");
        assert_eq!(entry_for("new\nline\r"), "/new?line?");
    }

    #[test]
    fn add_then_remove_restores() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join(".gitignore"), "*.pyc").unwrap();
        assert!(add(d.path(), "raw").unwrap());
        assert!(!add(d.path(), "raw").unwrap());
        assert_eq!(
            std::fs::read_to_string(d.path().join(".gitignore")).unwrap(),
            "*.pyc\n/raw\n"
        );
        assert!(remove(d.path(), "raw").unwrap());
        assert_eq!(std::fs::read_to_string(d.path().join(".gitignore")).unwrap(), "*.pyc\n");
        // A file git wrote with CRLF (core.autocrlf) keeps them.
        std::fs::write(d.path().join(".gitignore"), "*.pyc\r\n/raw\r\n").unwrap();
        add(d.path(), "model.bin").unwrap();
        let text = std::fs::read_to_string(d.path().join(".gitignore")).unwrap();
        assert_eq!(text, "*.pyc\r\n/raw\r\n/model.bin\r\n");
        remove(d.path(), "raw").unwrap();
        let text = std::fs::read_to_string(d.path().join(".gitignore")).unwrap();
        assert_eq!(text, "*.pyc\r\n/model.bin\r\n");
    }
}
