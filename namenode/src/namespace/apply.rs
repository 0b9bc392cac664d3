//! [`Namespace::apply`]: every mutation, deterministic so the edit log replays to the same tree.
//! Each op is checked completely before anything changes: a refused op leaves the namespace as
//! it was.

use dfs_proto::path::DfsPath;

use super::file::FileMeta;
use super::inode::{DirMeta, Inode, InodeKind, SpecialKind};
use super::{id_after, Applied, Namespace, MAX_LINKS};
use crate::error::{Error, Result};
use crate::op::{Op, Orphan};
use crate::types::{Block, FileType, InodeId};

impl Namespace {
    /// Applies one logged operation.
    pub fn apply(&mut self, op: &Op) -> Result<Applied> {
        let mut applied = Applied::default();
        match op {
            Op::Mkdir {
                inode_id,
                path,
                permission,
                owner,
                group,
                mtime_ms,
            } => {
                let kind = InodeKind::Dir(DirMeta::default());
                let inode = Inode::new(*inode_id, *permission, owner, group, *mtime_ms, kind);
                self.add_entry(path, inode, *mtime_ms)?;
            }
            Op::Create {
                inode_id,
                path,
                permission,
                owner,
                group,
                mtime_ms,
                replication,
                block_size,
                client_name,
                overwrite,
                orphans,
            } => {
                let w = self.walk(path)?;
                if w.exists() {
                    let existing = w.last();
                    if self.inodes.get(&existing).is_some_and(Inode::is_dir) {
                        return Err(Error::IsADirectory(path.to_string()));
                    }
                    let (Some((parent, name)), true) = (w.entry(), *overwrite) else {
                        return Err(Error::AlreadyExists(path.to_string()));
                    };
                    self.check_new_id(*inode_id)?;
                    let name = name.to_string();
                    self.remove_entry(parent, &name, orphans, *mtime_ms, &mut applied)?;
                }
                let file = FileMeta::new(*replication, *block_size, Some(client_name.clone()));
                let inode = Inode::new(
                    *inode_id,
                    *permission,
                    owner,
                    group,
                    *mtime_ms,
                    InodeKind::File(file),
                );
                self.add_entry(path, inode, *mtime_ms)?;
            }
            Op::Symlink {
                inode_id,
                path,
                target,
                owner,
                group,
                mtime_ms,
            } => {
                let kind = InodeKind::Symlink(target.clone());
                let inode = Inode::new(*inode_id, 0o777, owner, group, *mtime_ms, kind);
                self.add_entry(path, inode, *mtime_ms)?;
            }
            Op::Mknod {
                inode_id,
                path,
                file_type,
                permission,
                owner,
                group,
                mtime_ms,
                rdev,
                replication,
                block_size,
            } => {
                let kind = match (file_type, SpecialKind::of(*file_type)) {
                    (_, Some(kind)) => InodeKind::Special { kind, rdev: *rdev },
                    (FileType::File, None) => {
                        InodeKind::File(FileMeta::new(*replication, *block_size, None))
                    }
                    (t, None) => {
                        return Err(Error::InvalidArgument(format!("mknod of a {t:?}")));
                    }
                };
                let inode = Inode::new(*inode_id, *permission, owner, group, *mtime_ms, kind);
                self.add_entry(path, inode, *mtime_ms)?;
            }
            Op::Link { src, dst, mtime_ms } => self.link(src, dst, *mtime_ms)?,
            Op::AddBlock {
                path,
                previous,
                block,
                mtime_ms,
                log,
            } => {
                let id = self.resolve(path)?;
                if self.block_index.contains_key(&block.id) {
                    return Err(Error::Internal(format!("{} allocated twice", block.id)));
                }
                let next_block = id_after(block.id.0, "block id")?;
                let f = self.file_uc_mut(id, path)?;
                if let Some(prev) = previous {
                    match f.blocks.last() {
                        Some(last) if last.id == prev.id => {
                            let mut blocks = f.blocks.clone();
                            if let Some(b) = blocks.last_mut() {
                                *b = *prev;
                            }
                            f.update_blocks(&blocks)?;
                        }
                        _ => {
                            return Err(Error::InvalidArgument(format!(
                                "{} is not the last block of {path}",
                                prev.id
                            )))
                        }
                    }
                }
                if *log {
                    f.push_log_block(*block);
                } else {
                    f.push_block(*block);
                }
                self.block_index.insert(block.id, id);
                self.next_block_id = self.next_block_id.max(next_block);
                self.gen_stamp = self
                    .gen_stamp
                    .max(block.gs.0)
                    .max(previous.map_or(0, |p| p.gs.0));
                self.touch(id, *mtime_ms);
            }
            Op::UpdateBlocks { path, blocks } => {
                let id = self.resolve(path)?;
                self.set_blocks(id, path, blocks, &mut applied)?;
            }
            Op::CommitExtents {
                path,
                block,
                extents,
                length,
                mtime_ms,
            } => {
                let id = self.resolve(path)?;
                let gone = self
                    .file_uc_mut(id, path)?
                    .commit(*block, extents, *length)?;
                self.drop_blocks(gone, &mut applied);
                self.gen_stamp = self.gen_stamp.max(block.gs.0);
                self.touch(id, *mtime_ms);
            }
            Op::Close {
                path,
                blocks,
                mtime_ms,
            } => {
                let id = self.resolve(path)?;
                self.file_mut(id, path)?;
                self.set_blocks(id, path, blocks, &mut applied)?;
                let gone = self.file_mut(id, path)?.close();
                self.drop_blocks(gone, &mut applied);
                // 0: nothing was written since the file was opened; its times stay.
                if *mtime_ms != 0 {
                    self.touch(id, *mtime_ms);
                }
            }
            Op::Reopen {
                path, client_name, ..
            } => {
                let id = self.resolve(path)?;
                self.file_mut(id, path)?.client = Some(client_name.clone());
            }
            Op::Rename {
                src,
                dst,
                overwrite,
                mtime_ms,
                orphans,
            } => self.rename(src, dst, *overwrite, *mtime_ms, orphans, &mut applied)?,
            Op::Delete {
                path,
                mtime_ms,
                orphans,
            } => {
                let w = self.walk(path)?;
                if !w.exists() {
                    return Err(Error::NotFound(path.to_string()));
                }
                let Some((parent, name)) = w.entry() else {
                    return Err(Error::InvalidArgument(format!(
                        "{path} names no directory entry to delete"
                    )));
                };
                let name = name.to_string();
                self.remove_entry(parent, &name, orphans, *mtime_ms, &mut applied)?;
            }
            Op::SetReplication {
                path,
                replication,
                ctime_ms,
            } => {
                let id = self.resolve(path)?;
                self.file_mut(id, path)?.replication = *replication;
                self.set_ctime(id, *ctime_ms);
            }
            Op::SetPermission {
                path,
                permission,
                ctime_ms,
            } => {
                let id = self.resolve(path)?;
                self.inode_mut(id)?.permission = *permission & 0o7777;
                self.set_ctime(id, *ctime_ms);
            }
            Op::SetOwner {
                path,
                owner,
                group,
                ctime_ms,
            } => {
                let id = self.resolve(path)?;
                let inode = self.inode_mut(id)?;
                if !owner.is_empty() {
                    inode.owner = owner.clone();
                }
                if !group.is_empty() {
                    inode.group = group.clone();
                }
                self.set_ctime(id, *ctime_ms);
            }
            Op::SetTimes {
                path,
                mtime_ms,
                atime_ms,
                ctime_ms,
            } => {
                let id = self.resolve(path)?;
                let inode = self.inode_mut(id)?;
                if let Some(m) = mtime_ms {
                    inode.mtime_ms = *m;
                }
                if let Some(a) = atime_ms {
                    inode.atime_ms = *a;
                }
                self.set_ctime(id, *ctime_ms);
            }
            Op::SetXAttr {
                path,
                name,
                value,
                ctime_ms,
            } => {
                let id = self.resolve(path)?;
                self.inode_mut(id)?.set_xattr(name, value);
                self.set_ctime(id, *ctime_ms);
            }
            Op::RemoveXAttr {
                path,
                name,
                ctime_ms,
            } => {
                let id = self.resolve(path)?;
                if !self.inode_mut(id)?.remove_xattr(name) {
                    return Err(Error::NoSuchAttribute(format!("{name} of {path}")));
                }
                self.set_ctime(id, *ctime_ms);
            }
            Op::SetAcl {
                path,
                acl,
                permission,
                ctime_ms,
            } => {
                let id = self.resolve(path)?;
                let inode = self.inode_mut(id)?;
                inode.acl = acl.clone();
                inode.permission = *permission & 0o7777;
                self.set_ctime(id, *ctime_ms);
            }
            Op::SetGenerationStamp { gs } => {
                self.gen_stamp = self.gen_stamp.max(gs.0);
            }
            Op::ReserveIds {
                inode_id,
                block_id,
                gs,
            } => {
                self.next_inode_id = self.next_inode_id.max(inode_id.0);
                self.next_block_id = self.next_block_id.max(block_id.0);
                self.gen_stamp = self.gen_stamp.max(gs.0);
            }
            Op::AbandonBlock { path, block_id } => {
                let id = self.resolve(path)?;
                let f = self.file_uc_mut(id, path)?;
                if f.blocks.last().map(|b| b.id) != Some(*block_id) {
                    return Err(Error::InvalidArgument(format!(
                        "{block_id} is not the last block of {path}"
                    )));
                }
                if let Some(b) = f.pop_block() {
                    self.block_index.remove(&b.id);
                    applied.removed_blocks.push(b);
                }
            }
            Op::Truncate {
                path,
                new_length,
                mtime_ms,
            } => {
                let id = self.resolve(path)?;
                let gone = self.file_mut(id, path)?.truncate(*new_length);
                self.drop_blocks(gone, &mut applied);
                self.touch(id, *mtime_ms);
            }
            Op::ReassignLease { path, new_holder } => {
                let id = self.resolve(path)?;
                self.file_uc_mut(id, path)?.client = Some(new_holder.clone());
            }
            Op::ReleaseOrphan { inode_id, holder } => {
                let Some(holders) = self.orphans.get_mut(inode_id) else {
                    return Err(Error::InvalidArgument(format!(
                        "inode {inode_id} is not an orphan"
                    )));
                };
                match holder {
                    Some(h) => {
                        holders.remove(h);
                    }
                    None => holders.clear(),
                }
                if holders.is_empty() {
                    self.orphans.remove(inode_id);
                    self.delete_inode(*inode_id, &mut applied);
                }
            }
        }
        Ok(applied)
    }

    fn inode_mut(&mut self, id: InodeId) -> Result<&mut Inode> {
        self.inodes
            .get_mut(&id)
            .ok_or_else(|| Error::Internal(format!("inode {id} vanished")))
    }

    fn file_mut(&mut self, id: InodeId, path: &DfsPath) -> Result<&mut FileMeta> {
        let inode = self.inode_mut(id)?;
        if inode.is_dir() {
            return Err(Error::IsADirectory(path.to_string()));
        }
        inode
            .file_mut()
            .ok_or_else(|| Error::InvalidArgument(format!("{path} is not a regular file")))
    }

    fn file_uc_mut(&mut self, id: InodeId, path: &DfsPath) -> Result<&mut FileMeta> {
        let f = self.file_mut(id, path)?;
        if !f.under_construction() {
            return Err(Error::LeaseExpired(format!(
                "{path} is not under construction"
            )));
        }
        Ok(f)
    }

    fn dir_mut(&mut self, id: InodeId) -> Result<&mut DirMeta> {
        self.inode_mut(id)?
            .dir_mut()
            .ok_or_else(|| Error::Internal(format!("inode {id} is no directory")))
    }

    /// A data or entry change: mtime and ctime.
    fn touch(&mut self, id: InodeId, ms: u64) {
        if let Some(i) = self.inodes.get_mut(&id) {
            i.mtime_ms = ms;
            i.ctime_ms = ms;
        }
    }

    /// A status change; 0 (records of earlier versions) leaves the ctime.
    fn set_ctime(&mut self, id: InodeId, ms: u64) {
        if let (Some(i), true) = (self.inodes.get_mut(&id), ms != 0) {
            i.ctime_ms = ms;
        }
    }

    fn check_new_id(&self, id: InodeId) -> Result<u64> {
        if id.0 < 2 || self.inodes.contains_key(&id) {
            return Err(Error::Internal(format!("inode id {id} reused")));
        }
        id_after(id.0, "inode id")
    }

    /// Inserts a new inode as the entry `path` (whose name must be free).
    fn add_entry(&mut self, path: &DfsPath, mut inode: Inode, mtime_ms: u64) -> Result<()> {
        let next_inode = self.check_new_id(inode.id)?;
        let (parent, name) = self.new_entry(path)?;
        let (id, is_dir) = (inode.id, inode.is_dir());
        inode.parent = parent;
        inode.name = name.clone();
        let d = self.dir_mut(parent)?;
        d.children.insert(name, id);
        d.subdirs += u32::from(is_dir);
        if is_dir {
            self.dirs += 1;
        } else {
            self.files += 1;
        }
        self.next_inode_id = self.next_inode_id.max(next_inode);
        self.inodes.insert(id, inode);
        self.touch(parent, mtime_ms);
        Ok(())
    }

    fn link(&mut self, src: &DfsPath, dst: &DfsPath, mtime_ms: u64) -> Result<()> {
        let w = self.walk(src)?;
        if !w.exists() || self.orphans.contains_key(&w.last()) {
            return Err(Error::NotFound(src.to_string()));
        }
        let id = w.last();
        if self.inodes.get(&id).is_some_and(Inode::is_dir) {
            return Err(Error::NotPermitted(format!(
                "{src} is a directory: directories cannot be hard-linked"
            )));
        }
        if self.nlink(id) >= MAX_LINKS {
            return Err(Error::TooManyLinks(format!(
                "{src} has {MAX_LINKS} links already"
            )));
        }
        let (parent, name) = self.new_entry(dst)?;
        self.dir_mut(parent)?.children.insert(name.clone(), id);
        self.links.entry(id).or_default().push((parent, name));
        self.set_ctime(id, mtime_ms);
        self.touch(parent, mtime_ms);
        Ok(())
    }

    /// Replaces a file's block list (see `FileMeta::update_blocks`); blocks dropped are reported
    /// removed.
    fn set_blocks(
        &mut self,
        id: InodeId,
        path: &DfsPath,
        blocks: &[Block],
        applied: &mut Applied,
    ) -> Result<()> {
        for b in blocks {
            if let Some(owner) = self.block_index.get(&b.id) {
                if *owner != id {
                    return Err(Error::Internal(format!("{} belongs to another file", b.id)));
                }
            }
            id_after(b.id.0, "block id")?;
        }
        let dropped = self.file_mut(id, path)?.update_blocks(blocks)?;
        self.drop_blocks(dropped, applied);
        for b in blocks {
            self.next_block_id = self.next_block_id.max(b.id.0.saturating_add(1));
            self.gen_stamp = self.gen_stamp.max(b.gs.0);
        }
        Ok(())
    }

    /// Forgets blocks a file gave up; they are deleted from the DataNodes.
    fn drop_blocks(&mut self, gone: Vec<Block>, applied: &mut Applied) {
        for b in gone {
            self.block_index.remove(&b.id);
            applied.removed_blocks.push(b);
        }
    }

    /// Removes the entry `name` of `parent`: a directory with everything below it, a
    /// non-directory's name (the inode goes with its last name, unless `orphans` keeps it for
    /// the clients holding it open).
    fn remove_entry(
        &mut self,
        parent: InodeId,
        name: &str,
        orphans: &[Orphan],
        ms: u64,
        applied: &mut Applied,
    ) -> Result<()> {
        let d = self.dir_mut(parent)?;
        let id = d
            .children
            .remove(name)
            .ok_or_else(|| Error::NotFound(format!("{name} in directory {parent}")))?;
        let is_dir = self.inodes.get(&id).is_some_and(Inode::is_dir);
        if is_dir {
            let d = self.dir_mut(parent)?;
            d.subdirs = d.subdirs.saturating_sub(1);
        }
        self.touch(parent, ms);
        // Depth-first with an explicit stack: trees may be deeper than the thread's stack.
        let mut stack = vec![(parent, name.to_string(), id)];
        while let Some((dir, entry, id)) = stack.pop() {
            let Some(inode) = self.inodes.get_mut(&id) else {
                continue;
            };
            if let InodeKind::Dir(d) = &mut inode.kind {
                let children = std::mem::take(&mut d.children);
                stack.extend(children.into_iter().map(|(n, c)| (id, n, c)));
                self.inodes.remove(&id);
                self.dirs -= 1;
                continue;
            }
            self.drop_name(id, dir, &entry, orphans, ms, applied);
        }
        Ok(())
    }

    /// A non-directory loses its name (`dir`, `entry`), already taken out of the directory.
    fn drop_name(
        &mut self,
        id: InodeId,
        dir: InodeId,
        entry: &str,
        orphans: &[Orphan],
        ms: u64,
        applied: &mut Applied,
    ) {
        let Some(inode) = self.inodes.get_mut(&id) else {
            return;
        };
        if let Some(extra) = self.links.get_mut(&id) {
            if inode.parent == dir && inode.name == entry {
                if let Some((p, n)) = extra.pop() {
                    inode.parent = p;
                    inode.name = n;
                }
            } else {
                extra.retain(|(p, n)| !(*p == dir && n == entry));
            }
            if extra.is_empty() {
                self.links.remove(&id);
            }
            inode.ctime_ms = ms;
            return;
        }
        if let Some(o) = orphans
            .iter()
            .find(|o| o.inode == id && !o.holders.is_empty())
        {
            inode.parent = InodeId(0);
            inode.name.clear();
            inode.ctime_ms = ms;
            self.orphans.insert(id, o.holders.iter().cloned().collect());
            applied.orphaned.push(id);
            return;
        }
        self.delete_inode(id, applied);
    }

    /// Drops a non-directory inode and its blocks.
    fn delete_inode(&mut self, id: InodeId, applied: &mut Applied) {
        let Some(inode) = self.inodes.remove(&id) else {
            return;
        };
        self.links.remove(&id);
        self.files -= 1;
        if let InodeKind::File(f) = inode.kind {
            for b in f.blocks {
                self.block_index.remove(&b.id);
                applied.removed_blocks.push(b);
            }
            applied.removed_files.push(id);
        }
    }

    fn rename(
        &mut self,
        src: &DfsPath,
        dst: &DfsPath,
        overwrite: bool,
        ms: u64,
        orphans: &[Orphan],
        applied: &mut Applied,
    ) -> Result<()> {
        let sw = self.walk(src)?;
        if !sw.exists() {
            return Err(Error::NotFound(src.to_string()));
        }
        let Some((sp, sname)) = sw.entry() else {
            return Err(Error::InvalidRename(format!(
                "{src} names no directory entry to rename"
            )));
        };
        let (src_id, sname) = (sw.last(), sname.to_string());
        let src_dir = self.inodes.get(&src_id).is_some_and(Inode::is_dir);
        let dw = self.walk(dst)?;
        let (dp, dname) = if dw.exists() {
            if dw.last() == src_id {
                // The same entry, or two names of one file: POSIX says nothing happens.
                return Ok(());
            }
            let Some((dp, dname)) = dw.entry() else {
                return Err(Error::InvalidRename(format!("cannot rename onto {dst}")));
            };
            if !overwrite {
                return Err(Error::AlreadyExists(dst.to_string()));
            }
            match (self.inodes.get(&dw.last()).map(|i| &i.kind), src_dir) {
                (Some(InodeKind::Dir(_)), false) => {
                    return Err(Error::IsADirectory(dst.to_string()))
                }
                (Some(InodeKind::Dir(d)), true) if !d.children.is_empty() => {
                    return Err(Error::NotEmpty(dst.to_string()))
                }
                (Some(k), true) if !matches!(k, InodeKind::Dir(_)) => {
                    return Err(Error::NotADirectory(dst.to_string()))
                }
                _ => {}
            }
            (dp, dname.to_string())
        } else {
            self.new_entry(dst)?
        };
        if src_dir && self.is_within(dp, src_id) {
            return Err(Error::InvalidRename(format!(
                "cannot move {src} below itself to {dst}"
            )));
        }
        if dw.exists() {
            self.remove_entry(dp, &dname, orphans, ms, applied)?;
        }
        let d = self.dir_mut(sp)?;
        d.children.remove(&sname);
        if src_dir {
            d.subdirs = d.subdirs.saturating_sub(1);
        }
        let d = self.dir_mut(dp)?;
        d.children.insert(dname.clone(), src_id);
        d.subdirs += u32::from(src_dir);
        let inode = self.inode_mut(src_id)?;
        if inode.parent == sp && inode.name == sname {
            inode.parent = dp;
            inode.name = dname;
        } else if let Some(l) = self
            .links
            .get_mut(&src_id)
            .and_then(|v| v.iter_mut().find(|(p, n)| *p == sp && *n == sname))
        {
            *l = (dp, dname);
        }
        self.set_ctime(src_id, ms);
        self.touch(sp, ms);
        self.touch(dp, ms);
        Ok(())
    }
}
