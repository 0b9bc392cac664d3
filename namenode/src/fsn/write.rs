//! The write path: append, block allocation, completion, hsync and pipeline updates.

use std::collections::HashSet;

use dfs_proto::path::DfsPath;

use super::*;

/// What AddBlock asks.
#[derive(Debug, Clone, Copy)]
pub struct BlockRequest<'a> {
    pub path: &'a DfsPath,
    pub client: &'a str,
    /// The block just finished, with its final length.
    pub previous: Option<Block>,
    /// DataNodes the client could not reach.
    pub exclude: &'a HashSet<String>,
    /// The inode the writer writes (0: by path).
    pub file_id: u64,
    pub client_host: &'a str,
    /// A log block (see ARCHITECTURE.md, "Writing anywhere").
    pub log: bool,
}

/// What CommitExtents asks.
#[derive(Debug, Clone)]
pub struct CommitRequest<'a> {
    pub path: &'a DfsPath,
    pub client: &'a str,
    pub file_id: u64,
    /// The file's log block under construction, at the length every replica acknowledged.
    pub block: Block,
    pub extents: Vec<Extent>,
    pub length: u64,
    /// Whether the writer asks for compaction's next step.
    pub compact: bool,
}

impl FsState {
    /// Refuses to let `client` take over a file under construction by someone else. When the
    /// holder's soft limit has passed, recovery starts and the caller is told to retry.
    fn check_not_being_written(
        &mut self,
        id: InodeId,
        path: &DfsPath,
        client: &str,
        now: Now,
    ) -> Result<()> {
        let Some(holder) = self.file(id, path)?.client.clone() else {
            return Ok(());
        };
        if holder == RECOVERY_HOLDER {
            return Err(Error::LeaseConflict(format!(
                "file {path} is being recovered by the NameNode; retry later"
            )));
        }
        if holder != client
            && self
                .leases
                .expired(&holder, now.at, self.cfg.lease_soft_limit)
        {
            self.recover_lease_internal(id, now)?;
            return Err(Error::LeaseConflict(format!(
                "file {path} was being written by client {holder}, whose lease expired; recovery started, retry later"
            )));
        }
        Err(Error::LeaseConflict(format!(
            "file {path} is being written by client {holder}"
        )))
    }

    pub fn append(
        &mut self,
        c: &Caller,
        path: &DfsPath,
        client: &str,
        now: Now,
    ) -> Result<(Option<LocatedBlock>, FileStatus)> {
        self.check_writable("append")?;
        if client.is_empty() {
            return Err(inval("client_name is required"));
        }
        let id = self.target(c, path)?;
        let f = self.file(id, path)?.clone();
        self.checker.check_access(&self.ns, c, id, WRITE)?;
        self.check_not_being_written(id, path, client, now)?;
        let path = DfsPath::inode(id.0);
        self.log(Op::Reopen {
            path: path.clone(),
            client_name: client.to_string(),
            mtime_ms: now.ms,
        })?;
        self.leases.add(client, id, now.at);
        self.leases.hold(client, id, now.at);
        if !self.checker.is_superuser(c) {
            self.drop_privileges(id, now)?;
        }
        let mut last_block = None;
        if let Some((last, tail)) = reopenable(&f) {
            // The replicas that hold the current bytes, judged before the stamp moves.
            let holders: Vec<String> = self
                .blocks
                .replicas(last.id)
                .filter(|(u, r)| self.dns.is_alive(u) && health(r, &last, true) == Health::Good)
                .map(|(u, _)| u.to_string())
                .collect();
            let gs = self.bump_gen_stamp()?;
            let mut blocks = f.blocks.clone();
            let reopened = Block { gs, ..last };
            if let Some(b) = blocks.last_mut() {
                *b = reopened;
            }
            self.log(Op::UpdateBlocks {
                path: path.clone(),
                blocks,
            })?;
            self.uc_targets.insert(last.id, holders.clone());
            last_block = Some(LocatedBlock {
                block: reopened,
                offset: tail.off,
                locations: self.infos(&holders, now.at),
                corrupt: false,
                under_construction: true,
                block_offset: tail.block_off,
                length: tail.len,
            });
        }
        let st = self
            .ns
            .status(id)
            .ok_or_else(|| Error::Internal("appended file vanished".into()))?;
        Ok((last_block, st))
    }

    pub fn add_block(&mut self, req: &BlockRequest, now: Now) -> Result<LocatedBlock> {
        let BlockRequest {
            path,
            client,
            previous,
            exclude,
            file_id,
            client_host,
            log,
        } = *req;
        self.check_writable("allocate blocks")?;
        let (id, path) = self.resolve_file(path, file_id)?;
        self.check_holder(id, &path, client)?;
        self.leases.renew(client, now.at);
        let f = self.file(id, &path)?.clone();
        let n = f.blocks.len();
        if let Some(last) = f.blocks.last() {
            // A retried AddBlock whose answer was lost: hand back the same, still empty block.
            let prev_matches = match previous {
                None => n == 1,
                Some(p) => n >= 2 && f.blocks[n - 2].id == p.id,
            };
            if prev_matches && last.num_bytes == 0 && self.blocks.num_replicas(last.id) == 0 {
                let offset = f.length();
                let last = *last;
                return Ok(self.locate(last, offset, false, client_host, now.at));
            }
        }
        let mut final_prev = None;
        if let (None, Some(last)) = (previous, f.blocks.last()) {
            // Only a reopened file whose last block was not reopened (full, or cut by a
            // truncation) may start a block without naming the previous one; otherwise the
            // previous block's final length would be lost.
            if reopenable(&f).is_some_and(|(b, _)| b.id == last.id) {
                return Err(inval(format!(
                    "AddBlock for {path} must name the previous block {}: it is still being written",
                    last.id
                )));
            }
        }
        if let Some(p) = previous {
            match f.blocks.last() {
                Some(last) if last.id == p.id => {
                    if p.gs != last.gs {
                        return Err(inval(format!(
                            "previous block {} has generation stamp {} but the NameNode has {}",
                            p.id, p.gs.0, last.gs.0
                        )));
                    }
                    if p.num_bytes > f.block_size {
                        return Err(inval(format!(
                            "previous block {} is {} bytes, more than the block size {}",
                            p.id, p.num_bytes, f.block_size
                        )));
                    }
                    final_prev = Some(p);
                }
                _ => {
                    return Err(inval(format!(
                        "previous block {} is not the last block of {path}",
                        p.id
                    )))
                }
            }
        }
        let targets = self.choose(
            f.replication as usize,
            Some(client_host),
            exclude,
            f.block_size,
        );
        if targets.is_empty() {
            return Err(self.no_targets(f.replication as usize, exclude, f.block_size));
        }
        let block = Block {
            id: self.ns.next_block_id(),
            gs: self.ns.gen_stamp(),
            num_bytes: 0,
        };
        self.log(Op::AddBlock {
            path: path.clone(),
            previous: final_prev,
            block,
            mtime_ms: now.ms,
            log,
        })?;
        let offset = self.file(id, &path)?.length();
        self.uc_targets.insert(block.id, targets.clone());
        Ok(LocatedBlock {
            block,
            offset,
            locations: self.infos(&targets, now.at),
            corrupt: false,
            under_construction: true,
            block_offset: 0,
            length: 0,
        })
    }

    pub fn abandon_block(
        &mut self,
        path: &DfsPath,
        client: &str,
        block: Block,
        file_id: u64,
    ) -> Result<()> {
        self.check_writable("abandon blocks")?;
        let (id, path) = self.resolve_file(path, file_id)?;
        self.check_holder(id, &path, client)?;
        let f = self.file(id, &path)?;
        match f.blocks.iter().position(|b| b.id == block.id) {
            None => Ok(()), // already abandoned: a retry
            Some(i) if i + 1 == f.blocks.len() => {
                self.log(Op::AbandonBlock {
                    path,
                    block_id: block.id,
                })?;
                Ok(())
            }
            Some(_) => Err(inval(format!(
                "{} is not the last block of {path}",
                block.id
            ))),
        }
    }

    pub fn complete(
        &mut self,
        path: &DfsPath,
        client: &str,
        last: Option<Block>,
        file_id: u64,
        now: Now,
    ) -> Result<bool> {
        self.check_writable("complete files")?;
        let (id, path) = self.resolve_file(path, file_id)?;
        let f = self.file(id, &path)?.clone();
        if !f.under_construction() {
            // A retried Complete whose answer was lost.
            let same = match (last, f.blocks.last()) {
                (None, None) => true,
                (Some(l), Some(b)) => l.id == b.id && l.num_bytes == b.num_bytes,
                _ => false,
            };
            if same {
                return Ok(true);
            }
            return Err(Error::LeaseExpired(format!(
                "no lease on {path}: the file is not open for writing (closed or recovered)"
            )));
        }
        self.check_holder(id, &path, client)?;
        self.leases.renew(client, now.at);
        let mut blocks = f.blocks.clone();
        if let Some(l) = last {
            match blocks.last_mut() {
                Some(b) if b.id == l.id => {
                    if l.gs < b.gs || l.gs > self.ns.gen_stamp() {
                        return Err(inval(format!(
                            "last block {} has generation stamp {}, the NameNode has {}",
                            l.id, l.gs.0, b.gs.0
                        )));
                    }
                    if l.num_bytes > f.block_size {
                        return Err(inval(format!(
                            "last block {} is longer than the block size",
                            l.id
                        )));
                    }
                    *b = l;
                }
                _ => return Err(inval(format!("{} is not the last block of {path}", l.id))),
            }
        }
        if let Some(b) = blocks.last() {
            let finalized = self
                .blocks
                .replicas(b.id)
                .filter(|(_, r)| r.finalized && r.gs == b.gs)
                .count();
            if finalized == 0 {
                return Ok(false); // the client retries once a DataNode reported the replica
            }
        }
        let last_id = blocks.last().map(|b| b.id);
        // POSIX times change with writes, not with closing: a file written in this session has
        // blocks the NameNode did not know as they end, one opened and closed untouched keeps
        // its times.
        let written = blocks != f.blocks;
        self.log(Op::Close {
            path,
            blocks,
            mtime_ms: if written { now.ms } else { 0 },
        })?;
        self.leases.remove(id);
        if let Some(b) = last_id {
            self.uc_targets.remove(&b);
        }
        Ok(true)
    }

    /// Lays a writer's extents over its file's map (ARCHITECTURE.md, "Writing anywhere"); returns,
    /// when the writer asks, the file ranges it should copy to compact the file
    /// ([`FileMeta::compaction`]).
    pub fn commit_extents(&mut self, req: CommitRequest, now: Now) -> Result<Vec<(u64, u64)>> {
        self.check_writable("commit writes")?;
        let (id, path) = self.resolve_file(req.path, req.file_id)?;
        self.check_holder(id, &path, req.client)?;
        self.leases.renew(req.client, now.at);
        let f = self.file(id, &path)?;
        let b = req.block;
        match f.blocks.last() {
            Some(last) if last.id == b.id && f.is_log_block(b.id) => {
                if b.gs != last.gs {
                    return Err(inval(format!(
                        "{} has generation stamp {} but the NameNode has {}",
                        b.id, b.gs.0, last.gs.0
                    )));
                }
                if b.num_bytes > f.block_size {
                    return Err(inval(format!("{} is longer than the block size", b.id)));
                }
            }
            _ => {
                return Err(inval(format!(
                    "{} is not the log block {path} is being written to",
                    b.id
                )))
            }
        }
        if !req.extents.is_empty() || req.length != f.length() {
            // (Nothing placed otherwise: the block's length matters only through extents.)
            self.log(Op::CommitExtents {
                path: path.clone(),
                block: b,
                extents: req.extents,
                length: req.length,
                mtime_ms: now.ms,
            })?;
        }
        if !req.compact {
            return Ok(Vec::new());
        }
        Ok(self.file(id, &path)?.compaction(Some(b.id)))
    }

    pub fn fsync(
        &mut self,
        path: &DfsPath,
        client: &str,
        last_block_length: u64,
        file_id: u64,
        now: Now,
    ) -> Result<()> {
        self.check_writable("fsync")?;
        let (id, path) = self.resolve_file(path, file_id)?;
        self.check_holder(id, &path, client)?;
        self.leases.renew(client, now.at);
        let f = self.file(id, &path)?;
        if last_block_length > f.block_size {
            return Err(inval(format!(
                "last block length {last_block_length} exceeds the block size {}",
                f.block_size
            )));
        }
        let mut blocks = f.blocks.clone();
        match blocks.last_mut() {
            Some(b) if b.num_bytes < last_block_length => b.num_bytes = last_block_length,
            _ => return Ok(()),
        }
        self.log(Op::UpdateBlocks { path, blocks })?;
        Ok(())
    }

    /// The file, its path and the index of `block` in it, which must be the last block of a
    /// file under construction by `client`.
    fn uc_last_block(&self, block: BlockId, client: &str) -> Result<(InodeId, DfsPath, FileMeta)> {
        let (id, f, idx) = self
            .ns
            .block_file(block)
            .ok_or_else(|| Error::NotFound(format!("{block} (not part of any file)")))?;
        let path = DfsPath::inode(id.0);
        let f = f.clone();
        self.check_holder(id, &path, client)?;
        if idx + 1 != f.blocks.len() {
            return Err(inval(format!("{block} is not the last block of {path}")));
        }
        Ok((id, path, f))
    }

    pub fn update_block_for_pipeline(
        &mut self,
        block: Block,
        client: &str,
        now: Now,
    ) -> Result<LocatedBlock> {
        self.check_writable("update pipelines")?;
        let (_, _, f) = self.uc_last_block(block.id, client)?;
        let cur = f.blocks[f.blocks.len() - 1];
        let gs = self.bump_gen_stamp()?;
        let offset = f.block_start(cur.id).unwrap_or(f.length());
        let mut located = self.locate(Block { gs, ..cur }, offset, false, "", now.at);
        located.block.num_bytes = cur.num_bytes;
        Ok(located)
    }

    pub fn update_pipeline(
        &mut self,
        client: &str,
        old: Block,
        new: Block,
        new_nodes: &[DatanodeId],
    ) -> Result<()> {
        self.check_writable("update pipelines")?;
        if old.id != new.id {
            return Err(inval(format!(
                "old block {} and new block {} differ",
                old.id, new.id
            )));
        }
        let (_, path, f) = self.uc_last_block(old.id, client)?;
        let cur = f.blocks[f.blocks.len() - 1];
        if new.gs <= cur.gs || new.gs > self.ns.gen_stamp() {
            return Err(inval(format!(
                "new generation stamp {} for {} is not one the NameNode issued (block has {}, latest {})",
                new.gs.0,
                new.id,
                cur.gs.0,
                self.ns.gen_stamp().0
            )));
        }
        if new.num_bytes > f.block_size {
            return Err(inval(format!("{} is longer than the block size", new.id)));
        }
        let mut blocks = f.blocks.clone();
        if let Some(b) = blocks.last_mut() {
            *b = new;
        }
        self.log(Op::UpdateBlocks { path, blocks })?;
        let nodes: Vec<String> = new_nodes
            .iter()
            .filter(|n| self.dns.get(&n.uuid).is_some())
            .map(|n| n.uuid.clone())
            .collect();
        self.drop_left_behind(new.id, &nodes);
        self.uc_targets.insert(new.id, nodes);
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    pub fn get_additional_datanode(
        &mut self,
        path: &DfsPath,
        block: Block,
        existing: &[DatanodeId],
        exclude: &HashSet<String>,
        num_additional: u32,
        client: &str,
        file_id: u64,
        now: Now,
    ) -> Result<LocatedBlock> {
        self.check_writable("add datanodes to a pipeline")?;
        let (id, path) = self.resolve_file(path, file_id)?;
        self.check_holder(id, &path, client)?;
        let f = self.file(id, &path)?.clone();
        let Some(pos) = f.blocks.iter().position(|b| b.id == block.id) else {
            return Err(inval(format!("{} is not a block of {path}", block.id)));
        };
        let offset = f.block_start(f.blocks[pos].id).unwrap_or(f.length());
        let mut excl = exclude.clone();
        excl.extend(existing.iter().map(|d| d.uuid.clone()));
        let n = num_additional.max(1) as usize;
        let added = self.choose(n, None, &excl, f.block_size);
        if added.is_empty() {
            return Err(self.no_targets(n, &excl, f.block_size));
        }
        let mut locations: Vec<DatanodeInfo> = existing
            .iter()
            .map(|d| {
                self.dn_info(&d.uuid, now.at).unwrap_or(DatanodeInfo {
                    id: d.clone(),
                    storage: StorageReport::default(),
                    last_heartbeat_ms_ago: 0,
                    alive: false,
                    admin_state: AdminState::Normal,
                    num_blocks: 0,
                    xceivers: 0,
                    blocks_to_drain: 0,
                })
            })
            .collect();
        locations.extend(self.infos(&added, now.at));
        let targets = self.uc_targets.entry(block.id).or_default();
        for a in &added {
            if !targets.contains(a) {
                targets.push(a.clone());
            }
        }
        Ok(LocatedBlock {
            block,
            offset,
            locations,
            corrupt: false,
            under_construction: true,
            block_offset: 0,
            length: block.num_bytes,
        })
    }
}

/// The last block of `f` if appending continues in it: not full, and the file ends with all of
/// it (a truncation may have cut it; appending then starts a new block).
/// The last block, when appending continues it: it is not full and the file's tail extent (the
/// file's last bytes, up to the block's end) lies in it.
fn reopenable(f: &FileMeta) -> Option<(Block, Extent)> {
    let last = f.blocks.last().copied()?;
    let tail = f.tail_extent().filter(|e| e.block == last.id)?;
    (last.num_bytes < f.block_size).then_some((last, tail))
}
