//! TLS WebSocket to the Live API: URL rules, rustls with the ring provider chosen explicitly,
//! the API key in the `x-goog-api-key` header (or an ephemeral token in `Authorization`).
//! Frames only: no JSON, no policy.

use std::io;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

use crate::live::Credential;

/// The public Gemini Developer API endpoint (v1beta).
pub const DEFAULT_ENDPOINT: &str = "wss://generativelanguage.googleapis.com/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent";

/// The method that takes ephemeral tokens (v1alpha, where the service documents them).
pub const CONSTRAINED_ENDPOINT: &str = "wss://generativelanguage.googleapis.com/ws/google.ai.generativelanguage.v1alpha.GenerativeService.BidiGenerateContentConstrained";

pub type LiveSocket = WebSocketStream<MaybeTlsStream<Counted>>;

/// The TCP stream under TLS, counting every byte handed to the kernel. With the kernel's count
/// of bytes not yet acknowledged (`SIOCOUTQ`) this gives the stream offset the server's TCP
/// stack has acknowledged, which is what dead-link detection and exact resending rely on.
pub struct Counted {
    tcp: TcpStream,
    written: Arc<AtomicU64>,
    base: u64,
}

/// A read-only view of a connection's socket, valid while the socket is open.
#[derive(Debug, Clone)]
pub struct SocketProbe {
    fd: RawFd,
    written: Arc<AtomicU64>,
    /// `tcpi_bytes_acked` before the first byte was written (the SYN may count on some kernels).
    base: u64,
}

/// What the kernel says about the bytes written so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Acks {
    /// Bytes written to the socket since it opened (TLS handshake and upgrade included).
    pub written: u64,
    /// Of those, bytes the peer's TCP stack has acknowledged.
    pub acked: u64,
}

/// `tcpi_bytes_acked` of a TCP socket (Linux 4.1+). It survives a reset, unlike the send
/// queue (`SIOCOUTQ`), which a reset empties as if everything had been delivered.
fn bytes_acked(fd: RawFd) -> Option<u64> {
    let mut info = std::mem::MaybeUninit::<libc::tcp_info>::zeroed();
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // Read-only query into a buffer of the size we pass; the caller keeps the fd open.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            info.as_mut_ptr().cast(),
            &mut len,
        )
    };
    let need = std::mem::offset_of!(libc::tcp_info, tcpi_bytes_acked) + 8;
    if rc != 0 || (len as usize) < need {
        return None;
    }
    // Zeroed, then filled by the kernel up to `len`, which covers the field.
    let info = unsafe { info.assume_init() };
    Some(info.tcpi_bytes_acked)
}

impl SocketProbe {
    /// Bytes handed to the kernel so far.
    pub fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }

    /// `None` where the kernel does not tell (not Linux, a kernel older than 4.1).
    pub fn acks(&self) -> Option<Acks> {
        // Acknowledged first: whatever is written after this read cannot count as acked.
        let acked = bytes_acked(self.fd)?.saturating_sub(self.base);
        let written = self.written.load(Ordering::Relaxed);
        Some(Acks {
            written,
            acked: acked.min(written),
        })
    }
}

impl Counted {
    /// The probe must only be used while this stream (and so the fd) is alive: the
    /// connection task owns both and drops them together.
    pub fn probe(&self) -> SocketProbe {
        SocketProbe {
            fd: self.tcp.as_raw_fd(),
            written: self.written.clone(),
            base: self.base,
        }
    }
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.tcp).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &r {
            self.written.fetch_add(*n as u64, Ordering::Relaxed);
        }
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = &r {
            self.written.fetch_add(*n as u64, Ordering::Relaxed);
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

/// The socket under a WebSocket, for its probe.
pub fn counted(ws: &LiveSocket) -> Option<&Counted> {
    match ws.get_ref() {
        MaybeTlsStream::Plain(s) => Some(s),
        MaybeTlsStream::Rustls(t) => Some(t.get_ref().0),
        // MaybeTlsStream is non-exhaustive; `connect` builds only the two above.
        _ => None,
    }
}

/// Why an endpoint URL is refused before any byte goes on the wire.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EndpointError {
    #[error("`{0}` is not a valid URL (expected wss://HOST/PATH)")]
    Invalid(String),
    #[error(
        "unsupported scheme `{0}`: use wss:// (or ws:// to a loopback address for local testing)"
    )]
    Scheme(String),
    #[error("plain ws:// is only allowed to a loopback host (127.0.0.1, ::1, localhost), not `{0}`: the API key would cross the network in clear text; use wss://")]
    InsecureRemote(String),
}

/// A checked endpoint: wss:// anywhere, ws:// only to loopback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    url: String,
    tls: bool,
    host: String,
}

impl Endpoint {
    pub fn parse(url: &str) -> Result<Self, EndpointError> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| EndpointError::Invalid(url.to_string()))?;
        let tls = match scheme.to_ascii_lowercase().as_str() {
            "wss" => true,
            "ws" => false,
            other => return Err(EndpointError::Scheme(other.to_string())),
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        // Userinfo would put credentials in the URL; refuse rather than guess.
        if authority.is_empty() || authority.contains('@') {
            return Err(EndpointError::Invalid(url.to_string()));
        }
        let host = if let Some(v6) = authority.strip_prefix('[') {
            v6.split(']').next().unwrap_or("").to_string()
        } else {
            authority.split(':').next().unwrap_or("").to_string()
        };
        if host.is_empty() {
            return Err(EndpointError::Invalid(url.to_string()));
        }
        if !tls && !is_loopback(&host) {
            return Err(EndpointError::InsecureRemote(host));
        }
        Ok(Endpoint {
            url: url.to_string(),
            tls,
            host,
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn is_tls(&self) -> bool {
        self.tls
    }

    pub fn host(&self) -> &str {
        &self.host
    }
}

/// `localhost` or a loopback address: where plain (unencrypted) connections are allowed.
pub fn is_loopback(host: &str) -> bool {
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    host.parse::<IpAddr>()
        .map(|ip| ip.is_loopback())
        .unwrap_or(false)
}

/// Why a connection attempt failed. Callers branch on these (issue 4: retry vs. give up).
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error(transparent)]
    Endpoint(#[from] EndpointError),
    #[error("the API key or token contains characters that cannot be sent in an HTTP header")]
    BadKey,
    #[error("TLS set-up failed")]
    Tls(#[source] rustls::Error),
    #[error("server refused the WebSocket upgrade with HTTP {status}{}", if .detail.is_empty() { String::new() } else { format!(": {}", .detail) })]
    Rejected {
        status: u16,
        /// The start of the response body (Google explains a refused key there), one line.
        detail: String,
    },
    #[error("could not connect to {host}")]
    Io {
        host: String,
        #[source]
        source: tokio_tungstenite::tungstenite::Error,
    },
}

/// rustls with the ring provider, chosen explicitly: tokio-tungstenite's own path would call
/// `ClientConfig::builder()`, which panics when no process-wide provider is installed.
pub fn tls_config() -> Result<rustls::ClientConfig, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// Server audio messages are 13–21 KB, but a generous bound costs nothing until used.
fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(Some(16 << 20))
        .max_frame_size(Some(16 << 20))
}

/// Opens the WebSocket. The key travels only in the `x-goog-api-key` header, a token only in
/// `Authorization: Token …` (never in the URL, which proxies log).
pub async fn connect(endpoint: &Endpoint, cred: &Credential) -> Result<LiveSocket, ConnectError> {
    let mut req = endpoint
        .url()
        .into_client_request()
        .map_err(|source| ConnectError::Io {
            host: endpoint.host().to_string(),
            source,
        })?;
    let (name, text) = match cred {
        Credential::Key(k) => ("x-goog-api-key", k.expose().to_string()),
        Credential::Token(t) => ("authorization", format!("Token {}", t.expose())),
    };
    let mut value = HeaderValue::from_str(&text).map_err(|_| ConnectError::BadKey)?;
    value.set_sensitive(true);
    req.headers_mut().insert(name, value);
    let connector = if endpoint.is_tls() {
        Connector::Rustls(Arc::new(tls_config().map_err(ConnectError::Tls)?))
    } else {
        Connector::Plain
    };
    let io = |source: std::io::Error| ConnectError::Io {
        host: endpoint.host().to_string(),
        source: tokio_tungstenite::tungstenite::Error::Io(source),
    };
    let port = req
        .uri()
        .port_u16()
        .unwrap_or(if endpoint.is_tls() { 443 } else { 80 });
    let tcp = TcpStream::connect((endpoint.host(), port))
        .await
        .map_err(io)?;
    // Mic chunks are small and latency matters more than packet count.
    tcp.set_nodelay(true).map_err(io)?;
    let stream = Counted {
        base: bytes_acked(tcp.as_raw_fd()).unwrap_or(0),
        tcp,
        written: Arc::new(AtomicU64::new(0)),
    };
    match tokio_tungstenite::client_async_tls_with_config(
        req,
        stream,
        Some(ws_config()),
        Some(connector),
    )
    .await
    {
        Ok((ws, _resp)) => Ok(ws),
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => Err(ConnectError::Rejected {
            status: resp.status().as_u16(),
            detail: body_excerpt(resp.body().as_deref().unwrap_or_default(), secret(cred)),
        }),
        Err(source) => Err(ConnectError::Io {
            host: endpoint.host().to_string(),
            source,
        }),
    }
}

/// The first line-worth of an error body: the `message` of a Google JSON error when there is
/// one, else the text, whitespace collapsed, at most 200 characters, never the key.
fn secret(cred: &Credential) -> &str {
    match cred {
        Credential::Key(k) => k.expose(),
        Credential::Token(t) => t.expose(),
    }
}

fn body_excerpt(body: &[u8], secret: &str) -> String {
    let text = String::from_utf8_lossy(body);
    let message = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| {
            v.pointer("/error/message")
                .and_then(|m| m.as_str())
                .map(str::to_string)
        })
        .unwrap_or_else(|| text.into_owned());
    let mut one: String = message.split_whitespace().collect::<Vec<_>>().join(" ");
    if !secret.is_empty() {
        one = one.replace(secret, "[redacted]");
    }
    if one.chars().count() > 200 {
        one = one.chars().take(200).collect::<String>() + "…";
    }
    one
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_rules() {
        assert!(Endpoint::parse(DEFAULT_ENDPOINT).unwrap().is_tls());
        for ok in [
            "ws://127.0.0.1:8080/",
            "ws://localhost:9/x",
            "ws://[::1]:80/",
            "ws://127.3.2.1/",
        ] {
            assert!(Endpoint::parse(ok).is_ok(), "{ok}");
        }
        assert_eq!(
            Endpoint::parse("ws://192.168.1.5:8080/"),
            Err(EndpointError::InsecureRemote("192.168.1.5".into()))
        );
        assert_eq!(
            Endpoint::parse("ws://example.com/"),
            Err(EndpointError::InsecureRemote("example.com".into()))
        );
        assert!(matches!(
            Endpoint::parse("http://example.com/"),
            Err(EndpointError::Scheme(_))
        ));
        assert!(matches!(
            Endpoint::parse("ws://user:pw@127.0.0.1/"),
            Err(EndpointError::Invalid(_))
        ));
        assert!(matches!(
            Endpoint::parse("nonsense"),
            Err(EndpointError::Invalid(_))
        ));
    }

    #[test]
    fn body_excerpts_are_short_and_keyless() {
        let key = "AIzaSECRET";
        let j = br#"{"error":{"code":400,"message":"API key not valid.  Please pass a valid API key.","status":"INVALID_ARGUMENT"}}"#;
        assert_eq!(
            body_excerpt(j, key),
            "API key not valid. Please pass a valid API key."
        );
        assert_eq!(
            body_excerpt(b"bad AIzaSECRET\n\n x", key),
            "bad [redacted] x"
        );
        assert_eq!(body_excerpt(&[b'a'; 500], key).chars().count(), 201);
    }

    /// The acknowledged count is exact on loopback, and a reset does not turn unacknowledged
    /// bytes into acknowledged ones.
    #[tokio::test]
    async fn acks_count_exactly_and_survive_a_reset() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let tcp = TcpStream::connect(addr).await.unwrap();
        let (mut peer, _) = l.accept().await.unwrap();
        let mut c = Counted {
            base: bytes_acked(tcp.as_raw_fd()).unwrap(),
            tcp,
            written: Arc::new(AtomicU64::new(0)),
        };
        let p = c.probe();
        c.write_all(&[7u8; 10_000]).await.unwrap();
        let mut buf = vec![0u8; 10_000];
        peer.read_exact(&mut buf).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert_eq!(
            p.acks(),
            Some(Acks {
                written: 10_000,
                acked: 10_000
            })
        );
        // The peer vanishes with a reset while more is written: never counted as acked
        // beyond what its stack took.
        // A zero linger never blocks: it turns the close into a reset, which is the point.
        #[allow(deprecated)]
        peer.set_linger(Some(std::time::Duration::ZERO)).unwrap();
        drop(peer);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let _ = c.write_all(&[8u8; 5_000]).await;
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let a = p.acks().unwrap();
        assert_eq!(a.acked, 10_000, "{a:?}");
    }

    #[test]
    fn tls_config_builds_without_a_process_provider() {
        assert!(tls_config().is_ok());
    }
}
