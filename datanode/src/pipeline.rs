//! The write pipeline on one DataNode: `write_block` requests from a client or an upstream
//! DataNode.
//!
//! Set-up: open the replica for the stage, connect to the first downstream target (if any) and
//! forward the request with the remaining targets, then answer upstream. Streaming uses two tasks:
//! the receiver (this connection's task) reads packets, checks offset and checksums, forwards each
//! packet downstream at once, appends it to the replica and queues it for the responder; the
//! responder, in packet order, makes the packet durable when asked (`sync`, or finalize on the last
//! packet, on a blocking thread while the downstream ack is awaited), reads the downstream ack and
//! sends upstream one ack with this node's status followed by the downstream ones. The receiver
//! never waits for acks, so many packets are in flight.
//!
//! Disk writes of a packet (a 64 KiB pwrite of data and one of checksums) are done inline by the
//! receiver: they land in the page cache and cost microseconds. fsync and finalize, which can take
//! milliseconds, run on the blocking pool.
//!
//! Any failure stops the pipeline at this node: the downstream connection is closed, upstream
//! gets an error ack if one can still be sent, and a client's RBW replica stays on disk for
//! pipeline or lease recovery to truncate. A transfer's copy is removed instead, and when the
//! source's data failed the checksum here, the source's replica is reported corrupt.

use std::sync::Arc;
use std::time::{Duration, Instant};

use dfs_proto::frame::{read_frame, write_frame};
use dfs_proto::packet::{self, Packet};
use dfs_proto::pb::{self, op_request::Op, OpRequest, PipelineAck, WriteBlockResponse};
use dfs_proto::WireError;
use tokio::io::{AsyncWriteExt, BufReader, BufWriter};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::metrics::Metrics;
use crate::storage::RbwWriter;
use crate::transfer::{send, wire_status, Reader, Writer, XferContext, IO_BUFFER};
use crate::types::{peers, required_block, BadReplica, Block, Peer, Stage};
use crate::{meta, Error, Result};

/// Packets received but not yet acknowledged, per pipeline.
const MAX_IN_FLIGHT: usize = 256;

/// A validated `WriteBlockOp`.
struct WriteRequest {
    block: Block,
    targets: Vec<Peer>,
    stage: Stage,
    min_bytes: u64,
    bpc: u32,
    /// TRANSFER to the first target: the DataNode whose replica is being copied.
    source: Option<Peer>,
}

impl TryFrom<&pb::WriteBlockOp> for WriteRequest {
    type Error = Error;
    fn try_from(op: &pb::WriteBlockOp) -> Result<Self> {
        Ok(WriteRequest {
            block: required_block(op.block.as_ref())?,
            targets: peers(&op.targets)?,
            stage: Stage::try_from(op.stage)?,
            min_bytes: op.min_bytes_rcvd,
            bpc: meta::validate_bpc(op.bytes_per_checksum).map_err(Error::Invalid)?,
            source: op.source.as_ref().map(Peer::try_from).transpose()?,
        })
    }
}

/// What the receiver hands the responder for each packet, in order.
struct Received {
    seqno: i64,
    end: u64,
    last: bool,
    sync: bool,
    /// Sent on to the downstream node, whose ack must be read.
    forwarded: bool,
    /// This node rejected the packet: ack with this status and stop.
    failure: Option<(pb::Status, String)>,
    /// When the packet arrived (its ack latency starts there).
    at: Instant,
}

/// Handles one `write_block` connection to the end.
pub(crate) async fn write_block(
    ctx: &Arc<XferContext>,
    op: pb::WriteBlockOp,
    rd: Reader,
    mut up: Writer,
) -> Result<()> {
    let t = ctx.socket_timeout;
    let refuse = |status: pb::Status, message: String, bad_link: String| WriteBlockResponse {
        status: status as i32,
        message,
        first_bad_link: bad_link,
    };
    let req = match WriteRequest::try_from(&op) {
        Ok(r) => r,
        Err(e) => {
            return send(
                &mut up,
                &refuse(wire_status(&e), e.to_string(), String::new()),
                t,
            )
            .await
        }
    };
    let storage = ctx.storage.clone();
    let (block, stage, min_bytes, bpc) = (req.block, req.stage, req.min_bytes, req.bpc);
    let opened = tokio::task::spawn_blocking(move || match stage {
        Stage::Create => storage.create(block, bpc),
        Stage::Transfer => storage.create_temporary(block, bpc),
        Stage::Append => storage.append(block, min_bytes, bpc),
        Stage::Recovery => storage.recover(block, min_bytes, bpc),
    })
    .await
    .map_err(Error::from)
    .and_then(|r| r);
    let writer = match opened {
        Ok(w) => w,
        Err(e) => {
            info!(block = %req.block, ?stage, "write refused: {e}");
            return send(
                &mut up,
                &refuse(wire_status(&e), e.to_string(), String::new()),
                t,
            )
            .await;
        }
    };
    debug!(block = %req.block, ?stage, targets = req.targets.len(), "write pipeline opened");

    let mirror = match req.targets.first() {
        None => None,
        Some(first) => match connect_downstream(&op, &req, t).await {
            Ok(m) => Some(m),
            Err((bad_link, e)) => {
                warn!(block = %req.block, downstream = %first.addr(), "pipeline set-up failed: {e}");
                writer.abandon();
                writer.report_unfinished();
                let resp = refuse(
                    wire_status(&e),
                    format!("downstream {bad_link}: {e}"),
                    bad_link,
                );
                return send(&mut up, &resp, t).await;
            }
        },
    };
    send(
        &mut up,
        &refuse(pb::Status::Success, String::new(), String::new()),
        t,
    )
    .await?;

    let (mirror_rd, mirror_wr) = match mirror {
        Some((r, w)) => (Some(r), Some(w)),
        None => (None, None),
    };
    let (tx, rx) = mpsc::channel(MAX_IN_FLIGHT);
    let settings = Sync {
        sync_on_close: ctx.sync_on_close,
        t,
        ctx: ctx.clone(),
    };
    let mut responder = AbortOnDrop(tokio::spawn(respond(
        writer.clone(),
        rx,
        mirror_rd,
        up,
        settings,
    )));
    let received = receive(&writer, rd, mirror_wr, tx, (t, &ctx.metrics)).await;
    let responded = (&mut responder.0)
        .await
        .map_err(Error::from)
        .and_then(|r| r);
    match (&received, &responded) {
        (Ok(()), Ok(())) => Ok(()),
        (Err(e), _) | (_, Err(e)) => {
            info!(block = %req.block, "write pipeline stopped: {e}");
            // A client's replica stays, even empty: pipeline recovery reopens it on survivors.
            if stage == Stage::Transfer {
                writer.abandon();
            } else {
                writer.report_unfinished();
            }
            if let (Err(Error::Checksum(_)), Some(source)) = (&received, &req.source) {
                warn!(block = %req.block, source = %source.addr(), "reporting the source's replica corrupt");
                let _ = ctx.bad_blocks.send(BadReplica::Remote {
                    block: req.block,
                    datanode: source.uuid.clone(),
                });
            }
            received.and(responded)
        }
    }
}

/// Aborts the responder when the connection task is dropped (aborted at shutdown), so it cannot
/// outlive its connection waiting on a downstream ack.
struct AbortOnDrop(tokio::task::JoinHandle<Result<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Connects to the first target and forwards the request with the rest. On failure returns the
/// `first_bad_link` to report upstream, with an error that keeps a downstream no-space refusal
/// recognizable (the writer tells a full cluster from a broken one by it).
async fn connect_downstream(
    op: &pb::WriteBlockOp,
    req: &WriteRequest,
    t: Duration,
) -> std::result::Result<(Reader, Writer), (String, Error)> {
    let first = &req.targets[0];
    let addr = first.addr();
    let bad = |e: Error| (addr.clone(), e);
    let sock = match tokio::time::timeout(t, TcpStream::connect(&addr)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(bad(Error::io(format!("connect to {addr}"))(e))),
        Err(_) => return Err(bad(Error::Timeout(format!("connecting to {addr}")))),
    };
    let _ = sock.set_nodelay(true);
    let (r, w) = sock.into_split();
    let mut r = BufReader::with_capacity(IO_BUFFER, r);
    let mut w = BufWriter::with_capacity(IO_BUFFER, w);
    let mut fwd = op.clone();
    fwd.targets.remove(0);
    // Only the first target receives the source's own bytes; the rest get them verified.
    fwd.source = None;
    let request = OpRequest {
        op: Some(Op::WriteBlock(fwd)),
    };
    send(&mut w, &request, t).await.map_err(bad)?;
    let resp: WriteBlockResponse = match tokio::time::timeout(t, read_frame(&mut r)).await {
        Ok(Ok(resp)) => resp,
        Ok(Err(e)) => return Err(bad(e.into())),
        Err(_) => {
            return Err(bad(Error::Timeout(format!(
                "waiting for {addr} to accept the write"
            ))))
        }
    };
    if resp.status != pb::Status::Success as i32 {
        let link = if resp.first_bad_link.is_empty() {
            addr.clone()
        } else {
            resp.first_bad_link.clone()
        };
        let e = if resp.status == pb::Status::ErrorNoSpace as i32 {
            Error::NoSpace(format!("{addr}: {}", resp.message))
        } else {
            Error::Peer {
                peer: addr,
                message: resp.message,
            }
        };
        return Err((link, e));
    }
    Ok((r, w))
}

/// The receiver loop: reads packets until the last one, an error, or the responder giving up.
async fn receive(
    writer: &RbwWriter,
    mut rd: Reader,
    mut mirror: Option<Writer>,
    tx: mpsc::Sender<Received>,
    (t, metrics): (Duration, &Metrics),
) -> Result<()> {
    let bpc = writer.bytes_per_checksum();
    let mut next_offset = writer.block().num_bytes;
    loop {
        let read = tokio::select! {
            r = tokio::time::timeout(t, packet::read_packet(&mut rd, bpc)) => r,
            // The responder stopped (error ack sent, or upstream gone): nobody listens any more.
            _ = tx.closed() => return Ok(()),
        };
        let p: Packet = match read {
            Ok(Ok(p)) => p,
            Ok(Err(WireError::Closed)) => {
                return Err(Error::Invalid(
                    "upstream closed the connection mid-block".into(),
                ))
            }
            Ok(Err(e)) => return Err(e.into()),
            Err(_) => return Err(Error::Timeout("waiting for the next packet".into())),
        };
        let at = Instant::now();
        let h = p.header;
        let end = p.end_offset();
        let reject = |status: pb::Status, message: String| Received {
            seqno: h.seqno,
            end,
            last: h.last_packet,
            sync: false,
            forwarded: false,
            failure: Some((status, message)),
            at,
        };
        if h.offset_in_block != next_offset {
            let msg = format!(
                "packet offset {} but the replica has {next_offset} bytes",
                h.offset_in_block
            );
            let _ = tx.send(reject(pb::Status::ErrorInvalid, msg.clone())).await;
            return Err(Error::Invalid(msg));
        }
        if h.last_packet && !p.data.is_empty() {
            let msg = "the last packet must be empty".to_string();
            let _ = tx.send(reject(pb::Status::ErrorInvalid, msg.clone())).await;
            return Err(Error::Invalid(msg));
        }
        if let Err(e) = p.verify(bpc) {
            let msg = format!("{e} in {}", writer.block().id);
            warn!("{msg}: rejecting packet {}", h.seqno);
            let _ = tx
                .send(reject(pb::Status::ErrorChecksum, msg.clone()))
                .await;
            return Err(Error::Checksum(msg));
        }
        let mut forwarded = false;
        if let Some(m) = mirror.as_mut() {
            let fwd = async {
                packet::write_packet(m, &p).await?;
                m.flush().await.map_err(WireError::from)
            };
            match tokio::time::timeout(t, fwd).await {
                Ok(Ok(())) => forwarded = true,
                Ok(Err(e)) => warn!("forwarding packet {} downstream failed: {e}", h.seqno),
                Err(_) => warn!("forwarding packet {} downstream timed out", h.seqno),
            }
            if !forwarded {
                // The responder reports the downstream as failed on this packet's ack.
                mirror = None;
            }
        }
        if !p.data.is_empty() {
            if let Err(e) = writer.write(h.offset_in_block, &p.data, &p.checksums) {
                let _ = tx.send(reject(wire_status(&e), e.to_string())).await;
                return Err(e);
            }
            metrics.wrote_packet(p.data.len());
        }
        next_offset = end;
        let item = Received {
            seqno: h.seqno,
            end,
            last: h.last_packet,
            sync: h.sync,
            forwarded,
            failure: None,
            at,
        };
        if tx.send(item).await.is_err() {
            return Ok(());
        }
        if h.last_packet {
            return Ok(());
        }
    }
}

/// The responder's timing and durability settings, and where it records ack latency.
struct Sync {
    /// fsync a finished block even when the client did not ask (`dfs.datanode.synconclose`).
    sync_on_close: bool,
    t: Duration,
    ctx: Arc<XferContext>,
}

/// The responder: one upstream ack per packet, in order.
async fn respond(
    writer: RbwWriter,
    mut rx: mpsc::Receiver<Received>,
    mut mirror: Option<Reader>,
    mut up: Writer,
    Sync {
        sync_on_close,
        t,
        ctx,
    }: Sync,
) -> Result<()> {
    let mut mirror_alive = mirror.is_some();
    while let Some(item) = rx.recv().await {
        if let Some((status, message)) = item.failure {
            let ack = PipelineAck {
                seqno: item.seqno,
                replies: vec![status as i32],
                message,
            };
            return send_ack(&mut up, &ack, t).await;
        }
        // Make the packet durable locally while the downstream acks it. The last one finalizes
        // the block, fsyncing it when the writer asked (hsync, or a block closed durably).
        let local = (item.sync || item.last).then(|| {
            let w = writer.clone();
            let (last, sync) = (item.last, item.sync || sync_on_close);
            tokio::task::spawn_blocking(move || {
                if last {
                    w.finalize(sync).map(Some)
                } else {
                    w.sync().map(|()| None)
                }
            })
        });
        let mut replies = vec![pb::Status::Success as i32];
        let mut message = String::new();
        if mirror_alive {
            let down = match (item.forwarded, mirror.as_mut()) {
                (true, Some(m)) => read_ack(m, item.seqno, t).await,
                _ => Err(Error::Invalid("the packet could not be forwarded".into())),
            };
            match down {
                Ok(ack) => {
                    replies.extend(ack.replies);
                    message = ack.message;
                }
                Err(e) => {
                    warn!(seqno = item.seqno, "downstream failed: {e}");
                    replies.push(pb::Status::Error as i32);
                    message = format!("downstream: {e}");
                    mirror_alive = false;
                    mirror = None;
                }
            }
        }
        if let Some(task) = local {
            match task.await.map_err(Error::from).and_then(|r| r) {
                Ok(Some(b)) => info!(block = %b, "replica finalized"),
                Ok(None) => {}
                Err(e) => {
                    warn!("making packet {} durable failed: {e}", item.seqno);
                    replies[0] = wire_status(&e) as i32;
                    message = e.to_string();
                }
            }
        }
        let all_ok = replies.iter().all(|s| *s == pb::Status::Success as i32);
        if all_ok && !item.last {
            writer.ack(item.end)?;
        }
        let ack = PipelineAck {
            seqno: item.seqno,
            replies,
            message,
        };
        send_ack(&mut up, &ack, t).await?;
        ctx.metrics.acked(item.at.elapsed());
        if !all_ok {
            return Err(Error::Invalid(format!(
                "pipeline failed at packet {}: {}",
                ack.seqno, ack.message
            )));
        }
        if item.last {
            return Ok(());
        }
    }
    Ok(())
}

async fn read_ack(m: &mut Reader, seqno: i64, t: Duration) -> Result<PipelineAck> {
    let ack: PipelineAck = match tokio::time::timeout(t, read_frame(m)).await {
        Ok(r) => r?,
        Err(_) => {
            return Err(Error::Timeout(format!(
                "waiting for the downstream ack of packet {seqno}"
            )))
        }
    };
    if ack.seqno != seqno {
        return Err(Error::Invalid(format!(
            "downstream acked packet {} when {seqno} was due",
            ack.seqno
        )));
    }
    Ok(ack)
}

async fn send_ack(up: &mut Writer, ack: &PipelineAck, t: Duration) -> Result<()> {
    let write = async {
        write_frame(up, ack).await?;
        up.flush().await?;
        Ok::<(), WireError>(())
    };
    match tokio::time::timeout(t, write).await {
        Ok(r) => Ok(r?),
        Err(_) => Err(Error::Timeout("sending an ack upstream".into())),
    }
}
