//! One `[section]` with typed getters, each error naming file, section and
//! key, and the checks values share (host names, comment markers).
use ini::Properties;
use std::ops::RangeInclusive;

use super::error::ConfigError;

/// What to tell someone whose value holds a comment marker with no space
/// before it: in this format only ` ;` and ` #` start a comment, so the
/// marker and all after it became part of the value.
///
/// ```
/// let hint = proto::ini::comment_hint("7750;端口").unwrap();
/// assert!(hint.contains("space"));
/// assert!(proto::ini::comment_hint("plain").is_none());
/// ```
pub fn comment_hint(value: &str) -> Option<&'static str> {
    if value.contains('；') {
        Some("a full-width ； does not start a comment; write ` ;` (a space, then an ASCII semicolon)")
    } else if value.contains([';', '#']) {
        Some("a comment needs a space before its ; or # (`key=value ;comment`)")
    } else {
        None
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
    pub(super) fn new(file: &'a str, name: &'a str, props: &'a Properties) -> Self {
        Self { file, name, props }
    }

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
                with_hint(
                    format!(
                        "{text:?} is not a number in {}-{}",
                        range.start(),
                        range.end()
                    ),
                    text,
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
            Some(other) => Err(self.error(
                key,
                with_hint(format!("{other:?} is not true or false"), other),
            )),
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
            Err(self.error(
                key,
                with_hint(format!("{text:?} is not an IP address or host name"), text),
            ))
        }
    }
}

/// `message`, with [`comment_hint`]'s advice when `value` needs it.
fn with_hint(message: String, value: &str) -> String {
    match comment_hint(value) {
        Some(hint) => format!("{message}; {hint}"),
        None => message,
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
