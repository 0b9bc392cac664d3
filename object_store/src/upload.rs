//! Multipart uploads streamed straight into one dfs writer. Parts are written in the order
//! `put_part` was called, whatever order their futures are awaited in: each part is queued at
//! once, and one task writes the queue in order, answering each part's future when its bytes
//! are in the pipeline. `complete` closes the staging file and renames it into place; `abort`
//! deletes it.

use std::fmt;

use async_trait::async_trait;
use dfs_client::FileWriter;
use object_store::{MultipartUpload, PutPayload, PutResult, Result, UploadPart};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::errors::dfs_error;
use crate::DfsObjectStore;

type Part = (PutPayload, oneshot::Sender<Result<()>>);

pub(crate) struct Upload {
    store: DfsObjectStore,
    staging: String,
    target: String,
    parts: Option<mpsc::UnboundedSender<Part>>,
    writer: Option<JoinHandle<Result<FileWriter>>>,
}

impl fmt::Debug for Upload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Upload")
            .field("target", &self.target)
            .field("staging", &self.staging)
            .finish()
    }
}

/// Writes the queued parts in order; the first failure fails that part and every later one.
async fn write_parts(
    mut w: FileWriter,
    mut rx: mpsc::UnboundedReceiver<Part>,
    target: String,
) -> Result<FileWriter> {
    while let Some((payload, done)) = rx.recv().await {
        let mut written = Ok(());
        for chunk in &payload {
            written = w.write(chunk).await;
            if written.is_err() {
                break;
            }
        }
        if let Err(e) = written {
            let message = e.to_string();
            let _ = done.send(Err(object_store::Error::Generic {
                store: "dfs",
                source: message.clone().into(),
            }));
            return Err(dfs_error(e, &target));
        }
        let _ = done.send(Ok(()));
    }
    Ok(w)
}

impl Upload {
    pub(crate) fn start(
        store: DfsObjectStore,
        staging: String,
        target: String,
        w: FileWriter,
    ) -> Upload {
        let (tx, rx) = mpsc::unbounded_channel();
        let writer = tokio::spawn(write_parts(w, rx, target.clone()));
        Upload {
            store,
            staging,
            target,
            parts: Some(tx),
            writer: Some(writer),
        }
    }

    /// Stops the writer task and returns its writer.
    async fn finish_writing(&mut self) -> Result<FileWriter> {
        self.parts = None;
        let Some(task) = self.writer.take() else {
            return Err(object_store::Error::Generic {
                store: "dfs",
                source: "the upload was already completed or aborted".into(),
            });
        };
        task.await.map_err(|e| object_store::Error::Generic {
            store: "dfs",
            source: Box::new(e),
        })?
    }
}

#[async_trait]
impl MultipartUpload for Upload {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        let (done, answer) = oneshot::channel();
        let queued = self
            .parts
            .as_ref()
            .is_some_and(|tx| tx.send((data, done)).is_ok());
        Box::pin(async move {
            if !queued {
                return Err(object_store::Error::Generic {
                    store: "dfs",
                    source: "the upload is finished or failed".into(),
                });
            }
            answer.await.map_err(|_| object_store::Error::Generic {
                store: "dfs",
                source: "the upload failed before this part was written".into(),
            })?
        })
    }

    async fn complete(&mut self) -> Result<PutResult> {
        let closed = match self.finish_writing().await {
            Ok(mut w) => w.close().await.map_err(|e| dfs_error(e, &self.target)),
            Err(e) => Err(e),
        };
        if let Err(e) = closed {
            self.store.discard(&self.staging).await;
            return Err(e);
        }
        self.store.publish(&self.staging, &self.target, true).await
    }

    async fn abort(&mut self) -> Result<()> {
        drop(self.finish_writing().await);
        self.store
            .client
            .delete(&self.staging, false)
            .await
            .map_err(|e| dfs_error(e, &self.staging))?;
        self.store.prune(&self.staging).await;
        Ok(())
    }
}

impl Drop for Upload {
    /// An upload dropped unfinished (a cancelled query) leaves nothing behind: its staging file
    /// is removed in the background.
    fn drop(&mut self) {
        if self.writer.is_none() {
            return; // completed or aborted
        }
        self.parts = None;
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let (store, staging) = (self.store.clone(), self.staging.clone());
            let writer = self.writer.take();
            rt.spawn(async move {
                if let Some(w) = writer {
                    drop(w.await);
                }
                store.discard(&staging).await;
            });
        }
    }
}
