//! Unserve: time-limited grants to services a vnet has not registered.
//!
//! The asking vnet sends `Unserve` through the route; the vnet holding the
//! service decides here ([`on_ask`]) by three rules: `allow_unserve`, a
//! loopback address unless `unserve_remote`, and fewer than `unserve_num`
//! live grants. A grant is an ordinary serve under a dynamic id, marked as
//! a grant, and withdrawn after `unserve_expire` seconds if never used, or
//! `unserve_linger` seconds after its last connection closed. The asker
//! maps the granted id onto a local port; that mapping is removed when the
//! grant is withdrawn.
use proto::message::{Request, Response, VnetMsg};
use proto::text::Escaped;
use proto::{AskId, Refusal, RefusalCode, ServeId, VnetId};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tracing::info;

use crate::config::{ServeConfig, UseConfig};
use crate::manage::UseOpened;
use crate::{Command, ServeStatus, Shared, UseStatus, VnetError, VnetHandle};

/// How long the granting vnet tries to reach the service before refusing.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// Whether `ip` names this host's loopback.
pub fn is_loopback(ip: &str) -> bool {
    ip.eq_ignore_ascii_case("localhost") || ip.parse::<IpAddr>().is_ok_and(|a| a.is_loopback())
}

/// At most `max` bytes of `text`, cut at a character boundary.
fn shortened(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Handles an ask from vnet `from`: decides, registers the grant, and
/// answers through the route.
pub(crate) fn on_ask(
    shared: &Arc<Shared>,
    ask: AskId,
    from: VnetId,
    from_name: String,
    ip: String,
    port: u16,
) {
    let tracker = shared.tracker.clone();
    let shared = shared.clone();
    let task = async move {
        let result = grant(&shared, from, &from_name, &ip, port).await;
        let (from_name, ip) = (Escaped(&from_name), Escaped(&ip));
        match &result {
            Ok(id) => info!(%from, %from_name, %ip, port, serve = %id, "unserve granted"),
            Err(reason) => info!(%from, %from_name, %ip, port, %reason, "unserve refused"),
        }
        let answer = VnetMsg::UnserveAnswer { ask, result };
        let _ = shared.commands.send(Command::Send(answer)).await;
    };
    tracker.spawn(task);
}

async fn grant(
    shared: &Arc<Shared>,
    from: VnetId,
    from_name: &str,
    ip: &str,
    port: u16,
) -> Result<ServeId, Refusal> {
    let not_allowed = |text: String| Refusal::new(RefusalCode::NotAllowed, text);
    let settings = shared.settings().vnet;
    let me = shared
        .status
        .borrow()
        .vnet_id
        .map_or_else(|| "this vnet".to_string(), |id| format!("vnet {id}"));
    if !settings.allow_unserve {
        return Err(not_allowed(format!(
            "{me} does not allow unserve (allow_unserve=false)"
        )));
    }
    if !settings.unserve_remote && !is_loopback(ip) {
        return Err(not_allowed(format!(
            "{me} grants only loopback addresses, not {} (unserve_remote=false)",
            Escaped(ip)
        )));
    }
    if port == 0 || !proto::ini::is_host(ip) {
        return Err(Refusal::new(
            RefusalCode::Protocol,
            format!("{}:{port} is not a valid address", Escaped(ip)),
        ));
    }
    let key = format!("unserve-{ip}-{port}");
    let config = ServeConfig {
        key: key.clone(),
        name: "unserve".into(),
        serve_id: None,
        ip: ip.to_string(),
        port,
        info: format!("granted to vnet {from} ({})", shortened(from_name, 200)),
        active: false,
    };
    let mut serve = ServeStatus::new(config);
    serve.grant = Some(format!("vnet {from} ({})", shortened(from_name, 200)));
    let traffic = serve.traffic.clone();
    // Count and reserve in one step, so concurrent asks cannot all pass
    // the count while the first one probes.
    let mut outcome = Err(not_allowed(String::new()));
    shared.status.send_if_modified(|s| {
        if let Some(existing) = s.serve_id(&key) {
            outcome = Ok(Some(existing));
            return false;
        }
        if s.serves.contains_key(&key) {
            outcome = Err(Refusal::new(
                RefusalCode::Busy,
                format!(
                    "{ip}:{port} is being granted already, or is a serve of {me}; \
                     ask again shortly"
                ),
            ));
            return false;
        }
        let live = s.serves.values().filter(|s| s.grant.is_some()).count();
        if live >= settings.unserve_num as usize {
            outcome = Err(Refusal::new(
                RefusalCode::Limit,
                format!(
                    "{me} already holds {live} grant(s) (unserve_num={})",
                    settings.unserve_num
                ),
            ));
            return false;
        }
        s.serves.insert(key.clone(), serve);
        outcome = Ok(None);
        true
    });
    if let Some(existing) = outcome? {
        // The same service asked for again: same id, and its expiry
        // starts over.
        if let Some(renew) = shared.grants().get(&key) {
            renew.notify_one();
        }
        return Ok(existing);
    }
    let reachable = match tokio::time::timeout(PROBE_TIMEOUT, TcpStream::connect((ip, port))).await
    {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(err)) => Err(format!("nothing answers at {ip}:{port} on {me}: {err}")),
        Err(_) => Err(format!("{ip}:{port} on {me} did not answer in time")),
    }
    .map_err(|text| Refusal::new(RefusalCode::Unreachable, text));
    let handle = VnetHandle::from_shared(shared.clone());
    if let Err(reason) = reachable {
        let _ = handle.serve_delete(&key).await;
        return Err(reason);
    }
    let id = match handle.serve_open(&key).await {
        Ok(id) => id,
        Err(err) => {
            let _ = handle.serve_delete(&key).await;
            return Err(match err {
                VnetError::Refused(refusal) => refusal,
                other => Refusal::new(RefusalCode::Other, other.to_string()),
            });
        }
    };
    let expire = Duration::from_secs(settings.unserve_expire);
    let linger = Duration::from_secs(settings.unserve_linger);
    let renewed = Arc::new(Notify::new());
    shared.grants().insert(key.clone(), renewed.clone());
    shared.tracker.spawn(expire_when_idle(
        handle, key, traffic, renewed, expire, linger,
    ));
    Ok(id)
}

/// Withdraws the grant `key` after `expire` unused, or `linger` after its
/// last connection closed. Asking for the grant again starts the clock
/// over, as for a new one.
async fn expire_when_idle(
    handle: VnetHandle,
    key: String,
    traffic: Arc<crate::Traffic>,
    renewed: Arc<Notify>,
    expire: Duration,
    linger: Duration,
) {
    let shutdown = handle.shared().shutdown.clone();
    let mut connections = traffic.watch_connections();
    // Used once any connection opened since the grant (or its renewal).
    let mut since = traffic.opened();
    let used = loop {
        if *connections.borrow_and_update() > 0 {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                changed = connections.changed() => if changed.is_err() { return },
            }
            continue;
        }
        let used = traffic.opened() > since;
        let idle = if used { linger } else { expire };
        tokio::select! {
            _ = shutdown.cancelled() => return,
            changed = connections.changed() => if changed.is_err() { return },
            _ = renewed.notified() => since = traffic.opened(),
            _ = tokio::time::sleep(idle) => break used,
        }
    };
    {
        // A grant deleted by hand and granted anew has a new entry: that
        // one is not ours to withdraw.
        let mut grants = handle.shared().grants();
        if !grants.get(&key).is_some_and(|g| Arc::ptr_eq(g, &renewed)) {
            return;
        }
        grants.remove(&key);
    }
    // Deleted by hand meanwhile: nothing left to withdraw.
    if handle
        .status()
        .serves
        .get(&key)
        .is_some_and(|s| s.grant.is_some())
    {
        let why = if used {
            "last connection closed"
        } else {
            "never used"
        };
        info!(grant = %key, after = ?if used { linger } else { expire }, why, "grant withdrawn");
        let _ = handle.serve_delete(&key).await;
    }
}

impl VnetHandle {
    pub(crate) fn from_shared(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    /// Asks vnet `vnet_id` of our group for a grant to its unregistered
    /// service at `ip:port`; returns the serve id it was registered under.
    ///
    /// # Errors
    /// Not connected, no such vnet, or refused by one of its rules (the
    /// message names the rule).
    pub async fn unserve(
        &self,
        vnet_id: VnetId,
        ip: &str,
        port: u16,
    ) -> Result<ServeId, VnetError> {
        let request = Request::Unserve {
            vnet_id,
            ip: ip.to_string(),
            port,
        };
        match self.request(request).await? {
            Response::Unserved { serve_id } => Ok(serve_id),
            other => Err(VnetError::Protocol(format!("unexpected answer {other:?}"))),
        }
    }

    /// Maps serve `serve_id`, granted by vnet `from`, onto a local
    /// address; the mapping is removed when the grant is withdrawn.
    /// Returns the use's key and how it opened.
    ///
    /// # Errors
    /// The grant is gone already (withdrawn while the user chose a port,
    /// say), or the port cannot be bound.
    pub async fn unserve_use(
        &self,
        serve_id: ServeId,
        from: VnetId,
        ip: IpAddr,
        port: u16,
    ) -> Result<(String, UseOpened), VnetError> {
        let granted = self
            .shared()
            .available
            .borrow()
            .get(&serve_id)
            .is_some_and(|e| e.vnet_id == from);
        if !granted {
            return Err(VnetError::Invalid(format!(
                "vnet {from} no longer serves {serve_id}: the grant was withdrawn; ask again"
            )));
        }
        let key = format!("unserve-{serve_id}");
        let config = UseConfig {
            key: key.clone(),
            serve_id: Some(serve_id),
            ip,
            port: Some(port),
            active: true,
        };
        let mut use_ = UseStatus::new(config);
        use_.grant = Some(from);
        if self.status().uses.contains_key(&key) {
            self.use_delete(&key).await?;
        }
        self.use_insert(use_)?;
        match self.use_open(&key).await {
            Ok(opened) => Ok((key, opened)),
            Err(err) => {
                let _ = self.use_delete(&key).await;
                Err(err)
            }
        }
    }
}
