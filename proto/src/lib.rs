//! The dfs wire: protobuf messages (gRPC control plane, data-transfer headers, edit-log and
//! checkpoint records) generated from `proto/dfs.proto`, plus the data-transfer framing that both
//! DataNodes and clients speak.
//!
//! Module map:
//! - [`pb`]: generated prost messages and tonic clients/servers.
//! - [`acl`]: POSIX ACL entries, their `setfacl` text form and wire form, shared by NameNode
//!   and clients.
//! - [`frame`]: length-prefixed prost messages on a byte stream, with a size cap.
//! - [`checksum`]: CRC32C per chunk, the unit of integrity on disk and on the wire.
//! - [`display`]: modes, sizes and dates as people read them (the shell and the web UI).
//! - [`packet`]: the 64 KiB data packets of the write pipeline and of streaming reads.
//! - [`path`]: [`path::DfsPath`], a valid namespace path by construction.
//! - [`error_kind`]: the error names NameNode and clients share over gRPC metadata.
//!
//! Byte layouts are specified in `docs/formats.md`.

pub mod acl;
pub mod checksum;
pub mod display;
pub mod error_kind;
pub mod frame;
pub mod packet;
pub mod path;

/// Generated protobuf types and gRPC services.
#[allow(clippy::all, missing_docs)]
pub mod pb {
    tonic::include_proto!("dfs");
}

/// Errors decoding the data-transfer protocol. A bad frame closes its connection only.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("frame of {len} bytes exceeds the limit of {max}")]
    FrameTooLarge { len: usize, max: usize },
    #[error("malformed message: {0}")]
    Decode(#[from] prost::DecodeError),
    #[error("connection closed")]
    Closed,
    #[error("invalid packet: {0}")]
    InvalidPacket(String),
    #[error("checksum mismatch at block offset {offset}")]
    Checksum { offset: u64 },
}

pub type WireResult<T> = std::result::Result<T, WireError>;
