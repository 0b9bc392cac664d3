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
        (e.end() == self.length && e.block_off + e.len == b.num_bytes)
            .then(|| self.extents.len() - 1)
    }

    /// Whether the file ends with the whole tail of block `id`, so appending may continue in it.
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

    /// Drops the last block and the extents in it (AbandonBlock); a tail it was shrinks the file.
    pub(super) fn pop_block(&mut self) -> Option<Block> {
        let tail = self.tail_of(self.blocks.last()?.id);
        let b = self.blocks.pop()?;
        self.extents.retain(|e| e.block != b.id);
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
        let (kept, gone): (Vec<Block>, Vec<Block>) = std::mem::take(&mut self.blocks)
            .into_iter()
            .partition(|b| self.extents.iter().any(|e| e.block == b.id));
        self.blocks = kept;
        gone
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
