//! A cloneable shutdown signal for every long-lived task.

use tokio::sync::watch;

/// Resolves once shutdown was requested (or the trigger was dropped).
#[derive(Clone)]
pub(crate) struct Shutdown {
    rx: watch::Receiver<bool>,
}

/// Starts the shutdown of every [`Shutdown`] made from it; dropping it does too.
pub(crate) struct Trigger {
    tx: watch::Sender<bool>,
}

pub(crate) fn channel() -> (Trigger, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (Trigger { tx }, Shutdown { rx })
}

impl Trigger {
    pub fn fire(&self) {
        let _ = self.tx.send(true);
    }
}

impl Shutdown {
    /// Waits for shutdown. Cancel-safe.
    pub async fn wait(&mut self) {
        // An error means the trigger is gone, which also means shutdown.
        let _ = self.rx.wait_for(|down| *down).await;
    }

    pub fn is_down(&self) -> bool {
        *self.rx.borrow()
    }
}
