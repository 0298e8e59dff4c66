//! The interactive shell (`terminal=true`), on its own thread.
//!
//! On a terminal: rustyline with the prompt `>: `, history kept in
//! `~/.vnet_history`, Tab completion of commands, actions, topics and the
//! names of this vnet's serves and uses, and prompts for missing
//! arguments. Ctrl-C and Ctrl-D exit. From a pipe: one command per line,
//! no prompts; at the end of input the shell stops reading but the vnet
//! keeps running.
pub mod ask;
pub mod command;
pub mod exec;
pub mod help;
mod items;
pub mod log;

mod complete;
pub mod show;
mod table;

pub use exec::Shell;
pub use log::LogSink;

use ask::{Asked, Io};
use exec::Reply;
use rustyline::error::ReadlineError;
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

/// The prompt, as in the original.
pub const PROMPT: &str = ">: ";

/// Why the shell stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// `exit`, Ctrl-C or Ctrl-D at a terminal: stop the vnet.
    Exit,
    /// Input ran out (not a terminal): keep the vnet running.
    EndOfInput,
}

/// Runs the shell until it ends; blocks the calling (non-runtime) thread.
pub fn run(shell: Shell, logs: LogSink) -> Ended {
    if std::io::stdin().is_terminal() {
        match interactive(&shell, &logs) {
            Ok(ended) => ended,
            Err(err) => {
                logs.use_stderr();
                eprintln!("vnet: terminal unusable ({err}); reading commands as plain lines");
                piped(&shell)
            }
        }
    } else {
        piped(&shell)
    }
}

fn answer(shell: &Shell, line: &str, io: &mut dyn Io) -> Option<Ended> {
    let cmd = match command::parse(line) {
        Ok(Some(cmd)) => cmd,
        Ok(None) => return None,
        Err(err) => {
            io.say(&format!("error: {err}"));
            return None;
        }
    };
    match shell.execute(cmd, io) {
        Ok(Reply::Exit) => Some(Ended::Exit),
        Ok(Reply::Text(text)) => {
            if !text.is_empty() {
                io.say(&text);
            }
            None
        }
        Err(err) => {
            io.say(&format!("error: {err}"));
            None
        }
    }
}

/// Lines from a pipe: nobody to ask, output on stdout.
struct Piped;

impl Io for Piped {
    fn ask(&mut self, _prompt: &str) -> Asked {
        Asked::Nobody
    }

    fn say(&mut self, text: &str) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{text}");
        let _ = out.flush();
    }
}

fn piped(shell: &Shell) -> Ended {
    let stdin = std::io::stdin();
    let mut line = Vec::new();
    for number in 1.. {
        line.clear();
        match stdin.lock().read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return Ended::EndOfInput,
            Ok(_) => {}
        }
        // One bad line is one error; the next line is read as usual.
        let Ok(text) = std::str::from_utf8(&line) else {
            Piped.say(&format!("error: line {number} is not valid UTF-8; skipped"));
            continue;
        };
        if let Some(ended) = answer(shell, text, &mut Piped) {
            return ended;
        }
    }
    Ended::EndOfInput
}

type Editor = rustyline::Editor<complete::ShellHelper, rustyline::history::FileHistory>;

/// A terminal: prompts through the same editor.
struct Terminal<'a> {
    editor: &'a mut Editor,
    logs: &'a LogSink,
}

/// Reads a line; logs go through the editor only while it reads.
fn read(editor: &mut Editor, logs: &LogSink, prompt: &str) -> rustyline::Result<String> {
    logs.prompting(true);
    let line = editor.readline(prompt);
    logs.prompting(false);
    line
}

impl Io for Terminal<'_> {
    fn ask(&mut self, prompt: &str) -> Asked {
        // Ctrl-C or Ctrl-D at a question gives up on the command.
        match read(self.editor, self.logs, prompt) {
            Ok(answer) => Asked::Answer(answer),
            Err(_) => Asked::Cancelled,
        }
    }

    fn say(&mut self, text: &str) {
        println!("{text}");
    }
}

fn history_file() -> Option<PathBuf> {
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".vnet_history"))
}

fn interactive(shell: &Shell, logs: &LogSink) -> rustyline::Result<Ended> {
    let config = rustyline::Config::builder()
        // Commands go into the history, answers to questions do not.
        .auto_add_history(false)
        .max_history_size(1000)?
        .build();
    let mut editor = Editor::with_config(config)?;
    editor.set_helper(Some(complete::ShellHelper::new(shell.handle.clone())));
    let history = history_file();
    if let Some(path) = &history {
        let _ = editor.load_history(path);
    }
    logs.use_printer(Box::new(editor.create_external_printer()?));
    println!("vnet shell: type help for commands, exit (or Ctrl-D) to stop");
    let ended = loop {
        match read(&mut editor, logs, PROMPT) {
            Ok(line) => {
                if !line.trim().is_empty() {
                    let _ = editor.add_history_entry(line.as_str());
                }
                let mut terminal = Terminal {
                    editor: &mut editor,
                    logs,
                };
                let ended = answer(shell, &line, &mut terminal);
                if let Some(path) = &history {
                    let _ = editor.save_history(path);
                }
                if let Some(ended) = ended {
                    break ended;
                }
            }
            Err(ReadlineError::Interrupted | ReadlineError::Eof) => break Ended::Exit,
            Err(err) => {
                logs.use_stderr();
                return Err(err);
            }
        }
    };
    logs.use_stderr();
    Ok(ended)
}
