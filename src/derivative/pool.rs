//! The bounded CPU pool for transforms: at most `workers` run at once (one slot a core by
//! default) and at most `queue` wait; past that, callers are told to slow down (503).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::Semaphore;

pub struct TransformPool {
    running: Arc<Semaphore>,
    waiting: AtomicUsize,
    queue: usize,
}

#[derive(Debug, PartialEq, Eq)]
pub enum PoolError {
    /// The queue is full: the server is saturated with transforms.
    Busy,
    /// The work panicked or was cancelled.
    Failed(String),
}

impl TransformPool {
    pub fn new(workers: usize, queue: usize) -> Self {
        Self {
            running: Arc::new(Semaphore::new(workers.max(1))),
            waiting: AtomicUsize::new(0),
            queue,
        }
    }

    /// Runs `work` on a blocking thread once a slot is free.
    pub async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Result<T, PoolError> {
        let permit = match self.running.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                if self.waiting.fetch_add(1, Ordering::SeqCst) >= self.queue {
                    self.waiting.fetch_sub(1, Ordering::SeqCst);
                    return Err(PoolError::Busy);
                }
                let p = self.running.clone().acquire_owned().await;
                self.waiting.fetch_sub(1, Ordering::SeqCst);
                p.map_err(|e| PoolError::Failed(e.to_string()))?
            }
        };
        tokio::task::spawn_blocking(move || {
            let _slot = permit;
            work()
        })
        .await
        .map_err(|e| PoolError::Failed(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn rejects_past_the_queue_and_runs_the_rest() {
        let pool = Arc::new(TransformPool::new(1, 1));
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let p1 = pool.clone();
        let first = tokio::spawn(async move { p1.run(move || rx.recv().is_ok()).await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let p2 = pool.clone();
        let second = tokio::spawn(async move { p2.run(|| 2).await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(pool.run(|| 3).await, Err(PoolError::Busy), "queue of 1 is full");
        tx.send(()).expect("release");
        assert_eq!(first.await.expect("join"), Ok(true));
        assert_eq!(second.await.expect("join"), Ok(2));
        assert_eq!(pool.run(|| 4).await, Ok(4));
    }
}
