//! Reading a file: extent after extent, each streamed from one replica of its block in packets
//! whose CRC32Cs are verified here; holes between extents read as zeros. A checksum mismatch is
//! reported to the NameNode (so the replica gets healed) and, like a dead or stalled DataNode,
//! makes the reader continue from the same offset on another replica. The caller never sees a
//! byte that failed verification.
//!
//! A reader holds its file open (see `holds`) and, after the first answer, addresses it by inode
//! path: renamed, replaced or unlinked meanwhile, it goes on reading the file it opened.

use std::collections::HashSet;
use std::sync::Arc;

use bytes::Bytes;
use dfs_proto::packet::read_packet;
use dfs_proto::pb::{self, op_request::Op};

use dfs_proto::path::DfsPath;

use crate::client::ClientInner;
use crate::datanode::{self, Conn};
use crate::error::{Error, Result};
use crate::holds::Hold;
use crate::namenode::call;

/// How many times the block list is fetched again when every replica of a block failed (the
/// NameNode may meanwhile know of new replicas).
const REFETCH_ATTEMPTS: u32 = 3;

/// A file open for reading, positioned at an offset; see [`crate::blocking::FileReader`] for the
/// `std::io::Read + Seek` adapter.
pub struct FileReader {
    inner: Arc<ClientInner>,
    path: String,
    blocks: Vec<pb::LocatedBlock>,
    len: u64,
    pos: u64,
    current: Option<BlockReader>,
    /// DataNode uuids that failed for a given block id: never retried for that block.
    failed: HashSet<(u64, String)>,
    /// The inode id of the file read.
    file_id: u64,
    status: Option<crate::FileStatus>,
    _hold: Hold,
}

impl FileReader {
    /// A reader of the file `locs` (its GetBlockLocations answer, with `hold`) describes.
    pub(crate) async fn open(
        inner: Arc<ClientInner>,
        path: &str,
        locs: pb::LocatedBlocks,
    ) -> Result<FileReader> {
        let mut r = FileReader {
            _hold: inner.hold(locs.file_id),
            inner,
            path: path.to_string(),
            blocks: Vec::new(),
            len: 0,
            pos: 0,
            current: None,
            failed: HashSet::new(),
            file_id: locs.file_id,
            status: locs.status.clone().map(crate::FileStatus::from),
        };
        r.take_locations(locs).await?;
        Ok(r)
    }

    /// The file's length as of opening (for a file being written: what had been hflushed).
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The inode id of the file being read (what the path named when the reader opened).
    pub fn file_id(&self) -> u64 {
        self.file_id
    }

    /// Keeps the file open beyond this reader's life (see [`crate::KeepOpen`]).
    pub fn keep_open(&self) -> crate::KeepOpen {
        self.inner.hold(self.file_id)
    }

    /// The file's status when the reader opened it.
    pub fn status(&self) -> Option<&crate::FileStatus> {
        self.status.as_ref()
    }

    /// The offset of the next byte `read` returns.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Moves to `pos` (past the end is allowed: reads there return 0).
    pub fn seek(&mut self, pos: u64) {
        if self.current.as_ref().map(|c| c.file_pos()) != Some(pos) {
            self.current = None;
        }
        self.pos = pos;
    }

    /// Reads up to `buf.len()` bytes at the current position; 0 means end of file.
    pub async fn read(&mut self, buf: &mut [u8]) -> Result<usize> {
        if buf.is_empty() || self.pos >= self.len {
            return Ok(0);
        }
        let mut refetches = 0;
        loop {
            if self.current.is_none() {
                if let Some(end) = self.hole_end() {
                    // A hole: zeros up to the next extent (or the end of the file).
                    let n = buf.len().min((end - self.pos) as usize);
                    buf[..n].fill(0);
                    self.pos += n as u64;
                    return Ok(n);
                }
                match self.open_block_reader().await {
                    Ok(Some(r)) => self.current = Some(r),
                    Ok(None) => return Ok(0),
                    Err(reason) => {
                        if refetches < REFETCH_ATTEMPTS {
                            refetches += 1;
                            tokio::time::sleep(std::time::Duration::from_millis(
                                200 * u64::from(refetches),
                            ))
                            .await;
                            self.failed.clear();
                            self.fetch_locations().await?;
                            continue;
                        }
                        return Err(Error::BlockMissing {
                            path: self.path.clone(),
                            offset: self.pos,
                            reason,
                        });
                    }
                }
            }
            let Some(cur) = self.current.as_mut() else {
                continue;
            };
            match cur.read(buf, self.inner.cfg.socket_timeout).await {
                Ok(0) => {
                    // This block is done; move on to the next one.
                    self.current = None;
                    if self.pos >= self.len {
                        return Ok(0);
                    }
                }
                Ok(n) => {
                    self.pos += n as u64;
                    return Ok(n);
                }
                Err(ReadFailure { reason, corrupt }) => {
                    let cur = self.current.take().expect("current reader present");
                    tracing::warn!(path = %self.path, datanode = %datanode::addr(&cur.node), "{reason}; trying another replica");
                    if corrupt {
                        self.report_bad(&cur).await;
                    }
                    self.failed.insert((cur.block_id(), cur.node.uuid.clone()));
                }
            }
        }
    }

    /// Reads until `buf` is full or the file ends; returns the bytes read.
    pub async fn read_full(&mut self, buf: &mut [u8]) -> Result<usize> {
        let mut n = 0;
        while n < buf.len() {
            let m = self.read(&mut buf[n..]).await?;
            if m == 0 {
                break;
            }
            n += m;
        }
        Ok(n)
    }

    /// Reads the rest of the file.
    pub async fn read_to_end(&mut self, out: &mut Vec<u8>) -> Result<usize> {
        let start = out.len();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = self.read(&mut buf).await?;
            if n == 0 {
                return Ok(out.len() - start);
            }
            out.extend_from_slice(&buf[..n]);
        }
    }

    /// Where the hole at the current position ends, if it is in one: the next extent's start,
    /// or the end of the file.
    fn hole_end(&self) -> Option<u64> {
        let pos = self.pos;
        if self
            .blocks
            .iter()
            .any(|b| pos >= b.offset && pos < b.offset + b.length)
        {
            return None;
        }
        let next = self
            .blocks
            .iter()
            .map(|b| b.offset)
            .filter(|o| *o > pos)
            .min()
            .unwrap_or(self.len);
        Some(next.min(self.len).max(pos + 1))
    }

    /// Asks again where the file's extents are, by its inode path (the file opened, whatever
    /// its names are now).
    async fn fetch_locations(&mut self) -> Result<()> {
        let path = DfsPath::inode(self.file_id).to_string();
        let locs = self.inner.locations(&path, 0, u64::MAX, false).await?;
        self.take_locations(locs).await
    }

    async fn take_locations(&mut self, locs: pb::LocatedBlocks) -> Result<()> {
        self.blocks = locs.blocks;
        self.len = locs.file_length;
        if locs.under_construction && !locs.last_block_complete {
            self.len = self.visible_length_of_last_block().await?;
        }
        Ok(())
    }

    /// A file being written: its last block is as long as its replicas have acknowledged (what
    /// was hflushed), which only the DataNodes know. Ask them, as HDFS readers do.
    async fn visible_length_of_last_block(&mut self) -> Result<u64> {
        let Some(last) = self.blocks.last_mut() else {
            return Ok(self.len);
        };
        if last.offset + last.length != self.len || !last.under_construction {
            // The file does not end with the block being written (a hole follows it).
            return Ok(self.len);
        }
        let block = last.block.unwrap_or_default();
        let mut errors = Vec::new();
        for dn in last.locations.iter().filter_map(|l| l.id.as_ref()) {
            let op = Op::ReplicaLength(pb::ReplicaLengthOp { block: Some(block) });
            match Conn::open::<pb::ReplicaLengthResponse>(dn, op, self.inner.cfg.socket_timeout)
                .await
            {
                Ok((_, r)) if r.status == pb::Status::Success as i32 => {
                    if let Some(b) = last.block.as_mut() {
                        b.num_bytes = r.visible_length;
                    }
                    last.length = r.visible_length.saturating_sub(last.block_offset);
                    return Ok(last.offset + last.length);
                }
                Ok((_, r)) => errors.push(
                    datanode::check(r.status, &r.message, dn)
                        .err()
                        .unwrap_or_default(),
                ),
                Err(e) => errors.push(format!("{}: {e}", datanode::addr(dn))),
            }
        }
        if block.num_bytes == 0 && last.locations.is_empty() {
            // A block just allocated, nothing written yet.
            return Ok(last.offset);
        }
        if errors.is_empty() {
            return Ok(last.offset + last.length);
        }
        Err(Error::BlockMissing {
            path: self.path.clone(),
            offset: last.offset,
            reason: format!(
                "no replica of the block being written answered: {}",
                errors.join("; ")
            ),
        })
    }

    /// Connects to a replica of the block holding `pos`; `Ok(None)` past the last block; `Err`
    /// with the reasons when every replica failed.
    async fn open_block_reader(&mut self) -> std::result::Result<Option<BlockReader>, String> {
        let pos = self.pos;
        let Some(lb) = self
            .blocks
            .iter()
            .find(|b| pos >= b.offset && pos < b.offset + b.length)
        else {
            return Ok(None);
        };
        let block = lb.block.unwrap_or_default();
        let extent = Extent {
            file_off: lb.offset,
            block_off: lb.block_offset,
            end: lb.block_offset + lb.length,
        };
        let mut reasons = Vec::new();
        for dn in lb.locations.iter().filter_map(|l| l.id.as_ref()) {
            if self.failed.contains(&(block.block_id, dn.uuid.clone())) {
                continue;
            }
            let offset = lb.block_offset + (pos - lb.offset);
            match BlockReader::open(&self.inner, dn, extent, &block, offset).await {
                Ok(r) => return Ok(Some(r)),
                Err(reason) => {
                    tracing::warn!(path = %self.path, "{reason}");
                    self.failed.insert((block.block_id, dn.uuid.clone()));
                    reasons.push(reason);
                }
            }
        }
        if reasons.is_empty() {
            reasons.push(format!(
                "no usable replica of block {} is known",
                block.block_id
            ));
        }
        Err(reasons.join("; "))
    }

    /// Tells the NameNode that the replica `r` read from is corrupt. Best effort: the read goes
    /// on from another replica whatever the answer.
    async fn report_bad(&self, r: &BlockReader) {
        let req = pb::ReportBadBlocksRequest {
            blocks: vec![pb::LocatedBlock {
                block: Some(r.block),
                offset: r.extent.file_off,
                locations: vec![pb::DatanodeInfo {
                    id: Some(r.node.clone()),
                    ..Default::default()
                }],
                corrupt: true,
                ..Default::default()
            }],
        };
        if let Err(e) = call!(self.inner.nn, report_bad_blocks, req) {
            tracing::warn!("could not report a corrupt replica to the NameNode: {e}");
        }
    }
}

/// Why a block stream stopped: `corrupt` when the data failed its checksum.
struct ReadFailure {
    reason: String,
    corrupt: bool,
}

/// Where an extent's bytes are: file bytes from `file_off` are block bytes from `block_off`,
/// up to block offset `end`.
#[derive(Debug, Clone, Copy)]
struct Extent {
    file_off: u64,
    block_off: u64,
    end: u64,
}

/// One streaming read of an extent from one DataNode, from an offset to the extent's end.
struct BlockReader {
    node: pb::DatanodeId,
    block: pb::ExtendedBlock,
    extent: Extent,
    /// The replica's bytes per checksum, as its DataNode announced it.
    bpc: u32,
    conn: Conn,
    /// Verified bytes not yet returned, and the block offset of `pending[0]`.
    pending: Bytes,
    next: u64,
    end: u64,
    done: bool,
}

impl BlockReader {
    async fn open(
        inner: &ClientInner,
        dn: &pb::DatanodeId,
        extent: Extent,
        block: &pb::ExtendedBlock,
        offset: u64,
    ) -> std::result::Result<BlockReader, String> {
        let op = Op::ReadBlock(pb::ReadBlockOp {
            block: Some(*block),
            offset,
            length: extent.end - offset,
            client_name: inner.client_name.clone(),
        });
        let (conn, reply) = Conn::open::<pb::ReadBlockResponse>(dn, op, inner.cfg.socket_timeout)
            .await
            .map_err(|e| format!("DataNode {}: {e}", datanode::addr(dn)))?;
        datanode::check(reply.status, &reply.message, dn)?;
        // The replica's own chunking, whatever this client would write with: a file written
        // with another `dfs.bytes-per-checksum` reads like any other.
        let bpc = dfs_proto::checksum::validate_bytes_per_checksum(reply.bytes_per_checksum)
            .map_err(|e| format!("DataNode {} answered a read with {e}", datanode::addr(dn)))?;
        if reply.chunk_offset > offset {
            return Err(format!(
                "DataNode {} answered a read at {offset} with chunk offset {}",
                datanode::addr(dn),
                reply.chunk_offset,
            ));
        }
        Ok(BlockReader {
            node: dn.clone(),
            block: *block,
            extent,
            bpc,
            conn,
            pending: Bytes::new(),
            next: offset,
            end: extent.end,
            done: false,
        })
    }

    fn block_id(&self) -> u64 {
        self.block.block_id
    }

    /// File offset of the next byte this reader returns.
    fn file_pos(&self) -> u64 {
        self.extent.file_off + (self.next - self.extent.block_off)
    }

    /// Returns verified bytes; 0 at the end of the block.
    async fn read(
        &mut self,
        out: &mut [u8],
        timeout: std::time::Duration,
    ) -> std::result::Result<usize, ReadFailure> {
        let fail = |reason: String, corrupt| ReadFailure { reason, corrupt };
        while self.pending.is_empty() {
            if self.done || self.next >= self.end {
                return Ok(0);
            }
            let packet =
                tokio::time::timeout(timeout, read_packet(&mut self.conn.reader, self.bpc))
                    .await
                    .map_err(|_| fail(format!("read stalled for {timeout:?}"), false))?
                    .map_err(|e| {
                        fail(format!("reading block {}: {e}", self.block.block_id), false)
                    })?;
            if packet.header.last_packet {
                self.done = true;
                if self.next < self.end {
                    return Err(fail(
                        format!(
                            "block {} ended at {} of {} bytes",
                            self.block.block_id, self.next, self.end
                        ),
                        false,
                    ));
                }
                return Ok(0);
            }
            let start = packet.header.offset_in_block;
            let stop = packet.end_offset();
            if start > self.next || stop <= self.next {
                return Err(fail(
                    format!("packet for {start}..{stop} when {} was expected", self.next),
                    false,
                ));
            }
            if let Err(e) = packet.verify(self.bpc) {
                return Err(fail(format!("block {}: {e}", self.block.block_id), true));
            }
            let skip = (self.next - start) as usize;
            let keep = (stop.min(self.end) - start) as usize;
            self.pending = packet.data.slice(skip..keep);
        }
        let n = out.len().min(self.pending.len());
        out[..n].copy_from_slice(&self.pending[..n]);
        self.pending = self.pending.slice(n..);
        self.next += n as u64;
        Ok(n)
    }
}
