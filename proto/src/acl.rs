//! POSIX ACL entries as HDFS names them, shared by the NameNode (which stores and enforces them)
//! and clients (which parse `setfacl` specs and print `getfacl` listings).
//!
//! An inode's mode bits always hold the owner and other classes. With an *extended* access ACL
//! (named users or groups), the mode's group bits are the ACL's mask and the owning group's own
//! permissions live in a stored unnamed GROUP entry; without one, the group bits are the owning
//! group's. What is stored (and sent by `GetAclStatus`) is therefore only the extended access
//! entries and the default ACL; [`full`] rebuilds the whole list from them and the mode.

use crate::pb;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AclScope {
    Access,
    Default,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AclType {
    User,
    Group,
    Mask,
    Other,
}

/// One entry, as HDFS's `AclEntry`; written `[default:]user|group|mask|other:[name]:rwx`.
/// The derived order (access first; USER, GROUP, MASK, OTHER; unnamed before named, named by
/// name) is the order entries are stored and listed in.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AclEntry {
    pub scope: AclScope,
    pub kind: AclType,
    /// `None` for the owner, the owning group, the mask and others.
    pub name: Option<String>,
    /// rwx in the low 3 bits.
    pub perm: u32,
}

impl AclEntry {
    pub fn new(scope: AclScope, kind: AclType, name: Option<&str>, perm: u32) -> AclEntry {
        AclEntry {
            scope,
            kind,
            name: name.map(str::to_string),
            perm: perm & 0o7,
        }
    }

    /// The key entries are matched by: everything but the permission.
    pub fn key(&self) -> (AclScope, AclType, Option<&str>) {
        (self.scope, self.kind, self.name.as_deref())
    }

    /// Parses one entry of an ACL spec (`user:bob:rw-`, `default:group::r-x`, `mask::rwx`);
    /// without a permission (`user:bob`, for removals) the permission is 0.
    pub fn parse(spec: &str) -> Result<AclEntry, String> {
        let (scope, rest) = match spec.strip_prefix("default:") {
            Some(r) => (AclScope::Default, r),
            None => (AclScope::Access, spec),
        };
        let mut parts = rest.split(':');
        let kind = match parts.next() {
            Some("user" | "u") => AclType::User,
            Some("group" | "g") => AclType::Group,
            Some("mask" | "m") => AclType::Mask,
            Some("other" | "o") => AclType::Other,
            _ => {
                return Err(format!(
                    "invalid ACL entry {spec:?}: no user, group, mask or other"
                ))
            }
        };
        let name = parts.next().filter(|n| !n.is_empty());
        let perm = match parts.next() {
            None => 0,
            Some(p) => parse_perm(p).ok_or_else(|| format!("invalid permission in {spec:?}"))?,
        };
        if parts.next().is_some() {
            return Err(format!("invalid ACL entry {spec:?}: too many fields"));
        }
        Ok(AclEntry::new(scope, kind, name, perm))
    }

    /// Parses a comma-separated ACL spec.
    pub fn parse_spec(spec: &str) -> Result<Vec<AclEntry>, String> {
        spec.split(',')
            .filter(|s| !s.trim().is_empty())
            .map(|s| AclEntry::parse(s.trim()))
            .collect()
    }
}

/// `rwx`, `r-x`, or an octal digit.
fn parse_perm(p: &str) -> Option<u32> {
    if let Ok(d) = p.parse::<u32>() {
        return (d <= 7).then_some(d);
    }
    let b = p.as_bytes();
    if b.len() != 3 {
        return None;
    }
    let bit = |c: u8, want: u8, v: u32| match c {
        c if c == want => Some(v),
        b'-' => Some(0),
        _ => None,
    };
    Some(bit(b[0], b'r', 4)? | bit(b[1], b'w', 2)? | bit(b[2], b'x', 1)?)
}

impl std::fmt::Display for AclEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.scope == AclScope::Default {
            f.write_str("default:")?;
        }
        let kind = match self.kind {
            AclType::User => "user",
            AclType::Group => "group",
            AclType::Mask => "mask",
            AclType::Other => "other",
        };
        let p = self.perm;
        let c = |bit: u32, ch: char| if p & bit != 0 { ch } else { '-' };
        write!(
            f,
            "{kind}:{}:{}{}{}",
            self.name.as_deref().unwrap_or(""),
            c(4, 'r'),
            c(2, 'w'),
            c(1, 'x')
        )
    }
}

impl From<&AclEntry> for pb::AclEntry {
    fn from(e: &AclEntry) -> Self {
        pb::AclEntry {
            scope: match e.scope {
                AclScope::Access => pb::AclScope::Access,
                AclScope::Default => pb::AclScope::Default,
            } as i32,
            r#type: match e.kind {
                AclType::User => pb::AclType::User,
                AclType::Group => pb::AclType::Group,
                AclType::Mask => pb::AclType::Mask,
                AclType::Other => pb::AclType::Other,
            } as i32,
            name: e.name.clone().unwrap_or_default(),
            permission: e.perm,
        }
    }
}

impl TryFrom<&pb::AclEntry> for AclEntry {
    /// Why the wire entry is not a valid one.
    type Error = String;

    fn try_from(e: &pb::AclEntry) -> Result<AclEntry, String> {
        let scope = match pb::AclScope::try_from(e.scope) {
            Ok(pb::AclScope::Access) => AclScope::Access,
            Ok(pb::AclScope::Default) => AclScope::Default,
            Err(_) => return Err(format!("unknown ACL scope {}", e.scope)),
        };
        let kind = match pb::AclType::try_from(e.r#type) {
            Ok(pb::AclType::User) => AclType::User,
            Ok(pb::AclType::Group) => AclType::Group,
            Ok(pb::AclType::Mask) => AclType::Mask,
            Ok(pb::AclType::Other) => AclType::Other,
            Err(_) => return Err(format!("unknown ACL entry type {}", e.r#type)),
        };
        if e.permission > 7 {
            return Err(format!(
                "ACL permission {:o} is more than rwx",
                e.permission
            ));
        }
        let name = (!e.name.is_empty()).then_some(e.name.as_str());
        Ok(AclEntry::new(scope, kind, name, e.permission))
    }
}

/// Wire ACL entries, or why one of them is not valid.
pub fn from_wire(entries: &[pb::AclEntry]) -> Result<Vec<AclEntry>, String> {
    entries.iter().map(AclEntry::try_from).collect()
}

/// What an inode stores: its extended access entries (named users and groups, plus the unnamed
/// GROUP entry) and its whole default ACL, sorted. Empty when the inode has no ACL.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Acl {
    pub entries: Vec<AclEntry>,
}

impl Acl {
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether there are named access entries (so the mode's group bits are the mask).
    pub fn is_extended(&self) -> bool {
        self.access().any(|e| e.name.is_some())
    }

    pub fn access(&self) -> impl Iterator<Item = &AclEntry> {
        self.entries.iter().filter(|e| e.scope == AclScope::Access)
    }

    pub fn default_entries(&self) -> impl Iterator<Item = &AclEntry> {
        self.entries.iter().filter(|e| e.scope == AclScope::Default)
    }

    pub fn has_default(&self) -> bool {
        self.default_entries().next().is_some()
    }

    /// The owning group's own permissions when the ACL is extended.
    pub fn group_obj(&self) -> Option<u32> {
        self.access()
            .find(|e| e.kind == AclType::Group && e.name.is_none())
            .map(|e| e.perm)
    }

    /// The complete ACL of an inode with this mode, as `getfacl` lists it: owner, named users,
    /// owning group, named groups, mask (when extended), other, then the default ACL.
    pub fn full(&self, mode: u32) -> Vec<AclEntry> {
        let a = AclScope::Access;
        let mut out = vec![AclEntry::new(a, AclType::User, None, mode >> 6)];
        if self.is_extended() {
            out.extend(self.access().filter(|e| e.kind == AclType::User).cloned());
            let group = self.group_obj().unwrap_or(mode >> 3);
            out.push(AclEntry::new(a, AclType::Group, None, group));
            out.extend(
                self.access()
                    .filter(|e| e.kind == AclType::Group && e.name.is_some())
                    .cloned(),
            );
            out.push(AclEntry::new(a, AclType::Mask, None, mode >> 3));
        } else {
            out.push(AclEntry::new(a, AclType::Group, None, mode >> 3));
        }
        out.push(AclEntry::new(a, AclType::Other, None, mode));
        out.extend(self.default_entries().cloned());
        out
    }
}

/// An inode's ACL as `GetAclStatus` reports it (HDFS's `AclStatus`): `permission` holds the
/// mode bits, whose group bits are the mask when the ACL is extended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclStatus {
    pub owner: String,
    pub group: String,
    pub sticky: bool,
    pub acl: Acl,
    pub permission: u32,
}

impl AclStatus {
    /// The whole ACL as `getfacl` lists it (see [`Acl::full`]).
    pub fn full(&self) -> Vec<AclEntry> {
        self.acl.full(self.permission)
    }
}

impl From<AclStatus> for pb::GetAclStatusResponse {
    fn from(s: AclStatus) -> Self {
        pb::GetAclStatusResponse {
            owner: s.owner,
            group: s.group,
            sticky: s.sticky,
            entries: s.acl.entries.iter().map(pb::AclEntry::from).collect(),
            permission: s.permission,
        }
    }
}

impl TryFrom<pb::GetAclStatusResponse> for AclStatus {
    /// Why an entry is not a valid one.
    type Error = String;

    fn try_from(r: pb::GetAclStatusResponse) -> Result<Self, String> {
        Ok(AclStatus {
            owner: r.owner,
            group: r.group,
            sticky: r.sticky,
            acl: Acl {
                entries: from_wire(&r.entries)?,
            },
            permission: r.permission,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_and_print_as_hdfs_writes_them() {
        let e = AclEntry::parse("default:user:bob:rw-").unwrap();
        assert_eq!(
            (e.scope, e.kind, e.name.as_deref(), e.perm),
            (AclScope::Default, AclType::User, Some("bob"), 6)
        );
        assert_eq!(e.to_string(), "default:user:bob:rw-");
        assert_eq!(AclEntry::parse("mask::5").unwrap().to_string(), "mask::r-x");
        assert_eq!(AclEntry::parse("user:bob").unwrap().perm, 0);
        for bad in [
            "",
            "bob:rwx",
            "user:bob:rwz",
            "user:bob:8",
            "user:bob:rwx:x",
        ] {
            assert!(AclEntry::parse(bad).is_err(), "{bad}");
        }
        let spec = AclEntry::parse_spec("user::rwx, group::r-x,other::---").unwrap();
        assert_eq!(spec.len(), 3);
    }

    #[test]
    fn entries_survive_the_wire_and_bad_ones_are_refused() {
        let e = AclEntry::parse("default:group:dev:r-x").unwrap();
        let wire = pb::AclEntry::from(&e);
        assert_eq!(AclEntry::try_from(&wire), Ok(e));
        let bad = [
            pb::AclEntry {
                scope: 9,
                ..wire.clone()
            },
            pb::AclEntry {
                r#type: 9,
                ..wire.clone()
            },
            pb::AclEntry {
                permission: 8,
                ..wire
            },
        ];
        for b in &bad {
            assert!(AclEntry::try_from(b).is_err(), "{b:?}");
        }
    }

    #[test]
    fn the_full_acl_has_a_mask_only_when_extended() {
        let minimal = Acl::default().full(0o750);
        let text: Vec<String> = minimal.iter().map(|e| e.to_string()).collect();
        assert_eq!(text, ["user::rwx", "group::r-x", "other::---"]);
        let acl = Acl {
            entries: vec![
                AclEntry::parse("group::r--").unwrap(),
                AclEntry::parse("user:bob:rwx").unwrap(),
            ],
        };
        let text: Vec<String> = acl.full(0o770).iter().map(|e| e.to_string()).collect();
        assert_eq!(
            text,
            [
                "user::rwx",
                "user:bob:rwx",
                "group::r--",
                "mask::rwx",
                "other::---"
            ]
        );
    }
}
