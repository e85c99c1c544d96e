//! Hostile clients and hostile neighbours, through the real binary: a network client without a key, a flood of idle
//! connections under the unit's descriptor limit, another user's directory or server around the event socket, links
//! planted in output folders, secrets given the wrong way. Where an attack needs a second user, the system's
//! `nobody` (uid 65534) plays it, which needs root (CI runs as root).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::common::{arg, clip, face, gallery, root};

const KEY: &str = "hostile-test-key-71c3";
/// The user who plays the neighbour.
const NOBODY: u32 = 65_534;

/// The binary under test: this build's, or `FACEWATCH_TEST_BIN` (to show the attacks working on an older build).
fn facewatch() -> Command {
    let bin = std::env::var_os("FACEWATCH_TEST_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_facewatch").into());
    let mut c = Command::new(bin);
    c.current_dir(root()).env("RUST_LOG", "info,ort=warn");
    c
}

fn must_be_root(why: &str) {
    // SAFETY: geteuid cannot fail.
    assert_eq!(unsafe { libc::geteuid() }, 0, "this test needs root to {why} (CI runs as root; run the tests as root)");
}

/// Sets the child's descriptor limit, soft and hard, as `ulimit -n` or systemd's `LimitNOFILE=` would.
fn with_nofile(c: &mut Command, n: u64) -> &mut Command {
    // SAFETY: setrlimit is async-signal-safe and touches only the child.
    unsafe {
        c.pre_exec(move || {
            let r = libc::rlimit { rlim_cur: n, rlim_max: n };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &r) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        })
    }
}

/// This test process may hold many connections.
fn raise_own_nofile() {
    let mut r = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: get and set this process's own limit.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut r);
        r.rlim_cur = r.rlim_max.min(16_384);
        libc::setrlimit(libc::RLIMIT_NOFILE, &r);
    }
    assert!(r.rlim_cur >= 4096, "the tests need 4096 descriptors of their own (ulimit -n 4096)");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port()
}

/// A daemon with the API on, the sample clip looping; its log collected as it comes.
struct Daemon {
    child: Child,
    port: u16,
    log: Arc<Mutex<String>>,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Daemon {
    fn start(dir: &Path, extra: &[&str], nofile: Option<u64>) -> Self {
        let g = gallery(dir, &[("lin", &[face("video/lin-manuel-miranda.png")])]);
        let keys = dir.join("keys");
        std::fs::write(&keys, format!("{KEY}\n")).expect("keys");
        std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let port = free_port();
        let mut c = facewatch();
        // No event socket unless the test names one: tests run side by side.
        c.args(["--gallery", arg(&g), "--set", "runtime.intra_threads=1", "--set", "publish.socket=", "--set"])
            .arg(format!("api.listen=127.0.0.1:{port}"))
            .arg("--set")
            .arg(format!("api.keys_file={}", keys.display()))
            .args(extra)
            .args(["run", "--source", arg(&clip()), "--camera", "stage", "--loop"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(n) = nofile {
            with_nofile(&mut c, n);
        }
        let mut child = c.spawn().expect("start facewatch run");
        let log = Arc::new(Mutex::new(String::new()));
        let (stderr, sink) = (child.stderr.take().expect("stderr"), log.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut log = sink.lock().expect("log");
                log.push_str(&line);
                log.push('\n');
            }
        });
        let d = Self { child, port, log };
        let start = Instant::now();
        while d.health(Duration::from_secs(2)).is_none() {
            assert!(start.elapsed() < Duration::from_secs(90), "the API never answered:\n{}", d.log());
            std::thread::sleep(Duration::from_millis(100));
        }
        d
    }

    fn log(&self) -> String {
        self.log.lock().expect("log").clone()
    }

    fn rss_mib(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).expect("status");
        let kib: f64 =
            status.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)).expect("VmRSS").parse().expect("kB");
        kib / 1024.0
    }

    /// `/api/health` within `timeout`: (latency, frames of the camera).
    fn health(&self, timeout: Duration) -> Option<(Duration, u64)> {
        let started = Instant::now();
        let agent = ureq::AgentBuilder::new().timeout(timeout).build();
        let text = agent.get(&format!("http://127.0.0.1:{}/api/health", self.port)).call().ok()?.into_string().ok()?;
        let v: Value = serde_json::from_str(&text).ok()?;
        Some((started.elapsed(), v["cameras"][0]["frames"].as_u64()?))
    }
}

/// Sends the head of a keyless upload of `len` bytes and returns the connection.
fn keyless_upload_head(port: u16, len: usize) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    write!(s, "POST /api/recognize HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nContent-Length: {len}\r\n\r\n").expect("head");
    s
}

/// The status line of what came back, if anything did within `timeout`.
fn status_line(s: &mut TcpStream, timeout: Duration) -> Option<String> {
    s.set_read_timeout(Some(timeout)).expect("timeout");
    let mut buf = [0u8; 256];
    let n = s.read(&mut buf).ok()?;
    String::from_utf8_lossy(&buf[..n]).lines().next().map(str::to_string)
}

/// A keyless client is answered on its headers alone, and a hundred keyless clients each sending 20 MB cost the
/// daemon no memory to speak of (they used to cost 1.5 GB, kept after they left).
#[test]
fn keyless_uploads_are_refused_on_their_headers_and_cost_no_memory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = Daemon::start(dir.path(), &[], None);
    // The head alone: the 401 comes without a byte of the body.
    let mut s = keyless_upload_head(d.port, 20 << 20);
    let line = status_line(&mut s, Duration::from_secs(5)).expect("an answer before any body byte");
    assert!(line.contains("401"), "{line}");
    drop(s);

    std::thread::sleep(Duration::from_secs(1));
    let before = d.rss_mib();
    let peak = Arc::new(Mutex::new(before));
    let watching = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let (p, w, pid) = (peak.clone(), watching.clone(), d.child.id());
    let watcher = std::thread::spawn(move || {
        while w.load(std::sync::atomic::Ordering::Relaxed) {
            if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
                if let Some(kib) = status.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)) {
                    let mib = kib.parse::<f64>().unwrap_or(0.0) / 1024.0;
                    let mut p = p.lock().expect("peak");
                    *p = p.max(mib);
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    let port = d.port;
    let clients: Vec<_> = (0..100)
        .map(|_| {
            std::thread::spawn(move || {
                let mut s = keyless_upload_head(port, 20 << 20);
                let chunk = vec![0u8; 1 << 16];
                let mut sent = 0usize;
                while sent < 20 << 20 {
                    match s.write(&chunk) {
                        Ok(n) => sent += n,
                        Err(_) => break,
                    }
                }
                // Held open, as the attacker did.
                (status_line(&mut s, Duration::from_secs(10)), s)
            })
        })
        .collect();
    let answers: Vec<(Option<String>, TcpStream)> = clients.into_iter().map(|c| c.join().expect("client")).collect();
    std::thread::sleep(Duration::from_secs(1));
    let holding = d.rss_mib();
    drop(answers.into_iter().map(|(line, _)| line).collect::<Vec<_>>());
    watching.store(false, std::sync::atomic::Ordering::Relaxed);
    watcher.join().expect("watcher");
    let peak = *peak.lock().expect("peak");
    eprintln!("RSS before {before:.0} MiB, peak {peak:.0} MiB, holding {holding:.0} MiB");
    assert!(peak - before < 150.0, "100 keyless 20 MB uploads raised RSS from {before:.0} to {peak:.0} MiB");
    assert!(holding - before < 64.0, "memory kept after the burst: {before:.0} -> {holding:.0} MiB");
    let (_, frames) = d.health(Duration::from_secs(5)).expect("health after the burst");
    assert!(frames > 0);
}

/// 1,100 idle connections against a daemon limited to 1,024 descriptors: health still answers at once and the
/// looping camera keeps reopening its file; a client trickling its headers is closed; 200 subscribers on the event
/// socket are held to `publish.max_subscribers`. Under 32 descriptors the daemon refuses to start and says why.
#[test]
fn a_flood_of_idle_connections_under_the_unit_s_limit_starves_neither_health_nor_the_camera() {
    raise_own_nofile();
    let dir = tempfile::tempdir().expect("tempdir");
    let sock = dir.path().join("run/events.sock");
    let socket_arg = format!("publish.socket={}", sock.display());
    let d = Daemon::start(dir.path(), &["--set", "api.idle_timeout_s=3", "--set", &socket_arg], Some(1024));
    let idle: Vec<TcpStream> = (0..1100).filter_map(|_| TcpStream::connect(("127.0.0.1", d.port)).ok()).collect();
    assert!(idle.len() >= 1000, "only {} connections opened", idle.len());
    let subscribers: Vec<_> = (0..200).filter_map(|_| std::os::unix::net::UnixStream::connect(&sock).ok()).collect();
    let mut frames = Vec::new();
    for _ in 0..6 {
        let (latency, f) = d.health(Duration::from_secs(5)).unwrap_or_else(|| panic!("health did not answer:\n{}", d.log()));
        assert!(latency < Duration::from_secs(2), "health took {latency:?}");
        frames.push(f);
        std::thread::sleep(Duration::from_millis(700));
    }
    assert!(frames.windows(2).all(|w| w[1] > w[0]), "the camera stalled: {frames:?}\n{}", d.log());
    // The clip loops every 275 frames (about 9 s): its reopen needs a descriptor, and gets one.
    let start = Instant::now();
    let first = frames[0];
    while d.health(Duration::from_secs(5)).map_or(0, |(_, f)| f) < first + 300 {
        assert!(start.elapsed() < Duration::from_secs(30), "the looping file was not reopened:\n{}", d.log());
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(!d.log().contains("Source lost"), "{}", d.log());
    // The idle ones were closed (at the limit, then after idle_timeout_s).
    let still_open = idle
        .iter()
        .filter(|s| {
            s.set_nonblocking(true).expect("nonblocking");
            matches!((&**s).read(&mut [0u8; 1]), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
        })
        .count();
    assert!(still_open < 10, "{still_open} idle connections still open after the idle timeout");
    let served = subscribers
        .iter()
        .filter(|s| {
            s.set_read_timeout(Some(Duration::from_millis(200))).expect("timeout");
            let mut line = String::new();
            BufReader::new(*s).read_line(&mut line).is_ok_and(|n| n > 0)
        })
        .count();
    assert_eq!(served, 64, "publish.max_subscribers holds the socket's clients");
    // A request head trickled a byte at a time is cut off.
    let mut slow = TcpStream::connect(("127.0.0.1", d.port)).expect("connect");
    let started = Instant::now();
    let cut = b"GET /api/health HTTP/1.1\r\nHost: x\r\n".iter().any(|b| {
        std::thread::sleep(Duration::from_millis(400));
        slow.write_all(&[*b]).is_err()
    });
    let closed = cut || matches!(slow.read(&mut [0u8; 64]), Ok(0) | Err(_));
    assert!(closed && started.elapsed() < Duration::from_secs(12), "a trickled head held its connection {:?}", started.elapsed());
    drop(d);

    // Under 32 descriptors nothing fits: refused at start, naming what takes them.
    let g = gallery(&dir.path().join("g2"), &[("lin", &[face("video/lin-manuel-miranda.png")])]);
    let mut c = facewatch();
    c.args(["--gallery", arg(&g), "--set", &socket_arg, "run", "--source", arg(&clip())]);
    let out = with_nofile(&mut c, 32).output().expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("file descriptors") && stderr.contains("publish.max_subscribers") && stderr.contains("limit is 32"),
        "{stderr}"
    );
}

/// The event socket's directory must be the daemon's (or root's) and writable by nobody else: another user's
/// directory, or one its group may write to, is refused before anything starts.
#[test]
fn the_event_socket_is_served_only_from_a_directory_nobody_else_can_change() {
    must_be_root("make a directory of another user");
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let g = gallery(dir.path(), &[("lin", &[face("video/lin-manuel-miranda.png")])]);
    let theirs = dir.path().join("theirs");
    std::fs::create_dir(&theirs).expect("mkdir");
    std::os::unix::fs::chown(&theirs, Some(NOBODY), Some(NOBODY)).expect("chown");
    let shared = dir.path().join("shared");
    std::fs::create_dir(&shared).expect("mkdir");
    std::os::unix::fs::chown(&shared, Some(0), Some(NOBODY)).expect("chown");
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o770)).expect("chmod");
    for (folder, why) in [(&theirs, "belongs to uid 65534"), (&shared, "writable by its group")] {
        let sock = folder.join("events.sock");
        let out = facewatch()
            .args(["--gallery", arg(&g), "run", "--source", arg(&clip()), "--max-frames", "5", "--socket", arg(&sock)])
            .output()
            .expect("run");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(6), "{stderr}");
        assert!(stderr.contains(why), "{why}: {stderr}");
        assert!(!sock.exists());
        let check = facewatch()
            .args(["--gallery", arg(&g), "--set", &format!("publish.socket={}", sock.display()), "check-config"])
            .output()
            .expect("check");
        let said = format!("{}{}", String::from_utf8_lossy(&check.stdout), String::from_utf8_lossy(&check.stderr));
        assert!(said.contains(why), "check-config warns too: {said}");
    }
}

/// A socket replaced behind the daemon's back is reported, and left alone at exit; `subscribe` refuses a server
/// that another user runs in a socket of theirs, instead of printing its forged events.
#[test]
fn a_replaced_socket_is_reported_and_kept_and_subscribe_refuses_a_strangers_server() {
    must_be_root("run a server as another user");
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let g = gallery(&dir.path().join("g"), &[("lin", &[face("video/lin-manuel-miranda.png")])]);
    let run = dir.path().join("run");
    let sock = run.join("events.sock");
    let mut child = facewatch()
        .args(["--gallery", arg(&g), "run", "--source", arg(&clip()), "--loop", "--socket", arg(&sock)])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run");
    let start = Instant::now();
    while std::os::unix::net::UnixStream::connect(&sock).is_err() {
        assert!(start.elapsed() < Duration::from_secs(60), "the daemon never served its socket");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Someone who may (root) puts another server in its place.
    std::fs::remove_file(&sock).expect("unlink");
    let other = std::os::unix::net::UnixListener::bind(&sock).expect("bind the replacement");
    std::thread::sleep(Duration::from_secs(3));
    // SAFETY: a signal to our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let mut log = String::new();
    child.stderr.take().expect("stderr").read_to_string(&mut log).expect("log");
    assert!(child.wait().expect("exit").success(), "{log}");
    assert!(log.contains("was replaced by another one"), "the takeover is logged:\n{log}");
    assert!(sock.exists(), "the daemon removed a socket that was not its own");
    drop(other);

    // Another user's server, in their directory, with a forged event: subscribe refuses it.
    let theirs = dir.path().join("theirs");
    std::fs::create_dir(&theirs).expect("mkdir");
    std::os::unix::fs::chown(&theirs, Some(NOBODY), Some(NOBODY)).expect("chown");
    let forged = theirs.join("events.sock");
    let script = format!(
        "import socket,os\ns=socket.socket(socket.AF_UNIX)\ns.bind({:?})\ns.listen(4)\nprint('ready',flush=True)\nwhile True:\n c,_=s.accept()\n c.sendall(b'{{\"v\":1,\"type\":\"track_started\",\"name\":\"obama\",\"score\":0.99}}\\n')\n",
        forged.display().to_string()
    );
    let mut server = Command::new("python3").args(["-c", &script]).uid(NOBODY).gid(NOBODY).stdout(Stdio::piped()).spawn().expect("python3");
    let mut ready = String::new();
    BufReader::new(server.stdout.take().expect("stdout")).read_line(&mut ready).expect("ready");
    let out = facewatch().args(["subscribe", "--socket", arg(&forged), "--count", "1"]).output().expect("subscribe");
    let _ = server.kill();
    let _ = server.wait();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!stdout.contains("obama"), "a forged event was printed: {stdout}");
    assert_eq!(out.status.code(), Some(6), "{stderr}");
    assert!(stderr.contains("uid 65534") && stderr.contains("refusing"), "{stderr}");
}

/// Links planted in output folders are never followed: `detect --crop` replaces a link at a crop's name instead of
/// writing through it, snapshots refuse a camera folder that is a link, and the snapshot route refuses a path with
/// a link in it.
#[test]
fn links_planted_in_crop_and_snapshot_folders_are_never_followed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let victim = dir.path().join("victim");
    std::fs::write(&victim, "precious").expect("victim");
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let crops = dir.path().join("crops");
    std::fs::create_dir(&crops).expect("mkdir");
    std::os::unix::fs::symlink(&victim, crops.join("obama_face0.png")).expect("plant");
    let photo = face("people/obama/obama.jpg");
    let out = facewatch().args(["--json", "detect", "--crop", arg(&crops), arg(&photo)]).output().expect("detect");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read_to_string(&victim).expect("victim"), "precious", "the link's target was overwritten");
    assert_eq!(std::fs::metadata(&victim).expect("victim").permissions().mode() & 0o777, 0o644, "the target's mode changed");
    let crop = std::fs::symlink_metadata(crops.join("obama_face0.png")).expect("crop");
    assert!(crop.is_file() && crop.permissions().mode() & 0o777 == 0o600, "the crop is a private file of its own");

    // Snapshots of camera `stage` with `stage` planted as a link; a link to a secret planted in another folder.
    let snaps = dir.path().join("snaps");
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir_all(snaps.join("door/2026-12-06")).expect("mkdir");
    std::fs::create_dir(&elsewhere).expect("mkdir");
    std::os::unix::fs::symlink(&elsewhere, snaps.join("stage")).expect("plant");
    std::os::unix::fs::symlink(&victim, snaps.join("door/2026-12-06/evil.jpg")).expect("plant");
    let snaps_arg = format!("snapshots.dir={}", snaps.display());
    let d = Daemon::start(dir.path(), &["--set", "snapshots.enabled=true", "--set", &snaps_arg], None);
    let start = Instant::now();
    while !d.log().contains("Snapshot not written") {
        assert!(start.elapsed() < Duration::from_secs(60), "no snapshot was attempted:\n{}", d.log());
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(d.log().contains("symbolic link"), "{}", d.log());
    assert_eq!(std::fs::read_dir(&elsewhere).expect("ls").count(), 0, "snapshots were written through the link");
    let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(10)).build();
    for path in ["door/2026-12-06/evil.jpg", "stage/x.jpg"] {
        let r = agent.get(&format!("http://127.0.0.1:{}/api/snapshots/{path}", d.port)).set("X-Api-Key", KEY).call();
        let status = match r {
            Ok(r) => r.status(),
            Err(ureq::Error::Status(s, _)) => s,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(status, 404, "{path} was served through a link");
    }
}

/// A secret given the wrong way (a string for the list of keys, an unquoted password) is named by its key and
/// never printed, by `run` nor by `check-config` (which the unit runs into the journal).
#[test]
fn a_misconfigured_secret_is_named_never_printed() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (text, key) in [("[api]\nkeys = \"S3cret-x\"\n", "api.keys"), ("[mqtt]\nhost = \"b\"\npassword = S3cret-x\n", "password")] {
        let conf = dir.path().join("c.toml");
        std::fs::write(&conf, text).expect("config");
        for args in [&["check-config"][..], &["--json", "check-config"], &["run", "--source", "x.mp4"]] {
            let out = facewatch().args(["--config", arg(&conf)]).args(args).output().expect("facewatch");
            let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
            assert_eq!(out.status.code(), Some(2), "{args:?}: {all}");
            assert!(!all.contains("S3cret"), "{args:?} printed the secret: {all}");
            assert!(all.contains(key), "{args:?} does not name {key}: {all}");
        }
    }
}

/// `check-config` narrows a gallery others could read (and creates no readable companion), warns when the API
/// would listen beyond this machine, and takes a host name as the address, which `run` then serves on.
#[test]
fn check_config_narrows_a_readable_gallery_and_warns_of_an_open_listen_and_names_are_addresses() {
    let dir = tempfile::tempdir().expect("tempdir");
    let g = gallery(dir.path(), &[("lin", &[face("video/lin-manuel-miranda.png")])]);
    for f in std::fs::read_dir(dir.path()).expect("ls").filter_map(Result::ok).map(|e| e.path()) {
        if f.to_string_lossy().contains("gallery.db") {
            std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        }
    }
    let keys = dir.path().join("keys");
    std::fs::write(&keys, format!("{KEY}\n")).expect("keys");
    std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let out = facewatch()
        .args(["--json", "--gallery", arg(&g), "--set", "api.listen=0.0.0.0:18099", "--set"])
        .arg(format!("api.keys_file={}", keys.display()))
        .arg("check-config")
        .output()
        .expect("check-config");
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    let warnings = report["warnings"].to_string();
    assert!(warnings.contains("narrowed to 0600"), "{warnings}");
    assert!(warnings.contains("api.listen") && warnings.contains("TLS"), "{warnings}");
    for f in std::fs::read_dir(dir.path()).expect("ls").filter_map(Result::ok).map(|e| e.path()) {
        if f.to_string_lossy().contains("gallery.db") {
            let mode = std::fs::metadata(&f).expect("stat").permissions().mode() & 0o777;
            assert_eq!(mode & 0o077, 0, "{} is {mode:o}", f.display());
        }
    }
    let port = free_port();
    let out = facewatch()
        .args(["--json", "--gallery", arg(&g), "--set"])
        .arg(format!("api.listen=localhost:{port}"))
        .arg("--set")
        .arg(format!("api.keys_file={}", keys.display()))
        .arg("check-config")
        .output()
        .expect("check-config");
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert!(!report["problems"].to_string().contains("api.listen"), "{report}");
    assert!(!report["warnings"].to_string().contains("TLS"), "localhost is this machine: {report}");
}

/// One camera whose stream never answers its open does not hold the other camera back: the clip's events start
/// while the stream is still timing out (10 s), and the stream camera reports its loss when it does.
#[test]
fn a_camera_hanging_in_its_open_does_not_delay_the_others() {
    let dir = tempfile::tempdir().expect("tempdir");
    let g = gallery(dir.path(), &[("lin", &[face("video/lin-manuel-miranda.png")])]);
    // A "camera" that accepts the connection and never says a word.
    let mute = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = mute.local_addr().expect("addr").port();
    let held = std::thread::spawn(move || mute.incoming().take(4).filter_map(Result::ok).collect::<Vec<_>>());
    let conf = dir.path().join("two.toml");
    std::fs::write(
        &conf,
        format!(
            "[[cameras]]\nname = \"garage\"\nsource = \"rtsp://127.0.0.1:{port}/stream\"\n\n[[cameras]]\nname = \"stage\"\nsource = \"{}\"\nloop = true\n",
            arg(&clip())
        ),
    )
    .expect("config");
    let started = Instant::now();
    let mut child = facewatch()
        .args(["--gallery", arg(&g), "--config", arg(&conf), "run", "--socket", "", "--print"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run");
    let mut first_stage = None;
    let mut garage_lost = None;
    for line in BufReader::new(child.stdout.take().expect("stdout")).lines().map_while(Result::ok) {
        let e: Value = serde_json::from_str(&line).expect("event");
        if e["camera"] == "stage" && first_stage.is_none() {
            first_stage = Some(started.elapsed());
        }
        if e["camera"] == "garage" && e["type"] == "source_lost" {
            garage_lost = Some(started.elapsed());
        }
        if first_stage.is_some() && garage_lost.is_some() || started.elapsed() > Duration::from_secs(60) {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    drop(held);
    let (stage, garage) = (first_stage.expect("stage's events"), garage_lost.expect("garage's loss"));
    assert!(stage + Duration::from_secs(4) < garage, "stage's first event at {stage:?} waited for garage's open (lost at {garage:?})");
}

/// The web page's doors hold too: clients without a key cannot hold the server with slow login forms (a few at a
/// time, then 429; a form that does not arrive in 5 s is 408; a big one 413; one from another origin 403), and a
/// logged-in browser's live pictures are bounded per session and end with the session (logout).
#[test]
fn slow_logins_and_live_pictures_cannot_hold_the_web_page() {
    use super::api::{start_running, KEY as API_KEY};
    let dir = tempfile::tempdir().expect("tempdir");
    let g = gallery(dir.path(), &[("lin", &[face("video/lin-manuel-miranda.png")])]);
    let daemon = start_running(&g, dir.path(), &[], &["run", "--source", arg(&clip()), "--camera", "stage", "--loop", "--socket", ""]);
    let port: u16 = daemon.base.rsplit(':').next().expect("port").parse().expect("port");
    let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(20)).redirects(0).build();
    let status = |r: Result<ureq::Response, ureq::Error>| match r {
        Ok(r) => (r.status(), r.header("set-cookie").map(str::to_string)),
        Err(ureq::Error::Status(s, r)) => (s, r.header("set-cookie").map(str::to_string)),
        Err(e) => panic!("transport error: {e}"),
    };
    let login = |key: &str| status(agent.post(&format!("{}/ui/login", daemon.base)).send_form(&[("key", key)]));

    // Eight logins that never send their form hold every login place: the next is turned away at once.
    let slow: Vec<TcpStream> = (0..8)
        .map(|_| {
            let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
            write!(s, "POST /ui/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 4000\r\n\r\nkey=").expect("head");
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    assert_eq!(login(API_KEY).0, 429, "a ninth login was not turned away");
    assert!(started.elapsed() < Duration::from_secs(2), "the ninth waited {:?}", started.elapsed());
    for mut s in slow {
        let line = status_line(&mut s, Duration::from_secs(10)).unwrap_or_default();
        assert!(line.contains(" 408 "), "a login form that never came was answered `{line}`");
    }
    let big = "k".repeat(5000);
    assert_eq!(login(&big).0, 413);
    let foreign = agent
        .post(&format!("{}/ui/login", daemon.base))
        .set("Origin", "http://evil.example")
        .set("Sec-Fetch-Site", "cross-site")
        .send_form(&[("key", API_KEY)]);
    assert_eq!(status(foreign).0, 403, "a login posted from another site");

    // Logged in: at most 16 live pictures at once for the session, and they end with it.
    let (code, cookie) = login(API_KEY);
    assert_eq!(code, 303);
    let cookie = cookie.expect("a session cookie").split(';').next().expect("cookie").to_string();
    let open_stream = || {
        let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        write!(s, "GET /ui/live/stage.mjpg HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {cookie}\r\n\r\n").expect("request");
        s
    };
    let mut streams: Vec<TcpStream> = (0..16).map(|_| open_stream()).collect();
    for s in &mut streams {
        let line = status_line(s, Duration::from_secs(10)).unwrap_or_default();
        assert!(line.contains(" 200 "), "a live picture was answered `{line}`");
    }
    let mut extra = open_stream();
    let line = status_line(&mut extra, Duration::from_secs(10)).unwrap_or_default();
    assert!(line.contains(" 429 "), "a 17th live picture was answered `{line}`");
    let page =
        agent.get(&format!("{}/ui/live", daemon.base)).set("Cookie", &cookie).call().expect("live page").into_string().expect("html");
    let csrf = page.split("name=\"csrf\" value=\"").nth(1).and_then(|r| r.split('"').next()).expect("a CSRF token on the page");
    let out = agent.post(&format!("{}/ui/logout", daemon.base)).set("Cookie", &cookie).send_form(&[("csrf", csrf)]);
    assert_eq!(status(out).0, 303);
    // The end of a stream is its body's last chunk (the connection itself may stay open for the next request).
    for mut s in streams {
        s.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
        let mut sink = [0u8; 1 << 16];
        let mut tail: Vec<u8> = Vec::new();
        let ended = Instant::now();
        loop {
            match s.read(&mut sink) {
                Ok(0) => break,
                Ok(n) => {
                    tail.extend_from_slice(&sink[..n]);
                    tail.drain(..tail.len().saturating_sub(16));
                    if tail.ends_with(b"\r\n0\r\n\r\n") {
                        break;
                    }
                    assert!(ended.elapsed() < Duration::from_secs(5), "a live picture went on after logout");
                }
                Err(e) => panic!("a live picture did not end after logout: {e}"),
            }
        }
    }
    drop(daemon);
}
