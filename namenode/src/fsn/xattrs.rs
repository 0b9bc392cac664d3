//! Extended attributes and ACLs.
//!
//! Attribute namespaces follow Linux: `user.` attributes live only on regular files and
//! directories and need read (get) or write (set, remove) permission, and on a sticky directory
//! ownership to change; `trusted.` ones exist only for the superuser (others cannot set them and
//! never see them); `security.` ones anyone reads and only the superuser changes; `system.`
//! names the ACLs, which have their own RPCs (HDFS's). Sizes are limited as HDFS limits them
//! (`dfs.namenode.fs-limits.max-xattrs-per-inode`, `...max-xattr-size` for name plus value).

use dfs_proto::path::DfsPath;

use super::*;
use crate::acl::{self, AclEntry, AclStatus};
use crate::namespace::XAttr;
use crate::permission::{SETGID, STICKY};

/// Linux's limit on an attribute name (XATTR_NAME_MAX).
pub const MAX_XATTR_NAME: usize = 255;
/// Linux's limit on an attribute value (XATTR_SIZE_MAX).
pub const MAX_XATTR_VALUE: usize = 64 << 10;

/// XATTR_CREATE: fail if the attribute exists.
pub const XATTR_CREATE: u32 = 1;
/// XATTR_REPLACE: fail if it does not.
pub const XATTR_REPLACE: u32 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum XNamespace {
    User,
    Trusted,
    Security,
    System,
}

fn namespace_of(name: &str) -> Result<XNamespace> {
    let (ns, rest) = if let Some(r) = name.strip_prefix("user.") {
        (XNamespace::User, r)
    } else if let Some(r) = name.strip_prefix("trusted.") {
        (XNamespace::Trusted, r)
    } else if let Some(r) = name.strip_prefix("security.") {
        (XNamespace::Security, r)
    } else if let Some(r) = name.strip_prefix("system.") {
        (XNamespace::System, r)
    } else {
        return Err(Error::NotSupported(format!(
            "attribute {name:?}: the namespaces are user., trusted., security. and system."
        )));
    };
    if name.len() > MAX_XATTR_NAME {
        return Err(Error::OutOfRange(format!(
            "attribute name of {} bytes: at most {MAX_XATTR_NAME}",
            name.len()
        )));
    }
    if rest.is_empty() || name.contains('\0') {
        return Err(inval(format!("invalid attribute name {name:?}")));
    }
    Ok(ns)
}

/// The ACL operations of HDFS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AclChange {
    Set(Vec<AclEntry>),
    Modify(Vec<AclEntry>),
    RemoveEntries(Vec<AclEntry>),
    RemoveDefault,
    RemoveAll,
}

impl FsState {
    /// Whether `c` may read attribute `ns` of `id`: `Ok(false)` when it is hidden (ENODATA).
    fn may_read_xattr(&self, c: &Caller, id: InodeId, ns: XNamespace) -> Result<bool> {
        let su = self.checker.is_superuser(c);
        Ok(match ns {
            XNamespace::User => {
                let kind = self.ns.file_type(id);
                if !matches!(kind, Some(FileType::File | FileType::Directory)) {
                    return Ok(false);
                }
                self.checker.check_access(&self.ns, c, id, READ)?;
                true
            }
            XNamespace::Trusted => su,
            XNamespace::Security => true,
            XNamespace::System => {
                return Err(Error::NotSupported(
                    "system. attributes are ACLs: use the ACL operations".into(),
                ))
            }
        })
    }

    fn check_write_xattr(&self, c: &Caller, id: InodeId, ns: XNamespace) -> Result<()> {
        let su = self.checker.is_superuser(c);
        match ns {
            XNamespace::User => {
                let Some(inode) = self.ns.inode(id) else {
                    return Ok(());
                };
                if !matches!(inode.file_type(), FileType::File | FileType::Directory) {
                    return Err(Error::NotPermitted(
                        "user. attributes exist only on regular files and directories".into(),
                    ));
                }
                if inode.is_dir() && inode.permission & STICKY != 0 && !su && inode.owner != c.user
                {
                    return Err(Error::NotPermitted(
                        "user. attributes of a sticky directory: only its owner".into(),
                    ));
                }
                self.checker.check_access(&self.ns, c, id, WRITE)
            }
            XNamespace::Trusted | XNamespace::Security if !su => Err(Error::NotPermitted(format!(
                "user={} may not change trusted. or security. attributes",
                c.user
            ))),
            XNamespace::Trusted | XNamespace::Security => Ok(()),
            XNamespace::System => Err(Error::NotSupported(
                "system. attributes are ACLs: use the ACL operations".into(),
            )),
        }
    }

    pub fn set_xattr(
        &mut self,
        c: &Caller,
        path: &DfsPath,
        x: &XAttr,
        flags: u32,
        now: Now,
    ) -> Result<()> {
        self.check_writable("set attributes")?;
        let ns = namespace_of(&x.name)?;
        let id = self.target(c, path)?;
        self.check_write_xattr(c, id, ns)?;
        if x.value.len() > MAX_XATTR_VALUE || x.name.len() + x.value.len() > self.cfg.max_xattr_size
        {
            return Err(Error::TooBig(format!(
                "attribute {} of {} bytes: name and value may take at most {}",
                x.name,
                x.value.len(),
                self.cfg.max_xattr_size
            )));
        }
        let inode = self
            .ns
            .inode(id)
            .ok_or_else(|| Error::NotFound(path.to_string()))?;
        let exists = inode.xattr(&x.name).is_some();
        if exists && flags & XATTR_CREATE != 0 {
            return Err(Error::AlreadyExists(format!(
                "attribute {} of {path}",
                x.name
            )));
        }
        if !exists && flags & XATTR_REPLACE != 0 {
            return Err(Error::NoSuchAttribute(format!("{} of {path}", x.name)));
        }
        if !exists && inode.xattrs.len() >= self.cfg.max_xattrs_per_inode {
            return Err(Error::NoSpace(format!(
                "{path} has {} attributes, as many as an inode may",
                inode.xattrs.len()
            )));
        }
        self.log(Op::SetXAttr {
            path: DfsPath::inode(id.0),
            name: x.name.clone(),
            value: x.value.clone(),
            ctime_ms: now.ms,
        })?;
        Ok(())
    }

    /// The attributes `names` (all the caller may read, when empty) of `path`.
    pub fn get_xattrs(&self, c: &Caller, path: &DfsPath, names: &[String]) -> Result<Vec<XAttr>> {
        let id = self.target(c, path)?;
        let inode = self
            .ns
            .inode(id)
            .ok_or_else(|| Error::NotFound(path.to_string()))?;
        if names.is_empty() {
            let mut out = Vec::new();
            for x in &inode.xattrs {
                let ns = namespace_of(&x.name)?;
                if ns != XNamespace::System && self.may_read_xattr(c, id, ns)? {
                    out.push(x.clone());
                }
            }
            return Ok(out);
        }
        names
            .iter()
            .map(|n| {
                let ns = namespace_of(n)?;
                match inode.xattr(n) {
                    Some(x) if self.may_read_xattr(c, id, ns)? => Ok(x.clone()),
                    _ => Err(Error::NoSuchAttribute(format!("{n} of {path}"))),
                }
            })
            .collect()
    }

    /// The names of the attributes of `path` the caller may see.
    pub fn list_xattrs(&self, c: &Caller, path: &DfsPath) -> Result<Vec<String>> {
        let id = self.target(c, path)?;
        let su = self.checker.is_superuser(c);
        Ok(self
            .ns
            .inode(id)
            .map(|i| {
                i.xattrs
                    .iter()
                    .filter(|x| su || !x.name.starts_with("trusted."))
                    .map(|x| x.name.clone())
                    .collect()
            })
            .unwrap_or_default())
    }

    pub fn remove_xattr(&mut self, c: &Caller, path: &DfsPath, name: &str, now: Now) -> Result<()> {
        self.check_writable("remove attributes")?;
        let ns = namespace_of(name)?;
        let id = self.target(c, path)?;
        self.check_write_xattr(c, id, ns)?;
        if self.ns.inode(id).and_then(|i| i.xattr(name)).is_none() {
            return Err(Error::NoSuchAttribute(format!("{name} of {path}")));
        }
        self.log(Op::RemoveXAttr {
            path: DfsPath::inode(id.0),
            name: name.to_string(),
            ctime_ms: now.ms,
        })?;
        Ok(())
    }

    /// One of HDFS's ACL operations, by the owner or the superuser. The mode's owner, group (or
    /// mask) and other bits follow the ACL; a caller outside the file's group cannot keep its
    /// set-group-ID bit.
    pub fn change_acl(
        &mut self,
        c: &Caller,
        path: &DfsPath,
        change: &AclChange,
        now: Now,
    ) -> Result<()> {
        self.check_writable("change ACLs")?;
        let id = self.target(c, path)?;
        self.checker.check_owner(&self.ns, c, id)?;
        let inode = self
            .ns
            .inode(id)
            .ok_or_else(|| Error::NotFound(path.to_string()))?;
        let (mode, cur) = (inode.permission, &inode.acl);
        let (bits, new) = match change {
            AclChange::Set(spec) => acl::set(mode, cur, spec)?,
            AclChange::Modify(spec) => acl::modify(mode, cur, spec)?,
            AclChange::RemoveEntries(spec) => acl::remove_entries(mode, cur, spec)?,
            AclChange::RemoveDefault => acl::remove_default(mode, cur)?,
            AclChange::RemoveAll => acl::remove_all(mode, cur),
        };
        if new.has_default() && !inode.is_dir() {
            return Err(inval(format!(
                "invalid ACL: only directories may have a default ACL ({path})"
            )));
        }
        let mut permission = (mode & 0o7000) | (bits & 0o777);
        if !self.checker.is_superuser(c) && !c.in_group(&inode.group) {
            permission &= !SETGID;
        }
        self.log(Op::SetAcl {
            path: DfsPath::inode(id.0),
            acl: new,
            permission,
            ctime_ms: now.ms,
        })?;
        Ok(())
    }

    pub fn get_acl_status(&self, c: &Caller, path: &DfsPath) -> Result<AclStatus> {
        let id = self.target(c, path)?;
        let inode = self
            .ns
            .inode(id)
            .ok_or_else(|| Error::NotFound(path.to_string()))?;
        Ok(AclStatus {
            owner: inode.owner.clone(),
            group: inode.group.clone(),
            sticky: inode.permission & STICKY != 0,
            acl: inode.acl.clone(),
            permission: inode.permission,
        })
    }
}
