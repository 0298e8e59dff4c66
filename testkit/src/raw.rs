//! A vnet written by hand from the protocol, for tests that must control
//! exactly what goes on the wire (a serving side that answers late, a
//! control connection that is never read, a replayed handshake) and see
//! exactly what comes back.
use futures::SinkExt;
use net::handshake::{next_message, read_preamble, write_preamble_and};
use proto::auth::{SessionSecret, Token, VnetExchange};
use proto::codec::VnetCodec;
use proto::features::Features;
use proto::message::{Request, Response, RouteMsg, ServeSpec, VnetMsg};
use proto::pass::{DataPass, Purpose};
use proto::{ServeId, SessionId, VnetId};
use std::net::SocketAddr;
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

use crate::wait::within;

/// A plain connection to the route, framed as a vnet reads it.
pub type Link = Framed<TcpStream, VnetCodec>;

/// Opens a connection to the route with `hello` as its first frame, and
/// reads the route's preamble.
pub async fn dial(route: SocketAddr, hello: VnetMsg) -> Link {
    dial_with(route, hello, None).await
}

/// As [`dial`], with the socket's receive buffer fixed at `receive` bytes
/// (a peer that reads slowly, or not at all, fills it quickly).
pub async fn dial_with(route: SocketAddr, hello: VnetMsg, receive: Option<u32>) -> Link {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    if let Some(size) = receive {
        socket.set_recv_buffer_size(size).unwrap();
    }
    let mut stream = within("connect to the route", socket.connect(route))
        .await
        .unwrap();
    write_preamble_and::<_, RouteMsg, VnetMsg>(&mut stream, Some(hello))
        .await
        .unwrap();
    within("the route's preamble", read_preamble(&mut stream))
        .await
        .unwrap();
    Framed::new(stream, VnetCodec::new())
}

/// Opens a connection with `hello` and returns the route's first answer.
pub async fn ask(route: SocketAddr, hello: VnetMsg) -> (Link, RouteMsg) {
    let mut link = dial(route, hello).await;
    let answer = within("the route's answer", next_message(&mut link))
        .await
        .unwrap();
    (link, answer)
}

/// The next message on `link`, within the test bound.
pub async fn next(link: &mut Link) -> RouteMsg {
    within("a message from the route", next_message(link))
        .await
        .unwrap()
}

/// A joined control session, as a vnet holds it.
pub struct Session {
    /// The control connection, left for the test to read or not.
    pub control: Link,
    /// The id the route gave.
    pub vnet_id: VnetId,
    /// The session's id for passes.
    pub id: SessionId,
    secret: SessionSecret,
    counter: u64,
}

impl Session {
    /// Joins `group` as `name` with `token` (empty: none).
    ///
    /// # Panics
    /// If the route refuses; see [`try_join`](Self::try_join).
    pub async fn join(route: SocketAddr, name: &str, group: &str, token: &str) -> Self {
        match Self::try_join(route, name, group, token).await {
            Ok(session) => session,
            Err(other) => panic!("the route did not welcome {name}: {other:?}"),
        }
    }

    /// Joins, or returns what the route said instead of welcoming.
    pub async fn try_join(
        route: SocketAddr,
        name: &str,
        group: &str,
        token: &str,
    ) -> Result<Self, RouteMsg> {
        Self::try_join_with(route, name, group, token, None).await
    }

    /// Joins with the control connection's receive buffer fixed at
    /// `receive` bytes; see [`dial_with`].
    pub async fn join_with_buffer(
        route: SocketAddr,
        name: &str,
        group: &str,
        receive: u32,
    ) -> Self {
        match Self::try_join_with(route, name, group, "", Some(receive)).await {
            Ok(session) => session,
            Err(other) => panic!("the route did not welcome {name}: {other:?}"),
        }
    }

    async fn try_join_with(
        route: SocketAddr,
        name: &str,
        group: &str,
        token: &str,
        receive: Option<u32>,
    ) -> Result<Self, RouteMsg> {
        let (exchange, pake) = VnetExchange::start(&Token::new(token), name, group);
        let hello = VnetMsg::Hello {
            name: name.into(),
            group: group.into(),
            pake,
            features: Features::ours(),
        };
        let mut control = dial_with(route, hello, receive).await;
        let answer = next(&mut control).await;
        let RouteMsg::Challenge { pake, confirm, .. } = answer else {
            return Err(answer);
        };
        let Ok((confirm, secret)) = exchange.finish(&pake, &confirm) else {
            // Another token: confirm anyway, and see the route refuse.
            let confirm = proto::auth::Proof([0; 32]);
            control.send(VnetMsg::Auth { confirm }).await.unwrap();
            return Err(next(&mut control).await);
        };
        control.send(VnetMsg::Auth { confirm }).await.unwrap();
        match next(&mut control).await {
            RouteMsg::Welcome {
                vnet_id, session, ..
            } => Ok(Self {
                control,
                vnet_id,
                id: session,
                secret,
                counter: 0,
            }),
            other => Err(other),
        }
    }

    /// A fresh pass for one data connection.
    pub fn pass(&mut self, purpose: Purpose) -> DataPass {
        self.counter += 1;
        self.secret.pass(self.id, self.counter, purpose)
    }

    /// Opens a data connection visiting serve `id` with a fresh pass;
    /// the connection and the route's answer.
    pub async fn visit(&mut self, route: SocketAddr, id: ServeId) -> (Link, RouteMsg) {
        let pass = self.pass(Purpose::Visit(id));
        ask(route, VnetMsg::Visit { serve_id: id, pass }).await
    }

    /// Sends a request without waiting for its answer.
    pub async fn send(&mut self, id: u32, body: Request) {
        self.control
            .send(VnetMsg::Request { id, body })
            .await
            .unwrap();
    }

    /// Registers a serve under `id` (pointing nowhere real) and waits for
    /// the route's answer, skipping the group's announcements.
    pub async fn register(&mut self, id: u16) -> ServeId {
        let spec = ServeSpec {
            name: "by-hand".into(),
            serve_id: Some(ServeId::new(id).unwrap()),
            kind: "tcp".into(),
            ip: "127.0.0.1".into(),
            port: 1,
            info: String::new(),
        };
        let register = VnetMsg::Request {
            id: 1,
            body: Request::RegisterServe(spec),
        };
        self.control.send(register).await.unwrap();
        loop {
            match next(&mut self.control).await {
                RouteMsg::Response {
                    id: 1,
                    body: Response::Registered { serve_id },
                } => return serve_id,
                RouteMsg::Response { body, .. } => panic!("registration failed: {body:?}"),
                _ => {} // the group's serves, announced
            }
        }
    }
}
