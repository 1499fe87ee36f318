//! The format corpus in `fixtures/formats/`: every valid file parses and is written
//! back byte for byte (the formats are canonical); every invalid one is refused
//! with an error that names the file and says what its `.expect` file says.

use std::path::{Path, PathBuf};

use crate::manifest::Manifest;
use crate::object::ObjectId;
use crate::pipeline::lock::Lock;
use crate::pointer::Pointer;

/// How one format is read and written.
struct Format {
    dir: &'static str,
    ext: &'static str,
    /// Parses `bytes` read from `file`; `Ok` carries the canonical bytes.
    parse: fn(&[u8], &Path) -> crate::Result<Vec<u8>>,
}

/// The id a manifest fixture is parsed as (named in its errors).
fn manifest_id() -> ObjectId {
    ObjectId::of(b"fixture manifest")
}

const FORMATS: [Format; 3] = [
    Format {
        dir: "pointer",
        ext: "dvt",
        parse: |b, f| Pointer::parse(&String::from_utf8_lossy(b), f).map(|p| p.to_text().into_bytes()),
    },
    Format {
        dir: "manifest",
        ext: "manifest",
        parse: |b, _| Manifest::parse(b, &manifest_id()).map(|m| m.to_bytes()),
    },
    Format {
        dir: "lock",
        ext: "lock",
        parse: |b, f| Lock::parse(&String::from_utf8_lossy(b), f).map(|l| l.to_text().into_bytes()),
    },
];

fn files(kind: &str, dir: &str, ext: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/formats")
        .join(kind)
        .join(dir);
    let mut out: Vec<PathBuf> = fs_err::read_dir(&root)
        .unwrap_or_else(|e| panic!("{e}"))
        .map(|e| e.unwrap_or_else(|e| panic!("{e}")).path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no `*.{ext}` fixtures in {}", root.display());
    out
}

#[test]
fn valid_fixtures_parse_and_are_written_back_unchanged() {
    for f in FORMATS {
        for file in files("valid", f.dir, f.ext) {
            let bytes = fs_err::read(&file).unwrap_or_else(|e| panic!("{e}"));
            match (f.parse)(&bytes, &file) {
                Ok(written) => assert!(
                    written == bytes,
                    "{} is not canonical; dvt writes it as:\n{}",
                    file.display(),
                    String::from_utf8_lossy(&written)
                ),
                Err(e) => panic!("{}: {e}", file.display()),
            }
        }
    }
}

#[test]
fn invalid_fixtures_are_refused_with_the_expected_message() {
    for f in FORMATS {
        for file in files("invalid", f.dir, f.ext) {
            let bytes = fs_err::read(&file).unwrap_or_else(|e| panic!("{e}"));
            let expect = fs_err::read_to_string(file.with_extension("expect")).unwrap_or_else(|e| panic!("{e}"));
            let expect = expect.trim_end_matches('\n');
            let message = match (f.parse)(&bytes, &file) {
                Ok(_) => panic!("{} was accepted", file.display()),
                Err(e) => e.to_string(),
            };
            assert!(
                message.contains(expect),
                "{}: expected {expect:?} in: {message}",
                file.display()
            );
            // The error names what it concerns: the file, or the manifest's id.
            let named = match f.dir {
                "manifest" => manifest_id().to_string(),
                _ => file.display().to_string(),
            };
            assert!(message.contains(&named), "{}: not named in: {message}", file.display());
            assert!(
                !message.contains('\n'),
                "{}: more than one line: {message}",
                file.display()
            );
        }
    }
}
