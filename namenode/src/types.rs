//! Domain types shared by the pure core: identifiers as newtypes, blocks, DataNode identities and
//! the values the core returns. Prost types never appear here; `convert` maps both ways.

use std::fmt;

/// An inode number. The root is [`InodeId::ROOT`]; 0 is never a valid inode (it means "no parent"
/// in the image).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InodeId(pub u64);

impl InodeId {
    pub const ROOT: InodeId = InodeId(1);
}

impl fmt::Display for InodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A block id, unique for the life of the namespace (never reused, restored past every used value
/// on replay).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BlockId(pub u64);

impl fmt::Display for BlockId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "blk_{}", self.0)
    }
}

/// A generation stamp: bumped whenever replicas of a block may diverge (append, pipeline or lease
/// recovery), so a stale replica can be told from a current one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GenStamp(pub u64);

/// First block id handed out on a fresh namespace (as HDFS: ids below are reserved).
pub const FIRST_BLOCK_ID: u64 = 1 << 30;
/// First generation stamp on a fresh namespace (as HDFS).
pub const FIRST_GEN_STAMP: u64 = 1000;

/// A block of a file as the NameNode knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Block {
    pub id: BlockId,
    pub gs: GenStamp,
    pub num_bytes: u64,
}

impl fmt::Display for Block {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}_{} (len {})", self.id, self.gs.0, self.num_bytes)
    }
}

/// How a DataNode is reached; `uuid` is its stable identity.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DatanodeId {
    pub uuid: String,
    pub host: String,
    pub xfer_port: u32,
}

impl DatanodeId {
    /// `host:port` as users name a DataNode.
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.xfer_port)
    }
}

/// What a DataNode says about its storage on register and every heartbeat.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StorageReport {
    pub capacity: u64,
    pub dfs_used: u64,
    pub remaining: u64,
    pub num_volumes: u32,
    pub failed_volumes: u32,
}

/// Administrative state of a DataNode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminState {
    Normal,
    DecommissionInProgress,
    Decommissioned,
}

impl AdminState {
    pub fn as_str(self) -> &'static str {
        match self {
            AdminState::Normal => "NORMAL",
            AdminState::DecommissionInProgress => "DECOMMISSION_IN_PROGRESS",
            AdminState::Decommissioned => "DECOMMISSIONED",
        }
    }
}

/// A DataNode as reported to clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatanodeInfo {
    pub id: DatanodeId,
    pub storage: StorageReport,
    pub last_heartbeat_ms_ago: u64,
    pub alive: bool,
    pub admin_state: AdminState,
    pub num_blocks: u64,
    pub xceivers: u32,
    /// Decommission progress: blocks on this node not yet safe elsewhere (0 unless draining;
    /// filled in by the DataNode report only, it costs a pass over the node's blocks).
    pub blocks_to_drain: u64,
}

/// The calling user of a ClientProtocol RPC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub user: String,
    pub groups: Vec<String>,
}

impl Caller {
    /// The identity of a call that carried no user.
    pub fn anonymous() -> Caller {
        Caller {
            user: "nobody".to_string(),
            groups: Vec::new(),
        }
    }

    #[cfg(test)]
    pub fn new(user: &str, groups: &[&str]) -> Caller {
        Caller {
            user: user.to_string(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
        }
    }

    pub fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }
}

/// The kind of an inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileType {
    File,
    Directory,
    Symlink,
    Fifo,
    Socket,
    CharDevice,
    BlockDevice,
}

/// `stat` of one inode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileStatus {
    pub name: String,
    pub file_type: FileType,
    pub length: u64,
    pub replication: u32,
    pub block_size: u64,
    pub mtime_ms: u64,
    pub atime_ms: u64,
    pub permission: u32,
    pub owner: String,
    pub group: String,
    pub inode_id: InodeId,
    pub children_num: u64,
    pub under_construction: bool,
    pub lease_holder: String,
    /// A symbolic link's target.
    pub symlink: Vec<u8>,
    /// Directory entries naming the inode (0 for an orphan); 2 + subdirectories for a directory.
    pub nlink: u32,
    pub ctime_ms: u64,
    pub rdev: u64,
    pub has_acl: bool,
    pub has_xattrs: bool,
}

/// `du -s` of a subtree.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ContentSummary {
    pub length: u64,
    pub file_count: u64,
    pub directory_count: u64,
    pub space_consumed: u64,
}

/// An extent of a file with where to find its block: file bytes `[offset, offset + length)` are
/// block bytes `[block_offset, block_offset + length)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocatedBlock {
    pub block: Block,
    pub offset: u64,
    pub locations: Vec<DatanodeInfo>,
    pub corrupt: bool,
    pub under_construction: bool,
    pub block_offset: u64,
    pub length: u64,
}

/// The answer to GetBlockLocations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocatedBlocks {
    pub file_length: u64,
    pub blocks: Vec<LocatedBlock>,
    pub under_construction: bool,
    pub last_block: Option<LocatedBlock>,
    pub last_block_complete: bool,
    pub file_id: u64,
    pub status: Option<FileStatus>,
}

/// A command riding back to a DataNode on a heartbeat reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Delete(Vec<Block>),
    Transfer {
        block: Block,
        targets: Vec<DatanodeId>,
    },
    Recover {
        block: Block,
        new_gs: GenStamp,
        replicas: Vec<DatanodeId>,
    },
}

/// One replica in a full block report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicaReport {
    pub block: Block,
    /// FINALIZED (true) or RBW (false).
    pub finalized: bool,
}

/// One entry of an incremental block report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceivedDeleted {
    Received(Block),
    Deleted(Block),
    Receiving(Block),
}

/// Cluster-wide numbers (GetStats and the HTTP status).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub capacity: u64,
    pub dfs_used: u64,
    pub remaining: u64,
    pub under_replicated: u64,
    pub corrupt_blocks: u64,
    pub missing_blocks: u64,
    pub live_datanodes: u64,
    pub dead_datanodes: u64,
    pub files: u64,
    pub directories: u64,
    pub blocks: u64,
    pub safe_mode: bool,
    pub pending_replications: u64,
}

/// One replica in an fsck answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsckReplica {
    pub datanode: DatanodeId,
    pub alive: bool,
    pub corrupt: bool,
    pub decommissioning: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsckBlock {
    pub block: Block,
    pub replicas: Vec<FsckReplica>,
    pub expected_replication: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsckFile {
    pub path: String,
    pub length: u64,
    pub replication: u32,
    pub under_construction: bool,
    pub blocks: Vec<FsckBlock>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FsckReport {
    pub files: Vec<FsckFile>,
    pub directories: u64,
}

/// SafeMode RPC action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SafeModeAction {
    Get,
    Enter,
    Leave,
}
