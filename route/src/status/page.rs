//! The status page: one HTML document, readable without JavaScript, that
//! a short script (served apart, so the page's content security policy
//! can forbid inline scripts) refreshes in place every few seconds.
//!
//! Names, infos and addresses come from vnets, so from the network: every
//! one of them goes through [`escape`].
use std::fmt::Write;

use super::snapshot::{ByReason, GroupStatus, Snapshot};

/// Refreshes the page's `<main>` from the server every few seconds, and
/// says so when the route cannot be reached.
pub const SCRIPT: &str = r#"// Refreshes the status in place every 5 s.
(function () {
  function refresh() {
    fetch(location.pathname, { cache: "no-store" })
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.text(); })
      .then(function (text) {
        var fresh = new DOMParser().parseFromString(text, "text/html");
        document.querySelector("main").replaceWith(fresh.querySelector("main"));
        document.getElementById("stale").hidden = true;
      })
      .catch(function () { document.getElementById("stale").hidden = false; });
  }
  setInterval(refresh, 5000);
})();
"#;

const STYLE: &str = "body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}\
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em}h3{font-size:1em}\
table{border-collapse:collapse;margin:.4em 0 1em}\
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left}\
th{background:#f2f2f2}td.n{text-align:right;font-variant-numeric:tabular-nums}\
.muted{color:#777}#stale{color:#a00}";

/// Escapes text for HTML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if proto::text::is_unsafe(c) || is_invisible(c) => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// Invisible characters beyond those a terminal must not get
/// ([`proto::text::is_unsafe`]: controls, bidi overrides and isolates):
/// zero-width marks and the Arabic letter mark, so that a hostile name
/// cannot hide text on the page either.
fn is_invisible(c: char) -> bool {
    matches!(c, '\u{061c}' | '\u{200b}'..='\u{200d}' | '\u{2060}'..='\u{2065}' | '\u{feff}')
}

/// A byte count for people: 1023 B, 1.5 KiB, 20.0 MiB...
fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// `2026-11-29 18:20:00 UTC` from seconds since the epoch.
fn utc(unix: u64) -> String {
    let (days, secs) = (unix / 86_400, unix % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's method).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    format!("{year:04}-{month:02}-{day:02} {h:02}:{m:02}:{s:02} UTC")
}

/// `3d 4h`, `5m 2s`: how long, roughly.
fn duration(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

/// The whole page.
pub fn render(s: &Snapshot) -> String {
    let mut out = String::with_capacity(4096);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <title>vnet route</title><style>{STYLE}</style>\
         <script src=\"/refresh.js\" defer></script></head><body>\n\
         <h1>vnet route</h1>\n\
         <p id=\"stale\" hidden>The route did not answer the last refresh; this is older.</p>\n<main>\n"
    );
    route_section(&mut out, s);
    if s.groups.is_empty() {
        out.push_str("<h2>Groups</h2><p class=\"muted\">No vnet is connected.</p>\n");
    }
    for group in &s.groups {
        group_section(&mut out, group);
    }
    reasons_section(&mut out, "Refused", "what they were told", &s.refusals);
    reasons_section(
        &mut out,
        "Dropped",
        "hostile or broken peers, not answered",
        &s.dropped,
    );
    out.push_str(
        "<p class=\"muted\">Also as <a href=\"/api/status\">JSON</a> and \
         <a href=\"/metrics\">Prometheus metrics</a>.</p>\n</main></body></html>\n",
    );
    out
}

fn route_section(out: &mut String, s: &Snapshot) {
    let set = &s.settings;
    let yes_no = |b: bool| if b { "yes" } else { "no" };
    let process = &s.process;
    let rss = process.rss_bytes.map_or_else(|| "-".into(), bytes);
    let fds = process
        .open_fds
        .map_or_else(|| "-".into(), |n| n.to_string());
    let _ = write!(
        out,
        "<h2>Route</h2>\n<table class=\"route\">\
         <tr><th>version</th><td>{version}</td></tr>\
         <tr><th>up since</th><td>{since} ({uptime})</td></tr>\
         <tr><th>listening</th><td>{listen}</td></tr>\
         <tr><th>tls</th><td>{tls}</td></tr><tr><th>token</th><td>{token}</td></tr>\
         <tr><th>heartbeat</th><td>{hb}s</td></tr>\
         <tr><th>limits</th><td>{vnets} vnets, {serves} serves per vnet, {conns} connections per serve</td></tr>\
         <tr><th>memory, open files</th><td>{rss}, {fds}</td></tr></table>\n",
        version = escape(s.version),
        since = utc(s.started_unix),
        uptime = duration(s.uptime_secs),
        listen = escape(&set.listen),
        tls = yes_no(set.tls),
        token = yes_no(set.token),
        hb = set.heartbeat_secs,
        vnets = set.max_vnets,
        serves = set.max_serves_per_vnet,
        conns = set.max_connections,
    );
}

fn group_section(out: &mut String, g: &GroupStatus) {
    let name = escape(&g.name);
    let _ = write!(
        out,
        "<h2>Group {name}</h2>\n<h3>Vnets</h3>\n<table class=\"vnets\">\
         <tr><th>id</th><th>name</th><th>address</th><th>connected since</th><th>serves</th></tr>\n"
    );
    for v in &g.vnets {
        let _ = writeln!(
            out,
            "<tr><td class=\"n\">{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td></tr>",
            v.id,
            escape(&v.name),
            escape(&v.addr.to_string()),
            utc(v.connected_unix),
            v.serves,
        );
    }
    out.push_str(
        "</table>\n<h3>Serves</h3>\n<table class=\"serves\"><tr><th>id</th><th>vnet</th>\
         <th>name</th><th>address</th><th>info</th><th>open</th><th>total</th>\
         <th>bytes up</th><th>bytes down</th></tr>\n",
    );
    for s in &g.serves {
        let _ = writeln!(
            out,
            "<tr><td class=\"n\">{}</td><td>{} {}</td><td>{}</td><td>{}:{}</td><td>{}</td>\
             <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            s.id,
            s.vnet_id,
            escape(&s.vnet_name),
            escape(&s.name),
            escape(&s.ip),
            s.port,
            escape(&s.info),
            s.streams_open,
            s.streams_total,
            bytes(s.bytes_up),
            bytes(s.bytes_down),
        );
    }
    if g.serves.is_empty() {
        out.push_str("<tr><td colspan=\"9\" class=\"muted\">none registered</td></tr>\n");
    }
    out.push_str("</table>\n");
}

fn reasons_section(out: &mut String, title: &str, what: &str, reasons: &ByReason) {
    let _ = write!(
        out,
        "<h2>{title}</h2>\n<p class=\"muted\">{what}, since the route started</p>\n\
         <table class=\"{}\"><tr><th>reason</th><th>count</th></tr>",
        title.to_lowercase()
    );
    for (reason, count) in reasons.0.iter().filter(|(_, n)| *n > 0) {
        let _ = write!(
            out,
            "<tr><td>{reason}</td><td class=\"n\">{count}</td></tr>"
        );
    }
    if reasons.0.iter().all(|(_, n)| *n == 0) {
        out.push_str("<tr><td colspan=\"2\" class=\"muted\">none</td></tr>");
    }
    out.push_str("</table>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_and_controls_are_escaped() {
        assert_eq!(
            escape("<script>alert('x')</script> & \"q\"\n"),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;\u{fffd}"
        );
        assert_eq!(escape("abc\u{202e}gpj.exe"), "abc\u{fffd}gpj.exe");
    }

    #[test]
    fn numbers_and_times_read_well() {
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(20 * 1024 * 1024), "20.0 MiB");
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(1_798_568_000), "2026-12-29 18:13:20 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(duration(59), "59s");
        assert_eq!(duration(3 * 86_400 + 4 * 3600 + 5), "3d 4h");
        assert_eq!(duration(125), "2m 5s");
    }
}
