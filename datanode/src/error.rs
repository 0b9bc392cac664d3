//! The crate's one error type.
//!
//! Variants are what callers branch on: the data-transfer server maps them to a wire
//! [`Status`](dfs_proto::pb::Status) in exactly one place (`transfer::wire_status`), and the
//! storage layer inspects [`Error::Io`] to decide whether a volume has failed.

use std::path::PathBuf;

use dfs_proto::WireError;

/// Everything that can go wrong in a DataNode.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A local disk operation failed; `context` names the operation and file.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// A volume cannot be used (wrong DataNode uuid, unreadable VERSION file ...).
    #[error("volume {}: {reason}", path.display())]
    Volume { path: PathBuf, reason: String },
    /// Every configured volume has failed; the DataNode cannot store anything.
    #[error("no usable volume left")]
    NoVolumes,
    /// The replica asked for is not stored here.
    #[error("{0}")]
    NotFound(String),
    /// A replica with this id and an equal or newer generation stamp exists already.
    #[error("{0}")]
    Exists(String),
    /// A request that is malformed or does not fit the replica's state.
    #[error("{0}")]
    Invalid(String),
    /// Data did not match its checksum.
    #[error("{0}")]
    Checksum(String),
    /// No volume has room for a new replica.
    #[error("{0}")]
    NoSpace(String),
    /// The data-transfer protocol failed (bad frame, peer gone ...).
    #[error("data transfer: {0}")]
    Wire(#[from] WireError),
    /// A peer did not answer within the socket timeout.
    #[error("timed out: {0}")]
    Timeout(String),
    /// Another DataNode answered a data-transfer request with an error status.
    #[error("{peer}: {message}")]
    Peer { peer: String, message: String },
    /// A NameNode RPC failed.
    #[error("namenode rpc: {0}")]
    Rpc(#[from] tonic::Status),
    /// The NameNode address is unusable.
    #[error("namenode endpoint: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// A background task died (panicked or was cancelled).
    #[error("internal: {0}")]
    Internal(String),
}

/// The crate's result type.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Wraps an I/O error with what was being done, for `map_err`.
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let context = context.into();
        move |source| Error::Io { context, source }
    }
}

impl From<tokio::task::JoinError> for Error {
    fn from(e: tokio::task::JoinError) -> Self {
        Error::Internal(format!("blocking task failed: {e}"))
    }
}
