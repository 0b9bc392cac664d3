//! [`DfsPath`]: a path in the dfs namespace that is valid by construction.

use std::fmt;

/// Longest allowed path component, in bytes (as most local file systems).
pub const MAX_COMPONENT_LEN: usize = 255;
/// Longest allowed whole path, in bytes (Linux `PATH_MAX`).
pub const MAX_PATH_LEN: usize = 4096;

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
}

impl DfsPath {
    pub fn root() -> Self {
        DfsPath("/".to_string())
    }

    pub fn parse(s: &str) -> Result<Self, InvalidPath> {
        let bad = |reason| {
            Err(InvalidPath {
                path: s.to_string(),
                reason,
            })
        };
        if !s.starts_with('/') {
            return bad("not absolute (must start with '/')");
        }
        if s.len() > MAX_PATH_LEN {
            return bad("longer than 4096 bytes");
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
                c if c.len() > MAX_COMPONENT_LEN => return bad("component longer than 255 bytes"),
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
            });
        }
        if self.is_root() {
            DfsPath::parse(&format!("/{name}"))
        } else {
            DfsPath::parse(&format!("{}/{name}", self.0))
        }
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
    fn prefix_is_by_component() {
        let a = DfsPath::parse("/a/b").unwrap();
        assert!(DfsPath::parse("/a/b/c").unwrap().starts_with(&a));
        assert!(a.starts_with(&a));
        assert!(!DfsPath::parse("/a/bc").unwrap().starts_with(&a));
        assert!(a.starts_with(&DfsPath::root()));
    }
}
