//! The NameNode connection: a tonic channel (which reconnects by itself after a NameNode
//! restart), the caller's identity attached to every request, and status → [`Error`] mapping.

use std::time::Duration;

use dfs_proto::error_kind::{GROUPS_KEY, SYNC_KEY, USER_KEY};
use dfs_proto::pb::client_protocol_client::ClientProtocolClient;
use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, Endpoint};

use crate::error::{Error, Result};
use crate::user::UserInfo;

/// Largest NameNode reply accepted (fsck of a big tree can be large).
const MAX_REPLY: usize = 256 * 1024 * 1024;

#[derive(Clone)]
pub(crate) struct Namenode {
    pub(crate) rpc: ClientProtocolClient<Channel>,
    pub(crate) addr: String,
    user: MetadataValue<tonic::metadata::Ascii>,
    groups: MetadataValue<tonic::metadata::Ascii>,
    /// Send `dfs-sync: 1`: replies wait until every change before them is fsynced.
    sync: bool,
}

impl Namenode {
    pub(crate) async fn connect(
        addr: &str,
        user: &UserInfo,
        timeout: Duration,
        sync: bool,
    ) -> Result<Namenode> {
        let endpoint = Endpoint::from_shared(format!("http://{addr}"))
            .map_err(|e| Error::InvalidArgument(format!("bad NameNode address {addr:?}: {e}")))?
            .connect_timeout(timeout)
            .tcp_nodelay(true);
        let channel = match tokio::time::timeout(timeout, endpoint.connect()).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => {
                return Err(Error::Unavailable {
                    addr: addr.to_string(),
                    reason: innermost(&e),
                })
            }
            Err(_) => {
                return Err(Error::Unavailable {
                    addr: addr.to_string(),
                    reason: format!("no answer within {timeout:?}"),
                })
            }
        };
        Ok(Namenode {
            rpc: ClientProtocolClient::new(channel)
                .max_decoding_message_size(MAX_REPLY)
                .max_encoding_message_size(MAX_REPLY),
            addr: addr.to_string(),
            user: ascii(&user.name),
            groups: ascii(&user.groups.join(",")),
            sync,
        })
    }

    /// The same connection, its replies waiting until every change before them is fsynced
    /// (what fsync, fsyncdir and hsync need, whatever the client's default).
    pub(crate) fn synced(&self) -> Namenode {
        Namenode {
            sync: true,
            ..self.clone()
        }
    }

    /// The same connection, acting as another user.
    pub(crate) fn with_user(&self, user: &UserInfo) -> Namenode {
        Namenode {
            user: ascii(&user.name),
            groups: ascii(&user.groups.join(",")),
            ..self.clone()
        }
    }

    /// Wraps a message with the caller's identity.
    pub(crate) fn request<T>(&self, msg: T) -> tonic::Request<T> {
        let mut r = tonic::Request::new(msg);
        r.metadata_mut().insert(USER_KEY, self.user.clone());
        r.metadata_mut().insert(GROUPS_KEY, self.groups.clone());
        if self.sync {
            r.metadata_mut()
                .insert(SYNC_KEY, MetadataValue::from_static("1"));
        }
        r
    }
}

/// Metadata values must be visible ASCII; a name that is not is sent as "nobody".
fn ascii(s: &str) -> MetadataValue<tonic::metadata::Ascii> {
    MetadataValue::try_from(s).unwrap_or_else(|_| MetadataValue::from_static("nobody"))
}

fn innermost(e: &(dyn std::error::Error + 'static)) -> String {
    let mut last = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        last = s.to_string();
        src = s.source();
    }
    last
}

/// Calls one ClientProtocol method: `call!(nn, method, request_message)`.
macro_rules! call {
    ($nn:expr, $method:ident, $req:expr) => {{
        let nn: &$crate::namenode::Namenode = &$nn;
        nn.rpc
            .clone()
            .$method(nn.request($req))
            .await
            .map(|r| r.into_inner())
            .map_err(|s| $crate::error::Error::from_status(&nn.addr, s))
    }};
}
pub(crate) use call;
