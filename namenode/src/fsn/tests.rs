//! Plain tests of the decision core: every scenario drives `FsState` directly with explicit
//! times, against a real edit log in a temporary directory.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use dfs_proto::path::DfsPath;

use super::*;
use crate::editlog::EditLog;
use crate::storage;
use crate::types::{Caller, Command, DatanodeId, ReceivedDeleted, ReplicaReport, StorageReport};

/// The RPCs with their arguments spelled out, as most scenarios need them.
pub(super) trait Calls {
    fn mkdirs_(
        &mut self,
        c: &Caller,
        path: &DfsPath,
        perm: u32,
        parents: bool,
        now: Now,
    ) -> Result<()>;
    #[allow(clippy::too_many_arguments)]
    fn create_(
        &mut self,
        c: &Caller,
        path: &DfsPath,
        perm: u32,
        client: &str,
        overwrite: bool,
        parents: bool,
        replication: u32,
        block_size: u64,
        now: Now,
    ) -> Result<FileStatus>;
    fn locations_(
        &mut self,
        c: &Caller,
        path: &DfsPath,
        offset: u64,
        length: u64,
        host: &str,
        now: Now,
    ) -> Result<LocatedBlocks>;
}

impl Calls for FsState {
    fn mkdirs_(
        &mut self,
        c: &Caller,
        path: &DfsPath,
        perm: u32,
        parents: bool,
        now: Now,
    ) -> Result<()> {
        let req = MkdirsRequest {
            path: path.clone(),
            mode: NewMode::new(perm),
            create_parent: parents,
        };
        FsState::mkdirs(self, c, &req, now).map(|_| ())
    }

    fn create_(
        &mut self,
        c: &Caller,
        path: &DfsPath,
        perm: u32,
        client: &str,
        overwrite: bool,
        parents: bool,
        replication: u32,
        block_size: u64,
        now: Now,
    ) -> Result<FileStatus> {
        let req = CreateRequest {
            path: path.clone(),
            mode: NewMode::new(perm),
            client: client.to_string(),
            overwrite,
            create_parent: parents,
            replication,
            block_size,
        };
        FsState::create(self, c, &req, now)
    }

    fn locations_(
        &mut self,
        c: &Caller,
        path: &DfsPath,
        offset: u64,
        length: u64,
        host: &str,
        now: Now,
    ) -> Result<LocatedBlocks> {
        let req = LocationsRequest {
            path: path.clone(),
            offset,
            length,
            client_host: host.to_string(),
            client_name: String::new(),
            hold: false,
        };
        self.get_block_locations(c, &req, now)
    }
}

pub(super) struct Fx {
    pub(super) st: FsState,
    t0: Instant,
    _dir: tempfile::TempDir,
}

pub(super) fn p(s: &str) -> DfsPath {
    DfsPath::parse(s).unwrap()
}

pub(super) fn root() -> Caller {
    Caller::new("root", &[])
}

pub(super) fn alice() -> Caller {
    Caller::new("alice", &["users"])
}

fn test_config(dir: &std::path::Path) -> Config {
    Config {
        dir: dir.to_path_buf(),
        safemode_extension: Duration::ZERO,
        ..Config::default()
    }
}

impl Fx {
    pub(super) fn new() -> Fx {
        Fx::with(|_| {})
    }

    pub(super) fn with(tweak: impl FnOnce(&mut Config)) -> Fx {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = test_config(dir.path());
        tweak(&mut cfg);
        let loaded = storage::load_or_format(dir.path(), "root", "supergroup", 1).unwrap();
        let log = EditLog::open(&storage::current_dir(dir.path()), loaded.last_txid + 1).unwrap();
        let t0 = Instant::now();
        let st = FsState::new(
            cfg,
            loaded.ns,
            loaded.cluster_id,
            log,
            Now { at: t0, ms: 1000 },
        );
        Fx { st, t0, _dir: dir }
    }

    /// Stops the state as a NameNode stopping would (the edit log flushed and closed) and loads
    /// it again from the metadata directory, as a restarted one does; then leaves safe mode
    /// (no DataNode reports here).
    pub(super) fn restart(&mut self) {
        self.st.log.close().unwrap();
        let dir = self._dir.path();
        let loaded = storage::load_or_format(dir, "root", "supergroup", 1).unwrap();
        let log = EditLog::open(&storage::current_dir(dir), loaded.last_txid + 1).unwrap();
        let cfg = self.st.cfg.clone();
        self.st = FsState::new(cfg, loaded.ns, loaded.cluster_id, log, self.at(0));
        self.st
            .safe_mode(&root(), crate::types::SafeModeAction::Leave, self.at(0))
            .unwrap();
    }

    pub(super) fn at(&self, secs: u64) -> Now {
        Now {
            at: self.t0 + Duration::from_secs(secs),
            ms: 1000 + secs * 1000,
        }
    }

    pub(super) fn dn(&mut self, uuid: &str, port: u32) {
        let id = DatanodeId {
            uuid: uuid.into(),
            host: "127.0.0.1".into(),
            xfer_port: port,
        };
        let s = StorageReport {
            capacity: 1 << 40,
            dfs_used: 0,
            remaining: 1 << 40,
            num_volumes: 1,
            failed_volumes: 0,
        };
        self.st.register(id, s, self.at(0)).unwrap();
    }

    pub(super) fn heartbeat(&mut self, uuid: &str, secs: u64) -> Option<Vec<Command>> {
        let s = StorageReport {
            capacity: 1 << 40,
            dfs_used: 0,
            remaining: 1 << 40,
            num_volumes: 1,
            failed_volumes: 0,
        };
        self.st.heartbeat(uuid, s, 0, self.at(secs))
    }

    /// The DataNodes the NameNode knows to hold `b`.
    fn holders(&self, b: Block) -> Vec<String> {
        self.st
            .blocks
            .replicas(b.id)
            .map(|(u, _)| u.to_string())
            .collect()
    }

    /// `uuid` reports replicas a stopped write left unfinished.
    pub(super) fn receiving(&mut self, uuid: &str, blocks: &[Block]) {
        let now = self.at(0);
        let items: Vec<ReceivedDeleted> = blocks
            .iter()
            .map(|b| ReceivedDeleted::Receiving(*b))
            .collect();
        self.st
            .block_received_and_deleted(uuid, &items, now)
            .unwrap();
    }

    pub(super) fn received(&mut self, uuid: &str, b: Block) {
        let now = self.at(0);
        self.st
            .block_received_and_deleted(uuid, &[ReceivedDeleted::Received(b)], now)
            .unwrap();
    }

    /// create → one block of `len` bytes on every target → complete → release, as a client's
    /// writer does.
    pub(super) fn write_file(&mut self, path: &str, replication: u32, len: u64) -> Block {
        let now = self.at(0);
        let st = self
            .st
            .create_(
                &root(),
                &p(path),
                0o644,
                "writer",
                false,
                true,
                replication,
                len.max(1 << 20),
                now,
            )
            .unwrap();
        let lb = self
            .st
            .add_block(&block_req(&p(path), "writer", None), now)
            .unwrap();
        let b = Block {
            num_bytes: len,
            ..lb.block
        };
        for l in &lb.locations {
            self.received(&l.id.uuid.clone(), b);
        }
        assert!(self
            .st
            .complete(&p(path), "writer", Some(b), 0, now)
            .unwrap());
        self.st.release_holds("writer", &[st.inode_id]).unwrap();
        b
    }

    fn locations(&mut self, path: &str) -> Vec<String> {
        let now = self.at(0);
        let lbs = self
            .st
            .locations_(&root(), &p(path), 0, 0, "", now)
            .unwrap();
        lbs.blocks[0]
            .locations
            .iter()
            .map(|d| d.id.uuid.clone())
            .collect()
    }
}

/// An AddBlock request for `path` by `client`, excluding no DataNode, from a local client.
fn block_req<'a>(path: &'a DfsPath, client: &'a str, previous: Option<Block>) -> BlockRequest<'a> {
    static NONE: std::sync::LazyLock<HashSet<String>> = std::sync::LazyLock::new(HashSet::new);
    BlockRequest {
        path,
        client,
        previous,
        exclude: &NONE,
        file_id: 0,
        client_host: "127.0.0.1",
        log: false,
    }
}

fn transfers(cmds: &[Command]) -> Vec<(Block, Vec<String>)> {
    cmds.iter()
        .filter_map(|c| match c {
            Command::Transfer { block, targets } => {
                Some((*block, targets.iter().map(|t| t.uuid.clone()).collect()))
            }
            _ => None,
        })
        .collect()
}

fn deletes(cmds: &[Command]) -> Vec<Block> {
    cmds.iter()
        .flat_map(|c| match c {
            Command::Delete(b) => b.clone(),
            _ => Vec::new(),
        })
        .collect()
}

#[test]
fn mkdirs_semantics() {
    let mut fx = Fx::new();
    let now = fx.at(0);
    fx.st
        .mkdirs_(&root(), &p("/a/b/c"), 0o750, true, now)
        .unwrap();
    fx.st
        .mkdirs_(&root(), &p("/a/b/c"), 0o750, true, now)
        .unwrap();
    assert!(matches!(
        fx.st.mkdirs_(&root(), &p("/a/b/c"), 0, false, now),
        Err(Error::AlreadyExists(_))
    ));
    assert!(matches!(
        fx.st.mkdirs_(&root(), &p("/x/y"), 0, false, now),
        Err(Error::NotFound(_))
    ));
    fx.st
        .create_(&root(), &p("/a/f"), 0, "c", false, false, 1, 0, now)
        .unwrap();
    assert!(matches!(
        fx.st.mkdirs_(&root(), &p("/a/f/g"), 0, true, now),
        Err(Error::NotADirectory(_))
    ));
    assert!(matches!(
        fx.st.mkdirs_(&root(), &p("/a/f"), 0, true, now),
        Err(Error::AlreadyExists(_))
    ));
    let st = fx.st.get_file_info(&root(), &p("/a/b/c")).unwrap().unwrap();
    assert_eq!(st.permission, 0o750);
    // Intermediate directories keep u+wx.
    let st = fx.st.get_file_info(&root(), &p("/a/b")).unwrap().unwrap();
    assert_eq!(st.permission, 0o750 | 0o300);
    assert!(fx.st.get_file_info(&root(), &p("/nope")).unwrap().is_none());
    assert!(fx
        .st
        .get_file_info(&root(), &p("/a/f/under-a-file"))
        .unwrap()
        .is_none());
}

/// The reservation a NameNode logs at startup puts every id it hands out past whatever the
/// last run may have handed out unsynced, and survives the next restart.
#[test]
fn reserved_ids_lie_past_the_margin_and_survive_a_restart() {
    let mut fx = Fx::new();
    let now = fx.at(0);
    let before = (
        fx.st.ns.next_inode_id().0,
        fx.st.ns.next_block_id().0,
        fx.st.ns.gen_stamp().0,
    );
    fx.st.reserve_ids().unwrap();
    fx.st
        .create_(&root(), &p("/f"), 0, "c", false, false, 1, 0, now)
        .unwrap();
    let st = fx.st.get_file_info(&root(), &p("/f")).unwrap().unwrap();
    assert_eq!(st.inode_id.0, before.0 + ID_MARGIN);
    fx.restart();
    assert!(fx.st.ns.next_inode_id().0 > before.0 + ID_MARGIN);
    assert_eq!(fx.st.ns.next_block_id().0, before.1 + ID_MARGIN);
    assert_eq!(fx.st.ns.gen_stamp().0, before.2 + ID_MARGIN);
}

#[test]
fn create_validates_arguments() {
    let mut fx = Fx::new();
    let now = fx.at(0);
    let c = root();
    assert!(matches!(
        fx.st.create_(&c, &p("/f"), 0, "", false, false, 1, 0, now),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        fx.st
            .create_(&c, &p("/f"), 0, "c", false, false, 600, 0, now),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        fx.st
            .create_(&c, &p("/f"), 0, "c", false, false, 1, 1000, now),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        fx.st
            .create_(&c, &p("/f"), 0, "c", false, false, 1, 512, now),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        fx.st
            .create_(&c, &p("/d/f"), 0, "c", false, false, 1, 0, now),
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        fx.st.create_(&c, &p("/"), 0, "c", false, false, 1, 0, now),
        Err(Error::IsADirectory(_))
    ));
    // Mode 0 is a real mode (a umask of 0777), not "use the default".
    let st = fx
        .st
        .create_(&c, &p("/d/f"), 0, "c", false, true, 0, 0, now)
        .unwrap();
    assert_eq!(
        (st.replication, st.block_size, st.permission),
        (3, DEFAULT_BLOCK_SIZE, 0)
    );
    assert!(st.under_construction);
    assert!(matches!(
        fx.st.create_(&c, &p("/d"), 0, "c", true, false, 1, 0, now),
        Err(Error::IsADirectory(_))
    ));
}

#[test]
fn write_path_and_restart_state() {
    let mut fx = Fx::new();
    for (i, u) in ["d1", "d2", "d3"].iter().enumerate() {
        fx.dn(u, 5000 + i as u32);
    }
    let now = fx.at(0);
    let c = root();
    fx.st
        .create_(&c, &p("/f"), 0, "w", false, false, 3, 1024, now)
        .unwrap();
    let b1 = fx
        .st
        .add_block(&block_req(&p("/f"), "w", None), now)
        .unwrap();
    assert_eq!(b1.locations.len(), 3);
    assert_eq!(b1.offset, 0);
    // A retried AddBlock gets the same block.
    let again = fx
        .st
        .add_block(&block_req(&p("/f"), "w", None), now)
        .unwrap();
    assert_eq!(again.block, b1.block);
    let full = Block {
        num_bytes: 1024,
        ..b1.block
    };
    let b2 = fx
        .st
        .add_block(&block_req(&p("/f"), "w", Some(full)), now)
        .unwrap();
    assert_eq!(b2.offset, 1024);
    assert_ne!(b2.block.id, b1.block.id);
    // The previous block must be the last one.
    assert!(fx
        .st
        .add_block(&block_req(&p("/f"), "w", Some(full)), now)
        .is_ok_and(|b| b.block == b2.block));
    // Without naming the block being written, its length would be lost: refused.
    assert!(matches!(
        fx.st.add_block(&block_req(&p("/f"), "w", None), now),
        Err(Error::InvalidArgument(_))
    ));
    let last = Block {
        num_bytes: 100,
        ..b2.block
    };
    // No replica reported yet: not complete.
    assert!(!fx.st.complete(&p("/f"), "w", Some(last), 0, now).unwrap());
    for u in ["d1", "d2", "d3"] {
        fx.received(u, full);
    }
    fx.received("d1", last);
    assert!(fx.st.complete(&p("/f"), "w", Some(last), 0, now).unwrap());
    // Idempotent retry.
    assert!(fx.st.complete(&p("/f"), "w", Some(last), 0, now).unwrap());
    let st = fx.st.get_file_info(&c, &p("/f")).unwrap().unwrap();
    assert_eq!(st.length, 1124);
    assert!(!st.under_construction);
    let lbs = fx.st.locations_(&c, &p("/f"), 1000, 50, "", now).unwrap();
    assert_eq!(lbs.blocks.len(), 2);
    assert_eq!(lbs.file_length, 1124);
    assert!(lbs.last_block_complete);
    let lbs = fx.st.locations_(&c, &p("/f"), 1024, 10, "", now).unwrap();
    assert_eq!(lbs.blocks.len(), 1);
    assert_eq!(lbs.blocks[0].locations.len(), 1);
    // Writing after close needs a lease.
    assert!(matches!(
        fx.st.add_block(
            &BlockRequest {
                client_host: "",
                ..block_req(&p("/f"), "w", Some(last))
            },
            now
        ),
        Err(Error::LeaseExpired(_))
    ));
}

#[test]
fn a_written_block_gives_back_the_space_it_was_promised() {
    // Room for three blocks: placing a block counts one against it until the replica is
    // reported written, not until the next heartbeat (or many small files fail with no space).
    let mut fx = Fx::new();
    fx.dn("d1", 1);
    let room = StorageReport {
        capacity: 1 << 30,
        dfs_used: 0,
        remaining: 3 << 20,
        num_volumes: 1,
        failed_volumes: 0,
    };
    fx.st.heartbeat("d1", room, 0, fx.at(1)).unwrap();
    for i in 0..10 {
        fx.write_file(&format!("/small{i}"), 1, 10);
    }
}

#[test]
fn no_datanodes_is_a_clear_error() {
    let mut fx = Fx::new();
    let now = fx.at(0);
    fx.st
        .create_(&root(), &p("/f"), 0, "w", false, false, 1, 0, now)
        .unwrap();
    let e = fx
        .st
        .add_block(
            &BlockRequest {
                client_host: "",
                ..block_req(&p("/f"), "w", None)
            },
            now,
        )
        .unwrap_err();
    assert!(matches!(e, Error::NoLiveDatanodes(_)), "{e}");
}

#[test]
fn a_full_cluster_is_out_of_space_not_out_of_datanodes() {
    let mut fx = Fx::new();
    fx.dn("d1", 1);
    let full = StorageReport {
        capacity: 1 << 30,
        dfs_used: 1 << 30,
        remaining: 1000,
        num_volumes: 1,
        failed_volumes: 0,
    };
    fx.st.heartbeat("d1", full, 0, fx.at(1)).unwrap();
    let now = fx.at(1);
    fx.st
        .create_(&root(), &p("/f"), 0, "w", false, false, 1, 0, now)
        .unwrap();
    let e = fx
        .st
        .add_block(
            &BlockRequest {
                client_host: "",
                ..block_req(&p("/f"), "w", None)
            },
            now,
        )
        .unwrap_err();
    assert!(
        matches!(&e, Error::NoSpace(m) if m.starts_with("no space left")),
        "{e}"
    );
    // The client excluded the only DataNode: that is not a space problem.
    let excluded: HashSet<String> = ["d1".to_string()].into();
    let e = fx
        .st
        .add_block(
            &BlockRequest {
                path: &p("/f"),
                client: "w",
                previous: None,
                exclude: &excluded,
                file_id: 0,
                client_host: "",
                log: false,
            },
            now,
        )
        .unwrap_err();
    assert!(
        matches!(&e, Error::NoLiveDatanodes(m) if m.contains("1 of those excluded")),
        "{e}"
    );
}

#[test]
fn lease_conflicts_and_soft_limit_recovery() {
    let mut fx = Fx::new();
    fx.dn("d1", 1);
    fx.dn("d2", 2);
    let now = fx.at(0);
    let c = root();
    fx.st
        .create_(&c, &p("/f"), 0, "w1", false, false, 2, 1024, now)
        .unwrap();
    let lb = fx
        .st
        .add_block(
            &BlockRequest {
                client_host: "",
                ..block_req(&p("/f"), "w1", None)
            },
            now,
        )
        .unwrap();
    let e = fx
        .st
        .create_(&c, &p("/f"), 0, "w2", true, false, 2, 1024, now)
        .unwrap_err();
    assert!(
        matches!(e, Error::LeaseConflict(ref m) if m.contains("w1")),
        "{e}"
    );
    assert!(matches!(
        fx.st.append(&c, &p("/f"), "w2", now),
        Err(Error::LeaseConflict(_))
    ));
    assert!(matches!(
        fx.st.add_block(
            &BlockRequest {
                client_host: "",
                ..block_req(&p("/f"), "w2", None)
            },
            now
        ),
        Err(Error::LeaseConflict(_))
    ));
    // The replicas got some bytes (RBW).
    let rbw = Block {
        num_bytes: 10,
        ..lb.block
    };
    fx.receiving("d1", &[rbw]);
    // After the soft limit, append by another client starts recovery.
    let later = fx.at(61);
    fx.heartbeat("d1", 61);
    fx.heartbeat("d2", 61);
    let e = fx.st.append(&c, &p("/f"), "w2", later).unwrap_err();
    assert!(
        matches!(e, Error::LeaseConflict(ref m) if m.contains("recovery")),
        "{e}"
    );
    let st = fx.st.get_file_info(&c, &p("/f")).unwrap().unwrap();
    assert_eq!(st.lease_holder, crate::lease::RECOVERY_HOLDER);
    // The old writer has lost its lease.
    assert!(matches!(
        fx.st.complete(&p("/f"), "w1", None, 0, later),
        Err(Error::LeaseExpired(_))
    ));
    // The primary (the replica that reported) gets a RecoverBlockCommand.
    let cmds = fx.heartbeat("d1", 62).unwrap();
    let (block, new_gs) = cmds
        .iter()
        .find_map(|c| match c {
            Command::Recover { block, new_gs, .. } => Some((*block, *new_gs)),
            _ => None,
        })
        .expect("recover command");
    assert_eq!(block.id, lb.block.id);
    assert!(new_gs > lb.block.gs);
    assert!(!fx.st.recover_lease(&c, &p("/f"), "w2", fx.at(62)).unwrap());
    let d1 = DatanodeId {
        uuid: "d1".into(),
        host: "127.0.0.1".into(),
        xfer_port: 1,
    };
    fx.st
        .commit_block_synchronization(block, new_gs, 7, true, false, &[d1], fx.at(63))
        .unwrap();
    assert!(fx.st.recover_lease(&c, &p("/f"), "w2", fx.at(63)).unwrap());
    let st = fx.st.get_file_info(&c, &p("/f")).unwrap().unwrap();
    assert_eq!((st.length, st.under_construction), (7, false));
    // Now w2 may append (partial last block → reopened with a new stamp).
    let (last, _) = fx.st.append(&c, &p("/f"), "w2", fx.at(64)).unwrap();
    let last = last.unwrap();
    assert!(last.block.gs > new_gs);
    assert_eq!(last.locations.len(), 1);
}

#[test]
fn hard_limit_recovers_empty_files_and_drops_replica_less_blocks() {
    let mut fx = Fx::with(|c| c.lease_hard_limit = Duration::from_secs(100));
    fx.dn("d1", 1);
    let now = fx.at(0);
    fx.st
        .create_(&root(), &p("/empty"), 0, "gone", false, false, 1, 0, now)
        .unwrap();
    fx.st
        .create_(
            &root(),
            &p("/noreplica"),
            0,
            "gone",
            false,
            false,
            1,
            0,
            now,
        )
        .unwrap();
    fx.st
        .add_block(
            &BlockRequest {
                client_host: "",
                ..block_req(&p("/noreplica"), "gone", None)
            },
            now,
        )
        .unwrap();
    fx.st.lease_tick(fx.at(50));
    assert!(
        fx.st
            .get_file_info(&root(), &p("/empty"))
            .unwrap()
            .unwrap()
            .under_construction
    );
    fx.heartbeat("d1", 101);
    fx.st.lease_tick(fx.at(101));
    let info = |fx: &mut Fx, f: &str| fx.st.get_file_info(&root(), &p(f)).unwrap().unwrap();
    assert!(!info(&mut fx, "/empty").under_construction);
    // The block's expected pipeline (d1) is alive and may hold hflushed data nobody reported:
    // however often recovery fails, it keeps asking d1 and never drops the block blindly.
    let mut asked = None;
    for t in [101, 121, 141, 161] {
        fx.st.lease_tick(fx.at(t));
        assert!(info(&mut fx, "/noreplica").under_construction);
        let cmds = fx.heartbeat("d1", t).unwrap();
        asked = cmds.into_iter().find_map(|c| match c {
            Command::Recover { block, new_gs, .. } => Some((block, new_gs)),
            _ => None,
        });
        assert!(asked.is_some(), "d1 is asked again at {t}s");
    }
    // The primary finds no replica anywhere and says so: only then does the block go.
    let (block, new_gs) = asked.unwrap();
    fx.st
        .commit_block_synchronization(block, new_gs, 0, true, true, &[], fx.at(162))
        .unwrap();
    assert!(!info(&mut fx, "/noreplica").under_construction);
    // With no live DataNode of its pipeline left, a block nobody reported is dropped at once.
    fx.st
        .create_(
            &root(),
            &p("/orphan"),
            0,
            "gone",
            false,
            false,
            1,
            0,
            fx.at(162),
        )
        .unwrap();
    fx.st
        .add_block(
            &BlockRequest {
                client_host: "",
                ..block_req(&p("/orphan"), "gone", None)
            },
            fx.at(162),
        )
        .unwrap();
    fx.st.replication_tick(fx.at(1000)); // d1 is declared dead
    fx.st.lease_tick(fx.at(1000));
    assert!(!info(&mut fx, "/orphan").under_construction);
    for f in ["/empty", "/noreplica", "/orphan"] {
        assert_eq!(info(&mut fx, f).length, 0);
    }
    assert_eq!(fx.st.ns.num_blocks(), 0);
}

#[test]
fn recovery_asks_every_datanode_and_never_drops_acknowledged_bytes() {
    let mut fx = Fx::with(|c| c.lease_hard_limit = Duration::from_secs(100));
    fx.dn("d1", 1);
    fx.dn("d2", 2);
    let b = fx.write_file("/f", 1, 500);
    fx.st.append(&root(), &p("/f"), "gone", fx.at(1)).unwrap();
    // A NameNode restart forgets the pipeline, and the reopened replica is not reported.
    fx.st.uc_targets.clear();
    fx.st.blocks.remove_block(b.id);
    fx.heartbeat("d1", 102);
    fx.heartbeat("d2", 102);
    fx.st.lease_tick(fx.at(102));
    let asked: Vec<_> = ["d1", "d2"]
        .into_iter()
        .flat_map(|u| fx.heartbeat(u, 103).unwrap())
        .filter_map(|c| match c {
            Command::Recover {
                block,
                new_gs,
                replicas,
            } => Some((block, new_gs, replicas.len())),
            _ => None,
        })
        .collect();
    assert_eq!(asked.len(), 1, "one primary: {asked:?}");
    let (block, new_gs, asked_of) = asked[0];
    assert_eq!(asked_of, 2, "every live DataNode is asked");
    // None has it (the one holding it is down): its 500 closed bytes are not dropped.
    assert!(fx
        .st
        .commit_block_synchronization(block, new_gs, 0, true, true, &[], fx.at(104))
        .is_err());
    let info = fx.st.get_file_info(&root(), &p("/f")).unwrap().unwrap();
    assert!(info.under_construction);
    assert_eq!(info.length, 500);
}

#[test]
fn dead_datanode_triggers_re_replication() {
    let mut fx = Fx::with(|c| c.dead_interval = Duration::from_secs(30));
    for (i, u) in ["d1", "d2", "d3"].iter().enumerate() {
        fx.dn(u, 10 + i as u32);
    }
    let b = fx.write_file("/f", 2, 500);
    let holders = fx.locations("/f");
    assert_eq!(holders.len(), 2);
    let spare = ["d1", "d2", "d3"]
        .into_iter()
        .find(|u| !holders.iter().any(|h| h == u))
        .unwrap();
    // Everybody heartbeats but the first holder.
    for u in ["d1", "d2", "d3"] {
        if u != holders[0] {
            fx.heartbeat(u, 31);
        }
    }
    let stats = fx.st.replication_tick(fx.at(31));
    assert_eq!(stats.under_replicated, 1);
    assert_eq!(fx.locations("/f"), vec![holders[1].clone()]);
    let cmds = fx.heartbeat(&holders[1], 32).unwrap();
    let t = transfers(&cmds);
    assert_eq!(t, vec![(b, vec![spare.to_string()])]);
    // Not scheduled twice while pending.
    fx.st.replication_tick(fx.at(33));
    assert!(transfers(&fx.heartbeat(&holders[1], 33).unwrap()).is_empty());
    fx.received(spare, b);
    let stats = fx.st.replication_tick(fx.at(34));
    assert_eq!(stats.under_replicated, 0);
    assert_eq!(fx.st.stats().pending_replications, 0);
    // The dead node must re-register.
    assert!(fx.heartbeat(&holders[0], 35).is_none());
}

#[test]
fn pending_replication_times_out_and_is_retried() {
    let mut fx = Fx::with(|c| c.dead_interval = Duration::from_secs(1000));
    fx.dn("d1", 1);
    fx.dn("d2", 2);
    let b = fx.write_file("/f", 1, 3);
    let holder = fx.holders(b).remove(0);
    fx.st
        .set_replication(&root(), &p("/f"), 2, Now::current())
        .unwrap();
    fx.st.replication_tick(fx.at(1));
    assert_eq!(transfers(&fx.heartbeat(&holder, 1).unwrap()).len(), 1);
    fx.st.replication_tick(fx.at(5));
    assert!(transfers(&fx.heartbeat(&holder, 5).unwrap()).is_empty());
    // The copy never arrives: after the timeout it is scheduled again.
    fx.st.replication_tick(fx.at(20));
    assert_eq!(transfers(&fx.heartbeat(&holder, 20).unwrap()).len(), 1);
}

#[test]
fn a_big_copy_is_given_time_in_proportion_to_its_size() {
    let mut fx = Fx::with(|c| c.dead_interval = Duration::from_secs(1000));
    fx.dn("d1", 1);
    fx.dn("d2", 2);
    let b = fx.write_file("/big", 1, DEFAULT_BLOCK_SIZE);
    let holder = fx.holders(b).remove(0);
    fx.st
        .set_replication(&root(), &p("/big"), 2, Now::current())
        .unwrap();
    fx.st.replication_tick(fx.at(1));
    assert_eq!(transfers(&fx.heartbeat(&holder, 1).unwrap()).len(), 1);
    // A few-byte copy would be scheduled again by now; 128 MiB at a slow disk's pace may still
    // be running.
    fx.st.replication_tick(fx.at(20));
    assert!(transfers(&fx.heartbeat(&holder, 20).unwrap()).is_empty());
    fx.st.replication_tick(fx.at(60));
    assert_eq!(transfers(&fx.heartbeat(&holder, 60).unwrap()).len(), 1);
}

#[test]
fn over_replication_deletes_excess() {
    let mut fx = Fx::new();
    for (i, u) in ["d1", "d2", "d3"].iter().enumerate() {
        fx.dn(u, 10 + i as u32);
    }
    let b = fx.write_file("/f", 3, 10);
    fx.st
        .set_replication(&root(), &p("/f"), 1, Now::current())
        .unwrap();
    fx.st.replication_tick(fx.at(1));
    let mut deleted = 0;
    for u in ["d1", "d2", "d3"] {
        deleted += deletes(&fx.heartbeat(u, 1).unwrap())
            .iter()
            .filter(|d| d.id == b.id)
            .count();
    }
    assert_eq!(deleted, 2);
    assert_eq!(fx.locations("/f").len(), 1);
}

#[test]
fn corrupt_replica_is_hidden_healed_then_deleted() {
    let mut fx = Fx::new();
    for (i, u) in ["d1", "d2", "d3"].iter().enumerate() {
        fx.dn(u, 10 + i as u32);
    }
    let b = fx.write_file("/f", 2, 10);
    let holders = fx.locations("/f");
    fx.st.report_bad_blocks(&[(b, vec![holders[0].clone()])]);
    assert_eq!(fx.locations("/f"), vec![holders[1].clone()]);
    let stats = fx.st.replication_tick(fx.at(1));
    assert_eq!((stats.under_replicated, stats.corrupt_blocks), (1, 1));
    let t = transfers(&fx.heartbeat(&holders[1], 1).unwrap());
    assert_eq!(t.len(), 1);
    // The corrupt replica is kept until the copy exists, then deleted.
    assert!(deletes(&fx.heartbeat(&holders[0], 1).unwrap()).is_empty());
    fx.received(&t[0].1[0], b);
    fx.st.replication_tick(fx.at(2));
    assert_eq!(deletes(&fx.heartbeat(&holders[0], 2).unwrap()), vec![b]);
    // A block whose only replicas are corrupt is returned, flagged.
    let b2 = fx.write_file("/g", 1, 10);
    let h = fx.locations("/g");
    fx.st.report_bad_blocks(&[(b2, h.clone())]);
    let lbs = fx
        .st
        .locations_(&root(), &p("/g"), 0, 0, "", fx.at(3))
        .unwrap();
    assert!(lbs.blocks[0].corrupt);
    assert_eq!(lbs.blocks[0].locations.len(), 1);
}

#[test]
fn a_copy_whose_source_is_reported_corrupt_is_rescheduled_from_another_at_once() {
    let mut fx = Fx::new();
    for (i, u) in ["d1", "d2", "d3", "d4"].iter().enumerate() {
        fx.dn(u, 10 + i as u32);
    }
    let b = fx.write_file("/f", 3, 10);
    let holders = fx.locations("/f");
    fx.st.report_bad_blocks(&[(b, vec![holders[0].clone()])]);
    fx.st.replication_tick(fx.at(1));
    let scheduled = |fx: &mut Fx, secs| -> Vec<(String, String)> {
        holders[1..]
            .iter()
            .flat_map(|h| {
                let t = transfers(&fx.heartbeat(h, secs).unwrap());
                t.into_iter().map(|(_, to)| (h.clone(), to[0].clone()))
            })
            .collect()
    };
    let first = scheduled(&mut fx, 1);
    assert_eq!(first.len(), 1, "{first:?}");
    let (source, target) = first[0].clone();
    // The target finds the source's data corrupt and says so (reportRemoteBadBlock).
    fx.st
        .dn_report_bad_blocks(&target, &[(b, source.clone())])
        .unwrap();
    // The next pass, long before the pending copy would time out, copies from the other one.
    fx.st.replication_tick(fx.at(2));
    let second = scheduled(&mut fx, 2);
    assert_eq!(second.len(), 1, "{second:?}");
    assert_ne!(second[0].0, source);
    assert!(!fx.locations("/f").contains(&source));
}

#[test]
fn a_corrupt_replica_heals_when_every_datanode_holds_a_copy() {
    let mut fx = Fx::new();
    for (i, u) in ["d1", "d2", "d3"].iter().enumerate() {
        fx.dn(u, 10 + i as u32);
    }
    let b = fx.write_file("/f", 3, 10);
    fx.st.report_bad_blocks(&[(b, vec!["d1".into()])]);
    // No DataNode is left for a new copy: the corrupt replica goes first, to make room.
    let stats = fx.st.replication_tick(fx.at(1));
    assert_eq!((stats.under_replicated, stats.corrupt_blocks), (1, 1));
    // Until d1 has been told to delete it, d1 is no target (it would refuse the copy).
    fx.st.replication_tick(fx.at(2));
    for u in ["d2", "d3"] {
        assert!(transfers(&fx.heartbeat(u, 2).unwrap()).is_empty());
    }
    assert_eq!(deletes(&fx.heartbeat("d1", 2).unwrap()), vec![b]);
    fx.st
        .block_received_and_deleted("d1", &[ReceivedDeleted::Deleted(b)], fx.at(2))
        .unwrap();
    fx.st.replication_tick(fx.at(3));
    let t: Vec<_> = ["d2", "d3"]
        .iter()
        .flat_map(|u| transfers(&fx.heartbeat(u, 3).unwrap()))
        .collect();
    assert_eq!(t, vec![(b, vec!["d1".to_string()])]);
    fx.received("d1", b);
    let stats = fx.st.replication_tick(fx.at(4));
    assert_eq!((stats.under_replicated, stats.corrupt_blocks), (0, 0));
    let report = fx.st.fsck(&root(), &p("/f")).unwrap();
    let replicas = &report.files[0].blocks[0].replicas;
    assert_eq!(replicas.len(), 3);
    assert!(replicas.iter().all(|r| r.alive && !r.corrupt));
}

#[test]
fn re_replication_heals_blocks_with_fewest_replicas_first() {
    let mut fx = Fx::with(|c| c.replication_max_streams = 1);
    // /one on d1 only, /three on d2 only, /two on both (placement: most room, then fewest
    // blocks).
    fx.dn("d1", 1);
    let one = fx.write_file("/one", 1, 10);
    fx.dn("d2", 2);
    let two = fx.write_file("/two", 2, 10);
    let three = fx.write_file("/three", 1, 10);
    assert_eq!(fx.locations("/one"), vec!["d1"]);
    assert_eq!(fx.locations("/three"), vec!["d2"]);
    for (i, u) in ["d3", "d4", "d5"].iter().enumerate() {
        fx.dn(u, 10 + i as u32);
    }
    for f in ["/one", "/two", "/three"] {
        fx.st
            .set_replication(&root(), &p(f), 3, Now::current())
            .unwrap();
    }
    // One copy at a time per source: the blocks with one replica left take both sources, the
    // block with two waits.
    fx.st.replication_tick(fx.at(1));
    let mut t1 = transfers(&fx.heartbeat("d1", 1).unwrap());
    t1.extend(transfers(&fx.heartbeat("d2", 1).unwrap()));
    let scheduled: Vec<Block> = t1.iter().map(|(b, _)| *b).collect();
    assert_eq!(scheduled, vec![one, three]);
    for (b, targets) in &t1 {
        assert_eq!(targets.len(), 2);
        for t in targets {
            fx.received(t, *b);
        }
    }
    fx.st.replication_tick(fx.at(2));
    let mut t2 = transfers(&fx.heartbeat("d1", 2).unwrap());
    t2.extend(transfers(&fx.heartbeat("d2", 2).unwrap()));
    assert_eq!(t2.len(), 1);
    assert_eq!(t2[0].0, two);
}

#[test]
fn re_replication_is_throttled_per_source() {
    let mut fx = Fx::new(); // at most 2 copies in flight per source
    fx.dn("d1", 1);
    let blocks: Vec<Block> = (0..5)
        .map(|i| fx.write_file(&format!("/f{i}"), 1, 10))
        .collect();
    fx.dn("d2", 2);
    for i in 0..5 {
        fx.st
            .set_replication(&root(), &p(&format!("/f{i}")), 2, Now::current())
            .unwrap();
    }
    let mut copied = Vec::new();
    for t in 1..=3 {
        fx.st.replication_tick(fx.at(t));
        let sent = transfers(&fx.heartbeat("d1", t).unwrap());
        assert!(sent.len() <= 2, "{} copies at once", sent.len());
        // Nothing more while those are in flight.
        fx.st.replication_tick(fx.at(t));
        assert!(transfers(&fx.heartbeat("d1", t).unwrap()).is_empty());
        assert_eq!(fx.st.stats().pending_replications, sent.len() as u64);
        for (b, _) in sent {
            fx.received("d2", b);
            copied.push(b);
        }
    }
    copied.sort_by_key(|b| b.id);
    assert_eq!(copied, blocks);
}

#[test]
fn fsck_counts_only_what_the_replication_monitor_counts() {
    let mut fx = Fx::new();
    for (i, u) in ["d1", "d2", "d3"].iter().enumerate() {
        fx.dn(u, 10 + i as u32);
    }
    let b = fx.write_file("/f", 3, 10);
    // An append whose pipeline left d3 behind: d3 keeps the old stamp, a stale replica.
    let (last, _) = fx.st.append(&root(), &p("/f"), "w2", fx.at(1)).unwrap();
    let grown = Block {
        num_bytes: 20,
        ..last.unwrap().block
    };
    fx.received("d1", grown);
    fx.received("d2", grown);
    assert!(fx
        .st
        .complete(&p("/f"), "w2", Some(grown), 0, fx.at(2))
        .unwrap());
    // d2's block report still has its replica being written: not finalized, not a location.
    fx.st
        .block_report(
            "d2",
            &[ReplicaReport {
                block: grown,
                finalized: false,
            }],
            fx.at(2),
        )
        .unwrap();
    let report = fx.st.fsck(&root(), &p("/f")).unwrap();
    let replicas = &report.files[0].blocks[0].replicas;
    let listed: Vec<(&str, bool)> = replicas
        .iter()
        .map(|r| (r.datanode.uuid.as_str(), r.corrupt))
        .collect();
    assert_eq!(listed, vec![("d1", false), ("d3", true)], "old stamp {b}");
    let stats = fx.st.replication_tick(fx.at(3));
    assert_eq!(stats.under_replicated, 1);
}

#[test]
fn bad_block_reports_on_a_block_being_written_are_ignored() {
    let mut fx = Fx::new();
    fx.dn("d1", 1);
    let now = fx.at(0);
    fx.st
        .create_(&root(), &p("/open"), 0, "w", false, false, 1, 0, now)
        .unwrap();
    let lb = fx
        .st
        .add_block(
            &BlockRequest {
                client_host: "",
                ..block_req(&p("/open"), "w", None)
            },
            now,
        )
        .unwrap();
    let b = Block {
        num_bytes: 10,
        ..lb.block
    };
    fx.received("d1", b);
    fx.st.report_bad_blocks(&[(b, vec!["d1".into()])]);
    assert!(fx.st.complete(&p("/open"), "w", Some(b), 0, now).unwrap());
    assert_eq!(fx.locations("/open"), vec!["d1"]);
    let stats = fx.st.replication_tick(fx.at(1));
    assert_eq!(stats.corrupt_blocks, 0);
}

#[test]
fn block_reports_diff_and_delete_unknown_or_stale() {
    let mut fx = Fx::new();
    fx.dn("d1", 1);
    let b = fx.write_file("/f", 1, 10);
    let unknown = Block {
        id: BlockId(99),
        gs: GenStamp(1),
        num_bytes: 1,
    };
    let report = vec![
        ReplicaReport {
            block: unknown,
            finalized: true,
        },
        ReplicaReport {
            block: b,
            finalized: true,
        },
    ];
    fx.st.block_report("d1", &report, fx.at(1)).unwrap();
    assert_eq!(deletes(&fx.heartbeat("d1", 1).unwrap()), vec![unknown]);
    // A report without the block removes the location.
    fx.st.block_report("d1", &[], fx.at(2)).unwrap();
    assert!(fx.locations("/f").is_empty());
    // A stale stamp on a complete block is deleted.
    let stale = Block {
        gs: GenStamp(b.gs.0 - 1),
        ..b
    };
    fx.st
        .block_report(
            "d1",
            &[ReplicaReport {
                block: stale,
                finalized: true,
            }],
            fx.at(3),
        )
        .unwrap();
    assert_eq!(deletes(&fx.heartbeat("d1", 3).unwrap()), vec![stale]);
    // A wrong length is corrupt.
    let short = Block { num_bytes: 9, ..b };
    fx.st
        .block_report(
            "d1",
            &[ReplicaReport {
                block: short,
                finalized: true,
            }],
            fx.at(4),
        )
        .unwrap();
    assert_eq!(fx.st.replication_tick(fx.at(4)).corrupt_blocks, 1);
    assert!(matches!(
        fx.st.block_report("zz", &[], fx.at(4)),
        Err(Error::UnknownDatanode(_))
    ));
}

#[test]
fn an_unfinished_replica_is_deleted_when_its_block_is_gone_or_finished_without_it() {
    let mut fx = Fx::new();
    fx.dn("d1", 1);
    fx.dn("d2", 2);
    let b = fx.write_file("/f", 1, 10);
    let holder = fx.holders(b)[0].clone();
    let other = if holder == "d1" { "d2" } else { "d1" };
    // Left by a write to a block since abandoned, or by a pipeline that went on without it.
    let abandoned = Block {
        id: BlockId(99),
        gs: GenStamp(1),
        num_bytes: 0,
    };
    let behind = Block {
        gs: GenStamp(b.gs.0 - 1),
        num_bytes: 4,
        ..b
    };
    fx.receiving(other, &[abandoned, behind]);
    assert_eq!(
        deletes(&fx.heartbeat(other, 1).unwrap()),
        vec![abandoned, behind]
    );
    // A report older than the record (overtaken, or resent) leaves the record alone.
    fx.receiving(&holder, &[behind]);
    assert!(deletes(&fx.heartbeat(&holder, 1).unwrap()).is_empty());
    assert_eq!(fx.holders(b), vec![holder]);
}

#[test]
fn deleting_a_file_schedules_replica_deletion() {
    let mut fx = Fx::new();
    fx.dn("d1", 1);
    fx.dn("d2", 2);
    let b = fx.write_file("/dir/f", 2, 10);
    assert!(matches!(
        fx.st.delete(&root(), &p("/dir"), false, None, fx.at(1)),
        Err(Error::NotEmpty(_))
    ));
    assert!(fx
        .st
        .delete(&root(), &p("/dir"), true, None, fx.at(1))
        .unwrap());
    assert!(!fx
        .st
        .delete(&root(), &p("/dir"), true, None, fx.at(1))
        .unwrap());
    assert!(matches!(
        fx.st.delete(&root(), &p("/"), true, None, fx.at(1)),
        Err(Error::InvalidArgument(_))
    ));
    for u in ["d1", "d2"] {
        assert_eq!(deletes(&fx.heartbeat(u, 1).unwrap()), vec![b]);
    }
    assert_eq!(fx.st.stats().blocks, 0);
}

#[test]
fn safe_mode_after_restart_until_reports() {
    let dir = tempfile::tempdir().unwrap();
    let cur = storage::current_dir(dir.path());
    let t0 = Instant::now();
    let now = Now { at: t0, ms: 1 };
    let b = {
        let loaded = storage::load_or_format(dir.path(), "root", "supergroup", 1).unwrap();
        let log = EditLog::open(&cur, 1).unwrap();
        let mut st = FsState::new(
            test_config(dir.path()),
            loaded.ns,
            loaded.cluster_id,
            log,
            now,
        );
        assert!(!st.safemode.is_on());
        let id = DatanodeId {
            uuid: "d1".into(),
            host: "h".into(),
            xfer_port: 1,
        };
        st.register(
            id,
            StorageReport {
                remaining: 1 << 30,
                ..Default::default()
            },
            now,
        )
        .unwrap();
        st.create_(&root(), &p("/f"), 0, "w", false, false, 1, 0, now)
            .unwrap();
        let lb = st
            .add_block(
                &BlockRequest {
                    client_host: "",
                    ..block_req(&p("/f"), "w", None)
                },
                now,
            )
            .unwrap();
        let b = Block {
            num_bytes: 5,
            ..lb.block
        };
        st.block_received_and_deleted("d1", &[ReceivedDeleted::Received(b)], now)
            .unwrap();
        assert!(st.complete(&p("/f"), "w", Some(b), 0, now).unwrap());
        st.log.close().unwrap();
        b
    };
    let loaded = storage::load_or_format(dir.path(), "root", "supergroup", 1).unwrap();
    let log = EditLog::open(&cur, loaded.last_txid + 1).unwrap();
    let mut st = FsState::new(
        test_config(dir.path()),
        loaded.ns,
        loaded.cluster_id,
        log,
        now,
    );
    assert!(st.safemode.is_on());
    let e = st.mkdirs_(&root(), &p("/x"), 0, false, now).unwrap_err();
    assert!(matches!(e, Error::SafeMode(_)), "{e}");
    // Reads work.
    assert!(st.get_file_info(&root(), &p("/f")).unwrap().is_some());
    let id = DatanodeId {
        uuid: "d1".into(),
        host: "h".into(),
        xfer_port: 1,
    };
    st.register(id, StorageReport::default(), now).unwrap();
    st.block_report(
        "d1",
        &[ReplicaReport {
            block: b,
            finalized: true,
        }],
        now,
    )
    .unwrap();
    assert!(!st.safemode.is_on());
    st.mkdirs_(&root(), &p("/x"), 0, false, now).unwrap();
    // Manual safe mode needs the superuser and stays until left.
    assert!(matches!(
        st.safe_mode(&alice(), SafeModeAction::Enter, now),
        Err(Error::PermissionDenied(_))
    ));
    assert!(st.safe_mode(&root(), SafeModeAction::Enter, now).unwrap().0);
    st.update_safemode(now.at);
    assert!(st.safe_mode(&alice(), SafeModeAction::Get, now).unwrap().0);
    assert!(!st.safe_mode(&root(), SafeModeAction::Leave, now).unwrap().0);
}

#[test]
fn decommission_copies_then_retires() {
    let mut fx = Fx::new();
    fx.dn("d1", 1);
    fx.dn("d2", 2);
    let b = fx.write_file("/f", 1, 10);
    let holder = fx.locations("/f")[0].clone();
    let other = if holder == "d1" { "d2" } else { "d1" };
    assert!(matches!(
        fx.st.decommission(&alice(), &holder),
        Err(Error::PermissionDenied(_))
    ));
    fx.st
        .decommission(
            &root(),
            &format!("127.0.0.1:{}", if holder == "d1" { 1 } else { 2 }),
        )
        .unwrap();
    fx.st.replication_tick(fx.at(1));
    let t = transfers(&fx.heartbeat(&holder, 1).unwrap());
    assert_eq!(t, vec![(b, vec![other.to_string()])]);
    // Still readable from the draining node meanwhile.
    assert_eq!(fx.locations("/f"), vec![holder.clone()]);
    fx.received(other, b);
    fx.st.replication_tick(fx.at(2));
    let info = fx.st.datanode_report(fx.at(2).at);
    let d = info.iter().find(|d| d.id.uuid == holder).unwrap();
    assert_eq!(d.admin_state, AdminState::Decommissioned);
    assert_eq!(fx.locations("/f"), vec![other.to_string()]);
    // No new blocks go to a retired node.
    fx.st
        .create_(&root(), &p("/g"), 0, "w", false, false, 2, 0, fx.at(3))
        .unwrap();
    let lb = fx
        .st
        .add_block(
            &BlockRequest {
                client_host: "",
                ..block_req(&p("/g"), "w", None)
            },
            fx.at(3),
        )
        .unwrap();
    assert_eq!(lb.locations.len(), 1);
    assert_eq!(lb.locations[0].id.uuid, other);
}

#[test]
fn append_reopens_partial_last_block_with_new_stamp() {
    let mut fx = Fx::new();
    fx.dn("d1", 1);
    let b = fx.write_file("/f", 1, 10);
    let (last, st) = fx.st.append(&root(), &p("/f"), "w2", fx.at(1)).unwrap();
    let last = last.unwrap();
    assert_eq!(
        (last.block.id, last.block.num_bytes, last.offset),
        (b.id, 10, 0)
    );
    assert!(last.block.gs > b.gs);
    assert_eq!(last.locations[0].id.uuid, "d1");
    assert!(st.under_construction);
    // The pipeline finishes with the new stamp and more bytes.
    let grown = Block {
        num_bytes: 20,
        ..last.block
    };
    fx.received("d1", grown);
    assert!(fx
        .st
        .complete(&p("/f"), "w2", Some(grown), 0, fx.at(2))
        .unwrap());
    assert_eq!(
        fx.st
            .get_file_info(&root(), &p("/f"))
            .unwrap()
            .unwrap()
            .length,
        20
    );
    // A full last block is not reopened.
    let full = fx.write_file("/full", 1, 1 << 20);
    let (last, _) = fx.st.append(&root(), &p("/full"), "w3", fx.at(3)).unwrap();
    assert!(last.is_none());
    let lb = fx
        .st
        .add_block(
            &BlockRequest {
                client_host: "",
                ..block_req(&p("/full"), "w3", Some(full))
            },
            fx.at(3),
        )
        .unwrap();
    assert_eq!(lb.offset, 1 << 20);
}

#[test]
fn pipeline_recovery_updates_stamp_and_nodes() {
    let mut fx = Fx::new();
    fx.dn("d1", 1);
    fx.dn("d2", 2);
    let now = fx.at(0);
    fx.st
        .create_(&root(), &p("/f"), 0, "w", false, false, 2, 0, now)
        .unwrap();
    let lb = fx
        .st
        .add_block(
            &BlockRequest {
                client_host: "",
                ..block_req(&p("/f"), "w", None)
            },
            now,
        )
        .unwrap();
    let upd = fx.st.update_block_for_pipeline(lb.block, "w", now).unwrap();
    assert!(upd.block.gs > lb.block.gs);
    assert!(matches!(
        fx.st.update_block_for_pipeline(lb.block, "other", now),
        Err(Error::LeaseConflict(_))
    ));
    let survivor = lb.locations[0].id.clone();
    let dropped = lb.locations[1].id.uuid.clone();
    // Both replicas being written were reported (a stopped write reports its replica).
    let rbw = Block {
        num_bytes: 5,
        ..lb.block
    };
    for l in &lb.locations {
        fx.receiving(&l.id.uuid, &[rbw]);
    }
    let new = Block {
        num_bytes: 5,
        ..upd.block
    };
    fx.st
        .update_pipeline("w", lb.block, new, std::slice::from_ref(&survivor))
        .unwrap();
    // The replica the pipeline left behind is forgotten and deleted, and so is it when its
    // report comes only after the update.
    assert_eq!(fx.holders(new), vec![survivor.uuid.clone()]);
    assert_eq!(deletes(&fx.heartbeat(&dropped, 0).unwrap()), vec![rbw]);
    fx.receiving(&dropped, &[rbw]);
    assert_eq!(fx.holders(new), vec![survivor.uuid.clone()]);
    assert_eq!(deletes(&fx.heartbeat(&dropped, 0).unwrap()), vec![rbw]);
    // A stamp the NameNode never issued is refused.
    let bogus = Block {
        gs: GenStamp(new.gs.0 + 100),
        ..new
    };
    assert!(fx
        .st
        .update_pipeline("w", new, bogus, std::slice::from_ref(&survivor))
        .is_err());
    let lbs = fx.st.locations_(&root(), &p("/f"), 0, 0, "", now).unwrap();
    let last = lbs.last_block.unwrap();
    assert!(last.under_construction);
    assert_eq!(last.block, new);
    assert_eq!(last.locations.len(), 1);
    let extra = fx
        .st
        .get_additional_datanode(&p("/f"), new, &[survivor], &HashSet::new(), 1, "w", 0, now)
        .unwrap();
    assert_eq!(extra.locations.len(), 2);
    // Abandon then AddBlock again.
    fx.st.abandon_block(&p("/f"), "w", new, 0).unwrap();
    assert_eq!(
        fx.st
            .get_file_info(&root(), &p("/f"))
            .unwrap()
            .unwrap()
            .length,
        0
    );
}

#[test]
fn rename_and_permissions_through_the_core() {
    let mut fx = Fx::new();
    let now = fx.at(0);
    fx.st
        .mkdirs_(&root(), &p("/home/alice"), 0o755, true, now)
        .unwrap();
    fx.st
        .set_owner(&root(), &p("/home/alice"), "alice", "users", Now::current())
        .unwrap();
    let a = alice();
    fx.st
        .create_(&a, &p("/home/alice/f"), 0o600, "c", false, false, 1, 0, now)
        .unwrap();
    let st = fx
        .st
        .get_file_info(&a, &p("/home/alice/f"))
        .unwrap()
        .unwrap();
    assert_eq!((st.owner.as_str(), st.group.as_str()), ("alice", "users"));
    // alice cannot write into /home (root-owned 0755), bob cannot read alice's 0600 file.
    assert!(matches!(
        fx.st.mkdirs_(&a, &p("/home/x"), 0, false, now),
        Err(Error::PermissionDenied(_))
    ));
    let bob = Caller::new("bob", &[]);
    assert!(matches!(
        fx.st.locations_(&bob, &p("/home/alice/f"), 0, 0, "", now),
        Err(Error::PermissionDenied(_))
    ));
    // Not the owner: EPERM, whatever the bits (POSIX), not EACCES.
    assert!(matches!(
        fx.st
            .set_permission(&bob, &p("/home/alice/f"), 0o777, Now::current()),
        Err(Error::NotPermitted(_))
    ));
    assert!(matches!(
        fx.st.delete(&bob, &p("/home/alice/f"), false, None, now),
        Err(Error::PermissionDenied(_))
    ));
    assert!(matches!(
        fx.st
            .set_owner(&a, &p("/home/alice/f"), "bob", "", Now::current()),
        Err(Error::NotPermitted(_))
    ));
    // Rename within her directory works; the lease follows the inode.
    fx.st
        .rename(&a, &p("/home/alice/f"), &p("/home/alice/g"), false, now)
        .unwrap();
    let st = fx
        .st
        .get_file_info(&a, &p("/home/alice/g"))
        .unwrap()
        .unwrap();
    assert_eq!(st.lease_holder, "c");
    assert!(matches!(
        fx.st
            .rename(&a, &p("/home/alice"), &p("/home/alice/sub"), false, now),
        Err(Error::InvalidRename(_))
    ));
    assert!(matches!(
        fx.st
            .rename(&a, &p("/home/alice/nope"), &p("/home/alice/x"), false, now),
        Err(Error::NotFound(_))
    ));
    // A writer addressing the file by inode id survives the rename.
    fx.dn("d1", 1);
    let id = st.inode_id.0;
    fx.st
        .add_block(
            &BlockRequest {
                path: &p("/home/alice/f"),
                client: "c",
                previous: None,
                exclude: &HashSet::new(),
                file_id: id,
                client_host: "",
                log: false,
            },
            now,
        )
        .unwrap();
    // The superuser bypasses everything.
    fx.st
        .set_permission(&root(), &p("/home/alice/g"), 0o000, Now::current())
        .unwrap();
    fx.st
        .get_listing(&root(), &p("/home/alice"), "", 0)
        .unwrap();
}

#[test]
fn truncate_rules() {
    let mut fx = Fx::new();
    fx.dn("d1", 1);
    let b = fx.write_file("/f", 1, 100);
    let now = fx.at(1);
    let len = |fx: &mut Fx| {
        fx.st
            .get_file_info(&root(), &p("/f"))
            .unwrap()
            .unwrap()
            .length
    };
    // Growing adds a hole, cutting shortens the last extent: the block stays as it is.
    fx.st.truncate(&root(), &p("/f"), 200, "c", now).unwrap();
    assert_eq!(len(&mut fx), 200);
    fx.st.truncate(&root(), &p("/f"), 50, "c", now).unwrap();
    assert_eq!(len(&mut fx), 50);
    let lbs = fx.st.locations_(&root(), &p("/f"), 0, 0, "", now).unwrap();
    assert_eq!((lbs.blocks.len(), lbs.blocks[0].length), (1, 50));
    assert!(deletes(&fx.heartbeat("d1", 1).unwrap()).is_empty());
    fx.st.truncate(&root(), &p("/f"), 50, "c", now).unwrap();
    fx.st.truncate(&root(), &p("/f"), 0, "c", now).unwrap();
    assert_eq!(
        fx.st
            .get_file_info(&root(), &p("/f"))
            .unwrap()
            .unwrap()
            .length,
        0
    );
    assert_eq!(deletes(&fx.heartbeat("d1", 1).unwrap()), vec![b]);
    fx.st
        .create_(&root(), &p("/open"), 0, "w", false, false, 1, 0, now)
        .unwrap();
    assert!(matches!(
        fx.st.truncate(&root(), &p("/open"), 0, "x", now),
        Err(Error::LeaseConflict(_))
    ));
}

#[test]
fn fsync_records_length_and_content_summary_counts_it() {
    let mut fx = Fx::new();
    fx.dn("d1", 1);
    let now = fx.at(0);
    fx.st
        .create_(&root(), &p("/d/f"), 0, "w", false, true, 1, 0, now)
        .unwrap();
    fx.st
        .add_block(
            &BlockRequest {
                client_host: "",
                ..block_req(&p("/d/f"), "w", None)
            },
            now,
        )
        .unwrap();
    fx.st.fsync(&p("/d/f"), "w", 42, 0, now).unwrap();
    let s = fx.st.content_summary(&root(), &p("/d")).unwrap();
    assert_eq!(
        (s.length, s.file_count, s.directory_count, s.space_consumed),
        (42, 1, 1, 42)
    );
    let report = fx.st.fsck(&root(), &p("/")).unwrap();
    assert_eq!(report.files.len(), 1);
    assert_eq!(report.directories, 2);
    assert!(report.files[0].under_construction);
}

#[test]
fn reads_record_the_access_time_through_the_log_once_per_precision() {
    let mut fx = Fx::new();
    fx.dn("d1", 1);
    fx.write_file("/f", 1, 10);
    let atime = |fx: &mut Fx| {
        fx.st
            .get_file_info(&root(), &p("/f"))
            .unwrap()
            .unwrap()
            .atime_ms
    };
    let read_at = |fx: &mut Fx, secs: u64| {
        let now = fx.at(secs);
        fx.st.locations_(&root(), &p("/f"), 0, 0, "", now).unwrap();
        fx.st.log.last_txid()
    };
    let before = fx.st.log.last_txid();
    // Within the precision (1 h) of the last access: nothing changes, nothing is logged.
    assert_eq!(read_at(&mut fx, 10), before);
    assert_eq!(atime(&mut fx), 1000);
    // Older than the precision: one logged SetTimes, then quiet again however hot the file.
    assert_eq!(read_at(&mut fx, 3601), before + 1);
    assert_eq!(atime(&mut fx), fx.at(3601).ms);
    for s in 3602..3700 {
        assert_eq!(read_at(&mut fx, s), before + 1);
    }
    // The access time is in the log: a restart replays it.
    fx.st.log.close().unwrap();
    let loaded = storage::load_or_format(fx._dir.path(), "root", "supergroup", 1).unwrap();
    let id = loaded.ns.resolve(&p("/f")).unwrap();
    assert_eq!(loaded.ns.inode(id).unwrap().atime_ms, fx.at(3601).ms);

    // A precision of 0 never records access times.
    let mut fx = Fx::with(|c| c.access_time_precision = Duration::ZERO);
    fx.dn("d1", 1);
    fx.write_file("/f", 1, 10);
    let before = fx.st.log.last_txid();
    assert_eq!(read_at(&mut fx, 100_000), before);
    assert_eq!(atime(&mut fx), 1000);
}

#[test]
fn a_listing_limit_of_zero_still_pages_one_entry_at_a_time() {
    let mut fx = Fx::with(|c| c.listing_limit = 0);
    let now = fx.at(0);
    for d in ["/a", "/b"] {
        fx.st.mkdirs_(&root(), &p(d), 0o755, false, now).unwrap();
    }
    let (page, remaining, dir) = fx.st.get_listing(&root(), &p("/"), "", 0).unwrap();
    assert_eq!((page.len(), remaining, dir.children_num), (1, 1, 2));
    let (page, remaining, _) = fx.st.get_listing(&root(), &p("/"), "a", 5).unwrap();
    assert_eq!((page[0].name.as_str(), remaining), ("b", 0));
}

#[test]
fn log_block_commits_rewrite_the_file_survive_a_restart_and_free_what_they_replace() {
    let mut fx = Fx::new();
    fx.dn("d1", 1);
    let old = fx.write_file("/f", 1, 100);
    let (reopened, _) = fx.st.append(&root(), &p("/f"), "w", fx.at(1)).unwrap();
    // The writer rewrites: it ends the reopened block and asks for a log block.
    let reopened = reopened.unwrap().block;
    fx.received("d1", reopened);
    let log = fx
        .st
        .add_block(
            &BlockRequest {
                client_host: "",
                log: true,
                ..block_req(&p("/f"), "w", Some(reopened))
            },
            fx.at(1),
        )
        .unwrap();
    assert_eq!(log.offset, 100, "a log block maps nothing yet");
    let ext = |off, len, block_off| Extent {
        off,
        len,
        block: log.block.id,
        block_off,
    };
    let commit = |fx: &mut Fx, client: &str, block: Block, extents: Vec<Extent>, length| {
        let req = CommitRequest {
            path: &p("/f"),
            client,
            file_id: 0,
            block,
            extents,
            length,
            compact: true,
        };
        fx.st.commit_extents(req, fx.at(2))
    };
    let acked = Block {
        num_bytes: 150,
        ..log.block
    };
    // Only the lease holder, only the log block being written, only at its current stamp.
    assert!(commit(&mut fx, "other", acked, vec![ext(0, 10, 0)], 100).is_err());
    assert!(commit(&mut fx, "w", reopened, vec![ext(0, 10, 0)], 100).is_err());
    let stale = Block {
        gs: GenStamp(acked.gs.0 - 1),
        ..acked
    };
    assert!(commit(&mut fx, "w", stale, vec![ext(0, 10, 0)], 100).is_err());
    // Bytes 0..100 rewritten (the whole of the old block) and 50 more past the end.
    commit(&mut fx, "w", acked, vec![ext(0, 150, 0)], 150).unwrap();
    let st = fx.st.get_file_info(&root(), &p("/f")).unwrap().unwrap();
    assert_eq!(st.length, 150);
    assert!(
        fx.holders(old).is_empty(),
        "the replaced block is given up and its replica deleted"
    );
    fx.restart();
    let lbs = fx
        .st
        .locations_(&root(), &p("/f"), 0, u64::MAX, "", fx.at(3))
        .unwrap();
    assert_eq!(lbs.file_length, 150);
    assert_eq!(
        lbs.blocks
            .iter()
            .map(|b| (b.block.id, b.offset, b.block_offset, b.length))
            .collect::<Vec<_>>(),
        [(log.block.id, 0, 0, 150)]
    );
}
