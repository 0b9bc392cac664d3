//! Framing: a big-endian `u32` byte length followed by that many bytes of one prost message.
//!
//! Every header on a data-transfer connection travels this way. The length is checked against a
//! cap before anything is allocated, so a garbage length cannot make a server allocate gigabytes.

use prost::Message;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::{WireError, WireResult};

/// Largest header frame accepted. Headers are small; anything bigger is a bad peer.
pub const MAX_FRAME: usize = 1 << 20;

/// Writes `msg` as one frame. Does not flush: callers batch frames and flush when they wait.
pub async fn write_frame<W, M>(w: &mut W, msg: &M) -> WireResult<()>
where
    W: AsyncWrite + Unpin,
    M: Message,
{
    let body = msg.encode_to_vec();
    w.write_all(&(body.len() as u32).to_be_bytes()).await?;
    w.write_all(&body).await?;
    Ok(())
}

/// Reads one frame and decodes it as `M`. A clean EOF before the first byte is [`WireError::Closed`].
pub async fn read_frame<R, M>(r: &mut R) -> WireResult<M>
where
    R: AsyncRead + Unpin,
    M: Message + Default,
{
    let mut len = [0u8; 4];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Err(WireError::Closed),
        Err(e) => return Err(e.into()),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(WireError::FrameTooLarge {
            len,
            max: MAX_FRAME,
        });
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).await?;
    Ok(M::decode(body.as_slice())?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb::PacketHeader;

    #[tokio::test]
    async fn round_trip() {
        let h = PacketHeader {
            seqno: 7,
            offset_in_block: 65536,
            data_len: 512,
            last_packet: false,
            sync: true,
        };
        let mut buf = Vec::new();
        write_frame(&mut buf, &h).await.unwrap();
        let back: PacketHeader = read_frame(&mut buf.as_slice()).await.unwrap();
        assert_eq!(back, h);
    }

    #[tokio::test]
    async fn oversized_length_is_rejected_before_allocating() {
        let buf = u32::MAX.to_be_bytes();
        let err = read_frame::<_, PacketHeader>(&mut buf.as_slice())
            .await
            .unwrap_err();
        assert!(matches!(err, WireError::FrameTooLarge { .. }), "{err}");
    }

    #[tokio::test]
    async fn truncated_and_garbage_frames_are_errors() {
        let eof = read_frame::<_, PacketHeader>(&mut &[][..])
            .await
            .unwrap_err();
        assert!(matches!(eof, WireError::Closed));
        let short = [0, 0, 0, 10, 1, 2];
        assert!(read_frame::<_, PacketHeader>(&mut &short[..])
            .await
            .is_err());
        let garbage = [0, 0, 0, 3, 0xff, 0xff, 0xff];
        let err = read_frame::<_, PacketHeader>(&mut &garbage[..])
            .await
            .unwrap_err();
        assert!(matches!(err, WireError::Decode(_)), "{err}");
    }
}
