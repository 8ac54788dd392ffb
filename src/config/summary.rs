//! The one-screen summary `gemlive check-config` prints.

use super::*;

/// The effective settings, one screen, for `gemlive check-config`. Never shows the key.
pub fn summary(cfg: &Config, key: &Result<Option<KeySource>, ConfigError>) -> String {
    let l = &cfg.live;
    let a = &cfg.audio;
    let on = |b: bool| if b { "on" } else { "off" };
    let instruction = {
        let flat: String = l
            .system_instruction
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        let n = flat.chars().count();
        if n == 0 {
            "(none)".to_string()
        } else if n > 60 {
            let cut: String = flat.chars().take(60).collect();
            format!("\"{cut}…\" ({n} chars)")
        } else {
            format!("\"{flat}\"")
        }
    };
    let key_line = match key {
        Ok(Some(source)) => format!("set (from {source})"),
        Ok(None) => format!(
            "missing — put it in {SERVICE_KEY_FILE} (chmod 600), or set api_key_file, \
             {API_KEY_ENV} or the systemd credential {CREDENTIAL_NAME}"
        ),
        Err(e) => format!("error — {e}"),
    };
    let compression = if l.compression_trigger_tokens == 0 {
        "compression off".to_string()
    } else {
        format!(
            "compression {}→{} tokens",
            l.compression_trigger_tokens, l.compression_target_tokens
        )
    };
    let t = &cfg.tools;
    let mut names: Vec<String> = Vec::new();
    if t.builtin {
        names.extend(
            crate::tools::settings::BUILTIN_NAMES
                .iter()
                .map(|n| n.to_string()),
        );
    }
    names.extend(t.command.iter().map(|c| format!("{} (command)", c.name)));
    names.extend(t.http.iter().map(|h| format!("{} (http)", h.name)));
    names.extend(t.mcp.iter().map(|m| format!("{}'s tools (mcp)", m.name)));
    let tools = if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    };
    let v = &cfg.video;
    let video = if v.enabled {
        let capture = match v.capture_size {
            Some((w, h)) => format!("{w}x{h}"),
            None => "auto".to_string(),
        };
        let out = match v.geometry {
            Geometry::Fit => format!("long side {} px", v.size),
            _ => format!("{0}×{0}", v.size),
        };
        format!(
            "{} (capture {capture}), {} frame/s {}, {out} {}, JPEG quality {}",
            v.device,
            v.fps,
            match v.send {
                VideoSend::Always => "always",
                VideoSend::WhileSpeaking => "while speaking",
            },
            geometry_name(v.geometry),
            v.quality
        )
    } else {
        "off (audio only)".to_string()
    };
    let se = &cfg.session;
    let word = {
        let w = &cfg.wake;
        let opt = |v: Option<String>| v.unwrap_or_else(|| "the model's".to_string());
        format!(
            "{}, cutoff {}, window {}{}",
            w.model,
            opt(w.cutoff.map(|c| c.to_string())),
            opt(w.window.map(|n| n.to_string())),
            if se.wake == Wake::Word {
                ""
            } else {
                " (used with wake = \"word\")"
            }
        )
    };
    let wake = {
        let idle = match (se.wake, se.idle_timeout_s) {
            (Wake::Always, _) => String::new(),
            (Wake::Button | Wake::Word, 0) => ", never idles".to_string(),
            (Wake::Button | Wake::Word, n) => format!(", idle after {n} s without speech"),
        };
        let max = match se.max_session_s {
            0 => "unlimited".to_string(),
            n => format!("{n} s"),
        };
        format!(
            "{}{idle}, max session {max}, chimes {}",
            se.wake.as_str(),
            on(se.chimes)
        )
    };
    let b = &cfg.button;
    let button = match b.input() {
        None => "none".to_string(),
        Some(input) => {
            let mode = match b.mode {
                ButtonMode::Toggle => format!("toggle (long press {} ms ends)", b.long_press_ms),
                ButtonMode::PushToTalk => "push to talk".to_string(),
            };
            let debounce = match b.debounce_ms {
                0 => "no debounce".to_string(),
                n => format!("debounce {n} ms"),
            };
            format!(
                "{input} (active {}, {}, {debounce}), {mode}",
                if b.active_low { "low" } else { "high" },
                match b.bias {
                    Bias::PullUp => "pull-up",
                    Bias::PullDown => "pull-down",
                    Bias::Disabled => "no pull",
                    Bias::AsIs => "bias as is",
                }
            )
        }
    };
    let led = b.led().map(|l| format!(", LED {l}")).unwrap_or_default();
    let mute = b
        .mute()
        .map(|l| format!(", mute {} {l}", b.mute_mode.as_str()))
        .unwrap_or_default();
    let echo = match a.echo {
        EchoMode::Aec => format!(
            "echo cancellation (AEC3; mic muted while it converges, {} ms tail)",
            a.echo_tail_ms
        ),
        EchoMode::None => "none".to_string(),
        EchoMode::HalfDuplex => format!(
            "half duplex (mic muted while a reply plays and {} ms after)",
            a.echo_tail_ms
        ),
    };
    let lines = [
        format!("config: {} (ok)", cfg.path.display()),
        format!("endpoint: {}", l.endpoint),
        format!("model: {}", l.model),
        format!("voice: {}", l.voice),
        format!("system instruction: {instruction}"),
        format!("conversation: {}", conversation(l)),
        format!(
            "transcription: input {}, output {}",
            on(l.input_transcription),
            on(l.output_transcription)
        ),
        format!(
            "session: setup timeout {} ms, resumption {}, {compression}, hand-over at {} s, ping \
             {} s, dead after {} s, stalled after {} s, max message {} KiB",
            l.setup_timeout_ms,
            on(l.resumption),
            l.max_connection_age_s,
            l.ping_interval_s,
            l.dead_after_s,
            l.stall_after_s,
            l.max_message_kb
        ),
        format!(
            "reconnect: backoff {} s…{} s, config errors wait {} s (doubling up to {} s)",
            RECONNECT_INITIAL_DELAY_MS as f64 / 1000.0,
            l.reconnect_max_delay_s,
            l.config_error_delay_s,
            CONFIG_ERROR_MAX_DELAY_S.max(l.config_error_delay_s)
        ),
        format!("tools: {tools}"),
        {
            let shown = |d: &str| match crate::audio::alsa_name(d) {
                std::borrow::Cow::Owned(as_plug) => format!("{d} (opened as {as_plug})"),
                std::borrow::Cow::Borrowed(_) => d.to_string(),
            };
            format!(
                "audio devices: mic {}, speaker {}",
                shown(&a.capture_device),
                shown(&a.playback_device)
            )
        },
        format!(
            "chunk: {} ms, mic backlog {} ms, volume {}%, {}",
            a.chunk_ms,
            a.backlog_ms,
            a.volume,
            match (se.wake, a.pause_on_silence_s) {
                (_, 0) => "mic streams through silence".to_string(),
                (Wake::Always, n) => format!("mic pauses after {n} s without speech"),
                (Wake::Button | Wake::Word, n) => {
                    format!("mic would pause after {n} s without speech (with wake = always)")
                }
            }
        ),
        format!(
            "echo: {echo}; {}",
            crate::audio::clean::CleanSettings {
                noise_suppression: a.noise_suppression,
                agc: a.agc
            }
            .describe()
        ),
        format!(
            "video: {video}, media resolution {}",
            l.media_resolution.as_str()
        ),
        format!("one hour streaming sends: {}", hourly(cfg)),
        format!("wake: {wake}"),
        format!("wake word: {word}"),
        format!("button: {button}{led}{mute}"),
        format!(
            "log level: {} (-v and GEMLIVE_LOG override it)",
            cfg.service.log_level.as_str()
        ),
        format!(
            "control interface: {}; hooks: {}; mqtt: {}; metrics: {}",
            cfg.service
                .control_socket
                .as_ref()
                .map_or("off".to_string(), |p| format!(
                    "{} (gemlive ctl)",
                    p.display()
                )),
            if cfg.hooks.on_event.is_empty() {
                "none".to_string()
            } else {
                format!(
                    "{} (killed after {} s)",
                    cfg.hooks
                        .on_event
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", "),
                    cfg.hooks.timeout_s
                )
            },
            mqtt(&cfg.mqtt),
            metrics(&cfg.metrics)
        ),
        match l.auth {
            Auth::ApiKey => format!("api key: {key_line}"),
            Auth::Ephemeral => format!(
                "auth: ephemeral tokens from {}, a new one per session (no API key on this box)",
                if l.token_command.is_empty() {
                    format!(
                        "token_url {}{}",
                        // A query string may carry a secret of its own.
                        l.token_url
                            .as_deref()
                            .unwrap_or("")
                            .split('?')
                            .next()
                            .unwrap_or(""),
                        l.token_bearer_file
                            .as_ref()
                            .map_or(String::new(), |p| format!(" (bearer from {})", p.display()))
                    )
                } else {
                    format!("token_command {}", l.token_command.join(" "))
                }
            ),
        },
    ];
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

/// The `[live]` conversation keys that are set; "server defaults" when none is.
fn conversation(l: &super::LiveConfig) -> String {
    let mut parts = Vec::new();
    if let Some(c) = &l.language_code {
        parts.push(format!("language {c}"));
    }
    let mut vad = Vec::new();
    if let Some(s) = l.vad_start_sensitivity {
        vad.push(format!("start {}", s.as_str()));
    }
    if let Some(s) = l.vad_end_sensitivity {
        vad.push(format!("end {}", s.as_str()));
    }
    if let Some(ms) = l.vad_prefix_padding_ms {
        vad.push(format!("prefix {ms} ms"));
    }
    if let Some(ms) = l.vad_silence_ms {
        vad.push(format!("silence {ms} ms"));
    }
    if !vad.is_empty() {
        parts.push(format!("voice detection {}", vad.join(" ")));
    }
    if !l.barge_in {
        parts.push("no barge-in on the server".to_string());
    }
    if l.google_search {
        parts.push("Google Search".to_string());
    }
    if let Some(t) = l.thinking_level {
        parts.push(format!("thinking {}", t.as_str()));
    }
    if let Some(t) = l.temperature {
        parts.push(format!("temperature {t}"));
    }
    if let Some(p) = l.proactive_audio {
        parts.push(format!("proactive audio {}", if p { "on" } else { "off" }));
    }
    if let Some(a) = l.affective_dialog {
        parts.push(format!("affective dialog {}", if a { "on" } else { "off" }));
    }
    if parts.is_empty() {
        "the server's defaults".to_string()
    } else {
        parts.join(", ")
    }
}

/// Audio tokens per second of speech sent (the Live API's documented rate).
pub const AUDIO_TOKENS_PER_S: u64 = 25;

/// Tokens per camera frame at a media resolution (the API's enum comments: low 64, else 256).
pub fn frame_tokens(r: MediaResolution) -> u64 {
    match r {
        MediaResolution::Low => 64,
        MediaResolution::Medium | MediaResolution::High => 256,
    }
}

/// What one hour of a session that streams all the time sends: the upper bound of the bill's
/// input side (pauses, a button or wake word, and `while_speaking` frames send less).
pub fn hourly(cfg: &Config) -> String {
    let audio_bytes = 3600 * crate::audio::INPUT_RATE_HZ as u64 * 2;
    // base64 (4/3) and the JSON envelope of each chunk.
    let chunks = 3600 * 1000 / u64::from(cfg.audio.chunk_ms);
    let wire = audio_bytes * 4 / 3 + chunks * 60;
    let audio = format!(
        "3600 s of mic audio (~{} tokens, {:.0} MB on the wire)",
        thousands(3600 * AUDIO_TOKENS_PER_S),
        wire as f64 / 1e6
    );
    let v = &cfg.video;
    let video = if v.enabled {
        let frames = (3600.0 * v.fps).round() as u64;
        format!(
            ", {} frames {} (~{} tokens at {}/frame{})",
            thousands(frames),
            match v.geometry {
                Geometry::Fit => format!("long side {} px", v.size),
                _ => format!("{0}×{0}", v.size),
            },
            thousands(frames * frame_tokens(cfg.live.media_resolution)),
            frame_tokens(cfg.live.media_resolution),
            if v.send == VideoSend::WhileSpeaking {
                ", fewer: only while you speak"
            } else {
                ""
            }
        )
    } else {
        String::new()
    };
    let pauses = match (cfg.session.wake, cfg.audio.pause_on_silence_s) {
        (Wake::Always, 0) => "",
        (Wake::Always, _) => "; less when the mic pauses in silence",
        (Wake::Button | Wake::Word, _) => "; only while a session is open",
    };
    format!("{audio}{video}{pauses}")
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn metrics(m: &super::MetricsConfig) -> String {
    let mut parts = Vec::new();
    if let Some(p) = &m.textfile {
        parts.push(format!(
            "written to {} every {} s",
            p.display(),
            m.interval_s
        ));
    }
    if let Some(a) = &m.listen {
        parts.push(format!("served on http://{a}/metrics"));
    }
    if parts.is_empty() {
        "off".into()
    } else {
        parts.join(", ")
    }
}

fn mqtt(m: &super::MqttConfig) -> String {
    let Some(url) = &m.url else {
        return "off".into();
    };
    let who = match (m.username.is_empty(), &m.password_file) {
        (true, None) => "anonymous".to_string(),
        (u, p) => format!(
            "as {}{}",
            if u { "(no user)" } else { m.username.as_str() },
            p.as_ref().map_or(String::new(), |p| format!(
                ", password from {}",
                p.display()
            ))
        ),
    };
    format!(
        "{url} {who}{}; Home Assistant discovery under {}/, node {}",
        m.ca_file
            .as_ref()
            .map_or(String::new(), |p| format!(", CA {}", p.display())),
        m.discovery_prefix,
        if m.node_id.is_empty() {
            "(the host name)"
        } else {
            m.node_id.as_str()
        }
    )
}

/// What is allowed but probably not what the owner wants: printed by `check-config` and
/// logged at start and on reload.
pub fn warnings(cfg: &Config) -> Vec<String> {
    let l = &cfg.live;
    let mut out = Vec::new();
    if !VOICES.contains(&l.voice.as_str()) {
        let hint = super::parse::suggest_voice(&l.voice)
            .map(|v| format!(" (did you mean {v}?)"))
            .unwrap_or_default();
        out.push(format!(
            "voice \"{}\" in [live] is not one of the {} voices gemlive knows{hint}; it is sent \
             as written, and `gemlive check-config --online` shows whether the model takes it",
            l.voice,
            VOICES.len(),
        ));
    }
    if l.auth == Auth::Ephemeral && l.api_key_file.is_some() {
        out.push(
            "api_key_file in [live] is not used with auth = \"ephemeral\": no key is sent; \
             remove the line (and the key from this box)"
                .to_string(),
        );
    }
    let push_to_talk = cfg.button.configured() && cfg.button.mode == ButtonMode::PushToTalk;
    let vad_set = l.vad_start_sensitivity.is_some()
        || l.vad_end_sensitivity.is_some()
        || l.vad_prefix_padding_ms.is_some()
        || l.vad_silence_ms.is_some();
    if push_to_talk && vad_set {
        out.push(
            "the vad_* keys in [live] are not sent with mode = \"push_to_talk\": the button \
             marks your turns, not the server's voice detection"
                .to_string(),
        );
    }
    let model_25 = l.model.contains("-2.5-") || l.model.contains("gemini-2.5");
    if model_25 && l.thinking_level.is_some() {
        out.push(format!(
            "thinking_level in [live]: {} is a 2.5 model, which takes a thinking budget instead \
             and may refuse the setup",
            l.model
        ));
    }
    let v1alpha = l.endpoint.contains(".v1alpha.");
    for (key, set) in [
        ("proactive_audio", l.proactive_audio.is_some()),
        ("affective_dialog", l.affective_dialog.is_some()),
    ] {
        if set && model_25 && !v1alpha {
            out.push(format!(
                "{key} in [live]: 2.5 models take it only at a v1alpha endpoint; set endpoint \
                 to the v1alpha URL or expect the setup to be refused"
            ));
        }
    }
    out
}

/// Wire names (as the server's messages spell them, camel or snake case) and the `[live]` key
/// that sends each.
const WIRE_KEYS: &[(&str, &str)] = &[
    ("languageCode", "language_code"),
    ("language_code", "language_code"),
    ("startOfSpeechSensitivity", "vad_start_sensitivity"),
    ("start_of_speech_sensitivity", "vad_start_sensitivity"),
    ("endOfSpeechSensitivity", "vad_end_sensitivity"),
    ("end_of_speech_sensitivity", "vad_end_sensitivity"),
    ("prefixPaddingMs", "vad_prefix_padding_ms"),
    ("prefix_padding_ms", "vad_prefix_padding_ms"),
    ("silenceDurationMs", "vad_silence_ms"),
    ("silence_duration_ms", "vad_silence_ms"),
    ("activityHandling", "barge_in"),
    ("activity_handling", "barge_in"),
    ("googleSearch", "google_search"),
    ("google_search", "google_search"),
    ("thinkingLevel", "thinking_level"),
    ("thinking_level", "thinking_level"),
    ("thinkingConfig", "thinking_level"),
    ("thinking_config", "thinking_level"),
    ("temperature", "temperature"),
    ("proactiveAudio", "proactive_audio"),
    ("proactive_audio", "proactive_audio"),
    ("proactivity", "proactive_audio"),
    ("enableAffectiveDialog", "affective_dialog"),
    ("enable_affective_dialog", "affective_dialog"),
    ("voiceName", "voice"),
    ("voice_name", "voice"),
    ("prebuilt_voice_config", "voice"),
];

/// The `[live]` keys that are set and that not every model takes.
fn risky_keys(l: &LiveConfig) -> Vec<&'static str> {
    [
        ("language_code", l.language_code.is_some()),
        ("thinking_level", l.thinking_level.is_some()),
        ("proactive_audio", l.proactive_audio.is_some()),
        ("affective_dialog", l.affective_dialog.is_some()),
        ("google_search", l.google_search),
        ("voice", !VOICES.contains(&l.voice.as_str())),
    ]
    .into_iter()
    .filter_map(|(k, set)| set.then_some(k))
    .collect()
}

/// For a setup the server refused (close 1007/1008 before `setupComplete`): the `[live]` key
/// its reason names, or else the keys set that some models refuse. `None` when neither.
pub fn refusal_hint(l: &LiveConfig, code: u16, reason: &str) -> Option<String> {
    if !matches!(code, 1007 | 1008) {
        return None;
    }
    let set = |key: &str| match key {
        "language_code" => l.language_code.is_some(),
        "vad_start_sensitivity" => l.vad_start_sensitivity.is_some(),
        "vad_end_sensitivity" => l.vad_end_sensitivity.is_some(),
        "vad_prefix_padding_ms" => l.vad_prefix_padding_ms.is_some(),
        "vad_silence_ms" => l.vad_silence_ms.is_some(),
        "barge_in" => !l.barge_in,
        "google_search" => l.google_search,
        "thinking_level" => l.thinking_level.is_some(),
        "temperature" => l.temperature.is_some(),
        "proactive_audio" => l.proactive_audio.is_some(),
        "affective_dialog" => l.affective_dialog.is_some(),
        _ => true,
    };
    // Only a key the owner set can be the culprit (the voice is always sent).
    if let Some((_, key)) = WIRE_KEYS
        .iter()
        .find(|(wire, key)| set(key) && reason.contains(wire))
    {
        return Some(format!(
            "the server refused `{key}` in [live]: this model does not take it as set; change \
             or remove that line (then `systemctl reload gemlive`)"
        ));
    }
    let risky = risky_keys(l);
    if code == 1007 && !risky.is_empty() {
        return Some(format!(
            "set in [live] and not taken by every model: {}; remove them one at a time to find \
             the one this model refuses",
            risky.join(", ")
        ));
    }
    None
}
