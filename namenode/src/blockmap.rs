//! Where replicas live: BlockId → DataNode uuid → what that DataNode reported.
//!
//! Pure runtime state, rebuilt from block reports after a restart (never logged). Block metadata
//! (generation stamp, length, whether it is complete, expected replication) lives in the
//! namespace; the health of a replica is judged against it on demand by [`health`], so a replica
//! recorded while the block was being written is re-judged once the block is complete.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::types::{Block, BlockId, GenStamp};

/// What a DataNode last said about one replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Replica {
    pub gs: GenStamp,
    pub num_bytes: u64,
    /// FINALIZED (as opposed to RBW: still being written).
    pub finalized: bool,
    /// A client or DataNode found a checksum error in it. Survives later reports of the same
    /// generation stamp: only deletion clears it.
    pub reported_bad: bool,
}

/// A replica judged against the NameNode's view of the block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Counts toward replication and is served to readers.
    Good,
    /// Same stamp but not finalized yet on a complete block: wait for the DataNode.
    Unfinalized,
    /// An older generation stamp on a complete block: delete it.
    Stale,
    /// Wrong length, newer unknown stamp, or a reported checksum error.
    Corrupt,
}

/// Judges `r` against `block`; `complete` is whether the block is no longer being written.
pub fn health(r: &Replica, block: &Block, complete: bool) -> Health {
    if r.reported_bad {
        return Health::Corrupt;
    }
    if !complete {
        return Health::Good;
    }
    if r.gs < block.gs {
        return Health::Stale;
    }
    if r.gs > block.gs {
        return Health::Corrupt;
    }
    if !r.finalized {
        return Health::Unfinalized;
    }
    if r.num_bytes != block.num_bytes {
        return Health::Corrupt;
    }
    Health::Good
}

/// The replica map.
#[derive(Debug, Default)]
pub struct BlockMap {
    blocks: HashMap<BlockId, BTreeMap<String, Replica>>,
    by_node: HashMap<String, HashSet<BlockId>>,
}

impl BlockMap {
    /// Records (or refreshes) a replica. A reported-bad flag survives a refresh with the same
    /// generation stamp.
    pub fn add(&mut self, id: BlockId, uuid: &str, mut r: Replica) {
        let reps = self.blocks.entry(id).or_default();
        if let Some(old) = reps.get(uuid) {
            if old.reported_bad && old.gs == r.gs {
                r.reported_bad = true;
            }
        }
        reps.insert(uuid.to_string(), r);
        self.by_node.entry(uuid.to_string()).or_default().insert(id);
    }

    pub fn remove(&mut self, id: BlockId, uuid: &str) -> Option<Replica> {
        let reps = self.blocks.get_mut(&id)?;
        let r = reps.remove(uuid);
        if reps.is_empty() {
            self.blocks.remove(&id);
        }
        if let Some(set) = self.by_node.get_mut(uuid) {
            set.remove(&id);
        }
        r
    }

    /// Forgets a block entirely; returns who held it.
    pub fn remove_block(&mut self, id: BlockId) -> Vec<(String, Replica)> {
        let reps = self.blocks.remove(&id).unwrap_or_default();
        for uuid in reps.keys() {
            if let Some(set) = self.by_node.get_mut(uuid) {
                set.remove(&id);
            }
        }
        reps.into_iter().collect()
    }

    /// Forgets every replica of a DataNode (it died); returns the blocks it held.
    pub fn remove_node(&mut self, uuid: &str) -> Vec<BlockId> {
        let ids: Vec<BlockId> = self
            .by_node
            .remove(uuid)
            .unwrap_or_default()
            .into_iter()
            .collect();
        for id in &ids {
            if let Some(reps) = self.blocks.get_mut(id) {
                reps.remove(uuid);
                if reps.is_empty() {
                    self.blocks.remove(id);
                }
            }
        }
        ids
    }

    /// Replicas of a block, by DataNode uuid (sorted, so iteration is deterministic).
    pub fn replicas(&self, id: BlockId) -> impl Iterator<Item = (&str, &Replica)> {
        self.blocks
            .get(&id)
            .into_iter()
            .flat_map(|m| m.iter().map(|(u, r)| (u.as_str(), r)))
    }

    pub fn replica(&self, id: BlockId, uuid: &str) -> Option<&Replica> {
        self.blocks.get(&id)?.get(uuid)
    }

    pub fn num_replicas(&self, id: BlockId) -> usize {
        self.blocks.get(&id).map_or(0, BTreeMap::len)
    }

    /// Blocks a DataNode holds according to the map.
    pub fn node_blocks(&self, uuid: &str) -> HashSet<BlockId> {
        self.by_node.get(uuid).cloned().unwrap_or_default()
    }

    pub fn node_block_count(&self, uuid: &str) -> u64 {
        self.by_node.get(uuid).map_or(0, |s| s.len() as u64)
    }

    /// Flags a replica as corrupt if it exists with this generation stamp; returns whether it did.
    pub fn mark_bad(&mut self, id: BlockId, uuid: &str, gs: GenStamp) -> bool {
        match self.blocks.get_mut(&id).and_then(|m| m.get_mut(uuid)) {
            Some(r) if r.gs == gs => {
                r.reported_bad = true;
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rep(gs: u64, len: u64, fin: bool) -> Replica {
        Replica {
            gs: GenStamp(gs),
            num_bytes: len,
            finalized: fin,
            reported_bad: false,
        }
    }

    #[test]
    fn health_rules() {
        let b = Block {
            id: BlockId(1),
            gs: GenStamp(5),
            num_bytes: 10,
        };
        assert_eq!(health(&rep(5, 10, true), &b, true), Health::Good);
        assert_eq!(health(&rep(4, 10, true), &b, true), Health::Stale);
        assert_eq!(health(&rep(6, 10, true), &b, true), Health::Corrupt);
        assert_eq!(health(&rep(5, 9, true), &b, true), Health::Corrupt);
        assert_eq!(health(&rep(5, 3, false), &b, true), Health::Unfinalized);
        assert_eq!(health(&rep(4, 3, false), &b, false), Health::Good);
        let mut bad = rep(5, 10, true);
        bad.reported_bad = true;
        assert_eq!(health(&bad, &b, true), Health::Corrupt);
    }

    #[test]
    fn add_remove_and_node_index() {
        let mut m = BlockMap::default();
        m.add(BlockId(1), "a", rep(5, 1, true));
        m.add(BlockId(1), "b", rep(5, 1, true));
        m.add(BlockId(2), "a", rep(5, 1, true));
        assert_eq!(m.num_replicas(BlockId(1)), 2);
        assert!(m.mark_bad(BlockId(1), "b", GenStamp(5)));
        assert!(!m.mark_bad(BlockId(1), "b", GenStamp(4)));
        // A refresh with the same stamp keeps the bad flag.
        m.add(BlockId(1), "b", rep(5, 1, true));
        assert!(m.replica(BlockId(1), "b").unwrap().reported_bad);
        let mut dead = m.remove_node("a");
        dead.sort();
        assert_eq!(dead, vec![BlockId(1), BlockId(2)]);
        assert_eq!(m.num_replicas(BlockId(2)), 0);
        assert_eq!(m.remove_block(BlockId(1)).len(), 1);
        assert!(m.node_blocks("b").is_empty());
    }
}
