//! vnet as a path under test: route, vnet home serving the four targets
//! and vnet office using them, through the route (plain or sealed end to
//! end) or on a direct link between the two vnets.
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::procs::{free_ports, wait_for_log, Proc, Role};
use crate::target::TargetAddrs;
use crate::tunnels::{local, targets, wait_ready, Binaries, Endpoints, NetPath};

/// The secret of the bench's end-to-end path.
const BENCH_SECRET: &str = "bench-secret-for-the-e2e-path";

/// Which of vnet's paths a run measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// Through the route (`direct=off`).
    Relay,
    /// Through the route, sealed end to end (`secret=`, `direct=off`).
    Sealed,
    /// On a direct link between the two vnets, once it is up.
    Direct,
}

impl Flavor {
    fn name(self) -> &'static str {
        match self {
            Flavor::Relay => "vnet",
            Flavor::Sealed => "vnet e2e",
            Flavor::Direct => "vnet direct",
        }
    }

    /// Prefix of its files in the run's folder.
    fn prefix(self) -> &'static str {
        match self {
            Flavor::Relay => "",
            Flavor::Sealed => "e2e-",
            Flavor::Direct => "direct-",
        }
    }

    /// Lines of both vnets' `[vnet]`.
    fn vnet_lines(self) -> String {
        match self {
            Flavor::Relay => "direct=off\n".into(),
            // The sealed relay; a direct link would carry its streams.
            Flavor::Sealed => format!("secret={BENCH_SECRET}\ndirect=off\n"),
            Flavor::Direct => "direct=auto\n".into(),
        }
    }

    fn hops(self) -> &'static str {
        match self {
            Flavor::Direct => {
                "client -> vnet office -> vnet home -> target (2 processes, 2 extra TCP hops and a QUIC link)"
            }
            _ => "client -> vnet office -> route -> vnet home -> target (3 processes, 3 extra TCP hops)",
        }
    }
}

/// Starts route, vnet home (serving the four targets as 700-703) and vnet
/// office (using them on four local ports), and waits until all four
/// mappings carry bytes (with [`Flavor::Direct`], until the direct link
/// is up too).
pub async fn start_vnet(
    bins: &Binaries,
    dir: &Path,
    (target, idle): (&TargetAddrs, SocketAddr),
    log_level: &str,
    flavor: Flavor,
) -> Result<NetPath, String> {
    let ports = free_ports(5)?;
    let route_port = ports[0];
    let prefix = flavor.prefix();
    let lines = flavor.vnet_lines();
    let route_section = format!("[route]\nip=127.0.0.1\nport={route_port}\n");
    let mut home = format!("{route_section}\n[vnet]\nname=home\ngroup=bench\n{lines}");
    let mut office = format!("{route_section}\n[vnet]\nname=office\ngroup=bench\n{lines}");
    for (i, (name, addr)) in targets(target, idle).iter().enumerate() {
        let id = 700 + i;
        home.push_str(&format!(
            "\n[serve.{name}]\nserveid={id}\nip={}\nport={}\n",
            addr.ip(),
            addr.port()
        ));
        office.push_str(&format!(
            "\n[use.{name}]\nserveid={id}\nip=127.0.0.1\nport={}\n",
            ports[i + 1]
        ));
    }
    let write = |name: &str, text: &str| -> Result<PathBuf, String> {
        let path = dir.join(format!("{prefix}{name}"));
        std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        Ok(path)
    };
    let route_ini = write("route.ini", &route_section)?;
    let home_ini = write("home.ini", &home)?;
    let office_ini = write("office.ini", &office)?;
    let env = [("RUST_LOG", log_level), ("NO_COLOR", "1")];

    let route = Proc::spawn(
        "route",
        Role::Hub,
        &bins.route,
        &[&route_ini],
        &dir.join(format!("{prefix}route.log")),
        &env,
    )?;
    let mut path = NetPath {
        name: flavor.name(),
        ends: Endpoints {
            echo: local(ports[1]),
            sink: local(ports[2]),
            source: local(ports[3]),
            idle: local(ports[4]),
        },
        procs: vec![route],
        hops: flavor.hops(),
        broken: None,
    };
    if !wait_for_log(
        &path.procs[0].log,
        "route listening",
        Duration::from_secs(10),
    )
    .await
    {
        path.check_alive();
        return Err(format!(
            "route did not report listening within 10 s{}; see {}",
            path.broken.map(|b| format!(" ({b})")).unwrap_or_default(),
            dir.join(format!("{prefix}route.log")).display()
        ));
    }
    for (label, role, ini) in [
        ("vnet home", Role::Serving, &home_ini),
        ("vnet office", Role::Visiting, &office_ini),
    ] {
        let log = dir.join(format!("{prefix}{}.log", label.replace(' ', "-")));
        path.procs
            .push(Proc::spawn(label, role, &bins.vnet, &[ini], &log, &env)?);
    }
    wait_ready(&mut path, Duration::from_secs(30)).await?;
    if flavor == Flavor::Direct {
        let log = dir.join(format!("{prefix}vnet-office.log"));
        if !wait_for_log(&log, "direct link up", Duration::from_secs(15)).await {
            return Err(format!("no direct link within 15 s; see {}", log.display()));
        }
    }
    Ok(path)
}
