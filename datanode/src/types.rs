//! Domain types and their conversions from and to the prost messages, in one place.

use std::fmt;

use dfs_proto::pb;

/// A block's id, as allocated by the NameNode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct BlockId(pub u64);

/// A block's generation stamp: bumped whenever replicas may diverge (append, recovery), so a
/// replica with an older stamp is stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct GenerationStamp(pub u64);

/// A block as (id, generation stamp, length).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Block {
    pub id: BlockId,
    pub gs: GenerationStamp,
    pub num_bytes: u64,
}

impl Block {
    pub fn new(id: u64, gs: u64, num_bytes: u64) -> Self {
        Block {
            id: BlockId(id),
            gs: GenerationStamp(gs),
            num_bytes,
        }
    }
}

impl fmt::Display for BlockId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "blk_{}", self.0)
    }
}

impl fmt::Display for Block {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "blk_{}_{} ({} bytes)",
            self.id.0, self.gs.0, self.num_bytes
        )
    }
}

impl From<&pb::ExtendedBlock> for Block {
    fn from(b: &pb::ExtendedBlock) -> Self {
        Block::new(b.block_id, b.generation_stamp, b.num_bytes)
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

/// The block of a request, which must be present.
pub(crate) fn required_block(b: Option<&pb::ExtendedBlock>) -> crate::Result<Block> {
    b.map(Block::from)
        .ok_or_else(|| crate::Error::Invalid("request has no block".into()))
}

/// Where a replica is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReplicaState {
    /// Complete and immutable (until an append or recovery reopens it).
    Finalized,
    /// Being written (or left behind by a writer that died).
    Rbw,
}

impl From<ReplicaState> for pb::ReplicaState {
    fn from(s: ReplicaState) -> Self {
        match s {
            ReplicaState::Finalized => pb::ReplicaState::Finalized,
            ReplicaState::Rbw => pb::ReplicaState::Rbw,
        }
    }
}

/// A change the NameNode must hear about promptly (an incremental block report).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReplicaEvent {
    /// A replica was finalized here.
    Received(Block),
    /// A replica here is not finalized, and the NameNode may not know it at this stamp: a
    /// stopped write left it, or a delete was refused because it has a newer stamp than the
    /// NameNode named (HDFS's RECEIVING_BLOCK). The NameNode deletes it if its block is gone,
    /// was finished without it or is written by a pipeline that left it behind, and otherwise
    /// records it for pipeline or lease recovery.
    Receiving(Block),
    /// A replica was removed here (deleted on command, replaced, or lost with its volume).
    Deleted(Block),
}

impl From<ReplicaEvent> for pb::ReceivedDeletedBlock {
    fn from(e: ReplicaEvent) -> Self {
        let (block, status) = match e {
            ReplicaEvent::Received(b) => (b, pb::ReceivedDeletedStatus::Received),
            ReplicaEvent::Receiving(b) => (b, pb::ReceivedDeletedStatus::Receiving),
            ReplicaEvent::Deleted(b) => (b, pb::ReceivedDeletedStatus::Deleted),
        };
        pb::ReceivedDeletedBlock {
            block: Some(block.into()),
            status: status as i32,
        }
    }
}

/// A replica found corrupt, for the NameNode (ReportBadBlocks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BadReplica {
    /// On this DataNode: a read, the scanner or a transfer from here found it.
    Local(Block),
    /// On the DataNode (by uuid) a transfer copied it from: its data failed the checksum here
    /// (HDFS's `reportRemoteBadBlock`).
    Remote { block: Block, datanode: String },
}

/// A pipeline stage of a write request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    Create,
    Append,
    Recovery,
    Transfer,
}

impl TryFrom<i32> for Stage {
    type Error = crate::Error;
    fn try_from(v: i32) -> crate::Result<Stage> {
        match pb::Stage::try_from(v) {
            Ok(pb::Stage::Create) => Ok(Stage::Create),
            Ok(pb::Stage::Append) => Ok(Stage::Append),
            Ok(pb::Stage::Recovery) => Ok(Stage::Recovery),
            Ok(pb::Stage::Transfer) => Ok(Stage::Transfer),
            Err(_) => Err(crate::Error::Invalid(format!("unknown stage {v}"))),
        }
    }
}

/// A DataNode as an address to connect to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Peer {
    pub uuid: String,
    pub host: String,
    pub port: u16,
}

impl Peer {
    /// "host:port", as used in `first_bad_link` and for connecting.
    pub fn addr(&self) -> String {
        if self.host.contains(':') && !self.host.starts_with('[') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// The DataNodes a request names (pipeline targets), each checked.
pub(crate) fn peers(ids: &[pb::DatanodeId]) -> crate::Result<Vec<Peer>> {
    ids.iter().map(Peer::try_from).collect()
}

impl TryFrom<&pb::DatanodeId> for Peer {
    type Error = crate::Error;
    fn try_from(d: &pb::DatanodeId) -> crate::Result<Peer> {
        let port = u16::try_from(d.xfer_port)
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| {
                crate::Error::Invalid(format!("datanode {} has bad port {}", d.uuid, d.xfer_port))
            })?;
        if d.host.is_empty() {
            return Err(crate::Error::Invalid(format!(
                "datanode {} has no host",
                d.uuid
            )));
        }
        Ok(Peer {
            uuid: d.uuid.clone(),
            host: d.host.clone(),
            port,
        })
    }
}

impl From<&Peer> for pb::DatanodeId {
    fn from(p: &Peer) -> Self {
        pb::DatanodeId {
            uuid: p.uuid.clone(),
            host: p.host.clone(),
            xfer_port: u32::from(p.port),
        }
    }
}
