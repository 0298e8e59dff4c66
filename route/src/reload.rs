//! A config read again while the route runs (SIGHUP): what can change
//! live takes effect for every new connection and request; where the
//! route listens and its TLS keep their old values until a restart.
//!
//! Vnets already joined stay joined under a new token (and keep their
//! data connections): they proved the one in force when they joined, so
//! revoking a leaked token takes a restart. Sessions keep the heartbeat they were
//! given; new ones get the new one.
use crate::config::RouteConfig;
use crate::state::Hub;

/// What a reload did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Reloaded {
    /// Keys whose new values are in force now.
    pub changed: Vec<&'static str>,
    /// Keys that changed in the file but keep their old values until the
    /// route is restarted.
    pub need_restart: Vec<&'static str>,
}

/// Puts `new` in force, except what needs a restart.
pub fn apply(hub: &Hub, mut new: RouteConfig) -> Reloaded {
    let old = hub.config();
    let mut done = Reloaded::default();
    if new.ip != old.ip {
        done.need_restart.push("ip");
        new.ip.clone_from(&old.ip);
    }
    if new.port != old.port {
        done.need_restart.push("port");
        new.port = old.port;
    }
    let fingerprint = |c: &RouteConfig| c.tls.as_ref().map(|t| t.fingerprint.clone());
    if fingerprint(&new) != fingerprint(&old) {
        done.need_restart.push("tls");
        new.tls.clone_from(&old.tls);
    }
    if new.status.as_ref().map(|s| s.addr) != old.status.as_ref().map(|s| s.addr) {
        done.need_restart.push("status");
        new.status = match (new.status.take(), &old.status) {
            (Some(mut status), Some(old)) => {
                status.addr = old.addr;
                Some(status)
            }
            (_, old) => old.clone(),
        };
    }
    // The address kept may be one that needs a token: a reload must not
    // take it away there.
    let exposed = new.status.as_ref().filter(|s| !s.addr.ip().is_loopback());
    if exposed.is_some_and(|s| s.token.is_none()) {
        done.need_restart.push("status_token");
        new.status.clone_from(&old.status);
    }
    if new.status.as_ref().map(|s| &s.token) != old.status.as_ref().map(|s| &s.token) {
        done.changed.push("status_token");
    }
    if new.token != old.token {
        done.changed.push("token");
    }
    if new.heartbeat != old.heartbeat {
        done.changed.push("heartbeat");
    }
    if new.max_vnets != old.max_vnets {
        done.changed.push("max_vnets");
    }
    if new.max_serves_per_vnet != old.max_serves_per_vnet {
        done.changed.push("max_serves_per_vnet");
    }
    if new.max_connections != old.max_connections {
        done.changed.push("max_connections");
    }
    // No keys: what tests or code set stays.
    new.handshake_timeout = old.handshake_timeout;
    new.admission = old.admission.clone();
    hub.replace_config(new);
    done
}

/// The log lines of a reload.
pub fn log(done: &Reloaded) {
    let list = |keys: &[&str]| {
        if keys.is_empty() {
            "none".to_string()
        } else {
            keys.join(", ")
        }
    };
    tracing::info!(changed = %list(&done.changed), "config reloaded");
    if !done.need_restart.is_empty() {
        tracing::warn!(
            keys = %list(&done.need_restart),
            "these settings changed in the file but need a restart; the old ones stay in force"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_util::sync::CancellationToken;

    fn config(text: &str) -> RouteConfig {
        RouteConfig::parse("route.ini", text, std::path::Path::new(".")).unwrap()
    }

    #[test]
    fn live_keys_apply_and_the_listening_address_waits_for_a_restart() {
        let hub = Hub::new(
            config("[route]\nip=127.0.0.1\nport=7000\ntoken=a\n"),
            CancellationToken::new(),
        );
        let done = apply(
            &hub,
            config(
                "[route]\nip=127.0.0.2\nport=7001\ntoken=b\nmax_connections=5\nheartbeat=20\n\
                 max_vnets=3\nmax_serves_per_vnet=4\n",
            ),
        );
        assert_eq!(
            done.changed,
            [
                "token",
                "heartbeat",
                "max_vnets",
                "max_serves_per_vnet",
                "max_connections"
            ],
            "{done:?}"
        );
        assert_eq!(done.need_restart, ["ip", "port"]);
        let now = hub.config();
        assert_eq!(
            now.token,
            config("[route]\nip=127.0.0.1\nport=1\ntoken=b\n").token
        );
        assert_eq!(now.max_connections, 5);
        assert_eq!((now.max_vnets, now.max_serves_per_vnet), (3, 4));
        assert_eq!((now.ip.as_str(), now.port), ("127.0.0.1", 7000));
    }

    #[test]
    fn a_status_token_applies_and_a_status_address_waits() {
        let base = "[route]\nip=127.0.0.1\nport=7000\nstatus=127.0.0.1:7750\n";
        let hub = Hub::new(config(base), CancellationToken::new());
        let done = apply(
            &hub,
            config("[route]\nip=127.0.0.1\nport=7000\nstatus=0.0.0.0:7751\nstatus_token=t\n"),
        );
        assert_eq!(
            (done.changed, done.need_restart),
            (vec!["status_token"], vec!["status"])
        );
        let status = hub.config().status.clone().unwrap();
        assert_eq!(status.addr.to_string(), "127.0.0.1:7750");
        assert_eq!(status.token.as_deref(), Some("t"));
        // Turning the page off waits for a restart too.
        let done = apply(&hub, config("[route]\nip=127.0.0.1\nport=7000\n"));
        assert_eq!(done.need_restart, ["status"]);
        assert!(hub.config().status.is_some());
    }

    #[test]
    fn a_reload_never_leaves_a_public_page_without_its_token() {
        let base = "[route]\nip=127.0.0.1\nport=7000\nstatus=0.0.0.0:7750\nstatus_token=t\n";
        let hub = Hub::new(config(base), CancellationToken::new());
        // Valid alone (loopback needs no token), but the address waits
        // for a restart and stays public.
        let done = apply(
            &hub,
            config("[route]\nip=127.0.0.1\nport=7000\nstatus=127.0.0.1:7750\n"),
        );
        assert_eq!(done.need_restart, ["status", "status_token"]);
        assert!(done.changed.is_empty(), "{done:?}");
        let status = hub.config().status.clone().unwrap();
        assert_eq!(status.addr.to_string(), "0.0.0.0:7750");
        assert_eq!(status.token.as_deref(), Some("t"));
    }

    #[test]
    fn the_same_file_changes_nothing() {
        let text = "[route]\nip=127.0.0.1\nport=7000\ntoken=a\n";
        let hub = Hub::new(config(text), CancellationToken::new());
        assert_eq!(apply(&hub, config(text)), Reloaded::default());
    }
}
