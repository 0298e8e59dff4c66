//! A route and vnets started from config text in a temp dir of their own.
use std::net::SocketAddr;
use std::path::PathBuf;

use crate::bins::binaries;
use crate::process::Proc;

/// The token every test route and vnet shares.
pub const TOKEN: &str = "e2e-shared-token-0123456789abcdef";

/// How to start the route.
#[derive(Debug, Clone, Copy, Default)]
pub struct RouteOpts {
    /// `tls=true`: the route makes a self-signed certificate and the vnets
    /// pin its fingerprint.
    pub tls: bool,
}

/// A route on 127.0.0.1 (port picked by the system) and the temp dir that
/// holds its config, certificate and the vnets' configs. Dropping it kills
/// the route and removes the dir; vnets are separate [`Proc`]s, so declare
/// them after the `Net` (they drop first) or drop them yourself.
pub struct Net {
    /// The route process.
    pub route: Proc,
    /// Where the route listens.
    pub route_addr: SocketAddr,
    /// The certificate fingerprint the route logged, with TLS on.
    pub fingerprint: Option<String>,
    tls: bool,
    dir: tempfile::TempDir,
}

impl Net {
    /// Writes `route.ini`, starts the route and waits for its
    /// `route listening addr=...` line.
    pub fn start(opts: RouteOpts) -> Net {
        let dir = tempfile::Builder::new()
            .prefix("vnet-e2e-")
            .tempdir()
            .expect("temp dir");
        let config = dir.path().join("route.ini");
        let text = format!(
            "[route]\nip=127.0.0.1\nport=0\ntoken={TOKEN}\ntls={}\n",
            opts.tls
        );
        std::fs::write(&config, text).expect("writing route.ini");
        let route = Proc::spawn("route", &binaries().route, &config, dir.path());
        let fingerprint = opts.tls.then(|| {
            let line = route.wait_for(&["vnets can pin this fingerprint"]);
            field(&line, "fingerprint").expect("fingerprint= in the route's tls line")
        });
        let line = route.wait_for(&["route listening"]);
        let route_addr = field(&line, "addr")
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no addr= in {line:?}"));
        Net {
            route,
            route_addr,
            fingerprint,
            tls: opts.tls,
            dir,
        }
    }

    /// The temp dir of this test.
    pub fn dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    /// `[route]` for a vnet of this route that dials `addr` (the route's
    /// own address, or a [`crate::relay::Relay`] in front of it).
    pub fn route_section(&self, addr: SocketAddr) -> String {
        let mut text = format!(
            "[route]\nip={}\nport={}\ntoken={TOKEN}\n",
            addr.ip(),
            addr.port()
        );
        if self.tls {
            text.push_str("tls=true\n");
            text.push_str(&format!(
                "fingerprint={}\n",
                self.fingerprint
                    .as_deref()
                    .expect("tls route logs a fingerprint")
            ));
        }
        text
    }

    /// Writes `NAME.ini` (this route, `[vnet] name=NAME`, then `sections`)
    /// and starts a vnet on it without waiting for anything.
    pub fn spawn_vnet(&self, name: &str, sections: &str) -> Proc {
        self.spawn_vnet_via(name, sections, self.route_addr)
    }

    /// [`Net::spawn_vnet`], dialling `via` instead of the route.
    pub fn spawn_vnet_via(&self, name: &str, sections: &str, via: SocketAddr) -> Proc {
        let config = self.dir.path().join(format!("{name}.ini"));
        let text = format!("{}[vnet]\nname={name}\n{sections}", self.route_section(via));
        std::fs::write(&config, text).expect("writing a vnet config");
        Proc::spawn(name, &binaries().vnet, &config, self.dir.path())
    }

    /// A vnet that registers `127.0.0.1:port` as serve `serve_id`; returns
    /// once it has logged the registration.
    pub fn serving_vnet(&self, name: &str, serve_id: u16, port: u16) -> Proc {
        self.serving_vnet_via(name, serve_id, port, self.route_addr)
    }

    /// [`Net::serving_vnet`], dialling `via` instead of the route.
    pub fn serving_vnet_via(&self, name: &str, serve_id: u16, port: u16, via: SocketAddr) -> Proc {
        let vnet = self.spawn_vnet_via(
            name,
            &format!("[serve.svc]\nserveid={serve_id}\nport={port}\n"),
            via,
        );
        vnet.wait_for(&["serve registered", &format!("id={serve_id}")]);
        vnet
    }

    /// A vnet that maps serve `serve_id` onto a port the system picks;
    /// returns it and that port's address once the use is open (the serve
    /// is known to be there).
    pub fn visiting_vnet(&self, name: &str, serve_id: u16) -> (Proc, SocketAddr) {
        self.visiting_vnet_via(name, serve_id, self.route_addr)
    }

    /// [`Net::visiting_vnet`], dialling `via` instead of the route.
    pub fn visiting_vnet_via(
        &self,
        name: &str,
        serve_id: u16,
        via: SocketAddr,
    ) -> (Proc, SocketAddr) {
        let vnet = self.spawn_vnet_via(
            name,
            &format!("[use.svc]\nserveid={serve_id}\nport=0\n"),
            via,
        );
        let line = vnet.wait_for(&["use listening"]);
        let addr = field(&line, "addr")
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no addr= in {line:?}"));
        if !line.contains("state=\"open\"") {
            vnet.wait_for(&["serve available; use open"]);
        }
        (vnet, addr)
    }
}

/// The value of `key=value` in a log line (quotes removed).
pub fn field(line: &str, key: &str) -> Option<String> {
    let needle = format!(" {key}=");
    let start = line.find(&needle)? + needle.len();
    let rest = &line[start..];
    let value = if let Some(quoted) = rest.strip_prefix('"') {
        &quoted[..quoted.find('"')?]
    } else {
        rest.split_whitespace().next()?
    };
    Some(value.to_string())
}
