//! Where log lines go while the shell runs.
//!
//! When stderr is the shell's terminal, a log line goes through
//! rustyline's external printer while a prompt is on screen (so it never
//! garbles the line being typed), and straight to stderr while a command
//! runs (the printer would hold it back and glue it to the command's
//! output). A line that only restates what the running command is about
//! to answer (a target in [`outcome::ALL`]) is left out there: the answer
//! says it.
//!
//! When stderr goes elsewhere (a file, a journal), every line goes there,
//! whatever the shell is doing: the log stays whole.
use rustyline::ExternalPrinter;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tracing::Metadata;

use crate::outcome;

type Printer = Box<dyn ExternalPrinter + Send>;
type Output = Box<dyn Write + Send>;

/// A `tracing_subscriber` writer factory that the shell can redirect.
#[derive(Clone)]
pub struct LogSink {
    printer: Arc<Mutex<Option<Printer>>>,
    prompting: Arc<AtomicBool>,
    /// Whether `out` is a terminal (then it is the shell's screen).
    on_screen: bool,
    /// stderr, but for tests.
    out: Arc<Mutex<Output>>,
}

impl Default for LogSink {
    fn default() -> Self {
        Self::new(std::io::stderr().is_terminal(), Box::new(std::io::stderr()))
    }
}

impl LogSink {
    fn new(on_screen: bool, out: Output) -> Self {
        Self {
            printer: Arc::default(),
            prompting: Arc::default(),
            on_screen,
            out: Arc::new(Mutex::new(out)),
        }
    }

    /// Sends log lines through `printer` from now on, while prompting, if
    /// they would reach the screen anyway.
    pub fn use_printer(&self, printer: Printer) {
        if self.on_screen {
            *self.printer.lock().expect("log sink poisoned") = Some(printer);
        }
    }

    /// Back to stderr for good (the editor is gone).
    pub fn use_stderr(&self) {
        *self.printer.lock().expect("log sink poisoned") = None;
    }

    /// Whether the editor is reading a line right now.
    pub fn prompting(&self, on: bool) {
        self.prompting.store(on, Ordering::SeqCst);
    }

    /// Whether a line with `meta` is left out: it would reach the screen
    /// while a command runs, and that command's answer says the same.
    fn answered(&self, meta: &Metadata<'_>) -> bool {
        let command_running = !self.prompting.load(Ordering::SeqCst)
            && self.printer.lock().expect("log sink poisoned").is_some();
        command_running && outcome::ALL.contains(&meta.target())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogSink {
    type Writer = LogLine;

    fn make_writer(&'a self) -> LogLine {
        LogLine {
            sink: self.clone(),
            buf: Vec::new(),
            dropped: false,
        }
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> LogLine {
        LogLine {
            sink: self.clone(),
            buf: Vec::new(),
            dropped: self.answered(meta),
        }
    }
}

/// One formatted event, delivered when dropped.
pub struct LogLine {
    sink: LogSink,
    buf: Vec<u8>,
    /// Left out (see [`LogSink::answered`]).
    dropped: bool,
}

impl Write for LogLine {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LogLine {
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        let mut printer = self.sink.printer.lock().expect("log sink poisoned");
        match printer
            .as_mut()
            .filter(|_| self.sink.prompting.load(Ordering::SeqCst))
        {
            Some(printer) => {
                let line = String::from_utf8_lossy(&self.buf).trim_end().to_string();
                let _ = printer.print(line);
            }
            None => {
                // A closed stderr must not take the vnet down.
                let _ = self
                    .sink
                    .out
                    .lock()
                    .expect("log sink poisoned")
                    .write_all(&self.buf);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::info;

    /// Collects what is written to it.
    #[derive(Clone, Default)]
    struct Seen(Arc<Mutex<Vec<String>>>);

    impl Write for Seen {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            let line = String::from_utf8_lossy(bytes).trim_end().to_string();
            self.0.lock().unwrap().push(line);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl ExternalPrinter for Seen {
        fn print(&mut self, line: String) -> rustyline::Result<()> {
            self.0.lock().unwrap().push(line);
            Ok(())
        }
    }

    impl Seen {
        fn take(&self) -> Vec<String> {
            std::mem::take(&mut self.0.lock().unwrap())
        }
    }

    /// Logs through `sink` one outcome line and one other line.
    fn log_both(sink: &LogSink) {
        let subscriber = tracing_subscriber::fmt()
            .with_writer(sink.clone())
            .without_time()
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            info!(target: outcome::USE, "use listening");
            info!("serve gone");
        });
    }

    #[test]
    fn on_a_terminal_a_running_command_hides_only_what_it_answers() {
        let (screen, printer) = (Seen::default(), Seen::default());
        let sink = LogSink::new(true, Box::new(screen.clone()));
        sink.use_printer(Box::new(printer.clone()));
        sink.prompting(true);
        log_both(&sink);
        assert_eq!(printer.take().len(), 2, "at the prompt, both, above it");
        sink.prompting(false);
        log_both(&sink);
        let shown = screen.take();
        assert_eq!(shown.len(), 1, "{shown:?}");
        assert!(shown[0].ends_with("serve gone"), "{shown:?}");
        assert!(printer.take().is_empty());
    }

    #[test]
    fn a_log_that_is_not_the_terminal_gets_every_line() {
        let (file, printer) = (Seen::default(), Seen::default());
        let sink = LogSink::new(false, Box::new(file.clone()));
        sink.use_printer(Box::new(printer.clone()));
        for prompting in [true, false] {
            sink.prompting(prompting);
            log_both(&sink);
            assert_eq!(file.take().len(), 2, "prompting: {prompting}");
        }
        assert!(printer.take().is_empty());
    }
}
