//! Command-line jobs behind the `facewatch` binary: argument parsing, the jobs themselves, and the errors with the
//! documented exit codes they stand for. Commands return an [`Outcome`]: an error becomes a [`Failure`] when it is
//! raised (`?`), taking the exit code its own type decides ([`Exit`]); a type that does not say cannot be raised
//! here at all (it does not compile), so no list has to be kept in step.
//!
//! Exit codes: 0 success (`verify`: same person); 1 `verify`: different person; 2 usage or configuration
//! error; 3 input error (unreadable image, no face, several faces, bad folder or file); 4 model or runtime
//! error; 5 gallery error; 6 the event socket cannot be served; 70 internal error (including a daemon stage that
//! failed or did not drain in time). Each error type says its own ([`crate::exit`]).

mod daemon;
mod dedupe;
mod enroll;
mod evaluate;
mod gallery;
mod manual;
mod photos;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use serde::Serialize;

use crate::config::{Config, ConfigError, Sources};
use crate::exit::{self, Exit};

pub use crate::exit::{
    CONFIG as EXIT_CONFIG, DIFFERENT as EXIT_DIFFERENT, GALLERY as EXIT_GALLERY, INPUT as EXIT_INPUT, INTERNAL as EXIT_INTERNAL,
    MODEL as EXIT_MODEL, OK as EXIT_OK, SOCKET as EXIT_SOCKET,
};

/// facewatch — face recognition beside a camera: detect, align, embed, match.
#[derive(Debug, Parser)]
#[command(name = "facewatch", version, long_version = crate::base::build::LONG_VERSION, about, propagate_version = true)]
pub struct Cli {
    /// Options shared by every command.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Options shared by every command.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Configuration file layered over the defaults and /etc/facewatch/config.toml.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Set any configuration key, e.g. `--set detect.score_threshold=0.7` (repeatable).
    #[arg(long = "set", global = true, value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub set: Vec<(String, String)>,
    /// Gallery: a SQLite file (gallery.path) or a PostgreSQL server (gallery.url, postgres://user@host/db).
    #[arg(long, global = true, value_name = "FILE|URL")]
    pub gallery: Option<String>,
    /// Detector by manifest name (models.detector); [`command`] lists the manifest's.
    #[arg(long, global = true, value_name = "NAME")]
    pub detector: Option<String>,
    /// Recognizer by manifest name (models.recognizer); [`command`] lists the manifest's.
    #[arg(long, global = true, value_name = "NAME")]
    pub recognizer: Option<String>,
    /// Similarity threshold for "same person" (matcher.threshold); default: the recognizer's own.
    #[arg(long, global = true, value_name = "COSINE")]
    pub threshold: Option<f32>,
    /// Print machine-readable JSON on stdout instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// More log output on stderr (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Errors only on stderr (no warnings or progress lines); RUST_LOG overrides.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Find faces in photos: boxes, 5 landmarks, scores; optionally write aligned 112×112 crops.
    Detect(photos::DetectArgs),
    /// Enroll people from a folder holding one sub-folder of photos per person.
    Enroll(enroll::EnrollArgs),
    /// Are two photos the same person? Or: does INPUT match the person in several --anchor photos?
    Verify(photos::VerifyArgs),
    /// Who is in a photo? Every face against the gallery, top-k candidates with scores.
    Identify(photos::IdentifyArgs),
    /// List, remove or rename enrolled people; move a photo given to the wrong person.
    #[command(subcommand)]
    Gallery(gallery::GalleryCommand),
    /// The strangers the daemon keeps (faces no enrolled person matches): list, show, name, merge, forget.
    #[command(subcommand)]
    Strangers(gallery::StrangersCommand),
    /// Find copies of the same photo (identical bytes, resized or re-encoded, or with --faces the same face
    /// crop); dry run unless --move.
    Dedupe(dedupe::DedupeArgs),
    /// Balanced same/different pair lists from a folder per person (seeded; LFW pairs.txt and CSV).
    Pairs(evaluate::PairsArgs),
    /// Accuracy on a pair list: at the threshold, 10-fold (LFW protocol), ROC/AUC, EER, TAR at FAR.
    Evaluate(evaluate::EvaluateArgs),
    /// Choose the threshold for a target false-accept rate from your own pairs or gallery.
    Calibrate(evaluate::CalibrateArgs),
    /// List the models of the manifest and whether each is installed with the right sha256; `models install`
    /// fetches them.
    Models {
        /// `install`: fetch and check the runtime, models and samples.
        #[command(subcommand)]
        action: Option<gallery::ModelsCommand>,
    },
    /// Load the configuration, check it and the files it names, and print every problem at once.
    CheckConfig {
        /// Also print the plan: what the daemon decides from the configuration on this machine (workers,
        /// sessions, budgets, threads, thresholds per camera, paths, edges), each value with where it came from.
        #[arg(long)]
        plan: bool,
    },
    /// The daemon: watch a camera, file or stream; publish who is in front of it on the event socket.
    Run(daemon::RunArgs),
    /// Print the daemon's events (JSON lines) from its socket.
    Subscribe(daemon::SubscribeArgs),
    /// Run the whole pipeline on a video and report fps, per-stage and end-to-end latency, drops, CPU and memory.
    Bench(daemon::BenchArgs),
    /// Print a shell completion script: `facewatch completions bash > /etc/bash_completion.d/facewatch`.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff), or with --dir write one page per command (facewatch.1, facewatch-enroll.1,
    /// …): `facewatch man --dir /usr/local/share/man/man1`.
    Man {
        /// Write every command's page into this directory instead (its paths are printed).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

impl Command {
    /// Whether this is a long-running command that serves subscribers (`run`, `bench`): it logs its progress and
    /// must survive a subscriber or a stdout going away.
    pub fn is_daemon(&self) -> bool {
        matches!(self, Self::Run(_) | Self::Bench(_))
    }
}

/// The command line as `--help`, completions and manual pages show it: the `--detector` and `--recognizer` help
/// lists the compiled-in manifest's models with their licences, and the packs.
pub fn command() -> clap::Command {
    let manifest: Option<crate::model::Manifest> = toml::from_str(crate::model::BUILTIN_MANIFEST).ok();
    let listed = |names: Vec<(String, String)>| names.into_iter().map(|(n, l)| format!("{n} ({l})")).collect::<Vec<_>>().join(", ");
    let detectors = manifest.as_ref().map(|m| listed(m.detector.iter().map(|(n, d)| (n.clone(), d.licence.clone())).collect()));
    let recognizers = manifest.as_ref().map(|m| listed(m.recognizer.iter().map(|(n, r)| (n.clone(), r.licence.clone())).collect()));
    let packs =
        crate::config::PACKS.iter().map(|p| format!("{} = {} + {}", p.name, p.detector, p.recognizer)).collect::<Vec<_>>().join("; ");
    <Cli as clap::CommandFactory>::command()
        .mut_arg("detector", |a| a.help(format!("Detector by manifest name (models.detector): {}", detectors.unwrap_or_default())))
        .mut_arg("recognizer", |a| {
            a.help(format!(
                "Recognizer by manifest name (models.recognizer): {}. Packs (models.pack): {packs}",
                recognizers.unwrap_or_default()
            ))
        })
}

impl Cli {
    /// Parses the process's arguments against [`command`] (exits with usage on a bad command line).
    pub fn parse_args() -> Self {
        let matches = command().get_matches();
        <Self as clap::FromArgMatches>::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
    }
}

fn parse_key_value(s: &str) -> Result<(String, String), String> {
    let (k, v) = s.split_once('=').ok_or_else(|| format!("`{s}` is not KEY=VALUE"))?;
    Ok((k.trim().to_string(), v.trim().to_string()))
}

impl GlobalArgs {
    /// The configuration sources: the system file, `--config`, this process's environment and `--set`.
    pub fn sources(&self) -> Sources {
        Sources::from_process(self.config.clone(), self.set.clone())
    }

    /// Loads and validates the configuration, the global flags applied to their fields.
    pub fn load_config(&self) -> Result<Config, ConfigError> {
        self.load_config_with(|_| {})
    }

    /// Loads the configuration, applies the global flags and then a command's own (`flags`) to their typed
    /// fields, and validates the result once.
    pub fn load_config_with(&self, flags: impl FnOnce(&mut Config)) -> Result<Config, ConfigError> {
        let cfg = self.load_unvalidated(flags)?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// [`GlobalArgs::load_config_with`] without the validation (`check-config` reports every problem itself).
    pub fn load_unvalidated(&self, flags: impl FnOnce(&mut Config)) -> Result<Config, ConfigError> {
        let mut cfg = Config::load(&self.sources())?;
        if let Some(path) = &self.gallery {
            match crate::gallery::is_postgres_url(path) {
                true => cfg.gallery.url = crate::gallery::DbUrl::new(path),
                false => {
                    cfg.gallery.path.clone_from(path);
                    cfg.gallery.url = crate::gallery::DbUrl::default();
                }
            }
        }
        if let Some(name) = &self.detector {
            cfg.models.detector.clone_from(name);
        }
        if let Some(name) = &self.recognizer {
            cfg.models.recognizer.clone_from(name);
        }
        if let Some(t) = self.threshold {
            let t = crate::config::Threshold::new(t)
                .map_err(|e| ConfigError::Invalid { path: "matcher.threshold".into(), message: e.to_string() })?;
            cfg.matcher.threshold = Some(t);
        }
        flags(&mut cfg);
        Ok(cfg)
    }
}

/// A command's error with the exit code its type decided when it was raised.
#[derive(Debug)]
pub struct Failure {
    code: u8,
    error: anyhow::Error,
}

impl<E: Exit + std::error::Error + Send + Sync + 'static> From<E> for Failure {
    fn from(e: E) -> Self {
        Self { code: e.exit_code(), error: e.into() }
    }
}

impl Failure {
    /// A failure of the program itself (exit 70): a thread or signal handler that could not be set up.
    pub fn internal(error: impl Into<anyhow::Error>) -> Self {
        Self { code: exit::INTERNAL, error: error.into() }
    }

    /// The same failure, said as `what` first (`failed to load the models: …`), with its exit code kept.
    pub fn context(self, what: &'static str) -> Self {
        Self { code: self.code, error: self.error.context(what) }
    }

    /// The exit code.
    pub fn exit_code(&self) -> u8 {
        self.code
    }

    /// The error and its causes in one line, each cause said once.
    pub fn message(&self) -> String {
        message(&self.error)
    }
}

/// What a command returns: its exit code, or a [`Failure`].
pub type Outcome<T = u8> = Result<T, Failure>;

/// `?` on a library result with a context line in front of its message, its exit code kept.
pub trait Context<T> {
    /// Says `what` first when it fails.
    fn context(self, what: &'static str) -> Outcome<T>;
}

impl<T, E: Exit + std::error::Error + Send + Sync + 'static> Context<T> for Result<T, E> {
    fn context(self, what: &'static str) -> Outcome<T> {
        self.map_err(|e| Failure::from(e).context(what))
    }
}

/// Writing a report to stdout or reading a socket failed: what the program cannot go on without (exit 70).
impl Exit for std::io::Error {
    fn exit_code(&self) -> u8 {
        exit::INTERNAL
    }
}

/// A report could not be serialised: a bug (exit 70).
impl Exit for serde_json::Error {
    fn exit_code(&self) -> u8 {
        exit::INTERNAL
    }
}

/// Runs a parsed command line; returns the process exit code.
pub fn run(cli: Cli) -> Outcome {
    let g = &cli.global;
    match cli.command {
        Command::CheckConfig { plan } => gallery::check_config(g, plan),
        Command::Models { action: None } => gallery::models(g),
        Command::Models { action: Some(gallery::ModelsCommand::Install(a)) } => gallery::install(g, a),
        Command::Pairs(a) => evaluate::pairs(g, a),
        Command::Dedupe(a) if !a.faces => dedupe::dedupe(g, None, a),
        Command::Run(a) => daemon::run(g, a),
        Command::Subscribe(a) => daemon::subscribe(g, a),
        Command::Bench(a) => daemon::bench(g, a),
        Command::Completions { .. } | Command::Man { .. } if g.json => {
            Err(UsageError("--json has no meaning for `completions` and `man`: they print a script and a manual page".into()).into())
        }
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut command(), "facewatch", &mut std::io::stdout());
            Ok(EXIT_OK)
        }
        Command::Man { dir: None } => {
            let pages = manual::pages(command())?;
            if let Some((_, main)) = pages.first() {
                std::io::Write::write_all(&mut std::io::stdout(), main)?;
            }
            Ok(EXIT_OK)
        }
        Command::Man { dir: Some(dir) } => {
            for path in manual::write_pages(command(), &dir)? {
                println!("{}", path.display());
            }
            Ok(EXIT_OK)
        }
        command => {
            let cfg = g.load_config()?;
            match command {
                Command::Detect(a) => photos::detect(g, &cfg, a),
                Command::Enroll(a) => enroll::enroll(g, &cfg, a),
                Command::Verify(a) => photos::verify(g, &cfg, a),
                Command::Identify(a) => photos::identify(g, &cfg, a),
                Command::Gallery(c) => gallery::gallery(g, &cfg, c),
                Command::Strangers(c) => gallery::strangers(g, &cfg, c),
                Command::Evaluate(a) => evaluate::evaluate(g, &cfg, a),
                Command::Dedupe(a) => dedupe::dedupe(g, Some(&cfg), a),
                Command::Calibrate(a) => evaluate::calibrate(g, &cfg, a),
                Command::CheckConfig { .. }
                | Command::Models { .. }
                | Command::Pairs(_)
                | Command::Run(_)
                | Command::Subscribe(_)
                | Command::Bench(_)
                | Command::Completions { .. }
                | Command::Man { .. } => {
                    unreachable!("handled above")
                }
            }
        }
    }
}

/// A progress bar on stderr, drawn only on a terminal and never with `--json`.
fn progress(g: &GlobalArgs, what: &str, total: usize) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    let bar = indicatif::ProgressBar::new(total as u64);
    if g.json || g.quiet || !std::io::stderr().is_terminal() {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    if let Ok(style) = indicatif::ProgressStyle::with_template(&format!("{{spinner}} {what} {{bar:30}} {{pos}}/{{len}} {{msg}}")) {
        bar.set_style(style);
    }
    bar
}

/// A progress bar as a job's progress callback.
fn bar_progress(bar: &indicatif::ProgressBar) -> impl FnMut(crate::jobs::Progress) + '_ {
    move |p| match p {
        crate::jobs::Progress::Total(n) => bar.set_length(n as u64),
        crate::jobs::Progress::Done => bar.inc(1),
    }
}

/// Prints `report` as one pretty JSON document, `{"v": 1, …}`, when `--json`, else calls `text`. A report must
/// serialize as an object (a list goes in a named field).
fn emit<T: Serialize>(g: &GlobalArgs, report: &T, text: impl FnOnce(&T)) -> Outcome<()> {
    if g.json {
        println!("{}", serde_json::to_string_pretty(&crate::jobs::Document::new(report))?);
    } else {
        text(report);
    }
    Ok(())
}

/// An error and its causes in one line, each cause said once: many errors already include their source's text in
/// their own message, and a chain printed blindly says it twice.
fn message(err: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in err.chain() {
        let part = cause.to_string();
        if !text.contains(&part) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&part);
        }
    }
    printable(&text)
}

/// `text` with its control characters escaped (`\n`, `\u{1b}`…), so that a file or person name cannot break a
/// line of output, forge another one or drive the terminal. A newline followed by two spaces is kept: it is how
/// an error lists several problems.
fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\n' && chars.clone().take(2).eq("  ".chars()) {
            out.push(c);
        } else if c.is_control() {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    out
}

/// A path as the text output shows it: every control character escaped.
fn shown(path: &std::path::Path) -> String {
    path.display().to_string().chars().flat_map(|c| if c.is_control() { c.escape_debug().collect() } else { vec![c] }).collect()
}

/// A user-input problem found by a job itself (not by a library stage).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InputError(pub String);

impl Exit for InputError {
    fn exit_code(&self) -> u8 {
        exit::INPUT
    }
}

/// Arguments that do not go together (what clap cannot check by itself): a usage error, exit 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

impl Exit for UsageError {
    fn exit_code(&self) -> u8 {
        exit::CONFIG
    }
}
