//! The error vocabulary shared by the NameNode and its clients.
//!
//! A NameNode error crosses gRPC as a `tonic::Status` whose metadata key [`ERROR_KIND_KEY`] holds
//! one of these names, so the client can rebuild a typed error without parsing messages.

/// Metadata key carrying an [`ErrorKind`] name on a failed gRPC call.
pub const ERROR_KIND_KEY: &str = "dfs-error";
/// Metadata key carrying the calling user's name on every ClientProtocol call.
pub const USER_KEY: &str = "dfs-user";
/// Metadata key carrying the calling user's groups, comma-separated.
pub const GROUPS_KEY: &str = "dfs-groups";

macro_rules! kinds {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum ErrorKind { $($(#[$doc])* $name),* }

        impl ErrorKind {
            pub fn as_str(self) -> &'static str {
                match self { $(ErrorKind::$name => stringify!($name)),* }
            }
            pub fn parse(s: &str) -> Option<ErrorKind> {
                match s { $(stringify!($name) => Some(ErrorKind::$name),)* _ => None }
            }
        }
    };
}

kinds! {
    /// No such file or directory.
    NotFound,
    /// The path exists already.
    AlreadyExists,
    /// A path component that must be a directory is a file.
    NotADirectory,
    /// A file operation named a directory.
    IsADirectory,
    /// Non-recursive delete (or rename over) a non-empty directory.
    NotEmpty,
    /// The caller lacks the permission bits (or is not the owner / superuser).
    PermissionDenied,
    /// The file is being written by another client (lease held).
    LeaseConflict,
    /// The caller does not hold the lease it claims (e.g. it expired and was recovered).
    LeaseExpired,
    /// Not enough live DataNodes to place the requested replicas.
    NoLiveDatanodes,
    /// The cluster (or a volume) is out of space.
    NoSpace,
    /// A path that is not absolute and normalized.
    InvalidPath,
    /// Any other malformed argument.
    InvalidArgument,
    /// The NameNode is in safe mode: read-only.
    SafeMode,
    /// The operation is not supported (e.g. shrinking truncate).
    NotSupported,
    /// Moving a directory below itself, and similar.
    InvalidRename,
    /// The NameNode failed internally (e.g. its edit log cannot be written).
    Internal,
}
