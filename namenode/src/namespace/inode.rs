//! [`Inode`]: one file, directory, symbolic link or special file, and what each kind holds.

use std::collections::BTreeMap;

use super::file::FileMeta;
use crate::acl::Acl;
use crate::types::{FileType, InodeId};

/// A directory's entries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DirMeta {
    pub children: BTreeMap<String, InodeId>,
    /// How many of the children are directories (a directory's link count is 2 + this).
    pub subdirs: u32,
}

/// The metadata-only kinds: the kernel gives them their behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpecialKind {
    Fifo,
    Socket,
    CharDevice,
    BlockDevice,
}

impl SpecialKind {
    pub fn file_type(self) -> FileType {
        match self {
            SpecialKind::Fifo => FileType::Fifo,
            SpecialKind::Socket => FileType::Socket,
            SpecialKind::CharDevice => FileType::CharDevice,
            SpecialKind::BlockDevice => FileType::BlockDevice,
        }
    }

    pub fn of(t: FileType) -> Option<SpecialKind> {
        Some(match t {
            FileType::Fifo => SpecialKind::Fifo,
            FileType::Socket => SpecialKind::Socket,
            FileType::CharDevice => SpecialKind::CharDevice,
            FileType::BlockDevice => SpecialKind::BlockDevice,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InodeKind {
    Dir(DirMeta),
    File(FileMeta),
    /// The target, any bytes but NUL: never interpreted by the NameNode.
    Symlink(Vec<u8>),
    Special {
        kind: SpecialKind,
        rdev: u64,
    },
}

/// One extended attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XAttr {
    pub name: String,
    pub value: Vec<u8>,
}

/// One inode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inode {
    pub id: InodeId,
    /// The directory of the inode's first entry: `InodeId(0)` for the root and for an orphan
    /// (an unlinked file kept while open). Further entries (hard links) are in
    /// `Namespace::links`.
    pub parent: InodeId,
    /// The first entry's name; empty for the root and orphans.
    pub name: String,
    /// Low 12 bits of a POSIX mode.
    pub permission: u32,
    pub owner: String,
    pub group: String,
    pub mtime_ms: u64,
    pub atime_ms: u64,
    /// Last change of the inode's status (mode, owner, links, names, attributes, data).
    pub ctime_ms: u64,
    /// Sorted by name.
    pub xattrs: Vec<XAttr>,
    pub acl: Acl,
    pub kind: InodeKind,
}

impl Inode {
    /// A new inode, all its times `time_ms`.
    pub fn new(
        id: InodeId,
        permission: u32,
        owner: &str,
        group: &str,
        time_ms: u64,
        kind: InodeKind,
    ) -> Inode {
        Inode {
            id,
            parent: InodeId(0),
            name: String::new(),
            permission: permission & 0o7777,
            owner: owner.to_string(),
            group: group.to_string(),
            mtime_ms: time_ms,
            atime_ms: time_ms,
            ctime_ms: time_ms,
            xattrs: Vec::new(),
            acl: Acl::default(),
            kind,
        }
    }

    pub fn is_dir(&self) -> bool {
        matches!(self.kind, InodeKind::Dir(_))
    }

    pub fn file_type(&self) -> FileType {
        match &self.kind {
            InodeKind::Dir(_) => FileType::Directory,
            InodeKind::File(_) => FileType::File,
            InodeKind::Symlink(_) => FileType::Symlink,
            InodeKind::Special { kind, .. } => kind.file_type(),
        }
    }

    pub fn file(&self) -> Option<&FileMeta> {
        match &self.kind {
            InodeKind::File(f) => Some(f),
            _ => None,
        }
    }

    pub(super) fn file_mut(&mut self) -> Option<&mut FileMeta> {
        match &mut self.kind {
            InodeKind::File(f) => Some(f),
            _ => None,
        }
    }

    pub fn dir(&self) -> Option<&DirMeta> {
        match &self.kind {
            InodeKind::Dir(d) => Some(d),
            _ => None,
        }
    }

    pub(super) fn dir_mut(&mut self) -> Option<&mut DirMeta> {
        match &mut self.kind {
            InodeKind::Dir(d) => Some(d),
            _ => None,
        }
    }

    pub fn children(&self) -> Option<&BTreeMap<String, InodeId>> {
        self.dir().map(|d| &d.children)
    }

    pub fn symlink(&self) -> Option<&[u8]> {
        match &self.kind {
            InodeKind::Symlink(t) => Some(t),
            _ => None,
        }
    }

    pub fn xattr(&self, name: &str) -> Option<&XAttr> {
        self.xattrs
            .binary_search_by(|x| x.name.as_str().cmp(name))
            .ok()
            .map(|i| &self.xattrs[i])
    }

    /// Sets or replaces `name`.
    pub(super) fn set_xattr(&mut self, name: &str, value: &[u8]) {
        match self.xattrs.binary_search_by(|x| x.name.as_str().cmp(name)) {
            Ok(i) => self.xattrs[i].value = value.to_vec(),
            Err(i) => self.xattrs.insert(
                i,
                XAttr {
                    name: name.to_string(),
                    value: value.to_vec(),
                },
            ),
        }
    }

    /// Removes `name`; whether it was there.
    pub(super) fn remove_xattr(&mut self, name: &str) -> bool {
        match self.xattrs.binary_search_by(|x| x.name.as_str().cmp(name)) {
            Ok(i) => {
                self.xattrs.remove(i);
                true
            }
            Err(_) => false,
        }
    }
}
