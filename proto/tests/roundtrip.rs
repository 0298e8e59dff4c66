//! Property tests of the wire format: frames and messages survive an
//! encode/decode round trip however the bytes are split, and no input,
//! however hostile, makes a decoder, the preamble check or the ini layer
//! panic.
use bytes::BytesMut;
use proptest::collection::{btree_map, btree_set, vec};
use proptest::prelude::*;
use proto::auth::{PakeMsg, Proof, PAKE_LEN};
use proto::codec::{Limited, ProtoError, RouteCodec, VnetCodec};
use proto::direct::{DirectCard, Fingerprint, Introduction, MAX_CANDIDATES};
use proto::e2e::ask::AskProof;
use proto::e2e::pairing::PairId;
use proto::features::Features;
use proto::ini::{IniFile, ROUTE_KEYS};
use proto::message::{
    PeerMsg, Request, Response, RouteMsg, ServeEntry, ServeSpec, SpareRole, VnetEntry, VnetMsg,
};
use proto::pass::DataPass;
use proto::validate::Invalid;
use proto::{
    preamble, AskId, Refusal, RefusalCode, ServeId, SessionId, Ticket, VnetId, MAX_FRAME_LEN,
    MAX_TEXT_LEN,
};
use tokio_util::codec::{Decoder, Encoder};

fn config() -> ProptestConfig {
    ProptestConfig::with_cases(256)
}

// ---------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------

/// A way to make text fields; the validation property wants more long
/// ones than the round trips.
type Text = fn() -> BoxedStrategy<String>;

/// Text of every kind: empty, short printable unicode, any `char` at all
/// (controls, quotes, backslashes, astral planes), and strings whose byte
/// length is at or near [`MAX_TEXT_LEN`].
fn text() -> BoxedStrategy<String> {
    prop_oneof![
        2 => Just(String::new()),
        6 => any::<String>(),
        4 => vec(any::<char>(), 0..40).prop_map(String::from_iter),
        1 => vec(any::<char>(), 40..300).prop_map(String::from_iter),
        3 => near_text_limit(),
    ]
    .boxed()
}

/// Mostly text at the limit, for [`VnetMsg::validate`].
fn limit_text() -> BoxedStrategy<String> {
    prop_oneof![1 => text(), 4 => near_text_limit()].boxed()
}

/// A string of `MAX_TEXT_LEN - 4 ..= MAX_TEXT_LEN + 4` bytes that ends in
/// an arbitrary char (one to four bytes), the rest ASCII.
fn near_text_limit() -> impl Strategy<Value = String> {
    (MAX_TEXT_LEN - 4..=MAX_TEXT_LEN + 4, any::<char>()).prop_map(|(bytes, c)| {
        let mut s = "x".repeat(bytes - c.len_utf8());
        s.push(c);
        s
    })
}

fn serve_id() -> impl Strategy<Value = ServeId> {
    prop_oneof![
        Just(ServeId::DYNAMIC_MIN),
        Just(ServeId::DYNAMIC_MAX),
        Just(ServeId::STATIC_MIN),
        Just(ServeId::MAX),
        ServeId::DYNAMIC_MIN..=ServeId::MAX,
    ]
    .prop_map(|v| ServeId::new(v).expect("strategy stays in 1-999"))
}

fn ask_proof() -> impl Strategy<Value = AskProof> {
    (any::<[u8; 8]>(), any::<u64>(), any::<[u8; 32]>()).prop_map(|(pair, number, mac)| AskProof {
        pair: PairId(pair),
        number,
        mac: Proof(mac),
    })
}

fn vnet_id() -> impl Strategy<Value = VnetId> {
    any::<u16>().prop_map(VnetId)
}

fn ticket() -> impl Strategy<Value = Ticket> {
    any::<u64>().prop_map(Ticket)
}

fn session() -> impl Strategy<Value = SessionId> {
    any::<u64>().prop_map(SessionId)
}

fn pake() -> impl Strategy<Value = PakeMsg> {
    vec(any::<u8>(), PAKE_LEN).prop_map(|v| PakeMsg(v.try_into().unwrap()))
}

fn pass() -> impl Strategy<Value = DataPass> {
    (session(), any::<u64>(), proof()).prop_map(|(session, counter, mac)| DataPass {
        session,
        counter,
        mac,
    })
}

fn code() -> impl Strategy<Value = RefusalCode> {
    prop::sample::select(&RefusalCode::ALL[..])
}

fn refusal(t: Text) -> impl Strategy<Value = Refusal> {
    (code(), t()).prop_map(|(code, text)| Refusal { code, text })
}

fn proof() -> impl Strategy<Value = Proof> {
    any::<[u8; 32]>().prop_map(Proof)
}

fn serve_spec(t: Text) -> impl Strategy<Value = ServeSpec> {
    (
        t(),
        proptest::option::of(serve_id()),
        t(),
        t(),
        any::<u16>(),
        t(),
    )
        .prop_map(|(name, serve_id, kind, ip, port, info)| ServeSpec {
            name,
            serve_id,
            kind,
            ip,
            port,
            info,
        })
}

fn serve_entry() -> impl Strategy<Value = ServeEntry> {
    (serve_id(), vnet_id(), text(), serve_spec(text)).prop_map(
        |(serve_id, vnet_id, vnet_name, spec)| ServeEntry {
            serve_id,
            vnet_id,
            vnet_name,
            spec,
        },
    )
}

fn vnet_entry() -> impl Strategy<Value = VnetEntry> {
    (vnet_id(), text(), any::<u32>(), any::<u64>()).prop_map(
        |(vnet_id, name, serves, connected_unix)| VnetEntry {
            vnet_id,
            name,
            serves,
            connected_unix,
        },
    )
}

fn socket_addr() -> impl Strategy<Value = std::net::SocketAddr> {
    prop_oneof![
        (any::<[u8; 4]>(), any::<u16>()).prop_map(|(ip, port)| (ip, port).into()),
        (any::<[u16; 8]>(), any::<u16>()).prop_map(|(ip, port)| (ip, port).into()),
    ]
}

fn direct_card() -> impl Strategy<Value = DirectCard> {
    (vec(socket_addr(), 0..=MAX_CANDIDATES), any::<[u8; 32]>()).prop_map(|(addrs, cert)| {
        DirectCard {
            addrs,
            cert: Fingerprint(cert),
        }
    })
}

fn introduction() -> impl Strategy<Value = Introduction> {
    (
        vnet_id(),
        text(),
        any::<bool>(),
        vec(socket_addr(), 0..=MAX_CANDIDATES + 1),
        any::<[u8; 32]>(),
    )
        .prop_map(|(peer, peer_name, dial, addrs, cert)| Introduction {
            peer,
            peer_name,
            dial,
            addrs,
            cert: Fingerprint(cert),
        })
}

fn request(t: Text) -> impl Strategy<Value = Request> {
    prop_oneof![
        vnet_id().prop_map(|vnet_id| Request::Introduce { vnet_id }),
        serve_spec(t).prop_map(Request::RegisterServe),
        serve_id().prop_map(|serve_id| Request::UnregisterServe { serve_id }),
        Just(Request::Ping),
        Just(Request::ListServes),
        Just(Request::ListVnets),
        (
            vnet_id(),
            t(),
            any::<u16>(),
            proptest::option::of(ask_proof())
        )
            .prop_map(|(vnet_id, ip, port, proof)| Request::Unserve {
                vnet_id,
                ip,
                port,
                proof
            }),
    ]
}

/// Lists are kept short enough that a message fits in a frame; the frame
/// cap itself is exercised by [`oversized`].
fn response() -> impl Strategy<Value = Response> {
    prop_oneof![
        serve_id().prop_map(|serve_id| Response::Registered { serve_id }),
        Just(Response::Done),
        Just(Response::Pong),
        vec(serve_entry(), 0..5).prop_map(Response::Serves),
        vec(vnet_entry(), 0..8).prop_map(Response::Vnets),
        serve_id().prop_map(|serve_id| Response::Unserved { serve_id }),
        refusal(text).prop_map(Response::Error),
    ]
}

fn vnet_msg(t: Text) -> impl Strategy<Value = VnetMsg> {
    prop_oneof![
        (t(), t(), pake()).prop_map(|(name, group, pake)| VnetMsg::Hello {
            name,
            group,
            pake,
            features: Features::ours()
        }),
        proof().prop_map(|confirm| VnetMsg::Auth { confirm }),
        (serve_id(), pass()).prop_map(|(serve_id, pass)| VnetMsg::Visit { serve_id, pass }),
        (
            ticket(),
            pass(),
            prop_oneof![Just(Ok(())), refusal(t).prop_map(Err)]
        )
            .prop_map(|(ticket, pass, result)| VnetMsg::Accept {
                ticket,
                pass,
                result
            }),
        (
            pass(),
            prop_oneof![Just(SpareRole::Visit), Just(SpareRole::Serve)]
        )
            .prop_map(|(pass, role)| VnetMsg::Spare { pass, role }),
        prop_oneof![Just(Ok(())), refusal(t).prop_map(Err)]
            .prop_map(|result| VnetMsg::Opened { result }),
        (
            any::<u64>(),
            prop_oneof![serve_id().prop_map(Ok), refusal(t).prop_map(Err)],
        )
            .prop_map(|(ask, result)| VnetMsg::UnserveAnswer {
                ask: AskId(ask),
                result
            }),
        (any::<u32>(), request(t)).prop_map(|(id, body)| VnetMsg::Request { id, body }),
        direct_card().prop_map(VnetMsg::Direct),
    ]
}

/// Vnet messages with text fields, each field often just over the limit:
/// what [`VnetMsg::validate`] has to judge.
fn text_bearing_vnet_msg() -> impl Strategy<Value = VnetMsg> {
    let t: Text = limit_text;
    prop_oneof![
        1 => vnet_msg(t),
        1 => (t(), t(), pake()).prop_map(|(name, group, pake)| VnetMsg::Hello {
            name,
            group,
            pake,
            features: Features::ours()
        }),
        1 => (ticket(), pass(), refusal(t)).prop_map(|(ticket, pass, reason)| VnetMsg::Accept {
            ticket,
            pass,
            result: Err(reason)
        }),
        1 => refusal(t).prop_map(|reason| VnetMsg::Opened { result: Err(reason) }),
        1 => (any::<u64>(), refusal(t)).prop_map(|(ask, reason)| {
            VnetMsg::UnserveAnswer {
                ask: AskId(ask),
                result: Err(reason),
            }
        }),
        3 => (any::<u32>(), serve_spec(t)).prop_map(|(id, spec)| VnetMsg::Request {
            id,
            body: Request::RegisterServe(spec)
        }),
        1 => (any::<u32>(), vnet_id(), t(), any::<u16>()).prop_map(|(id, vnet_id, ip, port)| {
            VnetMsg::Request {
                id,
                body: Request::Unserve {
                    vnet_id,
                    ip,
                    port,
                    proof: None,
                },
            }
        }),
    ]
}

fn route_msg() -> impl Strategy<Value = RouteMsg> {
    prop_oneof![
        (pake(), proof(), any::<bool>()).prop_map(|(pake, confirm, token)| {
            RouteMsg::Challenge {
                pake,
                confirm,
                token,
            }
        }),
        (vnet_id(), session(), any::<u32>()).prop_map(|(vnet_id, session, heartbeat_secs)| {
            RouteMsg::Welcome {
                vnet_id,
                session,
                heartbeat_secs,
                features: Features::ours(),
            }
        }),
        refusal(text).prop_map(RouteMsg::Refused),
        Just(RouteMsg::Ready),
        (any::<u32>(), response()).prop_map(|(id, body)| RouteMsg::Response { id, body }),
        serve_entry().prop_map(RouteMsg::ServeUp),
        (serve_id(), any::<bool>()).prop_map(|(serve_id, withdrawn)| RouteMsg::ServeDown {
            serve_id,
            withdrawn
        }),
        (
            any::<u64>(),
            vnet_id(),
            text(),
            text(),
            any::<u16>(),
            proptest::option::of(ask_proof())
        )
            .prop_map(
                |(ask, from, from_name, ip, port, proof)| RouteMsg::UnserveAsk {
                    ask: AskId(ask),
                    from,
                    from_name,
                    ip,
                    port,
                    proof,
                }
            ),
        (ticket(), serve_id()).prop_map(|(ticket, serve_id)| RouteMsg::OpenStream {
            ticket,
            serve_id,
            from: None
        }),
        (serve_id(), proptest::option::of(vnet_id()))
            .prop_map(|(serve_id, from)| RouteMsg::Open { serve_id, from }),
        introduction().prop_map(RouteMsg::Introduce),
    ]
}

/// Messages from a vnet at and past its frame cap: an unserve refusal
/// whose JSON is within a few bytes of [`MAX_FRAME_LEN`] either way, and
/// registrations with long fields, mostly too large for one frame.
fn oversized() -> impl Strategy<Value = VnetMsg> {
    fn refusal(request: u32, text: String) -> VnetMsg {
        VnetMsg::UnserveAnswer {
            ask: AskId(u64::from(request)),
            result: Err(Refusal::new(RefusalCode::NotAllowed, text)),
        }
    }
    let at_cap = (any::<u32>(), -3isize..=3).prop_map(|(id, delta)| {
        let overhead = serde_json::to_vec(&refusal(id, String::new()))
            .unwrap()
            .len();
        let len = MAX_FRAME_LEN as isize - overhead as isize + delta;
        refusal(id, "x".repeat(len as usize))
    });
    let long_fields = (any::<u32>(), any::<char>(), 4000usize..20000).prop_map(|(id, c, len)| {
        let long = c.to_string().repeat(len);
        VnetMsg::Request {
            id,
            body: Request::RegisterServe(ServeSpec {
                name: long.clone(),
                serve_id: None,
                kind: long.clone(),
                ip: long.clone(),
                port: 1,
                info: long,
            }),
        }
    });
    prop_oneof![at_cap, long_fields]
}

/// Sizes of the pieces a stream arrives in: mostly tiny, sometimes large.
fn chunk_sizes() -> impl Strategy<Value = Vec<usize>> {
    vec(prop_oneof![3 => 1usize..=8, 1 => 1usize..=4096], 1..16)
}

/// Bytes a decoder may meet: pure noise, or a length header followed by
/// noise or by JSON-looking text (so decoding reaches serde, not only the
/// length check).
fn hostile_bytes() -> impl Strategy<Value = Vec<u8>> {
    let json_ish = "[{}\\[\\]\":,0-9a-zA-Z_ \\\\-]{0,80}".prop_map(String::into_bytes);
    prop_oneof![
        vec(any::<u8>(), 0..256),
        (
            any::<u32>(),
            prop_oneof![vec(any::<u8>(), 0..128), json_ish.clone()]
        )
            .prop_map(|(len, body)| framed_with_len(len, &body)),
        json_ish.prop_map(|body| framed(&body)),
        vec(json_ish_frame(), 1..4).prop_map(|frames| frames.concat()),
    ]
}

/// A well-framed payload that is JSON of roughly the right shape with
/// arbitrary values in it.
fn json_ish_frame() -> impl Strategy<Value = Vec<u8>> {
    let variant = prop_oneof![
        4 => prop::sample::select(&[
            "Hello",
            "Auth",
            "Visit",
            "Accept",
            "UnserveAnswer",
            "Request",
            "Challenge",
            "Welcome",
            "Refused",
            "Ready",
            "Response",
            "ServeUp",
            "ServeDown",
            "UnserveAsk",
            "OpenStream",
            "Spare",
            "Opened",
            "Open",
        ][..])
        .prop_map(String::from),
        1 => "\\PC{0,8}",
    ];
    let field = prop::sample::select(
        &[
            "serve_id", "session", "ticket", "result", "name", "group", "nonce", "proof", "to",
            "request", "id", "body", "role",
        ][..],
    );
    let value = prop_oneof![
        any::<i64>().prop_map(|v| v.to_string()),
        any::<u16>().prop_map(|v| v.to_string()),
        Just("null".to_string()),
        Just("{\"Ok\":null}".to_string()),
        Just("\"Ping\"".to_string()),
        "\"[0-9a-f+]{62,66}\"",
        "\"\\PC{0,12}\"",
    ];
    (variant, vec((field, value), 0..5)).prop_map(|(variant, fields)| {
        let body: Vec<String> = fields.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
        framed(format!("{{\"{variant}\":{{{}}}}}", body.join(",")).as_bytes())
    })
}

fn framed(payload: &[u8]) -> Vec<u8> {
    framed_with_len(payload.len() as u32, payload)
}

fn framed_with_len(len: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = len.to_be_bytes().to_vec();
    out.extend_from_slice(payload);
    out
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// Decodes until the decoder wants more bytes or fails. Every step must
/// consume input, so this terminates.
fn drain<D>(codec: &mut D, buf: &mut BytesMut) -> (Vec<D::Item>, Option<D::Error>)
where
    D: Decoder,
{
    let mut out = Vec::new();
    loop {
        let before = buf.len();
        match codec.decode(buf) {
            Ok(Some(item)) => {
                assert!(buf.len() < before, "a decoded frame consumed no input");
                out.push(item);
            }
            Ok(None) => return (out, None),
            Err(err) => return (out, Some(err)),
        }
    }
}

/// Round trip of one message through an encoder and the matching decoder,
/// checking the frame layout on the way.
fn check_round_trip<M, E, D>(msg: M, enc: &mut E, dec: &mut D) -> Result<(), TestCaseError>
where
    M: serde::Serialize + Clone + PartialEq + std::fmt::Debug + Limited,
    E: Encoder<M, Error = ProtoError>,
    D: Decoder<Item = M, Error = ProtoError>,
{
    let json = serde_json::to_vec(&msg).expect("messages always serialise");
    let mut buf = BytesMut::from(&b"left alone"[..]);
    let prefix = buf.len();
    let encoded = enc.encode(msg.clone(), &mut buf);
    if json.len() > M::MAX_LEN {
        prop_assert!(matches!(encoded, Err(ProtoError::FrameTooLong)));
        prop_assert_eq!(&buf[..], b"left alone", "a refused frame wrote bytes");
        return Ok(());
    }
    prop_assert!(encoded.is_ok(), "{:?}", encoded);
    prop_assert_eq!(&buf[..prefix], b"left alone");
    prop_assert_eq!(&buf[prefix..prefix + 4], &(json.len() as u32).to_be_bytes());
    prop_assert_eq!(&buf[prefix + 4..], &json[..]);

    let mut frame = buf.split_off(prefix);
    let decoded = dec.decode(&mut frame);
    prop_assert!(
        matches!(&decoded, Ok(Some(m)) if *m == msg),
        "{:?}",
        decoded
    );
    prop_assert!(frame.is_empty());
    prop_assert!(matches!(dec.decode(&mut frame), Ok(None)));
    Ok(())
}

/// Encodes `msgs` back to back, then feeds the bytes to `dec` in pieces of
/// `sizes` (cycled). After every piece exactly the messages whose frames
/// are complete must have come out, and the decoder must say `Ok(None)`.
fn check_stream<M, E, D>(
    msgs: Vec<M>,
    sizes: &[usize],
    enc: &mut E,
    dec: &mut D,
) -> Result<(), TestCaseError>
where
    M: Clone + PartialEq + std::fmt::Debug,
    E: Encoder<M, Error = ProtoError>,
    D: Decoder<Item = M, Error = ProtoError>,
{
    let mut wire = BytesMut::new();
    let mut ends = Vec::new();
    for msg in &msgs {
        enc.encode(msg.clone(), &mut wire)
            .map_err(|e| TestCaseError::fail(format!("encode: {e}")))?;
        ends.push(wire.len());
    }

    let mut buf = BytesMut::new();
    let mut fed = 0;
    let mut got = Vec::new();
    for &size in sizes.iter().cycle() {
        if fed == wire.len() {
            break;
        }
        let next = (fed + size).min(wire.len());
        buf.extend_from_slice(&wire[fed..next]);
        fed = next;
        let (items, err) = drain(dec, &mut buf);
        prop_assert!(err.is_none(), "error after {} bytes: {:?}", fed, err);
        got.extend(items);
        let complete = ends.iter().filter(|&&end| end <= fed).count();
        prop_assert_eq!(got.len(), complete, "after {} of {} bytes", fed, wire.len());
        prop_assert_eq!(&got[..], &msgs[..complete]);
    }
    prop_assert!(buf.is_empty());
    prop_assert_eq!(got, msgs);
    Ok(())
}

/// Decodes `bytes` whole, and again in two pieces split at `split`: the
/// messages and the way decoding ends (wanting more, or which error) must
/// be the same.
fn check_split<D>(bytes: &[u8], split: usize) -> Result<(), TestCaseError>
where
    D: Decoder<Error = ProtoError> + Default,
    D::Item: PartialEq + std::fmt::Debug,
{
    let (whole, whole_err) = drain(&mut D::default(), &mut BytesMut::from(bytes));

    let mut codec = D::default();
    let mut buf = BytesMut::from(&bytes[..split]);
    let (mut parts, mut err) = drain(&mut codec, &mut buf);
    if err.is_none() {
        buf.extend_from_slice(&bytes[split..]);
        let (more, e) = drain(&mut codec, &mut buf);
        parts.extend(more);
        err = e;
    }
    prop_assert_eq!(whole, parts);
    prop_assert_eq!(
        whole_err.map(|e| std::mem::discriminant(&e)),
        err.map(|e| std::mem::discriminant(&e))
    );
    Ok(())
}

/// Text fields of a vnet message in the order `validate` checks them.
/// Destructures every variant in full, so a new field is a compile error
/// here rather than a silent gap in the property.
fn text_fields(msg: &VnetMsg) -> Vec<(&'static str, &str)> {
    match msg {
        VnetMsg::Hello {
            name,
            group,
            pake: _,
            features: _,
        } => vec![("name", name), ("group", group)],
        VnetMsg::Auth { confirm: _ } => vec![],
        VnetMsg::Visit {
            serve_id: _,
            pass: _,
        } => vec![],
        VnetMsg::Spare { pass: _, role: _ } => vec![],
        VnetMsg::Accept {
            ticket: _,
            pass: _,
            result,
        }
        | VnetMsg::Opened { result } => match result {
            Ok(()) => vec![],
            Err(reason) => vec![("reason", &reason.text)],
        },
        VnetMsg::UnserveAnswer { ask: _, result } => match result {
            Ok(_) => vec![],
            Err(reason) => vec![("reason", &reason.text)],
        },
        VnetMsg::Peer { to: _, msg } => match msg {
            PeerMsg::Refused(reason) => vec![("reason", reason)],
            PeerMsg::Offer(_) | PeerMsg::Answer(_) | PeerMsg::Confirm(_) => vec![],
        },
        VnetMsg::Request { id: _, body } => match body {
            Request::RegisterServe(ServeSpec {
                name,
                serve_id: _,
                kind,
                ip,
                port: _,
                info,
            }) => vec![("name", name), ("kind", kind), ("ip", ip), ("info", info)],
            Request::UnregisterServe { serve_id: _ }
            | Request::Ping
            | Request::ListServes
            | Request::ListVnets => vec![],
            Request::Unserve {
                vnet_id: _,
                ip,
                port: _,
                proof: _,
            } => vec![("ip", ip)],
            Request::Introduce { vnet_id: _ } => vec![],
        },
        VnetMsg::Direct(DirectCard { addrs: _, cert: _ }) => vec![],
    }
}

/// Exercises every read-only accessor of a parsed ini file; none may panic.
fn poke_ini(ini: &IniFile) {
    let mut names = Vec::new();
    for section in ini.sections() {
        names.push(section.name());
        let _ = section.check_keys(ROUTE_KEYS);
        let _ = section.check_keys(&[]);
        for key in ["ip", "port", "token", "heartbeat", "name", ""] {
            let _ = section.get(key);
            let _ = section.required(key).map_err(|e| e.to_string());
            let _ = section.number(key, 0..=u32::MAX);
            let _ = section.number(key, 1..=3600);
            let _ = section.port(key, 0);
            let _ = section.port(key, 1024);
            let _ = section.bool(key, false).map_err(|e| e.to_string());
            let _ = section.host(key).map_err(|e| e.to_string());
        }
    }
    for name in names {
        assert!(
            ini.section(name).is_some(),
            "listed section {name:?} not found"
        );
    }
    if let Ok((route, _)) = proto::ini::RouteBasics::from_ini(ini) {
        let _ = route.addr();
    }
}

// ---------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(config())]

    /// vnet -> route: encode then decode is the identity, and the frame is
    /// a big-endian length followed by the message's JSON.
    #[test]
    fn vnet_msg_round_trips(msg in vnet_msg(text)) {
        check_round_trip(msg, &mut VnetCodec::new(), &mut RouteCodec::new())?;
    }

    /// route -> vnet: the same.
    #[test]
    fn route_msg_round_trips(msg in route_msg()) {
        check_round_trip(msg, &mut RouteCodec::new(), &mut VnetCodec::new())?;
    }

    /// A message whose JSON exceeds the frame cap is refused by the
    /// encoder without writing anything; one that fits still round trips.
    #[test]
    fn oversized_messages_are_refused_whole(msg in oversized()) {
        check_round_trip(msg, &mut VnetCodec::new(), &mut RouteCodec::new())?;
    }

    /// Several vnet messages in one stream, however it is chunked, come
    /// out in order, each as soon as its last byte has arrived.
    #[test]
    fn vnet_stream_decodes_in_any_chunking(
        msgs in vec(vnet_msg(text), 0..6),
        sizes in chunk_sizes(),
    ) {
        check_stream(msgs, &sizes, &mut VnetCodec::new(), &mut RouteCodec::new())?;
    }

    /// The same for route messages.
    #[test]
    fn route_stream_decodes_in_any_chunking(
        msgs in vec(route_msg(), 0..6),
        sizes in chunk_sizes(),
    ) {
        check_stream(msgs, &sizes, &mut RouteCodec::new(), &mut VnetCodec::new())?;
    }

    /// Arbitrary bytes never panic either decoder, and decoding them all
    /// at once or in two pieces gives the same messages and the same end.
    #[test]
    fn decoding_hostile_bytes_never_panics(
        bytes in hostile_bytes(),
        split in any::<prop::sample::Index>(),
    ) {
        let split = split.index(bytes.len() + 1);
        check_split::<RouteCodec>(&bytes, split)?;
        check_split::<VnetCodec>(&bytes, split)?;
    }

    /// Valid frames still come out first when garbage follows them.
    #[test]
    fn garbage_after_valid_frames_does_not_lose_them(
        msgs in vec(vnet_msg(text), 1..4),
        garbage in hostile_bytes(),
    ) {
        let mut buf = BytesMut::new();
        let mut enc = VnetCodec::new();
        for msg in &msgs {
            enc.encode(msg.clone(), &mut buf).unwrap();
        }
        buf.extend_from_slice(&garbage);
        let (got, _) = drain(&mut RouteCodec::new(), &mut buf);
        prop_assert!(got.len() >= msgs.len());
        prop_assert_eq!(&got[..msgs.len()], &msgs[..]);
    }

    /// A complete frame decodes exactly when its payload is valid JSON for
    /// the message type; otherwise it is `Malformed`, never a panic.
    #[test]
    fn a_complete_frame_decodes_iff_serde_accepts_it(frame in prop_oneof![
        json_ish_frame(),
        vec(any::<u8>(), 0..64).prop_map(|p| framed(&p)),
    ]) {
        let payload = &frame[4..];
        let want_vnet = serde_json::from_slice::<VnetMsg>(payload).ok();
        match RouteCodec::new().decode(&mut BytesMut::from(&frame[..])) {
            Ok(Some(msg)) => prop_assert_eq!(Some(msg), want_vnet),
            Err(ProtoError::Malformed(_)) => prop_assert!(want_vnet.is_none()),
            other => prop_assert!(false, "unexpected {:?}", other),
        }
        let want_route = serde_json::from_slice::<RouteMsg>(payload).ok();
        match VnetCodec::new().decode(&mut BytesMut::from(&frame[..])) {
            Ok(Some(msg)) => prop_assert_eq!(Some(msg), want_route),
            Err(ProtoError::Malformed(_)) => prop_assert!(want_route.is_none()),
            other => prop_assert!(false, "unexpected {:?}", other),
        }
    }

    /// A length header above the cap is refused as soon as it is read,
    /// before any of the announced bytes arrive; up to the cap it waits.
    #[test]
    fn length_header_is_checked_before_buffering(
        len in any::<u32>(),
        tail in vec(any::<u8>(), 0..16),
    ) {
        let bytes = framed_with_len(len, &tail);
        let result = RouteCodec::new().decode(&mut BytesMut::from(&bytes[..]));
        if len as usize > MAX_FRAME_LEN {
            prop_assert!(matches!(result, Err(ProtoError::FrameTooLong)), "{:?}", result);
        } else if len as usize > tail.len() {
            prop_assert!(matches!(result, Ok(None)), "{:?}", result);
        } else {
            prop_assert!(
                !matches!(result, Err(ProtoError::FrameTooLong) | Ok(None)),
                "{:?}",
                result
            );
        }
    }

    /// Serve ids on the wire are accepted exactly in 1-999.
    #[test]
    fn serve_id_bounds_hold_on_the_wire(
        v in prop_oneof![
            prop::sample::select(&[0u16, 1, 499, 500, 999, 1000, u16::MAX][..]),
            0u16..=1001,
            any::<u16>(),
        ],
        s in any::<u64>(),
    ) {
        let mac = "ab".repeat(32);
        let json = format!(
            "{{\"Visit\":{{\"serve_id\":{v},\"pass\":{{\"session\":{s},\"counter\":7,\"mac\":\"{mac}\"}}}}}}"
        );
        let frame = framed(json.as_bytes());
        let result = RouteCodec::new().decode(&mut BytesMut::from(&frame[..]));
        if (1..=999).contains(&v) {
            let want = VnetMsg::Visit {
                serve_id: ServeId::new(v).unwrap(),
                pass: DataPass {
                    session: SessionId(s),
                    counter: 7,
                    mac: Proof([0xab; 32]),
                },
            };
            prop_assert!(matches!(&result, Ok(Some(m)) if *m == want), "{:?}", result);
        } else {
            prop_assert!(matches!(result, Err(ProtoError::Malformed(_))), "{:?}", result);
        }
    }

    /// Proofs serialise as 64 lowercase hex digits and read back; 64 hex
    /// digits of either case are read, other lengths are not.
    #[test]
    fn proof_hex(bytes in any::<[u8; 32]>(), upper in any::<bool>(), len in 0usize..80) {
        let json = serde_json::to_string(&Proof(bytes)).unwrap();
        prop_assert_eq!(json.len(), 66);
        prop_assert!(json[1..65].bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        prop_assert!(serde_json::from_str::<Proof>(&json).unwrap() == Proof(bytes));
        let json = if upper { json.to_uppercase() } else { json };
        prop_assert!(serde_json::from_str::<Proof>(&json).unwrap() == Proof(bytes));
        let other = format!("\"{}\"", "a".repeat(len));
        prop_assert_eq!(serde_json::from_str::<Proof>(&other).is_ok(), len == 64);
    }

    /// `validate` accepts exactly the messages whose text fields are all
    /// within `MAX_TEXT_LEN` bytes and printable, and names the first that
    /// is not.
    #[test]
    fn validate_accepts_exactly_bounded_printable_text(msg in text_bearing_vnet_msg()) {
        let first_bad = text_fields(&msg)
            .into_iter()
            .find(|(_, text)| text.len() > MAX_TEXT_LEN || proto::text::printable(text).is_err())
            .map(|(field, _)| field);
        match first_bad {
            None => prop_assert_eq!(msg.validate(), Ok(())),
            Some(field) => prop_assert!(
                matches!(msg.validate(), Err(Invalid { field: f, .. }) if f == field),
                "{:?}", msg.validate()
            ),
        }
    }

    /// The preamble check never panics and accepts only our own preamble,
    /// telling a wrong magic from a wrong version.
    #[test]
    fn preamble_accepts_only_its_encoding(bytes in prop_oneof![
        any::<[u8; 6]>(),
        prop_oneof![
            any::<u16>(),
            proto::PROTOCOL_VERSION.saturating_sub(2)..=proto::PROTOCOL_VERSION.saturating_add(2),
        ]
        .prop_map(|version| {
            let (p, v) = (preamble::encode(), version.to_be_bytes());
            [p[0], p[1], p[2], p[3], v[0], v[1]]
        }),
        Just(preamble::encode()),
    ]) {
        let result = preamble::check(&bytes);
        prop_assert_eq!(result.is_ok(), bytes == preamble::encode());
        match result {
            Ok(()) => {}
            Err(preamble::PreambleError::BadMagic(m)) => {
                prop_assert_eq!(&m[..], &bytes[..4]);
                prop_assert_ne!(m, proto::MAGIC);
            }
            Err(preamble::PreambleError::Version { peer, ours }) => {
                prop_assert_eq!(&bytes[..4], &proto::MAGIC[..]);
                prop_assert_eq!(peer, u16::from_be_bytes([bytes[4], bytes[5]]));
                prop_assert_eq!(ours, proto::PROTOCOL_VERSION);
                prop_assert_ne!(peer, ours);
            }
        }
    }

    /// Arbitrary text never panics the ini parser or any getter.
    #[test]
    fn ini_parse_never_panics(text in prop_oneof![
        any::<String>(),
        vec(any::<char>(), 0..200).prop_map(String::from_iter),
        ini_ish(),
    ]) {
        match IniFile::parse("prop.ini", &text) {
            Ok(ini) => poke_ini(&ini),
            Err(err) => {
                let _ = err.to_string();
            }
        }
    }

    /// A well-formed file with unique sections and keys parses, and every
    /// value reads back trimmed, whatever the layout around it.
    #[test]
    fn ini_well_formed_reads_back(
        sections in btree_map(
            "[a-z][a-z0-9_]{0,8}",
            btree_map("[a-z][a-z0-9_]{0,8}", "[a-zA-Z0-9._:/-][a-zA-Z0-9._:/ -]{0,15}", 0..5),
            1..5,
        ),
        pad in vec(prop_oneof![Just(""), Just(" "), Just("\t"), Just("  ")], 4),
        bom in any::<bool>(),
        crlf in any::<bool>(),
        comments in any::<bool>(),
    ) {
        let nl = if crlf { "\r\n" } else { "\n" };
        let mut text = String::from(if bom { "\u{feff}" } else { "" });
        if comments {
            text.push_str("; leading comment");
            text.push_str(nl);
        }
        for (name, keys) in &sections {
            text.push_str(&format!("[{name}]"));
            if comments {
                text.push_str(" ; section comment");
            }
            text.push_str(nl);
            for (key, value) in keys {
                text.push_str(&format!("{}{key}{}={}{value}{}", pad[0], pad[1], pad[2], pad[3]));
                if comments {
                    text.push_str(" # value comment");
                }
                text.push_str(nl);
            }
        }
        let ini = IniFile::parse("prop.ini", &text)
            .map_err(|e| TestCaseError::fail(format!("{e} in {text:?}")))?;
        let names: Vec<&str> = ini.sections().map(|s| s.name()).collect();
        prop_assert_eq!(names, sections.keys().map(String::as_str).collect::<Vec<_>>());
        for (name, keys) in &sections {
            let section = ini.section(name).unwrap();
            let allowed: Vec<&str> = keys.keys().map(String::as_str).collect();
            prop_assert!(section.check_keys(&allowed).is_ok());
            for (key, value) in keys {
                let want = Some(value.trim()).filter(|v| !v.is_empty());
                prop_assert_eq!(section.get(key), want, "{:?}", text);
            }
        }
        poke_ini(&ini);
    }

    /// Section names repeated anywhere in a file are always refused.
    #[test]
    fn ini_repeated_sections_are_refused(
        names in btree_set("[a-z]{1,6}", 1..4),
        dup in any::<prop::sample::Index>(),
    ) {
        let names: Vec<String> = names.into_iter().collect();
        let mut text = String::new();
        for name in &names {
            text.push_str(&format!("[{name}]\nk=v\n"));
        }
        text.push_str(&format!("[{}]\n", dup.get(&names)));
        prop_assert!(IniFile::parse("prop.ini", &text).is_err());
    }
}

/// Lines that look like ini, in any order and with any junk between them.
fn ini_ish() -> impl Strategy<Value = String> {
    let line = prop_oneof![
        "\\[[^\\]\n]{0,10}\\]",
        "\\[[a-z]{0,5}",
        "[a-z ]{0,6}=[^\n]{0,20}",
        "[;#][^\n]{0,10}",
        "[ \t]{0,3}",
        "\"[^\n]{0,10}",
        "[^\n]{0,12}\\\\",
        Just("\u{feff}".to_string()),
        "[^\n]{0,20}",
    ];
    (
        vec(line, 0..12),
        vec(prop_oneof![Just("\n"), Just("\r\n"), Just("\r")], 12),
    )
        .prop_map(|(lines, ends)| {
            lines
                .iter()
                .zip(ends.iter().cycle())
                .map(|(l, e)| format!("{l}{e}"))
                .collect()
        })
}

/// Hex digits are read by `u8::from_str_radix` pair by pair, which also
/// takes a leading `+`: `"+a"` reads as 0x0a. So a nonce or proof that is
/// not 64 hex digits is accepted, against the "expected 64 hex digits"
/// contract. Harmless for security (values compare as bytes) but the
/// format is not canonical. Run with `--ignored` to see it.
#[test]
fn hex_refuses_plus_signs() {
    let text = format!("\"{}\"", "+a".repeat(32));
    assert!(
        serde_json::from_str::<Proof>(&text).is_err(),
        "{text} was read as a proof"
    );
}

/// The route's largest answer: all 999 serves of a group, every text field
/// at its 256-byte limit and made of characters JSON escapes six bytes
/// long, still fits one route frame and round trips.
#[test]
fn a_full_group_list_fits_one_route_frame() {
    let worst = "\u{1}".repeat(proto::MAX_TEXT_LEN);
    let entries: Vec<ServeEntry> = (1..=999)
        .map(|id| ServeEntry {
            serve_id: ServeId::new(id).unwrap(),
            vnet_id: VnetId(id),
            vnet_name: worst.clone(),
            spec: ServeSpec {
                name: worst.clone(),
                serve_id: ServeId::new(id),
                kind: worst.clone(),
                ip: worst.clone(),
                port: 65535,
                info: worst.clone(),
            },
        })
        .collect();
    let msg = RouteMsg::Response {
        id: u32::MAX,
        body: Response::Serves(entries),
    };
    let mut buf = BytesMut::new();
    RouteCodec::new()
        .encode(msg.clone(), &mut buf)
        .expect("fits one route frame");
    assert!(
        buf.len() > MAX_FRAME_LEN,
        "the case is meant to exceed a vnet frame"
    );
    assert_eq!(VnetCodec::new().decode(&mut buf).unwrap(), Some(msg));
}
