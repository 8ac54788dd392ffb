//! Wi-Fi that vanishes while the socket stays open: a TCP relay between the daemon and the
//! stand-in stops moving bytes in both directions mid-session (no FIN, no RST, nothing), the
//! way a router reboot or a roaming client looks from the box. The daemon must see it from its
//! own socket's missing acknowledgements within `stall_after_s`, move to a new connection that
//! resumes, send again exactly the audio that never arrived, keep feeding systemd's watchdog
//! throughout, and stop within 2 s on SIGTERM even while the network is frozen.

use crate::support;

use std::os::unix::net::UnixDatagram;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gemlive::demo::Rig;
use gemlive::standin::setup_complete;
use serde_json::json;
use support::{arrivals, continuity, exe, listen_notify, pcm, Seen, Server, KEY};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

const SEC: usize = 32_000;
const STALL_AFTER_S: u64 = 5;

/// A relay whose connections all freeze (keep their sockets, move nothing) on `freeze()`;
/// connections accepted afterwards work.
struct Relay {
    url: String,
    era: Arc<AtomicU64>,
}

impl Relay {
    async fn start(target_url: &str) -> Relay {
        let rest = target_url.strip_prefix("ws://").expect("ws:// stand-in");
        let (target, path) = rest.split_once('/').unwrap_or((rest, ""));
        let target = target.to_string();
        let sock = TcpSocket::new_v4().unwrap();
        // A small receive buffer: a frozen relay stops acknowledging after a few KiB, as a
        // vanished network stops at once, instead of swallowing megabytes first.
        sock.set_recv_buffer_size(4096).unwrap();
        sock.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener = sock.listen(16).unwrap();
        let url = format!("ws://{}/{path}", listener.local_addr().unwrap());
        let era = Arc::new(AtomicU64::new(0));
        let e = era.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(&target).await else {
                    continue;
                };
                let mine = e.load(Ordering::SeqCst);
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                tokio::spawn(pump(cr, sw, e.clone(), mine));
                tokio::spawn(pump(sr, cw, e.clone(), mine));
            }
        });
        Relay { url, era }
    }

    fn freeze(&self) {
        self.era.fetch_add(1, Ordering::SeqCst);
    }
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    era: Arc<AtomicU64>,
    mine: u64,
) {
    let mut buf = vec![0u8; 4096];
    loop {
        let frozen = era.load(Ordering::SeqCst) != mine;
        if frozen {
            // Hold both sockets open and move nothing, forever.
            let _keep = (from, to);
            std::future::pending::<()>().await;
            return;
        }
        let n = match tokio::time::timeout(Duration::from_millis(20), from.read(&mut buf)).await {
            Err(_) => continue,
            Ok(Ok(0)) | Ok(Err(_)) => return,
            Ok(Ok(n)) => n,
        };
        if era.load(Ordering::SeqCst) != mine {
            continue; // these bytes were taken off the wire, then the network died: lost
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_network_is_left_within_stall_after_and_no_speech_is_lost() {
    let mic = pcm(77, 40 * SEC);
    let mut sv = Server::start().await;
    let relay = Relay::start(&sv.url).await;
    let mut rig = Rig::new(
        "blackhole",
        &mic,
        &relay.url,
        &format!("stall_after_s = {STALL_AFTER_S}"),
        "",
    )
    .unwrap();
    let sock_path = rig.dir.join("notify.sock");
    let notes = listen_notify(UnixDatagram::bind(&sock_path).unwrap());
    rig.spawn_with_env(
        &exe(),
        KEY,
        &["-v"],
        None,
        &[
            ("NOTIFY_SOCKET", sock_path.to_str().unwrap()),
            ("WATCHDOG_USEC", "2000000"),
        ],
    )
    .unwrap();
    let mut seen = Seen::default();
    sv.ready(
        &mut seen,
        &[json!({"sessionResumptionUpdate": {"newHandle": "h-b", "resumable": true}})],
    )
    .await;
    assert!(
        sv.pump(&mut seen, Duration::from_secs(10), |s| s.audio[0].len()
            >= 4 * SEC)
            .await,
        "audio flows through the relay"
    );

    relay.freeze();
    let frozen = Instant::now();
    assert!(
        sv.pump(&mut seen, Duration::from_secs(20), |s| s.setups.len() >= 2)
            .await,
        "a new connection after the freeze\n{}",
        rig.logs()
    );
    let detected = frozen.elapsed().as_secs_f64();
    assert_eq!(
        seen.setups[1]["setup"]["sessionResumption"],
        json!({"handle": "h-b"}),
        "the new connection resumes the conversation"
    );
    sv.send(1, setup_complete());
    assert!(
        sv.pump(&mut seen, Duration::from_secs(10), |s| s.audio[1].len()
            >= 3 * SEC)
            .await
    );

    // The network freezes again and the box is told to stop: a frozen socket must not hold
    // up the stop.
    relay.freeze();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let stop = Instant::now();
    rig.terminate();
    let status = rig.wait(Duration::from_secs(10)).unwrap();
    let stopped_in = stop.elapsed().as_secs_f64();
    sv.pump(&mut seen, Duration::from_millis(200), |_| false)
        .await;
    let logs = rig.logs();

    // Connection 0 carried an exact prefix of the mic; connection 1 continues it, in order,
    // with nothing sent twice and at most 0.5 s missing (what the relay had taken off the wire
    // when it froze).
    let first = &seen.audio[0];
    assert_eq!(
        first[..],
        mic[..first.len()],
        "connection 0: a prefix of the mic"
    );
    let second = &seen.audio[1];
    let start = (0..=mic.len() - second.len())
        .step_by(1_280)
        .find(|&off| mic[off..off + second.len()] == second[..])
        .expect("connection 1 carries a contiguous stretch of the mic");
    assert!(
        start >= first.len(),
        "audio sent twice: {} bytes",
        first.len() - start
    );
    let missing = (start - first.len()) as f64 / SEC as f64;
    let gaps: Vec<f64> = arrivals(&notes, "WATCHDOG=1")
        .windows(2)
        .map(|w| (w[1] - w[0]).as_secs_f64())
        .collect();
    let worst_gap = gaps.iter().copied().fold(0.0, f64::max);
    println!(
        "blackhole: new connection {detected:.2} s after the freeze (stall_after_s = {STALL_AFTER_S}); \
         {missing:.3} s of mic audio missing, 0 doubled; watchdog fed {} times, longest pause {worst_gap:.2} s; \
         SIGTERM while frozen: exit in {stopped_in:.2} s\nblackhole: {}",
        gaps.len() + 1,
        continuity(&logs)
    );
    assert!(
        detected <= STALL_AFTER_S as f64 + 2.0,
        "new connection only {detected:.1} s after the freeze\n{logs}"
    );
    assert!(
        missing <= 0.5,
        "{missing:.3} s of mic audio missing\n{logs}"
    );
    assert!(logs.contains("stall_after_s"), "{logs}");
    assert!(
        logs.contains("never acknowledged will be sent again"),
        "{logs}"
    );
    assert!(gaps.len() >= 8, "the watchdog was fed: {gaps:?}");
    assert!(
        worst_gap <= 2.0,
        "watchdog paused {worst_gap:.2} s: {gaps:?}"
    );
    assert!(status.success(), "exit {status:?}\n{logs}");
    assert!(stopped_in <= 2.0, "stop took {stopped_in:.2} s\n{logs}");
    assert!(!logs.contains(KEY), "key in the log");
}
