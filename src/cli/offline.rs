//! The commands that open a stopped server's data dir directly: `strata fsck [--repair]`,
//! `strata scrub [--repair]` and `strata kms rotate-master`.

use super::*;

pub(super) fn fsck(args: RepairArgs) -> anyhow::Result<std::process::ExitCode> {
    let store = open_offline(args.data)?;
    let spinner = spinner("fsck: {pos} objects and parts checked {spinner}");
    let report = crate::store::fsck::check(&store, |n| spinner.set_position(n))?;
    spinner.finish_and_clear();
    println!(
        "fsck: {} objects, {} parts checked; {} missing or short blobs; {} unreferenced blobs removed",
        report.objects,
        report.parts,
        report.problems.len(),
        report.orphans_removed
    );
    for p in &report.problems {
        println!("problem: {p}");
    }
    let mut failed = !report.problems.is_empty();
    if args.repair {
        failed |= !run_repair(&store, &Default::default())?;
    } else if report.legacy_blobs > 0 {
        println!(
            "fsck: {} blobs have no block checksums (written by an older version; range reads of them read the whole blob): `strata fsck --repair` adds them",
            report.legacy_blobs
        );
    }
    Ok(if !failed {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    })
}

pub(super) fn open_offline(args: DataArgs) -> anyhow::Result<crate::store::Store> {
    let cfg = load_config(
        args.config.as_deref(),
        args.data.or_else(|| Some(PathBuf::from(DEFAULT_DATA_DIR))),
    )?;
    crate::store::Store::open(&cfg.data_dir, &cfg.store_options()).map_err(|e| {
        anyhow::anyhow!(
            "cannot open {} (is a server running on it?): {e}",
            cfg.data_dir.display()
        )
    })
}

/// The store and keyring of a data dir, opened offline.
fn open_keyring(args: DataArgs) -> anyhow::Result<(crate::store::Store, crate::store::keyring::Keyring)> {
    let cfg = load_config(
        args.config.as_deref(),
        args.data.clone().or_else(|| Some(PathBuf::from(DEFAULT_DATA_DIR))),
    )?;
    let store = open_offline(args)?;
    let ring = crate::store::keyring::Keyring::open(&cfg.master_key_path(), store.meta.clone())?;
    Ok((store, ring))
}

pub(super) fn kms(cmd: KmsCommand) -> anyhow::Result<std::process::ExitCode> {
    match cmd {
        KmsCommand::Create { name, data } => {
            let (_store, ring) = open_keyring(data)?;
            ring.create_kms_key(&name)?;
            println!("created KMS key {name}");
        }
        KmsCommand::List { data } => {
            let (_store, ring) = open_keyring(data)?;
            for name in ring.kms_key_names()? {
                println!("{name}");
            }
        }
    }
    Ok(std::process::ExitCode::SUCCESS)
}

pub(super) fn rotate_master(data: DataArgs) -> anyhow::Result<std::process::ExitCode> {
    let (_store, ring) = open_keyring(data)?;
    let started = std::time::Instant::now();
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template("rotate-master [{bar:40}] {pos}/{len} records ({eta})")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let resealed = ring.rotate_master(|done, total| {
        bar.set_length(total);
        bar.set_position(done);
    })?;
    bar.finish_and_clear();
    println!(
        "rotate-master: {resealed} keys re-sealed under the new master key in {:.1}s; old master keys removed",
        started.elapsed().as_secs_f64()
    );
    Ok(std::process::ExitCode::SUCCESS)
}

/// `--repair`: prints what it did; false when something could not be repaired.
fn run_repair(store: &crate::store::Store, damaged_tables: &std::collections::HashSet<String>) -> anyhow::Result<bool> {
    let spinner = spinner("repair: {pos} blobs rewritten {spinner}");
    let report = crate::store::repair::repair(store, damaged_tables, |n| spinner.set_position(n))?;
    spinner.finish_and_clear();
    for p in &report.problems {
        println!("not repaired: {p}");
    }
    println!(
        "repair: {} blobs given block checksums, {} damaged block tables rewritten; {} not repaired",
        report.upgraded,
        report.tables_rebuilt,
        report.problems.len()
    );
    Ok(report.problems.is_empty())
}

pub(super) fn scrub(args: RepairArgs) -> anyhow::Result<std::process::ExitCode> {
    let store = open_offline(args.data)?;
    let started = std::time::Instant::now();
    let spinner = spinner("scrub: {pos} objects, {msg} verified ({elapsed}) {spinner}");
    let report = crate::store::scrub::scrub(&store, &Default::default(), |n, bytes| {
        spinner.set_position(n);
        spinner.set_message(indicatif::HumanBytes(bytes).to_string());
    })?;
    spinner.finish_and_clear();
    for line in &report.corrupt {
        println!("corrupt: {line}");
    }
    println!(
        "scrub: {} objects, {} bytes verified in {:.1}s; {} corrupt",
        report.objects,
        report.bytes,
        started.elapsed().as_secs_f64(),
        report.corrupt_objects
    );
    let mut repaired_all = true;
    if args.repair {
        repaired_all = run_repair(&store, &report.damaged_tables)?;
    } else if report.legacy_blobs > 0 {
        println!(
            "scrub: {} blobs have no block checksums (written by an older version): `strata scrub --repair` adds them",
            report.legacy_blobs
        );
    }
    // Non-zero while anything was found corrupt (a rewritten table included: scrub again to
    // see a clean run) or could not be repaired.
    Ok(if report.corrupt_objects == 0 && repaired_all {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    })
}
