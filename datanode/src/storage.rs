//! The replica store: every replica on every volume, its files, and the operations the write
//! pipeline, readers, the scanner and NameNode commands perform on them.
//!
//! A replica is two files (see [`crate::volume`] for where they live and [`crate::meta`] for the
//! checksum file): `blk_<id>` with the raw bytes and `blk_<id>_<gs>.meta` with one CRC32C per chunk.
//!
//! Concurrency: the store's [`State`] (replica map, failed volumes) is behind one mutex, and every
//! replica has its own mutex that serializes the disk operations on it. Lock order is always
//! state, then replica; neither is ever held across an `.await` (all methods are synchronous).
//! A replica being written belongs to one [`RbwWriter`] at a time: reopening it (append, recovery)
//! hands it to a new writer, and the old one fails on its next operation rather than write stale
//! data.
//!
//! Crash consistency: data and meta files move between `rbw/` and `finalized/` by rename, never
//! together atomically. The startup scan therefore puts a replica's meta file next to its data file
//! and takes the replica's state from where the data file is; finalizing renames the meta file
//! first and reopening renames the data file first, so a crash in between leaves an RBW replica,
//! whose length the scan re-verifies.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use dfs_proto::checksum;
use tokio::sync::mpsc;
use tracing::{error, info, warn};

use crate::meta;
use crate::types::{Block, BlockId, GenerationStamp, ReplicaEvent, ReplicaState};
use crate::volume::{self, Space, Volume};
use crate::{Error, Result};

/// Locks a mutex, ignoring poisoning: every critical section leaves its data consistent before any
/// operation that could panic, and a panicking connection must not take the store down with it.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The replica store of one DataNode.
pub(crate) struct Storage {
    uuid: String,
    volumes: Vec<Volume>,
    du_reserved: u64,
    /// The block size a new replica must have room for on its volume (dfs.blocksize). A write
    /// request does not say how big its block may grow, so, as HDFS, the DataNode plans for the
    /// configured default.
    block_size: u64,
    state: Mutex<State>,
    events: mpsc::UnboundedSender<ReplicaEvent>,
    next_token: AtomicU64,
}

struct State {
    replicas: HashMap<BlockId, Arc<Replica>>,
    failed: Vec<bool>,
    /// Round-robin cursor among volumes with (about) the same free space.
    next_volume: usize,
}

struct Replica {
    id: BlockId,
    inner: Mutex<ReplicaInner>,
}

struct ReplicaInner {
    gs: GenerationStamp,
    state: ReplicaState,
    volume: usize,
    bpc: u32,
    /// Bytes in the data file (all of them have their checksum in the meta file).
    bytes_on_disk: u64,
    /// Bytes acknowledged to the writer: what readers may see.
    visible: u64,
    /// CRC of the last chunk while it is partial, which the next write extends.
    last_partial_crc: Option<u32>,
    /// The token of the writer that may append; `None` when nobody may.
    writer: Option<u64>,
    /// Open handles while a writer owns the replica.
    files: Option<RbwFiles>,
    /// Set when the replica left the map (deleted, replaced, volume failed).
    removed: bool,
}

struct RbwFiles {
    data: File,
    meta: File,
}

/// What readers and reports need to know about a replica, copied out under its lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReplicaView {
    /// `num_bytes` is the visible length.
    pub block: Block,
    pub state: ReplicaState,
    pub bytes_on_disk: u64,
    pub bpc: u32,
    pub volume: usize,
}

/// Totals for heartbeats and registration.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct StorageTotals {
    pub capacity: u64,
    pub dfs_used: u64,
    pub remaining: u64,
    pub num_volumes: u32,
    pub failed_volumes: u32,
    pub num_blocks: u64,
}

/// Outcome of verifying a finalized replica against its checksums.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verification {
    Good,
    /// The replica is corrupt; `verified` bytes at its start are intact.
    Corrupt {
        verified: u64,
    },
    /// Not a finalized replica here (any more).
    Gone,
}

impl Storage {
    /// [`Storage::open_sized`] planning for HDFS's default 128 MiB blocks.
    #[cfg(test)]
    pub fn open(
        roots: &[PathBuf],
        du_reserved: u64,
        events: mpsc::UnboundedSender<ReplicaEvent>,
    ) -> Result<Arc<Storage>> {
        Self::open_sized(roots, du_reserved, 128 << 20, events)
    }

    /// Opens (creating if needed) every volume, checks they belong to one DataNode, and loads every
    /// replica on them. Blocking: call from `spawn_blocking` in async code. A volume that cannot be
    /// opened or scanned is failed (logged); none usable is an error, and so is a volume that
    /// belongs to another DataNode. New replicas go only to volumes with room for a
    /// `block_size`-byte block.
    pub fn open_sized(
        roots: &[PathBuf],
        du_reserved: u64,
        block_size: u64,
        events: mpsc::UnboundedSender<ReplicaEvent>,
    ) -> Result<Arc<Storage>> {
        if roots.is_empty() {
            return Err(Error::Invalid("no volume configured".into()));
        }
        let volumes: Vec<Volume> = roots.iter().cloned().map(Volume::new).collect();
        let mut failed = vec![false; volumes.len()];
        let mut uuid: Option<(String, PathBuf)> = None;
        for (i, v) in volumes.iter().enumerate() {
            let found = v.create_dirs().and_then(|()| v.read_uuid());
            match found {
                Ok(Some(u)) => match &uuid {
                    Some((have, at)) if *have != u => {
                        return Err(Error::Volume {
                            path: v.root.clone(),
                            reason: format!(
                                "belongs to datanode {u}, but {} belongs to datanode {have}",
                                at.display()
                            ),
                        })
                    }
                    _ => uuid = Some((u, v.root.clone())),
                },
                Ok(None) => {}
                Err(e @ Error::Volume { .. }) => return Err(e),
                Err(e) => {
                    error!(volume = %v.root.display(), "volume unusable: {e}");
                    failed[i] = true;
                }
            }
        }
        let uuid = match uuid {
            Some((u, _)) => u,
            None => volume::generate_uuid()?,
        };
        for (i, v) in volumes.iter().enumerate() {
            if failed[i] {
                continue;
            }
            let ensure = match v.read_uuid() {
                Ok(Some(_)) => Ok(()),
                Ok(None) => v.write_uuid(&uuid),
                Err(e) => Err(e),
            };
            if let Err(e) = ensure {
                error!(volume = %v.root.display(), "volume unusable: {e}");
                failed[i] = true;
            }
        }

        let mut replicas: HashMap<BlockId, (ReplicaInner, BlockId)> = HashMap::new();
        for (i, v) in volumes.iter().enumerate() {
            if failed[i] {
                continue;
            }
            let loaded = match scan_volume(v, i) {
                Ok(l) => l,
                Err(e) => {
                    error!(volume = %v.root.display(), "scanning volume failed, not using it: {e}");
                    failed[i] = true;
                    continue;
                }
            };
            for (id, r) in loaded {
                match replicas.remove(&id) {
                    None => {
                        replicas.insert(id, (r, id));
                    }
                    Some((other, _)) => {
                        let (keep, drop) = if better(&r, &other) {
                            (r, other)
                        } else {
                            (other, r)
                        };
                        warn!(block = %id, "replica on two volumes; keeping generation stamp {}", keep.gs.0);
                        delete_files(&volumes[drop.volume], id, drop.gs, drop.state);
                        replicas.insert(id, (keep, id));
                    }
                }
            }
        }
        if failed.iter().all(|f| *f) {
            return Err(Error::NoVolumes);
        }
        let finalized = replicas
            .values()
            .filter(|(r, _)| r.state == ReplicaState::Finalized)
            .count();
        info!(
            volumes = volumes.len(),
            failed = failed.iter().filter(|f| **f).count(),
            replicas = replicas.len(),
            finalized,
            uuid = %uuid,
            "replica store opened"
        );
        let replicas = replicas
            .into_iter()
            .map(|(id, (inner, _))| {
                (
                    id,
                    Arc::new(Replica {
                        id,
                        inner: Mutex::new(inner),
                    }),
                )
            })
            .collect();
        Ok(Arc::new(Storage {
            uuid,
            volumes,
            du_reserved,
            block_size,
            state: Mutex::new(State {
                replicas,
                failed,
                next_volume: 0,
            }),
            events,
            next_token: AtomicU64::new(1),
        }))
    }

    /// The DataNode's uuid, the same in every volume's VERSION file.
    pub fn uuid(&self) -> &str {
        &self.uuid
    }

    fn emit(&self, e: ReplicaEvent) {
        // The receiver is gone only during shutdown, when reports no longer matter.
        let _ = self.events.send(e);
    }

    fn lookup(&self, id: BlockId) -> Option<Arc<Replica>> {
        lock(&self.state).replicas.get(&id).cloned()
    }

    fn dir(&self, volume: usize, id: BlockId, state: ReplicaState) -> PathBuf {
        dir_of(&self.volumes[volume], id, state)
    }

    fn data_path(&self, volume: usize, id: BlockId, state: ReplicaState) -> PathBuf {
        self.dir(volume, id, state).join(data_name(id))
    }

    fn meta_path(
        &self,
        volume: usize,
        id: BlockId,
        gs: GenerationStamp,
        state: ReplicaState,
    ) -> PathBuf {
        self.dir(volume, id, state).join(meta_name(id, gs))
    }

    fn token(&self) -> u64 {
        self.next_token.fetch_add(1, Ordering::Relaxed)
    }

    // ---------------------------------------------------------------------------------------------
    // Opening replicas for writing
    // ---------------------------------------------------------------------------------------------

    /// A new replica (stage CREATE). A replica with the same id and an older generation stamp is
    /// stale and replaced; one with an equal or newer stamp is [`Error::Exists`].
    pub fn create(self: &Arc<Self>, block: Block, bpc: u32) -> Result<RbwWriter> {
        self.create_replacing(block, bpc, false)
    }

    /// A temporary replica for a copy from another DataNode (stage TRANSFER), as HDFS's
    /// `createTemporary`: besides a stale one, it replaces a replica of the same stamp that was
    /// never finalized (a copy that failed, or that the NameNode gave up waiting for and sent
    /// again; its writer, if still running, fails at its next packet). If the copy fails,
    /// [`RbwWriter::abandon`] removes it, so it never blocks the next attempt.
    pub fn create_temporary(self: &Arc<Self>, block: Block, bpc: u32) -> Result<RbwWriter> {
        self.create_replacing(block, bpc, true)
    }

    fn create_replacing(
        self: &Arc<Self>,
        block: Block,
        bpc: u32,
        temporary: bool,
    ) -> Result<RbwWriter> {
        let bpc = meta::validate_bpc(bpc).map_err(Error::Invalid)?;
        let mut st = lock(&self.state);
        if let Some(old) = st.replicas.get(&block.id).cloned() {
            let mut g = lock(&old.inner);
            let unfinished = temporary && g.state == ReplicaState::Rbw && g.gs == block.gs;
            if g.gs >= block.gs && !unfinished {
                return Err(Error::Exists(format!(
                    "{} exists already with generation stamp {} ({:?})",
                    block.id, g.gs.0, g.state
                )));
            }
            info!(block = %block.id, "replacing {:?} replica with generation stamp {}", g.state, g.gs.0);
            g.removed = true;
            g.files = None;
            st.replicas.remove(&block.id);
            delete_files(&self.volumes[g.volume], block.id, g.gs, g.state);
        }
        let v = self.choose_volume(&mut st, bpc)?;
        let token = self.token();
        let files = match self.create_files(v, block, bpc) {
            Ok(f) => f,
            Err(e) => {
                drop(st);
                self.handle_io_error(v, None, &e);
                return Err(e);
            }
        };
        let replica = Arc::new(Replica {
            id: block.id,
            inner: Mutex::new(ReplicaInner {
                gs: block.gs,
                state: ReplicaState::Rbw,
                volume: v,
                bpc,
                bytes_on_disk: 0,
                visible: 0,
                last_partial_crc: None,
                writer: Some(token),
                files: Some(files),
                removed: false,
            }),
        });
        st.replicas.insert(block.id, replica.clone());
        Ok(RbwWriter {
            storage: self.clone(),
            replica,
            token,
            fresh: true,
            temporary,
        })
    }

    fn create_files(&self, v: usize, block: Block, bpc: u32) -> Result<RbwFiles> {
        let data_path = self.data_path(v, block.id, ReplicaState::Rbw);
        let meta_path = self.meta_path(v, block.id, block.gs, ReplicaState::Rbw);
        let open = |p: &Path| {
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(p)
                .map_err(Error::io(format!("create {}", p.display())))
        };
        let data = open(&data_path)?;
        let meta = open(&meta_path)?;
        meta.write_all_at(&meta::encode_header(bpc), 0)
            .map_err(Error::io(format!("write {}", meta_path.display())))?;
        Ok(RbwFiles { data, meta })
    }

    /// Reopens a finalized replica to append to it (stage APPEND), taking the new generation stamp
    /// of `block`. Its length must be `min_bytes`.
    pub fn append(self: &Arc<Self>, block: Block, min_bytes: u64, bpc: u32) -> Result<RbwWriter> {
        let r = self.lookup(block.id).ok_or_else(|| not_found(block.id))?;
        let mut g = lock(&r.inner);
        if g.removed {
            return Err(not_found(block.id));
        }
        if g.state != ReplicaState::Finalized {
            return Err(Error::Invalid(format!(
                "{} is being written, cannot append",
                block.id
            )));
        }
        if g.gs > block.gs {
            return Err(Error::Invalid(format!(
                "{} has a newer generation stamp {} than {}",
                block.id, g.gs.0, block.gs.0
            )));
        }
        if g.bytes_on_disk != min_bytes {
            return Err(Error::Invalid(format!(
                "{} has {} bytes, the append expects {min_bytes}",
                block.id, g.bytes_on_disk
            )));
        }
        if g.bpc != bpc {
            return Err(Error::Invalid(format!(
                "{} has bytes_per_checksum {}, the append uses {bpc}",
                block.id, g.bpc
            )));
        }
        let v = g.volume;
        let token = self.token();
        let res = self.reopen_in_rbw(r.id, &mut g, block.gs).and_then(|()| {
            let files = self.open_rbw_files(r.id, &g)?;
            g.last_partial_crc = if !g.bytes_on_disk.is_multiple_of(u64::from(g.bpc)) {
                let idx = g.bytes_on_disk / u64::from(g.bpc);
                let sums = meta::read_checksums(&files.meta, idx, 1)
                    .map_err(Error::io(format!("read checksums of {}", r.id)))?;
                sums.first().copied()
            } else {
                None
            };
            g.files = Some(files);
            g.writer = Some(token);
            g.visible = g.bytes_on_disk;
            Ok(())
        });
        let gs = g.gs;
        drop(g);
        if let Err(e) = &res {
            self.handle_io_error(v, Some((r.id, gs)), e);
        }
        res?;
        Ok(RbwWriter {
            storage: self.clone(),
            replica: r,
            token,
            fresh: false,
            temporary: false,
        })
    }

    /// Pipeline recovery (stage RECOVERY): truncates the replica (RBW or finalized) to `min_bytes`
    /// and gives it the new generation stamp of `block`; any writer still attached is cut off.
    /// A node without the replica starts an empty one when `min_bytes` is 0.
    pub fn recover(self: &Arc<Self>, block: Block, min_bytes: u64, bpc: u32) -> Result<RbwWriter> {
        let Some(r) = self.lookup(block.id) else {
            if min_bytes == 0 {
                return self.create(block, bpc);
            }
            return Err(not_found(block.id));
        };
        let mut g = lock(&r.inner);
        if g.removed {
            return Err(not_found(block.id));
        }
        if g.gs > block.gs {
            return Err(Error::Invalid(format!(
                "{} has a newer generation stamp {} than {}",
                block.id, g.gs.0, block.gs.0
            )));
        }
        if g.bpc != bpc {
            return Err(Error::Invalid(format!(
                "{} has bytes_per_checksum {}, the recovery uses {bpc}",
                block.id, g.bpc
            )));
        }
        if g.bytes_on_disk < min_bytes {
            return Err(Error::Invalid(format!(
                "{} has only {} bytes, recovery needs {min_bytes}",
                block.id, g.bytes_on_disk
            )));
        }
        g.writer = None;
        g.files = None;
        let v = g.volume;
        let token = self.token();
        let res = self.reopen_in_rbw(r.id, &mut g, block.gs).and_then(|()| {
            let files = self.open_rbw_files(r.id, &g)?;
            truncate_files(r.id, &mut g, &files, min_bytes)?;
            g.files = Some(files);
            g.writer = Some(token);
            Ok(())
        });
        let gs = g.gs;
        drop(g);
        if let Err(e) = &res {
            self.handle_io_error(v, Some((r.id, gs)), e);
        }
        res?;
        Ok(RbwWriter {
            storage: self.clone(),
            replica: r,
            token,
            fresh: false,
            temporary: false,
        })
    }

    /// Moves a finalized replica back to `rbw/` (data first, then meta), or renames an RBW
    /// replica's meta file, so that it carries `new_gs`.
    fn reopen_in_rbw(
        &self,
        id: BlockId,
        g: &mut ReplicaInner,
        new_gs: GenerationStamp,
    ) -> Result<()> {
        let v = g.volume;
        let rbw = self.volumes[v].rbw();
        if g.state == ReplicaState::Finalized {
            let from_dir = self.dir(v, id, ReplicaState::Finalized);
            rename(&from_dir.join(data_name(id)), &rbw.join(data_name(id)))?;
            g.state = ReplicaState::Rbw;
            rename(
                &from_dir.join(meta_name(id, g.gs)),
                &rbw.join(meta_name(id, new_gs)),
            )?;
            g.gs = new_gs;
            volume::fsync_dir(&rbw)?;
            volume::fsync_dir(&from_dir)?;
        } else if g.gs != new_gs {
            rename(
                &rbw.join(meta_name(id, g.gs)),
                &rbw.join(meta_name(id, new_gs)),
            )?;
            g.gs = new_gs;
            volume::fsync_dir(&rbw)?;
        }
        Ok(())
    }

    fn open_rbw_files(&self, id: BlockId, g: &ReplicaInner) -> Result<RbwFiles> {
        let open = |p: PathBuf| {
            OpenOptions::new()
                .read(true)
                .write(true)
                .open(&p)
                .map_err(Error::io(format!("open {}", p.display())))
        };
        Ok(RbwFiles {
            data: open(self.data_path(g.volume, id, g.state))?,
            meta: open(self.meta_path(g.volume, id, g.gs, g.state))?,
        })
    }

    /// Moves an RBW replica's files to `finalized/` (meta first, then data). With `sync`, fsyncs
    /// both files first and both directories after, so the replica survives a power loss; without,
    /// it survives any crash of the process, and a power loss may leave it short or in `rbw/`,
    /// which the block report and the checksums then find. Reports the replica received.
    fn finalize_locked(&self, id: BlockId, g: &mut ReplicaInner, sync: bool) -> Result<Block> {
        let files = match g.files.take() {
            Some(f) => f,
            None => self.open_rbw_files(id, g)?,
        };
        g.writer = None;
        if sync {
            files
                .data
                .sync_all()
                .map_err(Error::io(format!("fsync data of {id}")))?;
            files
                .meta
                .sync_all()
                .map_err(Error::io(format!("fsync meta of {id}")))?;
        }
        drop(files);
        let v = g.volume;
        let rbw = self.volumes[v].rbw();
        let to_dir = self.dir(v, id, ReplicaState::Finalized);
        if !to_dir.is_dir() {
            fs::create_dir_all(&to_dir)
                .map_err(Error::io(format!("create {}", to_dir.display())))?;
            volume::fsync_dir(&self.volumes[v].finalized())?;
        }
        rename(
            &rbw.join(meta_name(id, g.gs)),
            &to_dir.join(meta_name(id, g.gs)),
        )?;
        rename(&rbw.join(data_name(id)), &to_dir.join(data_name(id)))?;
        g.state = ReplicaState::Finalized;
        if sync {
            volume::fsync_dir(&to_dir)?;
            volume::fsync_dir(&rbw)?;
        }
        g.visible = g.bytes_on_disk;
        g.last_partial_crc = None;
        let block = Block {
            id,
            gs: g.gs,
            num_bytes: g.bytes_on_disk,
        };
        self.emit(ReplicaEvent::Received(block));
        Ok(block)
    }

    // ---------------------------------------------------------------------------------------------
    // Reading
    // ---------------------------------------------------------------------------------------------

    /// A copy of a replica's current state.
    pub fn get(&self, id: BlockId) -> Option<ReplicaView> {
        let r = self.lookup(id)?;
        let g = lock(&r.inner);
        (!g.removed).then(|| view(id, &g))
    }

    /// A replica's state with its data and meta files opened for reading. The open handles stay
    /// valid across later renames.
    pub fn open_replica(&self, id: BlockId) -> Result<(ReplicaView, File, File)> {
        let r = self.lookup(id).ok_or_else(|| not_found(id))?;
        let g = lock(&r.inner);
        if g.removed {
            return Err(not_found(id));
        }
        let v = g.volume;
        let open = |p: PathBuf| File::open(&p).map_err(Error::io(format!("open {}", p.display())));
        let res = open(self.data_path(v, id, g.state))
            .and_then(|d| Ok((d, open(self.meta_path(v, id, g.gs, g.state))?)));
        let view = view(id, &g);
        drop(g);
        match res {
            Ok((d, m)) => Ok((view, d, m)),
            Err(e) => {
                self.handle_io_error(v, Some((id, view.block.gs)), &e);
                Err(e)
            }
        }
    }

    /// Checks a finalized replica against its checksums (the block scanner's unit of work).
    pub fn verify_finalized(&self, id: BlockId) -> Result<(Verification, u64)> {
        let (view, data, meta) = match self.open_replica(id) {
            Ok(x) => x,
            Err(Error::NotFound(_)) => return Ok((Verification::Gone, 0)),
            Err(e) => return Err(e),
        };
        if view.state != ReplicaState::Finalized {
            return Ok((Verification::Gone, 0));
        }
        let len = view.bytes_on_disk;
        let check = || -> io::Result<Verification> {
            if meta::read_header(&meta).is_err() {
                return Ok(Verification::Corrupt { verified: 0 });
            }
            let verified = meta::verified_prefix(&data, &meta, len, view.bpc)?;
            let sizes_ok = data.metadata()?.len() == len
                && meta.metadata()?.len() == meta::meta_len(len, view.bpc);
            Ok(if verified == len && sizes_ok {
                Verification::Good
            } else {
                Verification::Corrupt { verified }
            })
        };
        match check() {
            Ok(v) => Ok((v, len)),
            Err(e) => {
                let e = Error::io(format!("verify {id}"))(e);
                self.handle_io_error(view.volume, Some((id, view.block.gs)), &e);
                Err(e)
            }
        }
    }

    /// Ids of all finalized replicas, for the scanner.
    pub fn finalized_ids(&self) -> Vec<BlockId> {
        let replicas: Vec<Arc<Replica>> = lock(&self.state).replicas.values().cloned().collect();
        let mut ids: Vec<BlockId> = replicas
            .iter()
            .filter(|r| lock(&r.inner).state == ReplicaState::Finalized)
            .map(|r| r.id)
            .collect();
        ids.sort();
        ids
    }

    /// Every replica with its state, for a full block report. RBW replicas report their visible
    /// length.
    pub fn block_report(&self) -> Vec<(Block, ReplicaState)> {
        let st = lock(&self.state);
        st.replicas
            .values()
            .filter_map(|r| {
                let g = lock(&r.inner);
                (!g.removed).then(|| (view(r.id, &g).block, g.state))
            })
            .collect()
    }

    /// Capacity, usage and volume counts. `remaining` counts only volumes with room for a new
    /// replica: the space left on a volume too full to take a block is of no use for placing
    /// one, and the NameNode places blocks by this number.
    pub fn totals(&self) -> StorageTotals {
        let (failed, replicas) = {
            let st = lock(&self.state);
            (
                st.failed.clone(),
                st.replicas.values().cloned().collect::<Vec<_>>(),
            )
        };
        let mut t = StorageTotals {
            num_volumes: self.volumes.len() as u32,
            failed_volumes: failed.iter().filter(|f| **f).count() as u32,
            num_blocks: replicas.len() as u64,
            ..Default::default()
        };
        for r in &replicas {
            let g = lock(&r.inner);
            t.dfs_used += g.bytes_on_disk + meta::meta_len(g.bytes_on_disk, g.bpc);
        }
        let room = self.room_for_new_replica(checksum::DEFAULT_BYTES_PER_CHECKSUM);
        for (i, v) in self.volumes.iter().enumerate() {
            if failed[i] {
                continue;
            }
            if let Ok(Space {
                capacity,
                remaining,
            }) = v.space(self.du_reserved)
            {
                t.capacity += capacity;
                if remaining >= room {
                    t.remaining += remaining;
                }
            }
        }
        t
    }

    pub fn num_volumes(&self) -> usize {
        self.volumes.len()
    }

    /// Finalized replicas and replicas being written.
    pub fn replica_counts(&self) -> (usize, usize) {
        let st = lock(&self.state);
        let (mut finalized, mut rbw) = (0, 0);
        for r in st.replicas.values() {
            let g = lock(&r.inner);
            match (g.removed, g.state) {
                (true, _) => {}
                (false, ReplicaState::Finalized) => finalized += 1,
                (false, ReplicaState::Rbw) => rbw += 1,
            }
        }
        (finalized, rbw)
    }

    /// Number of volumes still in use.
    pub fn healthy_volumes(&self) -> usize {
        lock(&self.state).failed.iter().filter(|f| !**f).count()
    }

    // ---------------------------------------------------------------------------------------------
    // Deletion and lease recovery
    // ---------------------------------------------------------------------------------------------

    /// Deletes the replica if its generation stamp is `block`'s or older (a newer one was written
    /// after the NameNode decided, and is kept). Returns whether it was deleted.
    pub fn delete(&self, block: Block) -> bool {
        let st = lock(&self.state);
        let Some(r) = st.replicas.get(&block.id).cloned() else {
            return false;
        };
        let g = lock(&r.inner);
        if g.gs > block.gs {
            warn!(block = %block.id, "not deleting: replica has newer generation stamp {}", g.gs.0);
            // The NameNode decided on an older report and dropped its record: an unfinished
            // replica is reported again, so it is judged at its stamp instead of forgotten (a
            // finalized one was reported when it was finalized).
            if g.state == ReplicaState::Rbw {
                self.emit(ReplicaEvent::Receiving(view(r.id, &g).block));
            }
            return false;
        }
        let gone = self.remove_replica(st, block.id, g);
        info!(block = %gone, "deleted replica");
        self.emit(ReplicaEvent::Deleted(gone));
        true
    }

    /// Takes a replica out of the map, cuts off its writer and removes its files; returns what it
    /// was, for the deleted report. Both locks are passed in, taken in the lock order.
    fn remove_replica(
        &self,
        mut st: MutexGuard<'_, State>,
        id: BlockId,
        mut g: MutexGuard<'_, ReplicaInner>,
    ) -> Block {
        st.replicas.remove(&id);
        drop(st);
        g.removed = true;
        g.files = None;
        g.writer = None;
        delete_files(&self.volumes[g.volume], id, g.gs, g.state);
        view(id, &g).block
    }

    /// Lease recovery, first step: cuts off any writer and returns the length of the longest
    /// prefix whose checksums verify, with the replica's generation stamp.
    pub fn recovery_init(&self, block: Block) -> Result<(u64, GenerationStamp)> {
        let r = self.lookup(block.id).ok_or_else(|| not_found(block.id))?;
        let mut g = lock(&r.inner);
        if g.removed {
            return Err(not_found(block.id));
        }
        g.writer = None;
        g.files = None;
        let v = g.volume;
        let res = (|| {
            let data_path = self.data_path(v, r.id, g.state);
            let meta_path = self.meta_path(v, r.id, g.gs, g.state);
            let data = File::open(&data_path)
                .map_err(Error::io(format!("open {}", data_path.display())))?;
            let meta = File::open(&meta_path)
                .map_err(Error::io(format!("open {}", meta_path.display())))?;
            meta::verified_prefix(&data, &meta, g.bytes_on_disk, g.bpc)
                .map_err(Error::io(format!("verify {}", r.id)))
        })();
        let gs = g.gs;
        drop(g);
        match res {
            Ok(len) => Ok((len, gs)),
            Err(e) => {
                self.handle_io_error(v, Some((r.id, gs)), &e);
                Err(e)
            }
        }
    }

    /// Lease recovery, second step: truncates the replica to `new_len`, gives it `new_gs` and
    /// finalizes it. Idempotent: a replica already finalized that way is left alone.
    pub fn recovery_finalize(
        &self,
        id: BlockId,
        new_gs: GenerationStamp,
        new_len: u64,
    ) -> Result<Block> {
        let r = self.lookup(id).ok_or_else(|| not_found(id))?;
        let mut g = lock(&r.inner);
        if g.removed {
            return Err(not_found(id));
        }
        if g.gs > new_gs {
            return Err(Error::Invalid(format!(
                "{id} has a newer generation stamp {} than {}",
                g.gs.0, new_gs.0
            )));
        }
        if g.gs == new_gs && g.state == ReplicaState::Finalized && g.bytes_on_disk == new_len {
            return Ok(view(id, &g).block);
        }
        if new_len > g.bytes_on_disk {
            return Err(Error::Invalid(format!(
                "{id} has only {} bytes, cannot recover to {new_len}",
                g.bytes_on_disk
            )));
        }
        g.writer = None;
        g.files = None;
        let v = g.volume;
        let res = self.reopen_in_rbw(id, &mut g, new_gs).and_then(|()| {
            let files = self.open_rbw_files(id, &g)?;
            truncate_files(id, &mut g, &files, new_len)?;
            g.files = Some(files);
            self.finalize_locked(id, &mut g, true)
        });
        let gs = g.gs;
        drop(g);
        if let Err(e) = &res {
            self.handle_io_error(v, Some((id, gs)), e);
        }
        res
    }

    // ---------------------------------------------------------------------------------------------
    // Volumes
    // ---------------------------------------------------------------------------------------------

    /// Disk space a replica of a whole block takes, data and checksums.
    fn room_for_new_replica(&self, bpc: u32) -> u64 {
        self.block_size + meta::meta_len(self.block_size, bpc)
    }

    /// The volume for a new replica: the one with most remaining space, round-robin among those
    /// within 1/64 of the best (volumes on one file system report the same space). A volume
    /// without room for a whole block is skipped, so a block never starts where it cannot end.
    fn choose_volume(&self, st: &mut State, bpc: u32) -> Result<usize> {
        let room = self.room_for_new_replica(bpc);
        let mut candidates = Vec::new();
        let mut most_free = 0;
        for (i, v) in self.volumes.iter().enumerate() {
            if st.failed[i] {
                continue;
            }
            match v.space(self.du_reserved) {
                Ok(s) if s.remaining >= room => candidates.push((i, s.remaining)),
                Ok(s) => most_free = most_free.max(s.remaining),
                Err(e) => warn!(volume = %v.root.display(), "cannot read free space: {e}"),
            }
        }
        let best = candidates.iter().map(|c| c.1).max().ok_or_else(|| {
            Error::NoSpace(format!(
                "no space left on this datanode: a new {}-byte block needs {room} bytes with its \
                 checksums, and no volume has more than {most_free} free beyond the {} reserved",
                self.block_size, self.du_reserved
            ))
        })?;
        let ties: Vec<usize> = candidates
            .iter()
            .filter(|c| c.1 >= best - best / 64)
            .map(|c| c.0)
            .collect();
        let n = self.volumes.len();
        let pick = (0..n)
            .map(|k| (st.next_volume + k) % n)
            .find(|i| ties.contains(i))
            .unwrap_or(ties[0]);
        st.next_volume = (pick + 1) % n;
        Ok(pick)
    }

    /// After an I/O error `e` on `volume`, met while working on `replica` (its id and the stamp
    /// it had) if it concerned one.
    ///
    /// A full disk says nothing about the volume: it stays, and the operation fails with a
    /// no-space status. Otherwise the volume is probed and failed if the probe fails too. If the
    /// probe passes, the volume works and the fault is the replica's own: a file of it is gone or
    /// unreadable (EIO), so it can never be served again. It is dropped and reported deleted, and
    /// the NameNode re-creates it from a good copy, rather than it lingering as a replica that
    /// every read and the scanner fail on until a restart.
    pub(crate) fn handle_io_error(
        &self,
        volume: usize,
        replica: Option<(BlockId, GenerationStamp)>,
        e: &Error,
    ) {
        let Error::Io { source, .. } = e else { return };
        if volume::is_no_space(source) || lock(&self.state).failed[volume] {
            return;
        }
        if let Err(probe) = self.volumes[volume].probe() {
            self.fail_volume(volume, &format!("{e}; probe: {probe}"));
            return;
        }
        let unreadable =
            source.kind() == io::ErrorKind::NotFound || source.raw_os_error() == Some(libc::EIO);
        if let (true, Some((id, gs))) = (unreadable, replica) {
            self.drop_unreadable(volume, id, gs, e);
        }
    }

    /// Drops a replica whose files cannot be read, if it is still the one that failed (same
    /// volume and stamp: not reopened, replaced or removed meanwhile).
    fn drop_unreadable(&self, volume: usize, id: BlockId, gs: GenerationStamp, e: &Error) {
        let st = lock(&self.state);
        let Some(r) = st.replicas.get(&id).cloned() else {
            return;
        };
        let g = lock(&r.inner);
        if g.removed || g.volume != volume || g.gs != gs {
            return;
        }
        let gone = self.remove_replica(st, id, g);
        error!(block = %gone, "replica is unreadable on a working volume, dropped: {e}");
        self.emit(ReplicaEvent::Deleted(gone));
    }

    /// Probes every volume in use and fails those that do not work. Returns the number of healthy
    /// volumes left.
    pub fn check_volumes(&self) -> usize {
        for (i, v) in self.volumes.iter().enumerate() {
            if lock(&self.state).failed[i] {
                continue;
            }
            if let Err(e) = v.probe() {
                self.fail_volume(i, &format!("probe: {e}"));
            }
        }
        self.healthy_volumes()
    }

    /// Stops using a volume: its replicas leave the map and are reported deleted.
    fn fail_volume(&self, volume: usize, why: &str) {
        let mut st = lock(&self.state);
        if st.failed[volume] {
            return;
        }
        st.failed[volume] = true;
        let mut lost = Vec::new();
        st.replicas.retain(|_, r| {
            let mut g = lock(&r.inner);
            if g.volume != volume {
                return true;
            }
            g.removed = true;
            g.files = None;
            g.writer = None;
            lost.push(view(r.id, &g).block);
            false
        });
        let healthy = st.failed.iter().filter(|f| !**f).count();
        drop(st);
        error!(
            volume = %self.volumes[volume].root.display(),
            lost_replicas = lost.len(),
            healthy_volumes = healthy,
            "volume failed: {why}"
        );
        for b in lost {
            self.emit(ReplicaEvent::Deleted(b));
        }
    }
}

fn view(id: BlockId, g: &ReplicaInner) -> ReplicaView {
    ReplicaView {
        block: Block {
            id,
            gs: g.gs,
            num_bytes: g.visible,
        },
        state: g.state,
        bytes_on_disk: g.bytes_on_disk,
        bpc: g.bpc,
        volume: g.volume,
    }
}

fn not_found(id: BlockId) -> Error {
    Error::NotFound(format!("{id} is not stored here"))
}

fn rename(from: &Path, to: &Path) -> Result<()> {
    fs::rename(from, to).map_err(Error::io(format!(
        "rename {} to {}",
        from.display(),
        to.display()
    )))
}

/// Truncates an RBW replica's files to `len` bytes of data, recomputing the CRC of a final partial
/// chunk from the data on disk, and fsyncs both.
fn truncate_files(id: BlockId, g: &mut ReplicaInner, files: &RbwFiles, len: u64) -> Result<()> {
    let bpc = u64::from(g.bpc);
    let ctx = || format!("truncate {id} to {len}");
    files.data.set_len(len).map_err(Error::io(ctx()))?;
    files
        .meta
        .set_len(meta::meta_len(len, g.bpc))
        .map_err(Error::io(ctx()))?;
    g.last_partial_crc = None;
    if !len.is_multiple_of(bpc) {
        let start = len - len % bpc;
        let piece = meta::read_range(&files.data, start, (len - start) as usize)
            .map_err(Error::io(ctx()))?;
        let crc = crc32c::crc32c(&piece);
        files
            .meta
            .write_all_at(&crc.to_be_bytes(), meta::checksum_pos(start / bpc))
            .map_err(Error::io(ctx()))?;
        g.last_partial_crc = Some(crc);
    }
    files.data.sync_all().map_err(Error::io(ctx()))?;
    files.meta.sync_all().map_err(Error::io(ctx()))?;
    g.bytes_on_disk = len;
    g.visible = len;
    Ok(())
}

/// The writer of one RBW replica: appends packets, acknowledges, syncs and finalizes it.
///
/// Clones share the same claim: the pipeline's receiver writes and its responder syncs, acks and
/// finalizes. Every operation first checks that the replica was not reopened or removed since.
#[derive(Clone)]
pub(crate) struct RbwWriter {
    storage: Arc<Storage>,
    replica: Arc<Replica>,
    token: u64,
    /// Created by this writer (so abandoning it may remove it).
    fresh: bool,
    /// A transfer's copy: abandoned, it is removed whatever it holds.
    temporary: bool,
}

/// Bytes of a replica being written after which the kernel is told to start writing them back
/// (as HDFS's `dfs.datanode.sync.behind.writes`): the fsync that finalizes a block then finds
/// little left to do, instead of a whole block's worth, which would stall the pipeline.
const WRITE_BEHIND: u64 = 8 << 20;

/// Starts writeback of the `WRITE_BEHIND` bytes of `file` before `end` (`sync_file_range` with
/// `SYNC_FILE_RANGE_WRITE`: it queues the I/O and does not wait for it). Best effort: durability
/// comes from the fsync at finalize and hsync.
fn start_writeback(file: &File, end: u64) {
    use std::os::fd::AsRawFd;
    // SAFETY: a plain syscall on an open descriptor; no memory is passed.
    unsafe {
        libc::sync_file_range(
            file.as_raw_fd(),
            (end - WRITE_BEHIND) as libc::off64_t,
            WRITE_BEHIND as libc::off64_t,
            libc::SYNC_FILE_RANGE_WRITE,
        );
    }
}

impl RbwWriter {
    fn claim(&self) -> Result<MutexGuard<'_, ReplicaInner>> {
        let g = lock(&self.replica.inner);
        if g.removed {
            return Err(Error::Invalid(format!(
                "{} was removed while being written",
                self.replica.id
            )));
        }
        if g.writer != Some(self.token) {
            return Err(Error::Invalid(format!(
                "{} was reopened by another writer (now generation stamp {})",
                self.replica.id, g.gs.0
            )));
        }
        Ok(g)
    }

    /// Runs `f` on the claimed replica; an I/O error triggers the volume check after the lock is
    /// released (the check may take the store lock, which comes first in the lock order).
    fn with<T>(&self, f: impl FnOnce(&mut ReplicaInner) -> Result<T>) -> Result<T> {
        let (res, v, gs) = {
            let mut g = self.claim()?;
            let res = f(&mut g);
            (res, g.volume, g.gs)
        };
        if let Err(e) = &res {
            self.storage
                .handle_io_error(v, Some((self.replica.id, gs)), e);
        }
        res
    }

    /// The block as the writer sees it: id, generation stamp and bytes on disk.
    pub fn block(&self) -> Block {
        let g = lock(&self.replica.inner);
        Block {
            id: self.replica.id,
            gs: g.gs,
            num_bytes: g.bytes_on_disk,
        }
    }

    pub fn bytes_per_checksum(&self) -> u32 {
        lock(&self.replica.inner).bpc
    }

    /// Appends `data` (at block offset `offset`, which must be the replica's length) with its
    /// chunk checksums as they came in the packet. The data is verified first and nothing is
    /// written on a mismatch. A first piece that continues a partial chunk has its CRC combined
    /// with the stored one (`crc32c_append`) and rewritten in place.
    pub fn write(&self, offset: u64, data: &[u8], sums: &[u32]) -> Result<()> {
        let id = self.replica.id;
        self.with(|g| {
            if offset != g.bytes_on_disk {
                return Err(Error::Invalid(format!(
                    "packet for {id} at offset {offset}, but the replica has {} bytes",
                    g.bytes_on_disk
                )));
            }
            checksum::verify(offset, data, sums, g.bpc).map_err(|at| {
                Error::Checksum(format!("checksum mismatch in {id} at block offset {at}"))
            })?;
            if data.is_empty() {
                return Ok(());
            }
            let bpc = u64::from(g.bpc);
            let mut stored = sums.to_vec();
            if !offset.is_multiple_of(bpc) {
                let prev = g.last_partial_crc.ok_or_else(|| {
                    Error::Internal(format!("{id} ends mid-chunk without a known partial CRC"))
                })?;
                let first = ((bpc - offset % bpc) as usize).min(data.len());
                stored[0] = crc32c::crc32c_append(prev, &data[..first]);
            }
            let files = g
                .files
                .as_ref()
                .ok_or_else(|| Error::Internal(format!("{id} has no open files")))?;
            files
                .data
                .write_all_at(data, offset)
                .map_err(Error::io(format!("write data of {id}")))?;
            files
                .meta
                .write_all_at(&checksum::encode(&stored), meta::checksum_pos(offset / bpc))
                .map_err(Error::io(format!("write checksums of {id}")))?;
            let end = offset + data.len() as u64;
            if end / WRITE_BEHIND > offset / WRITE_BEHIND {
                start_writeback(&files.data, end - end % WRITE_BEHIND);
            }
            g.bytes_on_disk = end;
            g.last_partial_crc = if !end.is_multiple_of(bpc) {
                stored.last().copied()
            } else {
                None
            };
            Ok(())
        })
    }

    /// Makes the first `end` bytes visible to readers (they were acknowledged downstream).
    pub fn ack(&self, end: u64) -> Result<()> {
        self.with(|g| {
            g.visible = g.visible.max(end.min(g.bytes_on_disk));
            Ok(())
        })
    }

    /// fsyncs data and checksums written so far (hsync).
    pub fn sync(&self) -> Result<()> {
        let id = self.replica.id;
        self.with(|g| {
            let files = g
                .files
                .as_ref()
                .ok_or_else(|| Error::Internal(format!("{id} has no open files")))?;
            files
                .data
                .sync_data()
                .map_err(Error::io(format!("fsync data of {id}")))?;
            files
                .meta
                .sync_data()
                .map_err(Error::io(format!("fsync meta of {id}")))
        })
    }

    /// Makes the replica immutable, and with `sync` durable: see `Storage::finalize_locked`.
    /// Reports it received to the NameNode (through the store's event channel).
    pub fn finalize(&self, sync: bool) -> Result<Block> {
        let id = self.replica.id;
        let storage = self.storage.clone();
        self.with(|g| storage.finalize_locked(id, g, sync))
    }

    /// Gives up the replica after a failed write: removes it if this writer created it and it
    /// holds nothing to recover, because it was never written (the pipeline could not be set up)
    /// or is a transfer's unfinished copy (HDFS removes a failed transfer's temporary replica; the
    /// NameNode schedules the copy again). A client's partly written replica stays for pipeline
    /// or lease recovery, and so does one that existed before (append, recovery).
    pub fn abandon(&self) {
        if !self.fresh {
            return;
        }
        let mut st = lock(&self.storage.state);
        let mut g = lock(&self.replica.inner);
        let holds_nothing = g.bytes_on_disk == 0 || self.temporary;
        if g.removed
            || g.writer != Some(self.token)
            || g.state != ReplicaState::Rbw
            || !holds_nothing
        {
            return;
        }
        st.replicas.remove(&self.replica.id);
        drop(st);
        g.removed = true;
        g.files = None;
        delete_files(
            &self.storage.volumes[g.volume],
            self.replica.id,
            g.gs,
            g.state,
        );
    }

    /// Reports the replica a stopped write leaves unfinished, unless it is gone or another
    /// writer has taken it over. Without this report the NameNode would learn of it only at
    /// the next full block report (hours away): a replica of an abandoned block, or one a
    /// pipeline recovery left behind at an older stamp, would hold its disk space until then.
    pub fn report_unfinished(&self) {
        let g = lock(&self.replica.inner);
        if g.removed || g.writer != Some(self.token) || g.state != ReplicaState::Rbw {
            return;
        }
        self.storage
            .emit(ReplicaEvent::Receiving(view(self.replica.id, &g).block));
    }
}

// -------------------------------------------------------------------------------------------------
// Files and the startup scan
// -------------------------------------------------------------------------------------------------

fn data_name(id: BlockId) -> String {
    format!("blk_{}", id.0)
}

fn meta_name(id: BlockId, gs: GenerationStamp) -> String {
    format!("blk_{}_{}.meta", id.0, gs.0)
}

fn dir_of(v: &Volume, id: BlockId, state: ReplicaState) -> PathBuf {
    match state {
        ReplicaState::Finalized => v.finalized_subdir(id),
        ReplicaState::Rbw => v.rbw(),
    }
}

/// Removes a replica's files; failures are logged (the files are no longer referenced).
fn delete_files(v: &Volume, id: BlockId, gs: GenerationStamp, state: ReplicaState) {
    let dir = dir_of(v, id, state);
    for p in [dir.join(data_name(id)), dir.join(meta_name(id, gs))] {
        match fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => warn!("cannot remove {}: {e}", p.display()),
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum FileName {
    Data(BlockId),
    Meta(BlockId, GenerationStamp),
}

fn parse_name(name: &str) -> Option<FileName> {
    let rest = name.strip_prefix("blk_")?;
    if let Some(meta) = rest.strip_suffix(".meta") {
        let (id, gs) = meta.split_once('_')?;
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(id) || !digits(gs) {
            return None;
        }
        Some(FileName::Meta(
            BlockId(id.parse().ok()?),
            GenerationStamp(gs.parse().ok()?),
        ))
    } else if !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()) {
        Some(FileName::Data(BlockId(rest.parse().ok()?)))
    } else {
        None
    }
}

#[derive(Default)]
struct Found {
    data: Vec<(ReplicaState, PathBuf)>,
    metas: Vec<(GenerationStamp, PathBuf)>,
}

/// Which of two copies of a replica to keep: newer stamp, then finalized, then longer.
fn better(a: &ReplicaInner, b: &ReplicaInner) -> bool {
    let rank = |r: &ReplicaInner| (r.gs, r.state == ReplicaState::Finalized, r.bytes_on_disk);
    rank(a) > rank(b)
}

fn list_dir(dir: &Path, state: ReplicaState, found: &mut BTreeMap<BlockId, Found>) -> Result<()> {
    let entries = fs::read_dir(dir).map_err(Error::io(format!("list {}", dir.display())))?;
    for entry in entries {
        let entry = entry.map_err(Error::io(format!("list {}", dir.display())))?;
        let path = entry.path();
        let name = entry.file_name();
        match name.to_str().and_then(parse_name) {
            Some(FileName::Data(id)) => found.entry(id).or_default().data.push((state, path)),
            Some(FileName::Meta(id, gs)) => found.entry(id).or_default().metas.push((gs, path)),
            None => warn!("ignoring unexpected file {}", path.display()),
        }
    }
    Ok(())
}

fn remove_logged(p: &Path, why: &str) {
    warn!("removing {}: {why}", p.display());
    if let Err(e) = fs::remove_file(p) {
        if e.kind() != io::ErrorKind::NotFound {
            warn!("cannot remove {}: {e}", p.display());
        }
    }
}

/// Loads every replica of one volume, repairing what a crash can leave behind: a meta file in the
/// other directory is moved next to its data file, older meta files and orphans are removed,
/// finalized replicas whose meta file is missing or has the wrong size are removed (not reported),
/// and RBW replicas are cut to the longest prefix whose checksums verify.
fn scan_volume(v: &Volume, index: usize) -> Result<Vec<(BlockId, ReplicaInner)>> {
    let mut found = BTreeMap::new();
    list_dir(&v.rbw(), ReplicaState::Rbw, &mut found)?;
    let fin = v.finalized();
    let entries = fs::read_dir(&fin).map_err(Error::io(format!("list {}", fin.display())))?;
    for entry in entries {
        let entry = entry.map_err(Error::io(format!("list {}", fin.display())))?;
        let path = entry.path();
        let is_subdir = entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with("subdir"));
        if is_subdir && path.is_dir() {
            list_dir(&path, ReplicaState::Finalized, &mut found)?;
        } else {
            warn!("ignoring unexpected entry {}", path.display());
        }
    }

    let mut touched = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for (id, mut f) in found {
        if f.data.is_empty() {
            for (_, p) in &f.metas {
                remove_logged(p, "meta file without a block file");
            }
            continue;
        }
        // A data file in both places cannot come from our renames; keep the finalized one.
        f.data.sort_by_key(|(s, _)| *s != ReplicaState::Finalized);
        for (_, p) in f.data.iter().skip(1) {
            remove_logged(p, "duplicate block file");
        }
        let (state, data_path) = f.data.swap_remove(0);
        f.metas.sort_by_key(|(gs, _)| std::cmp::Reverse(*gs));
        for (_, p) in f.metas.iter().skip(1) {
            remove_logged(p, "meta file with an older generation stamp");
        }
        let Some((gs, meta_path)) = f.metas.into_iter().next() else {
            remove_logged(
                &data_path,
                "block file without a meta file: replica dropped",
            );
            continue;
        };
        let dir = dir_of(v, id, state);
        let (data_path, meta_path) = {
            let want_data = dir.join(data_name(id));
            let want_meta = dir.join(meta_name(id, gs));
            for (have, want) in [(&data_path, &want_data), (&meta_path, &want_meta)] {
                if have != want {
                    if !dir.is_dir() {
                        fs::create_dir_all(&dir)
                            .map_err(Error::io(format!("create {}", dir.display())))?;
                        touched.insert(v.finalized());
                    }
                    info!("moving {} to {}", have.display(), want.display());
                    rename(have, want)?;
                    if let Some(p) = have.parent() {
                        touched.insert(p.to_path_buf());
                    }
                    touched.insert(dir.clone());
                }
            }
            (want_data, want_meta)
        };
        match load_replica(id, gs, state, index, &data_path, &meta_path) {
            Ok(Some(r)) => out.push((id, r)),
            Ok(None) => {
                remove_logged(&data_path, "replica dropped");
                remove_logged(&meta_path, "replica dropped");
            }
            Err(e) => return Err(e),
        }
    }
    for d in touched {
        volume::fsync_dir(&d)?;
    }
    Ok(out)
}

/// Loads one replica; `Ok(None)` when it is unusable (logged) and must be dropped.
fn load_replica(
    id: BlockId,
    gs: GenerationStamp,
    state: ReplicaState,
    volume: usize,
    data_path: &Path,
    meta_path: &Path,
) -> Result<Option<ReplicaInner>> {
    let ctx = |p: &Path| format!("load {}", p.display());
    let data = OpenOptions::new()
        .read(true)
        .write(true)
        .open(data_path)
        .map_err(Error::io(ctx(data_path)))?;
    let meta = OpenOptions::new()
        .read(true)
        .write(true)
        .open(meta_path)
        .map_err(Error::io(ctx(meta_path)))?;
    let bpc = match meta::read_header(&meta) {
        Ok(b) => b,
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof
            ) =>
        {
            warn!(block = %id, "bad meta header in {}: {e}", meta_path.display());
            return Ok(None);
        }
        Err(e) => return Err(Error::io(ctx(meta_path))(e)),
    };
    let len = data.metadata().map_err(Error::io(ctx(data_path)))?.len();
    let meta_size = meta.metadata().map_err(Error::io(ctx(meta_path)))?.len();
    let mut r = ReplicaInner {
        gs,
        state,
        volume,
        bpc,
        bytes_on_disk: len,
        visible: len,
        last_partial_crc: None,
        writer: None,
        files: None,
        removed: false,
    };
    match state {
        ReplicaState::Finalized => {
            if meta_size != meta::meta_len(len, bpc) {
                warn!(
                    block = %id,
                    "meta file has {meta_size} bytes, a {len}-byte block needs {}",
                    meta::meta_len(len, bpc)
                );
                return Ok(None);
            }
        }
        ReplicaState::Rbw => {
            let verified =
                meta::verified_prefix(&data, &meta, len, bpc).map_err(Error::io(ctx(data_path)))?;
            if verified != len || meta_size != meta::meta_len(len, bpc) {
                info!(block = %id, "RBW replica of {len} bytes verifies up to {verified}; truncating");
                let files = RbwFiles { data, meta };
                truncate_files(id, &mut r, &files, verified)?;
            } else if !len.is_multiple_of(u64::from(bpc)) {
                let idx = len / u64::from(bpc);
                r.last_partial_crc = meta::read_checksums(&meta, idx, 1)
                    .map_err(Error::io(ctx(meta_path)))?
                    .first()
                    .copied();
            }
        }
    }
    Ok(Some(r))
}

#[cfg(test)]
mod tests;
