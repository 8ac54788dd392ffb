//! Command line: `gemlive [--config PATH] [-v] <run | check-config | list-devices | demo>`.

use std::path::PathBuf;

pub const USAGE: &str = "\
usage: gemlive [--config PATH] [-v|-vv] <command>

commands:
  run            stream the microphone to the Gemini Live API and play the replies
  check-config   validate the config file and print the effective settings
  list-devices   list ALSA PCMs with the rates, formats and channels they accept
  demo           one complete voice session against a built-in local stand-in,
                 with file-backed audio devices (no sound card, no API key);
                 writes demo-speaker.wav

options:
  -c, --config PATH   config file (default: $GEMLIVE_CONFIG, then /etc/gemlive/gemlive.toml)
  -v, --verbose       more log output (-vv: debug); or set GEMLIVE_LOG=debug
  -h, --help          this text
  -V, --version       print the version
";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Run,
    CheckConfig,
    ListDevices,
    Demo,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    Go(Cli),
    Help,
    Version,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cli {
    pub config: Option<PathBuf>,
    pub verbose: u8,
    pub command: Command,
}

pub fn parse<I>(args: I) -> Result<Parsed, lexopt::Error>
where
    I: IntoIterator,
    I::Item: Into<std::ffi::OsString>,
{
    use lexopt::prelude::*;
    let mut p = lexopt::Parser::from_args(args);
    let mut config = None;
    let mut verbose = 0u8;
    let mut command = None;
    while let Some(arg) = p.next()? {
        match arg {
            Short('c') | Long("config") => config = Some(PathBuf::from(p.value()?)),
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
                    other => {
                        return Err(lexopt::Error::Custom(
                            format!("unknown command `{other}` (expected run, check-config, list-devices or demo)").into(),
                        ))
                    }
                });
            }
            _ => return Err(arg.unexpected()),
        }
    }
    let command = command.ok_or_else(|| {
        lexopt::Error::Custom("missing command (run, check-config, list-devices or demo)".into())
    })?;
    Ok(Parsed::Go(Cli {
        config,
        verbose,
        command,
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
        assert!(parse(["frobnicate"]).is_err());
        assert!(parse(Vec::<&str>::new()).is_err());
        assert_eq!(parse(["-h"]).ok(), Some(Parsed::Help));
    }
}
