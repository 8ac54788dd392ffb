//! The model's tools: the built-ins (answered at once, in the loop) and the owner's tools from
//! `[tools]` (each call run in its own task, off the control loop). `Toolbox` decides which is
//! which and holds the little state calls need (confirmations); the daemon spawns the work,
//! keeps the cancel handles and sends the answers.

pub mod builtin;
pub mod command;
pub mod http;
pub mod mcp;
pub mod schema;
pub mod settings;
pub mod timers;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

use crate::live::proto::{FunctionCall, FunctionResponse};
pub use builtin::Effect;
use settings::{CommandTool, HttpTool, McpServer, ToolsConfig};

/// A `confirm = true` call runs when the same call comes again within this long.
pub const CONFIRM_WINDOW: Duration = Duration::from_secs(30);

/// What a call's task produced.
pub struct Outcome {
    /// The `response` object.
    pub response: Value,
    /// A camera frame to send before the response (`look`).
    pub video: Option<Vec<u8>>,
}

/// Work for a task of its own.
pub type Job = Pin<Box<dyn Future<Output = Outcome> + Send>>;

/// The `look` call's work: a blocking capture-and-encode, run on the blocking pool.
pub fn look_job(capture: impl FnOnce() -> Result<Vec<u8>, String> + Send + 'static) -> Job {
    Box::pin(async move {
        match tokio::task::spawn_blocking(capture).await {
            Ok(Ok(jpeg)) => Outcome {
                response: json!({"result": "a fresh picture from the camera was sent to you just now; describe what you see"}),
                video: Some(jpeg),
            },
            Ok(Err(e)) => Outcome {
                response: json!({ "error": e }),
                video: None,
            },
            Err(e) => Outcome {
                response: json!({"error": format!("the camera task failed: {e}")}),
                video: None,
            },
        }
    })
}

/// What to do with one call.
pub enum Dispatch {
    /// The answer is ready (built-ins, unknown names, a confirmation request).
    Answer(FunctionResponse, Option<Effect>),
    /// Run `job` off the loop; answer with its result.
    Run(Job),
    /// The built-in `look`: the daemon sends a fresh camera frame, then answers.
    Look,
}

/// Calls that wait for the user's spoken yes: (tool, arguments) → when it was first refused.
#[derive(Debug, Default)]
pub struct Confirmations {
    pending: HashMap<(String, String), Instant>,
}

impl Confirmations {
    /// True if this exact call was refused for confirmation within [`CONFIRM_WINDOW`] (and so
    /// runs now); otherwise remembers it and returns false.
    pub fn confirmed(&mut self, name: &str, args: &Value, now: Instant) -> bool {
        self.pending
            .retain(|_, t| now.saturating_duration_since(*t) < CONFIRM_WINDOW);
        let key = (name.to_string(), canonical(args));
        if self.pending.remove(&key).is_some() {
            return true;
        }
        // Bounded: a model that asks for a hundred different things gets the newest kept.
        if self.pending.len() >= 64 {
            if let Some(oldest) = self
                .pending
                .iter()
                .min_by_key(|(_, t)| **t)
                .map(|(k, _)| k.clone())
            {
                self.pending.remove(&oldest);
            }
        }
        self.pending.insert(key, now);
        false
    }
}

/// JSON with object keys sorted, so that the same arguments compare equal.
fn canonical(v: &Value) -> String {
    fn sort(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                Value::Object(keys.into_iter().map(|k| (k.clone(), sort(&m[k]))).collect())
            }
            Value::Array(a) => Value::Array(a.iter().map(sort).collect()),
            other => other.clone(),
        }
    }
    sort(v).to_string()
}

/// Every tool the model is offered, and how to answer each call.
pub struct Toolbox {
    builtin: bool,
    /// A camera is configured: `look` is offered.
    camera: bool,
    commands: Vec<Arc<CommandTool>>,
    https: Vec<Arc<HttpTool>>,
    mcp_servers: Vec<McpServer>,
    /// The MCP servers' links, once started ([`Toolbox::start_mcp`]).
    hub: Option<Arc<mcp::Hub>>,
    confirmations: Confirmations,
    /// The kitchen timers (built-in tools); the daemon rings them and keeps them.
    pub timers: timers::Timers,
}

impl Toolbox {
    pub fn new(cfg: &ToolsConfig, camera: bool) -> Toolbox {
        Toolbox {
            builtin: cfg.builtin,
            camera,
            commands: cfg.command.iter().cloned().map(Arc::new).collect(),
            https: cfg.http.iter().cloned().map(Arc::new).collect(),
            mcp_servers: cfg.mcp.clone(),
            hub: None,
            confirmations: Confirmations::default(),
            timers: timers::Timers::default(),
        }
    }

    /// Starts the MCP servers' links (inside a Tokio runtime); the receiver is told each time
    /// their tools change. `None` when no server is configured.
    pub fn start_mcp(&mut self) -> Option<tokio::sync::watch::Receiver<u64>> {
        if self.mcp_servers.is_empty() {
            return None;
        }
        let hub = mcp::Hub::start(&self.mcp_servers, self.own_names());
        let rx = hub.subscribe();
        self.hub = Some(hub);
        Some(rx)
    }

    /// The MCP links, when started.
    pub fn hub(&self) -> Option<&Arc<mcp::Hub>> {
        self.hub.as_ref()
    }

    /// `setup.tools`, or `None` when there is no tool at all.
    pub fn declarations(&self) -> Option<Vec<Value>> {
        let mut decls: Vec<Value> = Vec::new();
        if self.builtin {
            decls.extend(builtin::function_declarations());
            decls.extend(timers::function_declarations());
            if self.camera {
                decls.push(json!({
                    "name": "look",
                    "description": "Take a fresh picture with the device's camera right now and look at it, e.g. when the user asks what you see or holds something up."
                }));
            }
        }
        decls.extend(self.commands.iter().map(|t| {
            declaration(
                &t.name,
                &t.description,
                t.parameters.as_ref(),
                t.non_blocking,
            )
        }));
        decls.extend(self.https.iter().map(|t| {
            declaration(
                &t.name,
                &t.description,
                t.parameters.as_ref(),
                t.non_blocking,
            )
        }));
        if let Some(hub) = &self.hub {
            decls.extend(hub.offered().iter().map(|o| {
                declaration(
                    &o.tool.name,
                    &o.tool.description,
                    o.tool.parameters.as_ref(),
                    o.link.server.non_blocking,
                )
            }));
        }
        (!decls.is_empty()).then(|| vec![json!({ "functionDeclarations": decls })])
    }

    /// Names of every tool offered, in declaration order.
    pub fn names(&self) -> Vec<String> {
        let mut n = self.own_names();
        if let Some(hub) = &self.hub {
            n.extend(hub.offered().into_iter().map(|o| o.tool.name));
        }
        n
    }

    /// Names of the tools that are not MCP servers' (these win a clash).
    fn own_names(&self) -> Vec<String> {
        let mut n: Vec<String> = Vec::new();
        if self.builtin {
            n.extend(
                settings::BUILTIN_NAMES
                    .iter()
                    .filter(|b| self.camera || **b != "look")
                    .map(|s| s.to_string()),
            );
        }
        n.extend(self.commands.iter().map(|t| t.name.clone()));
        n.extend(self.https.iter().map(|t| t.name.clone()));
        n
    }

    /// `now` for confirmations, `wall_ms` (Unix milliseconds) for timers.
    pub fn dispatch(&mut self, call: &FunctionCall, now: Instant, wall_ms: u64) -> Dispatch {
        let reply = |response: Value| FunctionResponse {
            id: call.id.clone(),
            name: call.name.clone(),
            response,
        };
        let command = self.commands.iter().find(|t| t.name == call.name).cloned();
        let web = self.https.iter().find(|t| t.name == call.name).cloned();
        let builtin = self.builtin && settings::BUILTIN_NAMES.contains(&call.name.as_str());
        let link = match (&command, &web, &self.hub) {
            (None, None, Some(hub)) if !builtin => hub.find(&call.name),
            _ => None,
        };
        let confirm = match (&command, &web, &link) {
            (Some(t), _, _) => Some(t.confirm),
            (_, Some(t), _) => Some(t.confirm),
            (_, _, Some(_)) => Some(false),
            _ => None,
        };
        if let Some(confirm) = confirm {
            let args: Map<String, Value> = match &call.args {
                Value::Object(m) => m.clone(),
                Value::Null => Map::new(),
                other => {
                    return Dispatch::Answer(
                        reply(
                            json!({"error": format!("arguments must be an object, got {other}")}),
                        ),
                        None,
                    )
                }
            };
            if confirm && !self.confirmations.confirmed(&call.name, &call.args, now) {
                return Dispatch::Answer(
                    reply(json!({"error": format!(
                        "`{}` needs the user's confirmation: ask the user to confirm out loud, and if they agree, call it again with the same arguments within {} seconds",
                        call.name,
                        CONFIRM_WINDOW.as_secs()
                    )})),
                    None,
                );
            }
            let name = call.name.clone();
            return Dispatch::Run(Box::pin(async move {
                let response = match (command, web, link) {
                    (Some(t), _, _) => command::run(&t, &args).await,
                    (_, Some(t), _) => http::run(&t, &args).await,
                    (_, _, Some(l)) => l.call(&name, args).await,
                    _ => json!({"error": "no such tool"}),
                };
                Outcome {
                    response,
                    video: None,
                }
            }));
        }
        if self.builtin && self.camera && call.name == "look" {
            return Dispatch::Look;
        }
        if self.builtin {
            if let Some(r) = timers::answer(&mut self.timers, &call.name, &call.args, wall_ms) {
                let changed = call.name != "list_timers" && r.get("error").is_none();
                return Dispatch::Answer(reply(r), changed.then_some(Effect::TimersChanged));
            }
            let (r, e) = builtin::answer(call);
            return Dispatch::Answer(r, e);
        }
        Dispatch::Answer(
            reply(json!({"error": format!("unknown tool `{}`", call.name)})),
            None,
        )
    }
}

/// `gemlive call-tool`: one call run here, as the daemon would run it, but without asking for
/// confirmation (the owner typing the command is the confirmation).
pub async fn call_here(cfg: &ToolsConfig, name: &str, args: Value) -> Value {
    let mut tb = Toolbox::new(cfg, false);
    if tb.start_mcp().is_some() && !tb.own_names().iter().any(|n| n == name) {
        if let Some(hub) = tb.hub() {
            hub.wait_settled(mcp_start_limit(cfg)).await;
        }
    }
    let call = FunctionCall {
        id: Some("call-tool".into()),
        name: name.to_string(),
        args: args.clone(),
    };
    let confirm = tb.commands.iter().any(|t| t.name == name && t.confirm)
        || tb.https.iter().any(|t| t.name == name && t.confirm);
    if confirm {
        // Pre-confirm: this records it, so the dispatch below runs it.
        let _ = tb.confirmations.confirmed(name, &args, Instant::now());
    }
    match tb.dispatch(&call, Instant::now(), 0) {
        Dispatch::Answer(r, _) => {
            if !tb.names().iter().any(|n| n == name) {
                let known = tb.names().join(", ");
                return json!({"error": format!("unknown tool `{name}`; the tools are: {known}")});
            }
            r.response
        }
        Dispatch::Run(job) => job.await.response,
        Dispatch::Look => json!({"error": "look needs the running daemon"}),
    }
}

/// How long to wait for every MCP server's first answer: the slowest one's start-up limit.
pub fn mcp_start_limit(cfg: &ToolsConfig) -> Duration {
    cfg.mcp
        .iter()
        .map(mcp::start_limit)
        .max()
        .unwrap_or_default()
        + Duration::from_secs(1)
}

/// What `check-config` says about the tools: problems (a program that is missing or not
/// executable) and notes (schema parts the model will not see).
pub fn check(cfg: &ToolsConfig) -> (Vec<String>, Vec<String>) {
    let mut problems = Vec::new();
    let mut notes = Vec::new();
    for t in &cfg.command {
        if let Err(e) = find_program(&t.command[0]) {
            problems.push(format!("tool `{}`: {e}", t.name));
        }
        note_dropped(&t.name, &t.dropped, &mut notes);
    }
    for t in &cfg.http {
        if let Some(p) = &t.bearer_token_file {
            if let Err(e) = http::read_token(p) {
                problems.push(format!("tool `{}`: {e}", t.name));
            }
        }
        note_dropped(&t.name, &t.dropped, &mut notes);
    }
    for s in &cfg.mcp {
        match &s.transport {
            settings::McpTransport::Stdio(argv) => {
                if let Err(e) = find_program(&argv[0]) {
                    problems.push(format!("MCP server `{}`: {e}", s.name));
                }
            }
            settings::McpTransport::Http {
                bearer_token_file: Some(p),
                ..
            } => {
                if let Err(e) = http::read_token(p) {
                    problems.push(format!("MCP server `{}`: {e}", s.name));
                }
            }
            settings::McpTransport::Http { .. } => {}
        }
    }
    (problems, notes)
}

fn note_dropped(name: &str, dropped: &[String], notes: &mut Vec<String>) {
    if !dropped.is_empty() {
        notes.push(format!(
            "tool `{name}`: left out of its parameters (Gemini does not take them): {}",
            dropped.join(", ")
        ));
    }
}

/// The program a command names: a path, or a name looked up in `PATH` as exec does.
pub fn find_program(program: &str) -> Result<std::path::PathBuf, String> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &std::path::Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        let p = std::path::PathBuf::from(program);
        return match std::fs::metadata(&p) {
            Err(e) => Err(format!("`{program}`: {e}")),
            Ok(_) if !executable(&p) => {
                Err(format!("`{program}` is not an executable file (chmod +x?)"))
            }
            Ok(_) => Ok(p),
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| executable(p))
        .ok_or_else(|| {
            format!(
                "`{program}` is not in PATH ({}); give its full path",
                path.to_string_lossy()
            )
        })
}

/// One `functionDeclarations` entry for a declared tool.
fn declaration(
    name: &str,
    description: &str,
    parameters: Option<&Value>,
    non_blocking: bool,
) -> Value {
    let mut d = json!({"name": name, "description": description});
    if let Some(p) = parameters {
        // An object with no properties is one of the shapes the server refuses: leave it out.
        if p.get("properties")
            .and_then(Value::as_object)
            .is_some_and(|m| !m.is_empty())
        {
            d["parameters"] = p.clone();
        }
    }
    if non_blocking {
        d["behavior"] = json!("NON_BLOCKING");
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(text: &str) -> ToolsConfig {
        let t: toml::Table = toml::from_str(text).unwrap();
        ToolsConfig {
            builtin: true,
            command: settings::command_tools(&t["tools"]["command"]).unwrap(),
            http: Vec::new(),
            mcp: Vec::new(),
        }
    }

    fn call(name: &str, args: Value) -> FunctionCall {
        FunctionCall {
            id: Some("c1".into()),
            name: name.into(),
            args,
        }
    }

    const TWO: &str = r#"
[[tools.command]]
name = "door"
description = "Open the door."
command = ["true"]
confirm = true
[[tools.command]]
name = "echo"
description = "Echo."
command = ["echo", "{x}"]
parameters = { type = "object", properties = { x = { type = "string" } } }
behavior = "non_blocking"
"#;

    #[test]
    fn declarations_list_builtins_then_commands() {
        let tb = Toolbox::new(&cfg(TWO), false);
        let d = tb.declarations().unwrap();
        let f = d[0]["functionDeclarations"].as_array().unwrap();
        let names: Vec<&str> = f.iter().filter_map(|x| x["name"].as_str()).collect();
        assert_eq!(
            names,
            [
                "end_session",
                "set_volume",
                "set_timer",
                "cancel_timer",
                "list_timers",
                "door",
                "echo"
            ]
        );
        assert!(f[5].get("parameters").is_none());
        assert_eq!(f[6]["parameters"]["properties"]["x"]["type"], "STRING");
        assert_eq!(f[6]["behavior"], "NON_BLOCKING");
        assert_eq!(tb.names(), names);
        let none = Toolbox::new(
            &ToolsConfig {
                builtin: false,
                command: Vec::new(),
                http: Vec::new(),
                mcp: Vec::new(),
            },
            true,
        );
        assert_eq!(none.declarations(), None);
    }

    #[test]
    fn confirm_refuses_then_runs_the_same_call() {
        let mut tb = Toolbox::new(&cfg(TWO), false);
        let t0 = Instant::now();
        let first = tb.dispatch(&call("door", json!({"a": 1, "b": 2})), t0, 0);
        let Dispatch::Answer(r, None) = first else {
            panic!("first call must be refused")
        };
        assert!(r.response["error"]
            .as_str()
            .unwrap()
            .contains("confirm out loud"));
        // A different call is not a confirmation.
        assert!(matches!(
            tb.dispatch(&call("door", json!({"a": 2})), t0, 0),
            Dispatch::Answer(..)
        ));
        // The same arguments (in another order) within 30 s run.
        assert!(matches!(
            tb.dispatch(
                &call("door", json!({"b": 2, "a": 1})),
                t0 + Duration::from_secs(29),
                0
            ),
            Dispatch::Run(_)
        ));
        // ...once: the next one asks again, and so does a repeat after the window.
        assert!(matches!(
            tb.dispatch(
                &call("door", json!({"a": 1, "b": 2})),
                t0 + Duration::from_secs(30),
                0
            ),
            Dispatch::Answer(..)
        ));
        assert!(matches!(
            tb.dispatch(
                &call("door", json!({"a": 1, "b": 2})),
                t0 + Duration::from_secs(61),
                0
            ),
            Dispatch::Answer(..)
        ));
    }

    #[test]
    fn unknown_and_builtin_calls_are_answered_at_once() {
        let mut tb = Toolbox::new(&cfg(TWO), false);
        let now = Instant::now();
        let Dispatch::Answer(r, e) =
            tb.dispatch(&call("set_volume", json!({"percent": 10})), now, 0)
        else {
            panic!()
        };
        assert_eq!(r.response["result"], "ok");
        assert_eq!(e, Some(Effect::SetVolume(10)));
        let Dispatch::Answer(r, None) = tb.dispatch(&call("nope", json!({})), now, 0) else {
            panic!()
        };
        assert!(r.response["error"]
            .as_str()
            .unwrap()
            .contains("unknown tool"));
        let Dispatch::Answer(r, None) = tb.dispatch(&call("echo", json!([1])), now, 0) else {
            panic!()
        };
        assert!(r.response["error"]
            .as_str()
            .unwrap()
            .contains("must be an object"));
    }
}
