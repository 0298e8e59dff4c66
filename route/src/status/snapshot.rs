//! The route's state at one moment, as the status page, the JSON API
//! and the metrics show it: one [`Snapshot`] built from the `Hub` under
//! its locks, briefly, then rendered without them.
//!
//! Its JSON form is `/api/status`; the README documents its fields, so
//! names here change only with the README.
use serde::Serialize;
use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use super::process::ProcessFigures;
use crate::state::Hub;

/// Everything the status shows.
#[derive(Debug, Serialize)]
pub struct Snapshot {
    /// The route's version.
    pub version: &'static str,
    /// When it started, seconds since the Unix epoch.
    pub started_unix: u64,
    /// Seconds since then.
    pub uptime_secs: u64,
    /// What it runs with.
    pub settings: Settings,
    /// Each group with vnets, by name.
    pub groups: Vec<GroupStatus>,
    /// Peers refused, by reason (what they were told).
    pub refusals: ByReason,
    /// Peers dropped without an answer, by reason.
    pub dropped: ByReason,
    /// The route process.
    pub process: ProcessFigures,
}

/// The settings in force (never the token itself).
#[derive(Debug, Serialize)]
pub struct Settings {
    /// Where vnets connect.
    pub listen: String,
    /// Whether connections use TLS.
    pub tls: bool,
    /// Whether vnets must prove a token.
    pub token: bool,
    pub heartbeat_secs: u64,
    pub max_vnets: usize,
    pub max_serves_per_vnet: usize,
    pub max_connections: usize,
}

/// One group.
#[derive(Debug, Serialize)]
pub struct GroupStatus {
    pub name: String,
    pub vnets: Vec<VnetStatus>,
    pub serves: Vec<ServeStatus>,
}

/// One connected vnet.
#[derive(Debug, Serialize)]
pub struct VnetStatus {
    pub id: u16,
    pub name: String,
    /// The address its control connection came from.
    pub addr: SocketAddr,
    pub connected_unix: u64,
    /// Serves it has registered.
    pub serves: u32,
}

/// One registered serve and its streams through the route.
#[derive(Debug, Serialize)]
pub struct ServeStatus {
    pub id: u16,
    pub vnet_id: u16,
    pub vnet_name: String,
    pub name: String,
    /// The service's address as its vnet reaches it.
    pub ip: String,
    pub port: u16,
    pub info: String,
    pub streams_open: u64,
    pub streams_total: u64,
    /// Bytes from visitors to the serve.
    pub bytes_up: u64,
    /// Bytes from the serve to visitors.
    pub bytes_down: u64,
}

/// Counts by reason, in a fixed order; a JSON object.
#[derive(Debug)]
pub struct ByReason(pub Vec<(&'static str, u64)>);

impl Serialize for ByReason {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().copied())
    }
}

fn unix(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl Snapshot {
    /// The state of `hub` now, with the process's figures read apart
    /// (reading them may block).
    pub fn of(hub: &Hub, process: ProcessFigures) -> Self {
        let config = hub.config();
        let groups = hub.registry().overview();
        let groups = groups
            .into_iter()
            .map(|g| GroupStatus {
                vnets: g
                    .vnets
                    .into_iter()
                    .map(|v| VnetStatus {
                        id: v.entry.vnet_id.0,
                        name: v.entry.name,
                        addr: v.addr,
                        connected_unix: v.entry.connected_unix,
                        serves: v.entry.serves,
                    })
                    .collect(),
                serves: g
                    .serves
                    .into_iter()
                    .map(|s| {
                        let figures = hub.traffic.figures(&g.name, s.serve_id);
                        ServeStatus {
                            id: s.serve_id.get(),
                            vnet_id: s.vnet_id.0,
                            vnet_name: s.vnet_name,
                            name: s.spec.name,
                            ip: s.spec.ip,
                            port: s.spec.port,
                            info: s.spec.info,
                            streams_open: figures.open,
                            streams_total: figures.started,
                            bytes_up: figures.up,
                            bytes_down: figures.down,
                        }
                    })
                    .collect(),
                name: g.name,
            })
            .collect();
        let started = hub.started;
        Self {
            version: env!("CARGO_PKG_VERSION"),
            started_unix: unix(started),
            uptime_secs: started.elapsed().map_or(0, |d| d.as_secs()),
            settings: Settings {
                listen: config.addr(),
                tls: config.tls.is_some(),
                token: config.token.is_set(),
                heartbeat_secs: config.heartbeat.as_secs(),
                max_vnets: config.max_vnets,
                max_serves_per_vnet: config.max_serves_per_vnet,
                max_connections: config.max_connections,
            },
            groups,
            refusals: ByReason(hub.counters.refusals().collect()),
            dropped: ByReason(hub.counters.drops().collect()),
            process,
        }
    }
}
