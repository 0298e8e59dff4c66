//! Parsing one shell line into a [`Cmd`]. Pure: no I/O, no state.
//!
//! Words are split on blanks; double quotes keep blanks inside a word
//! (`info="home ssh"`). Words of the form `key=value` are arguments named
//! like the config keys; the others are positional.

/// What `serve` and `use` do to their NAME.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Activate and register / listen.
    Open,
    /// Deregister / stop listening, and mark inactive.
    Close,
    /// Create, inactive.
    New,
    /// Create, active.
    Run,
    /// Deregister / stop, and forget.
    Delete,
}

/// What `show` shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topic {
    /// This vnet's serves.
    Serve,
    /// This vnet's uses.
    Use,
    /// The group's serves, from the route.
    Serves,
    /// This vnet's settings.
    Vnet,
    /// The group's vnets, from the route.
    Vnets,
}

/// `key=value` arguments, in the order typed.
pub type Pairs = Vec<(String, String)>;

/// A parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cmd {
    /// `help [COMMAND]`.
    Help(Option<String>),
    /// `serve ACTION [NAME] [key=value...]`.
    Serve(Action, Option<String>, Pairs),
    /// `use ACTION [NAME] [key=value...]`.
    Use(Action, Option<String>, Pairs),
    /// `show TOPIC [json]`.
    Show(Topic, bool),
    /// `ping`.
    Ping,
    /// `reload [FILE]`.
    Reload(Option<String>),
    /// `unserve [vnetid= ip= port= local_ip= local_port=]`.
    Unserve(Pairs),
    /// `exit`.
    Exit,
}

/// Top-level command names, for help and completion.
pub const COMMANDS: &[&str] = &[
    "help", "serve", "use", "show", "ping", "reload", "unserve", "exit",
];
/// `serve`/`use` actions.
pub const ACTIONS: &[&str] = &["open", "close", "new", "run", "delete"];
/// `show` topics.
pub const TOPICS: &[&str] = &["serve", "use", "serves", "vnet", "vnets"];

/// Splits a line into words, honouring double quotes.
///
/// # Errors
/// An unclosed quote.
pub fn words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                in_word = true;
            }
            c if c.is_whitespace() && !quoted => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if quoted {
        return Err("unclosed quote".into());
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

fn split_args(words: &[String]) -> (Vec<String>, Pairs) {
    let mut positional = Vec::new();
    let mut pairs = Vec::new();
    for word in words {
        match word.split_once('=') {
            Some((key, value)) if !key.is_empty() => {
                pairs.push((key.to_string(), value.to_string()))
            }
            _ => positional.push(word.clone()),
        }
    }
    (positional, pairs)
}

fn action(word: Option<&String>, command: &str) -> Result<Action, String> {
    Ok(match word.map(String::as_str) {
        Some("open") => Action::Open,
        Some("close") => Action::Close,
        Some("new") => Action::New,
        Some("run") => Action::Run,
        Some("delete") => Action::Delete,
        Some(other) => {
            return Err(format!(
                "{command}: unknown action {other:?} (open, close, new, run, delete)"
            ))
        }
        None => return Err(format!("usage: {command} open|close|new|run|delete NAME")),
    })
}

fn topic(word: Option<&String>) -> Result<Topic, String> {
    Ok(match word.map(String::as_str) {
        Some("serve") => Topic::Serve,
        Some("use") => Topic::Use,
        Some("serves") => Topic::Serves,
        Some("vnet") => Topic::Vnet,
        Some("vnets") => Topic::Vnets,
        Some(other) => {
            return Err(format!(
                "show: unknown topic {other:?} (serve, use, serves, vnet, vnets)"
            ))
        }
        None => return Err("usage: show serve|use|serves|vnet|vnets [json]".into()),
    })
}

fn no_more(rest: &[String], command: &str) -> Result<(), String> {
    match rest.first() {
        Some(extra) => Err(format!("{command}: unexpected {extra:?}")),
        None => Ok(()),
    }
}

fn no_pairs(pairs: &Pairs, command: &str) -> Result<(), String> {
    match pairs.first() {
        Some((key, _)) => Err(format!("{command}: takes no {key}=")),
        None => Ok(()),
    }
}

/// Parses a line; `Ok(None)` for a blank line or a `#` comment.
///
/// # Errors
/// Unknown command or malformed arguments, as one line for the user.
pub fn parse(line: &str) -> Result<Option<Cmd>, String> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let words = words(line)?;
    let (positional, pairs) = split_args(&words[1..]);
    let command = words[0].as_str();
    let cmd = match command {
        "help" | "?" => {
            no_more(positional.get(1..).unwrap_or_default(), "help")?;
            Cmd::Help(positional.first().cloned())
        }
        "serve" | "use" => {
            let act = action(positional.first(), command)?;
            no_more(positional.get(2..).unwrap_or_default(), command)?;
            if matches!(act, Action::Open | Action::Close | Action::Delete) {
                no_pairs(&pairs, &format!("{command} {}", positional[0]))?;
            }
            let name = positional.get(1).cloned();
            if command == "serve" {
                Cmd::Serve(act, name, pairs)
            } else {
                Cmd::Use(act, name, pairs)
            }
        }
        "show" => {
            let t = topic(positional.first())?;
            let json = match positional.get(1).map(String::as_str) {
                None => false,
                Some("json") => true,
                Some(other) => {
                    return Err(format!("show: unexpected {other:?} (only json may follow)"))
                }
            };
            no_more(positional.get(2..).unwrap_or_default(), "show")?;
            no_pairs(&pairs, "show")?;
            Cmd::Show(t, json)
        }
        "ping" | "exit" | "quit" => {
            no_more(&positional, command)?;
            no_pairs(&pairs, command)?;
            if command == "ping" {
                Cmd::Ping
            } else {
                Cmd::Exit
            }
        }
        "reload" => {
            no_more(positional.get(1..).unwrap_or_default(), "reload")?;
            no_pairs(&pairs, "reload")?;
            Cmd::Reload(positional.first().cloned())
        }
        "unserve" => {
            no_more(&positional, "unserve")?;
            Cmd::Unserve(pairs)
        }
        other => return Err(format!("unknown command {other:?}; try help")),
    };
    Ok(Some(cmd))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Pairs {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn commands_parse() {
        let cases: &[(&str, Cmd)] = &[
            (
                "serve run ssh port=22 serveid=700 info=home",
                Cmd::Serve(
                    Action::Run,
                    Some("ssh".into()),
                    pairs(&[("port", "22"), ("serveid", "700"), ("info", "home")]),
                ),
            ),
            (
                "use run ssh serveid=700 port=1122",
                Cmd::Use(
                    Action::Run,
                    Some("ssh".into()),
                    pairs(&[("serveid", "700"), ("port", "1122")]),
                ),
            ),
            (
                "serve close ssh",
                Cmd::Serve(Action::Close, Some("ssh".into()), vec![]),
            ),
            ("use open", Cmd::Use(Action::Open, None, vec![])),
            ("show serves", Cmd::Show(Topic::Serves, false)),
            ("show vnets json", Cmd::Show(Topic::Vnets, true)),
            ("  ping ", Cmd::Ping),
            ("reload other.ini", Cmd::Reload(Some("other.ini".into()))),
            (
                "unserve vnetid=01 ip=127.0.0.1 port=8888 local_port=18888",
                Cmd::Unserve(pairs(&[
                    ("vnetid", "01"),
                    ("ip", "127.0.0.1"),
                    ("port", "8888"),
                    ("local_port", "18888"),
                ])),
            ),
            (
                "serve new web info=\"home web\" port=80",
                Cmd::Serve(
                    Action::New,
                    Some("web".into()),
                    pairs(&[("info", "home web"), ("port", "80")]),
                ),
            ),
            ("help use", Cmd::Help(Some("use".into()))),
            ("exit", Cmd::Exit),
        ];
        for (line, want) in cases {
            assert_eq!(parse(line).unwrap().as_ref(), Some(want), "{line}");
        }
        assert_eq!(parse("   ").unwrap(), None);
        assert_eq!(parse("# note").unwrap(), None);
    }

    #[test]
    fn mistakes_are_one_clear_line() {
        let cases = [
            ("frobnicate", "unknown command \"frobnicate\"; try help"),
            (
                "serve start ssh",
                "serve: unknown action \"start\" (open, close, new, run, delete)",
            ),
            ("serve", "usage: serve open|close|new|run|delete NAME"),
            (
                "show everything",
                "show: unknown topic \"everything\" (serve, use, serves, vnet, vnets)",
            ),
            ("serve close ssh port=22", "serve close: takes no port="),
            ("ping now", "ping: unexpected \"now\""),
            ("serve run \"ssh", "unclosed quote"),
        ];
        for (line, want) in cases {
            assert_eq!(parse(line).unwrap_err(), want, "{line}");
        }
    }
}
