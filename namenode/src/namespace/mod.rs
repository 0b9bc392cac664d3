//! The inode tree: pure, synchronous, no I/O.
//!
//! Mutations happen only through [`Namespace::apply`] with an [`Op`]; the caller (the `fsn`
//! layer) has already validated the request and decided every id and timestamp, so `apply` is
//! deterministic and the same code replays the edit log. `apply` still re-checks structure (the
//! parent exists, the name is free ...) so a damaged log is refused instead of corrupting memory.
//!
//! Module map:
//! - `inode`: [`Inode`] and its kinds (directory, file, symbolic link, special file).
//! - `file`: [`FileMeta`], a file's blocks and the extents mapping its bytes onto them.
//! - `walk`: path resolution ([`Walk`]): inode paths, and symbolic links never followed.
//! - `apply`: every mutation.
//!
//! Invariants: every inode but the root and orphans is named by at least one directory entry;
//! a directory by exactly one (its `parent`/`name`), a non-directory by its first entry plus the
//! hard links in `links`. An *orphan* is a file that lost its last entry while clients held it
//! open: it stays, with its blocks, reachable only by inode path, until its last holder releases
//! it. The namespace also owns the block → file index and the counters that must survive
//! restarts (next inode id, next block id, the global generation stamp).

mod apply;
mod file;
mod inode;
mod walk;

#[cfg(test)]
pub(crate) mod tests;

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::ops::Bound;

use dfs_proto::path::DfsPath;

use crate::error::{Error, Result};
use crate::types::{
    Block, BlockId, ContentSummary, FileStatus, FileType, GenStamp, InodeId, FIRST_BLOCK_ID,
    FIRST_GEN_STAMP,
};

pub use file::{Extent, FileMeta};
pub use inode::{DirMeta, Inode, InodeKind, SpecialKind, XAttr};
pub use walk::Walk;

/// A file's link count may not pass this (ext4's limit; `link` then fails with EMLINK).
pub const MAX_LINKS: u32 = 65_000;

/// What an applied op removed, so the caller can drop replicas, leases and pending work.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Applied {
    pub removed_blocks: Vec<Block>,
    /// Files deleted for good.
    pub removed_files: Vec<InodeId>,
    /// Files that lost their last name and stay for their holders.
    pub orphaned: Vec<InodeId>,
}

/// Counters persisted in the image header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counters {
    pub next_inode_id: u64,
    pub next_block_id: u64,
    pub gen_stamp: u64,
}

/// An inode as an image stores it: the inode, its further names, and its holders when it is an
/// orphan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageEntry {
    pub inode: Inode,
    pub links: Vec<(InodeId, String)>,
    pub orphan_holders: Vec<String>,
}

/// The whole namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespace {
    inodes: HashMap<InodeId, Inode>,
    /// Entries naming a non-directory beyond its first: (directory, name).
    links: HashMap<InodeId, Vec<(InodeId, String)>>,
    /// Orphans and the clients holding each open.
    orphans: HashMap<InodeId, BTreeSet<String>>,
    block_index: HashMap<BlockId, InodeId>,
    next_inode_id: u64,
    next_block_id: u64,
    gen_stamp: u64,
    files: u64,
    dirs: u64,
}

/// The id after `id` (the next one to hand out). Only a damaged or hostile image or edit log can
/// hold `u64::MAX`, which must be refused rather than overflow.
fn id_after(id: u64, what: &str) -> Result<u64> {
    id.checked_add(1)
        .ok_or_else(|| Error::Corrupt(format!("{what} {id} leaves no id to hand out after it")))
}

/// Why `name` cannot be a path component (the rules of [`DfsPath`]), if it cannot.
fn invalid_name(name: &str) -> Option<&'static str> {
    if name.is_empty() || name == "." || name == ".." {
        Some("empty, '.' or '..'")
    } else if name.contains('/') || name.contains('\0') {
        Some("contains '/' or a NUL byte")
    } else if name.len() > dfs_proto::path::MAX_COMPONENT_LEN {
        Some("longer than 255 bytes")
    } else {
        None
    }
}

impl Namespace {
    /// A fresh namespace: just the root, owned by the superuser.
    pub fn new(owner: &str, group: &str, mtime_ms: u64) -> Namespace {
        let root = Inode::new(
            InodeId::ROOT,
            0o755,
            owner,
            group,
            mtime_ms,
            InodeKind::Dir(DirMeta::default()),
        );
        Namespace {
            inodes: HashMap::from([(InodeId::ROOT, root)]),
            links: HashMap::new(),
            orphans: HashMap::new(),
            block_index: HashMap::new(),
            next_inode_id: InodeId::ROOT.0 + 1,
            next_block_id: FIRST_BLOCK_ID,
            gen_stamp: FIRST_GEN_STAMP,
            files: 0,
            dirs: 1,
        }
    }

    /// Rebuilds a namespace from image entries: the root first, every other inode after its
    /// first entry's directory, orphans (no parent) anywhere after the root. Every structural
    /// invariant is checked (parents exist and are directories, unique names, ids and block ids,
    /// directories named once); counters end up past every used value whatever the header said.
    pub fn from_image(entries: Vec<ImageEntry>, counters: Counters) -> Result<Namespace> {
        let bad = |m: String| Err(Error::Corrupt(format!("image: {m}")));
        let mut it = entries.into_iter();
        let Some(first) = it.next() else {
            return bad("no root inode".into());
        };
        let mut root = first.inode;
        if root.id != InodeId::ROOT
            || root.parent != InodeId(0)
            || !root.is_dir()
            || !root.name.is_empty()
            || !first.links.is_empty()
        {
            return bad(format!(
                "first inode {} ({:?}) is not the root directory",
                root.id, root.name
            ));
        }
        root.kind = InodeKind::Dir(DirMeta::default());
        let mut ns = Namespace::new(&root.owner, &root.group, root.mtime_ms);
        ns.inodes.insert(InodeId::ROOT, root);
        ns.next_inode_id = counters.next_inode_id.max(2);
        ns.next_block_id = counters.next_block_id.max(FIRST_BLOCK_ID);
        ns.gen_stamp = counters.gen_stamp.max(FIRST_GEN_STAMP);
        let mut deferred_links = Vec::new();
        for e in it {
            let id = e.inode.id;
            if let Err(m) = ns.load_inode(e.inode, !e.orphan_holders.is_empty()) {
                return bad(m);
            }
            if !e.orphan_holders.is_empty() {
                ns.orphans
                    .insert(id, e.orphan_holders.into_iter().collect());
            }
            deferred_links.extend(e.links.into_iter().map(|l| (id, l)));
        }
        // Hard links last: their directories may come after the inode.
        for (id, (dir, name)) in deferred_links {
            if let Some(why) = invalid_name(&name) {
                return bad(format!("link {name:?} of inode {id}: {why}"));
            }
            if ns.inodes.get(&id).is_none_or(Inode::is_dir) || ns.orphans.contains_key(&id) {
                return bad(format!("inode {id} cannot have hard links"));
            }
            let Some(d) = ns.inodes.get_mut(&dir).and_then(Inode::dir_mut) else {
                return bad(format!(
                    "link of inode {id} in {dir}, which is no directory"
                ));
            };
            if d.children.insert(name.clone(), id).is_some() {
                return bad(format!("two entries named {name:?} in directory {dir}"));
            }
            ns.links.entry(id).or_default().push((dir, name));
        }
        Ok(ns)
    }

    /// One image inode into the tree (see [`Namespace::from_image`]); the reason when it cannot.
    fn load_inode(&mut self, mut inode: Inode, orphan: bool) -> std::result::Result<(), String> {
        let id = inode.id;
        if id.0 == 0 || self.inodes.contains_key(&id) {
            return Err(format!("duplicate or zero inode id {id}"));
        }
        let next_inode = id_after(id.0, "inode id").map_err(|e| e.to_string())?;
        if orphan {
            if inode.parent != InodeId(0) || !inode.name.is_empty() || inode.file().is_none() {
                return Err(format!("orphan {id} is named or is no file"));
            }
        } else {
            if let Some(why) = invalid_name(&inode.name) {
                return Err(format!(
                    "inode {id} has an invalid name {:?}: {why}",
                    inode.name
                ));
            }
            let is_dir = inode.is_dir();
            let Some(parent) = self.inodes.get_mut(&inode.parent) else {
                return Err(format!(
                    "inode {id} comes before its parent {}",
                    inode.parent
                ));
            };
            let Some(d) = parent.dir_mut() else {
                return Err(format!(
                    "parent {} of inode {id} is no directory",
                    inode.parent
                ));
            };
            if d.children.insert(inode.name.clone(), id).is_some() {
                return Err(format!(
                    "two entries named {:?} in directory {}",
                    inode.name, inode.parent
                ));
            }
            d.subdirs += u32::from(is_dir);
        }
        match &mut inode.kind {
            InodeKind::Dir(d) => {
                *d = DirMeta::default();
                self.dirs += 1;
            }
            InodeKind::File(f) => {
                self.files += 1;
                for b in &f.blocks {
                    if self.block_index.insert(b.id, id).is_some() {
                        return Err(format!("{} belongs to two files", b.id));
                    }
                    let next_block = id_after(b.id.0, "block id").map_err(|e| e.to_string())?;
                    self.next_block_id = self.next_block_id.max(next_block);
                    self.gen_stamp = self.gen_stamp.max(b.gs.0);
                }
            }
            InodeKind::Symlink(_) | InodeKind::Special { .. } => self.files += 1,
        }
        self.next_inode_id = self.next_inode_id.max(next_inode);
        self.inodes.insert(id, inode);
        Ok(())
    }

    /// Every inode as the image stores it: the root first, each inode after the directory of its
    /// first entry (breadth first), then the orphans.
    pub fn image_entries(&self) -> Vec<ImageEntry> {
        let mut out = Vec::with_capacity(self.inodes.len());
        let mut queue = VecDeque::from([InodeId::ROOT]);
        while let Some(id) = queue.pop_front() {
            let Some(inode) = self.inodes.get(&id) else {
                continue;
            };
            if let Some(d) = inode.dir() {
                // A hard-linked inode is visited from its first entry only.
                queue.extend(d.children.iter().filter_map(|(name, c)| {
                    let child = self.inodes.get(c)?;
                    (child.parent == id && child.name == *name).then_some(*c)
                }));
            }
            out.push(self.image_entry(inode));
        }
        let mut orphans: Vec<&InodeId> = self.orphans.keys().collect();
        orphans.sort();
        out.extend(
            orphans
                .into_iter()
                .filter_map(|id| self.inodes.get(id))
                .map(|i| self.image_entry(i)),
        );
        out
    }

    fn image_entry(&self, inode: &Inode) -> ImageEntry {
        ImageEntry {
            inode: inode.clone(),
            links: self.links.get(&inode.id).cloned().unwrap_or_default(),
            orphan_holders: self
                .orphans
                .get(&inode.id)
                .map(|h| h.iter().cloned().collect())
                .unwrap_or_default(),
        }
    }

    pub fn counters(&self) -> Counters {
        Counters {
            next_inode_id: self.next_inode_id,
            next_block_id: self.next_block_id,
            gen_stamp: self.gen_stamp,
        }
    }

    /// The id the next new inode gets (the caller logs it in the op).
    pub fn next_inode_id(&self) -> InodeId {
        InodeId(self.next_inode_id)
    }

    /// The id the next new block gets.
    pub fn next_block_id(&self) -> BlockId {
        BlockId(self.next_block_id)
    }

    /// The current global generation stamp.
    pub fn gen_stamp(&self) -> GenStamp {
        GenStamp(self.gen_stamp)
    }

    /// Non-directory inodes (orphans included).
    pub fn num_files(&self) -> u64 {
        self.files
    }

    pub fn num_dirs(&self) -> u64 {
        self.dirs
    }

    pub fn num_blocks(&self) -> u64 {
        self.block_index.len() as u64
    }

    pub fn inode(&self, id: InodeId) -> Option<&Inode> {
        self.inodes.get(&id)
    }

    pub fn file(&self, id: InodeId) -> Option<&FileMeta> {
        self.inodes.get(&id).and_then(Inode::file)
    }

    /// Every block id with its file.
    pub fn blocks(&self) -> impl Iterator<Item = (BlockId, InodeId)> + '_ {
        self.block_index.iter().map(|(b, i)| (*b, *i))
    }

    /// The file holding a block, and the block's index among the file's blocks.
    pub fn block_file(&self, id: BlockId) -> Option<(InodeId, &FileMeta, usize)> {
        let inode = *self.block_index.get(&id)?;
        let file = self.file(inode)?;
        // Search from the end: the blocks asked about most are the last ones being written.
        let idx = file.blocks.iter().rposition(|b| b.id == id)?;
        Some((inode, file, idx))
    }

    /// Files under construction with their lease holders.
    pub fn files_under_construction(&self) -> Vec<(InodeId, String)> {
        self.inodes
            .values()
            .filter_map(|i| Some((i.id, i.file()?.client.clone()?)))
            .collect()
    }

    /// Every orphan with its holders.
    pub fn orphans(&self) -> impl Iterator<Item = (InodeId, &BTreeSet<String>)> + '_ {
        self.orphans.iter().map(|(i, h)| (*i, h))
    }

    pub fn is_orphan(&self, id: InodeId) -> bool {
        self.orphans.contains_key(&id)
    }

    /// How many directory entries name `id` (0 for an orphan); 2 + subdirectories for a
    /// directory.
    pub fn nlink(&self, id: InodeId) -> u32 {
        match self.inodes.get(&id) {
            None => 0,
            Some(i) => match &i.kind {
                InodeKind::Dir(d) => 2 + d.subdirs,
                _ if self.orphans.contains_key(&id) => 0,
                _ => 1 + self.links.get(&id).map_or(0, |l| l.len() as u32),
            },
        }
    }

    /// A path of an inode: the one through first entries, or its inode path for an orphan.
    pub fn path_of(&self, id: InodeId) -> String {
        if self.orphans.contains_key(&id) {
            return DfsPath::inode(id.0).to_string();
        }
        let mut names = Vec::new();
        let mut cur = id;
        while let Some(inode) = self.inodes.get(&cur) {
            if inode.id == InodeId::ROOT || names.len() > self.inodes.len() {
                break;
            }
            names.push(inode.name.as_str());
            cur = inode.parent;
        }
        names.reverse();
        format!("/{}", names.join("/"))
    }

    /// Whether `dir` is `ancestor` or lies below it.
    pub fn is_within(&self, dir: InodeId, ancestor: InodeId) -> bool {
        let mut cur = dir;
        for _ in 0..=self.inodes.len() {
            if cur == ancestor {
                return true;
            }
            match self.inodes.get(&cur) {
                Some(i) if i.parent.0 != 0 => cur = i.parent,
                _ => return false,
            }
        }
        false
    }

    /// `stat` of an inode, under its first name.
    pub fn status(&self, id: InodeId) -> Option<FileStatus> {
        let name = self.inodes.get(&id)?.name.clone();
        self.status_named(id, name)
    }

    /// `stat` of an inode as the entry `name` shows it.
    pub fn status_named(&self, id: InodeId, name: String) -> Option<FileStatus> {
        let inode = self.inodes.get(&id)?;
        let mut st = FileStatus {
            name,
            file_type: inode.file_type(),
            length: 0,
            replication: 0,
            block_size: 0,
            mtime_ms: inode.mtime_ms,
            atime_ms: inode.atime_ms,
            permission: inode.permission,
            owner: inode.owner.clone(),
            group: inode.group.clone(),
            inode_id: inode.id,
            children_num: 0,
            under_construction: false,
            lease_holder: String::new(),
            symlink: Vec::new(),
            nlink: self.nlink(id),
            ctime_ms: inode.ctime_ms,
            rdev: 0,
            has_acl: !inode.acl.is_empty(),
            has_xattrs: !inode.xattrs.is_empty(),
        };
        match &inode.kind {
            InodeKind::Dir(d) => st.children_num = d.children.len() as u64,
            InodeKind::File(f) => {
                st.length = f.length();
                st.replication = f.replication;
                st.block_size = f.block_size;
                st.under_construction = f.under_construction();
                st.lease_holder = f.client.clone().unwrap_or_default();
            }
            InodeKind::Symlink(t) => {
                st.symlink = t.clone();
                st.length = t.len() as u64;
            }
            InodeKind::Special { rdev, .. } => st.rdev = *rdev,
        }
        Some(st)
    }

    /// One page of a listing: at most `limit` entries sorted by name strictly after
    /// `start_after`, and 1 when more entries follow the page (0 when it ends the listing). A
    /// non-directory lists as itself.
    ///
    /// The rest of the directory is never counted: a page costs O(limit · log n) under the
    /// namespace lock, so paging through a directory of a million entries stays linear.
    pub fn list(&self, id: InodeId, start_after: &str, limit: usize) -> (Vec<FileStatus>, u64) {
        let Some(inode) = self.inodes.get(&id) else {
            return (Vec::new(), 0);
        };
        let Some(children) = inode.children() else {
            return (self.status(id).into_iter().collect(), 0);
        };
        let range = if start_after.is_empty() {
            children.range::<str, _>((Bound::Unbounded, Bound::Unbounded))
        } else {
            children.range::<str, _>((Bound::Excluded(start_after), Bound::Unbounded))
        };
        let mut page = range.take(limit.saturating_add(1));
        let entries = page
            .by_ref()
            .take(limit)
            .filter_map(|(name, child)| self.status_named(*child, name.clone()))
            .collect();
        let more = page.next().is_some();
        (entries, u64::from(more))
    }

    /// Every inode of a subtree once, parents first (a hard-linked file met twice counts once).
    pub fn subtree(&self, id: InodeId) -> Vec<InodeId> {
        let mut out = Vec::new();
        let mut linked = HashSet::new();
        let mut stack = vec![id];
        while let Some(cur) = stack.pop() {
            let Some(inode) = self.inodes.get(&cur) else {
                continue;
            };
            if self.links.contains_key(&cur) && !linked.insert(cur) {
                continue;
            }
            out.push(cur);
            if let Some(children) = inode.children() {
                stack.extend(children.values().rev().copied());
            }
        }
        out
    }

    /// Recursive length, counts and raw space of a subtree (a directory counts itself, a file
    /// with several names once).
    pub fn content_summary(&self, id: InodeId) -> ContentSummary {
        let mut s = ContentSummary::default();
        for i in self.subtree(id) {
            match self.inodes.get(&i).map(|n| &n.kind) {
                Some(InodeKind::Dir(_)) => s.directory_count += 1,
                Some(InodeKind::File(f)) => {
                    s.file_count += 1;
                    s.length += f.length();
                    s.space_consumed += f.stored_bytes() * u64::from(f.replication);
                }
                Some(InodeKind::Symlink(_) | InodeKind::Special { .. }) => s.file_count += 1,
                None => {}
            }
        }
        s
    }

    /// The file type of `id`, if it exists.
    pub fn file_type(&self, id: InodeId) -> Option<FileType> {
        self.inodes.get(&id).map(Inode::file_type)
    }
}
