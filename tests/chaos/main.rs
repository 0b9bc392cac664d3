//! The chaos soak: a mixed workload against a MiniCluster of real processes while faults are
//! injected at random, then a bounded wait for the cluster to converge.
//!
//! `cargo test -p dfs-cluster --test chaos` runs it for 3 minutes (CI's run);
//! `cargo test -p dfs-cluster --test chaos -- --minutes 30 [--seed N] [--converge-secs S]` runs
//! a long one. It prints its seed first: the same seed makes the same choices (the timing of real
//! processes still differs from run to run).
//!
//! - `workload`: writers through the client library and through the mount, and the model of what
//!   every file must hold.
//! - `check`: what must hold once faults stop.
//!
//! Faults, one at a time for those that last (a DataNode killed, frozen, or its volume full) and
//! any time for the instant ones: kill -9 and restart of the NameNode, flipped bytes and
//! truncated block files (never more than one replica of a block, so one intact replica remains),
//! and a `dfs put` killed holding its lease.

mod check;
#[path = "../common/mod.rs"]
mod common;
mod workload;

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{cluster, data, Tmpfs};
use dfs_cluster::MiniCluster;
use workload::{under, Expect, Model, Tally, Via, Worker};

const NAME: &str = "chaos_soak";

/// xorshift64*: the soak's only source of randomness, so a seed names a run.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
    fn millis(&mut self, from: u64, to: u64) -> Duration {
        Duration::from_millis(from + self.below(to - from))
    }
}

struct Args {
    minutes: f64,
    seed: u64,
    converge: Duration,
}

/// Parses the soak's flags among whatever `cargo test` passes (libtest's flags, a name filter).
/// `None`: not to be run (a filter that does not name it, or `--list`).
fn args() -> Option<Args> {
    let mut a = Args {
        minutes: 3.0,
        seed: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64),
        converge: Duration::from_secs(180),
    };
    let mut it = std::env::args().skip(1);
    let mut filtered_out = false;
    while let Some(arg) = it.next() {
        let mut value = |what: &str| it.next().unwrap_or_else(|| panic!("{what} needs a value"));
        match arg.as_str() {
            "--minutes" => a.minutes = value("--minutes").parse().expect("--minutes: a number"),
            "--seed" => a.seed = value("--seed").parse().expect("--seed: an integer"),
            "--converge-secs" => {
                a.converge = Duration::from_secs(
                    value("--converge-secs")
                        .parse()
                        .expect("--converge-secs: an integer"),
                )
            }
            "--list" => {
                println!("{NAME}: test");
                return None;
            }
            flag if flag.starts_with('-') => {}
            filter => filtered_out |= !NAME.contains(filter),
        }
    }
    (!filtered_out).then_some(a)
}

fn main() -> ExitCode {
    let Some(args) = args() else {
        return ExitCode::SUCCESS;
    };
    println!("chaos: seed {} for {} minutes", args.seed, args.minutes);
    let summary = soak(&args);
    println!("{summary}");
    ExitCode::SUCCESS
}

/// A fault that lasts until it is undone.
enum Lasting {
    Killed(usize),
    Paused(usize),
    Full,
}

/// The faults injected, by kind.
#[derive(Default, Debug)]
struct Faults(BTreeMap<&'static str, u64>);

impl Faults {
    fn count(&mut self, kind: &'static str) {
        *self.0.entry(kind).or_default() += 1;
    }
}

/// The DataNode whose only volume is a small tmpfs that the soak fills.
const SMALL_VOLUME_DN: usize = 3;

fn soak(args: &Args) -> String {
    let started = Instant::now();
    let mut c = cluster()
        .datanodes(3)
        .block_size(1024 * 1024)
        .replication(3)
        .conf("dfs.namenode.lease.soft-limit", "3s")
        .conf("dfs.namenode.lease.hard-limit", "15s")
        .conf("dfs.client.lease.renew-interval", "1s")
        // Damage to a replica no one reads is found by the scanner: within the converge bound.
        .conf("dfs.datanode.scan.period", "30s")
        .conf("dfs.block.scanner.volume.bytes.per.second", "64M")
        .start()
        .expect("start the cluster");
    // Mounted before its DataNode starts, dropped (lazily unmounted) before the cluster.
    let tmpfs = Tmpfs::mount(&c.datanode_volumes(SMALL_VOLUME_DN)[0], 256 << 20);
    c.add_datanode().expect("start the fourth DataNode");
    let mount = common::mount::mount(&c);
    c.client()
        .and_then(|cl| Ok(cl.mkdirs("/chaos/lease", true)?))
        .expect("make the lease writers' directory");
    let mut rng = Rng::new(args.seed);
    let model: Model = Arc::default();
    let tally = Arc::new(Tally::default());
    let stop = Arc::new(AtomicBool::new(false));
    let mut vias: Vec<(String, Via)> = (0..3)
        .map(|k| (format!("c{k}"), Via::Client(c.client().expect("a client"))))
        .collect();
    if let Some(m) = &mount {
        vias.push(("m".into(), Via::Mount(m.path().to_path_buf())));
    }
    let workers: Vec<_> = vias
        .into_iter()
        .map(|(name, via)| {
            let w = Worker::new(
                &name,
                via,
                rng.next_u64(),
                model.clone(),
                tally.clone(),
                stop.clone(),
            );
            std::thread::spawn(move || w.run())
        })
        .collect();

    let deadline = started + Duration::from_secs_f64(args.minutes * 60.0);
    let mut faults = Faults::default();
    let mut lasting: Option<(Lasting, Instant)> = None;
    let mut damaged = std::collections::BTreeSet::new();
    let mut lease_files = 0;
    while Instant::now() < deadline {
        std::thread::sleep(rng.millis(300, 2500));
        if let Some((_, until)) = &lasting {
            if Instant::now() >= *until {
                undo(&mut c, lasting.take().unwrap().0, tmpfs.as_ref());
            }
        }
        match rng.below(8) {
            0 if lasting.is_none() => {
                let dn = rng.below(c.num_datanodes() as u64) as usize;
                c.kill_datanode(dn);
                faults.count("datanode kill -9");
                lasting = Some((
                    Lasting::Killed(dn),
                    Instant::now() + rng.millis(2000, 12000),
                ));
            }
            1 if lasting.is_none() => {
                let dn = rng.below(c.num_datanodes() as u64) as usize;
                c.pause_datanode(dn);
                faults.count("datanode SIGSTOP");
                lasting = Some((Lasting::Paused(dn), Instant::now() + rng.millis(1000, 6000)));
            }
            2 if lasting.is_none() && tmpfs.is_some() => {
                tmpfs.as_ref().unwrap().fill();
                faults.count("full volume");
                lasting = Some((Lasting::Full, Instant::now() + rng.millis(2000, 10000)));
            }
            3 => {
                c.kill_namenode();
                std::thread::sleep(rng.millis(0, 1500));
                c.restart_namenode().expect("restart the NameNode");
                faults.count("namenode kill -9");
            }
            4 | 5 => {
                if let Some(kind) = damage(&c, &mut rng, &mut damaged) {
                    faults.count(kind);
                }
            }
            6 => {
                let (left, e) =
                    kill_a_writer(&c, &mut rng, &format!("/chaos/lease/f{lease_files}"));
                lease_files += 1;
                model.lock().unwrap().insert(left, e);
                faults.count("writer killed holding its lease");
            }
            _ => {}
        }
    }
    if let Some((l, _)) = lasting.take() {
        undo(&mut c, l, tmpfs.as_ref());
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().expect("a worker panicked");
    }
    let workload_done = Instant::now();
    let wrong = tally.wrong_reads.lock().unwrap().clone();
    assert!(
        wrong.is_empty(),
        "seed {}: reads returned wrong bytes: {wrong:#?}",
        args.seed
    );

    let model = model.lock().unwrap().clone();
    let converge_deadline = workload_done + args.converge;
    let findings = loop {
        let f = check::check(&c, &model);
        if f.divergences.is_empty() {
            break f;
        }
        assert!(
            Instant::now() < converge_deadline,
            "seed {}: not converged {:?} after the faults stopped:\n{}",
            args.seed,
            args.converge,
            f.divergences.join("\n")
        );
        std::thread::sleep(Duration::from_secs(1));
    };
    drop(mount);
    drop(tmpfs);
    let t = |n: &std::sync::atomic::AtomicU64| n.load(Ordering::Relaxed);
    format!(
        "chaos: PASSED seed {seed} in {run:.0?} of workload and faults, converged in {conv:.1?}\n\
         faults: {faults:?}\n\
         operations: {ack} acknowledged, {failed} failed; reads during faults: {reads} verified \
         ({rbytes} bytes), {rerr} failed\n\
         final check: {files} files checked, {fbytes} bytes verified; the mount {mounted}",
        seed = args.seed,
        run = workload_done - started,
        conv = Instant::now() - workload_done,
        faults = faults.0,
        ack = t(&tally.acknowledged),
        failed = t(&tally.failed),
        reads = t(&tally.reads_verified),
        rbytes = t(&tally.bytes_verified),
        rerr = t(&tally.read_errors),
        files = findings.files_checked,
        fbytes = findings.bytes_verified,
        mounted = if model.keys().any(|p| p.starts_with("/chaos/m/")) {
            "took part"
        } else {
            "did not take part"
        },
    )
}

fn undo(c: &mut MiniCluster, l: Lasting, tmpfs: Option<&Tmpfs>) {
    match l {
        Lasting::Killed(dn) => c.restart_datanode(dn).expect("restart a DataNode"),
        Lasting::Paused(dn) => c.resume_datanode(dn),
        Lasting::Full => tmpfs.expect("a full volume is a tmpfs").empty(),
    }
}

/// Flips a byte in, or truncates, one finalized replica of a block no earlier fault damaged, so
/// every block keeps intact replicas to heal from.
fn damage(
    c: &MiniCluster,
    rng: &mut Rng,
    damaged: &mut std::collections::BTreeSet<String>,
) -> Option<&'static str> {
    let mut candidates: Vec<_> = (0..c.num_datanodes())
        .flat_map(|dn| check::replica_files(c, dn))
        .collect();
    candidates.retain(|p| {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        under(p, "finalized") && !name.ends_with(".meta") && !damaged.contains(&name)
    });
    if candidates.is_empty() {
        return None;
    }
    let p = &candidates[rng.below(candidates.len() as u64) as usize];
    let len = std::fs::metadata(p).ok()?.len();
    if len == 0 {
        return None;
    }
    damaged.insert(p.file_name().unwrap().to_string_lossy().into_owned());
    if rng.below(2) == 0 {
        let mut bytes = std::fs::read(p).ok()?;
        let at = rng.below(len) as usize;
        bytes[at] ^= 1 + rng.below(255) as u8;
        std::fs::write(p, bytes).ok()?;
        Some("flipped byte")
    } else {
        let f = std::fs::OpenOptions::new().write(true).open(p).ok()?;
        f.set_len(rng.below(len)).ok()?;
        Some("truncated block file")
    }
}

/// Starts `dfs put - PATH`, feeds it part of a file, and kills it (-9) while it holds the lease
/// on `PATH._COPYING_` (put writes there and renames at the end, as HDFS's does): the NameNode
/// must recover the lease and close that file with a prefix of what was sent. Returns the path
/// it leaves and what it may hold.
fn kill_a_writer(c: &MiniCluster, rng: &mut Rng, path: &str) -> (String, Expect) {
    let bytes = data(64 * 1024 + rng.below(2 << 20) as usize, rng.next_u64());
    let mut child = c
        .command()
        .args(["put", "-", path])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run dfs put");
    let mut stdin = child.stdin.take().unwrap();
    let cut = rng.below(bytes.len() as u64) as usize;
    let _ = stdin.write_all(&bytes[..cut]);
    let _ = stdin.flush();
    std::thread::sleep(rng.millis(100, 1000));
    let _ = child.kill();
    let _ = child.wait();
    let left = format!("{path}._COPYING_");
    let e = Expect {
        data: bytes[..cut].to_vec(),
        min: 0,
        may_be_absent: true,
    };
    (left, e)
}
