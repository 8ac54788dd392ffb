//! The owner's command tools, end to end: the real daemon, a stand-in that calls them, real
//! processes. Arguments full of shell syntax arrive byte for byte and run nothing; a tool past
//! its timeout is answered with an error in time and its processes are gone; a cancellation
//! kills a running tool and gets no answer; `confirm = true` refuses first and runs the repeat;
//! the mic keeps streaming throughout.

use std::path::Path;
use std::time::{Duration, Instant};

use gemlive::demo::Rig;
use serde_json::{json, Value};

use crate::support::{
    exe, pcm, tool_call as call, tool_response as response_for, PortServer, Seen, Server, KEY,
};

const SEC: usize = 32_000;

fn tools_toml(dir: &Path) -> String {
    let d = dir.display();
    format!(
        r#"
[tools]
[[tools.command]]
name = "note"
description = "Write a note."
command = ["sh", "-c", "printf '%s' \"$1\" > {d}/note.txt; cat > {d}/note.stdin; echo '{{\"saved\": true}}'", "sh", "{{text}}"]
parameters = {{ type = "object", properties = {{ text = {{ type = "string" }} }}, required = ["text"] }}

[[tools.command]]
name = "slow"
description = "Takes its time."
command = ["sh", "-c", "sleep 30 & echo $! > {d}/$1.pid; wait", "sh", "{{tag}}"]
parameters = {{ type = "object", properties = {{ tag = {{ type = "string" }} }} }}
timeout_s = 1

[[tools.command]]
name = "slower"
description = "Takes even longer."
command = ["sh", "-c", "sleep 30 & echo $! > {d}/slower.pid; wait"]
timeout_s = 20

[[tools.command]]
name = "door"
description = "Open the front door."
command = ["sh", "-c", "echo opened >> {d}/door.log"]
confirm = true
"#
    )
}

/// True once the process `pid` (from a pid file) has gone (or is a zombie awaiting its reaper).
fn gone(pidfile: &Path) -> bool {
    let Some(pid) = std::fs::read_to_string(pidfile)
        .ok()
        .and_then(|s| s.trim().parse::<i32>().ok())
    else {
        return false;
    };
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| s.contains(") Z"))
        .unwrap_or(true)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_tools_run_safely_off_the_loop() {
    let mut sv = Server::start().await;
    let mic = pcm(77, 30 * SEC);
    let scratch = std::env::temp_dir().join(format!("gemlive-tools-out-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).unwrap();
    let mut rig = Rig::new("tools-cmd", &mic, &sv.url, "", &tools_toml(&scratch)).unwrap();
    rig.spawn(&exe(), KEY, &[], None).unwrap();
    let mut seen = Seen::default();
    sv.ready(&mut seen, &[]).await;
    let decl = seen.setups[0]["setup"]["tools"][0]["functionDeclarations"].clone();
    let names: Vec<&str> = decl
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["name"].as_str())
        .collect();
    assert_eq!(
        names,
        [
            "end_session",
            "set_volume",
            "set_timer",
            "cancel_timer",
            "list_timers",
            "note",
            "slow",
            "slower",
            "door"
        ],
        "no `look` without a camera"
    );
    assert_eq!(
        decl[5]["parameters"]["properties"]["text"]["type"], "STRING",
        "{decl}"
    );

    // Shell syntax in an argument is data.
    let hostile = "$(touch PWNED1); `touch PWNED2` ; rm -rf / 'q' \"dq\" \\ \n end";
    sv.send(0, call("n1", "note", json!({"text": hostile})));
    assert!(
        sv.pump(&mut seen, Duration::from_secs(10), |s| response_for(
            s, "n1"
        )
        .is_some())
            .await
    );
    assert_eq!(
        response_for(&seen, "n1").unwrap()["response"],
        json!({"saved": true})
    );
    assert_eq!(
        std::fs::read_to_string(scratch.join("note.txt")).unwrap(),
        hostile
    );
    let stdin: Value =
        serde_json::from_str(&std::fs::read_to_string(scratch.join("note.stdin")).unwrap())
            .unwrap();
    assert_eq!(stdin, json!({"text": hostile}), "the arguments on stdin");
    for f in ["PWNED1", "PWNED2"] {
        assert!(!scratch.join(f).exists() && !rig.dir.join(f).exists() && !Path::new(f).exists());
    }

    // A tool past its timeout: an error within timeout + 1 s, its processes gone; the mic
    // streams on meanwhile.
    let audio_before = seen.audio[0].len();
    let t = Instant::now();
    sv.send(0, call("s1", "slow", json!({"tag": "s1"})));
    assert!(
        sv.pump(&mut seen, Duration::from_secs(5), |s| response_for(s, "s1")
            .is_some())
            .await
    );
    let took = t.elapsed();
    let r = response_for(&seen, "s1").unwrap();
    assert!(
        r["response"]["error"]
            .as_str()
            .unwrap_or("")
            .contains("did not finish within 1 s"),
        "{r}"
    );
    assert!(took < Duration::from_secs(2), "answered after {took:?}");
    assert!(
        crate::support::until(Duration::from_secs(2), || gone(&scratch.join("s1.pid"))).await,
        "the timed-out tool's child is still running"
    );
    let streamed = seen.audio[0].len() - audio_before;
    assert!(
        streamed as f64 >= 0.7 * took.as_secs_f64() * SEC as f64,
        "{streamed} bytes of mic audio in {took:?} while the tool ran"
    );

    // A cancellation kills the tool and is not answered.
    sv.send(0, call("c1", "slower", json!({})));
    assert!(
        crate::support::until(Duration::from_secs(5), || scratch
            .join("slower.pid")
            .exists())
        .await
    );
    sv.send(0, json!({"toolCallCancellation": {"ids": ["c1"]}}));
    assert!(
        crate::support::until(Duration::from_secs(2), || gone(&scratch.join("slower.pid"))).await,
        "the cancelled tool is still running"
    );
    sv.pump(&mut seen, Duration::from_millis(1_500), |_| false)
        .await;
    assert!(
        response_for(&seen, "c1").is_none(),
        "a cancelled call got an answer"
    );

    // confirm = true: refused first, the repeat runs.
    sv.send(0, call("d1", "door", json!({})));
    assert!(
        sv.pump(&mut seen, Duration::from_secs(5), |s| response_for(s, "d1")
            .is_some())
            .await
    );
    let r = response_for(&seen, "d1").unwrap();
    assert!(
        r["response"]["error"]
            .as_str()
            .unwrap_or("")
            .contains("confirm out loud"),
        "{r}"
    );
    assert!(
        !scratch.join("door.log").exists(),
        "ran without confirmation"
    );
    sv.send(0, call("d2", "door", json!({})));
    assert!(
        sv.pump(&mut seen, Duration::from_secs(5), |s| response_for(s, "d2")
            .is_some())
            .await
    );
    assert_eq!(
        std::fs::read_to_string(scratch.join("door.log")).unwrap(),
        "opened\n"
    );

    rig.terminate();
    let status = rig.wait(Duration::from_secs(10)).unwrap();
    let logs = rig.logs();
    assert!(status.success(), "{logs}");
    assert!(!logs.contains(KEY));
    assert!(logs.contains("tool call slow("), "{logs}");
    assert!(logs.contains("cancelled by the server"), "{logs}");
    for line in logs.lines() {
        assert!(!line.chars().any(char::is_control), "{line:?}");
    }
    let _ = std::fs::remove_dir_all(&scratch);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn look_sends_a_fresh_frame_before_its_answer() {
    let mut sv = Server::start().await;
    let mut rig = Rig::new("tools-look", &pcm(78, 20 * SEC), &sv.url, "", "").unwrap();
    let frames: Vec<u8> = (0..4).flat_map(gemlive::demo::camera_frame).collect();
    // Frames go out only while the user speaks: a look must not wait for that.
    rig.add_camera(&frames, "send = \"while_speaking\"\nfps = 0.05\n")
        .unwrap();
    rig.spawn(&exe(), KEY, &[], None).unwrap();
    let mut seen = Seen::default();
    sv.ready(&mut seen, &[]).await;
    let decl = seen.setups[0]["setup"]["tools"][0]["functionDeclarations"].to_string();
    assert!(decl.contains("\"look\""), "{decl}");
    sv.pump(&mut seen, Duration::from_secs(1), |_| false).await;
    seen.others.clear();
    sv.send(0, call("l1", "look", json!({})));
    assert!(
        sv.pump(&mut seen, Duration::from_secs(5), |s| response_for(s, "l1")
            .is_some())
            .await
    );
    let r = response_for(&seen, "l1").unwrap();
    assert!(r["response"]["result"].as_str().is_some(), "{r}");
    let at = seen
        .others
        .iter()
        .position(|(_, v)| v.get("toolResponse").is_some())
        .unwrap();
    let before = at
        .checked_sub(1)
        .and_then(|i| gemlive::standin::client_video(&seen.others[i].1))
        .expect("a camera frame right before the answer");
    assert_eq!(
        gemlive::video::jpeg::jpeg_size(&before),
        Some((768, 768)),
        "the frame as the pipeline makes it"
    );
    rig.terminate();
    assert!(rig.wait(Duration::from_secs(10)).unwrap().success());
}

/// Python's http.server on 127.0.0.1, echoing each request as JSON.
fn echo_server() -> PortServer {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/http/echo_server.py");
    PortServer::start(
        "python3".as_ref(),
        &[script.as_os_str()],
        "python3 runs (bash .ci/deps --test installs it)",
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_tools_call_a_local_server_with_the_token_unlogged() {
    use std::os::unix::fs::PermissionsExt;
    let web = echo_server();
    let mut sv = Server::start().await;
    let token = "tok-SECRET-0123456789";
    let dir = std::env::temp_dir().join(format!("gemlive-http-tools-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let token_file = dir.join("token");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let p = web.port;
    let tools = format!(
        r#"
[tools]
[[tools.http]]
name = "search"
description = "Search."
url = "http://127.0.0.1:{p}/search?q={{q}}"
parameters = {{ type = "object", properties = {{ q = {{ type = "string" }} }} }}
bearer_token_file = "{}"
headers = {{ X-Source = "gemlive" }}

[[tools.http]]
name = "hook"
description = "Post an event."
method = "POST"
url = "http://127.0.0.1:{p}/hook"
body = {{ text = "{{text}}", n = "{{n}}", fixed = true }}
parameters = {{ type = "object", properties = {{ text = {{ type = "string" }}, n = {{ type = "integer" }} }} }}

[[tools.http]]
name = "missing"
description = "Not there."
url = "http://127.0.0.1:{p}/status/404"
"#,
        token_file.display()
    );
    let mut rig = Rig::new("tools-http", &pcm(79, 20 * SEC), &sv.url, "", &tools).unwrap();
    rig.spawn(&exe(), KEY, &["-v"], None).unwrap();
    let mut seen = Seen::default();
    sv.ready(&mut seen, &[]).await;
    sv.send(0, call("h1", "search", json!({"q": "a b&c=d/é"})));
    sv.send(
        0,
        call("h2", "hook", json!({"text": "ring \"now\"", "n": 3})),
    );
    sv.send(0, call("h3", "missing", json!({})));
    assert!(
        sv.pump(&mut seen, Duration::from_secs(10), |s| ["h1", "h2", "h3"]
            .iter()
            .all(|id| response_for(s, id).is_some()))
            .await
    );
    let r = response_for(&seen, "h1").unwrap()["response"].clone();
    assert_eq!(r["status"], 200, "{r}");
    let b = &r["body"];
    assert_eq!(b["method"], "GET");
    assert_eq!(b["path"], "/search?q=a%20b%26c%3Dd%2F%C3%A9", "{b}");
    assert_eq!(b["headers"]["authorization"], format!("Bearer {token}"));
    assert_eq!(b["headers"]["x-source"], "gemlive");
    let r = response_for(&seen, "h2").unwrap()["response"].clone();
    assert_eq!(r["body"]["method"], "POST");
    let posted: Value = serde_json::from_str(r["body"]["body"].as_str().unwrap()).unwrap();
    assert_eq!(
        posted,
        json!({"text": "ring \"now\"", "n": 3, "fixed": true})
    );
    assert_eq!(r["body"]["headers"]["content-type"], "application/json");
    let r = response_for(&seen, "h3").unwrap()["response"].clone();
    assert_eq!(
        (r["error"].as_str(), r["status"].as_u64()),
        (Some("HTTP 404"), Some(404)),
        "{r}"
    );
    rig.terminate();
    assert!(rig.wait(Duration::from_secs(10)).unwrap().success());
    let logs = rig.logs();
    assert!(logs.contains("tool call search("), "{logs}");
    assert!(!logs.contains(token), "the bearer token is in the log");
    assert!(
        !logs.contains(&token[4..]),
        "part of the bearer token is in the log"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
