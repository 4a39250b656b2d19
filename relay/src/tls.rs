//! TLS to a `wss://` upstream. A hoinghi server's certificate is usually its own (made on first
//! start, self-signed): the relay then trusts exactly that certificate, by the SHA-256
//! fingerprint the upstream prints at start (`tls-fingerprint-sha256: AB:CD:…`) and its staff
//! hand over with the link. Without a fingerprint, the system's certificate authorities
//! (`/etc/ssl/certs/ca-certificates.crt`) and the host name decide, as for a browser.

use std::sync::Arc;

use anyhow::{Context, anyhow};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use sha2::{Digest, Sha256};

/// Where the system's certificate authorities are (Debian's `ca-certificates`).
const SYSTEM_CAS: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Accepts the one certificate whose SHA-256 is `pin` (names and dates are the pin's business:
/// it names one certificate), and checks the handshake's signatures with it.
#[derive(Debug)]
struct Pinned {
    pin: [u8; 32],
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let digest: [u8; 32] = Sha256::digest(end_entity.as_ref()).into();
        if digest == self.pin {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(
                "the upstream's certificate is not the one whose fingerprint was given".into(),
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The client configuration for an upstream: pinned to `pin` when given, else the system's
/// certificate authorities.
pub fn client_config(pin: Option<[u8; 32]>) -> anyhow::Result<Arc<ClientConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| anyhow!("TLS versions: {e}"))?;
    let config = match pin {
        Some(pin) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Pinned {
                pin,
                algorithms: signature_algorithms(&provider),
            }))
            .with_no_client_auth(),
        None => {
            let mut roots = RootCertStore::empty();
            let certs = CertificateDer::pem_file_iter(SYSTEM_CAS).with_context(|| {
                format!("read the system's certificate authorities ({SYSTEM_CAS})")
            })?;
            let (added, _) = roots.add_parsable_certificates(certs.flatten());
            if added == 0 {
                return Err(anyhow!(
                    "no certificate authority in {SYSTEM_CAS}: give the upstream's certificate \
                     fingerprint with its link"
                ));
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
    };
    Ok(Arc::new(config))
}

fn signature_algorithms(provider: &CryptoProvider) -> WebPkiSupportedAlgorithms {
    provider.signature_verification_algorithms
}
