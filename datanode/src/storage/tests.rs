//! Storage tests: real files in temporary directories.

use std::path::Path;

use super::*;

const BPC: u32 = 512;

fn bytes(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

struct Fixture {
    dirs: Vec<PathBuf>,
    _tmp: tempfile::TempDir,
}

impl Fixture {
    fn new(volumes: usize) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let dirs = (0..volumes)
            .map(|i| tmp.path().join(format!("vol{i}")))
            .collect();
        Fixture { dirs, _tmp: tmp }
    }

    fn open(&self) -> (Arc<Storage>, mpsc::UnboundedReceiver<ReplicaEvent>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Storage::open(&self.dirs, 0, tx).unwrap(), rx)
    }
}

fn write(w: &RbwWriter, offset: u64, data: &[u8]) {
    w.write(offset, data, &checksum::compute(offset, data, BPC))
        .unwrap();
    w.ack(offset + data.len() as u64).unwrap();
}

fn read_all(storage: &Storage, id: BlockId) -> (Vec<u8>, Vec<u8>) {
    let (view, data, meta) = storage.open_replica(id).unwrap();
    let d = meta::read_range(&data, 0, view.bytes_on_disk as usize).unwrap();
    let m = meta::read_range(&meta, 0, meta.metadata().unwrap().len() as usize).unwrap();
    (d, m)
}

fn expected_meta(data: &[u8]) -> Vec<u8> {
    let mut m = meta::encode_header(BPC).to_vec();
    m.extend(checksum::encode(&checksum::compute(0, data, BPC)));
    m
}

fn events(rx: &mut mpsc::UnboundedReceiver<ReplicaEvent>) -> Vec<ReplicaEvent> {
    let mut v = Vec::new();
    while let Ok(e) = rx.try_recv() {
        v.push(e);
    }
    v
}

fn file_count(dir: &Path) -> usize {
    fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

#[test]
fn unaligned_writes_finalize_and_survive_a_restart() {
    let fx = Fixture::new(1);
    let (storage, mut rx) = fx.open();
    let block = Block::new(4097, 1, 0);
    let w = storage.create(block, BPC).unwrap();
    let data = bytes(100 + 1000 + 37, 7);
    // 100 bytes, then 1000 starting mid-chunk, then an hflush-like partial tail.
    write(&w, 0, &data[..100]);
    write(&w, 100, &data[100..1100]);
    w.sync().unwrap();
    write(&w, 1100, &data[1100..]);
    let view = storage.get(block.id).unwrap();
    assert_eq!(view.state, ReplicaState::Rbw);
    assert_eq!(view.block.num_bytes, 1137);
    let done = w.finalize(true).unwrap();
    assert_eq!(done, Block::new(4097, 1, 1137));
    assert_eq!(events(&mut rx), vec![ReplicaEvent::Received(done)]);

    let subdir = fx.dirs[0].join("current/finalized/subdir10");
    assert!(subdir.join("blk_4097").is_file());
    assert!(subdir.join("blk_4097_1.meta").is_file());
    assert_eq!(file_count(&fx.dirs[0].join("current/rbw")), 0);
    let (d, m) = read_all(&storage, block.id);
    assert_eq!(d, data);
    assert_eq!(m, expected_meta(&data));
    // A finalized replica takes no more writes from its writer.
    assert!(w
        .write(1137, b"x", &checksum::compute(1137, b"x", BPC))
        .is_err());
    drop(w);
    drop(storage);

    let (storage, _rx) = fx.open();
    let view = storage.get(block.id).unwrap();
    assert_eq!(view.state, ReplicaState::Finalized);
    assert_eq!(view.block, done);
    assert_eq!(
        storage.verify_finalized(block.id).unwrap().0,
        Verification::Good
    );
    assert_eq!(
        storage.block_report(),
        vec![(done, ReplicaState::Finalized)]
    );
    let t = storage.totals();
    assert_eq!(t.dfs_used, 1137 + meta::meta_len(1137, BPC));
    assert_eq!((t.num_volumes, t.failed_volumes, t.num_blocks), (1, 0, 1));
}

#[test]
fn bad_packets_are_refused_and_nothing_is_written() {
    let fx = Fixture::new(1);
    let (storage, _rx) = fx.open();
    let w = storage.create(Block::new(1, 1, 0), BPC).unwrap();
    let data = bytes(700, 1);
    let mut sums = checksum::compute(0, &data, BPC);
    sums[1] ^= 1;
    assert!(matches!(w.write(0, &data, &sums), Err(Error::Checksum(_))));
    assert_eq!(w.block().num_bytes, 0);
    assert!(matches!(
        w.write(5, &data, &checksum::compute(5, &data, BPC)),
        Err(Error::Invalid(_))
    ));
    write(&w, 0, &data);
    let (d, m) = read_all(&storage, BlockId(1));
    assert_eq!(d, data);
    assert_eq!(m, expected_meta(&data));
    assert!(matches!(
        storage.create(Block::new(1, 1, 0), BPC),
        Err(Error::Exists(_))
    ));
    assert!(matches!(
        storage.create(Block::new(2, 1, 0), 0),
        Err(Error::Invalid(_))
    ));
}

#[test]
fn append_reopens_a_finalized_replica_with_the_new_stamp() {
    let fx = Fixture::new(1);
    let (storage, mut rx) = fx.open();
    let w = storage.create(Block::new(9, 1, 0), BPC).unwrap();
    let data = bytes(1300, 3);
    write(&w, 0, &data[..1000]);
    w.finalize(true).unwrap();
    events(&mut rx);

    assert!(matches!(
        storage.append(Block::new(9, 2, 0), 999, BPC),
        Err(Error::Invalid(_))
    ));
    assert!(matches!(
        storage.append(Block::new(9, 2, 0), 1000, 256),
        Err(Error::Invalid(_))
    ));
    assert!(matches!(
        storage.append(Block::new(10, 2, 0), 0, BPC),
        Err(Error::NotFound(_))
    ));
    let w = storage.append(Block::new(9, 2, 0), 1000, BPC).unwrap();
    assert_eq!(storage.get(BlockId(9)).unwrap().state, ReplicaState::Rbw);
    write(&w, 1000, &data[1000..]);
    let done = w.finalize(true).unwrap();
    assert_eq!(done, Block::new(9, 2, 1300));
    assert_eq!(events(&mut rx), vec![ReplicaEvent::Received(done)]);
    let (d, m) = read_all(&storage, BlockId(9));
    assert_eq!(d, data);
    assert_eq!(m, expected_meta(&data));
    let subdir = fx.dirs[0].join("current/finalized/subdir00");
    assert!(!subdir.join("blk_9_1.meta").exists());
    assert!(subdir.join("blk_9_2.meta").exists());
    assert_eq!(
        storage.verify_finalized(BlockId(9)).unwrap().0,
        Verification::Good
    );
}

#[test]
fn pipeline_recovery_truncates_and_cuts_off_the_old_writer() {
    let fx = Fixture::new(1);
    let (storage, _rx) = fx.open();
    let old = storage.create(Block::new(5, 1, 0), BPC).unwrap();
    let data = bytes(2000, 9);
    write(&old, 0, &data);
    assert!(matches!(
        storage.recover(Block::new(5, 2, 0), 2001, BPC),
        Err(Error::Invalid(_))
    ));
    let w = storage.recover(Block::new(5, 2, 0), 700, BPC).unwrap();
    let view = storage.get(BlockId(5)).unwrap();
    assert_eq!(
        (view.block.num_bytes, view.bytes_on_disk, view.block.gs.0),
        (700, 700, 2)
    );
    // The old pipeline's writer must not touch the replica any more.
    assert!(old
        .write(2000, b"zz", &checksum::compute(2000, b"zz", BPC))
        .is_err());
    assert!(old.finalize(true).is_err());

    let tail = bytes(300, 4);
    write(&w, 700, &tail);
    w.finalize(true).unwrap();
    let mut want = data[..700].to_vec();
    want.extend(&tail);
    let (d, m) = read_all(&storage, BlockId(5));
    assert_eq!(d, want);
    assert_eq!(m, expected_meta(&want));
    assert!(!fx.dirs[0].join("current/rbw/blk_5_1.meta").exists());

    // Recovery of a finalized replica moves it back to rbw; a node without it starts empty.
    let w = storage.recover(Block::new(5, 3, 0), 1000, BPC).unwrap();
    assert_eq!(storage.get(BlockId(5)).unwrap().state, ReplicaState::Rbw);
    w.finalize(true).unwrap();
    let w = storage.recover(Block::new(6, 3, 0), 0, BPC).unwrap();
    assert_eq!(w.block(), Block::new(6, 3, 0));
    assert!(matches!(
        storage.recover(Block::new(7, 3, 0), 10, BPC),
        Err(Error::NotFound(_))
    ));
}

#[test]
fn rbw_replicas_are_cut_to_their_verified_prefix_on_restart() {
    let fx = Fixture::new(1);
    let data = bytes(1500, 5);
    {
        let (storage, _rx) = fx.open();
        let w = storage.create(Block::new(77, 4, 0), BPC).unwrap();
        write(&w, 0, &data);
        let w2 = storage.create(Block::new(78, 4, 0), BPC).unwrap();
        write(&w2, 0, &data[..1100]);
    }
    // Damage the third chunk of blk_77 as a torn write would.
    let path = fx.dirs[0].join("current/rbw/blk_77");
    let f = OpenOptions::new().write(true).open(&path).unwrap();
    f.write_all_at(b"\xff\xff", 1200).unwrap();
    drop(f);

    let (storage, _rx) = fx.open();
    let v = storage.get(BlockId(77)).unwrap();
    assert_eq!(
        (v.state, v.bytes_on_disk, v.block.num_bytes),
        (ReplicaState::Rbw, 1024, 1024)
    );
    assert_eq!(fs::metadata(&path).unwrap().len(), 1024);
    let v2 = storage.get(BlockId(78)).unwrap();
    assert_eq!(v2.bytes_on_disk, 1100);
    let mut report = storage.block_report();
    report.sort_by_key(|(b, _)| b.id);
    assert_eq!(
        report,
        vec![
            (Block::new(77, 4, 1024), ReplicaState::Rbw),
            (Block::new(78, 4, 1100), ReplicaState::Rbw),
        ]
    );
    // The reloaded partial chunk can be extended by a recovery writer.
    let w = storage.recover(Block::new(78, 5, 0), 1100, BPC).unwrap();
    write(&w, 1100, &data[1100..]);
    w.finalize(true).unwrap();
    let (d, m) = read_all(&storage, BlockId(78));
    assert_eq!(d, data);
    assert_eq!(m, expected_meta(&data));
}

#[test]
fn corruption_is_detected_and_bad_replicas_are_dropped_at_startup() {
    let fx = Fixture::new(1);
    let data = bytes(3000, 2);
    {
        let (storage, _rx) = fx.open();
        for id in [1u64, 2, 3, 4] {
            let w = storage.create(Block::new(id, 1, 0), BPC).unwrap();
            write(&w, 0, &data);
            w.finalize(true).unwrap();
        }
        // Flip one data byte of blk_1: the scanner check finds it.
        let p = fx.dirs[0].join("current/finalized/subdir00/blk_1");
        let f = OpenOptions::new().write(true).open(&p).unwrap();
        f.write_all_at(b"\x00", 2000).unwrap();
        assert_eq!(
            storage.verify_finalized(BlockId(1)).unwrap().0,
            Verification::Corrupt { verified: 1536 }
        );
        // Flip one checksum of blk_2.
        let p = fx.dirs[0].join("current/finalized/subdir00/blk_2_1.meta");
        let f = OpenOptions::new().write(true).open(&p).unwrap();
        f.write_all_at(b"\x00\x00\x00\x00", meta::checksum_pos(0))
            .unwrap();
        assert_eq!(
            storage.verify_finalized(BlockId(2)).unwrap().0,
            Verification::Corrupt { verified: 0 }
        );
        assert_eq!(
            storage.verify_finalized(BlockId(4)).unwrap().0,
            Verification::Good
        );
        assert_eq!(
            storage.verify_finalized(BlockId(99)).unwrap().0,
            Verification::Gone
        );
    }
    // blk_3 loses its meta tail, blk_4 its meta file entirely.
    let sub = fx.dirs[0].join("current/finalized/subdir00");
    OpenOptions::new()
        .write(true)
        .open(sub.join("blk_3_1.meta"))
        .unwrap()
        .set_len(14)
        .unwrap();
    fs::remove_file(sub.join("blk_4_1.meta")).unwrap();
    fs::write(sub.join("blk_55_1.meta"), b"orphan").unwrap();

    let (storage, _rx) = fx.open();
    assert!(storage.get(BlockId(3)).is_none());
    assert!(storage.get(BlockId(4)).is_none());
    assert!(!sub.join("blk_3").exists() && !sub.join("blk_4").exists());
    assert!(!sub.join("blk_55_1.meta").exists());
    // Content corruption is the scanner's job: the replica loads and fails verification.
    assert_eq!(
        storage.verify_finalized(BlockId(1)).unwrap().0,
        Verification::Corrupt { verified: 1536 }
    );
}

#[test]
fn a_replica_whose_files_vanish_on_a_working_volume_is_dropped_and_reported() {
    let fx = Fixture::new(1);
    let (storage, mut rx) = fx.open();
    let data = bytes(3000, 4);
    let mut done = Vec::new();
    for id in [1u64, 2, 3] {
        let w = storage.create(Block::new(id, 1, 0), BPC).unwrap();
        write(&w, 0, &data);
        done.push(w.finalize(true).unwrap());
    }
    events(&mut rx);
    let sub = fx.dirs[0].join("current/finalized/subdir00");
    // A reader opening blk_1 without its checksum file, and the scanner verifying blk_2 without
    // its block file: both are lost replicas, not a failed volume.
    fs::remove_file(sub.join("blk_1_1.meta")).unwrap();
    fs::remove_file(sub.join("blk_2")).unwrap();
    assert!(matches!(
        storage.open_replica(BlockId(1)),
        Err(Error::Io { .. })
    ));
    assert!(storage.verify_finalized(BlockId(2)).is_err());
    assert_eq!(
        events(&mut rx),
        vec![
            ReplicaEvent::Deleted(done[0]),
            ReplicaEvent::Deleted(done[1])
        ]
    );
    assert!(storage.get(BlockId(1)).is_none() && storage.get(BlockId(2)).is_none());
    assert!(!sub.join("blk_1").exists() && !sub.join("blk_2_1.meta").exists());
    assert_eq!(storage.healthy_volumes(), 1);
    assert_eq!(
        storage.verify_finalized(BlockId(3)).unwrap().0,
        Verification::Good
    );
    // A lost replica can be written again (re-replication brings a good copy).
    let w = storage.create(Block::new(1, 1, 0), BPC).unwrap();
    write(&w, 0, &data);
    w.finalize(true).unwrap();
    assert_eq!(
        storage.verify_finalized(BlockId(1)).unwrap().0,
        Verification::Good
    );
}

#[test]
fn new_replicas_go_only_where_a_whole_block_fits() {
    let fx = Fixture::new(2);
    let (tx, _rx) = mpsc::unbounded_channel();
    // Blocks bigger than any disk: no volume can take one, yet none has failed.
    let storage = Storage::open_sized(&fx.dirs, 0, u64::MAX / 4, tx).unwrap();
    let Err(e) = storage.create(Block::new(1, 1, 0), BPC) else {
        panic!("a replica was created where no block fits");
    };
    assert!(
        matches!(&e, Error::NoSpace(m) if m.contains("no space left")),
        "{e}"
    );
    assert_eq!(storage.healthy_volumes(), 2);
    let t = storage.totals();
    assert!(t.capacity > 0);
    assert_eq!(t.remaining, 0, "space no block fits in is not remaining");
    assert_eq!(storage.check_volumes(), 2);
}

#[test]
fn a_crash_between_the_two_renames_is_repaired() {
    let fx = Fixture::new(1);
    let data = bytes(600, 8);
    {
        let (storage, _rx) = fx.open();
        let w = storage.create(Block::new(300, 2, 0), BPC).unwrap();
        write(&w, 0, &data);
        w.sync().unwrap();
    }
    // As if finalize crashed after moving the meta file: data in rbw, meta in finalized.
    let rbw = fx.dirs[0].join("current/rbw");
    let sub = fx.dirs[0].join("current/finalized/subdir01");
    fs::create_dir_all(&sub).unwrap();
    fs::rename(rbw.join("blk_300_2.meta"), sub.join("blk_300_2.meta")).unwrap();
    // And a stale meta file with an older stamp next to it.
    fs::write(rbw.join("blk_300_1.meta"), meta::encode_header(BPC)).unwrap();

    let (storage, _rx) = fx.open();
    let v = storage.get(BlockId(300)).unwrap();
    assert_eq!(
        (v.state, v.bytes_on_disk, v.block.gs.0),
        (ReplicaState::Rbw, 600, 2)
    );
    assert!(rbw.join("blk_300_2.meta").exists());
    assert!(!rbw.join("blk_300_1.meta").exists());
    assert!(!sub.join("blk_300_2.meta").exists());
}

#[test]
fn stale_replicas_are_replaced_and_deletes_respect_the_stamp() {
    let fx = Fixture::new(1);
    let (storage, mut rx) = fx.open();
    let w = storage.create(Block::new(1, 3, 0), BPC).unwrap();
    write(&w, 0, &bytes(10, 0));
    w.finalize(true).unwrap();
    assert!(matches!(
        storage.create(Block::new(1, 2, 0), BPC),
        Err(Error::Exists(_))
    ));
    let w = storage.create(Block::new(1, 4, 0), BPC).unwrap();
    assert!(!fx.dirs[0].join("current/finalized/subdir00/blk_1").exists());
    write(&w, 0, &bytes(20, 1));
    w.finalize(true).unwrap();
    events(&mut rx);

    assert!(!storage.delete(Block::new(1, 3, 20)));
    assert!(storage.get(BlockId(1)).is_some());
    assert!(storage.delete(Block::new(1, 4, 20)));
    assert!(storage.get(BlockId(1)).is_none());
    assert_eq!(
        events(&mut rx),
        vec![ReplicaEvent::Deleted(Block::new(1, 4, 20))]
    );
    assert_eq!(
        file_count(&fx.dirs[0].join("current/finalized/subdir00")),
        0
    );
    assert!(!storage.delete(Block::new(1, 4, 20)));
}

#[test]
fn a_failed_transfer_leaves_nothing_that_refuses_the_next() {
    let fx = Fixture::new(1);
    let (storage, _rx) = fx.open();
    let rbw = fx.dirs[0].join("current/rbw");
    let b = Block::new(7, 5, 0);
    // A transfer's copy that stopped half-way is removed when abandoned.
    let w = storage.create_temporary(b, BPC).unwrap();
    write(&w, 0, &bytes(3000, 2));
    w.abandon();
    assert!(storage.get(b.id).is_none());
    assert_eq!(file_count(&rbw), 0);

    // One left behind (its writer never gave it up) is replaced by the next copy, not refused;
    // a client's create of the same stamp is still refused.
    let stuck = storage.create_temporary(b, BPC).unwrap();
    write(&stuck, 0, &bytes(1000, 3));
    assert!(matches!(storage.create(b, BPC), Err(Error::Exists(_))));
    let w = storage.create_temporary(b, BPC).unwrap();
    assert!(stuck.write(1000, &[1], &[crc32c::crc32c(&[1])]).is_err());
    let data = bytes(2000, 4);
    write(&w, 0, &data);
    w.finalize(true).unwrap();
    assert_eq!(read_all(&storage, b.id).0, data);
    // A finalized replica of the stamp is the block itself: a copy of it is refused.
    assert!(matches!(
        storage.create_temporary(b, BPC),
        Err(Error::Exists(_))
    ));

    // A client's partly written replica stays for recovery when its pipeline fails.
    let c = Block::new(8, 5, 0);
    let w = storage.create(c, BPC).unwrap();
    write(&w, 0, &bytes(700, 5));
    w.abandon();
    assert_eq!(storage.get(c.id).unwrap().block.num_bytes, 700);
}

#[test]
fn lease_recovery_steps() {
    let fx = Fixture::new(1);
    let (storage, mut rx) = fx.open();
    let w = storage.create(Block::new(8, 1, 0), BPC).unwrap();
    let data = bytes(1500, 6);
    write(&w, 0, &data);
    assert_eq!(
        storage.recovery_init(Block::new(8, 1, 0)).unwrap(),
        (1500, GenerationStamp(1))
    );
    // The writer is cut off by the recovery.
    assert!(w.finalize(true).is_err());
    assert!(matches!(
        storage.recovery_finalize(BlockId(8), GenerationStamp(5), 1501),
        Err(Error::Invalid(_))
    ));
    let b = storage
        .recovery_finalize(BlockId(8), GenerationStamp(5), 1000)
        .unwrap();
    assert_eq!(b, Block::new(8, 5, 1000));
    assert_eq!(events(&mut rx), vec![ReplicaEvent::Received(b)]);
    // Idempotent.
    assert_eq!(
        storage
            .recovery_finalize(BlockId(8), GenerationStamp(5), 1000)
            .unwrap(),
        b
    );
    let (d, m) = read_all(&storage, BlockId(8));
    assert_eq!(d, &data[..1000]);
    assert_eq!(m, expected_meta(&data[..1000]));
    assert_eq!(
        storage.verify_finalized(BlockId(8)).unwrap().0,
        Verification::Good
    );
    assert!(matches!(
        storage.recovery_finalize(BlockId(8), GenerationStamp(4), 10),
        Err(Error::Invalid(_))
    ));
}

#[test]
fn a_failed_volume_is_dropped_and_the_store_keeps_working() {
    let fx = Fixture::new(2);
    let (storage, mut rx) = fx.open();
    let uuid = storage.uuid().to_string();
    // Volumes on one file system tie, so new replicas alternate between them.
    let mut on = [Vec::new(), Vec::new()];
    for id in 1..=4u64 {
        let w = storage.create(Block::new(id, 1, 0), BPC).unwrap();
        write(&w, 0, &bytes(100, id as u8));
        let b = w.finalize(true).unwrap();
        on[storage.get(BlockId(id)).unwrap().volume].push(b);
    }
    assert_eq!((on[0].len(), on[1].len()), (2, 2));
    let open_writer = storage.create(Block::new(10, 1, 0), BPC).unwrap();
    let writer_volume = storage.get(BlockId(10)).unwrap().volume;
    events(&mut rx);

    // The volume's directory vanishes (disk pulled, unmounted ...).
    fs::remove_dir_all(&fx.dirs[writer_volume]).unwrap();
    write(&open_writer, 0, b"still open");
    assert!(
        open_writer.finalize(true).is_err(),
        "finalize on a vanished volume must fail"
    );
    assert_eq!(storage.healthy_volumes(), 1);
    let mut deleted: Vec<Block> = events(&mut rx)
        .into_iter()
        .map(|e| match e {
            ReplicaEvent::Deleted(b) => b,
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    deleted.sort_by_key(|b| b.id);
    let mut want = on[writer_volume].clone();
    want.push(Block::new(10, 1, 10));
    assert_eq!(deleted, want);
    for b in &on[writer_volume] {
        assert!(storage.get(b.id).is_none());
    }
    for b in &on[1 - writer_volume] {
        assert_eq!(
            storage.verify_finalized(b.id).unwrap().0,
            Verification::Good
        );
    }
    let w = storage.create(Block::new(20, 1, 0), BPC).unwrap();
    write(&w, 0, b"new data");
    w.finalize(true).unwrap();
    assert_eq!(storage.get(BlockId(20)).unwrap().volume, 1 - writer_volume);
    assert_eq!(storage.totals().failed_volumes, 1);
    assert_eq!(storage.check_volumes(), 1);

    drop(storage);

    // On restart the vanished volume is recreated empty under the same DataNode uuid, and the
    // replicas of the surviving one are all there.
    let (storage, _rx) = fx.open();
    assert_eq!(storage.uuid(), uuid);
    assert_eq!(storage.healthy_volumes(), 2);
    let mut ids: Vec<u64> = storage.block_report().iter().map(|(b, _)| b.id.0).collect();
    ids.sort();
    let mut want: Vec<u64> = on[1 - writer_volume].iter().map(|b| b.id.0).collect();
    want.push(20);
    assert_eq!(ids, want);

    // Both go: nothing left to write on.
    for d in &fx.dirs {
        fs::remove_dir_all(d).unwrap();
    }
    assert_eq!(storage.check_volumes(), 0);
    assert!(matches!(
        storage.create(Block::new(30, 1, 0), BPC),
        Err(Error::NoSpace(_))
    ));
}

#[test]
fn volumes_of_different_datanodes_are_refused() {
    let a = Fixture::new(1);
    let b = Fixture::new(1);
    let (sa, _) = a.open();
    let (sb, _) = b.open();
    assert_ne!(sa.uuid(), sb.uuid());
    let (tx, _rx) = mpsc::unbounded_channel();
    let err = Storage::open(&[a.dirs[0].clone(), b.dirs[0].clone()], 0, tx)
        .err()
        .unwrap();
    assert!(matches!(err, Error::Volume { .. }), "{err}");
    let (tx, _rx) = mpsc::unbounded_channel();
    // A new empty volume joins the existing DataNode.
    let c = a._tmp.path().join("extra");
    let s = Storage::open(&[a.dirs[0].clone(), c.clone()], 0, tx).unwrap();
    assert_eq!(s.uuid(), sa.uuid());
    assert_eq!(
        Volume::new(c).read_uuid().unwrap().as_deref(),
        Some(sa.uuid())
    );
}

#[test]
fn file_names_parse_strictly() {
    assert_eq!(parse_name("blk_12"), Some(FileName::Data(BlockId(12))));
    assert_eq!(
        parse_name("blk_12_3.meta"),
        Some(FileName::Meta(BlockId(12), GenerationStamp(3)))
    );
    for bad in [
        "blk_",
        "blk_x",
        "blk_1_.meta",
        "blk_1_2.meta.tmp",
        "blk_-1",
        "foo",
        "blk_1_2_3.meta",
    ] {
        assert_eq!(parse_name(bad), None, "{bad}");
    }
}
