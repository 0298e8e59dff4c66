//! [`VnetHandle`]: the whole API of a running vnet, for the shell, tests
//! and `main`. It reads the model, sends requests through the control
//! task, and changes serves and uses through their subsystems (`serves`,
//! `uses`, `reload`); it holds no state of its own. Cheap to clone.
use proto::message::{Request, Response, ServeEntry, VnetEntry};
use proto::{ServeId, VnetId};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{RouteLink, ServeConfig, UseConfig, VnetConfig, VnetOptions};
use crate::control::command::ControlSender;
use crate::current::Current;
use crate::error::VnetError;
use crate::model::{DirectState, GroupServes, Model, Status};
use crate::reload::{self, ReloadSummary};
use crate::serves::Serves;
use crate::uses::{UseOpened, Uses};

/// How long [`VnetHandle::stopped`] waits for tasks after shutdown.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Talks to a running vnet. Cheap to clone.
#[derive(Clone)]
pub struct VnetHandle {
    pub(crate) model: Model,
    /// Kept here too, so waiting on it never outlives its sender.
    pub(crate) group: watch::Sender<GroupServes>,
    pub(crate) current: Current,
    pub(crate) control: ControlSender,
    pub(crate) serves: Serves,
    pub(crate) uses: Uses,
    pub(crate) shutdown: CancellationToken,
    pub(crate) tracker: TaskTracker,
    /// Pairing with other vnets, with `secret=`.
    pub(crate) e2e: Option<crate::e2e::E2e>,
}

fn unexpected(answer: Response) -> VnetError {
    VnetError::Protocol(format!("unexpected answer {answer:?}"))
}

impl VnetHandle {
    /// The current state.
    pub fn status(&self) -> Status {
        self.model.borrow().clone()
    }

    /// Waits until `ready` holds for the state, and returns that state.
    /// Wrap it in a timeout: it waits as long as it takes.
    pub async fn wait_for(&self, mut ready: impl FnMut(&Status) -> bool) -> Status {
        let mut rx = self.model.subscribe();
        let seen = rx
            .wait_for(|s| ready(s))
            .await
            .expect("the handle keeps the sender alive");
        seen.clone()
    }

    /// Waits until the group's serves, as the route last announced them
    /// to this vnet, satisfy `ready`; returns them then.
    pub async fn wait_for_serves(
        &self,
        mut ready: impl FnMut(&BTreeMap<ServeId, ServeEntry>) -> bool,
    ) -> BTreeMap<ServeId, ServeEntry> {
        let mut rx = self.group.subscribe();
        let seen = rx
            .wait_for(|a| ready(a))
            .await
            .expect("the handle keeps the sender alive");
        (**seen).clone()
    }

    /// This vnet's options and route, as in force now.
    pub fn settings(&self) -> (VnetOptions, RouteLink) {
        let s = self.current.get();
        (s.options, s.route)
    }

    /// Sends a request to the route and waits for the answer.
    ///
    /// # Errors
    /// Not connected, refused, timed out, or stopping.
    pub async fn request(&self, request: Request) -> Result<Response, VnetError> {
        self.control.request(request).await
    }

    /// Round trip to the route over the control connection.
    ///
    /// # Errors
    /// As [`VnetHandle::request`].
    pub async fn ping(&self) -> Result<Duration, VnetError> {
        let sent = Instant::now();
        self.request(Request::Ping).await?;
        Ok(sent.elapsed())
    }

    /// The group's serves, as the route lists them.
    ///
    /// # Errors
    /// As [`VnetHandle::request`].
    pub async fn serves(&self) -> Result<Vec<ServeEntry>, VnetError> {
        match self.request(Request::ListServes).await? {
            Response::Serves(list) => Ok(list),
            other => Err(unexpected(other)),
        }
    }

    /// The group's vnets, as the route lists them.
    ///
    /// # Errors
    /// As [`VnetHandle::request`].
    pub async fn vnets(&self) -> Result<Vec<VnetEntry>, VnetError> {
        match self.request(Request::ListVnets).await? {
            Response::Vnets(list) => Ok(list),
            other => Err(unexpected(other)),
        }
    }

    /// How end to end stands with vnet `peer`: `off` (no `secret=`
    /// here), `yes` (paired: streams with it are sealed), `no: why`
    /// (refused), `-` (not paired yet: it pairs with a first stream).
    pub fn end_to_end(&self, peer: VnetId) -> String {
        self.e2e
            .as_ref()
            .map_or_else(|| "off".into(), |e2e| e2e.standing(peer))
    }

    /// Where the direct link with vnet `peer` stands, for `show vnets`:
    /// `up RTT`, `trying`, `no: why`, `off` (no direct path here) or `-`
    /// (never needed).
    pub fn direct_with(&self, peer: VnetId) -> String {
        let status = self.model.borrow();
        if status.direct_socket.is_none() {
            return "off".into();
        }
        match status.direct.get(&peer) {
            None => "-".into(),
            Some(DirectState::Up { rtt, .. }) => {
                format!("up {:.1}ms", rtt.as_secs_f64() * 1000.0)
            }
            Some(DirectState::Asking | DirectState::Trying) => "trying".into(),
            Some(DirectState::Relay(why)) => format!("no: {why}"),
        }
    }

    /// The path each use's new streams take now, by use key: a direct
    /// link (to this address) or the relay.
    pub fn use_paths(&self) -> BTreeMap<String, Option<SocketAddr>> {
        let status = self.model.borrow();
        let group = self.group.borrow();
        let vnet_default = self.current.read(|c| c.options.direct);
        let direct_here = status.direct_socket.is_some();
        status
            .uses
            .iter()
            .map(|(key, u)| {
                let allowed = direct_here
                    && u.config.direct.unwrap_or(vnet_default) == crate::config::DirectMode::Auto;
                let serving = u.config.serve_id.and_then(|id| group.get(&id));
                let link = serving.and_then(|e| status.direct.get(&e.vnet_id));
                let addr = match link {
                    Some(DirectState::Up { addr, .. }) if allowed => Some(*addr),
                    _ => None,
                };
                (key.clone(), addr)
            })
            .collect()
    }

    /// Asks every task to stop.
    pub fn shutdown(&self) {
        self.shutdown.cancel();
    }

    /// Waits, after [`VnetHandle::shutdown`], until every task has ended
    /// (or a drain timeout passed). Returns whether all ended.
    pub async fn stopped(&self) -> bool {
        self.tracker.close();
        tokio::time::timeout(DRAIN_TIMEOUT, self.tracker.wait())
            .await
            .is_ok()
    }

    /// Adds a serve; registers it if `config.active` (`serve run`), else
    /// keeps it inactive (`serve new`). Returns the id when registered.
    ///
    /// # Errors
    /// The name is taken, or the route refused the registration (the serve
    /// then stays, refused, as `show serve` tells).
    pub async fn serve_add(&self, config: ServeConfig) -> Result<Option<ServeId>, VnetError> {
        self.serves.add(config).await
    }

    /// Activates a serve and registers it (`serve open`).
    ///
    /// # Errors
    /// Unknown name, not connected (it registers when the route is back),
    /// or refused.
    pub async fn serve_open(&self, key: &str) -> Result<ServeId, VnetError> {
        self.serves.open(key).await
    }

    /// Withdraws a serve and marks it inactive (`serve close`); its open
    /// connections are closed.
    ///
    /// # Errors
    /// Unknown name.
    pub async fn serve_close(&self, key: &str) -> Result<(), VnetError> {
        self.serves.close(key).await
    }

    /// Withdraws and forgets a serve (`serve delete`).
    ///
    /// # Errors
    /// Unknown name.
    pub async fn serve_delete(&self, key: &str) -> Result<(), VnetError> {
        self.serves.delete(key).await
    }

    /// Adds a use; opens it if `config.active` (`use run`), else keeps it
    /// off (`use new`).
    ///
    /// # Errors
    /// The name is taken, the use has no serve id, or its port is taken.
    pub async fn use_add(&self, config: UseConfig) -> Result<Option<UseOpened>, VnetError> {
        self.uses.add(config).await
    }

    /// Activates a use and starts listening (`use open`); returns once the
    /// port is bound, or at once if the port must come from the serve.
    ///
    /// # Errors
    /// Unknown name, no serve id, or the port cannot be bound (the use is
    /// then left off).
    pub async fn use_open(&self, key: &str) -> Result<UseOpened, VnetError> {
        self.uses.open(key).await
    }

    /// Stops listening and marks the use inactive (`use close`); its open
    /// connections are closed. Returns once the port is released.
    ///
    /// # Errors
    /// Unknown name.
    pub async fn use_close(&self, key: &str) -> Result<(), VnetError> {
        self.uses.close(key).await
    }

    /// Stops and forgets a use (`use delete`).
    ///
    /// # Errors
    /// Unknown name.
    pub async fn use_delete(&self, key: &str) -> Result<(), VnetError> {
        self.uses.delete(key).await
    }

    /// Applies `config` as a difference: serves and uses whose settings are
    /// unchanged keep running with their connections; removed ones stop,
    /// added ones start, changed ones restart. A changed `[route]`, name or
    /// group reconnects. Grants (unserve) are left alone.
    ///
    /// The config is already validated, so this cannot fail half-way on
    /// bad input; refusals from the route show in the status as usual.
    pub async fn reload(&self, config: VnetConfig) -> ReloadSummary {
        reload::apply(
            &self.current,
            &self.model,
            &self.serves,
            &self.uses,
            &self.control,
            config,
        )
        .await
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
        let asked = self.ask_unserve(vnet_id, ip, port).await;
        match (&asked, &self.e2e) {
            // It no longer holds our key (it restarted): pair again, once.
            (Err(VnetError::Refused(refusal)), Some(e2e))
                if refusal.text.contains(crate::e2e::UNKNOWN_KEY) =>
            {
                e2e.forget(vnet_id);
                self.ask_unserve(vnet_id, ip, port).await
            }
            _ => asked,
        }
    }

    async fn ask_unserve(
        &self,
        vnet_id: VnetId,
        ip: &str,
        port: u16,
    ) -> Result<ServeId, VnetError> {
        // With a secret, the ask is proved with our pair key, so the
        // route cannot ask in our name.
        let proof = match &self.e2e {
            None => None,
            Some(e2e) => {
                let vnets = self.vnets().await?;
                let name = vnets
                    .iter()
                    .find(|v| v.vnet_id == vnet_id)
                    .map(|v| v.name.clone())
                    .ok_or_else(|| {
                        VnetError::Invalid(format!("no vnet {vnet_id} in this group"))
                    })?;
                let proof = e2e.prove_ask(vnet_id, &name, ip, port).await;
                Some(proof.map_err(VnetError::Invalid)?)
            }
        };
        let request = Request::Unserve {
            vnet_id,
            ip: ip.to_string(),
            port,
            proof,
        };
        match self.request(request).await? {
            Response::Unserved { serve_id } => Ok(serve_id),
            other => Err(unexpected(other)),
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
        self.uses.map_grant(serve_id, from, ip, port).await
    }
}
