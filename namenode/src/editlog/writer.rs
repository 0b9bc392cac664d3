//! The writer thread: frames records, writes each batch with one `write`, publishes it as
//! written, and fsyncs when asked, when the sync interval is up, or (interval zero) every batch.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use dfs_proto::pb;
use prost::Message;
use tokio::sync::watch;

use super::{segment_name, LogOptions, Msg, SegmentFile, SegmentStore, SyncState, EDIT_MAGIC};
use crate::error::{Error, Result};
use crate::metrics::SyncMetrics;
use crate::record;

/// Most records written before an fsync, so one writer burst cannot starve waiters forever.
const MAX_BATCH: usize = 16 * 1024;

/// Creates (or truncates) a segment and makes its header and directory entry durable.
fn create_segment(
    store: &dyn SegmentStore,
    dir: &Path,
    first_txid: u64,
) -> Result<Box<dyn SegmentFile>> {
    let path = dir.join(segment_name(first_txid));
    store
        .create(&path, EDIT_MAGIC)
        .map_err(|e| Error::io(format!("create {}", path.display()), e))
}

/// What [`Writer::start`] needs.
pub(super) struct Start {
    pub dir: PathBuf,
    pub first_txid: u64,
    pub opts: LogOptions,
    pub state: watch::Sender<SyncState>,
    pub syncs: Arc<AtomicU64>,
}

pub(super) struct Writer {
    dir: PathBuf,
    store: Arc<dyn SegmentStore>,
    interval: Duration,
    out: Box<dyn SegmentFile>,
    /// Framed records not yet handed to the operating system.
    buf: Vec<u8>,
    /// Bytes of the segment written or buffered, and how many of them were synced.
    offset: u64,
    synced_offset: u64,
    records_in_segment: u64,
    last_buffered: u64,
    last_written: u64,
    last_synced: u64,
    /// When the oldest written but unsynced record was written.
    unsynced_since: Option<Instant>,
    failed: Option<Arc<str>>,
    state: watch::Sender<SyncState>,
    syncs: Arc<AtomicU64>,
    metrics: SyncMetrics,
}

impl Writer {
    /// Creates the first segment; the thread is spawned by the caller.
    pub(super) fn start(s: Start) -> Result<Writer> {
        let out = create_segment(s.opts.store.as_ref(), &s.dir, s.first_txid)?;
        let last = s.first_txid - 1;
        Ok(Writer {
            dir: s.dir,
            store: s.opts.store,
            interval: s.opts.sync_interval,
            metrics: s.opts.metrics,
            out,
            buf: Vec::with_capacity(256 * 1024),
            offset: EDIT_MAGIC.len() as u64,
            synced_offset: EDIT_MAGIC.len() as u64,
            records_in_segment: 0,
            last_buffered: last,
            last_written: last,
            last_synced: last,
            unsynced_since: None,
            failed: None,
            state: s.state,
            syncs: s.syncs,
        })
    }

    /// Runs until every sender is gone ([`super::EditLog::close`]), then syncs what is left.
    pub(super) fn run(mut self, rx: mpsc::Receiver<Msg>) {
        loop {
            let deadline = self
                .unsynced_since
                .and_then(|t| t.checked_add(self.interval));
            let first = match deadline {
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    match rx.recv_timeout(left) {
                        Ok(m) => Some(m),
                        Err(mpsc::RecvTimeoutError::Timeout) => None,
                        Err(mpsc::RecvTimeoutError::Disconnected) => break,
                    }
                }
                None => match rx.recv() {
                    Ok(m) => Some(m),
                    Err(_) => break,
                },
            };
            let mut sync_now = self.interval.is_zero();
            let mut batch: Vec<Msg> = first.into_iter().collect();
            while !batch.is_empty() && batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(m) => batch.push(m),
                    Err(_) => break,
                }
            }
            for m in batch {
                match m {
                    Msg::Record { txid, record } => self.buffer(txid, record),
                    Msg::Sync => sync_now = true,
                    Msg::Roll { first_txid, done } => {
                        self.sync();
                        let _ = done.send(self.roll(first_txid));
                    }
                }
            }
            let due = self
                .unsynced_since
                .is_some_and(|since| since.elapsed() >= self.interval);
            if sync_now || due {
                self.sync();
            } else {
                self.write();
            }
        }
        self.sync();
    }

    fn fail(&mut self, what: String) {
        tracing::error!(error = %what, "edit log failed: no further mutation will be acknowledged");
        let msg: Arc<str> = what.into();
        self.failed = Some(msg.clone());
        self.state.send_modify(|s| s.failed = Some(msg));
    }

    /// Frames `record`, stamped with how far the segment is synced, into the batch buffer.
    fn buffer(&mut self, txid: u64, mut record: pb::EditRecord) {
        if self.failed.is_some() {
            return;
        }
        record.synced_offset = self.synced_offset;
        let start = self.buf.len();
        record::encode(&record.encode_to_vec(), &mut self.buf);
        self.offset += (self.buf.len() - start) as u64;
        self.last_buffered = txid;
        self.records_in_segment += 1;
    }

    /// Hands the buffered batch to the operating system. With a sync interval it is published
    /// as written at once; without one it waits for [`Writer::sync`].
    fn write(&mut self) {
        if self.buf.is_empty() || self.failed.is_some() {
            return;
        }
        if let Err(e) = self.out.write_all(&self.buf) {
            return self.fail(format!("write up to txid {}: {e}", self.last_buffered));
        }
        self.buf.clear();
        self.last_written = self.last_buffered;
        self.unsynced_since.get_or_insert_with(Instant::now);
        if !self.interval.is_zero() {
            let txid = self.last_written;
            self.state.send_modify(|s| s.written_txid = txid);
        }
    }

    /// Writes what is buffered and fsyncs the segment; publishes both watermarks.
    fn sync(&mut self) {
        self.write();
        if self.last_synced == self.last_written || self.failed.is_some() {
            return;
        }
        let started = Instant::now();
        if let Err(e) = self.out.sync_data() {
            return self.fail(format!("fsync up to txid {}: {e}", self.last_written));
        }
        let m = &self.metrics;
        m.seconds.observe(started.elapsed().as_secs_f64());
        m.batch
            .observe((self.last_written - self.last_synced) as f64);
        self.syncs.fetch_add(1, Ordering::Relaxed);
        self.synced_offset = self.offset;
        self.last_synced = self.last_written;
        self.unsynced_since = None;
        let txid = self.last_synced;
        self.state.send_modify(|s| {
            s.written_txid = txid;
            s.synced_txid = txid;
        });
    }

    fn roll(&mut self, first_txid: u64) -> Result<()> {
        if let Some(m) = &self.failed {
            return Err(Error::EditLogFailed(m.to_string()));
        }
        if self.records_in_segment == 0 {
            return Ok(()); // the current segment already starts at first_txid
        }
        match create_segment(self.store.as_ref(), &self.dir, first_txid) {
            Ok(out) => {
                self.out = out;
                self.records_in_segment = 0;
                self.offset = EDIT_MAGIC.len() as u64;
                self.synced_offset = self.offset;
                Ok(())
            }
            Err(e) => {
                self.fail(format!("start segment {first_txid}: {e}"));
                Err(e)
            }
        }
    }
}
