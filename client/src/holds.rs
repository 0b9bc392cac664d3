//! The files this client holds open, shared by every identity of one client (they share its
//! lease name), and the one task that keeps its lease alive and tells the NameNode about closes.
//!
//! Each reader and writer holds its file while it lives ([`Hold`]): the NameNode learns of the
//! first hold with the call that opened the file (GetBlockLocations with `hold`, Create, Append),
//! and of the last release in a batched ReleaseHolds. A file unlinked meanwhile stays readable
//! and writable through its inode path until then. The lease is renewed while anything is held
//! (writers hold what they write); when the NameNode restarted (a new `instance`), the holds are
//! sent again with the renewal, since a NameNode keeps only those of unlinked files.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use dfs_proto::pb;
use tokio::sync::Notify;

use crate::namenode::{call, Namenode};

/// How long releases wait to be batched into one RPC.
const RELEASE_BATCH: Duration = Duration::from_millis(20);

#[derive(Default)]
struct Table {
    /// Open readers and writers per inode id.
    open: HashMap<u64, usize>,
    /// Inodes whose last hold went, not yet told to the NameNode.
    released: Vec<u64>,
}

/// The shared hold table of one client name.
pub(crate) struct Holds {
    client_name: String,
    table: Mutex<Table>,
    /// Held while releases are sent, so `release_all` returns only after every release taken
    /// from the table reached the NameNode.
    sending: tokio::sync::Mutex<()>,
    /// Wakes the task to send releases (its own `Arc`: the task must not keep the table alive).
    wake: Arc<Notify>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Holds {
    /// A table for `client_name`, with its task renewing the lease every `renew` through `nn`
    /// and sending releases; the task ends when the table is dropped (after a last release).
    pub(crate) fn start(client_name: String, nn: Namenode, renew: Duration) -> Arc<Holds> {
        let holds = Arc::new(Holds {
            client_name,
            table: Mutex::default(),
            sending: tokio::sync::Mutex::new(()),
            wake: Arc::new(Notify::new()),
        });
        tokio::spawn(run(Arc::downgrade(&holds), holds.wake.clone(), nn, renew));
        holds
    }

    /// One more reader or writer of `file` (the NameNode already counts the file as held).
    pub(crate) fn hold(self: &Arc<Self>, file: u64) -> Hold {
        let mut t = lock(&self.table);
        *t.open.entry(file).or_default() += 1;
        t.released.retain(|f| *f != file);
        Hold {
            holds: self.clone(),
            file,
        }
    }

    fn release(&self, file: u64) {
        let mut t = lock(&self.table);
        let Some(n) = t.open.get_mut(&file) else {
            return; // forgotten by `release_all`
        };
        *n -= 1;
        if *n == 0 {
            t.open.remove(&file);
            t.released.push(file);
            drop(t);
            self.wake.notify_one();
        }
    }

    fn is_idle(&self) -> bool {
        lock(&self.table).open.is_empty()
    }

    fn held(&self) -> Vec<u64> {
        lock(&self.table).open.keys().copied().collect()
    }

    fn take_released(&self) -> Vec<u64> {
        std::mem::take(&mut lock(&self.table).released)
    }

    /// Tells the NameNode now that every file held is closed, and forgets them: for a process
    /// about to exit, whose holds would otherwise last until its lease expires.
    pub(crate) async fn release_all(&self, nn: &Namenode) -> crate::Result<()> {
        let _sending = self.sending.lock().await;
        let file_ids = {
            let mut t = lock(&self.table);
            let mut all: Vec<u64> = t.open.drain().map(|(f, _)| f).collect();
            all.append(&mut t.released);
            all
        };
        if file_ids.is_empty() {
            return Ok(());
        }
        let req = pb::ReleaseHoldsRequest {
            client_name: self.client_name.clone(),
            file_ids,
        };
        call!(nn, release_holds, req).map(|_| ())
    }
}

/// A reader's or writer's hold on its file, released when dropped. A FUSE handle keeps one (as
/// [`crate::KeepOpen`]) for as long as the handle is open, whatever its readers and writers do.
pub struct Hold {
    holds: Arc<Holds>,
    file: u64,
}

impl Drop for Hold {
    fn drop(&mut self) {
        self.holds.release(self.file);
    }
}

impl Drop for Holds {
    fn drop(&mut self) {
        // Let the task see the table is gone.
        self.wake.notify_one();
    }
}

/// The table's task: sends releases (batched) and renews the lease; it ends once the table is
/// gone (the client and all its readers and writers dropped).
async fn run(holds: Weak<Holds>, wake: Arc<Notify>, nn: Namenode, renew: Duration) {
    let mut instance = 0;
    let mut next_renewal = tokio::time::Instant::now() + renew;
    loop {
        let Some(h) = holds.upgrade() else { return };
        let woken = wake.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        let sending = h.sending.lock().await;
        let released = h.take_released();
        if !released.is_empty() {
            let req = pb::ReleaseHoldsRequest {
                client_name: h.client_name.clone(),
                file_ids: released,
            };
            if let Err(e) = call!(nn, release_holds, req) {
                tracing::warn!("could not tell the NameNode about closed files: {e}");
            }
        }
        drop(sending);
        if tokio::time::Instant::now() >= next_renewal {
            next_renewal = tokio::time::Instant::now() + renew;
            if !h.is_idle() {
                instance = renew_lease(&h, &nn, instance).await;
            }
        }
        drop(h);
        tokio::select! {
            _ = woken => tokio::time::sleep(RELEASE_BATCH).await,
            _ = tokio::time::sleep_until(next_renewal) => {}
        }
    }
}

/// Renews the lease; a NameNode instance not seen before is sent the holds again.
async fn renew_lease(h: &Holds, nn: &Namenode, instance: u64) -> u64 {
    let req = pb::RenewLeaseRequest {
        client_name: h.client_name.clone(),
        holds: Vec::new(),
    };
    let seen = match call!(nn, renew_lease, req) {
        Ok(r) => r.instance,
        Err(e) => {
            tracing::warn!("could not renew leases: {e}");
            return instance;
        }
    };
    if seen == instance {
        return instance;
    }
    let req = pb::RenewLeaseRequest {
        client_name: h.client_name.clone(),
        holds: h.held(),
    };
    match call!(nn, renew_lease, req) {
        Ok(r) => r.instance,
        Err(e) => {
            tracing::warn!("could not register open files again: {e}");
            instance
        }
    }
}
