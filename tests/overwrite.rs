//! Writes anywhere: a model-checking test drives random writes, truncations, reads, fsyncs,
//! reopens, mmap writes and a second handle through a real mount and through the client API,
//! comparing the file with a reference after every step (the seed is printed; set
//! `DFS_MODEL_SEED` to replay one, `DFS_MODEL_STEPS` for a longer run). The same model runs while
//! a DataNode is killed; overwrites survive the writer (the mount) and the NameNode being killed;
//! SQLite keeps a sound database through all of it. Fails loudly where FUSE cannot be used,
//! unless DFS_SKIP_FUSE_TESTS=1.

mod common;

use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::mount::*;
use common::*;
use dfs_cluster::MiniCluster;

/// Small blocks, so that writes cross block boundaries all the time.
const BLOCK: u64 = 64 * 1024;
/// The model's files stay below this length.
const MAX_LEN: u64 = 12 * BLOCK;

/// The model through the mount, in Python: `model.py SEED STEPS MOUNTED_FILE REFERENCE_FILE
/// MAX_LEN BLOCK`. Every operation is applied to the file in the mount and to a reference file
/// on local disk; after each step both are compared whole (a third of the time after dropping
/// the kernel's cached pages, so the bytes come from dfs). Prints `step N` as it goes.
const MODEL: &str = r#"
import mmap, os, random, sys
seed, steps, path, ref_path, max_len, block = sys.argv[1:]
seed, steps, max_len, block = int(seed), int(steps), int(max_len), int(block)
rnd = random.Random(seed)
fds = [os.open(path, os.O_CREAT | os.O_RDWR | os.O_TRUNC, 0o644), None]
ref = os.open(ref_path, os.O_CREAT | os.O_RDWR | os.O_TRUNC, 0o644)

def fail(step, what, msg):
    sys.exit(f'seed {seed}: step {step} ({what}) diverged: {msg}')

def compare(step, what):
    n = os.fstat(ref).st_size
    want = os.pread(ref, n + 1, 0)
    for fd in fds:
        if fd is None:
            continue
        if rnd.random() < 0.33:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        got = os.pread(fd, n + 4096, 0)
        if got != want:
            i = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), n))
            fail(step, what, f'first at byte {i}; the mount has {len(got)} bytes, the reference {n}')

ops = ['write', 'cross', 'truncate', 'read', 'fsync', 'reopen', 'mmap', 'second']
for step in range(steps):
    op = rnd.choices(ops, [30, 10, 8, 8, 6, 6, 8, 4])[0]
    fd = rnd.choice([f for f in fds if f is not None])
    n = os.fstat(ref).st_size
    if op in ('write', 'cross'):
        if op == 'cross':
            off = max(0, rnd.randrange(block, max_len, block) - rnd.randrange(1, 4096))
            size = rnd.randrange(2, 8192)
        else:
            off = rnd.randrange(0, min(n + block, max_len))
            size = rnd.randrange(1, 40000)
        data = rnd.randbytes(size)
        what = f'pwrite of {size} at {off}'
        os.pwrite(fd, data, off)
        os.pwrite(ref, data, off)
    elif op == 'truncate':
        size = rnd.randrange(0, max_len)
        what = f'ftruncate to {size}'
        os.ftruncate(fd, size)
        os.ftruncate(ref, size)
    elif op == 'read':
        off, size = rnd.randrange(0, n + 1), rnd.randrange(1, 100000)
        what = f'pread of {size} at {off}'
        if os.pread(fd, size, off) != os.pread(ref, size, off):
            fail(step, what, 'the bytes read differ')
    elif op == 'fsync':
        what = 'fsync'
        os.fsync(fd)
    elif op == 'reopen':
        what = 'close and reopen'
        i = fds.index(fd)
        os.close(fd)
        fds[i] = os.open(path, os.O_RDWR)
    elif op == 'mmap':
        if n == 0:
            continue
        off = rnd.randrange(0, n)
        size = min(rnd.randrange(1, 20000), n - off)
        data = rnd.randbytes(size)
        what = f'mmap write of {size} at {off}'
        m = mmap.mmap(fd, n)
        m[off:off + size] = data
        m.flush()
        m.close()
        os.pwrite(ref, data, off)
    else:
        if fds[1] is None:
            what = 'open a second handle'
            fds[1] = os.open(path, os.O_RDWR)
        else:
            what = 'close the second handle'
            os.close(fds[1])
            fds[1] = None
    compare(step, what)
    print(f'step {step}', flush=True)
for fd in fds:
    if fd is not None:
        os.close(fd)
"#;

/// Overwrites of a file holding `old`: `overwrite.py FILE NEW LOG SEED SYNC_EVERY` writes, at
/// random offsets, ranges of the local file NEW over FILE, appends each `offset length` to LOG
/// before writing it, and prints `synced K` after every SYNC_EVERY writes once fsync returned
/// (the first K writes are durable). It stops at the first error (its mount or NameNode killed).
const OVERWRITE: &str = r#"
import os, random, sys
path, new_path, log_path, seed, every = sys.argv[1:]
rnd, every = random.Random(int(seed)), int(every)
new = open(new_path, 'rb').read()
log = open(log_path, 'w')
fd = os.open(path, os.O_RDWR)
try:
    for k in range(1, 100000):
        off = rnd.randrange(0, len(new) - 1)
        size = min(rnd.randrange(1, 50000), len(new) - off)
        log.write(f'{off} {size}\n')
        log.flush()
        os.pwrite(fd, new[off:off + size], off)
        if k % every == 0:
            os.fsync(fd)
            print(f'synced {k}', flush=True)
except OSError as e:
    print(f'stopped: {e}', flush=True)
"#;

fn seed() -> u64 {
    let seed = std::env::var("DFS_MODEL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                % 1_000_000
        });
    eprintln!("model seed {seed} (DFS_MODEL_SEED={seed} replays it)");
    seed
}

fn steps(default: u64) -> u64 {
    std::env::var("DFS_MODEL_STEPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn small_blocks(datanodes: usize) -> MiniCluster {
    cluster()
        .datanodes(datanodes)
        .replication(3)
        .block_size(BLOCK)
        .start()
        .unwrap()
}

/// Starts a Python program (written to `dir`) with `args`, its stdout piped.
fn spawn_python(dir: &Path, name: &str, program: &str, args: &[String]) -> Child {
    let script = dir.join(name);
    std::fs::write(&script, program).unwrap();
    Command::new("python3")
        .arg(&script)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Reads the child's stdout lines until one satisfies `until` (or the output ends).
fn wait_line(lines: &mut impl Iterator<Item = String>, until: impl Fn(&str) -> bool) {
    for line in lines.by_ref() {
        if until(&line) {
            return;
        }
    }
}

fn finish(child: Child, what: &str) -> String {
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{what} failed: {stderr}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs the mount model to its end and checks that another client reads what the reference
/// holds. `during` runs once the model is a third of the way in.
fn run_mount_model(c: &mut MiniCluster, steps: u64, during: impl FnOnce(&mut MiniCluster)) {
    let Some(m) = mount(c) else { return };
    let local = tempfile::tempdir().unwrap();
    let reference = local.path().join("reference");
    let args = [
        seed().to_string(),
        steps.to_string(),
        m.p("model").to_string_lossy().into_owned(),
        reference.to_string_lossy().into_owned(),
        MAX_LEN.to_string(),
        BLOCK.to_string(),
    ];
    let mut child = spawn_python(local.path(), "model.py", MODEL, &args);
    let mut lines = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map_while(|l| l.ok());
    let third = format!("step {}", steps / 3);
    wait_line(&mut lines, |l| l == third);
    during(c);
    lines.for_each(drop);
    finish(child, "the model through the mount");
    // Close-to-open: another client reads what the reference holds.
    let want = std::fs::read(&reference).unwrap();
    assert!(read_all(&c.client().unwrap(), "/model") == want);
}

#[test]
fn random_operations_through_the_mount_match_a_local_file() {
    let mut c = small_blocks(3);
    run_mount_model(&mut c, steps(2000), |_| {});
    let r = fsck(&c, "/model");
    assert_eq!(r["status"], "HEALTHY", "{r}");
}

#[test]
fn the_model_holds_while_a_datanode_is_killed_and_its_blocks_heal() {
    let mut c = small_blocks(4);
    run_mount_model(&mut c, steps(600), |c| c.kill_datanode(0));
    // Every block is readable (read above) and back at three replicas on the live DataNodes.
    wait_fully_replicated(&c, "/model", 3, Duration::from_secs(60));
    assert_eq!(fsck(&c, "/model")["status"], "HEALTHY");
}

/// A small deterministic generator for the API model.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

#[test]
fn random_operations_through_the_client_api_match_a_local_model() {
    let c = small_blocks(3);
    let client = c.client().unwrap();
    let other = c.client().unwrap();
    let seed = seed();
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut model: Vec<u8> = Vec::new();
    let mut w = Some(client.create("/api", Default::default()).unwrap());
    for step in 0..steps(1000) {
        let len = model.len() as u64;
        let what = match rng.below(10) {
            0..=5 => {
                let off = rng.below((len + BLOCK).min(MAX_LEN));
                let bytes = data(1 + rng.below(3 * BLOCK / 2) as usize, rng.below(1 << 30));
                let writer = w.get_or_insert_with(|| client.append("/api").unwrap());
                if step % 2 == 0 {
                    writer.write_at(off, &bytes).unwrap();
                } else {
                    writer.seek(SeekFrom::Start(off)).unwrap();
                    writer.write_all(&bytes).unwrap();
                }
                let end = off as usize + bytes.len();
                if model.len() < end {
                    model.resize(end, 0);
                }
                model[off as usize..end].copy_from_slice(&bytes);
                format!("write of {} at {off}", bytes.len())
            }
            6 => {
                let to = rng.below(MAX_LEN);
                if let Some(writer) = w.take() {
                    writer.close().unwrap();
                }
                client.truncate("/api", to).unwrap();
                model.resize(to as usize, 0);
                format!("truncate to {to}")
            }
            7 => {
                if let Some(writer) = &mut w {
                    writer.hsync().unwrap();
                }
                "hsync".into()
            }
            _ => {
                if let Some(writer) = w.take() {
                    writer.close().unwrap();
                }
                "close".into()
            }
        };
        // Another client sees every write after hflush, and after close.
        if let Some(writer) = &mut w {
            writer.hflush().unwrap();
        }
        let got = read_all(&other, "/api");
        if got != model {
            let at = got.iter().zip(&model).position(|(a, b)| a != b);
            panic!(
                "seed {seed}: step {step} ({what}) diverged at {at:?}: {} bytes read, {} expected",
                got.len(),
                model.len()
            );
        }
    }
    if let Some(writer) = w.take() {
        writer.close().unwrap();
    }
    assert!(read_all(&other, "/api") == model);
    assert_eq!(fsck(&c, "/api")["status"], "HEALTHY");
    // Compaction kept the garbage of thousands of rewrites near the file's own size.
    let stored: u64 = fsck_blocks(&c, "/api")
        .iter()
        .map(|(_, b)| b["length"].as_u64().unwrap())
        .sum();
    let len = model.len() as u64;
    assert!(
        stored <= 2 * len + 3 * BLOCK,
        "{stored} bytes stored for a file of {len}"
    );
}

/// The mounted `file` holding `old`, overwritten with ranges of `new` by the
/// OVERWRITE program until `kill` stops something; returns the ranges written and how many of
/// them were fsynced.
fn overwrite_until_killed(
    c: &mut MiniCluster,
    file: &Path,
    local: &Path,
    sync_every: u64,
    kill: impl FnOnce(&mut MiniCluster),
) -> (Vec<(usize, usize)>, usize) {
    let new = local.join("new");
    let log = local.join("log");
    let args = [
        file.to_string_lossy().into_owned(),
        new.to_string_lossy().into_owned(),
        log.to_string_lossy().into_owned(),
        seed().to_string(),
        sync_every.to_string(),
    ];
    let mut child = spawn_python(local, "overwrite.py", OVERWRITE, &args);
    let mut lines = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map_while(|l| l.ok());
    let mut synced = 0;
    for line in lines.by_ref() {
        if let Some(k) = line.strip_prefix("synced ") {
            synced = k.parse().unwrap();
            if synced >= 40 {
                break;
            }
        }
    }
    kill(c);
    for line in lines {
        if let Some(k) = line.strip_prefix("synced ") {
            synced = k.parse().unwrap();
        }
    }
    finish(child, "the overwriting program");
    let written = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| {
            let (off, len) = l.split_once(' ').unwrap();
            (off.parse().unwrap(), len.parse().unwrap())
        })
        .collect();
    (written, synced)
}

/// Every byte is old or new, and every byte of a fsynced write is new.
fn check_old_or_new(got: &[u8], old: &[u8], new: &[u8], written: &[(usize, usize)], synced: usize) {
    assert_eq!(got.len(), old.len(), "overwrites do not change the length");
    let mut must_be_new = vec![false; old.len()];
    for &(off, len) in &written[..synced] {
        must_be_new[off..off + len].fill(true);
    }
    for i in 0..got.len() {
        assert!(
            got[i] == new[i] || (got[i] == old[i] && !must_be_new[i]),
            "byte {i} is {} (old {}, new {}, fsynced: {})",
            got[i],
            old[i],
            new[i],
            must_be_new[i]
        );
    }
}

fn file_of(c: &MiniCluster, local: &Path, len: usize) -> (Vec<u8>, Vec<u8>) {
    let (old, new) = (data(len, 1), data(len, 2));
    std::fs::write(local.join("new"), &new).unwrap();
    let mut w = c
        .client()
        .unwrap()
        .create("/f", Default::default())
        .unwrap();
    w.write_all(&old).unwrap();
    w.close().unwrap();
    (old, new)
}

#[test]
fn overwrites_survive_the_writer_killed_mid_write() {
    let mut c = small_blocks(3);
    let local = tempfile::tempdir().unwrap();
    let (old, new) = file_of(&c, local.path(), 10 * BLOCK as usize + 1234);
    let Some(mut m) = mount(&c) else { return };
    let (written, synced) = overwrite_until_killed(&mut c, &m.p("f"), local.path(), 4, |_| {
        let _ = m.child.kill();
        let _ = m.child.wait();
    });
    drop(m);
    // The killed mount's lease is recovered: the file closes at what its replicas acknowledged.
    eventually(Duration::from_secs(30), "the file to be closed", || {
        let out = dfs_ok(&c, &["admin", "recover-lease", "/f"]);
        out.contains("file is closed").then_some(())
    });
    let got = read_all(&c.client().unwrap(), "/f");
    check_old_or_new(&got, &old, &new, &written, synced);
    assert_eq!(fsck(&c, "/f")["status"], "HEALTHY");
}

#[test]
fn fsynced_overwrites_survive_the_namenode_killed() {
    let mut c = small_blocks(3);
    let local = tempfile::tempdir().unwrap();
    let (old, new) = file_of(&c, local.path(), 10 * BLOCK as usize + 1234);
    let Some(m) = mount(&c) else { return };
    let (written, synced) =
        overwrite_until_killed(&mut c, &m.p("f"), local.path(), 1, |c| c.kill_namenode());
    c.restart_namenode().unwrap();
    c.wait_for_safe_mode_off(Duration::from_secs(30)).unwrap();
    eventually(Duration::from_secs(30), "the file to be closed", || {
        let out = dfs_ok(&c, &["admin", "recover-lease", "/f"]);
        out.contains("file is closed").then_some(())
    });
    let got = read_all(&c.client().unwrap(), "/f");
    check_old_or_new(&got, &old, &new, &written, synced);
    drop(m);
}

/// SQLite in the mount: `sqlite.py DB` runs 100 transactions of 100 inserts with updates and
/// deletes among them (printing `tx N` after each), then checks the database; `sqlite.py DB
/// check` only checks it. A check prints the integrity check and the row counts.
const SQLITE: &str = r#"
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
if sys.argv[2:] != ['check']:
    db.execute('create table t (id integer primary key, v text, n integer)')
    for tx in range(100):
        with db:
            db.executemany('insert into t (v, n) values (?, ?)',
                           [('row %d of %d' % (i, tx) + 'x' * (i % 300), i) for i in range(100)])
            db.execute('update t set n = -1 where id %% 97 = %d' % (tx % 97))
            if tx % 10 == 9:
                db.execute('delete from t where id %% 13 = 0 and id < %d' % (tx * 100))
        print('tx', tx, flush=True)
    db.close()
    db = sqlite3.connect(sys.argv[1])
(ok,) = db.execute('pragma integrity_check').fetchone()
(rows,) = db.execute('select count(*) from t').fetchone()
(marked,) = db.execute('select count(*) from t where n = -1').fetchone()
print(ok, rows, marked)
"#;

fn sqlite_check(local: &Path, db: &Path, when: &str) -> String {
    let args = [db.to_string_lossy().into_owned(), "check".into()];
    let out = finish(
        spawn_python(local, "sqlite.py", SQLITE, &args),
        &format!("the SQLite check {when}"),
    );
    out.trim().to_string()
}

#[test]
fn sqlite_keeps_a_sound_database_through_a_remount_and_a_datanode_killed() {
    let mut c = cluster().datanodes(4).replication(3).start().unwrap();
    let local = tempfile::tempdir().unwrap();
    let Some(m) = mount(&c) else { return };
    let db = m.p("test.db").to_string_lossy().into_owned();
    let mut child = spawn_python(local.path(), "sqlite.py", SQLITE, std::slice::from_ref(&db));
    let mut lines = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map_while(|l| l.ok());
    wait_line(&mut lines, |l| l == "tx 40");
    c.kill_datanode(1);
    let out: Vec<String> = lines.collect();
    finish(child, "the SQLite workload");
    // 10,000 rows, less the multiples of 13 below 9,900 that the last delete reached.
    let want_rows = 10_000 - (1..9900).filter(|i| i % 13 == 0).count();
    let summary = out.last().cloned().unwrap_or_default();
    let fields: Vec<&str> = summary.split(' ').collect();
    assert_eq!(fields[..2], ["ok", &want_rows.to_string()], "{out:?}");
    assert_eq!(
        sqlite_check(local.path(), &m.p("test.db"), "after closing"),
        summary
    );
    drop(m);
    let Some(m) = mount(&c) else { return };
    let again = sqlite_check(local.path(), &m.p("test.db"), "after a remount");
    assert_eq!(again, summary, "after an unmount and a remount");
}
