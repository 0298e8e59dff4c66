//! The serving side's answers to the route. The route hands us a stream
//! for one of our serves in one of two ways: on a serving spare (`Open`,
//! answered on it with `Opened`, which then carries the stream), or on the
//! control connection (`OpenStream`, answered by dialing back with
//! `Accept` and its ticket). Either way the local service is reached
//! first (`serving`), so a refused service makes the visitor's
//! connection close at once instead of hanging.
use net::handshake::send_message;
use net::Unframed;
use proto::message::VnetMsg;
use proto::pass::Purpose;
use proto::{Refusal, ServeId, VnetId};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::info;

use super::dial;
use crate::control::asks::StreamAsk;
use crate::control::session::Session;
use crate::link::FramedConn;
use crate::serving::{self, Path, Serving};

/// Answers the route's `OpenStream` asks, handed on by the control task,
/// until shutdown.
pub(crate) async fn run(
    mut asks: mpsc::Receiver<StreamAsk>,
    serving: Serving,
    shutdown: CancellationToken,
) {
    loop {
        let ask = tokio::select! {
            _ = shutdown.cancelled() => return,
            ask = asks.recv() => match ask {
                Some(ask) => ask,
                None => return,
            },
        };
        dial_back(&serving, ask);
    }
}

/// Spawns the task that answers one `OpenStream`: by dialing the route
/// with the ticket and the outcome.
fn dial_back(serving: &Serving, ask: StreamAsk) {
    let StreamAsk {
        ticket,
        serve_id,
        session,
        from,
    } = ask;
    let lost = session.lost.clone();
    let reply = move |result: Result<(), Refusal>| async move {
        let reached = result.is_ok();
        let accept = VnetMsg::Accept {
            ticket,
            pass: session.pass(Purpose::Accept(ticket)),
            result,
        };
        match dial::dial(&session.route, accept).await {
            Ok(route_side) => Some(route_side),
            Err(err) if reached => {
                info!(%err, "route did not take the stream");
                None
            }
            Err(_) => None,
        }
    };
    serving::spawn(serving, (serve_id, from), lost, Path::Relay, reply);
}

/// Spawns the task that answers `Open` on a spare data connection: on
/// that connection, which then carries the stream.
pub(crate) fn on_spare(
    serving: &Serving,
    session: &Session,
    mut spare: FramedConn,
    serve_id: ServeId,
    from: Option<VnetId>,
) {
    let reply = move |result: Result<(), Refusal>| async move {
        let reached = result.is_ok();
        match send_message(&mut spare, VnetMsg::Opened { result }).await {
            Ok(()) if reached => Some(Unframed::from_framed(spare)),
            Ok(()) => None,
            Err(err) => {
                info!(%err, "route did not take the stream");
                None
            }
        }
    };
    let lost = session.lost.clone();
    serving::spawn(serving, (serve_id, from), lost, Path::Relay, reply);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::VnetConfig;
    use crate::current::{Current, InForce};
    use crate::link::Conn;
    use crate::local::{LocalServe, LocalServes};
    use crate::model::{ServeState, Status};
    use net::handshake::next_message;
    use net::test_sockets::socket_pair;
    use proto::codec::{RouteCodec, VnetCodec};
    use std::time::Duration;
    use tokio::net::TcpListener;
    use tokio::sync::watch;
    use tokio_util::codec::Framed;
    use tokio_util::task::TaskTracker;

    /// Confirms the registration of serve `key` under `id`, as the control
    /// connection does when the route's `Registered` answer comes in.
    fn confirm_registration(serving: &Serving, key: &str, id: ServeId) {
        serving.model.send_modify(|s| {
            let serve = s.serves.get_mut(key).expect("configured serve");
            serving.local.insert(
                id,
                LocalServe {
                    config: serve.config.clone(),
                    cancel: CancellationToken::new(),
                    traffic: serve.traffic.clone(),
                },
            );
            serve.state = ServeState::Registered(id);
        });
    }

    /// On one thread, the stream task runs up to its wait at the yield;
    /// without the wait it would refuse there.
    #[tokio::test]
    async fn a_stream_on_a_spare_waits_for_its_registration_to_be_confirmed() {
        let service = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let text = format!(
            "[route]\nip=127.0.0.1\nport=1\n[serve.echo]\nserveid=700\nip=127.0.0.1\nport={}\n",
            service.local_addr().unwrap().port()
        );
        let config = VnetConfig::parse("t.ini", &text).unwrap();
        let serving = Serving {
            model: watch::Sender::new(Status::at_start(&config)),
            local: LocalServes::default(),
            current: Current::new(InForce::new(&config)),
            tracker: TaskTracker::new(),
            e2e: None,
        };
        let (ours, theirs) = socket_pair(None).await;
        let spare = Framed::new(Conn::Plain(ours), VnetCodec::new());
        let mut route_end = Framed::new(theirs, RouteCodec::new());
        let id = ServeId::new(700).unwrap();
        let session = Session::for_test(proto::VnetId(1), false);

        on_spare(&serving, &session, spare, id, None);
        tokio::task::yield_now().await;
        confirm_registration(&serving, "echo", id);
        let answer = tokio::time::timeout(Duration::from_secs(20), next_message(&mut route_end))
            .await
            .expect("an answer in time")
            .expect("a frame");
        assert_eq!(answer, VnetMsg::Opened { result: Ok(()) });
    }
}
