//! The ini layer on arbitrary text: parsing, then every getter that does
//! not depend on route- or vnet-specific sections.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proto::ini::{is_host, IniFile, RouteBasics, ROUTE_KEYS};

/// Keys tried in every section: common ones, an empty one, and odd ones.
const KEYS: &[&str] = &[
    "ip",
    "port",
    "token",
    "heartbeat",
    "name",
    "tls",
    "cert",
    "key",
    "ca",
    "fingerprint",
    "",
    " ",
    "=",
    ";",
];

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let ini = match IniFile::parse("fuzz.ini", &text) {
        Ok(ini) => ini,
        Err(err) => {
            let _ = err.to_string();
            return;
        }
    };
    let _ = ini.file();
    let mut names = Vec::new();
    for section in ini.sections() {
        names.push(section.name());
        let _ = section.check_keys(ROUTE_KEYS);
        let _ = section.check_keys(&[]);
        let _ = section.check_keys(KEYS);
        for &key in KEYS {
            if let Some(value) = section.get(key) {
                assert!(!value.is_empty() && value.trim() == value);
                let _ = is_host(value);
            }
            let _ = section.required(key).map_err(|e| e.to_string());
            let _ = section.number(key, 0..=u32::MAX).map_err(|e| e.to_string());
            let _ = section.number(key, 1..=3600);
            #[allow(clippy::reversed_empty_ranges)]
            let _ = section.number(key, 10..=1);
            let _ = section.port(key, 0);
            let _ = section.port(key, u16::MAX);
            let _ = section.bool(key, true).map_err(|e| e.to_string());
            if let Ok(Some(host)) = section.host(key) {
                assert!(is_host(host));
            }
        }
    }
    for name in names {
        assert_eq!(ini.section(name).map(|s| s.name()), Some(name));
        let _ = ini.error(name, Some("k"), "m").to_string();
    }
    // `[route]` is read the same way by both programs.
    if let Ok((route, section)) = RouteBasics::from_ini(&ini) {
        assert!(is_host(&route.ip));
        assert_eq!(section.name(), "route");
        if let Some(text) = section.get("fingerprint") {
            if let Some(pin) = proto::hex::normalize_fingerprint(text) {
                assert_eq!(pin.len(), 64);
                assert!(pin
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
            }
        }
        let _ = route.addr();
    }
});
