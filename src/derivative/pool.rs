//! The bounded CPU pool for transforms: `workers` dedicated threads (one a core by default)
//! and room for `queue` waiting jobs; past that, callers are told to slow down (503).
//!
//! Dedicated threads rather than tokio's blocking pool: decode buffers are large, and glibc
//! keeps freed memory in per-thread arenas, so spreading transforms over dozens of blocking
//! threads grew RSS by hundreds of MiB. A job whose caller has gone away (client
//! disconnected while queued) is skipped, and its place in the queue is given back.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};

use tokio::sync::oneshot;

type Job = Box<dyn FnOnce() + Send>;

pub struct TransformPool {
    jobs: Mutex<mpsc::Sender<Job>>,
    /// Jobs accepted and not yet finished or skipped (running + queued).
    outstanding: Arc<AtomicUsize>,
    capacity: usize,
}

#[derive(Debug, PartialEq, Eq)]
pub enum PoolError {
    /// All workers are busy and the queue is full.
    Busy,
    /// The work panicked or the pool is gone.
    Failed(String),
}

/// Gives a place back when dropped, whichever way the job ends.
struct Place(Arc<AtomicUsize>);

impl Drop for Place {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Marks the job abandoned if the awaiting future is dropped before the result arrives.
struct Abandon(Arc<AtomicBool>);

impl Drop for Abandon {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

impl TransformPool {
    pub fn new(workers: usize, queue: usize) -> Self {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..workers.max(1) {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("transform-{i}"))
                .spawn(move || loop {
                    let job = {
                        let guard = rx.lock().unwrap_or_else(|p| p.into_inner());
                        guard.recv()
                    };
                    match job {
                        Ok(job) => job(),
                        Err(_) => return, // pool dropped
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "could not start a transform worker");
            }
        }
        Self {
            jobs: Mutex::new(tx),
            outstanding: Arc::new(AtomicUsize::new(0)),
            capacity: workers.max(1) + queue,
        }
    }

    /// Runs `work` on a worker thread once one is free, or answers `Busy` at once.
    pub async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Result<T, PoolError> {
        if self.outstanding.fetch_add(1, Ordering::SeqCst) >= self.capacity {
            self.outstanding.fetch_sub(1, Ordering::SeqCst);
            return Err(PoolError::Busy);
        }
        let place = Place(self.outstanding.clone());
        let abandoned = Arc::new(AtomicBool::new(false));
        let _abandon = Abandon(abandoned.clone());
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move || {
            let _place = place;
            if abandoned.load(Ordering::SeqCst) {
                return;
            }
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
            let _ = tx.send(result.map_err(|_| PoolError::Failed("transform panicked".into())));
        });
        self.jobs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .send(job)
            .map_err(|_| PoolError::Failed("transform pool stopped".into()))?;
        rx.await
            .map_err(|_| PoolError::Failed("transform worker went away".into()))?
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn abandoned_queued_jobs_give_their_place_back() {
        let pool = Arc::new(TransformPool::new(1, 2));
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let p = pool.clone();
        let blocker = tokio::spawn(async move { p.run(move || rx.recv().is_ok()).await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        // Two callers queue and then give up (their clients disconnected).
        for _ in 0..2 {
            let p = pool.clone();
            let waiting = tokio::spawn(async move { p.run(|| 0).await });
            tokio::time::sleep(Duration::from_millis(20)).await;
            waiting.abort();
        }
        tx.send(()).expect("release");
        assert_eq!(blocker.await.expect("join"), Ok(true));
        tokio::time::sleep(Duration::from_millis(50)).await;
        // All places are free again: one runs, two queue, none is refused.
        let runs = (0..3).map(|i| {
            let p = pool.clone();
            tokio::spawn(async move { p.run(move || i).await })
        });
        for (i, r) in runs.enumerate() {
            assert_eq!(r.await.expect("join"), Ok(i));
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panicking_job_is_an_error_not_a_dead_worker() {
        let pool = TransformPool::new(1, 1);
        let r: Result<(), _> = pool.run(|| panic!("boom")).await;
        assert!(matches!(r, Err(PoolError::Failed(_))));
        assert_eq!(pool.run(|| 5).await, Ok(5), "the worker survived");
    }
}
