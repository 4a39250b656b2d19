//! The HTTPS certificate: the operator's (`--tls-cert/--tls-key`) or one we make on first start
//! in `<data-dir>/tls/` and reuse after, so the fingerprint points were told stays the same.
//!
//! Points open a self-signed server once, compare the fingerprint printed at start with the
//! browser's, and accept it. Delete `<data-dir>/tls/` to make a new one (e.g. after changing
//! `--public-ip`, which is one of its names).
//!
//! The generated certificate is valid for [`GENERATED_VALIDITY`] and made anew at a start when
//! less than [`RENEW_BEFORE`] is left: a certificate valid until the year 4096 (rcgen's default)
//! is one a stolen key is good for forever. A renewed certificate has a new fingerprint, which
//! the start logs as a warning, since points must accept it again.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{Context, anyhow};
use room_admin::files;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};

pub const TLS_DIR: &str = "tls";
pub const CERT_FILE: &str = "cert.pem";
pub const KEY_FILE: &str = "key.pem";
/// How long a generated certificate is valid.
pub const GENERATED_VALIDITY: Duration = Duration::from_secs(365 * 24 * 3600);
/// A generated certificate with less than this left is made again at start.
pub const RENEW_BEFORE: Duration = Duration::from_secs(30 * 24 * 3600);

/// A certificate chain and its key, ready for rustls.
pub struct TlsMaterial {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
    /// Where the certificate came from (shown in logs).
    pub cert_path: PathBuf,
    /// True when this start made the certificate.
    pub generated: bool,
    /// True for the operator's certificate (`--tls-cert`), false for the one we make: only the
    /// operator's is trusted by browsers, so only then is HSTS sent.
    pub operator: bool,
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
        let mut material = load(cert, key, false)?;
        material.operator = true;
        return Ok(material);
    }
    let dir = data_dir.join(TLS_DIR);
    let cert = dir.join(CERT_FILE);
    let key = dir.join(KEY_FILE);
    // Both or neither: a crash between the two writes leaves one, and a certificate without its
    // key (or the reverse) is useless, so it is made again.
    if cert.exists() && key.exists() {
        let material = load(&cert, &key, false)?;
        match material.remaining(SystemTime::now()) {
            Some(left) if left >= RENEW_BEFORE => return Ok(material),
            left => tracing::warn!(
                days_left = left.map(|d| d.as_secs() / 86_400),
                "the generated TLS certificate expires soon or cannot be read: making a new \
                 one (new fingerprint: points must accept it again)"
            ),
        }
    }
    files::ensure_private_dir(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let (cert_pem, key_pem) = generate(names, SystemTime::now(), GENERATED_VALIDITY)?;
    // The key first: if we crash before the certificate is written, the next start sees no
    // certificate and makes both again.
    files::write_atomic(&key, key_pem.as_bytes(), 0o600)
        .with_context(|| format!("cannot write {}", key.display()))?;
    files::write_atomic(&cert, cert_pem.as_bytes(), 0o644)
        .with_context(|| format!("cannot write {}", cert.display()))?;
    load(&cert, &key, true)
}

/// A self-signed certificate (ECDSA P-256) for localhost, 127.0.0.1 and `names`, valid from a
/// day before `now` (clocks of the points differ) for `validity`, as PEM `(certificate, key)`.
fn generate(
    names: &[IpAddr],
    now: SystemTime,
    validity: Duration,
) -> anyhow::Result<(String, String)> {
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
    let now = time::OffsetDateTime::from(now);
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + validity;
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
        operator: false,
    })
}

impl TlsMaterial {
    /// Time left before the leaf certificate expires at `now`: zero when expired, `None` when
    /// its dates cannot be read.
    pub fn remaining(&self, now: SystemTime) -> Option<Duration> {
        let leaf = self.chain.first()?;
        let (_, cert) = x509_parser::parse_x509_certificate(leaf).ok()?;
        let not_after = cert.validity().not_after.timestamp();
        let now = now.duration_since(SystemTime::UNIX_EPOCH).ok()?.as_secs() as i64;
        Some(Duration::from_secs(
            not_after.saturating_sub(now).max(0) as u64
        ))
    }
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

    /// A ClientHello with `version` in its body offering only `suites` (no extensions, as old
    /// clients send), as the first record a client would send.
    fn client_hello(version: [u8; 2], suites: &[[u8; 2]]) -> Vec<u8> {
        let mut body = Vec::new();
        body.extend_from_slice(&version);
        body.extend_from_slice(&[7; 32]); // random
        body.push(0); // no session id
        body.extend_from_slice(&((suites.len() * 2) as u16).to_be_bytes());
        for s in suites {
            body.extend_from_slice(s);
        }
        body.extend_from_slice(&[1, 0]); // null compression only
        let mut hs = vec![1]; // client_hello
        hs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        hs.extend_from_slice(&body);
        let mut record = vec![0x16, 3, 1];
        record.extend_from_slice(&(hs.len() as u16).to_be_bytes());
        record.extend_from_slice(&hs);
        record
    }

    /// Feeds `hello` to a server connection made from our settings: whether it was refused.
    fn refused(hello: &[u8]) -> bool {
        let dir = tempfile::tempdir().unwrap();
        let config = server_config(load_or_create(dir.path(), None, &[]).unwrap()).unwrap();
        let mut server = rustls::ServerConnection::new(config).unwrap();
        let mut input = hello;
        server.read_tls(&mut input).unwrap();
        server.process_new_packets().is_err()
    }

    #[test]
    fn old_protocol_versions_and_non_aead_suites_are_refused() {
        const RSA_AES128_CBC_SHA: [u8; 2] = [0x00, 0x2f];
        const ECDHE_RSA_AES128_CBC_SHA: [u8; 2] = [0xc0, 0x13];
        const ECDHE_ECDSA_AES128_GCM: [u8; 2] = [0xc0, 0x2b];
        // TLS 1.0 and 1.1 clients, whatever they offer.
        assert!(refused(&client_hello(
            [3, 1],
            &[RSA_AES128_CBC_SHA, ECDHE_ECDSA_AES128_GCM]
        )));
        assert!(refused(&client_hello(
            [3, 2],
            &[RSA_AES128_CBC_SHA, ECDHE_ECDSA_AES128_GCM]
        )));
        // TLS 1.2 offering only CBC suites.
        assert!(refused(&client_hello(
            [3, 3],
            &[RSA_AES128_CBC_SHA, ECDHE_RSA_AES128_CBC_SHA]
        )));
        // And every suite the server can choose is an AEAD one.
        let provider = rustls::crypto::ring::default_provider();
        for suite in &provider.cipher_suites {
            let name = format!("{:?}", suite.suite());
            assert!(
                name.contains("GCM") || name.contains("CHACHA20_POLY1305"),
                "non-AEAD suite offered: {name}"
            );
        }
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
    fn a_generated_certificate_is_valid_for_about_a_year() {
        let dir = tempfile::tempdir().unwrap();
        let made = load_or_create(dir.path(), None, &[]).unwrap();
        let left = made.remaining(SystemTime::now()).unwrap();
        let day = Duration::from_secs(86_400);
        assert!(
            left > GENERATED_VALIDITY - day && left <= GENERATED_VALIDITY,
            "{left:?}"
        );
        assert!(!made.operator);
    }

    #[test]
    fn a_generated_certificate_close_to_expiry_is_made_again_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let tls = dir.path().join(TLS_DIR);
        files::ensure_private_dir(&tls).unwrap();
        // Made 340 days ago: 25 days left, under the 30-day margin.
        let then = SystemTime::now() - Duration::from_secs(340 * 86_400);
        let (cert, key) = generate(&[], then, GENERATED_VALIDITY).unwrap();
        std::fs::write(tls.join(CERT_FILE), cert).unwrap();
        std::fs::write(tls.join(KEY_FILE), key).unwrap();
        let old = load(&tls.join(CERT_FILE), &tls.join(KEY_FILE), false).unwrap();
        let old_left = old.remaining(SystemTime::now()).unwrap();
        assert!(old_left < RENEW_BEFORE, "{old_left:?}");

        let renewed = load_or_create(dir.path(), None, &[]).unwrap();
        assert!(renewed.generated);
        assert_ne!(renewed.fingerprint(), old.fingerprint());
        assert!(renewed.remaining(SystemTime::now()).unwrap() > RENEW_BEFORE);

        // One with more than the margin left is kept.
        let (cert, key) = generate(&[], SystemTime::now(), GENERATED_VALIDITY).unwrap();
        std::fs::write(tls.join(CERT_FILE), cert).unwrap();
        std::fs::write(tls.join(KEY_FILE), key).unwrap();
        assert!(!load_or_create(dir.path(), None, &[]).unwrap().generated);
    }

    #[test]
    fn the_operators_certificate_is_marked_as_such() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = generate(&[], SystemTime::now(), GENERATED_VALIDITY).unwrap();
        let (c, k) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
        std::fs::write(&c, cert).unwrap();
        std::fs::write(&k, key).unwrap();
        let material = load_or_create(dir.path(), Some((&c, &k)), &[]).unwrap();
        assert!(material.operator && !material.generated);
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
