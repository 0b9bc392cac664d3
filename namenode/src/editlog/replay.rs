//! Reading segments back: in order, contiguous, with a power-loss tail cut off and anything
//! else that is damaged refused.
//!
//! A bad record in the last segment is cut off (the file truncated and fsynced, with a warning)
//! when no valid record after it says the log was synced past it: then it lies in the unsynced
//! tail, which a crash may tear and a power loss may riddle with holes, and nothing from it on
//! was promised to survive. A bad record that a later record says was synced is corruption, and
//! cutting there would drop acknowledged edits, so loading is refused with the file and offset;
//! so is a bad record in an earlier segment, and a record whose checksum matches but whose
//! content does not decode.

use std::fs::{self, File, OpenOptions};
use std::io::{BufReader, Write};
use std::path::Path;

use dfs_proto::pb;
use prost::Message;

use super::{list_segments, Segment, EDIT_MAGIC};
use crate::error::{Error, Result};
use crate::op::Op;
use crate::record::{self, Next};

/// Replays every record with txid > `after_txid` into `apply`, in order; returns the last txid
/// (`after_txid` when there is nothing newer). Torn tails of the last segment are truncated.
pub fn replay(
    dir: &Path,
    after_txid: u64,
    mut apply: impl FnMut(u64, Op) -> Result<()>,
) -> Result<u64> {
    let segments = list_segments(dir)?;
    let mut last = after_txid;
    for (i, seg) in segments.iter().enumerate() {
        let is_last = i + 1 == segments.len();
        // Every record of this segment precedes the next segment's first txid.
        if !is_last && segments[i + 1].first_txid <= after_txid + 1 {
            continue;
        }
        if seg.first_txid > last + 1 {
            return Err(Error::Corrupt(format!(
                "edits {} through {} are missing (next segment is {})",
                last + 1,
                seg.first_txid - 1,
                seg.path.display()
            )));
        }
        read_segment(seg, is_last, |txid, op| {
            if txid <= last {
                return Ok(()); // already in the checkpoint
            }
            if txid != last + 1 {
                return Err(Error::Corrupt(format!(
                    "{}: txid {txid} follows {last}: edits are missing",
                    seg.path.display()
                )));
            }
            apply(txid, op).map_err(|e| {
                Error::Corrupt(format!(
                    "{}: cannot apply txid {txid}: {e}",
                    seg.path.display()
                ))
            })?;
            last = txid;
            Ok(())
        })?;
    }
    Ok(last)
}

/// Reads one segment, handing each record to `f`. Records must be contiguous from the
/// segment's first txid.
fn read_segment(
    seg: &Segment,
    is_last: bool,
    mut f: impl FnMut(u64, Op) -> Result<()>,
) -> Result<()> {
    let path = &seg.path;
    let io = |e: std::io::Error| Error::io(format!("read {}", path.display()), e);
    let file = File::open(path).map_err(io)?;
    let mut r = BufReader::new(file);
    let mut magic = [0u8; 8];
    let n = record::read_full(&mut r, &mut magic).map_err(io)?;
    if n < magic.len() {
        if is_last && magic[..n] == EDIT_MAGIC[..n] {
            tracing::warn!(segment = %path.display(), "edit segment torn while being created; resetting it");
            return reset_segment(path);
        }
        return Err(Error::Corrupt(format!(
            "{}: short segment header",
            path.display()
        )));
    }
    if &magic != EDIT_MAGIC {
        return Err(Error::Corrupt(format!(
            "{}: bad magic {magic:02x?}",
            path.display()
        )));
    }
    let mut offset = magic.len() as u64;
    let mut expected = seg.first_txid;
    loop {
        let bad = match record::read_next(&mut r).map_err(io)? {
            Next::Eof => return Ok(()),
            Next::Bad(reason) => reason,
            // Never written (every record holds a txid): zero-filled space after a crash.
            Next::Record(payload) if payload.is_empty() => "an empty record".to_string(),
            Next::Record(payload) => {
                // A checksummed but meaningless record is not a torn write.
                let (txid, op, _) = decode_edit(&payload).map_err(|e| {
                    Error::Corrupt(format!(
                        "{} at offset {offset}: a record with a valid checksum {e}",
                        path.display()
                    ))
                })?;
                if txid != expected {
                    return Err(Error::Corrupt(format!(
                        "{} at offset {offset}: txid {txid} where {expected} was expected",
                        path.display()
                    )));
                }
                f(txid, op)?;
                offset += (record::HEADER_LEN + payload.len()) as u64;
                expected += 1;
                continue;
            }
        };
        if !is_last {
            return Err(Error::Corrupt(format!(
                "{} at offset {offset} (txid {expected}): {bad}; this is not the last segment, refusing to load",
                path.display()
            )));
        }
        let bytes = fs::read(path).map_err(io)?;
        let rest = bytes.get(offset as usize + 1..).unwrap_or_default();
        if let Some((at, txid)) = synced_past(rest, expected, offset) {
            return Err(Error::Corrupt(format!(
                "{} at offset {offset} (txid {expected}): {bad}, but the valid record of txid \
                 {txid} at offset {} says the log was synced past it: this is corruption, not \
                 a torn write; refusing to load rather than drop acknowledged edits",
                path.display(),
                offset + 1 + at as u64
            )));
        }
        tracing::warn!(
            segment = %path.display(),
            offset,
            txid = expected,
            reason = %bad,
            "damaged edit-log tail (torn or holed by a crash, never synced): truncating"
        );
        let file = OpenOptions::new().write(true).open(path).map_err(io)?;
        file.set_len(offset)
            .and_then(|_| file.sync_all())
            .map_err(|e| Error::io(format!("truncate {}", path.display()), e))?;
        return Ok(());
    }
}

/// A record's payload as `(txid, op, synced_offset)`; the error says what is wrong with it.
fn decode_edit(payload: &[u8]) -> std::result::Result<(u64, Op, u64), String> {
    let rec = pb::EditRecord::decode(payload).map_err(|e| format!("does not decode: {e}"))?;
    let (txid, op) = Op::from_record(&rec).map_err(|e| format!("makes no sense: {e}"))?;
    Ok((txid, op, rec.synced_offset))
}

/// Of the valid records in `rest` (the bytes after a bad record at `bad_at`), the first that says
/// its segment was synced past `bad_at`, as `(position in rest, txid)`. `None` means the bad
/// record lies in the unsynced tail.
fn synced_past(rest: &[u8], min_txid: u64, bad_at: u64) -> Option<(usize, u64)> {
    let mut from = 0;
    while let Some(found) = next_valid_record(&rest[from..], min_txid) {
        let at = from + found.at;
        if found.synced_offset > bad_at {
            return Some((at, found.txid));
        }
        from = at + found.len;
    }
    None
}

/// A whole, checksummed, meaningful record found by [`next_valid_record`].
struct Found {
    /// Where it starts, and its framed length.
    at: usize,
    len: usize,
    txid: u64,
    synced_offset: u64,
}

/// The first whole, checksummed, meaningful record in `rest` (bytes after a bad record) with a
/// txid of at least `min_txid`.
///
/// Every offset is tried, since the bad record's own length cannot be trusted. Cheap tests come
/// first (a plausible length, the protobuf tag of `txid` opening the payload, a txid in range),
/// so zero-filled or random tails cost about one pass; the CRC runs only on likely records.
fn next_valid_record(rest: &[u8], min_txid: u64) -> Option<Found> {
    /// `EditRecord.txid` is field 1, a varint, and prost encodes it first.
    const TXID_TAG: u8 = 0x08;
    let max_txid = min_txid.saturating_add(rest.len() as u64);
    for at in 0..rest.len().saturating_sub(record::HEADER_LEN) {
        let h = &rest[at..at + record::HEADER_LEN];
        let len = u32::from_be_bytes([h[0], h[1], h[2], h[3]]) as usize;
        let start = at + record::HEADER_LEN;
        let Some(payload) = rest.get(start..start.saturating_add(len)) else {
            continue;
        };
        if payload.len() < 2 || payload[0] != TXID_TAG {
            continue;
        }
        let Ok(txid) = prost::encoding::decode_varint(&mut &payload[1..]) else {
            continue;
        };
        if txid < min_txid || txid > max_txid {
            continue;
        }
        if crc32c::crc32c(payload) != u32::from_be_bytes([h[4], h[5], h[6], h[7]]) {
            continue;
        }
        if let Ok((txid, _, synced_offset)) = decode_edit(payload) {
            return Some(Found {
                at,
                len: record::HEADER_LEN + len,
                txid,
                synced_offset,
            });
        }
    }
    None
}

fn reset_segment(path: &Path) -> Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .map_err(|e| Error::io(format!("reset {}", path.display()), e))?;
    f.write_all(EDIT_MAGIC)
        .and_then(|_| f.sync_all())
        .map_err(|e| Error::io(format!("reset {}", path.display()), e))
}
