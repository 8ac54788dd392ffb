//! Every key of the file, written once. [`with_keys!`] hands the whole declaration to a
//! macro of the caller's, so that one list produces the typed structs and their defaults
//! (`types`), the spanned raw structs and the per-key parsing (`parse`), the key table
//! [`KEYS`](super::KEYS) (`keys`) and the per-key reload accessors (`reload`).
//!
//! Per table: `[name] TypedStruct RawStruct owned|foreign`; a `foreign` struct belongs to
//! another module (video owns its settings), so only its keys are declared here and a test
//! ties its `Default` to the declared defaults. Per key: the field and its type, the typed
//! default, the [`Kind`](super::Kind), the unit, the default as the reference shows it,
//! whether a reload applies it, an optional parser for a key with a rule of its own (else the
//! field type's `FromItem`), and the reference's doc line, which is also the field's doc.

macro_rules! with_keys {
    ($callback:ident) => {
        $callback! {
            /// `[live]`: the Live API session.
            [live] LiveConfig RawLive owned {
                endpoint: String = DEFAULT_ENDPOINT.to_string();
                    Kind::Text, "", Shown::Text(DEFAULT_ENDPOINT), true, [Ctx::endpoint],
                    "Live API WebSocket URL. Plain `ws://` is refused unless the host is loopback, because the key must not cross a network in clear text. With `auth = \"ephemeral\"` the default is the constrained endpoint (`v1alpha`, `BidiGenerateContentConstrained`).";
                /// Stored with its `models/` (or `tunedModels/`) prefix.
                model: String = format!("models/{DEFAULT_MODEL}");
                    Kind::Text, "", Shown::Text(DEFAULT_MODEL), true, [Ctx::model],
                    "Live model; the `models/` prefix is added if missing.";
                /// A known voice in canonical case (one of [`VOICES`](super::VOICES)), else as written.
                voice: String = DEFAULT_VOICE.to_string();
                    Kind::Text, "", Shown::Text(DEFAULT_VOICE), true, [Ctx::voice],
                    "A prebuilt voice: one of the 30 under [Voices](#voices) (case-insensitive), or a newer one by its exact name (sent as written; `check-config` warns, `check-config --online` proves it).";
                system_instruction: String = String::new();
                    Kind::Text, "", Shown::Text(""), true, [],
                    "Text sent in `setup.systemInstruction`.";
                media_resolution: MediaResolution = MediaResolution::Low;
                    Kind::Choice(&["low", "medium", "high"]), "", Shown::Text("low"), true, [],
                    "`low` \\| `medium` \\| `high`: tokens per camera frame.";
                language_code: Option<String> = None;
                    Kind::Text, "", Shown::Unset, true, [Ctx::language_code],
                    "The language the model speaks, a BCP-47 tag such as `de-DE` or `en-US`. Unset: the model chooses (it follows the speaker). Native-audio models choose for themselves and may ignore it or refuse the setup; a line in `system_instruction` (\"Always answer in German.\") works with every model.";
                vad_start_sensitivity: Option<Sensitivity> = None;
                    Kind::Choice(&["low", "high"]), "", Shown::Unset, true, [],
                    "`low` \\| `high`: how readily the server takes a sound for the start of speech. `low` ignores more (\"it answers the TV\"). Unset: the server's default (high).";
                vad_end_sensitivity: Option<Sensitivity> = None;
                    Kind::Choice(&["low", "high"]), "", Shown::Unset, true, [],
                    "`low` \\| `high`: how readily the server decides you have finished. `low` waits through pauses (\"it cuts me off\"), `high` answers sooner (\"it waits too long\"). Unset: the server's default (high).";
                vad_prefix_padding_ms: Option<u32> = None;
                    int(0, 2_000), "milliseconds", Shown::Unset, true, [],
                    "Speech must last this long before it counts as the start of your turn, 0..=2000 ms; higher ignores coughs and clicks. Unset: the server's default.";
                vad_silence_ms: Option<u32> = None;
                    int(100, 5_000), "milliseconds", Shown::Unset, true, [],
                    "This much silence ends your turn, 100..=5000 ms; longer lets you pause mid-sentence. Unset: the server's default. Gemini 3.1 is reported to ignore it (use `vad_end_sensitivity = \"low\"`).";
                barge_in: bool = true;
                    Kind::Bool, "", Shown::Literal("true"), true, [],
                    "`false`: your voice no longer interrupts a reply on the server (`NO_INTERRUPTION`), for a kitchen where echo, a radio or a running tap keeps cutting replies short. The button, the wake word, `gemlive ctl interrupt` and the local barge-in detector (a voice clearly louder than the speaker) still stop the speaker; the server then finishes the cancelled reply unheard, so the answer to what you say next comes after it.";
                google_search: bool = false;
                    Kind::Bool, "", Shown::Literal("false"), true, [],
                    "Let the model look things up with Google Search (the weather, the news, opening hours). Results count as input tokens, and on the free tier it is reported to hit the quota sooner.";
                thinking_level: Option<ThinkingLevel> = None;
                    Kind::Choice(&["minimal", "low", "medium", "high"]), "", Shown::Unset, true, [],
                    "`minimal` \\| `low` \\| `medium` \\| `high`: how much the model thinks before it answers; more is slower to start speaking. Gemini 3.1 and later (default minimal); 2.5 models take a thinking budget instead and may refuse it. Unset: the model's default.";
                temperature: Option<f64> = None;
                    Kind::Float { lo: 0.0, hi: 2.0 }, "", Shown::Unset, true, [Ctx::temperature],
                    "Randomness of the answers, 0.0..=2.0. Unset: the model's default.";
                proactive_audio: Option<bool> = None;
                    Kind::Bool, "", Shown::Unset, true, [],
                    "`true`: the model may stay silent when it is not spoken to (talk in the room goes unanswered). 2.5 native-audio models take it only at a `v1alpha` endpoint; models without it refuse the setup. Unset: not sent.";
                affective_dialog: Option<bool> = None;
                    Kind::Bool, "", Shown::Unset, true, [],
                    "`true`: the model answers in a tone that fits yours. 2.5 native-audio models take it only at a `v1alpha` endpoint; models without it refuse the setup. Unset: not sent.";
                /// A relative path is stored joined to the config file's directory.
                api_key_file: Option<PathBuf> = None;
                    Kind::Text, "", Shown::Unset, false, [Ctx::api_key_file],
                    "File holding only the key. It must be mode 0600, otherwise it is refused with a `chmod 600` hint.";
                auth: Auth = Auth::ApiKey;
                    Kind::Choice(&["api_key", "ephemeral"]), "", Shown::Text("api_key"), false, [],
                    "`api_key` \\| `ephemeral`. `ephemeral`: no API key on the box; every new session gets a short-lived token from `token_command` or `token_url` (see [Running many boxes](#running-many-boxes)), and the default `endpoint` becomes the constrained one (`v1alpha` `BidiGenerateContentConstrained`).";
                /// The program and its arguments; the program's path joined to the config
                /// file's directory when relative.
                token_command: Vec<String> = Vec::new();
                    Kind::Text, "", Shown::Unset, false, [Ctx::token_command],
                    "With `auth = \"ephemeral\"`: a program that prints a token, as a path or a list such as `[\"/usr/local/bin/gemlive-token\", \"kitchen\"]`. It prints the token alone, or JSON with `name` (or `token`) and optionally `expireTime`. It runs without the service's secrets in its environment and is killed after 10 s.";
                token_url: Option<String> = None;
                    Kind::Text, "", Shown::Unset, false, [Ctx::token_url],
                    "With `auth = \"ephemeral\"`, instead of `token_command`: an `https://` URL whose GET answers with the token, as plain text or as JSON like `token_command`'s. `http://` only to a loopback address.";
                /// A relative path is stored joined to the config file's directory.
                token_bearer_file: Option<PathBuf> = None;
                    Kind::Text, "", Shown::Unset, false, [Ctx::token_bearer_file],
                    "File holding this box's own credential for `token_url`, sent as `Authorization: Bearer …`; mode 0600.";
                input_transcription: bool = true;
                    Kind::Bool, "", Shown::Literal("true"), true, [],
                    "Log what you said (server transcript).";
                output_transcription: bool = true;
                    Kind::Bool, "", Shown::Literal("true"), true, [],
                    "Log what the model said.";
                setup_timeout_ms: u64 = 10_000;
                    int(1_000, 120_000), "milliseconds", Shown::Literal("10000"), false, [],
                    "Wait for `setupComplete`, 1000..=120000 ms.";
                resumption: bool = true;
                    Kind::Bool, "", Shown::Literal("true"), true, [],
                    "Resume the conversation across reconnects with the server's resumption handle.";
                compression_trigger_tokens: u64 = 25_600;
                    zero_or("compression off", 1_000, 1_000_000), "tokens", Shown::Literal("25600"), true, [],
                    "Context-window compression starts at this many tokens; `0` = off, otherwise 1000..=1000000.";
                compression_target_tokens: u64 = 12_800;
                    int(0, 1_000_000), "tokens", Shown::Literal("12800"), true, [],
                    "Compression shrinks the context to this many tokens, 0..=1000000; must be below the trigger (ignored when compression is off).";
                max_connection_age_s: u64 = 540;
                    int(30, 3_600), "seconds", Shown::Literal("540"), false, [],
                    "Hand over to a new connection after this long, 30..=3600 s (the server ends connections at about 10 min).";
                ping_interval_s: u64 = 15;
                    int(5, 120), "seconds", Shown::Literal("15"), false, [],
                    "WebSocket ping interval, 5..=120 s.";
                dead_after_s: u64 = 45;
                    int(30, 600), "seconds", Shown::Literal("45"), false, [],
                    "Nothing from the server (pongs included) for this long while sending = dead connection, reconnect. 30..=600 s and greater than `ping_interval_s`.";
                stall_after_s: u64 = 5;
                    int(1, 60), "seconds", Shown::Literal("5"), false, [],
                    "Bytes written to the connection that the server's TCP stack has not acknowledged, with no progress for this long, mean the network is gone: reconnect and resend the unacknowledged mic audio, 1..=60 s.";
                reconnect_max_delay_s: u64 = 30;
                    int(1, 600), "seconds", Shown::Literal("30"), false, [],
                    "Cap of the jittered exponential reconnect backoff (starts at 0.5 s), 1..=600 s.";
                config_error_delay_s: u64 = 60;
                    int(1, 3_600), "seconds", Shown::Literal("60"), false, [],
                    "First wait after the server refuses the setup (bad argument, model not found, location, quota), doubling up to 15 min; 1..=3600 s.";
                max_message_kb: u32 = 4_096;
                    int(64, 65_536), "KiB", Shown::Literal("4096"), true, [],
                    "Server messages larger than this are skipped and logged, 64..=65536 KiB.";
            }
            /// `[audio]`: ALSA devices, chunking, mic backlog and volume.
            [audio] AudioConfig RawAudio owned {
                capture_device: String = "default".to_string();
                    Kind::Text, "", Shown::Text("default"), false, [Ctx::device],
                    "ALSA PCM for the microphone. Use `gemlive list-devices`; prefer stable names like `plughw:CARD=Device,DEV=0`.";
                playback_device: String = "default".to_string();
                    Kind::Text, "", Shown::Text("default"), false, [Ctx::device],
                    "ALSA PCM for the speaker.";
                chunk_ms: u32 = 40;
                    int(20, 100), "milliseconds", Shown::Literal("40"), false, [],
                    "Mic audio per message, 20..=100 ms.";
                backlog_ms: u32 = 10_000;
                    int(1_000, 120_000), "milliseconds", Shown::Literal("10000"), true, [],
                    "Mic audio kept while (re)connecting and sent in order once the session is ready; beyond it the oldest is dropped. 1000..=120000 ms.";
                volume: u8 = 100;
                    int(0, 100), "percent", Shown::Literal("100"), true, [],
                    "Initial speaker volume (software gain), 0..=100 %; the model can change it with `set_volume`.";
                echo: EchoMode = EchoMode::Aec;
                    Kind::Choice(&["aec", "half_duplex", "none"]), "", Shown::Text("aec"), false, [],
                    "`aec` \\| `half_duplex` \\| `none`. `aec`: in-process echo cancellation (WebRTC AEC3) with the playback stream as the reference, so you can talk over the model; the half-duplex gate covers its first second and unhealthy spells. `half_duplex`: the mic is muted (silence is sent) while a reply plays and for `echo_tail_ms` after; talking clearly louder than the speaker, or the button, stops the reply. `none`: for a headset.";
                echo_tail_ms: u32 = 300;
                    int(0, 5_000), "milliseconds", Shown::Literal("300"), false, [],
                    "With `half_duplex` (and during the canceller's warm-up): how long the mic stays muted after a reply has played, 0..=5000 ms.";
                noise_suppression: NoiseSuppression = NoiseSuppression::Moderate;
                    Kind::Choice(&["off", "low", "moderate", "high"]), "", Shown::Text("moderate"), false, [],
                    "`off` \\| `low` \\| `moderate` \\| `high`: WebRTC noise suppression on the (echo-cancelled) mic before it is sent. Measured on speech in fan, hum and hiss noise: `low` +6 dB SNR, `moderate` +10 dB, `high` +12 dB; in every case the speech itself loses under 3 dB. Other voices (a TV) are not noise to it.";
                agc: bool = false;
                    Kind::Bool, "", Shown::Literal("false"), false, [],
                    "Automatic gain (WebRTC AGC2, up to +30 dB, and a limiter) after noise suppression: for a mic that hears you faintly (`gemlive test-audio` says so). It lifts the room's noise too, and costs three times the CPU of noise suppression.";
                pause_on_silence_s: u32 = 10;
                    int(0, 3_600), "seconds", Shown::Literal("10"), true, [],
                    "With `wake = \"always\"`: after this long without speech (local voice detection on the echo-cancelled mic) the mic stream pauses (`audioStreamEnd`, then nothing is sent, so nothing is billed) until someone speaks; the speech goes out with the half second before it. The connection stays open. `0` = always stream, 0..=3600 s.";
            }
            /// `[video]`: the struct is the camera's own ([`crate::video::settings`]); only its keys are declared here.
            [video] VideoConfig RawVideo foreign {
                enabled: bool = true;
                    Kind::Bool, "", Shown::Literal("true"), false, [],
                    "Send camera frames. `false` = audio only; the camera is never opened.";
                device: String = DEFAULT_VIDEO_DEVICE.to_string();
                    Kind::Text, "", Shown::Text(DEFAULT_VIDEO_DEVICE), false, [Ctx::video_device],
                    "V4L2 capture node, MJPEG required (`v4l2-ctl --list-devices` or `gemlive list-devices`), a file of concatenated JPEG frames (`.mjpeg`, for tests and demos), or a named pipe carrying an MJPEG stream. A Pi CSI camera: `mkfifo /run/gemlive-cam` and `rpicam-vid -t 0 -n --codec mjpeg --width 1024 --height 768 --framerate 5 -o /run/gemlive-cam`, or libcamera's V4L2 compatibility layer.";
                capture_size: Option<(u32, u32)> = None;
                    Kind::Text, "", Shown::Text("auto"), false, [Ctx::capture_size],
                    "MJPEG size asked of the camera: `auto` (the smallest mode that still fills the output, so there is less to decode: its long side at least `size` for `letterbox` and `fit`, its short side for `crop` and `stretch`; for 768 that is 800x600 or 1024x576 rather than 1280x720 or 1920x1080) or `WIDTHxHEIGHT` such as `1280x720`, each side 16..=8192 px.";
                fps: f64 = 1.0;
                    Kind::Float { lo: 0.05, hi: 1.0 }, "frames per second", Shown::Literal("1.0"), false, [Ctx::fps],
                    "Frames sent per second, 0.05..=1.0. The Live API takes at most 1 frame/s. `[live] media_resolution` sets the tokens per frame.";
                send: VideoSend = VideoSend::Always;
                    Kind::Choice(&["always", "while_speaking"]), "", Shown::Text("always"), false, [],
                    "`always` \\| `while_speaking`: send frames only while you speak, which saves tokens.";
                size: u32 = 768;
                    int(64, 2_048), "pixels", Shown::Literal("768"), false, [],
                    "Side of the output square, 64..=2048 px.";
                geometry: Geometry = Geometry::Letterbox;
                    Kind::Choice(&["letterbox", "crop", "fit", "stretch"]), "", Shown::Text("letterbox"), false, [],
                    "`letterbox`: the whole scene with black bars, exactly size×size. `crop`: fills the square and cuts the sides. `fit`: long side = size (never enlarged), no bars. `stretch`: size×size, distorted.";
                quality: u8 = 80;
                    int(1, 100), "JPEG quality, 100 = best", Shown::Literal("80"), false, [],
                    "JPEG quality of the frames sent, 1..=100.";
            }
            /// `[session]`: when a session runs and how it ends.
            [session] SessionConfig RawSession owned {
                wake: Wake = Wake::Always;
                    Kind::Choice(&["always", "button", "word"]), "", Shown::Text("always"), false, [],
                    "`always`: a session opens at start and listens continuously. `button`: idle until the button is pressed; the session ends on a long press, after `idle_timeout_s` or at `max_session_s`. `button` needs a configured `[button]`. `word`: idle until the wake word of `[wake]` is heard (on the box, nothing leaves it before) or the button is pressed; the session then ends like a button session.";
                idle_timeout_s: u64 = 120;
                    zero_or("never", 10, 86_400), "seconds", Shown::Literal("120"), false, [],
                    "With `wake = \"button\"`: no speech either way for this long ends the session; `0` = never, otherwise 10..=86400 s. Not used with `wake = \"always\"`.";
                max_session_s: u64 = 0;
                    zero_or("unlimited", 60, 86_400), "seconds", Shown::Literal("0"), false, [],
                    "End a session after this long; `0` = unlimited, otherwise 60..=86400 s.";
                chimes: bool = true;
                    Kind::Bool, "", Shown::Literal("true"), false, [],
                    "Short generated sounds on wake, at the end of a session and on errors.";
            }
            /// `[wake]`: the local wake-word detector (`wake = "word"`).
            [wake] WakeConfig RawWake foreign {
                model: String = "okay_nabu".to_string();
                    Kind::Text, "", Shown::Text("okay_nabu"), false, [Ctx::wake_model],
                    "The wake word: `okay_nabu`, `alexa`, `hey_jarvis` or `hey_mycroft` (shipped microWakeWord models), or the path to the JSON manifest of any microWakeWord model (its `.tflite` beside it).";
                cutoff: Option<f64> = None;
                    Kind::Float { lo: 0.01, hi: 0.99 }, "probability", Shown::Unset, false, [Ctx::wake_cutoff],
                    "Detection threshold, 0.01..=0.99, instead of the manifest's `probability_cutoff` (unset: the manifest's): lower wakes more easily (and falsely). `gemlive test-wake` shows the scores you reach.";
                window: Option<u32> = None;
                    int(1, 100), "feature steps", Shown::Unset, false, [],
                    "Probabilities averaged, 1..=100, instead of the manifest's `sliding_window_size` (unset: the manifest's).";
            }
            /// `[button]`: an optional push button (and LED) on GPIO lines, through the kernel's GPIO
        /// character device.
            [button] ButtonConfig RawButton owned {
                /// Trimmed, non-empty; exclusive with `chip` + `offset`.
                line: Option<String> = None;
                    Kind::Text, "", Shown::Unset, false, [Ctx::line_name],
                    "GPIO line name of the button, e.g. `GPIO17` (Raspberry Pi header names: GPIO17 is physical pin 11). Find lines with `gpioinfo` or `gemlive list-devices`. Unset = no button.";
                chip: Option<String> = None;
                    Kind::Text, "", Shown::Unset, false, [Ctx::chip],
                    "Instead of `line` (not both): the chip, `gpiochip0` or `/dev/gpiochip0`, used with `offset`. Chip numbers differ between Pi models and kernels; line names do not.";
                offset: Option<u32> = None;
                    int(0, 1_023), "line offset on chip", Shown::Unset, false, [],
                    "The line's offset on `chip`, 0..=1023; `chip` and `offset` go together.";
                active_low: bool = true;
                    Kind::Bool, "", Shown::Literal("true"), false, [],
                    "Pressed = the line reads low: a button between the pin and ground.";
                bias: Bias = Bias::PullUp;
                    Kind::Choice(&["pull_up", "pull_down", "disabled", "as_is"]), "", Shown::Text("pull_up"), false, [],
                    "`pull_up` \\| `pull_down` \\| `disabled` \\| `as_is`: the chip's internal pull resistor. `pull_up` with `active_low = true` needs no external resistor.";
                debounce_ms: u32 = 30;
                    int(0, 1_000), "milliseconds, 0 = off", Shown::Literal("30"), false, [],
                    "Kernel debounce, 0..=1000 ms (0 = off).";
                long_press_ms: u32 = 1_500;
                    int(300, 10_000), "milliseconds", Shown::Literal("1500"), false, [],
                    "A press this long is a long press (ends the session in `toggle` mode), 300..=10000 ms.";
                mode: ButtonMode = ButtonMode::Toggle;
                    Kind::Choice(&["toggle", "push_to_talk"]), "", Shown::Text("toggle"), false, [],
                    "`toggle`: a press starts a session or interrupts the reply; a long press ends the session. `push_to_talk`: hold to talk (press = start of your turn, release = end); the server's automatic voice detection is off. Needs a configured button.";
                /// Trimmed; parse it with [`ButtonConfig::led`](super::ButtonConfig::led).
                led_line: Option<String> = None;
                    Kind::Text, "", Shown::Unset, false, [Ctx::led_line],
                    "Optional status LED (driven high for on): a line name such as `GPIO27` or `CHIP:OFFSET` such as `gpiochip0:27`.";
                /// Trimmed; parse it with [`ButtonConfig::mute`](super::ButtonConfig::mute).
                mute_line: Option<String> = None;
                    Kind::Text, "", Shown::Unset, false, [Ctx::mute_line],
                    "Optional mute switch (or button), wired like the button (`active_low`, `bias`, `debounce_ms` apply): a line name such as `GPIO22` or `CHIP:OFFSET`. While muted no microphone audio leaves the box (see [Mute](#mute)).";
                mute_mode: MuteMode = MuteMode::Switch;
                    Kind::Choice(&["switch", "button"]), "", Shown::Text("switch"), false, [],
                    "`switch`: muted while the switch is on (closed); `button`: each press mutes or unmutes, and the state is kept across restarts.";
            }
            /// `[tools]`: the struct is the tools module's own ([`crate::tools::settings`]); only its keys are declared here.
            [tools] ToolsConfig RawTools foreign {
                builtin: bool = true;
                    Kind::Bool, "", Shown::Literal("true"), false, [],
                    "Offer the model the built-in tools: `end_session`, `set_volume`, the timers `set_timer`, `cancel_timer`, `list_timers`, and `look` (with a camera).";
                command: Vec<CommandTool> = Vec::new();
                    Kind::Tables, "", Shown::Unset, false, [Ctx::command_tools],
                    "`[[tools.command]]` entries: programs the model may run (see [Tools](#tools)).";
                http: Vec<HttpTool> = Vec::new();
                    Kind::Tables, "", Shown::Unset, false, [Ctx::http_tools],
                    "`[[tools.http]]` entries: web requests the model may make (see [Tools](#tools)).";
                mcp: Vec<McpServer> = Vec::new();
                    Kind::Tables, "", Shown::Unset, false, [Ctx::mcp_servers],
                    "`[[tools.mcp]]` entries: MCP servers whose tools the model may call, Home Assistant's included (see [MCP servers](#mcp-servers)).";
            }
            /// `[service]`: how the daemon runs.
            [service] ServiceConfig RawService owned {
                log_level: LogLevel = LogLevel::Info;
                    Kind::Choice(&["error", "warn", "info", "debug", "trace"]), "", Shown::Text("info"), true, [],
                    "`error` \\| `warn` \\| `info` \\| `debug` \\| `trace`. The `-v` flag and the `GEMLIVE_LOG` environment variable override it.";
                /// A relative path is stored joined to the config file's directory.
                control_socket: Option<PathBuf> = None;
                    Kind::Text, "", Shown::Unset, false, [Ctx::control_socket],
                    "Unix socket of the local control interface (JSON lines; `gemlive ctl`), e.g. `/run/gemlive/control.sock` (the service's runtime directory). Mode 0660. Unset = no control interface. With it, `wake = \"button\"` needs no `[button]`: `gemlive ctl wake` starts a conversation.";
            }
            /// `[hooks]`: programs run for every event.
            [hooks] HooksConfig RawHooks owned {
                /// Relative paths are stored joined to the config file's directory.
                on_event: Vec<PathBuf> = Vec::new();
                    Kind::Text, "", Shown::Unset, false, [Ctx::hook_programs],
                    "Programs run for every event (see [Hooks](#hooks)): a path or a list of paths. Each gets the event as one JSON line on standard input and its name in `GEMLIVE_EVENT`.";
                timeout_s: u64 = 10;
                    int(1, 600), "seconds", Shown::Literal("10"), false, [],
                    "A hook still running after this long is killed, 1..=600 s.";
            }
            /// `[metrics]`: counters in Prometheus text format.
            [metrics] MetricsConfig RawMetrics owned {
                /// A relative path is stored joined to the config file's directory.
                textfile: Option<PathBuf> = None;
                    Kind::Text, "", Shown::Unset, false, [Ctx::metrics_textfile],
                    "File the metrics are written to (replaced atomically), for node_exporter's textfile collector, e.g. `/var/lib/node_exporter/textfile_collector/gemlive.prom`. Unset = no file.";
                listen: Option<std::net::SocketAddr> = None;
                    Kind::Text, "", Shown::Unset, false, [Ctx::metrics_listen],
                    "Serve the metrics over HTTP at `/metrics` on this address, e.g. `127.0.0.1:9465`. Unset = no listener.";
                interval_s: u64 = 15;
                    int(1, 3_600), "seconds", Shown::Literal("15"), false, [],
                    "How often the metrics file is rewritten, 1..=3600 s.";
            }
            /// `[mqtt]`: Home Assistant over MQTT.
            [mqtt] MqttConfig RawMqtt owned {
                url: Option<String> = None;
                    Kind::Text, "", Shown::Unset, false, [Ctx::mqtt_url],
                    "Broker, `mqtt://HOST[:PORT]` (1883) or `mqtts://HOST[:PORT]` (8883, verified TLS). Unset = no MQTT.";
                username: String = String::new();
                    Kind::Text, "", Shown::Text(""), false, [],
                    "User name for the broker (empty: none).";
                /// A relative path is stored joined to the config file's directory.
                password_file: Option<PathBuf> = None;
                    Kind::Text, "", Shown::Unset, false, [Ctx::mqtt_password_file],
                    "File holding only the broker password, mode 0600.";
                /// A relative path is stored joined to the config file's directory.
                ca_file: Option<PathBuf> = None;
                    Kind::Text, "", Shown::Unset, false, [Ctx::mqtt_ca_file],
                    "PEM certificate(s) that sign the broker's certificate, for `mqtts://` with your own CA. Unset = the public roots.";
                discovery_prefix: String = "homeassistant".to_string();
                    Kind::Text, "", Shown::Text("homeassistant"), false, [Ctx::mqtt_topic_part],
                    "Home Assistant's discovery prefix.";
                /// Empty: the host name (made topic-safe) at start.
                node_id: String = String::new();
                    Kind::Text, "", Shown::Text(""), false, [Ctx::mqtt_topic_part],
                    "Empty: the host name. This box's id in topics (`gemlive/NODE_ID/...`) and in Home Assistant: letters, digits, `_` and `-`.";
            }
        }
    };
}
pub(super) use with_keys;
