//! The shipped example config and the fixture files, through the public API only.

use std::path::{Path, PathBuf};

use gemlive::config::{
    self, Bias, ButtonConfig, ButtonMode, Config, ConfigError, EchoMode, Geometry, LineSpec,
    LogLevel, MediaResolution, VideoSend, Wake,
};

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

/// Lines of the form `# key = value` (regex `^# ?[a-z_]+ = `) uncommented, except the keys in
/// `skip` (alternatives that exclude each other); returns the text and the number uncommented.
fn uncomment_keys(text: &str, skip: &[&str]) -> (String, usize) {
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
            if key_len > 0
                && rest[key_len..].starts_with(" = ")
                && !skip.contains(&&rest[..key_len])
            {
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
    assert!(l.resumption && cfg.tools.builtin);
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
    assert_eq!(
        (cfg.audio.echo, cfg.audio.echo_tail_ms),
        (EchoMode::Aec, 300)
    );
    let s = &cfg.session;
    assert_eq!(
        (s.idle_timeout_s, s.max_session_s, s.chimes),
        (120, 0, true)
    );
    assert_eq!(cfg.button, ButtonConfig::default());
    assert!(!cfg.button.configured());
    assert!(cfg.button.active_low);
    assert_eq!(
        (cfg.button.bias, cfg.button.mode),
        (Bias::PullUp, ButtonMode::Toggle)
    );
    assert_eq!(
        (cfg.button.debounce_ms, cfg.button.long_press_ms),
        (30, 1500)
    );
    assert_eq!(cfg.service.log_level, LogLevel::Info);
}

#[test]
fn every_documented_key_is_real() {
    let path = repo("config/gemlive.toml");
    let text = std::fs::read_to_string(&path).expect("read shipped config");
    // [button] names its line either by `line` or by `chip` + `offset`: try each way.
    let (by_name, n) = uncomment_keys(&text, &["chip", "offset"]);
    let (by_offset, m) = uncomment_keys(&text, &["line"]);
    // 22 in [live] (the conversation and token examples are indented, not key lines), 7 in
    // [audio], 8 in [video], 4 in [session], 9 in [button], 1 in [tools] (its
    // [[tools.command]] example is indented too), 1 in [service].
    assert_eq!(n + 2, 52, "documented keys:\n{by_name}");
    assert_eq!(m + 1, 52, "documented keys:\n{by_offset}");
    let parse = |text: &str| match config::parse_str(text, &path) {
        Ok(c) => c,
        Err(e) => panic!("uncommented example fails: {e}"),
    };
    // The documented values are the defaults, except the example key file, button and LED.
    let mut want = Config::with_defaults(&path);
    want.live.api_key_file = Some(PathBuf::from("/etc/gemlive/api-key"));
    want.button.led_line = Some("GPIO27".to_string());
    want.button.line = Some("GPIO17".to_string());
    assert_eq!(parse(&by_name), want);
    want.button.line = None;
    want.button.chip = Some("gpiochip0".to_string());
    want.button.offset = Some(17);
    assert_eq!(parse(&by_offset), want);
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
fn button_section_is_read() {
    let path = fixture("button.toml");
    let cfg = config::load(&path).expect("button.toml parses");
    let b = &cfg.button;
    assert!(b.configured());
    assert_eq!(b.input(), Some(LineSpec::Name("GPIO17".to_string())));
    assert_eq!(b.led(), Some(LineSpec::Name("GPIO27".to_string())));
    assert_eq!((b.active_low, b.bias), (true, Bias::PullUp));
    assert_eq!((b.debounce_ms, b.long_press_ms), (50, 2000));
    assert_eq!(b.mode, ButtonMode::PushToTalk);
    let s = &cfg.session;
    assert_eq!(s.wake, Wake::Button);
    assert_eq!(
        (s.idle_timeout_s, s.max_session_s, s.chimes),
        (60, 1800, false)
    );
    assert_eq!(
        (cfg.audio.echo, cfg.audio.echo_tail_ms),
        (EchoMode::HalfDuplex, 500)
    );
    assert_eq!(cfg.service.log_level, LogLevel::Debug);
    assert_eq!(cfg.service.log_level.filter(), log::LevelFilter::Debug);
}

#[test]
fn wake_button_without_a_button_is_refused_at_wake() {
    let (line, column, shown) = fixture_error("button_missing.toml");
    assert_eq!((line, column), (3, 8));
    assert!(
        shown.ends_with(
            ": wake = \"button\" needs a button: set line (e.g. \"GPIO17\") or chip + offset \
             in [button], or control_socket in [service] to wake it with `gemlive ctl wake`, \
             or url in [mqtt] to wake it from Home Assistant"
        ),
        "{shown}"
    );
}

#[test]
fn button_line_and_chip_together_are_refused_at_the_second() {
    let (line, column, shown) = fixture_error("button_conflict.toml");
    assert_eq!((line, column), (4, 10));
    assert_words(
        &shown,
        &[
            "chip = \"gpiochip0\" in [button] conflicts with line = \"GPIO17\"",
            "either by line (e.g. \"GPIO17\") or by chip + offset, not both",
        ],
    );
}

#[test]
fn button_offset_without_chip_is_refused() {
    let (line, column, shown) = fixture_error("button_no_chip.toml");
    assert_eq!((line, column), (2, 10));
    assert_words(
        &shown,
        &[
            "offset = 17 in [button] needs chip too",
            "chip = \"gpiochip0\"",
            "gpioinfo",
        ],
    );
}

#[test]
fn unknown_gpio_table_suggests_button() {
    let (line, column, shown) = fixture_error("gpio_table.toml");
    assert_eq!((line, column), (2, 2));
    assert_words(
        &shown,
        &["unknown table `[gpio]`; did you mean `[button]`?"],
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
