//! Extended attributes, and POSIX ACLs through theirs (`system.posix_acl_access`,
//! `system.posix_acl_default`): the kernel reads those to check permissions, and `setfacl`,
//! `getfacl`, `tar --acls` and `rsync -A` use them.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use dfs_client::{AclEntry, AclScope, AclStatus, AclType, FileStatus, XAttrFlag};
use fuser::Errno;

use crate::acl;
use crate::fs::{ipath, Fs, OrErrno, Reply};
use crate::lock;

/// What the latest status of each inode said about its attributes. `ls -l` asks every entry for
/// its ACL and its SELinux label, and almost none has either: while that status is as fresh as
/// the kernel's attribute cache, such a `getxattr` is answered ENODATA without a NameNode call.
/// Another client's new attribute is therefore seen within the attribute timeout, as its other
/// changes to the inode are; this mount's own changes forget the hint at once.
pub(crate) struct Hints {
    ttl: Duration,
    seen: Mutex<HashMap<u64, Hint>>,
}

#[derive(Clone, Copy)]
struct Hint {
    at: Instant,
    xattrs: bool,
    acl: bool,
}

/// Past this many inodes, a new hint first drops the stale ones.
const MAX_HINTS: usize = 1 << 16;

impl Hints {
    pub(crate) fn new(ttl: Duration) -> Hints {
        Hints {
            ttl,
            seen: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn note(&self, st: &FileStatus) {
        let now = Instant::now();
        let mut seen = lock(&self.seen);
        if seen.len() >= MAX_HINTS {
            seen.retain(|_, h| now.duration_since(h.at) < self.ttl);
        }
        let hint = Hint {
            at: now,
            xattrs: st.has_xattrs,
            acl: st.has_acl,
        };
        seen.insert(st.inode_id.max(1), hint);
    }

    pub(crate) fn forget(&self, ino: u64) {
        lock(&self.seen).remove(&ino);
    }

    /// A fresh hint for `ino`, if there is one.
    fn fresh(&self, ino: u64) -> Option<Hint> {
        let h = *lock(&self.seen).get(&ino)?;
        (h.at.elapsed() < self.ttl).then_some(h)
    }

    /// Whether `ino` surely has no attribute `name`.
    pub(crate) fn lacks(&self, ino: u64, name: &str) -> bool {
        self.fresh(ino).is_some_and(|h| h.lacks(name))
    }

    /// Whether a fresh hint can come of a status at all (not with a zero attribute timeout).
    fn useful(&self) -> bool {
        !self.ttl.is_zero()
    }
}

impl Hint {
    fn lacks(&self, name: &str) -> bool {
        match name {
            acl::ACCESS | acl::DEFAULT => !self.acl,
            _ => !self.xattrs,
        }
    }
}

/// What `getxattr` and `listxattr` answer: the value, or its size when asked for 0 bytes.
pub(crate) enum Value {
    Size(u32),
    Data(Vec<u8>),
}

/// `size` 0 asks how big the value is; a value bigger than `size` is ERANGE.
fn sized(value: Vec<u8>, size: u32) -> Reply<Value> {
    if size == 0 {
        return Ok(Value::Size(value.len() as u32));
    }
    if value.len() > size as usize {
        return Err(Errno::ERANGE);
    }
    Ok(Value::Data(value))
}

fn name_of(name: &OsStr) -> Reply<&str> {
    name.to_str().ok_or(Errno::EINVAL)
}

impl Fs {
    pub(crate) async fn getxattr(&self, ino: u64, name: &OsStr, size: u32) -> Reply<Value> {
        let name = name_of(name)?;
        if self.hints.useful() && self.hints.fresh(ino).is_none() {
            // The kernel asks for `security.capability` before every write: a status (which
            // answers for the attribute timeout to come) costs what one getxattr does.
            let st = self.status(ino).await?;
            self.hints.note(&st);
            if self.hints.lacks(ino, name) {
                return Err(Errno::ENODATA);
            }
        }
        let path = ipath(ino);
        let value = match name {
            acl::ACCESS | acl::DEFAULT => {
                let st = self.client.get_acl(&path).await.or_errno()?;
                self.acl_value(&st, name).ok_or(Errno::ENODATA)?
            }
            _ => self.client.get_xattr(&path, name).await.or_errno()?,
        };
        sized(value, size)
    }

    /// The ACL attribute `name` of an inode with ACL status `st`: the access ACL when it is
    /// extended (a minimal one is just the mode), the default ACL when there is one.
    fn acl_value(&self, st: &AclStatus, name: &str) -> Option<Vec<u8>> {
        let full = st.full();
        let scope = if name == acl::ACCESS {
            AclScope::Access
        } else {
            AclScope::Default
        };
        let entries: Vec<&AclEntry> = full.iter().filter(|e| e.scope == scope).collect();
        let present = match scope {
            AclScope::Access => entries.iter().any(|e| e.name.is_some()),
            AclScope::Default => !entries.is_empty(),
        };
        present.then(|| acl::encode(entries.into_iter(), &self.ids))
    }

    pub(crate) async fn listxattr(&self, ino: u64, size: u32) -> Reply<Value> {
        if self.hints.fresh(ino).is_some_and(|h| !h.xattrs && !h.acl) {
            return sized(Vec::new(), size);
        }
        let path = ipath(ino);
        let mut names = self.client.list_xattrs(&path).await.or_errno()?;
        let st = self.status(ino).await?;
        if st.has_acl {
            let acls = self.client.get_acl(&path).await.or_errno()?;
            for n in [acl::ACCESS, acl::DEFAULT] {
                if self.acl_value(&acls, n).is_some() {
                    names.push(n.to_string());
                }
            }
        }
        let mut out = Vec::new();
        for n in names {
            out.extend_from_slice(n.as_bytes());
            out.push(0);
        }
        sized(out, size)
    }

    pub(crate) async fn setxattr(
        &self,
        ino: u64,
        name: &OsStr,
        value: &[u8],
        flags: i32,
    ) -> Reply<()> {
        let name = name_of(name)?;
        let done = self.set_attr(ino, name, value, flags).await;
        self.hints.forget(ino);
        done
    }

    async fn set_attr(&self, ino: u64, name: &str, value: &[u8], flags: i32) -> Reply<()> {
        let path = ipath(ino);
        match name {
            acl::ACCESS => {
                let spec = acl::decode(value, AclScope::Access, &self.ids)?;
                self.client.set_acl(&path, &spec).await.or_errno()
            }
            acl::DEFAULT => {
                let spec = acl::decode(value, AclScope::Default, &self.ids)?;
                if spec.is_empty() {
                    return self.client.remove_default_acl(&path).await.or_errno();
                }
                self.client.set_acl(&path, &spec).await.or_errno()
            }
            _ => {
                let flag = match flags {
                    0 => XAttrFlag::Any,
                    libc::XATTR_CREATE => XAttrFlag::Create,
                    libc::XATTR_REPLACE => XAttrFlag::Replace,
                    _ => return Err(Errno::EINVAL),
                };
                self.client
                    .set_xattr(&path, name, value, flag)
                    .await
                    .or_errno()
            }
        }
    }

    pub(crate) async fn removexattr(&self, ino: u64, name: &OsStr) -> Reply<()> {
        let name = name_of(name)?;
        let done = self.remove_attr(ino, name).await;
        self.hints.forget(ino);
        done
    }

    async fn remove_attr(&self, ino: u64, name: &str) -> Reply<()> {
        let path = ipath(ino);
        match name {
            acl::ACCESS => {
                // The mode stays as it is (its group bits were the mask): the base entries.
                let st = self.client.get_acl(&path).await.or_errno()?;
                if self.acl_value(&st, name).is_none() {
                    return Err(Errno::ENODATA);
                }
                let m = st.permission;
                let base = |kind, perm| AclEntry {
                    scope: AclScope::Access,
                    kind,
                    name: None,
                    perm,
                };
                let spec = [
                    base(AclType::User, (m >> 6) & 7),
                    base(AclType::Group, (m >> 3) & 7),
                    base(AclType::Other, m & 7),
                ];
                self.client.set_acl(&path, &spec).await.or_errno()
            }
            acl::DEFAULT => self.client.remove_default_acl(&path).await.or_errno(),
            _ => self.client.remove_xattr(&path, name).await.or_errno(),
        }
    }
}
