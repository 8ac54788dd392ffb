//! Typed wire messages of the Live API (BidiGenerateContent). No I/O.
//! STUB: being written.

/// Parameters of the `setup` message, resolved from the config.
#[derive(Debug, Clone, PartialEq)]
pub struct SetupParams {
    /// Model resource name, already with the `models/` prefix.
    pub model: String,
    /// Prebuilt voice name, e.g. "Kore".
    pub voice: String,
    /// System instruction text; `None` or empty = not sent.
    pub system_instruction: Option<String>,
    /// Wire name, e.g. "MEDIA_RESOLUTION_LOW".
    pub media_resolution: String,
    pub input_transcription: bool,
    pub output_transcription: bool,
}
