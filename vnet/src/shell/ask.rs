//! Asking for what a command line did not give.
//!
//! As in the original, a command typed bare at a terminal (no `key=value`
//! at all) is completed by questions, each showing its default
//! (`    ip(127.0.0.1): `); an empty answer takes it. A command that gives
//! any `key=value` is taken as complete: defaults apply to the rest and a
//! missing required key is an error, never a question. From a pipe nobody
//! is asked. Ctrl-C or Ctrl-D at a question abandons the command.
use super::command::Pairs;

/// What asking got.
pub enum Asked {
    /// An answer (empty: take the default).
    Answer(String),
    /// Nobody can answer (not a terminal).
    Nobody,
    /// The user gave up on the command (Ctrl-C or Ctrl-D).
    Cancelled,
}

/// How the shell talks to its user.
pub trait Io {
    /// Asks for a value.
    fn ask(&mut self, prompt: &str) -> Asked;
    /// Shows a line of progress before the command's result.
    fn say(&mut self, text: &str);
}

/// The one line a command abandoned at a question answers with.
pub(super) const CANCELLED: &str = "cancelled; nothing changed";

/// The questions of one command.
pub(super) struct Questions<'a> {
    io: &'a mut dyn Io,
    /// Only a bare command is completed by questions.
    allowed: bool,
}

impl<'a> Questions<'a> {
    /// Questions for a command that gave `pairs`.
    pub(super) fn new(io: &'a mut dyn Io, pairs: &Pairs) -> Self {
        Self {
            io,
            allowed: pairs.is_empty(),
        }
    }

    /// Shows a line of progress.
    pub(super) fn say(&mut self, text: &str) {
        self.io.say(text);
    }

    /// Asks for `key` if the command was bare and did not give it;
    /// `default` is shown (`required` for a key without one, nothing for
    /// an empty default).
    ///
    /// # Errors
    /// The user cancelled: [`CANCELLED`].
    pub(super) fn fill(
        &mut self,
        pairs: &mut Pairs,
        key: &str,
        default: &str,
    ) -> Result<(), &'static str> {
        if !self.allowed || pairs.iter().any(|(k, _)| k == key) {
            return Ok(());
        }
        let prompt = if default.is_empty() {
            format!("    {key}: ")
        } else {
            format!("    {key}({default}): ")
        };
        match self.io.ask(&prompt) {
            Asked::Answer(answer) => {
                let answer = answer.trim();
                if !answer.is_empty() {
                    pairs.push((key.to_string(), answer.to_string()));
                }
                Ok(())
            }
            Asked::Nobody => Ok(()),
            Asked::Cancelled => Err(CANCELLED),
        }
    }

    /// The item's NAME: as given, or asked for if the command was bare.
    ///
    /// # Errors
    /// Missing (`usage` says how to give it), or cancelled.
    pub(super) fn name(&mut self, name: Option<String>, usage: &str) -> Result<String, String> {
        if let Some(name) = name {
            return Ok(name);
        }
        let missing = || format!("missing NAME: {usage}");
        if !self.allowed {
            return Err(missing());
        }
        match self.io.ask("    name(required): ") {
            Asked::Answer(name) if !name.trim().is_empty() => Ok(name.trim().to_string()),
            Asked::Cancelled => Err(CANCELLED.into()),
            Asked::Answer(_) | Asked::Nobody => Err(missing()),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Answers from a list; records what was asked.
    struct Script {
        answers: Vec<Asked>,
        asked: Vec<String>,
    }

    impl Io for Script {
        fn ask(&mut self, prompt: &str) -> Asked {
            self.asked.push(prompt.to_string());
            if self.answers.is_empty() {
                Asked::Nobody
            } else {
                self.answers.remove(0)
            }
        }

        fn say(&mut self, _: &str) {}
    }

    fn pairs(list: &[(&str, &str)]) -> Pairs {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn only_a_bare_command_is_asked_and_prompts_read_well() {
        let mut io = Script {
            answers: vec![Asked::Answer("22".into()), Asked::Answer(String::new())],
            asked: Vec::new(),
        };
        let mut given = Pairs::new();
        let mut questions = Questions::new(&mut io, &given.clone());
        questions.fill(&mut given, "port", "required").unwrap();
        questions.fill(&mut given, "info", "").unwrap();
        assert_eq!(given, pairs(&[("port", "22")]));
        assert_eq!(io.asked, ["    port(required): ", "    info: "]);

        let mut io = Script {
            answers: Vec::new(),
            asked: Vec::new(),
        };
        let mut given = pairs(&[("serveid", "999")]);
        let mut questions = Questions::new(&mut io, &given.clone());
        questions.fill(&mut given, "ip", "127.0.0.1").unwrap();
        assert!(questions.name(None, "use run NAME").is_err());
        assert!(io.asked.is_empty(), "asked {:?}", io.asked);
    }

    #[test]
    fn cancelling_a_question_abandons_the_command() {
        let mut io = Script {
            answers: vec![Asked::Cancelled],
            asked: Vec::new(),
        };
        let mut given = Pairs::new();
        let mut questions = Questions::new(&mut io, &given.clone());
        assert_eq!(
            questions.fill(&mut given, "ip", "127.0.0.1"),
            Err(CANCELLED)
        );
        let mut io = Script {
            answers: vec![Asked::Cancelled],
            asked: Vec::new(),
        };
        let mut questions = Questions::new(&mut io, &Pairs::new());
        assert_eq!(questions.name(None, "x").unwrap_err(), CANCELLED);
    }
}
