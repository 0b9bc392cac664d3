//! Namespace mutations: directories, files, renames, deletes and attributes, with the POSIX rules
//! for new entries' modes and groups, set-user/group-ID bits, sticky directories and times.

use dfs_proto::path::DfsPath;

use super::*;
use crate::acl;
use crate::op::Orphan;
use crate::permission::{SETGID, SETUID};

/// How a new entry's mode and group are chosen (see `CreateRequest` in `dfs.proto`).
#[derive(Debug, Clone, Default)]
pub struct NewMode {
    /// The mode with the creator's umask applied.
    pub permission: u32,
    /// The mode before the umask, which a parent's default ACL uses instead.
    pub unmasked: Option<u32>,
    /// The group the creator runs as (POSIX); empty: the parent's (HDFS).
    pub group: String,
}

impl NewMode {
    pub fn new(permission: u32) -> NewMode {
        NewMode {
            permission,
            ..Default::default()
        }
    }
}

/// What a new inode gets: mode, group, and an ACL inherited from the parent's default ACL.
pub(super) struct NewAttrs {
    pub permission: u32,
    pub group: String,
    pub acl: Option<acl::Acl>,
}

#[derive(Debug, Clone)]
pub struct MkdirsRequest {
    pub path: DfsPath,
    pub mode: NewMode,
    pub create_parent: bool,
}

#[derive(Debug, Clone)]
pub struct CreateRequest {
    pub path: DfsPath,
    pub mode: NewMode,
    pub client: String,
    pub overwrite: bool,
    pub create_parent: bool,
    /// 0: the default.
    pub replication: u32,
    /// 0: the default.
    pub block_size: u64,
}

#[derive(Debug, Clone)]
pub struct SetTimesRequest {
    pub path: DfsPath,
    pub mtime_ms: Option<u64>,
    pub atime_ms: Option<u64>,
    /// The times are "now" (UTIME_NOW): write permission suffices.
    pub now: bool,
}

impl FsState {
    /// Mode, group and ACL of a new child of `parent` made by `c` (POSIX): a set-group-ID parent
    /// gives its group (and, to directories, the bit); otherwise the creator's group, or the
    /// parent's when the request names none (HDFS). A parent's default ACL replaces the umask.
    pub(super) fn new_attrs(
        &self,
        c: &Caller,
        parent: InodeId,
        m: &NewMode,
        dir: bool,
    ) -> NewAttrs {
        let p = self.ns.inode(parent);
        let sgid_parent = p.is_some_and(|p| p.permission & SETGID != 0);
        let parent_group = p.map(|p| p.group.clone()).unwrap_or_default();
        let group = if sgid_parent || m.group.is_empty() {
            parent_group
        } else {
            m.group.clone()
        };
        let mut permission = m.permission & 0o7777;
        let mut inherited = None;
        if let Some(p) = p {
            // A client that sent no unmasked mode had its umask applied already: inherit from it.
            let unmasked = m.unmasked.unwrap_or(permission);
            if let Some((bits, a)) = acl::inherit(&p.acl, unmasked, dir) {
                permission = (unmasked & 0o7000) | bits;
                inherited = Some(a).filter(|a| !a.is_empty());
            }
        }
        if dir && sgid_parent {
            permission |= SETGID;
        }
        // A group-executable set-group-ID file in a group its creator is not in loses the bit.
        if !dir
            && permission & (SETGID | 0o010) == SETGID | 0o010
            && !c.in_group(&group)
            && !self.checker.is_superuser(c)
        {
            permission &= !SETGID;
        }
        NewAttrs {
            permission,
            group,
            acl: inherited,
        }
    }

    /// Logs the ACL a new inode inherited, if any.
    pub(super) fn log_inherited_acl(
        &mut self,
        id: InodeId,
        attrs: NewAttrs,
        now: Now,
    ) -> Result<()> {
        if let Some(acl) = attrs.acl {
            self.log(Op::SetAcl {
                path: DfsPath::inode(id.0),
                acl,
                permission: attrs.permission,
                ctime_ms: now.ms,
            })?;
        }
        Ok(())
    }

    /// Creates a directory (and its missing parents with `create_parent`); its status.
    pub fn mkdirs(&mut self, c: &Caller, req: &MkdirsRequest, now: Now) -> Result<FileStatus> {
        self.check_writable("create directories")?;
        let path = &req.path;
        let walk = self.entry_walk(c, path)?;
        if walk.exists() {
            return match self.ns.inode(walk.last()).map(|i| i.is_dir()) {
                Some(true) if req.create_parent => self.status_of(walk.last(), path),
                _ => Err(Error::AlreadyExists(path.to_string())),
            };
        }
        if walk.missing > 1 && !req.create_parent {
            let parent = path.parent().unwrap_or_else(DfsPath::root);
            return Err(Error::NotFound(parent.to_string()));
        }
        let mut parent = walk.last();
        self.checker
            .check_access(&self.ns, c, parent, WRITE | EXECUTE)?;
        let comps: Vec<&str> = path.components().collect();
        let first_missing = comps.len() - walk.missing;
        for (k, name) in comps.iter().enumerate().skip(first_missing) {
            let last = k + 1 == comps.len();
            let mut mode = req.mode.clone();
            if !last {
                // Intermediate directories must stay usable by their creator (HDFS adds u+wx).
                mode.permission |= 0o300;
                mode.unmasked = mode.unmasked.map(|u| u | 0o300);
            }
            let attrs = self.new_attrs(c, parent, &mode, true);
            let inode_id = self.ns.next_inode_id();
            let entry = DfsPath::inode_child(parent.0, name)?;
            // The root's `.reserved` is refused by the namespace before anything changes.
            self.ns.new_entry(&entry)?;
            self.log(Op::Mkdir {
                inode_id,
                path: entry,
                permission: attrs.permission,
                owner: c.user.clone(),
                group: attrs.group.clone(),
                mtime_ms: now.ms,
            })?;
            self.log_inherited_acl(inode_id, attrs, now)?;
            parent = inode_id;
        }
        self.status_of(parent, path)
    }

    fn status_of(&self, id: InodeId, path: &DfsPath) -> Result<FileStatus> {
        let name = path.file_name().unwrap_or_default().to_string();
        self.ns
            .status_named(id, name)
            .ok_or_else(|| Error::Internal(format!("{path} vanished")))
    }

    /// Creates a file under construction by `req.client` (replacing one with `overwrite`).
    pub fn create(&mut self, c: &Caller, req: &CreateRequest, now: Now) -> Result<FileStatus> {
        self.check_writable("create files")?;
        let path = &req.path;
        if req.client.is_empty() {
            return Err(inval("client_name is required"));
        }
        let replication = if req.replication == 0 {
            DEFAULT_REPLICATION
        } else {
            req.replication
        };
        self.check_replication(replication)?;
        let block_size = if req.block_size == 0 {
            DEFAULT_BLOCK_SIZE
        } else {
            req.block_size
        };
        if block_size < self.cfg.min_block_size || block_size % BYTES_PER_CHECKSUM != 0 {
            return Err(inval(format!(
                "block size {block_size} must be at least {} and a multiple of {BYTES_PER_CHECKSUM}",
                self.cfg.min_block_size
            )));
        }
        let mut walk = self.entry_walk(c, path)?;
        let mut orphans = Vec::new();
        if walk.exists() {
            let id = walk.last();
            let Some((parent, _)) = walk.entry() else {
                // The root, or a bare inode path: no entry to create or replace.
                return Err(match self.ns.file_type(id) {
                    Some(FileType::Directory) => Error::IsADirectory(path.to_string()),
                    _ => Error::AlreadyExists(path.to_string()),
                });
            };
            match self.ns.file_type(id) {
                Some(FileType::Directory) => return Err(Error::IsADirectory(path.to_string())),
                Some(FileType::Symlink) => {
                    return Err(Error::UnresolvedLink {
                        link: path.to_string(),
                        rest: String::new(),
                    })
                }
                _ if !req.overwrite => return Err(Error::AlreadyExists(path.to_string())),
                _ => {}
            }
            if let Some(holder) = self.ns.file(id).and_then(|f| f.client.clone()) {
                if holder != req.client
                    && !self
                        .leases
                        .expired(&holder, now.at, self.cfg.lease_soft_limit)
                {
                    return Err(Error::LeaseConflict(format!(
                        "file {path} is being written by client {holder}"
                    )));
                }
            }
            self.checker.check_remove(&self.ns, c, parent, id)?;
            orphans = self.held_orphans(id);
        } else if walk.missing > 1 {
            let parent = path.parent().unwrap_or_else(DfsPath::root);
            if !req.create_parent {
                return Err(Error::NotFound(parent.to_string()));
            }
            let mkdirs = MkdirsRequest {
                path: parent,
                mode: NewMode::new(DEFAULT_DIR_PERMISSION),
                create_parent: true,
            };
            self.mkdirs(c, &mkdirs, now)?;
            walk = self.entry_walk(c, path)?;
        }
        let existed = walk.exists();
        let parent = walk
            .parent()
            .ok_or_else(|| Error::NotFound(path.to_string()))?;
        if !existed {
            self.checker
                .check_access(&self.ns, c, parent, WRITE | EXECUTE)?;
        }
        let name = walk.name.clone().unwrap_or_default();
        let attrs = self.new_attrs(c, parent, &req.mode, false);
        let inode_id = self.ns.next_inode_id();
        self.log(Op::Create {
            inode_id,
            path: DfsPath::inode_child(parent.0, &name)?,
            permission: attrs.permission,
            owner: c.user.clone(),
            group: attrs.group.clone(),
            mtime_ms: now.ms,
            replication,
            block_size,
            client_name: req.client.clone(),
            overwrite: existed,
            orphans,
        })?;
        self.log_inherited_acl(inode_id, attrs, now)?;
        self.leases.add(&req.client, inode_id, now.at);
        self.leases.hold(&req.client, inode_id, now.at);
        self.status_of(inode_id, path)
    }

    pub fn rename(
        &mut self,
        c: &Caller,
        src: &DfsPath,
        dst: &DfsPath,
        overwrite: bool,
        now: Now,
    ) -> Result<()> {
        self.check_writable("rename")?;
        let sw = self.entry_walk(c, src)?;
        if !sw.exists() {
            return Err(Error::NotFound(src.to_string()));
        }
        let Some((sp, sname)) = sw.entry() else {
            return Err(Error::InvalidRename(format!(
                "cannot rename {src}: the root, or an inode rather than a directory entry"
            )));
        };
        let (src_id, sname) = (sw.last(), sname.to_string());
        let src_dir = self.ns.file_type(src_id) == Some(FileType::Directory);
        let dw = self.entry_walk(c, dst)?;
        if dw.exists() && dw.last() == src_id {
            return Ok(()); // the same file: POSIX says nothing happens
        }
        let mut orphans = Vec::new();
        let (dp, dname) = if dw.exists() {
            let Some((dp, dname)) = dw.entry() else {
                return Err(Error::InvalidRename(format!("cannot rename onto {dst}")));
            };
            let dst_id = dw.last();
            if !overwrite {
                return Err(Error::AlreadyExists(dst.to_string()));
            }
            let dst_dir = self.ns.file_type(dst_id) == Some(FileType::Directory);
            match (src_dir, dst_dir) {
                (false, true) => return Err(Error::IsADirectory(dst.to_string())),
                (true, false) => return Err(Error::NotADirectory(dst.to_string())),
                (true, true) if self.has_children(dst_id) => {
                    return Err(Error::NotEmpty(dst.to_string()))
                }
                _ => {}
            }
            self.checker.check_remove(&self.ns, c, dp, dst_id)?;
            orphans = self.held_orphans(dst_id);
            (dp, dname.to_string())
        } else {
            let (dp, dname) = self.ns.new_entry(dst)?;
            self.checker
                .check_access(&self.ns, c, dp, WRITE | EXECUTE)?;
            (dp, dname)
        };
        if src_dir && self.ns.is_within(dp, src_id) {
            return Err(Error::InvalidRename(format!(
                "cannot move {src} below itself ({dst})"
            )));
        }
        self.checker.check_remove(&self.ns, c, sp, src_id)?;
        if src_dir && dp != sp {
            // Its ".." changes: POSIX asks for write permission on the directory moved.
            self.checker.check_access(&self.ns, c, src_id, WRITE)?;
        }
        self.log(Op::Rename {
            src: DfsPath::inode_child(sp.0, &sname)?,
            dst: DfsPath::inode_child(dp.0, &dname)?,
            overwrite,
            mtime_ms: now.ms,
            orphans,
        })?;
        Ok(())
    }

    fn has_children(&self, id: InodeId) -> bool {
        self.ns
            .inode(id)
            .and_then(|i| i.children())
            .is_some_and(|ch| !ch.is_empty())
    }

    /// Deletes an entry; `directory` (POSIX unlink/rmdir) says what it must be. `false` when
    /// nothing was there.
    pub fn delete(
        &mut self,
        c: &Caller,
        path: &DfsPath,
        recursive: bool,
        directory: Option<bool>,
        now: Now,
    ) -> Result<bool> {
        self.check_writable("delete")?;
        let walk = match self.entry_walk(c, path) {
            Ok(w) => w,
            Err(Error::NotADirectory(_)) if directory.is_none() => return Ok(false),
            Err(e) => return Err(e),
        };
        if !walk.exists() {
            if directory.is_some() {
                return Err(Error::NotFound(path.to_string()));
            }
            return Ok(false);
        }
        let Some((parent, name)) = walk.entry() else {
            return Err(inval(format!(
                "cannot delete {path}: the root, or an inode rather than a directory entry"
            )));
        };
        let id = walk.last();
        let is_dir = self.ns.file_type(id) == Some(FileType::Directory);
        match (directory, is_dir) {
            (Some(true), false) => return Err(Error::NotADirectory(path.to_string())),
            (Some(false), true) => return Err(Error::IsADirectory(path.to_string())),
            _ => {}
        }
        self.checker.check_remove(&self.ns, c, parent, id)?;
        if self.has_children(id) {
            if !recursive {
                return Err(Error::NotEmpty(path.to_string()));
            }
            self.checker.check_subtree_all(&self.ns, c, id)?;
        }
        let orphans = self.held_orphans(id);
        self.log(Op::Delete {
            path: DfsPath::inode_child(parent.0, name)?,
            mtime_ms: now.ms,
            orphans,
        })?;
        Ok(true)
    }

    /// Orphan records for the files of the tree at `id` that clients hold open or write: they
    /// outlive their last name.
    pub(super) fn held_orphans(&self, id: InodeId) -> Vec<Orphan> {
        self.ns
            .subtree(id)
            .into_iter()
            .filter(|i| self.ns.file(*i).is_some())
            .filter_map(|i| {
                let holders = self.leases.holders_of(i);
                (!holders.is_empty()).then(|| Orphan {
                    inode: i,
                    holders: holders.into_iter().collect(),
                })
            })
            .collect()
    }

    pub fn set_replication(
        &mut self,
        c: &Caller,
        path: &DfsPath,
        replication: u32,
        now: Now,
    ) -> Result<()> {
        self.check_writable("set replication")?;
        let id = self.target(c, path)?;
        let old = self.file(id, path)?.replication;
        self.checker.check_access(&self.ns, c, id, WRITE)?;
        self.check_replication(replication)?;
        if old != replication {
            self.log(Op::SetReplication {
                path: DfsPath::inode(id.0),
                replication,
                ctime_ms: now.ms,
            })?;
        }
        Ok(())
    }

    /// chmod: the owner or the superuser. A caller outside the file's group cannot keep its
    /// set-group-ID bit (POSIX; no error).
    pub fn set_permission(
        &mut self,
        c: &Caller,
        path: &DfsPath,
        permission: u32,
        now: Now,
    ) -> Result<()> {
        self.check_writable("set permissions")?;
        let id = self.target(c, path)?;
        self.checker.check_owner(&self.ns, c, id)?;
        if permission > 0o7777 {
            return Err(inval(format!(
                "permission {permission:o} has bits beyond 0o7777"
            )));
        }
        let mut permission = permission;
        let group = self
            .ns
            .inode(id)
            .map(|i| i.group.clone())
            .unwrap_or_default();
        if !self.checker.is_superuser(c) && !c.in_group(&group) {
            permission &= !SETGID;
        }
        self.log(Op::SetPermission {
            path: DfsPath::inode(id.0),
            permission,
            ctime_ms: now.ms,
        })?;
        Ok(())
    }

    /// chown/chgrp. A non-directory loses its set-user-ID bit, and its set-group-ID bit when it
    /// is group-executable, as Linux does.
    pub fn set_owner(
        &mut self,
        c: &Caller,
        path: &DfsPath,
        owner: &str,
        group: &str,
        now: Now,
    ) -> Result<()> {
        self.check_writable("set owners")?;
        let id = self.target(c, path)?;
        self.checker
            .check_set_owner(&self.ns, c, id, owner, group)?;
        if owner.is_empty() && group.is_empty() {
            return Ok(());
        }
        self.log(Op::SetOwner {
            path: DfsPath::inode(id.0),
            owner: owner.to_string(),
            group: group.to_string(),
            ctime_ms: now.ms,
        })?;
        if self.ns.file_type(id) != Some(FileType::Directory) {
            self.drop_privileges(id, now)?;
        }
        Ok(())
    }

    /// Clears the set-user-ID bit, and the set-group-ID bit of a group-executable file, of `id`
    /// (after a chown, or a write or truncation by a caller that is not the superuser).
    pub(super) fn drop_privileges(&mut self, id: InodeId, now: Now) -> Result<()> {
        let Some(mode) = self.ns.inode(id).map(|i| i.permission) else {
            return Ok(());
        };
        let mut new = mode & !SETUID;
        if mode & (SETGID | 0o010) == SETGID | 0o010 {
            new &= !SETGID;
        }
        if new != mode {
            self.log(Op::SetPermission {
                path: DfsPath::inode(id.0),
                permission: new,
                ctime_ms: now.ms,
            })?;
        }
        Ok(())
    }

    /// utimensat: the owner or the superuser may set any times; with "now", write permission is
    /// enough (EACCES without it, EPERM for other times).
    pub fn set_times(&mut self, c: &Caller, req: &SetTimesRequest, now: Now) -> Result<()> {
        self.check_writable("set times")?;
        let id = self.target(c, &req.path)?;
        if req.now {
            let owner = self.checker.check_owner(&self.ns, c, id).is_ok();
            if !owner {
                self.checker.check_access(&self.ns, c, id, WRITE)?;
            }
        } else {
            self.checker.check_owner(&self.ns, c, id)?;
        }
        if req.mtime_ms.is_none() && req.atime_ms.is_none() {
            return Ok(());
        }
        // "Now" is the NameNode's clock, as every other time it sets.
        let at = |t: Option<u64>| if req.now { t.map(|_| now.ms) } else { t };
        self.log(Op::SetTimes {
            path: DfsPath::inode(id.0),
            mtime_ms: at(req.mtime_ms),
            atime_ms: at(req.atime_ms),
            ctime_ms: now.ms,
        })?;
        Ok(())
    }

    /// Cuts a closed file to `new_length` or grows it with a hole: no byte is rewritten on a
    /// DataNode (see `namespace::file`). Returns compaction's next step, as a commit does: a cut
    /// can leave a file storing many times its length, and no writer comes to compact it.
    pub fn truncate(
        &mut self,
        c: &Caller,
        path: &DfsPath,
        new_length: u64,
        client: &str,
        now: Now,
    ) -> Result<Vec<(u64, u64)>> {
        self.check_writable("truncate")?;
        let id = self.target(c, path)?;
        let f = self.file(id, path)?.clone();
        self.checker.check_access(&self.ns, c, id, WRITE)?;
        if let Some(holder) = &f.client {
            return Err(Error::LeaseConflict(format!(
                "file {path} is open for writing by client {holder}{}",
                if holder == client {
                    " (close it first)"
                } else {
                    ""
                }
            )));
        }
        if new_length == f.length() {
            return Ok(Vec::new());
        }
        self.log(Op::Truncate {
            path: DfsPath::inode(id.0),
            new_length,
            mtime_ms: now.ms,
        })?;
        if !self.checker.is_superuser(c) {
            self.drop_privileges(id, now)?;
        }
        Ok(self.file(id, path)?.compaction(None))
    }

    pub fn content_summary(&mut self, c: &Caller, path: &DfsPath) -> Result<ContentSummary> {
        let id = self.target(c, path)?;
        Ok(self.ns.content_summary(id))
    }
}
