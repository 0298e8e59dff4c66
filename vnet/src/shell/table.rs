//! Text layout for `show`: aligned columns within 80 columns, footers,
//! notes, and sizes and durations for people.

/// The width a table must fit: a terminal's usual 80 columns.
pub const WIDTH: usize = 80;

/// Columns narrower than this are not cut further to fit [`WIDTH`].
const MIN_COLUMN: usize = 6;

/// Lays rows out in columns two spaces apart, within [`WIDTH`]: when too
/// wide, the widest of the columns named in `cut_first` (free text such
/// as names and infos) is narrowed, again and again, then if need be the
/// widest of the others after the first (the id); cells too long for
/// their column are cut (with `…`), and `json` has them whole. Cells are
/// escaped (see `proto::text`): names and infos come from other vnets,
/// and a newline or an escape sequence in one must not forge a row or
/// reach the terminal.
pub fn table(headers: &[&str], rows: &[Vec<String>], cut_first: &[&str]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            row.iter()
                .map(|c| proto::text::escape(c).into_owned())
                .collect()
        })
        .collect();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let gaps = 2 * widths.len().saturating_sub(1);
    let first: Vec<bool> = headers.iter().map(|h| cut_first.contains(h)).collect();
    // The widest column that may still narrow: of `cut_first` if any.
    let narrowest_first = |widths: &[usize]| {
        let may = |i: usize, only_first: bool| {
            i > 0 && widths[i] > MIN_COLUMN && (first[i] || !only_first)
        };
        [true, false].into_iter().find_map(|only_first| {
            (0..widths.len())
                .filter(|i| may(*i, only_first))
                .max_by_key(|i| widths[*i])
        })
    };
    while widths.iter().sum::<usize>() + gaps > WIDTH {
        match narrowest_first(&widths) {
            Some(i) => widths[i] -= 1,
            None => break,
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{:<w$}", fit(cell, *w)))
            .collect();
        padded.join("  ").trim_end().to_string()
    };
    let mut out = vec![line(headers.to_vec())];
    for row in &rows {
        out.push(line(row.iter().map(String::as_str).collect()));
    }
    out.join("\n")
}

/// `text` cut to `room` characters, the cut shown.
fn fit(text: &str, room: usize) -> String {
    if text.chars().count() <= room {
        return text.to_string();
    }
    let kept: String = text.chars().take(room.saturating_sub(1)).collect();
    format!("{kept}…")
}

/// A table with its footer, or one line saying there is nothing to show.
/// Reasons too long for a cell follow as numbered notes.
pub fn listing(
    table: String,
    count: usize,
    footer: String,
    empty: &str,
    notes: &[String],
) -> String {
    if count == 0 {
        return empty.to_string();
    }
    let mut out = table;
    for (n, note) in notes.iter().enumerate() {
        let note = format!("[{}] {}", n + 1, proto::text::escape(note));
        out.push_str(&format!("\n{}", wrap(&note, 4)));
    }
    out.push_str(&format!("\n- {footer} -"));
    out
}

/// A state and, when it has a reason, a note number for it.
pub fn noted(state: &str, reason: Option<&String>, notes: &mut Vec<String>, key: &str) -> String {
    match reason {
        Some(why) => {
            notes.push(format!("{key}: {why}"));
            format!("{state} [{}]", notes.len())
        }
        None => state.to_string(),
    }
}

/// Bytes for people: `0 B`, `1.5 KiB`, `3.2 MiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// A duration in seconds for people: `45s`, `12m05s`, `3h02m`, `2d04h`.
pub fn ago(seconds: u64) -> String {
    match seconds {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{:02}s", s / 60, s % 60),
        s if s < 86_400 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        s => format!("{}d{:02}h", s / 86_400, s % 86_400 / 3600),
    }
}

/// `text` in lines of at most [`WIDTH`] characters, broken at blanks
/// where it can; lines after the first start with `indent` blanks (and
/// the first is taken to start there too).
pub fn wrap(text: &str, indent: usize) -> String {
    let room = WIDTH.saturating_sub(indent).max(20);
    let mut lines: Vec<String> = Vec::new();
    let mut rest: Vec<char> = text.chars().collect();
    while rest.len() > room {
        let cut = rest[..=room]
            .iter()
            .rposition(|c| *c == ' ')
            .filter(|at| *at > 0)
            .unwrap_or(room);
        lines.push(
            rest[..cut]
                .iter()
                .collect::<String>()
                .trim_end()
                .to_string(),
        );
        rest = rest[cut..]
            .iter()
            .copied()
            .skip_while(|c| *c == ' ')
            .collect();
    }
    lines.push(rest.into_iter().collect());
    lines.join(&format!("\n{}", " ".repeat(indent)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_and_rows_start_with_ids() {
        let out = table(
            &["serveid", "name"],
            &[
                vec!["700".into(), "ssh".into()],
                vec!["001".into(), "jupyter".into()],
            ],
            &[],
        );
        assert_eq!(out, "serveid  name\n700      ssh\n001      jupyter");
    }

    #[test]
    fn cells_from_the_network_cannot_forge_rows_or_reach_the_terminal() {
        let out = table(
            &["serveid", "info"],
            &[vec!["700".into(), "x\n999 01 admin\u{1b}[2J".into()]],
            &[],
        );
        assert_eq!(out, "serveid  info\n700      x\\n999 01 admin\\u{1b}[2J");
        assert!(out.lines().skip(1).all(|row| row.starts_with("700")));
    }

    #[test]
    fn a_wide_table_is_cut_to_80_columns_and_an_empty_one_is_a_line() {
        let long = "i".repeat(200);
        let out = table(&["serveid", "info"], &[vec!["700".into(), long]], &[]);
        assert!(out.lines().all(|l| l.chars().count() <= WIDTH), "{out}");
        assert!(out.ends_with('…'));
        let wide = |n| "w".repeat(n);
        let row = vec!["700".into(), wide(60), "tcp".into(), wide(50), wide(90)];
        let out = table(&["serveid", "name", "type", "ip", "info"], &[row], &[]);
        assert!(out.lines().all(|l| l.chars().count() <= WIDTH), "{out}");
        assert!(
            out.lines().nth(1).unwrap().starts_with("700      w"),
            "{out}"
        );
        assert!(
            out.contains("  tcp  "),
            "a narrow column stays whole: {out}"
        );
        assert_eq!(
            listing(out, 0, "x".into(), "nothing here", &[]),
            "nothing here"
        );
        let noted = listing(
            "t".into(),
            1,
            "1 thing".into(),
            "-",
            &["web: refused".into()],
        );
        assert_eq!(noted, "t\n[1] web: refused\n- 1 thing -");
    }

    #[test]
    fn long_text_wraps_at_blanks_under_its_indent() {
        let text = "word ".repeat(30);
        let out = wrap(text.trim_end(), 4);
        assert!(out.lines().all(|l| l.chars().count() <= WIDTH), "{out}");
        assert!(
            out.lines().skip(1).all(|l| l.starts_with("    word")),
            "{out}"
        );
        assert_eq!(out.split_whitespace().count(), 30, "nothing lost: {out}");
        let unbroken = "x".repeat(100);
        let out = wrap(&unbroken, 0);
        assert_eq!(out.replace('\n', ""), unbroken);
        assert_eq!(wrap("short", 16), "short");
    }

    #[test]
    fn sizes_and_durations_read_well() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(3 << 20), "3.0 MiB");
        assert_eq!(ago(59), "59s");
        assert_eq!(ago(725), "12m05s");
        assert_eq!(ago(3 * 3600 + 120), "3h02m");
    }
}
