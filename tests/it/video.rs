//! Camera end to end: the real `gemlive run` with a file of 1280×720 JPEG frames played as a
//! 30 frames/s camera, the Live stand-in, and file-backed ALSA devices.

use crate::support;

use std::time::{Duration, Instant};

use base64::Engine as _;
use gemlive::demo::Rig;
use gemlive::standin::{client_audio, setup_complete, FromClient, StandIn};
use support::{exe, pcm, KEY};
use tokio::time::timeout;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_at_most_once_a_second_at_the_configured_size_without_delaying_audio() {
    let si = StandIn::bind().await.unwrap();
    let mic = pcm(101, 32_000 * 10);
    let mut rig = Rig::new("video", &mic, &si.url(), "", "").unwrap();
    let mjpeg: Vec<u8> = (0..6).flat_map(gemlive::demo::camera_frame).collect();
    rig.add_camera(&mjpeg, "size = 768\ngeometry = \"letterbox\"")
        .unwrap();
    rig.spawn(&exe(), KEY, &["-v"], None).unwrap();

    let mut conn = timeout(Duration::from_secs(10), si.accept())
        .await
        .unwrap()
        .unwrap();
    let Some(FromClient::Json(_setup)) = conn.recv().await else {
        panic!("setup first")
    };
    conn.send(&setup_complete()).await.unwrap();
    let t0 = Instant::now();
    let mut video_at = Vec::new();
    let mut audio_at = Vec::new();
    while t0.elapsed() < Duration::from_millis(4_600) {
        let Ok(Some(FromClient::Json(v))) = timeout(Duration::from_millis(500), conn.recv()).await
        else {
            continue;
        };
        if client_audio(&v).is_some() {
            audio_at.push(t0.elapsed());
            continue;
        }
        let Some(vid) = v.get("realtimeInput").and_then(|r| r.get("video")) else {
            continue;
        };
        assert_eq!(v["realtimeInput"].as_object().unwrap().len(), 1);
        assert_eq!(vid["mimeType"], "image/jpeg");
        let jpeg = base64::engine::general_purpose::STANDARD
            .decode(vid["data"].as_str().unwrap())
            .unwrap();
        assert_eq!(
            gemlive::video::jpeg::jpeg_size(&jpeg),
            Some((768, 768)),
            "the configured size"
        );
        let mut dec =
            zune_jpeg::JpegDecoder::new(zune_jpeg::zune_core::bytestream::ZCursor::new(&jpeg));
        assert!(dec.decode().is_ok(), "a valid JPEG");
        video_at.push(t0.elapsed());
    }
    rig.terminate();
    let status = rig.wait(Duration::from_secs(10)).unwrap();
    assert!(status.success());
    let logs = rig.logs();
    println!("video frames at {video_at:?}");
    assert!(
        (3..=5).contains(&video_at.len()),
        "about one frame a second over 4.6 s: {video_at:?}\n{logs}"
    );
    for w in video_at.windows(2) {
        assert!(
            w[1] - w[0] >= Duration::from_millis(900),
            "never more than 1 frame/s: {video_at:?}"
        );
    }
    let worst_gap = audio_at
        .windows(2)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or_default();
    println!(
        "{} audio messages, largest gap {worst_gap:?}",
        audio_at.len()
    );
    assert!(audio_at.len() >= 100, "4.6 s of 40 ms chunks");
    assert!(
        worst_gap < Duration::from_millis(250),
        "audio not delayed by frame processing: gap {worst_gap:?}"
    );
    assert!(logs.contains("a file of 6 JPEG frames"), "{logs}");
    assert!(!logs.contains(KEY));
}

#[test]
fn snapshot_writes_one_frame_through_the_pipeline() {
    let mut rig = Rig::new("snapshot", &[0; 3200], "ws://127.0.0.1:9/", "", "").unwrap();
    let frames: Vec<u8> = (0..3).flat_map(gemlive::demo::camera_frame).collect();
    rig.add_camera(&frames, "geometry = \"fit\"").unwrap();
    let out = rig.dir.join("snap.jpg");
    let o = std::process::Command::new(exe())
        .args([
            "--config",
            rig.config_path.to_str().unwrap(),
            "snapshot",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(stdout.contains("768x432"), "{stdout}");
    let jpeg = std::fs::read(&out).unwrap();
    assert_eq!(
        gemlive::video::jpeg::jpeg_size(&jpeg),
        Some((768, 432)),
        "fit: long side 768"
    );

    // No camera: a clear error, non-zero exit.
    let cfg = rig.dir.join("nocam.toml");
    std::fs::write(&cfg, "[live]\n[video]\ndevice = \"/dev/video77\"\n").unwrap();
    let o = std::process::Command::new(exe())
        .args(["--config", cfg.to_str().unwrap(), "snapshot", "--out"])
        .arg(rig.dir.join("x.jpg"))
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("camera `/dev/video77` does not exist"),
        "{err}"
    );
}

/// A frame that is sound on the outside (SOI, headers, scan, EOI) but declares a height of 0,
/// so the capture side passes it on and the pipeline refuses it, as it would a frame whose
/// data the decoder cannot make sense of.
fn zero_height_frame(n: u32) -> Vec<u8> {
    let mut f = gemlive::demo::camera_frame(n);
    let sof = f
        .windows(2)
        .position(|w| w == [0xFF, 0xC0])
        .expect("a baseline frame header");
    f[sof + 5] = 0;
    f[sof + 6] = 0;
    assert!(gemlive::video::jpeg::trim_to_eoi(&f).is_ok());
    assert_eq!(gemlive::video::jpeg::jpeg_size(&f), None);
    f
}

#[test]
fn snapshot_skips_broken_frames_and_says_how_many() {
    let mut rig = Rig::new("snapshot-broken", &[0; 3200], "ws://127.0.0.1:9/", "", "").unwrap();
    // A frame cut short (dropped when the file is read), then two the pipeline refuses, then
    // good ones.
    let good = gemlive::demo::camera_frame(1);
    let mut frames = good[..good.len() / 2].to_vec();
    frames.extend(zero_height_frame(0));
    frames.extend(zero_height_frame(2));
    frames.extend(&good);
    frames.extend(gemlive::demo::camera_frame(3));
    rig.add_camera(&frames, "geometry = \"fit\"").unwrap();
    let out = rig.dir.join("snap.jpg");
    let o = std::process::Command::new(exe())
        .args(["--config", rig.config_path.to_str().unwrap(), "snapshot"])
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(stdout.contains("768x432"), "{stdout}");
    assert!(stdout.contains(", after skipping "), "{stdout}");
    assert_eq!(
        gemlive::video::jpeg::jpeg_size(&std::fs::read(&out).unwrap()),
        Some((768, 432))
    );

    // Nothing but broken frames: it gives up, saying so, within the retry limits.
    let bad: Vec<u8> = (0..2).flat_map(zero_height_frame).collect();
    rig.add_camera(&bad, "").unwrap();
    let t0 = Instant::now();
    let o = std::process::Command::new(exe())
        .args(["--config", rig.config_path.to_str().unwrap(), "snapshot"])
        .arg("--out")
        .arg(rig.dir.join("x.jpg"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{err}");
    assert!(
        err.contains("no usable frame from `") && err.contains("frames tried"),
        "{err}"
    );
    assert!(err.contains("zero width or height"), "{err}");
    assert!(t0.elapsed() < Duration::from_secs(8), "{:?}", t0.elapsed());
}
