//! `[live]` as the server sees it (issue 18): the conversation keys reach the `setup` exactly
//! as set and not at all when unset; any voice name is taken (with a warning); `usageMetadata`
//! is summed per session and in the counters; an unusual `turnCompleteReason` is logged; and
//! with `auth = "ephemeral"` connections carry a token from `token_command` (a new one per new
//! session, the same one on a resumption), never the API key, and a failing token source is
//! retried with backoff and explained.

use crate::support;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use gemlive::demo::Rig;
use gemlive::standin::{setup_complete, FromClient, StandIn};
use serde_json::{json, Value};
use support::{ctl, exe, pcm, Seen, Server, KEY};
use tokio::time::timeout;

const EVERY_KEY: &str = r#"voice = "Tavi"
language_code = "de-DE"
vad_start_sensitivity = "low"
vad_end_sensitivity = "high"
vad_prefix_padding_ms = 100
vad_silence_ms = 900
barge_in = false
google_search = true
thinking_level = "low"
temperature = 0.4
proactive_audio = true
affective_dialog = true
"#;

/// The first `setup` the daemon sends with `live_extra` in `[live]` (and no tools of its own),
/// and its log.
async fn first_setup(name: &str, live_extra: &str) -> (Value, String) {
    let si = StandIn::bind().await.unwrap();
    let mut rig = Rig::new(
        name,
        &pcm(3, 32_000 * 10),
        &si.url(),
        live_extra,
        "[tools]\nbuiltin = false\n",
    )
    .unwrap();
    rig.spawn(&exe(), KEY, &["-v"], None).unwrap();
    let mut conn = timeout(Duration::from_secs(10), si.accept())
        .await
        .unwrap_or_else(|_| panic!("{name}: no connection\n{}", rig.logs()))
        .unwrap();
    let setup = match timeout(Duration::from_secs(5), conn.recv()).await {
        Ok(Some(FromClient::Json(v))) => v,
        other => panic!("{name}: no setup: {other:?}\n{}", rig.logs()),
    };
    rig.terminate();
    let _ = rig.wait(Duration::from_secs(10));
    (setup, rig.logs())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_live_key_reaches_the_setup_exactly_and_none_is_sent_unset() {
    let (setup, logs) = first_setup("settings-all", EVERY_KEY).await;
    let golden = json!({"setup": {
        "model": "models/gemini-3.1-flash-live-preview",
        "generationConfig": {
            "responseModalities": ["AUDIO"],
            "mediaResolution": "MEDIA_RESOLUTION_LOW",
            "speechConfig": {
                "voiceConfig": {"prebuiltVoiceConfig": {"voiceName": "Tavi"}},
                "languageCode": "de-DE"
            },
            "temperature": 0.4,
            "thinkingConfig": {"thinkingLevel": "LOW"},
            "enableAffectiveDialog": true
        },
        "tools": [{"googleSearch": {}}],
        "realtimeInputConfig": {
            "automaticActivityDetection": {
                "startOfSpeechSensitivity": "START_SENSITIVITY_LOW",
                "endOfSpeechSensitivity": "END_SENSITIVITY_HIGH",
                "prefixPaddingMs": 100,
                "silenceDurationMs": 900
            },
            "activityHandling": "NO_INTERRUPTION"
        },
        "sessionResumption": {},
        "contextWindowCompression": {"triggerTokens": 25600, "slidingWindow": {"targetTokens": 12800}},
        "inputAudioTranscription": {},
        "outputAudioTranscription": {},
        "proactivity": {"proactiveAudio": true}
    }});
    assert_eq!(
        setup,
        golden,
        "got {}",
        serde_json::to_string_pretty(&setup).unwrap()
    );
    assert!(
        logs.contains("voice \"Tavi\" in [live] is not one of the 30 voices gemlive knows"),
        "the unknown voice is warned about in the log\n{logs}"
    );

    let (setup, logs) = first_setup("settings-none", "").await;
    let text = setup.to_string();
    for wire in [
        "languageCode",
        "realtimeInputConfig",
        "automaticActivityDetection",
        "activityHandling",
        "googleSearch",
        "tools",
        "thinkingConfig",
        "temperature",
        "enableAffectiveDialog",
        "proactivity",
    ] {
        assert!(!text.contains(wire), "{wire} sent unset: {text}");
    }
    assert_eq!(
        setup["setup"]["generationConfig"]["speechConfig"],
        json!({"voiceConfig": {"prebuiltVoiceConfig": {"voiceName": "Kore"}}})
    );
    assert!(!logs.contains("warn"), "{logs}");
}

#[test]
fn check_config_takes_an_unknown_voice_with_a_warning() {
    let dir = std::env::temp_dir().join(format!("gemlive-tavi-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("gemlive.toml");
    std::fs::write(&cfg, format!("[live]\n{EVERY_KEY}")).unwrap();
    let out = std::process::Command::new(exe())
        .arg("--config")
        .arg(&cfg)
        .arg("check-config")
        .env("GEMINI_API_KEY", KEY)
        .env_remove("GEMLIVE_CONFIG")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("voice: Tavi"), "{stdout}");
    assert!(
        stdout.contains("warning: voice \"Tavi\" in [live] is not one of the 30 voices"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "conversation: language de-DE, voice detection start low end high prefix 100 ms \
             silence 900 ms, no barge-in on the server, Google Search, thinking low, \
             temperature 0.4, proactive audio on, affective dialog on"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("one hour streaming sends: 3600 s of mic audio"),
        "{stdout}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn usage(prompt_audio: u64, prompt_video: u64, response_audio: u64) -> Value {
    json!({"serverContent": {"turnComplete": true},
           "usageMetadata": {
               "promptTokenCount": prompt_audio + prompt_video,
               "responseTokenCount": response_audio,
               "totalTokenCount": prompt_audio + prompt_video + response_audio,
               "promptTokensDetails": [{"modality": "AUDIO", "tokenCount": prompt_audio},
                                       {"modality": "VIDEO", "tokenCount": prompt_video}],
               "responseTokensDetails": [{"modality": "AUDIO", "tokenCount": response_audio}]}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_is_summed_per_session_and_in_the_counters_and_a_rejected_turn_is_explained() {
    let si = StandIn::bind().await.unwrap();
    let mut rig = Rig::new(
        "usage",
        &pcm(5, 32_000 * 30),
        &si.url(),
        "",
        "[session]\nwake = \"button\"\nchimes = false\n[service]\ncontrol_socket = \"ctl.sock\"\n\
         [metrics]\ntextfile = \"metrics.prom\"\n[tools]\nbuiltin = false\n",
    )
    .unwrap();
    rig.spawn(&exe(), KEY, &["-v"], None).unwrap();
    let socket = rig.dir.join("ctl.sock");
    assert!(
        support::until(Duration::from_secs(10), || socket.exists()).await,
        "{}",
        rig.logs()
    );
    let (code, v, _) = ctl(&rig, &["wake"]);
    assert_eq!(code, 0, "{v}");
    let mut conn = timeout(Duration::from_secs(5), si.accept())
        .await
        .expect("ctl wake connects")
        .unwrap();
    let _setup = conn.recv().await;
    conn.send(&setup_complete()).await.unwrap();
    conn.send(&usage(200, 50, 40)).await.unwrap();
    conn.send(&json!({"serverContent": {"turnComplete": true, "turnCompleteReason": "RESPONSE_REJECTED"}}))
        .await
        .unwrap();
    conn.send(&usage(300, 50, 10)).await.unwrap();
    let mut other = Vec::new();
    support::mic_for(&mut conn, Duration::from_millis(500), &mut other).await;
    let (code, v, _) = ctl(&rig, &["end"]);
    assert_eq!(code, 0, "{v}");
    let line =
        "it used 650 tokens (prompt 600: audio 500, video 100; response 50: audio 50) in 2 reports";
    assert!(
        support::until(Duration::from_secs(5), || rig.logs().contains(line)).await,
        "the end-of-session line has the sums\n{}",
        rig.logs()
    );
    rig.terminate();
    let status = rig.wait(Duration::from_secs(10)).unwrap();
    let logs = rig.logs();
    assert!(status.success(), "{logs}");
    assert!(logs.contains("connection 1 used 650 tokens"), "{logs}");
    assert!(
        logs.contains("the turn ended with RESPONSE_REJECTED: the server rejected the reply"),
        "{logs}"
    );
    let prom = std::fs::read_to_string(rig.dir.join("metrics.prom")).unwrap();
    for sample in [
        "gemlive_tokens_total{kind=\"prompt\"} 600\n",
        "gemlive_tokens_total{kind=\"response\"} 50\n",
        "gemlive_tokens_total{kind=\"total\"} 650\n",
        "gemlive_modality_tokens_total{direction=\"prompt\",modality=\"audio\"} 500\n",
        "gemlive_modality_tokens_total{direction=\"prompt\",modality=\"video\"} 100\n",
        "gemlive_modality_tokens_total{direction=\"response\",modality=\"audio\"} 50\n",
    ] {
        assert!(prom.contains(sample), "{sample} in\n{prom}");
    }
}

/// A token command that fails (exit 3, a reason on stderr) while `fail` exists in its
/// directory, and otherwise prints `auth_tokens/test-N`, N counting its successes.
fn token_script(dir: &std::path::Path) -> std::path::PathBuf {
    let p = dir.join("token.sh");
    std::fs::write(
        &p,
        format!(
            "#!/bin/sh\nd={}\necho x >> \"$d/calls\"\nif [ -e \"$d/fail\" ]; then echo 'backend down' >&2; exit 3; fi\n\
             n=$(cat \"$d/count\" 2>/dev/null || echo 0); n=$((n+1)); echo $n > \"$d/count\"\n\
             echo \"auth_tokens/test-$n\"\n",
            dir.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ephemeral_tokens_a_new_one_per_session_the_same_on_resumption_never_the_key() {
    let mut sv = Server::start().await;
    // The stand-in accepts any path: the constrained one here only shows that the configured
    // endpoint is the one dialled (its default for tokens is tested on the parsed config).
    let url = sv.url.replace(
        "v1beta.GenerativeService.BidiGenerateContent",
        "v1alpha.GenerativeService.BidiGenerateContentConstrained",
    );
    let mut rig = Rig::new(
        "ephemeral",
        &pcm(9, 32_000 * 60),
        &url,
        "auth = \"ephemeral\"\ntoken_command = \"token.sh\"\n",
        "[session]\nwake = \"button\"\nchimes = false\n[service]\ncontrol_socket = \"ctl.sock\"\n\
         [tools]\nbuiltin = false\n",
    )
    .unwrap();
    token_script(&rig.dir);
    // The key is in the environment too: it must never be sent.
    rig.spawn(&exe(), KEY, &["-vv"], None).unwrap();
    let socket = rig.dir.join("ctl.sock");
    assert!(
        support::until(Duration::from_secs(10), || socket.exists()).await,
        "{}",
        rig.logs()
    );
    let mut seen = Seen::default();
    assert_eq!(ctl(&rig, &["wake"]).0, 0);
    sv.ready(
        &mut seen,
        &[json!({"sessionResumptionUpdate": {"newHandle": "h-1", "resumable": true}})],
    )
    .await;
    assert!(
        sv.pump(&mut seen, Duration::from_secs(5), |s| s.audio[0].len()
            > 16_000)
            .await
    );
    // A goAway: the hand-over resumes with the same token.
    sv.send(0, json!({"goAway": {"timeLeft": "10s"}}));
    assert!(
        sv.pump(&mut seen, Duration::from_secs(10), |s| s.setups.len() >= 2)
            .await,
        "{}",
        rig.logs()
    );
    assert_eq!(
        seen.setups[1]["setup"]["sessionResumption"],
        json!({"handle": "h-1"})
    );
    sv.send(1, setup_complete());
    assert!(
        sv.pump(&mut seen, Duration::from_secs(5), |s| s.audio.len() > 1
            && s.audio[1].len() > 16_000)
            .await
    );

    // A new session while the token source is down: retried with backoff, the reason logged.
    assert_eq!(ctl(&rig, &["end"]).0, 0);
    std::fs::write(rig.dir.join("fail"), "").unwrap();
    let calls = || {
        std::fs::read_to_string(rig.dir.join("calls"))
            .unwrap_or_default()
            .lines()
            .count()
    };
    let before = calls();
    assert_eq!(ctl(&rig, &["wake"]).0, 0);
    assert!(
        support::until(Duration::from_secs(10), || calls() >= before + 3).await,
        "retried\n{}",
        rig.logs()
    );
    let logs = rig.logs();
    assert!(
        logs.contains("no token: token_command")
            && logs.contains("failed (exit status: 3): backend down"),
        "{logs}"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let retries = calls() - before;
    assert!(
        retries <= 8,
        "backoff: {retries} attempts in about 3 s\n{}",
        rig.logs()
    );
    std::fs::remove_file(rig.dir.join("fail")).unwrap();
    assert!(
        sv.pump(&mut seen, Duration::from_secs(40), |s| s.setups.len() >= 3)
            .await,
        "the session opens once the source is back\n{}",
        rig.logs()
    );
    assert!(seen.setups[2]["setup"]["sessionResumption"]
        .get("handle")
        .is_none());
    sv.send(2, setup_complete());
    sv.pump(&mut seen, Duration::from_millis(300), |_| false)
        .await;

    rig.terminate();
    let status = rig.wait(Duration::from_secs(10)).unwrap();
    let logs = rig.logs();
    assert!(status.success(), "{logs}");
    let auth: Vec<(Option<String>, Option<String>)> = seen
        .upgrades
        .iter()
        .map(|(k, a, _)| (k.clone(), a.clone()))
        .collect();
    let token = |n: u32| (None, Some(format!("Token auth_tokens/test-{n}")));
    assert_eq!(
        auth,
        vec![token(1), token(1), token(2)],
        "new session: new token; resumption: the same; never x-goog-api-key"
    );
    for (_, _, uri) in &seen.upgrades {
        assert!(uri.ends_with("BidiGenerateContentConstrained"), "{uri}");
    }
    assert!(
        !logs.contains("auth_tokens/test-"),
        "a token in the log\n{logs}"
    );
    assert!(!logs.contains(KEY), "the key in the log");
    assert!(
        logs.contains("token: reusing this session's token to resume"),
        "{logs}"
    );
}
