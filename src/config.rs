//! STUB being written by the config helper. Public API fixed here.
use std::path::{Path, PathBuf};

/// The API key. Never printed: `Debug` and `Display` are redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);
impl ApiKey {
    pub fn new(s: impl Into<String>) -> Self { ApiKey(s.into()) }
    pub fn expose(&self) -> &str { &self.0 }
}
impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str("ApiKey(<redacted>)") }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaResolution { Low, Medium, High }
impl MediaResolution {
    pub fn wire_name(self) -> &'static str {
        match self { Self::Low => "MEDIA_RESOLUTION_LOW", Self::Medium => "MEDIA_RESOLUTION_MEDIUM", Self::High => "MEDIA_RESOLUTION_HIGH" }
    }
}
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake { Always, Button }

#[derive(Debug, Clone)]
pub struct LiveConfig {
    pub endpoint: String,
    pub model: String,
    pub voice: String,
    pub system_instruction: String,
    pub media_resolution: MediaResolution,
    pub api_key_file: Option<PathBuf>,
    pub input_transcription: bool,
    pub output_transcription: bool,
    pub setup_timeout_ms: u64,
}
#[derive(Debug, Clone)]
pub struct AudioConfig { pub capture_device: String, pub playback_device: String, pub chunk_ms: u32 }
#[derive(Debug, Clone)]
pub struct SessionConfig { pub wake: Wake }
#[derive(Debug, Clone)]
pub struct Config { pub path: PathBuf, pub live: LiveConfig, pub audio: AudioConfig, pub session: SessionConfig }

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0}")]
    Other(String),
}
pub fn load(_path: &Path) -> Result<Config, ConfigError> { todo!() }
