//! `[vnet]`: this vnet's own options (name, group, the shell, unserve
//! rules, limits, spares, end to end and the direct path), with the
//! original's defaults.
use proto::ini::{ConfigError, Section};
use proto::MAX_SPARES;

use super::direct::DirectMode;
use super::sections::text;

/// `[vnet]`: this vnet's own options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VnetOptions {
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
    /// Shared by the group's vnets and never sent: streams between two
    /// vnets that both have it are sealed end to end (the route relays
    /// what it cannot read), and a vnet with it talks to no vnet without
    /// it. Default none.
    pub secret: Option<proto::e2e::GroupSecret>,
    /// Whether streams may go on a direct link to the serving vnet when
    /// one can be made. Default `auto`.
    pub direct: DirectMode,
    /// The port of the direct socket (UDP, and the TCP lane on the same
    /// number), for a firewall rule; 0 (the default): any free one.
    pub direct_port: u16,
    /// Worker threads that carry the streams. Default 1: each new stream
    /// then costs a third less CPU than on two, which wake each other for
    /// every task; more let many busy streams that run through user space
    /// (sealed end to end, or on a QUIC link) use more cores. Read at start.
    pub threads: u8,
}

impl Default for VnetOptions {
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
            secret: None,
            direct: DirectMode::Auto,
            direct_port: 0,
            threads: 1,
        }
    }
}

/// Most worker threads `threads=` may ask for.
const MAX_THREADS: u32 = 64;

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
    "secret",
    "direct",
    "direct_port",
    "threads",
];

fn seconds(section: &Section<'_>, key: &str, default: u64) -> Result<u64, ConfigError> {
    Ok(section
        .number(key, 1..=86_400 * 365)?
        .map_or(default, u64::from))
}

/// `name` or `group`: text, and no comment marker written without its
/// space, which would silently put the comment into the name (or the vnet
/// into a group nobody else is in).
fn identity(section: &Section<'_>, key: &str, default: &str) -> Result<String, ConfigError> {
    let value = text(section, key, default)?;
    match proto::ini::comment_hint(&value) {
        Some(hint) => Err(section.error(key, format!("{value:?}: {hint}"))),
        None => Ok(value),
    }
}

/// `secret=`: at least 8 bytes, as a short one is quickly guessed by
/// anyone who can join the group (the route cannot test guesses).
fn secret(section: &Section<'_>) -> Result<Option<proto::e2e::GroupSecret>, ConfigError> {
    let Some(value) = section.get("secret") else {
        return Ok(None);
    };
    if value.len() < 8 {
        return Err(section.error(
            "secret",
            "shorter than 8 characters; use a long random string",
        ));
    }
    if let Some(hint) = proto::ini::comment_hint(value) {
        return Err(section.error("secret", hint));
    }
    Ok(Some(proto::e2e::GroupSecret::new(value)))
}

/// Reads `[vnet]`; unknown keys are errors.
pub(super) fn read(section: &Section<'_>) -> Result<VnetOptions, ConfigError> {
    section.check_keys(VNET_KEYS)?;
    let d = VnetOptions::default();
    Ok(VnetOptions {
        name: identity(section, "name", &d.name)?,
        group: identity(section, "group", &d.group)?,
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
        secret: secret(section)?,
        direct: DirectMode::read(section)?.unwrap_or(d.direct),
        direct_port: section
            .number("direct_port", 0..=u32::from(u16::MAX))?
            .map_or(d.direct_port, |port| {
                u16::try_from(port).unwrap_or(d.direct_port)
            }),
        threads: section
            .number("threads", 1..=MAX_THREADS)?
            .map_or(d.threads, |n| u8::try_from(n).unwrap_or(d.threads)),
    })
}
