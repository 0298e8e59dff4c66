//! The route's status over HTTP (`[route] status=IP:PORT`): a page for
//! people (`/`), the same as JSON (`/api/status`), and Prometheus metrics
//! (`/metrics`), all built from one [`snapshot::Snapshot`] of the `Hub`.
//!
//! Read-only and small: HTTP/1 by hyper, GET and HEAD only, at most
//! [`MAX_CONNECTIONS`] readers at once and [`MAX_PER_ADDRESS`] from one
//! address, each with a deadline for its headers and a lifetime cap; a
//! request turned away closes its connection. With `status_token=`, every request must
//! carry it (bearer token, or basic auth with it as the password);
//! without, the config allows only a loopback address, and requests
//! must name the host by IP or `localhost` so a web page elsewhere cannot
//! read it through a rebound DNS name.
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tracing::{debug, warn};

use crate::state::Hub;

mod access;
mod metrics;
mod page;
mod process;
mod snapshot;

/// Readers served at once; more are closed at once.
pub const MAX_CONNECTIONS: usize = 64;
/// Readers from one address at once, so one cannot take every place.
pub const MAX_PER_ADDRESS: usize = 8;
/// How long a reader may take to send a request's headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one reader's connection may stay open (a page left open
/// reconnects for its next refresh).
const CONNECTION_LIFETIME: Duration = Duration::from_secs(60);

/// Readers connected now, per address.
#[derive(Clone, Default)]
struct PerAddress(Arc<Mutex<HashMap<IpAddr, usize>>>);

/// One reader's place among those of its address.
struct AddressPlace(PerAddress, IpAddr);

impl PerAddress {
    fn enter(&self, ip: IpAddr) -> Option<AddressPlace> {
        let mut counts = self.0.lock().expect("status places poisoned");
        let count = counts.entry(ip).or_default();
        if *count >= MAX_PER_ADDRESS {
            return None;
        }
        *count += 1;
        Some(AddressPlace(self.clone(), ip))
    }
}

impl Drop for AddressPlace {
    fn drop(&mut self) {
        let mut counts = self.0 .0.lock().expect("status places poisoned");
        if let Some(count) = counts.get_mut(&self.1) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.1);
            }
        }
    }
}

/// Serves the status on `listener` until the route shuts down.
pub async fn serve(listener: TcpListener, hub: Arc<Hub>) {
    let readers = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let per_address = PerAddress::default();
    while let Some(accepted) = hub.shutdown.run_until_cancelled(listener.accept()).await {
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(err) => {
                warn!(%err, "status: accept failed");
                let pause = tokio::time::sleep(Duration::from_millis(100));
                if hub.shutdown.run_until_cancelled(pause).await.is_none() {
                    return;
                }
                continue;
            }
        };
        let places = readers.clone().try_acquire_owned().ok();
        let places = places.zip(per_address.enter(peer.ip()));
        let Some(places) = places else {
            debug!(%peer, "status: too many readers; closed");
            continue;
        };
        let hub_for_task = hub.clone();
        hub.tracker.spawn(async move {
            connection(stream, &hub_for_task).await;
            drop(places);
        });
    }
}

/// One reader's connection, until it closes, its lifetime is up, or the
/// route stops.
async fn connection(stream: TcpStream, hub: &Arc<Hub>) {
    let service = hyper::service::service_fn(|request| {
        let hub = hub.clone();
        async move { Ok::<_, std::convert::Infallible>(answer(&request, &hub).await) }
    });
    let served = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .serve_connection(TokioIo::new(stream), service);
    tokio::select! {
        done = served => if let Err(err) = done {
            debug!(%err, "status: connection ended with an error");
        },
        _ = tokio::time::sleep(CONNECTION_LIFETIME) => {}
        _ = hub.shutdown.cancelled() => {}
    }
}

/// The state now, with the process's figures read off the runtime
/// (listing a busy route's descriptors takes a while).
async fn snapshot(hub: &Hub) -> snapshot::Snapshot {
    let process = tokio::task::spawn_blocking(process::ProcessFigures::now).await;
    snapshot::Snapshot::of(hub, process.unwrap_or_default())
}

/// The response to one request.
async fn answer(request: &Request<Incoming>, hub: &Hub) -> Response<Full<Bytes>> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let mut response = plain(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n");
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return closing(response);
    }
    let config = hub.config();
    let token = config.status.as_ref().and_then(|s| s.token.as_deref());
    match access::check(request.headers(), token) {
        Ok(()) => {}
        Err(access::Denied::NoToken) => {
            let mut response = plain(StatusCode::UNAUTHORIZED, "status_token needed\n");
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"vnet route\", charset=\"UTF-8\""),
            );
            return closing(response);
        }
        Err(access::Denied::HostName) => {
            let text = "name the host by IP address or localhost\n";
            return closing(plain(StatusCode::FORBIDDEN, text));
        }
    }
    match request.uri().path() {
        "/" => {
            let html = page::render(&snapshot(hub).await);
            let mut response = body(StatusCode::OK, "text/html; charset=utf-8", html);
            // The page runs only its own script, loads nothing else, and
            // is never framed: an escaping slip could not run code.
            response.headers_mut().insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(
                    "default-src 'none'; script-src 'self'; connect-src 'self'; \
                     style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'",
                ),
            );
            response
        }
        "/api/status" => match serde_json::to_string_pretty(&snapshot(hub).await) {
            Ok(json) => body(StatusCode::OK, "application/json", json + "\n"),
            Err(err) => plain(StatusCode::INTERNAL_SERVER_ERROR, &format!("{err}\n")),
        },
        "/metrics" => {
            let text = metrics::render(&snapshot(hub).await);
            body(StatusCode::OK, metrics::CONTENT_TYPE, text)
        }
        "/refresh.js" => body(
            StatusCode::OK,
            "text/javascript; charset=utf-8",
            page::SCRIPT.to_string(),
        ),
        _ => plain(
            StatusCode::NOT_FOUND,
            "not found; try /, /api/status or /metrics\n",
        ),
    }
}

/// A response with `text` of `content_type`, never cached or sniffed.
fn body(status: StatusCode, content_type: &'static str, text: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(text)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// `response`, closing its connection after it: a reader turned away
/// keeps no place.
fn closing(mut response: Response<Full<Bytes>>) -> Response<Full<Bytes>> {
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// A plain-text response.
fn plain(status: StatusCode, text: &str) -> Response<Full<Bytes>> {
    body(status, "text/plain; charset=utf-8", text.to_string())
}
