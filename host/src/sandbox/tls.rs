//! TLS for an API whose certificate comes from a private CA: the standard (Mozilla) roots plus
//! the certificates of a PEM bundle the admin names (`--ca-bundle`). Without a bundle the host
//! uses wasmtime-wasi-http's own client, which trusts the standard roots only.

use std::path::Path;
use std::sync::Arc;

use http_body_util::BodyExt;
use rustls::ClientConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody};

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
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup failed: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

type Io = Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>;

/// Sends `request` over a connection verified with `config` (plain TCP for `http`), within the
/// (already clamped) timeouts of `options`.
pub async fn send(
    mut request: http::Request<WasiBody>,
    options: RequestOptions,
    config: Arc<ClientConfig>,
) -> wasmtime_wasi_http::Result<(http::Response<WasiBody>, Io)> {
    let uri = request.uri().clone();
    let authority = uri.authority().ok_or(Error::HttpRequestUriInvalid)?;
    let tls = uri.scheme() == Some(&http::uri::Scheme::HTTPS);
    let host = authority.host().trim_start_matches('[').trim_end_matches(']').to_string();
    let port = authority.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let connect_timeout = options.connect_timeout.unwrap_or(std::time::Duration::from_secs(10));
    let tcp = tokio::time::timeout(connect_timeout, tokio::net::TcpStream::connect((host.as_str(), port)))
        .await
        .map_err(|_| Error::ConnectionTimeout)?
        .map_err(Error::Connect)?;
    // The request line carries the path only; the authority went into the Host header.
    *request.uri_mut() = http::Uri::builder()
        .path_and_query(uri.path_and_query().map_or("/", |p| p.as_str()))
        .build()
        .map_err(|_| Error::HttpRequestUriInvalid)?;
    if tls {
        let name = ServerName::try_from(host).map_err(|_| Error::HttpRequestUriInvalid)?;
        let stream = tokio::time::timeout(connect_timeout, tokio_rustls::TlsConnector::from(config).connect(name, tcp))
            .await
            .map_err(|_| Error::ConnectionTimeout)?
            .map_err(Error::Tls)?;
        exchange(stream, request, options).await
    } else {
        exchange(tcp, request, options).await
    }
}

async fn exchange<S>(
    stream: S,
    request: http::Request<WasiBody>,
    options: RequestOptions,
) -> wasmtime_wasi_http::Result<(http::Response<WasiBody>, Io)>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let timeout = |t: Option<std::time::Duration>| t.unwrap_or(std::time::Duration::from_secs(60));
    let (mut sender, connection) = tokio::time::timeout(
        timeout(options.connect_timeout),
        hyper::client::conn::http1::handshake(wasmtime_wasi_http::io::TokioIo::new(stream)),
    )
    .await
    .map_err(|_| Error::ConnectionTimeout)??;
    let driver = tokio::spawn(connection);
    let response = tokio::time::timeout(timeout(options.first_byte_timeout), sender.send_request(request))
        .await
        .map_err(|_| Error::ConnectionReadTimeout)??;
    let io: Io = Box::new(async move {
        match driver.await {
            Ok(result) => result.map_err(Error::from),
            Err(e) => Err(Error::InternalError(Some(e.to_string()))),
        }
    });
    Ok((response.map(|body| body.map_err(Error::from).boxed_unsync()), io))
}
