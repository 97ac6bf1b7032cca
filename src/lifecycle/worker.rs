//! The lifecycle worker: scans buckets that have lifecycle rules, evaluates every version
//! ([`super::eval`]) and applies what is due. Runs on a schedule (`lifecycle.interval_secs`,
//! first `lifecycle.startup_delay_secs` after start-up) and on demand (the admin API behind
//! `strata lifecycle run`); one run at a time (a second caller waits for the first).
//!
//! Bounded: keys are read in batches of `lifecycle.batch_keys`; the scan iterators are dropped
//! before a batch's actions are applied, so nothing is held across the writes, and a run stops
//! after `lifecycle.max_actions_per_run` actions (the next run continues).
//!
//! Every action is its own conditional transaction through the same store paths as the S3
//! handlers: expiring a current version is DeleteObject's `delete_current`, only if the
//! latest version is still the one evaluated; removing a noncurrent version or a lone delete
//! marker is DeleteObject-with-versionId's `delete_version`, only if it still stands where it
//! was evaluated; uploads are aborted as AbortMultipartUpload does; transitions go through
//! `Store::transition_version` (only towards a colder class). A batch's changes are made
//! durable before they are counted, and then the deleted versions' blobs (after the grace
//! period) and derivatives are freed exactly as DeleteObject frees them.

use std::ops::Bound;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::eval::{abort_upload_due, evaluate, Action, Standing, VersionFacts};
use crate::config::LifecycleSettings;
use crate::derivative::Derivatives;
use crate::model::lifecycle::{Rule, TargetClass};
use crate::store::records::{ObjectRecord, VersioningMode};
use crate::store::versions::Expect;
use crate::store::{Store, StoreError, Unflushed};
use crate::util::clock::Clock;

/// What one run did.
#[derive(Serialize, Deserialize, Debug, Default, Clone, PartialEq, Eq)]
pub struct RunReport {
    /// The time the rules were evaluated at (ms since the epoch).
    pub now_ms: i64,
    /// Buckets with at least one enabled rule.
    pub buckets: u64,
    /// Versions looked at (current and noncurrent, delete markers included).
    pub scanned: u64,
    /// Current versions expired (a delete marker added, or deleted in an unversioned bucket).
    pub expired: u64,
    /// Lone delete markers removed (ExpiredObjectDeleteMarker).
    pub delete_markers_removed: u64,
    /// Noncurrent versions permanently deleted.
    pub noncurrent_expired: u64,
    /// Incomplete multipart uploads aborted.
    pub uploads_aborted: u64,
    /// Versions moved to a colder storage class.
    pub transitions: u64,
    /// Actions not applied because the version changed between evaluation and action.
    pub skipped: u64,
    /// The run stopped at `max_actions_per_run`.
    pub limited: bool,
}

impl RunReport {
    fn actions(&self) -> u64 {
        self.expired
            + self.delete_markers_removed
            + self.noncurrent_expired
            + self.uploads_aborted
            + self.transitions
            + self.skipped
    }

    /// The one-line summary the CLI prints.
    pub fn summary(&self) -> String {
        format!(
            "lifecycle: scanned {} versions in {} buckets, expired {}, delete markers removed {}, noncurrent expired {}, \
             uploads aborted {}, transitions {}, skipped {}{}",
            self.scanned,
            self.buckets,
            self.expired,
            self.delete_markers_removed,
            self.noncurrent_expired,
            self.uploads_aborted,
            self.transitions,
            self.skipped,
            if self.limited { "; stopped at max_actions_per_run" } else { "" }
        )
    }
}

/// One due action, planned during a scan batch and applied after it.
#[derive(Debug)]
enum Planned {
    ExpireCurrent {
        key: String,
        version_id: String,
    },
    /// `version_id` as clients see it, `id` the internal one (see [`Expect`]).
    RemoveDeleteMarker {
        key: String,
        version_id: String,
        id: String,
    },
    ExpireNoncurrent {
        key: String,
        version_id: String,
        id: String,
    },
    Transition {
        key: String,
        version_id: String,
        class: TargetClass,
    },
}

pub struct Lifecycle {
    store: Store,
    derivatives: Arc<Derivatives>,
    settings: LifecycleSettings,
    clock: Arc<dyn Clock>,
    /// Held for the whole of a run: runs never overlap.
    running: tokio::sync::Mutex<()>,
}

impl Lifecycle {
    pub fn new(
        store: Store,
        derivatives: Arc<Derivatives>,
        settings: LifecycleSettings,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            store,
            derivatives,
            settings,
            clock,
            running: tokio::sync::Mutex::new(()),
        }
    }

    pub fn settings(&self) -> &LifecycleSettings {
        &self.settings
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Starts the schedule: a run `startup_delay_secs` after start-up, then every
    /// `interval_secs` (none when that is 0).
    pub fn spawn_schedule(self: &Arc<Self>) {
        if self.settings.interval_secs == 0 {
            return;
        }
        let me = Arc::clone(self);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(me.settings.startup_delay_secs)).await;
            loop {
                if let Err(e) = me.run(None, None).await {
                    tracing::error!(error = %e, "lifecycle run failed");
                }
                tokio::time::sleep(Duration::from_secs(me.settings.interval_secs)).await;
            }
        });
    }

    /// One run over `bucket` (or every bucket), evaluating at `now_ms` (default: the clock).
    /// Waits while another run is in progress.
    pub async fn run(&self, bucket: Option<&str>, now_ms: Option<i64>) -> Result<RunReport, StoreError> {
        let _running = self.running.lock().await;
        let started = std::time::Instant::now();
        let mut report = RunReport {
            now_ms: now_ms.unwrap_or_else(|| self.clock.now_ms()),
            ..Default::default()
        };
        for (name, rec) in self.store.meta.buckets()? {
            if bucket.is_some_and(|b| b != name) {
                continue;
            }
            let Some(cfg) = rec.lifecycle.as_ref().filter(|c| c.rules.iter().any(|r| r.enabled)) else {
                continue;
            };
            report.buckets += 1;
            self.run_bucket(&name, &rec.owner, rec.versioning_mode(), &cfg.rules, &mut report)
                .await?;
            if report.limited {
                break;
            }
        }
        tracing::info!(
            buckets = report.buckets,
            scanned = report.scanned,
            expired = report.expired,
            delete_markers_removed = report.delete_markers_removed,
            noncurrent_expired = report.noncurrent_expired,
            uploads_aborted = report.uploads_aborted,
            transitions = report.transitions,
            skipped = report.skipped,
            limited = report.limited,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "lifecycle run finished"
        );
        Ok(report)
    }

    async fn run_bucket(
        &self,
        bucket: &str,
        owner: &str,
        mode: VersioningMode,
        rules: &[Rule],
        report: &mut RunReport,
    ) -> Result<(), StoreError> {
        let mut cursor: Bound<Vec<u8>> = Bound::Unbounded;
        loop {
            let (planned, last_key) = self.plan_batch(bucket, rules, cursor, report)?;
            self.apply(bucket, owner, mode, planned, report).await?;
            match last_key {
                Some(k) if !report.limited => cursor = Bound::Excluded(k.into_bytes()),
                _ => break,
            }
        }
        if report.limited {
            return Ok(());
        }
        // Multipart uploads whose key matches a rule with AbortIncompleteMultipartUpload.
        for (id, up) in self.store.meta.uploads_in(bucket)? {
            if !abort_upload_due(rules, &up.key, up.initiated_ms, report.now_ms) {
                continue;
            }
            if report.actions() >= self.settings.max_actions_per_run {
                report.limited = true;
                break;
            }
            if self.store.remove_upload(&id).await?.is_some() {
                report.uploads_aborted += 1;
            } else {
                report.skipped += 1;
            }
        }
        Ok(())
    }

    /// Reads up to `batch_keys` keys after `cursor` with all their versions and plans what
    /// is due. Synchronous: no iterator outlives it. Returns the last key read (`None` at the
    /// end of the bucket).
    fn plan_batch(
        &self,
        bucket: &str,
        rules: &[Rule],
        cursor: Bound<Vec<u8>>,
        report: &mut RunReport,
    ) -> Result<(Vec<Planned>, Option<String>), StoreError> {
        let meta = &self.store.meta;
        let now = report.now_ms;
        let budget = self.settings.max_actions_per_run.saturating_sub(report.actions());
        let mut planned = Vec::new();
        let mut last_key = None;
        let batch: Vec<(String, ObjectRecord)> = meta
            .scan_objects(bucket, cursor)
            .take(self.settings.batch_keys.max(1))
            .collect::<Result<_, _>>()?;
        for (key, current) in batch {
            if planned.len() as u64 >= budget {
                report.limited = true;
                return Ok((planned, None));
            }
            // Noncurrent versions, newest first: each became noncurrent when the next newer
            // version was written.
            let mut since = current.last_modified_ms;
            let mut newer: u64 = 0;
            for v in meta.noncurrent_versions(bucket, &key) {
                let v = v?;
                report.scanned += 1;
                let facts = VersionFacts {
                    key: &key,
                    size: v.size,
                    tags: &v.tags,
                    last_modified_ms: v.last_modified_ms,
                    delete_marker: v.delete_marker,
                    standing: Standing::Noncurrent {
                        since_ms: since,
                        newer_noncurrent: newer,
                    },
                };
                let version_id = v.client_version_id().to_string();
                match evaluate(rules, &facts, now) {
                    Action::ExpireNoncurrent => planned.push(Planned::ExpireNoncurrent {
                        key: key.clone(),
                        version_id,
                        id: v.version_id.clone(),
                    }),
                    // Never back to a warmer class, nor again to the one it is in.
                    Action::TransitionNoncurrent(class) if v.storage_class < class.into() => {
                        planned.push(Planned::Transition {
                            key: key.clone(),
                            version_id,
                            class,
                        })
                    }
                    _ => {}
                }
                since = v.last_modified_ms;
                newer += 1;
            }
            report.scanned += 1;
            let facts = VersionFacts {
                key: &key,
                size: current.size,
                tags: &current.tags,
                last_modified_ms: current.last_modified_ms,
                delete_marker: current.delete_marker,
                standing: Standing::Current {
                    noncurrent_versions: newer,
                },
            };
            match evaluate(rules, &facts, now) {
                Action::ExpireCurrent => planned.push(Planned::ExpireCurrent {
                    key: key.clone(),
                    version_id: current.version_id.clone(),
                }),
                Action::RemoveDeleteMarker => planned.push(Planned::RemoveDeleteMarker {
                    key: key.clone(),
                    version_id: current.client_version_id().to_string(),
                    id: current.version_id.clone(),
                }),
                Action::Transition(class) if current.storage_class < class.into() => {
                    planned.push(Planned::Transition {
                        key: key.clone(),
                        version_id: current.client_version_id().to_string(),
                        class,
                    })
                }
                _ => {}
            }
            last_key = Some(key);
        }
        Ok((planned, last_key))
    }

    /// Applies a batch's actions (each its own conditional transaction), makes them durable,
    /// then counts them and frees what the deleted versions held.
    async fn apply(
        &self,
        bucket: &str,
        owner: &str,
        mode: VersioningMode,
        planned: Vec<Planned>,
        report: &mut RunReport,
    ) -> Result<(), StoreError> {
        if planned.is_empty() {
            return Ok(());
        }
        let meta = &self.store.meta;
        let mut done = RunReport::default();
        // Each applied action, to be made durable together and freed after.
        let mut applied: Vec<Unflushed<(String, Vec<ObjectRecord>)>> = Vec::new();
        for p in planned {
            match p {
                Planned::ExpireCurrent { key, version_id } => {
                    let marker = match mode {
                        VersioningMode::Unversioned => None,
                        VersioningMode::Enabled | VersioningMode::Suspended => {
                            let seq = meta.next_seq()?;
                            Some(ObjectRecord::delete_marker(
                                ObjectRecord::version_id_for(seq),
                                seq,
                                mode == VersioningMode::Enabled,
                                owner,
                                report.now_ms,
                            ))
                        }
                    };
                    match meta.delete_current_if(bucket, &key, mode, marker.as_ref(), Some(&version_id))? {
                        Some(change) => {
                            done.expired += 1;
                            applied.push(change.map(|d| (key, d.change.retired)));
                        }
                        None => done.skipped += 1,
                    }
                }
                Planned::RemoveDeleteMarker { key, version_id, id } => {
                    match meta.delete_version_if(bucket, &key, &version_id, Expect::OnlyVersion(&id))? {
                        Some(d) => {
                            done.delete_markers_removed += 1;
                            applied.push(d.map(|d| (key, vec![d.record])));
                        }
                        None => done.skipped += 1,
                    }
                }
                Planned::ExpireNoncurrent { key, version_id, id } => {
                    match meta.delete_version_if(bucket, &key, &version_id, Expect::Noncurrent(&id))? {
                        Some(d) => {
                            done.noncurrent_expired += 1;
                            applied.push(d.map(|d| (key, vec![d.record])));
                        }
                        None => done.skipped += 1,
                    }
                }
                Planned::Transition { key, version_id, class } => {
                    // Copies the bytes to the cold volume, then flips the record only if the
                    // version is unchanged; durable before it returns true.
                    if self
                        .store
                        .transition_version(bucket, &key, &version_id, class.into())
                        .await?
                    {
                        done.transitions += 1;
                    } else {
                        done.skipped += 1;
                    }
                }
            }
        }
        for (key, retired) in Unflushed::all(applied).durable().await? {
            for old in &retired {
                self.derivatives.retire_version(&self.store, bucket, &key, old);
            }
        }
        report.expired += done.expired;
        report.delete_markers_removed += done.delete_markers_removed;
        report.noncurrent_expired += done.noncurrent_expired;
        report.transitions += done.transitions;
        report.skipped += done.skipped;
        Ok(())
    }
}
