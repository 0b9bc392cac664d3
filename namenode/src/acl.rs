//! POSIX access control lists as HDFS keeps them: pure, no I/O.
//!
//! An inode's mode bits always hold the owner and other classes. With an *extended* access ACL
//! (named users or groups), the mode's group bits are the ACL's mask and the owning group's own
//! permissions live in a stored unnamed GROUP entry; without one, the group bits are the owning
//! group's. So `chmod` needs no ACL change (it sets the mask), and an inode without ACL stores
//! nothing. A directory may also carry a *default* ACL, stored whole, which new children inherit
//! (POSIX 1003.1e, HDFS's `dfs.namenode.posix.acl.inheritance.enabled`).
//!
//! The operations are HDFS's (`setAcl`, `modifyAclEntries`, `removeAclEntries`,
//! `removeDefaultAcl`, `removeAcl`): each takes the inode's mode and stored entries and returns
//! the new ones, or an error naming what is wrong with the request.

pub use dfs_proto::acl::{Acl, AclEntry, AclScope, AclStatus, AclType};

use crate::error::{Error, Result};

/// At most this many entries per scope (HDFS's limit).
pub const MAX_ENTRIES: usize = 32;

/// Splits a complete ACL back into mode bits (the low 9; the caller keeps the special bits) and
/// what is stored. Validates it first.
fn store(entries: Vec<AclEntry>) -> Result<(u32, Acl)> {
    let entries = normalize(entries)?;
    let find = |scope, kind| {
        entries
            .iter()
            .find(|e| e.scope == scope && e.kind == kind && e.name.is_none())
            .map(|e| e.perm)
    };
    let a = AclScope::Access;
    let (Some(user), Some(group), Some(other)) = (
        find(a, AclType::User),
        find(a, AclType::Group),
        find(a, AclType::Other),
    ) else {
        return Err(invalid(
            "an ACL needs entries for the owner, the owning group and others",
        ));
    };
    let mask = find(a, AclType::Mask);
    let extended = entries.iter().any(|e| e.scope == a && e.name.is_some());
    let group_bits = if extended {
        mask.unwrap_or(group)
    } else {
        group
    };
    let mode = (user << 6) | (group_bits << 3) | other;
    let stored = entries
        .into_iter()
        .filter(|e| {
            e.scope == AclScope::Default
                || (extended
                    && matches!(e.kind, AclType::User | AclType::Group)
                    && (e.name.is_some() || e.kind == AclType::Group))
        })
        .collect();
    Ok((mode, Acl { entries: stored }))
}

fn invalid(m: impl Into<String>) -> Error {
    Error::InvalidArgument(format!("invalid ACL: {}", m.into()))
}

/// Sorts, checks for duplicates and limits, computes a missing mask, completes a default ACL
/// from the access one (as HDFS does), as every operation's last step.
fn normalize(mut entries: Vec<AclEntry>) -> Result<Vec<AclEntry>> {
    for e in &entries {
        if matches!(e.kind, AclType::Mask | AclType::Other) && e.name.is_some() {
            return Err(invalid(format!("a {:?} entry cannot have a name", e.kind)));
        }
        if e.name.as_deref() == Some("") {
            return Err(invalid("an entry's name may not be empty"));
        }
    }
    entries.sort();
    for w in entries.windows(2) {
        if w[0].key() == w[1].key() {
            return Err(invalid(format!("duplicate entry {:?}", w[0].key())));
        }
    }
    for scope in [AclScope::Access, AclScope::Default] {
        let n = entries.iter().filter(|e| e.scope == scope).count();
        if n > MAX_ENTRIES {
            return Err(Error::TooBig(format!(
                "an ACL has at most {MAX_ENTRIES} entries per scope, not {n}"
            )));
        }
    }
    // A default ACL lacking a base entry takes it from the access ACL.
    if entries.iter().any(|e| e.scope == AclScope::Default) {
        for kind in [AclType::User, AclType::Group, AclType::Other] {
            let has = |s| {
                entries
                    .iter()
                    .any(|e| e.scope == s && e.kind == kind && e.name.is_none())
            };
            if !has(AclScope::Default) {
                let Some(base) = entries
                    .iter()
                    .find(|e| e.scope == AclScope::Access && e.kind == kind && e.name.is_none())
                else {
                    return Err(invalid(format!("the default ACL lacks a {kind:?} entry")));
                };
                let copy = AclEntry {
                    scope: AclScope::Default,
                    ..base.clone()
                };
                entries.push(copy);
            }
        }
    }
    // A mask where named entries need one: the union of the group class.
    for scope in [AclScope::Access, AclScope::Default] {
        let named = entries.iter().any(|e| e.scope == scope && e.name.is_some());
        let has_mask = entries
            .iter()
            .any(|e| e.scope == scope && e.kind == AclType::Mask);
        if named && !has_mask {
            let union = entries
                .iter()
                .filter(|e| {
                    e.scope == scope
                        && (e.kind == AclType::Group
                            || (e.kind == AclType::User && e.name.is_some()))
                })
                .fold(0, |m, e| m | e.perm);
            entries.push(AclEntry::new(scope, AclType::Mask, None, union));
        }
    }
    entries.sort();
    Ok(entries)
}

/// The result of an ACL operation: the new low 9 mode bits and what to store.
pub type Changed = (u32, Acl);

/// `setAcl`: the spec's access entries replace the access ACL (none: it stays), its default
/// entries the default ACL (none: it stays).
pub fn set(mode: u32, acl: &Acl, spec: &[AclEntry]) -> Result<Changed> {
    let mut out: Vec<AclEntry> = spec.to_vec();
    for scope in [AclScope::Access, AclScope::Default] {
        if !spec.iter().any(|e| e.scope == scope) {
            out.extend(acl.full(mode).into_iter().filter(|e| e.scope == scope));
        }
    }
    store(out)
}

/// `modifyAclEntries`: each spec entry replaces the entry with its scope, type and name, or is
/// added. A mask is recomputed unless the spec sets one.
pub fn modify(mode: u32, acl: &Acl, spec: &[AclEntry]) -> Result<Changed> {
    let mut cur = acl.full(mode);
    let spec_masks: Vec<AclScope> = spec
        .iter()
        .filter(|e| e.kind == AclType::Mask)
        .map(|e| e.scope)
        .collect();
    for e in spec {
        cur.retain(|c| c.key() != e.key());
        cur.push(e.clone());
    }
    // Masks are recomputed where the spec did not set one.
    cur.retain(|c| c.kind != AclType::Mask || spec_masks.contains(&c.scope));
    store(cur)
}

/// `removeAclEntries`: drops the entries matching the spec's scope, type and name.
pub fn remove_entries(mode: u32, acl: &Acl, spec: &[AclEntry]) -> Result<Changed> {
    let mut cur = acl.full(mode);
    for e in spec {
        if e.name.is_none() && e.kind != AclType::Mask {
            return Err(invalid(format!(
                "the base {:?} entry cannot be removed",
                e.kind
            )));
        }
        cur.retain(|c| c.key() != e.key());
    }
    cur.retain(|c| c.kind != AclType::Mask);
    store(cur)
}

/// `removeDefaultAcl`.
pub fn remove_default(mode: u32, acl: &Acl) -> Result<Changed> {
    let mut cur = acl.full(mode);
    cur.retain(|c| c.scope == AclScope::Access);
    store(cur)
}

/// `removeAcl`: back to the base entries; the group bits become the owning group's again.
pub fn remove_all(mode: u32, acl: &Acl) -> Changed {
    let group = if acl.is_extended() {
        acl.group_obj().unwrap_or((mode >> 3) & 7)
    } else {
        (mode >> 3) & 7
    };
    ((mode & 0o707) | (group << 3), Acl::default())
}

/// What a new child of a directory with default ACL `parent` gets, created with mode `mode`
/// (its low 12 bits, before any umask: a default ACL replaces the umask). POSIX: the child's
/// access ACL is the default ACL with the owner, group class (the mask if there is one) and other
/// entries limited by the mode's bits; a directory also inherits the default ACL itself.
/// `None` when the parent has no default ACL.
pub fn inherit(parent: &Acl, mode: u32, dir: bool) -> Option<Changed> {
    if !parent.has_default() {
        return None;
    }
    let a = AclScope::Access;
    let mut access: Vec<AclEntry> = parent
        .default_entries()
        .map(|e| AclEntry {
            scope: a,
            ..e.clone()
        })
        .collect();
    let has_mask = access.iter().any(|e| e.kind == AclType::Mask);
    for e in &mut access {
        let limit = match (e.kind, &e.name) {
            (AclType::User, None) => mode >> 6,
            (AclType::Mask, _) => mode >> 3,
            (AclType::Group, None) if !has_mask => mode >> 3,
            (AclType::Other, _) => mode,
            _ => 7,
        };
        e.perm &= limit & 7;
    }
    if dir {
        access.extend(parent.default_entries().cloned());
    }
    // The parent's default ACL was valid, so this one is.
    store(access).ok()
}

/// Whether the ACL of an inode with mode bits `mode`, owner `owner` and owning group `group`
/// grants `want` (rwx bits) to `user` in `groups`: POSIX 1003.1e's algorithm. Owner first; then
/// a named user entry; then the owning group and named groups, any of which granting suffices
/// (limited by the mask); then other.
pub fn allows(
    acl: &Acl,
    mode: u32,
    (owner, group): (&str, &str),
    (user, in_group): (&str, &dyn Fn(&str) -> bool),
    want: u32,
) -> bool {
    let ok = |bits: u32| bits & want == want;
    if user == owner {
        return ok((mode >> 6) & 7);
    }
    if !acl.is_extended() {
        return if in_group(group) {
            ok((mode >> 3) & 7)
        } else {
            ok(mode & 7)
        };
    }
    let mask = (mode >> 3) & 7;
    let named = |kind| {
        acl.access()
            .filter(move |e| e.kind == kind && e.name.is_some())
    };
    if let Some(e) = named(AclType::User).find(|e| e.name.as_deref() == Some(user)) {
        return ok(e.perm & mask);
    }
    let mut matched = false;
    if in_group(group) {
        matched = true;
        if ok(acl.group_obj().unwrap_or(mask) & mask) {
            return true;
        }
    }
    for e in named(AclType::Group) {
        if e.name.as_deref().is_some_and(in_group) {
            matched = true;
            if ok(e.perm & mask) {
                return true;
            }
        }
    }
    !matched && ok(mode & 7)
}

#[cfg(test)]
mod tests {
    use super::*;
    use AclScope::{Access as A, Default as D};
    use AclType::*;

    fn e(scope: AclScope, kind: AclType, name: Option<&str>, perm: u32) -> AclEntry {
        AclEntry::new(scope, kind, name, perm)
    }

    fn member_of<'a>(groups: &'a [&'a str]) -> impl Fn(&str) -> bool + 'a {
        move |g| groups.contains(&g)
    }

    #[test]
    fn a_named_user_entry_sets_the_mask_and_is_limited_by_it() {
        let spec = [
            e(A, User, None, 6),
            e(A, User, Some("bob"), 6),
            e(A, Group, None, 4),
            e(A, Other, None, 0),
        ];
        let (mode, acl) = set(0o640, &Acl::default(), &spec).unwrap();
        // The mask is the union of the group class: bob's rw and the group's r.
        assert_eq!(mode, 0o660);
        assert!(acl.is_extended());
        assert_eq!(acl.group_obj(), Some(4));
        let none = member_of(&[]);
        let owner = ("alice", "staff");
        assert!(allows(&acl, mode, owner, ("bob", &none), 6));
        // chmod g-w narrows the mask: bob loses write, keeps read.
        let chmodded = 0o640;
        assert!(!allows(&acl, chmodded, owner, ("bob", &none), 2));
        assert!(allows(&acl, chmodded, owner, ("bob", &none), 4));
        // The owning group keeps its own entry, not the mask.
        let staff = member_of(&["staff"]);
        assert!(!allows(&acl, mode, owner, ("carol", &staff), 2));
        assert!(allows(&acl, mode, owner, ("carol", &staff), 4));
        assert!(!allows(&acl, mode, owner, ("eve", &none), 4));
        assert_eq!(acl.full(mode).len(), 5);
    }

    #[test]
    fn any_matching_group_entry_grants_and_a_matched_group_shuts_out_other() {
        let spec = [
            e(A, User, None, 7),
            e(A, Group, None, 0),
            e(A, Group, Some("dev"), 5),
            e(A, Mask, None, 7),
            e(A, Other, None, 4),
        ];
        let (mode, acl) = set(0o700, &Acl::default(), &spec).unwrap();
        let owner = ("alice", "staff");
        let dev_staff = member_of(&["dev", "staff"]);
        assert!(allows(&acl, mode, owner, ("bob", &dev_staff), 5));
        // staff matched (granting nothing): other's r does not apply.
        let staff = member_of(&["staff"]);
        assert!(!allows(&acl, mode, owner, ("carol", &staff), 4));
        assert!(allows(&acl, mode, owner, ("dave", &member_of(&[])), 4));
    }

    #[test]
    fn minimal_acls_store_nothing_and_remove_restores_the_group_bits() {
        let spec = [
            e(A, User, None, 7),
            e(A, Group, None, 5),
            e(A, Other, None, 1),
        ];
        let (mode, acl) = set(0o600, &Acl::default(), &spec).unwrap();
        assert_eq!((mode, acl.is_empty()), (0o751, true));
        let (mode, acl) = modify(mode, &acl, &[e(A, User, Some("bob"), 7)]).unwrap();
        assert_eq!(mode, 0o771, "mask = bob's rwx | group's r-x");
        let (mode, acl) = remove_entries(mode, &acl, &[e(A, User, Some("bob"), 0)]).unwrap();
        assert_eq!((mode, acl.is_empty()), (0o751, true));
        let (mode, acl) = modify(mode, &acl, &[e(A, Group, Some("dev"), 0)]).unwrap();
        assert_eq!(mode, 0o751);
        assert_eq!(remove_all(0o701, &acl), (0o751, Acl::default()));
        assert!(remove_entries(mode, &acl, &[e(A, Other, None, 0)]).is_err());
    }

    #[test]
    fn bad_specs_are_refused() {
        let base = [
            e(A, User, None, 7),
            e(A, Group, None, 5),
            e(A, Other, None, 1),
        ];
        let mut dup = base.to_vec();
        dup.push(e(A, User, None, 1));
        assert!(set(0, &Acl::default(), &dup).is_err());
        assert!(set(0, &Acl::default(), &base[..2]).is_err());
        let mut many = base.to_vec();
        many.extend((0..40).map(|i| e(A, User, Some(&format!("u{i}")), 4)));
        assert!(matches!(
            set(0, &Acl::default(), &many),
            Err(Error::TooBig(_))
        ));
        let mut named_mask = base.to_vec();
        named_mask.push(e(A, Mask, Some("x"), 4));
        assert!(set(0, &Acl::default(), &named_mask).is_err());
    }

    #[test]
    fn children_inherit_the_default_acl_limited_by_their_mode() {
        let (mode, dir) = modify(
            0o755,
            &Acl::default(),
            &[e(D, User, Some("bob"), 7), e(D, Group, None, 5)],
        )
        .unwrap();
        // The default ACL was completed from the access one, with a mask.
        assert_eq!(mode, 0o755);
        assert!(!dir.is_extended() && dir.has_default());
        assert_eq!(dir.default_entries().count(), 5);
        // A file created 0666 (no umask applies): owner rwx & rw-, mask (bob's rwx | the
        // group's r-x) & rw-, other r-x & rw-.
        let (fmode, facl) = inherit(&dir, 0o666, false).unwrap();
        assert_eq!(fmode, 0o664);
        assert!(facl.is_extended() && !facl.has_default());
        let none = member_of(&[]);
        assert!(allows(&facl, fmode, ("a", "g"), ("bob", &none), 6));
        assert!(!allows(&facl, fmode, ("a", "g"), ("bob", &none), 1));
        assert_eq!(facl.group_obj(), Some(5));
        // A default-only spec keeps the access ACL.
        let (m2, a2) = set(
            0o751,
            &Acl::default(),
            &[
                e(D, User, None, 7),
                e(D, Group, None, 0),
                e(D, Other, None, 0),
            ],
        )
        .unwrap();
        assert_eq!(m2, 0o751);
        assert!(a2.has_default() && !a2.is_extended());
        // A directory also inherits the default ACL.
        let (dmode, dacl) = inherit(&dir, 0o777, true).unwrap();
        assert_eq!(dmode, 0o775, "the group bits are the mask, bob's rwx");
        assert_eq!(
            dacl.default_entries().cloned().collect::<Vec<_>>(),
            dir.default_entries().cloned().collect::<Vec<_>>()
        );
        assert!(inherit(&Acl::default(), 0o777, true).is_none());
        let (_, gone) = remove_default(dmode, &dacl).unwrap();
        assert!(!gone.has_default());
    }
}
