//! Every key of the file, declared once: its table, name, accepted values, unit, default,
//! whether a reload (SIGHUP) applies it to the running daemon, and its one-line doc.
//!
//! The parser takes the known keys of each table (for unknown-key errors and their
//! suggestions) and the ranges of the integer keys from here, and [`reference_markdown`]
//! renders the configuration reference of the README from it.

use crate::live::transport::DEFAULT_ENDPOINT;

use super::{DEFAULT_MODEL, DEFAULT_VIDEO_DEVICE, DEFAULT_VOICE};

/// First reconnect delay of the jittered exponential backoff, milliseconds.
pub const RECONNECT_INITIAL_DELAY_MS: u64 = 500;
/// The wait after a configuration error doubles up to this, seconds (15 min), or stays at
/// `config_error_delay_s` if that is larger.
pub const CONFIG_ERROR_MAX_DELAY_S: u64 = 900;
/// Allowed width and height of `[video] capture_size`, pixels.
pub const CAPTURE_SIDE_RANGE: std::ops::RangeInclusive<u32> = 16..=8192;

/// The tables of the file, in the order the reference lists them.
pub const SECTIONS: [&str; 6] = ["live", "audio", "video", "session", "button", "service"];

/// The values a key takes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    /// `true` or `false`.
    Bool,
    /// A string, checked by the key's own rule in the parser.
    Text,
    /// One of these names, case-insensitive.
    Choice(&'static [&'static str]),
    /// An integer in `lo..=hi`; when `zero` is set, 0 is accepted too and means that.
    Int {
        lo: u64,
        hi: u64,
        zero: Option<&'static str>,
    },
    /// A number (integer or float) in `lo..=hi`.
    Float { lo: f64, hi: f64 },
}

/// A default as the reference shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shown {
    /// No default: the feature is off until the key is set.
    Unset,
    /// A TOML number or boolean, written as in the file.
    Literal(&'static str),
    /// A string (written quoted in the file, shown bare in the reference).
    Text(&'static str),
}

/// One key of the file.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KeySpec {
    pub section: &'static str,
    pub name: &'static str,
    pub kind: Kind,
    /// How messages name the unit after an allowed range, e.g. `1..=60 (seconds)`.
    pub unit: &'static str,
    pub default: Shown,
    /// A reload applies a change of this key to the running daemon; otherwise the change waits
    /// for a restart.
    pub live_reload: bool,
    /// The reference's one-line description (Markdown).
    pub doc: &'static str,
}

const fn int(lo: u64, hi: u64) -> Kind {
    Kind::Int { lo, hi, zero: None }
}

const fn zero_or(zero: &'static str, lo: u64, hi: u64) -> Kind {
    Kind::Int {
        lo,
        hi,
        zero: Some(zero),
    }
}

/// Every key, table by table in [`SECTIONS`] order.
pub static KEYS: &[KeySpec] = &[
    KeySpec {
        section: "live",
        name: "endpoint",
        kind: Kind::Text,
        unit: "",
        default: Shown::Text(DEFAULT_ENDPOINT),
        live_reload: true,
        doc: "Live API WebSocket URL. Plain `ws://` is refused unless the host is loopback, because the key must not cross a network in clear text.",
    },
    KeySpec {
        section: "live",
        name: "model",
        kind: Kind::Text,
        unit: "",
        default: Shown::Text(DEFAULT_MODEL),
        live_reload: true,
        doc: "Live model; the `models/` prefix is added if missing.",
    },
    KeySpec {
        section: "live",
        name: "voice",
        kind: Kind::Text,
        unit: "",
        default: Shown::Text(DEFAULT_VOICE),
        live_reload: true,
        doc: "One of the 30 prebuilt voices (case-insensitive).",
    },
    KeySpec {
        section: "live",
        name: "system_instruction",
        kind: Kind::Text,
        unit: "",
        default: Shown::Text(""),
        live_reload: true,
        doc: "Text sent in `setup.systemInstruction`.",
    },
    KeySpec {
        section: "live",
        name: "media_resolution",
        kind: Kind::Choice(&["low", "medium", "high"]),
        unit: "",
        default: Shown::Text("low"),
        live_reload: true,
        doc: "`low` \\| `medium` \\| `high`: tokens per camera frame.",
    },
    KeySpec {
        section: "live",
        name: "api_key_file",
        kind: Kind::Text,
        unit: "",
        default: Shown::Unset,
        live_reload: false,
        doc: "File holding only the key. It must be mode 0600, otherwise it is refused with a `chmod 600` hint.",
    },
    KeySpec {
        section: "live",
        name: "input_transcription",
        kind: Kind::Bool,
        unit: "",
        default: Shown::Literal("true"),
        live_reload: true,
        doc: "Log what you said (server transcript).",
    },
    KeySpec {
        section: "live",
        name: "output_transcription",
        kind: Kind::Bool,
        unit: "",
        default: Shown::Literal("true"),
        live_reload: true,
        doc: "Log what the model said.",
    },
    KeySpec {
        section: "live",
        name: "setup_timeout_ms",
        kind: int(1_000, 120_000),
        unit: "milliseconds",
        default: Shown::Literal("10000"),
        live_reload: false,
        doc: "Wait for `setupComplete`, 1000..=120000 ms.",
    },
    KeySpec {
        section: "live",
        name: "resumption",
        kind: Kind::Bool,
        unit: "",
        default: Shown::Literal("true"),
        live_reload: true,
        doc: "Resume the conversation across reconnects with the server's resumption handle.",
    },
    KeySpec {
        section: "live",
        name: "compression_trigger_tokens",
        kind: zero_or("compression off", 1_000, 1_000_000),
        unit: "tokens",
        default: Shown::Literal("25600"),
        live_reload: true,
        doc: "Context-window compression starts at this many tokens; `0` = off, otherwise 1000..=1000000.",
    },
    KeySpec {
        section: "live",
        name: "compression_target_tokens",
        kind: int(0, 1_000_000),
        unit: "tokens",
        default: Shown::Literal("12800"),
        live_reload: true,
        doc: "Compression shrinks the context to this many tokens, 0..=1000000; must be below the trigger (ignored when compression is off).",
    },
    KeySpec {
        section: "live",
        name: "max_connection_age_s",
        kind: int(30, 3_600),
        unit: "seconds",
        default: Shown::Literal("540"),
        live_reload: false,
        doc: "Hand over to a new connection after this long, 30..=3600 s (the server ends connections at about 10 min).",
    },
    KeySpec {
        section: "live",
        name: "ping_interval_s",
        kind: int(5, 120),
        unit: "seconds",
        default: Shown::Literal("15"),
        live_reload: false,
        doc: "WebSocket ping interval, 5..=120 s.",
    },
    KeySpec {
        section: "live",
        name: "dead_after_s",
        kind: int(30, 600),
        unit: "seconds",
        default: Shown::Literal("45"),
        live_reload: false,
        doc: "Nothing from the server (pongs included) for this long while sending = dead connection, reconnect. 30..=600 s and greater than `ping_interval_s`.",
    },
    KeySpec {
        section: "live",
        name: "stall_after_s",
        kind: int(1, 60),
        unit: "seconds",
        default: Shown::Literal("5"),
        live_reload: false,
        doc: "Bytes written to the connection that the server's TCP stack has not acknowledged, with no progress for this long, mean the network is gone: reconnect and resend the unacknowledged mic audio, 1..=60 s.",
    },
    KeySpec {
        section: "live",
        name: "reconnect_max_delay_s",
        kind: int(1, 600),
        unit: "seconds",
        default: Shown::Literal("30"),
        live_reload: false,
        doc: "Cap of the jittered exponential reconnect backoff (starts at 0.5 s), 1..=600 s.",
    },
    KeySpec {
        section: "live",
        name: "config_error_delay_s",
        kind: int(1, 3_600),
        unit: "seconds",
        default: Shown::Literal("60"),
        live_reload: false,
        doc: "First wait after the server refuses the setup (bad argument, model not found, location, quota), doubling up to 15 min; 1..=3600 s.",
    },
    KeySpec {
        section: "live",
        name: "max_message_kb",
        kind: int(64, 65_536),
        unit: "KiB",
        default: Shown::Literal("4096"),
        live_reload: true,
        doc: "Server messages larger than this are skipped and logged, 64..=65536 KiB.",
    },
    KeySpec {
        section: "live",
        name: "tools",
        kind: Kind::Bool,
        unit: "",
        default: Shown::Literal("true"),
        live_reload: true,
        doc: "Offer the model the built-in tools `end_session` and `set_volume`.",
    },
    KeySpec {
        section: "audio",
        name: "capture_device",
        kind: Kind::Text,
        unit: "",
        default: Shown::Text("default"),
        live_reload: false,
        doc: "ALSA PCM for the microphone. Use `gemlive list-devices`; prefer stable names like `plughw:CARD=Device,DEV=0`.",
    },
    KeySpec {
        section: "audio",
        name: "playback_device",
        kind: Kind::Text,
        unit: "",
        default: Shown::Text("default"),
        live_reload: false,
        doc: "ALSA PCM for the speaker.",
    },
    KeySpec {
        section: "audio",
        name: "chunk_ms",
        kind: int(20, 100),
        unit: "milliseconds",
        default: Shown::Literal("40"),
        live_reload: false,
        doc: "Mic audio per message, 20..=100 ms.",
    },
    KeySpec {
        section: "audio",
        name: "backlog_ms",
        kind: int(1_000, 120_000),
        unit: "milliseconds",
        default: Shown::Literal("10000"),
        live_reload: true,
        doc: "Mic audio kept while (re)connecting and sent in order once the session is ready; beyond it the oldest is dropped. 1000..=120000 ms.",
    },
    KeySpec {
        section: "audio",
        name: "volume",
        kind: int(0, 100),
        unit: "percent",
        default: Shown::Literal("100"),
        live_reload: true,
        doc: "Initial speaker volume (software gain), 0..=100 %; the model can change it with `set_volume`.",
    },
    KeySpec {
        section: "audio",
        name: "echo",
        kind: Kind::Choice(&["aec", "half_duplex", "none"]),
        unit: "",
        default: Shown::Text("aec"),
        live_reload: false,
        doc: "`aec` \\| `half_duplex` \\| `none`. `aec`: in-process echo cancellation (WebRTC AEC3) with the playback stream as the reference, so you can talk over the model; the half-duplex gate covers its first second and unhealthy spells. `half_duplex`: the mic is muted (silence is sent) while a reply plays and for `echo_tail_ms` after; talking clearly louder than the speaker, or the button, stops the reply. `none`: for a headset.",
    },
    KeySpec {
        section: "audio",
        name: "echo_tail_ms",
        kind: int(0, 5_000),
        unit: "milliseconds",
        default: Shown::Literal("300"),
        live_reload: false,
        doc: "With `half_duplex` (and during the canceller's warm-up): how long the mic stays muted after a reply has played, 0..=5000 ms.",
    },
    KeySpec {
        section: "video",
        name: "enabled",
        kind: Kind::Bool,
        unit: "",
        default: Shown::Literal("true"),
        live_reload: false,
        doc: "Send camera frames. `false` = audio only; the camera is never opened.",
    },
    KeySpec {
        section: "video",
        name: "device",
        kind: Kind::Text,
        unit: "",
        default: Shown::Text(DEFAULT_VIDEO_DEVICE),
        live_reload: false,
        doc: "V4L2 capture node, MJPEG required (`v4l2-ctl --list-devices` or `gemlive list-devices`), or a file of concatenated JPEG frames (`.mjpeg`, for tests and demos). A Pi CSI camera on Bookworm needs libcamera's V4L2 compatibility layer or a v4l2loopback bridge.",
    },
    KeySpec {
        section: "video",
        name: "capture_size",
        kind: Kind::Text,
        unit: "",
        default: Shown::Text("auto"),
        live_reload: false,
        doc: "MJPEG size asked of the camera: `auto` (the driver picks) or `WIDTHxHEIGHT` such as `1280x720`, each side 16..=8192 px.",
    },
    KeySpec {
        section: "video",
        name: "fps",
        kind: Kind::Float { lo: 0.05, hi: 1.0 },
        unit: "frames per second",
        default: Shown::Literal("1.0"),
        live_reload: false,
        doc: "Frames sent per second, 0.05..=1.0. The Live API takes at most 1 frame/s. `[live] media_resolution` sets the tokens per frame.",
    },
    KeySpec {
        section: "video",
        name: "send",
        kind: Kind::Choice(&["always", "while_speaking"]),
        unit: "",
        default: Shown::Text("always"),
        live_reload: false,
        doc: "`always` \\| `while_speaking`: send frames only while you speak, which saves tokens.",
    },
    KeySpec {
        section: "video",
        name: "size",
        kind: int(64, 2_048),
        unit: "pixels",
        default: Shown::Literal("768"),
        live_reload: false,
        doc: "Side of the output square, 64..=2048 px.",
    },
    KeySpec {
        section: "video",
        name: "geometry",
        kind: Kind::Choice(&["letterbox", "crop", "fit", "stretch"]),
        unit: "",
        default: Shown::Text("letterbox"),
        live_reload: false,
        doc: "`letterbox`: the whole scene with black bars, exactly size×size. `crop`: fills the square and cuts the sides. `fit`: long side = size (never enlarged), no bars. `stretch`: size×size, distorted.",
    },
    KeySpec {
        section: "video",
        name: "quality",
        kind: int(1, 100),
        unit: "JPEG quality, 100 = best",
        default: Shown::Literal("80"),
        live_reload: false,
        doc: "JPEG quality of the frames sent, 1..=100.",
    },
    KeySpec {
        section: "session",
        name: "wake",
        kind: Kind::Choice(&["always", "button"]),
        unit: "",
        default: Shown::Text("always"),
        live_reload: false,
        doc: "`always`: a session opens at start and listens continuously. `button`: idle until the button is pressed; the session ends on a long press, after `idle_timeout_s` or at `max_session_s`. `button` needs a configured `[button]`.",
    },
    KeySpec {
        section: "session",
        name: "idle_timeout_s",
        kind: zero_or("never", 10, 86_400),
        unit: "seconds",
        default: Shown::Literal("120"),
        live_reload: false,
        doc: "With `wake = \"button\"`: no speech either way for this long ends the session; `0` = never, otherwise 10..=86400 s. Not used with `wake = \"always\"`.",
    },
    KeySpec {
        section: "session",
        name: "max_session_s",
        kind: zero_or("unlimited", 60, 86_400),
        unit: "seconds",
        default: Shown::Literal("0"),
        live_reload: false,
        doc: "End a session after this long; `0` = unlimited, otherwise 60..=86400 s.",
    },
    KeySpec {
        section: "session",
        name: "chimes",
        kind: Kind::Bool,
        unit: "",
        default: Shown::Literal("true"),
        live_reload: false,
        doc: "Short generated sounds on wake, at the end of a session and on errors.",
    },
    KeySpec {
        section: "button",
        name: "line",
        kind: Kind::Text,
        unit: "",
        default: Shown::Unset,
        live_reload: false,
        doc: "GPIO line name of the button, e.g. `GPIO17` (Raspberry Pi header names: GPIO17 is physical pin 11). Find lines with `gpioinfo` or `gemlive list-devices`. Unset = no button.",
    },
    KeySpec {
        section: "button",
        name: "chip",
        kind: Kind::Text,
        unit: "",
        default: Shown::Unset,
        live_reload: false,
        doc: "Instead of `line` (not both): the chip, `gpiochip0` or `/dev/gpiochip0`, used with `offset`. Chip numbers differ between Pi models and kernels; line names do not.",
    },
    KeySpec {
        section: "button",
        name: "offset",
        kind: int(0, 1_023),
        unit: "line offset on chip",
        default: Shown::Unset,
        live_reload: false,
        doc: "The line's offset on `chip`, 0..=1023; `chip` and `offset` go together.",
    },
    KeySpec {
        section: "button",
        name: "active_low",
        kind: Kind::Bool,
        unit: "",
        default: Shown::Literal("true"),
        live_reload: false,
        doc: "Pressed = the line reads low: a button between the pin and ground.",
    },
    KeySpec {
        section: "button",
        name: "bias",
        kind: Kind::Choice(&["pull_up", "pull_down", "disabled", "as_is"]),
        unit: "",
        default: Shown::Text("pull_up"),
        live_reload: false,
        doc: "`pull_up` \\| `pull_down` \\| `disabled` \\| `as_is`: the chip's internal pull resistor. `pull_up` with `active_low = true` needs no external resistor.",
    },
    KeySpec {
        section: "button",
        name: "debounce_ms",
        kind: int(0, 1_000),
        unit: "milliseconds, 0 = off",
        default: Shown::Literal("30"),
        live_reload: false,
        doc: "Kernel debounce, 0..=1000 ms (0 = off).",
    },
    KeySpec {
        section: "button",
        name: "long_press_ms",
        kind: int(300, 10_000),
        unit: "milliseconds",
        default: Shown::Literal("1500"),
        live_reload: false,
        doc: "A press this long is a long press (ends the session in `toggle` mode), 300..=10000 ms.",
    },
    KeySpec {
        section: "button",
        name: "mode",
        kind: Kind::Choice(&["toggle", "push_to_talk"]),
        unit: "",
        default: Shown::Text("toggle"),
        live_reload: false,
        doc: "`toggle`: a press starts a session or interrupts the reply; a long press ends the session. `push_to_talk`: hold to talk (press = start of your turn, release = end); the server's automatic voice detection is off. Needs a configured button.",
    },
    KeySpec {
        section: "button",
        name: "led_line",
        kind: Kind::Text,
        unit: "",
        default: Shown::Unset,
        live_reload: false,
        doc: "Optional status LED (driven high for on): a line name such as `GPIO27` or `CHIP:OFFSET` such as `gpiochip0:27`.",
    },
    KeySpec {
        section: "service",
        name: "log_level",
        kind: Kind::Choice(&["error", "warn", "info", "debug", "trace"]),
        unit: "",
        default: Shown::Text("info"),
        live_reload: true,
        doc: "`error` \\| `warn` \\| `info` \\| `debug` \\| `trace`. The `-v` flag and the `GEMLIVE_LOG` environment variable override it.",
    },
];

/// The key `name` of table `section`.
pub fn spec(section: &str, name: &str) -> Option<&'static KeySpec> {
    KEYS.iter().find(|k| k.section == section && k.name == name)
}

/// The keys of table `section`, in reference order.
pub fn keys_in(section: &str) -> Vec<&'static str> {
    KEYS.iter()
        .filter(|k| k.section == section)
        .map(|k| k.name)
        .collect()
}

/// The allowed range of an integer key.
///
/// # Panics
/// If the table has no integer key of that name: a typo in the parser, caught by every test
/// that reaches the call.
pub fn int_range(section: &str, name: &str) -> std::ops::RangeInclusive<u64> {
    match spec(section, name).map(|k| k.kind) {
        Some(Kind::Int { lo, hi, .. }) => lo..=hi,
        _ => panic!("[{section}] {name} is not an integer key of the table"),
    }
}

/// The allowed range of a number key.
///
/// # Panics
/// If the table has no number key of that name, as [`int_range`].
pub fn float_range(section: &str, name: &str) -> (f64, f64) {
    match spec(section, name).map(|k| k.kind) {
        Some(Kind::Float { lo, hi }) => (lo, hi),
        _ => panic!("[{section}] {name} is not a number key of the table"),
    }
}

impl Shown {
    /// The reference's rendering: a value in backticks, or `unset`.
    pub fn markdown(self) -> String {
        match self {
            Shown::Unset => "unset".to_string(),
            Shown::Literal(l) => format!("`{l}`"),
            Shown::Text("") => "`\"\"`".to_string(),
            Shown::Text(s) => format!("`{s}`"),
        }
    }
}

/// The rows of the README's configuration reference (`| key | default | meaning |`), one line
/// per key, without the header.
pub fn reference_markdown() -> String {
    KEYS.iter()
        .map(|k| {
            format!(
                "| `[{}] {}` | {} | {} |\n",
                k.section,
                k.name,
                k.default.markdown(),
                k.doc
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readme_reference_is_the_table() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
        let readme = std::fs::read_to_string(path).expect("README.md is readable");
        let rows: String = readme
            .lines()
            .filter(|l| l.starts_with("| `["))
            .map(|l| format!("{l}\n"))
            .collect();
        let want = reference_markdown();
        for (got, want) in rows.lines().zip(want.lines()) {
            assert_eq!(got, want, "README.md row differs from config::keys::KEYS");
        }
        assert_eq!(
            rows.lines().count(),
            want.lines().count(),
            "README.md lists a different number of keys than config::keys::KEYS"
        );
    }

    #[test]
    fn docs_state_the_range_and_the_choices() {
        for k in KEYS {
            let what = format!("[{}] {}: {}", k.section, k.name, k.doc);
            match k.kind {
                Kind::Int { lo, hi, zero } => {
                    assert!(k.doc.contains(&format!("{lo}..={hi}")), "{what}");
                    assert!(!k.unit.is_empty(), "{what}: no unit");
                    if zero.is_some() {
                        assert!(k.doc.contains("`0`"), "{what}: 0 not described");
                    }
                }
                Kind::Float { lo, hi } => {
                    assert!(k.doc.contains(&format!("{lo}..={hi:.1}")), "{what}")
                }
                Kind::Choice(names) => {
                    for n in names {
                        assert!(k.doc.contains(&format!("`{n}`")), "{what}: {n}");
                    }
                }
                Kind::Bool | Kind::Text => {}
            }
        }
    }

    #[test]
    fn keys_are_unique_and_grouped_by_table() {
        let order: Vec<&str> = KEYS.iter().map(|k| k.section).collect();
        let mut grouped = order.clone();
        grouped.dedup();
        assert_eq!(
            grouped, SECTIONS,
            "keys grouped by table, in SECTIONS order"
        );
        for (i, k) in KEYS.iter().enumerate() {
            assert!(
                !KEYS[..i]
                    .iter()
                    .any(|o| o.section == k.section && o.name == k.name),
                "[{}] {} twice",
                k.section,
                k.name
            );
        }
    }

    #[test]
    fn each_default_parses_to_the_typed_default() {
        let path = std::path::Path::new("/etc/gemlive/gemlive.toml");
        let want = super::super::Config::with_defaults(path);
        for k in KEYS {
            let value = match k.default {
                Shown::Unset => continue,
                Shown::Literal(l) => l.to_string(),
                Shown::Text(s) => format!("{s:?}"),
            };
            let text = format!("[{}]\n{} = {value}\n", k.section, k.name);
            match super::super::parse_str(&text, path) {
                Ok(got) => assert_eq!(got, want, "[{}] {}", k.section, k.name),
                Err(e) => panic!("[{}] {} default: {e}", k.section, k.name),
            }
        }
    }
}
