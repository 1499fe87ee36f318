//! Validation of relative paths that come from untrusted files.
//!
//! Pointer files, manifests and (later) lock files and remotes name paths. Before
//! any of them is joined to a directory, it must be a plain relative path:
//! `/`-separated, no empty, `.` or `..` component, not absolute, no NUL.

/// Checks that `path` is a plain relative path; the error says why not.
pub fn validate(path: &str) -> Result<(), &'static str> {
    if path.is_empty() {
        return Err("the path is empty");
    }
    if path.starts_with('/') {
        return Err("absolute paths are not allowed");
    }
    if path.contains('\0') {
        return Err("the path contains a NUL byte");
    }
    for part in path.split('/') {
        match part {
            "" => return Err("the path has an empty component (`//` or a trailing `/`)"),
            "." => return Err("`.` components are not allowed"),
            ".." => return Err("`..` components are not allowed"),
            _ => {}
        }
    }
    Ok(())
}

/// Whether `inner` is `outer` or below it (`/`-separated relative paths; the
/// empty path, the root, holds everything).
pub fn within(inner: &str, outer: &str) -> bool {
    outer.is_empty()
        || inner
            .strip_prefix(outer)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)]
mod tests {
    use super::validate;
    use proptest::prelude::*;

    #[test]
    fn examples() {
        assert!(validate("a/b c/ü.csv").is_ok());
        assert!(validate("..a/b..").is_ok(), "dots inside names are fine");
        for bad in ["", "/a", "a/../b", "..", "./a", "a/", "a//b", "a\0b"] {
            assert!(validate(bad).is_err(), "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn accepted_paths_never_escape(path in "[a./]{1,12}") {
            if validate(&path).is_ok() {
                let mut depth = 0i32;
                for part in path.split('/') {
                    depth += if part == ".." { -1 } else { 1 };
                    prop_assert!(depth > 0);
                }
            }
        }
    }
}
