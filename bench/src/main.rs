//! `bench`: measures the visitor path through vnet (client -> use on vnet
//! office -> route -> vnet home -> target) against the same workload sent
//! straight to the target, and optionally through rathole.
//!
//! Everything runs on loopback: the target and the clients in this
//! process, route and the two vnets (and rathole) as child processes that
//! are killed when the run ends, fails, panics or is interrupted.
//!
//! `run` sets up, runs the phases in `phases` one after another under the
//! run's time budget, and hands the results to `summary`.
mod load;
mod phases;
mod plan;
mod procs;
mod report;
mod setup;
mod summary;
mod target;
mod tunnels;
mod vnet_paths;

use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use phases::Budget;
use plan::Plan;
use report::{Machine, Report};
use summary::Output;

/// Benchmark of the vnet visitor path against a direct connection.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Smaller counts for a fast smoke run (well under a minute).
    #[arg(long)]
    quick: bool,
    /// Also measure rathole mapping the same target (installed with
    /// `cargo install` into target/peers on first use).
    #[arg(long)]
    rathole: bool,
    /// Also measure vnet with `secret=` (streams sealed end to end), a
    /// second route and pair of vnets beside the plain one.
    #[arg(long)]
    secret: bool,
    /// Where to write the results as JSON [default: target/bench-results.json
    /// in the workspace].
    #[arg(long, value_name = "PATH")]
    json: Option<PathBuf>,
    /// Use target/release/{route,vnet} as they are, without running
    /// `cargo build --release` first.
    #[arg(long)]
    no_build: bool,
    /// Measure only these phases, comma-separated (memory at rest is
    /// always taken) [default: all of them].
    #[arg(long, value_enum, value_delimiter = ',', value_name = "PHASES")]
    only: Vec<Phase>,
    /// Internal: run only an echo target and print its port.
    #[arg(long, hide = true)]
    serve_echo: bool,
}

/// The phases a run can be limited to (`--only`).
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Latency,
    Connections,
    Throughput,
    HeadOfLine,
    Idle,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.serve_echo {
        return target::serve_echo_process();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("bench: cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(async {
        tokio::select! {
            done = run(args) => match done {
                Ok(()) => 0,
                Err(err) => {
                    eprintln!("bench: {err}");
                    1
                }
            },
            _ = tokio::signal::ctrl_c() => {
                // Leaving this block drops every child: kill_on_drop ends them.
                eprintln!("bench: interrupted; stopping route, vnets and helpers");
                130
            }
        }
    });
    runtime.shutdown_timeout(Duration::from_secs(2));
    ExitCode::from(code)
}

async fn run(args: Args) -> Result<(), String> {
    let started = Instant::now();
    let root = setup::workspace_root();
    let plan = Plan::new(args.quick);
    let json_path = args
        .json
        .clone()
        .unwrap_or_else(|| root.join("target").join("bench-results.json"));
    let mut notes: Vec<String> = Vec::new();
    let nofile = setup::nofile_for(&plan, &mut notes);

    let build_started = Instant::now();
    let bins = setup::binaries(&root, args.no_build).await?;
    let build_secs = build_started.elapsed().as_secs_f64();
    let dir = root.join("target").join("bench-run");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;

    // rathole first (a first install takes minutes), so that all the
    // processes start together and their idle memory is taken at once.
    let mut install_secs = 0.0;
    let mut rathole_bin = None;
    if args.rathole {
        let install_started = Instant::now();
        rathole_bin = setup::rathole(&root, &dir, &mut notes).await;
        install_secs = install_started.elapsed().as_secs_f64();
    }

    // The budget counts from here: building and installing are not part
    // of measuring.
    let budget = Budget::start(args.quick);
    let target = target::start()
        .await
        .map_err(|e| format!("cannot start the target: {e}"))?;
    let helper = setup::start_echo_helper().await?;
    let mut paths = setup::start_paths(
        &bins,
        &dir,
        &target,
        &helper,
        rathole_bin.as_deref(),
        args.secret,
        &mut notes,
    )
    .await?;
    let names: Vec<&str> = paths.iter().map(|p| p.name).collect();
    let mut report = Report::new(&names);
    let machine = Machine::probe(&root);
    eprintln!(
        "bench: {} run, paths: {}; logs and configs in {}",
        plan.mode,
        names.join(", "),
        dir.display()
    );

    // The phases, in this order: the idle-connection phase last, since
    // running out of descriptors may disturb the processes.
    let wanted = |phase| args.only.is_empty() || args.only.contains(&phase);
    let background_busy = phases::at_rest::run(&paths, &mut report, &mut notes).await;
    if wanted(Phase::Latency) {
        phases::latency::run(&mut paths, &plan, &budget, &mut report, &mut notes).await;
    }
    if wanted(Phase::Connections) {
        phases::connections::run(&mut paths, &plan, &budget, &mut report, &mut notes).await;
    }
    if wanted(Phase::Throughput) {
        phases::throughput::run(&mut paths, &plan, &budget, &mut report, &mut notes).await;
    }
    if wanted(Phase::HeadOfLine) {
        let written = &target.source_written;
        phases::head_of_line::run(&mut paths, &plan, &budget, written, &mut report, &mut notes)
            .await;
    }
    if wanted(Phase::Idle) {
        phases::idle_conns::run(&mut paths, &plan, &budget, &mut report, &mut notes).await;
    }

    let infos = summary::wrap_up(&mut paths, &mut notes).await;
    drop(helper);
    report.finish();
    let wall = started.elapsed().as_secs_f64();
    summary::print_table(&plan, &machine, &infos, &report, &notes);
    let output = Output {
        tool: "vnet bench",
        version: env!("CARGO_PKG_VERSION"),
        machine: &machine,
        nofile: &nofile,
        plan: &plan,
        wall_secs: wall,
        background_busy_percent: background_busy,
        build_secs,
        install_secs,
        paths: infos,
        rows: &report.rows,
        notes: &notes,
    };
    summary::write_json(&json_path, &output)?;
    println!();
    println!(
        "wall time {wall:.0} s (building {build_secs:.0} s, installing rathole {install_secs:.0} s, measuring {:.0} s); results written to {}",
        wall - build_secs - install_secs,
        json_path.display()
    );
    Ok(())
}
