//! The validated settings, one struct per table, and the enums their keys choose from. The
//! default, range and unit of every key are in the key table, [`super::keys::KEYS`].

use std::fmt;
use std::path::PathBuf;

use super::table::with_keys;
use super::*;
use crate::live::transport::DEFAULT_ENDPOINT;

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
    /// The wake word (`[wake]`) or a press starts a session; it ends as a button session does.
    Word,
}

impl Wake {
    pub const ALL: [Wake; 3] = [Self::Always, Self::Button, Self::Word];

    /// The name in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Always => "always",
            Self::Button => "button",
            Self::Word => "word",
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

/// How the mute line works. TOML: `"switch"`, `"button"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MuteMode {
    /// Muted while the line is active: a toggle switch (its position wins over the kept state).
    #[default]
    Switch,
    /// Each press mutes or unmutes; the state is kept across restarts.
    Button,
}

impl MuteMode {
    pub const ALL: [MuteMode; 2] = [Self::Switch, Self::Button];

    /// The name in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Switch => "switch",
            Self::Button => "button",
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

    /// The mute line, if set.
    pub fn mute(&self) -> Option<LineSpec> {
        self.mute_line.as_deref().and_then(LineSpec::parse)
    }
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
    pub wake: WakeConfig,
    pub button: ButtonConfig,
    pub service: ServiceConfig,
    pub tools: ToolsConfig,
    pub hooks: HooksConfig,
    pub metrics: MetricsConfig,
    pub mqtt: MqttConfig,
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
            wake: WakeConfig::default(),
            button: ButtonConfig::default(),
            service: ServiceConfig::default(),
            tools: ToolsConfig::default(),
            hooks: HooksConfig::default(),
            metrics: MetricsConfig::default(),
            mqtt: MqttConfig::default(),
        }
    }
}

/// `[wake]`: declared in the key table, written here because a probability has no `Eq`.
#[derive(Debug, Clone, PartialEq)]
pub struct WakeConfig {
    /// A shipped model's name or the path to a microWakeWord manifest.
    pub model: String,
    /// Instead of the manifest's `probability_cutoff`.
    pub cutoff: Option<f64>,
    /// Instead of the manifest's `sliding_window_size`.
    pub window: Option<u32>,
}

impl Default for WakeConfig {
    fn default() -> Self {
        WakeConfig {
            model: "okay_nabu".to_string(),
            cutoff: None,
            window: None,
        }
    }
}

/// Generates each owned table's struct and `Default`, and for a foreign one the declared
/// defaults its own `Default` is tested against.
macro_rules! typed_structs {
    ($( $(#[$sm:meta])* [$sname:ident] $ty:ident $raw:ident $own:ident {
        $( $(#[$fm:meta])* $field:ident : $fty:ty = $default:expr ;
           $kind:expr , $unit:literal , $shown:expr , $live:literal , [$($parse:path)?] , $doc:literal ; )*
    } )*) => {
        $( typed_structs!(@$own $(#[$sm])* $ty { $( $(#[$fm])* $field: $fty = $default, $doc; )* }); )*
    };
    (@owned $(#[$sm:meta])* $ty:ident {
        $( $(#[$fm:meta])* $field:ident : $fty:ty = $default:expr, $doc:literal; )*
    }) => {
        $(#[$sm])*
        #[derive(Debug, Clone, PartialEq)]
        pub struct $ty {
            $(
                #[doc = $doc]
                ///
                $(#[$fm])*
                pub $field: $fty,
            )*
        }

        impl Default for $ty {
            fn default() -> Self {
                $ty { $( $field: $default, )* }
            }
        }
    };
    (@foreign $(#[$sm:meta])* $ty:ident {
        $( $(#[$fm:meta])* $field:ident : $fty:ty = $default:expr, $doc:literal; )*
    }) => {
        impl $ty {
            /// The defaults the key table declares, which the type's own `Default` must equal.
            #[cfg(test)]
            pub(crate) fn declared_default() -> Self {
                $ty { $( $field: $default, )* }
            }
        }
    };
}

with_keys!(typed_structs);

/// How readily the server's voice detection decides that speech started or ended. TOML:
/// `"low"`, `"high"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sensitivity {
    Low,
    High,
}

impl Sensitivity {
    pub const ALL: [Sensitivity; 2] = [Self::Low, Self::High];

    /// The name in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::High => "high",
        }
    }
}

/// How much the model thinks before it answers. TOML: `"minimal"` … `"high"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThinkingLevel {
    Minimal,
    Low,
    Medium,
    High,
}

impl ThinkingLevel {
    pub const ALL: [ThinkingLevel; 4] = [Self::Minimal, Self::Low, Self::Medium, Self::High];

    /// The name in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Minimal => "minimal",
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
        }
    }

    /// The name in the `setup` message.
    pub fn wire_name(self) -> &'static str {
        match self {
            Self::Minimal => "MINIMAL",
            Self::Low => "LOW",
            Self::Medium => "MEDIUM",
            Self::High => "HIGH",
        }
    }
}

/// What the box shows the Live API. TOML: `"api_key"`, `"ephemeral"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Auth {
    /// The project's API key, in the `x-goog-api-key` header.
    #[default]
    ApiKey,
    /// Short-lived tokens from the owner's token source; no API key on the box.
    Ephemeral,
}

impl Auth {
    pub const ALL: [Auth; 2] = [Self::ApiKey, Self::Ephemeral];

    /// The name in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ApiKey => "api_key",
            Self::Ephemeral => "ephemeral",
        }
    }
}
