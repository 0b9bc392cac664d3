//! Data packets: a [`PacketHeader`] frame, then the chunk checksums (big-endian `u32` each, one per
//! chunk piece of the data, see [`crate::checksum`]), then `data_len` bytes of data.
//!
//! The same packet shape carries the write pipeline (client → DataNode → DataNode) and streaming
//! reads (DataNode → client). An empty packet with `last_packet` set ends a block.

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::checksum;
use crate::frame::{read_frame, write_frame};
use crate::pb::PacketHeader;
use crate::{WireError, WireResult};

/// Data bytes in a full packet (HDFS's `dfs.client-write-packet-size`).
pub const PACKET_SIZE: usize = 64 * 1024;

/// Largest packet payload a receiver accepts.
pub const MAX_PACKET_DATA: u32 = 16 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq)]
pub struct Packet {
    pub header: PacketHeader,
    pub checksums: Vec<u32>,
    pub data: Bytes,
}

impl Packet {
    /// A data packet, with its checksums computed here.
    pub fn new(
        seqno: i64,
        offset_in_block: u64,
        data: Bytes,
        bytes_per_checksum: u32,
        sync: bool,
    ) -> Self {
        let checksums = checksum::compute(offset_in_block, &data, bytes_per_checksum);
        Packet {
            header: PacketHeader {
                seqno,
                offset_in_block,
                data_len: data.len() as u32,
                last_packet: false,
                sync,
            },
            checksums,
            data,
        }
    }

    /// The empty packet that ends a block.
    pub fn last(seqno: i64, offset_in_block: u64, sync: bool) -> Self {
        Packet {
            header: PacketHeader {
                seqno,
                offset_in_block,
                data_len: 0,
                last_packet: true,
                sync,
            },
            checksums: Vec::new(),
            data: Bytes::new(),
        }
    }

    /// Block offset just past this packet's data (cannot overflow: [`read_packet`] refuses a
    /// header whose data would end past `u64::MAX`).
    pub fn end_offset(&self) -> u64 {
        self.header.offset_in_block + self.data.len() as u64
    }

    /// Verifies the data against the checksums that came with it.
    pub fn verify(&self, bytes_per_checksum: u32) -> WireResult<()> {
        checksum::verify(
            self.header.offset_in_block,
            &self.data,
            &self.checksums,
            bytes_per_checksum,
        )
        .map_err(|offset| WireError::Checksum { offset })
    }
}

/// Writes one packet. Does not flush.
pub async fn write_packet<W: AsyncWrite + Unpin>(w: &mut W, p: &Packet) -> WireResult<()> {
    write_frame(w, &p.header).await?;
    w.write_all(&checksum::encode(&p.checksums)).await?;
    w.write_all(&p.data).await?;
    Ok(())
}

/// Reads one packet; the checksum count follows from the header, so a header that lies about
/// its sizes is caught before the data is read.
pub async fn read_packet<R: AsyncRead + Unpin>(
    r: &mut R,
    bytes_per_checksum: u32,
) -> WireResult<Packet> {
    let header: PacketHeader = read_frame(r).await?;
    if header.data_len > MAX_PACKET_DATA {
        return Err(WireError::InvalidPacket(format!(
            "data length {} exceeds {}",
            header.data_len, MAX_PACKET_DATA
        )));
    }
    if header.seqno < 0 {
        return Err(WireError::InvalidPacket(format!(
            "negative seqno {}",
            header.seqno
        )));
    }
    let len = header.data_len as usize;
    // Checked before anything is sized from it: an offset near u64::MAX must not overflow.
    let nsums =
        checksum::num_chunks(header.offset_in_block, len, bytes_per_checksum).ok_or_else(|| {
            WireError::InvalidPacket(format!(
                "{} bytes at offset {} run past the largest block offset",
                header.data_len, header.offset_in_block
            ))
        })?;
    let mut sums = vec![0u8; nsums * checksum::CHECKSUM_SIZE];
    r.read_exact(&mut sums).await?;
    let mut data = vec![0u8; len];
    r.read_exact(&mut data).await?;
    Ok(Packet {
        header,
        checksums: checksum::decode(&sums),
        data: Bytes::from(data),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn round_trip_and_verify() {
        let data = Bytes::from((0..70_000u32).map(|i| i as u8).collect::<Vec<_>>());
        let p = Packet::new(3, 300, data, 512, false);
        let mut buf = Vec::new();
        write_packet(&mut buf, &p).await.unwrap();
        let back = read_packet(&mut buf.as_slice(), 512).await.unwrap();
        assert_eq!(back, p);
        back.verify(512).unwrap();
    }

    #[tokio::test]
    async fn corrupted_payload_fails_verification() {
        let p = Packet::new(0, 0, Bytes::from(vec![1u8; 4096]), 512, false);
        let mut buf = Vec::new();
        write_packet(&mut buf, &p).await.unwrap();
        let n = buf.len();
        buf[n - 1] ^= 0x80;
        let back = read_packet(&mut buf.as_slice(), 512).await.unwrap();
        assert!(matches!(
            back.verify(512),
            Err(WireError::Checksum { offset: 3584 })
        ));
    }

    #[tokio::test]
    async fn an_offset_whose_end_overflows_is_rejected() {
        let mut buf = Vec::new();
        let h = PacketHeader {
            offset_in_block: u64::MAX - 10,
            data_len: 100,
            ..Default::default()
        };
        write_frame(&mut buf, &h).await.unwrap();
        buf.extend_from_slice(&[0u8; 104]);
        assert!(matches!(
            read_packet(&mut buf.as_slice(), 512).await,
            Err(WireError::InvalidPacket(_))
        ));
    }

    #[tokio::test]
    async fn absurd_length_is_rejected() {
        let mut buf = Vec::new();
        let h = PacketHeader {
            data_len: u32::MAX,
            ..Default::default()
        };
        write_frame(&mut buf, &h).await.unwrap();
        assert!(matches!(
            read_packet(&mut buf.as_slice(), 512).await,
            Err(WireError::InvalidPacket(_))
        ));
    }
}

/// The same decoding the `transfer` fuzz target drives (fuzz/), on the stable toolchain: any
/// bytes end in an error or packets, never a panic.
#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;
    use crate::frame::read_frame;
    use crate::pb::OpRequest;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn any_connection_bytes_decode_or_fail_cleanly(
            bpc in 1u32..=1024,
            bytes in prop::collection::vec(any::<u8>(), 0..4096),
        ) {
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            rt.block_on(async {
                let mut r = bytes.as_slice();
                let _ = read_frame::<_, OpRequest>(&mut r).await;
                while let Ok(p) = read_packet(&mut r, bpc).await {
                    let _ = p.verify(bpc);
                }
            });
        }

        #[test]
        fn written_packets_read_back(
            offset in 0u64..1 << 40,
            data in prop::collection::vec(any::<u8>(), 0..3000),
            bpc in 1u32..=1024,
        ) {
            let p = Packet::new(7, offset, Bytes::from(data.clone()), bpc, false);
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let back = rt.block_on(async {
                let mut buf = Vec::new();
                write_packet(&mut buf, &p).await.unwrap();
                read_packet(&mut buf.as_slice(), bpc).await.unwrap()
            });
            prop_assert_eq!(&back.data[..], &data[..]);
            prop_assert!(back.verify(bpc).is_ok());
        }
    }
}
