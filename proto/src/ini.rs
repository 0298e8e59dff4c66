//! Reading the original's ini format, shared by route and vnet.
//!
//! rust-ini (with `inline-comment`) does the parsing; this module adds what
//! users need from errors: every one names the file, the section and the
//! key. Unknown sections and keys, and repeated ones, are errors rather
//! than silently ignored. An empty value counts as not written, as in the
//! original.
use crate::auth::Token;
use ini::{Ini, Properties};
use std::fmt;
use std::ops::RangeInclusive;
use std::path::Path;

/// A config problem, located as precisely as it can be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file (as the user named it).
    pub file: String,
    /// Section name without brackets, if the problem is inside one.
    pub section: Option<String>,
    /// Key, if the problem is one key's.
    pub key: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl ConfigError {
    /// A problem with `key` in `[section]` of `file`, for checks made after
    /// parsing (files a key names, for example).
    pub fn at(file: &str, section: &str, key: &str, message: impl Into<String>) -> Self {
        Self {
            file: file.to_string(),
            section: Some(section.to_string()),
            key: Some(key.to_string()),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(section) = &self.section {
            write!(f, ": [{section}]")?;
        }
        if let Some(key) = &self.key {
            write!(f, " {key}")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

/// A parsed ini file that remembers its name for error messages.
pub struct IniFile {
    file: String,
    ini: Ini,
}

impl IniFile {
    /// Reads and parses a file.
    ///
    /// # Errors
    /// The file cannot be read, or is not ini.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|err| ConfigError {
            file: file.clone(),
            section: None,
            key: None,
            message: format!("cannot read: {err}"),
        })?;
        Self::parse(&file, &text)
    }

    /// Parses text; `file` is only used in messages.
    ///
    /// # Errors
    /// The text is not ini, or has keys outside any section, or repeats a
    /// section.
    pub fn parse(file: &str, text: &str) -> Result<Self, ConfigError> {
        let file = file.to_string();
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let ini = Ini::load_from_str(text).map_err(|err| ConfigError {
            file: file.clone(),
            section: None,
            key: None,
            message: format!("not a valid ini file: {err}"),
        })?;
        let parsed = Self { file, ini };
        let mut seen = std::collections::HashSet::new();
        for (name, props) in parsed.ini.iter() {
            match name {
                None if props.is_empty() => {}
                None => {
                    let key = props.iter().next().map(|(k, _)| k.to_string());
                    return Err(ConfigError {
                        file: parsed.file.clone(),
                        section: None,
                        key,
                        message: "key outside any section".into(),
                    });
                }
                Some(name) if !seen.insert(name) => {
                    return Err(parsed.error(
                        name,
                        None,
                        "section appears twice; names must be unique",
                    ));
                }
                Some(_) => {}
            }
        }
        Ok(parsed)
    }

    /// One section built from `key=value` pairs (for example typed in a
    /// shell), checked by the same rules as a file. `source` names where
    /// the pairs came from in errors. Later pairs repeat keys, which
    /// [`Section::check_keys`] refuses like in a file.
    pub fn from_pairs(source: &str, section: &str, pairs: &[(String, String)]) -> Self {
        let mut ini = Ini::new();
        for (key, value) in pairs {
            ini.with_section(Some(section))
                .add(key.as_str(), value.as_str());
        }
        if pairs.is_empty() {
            ini.with_section(Some(section));
        }
        Self {
            file: source.to_string(),
            ini,
        }
    }

    /// The file name as given.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// Every named section, in file order.
    pub fn sections(&self) -> impl Iterator<Item = Section<'_>> {
        self.ini.iter().filter_map(move |(name, props)| {
            name.map(|name| Section {
                file: &self.file,
                name,
                props,
            })
        })
    }

    /// The section with this exact name, if present.
    pub fn section(&self, name: &str) -> Option<Section<'_>> {
        self.sections().find(|s| s.name == name)
    }

    /// An error located at a section and optionally a key.
    pub fn error(
        &self,
        section: &str,
        key: Option<&str>,
        message: impl Into<String>,
    ) -> ConfigError {
        ConfigError {
            file: self.file.clone(),
            section: Some(section.to_string()),
            key: key.map(str::to_string),
            message: message.into(),
        }
    }
}

/// One section, with typed getters whose errors name file, section and key.
#[derive(Clone, Copy)]
pub struct Section<'a> {
    file: &'a str,
    name: &'a str,
    props: &'a Properties,
}

impl<'a> Section<'a> {
    /// The section's name, without brackets.
    pub fn name(&self) -> &'a str {
        self.name
    }

    /// An error about `key` in this section.
    pub fn error(&self, key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError {
            file: self.file.to_string(),
            section: Some(self.name.to_string()),
            key: Some(key.to_string()),
            message: message.into(),
        }
    }

    /// Refuses keys not in `allowed` and keys written twice.
    ///
    /// # Errors
    /// Names the first offending key.
    pub fn check_keys(&self, allowed: &[&str]) -> Result<(), ConfigError> {
        for (key, _) in self.props.iter() {
            if !allowed.contains(&key) {
                return Err(self.error(
                    key,
                    format!("unknown key (known here: {})", allowed.join(", ")),
                ));
            }
            if self.props.get_all(key).count() > 1 {
                return Err(self.error(key, "written more than once"));
            }
        }
        Ok(())
    }

    /// The value, or `None` when missing or empty.
    pub fn get(&self, key: &str) -> Option<&'a str> {
        self.props.get(key).map(str::trim).filter(|v| !v.is_empty())
    }

    /// The value of a key that must be written.
    ///
    /// # Errors
    /// Missing or empty.
    pub fn required(&self, key: &str) -> Result<&'a str, ConfigError> {
        self.get(key)
            .ok_or_else(|| self.error(key, "is required but missing"))
    }

    /// A whole number in `range`, or `None` when not written.
    ///
    /// # Errors
    /// Not a number, or out of range.
    pub fn number(
        &self,
        key: &str,
        range: RangeInclusive<u32>,
    ) -> Result<Option<u32>, ConfigError> {
        let Some(text) = self.get(key) else {
            return Ok(None);
        };
        let out_of_range = || {
            self.error(
                key,
                format!(
                    "{text:?} is not a number in {}-{}",
                    range.start(),
                    range.end()
                ),
            )
        };
        let value: u32 = text.parse().map_err(|_| out_of_range())?;
        if range.contains(&value) {
            Ok(Some(value))
        } else {
            Err(out_of_range())
        }
    }

    /// A port number in `min..=65535`, or `None` when not written.
    ///
    /// # Errors
    /// Not a number, or out of range.
    pub fn port(&self, key: &str, min: u16) -> Result<Option<u16>, ConfigError> {
        Ok(self
            .number(key, u32::from(min)..=65535)?
            .map(|p| u16::try_from(p).expect("range checked above")))
    }

    /// `true`/`false` (also 1/0, yes/no, on/off), or `default` when not
    /// written.
    ///
    /// # Errors
    /// Any other text.
    pub fn bool(&self, key: &str, default: bool) -> Result<bool, ConfigError> {
        match self.get(key).map(str::to_ascii_lowercase).as_deref() {
            None => Ok(default),
            Some("true" | "1" | "yes" | "on") => Ok(true),
            Some("false" | "0" | "no" | "off") => Ok(false),
            Some(other) => Err(self.error(key, format!("{other:?} is not true or false"))),
        }
    }

    /// A host: an IP address or a DNS name, or `None` when not written.
    ///
    /// # Errors
    /// Neither an address nor a well-formed name.
    pub fn host(&self, key: &str) -> Result<Option<&'a str>, ConfigError> {
        let Some(text) = self.get(key) else {
            return Ok(None);
        };
        if is_host(text) {
            Ok(Some(text))
        } else {
            Err(self.error(key, format!("{text:?} is not an IP address or host name")))
        }
    }
}

/// Whether `text` is an IP address or a syntactically valid host name.
///
/// ```
/// use proto::ini::is_host;
/// assert!(is_host("127.0.0.1") && is_host("::") && is_host("route.example.org"));
/// assert!(!is_host("300.1.1.1") && !is_host("a b") && !is_host(""));
/// ```
pub fn is_host(text: &str) -> bool {
    if text.parse::<std::net::IpAddr>().is_ok() {
        return true;
    }
    // A dotted quad that did not parse above is a bad address, not a name.
    if text
        .split('.')
        .all(|part| part.chars().all(|c| c.is_ascii_digit()))
    {
        return false;
    }
    !text.is_empty()
        && text.len() <= 253
        && text.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

/// Keys `[route]` may hold. One file may serve both programs, so each
/// accepts the other's keys and reads only its own.
pub const ROUTE_KEYS: &[&str] = &[
    "ip",
    "port",
    "token",
    "heartbeat",
    "max_vnets",
    "max_serves_per_vnet",
    "tls",
    "cert",
    "key",
    "ca",
    "fingerprint",
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

#[cfg(test)]
mod tests {
    use super::*;

    const ORIGINAL: &str =
        "[route] ; route端的配置\nip=127.0.0.1 ; ip地址,必填项\nport=7749 ; 端口号,必填项\n";

    #[test]
    fn reads_the_original_format_with_inline_comments() {
        let ini = IniFile::parse("config.ini", ORIGINAL).unwrap();
        let (route, _) = RouteBasics::from_ini(&ini).unwrap();
        assert_eq!(route.ip, "127.0.0.1");
        assert_eq!(route.port, 7749);
        assert_eq!(route.addr(), "127.0.0.1:7749");
    }

    #[test]
    fn ipv6_addresses_are_bracketed() {
        let ini = IniFile::parse("c", "[route]\nip=::\nport=1\n").unwrap();
        assert_eq!(RouteBasics::from_ini(&ini).unwrap().0.addr(), "[::]:1");
    }

    #[test]
    fn errors_name_file_section_and_key() {
        let cases = [
            (
                "[route]\nport=1\n",
                "c.ini: [route] ip: is required but missing",
            ),
            (
                "[route]\nip=1.2.3.400\nport=1\n",
                "c.ini: [route] ip: \"1.2.3.400\" is not an IP address or host name",
            ),
            (
                "[route]\nip=h\nport=70000\n",
                "c.ini: [route] port: \"70000\" is not a number in 0-65535",
            ),
            (
                "[route]\nip=h\nport=1\nprot=2\n",
                "c.ini: [route] prot: unknown key (known here: ip, port, token, heartbeat, max_vnets, max_serves_per_vnet, tls, cert, key, ca, fingerprint)",
            ),
            (
                "[route]\nip=h\nport=1\nport=2\n",
                "c.ini: [route] port: written more than once",
            ),
            (
                "[vnet]\nname=x\n",
                "c.ini: [route]: section is required but missing",
            ),
        ];
        for (text, want) in cases {
            let ini = IniFile::parse("c.ini", text).unwrap();
            assert_eq!(RouteBasics::from_ini(&ini).err().unwrap().to_string(), want);
        }
    }

    #[test]
    fn repeated_sections_and_stray_keys_are_refused() {
        let err = IniFile::parse("c", "[route]\nip=a\n[route]\nport=1\n")
            .err()
            .unwrap();
        assert_eq!(
            err.to_string(),
            "c: [route]: section appears twice; names must be unique"
        );
        let err = IniFile::parse("c", "ip=a\n[route]\n").err().unwrap();
        assert_eq!(err.to_string(), "c ip: key outside any section");
    }

    #[test]
    fn bools_accept_common_spellings() {
        let ini = IniFile::parse("c", "[s]\na=TRUE\nb=0\nc=maybe\n").unwrap();
        let s = ini.section("s").unwrap();
        assert!(s.bool("a", false).unwrap());
        assert!(!s.bool("b", true).unwrap());
        assert!(s.bool("missing", true).unwrap());
        assert!(s.bool("c", true).is_err());
    }
}
