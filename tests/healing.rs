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
    // Until the NameNode declares the victim dead it still counts the victim's replicas of the
    // first blocks; after that, three live replicas of every block can only come from healing.
    eventually(
        Duration::from_secs(30),
        "the NameNode to declare the victim dead",
        || (datanode_report(&c, victim)["alive"] == false).then_some(()),
    );
    wait_healed(&c, "/survivor", &content, 3, &[], Duration::from_secs(60));
    let gone = c.datanode_addr(victim).to_string();
    for (_, b) in fsck_blocks(&c, "/survivor") {
        assert!(!counted_replicas(&b).contains(&gone), "{b}");
    }
    assert_eq!(fsck(&c, "/survivor")["status"], "HEALTHY");
}

/// The NameNode's replication monitor first runs one interval after start: an hour here, so the
/// NameNode never heals during the test, and three live replicas right after a write can only come
/// from replacements the writer brought in.
const NO_NAMENODE_HEALING: &str = "1h";

#[test]
fn a_replacement_datanode_joins_a_broken_pipeline() {
    let mut c = cluster()
        .datanodes(4)
        .replication(3)
        .block_size(4 * MIB as u64)
        .conf("dfs.namenode.replication.interval", NO_NAMENODE_HEALING)
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
    wait_healed(&c, "/replaced", &content, 3, &[], Duration::from_secs(10));
    let locs = client.block_locations("/replaced", 0, u64::MAX).unwrap();
    assert!(!locs[0]
        .datanodes
        .contains(&c.datanode_addr(victim).to_string()));
    assert_eq!(admin_report(&c)["pending_replications"], 0);
    assert!(read_all(&client, "/replaced") == content);
}

#[test]
fn two_datanodes_lost_at_once_are_both_replaced() {
    // The second recovery round starts from a survivor that the first, failed round already
    // moved to a new generation stamp: the copy to the second replacement must name that stamp.
    let mut c = cluster()
        .datanodes(5)
        .replication(3)
        .block_size(4 * MIB as u64)
        .conf("dfs.namenode.replication.interval", NO_NAMENODE_HEALING)
        .start()
        .unwrap();
    let client = c.client().unwrap();
    let content = data(3 * MIB + 99, 34);
    let mut w = client.create("/doubly", Default::default()).unwrap();
    w.write_all(&content[..MIB]).unwrap();
    w.hflush().unwrap();
    let locs = client.block_locations("/doubly", 0, u64::MAX).unwrap();
    let victims = [
        index_of(&c, &locs[0].datanodes[1]),
        index_of(&c, &locs[0].datanodes[2]),
    ];
    for v in victims {
        c.kill_datanode(v);
    }
    w.write_all(&content[MIB..]).unwrap();
    w.close().unwrap();
    wait_healed(&c, "/doubly", &content, 3, &[], Duration::from_secs(10));
    let holders = counted_replicas(&fsck_blocks(&c, "/doubly")[0].1);
    for v in victims {
        assert!(!holders.contains(c.datanode_addr(v)), "{holders:?}");
    }
    assert_eq!(admin_report(&c)["pending_replications"], 0);
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
    kill_writer_in_its_second_block(&c, "/orphan", &content);
    let client = c.client().unwrap();

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

/// Found by the chaos soak: an append takes a new generation stamp at the NameNode, and when its
/// writer fails to reopen any replica (here the only DataNode is down), no replica ever has
/// that stamp. Lease recovery used to leave every replica out as stale, so the file stayed open
/// for good; now, every replica having answered, it recovers from the newest.
#[test]
fn an_append_that_reopened_no_replica_is_recovered_from_the_older_stamp() {
    let mut c = cluster()
        .datanodes(1)
        .replication(1)
        .conf("dfs.namenode.lease.soft-limit", "1s")
        .conf("dfs.namenode.lease.hard-limit", "3s")
        .start()
        .unwrap();
    let content = data(300_000, 51);
    let client = c.client().unwrap();
    let mut w = client.create("/appended", Default::default()).unwrap();
    w.write_all(&content).unwrap();
    w.close().unwrap();
    let before = fsck_blocks(&c, "/appended")[0].1["generation_stamp"]
        .as_u64()
        .unwrap();

    // Killed, and still live to the NameNode until its heartbeats are missed for 5 s.
    c.kill_datanode(0);
    let out = dfs(&c, &["append", "/dev/null", "/appended"]);
    c.restart_datanode(0).unwrap();
    assert!(!out.status.success(), "the append reached a dead DataNode");
    // The NameNode has the append's stamp; the only replica still has the one before.
    let reopened = fsck_blocks(&c, "/appended")[0].1["generation_stamp"]
        .as_u64()
        .unwrap();
    assert!(reopened > before, "{reopened} after {before}");

    let st = eventually(
        Duration::from_secs(30),
        "lease recovery to close the appended file",
        || {
            client
                .stat("/appended")
                .ok()
                .filter(|s| !s.under_construction)
        },
    );
    assert_eq!(st.length, content.len() as u64);
    assert_eq!(read_all(&client, "/appended"), content);
    let mut w = client.append("/appended").unwrap();
    w.write_all(b"tail").unwrap();
    w.close().unwrap();
    assert_eq!(client.stat("/appended").unwrap().length, st.length + 4);
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
    let (d0, f0) = &c.replica_files(blocks[0].block_id)[0];
    let mut bytes = std::fs::read(f0).unwrap();
    bytes[12345] ^= 0xff;
    std::fs::write(f0, bytes).unwrap();
    let (d1, f1) = &c.replica_files(blocks[1].block_id)[0];
    std::fs::OpenOptions::new()
        .write(true)
        .open(f1)
        .unwrap()
        .set_len(1000)
        .unwrap();
    let (d2, f2) = &c.replica_files(blocks[2].block_id)[0];
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

    let block_len = 256 * 1024;
    let damaged: Vec<(u64, String, &[u8])> = [d0, d1, d2]
        .iter()
        .zip(&blocks)
        .enumerate()
        .map(|(k, (&&i, b))| {
            let part = &content[k * block_len..(k + 1) * block_len];
            (b.block_id, c.datanode_addr(i).to_string(), part)
        })
        .collect();

    for _ in 0..3 {
        let back = read_all(&client, "/victim");
        assert!(back == content, "a read returned damaged data");
    }
    // Reads and the block scanner report each damaged replica: the NameNode stops counting it.
    // When no other DataNode could take the good copy in time (a heartbeat late on a loaded
    // machine), the NameNode frees the damaged holder and copies onto it: counted again, but
    // intact.
    for (block_id, holder, part) in &damaged {
        eventually(
            Duration::from_secs(60),
            &format!("the NameNode to stop counting the damaged replica of blk_{block_id}"),
            || {
                let _ = read_all(&client, "/victim");
                let (_, b) = fsck_blocks(&c, "/victim")
                    .into_iter()
                    .find(|(_, b)| b["block_id"] == *block_id)?;
                let replaced = intact_replicas(&c, *block_id, part, &[]).contains(holder);
                (!counted_replicas(&b).contains(holder) || replaced).then_some(())
            },
        );
    }
    // Then healing brings every block back to three intact replicas, all of them real.
    wait_healed(&c, "/victim", &content, 3, &[], Duration::from_secs(60));
    let r = fsck(&c, "/victim");
    assert_eq!(r["status"], "HEALTHY", "{r}");
    assert_eq!(r["under_replicated_blocks"], 0, "{r}");
    // Damaged replicas are the replicas' own fault: no volume was failed over them.
    for i in 0..c.num_datanodes() {
        let dn = datanode_report(&c, i);
        assert_eq!(
            (&dn["alive"], &dn["failed_volumes"]),
            (&true.into(), &0.into())
        );
    }
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
    let lost: Vec<u64> = client
        .block_locations("/spread", 0, u64::MAX)
        .unwrap()
        .iter()
        .map(|b| b.block_id)
        .filter(|&id| c.replica_files(id).iter().any(|(_, p)| p.starts_with(&vol)))
        .collect();
    assert!(!lost.is_empty(), "no replica on the volume to fail");
    std::fs::remove_dir_all(&vol).unwrap();
    std::fs::write(&vol, b"not a directory any more").unwrap();
    eventually(
        Duration::from_secs(30),
        "the DataNode to report a failed volume",
        || {
            let dn = datanode_report(&c, 0);
            (dn["failed_volumes"] == 1 && dn["alive"] == true).then_some(())
        },
    );
    // Healed means: two replicas of every block that the NameNode counts and that exist on a
    // working volume, which cannot hold before the lost replicas' report has landed.
    wait_healed(
        &c,
        "/spread",
        &content,
        2,
        std::slice::from_ref(&vol),
        Duration::from_secs(60),
    );
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
        // Live DataNodes are not enough: the next round's mkdirs would fail in safe mode.
        c.wait_for_safe_mode_off(Duration::from_secs(30)).unwrap();
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
    // Nothing else is there: a lost delete, or a rename that left its source behind, would show.
    for t in 0..3 {
        let dir = format!("/mix/t{t}");
        for st in client.list(&dir).unwrap() {
            let p = format!("{dir}/{}", st.name);
            assert!(
                st.is_file() && (expected.contains_key(&p) || uncertain.contains(&p)),
                "{p} should not exist"
            );
        }
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

/// Flips a byte in the block file at `path`.
fn flip_byte(path: &std::path::Path, at: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[at] ^= 0xff;
    std::fs::write(path, bytes).unwrap();
}

/// Reads `path` (checking its content, or only trying, when no good replica is left) until fsck
/// lists `n` corrupt replicas of its first block: each read starts at a random replica and
/// reports a corrupt one it meets.
fn read_until_reported(
    c: &MiniCluster,
    client: &dfs_client::blocking::DfsClient,
    path: &str,
    content: Option<&[u8]>,
    n: usize,
) {
    eventually(
        Duration::from_secs(30),
        &format!("reads to report {n} corrupt replica(s) of {path}"),
        || {
            match content {
                Some(content) => assert!(read_all(client, path) == content, "damaged data read"),
                None => {
                    use std::io::Read;
                    let mut r = client.open(path).unwrap();
                    assert!(
                        r.read_to_end(&mut Vec::new()).is_err(),
                        "a corrupt block read"
                    );
                }
            }
            let (_, b) = fsck_blocks(c, path).into_iter().next()?;
            let corrupt = b["replicas"]
                .as_array()?
                .iter()
                .filter(|r| r["corrupt"] == true)
                .count();
            (corrupt == n).then_some(())
        },
    );
}

#[test]
fn a_corrupt_replica_heals_on_a_cluster_as_small_as_its_replication() {
    // Every DataNode holds a replica, so the good copy can only go where the corrupt one is.
    let c = cluster()
        .datanodes(3)
        .replication(3)
        .block_size(MIB as u64)
        .start()
        .unwrap();
    let client = c.client().unwrap();
    let content = data(300_000, 61);
    let mut w = client.create("/small", Default::default()).unwrap();
    w.write_all(&content).unwrap();
    w.close().unwrap();
    wait_healed(&c, "/small", &content, 3, &[], Duration::from_secs(10));
    let block = client.block_locations("/small", 0, u64::MAX).unwrap()[0].block_id;
    // Safe mode holds healing off while the report is looked at.
    dfs_ok(&c, &["admin", "safemode", "enter"]);
    flip_byte(&c.replica_files(block)[0].1, 4321);
    read_until_reported(&c, &client, "/small", Some(&content), 1);
    let r = fsck(&c, "/small");
    assert_eq!(r["status"], "HEALTHY", "{r}");
    assert_eq!(r["under_replicated_blocks"], 1, "{r}");
    dfs_ok(&c, &["admin", "safemode", "leave"]);
    wait_healed(&c, "/small", &content, 3, &[], Duration::from_secs(30));
    let r = fsck(&c, "/small");
    assert_eq!(r["status"], "HEALTHY", "{r}");
    assert_eq!(r["under_replicated_blocks"], 0, "{r}");
}

/// Issue 11's scenario, made deterministic: the only replicas left to copy from are corrupt, and
/// no reader reports them. Each copy fails at its target on the checksum; the target keeps
/// nothing of it and reports the source (reportRemoteBadBlock), so the NameNode learns of both
/// corrupt replicas from the copies alone. When the good replica returns, the block heals to
/// three intact replicas: no partial copy refuses the good one.
#[test]
fn a_copy_from_a_corrupt_source_leaves_nothing_behind_and_reports_the_source() {
    let mut c = cluster()
        .datanodes(4)
        .replication(3)
        .block_size(MIB as u64)
        .start()
        .unwrap();
    let client = c.client().unwrap();
    let content = data(900_000, 62);
    let mut w = client.create("/one", Default::default()).unwrap();
    w.write_all(&content).unwrap();
    w.close().unwrap();
    wait_healed(&c, "/one", &content, 3, &[], Duration::from_secs(10));
    let block = client.block_locations("/one", 0, u64::MAX).unwrap()[0].block_id;
    let files = c.replica_files(block);
    let holders: Vec<usize> = files.iter().map(|(i, _)| *i).collect();
    let spare = (0..4).find(|i| !holders.contains(i)).unwrap();
    let good = holders[2];
    for (_, f) in &files[..2] {
        flip_byte(f, 4321);
    }
    // The intact replica's DataNode dies: the NameNode can only copy from a corrupt one.
    c.kill_datanode(good);
    // Nothing else can tell the NameNode: no client reads, and the scanner runs every 3 weeks.
    // A corrupt replica it knows of is listed as such, or already deleted to make room.
    eventually(
        Duration::from_secs(60),
        "failed copies to report both corrupt sources",
        || {
            let (_, b) = fsck_blocks(&c, "/one").into_iter().next()?;
            counted_replicas(&b).is_empty().then_some(())
        },
    );
    let on_spare: Vec<_> = c
        .replica_files(block)
        .into_iter()
        .filter(|(i, _)| *i == spare)
        .collect();
    assert!(on_spare.is_empty(), "a failed copy left {on_spare:?}");

    c.restart_datanode(good).unwrap();
    wait_healed(&c, "/one", &content, 3, &[], Duration::from_secs(60));
    let left: Vec<_> = c
        .replica_files(block)
        .into_iter()
        .filter(|(_, p)| !p.components().any(|x| x.as_os_str() == "finalized"))
        .collect();
    assert!(
        left.is_empty(),
        "replicas left outside finalized/: {left:?}"
    );
    let r = fsck(&c, "/one");
    assert_eq!(r["status"], "HEALTHY", "{r}");
    assert_eq!(r["under_replicated_blocks"], 0, "{r}");
    assert!(read_all(&client, "/one") == content);
}

#[test]
fn fsck_exits_non_zero_only_when_a_block_has_no_good_replica() {
    let c = cluster()
        .datanodes(3)
        .replication(3)
        .block_size(MIB as u64)
        .start()
        .unwrap();
    let client = c.client().unwrap();
    let (three, one) = (data(200_000, 62), data(200_000, 63));
    let mut w = client.create("/three", Default::default()).unwrap();
    w.write_all(&three).unwrap();
    w.close().unwrap();
    let opts = dfs_client::CreateOptions {
        replication: 1,
        ..Default::default()
    };
    let mut w = client.create("/one", opts).unwrap();
    w.write_all(&one).unwrap();
    w.close().unwrap();
    wait_healed(&c, "/three", &three, 3, &[], Duration::from_secs(10));
    dfs_ok(&c, &["admin", "safemode", "enter"]);
    for path in ["/three", "/one"] {
        let block = client.block_locations(path, 0, u64::MAX).unwrap()[0].block_id;
        flip_byte(&c.replica_files(block)[0].1, 999);
    }
    read_until_reported(&c, &client, "/three", Some(&three), 1);
    read_until_reported(&c, &client, "/one", None, 1);
    // A corrupt replica beside good ones: HEALTHY, exit 0, the corrupt replica listed.
    let out = dfs_ok(&c, &["fsck", "/three"]);
    assert!(
        out.contains("(corrupt)") && out.contains("is HEALTHY"),
        "{out}"
    );
    // No good replica left: CORRUPT, non-zero exit, for the file and for any tree holding it.
    for path in ["/one", "/"] {
        let out = dfs(&c, &["fsck", path]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(!out.status.success(), "fsck {path} exited 0: {text}");
        assert!(text.contains("is CORRUPT"), "{text}");
    }
    dfs_ok(&c, &["admin", "safemode", "leave"]);
}

#[test]
fn a_full_cluster_gives_a_clear_no_space_error_and_corrupts_nothing() {
    let mut c = cluster()
        .datanodes(0)
        .replication(1)
        .block_size(MIB as u64)
        .start()
        .unwrap();
    let Some(_disk) = Tmpfs::mount(&c.datanode_volumes(0)[0], 8 * MIB as u64) else {
        return;
    };
    c.add_datanode().unwrap();
    let client = c.client().unwrap();
    let kept = data(MIB + MIB / 2, 90);
    let mut w = client.create("/kept", Default::default()).unwrap();
    w.write_all(&kept).unwrap();
    w.close().unwrap();

    // More than the disk holds: the writer gets a no-space error, not a broken pipeline.
    let mut w = client.create("/too-big", Default::default()).unwrap();
    let err = (0..16)
        .try_for_each(|i| w.write_all(&data(MIB, 91 + i)))
        .map_err(|e| e.to_string())
        .and_then(|()| w.close().map_err(|e| e.to_string()))
        .unwrap_err();
    assert!(err.starts_with("no space left"), "{err}");
    // And so does the shell, with one clear line.
    let local = c.dir().join("big.local");
    std::fs::write(&local, data(12 * MIB, 92)).unwrap();
    let err = dfs_err(&c, &["put", local.to_str().unwrap(), "/too-big-2"]);
    assert!(err.starts_with("dfs: no space left"), "{err}");

    // Nothing stored was harmed, and the volume was never taken for a failed one.
    assert!(read_all(&client, "/kept") == kept);
    assert!(dfs_ok(&c, &["fsck", "/kept"]).contains("is HEALTHY"));
    let dn = datanode_report(&c, 0);
    assert_eq!(
        (&dn["alive"], &dn["failed_volumes"]),
        (&true.into(), &0.into())
    );
    // Freeing space makes room again.
    for p in ["/too-big", "/too-big-2._COPYING_"] {
        let _ = client.delete(p, false);
    }
    eventually(Duration::from_secs(30), "room for a new file", || {
        let mut w = client.create("/later", Default::default()).ok()?;
        let written = w.write_all(&data(MIB, 93)).is_ok() && w.close().is_ok();
        if !written {
            let _ = client.delete("/later", false);
        }
        written.then_some(())
    });
    assert!(read_all(&client, "/kept") == kept);
}

#[test]
fn a_full_volume_keeps_its_replicas_and_new_blocks_go_to_the_other() {
    // DataNode 0 has two small disks; the bigger one takes its first replicas, then fills up
    // (another program writes to it) in the middle of a block.
    let mut c = cluster()
        .datanodes(0)
        .volumes(2)
        .replication(2)
        .block_size(MIB as u64)
        .start()
        .unwrap();
    let vols = c.datanode_volumes(0);
    let Some(big) = Tmpfs::mount(&vols[0], 24 * MIB as u64) else {
        return;
    };
    let Some(_small) = Tmpfs::mount(&vols[1], 12 * MIB as u64) else {
        return;
    };
    c.add_datanode().unwrap();
    c.add_datanode().unwrap();
    let client = c.client().unwrap();
    let on_dn0 = |path: &str, vol: &std::path::Path| -> usize {
        client
            .block_locations(path, 0, u64::MAX)
            .unwrap()
            .iter()
            .flat_map(|b| c.replica_files(b.block_id))
            .filter(|(i, p)| *i == 0 && p.starts_with(vol))
            .count()
    };
    let before = data(2 * MIB, 94);
    let mut w = client.create("/before", Default::default()).unwrap();
    w.write_all(&before).unwrap();
    w.close().unwrap();
    assert_eq!(on_dn0("/before", &vols[0]), 2);

    let during = data(3 * MIB + 500, 95);
    let mut w = client.create("/during", Default::default()).unwrap();
    w.write_all(&during[..256 * 1024]).unwrap();
    w.hflush().unwrap();
    big.fill();
    w.write_all(&during[256 * 1024..]).unwrap();
    w.close().unwrap();
    assert!(read_all(&client, "/during") == during);

    // The full volume is not a failed one: its replicas stay and count.
    let dn = datanode_report(&c, 0);
    assert_eq!(
        (&dn["alive"], &dn["failed_volumes"]),
        (&true.into(), &0.into())
    );
    wait_healed(&c, "/before", &before, 2, &[], Duration::from_secs(30));
    assert_eq!(on_dn0("/before", &vols[0]), 2);
    // Every replica DataNode 0 took since went to the other volume.
    wait_healed(&c, "/during", &during, 2, &[], Duration::from_secs(30));
    let after = data(2 * MIB, 96);
    let mut w = client.create("/after", Default::default()).unwrap();
    w.write_all(&after).unwrap();
    w.close().unwrap();
    wait_healed(&c, "/after", &after, 2, &[], Duration::from_secs(30));
    for path in ["/during", "/after"] {
        let finalized_on_full = client
            .block_locations(path, 0, u64::MAX)
            .unwrap()
            .iter()
            .flat_map(|b| c.replica_files(b.block_id))
            .filter(|(i, p)| {
                *i == 0
                    && p.starts_with(&vols[0])
                    && p.components().any(|x| x.as_os_str() == "finalized")
            })
            .count();
        assert_eq!(
            finalized_on_full, 0,
            "{path} has a block on the full volume"
        );
    }
    assert!(on_dn0("/after", &vols[1]) > 0);
    // Several heartbeats (each probing every volume) later, the full volume still serves the
    // replicas it had, which were never copied anywhere else on DataNode 0.
    let dn = datanode_report(&c, 0);
    assert_eq!(
        (&dn["alive"], &dn["failed_volumes"]),
        (&true.into(), &0.into())
    );
    assert_eq!(on_dn0("/before", &vols[0]), 2);
    assert_eq!(on_dn0("/before", &vols[1]), 0);
    wait_healed(&c, "/before", &before, 2, &[], Duration::from_secs(10));
}

#[test]
fn a_read_only_volume_fails_alone_and_its_replicas_are_healed() {
    // Two equal disks on DataNode 0, so its replicas alternate between them; with replication 2
    // on two DataNodes it holds every block, and heals the lost ones onto its other disk.
    let mut c = cluster()
        .datanodes(0)
        .volumes(2)
        .replication(2)
        .block_size(64 * 1024)
        .start()
        .unwrap();
    let vols = c.datanode_volumes(0);
    let Some(failing) = Tmpfs::mount(&vols[0], 32 * MIB as u64) else {
        return;
    };
    let Some(_other) = Tmpfs::mount(&vols[1], 32 * MIB as u64) else {
        return;
    };
    c.add_datanode().unwrap();
    c.add_datanode().unwrap();
    let client = c.client().unwrap();
    let content = data(2 * MIB, 72);
    let mut w = client.create("/spread", Default::default()).unwrap();
    w.write_all(&content).unwrap();
    w.close().unwrap();
    wait_healed(&c, "/spread", &content, 2, &[], Duration::from_secs(10));
    let on_failing = client
        .block_locations("/spread", 0, u64::MAX)
        .unwrap()
        .iter()
        .filter(|b| {
            c.replica_files(b.block_id)
                .iter()
                .any(|(_, p)| p.starts_with(&vols[0]))
        })
        .count();
    assert!(on_failing > 0, "no replica on the volume to fail");

    failing.remount_read_only();
    eventually(
        Duration::from_secs(30),
        "the DataNode to report a failed volume",
        || {
            let dn = datanode_report(&c, 0);
            (dn["failed_volumes"] == 1 && dn["alive"] == true).then_some(())
        },
    );
    wait_healed(
        &c,
        "/spread",
        &content,
        2,
        std::slice::from_ref(&vols[0]),
        Duration::from_secs(60),
    );
    assert!(read_all(&client, "/spread") == content);
}

#[test]
fn another_clients_append_after_the_soft_limit_recovers_the_lease() {
    // The hard limit is an hour away: only the soft limit can free the file in time.
    let c = cluster()
        .datanodes(3)
        .replication(3)
        .block_size(MIB as u64)
        .conf("dfs.namenode.lease.soft-limit", "1s")
        .conf("dfs.namenode.lease.hard-limit", "1h")
        .start()
        .unwrap();
    let content = data(MIB + 200_000, 52);
    kill_writer_in_its_second_block(&c, "/leased", &content);
    let client = c.client().unwrap();

    // Another client's append is refused while recovery runs, then succeeds.
    let mut w = eventually(
        Duration::from_secs(30),
        "another client's append to get the file",
        || match client.append("/leased") {
            Ok(w) => Some(w),
            Err(dfs_client::Error::LeaseConflict(_)) => None,
            Err(e) => panic!("append failed: {e}"),
        },
    );
    let recovered = client.stat("/leased").unwrap().length;
    assert!(
        recovered >= MIB as u64 && recovered <= content.len() as u64,
        "recovered length {recovered}"
    );
    w.write_all(b"tail").unwrap();
    w.close().unwrap();
    let back = read_all(&client, "/leased");
    assert_eq!(back.len() as u64, recovered + 4);
    assert!(back[..recovered as usize] == content[..recovered as usize]);
    assert_eq!(&back[recovered as usize..], b"tail");
}

/// Starts `dfs append - PATH` writing `content` (more than one block) and kills it with SIGKILL
/// once it is half a second into its second block: a client that died holding the lease.
fn kill_writer_in_its_second_block(c: &MiniCluster, path: &str, content: &[u8]) {
    let mut writer = c
        .command()
        .args(["append", "-", path])
        .stdin(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = writer.stdin.take().unwrap();
    stdin.write_all(content).unwrap();
    stdin.flush().unwrap();
    let client = c.client().unwrap();
    eventually(
        Duration::from_secs(30),
        "the writer to reach its second block",
        || {
            let locs = client.block_locations(path, 0, u64::MAX).ok()?;
            (locs.len() == 2).then_some(())
        },
    );
    std::thread::sleep(Duration::from_millis(500));
    writer.kill().unwrap();
    writer.wait().unwrap();
}
