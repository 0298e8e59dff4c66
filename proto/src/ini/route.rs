//! The `[route]` keys both programs read.
use crate::auth::Token;

use super::error::ConfigError;
use super::file::IniFile;
use super::section::Section;

/// Keys `[route]` may hold. One file may serve both programs, so each
/// accepts the other's keys and reads only its own.
pub const ROUTE_KEYS: &[&str] = &[
    "ip",
    "port",
    "token",
    "heartbeat",
    "max_vnets",
    "max_serves_per_vnet",
    "max_connections",
    "tls",
    "cert",
    "key",
    "ca",
    "fingerprint",
    "status",
    "status_token",
];

/// The `[route]` keys both programs read: where the route listens (or is
/// reached), the token, the heartbeat and whether TLS is on. Each program
/// wraps these in its own config type with the keys only it reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteBasics {
    /// IP address or host name.
    pub ip: String,
    /// TCP port; the original's README suggests 7749.
    pub port: u16,
    /// Shared secret both sides prove they know; none by default.
    pub token: Token,
    /// Seconds of silence after which either side counts the control
    /// connection as dead. Default 30.
    pub heartbeat: u32,
    /// TLS 1.3 on every connection; both sides must agree. Default off.
    pub tls: bool,
}

impl RouteBasics {
    /// Reads `[route]`, which must be present with `ip` and `port`, as in
    /// the original (port 0 is accepted so tests can ask for any free
    /// port), and returns the section for the caller's own keys.
    ///
    /// # Errors
    /// Section or key missing, an unknown key, or a bad value.
    pub fn from_ini(ini: &IniFile) -> Result<(Self, Section<'_>), ConfigError> {
        let section = ini.section("route").ok_or_else(|| ConfigError {
            file: ini.file().to_string(),
            section: Some("route".into()),
            key: None,
            message: "section is required but missing".into(),
        })?;
        section.check_keys(ROUTE_KEYS)?;
        let ip = section
            .host("ip")?
            .ok_or_else(|| section.error("ip", "is required but missing"))?
            .to_string();
        let port = section
            .port("port", 0)?
            .ok_or_else(|| section.error("port", "is required but missing"))?;
        let basics = Self {
            ip,
            port,
            token: Token::new(section.get("token").unwrap_or("")),
            heartbeat: section.number("heartbeat", 1..=3600)?.unwrap_or(30),
            tls: section.bool("tls", false)?,
        };
        Ok((basics, section))
    }

    /// `ip:port`, with brackets around an IPv6 address.
    pub fn addr(&self) -> String {
        join_host_port(&self.ip, self.port)
    }
}

/// `host:port`, with brackets around an IPv6 address.
///
/// ```
/// assert_eq!(proto::ini::join_host_port("::1", 7), "[::1]:7");
/// assert_eq!(proto::ini::join_host_port("route.example", 7), "route.example:7");
/// ```
pub fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}
