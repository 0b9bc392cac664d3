//! Shell commands for links, extended attributes and ACLs: `ln`, `chgrp`, `getfattr`,
//! `setfattr`, `getfacl`, `setfacl` (the last four with `hdfs dfs`'s flags and output).

use anyhow::{anyhow, bail, Result};
use dfs_client::{AclEntry, AclScope, AclType, EntryOptions, XAttrFlag};

use super::{norm, outln, Shell};

/// How `getfattr -e` prints values, and how `setfattr -v` reads them.
fn encode(value: &[u8], encoding: Option<&str>) -> String {
    match encoding {
        Some("hex") => format!(
            "0x{}",
            value.iter().map(|b| format!("{b:02x}")).collect::<String>()
        ),
        Some("base64") => format!("0s{}", base64(value)),
        _ => format!("\"{}\"", String::from_utf8_lossy(value)),
    }
}

fn decode(value: &str) -> Result<Vec<u8>> {
    if let Some(hex) = value
        .strip_prefix("0x")
        .or_else(|| value.strip_prefix("0X"))
    {
        if hex.len() % 2 != 0 {
            bail!("setfattr: {value:?} is not hex (an odd number of digits)");
        }
        return (0..hex.len())
            .step_by(2)
            .map(|i| {
                u8::from_str_radix(&hex[i..i + 2], 16)
                    .map_err(|_| anyhow!("setfattr: {value:?} is not hex"))
            })
            .collect();
    }
    if let Some(b64) = value
        .strip_prefix("0s")
        .or_else(|| value.strip_prefix("0S"))
    {
        return unbase64(b64).ok_or_else(|| anyhow!("setfattr: {value:?} is not base64"));
    }
    let text = value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value);
    Ok(text.as_bytes().to_vec())
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64(data: &[u8]) -> String {
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let n = chunk.iter().fold(0u32, |n, b| (n << 8) | u32::from(*b)) << (8 * (3 - chunk.len()));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn unbase64(s: &str) -> Option<Vec<u8>> {
    let s = s.trim_end_matches('=');
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes() {
        acc = (acc << 6) | B64.iter().position(|x| *x == c)? as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

impl Shell {
    /// `ln [-s] TARGET LINK`.
    pub(super) async fn ln(&self, symbolic: bool, target: &str, link: &str) -> Result<()> {
        let link = norm(link);
        if symbolic {
            self.client
                .create_symlink(target.as_bytes(), &link, EntryOptions::default())
                .await?;
        } else {
            self.client.link(&norm(target), &link).await?;
        }
        Ok(())
    }

    pub(super) async fn chgrp(&self, group: &str, paths: &[String], recursive: bool) -> Result<()> {
        for p in paths {
            for f in self.maybe_recursive(&norm(p), recursive).await? {
                self.client.set_owner(&f, None, Some(group)).await?;
            }
        }
        Ok(())
    }

    pub(super) async fn getfattr(
        &self,
        path: &str,
        name: Option<&str>,
        encoding: Option<&str>,
        recursive: bool,
    ) -> Result<()> {
        for p in self.maybe_recursive(&norm(path), recursive).await? {
            outln!("# file: {p}");
            match name {
                Some(n) => {
                    let v = self.client.get_xattr(&p, n).await?;
                    outln!("{n}={}", encode(&v, encoding));
                }
                None => {
                    for x in self.client.get_xattrs(&p).await? {
                        outln!("{}={}", x.name, encode(&x.value, encoding));
                    }
                }
            }
            outln!();
        }
        Ok(())
    }

    pub(super) async fn setfattr(
        &self,
        path: &str,
        name: Option<&str>,
        value: Option<&str>,
        remove: Option<&str>,
    ) -> Result<()> {
        let path = norm(path);
        match (name, remove) {
            (Some(n), None) => {
                let v = value.map(decode).transpose()?.unwrap_or_default();
                self.client.set_xattr(&path, n, &v, XAttrFlag::Any).await?;
            }
            (None, Some(n)) => self.client.remove_xattr(&path, n).await?,
            _ => bail!("setfattr: give -n NAME [-v VALUE] or -x NAME"),
        }
        Ok(())
    }

    pub(super) async fn getfacl(&self, path: &str, recursive: bool) -> Result<()> {
        for p in self.maybe_recursive(&norm(path), recursive).await? {
            let acl = self.client.get_acl(&p).await?;
            outln!("# file: {p}");
            outln!("# owner: {}", acl.owner);
            outln!("# group: {}", acl.group);
            if acl.sticky {
                outln!("# flags: --t");
            }
            for e in acl.full() {
                outln!("{e}");
            }
            outln!();
        }
        Ok(())
    }

    pub(super) async fn setfacl(
        &self,
        path: &str,
        change: &AclChange,
        recursive: bool,
    ) -> Result<()> {
        for p in self.maybe_recursive(&norm(path), recursive).await? {
            match change {
                AclChange::Set(spec) => self.client.set_acl(&p, spec).await?,
                AclChange::Modify(spec) => self.client.modify_acl_entries(&p, spec).await?,
                AclChange::Remove(spec) => self.client.remove_acl_entries(&p, spec).await?,
                AclChange::RemoveAll => self.client.remove_acl(&p).await?,
                AclChange::RemoveDefault => self.client.remove_default_acl(&p).await?,
            }
        }
        Ok(())
    }
}

/// What `setfacl` was asked to do.
pub(super) enum AclChange {
    Set(Vec<AclEntry>),
    Modify(Vec<AclEntry>),
    Remove(Vec<AclEntry>),
    RemoveAll,
    RemoveDefault,
}

impl AclChange {
    /// Exactly one of `setfacl`'s operations.
    pub(super) fn from_flags(
        remove_all: bool,
        remove_default: bool,
        modify: Option<&str>,
        remove: Option<&str>,
        set: Option<&str>,
    ) -> Result<AclChange> {
        let spec = |s: &str| AclEntry::parse_spec(s).map_err(|e| anyhow!("setfacl: {e}"));
        let given = [
            remove_all,
            remove_default,
            modify.is_some(),
            remove.is_some(),
            set.is_some(),
        ]
        .iter()
        .filter(|x| **x)
        .count();
        if given != 1 {
            bail!("setfacl: give exactly one of -b, -k, -m SPEC, -x SPEC, --set SPEC");
        }
        Ok(if remove_all {
            AclChange::RemoveAll
        } else if remove_default {
            AclChange::RemoveDefault
        } else if let Some(m) = modify {
            AclChange::Modify(spec(m)?)
        } else if let Some(x) = remove {
            AclChange::Remove(spec(x)?)
        } else {
            let s = spec(set.unwrap_or_default())?;
            let base = |kind| {
                s.iter()
                    .any(|e| e.scope == AclScope::Access && e.kind == kind && e.name.is_none())
            };
            if !(base(AclType::User) && base(AclType::Group) && base(AclType::Other)) {
                bail!("setfacl: --set needs entries for user::, group:: and other::");
            }
            AclChange::Set(s)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_encode_and_decode_as_getfattr_and_setfattr_write_them() {
        for v in [&b""[..], b"a", b"ab", b"abc", b"\x00\xff binary"] {
            assert_eq!(decode(&encode(v, Some("hex"))).unwrap(), v);
            assert_eq!(decode(&encode(v, Some("base64"))).unwrap(), v);
        }
        assert_eq!(encode(b"hi", None), "\"hi\"");
        assert_eq!(encode(b"hi", Some("base64")), "0saGk=");
        assert_eq!(decode("\"quoted\"").unwrap(), b"quoted");
        assert_eq!(decode("plain").unwrap(), b"plain");
        assert!(decode("0xabc").is_err() && decode("0s!!").is_err());
        assert!(AclChange::from_flags(true, true, None, None, None).is_err());
        assert!(AclChange::from_flags(false, false, None, None, Some("user:bob:r")).is_err());
    }
}
