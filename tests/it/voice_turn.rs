//! End to end: the real `gemlive run` binary against the Live stand-in on 127.0.0.1, with
//! alsa-lib `file` PCMs as microphone and speaker (private ALSA_CONFIG_PATH, no sound card).

use crate::support;

use std::time::Duration;

use gemlive::demo::Rig;
use gemlive::standin::{self, client_audio, server_audio, server_content, FromClient, StandIn};
use serde_json::{json, Value};
use support::{exe, pcm, until, KEY};
use tokio::time::timeout;

const CHUNK: usize = 9_600; // 200 ms at 24 kHz, a multiple of the 20 ms period

async fn next_json(conn: &mut standin::Conn) -> Value {
    match timeout(Duration::from_secs(10), conn.recv()).await {
        Ok(Some(FromClient::Json(v))) => v,
        other => panic!("expected a JSON client message, got {other:?}"),
    }
}

/// Checks one mic message's envelope and returns its audio.
fn mic_chunk(v: &Value) -> Vec<u8> {
    let obj = v.as_object().expect("object");
    assert_eq!(obj.len(), 1, "one top-level key: {v}");
    let ri = v["realtimeInput"].as_object().expect("realtimeInput");
    assert_eq!(ri.len(), 1, "one field per realtimeInput: {v}");
    assert_eq!(
        v["realtimeInput"]["audio"]["mimeType"],
        "audio/pcm;rate=16000"
    );
    client_audio(v).expect("base64 audio")
}

/// Keeps reading mic audio (so the daemon never blocks) until `cond` holds.
async fn pump_until(
    conn: &mut standin::Conn,
    mic: &mut Vec<u8>,
    secs: u64,
    mut cond: impl FnMut(&[u8]) -> bool,
) -> bool {
    let end = tokio::time::Instant::now() + Duration::from_secs(secs);
    while tokio::time::Instant::now() < end {
        if cond(mic) {
            return true;
        }
        if let Ok(Some(FromClient::Json(v))) = timeout(Duration::from_millis(20), conn.recv()).await
        {
            if v.get("realtimeInput").is_some() {
                mic.extend(mic_chunk(&v));
            }
        }
    }
    cond(mic)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_spoken_turn_end_to_end_with_barge_in() {
    let mic_file = pcm(1, 32_000); // 1 s at 16 kHz
    let si = StandIn::bind().await.unwrap();
    let mut rig = Rig::new(
        "turn",
        &mic_file,
        &si.url(),
        "voice = \"Puck\"\nsystem_instruction = \"You are a kitchen assistant.\"\nmedia_resolution = \"medium\"",
        "chunk_ms = 40",
    )
    .unwrap();
    rig.spawn(&exe(), KEY, &["-vv"], None).unwrap();
    let mut conn = timeout(Duration::from_secs(10), si.accept())
        .await
        .expect("daemon connects")
        .unwrap();
    assert_eq!(conn.api_key.as_deref(), Some(KEY), "key in x-goog-api-key");

    // setup comes first and carries the configured fields
    let v = next_json(&mut conn).await;
    assert_eq!(v.as_object().map(|o| o.len()), Some(1));
    let s = &v["setup"];
    assert_eq!(s["model"], "models/gemini-3.1-flash-live-preview");
    assert_eq!(
        s["generationConfig"]["responseModalities"],
        json!(["AUDIO"])
    );
    assert_eq!(
        s["generationConfig"]["speechConfig"]["voiceConfig"]["prebuiltVoiceConfig"]["voiceName"],
        "Puck"
    );
    assert_eq!(
        s["generationConfig"]["mediaResolution"],
        "MEDIA_RESOLUTION_MEDIUM"
    );
    assert_eq!(
        s["systemInstruction"]["parts"][0]["text"],
        "You are a kitchen assistant."
    );
    assert_eq!(s["inputAudioTranscription"], json!({}));
    assert_eq!(s["outputAudioTranscription"], json!({}));
    assert!(s["generationConfig"]
        .get("inputAudioTranscription")
        .is_none());

    // Answer late: audio captured during set-up must still arrive, first and in order.
    tokio::time::sleep(Duration::from_millis(300)).await;
    conn.send(&standin::setup_complete()).await.unwrap();
    let mut mic = Vec::new();
    assert!(
        pump_until(&mut conn, &mut mic, 10, |m| m.len() >= mic_file.len()).await,
        "1 s of mic audio arrives"
    );
    assert_eq!(
        &mic[..mic_file.len()],
        &mic_file[..],
        "mic bytes on the wire equal the mic file"
    );

    // Turn 1: a complete reply reaches the speaker byte for byte.
    let a = pcm(2, 3 * CHUNK);
    for c in a.chunks(CHUNK) {
        conn.send(&server_audio(c)).await.unwrap();
    }
    conn.send(&server_content("generationComplete"))
        .await
        .unwrap();
    conn.send(
        &json!({"serverContent": {"turnComplete": true}, "usageMetadata": {"totalTokenCount": 9}}),
    )
    .await
    .unwrap();
    let speaker_has = |n: usize| {
        let p = rig.speaker_path.clone();
        move |_: &[u8]| {
            std::fs::metadata(&p)
                .map(|m| m.len() as usize >= n)
                .unwrap_or(false)
        }
    };
    assert!(pump_until(&mut conn, &mut mic, 10, speaker_has(a.len())).await);
    assert_eq!(rig.speaker(), a, "reply 1 byte-exact in the speaker file");

    // Malformed frames are logged and skipped; the session goes on.
    conn.send_raw(b"invalid json", false).await.unwrap();
    conn.send_raw(&[0xff, 0xfe, 0x00], true).await.unwrap();
    conn.send_raw(b"[]", true).await.unwrap();
    conn.send_raw(br#"{"serverContent":{"modelTurn":{"parts":[{"inlineData":{"mimeType":"audio/pcm;rate=24000","data":"!!!notbase64"}}]}}}"#, true)
        .await
        .unwrap();

    // Turn 2 is interrupted after two chunks; late chunks of it must never play.
    let b = pcm(3, 4 * CHUNK);
    for c in b[..2 * CHUNK].chunks(CHUNK) {
        conn.send(&server_audio(c)).await.unwrap();
    }
    // alsa-lib's file PCM holds back one buffer (200 ms = one CHUNK) until it is drained or
    // dropped, so B2 is fully written to ALSA once B1 shows in the file.
    assert!(pump_until(&mut conn, &mut mic, 10, speaker_has(a.len() + CHUNK)).await);
    conn.send(&server_content("interrupted")).await.unwrap();
    for c in b[2 * CHUNK..].chunks(CHUNK) {
        conn.send(&server_audio(c)).await.unwrap();
    }
    conn.send(&server_content("turnComplete")).await.unwrap();

    // Turn 3 plays normally under the new generation.
    let c3 = pcm(4, 2 * CHUNK);
    for c in c3.chunks(CHUNK) {
        conn.send(&server_audio(c)).await.unwrap();
    }
    conn.send(&server_content("turnComplete")).await.unwrap();
    let expected = [&a[..], &b[..2 * CHUNK], &c3[..]].concat();
    assert!(pump_until(&mut conn, &mut mic, 10, speaker_has(expected.len())).await);
    pump_until(&mut conn, &mut mic, 1, |_| false).await; // anything extra would show now
    let speaker = rig.speaker();
    assert_eq!(
        speaker.len(),
        expected.len(),
        "no late chunk reached the speaker"
    );
    assert_eq!(speaker, expected);
    assert!(gemlive::demo::find(&speaker, &b[2 * CHUNK..3 * CHUNK]).is_none());

    // SIGTERM ends the session with close code 1000 and exit status 0.
    rig.terminate();
    let mut code = None;
    while let Ok(Some(m)) = timeout(Duration::from_secs(5), conn.recv()).await {
        if let FromClient::Closed { code: c, .. } = m {
            code = Some(c);
            break;
        }
    }
    assert_eq!(code, Some(1000));
    let status = rig.wait(Duration::from_secs(10)).unwrap();
    assert!(status.success(), "exit status {status:?}");

    let logs = rig.logs();
    assert!(logs.contains("skipping a malformed server frame"), "{logs}");
    assert!(logs.contains("interrupted by the user"), "{logs}");
    assert!(logs.contains("SIGTERM"), "{logs}");
    assert!(logs.contains("19200 late reply bytes discarded"), "{logs}");
    for l in logs.lines().filter(|l| l.contains(&KEY[10..])) {
        eprintln!("LEAK: {l}");
    }
    assert!(!logs.contains(KEY), "the API key must never be logged");
    assert!(!logs.contains(&KEY[10..]), "not even part of it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusing_server_close_is_logged_verbatim_with_a_hint() {
    let si = StandIn::bind().await.unwrap();
    let mut rig = Rig::new(
        "refused",
        &pcm(5, 32_000),
        &si.url(),
        "model = \"gemini-nope\"",
        "",
    )
    .unwrap();
    rig.spawn(&exe(), KEY, &[], None).unwrap();
    let mut conn = timeout(Duration::from_secs(10), si.accept())
        .await
        .unwrap()
        .unwrap();
    let v = next_json(&mut conn).await;
    assert_eq!(v["setup"]["model"], "models/gemini-nope");
    let reason = "models/gemini-nope is not found for API version v1beta, or is not supported for bidiGenerateContent";
    conn.close(1008, reason).await;
    assert!(
        until(Duration::from_secs(10), || rig
            .logs()
            .contains("retrying in"))
        .await,
        "{}",
        rig.logs()
    );
    let logs = rig.logs();
    assert!(logs.contains(reason), "close reason verbatim: {logs}");
    assert!(logs.contains("unknown model"), "hint: {logs}");
    assert!(
        logs.contains("retrying in 60.0 s"),
        "config errors back off long: {logs}"
    );
    // A stop request during the back-off ends the daemon at once.
    rig.terminate();
    let status = rig.wait(Duration::from_secs(5)).unwrap();
    assert!(status.success(), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_duplex_sends_silence_while_the_speaker_plays() {
    let mic_file = pcm(9, 32_000 * 8); // loud noise: every chunk would count as speech
    let si = StandIn::bind().await.unwrap();
    let mut rig = Rig::new(
        "halfduplex",
        &mic_file,
        &si.url(),
        "",
        "echo = \"half_duplex\"\necho_tail_ms = 300",
    )
    .unwrap();
    rig.spawn(&exe(), KEY, &[], None).unwrap();
    let mut conn = timeout(Duration::from_secs(10), si.accept())
        .await
        .unwrap()
        .unwrap();
    next_json(&mut conn).await;
    conn.send(&standin::setup_complete()).await.unwrap();
    let mut mic = Vec::new();
    assert!(pump_until(&mut conn, &mut mic, 10, |m| m.len() >= 16_000).await);
    assert!(
        mic.iter().any(|&b| b != 0),
        "the mic is live before the reply"
    );

    let before = mic.len();
    let reply = pcm(10, 2 * CHUNK);
    for c in reply.chunks(CHUNK) {
        conn.send(&server_audio(c)).await.unwrap();
    }
    conn.send(&server_content("turnComplete")).await.unwrap();
    // 1.5 s more of mic: first gated (speaker busy + 300 ms tail), then live again.
    assert!(pump_until(&mut conn, &mut mic, 10, |m| m.len() >= before + 48_000).await);
    let after: Vec<&[u8]> = mic[before..].chunks(1_280).collect();
    let silent = after.iter().filter(|c| c.iter().all(|&b| b == 0)).count();
    let first_silent = after.iter().position(|c| c.iter().all(|&b| b == 0));
    let live_again = first_silent
        .map(|i| after[i..].iter().any(|c| c.iter().any(|&b| b != 0)))
        .unwrap_or(false);
    println!("half duplex: {silent} of {} chunks gated", after.len());
    assert!(
        silent >= 8,
        "at least ~300 ms of silence sent while playing: {silent}"
    );
    assert!(live_again, "the mic comes back after the tail");
    // Gated audio is still sent (the stream keeps flowing), and everything else is the mic.
    // The gate works on the canceller's 10 ms frames (320 bytes), so compare those.
    for (i, c) in mic.chunks(320).enumerate() {
        if c.iter().any(|&b| b != 0) {
            let at = gemlive::demo::find(&mic_file, c);
            assert_eq!(
                c,
                &mic_file[i * 320..i * 320 + c.len()],
                "frame {i} (found at {at:?})\n{}",
                rig.logs()
            );
        }
    }
    rig.terminate();
    assert!(rig.wait(Duration::from_secs(10)).unwrap().success());
}
