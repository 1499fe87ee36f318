//! Seals: a checksum of a big object's stored bytes, so that a push can tell an
//! intact cache object from a damaged one without decompressing it.
//!
//! A zstd object that the cache streams into its own file (content over
//! [`crate::cache::SMALL_OBJECT`]) ends with a zstd *skippable frame* of [`LEN`]
//! bytes, which every zstd decoder (`zstd -d` too) passes over:
//!
//! | bytes | value |
//! | --- | --- |
//! | 4 | magic `5d 2a 4d 18` (skippable frame 0x184D2A5D, little-endian) |
//! | 4 | 40, the frame's payload length (u32, little-endian) |
//! | 8 | `dvtseal1` |
//! | 32 | BLAKE3 keyed by the object's id, of the BLAKE3 hash of every stored byte before the seal |
//!
//! Keying by the id ties a seal to its object: another object's file put in its
//! place does not pass. The seal is computed while the object is written, in the
//! pass that computes its id, so it vouches for exactly the bytes written then.
//!
//! Only bytes from this machine's cache are checked by seal (push). Bytes that
//! come from a remote are always decoded and hashed against the id, seal or not.
//! A seal that does not match is not an error by itself: the object is then
//! verified the long way, by decoding it.

use std::io::Write;
use std::os::unix::fs::FileExt;

use crate::object::ObjectId;

/// The length of a seal frame.
pub const LEN: usize = 48;
const MAGIC: [u8; 4] = [0x5d, 0x2a, 0x4d, 0x18];
const PAYLOAD: u32 = 40;
const TAG: &[u8; 8] = b"dvtseal1";

/// The seal frame for object `id` whose stored bytes before it hash to `stored`.
pub fn frame(id: &ObjectId, stored: &blake3::Hash) -> [u8; LEN] {
    let mut out = [0u8; LEN];
    out[..4].copy_from_slice(&MAGIC);
    out[4..8].copy_from_slice(&PAYLOAD.to_le_bytes());
    out[8..16].copy_from_slice(TAG);
    out[16..].copy_from_slice(&value(id, stored));
    out
}

fn value(id: &ObjectId, stored: &blake3::Hash) -> [u8; 32] {
    *blake3::keyed_hash(id.as_bytes(), stored.as_bytes()).as_bytes()
}

/// The sealed value in `tail` (an object's last [`LEN`] bytes), if it is a seal.
pub fn parse(tail: &[u8]) -> Option<[u8; 32]> {
    let ok = tail.len() == LEN && tail[..4] == MAGIC && tail[4..8] == PAYLOAD.to_le_bytes() && &tail[8..16] == TAG;
    ok.then(|| {
        let mut v = [0u8; 32];
        v.copy_from_slice(&tail[16..]);
        v
    })
}

fn update(hasher: &mut blake3::Hasher, bytes: &[u8]) {
    // Below ~128 KiB, splitting over threads costs more than it saves.
    if bytes.len() >= 128 << 10 {
        hasher.update_rayon(bytes);
    } else {
        hasher.update(bytes);
    }
}

/// A writer that passes bytes through to `inner` and hashes them, then ends
/// what it wrote with a seal ([`Sealer::seal`]).
pub struct Sealer<W: Write> {
    inner: W,
    hasher: blake3::Hasher,
}

impl<W: Write> Sealer<W> {
    /// A sealer writing to `inner`.
    pub fn new(inner: W) -> Self {
        Sealer {
            inner,
            hasher: blake3::Hasher::new(),
        }
    }

    /// Appends the seal for object `id` and returns the inner writer.
    pub fn seal(mut self, id: &ObjectId) -> std::io::Result<W> {
        let frame = frame(id, &self.hasher.finalize());
        self.inner.write_all(&frame)?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for Sealer<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        update(&mut self.hasher, &buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Checks a stream of stored bytes against the seal at their end: feed every
/// stored byte in order ([`SealCheck::update`]), then [`SealCheck::matches`].
#[derive(Debug)]
pub struct SealCheck {
    id: ObjectId,
    expected: [u8; 32],
    hasher: blake3::Hasher,
    /// Stored bytes before the seal not yet fed.
    remaining: u64,
}

impl SealCheck {
    /// A check of object `id`, `len` stored bytes ending in `tail` (its last
    /// [`LEN`] bytes); `None` when there is no seal to check against.
    pub fn new(id: &ObjectId, len: u64, tail: &[u8]) -> Option<Self> {
        let expected = parse(tail)?;
        Some(SealCheck {
            id: *id,
            expected,
            hasher: blake3::Hasher::new(),
            remaining: len.checked_sub(LEN as u64)?,
        })
    }

    /// Feeds the next stored bytes (the seal's own bytes are skipped).
    pub fn update(&mut self, chunk: &[u8]) {
        let take = (chunk.len() as u64).min(self.remaining) as usize;
        update(&mut self.hasher, &chunk[..take]);
        self.remaining -= take as u64;
    }

    /// Whether every byte before the seal was fed and they match it.
    pub fn matches(&self) -> bool {
        self.remaining == 0 && value(&self.id, &self.hasher.finalize()) == self.expected
    }
}

/// Whether `stored`, object `id`'s stored form held whole, ends with a seal that
/// matches it.
pub fn matches(id: &ObjectId, stored: &[u8]) -> bool {
    let tail = &stored[stored.len().saturating_sub(LEN)..];
    SealCheck::new(id, stored.len() as u64, tail).is_some_and(|mut c| {
        c.update(stored);
        c.matches()
    })
}

/// Whether the `len` stored bytes at `start` in `file` end with a seal that
/// matches object `id`. `false` when there is no seal or it does not match.
pub fn check(id: &ObjectId, file: &std::fs::File, start: u64, len: u64) -> std::io::Result<bool> {
    if len < LEN as u64 {
        return Ok(false);
    }
    let mut tail = [0u8; LEN];
    file.read_exact_at(&mut tail, start + len - LEN as u64)?;
    let Some(mut check) = SealCheck::new(id, len, &tail) else {
        return Ok(false);
    };
    crate::fsutil::read_range(file, start, len - LEN as u64, |b| check.update(b))?;
    Ok(check.matches())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealed(id: &ObjectId, body: &[u8]) -> Vec<u8> {
        let mut s = Sealer::new(Vec::new());
        s.write_all(body).unwrap();
        s.seal(id).unwrap()
    }

    #[test]
    fn a_seal_matches_its_bytes_and_id_only() {
        let id = ObjectId::of(b"content");
        let body = vec![7u8; 300_000];
        let bytes = sealed(&id, &body);
        assert_eq!(bytes.len(), body.len() + LEN);
        let check = |id: &ObjectId, bytes: &[u8]| {
            let mut c = SealCheck::new(id, bytes.len() as u64, &bytes[bytes.len() - LEN..])?;
            for chunk in bytes.chunks(100_000) {
                c.update(chunk);
            }
            Some(c.matches())
        };
        assert_eq!(check(&id, &bytes), Some(true));
        // Another object's id, a changed byte, or a changed seal: no match.
        assert_eq!(check(&ObjectId::of(b"other"), &bytes), Some(false));
        let mut flipped = bytes.clone();
        flipped[12_345] ^= 1;
        assert_eq!(check(&id, &flipped), Some(false));
        let mut bad_seal = bytes.clone();
        *bad_seal.last_mut().unwrap() ^= 1;
        assert_eq!(check(&id, &bad_seal), Some(false));
        // No seal at all: nothing to check against.
        assert_eq!(check(&id, &body), None);
        assert!(matches(&id, &bytes) && !matches(&id, &flipped) && !matches(&id, &body));
        assert!(!matches(&id, &bytes[..20]));
    }

    #[test]
    fn zstd_decoders_pass_over_a_seal() {
        let content = b"t,value\n".repeat(10_000);
        let id = ObjectId::of(&content);
        let z = zstd::bulk::compress(&content, 1).unwrap();
        let bytes = sealed(&id, &z);
        assert_eq!(zstd::stream::decode_all(&bytes[..]).unwrap(), content);
        let mut d = zstd::bulk::Decompressor::new().unwrap();
        assert_eq!(d.decompress(&bytes, content.len()).unwrap(), content);
    }
}
