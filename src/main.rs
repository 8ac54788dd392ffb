//! The `gemlive` binary: parse the command line, load the config, run a command, map the
//! outcome to an exit code (0 ok, 1 runtime failure, 2 usage, 78 configuration).

use std::path::PathBuf;
use std::process::ExitCode;

use gemlive::cli::{self, Command, Parsed};
use gemlive::config;
use gemlive::service::{self, error_chain};

/// sysexits' EX_CONFIG: the unit can set RestartPreventExitStatus=78 instead of looping.
const EX_CONFIG: u8 = 78;

fn env(k: &str) -> Option<String> {
    std::env::var(k).ok()
}

fn main() -> ExitCode {
    let cli = match cli::parse(std::env::args_os().skip(1)) {
        Ok(Parsed::Go(c)) => c,
        Ok(Parsed::Help) => {
            print!("{}", cli::USAGE);
            return ExitCode::SUCCESS;
        }
        Ok(Parsed::Version) => {
            println!("gemlive {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("gemlive: {e}\n\n{}", cli::USAGE);
            return ExitCode::from(2);
        }
    };
    // GEMLIVE_LOG, then -v, then (for `run`) [service] log_level once the file is read.
    let forced = env("GEMLIVE_LOG")
        .and_then(|s| service::parse_level(&s))
        .or(match cli.verbose {
            0 => None,
            1 => Some(log::LevelFilter::Debug),
            _ => Some(log::LevelFilter::Trace),
        });
    service::init_logging(forced.unwrap_or(log::LevelFilter::Info));
    let path = cli
        .config
        .clone()
        .unwrap_or_else(|| config::default_config_path(env));

    match cli.command {
        Command::CheckConfig if cli.online => check_online(&path),
        Command::CheckConfig => check_config(&path),
        Command::TestAudio => test_audio(
            &path,
            cli.seconds.unwrap_or(3.0),
            !cli.no_playback,
            cli.out.as_deref(),
        ),
        Command::TestWake => test_wake(&path, cli.seconds.unwrap_or(10.0)),
        Command::ListDevices => list_devices(&path),
        Command::Run => run(&path, forced.is_some()),
        Command::Demo => demo(),
        Command::Bench => match gemlive::bench::run_words(&cli.bench) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("gemlive bench: {}", error_chain(e.as_ref()));
                ExitCode::FAILURE
            }
        },
        Command::Tools => list_tools(&path),
        Command::CallTool => call_tool(
            &path,
            cli.tool.as_deref().unwrap_or(""),
            cli.tool_args.as_deref(),
        ),
        Command::CalibrateEcho => calibrate_echo(&path),
        Command::Ctl => ctl(&path, &cli.ctl),
        Command::Reload => reload(cli.pid.unwrap_or(0)),
        Command::Snapshot => snapshot(
            &path,
            cli.out
                .clone()
                .unwrap_or_else(|| PathBuf::from("snapshot.jpg")),
        ),
    }
}

/// The config file, or the exit status for a file that does not load (its error printed).
fn load(path: &std::path::Path) -> Result<config::Config, ExitCode> {
    config::load(path).map_err(|e| {
        eprintln!("{e}");
        ExitCode::from(EX_CONFIG)
    })
}

fn check_config(path: &std::path::Path) -> ExitCode {
    match check_offline(path) {
        Ok(_) => ExitCode::SUCCESS,
        Err(code) => code,
    }
}

/// Validates the file and the key, printing the effective settings; the config when both pass.
fn check_offline(path: &std::path::Path) -> Result<config::Config, ExitCode> {
    let cfg = load(path)?;
    let key = if cfg.live.auth == config::Auth::Ephemeral {
        Ok(None)
    } else {
        config::api_key_status(&cfg.live, env)
    };
    print!("{}", config::summary(&cfg, &key));
    for w in config::warnings(&cfg) {
        println!("warning: {w}");
    }
    let (problems, notes) = gemlive::tools::check(&cfg.tools);
    for n in &notes {
        println!("note: {n}");
    }
    for p in &problems {
        eprintln!("{}: {p}", path.display());
    }
    if let Err(e) = key {
        eprintln!("{e}");
        return Err(ExitCode::from(EX_CONFIG));
    }
    if !problems.is_empty() {
        return Err(ExitCode::from(EX_CONFIG));
    }
    // The token source's bearer file, and the broker's password and CA files, are read as
    // the daemon would read them.
    if cfg.live.auth == config::Auth::Ephemeral {
        if let Err(e) = gemlive::daemon::token_source(&cfg.live) {
            eprintln!("{}: {}", path.display(), error_chain(e.as_ref()));
            return Err(ExitCode::from(EX_CONFIG));
        }
    }
    if let Err(e) = gemlive::daemon::mqtt_settings(&cfg)
        .and_then(|s| s.map_or(Ok(()), |s| gemlive::mqtt::check(&s)))
    {
        eprintln!("{}: mqtt: {e}", path.display());
        return Err(ExitCode::from(EX_CONFIG));
    }
    Ok(cfg)
}

/// `tools`: every tool as the model is offered it, with what its schema lost.
fn list_tools(path: &std::path::Path) -> ExitCode {
    let cfg = match load(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let mut tb = gemlive::tools::Toolbox::new(&cfg.tools, cfg.video.enabled);
    // MCP servers are started and asked, as the daemon would; their failures are problems.
    let mut mcp_problems = Vec::new();
    let mut mcp_notes = Vec::new();
    let rt = if cfg.tools.mcp.is_empty() {
        None
    } else {
        match runtime() {
            Ok(rt) => Some(rt),
            Err(e) => {
                eprintln!("gemlive: cannot start the async runtime: {e}");
                return ExitCode::FAILURE;
            }
        }
    };
    if let Some(rt) = &rt {
        rt.block_on(async {
            tb.start_mcp();
            if let Some(hub) = tb.hub() {
                hub.wait_settled(gemlive::tools::mcp_start_limit(&cfg.tools))
                    .await;
                for (name, up, error, notes) in hub.report() {
                    match (up, error) {
                        (true, _) => {}
                        (false, Some(e)) => mcp_problems.push(format!("MCP server `{name}`: {e}")),
                        (false, None) => {
                            mcp_problems.push(format!("MCP server `{name}` did not answer in time"))
                        }
                    }
                    mcp_notes.extend(
                        notes
                            .into_iter()
                            .map(|n| format!("MCP server `{name}`: {n}")),
                    );
                }
            }
        });
    }
    let decls: Vec<serde_json::Value> = tb
        .declarations()
        .unwrap_or_default()
        .into_iter()
        .flat_map(|t| {
            t["functionDeclarations"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .collect();
    if decls.is_empty() {
        println!(
            "no tools: the model is offered none ([tools] builtin = false and no tool declared)"
        );
    }
    for d in &decls {
        println!(
            "{}",
            serde_json::to_string_pretty(d).unwrap_or_else(|_| d.to_string())
        );
    }
    let (mut problems, mut notes) = gemlive::tools::check(&cfg.tools);
    notes.extend(mcp_notes);
    problems.extend(mcp_problems);
    for n in &notes {
        println!("note: {n}");
    }
    for p in &problems {
        eprintln!("problem: {p}");
    }
    let code = if problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EX_CONFIG)
    };
    // The servers' links and processes go with the runtime; do not wait for them.
    drop(tb);
    if let Some(rt) = rt {
        rt.shutdown_timeout(std::time::Duration::from_secs(1));
    }
    code
}

/// `call-tool NAME [JSON]`: one call, run here, its answer printed. Exit 1 if the answer is
/// an error.
fn call_tool(path: &std::path::Path, name: &str, args: Option<&str>) -> ExitCode {
    let cfg = match load(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let args: serde_json::Value = match args.map(serde_json::from_str).transpose() {
        Ok(v) => v.unwrap_or_else(|| serde_json::json!({})),
        Err(e) => {
            eprintln!("gemlive call-tool: the arguments are not JSON ({e}); write them like '{{\"percent\": 50}}'");
            return ExitCode::from(2);
        }
    };
    let rt = match runtime_or_exit() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let started = std::time::Instant::now();
    let response = rt.block_on(gemlive::tools::call_here(&cfg.tools, name, args));
    println!(
        "{}",
        serde_json::to_string_pretty(&response).unwrap_or_else(|_| response.to_string())
    );
    eprintln!("({:.2} s)", started.elapsed().as_secs_f64());
    if response.get("error").is_some() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// `ctl ...`: one request to the running daemon's control socket.
/// The unit's ExecReload: its output goes to the journal, and a failure makes `systemctl
/// reload` fail with it.
fn reload(pid: i32) -> ExitCode {
    match service::reload::request(pid) {
        Ok(what) => {
            println!("gemlive reload: {what}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("gemlive reload: {e}");
            ExitCode::FAILURE
        }
    }
}

fn ctl(path: &std::path::Path, words: &[String]) -> ExitCode {
    let cfg = match load(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let Some(socket) = cfg.service.control_socket.clone() else {
        eprintln!(
            "gemlive ctl: {} sets no control_socket in [service]; add e.g. \
             control_socket = \"/run/gemlive/control.sock\" and restart gemlive",
            path.display()
        );
        return ExitCode::from(2);
    };
    let rt = match runtime_or_exit() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    match rt.block_on(gemlive::control::client(&socket, words)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("gemlive ctl: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// `check-config --online`: the offline checks, then one real session opened and closed.
fn check_online(path: &std::path::Path) -> ExitCode {
    let cfg = match check_offline(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    // A missing key passes the offline check (it says "missing"); online it is an error.
    let key = if cfg.live.auth == config::Auth::Ephemeral {
        None
    } else {
        match config::resolve_api_key(&cfg.live, env) {
            Ok(Some((key, _))) => {
                service::redact(key.expose());
                Some(key)
            }
            _ => return ExitCode::from(EX_CONFIG),
        }
    };
    let credentials = match gemlive::daemon::credentials(&cfg, key) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("gemlive: {}", error_chain(e.as_ref()));
            return ExitCode::from(EX_CONFIG);
        }
    };
    println!(
        "\nonline: opening a session at {} with model {} ...",
        cfg.live.endpoint, cfg.live.model
    );
    let rt = match runtime_or_exit() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    // The broker first: its answer is quick, and it is independent of the Live API's.
    let mut broker_failed = false;
    if let Ok(Some(m)) = gemlive::daemon::mqtt_settings(&cfg) {
        println!(
            "\nonline: connecting to the MQTT broker {} ...",
            m.broker.host
        );
        match rt.block_on(gemlive::mqtt::probe(&m)) {
            Ok(what) => println!("online: MQTT OK: {what}"),
            Err(e) => {
                println!("online: MQTT FAILED: {e}");
                broker_failed = true;
            }
        }
    }
    if cfg.live.auth == config::Auth::Ephemeral {
        println!("online: asking the token source for a token ...");
    }
    let opened = rt.block_on(async {
        let cred = credentials
            .credential(true)
            .await
            .map_err(gemlive::live::session::SessionError::Credentials)?;
        gemlive::probe::open_and_close(&cfg, &cred).await
    });
    let code = match opened {
        Ok(o) => {
            println!(
                "online: OK: {} accepted the {} and model {} (setupComplete after {} ms{}); closed with 1000",
                o.host,
                if cfg.live.auth == config::Auth::Ephemeral {
                    "token"
                } else {
                    "key"
                },
                cfg.live.model,
                o.setup_ms,
                o.session_id
                    .map(|s| format!(", session {s}"))
                    .unwrap_or_default()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("online: FAILED: {}", error_chain(&e));
            println!("online: what to do: {}", gemlive::probe::advice(&e, &cfg));
            ExitCode::from(gemlive::probe::exit_code(&e))
        }
    };
    if broker_failed && code == ExitCode::SUCCESS {
        ExitCode::FAILURE
    } else {
        code
    }
}

/// `test-wake`: record, run the wake-word detector over it, print what it saw.
fn test_wake(path: &std::path::Path, seconds: f64) -> ExitCode {
    use gemlive::audio::check;
    let cfg = match load(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let mut det = match gemlive::daemon::wake_detector(&cfg.wake) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("gemlive test-wake: {}", error_chain(&e));
            return ExitCode::from(78);
        }
    };
    let mic = &cfg.audio.capture_device;
    println!(
        "listening {seconds:.1} s on `{mic}` for \"{}\" (cutoff {:.2}, window {}): say it a few times ...",
        gemlive::service::outside(det.wake_word(), 64),
        det.cutoff(),
        det.window()
    );
    let (rec, _) = match check::record(mic, seconds) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("gemlive test-wake: recording failed: {}", error_chain(&e));
            if let Some(h) = check::hint(&e) {
                eprintln!("hint: {h}");
            }
            return ExitCode::FAILURE;
        }
    };
    // The daemon feeds it period by period; so does this (20 ms).
    let mut found = Vec::new();
    for part in rec.chunks(320) {
        match det.push(part) {
            Ok(d) => found.extend(d),
            Err(e) => {
                eprintln!("gemlive test-wake: the detector failed: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    for d in &found {
        println!(
            "detected at {:.2} s (probability {:.2})",
            d.sample_offset as f64 / 16_000.0,
            d.probability
        );
    }
    let best = det.best_probability();
    println!(
        "best score {best:.2} against a cutoff of {:.2}: {} detection(s)",
        det.cutoff(),
        found.len()
    );
    if found.is_empty() {
        println!(
            "hint: if you said it and the best score is close, lower [wake] cutoff a little (more false wakes); check the level with `gemlive test-audio`"
        );
    }
    ExitCode::SUCCESS
}

/// `test-audio`: record, report the level, play it back.
fn test_audio(
    path: &std::path::Path,
    seconds: f64,
    playback: bool,
    out: Option<&std::path::Path>,
) -> ExitCode {
    use gemlive::audio::check;
    let cfg = match load(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let fail = |what: &str, e: &gemlive::audio::AudioError| {
        eprintln!("gemlive test-audio: {what}: {}", error_chain(e));
        if let Some(h) = check::hint(e) {
            eprintln!("hint: {h}");
        }
        ExitCode::FAILURE
    };
    let mic = &cfg.audio.capture_device;
    println!("recording {seconds:.1} s from `{mic}` (16000 Hz, S16_LE, mono): speak now ...");
    let (rec, xruns) = match check::record(mic, seconds) {
        Ok(r) => r,
        Err(e) => return fail("recording failed", &e),
    };
    let l = check::analyse(&rec);
    let clipped_pct = 100.0 * l.clipped as f64 / l.samples.max(1) as f64;
    println!(
        "level: RMS {:.1} dBFS, peak {:.1} dBFS, loudest 100 ms {:.1} dBFS, quietest 100 ms {:.1} dBFS",
        l.rms_dbfs, l.peak_dbfs, l.loudest_dbfs, l.floor_dbfs
    );
    println!(
        "clipping: {} samples ({clipped_pct:.2} %); DC offset {:+.2} %; overruns {xruns}",
        l.clipped, l.dc_percent
    );
    if let Some(out) = out {
        let pcm: Vec<u8> = rec.iter().flat_map(|s| s.to_le_bytes()).collect();
        match std::fs::write(out, gemlive::demo::wav(&pcm, 16_000)) {
            Ok(()) => println!("wrote {}", out.display()),
            Err(e) => eprintln!("gemlive: cannot write {}: {e}", out.display()),
        }
    }
    let (problems, warnings) = check::verdict(&l);
    for w in &warnings {
        println!("warning: {w}");
    }
    for p in &problems {
        println!("problem: {p}");
    }
    if playback {
        let spk = &cfg.audio.playback_device;
        println!(
            "playing it back on `{spk}` (24000 Hz, volume {} %) ...",
            cfg.audio.volume
        );
        if let Err(e) = check::play(spk, &rec, cfg.audio.volume) {
            return fail("playback failed", &e);
        }
        println!("played {:.2} s", rec.len() as f64 / 16_000.0);
    }
    if problems.is_empty() {
        println!("result: OK");
        ExitCode::SUCCESS
    } else {
        println!("result: PROBLEM ({} found)", problems.len());
        ExitCode::FAILURE
    }
}

fn calibrate_echo(path: &std::path::Path) -> ExitCode {
    let cfg = match load(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let (cap, play) = (&cfg.audio.capture_device, &cfg.audio.playback_device);
    println!("calibrating echo: playing a 5 s test signal on `{play}`, recording `{cap}` (keep the room quiet)");
    match gemlive::audio::calibrate::run(cap, play) {
        Ok(c) => {
            print!("{c}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("gemlive: {}", error_chain(&e));
            ExitCode::FAILURE
        }
    }
}

fn list_devices(path: &std::path::Path) -> ExitCode {
    // The configured names are probed too, even when ALSA has no hint for them.
    let cfg = config::load(path).ok();
    let extra: Vec<&str> = cfg
        .as_ref()
        .map(|c| {
            vec![
                c.audio.capture_device.as_str(),
                c.audio.playback_device.as_str(),
            ]
        })
        .unwrap_or_default();
    let status = match gemlive::audio::devices::list(&extra) {
        Ok(devs) => {
            println!("ALSA PCMs (audio):");
            print!("{}", gemlive::audio::devices::render(&devs));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("gemlive: cannot list ALSA devices: {e}");
            ExitCode::FAILURE
        }
    };
    println!("\nV4L2 cameras (video):");
    print!("{}", gemlive::video::list_cameras());
    status
}

/// The runtime for a one-shot command, or the exit code after saying why not.
fn runtime_or_exit() -> Result<tokio::runtime::Runtime, ExitCode> {
    runtime().map_err(|e| {
        eprintln!("gemlive: cannot start the async runtime: {e}");
        ExitCode::FAILURE
    })
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    // Two workers are plenty: the audio threads do the device I/O.
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
}

fn run(path: &std::path::Path, level_forced: bool) -> ExitCode {
    let cfg = match load(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    service::set_level_forced(level_forced);
    service::apply_config_level(cfg.service.log_level.filter());
    let key = if cfg.live.auth == config::Auth::Ephemeral {
        log::info!("auth: ephemeral tokens, no API key on this box");
        None
    } else {
        match config::resolve_api_key(&cfg.live, env) {
            Ok(Some((key, source))) => {
                service::redact(key.expose());
                log::info!("API key: set (from {source})");
                Some(key)
            }
            Ok(None) => {
                eprintln!("gemlive: no API key: put it in {} (chmod 600), or set api_key_file in [live], GEMINI_API_KEY, or the systemd credential gemini-api-key", config::SERVICE_KEY_FILE);
                return ExitCode::from(EX_CONFIG);
            }
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::from(EX_CONFIG);
            }
        }
    };
    let credentials = match gemlive::daemon::credentials(&cfg, key) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("gemlive: {}", error_chain(e.as_ref()));
            return ExitCode::from(EX_CONFIG);
        }
    };
    let rt = match runtime_or_exit() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    match rt.block_on(gemlive::daemon::run(
        cfg,
        credentials,
        service::stop_signal(),
    )) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("{}", error_chain(e.as_ref()));
            ExitCode::FAILURE
        }
    }
}

fn snapshot(path: &std::path::Path, out: PathBuf) -> ExitCode {
    let cfg = match load(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    match gemlive::video::snapshot(&cfg.video, std::time::Duration::from_secs(10)) {
        Ok(snap) => match std::fs::write(&out, &snap.jpeg) {
            Ok(()) => {
                let skipped = match snap.skipped {
                    0 => String::new(),
                    1 => ", after skipping 1 broken frame".to_string(),
                    n => format!(", after skipping {n} broken frames"),
                };
                println!(
                    "wrote {} ({}x{}, {} bytes) from `{}`{skipped}",
                    out.display(),
                    snap.width,
                    snap.height,
                    snap.jpeg.len(),
                    cfg.video.device
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("gemlive: cannot write {}: {e}", out.display());
                ExitCode::FAILURE
            }
        },
        Err(e) => {
            eprintln!("gemlive snapshot: {}", error_chain(e.as_ref()));
            ExitCode::FAILURE
        }
    }
}

fn demo() -> ExitCode {
    let out = PathBuf::from(".");
    let rt = match runtime_or_exit() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    match rt.block_on(gemlive::demo::run(&out)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gemlive demo: {}", error_chain(e.as_ref()));
            ExitCode::FAILURE
        }
    }
}
