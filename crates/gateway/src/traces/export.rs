//! The exporter's HTTP client: Airlock's own pooled hyper client (rustls, HTTP/1.1 and h2),
//! so no second HTTP stack comes in for telemetry.
//!
//! The SDK's batch processor exports from a thread of its own, outside Tokio; each request
//! is therefore spawned onto the gateway's runtime and awaited from there. A failure is
//! logged at most once a minute; the SDK drops the batch and goes on.

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full, Limited};
use opentelemetry_http::{HttpClient, HttpError};

use crate::upstream::Client;

/// One export request, answer included, from connecting to the last byte.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// A collector's answer is a small protobuf message; anything bigger is not one.
const MAX_ANSWER: usize = 64 << 10;
/// Failures are logged at most this often.
const WARN_EVERY: Duration = Duration::from_secs(60);

pub struct OtlpClient {
    client: Client,
    runtime: tokio::runtime::Handle,
    url: String,
    /// When the last failure was logged, and how many went unlogged since.
    warned: Mutex<(Option<Instant>, u64)>,
}

impl std::fmt::Debug for OtlpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtlpClient")
            .field("url", &self.url)
            .finish()
    }
}

impl OtlpClient {
    pub fn new(client: Client, runtime: tokio::runtime::Handle, url: &str) -> OtlpClient {
        OtlpClient {
            client,
            runtime,
            url: url.to_string(),
            warned: Mutex::new((None, 0)),
        }
    }

    async fn send(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let client = self.client.clone();
        let exchange = async move {
            let res = client.request(request.map(Full::new)).await?;
            let (parts, body) = res.into_parts();
            let body = Limited::new(body, MAX_ANSWER).collect().await?.to_bytes();
            Ok::<_, HttpError>(Response::from_parts(parts, body))
        };
        // The timer, too, must be made on the runtime: this thread has none.
        let spawned = self
            .runtime
            .spawn(async move { tokio::time::timeout(REQUEST_TIMEOUT, exchange).await });
        let result = match spawned.await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err("no answer within 10 s".into()),
            Err(e) => Err(e.into()),
        };
        match &result {
            Ok(res) if !res.status().is_success() => self.warn(&format!(
                "the collector answered HTTP {}",
                res.status().as_u16()
            )),
            Ok(_) => {}
            Err(e) => self.warn(&e.to_string()),
        }
        result
    }

    fn warn(&self, why: &str) {
        let mut warned = self.warned.lock().unwrap_or_else(|p| p.into_inner());
        let (last, unlogged) = &mut *warned;
        if last.is_some_and(|t| t.elapsed() < WARN_EVERY) {
            *unlogged += 1;
            return;
        }
        tracing::warn!(
            url = %self.url,
            failures_since_last_warning = *unlogged,
            "traces could not be sent to the OTLP collector ({why}); their spans are dropped, calls go on"
        );
        *last = Some(Instant::now());
        *unlogged = 0;
    }
}

impl HttpClient for OtlpClient {
    // The trait is declared with `async_trait`; this is its expansion, written out.
    fn send_bytes<'a, 'b>(
        &'a self,
        request: Request<Bytes>,
    ) -> Pin<Box<dyn Future<Output = Result<Response<Bytes>, HttpError>> + Send + 'b>>
    where
        'a: 'b,
        Self: 'b,
    {
        Box::pin(self.send(request))
    }
}
