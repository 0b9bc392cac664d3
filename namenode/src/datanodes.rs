//! The DataNode registry: identity, storage, liveness, admin state and the command queue that
//! rides back on heartbeat replies. Pure: every time is passed in.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use crate::types::{AdminState, Block, BlockId, Command, DatanodeId, StorageReport};

/// Most blocks in one DeleteBlocksCommand (per heartbeat).
pub const MAX_DELETES_PER_HEARTBEAT: usize = 1000;

/// One DataNode as the NameNode sees it.
#[derive(Debug, Clone)]
pub struct Datanode {
    pub id: DatanodeId,
    pub storage: StorageReport,
    pub xceivers: u32,
    pub last_heartbeat: Instant,
    pub alive: bool,
    pub admin: AdminState,
    /// Transfer and recovery commands not yet sent.
    pub commands: VecDeque<Command>,
    /// Replicas to delete, sent in batches of [`MAX_DELETES_PER_HEARTBEAT`].
    pub deletes: VecDeque<Block>,
    /// Blocks placed on this node since its last heartbeat and not yet reported written:
    /// counted against its free space so a burst of writes does not pile onto one node between
    /// heartbeats.
    pub scheduled: u64,
}

impl Datanode {
    /// Usable for new replicas: alive and not being drained.
    pub fn writable(&self) -> bool {
        self.alive && self.admin == AdminState::Normal
    }

    /// Whether a delete of block `id` waits in this DataNode's queue.
    pub fn delete_queued(&self, id: BlockId) -> bool {
        self.deletes.iter().any(|b| b.id == id)
    }

    /// Free space minus what was promised to blocks being written.
    pub fn effective_remaining(&self, block_size: u64) -> u64 {
        self.storage
            .remaining
            .saturating_sub(self.scheduled.saturating_mul(block_size))
    }
}

/// All DataNodes ever registered since this NameNode started (dead ones stay, marked dead).
#[derive(Debug, Default)]
pub struct Datanodes {
    nodes: BTreeMap<String, Datanode>,
}

impl Datanodes {
    /// Adds or refreshes a DataNode. Returns the uuids of other entries at the same address,
    /// which are gone (a DataNode re-formatted its storage); the caller drops their replicas.
    pub fn register(
        &mut self,
        id: DatanodeId,
        storage: StorageReport,
        now: Instant,
    ) -> Vec<String> {
        let addr = id.addr();
        let stale: Vec<String> = self
            .nodes
            .values()
            .filter(|n| n.id.uuid != id.uuid && n.id.addr() == addr)
            .map(|n| n.id.uuid.clone())
            .collect();
        for u in &stale {
            self.nodes.remove(u);
        }
        let admin = self
            .nodes
            .get(&id.uuid)
            .map_or(AdminState::Normal, |n| n.admin);
        self.nodes.insert(
            id.uuid.clone(),
            Datanode {
                id,
                storage,
                xceivers: 0,
                last_heartbeat: now,
                alive: true,
                admin,
                commands: VecDeque::new(),
                deletes: VecDeque::new(),
                scheduled: 0,
            },
        );
        stale
    }

    /// Records a heartbeat. `None` when the DataNode is unknown or was declared dead: it must
    /// register again (and then send a full block report).
    pub fn heartbeat(
        &mut self,
        uuid: &str,
        storage: StorageReport,
        xceivers: u32,
        now: Instant,
    ) -> Option<&mut Datanode> {
        let n = self.nodes.get_mut(uuid)?;
        if !n.alive {
            return None;
        }
        n.storage = storage;
        n.xceivers = xceivers;
        n.last_heartbeat = now;
        n.scheduled = 0;
        Some(n)
    }

    /// Commands for one heartbeat reply: every transfer/recovery plus one batch of deletes.
    pub fn drain_commands(&mut self, uuid: &str) -> Vec<Command> {
        let Some(n) = self.nodes.get_mut(uuid) else {
            return Vec::new();
        };
        let mut out: Vec<Command> = n.commands.drain(..).collect();
        let k = n.deletes.len().min(MAX_DELETES_PER_HEARTBEAT);
        if k > 0 {
            out.push(Command::Delete(n.deletes.drain(..k).collect()));
        }
        out
    }

    /// Marks DataNodes silent for longer than `dead_interval` dead; returns them.
    pub fn expire(&mut self, now: Instant, dead_interval: Duration) -> Vec<String> {
        let mut dead = Vec::new();
        for n in self.nodes.values_mut() {
            if n.alive && now.saturating_duration_since(n.last_heartbeat) > dead_interval {
                n.alive = false;
                n.commands.clear();
                n.deletes.clear();
                dead.push(n.id.uuid.clone());
            }
        }
        dead
    }

    pub fn get(&self, uuid: &str) -> Option<&Datanode> {
        self.nodes.get(uuid)
    }

    pub fn get_mut(&mut self, uuid: &str) -> Option<&mut Datanode> {
        self.nodes.get_mut(uuid)
    }

    pub fn is_alive(&self, uuid: &str) -> bool {
        self.nodes.get(uuid).is_some_and(|n| n.alive)
    }

    /// By uuid or `host:port`.
    pub fn find(&self, name: &str) -> Option<&Datanode> {
        self.nodes
            .get(name)
            .or_else(|| self.nodes.values().find(|n| n.id.addr() == name))
    }

    pub fn iter(&self) -> impl Iterator<Item = &Datanode> {
        self.nodes.values()
    }

    /// Queues a replica deletion. One delete per block is queued; a newer stamp replaces an older
    /// one, since the DataNode refuses to delete a replica newer than the command names, and a
    /// stale delete kept in the queue would hide the one that must happen.
    pub fn queue_delete(&mut self, uuid: &str, block: Block) {
        let Some(n) = self.nodes.get_mut(uuid).filter(|n| n.alive) else {
            return;
        };
        match n.deletes.iter_mut().find(|b| b.id == block.id) {
            Some(queued) => {
                if block.gs > queued.gs {
                    *queued = block;
                }
            }
            None => n.deletes.push_back(block),
        }
    }

    pub fn queue_command(&mut self, uuid: &str, c: Command) {
        if let Some(n) = self.nodes.get_mut(uuid) {
            if n.alive {
                n.commands.push_back(c);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{BlockId, GenStamp};

    fn id(uuid: &str, port: u32) -> DatanodeId {
        DatanodeId {
            uuid: uuid.into(),
            host: "127.0.0.1".into(),
            xfer_port: port,
        }
    }

    #[test]
    fn register_heartbeat_expire() {
        let t0 = Instant::now();
        let mut d = Datanodes::default();
        assert!(d
            .register(id("a", 1), StorageReport::default(), t0)
            .is_empty());
        assert!(d
            .heartbeat(
                "a",
                StorageReport::default(),
                0,
                t0 + Duration::from_secs(1)
            )
            .is_some());
        assert!(d.heartbeat("zz", StorageReport::default(), 0, t0).is_none());
        assert!(d
            .expire(t0 + Duration::from_secs(5), Duration::from_secs(10))
            .is_empty());
        assert_eq!(
            d.expire(t0 + Duration::from_secs(12), Duration::from_secs(10)),
            vec!["a".to_string()]
        );
        // A dead node must re-register.
        assert!(d
            .heartbeat(
                "a",
                StorageReport::default(),
                0,
                t0 + Duration::from_secs(13)
            )
            .is_none());
        d.register(
            id("a", 1),
            StorageReport::default(),
            t0 + Duration::from_secs(13),
        );
        assert!(d.is_alive("a"));
        // Same address, new uuid: the old entry goes.
        assert_eq!(
            d.register(id("b", 1), StorageReport::default(), t0),
            vec!["a".to_string()]
        );
        assert!(d.find("127.0.0.1:1").is_some_and(|n| n.id.uuid == "b"));
    }

    #[test]
    fn deletes_are_batched() {
        let t0 = Instant::now();
        let mut d = Datanodes::default();
        d.register(id("a", 1), StorageReport::default(), t0);
        for i in 0..2500 {
            d.queue_delete(
                "a",
                Block {
                    id: BlockId(i),
                    gs: GenStamp(1),
                    num_bytes: 0,
                },
            );
        }
        let sizes: Vec<usize> = (0..4)
            .map(|_| match d.drain_commands("a").first() {
                Some(Command::Delete(b)) => b.len(),
                _ => 0,
            })
            .collect();
        assert_eq!(sizes, vec![1000, 1000, 500, 0]);
    }

    #[test]
    fn a_queued_delete_takes_the_newest_stamp() {
        let mut d = Datanodes::default();
        d.register(id("a", 1), StorageReport::default(), Instant::now());
        let b = |gs| Block {
            id: BlockId(7),
            gs: GenStamp(gs),
            num_bytes: 0,
        };
        // A stale replica's delete, then the current one's: the DataNode would refuse the first
        // for its newer replica, so only the second may go out.
        d.queue_delete("a", b(4));
        d.queue_delete("a", b(5));
        d.queue_delete("a", b(3));
        assert!(d.get("a").unwrap().delete_queued(BlockId(7)));
        assert_eq!(d.drain_commands("a"), vec![Command::Delete(vec![b(5)])]);
        assert!(!d.get("a").unwrap().delete_queued(BlockId(7)));
    }
}
