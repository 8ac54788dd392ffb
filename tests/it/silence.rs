//! `[audio] pause_on_silence_s`: the real daemon, a file-PCM mic carrying espeak-ng speech,
//! 20 s of a quiet room, then more speech. The stand-in sees `audioStreamEnd`, nothing for
//! the quiet stretch, then the second sentence with its beginning.

use crate::support;

use std::time::Duration;

use gemlive::demo::Rig;
use gemlive::standin::{client_audio, FromClient, StandIn};
use support::{exe, find_bytes as find, quiet_room as room, speech, KEY};
use tokio::time::{timeout, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_room_is_not_streamed_and_the_next_sentence_arrives_whole() {
    let (Some(first), Some(second)) = (
        speech("What is the weather like in Paris today?", "en-us", 150),
        speech("And tomorrow, will it rain in Berlin?", "en-gb", 170),
    ) else {
        return support::no_speech();
    };
    let mut mic = room(0.5, 1);
    mic.extend(&first);
    let quiet_from = mic.len();
    mic.extend(room(20.0, 2));
    let second_at = mic.len();
    mic.extend(&second);
    mic.extend(room(3.0, 3));

    let si = StandIn::bind().await.unwrap();
    let mut rig = Rig::new(
        "silence",
        &mic,
        &si.url(),
        "",
        "chunk_ms = 40\npause_on_silence_s = 4",
    )
    .unwrap();
    rig.spawn(&exe(), KEY, &["-v"], None).unwrap();
    let mut conn = timeout(Duration::from_secs(10), si.accept())
        .await
        .expect("daemon connects")
        .unwrap();
    let _setup = conn.recv().await;
    conn.send(&gemlive::standin::setup_complete())
        .await
        .unwrap();

    // (bytes of mic audio received before it, when) for the stream end; all audio in order.
    let mut got = Vec::new();
    let mut ends = Vec::new();
    let mut arrivals = Vec::new();
    let start = Instant::now();
    let total = Duration::from_secs_f64(mic.len() as f64 / 32_000.0 + 1.0);
    while start.elapsed() < total {
        if let Ok(Some(FromClient::Json(v))) = timeout(Duration::from_millis(50), conn.recv()).await
        {
            if let Some(a) = client_audio(&v) {
                arrivals.push((start.elapsed(), a.len()));
                got.extend(a);
            } else if v["realtimeInput"]["audioStreamEnd"] == true {
                ends.push((got.len(), start.elapsed()));
            }
        }
    }
    rig.terminate();
    let status = rig.wait(Duration::from_secs(10)).unwrap();
    let logs = rig.logs();
    assert!(status.success(), "{status:?}\n{logs}");

    assert_eq!(ends.len(), 1, "one pause: {ends:?}\n{logs}");
    // The pause came 4 s into the quiet (give the detector's hangover a second).
    let paused_at = ends[0].0;
    let quiet_s = (paused_at as f64 - quiet_from as f64) / 32_000.0;
    assert!(
        (3.9..=6.0).contains(&quiet_s),
        "paused {quiet_s:.2} s into the quiet\n{logs}"
    );
    // Everything before the pause arrived exactly as captured.
    assert_eq!(
        &got[..paused_at],
        &mic[..paused_at],
        "the stream before the pause"
    );
    // The second sentence arrives whole, with what preceded it by at most half a second.
    let at = find(&got, &second[..3_200]).expect("the second sentence's first 100 ms arrive");
    assert_eq!(
        &got[at..at + second.len()],
        &second[..],
        "the second sentence arrives whole"
    );
    let lead = (at - paused_at) as f64 / 32_000.0;
    assert!(
        lead <= 0.55,
        "{lead:.2} s of the quiet room sent before the sentence"
    );
    // Nothing arrived in between: the quiet room after the pause was not sent.
    let skipped = (second_at - paused_at) as f64 / 32_000.0 - lead;
    assert!(skipped > 14.0, "{skipped:.1} s not sent");
    println!(
        "paused {quiet_s:.2} s into the quiet; {skipped:.1} s not sent; resumed with {lead:.2} s of pre-roll"
    );
    assert!(
        logs.contains("the mic stream paused 1 times in silence"),
        "{logs}"
    );
}
