//! The route's config: only `[route]` matters to it.
//!
//! A route may read the same file as a vnet (the original shares one
//! `config.ini`), so the vnet's own sections are allowed and skipped;
//! anything else is an error, since a typo there would otherwise go unseen.
use proto::ini::{ConfigError, IniFile, RouteBasics};
use std::path::Path;

/// Validated route settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteConfig {
    /// Where to listen, token, heartbeat, TLS on or off.
    pub basics: RouteBasics,
    /// Certificate chain (PEM); with `key`. Without both, a self-signed
    /// certificate is made beside the config.
    pub cert: Option<String>,
    /// Private key (PEM) for `cert`.
    pub key: Option<String>,
    /// Most vnets connected at once, all groups. Default 1000.
    pub max_vnets: u32,
    /// Most serves one vnet may register. Default 100.
    pub max_serves_per_vnet: u32,
}

impl RouteConfig {
    /// Reads a config file.
    ///
    /// # Errors
    /// Unreadable file or any invalid setting, located by file, section
    /// and key.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        Self::from_ini(&IniFile::load(path)?)
    }

    /// Reads config text; `file` names it in errors.
    ///
    /// # Errors
    /// As [`RouteConfig::load`].
    pub fn parse(file: &str, text: &str) -> Result<Self, ConfigError> {
        Self::from_ini(&IniFile::parse(file, text)?)
    }

    fn from_ini(ini: &IniFile) -> Result<Self, ConfigError> {
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
        let path = |key: &str| section.get(key).map(str::to_string);
        let (cert, key) = (path("cert"), path("key"));
        if cert.is_some() != key.is_some() {
            let missing = if cert.is_some() { "key" } else { "cert" };
            return Err(section.error(missing, "cert and key go together"));
        }
        Ok(Self {
            basics,
            cert,
            key,
            max_vnets: section.number("max_vnets", 1..=100_000)?.unwrap_or(1000),
            max_serves_per_vnet: section
                .number("max_serves_per_vnet", 1..=999)?
                .unwrap_or(100),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_route_and_skips_vnet_sections() {
        let cfg = RouteConfig::parse(
            "c",
            "[route]\nip=0.0.0.0\nport=7749\n[vnet]\nname=a\n[serve.ssh]\nport=22\n",
        )
        .unwrap();
        assert_eq!(cfg.basics.addr(), "0.0.0.0:7749");
    }

    #[test]
    fn unknown_section_is_named() {
        let err = RouteConfig::parse("c", "[route]\nip=::\nport=1\n[rout]\n").unwrap_err();
        assert!(
            err.to_string().starts_with("c: [rout]: unknown section"),
            "{err}"
        );
    }
}
