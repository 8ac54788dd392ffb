//! The newest resumption handle, kept in the service's state directory so that a restart (an
//! upgrade, a crash, a reboot) continues the same conversation while the server still honours
//! the handle. One small JSON file, mode 0600, replaced atomically (write, fsync, rename): a
//! power cut leaves either the old handle or the new one, never half of each.

use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

const FILE: &str = "resumption.json";
/// Handles are a few hundred bytes; anything much larger is not ours.
const MAX_BYTES: u64 = 16 * 1024;

#[derive(Debug, Serialize, Deserialize)]
struct Stored {
    handle: String,
    /// Wall-clock seconds since the epoch when the server gave the handle.
    saved_unix_s: u64,
}

/// Where the handle lives: systemd's `StateDirectory=` (`$STATE_DIRECTORY`), if set.
pub fn dir_from_env() -> Option<PathBuf> {
    let v = std::env::var_os("STATE_DIRECTORY")?;
    // systemd joins several directories with ':'; the first is ours.
    let first = v.to_str()?.split(':').next()?.to_string();
    (!first.is_empty()).then(|| PathBuf::from(first))
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The kept handle and its age, if there is a readable one. Problems are logged, never fatal.
pub fn load(dir: &Path) -> Option<(String, Duration)> {
    let path = dir.join(FILE);
    let mut text = String::new();
    match std::fs::File::open(&path) {
        Ok(f) => {
            if let Err(e) = f.take(MAX_BYTES).read_to_string(&mut text) {
                log::warn!("ignoring {}: {e}", path.display());
                return None;
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            log::warn!("ignoring {}: {e}", path.display());
            return None;
        }
    }
    let stored: Stored = match serde_json::from_str(&text) {
        Ok(s) => s,
        Err(e) => {
            log::warn!("ignoring {}: not a saved handle ({e})", path.display());
            return None;
        }
    };
    let now = unix_now();
    // A clock that went backwards (no RTC, NTP not yet synced) gives no trustworthy age: the
    // server decides, and a refused handle only costs one attempt.
    let age = Duration::from_secs(now.saturating_sub(stored.saved_unix_s));
    Some((stored.handle, age))
}

/// Replaces the kept handle (`None`: removes it).
pub fn save(dir: &Path, handle: Option<&str>) -> std::io::Result<()> {
    let path = dir.join(FILE);
    let Some(handle) = handle else {
        return match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        };
    };
    let json = serde_json::to_string(&Stored {
        handle: handle.to_string(),
        saved_unix_s: unix_now(),
    })
    .map_err(std::io::Error::other)?;
    write_atomic(dir, FILE, json.as_bytes())
}

/// Replaces `dir/name` with `bytes` (mode 0600) so that a power cut leaves the old file or the
/// new one, never a torn one.
pub fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, dir.join(name))?;
    // The rename itself must survive a power cut too.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn saves_atomically_0600_and_loads_with_its_age() {
        let dir = std::env::temp_dir().join(format!("gemlive-resume-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        assert!(load(&dir).is_none());
        save(&dir, Some("h-1")).unwrap();
        save(&dir, Some("h-2")).unwrap();
        let (h, age) = load(&dir).unwrap();
        assert_eq!(h, "h-2");
        assert!(age < Duration::from_secs(5));
        let mode = std::fs::metadata(dir.join(FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            1,
            "no temp file left"
        );
        std::fs::write(dir.join(FILE), "garbage").unwrap();
        assert!(load(&dir).is_none());
        save(&dir, None).unwrap();
        save(&dir, None).unwrap();
        assert!(load(&dir).is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
