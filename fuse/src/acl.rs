//! POSIX ACLs as the kernel passes them in the `system.posix_acl_access` and
//! `system.posix_acl_default` attributes (`struct posix_acl_xattr_header` and entries, little
//! endian: a version word 2, then per entry a 16-bit tag, 16-bit permissions, 32-bit id), to
//! and from the NameNode's named entries.

use dfs_client::{AclEntry, AclScope, AclType};
use fuser::Errno;

use crate::ids::Ids;

pub const ACCESS: &str = "system.posix_acl_access";
pub const DEFAULT: &str = "system.posix_acl_default";

const VERSION: u32 = 2;
const USER_OBJ: u16 = 0x01;
const USER: u16 = 0x02;
const GROUP_OBJ: u16 = 0x04;
const GROUP: u16 = 0x08;
const MASK: u16 = 0x10;
const OTHER: u16 = 0x20;
const UNDEFINED_ID: u32 = u32::MAX;

/// The entries of an ACL attribute, in `scope`, named as dfs names users and groups.
pub fn decode(value: &[u8], scope: AclScope, ids: &Ids) -> Result<Vec<AclEntry>, Errno> {
    if value.len() < 4 || !(value.len() - 4).is_multiple_of(8) {
        return Err(Errno::EINVAL);
    }
    if u32::from_le_bytes([value[0], value[1], value[2], value[3]]) != VERSION {
        return Err(Errno::EOPNOTSUPP);
    }
    value[4..]
        .chunks_exact(8)
        .map(|e| {
            let tag = u16::from_le_bytes([e[0], e[1]]);
            let perm = u32::from(u16::from_le_bytes([e[2], e[3]]) & 7);
            let id = u32::from_le_bytes([e[4], e[5], e[6], e[7]]);
            let (kind, name) = match tag {
                USER_OBJ => (AclType::User, None),
                USER => (AclType::User, Some(ids.user_name(id))),
                GROUP_OBJ => (AclType::Group, None),
                GROUP => (AclType::Group, Some(ids.group_name(id))),
                MASK => (AclType::Mask, None),
                OTHER => (AclType::Other, None),
                _ => return Err(Errno::EINVAL),
            };
            Ok(AclEntry {
                scope,
                kind,
                name,
                perm,
            })
        })
        .collect()
}

/// The attribute value of `entries` (one scope's), in the order the kernel checks: owner, users
/// by id, owning group, groups by id, mask, other. A name without a local id is left out.
pub fn encode<'a>(entries: impl Iterator<Item = &'a AclEntry>, ids: &Ids) -> Vec<u8> {
    let mut raw: Vec<(u16, u32, u16)> = entries
        .filter_map(|e| {
            let perm = e.perm as u16;
            Some(match (e.kind, &e.name) {
                (AclType::User, None) => (USER_OBJ, UNDEFINED_ID, perm),
                (AclType::User, Some(n)) => (USER, ids.uid(n)?, perm),
                (AclType::Group, None) => (GROUP_OBJ, UNDEFINED_ID, perm),
                (AclType::Group, Some(n)) => (GROUP, ids.gid(n)?, perm),
                (AclType::Mask, _) => (MASK, UNDEFINED_ID, perm),
                (AclType::Other, _) => (OTHER, UNDEFINED_ID, perm),
            })
        })
        .collect();
    raw.sort();
    let mut out = VERSION.to_le_bytes().to_vec();
    for (tag, id, perm) in raw {
        out.extend_from_slice(&tag.to_le_bytes());
        out.extend_from_slice(&perm.to_le_bytes());
        out.extend_from_slice(&id.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_in_kernel_order() {
        let ids = Ids::default();
        let e = |kind, name: Option<&str>, perm| AclEntry {
            scope: AclScope::Access,
            kind,
            name: name.map(str::to_string),
            perm,
        };
        let acl = vec![
            e(AclType::Other, None, 4),
            e(AclType::Group, Some("root"), 5),
            e(AclType::User, None, 7),
            e(AclType::Mask, None, 7),
            e(AclType::User, Some("4242"), 6),
            e(AclType::Group, None, 5),
        ];
        let bytes = encode(acl.iter(), &ids);
        assert_eq!(bytes.len(), 4 + 6 * 8);
        let tags: Vec<u16> = bytes[4..]
            .chunks(8)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        assert_eq!(tags, [USER_OBJ, USER, GROUP_OBJ, GROUP, MASK, OTHER]);
        let mut back = decode(&bytes, AclScope::Access, &ids).unwrap();
        let mut want = acl;
        back.sort();
        want.sort();
        assert_eq!(back, want);
        assert_eq!(
            decode(&bytes[..7], AclScope::Access, &ids),
            Err(Errno::EINVAL)
        );
        let mut v3 = bytes.clone();
        v3[0] = 3;
        assert_eq!(decode(&v3, AclScope::Access, &ids), Err(Errno::EOPNOTSUPP));
    }
}
