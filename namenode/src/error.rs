//! The crate's one error type.
//!
//! Variants are what callers branch on. Every variant maps to exactly one
//! `dfs_proto::error_kind::ErrorKind`, which is what crosses the wire (see
//! `service::to_status`, the single place where errors become `tonic::Status`).

use dfs_proto::error_kind::ErrorKind;
use dfs_proto::path::InvalidPath;

/// Everything that can go wrong in the NameNode.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("no such file or directory: {0}")]
    NotFound(String),
    #[error("file exists: {0}")]
    AlreadyExists(String),
    #[error("not a directory: {0}")]
    NotADirectory(String),
    #[error("is a directory: {0}")]
    IsADirectory(String),
    #[error("directory not empty: {0}")]
    NotEmpty(String),
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    #[error("{0}")]
    LeaseConflict(String),
    #[error("{0}")]
    LeaseExpired(String),
    #[error("{0}")]
    NoLiveDatanodes(String),
    #[error("{0}")]
    NoSpace(String),
    #[error(transparent)]
    InvalidPath(#[from] InvalidPath),
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error("name node is in safe mode: {0}")]
    SafeMode(String),
    #[error("not supported: {0}")]
    NotSupported(String),
    #[error("invalid rename: {0}")]
    InvalidRename(String),
    /// A DataNode called before registering (or after it was declared dead).
    #[error("unknown datanode {0}: register first")]
    UnknownDatanode(String),
    /// An I/O error on the metadata directory.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// On-disk metadata that does not parse or fails its checksum. The NameNode refuses it rather
    /// than guessing.
    #[error("corrupt metadata: {0}")]
    Corrupt(String),
    /// The edit log failed an earlier write or fsync: nothing may be acknowledged any more.
    #[error("edit log failed: {0}")]
    EditLogFailed(String),
    /// Serving gRPC failed (e.g. the listener broke).
    #[error("rpc server: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// A bug or an impossible state; the message says which.
    #[error("internal error: {0}")]
    Internal(String),
}

/// The crate's result type.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// The kind clients see in the `dfs-error` metadata.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::NotFound(_) | Error::UnknownDatanode(_) => ErrorKind::NotFound,
            Error::AlreadyExists(_) => ErrorKind::AlreadyExists,
            Error::NotADirectory(_) => ErrorKind::NotADirectory,
            Error::IsADirectory(_) => ErrorKind::IsADirectory,
            Error::NotEmpty(_) => ErrorKind::NotEmpty,
            Error::PermissionDenied(_) => ErrorKind::PermissionDenied,
            Error::LeaseConflict(_) => ErrorKind::LeaseConflict,
            Error::LeaseExpired(_) => ErrorKind::LeaseExpired,
            Error::NoLiveDatanodes(_) => ErrorKind::NoLiveDatanodes,
            Error::NoSpace(_) => ErrorKind::NoSpace,
            Error::InvalidPath(_) => ErrorKind::InvalidPath,
            Error::InvalidArgument(_) => ErrorKind::InvalidArgument,
            Error::SafeMode(_) => ErrorKind::SafeMode,
            Error::NotSupported(_) => ErrorKind::NotSupported,
            Error::InvalidRename(_) => ErrorKind::InvalidRename,
            Error::Io { .. }
            | Error::Corrupt(_)
            | Error::EditLogFailed(_)
            | Error::Transport(_)
            | Error::Internal(_) => ErrorKind::Internal,
        }
    }

    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}
