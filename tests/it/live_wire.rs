//! Wire-format tests of `live::proto` against recorded Live API traffic
//! (`tests/fixtures/live/*.websocket.log`, format in `tests/fixtures/live/README.md` §2) and
//! hand-written frames for shapes the recordings lack (`tests/fixtures/live/synthetic_*.json`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use gemlive::live::proto::{
    write_audio_json, ClientMessage, FunctionCall, ProtoError, ServerEvent, ServerMessage,
    SetupParams, UsageMetadata,
};
use serde_json::{json, Value};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/live")
}

// ------------------------------------------------------------------------- log format

/// One record of a `*.websocket.log` file.
#[derive(Debug)]
struct Record<'a> {
    /// `>`: client → server; `<`: server → client.
    from_client: bool,
    /// The WebSocket payload (the record without the recorder's trailing LF).
    payload: &'a [u8],
    /// The payload plus the LF, i.e. what the other end received through the recording proxy.
    with_lf: &'a [u8],
}

/// Parses a log by length (`direction length SP payload LF`, `length` counting the LF).
fn parse_log(buf: &[u8]) -> Result<Vec<Record<'_>>, String> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < buf.len() {
        let from_client = match buf[i] {
            b'>' => true,
            b'<' => false,
            b => return Err(format!("offset {i}: bad direction byte {b:#04x}")),
        };
        let sp = buf[i..]
            .iter()
            .position(|&b| b == b' ')
            .map(|p| i + p)
            .ok_or_else(|| format!("offset {i}: no space after length"))?;
        let digits = &buf[i + 1..sp];
        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
            return Err(format!("offset {i}: bad length {digits:?}"));
        }
        let n: usize = std::str::from_utf8(digits)
            .map_err(|e| e.to_string())?
            .parse()
            .map_err(|e| format!("offset {i}: {e}"))?;
        let end = sp + 1 + n;
        if n == 0 || end > buf.len() {
            return Err(format!("offset {i}: length {n} runs past the end"));
        }
        let with_lf = &buf[sp + 1..end];
        if with_lf[n - 1] != b'\n' {
            return Err(format!("offset {i}: record does not end in LF"));
        }
        out.push(Record {
            from_client,
            payload: &with_lf[..n - 1],
            with_lf,
        });
        i = end;
    }
    Ok(out)
}

#[test]
fn log_parser_handles_the_readme_example_and_rejects_garbage() {
    let recs = parse_log(b"<27 {\n  \"setupComplete\": {}\n}\n\n>3 {}\n").expect("valid");
    assert_eq!(recs.len(), 2);
    assert!(!recs[0].from_client);
    assert_eq!(recs[0].payload, b"{\n  \"setupComplete\": {}\n}\n");
    assert!(recs[1].from_client);
    assert_eq!(recs[1].payload, b"{}");
    for bad in [
        &b"x3 {}\n"[..],
        b"<3{}\n",
        b"<9 {}\n",
        b"<2 {}\n",
        b"< {}\n",
    ] {
        assert!(
            parse_log(bad).is_err(),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
}

/// `(file name, contents)` of every log in `dir`, sorted by name.
fn logs(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("dir entry").path())
        .filter(|p| p.to_string_lossy().ends_with(".websocket.log"))
        .map(|p| {
            let name = p
                .file_name()
                .expect("file name")
                .to_string_lossy()
                .into_owned();
            let bytes = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (name, bytes)
        })
        .collect();
    out.sort();
    out
}

// ------------------------------------------------------------------------- server side

/// The kind of an event, for counting and for comparison with the oracle.
fn kind(e: &ServerEvent) -> &'static str {
    match e {
        ServerEvent::SetupComplete { .. } => "SetupComplete",
        ServerEvent::InputTranscription(_) => "InputTranscription",
        ServerEvent::OutputTranscription(_) => "OutputTranscription",
        ServerEvent::Audio { .. } => "Audio",
        ServerEvent::Text(_) => "Text",
        ServerEvent::Interrupted => "Interrupted",
        ServerEvent::GenerationComplete => "GenerationComplete",
        ServerEvent::TurnCompleteReason(_) => "TurnCompleteReason",
        ServerEvent::TurnComplete => "TurnComplete",
        ServerEvent::ToolCall(_) => "ToolCall",
        ServerEvent::ToolCallCancellation(_) => "ToolCallCancellation",
        ServerEvent::GoAway { .. } => "GoAway",
        ServerEvent::ResumptionUpdate { .. } => "ResumptionUpdate",
        ServerEvent::Usage(_) => "Usage",
        ServerEvent::BadPart(_) => "BadPart",
    }
}

/// Independent oracle: the event kinds a frame should produce, read from the generic JSON
/// (covers the keys that occur in the recordings).
fn expected_kinds(v: &Value) -> Vec<&'static str> {
    let mut k = Vec::new();
    if v.get("setupComplete").is_some() {
        k.push("SetupComplete");
    }
    let sc = &v["serverContent"];
    if sc["inputTranscription"]["text"]
        .as_str()
        .is_some_and(|t| !t.is_empty())
    {
        k.push("InputTranscription");
    }
    for part in sc["modelTurn"]["parts"].as_array().into_iter().flatten() {
        if part.get("inlineData").is_some() {
            k.push("Audio");
        }
        if part["text"].as_str().is_some() && part["thought"] != json!(true) {
            k.push("Text");
        }
    }
    if sc["outputTranscription"]["text"]
        .as_str()
        .is_some_and(|t| !t.is_empty())
    {
        k.push("OutputTranscription");
    }
    for (key, name) in [
        ("interrupted", "Interrupted"),
        ("generationComplete", "GenerationComplete"),
        ("turnCompleteReason", "TurnCompleteReason"),
        ("turnComplete", "TurnComplete"),
    ] {
        let reason = sc[key]
            .as_str()
            .is_some_and(|r| !r.is_empty() && r != "TURN_COMPLETE_REASON_UNSPECIFIED");
        if sc[key] == json!(true) || reason {
            k.push(name);
        }
    }
    for (key, name) in [
        ("toolCall", "ToolCall"),
        ("toolCallCancellation", "ToolCallCancellation"),
        ("goAway", "GoAway"),
        ("sessionResumptionUpdate", "ResumptionUpdate"),
        ("usageMetadata", "Usage"),
    ] {
        if v.get(key).is_some() {
            k.push(name);
        }
    }
    k
}

/// All server frames of one folder: `(file, frame index in file, events)`, after checking
/// every frame against the oracle (as payload and as payload + recorder LF).
fn server_frames(dir: &Path) -> Vec<(String, usize, Vec<ServerEvent>)> {
    let mut out = Vec::new();
    for (name, bytes) in logs(dir) {
        let recs = parse_log(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        for (idx, rec) in recs.iter().filter(|r| !r.from_client).enumerate() {
            let msg = ServerMessage::parse(rec.payload)
                .unwrap_or_else(|e| panic!("{name} frame {idx}: {e}"));
            let again = ServerMessage::parse(rec.with_lf)
                .unwrap_or_else(|e| panic!("{name} frame {idx} + LF: {e}"));
            assert_eq!(msg, again, "{name} frame {idx}");
            let events = msg.into_events();
            let raw: Value = serde_json::from_slice(rec.payload).expect("recorded JSON");
            let kinds: Vec<_> = events.iter().map(kind).collect();
            assert_eq!(kinds, expected_kinds(&raw), "{name} frame {idx}");
            out.push((name.clone(), idx, events));
        }
    }
    out
}

fn count_kinds(frames: &[(String, usize, Vec<ServerEvent>)]) -> BTreeMap<&'static str, usize> {
    let mut m = BTreeMap::new();
    for e in frames.iter().flat_map(|f| f.2.iter()) {
        *m.entry(kind(e)).or_insert(0) += 1;
    }
    m
}

fn frame_events<'a>(
    frames: &'a [(String, usize, Vec<ServerEvent>)],
    file: &str,
    idx: usize,
) -> &'a [ServerEvent] {
    &frames
        .iter()
        .find(|f| f.0 == file && f.1 == idx)
        .unwrap_or_else(|| panic!("no frame {idx} in {file}"))
        .2
}

fn audio_of(events: &[ServerEvent]) -> Vec<(u32, usize)> {
    events
        .iter()
        .filter_map(|e| match e {
            ServerEvent::Audio { rate_hz, pcm } => Some((*rate_hz, pcm.len())),
            _ => None,
        })
        .collect()
}

#[test]
fn every_current_server_frame_parses() {
    let frames = server_frames(&fixtures());
    assert_eq!(logs(&fixtures()).len(), 19);
    assert_eq!(frames.len(), 48);
    let want: BTreeMap<&str, usize> = [
        ("SetupComplete", 19),
        ("Text", 10),
        ("OutputTranscription", 4),
        ("Audio", 6),
        ("GenerationComplete", 3),
        ("TurnComplete", 2),
        ("Usage", 2),
        ("ToolCall", 2),
    ]
    .into_iter()
    .collect();
    assert_eq!(count_kinds(&frames), want);

    // Vertex audio: bare `audio/pcm` → 24 kHz; 200 ms and 240 ms chunks.
    let all_audio: Vec<_> = frames.iter().flat_map(|f| audio_of(&f.2)).collect();
    assert_eq!(all_audio.len(), 6);
    assert!(all_audio
        .iter()
        .all(|&(rate, len)| rate == 24000 && (len == 9600 || len == 11520)));
    for file in [
        "live_Vertex_should_send_content_dict_in_async_session.websocket.log",
        "live_Vertex_should_send_text_in_async_session.websocket.log",
    ] {
        assert_eq!(audio_of(frame_events(&frames, file, 1)), [(24000, 9600)]);
        assert_eq!(audio_of(frame_events(&frames, file, 2)), [(24000, 11520)]);
    }

    // Vertex setupComplete carries a sessionId, ML Dev's is empty.
    assert_eq!(
        frame_events(
            &frames,
            "live_Vertex_should_initialize_session_with_publishers_prefix.websocket.log",
            0
        ),
        [ServerEvent::SetupComplete {
            session_id: Some("f162d11d-434a-4212-8a31-f1a4843cad11".into())
        }]
    );
    assert_eq!(
        frame_events(
            &frames,
            "live_ML_Dev_should_send_text_in_async_session.websocket.log",
            0
        ),
        [ServerEvent::SetupComplete { session_id: None }]
    );

    // toolCall id kept as a string; the executableCode part before it yields nothing.
    let tool = "live_ML_Dev_should_send_tool_response.websocket.log";
    assert_eq!(frame_events(&frames, tool, 1), []);
    assert_eq!(
        frame_events(&frames, tool, 2),
        [ServerEvent::ToolCall(vec![FunctionCall {
            id: Some("function-call-5831923424298605773".into()),
            name: "get_current_weather".into(),
            args: json!({"location": "Redmond, WA"}),
        }])]
    );
    let vertex_tool = "live_Vertex_should_send_tool_response.websocket.log";
    assert!(matches!(
        frame_events(&frames, vertex_tool, 1),
        [ServerEvent::ToolCall(calls)]
            if calls[0].id.as_deref() == Some("8acdafcd-9c55-44be-84da-da3d2612f9d1")
    ));
    assert_eq!(
        frame_events(&frames, vertex_tool, 2),
        [ServerEvent::GenerationComplete]
    );

    // usageMetadata beside turnComplete, after it in event order.
    let ev = frame_events(
        &frames,
        "live_ML_Dev_should_send_content_dict_in_async_session.websocket.log",
        2,
    );
    let [ServerEvent::TurnComplete, ServerEvent::Usage(u)] = ev else {
        panic!("unexpected events {ev:?}");
    };
    assert_eq!(
        (
            u.prompt_token_count,
            u.response_token_count,
            u.total_token_count
        ),
        (Some(515), Some(31), Some(546))
    );
    assert_eq!(u.prompt_tokens_details[0].modality.as_deref(), Some("TEXT"));
    assert_eq!(u.response_tokens_details[0].token_count, Some(31));

    // Vertex transcription: the empty `outputTranscription: {}` produces no event.
    let tr = "live_Vertex_should_receive_transcription_in_async_session_with_transcription_enabled.websocket.log";
    assert_eq!(frame_events(&frames, tr, 1), []);
    assert_eq!(
        frame_events(&frames, tr, 2),
        [ServerEvent::OutputTranscription("We".into())]
    );

    // Text chunks, including the split word.
    let text = "live_ML_Dev_should_reply_to_realtime_text_input.websocket.log";
    assert_eq!(
        frame_events(&frames, text, 1),
        [ServerEvent::Text("Yes, I'".into())]
    );
}

#[test]
fn every_history_server_frame_parses() {
    let dir = fixtures().join("history");
    let frames = server_frames(&dir);
    assert_eq!(logs(&dir).len(), 18);
    assert_eq!(frames.len(), 45);
    let want: BTreeMap<&str, usize> = [
        ("SetupComplete", 17),
        ("Text", 10),
        ("Audio", 10),
        ("OutputTranscription", 3),
        ("GenerationComplete", 1),
        ("ToolCall", 2),
    ]
    .into_iter()
    .collect();
    assert_eq!(count_kinds(&frames), want);

    // ML Dev 2025 audio: `audio/pcm;rate=24000`, interleaved with transcription.
    let tr = "live_ML_Dev_should_receive_transcription_in_async_session_with_transcription_enabled.websocket.log";
    assert_eq!(audio_of(frame_events(&frames, tr, 1)), [(24000, 9600)]);
    assert_eq!(
        frame_events(&frames, tr, 2),
        [ServerEvent::OutputTranscription("We ".into())]
    );
    assert_eq!(audio_of(frame_events(&frames, tr, 3)), [(24000, 11520)]);
    let all_audio: Vec<_> = frames.iter().flat_map(|f| audio_of(&f.2)).collect();
    assert!(all_audio.iter().all(|&(rate, _)| rate == 24000));

    // 20-digit ML Dev id (> i64::MAX) and the id-less 2025 Vertex call.
    assert!(matches!(
        frame_events(&frames, "live_ML_Dev_should_send_tool_response.websocket.log", 2),
        [ServerEvent::ToolCall(calls)]
            if calls[0].id.as_deref() == Some("function-call-14999314136682553409")
    ));
    assert!(matches!(
        frame_events(&frames, "live_Vertex_should_send_tool_response.websocket.log", 1),
        [ServerEvent::ToolCall(calls)] if calls[0].id.is_none() && calls[0].name == "get_current_weather"
    ));
}

// ------------------------------------------------------------------------- client side

/// Round-trips every recorded client message we model through `ClientMessage` and returns
/// how many messages of each top-level kind were seen / round-tripped.
fn check_client_records(dir: &Path) -> (BTreeMap<String, usize>, usize, usize) {
    let mut seen = BTreeMap::new();
    let mut round_tripped = 0;
    let mut audio_rebuilt = 0;
    let mut buf = String::new();
    for (name, bytes) in logs(dir) {
        let recs = parse_log(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        for rec in recs.iter().filter(|r| r.from_client) {
            let raw: Value = serde_json::from_slice(rec.payload).expect("recorded JSON");
            let obj = raw.as_object().expect("client message is an object");
            assert_eq!(obj.len(), 1, "{name}: one top-level key");
            let (top, inner) = obj.iter().next().expect("one key");
            let key = match (top.as_str(), inner.as_object()) {
                ("realtimeInput", Some(fields)) => {
                    assert_eq!(fields.len(), 1, "{name}: one realtimeInput field");
                    format!("realtimeInput.{}", fields.keys().next().expect("one field"))
                }
                _ => top.clone(),
            };
            *seen.entry(key.clone()).or_insert(0) += 1;
            let modelled = !matches!(key.as_str(), "clientContent" | "realtimeInput.mediaChunks");
            let parsed = serde_json::from_slice::<ClientMessage>(rec.payload);
            if !modelled {
                assert!(parsed.is_err(), "{name}: {key} is not modelled");
                continue;
            }
            let msg = parsed.unwrap_or_else(|e| panic!("{name}: {key}: {e}"));
            let back: Value = serde_json::from_str(&msg.to_json()).expect("own JSON");
            assert_eq!(back, raw, "{name}: {key} round trip");
            round_tripped += 1;

            if key == "realtimeInput.audio" {
                let audio = &raw["realtimeInput"]["audio"];
                assert_eq!(audio["mimeType"], "audio/pcm;rate=16000");
                let pcm = B64
                    .decode(audio["data"].as_str().expect("data string"))
                    .expect("recorded base64");
                assert_eq!(pcm.len(), 96_938, "{name}: the 3.03 s clip");
                let rebuilt = ClientMessage::audio(&pcm, 16000);
                assert_eq!(rebuilt, msg, "{name}");
                let rebuilt_json = rebuilt.to_json();
                let rebuilt_value: Value = serde_json::from_str(&rebuilt_json).expect("JSON");
                assert_eq!(rebuilt_value, raw, "{name}: audio rebuilt from PCM");
                buf.clear();
                write_audio_json(&mut buf, &pcm, 16000);
                assert_eq!(buf, rebuilt_json, "{name}: write_audio_json");
                audio_rebuilt += 1;
            }
        }
    }
    (seen, round_tripped, audio_rebuilt)
}

#[test]
fn recorded_client_messages_round_trip() {
    for dir in [fixtures(), fixtures().join("history")] {
        let (seen, round_tripped, audio_rebuilt) = check_client_records(&dir);
        let setups = if dir.ends_with("history") { 18 } else { 19 };
        let want: BTreeMap<String, usize> = [
            ("setup", setups),
            ("clientContent", 8),
            ("toolResponse", 3),
            ("realtimeInput.audio", 2),
            ("realtimeInput.mediaChunks", 2),
            ("realtimeInput.text", 1),
            ("realtimeInput.activityStart", 1),
            ("realtimeInput.activityEnd", 1),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        assert_eq!(seen, want, "{}", dir.display());
        // Everything except clientContent and mediaChunks.
        assert_eq!(round_tripped, setups + 3 + 2 + 1 + 1 + 1);
        assert_eq!(audio_rebuilt, 2);
    }
}

#[test]
fn setup_golden() {
    let params = SetupParams {
        model: "models/gemini-3.1-flash-live-preview".into(),
        voice: "Kore".into(),
        system_instruction: Some("You are a kitchen assistant. Be brief.".into()),
        media_resolution: "MEDIA_RESOLUTION_LOW".into(),
        input_transcription: true,
        output_transcription: true,
    };
    let got: Value =
        serde_json::from_str(&ClientMessage::setup(&params).to_json()).expect("own JSON");
    assert_eq!(
        got,
        json!({"setup": {
            "model": "models/gemini-3.1-flash-live-preview",
            "generationConfig": {
                "responseModalities": ["AUDIO"],
                "mediaResolution": "MEDIA_RESOLUTION_LOW",
                "speechConfig": {"voiceConfig": {"prebuiltVoiceConfig": {"voiceName": "Kore"}}}
            },
            "systemInstruction": {"parts": [{"text": "You are a kitchen assistant. Be brief."}]},
            "inputAudioTranscription": {},
            "outputAudioTranscription": {}
        }})
    );
}

#[test]
fn realtime_input_golden_strings() {
    let cases = [
        (
            ClientMessage::audio(&[0, 0, 0xff, 0x7f], 16000),
            r#"{"realtimeInput":{"audio":{"mimeType":"audio/pcm;rate=16000","data":"AAD/fw=="}}}"#,
        ),
        (
            ClientMessage::video_jpeg(&[0xff, 0xd8, 0xff, 0xe0]),
            r#"{"realtimeInput":{"video":{"mimeType":"image/jpeg","data":"/9j/4A=="}}}"#,
        ),
        (
            ClientMessage::text("Are you there \"Gemini\"?"),
            r#"{"realtimeInput":{"text":"Are you there \"Gemini\"?"}}"#,
        ),
        (
            ClientMessage::audio_stream_end(),
            r#"{"realtimeInput":{"audioStreamEnd":true}}"#,
        ),
        (
            ClientMessage::activity_start(),
            r#"{"realtimeInput":{"activityStart":{}}}"#,
        ),
        (
            ClientMessage::activity_end(),
            r#"{"realtimeInput":{"activityEnd":{}}}"#,
        ),
    ];
    for (msg, want) in cases {
        assert_eq!(msg.to_json(), want);
    }
}

// ------------------------------------------------------------------------- synthetic frames

fn synthetic(name: &str) -> Vec<ServerEvent> {
    let path = fixtures().join(format!("synthetic_{name}.json"));
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    ServerMessage::parse(&bytes)
        .unwrap_or_else(|e| panic!("{name}: {e}"))
        .into_events()
}

fn synthetic_message(name: &str) -> ServerMessage {
    let path = fixtures().join(format!("synthetic_{name}.json"));
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    ServerMessage::parse(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn synthetic_frames() {
    use ServerEvent as E;
    assert_eq!(synthetic("interrupted"), [E::Interrupted]);
    // Audio of an interrupted frame comes before `Interrupted`, so the consumer drops it.
    assert_eq!(
        synthetic("interrupted_with_audio"),
        [
            E::Audio {
                rate_hz: 24000,
                pcm: vec![1, 0, 2, 0]
            },
            E::Interrupted
        ]
    );
    assert_eq!(
        synthetic("go_away"),
        [E::GoAway {
            time_left: Duration::from_secs(50)
        }]
    );
    assert_eq!(
        synthetic("session_resumption_update"),
        [E::ResumptionUpdate {
            handle: Some("h-abc".into()),
            resumable: true
        }]
    );
    let update = synthetic_message("session_resumption_update")
        .session_resumption_update
        .expect("present");
    assert_eq!(update.last_consumed_client_message_index, Some(42));
    assert_eq!(
        synthetic("session_resumption_not_resumable"),
        [E::ResumptionUpdate {
            handle: None,
            resumable: false
        }]
    );
    assert_eq!(
        synthetic("tool_call_cancellation"),
        [E::ToolCallCancellation(vec![
            "function-call-1".into(),
            "function-call-14999314136682553409".into()
        ])]
    );
    assert_eq!(
        synthetic("input_transcription_finished"),
        [
            E::InputTranscription("hi there".into()),
            E::OutputTranscription("Hello".into())
        ]
    );
    let content = synthetic_message("input_transcription_finished")
        .server_content
        .expect("present");
    assert!(content.input_transcription.expect("input").finished);
    assert!(!content.output_transcription.expect("output").finished);

    assert_eq!(
        synthetic("turn_complete_reason"),
        [
            E::Text("Tell me more.".into()),
            E::TurnCompleteReason("NEED_MORE_INPUT".into()),
            E::TurnComplete
        ]
    );
    let content = synthetic_message("turn_complete_reason")
        .server_content
        .expect("present");
    assert_eq!(
        content.turn_complete_reason.as_deref(),
        Some("NEED_MORE_INPUT")
    );
    assert!(content.waiting_for_input);

    assert_eq!(
        synthetic("grounding_metadata"),
        [
            E::Text("It is sunny.".into()),
            E::TurnComplete,
            E::Usage(UsageMetadata {
                prompt_token_count: Some(15),
                total_token_count: Some(40),
                ..UsageMetadata::default()
            })
        ]
    );
    let grounding = synthetic_message("grounding_metadata")
        .server_content
        .and_then(|c| c.grounding_metadata)
        .expect("grounding");
    assert_eq!(grounding["webSearchQueries"], json!(["q"]));

    assert_eq!(synthetic("unknown_keys"), [E::TurnComplete]);

    // 3.1: several parts plus a transcription in one frame, parts in order.
    assert_eq!(
        synthetic("multi_part_3_1"),
        [
            E::Audio {
                rate_hz: 24000,
                pcm: (0..16).collect()
            },
            E::Audio {
                rate_hz: 24000,
                pcm: [0xff, 0x7f, 0x00, 0x80].repeat(3)
            },
            E::OutputTranscription("For a soft".into())
        ]
    );
    assert_eq!(
        synthetic("vertex_usage"),
        [E::Usage(UsageMetadata {
            candidates_token_count: Some(50),
            candidates_tokens_details: vec![gemlive::live::proto::ModalityTokenCount {
                modality: Some("TEXT".into()),
                token_count: Some(10)
            }],
            ..UsageMetadata::default()
        })]
    );
    assert_eq!(
        synthetic("setup_complete_voice_consent"),
        [E::SetupComplete {
            session_id: Some("s-1".into())
        }]
    );
    assert_eq!(synthetic("vad_signals"), []);
    let vad = synthetic_message("vad_signals");
    assert_eq!(
        vad.voice_activity_detection_signal
            .and_then(|s| s.vad_signal_type)
            .as_deref(),
        Some("VAD_SIGNAL_TYPE_SOS")
    );
    assert_eq!(
        vad.voice_activity.and_then(|a| a.activity_type).as_deref(),
        Some("ACTIVITY_START")
    );
    // Thoughts, code and images are skipped; the plain text part stays.
    assert_eq!(
        synthetic("thought_and_code_parts"),
        [E::Text("Done.".into())]
    );

    // A binary frame as delivered through the recording proxy: pretty JSON + "\n\n".
    let path = fixtures().join("synthetic_binary_pretty.json");
    let bytes = std::fs::read(&path).expect("fixture");
    assert!(bytes.ends_with(b"}\n\n"));
    assert_eq!(
        synthetic("binary_pretty"),
        [E::SetupComplete { session_id: None }]
    );
}

// ------------------------------------------------------------------------- malformed input

#[test]
fn malformed_frames_are_errors_not_panics() {
    type Check = fn(&ProtoError) -> bool;
    let cases: Vec<(&[u8], Check)> = vec![
        (b"invalid json", |e| matches!(e, ProtoError::NotJson(_))),
        (b"[]", |e| matches!(e, ProtoError::NotObject(_))),
        (b"\"str\"", |e| matches!(e, ProtoError::NotObject(_))),
        (b"null", |e| matches!(e, ProtoError::NotObject(_))),
        (b"  \n", |e| matches!(e, ProtoError::NotJson(_))),
        (
            b"{\n  \"serverContent\": {\n    \"turnComplete\": tr",
            |e| matches!(e, ProtoError::NotJson(_)),
        ),
        (br#"{"serverContent": {"turnComplete": "yes"}}"#, |e| {
            matches!(e, ProtoError::Shape(_))
        }),
        (br#"{"serverContent": {"modelTurn": {"parts": {}}}}"#, |e| {
            matches!(e, ProtoError::Shape(_))
        }),
        (br#"{"toolCall": {"functionCalls": [{"name": 7}]}}"#, |e| {
            matches!(e, ProtoError::Shape(_))
        }),
        (br#"{"goAway": {"timeLeft": "-5s"}}"#, |e| {
            matches!(e, ProtoError::Shape(_))
        }),
        (b"{\"setupComplete\": {\"sessionId\": \"\xc3\x28\"}}", |e| {
            matches!(e, ProtoError::NotUtf8(_))
        }),
        (b"\x80\x81\x82", |e| matches!(e, ProtoError::NotUtf8(_))),
    ];
    for (bytes, check) in cases {
        match ServerMessage::parse(bytes) {
            Err(e) => assert!(check(&e), "{:?}: {e:?}", String::from_utf8_lossy(bytes)),
            Ok(m) => panic!("{:?} parsed as {m:?}", String::from_utf8_lossy(bytes)),
        }
    }
}

/// Every truncation of a real audio frame is an error, and byte-level corruption never panics.
#[test]
fn truncated_and_corrupted_recorded_frames_never_panic() {
    let bytes = std::fs::read(
        fixtures()
            .join("live_Vertex_should_send_tool_response_with_function_responses.websocket.log"),
    )
    .expect("fixture");
    let recs = parse_log(&bytes).expect("log");
    let frame = recs
        .iter()
        .rfind(|r| !r.from_client)
        .expect("server frame")
        .payload;
    assert!(ServerMessage::parse(frame).is_ok());
    // Every cut that loses the closing brace is an error.
    let last_brace = frame.iter().rposition(|&b| b == b'}').expect("brace");
    for cut in (0..last_brace).step_by(7) {
        assert!(ServerMessage::parse(&frame[..cut]).is_err(), "cut {cut}");
    }
    // Deterministic corruption (xorshift): parse may succeed or fail, never panic.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let alphabet = b"{}[]\":,.-+0123456789eEtrufalsn \n\\/=!\xff";
    let mut outcomes = [0usize; 2];
    for _ in 0..2000 {
        let mut m = frame.to_vec();
        for _ in 0..(next() % 4 + 1) {
            let pos = (next() % m.len() as u64) as usize;
            m[pos] = alphabet[(next() % alphabet.len() as u64) as usize];
        }
        match ServerMessage::parse(&m) {
            Ok(msg) => {
                outcomes[0] += 1;
                let _ = msg.into_events();
            }
            Err(_) => outcomes[1] += 1,
        }
    }
    assert_eq!(outcomes[0] + outcomes[1], 2000);
}
