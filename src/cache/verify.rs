//! Checking an object's stored bytes as they stream to or from a remote.

use super::*;
use std::borrow::Cow;

/// Checks stored bytes as they stream past: feed the stored form of one object in
/// chunks, and [`StoredVerifier::finish`] says whether it decodes to content whose
/// hash is the object's id. Used for objects moving to and from remotes.
pub struct StoredVerifier {
    decoder: Box<StoredDecoder<HashSink>>,
}

/// Hashes decoded content (on a second thread for big objects, see [`crate::pipe`])
/// and, optionally, writes it to a file.
struct HashSink(crate::pipe::HashPipe<KeptCopy>);

/// The optional file a [`HashSink`] writes to. A failed write only drops the file
/// (the content's verification goes on): the copy is a shortcut, not the object.
struct KeptCopy {
    out: Option<BufWriter<std::fs::File>>,
    failed: bool,
}

impl Write for KeptCopy {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Some(out) = &mut self.out
            && crate::fsutil::write_chunked(out, buf).is_err()
        {
            self.out = None;
            self.failed = true;
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl HashSink {
    fn new(out: Option<std::fs::File>) -> Self {
        HashSink(crate::pipe::HashPipe::new(KeptCopy {
            out: out.map(|f| BufWriter::with_capacity(crate::fsutil::WRITE_CHUNK, f)),
            failed: false,
        }))
    }

    /// The hasher, and whether the whole content reached the output.
    fn end(self) -> std::result::Result<(blake3::Hasher, bool), String> {
        let (hasher, kept, _) = self.0.finish().map_err(|e| e.to_string())?;
        let written = match kept.out {
            Some(w) => !kept.failed && w.into_inner().is_ok(),
            None => false,
        };
        Ok((hasher, written))
    }
}

impl Write for HashSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Default for StoredVerifier {
    fn default() -> Self {
        Self::new()
    }
}

impl StoredVerifier {
    /// A verifier at the start of an object's stored bytes.
    pub fn new() -> Self {
        StoredVerifier {
            decoder: Box::new(StoredDecoder::new(HashSink::new(None))),
        }
    }

    /// Also writes the decoded content to `file` (see [`StoredVerifier::finish_output`]).
    /// Call it before any bytes are fed.
    pub fn with_output(self, file: std::fs::File) -> Self {
        StoredVerifier {
            decoder: Box::new(StoredDecoder::new(HashSink::new(Some(file)))),
        }
    }

    /// Feeds the next stored bytes. Fails (with a reason) when they cannot be decoded.
    pub fn update(&mut self, chunk: &[u8]) -> std::result::Result<(), String> {
        self.decoder.write_all(chunk).map_err(|e| fault_reason(&e))
    }

    /// Ends the stream: `Ok` when the content hashes to `id`.
    pub fn finish(self, id: &ObjectId) -> std::result::Result<(), String> {
        self.finish_output(id).map(|_| ())
    }

    /// Like [`StoredVerifier::finish`]; also tells whether the whole decoded content
    /// reached the output given to [`StoredVerifier::with_output`].
    pub fn finish_output(self, id: &ObjectId) -> std::result::Result<bool, String> {
        let sink = self.decoder.finish().map_err(|e| fault_reason(&e))?;
        let (hasher, written) = sink.end()?;
        if ObjectId::from_hasher(&hasher) == *id {
            Ok(written)
        } else {
            Err(MISMATCH.into())
        }
    }
}

/// Checks an object of this machine's cache as its stored bytes stream out (a
/// push): against its seal when it has one (see [`crate::seal`]), else by decoding.
pub enum OutgoingCheck {
    /// The object ends with a seal.
    Sealed(Box<crate::seal::SealCheck>),
    /// No seal: the content is decoded and hashed.
    Decoded(StoredVerifier),
}

impl OutgoingCheck {
    /// A check of `src`, object `id`'s stored form, before any of it is read.
    pub fn new(id: &ObjectId, src: &Slice) -> std::io::Result<Self> {
        let tail = src.tail(crate::seal::LEN)?;
        Ok(match crate::seal::SealCheck::new(id, src.len(), &tail) {
            Some(c) => OutgoingCheck::Sealed(Box::new(c)),
            None => OutgoingCheck::Decoded(StoredVerifier::new()),
        })
    }

    /// Feeds the next stored bytes. Fails (with a reason) when they cannot be decoded.
    pub fn update(&mut self, chunk: &[u8]) -> std::result::Result<(), String> {
        match self {
            OutgoingCheck::Sealed(c) => {
                c.update(chunk);
                Ok(())
            }
            OutgoingCheck::Decoded(v) => v.update(chunk),
        }
    }

    /// Ends the stream: `Ok` when the bytes are object `id`'s. A seal that does not
    /// match sends the object in `cache` through the full check, by decoding.
    pub fn finish(self, cache: &Cache, id: &ObjectId) -> std::result::Result<(), String> {
        match self {
            OutgoingCheck::Sealed(c) if c.matches() => Ok(()),
            OutgoingCheck::Sealed(_) => cache.verify(id).map(|_| ()).map_err(|e| match e {
                crate::Error::Cache(CacheError::Corrupt { reason, .. }) => reason,
                e => e.to_string(),
            }),
            OutgoingCheck::Decoded(v) => v.finish(id),
        }
    }
}

/// The content that `stored` (an object's stored form, whole) decodes to,
/// verified against `id`: borrowed from `stored` when it is kept raw.
pub(super) fn stored_content<'a>(id: &ObjectId, stored: &'a [u8]) -> std::result::Result<Cow<'a, [u8]>, String> {
    let content = match detect(stored) {
        Some(Encoding::Raw) => Cow::Borrowed(&stored[RAW_HEADER.len()..]),
        Some(Encoding::Zstd) => Cow::Owned(decompress_all(stored)?),
        None if stored.len() < RAW_HEADER.len() => return Err("truncated: too short to be an object".into()),
        None => return Err("unknown object encoding".into()),
    };
    if ObjectId::of(&content) == *id {
        Ok(content)
    } else {
        Err(MISMATCH.into())
    }
}

/// Checks that `stored` (an object's stored form, whole) decodes to content with id `id`.
pub fn verify_stored(id: &ObjectId, stored: &[u8]) -> std::result::Result<(), String> {
    stored_content(id, stored).map(|_| ())
}

/// Decodes `stored` (an object's stored form, whole) into its content, verified.
pub fn decode_stored(id: &ObjectId, stored: &[u8]) -> std::result::Result<Vec<u8>, String> {
    stored_content(id, stored).map(Cow::into_owned)
}

/// The first bytes (up to `n`) of the content that `stored` (a prefix of a stored
/// object) decodes to; fewer if the prefix ends first or does not decode.
pub fn decode_prefix(stored: &[u8], n: usize) -> Vec<u8> {
    match detect(stored) {
        Some(Encoding::Raw) => stored[RAW_HEADER.len()..].iter().take(n).copied().collect(),
        Some(Encoding::Zstd) => {
            let mut out = vec![0u8; n];
            let got = match zstd::stream::read::Decoder::new(stored) {
                Ok(mut d) => read_full(&mut d, &mut out).unwrap_or(0),
                Err(_) => 0,
            };
            out.truncate(got);
            out
        }
        None => Vec::new(),
    }
}
