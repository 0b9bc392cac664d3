//! The dfs client library: namespace operations against the NameNode, and streaming readers and
//! writers that talk to DataNodes directly, verify every checksum and fail over between replicas.
//!
//! Module map:
//! - [`client`]: [`DfsClient`], the async entry point (namespace ops, open/create/append).
//! - `writer`: [`FileWriter`]: packets, the write pipeline, acks, hflush/hsync, block rollover.
//! - `reader`: [`FileReader`]: block streaming, checksum verification, replica failover.
//! - [`blocking`]: the same API for synchronous code, with `std::io::{Read, Write, Seek}`.
//! - `namenode` / `datanode`: the two connections (gRPC to the NameNode, data-transfer TCP).
//! - `holds`: the files open through a client (kept as orphans if unlinked), lease renewal.
//! - [`error`]: [`Error`], rebuilt from NameNode statuses in one place.
//! - [`types`]: the domain types returned ([`FileStatus`], [`BlockLocation`], [`FsckReport`] ...).
//! - [`user`]: the caller's identity (local passwd/group databases).
//! - [`config`]: [`ClientConfig`], the client's settings (the `dfs` binary fills it from `dfs.*`
//!   keys).

pub mod blocking;
pub mod client;
pub mod config;
mod datanode;
pub mod error;
mod holds;
mod namenode;
mod reader;
pub mod types;
pub mod user;
mod writer;

pub use client::{CreateOptions, DfsClient, EntryOptions, MAX_SYMLINKS};
pub use config::ClientConfig;
/// Paths of the namespace: [`path::DfsPath`], inode paths, the limits.
pub use dfs_proto::path;
pub use error::{Error, Result};
/// Keeps a file open (held at the NameNode: unlinked, it stays readable by its inode path) for
/// as long as it lives; from [`FileReader::keep_open`] or [`FileWriter::keep_open`].
pub use holds::Hold as KeepOpen;
pub use reader::FileReader;
pub use types::*;
pub use writer::FileWriter;
