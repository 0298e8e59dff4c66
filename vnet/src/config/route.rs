//! `[route]` as a vnet reads it: where the route is, the token, the
//! heartbeat and how to trust the route's TLS certificate. The keys both
//! programs share are read by `proto::ini`; this adds the vnet's TLS trust.
use proto::auth::Token;
use proto::ini::{ConfigError, IniFile, RouteBasics};
use std::path::Path;

use crate::tls::ClientTls;

/// `[route]` as a vnet reads it: how to reach and trust the route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteLink {
    /// The route's IP address or host name.
    pub ip: String,
    /// Its port.
    pub port: u16,
    /// The shared token; none by default.
    pub token: Token,
    /// Seconds of silence after which the control connection counts as
    /// dead (the smaller of this and the route's is used). Default 30.
    pub heartbeat: u32,
    /// How to check the route's certificate; `None` when `tls` is off.
    pub tls: Option<ClientTls>,
}

impl RouteLink {
    /// `ip:port`, with brackets around an IPv6 address.
    pub fn addr(&self) -> String {
        proto::ini::join_host_port(&self.ip, self.port)
    }

    pub(super) fn from_ini(ini: &IniFile) -> Result<Self, ConfigError> {
        let (basics, section) = RouteBasics::from_ini(ini)?;
        // Paths in the config are relative to its own folder.
        let base = Path::new(ini.file()).parent().unwrap_or(Path::new(""));
        let tls = ClientTls::from_section(&basics, &section, base)?;
        Ok(Self {
            ip: basics.ip,
            port: basics.port,
            token: basics.token,
            heartbeat: basics.heartbeat,
            tls,
        })
    }
}
