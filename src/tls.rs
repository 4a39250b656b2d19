//! The HTTPS certificate: the operator's (`--tls-cert/--tls-key`) or one we make on first start
//! in `<data-dir>/tls/` and reuse after, so the fingerprint points were told stays the same.
//!
//! Points open a self-signed server once, compare the fingerprint printed at start with the
//! browser's, and accept it. Delete `<data-dir>/tls/` to make a new one (e.g. after changing
//! `--public-ip`, which is one of its names).

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, anyhow};
use room_admin::files;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};

pub const TLS_DIR: &str = "tls";
pub const CERT_FILE: &str = "cert.pem";
pub const KEY_FILE: &str = "key.pem";

/// A certificate chain and its key, ready for rustls.
pub struct TlsMaterial {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
    /// Where the certificate came from (shown in logs).
    pub cert_path: PathBuf,
    /// True when this start made the certificate.
    pub generated: bool,
}

impl TlsMaterial {
    /// SHA-256 of the leaf certificate's DER, as browsers show it.
    pub fn fingerprint(&self) -> String {
        // `load` refuses an empty chain, so the leaf exists.
        self.chain
            .first()
            .map(|c| fingerprint(c))
            .unwrap_or_default()
    }
}

/// `AB:CD:...`: SHA-256 in upper-case hex pairs separated by colons, the browsers' format.
pub fn fingerprint(der: &[u8]) -> String {
    let digest = Sha256::digest(der);
    digest
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Loads the operator's certificate when given, else the one in the data dir, making it first
/// when missing. `names` are the subject alternative names for a new certificate.
pub fn load_or_create(
    data_dir: &Path,
    explicit: Option<(&Path, &Path)>,
    names: &[IpAddr],
) -> anyhow::Result<TlsMaterial> {
    if let Some((cert, key)) = explicit {
        return load(cert, key, false);
    }
    let dir = data_dir.join(TLS_DIR);
    let cert = dir.join(CERT_FILE);
    let key = dir.join(KEY_FILE);
    // Both or neither: a crash between the two writes leaves one, and a certificate without its
    // key (or the reverse) is useless, so it is made again.
    if cert.exists() && key.exists() {
        return load(&cert, &key, false);
    }
    files::ensure_private_dir(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let (cert_pem, key_pem) = generate(names)?;
    // The key first: if we crash before the certificate is written, the next start sees no
    // certificate and makes both again.
    files::write_atomic(&key, key_pem.as_bytes(), 0o600)
        .with_context(|| format!("cannot write {}", key.display()))?;
    files::write_atomic(&cert, cert_pem.as_bytes(), 0o644)
        .with_context(|| format!("cannot write {}", cert.display()))?;
    load(&cert, &key, true)
}

/// A self-signed certificate (ECDSA P-256) for localhost, 127.0.0.1 and `names`, as PEM
/// `(certificate, private key)`.
fn generate(names: &[IpAddr]) -> anyhow::Result<(String, String)> {
    let mut sans = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    for ip in names {
        let s = ip.to_string();
        if !ip.is_unspecified() && !sans.contains(&s) {
            sans.push(s);
        }
    }
    let mut params =
        rcgen::CertificateParams::new(sans).context("invalid certificate subject names")?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "hoinghi");
    let key = rcgen::KeyPair::generate().context("cannot generate TLS key")?;
    let cert = params
        .self_signed(&key)
        .context("cannot sign TLS certificate")?;
    Ok((cert.pem(), key.serialize_pem()))
}

fn load(cert_path: &Path, key_path: &Path, generated: bool) -> anyhow::Result<TlsMaterial> {
    let chain = CertificateDer::pem_file_iter(cert_path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| anyhow!("cannot read certificate {}: {e}", cert_path.display()))?;
    if chain.is_empty() {
        anyhow::bail!("no certificate found in {}", cert_path.display());
    }
    let key = PrivateKeyDer::from_pem_file(key_path)
        .map_err(|e| anyhow!("cannot read private key {}: {e}", key_path.display()))?;
    Ok(TlsMaterial {
        chain,
        key,
        cert_path: cert_path.to_owned(),
        generated,
    })
}

/// rustls server settings: TLS 1.2 and 1.3 only, the `ring` provider, HTTP/1.1.
///
/// ALPN offers only `http/1.1`: WebSocket over HTTP/2 needs extended CONNECT (RFC 8441), which
/// browsers would then use for `/ws`; one HTTP version keeps `/ws` on the path every browser and
/// tool supports.
pub fn server_config(material: TlsMaterial) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(material.chain, material.key)
        .with_context(|| {
            format!(
                "certificate {} does not match its key",
                material.cert_path.display()
            )
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_format() {
        let fp = fingerprint(b"abc");
        // SHA-256("abc") = ba7816bf...
        assert!(fp.starts_with("BA:78:16:BF:"), "{fp}");
        assert_eq!(fp.len(), 32 * 3 - 1);
    }

    #[test]
    fn generated_once_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let ip: IpAddr = "10.0.0.5".parse().unwrap();
        let first = load_or_create(dir.path(), None, &[ip]).unwrap();
        assert!(first.generated);
        let second = load_or_create(dir.path(), None, &[ip]).unwrap();
        assert!(!second.generated);
        assert_eq!(first.fingerprint(), second.fingerprint());
        server_config(second).unwrap();

        use std::os::unix::fs::PermissionsExt;
        let key_mode = std::fs::metadata(dir.path().join("tls/key.pem"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(key_mode & 0o777, 0o600);
    }

    #[test]
    fn half_written_pair_is_regenerated() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create(dir.path(), None, &[]).unwrap();
        std::fs::remove_file(dir.path().join("tls/cert.pem")).unwrap();
        let again = load_or_create(dir.path(), None, &[]).unwrap();
        assert!(again.generated);
        assert_ne!(first.fingerprint(), again.fingerprint());
    }

    #[test]
    fn garbage_certificate_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("c.pem");
        let key = dir.path().join("k.pem");
        std::fs::write(&cert, "not a pem").unwrap();
        std::fs::write(&key, "not a pem").unwrap();
        let err = load_or_create(dir.path(), Some((&cert, &key)), &[])
            .err()
            .unwrap();
        assert!(err.to_string().contains("c.pem"), "{err}");
    }
}
