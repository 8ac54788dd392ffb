//! Home Assistant over MQTT (`[mqtt]`): discovery configs, state topics that follow the
//! daemon's events, and command topics that become control commands (`docs/design.md`,
//! "Home Assistant over MQTT").
//!
//! The broker lives in its own task: a broker that is down, slow or gone changes nothing
//! else. Commands reach the daemon through the same [`Hub`](crate::control::Hub) the control
//! socket uses; state comes from the hub's events.

pub mod discovery;

use std::sync::Arc;
use std::time::Duration;

use rumqttc::{AsyncClient, Event, EventLoop, LastWill, MqttOptions, Packet, QoS};
use serde_json::Value;
use tokio::sync::broadcast;

use crate::control::{Command, Handle};
use crate::service::outside;
use discovery::Topics;

/// Longest command payload taken from the broker (an announcement is at most 1000 bytes).
const MAX_INCOMING: usize = 8 * 1024;
/// Home Assistant's limit for a state.
pub const STATE_CHARS: usize = 255;
/// The back-off between connection attempts: 1 s doubling to this.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// What the MQTT task needs, read from `[mqtt]` at start.
#[derive(Debug, Clone)]
pub struct Settings {
    pub broker: Broker,
    pub username: String,
    /// Read from `password_file` (and registered as a secret).
    pub password: Option<String>,
    /// PEM certificates from `ca_file`.
    pub ca_pem: Option<Vec<u8>>,
    pub discovery_prefix: String,
    pub node_id: String,
}

impl Settings {
    fn options(&self) -> Result<MqttOptions, String> {
        self.options_with(true)
    }

    /// With `will`: a retained `offline` on the availability topic when the link dies.
    fn options_with(&self, will: bool) -> Result<MqttOptions, String> {
        let t = Topics::new(&self.discovery_prefix, &self.node_id);
        let mut o = MqttOptions::new(
            format!("gemlive-{}", self.node_id),
            &self.broker.host,
            self.broker.port,
        );
        o.set_keep_alive(Duration::from_secs(30))
            .set_clean_session(true)
            // rumqttc drops the connection on a larger packet (and a retained one would do it
            // at every reconnect): generous here, cut to MAX_INCOMING when read.
            .set_max_packet_size(256 * 1024, 64 * 1024);
        if will {
            o.set_last_will(LastWill::new(
                t.availability(),
                "offline",
                QoS::AtLeastOnce,
                true,
            ));
        }
        if !self.username.is_empty() || self.password.is_some() {
            o.set_credentials(&self.username, self.password.clone().unwrap_or_default());
        }
        if self.broker.tls {
            o.set_transport(rumqttc::Transport::tls_with_config(
                rumqttc::TlsConfiguration::Rustls(Arc::new(tls_config(self.ca_pem.as_deref())?)),
            ));
        }
        Ok(o)
    }
}

/// rustls with the ring provider, verifying the broker against `ca_pem` (your own CA) or the
/// public roots.
fn tls_config(ca_pem: Option<&[u8]>) -> Result<rustls::ClientConfig, String> {
    use rustls::pki_types::{pem::PemObject, CertificateDer};
    let mut roots = rustls::RootCertStore::empty();
    match ca_pem {
        Some(pem) => {
            let mut n = 0;
            for c in CertificateDer::pem_slice_iter(pem) {
                let c = c.map_err(|e| format!("ca_file: {e}"))?;
                roots
                    .add(c)
                    .map_err(|e| format!("ca_file: a certificate is not usable: {e}"))?;
                n += 1;
            }
            if n == 0 {
                return Err("ca_file holds no PEM certificate".into());
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// Checks the settings (TLS, credentials) and starts the MQTT task. It never ends on its own:
/// a broker that is away is retried with back-off.
pub fn start(s: Settings, hub: Handle) -> Result<(), String> {
    let options = s.options()?;
    if !s.broker.tls && !s.broker.is_loopback() && s.password.is_some() {
        log::warn!(
            "mqtt: the password goes to {} without encryption; use mqtts:// if the broker offers it",
            s.broker.host
        );
    }
    let events = hub.events.subscribe();
    let (client, eventloop) = AsyncClient::new(options, 256);
    let topics = Topics::new(&s.discovery_prefix, &s.node_id);
    log::info!(
        "mqtt: {}://{}:{} as node {} (Home Assistant discovery under {}/)",
        if s.broker.tls { "mqtts" } else { "mqtt" },
        s.broker.host,
        s.broker.port,
        s.node_id,
        s.discovery_prefix
    );
    spawn_tasks(client, eventloop, topics, hub, events, s.broker.host);
    Ok(())
}

/// What `check-config` can tell without the network: the TLS settings (a CA file that holds
/// no certificate) and the options.
pub fn check(s: &Settings) -> Result<(), String> {
    s.options().map(|_| ())
}

/// `check-config --online`: connects once (TLS and credentials included), waits for the
/// broker's answer, and disconnects. Ok says what was reached.
pub async fn probe(s: &Settings) -> Result<String, String> {
    // Not this box's client id (a running daemon must not be thrown off the broker), and no
    // last will (it would mark the running box offline).
    let mut o = s.options_with(false)?;
    o.set_client_id(format!("gemlive-{}-check", s.node_id));
    let (client, mut eventloop) = AsyncClient::new(o, 4);
    let wait = async {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => return Ok(()),
                Ok(_) => {}
                Err(e) => return Err(e.to_string()),
            }
        }
    };
    match tokio::time::timeout(Duration::from_secs(10), wait).await {
        Ok(Ok(())) => {
            let _ = client.try_disconnect();
            let _ = tokio::time::timeout(Duration::from_secs(1), eventloop.poll()).await;
            Ok(format!(
                "connected to {}:{}{}",
                s.broker.host,
                s.broker.port,
                if s.broker.tls { " (TLS verified)" } else { "" }
            ))
        }
        Ok(Err(e)) => Err(format!("{}:{}: {e}", s.broker.host, s.broker.port)),
        Err(_) => Err(format!(
            "{}:{}: no answer within 10 s",
            s.broker.host, s.broker.port
        )),
    }
}

/// What the topics show, kept by the event task so that a (re)connect publishes the newest
/// values (a broker restarted without persistence has none). Publishes happen under its lock,
/// so the connect's snapshot and a change cannot go out in the wrong order.
#[derive(Default, Clone)]
struct Last {
    state: Option<String>,
    muted: Option<bool>,
    volume: Option<u64>,
    heard: Option<String>,
    said: Option<String>,
    error: Option<String>,
    /// Whether the broker is there: without it nothing is queued (it would be stale).
    connected: bool,
}

type Shared = Arc<std::sync::Mutex<Last>>;

fn lock(l: &Shared) -> std::sync::MutexGuard<'_, Last> {
    l.lock().unwrap_or_else(|p| p.into_inner())
}

/// Three tasks: one drives the connection (rumqttc's `poll`, never cancelled half-way and
/// never waiting on the daemon), one turns the hub's events into publishes, one hands
/// commands to the daemon.
fn spawn_tasks(
    client: AsyncClient,
    eventloop: EventLoop,
    t: Topics,
    hub: Handle,
    events: broadcast::Receiver<Arc<crate::control::Event>>,
    host: String,
) {
    let last = Shared::default();
    let (commands, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(follow_events(
        client.clone(),
        t.clone(),
        events,
        last.clone(),
    ));
    tokio::spawn(hand_over_commands(rx, hub.clone()));
    tokio::spawn(drive(client, eventloop, t, hub, host, last, commands));
}

async fn follow_events(
    client: AsyncClient,
    t: Topics,
    mut events: broadcast::Receiver<Arc<crate::control::Event>>,
    last: Shared,
) {
    loop {
        match events.recv().await {
            Ok(ev) => on_event(&client, &t, &ev, &last),
            Err(broadcast::error::RecvError::Lagged(_)) => {}
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

async fn hand_over_commands(mut rx: tokio::sync::mpsc::Receiver<(String, Command)>, hub: Handle) {
    while let Some((what, command)) = rx.recv().await {
        let answer = hub.ask(command).await;
        if answer.get("ok") != Some(&Value::Bool(true)) {
            log::warn!("mqtt: {what}: {}", outside(&answer.to_string(), 300));
        }
    }
}

/// A link that stayed up this long resets the back-off (a broker that throws us off at once,
/// e.g. for a second box with the same client id, is not retried every second).
const STABLE_AFTER: Duration = Duration::from_secs(30);

async fn drive(
    client: AsyncClient,
    mut eventloop: EventLoop,
    t: Topics,
    hub: Handle,
    host: String,
    last: Shared,
    commands: tokio::sync::mpsc::Sender<(String, Command)>,
) {
    let mut backoff = Duration::from_secs(1);
    let mut down_since: Option<tokio::time::Instant> = None;
    let mut up_since: Option<tokio::time::Instant> = None;
    let mut seeded = false;
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                up_since = Some(tokio::time::Instant::now());
                match down_since.take() {
                    Some(t0) => log::info!(
                        "mqtt: connected to {host} again after {:.0} s",
                        t0.elapsed().as_secs_f64()
                    ),
                    None => log::info!("mqtt: connected to {host}"),
                }
                if !seeded {
                    // The state before the first event: asked of the daemon once, by another
                    // task (this one must keep polling).
                    seeded = true;
                    let (hub, last) = (hub.clone(), last.clone());
                    let (client, t) = (client.clone(), t.clone());
                    tokio::spawn(async move {
                        let status = hub.ask(Command::Status).await;
                        let mut l = lock(&last);
                        if l.state.is_none() {
                            l.state = status
                                .get("state")
                                .and_then(Value::as_str)
                                .map(str::to_string);
                        }
                        l.muted = l.muted.or(status.get("muted").and_then(Value::as_bool));
                        l.volume = l.volume.or(status.get("volume").and_then(Value::as_u64));
                        if l.connected {
                            publish_all(&client, &t, &l);
                        }
                    });
                }
                on_connect(&client, &t, &last);
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                // A retained command would act again at every reconnect: only live ones count.
                if p.retain && t.command_of(&p.topic).is_some() {
                    log::warn!(
                        "mqtt: ignoring a retained message on {} (publish commands without retain)",
                        outside(&p.topic, 200)
                    );
                    continue;
                }
                on_message(&client, &t, &commands, &p.topic, &p.payload);
            }
            Ok(_) => {}
            Err(e) => {
                lock(&last).connected = false;
                // What was queued for the lost connection is stale (the states are republished
                // on the next one): rumqttc would otherwise keep it, and a full queue would
                // swallow the next connection's subscriptions.
                eventloop.clean();
                eventloop.pending.clear();
                if up_since
                    .take()
                    .is_some_and(|t0| t0.elapsed() >= STABLE_AFTER)
                {
                    backoff = Duration::from_secs(1);
                }
                if down_since.is_none() {
                    log::warn!(
                        "mqtt: {host}: {}; retrying with back-off (nothing else waits for it)",
                        outside(&e.to_string(), 300)
                    );
                    down_since = Some(tokio::time::Instant::now());
                } else {
                    log::debug!("mqtt: {host}: {e}");
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// Subscriptions (the session is clean, so every connection subscribes again), then the
/// retained discovery, availability and every state.
fn on_connect(client: &AsyncClient, t: &Topics, last: &Shared) {
    for topic in [t.commands(), t.ha_status(), HA_STATUS.to_string()] {
        if let Err(e) = client.try_subscribe(topic.as_str(), QoS::AtLeastOnce) {
            log::warn!("mqtt: could not subscribe to {topic}: {e}");
        }
    }
    let mut l = lock(last);
    l.connected = true;
    publish_discovery(client, t);
    let _ = client.try_publish(t.availability(), QoS::AtLeastOnce, true, "online");
    publish_all(client, t, &l);
}

/// Home Assistant's own birth topic, whatever the discovery prefix.
const HA_STATUS: &str = "homeassistant/status";

fn publish_all(client: &AsyncClient, t: &Topics, l: &Last) {
    if let Some(s) = &l.state {
        publish_state(client, t, s);
    }
    if let Some(m) = l.muted {
        publish_retained(client, &t.state("mute"), if m { "ON" } else { "OFF" });
    }
    if let Some(v) = l.volume {
        publish_retained(client, &t.state("volume"), &v.to_string());
    }
    for (what, text) in [
        ("heard", &l.heard),
        ("said", &l.said),
        ("last_error", &l.error),
    ] {
        if let Some(text) = text {
            publish_text(client, t, what, text);
        }
    }
}

fn publish_discovery(client: &AsyncClient, t: &Topics) {
    for (topic, payload) in discovery::configs(t, env!("CARGO_PKG_VERSION")) {
        let _ = client.try_publish(topic, QoS::AtLeastOnce, true, payload.to_string());
    }
}

fn publish_retained(client: &AsyncClient, topic: &str, payload: &str) {
    let _ = client.try_publish(topic, QoS::AtLeastOnce, true, payload.to_string());
}

/// Home Assistant's enum sensor takes one of its listed options: "muted (listening)" is shown
/// as "muted" (the mute switch has the rest).
fn publish_state(client: &AsyncClient, t: &Topics, state: &str) {
    let s = if state.starts_with("muted") {
        "muted"
    } else {
        state
    };
    publish_retained(client, &t.state("state"), s);
}

/// A text sensor: the state cut to Home Assistant's 255 characters, the whole text as an
/// attribute.
fn publish_text(client: &AsyncClient, t: &Topics, what: &str, text: &str) {
    publish_retained(client, &t.state(what), &cut(text, STATE_CHARS));
    publish_retained(
        client,
        &t.attributes(what),
        &serde_json::json!({ "text": text }).to_string(),
    );
}

/// The sensor an event's text goes to.
fn text_sensor(event: &str) -> &'static str {
    match event {
        "heard" => "heard",
        "said" => "said",
        _ => "last_error",
    }
}

/// At most `n` characters (not bytes: a cut never splits one).
pub fn cut(text: &str, n: usize) -> String {
    match text.char_indices().nth(n) {
        Some((i, _)) => text[..i].to_string(),
        None => text.to_string(),
    }
}

/// An event from the hub: kept, and published when the broker is there; every event also
/// goes to `events`.
fn on_event(client: &AsyncClient, t: &Topics, ev: &crate::control::Event, last: &Shared) {
    let f = &ev.fields;
    let text = |k: &str| f.get(k).and_then(Value::as_str).map(str::to_string);
    let mut l = lock(last);
    let live = l.connected;
    match ev.name {
        "state" => {
            if let Some(s) = text("state") {
                if live {
                    publish_state(client, t, &s);
                }
                l.state = Some(s);
            }
        }
        "mute" => {
            if let Some(m) = f.get("muted").and_then(Value::as_bool) {
                if live {
                    publish_retained(client, &t.state("mute"), if m { "ON" } else { "OFF" });
                }
                l.muted = Some(m);
            }
        }
        "volume" => {
            if let Some(v) = f.get("volume").and_then(Value::as_u64) {
                if live {
                    publish_retained(client, &t.state("volume"), &v.to_string());
                }
                l.volume = Some(v);
            }
        }
        "heard" | "said" | "error" => {
            if let Some(s) = text(if ev.name == "error" {
                "message"
            } else {
                "text"
            }) {
                if live {
                    publish_text(client, t, text_sensor(ev.name), &s);
                }
                match ev.name {
                    "heard" => l.heard = Some(s),
                    "said" => l.said = Some(s),
                    _ => l.error = Some(s),
                }
            }
        }
        _ => {}
    }
    if live {
        let _ = client.try_publish(t.events(), QoS::AtMostOnce, false, ev.line.clone());
    }
}

/// A message on a command topic (or Home Assistant's status): parsed here, handed to the
/// command task.
fn on_message(
    client: &AsyncClient,
    t: &Topics,
    commands: &tokio::sync::mpsc::Sender<(String, Command)>,
    topic: &str,
    payload: &[u8],
) {
    if topic == t.ha_status() || topic == HA_STATUS {
        if payload == b"online" {
            log::info!("mqtt: Home Assistant is back: discovery published again");
            publish_discovery(client, t);
        }
        return;
    }
    let Some(what) = t.command_of(topic) else {
        return;
    };
    let text = String::from_utf8_lossy(&payload[..payload.len().min(MAX_INCOMING)]);
    let command = match parse_command(what, text.trim()) {
        Ok(c) => c,
        Err(e) => {
            log::warn!(
                "mqtt: ignoring {} on {}: {e}",
                outside(text.trim(), 100),
                outside(topic, 200)
            );
            return;
        }
    };
    if commands.try_send((what.to_string(), command)).is_err() {
        log::warn!("mqtt: {what} dropped: too many commands are waiting for the daemon");
    }
}

/// A command topic's last level and payload as a control command.
pub fn parse_command(what: &str, payload: &str) -> Result<Command, String> {
    Ok(match what {
        "wake" => Command::Wake,
        "end" => Command::End,
        "interrupt" => Command::Interrupt,
        "silence" => Command::Silence,
        "mute" => match payload.to_ascii_uppercase().as_str() {
            "ON" => Command::Mute,
            "OFF" => Command::Unmute,
            _ => return Err("expected ON or OFF".into()),
        },
        "volume" => {
            let v: f64 = payload.parse().map_err(|_| "expected a number 0..=100")?;
            if !(0.0..=100.0).contains(&v) {
                return Err("expected a number 0..=100".into());
            }
            Command::Volume(v.round() as u8)
        }
        "announce" => Command::Announce(crate::control::announcement(payload)?),
        other => return Err(format!("unknown command topic {other:?}")),
    })
}

/// Where the broker is, from `[mqtt] url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broker {
    pub host: String,
    pub port: u16,
    pub tls: bool,
}

impl Broker {
    /// `mqtt://HOST[:PORT]` or `mqtts://HOST[:PORT]`.
    pub fn parse(url: &str) -> Result<Broker, String> {
        let (tls, rest) = if let Some(r) = url.strip_prefix("mqtts://") {
            (true, r)
        } else if let Some(r) = url.strip_prefix("mqtt://") {
            (false, r)
        } else {
            return Err("expected mqtt://HOST[:PORT] or mqtts://HOST[:PORT]".into());
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains('@') {
            return Err(
                "put the user name in `username` and the password in `password_file`, not in the URL"
                    .into(),
            );
        }
        if rest.contains('/') || rest.contains('?') {
            return Err("an MQTT URL has no path: mqtt://HOST[:PORT]".into());
        }
        let default_port = if tls { 8883 } else { 1883 };
        // [v6::addr]:port, [v6::addr], host:port, host
        let (host, port) = if let Some(r) = rest.strip_prefix('[') {
            let (h, after) = r.split_once(']').ok_or("unclosed [ in the host")?;
            match after.strip_prefix(':') {
                Some(p) => (h, Some(p)),
                None if after.is_empty() => (h, None),
                None => return Err("expected :PORT after ]".into()),
            }
        } else {
            match rest.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (rest, None),
            }
        };
        if host.is_empty() {
            return Err("the host is missing".into());
        }
        let port = match port {
            None => default_port,
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| format!("invalid port {p:?}"))?,
        };
        Ok(Broker {
            host: host.to_string(),
            port,
            tls,
        })
    }

    pub fn is_loopback(&self) -> bool {
        self.host == "localhost"
            || self
                .host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|a| a.is_loopback())
    }
}

/// This machine's host name as a topic level (`gethostname`: the service's sandbox hides
/// `/proc/sys`).
pub fn host_node_id() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the pointer and length describe `buf`, which outlives the call.
    let r = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    let name = if r == 0 {
        let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
        String::from_utf8_lossy(&buf[..end]).into_owned()
    } else {
        String::new()
    };
    node_id_from(&name)
}

/// A host name made into a topic level: lower case, letters, digits, `_` and `-`.
pub fn node_id_from(host: &str) -> String {
    let id: String = host
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    if id.is_empty() {
        "gemlive".into()
    } else {
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_urls_parse_or_say_why() {
        let b = |s| Broker::parse(s);
        assert_eq!(
            b("mqtt://homeassistant.local"),
            Ok(Broker {
                host: "homeassistant.local".into(),
                port: 1883,
                tls: false
            })
        );
        assert_eq!(b("mqtts://10.0.0.2:8884/").unwrap().port, 8884);
        assert_eq!(b("mqtts://broker").unwrap().port, 8883);
        assert_eq!(b("mqtt://[::1]:1884").unwrap().host, "::1");
        assert!(b("mqtt://[::1]").unwrap().is_loopback());
        assert!(b("http://x").is_err());
        assert!(b("mqtt://").is_err());
        assert!(b("mqtt://x:0").is_err());
        assert!(b("mqtt://x:99999").is_err());
        assert!(b("mqtt://u:p@x").unwrap_err().contains("password_file"));
        assert!(b("mqtt://x/topic").is_err());
    }

    #[test]
    fn command_payloads_parse_or_say_why() {
        assert_eq!(parse_command("mute", "on"), Ok(Command::Mute));
        assert_eq!(parse_command("mute", "OFF"), Ok(Command::Unmute));
        assert!(parse_command("mute", "maybe").is_err());
        assert_eq!(parse_command("volume", "35.0"), Ok(Command::Volume(35)));
        assert!(parse_command("volume", "101").is_err());
        assert!(parse_command("volume", "NaN").is_err());
        assert_eq!(parse_command("wake", "PRESS"), Ok(Command::Wake));
        assert_eq!(
            parse_command("announce", " Dinner "),
            Ok(Command::Announce("Dinner".into()))
        );
        assert!(parse_command("announce", "").is_err());
        assert!(parse_command("launch", "").is_err());
    }

    #[test]
    fn states_are_cut_by_characters() {
        assert_eq!(cut("héllo", 2), "hé");
        assert_eq!(cut("hi", 255), "hi");
        assert_eq!(cut(&"ü".repeat(300), 255).chars().count(), 255);
    }

    #[test]
    fn host_names_become_topic_levels() {
        assert_eq!(node_id_from("Kitchen-Pi.local"), "kitchen-pi_local");
        assert_eq!(node_id_from(""), "gemlive");
    }
}
