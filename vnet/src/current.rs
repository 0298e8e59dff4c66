//! The settings in force: what a reload may change. That is the `[vnet]`
//! options, the `[route]` link and the TLS client made from it. The
//! control task reads them on every connect; the serving side, the uses,
//! the spares and the grants read the options they apply. Only a reload
//! writes them.
use std::sync::{Arc, Mutex, MutexGuard};

use std::sync::Arc as Shared;

use crate::config::{RouteLink, ServeConfig, UseConfig, VnetConfig, VnetOptions};
use crate::link::TlsClient;

/// The settings in force at one moment.
#[derive(Clone)]
pub(crate) struct InForce {
    /// `[vnet]`.
    pub options: VnetOptions,
    /// `[route]`.
    pub route: RouteLink,
    /// Made from `route.tls` once, not on every connect.
    pub tls: Option<TlsClient>,
    /// The serves and uses of the file as last read, as it starts them: a
    /// reload applies what changed in the file since, nothing else.
    pub file: Shared<FileItems>,
}

/// The serves and uses a config file lists, as it starts them.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct FileItems {
    pub serves: Vec<ServeConfig>,
    pub uses: Vec<UseConfig>,
}

impl InForce {
    /// The settings of a config.
    pub(crate) fn new(config: &VnetConfig) -> Self {
        let route = config.route.clone();
        let tls = route.tls.as_ref().map(TlsClient::new);
        Self {
            options: config.vnet.clone(),
            route,
            tls,
            file: Shared::new(FileItems {
                serves: config.wanted_serves(),
                uses: config.wanted_uses(),
            }),
        }
    }
}

/// The cell holding the settings in force. Cheap to clone; the lock is
/// held only to copy or replace them.
#[derive(Clone)]
pub(crate) struct Current(Arc<Mutex<InForce>>);

impl Current {
    pub(crate) fn new(settings: InForce) -> Self {
        Self(Arc::new(Mutex::new(settings)))
    }

    fn lock(&self) -> MutexGuard<'_, InForce> {
        self.0.lock().expect("settings poisoned")
    }

    /// A copy of everything in force.
    pub(crate) fn get(&self) -> InForce {
        self.lock().clone()
    }

    /// One value read from the settings in force.
    pub(crate) fn read<T>(&self, value: impl FnOnce(&InForce) -> T) -> T {
        value(&self.lock())
    }

    /// Replaces the settings in force (a reload).
    pub(crate) fn set(&self, settings: InForce) {
        *self.lock() = settings;
    }
}
