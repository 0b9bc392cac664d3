//! The dfs DataNode: stores block replicas on local volumes, serves the data-transfer protocol
//! (write pipeline, streaming reads, checksums, lease-recovery steps) and reports to the NameNode.
//!
//! Module map:
//! - [`Config`], [`run`], [`Error`]: the public API (this file and `error.rs`).
//! - `storage`: the replica store: replica map, write path (RBW → finalized), append, pipeline
//!   and lease recovery, deletion, startup scan, failed volumes.
//! - `volume`: one volume directory: layout, `VERSION` file, free space, health probe.
//! - `meta`: the checksum (meta) file format and chunk verification; pure.
//! - `transfer`: the data-transfer TCP server: one task per connection; read, checksum, length,
//!   recover-replica and transfer-replica ops; error → wire status mapping.
//! - `pipeline`: the `write_block` op: downstream set-up, receiver and responder tasks.
//! - `sender`: streams a replica range as packets (reads and DataNode-to-DataNode transfers).
//! - `namenode`: the NameNode actor: registration, heartbeats, block reports, commands, and the
//!   reporter of received/deleted/bad blocks.
//! - `commands`: NameNode commands that talk to other DataNodes: transfer and lease recovery.
//! - `scanner`: the block scanner verifying finalized replicas at a bounded rate.
//! - `metrics`: counters and gauges for Prometheus; `http`: the HTTP server showing them.
//! - `types`: domain types (`BlockId`, `GenerationStamp`, `Block` ...) and prost conversions.
//! - `shutdown`: the shutdown signal shared by every long-lived task.
//! - `fuzzing`: a replica's files from bytes, for `fuzz/` and the property tests.
//!
//! Long-lived tasks, all stopped by `run`'s shutdown future: the transfer server (and its
//! connection tasks), the HTTP server, the NameNode actor (with its command tasks), the
//! reporter, and the scanner.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tracing::{info, warn};

mod commands;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod http;
mod meta;
mod metrics;
mod namenode;
mod pipeline;
mod scanner;
mod sender;
mod shutdown;
mod storage;
mod transfer;
mod types;
mod volume;

pub use error::{Error, Result};

use storage::Storage;
use transfer::XferContext;
use types::Peer;

/// DataNode settings. The defaults are HDFS's (names in parentheses).
#[derive(Debug, Clone)]
pub struct Config {
    /// One or more volume directories, created if missing.
    pub volumes: Vec<PathBuf>,
    /// "host:port" of the NameNode's gRPC endpoint.
    pub namenode: String,
    /// Host to advertise to the NameNode and peers; default: the listener's local IP (or, for a
    /// wildcard listener, the local address used to reach the NameNode).
    pub advertise_host: Option<String>,
    /// Heartbeat period (dfs.heartbeat.interval), 3 s.
    pub heartbeat_interval: Duration,
    /// Full block report period (dfs.blockreport.intervalMsec), 6 h.
    pub block_report_interval: Duration,
    /// A data-transfer read or write that stalls this long fails (dfs.client.socket-timeout), 60 s.
    pub socket_timeout: Duration,
    /// One full pass of the block scanner (dfs.datanode.scan.period), 504 h.
    pub scan_period: Duration,
    /// Block scanner read rate (dfs.block.scanner.volume.bytes.per.second), 8 MiB/s; 0: unpaced.
    pub scan_bytes_per_sec: u64,
    /// Bytes per volume kept free for non-dfs use (dfs.datanode.du.reserved), 0.
    pub du_reserved: u64,
    /// The default block size (dfs.blocksize), 128 MiB: a new replica goes only to a volume with
    /// room for a block this big, since a write request does not say how big it will grow.
    pub block_size: u64,
    /// Concurrent data-transfer connections (dfs.datanode.max.transfer.threads), 4096.
    pub max_transfer_threads: usize,
    /// dfs.datanode.synconclose: fsync every finished block, even when its writer did not ask.
    pub sync_on_close: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            volumes: vec![PathBuf::from("./dfs-data/datanode")],
            namenode: "127.0.0.1:8020".to_string(),
            advertise_host: None,
            heartbeat_interval: Duration::from_secs(3),
            block_report_interval: Duration::from_secs(6 * 3600),
            socket_timeout: Duration::from_secs(60),
            scan_period: Duration::from_secs(504 * 3600),
            scan_bytes_per_sec: 8 << 20,
            du_reserved: 0,
            block_size: 128 << 20,
            max_transfer_threads: 4096,
            sync_on_close: false,
        }
    }
}

/// Where a DataNode listens: data transfer (`dfs.datanode.address`) and HTTP
/// (`dfs.datanode.http.address`, `/metrics`).
pub struct Listeners {
    pub xfer: TcpListener,
    pub http: TcpListener,
}

/// Opens the volumes (scanning every stored replica), starts the data-transfer server and the
/// HTTP server on `listeners`,
/// registers with the NameNode (retrying while it is unreachable), sends a full block report, then
/// heartbeats, executes the NameNode's commands and reports received/deleted blocks, until
/// `shutdown` resolves; then stops every task and returns.
///
/// Fails early if no volume is usable or one belongs to another DataNode, and later if every
/// volume has failed.
///
/// ```no_run
/// # async fn example() -> dfs_datanode::Result<()> {
/// let listeners = dfs_datanode::Listeners {
///     xfer: tokio::net::TcpListener::bind("0.0.0.0:9866").await.expect("bind"),
///     http: tokio::net::TcpListener::bind("0.0.0.0:9864").await.expect("bind"),
/// };
/// let config = dfs_datanode::Config {
///     volumes: vec!["/data/1/dn".into(), "/data/2/dn".into()],
///     namenode: "namenode.example:8020".into(),
///     ..Default::default()
/// };
/// dfs_datanode::run(listeners, config, async {
///     let _ = tokio::signal::ctrl_c().await;
/// })
/// .await
/// # }
/// ```
pub async fn run(
    Listeners { xfer, http }: Listeners,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let (events_tx, events_rx) = mpsc::unbounded_channel();
    let volumes = config.volumes.clone();
    let (reserved, block_size) = (config.du_reserved, config.block_size);
    let storage = tokio::task::spawn_blocking(move || {
        Storage::open_sized(&volumes, reserved, block_size, events_tx)
    })
    .await??;
    let local = xfer
        .local_addr()
        .map_err(Error::io("read the listener's address"))?;
    let host = match &config.advertise_host {
        Some(h) => h.clone(),
        None => default_host(local, &config.namenode).await,
    };
    let me = Peer {
        uuid: storage.uuid().to_string(),
        host,
        port: local.port(),
    };
    let (bad_tx, bad_rx) = mpsc::unbounded_channel();
    info!("datanode listening xfer={local} uuid={}", me.uuid);
    let ctx = Arc::new(XferContext {
        me,
        storage: storage.clone(),
        socket_timeout: config.socket_timeout,
        sync_on_close: config.sync_on_close,
        active: AtomicUsize::new(0),
        bad_blocks: bad_tx.clone(),
        metrics: metrics::Metrics::new(),
    });
    let (trigger, down) = shutdown::channel();

    let server = tokio::spawn(transfer::serve(
        xfer,
        ctx.clone(),
        config.max_transfer_threads,
        down.clone(),
    ));
    let web = tokio::spawn(http::serve(http, ctx.clone(), down.clone()));
    let nn_config = namenode::NamenodeConfig {
        address: config.namenode.clone(),
        heartbeat_interval: config.heartbeat_interval,
        block_report_interval: config.block_report_interval,
        socket_timeout: config.socket_timeout,
    };
    let mut actor = tokio::spawn(namenode::run(
        ctx.clone(),
        nn_config,
        events_rx,
        bad_rx,
        down.clone(),
    ));
    let scanner = tokio::spawn(scanner::run(
        storage.clone(),
        bad_tx,
        config.scan_period,
        config.scan_bytes_per_sec,
        down.clone(),
    ));

    let outcome = tokio::select! {
        () = shutdown => None,
        r = &mut actor => Some(r.map_err(Error::from).and_then(|r| r)),
    };
    info!("datanode {} stopping", storage.uuid());
    trigger.fire();
    let actor_result = match outcome {
        Some(r) => r,
        None => actor.await.map_err(Error::from).and_then(|r| r),
    };
    let server_result = server.await.map_err(Error::from);
    let scanner_result = scanner.await.map_err(Error::from);
    let _ = web.await;
    actor_result.and(server_result).and(scanner_result)
}

/// The host to advertise: the listener's IP, or for a wildcard listener the local address the
/// kernel would use to reach the NameNode, or the loopback address.
async fn default_host(local: SocketAddr, namenode: &str) -> String {
    if !local.ip().is_unspecified() {
        return local.ip().to_string();
    }
    let outward = async {
        let nn = tokio::net::lookup_host(namenode).await.ok()?.next()?;
        let bind: SocketAddr = if nn.is_ipv4() {
            "0.0.0.0:0".parse().ok()?
        } else {
            "[::]:0".parse().ok()?
        };
        let sock = tokio::net::UdpSocket::bind(bind).await.ok()?;
        sock.connect(nn).await.ok()?;
        let ip = sock.local_addr().ok()?.ip();
        (!ip.is_unspecified()).then_some(ip)
    };
    match outward.await {
        Some(ip) => ip.to_string(),
        None => {
            warn!("cannot tell the local address facing the namenode; advertising 127.0.0.1");
            IpAddr::from([127, 0, 0, 1]).to_string()
        }
    }
}

#[cfg(test)]
mod tests;
