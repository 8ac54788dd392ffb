//! Running a `[[tools.command]]`: argv with the arguments put in (never through a shell), the
//! whole argument object on stdin, bounded output, a timeout, and a process group that is
//! killed whole when the call times out or is cancelled.

use std::process::Stdio;

use serde_json::{json, Map, Value};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use super::settings::CommandTool;

/// Standard output kept, at most; the rest is read and thrown away.
pub const MAX_OUTPUT_BYTES: usize = 16 << 10;
/// The end of standard error kept for an error response.
pub const STDERR_TAIL_BYTES: usize = 1 << 10;
/// Environment variables a tool must not inherit from the daemon.
const HIDDEN_ENV: &[&str] = &[
    "GEMINI_API_KEY",
    "CREDENTIALS_DIRECTORY",
    "NOTIFY_SOCKET",
    "WATCHDOG_USEC",
    "WATCHDOG_PID",
];

/// argv for one call: each `{name}` in an element becomes that argument's value (an absent
/// argument: empty text). Only declared parameter names are placeholders (the config checks
/// that every one is declared); other braces stay as written.
pub fn argv(tool: &CommandTool, args: &Map<String, Value>) -> Vec<String> {
    tool.command
        .iter()
        .map(|el| super::settings::fill(el, args, str::to_string))
        .collect()
}

/// A program started the way every tool process is: piped stdin/stdout/stderr, a process group
/// of its own (so it can be killed whole), killed if dropped, without the daemon's secrets in
/// its environment.
pub(crate) fn tool_process(
    program: impl AsRef<std::ffi::OsStr>,
    args: &[String],
) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    for k in HIDDEN_ENV {
        cmd.env_remove(k);
    }
    cmd
}

/// Kills the tool's whole process group when dropped (timeout, cancellation, daemon stop),
/// unless the tool has already been reaped: a shell script's children go too.
pub(crate) struct Group(pub(crate) Option<i32>);

impl Drop for Group {
    fn drop(&mut self) {
        if let Some(pgid) = self.0 {
            // SAFETY: kill(2) on a process group we created; no memory is involved.
            unsafe {
                libc::kill(-pgid, libc::SIGKILL);
            }
        }
    }
}

/// Reads all of `r`, keeping the first `keep` bytes (`tail = false`) or the last (`true`).
pub(crate) async fn read_bounded(
    mut r: impl AsyncRead + Unpin,
    keep: usize,
    tail: bool,
) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 8 << 10];
    let mut cut = false;
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                out.extend_from_slice(&buf[..n]);
                if out.len() > keep {
                    cut = true;
                    if tail {
                        out.drain(..out.len() - keep);
                    } else {
                        out.truncate(keep);
                    }
                }
            }
        }
    }
    (out, cut)
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs one call to completion (or to its timeout) and returns the `response` object.
pub async fn run(tool: &CommandTool, args: &Map<String, Value>) -> Value {
    let argv = argv(tool, args);
    let mut child = match tool_process(&argv[0], &argv[1..]).spawn() {
        Ok(c) => c,
        Err(e) => {
            return json!({"error": format!("the tool could not be started ({}): {e}", argv[0])})
        }
    };
    let mut group = Group(child.id().map(|p| p as i32));
    let stdin = child.stdin.take();
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let input = Value::Object(args.clone()).to_string();
    let work = async {
        let feed = async {
            if let Some(mut s) = stdin {
                // A tool that does not read stdin closes it: that is not an error.
                let _ = s.write_all(input.as_bytes()).await;
                let _ = s.shutdown().await;
            }
        };
        let out = async {
            match stdout {
                Some(s) => read_bounded(s, MAX_OUTPUT_BYTES, false).await,
                None => (Vec::new(), false),
            }
        };
        let err = async {
            match stderr {
                Some(s) => read_bounded(s, STDERR_TAIL_BYTES, true).await.0,
                None => Vec::new(),
            }
        };
        let ((), (out, cut), err) = tokio::join!(feed, out, err);
        let status = child.wait().await;
        (status, out, cut, err)
    };
    let Ok((status, out, cut, err)) = tokio::time::timeout(tool.timeout, work).await else {
        // `group` kills the process group as it goes out of scope.
        return json!({"error": format!("the tool did not finish within {} s and was stopped", tool.timeout.as_secs())});
    };
    let status = match status {
        Ok(s) => {
            // Reaped: the pid may be reused, so the group must not be signalled any more.
            group.0 = None;
            // Children left behind by the tool (still in its group) go with it.
            let _ = group;
            s
        }
        Err(e) => return json!({"error": format!("waiting for the tool: {e}")}),
    };
    if !status.success() {
        let why = match status.code() {
            Some(c) => format!("the tool failed with exit status {c}"),
            None => "the tool was killed by a signal".to_string(),
        };
        let err = lossy(&err);
        let err = err.trim();
        return if err.is_empty() {
            json!({"error": why})
        } else {
            json!({"error": format!("{why}: {err}")})
        };
    }
    let text = lossy(&out);
    if !cut {
        if let Ok(Value::Object(o)) = serde_json::from_str::<Value>(text.trim()) {
            return Value::Object(o);
        }
    }
    let text = text.trim_end();
    if cut {
        json!({"output": text, "truncated": true})
    } else {
        json!({"output": text})
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn tool(command: &[&str], timeout_s: u64) -> CommandTool {
        CommandTool {
            name: "t".into(),
            description: "d".into(),
            parameters: None,
            dropped: Vec::new(),
            command: command.iter().map(|s| s.to_string()).collect(),
            timeout: Duration::from_secs(timeout_s),
            confirm: false,
            non_blocking: false,
        }
    }

    fn args(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn placeholders_are_filled_as_text() {
        let t = tool(&["echo", "{a}", "n={n}", "{b}{missing}", "{ x}"], 1);
        assert_eq!(
            argv(
                &t,
                &args(json!({"a": "$(rm -rf /); `x` 'q' \"", "n": 3, "b": true}))
            ),
            ["echo", "$(rm -rf /); `x` 'q' \"", "n=3", "true", "{ x}"]
        );
    }

    #[tokio::test]
    async fn output_becomes_the_response() {
        let json_out = tool(&["sh", "-c", "echo '{\"temp\": 21.5}'"], 5);
        assert_eq!(run(&json_out, &Map::new()).await, json!({"temp": 21.5}));
        let text = tool(&["sh", "-c", "echo hello; echo there"], 5);
        assert_eq!(
            run(&text, &Map::new()).await,
            json!({"output": "hello\nthere"})
        );
        let stdin = tool(&["cat"], 5);
        assert_eq!(
            run(&stdin, &args(json!({"x": 1}))).await,
            json!({"x": 1}),
            "the arguments arrive on stdin as JSON"
        );
        let fails = tool(&["sh", "-c", "echo out; echo 'it broke' >&2; exit 3"], 5);
        assert_eq!(
            run(&fails, &Map::new()).await,
            json!({"error": "the tool failed with exit status 3: it broke"})
        );
        let big = tool(&["sh", "-c", "head -c 100000 /dev/zero | tr '\\0' x"], 5);
        let r = run(&big, &Map::new()).await;
        assert_eq!(r["truncated"], true);
        assert_eq!(r["output"].as_str().map(str::len), Some(MAX_OUTPUT_BYTES));
        let missing = tool(&["/nonexistent/tool"], 5);
        assert!(run(&missing, &Map::new()).await["error"]
            .as_str()
            .unwrap()
            .contains("could not be started"));
    }

    #[tokio::test]
    async fn a_timeout_kills_the_whole_group() {
        let dir = std::env::temp_dir().join(format!("gemlive-cmd-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pidfile = dir.join("pid");
        // A shell that starts a grandchild and waits: both must go.
        let script = format!("sleep 30 & echo $! > {}; wait", pidfile.display());
        let t = tool(&["sh", "-c", &script], 1);
        let start = std::time::Instant::now();
        let r = run(&t, &Map::new()).await;
        assert!(start.elapsed() < Duration::from_millis(1_500));
        assert!(r["error"].as_str().unwrap().contains("within 1 s"), "{r}");
        let pid: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let gone = (0..50).any(|_| {
            std::thread::sleep(Duration::from_millis(20));
            // SAFETY: signal 0 only checks that the pid exists.
            let alive = unsafe { libc::kill(pid, 0) } == 0;
            let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map(|s| s.contains(") Z"))
                .unwrap_or(true);
            !alive || zombie
        });
        assert!(gone, "the grandchild {pid} outlived the timeout");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
