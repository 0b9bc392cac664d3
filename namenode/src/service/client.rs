//! ClientProtocol: what clients ask.

use std::collections::HashSet;

use dfs_proto::pb;
use tonic::{Request, Response};

use dfs_proto::pb::client_protocol_server::ClientProtocol;

use super::*;
use crate::acl::AclEntry;
use crate::convert;
use crate::fsn::{
    AclChange, BlockRequest, CommitRequest, CreateRequest, LocationsRequest, MkdirsRequest,
    MknodRequest, NewMode, SetTimesRequest,
};
use crate::namespace::{Extent, XAttr};
use crate::types::InodeId;

#[tonic::async_trait]
impl ClientProtocol for Service {
    async fn mkdirs(&self, req: Request<pb::MkdirsRequest>) -> Rpc<pb::MkdirsResponse> {
        let d = durability(&req);
        let c = caller(&req);
        let r = req.into_inner();
        let req = MkdirsRequest {
            path: path(&r.path)?,
            mode: NewMode {
                permission: r.permission.unwrap_or(DEFAULT_DIR_PERMISSION),
                unmasked: r.unmasked,
                group: r.group,
            },
            create_parent: r.create_parent,
        };
        let st = self
            .exec(d, |st| st.mkdirs(&c, &req, Now::current()))
            .await?;
        Ok(Response::new(pb::MkdirsResponse {
            status: Some(st.into()),
        }))
    }

    async fn create(&self, req: Request<pb::CreateRequest>) -> Rpc<pb::CreateResponse> {
        let d = durability(&req);
        let c = caller(&req);
        let r = req.into_inner();
        let req = CreateRequest {
            path: path(&r.path)?,
            mode: NewMode {
                permission: r.permission.unwrap_or(DEFAULT_FILE_PERMISSION),
                unmasked: r.unmasked,
                group: r.group,
            },
            client: r.client_name,
            overwrite: r.overwrite,
            create_parent: r.create_parent,
            replication: r.replication,
            block_size: r.block_size,
        };
        let st = self
            .exec(d, |st| st.create(&c, &req, Now::current()))
            .await?;
        Ok(Response::new(pb::CreateResponse {
            status: Some(st.into()),
        }))
    }

    async fn append(&self, req: Request<pb::AppendRequest>) -> Rpc<pb::AppendResponse> {
        let d = durability(&req);
        let c = caller(&req);
        let r = req.into_inner();
        let p = path(&r.path)?;
        let (last, st) = self
            .exec(d, |st| st.append(&c, &p, &r.client_name, Now::current()))
            .await?;
        Ok(Response::new(pb::AppendResponse {
            last_block: last.map(pb::LocatedBlock::from),
            status: Some(st.into()),
        }))
    }

    async fn add_block(&self, req: Request<pb::AddBlockRequest>) -> Rpc<pb::AddBlockResponse> {
        let d = durability(&req);
        let host = client_host(&req, &req.get_ref().client_host);
        let r = req.into_inner();
        let p = path(&r.path)?;
        let previous = r.previous.as_ref().map(Block::from);
        let exclude: HashSet<String> = r.exclude_nodes.iter().cloned().collect();
        let b = self
            .exec(d, |st| {
                st.add_block(
                    &BlockRequest {
                        path: &p,
                        client: &r.client_name,
                        previous,
                        exclude: &exclude,
                        file_id: r.file_id,
                        client_host: &host,
                        log: r.log,
                    },
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
        let d = durability(&req);
        let r = req.into_inner();
        let p = path(&r.path)?;
        let b = block(&r.block, "block")?;
        self.exec(d, |st| st.abandon_block(&p, &r.client_name, b, r.file_id))
            .await?;
        Ok(Response::new(pb::AbandonBlockResponse {}))
    }

    /// A file completes once a DataNode has reported a finalized replica of its last block,
    /// which happens moments after the client's last ack: rather than answer "not yet" and have
    /// the client poll, wait here (at most [`COMPLETE_WAIT`]) for the report.
    async fn complete(&self, req: Request<pb::CompleteRequest>) -> Rpc<pb::CompleteResponse> {
        let d = durability(&req);
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
                .exec(d, |st| {
                    st.complete(&p, &r.client_name, last, r.file_id, Now::current())
                })
                .await?;
            if completed {
                return Ok(Response::new(pb::CompleteResponse { completed }));
            }
            if tokio::time::timeout_at(deadline, reported).await.is_err() {
                return Ok(Response::new(pb::CompleteResponse { completed }));
            }
        }
    }

    async fn commit_extents(
        &self,
        req: Request<pb::CommitExtentsRequest>,
    ) -> Rpc<pb::CommitExtentsResponse> {
        let d = durability(&req);
        let r = req.into_inner();
        let p = path(&r.path)?;
        let block = r
            .block
            .as_ref()
            .map(Block::from)
            .ok_or_else(|| to_status(Error::InvalidArgument("no block to commit".into())))?;
        let extents = r
            .extents
            .iter()
            .map(|e| Extent {
                off: e.offset,
                len: e.length,
                block: block.id,
                block_off: e.block_offset,
            })
            .collect();
        let req = CommitRequest {
            path: &p,
            client: &r.client_name,
            file_id: r.file_id,
            block,
            extents,
            length: r.length,
            compact: r.compact,
        };
        let compact = self
            .exec(d, |st| st.commit_extents(req, Now::current()))
            .await?;
        Ok(Response::new(pb::CommitExtentsResponse {
            compact: ranges(compact),
        }))
    }

    async fn fsync(&self, req: Request<pb::FsyncRequest>) -> Rpc<pb::FsyncResponse> {
        let d = durability(&req);
        let r = req.into_inner();
        let p = path(&r.path)?;
        self.exec(d, |st| {
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
        let d = durability(&req);
        let r = req.into_inner();
        let b = block(&r.block, "block")?;
        let lb = self
            .exec(d, |st| {
                st.update_block_for_pipeline(b, &r.client_name, Now::current())
            })
            .await?;
        Ok(Response::new(pb::UpdateBlockForPipelineResponse {
            block: Some(lb.into()),
        }))
    }

    async fn update_pipeline(
        &self,
        req: Request<pb::UpdatePipelineRequest>,
    ) -> Rpc<pb::UpdatePipelineResponse> {
        let d = durability(&req);
        let r = req.into_inner();
        let old = block(&r.old_block, "old_block")?;
        let new = block(&r.new_block, "new_block")?;
        let nodes = ids(&r.new_nodes);
        self.exec(d, |st| st.update_pipeline(&r.client_name, old, new, &nodes))
            .await?;
        Ok(Response::new(pb::UpdatePipelineResponse {}))
    }

    async fn get_additional_datanode(
        &self,
        req: Request<pb::GetAdditionalDatanodeRequest>,
    ) -> Rpc<pb::GetAdditionalDatanodeResponse> {
        let d = durability(&req);
        let r = req.into_inner();
        let p = path(&r.path)?;
        let b = block(&r.block, "block")?;
        let existing = ids(&r.existing);
        let exclude: HashSet<String> = r.exclude_nodes.iter().cloned().collect();
        let lb = self
            .exec(d, |st| {
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
        let d = durability(&req);
        let r = req.into_inner();
        let holds: Vec<InodeId> = r.holds.iter().map(|h| InodeId(*h)).collect();
        let instance = self
            .exec(d, |st| {
                st.renew_lease(&r.client_name, &holds, Now::current())
            })
            .await?;
        Ok(Response::new(pb::RenewLeaseResponse { instance }))
    }

    async fn recover_lease(
        &self,
        req: Request<pb::RecoverLeaseRequest>,
    ) -> Rpc<pb::RecoverLeaseResponse> {
        let d = durability(&req);
        let c = caller(&req);
        let r = req.into_inner();
        let p = path(&r.path)?;
        let closed = self
            .exec(d, |st| {
                st.recover_lease(&c, &p, &r.client_name, Now::current())
            })
            .await?;
        Ok(Response::new(pb::RecoverLeaseResponse { closed }))
    }

    async fn get_file_info(
        &self,
        req: Request<pb::GetFileInfoRequest>,
    ) -> Rpc<pb::GetFileInfoResponse> {
        let d = durability(&req);
        let c = caller(&req);
        let r = req.into_inner();
        let p = path(&r.path)?;
        let st = self.exec(d, |st| st.get_file_info(&c, &p)).await?;
        Ok(Response::new(pb::GetFileInfoResponse {
            status: st.map(pb::FileStatus::from),
        }))
    }

    async fn check_access(
        &self,
        req: Request<pb::CheckAccessRequest>,
    ) -> Rpc<pb::CheckAccessResponse> {
        let d = durability(&req);
        let c = caller(&req);
        let r = req.into_inner();
        let p = path(&r.path)?;
        self.exec(d, |st| st.check_path_access(&c, &p, r.access))
            .await?;
        Ok(Response::new(pb::CheckAccessResponse {}))
    }

    async fn get_listing(
        &self,
        req: Request<pb::GetListingRequest>,
    ) -> Rpc<pb::GetListingResponse> {
        let d = durability(&req);
        let c = caller(&req);
        let r = req.into_inner();
        let p = path(&r.path)?;
        let (entries, remaining, dir) = self
            .exec(d, |st| st.get_listing(&c, &p, &r.start_after, r.limit))
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
        let d = durability(&req);
        let c = caller(&req);
        let host = client_host(&req, &req.get_ref().client_host);
        let r = req.into_inner();
        let lr = LocationsRequest {
            path: path(&r.path)?,
            offset: r.offset,
            length: r.length,
            client_host: host,
            client_name: r.client_name,
            hold: r.hold,
        };
        let lbs = self
            .exec(d, |st| st.get_block_locations(&c, &lr, Now::current()))
            .await?;
        Ok(Response::new(pb::GetBlockLocationsResponse {
            locations: Some(lbs.into()),
        }))
    }

    async fn rename(&self, req: Request<pb::RenameRequest>) -> Rpc<pb::RenameResponse> {
        let d = durability(&req);
        let c = caller(&req);
        let r = req.into_inner();
        let src = path(&r.src)?;
        let dst = path(&r.dst)?;
        self.exec(d, |st| {
            st.rename(&c, &src, &dst, r.overwrite, Now::current())
        })
        .await?;
        Ok(Response::new(pb::RenameResponse {}))
    }

    async fn delete(&self, req: Request<pb::DeleteRequest>) -> Rpc<pb::DeleteResponse> {
        let d = durability(&req);
        let c = caller(&req);
        let r = req.into_inner();
        let p = path(&r.path)?;
        let deleted = self
            .exec(d, |st| {
                st.delete(&c, &p, r.recursive, r.directory, Now::current())
            })
            .await?;
        Ok(Response::new(pb::DeleteResponse { deleted }))
    }

    async fn set_replication(
        &self,
        req: Request<pb::SetReplicationRequest>,
    ) -> Rpc<pb::SetReplicationResponse> {
        let d = durability(&req);
        let c = caller(&req);
        let r = req.into_inner();
        let p = path(&r.path)?;
        self.exec(d, |st| {
            st.set_replication(&c, &p, r.replication, Now::current())
        })
        .await?;
        Ok(Response::new(pb::SetReplicationResponse {}))
    }

    async fn set_permission(
        &self,
        req: Request<pb::SetPermissionRequest>,
    ) -> Rpc<pb::SetPermissionResponse> {
        let d = durability(&req);
        let c = caller(&req);
        let r = req.into_inner();
        let p = path(&r.path)?;
        self.exec(d, |st| {
            st.set_permission(&c, &p, r.permission, Now::current())
        })
        .await?;
        Ok(Response::new(pb::SetPermissionResponse {}))
    }

    async fn set_owner(&self, req: Request<pb::SetOwnerRequest>) -> Rpc<pb::SetOwnerResponse> {
        let d = durability(&req);
        let c = caller(&req);
        let r = req.into_inner();
        let p = path(&r.path)?;
        self.exec(d, |st| {
            st.set_owner(&c, &p, &r.owner, &r.group, Now::current())
        })
        .await?;
        Ok(Response::new(pb::SetOwnerResponse {}))
    }

    async fn set_times(&self, req: Request<pb::SetTimesRequest>) -> Rpc<pb::SetTimesResponse> {
        let d = durability(&req);
        let c = caller(&req);
        let r = req.into_inner();
        let req = SetTimesRequest {
            path: path(&r.path)?,
            mtime_ms: r.mtime_ms,
            atime_ms: r.atime_ms,
            now: r.now,
        };
        self.exec(d, |st| st.set_times(&c, &req, Now::current()))
            .await?;
        Ok(Response::new(pb::SetTimesResponse {}))
    }

    async fn truncate(&self, req: Request<pb::TruncateRequest>) -> Rpc<pb::TruncateResponse> {
        let d = durability(&req);
        let c = caller(&req);
        let r = req.into_inner();
        let p = path(&r.path)?;
        let compact = self
            .exec(d, |st| {
                st.truncate(&c, &p, r.new_length, &r.client_name, Now::current())
            })
            .await?;
        Ok(Response::new(pb::TruncateResponse {
            compact: ranges(compact),
        }))
    }

    async fn get_content_summary(
        &self,
        req: Request<pb::GetContentSummaryRequest>,
    ) -> Rpc<pb::GetContentSummaryResponse> {
        let d = durability(&req);
        let c = caller(&req);
        let r = req.into_inner();
        let p = path(&r.path)?;
        let s = self.exec(d, |st| st.content_summary(&c, &p)).await?;
        Ok(Response::new(pb::GetContentSummaryResponse {
            summary: Some(s.into()),
        }))
    }

    async fn report_bad_blocks(
        &self,
        req: Request<pb::ReportBadBlocksRequest>,
    ) -> Rpc<pb::ReportBadBlocksResponse> {
        let d = durability(&req);
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
        self.exec(d, |st| {
            st.report_bad_blocks(&bad);
            Ok(())
        })
        .await?;
        Ok(Response::new(pb::ReportBadBlocksResponse {}))
    }

    async fn get_stats(&self, req: Request<pb::GetStatsRequest>) -> Rpc<pb::GetStatsResponse> {
        let d = durability(&req);
        let s = self.exec(d, |st| Ok(st.stats())).await?;
        Ok(Response::new(pb::GetStatsResponse {
            namenode_rss_bytes: crate::util::resident_bytes().unwrap_or(0),
            ..s.into()
        }))
    }

    async fn get_datanode_report(
        &self,
        req: Request<pb::GetDatanodeReportRequest>,
    ) -> Rpc<pb::GetDatanodeReportResponse> {
        let d = durability(&req);
        let now = Now::current();
        let dns = self.exec(d, |st| Ok(st.datanode_report(now.at))).await?;
        Ok(Response::new(pb::GetDatanodeReportResponse {
            datanodes: dns.iter().map(pb::DatanodeInfo::from).collect(),
        }))
    }

    async fn fsck(&self, req: Request<pb::FsckRequest>) -> Rpc<pb::FsckResponse> {
        let d = durability(&req);
        let c = caller(&req);
        let r = req.into_inner();
        let p = path(&r.path)?;
        let report = self.exec(d, |st| st.fsck(&c, &p)).await?;
        Ok(Response::new(report.into()))
    }

    async fn safe_mode(&self, req: Request<pb::SafeModeRequest>) -> Rpc<pb::SafeModeResponse> {
        let d = durability(&req);
        let c = caller(&req);
        let r = req.into_inner();
        let action = SafeModeAction::try_from(r.action).map_err(to_status)?;
        let (on, status) = self
            .exec(d, |st| st.safe_mode(&c, action, Now::current()))
            .await?;
        Ok(Response::new(pb::SafeModeResponse { on, status }))
    }

    async fn decommission(
        &self,
        req: Request<pb::DecommissionRequest>,
    ) -> Rpc<pb::DecommissionResponse> {
        let d = durability(&req);
        let c = caller(&req);
        let r = req.into_inner();
        self.exec(d, |st| st.decommission(&c, &r.datanode)).await?;
        Ok(Response::new(pb::DecommissionResponse {}))
    }

    async fn create_symlink(
        &self,
        req: Request<pb::CreateSymlinkRequest>,
    ) -> Rpc<pb::CreateSymlinkResponse> {
        let d = durability(&req);
        let c = caller(&req);
        let r = req.into_inner();
        let link = path(&r.link)?;
        if r.create_parent {
            if let Some(parent) = link.parent() {
                let mk = MkdirsRequest {
                    path: parent,
                    mode: NewMode::new(DEFAULT_DIR_PERMISSION),
                    create_parent: true,
                };
                self.exec(d, |st| st.mkdirs(&c, &mk, Now::current()))
                    .await?;
            }
        }
        let st = self
            .exec(d, |st| {
                st.create_symlink(&c, &r.target, &link, &r.group, Now::current())
            })
            .await?;
        Ok(Response::new(pb::CreateSymlinkResponse {
            status: Some(st.into()),
        }))
    }

    async fn link(&self, req: Request<pb::LinkRequest>) -> Rpc<pb::LinkResponse> {
        let d = durability(&req);
        let c = caller(&req);
        let r = req.into_inner();
        let (src, dst) = (path(&r.src)?, path(&r.dst)?);
        let st = self
            .exec(d, |st| st.link(&c, &src, &dst, Now::current()))
            .await?;
        Ok(Response::new(pb::LinkResponse {
            status: Some(st.into()),
        }))
    }

    async fn mknod(&self, req: Request<pb::MknodRequest>) -> Rpc<pb::MknodResponse> {
        let d = durability(&req);
        let c = caller(&req);
        let r = req.into_inner();
        let req = MknodRequest {
            path: path(&r.path)?,
            file_type: convert::file_type(r.file_type)
                .map_err(|e| to_status(Error::InvalidArgument(e)))?,
            mode: NewMode {
                permission: r.permission,
                unmasked: r.unmasked,
                group: r.group,
            },
            rdev: r.rdev,
            replication: r.replication,
            block_size: r.block_size,
        };
        let st = self
            .exec(d, |st| st.mknod(&c, &req, Now::current()))
            .await?;
        Ok(Response::new(pb::MknodResponse {
            status: Some(st.into()),
        }))
    }

    async fn set_x_attr(&self, req: Request<pb::SetXAttrRequest>) -> Rpc<pb::SetXAttrResponse> {
        let d = durability(&req);
        let c = caller(&req);
        let r = req.into_inner();
        let p = path(&r.path)?;
        let x = r
            .xattr
            .map(|x| XAttr {
                name: x.name,
                value: x.value,
            })
            .ok_or_else(|| to_status(Error::InvalidArgument("xattr is required".into())))?;
        self.exec(d, |st| st.set_xattr(&c, &p, &x, r.flags, Now::current()))
            .await?;
        Ok(Response::new(pb::SetXAttrResponse {}))
    }

    async fn get_x_attrs(&self, req: Request<pb::GetXAttrsRequest>) -> Rpc<pb::GetXAttrsResponse> {
        let d = durability(&req);
        let c = caller(&req);
        let r = req.into_inner();
        let p = path(&r.path)?;
        let xattrs = self.exec(d, |st| st.get_xattrs(&c, &p, &r.names)).await?;
        Ok(Response::new(pb::GetXAttrsResponse {
            xattrs: xattrs
                .into_iter()
                .map(|x| pb::XAttr {
                    name: x.name,
                    value: x.value,
                })
                .collect(),
        }))
    }

    async fn list_x_attrs(
        &self,
        req: Request<pb::ListXAttrsRequest>,
    ) -> Rpc<pb::ListXAttrsResponse> {
        let d = durability(&req);
        let c = caller(&req);
        let p = path(&req.get_ref().path)?;
        let names = self.exec(d, |st| st.list_xattrs(&c, &p)).await?;
        Ok(Response::new(pb::ListXAttrsResponse { names }))
    }

    async fn remove_x_attr(
        &self,
        req: Request<pb::RemoveXAttrRequest>,
    ) -> Rpc<pb::RemoveXAttrResponse> {
        let d = durability(&req);
        let c = caller(&req);
        let r = req.into_inner();
        let p = path(&r.path)?;
        self.exec(d, |st| st.remove_xattr(&c, &p, &r.name, Now::current()))
            .await?;
        Ok(Response::new(pb::RemoveXAttrResponse {}))
    }

    async fn set_acl(&self, req: Request<pb::SetAclRequest>) -> Rpc<pb::SetAclResponse> {
        let d = durability(&req);
        let c = caller(&req);
        let r = req.into_inner();
        self.acl(d, &c, &r.path, AclChange::Set(acl_spec(&r.entries)?))
            .await?;
        Ok(Response::new(pb::SetAclResponse {}))
    }

    async fn modify_acl_entries(
        &self,
        req: Request<pb::ModifyAclEntriesRequest>,
    ) -> Rpc<pb::ModifyAclEntriesResponse> {
        let d = durability(&req);
        let c = caller(&req);
        let r = req.into_inner();
        self.acl(d, &c, &r.path, AclChange::Modify(acl_spec(&r.entries)?))
            .await?;
        Ok(Response::new(pb::ModifyAclEntriesResponse {}))
    }

    async fn remove_acl_entries(
        &self,
        req: Request<pb::RemoveAclEntriesRequest>,
    ) -> Rpc<pb::RemoveAclEntriesResponse> {
        let d = durability(&req);
        let c = caller(&req);
        let r = req.into_inner();
        let change = AclChange::RemoveEntries(acl_spec(&r.entries)?);
        self.acl(d, &c, &r.path, change).await?;
        Ok(Response::new(pb::RemoveAclEntriesResponse {}))
    }

    async fn remove_default_acl(
        &self,
        req: Request<pb::RemoveDefaultAclRequest>,
    ) -> Rpc<pb::RemoveDefaultAclResponse> {
        let d = durability(&req);
        let c = caller(&req);
        self.acl(d, &c, &req.get_ref().path, AclChange::RemoveDefault)
            .await?;
        Ok(Response::new(pb::RemoveDefaultAclResponse {}))
    }

    async fn remove_acl(&self, req: Request<pb::RemoveAclRequest>) -> Rpc<pb::RemoveAclResponse> {
        let d = durability(&req);
        let c = caller(&req);
        self.acl(d, &c, &req.get_ref().path, AclChange::RemoveAll)
            .await?;
        Ok(Response::new(pb::RemoveAclResponse {}))
    }

    async fn get_acl_status(
        &self,
        req: Request<pb::GetAclStatusRequest>,
    ) -> Rpc<pb::GetAclStatusResponse> {
        let d = durability(&req);
        let c = caller(&req);
        let p = path(&req.get_ref().path)?;
        let s = self.exec(d, |st| st.get_acl_status(&c, &p)).await?;
        Ok(Response::new(s.into()))
    }

    async fn release_holds(
        &self,
        req: Request<pb::ReleaseHoldsRequest>,
    ) -> Rpc<pb::ReleaseHoldsResponse> {
        let d = durability(&req);
        let r = req.into_inner();
        let files: Vec<InodeId> = r.file_ids.iter().map(|f| InodeId(*f)).collect();
        self.exec(d, |st| st.release_holds(&r.client_name, &files))
            .await?;
        Ok(Response::new(pb::ReleaseHoldsResponse {}))
    }

    async fn expunge_trash(
        &self,
        req: Request<pb::ExpungeTrashRequest>,
    ) -> Rpc<pb::ExpungeTrashResponse> {
        let d = durability(&req);
        let c = caller(&req);
        let immediate = req.into_inner().immediate;
        self.exec(d, |st| st.expunge_trash(&c, immediate, Now::current()))
            .await?;
        Ok(Response::new(pb::ExpungeTrashResponse {}))
    }
}

impl Service {
    async fn acl(
        &self,
        d: Durability,
        c: &Caller,
        p: &str,
        change: AclChange,
    ) -> std::result::Result<(), Status> {
        let p = path(p)?;
        self.exec(d, |st| st.change_acl(c, &p, &change, Now::current()))
            .await
    }
}

fn acl_spec(entries: &[pb::AclEntry]) -> std::result::Result<Vec<AclEntry>, Status> {
    dfs_proto::acl::from_wire(entries).map_err(|e| to_status(Error::InvalidArgument(e)))
}

/// Compaction's file ranges on the wire (`block_offset` unused).
fn ranges(compact: Vec<(u64, u64)>) -> Vec<pb::FileExtent> {
    compact
        .into_iter()
        .map(|(offset, length)| pb::FileExtent {
            offset,
            length,
            block_offset: 0,
        })
        .collect()
}
