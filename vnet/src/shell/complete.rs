//! Tab completion: commands, then actions or topics, then this vnet's
//! serve and use names.
use rustyline::completion::{Completer, Pair};
use rustyline::{Context, Helper, Highlighter, Hinter, Validator};

use super::command::{ACTIONS, COMMANDS, TOPICS};
use crate::handle::VnetHandle;

/// The editor's helper; reads names from the live status.
#[derive(Helper, Hinter, Highlighter, Validator)]
pub struct ShellHelper {
    handle: VnetHandle,
}

impl ShellHelper {
    pub fn new(handle: VnetHandle) -> Self {
        Self { handle }
    }

    /// Words that may stand where the word after `before` is typed.
    fn candidates(&self, before: &[&str]) -> Vec<String> {
        let words = |list: &[&str]| list.iter().map(|w| w.to_string()).collect();
        match before {
            [] => words(COMMANDS),
            ["help"] => words(COMMANDS),
            ["serve" | "use"] => words(ACTIONS),
            ["show"] => words(TOPICS),
            ["show", _] => vec!["json".into()],
            ["serve", "open" | "close" | "delete"] => {
                self.handle.status().serves.keys().cloned().collect()
            }
            ["use", "open" | "close" | "delete"] => {
                self.handle.status().uses.keys().cloned().collect()
            }
            _ => Vec::new(),
        }
    }
}

impl Completer for ShellHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let head = &line[..pos];
        let start = head.rfind(char::is_whitespace).map_or(0, |i| i + 1);
        let before: Vec<&str> = head[..start].split_whitespace().collect();
        let partial = &head[start..];
        let matches = self
            .candidates(&before)
            .into_iter()
            .filter(|c| c.starts_with(partial))
            .map(|c| Pair {
                display: c.clone(),
                replacement: format!("{c} "),
            })
            .collect();
        Ok((start, matches))
    }
}
