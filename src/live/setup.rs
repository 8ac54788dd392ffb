//! The `setup` message, from session settings the daemon derives from the config. Identical on
//! every connection of a session except for the resumption handle, so a hand-over or a
//! reconnect continues the same conversation with the same voice, tools and VAD.

use super::proto::{
    ActivityHandling, AutomaticActivityDetection, ClientMessage, ContextWindowCompression,
    EndSensitivity, Proactivity, RealtimeInputConfig, SessionResumptionConfig, Setup, SetupParams,
    SlidingWindow, StartSensitivity, ThinkingConfig,
};

/// How the conversation goes, as the owner tuned it. Every field is sent only when set, so
/// the server's defaults stay the defaults (and a model that does not know a field is not
/// sent it unless the owner asked).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tuning {
    /// BCP-47, `speechConfig.languageCode`.
    pub language_code: Option<String>,
    pub start_sensitivity: Option<StartSensitivity>,
    pub end_sensitivity: Option<EndSensitivity>,
    pub prefix_padding_ms: Option<u32>,
    pub silence_ms: Option<u32>,
    /// `activityHandling: NO_INTERRUPTION`: the user's voice no longer cuts a reply short on
    /// the server (the button and the local barge-in still stop the speaker).
    pub no_interruption: bool,
    /// A `{"googleSearch": {}}` entry in `tools`.
    pub google_search: bool,
    /// Wire name, e.g. `MINIMAL`.
    pub thinking_level: Option<&'static str>,
    pub temperature: Option<f64>,
    pub proactive_audio: Option<bool>,
    pub affective_dialog: Option<bool>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SessionSettings {
    pub params: SetupParams,
    /// Ask for resumption handles (and send the newest one on reconnects).
    pub resumption: bool,
    /// Context-window compression: (trigger tokens, target tokens); `None` = off.
    pub compression: Option<(u64, u64)>,
    /// Tool declarations, passed through verbatim.
    pub tools: Option<Vec<serde_json::Value>>,
    /// Push-to-talk: the button brackets each utterance (activityStart/End) instead of the
    /// server's voice activity detection.
    pub manual_activity: bool,
    pub tuning: Tuning,
}

pub fn build_setup(s: &SessionSettings, handle: Option<&str>) -> ClientMessage {
    let mut setup = Setup::from(&s.params);
    if s.resumption {
        setup.session_resumption = Some(SessionResumptionConfig {
            handle: handle.map(str::to_string),
            transparent: None,
        });
    }
    if let Some((trigger, target)) = s.compression {
        setup.context_window_compression = Some(ContextWindowCompression {
            trigger_tokens: Some(trigger as i64),
            sliding_window: Some(SlidingWindow {
                target_tokens: Some(target as i64),
            }),
        });
    }
    setup.tools = s.tools.clone();
    let t = &s.tuning;
    if t.google_search {
        setup
            .tools
            .get_or_insert_with(Vec::new)
            .push(serde_json::json!({"googleSearch": {}}));
    }
    // Push-to-talk switches the server's detector off, so its tuning would mean nothing.
    let detection = if s.manual_activity {
        Some(AutomaticActivityDetection {
            disabled: Some(true),
            ..Default::default()
        })
    } else {
        let d = AutomaticActivityDetection {
            disabled: None,
            start_of_speech_sensitivity: t.start_sensitivity,
            end_of_speech_sensitivity: t.end_sensitivity,
            prefix_padding_ms: t.prefix_padding_ms,
            silence_duration_ms: t.silence_ms,
        };
        (d != AutomaticActivityDetection::default()).then_some(d)
    };
    let handling = t
        .no_interruption
        .then_some(ActivityHandling::NoInterruption);
    if detection.is_some() || handling.is_some() {
        setup.realtime_input_config = Some(RealtimeInputConfig {
            automatic_activity_detection: detection,
            activity_handling: handling,
            turn_coverage: None,
        });
    }
    if let Some(g) = setup.generation_config.as_mut() {
        if let Some(code) = &t.language_code {
            g.speech_config
                .get_or_insert_with(Default::default)
                .language_code = Some(code.clone());
        }
        g.temperature = t.temperature;
        g.thinking_config = t.thinking_level.map(|l| ThinkingConfig {
            thinking_level: Some(l.to_string()),
            ..Default::default()
        });
        g.enable_affective_dialog = t.affective_dialog;
    }
    setup.proactivity = t.proactive_audio.map(|on| Proactivity {
        proactive_audio: Some(on),
    });
    ClientMessage::from(setup)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn settings(tuning: Tuning, manual: bool) -> SessionSettings {
        SessionSettings {
            params: SetupParams {
                model: "models/m".into(),
                voice: "Kore".into(),
                system_instruction: None,
                media_resolution: String::new(),
                input_transcription: false,
                output_transcription: false,
            },
            resumption: false,
            compression: None,
            tools: None,
            manual_activity: manual,
            tuning,
        }
    }

    fn json_of(s: &SessionSettings) -> Value {
        serde_json::from_str(&build_setup(s, None).to_json()).expect("json")
    }

    #[test]
    fn untuned_sends_none_of_the_fields() {
        assert_eq!(
            json_of(&settings(Tuning::default(), false)),
            json!({"setup": {"model": "models/m", "generationConfig": {
                "responseModalities": ["AUDIO"],
                "speechConfig": {"voiceConfig": {"prebuiltVoiceConfig": {"voiceName": "Kore"}}}}}})
        );
    }

    #[test]
    fn push_to_talk_sends_no_detector_tuning_but_keeps_the_handling() {
        let t = Tuning {
            silence_ms: Some(900),
            no_interruption: true,
            ..Tuning::default()
        };
        assert_eq!(
            json_of(&settings(t, true))["setup"]["realtimeInputConfig"],
            json!({"automaticActivityDetection": {"disabled": true},
                   "activityHandling": "NO_INTERRUPTION"})
        );
    }
}
