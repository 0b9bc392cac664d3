//! The durable edit log with group commit.
//!
//! Layout: segment files `current/edits_<first txid, 20 digits>`, each the 8-byte magic
//! `DFSEDIT1` followed by framed records (see [`crate::record`]) whose payload is a prost
//! `EditRecord`. The highest-numbered segment is the one being written.
//!
//! Writing: [`EditLog::append`] is called under the namespace lock, right after the op was
//! applied in memory, so log order is apply order. It only assigns the txid and hands the encoded
//! record to a dedicated writer thread. The thread writes every record available, calls
//! `fdatasync` once for the batch, then publishes the highest durable txid on a `watch` channel;
//! RPC handlers await [`SyncHandle::wait`] *outside* the lock before acknowledging (HDFS's
//! logSync). Many concurrent mutations therefore share one fsync.
//!
//! A failed write or fsync poisons the log: the state says so forever and every later append or
//! wait fails, because after an I/O error we no longer know what is on disk and must not
//! acknowledge anything (redb's rule).
//!
//! Reading: [`replay`] walks the segments in order. A bad record in the last segment is a torn
//! tail from a crash mid-write when nothing valid follows it: it is cut off (the file truncated
//! and fsynced) with a warning. A bad record followed by a valid one is corruption (a crash only
//! tears the end of what was being written), and cutting there would drop acknowledged edits, so
//! loading is refused with the file and offset; so is a bad record in an earlier segment, and a
//! record whose checksum matches but whose content does not decode.

use std::fs::{self, File, OpenOptions};
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;

use dfs_proto::pb;
use prost::Message;
use tokio::sync::{oneshot, watch};

use crate::error::{Error, Result};
use crate::op::Op;
use crate::record::{self, Next};

/// First bytes of every segment.
pub const EDIT_MAGIC: &[u8; 8] = b"DFSEDIT1";

const SEGMENT_PREFIX: &str = "edits_";

/// Most records written before an fsync, so one writer burst cannot starve waiters forever.
const MAX_BATCH: usize = 16 * 1024;

/// File name of the segment starting at `first_txid`.
pub fn segment_name(first_txid: u64) -> String {
    format!("{SEGMENT_PREFIX}{first_txid:020}")
}

/// A segment file on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub first_txid: u64,
    pub path: PathBuf,
}

/// Every segment in `dir`, oldest first. Files that merely look similar are ignored.
pub fn list_segments(dir: &Path) -> Result<Vec<Segment>> {
    let mut out = Vec::new();
    let entries = fs::read_dir(dir).map_err(|e| Error::io(format!("list {}", dir.display()), e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(format!("list {}", dir.display()), e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(digits) = name.strip_prefix(SEGMENT_PREFIX) else {
            continue;
        };
        if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if let Ok(first_txid) = digits.parse() {
            out.push(Segment {
                first_txid,
                path: entry.path(),
            });
        }
    }
    out.sort_by_key(|s| s.first_txid);
    Ok(out)
}

/// fsyncs a directory so a created, renamed or removed entry is durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(format!("fsync directory {}", dir.display()), e))
}

/// Replays every record with txid > `after_txid` into `apply`, in order; returns the last txid
/// (`after_txid` when there is nothing newer). Torn tails of the last segment are truncated.
pub fn replay(
    dir: &Path,
    after_txid: u64,
    mut apply: impl FnMut(u64, Op) -> Result<()>,
) -> Result<u64> {
    let segments = list_segments(dir)?;
    let mut last = after_txid;
    for (i, seg) in segments.iter().enumerate() {
        let is_last = i + 1 == segments.len();
        // Every record of this segment precedes the next segment's first txid.
        if !is_last && segments[i + 1].first_txid <= after_txid + 1 {
            continue;
        }
        if seg.first_txid > last + 1 {
            return Err(Error::Corrupt(format!(
                "edits {} through {} are missing (next segment is {})",
                last + 1,
                seg.first_txid - 1,
                seg.path.display()
            )));
        }
        read_segment(seg, is_last, |txid, op| {
            if txid <= last {
                return Ok(()); // already in the checkpoint
            }
            if txid != last + 1 {
                return Err(Error::Corrupt(format!(
                    "{}: txid {txid} follows {last}: edits are missing",
                    seg.path.display()
                )));
            }
            apply(txid, op).map_err(|e| {
                Error::Corrupt(format!(
                    "{}: cannot apply txid {txid}: {e}",
                    seg.path.display()
                ))
            })?;
            last = txid;
            Ok(())
        })?;
    }
    Ok(last)
}

/// Reads one segment, handing each record to `f`. Records must be contiguous from the
/// segment's first txid.
fn read_segment(
    seg: &Segment,
    is_last: bool,
    mut f: impl FnMut(u64, Op) -> Result<()>,
) -> Result<()> {
    let path = &seg.path;
    let io = |e: std::io::Error| Error::io(format!("read {}", path.display()), e);
    let file = File::open(path).map_err(io)?;
    let mut r = BufReader::new(file);
    let mut magic = [0u8; 8];
    let n = record::read_full(&mut r, &mut magic).map_err(io)?;
    if n < magic.len() {
        if is_last && magic[..n] == EDIT_MAGIC[..n] {
            tracing::warn!(segment = %path.display(), "edit segment torn while being created; resetting it");
            return reset_segment(path);
        }
        return Err(Error::Corrupt(format!(
            "{}: short segment header",
            path.display()
        )));
    }
    if &magic != EDIT_MAGIC {
        return Err(Error::Corrupt(format!(
            "{}: bad magic {magic:02x?}",
            path.display()
        )));
    }
    let mut offset = magic.len() as u64;
    let mut expected = seg.first_txid;
    loop {
        let bad = match record::read_next(&mut r).map_err(io)? {
            Next::Eof => return Ok(()),
            Next::Bad(reason) => reason,
            // Never written (every record holds a txid): zero-filled space after a crash.
            Next::Record(payload) if payload.is_empty() => "an empty record".to_string(),
            Next::Record(payload) => {
                // A checksummed but meaningless record is not a torn write.
                let (txid, op) = decode_edit(&payload).map_err(|e| {
                    Error::Corrupt(format!(
                        "{} at offset {offset}: a record with a valid checksum {e}",
                        path.display()
                    ))
                })?;
                if txid != expected {
                    return Err(Error::Corrupt(format!(
                        "{} at offset {offset}: txid {txid} where {expected} was expected",
                        path.display()
                    )));
                }
                f(txid, op)?;
                offset += (record::HEADER_LEN + payload.len()) as u64;
                expected += 1;
                continue;
            }
        };
        if !is_last {
            return Err(Error::Corrupt(format!(
                "{} at offset {offset} (txid {expected}): {bad}; this is not the last segment, refusing to load",
                path.display()
            )));
        }
        let bytes = fs::read(path).map_err(io)?;
        let rest = bytes.get(offset as usize + 1..).unwrap_or_default();
        if let Some((at, txid)) = next_valid_record(rest, expected) {
            return Err(Error::Corrupt(format!(
                "{} at offset {offset} (txid {expected}): {bad}, but a valid record (txid {txid}) \
                 follows at offset {}: this is corruption, not a torn write; refusing to load \
                 rather than drop acknowledged edits",
                path.display(),
                offset + 1 + at as u64
            )));
        }
        tracing::warn!(
            segment = %path.display(),
            offset,
            txid = expected,
            reason = %bad,
            "torn edit-log tail: truncating (the unacknowledged record is dropped)"
        );
        let file = OpenOptions::new().write(true).open(path).map_err(io)?;
        file.set_len(offset)
            .and_then(|_| file.sync_all())
            .map_err(|e| Error::io(format!("truncate {}", path.display()), e))?;
        return Ok(());
    }
}

/// A record's payload as `(txid, op)`; the error says what is wrong with it.
fn decode_edit(payload: &[u8]) -> std::result::Result<(u64, Op), String> {
    let rec = pb::EditRecord::decode(payload).map_err(|e| format!("does not decode: {e}"))?;
    Op::from_record(&rec).map_err(|e| format!("makes no sense: {e}"))
}

/// The first position in `rest` (bytes after a bad record) where a whole, checksummed,
/// meaningful record with a txid of at least `min_txid` starts, with that txid. `None` means the
/// bad record is a torn tail: nothing acknowledged can follow it.
///
/// Every offset is tried, since the bad record's own length cannot be trusted. Cheap tests come
/// first (a plausible length, the protobuf tag of `txid` opening the payload, a txid in range),
/// so zero-filled or random tails cost about one pass; the CRC runs only on likely records.
fn next_valid_record(rest: &[u8], min_txid: u64) -> Option<(usize, u64)> {
    /// `EditRecord.txid` is field 1, a varint, and prost encodes it first.
    const TXID_TAG: u8 = 0x08;
    let max_txid = min_txid.saturating_add(rest.len() as u64);
    for at in 0..rest.len().saturating_sub(record::HEADER_LEN) {
        let h = &rest[at..at + record::HEADER_LEN];
        let len = u32::from_be_bytes([h[0], h[1], h[2], h[3]]) as usize;
        let start = at + record::HEADER_LEN;
        let Some(payload) = rest.get(start..start.saturating_add(len)) else {
            continue;
        };
        if payload.len() < 2 || payload[0] != TXID_TAG {
            continue;
        }
        let Ok(txid) = prost::encoding::decode_varint(&mut &payload[1..]) else {
            continue;
        };
        if txid < min_txid || txid > max_txid {
            continue;
        }
        if crc32c::crc32c(payload) != u32::from_be_bytes([h[4], h[5], h[6], h[7]]) {
            continue;
        }
        if decode_edit(payload).is_ok() {
            return Some((at, txid));
        }
    }
    None
}

fn reset_segment(path: &Path) -> Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .map_err(|e| Error::io(format!("reset {}", path.display()), e))?;
    f.write_all(EDIT_MAGIC)
        .and_then(|_| f.sync_all())
        .map_err(|e| Error::io(format!("reset {}", path.display()), e))
}

/// Creates (or truncates) a segment and makes its header and directory entry durable.
fn create_segment(dir: &Path, first_txid: u64) -> Result<BufWriter<File>> {
    let path = dir.join(segment_name(first_txid));
    let io = |e: std::io::Error| Error::io(format!("create {}", path.display()), e);
    let mut f = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(&path)
        .map_err(io)?;
    f.write_all(EDIT_MAGIC)
        .and_then(|_| f.sync_data())
        .map_err(io)?;
    sync_dir(dir)?;
    Ok(BufWriter::with_capacity(256 * 1024, f))
}

/// What the writer thread publishes after each batch.
#[derive(Debug, Clone, Default)]
pub struct SyncState {
    /// Every txid up to this one is on disk.
    pub synced_txid: u64,
    /// Set forever after the first I/O error.
    pub failed: Option<Arc<str>>,
}

enum Msg {
    Record {
        txid: u64,
        bytes: Vec<u8>,
    },
    /// Start a new segment at `first_txid` (after syncing everything before it).
    Roll {
        first_txid: u64,
        done: oneshot::Sender<Result<()>>,
    },
}

/// Waits for durability of a txid; cheap to clone, usable outside the namespace lock.
#[derive(Clone)]
pub struct SyncHandle(watch::Receiver<SyncState>);

impl SyncHandle {
    /// Resolves once `txid` is durable, or fails if the log failed first.
    pub async fn wait(&self, txid: u64) -> Result<()> {
        let mut rx = self.0.clone();
        let state = rx
            .wait_for(|s| s.synced_txid >= txid || s.failed.is_some())
            .await
            .map_err(|_| Error::EditLogFailed("the edit log writer stopped".into()))?;
        if state.synced_txid >= txid {
            return Ok(());
        }
        Err(Error::EditLogFailed(
            state.failed.as_deref().unwrap_or("unknown").to_string(),
        ))
    }
}

/// The writing side of the edit log.
pub struct EditLog {
    dir: PathBuf,
    tx: Option<mpsc::Sender<Msg>>,
    next_txid: u64,
    state: watch::Receiver<SyncState>,
    syncs: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl EditLog {
    /// Starts writing a new segment at `next_txid` in `dir` (replacing an existing, record-less
    /// segment of that name) and spawns the writer thread.
    pub fn open(dir: &Path, next_txid: u64) -> Result<EditLog> {
        let out = create_segment(dir, next_txid)?;
        let (tx, rx) = mpsc::channel();
        let (state_tx, state_rx) = watch::channel(SyncState {
            synced_txid: next_txid - 1,
            failed: None,
        });
        let syncs = Arc::new(AtomicU64::new(0));
        let writer = Writer {
            dir: dir.to_path_buf(),
            out,
            records_in_segment: 0,
            last_written: next_txid - 1,
            dirty: false,
            failed: None,
            state: state_tx,
            syncs: syncs.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("dfs-editlog".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| Error::io("spawn the edit-log writer thread", e))?;
        Ok(EditLog {
            dir: dir.to_path_buf(),
            tx: Some(tx),
            next_txid,
            state: state_rx,
            syncs,
            thread: Some(thread),
        })
    }

    #[cfg(test)]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Fails if the log has failed: call before mutating anything.
    pub fn check_healthy(&self) -> Result<()> {
        self.check_written()?;
        if self.tx.is_none() {
            return Err(Error::EditLogFailed("the edit log is closed".into()));
        }
        Ok(())
    }

    /// Whether every write so far succeeded.
    fn check_written(&self) -> Result<()> {
        match &self.state.borrow().failed {
            Some(m) => Err(Error::EditLogFailed(m.to_string())),
            None => Ok(()),
        }
    }

    /// Queues `op` with the next txid and returns that txid. Durability comes later: see
    /// [`SyncHandle::wait`].
    pub fn append(&mut self, op: &Op) -> Result<u64> {
        self.check_healthy()?;
        let txid = self.next_txid;
        let bytes = op.to_record(txid).encode_to_vec();
        self.send(Msg::Record { txid, bytes })?;
        self.next_txid += 1;
        Ok(txid)
    }

    /// The last txid handed out.
    pub fn last_txid(&self) -> u64 {
        self.next_txid - 1
    }

    /// Ends the current segment: later records go to `edits_<last_txid + 1>`. The receiver
    /// resolves when the old segment is synced and the new one exists.
    pub fn roll(&mut self) -> Result<oneshot::Receiver<Result<()>>> {
        self.check_healthy()?;
        let (done, rx) = oneshot::channel();
        self.send(Msg::Roll {
            first_txid: self.next_txid,
            done,
        })?;
        Ok(rx)
    }

    /// Hands a message to the writer. If the writer is gone (it can only stop by panicking while
    /// we hold the sender), the log is closed for good: nothing may be applied after this.
    fn send(&mut self, m: Msg) -> Result<()> {
        let sent = self.tx.as_ref().is_some_and(|tx| tx.send(m).is_ok());
        if !sent {
            self.tx = None;
            return Err(Error::EditLogFailed("the edit log writer stopped".into()));
        }
        Ok(())
    }

    pub fn sync_handle(&self) -> SyncHandle {
        SyncHandle(self.state.clone())
    }

    /// How many fsyncs the writer has done (group commit makes this far below the record count).
    #[cfg(test)]
    pub fn syncs(&self) -> u64 {
        self.syncs.load(Ordering::Relaxed)
    }

    /// Flushes everything queued, stops the writer thread and reports the log's health.
    pub fn close(&mut self) -> Result<()> {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            if t.join().is_err() {
                return Err(Error::Internal(
                    "the edit log writer thread panicked".into(),
                ));
            }
        }
        tracing::debug!(
            dir = %self.dir.display(),
            fsyncs = self.syncs.load(Ordering::Relaxed),
            last_txid = self.last_txid(),
            "edit log closed"
        );
        self.check_written()
    }
}

impl Drop for EditLog {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

struct Writer {
    dir: PathBuf,
    out: BufWriter<File>,
    records_in_segment: u64,
    last_written: u64,
    dirty: bool,
    failed: Option<Arc<str>>,
    state: watch::Sender<SyncState>,
    syncs: Arc<AtomicU64>,
}

impl Writer {
    fn run(mut self, rx: mpsc::Receiver<Msg>) {
        // Exits when every sender is gone (EditLog::close), after the last batch is synced.
        while let Ok(first) = rx.recv() {
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(m) => batch.push(m),
                    Err(_) => break,
                }
            }
            for m in batch {
                match m {
                    Msg::Record { txid, bytes } => self.write(txid, &bytes),
                    Msg::Roll { first_txid, done } => {
                        self.sync();
                        let _ = done.send(self.roll(first_txid));
                    }
                }
            }
            self.sync();
        }
        self.sync();
    }

    fn fail(&mut self, what: String) {
        tracing::error!(error = %what, "edit log failed: no further mutation will be acknowledged");
        let msg: Arc<str> = what.into();
        self.failed = Some(msg.clone());
        self.state.send_modify(|s| s.failed = Some(msg));
    }

    fn write(&mut self, txid: u64, payload: &[u8]) {
        if self.failed.is_some() {
            return;
        }
        let mut framed = Vec::with_capacity(record::HEADER_LEN + payload.len());
        record::encode(payload, &mut framed);
        if let Err(e) = self.out.write_all(&framed) {
            return self.fail(format!("write txid {txid}: {e}"));
        }
        self.last_written = txid;
        self.records_in_segment += 1;
        self.dirty = true;
    }

    fn sync(&mut self) {
        if !self.dirty || self.failed.is_some() {
            return;
        }
        self.dirty = false;
        if let Err(e) = self
            .out
            .flush()
            .and_then(|_| self.out.get_ref().sync_data())
        {
            return self.fail(format!("fsync up to txid {}: {e}", self.last_written));
        }
        self.syncs.fetch_add(1, Ordering::Relaxed);
        let txid = self.last_written;
        self.state.send_modify(|s| s.synced_txid = txid);
    }

    fn roll(&mut self, first_txid: u64) -> Result<()> {
        if let Some(m) = &self.failed {
            return Err(Error::EditLogFailed(m.to_string()));
        }
        if self.records_in_segment == 0 {
            return Ok(()); // the current segment already starts at first_txid
        }
        match create_segment(&self.dir, first_txid) {
            Ok(out) => {
                self.out = out;
                self.records_in_segment = 0;
                Ok(())
            }
            Err(e) => {
                self.fail(format!("start segment {first_txid}: {e}"));
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::GenStamp;
    use std::sync::Mutex;

    fn op(i: u64) -> Op {
        Op::SetGenerationStamp { gs: GenStamp(i) }
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    fn write_n(dir: &Path, first: u64, n: u64) {
        let mut log = EditLog::open(dir, first).unwrap();
        let mut last = 0;
        for i in 0..n {
            last = log.append(&op(first + i)).unwrap();
        }
        rt().block_on(log.sync_handle().wait(last)).unwrap();
        log.close().unwrap();
    }

    fn read_all(dir: &Path, after: u64) -> Result<Vec<(u64, Op)>> {
        let mut out = Vec::new();
        replay(dir, after, |t, o| {
            out.push((t, o));
            Ok(())
        })?;
        Ok(out)
    }

    fn expected(range: std::ops::RangeInclusive<u64>) -> Vec<(u64, Op)> {
        range.map(|i| (i, op(i))).collect()
    }

    #[test]
    fn write_reopen_replay() {
        let d = tempfile::tempdir().unwrap();
        write_n(d.path(), 1, 50);
        assert_eq!(read_all(d.path(), 0).unwrap(), expected(1..=50));
        // A second session continues in a new segment.
        write_n(d.path(), 51, 10);
        assert_eq!(list_segments(d.path()).unwrap().len(), 2);
        assert_eq!(read_all(d.path(), 0).unwrap(), expected(1..=60));
        // Records covered by a checkpoint are skipped.
        assert_eq!(read_all(d.path(), 55).unwrap(), expected(56..=60));
    }

    #[test]
    fn torn_tail_truncated_mid_record() {
        let d = tempfile::tempdir().unwrap();
        write_n(d.path(), 1, 20);
        let seg = d.path().join(segment_name(1));
        let len = fs::metadata(&seg).unwrap().len();
        fs::OpenOptions::new()
            .write(true)
            .open(&seg)
            .unwrap()
            .set_len(len - 3)
            .unwrap();
        assert_eq!(read_all(d.path(), 0).unwrap(), expected(1..=19));
        // The file was cut at the record boundary: a second replay is clean and appending works.
        assert!(fs::metadata(&seg).unwrap().len() < len - 3);
        write_n(d.path(), 20, 1);
        assert_eq!(read_all(d.path(), 0).unwrap(), expected(1..=20));
    }

    #[test]
    fn torn_tail_flipped_byte_in_last_record() {
        let d = tempfile::tempdir().unwrap();
        write_n(d.path(), 1, 20);
        let seg = d.path().join(segment_name(1));
        let mut bytes = fs::read(&seg).unwrap();
        let n = bytes.len();
        bytes[n - 1] ^= 0x40;
        fs::write(&seg, &bytes).unwrap();
        assert_eq!(read_all(d.path(), 0).unwrap(), expected(1..=19));
    }

    /// Offsets at which each record of a segment starts.
    fn record_offsets(seg: &Path) -> Vec<usize> {
        let bytes = fs::read(seg).unwrap();
        let mut at = EDIT_MAGIC.len();
        let mut out = Vec::new();
        while at < bytes.len() {
            out.push(at);
            let len = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
            at += record::HEADER_LEN + len;
        }
        out
    }

    #[test]
    fn a_bad_record_followed_by_valid_ones_refuses_instead_of_cutting() {
        let d = tempfile::tempdir().unwrap();
        write_n(d.path(), 1, 20);
        let seg = d.path().join(segment_name(1));
        let offsets = record_offsets(&seg);
        let pristine = fs::read(&seg).unwrap();
        // A flipped payload bit in txid 10, then one in its length field.
        for flip in [offsets[9] + record::HEADER_LEN + 1, offsets[9] + 1] {
            let mut bytes = pristine.clone();
            bytes[flip] ^= 0x04;
            fs::write(&seg, &bytes).unwrap();
            let err = read_all(d.path(), 0).unwrap_err();
            let msg = err.to_string();
            assert!(
                matches!(err, Error::Corrupt(_))
                    && msg.contains(&seg.display().to_string())
                    && msg.contains(&format!("offset {}", offsets[9]))
                    && msg.contains("txid 10"),
                "{msg}"
            );
            assert_eq!(fs::read(&seg).unwrap(), bytes, "nothing was cut");
        }
    }

    #[test]
    fn a_torn_record_followed_by_zeros_is_cut() {
        let d = tempfile::tempdir().unwrap();
        write_n(d.path(), 1, 20);
        let seg = d.path().join(segment_name(1));
        let offsets = record_offsets(&seg);
        let mut bytes = fs::read(&seg).unwrap();
        // The last record half written, then space the file system extended with zeros.
        bytes.truncate(offsets[19] + 5);
        bytes.extend_from_slice(&[0u8; 4096]);
        fs::write(&seg, &bytes).unwrap();
        assert_eq!(read_all(d.path(), 0).unwrap(), expected(1..=19));
        assert_eq!(fs::metadata(&seg).unwrap().len(), offsets[19] as u64);
    }

    #[test]
    fn a_checksummed_record_that_does_not_decode_is_corruption() {
        let d = tempfile::tempdir().unwrap();
        write_n(d.path(), 1, 5);
        let seg = d.path().join(segment_name(1));
        let len = fs::metadata(&seg).unwrap().len();
        let mut bytes = fs::read(&seg).unwrap();
        record::encode(&[0xff, 0xff, 0xff], &mut bytes);
        fs::write(&seg, &bytes).unwrap();
        let err = read_all(d.path(), 0).unwrap_err();
        assert!(
            matches!(err, Error::Corrupt(ref m) if m.contains(&format!("offset {len}")) && m.contains("does not decode")),
            "{err}"
        );
        assert_eq!(fs::read(&seg).unwrap(), bytes, "nothing was cut");
    }

    #[test]
    fn corruption_in_non_last_segment_refuses() {
        let d = tempfile::tempdir().unwrap();
        write_n(d.path(), 1, 10);
        write_n(d.path(), 11, 10);
        let seg = d.path().join(segment_name(1));
        let mut bytes = fs::read(&seg).unwrap();
        let n = bytes.len();
        bytes[n - 2] ^= 0x01;
        fs::write(&seg, &bytes).unwrap();
        let err = read_all(d.path(), 0).unwrap_err();
        assert!(
            matches!(err, Error::Corrupt(ref m) if m.contains("not the last segment")),
            "{err}"
        );
        // Unless that segment is entirely covered by the checkpoint.
        assert_eq!(read_all(d.path(), 10).unwrap(), expected(11..=20));
    }

    #[test]
    fn missing_edits_refuse() {
        let d = tempfile::tempdir().unwrap();
        write_n(d.path(), 1, 10);
        write_n(d.path(), 11, 10);
        fs::remove_file(d.path().join(segment_name(1))).unwrap();
        assert!(matches!(read_all(d.path(), 0), Err(Error::Corrupt(_))));
        assert_eq!(read_all(d.path(), 10).unwrap(), expected(11..=20));
    }

    #[test]
    fn group_commit_shares_fsyncs() {
        let d = tempfile::tempdir().unwrap();
        let log = Arc::new(Mutex::new(EditLog::open(d.path(), 1).unwrap()));
        let sync = log.lock().unwrap().sync_handle();
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let log = log.clone();
                let sync = sync.clone();
                std::thread::spawn(move || {
                    let rt = rt();
                    for i in 0..50 {
                        let txid = log.lock().unwrap().append(&op(t * 1000 + i)).unwrap();
                        rt.block_on(sync.wait(txid)).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let mut log = Arc::try_unwrap(log).ok().unwrap().into_inner().unwrap();
        let syncs = log.syncs();
        log.close().unwrap();
        assert!(syncs < 400, "{syncs} fsyncs for 400 records");
        assert_eq!(read_all(d.path(), 0).unwrap().len(), 400);
    }

    #[test]
    fn roll_starts_a_new_segment_and_empty_roll_is_a_noop() {
        let d = tempfile::tempdir().unwrap();
        let mut log = EditLog::open(d.path(), 1).unwrap();
        let rt = rt();
        rt.block_on(log.roll().unwrap()).unwrap().unwrap();
        assert_eq!(list_segments(d.path()).unwrap().len(), 1);
        log.append(&op(1)).unwrap();
        rt.block_on(log.roll().unwrap()).unwrap().unwrap();
        log.append(&op(2)).unwrap();
        rt.block_on(log.sync_handle().wait(2)).unwrap();
        let segs = list_segments(d.path()).unwrap();
        assert_eq!(
            segs.iter().map(|s| s.first_txid).collect::<Vec<_>>(),
            vec![1, 2]
        );
        log.close().unwrap();
        assert_eq!(read_all(d.path(), 0).unwrap(), expected(1..=2));
    }

    #[test]
    fn io_error_poisons_the_log() {
        if !Path::new("/dev/full").exists() {
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let mut log = EditLog::open(d.path(), 1).unwrap();
        let rt = rt();
        let t = log.append(&op(1)).unwrap();
        rt.block_on(log.sync_handle().wait(t)).unwrap();
        // The next segment's file is /dev/full: creating it fails with ENOSPC.
        std::os::unix::fs::symlink("/dev/full", d.path().join(segment_name(2))).unwrap();
        assert!(rt.block_on(log.roll().unwrap()).unwrap().is_err());
        assert!(matches!(log.append(&op(2)), Err(Error::EditLogFailed(_))));
        assert!(matches!(log.roll(), Err(Error::EditLogFailed(_))));
        assert!(log.close().is_err());
    }
}
