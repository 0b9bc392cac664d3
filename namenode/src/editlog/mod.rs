//! The edit log: every namespace change, written before its reply, fsynced in groups.
//!
//! - `mod.rs` (this file): segment naming, [`EditLog`] (the appending side, used under the
//!   namespace lock) and [`SyncHandle`] (what handlers await outside it).
//! - `writer`: the writer thread, which frames records, writes each batch with one `write`, and
//!   fsyncs: at once when asked, else within the sync interval.
//! - `replay`: reading segments back, telling a power-loss tail from corruption.
//! - `store`: where segment bytes go ([`SegmentStore`]): the disk, or in tests a backend that
//!   loses what was not synced, as a power cut does.
//!
//! Layout: segment files `current/edits_<first txid, 20 digits>`, each the 8-byte magic
//! `DFSEDIT1` followed by framed records (see [`crate::record`]) whose payload is a prost
//! `EditRecord`. The highest-numbered segment is the one being written.
//!
//! Two watermarks, published on a `watch` channel:
//! - **written**: every record up to this txid is in the operating system's hands (`write`
//!   returned). It survives a crash of the NameNode process, not a power loss.
//! - **synced**: every record up to this txid was `fdatasync`ed. It survives a power loss.
//!
//! [`EditLog::append`] is called under the namespace lock right after the op was applied in
//! memory, so log order is apply order; it only hands the record to the writer thread. Handlers
//! await the watermark their caller asked for outside the lock (HDFS's logSync), so concurrent
//! mutations share one write and one fsync. With a zero sync interval (HDFS's semantics) nothing
//! is published as written before it is synced.
//!
//! Since the log is one sequential file per segment and a sync covers everything before it, what
//! survives a power loss is a prefix of the history, never a reordering; the file system may
//! however persist unsynced pages out of order, leaving a hole before later records. Each record
//! therefore carries `synced_offset`, how far its segment was synced when it was written, which
//! lets replay tell such a hole (cut off: nothing after it was promised durable) from corruption
//! of synced data (refused). A failed write or fsync poisons the log: every later append or wait
//! fails, because after an I/O error we no longer know what is on disk and must not acknowledge
//! anything (redb's rule).

mod replay;
mod store;
#[cfg(test)]
mod tests;
mod writer;

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Duration;

use dfs_proto::pb;
use tokio::sync::{oneshot, watch};

use crate::error::{Error, Result};
use crate::metrics::SyncMetrics;
use crate::op::Op;

pub use replay::replay;
#[cfg(test)]
pub use store::PowerCut;
pub use store::{DiskStore, SegmentFile, SegmentStore};

/// First bytes of every segment.
pub const EDIT_MAGIC: &[u8; 8] = b"DFSEDIT1";

const SEGMENT_PREFIX: &str = "edits_";

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

/// fsyncs the last segment in `dir`: after a crash of the process the last run's unsynced tail
/// was replayed from the page cache, and it must be on disk before anything after it is called
/// synced. Earlier segments were synced when they were rolled.
fn sync_last_segment(dir: &Path) -> Result<()> {
    let Some(seg) = list_segments(dir)?.pop() else {
        return Ok(());
    };
    File::open(&seg.path)
        .and_then(|f| f.sync_data())
        .map_err(|e| Error::io(format!("fsync {}", seg.path.display()), e))
}

/// What the writer thread publishes after each batch.
#[derive(Debug, Clone, Default)]
pub struct SyncState {
    /// Every txid up to this one was written: it survives a crash of this process.
    pub written_txid: u64,
    /// Every txid up to this one was fsynced: it survives a power loss.
    pub synced_txid: u64,
    /// Set forever after the first I/O error.
    pub failed: Option<Arc<str>>,
}

enum Msg {
    Record {
        txid: u64,
        record: pb::EditRecord,
    },
    /// fsync everything written so far, now.
    Sync,
    /// Start a new segment at `first_txid` (after syncing everything before it).
    Roll {
        first_txid: u64,
        done: oneshot::Sender<Result<()>>,
    },
}

/// How the log writes.
#[derive(Debug, Clone)]
pub struct LogOptions {
    /// Longest time a written record may wait for its fsync when nobody asks for one; zero
    /// syncs every batch before publishing it as written (HDFS's semantics).
    pub sync_interval: Duration,
    pub store: Arc<dyn SegmentStore>,
    pub metrics: SyncMetrics,
}

impl Default for LogOptions {
    fn default() -> LogOptions {
        LogOptions {
            sync_interval: Duration::ZERO,
            store: Arc::new(DiskStore),
            metrics: SyncMetrics::default(),
        }
    }
}

/// Waits for a watermark; cheap to clone, usable outside the namespace lock.
#[derive(Clone)]
pub struct SyncHandle(watch::Receiver<SyncState>);

impl SyncHandle {
    /// Resolves once `txid` is synced (power-loss safe), or fails if the log failed first.
    /// Someone must have asked for the sync ([`EditLog::request_sync`]) unless the sync interval
    /// bounds the wait.
    pub async fn synced(&self, txid: u64) -> Result<()> {
        self.wait_for(txid, |s| s.synced_txid).await
    }

    /// Resolves once `txid` is written (crash safe), or fails if the log failed first.
    pub async fn written(&self, txid: u64) -> Result<()> {
        self.wait_for(txid, |s| s.written_txid).await
    }

    async fn wait_for(&self, txid: u64, mark: impl Fn(&SyncState) -> u64) -> Result<()> {
        let mut rx = self.0.clone();
        let state = rx
            .wait_for(|s| mark(s) >= txid || s.failed.is_some())
            .await
            .map_err(|_| Error::EditLogFailed("the edit log writer stopped".into()))?;
        if mark(&state) >= txid {
            return Ok(());
        }
        Err(Error::EditLogFailed(
            state.failed.as_deref().unwrap_or("unknown").to_string(),
        ))
    }
}

/// The appending side of the edit log.
pub struct EditLog {
    dir: PathBuf,
    tx: Option<mpsc::Sender<Msg>>,
    next_txid: u64,
    state: watch::Receiver<SyncState>,
    syncs: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl EditLog {
    /// [`EditLog::open_with`] on the disk, syncing every batch.
    pub fn open(dir: &Path, next_txid: u64) -> Result<EditLog> {
        EditLog::open_with(dir, next_txid, LogOptions::default())
    }

    /// Starts writing a new segment at `next_txid` in `dir` (replacing an existing, record-less
    /// segment of that name) and spawns the writer thread.
    pub fn open_with(dir: &Path, next_txid: u64, opts: LogOptions) -> Result<EditLog> {
        sync_last_segment(dir)?;
        let (tx, rx) = mpsc::channel();
        let (state_tx, state_rx) = watch::channel(SyncState {
            written_txid: next_txid - 1,
            synced_txid: next_txid - 1,
            failed: None,
        });
        let syncs = Arc::new(AtomicU64::new(0));
        let writer = writer::Writer::start(writer::Start {
            dir: dir.to_path_buf(),
            first_txid: next_txid,
            opts,
            state: state_tx,
            syncs: syncs.clone(),
        })?;
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

    /// Queues `op` with the next txid and returns that txid. It is written and synced later:
    /// see [`SyncHandle`].
    pub fn append(&mut self, op: &Op) -> Result<u64> {
        self.check_healthy()?;
        let txid = self.next_txid;
        let record = op.to_record(txid);
        self.send(Msg::Record { txid, record })?;
        self.next_txid += 1;
        Ok(txid)
    }

    /// Asks the writer to fsync everything queued so far without waiting for the interval.
    /// Nothing is sent when it is already synced.
    pub fn request_sync(&mut self) -> Result<()> {
        if self.synced_txid() >= self.last_txid() {
            return Ok(());
        }
        self.send(Msg::Sync)
    }

    /// The last txid handed out.
    pub fn last_txid(&self) -> u64 {
        self.next_txid - 1
    }

    /// Every txid up to this one survives a power loss.
    pub fn synced_txid(&self) -> u64 {
        self.state.borrow().synced_txid
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

    /// Writes and syncs everything queued, stops the writer thread and reports the log's health.
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
