//! Shared helpers for the end-to-end tests: a MiniCluster on the real `dfs` binary, data
//! generation, and running `dfs` commands.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use dfs_cluster::minicluster::{MiniCluster, MiniClusterBuilder};

pub mod mount;

pub fn cluster() -> MiniClusterBuilder {
    MiniCluster::builder(env!("CARGO_BIN_EXE_dfs"))
}

/// Deterministic pseudo-random bytes (xorshift), different for each seed.
pub fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 24) as u8
        })
        .collect()
}

/// Runs `dfs ARGS` against the cluster.
pub fn dfs(c: &MiniCluster, args: &[&str]) -> Output {
    c.command().args(args).output().expect("run dfs")
}

/// Runs `dfs ARGS` and returns stdout, failing the test with stderr if it did not succeed.
pub fn dfs_ok(c: &MiniCluster, args: &[&str]) -> String {
    let out = dfs(c, args);
    assert!(
        out.status.success(),
        "dfs {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// Runs `dfs ARGS`, expects failure, and returns stderr.
pub fn dfs_err(c: &MiniCluster, args: &[&str]) -> String {
    let out = dfs(c, args);
    assert!(
        !out.status.success(),
        "dfs {args:?} succeeded but should have failed: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stderr).expect("utf-8 output")
}

/// Polls `f` until it returns `Some` or `timeout` passes.
pub fn eventually<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `dfs fsck PATH --json` as JSON (whatever its exit code).
pub fn fsck(c: &MiniCluster, path: &str) -> serde_json::Value {
    let out = dfs(c, &["fsck", path, "--json"]);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "fsck output is not JSON ({e}): {} {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// The whole content of a dfs file.
pub fn read_all(client: &dfs_client::blocking::DfsClient, path: &str) -> Vec<u8> {
    use std::io::Read;
    let mut back = Vec::new();
    client
        .open(path)
        .unwrap_or_else(|e| panic!("open {path}: {e}"))
        .read_to_end(&mut back)
        .unwrap_or_else(|e| panic!("read {path}: {e}"));
    back
}

/// Live, non-corrupt replica counts of every block of `path`, from fsck.
pub fn live_replicas(c: &MiniCluster, path: &str) -> Vec<u64> {
    let r = fsck(c, path);
    r["details"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|f| f["blocks"].as_array().unwrap().clone())
        .map(|b| b["live_replicas"].as_u64().unwrap())
        .collect()
}

pub fn wait_fully_replicated(c: &MiniCluster, path: &str, r: u64, timeout: Duration) {
    eventually(
        timeout,
        &format!("every block of {path} to have {r} live replicas"),
        || {
            let live = live_replicas(c, path);
            (!live.is_empty() && live.iter().all(|&n| n == r)).then_some(())
        },
    );
}

/// `dfs admin report --json`.
pub fn admin_report(c: &MiniCluster) -> serde_json::Value {
    serde_json::from_str(&dfs_ok(c, &["admin", "report", "--json"])).expect("report is JSON")
}

/// DataNode `i`'s entry in the admin report.
pub fn datanode_report(c: &MiniCluster, i: usize) -> serde_json::Value {
    admin_report(c)["datanodes"]
        .as_array()
        .expect("datanodes")
        .iter()
        .find(|d| d["addr"] == c.datanode_addr(i))
        .cloned()
        .unwrap_or_else(|| panic!("DataNode {i} is not in the report"))
}

/// The fsck entries of the blocks of the file at `path`, each with its offset in the file.
pub fn fsck_blocks(c: &MiniCluster, path: &str) -> Vec<(u64, serde_json::Value)> {
    let r = fsck(c, path);
    let mut offset = 0;
    r["details"][0]["blocks"]
        .as_array()
        .unwrap_or_else(|| panic!("fsck of {path} has no blocks: {r}"))
        .iter()
        .map(|b| {
            let at = offset;
            offset += b["length"].as_u64().unwrap();
            (at, b.clone())
        })
        .collect()
}

/// Addresses of the live replicas of an fsck block entry that the NameNode counts.
pub fn counted_replicas(block: &serde_json::Value) -> BTreeSet<String> {
    block["replicas"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["alive"] == true && r["corrupt"] == false && r["decommissioning"] == false)
        .map(|r| r["datanode"].as_str().unwrap().to_string())
        .collect()
}

/// DataNodes (by address) with an intact finalized replica of `block_id` on disk: its block file
/// holds exactly `expected` and its checksum file lies next to it. Paths under `skip` (a failed
/// volume) do not count.
pub fn intact_replicas(
    c: &MiniCluster,
    block_id: u64,
    expected: &[u8],
    skip: &[PathBuf],
) -> BTreeSet<String> {
    let meta_prefix = format!("blk_{block_id}_");
    c.replica_files(block_id)
        .into_iter()
        .filter(|(_, p)| p.components().any(|x| x.as_os_str() == "finalized"))
        .filter(|(_, p)| !skip.iter().any(|s| p.starts_with(s)))
        .filter(|(_, p)| std::fs::read(p).is_ok_and(|b| b == expected))
        .filter(|(_, p)| {
            std::fs::read_dir(p.parent().unwrap())
                .into_iter()
                .flatten()
                .flatten()
                .any(|e| {
                    let n = e.file_name().to_string_lossy().into_owned();
                    n.starts_with(&meta_prefix) && n.ends_with(".meta")
                })
        })
        .map(|(i, _)| c.datanode_addr(i).to_string())
        .collect()
}

/// Waits until every block of the file at `path` (whose content is `content`) has `r` replicas
/// that the NameNode counts, none it calls corrupt, and each counted one intact on disk outside
/// `skip`. So it cannot pass before the NameNode has heard of every loss: until then it still
/// counts a replica that is damaged or gone.
pub fn wait_healed(
    c: &MiniCluster,
    path: &str,
    content: &[u8],
    r: usize,
    skip: &[PathBuf],
    timeout: Duration,
) {
    eventually(
        timeout,
        &format!("every block of {path} to have {r} intact replicas the NameNode counts"),
        || {
            let blocks = fsck_blocks(c, path);
            let healed = blocks.iter().all(|(offset, b)| {
                let counted = counted_replicas(b);
                let len = b["length"].as_u64().unwrap();
                let expected = &content[*offset as usize..(offset + len) as usize];
                let no_corrupt = b["replicas"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|x| x["corrupt"] == false);
                counted.len() == r
                    && no_corrupt
                    && counted.is_subset(&intact_replicas(
                        c,
                        b["block_id"].as_u64().unwrap(),
                        expected,
                        skip,
                    ))
            });
            (!blocks.is_empty() && healed).then_some(())
        },
    );
}

/// A tmpfs mounted on a directory while the guard lives: a real, small disk to fill up or make
/// read-only. Declare it after the cluster, so it is dropped first: the unmount is lazy, so a
/// DataNode still holding files there cannot keep it mounted, also when the test fails.
pub struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `bytes` on `dir` (created if missing). `None` when this process may not
    /// mount file systems (not root): the caller skips its test, saying so.
    pub fn mount(dir: &Path, bytes: u64) -> Option<Tmpfs> {
        // SAFETY: geteuid has no preconditions and cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped: mounting a tmpfs on {} needs root", dir.display());
            return None;
        }
        std::fs::create_dir_all(dir).unwrap();
        let size = format!("size={bytes}");
        run_ok("mount", &["-t", "tmpfs", "-o", &size, "tmpfs"], dir);
        Some(Tmpfs {
            dir: dir.to_path_buf(),
        })
    }

    /// Remounts it read-only, as a failing disk often ends up.
    pub fn remount_read_only(&self) {
        run_ok("mount", &["-o", "remount,ro"], &self.dir);
    }

    /// Fills it to the last byte with a file of its own, as another program on the disk would.
    pub fn fill(&self) {
        use std::io::Write;
        let mut f = std::fs::File::create(self.dir.join("filler")).unwrap();
        let zeros = vec![0u8; 64 * 1024];
        while let Ok(n) = f.write(&zeros) {
            if n == 0 {
                break;
            }
        }
    }
}

impl Tmpfs {
    /// Frees what [`Tmpfs::fill`] took.
    pub fn empty(&self) {
        let _ = std::fs::remove_file(self.dir.join("filler"));
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.dir)
            .status();
    }
}

fn run_ok(cmd: &str, args: &[&str], dir: &Path) {
    let out = std::process::Command::new(cmd)
        .args(args)
        .arg(dir)
        .output()
        .unwrap_or_else(|e| panic!("run {cmd}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?} {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `GET path` from the HTTP server at `addr`: the status code and the body.
pub fn http_get(addr: &str, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let (head, body) = resp.split_once("\r\n\r\n").unwrap_or((&resp, ""));
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {resp}"));
    (code, body.to_string())
}

/// The NameNode's HTTP status document (which must answer 200).
pub fn status(c: &MiniCluster) -> serde_json::Value {
    let (code, body) = http_get(c.http_addr(), "/status");
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

/// `dfs up` with its NameNode on ephemeral ports (it prints them); arguments follow.
pub fn dfs_up() -> std::process::Command {
    let mut up = std::process::Command::new(env!("CARGO_BIN_EXE_dfs"));
    up.args([
        "-D",
        "dfs.namenode.rpc-address=127.0.0.1:0",
        "-D",
        "dfs.namenode.http-address=127.0.0.1:0",
    ]);
    up
}
