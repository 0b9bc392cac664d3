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
    /// Not allowed whatever the permission bits: not the owner, not the superuser (EPERM).
    #[error("operation not permitted: {0}")]
    NotPermitted(String),
    #[error("file name too long: {0}")]
    NameTooLong(String),
    /// A symbolic link met while resolving a path (never followed here): `link` is its path,
    /// `rest` what followed it.
    #[error("{link} is a symbolic link (with {rest:?} after it): the client resolves it")]
    UnresolvedLink { link: String, rest: String },
    #[error("no such attribute: {0}")]
    NoSuchAttribute(String),
    #[error("too big: {0}")]
    TooBig(String),
    #[error("out of range: {0}")]
    OutOfRange(String),
    #[error("too many links: {0}")]
    TooManyLinks(String),
    #[error("{0}")]
    LeaseConflict(String),
    #[error("{0}")]
    LeaseExpired(String),
    #[error("{0}")]
    NoLiveDatanodes(String),
    #[error("{0}")]
    NoSpace(String),
    #[error(transparent)]
    InvalidPath(InvalidPath),
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

/// A path too long is its own kind (ENAMETOOLONG), any other malformed path invalid.
impl From<InvalidPath> for Error {
    fn from(e: InvalidPath) -> Self {
        if e.too_long {
            Error::NameTooLong(e.to_string())
        } else {
            Error::InvalidPath(e)
        }
    }
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
            Error::NotPermitted(_) => ErrorKind::NotPermitted,
            Error::NameTooLong(_) => ErrorKind::NameTooLong,
            Error::UnresolvedLink { .. } => ErrorKind::UnresolvedLink,
            Error::NoSuchAttribute(_) => ErrorKind::NoSuchAttribute,
            Error::TooBig(_) => ErrorKind::TooBig,
            Error::OutOfRange(_) => ErrorKind::OutOfRange,
            Error::TooManyLinks(_) => ErrorKind::TooManyLinks,
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
