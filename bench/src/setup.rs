//! Getting ready to measure: the open-files limit, up-to-date binaries,
//! rathole, the echo helper, and the running paths.
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::AsyncBufReadExt;

use crate::plan::Plan;
use crate::procs::{raise_nofile, NofileLimit};
use crate::report::DIRECT;
use crate::target::Target;
use crate::tunnels::{self, Binaries, Endpoints, NetPath};
use crate::vnet_paths::{self, Flavor};

pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// Raises the open-files limit as far as the idle phase needs; notes when
/// the hard limit is too low for that.
pub fn nofile_for(plan: &Plan, notes: &mut Vec<String>) -> NofileLimit {
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
    nofile
}

/// Brings target/release/{route,vnet} up to date (unless told not to) and
/// returns their paths.
pub async fn binaries(root: &Path, no_build: bool) -> Result<Binaries, String> {
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

/// The rathole binary, installed on first use; None (with a note) when it
/// cannot be had, since the run goes on without it.
pub async fn rathole(root: &Path, dir: &Path, notes: &mut Vec<String>) -> Option<PathBuf> {
    match tunnels::ensure_rathole(root, dir).await {
        Ok(bin) => Some(bin),
        Err(why) => {
            let note = format!("rathole not measured: {why}");
            eprintln!("bench: {note}");
            notes.push(note);
            None
        }
    }
}

/// The echo target of the idle phase, in its own process (see
/// [`crate::target::serve_echo_process`]).
pub struct EchoHelper {
    _child: tokio::process::Child,
    addr: std::net::SocketAddr,
}

pub async fn start_echo_helper() -> Result<EchoHelper, String> {
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

/// Direct, vnet, and rathole when `rathole_bin` is given. vnet failing to
/// start fails the run; rathole failing only leaves it out, with a note.
pub async fn start_paths(
    bins: &Binaries,
    dir: &Path,
    target: &Target,
    helper: &EchoHelper,
    rathole_bin: Option<&Path>,
    with_secret: bool,
    notes: &mut Vec<String>,
) -> Result<Vec<NetPath>, String> {
    let mut paths: Vec<NetPath> = vec![NetPath {
        name: DIRECT,
        ends: Endpoints::direct(target.addrs, helper.addr),
        procs: Vec::new(),
        hops: "client -> target",
        broken: None,
    }];
    let ends = (&target.addrs, helper.addr);
    eprintln!("bench: starting route, vnet home and vnet office (direct=off: through the route)");
    paths.push(vnet_paths::start_vnet(bins, dir, ends, "info", Flavor::Relay).await?);
    eprintln!("bench: starting route, vnet home and vnet office (direct=auto: on a direct link)");
    paths.push(vnet_paths::start_vnet(bins, dir, ends, "info", Flavor::Direct).await?);
    if with_secret {
        eprintln!("bench: starting route, vnet home and vnet office with secret= (end to end)");
        paths.push(vnet_paths::start_vnet(bins, dir, ends, "info", Flavor::Sealed).await?);
    }
    if let Some(bin) = rathole_bin {
        eprintln!("bench: starting rathole server and client");
        match tunnels::start_rathole(bin, dir, &target.addrs, helper.addr).await {
            Ok(path) => paths.push(path),
            Err(why) => {
                let note = format!("rathole not measured: {why}");
                eprintln!("bench: {note}");
                notes.push(note);
            }
        }
    }
    Ok(paths)
}
