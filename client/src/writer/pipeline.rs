//! One block's write pipeline: packets of up to 64 KiB streamed to the first DataNode without
//! waiting for acks, an ack task reading the pipeline's acks in order, a keep-alive task, and
//! recovery of a broken pipeline (see the writer's module docs).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dfs_proto::frame::read_frame;
use dfs_proto::packet::{write_packet, Packet};
use dfs_proto::pb::{self, op_request::Op};
use tokio::io::{AsyncWriteExt, BufReader, BufWriter};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::client::ClientInner;
use crate::datanode::{self, Conn};
use crate::error::Error;
use crate::namenode::call;

/// Why a pipeline could not be set up, and which DataNode to blame.
pub(super) struct SetupError {
    pub(super) reason: String,
    pub(super) bad_uuid: String,
    pub(super) bad_addr: String,
    /// Index of the DataNode to blame in the pipeline.
    bad: usize,
    /// The DataNode refused for lack of space.
    pub(super) no_space: bool,
}

/// Why a running pipeline failed; `bad` is the index of the DataNode to blame, when known.
#[derive(Debug, Clone)]
pub(super) struct Failure {
    pub(super) reason: String,
    pub(super) bad: Option<usize>,
    /// The failing DataNode ran out of space.
    pub(super) no_space: bool,
}

impl From<String> for Failure {
    fn from(reason: String) -> Self {
        Failure {
            reason,
            bad: None,
            no_space: false,
        }
    }
}

/// One block's pipeline: the connection to its first DataNode and the ack task.
pub(super) struct BlockStream {
    inner: Arc<ClientInner>,
    path: String,
    /// The block as the NameNode knows it (its stamp moves only with UpdatePipeline).
    pub(super) block: pb::ExtendedBlock,
    nodes: Vec<pb::DatanodeId>,
    /// The generation stamp each node's replica has, parallel to `nodes`. A RECOVERY set-up that
    /// fails part-way leaves the nodes before the failure on a stamp the NameNode never
    /// recorded, and a survivor asked to copy its replica must be named by the stamp it has.
    stamps: Vec<u64>,
    /// DataNodes the pipeline started with: recovery looks for replacements up to this many.
    width: usize,
    /// DataNodes dropped from this pipeline (uuids), never asked back.
    dropped: Vec<String>,
    /// Block offset just past the last data packet sent (a copy of `Tx::sent` for the writer).
    pub(super) sent: u64,
    /// Shared with the keep-alive task. A tokio mutex: it is held across the socket write, so
    /// packets reach the wire in seqno order whoever sends them.
    tx: Arc<tokio::sync::Mutex<Tx>>,
    acks: Arc<Acks>,
    /// `None` once it ended and was awaited (a finished `JoinHandle` must not be polled again).
    ack_task: Option<JoinHandle<()>>,
    keepalive: JoinHandle<()>,
    timeout: Duration,
    max_in_flight: usize,
}

/// The sending half of a pipeline.
struct Tx {
    writer: BufWriter<OwnedWriteHalf>,
    seqno: i64,
    /// Block offset just past the last packet sent.
    sent: u64,
    last_send: tokio::time::Instant,
    /// The block's last packet is queued: no keep-alive may follow it.
    closing: bool,
}

impl Tx {
    /// Numbers `packet`, queues it as unacknowledged and writes it, all as one step.
    async fn send(
        &mut self,
        mut packet: Packet,
        acks: &Acks,
        timeout: Duration,
    ) -> std::result::Result<(), String> {
        packet.header.seqno = self.seqno;
        self.seqno += 1;
        self.closing |= packet.header.last_packet;
        self.sent = packet.end_offset();
        self.last_send = tokio::time::Instant::now();
        acks.state
            .lock()
            .expect("ack state poisoned")
            .unacked
            .push_back(packet.clone());
        self.write(&[packet], timeout).await
    }

    async fn write(
        &mut self,
        packets: &[Packet],
        timeout: Duration,
    ) -> std::result::Result<(), String> {
        let io = async {
            for p in packets {
                write_packet(&mut self.writer, p)
                    .await
                    .map_err(datanode::to_io)?;
            }
            self.writer.flush().await
        };
        match tokio::time::timeout(timeout, io).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(format!("sending to the pipeline: {e}")),
            Err(_) => Err(format!("sending to the pipeline stalled for {timeout:?}")),
        }
    }
}

/// Shared between the sender and the ack task.
struct Acks {
    state: Mutex<AckState>,
    changed: Notify,
}

struct AckState {
    /// Sent, not yet acknowledged: kept for resending after a pipeline rebuild.
    unacked: VecDeque<Packet>,
    error: Option<Failure>,
}

impl BlockStream {
    pub(super) async fn setup(
        inner: &Arc<ClientInner>,
        path: &str,
        lb: &pb::LocatedBlock,
        stage: pb::Stage,
        min_bytes_rcvd: u64,
    ) -> std::result::Result<BlockStream, SetupError> {
        let block = lb.block.unwrap_or_default();
        let nodes: Vec<pb::DatanodeId> = lb.locations.iter().filter_map(|l| l.id.clone()).collect();
        let conn = connect(inner, &block, &nodes, stage, min_bytes_rcvd).await?;
        let acks = Arc::new(Acks {
            state: Mutex::new(AckState {
                unacked: VecDeque::new(),
                error: None,
            }),
            changed: Notify::new(),
        });
        let ack_task = tokio::spawn(read_acks(conn.reader, acks.clone(), nodes.clone()));
        let tx = Arc::new(tokio::sync::Mutex::new(Tx {
            writer: conn.writer,
            seqno: 0,
            sent: min_bytes_rcvd,
            last_send: tokio::time::Instant::now(),
            closing: false,
        }));
        let keepalive = tokio::spawn(keep_alive(
            tx.clone(),
            acks.clone(),
            inner.cfg.socket_timeout,
            inner.cfg.bytes_per_checksum,
        ));
        Ok(BlockStream {
            inner: inner.clone(),
            path: path.to_string(),
            block,
            timeout: ack_timeout(inner.cfg.socket_timeout, nodes.len()),
            width: nodes.len(),
            dropped: Vec::new(),
            stamps: vec![block.generation_stamp; nodes.len()],
            nodes,
            sent: min_bytes_rcvd,
            tx,
            acks,
            ack_task: Some(ack_task),
            keepalive,
            max_in_flight: inner.cfg.max_packets_in_flight.max(1),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, AckState> {
        self.acks.state.lock().expect("ack state poisoned")
    }

    /// Queues and sends one packet, first waiting for room in the window; recovers the pipeline
    /// on failure (which resends the packet with the others unacknowledged).
    pub(super) async fn send(&mut self, packet: Packet) -> std::result::Result<(), Failure> {
        let max = self.max_in_flight;
        while let Err(f) = self.wait_until(|s| s.unacked.len() < max).await {
            self.recover(f).await?;
        }
        self.sent = packet.end_offset();
        let sent = self
            .tx
            .lock()
            .await
            .send(packet, &self.acks, self.timeout)
            .await;
        if let Err(reason) = sent {
            let f = self.diagnose(reason).await;
            self.recover(f).await?;
        }
        Ok(())
    }

    /// After a failed send, lets the ack task say which DataNode failed (an intermediate one
    /// reports its downstream in the ack); without that, blames the first.
    async fn diagnose(&mut self, reason: String) -> Failure {
        if let Some(task) = self.ack_task.as_mut() {
            if tokio::time::timeout(Duration::from_secs(1), task)
                .await
                .is_ok()
            {
                self.ack_task = None;
            }
        }
        self.state().error.clone().unwrap_or(Failure {
            reason,
            bad: Some(0),
            no_space: false,
        })
    }

    /// Stops the ack task and waits until it has: only then do the unacknowledged packets stop
    /// changing. Reading them while an aborted task may still pop a late ack would resend from
    /// beyond the length the DataNodes are truncated to.
    async fn stop_acks(&mut self) {
        if let Some(task) = self.ack_task.take() {
            task.abort();
            let _ = task.await;
        }
    }

    pub(super) async fn wait_all_acked(&mut self) -> std::result::Result<(), Failure> {
        while let Err(f) = self.wait_until(|s| s.unacked.is_empty()).await {
            self.recover(f).await?;
        }
        Ok(())
    }

    /// Waits until `ready` holds for the ack state, failing on a pipeline error or when no ack
    /// arrives for `timeout`.
    async fn wait_until(
        &self,
        ready: impl Fn(&AckState) -> bool,
    ) -> std::result::Result<(), Failure> {
        loop {
            let notified = self.acks.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let s = self.state();
                if let Some(e) = &s.error {
                    return Err(e.clone());
                }
                if ready(&s) {
                    return Ok(());
                }
            }
            if tokio::time::timeout(self.timeout, notified).await.is_err() {
                return Err(Failure::from(format!(
                    "no ack from the pipeline for {:?}",
                    self.timeout
                )));
            }
        }
    }

    /// Rebuilds the pipeline without the failed DataNode (see the module docs); errors only
    /// when no DataNode is left or the NameNode refuses.
    async fn recover(&mut self, mut failure: Failure) -> std::result::Result<(), Failure> {
        let all_failed = |f: &Failure| Failure {
            reason: format!("every DataNode of the pipeline failed; last: {}", f.reason),
            bad: None,
            no_space: f.no_space,
        };
        let nn_err = |e: Error| Failure::from(format!("pipeline recovery: {e}"));
        loop {
            if self.nodes.is_empty() {
                return Err(all_failed(&failure));
            }
            let bad = failure.bad.unwrap_or(0).min(self.nodes.len() - 1);
            let lost = self.nodes.remove(bad);
            self.stamps.remove(bad);
            tracing::warn!(
                path = %self.path,
                block = self.block.block_id,
                "pipeline lost DataNode {}: {}; continuing with {} DataNode(s)",
                datanode::addr(&lost),
                failure.reason,
                self.nodes.len()
            );
            self.dropped.push(lost.uuid.clone());
            if self.nodes.is_empty() {
                return Err(all_failed(&failure));
            }
            self.stop_acks().await;
            let acked = self
                .state()
                .unacked
                .front()
                .map_or(self.sent, |p| p.header.offset_in_block);
            self.add_replacement(acked).await;
            let req = pb::UpdateBlockForPipelineRequest {
                block: Some(self.block),
                client_name: self.inner.client_name.clone(),
            };
            let stamped = call!(self.inner.nn, update_block_for_pipeline, req).map_err(nn_err)?;
            let mut new_block = self.block;
            new_block.generation_stamp = stamped
                .block
                .and_then(|b| b.block)
                .map(|b| b.generation_stamp)
                .ok_or_else(|| {
                    Failure::from(
                        "pipeline recovery: the NameNode returned no generation stamp".to_string(),
                    )
                })?;
            new_block.num_bytes = acked;
            let conn = match connect(
                &self.inner,
                &new_block,
                &self.nodes,
                pb::Stage::Recovery,
                acked,
            )
            .await
            {
                Ok(c) => c,
                Err(e) => {
                    // The DataNodes before the one that failed reopened their replicas with
                    // the new stamp already.
                    let reopened = e.bad.min(self.stamps.len());
                    self.stamps[..reopened].fill(new_block.generation_stamp);
                    failure = Failure {
                        reason: e.reason,
                        bad: Some(e.bad),
                        no_space: e.no_space,
                    };
                    continue;
                }
            };
            self.stamps.fill(new_block.generation_stamp);
            let mut old_block = self.block;
            old_block.num_bytes = acked;
            let req = pb::UpdatePipelineRequest {
                client_name: self.inner.client_name.clone(),
                old_block: Some(old_block),
                new_block: Some(new_block),
                new_nodes: self.nodes.clone(),
            };
            call!(self.inner.nn, update_pipeline, req).map_err(nn_err)?;
            self.block = new_block;
            self.timeout = ack_timeout(self.inner.cfg.socket_timeout, self.nodes.len());
            // Swap the connection and resend under the sending lock, so no keep-alive slips in.
            let tx = self.tx.clone();
            let mut tx = tx.lock().await;
            tx.writer = conn.writer;
            let resend: Vec<Packet> = {
                let mut s = self.state();
                s.error = None;
                s.unacked.iter().cloned().collect()
            };
            self.ack_task = Some(tokio::spawn(read_acks(
                conn.reader,
                self.acks.clone(),
                self.nodes.clone(),
            )));
            let resent = tx.write(&resend, self.timeout).await;
            drop(tx);
            match resent {
                Ok(()) => return Ok(()),
                Err(reason) => failure = self.diagnose(reason).await,
            }
        }
    }

    /// Best effort: asks the NameNode for a DataNode to replace a dropped one and has the first
    /// survivor copy the `acked` bytes to it, so it can join the rebuilt pipeline.
    async fn add_replacement(&mut self, acked: u64) {
        if self.nodes.len() >= self.width {
            return;
        }
        let req = pb::GetAdditionalDatanodeRequest {
            path: self.path.clone(),
            block: Some(self.block),
            existing: self.nodes.clone(),
            exclude_nodes: self.dropped.clone(),
            num_additional: 1,
            client_name: self.inner.client_name.clone(),
            file_id: 0,
        };
        let offered = match call!(self.inner.nn, get_additional_datanode, req) {
            Ok(r) => r.block.map(|b| b.locations).unwrap_or_default(),
            Err(e) => {
                tracing::info!(path = %self.path, "no replacement DataNode: {e}");
                return;
            }
        };
        let Some(new) = offered.into_iter().filter_map(|l| l.id).find(|d| {
            !self.nodes.iter().any(|n| n.uuid == d.uuid) && !self.dropped.contains(&d.uuid)
        }) else {
            return;
        };
        // The copy carries the source's stamp, which the replacement then has too.
        let mut block = self.block;
        block.generation_stamp = self.stamps[0];
        if acked > 0 {
            block.num_bytes = acked;
            let op = Op::TransferReplica(pb::TransferReplicaOp {
                block: Some(block),
                targets: vec![new.clone()],
                length: acked,
            });
            let source = &self.nodes[0];
            let copied =
                match Conn::open::<pb::TransferReplicaResponse>(source, op, self.timeout).await {
                    Ok((_, r)) => datanode::check(r.status, &r.message, source),
                    Err(e) => Err(format!("DataNode {}: {e}", datanode::addr(source))),
                };
            if let Err(e) = copied {
                tracing::warn!(path = %self.path, "could not copy the replica to a replacement DataNode: {e}");
                return;
            }
        }
        tracing::info!(path = %self.path, block = self.block.block_id, "replacement DataNode {} joins the pipeline", datanode::addr(&new));
        self.nodes.push(new);
        self.stamps.push(block.generation_stamp);
    }

    /// Ends the block: the empty last packet, then every ack. Returns the finished block. With
    /// `sync` the DataNodes fsync it first (HDFS's SYNC_BLOCK).
    pub(super) async fn finish(
        &mut self,
        sync: bool,
    ) -> std::result::Result<pb::ExtendedBlock, Failure> {
        let last = Packet::last(0, self.sent, sync);
        self.send(last).await?;
        self.wait_all_acked().await?;
        let mut block = self.block;
        block.num_bytes = self.sent;
        Ok(block)
    }
}

impl Drop for BlockStream {
    fn drop(&mut self) {
        if let Some(task) = &self.ack_task {
            task.abort();
        }
        self.keepalive.abort();
    }
}

/// Sends an empty packet whenever the pipeline has been silent for half the socket timeout, until
/// the block's last packet is queued. A failed send needs no handling here: the ack task sees the
/// broken connection and the next real send recovers the pipeline.
async fn keep_alive(
    tx: Arc<tokio::sync::Mutex<Tx>>,
    acks: Arc<Acks>,
    socket_timeout: Duration,
    bpc: u32,
) {
    let idle = socket_timeout / 2;
    loop {
        tokio::time::sleep(idle / 4).await;
        let mut t = tx.lock().await;
        if t.closing {
            return;
        }
        let failed = acks
            .state
            .lock()
            .expect("ack state poisoned")
            .error
            .is_some();
        if failed || t.last_send.elapsed() < idle {
            continue;
        }
        let p = Packet::new(0, t.sent, bytes::Bytes::new(), bpc, false);
        let _ = t.send(p, &acks, socket_timeout).await;
    }
}

/// How long to wait for an ack: the DataNodes' own timeout, plus time for each to report a
/// stalled downstream before the client gives up on the whole pipeline (as HDFS does).
fn ack_timeout(socket_timeout: Duration, nodes: usize) -> Duration {
    socket_timeout + Duration::from_secs(5) * nodes as u32
}

/// Connects to the first DataNode and sets up the pipeline through the others.
async fn connect(
    inner: &ClientInner,
    block: &pb::ExtendedBlock,
    nodes: &[pb::DatanodeId],
    stage: pb::Stage,
    min_bytes_rcvd: u64,
) -> std::result::Result<Conn, SetupError> {
    let Some(first) = nodes.first() else {
        return Err(SetupError {
            reason: "the NameNode gave no DataNode for the block".into(),
            bad_uuid: String::new(),
            bad_addr: String::new(),
            bad: 0,
            no_space: false,
        });
    };
    let blame = |i: usize, reason: String, no_space: bool| SetupError {
        reason,
        bad_uuid: nodes[i].uuid.clone(),
        bad_addr: datanode::addr(&nodes[i]),
        bad: i,
        no_space,
    };
    let op = Op::WriteBlock(pb::WriteBlockOp {
        block: Some(*block),
        targets: nodes[1..].to_vec(),
        stage: stage as i32,
        min_bytes_rcvd,
        bytes_per_checksum: inner.cfg.bytes_per_checksum,
        client_name: inner.client_name.clone(),
        source: None,
    });
    let (conn, reply) = Conn::open::<pb::WriteBlockResponse>(first, op, inner.cfg.socket_timeout)
        .await
        .map_err(|e| blame(0, format!("DataNode {}: {e}", datanode::addr(first)), false))?;
    if let Err(reason) = datanode::check(reply.status, &reply.message, first) {
        let bad = nodes
            .iter()
            .position(|n| {
                !reply.first_bad_link.is_empty() && datanode::addr(n) == reply.first_bad_link
            })
            .unwrap_or(0);
        let no_space = reply.status == pb::Status::ErrorNoSpace as i32;
        return Err(blame(bad, reason, no_space));
    }
    Ok(conn)
}

/// Reads acks in order, releasing acknowledged packets; the first failure is recorded for the
/// sender (with the DataNode it names) and ends the task.
async fn read_acks(
    mut reader: BufReader<OwnedReadHalf>,
    acks: Arc<Acks>,
    nodes: Vec<pb::DatanodeId>,
) {
    loop {
        let result = read_frame::<_, pb::PipelineAck>(&mut reader).await;
        let mut s = acks.state.lock().expect("ack state poisoned");
        let outcome = match result {
            Err(e) => Err(Failure::from(format!(
                "pipeline connection to {} failed: {e}",
                addr_list(&nodes)
            ))),
            Ok(ack) => match s.unacked.front() {
                Some(p) if p.header.seqno == ack.seqno => judge_ack(&ack, &nodes, p),
                _ => Err(Failure::from(format!(
                    "unexpected ack for packet {} from the pipeline",
                    ack.seqno
                ))),
            },
        };
        let done = match outcome {
            Ok(last) => {
                s.unacked.pop_front();
                last
            }
            Err(e) => {
                s.error = Some(e);
                true
            }
        };
        drop(s);
        acks.changed.notify_waiters();
        if done {
            return;
        }
    }
}

/// An ack for the oldest unacknowledged packet `p`: `Ok(whether p was the block's last)` when
/// every DataNode of the pipeline succeeded, else the failure naming the first one that did not.
/// Each DataNode appends its downstream's replies to its own, so a full ack has one reply per
/// DataNode; a shorter one means the DataNodes past its end never confirmed the packet.
fn judge_ack(
    ack: &pb::PipelineAck,
    nodes: &[pb::DatanodeId],
    p: &Packet,
) -> std::result::Result<bool, Failure> {
    let name = |i: usize| nodes.get(i).map(datanode::addr).unwrap_or_default();
    if let Some(i) = ack
        .replies
        .iter()
        .position(|r| *r != pb::Status::Success as i32)
    {
        return Err(Failure {
            reason: format!(
                "DataNode {} failed packet {}: {} {}",
                name(i),
                ack.seqno,
                pb::Status::try_from(ack.replies[i]).map_or("UNKNOWN", |s| s.as_str_name()),
                ack.message
            ),
            bad: Some(i),
            no_space: ack.replies[i] == pb::Status::ErrorNoSpace as i32,
        });
    }
    if ack.replies.len() < nodes.len() {
        let i = ack.replies.len();
        return Err(Failure {
            reason: format!(
                "DataNode {} did not confirm packet {}: the ack has {} of {} replies",
                name(i),
                ack.seqno,
                ack.replies.len(),
                nodes.len()
            ),
            bad: Some(i),
            no_space: false,
        });
    }
    Ok(p.header.last_packet)
}

fn addr_list(nodes: &[pb::DatanodeId]) -> String {
    nodes
        .iter()
        .map(datanode::addr)
        .collect::<Vec<_>>()
        .join(" → ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(port: u32) -> pb::DatanodeId {
        pb::DatanodeId {
            uuid: format!("dn{port}"),
            host: "127.0.0.1".into(),
            xfer_port: port,
        }
    }

    fn ack(replies: &[pb::Status]) -> pb::PipelineAck {
        pb::PipelineAck {
            seqno: 0,
            replies: replies.iter().map(|s| *s as i32).collect(),
            message: "downstream trouble".into(),
        }
    }

    #[test]
    fn an_ack_must_answer_for_every_datanode() {
        use pb::Status::{ErrorNoSpace, Success};
        let nodes = [node(1), node(2), node(3)];
        let p = Packet::last(0, 0, false);
        assert!(judge_ack(&ack(&[Success; 3]), &nodes, &p).unwrap());
        // A reply missing: the first DataNode that did not answer is to blame.
        let f = judge_ack(&ack(&[Success; 2]), &nodes, &p).unwrap_err();
        assert_eq!(f.bad, Some(2));
        assert!(f.reason.contains("127.0.0.1:3"), "{}", f.reason);
        // A DataNode out of space is named and recognizable.
        let f = judge_ack(&ack(&[Success, ErrorNoSpace]), &nodes, &p).unwrap_err();
        assert_eq!((f.bad, f.no_space), (Some(1), true));
    }
}
