//! RPC counts per method, for operators (the status page's `rpc`) and for tests that prove how
//! many calls a client operation costs (`ls -l` through a mount: one listing per page, no stat
//! per entry).
//!
//! [`CountRpcs`] is a tower layer around the whole gRPC server, so it sees every call by its
//! path (`/dfs.ClientProtocol/GetListing`) before routing, whether the call succeeds or not.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tonic::codegen::{http, Service};

/// Distinct method names kept: a client sending made-up paths must not grow the map.
const MAX_METHODS: usize = 128;
/// Where calls to methods beyond [`MAX_METHODS`] are counted.
const OTHER: &str = "other";

/// Calls per method name (`GetListing`), shared by the layer and the status page.
#[derive(Default)]
pub struct RpcCounts(Mutex<BTreeMap<String, u64>>);

impl RpcCounts {
    fn add(&self, path: &str) {
        let method = path.rsplit('/').next().unwrap_or(path);
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = m.get_mut(method) {
            *n += 1;
        } else if m.len() < MAX_METHODS {
            m.insert(method.to_string(), 1);
        } else {
            *m.entry(OTHER.to_string()).or_default() += 1;
        }
    }

    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// The tower layer that counts into an [`RpcCounts`].
#[derive(Clone)]
pub struct CountRpcs(pub Arc<RpcCounts>);

impl<S> tower_layer::Layer<S> for CountRpcs {
    type Service = Counted<S>;

    fn layer(&self, inner: S) -> Counted<S> {
        Counted {
            inner,
            counts: self.0.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Counted<S> {
    inner: S,
    counts: Arc<RpcCounts>,
}

impl<S, B> Service<http::Request<B>> for Counted<S>
where
    S: Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        self.counts.add(req.uri().path());
        self.inner.call(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_method_and_bounds_the_names() {
        let c = RpcCounts::default();
        c.add("/dfs.ClientProtocol/GetListing");
        c.add("/dfs.ClientProtocol/GetListing");
        c.add("/dfs.ClientProtocol/GetFileInfo");
        let s = c.snapshot();
        assert_eq!((s["GetListing"], s["GetFileInfo"]), (2, 1));
        for i in 0..1000 {
            c.add(&format!("/junk/{i}"));
        }
        let s = c.snapshot();
        assert_eq!(s.len(), MAX_METHODS + 1);
        assert_eq!(s[OTHER], 1000 - (MAX_METHODS as u64 - 2));
    }
}
