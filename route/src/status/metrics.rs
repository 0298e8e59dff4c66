//! `/metrics`: the snapshot in Prometheus' text exposition format
//! (version 0.0.4), which every Prometheus reads and `promtool check
//! metrics` lints. (The `prometheus-client` crate writes only OpenMetrics,
//! whose counter families `promtool` reads as lacking help; this format is
//! a few lines.)
//!
//! The names are chosen once and documented in the README; labels take
//! only bounded values (group names, serve ids, fixed reasons), and label
//! values are escaped as the format asks.
use std::fmt::Write;

use super::snapshot::{ByReason, GroupStatus, Snapshot};

/// What `/metrics` answers with.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Counters only go up; gauges go both ways.
#[derive(Clone, Copy)]
enum Kind {
    Counter,
    Gauge,
}

/// A sample's labels, in order.
type Labels = Vec<(&'static str, String)>;

/// The text being written.
#[derive(Default)]
struct Exposition(String);

impl Exposition {
    /// One family: its help, its type, and its samples.
    fn family(
        &mut self,
        name: &str,
        help: &str,
        kind: Kind,
        samples: impl IntoIterator<Item = (Labels, f64)>,
    ) {
        let kind = match kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        };
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = write!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}\n");
        for (labels, value) in samples {
            self.0.push_str(name);
            if !labels.is_empty() {
                self.0.push('{');
                for (i, (key, value)) in labels.iter().enumerate() {
                    if i > 0 {
                        self.0.push(',');
                    }
                    let _ = write!(self.0, "{key}=\"{}\"", escape(value));
                }
                self.0.push('}');
            }
            let _ = writeln!(self.0, " {value}");
        }
    }
}

/// A label value as the format writes it: backslash, quote and newline
/// escaped.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn by_reason(reasons: &ByReason) -> impl Iterator<Item = (Labels, f64)> + '_ {
    let labels = |reason: &str| vec![("reason", reason.to_string())];
    reasons.0.iter().map(move |(r, n)| (labels(r), *n as f64))
}

/// The snapshot as exposition text.
pub fn render(s: &Snapshot) -> String {
    let mut out = Exposition::default();
    let version = vec![("version", s.version.to_string())];
    out.family(
        "vnet_route_info",
        "The route's version.",
        Kind::Gauge,
        [(version, 1.0)],
    );
    let per_group = |count: fn(&GroupStatus) -> usize| {
        s.groups
            .iter()
            .map(move |g| (vec![("group", g.name.clone())], count(g) as f64))
    };
    let vnets = per_group(|g| g.vnets.len());
    out.family(
        "vnet_route_vnets",
        "Vnets connected, per group.",
        Kind::Gauge,
        vnets,
    );
    let serves = per_group(|g| g.serves.len());
    out.family(
        "vnet_route_serves",
        "Serves registered, per group.",
        Kind::Gauge,
        serves,
    );
    let serves = || {
        s.groups.iter().flat_map(|g| {
            g.serves.iter().map(move |serve| {
                let labels = vec![("group", g.name.clone()), ("serve", serve.id.to_string())];
                (labels, serve)
            })
        })
    };
    out.family(
        "vnet_route_streams_open",
        "Streams open now through the route, per serve.",
        Kind::Gauge,
        serves().map(|(l, serve)| (l, serve.streams_open as f64)),
    );
    out.family(
        "vnet_route_streams_total",
        "Streams started through the route, per serve.",
        Kind::Counter,
        serves().map(|(l, serve)| (l, serve.streams_total as f64)),
    );
    let bytes = serves().flat_map(|(l, serve)| {
        [("up", serve.bytes_up), ("down", serve.bytes_down)].map(|(direction, n)| {
            let mut labels = l.clone();
            labels.push(("direction", direction.to_string()));
            (labels, n as f64)
        })
    });
    out.family(
        "vnet_route_bytes_total",
        "Bytes relayed per serve: up from visitors to the serve, down from the serve to visitors.",
        Kind::Counter,
        bytes,
    );
    out.family(
        "vnet_route_refusals_total",
        "Peers refused, by reason.",
        Kind::Counter,
        by_reason(&s.refusals),
    );
    out.family(
        "vnet_route_dropped_total",
        "Peers dropped without an answer, by reason.",
        Kind::Counter,
        by_reason(&s.dropped),
    );
    let none = Labels::new;
    out.family(
        "process_start_time_seconds",
        "Start time of the process since unix epoch in seconds.",
        Kind::Gauge,
        [(none(), s.started_unix as f64)],
    );
    // Each only where /proc tells it.
    let process = &s.process;
    let measured = [
        (
            "process_resident_memory_bytes",
            "Resident memory size in bytes.",
            Kind::Gauge,
            process.rss_bytes.map(|n| n as f64),
        ),
        (
            "process_open_fds",
            "Number of open file descriptors.",
            Kind::Gauge,
            process.open_fds.map(|n| n as f64),
        ),
        (
            "process_cpu_seconds_total",
            "Total user and system CPU time spent in seconds.",
            Kind::Counter,
            process.cpu_seconds,
        ),
    ];
    for (name, help, kind, value) in measured {
        if let Some(value) = value {
            out.family(name, help, kind, [(none(), value)]);
        }
    }
    out.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_and_escaped_labels() {
        let mut out = Exposition::default();
        let odd = "a\"b\\c\nd";
        out.family(
            "x_total",
            "Help with a\nnewline.",
            Kind::Counter,
            [
                (
                    vec![("group", odd.to_string()), ("serve", "7".to_string())],
                    3.0,
                ),
                (vec![], 0.5),
            ],
        );
        assert_eq!(
            out.0,
            "# HELP x_total Help with a\\nnewline.\n# TYPE x_total counter\n\
             x_total{group=\"a\\\"b\\\\c\\nd\",serve=\"7\"} 3\nx_total 0.5\n"
        );
    }
}
