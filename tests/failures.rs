//! Nodes failing under real processes: SIGKILLed NameNode, restarted DataNodes, corrupt replicas,
//! garbage on the wire.

mod common;

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;

/// Acknowledged paths, with the content of files (directories have none).
type Acked = Arc<Mutex<Vec<(String, Option<Vec<u8>>)>>>;

/// Round 0 with durable replies (HDFS's), round 1 as a mount writes: replies wait only for the
/// edit log's write and blocks are not fsynced at close, and every DataNode is killed too. No
/// process crash may lose what was acknowledged either way.
#[test]
fn processes_killed_during_mutations_lose_nothing_acknowledged() {
    let mut c = cluster()
        .datanodes(3)
        .replication(2)
        .block_size(64 * 1024)
        .start()
        .unwrap();
    for round in 0..2 {
        let cfg = dfs_client::ClientConfig {
            durable_replies: round == 0,
            ..c.client_config()
        };
        let stop = Arc::new(AtomicBool::new(false));
        let acked: Acked = Arc::default();
        let worker = {
            let (stop, acked, cfg) = (stop.clone(), acked.clone(), cfg.clone());
            std::thread::spawn(move || {
                let client = dfs_client::blocking::DfsClient::connect(cfg).unwrap();
                for i in 0.. {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let dir = format!("/r{round}/d{i}");
                    if client.mkdirs(&dir, true).is_err() {
                        break;
                    }
                    acked.lock().unwrap().push((dir.clone(), None));
                    let file = format!("{dir}/f");
                    let content = data(1000 + i * 37, i as u64);
                    let Ok(mut w) = client.create(&file, Default::default()) else {
                        break;
                    };
                    if w.write_all(&content).is_err() || w.close().is_err() {
                        break;
                    }
                    acked.lock().unwrap().push((file, Some(content)));
                }
            })
        };
        eventually(
            Duration::from_secs(30),
            "some acknowledged mutations",
            || (acked.lock().unwrap().len() >= 20).then_some(()),
        );
        c.kill_namenode();
        if round == 1 {
            for i in 0..c.num_datanodes() {
                c.kill_datanode(i);
            }
        }
        stop.store(true, Ordering::Relaxed);
        worker.join().unwrap();
        c.restart_namenode().unwrap();
        if round == 1 {
            for i in 0..c.num_datanodes() {
                c.restart_datanode(i).unwrap();
            }
        }
        // Live DataNodes are not enough: the next round's mkdirs would fail in safe mode.
        c.wait_for_safe_mode_off(Duration::from_secs(30)).unwrap();

        let client = c.client().unwrap();
        let acked = acked.lock().unwrap();
        assert!(acked.len() >= 20);
        for (path, content) in acked.iter() {
            let st = client
                .stat(path)
                .unwrap_or_else(|e| panic!("round {round}: acknowledged {path} lost: {e}"));
            if let Some(content) = content {
                assert_eq!(st.length, content.len() as u64, "{path}");
                let back = read_all(&client, path);
                assert!(&back == content, "{path}: content differs");
            } else {
                assert!(st.is_dir());
            }
        }
    }
}

#[test]
fn a_restarted_datanode_reports_its_replicas_again() {
    let mut c = cluster()
        .datanodes(3)
        .replication(3)
        .block_size(256 * 1024)
        .start()
        .unwrap();
    let client = c.client().unwrap();
    let content = data(1024 * 1024, 9);
    let mut w = client.create("/kept", Default::default()).unwrap();
    w.write_all(&content).unwrap();
    w.close().unwrap();
    // Complete needs one reported replica; the other DataNodes' reports follow within moments.
    wait_fully_replicated(&c, "/kept", 3, Duration::from_secs(10));
    assert_eq!(live_replicas(&c, "/kept").len(), 4);

    c.stop_datanode(0).unwrap();
    eventually(
        Duration::from_secs(30),
        "the NameNode to see the DataNode dead",
        || {
            live_replicas(&c, "/kept")
                .iter()
                .all(|&n| n == 2)
                .then_some(())
        },
    );
    let back = read_all(&client, "/kept");
    assert!(back == content);

    c.restart_datanode(0).unwrap();
    eventually(
        Duration::from_secs(30),
        "the restarted DataNode's block report",
        || {
            live_replicas(&c, "/kept")
                .iter()
                .all(|&n| n == 3)
                .then_some(())
        },
    );
}

#[test]
fn a_corrupt_replica_is_never_returned_and_gets_reported() {
    let c = cluster()
        .datanodes(3)
        .replication(3)
        .block_size(1 << 20)
        .start()
        .unwrap();
    let client = c.client().unwrap();
    let content = data(300_000, 10);
    let mut w = client.create("/precious", Default::default()).unwrap();
    w.write_all(&content).unwrap();
    w.close().unwrap();
    let block = client.block_locations("/precious", 0, u64::MAX).unwrap()[0].block_id;
    let files = c.replica_files(block);
    assert_eq!(files.len(), 3, "{files:?}");
    // Corrupt two of the three replicas, at different places: whichever order the reader tries
    // them in, it must fail over at least once it meets one, and end with correct data.
    for (k, (_, path)) in files.iter().take(2).enumerate() {
        let mut bytes = std::fs::read(path).unwrap();
        bytes[1000 + k * 100_000] ^= 0x5a;
        std::fs::write(path, bytes).unwrap();
    }
    // Safe mode holds the NameNode's healing off, so a reported replica stays listed as corrupt.
    dfs_ok(&c, &["admin", "safemode", "enter"]);
    let corrupt_listed = || {
        fsck(&c, "/precious")["details"][0]["blocks"][0]["replicas"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["corrupt"] == true)
            .count()
    };
    let mut reported = 0;
    for _ in 0..30 {
        let back = read_all(&client, "/precious");
        assert!(back == content, "read returned corrupt data");
        reported = corrupt_listed();
        if reported > 0 {
            break;
        }
    }
    assert!(
        reported > 0,
        "no read met a corrupt replica in 30 tries, or none was reported"
    );
    // A good replica is left, so the block is readable: the file is HEALTHY (as HDFS), with the
    // corrupt replica listed and the block under-replicated until it is replaced.
    let r = fsck(&c, "/precious");
    assert_eq!(r["status"], "HEALTHY", "{r}");
    assert_eq!(r["under_replicated_blocks"], 1, "{r}");
    dfs_ok(&c, &["admin", "safemode", "leave"]);
}

#[test]
fn garbage_on_the_wire_closes_only_that_connection() {
    let c = cluster().datanodes(1).replication(1).start().unwrap();
    let client = c.client().unwrap();
    let mut w = client.create("/still-fine", Default::default()).unwrap();
    w.write_all(b"hello").unwrap();
    w.close().unwrap();
    let junk: [&[u8]; 4] = [
        b"GET / HTTP/1.0\r\n\r\n",
        &[0xff, 0xff, 0xff, 0xff, 1, 2, 3],
        &[0, 0, 0, 5, 0xde, 0xad, 0xbe, 0xef, 0x00],
        &[0, 0, 0, 2, 0x0a, 0x7f],
    ];
    for target in [
        c.datanode_addr(0).to_string(),
        c.namenode_addr().to_string(),
        c.http_addr().to_string(),
        c.datanode_http_addr(0).to_string(),
    ] {
        for j in junk {
            if let Ok(mut s) = std::net::TcpStream::connect(&target) {
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                let _ = s.write_all(j);
                let _ = s.shutdown(std::net::Shutdown::Write);
                let mut sink = Vec::new();
                let _ = s.read_to_end(&mut sink);
            }
        }
    }
    let mut s = String::new();
    client
        .open("/still-fine")
        .unwrap()
        .read_to_string(&mut s)
        .unwrap();
    assert_eq!(s, "hello");
    let out = dfs_ok(&c, &["admin", "report", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["live_datanodes"], 1);
}
