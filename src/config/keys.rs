//! Allowed ranges of the integer keys.

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
