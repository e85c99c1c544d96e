//! The `facewatch` binary: parses the command line, sets up logging, runs the job, maps errors to exit codes.

use std::process::ExitCode;

use facewatch::cli::{run, Cli};
use tracing_subscriber::fmt::format::{FormatEvent, FormatFields, Writer};
use tracing_subscriber::fmt::FmtContext;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::parse_args();
    if !cli.command.is_daemon() {
        // A closed stdout (`facewatch gallery list | head -1`) ends the process quietly, as it does `ls`. The
        // daemon keeps SIGPIPE ignored: a subscriber that goes away must cost it one write error, not its life.
        // SAFETY: restoring a signal's default disposition before any other thread exists.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    let default = match (cli.global.quiet, cli.global.verbose) {
        (true, _) => "error",
        (false, 0) if cli.command.is_daemon() => "warn,facewatch=info,ort=warn",
        (false, 0) => "warn,ort=error",
        (false, 1) => "info",
        _ => "debug",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    // Colours only on a terminal, and never with NO_COLOR set (no-color.org): the journal and log files get plain
    // text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr()) && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    // Under systemd (stderr connected to the journal): no timestamps of our own (the journal keeps one) and each
    // line prefixed with its syslog priority, so `journalctl -p warning` filters facewatch's lines.
    let journal = std::env::var_os("JOURNAL_STREAM").is_some();
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(|| facewatch::capture::secrets::RedactingStderr);
    if journal {
        logs.event_format(Journald(tracing_subscriber::fmt::format().without_time().with_target(false).with_ansi(false))).init();
    } else {
        logs.with_target(false).with_ansi(ansi).init();
    }
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(failure) => {
            let priority = if journal { "<3>" } else { "" };
            eprintln!("{priority}error: {}", facewatch::capture::secrets::redact(&failure.message()));
            ExitCode::from(failure.exit_code())
        }
    }
}

/// A log line format with the line's syslog priority in front (`<3>` error … `<7>` debug), as journald reads it
/// from a service's stderr.
struct Journald<F>(F);

impl<S, N, F> FormatEvent<S, N> for Journald<F>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &tracing::Event<'_>) -> std::fmt::Result {
        let priority = match *event.metadata().level() {
            tracing::Level::ERROR => 3,
            tracing::Level::WARN => 4,
            tracing::Level::INFO => 6,
            _ => 7,
        };
        write!(writer, "<{priority}>")?;
        self.0.format_event(ctx, writer, event)
    }
}
