//! A session that never loses a word: the real `gemlive run` against a scripted stand-in that
//! sends goAway, drops the TCP connection, closes with 1011 or 1007, or never completes setup.
//! Each scenario checks the mic bytes across all connections against the mic file and prints
//! the daemon's continuity counters (samples captured / sent / resent / dropped).
//!
//! The timers (max connection age, the silent-server rule, stall detection, backoff) are
//! unit-tested in milliseconds on the supervisor (`src/live/supervisor.rs`); a frozen network
//! end to end is `tests/it/blackhole.rs`.

use crate::support;

use std::time::Duration;

use gemlive::demo::Rig;
use gemlive::standin::{server_audio, server_content, setup_complete};
use serde_json::json;
use support::{continuity, cycle, exe, pcm, Cmd, Seen, Server, KEY};

const SEC: usize = 32_000; // bytes of 16 kHz S16_LE mono per second

async fn start(name: &str, mic: &[u8], live_extra: &str, tail: &str) -> (Server, Rig, Seen) {
    let server = Server::start().await;
    let mut rig = Rig::new(name, mic, &server.url, live_extra, tail).unwrap();
    rig.spawn(&exe(), KEY, &["-vv"], None).unwrap();
    (server, rig, Seen::default())
}

async fn stop(mut server: Server, mut rig: Rig, mut seen: Seen, name: &str) -> (Seen, String) {
    rig.terminate();
    let last = seen.connections().saturating_sub(1);
    server
        .pump(&mut seen, Duration::from_secs(5), |s| {
            s.closed(last).is_some()
        })
        .await;
    let status = rig.wait(Duration::from_secs(10)).unwrap();
    let logs = rig.logs();
    assert!(status.success(), "{name}: exit {status:?}\n{logs}");
    assert!(!logs.contains(KEY), "{name}: key in the log");
    println!("{name}: {}", continuity(&logs));
    (seen, logs)
}

fn handle(seen: &Seen, conn: usize) -> serde_json::Value {
    seen.setups[conn]["setup"]["sessionResumption"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_away_hands_over_with_the_handle_and_loses_nothing() {
    let mic = pcm(11, 6 * SEC);
    let (mut sv, rig, mut seen) = start("goaway", &mic, "", "").await;
    assert!(
        sv.pump(&mut seen, Duration::from_secs(10), |s| !s.setups.is_empty())
            .await
    );
    assert_eq!(
        handle(&seen, 0),
        json!({}),
        "resumption requested from the start"
    );
    assert!(seen.setups[0]["setup"]["contextWindowCompression"]["slidingWindow"].is_object());
    sv.send(0, setup_complete());
    sv.send(
        0,
        json!({"sessionResumptionUpdate": {"newHandle": "h-old", "resumable": true}}),
    );
    sv.send(
        0,
        json!({"sessionResumptionUpdate": {"newHandle": "h-1", "resumable": true}}),
    );
    sv.send(0, json!({"sessionResumptionUpdate": {"resumable": false}}));
    assert!(
        sv.pump(&mut seen, Duration::from_secs(10), |s| s.audio[0].len()
            >= SEC / 2)
            .await
    );

    // A reply is playing when the goAway comes; it must finish on the old connection.
    let r1 = pcm(12, 9_600);
    let r2 = pcm(13, 9_600);
    sv.send(0, server_audio(&r1));
    sv.send(0, json!({"goAway": {"timeLeft": "50s"}}));
    assert!(
        sv.pump(&mut seen, Duration::from_secs(10), |s| s.setups.len() >= 2)
            .await
    );
    assert_eq!(
        handle(&seen, 1),
        json!({"handle": "h-1"}),
        "newest resumable handle"
    );
    let mut a = seen.setups[0].clone();
    a["setup"]["sessionResumption"] = json!({"handle": "h-1"});
    assert_eq!(a, seen.setups[1], "identical setup except the handle");
    assert_eq!(
        seen.closed(0),
        None,
        "old connection stays open until the new one is ready"
    );
    sv.send(1, setup_complete());
    // The old connection finishes its reply, then the client closes it with 1000.
    tokio::time::sleep(Duration::from_millis(200)).await;
    sv.send(0, server_audio(&r2));
    sv.send(0, server_content("turnComplete"));
    assert!(
        sv.pump(&mut seen, Duration::from_secs(10), |s| s
            .closed(0)
            .is_some())
            .await
    );
    assert_eq!(seen.closed(0), Some(1000));
    assert!(
        sv.pump(&mut seen, Duration::from_secs(10), |s| s.audio[1].len()
            >= SEC)
            .await
    );
    let speaker = rig.speaker();
    let (seen, logs) = stop(sv, rig, seen, "goAway").await;

    let all = seen.all_audio();
    assert!(all.len() >= SEC + SEC / 2);
    let lens: Vec<usize> = seen.audio.iter().map(Vec::len).collect();
    assert!(
        all == cycle(&mic, all.len()),
        "none lost, none doubled: lens {lens:?}, first mismatch at {:?}",
        support::first_mismatch(&mic, &all)
    );
    assert!(seen.audio[0].len() >= SEC / 2 && seen.audio[1].len() >= SEC);
    assert_eq!(
        speaker,
        [r1, r2].concat(),
        "the reply played across the hand-over"
    );
    assert!(logs.contains("goAway"), "{logs}");
    assert!(logs.contains("1 goAways, 1 hand-overs"), "{logs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_1011_close_reconnects_resumes_and_loses_nothing() {
    let mic = pcm(21, 6 * SEC);
    let (mut sv, rig, mut seen) = start("c1011", &mic, "", "").await;
    sv.ready(
        &mut seen,
        &[json!({"sessionResumptionUpdate": {"newHandle": "h-7", "resumable": "true"}})],
    )
    .await;
    assert!(
        sv.pump(&mut seen, Duration::from_secs(10), |s| s.audio[0].len()
            >= SEC / 2)
            .await
    );
    sv.cmd(0, Cmd::Close(1011, "Internal error encountered.".into()));
    assert!(
        sv.pump(&mut seen, Duration::from_secs(10), |s| s.setups.len() >= 2)
            .await
    );
    assert_eq!(handle(&seen, 1), json!({"handle": "h-7"}));
    // The set-up takes a while: the audio captured meanwhile must still arrive, in order.
    tokio::time::sleep(Duration::from_millis(500)).await;
    sv.send(1, setup_complete());
    assert!(
        sv.pump(&mut seen, Duration::from_secs(10), |s| s.audio[1].len()
            >= SEC)
            .await
    );
    let (seen, logs) = stop(sv, rig, seen, "1011 close").await;
    let all = seen.all_audio();
    assert_eq!(all, cycle(&mic, all.len()), "none lost, none doubled");
    assert!(logs.contains("Internal error encountered."), "{logs}");
    assert!(
        logs.contains("1 reconnects, 1 resumptions") || logs.contains("(1 resumed, 1 reconnects"),
        "{logs}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abrupt_tcp_close_reconnects_and_resumes() {
    let mic = pcm(31, 6 * SEC);
    let (mut sv, rig, mut seen) = start("abrupt", &mic, "", "").await;
    sv.ready(
        &mut seen,
        &[json!({"sessionResumptionUpdate": {"newHandle": "h-9", "resumable": true}})],
    )
    .await;
    assert!(
        sv.pump(&mut seen, Duration::from_secs(10), |s| s.audio[0].len()
            >= SEC / 2)
            .await
    );
    sv.cmd(0, Cmd::Drop);
    assert!(
        sv.pump(&mut seen, Duration::from_secs(10), |s| s.setups.len() >= 2)
            .await
    );
    assert_eq!(handle(&seen, 1), json!({"handle": "h-9"}));
    sv.send(1, setup_complete());
    assert!(
        sv.pump(&mut seen, Duration::from_secs(10), |s| s.audio[1].len()
            >= SEC)
            .await
    );
    let (seen, logs) = stop(sv, rig, seen, "abrupt close").await;
    // Connection 0 got an exact prefix. Chunks the client wrote into the socket after the
    // server had stopped reading are gone with that socket (TCP cannot tell the client which);
    // everything the client still held is sent on the new connection, in order, once.
    let first = &seen.audio[0];
    assert_eq!(first, &cycle(&mic, first.len()));
    let second = &seen.audio[1];
    let chunk = 1_280; // 40 ms
    let gap = (0..=10)
        .map(|k| first.len() + k * chunk)
        .find(|&off| cycle(&mic, off + second.len())[off..] == second[..])
        .map(|off| off - first.len());
    println!(
        "abrupt close: {} bytes in flight lost",
        gap.map_or(-1, |g| g as i64)
    );
    assert!(
        gap.is_some(),
        "connection 1 continues the mic stream in order (gap ≤ 400 ms)"
    );
    assert!(
        logs.contains("without a close frame") || logs.contains("Connection reset"),
        "{logs}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_1007_invalid_argument_backs_off_long() {
    let mic = pcm(41, 6 * SEC);
    // Configurable delay: 1 s first, doubling (1, 2, 4 …): attempts at t = 0, 1, 3, 7 s.
    let (mut sv, rig, mut seen) = start("c1007", &mic, "config_error_delay_s = 1", "").await;
    let reason = "Request contains an invalid argument.";
    let t0 = tokio::time::Instant::now();
    let mut refused = 0;
    while t0.elapsed() < Duration::from_millis(4_500) {
        if sv
            .pump(&mut seen, Duration::from_millis(100), |s| {
                s.setups.len() > refused
            })
            .await
        {
            sv.cmd(refused, Cmd::Close(1007, reason.into()));
            refused += 1;
        }
    }
    let attempts = seen.setups.len();
    let (_, logs) = stop(sv, rig, seen, "1007 close").await;
    println!("1007: {attempts} attempts in 4.5 s");
    assert_eq!(
        attempts, 3,
        "attempts at 0, 1 and 3 s; a transient schedule would have made 4–5"
    );
    assert!(logs.contains(reason), "reason verbatim: {logs}");
    assert!(logs.contains("configuration problem"), "{logs}");
    assert!(
        logs.contains("retrying in 2.0 s") && logs.contains("retrying in 4.0 s"),
        "{logs}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_setup_complete_is_retried_and_the_audio_from_before_arrives() {
    let mic = pcm(51, 6 * SEC);
    let (mut sv, rig, mut seen) = start("nosetup", &mic, "setup_timeout_ms = 1000", "").await;
    assert!(
        sv.pump(&mut seen, Duration::from_secs(10), |s| s.setups.len() >= 2)
            .await
    );
    assert!(seen.audio[0].is_empty(), "no audio before setupComplete");
    sv.send(1, setup_complete());
    assert!(
        sv.pump(&mut seen, Duration::from_secs(10), |s| s.audio[1].len()
            >= SEC + SEC / 2)
            .await
    );
    let (seen, logs) = stop(sv, rig, seen, "setup timeout").await;
    let all = seen.all_audio();
    assert_eq!(
        all,
        cycle(&mic, all.len()),
        "everything from the first sample on, in order"
    );
    assert!(logs.contains("no setupComplete within"), "{logs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_huge_and_unknown_frames_are_skipped() {
    let mic = pcm(61, 6 * SEC);
    let (mut sv, rig, mut seen) = start("garbage", &mic, "max_message_kb = 64", "").await;
    sv.ready(&mut seen, &[]).await;
    sv.cmd(0, Cmd::Raw(b"\x00\x01garbage".to_vec(), true));
    let huge = json!({"serverContent": {"outputTranscription": {"text": "x".repeat(100_000)}}});
    sv.send(0, huge);
    sv.send(0, json!({"someFutureMessage": {"field": 1}}));
    let r = pcm(62, 9_600);
    sv.send(0, server_audio(&r));
    sv.send(0, server_content("turnComplete"));
    let p = rig.speaker_path.clone();
    let has = move |_: &Seen| {
        std::fs::metadata(&p)
            .map(|m| m.len() >= 9_600)
            .unwrap_or(false)
    };
    assert!(sv.pump(&mut seen, Duration::from_secs(10), has).await);
    let speaker = rig.speaker();
    let (seen, logs) = stop(sv, rig, seen, "garbage frames").await;
    assert_eq!(speaker, r, "the session went on");
    assert_eq!(seen.connections(), 1, "no reconnect");
    assert!(logs.contains("over the 64 KiB limit"), "{logs}");
    assert!(logs.contains("skipping a malformed server frame"), "{logs}");
    assert!(logs.contains("unknown type"), "{logs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tool_calls_are_answered_and_set_volume_scales_the_speaker() {
    let mic = pcm(71, 6 * SEC);
    let (mut sv, rig, mut seen) = start("tools", &mic, "", "").await;
    assert!(
        sv.pump(&mut seen, Duration::from_secs(10), |s| !s.setups.is_empty())
            .await
    );
    let decl = &seen.setups[0]["setup"]["tools"][0]["functionDeclarations"];
    assert_eq!(decl[0]["name"], "end_session");
    assert_eq!(decl[1]["name"], "set_volume");
    sv.send(0, setup_complete());
    sv.send(
        0,
        json!({"toolCall": {"functionCalls": [
            {"id": "function-call-14999314136682553409", "name": "set_volume", "args": {"percent": 50}},
            {"id": "fc-2", "name": "open_the_pod_bay_doors", "args": {}}
        ]}}),
    );
    assert!(
        sv.pump(&mut seen, Duration::from_secs(10), |s| s
            .others
            .iter()
            .any(|(_, v)| v.get("toolResponse").is_some()))
            .await
    );
    let resp = seen
        .others
        .iter()
        .find_map(|(_, v)| v.get("toolResponse"))
        .unwrap()
        .clone();
    let fr = resp["functionResponses"].as_array().unwrap();
    assert_eq!(fr[0]["id"], "function-call-14999314136682553409");
    assert_eq!(fr[0]["response"]["result"], "ok");
    assert_eq!(fr[1]["id"], "fc-2");
    assert!(fr[1]["response"]["error"]
        .as_str()
        .unwrap()
        .contains("unknown tool"));

    let samples: Vec<i16> = (0..4_800).map(|i| ((i % 200) as i16 - 100) * 300).collect();
    let bytes: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
    sv.send(0, server_audio(&bytes));
    sv.send(0, server_content("turnComplete"));
    let p = rig.speaker_path.clone();
    let has = move |_: &Seen| {
        std::fs::metadata(&p)
            .map(|m| m.len() >= 9_600)
            .unwrap_or(false)
    };
    assert!(sv.pump(&mut seen, Duration::from_secs(10), has).await);
    let speaker = rig.speaker();
    let (_, logs) = stop(sv, rig, seen, "tool calls").await;
    let played: Vec<i16> = speaker
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    let expected: Vec<i16> = samples
        .iter()
        .map(|s| (i32::from(*s) * 50 / 100) as i16)
        .collect();
    assert_eq!(played, expected, "half amplitude at 50 %");
    assert!(logs.contains("speaker volume set to 50 %"), "{logs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_session_tool_starts_a_fresh_session() {
    let mic = pcm(81, 6 * SEC);
    let (mut sv, rig, mut seen) = start("endsession", &mic, "", "").await;
    sv.ready(
        &mut seen,
        &[json!({"sessionResumptionUpdate": {"newHandle": "h-e", "resumable": true}})],
    )
    .await;
    sv.send(
        0,
        json!({"toolCall": {"functionCalls": [{"id": "fc-9", "name": "end_session", "args": {}}]}}),
    );
    assert!(
        sv.pump(&mut seen, Duration::from_secs(10), |s| s
            .closed(0)
            .is_some())
            .await
    );
    assert_eq!(seen.closed(0), Some(1000));
    assert!(
        sv.pump(&mut seen, Duration::from_secs(10), |s| s.setups.len() >= 2)
            .await
    );
    assert_eq!(
        handle(&seen, 1),
        json!({}),
        "a new conversation, not a resumption"
    );
    sv.send(1, setup_complete());
    assert!(
        sv.pump(&mut seen, Duration::from_secs(10), |s| !s.audio[1]
            .is_empty())
            .await
    );
    let (seen, _) = stop(sv, rig, seen, "end_session").await;
    let resp = seen
        .others
        .iter()
        .find_map(|(_, v)| v.get("toolResponse"))
        .unwrap();
    assert_eq!(resp["functionResponses"][0]["id"], "fc-9");
    let all = seen.all_audio();
    let lens: Vec<usize> = seen.audio.iter().map(Vec::len).collect();
    assert!(
        all == cycle(&mic, all.len()),
        "no audio lost across the new session: lens {lens:?}, first mismatch at {:?}",
        support::first_mismatch(&mic, &all)
    );
}

/// A restart (an upgrade, a crash, a reboot) continues the conversation: the newest handle is
/// kept in the state directory (0600) and the next start resumes with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_resumes_with_the_kept_handle() {
    use std::os::unix::fs::PermissionsExt;
    let mic = pcm(61, 8 * SEC);
    let mut sv = Server::start().await;
    let mut rig = Rig::new("restart", &mic, &sv.url, "", "").unwrap();
    let state = rig.dir.join("state");
    std::fs::create_dir_all(&state).unwrap();
    let env = [("STATE_DIRECTORY", state.to_str().unwrap())];
    rig.spawn_with_env(&exe(), KEY, &["-v"], None, &env)
        .unwrap();
    let mut seen = Seen::default();
    sv.ready(
        &mut seen,
        &[json!({"sessionResumptionUpdate": {"newHandle": "h-before-restart", "resumable": true}})],
    )
    .await;
    let kept = state.join("resumption.json");
    assert!(
        support::until(Duration::from_secs(5), || std::fs::read_to_string(&kept)
            .is_ok_and(|t| t.contains("h-before-restart")))
        .await,
        "the handle is kept"
    );
    let mode = std::fs::metadata(&kept).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    rig.terminate();
    assert!(rig.wait(Duration::from_secs(10)).unwrap().success());

    rig.spawn_with_env(&exe(), KEY, &["-v"], None, &env)
        .unwrap();
    assert!(
        sv.pump(&mut seen, Duration::from_secs(10), |s| s.setups.len() >= 2)
            .await
    );
    assert_eq!(
        handle(&seen, 1),
        json!({"handle": "h-before-restart"}),
        "the new process resumes the conversation"
    );
    sv.send(1, setup_complete());
    let (_, logs) = stop(sv, rig, seen, "restart").await;
    assert!(
        logs.contains("continuing the conversation from before the restart"),
        "{logs}"
    );
    assert!(
        !logs.contains("h-before-restart"),
        "handles stay out of the log"
    );
}
