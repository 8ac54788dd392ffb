//! MCP servers nobody here wrote, end to end: `mcp-server-time` from PyPI over stdio and a
//! Streamable-HTTP server made with the Python `mcp` SDK, behind its own bearer-token check.
//! The real daemon declares their tools to the stand-in, calls them, gets their answers and
//! errors, cancels a call, restarts a stdio server that died, and keeps the mic streaming; a
//! wrong token is a clear error at start-up and in `gemlive tools`.
//!
//! The servers live in a private virtual environment made by `bash .ci/deps --test` (at
//! `$GEMLIVE_TEST_VENV`, default `~/.cache/gemlive-test/venv`).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use gemlive::demo::Rig;
use serde_json::{json, Value};

use crate::support::{
    exe, pcm, tool_call as call, tool_response, until, PortServer, Seen, Server, KEY,
};

const SEC: usize = 32_000;

/// The test servers' virtual environment, with the MCP servers in it.
fn venv() -> PathBuf {
    let v = crate::support::venv();
    assert!(
        v.join("bin/mcp-server-time").exists(),
        "no MCP test servers in {}: run `bash .ci/deps --test` (it installs mcp and mcp-server-time from PyPI there)",
        v.display()
    );
    v
}

/// The Python SDK's Streamable-HTTP server on 127.0.0.1 (tests/fixtures/mcp/http_server.py),
/// accepting the token in `token_file`; killed on drop (with its [`PortServer`]).
struct HttpMcp {
    _server: PortServer,
    url: String,
}

impl HttpMcp {
    fn start(token_file: &Path) -> HttpMcp {
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mcp/http_server.py");
        let python = venv().join("bin/python");
        let server = PortServer::start(
            python.as_os_str(),
            &[script.as_os_str(), token_file.as_os_str()],
            "the venv's python runs",
        );
        let port = server.port;
        let url = format!("http://127.0.0.1:{port}/mcp");
        // Serving starts right after the port is printed; wait until it accepts.
        let end = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(50));
        }
        HttpMcp {
            _server: server,
            url,
        }
    }
}

fn secret(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, format!("{text}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    p
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("gemlive-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn names(setup: &Value) -> Vec<String> {
    setup["setup"]["tools"][0]["functionDeclarations"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|d| d["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn declaration(setup: &Value, name: &str) -> Value {
    setup["setup"]["tools"][0]["functionDeclarations"]
        .as_array()
        .and_then(|a| a.iter().find(|d| d["name"] == name).cloned())
        .unwrap_or(Value::Null)
}

/// The `response` the daemon sent for the call `id`.
fn response_for(seen: &Seen, id: &str) -> Option<Value> {
    tool_response(seen, id).map(|r| r["response"].clone())
}

fn pid_in(file: &Path) -> Option<i32> {
    std::fs::read_to_string(file).ok()?.trim().parse().ok()
}

fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_servers_are_declared_called_cancelled_and_restarted() {
    let venv = venv();
    let dir = scratch("mcp-run");
    let token = "mcp-tok-SECRET-5551234";
    let good = secret(&dir, "token", token);
    let bad = secret(&dir, "wrong-token", "not-the-token");
    let web = HttpMcp::start(&good);
    let mut sv = Server::start().await;
    // The stdio server writes its pid first (exec keeps it), so the test can kill it.
    let tools = format!(
        r#"
[tools]
[[tools.mcp]]
name = "time"
command = ["sh", "-c", "echo $$ > {d}/time.pid; exec {v}/bin/mcp-server-time --local-timezone Etc/UTC"]
deny = ["convert_time"]
timeout_s = 20

[[tools.mcp]]
name = "web"
url = "{u}"
bearer_token_file = "{g}"
timeout_s = 20

[[tools.mcp]]
name = "locked"
url = "{u}"
bearer_token_file = "{b}"
"#,
        d = dir.display(),
        v = venv.display(),
        u = web.url,
        g = good.display(),
        b = bad.display(),
    );
    let mut rig = Rig::new("mcp-run", &pcm(81, 60 * SEC), &sv.url, "", &tools).unwrap();
    rig.spawn(&exe(), KEY, &["-v"], None).unwrap();
    let mut seen = Seen::default();
    sv.ready(&mut seen, &[]).await;
    // The servers answer while the first connection opens; once their tools are known, the
    // daemon moves to a connection that declares them.
    let declares_all = |x: &Value| {
        let n = names(x);
        n.iter().any(|t| t == "get_current_time") && n.iter().any(|t| t == "add")
    };
    // Every new connection's setup is answered, as the real server would.
    let end = Instant::now() + Duration::from_secs(40);
    let mut answered = 1;
    while !seen.setups.iter().any(declares_all) && Instant::now() < end {
        sv.pump(&mut seen, Duration::from_millis(200), |s| {
            s.setups.len() > answered
        })
        .await;
        while answered < seen.setups.len() {
            sv.send(answered, gemlive::standin::setup_complete());
            answered += 1;
        }
    }
    assert!(
        seen.setups.iter().any(declares_all),
        "no setup declared the MCP tools: {:?}\n{}",
        seen.setups.iter().map(names).collect::<Vec<_>>(),
        rig.logs()
    );
    let conn = seen.setups.iter().position(declares_all).unwrap();
    let setup = seen.setups[conn].clone();
    let n = names(&setup);
    assert!(
        !n.iter().any(|t| t == "convert_time"),
        "deny is obeyed: {n:?}"
    );
    for t in [
        "end_session",
        "get_current_time",
        "add",
        "shout",
        "fail",
        "wait",
    ] {
        assert_eq!(n.iter().filter(|x| *x == t).count(), 1, "{t} once in {n:?}");
    }
    let tz = declaration(&setup, "get_current_time");
    assert_eq!(
        tz["parameters"]["properties"]["timezone"]["type"], "STRING",
        "{tz}"
    );
    assert_eq!(tz["parameters"]["required"], json!(["timezone"]), "{tz}");
    assert!(
        tz["parameters"].get("title").is_none(),
        "JSON Schema's title is left out: {tz}"
    );

    // Calls: the servers' own answers and errors. The mic streams meanwhile.
    let audio_before = seen.audio[conn].len();
    let t0 = Instant::now();
    sv.send(
        conn,
        call("t1", "get_current_time", json!({"timezone": "Asia/Tokyo"})),
    );
    sv.send(
        conn,
        call(
            "t2",
            "get_current_time",
            json!({"timezone": "Mars/Olympus_Mons"}),
        ),
    );
    sv.send(conn, call("h1", "add", json!({"a": 2, "b": 40})));
    sv.send(conn, call("h2", "fail", json!({"reason": "testing"})));
    sv.send(conn, call("h3", "wait", json!({"seconds": 30})));
    assert!(
        sv.pump(&mut seen, Duration::from_secs(20), |s| [
            "t1", "t2", "h1", "h2"
        ]
        .iter()
        .all(|id| response_for(s, id).is_some()))
            .await,
        "{}",
        rig.logs()
    );
    let t1 = response_for(&seen, "t1").unwrap();
    assert_eq!(t1["timezone"], "Asia/Tokyo", "{t1}");
    assert!(
        t1["datetime"].as_str().unwrap_or("").ends_with("+09:00"),
        "{t1}"
    );
    let t2 = response_for(&seen, "t2").unwrap();
    assert!(
        t2["error"]
            .as_str()
            .unwrap_or("")
            .contains("Invalid timezone"),
        "{t2}"
    );
    assert_eq!(response_for(&seen, "h1").unwrap(), json!({"result": 42}));
    let h2 = response_for(&seen, "h2").unwrap();
    assert!(h2["error"].as_str().is_some(), "{h2}");
    // The 30 s call is cancelled by the server: no answer.
    sv.send(conn, json!({"toolCallCancellation": {"ids": ["h3"]}}));
    sv.pump(&mut seen, Duration::from_secs(2), |_| false).await;
    assert!(
        response_for(&seen, "h3").is_none(),
        "a cancelled call got an answer"
    );
    let took = t0.elapsed();
    let streamed = seen.audio[conn].len() - audio_before;
    assert!(
        streamed as f64 >= 0.7 * took.as_secs_f64() * SEC as f64,
        "{streamed} bytes of mic audio in {took:?} while the tools ran"
    );

    // The stdio server dies: it is started again and answers again.
    let first = pid_in(&dir.join("time.pid")).expect("the stdio server wrote its pid");
    std::fs::remove_file(dir.join("time.pid")).unwrap();
    // SAFETY: kill(2) on the test's own child process; no memory is involved.
    unsafe {
        libc::kill(first, libc::SIGKILL);
    }
    assert!(
        until(Duration::from_secs(20), || pid_in(&dir.join("time.pid"))
            .is_some())
        .await,
        "the stdio server was not started again: {}",
        rig.logs()
    );
    let second = pid_in(&dir.join("time.pid")).unwrap();
    assert_ne!(first, second);
    let mut answered = false;
    for i in 0..20 {
        let id = format!("r{i}");
        sv.send(
            conn,
            call(&id, "get_current_time", json!({"timezone": "Europe/Paris"})),
        );
        assert!(
            sv.pump(&mut seen, Duration::from_secs(20), |s| response_for(s, &id)
                .is_some())
                .await
        );
        if response_for(&seen, &id).unwrap()["timezone"] == "Europe/Paris" {
            answered = true;
            break;
        }
        sv.pump(&mut seen, Duration::from_millis(500), |_| false)
            .await;
    }
    assert!(
        answered,
        "the restarted server never answered: {}",
        rig.logs()
    );

    rig.terminate();
    let status = rig.wait(Duration::from_secs(10)).unwrap();
    let logs = rig.logs();
    assert!(status.success(), "{logs}");
    assert!(
        until(Duration::from_secs(5), || !alive(second)).await,
        "the stdio server outlived the daemon"
    );
    assert!(
        logs.contains(&format!(
            "MCP server `locked`: the server refused the credentials (HTTP 401): check the token in {}",
            bad.display()
        )),
        "{logs}"
    );
    assert!(logs.contains("MCP server `time` stopped"), "{logs}");
    assert!(logs.contains("tool call get_current_time("), "{logs}");
    assert!(logs.contains("cancelled by the server"), "{logs}");
    assert!(
        !logs.contains(token) && !logs.contains(&token[4..]),
        "the token is in the log"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn gemlive_tools_asks_the_servers_and_names_a_refused_token() {
    let venv = venv();
    let dir = scratch("mcp-cli");
    let good = secret(&dir, "token", "cli-token-77");
    let bad = secret(&dir, "wrong", "nope");
    let web = HttpMcp::start(&good);
    let config = dir.join("gemlive.toml");
    let write = |extra: &str| {
        std::fs::write(
            &config,
            format!(
                r#"
[tools]
[[tools.mcp]]
name = "time"
command = ["{v}/bin/mcp-server-time"]
[[tools.mcp]]
name = "web"
url = "{u}"
bearer_token_file = "token"
{extra}"#,
                v = venv.display(),
                u = web.url
            ),
        )
        .unwrap();
    };
    let run = |args: &[&str]| {
        let mut c = std::process::Command::new(exe());
        c.arg("--config").arg(&config).args(args);
        for k in [
            "GEMINI_API_KEY",
            "GEMLIVE_CONFIG",
            "NOTIFY_SOCKET",
            "JOURNAL_STREAM",
        ] {
            c.env_remove(k);
        }
        let o = c.output().expect("gemlive runs");
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    write("");
    let (code, out, err) = run(&["tools"]);
    assert_eq!(code, Some(0), "{out}\n{err}");
    for t in [
        "\"get_current_time\"",
        "\"convert_time\"",
        "\"add\"",
        "\"wait\"",
    ] {
        assert!(out.contains(t), "{t} missing:\n{out}");
    }
    let (code, out, _) = run(&["call-tool", "add", r#"{"a": 20, "b": 22}"#]);
    assert_eq!(code, Some(0));
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap(),
        json!({"result": 42})
    );
    let (code, out, _) = run(&[
        "call-tool",
        "get_current_time",
        r#"{"timezone": "Nowhere/Land"}"#,
    ]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("Invalid timezone"), "{out}");

    write(&format!(
        "[[tools.mcp]]\nname = \"locked\"\nurl = \"{}\"\nbearer_token_file = \"{}\"\n",
        web.url,
        bad.display()
    ));
    let (code, out, err) = run(&["tools"]);
    assert_eq!(code, Some(78), "{out}\n{err}");
    assert!(
        err.contains(&format!(
            "problem: MCP server `locked`: the server refused the credentials (HTTP 401): check the token in {}",
            bad.display()
        )),
        "{err}"
    );
    assert!(
        out.contains("\"add\""),
        "the other servers' tools are still listed:\n{out}"
    );
    // A server that dies at start: its last words are in the error.
    write("[[tools.mcp]]\nname = \"broken\"\ncommand = [\"sh\", \"-c\", \"echo 'No module named boom' >&2; exit 3\"]\n");
    let (code, out, err) = run(&["tools"]);
    assert_eq!(code, Some(78), "{out}\n{err}");
    assert!(
        err.contains("problem: MCP server `broken`: the server stopped: it exited (exit status: 3); its last words: No module named boom"),
        "{err}"
    );
    // check-config does not start servers, but checks what it can offline.
    write("[[tools.mcp]]\nname = \"gone\"\ncommand = [\"/nonexistent/mcp-server\"]\n");
    let (code, out, err) = run(&["check-config"]);
    assert_eq!(code, Some(78), "{out}\n{err}");
    assert!(err.contains("MCP server `gone`"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
