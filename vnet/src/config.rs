//! The vnet's config file: `[route]`, `[vnet]`, `[serve.NAME]`, `[use.NAME]`,
//! with the original's keys and defaults.
//!
//! Parsed once into validated types; every error names file, section and
//! key. Nothing is started until the whole file is valid.
use proto::auth::Token;
use proto::ini::{ConfigError, IniFile, RouteBasics, Section};
use proto::{ServeId, MAX_SPARES, MAX_TEXT_LEN};
use std::net::IpAddr;
use std::path::Path;

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
    pub tls: Option<crate::tls::ClientTls>,
}

impl RouteLink {
    /// `ip:port`, with brackets around an IPv6 address.
    pub fn addr(&self) -> String {
        proto::ini::join_host_port(&self.ip, self.port)
    }

    fn from_ini(ini: &IniFile) -> Result<Self, ConfigError> {
        let (basics, section) = RouteBasics::from_ini(ini)?;
        // Paths in the config are relative to its own folder.
        let base = Path::new(ini.file()).parent().unwrap_or(Path::new(""));
        let tls = crate::tls::ClientTls::from_section(&basics, &section, base)?;
        Ok(Self {
            ip: basics.ip,
            port: basics.port,
            token: basics.token,
            heartbeat: basics.heartbeat,
            tls,
        })
    }
}

/// The whole validated config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VnetConfig {
    /// Where the route is and how to trust it.
    pub route: RouteLink,
    /// This vnet's own settings.
    pub vnet: VnetSettings,
    /// Local services to register, in file order.
    pub serves: Vec<ServeConfig>,
    /// Remote serves to map onto local ports, in file order.
    pub uses: Vec<UseConfig>,
}

/// `[vnet]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VnetSettings {
    /// Shown to other vnets; need not be unique. Default `vnet`.
    pub name: String,
    /// Only vnets of one group see each other. Default `default`.
    pub group: String,
    /// Interactive shell. Default false.
    pub terminal: bool,
    /// Register active serves at start (honoured with `terminal=true`
    /// only, as in the original). Default true.
    pub startserve: bool,
    /// Open active uses at start (likewise). Default true.
    pub startuse: bool,
    /// Let other vnets ask for unregistered local services. Default false.
    pub allow_unserve: bool,
    /// Allow such grants for non-loopback addresses. Default false.
    pub unserve_remote: bool,
    /// Most live grants at once. Default 1.
    pub unserve_num: u32,
    /// Seconds an unused grant lives. Default 180.
    pub unserve_expire: u64,
    /// Seconds a grant lives after its last connection closes. Default 60.
    pub unserve_linger: u64,
    /// Most concurrent connections per use and per serve; more are
    /// refused with a log line. Default 16384.
    pub max_connections: u32,
    /// Data connections to the route kept open ahead of need, for uses and
    /// for serves each, so a new stream starts without a connect. 0 turns
    /// this off. Default 4.
    pub spares: u32,
}

impl Default for VnetSettings {
    fn default() -> Self {
        Self {
            name: "vnet".into(),
            group: "default".into(),
            terminal: false,
            startserve: true,
            startuse: true,
            allow_unserve: false,
            unserve_remote: false,
            unserve_num: 1,
            unserve_expire: 180,
            unserve_linger: 60,
            max_connections: 16384,
            spares: 4,
        }
    }
}

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
}

const VNET_KEYS: &[&str] = &[
    "name",
    "group",
    "terminal",
    "startserve",
    "startuse",
    "allow_unserve",
    "unserve_remote",
    "unserve_num",
    "unserve_expire",
    "unserve_linger",
    "max_connections",
    "spares",
];
const SERVE_KEYS: &[&str] = &["serveid", "type", "ip", "port", "name", "info", "active"];
const USE_KEYS: &[&str] = &["serveid", "ip", "port", "active"];

impl VnetConfig {
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
    /// As [`VnetConfig::load`].
    pub fn parse(file: &str, text: &str) -> Result<Self, ConfigError> {
        Self::from_ini(&IniFile::parse(file, text)?)
    }

    fn from_ini(ini: &IniFile) -> Result<Self, ConfigError> {
        let route = RouteLink::from_ini(ini)?;
        let mut vnet = VnetSettings::default();
        let mut serves = Vec::new();
        let mut uses = Vec::new();
        for section in ini.sections() {
            let name = section.name();
            if name == "route" {
                continue;
            } else if name == "vnet" {
                vnet = settings(&section)?;
            } else if let Some(key) = name.strip_prefix("serve.") {
                serves.push(serve(&section, key)?);
            } else if let Some(key) = name.strip_prefix("use.") {
                uses.push(use_(&section, key)?);
            } else {
                return Err(ini.error(
                    name,
                    None,
                    "unknown section (known: route, vnet, serve.NAME, use.NAME)",
                ));
            }
        }
        check_serve_ids(ini, &serves)?;
        check_use_ports(ini, &uses)?;
        Ok(Self {
            route,
            vnet,
            serves,
            uses,
        })
    }

    /// Whether a serve registers at start: `terminal=false` ignores
    /// `startserve`, as in the original.
    pub fn starts_serve(&self, serve: &ServeConfig) -> bool {
        serve.active && (!self.vnet.terminal || self.vnet.startserve)
    }

    /// Whether a use opens at start; see [`VnetConfig::starts_serve`].
    pub fn starts_use(&self, use_: &UseConfig) -> bool {
        use_.active && use_.serve_id.is_some() && (!self.vnet.terminal || self.vnet.startuse)
    }
}

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

fn text(section: &Section<'_>, key: &str, default: &str) -> Result<String, ConfigError> {
    let value = section.get(key).unwrap_or(default);
    if value.len() > MAX_TEXT_LEN {
        return Err(section.error(key, format!("longer than {MAX_TEXT_LEN} bytes")));
    }
    proto::text::printable(value).map_err(|problem| section.error(key, problem))?;
    Ok(value.to_string())
}

fn seconds(section: &Section<'_>, key: &str, default: u64) -> Result<u64, ConfigError> {
    Ok(section
        .number(key, 1..=86_400 * 365)?
        .map_or(default, u64::from))
}

fn settings(section: &Section<'_>) -> Result<VnetSettings, ConfigError> {
    section.check_keys(VNET_KEYS)?;
    let d = VnetSettings::default();
    Ok(VnetSettings {
        name: text(section, "name", &d.name)?,
        group: text(section, "group", &d.group)?,
        terminal: section.bool("terminal", d.terminal)?,
        startserve: section.bool("startserve", d.startserve)?,
        startuse: section.bool("startuse", d.startuse)?,
        allow_unserve: section.bool("allow_unserve", d.allow_unserve)?,
        unserve_remote: section.bool("unserve_remote", d.unserve_remote)?,
        unserve_num: section
            .number("unserve_num", 0..=999)?
            .unwrap_or(d.unserve_num),
        unserve_expire: seconds(section, "unserve_expire", d.unserve_expire)?,
        unserve_linger: seconds(section, "unserve_linger", d.unserve_linger)?,
        max_connections: section
            .number("max_connections", 1..=1_000_000)?
            .unwrap_or(d.max_connections),
        spares: section
            // Half the route's cap: a used spare is replaced at once, before
            // the route has let go of it.
            .number("spares", 0..=MAX_SPARES / 2)?
            .unwrap_or(d.spares),
    })
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

fn serve(section: &Section<'_>, key: &str) -> Result<ServeConfig, ConfigError> {
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

fn use_(section: &Section<'_>, key: &str) -> Result<UseConfig, ConfigError> {
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
    })
}

fn check_serve_ids(ini: &IniFile, serves: &[ServeConfig]) -> Result<(), ConfigError> {
    for (i, serve) in serves.iter().enumerate() {
        let Some(id) = serve.serve_id else { continue };
        if let Some(first) = serves[..i].iter().find(|s| s.serve_id == Some(id)) {
            let section = format!("serve.{}", serve.key);
            return Err(ini.error(
                &section,
                Some("serveid"),
                format!("{id} is already used by [serve.{}]", first.key),
            ));
        }
    }
    Ok(())
}

fn check_use_ports(ini: &IniFile, uses: &[UseConfig]) -> Result<(), ConfigError> {
    let overlaps = |a: &UseConfig, b: &UseConfig| {
        a.port == b.port && (a.ip == b.ip || a.ip.is_unspecified() || b.ip.is_unspecified())
    };
    for (i, use_) in uses.iter().enumerate() {
        if matches!(use_.port, None | Some(0)) {
            continue;
        }
        if let Some(first) = uses[..i].iter().find(|u| overlaps(u, use_)) {
            let section = format!("use.{}", use_.key);
            let port = use_.port.expect("checked above");
            return Err(ini.error(
                &section,
                Some("port"),
                format!("port {port} is already used by [use.{}]", first.key),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The original README's full example, comments and all.
    const ORIGINAL: &str = include_str!("../tests/fixtures/original.ini");

    #[test]
    fn the_original_example_parses_as_written() {
        let cfg = VnetConfig::parse("config.ini", ORIGINAL).unwrap();
        assert_eq!(cfg.route.addr(), "127.0.0.1:7749");
        assert_eq!(cfg.vnet.name, "xiao");
        assert_eq!(cfg.vnet.group, "default");
        assert!(cfg.vnet.terminal && !cfg.vnet.startserve && !cfg.vnet.startuse);
        assert_eq!(cfg.vnet.unserve_num, 1);
        let xrdp = &cfg.serves[0];
        assert_eq!(
            (
                xrdp.key.as_str(),
                xrdp.port,
                xrdp.serve_id.map(ServeId::get)
            ),
            ("xrdp", 3389, Some(999))
        );
        assert_eq!(xrdp.info, "Microsoft remote desktop protocol");
        assert!(!xrdp.active);
        let use_ = &cfg.uses[0];
        assert_eq!(
            (use_.port, use_.serve_id.map(ServeId::get), use_.active),
            (Some(33389), Some(999), false)
        );
    }

    #[test]
    fn defaults_are_the_originals() {
        let cfg = VnetConfig::parse(
            "c",
            "[route]\nip=h\nport=7749\n[serve.ssh]\nport=22\n[use.web]\nserveid=7\n",
        )
        .unwrap();
        assert_eq!(cfg.vnet, VnetSettings::default());
        let ssh = &cfg.serves[0];
        assert_eq!(
            (ssh.name.as_str(), ssh.ip.as_str(), ssh.serve_id, ssh.active),
            ("ssh", "127.0.0.1", None, true)
        );
        let web = &cfg.uses[0];
        assert_eq!(
            (web.ip.to_string(), web.port, web.active),
            ("127.0.0.1".to_string(), None, true)
        );
        assert!(cfg.starts_serve(ssh) && cfg.starts_use(web));
    }

    #[test]
    fn use_without_serveid_stays_off() {
        let cfg = VnetConfig::parse(
            "c",
            "[route]\nip=h\nport=1\n[use.a]\nserveid=000\n[use.b]\n",
        )
        .unwrap();
        assert!(cfg.uses.iter().all(|u| !cfg.starts_use(u)));
    }

    #[test]
    fn start_flags_only_count_in_terminal_mode() {
        let text = |terminal| {
            format!(
                "[route]\nip=h\nport=1\n[vnet]\nterminal={terminal}\nstartserve=false\n\
                 [serve.a]\nport=1\n"
            )
        };
        let config_mode = VnetConfig::parse("c", &text(false)).unwrap();
        assert!(config_mode.starts_serve(&config_mode.serves[0]));
        let terminal = VnetConfig::parse("c", &text(true)).unwrap();
        assert!(!terminal.starts_serve(&terminal.serves[0]));
    }

    #[test]
    fn every_error_names_file_section_and_key() {
        let base = "[route]\nip=127.0.0.1\nport=7749\n";
        let cases = [
            (
                "[serve.a]\nip=1.2.3.4\n",
                "c.ini: [serve.a] port: is required but missing",
            ),
            (
                "[serve.a]\nport=0\n",
                "c.ini: [serve.a] port: \"0\" is not a number in 1-65535",
            ),
            (
                "[serve.a]\nport=22\nserveid=1000\n",
                "c.ini: [serve.a] serveid: \"1000\" is not a number in 0-999",
            ),
            (
                "[serve.a]\nport=22\ntype=udp\n",
                "c.ini: [serve.a] type: \"udp\" is not supported; only tcp",
            ),
            (
                "[serve.a]\nport=22\nip=a..b\n",
                "c.ini: [serve.a] ip: \"a..b\" is not an IP address or host name",
            ),
            (
                "[use.a]\nserveid=1\nip=localhost\n",
                "c.ini: [use.a] ip: \"localhost\" is not an IP address to listen on",
            ),
            (
                "[use.a]\nserveid=1\nport=80\n[use.b]\nserveid=2\nport=80\n",
                "c.ini: [use.b] port: port 80 is already used by [use.a]",
            ),
            (
                "[use.a]\nserveid=1\nip=0.0.0.0\nport=80\n[use.b]\nserveid=2\nport=80\n",
                "c.ini: [use.b] port: port 80 is already used by [use.a]",
            ),
            (
                "[serve.a]\nport=1\nserveid=700\n[serve.b]\nport=2\nserveid=700\n",
                "c.ini: [serve.b] serveid: 700 is already used by [serve.a]",
            ),
            (
                "[vnet]\nterminal=maybe\n",
                "c.ini: [vnet] terminal: \"maybe\" is not true or false",
            ),
            (
                "[vnet]\nnmae=x\n",
                "c.ini: [vnet] nmae: unknown key (known here: name, group, \
                terminal, startserve, startuse, allow_unserve, unserve_remote, unserve_num, \
                unserve_expire, unserve_linger, max_connections, spares)",
            ),
            (
                "[vnet]\nunserve_num=-1\n",
                "c.ini: [vnet] unserve_num: \"-1\" is not a number in 0-999",
            ),
            (
                "[serves.a]\nport=1\n",
                "c.ini: [serves.a]: unknown section (known: route, vnet, serve.NAME, use.NAME)",
            ),
        ];
        assert!(!cases.is_empty());
        for (extra, want) in cases {
            let err = VnetConfig::parse("c.ini", &format!("{base}{extra}")).unwrap_err();
            assert_eq!(err.to_string(), want, "for {extra:?}");
        }
        let missing = VnetConfig::parse("c.ini", "[route]\nip=h\n").unwrap_err();
        assert_eq!(
            missing.to_string(),
            "c.ini: [route] port: is required but missing"
        );
    }

    #[test]
    fn shell_pairs_are_checked_like_the_file() {
        let pairs = |list: &[(&str, &str)]| {
            list.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<Vec<_>>()
        };
        let ssh = ServeConfig::from_pairs(
            "serve run",
            "ssh",
            &pairs(&[("port", "22"), ("serveid", "700"), ("info", "a;b")]),
        )
        .unwrap();
        assert_eq!(
            (
                ssh.port,
                ssh.serve_id.map(ServeId::get),
                ssh.info.as_str(),
                ssh.name.as_str()
            ),
            (22, Some(700), "a;b", "ssh")
        );
        let err =
            ServeConfig::from_pairs("serve run", "ssh", &pairs(&[("port", "x")])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "serve run: [serve.ssh] port: \"x\" is not a number in 1-65535"
        );
        let err = UseConfig::from_pairs("use run", "ssh", &pairs(&[("prot", "1")])).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("use run: [use.ssh] prot: unknown key"),
            "{err}"
        );
        let use_ = UseConfig::from_pairs(
            "use run",
            "ssh",
            &pairs(&[("serveid", "700"), ("port", "1122")]),
        )
        .unwrap();
        assert_eq!(
            (use_.port, use_.ip.to_string()),
            (Some(1122), "127.0.0.1".to_string())
        );
    }

    #[test]
    fn different_ips_may_share_a_port() {
        let text = "[route]\nip=h\nport=1\n\
                    [use.a]\nserveid=1\nip=127.0.0.1\nport=80\n\
                    [use.b]\nserveid=2\nip=127.0.0.2\nport=80\n";
        assert!(VnetConfig::parse("c", text).is_ok());
    }
}
