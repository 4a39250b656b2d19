//! Writing files in the data dir so that a crash never leaves half of one behind.
//!
//! Every file is written to a temporary name in the same directory, flushed to disk, then moved
//! into place with one `rename` (or `link`), which POSIX makes atomic: a reader sees either the
//! old file, the new one, or none, never a prefix.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Creates `dir` and its parents when missing. New directories get mode 0700: the data dir holds
/// the token secret and the TLS key, nobody else on the machine needs to list it. An existing
/// directory keeps the permissions its owner gave it.
pub fn ensure_private_dir(dir: &Path) -> io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// Writes `data` to `path` atomically with permission bits `mode`, replacing any existing file.
pub fn write_atomic(path: &Path, data: &[u8], mode: u32) -> io::Result<()> {
    let tmp = write_temp_sibling(path, data, mode)?;
    if let Err(e) = fs::rename(&tmp, path) {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    sync_parent(path)
}

/// Writes `data` to `path` atomically unless `path` already exists. Returns `Ok(true)` when this
/// call created the file, `Ok(false)` when another writer got there first (its content is kept).
///
/// Uses `link` rather than `rename` because `link` refuses to replace: two processes starting at
/// once on a fresh data dir end up sharing one secret instead of each believing its own.
pub fn create_atomic(path: &Path, data: &[u8], mode: u32) -> io::Result<bool> {
    let tmp = write_temp_sibling(path, data, mode)?;
    let linked = fs::hard_link(&tmp, path);
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => {
            sync_parent(path)?;
            Ok(true)
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    }
}

/// Writes a uniquely named temporary file next to `path` and syncs it.
fn write_temp_sibling(path: &Path, data: &[u8], mode: u32) -> io::Result<PathBuf> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(
        ".tmp.{}.{:016x}",
        std::process::id(),
        rand::random::<u64>()
    ));
    let tmp = path.with_file_name(tmp_name);

    let result = (|| {
        // `mode` applies at creation, so the secret is never readable by others, not even for
        // the instant between create and chmod.
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        file.write_all(data)?;
        file.sync_all()
    })();
    match result {
        Ok(()) => Ok(tmp),
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// Makes the directory entry durable too, so a power cut after the rename does not lose it.
fn sync_parent(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => fs::File::open(parent)?.sync_all(),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn write_atomic_replaces_and_sets_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        write_atomic(&path, b"one", 0o600).unwrap();
        write_atomic(&path, b"two", 0o600).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // No temporary file left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn create_atomic_keeps_the_first_writer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        assert!(create_atomic(&path, b"first", 0o600).unwrap());
        assert!(!create_atomic(&path, b"second", 0o600).unwrap());
        assert_eq!(fs::read(&path).unwrap(), b"first");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn ensure_private_dir_creates_parents_with_mode_0700() {
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("a/b");
        ensure_private_dir(&nested).unwrap();
        let mode = fs::metadata(&nested).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        // Calling it again on an existing directory is fine.
        ensure_private_dir(&nested).unwrap();
    }
}
