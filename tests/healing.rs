//! Self-healing on a bad day, with real processes killed by SIGKILL and short intervals so each
//! test runs in seconds: pipelines that lose a DataNode, dead DataNodes, dead writers, corrupt
//! replicas, failed volumes and a NameNode killed again and again.

mod common;

use std::io::Write;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use dfs_cluster::MiniCluster;

const MIB: usize = 1 << 20;

fn index_of(c: &MiniCluster, addr: &str) -> usize {
    (0..c.num_datanodes())
        .find(|&i| c.datanode_addr(i) == addr)
        .unwrap()
}

#[test]
fn a_datanode_killed_mid_write_does_not_fail_the_write() {
    let mut c = cluster()
        .datanodes(4)
        .replication(3)
        .block_size(MIB as u64)
        .start()
        .unwrap();
    let client = c.client().unwrap();
    let content = data(5 * MIB + 4321, 31);
    let mut w = client.create("/survivor", Default::default()).unwrap();
    w.write_all(&content[..2 * MIB + MIB / 2]).unwrap();
    w.hflush().unwrap();
    // Kill the second DataNode of the pipeline of the block being written.
    let locs = client.block_locations("/survivor", 0, u64::MAX).unwrap();
    let victim = index_of(&c, &locs.last().unwrap().datanodes[1]);
    c.kill_datanode(victim);
    w.write_all(&content[2 * MIB + MIB / 2..]).unwrap();
    w.close().unwrap();

    let back = read_all(&client, "/survivor");
    assert!(back == content, "content differs after pipeline recovery");
    // The NameNode notices the dead DataNode and re-replicates onto the fourth.
    wait_fully_replicated(&c, "/survivor", 3, Duration::from_secs(60));
    assert_eq!(fsck(&c, "/survivor")["status"], "HEALTHY");
}

#[test]
fn a_replacement_datanode_joins_a_broken_pipeline() {
    // The NameNode's own healing is held off (its monitor runs every 30 s), so three live replicas
    // right after the write can only come from the replacement the writer brought in.
    let mut c = cluster()
        .datanodes(4)
        .replication(3)
        .block_size(4 * MIB as u64)
        .conf("dfs.namenode.replication.interval", "30s")
        .start()
        .unwrap();
    let client = c.client().unwrap();
    let content = data(3 * MIB + 777, 33);
    let mut w = client.create("/replaced", Default::default()).unwrap();
    w.write_all(&content[..MIB + 1234]).unwrap();
    w.hflush().unwrap();
    let locs = client.block_locations("/replaced", 0, u64::MAX).unwrap();
    let victim = index_of(&c, &locs[0].datanodes[2]);
    c.kill_datanode(victim);
    w.write_all(&content[MIB + 1234..]).unwrap();
    w.close().unwrap();
    wait_fully_replicated(&c, "/replaced", 3, Duration::from_secs(10));
    let locs = client.block_locations("/replaced", 0, u64::MAX).unwrap();
    assert!(!locs[0]
        .datanodes
        .contains(&c.datanode_addr(victim).to_string()));
    assert!(read_all(&client, "/replaced") == content);
}

#[test]
fn two_of_four_datanodes_dead_data_readable_and_healed_with_a_new_one() {
    let mut c = cluster()
        .datanodes(4)
        .replication(3)
        .block_size(256 * 1024)
        .start()
        .unwrap();
    let client = c.client().unwrap();
    let files: Vec<(String, Vec<u8>)> = (0..4)
        .map(|i| (format!("/f{i}"), data(700_000 + i * 1000, 40 + i as u64)))
        .collect();
    for (p, d) in &files {
        let mut w = client.create(p, Default::default()).unwrap();
        w.write_all(d).unwrap();
        w.close().unwrap();
    }
    c.kill_datanode(0);
    c.kill_datanode(1);
    eventually(
        Duration::from_secs(30),
        "the NameNode to declare two DataNodes dead",
        || {
            let v: serde_json::Value =
                serde_json::from_str(&dfs_ok(&c, &["admin", "report", "--json"])).ok()?;
            (v["dead_datanodes"] == 2).then_some(())
        },
    );
    for (p, d) in &files {
        let back = read_all(&client, p);
        assert!(&back == d, "{p} differs with two DataNodes dead");
    }
    c.add_datanode().unwrap();
    wait_fully_replicated(&c, "/", 3, Duration::from_secs(60));
    let report: serde_json::Value =
        serde_json::from_str(&dfs_ok(&c, &["admin", "report", "--json"])).unwrap();
    assert_eq!(report["dead_datanodes"], 2, "{report}");
    assert_eq!(report["live_datanodes"], 3, "{report}");
}

#[test]
fn a_killed_writer_loses_its_lease_and_the_file_is_closed_consistently() {
    let c = cluster()
        .datanodes(3)
        .replication(3)
        .block_size(MIB as u64)
        .conf("dfs.namenode.lease.soft-limit", "1s")
        .conf("dfs.namenode.lease.hard-limit", "3s")
        .start()
        .unwrap();
    let content = data(MIB + 300_000, 50);
    let mut writer = c
        .command()
        .args(["append", "-", "/orphan"])
        .stdin(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = writer.stdin.take().unwrap();
    stdin.write_all(&content).unwrap();
    stdin.flush().unwrap();
    let client = c.client().unwrap();
    eventually(
        Duration::from_secs(30),
        "the writer to reach its second block",
        || {
            let locs = client.block_locations("/orphan", 0, u64::MAX).ok()?;
            (locs.len() == 2).then_some(())
        },
    );
    std::thread::sleep(Duration::from_millis(500));
    writer.kill().unwrap();
    writer.wait().unwrap();
    drop(stdin);

    // After the hard limit the NameNode recovers the lease and closes the file.
    let st = eventually(
        Duration::from_secs(60),
        "lease recovery to close the file",
        || {
            client
                .stat("/orphan")
                .ok()
                .filter(|s| !s.under_construction)
        },
    );
    assert!(
        st.length >= MIB as u64 && st.length <= content.len() as u64,
        "length {}",
        st.length
    );
    let back = read_all(&client, "/orphan");
    assert_eq!(back.len() as u64, st.length);
    assert!(
        back[..] == content[..back.len()],
        "recovered data is not a prefix of what was written"
    );
    wait_fully_replicated(&c, "/orphan", 3, Duration::from_secs(30));

    // The file can be appended to.
    let mut w = client.append("/orphan").unwrap();
    w.write_all(b"tail").unwrap();
    w.close().unwrap();
    assert_eq!(client.stat("/orphan").unwrap().length, st.length + 4);
}

#[test]
fn recover_lease_command_closes_an_abandoned_file() {
    let c = cluster()
        .datanodes(2)
        .replication(2)
        .block_size(MIB as u64)
        .start()
        .unwrap();
    let client = c.client().unwrap();
    let mut w = client.create("/abandoned", Default::default()).unwrap();
    w.write_all(&data(100_000, 51)).unwrap();
    w.hflush().unwrap();
    std::mem::forget(w); // a writer that will never close
    eventually(
        Duration::from_secs(30),
        "recover-lease to close the file",
        || {
            let out = dfs_ok(&c, &["admin", "recover-lease", "/abandoned"]);
            out.contains("file is closed").then_some(())
        },
    );
    let st = client.stat("/abandoned").unwrap();
    assert!(!st.under_construction);
    assert_eq!(st.length, 100_000, "hflushed data survives recovery");
}

#[test]
fn corrupt_truncated_and_checksumless_replicas_are_detected_and_healed() {
    let c = cluster()
        .datanodes(4)
        .replication(3)
        .block_size(256 * 1024)
        .conf("dfs.datanode.scan.period", "2s")
        .conf("dfs.block.scanner.volume.bytes.per.second", "64M")
        .start()
        .unwrap();
    let client = c.client().unwrap();
    let content = data(3 * 256 * 1024, 60);
    let mut w = client.create("/victim", Default::default()).unwrap();
    w.write_all(&content).unwrap();
    w.close().unwrap();
    let blocks = client.block_locations("/victim", 0, u64::MAX).unwrap();
    assert_eq!(blocks.len(), 3);
    // Block 0: a flipped byte. Block 1: a truncated block file. Block 2: a deleted checksum file.
    let (_, f0) = &c.replica_files(blocks[0].block_id)[0];
    let mut bytes = std::fs::read(f0).unwrap();
    bytes[12345] ^= 0xff;
    std::fs::write(f0, bytes).unwrap();
    let (_, f1) = &c.replica_files(blocks[1].block_id)[0];
    std::fs::OpenOptions::new()
        .write(true)
        .open(f1)
        .unwrap()
        .set_len(1000)
        .unwrap();
    let (_, f2) = &c.replica_files(blocks[2].block_id)[0];
    let meta = std::fs::read_dir(f2.parent().unwrap())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            let n = p.file_name().unwrap().to_string_lossy().into_owned();
            n.starts_with(&format!("blk_{}_", blocks[2].block_id)) && n.ends_with(".meta")
        })
        .unwrap();
    std::fs::remove_file(meta).unwrap();

    for _ in 0..3 {
        let back = read_all(&client, "/victim");
        assert!(back == content, "a read returned damaged data");
    }
    // Reads and the block scanner report the damage; fsck shows it, then healing clears it.
    eventually(
        Duration::from_secs(60),
        "fsck to report damaged replicas",
        || {
            let r = fsck(&c, "/victim");
            (r["corrupt_blocks"].as_u64().unwrap() > 0
                || r["under_replicated_blocks"].as_u64().unwrap() > 0)
                .then_some(())
        },
    );
    eventually(Duration::from_secs(60), "the damage to be healed", || {
        let r = fsck(&c, "/victim");
        (r["status"] == "HEALTHY" && r["corrupt_blocks"] == 0 && r["under_replicated_blocks"] == 0)
            .then_some(())
    });
    wait_fully_replicated(&c, "/victim", 3, Duration::from_secs(30));
    let back = read_all(&client, "/victim");
    assert!(back == content);
}

#[test]
fn a_failed_volume_keeps_the_datanode_up_and_its_replicas_are_healed() {
    let c = cluster()
        .datanodes(3)
        .volumes(2)
        .replication(2)
        .block_size(64 * 1024)
        .start()
        .unwrap();
    let client = c.client().unwrap();
    let content = data(2 * MIB, 70);
    let mut w = client.create("/spread", Default::default()).unwrap();
    w.write_all(&content).unwrap();
    w.close().unwrap();
    // Take away DataNode 0's first volume: its directory vanishes under it.
    let vol = c.datanode_volumes(0)[0].clone();
    std::fs::remove_dir_all(&vol).unwrap();
    std::fs::write(&vol, b"not a directory any more").unwrap();
    eventually(
        Duration::from_secs(30),
        "the DataNode to report a failed volume",
        || {
            let v: serde_json::Value =
                serde_json::from_str(&dfs_ok(&c, &["admin", "report", "--json"])).ok()?;
            let dn = v["datanodes"]
                .as_array()?
                .iter()
                .find(|d| d["addr"] == c.datanode_addr(0))?
                .clone();
            (dn["failed_volumes"] == 1 && dn["alive"] == true).then_some(())
        },
    );
    wait_fully_replicated(&c, "/spread", 2, Duration::from_secs(60));
    let back = read_all(&client, "/spread");
    assert!(back == content);
    // The DataNode still takes new blocks on its other volume.
    let mut w = client.create("/after", Default::default()).unwrap();
    w.write_all(&data(300_000, 71)).unwrap();
    w.close().unwrap();
}

#[test]
fn namenode_killed_repeatedly_under_a_concurrent_mix() {
    let mut c = cluster()
        .datanodes(3)
        .replication(2)
        .block_size(64 * 1024)
        .start()
        .unwrap();
    // Every acknowledged operation, replayed into the expected final state.
    let expected: Arc<Mutex<std::collections::BTreeMap<String, Option<Vec<u8>>>>> = Arc::default();
    // Paths whose operation was in flight at a kill: it may have happened, partly (an append's
    // data), or not at all.
    let uncertain: Arc<Mutex<std::collections::BTreeSet<String>>> = Arc::default();
    for round in 0..3 {
        let stop = Arc::new(AtomicBool::new(false));
        let workers: Vec<_> = (0..3)
            .map(|t| {
                let (stop, expected, uncertain, cfg) = (
                    stop.clone(),
                    expected.clone(),
                    uncertain.clone(),
                    c.client_config(),
                );
                std::thread::spawn(move || {
                    let client = dfs_client::blocking::DfsClient::connect(cfg).unwrap();
                    let dir = format!("/mix/t{t}");
                    if client.mkdirs(&dir, true).is_err() {
                        return 0;
                    }
                    let mut done = 0;
                    for i in 0.. {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        let p = format!("{dir}/r{round}-{i}");
                        let body = data(2000 + i * 13, (round * 1000 + t * 100 + i) as u64);
                        let ok = (|| -> Result<(), dfs_client::Error> {
                            let mut w = client.create(&p, Default::default())?;
                            w.write_all(&body).map_err(dfs_client::Error::Io)?;
                            w.close()?;
                            expected
                                .lock()
                                .unwrap()
                                .insert(p.clone(), Some(body.clone()));
                            match i % 3 {
                                0 => {
                                    let mut w = client.append(&p)?;
                                    w.write_all(b"+appended").map_err(dfs_client::Error::Io)?;
                                    w.close()?;
                                    let mut b = body.clone();
                                    b.extend_from_slice(b"+appended");
                                    expected.lock().unwrap().insert(p.clone(), Some(b));
                                }
                                1 => {
                                    let q = format!("{p}-renamed");
                                    client.rename(&p, &q, false)?;
                                    let mut e = expected.lock().unwrap();
                                    let v = e.remove(&p).unwrap();
                                    e.insert(q, v);
                                }
                                _ => {
                                    client.delete(&p, false)?;
                                    expected.lock().unwrap().remove(&p);
                                }
                            }
                            Ok(())
                        })();
                        if ok.is_err() {
                            let mut u = uncertain.lock().unwrap();
                            u.insert(p.clone());
                            u.insert(format!("{p}-renamed"));
                            break;
                        }
                        done += 1;
                    }
                    done
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(1500));
        c.kill_namenode();
        stop.store(true, Ordering::Relaxed);
        let done: usize = workers.into_iter().map(|w| w.join().unwrap()).sum();
        assert!(
            done > 0,
            "round {round}: no operation completed before the kill"
        );
        c.restart_namenode().unwrap();
        c.wait_for_live_datanodes(3, Duration::from_secs(30))
            .unwrap();
    }
    // An operation in flight at a kill may or may not have happened; every acknowledged one must
    // have. So: every expected file exists with its content; files that exist but are not
    // expected must be ones whose operation was in flight (at most one per worker per round).
    let client = c.client().unwrap();
    let expected = expected.lock().unwrap();
    let uncertain = uncertain.lock().unwrap();
    for (p, body) in expected.iter().filter(|(p, _)| !uncertain.contains(*p)) {
        let body = body.as_ref().unwrap();
        let back = read_all(&client, p);
        assert!(&back == body, "{p}: content differs");
    }
    let report = fsck(&c, "/mix");
    // Files left open by a killed writer are excluded from health (they recover by lease).
    assert_eq!(report["status"], "HEALTHY", "{report}");
}

#[test]
fn safe_mode_by_hand_and_after_a_restart() {
    let mut c = cluster()
        .datanodes(2)
        .replication(2)
        .conf("dfs.namenode.safemode.extension", "2s")
        .start()
        .unwrap();
    let client = c.client().unwrap();
    let mut w = client.create("/kept", Default::default()).unwrap();
    w.write_all(b"still readable").unwrap();
    w.close().unwrap();

    assert!(dfs_ok(&c, &["admin", "safemode", "enter"]).contains("ON"));
    let err = dfs_err(&c, &["mkdir", "/refused"]);
    assert!(err.to_lowercase().contains("safe mode"), "{err}");
    assert_eq!(dfs_ok(&c, &["cat", "/kept"]), "still readable");
    assert!(dfs_ok(&c, &["admin", "safemode", "get"]).contains("ON"));
    assert!(dfs_ok(&c, &["admin", "safemode", "leave"]).contains("OFF"));
    dfs_ok(&c, &["mkdir", "/allowed"]);

    // A restarted NameNode is read-only until the DataNodes have reported its blocks.
    c.stop_namenode().unwrap();
    c.restart_namenode().unwrap();
    assert!(dfs_ok(&c, &["admin", "safemode", "get"]).contains("ON"));
    eventually(
        Duration::from_secs(30),
        "safe mode to end by itself",
        || {
            dfs_ok(&c, &["admin", "safemode", "get"])
                .contains("OFF")
                .then_some(())
        },
    );
    dfs_ok(&c, &["mkdir", "/after-restart"]);
    assert_eq!(dfs_ok(&c, &["cat", "/kept"]), "still readable");
}

#[test]
fn decommissioning_drains_a_datanode_first() {
    let c = cluster()
        .datanodes(4)
        .replication(2)
        .block_size(128 * 1024)
        .start()
        .unwrap();
    let client = c.client().unwrap();
    let content = data(1_000_000, 80);
    let mut w = client.create("/drained", Default::default()).unwrap();
    w.write_all(&content).unwrap();
    w.close().unwrap();
    let target = c.datanode_addr(0).to_string();
    dfs_ok(&c, &["admin", "decommission", &target]);
    eventually(
        Duration::from_secs(60),
        "the DataNode to be decommissioned",
        || {
            let v: serde_json::Value =
                serde_json::from_str(&dfs_ok(&c, &["admin", "report", "--json"])).ok()?;
            let dn = v["datanodes"]
                .as_array()?
                .iter()
                .find(|d| d["addr"] == target.as_str())?
                .clone();
            (dn["admin_state"] == "decommissioned").then_some(())
        },
    );
    // Every block has its 2 replicas elsewhere, and new blocks avoid the drained node.
    wait_fully_replicated(&c, "/drained", 2, Duration::from_secs(30));
    let mut w = client.create("/new", Default::default()).unwrap();
    w.write_all(&data(300_000, 81)).unwrap();
    w.close().unwrap();
    for b in client.block_locations("/new", 0, u64::MAX).unwrap() {
        assert!(
            !b.datanodes.contains(&target),
            "a new block went to a decommissioned DataNode"
        );
    }
    let back = read_all(&client, "/drained");
    assert!(back == content);
}
