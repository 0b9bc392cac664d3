//! What the soak requires once faults stop: every file holds what the model says, fsck is
//! HEALTHY with no file open for write, every block has its replication in intact replicas, and
//! no replica file on any volume is left over.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use dfs_cluster::MiniCluster;

use crate::workload::{read_back, under, Expect};

/// What one pass of the checks found.
#[derive(Default)]
pub struct Findings {
    pub divergences: Vec<String>,
    pub files_checked: usize,
    pub bytes_verified: u64,
}

impl Findings {
    fn diverged(&mut self, what: String) {
        self.divergences.push(what);
    }
}

/// Runs every check once.
pub fn check(c: &MiniCluster, model: &BTreeMap<String, Expect>) -> Findings {
    let mut f = Findings::default();
    let client = match c.client() {
        Ok(client) => client,
        Err(e) => {
            f.diverged(format!("no client: {e}"));
            return f;
        }
    };
    let report = match client.fsck("/") {
        Ok(r) => r,
        Err(e) => {
            f.diverged(format!("fsck: {e}"));
            return f;
        }
    };
    if !report.is_healthy() {
        f.diverged(format!(
            "fsck is not HEALTHY: {} missing and {} corrupt blocks",
            report.missing_blocks(),
            report.corrupt_blocks()
        ));
    }
    check_namenode(&report, &mut f);
    if !f.divergences.is_empty() {
        // The NameNode has not caught up: reading every file would only take time.
        return f;
    }
    // Every file's content, for the model and for the replicas on disk.
    let mut contents = BTreeMap::new();
    for file in &report.files {
        match read_back(&client, &file.path) {
            Ok(Some(bytes)) => {
                contents.insert(file.path.clone(), bytes);
            }
            Ok(None) => f.diverged(format!("{} is in fsck but does not exist", file.path)),
            Err(e) => f.diverged(format!("{} does not read: {e}", file.path)),
        }
    }
    for (path, expect) in model {
        let found = contents.get(path).map(Vec::as_slice);
        if found.is_none() && report.files.iter().any(|x| &x.path == path) {
            continue; // Unreadable: said above.
        }
        match expect.diverges(found) {
            Some(why) => f.diverged(format!("{path}: {why}")),
            None => {
                f.files_checked += 1;
                f.bytes_verified += found.map_or(0, |b| b.len() as u64);
            }
        }
    }
    check_replicas(c, &report, &contents, &mut f);
    f
}

/// What the NameNode says: no file open for write, every block at its replication with every
/// replica it knows live and intact.
fn check_namenode(report: &dfs_client::FsckReport, f: &mut Findings) {
    for file in &report.files {
        if file.under_construction {
            f.diverged(format!(
                "{} is still open for write (a lease is left)",
                file.path
            ));
        }
        for b in &file.blocks {
            let counted = b
                .replicas
                .iter()
                .filter(|r| r.alive && !r.corrupt && !r.decommissioning)
                .count();
            if counted != b.expected_replication as usize || counted != b.replicas.len() {
                f.diverged(format!(
                    "{} blk_{}: {counted} of {} replicas counted, {} known",
                    file.path,
                    b.block_id,
                    b.expected_replication,
                    b.replicas.len()
                ));
            }
        }
    }
}

/// Each replica the NameNode counts intact on disk, and nothing else on any volume.
fn check_replicas(
    c: &MiniCluster,
    report: &dfs_client::FsckReport,
    contents: &BTreeMap<String, Vec<u8>>,
    f: &mut Findings,
) {
    let index: BTreeMap<String, usize> = (0..c.num_datanodes())
        .map(|i| (c.datanode_addr(i).to_string(), i))
        .collect();
    let on_disk: Vec<Vec<PathBuf>> = (0..c.num_datanodes())
        .map(|dn| replica_files(c, dn))
        .collect();
    // (DataNode, block id) -> generation stamp of every replica that should be on disk.
    let mut wanted: BTreeMap<(usize, u64), u64> = BTreeMap::new();
    for file in &report.files {
        let Some(content) = contents.get(&file.path) else {
            continue;
        };
        let mut offset = 0usize;
        for b in &file.blocks {
            let end = offset + b.length as usize;
            let Some(expected) = content.get(offset..end) else {
                f.diverged(format!("{}: blocks longer than the file", file.path));
                break;
            };
            offset = end;
            for r in &b.replicas {
                let Some(&dn) = index.get(&r.datanode) else {
                    f.diverged(format!(
                        "blk_{} on unknown DataNode {}",
                        b.block_id, r.datanode
                    ));
                    continue;
                };
                wanted.insert((dn, b.block_id), b.generation_stamp);
                if !intact(&on_disk[dn], b.block_id, b.generation_stamp, expected) {
                    f.diverged(format!(
                        "{} blk_{} on {}: the replica on disk is not intact",
                        file.path, b.block_id, r.datanode
                    ));
                }
            }
        }
    }
    for (dn, files) in on_disk.iter().enumerate() {
        for p in files {
            let Some((id, gs)) = parse(p) else { continue };
            let ok = under(p, "finalized")
                && wanted
                    .get(&(dn, id))
                    .is_some_and(|&want| gs.is_none_or(|gs| gs == want));
            if !ok {
                f.diverged(format!("left over on DataNode {dn}: {}", p.display()));
            }
        }
    }
}

/// Whether a DataNode's `files` hold a finalized `blk_<id>` with exactly `expected` and its
/// checksum file of generation stamp `gs` beside it.
fn intact(files: &[PathBuf], id: u64, gs: u64, expected: &[u8]) -> bool {
    files.iter().any(|p| {
        parse(p) == Some((id, None))
            && under(p, "finalized")
            && std::fs::read(p).is_ok_and(|b| b == expected)
            && p.with_file_name(format!("blk_{id}_{gs}.meta")).exists()
    })
}

/// Every `blk_…` file on DataNode `dn`'s volumes.
pub fn replica_files(c: &MiniCluster, dn: usize) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for v in c.datanode_volumes(dn) {
        walk(&v, &mut out);
    }
    out
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, out);
        } else if p
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("blk_"))
        {
            out.push(p);
        }
    }
}

/// `blk_<id>` -> (id, None); `blk_<id>_<gs>.meta` -> (id, Some(gs)).
fn parse(p: &Path) -> Option<(u64, Option<u64>)> {
    let name = p.file_name()?.to_str()?.strip_prefix("blk_")?;
    match name.strip_suffix(".meta") {
        Some(meta) => {
            let (id, gs) = meta.split_once('_')?;
            Some((id.parse().ok()?, Some(gs.parse().ok()?)))
        }
        None => Some((name.parse().ok()?, None)),
    }
}
