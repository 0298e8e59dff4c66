//! Our uses: a local port each, carried to a remote serve. This holds the
//! table of running use tasks and the actions on uses (add, open, close,
//! delete, and mapping a serve granted to us by unserve); each use's task
//! is a [`listener::Listener`]. The model holds each use's config and
//! state; the task reports its address, standby and errors there.
pub(crate) mod listener;

use proto::{ServeId, VnetId};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::{oneshot, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::config::UseConfig;
use crate::control::command::REQUEST_TIMEOUT;
use crate::current::Current;
use crate::error::VnetError;
use crate::model::{GroupServes, Model, UseStatus};
use crate::serves::unknown;
use crate::visiting::Visiting;
use listener::{Exit, Listener};

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

/// A running use, as its owner stops it.
struct UseTask {
    cancel: CancellationToken,
    /// Resolves (with an error) once the task has ended and its listener
    /// is closed.
    done: oneshot::Receiver<()>,
    /// Tells this task's entry from a later one under the same key.
    generation: u64,
}

static NEXT_GENERATION: AtomicU64 = AtomicU64::new(0);

/// Starts, stops and changes uses. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Uses {
    /// Running use tasks by key.
    tasks: Arc<Mutex<HashMap<String, UseTask>>>,
    model: Model,
    group: watch::Receiver<GroupServes>,
    visiting: Visiting,
    /// For `max_connections`.
    current: Current,
    tracker: TaskTracker,
    shutdown: CancellationToken,
}

fn needs_serve_id(key: &str) -> VnetError {
    VnetError::Invalid(format!("use {key:?} needs a serveid (1-999)"))
}

impl Uses {
    pub(crate) fn new(
        model: Model,
        group: watch::Receiver<GroupServes>,
        visiting: Visiting,
        current: Current,
        tracker: TaskTracker,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            tasks: Arc::default(),
            model,
            group,
            visiting,
            current,
            tracker,
            shutdown,
        }
    }

    fn tasks(&self) -> MutexGuard<'_, HashMap<String, UseTask>> {
        self.tasks.lock().expect("use tasks poisoned")
    }

    /// Starts the use `key` as the model describes it. Does nothing if it
    /// is running already or has no serve id.
    pub(crate) fn spawn(&self, key: &str) {
        let (config, traffic, grant) = {
            let status = self.model.borrow();
            let Some(u) = status.uses.get(key) else {
                return;
            };
            (u.config.clone(), u.traffic.clone(), u.grant)
        };
        let Some(serve_id) = config.serve_id else {
            return;
        };
        let cancel = self.shutdown.child_token();
        let (done_tx, done) = oneshot::channel();
        let generation = NEXT_GENERATION.fetch_add(1, Ordering::Relaxed);
        {
            let mut tasks = self.tasks();
            if tasks.contains_key(key) {
                return;
            }
            let task = UseTask {
                cancel: cancel.clone(),
                done,
                generation,
            };
            tasks.insert(key.to_string(), task);
        }
        let span = tracing::info_span!("use", name = %key, serve = %serve_id);
        let listener = Listener {
            key: key.to_string(),
            serve_id,
            cancel: cancel.clone(),
            traffic,
            grant,
            max_connections: self.current.read(|c| c.options.max_connections) as usize,
            direct: config
                .direct
                .unwrap_or(self.current.read(|c| c.options.direct))
                == crate::config::DirectMode::Auto,
            model: self.model.clone(),
            group: self.group.clone(),
            visiting: self.visiting.clone(),
            tracker: self.tracker.clone(),
        };
        let owner = self.clone();
        let key = key.to_string();
        let task = async move {
            let exit = listener.run(config.ip, config.port).await;
            // An ended task (a failed bind, say) must not block the next
            // `use open`; a newer task under the same key is not ours.
            let withdrawn = exit == Exit::Withdrawn && !cancel.is_cancelled();
            {
                let mut tasks = owner.tasks();
                if tasks.get(&key).is_some_and(|t| t.generation == generation) {
                    tasks.remove(&key);
                }
            }
            if let (Exit::Failed(reason), false) = (exit, cancel.is_cancelled()) {
                owner.model.send_modify(|s| {
                    if let Some(u) = s.uses.get_mut(&key) {
                        u.error = Some(reason);
                    }
                });
            }
            if withdrawn {
                // Nobody stopped us, so the use is still ours to remove.
                cancel.cancel();
                owner.model.send_modify(|s| {
                    s.uses.remove(&key);
                });
            }
            drop(done_tx);
        };
        self.tracker.spawn(task.instrument(span));
    }

    /// Stops the use `key`: its listener and connections close. Await the
    /// returned receiver to know the port is free again.
    fn stop(&self, key: &str) -> Option<oneshot::Receiver<()>> {
        let task = self.tasks().remove(key)?;
        task.cancel.cancel();
        Some(task.done)
    }

    /// Adds a use made in the shell; opens it if `config.active`.
    ///
    /// # Errors
    /// The name is taken, the use has no serve id, or its port is taken.
    pub(crate) async fn add(&self, config: UseConfig) -> Result<Option<UseOpened>, VnetError> {
        let use_ = UseStatus {
            from_shell: true,
            ..UseStatus::new(config.clone())
        };
        self.insert(use_)?;
        if config.active {
            self.open(&config.key).await.map(Some)
        } else {
            Ok(None)
        }
    }

    /// Puts a use into the model, unless its name is taken.
    ///
    /// # Errors
    /// The name is taken, or an active use has no serve id.
    pub(crate) fn insert(&self, use_: UseStatus) -> Result<(), VnetError> {
        let key = use_.config.key.clone();
        if use_.config.serve_id.is_none() && use_.config.active {
            return Err(needs_serve_id(&key));
        }
        let mut taken = false;
        self.model.send_if_modified(|s| {
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

    /// Activates a use and starts listening; returns once the port is
    /// bound, or at once if the port must come from the serve.
    ///
    /// # Errors
    /// Unknown name, no serve id, or the port cannot be bound (the use is
    /// then left off).
    pub(crate) async fn open(&self, key: &str) -> Result<UseOpened, VnetError> {
        let mut serve_id = None;
        let mut known_port = false;
        self.model.send_modify(|s| {
            if let Some(u) = s.uses.get_mut(key) {
                u.config.active = true;
                u.error = None;
                serve_id = u.config.serve_id;
                known_port = u.config.port.is_some();
            }
        });
        if !self.model.borrow().uses.contains_key(key) {
            return Err(unknown("use", key));
        }
        let Some(serve_id) = serve_id else {
            return Err(needs_serve_id(key));
        };
        self.spawn(key);
        let available = self.group.borrow().contains_key(&serve_id);
        if !known_port && !available {
            return Ok(UseOpened::WaitingForServe);
        }
        let mut status = self.model.subscribe();
        let settled = status.wait_for(|s| {
            s.uses
                .get(key)
                .is_none_or(|u| u.local.is_some() || u.error.is_some())
        });
        let settled = tokio::time::timeout(REQUEST_TIMEOUT, settled)
            .await
            .map_err(|_| VnetError::Timeout(REQUEST_TIMEOUT))?
            .expect("the uses keep the model's sender alive")
            .uses
            .get(key)
            .cloned();
        match settled {
            None => Err(unknown("use", key)),
            Some(UseStatus {
                error: Some(reason),
                ..
            }) => {
                self.close(key).await?;
                Err(VnetError::Invalid(reason))
            }
            Some(u) => Ok(UseOpened::Listening {
                local: u.local.expect("settled"),
                open: u.open,
            }),
        }
    }

    /// Stops listening and marks the use inactive; its open connections
    /// are closed. Returns once the port is released.
    ///
    /// # Errors
    /// Unknown name.
    pub(crate) async fn close(&self, key: &str) -> Result<(), VnetError> {
        if !self.model.borrow().uses.contains_key(key) {
            return Err(unknown("use", key));
        }
        if let Some(done) = self.stop(key) {
            let _ = tokio::time::timeout(REQUEST_TIMEOUT, done).await;
        }
        self.model.send_modify(|s| {
            if let Some(u) = s.uses.get_mut(key) {
                u.config.active = false;
                u.local = None;
                u.open = false;
                u.error = None;
            }
        });
        Ok(())
    }

    /// Stops and forgets a use.
    ///
    /// # Errors
    /// Unknown name.
    pub(crate) async fn delete(&self, key: &str) -> Result<(), VnetError> {
        self.close(key).await?;
        self.model.send_modify(|s| {
            s.uses.remove(key);
        });
        Ok(())
    }

    /// Maps serve `serve_id`, granted by vnet `from`, onto `ip:port` as
    /// the use `unserve-ID`, which goes when the grant is withdrawn.
    /// Returns the use's key and how it opened.
    ///
    /// # Errors
    /// The grant is gone already, or the port cannot be bound.
    pub(crate) async fn map_grant(
        &self,
        serve_id: ServeId,
        from: VnetId,
        ip: IpAddr,
        port: u16,
    ) -> Result<(String, UseOpened), VnetError> {
        let granted = self
            .group
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
            direct: None,
        };
        let mut use_ = UseStatus::new(config);
        use_.grant = Some(from);
        if self.model.borrow().uses.contains_key(&key) {
            self.delete(&key).await?;
        }
        self.insert(use_)?;
        match self.open(&key).await {
            Ok(opened) => Ok((key, opened)),
            Err(err) => {
                let _ = self.delete(&key).await;
                Err(err)
            }
        }
    }
}
