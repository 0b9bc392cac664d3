//! Checkpoint images: the whole namespace at one txid.
//!
//! Layout of `current/fsimage_<txid, 20 digits>`:
//! the 8-byte magic `DFSIMG01`; one framed record (see [`crate::record`]) holding an
//! `ImageHeader`; `num_inodes` framed records holding `ImageInode`s: the root, every inode after
//! the directory of its first entry (breadth first from the root), then the orphans; then a 4-byte big-endian CRC32C of every preceding byte of the
//! file; then end of file. Anything else (bad magic, a bad record, a missing or extra byte, a
//! wrong trailer, an inconsistent tree) is refused: a checkpoint is never half-loaded.
//!
//! The image is encoded in memory under the namespace lock (a consistent snapshot) and written
//! outside it to `fsimage_<txid>.tmp`, fsynced, renamed into place, and the directory fsynced.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use dfs_proto::pb;
use prost::Message;

use crate::convert;
use crate::editlog::sync_dir;
use crate::error::{Error, Result};
use crate::namespace::{
    Counters, DirMeta, Extent, FileMeta, ImageEntry, Inode, InodeKind, Namespace, SpecialKind,
    XAttr,
};
use crate::op::Op;
use crate::record::{self, Next};
use crate::types::{Block, BlockId, FileType, InodeId};

/// First bytes of every image.
pub const IMAGE_MAGIC: &[u8; 8] = b"DFSIMG01";

const IMAGE_PREFIX: &str = "fsimage_";

pub fn image_name(txid: u64) -> String {
    format!("{IMAGE_PREFIX}{txid:020}")
}

/// A decoded image.
#[derive(Debug)]
pub struct Image {
    pub txid: u64,
    pub cluster_id: String,
    pub ns: Namespace,
}

impl From<&ImageEntry> for pb::ImageInode {
    fn from(e: &ImageEntry) -> Self {
        let i = &e.inode;
        let mut out = pb::ImageInode {
            inode_id: i.id.0,
            parent_id: i.parent.0,
            name: i.name.clone(),
            file_type: pb::FileType::from(i.file_type()) as i32,
            permission: i.permission,
            owner: i.owner.clone(),
            group: i.group.clone(),
            mtime_ms: i.mtime_ms,
            atime_ms: i.atime_ms,
            ctime_ms: i.ctime_ms,
            xattrs: i
                .xattrs
                .iter()
                .map(|x| pb::XAttr {
                    name: x.name.clone(),
                    value: x.value.clone(),
                })
                .collect(),
            acl: i.acl.entries.iter().map(pb::AclEntry::from).collect(),
            links: e
                .links
                .iter()
                .map(|(p, n)| pb::ImageLink {
                    parent_id: p.0,
                    name: n.clone(),
                })
                .collect(),
            orphan_holders: e.orphan_holders.clone(),
            ..Default::default()
        };
        match &i.kind {
            InodeKind::File(f) => {
                out.replication = f.replication;
                out.block_size = f.block_size;
                out.blocks = f.blocks.iter().map(|b| pb::BlockRecord::from(*b)).collect();
                out.lease_holder = f.client.clone().unwrap_or_default();
                if !f.is_sequential() {
                    out.has_extents = true;
                    out.length = f.length();
                    out.extents = f.extents().iter().map(pb::ExtentRecord::from).collect();
                }
                out.log_blocks = f.log_blocks().iter().map(|b| b.0).collect();
            }
            InodeKind::Symlink(t) => out.symlink = t.clone(),
            InodeKind::Special { rdev, .. } => out.rdev = *rdev,
            InodeKind::Dir(_) => {}
        }
        out
    }
}

impl TryFrom<pb::ImageInode> for ImageEntry {
    type Error = Error;
    fn try_from(i: pb::ImageInode) -> Result<ImageEntry> {
        let id = i.inode_id;
        let bad = move |m: String| Error::Corrupt(format!("image: inode {id}: {m}"));
        let file_type = convert::file_type(i.file_type).map_err(bad)?;
        let kind = match (file_type, SpecialKind::of(file_type)) {
            (FileType::Directory, _) => InodeKind::Dir(DirMeta::default()),
            (FileType::Symlink, _) => InodeKind::Symlink(i.symlink.clone()),
            (_, Some(kind)) => InodeKind::Special { kind, rdev: i.rdev },
            _ => {
                let client = (!i.lease_holder.is_empty()).then(|| i.lease_holder.clone());
                let blocks = i.blocks.iter().map(Block::from).collect();
                let f = FileMeta::sequential(i.replication, i.block_size, blocks, client);
                let f = if i.has_extents {
                    let extents = i.extents.iter().map(Extent::from).collect();
                    f.with_extents(extents, i.length)
                        .map_err(|e| bad(e.to_string()))?
                } else {
                    f
                };
                let logs = i.log_blocks.iter().map(|b| BlockId(*b)).collect();
                let f = f.with_log_blocks(logs).map_err(|e| bad(e.to_string()))?;
                InodeKind::File(f)
            }
        };
        let acl = convert::acl(&i.acl).map_err(bad)?;
        let mut inode = Inode::new(
            InodeId(i.inode_id),
            i.permission,
            &i.owner,
            &i.group,
            i.mtime_ms,
            kind,
        );
        inode.parent = InodeId(i.parent_id);
        inode.name = i.name;
        inode.atime_ms = i.atime_ms;
        // Images of earlier versions kept no ctime: the mtime is the best there is.
        inode.ctime_ms = if i.ctime_ms == 0 {
            i.mtime_ms
        } else {
            i.ctime_ms
        };
        inode.xattrs = i
            .xattrs
            .into_iter()
            .map(|x| XAttr {
                name: x.name,
                value: x.value,
            })
            .collect();
        inode.xattrs.sort_by(|a, b| a.name.cmp(&b.name));
        inode.acl = acl;
        Ok(ImageEntry {
            inode,
            links: i
                .links
                .into_iter()
                .map(|l| (InodeId(l.parent_id), l.name))
                .collect(),
            orphan_holders: i.orphan_holders,
        })
    }
}

/// Serializes the namespace as of `txid`.
pub fn encode(ns: &Namespace, cluster_id: &str, txid: u64) -> Vec<u8> {
    let inodes = ns.image_entries();
    let c = ns.counters();
    let header = pb::ImageHeader {
        last_txid: txid,
        next_inode_id: c.next_inode_id,
        next_block_id: c.next_block_id,
        generation_stamp: c.gen_stamp,
        num_inodes: inodes.len() as u64,
        cluster_id: cluster_id.to_string(),
    };
    let mut out = Vec::with_capacity(64 + inodes.len() * 64);
    out.extend_from_slice(IMAGE_MAGIC);
    record::encode(&header.encode_to_vec(), &mut out);
    for e in &inodes {
        record::encode(&pb::ImageInode::from(e).encode_to_vec(), &mut out);
    }
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

/// Parses and validates a whole image.
pub fn decode(bytes: &[u8], what: &str) -> Result<Image> {
    let bad = |m: String| Error::Corrupt(format!("{what}: {m}"));
    if bytes.len() < IMAGE_MAGIC.len() + 4 {
        return Err(bad("too short to be an image".into()));
    }
    if &bytes[..8] != IMAGE_MAGIC {
        return Err(bad("bad magic".into()));
    }
    let (body, trailer) = bytes.split_at(bytes.len() - 4);
    let stored = u32::from_be_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
    if crc32c::crc32c(body) != stored {
        return Err(bad(
            "whole-file checksum mismatch (truncated or damaged)".into()
        ));
    }
    let mut r = &body[8..];
    let mut next = |n: &str| -> Result<Vec<u8>> {
        match record::read_next(&mut r).map_err(|e| bad(format!("{n}: {e}")))? {
            Next::Record(p) => Ok(p),
            Next::Eof => Err(bad(format!("ends before the {n}"))),
            Next::Bad(why) => Err(bad(format!("{n}: {why}"))),
        }
    };
    let header = pb::ImageHeader::decode(next("header")?.as_slice())
        .map_err(|e| bad(format!("header: {e}")))?;
    let mut inodes = Vec::with_capacity(header.num_inodes.min(1 << 20) as usize);
    for k in 0..header.num_inodes {
        let p = next("inode")?;
        let i =
            pb::ImageInode::decode(p.as_slice()).map_err(|e| bad(format!("inode #{k}: {e}")))?;
        inodes.push(ImageEntry::try_from(i)?);
    }
    if !r.is_empty() {
        return Err(bad(format!(
            "{} unexpected bytes after the last inode",
            r.len()
        )));
    }
    let ns = Namespace::from_image(
        inodes,
        Counters {
            next_inode_id: header.next_inode_id,
            next_block_id: header.next_block_id,
            gen_stamp: header.generation_stamp,
        },
    )
    .map_err(|e| bad(e.to_string()))?;
    Ok(Image {
        txid: header.last_txid,
        cluster_id: header.cluster_id,
        ns,
    })
}

/// Every image in `dir` as (txid, path), newest first. Stale `.tmp` files are removed.
pub fn list_images(dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    let entries = fs::read_dir(dir).map_err(|e| Error::io(format!("list {}", dir.display()), e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(format!("list {}", dir.display()), e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(rest) = name.strip_prefix(IMAGE_PREFIX) else {
            continue;
        };
        if rest.ends_with(".tmp") {
            // A checkpoint interrupted before its rename: never valid.
            let _ = fs::remove_file(entry.path());
            continue;
        }
        if rest.len() == 20 && rest.bytes().all(|b| b.is_ascii_digit()) {
            if let Ok(txid) = rest.parse::<u64>() {
                out.push((txid, entry.path()));
            }
        }
    }
    out.sort_by_key(|i| std::cmp::Reverse(i.0));
    Ok(out)
}

/// Reads one image file.
pub fn read_image(path: &Path) -> Result<Image> {
    let bytes = fs::read(path).map_err(|e| Error::io(format!("read {}", path.display()), e))?;
    let img = decode(&bytes, &path.display().to_string())?;
    let named = path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix(IMAGE_PREFIX))
        .and_then(|t| t.parse::<u64>().ok());
    if named != Some(img.txid) {
        return Err(Error::Corrupt(format!(
            "{}: header says txid {} but the name does not",
            path.display(),
            img.txid
        )));
    }
    Ok(img)
}

/// Durably writes an encoded image for `txid`: tmp file, fsync, rename, fsync the directory.
pub fn write_image(dir: &Path, txid: u64, bytes: &[u8]) -> Result<PathBuf> {
    let final_path = dir.join(image_name(txid));
    let tmp = dir.join(format!("{}.tmp", image_name(txid)));
    let io = |e: std::io::Error| Error::io(format!("write {}", tmp.display()), e);
    let mut f: File = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(&tmp)
        .map_err(io)?;
    f.write_all(bytes).and_then(|_| f.sync_all()).map_err(io)?;
    drop(f);
    fs::rename(&tmp, &final_path)
        .map_err(|e| Error::io(format!("rename {} into place", tmp.display()), e))?;
    sync_dir(dir)?;
    Ok(final_path)
}

/// Replays the edit log on top of an image.
pub fn replay_onto(dir: &Path, img: &mut Image) -> Result<u64> {
    let ns = &mut img.ns;
    crate::editlog::replay(dir, img.txid, |_, op: Op| ns.apply(&op).map(|_| ()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::namespace::tests::{create, mkdir};

    fn sample() -> Namespace {
        let mut ns = Namespace::new("root", "supergroup", 5);
        mkdir(&mut ns, "/a");
        mkdir(&mut ns, "/a/b");
        create(&mut ns, "/a/b/f", false).unwrap();
        let b = Block {
            id: ns.next_block_id(),
            gs: ns.gen_stamp(),
            num_bytes: 77,
        };
        ns.apply(&Op::AddBlock {
            path: dfs_proto::path::DfsPath::parse("/a/b/f").unwrap(),
            previous: None,
            block: b,
            mtime_ms: 9,
            log: false,
        })
        .unwrap();
        create(&mut ns, "/g", false).unwrap();
        // A file being rewritten: a log block with one extent placed.
        let g = dfs_proto::path::DfsPath::parse("/g").unwrap();
        let log = Block {
            id: ns.next_block_id(),
            gs: ns.gen_stamp(),
            num_bytes: 0,
        };
        ns.apply(&Op::AddBlock {
            path: g.clone(),
            previous: None,
            block: log,
            mtime_ms: 9,
            log: true,
        })
        .unwrap();
        let extent = Extent {
            off: 100,
            len: 10,
            block: log.id,
            block_off: 0,
        };
        ns.apply(&Op::CommitExtents {
            path: g,
            block: Block {
                num_bytes: 10,
                ..log
            },
            extents: vec![extent],
            length: 200,
            mtime_ms: 10,
        })
        .unwrap();
        ns
    }

    #[test]
    fn round_trip_equals_live_namespace() {
        let ns = sample();
        let bytes = encode(&ns, "CID-x", 42);
        let img = decode(&bytes, "test").unwrap();
        assert_eq!(img.txid, 42);
        assert_eq!(img.cluster_id, "CID-x");
        assert_eq!(img.ns, ns);
    }

    #[test]
    fn any_flipped_byte_or_truncation_is_refused() {
        let bytes = encode(&sample(), "CID-x", 42);
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x10;
            assert!(
                matches!(decode(&b, "t"), Err(Error::Corrupt(_))),
                "flip at {i} accepted"
            );
        }
        for cut in [0, 7, 8, 20, bytes.len() - 4, bytes.len() - 1] {
            assert!(decode(&bytes[..cut], "t").is_err(), "cut at {cut} accepted");
        }
        let mut extra = bytes.clone();
        extra.push(0);
        assert!(decode(&extra, "t").is_err());
    }

    #[test]
    fn write_list_read() {
        let d = tempfile::tempdir().unwrap();
        let ns = sample();
        write_image(d.path(), 7, &encode(&ns, "c", 7)).unwrap();
        write_image(d.path(), 9, &encode(&ns, "c", 9)).unwrap();
        fs::write(d.path().join("fsimage_00000000000000000011.tmp"), b"junk").unwrap();
        let imgs = list_images(d.path()).unwrap();
        assert_eq!(imgs.iter().map(|i| i.0).collect::<Vec<_>>(), vec![9, 7]);
        assert!(!d.path().join("fsimage_00000000000000000011.tmp").exists());
        assert_eq!(read_image(&imgs[0].1).unwrap().ns, ns);
        // An image renamed to a different txid is refused.
        fs::rename(&imgs[1].1, d.path().join(image_name(8))).unwrap();
        assert!(read_image(&d.path().join(image_name(8))).is_err());
    }
}
