//! The inode tree: pure, synchronous, no I/O.
//!
//! Mutations happen only through [`Namespace::apply`] with an [`Op`]; the caller (the `fsn`
//! layer) has already validated the request and decided every id and timestamp, so `apply` is
//! deterministic and the same code replays the edit log. `apply` still re-checks structure (the
//! parent exists, the name is free ...) so a damaged log is refused instead of corrupting memory.
//!
//! The namespace also owns the block → file index and the counters that must survive restarts
//! (next inode id, next block id, the global generation stamp).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ops::Bound;

use dfs_proto::path::DfsPath;

use crate::error::{Error, Result};
use crate::op::Op;
use crate::types::{
    Block, BlockId, ContentSummary, FileStatus, FileType, GenStamp, InodeId, FIRST_BLOCK_ID,
    FIRST_GEN_STAMP,
};

/// A file's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileMeta {
    pub replication: u32,
    pub block_size: u64,
    pub blocks: Vec<Block>,
    /// `Some(lease holder)` while the file is under construction.
    pub client: Option<String>,
}

impl FileMeta {
    pub fn length(&self) -> u64 {
        self.blocks.iter().map(|b| b.num_bytes).sum()
    }

    pub fn under_construction(&self) -> bool {
        self.client.is_some()
    }

    /// Whether block `idx` is complete: every block is, except the last block of a file under
    /// construction (the one being written).
    pub fn block_complete(&self, idx: usize) -> bool {
        !(self.under_construction() && idx + 1 == self.blocks.len())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InodeKind {
    Dir { children: BTreeMap<String, InodeId> },
    File(FileMeta),
}

/// One file or directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inode {
    pub id: InodeId,
    /// `InodeId(0)` for the root.
    pub parent: InodeId,
    /// Empty for the root.
    pub name: String,
    /// Low 12 bits of a POSIX mode.
    pub permission: u32,
    pub owner: String,
    pub group: String,
    pub mtime_ms: u64,
    pub atime_ms: u64,
    pub kind: InodeKind,
}

impl Inode {
    pub fn is_dir(&self) -> bool {
        matches!(self.kind, InodeKind::Dir { .. })
    }

    pub fn file(&self) -> Option<&FileMeta> {
        match &self.kind {
            InodeKind::File(f) => Some(f),
            InodeKind::Dir { .. } => None,
        }
    }

    fn file_mut(&mut self) -> Option<&mut FileMeta> {
        match &mut self.kind {
            InodeKind::File(f) => Some(f),
            InodeKind::Dir { .. } => None,
        }
    }

    pub fn children(&self) -> Option<&BTreeMap<String, InodeId>> {
        match &self.kind {
            InodeKind::Dir { children } => Some(children),
            InodeKind::File(_) => None,
        }
    }
}

/// What an applied op removed, so the caller can drop replicas, leases and pending work.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Applied {
    pub removed_blocks: Vec<Block>,
    pub removed_files: Vec<InodeId>,
}

/// The resolved prefix of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Walk {
    /// Inodes of the components that exist, the root first.
    pub inodes: Vec<InodeId>,
    /// How many trailing components do not exist.
    pub missing: usize,
}

impl Walk {
    pub fn last(&self) -> InodeId {
        // `inodes` always holds at least the root.
        *self.inodes.last().unwrap_or(&InodeId::ROOT)
    }
}

/// Counters persisted in the image header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counters {
    pub next_inode_id: u64,
    pub next_block_id: u64,
    pub gen_stamp: u64,
}

/// The whole namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespace {
    inodes: HashMap<InodeId, Inode>,
    block_index: HashMap<BlockId, InodeId>,
    next_inode_id: u64,
    next_block_id: u64,
    gen_stamp: u64,
    files: u64,
    dirs: u64,
}

fn not_found(p: &DfsPath) -> Error {
    Error::NotFound(p.to_string())
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
        let root = Inode {
            id: InodeId::ROOT,
            parent: InodeId(0),
            name: String::new(),
            permission: 0o755,
            owner: owner.to_string(),
            group: group.to_string(),
            mtime_ms,
            atime_ms: mtime_ms,
            kind: InodeKind::Dir {
                children: BTreeMap::new(),
            },
        };
        Namespace {
            inodes: HashMap::from([(InodeId::ROOT, root)]),
            block_index: HashMap::new(),
            next_inode_id: InodeId::ROOT.0 + 1,
            next_block_id: FIRST_BLOCK_ID,
            gen_stamp: FIRST_GEN_STAMP,
            files: 0,
            dirs: 1,
        }
    }

    /// Rebuilds a namespace from image inodes in parent-before-child order, checking every
    /// structural invariant (root first, parents exist and are directories, unique names, ids and
    /// block ids). Counters end up past every used value whatever the header said.
    pub fn from_inodes(inodes: Vec<Inode>, counters: Counters) -> Result<Namespace> {
        let bad = |m: String| Err(Error::Corrupt(format!("image: {m}")));
        let mut it = inodes.into_iter();
        let Some(mut root) = it.next() else {
            return bad("no root inode".into());
        };
        if root.id != InodeId::ROOT
            || root.parent != InodeId(0)
            || !root.is_dir()
            || !root.name.is_empty()
        {
            return bad(format!(
                "first inode {} ({:?}) is not the root directory",
                root.id, root.name
            ));
        }
        root.kind = InodeKind::Dir {
            children: BTreeMap::new(),
        };
        let mut ns = Namespace::new(&root.owner, &root.group, root.mtime_ms);
        ns.inodes.insert(InodeId::ROOT, root);
        ns.next_inode_id = counters.next_inode_id.max(2);
        ns.next_block_id = counters.next_block_id.max(FIRST_BLOCK_ID);
        ns.gen_stamp = counters.gen_stamp.max(FIRST_GEN_STAMP);
        for mut inode in it {
            if inode.id.0 == 0 || ns.inodes.contains_key(&inode.id) {
                return bad(format!("duplicate or zero inode id {}", inode.id));
            }
            if let Some(why) = invalid_name(&inode.name) {
                return bad(format!(
                    "inode {} has an invalid name {:?}: {why}",
                    inode.id, inode.name
                ));
            }
            let next_inode = match id_after(inode.id.0, "inode id") {
                Ok(n) => n,
                Err(e) => return bad(e.to_string()),
            };
            let Some(parent) = ns.inodes.get_mut(&inode.parent) else {
                return bad(format!(
                    "inode {} comes before its parent {}",
                    inode.id, inode.parent
                ));
            };
            let InodeKind::Dir { children } = &mut parent.kind else {
                return bad(format!(
                    "parent {} of inode {} is a file",
                    inode.parent, inode.id
                ));
            };
            if children.insert(inode.name.clone(), inode.id).is_some() {
                return bad(format!(
                    "two entries named {:?} in directory {}",
                    inode.name, inode.parent
                ));
            }
            match &mut inode.kind {
                InodeKind::Dir { children } => {
                    children.clear();
                    ns.dirs += 1;
                }
                InodeKind::File(f) => {
                    ns.files += 1;
                    for b in &f.blocks {
                        if ns.block_index.insert(b.id, inode.id).is_some() {
                            return bad(format!("{} belongs to two files", b.id));
                        }
                        let next_block = match id_after(b.id.0, "block id") {
                            Ok(n) => n,
                            Err(e) => return bad(e.to_string()),
                        };
                        ns.next_block_id = ns.next_block_id.max(next_block);
                        ns.gen_stamp = ns.gen_stamp.max(b.gs.0);
                    }
                }
            }
            ns.next_inode_id = ns.next_inode_id.max(next_inode);
            ns.inodes.insert(inode.id, inode);
        }
        Ok(ns)
    }

    /// Every inode, parents before children (breadth first from the root): the image order.
    pub fn inodes_parent_first(&self) -> Vec<&Inode> {
        let mut out = Vec::with_capacity(self.inodes.len());
        let mut queue = VecDeque::from([InodeId::ROOT]);
        while let Some(id) = queue.pop_front() {
            let Some(inode) = self.inodes.get(&id) else {
                continue;
            };
            if let Some(children) = inode.children() {
                queue.extend(children.values().copied());
            }
            out.push(inode);
        }
        out
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

    /// The file holding a block, and the block's index in it.
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

    /// Resolves as much of `path` as exists. A file met before the last component is
    /// [`Error::NotADirectory`].
    pub fn walk(&self, path: &DfsPath) -> Result<Walk> {
        let comps: Vec<&str> = path.components().collect();
        let mut inodes = vec![InodeId::ROOT];
        let mut cur = self.inodes.get(&InodeId::ROOT);
        for (i, c) in comps.iter().enumerate() {
            let Some(inode) = cur else { break };
            let Some(children) = inode.children() else {
                let prefix = format!("/{}", comps[..i].join("/"));
                return Err(Error::NotADirectory(prefix));
            };
            match children.get(*c) {
                Some(id) => {
                    inodes.push(*id);
                    cur = self.inodes.get(id);
                }
                None => {
                    return Ok(Walk {
                        inodes,
                        missing: comps.len() - i,
                    })
                }
            }
        }
        Ok(Walk { inodes, missing: 0 })
    }

    /// The inode at `path`, or [`Error::NotFound`].
    pub fn resolve(&self, path: &DfsPath) -> Result<InodeId> {
        let w = self.walk(path)?;
        if w.missing > 0 {
            return Err(not_found(path));
        }
        Ok(w.last())
    }

    /// The inode at `path` if it exists; `Ok(None)` when it (or an ancestor) does not.
    pub fn lookup(&self, path: &DfsPath) -> Result<Option<InodeId>> {
        let w = self.walk(path)?;
        Ok((w.missing == 0).then(|| w.last()))
    }

    /// The absolute path of an inode.
    pub fn path_of(&self, id: InodeId) -> DfsPath {
        let mut names = Vec::new();
        let mut cur = id;
        while let Some(inode) = self.inodes.get(&cur) {
            if inode.id == InodeId::ROOT {
                break;
            }
            names.push(inode.name.as_str());
            cur = inode.parent;
        }
        names.reverse();
        let s = format!("/{}", names.join("/"));
        DfsPath::parse(&s).unwrap_or_else(|_| DfsPath::root())
    }

    /// `stat` of an inode.
    pub fn status(&self, id: InodeId) -> Option<FileStatus> {
        let inode = self.inodes.get(&id)?;
        let mut st = FileStatus {
            name: inode.name.clone(),
            file_type: FileType::Directory,
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
        };
        match &inode.kind {
            InodeKind::Dir { children } => st.children_num = children.len() as u64,
            InodeKind::File(f) => {
                st.file_type = FileType::File;
                st.length = f.length();
                st.replication = f.replication;
                st.block_size = f.block_size;
                st.under_construction = f.under_construction();
                st.lease_holder = f.client.clone().unwrap_or_default();
            }
        }
        Some(st)
    }

    /// One page of a listing: at most `limit` entries sorted by name strictly after
    /// `start_after`, and 1 when more entries follow the page (0 when it ends the listing). A
    /// file lists as itself.
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
            .filter_map(|(_, child)| self.status(*child))
            .collect();
        let more = page.next().is_some();
        (entries, u64::from(more))
    }

    /// Every inode of a subtree, parents first.
    pub fn subtree(&self, id: InodeId) -> Vec<InodeId> {
        let mut out = Vec::new();
        let mut stack = vec![id];
        while let Some(cur) = stack.pop() {
            let Some(inode) = self.inodes.get(&cur) else {
                continue;
            };
            out.push(cur);
            if let Some(children) = inode.children() {
                stack.extend(children.values().rev().copied());
            }
        }
        out
    }

    /// Recursive length, counts and raw space of a subtree (a directory counts itself).
    pub fn content_summary(&self, id: InodeId) -> ContentSummary {
        let mut s = ContentSummary::default();
        for i in self.subtree(id) {
            match self.inodes.get(&i).map(|n| &n.kind) {
                Some(InodeKind::Dir { .. }) => s.directory_count += 1,
                Some(InodeKind::File(f)) => {
                    let len = f.length();
                    s.file_count += 1;
                    s.length += len;
                    s.space_consumed += len * u64::from(f.replication);
                }
                None => {}
            }
        }
        s
    }

    // ---------------------------------------------------------------------------------------
    // Mutation
    // ---------------------------------------------------------------------------------------

    /// Applies one logged operation.
    pub fn apply(&mut self, op: &Op) -> Result<Applied> {
        let mut applied = Applied::default();
        match op {
            Op::Mkdir {
                inode_id,
                path,
                permission,
                owner,
                group,
                mtime_ms,
            } => {
                let (parent, name) = self.new_entry_parent(path)?;
                self.insert(Inode {
                    id: *inode_id,
                    parent,
                    name,
                    permission: *permission & 0o7777,
                    owner: owner.clone(),
                    group: group.clone(),
                    mtime_ms: *mtime_ms,
                    atime_ms: *mtime_ms,
                    kind: InodeKind::Dir {
                        children: BTreeMap::new(),
                    },
                })?;
                self.set_mtime(parent, *mtime_ms);
            }
            Op::Create {
                inode_id,
                path,
                permission,
                owner,
                group,
                mtime_ms,
                replication,
                block_size,
                client_name,
                overwrite,
            } => {
                if let Some(existing) = self.lookup(path)? {
                    match self.inodes.get(&existing).map(Inode::is_dir) {
                        Some(true) => return Err(Error::IsADirectory(path.to_string())),
                        _ if !*overwrite => return Err(Error::AlreadyExists(path.to_string())),
                        _ => self.remove_subtree(existing, &mut applied)?,
                    }
                }
                let (parent, name) = self.new_entry_parent(path)?;
                self.insert(Inode {
                    id: *inode_id,
                    parent,
                    name,
                    permission: *permission & 0o7777,
                    owner: owner.clone(),
                    group: group.clone(),
                    mtime_ms: *mtime_ms,
                    atime_ms: *mtime_ms,
                    kind: InodeKind::File(FileMeta {
                        replication: *replication,
                        block_size: *block_size,
                        blocks: Vec::new(),
                        client: Some(client_name.clone()),
                    }),
                })?;
                self.set_mtime(parent, *mtime_ms);
            }
            Op::AddBlock {
                path,
                previous,
                block,
                mtime_ms,
            } => {
                let id = self.resolve(path)?;
                if self.block_index.contains_key(&block.id) {
                    return Err(Error::Internal(format!("{} allocated twice", block.id)));
                }
                let next_block = id_after(block.id.0, "block id")?;
                let f = self.file_uc_mut(id, path)?;
                if let Some(prev) = previous {
                    match f.blocks.last_mut() {
                        Some(last) if last.id == prev.id => *last = *prev,
                        _ => {
                            return Err(Error::InvalidArgument(format!(
                                "{} is not the last block of {path}",
                                prev.id
                            )))
                        }
                    }
                }
                f.blocks.push(*block);
                self.block_index.insert(block.id, id);
                self.next_block_id = self.next_block_id.max(next_block);
                self.gen_stamp = self
                    .gen_stamp
                    .max(block.gs.0)
                    .max(previous.map_or(0, |p| p.gs.0));
                self.set_mtime(id, *mtime_ms);
            }
            Op::UpdateBlocks { path, blocks } => {
                let id = self.resolve(path)?;
                self.set_blocks(id, path, blocks, &mut applied)?;
            }
            Op::Close {
                path,
                blocks,
                mtime_ms,
            } => {
                let id = self.resolve(path)?;
                self.set_blocks(id, path, blocks, &mut applied)?;
                self.file_mut(id, path)?.client = None;
                self.set_mtime(id, *mtime_ms);
            }
            Op::Reopen {
                path, client_name, ..
            } => {
                let id = self.resolve(path)?;
                self.file_mut(id, path)?.client = Some(client_name.clone());
            }
            Op::Rename {
                src,
                dst,
                overwrite,
                mtime_ms,
            } => self.rename(src, dst, *overwrite, *mtime_ms, &mut applied)?,
            Op::Delete { path, mtime_ms } => {
                let id = self.resolve(path)?;
                if id == InodeId::ROOT {
                    return Err(Error::InvalidArgument("cannot delete the root".into()));
                }
                let parent = self
                    .inodes
                    .get(&id)
                    .map(|i| i.parent)
                    .unwrap_or(InodeId::ROOT);
                self.remove_subtree(id, &mut applied)?;
                self.set_mtime(parent, *mtime_ms);
            }
            Op::SetReplication { path, replication } => {
                let id = self.resolve(path)?;
                self.file_mut(id, path)?.replication = *replication;
            }
            Op::SetPermission { path, permission } => {
                let id = self.resolve(path)?;
                self.inode_mut(id)?.permission = *permission & 0o7777;
            }
            Op::SetOwner { path, owner, group } => {
                let id = self.resolve(path)?;
                let inode = self.inode_mut(id)?;
                if !owner.is_empty() {
                    inode.owner = owner.clone();
                }
                if !group.is_empty() {
                    inode.group = group.clone();
                }
            }
            Op::SetTimes {
                path,
                mtime_ms,
                atime_ms,
            } => {
                let id = self.resolve(path)?;
                let inode = self.inode_mut(id)?;
                if let Some(m) = mtime_ms {
                    inode.mtime_ms = *m;
                }
                if let Some(a) = atime_ms {
                    inode.atime_ms = *a;
                }
            }
            Op::SetGenerationStamp { gs } => {
                self.gen_stamp = self.gen_stamp.max(gs.0);
            }
            Op::AbandonBlock { path, block_id } => {
                let id = self.resolve(path)?;
                let f = self.file_uc_mut(id, path)?;
                match f.blocks.last() {
                    Some(last) if last.id == *block_id => {
                        let b = *last;
                        f.blocks.pop();
                        self.block_index.remove(&b.id);
                        applied.removed_blocks.push(b);
                    }
                    _ => {
                        return Err(Error::InvalidArgument(format!(
                            "{block_id} is not the last block of {path}"
                        )))
                    }
                }
            }
            Op::Truncate {
                path,
                blocks,
                mtime_ms,
                ..
            } => {
                let id = self.resolve(path)?;
                self.set_blocks(id, path, blocks, &mut applied)?;
                self.set_mtime(id, *mtime_ms);
            }
            Op::ReassignLease { path, new_holder } => {
                let id = self.resolve(path)?;
                self.file_uc_mut(id, path)?.client = Some(new_holder.clone());
            }
        }
        Ok(applied)
    }

    fn inode_mut(&mut self, id: InodeId) -> Result<&mut Inode> {
        self.inodes
            .get_mut(&id)
            .ok_or_else(|| Error::Internal(format!("inode {id} vanished")))
    }

    fn file_mut(&mut self, id: InodeId, path: &DfsPath) -> Result<&mut FileMeta> {
        self.inode_mut(id)?
            .file_mut()
            .ok_or_else(|| Error::IsADirectory(path.to_string()))
    }

    fn file_uc_mut(&mut self, id: InodeId, path: &DfsPath) -> Result<&mut FileMeta> {
        let f = self.file_mut(id, path)?;
        if !f.under_construction() {
            return Err(Error::LeaseExpired(format!(
                "{path} is not under construction"
            )));
        }
        Ok(f)
    }

    fn set_mtime(&mut self, id: InodeId, mtime_ms: u64) {
        if let Some(i) = self.inodes.get_mut(&id) {
            i.mtime_ms = mtime_ms;
        }
    }

    /// The parent directory for a new entry at `path` and the entry's name; the name must be free.
    fn new_entry_parent(&self, path: &DfsPath) -> Result<(InodeId, String)> {
        let (Some(parent_path), Some(name)) = (path.parent(), path.file_name()) else {
            return Err(Error::AlreadyExists(path.to_string()));
        };
        let parent = self.resolve(&parent_path)?;
        let children = self
            .inodes
            .get(&parent)
            .and_then(Inode::children)
            .ok_or_else(|| Error::NotADirectory(parent_path.to_string()))?;
        if children.contains_key(name) {
            return Err(Error::AlreadyExists(path.to_string()));
        }
        Ok((parent, name.to_string()))
    }

    fn insert(&mut self, inode: Inode) -> Result<()> {
        if inode.id.0 < 2 || self.inodes.contains_key(&inode.id) {
            return Err(Error::Internal(format!("inode id {} reused", inode.id)));
        }
        let next_inode = id_after(inode.id.0, "inode id")?;
        let parent = self.inode_mut(inode.parent)?;
        let InodeKind::Dir { children } = &mut parent.kind else {
            return Err(Error::Internal(format!(
                "parent {} is a file",
                inode.parent
            )));
        };
        children.insert(inode.name.clone(), inode.id);
        if inode.is_dir() {
            self.dirs += 1;
        } else {
            self.files += 1;
        }
        self.next_inode_id = self.next_inode_id.max(next_inode);
        self.inodes.insert(inode.id, inode);
        Ok(())
    }

    /// Replaces a file's block list; blocks no longer listed are reported as removed.
    fn set_blocks(
        &mut self,
        id: InodeId,
        path: &DfsPath,
        blocks: &[Block],
        applied: &mut Applied,
    ) -> Result<()> {
        // Everything is checked before anything changes: a refused op leaves the file as it was.
        for b in blocks {
            if let Some(owner) = self.block_index.get(&b.id) {
                if *owner != id {
                    return Err(Error::Internal(format!("{} belongs to another file", b.id)));
                }
            }
            id_after(b.id.0, "block id")?;
        }
        let f = self.file_mut(id, path)?;
        let old = std::mem::replace(&mut f.blocks, blocks.to_vec());
        for b in &old {
            if !blocks.iter().any(|n| n.id == b.id) {
                self.block_index.remove(&b.id);
                applied.removed_blocks.push(*b);
            }
        }
        for b in blocks {
            self.block_index.insert(b.id, id);
            self.next_block_id = self.next_block_id.max(b.id.0.saturating_add(1));
            self.gen_stamp = self.gen_stamp.max(b.gs.0);
        }
        Ok(())
    }

    /// Detaches and drops a subtree, collecting its blocks and files.
    fn remove_subtree(&mut self, id: InodeId, applied: &mut Applied) -> Result<()> {
        if id == InodeId::ROOT {
            return Err(Error::InvalidArgument("cannot remove the root".into()));
        }
        let (parent, name) = {
            let i = self.inode_mut(id)?;
            (i.parent, i.name.clone())
        };
        if let Some(InodeKind::Dir { children }) = self.inodes.get_mut(&parent).map(|p| &mut p.kind)
        {
            children.remove(&name);
        }
        for i in self.subtree(id) {
            let Some(inode) = self.inodes.remove(&i) else {
                continue;
            };
            match inode.kind {
                InodeKind::Dir { .. } => self.dirs -= 1,
                InodeKind::File(f) => {
                    self.files -= 1;
                    for b in f.blocks {
                        self.block_index.remove(&b.id);
                        applied.removed_blocks.push(b);
                    }
                    applied.removed_files.push(i);
                }
            }
        }
        Ok(())
    }

    fn rename(
        &mut self,
        src: &DfsPath,
        dst: &DfsPath,
        overwrite: bool,
        mtime_ms: u64,
        applied: &mut Applied,
    ) -> Result<()> {
        let src_id = self.resolve(src)?;
        if src_id == InodeId::ROOT || dst.is_root() {
            return Err(Error::InvalidRename("cannot rename the root".into()));
        }
        if src == dst {
            return Ok(());
        }
        if dst.starts_with(src) {
            return Err(Error::InvalidRename(format!(
                "cannot move {src} below itself to {dst}"
            )));
        }
        if let Some(dst_id) = self.lookup(dst)? {
            if !overwrite {
                return Err(Error::AlreadyExists(dst.to_string()));
            }
            let src_dir = self.inodes.get(&src_id).is_some_and(Inode::is_dir);
            let dst_inode = self.inode_mut(dst_id)?;
            match (&dst_inode.kind, src_dir) {
                (InodeKind::Dir { .. }, false) => return Err(Error::IsADirectory(dst.to_string())),
                (InodeKind::File(_), true) => return Err(Error::NotADirectory(dst.to_string())),
                (InodeKind::Dir { children }, true) if !children.is_empty() => {
                    return Err(Error::NotEmpty(dst.to_string()))
                }
                _ => {}
            }
            self.remove_subtree(dst_id, applied)?;
        }
        let (dst_parent, name) = self.new_entry_parent(dst)?;
        let (old_parent, old_name) = {
            let i = self.inode_mut(src_id)?;
            (i.parent, i.name.clone())
        };
        if let Some(InodeKind::Dir { children }) =
            self.inodes.get_mut(&old_parent).map(|p| &mut p.kind)
        {
            children.remove(&old_name);
        }
        if let Some(InodeKind::Dir { children }) =
            self.inodes.get_mut(&dst_parent).map(|p| &mut p.kind)
        {
            children.insert(name.clone(), src_id);
        }
        let inode = self.inode_mut(src_id)?;
        inode.parent = dst_parent;
        inode.name = name;
        self.set_mtime(old_parent, mtime_ms);
        self.set_mtime(dst_parent, mtime_ms);
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn p(s: &str) -> DfsPath {
        DfsPath::parse(s).unwrap()
    }

    pub(crate) fn mkdir(ns: &mut Namespace, path: &str) {
        let id = ns.next_inode_id();
        ns.apply(&Op::Mkdir {
            inode_id: id,
            path: p(path),
            permission: 0o755,
            owner: "alice".into(),
            group: "users".into(),
            mtime_ms: 10,
        })
        .unwrap();
    }

    pub(crate) fn create(ns: &mut Namespace, path: &str, overwrite: bool) -> Result<Applied> {
        let id = ns.next_inode_id();
        ns.apply(&Op::Create {
            inode_id: id,
            path: p(path),
            permission: 0o644,
            owner: "alice".into(),
            group: "users".into(),
            mtime_ms: 20,
            replication: 3,
            block_size: 1024,
            client_name: "c1".into(),
            overwrite,
        })
    }

    fn add_block(ns: &mut Namespace, path: &str, len: u64) -> Block {
        let b = Block {
            id: ns.next_block_id(),
            gs: ns.gen_stamp(),
            num_bytes: len,
        };
        ns.apply(&Op::AddBlock {
            path: p(path),
            previous: None,
            block: b,
            mtime_ms: 30,
        })
        .unwrap();
        b
    }

    #[test]
    fn create_and_overwrite() {
        let mut ns = Namespace::new("root", "supergroup", 0);
        mkdir(&mut ns, "/a");
        create(&mut ns, "/a/f", false).unwrap();
        let b = add_block(&mut ns, "/a/f", 100);
        assert!(matches!(
            create(&mut ns, "/a/f", false),
            Err(Error::AlreadyExists(_))
        ));
        assert!(matches!(
            create(&mut ns, "/a", true),
            Err(Error::IsADirectory(_))
        ));
        assert!(matches!(
            create(&mut ns, "/nope/f", false),
            Err(Error::NotFound(_))
        ));
        assert!(matches!(
            create(&mut ns, "/a/f/g", false),
            Err(Error::NotADirectory(_))
        ));
        let applied = create(&mut ns, "/a/f", true).unwrap();
        assert_eq!(applied.removed_blocks, vec![b]);
        assert_eq!(ns.num_files(), 1);
        assert_eq!(ns.num_blocks(), 0);
        let st = ns.status(ns.resolve(&p("/a/f")).unwrap()).unwrap();
        assert!(st.under_construction);
        assert_eq!(st.lease_holder, "c1");
        assert_eq!(st.length, 0);
    }

    #[test]
    fn blocks_and_counters() {
        let mut ns = Namespace::new("root", "supergroup", 0);
        create(&mut ns, "/f", false).unwrap();
        let b1 = add_block(&mut ns, "/f", 0);
        let mut fin = b1;
        fin.num_bytes = 1024;
        let b2 = Block {
            id: ns.next_block_id(),
            gs: ns.gen_stamp(),
            num_bytes: 0,
        };
        ns.apply(&Op::AddBlock {
            path: p("/f"),
            previous: Some(fin),
            block: b2,
            mtime_ms: 1,
        })
        .unwrap();
        let id = ns.resolve(&p("/f")).unwrap();
        assert_eq!(ns.file(id).unwrap().blocks, vec![fin, b2]);
        assert_eq!(ns.next_block_id().0, b2.id.0 + 1);
        let (fid, _, idx) = ns.block_file(b2.id).unwrap();
        assert_eq!((fid, idx), (id, 1));
        ns.apply(&Op::AbandonBlock {
            path: p("/f"),
            block_id: b2.id,
        })
        .unwrap();
        assert!(ns.block_file(b2.id).is_none());
        ns.apply(&Op::SetGenerationStamp { gs: GenStamp(5000) })
            .unwrap();
        assert_eq!(ns.gen_stamp(), GenStamp(5000));
        ns.apply(&Op::Close {
            path: p("/f"),
            blocks: vec![fin],
            mtime_ms: 2,
        })
        .unwrap();
        let st = ns.status(id).unwrap();
        assert!(!st.under_construction);
        assert_eq!(st.length, 1024);
        // A closed file cannot take blocks.
        assert!(ns
            .apply(&Op::AddBlock {
                path: p("/f"),
                previous: None,
                block: Block {
                    id: BlockId(1 << 40),
                    gs: GenStamp(1),
                    num_bytes: 0
                },
                mtime_ms: 3,
            })
            .is_err());
    }

    #[test]
    fn rename_files_and_dirs() {
        let mut ns = Namespace::new("root", "supergroup", 0);
        mkdir(&mut ns, "/a");
        mkdir(&mut ns, "/a/b");
        mkdir(&mut ns, "/c");
        create(&mut ns, "/a/b/f", false).unwrap();
        create(&mut ns, "/g", false).unwrap();
        let rn = |ns: &mut Namespace, s: &str, d: &str, o: bool| {
            ns.apply(&Op::Rename {
                src: p(s),
                dst: p(d),
                overwrite: o,
                mtime_ms: 5,
            })
        };
        // Directory move keeps the subtree.
        rn(&mut ns, "/a/b", "/c/b2", false).unwrap();
        assert!(ns.resolve(&p("/c/b2/f")).is_ok());
        assert!(ns.lookup(&p("/a/b")).unwrap().is_none());
        // Into itself.
        assert!(matches!(
            rn(&mut ns, "/c", "/c/b2/x", false),
            Err(Error::InvalidRename(_))
        ));
        assert!(matches!(
            rn(&mut ns, "/", "/x", false),
            Err(Error::InvalidRename(_))
        ));
        // Existing destination.
        assert!(matches!(
            rn(&mut ns, "/g", "/c/b2/f", false),
            Err(Error::AlreadyExists(_))
        ));
        assert!(matches!(
            rn(&mut ns, "/g", "/c", true),
            Err(Error::IsADirectory(_))
        ));
        assert!(matches!(
            rn(&mut ns, "/c", "/g", true),
            Err(Error::NotADirectory(_))
        ));
        assert!(matches!(
            rn(&mut ns, "/a", "/c", true),
            Err(Error::NotEmpty(_))
        ));
        let g = ns.resolve(&p("/g")).unwrap();
        let applied = rn(&mut ns, "/g", "/c/b2/f", true).unwrap();
        assert_eq!(applied.removed_files.len(), 1);
        assert_eq!(ns.resolve(&p("/c/b2/f")).unwrap(), g);
        assert_eq!(ns.num_files(), 1);
        // Empty directory replaced by a directory.
        mkdir(&mut ns, "/empty");
        rn(&mut ns, "/a", "/empty", true).unwrap();
        assert!(ns.resolve(&p("/empty")).is_ok());
        assert!(ns.lookup(&p("/a")).unwrap().is_none());
        // Missing parent.
        assert!(matches!(
            rn(&mut ns, "/c", "/nope/x", false),
            Err(Error::NotFound(_))
        ));
        // Same path is a no-op.
        rn(&mut ns, "/c", "/c", false).unwrap();
        assert_eq!(ns.path_of(g).as_str(), "/c/b2/f");
    }

    #[test]
    fn delete_subtree() {
        let mut ns = Namespace::new("root", "supergroup", 0);
        mkdir(&mut ns, "/a");
        mkdir(&mut ns, "/a/b");
        create(&mut ns, "/a/b/f", false).unwrap();
        let b = add_block(&mut ns, "/a/b/f", 3);
        let applied = ns
            .apply(&Op::Delete {
                path: p("/a"),
                mtime_ms: 1,
            })
            .unwrap();
        assert_eq!(applied.removed_blocks, vec![b]);
        assert_eq!((ns.num_dirs(), ns.num_files(), ns.num_blocks()), (1, 0, 0));
        assert!(ns
            .apply(&Op::Delete {
                path: p("/"),
                mtime_ms: 1
            })
            .is_err());
    }

    #[test]
    fn paged_listing() {
        let mut ns = Namespace::new("root", "supergroup", 0);
        mkdir(&mut ns, "/d");
        for i in 0..25 {
            create(&mut ns, &format!("/d/f{i:02}"), false).unwrap();
        }
        let d = ns.resolve(&p("/d")).unwrap();
        let mut names = Vec::new();
        let mut after = String::new();
        let mut pages = 0;
        loop {
            let (page, remaining) = ns.list(d, &after, 10);
            pages += 1;
            names.extend(page.iter().map(|s| s.name.clone()));
            after = page.last().map(|s| s.name.clone()).unwrap_or_default();
            // Only "more follow" is known: the rest of the directory is not counted.
            assert_eq!(remaining, u64::from(names.len() < 25));
            if remaining == 0 {
                break;
            }
        }
        assert_eq!(pages, 3);
        // A page that ends exactly at the last entry says so: no empty page follows.
        assert_eq!(ns.list(d, "", 25).1, 0);
        assert_eq!(ns.list(d, "f14", 10).1, 0);
        assert_eq!(ns.list(d, "f14", 9).1, 1);
        let expected: Vec<String> = (0..25).map(|i| format!("f{i:02}")).collect();
        assert_eq!(names, expected);
        let f = ns.resolve(&p("/d/f03")).unwrap();
        let (one, rem) = ns.list(f, "", 10);
        assert_eq!((one.len(), one[0].name.as_str(), rem), (1, "f03", 0));
    }

    #[test]
    fn summary_counts_dir_itself() {
        let mut ns = Namespace::new("root", "supergroup", 0);
        mkdir(&mut ns, "/a");
        mkdir(&mut ns, "/a/b");
        create(&mut ns, "/a/f", false).unwrap();
        add_block(&mut ns, "/a/f", 100);
        create(&mut ns, "/a/b/g", false).unwrap();
        add_block(&mut ns, "/a/b/g", 10);
        let s = ns.content_summary(ns.resolve(&p("/a")).unwrap());
        assert_eq!(
            s,
            ContentSummary {
                length: 110,
                file_count: 2,
                directory_count: 2,
                space_consumed: 330
            }
        );
    }

    #[test]
    fn image_round_trip_rebuilds_structure() {
        let mut ns = Namespace::new("root", "supergroup", 0);
        mkdir(&mut ns, "/a");
        mkdir(&mut ns, "/a/b");
        create(&mut ns, "/a/b/f", false).unwrap();
        add_block(&mut ns, "/a/b/f", 3);
        let inodes: Vec<Inode> = ns.inodes_parent_first().into_iter().cloned().collect();
        let back = Namespace::from_inodes(inodes.clone(), ns.counters()).unwrap();
        assert_eq!(back, ns);
        // A child before its parent is refused.
        let mut swapped = inodes.clone();
        swapped.swap(1, 3);
        assert!(matches!(
            Namespace::from_inodes(swapped, ns.counters()),
            Err(Error::Corrupt(_))
        ));
        // So is whatever no path could name, and ids with no successor: errors, not panics.
        let hostile: [fn(&mut [Inode]); 6] = [
            |v| v[0].name = "root".into(),
            |v| v[1].name = "a\0b".into(),
            |v| v[1].name = "x".repeat(256),
            |v| v[1].name = "a/b".into(),
            |v| v[3].id = InodeId(u64::MAX),
            |v| {
                if let InodeKind::File(f) = &mut v[3].kind {
                    f.blocks[0].id = BlockId(u64::MAX);
                }
            },
        ];
        for (i, damage) in hostile.iter().enumerate() {
            let mut bad = inodes.clone();
            damage(&mut bad);
            assert!(
                matches!(
                    Namespace::from_inodes(bad, ns.counters()),
                    Err(Error::Corrupt(_))
                ),
                "damage #{i} accepted"
            );
        }
        // A 255-byte name is fine.
        let mut long = inodes;
        long[1].name = "x".repeat(255);
        Namespace::from_inodes(long, ns.counters()).unwrap();
    }

    #[test]
    fn replayed_ids_without_a_successor_are_refused() {
        let mut ns = Namespace::new("root", "supergroup", 0);
        let e = ns
            .apply(&Op::Mkdir {
                inode_id: InodeId(u64::MAX),
                path: p("/a"),
                permission: 0o755,
                owner: "u".into(),
                group: "g".into(),
                mtime_ms: 1,
            })
            .unwrap_err();
        assert!(matches!(e, Error::Corrupt(_)), "{e}");
        assert!(ns.lookup(&p("/a")).unwrap().is_none());
        create(&mut ns, "/f", false).unwrap();
        let e = ns
            .apply(&Op::AddBlock {
                path: p("/f"),
                previous: None,
                block: Block {
                    id: BlockId(u64::MAX),
                    gs: ns.gen_stamp(),
                    num_bytes: 0,
                },
                mtime_ms: 1,
            })
            .unwrap_err();
        assert!(matches!(e, Error::Corrupt(_)), "{e}");
        assert_eq!(ns.num_blocks(), 0);
    }
}
