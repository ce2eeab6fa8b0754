//! Stage 5 for LLM calls: the response body relayed to the agent frame by frame while
//! usage is read from it. SSE streams are metered from the provider's usage events as
//! they pass; JSON answers from their `usage` member once complete. A body dropped
//! before its end (the agent hung up) drops the upstream body too, which cancels the
//! upstream request, and is settled as cancelled from what was relayed.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use airlock_core::sse::{SseFramer, StreamMeter, Verdict};
use airlock_core::usage::{Dialect, usage_of_body};
use airlock_core::{Reason, Usage};
use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

use crate::http::BoxError;
use crate::pipeline::{CallGuard, Ending};

/// How the relayed bytes are read for usage.
pub enum Tap {
    Sse {
        framer: SseFramer,
        meter: Box<StreamMeter>,
    },
    Json {
        dialect: Dialect,
        body: BytesMut,
    },
    /// Error answers relayed from the provider: nothing to meter.
    Opaque,
}

impl Tap {
    pub fn sse(dialect: Dialect, hide_usage_chunk: bool) -> Tap {
        Tap::Sse {
            framer: SseFramer::default(),
            meter: Box::new(StreamMeter::new(dialect, hide_usage_chunk)),
        }
    }

    pub fn json(dialect: Dialect) -> Tap {
        Tap::Json {
            dialect,
            body: BytesMut::new(),
        }
    }

    /// What to send on for one upstream chunk (possibly nothing yet).
    fn pass(&mut self, chunk: Bytes) -> Bytes {
        match self {
            Tap::Sse { framer, meter } => {
                let events = framer.push(chunk);
                match events.len() {
                    0 => Bytes::new(),
                    1 if meter.observe(&events[0]) == Verdict::Relay => {
                        events.into_iter().next().unwrap_or_default()
                    }
                    _ => {
                        let mut out = BytesMut::new();
                        for event in events {
                            if meter.observe(&event) == Verdict::Relay {
                                out.extend_from_slice(&event);
                            }
                        }
                        out.freeze()
                    }
                }
            }
            Tap::Json { body, .. } => {
                body.extend_from_slice(&chunk);
                chunk
            }
            Tap::Opaque => chunk,
        }
    }

    /// Bytes held back when the upstream ended mid-event.
    fn rest(&mut self) -> Option<Bytes> {
        match self {
            Tap::Sse { framer, .. } => framer.finish(),
            _ => None,
        }
    }

    /// Usage as the provider reported it, or (for a stream cut short) estimated from what
    /// was relayed: one token a delta, prompt from its size.
    fn usage(&self, prompt_estimate: u64) -> Usage {
        match self {
            Tap::Sse { meter, .. } => meter.reported().unwrap_or(Usage {
                input_tokens: prompt_estimate,
                output_tokens: meter.relayed_events(),
                ..Usage::default()
            }),
            Tap::Json { dialect, body } => usage_of_body(body)
                .map(|u| u.normalise(*dialect))
                .unwrap_or_default(),
            Tap::Opaque => Usage::default(),
        }
    }
}

pub struct MeteredBody {
    inner: Incoming,
    tap: Tap,
    guard: Option<CallGuard>,
    status: u16,
    /// Set for relayed provider errors: the call failed though bytes flowed.
    reason: Option<Reason>,
    prompt_estimate: u64,
    bytes_out: u64,
    ended: bool,
}

impl MeteredBody {
    pub fn new(
        inner: Incoming,
        tap: Tap,
        guard: CallGuard,
        status: u16,
        reason: Option<Reason>,
        prompt_estimate: u64,
    ) -> Self {
        MeteredBody {
            inner,
            tap,
            guard: Some(guard),
            status,
            reason,
            prompt_estimate,
            bytes_out: 0,
            ended: false,
        }
    }

    /// The upstream body is complete.
    fn finish(&mut self) {
        self.ended = true;
        self.settle(self.status, self.reason);
    }

    fn settle(&mut self, status: u16, reason: Option<Reason>) {
        if let Some(guard) = self.guard.take() {
            let usage = self.tap.usage(self.prompt_estimate);
            guard.finish(Ending {
                status,
                reason,
                usage,
                bytes_out: self.bytes_out,
            });
        }
    }
}

impl Body for MeteredBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if this.ended {
            return Poll::Ready(None);
        }
        loop {
            match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(chunk) => {
                        let mut out = this.tap.pass(chunk);
                        // A body with a Content-Length is done once its last byte is read:
                        // hyper will not poll again, so settle now rather than on drop.
                        let done = this.inner.is_end_stream();
                        if done && let Some(rest) = this.tap.rest() {
                            out = [out, rest].concat().into();
                        }
                        this.bytes_out += out.len() as u64;
                        if done {
                            this.finish();
                        }
                        if out.is_empty() {
                            if done {
                                return Poll::Ready(None);
                            }
                            continue;
                        }
                        return Poll::Ready(Some(Ok(Frame::data(out))));
                    }
                    Err(trailers) => return Poll::Ready(Some(Ok(trailers))),
                },
                Some(Err(e)) => {
                    this.ended = true;
                    tracing::warn!(error = %e, "upstream body broke mid-response");
                    this.settle(this.status, Some(Reason::UpstreamUnavailable));
                    return Poll::Ready(Some(Err(Box::new(e))));
                }
                None => {
                    let rest = this.tap.rest();
                    this.bytes_out += rest.as_ref().map_or(0, |r| r.len() as u64);
                    this.finish();
                    return Poll::Ready(rest.map(|r| Ok(Frame::data(r))));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ended
    }

    fn size_hint(&self) -> SizeHint {
        match self.tap {
            // Dropped SSE events change the length; JSON and errors pass unchanged.
            Tap::Sse { .. } => SizeHint::default(),
            _ => self.inner.size_hint(),
        }
    }
}

impl Drop for MeteredBody {
    fn drop(&mut self) {
        // Still unsettled: the agent went away before the end, or Airlock cut the stream
        // at shutdown; metered from what was relayed either way.
        if let Some(guard) = self.guard.take() {
            let usage = self.tap.usage(self.prompt_estimate);
            guard.cut_short(Some(self.status), usage, self.bytes_out);
        }
    }
}
