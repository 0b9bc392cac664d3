//! Writing a file: bytes are cut into packets of up to 64 KiB (ending on 64 KiB boundaries of the
//! block, so packets stay chunk-aligned after an unaligned `hflush`), each with its CRC32Cs, and
//! streamed down a pipeline of DataNodes without waiting for acks; an ack task reads the
//! pipeline's acks in order. At most `max_packets_in_flight` packets are unacknowledged, and they
//! are kept until acked so that a broken pipeline can be rebuilt and the packets resent.
//!
//! A block ends with an empty `last_packet`; the writer waits for its ack (the replicas are then
//! finalized on disk) before asking the NameNode for the next block.
//!
//! Pipeline recovery: when a DataNode of the pipeline fails (an ack names it, or the connection to
//! the first one breaks), the writer drops it, asks the NameNode for a new generation stamp (so the
//! dropped replica is recognizably stale), reconnects the survivors with stage RECOVERY at the
//! acknowledged length, records the new pipeline with the NameNode, and resends every unacknowledged
//! packet. The caller sees an error only when no DataNode is left. When the NameNode has a
//! replacement DataNode, a survivor first copies the acknowledged bytes to it and it joins the
//! rebuilt pipeline, so the block keeps its replication; otherwise the NameNode re-replicates the
//! block once it is complete.
//!
//! Keep-alive: a pipeline with nothing to send for half the socket timeout gets an empty packet
//! (as HDFS's heartbeat packets), so DataNodes do not time out a writer that is merely idle.
//!
//! Writing anywhere (ARCHITECTURE.md, "Writing anywhere"): the first write that is not at the end
//! of the file ends the current block and turns the writer to *log blocks*. From then on every
//! write, wherever it lands, is appended to the log block, and the extent it makes is kept in
//! [`pending`] until the writer commits them (`hflush`, `hsync`, a full log block, `close`), after
//! every replica has acknowledged their bytes. Nothing on a DataNode is rewritten. When the commit
//! that ends a log block names ranges to compact (the file stores more than twice its length), the
//! writer copies them into the log after the write that ended the block.
//!
//! Modules: `pipeline` (one block's pipeline: packets, acks, keep-alive, recovery), `pending`
//! (the extents written to the log block and not yet committed).

mod pending;
mod pipeline;

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use dfs_proto::packet::{Packet, PACKET_SIZE};
use dfs_proto::path::DfsPath;
use dfs_proto::pb;

use crate::client::ClientInner;
use crate::error::{Error, Result};
use crate::holds::Hold;
use crate::namenode::call;
use crate::reader::FileReader;
use crate::types::FileStatus;
use pending::Pending;
use pipeline::{BlockStream, Failure};

/// More extents than this pending make the writer commit (a CommitExtents of ~0.3 MiB), whatever
/// the length of the log block.
const MAX_PENDING_EXTENTS: usize = 16_384;

/// A file open for writing. Call [`FileWriter::close`] to complete the file; dropping a writer
/// without closing it leaves the file under construction until its lease expires.
pub struct FileWriter {
    inner: Arc<ClientInner>,
    path: String,
    /// The file as the NameNode described it when the writer opened (inode id, block size).
    status: FileStatus,
    /// Bytes not yet sent: always less than one packet, and within the current block.
    buf: BytesMut,
    block: Option<BlockStream>,
    /// The last finished block, reported to the NameNode with the next AddBlock or Complete.
    previous: Option<pb::ExtendedBlock>,
    /// File length so far (including buffered bytes).
    length: u64,
    /// Once the writer has written anywhere but the end: the extents not yet committed. Every
    /// block it opens from then on is a log block.
    log: Option<Pending>,
    /// File ranges the NameNode asked to be copied into the log (compaction), after the write
    /// whose commit got the answer.
    compact: Vec<(u64, u64)>,
    state: State,
    /// The writer holds its file open (and its lease renewed) while it lives.
    _hold: Hold,
}

#[derive(Debug, Clone, PartialEq)]
enum State {
    Open,
    Closed,
    Failed(String),
}

impl FileWriter {
    pub(crate) async fn new(
        inner: Arc<ClientInner>,
        path: String,
        status: &pb::FileStatus,
        reopen: Option<pb::LocatedBlock>,
    ) -> Result<FileWriter> {
        let mut w = FileWriter {
            _hold: inner.hold(status.inode_id),
            path,
            status: FileStatus::from(status.clone()),
            buf: BytesMut::with_capacity(PACKET_SIZE),
            block: None,
            previous: None,
            length: status.length,
            log: None,
            compact: Vec::new(),
            state: State::Open,
            inner,
        };
        if let Some(lb) = reopen {
            // Append to a partial last block: reopen its replicas at their current length.
            let len = lb.block.as_ref().map_or(0, |b| b.num_bytes);
            match BlockStream::setup(&w.inner, &w.path, &lb, pb::Stage::Append, len).await {
                Ok(s) => w.block = Some(s),
                Err(e) => {
                    let reason =
                        format!("could not reopen the last block for append: {}", e.reason);
                    return Err(w.fail(Failure {
                        reason,
                        bad: None,
                        no_space: e.no_space,
                    }));
                }
            }
        }
        Ok(w)
    }

    /// The file's path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The file as the NameNode described it when this writer opened it (by create or
    /// append): its length then, owner, permission, times.
    pub fn status(&self) -> &FileStatus {
        &self.status
    }

    /// Keeps the file open beyond this writer's life (see [`crate::KeepOpen`]).
    pub fn keep_open(&self) -> crate::KeepOpen {
        self.inner.hold(self.status.inode_id)
    }

    /// The inode id of the file being written.
    pub fn file_id(&self) -> u64 {
        self.status.inode_id
    }

    /// Bytes in the file so far, including those written but not yet flushed.
    pub fn len(&self) -> u64 {
        self.length
    }

    pub fn is_empty(&self) -> bool {
        self.length == 0
    }

    /// Appends all of `data` at the end of the file; returns once it is buffered or sent (not
    /// acknowledged).
    pub async fn write(&mut self, data: &[u8]) -> Result<()> {
        self.write_at(self.length, data).await
    }

    /// Writes all of `data` at file offset `offset`: over bytes already there, into a hole, or
    /// past the end (the bytes between read as zeros). Returns once it is buffered or sent; like
    /// every write, it is visible to others after `hflush`, durable after `hsync`.
    pub async fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<()> {
        self.write_here(offset, data).await?;
        if !self.compact.is_empty() {
            self.compact().await?;
        }
        Ok(())
    }

    /// [`write_at`](Self::write_at) without compaction.
    async fn write_here(&mut self, offset: u64, mut data: &[u8]) -> Result<()> {
        self.check_open()?;
        if offset.checked_add(data.len() as u64).is_none() {
            return Err(Error::InvalidArgument(format!(
                "a write of {} bytes at {offset} ends past the largest offset",
                data.len()
            )));
        }
        if self.log.is_none() && offset != self.length {
            self.start_log().await?;
        }
        let mut at = offset;
        while !data.is_empty() {
            if self.block.is_none() {
                if let Err(e) = self.open_block().await {
                    self.fail(Failure::from(e.to_string()));
                    return Err(e);
                }
            }
            let (block_off, packet_end) = self.packet_bounds();
            let n = (packet_end - block_off).min(data.len() as u64);
            self.buffer(at, &data[..n as usize], block_off);
            data = &data[n as usize..];
            at += n;
            if block_off + n == packet_end {
                self.send_buf(false).await?;
                if packet_end == self.status.block_size {
                    self.end_block(true).await?;
                }
            }
        }
        if self
            .log
            .as_ref()
            .is_some_and(|p| p.len() > MAX_PENDING_EXTENTS)
        {
            // Tiny scattered writes: commit before the request (and the log record) grows large.
            self.hflush().await?;
        }
        Ok(())
    }

    /// Buffers `data` at `offset` if that needs no I/O and leaves nothing to do after it: a
    /// block is open, the bytes fit in the packet being filled without completing it, no
    /// compaction or commit is due, and (before the writer turned to log blocks) they go at
    /// the end. Returns whether it did; if not, nothing changed and
    /// [`write_at`](Self::write_at) must be called. Lets a caller that must not wait (the
    /// mount's request loop) take the common small write without a trip through the runtime.
    pub fn try_buffer(&mut self, offset: u64, data: &[u8]) -> bool {
        if self.state != State::Open
            || self.block.is_none()
            || !self.compact.is_empty()
            || data.is_empty()
            || offset.checked_add(data.len() as u64).is_none()
        {
            return false;
        }
        match &self.log {
            None if offset != self.length => return false,
            // An insert adds at most two pieces: stay within what write_here commits at.
            Some(p) if p.len() + 2 > MAX_PENDING_EXTENTS => return false,
            _ => {}
        }
        let (block_off, packet_end) = self.packet_bounds();
        if block_off + data.len() as u64 >= packet_end {
            return false;
        }
        self.buffer(offset, data, block_off);
        true
    }

    /// Where in the open block the next byte goes, and where the packet being filled ends.
    fn packet_bounds(&self) -> (u64, u64) {
        let block_off = self.block.as_ref().map_or(0, |b| b.sent) + self.buf.len() as u64;
        let packet_end = ((block_off / PACKET_SIZE as u64) + 1) * PACKET_SIZE as u64;
        (block_off, packet_end.min(self.status.block_size))
    }

    /// Adds `data` (within the packet being filled) for file offset `at`, at `block_off` of the
    /// open block.
    fn buffer(&mut self, at: u64, data: &[u8], block_off: u64) {
        self.buf.extend_from_slice(data);
        if let Some(p) = &mut self.log {
            p.insert(at, data.len() as u64, block_off);
        }
        self.length = self.length.max(at + data.len() as u64);
    }

    /// Makes everything written so far visible to new readers: sent to every DataNode of the
    /// pipeline and acknowledged (in their memory or page cache, not necessarily on disk), and
    /// what was written anywhere but the end committed at the NameNode.
    pub async fn hflush(&mut self) -> Result<()> {
        self.flush_packets(false).await?;
        self.commit_current().await
    }

    /// Like [`hflush`](Self::hflush), and every DataNode has fsync'ed the data before acking;
    /// the NameNode records the length (or the commit) and every namespace change before it
    /// survives a power loss, so the file does too.
    pub async fn hsync(&mut self) -> Result<()> {
        self.flush_packets(true).await?;
        if self.log.is_some() {
            self.commit_current().await?;
        } else if let Some(b) = &self.block {
            let req = pb::FsyncRequest {
                path: self.path.clone(),
                client_name: self.inner.client_name.clone(),
                last_block_length: b.sent,
                file_id: self.status.inode_id,
            };
            call!(self.inner.nn.synced(), fsync, req)?;
            return Ok(());
        }
        self.inner.sync_metadata().await
    }

    /// Compaction: copies the file ranges the NameNode named at the end of the last log block
    /// (the live bytes of its least-live block) into the log, the same bytes at the same offsets,
    /// so that block is freed once they are committed. Everything pending is committed first, so
    /// the copy reads the newest bytes (a range rewritten since is copied needlessly, not wrongly).
    /// A copy that cannot read (a file the writer may not read, a block unreadable for now)
    /// stops: only space is lost, and the next commit names the ranges again.
    async fn compact(&mut self) -> Result<()> {
        let ranges = std::mem::take(&mut self.compact);
        self.hflush().await?;
        let live: u64 = ranges.iter().map(|(_, len)| len).sum();
        tracing::info!(path = %self.path, ranges = ranges.len(), bytes = live, "compacting: copying the live bytes of the emptiest block");
        let path = DfsPath::inode(self.status.inode_id).to_string();
        let opened = async {
            let locs = self.inner.locations(&path, 0, u64::MAX, false).await?;
            FileReader::open(self.inner.clone(), &path, locs).await
        };
        let mut reader = match opened.await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(path = %self.path, "not compacting: {e}");
                return Ok(());
            }
        };
        let mut buf = vec![0u8; PACKET_SIZE];
        for (off, len) in ranges {
            let mut at = off;
            while at < off + len {
                let n = (off + len - at).min(buf.len() as u64) as usize;
                reader.seek(at);
                match reader.read_full(&mut buf[..n]).await {
                    Ok(got) if got == n => {}
                    Ok(got) => {
                        tracing::warn!(path = %self.path, "compaction stopped: {got} of {n} bytes at {at} read");
                        return Ok(());
                    }
                    Err(e) => {
                        tracing::warn!(path = %self.path, "compaction stopped: {e}");
                        return Ok(());
                    }
                }
                self.write_here(at, &buf[..n]).await?;
                at += n as u64;
            }
        }
        Ok(())
    }

    /// Turns the writer to log blocks: the block being appended to ends here.
    async fn start_log(&mut self) -> Result<()> {
        self.end_current(true).await?;
        self.log = Some(Pending::default());
        Ok(())
    }

    /// Sends the buffered bytes and ends the block being written, if any (`durable`: see
    /// [`FileWriter::end_block`]).
    async fn end_current(&mut self, durable: bool) -> Result<()> {
        if self.block.is_some() {
            if !self.buf.is_empty() {
                self.send_buf(false).await?;
            }
            self.end_block(durable).await?;
        }
        Ok(())
    }

    /// Commits the pending extents of the log block being written (all acknowledged).
    async fn commit_current(&mut self) -> Result<()> {
        match self.block.as_ref().map(|b| pb::ExtendedBlock {
            num_bytes: b.sent,
            ..b.block
        }) {
            Some(block) => self.commit(block, false).await,
            None => Ok(()),
        }
    }

    /// Commits the pending extents, all in log block `block` (at its acknowledged length), and
    /// the file's length. Without a log or a pending extent, nothing to do. At the end of a log
    /// block (`block_done`) it asks for compaction's next step and keeps the ranges for
    /// [`compact`](Self::compact): once per block, so its cost is spread over a block's writes.
    /// A failed commit fails the writer: its extents are gone with it.
    async fn commit(&mut self, block: pb::ExtendedBlock, block_done: bool) -> Result<()> {
        let Some(pending) = self.log.as_mut().filter(|p| !p.is_empty()) else {
            return Ok(());
        };
        let req = pb::CommitExtentsRequest {
            path: self.path.clone(),
            client_name: self.inner.client_name.clone(),
            file_id: self.status.inode_id,
            block: Some(block),
            extents: pending.take(),
            length: self.length,
            compact: block_done,
        };
        match call!(self.inner.nn, commit_extents, req) {
            Ok(r) => {
                if block_done {
                    self.compact = compaction_ranges(&r.compact);
                }
                Ok(())
            }
            Err(e) => {
                self.state = State::Failed(format!("committing writes: {e}"));
                self.block = None;
                Err(e)
            }
        }
    }

    /// Sends the buffered bytes, ends the current block, and completes the file at the
    /// NameNode (which releases the lease). Closing twice is a no-op.
    pub async fn close(&mut self) -> Result<()> {
        match &self.state {
            State::Closed => return Ok(()),
            State::Failed(why) => {
                return Err(Error::Closed(format!(": an earlier write failed: {why}")))
            }
            State::Open => {}
        }
        let result = self.finish().await;
        match &result {
            Ok(()) => self.state = State::Closed,
            Err(e) => {
                self.fail(Failure::from(e.to_string()));
            }
        }
        result
    }

    /// Closes after copying `ranges` (compaction's step a truncate named) into the log: the cut
    /// left garbage that no other writer may come to free.
    pub(crate) async fn close_compacted(&mut self, ranges: Vec<(u64, u64)>) -> Result<()> {
        self.compact = ranges;
        self.close().await
    }

    async fn finish(&mut self) -> Result<()> {
        let durable = self.inner.cfg.durable_replies;
        self.end_current(durable).await?;
        // Compaction named at the last block's end runs before the file closes, step after step
        // until the file is within bound: a file closed after a burst of overwrites would keep
        // its garbage until someone writes to it again. Every step frees bytes (the NameNode
        // never names a block without garbage), so the loop ends.
        while !self.compact.is_empty() {
            self.compact().await?;
            self.end_current(durable).await?;
        }
        // The DataNodes report finalized replicas to the NameNode asynchronously; the NameNode
        // waits a moment for the first, and answers `completed: false` if it has not come: then
        // retry with backoff (as HDFS's client does).
        let mut delay = Duration::from_millis(100);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let req = pb::CompleteRequest {
                path: self.path.clone(),
                client_name: self.inner.client_name.clone(),
                last: self.previous,
                file_id: self.status.inode_id,
            };
            if call!(self.inner.nn, complete, req)?.completed {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::Pipeline {
                    path: self.path.clone(),
                    reason: "the NameNode did not see the last block's replicas within 60 s".into(),
                });
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(1));
        }
    }

    fn check_open(&self) -> Result<()> {
        match &self.state {
            State::Open => Ok(()),
            State::Closed => Err(Error::Closed(String::new())),
            State::Failed(why) => Err(Error::Closed(format!(": an earlier write failed: {why}"))),
        }
    }

    /// Marks the writer failed (every later call errors) and returns the error to report:
    /// `NoSpace` when the DataNodes ran out of room, so the caller learns that the cluster is
    /// full rather than that a pipeline broke.
    fn fail(&mut self, f: Failure) -> Error {
        self.state = State::Failed(f.reason.clone());
        self.block = None;
        if f.no_space {
            return Error::NoSpace(format!(
                "no space left: write to {} failed: {}",
                self.path, f.reason
            ));
        }
        Error::Pipeline {
            path: self.path.clone(),
            reason: f.reason,
        }
    }

    async fn flush_packets(&mut self, sync: bool) -> Result<()> {
        self.check_open()?;
        if self.block.is_none() {
            return Ok(());
        }
        if !self.buf.is_empty() || sync {
            self.send_buf(sync).await?;
        }
        let Some(b) = self.block.as_mut() else {
            return Ok(());
        };
        if let Err(f) = b.wait_all_acked().await {
            return Err(self.fail(f));
        }
        Ok(())
    }

    /// Sends the buffer as one packet (possibly empty, for a sync).
    async fn send_buf(&mut self, sync: bool) -> Result<()> {
        let Some(b) = self.block.as_mut() else {
            return Err(Error::Closed(": no block is open".into()));
        };
        let data = self.buf.split().freeze();
        let packet = Packet::new(0, b.sent, data, self.inner.cfg.bytes_per_checksum, sync);
        if let Err(f) = b.send(packet).await {
            return Err(self.fail(f));
        }
        Ok(())
    }

    /// Ends the current block; a log block's extents are then committed. With `durable` its
    /// DataNodes fsync it first: every block that ends before the file closes, since a later
    /// `hsync` reaches only the block being written, and the last one when replies are durable.
    async fn end_block(&mut self, durable: bool) -> Result<()> {
        let Some(mut b) = self.block.take() else {
            return Ok(());
        };
        match b.finish(durable).await {
            Ok(block) => {
                self.previous = Some(block);
                self.commit(block, true).await
            }
            Err(f) => Err(self.fail(f)),
        }
    }

    /// Asks the NameNode for the next block and sets up its pipeline; a DataNode that cannot be
    /// reached is excluded and the block abandoned and re-requested (up to 3 times). When the
    /// DataNodes that refused for lack of space were the last ones left, the error is `NoSpace`.
    async fn open_block(&mut self) -> Result<()> {
        let mut exclude: Vec<String> = Vec::new();
        let mut full: Vec<String> = Vec::new();
        let mut last_error = String::new();
        for _ in 0..4 {
            let req = pb::AddBlockRequest {
                path: self.path.clone(),
                client_name: self.inner.client_name.clone(),
                previous: self.previous,
                exclude_nodes: exclude.clone(),
                file_id: self.status.inode_id,
                client_host: self.inner.client_host.clone(),
                log: self.log.is_some(),
            };
            let lb = match call!(self.inner.nn, add_block, req) {
                Ok(r) => r
                    .block
                    .ok_or_else(|| Error::Namenode("AddBlock returned no block".into()))?,
                Err(Error::NoLiveDatanodes(m)) if !full.is_empty() => {
                    return Err(Error::NoSpace(format!(
                        "no space left: DataNode(s) {} refused a new block for lack of space, and {m}",
                        full.join(", ")
                    )))
                }
                Err(e) => return Err(e),
            };
            match BlockStream::setup(&self.inner, &self.path, &lb, pb::Stage::Create, 0).await {
                Ok(s) => {
                    self.block = Some(s);
                    return Ok(());
                }
                Err(e) => {
                    tracing::warn!(path = %self.path, "pipeline setup failed, excluding {}: {}", e.bad_addr, e.reason);
                    let abandon = pb::AbandonBlockRequest {
                        path: self.path.clone(),
                        client_name: self.inner.client_name.clone(),
                        block: lb.block,
                        file_id: self.status.inode_id,
                    };
                    call!(self.inner.nn, abandon_block, abandon)?;
                    if e.no_space {
                        full.push(e.bad_addr);
                    }
                    exclude.push(e.bad_uuid);
                    last_error = e.reason;
                }
            }
        }
        let reason = format!("no pipeline could be set up: {last_error}");
        if !full.is_empty() {
            return Err(Error::NoSpace(format!("no space left: {reason}")));
        }
        Err(Error::Pipeline {
            path: self.path.clone(),
            reason,
        })
    }
}

/// Compaction's file ranges (offset, length) as the NameNode names them, in a commit's or a
/// truncate's answer.
pub(crate) fn compaction_ranges(extents: &[pb::FileExtent]) -> Vec<(u64, u64)> {
    extents.iter().map(|e| (e.offset, e.length)).collect()
}
