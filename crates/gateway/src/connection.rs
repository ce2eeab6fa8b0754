//! One agent's connection, served within `limits:` — on the listeners and inside
//! intercepted TLS alike, HTTP/1.1 and h2c. What one client can hold is bounded:
//!
//! - its first request's headers must arrive within `header_timeout` of the connection
//!   opening, and on HTTP/1.1 each later request's within `header_timeout` of its first
//!   byte; a connection with no request in flight closes after `idle_timeout`;
//! - HTTP/2 streams per connection are capped at `h2_max_streams`;
//! - request bodies are paced where they are read (`http::read_body`).
//!
//! At shutdown a connection with nothing in flight closes at once; one with calls in flight
//! gets the grace period, then is cut (its calls are recorded as cancelled, `shutdown`). A
//! panic while serving is answered 500 `internal` (see `unwind`).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use airlock_core::config::Limits;
use airlock_core::{Denial, Reason};
use bytes::Bytes;
use http::{Request, Response, Version};
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::durable::{self, Commits};
use crate::gateway::Gateway;
use crate::http::{Body, BoxError};
use crate::jsonrpc;
use crate::llm::errors::{ErrorStyle, render};
use crate::unwind;

/// Total request-header size over which a client gets 431.
const MAX_HEADER_BYTES: usize = 64 * 1024;
/// How long a connection told to close (idle, or at shutdown with nothing in flight) may
/// take to say goodbye before it is dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// How agents' connections are served: HTTP/1.1 and HTTP/2, header and stream limits. The
/// header timeout is the connection's own ([`Activity`]): hyper's would also close
/// keep-alive connections waiting for their next request after the header timeout.
fn builder(limits: &Limits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .max_buf_size(MAX_HEADER_BYTES);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(MAX_HEADER_BYTES as u32)
        .max_concurrent_streams(limits.h2_max_streams);
    builder
}

/// Serves one connection until it ends, idles out, or the gateway stops. `route` answers
/// each request.
pub(crate) async fn serve<IO, F, Fut>(io: IO, gateway: Arc<Gateway>, route: F)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<Body>> + Send + 'static,
{
    let (limits, durable) = {
        let config = &gateway.runtime().config;
        (config.limits.clone(), config.state.durable)
    };
    let _open = OpenConnection::count(gateway.clone());
    let activity = Arc::new(Activity::new());
    let io = Watched {
        inner: io,
        activity: activity.clone(),
    };
    let service = {
        let activity = activity.clone();
        service_fn(move |req: Request<Incoming>| {
            let request = activity.start(req.version());
            let shape = ErrorShape::of(req.uri().path());
            let commits = durable.then(Commits::default);
            let answer = unwind::Caught::new(Commits::scope(commits.clone(), route(req)));
            async move {
                let response = answer.await.unwrap_or_else(|()| shape.internal_error());
                Ok::<_, Infallible>(response.map(|body| Tracked {
                    inner: Some(body),
                    durable: commits.map(Durable::Relaying),
                    _request: request,
                }))
            }
        })
    };
    // With upgrades: the egress proxy hands CONNECT connections to tunnels.
    let conn = builder(&limits)
        .serve_connection_with_upgrades(TokioIo::new(io), service)
        .into_owned();
    tokio::pin!(conn);
    let mut stopping = gateway.stopping.subscribe();
    let mut cut = gateway.cut.subscribe();
    let (mut stopped, mut closing_since) = (false, None::<Instant>);
    loop {
        let goodbye = closing_since.map(|since| since + CLOSE_GRACE);
        tokio::select! {
            done = conn.as_mut() => {
                if let Err(e) = done {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            () = activity.expired(&limits, stopped), if closing_since.is_none() => {
                conn.as_mut().graceful_shutdown();
                closing_since = Some(Instant::now());
            }
            () = async { drop(stopping.wait_for(|s| *s).await) }, if !stopped => {
                // Calls in flight finish within the grace period; nothing else waits.
                stopped = true;
                conn.as_mut().graceful_shutdown();
            }
            () = async { drop(cut.wait_for(|c| *c).await) } => return,
            () = tokio::time::sleep_until(goodbye.unwrap_or_else(Instant::now)), if goodbye.is_some() => return,
        }
    }
}

/// The error dialect of a route, known before its handler takes the request.
#[derive(Clone, Copy)]
enum ErrorShape {
    JsonRpc,
    Llm(ErrorStyle),
}

impl ErrorShape {
    fn of(path: &str) -> ErrorShape {
        if path == "/mcp" || path.starts_with("/mcp/") || path.starts_with("/a2a/") {
            ErrorShape::JsonRpc
        } else if path.ends_with("/messages") {
            ErrorShape::Llm(ErrorStyle::Anthropic)
        } else {
            ErrorShape::Llm(ErrorStyle::OpenAi)
        }
    }

    /// The answer to a request whose handler panicked.
    fn internal_error(self) -> Response<Body> {
        let d = Denial::new(
            Reason::Internal,
            "Airlock hit an internal error serving this call; it was recorded",
        );
        match self {
            ErrorShape::JsonRpc => {
                jsonrpc::refusal(http::StatusCode::INTERNAL_SERVER_ERROR, None, &d)
            }
            ErrorShape::Llm(style) => render(style, &d),
        }
    }
}

/// Counts a connection as open until it is dropped; shutdown waits for the count to reach
/// zero, so every call cut with its connection is recorded first.
struct OpenConnection(Arc<Gateway>);

impl OpenConnection {
    fn count(gateway: Arc<Gateway>) -> OpenConnection {
        gateway.connections.send_modify(|n| *n += 1);
        OpenConnection(gateway)
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.connections.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// What a connection is doing, for its timeouts. Times are milliseconds after `opened`.
struct Activity {
    opened: Instant,
    in_flight: AtomicU32,
    served: AtomicBool,
    http2: AtomicBool,
    /// When the last request in flight ended.
    idle_since: AtomicU64,
    /// When the first byte arrived while nothing was in flight (a request's head starting),
    /// plus one; 0 for none.
    head_since: AtomicU64,
    changed: Notify,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            opened: Instant::now(),
            in_flight: AtomicU32::new(0),
            served: AtomicBool::new(false),
            http2: AtomicBool::new(false),
            idle_since: AtomicU64::new(0),
            head_since: AtomicU64::new(0),
            changed: Notify::new(),
        }
    }

    fn now_ms(&self) -> u64 {
        self.opened.elapsed().as_millis() as u64
    }

    fn at(&self, ms: u64) -> Instant {
        self.opened + Duration::from_millis(ms)
    }

    /// A request reached the service.
    fn start(self: &Arc<Self>, version: Version) -> InFlightRequest {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.served.store(true, Ordering::Relaxed);
        self.head_since.store(0, Ordering::Relaxed);
        if version == Version::HTTP_2 {
            self.http2.store(true, Ordering::Relaxed);
        }
        InFlightRequest(self.clone())
    }

    /// Bytes arrived: with nothing in flight, a request's head is starting, and the
    /// connection's deadline moves up to the header timeout.
    fn read(&self) {
        if self.in_flight.load(Ordering::Acquire) == 0
            && self.head_since.load(Ordering::Relaxed) == 0
        {
            self.head_since.store(self.now_ms() + 1, Ordering::Relaxed);
            self.changed.notify_one();
        }
    }

    /// When the connection should close if nothing changes; `None` while a request is in
    /// flight.
    fn deadline(&self, limits: &Limits, stopping: bool) -> Option<Instant> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        if stopping {
            return Some(Instant::now());
        }
        if !self.served.load(Ordering::Relaxed) {
            return Some(self.opened + limits.header_timeout);
        }
        let idle = self.at(self.idle_since.load(Ordering::Relaxed)) + limits.idle_timeout;
        // HTTP/2 frames a request's headers whole and sends pings and window updates
        // between requests: only HTTP/1.1 bytes while idle mean a head on its way.
        let head = self.head_since.load(Ordering::Relaxed);
        if head > 0 && !self.http2.load(Ordering::Relaxed) {
            return Some(idle.min(self.at(head - 1) + limits.header_timeout));
        }
        Some(idle)
    }

    /// Resolves once the connection has been idle (or slow with a request's head) too long.
    async fn expired(&self, limits: &Limits, stopping: bool) {
        loop {
            let changed = self.changed.notified();
            match self.deadline(limits, stopping) {
                None => changed.await,
                Some(at) if at <= Instant::now() => return,
                Some(at) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(at) => {}
                        () = changed => {}
                    }
                }
            }
        }
    }
}

/// A request between reaching the service and its response's end (or drop).
struct InFlightRequest(Arc<Activity>);

impl Drop for InFlightRequest {
    fn drop(&mut self) {
        let activity = &self.0;
        if activity.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            activity
                .idle_since
                .store(activity.now_ms(), Ordering::Relaxed);
            activity.changed.notify_one();
        }
    }
}

/// A response body that keeps its request counted as in flight until it is done, turns a
/// panic while relaying into a cut response rather than a lost connection, and under
/// `state.durable` holds back its last frame until the request's calls are committed.
pub struct Tracked {
    inner: Option<Body>,
    durable: Option<Durable>,
    _request: InFlightRequest,
}

/// Where a durable response is: relaying, holding its end for the commits, or over.
enum Durable {
    Relaying(Commits),
    Waiting {
        commits: Commits,
        last: Option<Frame<Bytes>>,
        give_up: Pin<Box<tokio::time::Sleep>>,
    },
    Over,
}

impl http_body::Body for Tracked {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let Some(durable) = this.durable.as_mut() else {
            return unwind::poll_caught(&mut this.inner, cx);
        };
        if let Durable::Relaying(commits) = durable {
            let last = match ready!(unwind::poll_caught(&mut this.inner, cx)) {
                Some(Err(e)) => return Poll::Ready(Some(Err(e))),
                Some(Ok(frame)) if !this.inner.as_ref().is_none_or(|b| b.is_end_stream()) => {
                    return Poll::Ready(Some(Ok(frame)));
                }
                Some(Ok(frame)) => Some(frame),
                None => None,
            };
            *durable = Durable::Waiting {
                commits: commits.clone(),
                last,
                give_up: Box::pin(tokio::time::sleep(durable::LONGEST_WAIT)),
            };
        }
        match durable {
            Durable::Waiting {
                commits,
                last,
                give_up,
            } => {
                if commits.poll_all(cx).is_pending() {
                    ready!(give_up.as_mut().poll(cx));
                    tracing::warn!(
                        "a response ended before its call's event was committed: the ledger is {} s behind",
                        durable::LONGEST_WAIT.as_secs()
                    );
                }
                let last = last.take();
                *durable = Durable::Over;
                Poll::Ready(last.map(Ok))
            }
            _ => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.durable {
            None => self.inner.as_ref().is_none_or(|b| b.is_end_stream()),
            Some(d) => matches!(d, Durable::Over),
        }
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), |b| b.size_hint())
    }
}

/// The connection's socket, noting when bytes arrive (see [`Activity::read`]).
struct Watched<IO> {
    inner: IO,
    activity: Arc<Activity>,
}

impl<IO: AsyncRead + Unpin> AsyncRead for Watched<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.read();
        }
        polled
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Watched<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        airlock_core::Config::parse("limits: { header_timeout: 2s, idle_timeout: 10s }", &|_| {
            None
        })
        .unwrap()
        .limits
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_that_never_sends_a_request_closes_after_the_header_timeout() {
        let a = Activity::new();
        assert_eq!(
            a.deadline(&limits(), false),
            Some(a.opened + Duration::from_secs(2))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn nothing_closes_while_a_request_is_in_flight_and_idleness_counts_from_its_end() {
        let a = Arc::new(Activity::new());
        let request = a.start(Version::HTTP_11);
        assert_eq!(a.deadline(&limits(), false), None);
        tokio::time::advance(Duration::from_secs(30)).await;
        drop(request);
        let deadline = a.deadline(&limits(), false).unwrap();
        assert_eq!(deadline, a.opened + Duration::from_secs(40));
        // At shutdown an idle connection goes at once.
        assert!(a.deadline(&limits(), true).unwrap() <= Instant::now());
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_http1_head_after_the_first_request_gets_the_header_timeout() {
        let a = Arc::new(Activity::new());
        drop(a.start(Version::HTTP_11));
        tokio::time::advance(Duration::from_secs(3)).await;
        a.read();
        let slow_head = a.deadline(&limits(), false).unwrap();
        assert_eq!(slow_head, a.opened + Duration::from_secs(5));
        // On HTTP/2, bytes between requests are pings and window updates: idle rules.
        let b = Arc::new(Activity::new());
        drop(b.start(Version::HTTP_2));
        b.read();
        assert_eq!(
            b.deadline(&limits(), false).unwrap(),
            b.opened + Duration::from_secs(10)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn expiry_waits_for_the_last_request_to_end() {
        let a = Arc::new(Activity::new());
        let request = a.start(Version::HTTP_11);
        let l = limits();
        let expired = a.expired(&l, false);
        tokio::pin!(expired);
        assert!(futures_poll(&mut expired).await.is_none());
        drop(request);
        tokio::time::advance(Duration::from_secs(11)).await;
        assert!(futures_poll(&mut expired).await.is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn a_head_starting_on_an_idle_keep_alive_connection_brings_the_deadline_forward() {
        let a = Arc::new(Activity::new());
        drop(a.start(Version::HTTP_11));
        let l = limits();
        let expired = a.expired(&l, false);
        tokio::pin!(expired);
        assert!(futures_poll(&mut expired).await.is_none());
        a.read();
        // The header timeout (2 s), not the idle one (10 s).
        tokio::time::advance(Duration::from_millis(2100)).await;
        assert!(futures_poll(&mut expired).await.is_some());
    }

    /// Polls once (after letting timers fire).
    async fn futures_poll<F: Future<Output = ()> + Unpin>(f: &mut F) -> Option<()> {
        tokio::task::yield_now().await;
        std::future::poll_fn(|cx| {
            Poll::Ready(match Pin::new(&mut *f).poll(cx) {
                Poll::Ready(()) => Some(()),
                Poll::Pending => None,
            })
        })
        .await
    }
}
