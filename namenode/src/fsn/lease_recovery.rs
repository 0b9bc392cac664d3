//! Leases: renewal, recovery of files whose writer died, and the lease monitor.

use std::time::Duration;

use dfs_proto::path::DfsPath;

use super::*;

impl FsState {
    /// RecoverLease: true when the file is closed on return.
    pub fn recover_lease(
        &mut self,
        c: &Caller,
        path: &DfsPath,
        client: &str,
        now: Now,
    ) -> Result<bool> {
        self.check_writable("recover leases")?;
        let id = self.target(c, path)?;
        let f = self.file(id, path)?;
        if !f.under_construction() {
            return Ok(true);
        }
        let _ = client;
        self.checker.check_access(&self.ns, c, id, WRITE)?;
        self.recover_lease_internal(id, now)
    }

    /// Starts (or restarts) lease recovery of a file under construction. Returns true when the
    /// file could be closed right away.
    pub(crate) fn recover_lease_internal(&mut self, id: InodeId, now: Now) -> Result<bool> {
        let path = DfsPath::inode(id.0);
        let Some(f) = self.ns.file(id).cloned() else {
            return Ok(true);
        };
        let Some(holder) = f.client.clone() else {
            return Ok(true);
        };
        if let Some(r) = self.leases.recovery(id) {
            if now.at.saturating_duration_since(r.started) < self.recovery_timeout() {
                return Ok(false); // already under way
            }
        }
        let attempts = self.leases.recovery(id).map_or(0, |r| r.attempts);
        if holder != RECOVERY_HOLDER {
            tracing::info!(%path, %holder, "starting lease recovery");
            self.log(Op::ReassignLease {
                path: path.clone(),
                new_holder: RECOVERY_HOLDER.to_string(),
            })?;
            self.leases.add(RECOVERY_HOLDER, id, now.at);
        }
        let Some(last) = f.blocks.last().copied() else {
            self.close_recovered(id, &path, f.blocks, now)?;
            return Ok(true);
        };
        let reported: Vec<(String, Replica)> = self
            .blocks
            .replicas(last.id)
            .filter(|(u, _)| self.dns.is_alive(u))
            .map(|(u, r)| (u.to_string(), *r))
            .collect();
        let mut candidates: Vec<String> = Vec::new();
        // The longest replica first: it becomes the primary.
        let mut sorted = reported.clone();
        sorted.sort_by_key(|r| std::cmp::Reverse(r.1.num_bytes));
        candidates.extend(sorted.into_iter().map(|(u, _)| u));
        for t in self.uc_targets.get(&last.id).cloned().unwrap_or_default() {
            if self.dns.is_alive(&t) && !candidates.contains(&t) {
                candidates.push(t);
            }
        }
        // Nothing reported and no live DataNode of the expected pipeline known: a NameNode
        // restart forgets the pipeline, and replicas being written (an appended block reopened,
        // hflushed bytes of a new one) are never reported until finalized. So every live
        // DataNode is asked; the primary's search says whether any holds the block (dropping
        // it then is CommitBlockSynchronization's decision, which refuses when bytes of it were
        // acknowledged). Dropping it here without asking lost an appended file's closed bytes.
        if candidates.is_empty() {
            candidates.extend(
                self.dns
                    .iter()
                    .filter(|d| d.alive)
                    .map(|d| d.id.uuid.clone()),
            );
        }
        if candidates.is_empty() {
            if last.num_bytes > 0 {
                return Ok(false); // acknowledged bytes and no DataNode to ask: a later pass does
            }
            // Not a DataNode alive, and no byte of the block ever acknowledged: dropped.
            let mut blocks = f.blocks.clone();
            blocks.pop();
            tracing::info!(%path, block = %last.id, "lease recovery: no live DataNode to ask; dropping the empty last block");
            self.close_recovered(id, &path, blocks, now)?;
            return Ok(true);
        }
        let new_gs = self.bump_gen_stamp()?;
        let replicas: Vec<DatanodeId> = candidates
            .iter()
            .filter_map(|u| self.dns.get(u).map(|d| d.id.clone()))
            .collect();
        self.dns.queue_command(
            &candidates[0],
            Command::Recover {
                block: last,
                new_gs,
                replicas,
            },
        );
        self.leases.start_recovery(
            id,
            Recovery {
                block: last.id,
                new_gs,
                started: now.at,
                attempts: attempts + 1,
            },
        );
        tracing::info!(%path, block = %last.id, primary = %candidates[0], new_gs = new_gs.0, attempt = attempts + 1, "lease recovery: block recovery scheduled");
        Ok(false)
    }

    fn close_recovered(
        &mut self,
        id: InodeId,
        path: &DfsPath,
        blocks: Vec<Block>,
        now: Now,
    ) -> Result<()> {
        let last = self.ns.file(id).and_then(|f| f.blocks.last().map(|b| b.id));
        self.log(Op::Close {
            path: path.clone(),
            blocks,
            mtime_ms: now.ms,
        })?;
        self.leases.remove(id);
        if let Some(b) = last {
            self.uc_targets.remove(&b);
        }
        Ok(())
    }

    pub(crate) fn recovery_timeout(&self) -> Duration {
        (self.cfg.heartbeat_interval * 5).max(Duration::from_secs(10))
    }

    #[allow(clippy::too_many_arguments)]
    pub fn commit_block_synchronization(
        &mut self,
        block: Block,
        new_gs: GenStamp,
        new_length: u64,
        close_file: bool,
        delete_block: bool,
        new_targets: &[DatanodeId],
        now: Now,
    ) -> Result<()> {
        self.check_writable("commit block synchronization")?;
        let Some((id, f, idx)) = self.ns.block_file(block.id) else {
            if delete_block {
                return Ok(());
            }
            return Err(Error::NotFound(format!(
                "{} (not part of any file)",
                block.id
            )));
        };
        let f = f.clone();
        let path = DfsPath::inode(id.0);
        if !f.under_construction() {
            if f.blocks[idx].gs == new_gs {
                return Ok(()); // already committed: a retry
            }
            return Err(Error::LeaseExpired(format!("{path} is already closed")));
        }
        if idx + 1 != f.blocks.len() {
            return Err(inval(format!(
                "{} is not the last block of {path}",
                block.id
            )));
        }
        let cur = f.blocks[idx];
        match self.leases.recovery(id) {
            Some(r) if r.new_gs != new_gs => {
                return Err(inval(format!(
                    "recovery of {} used generation stamp {}, expected {}",
                    block.id, new_gs.0, r.new_gs.0
                )))
            }
            None if new_gs <= cur.gs || new_gs > self.ns.gen_stamp() => {
                return Err(inval(format!(
                    "generation stamp {} for {} was not issued by this NameNode",
                    new_gs.0, block.id
                )))
            }
            _ => {}
        }
        if new_length > f.block_size {
            return Err(inval(format!(
                "{new_length} bytes exceed the block size of {path}"
            )));
        }
        if delete_block && cur.num_bytes > 0 {
            // The NameNode recorded bytes of it as closed or synced: the DataNodes asked do not
            // hold it, but one that is down does. Recovery retries until it is back.
            return Err(Error::NotFound(format!(
                "{} holds {} acknowledged bytes of {path}: not dropped while a DataNode holding it may be down",
                block.id, cur.num_bytes
            )));
        }
        let mut blocks = f.blocks.clone();
        if delete_block {
            blocks.pop();
        } else if let Some(b) = blocks.last_mut() {
            *b = Block {
                id: block.id,
                gs: new_gs,
                num_bytes: new_length,
            };
        }
        if close_file {
            self.log(Op::Close {
                path: path.clone(),
                blocks,
                mtime_ms: now.ms,
            })?;
            self.leases.remove(id);
            self.uc_targets.remove(&block.id);
        } else {
            self.log(Op::UpdateBlocks {
                path: path.clone(),
                blocks,
            })?;
            let r = self.leases.recovery(id).copied();
            if let Some(mut r) = r {
                // Done with this block; a later pass recovers the file if it stays abandoned.
                r.started = now.at;
                self.leases.start_recovery(id, r);
            }
        }
        if !delete_block {
            for t in new_targets {
                if self.dns.is_alive(&t.uuid) {
                    self.blocks.add(
                        block.id,
                        &t.uuid,
                        Replica {
                            gs: new_gs,
                            num_bytes: new_length,
                            finalized: true,
                            reported_bad: false,
                        },
                    );
                }
            }
        }
        tracing::info!(%path, block = %block.id, new_gs = new_gs.0, new_length, close_file, delete_block, "block synchronization committed");
        Ok(())
    }

    // -----------------------------------------------------------------------------------------
    // Lease monitor
    // -----------------------------------------------------------------------------------------

    /// One pass of the lease monitor: recovers leases past the hard limit and retries
    /// recoveries whose primary never reported back.
    pub fn lease_tick(&mut self, now: Now) {
        if self.safemode.is_on() || self.log.check_healthy().is_err() {
            return;
        }
        let mut todo = self.leases.hard_expired(now.at, self.cfg.lease_hard_limit);
        todo.extend(
            self.leases
                .stuck_recoveries(now.at, self.recovery_timeout()),
        );
        // Files handed to the recovery holder whose recovery is not tracked (e.g. after a
        // restart): pick them up again.
        for id in self.leases.files_of(RECOVERY_HOLDER) {
            if self.leases.recovery(id).is_none() {
                todo.push(id);
            }
        }
        todo.sort();
        todo.dedup();
        self.expire_holds(now);
        for id in todo {
            if let Err(e) = self.recover_lease_internal(id, now) {
                tracing::warn!(path = %self.ns.path_of(id), error = %e, "lease recovery failed");
            }
        }
    }
}
