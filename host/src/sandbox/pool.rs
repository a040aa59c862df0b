//! The one place outgoing requests are sent: HTTP/1.1 over TCP, or TLS (rustls) for `https`,
//! through a keep-alive pool of connections per origin.
//!
//! Bounds: at most `max_connections` requests in flight (one slot each), and at most
//! `max_connections` connections open, in use or idle. The slot is held until the connection
//! is back in the pool or closed, and a new connection is opened only when the origin has no
//! usable idle one (a request first waits for one on its way back); so every open connection is
//! either idle or tied to a held slot.
//!
//! Reuse: a connection goes back to the pool only after its response body was read to the end
//! and hyper says it can take another request (not after `Connection: close`, an error, a
//! timeout or a body dropped half-read). An idle connection the server closed, or idle longer
//! than [`IDLE_CONNECTION_LIFETIME`], is dropped at the next checkout. A request that a reused
//! connection could not even start to send is sent again on a new connection; a request that
//! was sent is never repeated here (the module decides about retries).
//!
//! Chosen over hyper-util's pooled `Client`: that client may race a new connection against an
//! idle one coming back and keeps both, so it cannot hold the total bound, and it has no
//! between-bytes timeout; here each rule is a few lines on hyper's `client::conn`.

use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use http_body_util::BodyExt;
use hyper::body::{Body, Bytes, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::SendRequest;
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody};

use super::limits::IDLE_CONNECTION_LIFETIME;
use super::origin::Origin;

/// What wasi:http's `send_request` hook returns beside the response: nothing left to drive
/// here (each connection runs in its own task).
type Io = Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>;

/// Longest wait, after a response was read, for hyper to say the connection can take another
/// request (it normally takes microseconds); past it the connection is closed.
const RETURN_WAIT: Duration = Duration::from_secs(1);

/// The connections of one operation.
pub struct Pool {
    /// One permit per request in flight, held until its connection is idle again or closed.
    slots: Arc<Semaphore>,
    idle: Mutex<Vec<Idle>>,
    /// Connections whose response was read and that are on their way back to `idle`.
    returning: AtomicUsize,
    /// Woken when one of those is back in `idle` or closed.
    returned: Notify,
    /// `false` (`--no-keep-alive`): every connection is closed after one request.
    keep_alive: bool,
    /// TLS trusting the standard roots plus `--ca-bundle`, if given.
    bundle: Option<Arc<ClientConfig>>,
    /// TLS trusting the standard roots, made on first use.
    standard: OnceLock<Arc<ClientConfig>>,
}

/// An open connection; dropping it closes the socket.
struct Conn {
    sender: SendRequest<WasiBody>,
    driver: tokio::task::JoinHandle<()>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

struct Idle {
    origin: Origin,
    conn: Conn,
    since: Instant,
}

/// A connection in use by one request, with that request's slot.
struct Lease {
    pool: Arc<Pool>,
    origin: Origin,
    conn: Conn,
    slot: OwnedSemaphorePermit,
}

impl Pool {
    /// A pool of at most `max_connections` connections; `keep_alive` false closes each after
    /// one request. `bundle`: TLS trusting a CA bundle too (else the standard roots only).
    pub fn new(max_connections: usize, keep_alive: bool, bundle: Option<Arc<ClientConfig>>) -> Pool {
        Pool {
            slots: Arc::new(Semaphore::new(max_connections.max(1))),
            idle: Mutex::new(Vec::new()),
            returning: AtomicUsize::new(0),
            returned: Notify::new(),
            keep_alive,
            bundle,
            standard: OnceLock::new(),
        }
    }

    /// Sends `request` (already aimed at `origin`) within the clamped timeouts of `options`:
    /// connect (TCP and TLS), first byte, and between bytes of the response body.
    pub async fn send(
        self: Arc<Self>,
        origin: Origin,
        mut request: http::Request<WasiBody>,
        options: RequestOptions,
    ) -> wasmtime_wasi_http::Result<(http::Response<WasiBody>, Io)> {
        let slot = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Error::InternalError(Some("connection limit closed".into())))?;
        // The request line carries the path only; the authority is in the Host header.
        *request.uri_mut() = http::Uri::builder()
            .path_and_query(request.uri().path_and_query().map_or("/", |p| p.as_str()))
            .build()
            .map_err(|_| Error::HttpRequestUriInvalid)?;
        let first_byte = options.first_byte_timeout.unwrap_or(Duration::from_secs(60));
        let between_bytes = options.between_bytes_timeout.unwrap_or(Duration::from_secs(60));
        loop {
            let (mut conn, reused) = match self.take_idle(&origin) {
                Some(conn) => (conn, true),
                None if self.wait_for_return().await => continue,
                None => (self.connect(&origin, &options).await?, false),
            };
            let response = match tokio::time::timeout(first_byte, conn.sender.try_send_request(request)).await {
                Err(_) => return Err(Error::ConnectionReadTimeout),
                Ok(Ok(response)) => response,
                Ok(Err(mut failed)) => match failed.take_message() {
                    // The server closed the idle connection before the request left: send it
                    // on another one.
                    Some(unsent) if reused => {
                        tracing::debug!("egress: an idle connection to {origin} was closed; reconnecting");
                        request = unsent;
                        continue;
                    }
                    _ => return Err(failed.into_error().into()),
                },
            };
            let lease = Lease { pool: self.clone(), origin, conn, slot };
            let response = response.map(|incoming| {
                PooledBody {
                    incoming,
                    lease: Some(lease),
                    between_bytes,
                    timer: Box::pin(tokio::time::sleep(between_bytes)),
                }
                .boxed_unsync()
            });
            return Ok((response, Box::new(async { Ok(()) }) as Io));
        }
    }

    /// When a connection is on its way back to the pool (its response was just read, hyper has
    /// yet to say it is ready), waits for it rather than opening another: true once it is back or
    /// closed, false at once when none is coming.
    async fn wait_for_return(&self) -> bool {
        let returned = self.returned.notified();
        tokio::pin!(returned);
        returned.as_mut().enable();
        if self.returning.load(Ordering::SeqCst) == 0 {
            return false;
        }
        let _ = tokio::time::timeout(RETURN_WAIT, returned).await;
        true
    }

    /// The most recently used idle connection to `origin` that can take a request. Drops the
    /// ones the server closed, those idle too long, and those of other origins (an operation
    /// has one allowed origin, so there are none; dropping them keeps the total bound simple).
    fn take_idle(&self, origin: &Origin) -> Option<Conn> {
        let mut idle = self.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        idle.retain(|i| {
            i.origin == *origin && i.conn.sender.is_ready() && now.duration_since(i.since) < IDLE_CONNECTION_LIFETIME
        });
        idle.pop().map(|i| i.conn)
    }

    async fn connect(&self, origin: &Origin, options: &RequestOptions) -> wasmtime_wasi_http::Result<Conn> {
        let connect_timeout = options.connect_timeout.unwrap_or(Duration::from_secs(10));
        let host = origin.host.trim_start_matches('[').trim_end_matches(']');
        let tcp = tokio::time::timeout(connect_timeout, connect_tcp(host, origin.port))
            .await
            .map_err(|_| Error::ConnectionTimeout)??;
        // A request's head and body may leave in two writes; on a reused connection Nagle's
        // algorithm would hold the second until the server's delayed ACK (up to 40 ms).
        let _ = tcp.set_nodelay(true);
        tracing::debug!("egress: new connection to {origin}");
        if origin.scheme == "https" {
            let name = ServerName::try_from(host.to_string()).map_err(|_| Error::HttpRequestUriInvalid)?;
            let connector = tokio_rustls::TlsConnector::from(self.tls_config());
            let stream = tokio::time::timeout(connect_timeout, connector.connect(name, tcp))
                .await
                .map_err(|_| Error::ConnectionTimeout)?
                .map_err(Error::Tls)?;
            handshake(stream, connect_timeout).await
        } else {
            handshake(tcp, connect_timeout).await
        }
    }

    fn tls_config(&self) -> Arc<ClientConfig> {
        match &self.bundle {
            Some(config) => config.clone(),
            None => self.standard.get_or_init(super::tls::standard_config).clone(),
        }
    }

    fn put_idle(&self, origin: Origin, conn: Conn) {
        let mut idle = self.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        idle.push(Idle { origin, conn, since: Instant::now() });
    }
}

/// A TCP connection to `host`: an IP address written literally is connected to as it is; a name
/// is resolved, and only to the addresses it resolves to that are not [`internal_address`]es (a
/// name of a public API that resolves to this machine or to a cloud's metadata service is refused
/// with `destination-ip-prohibited`, as is `localhost`: write `127.0.0.1` to mean it). The
/// addresses connected to are those checked: the name is not resolved a second time.
async fn connect_tcp(host: &str, port: u16) -> wasmtime_wasi_http::Result<tokio::net::TcpStream> {
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return tokio::net::TcpStream::connect((ip, port)).await.map_err(Error::Connect);
    }
    let resolved: Vec<std::net::SocketAddr> =
        tokio::net::lookup_host((host, port)).await.map_err(Error::Connect)?.collect();
    let allowed: Vec<std::net::SocketAddr> = resolved.iter().copied().filter(|a| !internal_address(a.ip())).collect();
    if allowed.is_empty() && !resolved.is_empty() {
        tracing::warn!(
            "egress: {host} resolves only to internal addresses ({}): refused (name such an address literally in the URL to allow it)",
            resolved.iter().map(|a| a.ip().to_string()).collect::<Vec<_>>().join(", ")
        );
        return Err(Error::DestinationIpProhibited);
    }
    tokio::net::TcpStream::connect(&allowed[..]).await.map_err(Error::Connect)
}

/// Whether `ip` is an address a name must not lead the module to: unspecified, loopback,
/// link-local (IPv4 169.254.0.0/16, which holds the cloud metadata service 169.254.169.254, and
/// IPv6 fe80::/10), or AWS's IPv6 metadata address fd00:ec2::254; IPv4-mapped IPv6 addresses
/// are judged as their IPv4 address.
pub fn internal_address(ip: std::net::IpAddr) -> bool {
    use std::net::IpAddr;
    match ip {
        IpAddr::V4(v4) => v4.is_unspecified() || v4.is_loopback() || v4.is_link_local(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => internal_address(IpAddr::V4(v4)),
            None => {
                v6.is_unspecified()
                    || v6.is_loopback()
                    || v6.is_unicast_link_local()
                    || v6 == std::net::Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)
            }
        },
    }
}

/// HTTP/1.1 over `stream`, its connection driven by a task of its own.
async fn handshake<S>(stream: S, timeout: Duration) -> wasmtime_wasi_http::Result<Conn>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let (sender, connection) =
        tokio::time::timeout(timeout, hyper::client::conn::http1::Builder::new().handshake(TokioIo::new(stream)))
            .await
            .map_err(|_| Error::ConnectionTimeout)??;
    let driver = tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!("egress: connection ended: {e}");
        }
    });
    Ok(Conn { sender, driver })
}

impl Lease {
    /// The request is over: its connection goes back to the pool if `reusable` and hyper agrees,
    /// else it is closed; the slot is freed after that.
    fn finish(self, reusable: bool) {
        if !reusable || !self.pool.keep_alive {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        self.pool.returning.fetch_add(1, Ordering::SeqCst);
        runtime.spawn(async move {
            let Lease { pool, origin, mut conn, slot } = self;
            if let Ok(Ok(())) = tokio::time::timeout(RETURN_WAIT, conn.sender.ready()).await {
                pool.put_idle(origin, conn);
            }
            drop(slot);
            pool.returning.fetch_sub(1, Ordering::SeqCst);
            pool.returned.notify_waiters();
        });
    }
}

/// A response body on a pooled connection: wasmtime-wasi-http's between-bytes timeout, and the
/// connection's return to the pool once the body has been read to its end.
struct PooledBody {
    incoming: Incoming,
    lease: Option<Lease>,
    between_bytes: Duration,
    timer: Pin<Box<tokio::time::Sleep>>,
}

impl PooledBody {
    fn finish(&mut self, reusable: bool) {
        if let Some(lease) = self.lease.take() {
            lease.finish(reusable);
        }
    }
}

impl Body for PooledBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.incoming).poll_frame(cx) {
            Poll::Ready(None) => {
                this.finish(true);
                Poll::Ready(None)
            }
            Poll::Ready(Some(Ok(frame))) => {
                let deadline = tokio::time::Instant::now() + this.between_bytes;
                this.timer.as_mut().reset(deadline);
                if this.incoming.is_end_stream() {
                    this.finish(true);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                this.finish(false);
                Poll::Ready(Some(Err(if e.is_timeout() { Error::HttpResponseTimeout } else { e.into() })))
            }
            Poll::Pending => {
                ready!(this.timer.as_mut().poll(cx));
                this.finish(false);
                Poll::Ready(Some(Err(Error::ConnectionReadTimeout)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.incoming.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.incoming.size_hint()
    }
}

impl Drop for PooledBody {
    /// A body dropped before its end closes its connection (the rest of the response is still
    /// on the wire); one read to the end is returned.
    fn drop(&mut self) {
        let complete = self.incoming.is_end_stream();
        self.finish(complete);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_link_local_and_metadata_addresses_are_internal() {
        for ip in [
            "127.0.0.1",
            "127.1.2.3",
            "0.0.0.0",
            "169.254.169.254",
            "::1",
            "::",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "fd00:ec2::254",
        ] {
            assert!(internal_address(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "10.0.0.1", "192.168.1.1", "2606:4700::1111", "::ffff:8.8.8.8"] {
            assert!(!internal_address(ip.parse().unwrap()), "{ip}");
        }
    }

    #[tokio::test]
    async fn a_name_resolving_to_loopback_is_refused_and_a_literal_address_is_not() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        assert!(matches!(connect_tcp("localhost", port).await, Err(Error::DestinationIpProhibited)));
        assert!(connect_tcp("127.0.0.1", port).await.is_ok());
    }
}
