//! A config problem, located by file, section and key.
use std::fmt;

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
