//! The NameNode actor: registration, heartbeats, full block reports, command execution, and the
//! reporter that sends incremental reports (received/receiving/deleted) and bad blocks promptly.
//!
//! The gRPC channel is lazy and reconnects by itself, so a NameNode restart only costs failed
//! heartbeats until it answers `reregister`, upon which the DataNode registers again and sends a
//! full block report.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use dfs_proto::pb::{
    self, datanode_command::Command, datanode_protocol_client::DatanodeProtocolClient,
};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};
use tonic::transport::{Channel, Endpoint};
use tracing::{debug, error, info, warn};

use crate::commands;
use crate::shutdown::Shutdown;
use crate::storage::StorageTotals;
use crate::transfer::XferContext;
use crate::types::{BadReplica, Block, ReplicaEvent};
use crate::{Error, Result};

pub(crate) type NnClient = DatanodeProtocolClient<Channel>;

/// Delay between registration attempts while the NameNode is unreachable.
const REGISTER_RETRY: Duration = Duration::from_secs(1);
/// Delay before resending a report that failed.
const REPORT_RETRY: Duration = Duration::from_secs(1);

pub(crate) struct NamenodeConfig {
    pub address: String,
    pub heartbeat_interval: Duration,
    pub block_report_interval: Duration,
    pub socket_timeout: Duration,
}

impl From<StorageTotals> for pb::StorageReport {
    fn from(t: StorageTotals) -> Self {
        pb::StorageReport {
            capacity: t.capacity,
            dfs_used: t.dfs_used,
            remaining: t.remaining,
            num_volumes: t.num_volumes,
            failed_volumes: t.failed_volumes,
        }
    }
}

/// Runs until shutdown (`Ok`) or until every volume has failed (`Err(NoVolumes)`).
pub(crate) async fn run(
    ctx: Arc<XferContext>,
    cfg: NamenodeConfig,
    events: mpsc::UnboundedReceiver<ReplicaEvent>,
    bad_blocks: mpsc::UnboundedReceiver<BadReplica>,
    mut shutdown: Shutdown,
) -> Result<()> {
    let endpoint = Endpoint::from_shared(format!("http://{}", cfg.address))?
        .connect_timeout(Duration::from_secs(5).min(cfg.socket_timeout))
        .timeout(cfg.socket_timeout);
    let client = DatanodeProtocolClient::new(endpoint.connect_lazy());
    let (registered_tx, registered_rx) = watch::channel(false);
    let reporter = tokio::spawn(reporter(
        client.clone(),
        ctx.me.uuid.clone(),
        events,
        bad_blocks,
        registered_rx,
        shutdown.clone(),
    ));
    let mut actor = Actor {
        ctx,
        client,
        socket_timeout: cfg.socket_timeout,
        work: JoinSet::new(),
    };

    let result = actor.main_loop(&cfg, &registered_tx, &mut shutdown).await;
    // Stop in-flight commands (transfers, recoveries) and the reporter.
    actor.work.shutdown().await;
    drop(registered_tx);
    let _ = reporter.await;
    result
}

struct Actor {
    ctx: Arc<XferContext>,
    client: NnClient,
    socket_timeout: Duration,
    /// Commands running in the background; aborted on shutdown.
    work: JoinSet<()>,
}

impl Actor {
    async fn main_loop(
        &mut self,
        cfg: &NamenodeConfig,
        registered: &watch::Sender<bool>,
        shutdown: &mut Shutdown,
    ) -> Result<()> {
        // Register, retrying while the NameNode is unreachable.
        loop {
            match self.register_and_report().await {
                Ok(()) => break,
                Err(e) => warn!(namenode = %cfg.address, "registration failed, retrying: {e}"),
            }
            tokio::select! {
                _ = tokio::time::sleep(REGISTER_RETRY) => {}
                _ = shutdown.wait() => return Ok(()),
            }
        }
        let _ = registered.send(true);

        let hb_period = cfg.heartbeat_interval.max(Duration::from_millis(10));
        let br_period = cfg.block_report_interval.max(Duration::from_millis(10));
        let mut heartbeat = tokio::time::interval_at(Instant::now() + hb_period, hb_period);
        heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut block_report = tokio::time::interval_at(Instant::now() + br_period, br_period);
        block_report.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut must_register = false;
        loop {
            tokio::select! {
                _ = shutdown.wait() => return Ok(()),
                _ = heartbeat.tick() => {
                    let storage = self.ctx.storage.clone();
                    let healthy = tokio::task::spawn_blocking(move || storage.check_volumes()).await?;
                    if healthy == 0 {
                        error!("every volume has failed; the datanode stops");
                        return Err(Error::NoVolumes);
                    }
                    if must_register {
                        match self.register_and_report().await {
                            Ok(()) => must_register = false,
                            Err(e) => warn!("re-registration failed: {e}"),
                        }
                        continue;
                    }
                    match self.heartbeat().await {
                        Ok(resp) => {
                            if resp.reregister {
                                info!("namenode asks to re-register");
                                must_register = true;
                                match self.register_and_report().await {
                                    Ok(()) => must_register = false,
                                    Err(e) => warn!("re-registration failed: {e}"),
                                }
                            }
                            self.execute(resp.commands);
                        }
                        Err(e) => warn!("heartbeat failed: {e}"),
                    }
                }
                _ = block_report.tick() => {
                    if let Err(e) = self.block_report().await {
                        warn!("block report failed: {e}");
                    }
                }
                Some(_) = self.work.join_next(), if !self.work.is_empty() => {}
            }
        }
    }

    async fn totals(&self) -> Result<StorageTotals> {
        let storage = self.ctx.storage.clone();
        Ok(tokio::task::spawn_blocking(move || storage.totals()).await?)
    }

    async fn register_and_report(&mut self) -> Result<()> {
        let req = pb::RegisterRequest {
            id: Some((&self.ctx.me).into()),
            storage: Some(self.totals().await?.into()),
        };
        let resp = self.client.register(req).await?.into_inner();
        info!(
            cluster = %resp.cluster_id,
            host = %self.ctx.me.host,
            port = self.ctx.me.port,
            "registered with the namenode"
        );
        self.block_report().await
    }

    async fn block_report(&mut self) -> Result<()> {
        let storage = self.ctx.storage.clone();
        let replicas = tokio::task::spawn_blocking(move || storage.block_report()).await?;
        let n = replicas.len();
        let req = pb::BlockReportRequest {
            uuid: self.ctx.me.uuid.clone(),
            replicas: replicas
                .into_iter()
                .map(|(b, s)| pb::ReplicaReport {
                    block: Some(b.into()),
                    state: pb::ReplicaState::from(s) as i32,
                })
                .collect(),
        };
        let resp = self.client.block_report(req).await?.into_inner();
        self.ctx.metrics.block_report_sent();
        info!(replicas = n, "full block report sent");
        self.execute(resp.commands);
        Ok(())
    }

    async fn heartbeat(&mut self) -> Result<pb::HeartbeatResponse> {
        let req = pb::HeartbeatRequest {
            uuid: self.ctx.me.uuid.clone(),
            storage: Some(self.totals().await?.into()),
            xceivers: self.ctx.active.load(Ordering::Relaxed) as u32,
        };
        Ok(self.client.heartbeat(req).await?.into_inner())
    }

    /// Starts each command as a background task.
    fn execute(&mut self, cmds: Vec<pb::DatanodeCommand>) {
        for cmd in cmds {
            match cmd.command {
                Some(Command::Delete(d)) => {
                    let blocks: Vec<Block> = d.blocks.iter().map(Block::from).collect();
                    let storage = self.ctx.storage.clone();
                    self.work.spawn(async move {
                        let n = blocks.len();
                        let deleted = tokio::task::spawn_blocking(move || {
                            blocks.into_iter().filter(|b| storage.delete(*b)).count()
                        })
                        .await;
                        match deleted {
                            Ok(k) => debug!("deleted {k} of {n} replicas on command"),
                            Err(e) => error!("deleting replicas failed: {e}"),
                        }
                    });
                }
                Some(Command::Transfer(t)) => {
                    let ctx = self.ctx.clone();
                    let timeout = self.socket_timeout;
                    self.work.spawn(async move {
                        if let Err(e) = commands::transfer_block(&ctx, &t, timeout).await {
                            warn!("transfer failed: {e}");
                        }
                    });
                }
                Some(Command::Recover(r)) => {
                    let ctx = self.ctx.clone();
                    let client = self.client.clone();
                    let timeout = self.socket_timeout;
                    self.work.spawn(async move {
                        if let Err(e) = commands::recover_block(&ctx, client, &r, timeout).await {
                            warn!("lease recovery failed: {e}");
                        }
                    });
                }
                None => warn!("ignoring an empty or unknown namenode command"),
            }
        }
    }
}

/// Sends BlockReceivedAndDeleted and ReportBadBlocks as events arrive, batching what is queued.
/// Failed sends are retried (merged with newer events) until shutdown.
async fn reporter(
    mut client: NnClient,
    uuid: String,
    mut events: mpsc::UnboundedReceiver<ReplicaEvent>,
    mut bad: mpsc::UnboundedReceiver<BadReplica>,
    mut registered: watch::Receiver<bool>,
    mut shutdown: Shutdown,
) {
    tokio::select! {
        r = registered.wait_for(|r| *r) => if r.is_err() { return },
        _ = shutdown.wait() => return,
    }
    let mut pending: Vec<ReplicaEvent> = Vec::new();
    let mut pending_bad: Vec<BadReplica> = Vec::new();
    let (mut events_open, mut bad_open) = (true, true);
    loop {
        if pending.is_empty() && pending_bad.is_empty() {
            if !events_open && !bad_open {
                return;
            }
            tokio::select! {
                e = events.recv(), if events_open => match e {
                    Some(e) => pending.push(e),
                    None => events_open = false,
                },
                b = bad.recv(), if bad_open => match b {
                    Some(b) => pending_bad.push(b),
                    None => bad_open = false,
                },
                _ = shutdown.wait() => return,
            }
            // Let events raised at the same moment (a delete command's replicas) join this
            // report; later ones gather while it is in flight and go in the next. No timer: a
            // writer's Complete waits on the first of these reports.
            tokio::task::yield_now().await;
        }
        while let Ok(e) = events.try_recv() {
            pending.push(e);
        }
        while let Ok(b) = bad.try_recv() {
            pending_bad.push(b);
        }
        let mut failed = false;
        if !pending.is_empty() {
            let req = pb::BlockReceivedAndDeletedRequest {
                uuid: uuid.clone(),
                blocks: pending.iter().map(|e| (*e).into()).collect(),
            };
            match client.block_received_and_deleted(req).await {
                Ok(_) => {
                    debug!(n = pending.len(), "incremental block report sent");
                    pending.clear();
                }
                Err(e) => {
                    warn!("incremental block report failed, will retry: {e}");
                    failed = true;
                }
            }
        }
        if !pending_bad.is_empty() {
            let req = bad_blocks_request(&uuid, &pending_bad);
            match client.report_bad_blocks(req).await {
                Ok(_) => {
                    warn!(
                        n = pending_bad.len(),
                        "reported corrupt replicas to the namenode"
                    );
                    pending_bad.clear();
                }
                Err(e) => {
                    warn!("bad block report failed, will retry: {e}");
                    failed = true;
                }
            }
        }
        if failed {
            tokio::select! {
                _ = tokio::time::sleep(REPORT_RETRY) => {}
                _ = shutdown.wait() => return,
            }
        }
    }
}

fn bad_blocks_request(uuid: &str, bad: &[BadReplica]) -> pb::DnReportBadBlocksRequest {
    let mut req = pb::DnReportBadBlocksRequest {
        uuid: uuid.to_string(),
        ..Default::default()
    };
    for b in bad {
        match b {
            BadReplica::Local(block) => req.blocks.push((*block).into()),
            BadReplica::Remote { block, datanode } => req.remote.push(pb::RemoteBadReplica {
                block: Some((*block).into()),
                datanode_uuid: datanode.clone(),
            }),
        }
    }
    req
}
