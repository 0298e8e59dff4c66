//! `bench`: measures the visitor path through vnet (client -> use on vnet
//! office -> route -> vnet home -> target) against the same workload sent
//! straight to the target, and optionally through rathole.
//!
//! Everything runs on loopback: the target and the clients in this
//! process, route and the two vnets (and rathole) as child processes that
//! are killed when the run ends, fails, panics or is interrupted.
mod load;
mod procs;
mod report;
mod target;
mod tunnels;

use clap::Parser;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};
use tokio::io::AsyncBufReadExt;

use load::{percentile_us, Direction};
use procs::{raise_nofile, NofileLimit, Role};
use report::{Goal, Machine, Report, DIRECT};
use tunnels::{Binaries, Endpoints, NetPath};

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
    /// Where to write the results as JSON [default: target/bench-results.json
    /// in the workspace].
    #[arg(long, value_name = "PATH")]
    json: Option<PathBuf>,
    /// Use target/release/{route,vnet} as they are, without running
    /// `cargo build --release` first.
    #[arg(long)]
    no_build: bool,
    /// Internal: run only an echo target and print its port.
    #[arg(long, hide = true)]
    serve_echo: bool,
}

/// Counts and durations of one run.
#[derive(Debug, Clone, Serialize)]
struct Plan {
    mode: &'static str,
    throughput_secs: f64,
    /// Each throughput figure is the median of this many runs, the paths
    /// taking turns, so a passing disturbance hits one run, not a path.
    throughput_rounds: usize,
    parallel_streams: usize,
    round_trips: usize,
    round_trip_bytes: usize,
    connections: usize,
    connection_concurrency: usize,
    idle_steps: Vec<usize>,
    idle_open_concurrency: usize,
    hol_secs: f64,
    /// Stalls per path; throughput is measured before and after each.
    hol_rounds: usize,
    hol_pings: usize,
}

impl Plan {
    fn new(quick: bool) -> Self {
        if quick {
            Plan {
                mode: "quick",
                throughput_secs: 1.0,
                throughput_rounds: 1,
                parallel_streams: 8,
                round_trips: 500,
                round_trip_bytes: 64,
                connections: 200,
                connection_concurrency: 32,
                idle_steps: vec![1_000],
                idle_open_concurrency: 64,
                hol_secs: 1.0,
                hol_rounds: 1,
                hol_pings: 200,
            }
        } else {
            Plan {
                mode: "full",
                throughput_secs: 1.5,
                throughput_rounds: 3,
                parallel_streams: 8,
                round_trips: 5_000,
                round_trip_bytes: 64,
                connections: 1_000,
                connection_concurrency: 32,
                idle_steps: vec![1_000, 10_000],
                idle_open_concurrency: 64,
                hol_secs: 1.5,
                hol_rounds: 2,
                hol_pings: 1_000,
            }
        }
    }

    fn dur(&self) -> Duration {
        Duration::from_secs_f64(self.throughput_secs)
    }

    fn max_idle(&self) -> usize {
        self.idle_steps.iter().copied().max().unwrap_or(0)
    }
}

/// What the JSON file holds.
#[derive(Serialize)]
struct Output<'a> {
    tool: &'static str,
    version: &'static str,
    machine: &'a Machine,
    nofile: &'a NofileLimit,
    plan: &'a Plan,
    wall_secs: f64,
    /// Percent of all CPUs busy in the second before measuring.
    background_busy_percent: Option<f64>,
    build_secs: f64,
    install_secs: f64,
    paths: Vec<PathInfo>,
    rows: &'a [report::Row],
    notes: &'a [String],
}

#[derive(Serialize)]
struct PathInfo {
    name: String,
    hops: String,
    processes: Vec<ProcInfo>,
    broken: Option<String>,
}

#[derive(Serialize)]
struct ProcInfo {
    label: String,
    role: Role,
    log: String,
    warning_lines: usize,
    first_warnings: Vec<String>,
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

/// Middle value (mean of the middle two for an even count).
fn median(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    })
}

fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// Brings target/release/{route,vnet} up to date (unless told not to) and
/// returns their paths.
async fn binaries(root: &Path, no_build: bool) -> Result<Binaries, String> {
    let release = root.join("target").join("release");
    let bins = Binaries {
        route: release.join("route"),
        vnet: release.join("vnet"),
    };
    let present = bins.route.is_file() && bins.vnet.is_file();
    if no_build {
        return if present {
            Ok(bins)
        } else {
            Err(format!(
                "{} or {} is missing: run `cargo build --release` first",
                bins.route.display(),
                bins.vnet.display()
            ))
        };
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!("bench: cargo build --release --bins -p route -p vnet");
    let status = tokio::process::Command::new(&cargo)
        .args(["build", "--release", "--bins", "-p", "route", "-p", "vnet"])
        .current_dir(root)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .status();
    let built = match tokio::time::timeout(Duration::from_secs(20 * 60), status).await {
        Ok(Ok(status)) if status.success() => Ok(()),
        Ok(Ok(status)) => Err(format!("cargo build failed ({status})")),
        Ok(Err(err)) => Err(format!("cannot run cargo: {err}")),
        Err(_) => Err("cargo build took over 20 minutes".into()),
    };
    match built {
        Ok(()) => Ok(bins),
        Err(why) if present => {
            eprintln!("bench: warning: {why}; measuring the binaries already in target/release");
            Ok(bins)
        }
        Err(why) => Err(format!(
            "{why}, and target/release has no route and vnet: run `cargo build --release` first"
        )),
    }
}

/// The echo target of the idle phase, in its own process (see
/// [`target::serve_echo_process`]).
struct EchoHelper {
    _child: tokio::process::Child,
    addr: std::net::SocketAddr,
}

async fn start_echo_helper() -> Result<EchoHelper, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find own binary: {e}"))?;
    let mut child = tokio::process::Command::new(exe)
        .arg("--serve-echo")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start the echo helper: {e}"))?;
    let stdout = child.stdout.take().ok_or("echo helper has no stdout")?;
    let mut line = String::new();
    let mut reader = tokio::io::BufReader::new(stdout);
    tokio::time::timeout(Duration::from_secs(10), reader.read_line(&mut line))
        .await
        .map_err(|_| "echo helper did not say its port within 10 s".to_string())?
        .map_err(|e| format!("echo helper: {e}"))?;
    let port: u16 = line
        .trim()
        .parse()
        .map_err(|_| format!("echo helper said {line:?}, not a port"))?;
    Ok(EchoHelper {
        _child: child,
        addr: std::net::SocketAddr::from(([127, 0, 0, 1], port)),
    })
}

const S_IDLE: &str = "memory at rest";
const S_LAT: &str = "latency: 64-byte round trips on one connection";
const S_CONN: &str = "connection rate: connect + 1-byte echo + close";
const S_TPUT: &str = "throughput";
const S_CPU: &str = "CPU per GB forwarded (throughput phase)";
const S_HOL: &str = "head-of-line: another mapped connection's reader stalled";
const S_MEM: &str = "concurrent idle mapped connections (each echoes 1 byte)";

async fn run(args: Args) -> Result<(), String> {
    let started = Instant::now();
    let root = workspace_root();
    let plan = Plan::new(args.quick);
    // Phases check this between steps (counted from the start of the
    // measurements); each step has its own timeouts too.
    let budget = Duration::from_secs(if args.quick { 240 } else { 480 });
    let json_path = args
        .json
        .clone()
        .unwrap_or_else(|| root.join("target").join("bench-results.json"));
    let mut notes: Vec<String> = Vec::new();

    // Each mapped connection costs the route 2 descriptors, and each vnet
    // 2; the bench holds 1 per client connection.
    let needed = 2 * plan.max_idle() as u64 + 256;
    let nofile = raise_nofile(needed.max(65_536));
    if nofile.soft < needed {
        let note = format!(
            "open-files limit is {} (hard {}), but the route and each vnet need about 2 per \
             mapped connection, {} for {} idle connections: expect the last step to fall short \
             near {} connections. Raise the hard limit (as root: `ulimit -Hn 65536` in the shell \
             that starts the bench, or LimitNOFILE= for a service) to measure all of them.",
            nofile.soft,
            nofile.hard,
            needed,
            plan.max_idle(),
            nofile.soft.saturating_sub(64) / 2
        );
        eprintln!("bench: note: {note}");
        notes.push(note);
    }

    let build_started = Instant::now();
    let bins = binaries(&root, args.no_build).await?;
    let build_secs = build_started.elapsed().as_secs_f64();
    let mut install_secs = 0.0;
    let dir = root.join("target").join("bench-run");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;

    // rathole first (a first install takes minutes), so that all the
    // processes start together and their idle memory is taken at once.
    let mut rathole_bin = None;
    if args.rathole {
        let install_started = Instant::now();
        match tunnels::ensure_rathole(&root, &dir).await {
            Ok(bin) => rathole_bin = Some(bin),
            Err(why) => {
                let note = format!("rathole not measured: {why}");
                eprintln!("bench: {note}");
                notes.push(note);
            }
        }
        install_secs = install_started.elapsed().as_secs_f64();
    }
    let measure_started = Instant::now();
    let mut background_busy = None;

    let target = target::start()
        .await
        .map_err(|e| format!("cannot start the target: {e}"))?;
    let helper = start_echo_helper().await?;

    let mut paths: Vec<NetPath> = vec![NetPath {
        name: DIRECT,
        ends: Endpoints::direct(target.addrs, helper.addr),
        procs: Vec::new(),
        hops: "client -> target",
        broken: None,
    }];
    eprintln!("bench: starting route, vnet home and vnet office");
    let vnet = tunnels::start_vnet(&bins, &dir, &target.addrs, helper.addr, "info").await?;
    paths.push(vnet);
    if let Some(bin) = &rathole_bin {
        eprintln!("bench: starting rathole server and client");
        match tunnels::start_rathole(bin, &dir, &target.addrs, helper.addr).await {
            Ok(path) => paths.push(path),
            Err(why) => {
                let note = format!("rathole not measured: {why}");
                eprintln!("bench: {note}");
                notes.push(note);
            }
        }
    }
    let names: Vec<&str> = paths.iter().map(|p| p.name).collect();
    let mut report = Report::new(&names);
    let machine = Machine::probe(&root);
    eprintln!(
        "bench: {} run, paths: {}; logs and configs in {}",
        plan.mode,
        names.join(", "),
        dir.display()
    );

    // Memory right after start, before any load; meanwhile, see whether
    // something else on the machine is using the CPUs.
    let quiet_before = procs::machine_jiffies();
    tokio::time::sleep(Duration::from_secs(1)).await;
    if let (Some(b), Some(a)) = (quiet_before, procs::machine_jiffies()) {
        let busy = 100.0 * (a.0 - b.0) as f64 / (a.1 - b.1).max(1) as f64;
        background_busy = Some(busy);
        if busy > 10.0 {
            let note = format!(
                "other processes kept the CPUs {busy:.0}% busy in the second before measuring \
                 (load average {}): figures will be noisy",
                procs::load_average()
            );
            eprintln!("bench: warning: {note}");
            notes.push(note);
        }
    }
    for path in &paths {
        for (role, rss) in path.rss_by_role() {
            if let Some(kib) = rss {
                report.set(
                    S_IDLE,
                    &format!("idle_rss_{role:?}"),
                    &format!("RSS at idle, {}", role.label()),
                    "KiB",
                    0,
                    Some(Goal::Below(8.0 * 1024.0)),
                    path.name,
                    kib as f64,
                );
            }
        }
    }

    let over = |what: &str, notes: &mut Vec<String>| {
        let gone = measure_started.elapsed() > budget;
        if gone {
            notes.push(format!(
                "skipped {what}: the run's time budget of {budget:?} was used up"
            ));
        }
        gone
    };

    // Latency.
    if !over("latency", &mut notes) {
        eprintln!("bench: latency ({} round trips)", plan.round_trips);
        for path in paths.iter_mut() {
            if !path.check_alive() {
                continue;
            }
            match load::latency(path.ends.echo, plan.round_trips, Duration::from_secs(60)).await {
                Ok(times) => {
                    let p50 = percentile_us(&times, 50.0).unwrap_or(f64::NAN);
                    let p99 = percentile_us(&times, 99.0).unwrap_or(f64::NAN);
                    let label = format!("{} round trips", plan.round_trips);
                    report.set(
                        S_LAT,
                        "rtt_p50",
                        &format!("{label}, p50"),
                        "us",
                        1,
                        Some(Goal::RatioAtMost(3.0)),
                        path.name,
                        p50,
                    );
                    report.set(
                        S_LAT,
                        "rtt_p99",
                        &format!("{label}, p99"),
                        "us",
                        1,
                        Some(Goal::RatioAtMost(5.0)),
                        path.name,
                        p99,
                    );
                }
                Err(e) => notes.push(format!("{}: latency failed: {e}", path.name)),
            }
        }
    }

    // Connection rate, sequential then concurrent.
    for (concurrency, key, goal) in [
        (1, "seq", Some(Goal::RatioAtLeast(0.5))),
        (plan.connection_concurrency, "par", None),
    ] {
        if over("connection rate", &mut notes) {
            break;
        }
        let how = if concurrency == 1 {
            format!("{} sequential", plan.connections)
        } else {
            format!("{}, {} at a time", plan.connections, concurrency)
        };
        eprintln!("bench: connection rate ({how})");
        for path in paths.iter_mut() {
            if !path.check_alive() {
                continue;
            }
            let r = load::conn_rate(
                path.ends.echo,
                plan.connections,
                concurrency,
                Duration::from_secs(90),
            )
            .await;
            if r.failed > 0 || r.ok < plan.connections {
                notes.push(format!(
                    "{}: connection rate ({how}): {} ok, {} failed{}",
                    path.name,
                    r.ok,
                    r.failed,
                    r.first_error
                        .as_deref()
                        .map(|e| format!(", first error: {e}"))
                        .unwrap_or_default()
                ));
            }
            let rate = if r.secs > 0.0 {
                r.ok as f64 / r.secs
            } else {
                f64::NAN
            };
            report.set(
                S_CONN,
                &format!("conn_{key}_rate"),
                &format!("{how}: connections/s"),
                "1/s",
                0,
                goal,
                path.name,
                rate,
            );
            report.set(
                S_CONN,
                &format!("conn_{key}_p50"),
                &format!("{how}: time to first byte, p50"),
                "us",
                0,
                None,
                path.name,
                percentile_us(&r.ttfb, 50.0).unwrap_or(f64::NAN),
            );
            report.set(
                S_CONN,
                &format!("conn_{key}_p99"),
                &format!("{how}: time to first byte, p99"),
                "us",
                0,
                None,
                path.name,
                percentile_us(&r.ttfb, 99.0).unwrap_or(f64::NAN),
            );
            if r.failed > 0 {
                report.set(
                    S_CONN,
                    &format!("conn_{key}_failed"),
                    &format!("{how}: failed"),
                    "",
                    0,
                    Some(Goal::AtMost(0.0)),
                    path.name,
                    r.failed as f64,
                );
            }
            // Let closed connections settle between paths.
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    // Throughput, with the children's CPU time per byte.
    let mut cpu: Vec<Vec<(Role, f64)>> = paths
        .iter()
        .map(|p| p.cpu_by_role().into_iter().map(|(r, _)| (r, 0.0)).collect())
        .collect();
    let mut forwarded = vec![0u64; paths.len()];
    let mut own_cpu = vec![0.0f64; paths.len()];
    // Busy and total jiffies of the whole machine.
    let mut machine_busy = vec![(0u64, 0u64); paths.len()];
    let n = plan.parallel_streams;
    let tests = [
        (
            "up1",
            "upload, 1 stream".to_string(),
            Direction::Up,
            1,
            Some(Goal::RatioAtLeast(0.35)),
        ),
        (
            "down1",
            "download, 1 stream".to_string(),
            Direction::Down,
            1,
            Some(Goal::RatioAtLeast(0.35)),
        ),
        (
            "up_par",
            format!("upload, {n} streams"),
            Direction::Up,
            n,
            None,
        ),
        (
            "down_par",
            format!("download, {n} streams"),
            Direction::Down,
            n,
            None,
        ),
    ];
    for (key, label, dir, streams, goal) in tests {
        if over("throughput", &mut notes) {
            break;
        }
        eprintln!(
            "bench: throughput: {label} ({} x {} s per path, alternating)",
            plan.throughput_rounds, plan.throughput_secs
        );
        let mut samples: Vec<Vec<f64>> = vec![Vec::new(); paths.len()];
        let count = paths.len();
        for i in (0..plan.throughput_rounds).flat_map(|_| 0..count) {
            let path = &mut paths[i];
            if !path.check_alive() {
                continue;
            }
            let addr = match dir {
                Direction::Up => path.ends.sink,
                Direction::Down => path.ends.source,
            };
            let before = path.cpu_by_role();
            let own_before = procs::cpu_secs(std::process::id());
            let machine_before = procs::machine_jiffies();
            let done = load::parallel(dir, addr, streams, plan.dur()).await;
            let after = path.cpu_by_role();
            let own_after = procs::cpu_secs(std::process::id());
            let machine_after = procs::machine_jiffies();
            match done {
                Ok(t) => {
                    if let (Some(b), Some(a)) = (own_before, own_after) {
                        own_cpu[i] += a - b;
                    }
                    if let (Some(b), Some(a)) = (machine_before, machine_after) {
                        machine_busy[i].0 += a.0 - b.0;
                        machine_busy[i].1 += a.1 - b.1;
                    }
                    samples[i].push(t.mb_per_s());
                    forwarded[i] += t.bytes;
                    for ((slot, b), a) in cpu[i].iter_mut().zip(&before).zip(&after) {
                        slot.1 += a.1 - b.1;
                    }
                }
                Err(e) => notes.push(format!("{}: throughput {label} failed: {e}", path.name)),
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        for (path, samples) in paths.iter().zip(samples) {
            if let Some(median) = median(&samples) {
                let key = format!("tput_{key}");
                report.set(S_TPUT, &key, &label, "MB/s", 0, goal, path.name, median);
                report.samples(&key, path.name, samples);
            }
        }
    }
    for (i, path) in paths.iter().enumerate() {
        if forwarded[i] == 0 {
            continue;
        }
        let gb = forwarded[i] as f64 / 1e9;
        report.set(
            S_CPU,
            "cpu_bench",
            "bench process (clients and target)",
            "s/GB",
            2,
            None,
            path.name,
            own_cpu[i] / gb,
        );
        if machine_busy[i].1 > 0 {
            report.set(
                S_CPU,
                "cpu_machine_busy",
                "whole machine busy during the transfers",
                "%",
                0,
                None,
                path.name,
                100.0 * machine_busy[i].0 as f64 / machine_busy[i].1 as f64,
            );
        }
        if path.is_direct() {
            continue;
        }
        let mut total = 0.0;
        for (role, secs) in &cpu[i] {
            total += secs;
            report.set(
                S_CPU,
                &format!("cpu_{role:?}"),
                role.label(),
                "s/GB",
                2,
                None,
                path.name,
                secs / gb,
            );
        }
        report.set(
            S_CPU,
            "cpu_total",
            "all processes of the path",
            "s/GB",
            2,
            None,
            path.name,
            total / gb,
        );
    }

    // Head-of-line isolation.
    if !over("head-of-line", &mut notes) {
        eprintln!(
            "bench: head-of-line isolation ({} stalls, {} s transfers, {} pings)",
            plan.hol_rounds, plan.hol_secs, plan.hol_pings
        );
        for path in paths.iter_mut() {
            if !path.check_alive() {
                continue;
            }
            let dur = Duration::from_secs_f64(plan.hol_secs);
            match load::head_of_line(
                path.ends.echo,
                path.ends.source,
                &target.source_written,
                dur,
                plan.hol_pings,
                plan.hol_rounds,
            )
            .await
            {
                Ok(h) => {
                    let name = path.name;
                    let rates =
                        |t: &[load::Transfer]| t.iter().map(|t| t.mb_per_s()).collect::<Vec<_>>();
                    let (free_runs, stalled_runs) = (rates(&h.free), rates(&h.stalled));
                    let free = median(&free_runs).unwrap_or(f64::NAN);
                    let stalled = median(&stalled_runs).unwrap_or(f64::NAN);
                    report.set(
                        S_HOL,
                        "hol_free",
                        "download, 1 stream, nothing stalled",
                        "MB/s",
                        0,
                        None,
                        name,
                        free,
                    );
                    report.set(
                        S_HOL,
                        "hol_stalled",
                        "download, 1 stream, while stalled",
                        "MB/s",
                        0,
                        None,
                        name,
                        stalled,
                    );
                    report.samples("hol_free", name, free_runs);
                    report.samples("hol_stalled", name, stalled_runs);
                    let kept = if free > 0.0 { stalled / free } else { f64::NAN };
                    report.set(
                        S_HOL,
                        "hol_kept",
                        "throughput kept (stalled / not stalled)",
                        "",
                        2,
                        Some(Goal::AtLeast(0.9)),
                        name,
                        kept,
                    );
                    report.set(
                        S_HOL,
                        "hol_ping_free_p50",
                        "64-byte RTT on an open conn, nothing stalled, p50",
                        "us",
                        1,
                        None,
                        name,
                        percentile_us(&h.ping_free, 50.0).unwrap_or(f64::NAN),
                    );
                    report.set(
                        S_HOL,
                        "hol_ping_p50",
                        "64-byte RTT on an open conn, while stalled, p50",
                        "us",
                        1,
                        None,
                        name,
                        percentile_us(&h.ping_stalled, 50.0).unwrap_or(f64::NAN),
                    );
                    report.set(
                        S_HOL,
                        "hol_ping_p99",
                        "64-byte RTT on an open conn, while stalled, p99",
                        "us",
                        1,
                        None,
                        name,
                        percentile_us(&h.ping_stalled, 99.0).unwrap_or(f64::NAN),
                    );
                    report.set(
                        S_HOL,
                        "hol_buffered",
                        "bytes held for the stalled conn",
                        "MB",
                        1,
                        None,
                        name,
                        h.stall_buffered as f64 / 1e6,
                    );
                }
                Err(e) => notes.push(format!("{}: head-of-line test failed: {e}", path.name)),
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    // Concurrent idle connections (tunnels only: the figures are the
    // tunnel processes' memory). Last, since running out of descriptors
    // may disturb the processes.
    for path in paths.iter_mut().filter(|p| !p.is_direct()) {
        if over(
            &format!("idle connections through {}", path.name),
            &mut notes,
        ) || !path.check_alive()
        {
            continue;
        }
        idle_phase(path, &plan, &mut report, &mut notes).await;
    }

    // Wrap up: dead processes, warnings in logs.
    let mut infos = Vec::new();
    for path in paths.iter_mut() {
        path.check_alive();
        if let Some(why) = &path.broken {
            notes.push(format!(
                "{}: a process ended during the run: {why}",
                path.name
            ));
        }
        let mut processes = Vec::new();
        for p in &path.procs {
            let (count, first) = p.log_problems(5);
            if count > 0 {
                notes.push(format!(
                    "{}: {count} warning/error lines in {} (first: {})",
                    p.label,
                    p.log.display(),
                    first.first().map(String::as_str).unwrap_or("")
                ));
            }
            processes.push(ProcInfo {
                label: p.label.clone(),
                role: p.role,
                log: p.log.display().to_string(),
                warning_lines: count,
                first_warnings: first,
            });
        }
        infos.push(PathInfo {
            name: path.name.to_string(),
            hops: path.hops.to_string(),
            processes,
            broken: path.broken.clone(),
        });
        path.stop().await;
    }
    drop(helper);
    report.finish();

    let wall = started.elapsed().as_secs_f64();
    println!();
    println!("vnet visitor-path benchmark ({} run)", plan.mode);
    println!(
        "date {}   commit {}   {} CPUs: {}   {} MiB RAM   Linux {}",
        machine.date_utc,
        machine.git_commit,
        machine.nproc,
        machine.cpu_model,
        machine.mem_total_mib,
        machine.kernel
    );
    for info in &infos {
        println!("  {:<8} {}", info.name, info.hops);
    }
    let mut roles: Vec<String> = Vec::new();
    for role in [Role::Hub, Role::Serving, Role::Visiting] {
        let who: Vec<&str> = infos
            .iter()
            .flat_map(|i| &i.processes)
            .filter(|p| p.role == role)
            .map(|p| p.label.as_str())
            .collect();
        if !who.is_empty() {
            roles.push(format!("{} = {}", role.label(), who.join(" / ")));
        }
    }
    if !roles.is_empty() {
        println!("  roles: {}", roles.join("; "));
    }
    println!(
        "  ratio = path / direct; for latency and time rows lower is better, for rates and throughput higher is better"
    );
    println!();
    print!("{}", report.table());
    if !notes.is_empty() {
        println!();
        println!("notes:");
        for note in &notes {
            println!("  - {note}");
        }
    }
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
    let json =
        serde_json::to_string_pretty(&output).map_err(|e| format!("cannot encode results: {e}"))?;
    if let Some(parent) = json_path.parent().filter(|p| !p.as_os_str().is_empty()) {
        let _ = std::fs::create_dir_all(parent);
    }
    std::fs::write(&json_path, json + "\n")
        .map_err(|e| format!("cannot write {}: {e}", json_path.display()))?;
    println!();
    println!(
        "wall time {wall:.0} s (building {build_secs:.0} s, installing rathole {install_secs:.0} s, measuring {:.0} s); results written to {}",
        wall - build_secs - install_secs,
        json_path.display()
    );
    Ok(())
}

/// Opens idle mapped connections in steps, measures the path's memory at
/// each, and checks that every connection still echoes.
async fn idle_phase(path: &mut NetPath, plan: &Plan, report: &mut Report, notes: &mut Vec<String>) {
    eprintln!(
        "bench: idle connections through {}: {:?}",
        path.name, plan.idle_steps
    );
    let sum = |p: &NetPath| -> u64 { p.rss_by_role().iter().filter_map(|(_, r)| *r).sum() };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let base_by_role = path.rss_by_role();
    let base = sum(path);
    report.set(
        S_MEM,
        "idle_rss_before",
        "RSS, all processes, before opening any",
        "MiB",
        1,
        None,
        path.name,
        base as f64 / 1024.0,
    );
    let mut held = Vec::new();
    for &step in &plan.idle_steps {
        let opened = load::open_idle(
            path.ends.idle,
            &mut held,
            step,
            plan.idle_open_concurrency,
            32,
            Duration::from_secs(120),
        )
        .await;
        if opened.failed > 0 || held.len() < step {
            notes.push(format!(
                "{}: opening {step} idle connections: {} open after {:.1} s, {} attempts failed{}; errors: {}",
                path.name,
                held.len(),
                opened.secs,
                opened.failed,
                opened.gave_up.map(|g| format!(" ({g})")).unwrap_or_default(),
                opened.errors.join(" | ")
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let alive = path.check_alive();
        let rss_by_role = path.rss_by_role();
        let rss = sum(path);
        let max_fds = path.procs.iter().filter_map(|p| p.fd_count()).max();
        let fds: Vec<String> = path
            .procs
            .iter()
            .map(|p| {
                format!(
                    "{} {}",
                    p.label,
                    p.fd_count().map_or("?".into(), |n| n.to_string())
                )
            })
            .collect();
        let (back, ok, first_err) = load::verify_idle(std::mem::take(&mut held), 256).await;
        held = back;
        if ok < step {
            notes.push(format!(
                "{}: at {step} idle connections: {ok} still echo{}; open descriptors: {}{}",
                path.name,
                first_err
                    .map(|e| format!(" (first failure: {e})"))
                    .unwrap_or_default(),
                fds.join(", "),
                if alive {
                    String::new()
                } else {
                    format!("; {}", path.broken.clone().unwrap_or_default())
                }
            ));
        }
        let label = format!("{step}");
        report.set(
            S_MEM,
            &format!("idle_secs_{step}"),
            &format!("{label}: time to open them (from the step before)"),
            "s",
            1,
            None,
            path.name,
            opened.secs,
        );
        if let Some(n) = max_fds {
            report.set(
                S_MEM,
                &format!("idle_fds_{step}"),
                &format!("{label}: open descriptors, busiest process"),
                "",
                0,
                None,
                path.name,
                n as f64,
            );
        }
        report.set(
            S_MEM,
            &format!("idle_ok_{step}"),
            &format!("{label}: connections echoing"),
            "",
            0,
            Some(Goal::AtLeast(step as f64)),
            path.name,
            ok as f64,
        );
        report.set(
            S_MEM,
            &format!("idle_rss_{step}"),
            &format!("{label}: RSS, all processes"),
            "MiB",
            1,
            None,
            path.name,
            rss as f64 / 1024.0,
        );
        if !held.is_empty() {
            let per = rss.saturating_sub(base) as f64 / held.len() as f64;
            report.set(
                S_MEM,
                &format!("idle_per_{step}"),
                &format!("{label}: KiB per connection, all processes"),
                "KiB",
                1,
                Some(Goal::AtMost(16.0)),
                path.name,
                per,
            );
            for ((role, now), (_, was)) in rss_by_role.iter().zip(&base_by_role) {
                if let (Some(now), Some(was)) = (now, was) {
                    let per = now.saturating_sub(*was) as f64 / held.len() as f64;
                    report.set(
                        S_MEM,
                        &format!("idle_per_{step}_{role:?}"),
                        &format!("{label}: KiB per connection, {}", role.label()),
                        "KiB",
                        1,
                        None,
                        path.name,
                        per,
                    );
                }
            }
        }
        if !alive {
            break;
        }
    }
    let count = held.len();
    drop(held);
    tokio::time::sleep(Duration::from_secs(2)).await;
    if path.check_alive() && count > 0 {
        report.set(
            S_MEM,
            "idle_rss_after",
            "RSS, all processes, 2 s after closing them",
            "MiB",
            1,
            None,
            path.name,
            sum(path) as f64 / 1024.0,
        );
        let fds: usize = path.procs.iter().filter_map(|p| p.fd_count()).sum();
        report.set(
            S_MEM,
            "idle_fds_after",
            "open descriptors, all processes, 2 s after closing them",
            "",
            0,
            None,
            path.name,
            fds as f64,
        );
    }
}
