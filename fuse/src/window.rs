//! [`Window`]: the bytes a handle's read stream produced most recently.
//!
//! The kernel sends a file's read-ahead as several concurrent requests, and they reach the file
//! system in any order. Serving each from its own position would open a DataNode stream per
//! request; instead one stream per handle reads forward, and what it reads is kept here long
//! enough for the requests that arrive late to find their bytes.

use std::collections::VecDeque;

use bytes::Bytes;

/// Bytes kept behind the stream's position (8 × the largest FUSE request).
pub const KEEP: u64 = 8 << 20;

/// A contiguous run of file bytes `[start, end)`, kept as the chunks they were read in.
#[derive(Default)]
pub struct Window {
    start: u64,
    len: u64,
    chunks: VecDeque<Bytes>,
}

impl Window {
    /// An empty window at `pos` (a stream that was just opened or moved).
    pub fn at(pos: u64) -> Window {
        Window {
            start: pos,
            ..Window::default()
        }
    }

    pub fn start(&self) -> u64 {
        self.start
    }

    /// One past the last byte held: where the stream continues.
    pub fn end(&self) -> u64 {
        self.start + self.len
    }

    /// Appends the stream's next bytes and forgets the oldest beyond [`KEEP`].
    pub fn push(&mut self, chunk: Bytes) {
        self.len += chunk.len() as u64;
        self.chunks.push_back(chunk);
        while let Some(front) = self.chunks.front() {
            let n = front.len() as u64;
            if self.len - n < KEEP {
                break;
            }
            self.chunks.pop_front();
            self.start += n;
            self.len -= n;
        }
    }

    /// The held bytes of `[off, off + size)`, which must start inside the window. Zero-copy when
    /// the range is one chunk exactly (the common, in-order case).
    pub fn slice(&self, off: u64, size: usize) -> Bytes {
        debug_assert!(off >= self.start && off <= self.end());
        let end = (off + size as u64).min(self.end());
        let mut at = self.start;
        let mut out: Option<Vec<u8>> = None;
        for c in &self.chunks {
            let (c_start, c_end) = (at, at + c.len() as u64);
            at = c_end;
            if c_end <= off {
                continue;
            }
            if c_start >= end {
                break;
            }
            let from = (off.max(c_start) - c_start) as usize;
            let to = (end.min(c_end) - c_start) as usize;
            if out.is_none() && c_start <= off && end <= c_end {
                return c.slice(from..to);
            }
            out.get_or_insert_with(|| Vec::with_capacity((end - off) as usize))
                .extend_from_slice(&c[from..to]);
        }
        out.map(Bytes::from).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(from: u64, n: usize) -> Bytes {
        (from..from + n as u64).map(|i| i as u8).collect()
    }

    #[test]
    fn serves_ranges_across_chunks_and_forgets_old_bytes() {
        let mut w = Window::at(100);
        assert_eq!(w.end(), 100);
        w.push(bytes(100, 10));
        w.push(bytes(110, 20));
        assert_eq!(w.slice(100, 10), bytes(100, 10));
        assert_eq!(w.slice(105, 10), bytes(105, 10));
        assert_eq!(w.slice(125, 100), bytes(125, 5), "clipped at the end");
        assert_eq!(w.slice(130, 1), Bytes::new());

        let mb = 1 << 20;
        let mut w = Window::at(0);
        for i in 0..10 {
            w.push(bytes(i * mb as u64, mb));
        }
        assert_eq!(w.end(), 10 * mb as u64);
        assert_eq!(w.start(), 2 * mb as u64, "only KEEP bytes stay");
        assert_eq!(w.slice(3 * mb as u64 - 5, 10), bytes(3 * mb as u64 - 5, 10));
    }
}
