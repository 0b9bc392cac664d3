//! Domain types the client API returns, converted from the wire types in this one place.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use dfs_proto::acl::{Acl, AclEntry, AclScope, AclStatus, AclType};
use dfs_proto::pb;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    File,
    Directory,
    Symlink,
    Fifo,
    Socket,
    CharDevice,
    BlockDevice,
}

impl FileKind {
    fn from_wire(t: i32) -> FileKind {
        match pb::FileType::try_from(t) {
            Ok(pb::FileType::Directory) => FileKind::Directory,
            Ok(pb::FileType::Symlink) => FileKind::Symlink,
            Ok(pb::FileType::Fifo) => FileKind::Fifo,
            Ok(pb::FileType::Socket) => FileKind::Socket,
            Ok(pb::FileType::CharDevice) => FileKind::CharDevice,
            Ok(pb::FileType::BlockDevice) => FileKind::BlockDevice,
            Ok(pb::FileType::File) | Err(_) => FileKind::File,
        }
    }

    pub(crate) fn to_wire(self) -> pb::FileType {
        match self {
            FileKind::File => pb::FileType::File,
            FileKind::Directory => pb::FileType::Directory,
            FileKind::Symlink => pb::FileType::Symlink,
            FileKind::Fifo => pb::FileType::Fifo,
            FileKind::Socket => pb::FileType::Socket,
            FileKind::CharDevice => pb::FileType::CharDevice,
            FileKind::BlockDevice => pb::FileType::BlockDevice,
        }
    }

    /// The type letter `ls -l` shows.
    pub fn letter(self) -> char {
        match self {
            FileKind::File => '-',
            FileKind::Directory => 'd',
            FileKind::Symlink => 'l',
            FileKind::Fifo => 'p',
            FileKind::Socket => 's',
            FileKind::CharDevice => 'c',
            FileKind::BlockDevice => 'b',
        }
    }
}

/// Metadata of a file or directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileStatus {
    pub name: String,
    pub kind: FileKind,
    pub length: u64,
    pub replication: u32,
    pub block_size: u64,
    pub mtime_ms: u64,
    pub atime_ms: u64,
    /// Low 12 bits of a POSIX mode.
    pub permission: u32,
    pub owner: String,
    pub group: String,
    pub inode_id: u64,
    pub children: u64,
    pub under_construction: bool,
    /// A symbolic link's target, as stored.
    pub symlink: Vec<u8>,
    /// Directory entries naming it (0: unlinked, still open); a directory's is 2 + subdirs.
    pub nlink: u32,
    pub ctime_ms: u64,
    /// A device's number (Linux `dev_t`).
    pub rdev: u64,
    /// An extended or default ACL is set (`ls -l` shows a `+`).
    pub has_acl: bool,
    /// At least one extended attribute is set (ACLs not counted).
    pub has_xattrs: bool,
}

impl FileStatus {
    pub fn is_dir(&self) -> bool {
        self.kind == FileKind::Directory
    }
    pub fn is_file(&self) -> bool {
        self.kind == FileKind::File
    }
    pub fn is_symlink(&self) -> bool {
        self.kind == FileKind::Symlink
    }
    pub fn mtime(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.mtime_ms)
    }
    pub fn atime(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.atime_ms)
    }
}

impl From<pb::FileStatus> for FileStatus {
    fn from(s: pb::FileStatus) -> Self {
        FileStatus {
            kind: FileKind::from_wire(s.file_type),
            name: s.name,
            length: s.length,
            replication: s.replication,
            block_size: s.block_size,
            mtime_ms: s.mtime_ms,
            atime_ms: s.atime_ms,
            permission: s.permission & 0o7777,
            owner: s.owner,
            group: s.group,
            inode_id: s.inode_id,
            children: s.children_num,
            under_construction: s.under_construction,
            symlink: s.symlink,
            nlink: s.nlink,
            ctime_ms: s.ctime_ms,
            rdev: s.rdev,
            has_acl: s.has_acl,
            has_xattrs: s.has_xattrs,
        }
    }
}

/// One extended attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XAttr {
    /// With its namespace: `user.`, `trusted.`, `security.` or `system.`.
    pub name: String,
    pub value: Vec<u8>,
}

/// How [`crate::DfsClient::set_xattr`] treats an existing attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum XAttrFlag {
    /// Create or replace.
    #[default]
    Any,
    /// Fail with `AlreadyExists` if it exists (XATTR_CREATE).
    Create,
    /// Fail with `NoSuchAttribute` if it does not (XATTR_REPLACE).
    Replace,
}

/// One page of a directory listing.
#[derive(Debug, Clone, Default)]
pub struct ListingPage {
    pub entries: Vec<FileStatus>,
    /// 0 when this page ends the listing; otherwise more entries follow (at least this many:
    /// the NameNode does not count the rest). List again with `start_after` = the last name.
    pub remaining: u64,
}

impl ListingPage {
    /// Whether another page follows (an empty page never promises one).
    pub fn has_more(&self) -> bool {
        self.remaining > 0 && !self.entries.is_empty()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ContentSummary {
    pub length: u64,
    pub file_count: u64,
    pub directory_count: u64,
    pub space_consumed: u64,
}

impl From<pb::ContentSummary> for ContentSummary {
    fn from(s: pb::ContentSummary) -> Self {
        ContentSummary {
            length: s.length,
            file_count: s.file_count,
            directory_count: s.directory_count,
            space_consumed: s.space_consumed,
        }
    }
}

/// Where a block of a file lives, for locality-aware scheduling of batch jobs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockLocation {
    pub offset: u64,
    pub length: u64,
    pub block_id: u64,
    /// `host:port` of each DataNode holding a good replica, preferred first.
    pub datanodes: Vec<String>,
    /// Host names only, as Hadoop's `BlockLocation.getHosts()`.
    pub hosts: Vec<String>,
    pub corrupt: bool,
}

impl From<&pb::LocatedBlock> for BlockLocation {
    fn from(b: &pb::LocatedBlock) -> Self {
        let block = b.block.unwrap_or_default();
        let ids: Vec<pb::DatanodeId> = b.locations.iter().filter_map(|l| l.id.clone()).collect();
        BlockLocation {
            offset: b.offset,
            length: block.num_bytes,
            block_id: block.block_id,
            datanodes: ids
                .iter()
                .map(|d| format!("{}:{}", d.host, d.xfer_port))
                .collect(),
            hosts: ids.iter().map(|d| d.host.clone()).collect(),
            corrupt: b.corrupt,
        }
    }
}

/// A DataNode as the NameNode sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatanodeReport {
    pub uuid: String,
    pub addr: String,
    pub alive: bool,
    pub admin_state: String,
    pub capacity: u64,
    pub used: u64,
    pub remaining: u64,
    pub blocks: u64,
    pub last_heartbeat_ms_ago: u64,
    pub failed_volumes: u32,
    pub xceivers: u32,
    /// While decommissioning: blocks on this node still waiting for copies elsewhere.
    pub blocks_to_drain: u64,
}

impl From<pb::DatanodeInfo> for DatanodeReport {
    fn from(d: pb::DatanodeInfo) -> Self {
        let id = d.id.unwrap_or_default();
        let admin_state = match pb::AdminState::try_from(d.admin_state) {
            Ok(pb::AdminState::DecommissionInProgress) => "decommissioning",
            Ok(pb::AdminState::Decommissioned) => "decommissioned",
            _ => "normal",
        };
        DatanodeReport {
            addr: format!("{}:{}", id.host, id.xfer_port),
            uuid: id.uuid,
            alive: d.alive,
            admin_state: admin_state.to_string(),
            capacity: d.capacity,
            used: d.dfs_used,
            remaining: d.remaining,
            blocks: d.num_blocks,
            last_heartbeat_ms_ago: d.last_heartbeat_ms_ago,
            failed_volumes: d.failed_volumes,
            xceivers: d.xceivers,
            blocks_to_drain: d.blocks_to_drain,
        }
    }
}

/// Cluster-wide figures (capacity, health, counts).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClusterStats {
    pub capacity: u64,
    pub used: u64,
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
    /// The NameNode's resident memory in bytes (0: unknown).
    pub namenode_rss: u64,
}

impl From<pb::GetStatsResponse> for ClusterStats {
    fn from(s: pb::GetStatsResponse) -> Self {
        ClusterStats {
            capacity: s.capacity,
            used: s.dfs_used,
            remaining: s.remaining,
            under_replicated: s.under_replicated,
            corrupt_blocks: s.corrupt_blocks,
            missing_blocks: s.missing_blocks,
            live_datanodes: s.live_datanodes,
            dead_datanodes: s.dead_datanodes,
            files: s.files,
            directories: s.directories,
            blocks: s.blocks,
            safe_mode: s.safe_mode,
            pending_replications: s.pending_replications,
            namenode_rss: s.namenode_rss_bytes,
        }
    }
}

/// One replica of a block in an fsck report, as the NameNode's replication monitor judges it.
/// Replicas not yet finalized are not listed; `corrupt` covers replicas reported bad, of the
/// wrong length, or left with an old generation stamp: none of them counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsckReplica {
    pub datanode: String,
    pub alive: bool,
    pub corrupt: bool,
    pub decommissioning: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsckBlock {
    pub block_id: u64,
    pub generation_stamp: u64,
    pub length: u64,
    pub expected_replication: u32,
    pub replicas: Vec<FsckReplica>,
}

/// Block states follow HDFS's fsck: a block is CORRUPT only when every replica left is corrupt
/// (no read can succeed), MISSING when no live DataNode has it at all. A block with corrupt
/// replicas but a good one left is readable: it lists the corrupt replicas and is
/// under-replicated until the NameNode has replaced them.
impl FsckBlock {
    /// Replicas that count: on live DataNodes, not corrupt, not being drained.
    pub fn good_replicas(&self) -> usize {
        self.replicas
            .iter()
            .filter(|r| r.alive && !r.corrupt && !r.decommissioning)
            .count()
    }
    /// Corrupt replicas on live DataNodes (waiting to be replaced, then deleted).
    pub fn corrupt_replicas(&self) -> usize {
        self.replicas
            .iter()
            .filter(|r| r.alive && r.corrupt)
            .count()
    }
    pub fn is_missing(&self) -> bool {
        !self.replicas.iter().any(|r| r.alive)
    }
    pub fn is_corrupt(&self) -> bool {
        !self.is_missing() && !self.replicas.iter().any(|r| r.alive && !r.corrupt)
    }
    pub fn is_under_replicated(&self) -> bool {
        self.good_replicas() < self.expected_replication as usize
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsckFile {
    pub path: String,
    pub length: u64,
    pub replication: u32,
    pub under_construction: bool,
    pub blocks: Vec<FsckBlock>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FsckReport {
    pub files: Vec<FsckFile>,
    pub directories: u64,
}

impl FsckReport {
    fn blocks(&self) -> impl Iterator<Item = &FsckBlock> {
        self.files
            .iter()
            .filter(|f| !f.under_construction)
            .flat_map(|f| &f.blocks)
    }
    pub fn total_blocks(&self) -> usize {
        self.files.iter().map(|f| f.blocks.len()).sum()
    }
    pub fn missing_blocks(&self) -> usize {
        self.blocks().filter(|b| b.is_missing()).count()
    }
    pub fn corrupt_blocks(&self) -> usize {
        self.blocks().filter(|b| b.is_corrupt()).count()
    }
    pub fn under_replicated_blocks(&self) -> usize {
        self.blocks().filter(|b| b.is_under_replicated()).count()
    }
    /// Corrupt replicas on live DataNodes, in every block of a closed file.
    pub fn corrupt_replicas(&self) -> usize {
        self.blocks().map(FsckBlock::corrupt_replicas).sum()
    }
    /// HEALTHY when no block is missing or corrupt, i.e. every block can be read (as HDFS:
    /// under-replication and corrupt replicas beside a good one heal by themselves).
    pub fn is_healthy(&self) -> bool {
        self.missing_blocks() == 0 && self.corrupt_blocks() == 0
    }
}

impl From<pb::FsckResponse> for FsckReport {
    fn from(r: pb::FsckResponse) -> Self {
        let files = r
            .files
            .into_iter()
            .map(|f| FsckFile {
                path: f.path,
                length: f.length,
                replication: f.replication,
                under_construction: f.under_construction,
                blocks: f
                    .blocks
                    .into_iter()
                    .map(|b| {
                        let blk = b.block.unwrap_or_default();
                        FsckBlock {
                            block_id: blk.block_id,
                            generation_stamp: blk.generation_stamp,
                            length: blk.num_bytes,
                            expected_replication: b.expected_replication,
                            replicas: b
                                .replicas
                                .into_iter()
                                .map(|r| {
                                    let id = r.datanode.unwrap_or_default();
                                    FsckReplica {
                                        datanode: format!("{}:{}", id.host, id.xfer_port),
                                        alive: r.alive,
                                        corrupt: r.corrupt,
                                        decommissioning: r.decommissioning,
                                    }
                                })
                                .collect(),
                        }
                    })
                    .collect(),
            })
            .collect();
        FsckReport {
            files,
            directories: r.directories,
        }
    }
}

/// A whole-file checksum: CRC32C over the big-endian per-block `crc_of_crcs`, each of which is a
/// CRC32C over that block's chunk CRCs. Equal content written with the same block size and
/// bytes-per-checksum gives an equal checksum, whatever the replicas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileChecksum {
    pub algorithm: String,
    pub value: u32,
    pub length: u64,
}

impl std::fmt::Display for FileChecksum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}\t{:08x}", self.algorithm, self.value)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SafeModeAction {
    Get,
    Enter,
    Leave,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(replicas: &[(bool, bool)]) -> FsckBlock {
        FsckBlock {
            block_id: 1,
            generation_stamp: 1,
            length: 10,
            expected_replication: 3,
            replicas: replicas
                .iter()
                .map(|&(alive, corrupt)| FsckReplica {
                    datanode: "127.0.0.1:1".into(),
                    alive,
                    corrupt,
                    decommissioning: false,
                })
                .collect(),
        }
    }

    fn report(blocks: Vec<FsckBlock>) -> FsckReport {
        FsckReport {
            files: vec![FsckFile {
                path: "/f".into(),
                length: 10,
                replication: 3,
                under_construction: false,
                blocks,
            }],
            directories: 0,
        }
    }

    #[test]
    fn the_verdict_follows_hdfs() {
        // A corrupt replica beside good ones: readable, listed, under-replicated, HEALTHY.
        let r = report(vec![block(&[(true, false), (true, false), (true, true)])]);
        assert_eq!((r.corrupt_blocks(), r.corrupt_replicas()), (0, 1));
        assert_eq!(r.under_replicated_blocks(), 1);
        assert!(r.is_healthy());
        // Every live replica corrupt: CORRUPT (a dead DataNode's good copy cannot be read).
        let r = report(vec![block(&[(true, true), (false, false)])]);
        assert_eq!((r.corrupt_blocks(), r.missing_blocks()), (1, 0));
        assert!(!r.is_healthy());
        // Nothing live at all: MISSING.
        let r = report(vec![block(&[(false, false)]), block(&[])]);
        assert_eq!((r.corrupt_blocks(), r.missing_blocks()), (0, 2));
        assert!(!r.is_healthy());
    }
}
