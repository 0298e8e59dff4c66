//! Asking for what a command line did not give. A terminal prompts with
//! the default shown (`ip(127.0.0.1): `); a pipe answers nothing, so
//! defaults apply and a missing required argument is an error.
use super::command::Pairs;

/// How the shell talks to its user.
pub trait Io {
    /// Asks for a value; `None` when nobody can answer (not a terminal).
    /// An empty answer means "take the default".
    fn ask(&mut self, prompt: &str) -> Option<String>;
    /// Shows a line of progress before the command's result.
    fn say(&mut self, text: &str);
}

fn has(pairs: &Pairs, key: &str) -> bool {
    pairs.iter().any(|(k, _)| k == key)
}

/// Asks for `key` if it was not given; an empty answer keeps the default.
pub(super) fn fill(io: &mut dyn Io, pairs: &mut Pairs, key: &str, default: &str) {
    if has(pairs, key) {
        return;
    }
    if let Some(answer) = io.ask(&format!("    {key}({default}): ")) {
        let answer = answer.trim();
        if !answer.is_empty() {
            pairs.push((key.to_string(), answer.to_string()));
        }
    }
}

pub(super) fn take(pairs: &Pairs, key: &str) -> Option<String> {
    pairs
        .iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
}

pub(super) fn need_name(
    io: &mut dyn Io,
    name: Option<String>,
    usage: &str,
) -> Result<String, String> {
    if let Some(name) = name {
        return Ok(name);
    }
    match io.ask("    name: ").map(|n| n.trim().to_string()) {
        Some(name) if !name.is_empty() => Ok(name),
        _ => Err(format!("missing NAME: {usage}")),
    }
}
