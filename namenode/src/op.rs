//! [`Op`]: one namespace mutation, exactly as it is logged.
//!
//! The RPC layer decides everything (inode ids, block ids, generation stamps, timestamps) and
//! builds an `Op`; `Namespace::apply` then mutates deterministically, both live and on replay.
//! This module is the one place where an `Op` becomes a prost `EditRecord` and back.

use dfs_proto::path::DfsPath;
use dfs_proto::pb;
use dfs_proto::pb::edit_record::Op as PbOp;

use crate::error::{Error, Result};
use crate::types::{Block, BlockId, GenStamp, InodeId};

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
    },
    /// Appends `block` to a file under construction, first recording `previous`'s final length.
    AddBlock {
        path: DfsPath,
        previous: Option<Block>,
        block: Block,
        mtime_ms: u64,
    },
    /// Replaces the file's whole block list (lengths and stamps of existing blocks).
    UpdateBlocks {
        path: DfsPath,
        blocks: Vec<Block>,
    },
    /// Finalizes the block list and closes the file.
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
    },
    /// Removes a file or a whole subtree.
    Delete {
        path: DfsPath,
        mtime_ms: u64,
    },
    SetReplication {
        path: DfsPath,
        replication: u32,
    },
    SetPermission {
        path: DfsPath,
        permission: u32,
    },
    /// Empty strings keep the current value.
    SetOwner {
        path: DfsPath,
        owner: String,
        group: String,
    },
    SetTimes {
        path: DfsPath,
        mtime_ms: Option<u64>,
        atime_ms: Option<u64>,
    },
    /// The global generation stamp counter moved to this value.
    SetGenerationStamp {
        gs: GenStamp,
    },
    /// Drops the last (under-construction) block of a file.
    AbandonBlock {
        path: DfsPath,
        block_id: BlockId,
    },
    /// Sets the file's block list after a truncate.
    Truncate {
        path: DfsPath,
        new_length: u64,
        blocks: Vec<Block>,
        mtime_ms: u64,
    },
    /// Hands a file's lease to another holder (lease recovery).
    ReassignLease {
        path: DfsPath,
        new_holder: String,
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
            }),
            Op::AddBlock {
                path,
                previous,
                block,
                mtime_ms,
            } => PbOp::AddBlock(pb::OpAddBlock {
                path: path.to_string(),
                previous: previous.map(pb::BlockRecord::from),
                block: Some(block.into()),
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
            } => PbOp::Rename(pb::OpRename {
                src: src.to_string(),
                dst: dst.to_string(),
                overwrite,
                mtime_ms,
            }),
            Op::Delete { path, mtime_ms } => PbOp::Delete(pb::OpDelete {
                path: path.to_string(),
                mtime_ms,
            }),
            Op::SetReplication { path, replication } => {
                PbOp::SetReplication(pb::OpSetReplication {
                    path: path.to_string(),
                    replication,
                })
            }
            Op::SetPermission { path, permission } => PbOp::SetPermission(pb::OpSetPermission {
                path: path.to_string(),
                permission,
            }),
            Op::SetOwner { path, owner, group } => PbOp::SetOwner(pb::OpSetOwner {
                path: path.to_string(),
                owner,
                group,
            }),
            Op::SetTimes {
                path,
                mtime_ms,
                atime_ms,
            } => PbOp::SetTimes(pb::OpSetTimes {
                path: path.to_string(),
                mtime_ms,
                atime_ms,
            }),
            Op::SetGenerationStamp { gs } => PbOp::SetGenerationStamp(pb::OpSetGenerationStamp {
                generation_stamp: gs.0,
            }),
            Op::AbandonBlock { path, block_id } => PbOp::AbandonBlock(pb::OpAbandonBlock {
                path: path.to_string(),
                block_id: block_id.0,
            }),
            Op::Truncate {
                path,
                new_length,
                blocks,
                mtime_ms,
            } => PbOp::Truncate(pb::OpTruncate {
                path: path.to_string(),
                new_length,
                blocks: records(&blocks),
                mtime_ms,
            }),
            Op::ReassignLease { path, new_holder } => PbOp::ReassignLease(pb::OpReassignLease {
                path: path.to_string(),
                new_holder,
            }),
        };
        pb::EditRecord { txid, op: Some(op) }
    }

    /// Decodes a logged record into its txid and op. Anything malformed is [`Error::Corrupt`].
    pub fn from_record(rec: &pb::EditRecord) -> Result<(u64, Op)> {
        let txid = rec.txid;
        let p = |s: &str| path(txid, s);
        let op = match rec.op.as_ref() {
            None => return Err(Error::Corrupt(format!("edit txid {txid}: no operation"))),
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
            },
            Some(PbOp::AddBlock(o)) => Op::AddBlock {
                path: p(&o.path)?,
                previous: o.previous.as_ref().map(Block::from),
                block: o.block.as_ref().map(Block::from).ok_or_else(|| {
                    Error::Corrupt(format!("edit txid {txid}: add_block without a block"))
                })?,
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
            },
            Some(PbOp::Delete(o)) => Op::Delete {
                path: p(&o.path)?,
                mtime_ms: o.mtime_ms,
            },
            Some(PbOp::SetReplication(o)) => Op::SetReplication {
                path: p(&o.path)?,
                replication: o.replication,
            },
            Some(PbOp::SetPermission(o)) => Op::SetPermission {
                path: p(&o.path)?,
                permission: o.permission,
            },
            Some(PbOp::SetOwner(o)) => Op::SetOwner {
                path: p(&o.path)?,
                owner: o.owner.clone(),
                group: o.group.clone(),
            },
            Some(PbOp::SetTimes(o)) => Op::SetTimes {
                path: p(&o.path)?,
                mtime_ms: o.mtime_ms,
                atime_ms: o.atime_ms,
            },
            Some(PbOp::SetGenerationStamp(o)) => Op::SetGenerationStamp {
                gs: GenStamp(o.generation_stamp),
            },
            Some(PbOp::AbandonBlock(o)) => Op::AbandonBlock {
                path: p(&o.path)?,
                block_id: BlockId(o.block_id),
            },
            Some(PbOp::Truncate(o)) => Op::Truncate {
                path: p(&o.path)?,
                new_length: o.new_length,
                blocks: blocks(&o.blocks),
                mtime_ms: o.mtime_ms,
            },
            Some(PbOp::ReassignLease(o)) => Op::ReassignLease {
                path: p(&o.path)?,
                new_holder: o.new_holder.clone(),
            },
        };
        Ok((txid, op))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_op_round_trips() {
        let p = DfsPath::parse("/a/b").unwrap();
        let b = Block {
            id: BlockId(7),
            gs: GenStamp(1001),
            num_bytes: 12,
        };
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
            },
            Op::AddBlock {
                path: p.clone(),
                previous: Some(b),
                block: b,
                mtime_ms: 9,
            },
            Op::AddBlock {
                path: p.clone(),
                previous: None,
                block: b,
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
            },
            Op::Delete {
                path: p.clone(),
                mtime_ms: 4,
            },
            Op::SetReplication {
                path: p.clone(),
                replication: 2,
            },
            Op::SetPermission {
                path: p.clone(),
                permission: 0o1777,
            },
            Op::SetOwner {
                path: p.clone(),
                owner: "".into(),
                group: "g2".into(),
            },
            Op::SetTimes {
                path: p.clone(),
                mtime_ms: None,
                atime_ms: Some(0),
            },
            Op::SetGenerationStamp { gs: GenStamp(1234) },
            Op::AbandonBlock {
                path: p.clone(),
                block_id: BlockId(7),
            },
            Op::Truncate {
                path: p.clone(),
                new_length: 0,
                blocks: vec![],
                mtime_ms: 8,
            },
            Op::ReassignLease {
                path: p,
                new_holder: "r".into(),
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
        let none = pb::EditRecord { txid: 1, op: None };
        assert!(matches!(Op::from_record(&none), Err(Error::Corrupt(_))));
        let bad_path = pb::EditRecord {
            txid: 2,
            op: Some(PbOp::Delete(pb::OpDelete {
                path: "relative".into(),
                mtime_ms: 0,
            })),
        };
        assert!(matches!(Op::from_record(&bad_path), Err(Error::Corrupt(_))));
        let no_block = pb::EditRecord {
            txid: 3,
            op: Some(PbOp::AddBlock(pb::OpAddBlock {
                path: "/a".into(),
                previous: None,
                block: None,
                mtime_ms: 0,
            })),
        };
        assert!(matches!(Op::from_record(&no_block), Err(Error::Corrupt(_))));
    }
}
