//! The data-transfer server: plain TCP, one task per connection (at most `max_transfer_threads`),
//! one operation per connection.
//!
//! A connection starts with one [`OpRequest`] frame; the reply and what follows depend on the op
//! (see `proto/dfs.proto` and docs/formats.md). Writes are handled in [`crate::pipeline`]; reads,
//! checksums, lengths and lease-recovery steps here. A malformed frame, unknown op or bad field
//! closes only its own connection.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dfs_proto::frame::{read_frame, write_frame};
use dfs_proto::pb::{self, op_request::Op, OpRequest};
use prost::Message;
use tokio::io::{AsyncWriteExt, BufReader, BufWriter};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use crate::metrics::Metrics;
use crate::shutdown::Shutdown;
use crate::storage::{ReplicaView, Storage};
use crate::types::{required_block, BadReplica, Block, GenerationStamp, Peer, ReplicaState};
use crate::{meta, pipeline, sender, volume, Error, Result};

/// Socket buffer sizes: a few packets.
pub(crate) const IO_BUFFER: usize = 256 * 1024;

pub(crate) type Reader = BufReader<OwnedReadHalf>;
pub(crate) type Writer = BufWriter<OwnedWriteHalf>;

/// What every connection handler shares.
pub(crate) struct XferContext {
    /// This DataNode, as others reach it.
    pub me: Peer,
    pub storage: Arc<Storage>,
    pub socket_timeout: Duration,
    /// `dfs.datanode.synconclose`: fsync every finished block, whatever its writer asked.
    pub sync_on_close: bool,
    /// Open data-transfer connections (reported in heartbeats as xceivers).
    pub active: AtomicUsize,
    /// Local replicas found corrupt, for the NameNode (ReportBadBlocks).
    pub bad_blocks: mpsc::UnboundedSender<BadReplica>,
    pub metrics: Metrics,
}

/// The wire status for an error: the one place errors become data-transfer statuses.
pub(crate) fn wire_status(e: &Error) -> pb::Status {
    match e {
        Error::NotFound(_) => pb::Status::ErrorNotFound,
        Error::Exists(_) => pb::Status::ErrorExists,
        Error::Invalid(_) => pb::Status::ErrorInvalid,
        Error::Checksum(_) => pb::Status::ErrorChecksum,
        Error::NoSpace(_) | Error::NoVolumes => pb::Status::ErrorNoSpace,
        Error::Io { source, .. } if volume::is_no_space(source) => pb::Status::ErrorNoSpace,
        _ => pb::Status::Error,
    }
}

/// Accepts connections until `shutdown`, then aborts the open ones and returns.
pub(crate) async fn serve(
    listener: TcpListener,
    ctx: Arc<XferContext>,
    max_connections: usize,
    mut shutdown: Shutdown,
) {
    let limit = Arc::new(Semaphore::new(max_connections.max(1)));
    let mut conns = JoinSet::new();
    loop {
        while conns.try_join_next().is_some() {}
        let permit = tokio::select! {
            p = limit.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = shutdown.wait() => break,
        };
        let (sock, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // Typically EMFILE: back off instead of spinning.
                    warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = shutdown.wait() => break,
        };
        let ctx = ctx.clone();
        conns.spawn(async move {
            let _permit = permit;
            let _active = ActiveGuard::new(&ctx.active);
            handle_connection(sock, peer, &ctx).await;
        });
    }
    // Open connections are cut: an interrupted write leaves an RBW replica, as a crash would.
    conns.shutdown().await;
}

/// Counts a connection as active while alive (also when its task is aborted).
struct ActiveGuard<'a>(&'a AtomicUsize);

impl<'a> ActiveGuard<'a> {
    fn new(c: &'a AtomicUsize) -> Self {
        c.fetch_add(1, Ordering::Relaxed);
        ActiveGuard(c)
    }
}

impl Drop for ActiveGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn handle_connection(sock: TcpStream, peer: SocketAddr, ctx: &Arc<XferContext>) {
    let _ = sock.set_nodelay(true);
    let (rd, wr) = sock.into_split();
    let mut rd = BufReader::with_capacity(IO_BUFFER, rd);
    let mut wr = BufWriter::with_capacity(IO_BUFFER, wr);
    let req: OpRequest = match tokio::time::timeout(ctx.socket_timeout, read_frame(&mut rd)).await {
        Ok(Ok(r)) => r,
        Ok(Err(dfs_proto::WireError::Closed)) => return,
        Ok(Err(e)) => {
            warn!(%peer, "bad request, closing: {e}");
            return;
        }
        Err(_) => {
            debug!(%peer, "no request within the socket timeout, closing");
            return;
        }
    };
    let result = match req.op {
        Some(Op::WriteBlock(op)) => pipeline::write_block(ctx, op, rd, wr).await,
        Some(Op::ReadBlock(op)) => read_block(ctx, op, &mut wr).await,
        Some(Op::BlockChecksum(op)) => block_checksum(ctx, op, &mut wr).await,
        Some(Op::ReplicaLength(op)) => replica_length(ctx, op, &mut wr).await,
        Some(Op::RecoverReplica(op)) => recover_replica(ctx, op, &mut wr).await,
        Some(Op::TransferReplica(op)) => transfer_replica(ctx, op, &mut wr).await,
        None => {
            warn!(%peer, "request without a known op, closing");
            return;
        }
    };
    if let Err(e) = result {
        debug!(%peer, "connection ended: {e}");
    }
}

/// Writes one frame and flushes it, within `timeout`.
pub(crate) async fn send<M: Message>(w: &mut Writer, msg: &M, timeout: Duration) -> Result<()> {
    let write = async {
        write_frame(w, msg).await?;
        w.flush().await?;
        Ok::<(), dfs_proto::WireError>(())
    };
    match tokio::time::timeout(timeout, write).await {
        Ok(r) => Ok(r?),
        Err(_) => Err(Error::Timeout("sending a reply".into())),
    }
}

/// Whether a local replica may answer a read-type request for `want`: a finalized replica needs
/// the requested generation stamp, an RBW one the same or newer (it may have been recovered since
/// the reader looked it up). Anything else is stale or not the block the reader means.
fn check_stamp(view: &ReplicaView, want: Block) -> Result<()> {
    let ok = match view.state {
        ReplicaState::Finalized => view.block.gs == want.gs,
        ReplicaState::Rbw => view.block.gs >= want.gs,
    };
    if !ok {
        return Err(Error::Invalid(format!(
            "{} has generation stamp {} ({:?}), requested {}",
            want.id, view.block.gs.0, view.state, want.gs.0
        )));
    }
    Ok(())
}

/// The replica for a read-type request, with its files open (see [`check_stamp`]).
fn open_for_read(
    ctx: &XferContext,
    want: Block,
) -> Result<(ReplicaView, std::fs::File, std::fs::File)> {
    let (view, data, meta) = ctx.storage.open_replica(want.id)?;
    check_stamp(&view, want)?;
    Ok((view, data, meta))
}

async fn read_block(ctx: &XferContext, op: pb::ReadBlockOp, w: &mut Writer) -> Result<()> {
    let t = ctx.socket_timeout;
    let fail = |e: &Error| pb::ReadBlockResponse {
        status: wire_status(e) as i32,
        message: e.to_string(),
        ..Default::default()
    };
    let opened = required_block(op.block.as_ref()).and_then(|b| {
        let (view, data, meta) = open_for_read(ctx, b)?;
        let visible = view.block.num_bytes;
        if op.offset > visible {
            return Err(Error::Invalid(format!(
                "offset {} is beyond the visible length {visible} of {}",
                op.offset, b.id
            )));
        }
        Ok((view, data, meta))
    });
    let (view, data, meta) = match opened {
        Ok(x) => x,
        Err(e) => {
            debug!("read refused: {e}");
            return send(w, &fail(&e), t).await;
        }
    };
    let visible = view.block.num_bytes;
    let bpc = u64::from(view.bpc);
    let chunk_offset = op.offset - op.offset % bpc;
    let end = op.offset.saturating_add(op.length).min(visible);
    let resp = pb::ReadBlockResponse {
        status: pb::Status::Success as i32,
        message: String::new(),
        chunk_offset,
        bytes_per_checksum: view.bpc,
        replica_length: visible,
    };
    send(w, &resp, t).await?;
    // Nothing to send (offset at the visible end, or a zero length): just the last packet.
    let start = if op.offset >= end { end } else { chunk_offset };
    let packets = sender::send_range(w, view, data, meta, start, end, t)
        .await
        .inspect_err(|e| {
            let Error::Io { source, .. } = e else { return };
            // A finalized block file shorter than its recorded length was truncated on disk: the
            // replica is corrupt, and the reader, which only sees the connection end, cannot tell.
            if source.kind() == std::io::ErrorKind::UnexpectedEof
                && view.state == ReplicaState::Finalized
            {
                warn!(block = %view.block, "block file is shorter than the replica: reporting it corrupt");
                let _ = ctx.bad_blocks.send(BadReplica::Local(view.block));
            }
            ctx.storage
                .handle_io_error(view.volume, Some((view.block.id, view.block.gs)), e);
        })?;
    ctx.metrics.sent(end - start, packets as u64);
    Ok(())
}

async fn block_checksum(ctx: &XferContext, op: pb::BlockChecksumOp, w: &mut Writer) -> Result<()> {
    let t = ctx.socket_timeout;
    let resp = match checksum_of(ctx, op).await {
        Ok(r) => r,
        Err(e) => pb::BlockChecksumResponse {
            status: wire_status(&e) as i32,
            message: e.to_string(),
            ..Default::default()
        },
    };
    send(w, &resp, t).await
}

async fn checksum_of(
    ctx: &XferContext,
    op: pb::BlockChecksumOp,
) -> Result<pb::BlockChecksumResponse> {
    let b = required_block(op.block.as_ref())?;
    let (view, data, meta) = open_for_read(ctx, b)?;
    let sums = tokio::task::spawn_blocking(move || -> std::io::Result<Vec<u32>> {
        let len = view.block.num_bytes;
        let mut sums = Vec::with_capacity(meta::chunks_for(len, view.bpc) as usize);
        let step = sender::packet_data_len(view.bpc) * 16;
        let mut pos = 0;
        while pos < len {
            let n = (len - pos).min(step) as usize;
            let bytes = meta::read_range(&data, pos, n)?;
            sums.extend(sender::range_checksums(&view, &data, &meta, pos, &bytes)?);
            pos += n as u64;
        }
        Ok(sums)
    })
    .await?
    .map_err(|e| {
        let e = Error::io(format!("read checksums of {}", b.id))(e);
        ctx.storage
            .handle_io_error(view.volume, Some((view.block.id, view.block.gs)), &e);
        e
    })?;
    Ok(pb::BlockChecksumResponse {
        status: pb::Status::Success as i32,
        message: String::new(),
        bytes_per_checksum: view.bpc,
        num_bytes: view.block.num_bytes,
        crc_of_crcs: crc32c::crc32c(&dfs_proto::checksum::encode(&sums)),
    })
}

/// Pipeline recovery: copy the local replica to a replacement DataNode, then answer the client.
async fn transfer_replica(
    ctx: &Arc<XferContext>,
    op: pb::TransferReplicaOp,
    w: &mut Writer,
) -> Result<()> {
    let resp = match crate::commands::transfer_replica(ctx, &op, ctx.socket_timeout).await {
        Ok(()) => pb::TransferReplicaResponse {
            status: pb::Status::Success as i32,
            message: String::new(),
        },
        Err(e) => {
            warn!("copying a replica for pipeline recovery failed: {e}");
            pb::TransferReplicaResponse {
                status: wire_status(&e) as i32,
                message: e.to_string(),
            }
        }
    };
    send(w, &resp, ctx.socket_timeout).await
}

async fn replica_length(ctx: &XferContext, op: pb::ReplicaLengthOp, w: &mut Writer) -> Result<()> {
    let found = required_block(op.block.as_ref()).and_then(|b| {
        let v = ctx
            .storage
            .get(b.id)
            .ok_or_else(|| Error::NotFound(format!("{} is not stored here", b.id)))?;
        check_stamp(&v, b)?;
        Ok(v)
    });
    let resp = match found {
        Ok(v) => pb::ReplicaLengthResponse {
            status: pb::Status::Success as i32,
            message: String::new(),
            visible_length: v.block.num_bytes,
            generation_stamp: v.block.gs.0,
            state: pb::ReplicaState::from(v.state) as i32,
        },
        Err(e) => pb::ReplicaLengthResponse {
            status: wire_status(&e) as i32,
            message: e.to_string(),
            ..Default::default()
        },
    };
    send(w, &resp, ctx.socket_timeout).await
}

/// A lease-recovery step on a local replica, as [`recover_replica`] serves it to other DataNodes
/// and the primary runs it on itself: `new_gs == 0` reports `(verified length, stamp)`, otherwise
/// truncates to `new_length`, takes the stamp and finalizes.
pub(crate) async fn recover_local(
    storage: &Arc<Storage>,
    block: Block,
    new_gs: u64,
    new_length: Option<u64>,
) -> Result<(u64, GenerationStamp)> {
    let storage = storage.clone();
    tokio::task::spawn_blocking(move || {
        if new_gs == 0 {
            return storage.recovery_init(block);
        }
        let len = new_length
            .ok_or_else(|| Error::Invalid("recovery with a new stamp needs new_length".into()))?;
        let b = storage.recovery_finalize(block.id, GenerationStamp(new_gs), len)?;
        info!(block = %b, "replica recovered");
        Ok((b.num_bytes, b.gs))
    })
    .await?
}

async fn recover_replica(
    ctx: &XferContext,
    op: pb::RecoverReplicaOp,
    w: &mut Writer,
) -> Result<()> {
    let res = match required_block(op.block.as_ref()) {
        Ok(b) => recover_local(&ctx.storage, b, op.new_generation_stamp, op.new_length).await,
        Err(e) => Err(e),
    };
    let resp = match res {
        Ok((len, gs)) => pb::RecoverReplicaResponse {
            status: pb::Status::Success as i32,
            message: String::new(),
            verified_length: len,
            generation_stamp: gs.0,
        },
        Err(e) => pb::RecoverReplicaResponse {
            status: wire_status(&e) as i32,
            message: e.to_string(),
            ..Default::default()
        },
    };
    send(w, &resp, ctx.socket_timeout).await
}

#[cfg(test)]
mod tests;
