//! What an MCP server sends, through the client's parsers: a Streamable-HTTP answer as a
//! server-sent-event body, a `tools/list` result (converted to declarations) and a
//! `tools/call` result (converted to the model's response). Nothing may panic, and what reaches
//! the model stays within its bounds: valid names, a capped count, short descriptions, object
//! schemas, a capped response.

#![no_main]

use std::time::Duration;

use gemlive::tools::mcp::{call_response, convert_tools, sse_messages, MAX_RESULT_BYTES, MAX_TOOLS};
use gemlive::tools::settings::{valid_name, McpServer, McpTransport};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fn check(server: &McpServer, v: &Value) {
    let tools: Vec<Value> = match v.get("tools").and_then(Value::as_array) {
        Some(a) => a.clone(),
        None => v.as_array().cloned().unwrap_or_default(),
    };
    let l = convert_tools(server, &tools);
    assert!(l.tools.len() <= MAX_TOOLS);
    for t in &l.tools {
        assert!(valid_name(&t.name), "{:?}", t.name);
        assert!(server.offers(&t.name));
        assert!(!t.description.is_empty() && t.description.len() <= 4096);
        if let Some(p) = &t.parameters {
            assert_eq!(p["type"], "OBJECT", "{p}");
        }
    }
    let r = call_response(v);
    let obj = r.as_object().expect("the response is an object");
    match (obj.get("error"), obj.get("output")) {
        (Some(Value::String(s)), _) | (_, Some(Value::String(s))) if obj.len() == 1 => {
            assert!(s.len() <= MAX_RESULT_BYTES)
        }
        _ => assert!(r.to_string().len() <= MAX_RESULT_BYTES, "structured result too long"),
    }
}

fuzz_target!(|data: &[u8]| {
    let server = McpServer {
        name: "fuzz".into(),
        transport: McpTransport::Stdio(vec!["x".into()]),
        allow: Vec::new(),
        deny: vec!["denied".into()],
        timeout: Duration::from_secs(1),
        non_blocking: false,
    };
    for m in sse_messages(data) {
        check(&server, &m);
        if let Some(r) = m.get("result") {
            check(&server, r);
        }
    }
    if let Ok(v) = serde_json::from_slice::<Value>(data) {
        check(&server, &v);
    }
});
