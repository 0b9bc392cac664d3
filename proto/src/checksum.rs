//! CRC32C per chunk.
//!
//! A block is cut into chunks of `bytes_per_checksum` bytes (512 by default) at multiples of that
//! size counted from the block's first byte, and each chunk has its own CRC32C. A stretch of data
//! starting mid-chunk (an append to a partial block, or the packet after an `hflush`) therefore
//! begins with a short piece covering only the rest of its chunk; the DataNode extends the stored
//! CRC of that chunk with [`crc32c::crc32c_append`] rather than recomputing it from disk.

use std::ops::Range;

/// HDFS's default, and ours.
pub const DEFAULT_BYTES_PER_CHECKSUM: u32 = 512;

/// Largest `bytes_per_checksum` accepted anywhere (on the wire, on disk, in configuration): a
/// chunk must fit comfortably in one packet.
pub const MAX_BYTES_PER_CHECKSUM: u32 = 65536;

/// Checks a `bytes_per_checksum` that came from a peer, a file or a user.
pub fn validate_bytes_per_checksum(bpc: u32) -> Result<u32, String> {
    if (1..=MAX_BYTES_PER_CHECKSUM).contains(&bpc) {
        Ok(bpc)
    } else {
        Err(format!(
            "bytes_per_checksum {bpc} is not in 1..={MAX_BYTES_PER_CHECKSUM}"
        ))
    }
}

/// Bytes of one checksum on the wire and on disk (big-endian `u32`).
pub const CHECKSUM_SIZE: usize = 4;

/// The pieces of `[offset, offset + len)` that fall in distinct chunks, as ranges into the data.
pub fn chunk_ranges(
    offset: u64,
    len: usize,
    bytes_per_checksum: u32,
) -> impl Iterator<Item = Range<usize>> {
    let bpc = u64::from(bytes_per_checksum.max(1));
    let mut pos = 0usize;
    std::iter::from_fn(move || {
        if pos >= len {
            return None;
        }
        let abs = offset + pos as u64;
        let room = (bpc - abs % bpc) as usize;
        let end = (pos + room).min(len);
        let r = pos..end;
        pos = end;
        Some(r)
    })
}

/// How many checksums cover `[offset, offset + len)`; `None` when that range does not fit in
/// a block offset (it ends past `u64::MAX`), which only a hostile or broken peer can ask for.
pub fn num_chunks(offset: u64, len: usize, bytes_per_checksum: u32) -> Option<usize> {
    if len == 0 {
        return Some(0);
    }
    let bpc = u64::from(bytes_per_checksum.max(1));
    let first = offset / bpc;
    let last = offset.checked_add(len as u64 - 1)? / bpc;
    usize::try_from(last - first + 1).ok()
}

/// One CRC32C per chunk piece of `data`, which starts at block offset `offset`.
pub fn compute(offset: u64, data: &[u8], bytes_per_checksum: u32) -> Vec<u32> {
    chunk_ranges(offset, data.len(), bytes_per_checksum)
        .map(|r| crc32c::crc32c(&data[r]))
        .collect()
}

/// Checks `data` (at block offset `offset`) against `sums`. On a mismatch returns the block
/// offset of the first bad chunk piece.
pub fn verify(offset: u64, data: &[u8], sums: &[u32], bytes_per_checksum: u32) -> Result<(), u64> {
    if num_chunks(offset, data.len(), bytes_per_checksum) != Some(sums.len()) {
        return Err(offset);
    }
    for (r, &expected) in chunk_ranges(offset, data.len(), bytes_per_checksum).zip(sums) {
        if crc32c::crc32c(&data[r.clone()]) != expected {
            return Err(offset + r.start as u64);
        }
    }
    Ok(())
}

/// Checksums as big-endian bytes.
pub fn encode(sums: &[u32]) -> Vec<u8> {
    sums.iter().flat_map(|s| s.to_be_bytes()).collect()
}

/// Big-endian bytes back to checksums; a trailing partial checksum is ignored.
pub fn decode(bytes: &[u8]) -> Vec<u32> {
    bytes
        .chunks_exact(CHECKSUM_SIZE)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_data_splits_into_whole_chunks() {
        let r: Vec<_> = chunk_ranges(1024, 1100, 512).collect();
        assert_eq!(r, vec![0..512, 512..1024, 1024..1100]);
        assert_eq!(num_chunks(1024, 1100, 512), Some(3));
    }

    #[test]
    fn unaligned_start_gets_a_short_first_piece() {
        let r: Vec<_> = chunk_ranges(500, 600, 512).collect();
        assert_eq!(r, vec![0..12, 12..524, 524..600]);
        assert_eq!(num_chunks(500, 600, 512), Some(3));
        assert_eq!(num_chunks(0, 0, 512), Some(0));
        assert_eq!(num_chunks(511, 1, 512), Some(1));
        assert_eq!(num_chunks(511, 2, 512), Some(2));
    }

    #[test]
    fn a_range_past_the_largest_offset_has_no_chunk_count() {
        assert_eq!(num_chunks(u64::MAX, 1, 512), Some(1));
        assert_eq!(num_chunks(u64::MAX, 2, 512), None);
        assert_eq!(num_chunks(u64::MAX - 10, 100, 512), None);
        assert!(verify(u64::MAX - 10, &[0u8; 100], &[0], 512).is_err());
    }

    #[test]
    fn bytes_per_checksum_bounds() {
        assert!(validate_bytes_per_checksum(0).is_err());
        assert_eq!(validate_bytes_per_checksum(1), Ok(1));
        assert_eq!(validate_bytes_per_checksum(65536), Ok(65536));
        assert!(validate_bytes_per_checksum(65537).is_err());
    }

    #[test]
    fn extending_a_partial_chunk_crc_equals_the_whole_chunk_crc() {
        let data: Vec<u8> = (0..512u32).map(|i| (i * 7) as u8).collect();
        let head = crc32c::crc32c(&data[..100]);
        assert_eq!(
            crc32c::crc32c_append(head, &data[100..]),
            crc32c::crc32c(&data)
        );
    }

    #[test]
    fn verify_finds_the_flipped_chunk() {
        let mut data = vec![3u8; 2000];
        let sums = compute(100, &data, 512);
        assert!(verify(100, &data, &sums, 512).is_ok());
        data[1500] ^= 1;
        // piece 0 covers 100..512 (412 bytes), then 512..1024, 1024..1536, 1536..2048.
        assert_eq!(verify(100, &data, &sums, 512), Err(1536));
        assert!(verify(100, &data, &sums[1..], 512).is_err());
        assert_eq!(decode(&encode(&sums)), sums);
    }
}
