//! A route and vnets running in this process, on 127.0.0.1 with ports
//! the system picks.
use std::net::SocketAddr;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use vnet::{Status, VnetConfig, VnetHandle};

use crate::wait::within;

/// A route running in this process.
pub struct Route {
    pub addr: SocketAddr,
    /// Where the status page is, when the config asks for one (its port
    /// may be 0: this is the one bound).
    pub status: Option<SocketAddr>,
    shutdown: CancellationToken,
    task: JoinHandle<()>,
    reloads: tokio::sync::mpsc::Sender<route::Reload>,
}

impl Route {
    pub async fn start() -> Self {
        Self::start_on(0).await
    }

    /// A route on a given port, as a restarted route would have it.
    pub async fn start_on(port: u16) -> Self {
        Self::start_with(port, route::RouteConfig::default()).await
    }

    /// A route with non-default settings (token, TLS, limits...).
    pub async fn with(config: route::RouteConfig) -> Self {
        Self::start_with(0, config).await
    }

    async fn start_with(port: u16, config: route::RouteConfig) -> Self {
        let listener = route::listen(&format!("127.0.0.1:{port}")).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let status = match &config.status {
            Some(status) => Some(tokio::net::TcpListener::bind(status.addr).await.unwrap()),
            None => None,
        };
        let status_addr = status.as_ref().map(|s| s.local_addr().unwrap());
        let shutdown = CancellationToken::new();
        let (reloads, reloaded) = tokio::sync::mpsc::channel(1);
        let task = tokio::spawn(route::run_reloading(
            listener,
            status,
            config,
            shutdown.clone(),
            reloaded,
        ));
        Self {
            addr,
            status: status_addr,
            shutdown,
            task,
            reloads,
        }
    }

    /// Puts `config` in force as a SIGHUP would, and waits until it is.
    pub async fn reload(&self, config: route::RouteConfig) {
        let (applied, done) = tokio::sync::oneshot::channel();
        self.reloads.send((config, Some(applied))).await.unwrap();
        within("the route applies a reload", done).await.unwrap();
    }

    /// Stops the route and checks that `run` returns.
    pub async fn stop(self) {
        self.shutdown.cancel();
        within("route::run returns after shutdown", self.task)
            .await
            .unwrap();
    }
}

/// Stops the vnets (checking each ends), then the route.
pub async fn stop_all<const N: usize>(route: Route, vnets: [Vnet; N]) {
    for vnet in vnets {
        vnet.stop().await;
    }
    route.stop().await;
}

/// A vnet running in this process.
pub struct Vnet {
    pub handle: VnetHandle,
}

impl Vnet {
    /// Starts a vnet from ini text (without its [route] section).
    pub fn start(route: &Route, body: &str) -> Self {
        let text = format!("[route]\nip=127.0.0.1\nport={}\n{body}", route.addr.port());
        let config = VnetConfig::parse("test.ini", &text).unwrap();
        Self {
            handle: vnet::start(config, CancellationToken::new()),
        }
    }

    pub async fn wait(&self, what: &str, ready: impl FnMut(&Status) -> bool) -> Status {
        within(what, self.handle.wait_for(ready)).await
    }

    /// Waits for a serve to be registered and returns its id.
    pub async fn registered(&self, key: &str) -> u16 {
        let status = self
            .wait(&format!("serve {key} registered"), |s| {
                s.serve_id(key).is_some()
            })
            .await;
        status.serve_id(key).unwrap().get()
    }

    /// Waits for a use to be open and returns its local address.
    pub async fn open_use(&self, key: &str) -> SocketAddr {
        let status = self
            .wait(&format!("use {key} open"), |s| s.open_use(key).is_some())
            .await;
        status.open_use(key).unwrap()
    }

    /// Waits until every mapped connection has been torn down.
    pub async fn idle(&self) {
        self.wait("all streams closed", |s| s.streams == 0).await;
    }

    pub async fn stop(self) {
        self.handle.shutdown();
        assert!(
            within("vnet stops", self.handle.stopped()).await,
            "vnet tasks did not end"
        );
    }
}

/// Waits until `office` has a direct link up to `home`, and returns
/// home's id. `stream` starts one stream from office to home: the first
/// asks for the link, and as an attempt that failed (a loaded machine)
/// is only tried again when a later stream asks, one is started
/// whenever a bounded wait for the link ends without it.
pub async fn direct_link_up<F, S>(home: &Vnet, office: &Vnet, mut stream: F) -> proto::VnetId
where
    F: FnMut() -> S,
    S: std::future::Future<Output = ()>,
{
    let status = home.wait("home has an id", |s| s.vnet_id.is_some()).await;
    let home_id = status.vnet_id.expect("waited for");
    let up = |s: &Status| s.direct.get(&home_id).is_some_and(|d| d.is_up());
    for _ in 0..20 {
        stream().await;
        let wait = office.handle.wait_for(up);
        if tokio::time::timeout(std::time::Duration::from_secs(2), wait)
            .await
            .is_ok()
        {
            return home_id;
        }
    }
    panic!("no direct link from office to home after 20 streams");
}

/// The lines of a serve section for a local address.
pub fn serve_section(key: &str, serveid: u16, addr: SocketAddr) -> String {
    format!("[serve.{key}]\nserveid={serveid}\nport={}\n", addr.port())
}

/// The lines of a use section on a free local port.
pub fn use_section(key: &str, serveid: u16) -> String {
    format!("[use.{key}]\nserveid={serveid}\nport=0\n")
}
