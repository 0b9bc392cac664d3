//! The checksum ("meta") file of a replica: layout and pure helpers.
//!
//! ```text
//! offset  size  field
//! 0       4     magic "DFSM"
//! 4       2     version, u16 big-endian, = 1
//! 6       2     reserved, u16 big-endian: written 0, ignored on read
//! 8       4     bytes_per_checksum, u32 big-endian, in 1..=65536
//! 12      4*n   CRC32C of each chunk of the block file, u32 big-endian, in block order
//! ```
//! Chunk `i` covers block bytes `[i*bpc, min((i+1)*bpc, len))`, so the last one may be partial and
//! `n = ceil(len / bpc)`. The file is exactly `12 + 4*n` bytes for a finalized replica.
//!
//! The reserved field is not checked on read: it carries nothing yet, and refusing a header for a
//! flipped bit there would delete a replica whose data and checksums are intact.

use std::fs::File;
use std::io;

/// Magic bytes opening every meta file.
pub(crate) const MAGIC: [u8; 4] = *b"DFSM";
/// The layout version written and accepted.
pub(crate) const VERSION: u16 = 1;
/// Bytes before the first checksum.
pub(crate) const HEADER_LEN: u64 = 12;
/// Checks a `bytes_per_checksum` from a request or a header (the bound clients share).
pub(crate) use dfs_proto::checksum::validate_bytes_per_checksum as validate_bpc;

/// The 12 header bytes for `bpc`.
pub(crate) fn encode_header(bpc: u32) -> [u8; HEADER_LEN as usize] {
    let mut h = [0u8; HEADER_LEN as usize];
    h[..4].copy_from_slice(&MAGIC);
    h[4..6].copy_from_slice(&VERSION.to_be_bytes());
    h[6..8].copy_from_slice(&0u16.to_be_bytes());
    h[8..12].copy_from_slice(&bpc.to_be_bytes());
    h
}

/// Parses a header, returning its `bytes_per_checksum`. The reserved field is ignored.
pub(crate) fn decode_header(h: &[u8]) -> Result<u32, String> {
    if h.len() < HEADER_LEN as usize {
        return Err(format!(
            "meta header is {} bytes, expected {HEADER_LEN}",
            h.len()
        ));
    }
    if h[..4] != MAGIC {
        return Err(format!("bad meta magic {:02x?}", &h[..4]));
    }
    let version = u16::from_be_bytes([h[4], h[5]]);
    if version != VERSION {
        return Err(format!("unsupported meta version {version}"));
    }
    validate_bpc(u32::from_be_bytes([h[8], h[9], h[10], h[11]]))
}

/// Number of chunks (checksums) of a block of `len` bytes.
pub(crate) fn chunks_for(len: u64, bpc: u32) -> u64 {
    len.div_ceil(u64::from(bpc))
}

/// Size of the meta file of a block of `len` bytes.
pub(crate) fn meta_len(len: u64, bpc: u32) -> u64 {
    HEADER_LEN + 4 * chunks_for(len, bpc)
}

/// File offset of the checksum of chunk `index`.
pub(crate) fn checksum_pos(index: u64) -> u64 {
    HEADER_LEN + 4 * index
}

/// Reads the header of an open meta file.
pub(crate) fn read_header(meta: &File) -> io::Result<u32> {
    use std::os::unix::fs::FileExt;
    let mut h = [0u8; HEADER_LEN as usize];
    meta.read_exact_at(&mut h, 0)?;
    decode_header(&h).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// Reads `count` checksums starting with chunk `first`.
pub(crate) fn read_checksums(meta: &File, first: u64, count: usize) -> io::Result<Vec<u32>> {
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0u8; count * 4];
    meta.read_exact_at(&mut buf, checksum_pos(first))?;
    Ok(dfs_proto::checksum::decode(&buf))
}

/// Length of the longest prefix of `data` (at most `len` bytes) whose chunks match the checksums in
/// `meta` (positioned anywhere; read from the first checksum on). A chunk without a stored checksum
/// ends the prefix. Reads both files sequentially with big buffers.
pub(crate) fn verified_prefix(data: &File, meta: &File, len: u64, bpc: u32) -> io::Result<u64> {
    let bpc64 = u64::from(bpc);
    // About 1 MiB of data per read, a whole number of chunks.
    let chunks_per_read = ((1u64 << 20) / bpc64).max(1);
    let mut buf = vec![0u8; (chunks_per_read * bpc64) as usize];
    let mut sums_buf = vec![0u8; (chunks_per_read * 4) as usize];
    let mut pos = 0u64;
    while pos < len {
        let want = (len - pos).min(buf.len() as u64) as usize;
        let got = read_at_most(data, &mut buf[..want], pos)?;
        if got == 0 {
            break;
        }
        let nchunks = chunks_for(got as u64, bpc) as usize;
        let sums_got = read_at_most(
            meta,
            &mut sums_buf[..nchunks * 4],
            checksum_pos(pos / bpc64),
        )?;
        let sums = dfs_proto::checksum::decode(&sums_buf[..sums_got]);
        for (i, piece) in buf[..got].chunks(bpc as usize).enumerate() {
            match sums.get(i) {
                Some(&s) if s == crc32c::crc32c(piece) => pos += piece.len() as u64,
                _ => return Ok(pos),
            }
        }
        if got < want {
            // The block file ends here.
            break;
        }
    }
    Ok(pos)
}

/// Fills as much of `buf` as the file has from `offset` on; returns the bytes read.
fn read_at_most(f: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    use std::os::unix::fs::FileExt;
    let mut done = 0;
    while done < buf.len() {
        match f.read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// Reads a whole small file region into a vector (used for partial-chunk CRCs).
pub(crate) fn read_range(f: &File, offset: u64, len: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    let got = read_at_most(f, &mut buf, offset)?;
    if got < len {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!(
                "file ends at {} before {}",
                offset + got as u64,
                offset + len as u64
            ),
        ));
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn header_round_trips_and_rejects_garbage() {
        let h = encode_header(512);
        assert_eq!(&h[..], b"DFSM\x00\x01\x00\x00\x00\x00\x02\x00");
        assert_eq!(decode_header(&h), Ok(512));
        assert!(decode_header(&h[..11]).is_err());
        let mut bad = h;
        bad[0] = b'X';
        assert!(decode_header(&bad).is_err());
        let mut bad = h;
        bad[5] = 2;
        assert!(decode_header(&bad).is_err());
        assert!(decode_header(&encode_header(0)).is_err());
        let mut reserved = h;
        reserved[7] = 1;
        assert_eq!(
            decode_header(&reserved),
            Ok(512),
            "the reserved field is ignored"
        );
        assert!(decode_header(&encode_header(65537)).is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(meta_len(0, 512), 12);
        assert_eq!(meta_len(1, 512), 16);
        assert_eq!(meta_len(512, 512), 16);
        assert_eq!(meta_len(513, 512), 20);
        assert_eq!(checksum_pos(3), 24);
    }

    fn files(data: &[u8], sums: &[u32]) -> (tempfile::NamedTempFile, tempfile::NamedTempFile) {
        let mut d = tempfile::NamedTempFile::new().unwrap();
        d.write_all(data).unwrap();
        let mut m = tempfile::NamedTempFile::new().unwrap();
        m.write_all(&encode_header(100)).unwrap();
        m.write_all(&dfs_proto::checksum::encode(sums)).unwrap();
        (d, m)
    }

    #[test]
    fn verified_prefix_stops_at_the_first_bad_or_missing_chunk() {
        let data: Vec<u8> = (0..1050u32).map(|i| (i % 251) as u8).collect();
        let sums = dfs_proto::checksum::compute(0, &data, 100);
        let (d, m) = files(&data, &sums);
        assert_eq!(
            verified_prefix(d.as_file(), m.as_file(), 1050, 100).unwrap(),
            1050
        );
        // Claimed length beyond the file: only what exists counts.
        assert_eq!(
            verified_prefix(d.as_file(), m.as_file(), 5000, 100).unwrap(),
            1050
        );

        let mut bad = data.clone();
        bad[730] ^= 1;
        let (d, m) = files(&bad, &sums);
        assert_eq!(
            verified_prefix(d.as_file(), m.as_file(), 1050, 100).unwrap(),
            700
        );

        let (d, m) = files(&data, &sums[..4]);
        assert_eq!(
            verified_prefix(d.as_file(), m.as_file(), 1050, 100).unwrap(),
            400
        );
    }
}
