//! Client settings. The `dfs` binary fills these from `dfs.*` keys (see docs/config.md).

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// NameNode RPC address, `host:port`.
    pub namenode: String,
    /// Block size of files this client creates (`dfs.blocksize`).
    pub block_size: u64,
    /// Replication of files this client creates (`dfs.replication`).
    pub replication: u32,
    /// Bytes covered by each CRC32C (`dfs.bytes-per-checksum`).
    pub bytes_per_checksum: u32,
    /// A DataNode connection that stalls this long fails over (`dfs.client.socket-timeout`).
    pub socket_timeout: Duration,
    /// Connecting to the NameNode gives up after this (`dfs.client.connect-timeout`); DataNode
    /// connections use `socket_timeout`.
    pub connect_timeout: Duration,
    /// Leases are renewed this often while files are open for writing.
    pub lease_renew_interval: Duration,
    /// Packets sent down a pipeline but not yet acknowledged, at most (HDFS: 80, 5 MiB).
    pub max_packets_in_flight: usize,
    /// Permission bits removed from new files and directories (`fs.permissions.umask-mode`).
    pub umask: u32,
    /// Every NameNode reply waits until every change before it is fsynced, and each finished
    /// block is fsynced by its DataNodes (`dfs.client.durable-replies`, HDFS's guarantee). When
    /// false, replies wait until changes are written (they survive any process crash), and
    /// only `hsync` and [`crate::DfsClient::sync_metadata`] make them survive a power loss.
    pub durable_replies: bool,
    /// Acts as this user instead of the process's own (`None`: the current user or `DFS_USER`).
    pub user: Option<crate::user::UserInfo>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            namenode: "127.0.0.1:8020".into(),
            block_size: 128 * 1024 * 1024,
            replication: 3,
            bytes_per_checksum: dfs_proto::checksum::DEFAULT_BYTES_PER_CHECKSUM,
            socket_timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            lease_renew_interval: Duration::from_secs(30),
            max_packets_in_flight: 80,
            umask: 0o022,
            durable_replies: true,
            user: None,
        }
    }
}
