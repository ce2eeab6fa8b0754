//! HTTP plumbing shared by every route: the response body type, JSON answers, and
//! reading a request body under the configured size limit.

use std::time::Duration;

use tokio::time::Instant;

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, combinators::UnsyncBoxBody};
use hyper::body::Incoming;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// Every response body: buffered answers and relayed streams alike.
pub type Body = UnsyncBoxBody<Bytes, BoxError>;

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// A body fed by a channel: each message is sent as it arrives; the body ends when every
/// sender is gone. Dropping the body (the client went away) closes the channel, which
/// tells the sending task to stop.
fn channel_body(rx: tokio::sync::mpsc::Receiver<Bytes>) -> Body {
    ChannelBody(rx).boxed_unsync()
}

struct ChannelBody(tokio::sync::mpsc::Receiver<Bytes>);

impl http_body::Body for ChannelBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, BoxError>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|c| Ok(http_body::Frame::data(c))))
    }
}

/// An SSE answer fed by a channel of whole events, flushed as they come (also through
/// proxies that would buffer).
pub fn sse_response(rx: tokio::sync::mpsc::Receiver<Bytes>) -> Response<Body> {
    let mut res = Response::new(channel_body(rx));
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    res
}

pub fn json_response(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    let mut res = Response::new(full(value.to_string()));
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}

pub fn text_response(status: StatusCode, text: impl Into<Bytes>) -> Response<Body> {
    let mut res = Response::new(full(text));
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    res
}

pub enum ReadError {
    TooLarge,
    /// The client stopped sending (or the connection broke) mid-body.
    Broken,
    /// The body paused longer than `limits.body_timeout`, or brought less than
    /// [`MIN_BODY_RATE`] over one `body_timeout` window.
    Stalled,
}

/// How a request body may arrive: at most `max` bytes, never pausing longer than `pause`.
#[derive(Clone, Copy, Debug)]
pub struct BodyLimits {
    pub max: u64,
    pub pause: Duration,
}

impl BodyLimits {
    pub fn of(limits: &airlock_core::config::Limits) -> BodyLimits {
        BodyLimits {
            max: limits.max_body,
            pause: limits.body_timeout,
        }
    }
}

/// The slowest a body may arrive, in bytes per second, judged over each `body_timeout`
/// window (Apache's `RequestReadTimeout … MinRate` idea): a body trickled a byte at a time
/// is cut off, however fast it began; a large upload on a slow link is not.
pub const MIN_BODY_RATE: u64 = 1024;

/// A request body that could not be read whole, as the denial the agent gets.
pub fn unread(e: ReadError, limits: BodyLimits) -> airlock_core::Denial {
    use airlock_core::{Denial, Reason};
    match e {
        ReadError::TooLarge => Denial::new(
            Reason::TooLarge,
            format!("the request body is over the {}-byte limit", limits.max),
        ),
        ReadError::Broken => Denial::new(Reason::BadRequest, "the request body ended early"),
        ReadError::Stalled => Denial::new(
            Reason::RequestTimeout,
            format!(
                "the request body stalled: send it without pausing over {} (limits.body_timeout) and at {MIN_BODY_RATE} bytes/s or more",
                humantime::format_duration(limits.pause)
            ),
        ),
    }
}

/// Reads the whole request body, refusing more than `limits.max` bytes (early from
/// `Content-Length`, otherwise while reading) and a body that stalls (see [`ReadError`]).
pub async fn read_body(
    mut body: Incoming,
    content_length: Option<u64>,
    limits: BodyLimits,
) -> Result<Bytes, ReadError> {
    if content_length.is_some_and(|n| n > limits.max) {
        return Err(ReadError::TooLarge);
    }
    // The rate is judged window by window, not from the start: bytes sent fast at first
    // must not buy hours of trickling afterwards while the gateway holds them.
    let needed = MIN_BODY_RATE.saturating_mul(limits.pause.as_millis() as u64) / 1000;
    let mut window_end = Instant::now() + limits.pause;
    let mut in_window: u64 = 0;
    let mut chunks: Vec<Bytes> = Vec::new();
    let mut received: u64 = 0;
    loop {
        let pause_end = Instant::now() + limits.pause;
        let deadline = window_end.min(pause_end);
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            Err(_) if deadline == pause_end => return Err(ReadError::Stalled),
            // The window ended between two pieces: judged below.
            Err(_) => None,
            Ok(None) => break,
            Ok(Some(Err(_))) => return Err(ReadError::Broken),
            Ok(Some(Ok(frame))) => Some(frame),
        };
        if let Some(chunk) = frame.and_then(|f| f.into_data().ok()) {
            received += chunk.len() as u64;
            in_window += chunk.len() as u64;
            if received > limits.max {
                return Err(ReadError::TooLarge);
            }
            chunks.push(chunk);
        }
        if Instant::now() >= window_end {
            if in_window < needed {
                return Err(ReadError::Stalled);
            }
            window_end = Instant::now() + limits.pause;
            in_window = 0;
        }
    }
    Ok(match chunks.len() {
        0 => Bytes::new(),
        1 => chunks.pop().unwrap_or_default(),
        _ => chunks.concat().into(),
    })
}

/// Answers a refused request without waiting on its body, except on HTTP/1.1 where what
/// arrives of it at once is read and dropped (see [`peek`]); HTTP/2 resets the stream
/// cleanly on its own.
pub async fn drain_refused(req: Request<Incoming>) {
    if req.version() < http::Version::HTTP_2 {
        let _ = peek(req.into_body()).await;
    }
}

/// How much of a refused request's body is read, and for how long, before it is answered.
const PEEK_BYTES: u64 = 64 * 1024;
const PEEK_WITHIN: Duration = Duration::from_secs(1);

/// Reads what arrives of a body that will not be served, at most 64 KiB within a second:
/// enough to find a JSON-RPC id, and so an HTTP/1.1 client still sending gets its answer
/// on a connection that stays usable (a server that closes with unread bytes in the socket
/// resets it, and the client may lose the answer). Never the body a slow or suspended
/// agent would make the gateway wait for. `None` when it was longer or slower.
pub async fn peek(body: Incoming) -> Option<Bytes> {
    let limits = BodyLimits {
        max: PEEK_BYTES,
        pause: PEEK_WITHIN,
    };
    tokio::time::timeout(PEEK_WITHIN, read_body(body, None, limits))
        .await
        .ok()?
        .ok()
}

/// The media type of `Content-Type`, lowercase, without parameters (`application/json`).
pub fn content_type(headers: &http::HeaderMap) -> Option<String> {
    let value = headers.get(header::CONTENT_TYPE)?.to_str().unwrap_or("");
    Some(
        value
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase(),
    )
}

pub fn content_length(headers: &http::HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// Query-string parameters, percent-decoded.
pub fn query_params(uri: &http::Uri) -> Vec<(String, String)> {
    uri.query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match u8::from_str_radix(
                    std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"),
                    16,
                ) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_decoding() {
        let uri: http::Uri = "/api/events?limit=5&agent=support%2Dbot&x=a+b&bad=%zz&end=%4"
            .parse()
            .unwrap();
        assert_eq!(
            query_params(&uri),
            vec![
                ("limit".into(), "5".into()),
                ("agent".into(), "support-bot".into()),
                ("x".into(), "a b".into()),
                ("bad".into(), "%zz".into()),
                ("end".into(), "%4".into()),
            ]
        );
    }
}
