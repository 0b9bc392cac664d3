//! The replication monitor's logic: one synchronous pass over every block, run every
//! `replication_check_interval` by a task in `server.rs`.
//!
//! A pass (1) declares silent DataNodes dead and forgets their replicas, (2) feeds safe mode,
//! (3) forgets pending copies past their timeout so they are retried, (4) judges every complete
//! block: stale replicas are deleted, under-replicated blocks (fewest live replicas first) get a
//! TransferBlockCommand on a source holding a good replica (at most `replication_max_streams`
//! pending per source), over-replicated blocks lose their replica on the fullest DataNode, and
//! corrupt replicas are deleted once enough good ones exist, or earlier when a DataNode holding
//! one is the only place left for the good copy; (5) finishes decommissions whose blocks are all
//! safe elsewhere. No command is queued in safe mode.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use crate::blockmap::{health, Health};
use crate::fsn::{FsState, Now};
use crate::types::{AdminState, Block, BlockId, Command, DatanodeId};

/// The slowest copy a scheduled transfer is granted (a disk busy with clients too) before the
/// NameNode takes it for lost and schedules it again.
const SLOWEST_COPY_BYTES_PER_SEC: f64 = (4 << 20) as f64;

/// A copy the NameNode asked for and has not seen arrive yet.
#[derive(Debug, Clone)]
struct Pending {
    source: String,
    targets: Vec<String>,
    deadline: Instant,
}

/// Copies in flight, so one pass does not schedule the same copy again.
#[derive(Debug, Default)]
pub struct PendingReplications {
    map: HashMap<BlockId, Pending>,
}

impl PendingReplications {
    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn remove(&mut self, id: BlockId) {
        self.map.remove(&id);
    }

    fn add(&mut self, id: BlockId, p: Pending) {
        self.map.insert(id, p);
    }

    fn targets(&self, id: BlockId) -> &[String] {
        self.map.get(&id).map_or(&[], |p| p.targets.as_slice())
    }

    /// The replica a pending copy reads from was reported corrupt: that copy cannot succeed, so
    /// the next pass schedules one from a good source without waiting out the timeout.
    pub fn source_corrupt(&mut self, id: BlockId, uuid: &str) {
        if self.map.get(&id).is_some_and(|p| p.source == uuid) {
            self.map.remove(&id);
        }
    }

    /// A target reported the replica: that copy is done.
    pub fn target_reported(&mut self, id: BlockId, uuid: &str) {
        if let Some(p) = self.map.get_mut(&id) {
            p.targets.retain(|t| t != uuid);
            if p.targets.is_empty() {
                self.map.remove(&id);
            }
        }
    }

    /// A DataNode died or was replaced: copies to or from it will not happen.
    pub fn forget_node(&mut self, uuid: &str) {
        self.map.retain(|_, p| {
            p.targets.retain(|t| t != uuid);
            p.source != uuid && !p.targets.is_empty()
        });
    }

    fn expire(&mut self, now: Instant) -> usize {
        let before = self.map.len();
        self.map.retain(|_, p| p.deadline > now);
        before - self.map.len()
    }

    fn per_source(&self) -> HashMap<String, u32> {
        let mut m = HashMap::new();
        for p in self.map.values() {
            *m.entry(p.source.clone()).or_insert(0) += 1;
        }
        m
    }
}

/// Counters from the last pass (GetStats, the HTTP status).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplStats {
    pub under_replicated: u64,
    pub corrupt_blocks: u64,
    pub missing_blocks: u64,
}

/// One complete block and how its replicas stand.
struct Judged {
    block: Block,
    expected: usize,
    /// Good replicas on live, normal DataNodes: what counts toward replication.
    live: Vec<String>,
    /// Good replicas on decommissioning/decommissioned DataNodes: sources only.
    draining: Vec<String>,
    corrupt: Vec<String>,
    stale: Vec<String>,
    holders: HashSet<String>,
}

impl FsState {
    /// How long a scheduled copy of `bytes` may take before it is scheduled again: the command
    /// waits for the source's next heartbeat, the copy runs, the target reports it. The size
    /// counts, or a big block on a slow disk is copied twice.
    fn pending_timeout(&self, bytes: u64) -> Duration {
        let round_trip = self.cfg.replication_check_interval * 3 + self.cfg.heartbeat_interval * 2;
        round_trip.max(Duration::from_secs(10))
            + Duration::from_secs_f64(bytes as f64 / SLOWEST_COPY_BYTES_PER_SEC)
    }

    /// One monitor pass; returns (and caches) the counters.
    pub fn replication_tick(&mut self, now: Now) -> ReplStats {
        for uuid in self.dns.expire(now.at, self.cfg.dead_interval) {
            let lost = self.blocks.remove_node(&uuid);
            self.repl.forget_node(&uuid);
            tracing::warn!(datanode = %uuid, replicas = lost.len(), "datanode declared dead");
        }
        self.update_safemode(now.at);
        let expired = self.repl.expire(now.at);
        if expired > 0 {
            tracing::info!(
                count = expired,
                "pending replications timed out; rescheduling"
            );
        }
        let judged = self.judge_all();
        let mut stats = ReplStats::default();
        for j in &judged {
            if j.live.len() < j.expected {
                stats.under_replicated += 1;
            }
            if !j.corrupt.is_empty() {
                stats.corrupt_blocks += 1;
            }
            if j.live.is_empty() && j.draining.is_empty() {
                stats.missing_blocks += 1;
            }
        }
        self.repl_stats = stats;
        if self.safemode.is_on() {
            return stats;
        }
        let mut under = Vec::new();
        for j in judged {
            for u in &j.stale {
                self.delete_replica(j.block, u);
            }
            let pending = self.repl.targets(j.block.id).len();
            if j.live.len() > j.expected {
                self.delete_excess(&j);
            } else if j.live.len() >= j.expected {
                for u in &j.corrupt {
                    tracing::info!(block = %j.block.id, datanode = %u, "deleting corrupt replica");
                    self.delete_replica(j.block, u);
                }
            }
            if j.live.len() + pending < j.expected && !(j.live.is_empty() && j.draining.is_empty())
            {
                under.push(j);
            }
        }
        under.sort_by_key(|j| j.live.len());
        self.schedule_copies(under, now);
        self.check_decommissions();
        stats
    }

    /// Judges every complete block that needs attention (or counts in the stats).
    fn judge_all(&self) -> Vec<Judged> {
        let mut out = Vec::new();
        for (bid, _) in self.ns.blocks() {
            let Some((_, f, idx)) = self.ns.block_file(bid) else {
                continue;
            };
            if !f.block_complete(idx) {
                continue;
            }
            let block = f.blocks[idx];
            let mut j = Judged {
                block,
                expected: f.replication as usize,
                live: Vec::new(),
                draining: Vec::new(),
                corrupt: Vec::new(),
                stale: Vec::new(),
                holders: HashSet::new(),
            };
            for (uuid, r) in self.blocks.replicas(bid) {
                j.holders.insert(uuid.to_string());
                let Some(d) = self.dns.get(uuid).filter(|d| d.alive) else {
                    continue;
                };
                match health(r, &block, true) {
                    Health::Good if d.admin == AdminState::Normal => j.live.push(uuid.to_string()),
                    Health::Good => j.draining.push(uuid.to_string()),
                    Health::Corrupt => j.corrupt.push(uuid.to_string()),
                    Health::Stale => j.stale.push(uuid.to_string()),
                    Health::Unfinalized => {}
                }
            }
            let healthy = j.live.len() == j.expected && j.corrupt.is_empty() && j.stale.is_empty();
            if !healthy {
                out.push(j);
            }
        }
        out
    }

    fn delete_replica(&mut self, b: Block, uuid: &str) {
        let gs = self.blocks.replica(b.id, uuid).map_or(b.gs, |r| r.gs);
        self.blocks.remove(b.id, uuid);
        self.dns.queue_delete(uuid, Block { gs, ..b });
    }

    /// Drops the replicas beyond the expected count, from the DataNodes with the least room.
    fn delete_excess(&mut self, j: &Judged) {
        let mut live = j.live.clone();
        live.sort_by_key(|u| self.dns.get(u).map_or(0, |d| d.storage.remaining));
        for u in live.iter().take(j.live.len() - j.expected) {
            tracing::info!(block = %j.block.id, datanode = %u, "deleting excess replica");
            self.delete_replica(j.block, u);
        }
    }

    fn schedule_copies(&mut self, under: Vec<Judged>, now: Now) {
        let max_streams = self.cfg.replication_max_streams.max(1);
        let mut per_source = self.repl.per_source();
        for j in under {
            let pending: Vec<String> = self.repl.targets(j.block.id).to_vec();
            let needed = j.expected - j.live.len() - pending.len();
            // Busy DataNodes are skipped; draining ones are preferred (they serve nothing else).
            let source = j
                .draining
                .iter()
                .chain(j.live.iter())
                .filter(|u| per_source.get(*u).copied().unwrap_or(0) < max_streams)
                .min_by_key(|u| per_source.get(*u).copied().unwrap_or(0))
                .cloned();
            let Some(source) = source else { continue };
            let mut exclude = j.holders.clone();
            exclude.extend(pending.iter().cloned());
            // A DataNode still to be told to delete its replica would refuse the copy.
            exclude.extend(
                self.dns
                    .iter()
                    .filter(|d| d.delete_queued(j.block.id))
                    .map(|d| d.id.uuid.clone()),
            );
            let targets = self.choose(needed, None, &exclude, j.block.num_bytes);
            if targets.len() < needed && !j.live.is_empty() {
                // No other DataNode can take the good copy (a cluster as small as the
                // replication): free the DataNodes holding corrupt replicas, which cannot serve
                // anyway, so a later pass can copy a good replica onto them.
                for u in j.corrupt.iter().take(needed - targets.len()) {
                    tracing::info!(block = %j.block.id, datanode = %u, "deleting corrupt replica to make room for a good copy");
                    self.delete_replica(j.block, u);
                }
            }
            if targets.is_empty() {
                continue;
            }
            let target_ids: Vec<DatanodeId> = targets
                .iter()
                .filter_map(|u| self.dns.get(u).map(|d| d.id.clone()))
                .collect();
            tracing::info!(block = %j.block.id, %source, targets = ?targets, "scheduling re-replication");
            self.dns.queue_command(
                &source,
                Command::Transfer {
                    block: j.block,
                    targets: target_ids,
                },
            );
            *per_source.entry(source.clone()).or_insert(0) += 1;
            let mut all = pending;
            all.extend(targets);
            self.repl.add(
                j.block.id,
                Pending {
                    source,
                    targets: all,
                    deadline: now.at + self.pending_timeout(j.block.num_bytes),
                },
            );
        }
    }

    /// A decommissioning DataNode is done when each of its blocks has its expected number of
    /// good replicas on normal DataNodes (or as many as there are normal DataNodes).
    fn check_decommissions(&mut self) {
        let normal_nodes = self.dns.iter().filter(|d| d.writable()).count();
        let draining: Vec<String> = self
            .dns
            .iter()
            .filter(|d| d.alive && d.admin == AdminState::DecommissionInProgress)
            .map(|d| d.id.uuid.clone())
            .collect();
        for uuid in draining {
            let done = self
                .blocks
                .node_blocks(&uuid)
                .into_iter()
                .all(|bid| self.block_drained(&uuid, bid, normal_nodes));
            if done {
                if let Some(d) = self.dns.get_mut(&uuid) {
                    d.admin = AdminState::Decommissioned;
                    tracing::info!(datanode = %d.id.addr(), "decommission complete");
                }
            }
        }
    }
}
