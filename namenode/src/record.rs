//! The checksummed record framing shared by edit-log segments and checkpoint images:
//! `u32 BE payload length | u32 BE CRC32C(payload) | payload`.
//!
//! A reader tells a clean end of file (no byte of a next record) from a bad record (short read,
//! oversized length, CRC mismatch), so callers can decide between "torn tail" and "corrupt".

use std::io::{self, Read};

/// Largest payload accepted. Edit records are small; an image inode with a million blocks is
/// ~20 MiB. Anything bigger is garbage, and refusing it avoids a huge allocation.
pub const MAX_RECORD: usize = 64 << 20;

/// Bytes of the per-record header.
pub const HEADER_LEN: usize = 8;

/// Appends one framed record to `out`.
pub fn encode(payload: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(&crc32c::crc32c(payload).to_be_bytes());
    out.extend_from_slice(payload);
}

/// What reading the next record found.
#[derive(Debug)]
pub enum Next {
    /// A record whose checksum matches.
    Record(Vec<u8>),
    /// End of input exactly at a record boundary.
    Eof,
    /// A damaged or incomplete record; the string says why.
    Bad(String),
}

/// Reads one framed record. I/O errors other than a short read are returned as errors (they say
/// nothing about the file's contents).
pub fn read_next<R: Read>(r: &mut R) -> io::Result<Next> {
    let mut header = [0u8; HEADER_LEN];
    let n = read_full(r, &mut header)?;
    if n == 0 {
        return Ok(Next::Eof);
    }
    if n < HEADER_LEN {
        return Ok(Next::Bad(format!(
            "short record header ({n} of {HEADER_LEN} bytes)"
        )));
    }
    let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let crc = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
    if len > MAX_RECORD {
        return Ok(Next::Bad(format!(
            "record length {len} exceeds {MAX_RECORD}"
        )));
    }
    let mut payload = vec![0u8; len];
    let got = read_full(r, &mut payload)?;
    if got < len {
        return Ok(Next::Bad(format!("short record ({got} of {len} bytes)")));
    }
    let actual = crc32c::crc32c(&payload);
    if actual != crc {
        return Ok(Next::Bad(format!(
            "checksum mismatch (stored {crc:#010x}, computed {actual:#010x})"
        )));
    }
    Ok(Next::Record(payload))
}

/// Reads until `buf` is full or EOF; returns the bytes read.
pub fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_detects_every_damage() {
        let mut buf = Vec::new();
        encode(b"hello", &mut buf);
        encode(b"", &mut buf);
        let mut r = buf.as_slice();
        assert!(matches!(read_next(&mut r).unwrap(), Next::Record(p) if p == b"hello"));
        assert!(matches!(read_next(&mut r).unwrap(), Next::Record(p) if p.is_empty()));
        assert!(matches!(read_next(&mut r).unwrap(), Next::Eof));
        // Truncated in the payload and in the header.
        for cut in [3, 10] {
            let mut r = &buf[..cut];
            assert!(
                matches!(read_next(&mut r).unwrap(), Next::Bad(_)),
                "cut {cut}"
            );
        }
        // A flipped payload byte.
        let mut flipped = buf.clone();
        flipped[9] ^= 1;
        assert!(matches!(
            read_next(&mut flipped.as_slice()).unwrap(),
            Next::Bad(_)
        ));
        // A huge length is refused before allocating.
        let mut huge = vec![0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0];
        huge.extend_from_slice(b"x");
        assert!(matches!(
            read_next(&mut huge.as_slice()).unwrap(),
            Next::Bad(_)
        ));
    }
}
