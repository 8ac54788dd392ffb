//! The `setup` message, from session settings the daemon derives from the config. Identical on
//! every connection of a session except for the resumption handle, so a hand-over or a
//! reconnect continues the same conversation with the same voice, tools and VAD.

use super::proto::{
    AutomaticActivityDetection, ClientMessage, ContextWindowCompression, RealtimeInputConfig,
    SessionResumptionConfig, Setup, SetupParams, SlidingWindow,
};

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
    if s.manual_activity {
        setup.realtime_input_config = Some(RealtimeInputConfig {
            automatic_activity_detection: Some(AutomaticActivityDetection {
                disabled: Some(true),
                ..Default::default()
            }),
            ..Default::default()
        });
    }
    ClientMessage::from(setup)
}
