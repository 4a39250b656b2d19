//! The signing secret for join tokens: 32 random bytes in `<data-dir>/secret.key`.
//!
//! Made on first start and reused after, so join links sent before a restart keep working.
//! Deleting the file revokes every link ever issued (a new secret is made on the next start).

use std::fmt;
use std::fs;
use std::io;
use std::path::Path;

use crate::files;

/// File name of the secret inside the data dir.
pub const SECRET_FILE: &str = "secret.key";

/// Length of the secret in bytes: 256 bits, the HMAC-SHA256 block-size-safe key length.
pub const SECRET_LEN: usize = 32;

/// The token signing key. `Debug` never shows the bytes, so the secret cannot reach a log by
/// accident through `{:?}`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret([u8; SECRET_LEN]);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Why the secret could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecretError {
    #[error("cannot read or write the token secret {path}: {source}")]
    Io { path: String, source: io::Error },
    #[error(
        "the token secret {path} is {len} bytes long, expected {SECRET_LEN}; it is damaged. \
         Delete it to make a new one (every join link sent so far will stop working)"
    )]
    WrongLength { path: String, len: usize },
}

impl Secret {
    /// Makes a new random secret from the operating system's generator.
    pub fn generate() -> Secret {
        Secret(rand::random())
    }

    /// Wraps existing key bytes (tests, or a secret handed over by an operator).
    pub fn from_bytes(bytes: [u8; SECRET_LEN]) -> Secret {
        Secret(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; SECRET_LEN] {
        &self.0
    }

    /// This server's instance id (16 hex digits), as stable as its data dir's secret and
    /// distinct between data dirs: a one-way hash of the secret under a label of its own, so
    /// it can be sent to other servers (relay `join.chain`) without revealing anything of
    /// the key that signs the links.
    pub fn instance_id(&self) -> String {
        use sha2::{Digest, Sha256};
        let digest = Sha256::new()
            .chain_update(b"hoinghi instance id v1\0")
            .chain_update(self.0)
            .finalize();
        hex::encode(&digest[..8])
    }

    /// Reads `<data_dir>/secret.key`, creating the data dir and the secret (mode 0600) when
    /// missing.
    pub fn load_or_create(data_dir: &Path) -> Result<Secret, SecretError> {
        let path = data_dir.join(SECRET_FILE);
        let io_err = |source| SecretError::Io {
            path: path.display().to_string(),
            source,
        };
        files::ensure_private_dir(data_dir).map_err(io_err)?;
        if !path.exists() {
            let fresh = Secret::generate();
            // If another process created it meanwhile, fall through and read theirs.
            if files::create_atomic(&path, fresh.as_bytes(), 0o600).map_err(io_err)? {
                return Ok(fresh);
            }
        }
        let bytes = fs::read(&path).map_err(io_err)?;
        let array: [u8; SECRET_LEN] =
            bytes
                .as_slice()
                .try_into()
                .map_err(|_| SecretError::WrongLength {
                    path: path.display().to_string(),
                    len: bytes.len(),
                })?;
        Ok(Secret(array))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn second_load_returns_the_same_secret_and_file_is_0600() {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("data");
        let first = Secret::load_or_create(&data_dir).unwrap();
        let second = Secret::load_or_create(&data_dir).unwrap();
        assert_eq!(first, second);

        let path = data_dir.join(SECRET_FILE);
        let meta = fs::metadata(&path).unwrap();
        assert_eq!(meta.len(), SECRET_LEN as u64);
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(fs::read(&path).unwrap(), first.as_bytes());
    }

    #[test]
    fn the_instance_id_is_stable_per_secret_and_reveals_nothing_of_it() {
        let s = Secret::from_bytes([7; SECRET_LEN]);
        assert_eq!(s.instance_id(), s.instance_id());
        assert_eq!(s.instance_id().len(), 16);
        assert_ne!(
            s.instance_id(),
            Secret::from_bytes([8; SECRET_LEN]).instance_id()
        );
        assert!(!hex::encode(s.as_bytes()).contains(&s.instance_id()));
    }

    #[test]
    fn fresh_data_dirs_get_different_secrets() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        assert_ne!(
            Secret::load_or_create(a.path()).unwrap(),
            Secret::load_or_create(b.path()).unwrap()
        );
    }

    #[test]
    fn damaged_secret_is_an_error_not_a_silent_replacement() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(SECRET_FILE), b"short").unwrap();
        let err = Secret::load_or_create(dir.path()).unwrap_err();
        assert!(
            matches!(err, SecretError::WrongLength { len: 5, .. }),
            "{err}"
        );
        // The damaged file is left for the operator to look at.
        assert_eq!(fs::read(dir.path().join(SECRET_FILE)).unwrap(), b"short");
    }

    #[test]
    fn debug_does_not_show_the_bytes() {
        let secret = Secret::from_bytes([0xAB; SECRET_LEN]);
        let shown = format!("{secret:?}");
        // Neither the decimal (`[171, 171, ..]`) nor the hex form of the bytes.
        assert!(!shown.contains("171"), "{shown}");
        assert!(!shown.to_lowercase().contains("abab"), "{shown}");
    }
}
