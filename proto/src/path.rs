//! [`DfsPath`]: a path in the dfs namespace that is valid by construction.

use std::fmt;

/// Longest allowed path component, in bytes (as most local file systems).
pub const MAX_COMPONENT_LEN: usize = 255;
/// Longest allowed whole path, in bytes (Linux `PATH_MAX`, 4096, less its NUL).
pub const MAX_PATH_LEN: usize = 4095;

/// The prefix of inode paths, as HDFS has it: `/.reserved/.inodes/ID` names inode `ID` whatever
/// its names (or none: an open file unlinked since), and `/.reserved/.inodes/ID/a/b` the path
/// `a/b` below it. The name `.reserved` cannot be created in the root.
pub const INODES_PREFIX: &str = "/.reserved/.inodes/";
/// The root entry reserved for inode paths.
pub const RESERVED_NAME: &str = ".reserved";

/// An absolute, normalized dfs path: starts with `/`, no empty, `.` or `..` components, no
/// trailing slash (except the root itself), components of at most 255 bytes, no NUL byte.
///
/// ```
/// use dfs_proto::path::DfsPath;
/// let p = DfsPath::parse("/user/alice/data.csv").unwrap();
/// assert_eq!(p.file_name(), Some("data.csv"));
/// assert_eq!(p.parent().unwrap().as_str(), "/user/alice");
/// assert!(DfsPath::parse("/user/../etc").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DfsPath(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid path {path:?}: {reason}")]
pub struct InvalidPath {
    pub path: String,
    pub reason: &'static str,
    /// A component or the whole path is too long (ENAMETOOLONG, not EINVAL).
    pub too_long: bool,
}

impl DfsPath {
    pub fn root() -> Self {
        DfsPath("/".to_string())
    }

    pub fn parse(s: &str) -> Result<Self, InvalidPath> {
        let fail = |reason, too_long| {
            Err(InvalidPath {
                path: s.to_string(),
                reason,
                too_long,
            })
        };
        let bad = |reason| fail(reason, false);
        if !s.starts_with('/') {
            return bad("not absolute (must start with '/')");
        }
        if s.len() > MAX_PATH_LEN {
            return fail("longer than 4095 bytes", true);
        }
        if s.contains('\0') {
            return bad("contains a NUL byte");
        }
        if s == "/" {
            return Ok(Self::root());
        }
        if s.ends_with('/') {
            return bad("trailing '/'");
        }
        for c in s[1..].split('/') {
            match c {
                "" => return bad("empty component ('//')"),
                "." | ".." => return bad("'.' or '..' component"),
                c if c.len() > MAX_COMPONENT_LEN => {
                    return fail("component longer than 255 bytes", true)
                }
                _ => {}
            }
        }
        Ok(DfsPath(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_root(&self) -> bool {
        self.0 == "/"
    }

    /// The components after the root, in order; empty for the root.
    pub fn components(&self) -> impl Iterator<Item = &str> {
        self.0[1..].split('/').filter(|c| !c.is_empty())
    }

    /// The last component; `None` for the root.
    pub fn file_name(&self) -> Option<&str> {
        if self.is_root() {
            None
        } else {
            self.0.rsplit('/').next()
        }
    }

    /// The parent directory; `None` for the root.
    pub fn parent(&self) -> Option<DfsPath> {
        if self.is_root() {
            return None;
        }
        let i = self.0.rfind('/').unwrap_or(0);
        Some(if i == 0 {
            Self::root()
        } else {
            DfsPath(self.0[..i].to_string())
        })
    }

    /// This path with one more component; the name must be a valid component.
    pub fn join(&self, name: &str) -> Result<DfsPath, InvalidPath> {
        if name.contains('/') {
            return Err(InvalidPath {
                path: name.to_string(),
                reason: "a name may not contain '/'",
                too_long: false,
            });
        }
        if self.is_root() {
            DfsPath::parse(&format!("/{name}"))
        } else {
            DfsPath::parse(&format!("{}/{name}", self.0))
        }
    }

    /// The inode path of inode `id`.
    pub fn inode(id: u64) -> DfsPath {
        DfsPath(format!("{INODES_PREFIX}{id}"))
    }

    /// The inode path of entry `name` of directory inode `dir`.
    pub fn inode_child(dir: u64, name: &str) -> Result<DfsPath, InvalidPath> {
        DfsPath::inode(dir).join(name)
    }

    /// For an inode path, the inode id; the components below it are those after the first three
    /// (`.reserved`, `.inodes`, the id). A malformed id makes no inode path.
    pub fn inode_prefix(&self) -> Option<u64> {
        let rest = self.0.strip_prefix(INODES_PREFIX)?;
        let id = rest.split('/').next()?;
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) || id.starts_with('0') {
            return None;
        }
        id.parse().ok()
    }

    /// True when `self` is `other` or lies below it.
    pub fn starts_with(&self, other: &DfsPath) -> bool {
        other.is_root()
            || self.0 == other.0
            || (self.0.starts_with(&other.0) && self.0.as_bytes().get(other.0.len()) == Some(&b'/'))
    }
}

impl fmt::Display for DfsPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for DfsPath {
    type Err = InvalidPath;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DfsPath::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_normal_paths() {
        for p in ["/", "/a", "/a/b.c", "/with space/ünïcode"] {
            assert_eq!(DfsPath::parse(p).unwrap().as_str(), p);
        }
        assert_eq!(DfsPath::root().components().count(), 0);
        let p = DfsPath::parse("/a/b/c").unwrap();
        assert_eq!(p.components().collect::<Vec<_>>(), ["a", "b", "c"]);
        assert_eq!(
            p.parent().unwrap().parent().unwrap().parent().unwrap(),
            DfsPath::root()
        );
        assert_eq!(DfsPath::root().join("x").unwrap().as_str(), "/x");
    }

    #[test]
    fn rejects_every_bad_class() {
        let long = format!("/{}", "x".repeat(256));
        for p in [
            "",
            "a/b",
            "/a//b",
            "/a/./b",
            "/a/../b",
            "/a/",
            "/a\0b",
            long.as_str(),
        ] {
            assert!(DfsPath::parse(p).is_err(), "{p:?} accepted");
        }
        assert!(DfsPath::root().join("a/b").is_err());
        assert!(DfsPath::parse(&format!("/{}", "x".repeat(255))).is_ok());
    }

    #[test]
    fn too_long_is_its_own_kind() {
        let comp = DfsPath::parse(&format!("/{}", "x".repeat(256))).unwrap_err();
        assert!(comp.too_long);
        let whole = format!("/{}", vec!["y".repeat(200); 21].join("/"));
        assert!(whole.len() > MAX_PATH_LEN);
        assert!(DfsPath::parse(&whole).unwrap_err().too_long);
        assert!(!DfsPath::parse("/a//b").unwrap_err().too_long);
        assert!(DfsPath::parse(&format!("/{}", "z".repeat(MAX_PATH_LEN - 1))).is_err());
    }

    #[test]
    fn inode_paths() {
        assert_eq!(DfsPath::inode(42).as_str(), "/.reserved/.inodes/42");
        assert_eq!(DfsPath::inode(42).inode_prefix(), Some(42));
        let c = DfsPath::inode_child(7, "a b").unwrap();
        assert_eq!(c.as_str(), "/.reserved/.inodes/7/a b");
        assert_eq!(c.inode_prefix(), Some(7));
        for not in [
            "/.reserved/.inodes/x",
            "/.reserved/.inodes/07",
            "/.reserved/x/1",
            "/a/1",
        ] {
            assert_eq!(DfsPath::parse(not).unwrap().inode_prefix(), None, "{not}");
        }
        assert!(DfsPath::inode_child(7, "a/b").is_err());
    }

    #[test]
    fn prefix_is_by_component() {
        let a = DfsPath::parse("/a/b").unwrap();
        assert!(DfsPath::parse("/a/b/c").unwrap().starts_with(&a));
        assert!(a.starts_with(&a));
        assert!(!DfsPath::parse("/a/bc").unwrap().starts_with(&a));
        assert!(a.starts_with(&DfsPath::root()));
    }
}
