//! The per-message hot path of a session, measured on this machine:
//! - encoding one 40 ms mic chunk (1,280 bytes of 16 kHz S16_LE) as `realtimeInput.audio` JSON,
//!   25 times a second while the session is open;
//! - parsing one 200 ms reply-audio frame (9,600 bytes of 24 kHz PCM, pretty-printed JSON in a
//!   binary frame, as the service sends it) into events;
//! - once per turn: parsing a `usageMetadata` frame and adding it to the sums;
//! - once per connection: building the `setup` with every `[live]` conversation key set, and
//!   (with `auth = "ephemeral"`) fetching a token from a `token_command`.
//!
//! Run: `cargo bench --bench live_codec`. Plain `std::time` timing (no harness): median of
//! 15 batches.

use std::hint::black_box;
use std::time::Instant;

use gemlive::live::proto::{
    write_audio_json, ClientMessage, EndSensitivity, ServerMessage, SetupParams, StartSensitivity,
};
use gemlive::live::setup::{build_setup, SessionSettings, Tuning};

fn median_ns_per_op(batches: usize, per_batch: usize, mut op: impl FnMut()) -> f64 {
    let mut v: Vec<f64> = (0..batches)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..per_batch {
                op();
            }
            t.elapsed().as_nanos() as f64 / per_batch as f64
        })
        .collect();
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let chunk: Vec<u8> = (0..1280u32).map(|i| (i * 7 + 3) as u8).collect();
    let mut buf = String::with_capacity(2048);
    let enc = median_ns_per_op(15, 20_000, || {
        buf.clear();
        write_audio_json(&mut buf, black_box(&chunk), 16_000);
        black_box(&buf);
    });
    let enc_alloc = median_ns_per_op(15, 20_000, || {
        black_box(ClientMessage::audio(black_box(&chunk), 16_000).to_json());
    });

    let reply: Vec<u8> = (0..9600u32).map(|i| (i * 13 + 1) as u8).collect();
    let frame = serde_json::to_vec_pretty(&gemlive::standin::server_audio(&reply)).unwrap();
    let dec = median_ns_per_op(15, 2_000, || {
        let m = ServerMessage::parse(black_box(&frame)).unwrap();
        black_box(m.into_events());
    });

    println!(
        "encode 40 ms mic chunk, reused buffer   : {:>8.0} ns/msg ({} bytes JSON)",
        enc,
        buf.len()
    );
    println!(
        "encode 40 ms mic chunk, ClientMessage   : {:>8.0} ns/msg",
        enc_alloc
    );
    println!(
        "parse 200 ms reply frame ({} B) + events: {:>8.0} ns/msg",
        frame.len(),
        dec
    );
    println!(
        "share of one core at 25 mic msgs/s + 5 reply msgs/s: {:.3} %",
        (enc * 25.0 + dec * 5.0) / 1e9 * 100.0
    );

    let usage = br#"{"serverContent": {"turnComplete": true}, "usageMetadata": {"promptTokenCount": 812, "responseTokenCount": 96, "totalTokenCount": 908, "promptTokensDetails": [{"modality": "AUDIO", "tokenCount": 700}, {"modality": "VIDEO", "tokenCount": 112}], "responseTokensDetails": [{"modality": "AUDIO", "tokenCount": 96}]}}"#;
    let mut sums = gemlive::live::usage::Usage::default();
    let per_turn = median_ns_per_op(15, 20_000, || {
        for ev in ServerMessage::parse(black_box(usage))
            .unwrap()
            .into_events()
        {
            if let gemlive::live::proto::ServerEvent::Usage(u) = ev {
                sums.add(&u);
            }
        }
    });
    black_box(&sums);
    println!("parse turnComplete + usageMetadata, add : {per_turn:>8.0} ns/turn");

    let settings = |tuning| SessionSettings {
        params: SetupParams {
            model: "models/gemini-3.1-flash-live-preview".into(),
            voice: "Kore".into(),
            system_instruction: Some("You are a kitchen assistant. Be brief.".into()),
            media_resolution: "MEDIA_RESOLUTION_LOW".into(),
            input_transcription: true,
            output_transcription: true,
        },
        resumption: true,
        compression: Some((25_600, 12_800)),
        tools: None,
        manual_activity: false,
        tuning,
    };
    let all = settings(Tuning {
        language_code: Some("de-DE".into()),
        start_sensitivity: Some(StartSensitivity::Low),
        end_sensitivity: Some(EndSensitivity::Low),
        prefix_padding_ms: Some(300),
        silence_ms: Some(1200),
        no_interruption: true,
        google_search: true,
        thinking_level: Some("LOW"),
        temperature: Some(0.7),
        proactive_audio: Some(true),
        affective_dialog: Some(true),
    });
    let none = settings(Tuning::default());
    let mut bytes = (0, 0);
    let setup_ns = median_ns_per_op(15, 5_000, || {
        let j = build_setup(black_box(&all), Some("handle-0123456789")).to_json();
        bytes.0 = j.len();
        black_box(j);
    });
    bytes.1 = build_setup(&none, Some("handle-0123456789"))
        .to_json()
        .len();
    println!(
        "build setup, every [live] key set       : {setup_ns:>8.0} ns/connection ({} bytes; {} with none set)",
        bytes.0, bytes.1
    );

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let source = gemlive::token::TokenSource::new(
        gemlive::token::Source::Command(vec!["/bin/echo".into(), "auth_tokens/bench".into()]),
        std::time::Duration::from_secs(600),
    );
    let mut ms: Vec<f64> = (0..21)
        .map(|_| {
            let t = Instant::now();
            rt.block_on(source.token(true)).unwrap();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    ms.sort_by(|a, b| a.total_cmp(b));
    let reuse = median_ns_per_op(15, 2_000, || {
        black_box(rt.block_on(source.token(false)).unwrap());
    });
    println!(
        "token_command /bin/echo, new session    : {:>8.2} ms/token (median of 21; reuse on resumption {:.0} ns)",
        ms[ms.len() / 2],
        reuse
    );
}
