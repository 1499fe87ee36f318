//! Keeping tracked data out of git: entries in the `.gitignore` beside a pointer.

use std::path::Path;

use crate::error::Result;
use crate::fsutil::atomic_write;

/// The `.gitignore` line that ignores `name` in its own directory only.
pub fn entry_for(name: &str) -> String {
    let mut out = String::from("/");
    for (i, c) in name.chars().enumerate() {
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
    let file = dir.join(".gitignore");
    let line = entry_for(name);
    let mut text = match fs_err::read_to_string(&file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e.into()),
    };
    if text.lines().any(|l| l == line) {
        return Ok(false);
    }
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(&line);
    text.push('\n');
    atomic_write(&file, text.as_bytes())?;
    crate::autostage::note(&file);
    Ok(true)
}

/// Removes the entry for `name` from `dir/.gitignore`, deleting the file if
/// nothing else is left in it. Returns whether the file changed.
pub fn remove(dir: &Path, name: &str) -> Result<bool> {
    let file = dir.join(".gitignore");
    let line = entry_for(name);
    let text = match fs_err::read_to_string(&file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e.into()),
    };
    if !text.lines().any(|l| l == line) {
        return Ok(false);
    }
    let kept: Vec<&str> = text.lines().filter(|l| *l != line).collect();
    if kept.iter().all(|l| l.trim().is_empty()) {
        fs_err::remove_file(&file)?;
    } else {
        atomic_write(&file, (kept.join("\n") + "\n").as_bytes())?;
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
    }
}
