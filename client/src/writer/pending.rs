//! The extents a writer has placed in its log block and not yet committed: file ranges, each
//! mapped to a range of the block, the newest write winning where writes overlap.

use std::collections::BTreeMap;

use dfs_proto::pb;

/// File bytes `[off, off + len)` (`off` is the map's key) are block bytes `[block_off, …)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Piece {
    len: u64,
    block_off: u64,
}

impl Piece {
    /// What is left of a piece starting at `start` once its bytes before `from` are gone.
    fn from(self, start: u64, from: u64) -> Piece {
        Piece {
            len: self.len - (from - start),
            block_off: self.block_off + (from - start),
        }
    }
}

#[derive(Debug, Default)]
pub(super) struct Pending {
    map: BTreeMap<u64, Piece>,
}

impl Pending {
    pub(super) fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub(super) fn len(&self) -> usize {
        self.map.len()
    }

    /// Records that file bytes `[off, off + len)` were written at `block_off` of the log block.
    pub(super) fn insert(&mut self, off: u64, len: u64, block_off: u64) {
        if len == 0 {
            return;
        }
        let end = off + len;
        if let Some((&s, &p)) = self.map.range(..off).next_back() {
            if s + p.len > off {
                // Keep the head before the new bytes, and a tail after them.
                self.map.insert(s, Piece { len: off - s, ..p });
                if s + p.len > end {
                    self.map.insert(end, p.from(s, end));
                }
            }
        }
        let covered: Vec<u64> = self.map.range(off..end).map(|(k, _)| *k).collect();
        for s in covered {
            if let Some(p) = self.map.remove(&s) {
                if s + p.len > end {
                    self.map.insert(end, p.from(s, end));
                }
            }
        }
        if let Some((&s, p)) = self.map.range_mut(..off).next_back() {
            if s + p.len == off && p.block_off + p.len == block_off {
                p.len += len;
                return;
            }
        }
        self.map.insert(off, Piece { len, block_off });
    }

    /// The extents, sorted by file offset, as CommitExtents takes them; the map is left empty.
    pub(super) fn take(&mut self) -> Vec<pb::FileExtent> {
        std::mem::take(&mut self.map)
            .into_iter()
            .map(|(offset, p)| pb::FileExtent {
                offset,
                length: p.len,
                block_offset: p.block_off,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ext(offset: u64, length: u64, block_offset: u64) -> pb::FileExtent {
        pb::FileExtent {
            offset,
            length,
            block_offset,
        }
    }

    #[test]
    fn later_writes_win_and_continuing_ones_merge() {
        let mut p = Pending::default();
        p.insert(100, 50, 0); // [100, 150) at 0
        p.insert(120, 10, 50); // splits it
        p.insert(130, 10, 60); // continues the last write: merges
        p.insert(0, 10, 70);
        p.insert(145, 20, 80); // overlaps the tail of the first
        assert_eq!(
            p.take(),
            vec![
                ext(0, 10, 70),
                ext(100, 20, 0),
                ext(120, 20, 50),
                ext(140, 5, 40),
                ext(145, 20, 80),
            ]
        );
        assert!(p.is_empty());
    }

    #[test]
    fn a_write_covering_several_replaces_them_all() {
        let mut p = Pending::default();
        for i in 0..10 {
            p.insert(i * 10, 5, i * 5);
        }
        p.insert(3, 90, 100);
        assert_eq!(
            p.take(),
            vec![ext(0, 3, 0), ext(3, 90, 100), ext(93, 2, 48)]
        );
    }
}
