//! Command line: `gemlive [--config PATH] [-v] <command> [options]`.

use std::path::PathBuf;

pub const USAGE: &str = "\
usage: gemlive [--config PATH] [-v|-vv] <command> [command options]

commands:
  run            stream the microphone to the Gemini Live API and play the replies
  check-config   validate the config file and print the effective settings
                 --online: also open a real session with the configured key, model and
                 endpoint, then close it (reports the server's exact reason on failure)
  list-devices   list ALSA PCMs (rates, formats, channels) and V4L2 cameras (MJPEG modes)
  test-audio     record from the configured microphone, report level and clipping, then
                 play the recording back on the configured speaker
                 --seconds N (default 3), --no-playback, --out FILE.wav (keep the recording)
  test-wake      listen on the configured microphone for the wake word of [wake] and print
                 each detection and the best score (say the phrase a few times), to tune
                 [wake] cutoff; --seconds N (default 10)
  snapshot       capture one camera frame through the full pipeline and write it as a JPEG
                 (--out FILE, default snapshot.jpg)
  calibrate-echo play a test signal on the configured speaker, record the mic, and report
                 the acoustic delay, echo level and ERLE, with warnings about what
                 defeats echo cancellation
  tools          list every tool exactly as the model is offered it
  call-tool NAME [JSON]
                 run one tool here and print its answer, e.g.
                 gemlive call-tool garage_door '{\"action\": \"open\"}' (confirm is skipped)
  ctl COMMAND    talk to the running daemon over [service] control_socket: wake, end,
                 interrupt, mute, unmute, volume N, announce TEXT, silence (a ringing
                 timer), status; `ctl events` prints every event (state, mute, volume,
                 heard, said, tool, timer, wake, error) as a JSON line until it stops
  reload PID     make the running daemon (process PID) re-read its config file and wait
                 until it has: exits 0 once the new file is in force, 1 with the reason
                 when it was refused (the old one stays); the unit's ExecReload
  demo           one complete voice session against a built-in local stand-in,
                 with file-backed audio devices (no sound card, no API key);
                 writes demo-speaker.wav
  bench WORKLOAD measure this board: `frame [WxH] [N]` (a camera frame through the video
                 pipeline), `audio [SECONDS]` (echo cancellation while a reply plays),
                 `stream [SECONDS]` / `stream-audio [SECONDS]` (the whole daemon streaming
                 to a local stand-in, with / without a camera); prints CPU time per unit

options:
  -c, --config PATH   config file (default: $GEMLIVE_CONFIG, then /etc/gemlive/gemlive.toml)
  -v, --verbose       more log output (-v: debug, -vv: trace); or GEMLIVE_LOG=debug
  -h, --help          this text
  -V, --version       print the version
";

const COMMANDS: &str =
    "run, check-config, list-devices, test-audio, test-wake, snapshot, calibrate-echo, tools, call-tool, ctl, reload, demo or bench";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Run,
    CheckConfig,
    ListDevices,
    Demo,
    Snapshot,
    TestAudio,
    TestWake,
    CalibrateEcho,
    Tools,
    CallTool,
    Ctl,
    Reload,
    Bench,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    Go(Cli),
    Help,
    Version,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Cli {
    pub config: Option<PathBuf>,
    /// `snapshot --out FILE`, `test-audio --out FILE.wav`.
    pub out: Option<PathBuf>,
    /// `check-config --online`.
    pub online: bool,
    /// `test-audio --seconds N`.
    pub seconds: Option<f64>,
    /// `test-audio --no-playback`.
    pub no_playback: bool,
    pub verbose: u8,
    pub command: Command,
    /// `call-tool NAME [JSON]`.
    pub tool: Option<String>,
    pub tool_args: Option<String>,
    /// `ctl WORDS...`.
    pub ctl: Vec<String>,
    /// `reload PID`.
    pub pid: Option<i32>,
    /// `bench WORKLOAD [ARGS]`.
    pub bench: Vec<String>,
}

pub fn parse<I>(args: I) -> Result<Parsed, lexopt::Error>
where
    I: IntoIterator,
    I::Item: Into<std::ffi::OsString>,
{
    use lexopt::prelude::*;
    let mut p = lexopt::Parser::from_args(args);
    let mut config = None;
    let mut out = None;
    let mut online = false;
    let mut seconds = None;
    let mut no_playback = false;
    let mut verbose = 0u8;
    let mut command = None;
    let mut tool = None;
    let mut tool_args = None;
    let mut ctl = Vec::new();
    let mut pid = None;
    let mut bench = Vec::new();
    while let Some(arg) = p.next()? {
        match arg {
            Short('c') | Long("config") => config = Some(PathBuf::from(p.value()?)),
            Short('o') | Long("out") => out = Some(PathBuf::from(p.value()?)),
            Long("online") => online = true,
            Long("no-playback") => no_playback = true,
            Long("seconds") => {
                let v: f64 = p.value()?.parse()?;
                if !(0.5..=60.0).contains(&v) {
                    return Err(lexopt::Error::Custom(
                        format!("--seconds {v}: expected 0.5 to 60").into(),
                    ));
                }
                seconds = Some(v);
            }
            Short('v') | Long("verbose") => verbose = verbose.saturating_add(1),
            Short('h') | Long("help") => return Ok(Parsed::Help),
            Short('V') | Long("version") => return Ok(Parsed::Version),
            Value(v) if command.is_none() => {
                let v = v.string()?;
                command = Some(match v.as_str() {
                    "run" => Command::Run,
                    "check-config" => Command::CheckConfig,
                    "list-devices" => Command::ListDevices,
                    "demo" => Command::Demo,
                    "snapshot" => Command::Snapshot,
                    "test-audio" => Command::TestAudio,
                    "test-wake" => Command::TestWake,
                    "calibrate-echo" => Command::CalibrateEcho,
                    "tools" => Command::Tools,
                    "call-tool" => Command::CallTool,
                    "ctl" => Command::Ctl,
                    "reload" => Command::Reload,
                    "bench" => Command::Bench,
                    other => {
                        return Err(lexopt::Error::Custom(
                            format!("unknown command `{other}` (expected {COMMANDS})").into(),
                        ))
                    }
                });
            }
            Value(v) if command == Some(Command::CallTool) && tool.is_none() => {
                tool = Some(v.string()?);
            }
            Value(v) if command == Some(Command::CallTool) && tool_args.is_none() => {
                tool_args = Some(v.string()?);
            }
            Value(v) if command == Some(Command::Reload) && pid.is_none() => {
                let v = v.string()?;
                pid = Some(v.parse::<i32>().ok().filter(|p| *p > 0).ok_or_else(|| {
                    lexopt::Error::Custom(
                        format!("reload {v}: expected the daemon's process id").into(),
                    )
                })?);
            }
            Value(v) if command == Some(Command::Bench) && bench.len() < 4 => {
                bench.push(v.string()?)
            }
            // `announce` takes the rest of the line as its text (bounded by the daemon).
            Value(v)
                if command == Some(Command::Ctl)
                    && (ctl.len() < 2 || ctl.first().is_some_and(|c| c == "announce"))
                    && ctl.len() < 200 =>
            {
                ctl.push(v.string()?)
            }
            _ => return Err(arg.unexpected()),
        }
    }
    let command = command
        .ok_or_else(|| lexopt::Error::Custom(format!("missing command ({COMMANDS})").into()))?;
    let only = |flag: &str, with: &str| {
        Err(lexopt::Error::Custom(
            format!("{flag} only goes with `{with}`").into(),
        ))
    };
    if out.is_some() && !matches!(command, Command::Snapshot | Command::TestAudio) {
        return only("--out", "snapshot` or `test-audio");
    }
    if command == Command::CallTool && tool.is_none() {
        return Err(lexopt::Error::Custom(
            "call-tool needs the tool's name, e.g. gemlive call-tool NAME '{\"arg\": 1}'".into(),
        ));
    }
    if command == Command::Reload && pid.is_none() {
        return Err(lexopt::Error::Custom(
            "reload needs the daemon's process id, e.g. gemlive reload $MAINPID".into(),
        ));
    }
    if online && command != Command::CheckConfig {
        return only("--online", "check-config");
    }
    if no_playback && command != Command::TestAudio {
        return only("--no-playback", "test-audio");
    }
    if seconds.is_some() && !matches!(command, Command::TestAudio | Command::TestWake) {
        return only("--seconds", "test-audio` or `test-wake");
    }
    Ok(Parsed::Go(Cli {
        config,
        out,
        online,
        seconds,
        no_playback,
        verbose,
        command,
        tool,
        tool_args,
        ctl,
        pid,
        bench,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn go(args: &[&str]) -> Cli {
        match parse(args.iter().copied()) {
            Ok(Parsed::Go(c)) => c,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn parses_commands_and_options() {
        let c = go(&["--config", "/x.toml", "-vv", "run"]);
        assert_eq!(c.config, Some(PathBuf::from("/x.toml")));
        assert_eq!((c.verbose, c.command), (2, Command::Run));
        assert_eq!(
            go(&["check-config", "-c", "a"]).command,
            Command::CheckConfig
        );
        assert_eq!(go(&["list-devices"]).command, Command::ListDevices);
        assert_eq!(go(&["demo"]).command, Command::Demo);
        assert_eq!(go(&["calibrate-echo"]).command, Command::CalibrateEcho);
        let s = go(&["snapshot", "--out", "/tmp/x.jpg"]);
        assert_eq!(
            (s.command, s.out),
            (Command::Snapshot, Some(PathBuf::from("/tmp/x.jpg")))
        );
        assert!(parse(["run", "--out", "x"]).is_err());
        let c = go(&["check-config", "--online"]);
        assert!(c.online);
        assert!(parse(["run", "--online"]).is_err());
        let t = go(&[
            "test-audio",
            "--seconds",
            "2.5",
            "--no-playback",
            "--out",
            "m.wav",
        ]);
        assert_eq!(
            (t.command, t.seconds, t.no_playback),
            (Command::TestAudio, Some(2.5), true)
        );
        assert!(parse(["test-audio", "--seconds", "0"]).is_err());
        assert!(parse(["test-audio", "--seconds", "x"]).is_err());
        assert!(parse(["demo", "--seconds", "3"]).is_err());
        assert!(parse(["frobnicate"]).is_err());
        let b = go(&["bench", "frame", "1920x1080", "3"]);
        assert_eq!((b.command, b.bench.len()), (Command::Bench, 3));
        assert!(parse(["bench", "a", "b", "c", "d", "e"]).is_err());
        assert!(parse(Vec::<&str>::new()).is_err());
        assert_eq!(parse(["-h"]).ok(), Some(Parsed::Help));
    }
}
