//! Finding the API key: a key file, the environment, or a systemd credential.

use std::fmt;
use std::path::{Path, PathBuf};

use super::*;

/// Where the API key came from (for `check-config` and logs; never the key itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// `api_key_file` in `[live]`.
    File(PathBuf),
    /// The `GEMINI_API_KEY` environment variable.
    Env,
    /// `$CREDENTIALS_DIRECTORY/gemini-api-key` (systemd `LoadCredential=`).
    Credential(PathBuf),
    /// [`SERVICE_KEY_FILE`], the file the packaged unit loads as its credential.
    ServiceFile,
}

/// The key file the package's unit loads (`LoadCredential=gemini-api-key:/etc/gemlive/api-key`).
/// Read as a last resort so that `sudo gemlive check-config --online` and `sudo gemlive run`
/// use the service's own key without repeating it anywhere.
pub const SERVICE_KEY_FILE: &str = "/etc/gemlive/api-key";

impl fmt::Display for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::File(p) => write!(f, "api_key_file {}", p.display()),
            KeySource::Env => f.write_str(API_KEY_ENV),
            KeySource::Credential(p) => {
                write!(f, "systemd credential {CREDENTIAL_NAME}, {}", p.display())
            }
            KeySource::ServiceFile => write!(f, "the service's key file {SERVICE_KEY_FILE}"),
        }
    }
}

/// Finds the API key: (1) `api_key_file` if set (must exist, be mode 0600 or stricter, and be
/// non-empty; a problem here is an error, not a fall-through), (2) `$GEMINI_API_KEY` if
/// non-empty, (3) `$CREDENTIALS_DIRECTORY/gemini-api-key` if present, (4) [`SERVICE_KEY_FILE`]
/// if it exists (mode 0600; unreadable = an error that says to use sudo). `Ok(None)` = no key.
pub fn resolve_api_key(
    live: &LiveConfig,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Option<(ApiKey, KeySource)>, ConfigError> {
    resolve_api_key_with(live, env, Path::new(SERVICE_KEY_FILE))
}

pub(super) fn resolve_api_key_with(
    live: &LiveConfig,
    env: impl Fn(&str) -> Option<String>,
    service_file: &Path,
) -> Result<Option<(ApiKey, KeySource)>, ConfigError> {
    if let Some(path) = &live.api_key_file {
        let key = read_key_file(path, true)?;
        return Ok(Some((key, KeySource::File(path.clone()))));
    }
    if let Some(v) = env(API_KEY_ENV) {
        let v = v.trim();
        if !v.is_empty() {
            check_key_shape(v, API_KEY_ENV.to_string(), "the variable")?;
            check_key_chars(v, API_KEY_ENV.to_string(), "the variable")?;
            return Ok(Some((ApiKey::new(v), KeySource::Env)));
        }
    }
    if let Some(dir) = env("CREDENTIALS_DIRECTORY").filter(|d| !d.trim().is_empty()) {
        let path = Path::new(&dir).join(CREDENTIAL_NAME);
        match std::fs::metadata(&path) {
            Ok(_) => {
                let key = read_key_file(&path, false)?;
                return Ok(Some((key, KeySource::Credential(path))));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(ConfigError::ApiKey {
                    origin: path.display().to_string(),
                    message: format!("cannot read systemd credential {CREDENTIAL_NAME}: {e}"),
                })
            }
        }
    }
    // Non-blocking: a FIFO left at this path must not hang start-up before read_key_file
    // gets to refuse it.
    match super::regular::open_nonblocking(service_file).map_err(|e| e.kind()) {
        Err(std::io::ErrorKind::NotFound) => Ok(None),
        Err(std::io::ErrorKind::PermissionDenied) => Err(ConfigError::ApiKey {
            origin: service_file.display().to_string(),
            message: "the service's key file is readable by root only (as it should be): run \
                      this command with sudo, or set GEMINI_API_KEY"
                .to_string(),
        }),
        // Anything else: read_key_file says what is wrong with it.
        _ => Ok(Some((
            read_key_file(service_file, true)?,
            KeySource::ServiceFile,
        ))),
    }
}

/// [`resolve_api_key`] without the key, for `check-config`.
pub fn api_key_status(
    live: &LiveConfig,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Option<KeySource>, ConfigError> {
    resolve_api_key(live, env).map(|o| o.map(|(_, source)| source))
}

/// The largest key file read. A Gemini API key is 39 characters; the limit leaves room for
/// anything a key could become while still refusing the wrong file at once.
pub const MAX_KEY_FILE_BYTES: u64 = 4 * 1024;

pub(super) fn read_key_file(path: &Path, check_mode: bool) -> Result<ApiKey, ConfigError> {
    use super::regular::{self, Refusal};
    use std::os::unix::fs::PermissionsExt;

    let what = if check_mode {
        "api_key_file".to_string()
    } else {
        format!("systemd credential {CREDENTIAL_NAME}")
    };
    let err = |message: String| ConfigError::ApiKey {
        origin: path.display().to_string(),
        message,
    };
    let refusal = |r: Refusal| match r {
        Refusal::Io(e) => err(format!("cannot read {what}: {e}")),
        Refusal::NotRegular(kind) => err(format!(
            "{what} is {kind}, not a regular file; it must be a file holding only the key, \
             on one line"
        )),
        Refusal::TooLarge(limit) => err(format!(
            "{what} is larger than {}, the limit for a key file; it must hold only the key, \
             on one line",
            regular::size_text(limit)
        )),
    };
    let (file, meta) = regular::open_regular(path).map_err(refusal)?;
    let mode = meta.permissions().mode();
    if check_mode && mode & 0o077 != 0 {
        return Err(err(format!(
            "{what} is readable by group or others (mode {:04o}); run `chmod 600 {}`",
            mode & 0o7777,
            path.display()
        )));
    }
    let bytes = regular::read_capped(file, &meta, MAX_KEY_FILE_BYTES).map_err(refusal)?;
    let text = String::from_utf8(bytes).map_err(|_| {
        err(format!(
            "{what} is not text; it must hold only the key, on one line"
        ))
    })?;
    let key = text.trim();
    if key.is_empty() {
        return Err(err(format!(
            "{what} is empty; it must hold only the key, on one line"
        )));
    }
    let lines = key.lines().filter(|l| !l.trim().is_empty()).count();
    if lines > 1 {
        return Err(err(format!(
            "{what} holds {lines} non-empty lines; it must hold only the key itself, like \
             `AIza…`, on one line"
        )));
    }
    check_key_shape(key, path.display().to_string(), &what)?;
    check_key_chars(key, path.display().to_string(), &what)?;
    Ok(ApiKey::new(key))
}

/// Refuses the shapes a key takes when copied from a shell or `.env` file: `NAME=key`,
/// `export NAME=key`, or the key in quotes. Such a value would pass as a key and fail only at
/// the server (HTTP 400), far from the file that is wrong. Never echoes the key: the name
/// before `=` is shown only when it is one of the usual variable names, never a part of a key.
pub(super) fn check_key_shape(key: &str, origin: String, what: &str) -> Result<(), ConfigError> {
    let fix = |how: String| {
        Err(ConfigError::ApiKey {
            origin: origin.clone(),
            message: format!(
                "{what} must hold only the key itself, like `AIza…`, on one line; {how}"
            ),
        })
    };
    let line = key.trim();
    let unexported = line
        .strip_prefix("export")
        .filter(|rest| rest.starts_with([' ', '\t']))
        .map_or(line, str::trim_start);
    if let Some((name, value)) = unexported.split_once('=') {
        let name = name.trim_end();
        let identifier = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        // A key ending in `=` padding has nothing after the `=`: not an assignment.
        if identifier && !value.trim().is_empty() {
            let shown = [API_KEY_ENV, "GOOGLE_API_KEY", "API_KEY"].contains(&name);
            let prefix = if unexported.len() == line.len() {
                ""
            } else {
                "export "
            };
            return if shown {
                fix(format!("remove `{prefix}{name}=`"))
            } else {
                fix("remove the `NAME=` before the key".to_string())
            };
        }
    }
    let quoted = |q: char| line.len() >= 2 && line.starts_with(q) && line.ends_with(q);
    if quoted('"') || quoted('\'') {
        return fix("remove the quotes around it".to_string());
    }
    Ok(())
}

/// The key travels in an HTTP header: printable ASCII, no spaces. Never echoes the key.
pub(super) fn check_key_chars(key: &str, origin: String, what: &str) -> Result<(), ConfigError> {
    if key.bytes().all(|b| b.is_ascii_graphic()) {
        return Ok(());
    }
    let mut message = format!(
        "{what} must hold only the key (found spaces, line breaks or non-ASCII characters)"
    );
    if key.contains('=') && key.contains(API_KEY_ENV) {
        message.push_str(&format!("; write the bare key, not {API_KEY_ENV}=..."));
    }
    Err(ConfigError::ApiKey { origin, message })
}
