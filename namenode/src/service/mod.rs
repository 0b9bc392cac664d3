//! Thin gRPC adapters: ClientProtocol (`client`) and DatanodeProtocol (`datanode`).
//!
//! Each handler reads the caller from metadata, parses paths and converts prost messages to
//! domain values, calls one `FsState` method through [`Shared::exec`] (which awaits edit-log
//! durability outside the lock), and converts the answer back. [`to_status`] is the single place
//! where an [`Error`] becomes a `tonic::Status`.

use std::sync::Arc;

use dfs_proto::error_kind::{
    ErrorKind, ERROR_KIND_KEY, GROUPS_KEY, LINK_PATH_KEY, LINK_REST_KEY, SYNC_KEY, USER_KEY,
};
use dfs_proto::path::DfsPath;
use dfs_proto::pb;
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::{Code, Request, Response, Status};

use crate::convert::required_block;
use crate::error::{Error, Result};
use crate::fsn::{Now, DEFAULT_DIR_PERMISSION, DEFAULT_FILE_PERMISSION};
use crate::server::{Durability, Shared};
use crate::types::{
    Block, Caller, DatanodeId, ReceivedDeleted, ReplicaReport, SafeModeAction, StorageReport,
};

/// Maps an error to a gRPC status carrying its kind in `dfs-error` metadata.
pub fn to_status(e: Error) -> Status {
    let kind = e.kind();
    let code = match kind {
        ErrorKind::NotFound => Code::NotFound,
        ErrorKind::AlreadyExists => Code::AlreadyExists,
        ErrorKind::PermissionDenied => Code::PermissionDenied,
        ErrorKind::InvalidPath | ErrorKind::InvalidArgument => Code::InvalidArgument,
        ErrorKind::NoLiveDatanodes | ErrorKind::NoSpace => Code::ResourceExhausted,
        ErrorKind::SafeMode => Code::Unavailable,
        ErrorKind::Internal => Code::Internal,
        _ => Code::FailedPrecondition,
    };
    if kind == ErrorKind::Internal {
        tracing::error!(error = %e, "internal error answered to a client");
    }
    let mut md = MetadataMap::new();
    md.insert(ERROR_KIND_KEY, MetadataValue::from_static(kind.as_str()));
    if let Error::UnresolvedLink { link, rest } = &e {
        // Binary values: paths need not be ASCII.
        md.insert_bin(LINK_PATH_KEY, MetadataValue::from_bytes(link.as_bytes()));
        md.insert_bin(LINK_REST_KEY, MetadataValue::from_bytes(rest.as_bytes()));
    }
    Status::with_metadata(code, e.to_string(), md)
}

/// The calling user from `dfs-user` / `dfs-groups`; the anonymous "nobody" when absent.
pub fn caller<T>(req: &Request<T>) -> Caller {
    let md = req.metadata();
    let user = md
        .get(USER_KEY)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|u| !u.is_empty());
    let Some(user) = user else {
        return Caller::anonymous();
    };
    let groups = md
        .get(GROUPS_KEY)
        .and_then(|v| v.to_str().ok())
        .map(|g| {
            g.split(',')
                .map(str::trim)
                .filter(|g| !g.is_empty())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    Caller {
        user: user.to_string(),
        groups,
    }
}

/// What the client asked its reply to wait for: with `dfs-sync: 1`, every change before the
/// reply is fsynced (HDFS's semantics); without, what the request changed is written to the edit
/// log (it survives any crash of a process, and a power loss after the sync interval).
pub fn durability<T>(req: &Request<T>) -> Durability {
    match req.metadata().get(SYNC_KEY).map(|v| v.as_bytes()) {
        Some(b"1") => Durability::SyncedAll,
        _ => Durability::Written,
    }
}

fn path(s: &str) -> std::result::Result<DfsPath, Status> {
    DfsPath::parse(s).map_err(|e| to_status(e.into()))
}

fn block(b: &Option<pb::ExtendedBlock>, what: &str) -> std::result::Result<Block, Status> {
    required_block(b, what).map_err(to_status)
}

/// The client's host as it asked, else the address its connection came from.
fn client_host<T>(req: &Request<T>, asked: &str) -> String {
    if !asked.is_empty() {
        return asked.to_string();
    }
    req.remote_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_default()
}

fn ids(v: &[pb::DatanodeId]) -> Vec<DatanodeId> {
    v.iter().map(DatanodeId::from).collect()
}

/// Both gRPC services over the shared state.
#[derive(Clone)]
pub struct Service {
    shared: Arc<Shared>,
}

impl Service {
    pub fn new(shared: Arc<Shared>) -> Service {
        Service { shared }
    }

    async fn exec<T>(
        &self,
        durability: Durability,
        f: impl FnOnce(&mut crate::fsn::FsState) -> Result<T>,
    ) -> std::result::Result<T, Status> {
        self.shared.exec(durability, f).await.map_err(to_status)
    }
}

type Rpc<T> = std::result::Result<Response<T>, Status>;

/// How long a Complete waits for its last block's first replica report before answering "not
/// yet" (the client then asks again).
const COMPLETE_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

mod client;
mod datanode;
