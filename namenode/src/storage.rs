//! The metadata directory: locking, formatting, loading (image + edits) and purging.
//!
//! ```text
//! <dir>/in_use.lock                      flock'ed while a NameNode runs on <dir>
//! <dir>/current/fsimage_<txid:020>       checkpoint images (newest 2 kept)
//! <dir>/current/edits_<first txid:020>   edit-log segments (highest = being written)
//! ```
//!
//! Loading takes the newest image that reads cleanly (an older one, with a warning, if the newest
//! is damaged) and replays every later edit. Purging keeps the edits the *older* retained image
//! needs, so falling back to it is always possible.

use std::fs::{self, File, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use crate::checkpoint::{self, Image};
use crate::editlog::{list_segments, sync_dir};
use crate::error::{Error, Result};
use crate::namespace::Namespace;

/// How many images survive a purge.
pub const IMAGES_KEPT: usize = 2;

/// Holds an exclusive `flock` on `<dir>/in_use.lock` for as long as it lives, so two NameNodes
/// can never write the same edit log.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
}

impl DirLock {
    pub fn acquire(dir: &Path) -> Result<DirLock> {
        fs::create_dir_all(dir).map_err(|e| Error::io(format!("create {}", dir.display()), e))?;
        let path = dir.join("in_use.lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io(format!("open {}", path.display()), e))?;
        // SAFETY: flock on a file descriptor we own; no memory is involved.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let e = std::io::Error::last_os_error();
            return Err(Error::io(
                format!(
                    "lock {} (is another NameNode using this directory?)",
                    path.display()
                ),
                e,
            ));
        }
        Ok(DirLock { _file: file })
    }
}

/// The `current` subdirectory holding images and edits.
pub fn current_dir(dir: &Path) -> PathBuf {
    dir.join("current")
}

/// What loading produced.
#[derive(Debug)]
pub struct Loaded {
    pub ns: Namespace,
    pub cluster_id: String,
    /// Last txid applied (image + edits): the edit log continues at `last_txid + 1`.
    pub last_txid: u64,
    /// Txid of the image loaded.
    pub image_txid: u64,
    /// True when the directory was empty and has just been formatted.
    pub formatted: bool,
}

/// Loads the namespace from `dir`, formatting it first when it holds no state at all.
pub fn load_or_format(
    dir: &Path,
    superuser: &str,
    supergroup: &str,
    now_ms: u64,
) -> Result<Loaded> {
    let cur = current_dir(dir);
    fs::create_dir_all(&cur).map_err(|e| Error::io(format!("create {}", cur.display()), e))?;
    let images = checkpoint::list_images(&cur)?;
    if images.is_empty() {
        if !list_segments(&cur)?.is_empty() {
            return Err(Error::Corrupt(format!(
                "{} holds edit segments but no checkpoint image: refusing to start",
                cur.display()
            )));
        }
        let cluster_id = new_cluster_id();
        let ns = Namespace::new(superuser, supergroup, now_ms);
        checkpoint::write_image(&cur, 0, &checkpoint::encode(&ns, &cluster_id, 0))?;
        sync_dir(dir)?;
        tracing::info!(dir = %dir.display(), %cluster_id, "formatted a new namespace");
        return Ok(Loaded {
            ns,
            cluster_id,
            last_txid: 0,
            image_txid: 0,
            formatted: true,
        });
    }
    let mut first_err = None;
    for (txid, path) in &images {
        match checkpoint::read_image(path) {
            Ok(mut img) => {
                if first_err.is_some() {
                    tracing::warn!(image = %path.display(), "falling back to an older checkpoint image");
                }
                let last_txid = checkpoint::replay_onto(&cur, &mut img)?;
                let Image { cluster_id, ns, .. } = img;
                tracing::info!(image_txid = txid, last_txid, "loaded namespace");
                return Ok(Loaded {
                    ns,
                    cluster_id,
                    last_txid,
                    image_txid: *txid,
                    formatted: false,
                });
            }
            Err(e) => {
                tracing::error!(image = %path.display(), error = %e, "checkpoint image refused");
                first_err.get_or_insert(e);
            }
        }
    }
    Err(first_err.unwrap_or_else(|| Error::Corrupt("no loadable image".into())))
}

/// Deletes images beyond the newest [`IMAGES_KEPT`] and every segment whose records are all
/// covered by the oldest kept image. The segment being written is never deleted.
pub fn purge(cur: &Path) -> Result<()> {
    let images = checkpoint::list_images(cur)?;
    for (_, path) in images.iter().skip(IMAGES_KEPT) {
        fs::remove_file(path).map_err(|e| Error::io(format!("remove {}", path.display()), e))?;
    }
    let Some(min_kept) = images.iter().take(IMAGES_KEPT).map(|i| i.0).min() else {
        return Ok(());
    };
    let segments = list_segments(cur)?;
    for pair in segments.windows(2) {
        if pair[1].first_txid <= min_kept + 1 {
            fs::remove_file(&pair[0].path)
                .map_err(|e| Error::io(format!("remove {}", pair[0].path.display()), e))?;
        }
    }
    sync_dir(cur)
}

/// A fresh random cluster id (`CID-` and 32 hex digits).
pub fn new_cluster_id() -> String {
    let mut bytes = [0u8; 16];
    let from_os = File::open("/dev/urandom").and_then(|mut f| {
        use std::io::Read;
        f.read_exact(&mut bytes)
    });
    if from_os.is_err() {
        let a = crate::util::random_u64().to_be_bytes();
        let b = crate::util::random_u64().to_be_bytes();
        bytes[..8].copy_from_slice(&a);
        bytes[8..].copy_from_slice(&b);
    }
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("CID-{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::editlog::EditLog;
    use crate::namespace::tests::{create, p};
    use crate::op::Op;

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    /// Applies and logs a few ops, like the live NameNode does.
    fn log_ops(log: &mut EditLog, ns: &mut Namespace, ops: Vec<Op>) {
        let mut last = 0;
        for op in ops {
            ns.apply(&op).unwrap();
            last = log.append(&op).unwrap();
        }
        rt().block_on(log.sync_handle().synced(last)).unwrap();
    }

    fn mkdir_op(ns: &Namespace, path: &str) -> Op {
        Op::Mkdir {
            inode_id: ns.next_inode_id(),
            path: p(path),
            permission: 0o755,
            owner: "u".into(),
            group: "g".into(),
            mtime_ms: 1,
        }
    }

    /// Takes a checkpoint as the NameNode does: encode + roll, then write and purge.
    fn checkpoint(log: &mut EditLog, ns: &Namespace, cluster: &str) {
        let txid = log.last_txid();
        let bytes = checkpoint::encode(ns, cluster, txid);
        let rx = log.roll().unwrap();
        rt().block_on(rx).unwrap().unwrap();
        checkpoint::write_image(log.dir(), txid, &bytes).unwrap();
        purge(log.dir()).unwrap();
    }

    #[test]
    fn format_then_reload_then_checkpoint_restart() {
        let d = tempfile::tempdir().unwrap();
        let l = load_or_format(d.path(), "root", "sg", 1).unwrap();
        assert!(l.formatted);
        let cluster = l.cluster_id.clone();
        let mut ns = l.ns;
        let cur = current_dir(d.path());
        let mut log = EditLog::open(&cur, 1).unwrap();
        let op = mkdir_op(&ns, "/a");
        log_ops(&mut log, &mut ns, vec![op]);
        let op = mkdir_op(&ns, "/a/b");
        log_ops(&mut log, &mut ns, vec![op]);
        checkpoint(&mut log, &ns, &cluster);
        // More edits after the checkpoint.
        let op = mkdir_op(&ns, "/c");
        log_ops(&mut log, &mut ns, vec![op]);
        create(&mut ns, "/c/f", false).unwrap(); // not logged: must not come back
        log.close().unwrap();
        drop(log);

        let l = load_or_format(d.path(), "root", "sg", 1).unwrap();
        assert!(!l.formatted);
        assert_eq!(l.cluster_id, cluster);
        assert_eq!(l.image_txid, 2);
        assert_eq!(l.last_txid, 3);
        assert!(l.ns.resolve(&p("/a/b")).is_ok());
        assert!(l.ns.resolve(&p("/c")).is_ok());
        assert!(l.ns.lookup(&p("/c/f")).unwrap().is_none());
    }

    /// Power cuts at random moments of a history of mkdirs, each under a random earlier one,
    /// with syncs asked for and checkpoints in between: what loads is exactly the first k of them
    /// (never a later one without an earlier), and k covers every sync that returned.
    #[test]
    fn a_power_cut_keeps_a_prefix_of_the_history_and_everything_synced() {
        use crate::editlog::{LogOptions, PowerCut};
        use crate::util::Rng;
        let rt = rt();
        for seed in 0..60 {
            let mut rng = Rng::new(seed);
            let d = tempfile::tempdir().unwrap();
            let l = load_or_format(d.path(), "root", "sg", 1).unwrap();
            let mut ns = l.ns;
            let power = PowerCut::default();
            let opts = LogOptions {
                sync_interval: std::time::Duration::from_secs(3600),
                store: std::sync::Arc::new(power.clone()),
                ..LogOptions::default()
            };
            let mut log = EditLog::open_with(&current_dir(d.path()), 1, opts).unwrap();
            let sync = log.sync_handle();
            let mut history: Vec<String> = Vec::new();
            let mut synced = 0;
            for i in 0..50 + rng.next_u64() % 150 {
                let parent = match history.len() {
                    0 => String::new(),
                    n => history[(rng.next_u64() % n as u64) as usize].clone(),
                };
                let path = format!("{parent}/d{i}");
                let op = mkdir_op(&ns, &path);
                ns.apply(&op).unwrap();
                let txid = log.append(&op).unwrap();
                history.push(path);
                match rng.next_u64() % 16 {
                    0 => {
                        log.request_sync().unwrap();
                        rt.block_on(sync.synced(txid)).unwrap();
                        synced = history.len();
                    }
                    1 => checkpoint(&mut log, &ns, &l.cluster_id),
                    2..=5 => rt.block_on(sync.written(txid)).unwrap(),
                    _ => {}
                }
            }
            power.cut(seed).unwrap();
            drop(log);

            let l = load_or_format(d.path(), "root", "sg", 1).unwrap();
            let kept = history
                .iter()
                .take_while(|d| l.ns.resolve(&p(d)).is_ok())
                .count();
            assert!(
                kept >= synced,
                "seed {seed}: {kept} edits kept, {synced} synced"
            );
            if let Some(later) = history[kept..].iter().find(|d| l.ns.resolve(&p(d)).is_ok()) {
                panic!("seed {seed}: {later} survived though edit {kept} was lost");
            }
        }
    }

    #[test]
    fn old_segments_and_images_are_purged() {
        let d = tempfile::tempdir().unwrap();
        let l = load_or_format(d.path(), "root", "sg", 1).unwrap();
        let mut ns = l.ns;
        let cur = current_dir(d.path());
        let mut log = EditLog::open(&cur, 1).unwrap();
        for round in 0..3 {
            for i in 0..3 {
                let op = mkdir_op(&ns, &format!("/d{round}{i}"));
                log_ops(&mut log, &mut ns, vec![op]);
            }
            checkpoint(&mut log, &ns, &l.cluster_id);
        }
        log.close().unwrap();
        let images: Vec<u64> = checkpoint::list_images(&cur)
            .unwrap()
            .iter()
            .map(|i| i.0)
            .collect();
        assert_eq!(images, vec![9, 6]);
        // Segments: edits_1 (1..3) and edits_4 (4..6) are covered by image 6; edits_7 and the
        // current edits_10 remain.
        let segs: Vec<u64> = list_segments(&cur)
            .unwrap()
            .iter()
            .map(|s| s.first_txid)
            .collect();
        assert_eq!(segs, vec![7, 10]);
        // Falling back to the older image works because its edits were kept.
        let newest = cur.join(checkpoint::image_name(9));
        let mut bytes = fs::read(&newest).unwrap();
        bytes[12] ^= 1;
        fs::write(&newest, bytes).unwrap();
        let back = load_or_format(d.path(), "root", "sg", 1).unwrap();
        assert_eq!(back.image_txid, 6);
        assert_eq!(back.last_txid, 9);
        assert_eq!(back.ns, ns);
    }

    #[test]
    fn corrupt_only_image_refuses_to_start() {
        let d = tempfile::tempdir().unwrap();
        load_or_format(d.path(), "root", "sg", 1).unwrap();
        let img = current_dir(d.path()).join(checkpoint::image_name(0));
        let mut bytes = fs::read(&img).unwrap();
        bytes[0] ^= 1;
        fs::write(&img, bytes).unwrap();
        assert!(matches!(
            load_or_format(d.path(), "root", "sg", 1),
            Err(Error::Corrupt(_))
        ));
    }

    #[test]
    fn second_lock_on_a_dir_fails() {
        let d = tempfile::tempdir().unwrap();
        let _held = DirLock::acquire(d.path()).unwrap();
        assert!(DirLock::acquire(d.path()).is_err());
    }

    #[test]
    fn cluster_ids_are_random() {
        let a = new_cluster_id();
        assert_eq!(a.len(), 36);
        assert_ne!(a, new_cluster_id());
    }

    /// Metadata written by dfs 0.1 (commit 883d20d, before links, extents and inode paths):
    /// `v0.1-edits` is its directory after a kill -9 (an empty image and 26 logged ops),
    /// `v0.1-image` the same state checkpointed at a clean stop. Both load, to the same namespace.
    #[test]
    fn metadata_of_dfs_0_1_still_loads() {
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let mut loaded = Vec::new();
        for name in ["v0.1-edits", "v0.1-image"] {
            let d = tempfile::tempdir().unwrap();
            let cur = current_dir(d.path());
            fs::create_dir_all(&cur).unwrap();
            for f in fs::read_dir(fixtures.join(name).join("current")).unwrap() {
                let f = f.unwrap();
                fs::copy(f.path(), cur.join(f.file_name())).unwrap();
            }
            let l = load_or_format(d.path(), "root", "supergroup", 1).unwrap();
            assert!(!l.formatted);
            assert_eq!(l.last_txid, 26, "{name}");
            let ns = &l.ns;
            let stat = |path: &str| ns.status(ns.resolve(&p(path)).unwrap()).unwrap();
            let big = stat("/a/b/big");
            assert_eq!(
                (big.length, big.block_size, big.nlink),
                (1_500_000, 1 << 20, 1)
            );
            let f = ns.file(big.inode_id).unwrap();
            assert_eq!(f.blocks.len(), 2);
            assert!(f.is_sequential());
            assert_eq!(stat("/a/b").permission, 0o750);
            let moved = stat("/c/moved");
            assert_eq!(
                (moved.length, moved.owner.as_str(), moved.group.as_str()),
                (10, "alice", "staff")
            );
            assert_eq!(stat("/c/empty").length, 0);
            assert!(ns.resolve(&p("/c/gone")).is_err() && ns.resolve(&p("/a/small")).is_err());
            assert_eq!((ns.num_files(), ns.num_dirs(), ns.num_blocks()), (3, 4, 3));
            // Written again in today's format, it reads back the same.
            let bytes = checkpoint::encode(ns, &l.cluster_id, l.last_txid);
            let back = checkpoint::decode(&bytes, "re-encoded").unwrap();
            assert_eq!(&back.ns, ns);
            loaded.push(l.ns);
        }
        assert_eq!(loaded[0].counters(), loaded[1].counters());
    }
}
