//! Where log lines go while the shell runs: through rustyline's external
//! printer while a prompt is on screen (so a log line never garbles the
//! line being typed), else straight to stderr (while a command runs, the
//! printer would hold the line back and glue it to the command's output).
use rustyline::ExternalPrinter;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

type Printer = Box<dyn ExternalPrinter + Send>;

/// A `tracing_subscriber` writer factory that the shell can redirect.
#[derive(Clone, Default)]
pub struct LogSink {
    printer: Arc<Mutex<Option<Printer>>>,
    prompting: Arc<AtomicBool>,
}

impl LogSink {
    /// Sends log lines through `printer` from now on.
    pub fn use_printer(&self, printer: Printer) {
        *self.printer.lock().expect("log sink poisoned") = Some(printer);
    }

    /// Back to stderr for good (the editor is gone).
    pub fn use_stderr(&self) {
        *self.printer.lock().expect("log sink poisoned") = None;
    }

    /// Whether the editor is reading a line right now.
    pub fn prompting(&self, on: bool) {
        self.prompting.store(on, Ordering::SeqCst);
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogSink {
    type Writer = LogLine;

    fn make_writer(&'a self) -> LogLine {
        LogLine {
            sink: self.clone(),
            buf: Vec::new(),
        }
    }
}

/// One formatted event, delivered when dropped.
pub struct LogLine {
    sink: LogSink,
    buf: Vec<u8>,
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
                let _ = std::io::stderr().write_all(&self.buf);
            }
        }
    }
}
