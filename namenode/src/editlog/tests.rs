use super::*;
use crate::record;
use crate::types::GenStamp;
use std::sync::Mutex;

fn op(i: u64) -> Op {
    Op::SetGenerationStamp { gs: GenStamp(i) }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn write_n(dir: &Path, first: u64, n: u64) {
    let mut log = EditLog::open(dir, first).unwrap();
    let mut last = 0;
    for i in 0..n {
        last = log.append(&op(first + i)).unwrap();
    }
    rt().block_on(log.sync_handle().synced(last)).unwrap();
    log.close().unwrap();
}

/// Like [`write_n`], each record synced before the next is written (as a NameNode whose
/// clients each wait for their reply writes them).
fn write_synced_n(dir: &Path, first: u64, n: u64) {
    let mut log = EditLog::open(dir, first).unwrap();
    let rt = rt();
    for i in 0..n {
        let txid = log.append(&op(first + i)).unwrap();
        rt.block_on(log.sync_handle().synced(txid)).unwrap();
    }
    log.close().unwrap();
}

fn read_all(dir: &Path, after: u64) -> Result<Vec<(u64, Op)>> {
    let mut out = Vec::new();
    replay(dir, after, |t, o| {
        out.push((t, o));
        Ok(())
    })?;
    Ok(out)
}

fn expected(range: std::ops::RangeInclusive<u64>) -> Vec<(u64, Op)> {
    range.map(|i| (i, op(i))).collect()
}

#[test]
fn write_reopen_replay() {
    let d = tempfile::tempdir().unwrap();
    write_n(d.path(), 1, 50);
    assert_eq!(read_all(d.path(), 0).unwrap(), expected(1..=50));
    // A second session continues in a new segment.
    write_n(d.path(), 51, 10);
    assert_eq!(list_segments(d.path()).unwrap().len(), 2);
    assert_eq!(read_all(d.path(), 0).unwrap(), expected(1..=60));
    // Records covered by a checkpoint are skipped.
    assert_eq!(read_all(d.path(), 55).unwrap(), expected(56..=60));
}

#[test]
fn torn_tail_truncated_mid_record() {
    let d = tempfile::tempdir().unwrap();
    write_n(d.path(), 1, 20);
    let seg = d.path().join(segment_name(1));
    let len = fs::metadata(&seg).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(&seg)
        .unwrap()
        .set_len(len - 3)
        .unwrap();
    assert_eq!(read_all(d.path(), 0).unwrap(), expected(1..=19));
    // The file was cut at the record boundary: a second replay is clean and appending works.
    assert!(fs::metadata(&seg).unwrap().len() < len - 3);
    write_n(d.path(), 20, 1);
    assert_eq!(read_all(d.path(), 0).unwrap(), expected(1..=20));
}

#[test]
fn torn_tail_flipped_byte_in_last_record() {
    let d = tempfile::tempdir().unwrap();
    write_n(d.path(), 1, 20);
    let seg = d.path().join(segment_name(1));
    let mut bytes = fs::read(&seg).unwrap();
    let n = bytes.len();
    bytes[n - 1] ^= 0x40;
    fs::write(&seg, &bytes).unwrap();
    assert_eq!(read_all(d.path(), 0).unwrap(), expected(1..=19));
}

/// Offsets at which each record of a segment starts.
fn record_offsets(seg: &Path) -> Vec<usize> {
    let bytes = fs::read(seg).unwrap();
    let mut at = EDIT_MAGIC.len();
    let mut out = Vec::new();
    while at < bytes.len() {
        out.push(at);
        let len = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        at += record::HEADER_LEN + len;
    }
    out
}

#[test]
fn a_bad_synced_record_followed_by_valid_ones_refuses_instead_of_cutting() {
    let d = tempfile::tempdir().unwrap();
    write_synced_n(d.path(), 1, 20);
    let seg = d.path().join(segment_name(1));
    let offsets = record_offsets(&seg);
    let pristine = fs::read(&seg).unwrap();
    // A flipped payload bit in txid 10, then one in its length field.
    for flip in [offsets[9] + record::HEADER_LEN + 1, offsets[9] + 1] {
        let mut bytes = pristine.clone();
        bytes[flip] ^= 0x04;
        fs::write(&seg, &bytes).unwrap();
        let err = read_all(d.path(), 0).unwrap_err();
        let msg = err.to_string();
        assert!(
            matches!(err, Error::Corrupt(_))
                && msg.contains(&seg.display().to_string())
                && msg.contains(&format!("offset {}", offsets[9]))
                && msg.contains("txid 10")
                && msg.contains("synced past it"),
            "{msg}"
        );
        assert_eq!(fs::read(&seg).unwrap(), bytes, "nothing was cut");
    }
}

/// A power loss may persist later pages of the unsynced tail and not earlier ones: a hole
/// followed by valid records that no record says were synced is cut at the hole, which keeps a
/// prefix of the history.
#[test]
fn a_hole_in_the_unsynced_tail_is_cut() {
    let d = tempfile::tempdir().unwrap();
    write_synced_n(d.path(), 1, 5);
    let mut log = EditLog::open_with(d.path(), 6, slow_sync()).unwrap();
    let rt = rt();
    for i in 6..=20 {
        let txid = log.append(&op(i)).unwrap();
        rt.block_on(log.sync_handle().written(txid)).unwrap();
    }
    let seg = d.path().join(segment_name(6));
    let mut bytes = fs::read(&seg).unwrap();
    log.close().unwrap();
    let offsets = record_offsets(&seg);
    for b in &mut bytes[offsets[4]..offsets[6]] {
        *b = 0; // txids 10 and 11 never reached the disk; 12 to 20 did
    }
    fs::write(&seg, &bytes).unwrap();
    assert_eq!(read_all(d.path(), 0).unwrap(), expected(1..=9));
    assert_eq!(fs::metadata(&seg).unwrap().len(), offsets[4] as u64);
}

/// Options whose interval never elapses in a test: only asking syncs.
fn slow_sync() -> LogOptions {
    LogOptions {
        sync_interval: std::time::Duration::from_secs(3600),
        ..LogOptions::default()
    }
}

#[test]
fn with_an_interval_records_are_written_at_once_and_synced_when_asked_or_due() {
    let d = tempfile::tempdir().unwrap();
    let rt = rt();
    let mut log = EditLog::open_with(d.path(), 1, slow_sync()).unwrap();
    let sync = log.sync_handle();
    let t = log.append(&op(1)).unwrap();
    rt.block_on(sync.written(t)).unwrap();
    let waited = rt.block_on(async {
        tokio::time::timeout(std::time::Duration::from_millis(200), sync.synced(t)).await
    });
    assert!(waited.is_err(), "synced without being asked");
    assert_eq!(log.synced_txid(), 0);
    log.request_sync().unwrap();
    rt.block_on(sync.synced(t)).unwrap();
    assert_eq!((log.synced_txid(), log.syncs()), (1, 1));
    log.request_sync().unwrap(); // nothing new: no fsync
    log.close().unwrap();

    // A short interval syncs by itself.
    let opts = LogOptions {
        sync_interval: std::time::Duration::from_millis(20),
        ..LogOptions::default()
    };
    let mut log = EditLog::open_with(d.path(), 2, opts).unwrap();
    let t = log.append(&op(2)).unwrap();
    rt.block_on(log.sync_handle().synced(t)).unwrap();
    log.close().unwrap();
    assert_eq!(read_all(d.path(), 0).unwrap(), expected(1..=2));
}

#[test]
fn a_torn_record_followed_by_zeros_is_cut() {
    let d = tempfile::tempdir().unwrap();
    write_n(d.path(), 1, 20);
    let seg = d.path().join(segment_name(1));
    let offsets = record_offsets(&seg);
    let mut bytes = fs::read(&seg).unwrap();
    // The last record half written, then space the file system extended with zeros.
    bytes.truncate(offsets[19] + 5);
    bytes.extend_from_slice(&[0u8; 4096]);
    fs::write(&seg, &bytes).unwrap();
    assert_eq!(read_all(d.path(), 0).unwrap(), expected(1..=19));
    assert_eq!(fs::metadata(&seg).unwrap().len(), offsets[19] as u64);
}

#[test]
fn a_checksummed_record_that_does_not_decode_is_corruption() {
    let d = tempfile::tempdir().unwrap();
    write_n(d.path(), 1, 5);
    let seg = d.path().join(segment_name(1));
    let len = fs::metadata(&seg).unwrap().len();
    let mut bytes = fs::read(&seg).unwrap();
    record::encode(&[0xff, 0xff, 0xff], &mut bytes);
    fs::write(&seg, &bytes).unwrap();
    let err = read_all(d.path(), 0).unwrap_err();
    assert!(
        matches!(err, Error::Corrupt(ref m) if m.contains(&format!("offset {len}")) && m.contains("does not decode")),
        "{err}"
    );
    assert_eq!(fs::read(&seg).unwrap(), bytes, "nothing was cut");
}

#[test]
fn corruption_in_non_last_segment_refuses() {
    let d = tempfile::tempdir().unwrap();
    write_n(d.path(), 1, 10);
    write_n(d.path(), 11, 10);
    let seg = d.path().join(segment_name(1));
    let mut bytes = fs::read(&seg).unwrap();
    let n = bytes.len();
    bytes[n - 2] ^= 0x01;
    fs::write(&seg, &bytes).unwrap();
    let err = read_all(d.path(), 0).unwrap_err();
    assert!(
        matches!(err, Error::Corrupt(ref m) if m.contains("not the last segment")),
        "{err}"
    );
    // Unless that segment is entirely covered by the checkpoint.
    assert_eq!(read_all(d.path(), 10).unwrap(), expected(11..=20));
}

#[test]
fn missing_edits_refuse() {
    let d = tempfile::tempdir().unwrap();
    write_n(d.path(), 1, 10);
    write_n(d.path(), 11, 10);
    fs::remove_file(d.path().join(segment_name(1))).unwrap();
    assert!(matches!(read_all(d.path(), 0), Err(Error::Corrupt(_))));
    assert_eq!(read_all(d.path(), 10).unwrap(), expected(11..=20));
}

#[test]
fn group_commit_shares_fsyncs() {
    let d = tempfile::tempdir().unwrap();
    let log = Arc::new(Mutex::new(EditLog::open(d.path(), 1).unwrap()));
    let sync = log.lock().unwrap().sync_handle();
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let log = log.clone();
            let sync = sync.clone();
            std::thread::spawn(move || {
                let rt = rt();
                for i in 0..50 {
                    let txid = log.lock().unwrap().append(&op(t * 1000 + i)).unwrap();
                    rt.block_on(sync.synced(txid)).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let mut log = Arc::try_unwrap(log).ok().unwrap().into_inner().unwrap();
    let syncs = log.syncs();
    log.close().unwrap();
    assert!(syncs < 400, "{syncs} fsyncs for 400 records");
    assert_eq!(read_all(d.path(), 0).unwrap().len(), 400);
}

#[test]
fn roll_starts_a_new_segment_and_empty_roll_is_a_noop() {
    let d = tempfile::tempdir().unwrap();
    let mut log = EditLog::open(d.path(), 1).unwrap();
    let rt = rt();
    rt.block_on(log.roll().unwrap()).unwrap().unwrap();
    assert_eq!(list_segments(d.path()).unwrap().len(), 1);
    log.append(&op(1)).unwrap();
    rt.block_on(log.roll().unwrap()).unwrap().unwrap();
    log.append(&op(2)).unwrap();
    rt.block_on(log.sync_handle().synced(2)).unwrap();
    let segs = list_segments(d.path()).unwrap();
    assert_eq!(
        segs.iter().map(|s| s.first_txid).collect::<Vec<_>>(),
        vec![1, 2]
    );
    log.close().unwrap();
    assert_eq!(read_all(d.path(), 0).unwrap(), expected(1..=2));
}

#[test]
fn io_error_poisons_the_log() {
    if !Path::new("/dev/full").exists() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let mut log = EditLog::open(d.path(), 1).unwrap();
    let rt = rt();
    let t = log.append(&op(1)).unwrap();
    rt.block_on(log.sync_handle().synced(t)).unwrap();
    // The next segment's file is /dev/full: creating it fails with ENOSPC.
    std::os::unix::fs::symlink("/dev/full", d.path().join(segment_name(2))).unwrap();
    assert!(rt.block_on(log.roll().unwrap()).unwrap().is_err());
    assert!(matches!(log.append(&op(2)), Err(Error::EditLogFailed(_))));
    assert!(matches!(log.roll(), Err(Error::EditLogFailed(_))));
    assert!(log.close().is_err());
}
