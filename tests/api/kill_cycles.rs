//! The kill -9 harness: cycles of concurrent PUT / overwrite / multipart / DeleteObject /
//! DeleteObjects traffic, SIGKILL at a random moment, restart, and a per-key check that every
//! acknowledged operation survived (unless superseded by a later operation that was at least
//! started), that listings agree with reads and that no object is torn; `strata fsck` is clean
//! at the end. `STRATA_CRASH_CYCLES` sets the number of cycles (default 5); the full run is
//! `STRATA_CRASH_CYCLES=50 cargo test --release --test api kill_cycles -- --nocapture`
//! (conformance/crash_test.sh).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_s3::types::{Delete, ObjectIdentifier};
use aws_sdk_s3::Client;
use md5::{Digest, Md5};
use rand::{Rng, SeedableRng};

use crate::fixtures::*;

const TASKS: usize = 8;
const KEYS_PER_TASK: usize = 3;

/// What an operation leaves at its key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum State {
    Absent,
    Present { md5: String, len: u64 },
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            State::Absent => write!(f, "absent"),
            State::Present { md5, len } => write!(f, "{len} bytes md5 {md5}"),
        }
    }
}

/// The body a write sends, reproducible from the shared buffers (so the MD5s are computed
/// after the kill, not inside the timed window).
#[derive(Clone, Copy, Debug)]
enum Written {
    /// `<8-byte seq><first len-8 bytes of base>`.
    Put { seq: u64, len: usize },
    /// `big_part ++ <8-byte seq><first part2_len-8 bytes of base>`.
    Multipart { seq: u64, part2_len: usize },
}

/// One operation on one key: started (recorded before the request is sent) and, if the
/// server acknowledged it, `acked`. `write` is None for a delete.
#[derive(Clone, Debug)]
struct Op {
    seq: u64,
    key: String,
    kind: &'static str,
    write: Option<Written>,
    acked: bool,
}

/// Shared inputs of the client tasks.
struct Shared {
    bucket: String,
    stop: AtomicBool,
    seq: AtomicU64,
    /// Bodies are `<8-byte seq><slice of this>`, so every write has its own MD5.
    base: Vec<u8>,
    /// Part 1 of every multipart upload, and the MD5 state after it.
    big_part: Vec<u8>,
    big_part_md5: Md5,
}

struct TaskResult {
    ops: Vec<Op>,
    /// Errors returned while the server was supposed to be healthy.
    unexpected: Vec<String>,
}

fn body_for(shared: &Shared, seq: u64, len: usize) -> Vec<u8> {
    let mut body = Vec::with_capacity(len);
    body.extend_from_slice(&seq.to_be_bytes());
    body.extend_from_slice(&shared.base[..len - 8]);
    body
}

/// The state an op leaves: its body's MD5 and length, or absent.
fn effect_of(shared: &Shared, op: &Op) -> State {
    match op.write {
        None => State::Absent,
        Some(Written::Put { seq, len }) => present(&body_for(shared, seq, len)),
        Some(Written::Multipart { seq, part2_len }) => {
            let part2 = body_for(shared, seq, part2_len);
            let mut md5 = shared.big_part_md5.clone();
            md5.update(&part2);
            State::Present {
                md5: hex::encode(md5.finalize()),
                len: (shared.big_part.len() + part2.len()) as u64,
            }
        }
    }
}

fn present(body: &[u8]) -> State {
    State::Present {
        md5: md5_hex(body),
        len: body.len() as u64,
    }
}

async fn run_task(client: Client, shared: Arc<Shared>, keys: Vec<String>, seed: u64) -> TaskResult {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut ops: Vec<Op> = Vec::new();
    let mut unexpected = Vec::new();
    let bucket = shared.bucket.as_str();
    // Stop when asked or after the first failure (the server is gone).
    while !shared.stop.load(Ordering::SeqCst) {
        let key = keys[rng.gen_range(0..keys.len())].clone();
        let seq = shared.seq.fetch_add(1, Ordering::SeqCst);
        let roll = rng.gen_range(0..100);
        let first = ops.len();
        let result: Result<(), String> = if roll < 35 || (55..65).contains(&roll) {
            // PUT: small (inline or a small blob) or 1–3 MiB.
            let (kind, len) = if roll < 35 {
                ("put-small", rng.gen_range(1024..=8 * 1024))
            } else {
                ("put-large", rng.gen_range(MIB..=3 * MIB))
            };
            let body = body_for(&shared, seq, len);
            ops.push(Op {
                seq,
                key: key.clone(),
                kind,
                write: Some(Written::Put { seq, len }),
                acked: false,
            });
            client
                .put_object()
                .bucket(bucket)
                .key(&key)
                .body(body.into())
                .send()
                .await
                .map(|_| ())
                .map_err(|e| describe(&e))
        } else if roll < 45 {
            // Multipart: 5 MiB + a small last part, then complete.
            let part2_len = rng.gen_range(1024..=64 * 1024);
            let part2 = body_for(&shared, seq, part2_len);
            ops.push(Op {
                seq,
                key: key.clone(),
                kind: "multipart",
                write: Some(Written::Multipart { seq, part2_len }),
                acked: false,
            });
            multipart(&client, bucket, &key, &shared.big_part, &part2).await
        } else if roll < 55 || (65..85).contains(&roll) {
            ops.push(Op {
                seq,
                key: key.clone(),
                kind: "delete",
                write: None,
                acked: false,
            });
            client
                .delete_object()
                .bucket(bucket)
                .key(&key)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| describe(&e))
        } else {
            // DeleteObjects of 1–3 of this task's keys.
            let n = rng.gen_range(1..=KEYS_PER_TASK);
            let mut chosen: Vec<String> = keys.clone();
            while chosen.len() > n {
                chosen.remove(rng.gen_range(0..chosen.len()));
            }
            for k in &chosen {
                ops.push(Op {
                    seq,
                    key: k.clone(),
                    kind: "delete-objects",
                    write: None,
                    acked: false,
                });
            }
            let delete = Delete::builder()
                .set_objects(Some(
                    chosen
                        .iter()
                        .map(|k| ObjectIdentifier::builder().key(k).build().unwrap())
                        .collect(),
                ))
                .build()
                .unwrap();
            match client.delete_objects().bucket(bucket).delete(delete).send().await {
                Ok(out) => {
                    // Only the keys the server reports deleted are acknowledged.
                    let deleted: HashSet<&str> = out.deleted().iter().filter_map(|d| d.key()).collect();
                    for op in &mut ops[first..] {
                        op.acked = deleted.contains(op.key.as_str());
                    }
                    if out.errors().is_empty() {
                        Ok(())
                    } else {
                        Err(format!("DeleteObjects per-key errors: {:?}", out.errors()))
                    }
                }
                Err(e) => Err(describe(&e)),
            }
        };
        match result {
            Ok(()) => {
                for op in &mut ops[first..] {
                    op.acked = true;
                }
            }
            Err(e) => {
                if !shared.stop.load(Ordering::SeqCst) {
                    unexpected.push(format!("{} {key}: {e}", ops[first].kind));
                }
                break;
            }
        }
    }
    TaskResult { ops, unexpected }
}

async fn multipart(client: &Client, bucket: &str, key: &str, part1: &[u8], part2: &[u8]) -> Result<(), String> {
    let created = client
        .create_multipart_upload()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| describe(&e))?;
    let id = created.upload_id().unwrap_or_default().to_string();
    let mut etags = Vec::new();
    for (n, body) in [(1, part1), (2, part2)] {
        let out = client
            .upload_part()
            .bucket(bucket)
            .key(key)
            .upload_id(&id)
            .part_number(n)
            .body(body.to_vec().into())
            .send()
            .await
            .map_err(|e| describe(&e))?;
        etags.push((n, out.e_tag().unwrap_or_default().to_string()));
    }
    client
        .complete_multipart_upload()
        .bucket(bucket)
        .key(key)
        .upload_id(&id)
        .multipart_upload(crate::multipart::completed(&etags))
        .send()
        .await
        .map_err(|e| describe(&e))?;
    Ok(())
}

/// What GET returns for a key after the restart (whole body or NoSuchKey; anything else is a
/// violation).
async fn observe(client: &Client, bucket: &str, key: &str) -> Result<State, String> {
    match client.get_object().bucket(bucket).key(key).send().await {
        Ok(out) => {
            let declared = out.content_length();
            let body = out
                .body
                .collect()
                .await
                .map_err(|e| format!("GET {key}: body cut off: {e}"))?
                .into_bytes();
            if declared != Some(body.len() as i64) {
                return Err(format!(
                    "GET {key}: Content-Length {declared:?} but {} bytes",
                    body.len()
                ));
            }
            Ok(present(&body))
        }
        Err(e) => {
            let info = err_info(&e);
            if info.status == 404 && info.code.as_deref() == Some("NoSuchKey") {
                Ok(State::Absent)
            } else {
                Err(format!("GET {key}: {}", describe(&e)))
            }
        }
    }
}

#[derive(Default)]
struct Totals {
    cycles: u64,
    acknowledged: u64,
    verified: u64,
    lost: u64,
    in_flight: u64,
    in_flight_applied: u64,
    by_kind: BTreeMap<&'static str, u64>,
    violations: Vec<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_cycles() {
    let cycles: u64 = std::env::var("STRATA_CRASH_CYCLES")
        .ok()
        .map(|v| v.parse().expect("STRATA_CRASH_CYCLES must be a number"))
        .unwrap_or(5);
    let master_seed: u64 = std::env::var("STRATA_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!("kill_cycles: {cycles} cycles, seed {master_seed} (STRATA_CRASH_SEED to repeat)");
    let started = Instant::now();
    let mut rng = rand::rngs::StdRng::seed_from_u64(master_seed);

    let mut server = TestServer::start();
    let bucket = new_bucket(&server.client(), "killcycles").await;
    let big_part = random_bytes(5 * MIB, master_seed ^ 1);
    let shared_base = random_bytes(3 * MIB, master_seed ^ 2);
    let big_part_md5 = Md5::new_with_prefix(&big_part);
    let keys_of = |t: usize| -> Vec<String> { (0..KEYS_PER_TASK).map(|i| format!("t{t}/k{i}")).collect() };
    let all_keys: BTreeSet<String> = (0..TASKS).flat_map(keys_of).collect();

    // Known state of every key at the start of a cycle, and every body ever written to it.
    let mut baseline: BTreeMap<String, State> = all_keys.iter().map(|k| (k.clone(), State::Absent)).collect();
    let mut ever: BTreeMap<String, HashSet<State>> = all_keys
        .iter()
        .map(|k| (k.clone(), HashSet::from([State::Absent])))
        .collect();
    let mut totals = Totals::default();
    let mut next_seq = 0u64;

    for cycle in 0..cycles {
        let shared = Arc::new(Shared {
            bucket: bucket.clone(),
            stop: AtomicBool::new(false),
            seq: AtomicU64::new(next_seq),
            base: shared_base.clone(),
            big_part: big_part.clone(),
            big_part_md5: big_part_md5.clone(),
        });
        let client = server.client();
        let handles: Vec<_> = (0..TASKS)
            .map(|t| tokio::spawn(run_task(client.clone(), shared.clone(), keys_of(t), rng.gen::<u64>())))
            .collect();
        let run_for = Duration::from_millis(rng.gen_range(300..=1500));
        tokio::time::sleep(run_for).await;
        shared.stop.store(true, Ordering::SeqCst);
        server.kill(); // SIGKILL, mid-traffic

        let mut ops_by_key: BTreeMap<String, Vec<Op>> = BTreeMap::new();
        for h in handles {
            let result = tokio::time::timeout(Duration::from_secs(120), h)
                .await
                .expect("a client task did not finish after the kill")
                .expect("client task panicked");
            for e in &result.unexpected {
                totals
                    .violations
                    .push(format!("cycle {cycle}: error while the server was up: {e}"));
            }
            for op in result.ops {
                ops_by_key.entry(op.key.clone()).or_default().push(op);
            }
        }
        next_seq = shared.seq.load(Ordering::SeqCst);

        server.start_again();
        let client = server.client();
        let mut readable: BTreeMap<String, u64> = BTreeMap::new();
        for key in &all_keys {
            let ops = ops_by_key.remove(key).unwrap_or_default();
            assert!(ops.windows(2).all(|w| w[0].seq < w[1].seq), "ops on {key} out of order");
            let effects: Vec<State> = ops.iter().map(|op| effect_of(&shared, op)).collect();
            ever.get_mut(key).unwrap().extend(effects.iter().cloned());
            let acked = ops.iter().filter(|o| o.acked).count() as u64;
            totals.acknowledged += acked;
            for op in ops.iter().filter(|o| o.acked) {
                *totals.by_kind.entry(op.kind).or_default() += 1;
            }
            // Allowed: the last acknowledged op's state (or the cycle's starting state), or
            // that of any op started after it.
            let last_acked = ops.iter().rposition(|o| o.acked);
            let (mut allowed, later): (Vec<State>, &[State]) = match last_acked {
                Some(i) => (vec![effects[i].clone()], &effects[i + 1..]),
                None => (vec![baseline[key].clone()], &effects[..]),
            };
            allowed.extend(later.iter().cloned());
            totals.in_flight += later.len() as u64;

            let observed = match observe(&client, &bucket, key).await {
                Ok(s) => s,
                Err(e) => {
                    totals.violations.push(format!("cycle {cycle}: {e}"));
                    totals.lost += acked.min(1);
                    continue;
                }
            };
            if !ever[key].contains(&observed) {
                totals.violations.push(format!(
                    "cycle {cycle}: {key} is torn: {observed} was never written to it"
                ));
            }
            if allowed.contains(&observed) {
                totals.verified += acked;
                if later.contains(&observed) && allowed[0] != observed {
                    totals.in_flight_applied += 1;
                }
            } else {
                let last = last_acked.map(|i| (&ops[i], &effects[i]));
                totals.lost += acked.min(1);
                totals.verified += acked.saturating_sub(1);
                totals.violations.push(format!(
                    "cycle {cycle}: {key} holds {observed}; last acknowledged: {}; allowed: [{}]",
                    last.map(|(o, e)| format!("#{} {} → {e}", o.seq, o.kind))
                        .unwrap_or_else(|| format!("none (cycle started with {})", baseline[key])),
                    allowed.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(", ")
                ));
            }
            if let State::Present { len, .. } = &observed {
                readable.insert(key.clone(), *len);
            }
            baseline.insert(key.clone(), observed);
        }

        // The listing agrees with the reads: the same keys, the same sizes.
        let mut listed: BTreeMap<String, u64> = BTreeMap::new();
        let mut pages = client.list_objects_v2().bucket(&bucket).into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = ok(page, "ListObjectsV2 after restart");
            for o in page.contents() {
                listed.insert(o.key().unwrap_or_default().to_string(), o.size().unwrap_or(-1) as u64);
            }
        }
        if listed != readable {
            totals.violations.push(format!(
                "cycle {cycle}: listing {listed:?} differs from readable keys {readable:?}"
            ));
        }
        totals.cycles += 1;
        eprintln!(
            "cycle {cycle}: ran {run_for:?}, {} keys readable, acknowledged so far {}, violations {}",
            readable.len(),
            totals.acknowledged,
            totals.violations.len()
        );
    }

    let status = server.terminate();
    assert!(status.success(), "SIGTERM'd server exited with {status}");
    let data = server.data_dir().to_path_buf();
    // The first run may remove blobs whose deferred unlink was cut short by SIGTERM; a second
    // run must find nothing at all.
    let first = assert_fsck_clean(&data);
    let second = assert_fsck_clean(&data);
    assert_eq!(second.orphans_removed, 0, "second fsck still removed blobs: {second:?}");
    let tmp = files_under(&data.join("tmp"));
    assert!(tmp.is_empty(), "tmp/ after shutdown: {tmp:?}");

    eprintln!(
        "crash cycles: {}, operations acknowledged: {}, verified: {}, lost: {}",
        totals.cycles, totals.acknowledged, totals.verified, totals.lost
    );
    eprintln!(
        "  acknowledged by kind: {:?}; in flight at the kill: {} (applied: {}); fsck: {:?} then {:?}; {:.1}s",
        totals.by_kind,
        totals.in_flight,
        totals.in_flight_applied,
        first,
        second,
        started.elapsed().as_secs_f64()
    );
    assert!(
        totals.acknowledged > 0,
        "no operation was acknowledged: the harness tested nothing"
    );
    assert!(
        totals.violations.is_empty(),
        "{} violations (seed {master_seed}):\n{}",
        totals.violations.len(),
        totals.violations.join("\n")
    );
    assert_eq!(totals.lost, 0, "acknowledged operations lost");
}
