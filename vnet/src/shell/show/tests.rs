//! Every `show` topic fits 80 columns, whatever the lengths of the names,
//! infos and reasons in it, and says so in one line when empty.
use super::*;
use crate::config::VnetConfig;
use crate::model::{ServeStatus, UseStatus};
use crate::shell::table::WIDTH;
use proto::message::ServeSpec;
use proto::{ServeId, VnetId};

const LONG: &str = "a long text that goes on and on, as a reason for a refusal \
    or an info field can, well past the width of any ordinary terminal window";

fn fits(topic: &str, out: &str) {
    for line in out.lines() {
        assert!(
            line.chars().count() <= WIDTH,
            "{topic}: a line over {WIDTH} columns:\n{out}"
        );
    }
}

fn config() -> VnetConfig {
    let name = "n".repeat(60);
    let text = format!(
        "[route]\nip=route-host-with-a-long-name.example.internal\nport=7749\n\
         [vnet]\nname={name}\ngroup={name}\n\
         [serve.{name}]\nport=65535\ninfo={LONG}\n\
         [use.{name}]\nserveid=999\nip=127.0.0.1\nport=65535\n"
    );
    VnetConfig::parse("long.ini", &text).unwrap()
}

fn status(config: &VnetConfig) -> Status {
    let mut status = Status {
        vnet_id: None,
        route_error: Some(LONG.into()),
        ..Status::default()
    };
    for serve in &config.serves {
        let mut row = ServeStatus::new(serve.clone());
        row.state = ServeState::Refused(LONG.into());
        status.serves.insert(serve.key.clone(), row);
    }
    for use_ in &config.uses {
        let mut row = UseStatus::new(use_.clone());
        row.error = Some(LONG.into());
        status.uses.insert(use_.key.clone(), row);
    }
    status
}

#[test]
fn every_topic_fits_80_columns() {
    let config = config();
    let status = status(&config);
    let entry = ServeEntry {
        serve_id: ServeId::new(999).unwrap(),
        vnet_id: VnetId(99),
        vnet_name: "v".repeat(60),
        spec: ServeSpec {
            name: "s".repeat(60),
            serve_id: None,
            kind: "tcp".into(),
            ip: "service-host-with-a-long-name.example.internal".into(),
            port: 65535,
            info: LONG.into(),
        },
    };
    let vnet_entry = VnetEntry {
        vnet_id: VnetId(99),
        name: "v".repeat(60),
        serves: 999,
        connected_unix: 0,
    };
    fits("serves", &serves(&[entry], false));
    // Wrapped, not cut: every word of the reason is there.
    let words = |text: &str| text.split_whitespace().collect::<Vec<_>>().join(" ");
    let row = VnetRow {
        entry: vnet_entry,
        e2e: format!("no: {}", "a long reason ".repeat(5)),
        direct: format!("no: {LONG}"),
    };
    let listed = vnets(&[row], false);
    fits("vnets", &listed);
    assert!(words(&listed).contains(&words(LONG)), "{listed}");
    let mine = local_serves(&status, false);
    fits("serve", &mine);
    assert!(mine.contains("refused [1]"), "{mine}");
    let uses = local_uses(&status, &BTreeMap::new(), false);
    fits("use", &uses);
    assert!(uses.contains("[1]") && uses.contains("relay"), "{uses}");
    let key = config.uses[0].key.clone();
    let direct = BTreeMap::from([(key, Some("198.18.0.2:4433".parse().unwrap()))]);
    let json: serde_json::Value =
        serde_json::from_str(&local_uses(&status, &direct, true)).unwrap();
    assert_eq!(json[0]["path"], "direct");
    assert_eq!(json[0]["direct_addr"], "198.18.0.2:4433");
    assert!(local_uses(&status, &direct, false).contains("direct"));
    let own = vnet(&status, &config.vnet, &config.route, false);
    fits("vnet", &own);
    assert!(words(&own).contains(&words(LONG)), "{own}");
    assert!(words(&mine).contains(&words(LONG)), "{mine}");
}

#[test]
fn an_empty_topic_is_one_line() {
    let status = Status::default();
    for out in [
        serves(&[], false),
        vnets(&[], false),
        local_serves(&status, false),
        local_uses(&status, &BTreeMap::new(), false),
    ] {
        assert_eq!(out.lines().count(), 1, "{out}");
        assert!(out.starts_with("no "), "{out}");
    }
}
