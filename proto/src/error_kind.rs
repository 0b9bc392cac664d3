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
/// Metadata key a ClientProtocol call sets to `1` to have its reply wait until every change the
/// NameNode logged before it is fsynced; without it the reply waits only until the call's own
/// changes are written to the edit log.
pub const SYNC_KEY: &str = "dfs-sync";

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
    /// The caller lacks the permission bits (EACCES).
    PermissionDenied,
    /// The caller may not do this whatever the permission bits say: not the owner, not the
    /// superuser (EPERM).
    NotPermitted,
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
    /// A path component longer than 255 bytes or a path longer than 4095 (ENAMETOOLONG).
    NameTooLong,
    /// A symbolic link met while resolving a path: the NameNode never follows one. The link's
    /// own path and the rest of the path travel in [`LINK_PATH_KEY`] and [`LINK_REST_KEY`].
    UnresolvedLink,
    /// No such extended attribute (ENODATA).
    NoSuchAttribute,
    /// An extended attribute (or an ACL) larger than the NameNode keeps (E2BIG).
    TooBig,
    /// A name or value outside the range an interface allows (ERANGE).
    OutOfRange,
    /// A file has as many links as it may (EMLINK).
    TooManyLinks,
    /// The NameNode failed internally (e.g. its edit log cannot be written).
    Internal,
}

/// With [`ErrorKind::UnresolvedLink`]: the path of the symbolic link met (up to and including it).
pub const LINK_PATH_KEY: &str = "dfs-link-path-bin";
/// With [`ErrorKind::UnresolvedLink`]: the components after the link, "" when it was the last.
pub const LINK_REST_KEY: &str = "dfs-link-rest-bin";
