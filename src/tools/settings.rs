//! `[tools]`: what the owner declares. The key table (`config/table.rs`) declares the keys; this
//! module owns the types and the rules for the `[[tools.command]]` entries, so the config
//! module depends on it and not the other way round.

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use super::schema;

/// The built-in tools' names: no declared tool may take one, whether or not they are on.
pub const BUILTIN_NAMES: [&str; 6] = [
    "end_session",
    "set_volume",
    "set_timer",
    "cancel_timer",
    "list_timers",
    "look",
];
/// `timeout_s` of a command tool: default and range.
pub const DEFAULT_TIMEOUT_S: u64 = 10;
pub const TIMEOUT_RANGE_S: std::ops::RangeInclusive<u64> = 1..=600;

/// `[tools]`.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolsConfig {
    /// Offer the built-in tools.
    pub builtin: bool,
    /// `[[tools.command]]`, in file order.
    pub command: Vec<CommandTool>,
    /// `[[tools.http]]`, in file order.
    pub http: Vec<HttpTool>,
    /// `[[tools.mcp]]`, in file order.
    pub mcp: Vec<McpServer>,
}

impl Default for ToolsConfig {
    fn default() -> Self {
        ToolsConfig {
            builtin: true,
            command: Vec::new(),
            http: Vec::new(),
            mcp: Vec::new(),
        }
    }
}

/// One `[[tools.command]]`: a program the model may run.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandTool {
    pub name: String,
    pub description: String,
    /// The parameters as declared to the model (already in Gemini's schema subset); `None`
    /// for a tool without arguments.
    pub parameters: Option<Value>,
    /// What of the written schema the model will not see (Gemini does not take it).
    pub dropped: Vec<String>,
    /// argv; `{name}` inside an element is replaced by that argument's value.
    pub command: Vec<String>,
    pub timeout: Duration,
    /// Run only when the same call is repeated within 30 s (after the user said yes).
    pub confirm: bool,
    /// `behavior = "non_blocking"`: the model keeps talking while it runs (2.5 models only).
    pub non_blocking: bool,
}

/// One `[[tools.http]]`: a web request the model may make.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpTool {
    pub name: String,
    pub description: String,
    pub parameters: Option<Value>,
    pub dropped: Vec<String>,
    /// `GET`, `POST`, `PUT`, `PATCH` or `DELETE`.
    pub method: String,
    /// `http://` or `https://`; `{name}` is replaced by the argument, percent-encoded.
    pub url: String,
    /// A JSON body template (`{name}` alone in a string: the argument's JSON value).
    pub body: Option<Value>,
    pub headers: Vec<(String, String)>,
    /// A file (mode 0600) holding a token sent as `Authorization: Bearer`.
    pub bearer_token_file: Option<std::path::PathBuf>,
    pub timeout: Duration,
    pub confirm: bool,
    pub non_blocking: bool,
}

/// How gemlive reaches an MCP server.
#[derive(Debug, Clone, PartialEq)]
pub enum McpTransport {
    /// A program speaking MCP on its stdin/stdout (argv), restarted with back-off if it dies.
    Stdio(Vec<String>),
    /// Streamable HTTP at this `http://` or `https://` URL.
    Http {
        url: String,
        headers: Vec<(String, String)>,
        bearer_token_file: Option<std::path::PathBuf>,
    },
}

/// One `[[tools.mcp]]`: a Model Context Protocol server whose tools the model may call.
#[derive(Debug, Clone, PartialEq)]
pub struct McpServer {
    /// The server's name in logs and in `gemlive tools` (its tools keep their own names).
    pub name: String,
    pub transport: McpTransport,
    /// Only these tools (empty: all).
    pub allow: Vec<String>,
    /// Never these tools.
    pub deny: Vec<String>,
    /// Each call's limit (and the start-up's).
    pub timeout: Duration,
    /// Its tools are declared `NON_BLOCKING`.
    pub non_blocking: bool,
}

impl McpServer {
    /// Whether the model is offered this server's tool `name`.
    pub fn offers(&self, name: &str) -> bool {
        (self.allow.is_empty() || self.allow.iter().any(|a| a == name))
            && !self.deny.iter().any(|d| d == name)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMcp {
    name: String,
    command: Option<Vec<String>>,
    url: Option<String>,
    #[serde(default)]
    headers: toml::Table,
    bearer_token_file: Option<String>,
    allow: Option<Vec<String>>,
    #[serde(default)]
    deny: Vec<String>,
    timeout_s: Option<i64>,
    behavior: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    name: String,
    description: String,
    parameters: Option<toml::Table>,
    method: Option<String>,
    url: String,
    body: Option<toml::Value>,
    #[serde(default)]
    headers: toml::Table,
    bearer_token_file: Option<String>,
    timeout_s: Option<i64>,
    #[serde(default)]
    confirm: bool,
    behavior: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCommand {
    name: String,
    description: String,
    parameters: Option<toml::Table>,
    command: Vec<String>,
    timeout_s: Option<i64>,
    #[serde(default)]
    confirm: bool,
    behavior: Option<String>,
}

impl RawCommand {
    fn parts(&self) -> Parts<'_> {
        Parts {
            name: &self.name,
            description: &self.description,
            parameters: self.parameters.clone(),
            timeout_s: self.timeout_s,
            behavior: self.behavior.as_deref(),
        }
    }
}

impl RawHttp {
    fn parts(&mut self) -> Parts<'_> {
        Parts {
            name: &self.name,
            description: &self.description,
            parameters: self.parameters.take(),
            timeout_s: self.timeout_s,
            behavior: self.behavior.as_deref(),
        }
    }
}

/// Gemini's rule for function names: a letter or `_` first, then letters, digits, `_`, `.`,
/// `-`; at most 64 characters.
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= 64
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// Why the `index`-th `[[tools.command]]` (0-based) is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryError {
    pub index: usize,
    pub message: String,
}

/// The placeholders `{name}` in one argv element.
pub fn placeholders(element: &str) -> impl Iterator<Item = &str> {
    element.split('{').skip(1).filter_map(|rest| {
        let name = rest.split('}').next()?;
        (rest.contains('}')
            && !name.is_empty()
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        .then_some(name)
    })
}

/// An argument's value as text: strings as they are, absent or null as nothing, anything else
/// as JSON.
fn as_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// `template` with each `{name}` placeholder replaced by `enc` of that argument's text (an
/// absent argument: empty text); other braces stay as written.
pub fn fill(
    template: &str,
    args: &serde_json::Map<String, Value>,
    enc: impl Fn(&str) -> String,
) -> String {
    let mut out = template.to_string();
    for name in placeholders(template).collect::<Vec<_>>() {
        let v = args.get(name).map(as_text).unwrap_or_default();
        out = out.replace(&format!("{{{name}}}"), &enc(&v));
    }
    out
}

/// Parses the `[[tools.command]]` array.
pub fn command_tools(value: &toml::Value) -> Result<Vec<CommandTool>, EntryError> {
    let err = |index: usize, message: String| EntryError { index, message };
    let raws: Vec<RawCommand> = entries(value, "command", "an entry needs name, description and command (an argv list), and may have parameters, timeout_s, confirm and behavior")?;
    let mut out: Vec<CommandTool> = Vec::new();
    let mut names: Vec<String> = Vec::new();
    for (i, raw) in raws.into_iter().enumerate() {
        let c = common(i, &names, raw.parts())?;
        let what = format!("tool `{}`", c.name);
        if raw.command.is_empty() || raw.command[0].trim().is_empty() {
            return Err(err(
                i,
                format!("{what}: command must name a program, e.g. command = [\"/usr/local/bin/lights\", \"{{state}}\"]"),
            ));
        }
        let props = param_names(&c.parameters);
        for el in &raw.command {
            check_placeholders(i, &what, "command", el, &props)?;
        }
        names.push(c.name.clone());
        out.push(CommandTool {
            name: c.name,
            description: c.description,
            parameters: c.parameters,
            dropped: c.dropped,
            command: raw.command,
            timeout: c.timeout,
            confirm: raw.confirm,
            non_blocking: c.non_blocking,
        });
    }
    Ok(out)
}

/// Each entry of a `[[tools.KIND]]` array, deserialized; `needs` says what an entry holds.
fn entries<R: serde::de::DeserializeOwned>(
    value: &toml::Value,
    kind: &str,
    needs: &str,
) -> Result<Vec<R>, EntryError> {
    let Some(list) = value.as_array() else {
        return Err(EntryError {
            index: 0,
            message: format!("`{kind}` in [tools] must be written as [[tools.{kind}]] entries"),
        });
    };
    list.iter()
        .enumerate()
        .map(|(index, e)| {
            e.clone()
                .try_into()
                .map_err(|e: toml::de::Error| EntryError {
                    index,
                    message: format!("{}; {needs}", e.message().trim()),
                })
        })
        .collect()
}

/// The keys every kind of declared tool has.
struct Parts<'a> {
    name: &'a str,
    description: &'a str,
    parameters: Option<toml::Table>,
    timeout_s: Option<i64>,
    behavior: Option<&'a str>,
}

/// The checks every declared tool shares: name, description, schema, timeout, behavior.
struct Common {
    name: String,
    description: String,
    parameters: Option<Value>,
    dropped: Vec<String>,
    timeout: Duration,
    non_blocking: bool,
}

fn common(i: usize, taken: &[String], p: Parts<'_>) -> Result<Common, EntryError> {
    let Parts {
        name,
        description,
        parameters,
        timeout_s,
        behavior,
    } = p;
    let err = |message: String| EntryError { index: i, message };
    let name = name.trim().to_string();
    let what = format!("tool `{name}`");
    if !valid_name(&name) {
        return Err(err(format!("invalid tool name {name:?}: use letters, digits, `_`, `.` or `-` (at most 64, starting with a letter or `_`)")));
    }
    if BUILTIN_NAMES.contains(&name.as_str()) {
        return Err(err(format!("{what}: the name is taken by a built-in tool")));
    }
    if taken.contains(&name) {
        return Err(err(format!("{what} is declared twice")));
    }
    if description.trim().is_empty() {
        return Err(err(format!(
            "{what}: the description is empty; the model decides from it when to call the tool"
        )));
    }
    let (parameters, dropped) = match parameters {
        None => (None, Vec::new()),
        Some(t) => {
            let json =
                serde_json::to_value(&t).map_err(|e| err(format!("{what}: parameters: {e}")))?;
            let c = schema::to_gemini(&json).ok_or_else(|| err(format!("{what}: parameters must be an object schema, e.g. parameters = {{ type = \"object\", properties = {{ state = {{ type = \"string\" }} }} }}")))?;
            (Some(c.schema), c.dropped)
        }
    };
    Ok(Common {
        name,
        description: description.trim().to_string(),
        parameters,
        dropped,
        timeout: timeout(timeout_s).map_err(|m| err(format!("{what}: {m}")))?,
        non_blocking: non_blocking(behavior).map_err(|m| err(format!("{what}: {m}")))?,
    })
}

/// `timeout_s`, checked.
fn timeout(timeout_s: Option<i64>) -> Result<Duration, String> {
    match timeout_s {
        None => Ok(Duration::from_secs(DEFAULT_TIMEOUT_S)),
        Some(t) if t >= 0 && TIMEOUT_RANGE_S.contains(&(t as u64)) => {
            Ok(Duration::from_secs(t as u64))
        }
        Some(t) => Err(format!(
            "timeout_s = {t} is out of range {}..={} seconds",
            TIMEOUT_RANGE_S.start(),
            TIMEOUT_RANGE_S.end()
        )),
    }
}

/// `behavior`, checked: true for `non_blocking`.
fn non_blocking(behavior: Option<&str>) -> Result<bool, String> {
    match behavior.map(str::to_ascii_lowercase).as_deref() {
        None | Some("blocking") => Ok(false),
        Some("non_blocking") => Ok(true),
        Some(other) => Err(format!(
            "behavior = {other:?}; expected \"blocking\" or \"non_blocking\""
        )),
    }
}

/// `headers = { … }`, checked (and placeholders checked against `props` when given).
fn headers(
    i: usize,
    what: &str,
    raw: &toml::Table,
    has_token_file: bool,
    props: Option<&[String]>,
) -> Result<Vec<(String, String)>, EntryError> {
    let err = |message: String| EntryError { index: i, message };
    let mut out = Vec::new();
    for (k, v) in raw {
        let Some(v) = v.as_str() else {
            return Err(err(format!("{what}: header {k:?} must be a string")));
        };
        if k.is_empty()
            || k.contains(|c: char| c.is_whitespace() || c == ':')
            || v.contains(['\r', '\n'])
        {
            return Err(err(format!("{what}: header {k:?} is not a valid header")));
        }
        if k.eq_ignore_ascii_case("authorization") && has_token_file {
            return Err(err(format!(
                "{what}: an Authorization header and bearer_token_file together; keep one"
            )));
        }
        if let Some(props) = props {
            check_placeholders(i, what, "a header", v, props)?;
        }
        out.push((k.clone(), v.to_string()));
    }
    Ok(out)
}

/// A token file path: relative to `base` (the config file's directory) unless absolute.
fn token_path(p: &str, base: &std::path::Path) -> std::path::PathBuf {
    let p = std::path::Path::new(p.trim());
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

/// The declared parameter names.
fn param_names(p: &Option<Value>) -> Vec<String> {
    p.as_ref()
        .and_then(|p| p.get("properties"))
        .and_then(Value::as_object)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

fn check_placeholders(
    i: usize,
    what: &str,
    key: &str,
    text: &str,
    props: &[String],
) -> Result<(), EntryError> {
    if let Some(p) = placeholders(text).find(|p| !props.iter().any(|q| q == p)) {
        return Err(EntryError {
            index: i,
            message: format!(
                "{what}: {key} uses {{{p}}}, which is not one of its parameters ({})",
                if props.is_empty() {
                    "it has none".to_string()
                } else {
                    props.join(", ")
                }
            ),
        });
    }
    Ok(())
}

/// Every string inside a body template.
fn strings(v: &toml::Value, out: &mut Vec<String>) {
    match v {
        toml::Value::String(s) => out.push(s.clone()),
        toml::Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
        toml::Value::Table(t) => t.values().for_each(|x| strings(x, out)),
        _ => {}
    }
}

/// Parses the `[[tools.http]]` array; `taken` are the names already declared (command tools).
/// A relative `bearer_token_file` is joined to `base` (the config file's directory).
pub fn http_tools(
    value: &toml::Value,
    taken: &[String],
    base: &std::path::Path,
) -> Result<Vec<HttpTool>, EntryError> {
    let err = |index: usize, message: String| EntryError { index, message };
    let raws: Vec<RawHttp> = entries(value, "http", "an entry needs name, description and url, and may have method, parameters, body, headers, bearer_token_file, timeout_s, confirm and behavior")?;
    let mut names: Vec<String> = taken.to_vec();
    let mut out = Vec::new();
    for (i, mut raw) in raws.into_iter().enumerate() {
        let c = common(i, &names, raw.parts())?;
        let what = format!("tool `{}`", c.name);
        let method = raw
            .method
            .as_deref()
            .unwrap_or("GET")
            .trim()
            .to_ascii_uppercase();
        if !["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&method.as_str()) {
            return Err(err(
                i,
                format!("{what}: method = {method:?}; expected GET, POST, PUT, PATCH or DELETE"),
            ));
        }
        let props = param_names(&c.parameters);
        check_placeholders(i, &what, "url", &raw.url, &props)?;
        // The URL must parse with every placeholder filled.
        let probe = raw.url.replace(['{', '}'], "");
        super::http::Url::parse(&probe).map_err(|e| err(i, format!("{what}: url: {e}")))?;
        let headers = headers(
            i,
            &what,
            &raw.headers,
            raw.bearer_token_file.is_some(),
            Some(&props),
        )?;
        let body = match &raw.body {
            None => None,
            Some(b) => {
                let mut ss = Vec::new();
                strings(b, &mut ss);
                for s in &ss {
                    check_placeholders(i, &what, "body", s, &props)?;
                }
                Some(serde_json::to_value(b).map_err(|e| err(i, format!("{what}: body: {e}")))?)
            }
        };
        let bearer_token_file = raw
            .bearer_token_file
            .as_deref()
            .map(|p| token_path(p, base));
        names.push(c.name.clone());
        out.push(HttpTool {
            name: c.name,
            description: c.description,
            parameters: c.parameters,
            dropped: c.dropped,
            method,
            url: raw.url,
            body,
            headers,
            bearer_token_file,
            timeout: c.timeout,
            confirm: raw.confirm,
            non_blocking: c.non_blocking,
        });
    }
    Ok(out)
}

/// Parses the `[[tools.mcp]]` array. Server names are unique among the servers; their tools'
/// names are only known once the servers answer (then clashes are reported and skipped).
pub fn mcp_servers(
    value: &toml::Value,
    base: &std::path::Path,
) -> Result<Vec<McpServer>, EntryError> {
    let raws: Vec<RawMcp> = entries(value, "mcp", "an entry needs name and either command (the argv of a stdio server) or url (Streamable HTTP), and may have headers, bearer_token_file, allow, deny, timeout_s and behavior")?;
    let mut out: Vec<McpServer> = Vec::new();
    for (i, raw) in raws.into_iter().enumerate() {
        let err = |message: String| EntryError { index: i, message };
        let name = raw.name.trim().to_string();
        if !valid_name(&name) {
            return Err(err(format!(
                "invalid server name {name:?}: use letters, digits, `_`, `.` or `-`"
            )));
        }
        let what = format!("server `{name}`");
        if out.iter().any(|s| s.name == name) {
            return Err(err(format!("{what} is declared twice")));
        }
        let transport = match (raw.command, raw.url) {
            (Some(c), None) => {
                if c.is_empty() || c[0].trim().is_empty() {
                    return Err(err(format!("{what}: command must name a program, e.g. command = [\"/usr/local/bin/mcp-server-time\"]")));
                }
                if !raw.headers.is_empty() || raw.bearer_token_file.is_some() {
                    return Err(err(format!("{what}: headers and bearer_token_file are for url servers; a command server gets what it needs on its command line or from its own files")));
                }
                McpTransport::Stdio(c)
            }
            (None, Some(url)) => {
                super::http::Url::parse(url.trim())
                    .map_err(|e| err(format!("{what}: url: {e}")))?;
                McpTransport::Http {
                    url: url.trim().to_string(),
                    headers: headers(
                        i,
                        &what,
                        &raw.headers,
                        raw.bearer_token_file.is_some(),
                        None,
                    )?,
                    bearer_token_file: raw
                        .bearer_token_file
                        .as_deref()
                        .map(|p| token_path(p, base)),
                }
            }
            (Some(_), Some(_)) => {
                return Err(err(format!(
                    "{what}: both command and url; a server is one or the other"
                )))
            }
            (None, None) => {
                return Err(err(format!(
                    "{what}: needs command (the argv of a stdio server) or url (Streamable HTTP)"
                )))
            }
        };
        let allow = raw.allow.unwrap_or_default();
        if let Some(a) = allow.iter().find(|a| raw.deny.contains(a)) {
            return Err(err(format!("{what}: `{a}` is in both allow and deny")));
        }
        out.push(McpServer {
            name,
            transport,
            allow,
            deny: raw.deny,
            timeout: timeout(raw.timeout_s).map_err(|m| err(format!("{what}: {m}")))?,
            non_blocking: non_blocking(raw.behavior.as_deref())
                .map_err(|m| err(format!("{what}: {m}")))?,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<CommandTool>, EntryError> {
        let t: toml::Table = toml::from_str(text).unwrap();
        command_tools(&t["tools"]["command"])
    }

    #[test]
    fn a_command_tool_is_read_with_its_schema() {
        let t = parse(
            r#"
[[tools.command]]
name = "lights"
description = "Switch the lights."
command = ["/usr/local/bin/lights", "--state={state}", "{room}"]
parameters = { type = "object", properties = { state = { type = "string", enum = ["on", "off"] }, room = { type = "string" } }, required = ["state"] }
confirm = true
timeout_s = 3

[[tools.command]]
name = "uptime"
description = "How long the box has been up."
command = ["uptime"]
behavior = "non_blocking"
"#,
        )
        .unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].timeout, Duration::from_secs(3));
        assert!(t[0].confirm && !t[0].non_blocking);
        assert_eq!(
            t[0].parameters.as_ref().unwrap()["properties"]["state"]["type"],
            "STRING"
        );
        assert_eq!(t[1].parameters, None);
        assert_eq!(t[1].timeout, Duration::from_secs(DEFAULT_TIMEOUT_S));
        assert!(t[1].non_blocking);
    }

    #[test]
    fn mistakes_are_named() {
        let base = |extra: &str| {
            format!("[[tools.command]]\nname = \"x\"\ndescription = \"d\"\ncommand = [\"true\"]\n{extra}")
        };
        let e = |text: &str| parse(text).unwrap_err().message;
        assert!(e(&base("timeout_s = 0")).contains("out of range 1..=600"));
        assert!(e(&base("behavior = \"later\"")).contains("non_blocking"));
        assert!(e(&base("colour = 1")).contains("colour"));
        assert!(e(&base("parameters = { type = \"string\" }")).contains("object schema"));
        assert!(e(&base("").replace("[\"true\"]", "[\"echo\", \"{who}\"]")).contains("{who}"));
        assert!(e(&base("").replace("\"x\"", "\"9lives\"")).contains("invalid tool name"));
        assert!(e(&base("").replace("\"x\"", "\"set_volume\"")).contains("built-in"));
        assert!(e(&base("").replace("\"d\"", "\" \"")).contains("description is empty"));
        assert!(e(&base("").replace("[\"true\"]", "[]")).contains("must name a program"));
        let twice = format!("{}\n{}", base(""), base(""));
        let err = parse(&twice).unwrap_err();
        assert_eq!(err.index, 1);
        assert!(err.message.contains("declared twice"));
    }

    #[test]
    fn names_and_placeholders() {
        for ok in ["a", "_x", "get_current_time", "ha.turn-on", &"a".repeat(64)] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in ["", "1a", "-a", "a b", "ä", &"a".repeat(65)] {
            assert!(!valid_name(bad), "{bad}");
        }
        assert_eq!(
            placeholders("--x={a}:{b_2}").collect::<Vec<_>>(),
            ["a", "b_2"]
        );
        assert_eq!(placeholders("{}{ x}{y").count(), 0);
    }
}

#[cfg(test)]
mod http_tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<HttpTool>, EntryError> {
        let t: toml::Table = toml::from_str(text).unwrap();
        http_tools(
            &t["tools"]["http"],
            &["lights".to_string()],
            std::path::Path::new("/etc/gemlive"),
        )
    }

    #[test]
    fn an_http_tool_is_read_and_checked() {
        let t = parse(
            r#"
[[tools.http]]
name = "weather"
description = "The weather."
url = "https://api.example.com/w?city={city}"
parameters = { type = "object", properties = { city = { type = "string" } } }
headers = { X-Units = "metric" }
bearer_token_file = "weather-token"
[[tools.http]]
name = "hook"
description = "Ring the hook."
method = "post"
url = "http://127.0.0.1:8080/hook"
body = { event = "doorbell", n = 1 }
"#,
        )
        .unwrap();
        assert_eq!(t[0].method, "GET");
        assert_eq!(
            t[0].bearer_token_file.as_deref(),
            Some(std::path::Path::new("/etc/gemlive/weather-token"))
        );
        assert_eq!(
            t[0].headers,
            [("X-Units".to_string(), "metric".to_string())]
        );
        assert_eq!(t[1].method, "POST");
        assert_eq!(
            t[1].body,
            Some(serde_json::json!({"event": "doorbell", "n": 1}))
        );
        let base = "[[tools.http]]\nname = \"x\"\ndescription = \"d\"\n";
        let e = |extra: &str| parse(&format!("{base}{extra}")).unwrap_err().message;
        assert!(e("url = \"ftp://x\"").contains("not an http"));
        assert!(e("url = \"http://h/{nope}\"").contains("{nope}"));
        assert!(e("url = \"http://h/\"\nmethod = \"TRACE\"").contains("GET, POST"));
        assert!(e(
            "url = \"http://h/\"\nheaders = { Authorization = \"x\" }\nbearer_token_file = \"/t\""
        )
        .contains("keep one"));
        let dup =
            parse("[[tools.http]]\nname = \"lights\"\ndescription = \"d\"\nurl = \"http://h/\"\n")
                .unwrap_err();
        assert!(dup.message.contains("declared twice"));
    }
}

#[cfg(test)]
mod mcp_tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<McpServer>, EntryError> {
        let t: toml::Table = toml::from_str(text).unwrap();
        mcp_servers(&t["tools"]["mcp"], std::path::Path::new("/etc/gemlive"))
    }

    #[test]
    fn mcp_servers_are_read_and_checked() {
        let s = parse(
            r#"
[[tools.mcp]]
name = "time"
command = ["mcp-server-time", "--local-timezone", "Europe/Berlin"]
deny = ["convert_time"]
[[tools.mcp]]
name = "home"
url = "http://homeassistant.local:8123/api/mcp"
bearer_token_file = "ha-token"
allow = ["HassTurnOn", "HassTurnOff"]
timeout_s = 20
behavior = "non_blocking"
"#,
        )
        .unwrap();
        assert_eq!(
            s[0].transport,
            McpTransport::Stdio(vec![
                "mcp-server-time".into(),
                "--local-timezone".into(),
                "Europe/Berlin".into()
            ])
        );
        assert!(s[0].offers("get_current_time") && !s[0].offers("convert_time"));
        assert_eq!(
            s[1].transport,
            McpTransport::Http {
                url: "http://homeassistant.local:8123/api/mcp".into(),
                headers: Vec::new(),
                bearer_token_file: Some("/etc/gemlive/ha-token".into()),
            }
        );
        assert!(s[1].offers("HassTurnOn") && !s[1].offers("GetLiveContext"));
        assert_eq!(s[1].timeout, Duration::from_secs(20));
        assert!(s[1].non_blocking && !s[0].non_blocking);

        let e = |body: &str| {
            parse(&format!("[[tools.mcp]]\nname = \"x\"\n{body}"))
                .unwrap_err()
                .message
        };
        assert!(e("").contains("needs command"));
        assert!(e("command = [\"a\"]\nurl = \"http://h/\"").contains("one or the other"));
        assert!(e("url = \"ftp://h/\"").contains("not an http"));
        assert!(e("command = [\"a\"]\nbearer_token_file = \"t\"").contains("for url servers"));
        assert!(
            e("command = [\"a\"]\nallow = [\"t\"]\ndeny = [\"t\"]").contains("both allow and deny")
        );
        assert!(e("command = [\"a\"]\ntimeout_s = 0").contains("out of range"));
        assert!(e("command = [\"a\"]\nport = 1").contains("unknown field"));
        let twice = parse("[[tools.mcp]]\nname = \"a\"\ncommand = [\"x\"]\n[[tools.mcp]]\nname = \"a\"\ncommand = [\"y\"]\n").unwrap_err();
        assert_eq!(twice.index, 1);
        assert!(twice.message.contains("declared twice"));
    }
}
