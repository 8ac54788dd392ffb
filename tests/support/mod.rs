//! Shared helpers for the integration tests (the one home for them).
#![allow(dead_code)]

pub mod pulse;

use std::path::PathBuf;
use std::time::{Duration, Instant};

pub const KEY: &str = "AIzaTEST-secret-key-0123456789";

pub fn exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_gemlive"))
}

/// Deterministic noise-like S16_LE audio: any reordering, loss or duplication shows.
pub fn pcm(seed: u32, bytes: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..bytes)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 11) as u8
        })
        .collect()
}

/// Polls `cond` every 10 ms until it holds or `timeout` passes.
pub async fn until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    cond()
}

// ---------------------------------------------------------------------------------------------
// A multi-connection Live stand-in for session tests: every connection runs in its own task,
// forwarding what the client sends and doing what the test tells it.

use gemlive::standin::{client_audio, FromClient, StandIn};
use serde_json::Value;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

#[derive(Debug)]
pub enum Ev {
    Connected {
        api_key: Option<String>,
        authorization: Option<String>,
        uri: String,
    },
    Msg(FromClient),
    /// The TCP connection ended.
    Gone,
}

pub enum Cmd {
    Send(Value),
    Raw(Vec<u8>, bool),
    Close(u16, String),
    /// Drop the TCP connection without a WebSocket close frame.
    Drop,
    /// Stop reading (and so stop answering pings) but keep the TCP connection open: a server
    /// or network that went silent.
    Freeze,
}

pub struct Server {
    pub url: String,
    events: mpsc::UnboundedReceiver<(usize, Ev)>,
    conns: Arc<Mutex<Vec<mpsc::UnboundedSender<Cmd>>>>,
}

/// What the client did, per connection (index = order of connection).
#[derive(Debug, Default)]
pub struct Seen {
    pub setups: Vec<Value>,
    pub audio: Vec<Vec<u8>>,
    pub closes: Vec<(usize, u16)>,
    pub gone: Vec<usize>,
    pub others: Vec<(usize, Value)>,
    /// Per connection: the `x-goog-api-key` and `Authorization` headers and the request target.
    pub upgrades: Vec<(Option<String>, Option<String>, String)>,
}

impl Seen {
    pub fn connections(&self) -> usize {
        self.audio.len()
    }

    /// All mic audio, connection after connection (each chunk goes to exactly one).
    pub fn all_audio(&self) -> Vec<u8> {
        self.audio.concat()
    }

    pub fn closed(&self, conn: usize) -> Option<u16> {
        self.closes
            .iter()
            .find(|(c, _)| *c == conn)
            .map(|(_, code)| *code)
    }
}

impl Server {
    pub async fn start() -> Server {
        let si = StandIn::bind().await.expect("bind stand-in");
        let url = si.url();
        let (etx, events) = mpsc::unbounded_channel();
        let conns: Arc<Mutex<Vec<mpsc::UnboundedSender<Cmd>>>> = Arc::default();
        let c2 = conns.clone();
        tokio::spawn(async move {
            while let Ok(mut conn) = si.accept().await {
                let (ctx, mut crx) = mpsc::unbounded_channel();
                let idx = {
                    let mut g = c2.lock().unwrap();
                    g.push(ctx);
                    g.len() - 1
                };
                let etx = etx.clone();
                let _ = etx.send((
                    idx,
                    Ev::Connected {
                        api_key: conn.api_key.clone(),
                        authorization: conn.authorization.clone(),
                        uri: conn.uri.clone(),
                    },
                ));
                tokio::spawn(async move {
                    let mut frozen = false;
                    loop {
                        tokio::select! {
                            m = conn.recv(), if !frozen => match m {
                                Some(m) => { let _ = etx.send((idx, Ev::Msg(m))); }
                                None => break,
                            },
                            c = crx.recv() => match c {
                                Some(Cmd::Send(v)) => { let _ = conn.send(&v).await; }
                                Some(Cmd::Raw(b, bin)) => { let _ = conn.send_raw(&b, bin).await; }
                                // Keep reading after our close frame: what the client sent
                                // before it saw the close still arrives (closing handshake).
                                Some(Cmd::Close(code, reason)) => conn.close(code, &reason).await,
                                Some(Cmd::Freeze) => frozen = true,
                                Some(Cmd::Drop) | None => break,
                            },
                        }
                    }
                    let _ = etx.send((idx, Ev::Gone));
                });
            }
        });
        Server { url, events, conns }
    }

    /// The port the stand-in listens on (for a VM's forwarded port).
    pub fn port(&self) -> u16 {
        self.url
            .split(':')
            .nth(2)
            .and_then(|p| p.split('/').next())
            .and_then(|p| p.parse().ok())
            .expect("the stand-in's URL has a port")
    }

    pub fn cmd(&self, conn: usize, c: Cmd) {
        let g = self.conns.lock().unwrap();
        let _ = g[conn].send(c);
    }

    pub fn send(&self, conn: usize, v: Value) {
        self.cmd(conn, Cmd::Send(v));
    }

    /// Waits for the first connection's `setup`, answers `setupComplete`, then sends `then`
    /// (e.g. a `sessionResumptionUpdate`): the start every session scenario shares.
    pub async fn ready(&mut self, seen: &mut Seen, then: &[Value]) {
        assert!(
            self.pump(seen, Duration::from_secs(10), |s| !s.setups.is_empty())
                .await,
            "the daemon sent setup"
        );
        self.send(0, gemlive::standin::setup_complete());
        for v in then {
            self.send(0, v.clone());
        }
    }

    /// Processes client events until `cond` holds (true) or `timeout` passes (false).
    pub async fn pump(
        &mut self,
        seen: &mut Seen,
        timeout: Duration,
        mut cond: impl FnMut(&Seen) -> bool,
    ) -> bool {
        let end = tokio::time::Instant::now() + timeout;
        loop {
            if cond(seen) {
                return true;
            }
            let left = end.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return false;
            }
            let Ok(Some((idx, ev))) = tokio::time::timeout(left, self.events.recv()).await else {
                return cond(seen);
            };
            while seen.audio.len() <= idx {
                seen.audio.push(Vec::new());
            }
            match ev {
                Ev::Connected {
                    api_key,
                    authorization,
                    uri,
                } => {
                    while seen.upgrades.len() < idx {
                        seen.upgrades.push((None, None, String::new()));
                    }
                    seen.upgrades.push((api_key, authorization, uri));
                }
                Ev::Gone => seen.gone.push(idx),
                Ev::Msg(FromClient::Closed { code, .. }) => seen.closes.push((idx, code)),
                Ev::Msg(FromClient::NotJson(t)) => panic!("client sent a non-JSON frame: {t}"),
                Ev::Msg(FromClient::Json(v)) => {
                    if v.get("setup").is_some() {
                        while seen.setups.len() <= idx {
                            seen.setups.push(Value::Null);
                        }
                        seen.setups[idx] = v;
                    } else if let Some(a) = client_audio(&v) {
                        seen.audio[idx].extend_from_slice(&a);
                    } else {
                        seen.others.push((idx, v));
                    }
                }
            }
        }
    }
}

/// The first `len` bytes of the mic file. A test must never read past its end: alsa-lib's
/// `file` PCM does not loop cleanly at EOF (it returns stale ring-buffer contents).
pub fn cycle(mic: &[u8], len: usize) -> Vec<u8> {
    assert!(
        len <= mic.len(),
        "the test read {len} bytes, past the end of its {}-byte mic file",
        mic.len()
    );
    mic[..len].to_vec()
}

/// The daemon's final continuity line (captured / sent / dropped samples).
pub fn continuity(logs: &str) -> String {
    logs.lines()
        .find(|l| l.contains("stopped: samples captured"))
        .map(|l| {
            l.split("stopped: ")
                .nth(1)
                .unwrap_or(l)
                .split(';')
                .next()
                .unwrap_or(l)
                .to_string()
        })
        .unwrap_or_else(|| "no summary line".into())
}

/// Where `got` first differs from the mic (for failure messages).
pub fn first_mismatch(mic: &[u8], got: &[u8]) -> Option<usize> {
    got.iter().zip(mic.iter()).position(|(a, b)| a != b)
}

// ---------------------------------------------------------------------------------------------
// systemd's side of sd-notify: a real Unix datagram socket as NOTIFY_SOCKET.

/// Every datagram the daemon sent, with when it arrived.
pub type Notes = Arc<Mutex<Vec<(Instant, String)>>>;

/// Collects what arrives on `sock` until the daemon goes away.
pub fn listen_notify(sock: std::os::unix::net::UnixDatagram) -> Notes {
    let notes: Notes = Arc::default();
    let n = notes.clone();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 4096];
        while let Ok(len) = sock.recv(&mut buf) {
            let text = String::from_utf8_lossy(&buf[..len]).into_owned();
            n.lock().unwrap().push((Instant::now(), text));
        }
    });
    notes
}

/// When each datagram holding `line` (e.g. `WATCHDOG=1`) arrived.
pub fn arrivals(notes: &Notes, line: &str) -> Vec<Instant> {
    notes
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, m)| m.lines().any(|l| l == line))
        .map(|(t, _)| *t)
        .collect()
}

/// A `toolCall` message with one function call.
pub fn tool_call(id: &str, name: &str, args: Value) -> Value {
    serde_json::json!({"toolCall": {"functionCalls": [{"id": id, "name": name, "args": args}]}})
}

/// The `functionResponses` entry the daemon sent for the call `id`, if it did.
pub fn tool_response(seen: &Seen, id: &str) -> Option<Value> {
    seen.others
        .iter()
        .filter_map(|(_, v)| v["toolResponse"]["functionResponses"].as_array())
        .flatten()
        .find(|r| r["id"] == id)
        .cloned()
}

/// A helper server (a script in `tests/fixtures`) that prints its port on its first line of
/// standard output; its log (standard error) is not shown; killed on drop.
pub struct PortServer {
    child: std::process::Child,
    pub port: u16,
}

impl PortServer {
    /// Starts `program` with `args` and reads the port it prints; `what` says how to get the
    /// program when it does not start.
    pub fn start<S: AsRef<std::ffi::OsStr>>(program: S, args: &[S], what: &str) -> PortServer {
        use std::io::BufRead;
        let mut child = std::process::Command::new(program)
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect(what);
        let mut line = String::new();
        let out = child.stdout.take().expect("piped stdout");
        std::io::BufReader::new(out)
            .read_line(&mut line)
            .expect("the server's first line");
        let port = line.trim().parse().expect("the server prints its port");
        PortServer { child, port }
    }
}

impl Drop for PortServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a test that needs speech does without espeak-ng: fails where the suite must run
/// whole (`REQUIRE_PULSE`, as in CI), else skips loudly.
pub fn no_speech() {
    assert!(
        std::env::var_os("REQUIRE_PULSE").is_none(),
        "espeak-ng is missing (bash .ci/deps --test installs it)"
    );
    eprintln!("SKIP: no espeak-ng");
}

/// `text` spoken by espeak-ng (Debian's, installed by `.ci/deps --test`), as 16 kHz S16_LE
/// mono; `None` without espeak-ng.
pub fn speech(text: &str, voice: &str, words_per_min: u32) -> Option<Vec<u8>> {
    let out = std::process::Command::new("espeak-ng")
        .args([
            "-v",
            voice,
            "-s",
            &words_per_min.to_string(),
            "--stdout",
            text,
        ])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let wav = out.stdout;
    // A RIFF header; espeak-ng writes 22050 Hz 16-bit mono, with the data chunk's length
    // unknown (it streams), so everything after "data" + 4 bytes is audio.
    let rate = u32::from_le_bytes(wav.get(24..28)?.try_into().ok()?);
    let data = wav.windows(4).position(|w| w == b"data")? + 8;
    let src: Vec<f64> = wav[data..]
        .chunks_exact(2)
        .map(|b| f64::from(i16::from_le_bytes([b[0], b[1]])))
        .collect();
    let n = (src.len() as f64 * 16_000.0 / f64::from(rate)) as usize;
    Some(
        (0..n)
            .flat_map(|i| {
                let p = i as f64 * f64::from(rate) / 16_000.0;
                let (j, f) = (p.floor() as usize, p.fract());
                let a = src.get(j).copied().unwrap_or(0.0);
                let b = src.get(j + 1).copied().unwrap_or(a);
                ((a * (1.0 - f) + b * f).round() as i16).to_le_bytes()
            })
            .collect(),
    )
}

/// A quiet room, not digital silence: white noise around -60 dBFS, `secs` of 16 kHz S16_LE.
pub fn quiet_room(secs: f64, seed: u32) -> Vec<u8> {
    let mut x = seed | 1;
    (0..(secs * 16_000.0) as usize)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (((x >> 16) as i32 - 32_768) / 1_000) as i16
        })
        .flat_map(|s| s.to_le_bytes())
        .collect()
}

/// Where `needle` starts in `hay`, byte for byte.
pub fn find_bytes(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A fan or a fridge: brown-ish noise (leaky integration of white noise), `n` samples with an
/// RMS of about 1; scale it to the level wanted.
pub fn fan_noise(n: usize, seed: u32) -> Vec<f64> {
    let mut x = seed | 1;
    let mut y = 0.0;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            y = 0.98 * y + (f64::from(x >> 8) / f64::from(1u32 << 24) * 2.0 - 1.0);
            y / 2.9
        })
        .collect()
}

/// The tests' Python virtual environment from PyPI (`bash .ci/deps --test` makes it):
/// `$GEMLIVE_TEST_VENV`, default `~/.cache/gemlive-test/venv`.
pub fn venv() -> PathBuf {
    let v = std::env::var_os("GEMLIVE_TEST_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/gemlive-test/venv")
        });
    assert!(
        v.join("bin/python").exists(),
        "no test venv in {}: run `bash .ci/deps --test` (it installs the test clients from PyPI there)",
        v.display()
    );
    v
}

/// `gemlive ctl ARGS...` against the rig's daemon: exit code, the answer line as JSON (Null if
/// none), stderr.
pub fn ctl(rig: &gemlive::demo::Rig, args: &[&str]) -> (i32, Value, String) {
    let out = std::process::Command::new(exe())
        .arg("--config")
        .arg(&rig.config_path)
        .arg("ctl")
        .args(args)
        .env_remove("GEMLIVE_CONFIG")
        .output()
        .expect("gemlive ctl");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let v = serde_json::from_str(stdout.trim()).unwrap_or(Value::Null);
    (
        out.status.code().unwrap_or(-1),
        v,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Mic audio bytes and whether `audioStreamEnd` came on `conn` during `d`; the other client
/// messages go to `other`.
pub async fn mic_for(
    conn: &mut gemlive::standin::Conn,
    d: Duration,
    other: &mut Vec<Value>,
) -> (usize, bool) {
    let (mut bytes, mut ended) = (0, false);
    let end = tokio::time::Instant::now() + d;
    while tokio::time::Instant::now() < end {
        if let Ok(Some(FromClient::Json(v))) =
            tokio::time::timeout(Duration::from_millis(50), conn.recv()).await
        {
            if let Some(a) = client_audio(&v) {
                bytes += a.len();
            } else if v["realtimeInput"]["audioStreamEnd"] == true {
                ended = true;
            } else {
                other.push(v);
            }
        }
    }
    (bytes, ended)
}

/// A fresh share dir for a VM test (`$TMP/gemlive-NAME-PID`) holding copies of `files`
/// (paths under `tests/vm/`, copied by their file names).
pub fn vm_share(name: &str, files: &[&str]) -> PathBuf {
    let vm = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vm");
    let share = std::env::temp_dir().join(format!("gemlive-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&share);
    std::fs::create_dir_all(&share).unwrap();
    for f in files {
        let to = share.join(std::path::Path::new(f).file_name().unwrap());
        std::fs::copy(vm.join(f), to).unwrap();
    }
    share
}
