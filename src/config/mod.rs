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

mod key_file;
mod keys;
mod parse;
mod regular;
mod reload;
mod summary;
mod table;
#[cfg(test)]
mod tests;
mod types;

use std::path::{Path, PathBuf};

pub use crate::audio::clean::NoiseSuppression;
pub use crate::audio::EchoMode;
pub use crate::live::ApiKey;
pub use crate::tools::settings::{CommandTool, HttpTool, McpServer, ToolsConfig};
/// How a camera frame is fitted into the output square; parsed from `[video] geometry`.
pub use crate::video::jpeg::Geometry;
pub use crate::video::settings::{VideoConfig, VideoSend, DEFAULT_VIDEO_DEVICE};
pub use key_file::{
    api_key_status, resolve_api_key, KeySource, MAX_KEY_FILE_BYTES, SERVICE_KEY_FILE,
};
pub use keys::*;
pub use parse::{line_col, parse_str};
pub use reload::{reload_plan, Reload};
pub use summary::{hourly, refusal_hint, summary, warnings};
pub use types::*;

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
    /// The config path names something that is not a config file to read: a FIFO, a device,
    /// a directory, or a file over [`MAX_CONFIG_BYTES`].
    #[error("config file {}: {message}", path.display())]
    Refused { path: PathBuf, message: String },
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

/// The largest config file read; a real one is a few KiB, so anything near this is the wrong
/// file and reading on would only fill memory.
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// Reads and validates the config file, which must be a regular file of at most
/// [`MAX_CONFIG_BYTES`].
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    use regular::Refusal;
    let refused = |message: String| ConfigError::Refused {
        path: path.to_path_buf(),
        message,
    };
    let bytes = regular::read_regular(path, MAX_CONFIG_BYTES).map_err(|r| match r {
        Refusal::Io(error) => ConfigError::Read {
            path: path.to_path_buf(),
            error,
        },
        Refusal::NotRegular(what) => refused(format!(
            "is {what}, not a regular file; point --config (or ${CONFIG_ENV}) at the TOML file \
             itself"
        )),
        Refusal::TooLarge(limit) => refused(format!(
            "is larger than {}, the limit for a config file; is it the right file?",
            regular::size_text(limit)
        )),
    })?;
    let text = String::from_utf8(bytes).map_err(|_| ConfigError::Read {
        path: path.to_path_buf(),
        error: std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "stream did not contain valid UTF-8",
        ),
    })?;
    parse_str(&text, path)
}

/// A small state file (regular files only, at most `limit` bytes), as UTF-8 text. A missing
/// file is `NotFound`; anything else that is refused says why.
pub fn read_small_file(path: &Path, limit: u64) -> std::io::Result<String> {
    use regular::Refusal;
    let bytes = regular::read_regular(path, limit).map_err(|r| match r {
        Refusal::Io(e) => e,
        Refusal::NotRegular(what) => {
            std::io::Error::other(format!("it is {what}, not a regular file"))
        }
        Refusal::TooLarge(n) => {
            std::io::Error::other(format!("it is larger than {}", regular::size_text(n)))
        }
    })?;
    String::from_utf8(bytes).map_err(|_| std::io::Error::other("it is not UTF-8 text"))
}
