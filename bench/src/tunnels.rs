//! The paths under test: the target itself, vnet (route + home + office,
//! started by `vnet_paths`) and optionally rathole (server + client), each
//! offering the same four endpoints.
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::procs::{free_ports, Proc, Role};
use crate::target::TargetAddrs;

/// Where a client connects for each kind of target.
#[derive(Debug, Clone, Copy)]
pub struct Endpoints {
    pub echo: SocketAddr,
    pub sink: SocketAddr,
    pub source: SocketAddr,
    /// Echo served by the helper process (idle-connection phase).
    pub idle: SocketAddr,
}

impl Endpoints {
    pub fn direct(target: TargetAddrs, idle: SocketAddr) -> Self {
        Endpoints {
            echo: target.echo,
            sink: target.sink,
            source: target.source,
            idle,
        }
    }
}

/// A running path: its endpoints and the processes in it (none for direct).
pub struct NetPath {
    pub name: &'static str,
    pub ends: Endpoints,
    pub procs: Vec<Proc>,
    pub hops: &'static str,
    /// Set once a process of this path has died; later phases skip it.
    pub broken: Option<String>,
}

impl NetPath {
    pub fn is_direct(&self) -> bool {
        self.procs.is_empty()
    }

    pub fn cpu_by_role(&self) -> Vec<(Role, f64)> {
        self.procs
            .iter()
            .map(|p| (p.role, p.cpu_secs().unwrap_or(f64::NAN)))
            .collect()
    }

    /// Scheduler totals of all this path's processes together.
    pub fn sched_total(&self) -> crate::procs::Sched {
        let mut total = crate::procs::Sched::default();
        for s in self.procs.iter().filter_map(|p| crate::procs::sched(p.pid)) {
            total.cpu_ns += s.cpu_ns;
            total.runs += s.runs;
        }
        total
    }

    pub fn rss_by_role(&self) -> Vec<(Role, Option<u64>)> {
        self.procs.iter().map(|p| (p.role, p.rss_kib())).collect()
    }

    /// Records the first dead process, if any; true while all live.
    pub fn check_alive(&mut self) -> bool {
        if self.broken.is_some() {
            return false;
        }
        for p in &mut self.procs {
            if let Err(why) = p.check_alive() {
                self.broken = Some(why);
                return false;
            }
        }
        true
    }

    /// Stops the processes, the hub last, so the endpoints do not log a
    /// lost hub on the way out.
    pub async fn stop(&mut self) {
        for p in self.procs.iter_mut().rev() {
            p.stop().await;
        }
    }
}

/// The workspace's binaries.
pub struct Binaries {
    pub route: PathBuf,
    pub vnet: PathBuf,
}

pub(crate) fn targets(t: &TargetAddrs, idle: SocketAddr) -> [(&'static str, SocketAddr); 4] {
    [
        ("echo", t.echo),
        ("sink", t.sink),
        ("source", t.source),
        ("idle", idle),
    ]
}

pub(crate) fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Starts a rathole server and client mapping the same four targets.
pub async fn start_rathole(
    bin: &Path,
    dir: &Path,
    target: &TargetAddrs,
    idle: SocketAddr,
) -> Result<NetPath, String> {
    let ports = free_ports(5)?;
    // Not a secret: both ends run here, for the length of the run.
    let token = format!("bench-{}-{}", std::process::id(), ports[0]);
    let mut server = format!(
        "[server]\nbind_addr = \"127.0.0.1:{}\"\ndefault_token = \"{token}\"\n",
        ports[0]
    );
    let mut client = format!(
        "[client]\nremote_addr = \"127.0.0.1:{}\"\ndefault_token = \"{token}\"\nretry_interval = 1\n",
        ports[0]
    );
    for (i, (name, addr)) in targets(target, idle).iter().enumerate() {
        server.push_str(&format!(
            "\n[server.services.{name}]\nbind_addr = \"127.0.0.1:{}\"\n",
            ports[i + 1]
        ));
        client.push_str(&format!(
            "\n[client.services.{name}]\nlocal_addr = \"{addr}\"\n"
        ));
    }
    let server_toml = dir.join("rathole-server.toml");
    let client_toml = dir.join("rathole-client.toml");
    for (p, text) in [(&server_toml, &server), (&client_toml, &client)] {
        std::fs::write(p, text).map_err(|e| format!("cannot write {}: {e}", p.display()))?;
    }
    let env = [("RUST_LOG", "warn"), ("NO_COLOR", "1")];
    let srv = Proc::spawn(
        "rathole server",
        Role::Hub,
        bin,
        &[Path::new("--server"), &server_toml],
        &dir.join("rathole-server.log"),
        &env,
    )?;
    // The client retries every second until the server listens.
    let cli = Proc::spawn(
        "rathole client",
        Role::Serving,
        bin,
        &[Path::new("--client"), &client_toml],
        &dir.join("rathole-client.log"),
        &env,
    )?;
    let mut path = NetPath {
        name: "rathole",
        ends: Endpoints {
            echo: local(ports[1]),
            sink: local(ports[2]),
            source: local(ports[3]),
            idle: local(ports[4]),
        },
        procs: vec![srv, cli],
        hops:
            "client -> rathole server -> rathole client -> target (2 processes, 2 extra TCP hops)",
        broken: None,
    };
    wait_ready(&mut path, Duration::from_secs(30)).await?;
    Ok(path)
}

/// Polls every endpoint until it behaves (bounded).
pub(crate) async fn wait_ready(path: &mut NetPath, within: Duration) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + within;
    let probes: [(&str, SocketAddr, Probe); 4] = [
        ("echo", path.ends.echo, Probe::Echo),
        ("sink", path.ends.sink, Probe::Sink),
        ("source", path.ends.source, Probe::Source),
        ("idle", path.ends.idle, Probe::Echo),
    ];
    for (name, addr, probe) in probes {
        loop {
            if !path.check_alive() {
                return Err(path.broken.clone().unwrap_or_default());
            }
            let last = match tokio::time::timeout(Duration::from_secs(3), probe.run(addr)).await {
                Ok(Ok(())) => break,
                Ok(Err(e)) => e,
                Err(_) => "no answer within 3 s".to_string(),
            };
            if tokio::time::Instant::now() >= deadline {
                return Err(format!(
                    "{}: the {name} mapping ({addr}) did not work within {within:?}: {last}",
                    path.name
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}

#[derive(Clone, Copy)]
enum Probe {
    Echo,
    Sink,
    Source,
}

impl Probe {
    async fn run(self, addr: SocketAddr) -> Result<(), String> {
        let mut s = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        let io = |e: std::io::Error| e.to_string();
        match self {
            Probe::Echo => {
                s.write_all(b"r").await.map_err(io)?;
                let mut b = [0u8; 1];
                s.read_exact(&mut b).await.map_err(io)?;
                (b == *b"r").then_some(()).ok_or("wrong echo".into())
            }
            Probe::Sink => {
                s.write_all(b"s").await.map_err(io)?;
                s.shutdown().await.map_err(io)?;
                let mut n = [0u8; 8];
                s.read_exact(&mut n).await.map_err(io)?;
                (u64::from_be_bytes(n) == 1)
                    .then_some(())
                    .ok_or("wrong sink count".into())
            }
            Probe::Source => {
                let mut b = [0u8; 1024];
                let n = s.read(&mut b).await.map_err(io)?;
                (n > 0).then_some(()).ok_or("source closed".into())
            }
        }
    }
}

/// Finds rathole in `root/target/peers/bin`, installing it there with
/// `cargo install` if missing. `Err` explains why it is not available.
pub async fn ensure_rathole(root: &Path, logdir: &Path) -> Result<PathBuf, String> {
    let peers = root.join("target").join("peers");
    let bin = peers.join("bin").join("rathole");
    if bin.is_file() {
        return Ok(bin);
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let log = logdir.join("rathole-install.log");
    eprintln!(
        "bench: installing rathole with cargo install into target/peers (once; takes a few minutes); log: {}",
        log.display()
    );
    // --locked first, as its authors pinned it. Its pinned `time` crate no
    // longer compiles with current Rust, so fall back to fresh resolution.
    let mut why = Vec::new();
    for locked in [true, false] {
        let out = std::fs::File::create(&log).map_err(|e| format!("cannot write log: {e}"))?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        let mut cmd = tokio::process::Command::new(&cargo);
        cmd.args(["install", "rathole", "--root"])
            .arg(&peers)
            .current_dir(root)
            .stdin(std::process::Stdio::null())
            .stdout(out)
            .stderr(err)
            .kill_on_drop(true);
        if locked {
            cmd.arg("--locked");
        }
        let status = match cmd.spawn() {
            Ok(mut child) => {
                match tokio::time::timeout(Duration::from_secs(20 * 60), child.wait()).await {
                    Ok(Ok(status)) => status,
                    Ok(Err(e)) => return Err(format!("cargo install failed to run: {e}")),
                    Err(_) => return Err("cargo install rathole took over 20 minutes".into()),
                }
            }
            Err(e) => return Err(format!("cannot run cargo ({e})")),
        };
        if status.success() && bin.is_file() {
            if !locked {
                eprintln!(
                    "bench: note: rathole installed without --locked ({})",
                    why.join("; ")
                );
            }
            return Ok(bin);
        }
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let first_error = text
            .lines()
            .find(|l| l.starts_with("error"))
            .unwrap_or("no error line in the log")
            .to_string();
        why.push(format!(
            "`cargo install rathole{}` failed: {first_error}",
            if locked { " --locked" } else { "" }
        ));
        if locked {
            eprintln!("bench: {}; retrying without --locked", why[0]);
        }
    }
    Err(why.join("; "))
}
