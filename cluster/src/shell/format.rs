//! How shell commands print: `ls` lines, `stat`, JSON documents, fsck reports, sizes and dates.

use anyhow::Result;
use dfs_client::{FileKind, FileStatus, FsckReport};
use serde_json::json;

use dfs_proto::display::{date, mode_string, size};

use super::outln;

/// One `ls` line: type and mode (`+` for an ACL), link count, replication, owner, group, size,
/// mtime, path (`-> target` for a symbolic link).
pub(super) fn ls_line(p: &str, s: &FileStatus, human: bool) -> String {
    let target = if s.is_symlink() {
        format!(" -> {}", String::from_utf8_lossy(&s.symlink))
    } else {
        String::new()
    };
    format!(
        "{}{}{} {:>3} {:>3} {:<10} {:<10} {:>12} {} {p}{target}",
        s.kind.letter(),
        mode_string(s.permission),
        if s.has_acl { '+' } else { ' ' },
        s.nlink,
        if s.is_file() {
            s.replication.to_string()
        } else {
            "-".to_string()
        },
        s.owner,
        s.group,
        size(s.length, human),
        date(s.mtime_ms),
    )
}

/// What `stat` and `--json` call each kind.
fn kind_name(s: &FileStatus) -> &'static str {
    match s.kind {
        FileKind::File => "file",
        FileKind::Directory => "directory",
        FileKind::Symlink => "symlink",
        FileKind::Fifo => "fifo",
        FileKind::Socket => "socket",
        FileKind::CharDevice => "char_device",
        FileKind::BlockDevice => "block_device",
    }
}

pub(super) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

pub(super) fn status_json(path: &str, s: &FileStatus) -> serde_json::Value {
    json!({
        "path": path,
        "type": kind_name(s),
        "length": s.length,
        "replication": s.replication,
        "block_size": s.block_size,
        "permission": format!("{:o}", s.permission),
        "owner": s.owner,
        "group": s.group,
        "mtime_ms": s.mtime_ms,
        "atime_ms": s.atime_ms,
        "inode_id": s.inode_id,
        "children": s.children,
        "under_construction": s.under_construction,
        "nlink": s.nlink,
        "ctime_ms": s.ctime_ms,
        "symlink": s.is_symlink().then(|| String::from_utf8_lossy(&s.symlink).into_owned()),
        "rdev": s.rdev,
        "acl": s.has_acl,
    })
}

pub(super) fn print_stat(path: &str, s: &FileStatus) -> Result<()> {
    outln!("  Path: {path}");
    let kind = match s.kind {
        FileKind::File => "regular file".to_string(),
        FileKind::Symlink => format!("symbolic link -> {}", String::from_utf8_lossy(&s.symlink)),
        FileKind::CharDevice | FileKind::BlockDevice => format!(
            "{} {}, {}",
            kind_name(s).replace('_', " "),
            (s.rdev >> 8) & 0xfff,
            (s.rdev & 0xff) | ((s.rdev >> 12) & 0xfff00)
        ),
        _ => kind_name(s).to_string(),
    };
    outln!("  Type: {kind}  Links: {}", s.nlink);
    outln!(
        "  Size: {}  Replication: {}  Block size: {}",
        s.length,
        s.replication,
        s.block_size
    );
    outln!(
        "Access: ({:04o}/{}{}{})  Owner: {}  Group: {}",
        s.permission,
        s.kind.letter(),
        mode_string(s.permission),
        if s.has_acl { "+" } else { "" },
        s.owner,
        s.group
    );
    outln!(
        "Modify: {} UTC  Access: {} UTC  Change: {} UTC",
        date(s.mtime_ms),
        date(s.atime_ms),
        date(s.ctime_ms)
    );
    outln!(
        " Inode: {}{}",
        s.inode_id,
        if s.under_construction {
            "  (being written)"
        } else {
            ""
        }
    );
    Ok(())
}

pub(super) fn fsck_json(path: &str, r: &FsckReport) -> serde_json::Value {
    json!({
        "path": path,
        "status": if r.is_healthy() { "HEALTHY" } else { "CORRUPT" },
        "files": r.files.len(),
        "directories": r.directories,
        "total_blocks": r.total_blocks(),
        "missing_blocks": r.missing_blocks(),
        "corrupt_blocks": r.corrupt_blocks(),
        "corrupt_replicas": r.corrupt_replicas(),
        "under_replicated_blocks": r.under_replicated_blocks(),
        "details": r.files.iter().map(|f| json!({
            "path": f.path, "length": f.length, "replication": f.replication,
            "under_construction": f.under_construction,
            "blocks": f.blocks.iter().map(|b| json!({
                "block_id": b.block_id, "generation_stamp": b.generation_stamp, "length": b.length,
                "expected_replication": b.expected_replication, "live_replicas": b.good_replicas(),
                "replicas": b.replicas.iter().map(|x| json!({
                    "datanode": x.datanode, "alive": x.alive, "corrupt": x.corrupt, "decommissioning": x.decommissioning,
                })).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

pub(super) fn print_fsck(path: &str, r: &FsckReport) -> Result<()> {
    outln!("fsck of {path}");
    for f in &r.files {
        let mut problems = Vec::new();
        for b in &f.blocks {
            let state = if b.is_missing() {
                "MISSING"
            } else if b.is_corrupt() {
                "CORRUPT"
            } else if b.is_under_replicated() {
                "UNDER-REPLICATED"
            } else {
                "ok"
            };
            let replicas: Vec<String> = b
                .replicas
                .iter()
                .map(|x| {
                    let mut tag = x.datanode.clone();
                    if !x.alive {
                        tag.push_str("(dead)");
                    }
                    if x.corrupt {
                        tag.push_str("(corrupt)");
                    }
                    if x.decommissioning {
                        tag.push_str("(decommissioning)");
                    }
                    tag
                })
                .collect();
            problems.push(format!(
                "  blk_{}_{} len={} live={}/{} {state} [{}]",
                b.block_id,
                b.generation_stamp,
                b.length,
                b.good_replicas(),
                b.expected_replication,
                replicas.join(", ")
            ));
        }
        outln!(
            "{} {} bytes, replication {}, {} block(s){}",
            f.path,
            f.length,
            f.replication,
            f.blocks.len(),
            if f.under_construction {
                " (open for write)"
            } else {
                ""
            }
        );
        for p in problems {
            outln!("{p}");
        }
    }
    outln!();
    outln!("Total files:\t{}", r.files.len());
    outln!("Total dirs:\t{}", r.directories);
    outln!("Total blocks:\t{}", r.total_blocks());
    outln!("Under-replicated blocks:\t{}", r.under_replicated_blocks());
    outln!("Corrupt blocks:\t{}", r.corrupt_blocks());
    outln!("Corrupt replicas:\t{}", r.corrupt_replicas());
    outln!("Missing blocks:\t{}", r.missing_blocks());
    outln!();
    outln!(
        "The filesystem under path '{path}' is {}",
        if r.is_healthy() { "HEALTHY" } else { "CORRUPT" }
    );
    Ok(())
}
