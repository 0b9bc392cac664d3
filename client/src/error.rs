//! The client's one error enum, and the single place NameNode statuses are turned back into it.

use dfs_proto::error_kind::{ErrorKind, ERROR_KIND_KEY, LINK_PATH_KEY, LINK_REST_KEY};

/// Everything a dfs client call can fail with. Variants are what callers branch on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    NotADirectory(String),
    #[error("{0}")]
    IsADirectory(String),
    #[error("{0}")]
    NotEmpty(String),
    /// The permission bits refuse (EACCES).
    #[error("{0}")]
    PermissionDenied(String),
    /// Only the owner or the superuser may (EPERM).
    #[error("{0}")]
    NotPermitted(String),
    #[error("{0}")]
    NameTooLong(String),
    /// A symbolic link met by the NameNode, which never follows one: `link` is the link's path,
    /// `rest` what came after it. The client's path calls resolve it; one that reaches the
    /// caller was an operation that does not follow links.
    #[error("{link} is a symbolic link")]
    UnresolvedLink { link: String, rest: String },
    /// Resolving a path met more than 40 symbolic links (ELOOP).
    #[error("{0}")]
    TooManySymlinks(String),
    /// No such extended attribute (ENODATA).
    #[error("{0}")]
    NoSuchAttribute(String),
    /// An attribute larger than the NameNode keeps (E2BIG).
    #[error("{0}")]
    TooBig(String),
    #[error("{0}")]
    OutOfRange(String),
    /// A file with as many hard links as it may have (EMLINK).
    #[error("{0}")]
    TooManyLinks(String),
    /// Another client holds the file's write lease.
    #[error("{0}")]
    LeaseConflict(String),
    /// This client's lease on the file is gone (expired and recovered).
    #[error("{0}")]
    LeaseExpired(String),
    #[error("{0}")]
    NoLiveDatanodes(String),
    #[error("{0}")]
    NoSpace(String),
    #[error("{0}")]
    InvalidPath(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    SafeMode(String),
    #[error("{0}")]
    NotSupported(String),
    #[error("{0}")]
    InvalidRename(String),
    /// The NameNode could not be reached (down, wrong address, timed out).
    #[error("cannot reach the NameNode at {addr}: {reason}")]
    Unavailable { addr: String, reason: String },
    /// The NameNode failed for a reason of its own.
    #[error("NameNode error: {0}")]
    Namenode(String),
    /// No replica of a block could be read (every DataNode failed or held a corrupt copy).
    #[error("could not read {path} at offset {offset}: {reason}")]
    BlockMissing {
        path: String,
        offset: u64,
        reason: String,
    },
    /// The write pipeline failed and could not be rebuilt.
    #[error("write to {path} failed: {reason}")]
    Pipeline { path: String, reason: String },
    /// The writer or reader was used after `close` or after a fatal error.
    #[error("stream is closed{0}")]
    Closed(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

pub type Result<T> = std::result::Result<T, Error>;

impl From<dfs_proto::path::InvalidPath> for Error {
    fn from(e: dfs_proto::path::InvalidPath) -> Self {
        if e.too_long {
            Error::NameTooLong(e.to_string())
        } else {
            Error::InvalidPath(e.to_string())
        }
    }
}

impl Error {
    /// Rebuilds a typed error from a NameNode status: the `dfs-error` metadata names the kind;
    /// a status without it is a transport failure (unreachable) or an unexpected server error.
    pub(crate) fn from_status(addr: &str, status: tonic::Status) -> Error {
        let msg = status.message().to_string();
        let kind = status
            .metadata()
            .get(ERROR_KIND_KEY)
            .and_then(|v| v.to_str().ok())
            .and_then(ErrorKind::parse);
        match kind {
            Some(ErrorKind::NotFound) => Error::NotFound(msg),
            Some(ErrorKind::AlreadyExists) => Error::AlreadyExists(msg),
            Some(ErrorKind::NotADirectory) => Error::NotADirectory(msg),
            Some(ErrorKind::IsADirectory) => Error::IsADirectory(msg),
            Some(ErrorKind::NotEmpty) => Error::NotEmpty(msg),
            Some(ErrorKind::PermissionDenied) => Error::PermissionDenied(msg),
            Some(ErrorKind::NotPermitted) => Error::NotPermitted(msg),
            Some(ErrorKind::NameTooLong) => Error::NameTooLong(msg),
            Some(ErrorKind::UnresolvedLink) => {
                let text = |key| {
                    status
                        .metadata()
                        .get_bin(key)
                        .and_then(|v| v.to_bytes().ok())
                        .map(|b| String::from_utf8_lossy(&b).into_owned())
                        .unwrap_or_default()
                };
                Error::UnresolvedLink {
                    link: text(LINK_PATH_KEY),
                    rest: text(LINK_REST_KEY),
                }
            }
            Some(ErrorKind::NoSuchAttribute) => Error::NoSuchAttribute(msg),
            Some(ErrorKind::TooBig) => Error::TooBig(msg),
            Some(ErrorKind::OutOfRange) => Error::OutOfRange(msg),
            Some(ErrorKind::TooManyLinks) => Error::TooManyLinks(msg),
            Some(ErrorKind::LeaseConflict) => Error::LeaseConflict(msg),
            Some(ErrorKind::LeaseExpired) => Error::LeaseExpired(msg),
            Some(ErrorKind::NoLiveDatanodes) => Error::NoLiveDatanodes(msg),
            Some(ErrorKind::NoSpace) => Error::NoSpace(msg),
            Some(ErrorKind::InvalidPath) => Error::InvalidPath(msg),
            Some(ErrorKind::InvalidArgument) => Error::InvalidArgument(msg),
            Some(ErrorKind::SafeMode) => Error::SafeMode(msg),
            Some(ErrorKind::NotSupported) => Error::NotSupported(msg),
            Some(ErrorKind::InvalidRename) => Error::InvalidRename(msg),
            Some(_) => Error::Namenode(msg),
            None => match status.code() {
                tonic::Code::Unavailable
                | tonic::Code::DeadlineExceeded
                | tonic::Code::Cancelled => Error::Unavailable {
                    addr: addr.to_string(),
                    reason: transport_reason(&status),
                },
                _ => Error::Namenode(msg),
            },
        }
    }

    /// The shared error vocabulary name, for errors that came from the NameNode's namespace.
    pub fn kind(&self) -> Option<ErrorKind> {
        Some(match self {
            Error::NotFound(_) => ErrorKind::NotFound,
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
            _ => return None,
        })
    }
}

/// The innermost cause of a transport failure ("Connection refused (os error 111)"), which is
/// what a user needs to see, rather than tonic's outer "transport error".
fn transport_reason(status: &tonic::Status) -> String {
    let mut src: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(status);
    let mut last = None;
    while let Some(e) = src {
        last = Some(e.to_string());
        src = e.source();
    }
    last.unwrap_or_else(|| status.message().to_string())
}

/// The `std::io` view of an error, for the `Read`/`Write` adapters.
impl From<Error> for std::io::Error {
    fn from(e: Error) -> Self {
        use std::io::ErrorKind as K;
        let kind = match &e {
            Error::Io(io) => io.kind(),
            Error::NotFound(_) => K::NotFound,
            Error::AlreadyExists(_) => K::AlreadyExists,
            Error::NotADirectory(_) => K::NotADirectory,
            Error::IsADirectory(_) => K::IsADirectory,
            Error::NotEmpty(_) => K::DirectoryNotEmpty,
            Error::PermissionDenied(_) | Error::NotPermitted(_) => K::PermissionDenied,
            Error::NameTooLong(_) => K::InvalidFilename,
            Error::InvalidPath(_) | Error::InvalidArgument(_) => K::InvalidInput,
            Error::NoSpace(_) => K::StorageFull,
            Error::NotSupported(_) => K::Unsupported,
            Error::Unavailable { .. } => K::ConnectionRefused,
            _ => K::Other,
        };
        std::io::Error::new(kind, e)
    }
}
