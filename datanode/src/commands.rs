//! NameNode commands that involve other DataNodes: re-replication (transfer) and lease recovery
//! as the primary DataNode.

use std::sync::Arc;
use std::time::Duration;

use dfs_proto::frame::read_frame;
use dfs_proto::pb::{self, op_request::Op, OpRequest};
use tokio::io::{BufReader, BufWriter};
use tokio::net::TcpStream;
use tracing::{info, warn};

use crate::namenode::NnClient;
use crate::storage::{ReplicaView, Verification};
use crate::transfer::{recover_local, send, Reader, Writer, XferContext, IO_BUFFER};
use crate::types::{peers, required_block, BadReplica, Block, GenerationStamp, Peer, ReplicaState};
use crate::{sender, Error, Result};

async fn connect(peer: &Peer, t: Duration) -> Result<(Reader, Writer)> {
    let addr = peer.addr();
    let sock = match tokio::time::timeout(t, TcpStream::connect(&addr)).await {
        Ok(r) => r.map_err(Error::io(format!("connect to {addr}")))?,
        Err(_) => return Err(Error::Timeout(format!("connecting to {addr}"))),
    };
    let _ = sock.set_nodelay(true);
    let (r, w) = sock.into_split();
    Ok((
        BufReader::with_capacity(IO_BUFFER, r),
        BufWriter::with_capacity(IO_BUFFER, w),
    ))
}

async fn read_reply<M: prost::Message + Default>(
    r: &mut Reader,
    t: Duration,
    what: &str,
) -> Result<M> {
    match tokio::time::timeout(t, read_frame(r)).await {
        Ok(r) => Ok(r?),
        Err(_) => Err(Error::Timeout(what.to_string())),
    }
}

/// Sends a local finalized replica to `targets[0]` (which forwards to the rest) with stage
/// TRANSFER and waits for the last packet's ack. If the first target finds a checksum error, the
/// local replica is verified and reported if corrupt.
pub(crate) async fn transfer_block(
    ctx: &Arc<XferContext>,
    cmd: &pb::TransferBlockCommand,
    t: Duration,
) -> Result<()> {
    let want = required_block(cmd.block.as_ref())?;
    let targets = peers(&cmd.targets)?;
    let (view, data, meta_file) = ctx.storage.open_replica(want.id)?;
    if view.state != ReplicaState::Finalized || view.block.gs != want.gs {
        return Err(Error::Invalid(format!(
            "cannot transfer {want}: local replica has generation stamp {} ({:?})",
            view.block.gs.0, view.state
        )));
    }
    let len = view.block.num_bytes;
    send_replica(ctx, want, &targets, (view, data, meta_file), len, t).await
}

/// Pipeline recovery, asked by a client: copies the local replica, finalized or being written,
/// up to `length` acknowledged bytes to a replacement DataNode (see [`transfer_block`]).
pub(crate) async fn transfer_replica(
    ctx: &Arc<XferContext>,
    op: &pb::TransferReplicaOp,
    t: Duration,
) -> Result<()> {
    let want = required_block(op.block.as_ref())?;
    let targets = peers(&op.targets)?;
    let (view, data, meta_file) = ctx.storage.open_replica(want.id)?;
    if view.block.gs != want.gs || op.length > view.block.num_bytes {
        return Err(Error::Invalid(format!(
            "cannot copy {} bytes of {want}: local replica has stamp {} and {} visible bytes",
            op.length, view.block.gs.0, view.block.num_bytes
        )));
    }
    send_replica(ctx, want, &targets, (view, data, meta_file), op.length, t).await
}

/// Streams the first `len` bytes of an open local replica to `targets[0]` (which forwards to the
/// rest) with stage TRANSFER and waits for the last packet's ack.
async fn send_replica(
    ctx: &Arc<XferContext>,
    want: Block,
    targets: &[Peer],
    (view, data, meta_file): (ReplicaView, std::fs::File, std::fs::File),
    len: u64,
    t: Duration,
) -> Result<()> {
    let Some(first) = targets.first() else {
        return Err(Error::Invalid(format!(
            "transfer of {want} without targets"
        )));
    };
    let (mut rd, mut wr) = connect(first, t).await?;
    let mut block = view.block;
    block.num_bytes = len;
    let op = pb::WriteBlockOp {
        block: Some(block.into()),
        targets: targets[1..].iter().map(pb::DatanodeId::from).collect(),
        stage: pb::Stage::Transfer as i32,
        min_bytes_rcvd: 0,
        bytes_per_checksum: view.bpc,
        client_name: String::new(),
        source: Some((&ctx.me).into()),
    };
    send(
        &mut wr,
        &OpRequest {
            op: Some(Op::WriteBlock(op)),
        },
        t,
    )
    .await?;
    let resp: pb::WriteBlockResponse =
        read_reply(&mut rd, t, "waiting for the transfer target").await?;
    if resp.status != pb::Status::Success as i32 {
        return Err(Error::Peer {
            peer: first.addr(),
            message: format!(
                "refused {want}: {} (first bad link {:?})",
                resp.message, resp.first_bad_link
            ),
        });
    }
    // send_range numbers data packets from 0; the empty last packet follows them.
    let last_seqno = len.div_ceil(sender::packet_data_len(view.bpc)) as i64;
    let sending = sender::send_range(&mut wr, view, data, meta_file, 0, len, t);
    let acks = async {
        loop {
            let ack: pb::PipelineAck = read_reply(&mut rd, t, "waiting for transfer acks").await?;
            if let Some(bad) = ack
                .replies
                .iter()
                .position(|s| *s != pb::Status::Success as i32)
            {
                return Ok::<_, Error>(Some((bad, ack)));
            }
            if ack.seqno == last_seqno {
                return Ok(None);
            }
        }
    };
    // Both run to their end: a target that rejects a packet acks the error and closes, so the
    // sending side may fail first, and the error ack must still be seen.
    let (sent, acked) = tokio::join!(sending, acks);
    match (sent, acked) {
        (_, Ok(Some((idx, ack)))) => {
            if idx == 0 && ack.replies.first() == Some(&(pb::Status::ErrorChecksum as i32)) {
                check_local_replica(ctx, want).await;
            }
            Err(Error::Peer {
                peer: first.addr(),
                message: format!(
                    "transfer of {want} failed at pipeline node {idx}: {}",
                    ack.message
                ),
            })
        }
        (Ok(packets), Ok(None)) => {
            ctx.metrics.sent(len, packets as u64);
            info!(block = %want, to = %first.addr(), "replica transferred");
            Ok(())
        }
        (Err(e), _) => {
            // A local read error is the source replica's (or its volume's) problem.
            ctx.storage
                .handle_io_error(view.volume, Some((view.block.id, view.block.gs)), &e);
            Err(e)
        }
        (Ok(_), Err(e)) => Err(e),
    }
}

/// The target rejected our data's checksum: verify the local replica and report it if bad.
async fn check_local_replica(ctx: &Arc<XferContext>, block: Block) {
    let storage = ctx.storage.clone();
    let id = block.id;
    match tokio::task::spawn_blocking(move || storage.verify_finalized(id)).await {
        Ok(Ok((Verification::Corrupt { verified }, _))) => {
            warn!(%block, verified, "local replica is corrupt");
            let _ = ctx.bad_blocks.send(BadReplica::Local(block));
        }
        Ok(Ok(_)) => {}
        Ok(Err(e)) => warn!(%block, "cannot verify local replica: {e}"),
        Err(e) => warn!(%block, "cannot verify local replica: {e}"),
    }
}

/// One lease-recovery step on `peer` (this node itself is served locally).
async fn recover_on(
    ctx: &Arc<XferContext>,
    peer: &Peer,
    block: Block,
    new_gs: u64,
    new_length: Option<u64>,
    t: Duration,
) -> Result<(u64, GenerationStamp)> {
    if peer.uuid == ctx.me.uuid {
        return recover_local(&ctx.storage, block, new_gs, new_length).await;
    }
    let (mut rd, mut wr) = connect(peer, t).await?;
    let op = pb::RecoverReplicaOp {
        block: Some(block.into()),
        new_generation_stamp: new_gs,
        new_length,
    };
    send(
        &mut wr,
        &OpRequest {
            op: Some(Op::RecoverReplica(op)),
        },
        t,
    )
    .await?;
    let resp: pb::RecoverReplicaResponse =
        read_reply(&mut rd, t, "waiting for a recovery reply").await?;
    if resp.status == pb::Status::ErrorNotFound as i32 {
        return Err(Error::NotFound(format!(
            "{}: {}",
            peer.addr(),
            resp.message
        )));
    }
    if resp.status != pb::Status::Success as i32 {
        return Err(Error::Peer {
            peer: peer.addr(),
            message: resp.message,
        });
    }
    Ok((resp.verified_length, GenerationStamp(resp.generation_stamp)))
}

/// Lease recovery as the primary: every replica reports its verified length; those with the
/// newest generation stamp (not older than the NameNode's, unless every replica answered and none
/// has it) and the longest verified prefix keep it, take the new stamp and finalize; then the
/// NameNode is told with CommitBlockSynchronization. When every DataNode answers that it has no
/// replica at all, the block was never written anywhere, and the NameNode is told to drop it.
pub(crate) async fn recover_block(
    ctx: &Arc<XferContext>,
    mut client: NnClient,
    cmd: &pb::RecoverBlockCommand,
    t: Duration,
) -> Result<()> {
    let block = required_block(cmd.block.as_ref())?;
    let new_gs = cmd.new_generation_stamp;
    if new_gs <= block.gs.0 {
        return Err(Error::Invalid(format!(
            "recovery of {block} with non-increasing stamp {new_gs}"
        )));
    }
    let peers: Vec<Peer> = cmd
        .replicas
        .iter()
        .filter_map(|d| Peer::try_from(d).ok())
        .collect();
    let mut found = Vec::new();
    let mut older = Vec::new();
    let mut absent = 0;
    let mut silent = 0;
    for p in &peers {
        match recover_on(ctx, p, block, 0, None, t).await {
            Ok((len, gs)) if gs >= block.gs => found.push((p, len, gs)),
            Ok((len, gs)) => {
                info!(%block, replica = %p.addr(), "replica with older stamp {}", gs.0);
                older.push((p, len, gs));
            }
            Err(Error::NotFound(m)) => {
                info!(%block, replica = %p.addr(), "no replica: {m}");
                absent += 1;
            }
            Err(e) => {
                warn!(%block, replica = %p.addr(), "replica did not answer recovery: {e}");
                silent += 1;
            }
        }
    }
    // The NameNode's stamp moves before any DataNode has it: an append reopens the block with a
    // new stamp, a pipeline update takes one, and the writer may die before a single replica is
    // reopened with it. When every replica answered and none has that stamp, no byte was ever
    // written under it, and the newest replicas hold all there is: recover from them. (While
    // one stays silent it may hold the newer bytes, so recovery waits for it.)
    if found.is_empty() && silent == 0 && !older.is_empty() {
        info!(%block, "no replica has the NameNode's stamp; recovering from the newest of all");
        found = older;
    }
    if !peers.is_empty() && absent == peers.len() {
        client
            .commit_block_synchronization(pb::CommitBlockSynchronizationRequest {
                block: Some(block.into()),
                new_generation_stamp: new_gs,
                new_length: 0,
                close_file: true,
                delete_block: true,
                new_targets: Vec::new(),
            })
            .await?;
        info!(%block, "lease recovery: no DataNode has the block; the NameNode drops it");
        return Ok(());
    }
    let Some(newest) = found.iter().map(|f| f.2).max() else {
        return Err(Error::NotFound(format!(
            "no replica of {block} could be recovered"
        )));
    };
    found.retain(|f| f.2 == newest);
    // A replica damaged on disk verifies a shorter prefix than the others hold: their minimum
    // would cut acknowledged bytes. Recover to the longest verified prefix, on the replicas that
    // hold all of it; the rest keep the old stamp and are replaced by re-replication.
    let new_len = found.iter().map(|f| f.1).max().unwrap_or(0);
    found.retain(|f| f.1 == new_len);
    let mut synced = Vec::new();
    for (p, _, _) in &found {
        match recover_on(ctx, p, block, new_gs, Some(new_len), t).await {
            Ok(_) => synced.push(pb::DatanodeId::from(*p)),
            Err(e) => warn!(%block, replica = %p.addr(), "replica failed to truncate: {e}"),
        }
    }
    if synced.is_empty() {
        return Err(Error::NotFound(format!(
            "no replica of {block} could be finalized"
        )));
    }
    let n = synced.len();
    client
        .commit_block_synchronization(pb::CommitBlockSynchronizationRequest {
            block: Some(block.into()),
            new_generation_stamp: new_gs,
            new_length: new_len,
            close_file: true,
            delete_block: false,
            new_targets: synced,
        })
        .await?;
    info!(%block, new_len, new_gs, replicas = n, "lease recovery committed");
    Ok(())
}
