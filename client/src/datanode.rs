//! Talking to DataNodes over the data-transfer protocol: connect, send one op, read its reply.

use std::time::Duration;

use dfs_proto::frame::{read_frame, write_frame};
use dfs_proto::pb::{self, op_request::Op, OpRequest};
use tokio::io::{AsyncWriteExt, BufReader, BufWriter};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

/// Socket buffer for one data-transfer stream: big enough that a 64 KiB packet never waits.
const STREAM_BUF: usize = 256 * 1024;

pub(crate) fn addr(dn: &pb::DatanodeId) -> String {
    format!("{}:{}", dn.host, dn.xfer_port)
}

/// A connection to a DataNode, split so acks can be read while packets are written.
pub(crate) struct Conn {
    pub(crate) reader: BufReader<OwnedReadHalf>,
    pub(crate) writer: BufWriter<OwnedWriteHalf>,
}

impl Conn {
    /// Connects and sends `op`, then reads the op's reply `R`; every step bounded by `timeout`.
    pub(crate) async fn open<R: prost::Message + Default>(
        dn: &pb::DatanodeId,
        op: Op,
        timeout: Duration,
    ) -> std::io::Result<(Conn, R)> {
        let a = addr(dn);
        let stream = tokio::time::timeout(timeout, TcpStream::connect(&a))
            .await
            .map_err(|_| timed_out(&a, "connect"))??;
        stream.set_nodelay(true)?;
        let (r, w) = stream.into_split();
        let mut conn = Conn {
            reader: BufReader::with_capacity(STREAM_BUF, r),
            writer: BufWriter::with_capacity(STREAM_BUF, w),
        };
        let req = OpRequest { op: Some(op) };
        write_frame(&mut conn.writer, &req).await.map_err(to_io)?;
        conn.writer.flush().await?;
        let reply = tokio::time::timeout(timeout, read_frame::<_, R>(&mut conn.reader))
            .await
            .map_err(|_| timed_out(&a, "reply"))?
            .map_err(to_io)?;
        Ok((conn, reply))
    }
}

pub(crate) fn timed_out(addr: &str, what: &str) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!("DataNode {addr}: {what} timed out"),
    )
}

pub(crate) fn to_io(e: dfs_proto::WireError) -> std::io::Error {
    match e {
        dfs_proto::WireError::Io(e) => e,
        other => std::io::Error::new(std::io::ErrorKind::InvalidData, other.to_string()),
    }
}

/// "SUCCESS" or the DataNode's message for a failed op.
pub(crate) fn check(
    status: i32,
    message: &str,
    dn: &pb::DatanodeId,
) -> std::result::Result<(), String> {
    if status == pb::Status::Success as i32 {
        return Ok(());
    }
    let name = pb::Status::try_from(status)
        .map(|s| s.as_str_name())
        .unwrap_or("UNKNOWN");
    Err(format!("DataNode {} answered {name}: {message}", addr(dn)))
}
