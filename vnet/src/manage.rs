//! Changing a running vnet: serves and uses are created, opened, closed
//! and deleted here (the shell's `serve` and `use` commands), and a
//! reloaded config is applied as a difference, leaving untouched whatever
//! did not change.
use proto::ServeId;
use std::net::SocketAddr;
use tokio::sync::oneshot;
use tracing::info;

use crate::config::{ServeConfig, UseConfig};
use crate::{
    use_map, Command, ServeState, ServeStatus, Settings, UseStatus, VnetConfig, VnetError,
    VnetHandle, REQUEST_TIMEOUT,
};

/// How a use stands right after it was opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UseOpened {
    /// Listening here; `open` tells whether the serve is available.
    Listening {
        /// The bound address.
        local: SocketAddr,
        /// Whether connections are carried now (else standby).
        open: bool,
    },
    /// Its port comes from the serve, which is not registered yet.
    WaitingForServe,
}

/// What a reload did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadSummary {
    /// Keys started anew.
    pub added: Vec<String>,
    /// Keys stopped and removed.
    pub removed: Vec<String>,
    /// Keys restarted with new settings.
    pub changed: Vec<String>,
    /// Whether the control connection was re-established.
    pub reconnected: bool,
}

fn unknown(kind: &str, key: &str) -> VnetError {
    VnetError::Invalid(format!("no {kind} named {key:?}"))
}

impl VnetHandle {
    /// Adds a serve; registers it if `config.active` (`serve run`), else
    /// keeps it inactive (`serve new`). Returns the id when registered.
    ///
    /// # Errors
    /// The name is taken, or the route refused the registration (the serve
    /// then stays, refused, as `show serve` tells).
    pub async fn serve_add(&self, config: ServeConfig) -> Result<Option<ServeId>, VnetError> {
        self.serve_insert(ServeStatus::new(config.clone()))?;
        if config.active {
            self.register(&config.key).await.map(Some)
        } else {
            Ok(None)
        }
    }

    pub(crate) fn serve_insert(&self, serve: ServeStatus) -> Result<(), VnetError> {
        let mut taken = false;
        self.shared().status.send_if_modified(|s| {
            if s.serves.contains_key(&serve.config.key) {
                taken = true;
                return false;
            }
            s.serves.insert(serve.config.key.clone(), serve.clone());
            true
        });
        if taken {
            return Err(VnetError::Invalid(format!(
                "a serve named {:?} exists already",
                serve.config.key
            )));
        }
        Ok(())
    }

    /// Activates a serve and registers it (`serve open`).
    ///
    /// # Errors
    /// Unknown name, not connected (it registers when the route is back),
    /// or refused.
    pub async fn serve_open(&self, key: &str) -> Result<ServeId, VnetError> {
        let mut found = false;
        self.shared().status.send_modify(|s| {
            if let Some(serve) = s.serves.get_mut(key) {
                found = true;
                if !matches!(serve.state, ServeState::Registered(_)) {
                    serve.config.active = true;
                    serve.state = ServeState::Pending;
                }
            }
        });
        if !found {
            return Err(unknown("serve", key));
        }
        if let Some(id) = self.status().serve_id(key) {
            return Ok(id);
        }
        self.register(key).await
    }

    async fn register(&self, key: &str) -> Result<ServeId, VnetError> {
        let (tx, rx) = oneshot::channel();
        let shared = self.shared();
        shared
            .commands
            .send(Command::Register(key.to_string(), Some(tx)))
            .await
            .map_err(|_| VnetError::Stopped)?;
        tokio::time::timeout(REQUEST_TIMEOUT, rx)
            .await
            .map_err(|_| VnetError::Timeout(REQUEST_TIMEOUT))?
            .map_err(|_| VnetError::Stopped)?
    }

    /// Withdraws a serve and marks it inactive (`serve close`); its open
    /// connections are closed.
    ///
    /// # Errors
    /// Unknown name.
    pub async fn serve_close(&self, key: &str) -> Result<(), VnetError> {
        let shared = self.shared();
        let mut registered = None;
        let mut found = false;
        shared.status.send_modify(|s| {
            if let Some(serve) = s.serves.get_mut(key) {
                found = true;
                if let ServeState::Registered(id) = serve.state {
                    registered = Some(id);
                }
                serve.config.active = false;
                serve.state = ServeState::Inactive;
            }
        });
        if !found {
            return Err(unknown("serve", key));
        }
        if let Some(id) = registered {
            if let Some(local) = shared.local().remove(&id) {
                local.cancel.cancel();
            }
            // Awaited, not tried: a full queue must not lose the withdrawal.
            let _ = shared.commands.send(Command::Unregister(id)).await;
            info!(serve = %key, %id, "serve closed");
        }
        Ok(())
    }

    /// Withdraws and forgets a serve (`serve delete`).
    ///
    /// # Errors
    /// Unknown name.
    pub async fn serve_delete(&self, key: &str) -> Result<(), VnetError> {
        self.serve_close(key).await?;
        self.shared().status.send_modify(|s| {
            s.serves.remove(key);
        });
        Ok(())
    }

    /// Adds a use; opens it if `config.active` (`use run`), else keeps it
    /// off (`use new`).
    ///
    /// # Errors
    /// The name is taken, the use has no serve id, or its port is taken.
    pub async fn use_add(&self, config: UseConfig) -> Result<Option<UseOpened>, VnetError> {
        self.use_insert(UseStatus::new(config.clone()))?;
        if config.active {
            self.use_open(&config.key).await.map(Some)
        } else {
            Ok(None)
        }
    }

    pub(crate) fn use_insert(&self, use_: UseStatus) -> Result<(), VnetError> {
        let key = use_.config.key.clone();
        if use_.config.serve_id.is_none() && use_.config.active {
            return Err(VnetError::Invalid(format!(
                "use {key:?} needs a serveid (1-999)"
            )));
        }
        let mut taken = false;
        self.shared().status.send_if_modified(|s| {
            if s.uses.contains_key(&key) {
                taken = true;
                return false;
            }
            s.uses.insert(key.clone(), use_.clone());
            true
        });
        if taken {
            return Err(VnetError::Invalid(format!(
                "a use named {key:?} exists already"
            )));
        }
        Ok(())
    }

    /// Activates a use and starts listening (`use open`); returns once the
    /// port is bound, or at once if the port must come from the serve.
    ///
    /// # Errors
    /// Unknown name, no serve id, or the port cannot be bound (the use is
    /// then left off).
    pub async fn use_open(&self, key: &str) -> Result<UseOpened, VnetError> {
        let shared = self.shared();
        let mut serve_id = None;
        let mut known_port = false;
        shared.status.send_modify(|s| {
            if let Some(u) = s.uses.get_mut(key) {
                u.config.active = true;
                u.error = None;
                serve_id = u.config.serve_id;
                known_port = u.config.port.is_some();
            }
        });
        if !self.status().uses.contains_key(key) {
            return Err(unknown("use", key));
        }
        if serve_id.is_none() {
            return Err(VnetError::Invalid(format!(
                "use {key:?} needs a serveid (1-999)"
            )));
        }
        use_map::spawn(shared, key);
        let available = shared
            .available
            .borrow()
            .contains_key(&serve_id.expect("checked"));
        if !known_port && !available {
            return Ok(UseOpened::WaitingForServe);
        }
        let settled = tokio::time::timeout(
            REQUEST_TIMEOUT,
            self.wait_for(|s| {
                s.uses
                    .get(key)
                    .is_none_or(|u| u.local.is_some() || u.error.is_some())
            }),
        )
        .await
        .map_err(|_| VnetError::Timeout(REQUEST_TIMEOUT))?;
        match settled.uses.get(key) {
            None => Err(unknown("use", key)),
            Some(UseStatus {
                error: Some(reason),
                ..
            }) => {
                let reason = reason.clone();
                self.use_close(key).await?;
                Err(VnetError::Invalid(reason))
            }
            Some(u) => Ok(UseOpened::Listening {
                local: u.local.expect("settled"),
                open: u.open,
            }),
        }
    }

    /// Stops listening and marks the use inactive (`use close`); its open
    /// connections are closed. Returns once the port is released.
    ///
    /// # Errors
    /// Unknown name.
    pub async fn use_close(&self, key: &str) -> Result<(), VnetError> {
        let shared = self.shared();
        if !self.status().uses.contains_key(key) {
            return Err(unknown("use", key));
        }
        if let Some(done) = use_map::stop(shared, key) {
            let _ = tokio::time::timeout(REQUEST_TIMEOUT, done).await;
        }
        shared.status.send_modify(|s| {
            if let Some(u) = s.uses.get_mut(key) {
                u.config.active = false;
                u.local = None;
                u.open = false;
                u.error = None;
            }
        });
        Ok(())
    }

    /// Stops and forgets a use (`use delete`).
    ///
    /// # Errors
    /// Unknown name.
    pub async fn use_delete(&self, key: &str) -> Result<(), VnetError> {
        self.use_close(key).await?;
        self.shared().status.send_modify(|s| {
            s.uses.remove(key);
        });
        Ok(())
    }

    /// Applies `config` as a difference: serves and uses whose settings are
    /// unchanged keep running with their connections; removed ones stop,
    /// added ones start, changed ones restart. A changed `[route]`, name or
    /// group reconnects. Grants (unserve) are left alone.
    ///
    /// The config is already validated, so this cannot fail half-way on
    /// bad input; refusals from the route show in the status as usual.
    pub async fn reload(&self, config: VnetConfig) -> ReloadSummary {
        let shared = self.shared();
        let mut summary = ReloadSummary::default();
        let old = shared.settings();
        let reconnect = old.route != config.route
            || old.vnet.name != config.vnet.name
            || old.vnet.group != config.vnet.group;
        shared.set_settings(Settings {
            vnet: config.vnet.clone(),
            route: config.route.clone(),
            tls: config.route.tls.as_ref().map(crate::data::TlsClient::new),
        });
        let status = self.status();

        let mut wanted_serves = Vec::new();
        for serve in &config.serves {
            let mut serve = serve.clone();
            serve.active = config.starts_serve(&serve);
            match status.serves.get(&serve.key) {
                Some(now) if now.config == serve => {}
                Some(_) => {
                    let _ = self.serve_delete(&serve.key).await;
                    summary.changed.push(format!("serve.{}", serve.key));
                    wanted_serves.push(serve);
                }
                None => {
                    summary.added.push(format!("serve.{}", serve.key));
                    wanted_serves.push(serve);
                }
            }
        }
        for (key, now) in &status.serves {
            if now.grant.is_none() && !config.serves.iter().any(|s| &s.key == key) {
                let _ = self.serve_delete(key).await;
                summary.removed.push(format!("serve.{key}"));
            }
        }

        let mut wanted_uses = Vec::new();
        for use_ in &config.uses {
            let mut use_ = use_.clone();
            use_.active = config.starts_use(&use_);
            match status.uses.get(&use_.key) {
                Some(now) if now.config == use_ => {}
                Some(_) => {
                    let _ = self.use_delete(&use_.key).await;
                    summary.changed.push(format!("use.{}", use_.key));
                    wanted_uses.push(use_);
                }
                None => {
                    summary.added.push(format!("use.{}", use_.key));
                    wanted_uses.push(use_);
                }
            }
        }
        for (key, now) in &status.uses {
            if now.grant.is_none() && !config.uses.iter().any(|u| &u.key == key) {
                let _ = self.use_delete(key).await;
                summary.removed.push(format!("use.{key}"));
            }
        }

        // New serves enter the model first. A reconnect then registers
        // every active serve by itself; without one, each new serve is
        // registered here. Never both, or a serve would register twice.
        let mut to_register = Vec::new();
        for serve in wanted_serves {
            if self.serve_insert(ServeStatus::new(serve.clone())).is_ok() && serve.active {
                to_register.push(serve.key);
            }
        }
        if reconnect {
            let _ = shared.commands.send(Command::Reconnect).await;
            summary.reconnected = true;
        } else {
            for key in to_register {
                let _ = shared.commands.send(Command::Register(key, None)).await;
            }
        }
        // Uses start after the old listeners were released (deletes above
        // await that), so a use that moved keeps its port. Errors show in
        // the status.
        for use_ in wanted_uses {
            let key = use_.key.clone();
            let active = use_.active && use_.serve_id.is_some();
            if self.use_insert(UseStatus::new(use_)).is_ok() && active {
                let _ = self.use_open(&key).await;
            }
        }
        info!(added = ?summary.added, removed = ?summary.removed, changed = ?summary.changed, reconnected = summary.reconnected, "config reloaded");
        summary
    }
}
