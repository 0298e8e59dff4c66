//! Hardening item 1: a stream ends cleanly at one end only if it ended
//! cleanly at the other.
//!
//! Any end other than a clean one (a reset, a vnet or the route dying or
//! stopped, a data connection cut) must reach the client and the service
//! as a reset: the reader gets an error such as `ConnectionReset`, never a
//! clean EOF after missing bytes, in both directions, within a bound. A
//! clean end still passes on as a clean half-close, byte-exact.
//!
//! Each test maps one 50 MiB stream through a use (client -> vnet
//! "office" -> route -> vnet "home" -> service) and cuts it in the middle:
//! the reader reads slowly until it has 5 MiB, so every hop is full and
//! moving, then the cut happens (the writer holds back everything past
//! 10 MiB until it has), then the reader reads on at full speed. The cut
//! is a process killed or stopped, an end resetting its socket, or (with a
//! relay standing in for the network) a data connection reset. Every
//! scenario runs over plain TCP and over TLS (`plain` and `tls` in each
//! test's module). Each test prints what both ends saw.
use std::net::TcpListener;
use std::time::Duration;

use e2e::net::{Net, RouteOpts};
use e2e::process::Signal;
use e2e::relay::Relay;
use e2e::stream::{transfer, Dir, Outcome, Plan};
use e2e::MIB;

const SERVE_ID: u16 = 700;
/// Stream length.
const TOTAL: u64 = 50 * MIB;
/// The writer sends this much, then waits for the cut.
const HEAD: u64 = 10 * MIB;
/// The reader reads slowly up to here, then the cut happens.
const SLOW_UNTIL: u64 = 5 * MIB;
/// After the cut the end (error or EOF) must arrive within this.
const BOUND: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy)]
enum Who {
    /// "home", the vnet with the serve.
    ServingVnet,
    Route,
    /// "office", the vnet with the use.
    VisitingVnet,
}

#[derive(Debug, Clone, Copy)]
enum How {
    /// SIGKILL: the process dies on the spot.
    Kill,
    /// SIGTERM: the process stops itself.
    Term,
}

#[derive(Debug, Clone, Copy)]
enum Cut {
    /// A normal stream.
    Nothing,
    /// A normal stream, with both vnets dialling through relays (the
    /// control for [`Cut::ResetLink`]).
    NothingViaRelays,
    /// The writer (service in a download, client in an upload) resets its
    /// socket after the head.
    WriterResets,
    /// A process gets a signal once the reader has 5 MiB.
    Signal(Who, How),
    /// The data connection between this vnet and the route is reset (RST
    /// both ways) once the reader has 5 MiB; every process stays up. Both
    /// vnets then dial the route through a relay of their own.
    ResetLink(Who),
}

#[derive(Debug, Clone, Copy)]
enum Expect {
    /// The client must see an error.
    ClientError,
    /// The service must see an error.
    ServiceError,
    /// Both must.
    BothError,
    /// Both ends see the whole stream and clean half-closes both ways.
    Clean,
}

fn run(tls: bool, dir: Dir, cut: Cut) -> Outcome {
    let mut net = Net::start(RouteOpts { tls });
    let service = TcpListener::bind("127.0.0.1:0").expect("service listener");
    let port = service.local_addr().expect("service port").port();
    let relays = matches!(cut, Cut::ResetLink(_) | Cut::NothingViaRelays)
        .then(|| (Relay::start(net.route_addr), Relay::start(net.route_addr)));
    let (home_via, office_via) = match &relays {
        Some((home, office)) => (home.addr(), office.addr()),
        None => (net.route_addr, net.route_addr),
    };
    let mut home = net.serving_vnet_via("home", SERVE_ID, port, home_via);
    let (mut office, use_addr) = net.visiting_vnet_via("office", SERVE_ID, office_via);
    let plan = Plan {
        dir,
        total: TOTAL,
        head: HEAD,
        slow_until: SLOW_UNTIL,
        writer_resets: matches!(cut, Cut::WriterResets),
        bound: BOUND,
    };
    transfer(use_addr, service, &plan, || match cut {
        Cut::Nothing | Cut::NothingViaRelays | Cut::WriterResets => {}
        Cut::Signal(who, how) => {
            let target = match who {
                Who::ServingVnet => &mut home,
                Who::Route => &mut net.route,
                Who::VisitingVnet => &mut office,
            };
            match how {
                How::Kill => target.kill9(),
                How::Term => target.signal(Signal::TERM),
            }
        }
        Cut::ResetLink(who) => {
            let (home_relay, office_relay) = relays.as_ref().expect("relays for a link cut");
            let relay = match who {
                Who::ServingVnet => home_relay,
                Who::VisitingVnet => office_relay,
                Who::Route => unreachable!("a link is named by its vnet"),
            };
            let carried = relay.reset_busiest();
            assert!(carried.is_some(), "no connection to reset at the relay");
        }
    })
}

fn check(name: &str, tls: bool, dir: Dir, cut: Cut, expect: Expect) {
    let label = format!("{name} [{}]", if tls { "tls" } else { "plain" });
    let outcome = run(tls, dir, cut);
    let seen = outcome.describe(TOTAL);
    eprintln!("{label}:\n  {seen}");
    match expect {
        Expect::ClientError => assert!(
            outcome.client.saw_error(),
            "{label}: the client must see an error within {BOUND:?} of the cut, not a clean end:\n  {seen}"
        ),
        Expect::ServiceError => assert!(
            outcome.service.saw_error(),
            "{label}: the service must see an error within {BOUND:?} of the cut, not a clean end:\n  {seen}"
        ),
        Expect::BothError => assert!(
            outcome.client.saw_error() && outcome.service.saw_error(),
            "{label}: both ends must see an error within {BOUND:?} of the cut, not a clean end:\n  {seen}"
        ),
        Expect::Clean => assert!(
            outcome.client.clean(TOTAL) && outcome.service.clean(TOTAL),
            "{label}: both ends must see all {TOTAL} bytes and clean half-closes both ways:\n  {seen}"
        ),
    }
}

/// One scenario, as `NAME::plain` and `NAME::tls`.
macro_rules! scenario {
    ($(#[$doc:meta])* $name:ident: $dir:expr, $cut:expr, $expect:expr) => {
        $(#[$doc])*
        mod $name {
            use super::*;

            #[test]
            fn plain() {
                check(stringify!($name), false, $dir, $cut, $expect);
            }

            #[test]
            fn tls() {
                check(stringify!($name), true, $dir, $cut, $expect);
            }
        }
    };
}

scenario! {
    /// 1. The serving vnet is SIGKILLed mid-download: the client must not
    /// take the end of its stream for a clean one.
    download_serving_vnet_sigkill: Dir::Download, Cut::Signal(Who::ServingVnet, How::Kill), Expect::ClientError
}

scenario! {
    /// 2. The route is SIGKILLed mid-download.
    download_route_sigkill: Dir::Download, Cut::Signal(Who::Route, How::Kill), Expect::ClientError
}

scenario! {
    /// 3. The visiting vnet is SIGKILLed mid-download: the service, which
    /// writes on after the kill (and then reads), must not be able to
    /// believe the client got everything.
    download_visiting_vnet_sigkill: Dir::Download, Cut::Signal(Who::VisitingVnet, How::Kill), Expect::ServiceError
}

scenario! {
    /// 4a. The serving vnet is stopped (SIGTERM) mid-download.
    download_serving_vnet_sigterm: Dir::Download, Cut::Signal(Who::ServingVnet, How::Term), Expect::ClientError
}

scenario! {
    /// 4b. The route is stopped (SIGTERM) mid-download.
    download_route_sigterm: Dir::Download, Cut::Signal(Who::Route, How::Term), Expect::ClientError
}

scenario! {
    /// 5. The service resets its connection after 10 MiB of a download.
    download_service_resets: Dir::Download, Cut::WriterResets, Expect::ClientError
}

scenario! {
    /// 6. The client resets its connection after 10 MiB of an upload.
    upload_client_resets: Dir::Upload, Cut::WriterResets, Expect::ServiceError
}

scenario! {
    /// 7. The visiting vnet is SIGKILLed mid-upload.
    upload_visiting_vnet_sigkill: Dir::Upload, Cut::Signal(Who::VisitingVnet, How::Kill), Expect::ServiceError
}

scenario! {
    /// The visiting vnet's data connection to the route is reset
    /// mid-download (the network, not a process): both ends must hear of
    /// it.
    download_visiting_link_reset: Dir::Download, Cut::ResetLink(Who::VisitingVnet), Expect::BothError
}

scenario! {
    /// The serving vnet's data connection is reset mid-download.
    download_serving_link_reset: Dir::Download, Cut::ResetLink(Who::ServingVnet), Expect::BothError
}

scenario! {
    /// The visiting vnet's data connection is reset mid-upload.
    upload_visiting_link_reset: Dir::Upload, Cut::ResetLink(Who::VisitingVnet), Expect::BothError
}

scenario! {
    /// The serving vnet's data connection is reset mid-upload.
    upload_serving_link_reset: Dir::Upload, Cut::ResetLink(Who::ServingVnet), Expect::BothError
}

scenario! {
    /// 8a. Control: a whole download arrives byte-exact with a clean EOF,
    /// and the client's count comes back over a clean half-close.
    download_clean: Dir::Download, Cut::Nothing, Expect::Clean
}

scenario! {
    /// 8b. Control: a whole upload, and the service's count back.
    upload_clean: Dir::Upload, Cut::Nothing, Expect::Clean
}

scenario! {
    /// Control for the link resets: the relays pass a whole download and
    /// its half-closes through unchanged.
    download_clean_via_relays: Dir::Download, Cut::NothingViaRelays, Expect::Clean
}

scenario! {
    /// Control for the link resets: a whole upload through the relays.
    upload_clean_via_relays: Dir::Upload, Cut::NothingViaRelays, Expect::Clean
}
