//! DatanodeProtocol: what DataNodes tell.

use dfs_proto::pb;
use tonic::{Request, Response};

use dfs_proto::pb::datanode_protocol_server::DatanodeProtocol;

use super::*;

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
            .exec(Durability::Synced, |st| {
                st.register(id, storage, Now::current())
            })
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
            .exec(Durability::Synced, |st| {
                let commands = st.heartbeat(&r.uuid, storage, r.xceivers, Now::current());
                if commands.as_ref().is_some_and(|c| !c.is_empty()) {
                    st.log.request_sync()?;
                }
                Ok((commands, st.log.last_txid()))
            })
            .await?;
        let Some(commands) = commands else {
            return Ok(Response::new(pb::HeartbeatResponse {
                commands: Vec::new(),
                reregister: true,
            }));
        };
        if !commands.is_empty() {
            // Commands may carry generation stamps just logged (lease recovery), and deletes of
            // replicas whose files a power loss could bring back: send none before every change
            // before it is synced.
            self.shared.sync.synced(txid).await.map_err(to_status)?;
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
        self.exec(Durability::Synced, |st| {
            st.block_report(&r.uuid, &reports, Now::current())
        })
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
        self.exec(Durability::Synced, |st| {
            st.block_received_and_deleted(&r.uuid, &items, Now::current())
        })
        .await?;
        self.shared.replicas_reported.notify_waiters();
        Ok(Response::new(pb::BlockReceivedAndDeletedResponse {}))
    }

    async fn report_bad_blocks(
        &self,
        req: Request<pb::DnReportBadBlocksRequest>,
    ) -> Rpc<pb::DnReportBadBlocksResponse> {
        let r = req.into_inner();
        let mut bad: Vec<(Block, String)> = r
            .blocks
            .iter()
            .map(|b| (Block::from(b), r.uuid.clone()))
            .collect();
        for x in &r.remote {
            let block = x.block.as_ref().ok_or_else(|| {
                to_status(Error::InvalidArgument(
                    "remote bad replica without a block".into(),
                ))
            })?;
            bad.push((Block::from(block), x.datanode_uuid.clone()));
        }
        self.exec(Durability::Synced, |st| {
            st.dn_report_bad_blocks(&r.uuid, &bad)
        })
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
        self.exec(Durability::Synced, |st| {
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
