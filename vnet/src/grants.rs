//! Unserve grants: time-limited access to services this vnet has not
//! registered.
//!
//! The asking vnet sends `Unserve` through the route, whose `UnserveAsk`
//! the control task hands on here ([`run`]). This side decides by three
//! rules: `allow_unserve`, a loopback address unless `unserve_remote`, and
//! fewer than `unserve_num` live grants. A grant is an ordinary serve
//! under a dynamic id, marked as a grant, registered through [`Serves`],
//! and withdrawn after `unserve_expire` seconds if never used, or
//! `unserve_linger` seconds after its last connection closed. The answer
//! (the id, or a [`Refusal`] naming the rule) goes back on the control
//! connection. The asker's side, mapping the id onto a local port, is in
//! `uses`.
use proto::message::VnetMsg;
use proto::text::Escaped;
use proto::{Refusal, RefusalCode, ServeId, VnetId};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::info;

use crate::config::ServeConfig;
use crate::control::asks::UnserveAsk;
use crate::control::command::ControlSender;
use crate::current::Current;
use crate::e2e::E2e;
use crate::error::VnetError;
use crate::model::ServeStatus;
use crate::serves::Serves;
use crate::traffic::Traffic;

/// How long the granting vnet tries to reach a service on another host
/// before refusing.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// Whether a service listens at `ip:port` (`me` names this vnet in the
/// refusal). On this host's own addresses the socket table says, without
/// a connection: one would reach the service as a visit, and use up a
/// service that takes a single client. Elsewhere, a connection tells.
async fn reachable(ip: &str, port: u16, me: &str) -> Result<(), String> {
    let addrs: Vec<_> = tokio::net::lookup_host((ip, port))
        .await
        .map_err(|err| format!("{ip} does not resolve on {me}: {err}"))?
        .collect();
    let seen: Vec<_> = addrs.iter().map(|a| net::listen::listening(*a)).collect();
    if seen.contains(&Some(true)) {
        return Ok(());
    }
    if !seen.is_empty() && seen.iter().all(Option::is_some) {
        return Err(format!("nothing listens at {ip}:{port} on {me}"));
    }
    match tokio::time::timeout(PROBE_TIMEOUT, TcpStream::connect((ip, port))).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(err)) => Err(format!("nothing answers at {ip}:{port} on {me}: {err}")),
        Err(_) => Err(format!("{ip}:{port} on {me} did not answer in time")),
    }
}

/// Whether `ip` names this host's loopback.
pub(crate) fn is_loopback(ip: &str) -> bool {
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

/// The granting side. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Grants {
    /// Live grants by serve key: notified when a grant is asked for
    /// again, so its expiry starts over.
    renewals: Arc<Mutex<HashMap<String, Arc<Notify>>>>,
    /// Where grants are registered and withdrawn.
    serves: Serves,
    /// For the unserve options.
    current: Current,
    /// Where answers go.
    control: ControlSender,
    tracker: TaskTracker,
    shutdown: CancellationToken,
    /// With `secret=`: asks must be proved end to end.
    e2e: Option<E2e>,
}

/// Answers unserve asks handed on by the control task, until shutdown.
pub(crate) async fn run(grants: Grants, mut asks: mpsc::Receiver<UnserveAsk>) {
    loop {
        let ask = tokio::select! {
            _ = grants.shutdown.cancelled() => return,
            ask = asks.recv() => match ask {
                Some(ask) => ask,
                None => return,
            },
        };
        grants.on_ask(ask);
    }
}

impl Grants {
    pub(crate) fn new(
        serves: Serves,
        current: Current,
        control: ControlSender,
        tracker: TaskTracker,
        shutdown: CancellationToken,
        e2e: Option<E2e>,
    ) -> Self {
        Self {
            renewals: Arc::default(),
            serves,
            current,
            control,
            tracker,
            shutdown,
            e2e,
        }
    }

    fn renewals(&self) -> MutexGuard<'_, HashMap<String, Arc<Notify>>> {
        self.renewals.lock().expect("grants poisoned")
    }

    /// Spawns the task that decides an ask, registers the grant and
    /// answers through the route.
    fn on_ask(&self, ask: UnserveAsk) {
        let grants = self.clone();
        let task = async move {
            let UnserveAsk {
                ask,
                from,
                from_name,
                ip,
                port,
                proof,
            } = ask;
            let proved = match &grants.e2e {
                None => Ok(()),
                Some(e2e) => e2e
                    .check_ask(from, proof.as_ref(), &ip, port)
                    .await
                    .map_err(|why| {
                        Refusal::new(RefusalCode::NotAllowed, format!("unserve refused: {why}"))
                    }),
            };
            let result = match proved {
                Ok(()) => grants.grant(from, &from_name, &ip, port).await,
                Err(refusal) => Err(refusal),
            };
            let (from_name, ip) = (Escaped(&from_name), Escaped(&ip));
            match &result {
                Ok(id) => info!(%from, %from_name, %ip, port, serve = %id, "unserve granted"),
                Err(reason) => info!(%from, %from_name, %ip, port, %reason, "unserve refused"),
            }
            let answer = VnetMsg::UnserveAnswer { ask, result };
            grants.control.send(answer).await;
        };
        self.tracker.spawn(task);
    }

    async fn grant(
        &self,
        from: VnetId,
        from_name: &str,
        ip: &str,
        port: u16,
    ) -> Result<ServeId, Refusal> {
        let not_allowed = |text: String| Refusal::new(RefusalCode::NotAllowed, text);
        let settings = self.current.read(|c| c.options.clone());
        let me = self
            .serves
            .model
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
        if let Some(existing) = self.reserve(&key, serve, settings.unserve_num, &me)? {
            // The same service asked for again: same id, and its expiry
            // starts over.
            if let Some(renew) = self.renewals().get(&key) {
                renew.notify_one();
            }
            return Ok(existing);
        }
        let reachable = reachable(ip, port, &me)
            .await
            .map_err(|text| Refusal::new(RefusalCode::Unreachable, text));
        if let Err(reason) = reachable {
            let _ = self.serves.delete(&key).await;
            return Err(reason);
        }
        let id = match self.serves.open(&key).await {
            Ok(id) => id,
            Err(err) => {
                let _ = self.serves.delete(&key).await;
                return Err(match err {
                    VnetError::Refused(refusal) => refusal,
                    other => Refusal::new(RefusalCode::Other, other.to_string()),
                });
            }
        };
        let expire = Duration::from_secs(settings.unserve_expire);
        let linger = Duration::from_secs(settings.unserve_linger);
        let renewed = Arc::new(Notify::new());
        self.renewals().insert(key.clone(), renewed.clone());
        let expiry = self
            .clone()
            .expire_when_idle(key, traffic, renewed, expire, linger);
        self.tracker.spawn(expiry);
        Ok(id)
    }

    /// Counts the live grants and reserves `key` for `serve` in one step,
    /// so concurrent asks cannot all pass the count while the first one
    /// probes. `Some(id)` when `key` is granted already.
    fn reserve(
        &self,
        key: &str,
        serve: ServeStatus,
        unserve_num: u32,
        me: &str,
    ) -> Result<Option<ServeId>, Refusal> {
        let mut outcome = Ok(None);
        self.serves.model.send_if_modified(|s| {
            if let Some(existing) = s.serve_id(key) {
                outcome = Ok(Some(existing));
                return false;
            }
            if s.serves.contains_key(key) {
                let (ip, port) = (&serve.config.ip, serve.config.port);
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
            if live >= unserve_num as usize {
                outcome = Err(Refusal::new(
                    RefusalCode::Limit,
                    format!("{me} already holds {live} grant(s) (unserve_num={unserve_num})"),
                ));
                return false;
            }
            s.serves.insert(key.to_string(), serve);
            true
        });
        outcome
    }

    /// Withdraws the grant `key` after `expire` unused, or `linger` after
    /// its last connection closed. Asking for the grant again starts the
    /// clock over, as for a new one.
    async fn expire_when_idle(
        self,
        key: String,
        traffic: Arc<Traffic>,
        renewed: Arc<Notify>,
        expire: Duration,
        linger: Duration,
    ) {
        let shutdown = &self.shutdown;
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
            // A grant deleted by hand and granted anew has a new entry:
            // that one is not ours to withdraw.
            let mut renewals = self.renewals();
            if !renewals.get(&key).is_some_and(|g| Arc::ptr_eq(g, &renewed)) {
                return;
            }
            renewals.remove(&key);
        }
        // Deleted by hand meanwhile: nothing left to withdraw.
        let still_granted = self
            .serves
            .model
            .borrow()
            .serves
            .get(&key)
            .is_some_and(|s| s.grant.is_some());
        if still_granted {
            let why = if used {
                "last connection closed"
            } else {
                "never used"
            };
            let after = if used { linger } else { expire };
            info!(grant = %key, ?after, why, "grant withdrawn");
            let _ = self.serves.delete(&key).await;
        }
    }
}
