//! The one place client errors become errno values.

use dfs_client::Error;
use fuser::Errno;

/// Maps a client error to the errno a POSIX program expects. EIO is kept for real failures to
/// read or write data; every EIO is logged with its reason, since the caller only sees the number.
pub fn errno(e: &Error) -> Errno {
    match e {
        Error::NotFound(_) => Errno::ENOENT,
        Error::AlreadyExists(_) => Errno::EEXIST,
        Error::NotADirectory(_) => Errno::ENOTDIR,
        Error::IsADirectory(_) => Errno::EISDIR,
        Error::NotEmpty(_) => Errno::ENOTEMPTY,
        Error::PermissionDenied(_) => Errno::EACCES,
        // Another client is writing the file.
        Error::LeaseConflict(_) => Errno::EBUSY,
        Error::NoSpace(_) | Error::NoLiveDatanodes(_) => Errno::ENOSPC,
        Error::InvalidPath(m) if m.contains("255 bytes") || m.contains("4096 bytes") => {
            Errno::ENAMETOOLONG
        }
        Error::InvalidPath(_) | Error::InvalidArgument(_) | Error::InvalidRename(_) => {
            Errno::EINVAL
        }
        Error::SafeMode(_) => Errno::EROFS,
        Error::NotSupported(_) => Errno::EOPNOTSUPP,
        Error::Unavailable { .. } => {
            tracing::warn!("{e}");
            Errno::ENOTCONN
        }
        _ => {
            tracing::warn!("I/O error: {e}");
            Errno::EIO
        }
    }
}

/// For what only a file's owner may do (chmod, chown, setting explicit times), POSIX says a
/// refusal is EPERM, not EACCES.
pub fn owner_errno(e: &Error) -> Errno {
    match e {
        Error::PermissionDenied(_) => Errno::EPERM,
        _ => errno(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_map_to_their_errno() {
        assert_eq!(errno(&Error::NotFound("x".into())), Errno::ENOENT);
        assert_eq!(errno(&Error::NotEmpty("x".into())), Errno::ENOTEMPTY);
        assert_eq!(
            errno(&Error::InvalidPath(
                "invalid path \"/x\": component longer than 255 bytes".into()
            )),
            Errno::ENAMETOOLONG
        );
        assert_eq!(errno(&Error::NotSupported("x".into())), Errno::EOPNOTSUPP);
        assert_eq!(errno(&Error::PermissionDenied("x".into())), Errno::EACCES);
        assert_eq!(
            owner_errno(&Error::PermissionDenied("x".into())),
            Errno::EPERM
        );
        assert_eq!(owner_errno(&Error::NotFound("x".into())), Errno::ENOENT);
    }
}
