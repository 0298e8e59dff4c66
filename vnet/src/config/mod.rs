//! The vnet's config file: `[route]`, `[vnet]`, `[serve.NAME]`, `[use.NAME]`,
//! with the original's keys and defaults.
//!
//! Parsed once into validated types; every error names file, section and
//! key. Nothing is started until the whole file is valid.
mod direct;
mod options;
mod route;
mod sections;

pub use direct::DirectMode;
pub use options::VnetOptions;
pub use route::RouteLink;
pub use sections::{ServeConfig, UseConfig};

use proto::ini::{ConfigError, IniFile};
use std::path::Path;

/// The whole validated config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VnetConfig {
    /// Where the route is and how to trust it.
    pub route: RouteLink,
    /// This vnet's own options (`[vnet]`).
    pub vnet: VnetOptions,
    /// Local services to register, in file order.
    pub serves: Vec<ServeConfig>,
    /// Remote serves to map onto local ports, in file order.
    pub uses: Vec<UseConfig>,
}

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
        let mut vnet = VnetOptions::default();
        let mut serves = Vec::new();
        let mut uses = Vec::new();
        for section in ini.sections() {
            let name = section.name();
            if name == "route" {
                continue;
            } else if name == "vnet" {
                vnet = options::read(&section)?;
            } else if let Some(key) = name.strip_prefix("serve.") {
                serves.push(sections::serve(&section, key)?);
            } else if let Some(key) = name.strip_prefix("use.") {
                uses.push(sections::use_(&section, key)?);
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

    /// The serves as this config starts them (`active` as at start).
    pub fn wanted_serves(&self) -> Vec<ServeConfig> {
        let start = |serve: &ServeConfig| ServeConfig {
            active: self.starts_serve(serve),
            ..serve.clone()
        };
        self.serves.iter().map(start).collect()
    }

    /// The uses as this config starts them (`active` as at start).
    pub fn wanted_uses(&self) -> Vec<UseConfig> {
        let start = |use_: &UseConfig| UseConfig {
            active: self.starts_use(use_),
            ..use_.clone()
        };
        self.uses.iter().map(start).collect()
    }
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
    use proto::ServeId;

    /// The original README's full example, comments and all.
    const ORIGINAL: &str = include_str!("../../tests/fixtures/original.ini");

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
        assert_eq!(cfg.vnet, VnetOptions::default());
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
                unserve_expire, unserve_linger, max_connections, spares, secret, direct, direct_port, threads)",
            ),
            (
                "[vnet]\ndirect=on\n",
                "c.ini: [vnet] direct: \"on\" is not one of auto, off",
            ),
            (
                "[use.a]\nserveid=1\ndirect=yes\n",
                "c.ini: [use.a] direct: \"yes\" is not one of auto, off",
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
