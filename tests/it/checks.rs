//! The checks a user runs over SSH: `test-audio` on alsa-lib `file` PCMs (what it reports, what
//! reaches the speaker file, what it keeps), `test-wake` on espeak-ng speech, and `check-config --online` against a real
//! WebSocket server on 127.0.0.1 that accepts, closes with the server's reasons, or refuses the
//! upgrade with an HTTP error body.

use crate::support;

use std::process::{Output, Stdio};
use std::time::Duration;

use gemlive::demo::Rig;
use support::{exe, Cmd, Seen, Server, KEY};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `amp * sin(2π·440·t)` at 16 kHz, S16_LE bytes.
fn tone(amp: f64, samples: usize) -> Vec<u8> {
    (0..samples)
        .flat_map(|i| {
            let x = amp * (i as f64 * 2.0 * std::f64::consts::PI * 440.0 / 16_000.0).sin();
            (x.round() as i16).to_le_bytes()
        })
        .collect()
}

fn run_sync(rig: &Rig, args: &[&str]) -> Output {
    std::process::Command::new(exe())
        .arg("--config")
        .arg(&rig.config_path)
        .args(args)
        .env("ALSA_CONFIG_PATH", &rig.alsa_conf)
        .env_remove("GEMINI_API_KEY")
        .env_remove("GEMLIVE_CONFIG")
        .env_remove("JOURNAL_STREAM")
        .output()
        .expect("run gemlive")
}

/// A rig whose endpoint nothing listens on: the device checks never dial.
fn offline_rig(name: &str, mic: &[u8]) -> Rig {
    Rig::new(name, mic, "ws://127.0.0.1:9/", "", "").unwrap()
}

#[test]
fn test_wake_prints_each_detection_and_the_best_score() {
    let (Some(phrase), Some(other)) = (
        support::speech("Okay, Nabu.", "en-us", 140),
        support::speech("Good morning, how are you?", "en-us", 150),
    ) else {
        return support::no_speech();
    };
    let mut mic = vec![0u8; 16_000];
    for _ in 0..2 {
        mic.extend(&phrase);
        mic.extend(vec![0u8; 48_000]);
    }
    mic.extend(&other);
    mic.extend(vec![0u8; 32_000]);
    let secs = format!("{:.1}", mic.len() as f64 / 32_000.0);
    let rig = offline_rig("test-wake", &mic);
    let out = run_sync(&rig, &["test-wake", "--seconds", &secs]);
    let stdout = text(&out.stdout);
    println!("{stdout}");
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.to_lowercase().contains("for \"okay nabu\""),
        "{stdout}"
    );
    // Twice the phrase, two detections; the other sentence adds none.
    assert_eq!(stdout.matches("detected at").count(), 2, "{stdout}");
    assert!(stdout.contains(": 2 detection(s)"), "{stdout}");

    // Only the other sentence: no detection, a best score and the hint.
    let mut quiet = vec![0u8; 16_000];
    quiet.extend(&other);
    quiet.extend(vec![0u8; 16_000]);
    let rig = offline_rig("test-wake-none", &quiet);
    let out = run_sync(&rig, &["test-wake", "--seconds", "3"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains(": 0 detection(s)") && stdout.contains("hint: "),
        "{stdout}"
    );
}

/// `test-audio --seconds 1 --no-playback` on `mic`: exit code and stdout.
fn quick_test_audio(rig: &Rig) -> (Option<i32>, String) {
    let out = run_sync(rig, &["test-audio", "--seconds", "1", "--no-playback"]);
    (out.status.code(), text(&out.stdout))
}

fn rms(pcm: &[u8]) -> f64 {
    gemlive::audio::rms_s16le(pcm)
}

#[test]
fn test_audio_reports_the_level_keeps_the_recording_and_plays_it_back() {
    // A quiet room (0.5 s of ±8 LSB noise), then a 440 Hz tone at half scale (peak -6.0 dBFS,
    // RMS -9.0 dBFS); 2 s are recorded.
    let mut mic: Vec<u8> = support::pcm(3, 16_000)
        .chunks_exact(2)
        .flat_map(|b| (i16::from_le_bytes([b[0], b[1]]) / 4096).to_le_bytes())
        .collect();
    mic.extend(tone(16_384.0, 56_000));
    let rig = Rig::new("test-audio", &mic, "ws://127.0.0.1:9/", "", "volume = 50").unwrap();
    let wav = rig.dir.join("rec.wav");
    let out = run_sync(
        &rig,
        &[
            "test-audio",
            "--seconds",
            "2",
            "--out",
            wav.to_str().unwrap(),
        ],
    );
    let stdout = text(&out.stdout);
    println!("{stdout}");
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains("peak -6.0 dBFS, loudest 100 ms -9.0 dBFS"),
        "{stdout}"
    );
    assert!(stdout.contains("quietest 100 ms -7"), "{stdout}");
    assert!(stdout.contains("clipping: 0 samples (0.00 %)"), "{stdout}");
    assert!(stdout.contains("result: OK"), "{stdout}");
    assert!(!stdout.contains("warning:"), "{stdout}");

    // The kept recording is exactly the first 2 s the mic delivered.
    let w = std::fs::read(&wav).unwrap();
    assert_eq!(&w[..4], b"RIFF");
    assert_eq!(&w[44..], &mic[..64_000], "recording = first 2 s of the mic");

    // The speaker got 2 s at 24 kHz, at the configured 50 % volume.
    let spk = std::fs::read(&rig.speaker_path).unwrap();
    assert_eq!(spk.len(), 2 * 24_000 * 2, "2 s at 24 kHz S16_LE");
    let ratio = rms(&spk) / rms(&mic[..64_000]);
    assert!((ratio - 0.5).abs() < 0.01, "speaker/mic RMS {ratio}");
    println!(
        "test-audio: mic RMS {:.0}, speaker RMS {:.0} (volume 50 %)",
        rms(&mic[..64_000]),
        rms(&spk)
    );
}

#[test]
fn test_audio_names_the_problem_and_fails() {
    // A muted mic: digital silence. Exit 1, the fix named, nothing played with --no-playback.
    let rig = offline_rig("test-audio-silent", &[0u8; 96_000]);
    let (code, stdout) = quick_test_audio(&rig);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(stdout.contains("problem: digital silence"), "{stdout}");
    assert!(stdout.contains("alsamixer"), "{stdout}");
    assert!(stdout.contains("result: PROBLEM"), "{stdout}");
    assert!(!rig.speaker_path.exists(), "--no-playback played nothing");

    // A clipping mic.
    let rig = offline_rig("test-audio-clip", &tone(40_000.0, 32_000));
    let (code, stdout) = quick_test_audio(&rig);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(stdout.contains("problem: clipping"), "{stdout}");

    // A device name that does not exist: the error and where to look.
    let rig = offline_rig("test-audio-missing", &[0u8; 3_200]);
    std::fs::write(
        &rig.config_path,
        "[audio]\ncapture_device = \"no_such_pcm\"\n[video]\nenabled = false\n",
    )
    .unwrap();
    let out = run_sync(&rig, &["test-audio", "--seconds", "1"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot open ALSA capture device `no_such_pcm`"),
        "{stderr}"
    );
    assert!(stderr.contains("list-devices"), "{stderr}");
}

/// Runs `check-config --online` as a child while the caller's server side plays its part.
async fn online(rig: &Rig) -> tokio::process::Child {
    tokio::process::Command::new(exe())
        .arg("--config")
        .arg(&rig.config_path)
        .args(["check-config", "--online"])
        .env("GEMINI_API_KEY", KEY)
        .env_remove("GEMLIVE_CONFIG")
        .env_remove("JOURNAL_STREAM")
        .env_remove("CREDENTIALS_DIRECTORY")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn gemlive")
}

async fn finish(child: tokio::process::Child) -> (Option<i32>, String) {
    let out = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .expect("check-config --online finishes")
        .unwrap();
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(!all.contains(KEY), "the key must never be printed:\n{all}");
    (out.status.code(), all)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn online_check_opens_and_closes_a_real_session() {
    let mut sv = Server::start().await;
    let rig = Rig::new(
        "online-ok",
        &[0u8; 3_200],
        &sv.url,
        "model = \"models/gemini-2.5-flash-native-audio-preview-09-2025\"",
        "",
    )
    .unwrap();
    let child = online(&rig).await;
    let mut seen = Seen::default();
    sv.ready(&mut seen, &[]).await;
    assert_eq!(
        seen.setups[0]["setup"]["model"],
        "models/gemini-2.5-flash-native-audio-preview-09-2025"
    );
    assert!(
        sv.pump(&mut seen, Duration::from_secs(10), |s| s
            .closed(0)
            .is_some())
            .await
    );
    let (code, all) = finish(child).await;
    println!("{all}");
    assert_eq!(code, Some(0), "{all}");
    assert!(
        all.contains("online: OK: 127.0.0.1 accepted the key"),
        "{all}"
    );
    assert_eq!(seen.closed(0), Some(1000), "closed politely");
    assert!(seen.audio[0].is_empty(), "no microphone audio was sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn online_check_reports_the_servers_close_reason() {
    for (code, reason, exit, says) in [
        (
            1008,
            "models/gemini-nope is not found for API version v1beta, or is not supported for bidiGenerateContent",
            78,
            "does not exist or does not support the Live API",
        ),
        (
            1007,
            "User location is not supported for the API use.",
            78,
            "not available from this network's location",
        ),
        (
            1011,
            "You exceeded your current quota, please check your plan and billing details.",
            1,
            "quota exhausted",
        ),
    ] {
        let mut sv = Server::start().await;
        let rig = Rig::new("online-close", &[0u8; 3_200], &sv.url, "", "").unwrap();
        let child = online(&rig).await;
        let mut seen = Seen::default();
        assert!(
            sv.pump(&mut seen, Duration::from_secs(10), |s| !s.setups.is_empty())
                .await
        );
        sv.cmd(0, Cmd::Close(code, reason.to_string()));
        let (status, all) = finish(child).await;
        println!("{all}");
        assert_eq!(status, Some(exit), "{all}");
        assert!(all.contains("online: FAILED"), "{all}");
        assert!(all.contains(&format!("code {code}, {reason}")), "{all}");
        assert!(all.contains(says), "{says:?} in:\n{all}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn online_check_shows_a_refused_key_and_an_unreachable_server() {
    // An HTTP 400 with Google's JSON error body instead of the WebSocket upgrade.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/ws", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 4096];
        let _ = s.read(&mut buf).await;
        let body = r#"{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT"}}"#;
        let resp = format!(
            "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = s.write_all(resp.as_bytes()).await;
        let _ = s.shutdown().await;
    });
    let rig = Rig::new("online-400", &[0u8; 3_200], &url, "", "").unwrap();
    let (status, all) = finish(online(&rig).await).await;
    println!("{all}");
    assert_eq!(status, Some(78), "{all}");
    assert!(all.contains("HTTP 400"), "{all}");
    assert!(all.contains("API key not valid"), "{all}");
    assert!(all.contains("refused the API key"), "{all}");

    // Nothing listens: a network failure, exit 1 (a retry may pass).
    let rig = offline_rig("online-down", &[0u8; 3_200]);
    let (status, all) = finish(online(&rig).await).await;
    assert_eq!(status, Some(1), "{all}");
    assert!(all.contains("could not connect to 127.0.0.1"), "{all}");
    assert!(all.contains("no connection to the server"), "{all}");
}

/// `auth = "ephemeral"` with `token_url`: the online check fetches a token from a real web
/// server (Python's `http.server`) and opens the session with it, never with the key; a
/// refused setup names the `[live]` key the server's reason points at.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn online_check_with_a_token_from_token_url_and_a_refused_key_named() {
    use std::os::unix::fs::PermissionsExt;
    let web = std::env::temp_dir().join(format!("gemlive-tokweb-{}", std::process::id()));
    std::fs::create_dir_all(&web).unwrap();
    std::fs::write(
        web.join("token"),
        "{\"name\": \"auth_tokens/from-url\", \"expireTime\": \"2099-01-01T00:00:00Z\"}\n",
    )
    .unwrap();
    let port = support::free_port();
    let mut server = std::process::Command::new("python3")
        .args([
            "-m",
            "http.server",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--directory",
        ])
        .arg(&web)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 -m http.server");
    assert!(
        support::until(Duration::from_secs(10), || std::net::TcpStream::connect((
            "127.0.0.1",
            port
        ))
        .is_ok())
        .await,
        "http.server listens"
    );

    let mut sv = Server::start().await;
    let live = format!(
        "auth = \"ephemeral\"\ntoken_url = \"http://127.0.0.1:{port}/token\"\n\
         token_bearer_file = \"bearer\"\n"
    );
    let rig = Rig::new("online-token", &[0u8; 3_200], &sv.url, &live, "").unwrap();
    let bearer = rig.dir.join("bearer");
    std::fs::write(&bearer, "box-secret\n").unwrap();
    std::fs::set_permissions(&bearer, std::fs::Permissions::from_mode(0o600)).unwrap();
    let child = online(&rig).await;
    let mut seen = Seen::default();
    sv.ready(&mut seen, &[]).await;
    assert!(
        sv.pump(&mut seen, Duration::from_secs(10), |s| s
            .closed(0)
            .is_some())
            .await
    );
    let (code, all) = finish(child).await;
    println!("{all}");
    assert_eq!(code, Some(0), "{all}");
    assert!(
        all.contains("online: OK: 127.0.0.1 accepted the token"),
        "{all}"
    );
    assert!(
        all.contains("auth: ephemeral tokens from token_url http://127.0.0.1:"),
        "{all}"
    );
    assert!(
        !all.contains("from-url"),
        "the token is never printed:\n{all}"
    );
    assert_eq!(
        (seen.upgrades[0].0.as_deref(), seen.upgrades[0].1.as_deref()),
        (None, Some("Token auth_tokens/from-url")),
        "the token, not the key"
    );

    // A model that does not take a setting: the hint names the key.
    let mut sv = Server::start().await;
    let rig = Rig::new(
        "online-refused",
        &[0u8; 3_200],
        &sv.url,
        "proactive_audio = true\n",
        "",
    )
    .unwrap();
    let child = online(&rig).await;
    let mut seen = Seen::default();
    assert!(
        sv.pump(&mut seen, Duration::from_secs(10), |s| !s.setups.is_empty())
            .await
    );
    assert_eq!(
        seen.setups[0]["setup"]["proactivity"],
        serde_json::json!({"proactiveAudio": true})
    );
    sv.cmd(
        0,
        Cmd::Close(
            1007,
            "Invalid JSON payload received. Unknown name \"proactivity\" at 'setup': Cannot find field."
                .into(),
        ),
    );
    let (status, all) = finish(child).await;
    println!("{all}");
    assert_eq!(status, Some(78), "{all}");
    assert!(
        all.contains("the server refused `proactive_audio` in [live]"),
        "{all}"
    );
    let _ = server.kill();
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(&web);
}
