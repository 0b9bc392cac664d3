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
        Error::NotPermitted(_) => Errno::EPERM,
        Error::NameTooLong(_) => Errno::ENAMETOOLONG,
        Error::TooManySymlinks(_) => Errno::ELOOP,
        Error::NoSuchAttribute(_) => Errno::ENODATA,
        Error::TooBig(_) => Errno::E2BIG,
        Error::OutOfRange(_) => Errno::ERANGE,
        Error::TooManyLinks(_) => Errno::EMLINK,
        // Another client is writing the file.
        Error::LeaseConflict(_) => Errno::EBUSY,
        Error::NoSpace(_) | Error::NoLiveDatanodes(_) => Errno::ENOSPC,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_map_to_their_errno() {
        assert_eq!(errno(&Error::NotFound("x".into())), Errno::ENOENT);
        assert_eq!(errno(&Error::NotEmpty("x".into())), Errno::ENOTEMPTY);
        // Typed, never read from the message.
        assert_eq!(errno(&Error::NameTooLong("x".into())), Errno::ENAMETOOLONG);
        assert_eq!(
            errno(&Error::InvalidPath("255 bytes".into())),
            Errno::EINVAL
        );
        assert_eq!(errno(&Error::NotSupported("x".into())), Errno::EOPNOTSUPP);
        assert_eq!(errno(&Error::PermissionDenied("x".into())), Errno::EACCES);
        assert_eq!(errno(&Error::NotPermitted("x".into())), Errno::EPERM);
        assert_eq!(errno(&Error::NoSuchAttribute("x".into())), Errno::ENODATA);
        assert_eq!(errno(&Error::TooManyLinks("x".into())), Errno::EMLINK);
    }
}
