//! Registering our serves. Which serves should be registered is read from
//! the model, so after a reconnect exactly the active ones register again,
//! each asking for the id it had (a dynamic id is kept when still free).
//! The route's answer goes into the model and, when registered, into the
//! local-serves table the serving side reads.
use proto::message::{Request, Response, ServeSpec};
use proto::text::Escaped;
use proto::ServeId;
use tracing::{debug, error, info, warn};

use super::parts::ControlParts;
use super::requests::Waiters;
use crate::error::VnetError;
use crate::local::LocalServe;
use crate::model::{Model, ServeState};
use crate::outcome;

/// The registration request for serve `key`, if it should be registered.
/// A serve registered before keeps asking for the id it had.
pub(crate) fn registration(model: &Model, key: &str) -> Option<Request> {
    let status = model.borrow();
    let serve = status.serves.get(key).filter(|s| s.config.active)?;
    let c = &serve.config;
    Some(Request::RegisterServe(ServeSpec {
        name: c.name.clone(),
        serve_id: serve.last_id.or(c.serve_id),
        kind: "tcp".into(),
        ip: c.ip.clone(),
        port: c.port,
        info: c.info.clone(),
    }))
}

/// Applies the route's answer to the registration of serve `key` and
/// tells the waiters. Returns the id to withdraw again if the serve was
/// closed or deleted while the request was in flight.
pub(crate) fn registered(
    parts: &ControlParts,
    key: String,
    answer: Response,
    waiters: Waiters,
) -> Option<ServeId> {
    let outcome = match answer {
        Response::Registered { serve_id } => Ok(serve_id),
        Response::Error(refusal) => Err(VnetError::Refused(refusal)),
        other => Err(VnetError::Protocol(format!("unexpected answer {other:?}"))),
    };
    let mut withdraw = None;
    let mut probe = None;
    parts.model.send_modify(|s| {
        let Some(serve) = s.serves.get_mut(&key).filter(|s| s.config.active) else {
            // Closed or deleted while the request was in flight.
            withdraw = outcome.as_ref().ok().copied();
            return;
        };
        serve.state = match &outcome {
            Ok(serve_id) => {
                let c = &serve.config;
                match c.serve_id {
                    Some(wanted) if wanted != *serve_id => {
                        warn!(
                            serve = %key,
                            wanted = %wanted,
                            assigned = %serve_id,
                            "serve id was taken; the route assigned a new one"
                        );
                    }
                    _ => info!(
                        target: outcome::SERVE,
                        serve = %key,
                        id = %serve_id,
                        addr = %format!("{}:{}", c.ip, c.port),
                        "serve registered"
                    ),
                }
                // A first registration says so if nothing listens there
                // yet; it stays registered (the service may start later).
                if serve.last_id.is_none() && serve.grant.is_none() {
                    probe = Some((key.clone(), c.ip.clone(), c.port));
                }
                // Keep the id: a reconnect asks for it again.
                serve.last_id = Some(*serve_id);
                // In the table before the model says registered: a stream
                // that waits for the model then finds it.
                parts.local.insert(
                    *serve_id,
                    LocalServe {
                        config: serve.config.clone(),
                        cancel: parts.shutdown.child_token(),
                        traffic: serve.traffic.clone(),
                    },
                );
                ServeState::Registered(*serve_id)
            }
            Err(reason) => {
                let reason = reason.to_string();
                error!(target: outcome::SERVE, serve = %key, reason = %Escaped(&reason), "serve refused by the route");
                ServeState::Refused(reason)
            }
        };
    });
    for waiter in waiters {
        let _ = waiter.send(outcome.clone());
    }
    if let Some((key, ip, port)) = probe {
        tokio::task::spawn_blocking(move || check_service(&key, &ip, port));
    }
    withdraw
}

/// Warns (once, at registration) when nothing listens at a serve's
/// address on this host, so a typo in a port does not go unseen until a
/// visitor fails. It looks at the system's socket table rather than
/// connecting: a connection would reach the service as a visit (and be
/// taken by one that accepts a single client). A serve on another host,
/// or named by host name, is not checked.
fn check_service(key: &str, ip: &str, port: u16) {
    let Ok(ip) = ip.parse::<std::net::IpAddr>() else {
        return;
    };
    let addr = std::net::SocketAddr::new(ip, port);
    match net::listen::listening(addr) {
        Some(false) => {
            warn!(serve = %key, %addr, "serve registered, but nothing listens there yet")
        }
        Some(true) => debug!(serve = %key, %addr, "serve's service is listening"),
        None => debug!(serve = %key, %addr, "serve's service is not on this host; not checked"),
    }
}
