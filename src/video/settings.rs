//! The camera's settings, as the `[video]` table of the config file gives them (its defaults
//! are this type's `Default`; config checks them against its key table).

use super::jpeg::Geometry;

/// Default `[video] device`.
pub const DEFAULT_VIDEO_DEVICE: &str = "/dev/video0";

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

/// `[video]`: the camera and the frames sent to the model.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoConfig {
    /// Send camera frames at all. `false` = audio only, the camera is never opened.
    pub enabled: bool,
    /// A V4L2 capture node, the path of a file of concatenated JPEG frames (an `.mjpeg` file,
    /// for tests and demos), or a named pipe carrying an MJPEG stream; non-empty.
    pub device: String,
    /// MJPEG capture size `(width, height)` in pixels (each side 16..=8192); `None` = `"auto"` (the
    /// default): the driver picks. TOML: `"auto"` or `"1280x720"`.
    pub capture_size: Option<(u32, u32)>,
    /// Frames sent per second (the API takes at most 1 frame/s).
    pub fps: f64,
    /// When frames are sent.
    pub send: VideoSend,
    /// Side of the output square, pixels.
    pub size: u32,
    /// How a frame is fitted into the square.
    pub geometry: Geometry,
    /// JPEG quality of the frames sent.
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
