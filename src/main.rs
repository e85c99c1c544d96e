//! The `facewatch` binary: parses the command line, sets up logging, runs the job, maps errors to exit codes.

use std::process::ExitCode;

use clap::Parser;
use facewatch::cli::{exit_code, message, run, Cli};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let default = match cli.global.verbose {
        0 => "warn,facewatch=info,ort=warn",
        1 => "info",
        _ => "debug",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    // Colours only on a terminal: the journal (systemd) and log files get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| facewatch::capture::secrets::RedactingStderr)
        .with_target(false)
        .with_ansi(ansi)
        .init();
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("error: {}", facewatch::capture::secrets::redact(&message(&err)));
            ExitCode::from(exit_code(&err))
        }
    }
}
