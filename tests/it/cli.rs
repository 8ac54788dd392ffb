//! The `gemlive` binary's commands as a user runs them: exit codes and what they print.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use support::{exe, KEY};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/config")
        .join(name)
}

fn gemlive(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(exe());
    c.args(args)
        .env_remove("GEMINI_API_KEY")
        .env_remove("GEMLIVE_CONFIG")
        .env_remove("CREDENTIALS_DIRECTORY")
        .env_remove("JOURNAL_STREAM")
        .env_remove("NOTIFY_SOCKET");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run gemlive")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn check_config_good_file_prints_summary_without_the_key() {
    let f = fixture("minimal.toml");
    let out = gemlive(
        &["--config", f.to_str().unwrap(), "check-config"],
        &[("GEMINI_API_KEY", KEY)],
    );
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains("model: models/gemini-3.1-flash-live-preview"),
        "{stdout}"
    );
    assert!(
        stdout.contains("api key: set (from GEMINI_API_KEY)"),
        "{stdout}"
    );
    assert!(stdout.lines().count() <= 24, "one screen: {stdout}");
    assert!(!stdout.contains(KEY) && !text(&out.stderr).contains(KEY));

    let out = gemlive(&["--config", f.to_str().unwrap(), "check-config"], &[]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).contains("api key: missing"));
}

#[test]
fn config_path_comes_from_gemlive_config_env() {
    let f = fixture("minimal.toml");
    let out = gemlive(
        &["check-config"],
        &[("GEMLIVE_CONFIG", f.to_str().unwrap())],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("minimal.toml"));
}

/// (fixture, line, column, words the message must contain)
const BAD: &[(&str, usize, usize, &[&str])] = &[
    ("syntax_error.toml", 5, 7, &["syntax"]),
    (
        "unknown_key.toml",
        3,
        3,
        &["unknown key `voise`", "did you mean `voice`"],
    ),
    (
        "bad_enum.toml",
        3,
        20,
        &["\"ultra\"", "media_resolution", "low, medium, high"],
    ),
    ("bad_range.toml", 5, 14, &["250", "chunk_ms", "20..=100"]),
    (
        "insecure_endpoint.toml",
        3,
        12,
        &["ws://", "loopback", "wss://"],
    ),
];

#[test]
fn check_config_bad_files_name_path_line_column() {
    for (name, line, col, words) in BAD {
        let f = fixture(name);
        let out = gemlive(&["--config", f.to_str().unwrap(), "check-config"], &[]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(78), "{name}: {err}");
        let prefix = format!("{}:{line}:{col}: ", f.display());
        assert!(
            err.starts_with(&prefix),
            "{name}: {err:?} should start with {prefix:?}"
        );
        for w in *words {
            assert!(err.contains(w), "{name}: {err:?} lacks {w:?}");
        }
        // `run` refuses the same file the same way, before touching any device.
        let out = gemlive(
            &["--config", f.to_str().unwrap(), "run"],
            &[("GEMINI_API_KEY", KEY)],
        );
        assert_eq!(out.status.code(), Some(78), "{name}");
        assert!(text(&out.stderr).starts_with(&prefix));
    }
}

#[test]
fn run_without_a_key_says_where_to_put_one() {
    let f = fixture("minimal.toml");
    let out = gemlive(&["--config", f.to_str().unwrap(), "run"], &[]);
    assert_eq!(out.status.code(), Some(78));
    let err = text(&out.stderr);
    assert!(
        err.contains("GEMINI_API_KEY") && err.contains("api_key_file"),
        "{err}"
    );
}

#[test]
fn world_readable_key_file_is_refused_with_chmod_hint() {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("gemlive-cli-key-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("key");
    std::fs::write(&key, KEY).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let cfg = dir.join("gemlive.toml");
    std::fs::write(
        &cfg,
        format!("[live]\napi_key_file = \"{}\"\n", key.display()),
    )
    .unwrap();
    let out = gemlive(&["--config", cfg.to_str().unwrap(), "run"], &[]);
    assert_eq!(out.status.code(), Some(78));
    let err = text(&out.stderr);
    assert!(err.contains("chmod 600"), "{err}");
    assert!(!err.contains(KEY));
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = gemlive(&["--config", cfg.to_str().unwrap(), "check-config"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("api key: set"));
    assert!(!text(&out.stdout).contains(KEY));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs gemlive with `args`, killing it and failing the test if it has not exited after 5 s.
fn gemlive_promptly(args: &[&std::ffi::OsStr]) -> Output {
    let mut child = Command::new(exe())
        .args(args)
        .env_remove("GEMINI_API_KEY")
        .env_remove("GEMLIVE_CONFIG")
        .env_remove("CREDENTIALS_DIRECTORY")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run gemlive");
    let end = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while child.try_wait().expect("wait").is_none() {
        if std::time::Instant::now() > end {
            let _ = child.kill();
            let out = child.wait_with_output().expect("wait");
            panic!(
                "gemlive {args:?} still running after 5 s: {}{}",
                text(&out.stdout),
                text(&out.stderr)
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.wait_with_output().expect("wait")
}

fn mkfifo(path: &Path) {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: `c` is a valid NUL-terminated path that outlives the call.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
}

#[test]
fn a_fifo_or_device_as_config_or_key_file_is_refused_at_once() {
    let dir = std::env::temp_dir().join(format!("gemlive-cli-fifo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let fifo = dir.join("gemlive.toml");
    mkfifo(&fifo);
    for (path, what) in [
        (fifo.as_path(), "is a FIFO (named pipe), not a regular file"),
        (Path::new("/dev/zero"), "is a character device"),
    ] {
        let out = gemlive_promptly(&[
            "--config".as_ref(),
            path.as_os_str(),
            "check-config".as_ref(),
        ]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(78), "{err}");
        assert!(err.contains(&path.display().to_string()), "{err}");
        assert!(err.contains(what), "{err}");
    }

    let key = dir.join("api-key");
    mkfifo(&key);
    let cfg = dir.join("key.toml");
    std::fs::write(
        &cfg,
        format!("[live]\napi_key_file = \"{}\"\n", key.display()),
    )
    .unwrap();
    let out = gemlive_promptly(&[
        "--config".as_ref(),
        cfg.as_os_str(),
        "check-config".as_ref(),
    ]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{err}");
    assert!(
        err.contains(&format!("{}: api_key_file is a FIFO", key.display())),
        "{err}"
    );

    std::fs::remove_file(&key).unwrap();
    std::fs::write(&key, format!("GEMINI_API_KEY={KEY}\n")).unwrap();
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let out = gemlive(&["--config", cfg.to_str().unwrap(), "check-config"], &[]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{err}");
    assert!(err.contains("remove `GEMINI_API_KEY=`"), "{err}");
    assert!(!err.contains(&KEY[4..]) && !text(&out.stdout).contains(&KEY[4..]));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn usage_errors_exit_2() {
    let out = gemlive(&["frobnicate"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("unknown command"));
    let out = gemlive(&["--help"], &[]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).contains("list-devices"));
}

#[test]
fn list_devices_shows_rates_formats_channels_and_native_fit() {
    let rig = gemlive::demo::Rig::new("list", &[0; 3200], "ws://127.0.0.1:9/", "", "").unwrap();
    let out = gemlive(
        &[
            "--config",
            rig.config_path.to_str().unwrap(),
            "list-devices",
        ],
        &[("ALSA_CONFIG_PATH", rig.alsa_conf.to_str().unwrap())],
    );
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(stdout.starts_with("ALSA PCMs (audio):\n"), "{stdout}");
    assert!(stdout.contains("\nV4L2 cameras (video):\n"), "{stdout}");
    let mic = stdout
        .split("\ngemlive_mic")
        .nth(1)
        .and_then(|s| s.split("\ngemlive_speaker").next())
        .unwrap_or_default()
        .to_string();
    assert!(mic.starts_with("  [in your config]"), "{stdout}");
    assert!(mic.contains("capture : rates 8000 16000"), "{stdout}");
    assert!(mic.contains("formats S16_LE"), "{stdout}");
    assert!(
        mic.contains("[ok: 16 kHz S16_LE mono natively]"),
        "{stdout}"
    );
    assert!(
        stdout.contains("[ok: 24 kHz S16_LE mono natively]"),
        "{stdout}"
    );

    // A device that does not exist is still listed when the config names it, with the reason.
    let cfg = rig.dir.join("missing.toml");
    std::fs::write(&cfg, "[live]\n[audio]\ncapture_device = \"no_such_pcm\"\n").unwrap();
    let out = gemlive(
        &["--config", cfg.to_str().unwrap(), "list-devices"],
        &[("ALSA_CONFIG_PATH", rig.alsa_conf.to_str().unwrap())],
    );
    let stdout = text(&out.stdout);
    assert!(stdout.contains("no_such_pcm  [in your config]"), "{stdout}");
    assert!(stdout.contains("not available"), "{stdout}");
    // alsa-lib's own complaints about the probes stay off the screen; the listing says it.
    let stderr = text(&out.stderr);
    assert!(!stderr.contains("ALSA lib"), "{stderr}");
}

#[test]
fn demo_runs_a_whole_session_and_writes_the_speaker_wav() {
    let dir = std::env::temp_dir().join(format!("gemlive-demo-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = Command::new(exe())
        .arg("demo")
        .current_dir(&dir)
        .env_remove("ALSA_CONFIG_PATH")
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    for w in [
        "setup received",
        "user turn 1 ended",
        "sending interrupted",
        "identical to the recording: yes",
        "speaker holds exactly the reply audio sent before each interruption: yes",
        "reached the speaker: no",
        "code 1000",
        "demo ok",
    ] {
        assert!(stdout.contains(w), "{w:?} missing in:\n{stdout}");
    }
    let wav = std::fs::read(dir.join("demo-speaker.wav")).unwrap();
    assert_eq!(&wav[..4], b"RIFF");
    assert!(wav.len() > 44 + 48_000, "more than a second of replies");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn tools_lists_and_call_tool_runs_what_the_model_would_call() {
    let dir = std::env::temp_dir().join(format!("gemlive-cli-tools-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("gemlive.toml");
    std::fs::write(
        &cfg,
        r#"[tools]
[[tools.command]]
name = "greet"
description = "Say hello."
command = ["sh", "-c", "printf '{\"hello\": \"%s\"}' \"$1\"", "sh", "{who}"]
parameters = { type = "object", properties = { who = { type = "string", default = "you" } } }
confirm = true
"#,
    )
    .unwrap();
    let c = cfg.to_str().unwrap();
    let out = gemlive(&["--config", c, "tools"], &[]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    for want in [
        "\"end_session\"",
        "\"set_volume\"",
        "\"greet\"",
        "\"STRING\"",
    ] {
        assert!(stdout.contains(want), "{want}: {stdout}");
    }
    assert!(
        stdout.contains("note: tool `greet`: left out of its parameters (Gemini does not take them): who.default"),
        "{stdout}"
    );

    let out = gemlive(
        &["--config", c, "call-tool", "greet", r#"{"who": "$(id)"}"#],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v, serde_json::json!({"hello": "$(id)"}));

    let out = gemlive(&["--config", c, "call-tool", "nope"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout)
        .contains("unknown tool `nope`; the tools are: end_session, set_volume, set_timer, cancel_timer, list_timers, greet"));
    let out = gemlive(&["--config", c, "call-tool", "greet", "{not json"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("not JSON"));

    // check-config: a program that is not there is a configuration error naming it.
    std::fs::write(
        &cfg,
        "[[tools.command]]\nname = \"x\"\ndescription = \"X.\"\ncommand = [\"/nonexistent/x\"]\n",
    )
    .unwrap();
    let out = gemlive(&["--config", c, "check-config"], &[("GEMINI_API_KEY", KEY)]);
    assert_eq!(out.status.code(), Some(78));
    assert!(
        text(&out.stderr).contains("tool `x`: `/nonexistent/x`: No such file or directory"),
        "{}",
        text(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
