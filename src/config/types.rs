//! The validated settings, one struct per table, and the enums their keys choose from. The
//! default, range and unit of every key are in the key table, [`super::keys::KEYS`].

use std::fmt;
use std::path::PathBuf;

use super::*;

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
    /// WebSocket URL. `wss://` anywhere, plain `ws://` only to a loopback host.
    pub endpoint: String,
    /// Model resource name, always with its `models/` (or `tunedModels/`) prefix.
    pub model: String,
    /// Prebuilt voice, canonical case (one of [`VOICES`]).
    pub voice: String,
    /// System instruction sent at setup, trimmed.
    pub system_instruction: String,
    /// Camera frame resolution.
    pub media_resolution: MediaResolution,
    /// File holding the API key (mode 0600); relative paths are relative to the config file's
    /// directory.
    pub api_key_file: Option<PathBuf>,
    /// Ask the server to transcribe what the user says.
    pub input_transcription: bool,
    /// Ask the server to transcribe what the model says.
    pub output_transcription: bool,
    /// How long to wait for `setupComplete`, milliseconds.
    pub setup_timeout_ms: u64,
    /// Resume the session across reconnects with the server's resumption handle, so the
    /// conversation continues.
    pub resumption: bool,
    /// Context-window compression starts when the context reaches this many tokens; 0 = off.
    pub compression_trigger_tokens: u64,
    /// Compression shrinks the context to this many tokens (sliding window); less than
    /// `compression_trigger_tokens` when compression is on; unused when it is off.
    pub compression_target_tokens: u64,
    /// Hand over to a new connection once the current one is this old, seconds (the server ends
    /// connections at about 10 min).
    pub max_connection_age_s: u64,
    /// Interval between WebSocket pings, seconds.
    pub ping_interval_s: u64,
    /// No frame at all (pongs included) from the server for this long while sending means the
    /// connection is dead and gemlive reconnects, seconds; greater than `ping_interval_s`.
    pub dead_after_s: u64,
    /// Bytes written to the connection that the server's TCP stack has not acknowledged, with no
    /// progress for this long, mean the network is gone (Wi-Fi dropped, router rebooted) and
    /// gemlive reconnects, resending the unacknowledged mic audio, seconds.
    pub stall_after_s: u64,
    /// Cap of the jittered exponential reconnect backoff (which starts at
    /// [`RECONNECT_INITIAL_DELAY_MS`]), seconds.
    pub reconnect_max_delay_s: u64,
    /// First wait after the server refused the setup as a configuration error (1007/1008 bad
    /// argument, model not found, location; or quota exhausted), doubling up to
    /// [`CONFIG_ERROR_MAX_DELAY_S`], seconds.
    pub config_error_delay_s: u64,
    /// Server messages larger than this are skipped and logged, KiB.
    pub max_message_kb: u32,
    /// Offer the model the built-in tools `end_session` and `set_volume`.
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
    /// ALSA capture PCM name (see `gemlive list-devices`).
    pub capture_device: String,
    /// ALSA playback PCM name (see `gemlive list-devices`).
    pub playback_device: String,
    /// Microphone chunk length sent per message, milliseconds.
    pub chunk_ms: u32,
    /// Microphone audio kept while connecting or reconnecting and sent in order once a session is
    /// ready; beyond it the oldest audio is dropped (and counted), milliseconds.
    pub backlog_ms: u32,
    /// Initial speaker volume (software gain), percent; the model can change it with the
    /// `set_volume` tool.
    pub volume: u8,
    /// Echo handling: `aec` (in-process echo cancellation, with the half-duplex gate while it converges);
    /// `half_duplex` mutes the microphone (sends silence) while a reply plays and for
    /// `echo_tail_ms` after; `none` for a headset.
    pub echo: EchoMode,
    /// With `echo = half_duplex` (and during the canceller's warm-up): how long the microphone
    /// stays muted after the reply's last sample has played (room echo, the device's output
    /// latency), milliseconds; unused with `echo = none`.
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

/// `[session]`: when a session runs and how it ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionConfig {
    /// When a session runs. `button` needs a configured [`ButtonConfig`].
    pub wake: Wake,
    /// With `wake = button`: no speech either way (neither you nor the model) for this long ends
    /// the session, and the box goes idle until the next press; 0 = never, seconds. Not used with
    /// `wake = always`.
    pub idle_timeout_s: u64,
    /// A session is ended after this long, seconds; 0 = unlimited.
    pub max_session_s: u64,
    /// Play short generated sounds on wake, at the end of a session and on errors.
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
    /// trimmed, non-empty. Exclusive with `chip` + `offset`.
    pub line: Option<String>,
    /// GPIO chip, e.g. `gpiochip0` or `/dev/gpiochip0`; used with `offset`.
    pub chip: Option<String>,
    /// Line offset on `chip`.
    pub offset: Option<u32>,
    /// Pressed = the line reads low: a button that connects the pin to ground.
    pub active_low: bool,
    /// Pull resistor.
    pub bias: Bias,
    /// Kernel debounce period, milliseconds; 0 = none.
    pub debounce_ms: u32,
    /// A press held this long is a long press (mode `toggle`: end the session), milliseconds.
    pub long_press_ms: u32,
    /// What the button does.
    pub mode: ButtonMode,
    /// Optional LED output: a line name (`GPIO27`) or `CHIP:OFFSET` (`gpiochip0:27`), driven high
    /// for on; trimmed. Parse it with [`ButtonConfig::led`].
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
    /// Log level. The `-v` flag and the `GEMLIVE_LOG` environment variable override it.
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
