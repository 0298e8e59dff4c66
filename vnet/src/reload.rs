//! Applying a reloaded config as a difference: what changed in the file
//! since it was last read, and nothing else.
//!
//! A serve or use the file lists as before is left as it is, whatever the
//! shell did to it meanwhile (closed, opened, deleted); one the file added
//! or changed starts (again) as the file says, and one the file dropped
//! stops. What was made in the shell stays, unless the file now defines
//! the same name: then the file wins. Grants (unserve) are never touched.
//! The summary says which shell-made items were kept or replaced. Serves
//! and uses are compared by one generic [`plan`]. A changed `[route]`,
//! name or group reconnects the control connection.
use tracing::info;

use crate::config::{ServeConfig, UseConfig, VnetConfig};
use crate::control::command::ControlSender;
use crate::current::{Current, InForce};
use crate::model::{Model, ServeStatus, UseStatus};
use crate::outcome;
use crate::serves::Serves;
use crate::uses::Uses;

/// What a reload did, by `serve.KEY` and `use.KEY`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadSummary {
    /// Started anew: new in the file.
    pub added: Vec<String>,
    /// Stopped and removed: gone from the file.
    pub removed: Vec<String>,
    /// Restarted with the file's new settings.
    pub changed: Vec<String>,
    /// Made in the shell and not in the file: left running.
    pub kept: Vec<String>,
    /// Made in the shell, and now defined by the file: the file's won.
    pub replaced: Vec<String>,
    /// Whether the control connection was re-established.
    pub reconnected: bool,
}

/// A kind of item a config lists and a reload compares.
trait Item: Clone + PartialEq {
    /// Its section prefix: `serve` or `use`.
    const KIND: &'static str;
    fn key(&self) -> &str;
}

impl Item for ServeConfig {
    const KIND: &'static str = "serve";
    fn key(&self) -> &str {
        &self.key
    }
}

impl Item for UseConfig {
    const KIND: &'static str = "use";
    fn key(&self) -> &str {
        &self.key
    }
}

/// An item running now, as a reload sees it.
struct Running<'a> {
    key: &'a str,
    grant: bool,
    from_shell: bool,
}

/// What to stop and what to start for one kind of item.
struct Plan<C> {
    /// Keys of replaced items (in file order), then of removed ones.
    stop: Vec<String>,
    /// Changed and added items, in file order.
    start: Vec<C>,
}

/// Compares the file `now` with the file as `last` read, given what is
/// `running`, noting the difference in `summary`.
fn plan<C: Item>(
    last: &[C],
    now: &[C],
    running: &[Running],
    summary: &mut ReloadSummary,
) -> Plan<C> {
    let name = |key: &str| format!("{}.{key}", C::KIND);
    let find = |key: &str| running.iter().find(|r| r.key == key);
    let mut plan = Plan {
        stop: Vec::new(),
        start: Vec::new(),
    };
    for item in now {
        let before = last.iter().find(|l| l.key() == item.key());
        if before == Some(item) {
            continue; // the file did not change it
        }
        match find(item.key()) {
            Some(r) if r.grant => continue,
            Some(r) => {
                plan.stop.push(item.key().to_string());
                let list = if r.from_shell {
                    &mut summary.replaced
                } else {
                    &mut summary.changed
                };
                list.push(name(item.key()));
            }
            None if before.is_some() => summary.changed.push(name(item.key())),
            None => summary.added.push(name(item.key())),
        }
        plan.start.push(item.clone());
    }
    for item in last {
        let still = now.iter().any(|n| n.key() == item.key());
        match find(item.key()) {
            Some(r) if !still && !r.grant && !r.from_shell => {
                plan.stop.push(item.key().to_string());
                summary.removed.push(name(item.key()));
            }
            _ => {}
        }
    }
    for r in running {
        if r.from_shell && !plan.stop.iter().any(|key| key == r.key) {
            summary.kept.push(name(r.key));
        }
    }
    plan
}

/// Applies `config` as a difference. The config is already validated, so
/// this cannot fail half-way on bad input; refusals from the route show in
/// the status as usual.
pub(crate) async fn apply(
    current: &Current,
    model: &Model,
    serves: &Serves,
    uses: &Uses,
    control: &ControlSender,
    config: VnetConfig,
) -> ReloadSummary {
    let mut summary = ReloadSummary::default();
    let old = current.get();
    let reconnect = old.route != config.route
        || old.options.name != config.vnet.name
        || old.options.group != config.vnet.group;
    // Read once, at start: the pairs and the key pair were made for the
    // secret, the direct socket bound on its port, the runtime built
    // with its threads.
    let (was, now) = (&old.options, &config.vnet);
    let at_start = [
        ("secret", was.secret != now.secret),
        ("direct_port", was.direct_port != now.direct_port),
        ("threads", was.threads != now.threads),
    ];
    for (key, _) in at_start.iter().filter(|(_, changed)| *changed) {
        tracing::warn!("{key}= changed in the file; in force after a restart");
    }
    let new = InForce::new(&config);
    let status = model.borrow().clone();

    let running: Vec<_> = status
        .serves
        .iter()
        .map(|(key, s)| Running {
            key,
            grant: s.grant.is_some(),
            from_shell: s.from_shell,
        })
        .collect();
    let serve_plan = plan(&old.file.serves, &new.file.serves, &running, &mut summary);
    for key in &serve_plan.stop {
        let _ = serves.delete(key).await;
    }
    let running: Vec<_> = status
        .uses
        .iter()
        .map(|(key, u)| Running {
            key,
            grant: u.grant.is_some(),
            from_shell: u.from_shell,
        })
        .collect();
    let use_plan = plan(&old.file.uses, &new.file.uses, &running, &mut summary);
    for key in &use_plan.stop {
        let _ = uses.delete(key).await;
    }
    current.set(new);

    // New serves enter the model first. A reconnect then registers every
    // active serve by itself; without one, each new serve is registered
    // here. Never both, or a serve would register twice.
    let mut to_register = Vec::new();
    for serve in serve_plan.start {
        if serves.insert(ServeStatus::new(serve.clone())).is_ok() && serve.active {
            to_register.push(serve.key);
        }
    }
    if reconnect {
        control.reconnect().await;
        summary.reconnected = true;
    } else {
        for key in to_register {
            control.register_later(key).await;
        }
    }
    // Uses start after the old listeners were released (deletes above
    // await that), so a use that moved keeps its port. Errors show in the
    // status.
    for use_ in use_plan.start {
        let key = use_.key.clone();
        let active = use_.active && use_.serve_id.is_some();
        if uses.insert(UseStatus::new(use_)).is_ok() && active {
            let _ = uses.open(&key).await;
        }
    }
    info!(
        target: outcome::RELOAD,
        added = ?summary.added,
        removed = ?summary.removed,
        changed = ?summary.changed,
        kept = ?summary.kept,
        replaced = ?summary.replaced,
        reconnected = summary.reconnected,
        "config reloaded"
    );
    summary
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serve(key: &str, port: u16) -> ServeConfig {
        ServeConfig {
            key: key.into(),
            name: key.into(),
            serve_id: None,
            ip: "127.0.0.1".into(),
            port,
            info: String::new(),
            active: true,
        }
    }

    fn running(key: &str, grant: bool, from_shell: bool) -> Running<'_> {
        Running {
            key,
            grant,
            from_shell,
        }
    }

    #[test]
    fn a_plan_applies_what_the_file_changed_and_keeps_what_the_shell_made() {
        let last = [serve("a", 1), serve("b", 2), serve("c", 3), serve("e", 6)];
        let now = [
            serve("a", 1),
            serve("b", 22),
            serve("d", 5),
            serve("s", 7),
            serve("e", 6),
        ];
        let running = [
            // "a" is unchanged in the file: left alone even if the shell
            // changed it; "e" was deleted in the shell: stays deleted.
            running("a", false, false),
            running("b", false, false),
            running("c", false, false),
            running("g", true, false),
            running("s", false, true),
            running("t", false, true),
        ];
        let mut summary = ReloadSummary::default();
        let plan = plan(&last, &now, &running, &mut summary);
        assert_eq!(plan.stop, ["b", "s", "c"]);
        let started: Vec<_> = plan
            .start
            .iter()
            .map(|s| (s.key.as_str(), s.port))
            .collect();
        assert_eq!(started, [("b", 22), ("d", 5), ("s", 7)]);
        assert_eq!(
            summary,
            ReloadSummary {
                added: vec!["serve.d".into()],
                removed: vec!["serve.c".into()],
                changed: vec!["serve.b".into()],
                kept: vec!["serve.t".into()],
                replaced: vec!["serve.s".into()],
                reconnected: false,
            }
        );
    }
}
