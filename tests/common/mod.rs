//! Shared helpers for the end-to-end tests: a MiniCluster on the real `dfs` binary, data
//! generation, and running `dfs` commands.
#![allow(dead_code)]

use std::process::Output;
use std::time::{Duration, Instant};

use dfs_cluster::minicluster::{MiniCluster, MiniClusterBuilder};

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
