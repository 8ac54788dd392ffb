//! Kitchen timers end to end: set by a tool call, they ring on the speaker when they end —
//! with the network gone and no session open — and they survive a restart of the daemon.

use std::time::{Duration, Instant};

use gemlive::demo::{find, Rig};
use gemlive::lifecycle::{chime_pcm, Chime};
use serde_json::{json, Value};

use crate::support::{exe, pcm, tool_call, tool_response as answered, Seen, Server, KEY};

const SEC: usize = 32_000;

fn set_timer(id: &str, secs: u64, label: &str) -> Value {
    tool_call(id, "set_timer", json!({"duration_s": secs, "label": label}))
}

/// When the timer chime first shows in the speaker file (polled every 20 ms), up to `within`.
async fn chime_heard(rig: &Rig, within: Duration) -> Option<Instant> {
    let chime = chime_pcm(Chime::Timer);
    let end = Instant::now() + within;
    while Instant::now() < end {
        if find(&rig.speaker(), &chime).is_some() {
            return Some(Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timer_rings_offline_and_survives_a_restart() {
    let mut sv = Server::start().await;
    let mut rig = Rig::new("timers", &pcm(3, 60 * SEC), &sv.url, "", "").unwrap();
    let state = rig.dir.join("state");
    std::fs::create_dir_all(&state).unwrap();
    let st = state.to_str().unwrap().to_string();
    rig.spawn_with_env(&exe(), KEY, &[], None, &[("STATE_DIRECTORY", &st)])
        .unwrap();
    let mut seen = Seen::default();
    sv.ready(&mut seen, &[]).await;
    let decl = seen.setups[0]["setup"]["tools"][0]["functionDeclarations"].to_string();
    for name in ["set_timer", "cancel_timer", "list_timers"] {
        assert!(decl.contains(name), "{name} declared: {decl}");
    }

    // A 3 s timer, then the network goes away: no server, no session.
    sv.send(0, set_timer("t1", 3, "tea"));
    let set_at = Instant::now();
    assert!(
        sv.pump(&mut seen, Duration::from_secs(5), |s| answered(s, "t1")
            .is_some())
            .await
    );
    assert_eq!(answered(&seen, "t1").unwrap()["response"]["label"], "tea");
    drop(sv);
    let rang = chime_heard(&rig, Duration::from_secs(6))
        .await
        .expect("the timer chime reached the speaker");
    let after = rang.duration_since(set_at).as_secs_f64();
    println!("timer: set for 3 s, chime after {after:.2} s with the network gone");
    assert!((2.5..=3.5).contains(&after), "chime after {after:.2} s");
    // It rings again (every 2 s) until the button or a minute.
    let chime = chime_pcm(Chime::Timer);
    let more = crate::support::until(Duration::from_secs(3), || {
        let s = rig.speaker();
        find(&s, &chime).is_some_and(|at| find(&s[at + chime.len()..], &chime).is_some())
    })
    .await;
    assert!(more, "the chime repeats");

    // Kept across a restart: a new timer, the daemon stopped and started again, still rings.
    let mut sv = Server::start().await;
    rig.terminate();
    assert!(rig.wait(Duration::from_secs(10)).unwrap().success());
    let mut rig2 = Rig::new("timers-2", &pcm(4, 60 * SEC), &sv.url, "", "").unwrap();
    rig2.spawn_with_env(&exe(), KEY, &[], None, &[("STATE_DIRECTORY", &st)])
        .unwrap();
    let mut seen = Seen::default();
    sv.ready(&mut seen, &[]).await;
    sv.send(0, set_timer("t2", 4, "pasta"));
    let set_at = Instant::now();
    assert!(
        sv.pump(&mut seen, Duration::from_secs(5), |s| answered(s, "t2")
            .is_some())
            .await
    );
    rig2.terminate();
    assert!(rig2.wait(Duration::from_secs(10)).unwrap().success());
    let kept = std::fs::read_to_string(state.join("timers.json")).unwrap();
    assert!(kept.contains("pasta"), "{kept}");
    let mut rig3 = Rig::new("timers-3", &pcm(5, 60 * SEC), &sv.url, "", "").unwrap();
    rig3.spawn_with_env(&exe(), KEY, &[], None, &[("STATE_DIRECTORY", &st)])
        .unwrap();
    // Its session opens before the timer ends, so the model is told when it does.
    assert!(
        sv.pump(&mut seen, Duration::from_secs(3), |s| s.setups.len() >= 2)
            .await
    );
    sv.send(1, gemlive::standin::setup_complete());
    let rang = chime_heard(&rig3, Duration::from_secs(8))
        .await
        .expect("the kept timer rang after the restart");
    let after = rang.duration_since(set_at).as_secs_f64();
    println!("timer: set for 4 s, daemon restarted, chime after {after:.2} s");
    assert!((3.5..=4.5).contains(&after), "chime after {after:.2} s");
    let told = sv
        .pump(&mut seen, Duration::from_secs(3), |s| {
            s.others.iter().any(|(_, v)| {
                v["realtimeInput"]["text"]
                    .as_str()
                    .is_some_and(|t| t.contains("\"pasta\" has just ended"))
            })
        })
        .await;
    rig3.terminate();
    assert!(rig3.wait(Duration::from_secs(10)).unwrap().success());
    let logs = format!("{}{}{}", rig.logs(), rig2.logs(), rig3.logs());
    assert!(logs.contains("timer tea (3 s) ended: ringing"), "{logs}");
    assert!(
        logs.contains("1 timer(s) kept from before the restart"),
        "{logs}"
    );
    assert!(told, "the model was told: {logs}");
}
