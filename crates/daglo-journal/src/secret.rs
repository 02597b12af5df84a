//! The callback key secret kept beside a journal: generated once, readable by its owner only.

use std::io::Write;
use std::path::Path;

use daglo_core::JournalError;

/// Bytes of a generated secret.
const SECRET_BYTES: usize = 32;

/// The secret in the file at `path`, or a new one written there first (created exclusively,
/// mode `0600` on Unix, synced). A file others may read is refused, naming the fix.
pub(crate) fn load_or_create(path: &Path) -> Result<Vec<u8>, JournalError> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            check_private(path)?;
            decode(text.trim()).ok_or_else(|| {
                JournalError::message(format!(
                    "the key secret in {} is not {} hex-encoded bytes",
                    path.display(),
                    SECRET_BYTES
                ))
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => create(path),
        Err(e) => Err(JournalError::new(
            format!("cannot read the key secret in {}", path.display()),
            e,
        )),
    }
}

fn create(path: &Path) -> Result<Vec<u8>, JournalError> {
    let mut secret = vec![0u8; SECRET_BYTES];
    getrandom::fill(&mut secret)
        .map_err(|e| JournalError::message(format!("no randomness for the key secret: {e}")))?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written = options.open(path).and_then(|mut file| {
        file.write_all(encode(&secret).as_bytes())?;
        file.write_all(b"\n")?;
        file.sync_all()
    });
    match written {
        Ok(()) => Ok(secret),
        // Another process made it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => load_or_create(path),
        Err(e) => Err(JournalError::new(
            format!("cannot write the key secret to {}", path.display()),
            e,
        )),
    }
}

#[cfg(unix)]
fn check_private(path: &Path) -> Result<(), JournalError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(|e| JournalError::new(format!("cannot read the key secret in {}", path.display()), e))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(JournalError::message(format!(
            "the key secret in {} may be read by others (mode {:o}): `chmod 600` it",
            path.display(),
            mode & 0o777
        )));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_: &Path) -> Result<(), JournalError> {
    Ok(())
}

fn encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn decode(text: &str) -> Option<Vec<u8>> {
    if text.len() != SECRET_BYTES * 2 || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_once_kept_private_and_read_back() {
        let dir = std::env::temp_dir().join(format!("daglo-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("jobs.sqlite.key");
        let _ = std::fs::remove_file(&path);
        let first = load_or_create(&path).unwrap();
        assert_eq!(first.len(), SECRET_BYTES);
        assert_eq!(load_or_create(&path).unwrap(), first);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            let error = load_or_create(&path).unwrap_err().to_string();
            assert!(error.contains("chmod 600"), "{error}");
        }
        std::fs::write(&path, "not hex").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        assert!(load_or_create(&path).unwrap_err().to_string().contains("hex"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
