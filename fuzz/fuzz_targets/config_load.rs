//! The configuration loader on any file text: a configuration or an error, never a crash; and an error never
//! shows the value of a secret key (the text's `S3CRET` marker, placed by the seeds in `keys` and `password`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let sources = facewatch::config::Sources { text: Some(text.to_string()), ..Default::default() };
    match facewatch::config::Config::load(&sources) {
        Ok(cfg) => {
            let _ = cfg.problems();
        }
        Err(e) => {
            let message = e.to_string();
            // Only a marker that sits in a secret's value must not show; the same word elsewhere may.
            let secret_line = text.lines().any(|l| {
                let l = l.trim_start();
                (l.starts_with("keys") || l.starts_with("password")) && l.contains("S3CRET")
            });
            let elsewhere = text.lines().any(|l| {
                let l = l.trim_start();
                !(l.starts_with("keys") || l.starts_with("password")) && l.contains("S3CRET")
            });
            if secret_line && !elsewhere {
                assert!(!message.contains("S3CRET"), "a secret in an error: {message}");
            }
        }
    }
});
