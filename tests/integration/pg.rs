//! A real PostgreSQL for the tests: Debian's PostgreSQL 15 (`scripts/setup.sh` installs it), its own cluster made
//! by `initdb` in a temporary directory and started as a child process on a free port, with a password (SCRAM)
//! so that the credential path is the one users take. Run as root (CI), the server runs as the `postgres` user,
//! since PostgreSQL refuses to run as root.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The password of the tests' database user.
pub const PASSWORD: &str = "pg-S3cret-for-tests";

/// A PostgreSQL server of the test's own.
pub struct Postgres {
    child: Option<Child>,
    pub port: u16,
    dir: tempfile::TempDir,
    bin: PathBuf,
    user: Option<(u32, u32)>,
    /// With TLS: the CA that signed the server's certificate.
    pub ca: Option<PathBuf>,
}

/// The directory of PostgreSQL's server programs.
fn bin_dir() -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| d.flatten().map(|e| e.path().join("bin")).filter(|b| b.join("initdb").is_file()).collect())
        .unwrap_or_default();
    found.sort();
    found.pop().unwrap_or_else(|| panic!("PostgreSQL is not installed: run scripts/setup.sh (Debian: apt install postgresql-15)"))
}

/// The uid and gid of the `postgres` user, when running as root.
fn server_user() -> Option<(u32, u32)> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    let name = std::ffi::CString::new("postgres").expect("name");
    // SAFETY: a valid NUL-terminated name; the result is read at once, before any other getpw* call.
    let pw = unsafe { libc::getpwnam(name.as_ptr()) };
    assert!(!pw.is_null(), "running as root, PostgreSQL needs the `postgres` user (apt install postgresql-15 makes it)");
    // SAFETY: non-null, just returned by getpwnam.
    Some(unsafe { ((*pw).pw_uid, (*pw).pw_gid) })
}

impl Postgres {
    /// A fresh cluster on a free port, started.
    pub fn start() -> Self {
        Self::start_with(false)
    }

    /// [`Postgres::start`] with TLS on: a certificate for 127.0.0.1 signed by a CA of the test's own
    /// ([`Postgres::ca`]), made with `openssl`.
    pub fn start_tls() -> Self {
        Self::start_with(true)
    }

    fn start_with(tls: bool) -> Self {
        let bin = bin_dir();
        let dir = tempfile::tempdir().expect("tempdir");
        let user = server_user();
        if let Some((uid, gid)) = user {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).expect("chown the cluster's directory");
        }
        let pwfile = dir.path().join("pwfile");
        std::fs::write(&pwfile, format!("{PASSWORD}\n")).expect("pwfile");
        if let Some((uid, gid)) = user {
            std::os::unix::fs::chown(&pwfile, Some(uid), Some(gid)).expect("chown");
        }
        let out = Self::as_server(&bin.join("initdb"), user)
            .args(["-D", &dir.path().join("data").to_string_lossy(), "-U", "facewatch", "-E", "UTF8", "--no-sync"])
            .args(["--auth-host=scram-sha-256", "--auth-local=scram-sha-256", "--pwfile", &pwfile.to_string_lossy()])
            .output()
            .expect("run initdb");
        assert!(out.status.success(), "initdb failed: {}", String::from_utf8_lossy(&out.stderr));
        let ca = tls.then(|| make_certificates(dir.path(), user));
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("free port").local_addr().expect("addr").port();
        let mut pg = Self { child: None, port, dir, bin, user, ca };
        pg.resume();
        pg
    }

    fn as_server(program: &Path, user: Option<(u32, u32)>) -> Command {
        let mut c = Command::new(program);
        if let Some((uid, gid)) = user {
            use std::os::unix::process::CommandExt;
            c.uid(uid).gid(gid);
        }
        c.env_remove("PGPASSWORD");
        c
    }

    /// Starts the server (again) on its port and data directory, and waits until it answers.
    pub fn resume(&mut self) {
        assert!(self.child.is_none(), "already running");
        let data = self.dir.path().join("data");
        let child = Self::as_server(&self.bin.join("postgres"), self.user)
            .args(["-D", &data.to_string_lossy(), "-p", &self.port.to_string(), "-k", &self.dir.path().to_string_lossy()])
            .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "max_connections=100"])
            .args(match &self.ca {
                Some(_) => vec![
                    "-c".to_string(),
                    "ssl=on".into(),
                    "-c".into(),
                    format!("ssl_cert_file={}", self.dir.path().join("server.pem").display()),
                    "-c".into(),
                    format!("ssl_key_file={}", self.dir.path().join("server.key").display()),
                ],
                None => Vec::new(),
            })
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start postgres");
        self.child = Some(child);
        let start = Instant::now();
        loop {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok()
                && postgres::Client::connect(&self.url_with_password(), postgres::NoTls).is_ok()
            {
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(30), "postgres did not answer on {}", self.port);
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the server: `fast` as `pg_ctl stop -m fast` does (SIGINT: clients are disconnected), otherwise a
    /// crash (SIGKILL).
    pub fn stop(&mut self, fast: bool) {
        if let Some(mut child) = self.child.take() {
            let signal = if fast { libc::SIGINT } else { libc::SIGKILL };
            // SAFETY: signalling our own child, not yet waited for.
            unsafe { libc::kill(child.id() as i32, signal) };
            let _ = child.wait();
            if !fast {
                // The postmaster's children notice it is gone and exit; wait until the port is free.
                let start = Instant::now();
                while TcpStream::connect(("127.0.0.1", self.port)).is_ok() && start.elapsed() < Duration::from_secs(10) {
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        }
    }

    /// The URL a node is given: no password in it (it comes from the environment or a file).
    pub fn url(&self) -> String {
        format!("postgres://facewatch@127.0.0.1:{}/postgres?sslmode=disable", self.port)
    }

    /// The URL with the password, for the test's own client.
    pub fn url_with_password(&self) -> String {
        format!("postgres://facewatch:{PASSWORD}@127.0.0.1:{}/postgres?sslmode=disable", self.port)
    }

    /// A client of the test's own.
    pub fn client(&self) -> postgres::Client {
        postgres::Client::connect(&self.url_with_password(), postgres::NoTls).expect("connect to the test's postgres")
    }

    /// A password file for nodes (0600).
    pub fn password_file(&self, dir: &Path) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let f = dir.join("pg-password");
        std::fs::write(&f, format!("{PASSWORD}\n")).expect("write");
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        f
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop(false);
    }
}

/// A CA and a server certificate for 127.0.0.1 signed by it, in `dir` (the key readable by the server's user
/// only); returns the CA's certificate.
fn make_certificates(dir: &Path, user: Option<(u32, u32)>) -> PathBuf {
    let run = |args: &[&str]| {
        let out = Command::new("openssl").current_dir(dir).args(args).output().expect("openssl is installed (Debian: apt install openssl)");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
    let mut ca = vec!["req", "-x509", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=facewatch test CA"];
    ca.extend(ec);
    ca.extend(["-addext", "basicConstraints=critical,CA:true", "-addext", "keyUsage=critical,keyCertSign,cRLSign"]);
    run(&ca);
    let mut req = vec!["req", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1"];
    req.extend(ec);
    run(&req);
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:false\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .expect("ext");
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "server.ext",
    ]);
    use std::os::unix::fs::PermissionsExt;
    let key = dir.join("server.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    if let Some((uid, gid)) = user {
        for f in ["server.key", "server.pem"] {
            std::os::unix::fs::chown(dir.join(f), Some(uid), Some(gid)).expect("chown");
        }
    }
    dir.join("ca.pem")
}
