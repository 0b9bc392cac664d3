//! [`FsState`]: the NameNode's decisions, synchronous and free of network I/O.
//!
//! Every RPC is one method here, called with the namespace lock held. A mutation validates the
//! request completely, decides every id, stamp and timestamp, then goes through [`FsState::log`]:
//! apply to the namespace, enqueue on the edit log (same critical section, so log order is apply
//! order), and clean up what the op removed (replicas to delete, leases, pending work). The
//! caller awaits durability of the last txid *after* releasing the lock (see `server.rs`).
//!
//! Times come in as [`Now`] so tests can drive leases, heartbeats and safe mode deterministically.
//!
//! The methods live by RPC family: `nsops` (namespace mutations), `links` (symbolic and hard
//! links, special files), `xattrs` (extended attributes and ACLs), `holds` (open files and
//! orphans), `read` (status, listings, block locations), `write` (the write path),
//! `lease_recovery`, `datanode` (DatanodeProtocol) and `admin` (stats, fsck, safe mode).
//!
//! Who follows symbolic links: never the NameNode. A link met before a path's last component is
//! `Error::UnresolvedLink` for every RPC; as the last component, operations on entries (status,
//! delete, rename, link, create of a new name) act on the link itself, operations on what a
//! link points to (data, attributes, listings) answer `UnresolvedLink` too, except for the link's
//! own inode path.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use dfs_proto::path::DfsPath;

use crate::blockmap::{health, BlockMap, Health, Replica};
use crate::datanodes::Datanodes;
use crate::editlog::EditLog;
use crate::error::{Error, Result};
use crate::lease::{Leases, Recovery, RECOVERY_HOLDER};
use crate::namespace::{Applied, Extent, FileMeta, Namespace, Walk};
use crate::op::Op;
use crate::permission::{Checker, EXECUTE, READ, WRITE};
use crate::placement::{choose_targets, Candidate};
use crate::replication::{PendingReplications, ReplStats};
use crate::safemode::SafeMode;
use crate::types::{
    AdminState, Block, BlockId, Caller, Command, ContentSummary, DatanodeId, DatanodeInfo,
    FileStatus, FileType, FsckBlock, FsckFile, FsckReplica, FsckReport, GenStamp, InodeId,
    LocatedBlock, LocatedBlocks, ReceivedDeleted, ReplicaReport, SafeModeAction, Stats,
    StorageReport,
};
use crate::util::Rng;
use crate::Config;

mod admin;
mod datanode;
mod holds;
mod lease_recovery;
mod links;
mod nsops;
mod read;
mod trash;
mod write;
mod xattrs;

pub use links::MknodRequest;
pub use nsops::{CreateRequest, MkdirsRequest, NewMode, SetTimesRequest};
pub use read::LocationsRequest;
pub use write::{BlockRequest, CommitRequest};
pub use xattrs::AclChange;

/// Default replication when a client asks for 0.
pub const DEFAULT_REPLICATION: u32 = 3;
/// Default block size when a client asks for 0 (HDFS's 128 MiB).
pub const DEFAULT_BLOCK_SIZE: u64 = 128 << 20;
/// Mode of a new directory whose request carries none (the client sends its umask'ed mode).
pub const DEFAULT_DIR_PERMISSION: u32 = 0o755;
/// Mode of a new file whose request carries none.
pub const DEFAULT_FILE_PERMISSION: u32 = 0o644;
/// How far past the loaded ids [`FsState::reserve_ids`] moves at startup: far more allocations
/// than any sync interval holds, and small enough for 2^32 restarts.
pub const ID_MARGIN: u64 = 1 << 32;
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
    /// Chosen at start: a client that sees it change registers its holds again.
    pub(crate) instance: u64,
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
        // An orphan's holders get the hard limit to come back and release or renew it.
        for (inode, holders) in ns.orphans() {
            for h in holders {
                leases.hold(h, inode, now.at);
            }
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
            instance: crate::util::random_u64(),
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
            self.leases.forget_file(*f);
        }
    }

    /// The regular file `id` (named `path` in errors).
    fn file(&self, id: InodeId, path: &DfsPath) -> Result<&FileMeta> {
        match self.ns.inode(id) {
            Some(i) if i.is_dir() => Err(Error::IsADirectory(path.to_string())),
            Some(i) => i
                .file()
                .ok_or_else(|| inval(format!("{path} is not a regular file"))),
            None => Err(Error::NotFound(path.to_string())),
        }
    }

    /// Resolves the file a writer means: by inode id when it sent one (so renaming an open file,
    /// or unlinking it, does not break its writer), else by path. Returns the inode and the path
    /// its ops are logged under: its inode path, which names it whatever happens to its names.
    fn resolve_file(&self, path: &DfsPath, file_id: u64) -> Result<(InodeId, DfsPath)> {
        let id = if file_id != 0 {
            let id = InodeId(file_id);
            if self.ns.inode(id).is_none() {
                return Err(Error::NotFound(format!(
                    "{path} (inode {file_id} was deleted or replaced)"
                )));
            }
            id
        } else {
            self.ns.resolve_following(path)?.0
        };
        self.file(id, path)?;
        Ok((id, DfsPath::inode(id.0)))
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

    /// What `path` names, for an operation on what a link points to (see the module docs):
    /// `x` on the way there, a final link unresolved.
    fn target(&self, c: &Caller, path: &DfsPath) -> Result<InodeId> {
        let walk = self.entry_walk(c, path)?;
        if !walk.exists() {
            return Err(Error::NotFound(path.to_string()));
        }
        Ok(self.ns.resolve_following(path)?.0)
    }

    /// `path` resolved for an operation on the entry itself, with `x` checked on the way.
    fn entry_walk(&self, c: &Caller, path: &DfsPath) -> Result<Walk> {
        let walk = self.ns.walk(path)?;
        self.checker.check_traverse(&self.ns, c, &walk)?;
        Ok(walk)
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

    /// Logs that every inode id, block id and generation stamp handed out from now on lies
    /// [`ID_MARGIN`] past the loaded ones; returns its txid, which must be synced before serving.
    /// A power loss may have taken allocations from the unsynced tail of the last run, which
    /// clients and DataNodes saw: handing one out again could make an old replica pass for a new
    /// block's, or a client's inode number name another file.
    pub fn reserve_ids(&mut self) -> Result<u64> {
        let past = |v: u64| v.saturating_add(ID_MARGIN);
        self.log(Op::ReserveIds {
            inode_id: InodeId(past(self.ns.next_inode_id().0)),
            block_id: BlockId(past(self.ns.next_block_id().0)),
            gs: GenStamp(past(self.ns.gen_stamp().0)),
        })?;
        Ok(self.log.last_txid())
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
                block_offset: 0,
                length: b.num_bytes,
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
            block_offset: 0,
            length: b.num_bytes,
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
mod posix_tests;
#[cfg(test)]
mod tests;
