//! Records what `facewatch --version` and the `facewatch_build_info` metric say about the build: the commit it was
//! built from (`git`, or `FACEWATCH_COMMIT` for a build from a source tarball) and the Cargo profile.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=FACEWATCH_COMMIT");
    // A new commit or a switched branch changes HEAD or the ref it names.
    for path in [".git/HEAD", ".git/refs/heads", ".git/packed-refs"] {
        if std::path::Path::new(path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    let commit = std::env::var("FACEWATCH_COMMIT").ok().filter(|c| !c.is_empty()).or_else(|| {
        let out = Command::new("git").args(["rev-parse", "--short=12", "HEAD"]).output().ok()?;
        let hash = String::from_utf8(out.stdout).ok()?.trim().to_string();
        (out.status.success() && !hash.is_empty()).then_some(hash)
    });
    println!("cargo:rustc-env=FACEWATCH_COMMIT={}", commit.as_deref().unwrap_or("unknown"));
    println!("cargo:rustc-env=FACEWATCH_PROFILE={}", std::env::var("PROFILE").unwrap_or_default());
}
