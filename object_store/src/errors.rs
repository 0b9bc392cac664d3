//! The one mapping of dfs client errors to the errors `object_store` defines, so callers can
//! match on `NotFound`, `AlreadyExists` and the rest whatever store they use.

use object_store::Error;

/// `NotFound` for `path`.
pub(crate) fn not_found(path: &str) -> Error {
    Error::NotFound {
        path: path.to_string(),
        source: "no such object".into(),
    }
}

/// A dfs error met at `path`.
pub(crate) fn dfs_error(e: dfs_client::Error, path: &str) -> Error {
    match e {
        dfs_client::Error::NotFound(_) | dfs_client::Error::IsADirectory(_) => Error::NotFound {
            path: path.to_string(),
            source: Box::new(e),
        },
        dfs_client::Error::AlreadyExists(_) => Error::AlreadyExists {
            path: path.to_string(),
            source: Box::new(e),
        },
        dfs_client::Error::PermissionDenied(_) | dfs_client::Error::NotPermitted(_) => {
            Error::PermissionDenied {
                path: path.to_string(),
                source: Box::new(e),
            }
        }
        e => Error::Generic {
            store: "dfs",
            source: Box::new(e),
        },
    }
}
