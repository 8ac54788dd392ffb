use super::key_file::*;
use super::parse::*;
use super::*;
use std::os::unix::fs::PermissionsExt;

const P: &str = "/etc/gemlive/gemlive.toml";

fn parse(text: &str) -> Result<Config, ConfigError> {
    parse_str(text, Path::new(P))
}

/// Parses, expects an error, returns (line, col, message).
fn err(text: &str) -> (usize, usize, String) {
    match parse(text) {
        Ok(c) => panic!("expected an error for {text:?}, got {c:?}"),
        Err(ConfigError::At {
            path,
            line,
            column,
            message,
        }) => {
            assert_eq!(path, Path::new(P));
            (line, column, message)
        }
        Err(other) => panic!("expected a positioned error, got {other}"),
    }
}

fn no_env(_: &str) -> Option<String> {
    None
}

#[test]
fn empty_file_and_empty_live_are_defaults() {
    for text in [
        "",
        "[live]\n",
        "[live]\n[audio]\n[video]\n[session]\n[button]\n[service]\n",
        "# nothing\n",
    ] {
        let c = parse(text).expect(text);
        assert_eq!(c, Config::with_defaults(P), "{text:?}");
    }
    let d = Config::with_defaults(P);
    assert_eq!(d.live.endpoint, crate::live::transport::DEFAULT_ENDPOINT);
    assert_eq!(d.live.model, "models/gemini-3.1-flash-live-preview");
    assert_eq!(d.live.voice, "Kore");
    assert_eq!(d.live.system_instruction, "");
    assert_eq!(d.live.media_resolution, MediaResolution::Low);
    assert_eq!(d.live.api_key_file, None);
    assert!(d.live.input_transcription && d.live.output_transcription);
    assert_eq!(d.live.setup_timeout_ms, 10_000);
    assert!(d.live.resumption && d.tools.builtin && d.tools.command.is_empty());
    assert_eq!(d.live.compression_trigger_tokens, 25_600);
    assert_eq!(d.live.compression_target_tokens, 12_800);
    assert_eq!(d.live.max_connection_age_s, 540);
    assert_eq!(d.live.ping_interval_s, 15);
    assert_eq!(d.live.dead_after_s, 45);
    assert_eq!(d.live.reconnect_max_delay_s, 30);
    assert_eq!(d.live.config_error_delay_s, 60);
    assert_eq!(d.live.max_message_kb, 4096);
    assert_eq!(d.audio.capture_device, "default");
    assert_eq!(d.audio.playback_device, "default");
    assert_eq!(d.audio.chunk_ms, 40);
    assert_eq!(d.audio.backlog_ms, 10_000);
    assert_eq!(d.audio.volume, 100);
    assert!(d.video.enabled);
    assert_eq!(d.video.device, "/dev/video0");
    assert_eq!(d.video.capture_size, None);
    assert_eq!(d.video.fps, 1.0);
    assert_eq!(d.video.send, VideoSend::Always);
    assert_eq!(d.video.size, 768);
    assert_eq!(d.video.geometry, Geometry::Letterbox);
    assert_eq!(d.video.quality, 80);
    assert_eq!(d.session.wake, Wake::Always);
    assert_eq!(d.audio.echo, EchoMode::Aec);
    assert_eq!(d.audio.echo_tail_ms, 300);
    assert_eq!(d.session.idle_timeout_s, 120);
    assert_eq!(d.session.max_session_s, 0);
    assert!(d.session.chimes);
    let b = &d.button;
    assert_eq!((&b.line, &b.chip, b.offset), (&None, &None, None));
    assert!(b.active_low && !b.configured());
    assert_eq!(b.bias, Bias::PullUp);
    assert_eq!((b.debounce_ms, b.long_press_ms), (30, 1500));
    assert_eq!(b.mode, ButtonMode::Toggle);
    assert_eq!(b.led_line, None);
    assert_eq!((b.input(), b.led()), (None, None));
    assert_eq!(d.service.log_level, LogLevel::Info);
}

#[test]
fn all_keys_set() {
    let c = parse(
        r#"
[live]
endpoint = "ws://127.0.0.1:9000/live"
model = "gemini-2.5-flash-native-audio"
voice = "puck"
system_instruction = """
  Be brief.
"""
media_resolution = "HIGH"
api_key_file = "/etc/gemlive/key"
input_transcription = false
output_transcription = false
setup_timeout_ms = 1000
resumption = false
compression_trigger_tokens = 1000000
compression_target_tokens = 999999
max_connection_age_s = 3600
ping_interval_s = 120
dead_after_s = 121
reconnect_max_delay_s = 600
config_error_delay_s = 3600
max_message_kb = 65536
[audio]
capture_device = "plughw:CARD=Device,DEV=0"
playback_device = "hw:1,0"
chunk_ms = 100
backlog_ms = 120000
volume = 0
echo = "Half_Duplex"
echo_tail_ms = 5000
[video]
enabled = false
device = " /tmp/demo.mjpeg "
capture_size = "640X480"
fps = 0.05
send = "While_Speaking"
size = 2048
geometry = "CROP"
quality = 1
[session]
wake = "button"
idle_timeout_s = 86400
max_session_s = 60
chimes = false
[button]
chip = " /dev/gpiochip4 "
offset = 1023
active_low = false
bias = "Pull_Down"
debounce_ms = 0
long_press_ms = 10000
mode = "PUSH_TO_TALK"
led_line = "gpiochip4:27"
[tools]
builtin = false
[service]
log_level = "TRACE"
"#,
    )
    .expect("valid");
    assert_eq!(c.live.endpoint, "ws://127.0.0.1:9000/live");
    assert_eq!(c.live.model, "models/gemini-2.5-flash-native-audio");
    assert_eq!(c.live.voice, "Puck");
    assert_eq!(c.live.system_instruction, "Be brief.");
    assert_eq!(c.live.media_resolution, MediaResolution::High);
    assert_eq!(c.live.api_key_file, Some(PathBuf::from("/etc/gemlive/key")));
    assert!(!c.live.input_transcription && !c.live.output_transcription);
    assert_eq!(c.live.setup_timeout_ms, 1000);
    assert!(!c.live.resumption && !c.tools.builtin);
    assert_eq!(c.live.compression_trigger_tokens, 1_000_000);
    assert_eq!(c.live.compression_target_tokens, 999_999);
    assert_eq!(c.live.max_connection_age_s, 3600);
    assert_eq!(c.live.ping_interval_s, 120);
    assert_eq!(c.live.dead_after_s, 121);
    assert_eq!(c.live.reconnect_max_delay_s, 600);
    assert_eq!(c.live.config_error_delay_s, 3600);
    assert_eq!(c.live.max_message_kb, 65_536);
    assert_eq!(c.audio.capture_device, "plughw:CARD=Device,DEV=0");
    assert_eq!(c.audio.playback_device, "hw:1,0");
    assert_eq!(c.audio.chunk_ms, 100);
    assert_eq!(c.audio.backlog_ms, 120_000);
    assert_eq!(c.audio.volume, 0);
    assert_eq!(
        c.video,
        VideoConfig {
            enabled: false,
            device: "/tmp/demo.mjpeg".to_string(),
            capture_size: Some((640, 480)),
            fps: 0.05,
            send: VideoSend::WhileSpeaking,
            size: 2048,
            geometry: Geometry::Crop,
            quality: 1,
        }
    );
    assert_eq!(c.audio.echo, EchoMode::HalfDuplex);
    assert_eq!(c.audio.echo_tail_ms, 5000);
    assert_eq!(
        c.session,
        SessionConfig {
            wake: Wake::Button,
            idle_timeout_s: 86_400,
            max_session_s: 60,
            chimes: false,
        }
    );
    assert_eq!(
        c.button,
        ButtonConfig {
            line: None,
            chip: Some("/dev/gpiochip4".to_string()),
            offset: Some(1023),
            active_low: false,
            bias: Bias::PullDown,
            debounce_ms: 0,
            long_press_ms: 10_000,
            mode: ButtonMode::PushToTalk,
            led_line: Some("gpiochip4:27".to_string()),
            mute_line: None,
            mute_mode: MuteMode::Switch,
        }
    );
    assert!(c.button.configured());
    assert_eq!(
        c.button.input(),
        Some(LineSpec::ChipOffset {
            chip: "/dev/gpiochip4".to_string(),
            offset: 1023
        })
    );
    assert_eq!(
        c.button.led(),
        Some(LineSpec::ChipOffset {
            chip: "gpiochip4".to_string(),
            offset: 27
        })
    );
    assert_eq!(c.service.log_level, LogLevel::Trace);
    assert_eq!(c.service.log_level.filter(), log::LevelFilter::Trace);
}

#[test]
fn model_prefix() {
    for (given, stored) in [
        ("gemini-x", "models/gemini-x"),
        ("models/gemini-x", "models/gemini-x"),
        ("tunedModels/abc", "tunedModels/abc"),
        ("  gemini-x ", "models/gemini-x"),
    ] {
        let c = parse(&format!("[live]\nmodel = \"{given}\"\n")).expect(given);
        assert_eq!(c.live.model, stored);
    }
    for bad in ["", "  ", "models/", "gemini x"] {
        let (l, col, m) = err(&format!("[live]\nmodel = \"{bad}\"\n"));
        assert_eq!((l, col), (2, 9), "{bad:?}");
        assert!(m.contains("for model in [live]"), "{m}");
    }
}

#[test]
fn resilience_ranges_accept_their_bounds_and_refuse_beyond() {
    // (table, key, lowest, highest, unit); lowest - 1 and highest + 1 are refused.
    let cases: &[(&str, &str, i64, i64, &str)] = &[
        ("live", "compression_target_tokens", 0, 1_000_000, "tokens"),
        ("live", "max_connection_age_s", 30, 3600, "seconds"),
        ("live", "ping_interval_s", 5, 120, "seconds"),
        ("live", "dead_after_s", 30, 600, "seconds"),
        ("live", "stall_after_s", 1, 60, "seconds"),
        ("live", "reconnect_max_delay_s", 1, 600, "seconds"),
        ("live", "config_error_delay_s", 1, 3600, "seconds"),
        ("live", "max_message_kb", 64, 65_536, "KiB"),
        ("audio", "backlog_ms", 1000, 120_000, "milliseconds"),
        ("audio", "volume", 0, 100, "percent"),
        ("audio", "chunk_ms", 20, 100, "milliseconds"),
        ("video", "size", 64, 2048, "pixels"),
        ("video", "quality", 1, 100, "JPEG quality, 100 = best"),
        ("audio", "echo_tail_ms", 0, 5000, "milliseconds"),
        ("button", "offset", 0, 1023, "line offset on chip"),
        ("button", "debounce_ms", 0, 1000, "milliseconds, 0 = off"),
        ("button", "long_press_ms", 300, 10_000, "milliseconds"),
    ];
    // Keep the cross-field checks out of the way: ping 5 s, dead after 600 s, compression off.
    let other = |key: &str| match key {
        "ping_interval_s" => "dead_after_s = 600\n",
        "dead_after_s" => "ping_interval_s = 5\n",
        "compression_target_tokens" => "compression_trigger_tokens = 0\n",
        "offset" => "chip = \"gpiochip0\"\n",
        _ => "",
    };
    for (table, key, lo, hi, unit) in cases {
        for ok in [*lo, *hi] {
            let text = format!("[{table}]\n{}{key} = {ok}\n", other(key));
            if let Err(e) = parse(&text) {
                panic!("{text:?}: {e}");
            }
        }
        for bad in [*lo - 1, *hi + 1] {
            let text = format!("[{table}]\n{}{key} = {bad}\n", other(key));
            let (l, c, m) = err(&text);
            let line = 2 + usize::from(!other(key).is_empty());
            assert_eq!((l, c), (line, key.len() + 4), "{text:?}: {m}");
            assert_eq!(
                m,
                format!(
                    "invalid value {bad} for {key} in [{table}]; allowed: {lo}..={hi} ({unit})"
                ),
                "{text:?}"
            );
        }
        let (_, _, m) = err(&format!("[{table}]\n{key} = \"1\"\n"));
        assert!(
            m.starts_with(&format!("wrong type for {key} in [{table}]: expected an integer in {lo}..={hi} ({unit}), found string \"1\"")),
            "{m}"
        );
    }

    for v in [0, 1000, 25_600, 1_000_000] {
        let c = parse(&format!(
            "[live]\ncompression_trigger_tokens = {v}\ncompression_target_tokens = 0\n"
        ))
        .expect("valid trigger");
        assert_eq!(c.live.compression_trigger_tokens, v);
    }
    for bad in [-1, 1, 999, 1_000_001] {
        let (l, c, m) = err(&format!("[live]\ncompression_trigger_tokens = {bad}\n"));
        assert_eq!((l, c), (2, 30), "{m}");
        assert_eq!(
            m,
            format!(
                "invalid value {bad} for compression_trigger_tokens in [live]; allowed: 0 \
                 (compression off) or 1000..=1000000 (tokens)"
            )
        );
    }
    let (_, _, m) = err("[live]\ncompression_trigger_tokens = 1.5\n");
    assert!(
        m.contains("expected an integer, 0 (compression off) or 1000..=1000000"),
        "{m}"
    );
    for key in ["resumption", "input_transcription"] {
        let (l, c, m) = err(&format!("[live]\n{key} = 1\n"));
        assert_eq!((l, c), (2, key.len() + 4), "{m}");
        assert!(
            m.starts_with(&format!(
                "wrong type for {key} in [live]: expected true or false"
            )),
            "{m}"
        );
    }
    let (_, _, m) = err("[audio]\nvolume = 255\n");
    assert!(m.contains("allowed: 0..=100 (percent)"), "{m}");
    let (_, _, m) = err("[audio]\nvolume = 256\n");
    assert!(m.contains("invalid value 256 for volume"), "{m}");
}

#[test]
fn compression_target_must_be_below_trigger() {
    // Off: the target is range-checked but otherwise ignored.
    let c = parse("[live]\ncompression_trigger_tokens = 0\ncompression_target_tokens = 1000000\n")
        .expect("off");
    assert_eq!(c.live.compression_trigger_tokens, 0);
    let c = parse("[live]\ncompression_trigger_tokens = 12801\n").expect("just above");
    assert_eq!(c.live.compression_target_tokens, 12_800);
    let c = parse("[live]\ncompression_target_tokens = 25599\n").expect("just below");
    assert_eq!(c.live.compression_target_tokens, 25_599);

    // Both set: at the target.
    let (l, c, m) =
        err("[live]\ncompression_target_tokens = 5000\ncompression_trigger_tokens = 5000\n");
    assert_eq!((l, c), (2, 29), "{m}");
    assert_eq!(
        m,
        "invalid value 5000 for compression_target_tokens in [live]: must be less than \
         compression_trigger_tokens (5000); allowed: 0..=4999 (tokens), or set \
         compression_trigger_tokens = 0 to turn compression off"
    );
    // Only the target set: at the target, the trigger is the default.
    let (l, c, m) = err("[live]\ncompression_target_tokens = 30000\n");
    assert_eq!((l, c), (2, 29), "{m}");
    assert!(
        m.contains(
            "must be less than compression_trigger_tokens (25600, the default); allowed: 0..=25599"
        ),
        "{m}"
    );
    // Only the trigger set: at the trigger, naming the default target.
    let (l, c, m) = err("[live]\n\ncompression_trigger_tokens = 12800\n");
    assert_eq!((l, c), (3, 30), "{m}");
    assert_eq!(
        m,
        "invalid value 12800 for compression_trigger_tokens in [live]: must be greater than \
         compression_target_tokens (12800, the default); allowed: 0 (compression off) or \
         12801..=1000000 (tokens), or set compression_target_tokens lower as well"
    );
}

#[test]
fn dead_after_must_exceed_ping_interval() {
    let c = parse("[live]\nping_interval_s = 44\n").expect("below the default 45");
    assert_eq!(c.live.ping_interval_s, 44);
    let c = parse("[live]\nping_interval_s = 120\ndead_after_s = 121\n").expect("valid");
    assert_eq!(c.live.dead_after_s, 121);

    // Both set: at dead_after_s, whichever comes first in the file.
    for text in [
        "[live]\nping_interval_s = 60\ndead_after_s = 60\n",
        "[live]\ndead_after_s = 60\nping_interval_s = 60\n",
    ] {
        let (l, c, m) = err(text);
        let line = if text.starts_with("[live]\nd") { 2 } else { 3 };
        assert_eq!((l, c), (line, 16), "{text:?}: {m}");
        assert_eq!(
            m,
            "invalid value 60 for dead_after_s in [live]: must be greater than \
             ping_interval_s (60); allowed: 61..=600 (seconds)"
        );
    }
    // Only ping set: at ping_interval_s, naming the default dead_after_s.
    let (l, c, m) = err("[live]\nping_interval_s = 45\n");
    assert_eq!((l, c), (2, 19), "{m}");
    assert_eq!(
        m,
        "invalid value 45 for ping_interval_s in [live]: must be less than dead_after_s \
         (45, the default); allowed: 5..=44 (seconds), or set dead_after_s higher as well"
    );
    // Only dead_after_s set (ping 15 by default): the range check is the tighter one.
    let (_, _, m) = err("[live]\ndead_after_s = 15\n");
    assert!(m.ends_with("allowed: 30..=600 (seconds)"), "{m}");
}

#[test]
fn video_capture_size() {
    for (given, want) in [
        ("auto", None),
        ("AUTO", None),
        (" auto ", None),
        ("1280x720", Some((1280, 720))),
        ("1920X1080", Some((1920, 1080))),
        ("640 x 480", Some((640, 480))),
        ("1280×720", Some((1280, 720))),
        ("16x16", Some((16, 16))),
        ("8192x8192", Some((8192, 8192))),
    ] {
        let c = parse(&format!("[video]\ncapture_size = \"{given}\"\n")).expect(given);
        assert_eq!(c.video.capture_size, want, "{given:?}");
    }
    let form = "\"auto\" or \"WIDTHxHEIGHT\" such as \"1280x720\" (each side 16..=8192 pixels)";
    for bad in [
        "",
        "1280",
        "1280x",
        "x720",
        "1280*720",
        "1280x720x3",
        "-1x5",
        "1e3x720",
        "big",
    ] {
        let (l, c, m) = err(&format!("[video]\ncapture_size = \"{bad}\"\n"));
        assert_eq!((l, c), (2, 16), "{bad:?}: {m}");
        assert_eq!(
            m,
            format!("invalid value {bad:?} for capture_size in [video]; expected {form}")
        );
    }
    for (bad, what) in [
        ("15x720", "width 15"),
        ("8193x720", "width 8193"),
        ("1280x0", "height 0"),
        ("1280x99999999999999999999", "height 99999999999999999999"),
    ] {
        let (_, _, m) = err(&format!("[video]\ncapture_size = \"{bad}\"\n"));
        assert_eq!(
            m,
            format!(
                "invalid value {bad:?} for capture_size in [video]: {what} is out of range; \
                 allowed: {form}"
            )
        );
    }
    let (l, c, m) = err("[video]\ncapture_size = [1280, 720]\n");
    assert_eq!((l, c), (2, 16), "{m}");
    assert_eq!(
        m,
        format!("wrong type for capture_size in [video]: expected a string, {form}, found array")
    );
}

#[test]
fn video_fps() {
    for (given, want) in [
        ("1", 1.0),
        ("1.0", 1.0),
        ("0.5", 0.5),
        ("0.05", 0.05),
        ("0.25", 0.25),
    ] {
        let c = parse(&format!("[video]\nfps = {given}\n")).expect(given);
        assert_eq!(c.video.fps, want, "{given}");
    }
    let allowed = "allowed: 0.05..=1.0 (frames per second)";
    for (given, shown) in [
        ("0", "0"),
        ("0.04", "0.04"),
        ("-1", "-1"),
        ("nan", "NaN"),
        ("-inf", "-inf"),
    ] {
        let (l, c, m) = err(&format!("[video]\nfps = {given}\n"));
        assert_eq!((l, c), (2, 7), "{given}: {m}");
        assert_eq!(
            m,
            format!("invalid value {shown} for fps in [video]; {allowed}")
        );
    }
    for (given, shown) in [("2", "2"), ("1.5", "1.5"), ("30", "30"), ("inf", "inf")] {
        let (_, _, m) = err(&format!("[video]\nfps = {given}\n"));
        assert_eq!(
            m,
            format!(
                "invalid value {shown} for fps in [video]; {allowed}; the Live API takes at \
                 most 1 frame per second"
            )
        );
    }
    let (_, _, m) = err("[video]\nfps = \"1\"\n");
    assert_eq!(
        m,
        "wrong type for fps in [video]: expected a number in 0.05..=1.0 (frames per \
         second), found string \"1\""
    );
}

#[test]
fn video_choices_and_device() {
    for (given, want) in [
        ("letterbox", Geometry::Letterbox),
        ("Crop", Geometry::Crop),
        ("FIT", Geometry::Fit),
        (" stretch ", Geometry::Stretch),
    ] {
        let c = parse(&format!("[video]\ngeometry = \"{given}\"\n")).expect(given);
        assert_eq!(c.video.geometry, want);
        assert_eq!(geometry_name(want), given.trim().to_ascii_lowercase());
    }
    for (given, want) in [
        ("always", VideoSend::Always),
        ("while_speaking", VideoSend::WhileSpeaking),
    ] {
        let c = parse(&format!("[video]\nsend = \"{given}\"\n")).expect(given);
        assert_eq!(c.video.send, want);
        assert_eq!(want.as_str(), given);
    }
    let c = parse("[video]\nenabled = false\n").expect("off");
    assert!(!c.video.enabled);
    let c = parse("[video]\ndevice = \"/dev/v4l/by-id/usb-cam-video-index0\"\n").expect("by-id");
    assert_eq!(c.video.device, "/dev/v4l/by-id/usb-cam-video-index0");

    let cases: &[(&str, usize, usize, &str)] = &[
        (
            "[video]\ngeometry = \"zoom\"\n",
            2,
            12,
            "invalid value \"zoom\" for geometry in [video]; allowed: letterbox, crop, fit, \
             stretch",
        ),
        (
            "[video]\ngeometry = 1\n",
            2,
            12,
            "wrong type for geometry in [video]: expected a string, one of: letterbox, crop, \
             fit, stretch, found integer 1",
        ),
        (
            "[video]\nsend = \"while-speaking\"\n",
            2,
            8,
            "invalid value \"while-speaking\" for send in [video]; allowed: always, \
             while_speaking",
        ),
        (
            "[video]\nenabled = \"no\"\n",
            2,
            11,
            "wrong type for enabled in [video]: expected true or false (without quotes), \
             found string \"no\"",
        ),
        (
            "[video]\ndevice = \"  \"\n",
            2,
            10,
            "invalid value \"\" for device in [video]; expected a V4L2 capture device such \
             as \"/dev/video0\" (see `gemlive list-devices`) or the path of an .mjpeg file; \
             to run without a camera set enabled = false",
        ),
        (
            "[video]\ndevice = 0\n",
            2,
            10,
            "wrong type for device in [video]: expected a string (camera device or .mjpeg \
             file path), found integer 0",
        ),
        (
            "[video]\nsize = 768.0\n",
            2,
            8,
            "wrong type for size in [video]: expected an integer in 64..=2048 (pixels), \
             found float 768",
        ),
    ];
    for (text, line, col, want) in cases {
        let (l, c, m) = err(text);
        assert_eq!((l, c), (*line, *col), "{text:?}: {m}");
        assert_eq!(m, *want, "{text:?}");
    }
}

#[test]
fn session_lifecycle_keys() {
    for (key, zero, lo, hi) in [
        ("idle_timeout_s", "never", 10u64, 86_400u64),
        ("max_session_s", "unlimited", 60, 86_400),
    ] {
        for ok in [0, lo, hi] {
            let c = parse(&format!("[session]\n{key} = {ok}\n")).expect(key);
            let got = match key {
                "idle_timeout_s" => c.session.idle_timeout_s,
                _ => c.session.max_session_s,
            };
            assert_eq!(got, ok, "{key}");
        }
        let allowed = format!("0 ({zero}) or {lo}..={hi} (seconds)");
        for bad in [-1, 1, lo as i64 - 1, hi as i64 + 1] {
            let (l, c, m) = err(&format!("[session]\n{key} = {bad}\n"));
            assert_eq!((l, c), (2, key.len() + 4), "{m}");
            assert_eq!(
                m,
                format!("invalid value {bad} for {key} in [session]; allowed: {allowed}")
            );
        }
        let (_, _, m) = err(&format!("[session]\n{key} = \"2m\"\n"));
        assert_eq!(
            m,
            format!(
                "wrong type for {key} in [session]: expected an integer, {allowed}, found \
                 string \"2m\""
            )
        );
    }
    let c = parse("[session]\nchimes = false\n").expect("chimes");
    assert!(!c.session.chimes);
    for (table, key) in [("session", "chimes"), ("button", "active_low")] {
        let (l, c, m) = err(&format!("[{table}]\n{key} = \"yes\"\n"));
        assert_eq!((l, c), (2, key.len() + 4), "{m}");
        assert_eq!(
            m,
            format!(
                "wrong type for {key} in [{table}]: expected true or false (without quotes), \
                 found string \"yes\""
            )
        );
    }
}

#[test]
fn new_choices_are_case_insensitive_and_list_the_allowed_values() {
    for b in Bias::ALL {
        let text = format!("[button]\nbias = \"{}\"\n", b.as_str().to_ascii_uppercase());
        assert_eq!(parse(&text).expect(&text).button.bias, b);
    }
    for m in ButtonMode::ALL {
        // push_to_talk needs a button; toggle does not.
        let text = format!("[button]\nline = \"GPIO17\"\nmode = \" {} \"\n", m.as_str());
        assert_eq!(parse(&text).expect(&text).button.mode, m);
    }
    for e in EchoMode::ALL {
        let text = format!("[audio]\necho = \"{}\"\n", e.as_str());
        assert_eq!(parse(&text).expect(&text).audio.echo, e);
    }
    let filters = [
        log::LevelFilter::Error,
        log::LevelFilter::Warn,
        log::LevelFilter::Info,
        log::LevelFilter::Debug,
        log::LevelFilter::Trace,
    ];
    for (l, f) in LogLevel::ALL.into_iter().zip(filters) {
        let text = format!("[service]\nlog_level = \"{}\"\n", l.as_str());
        let got = parse(&text).expect(&text).service.log_level;
        assert_eq!((got, got.filter()), (l, f));
    }
    let cases: &[(&str, usize, usize, &str)] = &[
        (
            "[button]\nbias = \"pullup\"\n",
            2,
            8,
            "invalid value \"pullup\" for bias in [button]; allowed: pull_up, pull_down, \
             disabled, as_is",
        ),
        (
            "[button]\nmode = \"hold\"\n",
            2,
            8,
            "invalid value \"hold\" for mode in [button]; allowed: toggle, push_to_talk",
        ),
        (
            "[audio]\necho = \"webrtc\"\n",
            2,
            8,
            "invalid value \"webrtc\" for echo in [audio]; allowed: aec, half_duplex, none",
        ),
        (
            "[audio]\necho = true\n",
            2,
            8,
            "wrong type for echo in [audio]: expected a string, one of: aec, half_duplex, \
             none, found boolean true",
        ),
        (
            "[service]\nlog_level = \"verbose\"\n",
            2,
            13,
            "invalid value \"verbose\" for log_level in [service]; allowed: error, warn, info, \
             debug, trace",
        ),
    ];
    for (text, line, col, want) in cases {
        let (l, c, m) = err(text);
        assert_eq!((l, c), (*line, *col), "{text:?}: {m}");
        assert_eq!(m, *want, "{text:?}");
    }
}

#[test]
fn button_line_by_name_or_by_chip_and_offset() {
    let c = parse("[button]\nline = \" GPIO17 \"\n").expect("line");
    assert_eq!(c.button.line.as_deref(), Some("GPIO17"));
    assert!(c.button.configured());
    assert_eq!(c.button.input(), Some(LineSpec::Name("GPIO17".into())));
    let c = parse("[button]\nchip = \"gpiochip0\"\noffset = 0\n").expect("chip");
    assert!(c.button.configured());
    assert_eq!(
        (c.button.chip.as_deref(), c.button.offset),
        (Some("gpiochip0"), Some(0))
    );
    // Names other than the Pi's are fine (any name `gpioinfo` shows).
    let c = parse("[button]\nline = \"PIN_7\"\n").expect("name");
    assert_eq!(c.button.line.as_deref(), Some("PIN_7"));

    let either = "name the button's line either by line (e.g. \"GPIO17\") or by chip + \
                  offset, not both";
    let cases: &[(&str, usize, usize, String)] = &[
        // Conflicts: at whichever comes second.
        (
            "[button]\nline = \"GPIO17\"\nchip = \"gpiochip0\"\noffset = 17\n",
            3,
            8,
            format!("chip = \"gpiochip0\" in [button] conflicts with line = \"GPIO17\": {either}"),
        ),
        (
            "[button]\nline = \"GPIO17\"\noffset = 17\n",
            3,
            10,
            format!("offset = 17 in [button] conflicts with line = \"GPIO17\": {either}"),
        ),
        (
            "[button]\noffset = 17\nchip = \"gpiochip0\"\nline = \"GPIO17\"\n",
            4,
            8,
            format!("line = \"GPIO17\" in [button] conflicts with offset = 17: {either}"),
        ),
        (
            "[button]\nchip = \"gpiochip0\"\nline = \"GPIO17\"\noffset = 17\n",
            3,
            8,
            format!("line = \"GPIO17\" in [button] conflicts with chip = \"gpiochip0\": {either}"),
        ),
        // One of the pair alone.
        (
            "[button]\nchip = \"gpiochip0\"\n",
            2,
            8,
            "chip = \"gpiochip0\" in [button] needs offset too: the line's offset on that \
             chip, 0..=1023 (see `gpioinfo`); or name the line instead, e.g. line = \
             \"GPIO17\""
                .to_string(),
        ),
        (
            "[button]\noffset = 17\n",
            2,
            10,
            "offset = 17 in [button] needs chip too, e.g. chip = \"gpiochip0\" (see \
             `gpioinfo`); or name the line instead, e.g. line = \"GPIO17\""
                .to_string(),
        ),
        // Bad values.
        (
            "[button]\nline = \" \"\n",
            2,
            8,
            "invalid value \"\" for line in [button]; expected a GPIO line name such as \
             \"GPIO17\" (see `gpioinfo` or `gemlive list-devices`), or leave line unset for \
             no button"
                .to_string(),
        ),
        (
            "[button]\nline = \"17\"\n",
            2,
            8,
            "invalid value \"17\" for line in [button]: a line name, not a number; write \
             \"GPIO17\" for the Raspberry Pi's GPIO 17 (header names use the GPIO number, \
             not the physical pin number), or give the chip: chip = \"gpiochip0\" and \
             offset = 17"
                .to_string(),
        ),
        (
            "[button]\nline = 17\n",
            2,
            8,
            "wrong type for line in [button]: expected a string, a GPIO line name such as \
             \"GPIO17\", found integer 17; write line = \"GPIO17\" for the Raspberry Pi's \
             GPIO 17, or give the chip too: chip = \"gpiochip0\" and offset = 17"
                .to_string(),
        ),
        (
            "[button]\nline = true\n",
            2,
            8,
            "wrong type for line in [button]: expected a string, a GPIO line name such as \
             \"GPIO17\", found boolean true"
                .to_string(),
        ),
        (
            "[button]\nline = \"gpiochip0:17\"\n",
            2,
            8,
            "invalid value \"gpiochip0:17\" for line in [button]: for a chip and an offset \
             write chip = \"gpiochip0\" and offset = 17 instead"
                .to_string(),
        ),
        (
            "[button]\nchip = \"\"\noffset = 1\n",
            2,
            8,
            "invalid value \"\" for chip in [button]; expected a GPIO chip such as \
             \"gpiochip0\" or \"/dev/gpiochip0\" (see `gpioinfo`), or leave chip unset and \
             use line (e.g. \"GPIO17\")"
                .to_string(),
        ),
        (
            "[button]\nchip = \"0\"\noffset = 1\n",
            2,
            8,
            "invalid value \"0\" for chip in [button]; expected a GPIO chip such as \
             \"gpiochip0\" or \"/dev/gpiochip0\" (see `gpioinfo`): write \"gpiochip0\""
                .to_string(),
        ),
        (
            "[button]\nchip = \"gpio chip\"\noffset = 1\n",
            2,
            8,
            "invalid value \"gpio chip\" for chip in [button]; expected a GPIO chip such as \
             \"gpiochip0\" or \"/dev/gpiochip0\" (see `gpioinfo`)"
                .to_string(),
        ),
        (
            "[button]\nchip = \"gpiochip0\"\noffset = \"17\"\n",
            3,
            10,
            "wrong type for offset in [button]: expected an integer in 0..=1023 (line \
             offset on chip), found string \"17\""
                .to_string(),
        ),
    ];
    for (text, line, col, want) in cases {
        let (l, c, m) = err(text);
        assert_eq!((l, c), (*line, *col), "{text:?}: {m}");
        assert_eq!(m, *want, "{text:?}");
    }
}

#[test]
fn led_line_by_name_or_chip_offset() {
    for (given, want) in [
        ("GPIO27", LineSpec::Name("GPIO27".into())),
        (
            " gpiochip0:27 ",
            LineSpec::ChipOffset {
                chip: "gpiochip0".into(),
                offset: 27,
            },
        ),
        (
            "/dev/gpiochip4:0",
            LineSpec::ChipOffset {
                chip: "/dev/gpiochip4".into(),
                offset: 0,
            },
        ),
    ] {
        // An LED alone (no button) is allowed.
        let c = parse(&format!("[button]\nled_line = \"{given}\"\n")).expect(given);
        assert_eq!(c.button.led_line.as_deref(), Some(given.trim()));
        assert_eq!(c.button.led(), Some(want));
        assert!(!c.button.configured());
    }
    let form = "a line name such as \"GPIO27\" or \"CHIP:OFFSET\" such as \"gpiochip0:27\"";
    let cases: &[(&str, String)] = &[
        (
            "",
            format!("; expected {form}, or leave led_line unset for no LED"),
        ),
        (
            "27",
            ": a line name, not a number; write \"GPIO27\" for the Raspberry Pi's GPIO 27, \
             or \"gpiochip0:27\" for offset 27 on gpiochip0"
                .to_string(),
        ),
        (
            "gpiochip0:1024",
            format!("; expected {form} (the offset 0..=1023)"),
        ),
        (":27", format!("; expected {form} (the offset 0..=1023)")),
        (
            "gpiochip0:",
            format!("; expected {form} (the offset 0..=1023)"),
        ),
        (
            "gpiochip0:x",
            format!("; expected {form} (the offset 0..=1023)"),
        ),
    ];
    for (given, why) in cases {
        let (l, c, m) = err(&format!("[button]\nled_line = \"{given}\"\n"));
        assert_eq!((l, c), (2, 12), "{m}");
        assert_eq!(
            m,
            format!("invalid value {given:?} for led_line in [button]{why}")
        );
    }
    let (_, _, m) = err("[button]\nled_line = 27\n");
    assert_eq!(
        m,
        format!("wrong type for led_line in [button]: expected a string, {form}, found integer 27")
    );
    // Not the button's own line.
    for text in [
        "[button]\nline = \"GPIO17\"\nled_line = \"GPIO17\"\n",
        "[button]\nchip = \"/dev/gpiochip0\"\noffset = 17\nled_line = \"gpiochip0:17\"\n",
    ] {
        let (l, c, m) = err(text);
        assert_eq!((l, c), (text.lines().count(), 12), "{m}");
        assert!(
            m.ends_with(
                "for led_line in [button]: that is the button's own line; the LED needs a \
                 line of its own, e.g. \"GPIO27\""
            ),
            "{m}"
        );
    }
    parse("[button]\nline = \"GPIO17\"\nled_line = \"gpiochip0:17\"\n").expect("different");
}

#[test]
fn mute_line_and_mode() {
    let c = parse("[button]\nmute_line = \" GPIO22 \"\nmute_mode = \"button\"\n").expect("mute");
    assert_eq!(c.button.mute(), Some(LineSpec::Name("GPIO22".into())));
    assert_eq!(c.button.mute_mode, MuteMode::Button);
    let c = parse("[button]\nmute_line = \"gpiochip0:22\"\n").expect("mute");
    assert_eq!(c.button.mute_mode, MuteMode::Switch);
    let (l, c, m) = err("[button]\nmute_line = \"\"\n");
    assert_eq!((l, c), (2, 13), "{m}");
    assert!(
        m.ends_with("or leave mute_line unset for no mute switch"),
        "{m}"
    );
    for (text, what) in [
        (
            "[button]\nline = \"GPIO17\"\nmute_line = \"GPIO17\"\n",
            "the button's own line",
        ),
        (
            "[button]\nled_line = \"GPIO27\"\nmute_line = \"GPIO27\"\n",
            "the LED's line",
        ),
    ] {
        let (_, _, m) = err(text);
        assert!(
            m.ends_with(&format!(
                "for mute_line in [button]: that is {what}; the mute switch needs a line of its own, e.g. \"GPIO22\""
            )),
            "{m}"
        );
    }
    let (_, _, m) = err("[button]\nmute_mode = \"toggle\"\n");
    assert!(m.contains("switch") && m.contains("button"), "{m}");
}

#[test]
fn wake_button_and_push_to_talk_need_a_button() {
    let need = "needs a button: set line (e.g. \"GPIO17\") or chip + offset in [button]";
    let (l, c, m) = err("[session]\nwake = \"Button\"\n");
    assert_eq!((l, c), (2, 8), "{m}");
    assert_eq!(
        m,
        format!(
            "wake = \"button\" {need}, or control_socket in [service] to wake it with \
             `gemlive ctl wake`, or url in [mqtt] to wake it from Home Assistant"
        )
    );
    // The control interface can wake it instead.
    let c = parse("[session]\nwake = \"button\"\n[service]\ncontrol_socket = \"/run/g.sock\"\n")
        .expect("control socket instead of a button");
    assert_eq!(
        c.service.control_socket.as_deref(),
        Some(std::path::Path::new("/run/g.sock"))
    );
    let (l, c, m) = err("[button]\nmode = \"push_to_talk\"\n");
    assert_eq!((l, c), (2, 8), "{m}");
    assert_eq!(m, format!("mode = \"push_to_talk\" {need}"));
    // Tables in either order; an LED alone is not a button.
    let (l, c, m) =
        err("[button]\nled_line = \"GPIO27\"\nbias = \"as_is\"\n[session]\nwake = \"button\"\n");
    assert_eq!((l, c), (5, 8), "{m}");
    for text in [
        "[session]\nwake = \"button\"\n[button]\nline = \"GPIO17\"\n",
        "[button]\nchip = \"gpiochip0\"\noffset = 17\nmode = \"push_to_talk\"\n\
         [session]\nwake = \"button\"\n",
        "[button]\nline = \"GPIO17\"\nmode = \"push_to_talk\"\n",
    ] {
        let c = parse(text).expect(text);
        assert!(c.button.configured(), "{text}");
    }
}

#[test]
fn line_spec_parse() {
    assert_eq!(LineSpec::parse(" "), None);
    assert_eq!(
        LineSpec::parse("GPIO17"),
        Some(LineSpec::Name("GPIO17".into()))
    );
    assert_eq!(
        LineSpec::parse("gpiochip0 : 5"),
        Some(LineSpec::ChipOffset {
            chip: "gpiochip0".into(),
            offset: 5
        })
    );
    assert_eq!(LineSpec::parse("gpiochip0:99999999999"), None);
    assert_eq!(LineSpec::parse("a:b"), Some(LineSpec::Name("a:b".into())));
    assert_eq!(LineSpec::Name("GPIO17".into()).to_string(), "GPIO17");
    assert_eq!(
        LineSpec::ChipOffset {
            chip: "gpiochip0".into(),
            offset: 17
        }
        .to_string(),
        "gpiochip0 line 17"
    );
}

#[test]
fn relative_api_key_file_is_relative_to_config_dir() {
    let c = parse("[live]\napi_key_file = \"key\"\n").expect("valid");
    assert_eq!(c.live.api_key_file, Some(PathBuf::from("/etc/gemlive/key")));
    let (_, _, m) = err("[live]\napi_key_file = \"~/key\"\n");
    assert!(m.contains("`~` is not expanded"), "{m}");
    let (_, _, m) = err("[live]\napi_key_file = \"\"\n");
    assert!(m.contains("api_key_file"), "{m}");
}

#[test]
fn value_errors_point_at_the_value() {
    // (text, line, col, words that must appear)
    let cases: &[(&str, usize, usize, &[&str])] = &[
        (
            "[live]\nmedia_resolution = \"ultra\"\n",
            2,
            20,
            &[
                "\"ultra\"",
                "media_resolution",
                "allowed: low, medium, high",
            ],
        ),
        (
            "[live]\nvoice = \"Ko re\"\n",
            2,
            9,
            &["\"Ko re\"", "letters, digits", "e.g. \"Kore\""],
        ),
        (
            "[live]\nlanguage_code = \"German\"\n",
            2,
            17,
            &["\"German\"", "BCP-47", "\"de-DE\""],
        ),
        (
            "[live]\ntemperature = 2.5\n",
            2,
            15,
            &["2.5", "temperature", "0.0..=2.0"],
        ),
        (
            "[live]\nauth = \"ephemeral\"\n",
            2,
            8,
            &["needs a token source", "token_command", "token_url"],
        ),
        (
            "[live]\ntoken_command = \"/bin/t\"\n",
            2,
            17,
            &["only used with auth = \"ephemeral\""],
        ),
        (
            "[live]\nauth = \"ephemeral\"\ntoken_url = \"http://tokens.example.com/\"\n",
            3,
            13,
            &["https://"],
        ),
        (
            "[live]\nendpoint = \"ws://192.168.1.5/\"\n",
            2,
            12,
            &["endpoint", "loopback", "wss://"],
        ),
        (
            "[live]\nendpoint = \"https://x/\"\n",
            2,
            12,
            &["endpoint", "unsupported scheme `https`"],
        ),
        (
            "[live]\nsetup_timeout_ms = 999\n",
            2,
            20,
            &["invalid value 999", "setup_timeout_ms", "1000..=120000"],
        ),
        (
            "[live]\nsetup_timeout_ms = -1\n",
            2,
            20,
            &["invalid value -1", "1000..=120000"],
        ),
        (
            "[live]\nsetup_timeout_ms = \"10s\"\n",
            2,
            20,
            &[
                "wrong type for setup_timeout_ms",
                "an integer",
                "string \"10s\"",
            ],
        ),
        (
            "[live]\ninput_transcription = \"yes\"\n",
            2,
            23,
            &["wrong type for input_transcription", "true or false"],
        ),
        (
            "[live]\nvoice = 3\n",
            2,
            9,
            &["wrong type for voice", "integer 3"],
        ),
        (
            "[audio]\nchunk_ms = 10\n",
            2,
            12,
            &["invalid value 10 for chunk_ms in [audio]", "20..=100"],
        ),
        (
            "[audio]\nchunk_ms = 101\n",
            2,
            12,
            &["invalid value 101", "20..=100 (milliseconds)"],
        ),
        (
            "[audio]\nchunk_ms = 40.0\n",
            2,
            12,
            &["wrong type for chunk_ms", "float 40"],
        ),
        (
            "[audio]\ncapture_device = \"\"\n",
            2,
            18,
            &["capture_device", "gemlive list-devices"],
        ),
        (
            "[audio]\nplayback_device = [\"a\"]\n",
            2,
            19,
            &["wrong type for playback_device", "found array"],
        ),
        (
            "[session]\nwake = \"clap\"\n",
            2,
            8,
            &["\"clap\"", "wake in [session]", "allowed: always, button"],
        ),
        (
            "live = 5\n",
            1,
            8,
            &["`live` must be a table", "integer `5`"],
        ),
        (
            "[[audio]]\n",
            1,
            1,
            &["`audio` must be a table", "[[audio]]"],
        ),
        (
            "[live]\nsetup_timeout_ms = 99999999999999999999\n",
            2,
            20,
            &["invalid value for setup_timeout_ms"],
        ),
    ];
    for (text, line, col, words) in cases {
        let (l, c, m) = err(text);
        assert_eq!((l, c), (*line, *col), "{text:?}: {m}");
        for w in *words {
            assert!(m.contains(w), "{text:?}: {m:?} lacks {w:?}");
        }
    }
}

#[test]
fn unknown_keys_point_at_the_key_and_suggest() {
    let cases: &[(&str, usize, usize, &str)] = &[
        (
            "[live]\nvoise = \"Kore\"\n",
            2,
            1,
            "unknown key `voise` in [live]; did you mean `voice`?",
        ),
        (
            "[audoi]\n",
            1,
            2,
            "unknown table `[audoi]`; did you mean `[audio]`?",
        ),
        (
            "\n[live]\n  timeout = 5\n",
            3,
            3,
            "unknown key `timeout` in [live]; did you mean `setup_timeout_ms`?",
        ),
        (
            "[audio]\nchunk-ms = 40\n",
            2,
            1,
            "unknown key `chunk-ms` in [audio]; did you mean `chunk_ms`?",
        ),
        (
            "[session]\nfoo = 1\n",
            2,
            1,
            "unknown key `foo` in [session]; valid keys: wake, idle_timeout_s, \
             max_session_s, chimes",
        ),
        (
            "[live]\nresumtion = true\n",
            2,
            1,
            "unknown key `resumtion` in [live]; did you mean `resumption`?",
        ),
        (
            "[live]\nvolume = 50\n",
            2,
            1,
            "unknown key `volume` in [live]; it belongs in [audio]",
        ),
        (
            "[audio]\nbacklog = 5000\n",
            2,
            1,
            "unknown key `backlog` in [audio]; did you mean `backlog_ms`?",
        ),
        (
            "[live]\nping_interval = 10\n",
            2,
            1,
            "unknown key `ping_interval` in [live]; did you mean `ping_interval_s`?",
        ),
        (
            "[audio]\nvoice = \"Kore\"\n",
            2,
            1,
            "unknown key `voice` in [audio]; it belongs in [live]",
        ),
        (
            "voice = \"Kore\"\n",
            1,
            1,
            "key `voice` must be inside a table: put it under [live]",
        ),
        (
            "[camera]\n",
            1,
            2,
            "unknown table `[camera]`; did you mean `[video]`?",
        ),
        (
            "[vidoe]\n",
            1,
            2,
            "unknown table `[vidoe]`; did you mean `[video]`?",
        ),
        (
            "[display]\n",
            1,
            2,
            "unknown table `[display]`; valid tables: [live], [audio], [video], [session], \
             [wake], [button], [tools], [service]",
        ),
        (
            "[video]\nframerate = 1\n",
            2,
            1,
            "unknown key `framerate` in [video]; valid keys: enabled, device, capture_size, \
             fps, send, size, geometry, quality",
        ),
        (
            "[video]\ngeometery = \"crop\"\n",
            2,
            1,
            "unknown key `geometery` in [video]; did you mean `geometry`?",
        ),
        (
            "[video]\nmedia_resolution = \"low\"\n",
            2,
            1,
            "unknown key `media_resolution` in [video]; it belongs in [live]",
        ),
        (
            "[live]\nfps = 1\n",
            2,
            1,
            "unknown key `fps` in [live]; it belongs in [video]",
        ),
        (
            "[audio]\ndevice = \"hw:1\"\n",
            2,
            1,
            "unknown key `device` in [audio]; did you mean `capture_device` or \
             `playback_device`? (`device` alone belongs in [video])",
        ),
        (
            "geometry = \"crop\"\n",
            1,
            1,
            "key `geometry` must be inside a table: put it under [video]",
        ),
        (
            "[live.extra]\n",
            1,
            7,
            "unknown key `extra` in [live]; valid keys: endpoint",
        ),
        (
            "[gpio]\n",
            1,
            2,
            "unknown table `[gpio]`; did you mean `[button]`?",
        ),
        (
            "[logging]\n",
            1,
            2,
            "unknown table `[logging]`; did you mean `[service]`?",
        ),
        (
            "[buton]\n",
            1,
            2,
            "unknown table `[buton]`; did you mean `[button]`?",
        ),
        (
            "[button]\npin = 17\n",
            2,
            1,
            "unknown key `pin` in [button]; did you mean `line` (a line name such as \
             \"GPIO17\") or `offset` (with `chip`)?",
        ),
        (
            "[button]\nled = \"GPIO27\"\n",
            2,
            1,
            "unknown key `led` in [button]; did you mean `led_line`?",
        ),
        (
            "[button]\nled_pin = 27\n",
            2,
            1,
            "unknown key `led_pin` in [button]; did you mean `led_line`?",
        ),
        (
            "[button]\npull_up = true\n",
            2,
            1,
            "unknown key `pull_up` in [button]; did you mean `bias` (\"pull_up\", \
             \"pull_down\", \"disabled\" or \"as_is\")?",
        ),
        (
            "[button]\nactive_high = true\n",
            2,
            1,
            "unknown key `active_high` in [button]; did you mean `active_low` (true = \
             pressed connects the pin to ground)?",
        ),
        (
            "[button]\nenabled = true\n",
            2,
            1,
            "unknown key `enabled` in [button]; the button is on when `line` (or `chip` + \
             `offset`) is set",
        ),
        (
            "[button]\ndebounce = 30\n",
            2,
            1,
            "unknown key `debounce` in [button]; did you mean `debounce_ms`?",
        ),
        (
            "[button]\ngpiochip = \"gpiochip0\"\n",
            2,
            1,
            "unknown key `gpiochip` in [button]; did you mean `chip`?",
        ),
        (
            "[button]\nwake = \"button\"\n",
            2,
            1,
            "unknown key `wake` in [button]; it belongs in [session]",
        ),
        (
            "[session]\nmode = \"toggle\"\n",
            2,
            1,
            "unknown key `mode` in [session]; it belongs in [button]",
        ),
        (
            "[session]\ntimeout = 60\n",
            2,
            1,
            "unknown key `timeout` in [session]; did you mean `idle_timeout_s`?",
        ),
        (
            "[session]\nmax_session = 600\n",
            2,
            1,
            "unknown key `max_session` in [session]; did you mean `max_session_s`?",
        ),
        (
            "[session]\nsounds = false\n",
            2,
            1,
            "unknown key `sounds` in [session]; did you mean `chimes`?",
        ),
        (
            "[audio]\nhalf_duplex = true\n",
            2,
            1,
            "unknown key `half_duplex` in [audio]; did you mean `echo` (\"aec\", \
             \"half_duplex\" or \"none\")?",
        ),
        (
            "[audio]\necho_tail = 300\n",
            2,
            1,
            "unknown key `echo_tail` in [audio]; did you mean `echo_tail_ms`?",
        ),
        (
            "[service]\nlog = \"debug\"\n",
            2,
            1,
            "unknown key `log` in [service]; did you mean `log_level`?",
        ),
        (
            "log_level = \"debug\"\n",
            1,
            1,
            "key `log_level` must be inside a table: put it under [service]",
        ),
        (
            "line = \"GPIO17\"\n",
            1,
            1,
            "key `line` must be inside a table: put it under [button]",
        ),
        (
            "[session]\nwake = \"always\"\n[live]\nmodel = \"m\"\nvoice_name = \"Puck\"\n",
            5,
            1,
            "did you mean `voice`?",
        ),
    ];
    for (text, line, col, want) in cases {
        let (l, c, m) = err(text);
        assert_eq!((l, c), (*line, *col), "{text:?}: {m}");
        assert!(m.starts_with(want) || m.contains(want), "{text:?}: {m:?}");
    }
}

#[test]
fn api_key_in_the_file_is_refused_without_echoing_it() {
    let (l, c, m) = err("[live]\nvoice = \"Kore\"\napi_key = \"AIzaSECRET\"\n");
    assert_eq!((l, c), (3, 1));
    for w in [
        "does not belong",
        "api_key_file",
        "GEMINI_API_KEY",
        "gemini-api-key",
    ] {
        assert!(m.contains(w), "{m}");
    }
    assert!(!m.contains("AIzaSECRET"));
}

#[test]
fn syntax_errors_have_positions() {
    let (l, c, m) = err("[live]\nvoice = \"Kore\n");
    assert_eq!(l, 2, "{m}");
    assert!(c >= 9, "{c}: {m}");
    assert!(m.starts_with("TOML syntax error"), "{m}");

    let (l, c, m) = err("[live\n");
    assert_eq!((l, c), (1, 6), "{m}");

    let (l, c, m) = err("[live]\nvoice = \"Kore\"\nvoice = \"Puck\"\n");
    assert_eq!((l, c), (3, 1), "{m}");
    assert!(m.contains("duplicate key `voice`"), "{m}");

    let (l, c, m) = err("[live]\n[audio]\n[live]\n");
    assert_eq!((l, c), (3, 2), "{m}");
    assert!(m.contains("duplicate table `[live]`"), "{m}");
}

#[test]
fn error_display_is_path_line_col() {
    let e = parse("[live]\nvoise = 1\n").unwrap_err();
    assert_eq!(e.line_col(), Some((2, 1)));
    assert!(
        e.to_string()
            .starts_with("/etc/gemlive/gemlive.toml:2:1: unknown key `voise`"),
        "{e}"
    );
}

#[test]
fn line_col_counts_chars() {
    let t = "a\nbé = 1\n\nx";
    assert_eq!(line_col(t, 0), (1, 1));
    assert_eq!(line_col(t, 1), (1, 2));
    assert_eq!(line_col(t, 2), (2, 1));
    assert_eq!(line_col(t, 5), (2, 3)); // after "bé" (é is 2 bytes)
    assert_eq!(line_col(t, 4), (2, 2)); // inside é: floored
    assert_eq!(line_col(t, t.len()), (4, 2));
    assert_eq!(line_col(t, t.len() + 10), (4, 2));
    assert_eq!(line_col("", 0), (1, 1));
}

#[test]
fn suggestions() {
    assert_eq!(edit_distance("audoi", "audio"), 1);
    assert_eq!(edit_distance("voise", "voice"), 1);
    assert_eq!(edit_distance("", "abc"), 3);
    assert_eq!(suggest("voise", &keys_in("live")), Some("voice"));
    assert_eq!(suggest("Model", &keys_in("live")), Some("model"));
    assert_eq!(suggest("xyz", &keys_in("live")), None);
    assert_eq!(suggest("transcription", &keys_in("live")), None); // ambiguous
    assert_eq!(suggest("device", &keys_in("audio")), None); // ambiguous
    assert_eq!(
        suggest("capture", &keys_in("audio")),
        Some("capture_device")
    );
    assert_eq!(suggest_voice("kroe"), Some("Kore"));
    assert_eq!(suggest_voice("zzzzzzz"), None);
}

#[test]
fn key_lists_match_the_raw_structs() {
    // Every listed key is accepted by serde (a wrong type reaches stage 2, not "unknown").
    for (table, keys) in sections() {
        for key in keys {
            let (_, _, m) = err(&format!("[{table}]\n{key} = [[]]\n"));
            assert!(m.starts_with("wrong type"), "{table}.{key}: {m}");
        }
    }
}

#[test]
fn config_path_from_env() {
    assert_eq!(
        default_config_path(no_env),
        PathBuf::from(DEFAULT_CONFIG_PATH)
    );
    let env = |k: &str| (k == "GEMLIVE_CONFIG").then(|| "/tmp/x.toml".to_string());
    assert_eq!(default_config_path(env), PathBuf::from("/tmp/x.toml"));
    let empty = |k: &str| (k == "GEMLIVE_CONFIG").then(String::new);
    assert_eq!(
        default_config_path(empty),
        PathBuf::from(DEFAULT_CONFIG_PATH)
    );
}

#[test]
fn load_missing_file_names_path_and_options() {
    let e = load(Path::new("/nonexistent/gemlive.toml")).unwrap_err();
    let m = e.to_string();
    assert!(m.contains("/nonexistent/gemlive.toml"), "{m}");
    assert!(
        m.contains("--config PATH") && m.contains("$GEMLIVE_CONFIG"),
        "{m}"
    );
}

#[test]
fn api_key_debug_is_redacted() {
    let k = ApiKey::new("AIzaSECRET");
    assert_eq!(format!("{k:?}"), "ApiKey(<redacted>)");
    assert_eq!(format!("{:?}", Some(k.clone())), "Some(ApiKey(<redacted>))");
    assert_eq!(k.expose(), "AIzaSECRET");
}

/// A scratch directory removed on drop.
struct TempDir(PathBuf);
impl TempDir {
    fn new(name: &str) -> Self {
        let p = std::env::temp_dir().join(format!("gemlive-config-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("temp dir");
        TempDir(p)
    }
    fn file(&self, name: &str, content: &str, mode: u32) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, content).expect("write");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).expect("chmod");
        p
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn live_with_file(p: Option<PathBuf>) -> LiveConfig {
    LiveConfig {
        api_key_file: p,
        ..LiveConfig::default()
    }
}

const SECRET: &str = "AIzaTESTKEY0123456789";

#[test]
fn api_key_resolution() {
    let dir = TempDir::new("keys");
    let good = dir.file("good", &format!("  {SECRET}\n"), 0o600);
    let loose = dir.file("loose", SECRET, 0o644);
    let empty = dir.file("empty", " \n", 0o600);
    let two = dir.file("two", &format!("{SECRET}\nmore\n"), 0o400);
    let cred_dir = TempDir::new("creds");
    cred_dir.file(CREDENTIAL_NAME, &format!("{SECRET}\n"), 0o444);
    let cred = cred_dir.0.to_string_lossy().into_owned();
    let env_key = |k: &str| (k == API_KEY_ENV).then(|| "envkey".to_string());
    let env_cred = |k: &str| (k == "CREDENTIALS_DIRECTORY").then(|| cred.clone());
    let env_both = |k: &str| match k {
        API_KEY_ENV => Some("envkey".to_string()),
        "CREDENTIALS_DIRECTORY" => Some(cred.clone()),
        _ => None,
    };

    // 0600 file wins over the environment.
    let (k, s) = resolve_api_key(&live_with_file(Some(good.clone())), env_both)
        .expect("ok")
        .expect("some");
    assert_eq!(k.expose(), SECRET);
    assert_eq!(s, KeySource::File(good.clone()));

    // Env wins over the credential.
    let (k, s) = resolve_api_key(&live_with_file(None), env_both)
        .expect("ok")
        .expect("some");
    assert_eq!((k.expose(), s), ("envkey", KeySource::Env));
    let (k, _) = resolve_api_key(&live_with_file(None), env_key)
        .expect("ok")
        .expect("some");
    assert_eq!(k.expose(), "envkey");

    // The systemd credential (mode 0444 is fine there).
    let (k, s) = resolve_api_key(&live_with_file(None), env_cred)
        .expect("ok")
        .expect("some");
    assert_eq!(k.expose(), SECRET);
    assert_eq!(s, KeySource::Credential(cred_dir.0.join(CREDENTIAL_NAME)));

    // Nothing anywhere; an empty variable and a credential dir without the file count as unset.
    assert!(resolve_api_key(&live_with_file(None), no_env)
        .expect("ok")
        .is_none());
    let empty_env = |k: &str| match k {
        API_KEY_ENV => Some("  ".to_string()),
        "CREDENTIALS_DIRECTORY" => Some(dir.0.to_string_lossy().into_owned()),
        _ => None,
    };
    assert!(resolve_api_key(&live_with_file(None), empty_env)
        .expect("ok")
        .is_none());

    // Last resort: the service's key file, under the same 0600 rule; a missing one is unset.
    let (k, s) = resolve_api_key_with(&live_with_file(None), no_env, &good)
        .expect("ok")
        .expect("some");
    assert_eq!((k.expose(), s), (SECRET, KeySource::ServiceFile));
    assert!(resolve_api_key_with(&live_with_file(None), no_env, &loose)
        .unwrap_err()
        .to_string()
        .contains("chmod 600"));
    assert!(
        resolve_api_key_with(&live_with_file(None), no_env, &dir.0.join("absent"))
            .expect("ok")
            .is_none()
    );
    let (_, s) = resolve_api_key_with(&live_with_file(None), env_key, &good)
        .expect("ok")
        .expect("some");
    assert_eq!(
        s,
        KeySource::Env,
        "the environment wins over the service's file"
    );

    // Refusals: each names the file and never the key.
    let cases: &[(PathBuf, &str)] = &[
        (loose.clone(), "chmod 600"),
        (empty, "is empty"),
        (two, "only the key"),
        (dir.0.join("absent"), "cannot read api_key_file"),
    ];
    for (path, want) in cases {
        let e = resolve_api_key(&live_with_file(Some(path.clone())), env_both).unwrap_err();
        let m = e.to_string();
        assert!(m.contains(want), "{m}");
        assert!(m.starts_with(&path.display().to_string()), "{m}");
        assert!(
            !m.contains(SECRET) && !format!("{e:?}").contains(SECRET),
            "{m}"
        );
    }
    let m = resolve_api_key(&live_with_file(Some(loose.clone())), no_env)
        .unwrap_err()
        .to_string();
    assert!(m.contains(&format!("chmod 600 {}", loose.display())), "{m}");
    assert!(m.contains("0644"), "{m}");

    let bad_env = |k: &str| (k == API_KEY_ENV).then(|| format!("{API_KEY_ENV}=a b"));
    let m = resolve_api_key(&live_with_file(None), bad_env)
        .unwrap_err()
        .to_string();
    assert!(m.starts_with("GEMINI_API_KEY: "), "{m}");
}

#[test]
fn summary_shows_settings_but_never_the_key() {
    let mut c = Config::with_defaults(P);
    let s = summary(&c, &Ok(Some(KeySource::Env)));
    assert!(s.lines().count() <= 22, "{s}");
    for w in [
        "config: /etc/gemlive/gemlive.toml (ok)",
        "model: models/gemini-3.1-flash-live-preview",
        "voice: Kore",
        "system instruction: (none)",
        "conversation: the server's defaults",
        "transcription: input on, output on",
        "audio devices: mic default, speaker default",
        "one hour streaming sends: 3600 s of mic audio (~90,000 tokens, 159 MB on the wire), \
         3,600 frames 768×768 (~230,400 tokens at 64/frame); less when the mic pauses in silence",
        "chunk: 40 ms, mic backlog 10000 ms, volume 100%",
        "video: /dev/video0 (capture auto), 1 frame/s always, 768×768 letterbox, \
         JPEG quality 80, media resolution low",
        "session: setup timeout 10000 ms, resumption on, compression 25600→12800 tokens, hand-over at 540 s, \
         ping 15 s, dead after 45 s, stalled after 5 s, max message 4096 KiB",
        "reconnect: backoff 0.5 s…30 s, config errors wait 60 s (doubling up to 900 s)",
        "tools: end_session, set_volume",
        "echo: echo cancellation (AEC3; mic muted while it converges, 300 ms tail); \
         noise suppression moderate, automatic gain off\n",
        "wake: always, max session unlimited, chimes on\n",
        "button: none\n",
        "log level: info (-v and GEMLIVE_LOG override it)\n",
        "control interface: off; hooks: none; mqtt: off; metrics: off\n",
        "api key: set (from GEMINI_API_KEY)",
    ] {
        assert!(s.contains(w), "{s} lacks {w}");
    }
    let s = summary(&c, &Ok(None));
    assert!(
        s.contains("api key: missing — put it in /etc/gemlive/api-key (chmod 600), or set api_key_file, GEMINI_API_KEY or the systemd credential gemini-api-key"),
        "{s}"
    );
    c.live.compression_trigger_tokens = 0;
    c.live.resumption = false;
    c.tools.builtin = false;
    c.live.config_error_delay_s = 3600;
    c.video.enabled = false;
    let s = summary(&c, &Ok(None));
    assert!(s.lines().count() <= 22, "{s}");
    for w in [
        "session: setup timeout 10000 ms, resumption off, compression off, hand-over",
        "config errors wait 3600 s (doubling up to 3600 s)",
        "tools: none",
        "video: off (audio only)",
    ] {
        assert!(s.contains(w), "{s} lacks {w}");
    }
    c.video = VideoConfig {
        capture_size: Some((1280, 720)),
        fps: 0.5,
        send: VideoSend::WhileSpeaking,
        geometry: Geometry::Fit,
        quality: 60,
        ..VideoConfig::default()
    };
    let s = summary(&c, &Ok(None));
    assert!(
        s.contains(
            "video: /dev/video0 (capture 1280x720), 0.5 frame/s while speaking, long side \
             768 px fit, JPEG quality 60, media resolution low\n"
        ),
        "{s}"
    );
    c.session = SessionConfig {
        wake: Wake::Button,
        ..SessionConfig::default()
    };
    c.button.line = Some("GPIO17".into());
    c.button.led_line = Some("gpiochip0:27".into());
    c.audio.echo = EchoMode::HalfDuplex;
    c.service.log_level = LogLevel::Debug;
    let s = summary(&c, &Ok(None));
    assert!(s.lines().count() <= 22, "{s}");
    for w in [
        "echo: half duplex (mic muted while a reply plays and 300 ms after); noise \
         suppression moderate, automatic gain off\n",
        "wake: button, idle after 120 s without speech, max session unlimited, chimes on\n",
        "button: GPIO17 (active low, pull-up, debounce 30 ms), toggle (long press 1500 ms \
         ends), LED gpiochip0 line 27\n",
        "log level: debug",
    ] {
        assert!(s.contains(w), "{s} lacks {w}");
    }
    c.session.idle_timeout_s = 0;
    c.session.max_session_s = 600;
    c.session.chimes = false;
    c.button = ButtonConfig {
        chip: Some("gpiochip4".into()),
        offset: Some(17),
        active_low: false,
        bias: Bias::Disabled,
        debounce_ms: 0,
        mode: ButtonMode::PushToTalk,
        ..ButtonConfig::default()
    };
    let s = summary(&c, &Ok(None));
    for w in [
        "wake: button, never idles, max session 600 s, chimes off\n",
        "button: gpiochip4 line 17 (active high, no pull, no debounce), push to talk\n",
    ] {
        assert!(s.contains(w), "{s} lacks {w}");
    }
    c.live.system_instruction = "x".repeat(100);
    let s = summary(&c, &Ok(None));
    assert!(
        s.contains(&format!("\"{}…\" (100 chars)", "x".repeat(60))),
        "{s}"
    );

    let dir = TempDir::new("summary");
    let p = dir.file("k", SECRET, 0o600);
    let live = live_with_file(Some(p.clone()));
    let status = api_key_status(&live, no_env);
    assert_eq!(status.as_ref().ok(), Some(&Some(KeySource::File(p))));
    let s = summary(&c, &status);
    assert!(s.contains("api key: set (from api_key_file "), "{s}");
    assert!(!s.contains(SECRET));
}

/// Makes a FIFO at `path`: the file type that used to hang start-up.
fn mkfifo(path: &Path) {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).expect("no NUL in a temp path");
    // SAFETY: `c` is a valid NUL-terminated path that outlives the call.
    let r = unsafe { libc::mkfifo(c.as_ptr(), 0o600) };
    assert_eq!(r, 0, "mkfifo {}", path.display());
}

/// Runs `f` on another thread and fails the test if it does not return within 5 s, so a
/// regression that blocks on a FIFO fails instead of hanging the test run.
fn promptly<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(std::time::Duration::from_secs(5))
        .unwrap_or_else(|_| panic!("{what} blocked"))
}

#[test]
fn config_file_must_be_a_regular_file_of_at_most_1_mib() {
    let dir = TempDir::new("config-files");
    let fifo = dir.0.join("fifo.toml");
    mkfifo(&fifo);
    let big = dir.0.join("big.toml");
    std::fs::write(&big, "#".repeat(MAX_CONFIG_BYTES as usize + 1)).expect("write");
    let cases: &[(PathBuf, &str)] = &[
        (fifo.clone(), "is a FIFO (named pipe), not a regular file"),
        (PathBuf::from("/dev/null"), "is a character device"),
        (PathBuf::from("/dev/zero"), "is a character device"),
        (dir.0.clone(), "is a directory"),
        (big, "is larger than 1 MiB, the limit for a config file"),
    ];
    for (path, want) in cases {
        let p = path.clone();
        let m = promptly("loading a config", move || load(&p).map(|_| ()))
            .unwrap_err()
            .to_string();
        assert!(
            m.starts_with(&format!("config file {}: ", path.display())),
            "{m}"
        );
        assert!(m.contains(want), "{m}");
    }

    // Up to the limit is fine, and a symlink to a regular file is followed.
    let ok = dir.file("ok.toml", &format!("[live]\n{}", "#\n".repeat(1000)), 0o644);
    let link = dir.0.join("link.toml");
    std::os::unix::fs::symlink(&ok, &link).expect("symlink");
    assert!(load(&ok).is_ok());
    assert!(load(&link).is_ok());
    let m = load(&dir.file("bin.toml", "", 0o644))
        .map(|_| ())
        .err()
        .map(|e| e.to_string());
    assert_eq!(m, None, "an empty file is a config of defaults");
    std::fs::write(dir.0.join("bin.toml"), [0xFF, 0xFE]).expect("write");
    let m = load(&dir.0.join("bin.toml")).unwrap_err().to_string();
    assert!(m.contains("cannot read config file"), "{m}");
}

#[test]
fn key_file_must_be_a_small_regular_file() {
    let dir = TempDir::new("key-types");
    let fifo = dir.0.join("fifo");
    mkfifo(&fifo);
    std::fs::set_permissions(&fifo, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let big = dir.file("big", &"A".repeat(MAX_KEY_FILE_BYTES as usize + 1), 0o600);
    let subdir = dir.0.join("subdir");
    std::fs::create_dir(&subdir).expect("mkdir");
    std::fs::set_permissions(&subdir, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    let cases: &[(PathBuf, &str)] = &[
        (
            fifo.clone(),
            "api_key_file is a FIFO (named pipe), not a regular file",
        ),
        (PathBuf::from("/dev/null"), "is a character device"),
        (subdir, "is a directory"),
        (big, "is larger than 4 KiB, the limit for a key file"),
    ];
    for (path, want) in cases {
        let live = live_with_file(Some(path.clone()));
        let m = promptly("reading a key file", move || {
            resolve_api_key(&live, no_env).map(|_| ())
        })
        .unwrap_err()
        .to_string();
        assert!(m.starts_with(&path.display().to_string()), "{m}");
        assert!(m.contains(want), "{m}");
    }

    // The service's key file and the systemd credential get the same treatment.
    let f = fifo.clone();
    let m = promptly("probing the service key file", move || {
        resolve_api_key_with(&live_with_file(None), no_env, &f).map(|_| ())
    })
    .unwrap_err()
    .to_string();
    assert!(m.contains("is a FIFO"), "{m}");
    let cred_dir = TempDir::new("key-types-cred");
    mkfifo(&cred_dir.0.join(CREDENTIAL_NAME));
    let cred = cred_dir.0.to_string_lossy().into_owned();
    let m = promptly("reading the credential", move || {
        let env = |k: &str| (k == "CREDENTIALS_DIRECTORY").then(|| cred.clone());
        resolve_api_key(&live_with_file(None), env).map(|_| ())
    })
    .unwrap_err()
    .to_string();
    assert!(
        m.contains("systemd credential gemini-api-key is a FIFO"),
        "{m}"
    );
}

#[test]
fn key_file_must_hold_the_bare_key_on_one_line() {
    let dir = TempDir::new("key-shapes");
    let cases: &[(&str, String, &str)] = &[
        (
            "assignment",
            format!("GEMINI_API_KEY={SECRET}\n"),
            "remove `GEMINI_API_KEY=`",
        ),
        (
            "export",
            format!("export GEMINI_API_KEY={SECRET}\n"),
            "remove `export GEMINI_API_KEY=`",
        ),
        (
            "lowercase",
            format!("gemini_key = \"{SECRET}\"\n"),
            "remove the `NAME=` before the key",
        ),
        ("quoted", format!("\"{SECRET}\"\n"), "remove the quotes"),
        ("single-quoted", format!("'{SECRET}'"), "remove the quotes"),
        (
            "two-lines",
            format!("{SECRET}\n\n{SECRET}\n"),
            "holds 2 non-empty lines",
        ),
        ("spaces", format!("{SECRET} x"), "only the key"),
    ];
    for (name, content, want) in cases {
        let path = dir.file(name, content, 0o600);
        let e = resolve_api_key(&live_with_file(Some(path.clone())), no_env).unwrap_err();
        let m = e.to_string();
        assert!(m.starts_with(&path.display().to_string()), "{name}: {m}");
        assert!(m.contains(want), "{name}: {m}");
        assert!(m.contains("only the key"), "{name}: {m}");
        assert!(
            !m.contains(&SECRET[4..]) && !format!("{e:?}").contains(&SECRET[4..]),
            "{name}: {m}"
        );
    }

    // Still a key: surrounding blank lines and whitespace, `=` padding, exactly 4 KiB.
    for (name, content) in [
        ("padded", format!("\n\n  {SECRET}  \r\n\n")),
        ("base64", "c2VjcmV0a2V5=".to_string()),
        ("limit", "A".repeat(MAX_KEY_FILE_BYTES as usize)),
    ] {
        let path = dir.file(name, &content, 0o600);
        let (k, _) = resolve_api_key(&live_with_file(Some(path)), no_env)
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .expect("some");
        assert_eq!(k.expose(), content.trim(), "{name}");
    }

    // The same mistakes in the variable.
    let env = |k: &str| (k == API_KEY_ENV).then(|| format!("'{SECRET}'"));
    let m = resolve_api_key(&live_with_file(None), env)
        .unwrap_err()
        .to_string();
    assert!(
        m.starts_with("GEMINI_API_KEY: the variable must hold only the key itself"),
        "{m}"
    );
}

#[test]
fn command_tools_and_their_errors_point_at_the_entry() {
    let path = Path::new("/etc/gemlive/gemlive.toml");
    let c = parse_str(
        "[tools]\nbuiltin = false\n\n[[tools.command]]\nname = \"lights\"\ndescription = \"Lights.\"\ncommand = [\"/bin/true\"]\n",
        path,
    )
    .unwrap();
    assert!(!c.tools.builtin);
    assert_eq!(c.tools.command[0].name, "lights");
    let e = parse_str(
        "[[tools.command]]\nname = \"a\"\ndescription = \"A.\"\ncommand = [\"x\"]\n\n  [[tools.command]]\nname = \"a b\"\ndescription = \"B.\"\ncommand = [\"x\"]\n",
        path,
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.starts_with("/etc/gemlive/gemlive.toml:6:3: [[tools.command]] #2: invalid tool name"),
        "{e}"
    );
    let e = parse_str("[live]\ntools = false\n", path)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("write `builtin = true` (or `false`) under [tools]"),
        "{e}"
    );
}

#[test]
fn conversation_keys_and_tokens_are_summarised() {
    let c = parse(
        "[live]\nlanguage_code = \"de-DE\"\nvad_start_sensitivity = \"LOW\"\nvad_end_sensitivity = \"high\"\n\
         vad_prefix_padding_ms = 100\nvad_silence_ms = 900\nbarge_in = false\ngoogle_search = true\n\
         thinking_level = \"low\"\ntemperature = 1\nproactive_audio = true\naffective_dialog = false\n\
         auth = \"ephemeral\"\ntoken_command = [\"/usr/local/bin/gemlive-token\", \"kitchen\"]\n",
    )
    .expect("every conversation key");
    assert_eq!(c.live.temperature, Some(1.0));
    assert_eq!(
        c.live.endpoint,
        crate::live::transport::CONSTRAINED_ENDPOINT,
        "ephemeral without an endpoint of its own: the constrained one"
    );
    let s = summary(&c, &Ok(None));
    assert!(s.lines().count() <= 22, "{s}");
    for w in [
        "conversation: language de-DE, voice detection start low end high prefix 100 ms silence \
         900 ms, no barge-in on the server, Google Search, thinking low, temperature 1, proactive \
         audio on, affective dialog off\n",
        "auth: ephemeral tokens from token_command /usr/local/bin/gemlive-token kitchen, a new \
         one per session (no API key on this box)\n",
    ] {
        assert!(s.contains(w), "{s} lacks {w}");
    }
    assert!(!s.contains("api key:"), "{s}");
    // An endpoint of the owner's own is kept.
    let c = parse(
        "[live]\nendpoint = \"ws://127.0.0.1:9/x\"\nauth = \"ephemeral\"\ntoken_url = \"http://127.0.0.1:8/t\"\n",
    )
    .expect("loopback token url");
    assert_eq!(c.live.endpoint, "ws://127.0.0.1:9/x");
}

#[test]
fn unknown_voices_are_taken_with_a_warning() {
    let c = parse("[live]\nvoice = \"Tavi\"\n").expect("any voice name");
    assert_eq!(c.live.voice, "Tavi");
    let w = warnings(&c);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].contains("\"Tavi\"") && w[0].contains("not one of the 30"),
        "{w:?}"
    );
    let c = parse("[live]\nvoice = \"kroe\"\n").expect("a typo is a name too");
    assert!(warnings(&c)[0].contains("did you mean Kore?"));
    let c = parse("[live]\nvoice = \"puck\"\n").expect("known voice");
    assert_eq!(c.live.voice, "Puck", "canonical case");
    assert!(warnings(&c).is_empty());
    assert!(warnings(&Config::with_defaults(P)).is_empty());
}

#[test]
fn a_refused_setup_names_the_key() {
    let c = parse("[live]\nthinking_level = \"high\"\nproactive_audio = true\n").expect("ok");
    let h = refusal_hint(
        &c.live,
        1007,
        "Invalid JSON payload received. Unknown name \"proactivity\" at 'setup': Cannot find field.",
    )
    .expect("named");
    assert!(h.contains("`proactive_audio` in [live]"), "{h}");
    let h = refusal_hint(&c.live, 1007, "Request contains an invalid argument.").expect("risky");
    assert!(h.contains("thinking_level, proactive_audio"), "{h}");
    assert_eq!(refusal_hint(&c.live, 1011, "thinking_level"), None);
    // A field of a key that is not set is not blamed on it.
    let h = refusal_hint(&c.live, 1007, "Unknown name \"temperature\"").expect("risky");
    assert!(!h.contains("`temperature`"), "{h}");
    let plain = Config::with_defaults(P);
    assert_eq!(
        refusal_hint(&plain.live, 1007, "Request contains an invalid argument."),
        None
    );
}
