//! Big objects as runs of independent zstd frames, compressed and decoded on
//! every core.
//!
//! A zstd object whose content is over [`crate::cache::SMALL_OBJECT`] is stored as
//! one frame per [`FRAME_CONTENT`] (4 MiB) of content, each declaring its content
//! size, then its seal (see [`crate::seal`]). To any zstd decoder (`zstd -d` too)
//! the run is one stream. Ours cuts the stored bytes into frames as they arrive
//! and decodes several at once on worker threads, handing the content back in
//! order: one thread decodes this data at about 1 GB/s here, so a single stream
//! kept checkout and fetch of a big compressible file on one core.
//!
//! An object stored as one frame without a declared size (as `add` wrote big
//! objects before these runs) is decoded as a stream, on one thread.

use std::io::{self, Write};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

/// The content of each frame of a big object (the last holds the rest).
pub const FRAME_CONTENT: usize = 4 * 1024 * 1024;
/// The most content a frame may declare for [`FrameDecoder`] to hold it whole.
const MAX_FRAME_CONTENT: u64 = 8 * 1024 * 1024;
/// The longest zstd frame header: magic, descriptor, window, dictionary id, size.
const MAX_HEADER: usize = 18;
/// Jobs each worker may have queued or in hand.
const DEPTH: usize = 2;

/// A stored-bytes fault that [`FrameDecoder`] and [`ContentDecoder`] report as an
/// [`io::Error`] of kind `InvalidData`; tell it from the sink's own errors with
/// [`decode_fault`].
#[derive(Debug)]
struct DecodeFault(String);

impl std::fmt::Display for DecodeFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DecodeFault {}

fn fault(reason: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, DecodeFault(reason.into()))
}

/// Why the stored bytes could not be decoded, when `e` says they could not
/// (rather than that the sink failed).
pub fn decode_fault(e: &io::Error) -> Option<String> {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<DecodeFault>())
        .map(|f| f.0.clone())
}

/// The number of worker threads: one per core.
fn workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

type Outcome = Result<Vec<u8>, String>;

/// One worker thread and its two queues.
struct Lane {
    jobs: Option<SyncSender<Vec<u8>>>,
    outcomes: Receiver<Outcome>,
    thread: Option<JoinHandle<()>>,
}

/// Worker threads that run jobs and hand the outcomes back in the order the jobs
/// were given. Jobs go round the workers in turn, and at most [`DEPTH`] per worker
/// are in flight, so neither side ever waits on a full queue of the other.
struct Ordered {
    lanes: Vec<Lane>,
    sent: usize,
    received: usize,
}

impl Ordered {
    /// `n` workers, each running the job function `make` builds for it.
    fn new<F>(n: usize, make: impl Fn() -> F) -> Self
    where
        F: FnMut(Vec<u8>) -> Outcome + Send + 'static,
    {
        let lanes = (0..n.max(1))
            .map(|_| {
                let (jobs, job_rx) = sync_channel::<Vec<u8>>(DEPTH);
                let (outcome_tx, outcomes) = sync_channel::<Outcome>(DEPTH);
                let mut run = make();
                let thread = std::thread::spawn(move || {
                    for job in job_rx {
                        if outcome_tx.send(run(job)).is_err() {
                            break;
                        }
                    }
                });
                Lane {
                    jobs: Some(jobs),
                    outcomes,
                    thread: Some(thread),
                }
            })
            .collect();
        Ordered {
            lanes,
            sent: 0,
            received: 0,
        }
    }

    /// Hands `job` to the next worker, first taking the oldest outcome (given to
    /// `done`) when every worker has its fill.
    fn push(&mut self, job: Vec<u8>, done: &mut dyn FnMut(Vec<u8>) -> io::Result<()>) -> io::Result<()> {
        if self.sent - self.received >= DEPTH * self.lanes.len() {
            let out = self.next().unwrap_or_else(|| Err("no job in flight".into()));
            done(out.map_err(fault)?)?;
        }
        let lane = &self.lanes[self.sent % self.lanes.len()];
        match &lane.jobs {
            Some(tx) if tx.send(job).is_ok() => {
                self.sent += 1;
                Ok(())
            }
            _ => Err(io::Error::other("a worker thread stopped")),
        }
    }

    /// The oldest outcome not yet taken, waiting for it; `None` when no job is in
    /// flight.
    fn next(&mut self) -> Option<Outcome> {
        if self.received == self.sent {
            return None;
        }
        let lane = &self.lanes[self.received % self.lanes.len()];
        self.received += 1;
        Some(
            lane.outcomes
                .recv()
                .unwrap_or_else(|_| Err("a worker thread stopped".into())),
        )
    }
}

impl Drop for Ordered {
    fn drop(&mut self) {
        for lane in &mut self.lanes {
            lane.jobs = None;
        }
        for lane in &mut self.lanes {
            // Unblocks a worker waiting to hand back an outcome nobody will take.
            while lane.outcomes.try_recv().is_ok() {}
            let (_, dead) = sync_channel(0);
            drop(std::mem::replace(&mut lane.outcomes, dead));
            if let Some(t) = lane.thread.take() {
                let _ = t.join();
            }
        }
    }
}

/// Compresses content into a run of frames on every core, writing them to `W` in
/// order. Feed it [`FRAME_CONTENT`] bytes at a time (the last piece may be shorter).
pub struct FrameEncoder<W: Write> {
    out: W,
    pool: Ordered,
}

impl<W: Write> FrameEncoder<W> {
    /// An encoder at zstd `level` writing to `out`.
    pub fn new(out: W, level: i32) -> Self {
        let pool = Ordered::new(workers(), || {
            let mut compressor: Option<zstd::bulk::Compressor<'static>> = None;
            move |content: Vec<u8>| -> Outcome {
                if compressor.is_none() {
                    compressor = Some(zstd::bulk::Compressor::new(level).map_err(|e| e.to_string())?);
                }
                let c = compressor.as_mut().ok_or("no compressor")?;
                c.compress(&content).map_err(|e| e.to_string())
            }
        });
        FrameEncoder { out, pool }
    }

    /// Writes a frame compressed elsewhere (it must come before any content given
    /// to [`FrameEncoder::push`]).
    pub fn write_frame(&mut self, frame: &[u8]) -> io::Result<()> {
        debug_assert_eq!(self.pool.sent, 0);
        crate::fsutil::write_chunked(&mut self.out, frame)
    }

    /// Queues the next piece of content.
    pub fn push(&mut self, content: Vec<u8>) -> io::Result<()> {
        let out = &mut self.out;
        self.pool
            .push(content, &mut |frame| crate::fsutil::write_chunked(out, &frame))
    }

    /// Writes the frames still in flight and returns the output.
    pub fn finish(mut self) -> io::Result<W> {
        while let Some(frame) = self.pool.next() {
            let frame = frame.map_err(io::Error::other)?;
            crate::fsutil::write_chunked(&mut self.out, &frame)?;
        }
        Ok(self.out)
    }
}

/// Whether `magic` opens a zstd skippable frame (such as a seal).
fn is_skippable(magic: [u8; 4]) -> bool {
    u32::from_le_bytes(magic) & 0xFFFF_FFF0 == 0x184D_2A50
}

fn decode_frame(d: &mut zstd::bulk::Decompressor<'static>, frame: &[u8]) -> Outcome {
    let size = match zstd::zstd_safe::get_frame_content_size(frame) {
        Ok(Some(n)) if n <= MAX_FRAME_CONTENT => n as usize,
        _ => return Err("a frame's header is damaged".into()),
    };
    let content = d
        .decompress(frame, size)
        .map_err(|e| format!("cannot decompress: {e}"))?;
    if content.len() != size {
        return Err("a frame holds less content than it declares".into());
    }
    Ok(content)
}

/// What the stored bytes hold next.
enum Next {
    /// A complete data frame of this many bytes.
    Data(usize),
    /// A skippable frame of this many bytes, header included.
    Skip(u64),
}

/// Decodes a run of frames that arrive as written (see [`Write`]), sending the
/// content to `W` in order. The first frame is decoded on the caller's thread;
/// worker threads start with the second, so a one-frame object costs no thread.
/// Every data frame must declare its content size, at most 8 MiB.
pub struct FrameDecoder<W: Write> {
    sink: W,
    /// Stored bytes not yet cut into frames.
    buf: Vec<u8>,
    /// Data frames seen so far.
    frames: u64,
    /// Bytes of a skippable frame still to pass over: they are dropped as they
    /// arrive, never held, whatever length the frame declares.
    skip: u64,
    inline: Option<zstd::bulk::Decompressor<'static>>,
    pool: Option<Ordered>,
}

impl<W: Write> FrameDecoder<W> {
    /// A decoder writing content to `sink`.
    pub fn new(sink: W) -> Self {
        FrameDecoder {
            sink,
            buf: Vec::new(),
            frames: 0,
            skip: 0,
            inline: None,
            pool: None,
        }
    }

    /// What starts `bytes`: a complete data frame and its length, a skippable
    /// frame's whole length (header included) once its header is there, or `None`
    /// until more bytes arrive; an error when it cannot be one of ours.
    fn next_frame(bytes: &[u8]) -> io::Result<Option<Next>> {
        let Some(magic) = bytes.first_chunk::<4>() else {
            return Ok(None);
        };
        if is_skippable(*magic) {
            let Some(len) = bytes.get(4..8) else {
                return Ok(None);
            };
            let len = 8 + u64::from(u32::from_le_bytes([len[0], len[1], len[2], len[3]]));
            return Ok(Some(Next::Skip(len)));
        }
        if *magic != crate::cache::ZSTD_MAGIC {
            return Err(fault("damaged: the stored bytes are not a run of zstd frames"));
        }
        let size = match zstd::zstd_safe::get_frame_content_size(bytes) {
            Ok(Some(n)) if n <= MAX_FRAME_CONTENT => n,
            Ok(_) => {
                return Err(fault(
                    "damaged: a frame does not declare a content size of at most 8 MiB",
                ));
            }
            Err(_) if bytes.len() < MAX_HEADER => return Ok(None),
            Err(_) => return Err(fault("damaged: a frame's header cannot be read")),
        };
        match zstd::zstd_safe::find_frame_compressed_size(bytes) {
            Ok(len) if len <= bytes.len() => Ok(Some(Next::Data(len))),
            _ if bytes.len() > zstd::zstd_safe::compress_bound(size as usize) + MAX_HEADER + 4 => {
                Err(fault("damaged: a frame is longer than its content allows"))
            }
            _ => Ok(None),
        }
    }

    /// Decodes (or queues) one data frame.
    fn take_frame(&mut self, frame: Vec<u8>) -> io::Result<()> {
        self.frames += 1;
        if self.frames == 1 {
            let d = match &mut self.inline {
                Some(d) => d,
                None => self.inline.insert(zstd::bulk::Decompressor::new()?),
            };
            let content = decode_frame(d, &frame).map_err(fault)?;
            return crate::fsutil::write_chunked(&mut self.sink, &content);
        }
        let pool = self.pool.get_or_insert_with(|| {
            Ordered::new(workers(), || {
                let mut d: Option<zstd::bulk::Decompressor<'static>> = None;
                move |frame: Vec<u8>| -> Outcome {
                    if d.is_none() {
                        d = Some(zstd::bulk::Decompressor::new().map_err(|e| e.to_string())?);
                    }
                    decode_frame(d.as_mut().ok_or("no decompressor")?, &frame)
                }
            })
        });
        let sink = &mut self.sink;
        pool.push(frame, &mut |content| crate::fsutil::write_chunked(sink, &content))
    }

    /// Ends the run: writes the content still in flight and returns the sink. Fails
    /// if the stored bytes end inside a frame.
    pub fn finish(mut self) -> io::Result<W> {
        if !self.buf.is_empty() || self.skip > 0 {
            return Err(fault("truncated: the stored bytes end inside a frame"));
        }
        if let Some(pool) = &mut self.pool {
            while let Some(content) = pool.next() {
                crate::fsutil::write_chunked(&mut self.sink, &content.map_err(fault)?)?;
            }
        }
        self.pool = None;
        let FrameDecoder { sink, .. } = self;
        Ok(sink)
    }
}

impl<W: Write> Write for FrameDecoder<W> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let passed = usize::try_from(self.skip).map_or(bytes.len(), |skip| skip.min(bytes.len()));
        self.skip -= passed as u64;
        self.buf.extend_from_slice(&bytes[passed..]);
        while let Some(next) = Self::next_frame(&self.buf)? {
            match next {
                Next::Data(len) => {
                    // The frame keeps the buffer; what follows it moves to a new
                    // one, with room for a frame like it.
                    let mut rest = Vec::with_capacity(len + bytes.len());
                    rest.extend_from_slice(&self.buf[len..]);
                    self.buf.truncate(len);
                    let frame = std::mem::replace(&mut self.buf, rest);
                    self.take_frame(frame)?;
                }
                Next::Skip(len) => {
                    let here = usize::try_from(len).map_or(self.buf.len(), |len| len.min(self.buf.len()));
                    self.buf.drain(..here);
                    self.skip = len - here as u64;
                }
            }
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Sink errors seen by a stream decoder, carried through it untouched.
#[derive(Debug)]
struct SinkError(io::Error);

impl std::fmt::Display for SinkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for SinkError {}

/// A sink whose errors a stream decoder passes on marked as the sink's.
struct Marked<W>(W);

impl<W: Write> Write for Marked<W> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.write(bytes).map_err(|e| io::Error::other(SinkError(e)))
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush().map_err(|e| io::Error::other(SinkError(e)))
    }
}

/// A stream decoder's error: the sink's own, or a fault of the stored bytes.
fn stream_error(e: io::Error) -> io::Error {
    if e.get_ref().is_some_and(|inner| inner.is::<SinkError>()) {
        match e.into_inner().map(|inner| inner.downcast::<SinkError>()) {
            Some(Ok(sink)) => sink.0,
            _ => io::Error::other("a sink error was lost"),
        }
    } else {
        fault(format!("cannot decompress: {e}"))
    }
}

enum State<W: Write> {
    /// Gathering the first bytes, which tell the encoding.
    Head(Vec<u8>, W),
    Raw(W),
    Frames(FrameDecoder<W>),
    Stream(zstd::stream::write::Decoder<'static, Marked<W>>),
}

/// Decodes an object's stored bytes (raw, a run of zstd frames, or one zstd
/// stream), written to it as they arrive, into content written to `W`. A fault of
/// the stored bytes is an `InvalidData` error that [`decode_fault`] explains;
/// any other error is the sink's.
pub struct StoredDecoder<W: Write>(Option<State<W>>);

impl<W: Write> StoredDecoder<W> {
    /// A decoder writing content to `sink`.
    pub fn new(sink: W) -> Self {
        StoredDecoder(Some(State::Head(Vec::with_capacity(MAX_HEADER), sink)))
    }

    /// The decoder for the encoding `head` (the first stored bytes) shows, fed
    /// with `head`. `ended`: no more bytes follow.
    fn choose(head: Vec<u8>, sink: W, ended: bool) -> io::Result<State<W>> {
        let raw = crate::cache::RAW_HEADER;
        if head.starts_with(raw) {
            let mut sink = sink;
            sink.write_all(&head[raw.len()..])?;
            return Ok(State::Raw(sink));
        }
        if !head.starts_with(&crate::cache::ZSTD_MAGIC) {
            return Err(fault(if ended && head.len() < raw.len() {
                "truncated: too short to be an object"
            } else {
                "unknown object encoding"
            }));
        }
        let framed = matches!(
            zstd::zstd_safe::get_frame_content_size(&head),
            Ok(Some(n)) if n <= MAX_FRAME_CONTENT
        );
        let mut next = if framed {
            State::Frames(FrameDecoder::new(sink))
        } else {
            State::Stream(zstd::stream::write::Decoder::new(Marked(sink))?)
        };
        Self::feed(&mut next, &head)?;
        Ok(next)
    }

    fn feed(state: &mut State<W>, bytes: &[u8]) -> io::Result<()> {
        match state {
            State::Head(..) => Err(io::Error::other("the decoder has not chosen an encoding")),
            State::Raw(sink) => sink.write_all(bytes),
            State::Frames(f) => f.write_all(bytes),
            State::Stream(d) => d.write_all(bytes).map_err(stream_error),
        }
    }

    /// Ends the stored bytes and returns the sink with all the content written.
    pub fn finish(mut self) -> io::Result<W> {
        let state = match self.0.take() {
            Some(State::Head(head, sink)) => Self::choose(head, sink, true)?,
            Some(state) => state,
            None => return Err(io::Error::other("the decoder failed earlier")),
        };
        match state {
            State::Head(_, sink) | State::Raw(sink) => Ok(sink),
            State::Frames(f) => f.finish(),
            State::Stream(mut d) => {
                d.flush().map_err(stream_error)?;
                Ok(d.into_inner().0)
            }
        }
    }
}

impl<W: Write> Write for StoredDecoder<W> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        match self.0.take() {
            Some(State::Head(mut head, sink)) => {
                let take = bytes.len().min(MAX_HEADER - head.len());
                head.extend_from_slice(&bytes[..take]);
                self.0 = Some(if head.len() == MAX_HEADER {
                    Self::choose(head, sink, false)?
                } else {
                    State::Head(head, sink)
                });
                Ok(take)
            }
            Some(mut state) => {
                let fed = Self::feed(&mut state, bytes);
                self.0 = Some(state);
                fed.map(|()| bytes.len())
            }
            None => Err(io::Error::other("the decoder failed earlier")),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn content(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 % 251) as u8 ^ (i >> 13) as u8).collect()
    }

    /// A run of `pieces` frames of 64 KiB of content each, and the content.
    fn run(pieces: usize) -> (Vec<u8>, Vec<u8>) {
        let data = content(pieces << 16);
        let mut enc = FrameEncoder::new(Vec::new(), 1);
        for piece in data.chunks(1 << 16) {
            enc.push(piece.to_vec()).unwrap();
        }
        (enc.finish().unwrap(), data)
    }

    fn decode(stored: &[u8], write_size: usize) -> io::Result<Vec<u8>> {
        let mut d = StoredDecoder::new(Vec::new());
        for piece in stored.chunks(write_size) {
            d.write_all(piece)?;
        }
        d.finish()
    }

    #[test]
    fn runs_round_trip_in_order_however_the_bytes_arrive() {
        let (stored, data) = run(23);
        assert!(
            zstd::stream::decode_all(&stored[..]).unwrap() == data,
            "not a plain zstd stream"
        );
        for write_size in [1, 7, 4096, 1 << 20] {
            assert!(decode(&stored, write_size).unwrap() == data, "write size {write_size}");
        }
        // A skippable frame (as a seal) is passed over.
        let mut sealed = stored.clone();
        sealed.extend_from_slice(&[0x5d, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 1, 2, 3]);
        assert!(decode(&sealed, 5000).unwrap() == data);
        // Skippable frames are passed over as they stream, not held: one that
        // declares 4 GiB in a short object is a truncation, found at the end.
        let mut huge = stored.clone();
        huge.extend_from_slice(&[0x50, 0x2a, 0x4d, 0x18, 0xff, 0xff, 0xff, 0xff, 1, 2, 3]);
        for write_size in [1, 4096] {
            let e = decode(&huge, write_size).unwrap_err();
            assert!(decode_fault(&e).unwrap().contains("truncated"), "{e}");
        }
        let mut d = FrameDecoder::new(Vec::new());
        d.write_all(&huge[huge.len() - 11..]).unwrap();
        for _ in 0..64 {
            d.write_all(&[7u8; 1 << 16]).unwrap();
        }
        assert!(d.buf.is_empty() && d.skip > 0, "a skippable frame's bytes were held");
        // Data frames after a skippable one still decode.
        let second = second_frame(&stored);
        let mut between = stored[..second].to_vec();
        between.extend_from_slice(&[0x5e, 0x2a, 0x4d, 0x18, 2, 0, 0, 0, 9, 9]);
        between.extend_from_slice(&stored[second..]);
        for write_size in [1, 3, 4096] {
            assert!(decode(&between, write_size).unwrap() == data, "write size {write_size}");
        }
    }

    fn second_frame(stored: &[u8]) -> usize {
        zstd::zstd_safe::find_frame_compressed_size(stored).unwrap()
    }

    #[test]
    fn damaged_or_truncated_runs_are_faults() {
        let (stored, _) = run(9);
        let cut = decode(&stored[..stored.len() - 10], 4096).unwrap_err();
        assert!(decode_fault(&cut).unwrap().contains("truncated"), "{cut}");
        let mut garbage = stored.clone();
        garbage.extend_from_slice(b"not a frame at all, but long");
        assert!(decode_fault(&decode(&garbage, 4096).unwrap_err()).is_some());
        let second = second_frame(&stored);
        let mut flipped = stored.clone();
        flipped[second + 4] ^= 0xff; // the second frame's header
        assert!(decode_fault(&decode(&flipped, 4096).unwrap_err()).is_some());
    }

    /// Fails every write after `left` bytes, like a full disk.
    struct Full {
        left: usize,
    }

    impl Write for Full {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if buf.len() > self.left {
                return Err(io::Error::new(io::ErrorKind::StorageFull, "disk full"));
            }
            self.left -= buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_sink_error_is_the_sinks_not_a_fault_of_the_bytes() {
        let (framed, data) = run(9);
        let stream = zstd::stream::encode_all(&data[..], 1).unwrap();
        for stored in [framed, stream] {
            let mut d = StoredDecoder::new(Full { left: 300_000 });
            let e = stored
                .chunks(4096)
                .try_for_each(|piece| d.write_all(piece))
                .and_then(|()| d.finish().map(|_| ()))
                .unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::StorageFull, "{e}");
            assert!(decode_fault(&e).is_none(), "{e}");
        }
    }
}
