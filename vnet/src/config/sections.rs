//! `[serve.NAME]` and `[use.NAME]`: a local service to register and a
//! local port for a remote serve, from the file or from the shell's
//! `key=value` words (checked alike).
use proto::ini::{ConfigError, IniFile, Section};
use proto::{ServeId, MAX_TEXT_LEN};
use std::net::IpAddr;

use super::direct::DirectMode;

/// `[serve.KEY]`: a local TCP service to register.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeConfig {
    /// The part after `serve.`; unique in the file.
    pub key: String,
    /// Display name; defaults to `key`.
    pub name: String,
    /// Wanted id; `None` (missing or `000`) lets the route choose.
    pub serve_id: Option<ServeId>,
    /// Address of the service; default 127.0.0.1. May be a host name.
    pub ip: String,
    /// Port of the service; required.
    pub port: u16,
    /// Free text shown in `show serves`.
    pub info: String,
    /// Registered at start. Default true.
    pub active: bool,
}

/// `[use.KEY]`: a local listener carried to a remote serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UseConfig {
    /// The part after `use.`; unique in the file.
    pub key: String,
    /// The serve to reach; `None` (missing or `000`) leaves the use off.
    pub serve_id: Option<ServeId>,
    /// Local address to listen on; default 127.0.0.1.
    pub ip: IpAddr,
    /// Local port; `None` uses the serve's own port. 0 asks the system for
    /// a free one (handy in tests).
    pub port: Option<u16>,
    /// Opened at start. Default true.
    pub active: bool,
    /// `direct=` for this use alone; none follows `[vnet]`.
    pub direct: Option<DirectMode>,
}

const SERVE_KEYS: &[&str] = &["serveid", "type", "ip", "port", "name", "info", "active"];
const USE_KEYS: &[&str] = &["serveid", "ip", "port", "active", "direct"];

impl ServeConfig {
    /// A serve from `key=value` pairs named like the config keys, for the
    /// shell. Errors read like config errors, with `source` in place of a
    /// file name.
    ///
    /// # Errors
    /// Any invalid or unknown key; `port` is required.
    pub fn from_pairs(
        source: &str,
        key: &str,
        pairs: &[(String, String)],
    ) -> Result<Self, ConfigError> {
        let name = format!("serve.{key}");
        let ini = IniFile::from_pairs(source, &name, pairs);
        serve(&ini.section(&name).expect("just built"), key)
    }
}

impl UseConfig {
    /// A use from `key=value` pairs, for the shell; see
    /// [`ServeConfig::from_pairs`].
    ///
    /// # Errors
    /// Any invalid or unknown key.
    pub fn from_pairs(
        source: &str,
        key: &str,
        pairs: &[(String, String)],
    ) -> Result<Self, ConfigError> {
        let name = format!("use.{key}");
        let ini = IniFile::from_pairs(source, &name, pairs);
        use_(&ini.section(&name).expect("just built"), key)
    }
}

/// A text field: at most `MAX_TEXT_LEN` bytes, printable.
pub(super) fn text(section: &Section<'_>, key: &str, default: &str) -> Result<String, ConfigError> {
    let value = section.get(key).unwrap_or(default);
    if value.len() > MAX_TEXT_LEN {
        return Err(section.error(key, format!("longer than {MAX_TEXT_LEN} bytes")));
    }
    proto::text::printable(value).map_err(|problem| section.error(key, problem))?;
    Ok(value.to_string())
}

fn serve_id(section: &Section<'_>) -> Result<Option<ServeId>, ConfigError> {
    let id = section.number("serveid", 0..=u32::from(ServeId::MAX))?;
    Ok(id.and_then(|id| ServeId::new(u16::try_from(id).expect("range checked"))))
}

fn section_key<'a>(section: &Section<'a>, key: &'a str) -> Result<&'a str, ConfigError> {
    if key.is_empty() {
        return Err(section.error("", "section needs a name after the dot"));
    }
    Ok(key)
}

/// Reads `[serve.KEY]`.
pub(super) fn serve(section: &Section<'_>, key: &str) -> Result<ServeConfig, ConfigError> {
    section.check_keys(SERVE_KEYS)?;
    let key = section_key(section, key)?;
    if let Some(kind) = section.get("type") {
        if !kind.eq_ignore_ascii_case("tcp") {
            return Err(section.error("type", format!("{kind:?} is not supported; only tcp")));
        }
    }
    Ok(ServeConfig {
        key: key.to_string(),
        name: text(section, "name", key)?,
        serve_id: serve_id(section)?,
        ip: section.host("ip")?.unwrap_or("127.0.0.1").to_string(),
        port: section
            .port("port", 1)?
            .ok_or_else(|| section.error("port", "is required but missing"))?,
        info: text(section, "info", "")?,
        active: section.bool("active", true)?,
    })
}

/// Reads `[use.KEY]`.
pub(super) fn use_(section: &Section<'_>, key: &str) -> Result<UseConfig, ConfigError> {
    section.check_keys(USE_KEYS)?;
    let key = section_key(section, key)?;
    let ip = match section.get("ip") {
        None => IpAddr::from([127, 0, 0, 1]),
        Some(text) => text.parse().map_err(|_| {
            section.error("ip", format!("{text:?} is not an IP address to listen on"))
        })?,
    };
    Ok(UseConfig {
        key: key.to_string(),
        serve_id: serve_id(section)?,
        ip,
        port: section.port("port", 0)?,
        active: section.bool("active", true)?,
        direct: DirectMode::read(section)?,
    })
}
