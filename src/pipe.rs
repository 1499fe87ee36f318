//! Hashing (and writing) decoded content on a second thread.
//!
//! Verifying a big object is steps in a row: decompress, hash, and (during a pull)
//! write the content. One thread doing all of them leaves the second core idle; a
//! [`HashPipe`] gathers the content into blocks and hashes (and writes) each on a
//! helper thread while the caller decompresses the next one. Content up to `INLINE_LIMIT` (8 MiB) is handled on
//! the caller's thread: a thread per small object would cost more than it saves.

use std::io::Write;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

/// Content up to this size is hashed on the caller's thread.
const INLINE_LIMIT: u64 = 8 * 1024 * 1024;
/// The size of a block handed to the helper thread.
const BLOCK: usize = 1024 * 1024;
/// Blocks queued for the helper thread.
const DEPTH: usize = 4;
/// Buffers a pipe allocates at most: queued, being hashed, being filled, and one
/// spare. They are reused rather than freed and allocated again (a fresh 1 MiB
/// buffer costs an `mmap` and its page faults).
const POOL: usize = DEPTH + 3;

type Worker<W> = JoinHandle<(blake3::Hasher, W, std::io::Result<()>)>;

/// Hashes the bytes given to it and writes them to `W`, on a helper thread once
/// more than `INLINE_LIMIT` (8 MiB) bytes have passed. See [`HashPipe::finish`].
pub struct HashPipe<W: Write + Send + 'static> {
    /// While inline: the hasher and the output.
    inline: Option<(blake3::Hasher, W)>,
    seen: u64,
    /// The block being filled once threaded.
    pending: Vec<u8>,
    tx: Option<SyncSender<Vec<u8>>>,
    spares: Option<Receiver<Vec<u8>>>,
    worker: Option<Worker<W>>,
    /// How many buffers were allocated in all.
    allocated: usize,
}

impl<W: Write + Send + 'static> HashPipe<W> {
    /// A pipe that hashes and writes to `out`.
    pub fn new(out: W) -> Self {
        HashPipe {
            inline: Some((blake3::Hasher::new(), out)),
            seen: 0,
            pending: Vec::new(),
            tx: None,
            spares: None,
            worker: None,
            allocated: 0,
        }
    }

    /// An empty buffer with room for a block: one the helper thread gave back, or a
    /// new one while fewer than `POOL` exist (else it waits for one to come back).
    fn spare(&mut self) -> Vec<u8> {
        if let Some(r) = &self.spares {
            let back = if self.allocated >= POOL {
                r.recv().ok()
            } else {
                r.try_recv().ok()
            };
            if let Some(mut v) = back {
                v.clear();
                return v;
            }
        }
        self.allocated += 1;
        Vec::with_capacity(BLOCK)
    }

    /// Sends the pending block to the helper thread.
    fn send_pending(&mut self) -> std::io::Result<()> {
        let block = std::mem::take(&mut self.pending);
        match &self.tx {
            Some(tx) => tx.send(block).map_err(|_| broken()),
            None => Err(broken()),
        }
    }

    /// Moves the hasher and the output to a helper thread.
    fn start(&mut self) {
        let Some((mut hasher, mut out)) = self.inline.take() else {
            return;
        };
        let (tx, rx) = sync_channel::<Vec<u8>>(DEPTH);
        // Room for every buffer, so that giving one back never blocks.
        let (give_back, spares) = sync_channel::<Vec<u8>>(POOL + 1);
        self.worker = Some(std::thread::spawn(move || {
            for block in rx {
                hasher.update(&block);
                if let Err(e) = out.write_all(&block) {
                    return (hasher, out, Err(e));
                }
                let _ = give_back.try_send(block);
            }
            (hasher, out, Ok(()))
        }));
        self.tx = Some(tx);
        self.spares = Some(spares);
    }

    /// Waits for every block to be hashed and written; returns the hasher, the
    /// output and the number of bytes. The first write error is returned instead.
    pub fn finish(mut self) -> std::io::Result<(blake3::Hasher, W, u64)> {
        if let Some((hasher, mut out)) = self.inline.take() {
            out.flush()?;
            return Ok((hasher, out, self.seen));
        }
        if !self.pending.is_empty() {
            self.send_pending()?;
        }
        drop(self.tx.take());
        let worker = self.worker.take().ok_or_else(broken)?;
        let (hasher, mut out, result) = worker
            .join()
            .map_err(|_| std::io::Error::other("the hashing thread panicked"))?;
        result?;
        out.flush()?;
        Ok((hasher, out, self.seen))
    }
}

impl<W: Write + Send + 'static> Write for HashPipe<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Some((hasher, out)) = &mut self.inline {
            hasher.update(buf);
            out.write_all(buf)?;
            self.seen += buf.len() as u64;
            if self.seen > INLINE_LIMIT {
                self.start();
            }
            return Ok(buf.len());
        }
        if self.pending.capacity() == 0 {
            self.pending = self.spare();
        }
        let take = buf.len().min(BLOCK - self.pending.len());
        self.pending.extend_from_slice(&buf[..take]);
        self.seen += take as u64;
        if self.pending.len() == BLOCK {
            self.send_pending()?;
        }
        Ok(take)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<W: Write + Send + 'static> Drop for HashPipe<W> {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}

fn broken() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the hashing thread stopped")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_and_writes_small_and_big_content_alike() {
        for len in [0usize, 10, BLOCK + 7, INLINE_LIMIT as usize + 3 * BLOCK + 11] {
            let data: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            // Small writes, and writes bigger than a block.
            for step in [100_003, 3 * BLOCK + 1] {
                let mut pipe = HashPipe::new(Vec::new());
                for chunk in data.chunks(step) {
                    pipe.write_all(chunk).unwrap();
                }
                let (h, out, n) = pipe.finish().unwrap();
                assert_eq!((h.finalize(), n), (blake3::hash(&data), len as u64));
                assert!(out == data);
            }
        }
    }

    #[test]
    fn a_failing_output_is_reported() {
        struct Full(usize);
        impl Write for Full {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                if self.0 < buf.len() {
                    return Err(std::io::Error::other("disk full"));
                }
                self.0 -= buf.len();
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let mut pipe = HashPipe::new(Full(INLINE_LIMIT as usize + 2 * BLOCK));
        let block = vec![7u8; BLOCK];
        for _ in 0..20 {
            if pipe.write_all(&block).is_err() {
                break;
            }
        }
        let err = pipe.finish().err().expect("the write error is reported");
        assert!(err.to_string().contains("disk full"), "{err}");
    }
}
