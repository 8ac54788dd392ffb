//! `gemlive check-config --online`: one real session with the configured endpoint, key and
//! model, closed at once. It answers the most common support question — "is my key/model
//! right?" — with the server's own words instead of a daemon that quietly retries.

use std::time::{Duration, Instant};

use crate::config::Config;
use crate::live::policy::Failure;
use crate::live::session::{self, SessionError};
use crate::live::setup::build_setup;
use crate::live::transport::{ConnectError, Endpoint};
use crate::live::Credential;

/// A session that opened.
#[derive(Debug)]
pub struct Opened {
    pub host: String,
    pub setup_ms: u128,
    pub session_id: Option<String>,
}

/// Connects, sends the daemon's exact `setup`, waits for `setupComplete`, closes with 1000.
pub async fn open_and_close(cfg: &Config, cred: &Credential) -> Result<Opened, SessionError> {
    let endpoint = Endpoint::parse(&cfg.live.endpoint).map_err(ConnectError::from)?;
    let setup = build_setup(&crate::daemon::session_settings(cfg), None).to_json();
    let timeout = Duration::from_millis(cfg.live.setup_timeout_ms);
    let t0 = Instant::now();
    let (mut ws, session_id) = session::open(
        &endpoint,
        cred,
        &setup,
        timeout,
        cfg.live.max_message_kb as usize * 1024,
    )
    .await?;
    let setup_ms = t0.elapsed().as_millis();
    session::close(&mut ws).await;
    Ok(Opened {
        host: endpoint.host().to_string(),
        setup_ms,
        session_id,
    })
}

const KEY_REFUSED: &str = "the server refused the API key: check the key file (one line, no \
     quotes) or GEMINI_API_KEY; keys are made at https://aistudio.google.com/apikey";
const QUOTA: &str =
    "quota exhausted or too many sessions at once: wait, or check the plan of the key's project";

/// What to do about a failed check, in the user's terms. The error itself (printed before
/// this) carries the exact code and reason.
pub fn advice(e: &SessionError, cfg: &Config) -> String {
    let model = &cfg.live.model;
    match e {
        SessionError::Connect(ConnectError::Rejected { status, .. }) => match status {
            400 | 401 | 403 => KEY_REFUSED.to_string(),
            404 => "the endpoint path does not exist: remove `endpoint` from [live] to use the \
                 default"
                .to_string(),
            429 => QUOTA.to_string(),
            _ => "the server refused the connection; try again in a minute".to_string(),
        },
        SessionError::Connect(ConnectError::Io { .. }) => "no connection to the server: check \
             the network, DNS (`getent hosts generativelanguage.googleapis.com`) and the clock \
             (TLS fails when the date is wrong: `timedatectl`)"
            .to_string(),
        SessionError::Connect(_) => "fix [live] endpoint or the key in the config".to_string(),
        SessionError::SetupTimeout(t) => format!(
            "no answer to setup within {t:?}: a slow network, or a proxy that holds WebSockets; \
             raise `setup_timeout_ms` in [live] if the link is slow"
        ),
        SessionError::Closed { code, reason } => {
            let r = reason.to_ascii_lowercase();
            if r.contains("api key") {
                KEY_REFUSED.to_string()
            } else if r.contains("location") {
                "the Gemini API is not available from this network's location".to_string()
            } else if let Some(hint) = crate::config::refusal_hint(&cfg.live, *code, reason) {
                hint
            } else if r.contains("not found") || r.contains("not supported") {
                let default = format!("models/{}", crate::config::DEFAULT_MODEL);
                let instead = if *model == default {
                    "it may have been retired: pick a current Live model \
                     (https://ai.google.dev/gemini-api/docs/models) and set `model` in [live]"
                        .to_string()
                } else {
                    format!("set `model` in [live] to a Live model such as `{default}`")
                };
                format!(
                    "the model `{model}` does not exist or does not support the Live API; \
                     {instead}"
                )
            } else {
                match e.failure() {
                    Failure::Quota => QUOTA.to_string(),
                    Failure::Config => format!(
                        "the server refused the setup (code {code}): check `model`, `voice` and \
                         the other [live] settings against the model's capabilities"
                    ),
                    Failure::Transient => {
                        "a server-side or network problem; try again in a minute".to_string()
                    }
                }
            }
        }
        SessionError::Socket(_) => {
            "the connection broke during setup; try again in a minute".to_string()
        }
        SessionError::Credentials(_) => "the token source gave no token: run token_command by \
             hand (or fetch token_url) and read what it says"
            .to_string(),
    }
}

/// Exit status for a failed check: 78 (configuration) when the user must change something,
/// 1 when the network or the server is at fault and a retry may pass.
pub fn exit_code(e: &SessionError) -> u8 {
    match e.failure() {
        Failure::Config => 78,
        Failure::Quota | Failure::Transient => 1,
    }
}
