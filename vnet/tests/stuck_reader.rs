//! A vnet that stops reading its control connection cannot wedge the
//! route: it is cut off once, with one log line, and gone from the
//! registry within a heartbeat, while the other vnets keep working.
use proto::message::{Request, ServeSpec, VnetMsg};
use proto::ServeId;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use testkit::raw;
use testkit::*;

/// How many vnets stop reading.
const STUCK: usize = 20;
/// The route's heartbeat in this test.
const HEARTBEAT: Duration = Duration::from_secs(2);

/// Log lines, kept to be counted.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    fn lines_with(&self, needle: &str) -> usize {
        let text = String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned();
        text.lines().filter(|line| line.contains(needle)).count()
    }
}

fn spec(id: u16) -> ServeSpec {
    ServeSpec {
        name: "churn".into(),
        serve_id: ServeId::new(id),
        kind: "tcp".into(),
        ip: "127.0.0.1".into(),
        port: 1,
        info: "x".repeat(200),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vnet_that_stops_reading_is_cut_off_once_and_forgotten() {
    let logs = Logs::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();
    let route = Route::with(route::RouteConfig {
        heartbeat: HEARTBEAT,
        ..Default::default()
    })
    .await;
    let echo = tagged_echo("alive").await;
    let home = Vnet::start(&route, &serve_section("echo", 700, echo));
    let office = Vnet::start(&route, &use_section("echo", 700));
    let use_addr = office.open_use("echo").await;

    // They keep pinging, so the heartbeat alone does not give them away;
    // they just never read.
    let mut stuck = Vec::new();
    for i in 0..STUCK {
        let name = format!("stuck-{i}");
        let session = raw::Session::join_with_buffer(route.addr, &name, "default", 2048).await;
        let (mut sink, unread) = futures::StreamExt::split(session.control);
        let pinger = tokio::spawn(async move {
            for id in 0.. {
                let ping = VnetMsg::Request {
                    id,
                    body: Request::Ping,
                };
                if futures::SinkExt::send(&mut sink, ping).await.is_err() {
                    return;
                }
                tokio::time::sleep(HEARTBEAT / 4).await;
            }
        });
        stuck.push((pinger, unread));
    }
    let listed = |vnets: &[proto::message::VnetEntry]| {
        vnets
            .iter()
            .filter(|v| v.name.starts_with("stuck-"))
            .count()
    };
    assert_eq!(
        listed(&within("list", office.handle.vnets()).await.unwrap()),
        STUCK
    );

    // Another vnet churns a serve: every change is an event for every
    // vnet of the group, which the stuck ones never read.
    let mut churn = raw::Session::join(route.addr, "churn", "default", "").await;
    let started = Instant::now();
    let mut ops = 0u32;
    let gone = loop {
        for id in 1..=50u16 {
            churn
                .send(u32::from(id), Request::RegisterServe(spec(id)))
                .await;
        }
        for id in 1..=50u16 {
            let serve_id = ServeId::new(id).unwrap();
            churn
                .send(1000 + u32::from(id), Request::UnregisterServe { serve_id })
                .await;
        }
        ops += 100;
        let vnets = within("list", office.handle.vnets()).await.unwrap();
        if listed(&vnets) == 0 {
            break started.elapsed();
        }
        assert!(
            started.elapsed() < 4 * HEARTBEAT + Duration::from_secs(10) && ops < 40_000,
            "{} stuck vnets still listed after {ops} events and {:?}",
            listed(&vnets),
            started.elapsed()
        );
        // Drain the churning vnet's own answers so it keeps reading.
        while let Ok(Some(_)) = tokio::time::timeout(
            Duration::from_millis(1),
            futures::StreamExt::next(&mut churn.control),
        )
        .await
        {}
    };
    println!("stuck vnets gone after {ops} events, {gone:?}");

    // The others kept working throughout and still do.
    assert_eq!(connect_tagged(use_addr).await.1, "alive");
    let rtt = within("ping", office.handle.ping()).await.unwrap();
    assert!(rtt < Duration::from_secs(1), "ping took {rtt:?}");
    // One line each when it joined, one when it was cut off: no flood.
    let left = logs.lines_with("vnet left");
    let about_them = logs.lines_with("name=stuck-");
    assert!(
        left >= STUCK && about_them == 2 * STUCK,
        "{about_them} log lines about {STUCK} vnets that stopped reading ({left} left)"
    );
    for (pinger, _) in &stuck {
        pinger.abort();
    }
    drop(stuck);
    drop(churn);
    stop_all(route, [office, home]).await;
}
