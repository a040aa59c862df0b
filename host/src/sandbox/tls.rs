//! What the host's TLS trusts: the standard (Mozilla) roots, plus for an API whose certificate
//! comes from a private CA the certificates of a PEM bundle the admin names (`--ca-bundle`).
//! Connections are made in `pool.rs`.

use std::path::Path;
use std::sync::Arc;

use rustls::ClientConfig;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// A client configuration trusting the standard roots and every certificate in `bundle`.
pub fn client_config(bundle: &Path) -> Result<Arc<ClientConfig>, String> {
    let mut roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    let shown = bundle.display();
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(bundle)
        .map_err(|e| format!("cannot read the CA bundle {shown}: {e}"))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("the CA bundle {shown} is not valid PEM: {e}"))?;
    if certs.is_empty() {
        return Err(format!("the CA bundle {shown} holds no certificate"));
    }
    for cert in certs {
        roots.add(cert).map_err(|e| format!("the CA bundle {shown} holds an unusable certificate: {e}"))?;
    }
    config(roots).map_err(|e| format!("TLS setup failed: {e}"))
}

/// A client configuration trusting the standard roots only (no `--ca-bundle`).
pub fn standard_config() -> Arc<ClientConfig> {
    let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    config(roots).expect("ring supports the safe default protocol versions")
}

fn config(roots: rustls::RootCertStore) -> Result<Arc<ClientConfig>, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}
