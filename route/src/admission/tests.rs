use super::*;

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn small() -> Arc<Admission> {
    Arc::new(Admission::new(Limits {
        total: 4,
        per_source: 2,
        failures: 2,
        refill: Duration::from_secs(10),
    }))
}

#[test]
fn a_full_source_loses_its_stalest_not_others() {
    let admission = small();
    let t = Instant::now();
    let a1 = admission.admit(ip("192.0.2.1"), t).unwrap();
    let a2 = admission
        .admit(ip("192.0.2.1"), t + Duration::from_millis(1))
        .unwrap();
    let b = admission.admit(ip("192.0.2.9"), t).unwrap();
    a1.progressed(t + Duration::from_millis(5));
    // The third from .1 pushes out .1's stalest: a2, whose last step is
    // older than a1's.
    let a3 = admission
        .admit(ip("192.0.2.1"), t + Duration::from_millis(6))
        .unwrap();
    assert!(a2.evicted.is_cancelled());
    assert!(!a1.evicted.is_cancelled() && !b.evicted.is_cancelled() && !a3.evicted.is_cancelled());
    assert_eq!(admission.waiting(), 3);
}

#[test]
fn a_full_route_loses_the_stalest_of_all_and_places_come_back() {
    let admission = small();
    let t = Instant::now();
    let places: Vec<Place> = (0..4)
        .map(|i| {
            admission
                .admit(ip(&format!("198.51.100.{i}")), t + Duration::from_millis(i))
                .unwrap()
        })
        .collect();
    places[0].progressed(t + Duration::from_millis(10));
    let newcomer = admission
        .admit(ip("203.0.113.1"), t + Duration::from_millis(11))
        .unwrap();
    assert!(places[1].evicted.is_cancelled(), "the stalest goes");
    assert!(!places[0].evicted.is_cancelled(), "progress counts");
    assert_eq!(admission.waiting(), 4);
    drop(places);
    drop(newcomer);
    assert_eq!(admission.waiting(), 0);
}

#[test]
fn an_ipv6_64_counts_as_one_source() {
    let admission = small();
    let t = Instant::now();
    let a = admission.admit(ip("2001:db8::1"), t).unwrap();
    let _b = admission
        .admit(ip("2001:db8::2"), t + Duration::from_millis(1))
        .unwrap();
    let _c = admission
        .admit(ip("2001:db8::ffff:3"), t + Duration::from_millis(2))
        .unwrap();
    assert!(a.evicted.is_cancelled());
    let other = admission.admit(ip("2001:db8:0:1::1"), t).unwrap();
    assert!(!other.evicted.is_cancelled());
    assert_eq!(
        Source::from(ip("::ffff:192.0.2.1")),
        Source::from(ip("192.0.2.1"))
    );
}

#[test]
fn failed_proofs_throttle_their_source_until_the_bucket_refills() {
    let admission = small();
    let t = Instant::now();
    let guesser = ip("192.0.2.66");
    admission.failed(guesser, t);
    assert!(
        admission.admit(guesser, t).is_ok(),
        "one failure is allowed"
    );
    admission.failed(guesser, t);
    let throttled = admission.admit(guesser, t).err().unwrap();
    assert_eq!(throttled.wait, Duration::from_secs(10));
    assert!(
        admission.admit(ip("192.0.2.67"), t).is_ok(),
        "others are not throttled"
    );
    assert!(admission
        .admit(guesser, t + Duration::from_secs(10))
        .is_ok());
}
