//! The write and read paths end to end: multi-block replicated files, append, hflush, leases.

mod common;

use std::collections::HashSet;
use std::io::{Read, Write};

use common::*;
use dfs_client::{CreateOptions, Error};

const MIB: usize = 1 << 20;

#[test]
fn multi_block_file_is_replicated_three_times_and_reads_back_bit_exact() {
    let c = cluster()
        .datanodes(3)
        .block_size(MIB as u64)
        .replication(3)
        .start()
        .unwrap();
    let client = c.client().unwrap();
    let content = data(5 * MIB + MIB / 2 + 123, 1);
    let opts = CreateOptions {
        create_parent: true,
        ..Default::default()
    };
    let mut w = client.create("/big/file.bin", opts).unwrap();
    for chunk in content.chunks(100_003) {
        w.write_all(chunk).unwrap();
    }
    w.close().unwrap();

    let back = read_all(&client, "/big/file.bin");
    assert_eq!(back.len(), content.len());
    assert!(back == content, "content differs");

    let st = client.stat("/big/file.bin").unwrap();
    assert_eq!(st.length, content.len() as u64);
    assert_eq!(st.replication, 3);

    // Complete needs one reported replica; the others' reports follow within moments.
    wait_fully_replicated(&c, "/big", 3, std::time::Duration::from_secs(10));
    let locs = client
        .block_locations("/big/file.bin", 0, u64::MAX)
        .unwrap();
    assert_eq!(locs.len(), 6, "5.5 MiB in 1 MiB blocks");
    for (i, b) in locs.iter().enumerate() {
        assert_eq!(b.offset, (i * MIB) as u64);
        let distinct: HashSet<_> = b.datanodes.iter().collect();
        assert_eq!(distinct.len(), 3, "block {i} replicas: {:?}", b.datanodes);
    }

    let report = fsck(&c, "/big");
    assert_eq!(report["status"], "HEALTHY", "{report}");
    assert_eq!(report["total_blocks"], 6);
    for b in report["details"][0]["blocks"].as_array().unwrap() {
        let live: HashSet<_> = b["replicas"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["alive"] == true && r["corrupt"] == false)
            .map(|r| r["datanode"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(live.len(), 3, "block {b}");
    }
}

#[test]
fn seek_and_partial_reads_cross_block_boundaries() {
    let c = cluster()
        .datanodes(2)
        .block_size(MIB as u64)
        .replication(2)
        .start()
        .unwrap();
    let client = c.client().unwrap();
    let content = data(3 * MIB + 7, 2);
    let mut w = client.create("/seek.bin", Default::default()).unwrap();
    w.write_all(&content).unwrap();
    w.close().unwrap();
    let mut r = client.open("/seek.bin").unwrap();
    use std::io::{Seek, SeekFrom};
    for &pos in &[0usize, 511, 512, MIB - 3, MIB, 2 * MIB + 100, 3 * MIB + 6] {
        r.seek(SeekFrom::Start(pos as u64)).unwrap();
        let mut buf = vec![0u8; 10];
        let n = r.read(&mut buf).unwrap();
        assert!(n > 0);
        assert_eq!(&buf[..n], &content[pos..pos + n], "at {pos}");
    }
    r.seek(SeekFrom::End(0)).unwrap();
    assert_eq!(r.read(&mut [0u8; 4]).unwrap(), 0);
}

#[test]
fn append_to_a_closed_file() {
    let c = cluster()
        .datanodes(3)
        .block_size(MIB as u64)
        .start()
        .unwrap();
    let client = c.client().unwrap();
    let a = data(1000, 3);
    let b = data(2 * MIB + 77, 4);
    let d = data(10, 5);
    let mut w = client.create("/log", Default::default()).unwrap();
    w.write_all(&a).unwrap();
    w.close().unwrap();
    for part in [&b, &d] {
        let mut w = client.append("/log").unwrap();
        w.write_all(part).unwrap();
        w.close().unwrap();
    }
    let expected: Vec<u8> = [a, b, d].concat();
    let back = read_all(&client, "/log");
    assert!(
        back == expected,
        "appended content differs ({} vs {} bytes)",
        back.len(),
        expected.len()
    );
    assert_eq!(client.stat("/log").unwrap().length, expected.len() as u64);
    wait_fully_replicated(&c, "/log", 3, std::time::Duration::from_secs(10));
    let report = fsck(&c, "/log");
    assert_eq!(report["status"], "HEALTHY", "{report}");
    assert_eq!(report["under_replicated_blocks"], 0, "{report}");
}

#[test]
fn hflushed_data_is_visible_to_a_concurrent_reader() {
    let c = cluster()
        .datanodes(3)
        .block_size(MIB as u64)
        .start()
        .unwrap();
    let writer_client = c.client().unwrap();
    let reader_client = c.client().unwrap();
    let first = data(100_000, 6);
    let mut w = writer_client.create("/live", Default::default()).unwrap();
    w.write_all(&first).unwrap();
    w.hflush().unwrap();

    let seen = read_all(&reader_client, "/live");
    assert!(
        seen == first,
        "reader saw {} bytes, expected the 100000 hflushed",
        seen.len()
    );

    // More data, crossing a block boundary, then hsync.
    let second = data(MIB + 5, 7);
    w.write_all(&second).unwrap();
    w.hsync().unwrap();
    let seen = read_all(&reader_client, "/live");
    assert_eq!(seen.len(), first.len() + second.len());
    w.close().unwrap();
    let all = read_all(&reader_client, "/live");
    assert!(all == [first, second].concat());
}

#[test]
fn a_second_writer_is_refused_while_the_first_holds_the_lease() {
    let c = cluster().datanodes(1).replication(1).start().unwrap();
    let first = c.client().unwrap();
    let second = c.client().unwrap();
    let mut w = first.create("/owned", Default::default()).unwrap();
    w.write_all(b"mine").unwrap();
    w.hflush().unwrap();

    let opts = CreateOptions {
        overwrite: true,
        ..Default::default()
    };
    match second.create("/owned", opts) {
        Err(Error::LeaseConflict(msg)) => assert!(msg.contains("/owned"), "{msg}"),
        Err(e) => panic!("expected a lease conflict, got {e}"),
        Ok(_) => panic!("second writer was allowed to overwrite"),
    }
    assert!(matches!(
        second.append("/owned"),
        Err(Error::LeaseConflict(_))
    ));
    let stderr = dfs_err(&c, &["append", "/dev/null", "/owned"]);
    assert!(stderr.starts_with("dfs: "), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");

    w.close().unwrap();
    // Once closed, others may append.
    let mut w2 = second.append("/owned").unwrap();
    w2.write_all(b" and yours").unwrap();
    w2.close().unwrap();
    let mut s = String::new();
    first
        .open("/owned")
        .unwrap()
        .read_to_string(&mut s)
        .unwrap();
    assert_eq!(s, "mine and yours");
}

#[test]
fn empty_and_tiny_files() {
    let c = cluster().datanodes(1).replication(1).start().unwrap();
    let client = c.client().unwrap();
    client
        .create("/empty", Default::default())
        .unwrap()
        .close()
        .unwrap();
    assert_eq!(client.stat("/empty").unwrap().length, 0);
    let mut v = Vec::new();
    assert_eq!(
        client.open("/empty").unwrap().read_to_end(&mut v).unwrap(),
        0
    );
    let mut w = client.create("/one", Default::default()).unwrap();
    w.write_all(b"x").unwrap();
    w.close().unwrap();
    let v = read_all(&client, "/one");
    assert_eq!(v, b"x");
}

#[test]
fn an_idle_writer_keeps_its_pipeline() {
    let c = cluster()
        .datanodes(3)
        .block_size(MIB as u64)
        .conf("dfs.client.socket-timeout", "2s")
        .start()
        .unwrap();
    let client = c.client().unwrap();
    let first = data(100_000, 12);
    let mut w = client.create("/slow", Default::default()).unwrap();
    w.write_all(&first).unwrap();
    w.hflush().unwrap();
    let stamp = |c: &dfs_cluster::MiniCluster| {
        fsck(c, "/slow")["details"][0]["blocks"][0]["generation_stamp"].clone()
    };
    let before = stamp(&c);
    // Idle for longer than the DataNodes' socket timeout: keep-alive packets hold the pipeline.
    std::thread::sleep(std::time::Duration::from_secs(5));
    let second = data(50_000, 13);
    w.write_all(&second).unwrap();
    w.close().unwrap();
    assert_eq!(
        stamp(&c),
        before,
        "the pipeline was rebuilt: keep-alives did not hold it"
    );
    wait_fully_replicated(&c, "/slow", 3, std::time::Duration::from_secs(10));
    assert!(read_all(&client, "/slow") == [first, second].concat());
}

#[test]
fn a_file_written_with_other_bytes_per_checksum_reads_with_the_defaults() {
    let c = cluster()
        .datanodes(1)
        .replication(1)
        .block_size(256 * 1024)
        .start()
        .unwrap();
    let local = tempfile::tempdir().unwrap();
    let src = local.path().join("in.bin");
    let content = data(600_000, 21);
    std::fs::write(&src, &content).unwrap();
    let put = c
        .command()
        .args(["-D", "dfs.bytes-per-checksum=1024", "put"])
        .arg(&src)
        .arg("/k1024")
        .output()
        .unwrap();
    assert!(put.status.success(), "{:?}", put);
    // The default client (512) reads it, from the start and from inside a chunk.
    let client = c.client().unwrap();
    assert_eq!(client.as_async().config().bytes_per_checksum, 512);
    assert!(read_all(&client, "/k1024") == content);
    let mut r = client.open("/k1024").unwrap();
    std::io::Seek::seek(&mut r, std::io::SeekFrom::Start(300_001)).unwrap();
    let mut tail = Vec::new();
    r.read_to_end(&mut tail).unwrap();
    assert!(tail == content[300_001..]);
    let cat = c.command().args(["cat", "/k1024"]).output().unwrap();
    assert!(cat.status.success() && cat.stdout == content);
    // Its checksum names the chunking it was written with, not the reader's.
    let sum = dfs_ok(&c, &["checksum", "/k1024"]);
    assert!(sum.starts_with("/k1024\tCRC32C-OF-CRC32C-1024\t"), "{sum}");
}
