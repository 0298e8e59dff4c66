//! Our serves as the user and the grants change them: add, open
//! (register), close (withdraw, cut its streams) and delete. The model
//! holds each serve and its state; registering goes through the control
//! task, which records the outcome. This is the narrow handle the grants
//! act through; [`VnetHandle`] exposes the same actions.
//!
//! [`VnetHandle`]: crate::VnetHandle
use proto::ServeId;
use tracing::info;

use crate::config::ServeConfig;
use crate::control::command::ControlSender;
use crate::error::VnetError;
use crate::local::LocalServes;
use crate::model::{Model, ServeState, ServeStatus};
use crate::outcome;

/// The error for a name nobody knows.
pub(crate) fn unknown(kind: &str, key: &str) -> VnetError {
    VnetError::Invalid(format!("no {kind} named {key:?}"))
}

/// Changes our serves. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Serves {
    pub model: Model,
    /// Registered serves; closing one takes it out.
    pub local: LocalServes,
    pub control: ControlSender,
}

impl Serves {
    /// Adds a serve made in the shell; registers it if `config.active`.
    /// Returns the id when registered.
    ///
    /// # Errors
    /// The name is taken, or the registration failed (the serve then
    /// stays, as the status tells).
    pub(crate) async fn add(&self, config: ServeConfig) -> Result<Option<ServeId>, VnetError> {
        let serve = ServeStatus {
            from_shell: true,
            ..ServeStatus::new(config.clone())
        };
        self.insert(serve)?;
        if config.active {
            self.control.register(&config.key).await.map(Some)
        } else {
            Ok(None)
        }
    }

    /// Puts a serve into the model, unless its name is taken.
    ///
    /// # Errors
    /// The name is taken.
    pub(crate) fn insert(&self, serve: ServeStatus) -> Result<(), VnetError> {
        let mut taken = false;
        self.model.send_if_modified(|s| {
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

    /// Activates a serve and registers it.
    ///
    /// # Errors
    /// Unknown name, not connected (it registers when the route is back),
    /// or refused.
    pub(crate) async fn open(&self, key: &str) -> Result<ServeId, VnetError> {
        let mut found = false;
        let mut registered = None;
        self.model.send_modify(|s| {
            if let Some(serve) = s.serves.get_mut(key) {
                found = true;
                if !matches!(serve.state, ServeState::Registered(_)) {
                    serve.config.active = true;
                    serve.state = ServeState::Pending;
                }
            }
            registered = s.serve_id(key);
        });
        if !found {
            return Err(unknown("serve", key));
        }
        if let Some(id) = registered {
            return Ok(id);
        }
        self.control.register(key).await
    }

    /// Withdraws a serve and marks it inactive; its open connections are
    /// closed.
    ///
    /// # Errors
    /// Unknown name.
    pub(crate) async fn close(&self, key: &str) -> Result<(), VnetError> {
        let mut registered = None;
        let mut found = false;
        self.model.send_modify(|s| {
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
            self.local.close(id);
            self.control.unregister(id).await;
            info!(target: outcome::SERVE, serve = %key, %id, "serve closed");
        }
        Ok(())
    }

    /// Withdraws and forgets a serve.
    ///
    /// # Errors
    /// Unknown name.
    pub(crate) async fn delete(&self, key: &str) -> Result<(), VnetError> {
        self.close(key).await?;
        self.model.send_modify(|s| {
            s.serves.remove(key);
        });
        Ok(())
    }
}
