//! Response bodies. Streams are prebuilt lists of frames played back by a
//! small state machine instead of a task feeding a channel, which keeps the
//! benchmark path free of spawns while still giving every SSE event its own
//! body frame (flushed on its own whenever a pause separates them).

use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use hyper::{Response, StatusCode};
use serde_json::Value;
use tokio::time::Sleep;

use crate::directives::Directives;

struct Chunk {
    data: Bytes,
    /// Content deltas are what `chunk-delay-ms` spaces out and what
    /// `disconnect-after` counts.
    delta: bool,
}

pub(crate) struct MockBody {
    chunks: VecDeque<Chunk>,
    streaming: bool,
    pause: Duration,
    sleep: Option<Pin<Box<Sleep>>>,
    paused: bool,
    abort: Abort,
}

#[derive(PartialEq)]
enum Abort {
    No,
    /// Give hyper one turn to flush what was already produced; otherwise the
    /// error discards the head and deltas still sitting in its write buffer.
    Flush,
    Now,
}

impl MockBody {
    fn full(data: Bytes) -> MockBody {
        MockBody {
            chunks: VecDeque::from([Chunk { data, delta: false }]),
            streaming: false,
            pause: Duration::ZERO,
            sleep: None,
            paused: false,
            abort: Abort::No,
        }
    }
}

impl Body for MockBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = self.get_mut();
        loop {
            if let Some(sleep) = this.sleep.as_mut() {
                ready!(sleep.as_mut().poll(cx));
                this.sleep = None;
                this.paused = true;
            }
            let Some(next) = this.chunks.front() else {
                return match this.abort {
                    Abort::No => Poll::Ready(None),
                    Abort::Flush => {
                        this.abort = Abort::Now;
                        cx.waker().wake_by_ref();
                        Poll::Pending
                    }
                    Abort::Now => {
                        this.abort = Abort::No;
                        Poll::Ready(Some(Err(io::Error::new(
                            io::ErrorKind::ConnectionAborted,
                            "mock disconnect-after",
                        ))))
                    }
                };
            };
            if next.delta && !this.pause.is_zero() && !this.paused {
                this.sleep = Some(Box::pin(tokio::time::sleep(this.pause)));
                continue;
            }
            this.paused = false;
            return match this.chunks.pop_front() {
                Some(chunk) => Poll::Ready(Some(Ok(Frame::data(chunk.data)))),
                None => Poll::Ready(None),
            };
        }
    }

    fn is_end_stream(&self) -> bool {
        self.chunks.is_empty() && self.abort == Abort::No
    }

    fn size_hint(&self) -> SizeHint {
        // Exact only for plain bodies, so they get a content-length while
        // streams go out chunked like a real provider's.
        if self.streaming {
            return SizeHint::default();
        }
        let len = self.chunks.iter().map(|c| c.data.len() as u64).sum();
        SizeHint::with_exact(len)
    }
}

pub(crate) fn json(status: StatusCode, value: &Value) -> Response<MockBody> {
    let mut response = Response::new(MockBody::full(Bytes::from(value.to_string())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// Builds a server-sent-event stream, applying the streaming directives.
pub(crate) struct Sse {
    chunks: VecDeque<Chunk>,
    deltas: usize,
    cut_after: Option<usize>,
    cut: bool,
    pause: Duration,
}

impl Sse {
    pub fn new(d: &Directives) -> Sse {
        Sse {
            chunks: VecDeque::new(),
            deltas: 0,
            cut_after: d.disconnect_after,
            cut: false,
            pause: d.chunk_delay,
        }
    }

    /// An OpenAI-style `data:`-only event.
    pub fn data(&mut self, value: &Value, delta: bool) {
        self.push(format!("data: {value}\n\n"), delta);
    }

    /// A named event, as Anthropic and the Responses API send them.
    pub fn event(&mut self, name: &str, value: &Value, delta: bool) {
        self.push(format!("event: {name}\ndata: {value}\n\n"), delta);
    }

    pub fn done(&mut self) {
        self.push("data: [DONE]\n\n".to_owned(), false);
    }

    fn push(&mut self, frame: String, delta: bool) {
        if self.cut {
            return;
        }
        if delta {
            if self.cut_after == Some(self.deltas) {
                // Everything from here on is never sent.
                self.cut = true;
                return;
            }
            self.deltas += 1;
        }
        self.chunks.push_back(Chunk {
            data: Bytes::from(frame),
            delta,
        });
    }

    pub fn into_response(self) -> Response<MockBody> {
        let body = MockBody {
            chunks: self.chunks,
            streaming: true,
            pause: self.pause,
            sleep: None,
            paused: false,
            abort: if self.cut { Abort::Flush } else { Abort::No },
        };
        let mut response = Response::new(body);
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        response
    }
}
