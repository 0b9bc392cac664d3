//! [`FileMeta`]: a regular file's blocks and the extents that map its bytes onto them.
//!
//! A file owns blocks (allocated to it, in allocation order; the last one is being written while
//! the file is under construction) and is a sorted list of non-overlapping [`Extent`]s over
//! `[0, length)`: file bytes `[off, off + len)` are bytes `[block_off, block_off + len)` of a
//! block. Gaps are holes and read as zeros. A file written end to end has one extent per block,
//! each the whole block (`is_sequential`); truncation cuts extents, and growing a file by
//! truncation adds a hole, so neither rewrites a byte on a DataNode.
//!
//! The *tail* extent is the last one when it ends at the end of the file and at the end of its
//! block: it grows and shrinks with that block (appends, pipeline recovery, lease recovery), as
//! an HDFS file's last block does.
//!
//! A *log block* (allocated by a writer that rewrites the file) never has a tail while the file
//! is being written: its bytes are placed only by [`FileMeta::commit`], which lays extents over
//! the map. See ARCHITECTURE.md, "Writing anywhere".

use crate::error::{Error, Result};
use crate::types::{Block, BlockId};

/// File bytes `[off, off + len)` stored as bytes `[block_off, block_off + len)` of `block`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extent {
    pub off: u64,
    pub len: u64,
    pub block: BlockId,
    pub block_off: u64,
}

impl Extent {
    pub fn end(&self) -> u64 {
        self.off + self.len
    }

    /// The part of the extent holding file bytes `[from, to)` (within it).
    fn slice(&self, from: u64, to: u64) -> Extent {
        Extent {
            off: from,
            len: to - from,
            block: self.block,
            block_off: self.block_off + (from - self.off),
        }
    }

    /// Whether `next` continues this extent, in the file and in the same block.
    fn continued_by(&self, next: &Extent) -> bool {
        self.end() == next.off
            && self.block == next.block
            && self.block_off + self.len == next.block_off
    }
}

/// Pushes `e`, merged into the last extent when it continues it.
fn push_merged(out: &mut Vec<Extent>, e: Extent) {
    match out.last_mut() {
        Some(last) if last.continued_by(&e) => last.len += e.len,
        _ => out.push(e),
    }
}

/// `new` (sorted, disjoint) laid over `old` (sorted, disjoint): each byte maps where its `new`
/// extent says, else where its `old` one did. Linear in both.
fn overlay(old: &[Extent], new: &[Extent]) -> Vec<Extent> {
    let mut out = Vec::with_capacity(old.len() + 2 * new.len());
    let mut rest = old.iter().copied();
    let mut front = rest.next();
    for n in new {
        while let Some(o) = front {
            if o.off >= n.end() {
                break;
            }
            if o.off < n.off {
                push_merged(&mut out, o.slice(o.off, o.end().min(n.off)));
            }
            if o.end() > n.end() {
                front = Some(o.slice(n.end(), o.end()));
                break;
            }
            front = rest.next();
        }
        push_merged(&mut out, *n);
    }
    for o in front.into_iter().chain(rest) {
        push_merged(&mut out, o);
    }
    out
}

/// A regular file's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileMeta {
    pub replication: u32,
    pub block_size: u64,
    /// The blocks the file owns, in allocation order.
    pub blocks: Vec<Block>,
    extents: Vec<Extent>,
    length: u64,
    /// `Some(lease holder)` while the file is under construction.
    pub client: Option<String>,
    /// The blocks allocated as log blocks while the file is under construction (closing clears
    /// them: then no block can grow any more).
    log_blocks: Vec<BlockId>,
}

impl FileMeta {
    /// An empty file.
    pub fn new(replication: u32, block_size: u64, client: Option<String>) -> FileMeta {
        FileMeta {
            replication,
            block_size,
            blocks: Vec::new(),
            extents: Vec::new(),
            length: 0,
            client,
            log_blocks: Vec::new(),
        }
    }

    /// A file whose blocks hold it end to end (what every file written by appending is).
    pub fn sequential(
        replication: u32,
        block_size: u64,
        blocks: Vec<Block>,
        client: Option<String>,
    ) -> FileMeta {
        let mut f = FileMeta::new(replication, block_size, client);
        for b in blocks {
            f.push_block(b);
        }
        f
    }

    /// A file with an explicit layout (an image's), checked: extents sorted, disjoint, inside
    /// `[0, length)` and inside blocks the file owns.
    pub fn with_extents(mut self, extents: Vec<Extent>, length: u64) -> Result<FileMeta> {
        let bad = |m: String| Err(Error::Corrupt(m));
        let mut end = 0;
        for e in &extents {
            if e.off < end {
                return bad(format!("extent at {} overlaps or is out of order", e.off));
            }
            let Some(b) = self.blocks.iter().find(|b| b.id == e.block) else {
                return bad(format!(
                    "extent at {} names {}, not a block of the file",
                    e.off, e.block
                ));
            };
            let (Some(fend), Some(bend)) =
                (e.off.checked_add(e.len), e.block_off.checked_add(e.len))
            else {
                return bad(format!("extent at {} overflows", e.off));
            };
            if bend > b.num_bytes {
                return bad(format!(
                    "extent at {} reaches past the end of {}",
                    e.off, e.block
                ));
            }
            end = fend;
        }
        if end > length {
            return bad(format!("extents reach {end}, past the length {length}"));
        }
        self.extents = extents;
        self.length = length;
        Ok(self)
    }

    /// Marks blocks of an image's file as log blocks.
    pub fn with_log_blocks(mut self, ids: Vec<BlockId>) -> Result<FileMeta> {
        if let Some(id) = ids
            .iter()
            .find(|id| !self.blocks.iter().any(|b| b.id == **id))
        {
            return Err(Error::Corrupt(format!(
                "log block {id} is not a block of the file"
            )));
        }
        self.log_blocks = ids;
        Ok(self)
    }

    /// The log blocks (see the module docs).
    pub fn log_blocks(&self) -> &[BlockId] {
        &self.log_blocks
    }

    pub fn is_log_block(&self, id: BlockId) -> bool {
        self.log_blocks.contains(&id)
    }

    /// Whether the file grows with the length of its last block (appended to, not a log).
    pub fn grows_with_last_block(&self) -> bool {
        self.under_construction()
            && self
                .blocks
                .last()
                .is_some_and(|b| !self.is_log_block(b.id) && self.ends_with_block(b.id))
    }

    pub fn length(&self) -> u64 {
        self.length
    }

    pub fn extents(&self) -> &[Extent] {
        &self.extents
    }

    pub fn under_construction(&self) -> bool {
        self.client.is_some()
    }

    /// Whether block `idx` is complete: every block is, except the last block of a file under
    /// construction (the one being written).
    pub fn block_complete(&self, idx: usize) -> bool {
        !(self.under_construction() && idx + 1 == self.blocks.len())
    }

    /// Whether the extents are exactly the blocks end to end (an image stores nothing more).
    pub fn is_sequential(&self) -> bool {
        let mut off = 0;
        self.extents.len() == self.blocks.len()
            && self.extents.iter().zip(&self.blocks).all(|(e, b)| {
                let ok =
                    e.off == off && e.block == b.id && e.block_off == 0 && e.len == b.num_bytes;
                off += b.num_bytes;
                ok
            })
            && self.length == off
    }

    /// Bytes stored for the file on each replica (its blocks, referenced or not).
    pub fn stored_bytes(&self) -> u64 {
        self.blocks.iter().map(|b| b.num_bytes).sum()
    }

    /// The file offset of byte 0 of block `id`, when an extent starts there.
    pub fn block_start(&self, id: BlockId) -> Option<u64> {
        self.extents
            .iter()
            .find(|e| e.block == id && e.block_off == 0)
            .map(|e| e.off)
    }

    /// Index of the tail extent (see the module docs), if there is one.
    fn tail(&self) -> Option<usize> {
        let e = self.extents.last()?;
        let b = self.blocks.iter().find(|b| b.id == e.block)?;
        (e.end() == self.length && e.block_off + e.len == b.num_bytes && !self.is_log_block(b.id))
            .then(|| self.extents.len() - 1)
    }

    /// Whether the file ends with the whole tail of block `id`, so appending may continue in it.
    /// The tail extent, which grows with its block (see the module docs).
    pub fn tail_extent(&self) -> Option<Extent> {
        self.tail().map(|t| self.extents[t])
    }

    pub fn ends_with_block(&self, id: BlockId) -> bool {
        self.tail().is_some_and(|t| self.extents[t].block == id)
    }

    /// Appends `b` to the file's blocks, its bytes after the file's end.
    pub(super) fn push_block(&mut self, b: Block) {
        self.blocks.push(b);
        self.extents.push(Extent {
            off: self.length,
            len: b.num_bytes,
            block: b.id,
            block_off: 0,
        });
        self.length += b.num_bytes;
    }

    /// Appends `b` as a log block: owned, but holding no file byte until a commit places some.
    pub(super) fn push_log_block(&mut self, b: Block) {
        self.blocks.push(b);
        self.log_blocks.push(b.id);
    }

    /// Lays `extents` (sorted, disjoint, all in log block `block`, whose new length and stamp
    /// `block` gives) over the file's map, and sets its length. Returns the blocks no extent
    /// refers to any more, which the file gives up.
    pub(super) fn commit(
        &mut self,
        block: Block,
        extents: &[Extent],
        length: u64,
    ) -> Result<Vec<Block>> {
        let inval = |m: String| Err(Error::InvalidArgument(m));
        let Some(idx) = self.blocks.iter().position(|b| b.id == block.id) else {
            return inval(format!("{} is not a block of the file", block.id));
        };
        if !self.is_log_block(block.id) {
            return inval(format!("{} is not a log block", block.id));
        }
        if length < self.length {
            return inval(format!(
                "a commit may not shorten the file ({} to {length})",
                self.length
            ));
        }
        let mut end = 0;
        for e in extents {
            let bend = e.block_off.checked_add(e.len);
            if e.block != block.id || e.len == 0 || bend.is_none_or(|b| b > block.num_bytes) {
                return inval(format!(
                    "extent at {} is empty or not in the {} bytes of {}",
                    e.off, block.num_bytes, block.id
                ));
            }
            if e.off < end || e.off.checked_add(e.len).is_none_or(|x| x > length) {
                return inval(format!(
                    "extent at {} overlaps, is out of order or past the length {length}",
                    e.off
                ));
            }
            end = e.end();
        }
        // Never shorter than an earlier commit said: its extents stay within the block.
        self.blocks[idx] = Block {
            num_bytes: block.num_bytes.max(self.blocks[idx].num_bytes),
            ..block
        };
        if let (Some(first), Some(last)) = (extents.first(), extents.last()) {
            // Only the extents overlapping the new ones change.
            let lo = self.extents.partition_point(|e| e.end() <= first.off);
            let hi = self.extents.partition_point(|e| e.off < last.end());
            let laid = overlay(&self.extents[lo..hi], extents);
            self.extents.splice(lo..hi, laid);
        }
        self.length = length;
        Ok(self.drop_unreferenced())
    }

    /// Compaction's next step: when the file stores more than twice its length plus a block, the
    /// file ranges (offset, length) still mapped to the block other than `current` (the log block
    /// being written) with the fewest live bytes among those holding garbage; else nothing. A block
    /// without garbage is never named: copying it would free nothing, so every step frees bytes
    /// and a writer compacting step after step ends.
    pub fn compaction(&self, current: Option<BlockId>) -> Vec<(u64, u64)> {
        let stored: u64 = self.blocks.iter().map(|b| b.num_bytes).sum();
        if stored
            <= self
                .length
                .saturating_mul(2)
                .saturating_add(self.block_size)
        {
            return Vec::new();
        }
        let mut live: std::collections::HashMap<BlockId, u64> = std::collections::HashMap::new();
        for e in &self.extents {
            *live.entry(e.block).or_default() += e.len;
        }
        let live_in = |b: &Block| live.get(&b.id).copied().unwrap_or(0);
        let victim = self
            .blocks
            .iter()
            .filter(|b| Some(b.id) != current && live_in(b) < b.num_bytes)
            .min_by_key(|b| live_in(b));
        let Some(victim) = victim else {
            return Vec::new();
        };
        self.extents
            .iter()
            .filter(|e| e.block == victim.id)
            .map(|e| (e.off, e.len))
            .collect()
    }

    /// Closing: no block grows any more, and those without an extent are given up.
    pub(super) fn close(&mut self) -> Vec<Block> {
        self.client = None;
        self.log_blocks.clear();
        self.drop_unreferenced()
    }

    /// Gives up the blocks no extent refers to, but a block being written.
    fn drop_unreferenced(&mut self) -> Vec<Block> {
        let referenced: std::collections::HashSet<BlockId> =
            self.extents.iter().map(|e| e.block).collect();
        let writing = self
            .blocks
            .last()
            .filter(|_| self.under_construction())
            .map(|b| b.id);
        let (kept, gone): (Vec<Block>, Vec<Block>) = std::mem::take(&mut self.blocks)
            .into_iter()
            .partition(|b| referenced.contains(&b.id) || Some(b.id) == writing);
        self.blocks = kept;
        self.log_blocks
            .retain(|id| !gone.iter().any(|b| b.id == *id));
        gone
    }

    /// Drops the last block and the extents in it (AbandonBlock); a tail it was shrinks the file.
    pub(super) fn pop_block(&mut self) -> Option<Block> {
        let tail = self.tail_of(self.blocks.last()?.id);
        let b = self.blocks.pop()?;
        self.extents.retain(|e| e.block != b.id);
        self.log_blocks.retain(|id| *id != b.id);
        if let Some(start) = tail {
            self.length = start;
        }
        Some(b)
    }

    /// The file offset of `id`'s extent if it is the tail.
    fn tail_of(&self, id: BlockId) -> Option<u64> {
        self.tail()
            .map(|t| self.extents[t])
            .filter(|e| e.block == id)
            .map(|e| e.off)
    }

    /// New lengths and stamps for the file's blocks: `new` names the same blocks in the same
    /// order, or a prefix of them (lease recovery drops a last block no replica holds). A tail
    /// extent follows its block's length; other extents are cut to it. Returns the blocks dropped.
    pub(super) fn update_blocks(&mut self, new: &[Block]) -> Result<Vec<Block>> {
        if new.len() > self.blocks.len() || new.iter().zip(&self.blocks).any(|(n, o)| n.id != o.id)
        {
            return Err(Error::InvalidArgument(format!(
                "new block list {:?} does not match the file's {:?}",
                new.iter().map(|b| b.id.0).collect::<Vec<_>>(),
                self.blocks.iter().map(|b| b.id.0).collect::<Vec<_>>()
            )));
        }
        let mut dropped = Vec::new();
        while self.blocks.len() > new.len() {
            dropped.extend(self.pop_block());
        }
        for (i, n) in new.iter().enumerate() {
            let tail = self.tail().filter(|t| self.extents[*t].block == n.id);
            self.blocks[i] = *n;
            if let Some(t) = tail {
                let e = &mut self.extents[t];
                e.len = n.num_bytes.saturating_sub(e.block_off);
                self.length = e.end();
            }
            for e in self.extents.iter_mut().filter(|e| e.block == n.id) {
                e.len = e.len.min(n.num_bytes.saturating_sub(e.block_off));
            }
        }
        // An empty extent survives only as the start of a block being appended to at the end.
        let length = self.length;
        self.extents
            .retain(|e| e.len > 0 || (e.block_off == 0 && e.off == length));
        Ok(dropped)
    }

    /// Cuts the file at `len` (or extends it with a hole). Returns the blocks no extent refers
    /// to any more, which the file gives up.
    pub(super) fn truncate(&mut self, len: u64) -> Vec<Block> {
        if len >= self.length {
            self.length = len;
            return Vec::new();
        }
        self.extents.retain(|e| e.off < len);
        if let Some(e) = self.extents.last_mut() {
            e.len = e.len.min(len - e.off);
        }
        self.length = len;
        self.drop_unreferenced()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::GenStamp;

    fn b(id: u64, len: u64) -> Block {
        Block {
            id: BlockId(id),
            gs: GenStamp(1000),
            num_bytes: len,
        }
    }

    #[test]
    fn appending_grows_the_tail_and_truncation_cuts_without_touching_blocks() {
        let mut f = FileMeta::new(3, 100, Some("c".into()));
        f.push_block(b(1, 0));
        assert_eq!(f.length(), 0);
        f.update_blocks(&[b(1, 100)]).unwrap();
        f.push_block(b(2, 0));
        f.update_blocks(&[b(1, 100), b(2, 40)]).unwrap();
        assert_eq!(f.length(), 140);
        assert!(f.is_sequential());
        assert!(f.ends_with_block(BlockId(2)));
        assert_eq!(f.block_start(BlockId(2)), Some(100));
        assert!(f.close().is_empty());
        // Cut inside block 2: its bytes stay on the DataNodes, the file stops at 120.
        assert!(f.truncate(120).is_empty());
        assert_eq!(f.length(), 120);
        assert!(!f.is_sequential());
        assert!(
            !f.ends_with_block(BlockId(2)),
            "appending must not continue past the cut"
        );
        // Grow with a hole, then cut into block 1: block 2 is no longer referenced.
        assert!(f.truncate(1000).is_empty());
        assert_eq!(f.length(), 1000);
        assert_eq!(f.truncate(50), vec![b(2, 40)]);
        assert_eq!(f.blocks, vec![b(1, 100)]);
        assert_eq!(f.extents().len(), 1);
        assert_eq!(f.extents()[0].len, 50);
        assert!(f.truncate(0).len() == 1 && f.blocks.is_empty() && f.length() == 0);
    }

    #[test]
    fn a_block_added_after_a_hole_starts_at_the_end() {
        let mut f = FileMeta::new(1, 100, None);
        f.truncate(30);
        f.push_block(b(7, 0));
        f.update_blocks(&[b(7, 10)]).unwrap();
        assert_eq!(f.length(), 40);
        assert_eq!(f.extents()[0].off, 30);
        // Abandoning it gives the hole back.
        assert_eq!(f.pop_block(), Some(b(7, 10)));
        assert_eq!((f.length(), f.extents().len()), (30, 0));
    }

    #[test]
    fn block_lists_must_match_and_may_drop_the_last() {
        let mut f = FileMeta::sequential(3, 100, vec![b(1, 100), b(2, 5)], Some("c".into()));
        assert!(f.update_blocks(&[b(2, 5)]).is_err());
        assert!(f.update_blocks(&[b(1, 100), b(2, 5), b(3, 0)]).is_err());
        assert_eq!(f.update_blocks(&[b(1, 100)]).unwrap(), vec![b(2, 5)]);
        assert_eq!(f.length(), 100);
        // Pipeline recovery may shorten the block being written: its tail follows.
        f.push_block(b(3, 0));
        f.update_blocks(&[b(1, 100), b(3, 60)]).unwrap();
        f.update_blocks(&[b(1, 100), b(3, 20)]).unwrap();
        assert_eq!(f.length(), 120);
    }

    fn x(off: u64, len: u64, block: u64, block_off: u64) -> Extent {
        Extent {
            off,
            len,
            block: BlockId(block),
            block_off,
        }
    }

    #[test]
    fn new_extents_replace_exactly_the_bytes_they_cover() {
        let old = [x(0, 100, 1, 0), x(100, 50, 2, 0), x(200, 10, 3, 5)];
        let new = [x(10, 10, 9, 0), x(95, 10, 9, 10), x(150, 55, 9, 20)];
        assert_eq!(
            overlay(&old, &new),
            vec![
                x(0, 10, 1, 0),
                x(10, 10, 9, 0),
                x(20, 75, 1, 20),
                x(95, 10, 9, 10),
                x(105, 45, 2, 5),
                x(150, 55, 9, 20),
                x(205, 5, 3, 10),
            ]
        );
        // Writes that continue each other, in the file and the block, merge.
        assert_eq!(
            overlay(&[x(0, 10, 9, 0)], &[x(10, 10, 9, 10)]),
            vec![x(0, 20, 9, 0)]
        );
        assert_eq!(overlay(&old, &[x(0, 300, 9, 0)]), vec![x(0, 300, 9, 0)]);
    }

    #[test]
    fn commits_place_log_bytes_and_free_what_nothing_refers_to() {
        let mut f = FileMeta::sequential(3, 100, vec![b(1, 100), b(2, 100)], Some("c".into()));
        f.push_log_block(b(3, 0));
        assert_eq!(f.length(), 200, "a log block adds no byte by itself");
        assert!(!f.grows_with_last_block());
        let gone = f
            .commit(b(3, 30), &[x(0, 10, 3, 0), x(95, 20, 3, 10)], 200)
            .unwrap();
        assert!(gone.is_empty());
        assert_eq!(f.extents()[..2], [x(0, 10, 3, 0), x(10, 85, 1, 10)]);
        // Pipeline or lease recovery reports more bytes: the log block's extents stay.
        f.update_blocks(&[b(1, 100), b(2, 100), b(3, 90)]).unwrap();
        assert_eq!(f.length(), 200);
        assert_eq!(f.extents().len(), 4);
        // Rewriting all of block 1 frees it; writing past the end leaves a hole before.
        let gone = f
            .commit(b(3, 90), &[x(10, 60, 3, 30), x(250, 10, 3, 0)], 260)
            .unwrap();
        assert!(gone.is_empty(), "bytes 70..95 still in block 1");
        let gone = f.commit(b(3, 90), &[x(70, 25, 3, 30)], 260).unwrap();
        assert_eq!(gone, vec![b(1, 100)]);
        assert_eq!(f.length(), 260);
        assert!(!f.is_sequential());
        // A log block with nothing placed in it goes at the close.
        f.push_log_block(b(4, 0));
        f.update_blocks(&[b(2, 100), b(3, 90), b(4, 50)]).unwrap();
        assert_eq!(f.close(), vec![b(4, 50)]);
        assert!(f.log_blocks().is_empty() && !f.under_construction());
    }

    #[test]
    fn compaction_names_the_least_live_block_once_garbage_passes_the_file_twice() {
        let mut f = FileMeta::sequential(3, 100, vec![b(1, 100)], Some("c".into()));
        // Rewrites leave a little of every block live: 275 bytes stored for 100.
        f.push_log_block(b(2, 0));
        f.commit(b(2, 90), &[x(0, 90, 2, 0)], 100).unwrap();
        f.push_log_block(b(3, 0));
        f.commit(b(3, 85), &[x(0, 80, 3, 0), x(90, 5, 3, 80)], 100)
            .unwrap();
        assert!(
            f.compaction(Some(BlockId(3))).is_empty(),
            "not past 2 × 100 + 100"
        );
        f.push_log_block(b(4, 0));
        f.commit(b(4, 75), &[x(0, 75, 4, 0)], 100).unwrap();
        // 350 stored: block 1 has 5 live bytes, fewer than any other.
        assert_eq!(f.compaction(Some(BlockId(4))), vec![(95, 5)]);
        let gone = f.commit(b(4, 80), &[x(95, 5, 4, 75)], 100).unwrap();
        assert_eq!(gone, vec![b(1, 100)]);
        assert!(f.compaction(Some(BlockId(4))).is_empty());
    }

    #[test]
    fn compaction_after_a_cut_names_a_block_with_garbage_never_one_without() {
        let mut f = FileMeta::sequential(3, 100, vec![b(1, 100)], Some("c".into()));
        f.push_log_block(b(2, 0));
        f.commit(b(2, 100), &[x(0, 20, 2, 0)], 100).unwrap();
        f.push_log_block(b(3, 0));
        f.commit(b(3, 10), &[x(20, 10, 3, 0)], 100).unwrap();
        f.close();
        assert!(f.compaction(None).is_empty(), "210 stored for 100");
        f.truncate(50);
        // 210 stored for 50: block 3 has the fewest live bytes but no garbage; blocks 1 and 2
        // have 20 live bytes each, and the first is named.
        assert_eq!(f.compaction(None), vec![(30, 20)]);
    }

    #[test]
    fn a_commit_never_shortens_its_log_block_nor_overflows_on_huge_files() {
        let mut f = FileMeta::sequential(3, 100, vec![], Some("c".into()));
        f.push_log_block(b(1, 0));
        f.commit(b(1, 90), &[x(0, 90, 1, 0)], 90).unwrap();
        f.commit(b(1, 10), &[x(0, 10, 1, 0)], 90).unwrap();
        assert_eq!(f.blocks[0].num_bytes, 90, "bytes 10..90 are still mapped");
        f.commit(b(1, 90), &[x(u64::MAX - 20, 10, 1, 0)], u64::MAX - 10)
            .unwrap();
        assert!(f.compaction(Some(BlockId(1))).is_empty());
    }

    #[test]
    fn bad_commits_are_refused_and_change_nothing() {
        let mut f = FileMeta::sequential(3, 100, vec![b(1, 100)], Some("c".into()));
        f.push_log_block(b(2, 0));
        let before = f.clone();
        for (block, extents, len) in [
            (b(1, 100), vec![x(0, 10, 1, 0)], 100), // not a log block
            (b(2, 10), vec![x(0, 20, 2, 0)], 100),  // past the acknowledged bytes
            (b(2, 10), vec![x(0, 5, 3, 0)], 100),   // in another block
            (b(2, 30), vec![x(20, 5, 2, 0), x(10, 5, 2, 5)], 100), // out of order
            (b(2, 10), vec![x(0, 5, 2, 0)], 50),    // shortens the file
            (b(2, 10), vec![x(98, 5, 2, 0)], 100),  // past the length
            (b(2, 10), vec![x(0, 0, 2, 0)], 100),   // empty
        ] {
            assert!(f.commit(block, &extents, len).is_err(), "{extents:?}");
            assert_eq!(f, before);
        }
    }

    #[test]
    fn a_closed_file_whose_last_write_ended_it_appends_in_its_log_block() {
        let mut f = FileMeta::sequential(3, 100, vec![b(1, 40)], Some("c".into()));
        f.push_log_block(b(2, 0));
        f.commit(b(2, 20), &[x(0, 10, 2, 0), x(40, 10, 2, 10)], 50)
            .unwrap();
        assert!(
            !f.ends_with_block(BlockId(2)),
            "no tail while being written"
        );
        f.close();
        assert!(f.ends_with_block(BlockId(2)));
    }

    #[test]
    fn explicit_layouts_are_checked() {
        let f = FileMeta::sequential(3, 100, vec![b(1, 100)], None);
        let e = |off, len, block, block_off| Extent {
            off,
            len,
            block: BlockId(block),
            block_off,
        };
        f.clone().with_extents(vec![e(10, 20, 1, 50)], 200).unwrap();
        for bad in [
            vec![e(0, 20, 2, 0)],
            vec![e(0, 20, 1, 90)],
            vec![e(0, 20, 1, 0), e(10, 5, 1, 0)],
            vec![e(300, 1, 1, 0)],
            vec![e(u64::MAX, 2, 1, 0)],
        ] {
            assert!(f.clone().with_extents(bad.clone(), 200).is_err(), "{bad:?}");
        }
    }
}
