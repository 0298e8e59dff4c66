//! The route's config: one validated [`RouteConfig`], read from `[route]`
//! (TLS included) or built in code with defaults.
//!
//! A route may read the same file as a vnet (the original shares one
//! `config.ini`), so the vnet's own sections are allowed and skipped;
//! anything else is an error, since a typo there would otherwise go unseen.
//! Tunables that have no key (such as [`RouteConfig::handshake_timeout`])
//! live here too, with their defaults, so tests can change them.
use proto::auth::Token;
use proto::ini::{ConfigError, IniFile, RouteBasics};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use crate::admission::Limits;
use crate::tls::{self, CertSource, ServerTls};

/// Everything the route runs with, validated.
#[derive(Debug, Clone)]
pub struct RouteConfig {
    /// Where to listen: an IP address or a host name.
    pub ip: String,
    /// The port to listen on (0: any free one).
    pub port: u16,
    /// Vnets must prove they know this token (empty: no token, and a vnet
    /// that has one is refused).
    pub token: Token,
    /// A vnet silent this long is dropped; vnets ping well within it.
    pub heartbeat: Duration,
    /// Most vnets connected at once, all groups.
    pub max_vnets: usize,
    /// Most serves one vnet may register.
    pub max_serves_per_vnet: usize,
    /// Most streams open at once to one serve, and from one vnet to one
    /// serve: the route holds two sockets each, and does not count on
    /// vnets to keep their own `max_connections`.
    pub max_connections: usize,
    /// How long a new connection may take to send its preamble and hello
    /// (and a vnet its token proof): a peer that never finishes is dropped.
    pub handshake_timeout: Duration,
    /// Bounds on connections that have not proved the token yet.
    pub admission: Limits,
    /// TLS on every connection, when set.
    pub tls: Option<ServerTls>,
    /// The status page, JSON and metrics, when set.
    pub status: Option<StatusConfig>,
}

/// Where the status page is served, and who may read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusConfig {
    /// Where to listen (`status=IP:PORT`).
    pub addr: SocketAddr,
    /// A reader must present it (bearer token, or basic auth password);
    /// without one only a loopback address is allowed.
    pub token: Option<String>,
}

impl Default for RouteConfig {
    /// Loopback on any free port, no token, no TLS, and the defaults of
    /// the config keys.
    fn default() -> Self {
        Self {
            ip: "127.0.0.1".to_string(),
            port: 0,
            token: Token::default(),
            heartbeat: Duration::from_secs(30),
            max_vnets: 1000,
            max_serves_per_vnet: 100,
            max_connections: 16384,
            handshake_timeout: Duration::from_secs(5),
            admission: Limits::default(),
            tls: None,
            status: None,
        }
    }
}

impl RouteConfig {
    /// Reads a config file; with `tls=true`, the certificate is read from
    /// (or made in) the file's folder.
    ///
    /// # Errors
    /// Unreadable file or any invalid setting, located by file, section
    /// and key.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let dir = path.parent().unwrap_or(Path::new("."));
        Self::from_ini(&IniFile::load(path)?, dir)
    }

    /// Reads config text; `file` names it in errors, and relative
    /// certificate paths start in `dir` (where a self-made one is written).
    ///
    /// # Errors
    /// As [`RouteConfig::load`].
    pub fn parse(file: &str, text: &str, dir: &Path) -> Result<Self, ConfigError> {
        Self::from_ini(&IniFile::parse(file, text)?, dir)
    }

    /// `ip:port`, with brackets around an IPv6 address.
    pub fn addr(&self) -> String {
        proto::ini::join_host_port(&self.ip, self.port)
    }

    fn from_ini(ini: &IniFile, dir: &Path) -> Result<Self, ConfigError> {
        for section in ini.sections() {
            let name = section.name();
            let known = name == "route"
                || name == "vnet"
                || name.starts_with("serve.")
                || name.starts_with("use.");
            if !known {
                return Err(ini.error(
                    name,
                    None,
                    "unknown section (known: route, vnet, serve.NAME, use.NAME)",
                ));
            }
        }
        let (basics, section) = RouteBasics::from_ini(ini)?;
        let (cert, key) = (section.get("cert"), section.get("key"));
        let source = match (cert, key) {
            (Some(cert), Some(key)) => CertSource::Files { cert, key },
            (None, None) => CertSource::SelfMade { host: &basics.ip },
            (Some(_), None) => return Err(section.error("key", "cert and key go together")),
            (None, Some(_)) => return Err(section.error("cert", "cert and key go together")),
        };
        let max_vnets = section.number("max_vnets", 1..=100_000)?.unwrap_or(1000);
        let max_serves = section.number("max_serves_per_vnet", 1..=999)?;
        let max_connections = section.number("max_connections", 1..=1_000_000)?;
        let status = status(&section)?;
        // Last: it reads and may write files, so only for a config that is
        // otherwise good.
        let tls = if basics.tls {
            Some(tls::server(source, dir, ini.file())?)
        } else {
            None
        };
        Ok(Self {
            heartbeat: Duration::from_secs(u64::from(basics.heartbeat)),
            max_vnets: max_vnets as usize,
            max_serves_per_vnet: max_serves.unwrap_or(100) as usize,
            max_connections: max_connections.unwrap_or(16384) as usize,
            tls,
            status,
            ip: basics.ip,
            port: basics.port,
            token: basics.token,
            ..Self::default()
        })
    }
}

/// `status=IP:PORT` and `status_token=`: a token is needed for anything
/// but a loopback address, as the page shows every vnet's address.
fn status(section: &proto::ini::Section<'_>) -> Result<Option<StatusConfig>, ConfigError> {
    let token = section.get("status_token").map(str::to_string);
    if token.as_deref() == Some("") {
        return Err(section.error("status_token", "empty; leave the key out for none"));
    }
    let Some(addr) = section.get("status") else {
        if token.is_some() {
            return Err(section.error("status_token", "set without status=IP:PORT"));
        }
        return Ok(None);
    };
    let addr: SocketAddr = addr.parse().map_err(|_| {
        section.error(
            "status",
            format!("{addr:?} is not IP:PORT (such as 127.0.0.1:7750)"),
        )
    })?;
    if token.is_none() && !addr.ip().is_loopback() {
        return Err(section.error(
            "status",
            "not a loopback address: set status_token= so only those with it can read the page",
        ));
    }
    Ok(Some(StatusConfig { addr, token }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<RouteConfig, ConfigError> {
        RouteConfig::parse("c", text, Path::new("."))
    }

    #[test]
    fn reads_route_and_skips_vnet_sections() {
        let cfg = parse("[route]\nip=0.0.0.0\nport=7749\n[vnet]\nname=a\n[serve.ssh]\nport=22\n")
            .unwrap();
        assert_eq!(cfg.addr(), "0.0.0.0:7749");
        assert!(cfg.tls.is_none());
    }

    #[test]
    fn unknown_section_is_named() {
        let err = parse("[route]\nip=::\nport=1\n[rout]\n").unwrap_err();
        assert!(
            err.to_string().starts_with("c: [rout]: unknown section"),
            "{err}"
        );
    }

    #[test]
    fn keys_become_settings_and_the_rest_keeps_its_default() {
        let cfg = parse(
            "[route]\nip=::1\nport=7\ntoken=t\nheartbeat=5\nmax_vnets=3\nmax_serves_per_vnet=2\n",
        )
        .unwrap();
        assert_eq!(cfg.addr(), "[::1]:7");
        assert_eq!(cfg.token, Token::new("t"));
        assert_eq!(cfg.heartbeat, Duration::from_secs(5));
        assert_eq!((cfg.max_vnets, cfg.max_serves_per_vnet), (3, 2));
        let default = RouteConfig::default();
        assert_eq!(cfg.handshake_timeout, default.handshake_timeout);
        let cfg = parse("[route]\nip=h\nport=1\n").unwrap();
        assert_eq!((cfg.max_vnets, cfg.max_serves_per_vnet), (1000, 100));
        assert_eq!(cfg.heartbeat, default.heartbeat);
    }

    #[test]
    fn status_needs_a_token_off_loopback() {
        assert_eq!(parse("[route]\nip=h\nport=1\n").unwrap().status, None);
        let cfg = parse("[route]\nip=h\nport=1\nstatus=127.0.0.1:7750\n").unwrap();
        let status = cfg.status.unwrap();
        assert_eq!((status.addr.port(), status.token), (7750, None));
        let err = parse("[route]\nip=h\nport=1\nstatus=0.0.0.0:7750\n").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("c: [route] status: not a loopback address"),
            "{err}"
        );
        let cfg = parse("[route]\nip=h\nport=1\nstatus=[::]:7750\nstatus_token=s\n").unwrap();
        assert_eq!(cfg.status.unwrap().token.as_deref(), Some("s"));
        let err = parse("[route]\nip=h\nport=1\nstatus=localhost:1\n").unwrap_err();
        assert!(err.to_string().contains("is not IP:PORT"), "{err}");
        let err = parse("[route]\nip=h\nport=1\nstatus_token=s\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "c: [route] status_token: set without status=IP:PORT"
        );
    }

    #[test]
    fn cert_and_key_go_together() {
        let err = parse("[route]\nip=h\nport=1\ncert=c.pem\n").unwrap_err();
        assert_eq!(err.to_string(), "c: [route] key: cert and key go together");
        let err = parse("[route]\nip=h\nport=1\nkey=k.pem\n").unwrap_err();
        assert_eq!(err.to_string(), "c: [route] cert: cert and key go together");
    }
}
