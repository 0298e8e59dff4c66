//! Applying a reloaded config as a difference. Serves and uses whose
//! settings are unchanged keep running with their connections; removed
//! ones stop, added ones start, changed ones restart. Serves and uses are
//! compared by one generic [`plan`]. A changed `[route]`, name or group
//! reconnects the control connection. Grants (unserve) are left alone.
use tracing::info;

use crate::config::{ServeConfig, UseConfig, VnetConfig};
use crate::control::command::ControlSender;
use crate::current::{Current, InForce};
use crate::model::{Model, ServeStatus, UseStatus};
use crate::serves::Serves;
use crate::uses::Uses;

/// What a reload did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadSummary {
    /// Keys started anew.
    pub added: Vec<String>,
    /// Keys stopped and removed.
    pub removed: Vec<String>,
    /// Keys restarted with new settings.
    pub changed: Vec<String>,
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

/// What to stop and what to start for one kind of item.
struct Plan<C> {
    /// Keys of changed items (in config order), then of removed ones.
    stop: Vec<String>,
    /// Changed and added items, in config order.
    start: Vec<C>,
}

/// Compares the `wanted` items (as the config would start them) with the
/// `running` ones (key, config, whether a grant), noting the difference
/// in `summary`. Grants are never removed.
fn plan<C: Item>(
    wanted: Vec<C>,
    running: &[(&str, &C, bool)],
    summary: &mut ReloadSummary,
) -> Plan<C> {
    let name = |key: &str| format!("{}.{key}", C::KIND);
    let mut plan = Plan {
        stop: Vec::new(),
        start: Vec::new(),
    };
    for item in wanted.iter() {
        match running.iter().find(|(key, _, _)| *key == item.key()) {
            Some((_, now, _)) if *now == item => {}
            Some(_) => {
                plan.stop.push(item.key().to_string());
                summary.changed.push(name(item.key()));
                plan.start.push(item.clone());
            }
            None => {
                summary.added.push(name(item.key()));
                plan.start.push(item.clone());
            }
        }
    }
    for (key, _, grant) in running {
        if !grant && !wanted.iter().any(|w| w.key() == *key) {
            plan.stop.push(key.to_string());
            summary.removed.push(name(key));
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
    current.set(InForce::new(config.vnet.clone(), config.route.clone()));
    let status = model.borrow().clone();

    let wanted = config.serves.iter().map(|serve| ServeConfig {
        active: config.starts_serve(serve),
        ..serve.clone()
    });
    let running: Vec<_> = status
        .serves
        .iter()
        .map(|(key, s)| (key.as_str(), &s.config, s.grant.is_some()))
        .collect();
    let serve_plan = plan(wanted.collect(), &running, &mut summary);
    for key in &serve_plan.stop {
        let _ = serves.delete(key).await;
    }

    let wanted = config.uses.iter().map(|use_| UseConfig {
        active: config.starts_use(use_),
        ..use_.clone()
    });
    let running: Vec<_> = status
        .uses
        .iter()
        .map(|(key, u)| (key.as_str(), &u.config, u.grant.is_some()))
        .collect();
    let use_plan = plan(wanted.collect(), &running, &mut summary);
    for key in &use_plan.stop {
        let _ = uses.delete(key).await;
    }

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
        added = ?summary.added,
        removed = ?summary.removed,
        changed = ?summary.changed,
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

    #[test]
    fn a_plan_keeps_the_unchanged_and_never_removes_grants() {
        let (same, moved, gone, grant) =
            (serve("a", 1), serve("b", 2), serve("c", 3), serve("g", 4));
        let running = [
            ("a", &same, false),
            ("b", &moved, false),
            ("c", &gone, false),
            ("g", &grant, true),
        ];
        let wanted = vec![serve("a", 1), serve("b", 22), serve("d", 5)];
        let mut summary = ReloadSummary::default();
        let plan = plan(wanted, &running, &mut summary);
        assert_eq!(plan.stop, ["b", "c"]);
        let started: Vec<_> = plan
            .start
            .iter()
            .map(|s| (s.key.as_str(), s.port))
            .collect();
        assert_eq!(started, [("b", 22), ("d", 5)]);
        assert_eq!(
            summary,
            ReloadSummary {
                added: vec!["serve.d".into()],
                removed: vec!["serve.c".into()],
                changed: vec!["serve.b".into()],
                reconnected: false,
            }
        );
    }
}
