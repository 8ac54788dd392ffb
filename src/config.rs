//! The configuration file: one strict TOML file, parsed in two stages.
//!
//! 1. serde reads the text into `Raw*` structs (`deny_unknown_fields` on every table). Every leaf
//!    is a `Spanned<toml::Value>`, so no value is judged yet but each keeps its byte span.
//! 2. `resolve` checks types, enums and ranges and builds the validated [`Config`].
//!
//! Every error about the file reads `PATH:LINE:COL: message` (1-based, column in characters),
//! pointing at the offending key (unknown keys) or value (bad values), so a user editing over
//! SSH can jump straight to it.
//!
//! The API key never lives in this file: see [`resolve_api_key`].

use std::fmt;
use std::io::Read;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::{Spanned, Value};

/// How a camera frame is fitted into the output square; parsed from `[video] geometry`.
pub use crate::video::jpeg::Geometry;

/// Where the daemon looks when neither `--config` nor `$GEMLIVE_CONFIG` is given.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/gemlive/gemlive.toml";
/// Environment variable naming the config file.
pub const CONFIG_ENV: &str = "GEMLIVE_CONFIG";
/// Environment variable holding the API key.
pub const API_KEY_ENV: &str = "GEMINI_API_KEY";
/// Name of the systemd credential (`LoadCredential=gemini-api-key:/path`).
pub const CREDENTIAL_NAME: &str = "gemini-api-key";
/// Default model, as written in the file (stored with the `models/` prefix).
pub const DEFAULT_MODEL: &str = "gemini-3.1-flash-live-preview";
/// Default prebuilt voice.
pub const DEFAULT_VOICE: &str = "Kore";
/// The prebuilt voices of the Live API, in canonical case.
pub const VOICES: [&str; 30] = [
    "Zephyr",
    "Puck",
    "Charon",
    "Kore",
    "Fenrir",
    "Leda",
    "Orus",
    "Aoede",
    "Callirrhoe",
    "Autonoe",
    "Enceladus",
    "Iapetus",
    "Umbriel",
    "Algieba",
    "Despina",
    "Erinome",
    "Algenib",
    "Rasalgethi",
    "Laomedeia",
    "Achernar",
    "Alnilam",
    "Schedar",
    "Gacrux",
    "Pulcherrima",
    "Achird",
    "Zubenelgenubi",
    "Vindemiatrix",
    "Sadachbia",
    "Sadaltager",
    "Sulafat",
];
/// Allowed `setup_timeout_ms`, milliseconds.
pub const SETUP_TIMEOUT_MS_RANGE: std::ops::RangeInclusive<u64> = 1_000..=120_000;
/// Allowed `chunk_ms`, milliseconds.
pub const CHUNK_MS_RANGE: std::ops::RangeInclusive<u32> = 20..=100;
/// Allowed non-zero `compression_trigger_tokens` (0 = compression off), tokens.
pub const COMPRESSION_TRIGGER_TOKENS_RANGE: std::ops::RangeInclusive<u64> = 1_000..=1_000_000;
/// Allowed `compression_target_tokens`, tokens (also below the trigger when compression is on).
pub const COMPRESSION_TARGET_TOKENS_RANGE: std::ops::RangeInclusive<u64> = 0..=1_000_000;
/// Allowed `max_connection_age_s`, seconds.
pub const MAX_CONNECTION_AGE_S_RANGE: std::ops::RangeInclusive<u64> = 30..=3_600;
/// Allowed `ping_interval_s`, seconds.
pub const PING_INTERVAL_S_RANGE: std::ops::RangeInclusive<u64> = 5..=120;
/// Allowed `dead_after_s`, seconds (also greater than `ping_interval_s`).
pub const DEAD_AFTER_S_RANGE: std::ops::RangeInclusive<u64> = 30..=600;
/// Allowed `stall_after_s`, seconds.
pub const STALL_AFTER_S_RANGE: std::ops::RangeInclusive<u64> = 1..=60;
/// Allowed `reconnect_max_delay_s`, seconds.
pub const RECONNECT_MAX_DELAY_S_RANGE: std::ops::RangeInclusive<u64> = 1..=600;
/// First reconnect delay of the jittered exponential backoff, milliseconds.
pub const RECONNECT_INITIAL_DELAY_MS: u64 = 500;
/// Allowed `config_error_delay_s`, seconds.
pub const CONFIG_ERROR_DELAY_S_RANGE: std::ops::RangeInclusive<u64> = 1..=3_600;
/// The wait after a configuration error doubles up to this, seconds (15 min), or stays at
/// `config_error_delay_s` if that is larger.
pub const CONFIG_ERROR_MAX_DELAY_S: u64 = 900;
/// Allowed `max_message_kb`, KiB.
pub const MAX_MESSAGE_KB_RANGE: std::ops::RangeInclusive<u32> = 64..=65_536;
/// Allowed `backlog_ms`, milliseconds.
pub const BACKLOG_MS_RANGE: std::ops::RangeInclusive<u32> = 1_000..=120_000;
/// Allowed `volume`, percent.
pub const VOLUME_RANGE: std::ops::RangeInclusive<u8> = 0..=100;
/// Default `[video] device`.
pub const DEFAULT_VIDEO_DEVICE: &str = "/dev/video0";
/// Allowed width and height of `[video] capture_size`, pixels.
pub const CAPTURE_SIDE_RANGE: std::ops::RangeInclusive<u32> = 16..=8192;
/// Allowed `[video] fps`, frames per second (the Live API takes at most 1 frame/s).
pub const VIDEO_FPS_RANGE: std::ops::RangeInclusive<f64> = 0.05..=1.0;
/// Allowed `[video] size`, pixels.
pub const VIDEO_SIZE_RANGE: std::ops::RangeInclusive<u32> = 64..=2048;
/// Allowed `[video] quality` (JPEG quality, 100 = best).
pub const VIDEO_QUALITY_RANGE: std::ops::RangeInclusive<u8> = 1..=100;
/// Allowed `[button] offset` (a line's offset on its chip).
pub const BUTTON_OFFSET_RANGE: std::ops::RangeInclusive<u32> = 0..=1_023;
/// Allowed `[button] debounce_ms`, milliseconds (0 = no debouncing).
pub const DEBOUNCE_MS_RANGE: std::ops::RangeInclusive<u32> = 0..=1_000;
/// Allowed `[button] long_press_ms`, milliseconds.
pub const LONG_PRESS_MS_RANGE: std::ops::RangeInclusive<u32> = 300..=10_000;
/// Allowed non-zero `[session] idle_timeout_s` (0 = never), seconds.
pub const IDLE_TIMEOUT_S_RANGE: std::ops::RangeInclusive<u64> = 10..=86_400;
/// Allowed non-zero `[session] max_session_s` (0 = unlimited), seconds.
pub const MAX_SESSION_S_RANGE: std::ops::RangeInclusive<u64> = 60..=86_400;
/// Allowed `[audio] echo_tail_ms`, milliseconds.
pub const ECHO_TAIL_MS_RANGE: std::ops::RangeInclusive<u32> = 0..=5_000;
/// Every [`Geometry`], in the order the config file documents them.
pub const GEOMETRIES: [Geometry; 4] = [
    Geometry::Letterbox,
    Geometry::Crop,
    Geometry::Fit,
    Geometry::Stretch,
];

/// The name of a [`Geometry`] in the config file.
pub fn geometry_name(g: Geometry) -> &'static str {
    match g {
        Geometry::Letterbox => "letterbox",
        Geometry::Crop => "crop",
        Geometry::Fit => "fit",
        Geometry::Stretch => "stretch",
    }
}

/// The API key. Never printed: `Debug` is redacted and there is no `Display` or `Serialize`.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn new(s: impl Into<String>) -> Self {
        ApiKey(s.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// Resolution of camera frames sent to the model. TOML: `"low"`, `"medium"`, `"high"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MediaResolution {
    #[default]
    Low,
    Medium,
    High,
}

impl MediaResolution {
    pub const ALL: [MediaResolution; 3] = [Self::Low, Self::Medium, Self::High];

    /// The name in the Live API `setup` message.
    pub fn wire_name(self) -> &'static str {
        match self {
            Self::Low => "MEDIA_RESOLUTION_LOW",
            Self::Medium => "MEDIA_RESOLUTION_MEDIUM",
            Self::High => "MEDIA_RESOLUTION_HIGH",
        }
    }

    /// The name in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
        }
    }
}

/// When a session runs. TOML: `"always"`, `"button"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Wake {
    /// A session opens at start and listens continuously.
    #[default]
    Always,
    /// A press of the `[button]` starts a session; it ends on a long press (mode `toggle`),
    /// after `idle_timeout_s` without speech, or at `max_session_s`. Needs a configured button.
    Button,
}

impl Wake {
    pub const ALL: [Wake; 2] = [Self::Always, Self::Button];

    /// The name in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Always => "always",
            Self::Button => "button",
        }
    }
}

/// When camera frames are sent. TOML: `"always"`, `"while_speaking"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VideoSend {
    /// All the time, at `fps`.
    #[default]
    Always,
    /// Only while you are speaking; saves tokens when nobody talks.
    WhileSpeaking,
}

impl VideoSend {
    pub const ALL: [VideoSend; 2] = [Self::Always, Self::WhileSpeaking];

    /// The name in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Always => "always",
            Self::WhileSpeaking => "while_speaking",
        }
    }
}

/// Pull resistor of the button's line. TOML: `"pull_up"`, `"pull_down"`, `"disabled"`,
/// `"as_is"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Bias {
    /// The internal pull-up: the line reads high until the button connects it to ground
    /// (use with `active_low = true`).
    #[default]
    PullUp,
    /// The internal pull-down: for a button to 3.3 V (use with `active_low = false`).
    PullDown,
    /// No internal pull resistor (an external one does the job).
    Disabled,
    /// Leave the bias as the kernel, firmware or device tree set it.
    AsIs,
}

impl Bias {
    pub const ALL: [Bias; 4] = [Self::PullUp, Self::PullDown, Self::Disabled, Self::AsIs];

    /// The name in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PullUp => "pull_up",
            Self::PullDown => "pull_down",
            Self::Disabled => "disabled",
            Self::AsIs => "as_is",
        }
    }
}

/// What the button does. TOML: `"toggle"`, `"push_to_talk"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ButtonMode {
    /// A press starts a session (or interrupts the model's reply); a long press
    /// (`long_press_ms`) ends the session.
    #[default]
    Toggle,
    /// Hold to talk: press = `activityStart`, release = `activityEnd`; the server's automatic
    /// activity detection is off.
    PushToTalk,
}

impl ButtonMode {
    pub const ALL: [ButtonMode; 2] = [Self::Toggle, Self::PushToTalk];

    /// The name in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Toggle => "toggle",
            Self::PushToTalk => "push_to_talk",
        }
    }
}

/// What keeps the speaker out of the microphone. TOML: `"aec"`, `"half_duplex"`, `"none"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EchoMode {
    /// In-process echo cancellation (WebRTC AEC3 via `sonora`) with the exact playback stream
    /// as the reference; the half-duplex gate covers its warm-up and unhealthy spells.
    #[default]
    Aec,
    /// The microphone is always sent (a headset, or hardware echo cancellation).
    None,
    /// The microphone is muted (silence is sent) while a reply plays and for `echo_tail_ms`
    /// after, so a loudspeaker cannot make the model interrupt itself; the button still
    /// interrupts.
    HalfDuplex,
}

impl EchoMode {
    pub const ALL: [EchoMode; 3] = [Self::Aec, Self::HalfDuplex, Self::None];

    /// The name in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Aec => "aec",
            Self::None => "none",
            Self::HalfDuplex => "half_duplex",
        }
    }
}

/// How much the daemon logs. TOML: `"error"`, `"warn"`, `"info"`, `"debug"`, `"trace"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogLevel {
    Error,
    Warn,
    #[default]
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    pub const ALL: [LogLevel; 5] = [
        Self::Error,
        Self::Warn,
        Self::Info,
        Self::Debug,
        Self::Trace,
    ];

    /// The name in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Error => "error",
            Self::Warn => "warn",
            Self::Info => "info",
            Self::Debug => "debug",
            Self::Trace => "trace",
        }
    }

    /// The matching `log` filter.
    pub fn filter(self) -> log::LevelFilter {
        match self {
            Self::Error => log::LevelFilter::Error,
            Self::Warn => log::LevelFilter::Warn,
            Self::Info => log::LevelFilter::Info,
            Self::Debug => log::LevelFilter::Debug,
            Self::Trace => log::LevelFilter::Trace,
        }
    }
}

/// `[live]`: the Live API session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveConfig {
    /// WebSocket URL. Default [`crate::live::transport::DEFAULT_ENDPOINT`]; `wss://` anywhere,
    /// plain `ws://` only to a loopback host.
    pub endpoint: String,
    /// Model resource name, always with its `models/` (or `tunedModels/`) prefix.
    /// Default `models/gemini-3.1-flash-live-preview`.
    pub model: String,
    /// Prebuilt voice, canonical case (one of [`VOICES`]). Default `Kore`.
    pub voice: String,
    /// System instruction sent at setup, trimmed. Default empty (= none).
    pub system_instruction: String,
    /// Camera frame resolution. Default `low`.
    pub media_resolution: MediaResolution,
    /// File holding the API key (mode 0600); relative paths are relative to the config file's
    /// directory. Default none.
    pub api_key_file: Option<PathBuf>,
    /// Ask the server to transcribe what the user says. Default `true`.
    pub input_transcription: bool,
    /// Ask the server to transcribe what the model says. Default `true`.
    pub output_transcription: bool,
    /// How long to wait for `setupComplete`, milliseconds. Default 10000, range 1000..=120000.
    pub setup_timeout_ms: u64,
    /// Resume the session across reconnects with the server's resumption handle, so the
    /// conversation continues. Default `true`.
    pub resumption: bool,
    /// Context-window compression starts when the context reaches this many tokens; 0 = off.
    /// Default 25600; otherwise range 1000..=1000000 ([`COMPRESSION_TRIGGER_TOKENS_RANGE`]).
    pub compression_trigger_tokens: u64,
    /// Compression shrinks the context to this many tokens (sliding window). Default 12800,
    /// range 0..=1000000, and less than `compression_trigger_tokens` when compression is on;
    /// unused when it is off.
    pub compression_target_tokens: u64,
    /// Hand over to a new connection once the current one is this old, seconds (the server ends
    /// connections at about 10 min). Default 540, range 30..=3600.
    pub max_connection_age_s: u64,
    /// Interval between WebSocket pings, seconds. Default 15, range 5..=120.
    pub ping_interval_s: u64,
    /// No frame at all (pongs included) from the server for this long while sending means the
    /// connection is dead and gemlive reconnects, seconds. Default 45, range 30..=600, and
    /// greater than `ping_interval_s`.
    pub dead_after_s: u64,
    /// Bytes written to the connection that the server's TCP stack has not acknowledged, with no
    /// progress for this long, mean the network is gone (Wi-Fi dropped, router rebooted) and
    /// gemlive reconnects, resending the unacknowledged mic audio, seconds. Default 5, range 1..=60.
    pub stall_after_s: u64,
    /// Cap of the jittered exponential reconnect backoff (which starts at
    /// [`RECONNECT_INITIAL_DELAY_MS`]), seconds. Default 30, range 1..=600.
    pub reconnect_max_delay_s: u64,
    /// First wait after the server refused the setup as a configuration error (1007/1008 bad
    /// argument, model not found, location; or quota exhausted), doubling up to
    /// [`CONFIG_ERROR_MAX_DELAY_S`], seconds. Default 60, range 1..=3600.
    pub config_error_delay_s: u64,
    /// Server messages larger than this are skipped and logged, KiB. Default 4096,
    /// range 64..=65536.
    pub max_message_kb: u32,
    /// Offer the model the built-in tools `end_session` and `set_volume`. Default `true`.
    pub tools: bool,
}

impl Default for LiveConfig {
    fn default() -> Self {
        LiveConfig {
            endpoint: crate::live::transport::DEFAULT_ENDPOINT.to_string(),
            model: format!("models/{DEFAULT_MODEL}"),
            voice: DEFAULT_VOICE.to_string(),
            system_instruction: String::new(),
            media_resolution: MediaResolution::Low,
            api_key_file: None,
            input_transcription: true,
            output_transcription: true,
            setup_timeout_ms: 10_000,
            resumption: true,
            compression_trigger_tokens: 25_600,
            compression_target_tokens: 12_800,
            max_connection_age_s: 540,
            ping_interval_s: 15,
            dead_after_s: 45,
            stall_after_s: 5,
            reconnect_max_delay_s: 30,
            config_error_delay_s: 60,
            max_message_kb: 4_096,
            tools: true,
        }
    }
}

/// `[audio]`: ALSA devices, chunking, mic backlog and volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioConfig {
    /// ALSA capture PCM name (see `gemlive list-devices`). Default `default`.
    pub capture_device: String,
    /// ALSA playback PCM name (see `gemlive list-devices`). Default `default`.
    pub playback_device: String,
    /// Microphone chunk length sent per message, milliseconds. Default 40, range 20..=100.
    pub chunk_ms: u32,
    /// Microphone audio kept while connecting or reconnecting and sent in order once a session
    /// is ready; beyond it the oldest audio is dropped (and counted), milliseconds.
    /// Default 10000, range 1000..=120000.
    pub backlog_ms: u32,
    /// Initial speaker volume (software gain), percent. Default 100, range 0..=100; the model
    /// can change it with the `set_volume` tool.
    pub volume: u8,
    /// Echo handling. Default `aec` (in-process echo cancellation, with the half-duplex gate
    /// while it converges); `half_duplex` mutes the microphone (sends silence) while a reply
    /// plays and for `echo_tail_ms` after; `none` for a headset.
    pub echo: EchoMode,
    /// With `echo = half_duplex` (and during the canceller's warm-up): how long the microphone
    /// stays muted after the reply's last sample has played (room echo, the device's output
    /// latency), milliseconds. Default 300, range 0..=5000; unused with `echo = none`.
    pub echo_tail_ms: u32,
}

impl Default for AudioConfig {
    fn default() -> Self {
        AudioConfig {
            capture_device: "default".to_string(),
            playback_device: "default".to_string(),
            chunk_ms: 40,
            backlog_ms: 10_000,
            volume: 100,
            echo: EchoMode::Aec,
            echo_tail_ms: 300,
        }
    }
}

/// `[video]`: the camera and the frames sent to the model.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoConfig {
    /// Send camera frames at all. Default `true`; `false` = audio only, the camera is never
    /// opened.
    pub enabled: bool,
    /// A V4L2 capture node, or the path of a file of concatenated JPEG frames (an `.mjpeg` file,
    /// for tests and demos). Default [`DEFAULT_VIDEO_DEVICE`] (`/dev/video0`); non-empty.
    pub device: String,
    /// MJPEG capture size `(width, height)` in pixels, each side in [`CAPTURE_SIDE_RANGE`]
    /// (16..=8192); `None` = `"auto"` (the default): the driver picks. TOML: `"auto"` or
    /// `"1280x720"`.
    pub capture_size: Option<(u32, u32)>,
    /// Frames sent per second. Default 1.0, range 0.05..=1.0 (the API takes at most 1 frame/s).
    pub fps: f64,
    /// When frames are sent. Default `always`.
    pub send: VideoSend,
    /// Side of the output square, pixels. Default 768, range 64..=2048.
    pub size: u32,
    /// How a frame is fitted into the square. Default `letterbox`.
    pub geometry: Geometry,
    /// JPEG quality of the frames sent. Default 80, range 1..=100.
    pub quality: u8,
}

impl Default for VideoConfig {
    fn default() -> Self {
        VideoConfig {
            enabled: true,
            device: DEFAULT_VIDEO_DEVICE.to_string(),
            capture_size: None,
            fps: 1.0,
            send: VideoSend::Always,
            size: 768,
            geometry: Geometry::Letterbox,
            quality: 80,
        }
    }
}

/// `[session]`: when a session runs and how it ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionConfig {
    /// When a session runs. Default `always`; `button` needs a configured [`ButtonConfig`].
    pub wake: Wake,
    /// With `wake = button`: no speech either way (neither you nor the model) for this long ends
    /// the session, and the box goes idle until the next press; 0 = never, seconds. Default
    /// 120; otherwise range 10..=86400 ([`IDLE_TIMEOUT_S_RANGE`]). Not used with
    /// `wake = always`.
    pub idle_timeout_s: u64,
    /// A session is ended after this long, seconds; 0 = unlimited. Default 0; otherwise range
    /// 60..=86400 ([`MAX_SESSION_S_RANGE`]).
    pub max_session_s: u64,
    /// Play short generated sounds on wake, at the end of a session and on errors.
    /// Default `true`.
    pub chimes: bool,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            wake: Wake::Always,
            idle_timeout_s: 120,
            max_session_s: 0,
            chimes: true,
        }
    }
}

/// A GPIO line as written in `[button]`: by name, or by chip and offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineSpec {
    /// A line name such as `GPIO17` (as `gpioinfo` shows it).
    Name(String),
    /// A chip (`gpiochip0` or `/dev/gpiochip0`) and the line's offset on it.
    ChipOffset { chip: String, offset: u32 },
}

impl LineSpec {
    /// `"CHIP:OFFSET"` (when the part after the last `:` is a number) or a line name.
    /// The text is trimmed; `None` for an empty string or an offset that is not a `u32`.
    pub fn parse(s: &str) -> Option<LineSpec> {
        let s = s.trim();
        if s.is_empty() {
            return None;
        }
        match s.rsplit_once(':') {
            Some((chip, n))
                if !n.trim().is_empty() && n.trim().bytes().all(|b| b.is_ascii_digit()) =>
            {
                Some(LineSpec::ChipOffset {
                    chip: chip.trim().to_string(),
                    offset: n.trim().parse().ok()?,
                })
            }
            _ => Some(LineSpec::Name(s.to_string())),
        }
    }
}

impl fmt::Display for LineSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LineSpec::Name(n) => f.write_str(n),
            LineSpec::ChipOffset { chip, offset } => write!(f, "{chip} line {offset}"),
        }
    }
}

/// `[button]`: an optional push button (and LED) on GPIO lines, through the kernel's GPIO
/// character device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ButtonConfig {
    /// GPIO line name, e.g. `GPIO17` (Raspberry Pi header names: `GPIO17` is physical pin 11);
    /// trimmed, non-empty. Default none. Exclusive with `chip` + `offset`.
    pub line: Option<String>,
    /// GPIO chip, e.g. `gpiochip0` or `/dev/gpiochip0`; used with `offset`. Default none.
    pub chip: Option<String>,
    /// Line offset on `chip`, range 0..=1023 ([`BUTTON_OFFSET_RANGE`]). Default none.
    pub offset: Option<u32>,
    /// Pressed = the line reads low. Default `true`: a button that connects the pin to ground.
    pub active_low: bool,
    /// Pull resistor. Default `pull_up`.
    pub bias: Bias,
    /// Kernel debounce period, milliseconds; 0 = none. Default 30, range 0..=1000.
    pub debounce_ms: u32,
    /// A press held this long is a long press (mode `toggle`: end the session), milliseconds.
    /// Default 1500, range 300..=10000.
    pub long_press_ms: u32,
    /// What the button does. Default `toggle`.
    pub mode: ButtonMode,
    /// Optional LED output: a line name (`GPIO27`) or `CHIP:OFFSET` (`gpiochip0:27`), driven
    /// high for on; trimmed. Default none. Parse it with [`ButtonConfig::led`].
    pub led_line: Option<String>,
}

impl Default for ButtonConfig {
    fn default() -> Self {
        ButtonConfig {
            line: None,
            chip: None,
            offset: None,
            active_low: true,
            bias: Bias::PullUp,
            debounce_ms: 30,
            long_press_ms: 1_500,
            mode: ButtonMode::Toggle,
            led_line: None,
        }
    }
}

impl ButtonConfig {
    /// True when a button is configured: `line`, or `chip` + `offset`, is set.
    pub fn configured(&self) -> bool {
        self.input().is_some()
    }

    /// The button's line, if configured.
    pub fn input(&self) -> Option<LineSpec> {
        match (&self.line, &self.chip, self.offset) {
            (Some(name), _, _) => Some(LineSpec::Name(name.clone())),
            (None, Some(chip), Some(offset)) => Some(LineSpec::ChipOffset {
                chip: chip.clone(),
                offset,
            }),
            _ => None,
        }
    }

    /// The LED's line, if set.
    pub fn led(&self) -> Option<LineSpec> {
        self.led_line.as_deref().and_then(LineSpec::parse)
    }
}

/// `[service]`: how the daemon runs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServiceConfig {
    /// Log level. Default `info`. The `-v` flag and the `GEMLIVE_LOG` environment variable
    /// override it.
    pub log_level: LogLevel,
}

/// The validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The file this was read from (used in messages).
    pub path: PathBuf,
    pub live: LiveConfig,
    pub audio: AudioConfig,
    pub video: VideoConfig,
    pub session: SessionConfig,
    pub button: ButtonConfig,
    pub service: ServiceConfig,
}

impl Config {
    /// All defaults, as if `path` were an empty file.
    pub fn with_defaults(path: impl Into<PathBuf>) -> Self {
        Config {
            path: path.into(),
            live: LiveConfig::default(),
            audio: AudioConfig::default(),
            video: VideoConfig::default(),
            session: SessionConfig::default(),
            button: ButtonConfig::default(),
            service: ServiceConfig::default(),
        }
    }
}

/// Everything that can go wrong with the config file or the API key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read at all.
    #[error("cannot read config file {}: {error}; pass --config PATH or set ${CONFIG_ENV}", path.display())]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    /// A problem at a position in the config file.
    #[error("{}:{line}:{column}: {message}", path.display())]
    At {
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column, in characters.
        column: usize,
        message: String,
    },
    /// The API key could not be used. `origin` is a file path or the variable name; the message
    /// never contains the key.
    #[error("{origin}: {message}")]
    ApiKey { origin: String, message: String },
}

impl ConfigError {
    /// `(line, column)` for errors inside the config file.
    pub fn line_col(&self) -> Option<(usize, usize)> {
        match self {
            ConfigError::At { line, column, .. } => Some((*line, *column)),
            _ => None,
        }
    }
}

/// `$GEMLIVE_CONFIG` if set and non-empty, else `/etc/gemlive/gemlive.toml`.
pub fn default_config_path(env: impl Fn(&str) -> Option<String>) -> PathBuf {
    match env(CONFIG_ENV) {
        Some(p) if !p.trim().is_empty() => PathBuf::from(p),
        _ => PathBuf::from(DEFAULT_CONFIG_PATH),
    }
}

/// Reads and validates the config file.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
        path: path.to_path_buf(),
        error,
    })?;
    parse_str(&text, path)
}

/// Validates config text; `path` is used in messages and to resolve a relative `api_key_file`.
pub fn parse_str(text: &str, path: &Path) -> Result<Config, ConfigError> {
    let ctx = Ctx { path, text };
    if let Err(e) = toml::de::DeTable::parse(text) {
        return Err(ctx.syntax_error(&e));
    }
    let raw: RawConfig = toml::from_str(text).map_err(|e| ctx.serde_error(&e))?;
    ctx.resolve(raw)
}

// ---------------------------------------------------------------------------------------------
// Stage 1: raw, strict, spanned.

type RawValue = Option<Spanned<Value>>;

const TOP_KEYS: &[&str] = &["live", "audio", "video", "session", "button", "service"];
const LIVE_KEYS: &[&str] = &[
    "endpoint",
    "model",
    "voice",
    "system_instruction",
    "media_resolution",
    "api_key_file",
    "input_transcription",
    "output_transcription",
    "setup_timeout_ms",
    "resumption",
    "compression_trigger_tokens",
    "compression_target_tokens",
    "max_connection_age_s",
    "ping_interval_s",
    "dead_after_s",
    "stall_after_s",
    "reconnect_max_delay_s",
    "config_error_delay_s",
    "max_message_kb",
    "tools",
];
const AUDIO_KEYS: &[&str] = &[
    "capture_device",
    "playback_device",
    "chunk_ms",
    "backlog_ms",
    "volume",
    "echo",
    "echo_tail_ms",
];
const VIDEO_KEYS: &[&str] = &[
    "enabled",
    "device",
    "capture_size",
    "fps",
    "send",
    "size",
    "geometry",
    "quality",
];
const SESSION_KEYS: &[&str] = &["wake", "idle_timeout_s", "max_session_s", "chimes"];
const BUTTON_KEYS: &[&str] = &[
    "line",
    "chip",
    "offset",
    "active_low",
    "bias",
    "debounce_ms",
    "long_press_ms",
    "mode",
    "led_line",
];
const SERVICE_KEYS: &[&str] = &["log_level"];
const SECTIONS: [(&str, &[&str]); 6] = [
    ("live", LIVE_KEYS),
    ("audio", AUDIO_KEYS),
    ("video", VIDEO_KEYS),
    ("session", SESSION_KEYS),
    ("button", BUTTON_KEYS),
    ("service", SERVICE_KEYS),
];

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    live: RawLive,
    #[serde(default)]
    audio: RawAudio,
    #[serde(default)]
    video: RawVideo,
    #[serde(default)]
    session: RawSession,
    #[serde(default)]
    button: RawButton,
    #[serde(default)]
    service: RawService,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawLive {
    endpoint: RawValue,
    model: RawValue,
    voice: RawValue,
    system_instruction: RawValue,
    media_resolution: RawValue,
    api_key_file: RawValue,
    input_transcription: RawValue,
    output_transcription: RawValue,
    setup_timeout_ms: RawValue,
    resumption: RawValue,
    compression_trigger_tokens: RawValue,
    compression_target_tokens: RawValue,
    max_connection_age_s: RawValue,
    ping_interval_s: RawValue,
    dead_after_s: RawValue,
    stall_after_s: RawValue,
    reconnect_max_delay_s: RawValue,
    config_error_delay_s: RawValue,
    max_message_kb: RawValue,
    tools: RawValue,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawAudio {
    capture_device: RawValue,
    playback_device: RawValue,
    chunk_ms: RawValue,
    backlog_ms: RawValue,
    volume: RawValue,
    echo: RawValue,
    echo_tail_ms: RawValue,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawVideo {
    enabled: RawValue,
    device: RawValue,
    capture_size: RawValue,
    fps: RawValue,
    send: RawValue,
    size: RawValue,
    geometry: RawValue,
    quality: RawValue,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSession {
    wake: RawValue,
    idle_timeout_s: RawValue,
    max_session_s: RawValue,
    chimes: RawValue,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawButton {
    line: RawValue,
    chip: RawValue,
    offset: RawValue,
    active_low: RawValue,
    bias: RawValue,
    debounce_ms: RawValue,
    long_press_ms: RawValue,
    mode: RawValue,
    led_line: RawValue,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawService {
    log_level: RawValue,
}

// ---------------------------------------------------------------------------------------------
// Stage 2: validation.

struct Ctx<'a> {
    path: &'a Path,
    text: &'a str,
}

/// A value with its place, for messages.
struct Item<'v> {
    table: &'static str,
    key: &'static str,
    value: &'v Value,
    span: Range<usize>,
}

impl<'a> Ctx<'a> {
    fn at(&self, span: Range<usize>, message: impl Into<String>) -> ConfigError {
        let (line, column) = line_col(self.text, span.start);
        ConfigError::At {
            path: self.path.to_path_buf(),
            line,
            column,
            message: message.into(),
        }
    }

    fn syntax_error(&self, e: &toml::de::Error) -> ConfigError {
        let span = e.span().unwrap_or(0..0);
        let msg = one_line(e.message());
        if msg == "duplicate key" {
            let key = self.text.get(span.clone()).unwrap_or("").trim();
            if self.is_table_header(span.start) {
                return self.at(
                    span,
                    format!("duplicate table `[{key}]`: each table may appear only once"),
                );
            }
            return self.at(
                span,
                format!("duplicate key `{key}`: each key may appear only once per table"),
            );
        }
        self.at(span, format!("TOML syntax error: {msg}"))
    }

    fn serde_error(&self, e: &toml::de::Error) -> ConfigError {
        let span = e.span().unwrap_or(0..0);
        let msg = one_line(e.message());
        if let Some(message) = self.unknown_key_message(&msg, &span) {
            return self.at(span, message);
        }
        if let Some((found, expected)) = msg.split_once(", expected struct Raw") {
            let table: String = expected
                .chars()
                .take_while(char::is_ascii_alphabetic)
                .collect::<String>()
                .to_ascii_lowercase();
            let found = match found.strip_prefix("invalid type: ") {
                Some(f) => format!(", found {f}"),
                None if found.starts_with("invalid length") => " (found [[{table}]])".to_string(),
                None => String::new(),
            };
            let found = found.replace("{table}", &table);
            return self.at(
                span,
                format!("`{table}` must be a table, written as [{table}]{found}"),
            );
        }
        if msg == "duplicate key" {
            return self.syntax_error(e);
        }
        // Anything else: name the key on the value's line if there is one.
        let offset = floor_char_boundary(self.text, span.start);
        let line_start = self.text[..offset].rfind('\n').map_or(0, |i| i + 1);
        if let Some((key, _)) = self.text[line_start..offset].split_once('=') {
            let key = key.trim();
            if !key.is_empty() && !key.starts_with('[') {
                return self.at(span, format!("invalid value for {key}: {msg}"));
            }
        }
        self.at(span, msg)
    }

    /// Turns serde's "unknown field `x`, expected one of `a`, `b`" into a message naming the
    /// table and the nearest valid key.
    fn unknown_key_message(&self, msg: &str, span: &Range<usize>) -> Option<String> {
        let rest = msg.strip_prefix("unknown field `")?;
        let (name, rest) = rest.split_once('`')?;
        let mut expected: Vec<&str> = rest.split('`').skip(1).step_by(2).collect();
        expected.sort_unstable();
        let same = |keys: &[&str]| {
            let mut k = keys.to_vec();
            k.sort_unstable();
            k == expected
        };

        let normalized: String = name
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        if normalized == "apikey" || normalized == "geminiapikey" {
            return Some(format!(
                "`{name}` does not belong in this file (config files get copied and backed up): \
                 put the key in a file named by api_key_file (chmod 600), in the {API_KEY_ENV} \
                 environment variable, or in the systemd credential {CREDENTIAL_NAME} \
                 (LoadCredential={CREDENTIAL_NAME}:/path/to/key)"
            ));
        }

        if same(TOP_KEYS) {
            if self.is_table_header(span.start) {
                let alias = table_alias(&normalized);
                return Some(match alias.or_else(|| suggest(name, TOP_KEYS)) {
                    Some(s) => format!("unknown table `[{name}]`; did you mean `[{s}]`?"),
                    None => format!(
                        "unknown table `[{name}]`; valid tables: {}",
                        list(TOP_KEYS, |k| format!("[{k}]"))
                    ),
                });
            }
            if let Some((table, _)) = SECTIONS.iter().find(|(_, keys)| keys.contains(&name)) {
                return Some(format!(
                    "key `{name}` must be inside a table: put it under [{table}]"
                ));
            }
            return Some(match suggest(name, TOP_KEYS) {
                Some(s) => format!("unknown table `{name}`; did you mean `[{s}]`?"),
                None => format!(
                    "unknown key `{name}` at top level; valid tables: {}",
                    list(TOP_KEYS, |k| format!("[{k}]"))
                ),
            });
        }

        let (table, keys) = SECTIONS.iter().find(|(_, keys)| same(keys))?;
        if let Some(hint) = key_alias(table, &normalized) {
            return Some(format!("unknown key `{name}` in [{table}]; {hint}"));
        }
        if let Some((other, _)) = SECTIONS
            .iter()
            .find(|(t, keys)| t != table && keys.contains(&name))
        {
            // `device` in [audio]: the user likely meant one of that table's own keys.
            let near: Vec<String> = keys
                .iter()
                .filter(|k| k.contains(name))
                .map(|k| format!("`{k}`"))
                .collect();
            if !near.is_empty() {
                return Some(format!(
                    "unknown key `{name}` in [{table}]; did you mean {}? (`{name}` alone belongs \
                     in [{other}])",
                    near.join(" or ")
                ));
            }
            return Some(format!(
                "unknown key `{name}` in [{table}]; it belongs in [{other}]"
            ));
        }
        Some(match suggest(name, keys) {
            Some(s) => format!("unknown key `{name}` in [{table}]; did you mean `{s}`?"),
            None => format!(
                "unknown key `{name}` in [{table}]; valid keys: {}",
                list(keys, |k| k.to_string())
            ),
        })
    }

    /// True when `offset` sits inside a `[table]` header line.
    fn is_table_header(&self, offset: usize) -> bool {
        let offset = floor_char_boundary(self.text, offset);
        let line_start = self.text[..offset].rfind('\n').map_or(0, |i| i + 1);
        self.text[line_start..offset].trim_start().starts_with('[')
    }

    fn resolve(&self, raw: RawConfig) -> Result<Config, ConfigError> {
        let mut cfg = Config::with_defaults(self.path);
        let RawConfig {
            live,
            audio,
            video,
            session,
            button,
            service,
        } = raw;

        let l = &mut cfg.live;
        if let Some(it) = item("live", "endpoint", &live.endpoint) {
            let s = self.string(&it, "a string (wss://HOST/PATH)")?;
            let s = s.trim();
            crate::live::transport::Endpoint::parse(s).map_err(|e| {
                self.at(
                    it.span.clone(),
                    format!("invalid value {} for endpoint in [live]: {e}", quote(s)),
                )
            })?;
            l.endpoint = s.to_string();
        }
        if let Some(it) = item("live", "model", &live.model) {
            let s = self.string(&it, "a string (model name)")?.trim();
            let bare = s
                .strip_prefix("models/")
                .or_else(|| s.strip_prefix("tunedModels/"))
                .unwrap_or(s);
            if bare.is_empty() || s.chars().any(char::is_whitespace) {
                return Err(self.at(
                    it.span,
                    format!(
                        "invalid value {} for model in [live]; expected a model name such as \
                         \"{DEFAULT_MODEL}\"",
                        quote(s)
                    ),
                ));
            }
            l.model = if s.starts_with("models/") || s.starts_with("tunedModels/") {
                s.to_string()
            } else {
                format!("models/{s}")
            };
        }
        if let Some(it) = item("live", "voice", &live.voice) {
            let s = self.string(&it, "a string (voice name)")?.trim();
            match VOICES.iter().find(|v| v.eq_ignore_ascii_case(s)) {
                Some(v) => l.voice = v.to_string(),
                None => {
                    let hint = suggest_voice(s)
                        .map(|v| format!("did you mean {v}? "))
                        .unwrap_or_default();
                    return Err(self.at(
                        it.span,
                        format!(
                            "invalid value {} for voice in [live]; {hint}allowed \
                             (case-insensitive): {}",
                            quote(s),
                            VOICES.join(", ")
                        ),
                    ));
                }
            }
        }
        if let Some(it) = item("live", "system_instruction", &live.system_instruction) {
            l.system_instruction = self.string(&it, "a string")?.trim().to_string();
        }
        if let Some(it) = item("live", "media_resolution", &live.media_resolution) {
            l.media_resolution = self.choice(&it, &MediaResolution::ALL, |m| m.as_str())?;
        }
        if let Some(it) = item("live", "api_key_file", &live.api_key_file) {
            let s = self.string(&it, "a string (path to the key file)")?;
            if s.trim().is_empty() {
                return Err(self.at(
                    it.span,
                    "invalid value \"\" for api_key_file in [live]; give the path of a file \
                     holding only the key, or remove the line",
                ));
            }
            if s.starts_with('~') {
                return Err(self.at(
                    it.span,
                    format!(
                        "invalid value {} for api_key_file in [live]: `~` is not expanded; \
                         write the full path",
                        quote(s)
                    ),
                ));
            }
            let p = Path::new(s);
            l.api_key_file = Some(if p.is_absolute() {
                p.to_path_buf()
            } else {
                self.path.parent().unwrap_or(Path::new("")).join(p)
            });
        }
        if let Some(it) = item("live", "input_transcription", &live.input_transcription) {
            l.input_transcription = self.boolean(&it)?;
        }
        if let Some(it) = item("live", "output_transcription", &live.output_transcription) {
            l.output_transcription = self.boolean(&it)?;
        }
        if let Some(it) = item("live", "setup_timeout_ms", &live.setup_timeout_ms) {
            l.setup_timeout_ms = self.int_in(&it, &SETUP_TIMEOUT_MS_RANGE, "milliseconds")?;
        }
        if let Some(it) = item("live", "resumption", &live.resumption) {
            l.resumption = self.boolean(&it)?;
        }
        if let Some(it) = item(
            "live",
            "compression_trigger_tokens",
            &live.compression_trigger_tokens,
        ) {
            let range = &COMPRESSION_TRIGGER_TOKENS_RANGE;
            let allowed = format!(
                "0 (compression off) or {}..={} (tokens)",
                range.start(),
                range.end()
            );
            l.compression_trigger_tokens = self.int_where(
                &it,
                |v| v == 0 || range.contains(&v),
                "an integer, ",
                &allowed,
            )?;
        }
        if let Some(it) = item(
            "live",
            "compression_target_tokens",
            &live.compression_target_tokens,
        ) {
            l.compression_target_tokens =
                self.int_in(&it, &COMPRESSION_TARGET_TOKENS_RANGE, "tokens")?;
        }
        if let Some(it) = item("live", "max_connection_age_s", &live.max_connection_age_s) {
            l.max_connection_age_s = self.int_in(&it, &MAX_CONNECTION_AGE_S_RANGE, "seconds")?;
        }
        if let Some(it) = item("live", "ping_interval_s", &live.ping_interval_s) {
            l.ping_interval_s = self.int_in(&it, &PING_INTERVAL_S_RANGE, "seconds")?;
        }
        if let Some(it) = item("live", "dead_after_s", &live.dead_after_s) {
            l.dead_after_s = self.int_in(&it, &DEAD_AFTER_S_RANGE, "seconds")?;
        }
        if let Some(it) = item("live", "stall_after_s", &live.stall_after_s) {
            l.stall_after_s = self.int_in(&it, &STALL_AFTER_S_RANGE, "seconds")?;
        }
        if let Some(it) = item("live", "reconnect_max_delay_s", &live.reconnect_max_delay_s) {
            l.reconnect_max_delay_s = self.int_in(&it, &RECONNECT_MAX_DELAY_S_RANGE, "seconds")?;
        }
        if let Some(it) = item("live", "config_error_delay_s", &live.config_error_delay_s) {
            l.config_error_delay_s = self.int_in(&it, &CONFIG_ERROR_DELAY_S_RANGE, "seconds")?;
        }
        if let Some(it) = item("live", "max_message_kb", &live.max_message_kb) {
            l.max_message_kb = self.int_in(&it, &MAX_MESSAGE_KB_RANGE, "KiB")?;
        }
        if let Some(it) = item("live", "tools", &live.tools) {
            l.tools = self.boolean(&it)?;
        }
        self.check_compression(l, &live)?;
        self.check_liveness(l, &live)?;

        let a = &mut cfg.audio;
        if let Some(it) = item("audio", "capture_device", &audio.capture_device) {
            a.capture_device = self.device(&it)?;
        }
        if let Some(it) = item("audio", "playback_device", &audio.playback_device) {
            a.playback_device = self.device(&it)?;
        }
        if let Some(it) = item("audio", "chunk_ms", &audio.chunk_ms) {
            a.chunk_ms = self.int_in(&it, &CHUNK_MS_RANGE, "milliseconds")?;
        }
        if let Some(it) = item("audio", "backlog_ms", &audio.backlog_ms) {
            a.backlog_ms = self.int_in(&it, &BACKLOG_MS_RANGE, "milliseconds")?;
        }
        if let Some(it) = item("audio", "volume", &audio.volume) {
            a.volume = self.int_in(&it, &VOLUME_RANGE, "percent")?;
        }
        if let Some(it) = item("audio", "echo", &audio.echo) {
            a.echo = self.choice(&it, &EchoMode::ALL, |e| e.as_str())?;
        }
        if let Some(it) = item("audio", "echo_tail_ms", &audio.echo_tail_ms) {
            a.echo_tail_ms = self.int_in(&it, &ECHO_TAIL_MS_RANGE, "milliseconds")?;
        }

        let v = &mut cfg.video;
        if let Some(it) = item("video", "enabled", &video.enabled) {
            v.enabled = self.boolean(&it)?;
        }
        if let Some(it) = item("video", "device", &video.device) {
            v.device = self.video_device(&it)?;
        }
        if let Some(it) = item("video", "capture_size", &video.capture_size) {
            v.capture_size = self.capture_size(&it)?;
        }
        if let Some(it) = item("video", "fps", &video.fps) {
            v.fps = self.fps(&it)?;
        }
        if let Some(it) = item("video", "send", &video.send) {
            v.send = self.choice(&it, &VideoSend::ALL, |s| s.as_str())?;
        }
        if let Some(it) = item("video", "size", &video.size) {
            v.size = self.int_in(&it, &VIDEO_SIZE_RANGE, "pixels")?;
        }
        if let Some(it) = item("video", "geometry", &video.geometry) {
            v.geometry = self.choice(&it, &GEOMETRIES, geometry_name)?;
        }
        if let Some(it) = item("video", "quality", &video.quality) {
            v.quality = self.int_in(&it, &VIDEO_QUALITY_RANGE, "JPEG quality, 100 = best")?;
        }

        let s = &mut cfg.session;
        if let Some(it) = item("session", "wake", &session.wake) {
            s.wake = self.choice(&it, &Wake::ALL, |w| w.as_str())?;
        }
        if let Some(it) = item("session", "idle_timeout_s", &session.idle_timeout_s) {
            s.idle_timeout_s = self.zero_or(&it, &IDLE_TIMEOUT_S_RANGE, "never")?;
        }
        if let Some(it) = item("session", "max_session_s", &session.max_session_s) {
            s.max_session_s = self.zero_or(&it, &MAX_SESSION_S_RANGE, "unlimited")?;
        }
        if let Some(it) = item("session", "chimes", &session.chimes) {
            s.chimes = self.boolean(&it)?;
        }

        cfg.button = self.button(&button)?;

        if let Some(it) = item("service", "log_level", &service.log_level) {
            cfg.service.log_level = self.choice(&it, &LogLevel::ALL, |l| l.as_str())?;
        }

        // A button is needed by wake = "button" and by push-to-talk.
        if !cfg.button.configured() {
            let needs = [
                (cfg.session.wake == Wake::Button, "wake", &session.wake),
                (
                    cfg.button.mode == ButtonMode::PushToTalk,
                    "mode",
                    &button.mode,
                ),
            ];
            for (used, key, raw) in needs {
                if let (true, Some(sp)) = (used, raw) {
                    let value = match key {
                        "wake" => cfg.session.wake.as_str(),
                        _ => cfg.button.mode.as_str(),
                    };
                    return Err(self.at(
                        sp.span(),
                        format!(
                            "{key} = \"{value}\" needs a button: set line (e.g. \"GPIO17\") or \
                             chip + offset in [button]"
                        ),
                    ));
                }
            }
        }
        Ok(cfg)
    }

    /// 0 (`zero` says what it means) or an integer in `range`, seconds.
    fn zero_or(
        &self,
        it: &Item<'_>,
        range: &std::ops::RangeInclusive<u64>,
        zero: &str,
    ) -> Result<u64, ConfigError> {
        let allowed = format!(
            "0 ({zero}) or {}..={} (seconds)",
            range.start(),
            range.end()
        );
        self.int_where(
            it,
            |v| v == 0 || range.contains(&v),
            "an integer, ",
            &allowed,
        )
    }

    fn button(&self, raw: &RawButton) -> Result<ButtonConfig, ConfigError> {
        let mut b = ButtonConfig::default();
        if let Some(it) = item("button", "line", &raw.line) {
            b.line = Some(self.line_name(&it)?);
        }
        if let Some(it) = item("button", "chip", &raw.chip) {
            b.chip = Some(self.chip(&it)?);
        }
        if let Some(it) = item("button", "offset", &raw.offset) {
            b.offset = Some(self.int_in(&it, &BUTTON_OFFSET_RANGE, "line offset on chip")?);
        }
        if let Some(it) = item("button", "active_low", &raw.active_low) {
            b.active_low = self.boolean(&it)?;
        }
        if let Some(it) = item("button", "bias", &raw.bias) {
            b.bias = self.choice(&it, &Bias::ALL, |x| x.as_str())?;
        }
        if let Some(it) = item("button", "debounce_ms", &raw.debounce_ms) {
            b.debounce_ms = self.int_in(&it, &DEBOUNCE_MS_RANGE, "milliseconds, 0 = off")?;
        }
        if let Some(it) = item("button", "long_press_ms", &raw.long_press_ms) {
            b.long_press_ms = self.int_in(&it, &LONG_PRESS_MS_RANGE, "milliseconds")?;
        }
        if let Some(it) = item("button", "mode", &raw.mode) {
            b.mode = self.choice(&it, &ButtonMode::ALL, |m| m.as_str())?;
        }
        if let Some(it) = item("button", "led_line", &raw.led_line) {
            b.led_line = Some(self.led_line(&it)?);
        }
        self.check_button_line(raw)?;
        if let (Some(led), Some(input), Some(sp)) = (b.led(), b.input(), &raw.led_line) {
            if same_line(&led, &input) {
                return Err(self.at(
                    sp.span(),
                    format!(
                        "invalid value {} for led_line in [button]: that is the button's own \
                         line; the LED needs a line of its own, e.g. \"GPIO27\"",
                        quote(b.led_line.as_deref().unwrap_or_default())
                    ),
                ));
            }
        }
        Ok(b)
    }

    /// `line` excludes `chip`/`offset` (the error sits at whichever comes second in the file);
    /// `chip` and `offset` go together.
    fn check_button_line(&self, raw: &RawButton) -> Result<(), ConfigError> {
        let line = raw.line.as_ref().map(|sp| ("line", sp));
        let chip = raw.chip.as_ref().map(|sp| ("chip", sp));
        let offset = raw.offset.as_ref().map(|sp| ("offset", sp));
        let shown = |(key, sp): (&str, &Spanned<Value>)| match sp.get_ref() {
            Value::String(s) => format!("{key} = {}", quote(s.trim())),
            Value::Integer(n) => format!("{key} = {n}"),
            other => format!("{key} ({})", describe(other)),
        };
        if let Some(l) = line {
            let first_of_pair = [chip, offset]
                .into_iter()
                .flatten()
                .min_by_key(|(_, sp)| sp.span().start);
            if let Some(p) = first_of_pair {
                let (first, second) = if p.1.span().start > l.1.span().start {
                    (l, p)
                } else {
                    (p, l)
                };
                return Err(self.at(
                    second.1.span(),
                    format!(
                        "{} in [button] conflicts with {}: name the button's line either by \
                         line (e.g. \"GPIO17\") or by chip + offset, not both",
                        shown(second),
                        shown(first)
                    ),
                ));
            }
        }
        match (chip, offset) {
            (Some(c), None) => Err(self.at(
                c.1.span(),
                format!(
                    "{} in [button] needs offset too: the line's offset on that chip, {}..={} \
                     (see `gpioinfo`); or name the line instead, e.g. line = \"GPIO17\"",
                    shown(c),
                    BUTTON_OFFSET_RANGE.start(),
                    BUTTON_OFFSET_RANGE.end()
                ),
            )),
            (None, Some(o)) => Err(self.at(
                o.1.span(),
                format!(
                    "{} in [button] needs chip too, e.g. chip = \"gpiochip0\" (see `gpioinfo`); \
                     or name the line instead, e.g. line = \"GPIO17\"",
                    shown(o)
                ),
            )),
            _ => Ok(()),
        }
    }

    /// A GPIO line name for the button: trimmed, non-empty, not a bare number or `CHIP:OFFSET`.
    fn line_name(&self, it: &Item<'_>) -> Result<String, ConfigError> {
        let expected = "a string, a GPIO line name such as \"GPIO17\"";
        let s = match it.value {
            Value::String(s) => s.trim(),
            Value::Integer(n) => {
                return Err(self.at(
                    it.span.clone(),
                    format!(
                        "wrong type for line in [button]: expected {expected}, found integer \
                         {n}; write line = \"GPIO{n}\" for the Raspberry Pi's GPIO {n}, or give \
                         the chip too: chip = \"gpiochip0\" and offset = {n}"
                    ),
                ))
            }
            _ => return Err(self.wrong_type(it, expected)),
        };
        let bad = |why: String| {
            self.at(
                it.span.clone(),
                format!("invalid value {} for line in [button]{why}", quote(s)),
            )
        };
        if s.is_empty() {
            return Err(bad(
                "; expected a GPIO line name such as \"GPIO17\" (see `gpioinfo` or `gemlive \
                 list-devices`), or leave line unset for no button"
                    .to_string(),
            ));
        }
        if s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad(format!(
                ": a line name, not a number; write \"GPIO{s}\" for the Raspberry Pi's GPIO {s} \
                 (header names use the GPIO number, not the physical pin number), or give the \
                 chip: chip = \"gpiochip0\" and offset = {s}"
            )));
        }
        if let Some(LineSpec::ChipOffset { chip, offset }) = LineSpec::parse(s) {
            return Err(bad(format!(
                ": for a chip and an offset write chip = {} and offset = {offset} instead",
                quote(&chip)
            )));
        }
        Ok(s.to_string())
    }

    /// A GPIO chip: `gpiochip0` or `/dev/gpiochip0`; trimmed, non-empty, no spaces.
    fn chip(&self, it: &Item<'_>) -> Result<String, ConfigError> {
        let s = self
            .string(it, "a string, a GPIO chip such as \"gpiochip0\"")?
            .trim();
        let hint = "expected a GPIO chip such as \"gpiochip0\" or \"/dev/gpiochip0\" (see \
                    `gpioinfo`)";
        let why = if s.is_empty() {
            format!("; {hint}, or leave chip unset and use line (e.g. \"GPIO17\")")
        } else if s.bytes().all(|b| b.is_ascii_digit()) {
            format!("; {hint}: write \"gpiochip{s}\"")
        } else if s.chars().any(char::is_whitespace) {
            format!("; {hint}")
        } else {
            return Ok(s.to_string());
        };
        Err(self.at(
            it.span.clone(),
            format!("invalid value {} for chip in [button]{why}", quote(s)),
        ))
    }

    /// The LED's line: a line name or `CHIP:OFFSET`, offset in [`BUTTON_OFFSET_RANGE`].
    fn led_line(&self, it: &Item<'_>) -> Result<String, ConfigError> {
        let form = "a line name such as \"GPIO27\" or \"CHIP:OFFSET\" such as \"gpiochip0:27\"";
        let s = self.string(it, &format!("a string, {form}"))?.trim();
        let bad = |why: &str| {
            self.at(
                it.span.clone(),
                format!("invalid value {} for led_line in [button]{why}", quote(s)),
            )
        };
        let (lo, hi) = (BUTTON_OFFSET_RANGE.start(), BUTTON_OFFSET_RANGE.end());
        if s.is_empty() {
            return Err(bad(&format!(
                "; expected {form}, or leave led_line unset for no LED"
            )));
        }
        if s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad(&format!(
                ": a line name, not a number; write \"GPIO{s}\" for the Raspberry Pi's GPIO {s}, \
                 or \"gpiochip0:{s}\" for offset {s} on gpiochip0"
            )));
        }
        if let Some((chip, n)) = s.rsplit_once(':') {
            let (chip, n) = (chip.trim(), n.trim());
            let offset_ok = !n.is_empty()
                && n.bytes().all(|b| b.is_ascii_digit())
                && n.parse::<u32>()
                    .is_ok_and(|o| BUTTON_OFFSET_RANGE.contains(&o));
            if chip.is_empty() || chip.chars().any(char::is_whitespace) || !offset_ok {
                return Err(bad(&format!("; expected {form} (the offset {lo}..={hi})")));
            }
        }
        Ok(s.to_string())
    }

    fn video_device(&self, it: &Item<'_>) -> Result<String, ConfigError> {
        let s = self
            .string(it, "a string (camera device or .mjpeg file path)")?
            .trim();
        if s.is_empty() {
            return Err(self.at(
                it.span.clone(),
                format!(
                    "invalid value \"\" for device in [video]; expected a V4L2 capture device \
                     such as \"{DEFAULT_VIDEO_DEVICE}\" (see `gemlive list-devices`) or the path \
                     of an .mjpeg file; to run without a camera set enabled = false"
                ),
            ));
        }
        Ok(s.to_string())
    }

    /// `"auto"` (→ `None`) or `"WIDTHxHEIGHT"`, each side in [`CAPTURE_SIDE_RANGE`].
    fn capture_size<'v>(&self, it: &Item<'v>) -> Result<Option<(u32, u32)>, ConfigError> {
        let (lo, hi) = (CAPTURE_SIDE_RANGE.start(), CAPTURE_SIDE_RANGE.end());
        let form = format!(
            "\"auto\" or \"WIDTHxHEIGHT\" such as \"1280x720\" (each side {lo}..={hi} pixels)"
        );
        let s = self.string(it, &format!("a string, {form}"))?;
        let t = s.trim();
        if t.eq_ignore_ascii_case("auto") {
            return Ok(None);
        }
        let side = |p: &'v str| {
            let p = p.trim();
            (!p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())).then_some(p)
        };
        let parsed = t
            .split_once(['x', 'X', '×'])
            .and_then(|(w, h)| Some((side(w)?, side(h)?)));
        let Some((w, h)) = parsed else {
            return Err(self.at(
                it.span.clone(),
                format!(
                    "invalid value {} for capture_size in [video]; expected {form}",
                    quote(s)
                ),
            ));
        };
        let fits = |n: &str| {
            n.parse::<u32>()
                .ok()
                .filter(|n| CAPTURE_SIDE_RANGE.contains(n))
        };
        match (fits(w), fits(h)) {
            (Some(w), Some(h)) => Ok(Some((w, h))),
            (bad_w, _) => {
                let (what, n) = if bad_w.is_none() {
                    ("width", w)
                } else {
                    ("height", h)
                };
                Err(self.at(
                    it.span.clone(),
                    format!(
                        "invalid value {} for capture_size in [video]: {what} {n} is out of \
                         range; allowed: {form}",
                        quote(s)
                    ),
                ))
            }
        }
    }

    /// A number (integer or float) in [`VIDEO_FPS_RANGE`].
    fn fps(&self, it: &Item<'_>) -> Result<f64, ConfigError> {
        let (lo, hi) = (*VIDEO_FPS_RANGE.start(), *VIDEO_FPS_RANGE.end());
        let allowed = format!("{lo}..={hi:.1} (frames per second)");
        let v = match it.value {
            Value::Float(f) => *f,
            Value::Integer(n) => *n as f64,
            _ => return Err(self.wrong_type(it, &format!("a number in {allowed}"))),
        };
        if VIDEO_FPS_RANGE.contains(&v) {
            return Ok(v);
        }
        let shown = match it.value {
            Value::Integer(n) => n.to_string(),
            _ => v.to_string(),
        };
        let why = if v > hi {
            "; the Live API takes at most 1 frame per second"
        } else {
            ""
        };
        Err(self.at(
            it.span.clone(),
            format!("invalid value {shown} for fps in [video]; allowed: {allowed}{why}"),
        ))
    }

    fn wrong_type(&self, it: &Item<'_>, expected: &str) -> ConfigError {
        self.at(
            it.span.clone(),
            format!(
                "wrong type for {} in [{}]: expected {expected}, found {}",
                it.key,
                it.table,
                describe(it.value)
            ),
        )
    }

    fn string<'v>(&self, it: &Item<'v>, expected: &str) -> Result<&'v str, ConfigError> {
        match it.value {
            Value::String(s) => Ok(s),
            _ => Err(self.wrong_type(it, expected)),
        }
    }

    fn boolean(&self, it: &Item<'_>) -> Result<bool, ConfigError> {
        match it.value {
            Value::Boolean(b) => Ok(*b),
            _ => Err(self.wrong_type(it, "true or false (without quotes)")),
        }
    }

    /// An integer in `range` (inclusive), converted to the field's type.
    fn int_in<T>(
        &self,
        it: &Item<'_>,
        range: &std::ops::RangeInclusive<T>,
        unit: &str,
    ) -> Result<T, ConfigError>
    where
        T: Copy + Into<u64> + TryFrom<u64>,
    {
        let (lo, hi) = ((*range.start()).into(), (*range.end()).into());
        let allowed = format!("{lo}..={hi} ({unit})");
        let v = self.int_where(it, |v| (lo..=hi).contains(&v), "an integer in ", &allowed)?;
        T::try_from(v).map_err(|_| self.out_of(it, &allowed))
    }

    /// A non-negative integer accepted by `ok`; `allowed` describes the accepted values (with
    /// the unit) and follows `expected` in the wrong-type message.
    fn int_where(
        &self,
        it: &Item<'_>,
        ok: impl Fn(u64) -> bool,
        expected: &str,
        allowed: &str,
    ) -> Result<u64, ConfigError> {
        let Value::Integer(n) = it.value else {
            return Err(self.wrong_type(it, &format!("{expected}{allowed}")));
        };
        match u64::try_from(*n) {
            Ok(v) if ok(v) => Ok(v),
            _ => Err(self.out_of(it, allowed)),
        }
    }

    fn out_of(&self, it: &Item<'_>, allowed: &str) -> ConfigError {
        self.at(
            it.span.clone(),
            format!(
                "invalid value {} for {} in [{}]; allowed: {allowed}",
                match it.value {
                    Value::Integer(n) => n.to_string(),
                    other => describe(other),
                },
                it.key,
                it.table
            ),
        )
    }

    /// With compression on, the target must be below the trigger. The error sits at the
    /// target's value if the file sets it, else at the trigger's.
    fn check_compression(&self, l: &LiveConfig, raw: &RawLive) -> Result<(), ConfigError> {
        let (trigger, target) = (l.compression_trigger_tokens, l.compression_target_tokens);
        if trigger == 0 || target < trigger {
            return Ok(());
        }
        let default = |sp: &RawValue| if sp.is_some() { "" } else { ", the default" };
        let (span, message) = match (
            &raw.compression_target_tokens,
            &raw.compression_trigger_tokens,
        ) {
            (Some(sp), _) => (
                sp.span(),
                format!(
                    "invalid value {target} for compression_target_tokens in [live]: must be \
                     less than compression_trigger_tokens ({trigger}{}); allowed: 0..={} \
                     (tokens), or set compression_trigger_tokens = 0 to turn compression off",
                    default(&raw.compression_trigger_tokens),
                    trigger - 1
                ),
            ),
            (None, Some(sp)) => (
                sp.span(),
                format!(
                    "invalid value {trigger} for compression_trigger_tokens in [live]: must be \
                     greater than compression_target_tokens ({target}, the default); allowed: \
                     0 (compression off) or {}..={} (tokens), or set compression_target_tokens \
                     lower as well",
                    (target + 1).max(*COMPRESSION_TRIGGER_TOKENS_RANGE.start()),
                    COMPRESSION_TRIGGER_TOKENS_RANGE.end()
                ),
            ),
            (None, None) => return Ok(()), // the defaults are consistent
        };
        Err(self.at(span, message))
    }

    /// `dead_after_s` must exceed `ping_interval_s`. The error sits at `dead_after_s`'s value if
    /// the file sets it, else at `ping_interval_s`'s.
    fn check_liveness(&self, l: &LiveConfig, raw: &RawLive) -> Result<(), ConfigError> {
        let (ping, dead) = (l.ping_interval_s, l.dead_after_s);
        if dead > ping {
            return Ok(());
        }
        let default = |sp: &RawValue| if sp.is_some() { "" } else { ", the default" };
        let (span, message) = match (&raw.dead_after_s, &raw.ping_interval_s) {
            (Some(sp), _) => (
                sp.span(),
                format!(
                    "invalid value {dead} for dead_after_s in [live]: must be greater than \
                     ping_interval_s ({ping}{}); allowed: {}..={} (seconds)",
                    default(&raw.ping_interval_s),
                    (ping + 1).max(*DEAD_AFTER_S_RANGE.start()),
                    DEAD_AFTER_S_RANGE.end()
                ),
            ),
            (None, Some(sp)) => (
                sp.span(),
                format!(
                    "invalid value {ping} for ping_interval_s in [live]: must be less than \
                     dead_after_s ({dead}, the default); allowed: {}..={} (seconds), or set \
                     dead_after_s higher as well",
                    PING_INTERVAL_S_RANGE.start(),
                    (dead - 1).min(*PING_INTERVAL_S_RANGE.end())
                ),
            ),
            (None, None) => return Ok(()), // the defaults are consistent
        };
        Err(self.at(span, message))
    }

    fn choice<T: Copy>(
        &self,
        it: &Item<'_>,
        all: &[T],
        name: impl Fn(T) -> &'static str,
    ) -> Result<T, ConfigError> {
        let allowed = all.iter().map(|t| name(*t)).collect::<Vec<_>>().join(", ");
        let s = self.string(it, &format!("a string, one of: {allowed}"))?;
        all.iter()
            .copied()
            .find(|t| name(*t).eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                self.at(
                    it.span.clone(),
                    format!(
                        "invalid value {} for {} in [{}]; allowed: {allowed}",
                        quote(s),
                        it.key,
                        it.table
                    ),
                )
            })
    }

    fn device(&self, it: &Item<'_>) -> Result<String, ConfigError> {
        let s = self.string(it, "a string (ALSA device name)")?.trim();
        if s.is_empty() {
            return Err(self.at(
                it.span.clone(),
                format!(
                    "invalid value \"\" for {} in [{}]; expected an ALSA device name such as \
                     \"default\" or \"plughw:CARD=Device,DEV=0\" (see `gemlive list-devices`)",
                    it.key, it.table
                ),
            ));
        }
        Ok(s.to_string())
    }
}

/// The table meant by a common other name (`normalized`: lowercase ASCII alphanumerics).
fn table_alias(normalized: &str) -> Option<&'static str> {
    Some(match normalized {
        "camera" | "cam" | "webcam" | "v4l2" => "video",
        "mic" | "microphone" | "speaker" | "sound" | "alsa" => "audio",
        "gpio" | "buttons" | "pushbutton" | "ptt" | "pushtotalk" | "led" | "switch" => "button",
        "log" | "logs" | "logging" | "systemd" | "daemon" | "system" | "general" => "service",
        "wake" | "wakeup" => "session",
        _ => return None,
    })
}

/// A hint for a key that users write under another name (`normalized`: lowercase ASCII
/// alphanumerics), e.g. `pin` in [button].
fn key_alias(table: &str, normalized: &str) -> Option<&'static str> {
    Some(match (table, normalized) {
        ("button", "pin" | "gpio" | "gpiopin" | "bcm" | "number" | "pinnumber" | "gpioline") => {
            "did you mean `line` (a line name such as \"GPIO17\") or `offset` (with `chip`)?"
        }
        ("button", "led" | "ledpin" | "ledgpio" | "light" | "lamp") => "did you mean `led_line`?",
        ("button", "pull" | "pullup" | "pulldown" | "resistor" | "pullresistor") => {
            "did you mean `bias` (\"pull_up\", \"pull_down\", \"disabled\" or \"as_is\")?"
        }
        ("button", "activehigh" | "invert" | "inverted" | "polarity" | "activelevel") => {
            "did you mean `active_low` (true = pressed connects the pin to ground)?"
        }
        ("button", "enabled" | "enable") => {
            "the button is on when `line` (or `chip` + `offset`) is set"
        }
        ("button", "pushtotalk" | "ptt") => "did you mean `mode = \"push_to_talk\"`?",
        ("button", "hold" | "holdms" | "longpress") => "did you mean `long_press_ms`?",
        ("session", "idle" | "inactivity" | "silencetimeout" | "idletime") => {
            "did you mean `idle_timeout_s`?"
        }
        ("session", "maxsession" | "sessiontimeout" | "maxduration" | "timelimit" | "duration") => {
            "did you mean `max_session_s`?"
        }
        ("session", "chime" | "sound" | "sounds" | "beep" | "beeps" | "feedback") => {
            "did you mean `chimes`?"
        }
        ("session", "pushtotalk" | "ptt") => "set `mode = \"push_to_talk\"` in [button]",
        ("audio", "aec" | "echocancellation" | "echocancel" | "halfduplex" | "duplex") => {
            "did you mean `echo` (\"aec\", \"half_duplex\" or \"none\")?"
        }
        ("audio", "tail" | "echotail") => "did you mean `echo_tail_ms`?",
        ("service", "log" | "loglevel" | "level" | "verbosity" | "verbose" | "logging") => {
            "did you mean `log_level`?"
        }
        _ => return None,
    })
}

/// The same GPIO line, written the same way (a chip with or without `/dev/`).
fn same_line(a: &LineSpec, b: &LineSpec) -> bool {
    let chip = |c: &str| c.strip_prefix("/dev/").unwrap_or(c).to_string();
    match (a, b) {
        (LineSpec::Name(x), LineSpec::Name(y)) => x == y,
        (
            LineSpec::ChipOffset {
                chip: c1,
                offset: o1,
            },
            LineSpec::ChipOffset {
                chip: c2,
                offset: o2,
            },
        ) => o1 == o2 && chip(c1) == chip(c2),
        _ => false,
    }
}

fn item<'v>(table: &'static str, key: &'static str, v: &'v RawValue) -> Option<Item<'v>> {
    v.as_ref().map(|sp| Item {
        table,
        key,
        value: sp.get_ref(),
        span: sp.span(),
    })
}

/// A short, quoted rendering of a string value for messages (long values are cut).
fn quote(s: &str) -> String {
    const MAX: usize = 60;
    if s.chars().count() > MAX {
        let cut: String = s.chars().take(MAX).collect();
        format!("{:?}…", cut)
    } else {
        format!("{s:?}")
    }
}

fn describe(v: &Value) -> String {
    match v {
        Value::String(s) => format!("string {}", quote(s)),
        Value::Integer(n) => format!("integer {n}"),
        Value::Float(f) => format!("float {f}"),
        Value::Boolean(b) => format!("boolean {b}"),
        other => other.type_str().to_string(),
    }
}

fn list(items: &[&str], f: impl Fn(&str) -> String) -> String {
    items.iter().map(|k| f(k)).collect::<Vec<_>>().join(", ")
}

fn one_line(s: &str) -> String {
    s.trim()
        .lines()
        .map(str::trim)
        .collect::<Vec<_>>()
        .join("; ")
}

fn floor_char_boundary(text: &str, offset: usize) -> usize {
    let mut o = offset.min(text.len());
    while !text.is_char_boundary(o) {
        o -= 1;
    }
    o
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = floor_char_boundary(text, offset);
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// Optimal-string-alignment distance (Levenshtein plus adjacent transpositions).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[a.len()][b.len()]
}

/// The candidate nearest to `name`, if it is close enough to be a plausible typo.
fn suggest<'c>(name: &str, candidates: &[&'c str]) -> Option<&'c str> {
    let lower = name.to_ascii_lowercase().replace('-', "_");
    let max = match lower.chars().count() {
        0..=2 => 0,
        3..=5 => 1,
        6..=9 => 2,
        _ => 3,
    };
    let (dist, best) = candidates
        .iter()
        .map(|c| (edit_distance(&lower, c), *c))
        .min_by_key(|(d, _)| *d)?;
    if dist <= max {
        return Some(best);
    }
    // `timeout` → `setup_timeout_ms`, `voice_name` → `voice`: a unique containment.
    if lower.len() >= 4 {
        let hits: Vec<&str> = candidates
            .iter()
            .copied()
            .filter(|c| c.contains(lower.as_str()) || lower.contains(c))
            .collect();
        if let [one] = hits[..] {
            return Some(one);
        }
    }
    None
}

fn suggest_voice(s: &str) -> Option<&'static str> {
    let lower: Vec<String> = VOICES.iter().map(|v| v.to_ascii_lowercase()).collect();
    let refs: Vec<&str> = lower.iter().map(String::as_str).collect();
    let hit = suggest(s, &refs)?;
    VOICES.iter().copied().find(|v| v.eq_ignore_ascii_case(hit))
}

// ---------------------------------------------------------------------------------------------
// API key.

/// Where the API key came from (for `check-config` and logs; never the key itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// `api_key_file` in `[live]`.
    File(PathBuf),
    /// The `GEMINI_API_KEY` environment variable.
    Env,
    /// `$CREDENTIALS_DIRECTORY/gemini-api-key` (systemd `LoadCredential=`).
    Credential(PathBuf),
    /// [`SERVICE_KEY_FILE`], the file the packaged unit loads as its credential.
    ServiceFile,
}

/// The key file the package's unit loads (`LoadCredential=gemini-api-key:/etc/gemlive/api-key`).
/// Read as a last resort so that `sudo gemlive check-config --online` and `sudo gemlive run`
/// use the service's own key without repeating it anywhere.
pub const SERVICE_KEY_FILE: &str = "/etc/gemlive/api-key";

impl fmt::Display for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::File(p) => write!(f, "api_key_file {}", p.display()),
            KeySource::Env => f.write_str(API_KEY_ENV),
            KeySource::Credential(p) => {
                write!(f, "systemd credential {CREDENTIAL_NAME}, {}", p.display())
            }
            KeySource::ServiceFile => write!(f, "the service's key file {SERVICE_KEY_FILE}"),
        }
    }
}

/// Finds the API key: (1) `api_key_file` if set (must exist, be mode 0600 or stricter, and be
/// non-empty; a problem here is an error, not a fall-through), (2) `$GEMINI_API_KEY` if
/// non-empty, (3) `$CREDENTIALS_DIRECTORY/gemini-api-key` if present, (4) [`SERVICE_KEY_FILE`]
/// if it exists (mode 0600; unreadable = an error that says to use sudo). `Ok(None)` = no key.
pub fn resolve_api_key(
    live: &LiveConfig,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Option<(ApiKey, KeySource)>, ConfigError> {
    resolve_api_key_with(live, env, Path::new(SERVICE_KEY_FILE))
}

fn resolve_api_key_with(
    live: &LiveConfig,
    env: impl Fn(&str) -> Option<String>,
    service_file: &Path,
) -> Result<Option<(ApiKey, KeySource)>, ConfigError> {
    if let Some(path) = &live.api_key_file {
        let key = read_key_file(path, true)?;
        return Ok(Some((key, KeySource::File(path.clone()))));
    }
    if let Some(v) = env(API_KEY_ENV) {
        let v = v.trim();
        if !v.is_empty() {
            check_key_chars(v, API_KEY_ENV.to_string(), "the variable")?;
            return Ok(Some((ApiKey::new(v), KeySource::Env)));
        }
    }
    if let Some(dir) = env("CREDENTIALS_DIRECTORY").filter(|d| !d.trim().is_empty()) {
        let path = Path::new(&dir).join(CREDENTIAL_NAME);
        match std::fs::metadata(&path) {
            Ok(_) => {
                let key = read_key_file(&path, false)?;
                return Ok(Some((key, KeySource::Credential(path))));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(ConfigError::ApiKey {
                    origin: path.display().to_string(),
                    message: format!("cannot read systemd credential {CREDENTIAL_NAME}: {e}"),
                })
            }
        }
    }
    match std::fs::File::open(service_file).map_err(|e| e.kind()) {
        Err(std::io::ErrorKind::NotFound) => Ok(None),
        Err(std::io::ErrorKind::PermissionDenied) => Err(ConfigError::ApiKey {
            origin: service_file.display().to_string(),
            message: "the service's key file is readable by root only (as it should be): run \
                      this command with sudo, or set GEMINI_API_KEY"
                .to_string(),
        }),
        // Anything else: read_key_file says what is wrong with it.
        _ => Ok(Some((
            read_key_file(service_file, true)?,
            KeySource::ServiceFile,
        ))),
    }
}

/// [`resolve_api_key`] without the key, for `check-config`.
pub fn api_key_status(
    live: &LiveConfig,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Option<KeySource>, ConfigError> {
    resolve_api_key(live, env).map(|o| o.map(|(_, source)| source))
}

fn read_key_file(path: &Path, check_mode: bool) -> Result<ApiKey, ConfigError> {
    use std::os::unix::fs::PermissionsExt;

    let what = if check_mode {
        "api_key_file".to_string()
    } else {
        format!("systemd credential {CREDENTIAL_NAME}")
    };
    let err = |message: String| ConfigError::ApiKey {
        origin: path.display().to_string(),
        message,
    };
    let file = std::fs::File::open(path).map_err(|e| err(format!("cannot read {what}: {e}")))?;
    let meta = file
        .metadata()
        .map_err(|e| err(format!("cannot read {what}: {e}")))?;
    if !meta.is_file() {
        return Err(err(format!("{what} is not a regular file")));
    }
    let mode = meta.permissions().mode();
    if check_mode && mode & 0o077 != 0 {
        return Err(err(format!(
            "{what} is readable by group or others (mode {:04o}); run `chmod 600 {}`",
            mode & 0o7777,
            path.display()
        )));
    }
    let mut bytes = Vec::new();
    file.take(64 * 1024)
        .read_to_end(&mut bytes)
        .map_err(|e| err(format!("cannot read {what}: {e}")))?;
    let text = String::from_utf8(bytes).map_err(|_| {
        err(format!(
            "{what} is not text; it must hold only the key, on one line"
        ))
    })?;
    let key = text.trim();
    if key.is_empty() {
        return Err(err(format!(
            "{what} is empty; it must hold only the key, on one line"
        )));
    }
    check_key_chars(key, path.display().to_string(), &what)?;
    Ok(ApiKey::new(key))
}

/// The key travels in an HTTP header: printable ASCII, no spaces. Never echoes the key.
fn check_key_chars(key: &str, origin: String, what: &str) -> Result<(), ConfigError> {
    if key.bytes().all(|b| b.is_ascii_graphic()) {
        return Ok(());
    }
    let mut message = format!(
        "{what} must hold only the key (found spaces, line breaks or non-ASCII characters)"
    );
    if key.contains('=') && key.contains(API_KEY_ENV) {
        message.push_str(&format!("; write the bare key, not {API_KEY_ENV}=..."));
    }
    Err(ConfigError::ApiKey { origin, message })
}

// ---------------------------------------------------------------------------------------------
// check-config.

/// The effective settings, one screen, for `gemlive check-config`. Never shows the key.
pub fn summary(cfg: &Config, key: &Result<Option<KeySource>, ConfigError>) -> String {
    let l = &cfg.live;
    let a = &cfg.audio;
    let on = |b: bool| if b { "on" } else { "off" };
    let instruction = {
        let flat: String = l
            .system_instruction
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        let n = flat.chars().count();
        if n == 0 {
            "(none)".to_string()
        } else if n > 60 {
            let cut: String = flat.chars().take(60).collect();
            format!("\"{cut}…\" ({n} chars)")
        } else {
            format!("\"{flat}\"")
        }
    };
    let key_line = match key {
        Ok(Some(source)) => format!("set (from {source})"),
        Ok(None) => format!(
            "missing — put it in {SERVICE_KEY_FILE} (chmod 600), or set api_key_file, \
             {API_KEY_ENV} or the systemd credential {CREDENTIAL_NAME}"
        ),
        Err(e) => format!("error — {e}"),
    };
    let compression = if l.compression_trigger_tokens == 0 {
        "compression off".to_string()
    } else {
        format!(
            "compression {}→{} tokens",
            l.compression_trigger_tokens, l.compression_target_tokens
        )
    };
    let tools = if l.tools {
        "on (end_session, set_volume)"
    } else {
        "off"
    };
    let v = &cfg.video;
    let video = if v.enabled {
        let capture = match v.capture_size {
            Some((w, h)) => format!("{w}x{h}"),
            None => "auto".to_string(),
        };
        let out = match v.geometry {
            Geometry::Fit => format!("long side {} px", v.size),
            _ => format!("{0}×{0}", v.size),
        };
        format!(
            "{} (capture {capture}), {} frame/s {}, {out} {}, JPEG quality {}",
            v.device,
            v.fps,
            match v.send {
                VideoSend::Always => "always",
                VideoSend::WhileSpeaking => "while speaking",
            },
            geometry_name(v.geometry),
            v.quality
        )
    } else {
        "off (audio only)".to_string()
    };
    let se = &cfg.session;
    let wake = {
        let idle = match (se.wake, se.idle_timeout_s) {
            (Wake::Always, _) => String::new(),
            (Wake::Button, 0) => ", never idles".to_string(),
            (Wake::Button, n) => format!(", idle after {n} s without speech"),
        };
        let max = match se.max_session_s {
            0 => "unlimited".to_string(),
            n => format!("{n} s"),
        };
        format!(
            "{}{idle}, max session {max}, chimes {}",
            se.wake.as_str(),
            on(se.chimes)
        )
    };
    let b = &cfg.button;
    let button = match b.input() {
        None => "none".to_string(),
        Some(input) => {
            let mode = match b.mode {
                ButtonMode::Toggle => format!("toggle (long press {} ms ends)", b.long_press_ms),
                ButtonMode::PushToTalk => "push to talk".to_string(),
            };
            let debounce = match b.debounce_ms {
                0 => "no debounce".to_string(),
                n => format!("debounce {n} ms"),
            };
            format!(
                "{input} (active {}, {}, {debounce}), {mode}",
                if b.active_low { "low" } else { "high" },
                match b.bias {
                    Bias::PullUp => "pull-up",
                    Bias::PullDown => "pull-down",
                    Bias::Disabled => "no pull",
                    Bias::AsIs => "bias as is",
                }
            )
        }
    };
    let led = b.led().map(|l| format!(", LED {l}")).unwrap_or_default();
    let echo = match a.echo {
        EchoMode::Aec => format!(
            "echo cancellation (AEC3; mic muted while it converges, {} ms tail)",
            a.echo_tail_ms
        ),
        EchoMode::None => "none".to_string(),
        EchoMode::HalfDuplex => format!(
            "half duplex (mic muted while a reply plays and {} ms after)",
            a.echo_tail_ms
        ),
    };
    let lines = [
        format!("config: {} (ok)", cfg.path.display()),
        format!("endpoint: {}", l.endpoint),
        format!("model: {}", l.model),
        format!("voice: {}", l.voice),
        format!("media resolution: {}", l.media_resolution.as_str()),
        format!("system instruction: {instruction}"),
        format!(
            "transcription: input {}, output {}",
            on(l.input_transcription),
            on(l.output_transcription)
        ),
        format!("setup timeout: {} ms", l.setup_timeout_ms),
        format!(
            "session: resumption {}, {compression}, hand-over at {} s, ping {} s, dead after {} s, \
             stalled after {} s, max message {} KiB",
            on(l.resumption),
            l.max_connection_age_s,
            l.ping_interval_s,
            l.dead_after_s,
            l.stall_after_s,
            l.max_message_kb
        ),
        format!(
            "reconnect: backoff {} s…{} s, config errors wait {} s (doubling up to {} s)",
            RECONNECT_INITIAL_DELAY_MS as f64 / 1000.0,
            l.reconnect_max_delay_s,
            l.config_error_delay_s,
            CONFIG_ERROR_MAX_DELAY_S.max(l.config_error_delay_s)
        ),
        format!("tools: {tools}"),
        format!("capture device: {}", a.capture_device),
        format!("playback device: {}", a.playback_device),
        format!(
            "chunk: {} ms, mic backlog {} ms, volume {}%",
            a.chunk_ms, a.backlog_ms, a.volume
        ),
        format!("echo: {echo}"),
        format!("video: {video}"),
        format!("wake: {wake}"),
        format!("button: {button}{led}"),
        format!(
            "log level: {} (-v and GEMLIVE_LOG override it)",
            cfg.service.log_level.as_str()
        ),
        format!("api key: {key_line}"),
    ];
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

// ---------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
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
        assert!(d.live.resumption && d.live.tools);
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
tools = false
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
        assert!(!c.live.resumption && !c.live.tools);
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
        for key in ["resumption", "tools"] {
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
        let c =
            parse("[live]\ncompression_trigger_tokens = 0\ncompression_target_tokens = 1000000\n")
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
            m.contains("must be less than compression_trigger_tokens (25600, the default); allowed: 0..=25599"),
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
            format!(
                "wrong type for capture_size in [video]: expected a string, {form}, found array"
            )
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
        let c =
            parse("[video]\ndevice = \"/dev/v4l/by-id/usb-cam-video-index0\"\n").expect("by-id");
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
                format!(
                    "chip = \"gpiochip0\" in [button] conflicts with line = \"GPIO17\": {either}"
                ),
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
                format!(
                    "line = \"GPIO17\" in [button] conflicts with chip = \"gpiochip0\": {either}"
                ),
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
            format!(
                "wrong type for led_line in [button]: expected a string, {form}, found integer 27"
            )
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
    fn wake_button_and_push_to_talk_need_a_button() {
        let need = "needs a button: set line (e.g. \"GPIO17\") or chip + offset in [button]";
        let (l, c, m) = err("[session]\nwake = \"Button\"\n");
        assert_eq!((l, c), (2, 8), "{m}");
        assert_eq!(m, format!("wake = \"button\" {need}"));
        let (l, c, m) = err("[button]\nmode = \"push_to_talk\"\n");
        assert_eq!((l, c), (2, 8), "{m}");
        assert_eq!(m, format!("mode = \"push_to_talk\" {need}"));
        // Tables in either order; an LED alone is not a button.
        let (l, c, m) = err(
            "[button]\nled_line = \"GPIO27\"\nbias = \"as_is\"\n[session]\nwake = \"button\"\n",
        );
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
                "[live]\nvoice = \"Kroe\"\n",
                2,
                9,
                &["\"Kroe\"", "did you mean Kore?", "Zephyr", "Sulafat"],
            ),
            (
                "[live]\nvoice = \"Bob\"\n",
                2,
                9,
                &["\"Bob\"", "allowed (case-insensitive): Zephyr, Puck"],
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
                 [button], [service]",
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
        assert_eq!(suggest("voise", LIVE_KEYS), Some("voice"));
        assert_eq!(suggest("Model", LIVE_KEYS), Some("model"));
        assert_eq!(suggest("xyz", LIVE_KEYS), None);
        assert_eq!(suggest("transcription", LIVE_KEYS), None); // ambiguous
        assert_eq!(suggest("device", AUDIO_KEYS), None); // ambiguous
        assert_eq!(suggest("capture", AUDIO_KEYS), Some("capture_device"));
        assert_eq!(suggest_voice("kroe"), Some("Kore"));
        assert_eq!(suggest_voice("zzzzzzz"), None);
    }

    #[test]
    fn key_lists_match_the_raw_structs() {
        // Every listed key is accepted by serde (a wrong type reaches stage 2, not "unknown").
        for (table, keys) in SECTIONS {
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
            let p =
                std::env::temp_dir().join(format!("gemlive-config-{}-{name}", std::process::id()));
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
            "media resolution: low",
            "system instruction: (none)",
            "transcription: input on, output on",
            "capture device: default",
            "chunk: 40 ms, mic backlog 10000 ms, volume 100%",
            "video: /dev/video0 (capture auto), 1 frame/s always, 768×768 letterbox, \
             JPEG quality 80",
            "session: resumption on, compression 25600→12800 tokens, hand-over at 540 s, \
             ping 15 s, dead after 45 s, stalled after 5 s, max message 4096 KiB",
            "reconnect: backoff 0.5 s…30 s, config errors wait 60 s (doubling up to 900 s)",
            "tools: on (end_session, set_volume)",
            "echo: echo cancellation (AEC3; mic muted while it converges, 300 ms tail)\n",
            "wake: always, max session unlimited, chimes on\n",
            "button: none\n",
            "log level: info (-v and GEMLIVE_LOG override it)\n",
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
        c.live.tools = false;
        c.live.config_error_delay_s = 3600;
        c.video.enabled = false;
        let s = summary(&c, &Ok(None));
        assert!(s.lines().count() <= 22, "{s}");
        for w in [
            "session: resumption off, compression off, hand-over",
            "config errors wait 3600 s (doubling up to 3600 s)",
            "tools: off",
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
                 768 px fit, JPEG quality 60\n"
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
            "echo: half duplex (mic muted while a reply plays and 300 ms after)\n",
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
}
