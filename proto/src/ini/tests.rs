use super::*;

const ORIGINAL: &str =
    "[route] ; route端的配置\nip=127.0.0.1 ; ip地址,必填项\nport=7749 ; 端口号,必填项\n";

#[test]
fn reads_the_original_format_with_inline_comments() {
    let ini = IniFile::parse("config.ini", ORIGINAL).unwrap();
    let (route, _) = RouteBasics::from_ini(&ini).unwrap();
    assert_eq!(route.ip, "127.0.0.1");
    assert_eq!(route.port, 7749);
    assert_eq!(route.addr(), "127.0.0.1:7749");
}

#[test]
fn ipv6_addresses_are_bracketed() {
    let ini = IniFile::parse("c", "[route]\nip=::\nport=1\n").unwrap();
    assert_eq!(RouteBasics::from_ini(&ini).unwrap().0.addr(), "[::]:1");
}

#[test]
fn errors_name_file_section_and_key() {
    let cases = [
        (
            "[route]\nport=1\n",
            "c.ini: [route] ip: is required but missing",
        ),
        (
            "[route]\nip=1.2.3.400\nport=1\n",
            "c.ini: [route] ip: \"1.2.3.400\" is not an IP address or host name",
        ),
        (
            "[route]\nip=h\nport=70000\n",
            "c.ini: [route] port: \"70000\" is not a number in 0-65535",
        ),
        (
            "[route]\nip=h\nport=1\nprot=2\n",
            "c.ini: [route] prot: unknown key (known here: ip, port, token, heartbeat, max_vnets, max_serves_per_vnet, max_connections, tls, cert, key, ca, fingerprint, status, status_token)",
        ),
        (
            "[route]\nip=h\nport=1\nport=2\n",
            "c.ini: [route] port: written more than once",
        ),
        (
            "[vnet]\nname=x\n",
            "c.ini: [route]: section is required but missing",
        ),
    ];
    for (text, want) in cases {
        let ini = IniFile::parse("c.ini", text).unwrap();
        assert_eq!(RouteBasics::from_ini(&ini).err().unwrap().to_string(), want);
    }
}

#[test]
fn a_malformed_line_is_named_as_written() {
    let cases = [
        (
            "[route]\nip=h\nport=1\n[serve.ssh]\nserveid 700\n",
            "c: line 5: \"serveid 700\" is neither key=value nor a [section] header (did you mean serveid=700?)",
        ),
        (
            "[route\nip=h\n",
            "c: line 1: \"[route\" starts a [section] header but has no closing ]",
        ),
    ];
    for (text, want) in cases {
        assert_eq!(IniFile::parse("c", text).err().unwrap().to_string(), want);
    }
}

#[test]
fn a_comment_without_its_space_gets_a_hint() {
    let err =
        RouteBasics::from_ini(&IniFile::parse("c", "[route]\nip=h\nport=7750;端口\n").unwrap())
            .err()
            .unwrap()
            .to_string();
    assert!(
        err.ends_with("a comment needs a space before its ; or # (`key=value ;comment`)"),
        "{err}"
    );
}

#[test]
fn a_missing_file_says_where_it_was_looked_for() {
    let err = IniFile::load(std::path::Path::new("surely-missing.ini"))
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.starts_with("surely-missing.ini: cannot read (looked for /"),
        "{err}"
    );
    assert!(
        err.ends_with("give the config file as the argument (see --help)"),
        "{err}"
    );
}

#[test]
fn repeated_sections_and_stray_keys_are_refused() {
    let err = IniFile::parse("c", "[route]\nip=a\n[route]\nport=1\n")
        .err()
        .unwrap();
    assert_eq!(
        err.to_string(),
        "c: [route]: section appears twice; names must be unique"
    );
    let err = IniFile::parse("c", "ip=a\n[route]\n").err().unwrap();
    assert_eq!(err.to_string(), "c ip: key outside any section");
}

#[test]
fn bools_accept_common_spellings() {
    let ini = IniFile::parse("c", "[s]\na=TRUE\nb=0\nc=maybe\n").unwrap();
    let s = ini.section("s").unwrap();
    assert!(s.bool("a", false).unwrap());
    assert!(!s.bool("b", true).unwrap());
    assert!(s.bool("missing", true).unwrap());
    assert!(s.bool("c", true).is_err());
}
