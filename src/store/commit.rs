//! Group commit: many writers wait on one sled flush instead of each paying for an fsync.
//!
//! A writer applies its change to sled (in memory), then calls [`GroupCommit::durable`], which
//! takes a ticket and waits until a flush that *started after* the ticket was issued has
//! finished. One background task runs the flushes back to back, so under load each flush
//! covers every write that arrived while the previous one was running.

use std::sync::Arc;
use std::sync::Mutex;

use tokio::sync::{watch, Notify};

use super::StoreError;

#[derive(Clone, Copy, Default, Debug)]
struct Flushed {
    /// Every ticket `<= ok` is durable.
    ok: u64,
    /// Every ticket `<= failed` (and `> ok` at the time) saw a failed flush.
    failed: u64,
}

pub struct GroupCommit {
    issued: Mutex<u64>,
    wake: Notify,
    flushed: watch::Sender<Flushed>,
}

impl GroupCommit {
    /// Starts the flusher task for `db` on the current tokio runtime.
    pub fn start(db: sled::Db) -> Arc<Self> {
        let (tx, _rx) = watch::channel(Flushed::default());
        let gc = Arc::new(Self {
            issued: Mutex::new(0),
            wake: Notify::new(),
            flushed: tx,
        });
        let weak = Arc::downgrade(&gc);
        tokio::spawn(async move {
            loop {
                let Some(gc) = weak.upgrade() else { return };
                gc.wake.notified().await;
                let target = *gc.issued.lock().unwrap_or_else(|p| p.into_inner());
                if target <= gc.flushed.borrow().ok {
                    continue;
                }
                let db = db.clone();
                let result = tokio::task::spawn_blocking(move || db.flush()).await;
                gc.flushed.send_modify(|f| match result {
                    Ok(Ok(_)) => f.ok = f.ok.max(target),
                    Ok(Err(e)) => {
                        tracing::error!(error = %e, "metadata flush failed");
                        f.failed = f.failed.max(target);
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "metadata flush task failed");
                        f.failed = f.failed.max(target);
                    }
                });
            }
        });
        gc
    }

    /// Returns once everything written to sled before this call is on stable storage.
    pub async fn durable(&self) -> Result<(), StoreError> {
        let ticket = {
            let mut issued = self.issued.lock().unwrap_or_else(|p| p.into_inner());
            *issued += 1;
            *issued
        };
        let mut rx = self.flushed.subscribe();
        self.wake.notify_one();
        loop {
            let state = *rx.borrow_and_update();
            if state.ok >= ticket {
                return Ok(());
            }
            if state.failed >= ticket {
                return Err(StoreError::Io(std::io::Error::other("metadata flush failed")));
            }
            if rx.changed().await.is_err() {
                return Err(StoreError::Io(std::io::Error::other("metadata flusher stopped")));
            }
            // A flush may have finished that began before our ticket: make sure another runs.
            self.wake.notify_one();
        }
    }
}
