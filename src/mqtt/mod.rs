//! Home Assistant over MQTT (`[mqtt]`): discovery configs, state topics that follow the
//! daemon's events, and command topics that become control commands (`docs/design.md`,
//! "Home Assistant over MQTT").
//!
//! The broker lives in its own task: a broker that is down, slow or gone changes nothing
//! else. Commands reach the daemon through the same [`Hub`](crate::control::Hub) the control
//! socket uses; state comes from the hub's events.

pub mod discovery;

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
    fn host_names_become_topic_levels() {
        assert_eq!(node_id_from("Kitchen-Pi.local"), "kitchen-pi_local");
        assert_eq!(node_id_from(""), "gemlive");
    }
}
