//! `show`: tables for people, JSON for scripts. Every table row begins with
//! its id (serve id or vnet id), so a script can pick rows with `awk`.
use crate::config::RouteLink;
use proto::message::{ServeEntry, VnetEntry};
use serde::Serialize;
use serde_json::json;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::config::VnetOptions;
use crate::model::{ServeState, Status};

/// Lays rows out in columns two spaces apart. Cells are escaped (see
/// `proto::text`): names and infos come from other vnets, and a newline or
/// an escape sequence in one must not forge a row or reach the terminal.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            row.iter()
                .map(|c| proto::text::escape(c).into_owned())
                .collect()
        })
        .collect();
    let rows = &rows;
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}  ", w = widths[i]));
            }
        }
        out.trim_end().to_string()
    };
    let mut out = vec![line(headers.to_vec())];
    for row in rows {
        out.push(line(row.iter().map(String::as_str).collect()));
    }
    out.join("\n")
}

/// Bytes for people: `0 B`, `1.5 KiB`, `3.2 MiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// A duration in seconds for people: `45s`, `12m05s`, `3h02m`, `2d04h`.
pub fn ago(seconds: u64) -> String {
    match seconds {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{:02}s", s / 60, s % 60),
        s if s < 86_400 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        s => format!("{}d{:02}h", s / 86_400, s % 86_400 / 3600),
    }
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `show serves`: the group's serves as the route lists them.
pub fn serves(list: &[ServeEntry], json: bool) -> String {
    if json {
        return serde_json::to_string_pretty(list).expect("serializable");
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|e| {
            let s = &e.spec;
            vec![
                e.serve_id.to_string(),
                e.vnet_id.to_string(),
                s.name.clone(),
                s.kind.clone(),
                s.ip.clone(),
                s.port.to_string(),
                s.info.clone(),
            ]
        })
        .collect();
    let mut vnets: Vec<_> = list.iter().map(|e| e.vnet_id).collect();
    vnets.sort();
    vnets.dedup();
    format!(
        "{}\n- {} vnet(s), {} serve(s) registered -",
        table(
            &["serveid", "vnet", "name", "type", "ip", "port", "info"],
            &rows
        ),
        vnets.len(),
        list.len()
    )
}

/// `show vnets`: the group's vnets as the route lists them.
pub fn vnets(list: &[VnetEntry], json: bool) -> String {
    if json {
        return serde_json::to_string_pretty(list).expect("serializable");
    }
    let now = now_unix();
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|v| {
            vec![
                v.vnet_id.to_string(),
                v.name.clone(),
                v.serves.to_string(),
                format!("{} ago", ago(now.saturating_sub(v.connected_unix))),
            ]
        })
        .collect();
    format!(
        "{}\n- {} vnet(s) in this group -",
        table(&["vnetid", "name", "serves", "connected"], &rows),
        list.len()
    )
}

#[derive(Serialize)]
struct ServeRow {
    serveid: Option<u16>,
    name: String,
    key: String,
    ip: String,
    port: u16,
    active: bool,
    state: ServeState,
    grant: Option<String>,
    connections: usize,
    sent: u64,
    received: u64,
    info: String,
}

/// `show serve`: this vnet's serves and their state.
pub fn local_serves(status: &Status, json: bool) -> String {
    let rows: Vec<ServeRow> = status
        .serves
        .values()
        .map(|s| {
            let (sent, received) = s.traffic.bytes();
            let id = match &s.state {
                ServeState::Registered(id) => Some(*id),
                _ => s.last_id.or(s.config.serve_id),
            };
            ServeRow {
                serveid: id.map(u16::from),
                name: s.config.name.clone(),
                key: s.config.key.clone(),
                ip: s.config.ip.clone(),
                port: s.config.port,
                active: s.config.active,
                state: s.state.clone(),
                grant: s.grant.clone(),
                connections: s.traffic.connections(),
                sent,
                received,
                info: s.config.info.clone(),
            }
        })
        .collect();
    if json {
        return serde_json::to_string_pretty(&rows).expect("serializable");
    }
    let text: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let state = match &r.state {
                ServeState::Inactive => "inactive".to_string(),
                ServeState::Pending => "pending".to_string(),
                ServeState::Registered(_) => "registered".to_string(),
                ServeState::Refused(why) => format!("refused: {why}"),
            };
            let info = match &r.grant {
                Some(to) => format!("grant to {to}"),
                None => r.info.clone(),
            };
            vec![
                r.serveid
                    .map_or_else(|| "000".into(), |id| format!("{id:03}")),
                r.key.clone(),
                r.ip.clone(),
                r.port.to_string(),
                state,
                r.connections.to_string(),
                bytes(r.sent),
                bytes(r.received),
                info,
            ]
        })
        .collect();
    table(
        &[
            "serveid", "name", "ip", "port", "state", "conns", "sent", "received", "info",
        ],
        &text,
    )
}

#[derive(Serialize)]
struct UseRow {
    serveid: Option<u16>,
    name: String,
    ip: String,
    port: Option<u16>,
    listening: Option<String>,
    active: bool,
    state: &'static str,
    error: Option<String>,
    grant: bool,
    connections: usize,
    sent: u64,
    received: u64,
}

/// `show use`: this vnet's uses and their state.
pub fn local_uses(status: &Status, json: bool) -> String {
    let rows: Vec<UseRow> = status
        .uses
        .values()
        .map(|u| {
            let (sent, received) = u.traffic.bytes();
            UseRow {
                serveid: u.config.serve_id.map(u16::from),
                name: u.config.key.clone(),
                ip: u.config.ip.to_string(),
                port: u.config.port,
                listening: u.local.map(|a| a.to_string()),
                active: u.config.active,
                state: u.state(),
                error: u.error.clone(),
                grant: u.grant.is_some(),
                connections: u.traffic.connections(),
                sent,
                received,
            }
        })
        .collect();
    if json {
        return serde_json::to_string_pretty(&rows).expect("serializable");
    }
    let text: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let listen = r.listening.clone().unwrap_or_else(|| {
                format!("{}:{}", r.ip, r.port.map_or("-".into(), |p| p.to_string()))
            });
            let state = match &r.error {
                Some(why) => format!("failed: {why}"),
                None => r.state.to_string(),
            };
            vec![
                r.serveid
                    .map_or_else(|| "000".into(), |id| format!("{id:03}")),
                r.name.clone(),
                listen,
                state,
                r.connections.to_string(),
                bytes(r.sent),
                bytes(r.received),
            ]
        })
        .collect();
    table(
        &[
            "serveid", "name", "listen", "state", "conns", "sent", "received",
        ],
        &text,
    )
}

/// `show vnet`: this vnet's own settings.
pub fn vnet(status: &Status, settings: &VnetOptions, route: &RouteLink, json: bool) -> String {
    let id = status.vnet_id.map(|id| id.to_string());
    if json {
        let doc = json!({
            "vnetid": status.vnet_id.map(|id| id.0),
            "name": settings.name,
            "group": settings.group,
            "route": route.addr(),
            "connected": status.vnet_id.is_some(),
            "route_error": status.route_error,
            "terminal": settings.terminal,
            "allow_unserve": settings.allow_unserve,
            "unserve_remote": settings.unserve_remote,
            "unserve_num": settings.unserve_num,
            "unserve_expire": settings.unserve_expire,
            "unserve_linger": settings.unserve_linger,
            "spares": status.spares,
            "streams": status.streams,
        });
        return serde_json::to_string_pretty(&doc).expect("serializable");
    }
    let row = vec![
        id.unwrap_or_else(|| "--".into()),
        settings.name.clone(),
        settings.group.clone(),
        route.addr(),
        if status.vnet_id.is_some() {
            "connected"
        } else {
            "reconnecting"
        }
        .into(),
        settings.allow_unserve.to_string(),
        settings.unserve_remote.to_string(),
        settings.unserve_num.to_string(),
        format!("{}s/{}s", settings.unserve_expire, settings.unserve_linger),
    ];
    table(
        &[
            "vnetid",
            "name",
            "group",
            "route",
            "link",
            "allow_unserve",
            "unserve_remote",
            "unserve_num",
            "expire/linger",
        ],
        &[row],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_and_rows_start_with_ids() {
        let out = table(
            &["serveid", "name"],
            &[
                vec!["700".into(), "ssh".into()],
                vec!["001".into(), "jupyter".into()],
            ],
        );
        assert_eq!(out, "serveid  name\n700      ssh\n001      jupyter");
    }

    #[test]
    fn cells_from_the_network_cannot_forge_rows_or_reach_the_terminal() {
        let out = table(
            &["serveid", "info"],
            &[vec!["700".into(), "x\n999 01 admin\u{1b}[2J".into()]],
        );
        assert_eq!(out, "serveid  info\n700      x\\n999 01 admin\\u{1b}[2J");
        assert!(out.lines().skip(1).all(|row| row.starts_with("700")));
    }

    #[test]
    fn sizes_and_durations_read_well() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(3 << 20), "3.0 MiB");
        assert_eq!(ago(59), "59s");
        assert_eq!(ago(725), "12m05s");
        assert_eq!(ago(3 * 3600 + 120), "3h02m");
    }
}
