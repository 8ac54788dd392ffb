//! Typed wire messages of the Live API (BidiGenerateContent). No I/O, no policy.
//!
//! * Client → server: [`ClientMessage`], an externally tagged enum, so every message serialises
//!   to exactly one top-level key (`setup`, `realtimeInput`, `toolResponse`). Field names are
//!   lowerCamelCase; `None` fields are omitted (the server rejects unknown names, so nothing is
//!   sent that we did not mean to send). The hot path (microphone audio, 25×/s) has an
//!   allocation-light twin, [`write_audio_json`].
//! * Server → client: [`ServerMessage`], a flat struct of optional parts (one frame may carry
//!   several things, e.g. `serverContent.turnComplete` beside `usageMetadata`). Unknown keys are
//!   ignored everywhere on the server side. [`ServerMessage::parse`] accepts the raw bytes of a
//!   text or binary frame (pretty-printed JSON with trailing whitespace is fine), decodes audio
//!   base64 on the way, and never panics. [`ServerMessage::into_events`] flattens a frame into
//!   [`ServerEvent`]s in a fixed, documented order.
//!
//! Leniency on input follows proto3 JSON: `null` means "default", int64 values may be JSON
//! strings, bools are also accepted as the strings `"true"`/`"false"`, `Duration` is a string
//! such as `"9.5s"`.

use std::fmt;
use std::time::Duration;

use base64::engine::general_purpose::{STANDARD, STANDARD_PAD_INDIFFERENT};
use base64::Engine as _;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::Value;

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

/// Output audio rate assumed when the server's mime type has no `rate=` (older Vertex models
/// send a bare `audio/pcm`).
pub const DEFAULT_OUTPUT_RATE_HZ: u32 = 24_000;

// ===================================================================================== errors

/// Why a server frame could not be decoded. Every variant is about the frame's content; the
/// caller decides whether to drop the frame or the session.
#[derive(Debug, thiserror::Error)]
pub enum ProtoError {
    #[error("server frame is not valid UTF-8: {0}")]
    NotUtf8(#[from] std::str::Utf8Error),
    #[error("server frame is not JSON: {0}")]
    NotJson(#[source] serde_json::Error),
    #[error("server frame is JSON but not an object (found {0})")]
    NotObject(&'static str),
    #[error("server frame does not match the expected shape: {0}")]
    Shape(#[source] serde_json::Error),
    #[error("bad base64 in audio inlineData.data: {0}")]
    BadBase64(#[source] base64::DecodeError),
    #[error("unusable audio mimeType {0:?}")]
    BadAudioMime(String),
    #[error("bad protobuf Duration {0:?} (expected e.g. \"50s\" or \"9.5s\")")]
    BadDuration(String),
}

// ====================================================================== client → server

/// One client → server message. Serialises to exactly one top-level key.
///
/// `Deserialize` is derived too (for stand-ins and tests); messages we do not model
/// (`clientContent`, the deprecated `realtimeInput.mediaChunks`) fail to deserialise.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ClientMessage {
    /// Boxed: much bigger than the other variants, and sent once per connection.
    Setup(Box<Setup>),
    RealtimeInput(RealtimeInput),
    ToolResponse(ToolResponse),
}

/// Content of `setup`. Build it from [`SetupParams`] (`Setup::from(&params)`), then set the
/// optional fields (resumption handle, VAD, compression, tools) before wrapping it with
/// `ClientMessage::from(setup)`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Setup {
    pub model: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generation_config: Option<GenerationConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system_instruction: Option<SystemInstruction>,
    /// Tool declarations, passed through verbatim (`[{"functionDeclarations": [...]}, ...]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub realtime_input_config: Option<RealtimeInputConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_resumption: Option<SessionResumptionConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context_window_compression: Option<ContextWindowCompression>,
    /// Direct child of `setup` (inside `generationConfig` it is a fatal server error).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_audio_transcription: Option<AudioTranscriptionConfig>,
    /// Direct child of `setup` (inside `generationConfig` it is a fatal server error).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_audio_transcription: Option<AudioTranscriptionConfig>,
    /// Direct child of `setup` (2.5 native audio on v1alpha, and later models).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proactivity: Option<Proactivity>,
}

/// `setup.proactivity`: the model may stay silent when it is not addressed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Proactivity {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proactive_audio: Option<bool>,
}

impl From<&SetupParams> for Setup {
    fn from(p: &SetupParams) -> Self {
        let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        let speech_config = non_empty(&p.voice).map(|voice_name| SpeechConfig {
            voice_config: Some(VoiceConfig {
                prebuilt_voice_config: Some(PrebuiltVoiceConfig { voice_name }),
            }),
            language_code: None,
        });
        Setup {
            model: p.model.clone(),
            generation_config: Some(GenerationConfig {
                response_modalities: Some(vec![Modality::Audio]),
                media_resolution: non_empty(&p.media_resolution),
                speech_config,
                ..GenerationConfig::default()
            }),
            system_instruction: p
                .system_instruction
                .as_deref()
                .filter(|s| !s.is_empty())
                .map(SystemInstruction::text),
            input_audio_transcription: p.input_transcription.then_some(AudioTranscriptionConfig {}),
            output_audio_transcription: p
                .output_transcription
                .then_some(AudioTranscriptionConfig {}),
            ..Setup::default()
        }
    }
}

/// `setup.generationConfig` (only the fields the Live API accepts that we use or may use).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerationConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_modalities: Option<Vec<Modality>>,
    /// Wire name, e.g. "MEDIA_RESOLUTION_LOW".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub media_resolution: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub speech_config: Option<SpeechConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_output_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thinking_config: Option<ThinkingConfig>,
    /// Inside `generationConfig` (unlike `proactivity`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enable_affective_dialog: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Modality {
    Audio,
    Text,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SpeechConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub voice_config: Option<VoiceConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language_code: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VoiceConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prebuilt_voice_config: Option<PrebuiltVoiceConfig>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PrebuiltVoiceConfig {
    pub voice_name: String,
}

/// 3.1 models use `thinkingLevel`; 2.5 native audio uses `thinkingBudget`/`includeThoughts`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ThinkingConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thinking_level: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thinking_budget: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub include_thoughts: Option<bool>,
}

/// `setup.systemInstruction`: text parts only.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SystemInstruction {
    pub parts: Vec<TextPart>,
}

impl SystemInstruction {
    pub fn text(text: &str) -> Self {
        SystemInstruction {
            parts: vec![TextPart {
                text: text.to_owned(),
            }],
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TextPart {
    pub text: String,
}

/// `inputAudioTranscription` / `outputAudioTranscription`: presence (`{}`) switches it on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AudioTranscriptionConfig {}

/// `setup.realtimeInputConfig`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RealtimeInputConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub automatic_activity_detection: Option<AutomaticActivityDetection>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub activity_handling: Option<ActivityHandling>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub turn_coverage: Option<TurnCoverage>,
}

/// Server-side VAD. `disabled: true` = manual VAD (`activityStart`/`activityEnd`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AutomaticActivityDetection {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_of_speech_sensitivity: Option<StartSensitivity>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_of_speech_sensitivity: Option<EndSensitivity>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix_padding_ms: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub silence_duration_ms: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StartSensitivity {
    #[serde(rename = "START_SENSITIVITY_UNSPECIFIED")]
    Unspecified,
    #[serde(rename = "START_SENSITIVITY_HIGH")]
    High,
    #[serde(rename = "START_SENSITIVITY_LOW")]
    Low,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EndSensitivity {
    #[serde(rename = "END_SENSITIVITY_UNSPECIFIED")]
    Unspecified,
    #[serde(rename = "END_SENSITIVITY_HIGH")]
    High,
    #[serde(rename = "END_SENSITIVITY_LOW")]
    Low,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ActivityHandling {
    #[serde(rename = "ACTIVITY_HANDLING_UNSPECIFIED")]
    Unspecified,
    /// Barge-in (the server default).
    StartOfActivityInterrupts,
    NoInterruption,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TurnCoverage {
    #[serde(rename = "TURN_COVERAGE_UNSPECIFIED")]
    Unspecified,
    /// Default on 2.5.
    #[serde(rename = "TURN_INCLUDES_ONLY_ACTIVITY")]
    OnlyActivity,
    #[serde(rename = "TURN_INCLUDES_ALL_INPUT")]
    AllInput,
    /// Default on 3.1+.
    #[serde(rename = "TURN_INCLUDES_AUDIO_ACTIVITY_AND_ALL_VIDEO")]
    AudioActivityAndAllVideo,
}

/// `setup.sessionResumption`: `{}` opts in on a new session, `{"handle": …}` resumes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionResumptionConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handle: Option<String>,
    /// Vertex only; the Developer API rejects it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transparent: Option<bool>,
}

/// `setup.contextWindowCompression` (sliding window).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContextWindowCompression {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trigger_tokens: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sliding_window: Option<SlidingWindow>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SlidingWindow {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_tokens: Option<i64>,
}

/// Content of `realtimeInput`. An enum, so one message carries exactly one field (the server
/// does not enforce a oneof here, but the SDKs do and so do we).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RealtimeInput {
    /// s16le mono PCM, `audio/pcm;rate=16000`.
    Audio(Blob),
    /// One JPEG/PNG frame (≤ 1 per second).
    Video(Blob),
    Text(String),
    /// Always `true` on the wire; flushes buffered audio when the mic pauses (automatic VAD).
    AudioStreamEnd(bool),
    /// Manual VAD only.
    ActivityStart(Empty),
    /// Manual VAD only.
    ActivityEnd(Empty),
}

/// Serialises as `{}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Empty {}

/// Client-side media blob; `data` is standard base64 with padding.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Blob {
    pub mime_type: String,
    pub data: String,
}

/// Content of `toolResponse`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolResponse {
    pub function_responses: Vec<FunctionResponse>,
}

/// One answer to a [`FunctionCall`]. `id` must echo the call's id (required on the Developer
/// API, optional on Vertex). `response` must be a JSON object; use an `"error"` key for failures.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FunctionResponse {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub name: String,
    pub response: Value,
}

impl ClientMessage {
    /// The `setup` message for `p` (AUDIO modality; transcription configs and system
    /// instruction only when enabled / non-empty). For resumption, VAD or compression settings
    /// build a [`Setup`] with `Setup::from(p)` and convert it with `ClientMessage::from`.
    pub fn setup(p: &SetupParams) -> ClientMessage {
        ClientMessage::Setup(Box::new(Setup::from(p)))
    }

    /// `realtimeInput.audio` with mime `audio/pcm;rate={rate_hz}`. See [`write_audio_json`] for
    /// the allocation-light variant of `audio(..).to_json()`.
    pub fn audio(pcm_s16le: &[u8], rate_hz: u32) -> ClientMessage {
        ClientMessage::RealtimeInput(RealtimeInput::Audio(Blob {
            mime_type: format!("audio/pcm;rate={rate_hz}"),
            data: STANDARD.encode(pcm_s16le),
        }))
    }

    /// `realtimeInput.video` with mime `image/jpeg`.
    pub fn video_jpeg(jpeg: &[u8]) -> ClientMessage {
        ClientMessage::RealtimeInput(RealtimeInput::Video(Blob {
            mime_type: "image/jpeg".to_owned(),
            data: STANDARD.encode(jpeg),
        }))
    }

    /// `realtimeInput.text` (on 3.1 the way to send user text mid-conversation).
    pub fn text(text: &str) -> ClientMessage {
        ClientMessage::RealtimeInput(RealtimeInput::Text(text.to_owned()))
    }

    /// `realtimeInput.audioStreamEnd: true`.
    pub fn audio_stream_end() -> ClientMessage {
        ClientMessage::RealtimeInput(RealtimeInput::AudioStreamEnd(true))
    }

    /// `realtimeInput.activityStart: {}` (manual VAD).
    pub fn activity_start() -> ClientMessage {
        ClientMessage::RealtimeInput(RealtimeInput::ActivityStart(Empty {}))
    }

    /// `realtimeInput.activityEnd: {}` (manual VAD).
    pub fn activity_end() -> ClientMessage {
        ClientMessage::RealtimeInput(RealtimeInput::ActivityEnd(Empty {}))
    }

    /// `toolResponse.functionResponses`.
    pub fn tool_response(function_responses: Vec<FunctionResponse>) -> ClientMessage {
        ClientMessage::ToolResponse(ToolResponse { function_responses })
    }

    /// Compact JSON for a WebSocket text frame.
    pub fn to_json(&self) -> String {
        // Only strings, integers, bools, finite f64 and serde_json::Value (whose map keys are
        // strings): serialisation of these types cannot fail.
        serde_json::to_string(self).expect("ClientMessage always serialises to JSON")
    }
}

impl From<Setup> for ClientMessage {
    fn from(setup: Setup) -> Self {
        ClientMessage::Setup(Box::new(setup))
    }
}

/// Appends exactly `ClientMessage::audio(pcm_s16le, rate_hz).to_json()` to `out`, without the
/// intermediate message, JSON serialiser and base64 string (the base64 is encoded straight into
/// `out`). Reuse `out` (clear it between messages) to avoid per-chunk allocations.
pub fn write_audio_json(out: &mut String, pcm_s16le: &[u8], rate_hz: u32) {
    use std::fmt::Write as _;
    const HEAD: &str = r#"{"realtimeInput":{"audio":{"mimeType":"audio/pcm;rate="#;
    const MID: &str = r#"","data":""#;
    const TAIL: &str = r#""}}}"#;
    out.reserve(HEAD.len() + 10 + MID.len() + pcm_s16le.len().div_ceil(3) * 4 + TAIL.len());
    out.push_str(HEAD);
    // Writing into a String cannot fail.
    let _ = write!(out, "{rate_hz}");
    out.push_str(MID);
    STANDARD.encode_string(pcm_s16le, out);
    out.push_str(TAIL);
}

// ====================================================================== server → client

/// One server → client frame. Several fields may be present at once. Unknown keys are ignored.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerMessage {
    pub setup_complete: Option<SetupComplete>,
    pub server_content: Option<ServerContent>,
    pub tool_call: Option<ToolCall>,
    pub tool_call_cancellation: Option<ToolCallCancellation>,
    pub go_away: Option<GoAway>,
    pub session_resumption_update: Option<SessionResumptionUpdate>,
    /// Sibling of another field (typically beside `serverContent.turnComplete`).
    pub usage_metadata: Option<UsageMetadata>,
    /// "Allowlisted only"; no event is produced.
    pub voice_activity_detection_signal: Option<VoiceActivityDetectionSignal>,
    /// Newer SDK-only field; no event is produced.
    pub voice_activity: Option<VoiceActivity>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SetupComplete {
    /// Vertex only.
    pub session_id: Option<String>,
}

/// `serverContent`. Flags default to `false` (the server omits defaults).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerContent {
    pub model_turn: Option<ModelTurn>,
    pub input_transcription: Option<Transcription>,
    pub output_transcription: Option<Transcription>,
    #[serde(default, deserialize_with = "de_bool")]
    pub interrupted: bool,
    #[serde(default, deserialize_with = "de_bool")]
    pub generation_complete: bool,
    #[serde(default, deserialize_with = "de_bool")]
    pub turn_complete: bool,
    #[serde(default, deserialize_with = "de_bool")]
    pub waiting_for_input: bool,
    /// E.g. `NEED_MORE_INPUT`, `MALFORMED_FUNCTION_CALL`.
    pub turn_complete_reason: Option<String>,
    pub grounding_metadata: Option<Value>,
    pub url_context_metadata: Option<Value>,
}

/// `serverContent.modelTurn`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelTurn {
    /// `"model"` on Vertex, absent on the Developer API.
    pub role: Option<String>,
    #[serde(default, deserialize_with = "de_null_default")]
    pub parts: Vec<Part>,
}

/// One part of a model turn. Usually exactly one of the fields is set.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Part {
    pub text: Option<String>,
    /// `true` marks a thought summary (not spoken, not shown).
    #[serde(default, deserialize_with = "de_bool")]
    pub thought: bool,
    pub inline_data: Option<InlineData>,
    pub executable_code: Option<ExecutableCode>,
    pub code_execution_result: Option<Value>,
    pub function_call: Option<FunctionCall>,
}

/// Server-side media blob, base64-decoded while deserialising.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InlineData {
    #[serde(default, deserialize_with = "de_null_default")]
    pub mime_type: String,
    /// The decoded bytes, or why `data` was not valid base64: such an audio part becomes a
    /// [`ServerEvent::BadPart`] (skipped on its own) in [`ServerMessage::into_events`].
    #[serde(default = "empty_data", deserialize_with = "de_base64")]
    pub data: Result<Vec<u8>, base64::DecodeError>,
}

impl InlineData {
    /// `Some(rate)` if this is raw PCM audio (`audio/pcm`, optional `rate=`), `None` if it is
    /// some other media type. `Err` for `audio/pcm` with an unusable rate parameter.
    pub fn pcm_rate_hz(&self) -> Result<Option<u32>, ProtoError> {
        pcm_rate_hz(&self.mime_type)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutableCode {
    pub language: Option<String>,
    pub code: Option<String>,
}

/// `inputTranscription` / `outputTranscription`: an incremental fragment (concatenate them).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Transcription {
    pub text: Option<String>,
    #[serde(default, deserialize_with = "de_bool")]
    pub finished: bool,
    pub language_code: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolCall {
    #[serde(default, deserialize_with = "de_null_default")]
    pub function_calls: Vec<FunctionCall>,
}

/// A call the model wants executed. Ids are strings (ML Dev ids exceed i64) and may be absent
/// (2025 Vertex).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FunctionCall {
    pub id: Option<String>,
    #[serde(default, deserialize_with = "de_null_default")]
    pub name: String,
    /// The arguments object; `{}` when absent.
    #[serde(default = "empty_object", deserialize_with = "de_args")]
    pub args: Value,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolCallCancellation {
    #[serde(default, deserialize_with = "de_null_default")]
    pub ids: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GoAway {
    /// Time until the server closes the connection. Absent = unknown (treated as zero).
    #[serde(default, deserialize_with = "de_opt_duration")]
    pub time_left: Option<Duration>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionResumptionUpdate {
    /// Empty or absent while not resumable.
    pub new_handle: Option<String>,
    /// Accepts a bool or the strings `"true"`/`"false"`.
    #[serde(default, deserialize_with = "de_bool")]
    pub resumable: bool,
    /// int64: a JSON string or number. Only with `transparent` resumption (Vertex).
    #[serde(default, deserialize_with = "de_opt_i64")]
    pub last_consumed_client_message_index: Option<i64>,
}

/// Token accounting; every counter optional. The Developer API uses `response*`, Vertex
/// `candidates*`. Unknown counters are ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageMetadata {
    #[serde(default, deserialize_with = "de_opt_i64")]
    pub prompt_token_count: Option<i64>,
    #[serde(default, deserialize_with = "de_opt_i64")]
    pub cached_content_token_count: Option<i64>,
    #[serde(default, deserialize_with = "de_opt_i64")]
    pub response_token_count: Option<i64>,
    #[serde(default, deserialize_with = "de_opt_i64")]
    pub candidates_token_count: Option<i64>,
    #[serde(default, deserialize_with = "de_opt_i64")]
    pub tool_use_prompt_token_count: Option<i64>,
    #[serde(default, deserialize_with = "de_opt_i64")]
    pub thoughts_token_count: Option<i64>,
    #[serde(default, deserialize_with = "de_opt_i64")]
    pub total_token_count: Option<i64>,
    #[serde(default, deserialize_with = "de_null_default")]
    pub prompt_tokens_details: Vec<ModalityTokenCount>,
    #[serde(default, deserialize_with = "de_null_default")]
    pub response_tokens_details: Vec<ModalityTokenCount>,
    #[serde(default, deserialize_with = "de_null_default")]
    pub candidates_tokens_details: Vec<ModalityTokenCount>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModalityTokenCount {
    pub modality: Option<String>,
    #[serde(default, deserialize_with = "de_opt_i64")]
    pub token_count: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VoiceActivityDetectionSignal {
    /// `VAD_SIGNAL_TYPE_SOS` / `VAD_SIGNAL_TYPE_EOS`.
    pub vad_signal_type: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VoiceActivity {
    /// `ACTIVITY_START` / `ACTIVITY_END`.
    #[serde(rename = "type")]
    pub activity_type: Option<String>,
    /// A Duration string, kept raw.
    pub audio_offset: Option<String>,
}

/// What one server frame means, flattened. See [`ServerMessage::into_events`] for the order.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerEvent {
    SetupComplete {
        session_id: Option<String>,
    },
    /// A fragment of what the user said (non-empty).
    InputTranscription(String),
    /// A fragment of what the model said (non-empty).
    OutputTranscription(String),
    /// s16le mono PCM of the model's voice.
    Audio {
        rate_hz: u32,
        pcm: Vec<u8>,
    },
    /// A model text part (thought summaries excluded).
    Text(String),
    /// Stop playback now; drop queued audio (including `Audio` events of the same frame).
    Interrupted,
    GenerationComplete,
    /// Why the turn ended, when the server says and it is not the ordinary end (e.g.
    /// `RESPONSE_REJECTED`, which explains a reply that never came). The server's text.
    TurnCompleteReason(String),
    TurnComplete,
    ToolCall(Vec<FunctionCall>),
    ToolCallCancellation(Vec<String>),
    GoAway {
        time_left: Duration,
    },
    /// `handle` is `None` when the server sent none (or an empty one).
    ResumptionUpdate {
        handle: Option<String>,
        resumable: bool,
    },
    Usage(UsageMetadata),
    /// An audio part that cannot be played (bad base64, a rate outside
    /// [`OUTPUT_RATES_HZ`]): skipped, the reason given.
    BadPart(String),
}

impl ServerEvent {
    /// What kind of event this is, for a log line that must not carry its content.
    pub fn kind(&self) -> &'static str {
        match self {
            ServerEvent::SetupComplete { .. } => "setupComplete",
            ServerEvent::InputTranscription(_) => "inputTranscription",
            ServerEvent::OutputTranscription(_) => "outputTranscription",
            ServerEvent::Audio { .. } => "audio",
            ServerEvent::Text(_) => "text",
            ServerEvent::Interrupted => "interrupted",
            ServerEvent::GenerationComplete => "generationComplete",
            ServerEvent::TurnCompleteReason(_) => "turnCompleteReason",
            ServerEvent::TurnComplete => "turnComplete",
            ServerEvent::ToolCall(_) => "toolCall",
            ServerEvent::ToolCallCancellation(_) => "toolCallCancellation",
            ServerEvent::GoAway { .. } => "goAway",
            ServerEvent::ResumptionUpdate { .. } => "sessionResumptionUpdate",
            ServerEvent::Usage(_) => "usageMetadata",
            ServerEvent::BadPart(_) => "unplayable audio part",
        }
    }
}

impl ServerMessage {
    /// Decodes one server frame (the payload of a text or a binary WebSocket message).
    ///
    /// Never panics. Errors: not UTF-8, not JSON, not an object, a known field of the wrong
    /// type (e.g. `"turnComplete": "yes"`), bad base64 or an unusable rate in an audio part, a
    /// malformed `goAway.timeLeft`.
    pub fn parse(bytes: &[u8]) -> Result<ServerMessage, ProtoError> {
        let text = std::str::from_utf8(bytes)?;
        let msg: ServerMessage = serde_json::from_str(text).map_err(|e| classify(text, e))?;
        Ok(msg)
    }

    /// Flattens the frame into events, in this fixed order:
    ///
    /// 1. `SetupComplete`
    /// 2. `InputTranscription` (only non-empty text)
    /// 3. the model-turn parts in their order: `Audio` (PCM parts) and `Text` (non-thought text
    ///    parts); other parts (thoughts, executable code, non-PCM inline data) are skipped
    /// 4. `OutputTranscription` (only non-empty text)
    /// 5. `Interrupted` — after the audio of the same frame, which belongs to the cancelled turn
    ///    and must be discarded by the consumer
    /// 6. `GenerationComplete`, 7. `TurnCompleteReason` (unless absent or unspecified),
    ///    `TurnComplete`
    /// 8. `ToolCall` (only if it has calls), 9. `ToolCallCancellation` (only if it has ids)
    /// 10. `GoAway`, 11. `ResumptionUpdate`, 12. `Usage`
    ///
    /// `voiceActivityDetectionSignal`, `voiceActivity`,
    /// `waitingForInput`, `finished` and grounding metadata produce no event; read them from
    /// the struct before calling this if needed.
    pub fn into_events(self) -> Vec<ServerEvent> {
        let mut ev = Vec::new();
        if let Some(sc) = self.setup_complete {
            ev.push(ServerEvent::SetupComplete {
                session_id: sc.session_id,
            });
        }
        if let Some(c) = self.server_content {
            if let Some(t) = transcription_text(c.input_transcription) {
                ev.push(ServerEvent::InputTranscription(t));
            }
            for part in c.model_turn.map(|t| t.parts).unwrap_or_default() {
                part_event(part, &mut ev);
            }
            if let Some(t) = transcription_text(c.output_transcription) {
                ev.push(ServerEvent::OutputTranscription(t));
            }
            if c.interrupted {
                ev.push(ServerEvent::Interrupted);
            }
            if c.generation_complete {
                ev.push(ServerEvent::GenerationComplete);
            }
            if let Some(r) = c
                .turn_complete_reason
                .filter(|r| !r.is_empty() && r != "TURN_COMPLETE_REASON_UNSPECIFIED")
            {
                ev.push(ServerEvent::TurnCompleteReason(r));
            }
            if c.turn_complete {
                ev.push(ServerEvent::TurnComplete);
            }
        }
        if let Some(tc) = self.tool_call {
            if tc.function_calls.is_empty() {
                log::debug!("toolCall without functionCalls ignored");
            } else {
                ev.push(ServerEvent::ToolCall(tc.function_calls));
            }
        }
        if let Some(tcc) = self.tool_call_cancellation {
            if !tcc.ids.is_empty() {
                ev.push(ServerEvent::ToolCallCancellation(tcc.ids));
            }
        }
        if let Some(ga) = self.go_away {
            ev.push(ServerEvent::GoAway {
                time_left: ga.time_left.unwrap_or(Duration::ZERO),
            });
        }
        if let Some(ru) = self.session_resumption_update {
            ev.push(ServerEvent::ResumptionUpdate {
                handle: ru.new_handle.filter(|h| !h.is_empty()),
                resumable: ru.resumable,
            });
        }
        if let Some(u) = self.usage_metadata {
            ev.push(ServerEvent::Usage(u));
        }
        ev
    }
}

fn transcription_text(t: Option<Transcription>) -> Option<String> {
    t.and_then(|t| t.text).filter(|s| !s.is_empty())
}

fn part_event(part: Part, ev: &mut Vec<ServerEvent>) {
    if let Some(inline) = part.inline_data {
        match (inline.pcm_rate_hz(), inline.data) {
            (Ok(Some(rate_hz)), Ok(pcm)) => ev.push(ServerEvent::Audio { rate_hz, pcm }),
            (Ok(None), _) => log::debug!("ignoring inlineData of type {:?}", inline.mime_type),
            // One bad part is skipped; the rest of the reply (and of this frame) still plays.
            (Err(e), _) => ev.push(ServerEvent::BadPart(e.to_string())),
            (_, Err(e)) => ev.push(ServerEvent::BadPart(ProtoError::BadBase64(e).to_string())),
        }
    }
    if let Some(text) = part.text {
        if part.thought {
            log::debug!("ignoring thought text part ({} bytes)", text.len());
        } else if !text.is_empty() {
            ev.push(ServerEvent::Text(text));
        }
    }
    if part.executable_code.is_some() || part.code_execution_result.is_some() {
        log::debug!("ignoring code part");
    }
    if let Some(fc) = part.function_call {
        log::debug!(
            "ignoring functionCall part {:?} (calls arrive as toolCall)",
            fc.name
        );
    }
}

/// Maps a serde_json error on `text` to the most telling [`ProtoError`].
fn classify(text: &str, e: serde_json::Error) -> ProtoError {
    use serde_json::error::Category;
    match e.classify() {
        Category::Syntax | Category::Eof | Category::Io => ProtoError::NotJson(e),
        Category::Data => {
            let kind = match text.trim_start().as_bytes().first() {
                Some(b'{') => return ProtoError::Shape(e),
                Some(b'[') => "an array",
                Some(b'"') => "a string",
                Some(b't' | b'f') => "a bool",
                Some(b'n') => "null",
                _ => "a number",
            };
            ProtoError::NotObject(kind)
        }
    }
}

/// Sample rate of a raw-PCM mime type: `Ok(Some(rate))` for `audio/pcm` (case-insensitive,
/// spaces tolerated, `rate=` parameter optional, default [`DEFAULT_OUTPUT_RATE_HZ`]),
/// `Ok(None)` for any other media type, `Err` for `audio/pcm` with a bad `rate=` value.
/// Reply audio rates a speaker can sensibly play. Anything else (`rate=1` would hold an ALSA
/// period for a minute) is refused as a malformed part.
pub const OUTPUT_RATES_HZ: std::ops::RangeInclusive<u32> = 8_000..=48_000;

pub fn pcm_rate_hz(mime: &str) -> Result<Option<u32>, ProtoError> {
    let mut params = mime.split(';');
    let essence = params.next().unwrap_or_default().trim();
    if !essence.eq_ignore_ascii_case("audio/pcm") {
        return Ok(None);
    }
    let mut rate = DEFAULT_OUTPUT_RATE_HZ;
    for param in params {
        let Some((key, value)) = param.split_once('=') else {
            continue;
        };
        if key.trim().eq_ignore_ascii_case("rate") {
            rate = value
                .trim()
                .trim_matches('"')
                .parse::<u32>()
                .ok()
                .filter(|r| OUTPUT_RATES_HZ.contains(r))
                .ok_or_else(|| ProtoError::BadAudioMime(mime.to_owned()))?;
        }
    }
    Ok(Some(rate))
}

/// Parses a protobuf JSON `Duration` (`"50s"`, `"9.5s"`, `"0.250s"`; up to 9 fractional
/// digits). Negative durations are rejected.
pub fn parse_duration(s: &str) -> Result<Duration, ProtoError> {
    let bad = || ProtoError::BadDuration(s.to_owned());
    let body = s.trim().strip_suffix('s').ok_or_else(bad)?;
    let (secs, frac) = match body.split_once('.') {
        Some((secs, frac)) => (secs, frac),
        None => (body, ""),
    };
    let all_digits = |d: &str| d.bytes().all(|b| b.is_ascii_digit());
    if secs.is_empty() || !all_digits(secs) || frac.len() > 9 || !all_digits(frac) {
        return Err(bad());
    }
    let secs: u64 = secs.parse().map_err(|_| bad())?;
    let mut nanos: u32 = 0;
    for (i, b) in frac.bytes().enumerate() {
        // i < 9, so the exponent fits and the sum stays below 10^9.
        nanos += u32::from(b - b'0') * 10u32.pow(8 - i as u32);
    }
    Ok(Duration::new(secs, nanos))
}

// ============================================================ lenient deserialisation helpers

fn empty_data() -> Result<Vec<u8>, base64::DecodeError> {
    Ok(Vec::new())
}

fn empty_object() -> Value {
    Value::Object(serde_json::Map::new())
}

/// `null` → `T::default()`.
fn de_null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Function-call args: `null` → `{}`.
fn de_args<'de, D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Null => empty_object(),
        v => v,
    })
}

/// A bool, `null` (false) or the string `"true"`/`"false"` (case-insensitive).
fn de_bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = bool;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a bool or \"true\"/\"false\"")
        }
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<bool, E> {
            Ok(v)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
            if v.eq_ignore_ascii_case("true") {
                Ok(true)
            } else if v.eq_ignore_ascii_case("false") {
                Ok(false)
            } else {
                Err(E::invalid_value(de::Unexpected::Str(v), &self))
            }
        }
        fn visit_unit<E: de::Error>(self) -> Result<bool, E> {
            Ok(false)
        }
        fn visit_none<E: de::Error>(self) -> Result<bool, E> {
            Ok(false)
        }
    }
    d.deserialize_any(V)
}

/// An int64 as a JSON number, a decimal string, or `null`.
fn de_opt_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Option<i64>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an integer or a decimal string")
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(v))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            i64::try_from(v)
                .map(Some)
                .map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &self))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            v.trim()
                .parse()
                .map(Some)
                .map_err(|_| E::invalid_value(de::Unexpected::Str(v), &self))
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
    }
    d.deserialize_any(V)
}

/// A Duration string (`"9.5s"`), a number of seconds, or `null`.
fn de_opt_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Option<Duration>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a Duration string such as \"9.5s\"")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            parse_duration(v).map(Some).map_err(E::custom)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(Duration::from_secs(v)))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            u64::try_from(v)
                .map(|s| Some(Duration::from_secs(s)))
                .map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            Duration::try_from_secs_f64(v)
                .map(Some)
                .map_err(|_| E::invalid_value(de::Unexpected::Float(v), &self))
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
    }
    d.deserialize_any(V)
}

/// Base64 (standard alphabet, padding optional) decoded straight from the JSON string. A
/// decoding failure is kept as a value so that `parse` can report it as
/// [`ProtoError::BadBase64`]; only a non-string is a shape error.
fn de_base64<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Result<Vec<u8>, base64::DecodeError>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Result<Vec<u8>, base64::DecodeError>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a base64 string")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(STANDARD_PAD_INDIFFERENT.decode(v))
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Ok(Vec::new()))
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Ok(Vec::new()))
        }
    }
    d.deserialize_any(V)
}

// ==================================================================================== tests

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn params() -> SetupParams {
        SetupParams {
            model: "models/gemini-3.1-flash-live-preview".into(),
            voice: "Kore".into(),
            system_instruction: Some("You are a kitchen assistant.".into()),
            media_resolution: "MEDIA_RESOLUTION_LOW".into(),
            input_transcription: true,
            output_transcription: true,
        }
    }

    fn value(m: &ClientMessage) -> Value {
        serde_json::from_str(&m.to_json()).expect("own output is JSON")
    }

    fn events(json: &str) -> Vec<ServerEvent> {
        ServerMessage::parse(json.as_bytes())
            .expect("parses")
            .into_events()
    }

    #[test]
    fn setup_golden() {
        assert_eq!(
            value(&ClientMessage::setup(&params())),
            json!({"setup": {
                "model": "models/gemini-3.1-flash-live-preview",
                "generationConfig": {
                    "responseModalities": ["AUDIO"],
                    "mediaResolution": "MEDIA_RESOLUTION_LOW",
                    "speechConfig": {"voiceConfig": {"prebuiltVoiceConfig": {"voiceName": "Kore"}}}
                },
                "systemInstruction": {"parts": [{"text": "You are a kitchen assistant."}]},
                "inputAudioTranscription": {},
                "outputAudioTranscription": {}
            }})
        );
    }

    #[test]
    fn setup_omits_disabled_parts() {
        for instr in [None, Some(String::new())] {
            let p = SetupParams {
                system_instruction: instr,
                input_transcription: false,
                output_transcription: false,
                ..params()
            };
            assert_eq!(
                value(&ClientMessage::setup(&p)),
                json!({"setup": {
                    "model": "models/gemini-3.1-flash-live-preview",
                    "generationConfig": {
                        "responseModalities": ["AUDIO"],
                        "mediaResolution": "MEDIA_RESOLUTION_LOW",
                        "speechConfig": {"voiceConfig": {"prebuiltVoiceConfig": {"voiceName": "Kore"}}}
                    }
                }})
            );
        }
    }

    #[test]
    fn setup_optional_sections() {
        let mut s = Setup::from(&SetupParams {
            system_instruction: None,
            input_transcription: false,
            ..params()
        });
        s.realtime_input_config = Some(RealtimeInputConfig {
            automatic_activity_detection: Some(AutomaticActivityDetection {
                disabled: Some(false),
                start_of_speech_sensitivity: Some(StartSensitivity::Low),
                end_of_speech_sensitivity: Some(EndSensitivity::High),
                prefix_padding_ms: Some(20),
                silence_duration_ms: Some(500),
            }),
            activity_handling: Some(ActivityHandling::StartOfActivityInterrupts),
            turn_coverage: Some(TurnCoverage::OnlyActivity),
        });
        s.session_resumption = Some(SessionResumptionConfig::default());
        s.context_window_compression = Some(ContextWindowCompression {
            trigger_tokens: Some(25600),
            sliding_window: Some(SlidingWindow {
                target_tokens: Some(12800),
            }),
        });
        s.tools = Some(vec![json!({"googleSearch": {}})]);
        let v = value(&ClientMessage::from(s.clone()));
        let setup = &v["setup"];
        assert_eq!(
            setup["realtimeInputConfig"],
            json!({
                "automaticActivityDetection": {
                    "disabled": false,
                    "startOfSpeechSensitivity": "START_SENSITIVITY_LOW",
                    "endOfSpeechSensitivity": "END_SENSITIVITY_HIGH",
                    "prefixPaddingMs": 20,
                    "silenceDurationMs": 500
                },
                "activityHandling": "START_OF_ACTIVITY_INTERRUPTS",
                "turnCoverage": "TURN_INCLUDES_ONLY_ACTIVITY"
            })
        );
        assert_eq!(setup["sessionResumption"], json!({}));
        assert_eq!(
            setup["contextWindowCompression"],
            json!({"triggerTokens": 25600, "slidingWindow": {"targetTokens": 12800}})
        );
        assert_eq!(setup["tools"], json!([{"googleSearch": {}}]));
        assert_eq!(setup["outputAudioTranscription"], json!({}));
        assert!(setup.get("inputAudioTranscription").is_none());
        assert!(setup.get("systemInstruction").is_none());
        assert!(setup["generationConfig"]
            .get("outputAudioTranscription")
            .is_none());

        s.session_resumption = Some(SessionResumptionConfig {
            handle: Some("Cj-h".into()),
            transparent: None,
        });
        let v = value(&ClientMessage::from(s));
        assert_eq!(v["setup"]["sessionResumption"], json!({"handle": "Cj-h"}));
    }

    #[test]
    fn realtime_input_golden() {
        let cases = [
            (
                ClientMessage::audio(&[0, 0, 1, 0], 16000),
                json!({"realtimeInput": {"audio": {"mimeType": "audio/pcm;rate=16000", "data": "AAABAA=="}}}),
            ),
            (
                ClientMessage::video_jpeg(&[0xff, 0xd8, 0xff]),
                json!({"realtimeInput": {"video": {"mimeType": "image/jpeg", "data": "/9j/"}}}),
            ),
            (
                ClientMessage::text("turn on the lights"),
                json!({"realtimeInput": {"text": "turn on the lights"}}),
            ),
            (
                ClientMessage::audio_stream_end(),
                json!({"realtimeInput": {"audioStreamEnd": true}}),
            ),
            (
                ClientMessage::activity_start(),
                json!({"realtimeInput": {"activityStart": {}}}),
            ),
            (
                ClientMessage::activity_end(),
                json!({"realtimeInput": {"activityEnd": {}}}),
            ),
        ];
        for (msg, want) in cases {
            assert_eq!(value(&msg), want);
            // Round trip through our own Deserialize.
            let back: ClientMessage = serde_json::from_str(&msg.to_json()).expect("round trip");
            assert_eq!(back, msg);
        }
        assert_eq!(
            ClientMessage::audio_stream_end().to_json(),
            r#"{"realtimeInput":{"audioStreamEnd":true}}"#
        );
    }

    #[test]
    fn tool_response_golden() {
        let m = ClientMessage::tool_response(vec![
            FunctionResponse {
                id: Some("function-call-5831923424298605773".into()),
                name: "get_current_weather".into(),
                response: json!({"result": "ok"}),
            },
            FunctionResponse {
                id: None,
                name: "getStatus".into(),
                response: json!({"mood": "happy"}),
            },
        ]);
        assert_eq!(
            value(&m),
            json!({"toolResponse": {"functionResponses": [
                {"id": "function-call-5831923424298605773", "name": "get_current_weather", "response": {"result": "ok"}},
                {"name": "getStatus", "response": {"mood": "happy"}}
            ]}})
        );
    }

    #[test]
    fn write_audio_json_matches_serde() {
        let mut out = String::new();
        for len in [0usize, 1, 2, 3, 4, 5, 640, 1279, 1280] {
            let pcm: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            for rate in [16000, 8000, 48000] {
                out.clear();
                write_audio_json(&mut out, &pcm, rate);
                assert_eq!(out, ClientMessage::audio(&pcm, rate).to_json(), "len {len}");
            }
        }
        // Appends, does not overwrite.
        out.clear();
        out.push('x');
        write_audio_json(&mut out, &[1, 2], 16000);
        assert_eq!(out[1..], ClientMessage::audio(&[1, 2], 16000).to_json());
    }

    #[test]
    fn durations() {
        let ok = [
            ("50s", Duration::from_secs(50)),
            ("9.5s", Duration::from_millis(9500)),
            ("0.250s", Duration::from_millis(250)),
            ("0s", Duration::ZERO),
            ("1.000000001s", Duration::new(1, 1)),
            (" 10s ", Duration::from_secs(10)),
        ];
        for (s, want) in ok {
            assert_eq!(parse_duration(s).ok(), Some(want), "{s}");
        }
        for s in [
            "",
            "s",
            "50",
            "-1s",
            "1.s2",
            "1.0000000001s",
            "abc",
            ".5s",
            "1e3s",
            "+5s",
            "5 s",
            "99999999999999999999999s",
        ] {
            assert!(
                matches!(parse_duration(s), Err(ProtoError::BadDuration(_))),
                "{s}"
            );
        }
    }

    #[test]
    fn pcm_rates() {
        assert_eq!(pcm_rate_hz("audio/pcm").ok(), Some(Some(24000)));
        assert_eq!(pcm_rate_hz("audio/pcm;rate=24000").ok(), Some(Some(24000)));
        assert_eq!(pcm_rate_hz("audio/pcm; rate=16000").ok(), Some(Some(16000)));
        assert_eq!(
            pcm_rate_hz("Audio/PCM ; Rate = 48000 ").ok(),
            Some(Some(48000))
        );
        assert_eq!(pcm_rate_hz("audio/pcm;channels=1").ok(), Some(Some(24000)));
        assert_eq!(pcm_rate_hz("image/jpeg").ok(), Some(None));
        assert_eq!(pcm_rate_hz("audio/l16;rate=48000").ok(), Some(None));
        assert!(pcm_rate_hz("audio/pcm;rate=fast").is_err());
        assert!(pcm_rate_hz("audio/pcm;rate=0").is_err());
    }

    #[test]
    fn event_order_in_one_frame() {
        let ev = events(
            r#"{
              "setupComplete": {"sessionId": "s-1"},
              "serverContent": {
                "inputTranscription": {"text": "hi"},
                "modelTurn": {"parts": [
                  {"inlineData": {"mimeType": "audio/pcm;rate=24000", "data": "AQI="}},
                  {"text": "secret", "thought": true},
                  {"text": "hello"},
                  {"inlineData": {"mimeType": "image/png", "data": "AA=="}},
                  {"inlineData": {"mimeType": "audio/pcm", "data": "AwQ"}}
                ]},
                "outputTranscription": {"text": "hello"},
                "interrupted": true,
                "generationComplete": true,
                "turnComplete": true
              },
              "toolCall": {"functionCalls": [{"name": "f", "id": "1"}]},
              "toolCallCancellation": {"ids": ["0"]},
              "goAway": {"timeLeft": "9.5s"},
              "sessionResumptionUpdate": {"newHandle": "h", "resumable": "true"},
              "usageMetadata": {"totalTokenCount": 3}
            }"#,
        );
        let want = vec![
            ServerEvent::SetupComplete {
                session_id: Some("s-1".into()),
            },
            ServerEvent::InputTranscription("hi".into()),
            ServerEvent::Audio {
                rate_hz: 24000,
                pcm: vec![1, 2],
            },
            ServerEvent::Text("hello".into()),
            ServerEvent::Audio {
                rate_hz: 24000,
                pcm: vec![3, 4],
            },
            ServerEvent::OutputTranscription("hello".into()),
            ServerEvent::Interrupted,
            ServerEvent::GenerationComplete,
            ServerEvent::TurnComplete,
            ServerEvent::ToolCall(vec![FunctionCall {
                id: Some("1".into()),
                name: "f".into(),
                args: json!({}),
            }]),
            ServerEvent::ToolCallCancellation(vec!["0".into()]),
            ServerEvent::GoAway {
                time_left: Duration::from_millis(9500),
            },
            ServerEvent::ResumptionUpdate {
                handle: Some("h".into()),
                resumable: true,
            },
            ServerEvent::Usage(UsageMetadata {
                total_token_count: Some(3),
                ..UsageMetadata::default()
            }),
        ];
        assert_eq!(ev, want);
    }

    #[test]
    fn empty_things_produce_no_events() {
        assert_eq!(
            events(r#"{"serverContent": {"outputTranscription": {}}}"#),
            vec![]
        );
        assert_eq!(
            events(r#"{"serverContent": {"inputTranscription": {"text": ""}}}"#),
            vec![]
        );
        assert_eq!(events(r#"{"toolCall": {}}"#), vec![]);
        assert_eq!(events("{}"), vec![]);
        assert_eq!(
            events(r#"{"serverContent": null, "goAway": {}}"#),
            vec![ServerEvent::GoAway {
                time_left: Duration::ZERO
            }]
        );
        assert_eq!(
            events(r#"{"sessionResumptionUpdate": {"newHandle": "", "resumable": false}}"#),
            vec![ServerEvent::ResumptionUpdate {
                handle: None,
                resumable: false
            }]
        );
    }

    #[test]
    fn lenient_scalars() {
        let m = ServerMessage::parse(
            br#"{"sessionResumptionUpdate": {"newHandle": "h", "resumable": "false",
                 "lastConsumedClientMessageIndex": "9223372036854775807"},
                 "usageMetadata": {"promptTokenCount": "15", "totalTokenCount": null}}"#,
        )
        .expect("parses");
        let ru = m.session_resumption_update.expect("present");
        assert!(!ru.resumable);
        assert_eq!(ru.last_consumed_client_message_index, Some(i64::MAX));
        let u = m.usage_metadata.expect("present");
        assert_eq!(u.prompt_token_count, Some(15));
        assert_eq!(u.total_token_count, None);
    }

    #[test]
    fn malformed_frames_are_errors() {
        type Check = fn(&ProtoError) -> bool;
        let cases: [(&[u8], Check); 9] = [
            (b"invalid json", |e| matches!(e, ProtoError::NotJson(_))),
            (b"[]", |e| matches!(e, ProtoError::NotObject(_))),
            (b"\"str\"", |e| matches!(e, ProtoError::NotObject(_))),
            (b"42", |e| matches!(e, ProtoError::NotObject(_))),
            (b"", |e| matches!(e, ProtoError::NotJson(_))),
            (b"{\"setupComplete\": {", |e| {
                matches!(e, ProtoError::NotJson(_))
            }),
            (b"{\"a\":1} {}", |e| matches!(e, ProtoError::NotJson(_))),
            (b"\xff\xfe{}", |e| matches!(e, ProtoError::NotUtf8(_))),
            (br#"{"serverContent": {"turnComplete": "yes"}}"#, |e| {
                matches!(e, ProtoError::Shape(_))
            }),
        ];
        for (bytes, check) in cases {
            match ServerMessage::parse(bytes) {
                Err(e) => assert!(check(&e), "{:?}: {e:?}", String::from_utf8_lossy(bytes)),
                Ok(m) => panic!("{:?} parsed: {m:?}", String::from_utf8_lossy(bytes)),
            }
        }
        assert!(matches!(
            ServerMessage::parse(br#"{"goAway": {"timeLeft": "soon"}}"#),
            Err(ProtoError::Shape(_))
        ));
        // An unplayable audio part is skipped on its own; the parts beside it still play.
        for rate in ["x", "0", "1", "100", "7999", "48001", "4000000000"] {
            let frame = format!(
                r#"{{"serverContent": {{"modelTurn": {{"parts": [{{"inlineData": {{"mimeType":"audio/pcm;rate={rate}","data":"AAAA"}}}}, {{"inlineData": {{"mimeType":"audio/pcm;rate=24000","data":"AAAA"}}}}]}}}}}}"#
            );
            let ev = events(&frame);
            assert!(
                matches!(&ev[0], ServerEvent::BadPart(m) if m.contains("mimeType")),
                "{rate}: {ev:?}"
            );
            assert_eq!(
                ev[1],
                ServerEvent::Audio {
                    rate_hz: 24_000,
                    pcm: vec![0, 0, 0]
                },
                "{rate}"
            );
        }
        assert!(matches!(
            &events(
                r#"{"serverContent": {"modelTurn": {"parts": [{"inlineData": {"mimeType":"audio/pcm;rate=16000","data":"!!"}}]}}}"#
            )[0],
            ServerEvent::BadPart(m) if m.contains("base64")
        ));
        // Bad base64 in a non-audio part is ignored, not an error.
        assert_eq!(
            events(
                r#"{"serverContent": {"modelTurn": {"parts": [{"inlineData": {"mimeType":"image/jpeg","data":"!!"}}]}}}"#
            ),
            vec![]
        );
    }

    #[test]
    fn an_unusual_turn_end_says_why_before_turn_complete() {
        let m = ServerMessage::parse(
            br#"{"serverContent": {"turnComplete": true, "turnCompleteReason": "RESPONSE_REJECTED"}}"#,
        )
        .expect("parses");
        assert_eq!(
            m.into_events(),
            vec![
                ServerEvent::TurnCompleteReason("RESPONSE_REJECTED".into()),
                ServerEvent::TurnComplete
            ]
        );
        let m = ServerMessage::parse(
            br#"{"serverContent": {"turnComplete": true, "turnCompleteReason": "TURN_COMPLETE_REASON_UNSPECIFIED"}}"#,
        )
        .expect("parses");
        assert_eq!(m.into_events(), vec![ServerEvent::TurnComplete]);
    }
}
