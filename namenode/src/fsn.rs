//! [`FsState`]: the NameNode's decisions, synchronous and free of network I/O.
//!
//! Every RPC is one method here, called with the namespace lock held. A mutation validates the
//! request completely, decides every id, stamp and timestamp, then goes through [`FsState::log`]:
//! apply to the namespace, enqueue on the edit log (same critical section, so log order is apply
//! order), and clean up what the op removed (replicas to delete, leases, pending work). The
//! caller awaits durability of the last txid *after* releasing the lock (see `server.rs`).
//!
//! Times come in as [`Now`] so tests can drive leases, heartbeats and safe mode deterministically.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use dfs_proto::path::DfsPath;

use crate::blockmap::{health, BlockMap, Health, Replica};
use crate::datanodes::Datanodes;
use crate::editlog::EditLog;
use crate::error::{Error, Result};
use crate::lease::{Leases, Recovery, RECOVERY_HOLDER};
use crate::namespace::{Applied, FileMeta, Namespace};
use crate::op::Op;
use crate::permission::{Checker, EXECUTE, READ, WRITE};
use crate::placement::{choose_targets, Candidate};
use crate::replication::{PendingReplications, ReplStats};
use crate::safemode::SafeMode;
use crate::types::{
    AdminState, Block, BlockId, Caller, Command, ContentSummary, DatanodeId, DatanodeInfo,
    FileStatus, FsckBlock, FsckFile, FsckReplica, FsckReport, GenStamp, InodeId, LocatedBlock,
    LocatedBlocks, ReceivedDeleted, ReplicaReport, SafeModeAction, Stats, StorageReport,
};
use crate::util::Rng;
use crate::Config;

/// Default replication when a client asks for 0.
pub const DEFAULT_REPLICATION: u32 = 3;
/// Default block size when a client asks for 0 (HDFS's 128 MiB).
pub const DEFAULT_BLOCK_SIZE: u64 = 128 << 20;
/// Mode of a new directory whose request carries none (the client sends its umask'ed mode).
pub const DEFAULT_DIR_PERMISSION: u32 = 0o755;
/// Mode of a new file whose request carries none.
pub const DEFAULT_FILE_PERMISSION: u32 = 0o644;
/// Block sizes must be whole checksum chunks.
pub const BYTES_PER_CHECKSUM: u64 = dfs_proto::checksum::DEFAULT_BYTES_PER_CHECKSUM as u64;

/// The current time, monotonic for intervals and wall-clock for timestamps.
#[derive(Debug, Clone, Copy)]
pub struct Now {
    pub at: Instant,
    pub ms: u64,
}

impl Now {
    pub fn current() -> Now {
        Now {
            at: Instant::now(),
            ms: crate::util::now_ms(),
        }
    }
}

/// All NameNode state behind the one namespace lock.
pub struct FsState {
    pub(crate) cfg: Config,
    pub(crate) ns: Namespace,
    pub(crate) blocks: BlockMap,
    pub(crate) dns: Datanodes,
    pub(crate) leases: Leases,
    pub(crate) safemode: SafeMode,
    pub(crate) repl: PendingReplications,
    pub(crate) log: EditLog,
    pub(crate) cluster_id: String,
    pub(crate) checker: Checker,
    /// Expected pipeline of each block being written (runtime only: after a restart the
    /// replicas' own reports take over).
    pub(crate) uc_targets: HashMap<BlockId, Vec<String>>,
    /// Replication counters from the last monitor pass.
    pub(crate) repl_stats: ReplStats,
    pub(crate) rng: Rng,
}

fn inval(m: impl Into<String>) -> Error {
    Error::InvalidArgument(m.into())
}

impl FsState {
    /// Wraps a loaded namespace: leases come back for every file under construction (renewed
    /// now, as HDFS does), the block map starts empty, safe mode waits for reports.
    pub fn new(cfg: Config, ns: Namespace, cluster_id: String, log: EditLog, now: Now) -> FsState {
        let mut leases = Leases::default();
        for (inode, holder) in ns.files_under_construction() {
            leases.add(&holder, inode, now.at);
        }
        let complete = count_complete_blocks(&ns);
        let safemode = SafeMode::new(complete, cfg.safemode_threshold, cfg.safemode_extension);
        let checker = Checker {
            enabled: cfg.permissions_enabled,
            superuser: cfg.superuser.clone(),
            supergroup: cfg.supergroup.clone(),
        };
        FsState {
            cfg,
            ns,
            blocks: BlockMap::default(),
            dns: Datanodes::default(),
            leases,
            safemode,
            repl: PendingReplications::default(),
            log,
            cluster_id,
            checker,
            uc_targets: HashMap::new(),
            repl_stats: ReplStats::default(),
            rng: Rng::new(crate::util::random_u64()),
        }
    }

    pub fn cluster_id(&self) -> &str {
        &self.cluster_id
    }

    // -----------------------------------------------------------------------------------------
    // Plumbing
    // -----------------------------------------------------------------------------------------

    fn check_writable(&self, what: &str) -> Result<()> {
        self.log.check_healthy()?;
        if self.safemode.is_on() {
            return Err(Error::SafeMode(format!(
                "cannot {what}: {}",
                self.safemode.status(Instant::now())
            )));
        }
        Ok(())
    }

    /// Applies `op`, enqueues it on the edit log, and cleans up what it removed.
    pub(crate) fn log(&mut self, op: Op) -> Result<Applied> {
        self.log.check_healthy()?;
        let applied = self.ns.apply(&op)?;
        self.log.append(&op)?;
        self.cleanup(&applied);
        Ok(applied)
    }

    fn cleanup(&mut self, applied: &Applied) {
        for b in &applied.removed_blocks {
            for (uuid, r) in self.blocks.remove_block(b.id) {
                self.dns.queue_delete(
                    &uuid,
                    Block {
                        id: b.id,
                        gs: r.gs,
                        num_bytes: r.num_bytes,
                    },
                );
            }
            self.repl.remove(b.id);
            self.uc_targets.remove(&b.id);
        }
        for f in &applied.removed_files {
            self.leases.remove(*f);
        }
    }

    fn file(&self, id: InodeId, path: &DfsPath) -> Result<&FileMeta> {
        self.ns
            .file(id)
            .ok_or_else(|| Error::IsADirectory(path.to_string()))
    }

    /// Resolves the file a writer means: by inode id when it sent one (so renaming an open file
    /// does not break its writer), else by path. Returns the inode and its current path.
    fn resolve_file(&self, path: &DfsPath, file_id: u64) -> Result<(InodeId, DfsPath)> {
        if file_id != 0 {
            let id = InodeId(file_id);
            if self.ns.inode(id).is_none() {
                return Err(Error::NotFound(format!(
                    "{path} (inode {file_id} was deleted or replaced)"
                )));
            }
            let cur = self.ns.path_of(id);
            self.file(id, &cur)?;
            return Ok((id, cur));
        }
        let id = self.ns.resolve(path)?;
        self.file(id, path)?;
        Ok((id, path.clone()))
    }

    /// The writer must hold the file's lease.
    fn check_holder(&self, id: InodeId, path: &DfsPath, client: &str) -> Result<()> {
        match self.file(id, path)?.client.as_deref() {
            None => Err(Error::LeaseExpired(format!(
                "no lease on {path}: the file is not open for writing (closed or recovered)"
            ))),
            Some(h) if h == client => Ok(()),
            Some(RECOVERY_HOLDER) => Err(Error::LeaseExpired(format!(
                "lease of {client} on {path} expired; the file is being recovered"
            ))),
            Some(h) => Err(Error::LeaseConflict(format!(
                "file {path} is being written by client {h}"
            ))),
        }
    }

    fn caller_check(&self, c: &Caller, path: &DfsPath) -> Result<InodeId> {
        let walk = self.ns.walk(path)?;
        self.checker.check_traverse(&self.ns, c, &walk)?;
        if walk.missing > 0 {
            return Err(Error::NotFound(path.to_string()));
        }
        Ok(walk.last())
    }

    fn bump_gen_stamp(&mut self) -> Result<GenStamp> {
        let gs = self
            .ns
            .gen_stamp()
            .0
            .checked_add(1)
            .map(GenStamp)
            .ok_or_else(|| {
                Error::Internal("generation stamps are exhausted (a damaged image?)".into())
            })?;
        self.log(Op::SetGenerationStamp { gs })?;
        Ok(gs)
    }

    fn candidates(&self, block_size: u64) -> Vec<Candidate> {
        self.dns
            .iter()
            .filter(|d| d.writable())
            .map(|d| Candidate {
                uuid: d.id.uuid.clone(),
                host: d.id.host.clone(),
                remaining: d.effective_remaining(block_size),
                num_blocks: self.blocks.node_block_count(&d.id.uuid) + d.scheduled,
            })
            .collect()
    }

    /// Placement plus bookkeeping of scheduled blocks.
    pub(crate) fn choose(
        &mut self,
        n: usize,
        client_host: Option<&str>,
        exclude: &HashSet<String>,
        block_size: u64,
    ) -> Vec<String> {
        let cands = self.candidates(block_size);
        let targets = choose_targets(&cands, n, client_host, exclude, block_size, &mut self.rng);
        for t in &targets {
            if let Some(d) = self.dns.get_mut(t) {
                d.scheduled += 1;
            }
        }
        targets
    }

    /// Why placement found no DataNode for a block: `NoSpace` when live DataNodes accepting new
    /// blocks (and not excluded by the client) exist but none has room for one, so the writer
    /// learns that the cluster is full rather than that it is down; `NoLiveDatanodes` otherwise.
    fn no_targets(&self, wanted: usize, exclude: &HashSet<String>, block_size: u64) -> Error {
        let live = self.dns.iter().filter(|d| d.alive).count();
        let writable: Vec<_> = self.dns.iter().filter(|d| d.writable()).collect();
        let open: Vec<_> = writable
            .iter()
            .filter(|d| !exclude.contains(&d.id.uuid))
            .collect();
        if !open.is_empty() {
            let most = open
                .iter()
                .map(|d| d.effective_remaining(block_size))
                .max()
                .unwrap_or(0);
            return Error::NoSpace(format!(
                "no space left: none of the {} live DataNode(s) accepting new blocks has room for a {block_size}-byte block (the most free is {most} bytes); could not place {wanted} replica(s)",
                open.len()
            ));
        }
        let why = if live == 0 {
            "no live DataNodes".to_string()
        } else {
            format!(
                "{live} live DataNode(s), {} accepting new blocks, {} of those excluded by the client",
                writable.len(),
                writable.len() - open.len()
            )
        };
        Error::NoLiveDatanodes(format!("could not place {wanted} replica(s): {why}"))
    }

    pub(crate) fn dn_info(&self, uuid: &str, now: Instant) -> Option<DatanodeInfo> {
        let d = self.dns.get(uuid)?;
        Some(DatanodeInfo {
            id: d.id.clone(),
            storage: d.storage,
            last_heartbeat_ms_ago: now.saturating_duration_since(d.last_heartbeat).as_millis()
                as u64,
            alive: d.alive,
            admin_state: d.admin,
            num_blocks: self.blocks.node_block_count(uuid),
            xceivers: d.xceivers,
            blocks_to_drain: 0,
        })
    }

    fn infos(&self, uuids: &[String], now: Instant) -> Vec<DatanodeInfo> {
        uuids.iter().filter_map(|u| self.dn_info(u, now)).collect()
    }

    /// A block with its readable locations.
    fn locate(
        &mut self,
        b: Block,
        offset: u64,
        complete: bool,
        client_host: &str,
        now: Instant,
    ) -> LocatedBlock {
        if !complete {
            let uuids: Vec<String> = match self.uc_targets.get(&b.id) {
                Some(t) => t.clone(),
                None => self
                    .blocks
                    .replicas(b.id)
                    .map(|(u, _)| u.to_string())
                    .collect(),
            };
            let alive: Vec<String> = uuids.into_iter().filter(|u| self.dns.is_alive(u)).collect();
            return LocatedBlock {
                block: b,
                offset,
                locations: self.infos(&alive, now),
                corrupt: false,
                under_construction: true,
            };
        }
        let mut normal = Vec::new();
        let mut draining = Vec::new();
        let mut retired = Vec::new();
        let mut corrupt = Vec::new();
        for (uuid, r) in self.blocks.replicas(b.id) {
            let Some(d) = self.dns.get(uuid).filter(|d| d.alive) else {
                continue;
            };
            match health(r, &b, true) {
                Health::Good => match d.admin {
                    AdminState::Normal => normal.push(uuid.to_string()),
                    AdminState::DecommissionInProgress => draining.push(uuid.to_string()),
                    AdminState::Decommissioned => retired.push(uuid.to_string()),
                },
                Health::Corrupt => corrupt.push(uuid.to_string()),
                Health::Stale | Health::Unfinalized => {}
            }
        }
        // Replicas on the reader's host first, the rest shuffled to spread the load.
        self.rng.shuffle(&mut normal);
        normal.sort_by_key(|u| self.dns.get(u).is_none_or(|d| d.id.host != client_host));
        normal.extend(draining);
        if normal.is_empty() {
            normal = retired;
        }
        let is_corrupt = normal.is_empty() && !corrupt.is_empty();
        if is_corrupt {
            normal = corrupt;
        }
        LocatedBlock {
            block: b,
            offset,
            locations: self.infos(&normal, now),
            corrupt: is_corrupt,
            under_construction: false,
        }
    }

    // -----------------------------------------------------------------------------------------
    // ClientProtocol: namespace
    // -----------------------------------------------------------------------------------------

    pub fn mkdirs(
        &mut self,
        c: &Caller,
        path: &DfsPath,
        permission: u32,
        create_parent: bool,
        now: Now,
    ) -> Result<()> {
        self.check_writable("create directories")?;
        let walk = self.ns.walk(path)?;
        if walk.missing == 0 {
            return match self.ns.inode(walk.last()).map(|i| i.is_dir()) {
                Some(true) if create_parent => Ok(()),
                _ => Err(Error::AlreadyExists(path.to_string())),
            };
        }
        if walk.missing > 1 && !create_parent {
            let parent = path.parent().unwrap_or_else(DfsPath::root);
            return Err(Error::NotFound(parent.to_string()));
        }
        self.checker.check_traverse(&self.ns, c, &walk)?;
        let parent = walk.last();
        self.checker
            .check_access(&self.ns, c, parent, WRITE | EXECUTE)?;
        let group = self
            .ns
            .inode(parent)
            .map(|i| i.group.clone())
            .unwrap_or_default();
        // Every value is a real mode, 0 included: "none given" was settled by the caller.
        let mode = permission & 0o7777;
        let comps: Vec<&str> = path.components().collect();
        let first_missing = comps.len() - walk.missing;
        for k in first_missing..comps.len() {
            let p = DfsPath::parse(&format!("/{}", comps[..=k].join("/")))?;
            // Intermediate directories must stay usable by their creator (HDFS adds u+wx).
            let perm = if k + 1 == comps.len() {
                mode
            } else {
                mode | 0o300
            };
            let inode_id = self.ns.next_inode_id();
            self.log(Op::Mkdir {
                inode_id,
                path: p,
                permission: perm,
                owner: c.user.clone(),
                group: group.clone(),
                mtime_ms: now.ms,
            })?;
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    pub fn create(
        &mut self,
        c: &Caller,
        path: &DfsPath,
        permission: u32,
        client: &str,
        overwrite: bool,
        create_parent: bool,
        replication: u32,
        block_size: u64,
        now: Now,
    ) -> Result<FileStatus> {
        self.check_writable("create files")?;
        if client.is_empty() {
            return Err(inval("client_name is required"));
        }
        let replication = if replication == 0 {
            DEFAULT_REPLICATION
        } else {
            replication
        };
        self.check_replication(replication)?;
        let block_size = if block_size == 0 {
            DEFAULT_BLOCK_SIZE
        } else {
            block_size
        };
        if block_size < self.cfg.min_block_size || block_size % BYTES_PER_CHECKSUM != 0 {
            return Err(inval(format!(
                "block size {block_size} must be at least {} and a multiple of {BYTES_PER_CHECKSUM}",
                self.cfg.min_block_size
            )));
        }
        if path.is_root() {
            return Err(Error::IsADirectory(path.to_string()));
        }
        let mut walk = self.ns.walk(path)?;
        let mut existed = false;
        if walk.missing == 0 {
            let id = walk.last();
            let f = self
                .ns
                .file(id)
                .ok_or_else(|| Error::IsADirectory(path.to_string()))?;
            if !overwrite {
                return Err(Error::AlreadyExists(path.to_string()));
            }
            if let Some(holder) = f.client.as_deref() {
                if holder != client
                    && !self
                        .leases
                        .expired(holder, now.at, self.cfg.lease_soft_limit)
                {
                    return Err(Error::LeaseConflict(format!(
                        "file {path} is being written by client {holder}"
                    )));
                }
            }
            self.checker.check_traverse(&self.ns, c, &walk)?;
            let parent = walk.inodes[walk.inodes.len() - 2];
            self.checker.check_remove(&self.ns, c, parent, id)?;
            existed = true;
        } else if walk.missing > 1 {
            let parent = path.parent().unwrap_or_else(DfsPath::root);
            if !create_parent {
                return Err(Error::NotFound(parent.to_string()));
            }
            self.mkdirs(c, &parent, DEFAULT_DIR_PERMISSION, true, now)?;
            walk = self.ns.walk(path)?;
        }
        if !existed {
            self.checker.check_traverse(&self.ns, c, &walk)?;
            self.checker
                .check_access(&self.ns, c, walk.last(), WRITE | EXECUTE)?;
        }
        let parent = path.parent().unwrap_or_else(DfsPath::root);
        let parent_id = self.ns.resolve(&parent)?;
        let group = self
            .ns
            .inode(parent_id)
            .map(|i| i.group.clone())
            .unwrap_or_default();
        let inode_id = self.ns.next_inode_id();
        self.log(Op::Create {
            inode_id,
            path: path.clone(),
            permission: permission & 0o7777,
            owner: c.user.clone(),
            group,
            mtime_ms: now.ms,
            replication,
            block_size,
            client_name: client.to_string(),
            overwrite: existed,
        })?;
        self.leases.add(client, inode_id, now.at);
        self.ns
            .status(inode_id)
            .ok_or_else(|| Error::Internal(format!("created {path} vanished")))
    }

    fn check_replication(&self, r: u32) -> Result<()> {
        if r < self.cfg.min_replication || r > self.cfg.max_replication {
            return Err(inval(format!(
                "replication {r} is outside [{}, {}]",
                self.cfg.min_replication, self.cfg.max_replication
            )));
        }
        Ok(())
    }

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
        let id = self.caller_check(c, path)?;
        let f = self.file(id, path)?.clone();
        self.checker.check_access(&self.ns, c, id, WRITE)?;
        self.check_not_being_written(id, path, client, now)?;
        self.log(Op::Reopen {
            path: path.clone(),
            client_name: client.to_string(),
            mtime_ms: now.ms,
        })?;
        self.leases.add(client, id, now.at);
        let mut last_block = None;
        if let Some(last) = f
            .blocks
            .last()
            .copied()
            .filter(|b| b.num_bytes < f.block_size)
        {
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
                offset: f.length() - last.num_bytes,
                locations: self.infos(&holders, now.at),
                corrupt: false,
                under_construction: true,
            });
        }
        let st = self
            .ns
            .status(id)
            .ok_or_else(|| Error::Internal("appended file vanished".into()))?;
        Ok((last_block, st))
    }

    #[allow(clippy::too_many_arguments)]
    pub fn add_block(
        &mut self,
        path: &DfsPath,
        client: &str,
        previous: Option<Block>,
        exclude: &HashSet<String>,
        file_id: u64,
        client_host: &str,
        now: Now,
    ) -> Result<LocatedBlock> {
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
            // Only a reopened file whose last block is full may start a block without naming
            // the previous one; otherwise the previous block's final length would be lost.
            if last.num_bytes < f.block_size {
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
        })?;
        let offset: u64 = self
            .file(id, &path)?
            .blocks
            .iter()
            .take(n)
            .map(|b| b.num_bytes)
            .sum();
        self.uc_targets.insert(block.id, targets.clone());
        Ok(LocatedBlock {
            block,
            offset,
            locations: self.infos(&targets, now.at),
            corrupt: false,
            under_construction: true,
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
        self.log(Op::Close {
            path,
            blocks,
            mtime_ms: now.ms,
        })?;
        self.leases.remove(id);
        if let Some(b) = last_id {
            self.uc_targets.remove(&b);
        }
        Ok(true)
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
        let path = self.ns.path_of(id);
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
        let offset = f.length() - cur.num_bytes;
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
        let offset: u64 = f.blocks[..pos].iter().map(|b| b.num_bytes).sum();
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
        })
    }

    pub fn renew_lease(&mut self, client: &str, now: Now) -> Result<()> {
        if client.is_empty() {
            return Err(inval("client_name is required"));
        }
        self.leases.renew(client, now.at);
        Ok(())
    }

    /// RecoverLease: true when the file is closed on return.
    pub fn recover_lease(
        &mut self,
        c: &Caller,
        path: &DfsPath,
        client: &str,
        now: Now,
    ) -> Result<bool> {
        self.check_writable("recover leases")?;
        let id = self.caller_check(c, path)?;
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
        let path = self.ns.path_of(id);
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
        // Nothing reported and no live DataNode of the expected pipeline: nothing is stored anywhere
        // we could ever learn of, so the block is dropped. While a live DataNode of the pipeline
        // may hold it, recovery keeps asking, however often it failed: a length of 0 known here
        // proves nothing, since hflushed data lives in replicas being written, which are never
        // reported until finalized. A primary that finds no replica anywhere says so with
        // CommitBlockSynchronization(delete_block). (Reported replicas are live, so they are
        // candidates too.)
        if candidates.is_empty() {
            let mut blocks = f.blocks.clone();
            blocks.pop();
            tracing::info!(%path, block = %last.id, "lease recovery: last block has no replicas; dropping it");
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

    pub fn get_file_info(&mut self, c: &Caller, path: &DfsPath) -> Result<Option<FileStatus>> {
        let walk = match self.ns.walk(path) {
            Ok(w) => w,
            Err(Error::NotADirectory(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        self.checker.check_traverse(&self.ns, c, &walk)?;
        if walk.missing > 0 {
            return Ok(None);
        }
        Ok(self.ns.status(walk.last()))
    }

    /// CheckAccess: whether `c` may access `path` as `access` (READ | WRITE | EXECUTE) asks.
    pub fn check_path_access(&self, c: &Caller, path: &DfsPath, access: u32) -> Result<()> {
        let id = self.caller_check(c, path)?;
        self.checker.check_access(&self.ns, c, id, access & 0o7)
    }

    pub fn get_listing(
        &mut self,
        c: &Caller,
        path: &DfsPath,
        start_after: &str,
        limit: u32,
    ) -> Result<(Vec<FileStatus>, u64, FileStatus)> {
        let id = self.caller_check(c, path)?;
        let is_dir = self.ns.inode(id).is_some_and(|i| i.is_dir());
        if is_dir {
            self.checker.check_access(&self.ns, c, id, READ | EXECUTE)?;
        }
        // At least one entry per page, whatever the configuration says: a page of 0 entries
        // with more to come would make every client loop forever.
        let page_size = self.cfg.listing_limit.max(1);
        let limit = if limit == 0 || limit > page_size {
            page_size
        } else {
            limit
        };
        let (entries, remaining) = self.ns.list(id, start_after, limit as usize);
        let dir = self
            .ns
            .status(id)
            .ok_or_else(|| Error::NotFound(path.to_string()))?;
        Ok((entries, remaining, dir))
    }

    /// Blocks overlapping `[offset, offset + length)`; `length` 0 means "to the end".
    pub fn get_block_locations(
        &mut self,
        c: &Caller,
        path: &DfsPath,
        offset: u64,
        length: u64,
        client_host: &str,
        now: Now,
    ) -> Result<LocatedBlocks> {
        let id = self.caller_check(c, path)?;
        let f = self.file(id, path)?.clone();
        self.checker.check_access(&self.ns, c, id, READ)?;
        self.note_access(id, path, now);
        let end = if length == 0 {
            u64::MAX
        } else {
            offset.saturating_add(length)
        };
        let n = f.blocks.len();
        let mut blocks = Vec::new();
        let mut last_block = None;
        let mut pos = 0u64;
        for (i, b) in f.blocks.iter().enumerate() {
            let complete = f.block_complete(i);
            let block_end = pos + b.num_bytes;
            // An empty block being written still overlaps a read at its offset.
            let overlaps = (pos < end && block_end > offset)
                || (!complete && pos >= offset && pos <= end && b.num_bytes == 0);
            if overlaps || i + 1 == n {
                let lb = self.locate(*b, pos, complete, client_host, now.at);
                if overlaps {
                    blocks.push(lb.clone());
                }
                if i + 1 == n {
                    last_block = Some(lb);
                }
            }
            pos = block_end;
        }
        Ok(LocatedBlocks {
            file_length: f.length(),
            blocks,
            under_construction: f.under_construction(),
            last_block,
            last_block_complete: !f.under_construction(),
            file_id: id.0,
        })
    }

    /// Records a read as the file's access time, as HDFS does with
    /// `dfs.namenode.accesstime.precision`: only when the stored atime is older than the
    /// precision, so a hot file costs one logged op (and fsync) per precision, not one per read.
    /// Like every namespace change it goes through the edit log. Skipped in safe mode, when the
    /// precision is 0, and (with a warning) when it cannot be logged: a read never fails for it.
    fn note_access(&mut self, id: InodeId, path: &DfsPath, now: Now) {
        let precision =
            u64::try_from(self.cfg.access_time_precision.as_millis()).unwrap_or(u64::MAX);
        let stale = self
            .ns
            .inode(id)
            .is_some_and(|i| now.ms.saturating_sub(i.atime_ms) > precision);
        if precision == 0 || !stale || self.check_writable("update access times").is_err() {
            return;
        }
        let op = Op::SetTimes {
            path: path.clone(),
            mtime_ms: None,
            atime_ms: Some(now.ms),
        };
        if let Err(e) = self.log(op) {
            tracing::warn!(%path, error = %e, "could not record the access time");
        }
    }

    pub fn rename(
        &mut self,
        c: &Caller,
        src: &DfsPath,
        dst: &DfsPath,
        overwrite: bool,
        now: Now,
    ) -> Result<()> {
        self.check_writable("rename")?;
        let src_walk = self.ns.walk(src)?;
        self.checker.check_traverse(&self.ns, c, &src_walk)?;
        if src_walk.missing > 0 {
            return Err(Error::NotFound(src.to_string()));
        }
        let src_id = src_walk.last();
        if src_id == crate::types::InodeId::ROOT || dst.is_root() {
            return Err(Error::InvalidRename(
                "cannot rename the root directory".into(),
            ));
        }
        if src == dst {
            return Ok(());
        }
        if dst.starts_with(src) {
            return Err(Error::InvalidRename(format!(
                "cannot move {src} below itself ({dst})"
            )));
        }
        let dst_walk = self.ns.walk(dst)?;
        self.checker.check_traverse(&self.ns, c, &dst_walk)?;
        if dst_walk.missing > 1 {
            return Err(Error::NotFound(
                dst.parent().unwrap_or_else(DfsPath::root).to_string(),
            ));
        }
        let src_parent = src_walk.inodes[src_walk.inodes.len() - 2];
        self.checker.check_remove(&self.ns, c, src_parent, src_id)?;
        if dst_walk.missing == 0 {
            if !overwrite {
                return Err(Error::AlreadyExists(dst.to_string()));
            }
            let dst_parent = dst_walk.inodes[dst_walk.inodes.len() - 2];
            self.checker
                .check_remove(&self.ns, c, dst_parent, dst_walk.last())?;
        } else {
            self.checker
                .check_access(&self.ns, c, dst_walk.last(), WRITE | EXECUTE)?;
        }
        self.log(Op::Rename {
            src: src.clone(),
            dst: dst.clone(),
            overwrite,
            mtime_ms: now.ms,
        })?;
        Ok(())
    }

    pub fn delete(
        &mut self,
        c: &Caller,
        path: &DfsPath,
        recursive: bool,
        now: Now,
    ) -> Result<bool> {
        self.check_writable("delete")?;
        if path.is_root() {
            return Err(inval("cannot delete the root directory"));
        }
        let walk = match self.ns.walk(path) {
            Ok(w) => w,
            Err(Error::NotADirectory(_)) => return Ok(false),
            Err(e) => return Err(e),
        };
        self.checker.check_traverse(&self.ns, c, &walk)?;
        if walk.missing > 0 {
            return Ok(false);
        }
        let id = walk.last();
        let parent = walk.inodes[walk.inodes.len() - 2];
        self.checker.check_remove(&self.ns, c, parent, id)?;
        let nonempty = self
            .ns
            .inode(id)
            .and_then(|i| i.children())
            .is_some_and(|ch| !ch.is_empty());
        if nonempty {
            if !recursive {
                return Err(Error::NotEmpty(path.to_string()));
            }
            self.checker.check_subtree_all(&self.ns, c, id)?;
        }
        self.log(Op::Delete {
            path: path.clone(),
            mtime_ms: now.ms,
        })?;
        Ok(true)
    }

    pub fn set_replication(&mut self, c: &Caller, path: &DfsPath, replication: u32) -> Result<()> {
        self.check_writable("set replication")?;
        let id = self.caller_check(c, path)?;
        let f = self.file(id, path)?;
        let old = f.replication;
        self.checker.check_access(&self.ns, c, id, WRITE)?;
        self.check_replication(replication)?;
        if old != replication {
            self.log(Op::SetReplication {
                path: path.clone(),
                replication,
            })?;
        }
        Ok(())
    }

    pub fn set_permission(&mut self, c: &Caller, path: &DfsPath, permission: u32) -> Result<()> {
        self.check_writable("set permissions")?;
        let id = self.caller_check(c, path)?;
        self.checker.check_owner(&self.ns, c, id)?;
        if permission > 0o7777 {
            return Err(inval(format!(
                "permission {permission:o} has bits beyond 0o7777"
            )));
        }
        self.log(Op::SetPermission {
            path: path.clone(),
            permission,
        })?;
        Ok(())
    }

    pub fn set_owner(
        &mut self,
        c: &Caller,
        path: &DfsPath,
        owner: &str,
        group: &str,
    ) -> Result<()> {
        self.check_writable("set owners")?;
        let id = self.caller_check(c, path)?;
        self.checker
            .check_set_owner(&self.ns, c, id, owner, group)?;
        if owner.is_empty() && group.is_empty() {
            return Ok(());
        }
        self.log(Op::SetOwner {
            path: path.clone(),
            owner: owner.to_string(),
            group: group.to_string(),
        })?;
        Ok(())
    }

    pub fn set_times(
        &mut self,
        c: &Caller,
        path: &DfsPath,
        mtime_ms: Option<u64>,
        atime_ms: Option<u64>,
    ) -> Result<()> {
        self.check_writable("set times")?;
        let id = self.caller_check(c, path)?;
        self.checker.check_owner(&self.ns, c, id)?;
        if mtime_ms.is_none() && atime_ms.is_none() {
            return Ok(());
        }
        self.log(Op::SetTimes {
            path: path.clone(),
            mtime_ms,
            atime_ms,
        })?;
        Ok(())
    }

    pub fn truncate(
        &mut self,
        c: &Caller,
        path: &DfsPath,
        new_length: u64,
        client: &str,
        now: Now,
    ) -> Result<()> {
        self.check_writable("truncate")?;
        let id = self.caller_check(c, path)?;
        let f = self.file(id, path)?.clone();
        self.checker.check_access(&self.ns, c, id, WRITE)?;
        if let Some(holder) = &f.client {
            return Err(Error::LeaseConflict(format!(
                "file {path} is open for writing by client {holder}{}",
                if holder == client {
                    " (close it first)"
                } else {
                    ""
                }
            )));
        }
        let len = f.length();
        if new_length == len {
            return Ok(());
        }
        if new_length > len {
            return Err(inval(format!(
                "cannot truncate {path} to {new_length} bytes: longer than the file ({len})"
            )));
        }
        if new_length != 0 {
            return Err(Error::NotSupported(
                "truncate to a non-zero length shorter than the file is not supported".into(),
            ));
        }
        self.log(Op::Truncate {
            path: path.clone(),
            new_length: 0,
            blocks: Vec::new(),
            mtime_ms: now.ms,
        })?;
        Ok(())
    }

    pub fn content_summary(&mut self, c: &Caller, path: &DfsPath) -> Result<ContentSummary> {
        let id = self.caller_check(c, path)?;
        Ok(self.ns.content_summary(id))
    }

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
                }
            }
        }
    }

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
        let id = self.caller_check(c, path)?;
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
                ReceivedDeleted::Receiving(b) => {
                    let uc = self
                        .ns
                        .block_file(b.id)
                        .is_some_and(|(_, f, i)| !f.block_complete(i));
                    if uc {
                        self.process_replica(uuid, b, false);
                    }
                }
                ReceivedDeleted::Deleted(b) => {
                    self.blocks.remove(b.id, uuid);
                }
            }
        }
        self.update_safemode(now.at);
        Ok(())
    }

    /// Judges one reported replica: unknown → delete; stale stamp on a complete block →
    /// delete; otherwise record it (its health is judged on demand).
    fn process_replica(&mut self, uuid: &str, b: Block, finalized: bool) {
        let Some((_, f, idx)) = self.ns.block_file(b.id) else {
            self.blocks.remove(b.id, uuid);
            self.dns.queue_delete(uuid, b);
            return;
        };
        let cur = f.blocks[idx];
        let complete = f.block_complete(idx);
        if complete && b.gs < cur.gs {
            self.blocks.remove(b.id, uuid);
            self.dns.queue_delete(uuid, b);
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

    pub fn dn_report_bad_blocks(&mut self, uuid: &str, blocks: &[Block]) -> Result<()> {
        self.check_dn(uuid)?;
        let bad: Vec<(Block, Vec<String>)> = blocks
            .iter()
            .map(|b| (*b, vec![uuid.to_string()]))
            .collect();
        self.report_bad_blocks(&bad);
        Ok(())
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
        let path = self.ns.path_of(id);
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
        for id in todo {
            if let Err(e) = self.recover_lease_internal(id, now) {
                tracing::warn!(path = %self.ns.path_of(id), error = %e, "lease recovery failed");
            }
        }
    }
}

fn count_complete_blocks(ns: &Namespace) -> u64 {
    ns.blocks()
        .filter(|(b, _)| {
            ns.block_file(*b)
                .is_some_and(|(_, f, i)| f.block_complete(i))
        })
        .count() as u64
}

#[cfg(test)]
#[path = "fsn_tests.rs"]
mod tests;
