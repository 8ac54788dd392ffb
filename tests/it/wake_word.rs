//! `wake = "word"` end to end: the real daemon, a file-PCM mic carrying espeak-ng speech. The
//! phrase opens a session and the question after it reaches the stand-in byte for byte;
//! speech without the phrase opens nothing.

use crate::support;

use std::time::Duration;

use gemlive::demo::Rig;
use gemlive::standin::{client_audio, setup_complete, FromClient, StandIn};
use support::{exe, find_bytes as find, quiet_room as room, speech, KEY};
use tokio::time::{timeout, Instant};

/// Runs the daemon on `mic` with `wake = "word"`; returns the mic audio the stand-in got
/// (None: no session opened) and the log.
async fn run(name: &str, mic: &[u8]) -> (Option<Vec<u8>>, String) {
    let si = StandIn::bind().await.unwrap();
    let mut rig = Rig::new(
        name,
        mic,
        &si.url(),
        "",
        "chunk_ms = 40\n[session]\nwake = \"word\"\nchimes = false",
    )
    .unwrap();
    rig.spawn(&exe(), KEY, &["-v"], None).unwrap();
    let secs = mic.len() as f64 / 32_000.0 + 1.0;
    let got = match timeout(Duration::from_secs_f64(secs), si.accept()).await {
        Err(_) => None,
        Ok(conn) => {
            let mut conn = conn.unwrap();
            let _setup = conn.recv().await;
            conn.send(&setup_complete()).await.unwrap();
            let mut got = Vec::new();
            let end = Instant::now() + Duration::from_secs_f64(secs);
            while Instant::now() < end {
                if let Ok(Some(FromClient::Json(v))) =
                    timeout(Duration::from_millis(50), conn.recv()).await
                {
                    if let Some(a) = client_audio(&v) {
                        got.extend(a);
                    }
                }
            }
            Some(got)
        }
    };
    rig.terminate();
    let status = rig.wait(Duration::from_secs(10)).unwrap();
    let logs = rig.logs();
    assert!(status.success(), "{status:?}\n{logs}");
    (got, logs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_phrase_opens_a_session_and_the_question_after_it_arrives() {
    let (Some(phrase), Some(question)) = (
        speech("Okay, Nabu.", "en-us", 140),
        speech("What time is it in Tokyo?", "en-gb", 160),
    ) else {
        return support::no_speech();
    };
    let mut mic = room(1.5, 1);
    mic.extend(&phrase);
    mic.extend(room(0.3, 2));
    let question_at = mic.len();
    mic.extend(&question);
    mic.extend(room(2.0, 3));
    let (got, logs) = run("wake-word", &mic).await;
    let got = got.unwrap_or_else(|| panic!("the phrase opens a session\n{logs}"));
    assert!(logs.contains("wake word \""), "{logs}");
    let at = find(&got, &question[..3_200])
        .unwrap_or_else(|| panic!("the question's first 100 ms arrive\n{logs}"));
    assert_eq!(
        &got[at..at + question.len()],
        &question[..],
        "the whole question arrives"
    );
    // What came before it: the end of the phrase and the pause, at most ~1 s.
    let before = at as f64 / 32_000.0;
    println!(
        "session opened; {before:.2} s before the question sent (its start at {:.2} s of the mic)",
        question_at as f64 / 32_000.0
    );
    assert!(before <= 1.5, "{before:.2} s sent before the question");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn speech_without_the_phrase_opens_nothing() {
    let Some(talk) = speech(
        "The weather in Paris is mild today, with a light breeze from the west and no rain.",
        "en-us",
        150,
    ) else {
        return support::no_speech();
    };
    let mut mic = room(1.0, 4);
    mic.extend(&talk);
    mic.extend(room(1.0, 5));
    let (got, logs) = run("wake-none", &mic).await;
    assert!(got.is_none(), "no session without the phrase\n{logs}");
    assert!(!logs.contains("wake word \""), "{logs}");
}
