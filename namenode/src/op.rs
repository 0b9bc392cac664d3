//! [`Op`]: one namespace mutation, exactly as it is logged.
//!
//! The RPC layer decides everything (inode ids, block ids, generation stamps, timestamps, which
//! unlinked files stay as orphans) and builds an `Op`; `Namespace::apply` then mutates
//! deterministically, both live and on replay. This module is the one place where an `Op`
//! becomes a prost `EditRecord` and back.
//!
//! Paths may be inode paths (`/.reserved/.inodes/ID/...`): they resolve the same on replay, and
//! name orphans, which have no other path.

use dfs_proto::path::DfsPath;
use dfs_proto::pb;
use dfs_proto::pb::edit_record::Op as PbOp;

use crate::acl::Acl;
use crate::convert;
use crate::error::{Error, Result};
use crate::namespace::Extent;
use crate::types::{Block, BlockId, FileType, GenStamp, InodeId};

/// A file that loses its last name while clients hold it open, and who holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Orphan {
    pub inode: InodeId,
    pub holders: Vec<String>,
}

/// A logged namespace mutation. Paths are absolute and valid by construction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Creates one directory (mkdir -p logs one per missing component).
    Mkdir {
        inode_id: InodeId,
        path: DfsPath,
        permission: u32,
        owner: String,
        group: String,
        mtime_ms: u64,
    },
    /// Creates a file under construction, replacing an existing file when `overwrite`.
    Create {
        inode_id: InodeId,
        path: DfsPath,
        permission: u32,
        owner: String,
        group: String,
        mtime_ms: u64,
        replication: u32,
        block_size: u64,
        client_name: String,
        overwrite: bool,
        orphans: Vec<Orphan>,
    },
    /// Appends `block` to a file under construction, first recording `previous`'s final length;
    /// with `log`, a log block (no extent until a commit places its bytes).
    AddBlock {
        path: DfsPath,
        previous: Option<Block>,
        block: Block,
        mtime_ms: u64,
        log: bool,
    },
    /// Lays `extents` of log block `block` (its new length and stamp) over the file's map and
    /// sets its length; blocks left without an extent are given up.
    CommitExtents {
        path: DfsPath,
        block: Block,
        extents: Vec<Extent>,
        length: u64,
        mtime_ms: u64,
    },
    /// New lengths and stamps for the file's blocks (the same blocks, or fewer at the end).
    UpdateBlocks { path: DfsPath, blocks: Vec<Block> },
    /// Finalizes the block list and closes the file; `mtime_ms` 0 leaves its times.
    Close {
        path: DfsPath,
        blocks: Vec<Block>,
        mtime_ms: u64,
    },
    /// Reopens a closed file for append by `client_name`.
    Reopen {
        path: DfsPath,
        client_name: String,
        mtime_ms: u64,
    },
    Rename {
        src: DfsPath,
        dst: DfsPath,
        overwrite: bool,
        mtime_ms: u64,
        orphans: Vec<Orphan>,
    },
    /// Removes an entry (a whole subtree for a directory).
    Delete {
        path: DfsPath,
        mtime_ms: u64,
        orphans: Vec<Orphan>,
    },
    SetReplication {
        path: DfsPath,
        replication: u32,
        ctime_ms: u64,
    },
    SetPermission {
        path: DfsPath,
        permission: u32,
        ctime_ms: u64,
    },
    /// Empty strings keep the current value.
    SetOwner {
        path: DfsPath,
        owner: String,
        group: String,
        ctime_ms: u64,
    },
    SetTimes {
        path: DfsPath,
        mtime_ms: Option<u64>,
        atime_ms: Option<u64>,
        ctime_ms: u64,
    },
    /// The global generation stamp counter moved to this value.
    SetGenerationStamp { gs: GenStamp },
    /// Raises the next inode id, block id and the generation stamp to at least these (see
    /// `FsState::reserve_ids`).
    ReserveIds {
        inode_id: InodeId,
        block_id: BlockId,
        gs: GenStamp,
    },
    /// Drops the last (under-construction) block of a file.
    AbandonBlock { path: DfsPath, block_id: BlockId },
    /// Cuts the file at `new_length`, or grows it with a hole.
    Truncate {
        path: DfsPath,
        new_length: u64,
        mtime_ms: u64,
    },
    /// Hands a file's lease to another holder (lease recovery).
    ReassignLease { path: DfsPath, new_holder: String },
    Symlink {
        inode_id: InodeId,
        path: DfsPath,
        target: Vec<u8>,
        owner: String,
        group: String,
        mtime_ms: u64,
    },
    /// A new entry `dst` for the inode at `src`.
    Link {
        src: DfsPath,
        dst: DfsPath,
        mtime_ms: u64,
    },
    /// A special file, or an empty closed regular file.
    Mknod {
        inode_id: InodeId,
        path: DfsPath,
        file_type: FileType,
        permission: u32,
        owner: String,
        group: String,
        mtime_ms: u64,
        rdev: u64,
        replication: u32,
        block_size: u64,
    },
    SetXAttr {
        path: DfsPath,
        name: String,
        value: Vec<u8>,
        ctime_ms: u64,
    },
    RemoveXAttr {
        path: DfsPath,
        name: String,
        ctime_ms: u64,
    },
    /// The inode's whole stored ACL and its new mode bits.
    SetAcl {
        path: DfsPath,
        acl: Acl,
        permission: u32,
        ctime_ms: u64,
    },
    /// `holder` (every holder when `None`) no longer holds orphan `inode_id` open.
    ReleaseOrphan {
        inode_id: InodeId,
        holder: Option<String>,
    },
}

impl From<Block> for pb::BlockRecord {
    fn from(b: Block) -> Self {
        pb::BlockRecord {
            block_id: b.id.0,
            generation_stamp: b.gs.0,
            num_bytes: b.num_bytes,
        }
    }
}

impl From<&pb::BlockRecord> for Block {
    fn from(b: &pb::BlockRecord) -> Self {
        Block {
            id: BlockId(b.block_id),
            gs: GenStamp(b.generation_stamp),
            num_bytes: b.num_bytes,
        }
    }
}

fn records(blocks: &[Block]) -> Vec<pb::BlockRecord> {
    blocks.iter().map(|b| pb::BlockRecord::from(*b)).collect()
}

fn blocks(records: &[pb::BlockRecord]) -> Vec<Block> {
    records.iter().map(Block::from).collect()
}

fn orphan_records(o: Vec<Orphan>) -> Vec<pb::OrphanRecord> {
    o.into_iter()
        .map(|o| pb::OrphanRecord {
            inode_id: o.inode.0,
            holders: o.holders,
        })
        .collect()
}

fn orphans(o: &[pb::OrphanRecord]) -> Vec<Orphan> {
    o.iter()
        .map(|o| Orphan {
            inode: InodeId(o.inode_id),
            holders: o.holders.clone(),
        })
        .collect()
}

fn path(txid: u64, s: &str) -> Result<DfsPath> {
    DfsPath::parse(s).map_err(|e| Error::Corrupt(format!("edit txid {txid}: {e}")))
}

impl Op {
    /// The edit record for this op with the given transaction id.
    pub fn to_record(&self, txid: u64) -> pb::EditRecord {
        let op = match self.clone() {
            Op::Mkdir {
                inode_id,
                path,
                permission,
                owner,
                group,
                mtime_ms,
            } => PbOp::Mkdir(pb::OpMkdir {
                inode_id: inode_id.0,
                path: path.to_string(),
                permission,
                owner,
                group,
                mtime_ms,
            }),
            Op::Create {
                inode_id,
                path,
                permission,
                owner,
                group,
                mtime_ms,
                replication,
                block_size,
                client_name,
                overwrite,
                orphans,
            } => PbOp::Create(pb::OpCreate {
                inode_id: inode_id.0,
                path: path.to_string(),
                permission,
                owner,
                group,
                mtime_ms,
                replication,
                block_size,
                client_name,
                overwrite,
                orphans: orphan_records(orphans),
            }),
            Op::AddBlock {
                path,
                previous,
                block,
                mtime_ms,
                log,
            } => PbOp::AddBlock(pb::OpAddBlock {
                path: path.to_string(),
                previous: previous.map(pb::BlockRecord::from),
                block: Some(block.into()),
                mtime_ms,
                log,
            }),
            Op::CommitExtents {
                path,
                block,
                extents,
                length,
                mtime_ms,
            } => PbOp::CommitExtents(pb::OpCommitExtents {
                path: path.to_string(),
                block: Some(block.into()),
                extents: extents.iter().map(pb::ExtentRecord::from).collect(),
                length,
                mtime_ms,
            }),
            Op::UpdateBlocks { path, blocks } => PbOp::UpdateBlocks(pb::OpUpdateBlocks {
                path: path.to_string(),
                blocks: records(&blocks),
            }),
            Op::Close {
                path,
                blocks,
                mtime_ms,
            } => PbOp::Close(pb::OpClose {
                path: path.to_string(),
                blocks: records(&blocks),
                mtime_ms,
            }),
            Op::Reopen {
                path,
                client_name,
                mtime_ms,
            } => PbOp::Reopen(pb::OpReopen {
                path: path.to_string(),
                client_name,
                mtime_ms,
            }),
            Op::Rename {
                src,
                dst,
                overwrite,
                mtime_ms,
                orphans,
            } => PbOp::Rename(pb::OpRename {
                src: src.to_string(),
                dst: dst.to_string(),
                overwrite,
                mtime_ms,
                orphans: orphan_records(orphans),
            }),
            Op::Delete {
                path,
                mtime_ms,
                orphans,
            } => PbOp::Delete(pb::OpDelete {
                path: path.to_string(),
                mtime_ms,
                orphans: orphan_records(orphans),
            }),
            Op::SetReplication {
                path,
                replication,
                ctime_ms,
            } => PbOp::SetReplication(pb::OpSetReplication {
                path: path.to_string(),
                replication,
                ctime_ms,
            }),
            Op::SetPermission {
                path,
                permission,
                ctime_ms,
            } => PbOp::SetPermission(pb::OpSetPermission {
                path: path.to_string(),
                permission,
                ctime_ms,
            }),
            Op::SetOwner {
                path,
                owner,
                group,
                ctime_ms,
            } => PbOp::SetOwner(pb::OpSetOwner {
                path: path.to_string(),
                owner,
                group,
                ctime_ms,
            }),
            Op::SetTimes {
                path,
                mtime_ms,
                atime_ms,
                ctime_ms,
            } => PbOp::SetTimes(pb::OpSetTimes {
                path: path.to_string(),
                mtime_ms,
                atime_ms,
                ctime_ms,
            }),
            Op::SetGenerationStamp { gs } => PbOp::SetGenerationStamp(pb::OpSetGenerationStamp {
                generation_stamp: gs.0,
            }),
            Op::ReserveIds {
                inode_id,
                block_id,
                gs,
            } => PbOp::ReserveIds(pb::OpReserveIds {
                inode_id: inode_id.0,
                block_id: block_id.0,
                generation_stamp: gs.0,
            }),
            Op::AbandonBlock { path, block_id } => PbOp::AbandonBlock(pb::OpAbandonBlock {
                path: path.to_string(),
                block_id: block_id.0,
            }),
            Op::Truncate {
                path,
                new_length,
                mtime_ms,
            } => PbOp::Truncate(pb::OpTruncate {
                path: path.to_string(),
                new_length,
                blocks: Vec::new(),
                mtime_ms,
            }),
            Op::ReassignLease { path, new_holder } => PbOp::ReassignLease(pb::OpReassignLease {
                path: path.to_string(),
                new_holder,
            }),
            Op::Symlink {
                inode_id,
                path,
                target,
                owner,
                group,
                mtime_ms,
            } => PbOp::Symlink(pb::OpSymlink {
                inode_id: inode_id.0,
                path: path.to_string(),
                target,
                owner,
                group,
                mtime_ms,
            }),
            Op::Link { src, dst, mtime_ms } => PbOp::Link(pb::OpLink {
                src: src.to_string(),
                dst: dst.to_string(),
                mtime_ms,
            }),
            Op::Mknod {
                inode_id,
                path,
                file_type,
                permission,
                owner,
                group,
                mtime_ms,
                rdev,
                replication,
                block_size,
            } => PbOp::Mknod(pb::OpMknod {
                inode_id: inode_id.0,
                path: path.to_string(),
                file_type: pb::FileType::from(file_type) as i32,
                permission,
                owner,
                group,
                mtime_ms,
                rdev,
                replication,
                block_size,
            }),
            Op::SetXAttr {
                path,
                name,
                value,
                ctime_ms,
            } => PbOp::SetXattr(pb::OpSetXAttr {
                path: path.to_string(),
                xattr: Some(pb::XAttr { name, value }),
                ctime_ms,
            }),
            Op::RemoveXAttr {
                path,
                name,
                ctime_ms,
            } => PbOp::RemoveXattr(pb::OpRemoveXAttr {
                path: path.to_string(),
                name,
                ctime_ms,
            }),
            Op::SetAcl {
                path,
                acl,
                permission,
                ctime_ms,
            } => PbOp::SetAcl(pb::OpSetAcl {
                path: path.to_string(),
                entries: acl.entries.iter().map(pb::AclEntry::from).collect(),
                permission,
                ctime_ms,
            }),
            Op::ReleaseOrphan { inode_id, holder } => PbOp::ReleaseOrphan(pb::OpReleaseOrphan {
                inode_id: inode_id.0,
                holder: holder.unwrap_or_default(),
            }),
        };
        pb::EditRecord {
            txid,
            op: Some(op),
            synced_offset: 0,
        }
    }

    /// Decodes a logged record into its txid and op. Anything malformed is [`Error::Corrupt`].
    pub fn from_record(rec: &pb::EditRecord) -> Result<(u64, Op)> {
        let txid = rec.txid;
        let p = |s: &str| path(txid, s);
        let corrupt = |m: String| Error::Corrupt(format!("edit txid {txid}: {m}"));
        let op = match rec.op.as_ref() {
            None => return Err(corrupt("no operation".into())),
            Some(PbOp::Mkdir(o)) => Op::Mkdir {
                inode_id: InodeId(o.inode_id),
                path: p(&o.path)?,
                permission: o.permission,
                owner: o.owner.clone(),
                group: o.group.clone(),
                mtime_ms: o.mtime_ms,
            },
            Some(PbOp::Create(o)) => Op::Create {
                inode_id: InodeId(o.inode_id),
                path: p(&o.path)?,
                permission: o.permission,
                owner: o.owner.clone(),
                group: o.group.clone(),
                mtime_ms: o.mtime_ms,
                replication: o.replication,
                block_size: o.block_size,
                client_name: o.client_name.clone(),
                overwrite: o.overwrite,
                orphans: orphans(&o.orphans),
            },
            Some(PbOp::AddBlock(o)) => Op::AddBlock {
                path: p(&o.path)?,
                previous: o.previous.as_ref().map(Block::from),
                block: o
                    .block
                    .as_ref()
                    .map(Block::from)
                    .ok_or_else(|| corrupt("add_block without a block".into()))?,
                mtime_ms: o.mtime_ms,
                log: o.log,
            },
            Some(PbOp::CommitExtents(o)) => Op::CommitExtents {
                path: p(&o.path)?,
                block: o
                    .block
                    .as_ref()
                    .map(Block::from)
                    .ok_or_else(|| corrupt("commit_extents without a block".into()))?,
                extents: o.extents.iter().map(Extent::from).collect(),
                length: o.length,
                mtime_ms: o.mtime_ms,
            },
            Some(PbOp::UpdateBlocks(o)) => Op::UpdateBlocks {
                path: p(&o.path)?,
                blocks: blocks(&o.blocks),
            },
            Some(PbOp::Close(o)) => Op::Close {
                path: p(&o.path)?,
                blocks: blocks(&o.blocks),
                mtime_ms: o.mtime_ms,
            },
            Some(PbOp::Reopen(o)) => Op::Reopen {
                path: p(&o.path)?,
                client_name: o.client_name.clone(),
                mtime_ms: o.mtime_ms,
            },
            Some(PbOp::Rename(o)) => Op::Rename {
                src: p(&o.src)?,
                dst: p(&o.dst)?,
                overwrite: o.overwrite,
                mtime_ms: o.mtime_ms,
                orphans: orphans(&o.orphans),
            },
            Some(PbOp::Delete(o)) => Op::Delete {
                path: p(&o.path)?,
                mtime_ms: o.mtime_ms,
                orphans: orphans(&o.orphans),
            },
            Some(PbOp::SetReplication(o)) => Op::SetReplication {
                path: p(&o.path)?,
                replication: o.replication,
                ctime_ms: o.ctime_ms,
            },
            Some(PbOp::SetPermission(o)) => Op::SetPermission {
                path: p(&o.path)?,
                permission: o.permission,
                ctime_ms: o.ctime_ms,
            },
            Some(PbOp::SetOwner(o)) => Op::SetOwner {
                path: p(&o.path)?,
                owner: o.owner.clone(),
                group: o.group.clone(),
                ctime_ms: o.ctime_ms,
            },
            Some(PbOp::SetTimes(o)) => Op::SetTimes {
                path: p(&o.path)?,
                mtime_ms: o.mtime_ms,
                atime_ms: o.atime_ms,
                ctime_ms: o.ctime_ms,
            },
            Some(PbOp::SetGenerationStamp(o)) => Op::SetGenerationStamp {
                gs: GenStamp(o.generation_stamp),
            },
            Some(PbOp::ReserveIds(o)) => Op::ReserveIds {
                inode_id: InodeId(o.inode_id),
                block_id: BlockId(o.block_id),
                gs: GenStamp(o.generation_stamp),
            },
            Some(PbOp::AbandonBlock(o)) => Op::AbandonBlock {
                path: p(&o.path)?,
                block_id: BlockId(o.block_id),
            },
            Some(PbOp::Truncate(o)) => Op::Truncate {
                path: p(&o.path)?,
                new_length: o.new_length,
                mtime_ms: o.mtime_ms,
            },
            Some(PbOp::ReassignLease(o)) => Op::ReassignLease {
                path: p(&o.path)?,
                new_holder: o.new_holder.clone(),
            },
            Some(PbOp::Symlink(o)) => Op::Symlink {
                inode_id: InodeId(o.inode_id),
                path: p(&o.path)?,
                target: o.target.clone(),
                owner: o.owner.clone(),
                group: o.group.clone(),
                mtime_ms: o.mtime_ms,
            },
            Some(PbOp::Link(o)) => Op::Link {
                src: p(&o.src)?,
                dst: p(&o.dst)?,
                mtime_ms: o.mtime_ms,
            },
            Some(PbOp::Mknod(o)) => Op::Mknod {
                inode_id: InodeId(o.inode_id),
                path: p(&o.path)?,
                file_type: convert::file_type(o.file_type).map_err(corrupt)?,
                permission: o.permission,
                owner: o.owner.clone(),
                group: o.group.clone(),
                mtime_ms: o.mtime_ms,
                rdev: o.rdev,
                replication: o.replication,
                block_size: o.block_size,
            },
            Some(PbOp::SetXattr(o)) => {
                let x = o
                    .xattr
                    .as_ref()
                    .ok_or_else(|| corrupt("set_xattr without an attribute".into()))?;
                Op::SetXAttr {
                    path: p(&o.path)?,
                    name: x.name.clone(),
                    value: x.value.clone(),
                    ctime_ms: o.ctime_ms,
                }
            }
            Some(PbOp::RemoveXattr(o)) => Op::RemoveXAttr {
                path: p(&o.path)?,
                name: o.name.clone(),
                ctime_ms: o.ctime_ms,
            },
            Some(PbOp::SetAcl(o)) => Op::SetAcl {
                path: p(&o.path)?,
                acl: convert::acl(&o.entries).map_err(corrupt)?,
                permission: o.permission,
                ctime_ms: o.ctime_ms,
            },
            Some(PbOp::ReleaseOrphan(o)) => Op::ReleaseOrphan {
                inode_id: InodeId(o.inode_id),
                holder: (!o.holder.is_empty()).then(|| o.holder.clone()),
            },
        };
        Ok((txid, op))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acl::{AclEntry, AclScope, AclType};

    #[test]
    fn every_op_round_trips() {
        let p = DfsPath::parse("/a/b").unwrap();
        let b = Block {
            id: BlockId(7),
            gs: GenStamp(1001),
            num_bytes: 12,
        };
        let orphans = vec![Orphan {
            inode: InodeId(9),
            holders: vec!["c1".into(), "c2".into()],
        }];
        let ops = vec![
            Op::Mkdir {
                inode_id: InodeId(2),
                path: p.clone(),
                permission: 0o755,
                owner: "u".into(),
                group: "g".into(),
                mtime_ms: 5,
            },
            Op::Create {
                inode_id: InodeId(3),
                path: p.clone(),
                permission: 0o644,
                owner: "u".into(),
                group: "g".into(),
                mtime_ms: 5,
                replication: 3,
                block_size: 1024,
                client_name: "c".into(),
                overwrite: true,
                orphans: orphans.clone(),
            },
            Op::AddBlock {
                path: p.clone(),
                previous: Some(b),
                block: b,
                mtime_ms: 9,
                log: false,
            },
            Op::AddBlock {
                path: p.clone(),
                previous: None,
                block: b,
                mtime_ms: 9,
                log: true,
            },
            Op::CommitExtents {
                path: p.clone(),
                block: b,
                extents: vec![Extent {
                    off: 4096,
                    len: 512,
                    block: b.id,
                    block_off: 0,
                }],
                length: 1 << 20,
                mtime_ms: 9,
            },
            Op::UpdateBlocks {
                path: p.clone(),
                blocks: vec![b, b],
            },
            Op::Close {
                path: p.clone(),
                blocks: vec![b],
                mtime_ms: 1,
            },
            Op::Reopen {
                path: p.clone(),
                client_name: "c".into(),
                mtime_ms: 2,
            },
            Op::Rename {
                src: p.clone(),
                dst: DfsPath::parse("/x").unwrap(),
                overwrite: true,
                mtime_ms: 3,
                orphans: orphans.clone(),
            },
            Op::Delete {
                path: p.clone(),
                mtime_ms: 4,
                orphans,
            },
            Op::SetReplication {
                path: p.clone(),
                replication: 2,
                ctime_ms: 3,
            },
            Op::SetPermission {
                path: p.clone(),
                permission: 0o1777,
                ctime_ms: 3,
            },
            Op::SetOwner {
                path: p.clone(),
                owner: "".into(),
                group: "g2".into(),
                ctime_ms: 3,
            },
            Op::SetTimes {
                path: p.clone(),
                mtime_ms: None,
                atime_ms: Some(0),
                ctime_ms: 3,
            },
            Op::SetGenerationStamp { gs: GenStamp(1234) },
            Op::ReserveIds {
                inode_id: InodeId(1 << 40),
                block_id: BlockId(1 << 41),
                gs: GenStamp(1 << 42),
            },
            Op::AbandonBlock {
                path: p.clone(),
                block_id: BlockId(7),
            },
            Op::Truncate {
                path: p.clone(),
                new_length: 77,
                mtime_ms: 8,
            },
            Op::ReassignLease {
                path: p.clone(),
                new_holder: "r".into(),
            },
            Op::Symlink {
                inode_id: InodeId(4),
                path: DfsPath::inode_child(1, "l").unwrap(),
                target: b"../\xff\x01target".to_vec(),
                owner: "u".into(),
                group: "g".into(),
                mtime_ms: 6,
            },
            Op::Link {
                src: p.clone(),
                dst: DfsPath::parse("/y").unwrap(),
                mtime_ms: 7,
            },
            Op::Mknod {
                inode_id: InodeId(5),
                path: p.clone(),
                file_type: FileType::CharDevice,
                permission: 0o600,
                owner: "u".into(),
                group: "g".into(),
                mtime_ms: 6,
                rdev: 0x0501,
                replication: 0,
                block_size: 0,
            },
            Op::SetXAttr {
                path: p.clone(),
                name: "user.k".into(),
                value: vec![0, 1, 255],
                ctime_ms: 8,
            },
            Op::RemoveXAttr {
                path: p.clone(),
                name: "user.k".into(),
                ctime_ms: 9,
            },
            Op::SetAcl {
                path: p,
                acl: Acl {
                    entries: vec![
                        AclEntry::new(AclScope::Access, AclType::User, Some("bob"), 6),
                        AclEntry::new(AclScope::Access, AclType::Group, None, 4),
                        AclEntry::new(AclScope::Default, AclType::Other, None, 0),
                    ],
                },
                permission: 0o640,
                ctime_ms: 9,
            },
            Op::ReleaseOrphan {
                inode_id: InodeId(9),
                holder: Some("c1".into()),
            },
            Op::ReleaseOrphan {
                inode_id: InodeId(9),
                holder: None,
            },
        ];
        for (i, op) in ops.into_iter().enumerate() {
            let rec = op.to_record(i as u64 + 1);
            let bytes = prost::Message::encode_to_vec(&rec);
            let back: pb::EditRecord = prost::Message::decode(bytes.as_slice()).unwrap();
            assert_eq!(Op::from_record(&back).unwrap(), (i as u64 + 1, op));
        }
    }

    #[test]
    fn malformed_records_are_corrupt_not_panics() {
        let none = pb::EditRecord {
            txid: 1,
            ..Default::default()
        };
        assert!(matches!(Op::from_record(&none), Err(Error::Corrupt(_))));
        let bad_path = pb::EditRecord {
            txid: 2,
            op: Some(PbOp::Delete(pb::OpDelete {
                path: "relative".into(),
                mtime_ms: 0,
                orphans: vec![],
            })),
            ..Default::default()
        };
        assert!(matches!(Op::from_record(&bad_path), Err(Error::Corrupt(_))));
        let no_block = pb::EditRecord {
            txid: 3,
            op: Some(PbOp::AddBlock(pb::OpAddBlock {
                path: "/a".into(),
                previous: None,
                block: None,
                mtime_ms: 0,
                log: false,
            })),
            ..Default::default()
        };
        assert!(matches!(Op::from_record(&no_block), Err(Error::Corrupt(_))));
        let bad_type = pb::EditRecord {
            txid: 4,
            op: Some(PbOp::Mknod(pb::OpMknod {
                path: "/a".into(),
                file_type: 99,
                ..Default::default()
            })),
            ..Default::default()
        };
        assert!(matches!(Op::from_record(&bad_type), Err(Error::Corrupt(_))));
        let bad_acl = pb::EditRecord {
            txid: 5,
            op: Some(PbOp::SetAcl(pb::OpSetAcl {
                path: "/a".into(),
                entries: vec![pb::AclEntry {
                    scope: 7,
                    ..Default::default()
                }],
                ..Default::default()
            })),
            ..Default::default()
        };
        assert!(matches!(Op::from_record(&bad_acl), Err(Error::Corrupt(_))));
    }
}
