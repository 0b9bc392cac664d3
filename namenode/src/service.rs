//! Thin gRPC adapters: ClientProtocol and DatanodeProtocol.
//!
//! Each handler reads the caller from metadata, parses paths and converts prost messages to
//! domain values, calls one `FsState` method through [`Shared::exec`] (which awaits edit-log
//! durability outside the lock), and converts the answer back. [`to_status`] is the single place
//! where an [`Error`] becomes a `tonic::Status`.

use std::collections::HashSet;
use std::sync::Arc;

use dfs_proto::error_kind::{ErrorKind, ERROR_KIND_KEY, GROUPS_KEY, USER_KEY};
use dfs_proto::path::DfsPath;
use dfs_proto::pb;
use dfs_proto::pb::client_protocol_server::ClientProtocol;
use dfs_proto::pb::datanode_protocol_server::DatanodeProtocol;
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::{Code, Request, Response, Status};

use crate::convert::required_block;
use crate::error::{Error, Result};
use crate::fsn::{Now, DEFAULT_DIR_PERMISSION, DEFAULT_FILE_PERMISSION};
use crate::server::Shared;
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
        f: impl FnOnce(&mut crate::fsn::FsState) -> Result<T>,
    ) -> std::result::Result<T, Status> {
        self.shared.exec(f).await.map_err(to_status)
    }
}

type Rpc<T> = std::result::Result<Response<T>, Status>;

/// How long a Complete waits for its last block's first replica report before answering "not
/// yet" (the client then asks again).
const COMPLETE_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

#[tonic::async_trait]
impl ClientProtocol for Service {
    async fn mkdirs(&self, req: Request<pb::MkdirsRequest>) -> Rpc<pb::MkdirsResponse> {
        let c = caller(&req);
        let r = req.into_inner();
        let p = path(&r.path)?;
        let mode = r.permission.unwrap_or(DEFAULT_DIR_PERMISSION);
        self.exec(|st| st.mkdirs(&c, &p, mode, r.create_parent, Now::current()))
            .await?;
        Ok(Response::new(pb::MkdirsResponse {}))
    }

    async fn create(&self, req: Request<pb::CreateRequest>) -> Rpc<pb::CreateResponse> {
        let c = caller(&req);
        let r = req.into_inner();
        let p = path(&r.path)?;
        let st = self
            .exec(|st| {
                st.create(
                    &c,
                    &p,
                    r.permission.unwrap_or(DEFAULT_FILE_PERMISSION),
                    &r.client_name,
                    r.overwrite,
                    r.create_parent,
                    r.replication,
                    r.block_size,
                    Now::current(),
                )
            })
            .await?;
        Ok(Response::new(pb::CreateResponse {
            status: Some(st.into()),
        }))
    }

    async fn append(&self, req: Request<pb::AppendRequest>) -> Rpc<pb::AppendResponse> {
        let c = caller(&req);
        let r = req.into_inner();
        let p = path(&r.path)?;
        let (last, st) = self
            .exec(|st| st.append(&c, &p, &r.client_name, Now::current()))
            .await?;
        Ok(Response::new(pb::AppendResponse {
            last_block: last.map(pb::LocatedBlock::from),
            status: Some(st.into()),
        }))
    }

    async fn add_block(&self, req: Request<pb::AddBlockRequest>) -> Rpc<pb::AddBlockResponse> {
        let host = client_host(&req, &req.get_ref().client_host);
        let r = req.into_inner();
        let p = path(&r.path)?;
        let previous = r.previous.as_ref().map(Block::from);
        let exclude: HashSet<String> = r.exclude_nodes.iter().cloned().collect();
        let b = self
            .exec(|st| {
                st.add_block(
                    &p,
                    &r.client_name,
                    previous,
                    &exclude,
                    r.file_id,
                    &host,
                    Now::current(),
                )
            })
            .await?;
        Ok(Response::new(pb::AddBlockResponse {
            block: Some(b.into()),
        }))
    }

    async fn abandon_block(
        &self,
        req: Request<pb::AbandonBlockRequest>,
    ) -> Rpc<pb::AbandonBlockResponse> {
        let r = req.into_inner();
        let p = path(&r.path)?;
        let b = block(&r.block, "block")?;
        self.exec(|st| st.abandon_block(&p, &r.client_name, b, r.file_id))
            .await?;
        Ok(Response::new(pb::AbandonBlockResponse {}))
    }

    /// A file completes once a DataNode has reported a finalized replica of its last block,
    /// which happens moments after the client's last ack: rather than answer "not yet" and have
    /// the client poll, wait here (at most [`COMPLETE_WAIT`]) for the report.
    async fn complete(&self, req: Request<pb::CompleteRequest>) -> Rpc<pb::CompleteResponse> {
        let r = req.into_inner();
        let p = path(&r.path)?;
        let last = r.last.as_ref().map(Block::from);
        let deadline = tokio::time::Instant::now() + COMPLETE_WAIT;
        loop {
            // Registered before looking, so a report landing in between is not missed.
            let reported = self.shared.replicas_reported.notified();
            tokio::pin!(reported);
            reported.as_mut().enable();
            let completed = self
                .exec(|st| st.complete(&p, &r.client_name, last, r.file_id, Now::current()))
                .await?;
            if completed {
                return Ok(Response::new(pb::CompleteResponse { completed }));
            }
            if tokio::time::timeout_at(deadline, reported).await.is_err() {
                return Ok(Response::new(pb::CompleteResponse { completed }));
            }
        }
    }

    async fn fsync(&self, req: Request<pb::FsyncRequest>) -> Rpc<pb::FsyncResponse> {
        let r = req.into_inner();
        let p = path(&r.path)?;
        self.exec(|st| {
            st.fsync(
                &p,
                &r.client_name,
                r.last_block_length,
                r.file_id,
                Now::current(),
            )
        })
        .await?;
        Ok(Response::new(pb::FsyncResponse {}))
    }

    async fn update_block_for_pipeline(
        &self,
        req: Request<pb::UpdateBlockForPipelineRequest>,
    ) -> Rpc<pb::UpdateBlockForPipelineResponse> {
        let r = req.into_inner();
        let b = block(&r.block, "block")?;
        let lb = self
            .exec(|st| st.update_block_for_pipeline(b, &r.client_name, Now::current()))
            .await?;
        Ok(Response::new(pb::UpdateBlockForPipelineResponse {
            block: Some(lb.into()),
        }))
    }

    async fn update_pipeline(
        &self,
        req: Request<pb::UpdatePipelineRequest>,
    ) -> Rpc<pb::UpdatePipelineResponse> {
        let r = req.into_inner();
        let old = block(&r.old_block, "old_block")?;
        let new = block(&r.new_block, "new_block")?;
        let nodes = ids(&r.new_nodes);
        self.exec(|st| st.update_pipeline(&r.client_name, old, new, &nodes))
            .await?;
        Ok(Response::new(pb::UpdatePipelineResponse {}))
    }

    async fn get_additional_datanode(
        &self,
        req: Request<pb::GetAdditionalDatanodeRequest>,
    ) -> Rpc<pb::GetAdditionalDatanodeResponse> {
        let r = req.into_inner();
        let p = path(&r.path)?;
        let b = block(&r.block, "block")?;
        let existing = ids(&r.existing);
        let exclude: HashSet<String> = r.exclude_nodes.iter().cloned().collect();
        let lb = self
            .exec(|st| {
                st.get_additional_datanode(
                    &p,
                    b,
                    &existing,
                    &exclude,
                    r.num_additional,
                    &r.client_name,
                    r.file_id,
                    Now::current(),
                )
            })
            .await?;
        Ok(Response::new(pb::GetAdditionalDatanodeResponse {
            block: Some(lb.into()),
        }))
    }

    async fn renew_lease(
        &self,
        req: Request<pb::RenewLeaseRequest>,
    ) -> Rpc<pb::RenewLeaseResponse> {
        let r = req.into_inner();
        self.exec(|st| st.renew_lease(&r.client_name, Now::current()))
            .await?;
        Ok(Response::new(pb::RenewLeaseResponse {}))
    }

    async fn recover_lease(
        &self,
        req: Request<pb::RecoverLeaseRequest>,
    ) -> Rpc<pb::RecoverLeaseResponse> {
        let c = caller(&req);
        let r = req.into_inner();
        let p = path(&r.path)?;
        let closed = self
            .exec(|st| st.recover_lease(&c, &p, &r.client_name, Now::current()))
            .await?;
        Ok(Response::new(pb::RecoverLeaseResponse { closed }))
    }

    async fn get_file_info(
        &self,
        req: Request<pb::GetFileInfoRequest>,
    ) -> Rpc<pb::GetFileInfoResponse> {
        let c = caller(&req);
        let r = req.into_inner();
        let p = path(&r.path)?;
        let st = self.exec(|st| st.get_file_info(&c, &p)).await?;
        Ok(Response::new(pb::GetFileInfoResponse {
            status: st.map(pb::FileStatus::from),
        }))
    }

    async fn check_access(
        &self,
        req: Request<pb::CheckAccessRequest>,
    ) -> Rpc<pb::CheckAccessResponse> {
        let c = caller(&req);
        let r = req.into_inner();
        let p = path(&r.path)?;
        self.exec(|st| st.check_path_access(&c, &p, r.access))
            .await?;
        Ok(Response::new(pb::CheckAccessResponse {}))
    }

    async fn get_listing(
        &self,
        req: Request<pb::GetListingRequest>,
    ) -> Rpc<pb::GetListingResponse> {
        let c = caller(&req);
        let r = req.into_inner();
        let p = path(&r.path)?;
        let (entries, remaining, dir) = self
            .exec(|st| st.get_listing(&c, &p, &r.start_after, r.limit))
            .await?;
        Ok(Response::new(pb::GetListingResponse {
            entries: entries.into_iter().map(pb::FileStatus::from).collect(),
            remaining,
            dir: Some(dir.into()),
        }))
    }

    async fn get_block_locations(
        &self,
        req: Request<pb::GetBlockLocationsRequest>,
    ) -> Rpc<pb::GetBlockLocationsResponse> {
        let c = caller(&req);
        let host = client_host(&req, &req.get_ref().client_host);
        let r = req.into_inner();
        let p = path(&r.path)?;
        let lbs = self
            .exec(|st| st.get_block_locations(&c, &p, r.offset, r.length, &host, Now::current()))
            .await?;
        Ok(Response::new(pb::GetBlockLocationsResponse {
            locations: Some(lbs.into()),
        }))
    }

    async fn rename(&self, req: Request<pb::RenameRequest>) -> Rpc<pb::RenameResponse> {
        let c = caller(&req);
        let r = req.into_inner();
        let src = path(&r.src)?;
        let dst = path(&r.dst)?;
        self.exec(|st| st.rename(&c, &src, &dst, r.overwrite, Now::current()))
            .await?;
        Ok(Response::new(pb::RenameResponse {}))
    }

    async fn delete(&self, req: Request<pb::DeleteRequest>) -> Rpc<pb::DeleteResponse> {
        let c = caller(&req);
        let r = req.into_inner();
        let p = path(&r.path)?;
        let deleted = self
            .exec(|st| st.delete(&c, &p, r.recursive, Now::current()))
            .await?;
        Ok(Response::new(pb::DeleteResponse { deleted }))
    }

    async fn set_replication(
        &self,
        req: Request<pb::SetReplicationRequest>,
    ) -> Rpc<pb::SetReplicationResponse> {
        let c = caller(&req);
        let r = req.into_inner();
        let p = path(&r.path)?;
        self.exec(|st| st.set_replication(&c, &p, r.replication))
            .await?;
        Ok(Response::new(pb::SetReplicationResponse {}))
    }

    async fn set_permission(
        &self,
        req: Request<pb::SetPermissionRequest>,
    ) -> Rpc<pb::SetPermissionResponse> {
        let c = caller(&req);
        let r = req.into_inner();
        let p = path(&r.path)?;
        self.exec(|st| st.set_permission(&c, &p, r.permission))
            .await?;
        Ok(Response::new(pb::SetPermissionResponse {}))
    }

    async fn set_owner(&self, req: Request<pb::SetOwnerRequest>) -> Rpc<pb::SetOwnerResponse> {
        let c = caller(&req);
        let r = req.into_inner();
        let p = path(&r.path)?;
        self.exec(|st| st.set_owner(&c, &p, &r.owner, &r.group))
            .await?;
        Ok(Response::new(pb::SetOwnerResponse {}))
    }

    async fn set_times(&self, req: Request<pb::SetTimesRequest>) -> Rpc<pb::SetTimesResponse> {
        let c = caller(&req);
        let r = req.into_inner();
        let p = path(&r.path)?;
        self.exec(|st| st.set_times(&c, &p, r.mtime_ms, r.atime_ms))
            .await?;
        Ok(Response::new(pb::SetTimesResponse {}))
    }

    async fn truncate(&self, req: Request<pb::TruncateRequest>) -> Rpc<pb::TruncateResponse> {
        let c = caller(&req);
        let r = req.into_inner();
        let p = path(&r.path)?;
        self.exec(|st| st.truncate(&c, &p, r.new_length, &r.client_name, Now::current()))
            .await?;
        Ok(Response::new(pb::TruncateResponse {}))
    }

    async fn get_content_summary(
        &self,
        req: Request<pb::GetContentSummaryRequest>,
    ) -> Rpc<pb::GetContentSummaryResponse> {
        let c = caller(&req);
        let r = req.into_inner();
        let p = path(&r.path)?;
        let s = self.exec(|st| st.content_summary(&c, &p)).await?;
        Ok(Response::new(pb::GetContentSummaryResponse {
            summary: Some(s.into()),
        }))
    }

    async fn report_bad_blocks(
        &self,
        req: Request<pb::ReportBadBlocksRequest>,
    ) -> Rpc<pb::ReportBadBlocksResponse> {
        let r = req.into_inner();
        let mut bad = Vec::with_capacity(r.blocks.len());
        for lb in &r.blocks {
            let b = block(&lb.block, "block")?;
            let uuids = lb
                .locations
                .iter()
                .filter_map(|l| l.id.as_ref().map(|i| i.uuid.clone()))
                .collect();
            bad.push((b, uuids));
        }
        self.exec(|st| {
            st.report_bad_blocks(&bad);
            Ok(())
        })
        .await?;
        Ok(Response::new(pb::ReportBadBlocksResponse {}))
    }

    async fn get_stats(&self, _req: Request<pb::GetStatsRequest>) -> Rpc<pb::GetStatsResponse> {
        let s = self.exec(|st| Ok(st.stats())).await?;
        Ok(Response::new(s.into()))
    }

    async fn get_datanode_report(
        &self,
        _req: Request<pb::GetDatanodeReportRequest>,
    ) -> Rpc<pb::GetDatanodeReportResponse> {
        let now = Now::current();
        let dns = self.exec(|st| Ok(st.datanode_report(now.at))).await?;
        Ok(Response::new(pb::GetDatanodeReportResponse {
            datanodes: dns.iter().map(pb::DatanodeInfo::from).collect(),
        }))
    }

    async fn fsck(&self, req: Request<pb::FsckRequest>) -> Rpc<pb::FsckResponse> {
        let c = caller(&req);
        let r = req.into_inner();
        let p = path(&r.path)?;
        let report = self.exec(|st| st.fsck(&c, &p)).await?;
        Ok(Response::new(report.into()))
    }

    async fn safe_mode(&self, req: Request<pb::SafeModeRequest>) -> Rpc<pb::SafeModeResponse> {
        let c = caller(&req);
        let r = req.into_inner();
        let action = SafeModeAction::try_from(r.action).map_err(to_status)?;
        let (on, status) = self
            .exec(|st| st.safe_mode(&c, action, Now::current()))
            .await?;
        Ok(Response::new(pb::SafeModeResponse { on, status }))
    }

    async fn decommission(
        &self,
        req: Request<pb::DecommissionRequest>,
    ) -> Rpc<pb::DecommissionResponse> {
        let c = caller(&req);
        let r = req.into_inner();
        self.exec(|st| st.decommission(&c, &r.datanode)).await?;
        Ok(Response::new(pb::DecommissionResponse {}))
    }
}

#[tonic::async_trait]
impl DatanodeProtocol for Service {
    async fn register(&self, req: Request<pb::RegisterRequest>) -> Rpc<pb::RegisterResponse> {
        let r = req.into_inner();
        let id =
            r.id.as_ref().map(DatanodeId::from).ok_or_else(|| {
                to_status(Error::InvalidArgument("datanode id is required".into()))
            })?;
        let storage = r
            .storage
            .as_ref()
            .map(StorageReport::try_from)
            .transpose()
            .map_err(to_status)?
            .unwrap_or_default();
        let cluster_id = self
            .exec(|st| st.register(id, storage, Now::current()))
            .await?;
        Ok(Response::new(pb::RegisterResponse { cluster_id }))
    }

    async fn heartbeat(&self, req: Request<pb::HeartbeatRequest>) -> Rpc<pb::HeartbeatResponse> {
        let r = req.into_inner();
        let storage = r
            .storage
            .as_ref()
            .map(StorageReport::try_from)
            .transpose()
            .map_err(to_status)?
            .unwrap_or_default();
        let (commands, txid) = self
            .exec(|st| {
                Ok((
                    st.heartbeat(&r.uuid, storage, r.xceivers, Now::current()),
                    st.log.last_txid(),
                ))
            })
            .await?;
        let Some(commands) = commands else {
            return Ok(Response::new(pb::HeartbeatResponse {
                commands: Vec::new(),
                reregister: true,
            }));
        };
        if !commands.is_empty() {
            // Commands may carry generation stamps just logged (lease recovery): never send a
            // stamp that a crash could hand out again.
            self.shared.sync.wait(txid).await.map_err(to_status)?;
        }
        Ok(Response::new(pb::HeartbeatResponse {
            commands: commands
                .into_iter()
                .map(pb::DatanodeCommand::from)
                .collect(),
            reregister: false,
        }))
    }

    async fn block_report(
        &self,
        req: Request<pb::BlockReportRequest>,
    ) -> Rpc<pb::BlockReportResponse> {
        let r = req.into_inner();
        let reports = r
            .replicas
            .iter()
            .map(ReplicaReport::try_from)
            .collect::<Result<Vec<_>>>()
            .map_err(to_status)?;
        self.exec(|st| st.block_report(&r.uuid, &reports, Now::current()))
            .await?;
        self.shared.replicas_reported.notify_waiters();
        Ok(Response::new(pb::BlockReportResponse {
            commands: Vec::new(),
        }))
    }

    async fn block_received_and_deleted(
        &self,
        req: Request<pb::BlockReceivedAndDeletedRequest>,
    ) -> Rpc<pb::BlockReceivedAndDeletedResponse> {
        let r = req.into_inner();
        let items = r
            .blocks
            .iter()
            .map(ReceivedDeleted::try_from)
            .collect::<Result<Vec<_>>>()
            .map_err(to_status)?;
        self.exec(|st| st.block_received_and_deleted(&r.uuid, &items, Now::current()))
            .await?;
        self.shared.replicas_reported.notify_waiters();
        Ok(Response::new(pb::BlockReceivedAndDeletedResponse {}))
    }

    async fn report_bad_blocks(
        &self,
        req: Request<pb::DnReportBadBlocksRequest>,
    ) -> Rpc<pb::DnReportBadBlocksResponse> {
        let r = req.into_inner();
        let blocks: Vec<Block> = r.blocks.iter().map(Block::from).collect();
        self.exec(|st| st.dn_report_bad_blocks(&r.uuid, &blocks))
            .await?;
        Ok(Response::new(pb::DnReportBadBlocksResponse {}))
    }

    async fn commit_block_synchronization(
        &self,
        req: Request<pb::CommitBlockSynchronizationRequest>,
    ) -> Rpc<pb::CommitBlockSynchronizationResponse> {
        let r = req.into_inner();
        let b = block(&r.block, "block")?;
        let targets = ids(&r.new_targets);
        self.exec(|st| {
            st.commit_block_synchronization(
                b,
                crate::types::GenStamp(r.new_generation_stamp),
                r.new_length,
                r.close_file,
                r.delete_block,
                &targets,
                Now::current(),
            )
        })
        .await?;
        Ok(Response::new(pb::CommitBlockSynchronizationResponse {}))
    }
}
