//! Symbolic links, hard links and special files.

use dfs_proto::path::{DfsPath, MAX_PATH_LEN};

use super::nsops::{NewAttrs, NewMode};
use super::*;

#[derive(Debug, Clone)]
pub struct MknodRequest {
    pub path: DfsPath,
    pub file_type: FileType,
    pub mode: NewMode,
    pub rdev: u64,
    /// For a regular file; 0: the default.
    pub replication: u32,
    pub block_size: u64,
}

impl FsState {
    /// The directory and name of a new entry at `path`, which `c` may create there.
    fn creatable(&self, c: &Caller, path: &DfsPath) -> Result<(InodeId, String)> {
        let walk = self.entry_walk(c, path)?;
        if walk.exists() {
            return Err(Error::AlreadyExists(path.to_string()));
        }
        let (parent, name) = self.ns.new_entry(path)?;
        self.checker
            .check_access(&self.ns, c, parent, WRITE | EXECUTE)?;
        Ok((parent, name))
    }

    /// A symbolic link at `link` to `target` (any bytes but NUL, at most 4095 of them).
    pub fn create_symlink(
        &mut self,
        c: &Caller,
        target: &[u8],
        link: &DfsPath,
        group: &str,
        now: Now,
    ) -> Result<FileStatus> {
        self.check_writable("create symbolic links")?;
        if target.is_empty() {
            return Err(Error::NotFound(
                "a symbolic link's target may not be empty".into(),
            ));
        }
        if target.len() > MAX_PATH_LEN {
            return Err(Error::NameTooLong(format!(
                "a symbolic link's target is at most {MAX_PATH_LEN} bytes, not {}",
                target.len()
            )));
        }
        if target.contains(&0) {
            return Err(inval("a symbolic link's target may not contain a NUL byte"));
        }
        let (parent, name) = self.creatable(c, link)?;
        let mode = NewMode {
            permission: 0o777,
            unmasked: None,
            group: group.to_string(),
        };
        let NewAttrs { group, .. } = self.new_attrs(c, parent, &mode, false);
        let inode_id = self.ns.next_inode_id();
        self.log(Op::Symlink {
            inode_id,
            path: DfsPath::inode_child(parent.0, &name)?,
            target: target.to_vec(),
            owner: c.user.clone(),
            group,
            mtime_ms: now.ms,
        })?;
        self.named_status(inode_id, name)
    }

    fn named_status(&self, id: InodeId, name: String) -> Result<FileStatus> {
        self.ns
            .status_named(id, name)
            .ok_or_else(|| Error::Internal(format!("inode {id} vanished")))
    }

    /// A hard link: `dst` becomes another name of the non-directory at `src` (a symbolic link
    /// itself, not followed). Returns the inode's status under its new name.
    pub fn link(
        &mut self,
        c: &Caller,
        src: &DfsPath,
        dst: &DfsPath,
        now: Now,
    ) -> Result<FileStatus> {
        self.check_writable("create hard links")?;
        let sw = self.entry_walk(c, src)?;
        if !sw.exists() || self.ns.is_orphan(sw.last()) {
            return Err(Error::NotFound(src.to_string()));
        }
        let id = sw.last();
        if self.ns.file_type(id) == Some(FileType::Directory) {
            return Err(Error::NotPermitted(format!(
                "{src} is a directory: directories cannot be hard-linked"
            )));
        }
        let (parent, name) = self.creatable(c, dst)?;
        self.log(Op::Link {
            src: DfsPath::inode(id.0),
            dst: DfsPath::inode_child(parent.0, &name)?,
            mtime_ms: now.ms,
        })?;
        self.named_status(id, name)
    }

    /// mknod: a fifo, socket or device (only the superuser makes devices), or an empty closed
    /// regular file.
    pub fn mknod(&mut self, c: &Caller, req: &MknodRequest, now: Now) -> Result<FileStatus> {
        self.check_writable("create special files")?;
        let (replication, block_size) = match req.file_type {
            FileType::File => {
                let r = if req.replication == 0 {
                    DEFAULT_REPLICATION
                } else {
                    req.replication
                };
                self.check_replication(r)?;
                let b = if req.block_size == 0 {
                    DEFAULT_BLOCK_SIZE
                } else {
                    req.block_size
                };
                if b < self.cfg.min_block_size || b % BYTES_PER_CHECKSUM != 0 {
                    return Err(inval(format!("block size {b} is not one a file may have")));
                }
                (r, b)
            }
            FileType::CharDevice | FileType::BlockDevice if !self.checker.is_superuser(c) => {
                return Err(Error::NotPermitted(format!(
                    "user={} may not create device files: only the superuser may",
                    c.user
                )))
            }
            FileType::Fifo | FileType::Socket | FileType::CharDevice | FileType::BlockDevice => {
                (0, 0)
            }
            t => return Err(inval(format!("mknod cannot create a {t:?}"))),
        };
        let (parent, name) = self.creatable(c, &req.path)?;
        let attrs = self.new_attrs(c, parent, &req.mode, false);
        let inode_id = self.ns.next_inode_id();
        self.log(Op::Mknod {
            inode_id,
            path: DfsPath::inode_child(parent.0, &name)?,
            file_type: req.file_type,
            permission: attrs.permission,
            owner: c.user.clone(),
            group: attrs.group.clone(),
            mtime_ms: now.ms,
            rdev: req.rdev,
            replication,
            block_size,
        })?;
        self.log_inherited_acl(inode_id, attrs, now)?;
        self.named_status(inode_id, name)
    }
}
