//! Streams a range of a replica as data packets: the read path and DataNode-to-DataNode transfers.
//!
//! Checksums come from the meta file and are not verified here: the receiver verifies them and
//! reports corruption, which is how a corrupt replica is found on read. The one exception is a
//! final piece shorter than its chunk on disk (a range that ends mid-chunk, or an RBW replica
//! whose last chunk has more bytes than are visible): its CRC is computed from the bytes sent.
//! For a chunk that is complete on disk the whole chunk is first checked against the stored CRC,
//! and a deliberately wrong CRC is sent if it does not match, so corruption still reaches the
//! reader.
//!
//! Disk reads run on a blocking thread that feeds a small channel; the async side writes packets
//! to the socket as they come, so reading the next packet overlaps sending the previous one.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::time::Duration;

use bytes::Bytes;
use dfs_proto::checksum;
use dfs_proto::packet::{self, Packet, PACKET_SIZE};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::meta;
use crate::storage::ReplicaView;
use crate::types::ReplicaState;
use crate::{Error, Result};

/// Packets read ahead of the socket (2 MiB).
const READ_AHEAD: usize = 32;

/// Bytes read from disk at once: big reads stream a cold replica at disk speed, where 64 KiB
/// reads would leave it to the kernel's small default read-ahead.
const READ_UNIT: u64 = 1 << 20;

/// Data bytes per packet: [`PACKET_SIZE`] rounded down to whole chunks (at least one chunk).
pub(crate) fn packet_data_len(bpc: u32) -> u64 {
    let bpc = u64::from(bpc);
    ((PACKET_SIZE as u64 / bpc) * bpc).max(bpc)
}

/// A range of a replica that ends past the largest block offset (only a corrupt replica length
/// could ask for one).
fn past_max_offset(pos: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("a read at block offset {pos} runs past the largest block offset"),
    )
}

/// Checksums for `[pos, pos + len)` of a replica (`pos` chunk-aligned), as a reader must receive
/// them; `data` holds those bytes. See the module doc for the final partial piece.
pub(crate) fn range_checksums(
    view: &ReplicaView,
    data_file: &File,
    meta_file: &File,
    pos: u64,
    data: &[u8],
) -> io::Result<Vec<u32>> {
    let bpc = u64::from(view.bpc);
    let len = data.len();
    let n = checksum::num_chunks(pos, len, view.bpc).ok_or_else(|| past_max_offset(pos))?;
    let mut sums = meta::read_checksums(meta_file, pos / bpc, n)?;
    let end = pos + len as u64;
    let natural_end = view.state == ReplicaState::Finalized && end == view.bytes_on_disk;
    if !end.is_multiple_of(bpc) && !natural_end {
        let chunk_start = end - end % bpc;
        let piece_crc = crc32c::crc32c(&data[(chunk_start - pos) as usize..]);
        let chunk_end = (chunk_start + bpc).min(view.bytes_on_disk);
        // An RBW replica's last chunk may be growing under us: only the bytes sent count. Any other
        // chunk is stable on disk and checked whole against its stored CRC.
        let stable =
            view.state == ReplicaState::Finalized || chunk_start + bpc <= view.bytes_on_disk;
        let crc = if stable {
            let whole =
                meta::read_range(data_file, chunk_start, (chunk_end - chunk_start) as usize)?;
            let stored = sums.last().copied().unwrap_or_default();
            if crc32c::crc32c(&whole) == stored {
                piece_crc
            } else {
                !piece_crc
            }
        } else {
            piece_crc
        };
        if let Some(last) = sums.last_mut() {
            *last = crc;
        }
    }
    Ok(sums)
}

/// Reads up to [`READ_UNIT`] from `pos` (chunk-aligned) up to `end` with one read, and cuts it
/// into packets numbered from `seqno`. Packet boundaries inside the read fall on whole chunks, so
/// each packet's checksums are a slice of the range's.
fn read_packets_at(
    view: &ReplicaView,
    data_file: &File,
    meta_file: &File,
    seqno: i64,
    pos: u64,
    end: u64,
) -> io::Result<Vec<Packet>> {
    let unit = packet_data_len(view.bpc);
    let len = (end - pos).min((READ_UNIT / unit).max(1) * unit) as usize;
    let mut data = vec![0u8; len];
    data_file.read_exact_at(&mut data, pos)?;
    let sums = range_checksums(view, data_file, meta_file, pos, &data)?;
    let data = Bytes::from(data);
    let mut packets = Vec::with_capacity(len.div_ceil(unit as usize));
    let mut off = 0usize;
    while off < len {
        let n = (len - off).min(unit as usize);
        let first = off / view.bpc as usize;
        let count = checksum::num_chunks(pos + off as u64, n, view.bpc)
            .ok_or_else(|| past_max_offset(pos))?;
        packets.push(Packet {
            header: dfs_proto::pb::PacketHeader {
                seqno: seqno + packets.len() as i64,
                offset_in_block: pos + off as u64,
                data_len: n as u32,
                last_packet: false,
                sync: false,
            },
            checksums: sums[first..first + count].to_vec(),
            data: data.slice(off..off + n),
        });
        off += n;
    }
    Ok(packets)
}

/// Sends `[start, end)` of the replica (`start` chunk-aligned) as packets with seqnos from 0, then
/// the empty last packet. Each write must complete within `timeout`. Returns the seqno of the last
/// packet.
pub(crate) async fn send_range<W: AsyncWrite + Unpin>(
    w: &mut W,
    view: ReplicaView,
    data_file: File,
    meta_file: File,
    start: u64,
    end: u64,
    timeout: Duration,
) -> Result<i64> {
    let (tx, mut rx) = mpsc::channel::<io::Result<Packet>>(READ_AHEAD);
    let producer = tokio::task::spawn_blocking(move || {
        let mut pos = start;
        let mut seqno = 0i64;
        while pos < end {
            match read_packets_at(&view, &data_file, &meta_file, seqno, pos, end) {
                Ok(packets) => {
                    for p in packets {
                        pos = p.end_offset();
                        seqno += 1;
                        if tx.blocking_send(Ok(p)).is_err() {
                            return;
                        }
                    }
                }
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            }
        }
    });
    let mut seqno = 0i64;
    let mut result = Ok(());
    while let Some(p) = rx.recv().await {
        let p = match p {
            Ok(p) => p,
            Err(e) => {
                result = Err(Error::io(format!("read {}", view.block.id))(e));
                break;
            }
        };
        seqno = p.header.seqno + 1;
        let write = async {
            packet::write_packet(w, &p).await?;
            w.flush().await?;
            Ok::<(), dfs_proto::WireError>(())
        };
        match tokio::time::timeout(timeout, write).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                result = Err(e.into());
                break;
            }
            Err(_) => {
                result = Err(Error::Timeout(format!("sending {}", view.block.id)));
                break;
            }
        }
    }
    drop(rx);
    producer.await?;
    result?;
    // A copy replaces a lost replica: make it durable before it counts.
    let last = Packet::last(seqno, end, true);
    let write = async {
        packet::write_packet(w, &last).await?;
        w.flush().await?;
        Ok::<(), dfs_proto::WireError>(())
    };
    match tokio::time::timeout(timeout, write).await {
        Ok(r) => r?,
        Err(_) => return Err(Error::Timeout(format!("sending {}", view.block.id))),
    }
    Ok(seqno)
}
