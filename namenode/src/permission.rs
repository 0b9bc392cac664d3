//! Permission checks, POSIX's and HDFS's: pure functions over the namespace and a [`Caller`].
//!
//! Without an extended ACL the owner class applies if the caller is the owner, else the group
//! class if the caller is in the inode's group, else other; with one, POSIX 1003.1e's algorithm
//! (`acl::allows`). The superuser (the NameNode's own user, the user `root`, or any member of the
//! supergroup) bypasses every check. Traversal needs `x` on every ancestor directory; changing a
//! directory's entries needs `w` and `x` on it, and the sticky bit (`0o1000`) on a directory
//! restricts removing or renaming an entry to the owner of the entry, the owner of the
//! directory, or the superuser. What needs ownership rather than permission bits (chmod, chown,
//! explicit times, ACLs, the sticky rule) fails with [`Error::NotPermitted`] (EPERM), the rest
//! with [`Error::PermissionDenied`] (EACCES).

use crate::acl;
use crate::error::{Error, Result};
use crate::namespace::{Inode, Namespace, Walk};
use crate::types::{Caller, InodeId};

pub const READ: u32 = 0o4;
pub const WRITE: u32 = 0o2;
pub const EXECUTE: u32 = 0o1;
pub const STICKY: u32 = 0o1000;
pub const SETGID: u32 = 0o2000;
pub const SETUID: u32 = 0o4000;

/// Who counts as the superuser and whether checks run at all.
#[derive(Debug, Clone)]
pub struct Checker {
    pub enabled: bool,
    pub superuser: String,
    pub supergroup: String,
}

/// The local superuser's name: a superuser of dfs too, whoever the NameNode runs as, so that a
/// FUSE mount serves root (uid 0) as a local file system would.
pub const ROOT_USER: &str = "root";

impl Checker {
    pub fn is_superuser(&self, c: &Caller) -> bool {
        !self.enabled
            || c.user == self.superuser
            || c.user == ROOT_USER
            || c.in_group(&self.supergroup)
    }

    /// Whether `inode`'s mode bits and ACL grant `c` every bit of `access`.
    fn grants(inode: &Inode, c: &Caller, access: u32) -> bool {
        let in_group = |g: &str| c.in_group(g);
        acl::allows(
            &inode.acl,
            inode.permission,
            (&inode.owner, &inode.group),
            (&c.user, &in_group),
            access,
        )
    }

    /// Requires all bits of `access` (a combination of READ, WRITE, EXECUTE) on `id`.
    pub fn check_access(&self, ns: &Namespace, c: &Caller, id: InodeId, access: u32) -> Result<()> {
        if self.is_superuser(c) {
            return Ok(());
        }
        let Some(inode) = ns.inode(id) else {
            return Ok(());
        };
        if Self::grants(inode, c, access) {
            return Ok(());
        }
        Err(Error::PermissionDenied(format!(
            "user={} access={} inode=\"{}\":{}:{}:{}",
            c.user,
            access_str(access),
            ns.path_of(id),
            inode.owner,
            inode.group,
            mode_str(inode.permission, inode.is_dir())
        )))
    }

    /// Requires `x` on every existing ancestor of the walked path's last existing inode (all of
    /// `walk.inodes` except the target itself when it exists).
    pub fn check_traverse(&self, ns: &Namespace, c: &Caller, walk: &Walk) -> Result<()> {
        if self.is_superuser(c) {
            return Ok(());
        }
        let ancestors = if walk.missing == 0 {
            &walk.inodes[..walk.inodes.len().saturating_sub(1)]
        } else {
            &walk.inodes[..]
        };
        for id in ancestors {
            self.check_access(ns, c, *id, EXECUTE)?;
        }
        Ok(())
    }

    /// Only the owner (or the superuser) may do this.
    pub fn check_owner(&self, ns: &Namespace, c: &Caller, id: InodeId) -> Result<()> {
        if self.is_superuser(c) {
            return Ok(());
        }
        match ns.inode(id) {
            Some(inode) if inode.owner != c.user => Err(Error::NotPermitted(format!(
                "user={} is not the owner of \"{}\" (owner {})",
                c.user,
                ns.path_of(id),
                inode.owner
            ))),
            _ => Ok(()),
        }
    }

    /// The sticky-bit rule for removing or renaming `child` out of `parent`.
    pub fn check_sticky(
        &self,
        ns: &Namespace,
        c: &Caller,
        parent: InodeId,
        child: InodeId,
    ) -> Result<()> {
        if self.is_superuser(c) {
            return Ok(());
        }
        let (Some(p), Some(ch)) = (ns.inode(parent), ns.inode(child)) else {
            return Ok(());
        };
        if p.permission & STICKY == 0 || p.owner == c.user || ch.owner == c.user {
            return Ok(());
        }
        Err(Error::NotPermitted(format!(
            "user={} may not remove \"{}\": sticky bit set on the parent, owned by {}",
            c.user,
            ns.path_of(child),
            p.owner
        )))
    }

    /// Removing an entry: `w`+`x` on its parent and the sticky rule.
    pub fn check_remove(
        &self,
        ns: &Namespace,
        c: &Caller,
        parent: InodeId,
        child: InodeId,
    ) -> Result<()> {
        self.check_access(ns, c, parent, WRITE | EXECUTE)?;
        self.check_sticky(ns, c, parent, child)
    }

    /// Recursive delete of a non-empty directory needs `rwx` on every directory of the subtree
    /// (as HDFS), so one cannot remove what one could not list and empty oneself.
    pub fn check_subtree_all(&self, ns: &Namespace, c: &Caller, id: InodeId) -> Result<()> {
        if self.is_superuser(c) {
            return Ok(());
        }
        for i in ns.subtree(id) {
            if ns.inode(i).is_some_and(Inode::is_dir) {
                self.check_access(ns, c, i, READ | WRITE | EXECUTE)?;
            }
        }
        Ok(())
    }

    /// chown/chgrp: only the superuser gives a file away; the owner may change the group to one
    /// they belong to.
    pub fn check_set_owner(
        &self,
        ns: &Namespace,
        c: &Caller,
        id: InodeId,
        owner: &str,
        group: &str,
    ) -> Result<()> {
        if self.is_superuser(c) {
            return Ok(());
        }
        let Some(inode) = ns.inode(id) else {
            return Ok(());
        };
        if inode.owner != c.user {
            return Err(Error::NotPermitted(format!(
                "user={} is not the owner of \"{}\"",
                c.user,
                ns.path_of(id)
            )));
        }
        if !owner.is_empty() && owner != inode.owner {
            return Err(Error::NotPermitted(format!(
                "user={} may not change the owner of \"{}\": only the superuser can",
                c.user,
                ns.path_of(id)
            )));
        }
        if !group.is_empty() && group != inode.group && !c.in_group(group) {
            return Err(Error::NotPermitted(format!(
                "user={} does not belong to group {group}",
                c.user
            )));
        }
        Ok(())
    }
}

fn access_str(a: u32) -> String {
    let mut s = String::new();
    s.push(if a & READ != 0 { 'r' } else { '-' });
    s.push(if a & WRITE != 0 { 'w' } else { '-' });
    s.push(if a & EXECUTE != 0 { 'x' } else { '-' });
    s
}

/// `drwxr-xr-t` style.
pub fn mode_str(mode: u32, dir: bool) -> String {
    let mut s = String::with_capacity(10);
    s.push(if dir { 'd' } else { '-' });
    for shift in [6, 3, 0] {
        s.push_str(&access_str((mode >> shift) & 0o7));
    }
    if mode & STICKY != 0 {
        let last = if mode & EXECUTE != 0 { 't' } else { 'T' };
        s.pop();
        s.push(last);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::namespace::tests::{create, mkdir, p};
    use crate::op::Op;

    fn checker() -> Checker {
        Checker {
            enabled: true,
            superuser: "root".into(),
            supergroup: "supergroup".into(),
        }
    }

    fn setup() -> Namespace {
        let mut ns = Namespace::new("root", "supergroup", 0);
        mkdir(&mut ns, "/home"); // owned by alice:users 0755
        create(&mut ns, "/home/f", false).unwrap(); // alice:users 0644
        ns
    }

    #[test]
    fn owner_group_other_classes() {
        let ns = setup();
        let ck = checker();
        let f = ns.resolve(&p("/home/f")).unwrap();
        let alice = Caller::new("alice", &[]);
        let bob_users = Caller::new("bob", &["users"]);
        let eve = Caller::new("eve", &[]);
        ck.check_access(&ns, &alice, f, READ | WRITE).unwrap();
        ck.check_access(&ns, &bob_users, f, READ).unwrap();
        assert!(matches!(
            ck.check_access(&ns, &bob_users, f, WRITE),
            Err(Error::PermissionDenied(_))
        ));
        assert!(ck.check_access(&ns, &eve, f, WRITE).is_err());
        // Superuser and supergroup members bypass.
        ck.check_access(&ns, &Caller::new("root", &[]), f, WRITE)
            .unwrap();
        ck.check_access(&ns, &Caller::new("admin", &["supergroup"]), f, WRITE)
            .unwrap();
        // Disabled checks allow everything.
        let off = Checker {
            enabled: false,
            ..checker()
        };
        off.check_access(&ns, &eve, f, WRITE).unwrap();
    }

    #[test]
    fn root_is_a_superuser_whoever_runs_the_namenode() {
        let ns = setup();
        let ck = Checker {
            superuser: "hdfs".into(),
            ..checker()
        };
        let f = ns.resolve(&p("/home/f")).unwrap();
        let home = ns.resolve(&p("/home")).unwrap();
        for su in [
            Caller::new("root", &[]),
            Caller::new("hdfs", &[]),
            Caller::new("ops", &["supergroup"]),
        ] {
            assert!(ck.is_superuser(&su), "{}", su.user);
            ck.check_access(&ns, &su, f, READ | WRITE).unwrap();
            ck.check_owner(&ns, &su, home).unwrap();
        }
        let eve = Caller::new("eve", &["root"]);
        assert!(!ck.is_superuser(&eve), "a group named root is no superuser");
        assert!(ck.check_access(&ns, &eve, f, WRITE).is_err());
    }

    #[test]
    fn non_owner_cannot_create_in_foreign_dir_or_chmod() {
        let ns = setup();
        let ck = checker();
        let home = ns.resolve(&p("/home")).unwrap();
        let eve = Caller::new("eve", &[]);
        assert!(ck.check_access(&ns, &eve, home, WRITE | EXECUTE).is_err());
        assert!(ck.check_owner(&ns, &eve, home).is_err());
        ck.check_owner(&ns, &Caller::new("alice", &[]), home)
            .unwrap();
        ck.check_owner(&ns, &Caller::new("root", &[]), home)
            .unwrap();
    }

    #[test]
    fn traverse_needs_x_on_ancestors() {
        let mut ns = setup();
        ns.apply(&Op::SetPermission {
            path: p("/home"),
            permission: 0o700,
            ctime_ms: 1,
        })
        .unwrap();
        let ck = checker();
        let w = ns.walk(&p("/home/f")).unwrap();
        assert!(ck
            .check_traverse(&ns, &Caller::new("eve", &[]), &w)
            .is_err());
        ck.check_traverse(&ns, &Caller::new("alice", &[]), &w)
            .unwrap();
        // The target itself needs no x.
        let w = ns.walk(&p("/home")).unwrap();
        ck.check_traverse(&ns, &Caller::new("eve", &[]), &w)
            .unwrap();
    }

    #[test]
    fn sticky_bit_restricts_removal() {
        let mut ns = Namespace::new("root", "supergroup", 0);
        let id = ns.next_inode_id();
        ns.apply(&Op::Mkdir {
            inode_id: id,
            path: p("/tmp"),
            permission: 0o1777,
            owner: "root".into(),
            group: "supergroup".into(),
            mtime_ms: 0,
        })
        .unwrap();
        create(&mut ns, "/tmp/f", false).unwrap(); // owned by alice
        let ck = checker();
        let tmp = ns.resolve(&p("/tmp")).unwrap();
        let f = ns.resolve(&p("/tmp/f")).unwrap();
        let bob = Caller::new("bob", &[]);
        // bob may write into /tmp but not remove alice's file.
        ck.check_access(&ns, &bob, tmp, WRITE | EXECUTE).unwrap();
        assert!(matches!(
            ck.check_remove(&ns, &bob, tmp, f),
            Err(Error::NotPermitted(_))
        ));
        ck.check_remove(&ns, &Caller::new("alice", &[]), tmp, f)
            .unwrap();
        ck.check_remove(&ns, &Caller::new("root", &[]), tmp, f)
            .unwrap();
        assert_eq!(mode_str(0o1777, true), "drwxrwxrwt");
    }

    #[test]
    fn chown_rules() {
        let ns = setup();
        let ck = checker();
        let f = ns.resolve(&p("/home/f")).unwrap();
        let alice = Caller::new("alice", &["users", "dev"]);
        ck.check_set_owner(&ns, &alice, f, "", "dev").unwrap();
        ck.check_set_owner(&ns, &alice, f, "alice", "").unwrap();
        assert!(ck.check_set_owner(&ns, &alice, f, "", "wheel").is_err());
        assert!(ck.check_set_owner(&ns, &alice, f, "bob", "").is_err());
        assert!(ck
            .check_set_owner(&ns, &Caller::new("bob", &["dev"]), f, "", "dev")
            .is_err());
        ck.check_set_owner(&ns, &Caller::new("root", &[]), f, "bob", "wheel")
            .unwrap();
    }
}
