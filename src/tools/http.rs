//! `[[tools.http]]`: one HTTP request per call, on a small HTTP/1.1 client of our own (the
//! `httparse` and `tokio-rustls` the WebSocket already brings, and the same rustls/ring
//! configuration, always verified). Placeholders in the URL are percent-encoded; in the body
//! template a string that is exactly `{name}` becomes that argument's JSON value.

use std::sync::Arc;

use serde_json::{json, Map, Value};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::settings::{fill, placeholders, HttpTool};

/// The response read, at most (headers and body); the rest is not read.
pub const MAX_RESPONSE_BYTES: usize = 1 << 20;
/// The body handed to the model, at most.
pub const MAX_BODY_TO_MODEL: usize = 16 << 10;
/// A bearer token file, at most.
const MAX_TOKEN_BYTES: u64 = 4 << 10;

/// A parsed `http://` or `https://` URL: enough for a request line and a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    pub tls: bool,
    pub host: String,
    pub port: u16,
    /// Path and query, starting with `/`.
    pub target: String,
}

impl Url {
    pub fn parse(s: &str) -> Result<Url, String> {
        let (tls, rest) = if let Some(r) = s.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = s.strip_prefix("http://") {
            (false, r)
        } else {
            return Err(format!("{s:?} is not an http:// or https:// URL"));
        };
        let (authority, target) = match rest.find(['/', '?']) {
            Some(i) if rest.as_bytes()[i] == b'/' => (&rest[..i], rest[i..].to_string()),
            Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
            None => (rest, "/".to_string()),
        };
        if authority.contains('@') {
            return Err(
                "credentials in the URL are not supported; use bearer_token_file or headers".into(),
            );
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => {
                let port = p.parse::<u16>().map_err(|_| format!("bad port in {s:?}"))?;
                (h, port)
            }
            _ => (authority, if tls { 443 } else { 80 }),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() || target.contains(char::is_whitespace) {
            return Err(format!("{s:?} is not a valid URL"));
        }
        Ok(Url {
            tls,
            host: host.to_string(),
            port,
            target,
        })
    }

    fn host_header(&self) -> String {
        let default = if self.tls { 443 } else { 80 };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == default {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
pub fn pct(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The body template with the arguments put in: a string that is exactly `{name}` takes the
/// argument's JSON value (numbers stay numbers); other strings get text substitution.
pub fn body(template: &Value, args: &Map<String, Value>) -> Value {
    match template {
        Value::String(s) => {
            let whole = s
                .strip_prefix('{')
                .and_then(|r| r.strip_suffix('}'))
                .filter(|n| placeholders(s).next() == Some(*n));
            match whole {
                Some(n) => args.get(n).cloned().unwrap_or(Value::Null),
                None => Value::String(fill(s, args, str::to_string)),
            }
        }
        Value::Array(a) => Value::Array(a.iter().map(|v| body(v, args)).collect()),
        Value::Object(o) => {
            Value::Object(o.iter().map(|(k, v)| (k.clone(), body(v, args))).collect())
        }
        other => other.clone(),
    }
}

/// A bearer token from its file: mode 0600 (like the API key), one line.
pub fn read_token(path: &std::path::Path) -> Result<String, String> {
    let t = crate::service::read_secret(path, "bearer_token_file", MAX_TOKEN_BYTES)?;
    if t.contains(char::is_whitespace) {
        return Err(format!(
            "bearer_token_file {} must hold only the token, on one line",
            path.display()
        ));
    }
    Ok(t)
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// What came back.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub content_type: String,
    /// Every header, as text.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The body was longer than [`MAX_RESPONSE_BYTES`] allowed.
    pub truncated: bool,
}

/// One request, `Connection: close`. An `Accept` in `headers` replaces the default one.
pub async fn request(
    method: &str,
    url: &Url,
    headers: &[(String, String)],
    body: Option<&[u8]>,
) -> Result<Response, String> {
    let tcp = tokio::net::TcpStream::connect((url.host.as_str(), url.port))
        .await
        .map_err(|e| format!("cannot connect to {}:{}: {e}", url.host, url.port))?;
    let _ = tcp.set_nodelay(true);
    let mut io: Box<dyn Io> = if url.tls {
        let cfg = crate::live::transport::tls_config().map_err(|e| format!("TLS set-up: {e}"))?;
        let name = rustls::pki_types::ServerName::try_from(url.host.clone())
            .map_err(|e| format!("bad host name {:?}: {e}", url.host))?;
        let tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS with {}: {e}", url.host))?;
        Box::new(tls)
    } else {
        Box::new(tcp)
    };
    let mut head = format!(
        "{method} {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: gemlive/{}\r\nConnection: close\r\n",
        url.target,
        url.host_header(),
        env!("CARGO_PKG_VERSION")
    );
    if !headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("accept"))
    {
        head.push_str("Accept: application/json, text/plain;q=0.9, */*;q=0.5\r\n");
    }
    for (k, v) in headers {
        if k.contains(['\r', '\n', ':']) || v.contains(['\r', '\n']) {
            return Err(format!("header {k:?} has a line break or colon in it"));
        }
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some(b) = body {
        head.push_str(&format!("Content-Length: {}\r\n", b.len()));
    }
    head.push_str("\r\n");
    io.write_all(head.as_bytes())
        .await
        .map_err(|e| format!("sending the request: {e}"))?;
    if let Some(b) = body {
        io.write_all(b)
            .await
            .map_err(|e| format!("sending the body: {e}"))?;
    }
    io.flush().await.map_err(|e| format!("sending: {e}"))?;
    let mut raw = Vec::new();
    let mut buf = vec![0u8; 16 << 10];
    let mut truncated = false;
    loop {
        match io.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => {
                raw.extend_from_slice(&buf[..n]);
                if raw.len() > MAX_RESPONSE_BYTES {
                    raw.truncate(MAX_RESPONSE_BYTES);
                    truncated = true;
                    break;
                }
            }
            // A TLS peer that closes without close_notify still sent a whole response.
            Err(e) if !raw.is_empty() && e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(format!("reading the response: {e}")),
        }
    }
    parse_response(&raw, truncated)
}

/// Parses a whole `Connection: close` response.
pub fn parse_response(raw: &[u8], truncated: bool) -> Result<Response, String> {
    let mut hs = [httparse::EMPTY_HEADER; 64];
    let mut r = httparse::Response::new(&mut hs);
    let head_len = match r.parse(raw) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            return Err("the server's answer ended inside its headers".into())
        }
        Err(e) => return Err(format!("not an HTTP response: {e}")),
    };
    let status = r.code.unwrap_or(0);
    let header = |name: &str| {
        r.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).trim().to_string())
    };
    let content_type = header("content-type").unwrap_or_default();
    let chunked =
        header("transfer-encoding").is_some_and(|t| t.to_ascii_lowercase().contains("chunked"));
    let rest = &raw[head_len..];
    let body = if chunked {
        dechunk(rest)
    } else {
        match header("content-length").and_then(|l| l.parse::<usize>().ok()) {
            Some(n) => rest[..n.min(rest.len())].to_vec(),
            None => rest.to_vec(),
        }
    };
    let headers = r
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_string(),
                String::from_utf8_lossy(h.value).trim().to_string(),
            )
        })
        .collect();
    Ok(Response {
        status,
        content_type,
        headers,
        body,
        truncated,
    })
}

/// Decodes a chunked body (as much as arrived).
fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = b.windows(2).position(|w| w == b"\r\n") {
        let size_text = String::from_utf8_lossy(&b[..eol]);
        let Ok(size) = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
        else {
            break;
        };
        if size == 0 {
            break;
        }
        let start = eol + 2;
        let end = (start + size).min(b.len());
        out.extend_from_slice(&b[start..end]);
        if end + 2 > b.len() {
            break;
        }
        b = &b[end + 2..];
    }
    out
}

/// The body for the model: JSON if it is JSON, else text, cut to [`MAX_BODY_TO_MODEL`].
fn body_for_model(r: &Response) -> Value {
    if !r.truncated {
        if let Ok(v) = serde_json::from_slice::<Value>(&r.body) {
            if v.to_string().len() <= MAX_BODY_TO_MODEL {
                return v;
            }
        }
    }
    let text = String::from_utf8_lossy(&r.body);
    let cut = text.floor_char_boundary(MAX_BODY_TO_MODEL.min(text.len()));
    Value::String(text[..cut].to_string())
}

/// Runs one call and returns the `response` object.
pub async fn run(tool: &HttpTool, args: &Map<String, Value>) -> Value {
    let url_text = fill(&tool.url, args, pct);
    let url = match Url::parse(&url_text) {
        Ok(u) => u,
        Err(e) => return json!({ "error": e }),
    };
    let mut headers: Vec<(String, String)> = tool
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), fill(v, args, str::to_string)))
        .collect();
    if let Some(path) = &tool.bearer_token_file {
        match read_token(path) {
            Ok(t) => headers.push(("Authorization".into(), format!("Bearer {t}"))),
            Err(e) => return json!({ "error": e }),
        }
    }
    let payload = tool.body.as_ref().map(|t| body(t, args).to_string());
    if payload.is_some() {
        headers.push(("Content-Type".into(), "application/json".into()));
    }
    let work = request(
        &tool.method,
        &url,
        &headers,
        payload.as_deref().map(str::as_bytes),
    );
    let r = match tokio::time::timeout(tool.timeout, work).await {
        Err(_) => {
            return json!({"error": format!("no answer from {} within {} s", url.host, tool.timeout.as_secs())})
        }
        Ok(Err(e)) => return json!({ "error": e }),
        Ok(Ok(r)) => r,
    };
    let body = body_for_model(&r);
    if (200..300).contains(&r.status) {
        json!({"status": r.status, "body": body})
    } else {
        json!({"error": format!("HTTP {}", r.status), "status": r.status, "body": body})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            Url::parse("https://example.com/a/b?c=d").unwrap(),
            Url {
                tls: true,
                host: "example.com".into(),
                port: 443,
                target: "/a/b?c=d".into()
            }
        );
        let u = Url::parse("http://127.0.0.1:8123").unwrap();
        assert_eq!(
            (u.port, u.target.as_str(), u.host_header()),
            (8123, "/", "127.0.0.1:8123".into())
        );
        assert_eq!(Url::parse("http://h?x=1").unwrap().target, "/?x=1");
        assert_eq!(Url::parse("http://[::1]:80/").unwrap().host, "::1");
        for bad in [
            "ftp://x/",
            "http://",
            "http://u:p@h/",
            "http://h:99999/",
            "http://h/a b",
        ] {
            assert!(Url::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn placeholders_are_encoded_and_bodies_keep_types() {
        let args: Map<String, Value> =
            serde_json::from_str(r#"{"q": "a b&c=d/é", "n": 3, "on": true}"#).unwrap();
        assert_eq!(
            fill("/search?q={q}&n={n}", &args, pct),
            "/search?q=a%20b%26c%3Dd%2F%C3%A9&n=3"
        );
        let t = json!({"query": "{q}", "count": "{n}", "text": "n is {n}", "list": ["{on}"], "fixed": 1});
        assert_eq!(
            body(&t, &args),
            json!({"query": "a b&c=d/é", "count": 3, "text": "n is 3", "list": [true], "fixed": 1})
        );
    }

    #[test]
    fn responses_plain_chunked_and_cut() {
        let r = parse_response(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 8\r\n\r\n{\"a\": 1}junk", false).unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"{\"a\": 1}"[..]));
        assert_eq!(body_for_model(&r), json!({"a": 1}));
        let r = parse_response(b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nnot \r\n5;x=y\r\nfound\r\n0\r\n\r\n", false).unwrap();
        assert_eq!((r.status, r.body.as_slice()), (404, &b"not found"[..]));
        assert_eq!(body_for_model(&r), json!("not found"));
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nContent-", false).is_err());
        assert!(parse_response(b"SSH-2.0-OpenSSH\r\n", false).is_err());
        let big = Response {
            status: 200,
            content_type: String::new(),
            headers: Vec::new(),
            body: vec![b'x'; 100_000],
            truncated: false,
        };
        assert_eq!(
            body_for_model(&big).as_str().map(str::len),
            Some(MAX_BODY_TO_MODEL)
        );
    }
}
