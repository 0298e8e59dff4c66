//! `show`: tables for people, JSON for scripts. Every table row begins with
//! its id (serve id or vnet id), so a script can pick rows with `awk`.
use crate::config::RouteLink;
use proto::message::{ServeEntry, VnetEntry};
use serde::Serialize;
use serde_json::json;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use super::table::{ago, bytes, listing, noted, table, wrap};
use crate::config::VnetOptions;
use crate::model::{ServeState, Status};

/// The columns of free text, narrowed first when a table is too wide.
const CUT: &[&str] = &["name", "info"];

/// A topic's table with its footer and notes, or its one `empty` line.
fn laid_out(
    headers: &[&str],
    rows: &[Vec<String>],
    footer: String,
    empty: &str,
    notes: &[String],
) -> String {
    listing(table(headers, rows, CUT), rows.len(), footer, empty, notes)
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
    let headers = ["serveid", "vnet", "name", "type", "ip", "port", "info"];
    let footer = format!(
        "{} serve(s) of {} vnet(s) in this group",
        list.len(),
        vnets.len()
    );
    let empty = "no serves registered in this group";
    laid_out(&headers, &rows, footer, empty, &[])
}

/// A vnet as `show vnets` lists it: as the route lists it, and how end
/// to end stands with it.
#[derive(Serialize)]
pub struct VnetRow {
    #[serde(flatten)]
    pub entry: VnetEntry,
    /// `off`, `yes`, `no: why` or `-` (see `VnetHandle::end_to_end`).
    pub e2e: String,
    /// `up RTT`, `trying`, `no: why`, `off` or `-` (see
    /// `VnetHandle::direct_with`).
    pub direct: String,
}

/// `show vnets`: the group's vnets as the route lists them.
pub fn vnets(list: &[VnetRow], json: bool) -> String {
    if json {
        return serde_json::to_string_pretty(list).expect("serializable");
    }
    let now = now_unix();
    let mut notes = Vec::new();
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|row| {
            let (v, e2e, direct) = (&row.entry, &row.e2e, &row.direct);
            let key = v.vnet_id.to_string();
            vec![
                key.clone(),
                v.name.clone(),
                v.serves.to_string(),
                format!("{} ago", ago(now.saturating_sub(v.connected_unix))),
                e2e.clone(),
                match direct.strip_prefix("no: ") {
                    Some(why) => noted("no", Some(&why.to_string()), &mut notes, &key),
                    None => direct.clone(),
                },
            ]
        })
        .collect();
    let headers = ["vnetid", "name", "serves", "connected", "e2e", "direct"];
    let footer = format!("{} vnet(s) in this group", list.len());
    let empty = "no vnets in this group";
    laid_out(&headers, &rows, footer, empty, &notes)
}

#[derive(Serialize)]
struct ServeRow {
    serve_id: Option<u16>,
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
    let mut rows: Vec<ServeRow> = status
        .serves
        .values()
        .map(|s| {
            let (sent, received) = s.traffic.bytes();
            let id = match &s.state {
                ServeState::Registered(id) => Some(*id),
                _ => s.last_id.or(s.config.serve_id),
            };
            ServeRow {
                serve_id: id.map(u16::from),
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
    // By id, as the group's tables are; those without one last.
    rows.sort_by_key(|r| (r.serve_id.is_none(), r.serve_id));
    if json {
        return serde_json::to_string_pretty(&rows).expect("serializable");
    }
    let mut notes = Vec::new();
    let text: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let state = match &r.state {
                ServeState::Inactive => "inactive".to_string(),
                ServeState::Pending => "pending".to_string(),
                ServeState::Registered(_) => "registered".to_string(),
                ServeState::Refused(why) => noted("refused", Some(why), &mut notes, &r.key),
            };
            let info = match &r.grant {
                Some(to) => format!("grant to {to}"),
                None => r.info.clone(),
            };
            vec![
                id_cell(r.serve_id),
                r.key.clone(),
                format!("{}:{}", r.ip, r.port),
                state,
                r.connections.to_string(),
                format!("{}/{}", bytes(r.sent), bytes(r.received)),
                info,
            ]
        })
        .collect();
    let headers = [
        "serveid",
        "name",
        "address",
        "state",
        "conns",
        "sent/recv",
        "info",
    ];
    let footer = format!("{} serve(s) here", rows.len());
    let empty = "no serves here (serve run NAME port=PORT adds one)";
    laid_out(&headers, &text, footer, empty, &notes)
}

/// A serve id as a table shows it; `000` when there is none (yet).
fn id_cell(id: Option<u16>) -> String {
    id.map_or_else(|| "000".into(), |id| format!("{id:03}"))
}

#[derive(Serialize)]
struct UseRow {
    serve_id: Option<u16>,
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
    /// Where its new streams go now: `direct` or `relay`.
    path: &'static str,
    /// The other vnet's address on the direct link.
    direct_addr: Option<String>,
}

/// `show use`: this vnet's uses and their state; `paths` says which go
/// on a direct link now, and to where (see `VnetHandle::use_paths`).
pub fn local_uses(
    status: &Status,
    paths: &BTreeMap<String, Option<SocketAddr>>,
    json: bool,
) -> String {
    let mut rows: Vec<UseRow> = status
        .uses
        .values()
        .map(|u| {
            let (sent, received) = u.traffic.bytes();
            let direct = paths.get(&u.config.key).copied().flatten();
            UseRow {
                serve_id: u.config.serve_id.map(u16::from),
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
                path: if direct.is_some() { "direct" } else { "relay" },
                direct_addr: direct.map(|a| a.to_string()),
            }
        })
        .collect();
    // By id, as the group's tables are; those without one last.
    rows.sort_by_key(|r| (r.serve_id.is_none(), r.serve_id));
    if json {
        return serde_json::to_string_pretty(&rows).expect("serializable");
    }
    let mut notes = Vec::new();
    let text: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let listen = r.listening.clone().unwrap_or_else(|| {
                format!("{}:{}", r.ip, r.port.map_or("-".into(), |p| p.to_string()))
            });
            vec![
                id_cell(r.serve_id),
                r.name.clone(),
                listen,
                noted(r.state, r.error.as_ref(), &mut notes, &r.name),
                r.connections.to_string(),
                format!("{}/{}", bytes(r.sent), bytes(r.received)),
                r.path.to_string(),
            ]
        })
        .collect();
    let headers = [
        "serveid",
        "name",
        "listen",
        "state",
        "conns",
        "sent/recv",
        "path",
    ];
    let footer = format!("{} use(s) here", rows.len());
    let empty = "no uses here (use run NAME serveid=ID adds one)";
    laid_out(&headers, &text, footer, empty, &notes)
}

/// `show vnet`: this vnet's own settings.
pub fn vnet(status: &Status, settings: &VnetOptions, route: &RouteLink, json: bool) -> String {
    let id = status.vnet_id.map(|id| id.to_string());
    if json {
        let doc = json!({
            "vnet_id": status.vnet_id.map(|id| id.0),
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
    let link = match (&status.vnet_id, &status.route_error) {
        (Some(_), _) => "connected".to_string(),
        (None, Some(why)) => format!("reconnecting ({})", proto::text::escape(why)),
        (None, None) => "connecting".to_string(),
    };
    let lines = [
        ("vnetid", id.unwrap_or_else(|| "--".into())),
        ("name", settings.name.clone()),
        ("group", settings.group.clone()),
        ("route", format!("{} ({link})", route.addr())),
        ("allow_unserve", settings.allow_unserve.to_string()),
        ("unserve_remote", settings.unserve_remote.to_string()),
        ("unserve_num", settings.unserve_num.to_string()),
        (
            "expire/linger",
            format!("{}s/{}s", settings.unserve_expire, settings.unserve_linger),
        ),
        ("streams open", status.streams.to_string()),
    ];
    // One key a line, `awk` finds a key by name; a long value goes on in
    // lines of its own under it.
    lines
        .iter()
        .map(|(key, value)| format!("{key:<15} {}", wrap(&proto::text::escape(value), 16)))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests;
