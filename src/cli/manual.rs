//! `facewatch man`: a manual page per command (`facewatch(1)`, `facewatch-enroll(1)`, `facewatch-gallery-list(1)`,
//! …), each with clap's sections (name, synopsis, description, options, subcommands) and the ones clap cannot
//! know: EXIT STATUS, ENVIRONMENT, FILES, EXAMPLES and SEE ALSO.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Exit codes, as `facewatch --help` and the README document them.
const EXIT_STATUS: &[(&str, &str)] = &[
    ("0", "Success; for verify: the same person."),
    ("1", "verify: different people."),
    ("2", "Usage or configuration error (also: a model whose licence was not accepted)."),
    ("3", "Input error: an unreadable or truncated image, no face, several faces, a bad folder or file, a camera away at start."),
    ("4", "Model or runtime error: a missing or corrupt model, the ONNX Runtime library not found."),
    ("5", "Gallery error, including a PostgreSQL gallery that cannot be reached (nothing was changed)."),
    ("6", "The event socket cannot be served."),
    ("70", "Internal error, including a daemon stage that failed or did not drain in time."),
];

/// Environment variables the binary reads.
const ENVIRONMENT: &[(&str, &str)] = &[
    ("FACEWATCH_<SECTION>__<KEY>", "Set any configuration key, e.g. FACEWATCH_DETECT__SCORE_THRESHOLD=0.7; over the files, under --set."),
    ("FACEWATCH_CAMERA_<NAME>_CREDENTIALS", "user:password of the camera NAME's RTSP stream (instead of credentials_file)."),
    ("FACEWATCH_CAPTURE_CREDENTIALS", "user:password of the single camera's stream."),
    ("FACEWATCH_MQTT_PASSWORD", "The MQTT broker's password (instead of mqtt.password_file)."),
    ("FACEWATCH_GALLERY_PASSWORD", "The PostgreSQL gallery's password (instead of gallery.password_file)."),
    ("FACEWATCH_MODEL_MIRROR", "An offline mirror directory models install tries first."),
    ("FACEWATCH_FACES", "The sample faces' mirror (models install of the samples)."),
    ("XDG_DATA_HOME, HOME", "The user's data directory: models, runtime and gallery of a user install (~/.local/share/facewatch)."),
    ("RUST_LOG", "Log filter, e.g. RUST_LOG=debug or warn,facewatch=info; overrides -v and -q."),
    ("NO_COLOR", "No colours on a terminal."),
    ("NOTIFY_SOCKET, WATCHDOG_USEC, JOURNAL_STREAM", "Set by systemd: readiness, watchdog, log priorities."),
];

/// Files the binary reads and writes.
const FILES: &[(&str, &str)] = &[
    ("/etc/facewatch/config.toml", "The system configuration, read when it exists; --config layers another over it."),
    ("/var/lib/facewatch/gallery.db", "The service's gallery (0600; the directory 0700)."),
    (
        "/usr/local/lib/facewatch/models, /usr/local/lib/facewatch/lib",
        "Models and ONNX Runtime that sudo facewatch models install puts there.",
    ),
    ("/usr/lib/facewatch", "Models and ONNX Runtime of the facewatch-models package."),
    ("~/.local/share/facewatch, ~/.local/lib/facewatch", "A user's models, gallery and runtime."),
    ("/run/facewatch/events.sock", "The service's event socket (0660, group facewatch)."),
    ("/lib/systemd/system/facewatch.service", "The systemd unit."),
];

/// Examples per top-level command; a nested command (`gallery list`) shows its parent's.
fn examples(command: &str) -> &'static [&'static str] {
    match command {
        "facewatch" => &[
            "sudo facewatch models install",
            "facewatch enroll ~/people",
            "facewatch identify photo.jpg",
            "facewatch run --source /dev/video0",
        ],
        "detect" => &["facewatch detect group.jpg", "facewatch --json detect --crop crops/ photos/*.jpg"],
        "enroll" => {
            &["facewatch enroll ~/people        # one sub-folder of photos per person", "facewatch enroll --name ada ada1.jpg ada2.jpg"]
        }
        "verify" => &["facewatch verify a.jpg b.jpg; echo $?   # 0 same person, 1 different"],
        "identify" => &["facewatch identify door.jpg", "facewatch --json identify --top-k 3 door.jpg"],
        "gallery" => &[
            "facewatch gallery list",
            "facewatch gallery rename ada ada-lovelace",
            "facewatch gallery copy --to postgres://facewatch@db.lan/facewatch",
        ],
        "strangers" => &["facewatch strangers list", "facewatch strangers name stranger-4f2a ada"],
        "dedupe" => &["facewatch dedupe ~/people", "facewatch dedupe --faces --move dupes/ ~/people"],
        "pairs" => &["facewatch pairs ~/people --lfw pairs.txt"],
        "evaluate" => &["facewatch evaluate --pairs pairs.txt --dir ~/people --plots plots/"],
        "calibrate" => &["facewatch calibrate --pairs pairs.txt --dir ~/people --far 0.001"],
        "models" => {
            &["facewatch models", "sudo facewatch models install", "sudo facewatch models install --accept-non-commercial w600k_mbf"]
        }
        "check-config" => &["facewatch --config /etc/facewatch/config.toml check-config --plan"],
        "run" => &[
            "facewatch run --source /dev/video0 --preview",
            "facewatch run --source rtsp://cam.lan/stream1",
            "facewatch run --source clip.mp4 --socket /tmp/fw.sock",
        ],
        "subscribe" => &["facewatch subscribe --socket /run/facewatch/events.sock"],
        "bench" => &["facewatch bench clip.mp4", "facewatch --json --set runtime.execution_providers=cuda bench clip.mp4"],
        "completions" => &["facewatch completions bash > /etc/bash_completion.d/facewatch"],
        "man" => &["facewatch man --dir /usr/share/man/man1"],
        _ => &[],
    }
}

/// Text for a roff body line: backslashes escaped, a leading `.` or `'` made literal.
fn roff_text(s: &str) -> String {
    let s = s.replace('\\', "\\e").replace('-', "\\-");
    match s.starts_with(['.', '\'']) {
        true => format!("\\&{s}"),
        false => s,
    }
}

/// A section of tagged paragraphs.
fn tagged(out: &mut Vec<u8>, title: &str, items: &[(&str, &str)]) -> std::io::Result<()> {
    writeln!(out, ".SH \"{title}\"")?;
    for (tag, text) in items {
        writeln!(out, ".TP\n\\fB{}\\fR\n{}", roff_text(tag), roff_text(text))?;
    }
    Ok(())
}

/// One command's page.
fn page(cmd: &clap::Command, top: &str, siblings: &[String]) -> std::io::Result<Vec<u8>> {
    let man = clap_mangen::Man::new(cmd.clone()).manual("facewatch manual").source(format!("facewatch {}", crate::base::build::VERSION));
    let mut out = Vec::new();
    man.render_title(&mut out)?;
    man.render_name_section(&mut out)?;
    man.render_synopsis_section(&mut out)?;
    man.render_description_section(&mut out)?;
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        man.render_options_section(&mut out)?;
    }
    if cmd.get_subcommands().any(|s| !s.is_hide_set()) {
        man.render_subcommands_section(&mut out)?;
    }
    tagged(&mut out, "EXIT STATUS", EXIT_STATUS)?;
    tagged(&mut out, "ENVIRONMENT", ENVIRONMENT)?;
    tagged(&mut out, "FILES", FILES)?;
    writeln!(out, ".SH EXAMPLES")?;
    for e in examples(top).iter().chain(examples(top).is_empty().then_some(&examples("facewatch")[0])) {
        writeln!(out, ".PP\n.nf\n{}\n.fi", roff_text(e))?;
    }
    writeln!(out, ".SH \"SEE ALSO\"")?;
    writeln!(out, "{}", roff_text(&siblings.iter().map(|s| format!("{s}(1)")).collect::<Vec<_>>().join(", ")))?;
    writeln!(out, ".PP\nThe README: /usr/share/doc/facewatch/README.md")?;
    Ok(out)
}

/// Every page: (file name, roff), the main page first.
pub(super) fn pages(cmd: clap::Command) -> std::io::Result<Vec<(String, Vec<u8>)>> {
    let mut cmd = cmd.disable_help_subcommand(true);
    cmd.build();
    // (page name, command, top-level command name)
    let mut all: Vec<(String, clap::Command, String)> = vec![("facewatch".into(), cmd.clone(), "facewatch".into())];
    fn walk(prefix: &str, top: Option<&str>, cmd: &clap::Command, all: &mut Vec<(String, clap::Command, String)>) {
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            let name = format!("{prefix}-{}", sub.get_name());
            let top = top.unwrap_or(sub.get_name()).to_string();
            all.push((name.clone(), sub.clone().display_name(name.clone()), top.clone()));
            walk(&name, Some(&top), sub, all);
        }
    }
    walk("facewatch", None, &cmd, &mut all);
    let names: Vec<String> = all.iter().map(|(n, ..)| n.clone()).collect();
    all.iter()
        .map(|(name, c, top)| {
            let related: Vec<String> = names
                .iter()
                .filter(|n| *n != name && (n.as_str() == "facewatch" || n.starts_with(&format!("facewatch-{top}")) || name == "facewatch"))
                .cloned()
                .collect();
            Ok((format!("{name}.1"), page(c, top, &related)?))
        })
        .collect()
}

/// Writes every page into `dir`; returns their paths.
pub(super) fn write_pages(cmd: clap::Command, dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    pages(cmd)?
        .into_iter()
        .map(|(file, roff)| {
            let path = dir.join(file);
            std::fs::write(&path, roff)?;
            Ok(path)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_has_a_page_with_exit_status_environment_files_and_examples() {
        let pages = pages(super::super::command()).expect("pages");
        let names: Vec<&str> = pages.iter().map(|(n, _)| n.as_str()).collect();
        for want in ["facewatch.1", "facewatch-enroll.1", "facewatch-run.1", "facewatch-models-install.1", "facewatch-gallery-list.1"] {
            assert!(names.contains(&want), "{want} missing: {names:?}");
        }
        for (name, roff) in &pages {
            let text = String::from_utf8_lossy(roff);
            for section in ["EXIT STATUS", "ENVIRONMENT", "FILES", "EXAMPLES", "SEE ALSO", "SYNOPSIS"] {
                let heading = |t: &str| text.lines().any(|l| l.strip_prefix(".SH ").is_some_and(|h| h.trim_matches('"') == t));
                assert!(heading(section), "{name}: {section} missing");
            }
            assert!(text.contains("FACEWATCH_GALLERY_PASSWORD") && text.contains("/etc/facewatch/config.toml"), "{name}");
        }
        let enroll = String::from_utf8_lossy(&pages.iter().find(|(n, _)| n == "facewatch-enroll.1").expect("enroll").1).to_string();
        assert!(enroll.contains("facewatch enroll ~/people"), "{enroll}");
    }
}
