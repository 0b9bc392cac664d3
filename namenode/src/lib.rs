//! The dfs NameNode: the namespace, the block map, leases, the edit log and checkpoints, served
//! over gRPC (ClientProtocol, DatanodeProtocol) plus a JSON status page over HTTP.
//!
//! Module map (pure core first, effectful shell last):
//! - `types`: domain newtypes (`InodeId`, `BlockId`, `GenStamp`) and the values the core returns.
//! - `op`: `Op`, one logged mutation, and its one conversion to/from `EditRecord`.
//! - `namespace`: the inode tree (files, directories, links, special files, orphans); `apply(op)`
//!   is the only mutation, used live and on replay.
//! - `acl`: POSIX ACLs as HDFS keeps them (transformations, inheritance, the access algorithm).
//! - `permission`: POSIX permission checks (mode bits, ACLs, sticky bit, superuser).
//! - `blockmap`: which DataNode holds which replica, and how healthy each replica is.
//! - `datanodes`: the DataNode registry, liveness and per-node command queues.
//! - `placement`: choosing targets for new replicas.
//! - `lease`: write leases and open-file holds keyed by inode, soft/hard limits, recoveries.
//! - `safemode`: read-only start-up until enough blocks are reported.
//! - `fsn`: `FsState`, every RPC's decision as a synchronous method.
//! - `replication`: the replication monitor's pass (re-replication, excess, corrupt, decommission).
//! - `record`: the checksummed `len | crc | payload` framing of edit and image records.
//! - `editlog`: edit-log segments written before every reply and fsynced in groups (on demand or
//!   within the sync interval), with replay that cuts a power-loss tail and refuses corruption.
//! - `checkpoint`: image files (`fsimage_<txid>`), encode/decode.
//! - `storage`: the metadata directory: lock, format, load (image + edits), purge.
//! - `convert`: prost ↔ domain conversions for RPC messages.
//! - `service`: thin tonic services; the one `Error` → `tonic::Status` mapping.
//! - `metrics`: RPC calls per method (a tower layer), shown on the status page.
//! - `http`: the hand-written HTTP/1.1 status server.
//! - `server`: `run`: wiring, background tasks, checkpoints, shutdown.
//! - `error`: `Error`, the crate's one error type; each variant maps to one wire error kind.
//! - `util`: wall-clock milliseconds and a cheap, non-cryptographic random source.
//! - `fuzzing`: edit segments and images from bytes, for `fuzz/` and the property tests.
//!
//! Byte layouts of the edit log and images are documented in `editlog.rs` and `checkpoint.rs`
//! (and `docs/formats.md`).

pub(crate) mod acl;
pub(crate) mod blockmap;
pub(crate) mod checkpoint;
pub(crate) mod convert;
pub(crate) mod datanodes;
pub(crate) mod editlog;
pub mod error;
pub(crate) mod fsn;
#[doc(hidden)]
pub mod fuzzing;
pub(crate) mod http;
pub(crate) mod lease;
pub(crate) mod metrics;
pub(crate) mod namespace;
pub(crate) mod op;
pub(crate) mod permission;
pub(crate) mod placement;
pub(crate) mod record;
pub(crate) mod replication;
pub(crate) mod safemode;
pub(crate) mod server;
pub(crate) mod service;
pub(crate) mod storage;
pub(crate) mod types;
pub(crate) mod util;

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

pub use error::{Error, Result};

/// NameNode settings (HDFS names in the comments).
#[derive(Debug, Clone)]
pub struct Config {
    /// Metadata directory (edit logs, checkpoints).
    pub dir: PathBuf,
    /// dfs.heartbeat.interval: DataNodes heartbeat at this rate.
    pub heartbeat_interval: Duration,
    /// dfs.namenode.datanode.dead.interval: silence after which a DataNode is dead.
    pub dead_interval: Duration,
    /// dfs.namenode.replication.interval: replication monitor period.
    pub replication_check_interval: Duration,
    /// Most pending transfer commands per source DataNode.
    pub replication_max_streams: u32,
    /// dfs.namenode.checkpoint.period.
    pub checkpoint_period: Duration,
    /// dfs.namenode.checkpoint.txns.
    pub checkpoint_txns: u64,
    /// dfs.namenode.edits.sync-interval: longest a written edit waits for its fsync when no
    /// client asks sooner; zero syncs every change before its reply, whatever clients ask.
    pub edits_sync_interval: Duration,
    pub lease_soft_limit: Duration,
    pub lease_hard_limit: Duration,
    pub min_replication: u32,
    pub max_replication: u32,
    /// Smallest block size a file may ask for (HDFS: 1 MiB; 1 KiB here for tests).
    pub min_block_size: u64,
    /// Entries per GetListing page (dfs.ls.limit; 0 is taken as 1).
    pub listing_limit: u32,
    /// dfs.namenode.accesstime.precision: a read records the file's access time (a logged
    /// SetTimes) only when the stored one is older than this; zero never records it.
    pub access_time_precision: Duration,
    pub permissions_enabled: bool,
    /// The user the NameNode runs as: owns `/` and bypasses permission checks (as does `root`).
    pub superuser: String,
    /// Members of this group are superusers too.
    pub supergroup: String,
    /// Fraction of complete blocks that must be reported before leaving safe mode.
    pub safemode_threshold: f64,
    /// How long to stay in safe mode after the threshold is reached.
    pub safemode_extension: Duration,
    /// dfs.namenode.fs-limits.max-xattrs-per-inode.
    pub max_xattrs_per_inode: usize,
    /// dfs.namenode.fs-limits.max-xattr-size: bytes of an attribute's name and value together.
    pub max_xattr_size: usize,
    /// fs.trash.interval: how long a trash checkpoint is kept; zero turns trash off.
    pub trash_interval: Duration,
    /// fs.trash.checkpoint.interval: how often every user's trash is checkpointed (zero: every
    /// `trash_interval`).
    pub trash_checkpoint_interval: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            dir: PathBuf::from("./dfs-data/namenode"),
            heartbeat_interval: Duration::from_secs(3),
            dead_interval: Duration::from_secs(630),
            replication_check_interval: Duration::from_secs(3),
            replication_max_streams: 2,
            checkpoint_period: Duration::from_secs(3600),
            checkpoint_txns: 1_000_000,
            edits_sync_interval: Duration::from_secs(1),
            lease_soft_limit: Duration::from_secs(60),
            lease_hard_limit: Duration::from_secs(20 * 60),
            min_replication: 1,
            max_replication: 512,
            min_block_size: 1024,
            listing_limit: 1000,
            access_time_precision: Duration::from_secs(3600),
            permissions_enabled: true,
            superuser: "root".to_string(),
            supergroup: "supergroup".to_string(),
            safemode_threshold: 0.999,
            safemode_extension: Duration::from_secs(30),
            max_xattrs_per_inode: 32,
            max_xattr_size: 16384,
            trash_interval: Duration::ZERO,
            trash_checkpoint_interval: Duration::ZERO,
        }
    }
}

/// Loads (or formats, when `config.dir` holds no state) the namespace, serves ClientProtocol and
/// DatanodeProtocol gRPC on `rpc`, the JSON status on `http`, runs the background tasks, and on
/// `shutdown` stops serving, writes a checkpoint and returns.
pub async fn run(
    rpc: tokio::net::TcpListener,
    http: tokio::net::TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    server::run(rpc, http, config, shutdown).await
}
