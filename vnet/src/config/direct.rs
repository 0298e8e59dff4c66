//! `direct=`, in `[vnet]` and in a `[use.NAME]`: whether streams may
//! leave the route for a direct link between the two vnets.
use proto::ini::{ConfigError, Section};

/// `direct=`: whether streams may leave the route for a direct link.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DirectMode {
    /// Try a direct link in the background; use it once up.
    #[default]
    Auto,
    /// Always through the route.
    Off,
}

impl DirectMode {
    /// Reads `direct=` in `section`, if set.
    ///
    /// # Errors
    /// A value other than `auto` or `off`.
    pub(super) fn read(section: &Section<'_>) -> Result<Option<Self>, ConfigError> {
        match section
            .get("direct")
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None => Ok(None),
            Some("auto") => Ok(Some(DirectMode::Auto)),
            Some("off") => Ok(Some(DirectMode::Off)),
            Some(other) => {
                Err(section.error("direct", format!("{other:?} is not one of auto, off")))
            }
        }
    }
}
