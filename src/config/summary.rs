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
        format!("media resolution: {}", l.media_resolution.as_str()),
        format!("system instruction: {instruction}"),
        format!(
            "transcription: input {}, output {}",
            on(l.input_transcription),
            on(l.output_transcription)
        ),
        format!("setup timeout: {} ms", l.setup_timeout_ms),
        format!(
            "session: resumption {}, {compression}, hand-over at {} s, ping {} s, dead after {} s, \
             stalled after {} s, max message {} KiB",
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
        format!("capture device: {}", a.capture_device),
        format!("playback device: {}", a.playback_device),
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
        format!("video: {video}"),
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
        format!("api key: {key_line}"),
    ];
    let mut out = lines.join("\n");
    out.push('\n');
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
