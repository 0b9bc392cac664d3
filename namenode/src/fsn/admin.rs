//! Cluster figures and administration: stats, DataNode reports, fsck, safe mode, decommission.

use std::time::Instant;

use dfs_proto::path::DfsPath;

use super::*;

impl FsState {
    pub fn stats(&self) -> Stats {
        let mut s = Stats {
            under_replicated: self.repl_stats.under_replicated,
            corrupt_blocks: self.repl_stats.corrupt_blocks,
            missing_blocks: self.repl_stats.missing_blocks,
            files: self.ns.num_files(),
            directories: self.ns.num_dirs(),
            blocks: self.ns.num_blocks(),
            safe_mode: self.safemode.is_on(),
            pending_replications: self.repl.len() as u64,
            ..Stats::default()
        };
        for d in self.dns.iter() {
            if d.alive {
                s.live_datanodes += 1;
                // Saturating: these are DataNodes' numbers, and a panic here, under the
                // namespace lock, would poison it for every later RPC.
                s.capacity = s.capacity.saturating_add(d.storage.capacity);
                s.dfs_used = s.dfs_used.saturating_add(d.storage.dfs_used);
                s.remaining = s.remaining.saturating_add(d.storage.remaining);
            } else {
                s.dead_datanodes += 1;
            }
        }
        s
    }

    /// Every DataNode; a draining one with how many of its blocks still wait for copies.
    pub fn datanode_report(&self, now: Instant) -> Vec<DatanodeInfo> {
        let normal_nodes = self.dns.iter().filter(|d| d.writable()).count();
        self.dns
            .iter()
            .filter_map(|d| {
                let mut info = self.dn_info(&d.id.uuid, now)?;
                if d.admin == AdminState::DecommissionInProgress {
                    info.blocks_to_drain = self
                        .blocks
                        .node_blocks(&d.id.uuid)
                        .into_iter()
                        .filter(|b| !self.block_drained(&d.id.uuid, *b, normal_nodes))
                        .count() as u64;
                }
                Some(info)
            })
            .collect()
    }

    /// Whether block `bid` no longer needs the draining DataNode `uuid`: it is not part of a
    /// file any more, or it is complete with its expected number of good replicas on normal
    /// DataNodes (or as many as there are, `normal_nodes`). The decommission check of the
    /// replication monitor waits for exactly this on every block of the node.
    pub(crate) fn block_drained(&self, uuid: &str, bid: BlockId, normal_nodes: usize) -> bool {
        let Some((_, f, idx)) = self.ns.block_file(bid) else {
            return true;
        };
        if !f.block_complete(idx) {
            return false;
        }
        let b = f.blocks[idx];
        let live = self
            .blocks
            .replicas(bid)
            .filter(|(u, r)| {
                *u != uuid
                    && health(r, &b, true) == Health::Good
                    && self.dns.get(u).is_some_and(|d| d.writable())
            })
            .count();
        live >= (f.replication as usize).min(normal_nodes)
    }

    pub fn fsck(&mut self, c: &Caller, path: &DfsPath) -> Result<FsckReport> {
        let walk = self.entry_walk(c, path)?;
        if !walk.exists() {
            return Err(Error::NotFound(path.to_string()));
        }
        let id = walk.last();
        let mut report = FsckReport::default();
        for i in self.ns.subtree(id) {
            let Some(inode) = self.ns.inode(i) else {
                continue;
            };
            let Some(f) = inode.file() else {
                report.directories += 1;
                continue;
            };
            let mut blocks = Vec::new();
            for (idx, b) in f.blocks.iter().enumerate() {
                let complete = f.block_complete(idx);
                // Judged as the replication monitor judges them: a replica not yet finalized is
                // no location yet, and one with an older stamp counts no more than a corrupt one
                // (HDFS reports both as corrupt until they are deleted).
                let replicas = self
                    .blocks
                    .replicas(b.id)
                    .filter_map(|(u, r)| {
                        let d = self.dns.get(u)?;
                        let h = health(r, b, complete);
                        (h != Health::Unfinalized).then(|| FsckReplica {
                            datanode: d.id.clone(),
                            alive: d.alive,
                            corrupt: matches!(h, Health::Corrupt | Health::Stale),
                            decommissioning: d.admin != AdminState::Normal,
                        })
                    })
                    .collect();
                blocks.push(FsckBlock {
                    block: *b,
                    replicas,
                    expected_replication: f.replication,
                });
            }
            report.files.push(FsckFile {
                path: self.ns.path_of(i).to_string(),
                length: f.length(),
                replication: f.replication,
                under_construction: f.under_construction(),
                blocks,
            });
        }
        Ok(report)
    }

    pub fn safe_mode(
        &mut self,
        c: &Caller,
        action: SafeModeAction,
        now: Now,
    ) -> Result<(bool, String)> {
        match action {
            SafeModeAction::Get => {}
            SafeModeAction::Enter | SafeModeAction::Leave => {
                if !self.checker.is_superuser(c) {
                    return Err(Error::PermissionDenied(format!(
                        "user={} is not the superuser: only {} may change safe mode",
                        c.user, self.cfg.superuser
                    )));
                }
                if action == SafeModeAction::Enter {
                    self.safemode.enter_manual();
                    tracing::warn!(user = %c.user, "safe mode entered manually");
                } else {
                    self.safemode.leave();
                    tracing::info!(user = %c.user, "safe mode left manually");
                }
            }
        }
        Ok((self.safemode.is_on(), self.safemode.status(now.at)))
    }

    pub fn decommission(&mut self, c: &Caller, name: &str) -> Result<()> {
        if !self.checker.is_superuser(c) {
            return Err(Error::PermissionDenied(format!(
                "user={} is not the superuser: only {} may decommission datanodes",
                c.user, self.cfg.superuser
            )));
        }
        let uuid = self
            .dns
            .find(name)
            .map(|d| d.id.uuid.clone())
            .ok_or_else(|| Error::NotFound(format!("datanode {name}")))?;
        if let Some(d) = self.dns.get_mut(&uuid) {
            if d.admin == AdminState::Normal {
                d.admin = AdminState::DecommissionInProgress;
                tracing::info!(datanode = %name, "decommission started");
            }
        }
        Ok(())
    }
}
