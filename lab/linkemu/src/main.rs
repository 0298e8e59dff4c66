//! The `linkemu` command: parses the arguments, opens both interfaces,
//! starts one pump per direction and runs the control loop until a pump
//! fails (the interfaces went away) or a signal ends the process.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use linkemu::packet::PacketSocket;
use linkemu::params::{Params, Shared, DOWN, UP};
use linkemu::{control, pump};

/// Copy Ethernet frames between two interfaces with delay and loss.
///
/// "up" is left to right, "down" right to left. Settings come from the
/// control file (see the lab's README); linkemu re-reads it every 20 ms
/// and writes the generation in force, with frame counters, to the status
/// file.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Interface on the left (in the lab: towards the host).
    #[arg(long)]
    left: String,
    /// Interface on the right (in the lab: towards the internet).
    #[arg(long)]
    right: String,
    /// Control file with the settings; it must exist at start.
    #[arg(long)]
    control: PathBuf,
    /// Status file (default: the control file's name + ".status").
    #[arg(long)]
    status: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("linkemu: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<(), String> {
    let status = args.status.clone().unwrap_or_else(|| {
        let mut name = args.control.clone().into_os_string();
        name.push(".status");
        name.into()
    });
    let text = std::fs::read_to_string(&args.control)
        .map_err(|e| format!("{}: {e}", args.control.display()))?;
    let params = Params::default()
        .apply(&text)
        .map_err(|e| format!("{}: {e}", args.control.display()))?;
    let open = |name: &str| PacketSocket::open(name).map_err(|e| format!("{name}: {e}"));
    let left = Arc::new(open(&args.left)?);
    let right = Arc::new(open(&args.right)?);
    let shared = Arc::new(Shared::new(params));
    let pumps = [(UP, &left, &right), (DOWN, &right, &left)].map(|(dir, rx, tx)| {
        let (rx, tx, shared) = (rx.clone(), tx.clone(), shared.clone());
        std::thread::spawn(move || pump::run(rx, tx, dir, shared))
    });
    eprintln!(
        "linkemu: {} <-> {} running, settings from {}",
        args.left,
        args.right,
        args.control.display()
    );
    control::run(&args.control, &status, text, &shared, || {
        pumps.iter().any(|p| p.is_finished())
    });
    for pump in pumps {
        if pump.is_finished() {
            let err = pump.join().map_err(|_| "a pump panicked".to_string())?;
            return Err(format!("stopped: {err}"));
        }
    }
    Ok(())
}
