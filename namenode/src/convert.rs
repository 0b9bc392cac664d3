//! The one place where RPC prost types become domain types and back. (Edit records are
//! converted in `op.rs`, image records in `checkpoint.rs`; the small types both share with RPCs,
//! file types, are converted here; ACL entries convert in `dfs_proto::acl`.)

use dfs_proto::pb;

use crate::acl::Acl;
use crate::error::{Error, Result};
use crate::namespace::Extent;
use crate::types::{
    AdminState, Block, BlockId, Command, ContentSummary, DatanodeId, DatanodeInfo, FileStatus,
    FileType, FsckReport, GenStamp, LocatedBlock, LocatedBlocks, ReceivedDeleted, ReplicaReport,
    SafeModeAction, Stats, StorageReport,
};

impl From<&pb::ExtendedBlock> for Block {
    fn from(b: &pb::ExtendedBlock) -> Self {
        Block {
            id: BlockId(b.block_id),
            gs: GenStamp(b.generation_stamp),
            num_bytes: b.num_bytes,
        }
    }
}

impl From<Block> for pb::ExtendedBlock {
    fn from(b: Block) -> Self {
        pb::ExtendedBlock {
            block_id: b.id.0,
            generation_stamp: b.gs.0,
            num_bytes: b.num_bytes,
        }
    }
}

/// A block field every request of this kind must carry.
pub fn required_block(b: &Option<pb::ExtendedBlock>, what: &str) -> Result<Block> {
    b.as_ref()
        .map(Block::from)
        .ok_or_else(|| Error::InvalidArgument(format!("{what} is required")))
}

impl From<&pb::DatanodeId> for DatanodeId {
    fn from(d: &pb::DatanodeId) -> Self {
        DatanodeId {
            uuid: d.uuid.clone(),
            host: d.host.clone(),
            xfer_port: d.xfer_port,
        }
    }
}

impl From<&DatanodeId> for pb::DatanodeId {
    fn from(d: &DatanodeId) -> Self {
        pb::DatanodeId {
            uuid: d.uuid.clone(),
            host: d.host.clone(),
            xfer_port: d.xfer_port,
        }
    }
}

/// A DataNode's numbers must make sense before they are summed into cluster totals and used for
/// placement. `dfs_used` is not compared with `capacity`: reserved space can make a volume's
/// capacity smaller than what dfs already stores on it.
impl TryFrom<&pb::StorageReport> for StorageReport {
    type Error = Error;
    fn try_from(s: &pb::StorageReport) -> Result<Self> {
        if s.remaining > s.capacity {
            return Err(Error::InvalidArgument(format!(
                "storage report: remaining {} exceeds capacity {}",
                s.remaining, s.capacity
            )));
        }
        if s.failed_volumes > s.num_volumes {
            return Err(Error::InvalidArgument(format!(
                "storage report: {} failed volumes of {}",
                s.failed_volumes, s.num_volumes
            )));
        }
        Ok(StorageReport {
            capacity: s.capacity,
            dfs_used: s.dfs_used,
            remaining: s.remaining,
            num_volumes: s.num_volumes,
            failed_volumes: s.failed_volumes,
        })
    }
}

impl From<AdminState> for pb::AdminState {
    fn from(a: AdminState) -> Self {
        match a {
            AdminState::Normal => pb::AdminState::Normal,
            AdminState::DecommissionInProgress => pb::AdminState::DecommissionInProgress,
            AdminState::Decommissioned => pb::AdminState::Decommissioned,
        }
    }
}

impl From<&DatanodeInfo> for pb::DatanodeInfo {
    fn from(d: &DatanodeInfo) -> Self {
        pb::DatanodeInfo {
            id: Some((&d.id).into()),
            capacity: d.storage.capacity,
            dfs_used: d.storage.dfs_used,
            remaining: d.storage.remaining,
            last_heartbeat_ms_ago: d.last_heartbeat_ms_ago,
            alive: d.alive,
            admin_state: pb::AdminState::from(d.admin_state) as i32,
            num_blocks: d.num_blocks,
            failed_volumes: d.storage.failed_volumes,
            xceivers: d.xceivers,
            blocks_to_drain: d.blocks_to_drain,
        }
    }
}

impl From<FileStatus> for pb::FileStatus {
    fn from(s: FileStatus) -> Self {
        pb::FileStatus {
            name: s.name,
            file_type: pb::FileType::from(s.file_type) as i32,
            length: s.length,
            replication: s.replication,
            block_size: s.block_size,
            mtime_ms: s.mtime_ms,
            atime_ms: s.atime_ms,
            permission: s.permission,
            owner: s.owner,
            group: s.group,
            inode_id: s.inode_id.0,
            children_num: s.children_num,
            under_construction: s.under_construction,
            lease_holder: s.lease_holder,
            symlink: s.symlink,
            nlink: s.nlink,
            ctime_ms: s.ctime_ms,
            rdev: s.rdev,
            has_acl: s.has_acl,
            has_xattrs: s.has_xattrs,
        }
    }
}

impl From<FileType> for pb::FileType {
    fn from(t: FileType) -> Self {
        match t {
            FileType::File => pb::FileType::File,
            FileType::Directory => pb::FileType::Directory,
            FileType::Symlink => pb::FileType::Symlink,
            FileType::Fifo => pb::FileType::Fifo,
            FileType::Socket => pb::FileType::Socket,
            FileType::CharDevice => pb::FileType::CharDevice,
            FileType::BlockDevice => pb::FileType::BlockDevice,
        }
    }
}

/// A wire file type, or why it is none.
pub fn file_type(t: i32) -> std::result::Result<FileType, String> {
    Ok(match pb::FileType::try_from(t) {
        Ok(pb::FileType::File) => FileType::File,
        Ok(pb::FileType::Directory) => FileType::Directory,
        Ok(pb::FileType::Symlink) => FileType::Symlink,
        Ok(pb::FileType::Fifo) => FileType::Fifo,
        Ok(pb::FileType::Socket) => FileType::Socket,
        Ok(pb::FileType::CharDevice) => FileType::CharDevice,
        Ok(pb::FileType::BlockDevice) => FileType::BlockDevice,
        Err(_) => return Err(format!("unknown file type {t}")),
    })
}

impl From<&Extent> for pb::ExtentRecord {
    fn from(x: &Extent) -> Self {
        pb::ExtentRecord {
            offset: x.off,
            length: x.len,
            block_id: x.block.0,
            block_offset: x.block_off,
        }
    }
}

/// An extent of an edit record or an image (checked where it is applied).
impl From<&pb::ExtentRecord> for Extent {
    fn from(x: &pb::ExtentRecord) -> Self {
        Extent {
            off: x.offset,
            len: x.length,
            block: BlockId(x.block_id),
            block_off: x.block_offset,
        }
    }
}

/// A stored ACL (edit log, image).
pub fn acl(entries: &[pb::AclEntry]) -> std::result::Result<Acl, String> {
    Ok(Acl {
        entries: dfs_proto::acl::from_wire(entries)?,
    })
}

impl From<ContentSummary> for pb::ContentSummary {
    fn from(s: ContentSummary) -> Self {
        pb::ContentSummary {
            length: s.length,
            file_count: s.file_count,
            directory_count: s.directory_count,
            space_consumed: s.space_consumed,
        }
    }
}

impl From<LocatedBlock> for pb::LocatedBlock {
    fn from(b: LocatedBlock) -> Self {
        pb::LocatedBlock {
            block: Some(b.block.into()),
            offset: b.offset,
            locations: b.locations.iter().map(pb::DatanodeInfo::from).collect(),
            corrupt: b.corrupt,
            under_construction: b.under_construction,
            block_offset: b.block_offset,
            length: b.length,
        }
    }
}

impl From<LocatedBlocks> for pb::LocatedBlocks {
    fn from(l: LocatedBlocks) -> Self {
        pb::LocatedBlocks {
            file_length: l.file_length,
            blocks: l.blocks.into_iter().map(pb::LocatedBlock::from).collect(),
            under_construction: l.under_construction,
            last_block: l.last_block.map(pb::LocatedBlock::from),
            last_block_complete: l.last_block_complete,
            file_id: l.file_id,
            status: l.status.map(pb::FileStatus::from),
        }
    }
}

impl From<Command> for pb::DatanodeCommand {
    fn from(c: Command) -> Self {
        use pb::datanode_command::Command as C;
        let command = match c {
            Command::Delete(blocks) => C::Delete(pb::DeleteBlocksCommand {
                blocks: blocks.into_iter().map(pb::ExtendedBlock::from).collect(),
            }),
            Command::Transfer { block, targets } => C::Transfer(pb::TransferBlockCommand {
                block: Some(block.into()),
                targets: targets.iter().map(pb::DatanodeId::from).collect(),
            }),
            Command::Recover {
                block,
                new_gs,
                replicas,
            } => C::Recover(pb::RecoverBlockCommand {
                block: Some(block.into()),
                new_generation_stamp: new_gs.0,
                replicas: replicas.iter().map(pb::DatanodeId::from).collect(),
            }),
        };
        pb::DatanodeCommand {
            command: Some(command),
        }
    }
}

impl From<Stats> for pb::GetStatsResponse {
    fn from(s: Stats) -> Self {
        pb::GetStatsResponse {
            capacity: s.capacity,
            dfs_used: s.dfs_used,
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
            namenode_rss_bytes: 0,
        }
    }
}

impl From<FsckReport> for pb::FsckResponse {
    fn from(r: FsckReport) -> Self {
        pb::FsckResponse {
            files: r
                .files
                .into_iter()
                .map(|f| pb::FsckFile {
                    path: f.path,
                    length: f.length,
                    replication: f.replication,
                    under_construction: f.under_construction,
                    blocks: f
                        .blocks
                        .into_iter()
                        .map(|b| pb::FsckBlock {
                            block: Some(b.block.into()),
                            replicas: b
                                .replicas
                                .into_iter()
                                .map(|r| pb::FsckReplica {
                                    datanode: Some((&r.datanode).into()),
                                    alive: r.alive,
                                    corrupt: r.corrupt,
                                    decommissioning: r.decommissioning,
                                })
                                .collect(),
                            expected_replication: b.expected_replication,
                        })
                        .collect(),
                })
                .collect(),
            directories: r.directories,
        }
    }
}

impl TryFrom<&pb::ReplicaReport> for ReplicaReport {
    type Error = Error;
    fn try_from(r: &pb::ReplicaReport) -> Result<Self> {
        let finalized = match pb::ReplicaState::try_from(r.state) {
            Ok(pb::ReplicaState::Finalized) => true,
            Ok(pb::ReplicaState::Rbw) => false,
            Err(_) => {
                return Err(Error::InvalidArgument(format!(
                    "unknown replica state {}",
                    r.state
                )))
            }
        };
        Ok(ReplicaReport {
            block: required_block(&r.block, "replica block")?,
            finalized,
        })
    }
}

impl TryFrom<&pb::ReceivedDeletedBlock> for ReceivedDeleted {
    type Error = Error;
    fn try_from(r: &pb::ReceivedDeletedBlock) -> Result<Self> {
        let b = required_block(&r.block, "block")?;
        match pb::ReceivedDeletedStatus::try_from(r.status) {
            Ok(pb::ReceivedDeletedStatus::Received) => Ok(ReceivedDeleted::Received(b)),
            Ok(pb::ReceivedDeletedStatus::Deleted) => Ok(ReceivedDeleted::Deleted(b)),
            Ok(pb::ReceivedDeletedStatus::Receiving) => Ok(ReceivedDeleted::Receiving(b)),
            Err(_) => Err(Error::InvalidArgument(format!(
                "unknown received/deleted status {}",
                r.status
            ))),
        }
    }
}

impl TryFrom<i32> for SafeModeAction {
    type Error = Error;
    fn try_from(a: i32) -> Result<Self> {
        match pb::SafeModeAction::try_from(a) {
            Ok(pb::SafeModeAction::SafemodeGet) => Ok(SafeModeAction::Get),
            Ok(pb::SafeModeAction::SafemodeEnter) => Ok(SafeModeAction::Enter),
            Ok(pb::SafeModeAction::SafemodeLeave) => Ok(SafeModeAction::Leave),
            Err(_) => Err(Error::InvalidArgument(format!(
                "unknown safe mode action {a}"
            ))),
        }
    }
}
