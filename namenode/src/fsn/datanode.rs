//! DatanodeProtocol: registration, heartbeats, block reports, bad blocks, safe mode counts.

use std::collections::HashSet;
use std::time::Instant;

use super::*;

impl FsState {
    /// Marks the named replicas corrupt (when their stamp matches); unknown ones are ignored, and
    /// so are blocks still being written: a reader racing the writer's rewrite of a partial
    /// chunk's checksum can see a mismatch in a sound replica, and pipeline or lease recovery
    /// settles those replicas anyway.
    pub fn report_bad_blocks(&mut self, bad: &[(Block, Vec<String>)]) {
        for (b, uuids) in bad {
            let complete = self
                .ns
                .block_file(b.id)
                .is_some_and(|(_, f, i)| f.block_complete(i));
            if !complete {
                tracing::info!(block = %b.id, "ignoring a bad-block report on a block being written");
                continue;
            }
            for u in uuids {
                if self.blocks.mark_bad(b.id, u, b.gs) {
                    tracing::warn!(block = %b.id, datanode = %u, "replica reported corrupt");
                    self.repl.source_corrupt(b.id, u);
                }
            }
        }
    }

    // -----------------------------------------------------------------------------------------
    // DatanodeProtocol
    // -----------------------------------------------------------------------------------------

    pub fn register(&mut self, id: DatanodeId, storage: StorageReport, now: Now) -> Result<String> {
        if id.uuid.is_empty() || id.host.is_empty() || id.xfer_port == 0 || id.xfer_port > 65535 {
            return Err(inval(format!(
                "datanode registration needs a uuid, a host and a port (got {:?})",
                id
            )));
        }
        tracing::info!(uuid = %id.uuid, addr = %id.addr(), "datanode registered");
        let uuid = id.uuid.clone();
        for stale in self.dns.register(id, storage, now.at) {
            tracing::info!(old = %stale, new = %uuid, "datanode replaced at the same address");
            self.blocks.remove_node(&stale);
            self.repl.forget_node(&stale);
        }
        Ok(self.cluster_id.clone())
    }

    /// Returns the commands for this DataNode, or `None` when it must re-register.
    pub fn heartbeat(
        &mut self,
        uuid: &str,
        storage: StorageReport,
        xceivers: u32,
        now: Now,
    ) -> Option<Vec<Command>> {
        self.dns.heartbeat(uuid, storage, xceivers, now.at)?;
        if self.safemode.is_on() {
            return Some(Vec::new()); // nothing is deleted or copied in safe mode
        }
        Some(self.dns.drain_commands(uuid))
    }

    fn check_dn(&self, uuid: &str) -> Result<()> {
        if self.dns.is_alive(uuid) {
            Ok(())
        } else {
            Err(Error::UnknownDatanode(uuid.to_string()))
        }
    }

    pub fn block_report(&mut self, uuid: &str, reports: &[ReplicaReport], now: Now) -> Result<()> {
        self.check_dn(uuid)?;
        let before = self.blocks.node_blocks(uuid);
        let mut seen = HashSet::with_capacity(reports.len());
        for r in reports {
            seen.insert(r.block.id);
            self.process_replica(uuid, r.block, r.finalized);
        }
        for gone in before.difference(&seen) {
            self.blocks.remove(*gone, uuid);
        }
        tracing::debug!(datanode = %uuid, replicas = reports.len(), "block report processed");
        self.update_safemode(now.at);
        Ok(())
    }

    pub fn block_received_and_deleted(
        &mut self,
        uuid: &str,
        items: &[ReceivedDeleted],
        now: Now,
    ) -> Result<()> {
        self.check_dn(uuid)?;
        for item in items {
            match *item {
                ReceivedDeleted::Received(b) => {
                    // The block placed here is written: it no longer holds a block's worth of
                    // space (the next heartbeat counts what it really takes).
                    if let Some(d) = self.dns.get_mut(uuid) {
                        d.scheduled = d.scheduled.saturating_sub(1);
                    }
                    self.process_replica(uuid, b, true)
                }
                ReceivedDeleted::Receiving(b) => self.receiving(uuid, b),
                ReceivedDeleted::Deleted(b) => {
                    self.blocks.remove(b.id, uuid);
                }
            }
        }
        self.update_safemode(now.at);
        Ok(())
    }

    /// A replica a stopped write left unfinished: deleted if its block is gone, was finished at
    /// a newer stamp without it, or is being written by a pipeline that left this DataNode
    /// behind; recorded for recovery otherwise. A report older than the record (overtaken by a
    /// recovery's commit or a full report, or resent) changes nothing.
    fn receiving(&mut self, uuid: &str, b: Block) {
        let behind = self
            .blocks
            .replica(b.id, uuid)
            .is_some_and(|r| r.gs > b.gs || (r.gs == b.gs && r.finalized));
        if behind {
            return;
        }
        let left_behind = self
            .ns
            .block_file(b.id)
            .is_some_and(|(_, f, i)| !f.block_complete(i) && b.gs < f.blocks[i].gs)
            && self
                .uc_targets
                .get(&b.id)
                .is_some_and(|t| !t.iter().any(|u| u == uuid));
        if left_behind {
            self.invalidate(uuid, b);
        } else {
            self.process_replica(uuid, b, false);
        }
    }

    /// Forgets and deletes the replicas of a block being written that are not on its new
    /// pipeline `nodes` (HDFS drops them from the block's expected locations): they are at an
    /// older stamp that nothing will read again, and a record of them would count as a corrupt
    /// replica once the block is complete.
    pub(crate) fn drop_left_behind(&mut self, id: BlockId, nodes: &[String]) {
        let left: Vec<(String, Replica)> = self
            .blocks
            .replicas(id)
            .filter(|(u, _)| !nodes.iter().any(|n| n == u))
            .map(|(u, r)| (u.to_string(), *r))
            .collect();
        for (u, r) in left {
            let b = Block {
                id,
                gs: r.gs,
                num_bytes: r.num_bytes,
            };
            self.invalidate(&u, b);
        }
    }

    /// Forgets the replica of `b` on `uuid` and tells that DataNode to delete it (it keeps one
    /// with a newer stamp than `b`'s).
    fn invalidate(&mut self, uuid: &str, b: Block) {
        self.blocks.remove(b.id, uuid);
        self.dns.queue_delete(uuid, b);
    }

    /// Judges one reported replica: unknown → delete; stale stamp on a complete block →
    /// delete; otherwise record it (its health is judged on demand).
    fn process_replica(&mut self, uuid: &str, b: Block, finalized: bool) {
        let Some((_, f, idx)) = self.ns.block_file(b.id) else {
            self.invalidate(uuid, b);
            return;
        };
        let cur = f.blocks[idx];
        let complete = f.block_complete(idx);
        if complete && b.gs < cur.gs {
            self.invalidate(uuid, b);
            return;
        }
        let r = Replica {
            gs: b.gs,
            num_bytes: b.num_bytes,
            finalized,
            reported_bad: false,
        };
        self.blocks.add(b.id, uuid, r);
        if finalized {
            self.repl.target_reported(b.id, uuid);
        }
    }

    /// Bad replicas reported by the DataNode `uuid`: its own, or (HDFS's reportRemoteBadBlock)
    /// those of a DataNode whose data failed the checksum while it copied them.
    pub fn dn_report_bad_blocks(&mut self, uuid: &str, bad: &[(Block, String)]) -> Result<()> {
        self.check_dn(uuid)?;
        let bad: Vec<(Block, Vec<String>)> = bad
            .iter()
            .map(|(b, holder)| (*b, vec![holder.clone()]))
            .collect();
        self.report_bad_blocks(&bad);
        Ok(())
    }

    /// Feeds safe mode with the current report counts (only while automatic safe mode waits:
    /// the count is a full scan).
    pub(crate) fn update_safemode(&mut self, now: Instant) {
        if !self.safemode.is_auto() {
            return;
        }
        let mut total = 0u64;
        let mut reported = 0u64;
        for (bid, _) in self.ns.blocks() {
            let Some((_, f, idx)) = self.ns.block_file(bid) else {
                continue;
            };
            if !f.block_complete(idx) {
                continue;
            }
            total += 1;
            let b = f.blocks[idx];
            if self
                .blocks
                .replicas(bid)
                .any(|(_, r)| health(r, &b, true) == Health::Good)
            {
                reported += 1;
            }
        }
        if self.safemode.update(reported, total, now) {
            tracing::info!(reported, total, "leaving safe mode");
        }
    }
}
