//! TLS 1.3 between vnets and the route: a self-made certificate pinned by
//! fingerprint, a CA-signed one, and every mismatch refused with a reason.
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use testkit::*;
use tokio_util::sync::CancellationToken;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vnet-tls-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The route's TLS side as a config in `dir` with `extra` in [route]
/// makes it.
fn route_tls(dir: &Path, extra: &str) -> Result<route::tls::ServerTls, String> {
    let text = format!("[route]\nip=127.0.0.1\nport=0\ntls=true\n{extra}");
    let config = route::RouteConfig::parse("route.ini", &text, dir).map_err(|e| e.to_string())?;
    Ok(config.tls.expect("tls=true"))
}

async fn route_with_tls(tls: route::tls::ServerTls) -> Route {
    Route::with(route::RouteConfig {
        tls: Some(tls),
        ..Default::default()
    })
    .await
}

/// A vnet whose config file lives in `dir` (so relative paths resolve
/// there), with `route_extra` added to [route].
fn vnet_in(
    dir: &Path,
    name: &str,
    route: SocketAddr,
    route_extra: &str,
    body: &str,
) -> Result<Vnet, String> {
    let path = dir.join(format!("{name}.ini"));
    std::fs::write(
        &path,
        format!(
            "[route]\nip=127.0.0.1\nport={}\n{route_extra}{body}",
            route.port()
        ),
    )
    .unwrap();
    let config = vnet::VnetConfig::load(&path).map_err(|e| e.to_string())?;
    Ok(Vnet {
        handle: vnet::start(config, CancellationToken::new()),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_self_made_certificate_pinned_by_fingerprint() {
    let dir = temp_dir("pinned");
    let made = route_tls(&dir, "").unwrap();
    assert!(made.made.is_some());
    assert!(dir.join(route::tls::MADE_CERT).exists() && dir.join(route::tls::MADE_KEY).exists());
    assert_eq!(made.fingerprint.len(), 64);
    assert!(made
        .fingerprint
        .chars()
        .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    // Kept beside the config: the next start has the same fingerprint.
    let again = route_tls(&dir, "").unwrap();
    assert!(again.made.is_none());
    assert_eq!(again.fingerprint, made.fingerprint);

    let route = route_with_tls(made.clone()).await;
    let addr = route.addr;
    let echo = tagged_echo("over-tls").await;
    // Colons and capitals are fine in the pin.
    let shouty = made
        .fingerprint
        .to_ascii_uppercase()
        .as_bytes()
        .chunks(2)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join(":");
    let pin = format!("tls=true\nfingerprint={shouty}\n");
    let home = vnet_in(&dir, "home", addr, &pin, &serve_section("echo", 730, echo)).unwrap();
    let office = vnet_in(&dir, "office", addr, &pin, &use_section("echo", 730)).unwrap();
    assert_eq!(
        connect_tagged(office.open_use("echo").await).await.1,
        "over-tls"
    );

    // A wrong pin is refused, and the message shows both fingerprints.
    let wrong = "ab".repeat(32);
    let impostor = vnet_in(
        &dir,
        "wrong",
        addr,
        &format!("tls=true\nfingerprint={wrong}\n"),
        "",
    )
    .unwrap();
    let status = impostor.wait("refused", |s| s.route_error.is_some()).await;
    let reason = status.route_error.unwrap();
    assert!(
        reason.contains(&made.fingerprint) && reason.contains(&wrong),
        "{reason}"
    );

    // A vnet without TLS cannot talk to a TLS route.
    let plain = vnet_in(&dir, "plain", addr, "", "").unwrap();
    let status = plain
        .wait("plain refused", |s| s.route_error.is_some())
        .await;
    assert!(status.vnet_id.is_none());

    for vnet in [plain, impostor, office, home] {
        vnet.stop().await;
    }
    route.stop().await;
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_signed_by_a_ca() {
    let dir = temp_dir("ca");
    // A CA, and a route certificate it signs for 127.0.0.1.
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::from_params(&ca_params, &ca_key);
    let route_key = rcgen::KeyPair::generate().unwrap();
    let route_cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&route_key, &issuer)
        .unwrap();
    std::fs::write(dir.join("ca.pem"), ca_cert.pem()).unwrap();
    std::fs::write(dir.join("route.pem"), route_cert.pem()).unwrap();
    std::fs::write(dir.join("route.key"), route_key.serialize_pem()).unwrap();

    let tls = route_tls(&dir, "cert=route.pem\nkey=route.key\n").unwrap();
    assert!(tls.made.is_none());
    let route = route_with_tls(tls).await;
    let addr = route.addr;
    let echo = tagged_echo("signed").await;
    let trust = "tls=true\nca=ca.pem\n";
    let home = vnet_in(&dir, "home", addr, trust, &serve_section("echo", 731, echo)).unwrap();
    let office = vnet_in(&dir, "office", addr, trust, &use_section("echo", 731)).unwrap();
    assert_eq!(
        connect_tagged(office.open_use("echo").await).await.1,
        "signed"
    );

    // Trusting another CA fails.
    let other_key = rcgen::KeyPair::generate().unwrap();
    let other = ca_params.self_signed(&other_key).unwrap();
    std::fs::write(dir.join("other.pem"), other.pem()).unwrap();
    let stranger = vnet_in(&dir, "stranger", addr, "tls=true\nca=other.pem\n", "").unwrap();
    let status = stranger.wait("refused", |s| s.route_error.is_some()).await;
    assert!(status
        .route_error
        .unwrap()
        .to_lowercase()
        .contains("certificate"));

    for vnet in [stranger, office, home] {
        vnet.stop().await;
    }
    route.stop().await;
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_config_mistakes_name_the_key() {
    let dir = temp_dir("mistakes");
    let route = Route::start().await;
    let cases = [
        ("tls=true\n", "[route] tls: needs ca= or fingerprint="),
        (
            "tls=true\nfingerprint=abc\n",
            "[route] fingerprint: is not a SHA-256 fingerprint",
        ),
        (
            "tls=true\nca=missing.pem\n",
            "[route] ca: cannot read certificates from",
        ),
        (
            &*format!("tls=true\nca=x.pem\nfingerprint={}\n", "0".repeat(64)),
            "[route] fingerprint: give either ca or fingerprint",
        ),
    ];
    for (extra, want) in cases {
        let err = vnet_in(&dir, "bad", route.addr, extra, "")
            .err()
            .expect("a config error");
        assert!(err.contains(want), "{extra:?}: {err}");
    }
    let err = route_tls(&dir, "cert=nope.pem\nkey=nope.key\n")
        .err()
        .unwrap();
    assert!(
        err.to_string()
            .contains("[route] cert: cannot read certificates"),
        "{err}"
    );
    route.stop().await;
    std::fs::remove_dir_all(dir).unwrap();
}
