//! The API key file reader, through its public entry point (`resolve_api_key` with
//! `api_key_file` set, and as a systemd credential): the input is written to a mode-0600 file.
//! A key it accepts is the trimmed file content, non-empty, printable ASCII with no spaces.

#![no_main]

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::OnceLock;

use gemlive::config::{resolve_api_key, KeySource, LiveConfig};
use libfuzzer_sys::fuzz_target;

/// A private directory per process: one file, rewritten for every input.
fn dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("gemlive-fuzz-key-{}", std::process::id()));
        std::fs::create_dir_all(&d).expect("temp dir");
        d
    })
}

fn check(data: &[u8], got: Option<&str>) {
    let Some(key) = got else { return };
    let expected = std::str::from_utf8(&data[..data.len().min(64 * 1024)]).map(str::trim);
    assert_eq!(Ok(key), expected, "the key is not the trimmed file");
    assert!(!key.is_empty());
    assert!(key.bytes().all(|b| b.is_ascii_graphic()));
}

fuzz_target!(|data: &[u8]| {
    // The credential's fixed name, so the same file serves both routes.
    let path = dir().join("gemini-api-key");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .expect("key file");
    f.write_all(data).expect("write key file");
    drop(f);

    let live = LiveConfig {
        api_key_file: Some(path.clone()),
        ..LiveConfig::default()
    };
    let no_env = |_: &str| None;
    let as_file = resolve_api_key(&live, no_env);
    match &as_file {
        Ok(Some((key, KeySource::File(p)))) if *p == path => check(data, Some(key.expose())),
        Ok(other) => panic!("api_key_file set but got {other:?}"),
        Err(e) => {
            let shown = e.to_string();
            // The message must never echo the key (any line of it long enough to matter).
            if let Ok(text) = std::str::from_utf8(data) {
                let t = text.trim();
                if t.len() >= 16 && t.bytes().all(|b| b.is_ascii_alphanumeric()) {
                    assert!(!shown.contains(t), "error message echoes the key");
                }
            }
        }
    }

    // As a systemd credential (no mode check): same verdict on the content.
    let cred_dir = dir().to_string_lossy().into_owned();
    let env = |k: &str| (k == "CREDENTIALS_DIRECTORY").then(|| cred_dir.clone());
    let as_cred = resolve_api_key(&LiveConfig::default(), env);
    match &as_cred {
        Ok(Some((key, KeySource::Credential(_)))) => check(data, Some(key.expose())),
        Ok(other) => panic!("credential present but got {other:?}"),
        Err(_) => {}
    }
    assert_eq!(
        as_file.is_ok(),
        as_cred.is_ok(),
        "file and credential disagree"
    );
});
