//! The direct path with `secret=`: the link is bound to the pair key
//! (each end proves it holds this TLS session with the key agreed through
//! the route), streams then go on it and never cross the route, where a
//! recording relay sees none of what the client and the service say;
//! vnets with different secrets never link.
use super::*;

const AUTO: &str = "direct=auto\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vnets_with_the_secret_go_direct_on_a_bound_link() {
    let route = Route::start().await;
    let (home_route, home_seen) = recording_relay(route.addr).await;
    let (office_route, office_seen) = recording_relay(route.addr).await;
    let service = marked_echo().await;
    let home = serving_home(home_route, "echo", service, Some(SECRET), AUTO).await;
    let (office, used) = using_office(office_route, "echo", Some(SECRET), AUTO).await;
    let home_id = direct_link_up(&home, &office, || exchange(used)).await;
    assert_eq!(office.handle.end_to_end(home_id), "yes");
    let (home_before, office_before) = (
        home_seen.lock().unwrap().len(),
        office_seen.lock().unwrap().len(),
    );
    let before = office.handle.status().direct_streams;
    for _ in 0..3 {
        exchange(used).await;
    }
    let status = office.handle.status();
    assert_eq!(
        status.direct_streams,
        before + 3,
        "every stream went direct"
    );
    assert_eq!(status.lane_streams, 0, "no clear-text lane with a secret");
    for seen in [&home_seen, &office_seen] {
        assert!(!saw(seen, MARKER_UP) && !saw(seen, MARKER_DOWN.as_bytes()));
    }
    // The streams did not cross the route: its relays carried no more
    // than control traffic (a stream would add its markers and more).
    let grown = home_seen.lock().unwrap().len() - home_before + office_seen.lock().unwrap().len()
        - office_before;
    assert!(
        grown < 1000,
        "{grown} bytes crossed the route during direct streams"
    );
    stop_all(route, [office, home]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vnets_with_different_secrets_never_link() {
    let route = Route::start().await;
    let service = marked_echo().await;
    let home = serving_home(route.addr, "echo", service, Some(SECRET), AUTO).await;
    let other = "another secret, not the group's";
    let (office, used) = using_office(route.addr, "echo", Some(other), AUTO).await;
    let home_id = home.handle.status().vnet_id.unwrap();
    // The first stream asks for a link, and is refused (no pair key).
    assert_refused(used).await;
    let status = office
        .wait("office gives up on a link to home", |s| {
            matches!(s.direct.get(&home_id), Some(vnet::DirectState::Relay(_)))
        })
        .await;
    assert_eq!(status.direct_streams, 0);
    assert!(!home.handle.status().direct.values().any(|d| d.is_up()));
    stop_all(route, [office, home]).await;
}
