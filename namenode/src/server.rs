//! The effectful shell: loading, the gRPC server, the background tasks, checkpoints and an
//! orderly shutdown.
//!
//! Long-lived tasks (all stop when `stop` flips to true, i.e. on shutdown):
//! - gRPC server (ClientProtocol + DatanodeProtocol): stops accepting, drains in-flight calls
//!   (bounded by [`DRAIN_TIMEOUT`], then aborted).
//! - HTTP status server (`http.rs`): stops accepting; open connections are aborted.
//! - replication monitor: every `replication_check_interval`, `FsState::replication_tick`.
//! - lease monitor: every second, `FsState::lease_tick`.
//! - checkpointer: every second checks `checkpoint_period` / `checkpoint_txns`.
//! - trash emptier (trash on): every `trash_checkpoint_interval`, `FsState::empty_trash_of`
//!   for each user with a trash.
//! - edit-log writer: a std thread owned by `EditLog`, joined after the final checkpoint.

use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use dfs_proto::pb::client_protocol_server::ClientProtocolServer;
use dfs_proto::pb::datanode_protocol_server::DatanodeProtocolServer;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::checkpoint;
use crate::editlog::{EditLog, LogOptions, SyncHandle};
use crate::error::{Error, Result};
use crate::fsn::{FsState, Now};
use crate::metrics::{CountRpcs, Metrics, SyncMetrics};
use crate::service::Service;
use crate::storage::{self, DirLock};
use crate::Config;

/// How long shutdown waits for in-flight RPCs.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest gRPC message accepted (full block reports of large DataNodes).
pub const MAX_MESSAGE: usize = 256 << 20;
/// How often the lease monitor and the checkpointer look.
const TICK: Duration = Duration::from_secs(1);

/// What a reply waits for: clients choose with the `dfs-sync` header; DataNode reports sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Everything logged before the reply is written to the edit log: it survives a crash of
    /// any process, and a power loss once the sync interval has passed.
    Written,
    /// What the request logged is fsynced: it survives a power loss.
    Synced,
    /// Everything logged before the reply is fsynced, whoever logged it (HDFS's logSync): how a
    /// client makes its earlier changes durable (fsync, fsyncdir, hsync).
    SyncedAll,
}

/// Book-keeping of the last checkpoint.
#[derive(Debug)]
pub struct CheckpointState {
    pub txid: u64,
    pub at: Instant,
}

/// What every handler and task shares.
pub struct Shared {
    state: Mutex<FsState>,
    pub(crate) sync: SyncHandle,
    cur_dir: PathBuf,
    /// A tokio mutex because it is held across the (slow) image write: it serializes
    /// checkpoints, and nothing else waits on it.
    checkpoint: tokio::sync::Mutex<CheckpointState>,
    /// RPC calls (counted by the server's [`CountRpcs`] layer), edit-log fsyncs, and the
    /// cluster gauges `/metrics` shows.
    pub(crate) metrics: Arc<Metrics>,
    /// When this NameNode started (its uptime on the web UI).
    pub(crate) started: Instant,
    /// Woken whenever DataNodes reported replicas: a Complete waiting for its last block's
    /// first replica looks again.
    pub(crate) replicas_reported: tokio::sync::Notify,
}

impl Shared {
    pub fn new(state: FsState, cur_dir: PathBuf, image_txid: u64, metrics: Arc<Metrics>) -> Shared {
        Shared {
            sync: state.log.sync_handle(),
            state: Mutex::new(state),
            cur_dir,
            checkpoint: tokio::sync::Mutex::new(CheckpointState {
                txid: image_txid,
                at: Instant::now(),
            }),
            metrics,
            started: Instant::now(),
            replicas_reported: tokio::sync::Notify::new(),
        }
    }

    pub fn lock(&self) -> Result<MutexGuard<'_, FsState>> {
        self.state
            .lock()
            .map_err(|_| Error::Internal("namespace lock poisoned by an earlier panic".into()))
    }

    /// Runs `f` under the namespace lock, then (lock released) waits until what the caller asked
    /// for is true of everything logged so far. Only then may the caller acknowledge.
    pub async fn exec<T>(
        &self,
        durability: Durability,
        f: impl FnOnce(&mut FsState) -> Result<T>,
    ) -> Result<T> {
        let (result, wait) = {
            let mut st = self.lock()?;
            let before = st.log.last_txid();
            let result = f(&mut st);
            let after = st.log.last_txid();
            let logged = after > before;
            let wait = match durability {
                // Also when this request logged nothing: what it saw (a retried create finding
                // its file) may be a change not yet written.
                Durability::Written => Some((after, false)),
                Durability::Synced if logged => Some((after, true)),
                Durability::SyncedAll if st.log.synced_txid() < after => Some((after, true)),
                _ => None,
            };
            if let Some((_, true)) = wait {
                st.log.request_sync()?;
            }
            (result, wait)
        };
        match wait {
            Some((txid, true)) => self.sync.synced(txid).await?,
            Some((txid, false)) => self.sync.written(txid).await?,
            None => {}
        }
        result
    }

    /// Writes a checkpoint if anything was logged since the last one. Returns its txid.
    pub async fn checkpoint(&self) -> Result<Option<u64>> {
        let mut last = self.checkpoint.lock().await;
        let (bytes, txid, rolled) = {
            let mut st = self.lock()?;
            let txid = st.log.last_txid();
            if txid == last.txid {
                return Ok(None);
            }
            // Snapshot and roll in one critical section: the image is exactly txid, and every
            // later edit lands in the new segment.
            let bytes = checkpoint::encode(&st.ns, &st.cluster_id, txid);
            let rolled = st.log.roll()?;
            (bytes, txid, rolled)
        };
        rolled
            .await
            .map_err(|_| Error::EditLogFailed("the edit log writer stopped".into()))??;
        let dir = self.cur_dir.clone();
        tokio::task::spawn_blocking(move || {
            checkpoint::write_image(&dir, txid, &bytes)?;
            storage::purge(&dir)
        })
        .await
        .map_err(|e| Error::Internal(format!("checkpoint writer: {e}")))??;
        last.txid = txid;
        last.at = Instant::now();
        tracing::info!(txid, "checkpoint written");
        Ok(Some(txid))
    }

    async fn checkpoint_due(&self, cfg: &Config) -> bool {
        let last = self.checkpoint.lock().await;
        let Ok(st) = self.lock() else { return false };
        let pending = st.log.last_txid().saturating_sub(last.txid);
        pending > 0
            && (last.at.elapsed() >= cfg.checkpoint_period || pending >= cfg.checkpoint_txns)
    }
}

/// Sleeps `d` or returns false when shutdown starts.
async fn sleep_or_stop(stop: &mut watch::Receiver<bool>, d: Duration) -> bool {
    if *stop.borrow() {
        return false;
    }
    tokio::select! {
        _ = tokio::time::sleep(d) => true,
        _ = stop.wait_for(|s| *s) => false,
    }
}

async fn replication_monitor(
    shared: Arc<Shared>,
    interval: Duration,
    mut stop: watch::Receiver<bool>,
) {
    while sleep_or_stop(&mut stop, interval).await {
        if let Err(e) = shared
            .exec(Durability::Written, |st| {
                Ok(st.replication_tick(Now::current()))
            })
            .await
        {
            tracing::error!(error = %e, "replication monitor pass failed");
        }
    }
}

async fn lease_monitor(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    while sleep_or_stop(&mut stop, TICK).await {
        if let Err(e) = shared
            .exec(Durability::Written, |st| {
                st.lease_tick(Now::current());
                Ok(())
            })
            .await
        {
            tracing::error!(error = %e, "lease monitor pass failed");
        }
    }
}

/// The trash emptier (trash on only): every checkpoint interval, every user's trash.
async fn trash_emptier(shared: Arc<Shared>, cfg: Config, mut stop: watch::Receiver<bool>) {
    if cfg.trash_interval.is_zero() {
        return;
    }
    let every = match cfg.trash_checkpoint_interval {
        d if d.is_zero() || d > cfg.trash_interval => cfg.trash_interval,
        d => d,
    };
    while sleep_or_stop(&mut stop, every.max(Duration::from_millis(100))).await {
        let users = match shared.lock() {
            Ok(mut st) => st.trash_users(),
            Err(e) => return tracing::error!(error = %e, "trash emptier stopped"),
        };
        for user in users {
            let step = shared.exec(Durability::Written, |st| {
                st.empty_trash_of(&user, Now::current());
                Ok(())
            });
            if let Err(e) = step.await {
                tracing::error!(error = %e, "trash emptier pass failed");
            }
        }
    }
}

async fn checkpointer(shared: Arc<Shared>, cfg: Config, mut stop: watch::Receiver<bool>) {
    while sleep_or_stop(&mut stop, TICK).await {
        if shared.checkpoint_due(&cfg).await {
            if let Err(e) = shared.checkpoint().await {
                tracing::error!(error = %e, "periodic checkpoint failed");
            }
        }
    }
}

/// See [`crate::run`].
pub async fn run(
    rpc: TcpListener,
    http: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let rpc_addr = rpc
        .local_addr()
        .map_err(|e| Error::io("rpc listener address", e))?;
    let http_addr = http
        .local_addr()
        .map_err(|e| Error::io("http listener address", e))?;
    let lock = DirLock::acquire(&config.dir)?;
    let cfg = config.clone();
    let loaded = tokio::task::spawn_blocking(move || {
        storage::load_or_format(
            &cfg.dir,
            &cfg.superuser,
            &cfg.supergroup,
            crate::util::now_ms(),
        )
    })
    .await
    .map_err(|e| Error::Internal(format!("loading task: {e}")))??;
    tracing::info!(
        formatted = loaded.formatted,
        image_txid = loaded.image_txid,
        last_txid = loaded.last_txid,
        cluster_id = %loaded.cluster_id,
        "namespace loaded"
    );
    let cur = storage::current_dir(&config.dir);
    let sync_metrics = SyncMetrics::default();
    let metrics = Arc::new(Metrics::new(&sync_metrics));
    let log = EditLog::open_with(
        &cur,
        loaded.last_txid + 1,
        LogOptions {
            sync_interval: config.edits_sync_interval,
            metrics: sync_metrics,
            ..LogOptions::default()
        },
    )?;
    let mut state = FsState::new(
        config.clone(),
        loaded.ns,
        loaded.cluster_id,
        log,
        Now::current(),
    );
    let reserved = state.reserve_ids()?;
    state.log.request_sync()?;
    state.log.sync_handle().synced(reserved).await?;
    if state.safemode.is_on() {
        tracing::info!("in safe mode until enough blocks are reported");
    }
    let shared = Arc::new(Shared::new(state, cur, loaded.image_txid, metrics));

    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    tasks.spawn(replication_monitor(
        shared.clone(),
        config
            .replication_check_interval
            .max(Duration::from_millis(10)),
        stop_rx.clone(),
    ));
    tasks.spawn(lease_monitor(shared.clone(), stop_rx.clone()));
    tasks.spawn(checkpointer(
        shared.clone(),
        config.clone(),
        stop_rx.clone(),
    ));
    tasks.spawn(trash_emptier(
        shared.clone(),
        config.clone(),
        stop_rx.clone(),
    ));
    tasks.spawn(crate::http::serve(http, shared.clone(), stop_rx.clone()));

    let svc = Service::new(shared.clone());
    let mut rpc_stop = stop_rx.clone();
    let incoming = tonic::transport::server::TcpIncoming::from(rpc).with_nodelay(Some(true));
    let server = tonic::transport::Server::builder()
        .layer(CountRpcs(shared.metrics.clone()))
        .add_service(
            ClientProtocolServer::new(svc.clone())
                .max_decoding_message_size(MAX_MESSAGE)
                .max_encoding_message_size(MAX_MESSAGE),
        )
        .add_service(
            DatanodeProtocolServer::new(svc)
                .max_decoding_message_size(MAX_MESSAGE)
                .max_encoding_message_size(MAX_MESSAGE),
        )
        .serve_with_incoming_shutdown(incoming, async move {
            let _ = rpc_stop.wait_for(|s| *s).await;
        });
    let mut server = tokio::spawn(server);
    tracing::info!("namenode listening rpc={rpc_addr} http={http_addr}");

    let mut shutdown = Box::pin(shutdown);
    let mut result = tokio::select! {
        _ = &mut shutdown => Ok(()),
        r = &mut server => Err(match r {
            Ok(Ok(())) => Error::Internal("rpc server stopped by itself".into()),
            Ok(Err(e)) => Error::Transport(e),
            Err(e) => Error::Internal(format!("rpc server task: {e}")),
        }),
    };
    tracing::info!("namenode shutting down");
    let _ = stop_tx.send(true);
    if !server.is_finished() {
        match tokio::time::timeout(DRAIN_TIMEOUT, &mut server).await {
            Ok(Ok(Err(e))) => tracing::warn!(error = %e, "rpc server ended with an error"),
            Ok(_) => {}
            Err(_) => {
                tracing::warn!("in-flight rpcs did not finish in time; aborting them");
                server.abort();
            }
        }
    }
    while let Some(r) = tasks.join_next().await {
        if let Err(e) = r {
            tracing::error!(error = %e, "background task failed");
        }
    }
    match shared.checkpoint().await {
        Ok(_) => {}
        Err(e) => {
            tracing::error!(error = %e, "final checkpoint failed (the edit log still holds everything acknowledged)");
            if result.is_ok() {
                result = Err(e);
            }
        }
    }
    let closed = shared.lock().and_then(|mut st| st.log.close());
    if let Err(e) = closed {
        tracing::error!(error = %e, "closing the edit log failed");
        if result.is_ok() {
            result = Err(e);
        }
    }
    drop(lock);
    tracing::info!("namenode stopped");
    result
}
