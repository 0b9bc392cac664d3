//! Path resolution. The NameNode never follows a symbolic link: one met before the last component
//! is [`Error::UnresolvedLink`], carrying the link's own path and the rest, for the client (or
//! the kernel) to resolve. An inode path (`/.reserved/.inodes/ID/...`) starts at inode `ID`
//! instead of the root; alone, it names that inode itself (a link included, orphans too) rather
//! than an entry of a directory.

use dfs_proto::path::{DfsPath, RESERVED_NAME};

use super::Namespace;
use crate::error::{Error, Result};
use crate::types::InodeId;

/// The resolved prefix of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Walk {
    /// Inodes of the components that exist, the start first (the root, or an inode path's inode).
    pub inodes: Vec<InodeId>,
    /// How many trailing components do not exist.
    pub missing: usize,
    /// The path's last component, if it has one below its start (the entry it names).
    pub name: Option<String>,
}

impl Walk {
    pub fn last(&self) -> InodeId {
        // `inodes` always holds at least the start.
        *self.inodes.last().unwrap_or(&InodeId::ROOT)
    }

    pub fn exists(&self) -> bool {
        self.missing == 0
    }

    /// The directory holding the entry the path names (the entry may not exist yet: then it is
    /// the last existing inode, when only the last component is missing). `None` for the root,
    /// a bare inode path, or a path missing more than its last component.
    pub fn parent(&self) -> Option<InodeId> {
        self.name.as_ref()?;
        match self.missing {
            0 if self.inodes.len() >= 2 => Some(self.inodes[self.inodes.len() - 2]),
            1 => Some(self.last()),
            _ => None,
        }
    }

    /// The (directory, name) of the entry the path names, which must exist.
    pub fn entry(&self) -> Option<(InodeId, &str)> {
        match (self.missing, self.parent(), self.name.as_deref()) {
            (0, Some(p), Some(n)) => Some((p, n)),
            _ => None,
        }
    }
}

impl Namespace {
    /// Resolves as much of `path` as exists. A non-directory met before the last component is
    /// [`Error::NotADirectory`], a symbolic link [`Error::UnresolvedLink`]; an inode path naming
    /// no inode is [`Error::NotFound`].
    pub fn walk(&self, path: &DfsPath) -> Result<Walk> {
        let comps: Vec<&str> = path.components().collect();
        let (start, skip) = match path.inode_prefix() {
            Some(id) if self.inodes.contains_key(&InodeId(id)) => (InodeId(id), 3),
            Some(_) => return Err(Error::NotFound(path.to_string())),
            None => (InodeId::ROOT, 0),
        };
        let rest = &comps[skip..];
        let mut w = Walk {
            inodes: vec![start],
            missing: 0,
            name: rest.last().map(|s| s.to_string()),
        };
        let mut cur = start;
        for (i, c) in rest.iter().enumerate() {
            let Some(inode) = self.inodes.get(&cur) else {
                break;
            };
            let prefix = || {
                let end = skip + i;
                format!("/{}", comps[..end].join("/"))
            };
            if inode.symlink().is_some() {
                return Err(Error::UnresolvedLink {
                    link: prefix(),
                    rest: rest[i..].join("/"),
                });
            }
            let Some(children) = inode.children() else {
                return Err(Error::NotADirectory(prefix()));
            };
            match children.get(*c) {
                Some(id) => {
                    w.inodes.push(*id);
                    cur = *id;
                }
                None => {
                    w.missing = rest.len() - i;
                    return Ok(w);
                }
            }
        }
        Ok(w)
    }

    /// The inode at `path`, or [`Error::NotFound`].
    pub fn resolve(&self, path: &DfsPath) -> Result<InodeId> {
        let w = self.walk(path)?;
        if w.missing > 0 {
            return Err(Error::NotFound(path.to_string()));
        }
        Ok(w.last())
    }

    /// The inode at `path` if it exists; `Ok(None)` when it (or an ancestor) does not.
    #[cfg(test)]
    pub fn lookup(&self, path: &DfsPath) -> Result<Option<InodeId>> {
        let w = self.walk(path)?;
        Ok((w.missing == 0).then(|| w.last()))
    }

    /// The inode at `path` for an operation on what a symbolic link points to (data, attributes,
    /// listings): a link as the last component is [`Error::UnresolvedLink`] too, unless the
    /// path is the link's bare inode path, which names the link itself.
    pub fn resolve_following(&self, path: &DfsPath) -> Result<(InodeId, Walk)> {
        let w = self.walk(path)?;
        if w.missing > 0 {
            return Err(Error::NotFound(path.to_string()));
        }
        let id = w.last();
        if w.name.is_some() && self.inodes.get(&id).is_some_and(|i| i.symlink().is_some()) {
            return Err(Error::UnresolvedLink {
                link: path.to_string(),
                rest: String::new(),
            });
        }
        Ok((id, w))
    }

    /// Where a new entry at `path` goes: its directory and name, the name free. Creating the
    /// root's `.reserved` is refused: inode paths start with it.
    pub fn new_entry(&self, path: &DfsPath) -> Result<(InodeId, String)> {
        let w = self.walk(path)?;
        if w.missing == 0 {
            return Err(Error::AlreadyExists(path.to_string()));
        }
        let (Some(parent), Some(name)) = (w.parent(), w.name.clone()) else {
            return Err(Error::NotFound(path.to_string()));
        };
        if !self.inodes.get(&parent).is_some_and(|i| i.is_dir()) {
            return Err(Error::NotADirectory(path.to_string()));
        }
        if parent == InodeId::ROOT && name == RESERVED_NAME {
            return Err(Error::InvalidArgument(format!(
                "{path}: /{RESERVED_NAME} is reserved for inode paths"
            )));
        }
        Ok((parent, name))
    }
}
