//! Our registered serves by id: where the serving side looks up the serve
//! a stream is for. The control task fills the table as the route
//! confirms registrations and empties it when a new session starts
//! (streams already flowing go on; between sessions, streams on direct
//! links still find their serves); closing a serve takes its entry out
//! and cuts its streams.
use proto::ServeId;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio_util::sync::CancellationToken;

use crate::config::ServeConfig;
use crate::traffic::Traffic;

/// A registered serve, as stream requests find it.
#[derive(Clone)]
pub(crate) struct LocalServe {
    pub config: ServeConfig,
    /// Cancelled when the serve is closed: its streams end.
    pub cancel: CancellationToken,
    pub traffic: Arc<Traffic>,
}

/// The table of registered serves. Cheap to clone; the lock is never
/// held across an await.
#[derive(Clone, Default)]
pub(crate) struct LocalServes(Arc<Mutex<HashMap<ServeId, LocalServe>>>);

impl LocalServes {
    fn lock(&self) -> MutexGuard<'_, HashMap<ServeId, LocalServe>> {
        self.0.lock().expect("local serves poisoned")
    }

    /// The serve registered under `id`, if any.
    pub(crate) fn get(&self, id: ServeId) -> Option<LocalServe> {
        self.lock().get(&id).cloned()
    }

    /// Records the serve the route registered under `id`.
    pub(crate) fn insert(&self, id: ServeId, serve: LocalServe) {
        self.lock().insert(id, serve);
    }

    /// Takes serve `id` out and cuts its streams.
    pub(crate) fn close(&self, id: ServeId) {
        let serve = self.lock().remove(&id);
        if let Some(serve) = serve {
            serve.cancel.cancel();
        }
    }

    /// Forgets every registration (a new session starts); streams go on.
    pub(crate) fn clear(&self) {
        self.lock().clear();
    }
}
