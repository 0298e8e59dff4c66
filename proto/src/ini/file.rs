//! A whole ini file: read, checked line by line, parsed by rust-ini, its
//! sections listed in file order.
use ini::Ini;
use std::path::Path;

use super::error::ConfigError;
use super::section::Section;

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
        let text = std::fs::read_to_string(path).map_err(|err| {
            // Say where a relative name was looked for: the working
            // directory of a service is rarely what its user expects.
            let looked = match std::path::absolute(path) {
                Ok(full) if full.as_path() != path => format!(" (looked for {})", full.display()),
                _ => String::new(),
            };
            ConfigError {
                file: file.clone(),
                section: None,
                key: None,
                message: format!(
                    "cannot read{looked}: {err}; give the config file as the argument (see --help)"
                ),
            }
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
        let at_line = |message: String| ConfigError {
            file: file.clone(),
            section: None,
            key: None,
            message,
        };
        check_lines(text).map_err(at_line)?;
        let ini = Ini::load_from_str(text).map_err(|err| {
            at_line(format!(
                "line {}: not a valid ini line ({})",
                err.line, err.msg
            ))
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
        self.ini
            .iter()
            .filter_map(move |(name, props)| name.map(|name| Section::new(&self.file, name, props)))
    }

    /// The section with this exact name, if present.
    pub fn section(&self, name: &str) -> Option<Section<'_>> {
        self.sections().find(|s| s.name() == name)
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

/// Checks each line's shape before the parser sees it, so a mistake is
/// named by its line as written: a line is blank, a comment (`;` or `#`
/// first), a `[section]` header, or `key=value`.
fn check_lines(text: &str) -> Result<(), String> {
    for (number, line) in text.lines().enumerate() {
        let number = number + 1;
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with([';', '#']) {
            continue;
        }
        if let Some(header) = trimmed.strip_prefix('[') {
            if !header.contains(']') {
                return Err(format!(
                    "line {number}: {trimmed:?} starts a [section] header but has no closing ]"
                ));
            }
            continue;
        }
        if trimmed.contains(['=', ':']) {
            continue;
        }
        let hint = match trimmed.split_whitespace().collect::<Vec<_>>()[..] {
            [key, value] => format!(" (did you mean {key}={value}?)"),
            _ => String::new(),
        };
        return Err(format!(
            "line {number}: {trimmed:?} is neither key=value nor a [section] header{hint}"
        ));
    }
    Ok(())
}
