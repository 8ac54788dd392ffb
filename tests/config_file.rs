//! The shipped example config and the fixture files, through the public API only.

use std::path::{Path, PathBuf};

use gemlive::config::{self, Config, ConfigError, Geometry, MediaResolution, VideoSend, Wake};

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn fixture(name: &str) -> PathBuf {
    repo("tests/fixtures/config").join(name)
}

/// Loads a fixture that must fail; returns (line, column, full message) and checks the
/// `PATH:LINE:COL: ` prefix of the displayed error.
fn fixture_error(name: &str) -> (usize, usize, String) {
    let path = fixture(name);
    let err = match config::load(&path) {
        Ok(c) => panic!("{name}: expected an error, got {c:?}"),
        Err(e) => e,
    };
    let shown = err.to_string();
    let (line, column) = match &err {
        ConfigError::At {
            path: p,
            line,
            column,
            ..
        } => {
            assert_eq!(p, &path, "{shown}");
            (*line, *column)
        }
        other => panic!("{name}: expected a positioned error, got {other}"),
    };
    assert_eq!(err.line_col(), Some((line, column)));
    let prefix = format!("{}:{line}:{column}: ", path.display());
    assert!(shown.starts_with(&prefix), "{shown:?} lacks {prefix:?}");
    assert_eq!(shown.lines().count(), 1, "one line: {shown:?}");
    (line, column, shown)
}

fn assert_words(shown: &str, words: &[&str]) {
    for w in words {
        assert!(shown.contains(w), "{shown:?} lacks {w:?}");
    }
}

/// Lines of the form `# key = value` (regex `^# ?[a-z_]+ = `) uncommented.
fn uncomment_keys(text: &str) -> (String, usize) {
    let mut n = 0;
    let out = text
        .lines()
        .map(|line| {
            let Some(rest) = line.strip_prefix('#') else {
                return line.to_string();
            };
            let rest = rest.strip_prefix(' ').unwrap_or(rest);
            let key_len = rest
                .bytes()
                .take_while(|b| b.is_ascii_lowercase() || *b == b'_')
                .count();
            if key_len > 0 && rest[key_len..].starts_with(" = ") {
                n += 1;
                rest.to_string()
            } else {
                line.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    (out, n)
}

#[test]
fn shipped_example_parses_to_the_defaults() {
    let path = repo("config/gemlive.toml");
    let cfg = config::load(&path).expect("shipped config parses");
    assert_eq!(cfg, Config::with_defaults(&path));
    assert_eq!(cfg.live.model, "models/gemini-3.1-flash-live-preview");
    assert_eq!(cfg.live.voice, "Kore");
    assert_eq!(cfg.live.media_resolution, MediaResolution::Low);
    assert_eq!(cfg.audio.chunk_ms, 40);
    assert_eq!(cfg.session.wake, Wake::Always);
    let l = &cfg.live;
    assert!(l.resumption && l.tools);
    assert_eq!(
        (l.compression_trigger_tokens, l.compression_target_tokens),
        (25_600, 12_800)
    );
    assert_eq!(
        (l.max_connection_age_s, l.ping_interval_s, l.dead_after_s),
        (540, 15, 45)
    );
    assert_eq!((l.reconnect_max_delay_s, l.config_error_delay_s), (30, 60));
    assert_eq!(l.max_message_kb, 4096);
    assert_eq!((cfg.audio.backlog_ms, cfg.audio.volume), (10_000, 100));
    let v = &cfg.video;
    assert!(v.enabled);
    assert_eq!((v.device.as_str(), v.capture_size), ("/dev/video0", None));
    assert_eq!((v.fps, v.send), (1.0, VideoSend::Always));
    assert_eq!(
        (v.size, v.geometry, v.quality),
        (768, Geometry::Letterbox, 80)
    );
}

#[test]
fn every_documented_key_is_real() {
    let path = repo("config/gemlive.toml");
    let text = std::fs::read_to_string(&path).expect("read shipped config");
    let (uncommented, n) = uncomment_keys(&text);
    // 19 in [live], 5 in [audio], 8 in [video], 1 in [session].
    assert_eq!(n, 33, "documented keys:\n{uncommented}");
    let cfg = match config::parse_str(&uncommented, &path) {
        Ok(c) => c,
        Err(e) => panic!("uncommented example fails: {e}"),
    };
    // The documented values are the defaults, except the example key file path.
    let mut want = Config::with_defaults(&path);
    want.live.api_key_file = Some(PathBuf::from("/etc/gemlive/api-key"));
    assert_eq!(cfg, want);
}

#[test]
fn minimal_file_is_all_defaults() {
    let path = fixture("minimal.toml");
    let cfg = config::load(&path).expect("minimal parses");
    assert_eq!(cfg, Config::with_defaults(&path));
}

#[test]
fn syntax_error_position() {
    let (line, column, shown) = fixture_error("syntax_error.toml");
    assert_eq!((line, column), (5, 7));
    assert_words(&shown, &["TOML syntax error", "`]`"]);
}

#[test]
fn unknown_key_points_at_the_key_and_suggests() {
    let (line, column, shown) = fixture_error("unknown_key.toml");
    assert_eq!((line, column), (3, 3));
    assert_words(
        &shown,
        &["unknown key `voise` in [live]", "did you mean `voice`?"],
    );
}

#[test]
fn bad_enum_lists_allowed_values() {
    let (line, column, shown) = fixture_error("bad_enum.toml");
    assert_eq!((line, column), (3, 20));
    assert_words(
        &shown,
        &[
            "invalid value \"ultra\"",
            "media_resolution",
            "allowed: low, medium, high",
        ],
    );
}

#[test]
fn bad_range_names_key_value_and_range() {
    let (line, column, shown) = fixture_error("bad_range.toml");
    assert_eq!((line, column), (5, 14));
    assert_words(
        &shown,
        &[
            "invalid value 250",
            "chunk_ms in [audio]",
            "20..=100",
            "milliseconds",
        ],
    );
}

#[test]
fn dead_after_not_above_ping_interval_is_refused_at_dead_after() {
    let (line, column, shown) = fixture_error("bad_liveness.toml");
    assert_eq!((line, column), (4, 19));
    assert_words(
        &shown,
        &[
            "invalid value 50 for dead_after_s in [live]",
            "must be greater than ping_interval_s (60)",
            "allowed: 61..=600 (seconds)",
        ],
    );
}

#[test]
fn compression_target_not_below_trigger_is_refused_at_the_target() {
    let (line, column, shown) = fixture_error("bad_compression.toml");
    assert_eq!((line, column), (3, 29));
    assert_words(
        &shown,
        &[
            "invalid value 20000 for compression_target_tokens in [live]",
            "must be less than compression_trigger_tokens (20000)",
            "allowed: 0..=19999 (tokens)",
            "compression_trigger_tokens = 0",
        ],
    );
}

#[test]
fn insecure_endpoint_is_refused_at_the_value() {
    let (line, column, shown) = fixture_error("insecure_endpoint.toml");
    assert_eq!((line, column), (3, 12));
    assert_words(
        &shown,
        &["endpoint", "ws://192.168.1.5/live", "loopback", "wss://"],
    );
}

#[test]
fn video_section_is_read() {
    let path = fixture("video.toml");
    let cfg = config::load(&path).expect("video.toml parses");
    let v = &cfg.video;
    assert!(v.enabled);
    assert_eq!(v.device, "tests/fixtures/video/demo.mjpeg");
    assert_eq!(v.capture_size, Some((1280, 720)));
    assert_eq!((v.fps, v.send), (0.5, VideoSend::WhileSpeaking));
    assert_eq!((v.size, v.geometry, v.quality), (512, Geometry::Crop, 70));
    let mut rest = cfg.clone();
    rest.video = Config::with_defaults(&path).video;
    assert_eq!(rest, Config::with_defaults(&path), "only [video] differs");
}

#[test]
fn video_fps_above_one_says_the_api_limit() {
    let (line, column, shown) = fixture_error("bad_video_fps.toml");
    assert_eq!((line, column), (4, 7));
    assert_words(
        &shown,
        &[
            "invalid value 2 for fps in [video]",
            "allowed: 0.05..=1.0 (frames per second)",
            "at most 1 frame per second",
        ],
    );
}

#[test]
fn bad_capture_size_shows_the_expected_form() {
    let (line, column, shown) = fixture_error("bad_capture_size.toml");
    assert_eq!((line, column), (3, 16));
    assert_words(
        &shown,
        &[
            "invalid value \"1280*720\" for capture_size in [video]",
            "expected \"auto\" or \"WIDTHxHEIGHT\" such as \"1280x720\"",
            "16..=8192 pixels",
        ],
    );
}

#[test]
fn bad_geometry_lists_the_four() {
    let (line, column, shown) = fixture_error("bad_geometry.toml");
    assert_eq!((line, column), (2, 12));
    assert_words(
        &shown,
        &[
            "invalid value \"zoom\" for geometry in [video]",
            "allowed: letterbox, crop, fit, stretch",
        ],
    );
}

#[test]
fn missing_file_suggests_how_to_point_at_one() {
    let path = fixture("does-not-exist.toml");
    let shown = config::load(&path).unwrap_err().to_string();
    assert_words(
        &shown,
        &[
            &path.display().to_string(),
            "--config PATH",
            "$GEMLIVE_CONFIG",
        ],
    );
}
