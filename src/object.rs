//! Object ids: the BLAKE3 hash of an object's uncompressed bytes.

use std::fmt;
use std::io::Read;
use std::str::FromStr;

/// The id of an object: BLAKE3 of its uncompressed content, shown as 64 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectId([u8; 32]);

impl ObjectId {
    /// The id of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        ObjectId(*blake3::hash(bytes).as_bytes())
    }

    /// Wraps a finished hasher.
    pub fn from_hasher(hasher: &blake3::Hasher) -> Self {
        ObjectId(*hasher.finalize().as_bytes())
    }

    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Builds an id from raw bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        ObjectId(bytes)
    }

    /// The object's path below a store root: `objects/ab/cdef…`.
    pub fn relative_path(&self) -> String {
        let hex = self.to_string();
        format!("objects/{}/{}", &hex[..2], &hex[2..])
    }

    /// Hashes everything `reader` yields.
    pub fn of_reader(mut reader: impl Read) -> std::io::Result<(Self, u64)> {
        let mut hasher = blake3::Hasher::new();
        let mut buf = vec![0u8; 256 * 1024];
        let mut total = 0u64;
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            hasher.update(&buf[..n]);
            total += n as u64;
        }
        Ok((Self::from_hasher(&hasher), total))
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0u8; 64];
        for (i, b) in self.0.iter().enumerate() {
            out[2 * i] = HEX[(b >> 4) as usize];
            out[2 * i + 1] = HEX[(b & 0xf) as usize];
        }
        // The buffer holds only ASCII hex digits.
        f.write_str(std::str::from_utf8(&out).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectId({self})")
    }
}

/// Why a string is not an object id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an object id (64 lowercase hex digits)")]
pub struct ParseIdError(pub String);

impl FromStr for ObjectId {
    type Err = ParseIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let b = s.as_bytes();
        if b.len() != 64 {
            return Err(ParseIdError(s.to_string()));
        }
        let mut out = [0u8; 32];
        for i in 0..32 {
            let hi = hex_val(b[2 * i]).ok_or_else(|| ParseIdError(s.to_string()))?;
            let lo = hex_val(b[2 * i + 1]).ok_or_else(|| ParseIdError(s.to_string()))?;
            out[i] = (hi << 4) | lo;
        }
        Ok(ObjectId(out))
    }
}

const fn hex_table() -> [u8; 256] {
    let mut t = [0xffu8; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
}

static HEX_VALUES: [u8; 256] = hex_table();

fn hex_val(c: u8) -> Option<u8> {
    let v = HEX_VALUES[c as usize];
    (v != 0xff).then_some(v)
}

impl serde::Serialize for ObjectId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for ObjectId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        let id = ObjectId::of(b"hello");
        let s = id.to_string();
        assert_eq!(s, blake3::hash(b"hello").to_hex().as_str());
        assert_eq!(s.parse::<ObjectId>().unwrap(), id);
        assert!(id.relative_path().starts_with(&format!("objects/{}/", &s[..2])));
    }

    #[test]
    fn rejects_bad_ids() {
        assert!("abc".parse::<ObjectId>().is_err());
        assert!("G".repeat(64).parse::<ObjectId>().is_err());
        assert!(
            "A".repeat(64).parse::<ObjectId>().is_err(),
            "uppercase is not canonical"
        );
    }
}
