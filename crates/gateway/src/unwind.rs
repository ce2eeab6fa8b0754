//! Panics caught where a request is served, so a bug answers one call with 500 `internal`
//! instead of dropping a connection (and every HTTP/2 stream on it) without a word.
//!
//! A call guard dropped because of a panic records the call as failed with `internal`,
//! not as cancelled by the client. Some are dropped while the panic unwinds (an `async
//! fn`'s locals), others only when what owns them is (a response body's fields): the
//! future or body that panicked is dropped right here, with [`dropping_after_panic`] true.

use std::cell::Cell;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};

thread_local! {
    static DROPPING_AFTER_PANIC: Cell<bool> = const { Cell::new(false) };
}

/// True while a panic unwinds, or a future or body that panicked is dropped, on this
/// thread.
pub fn dropping_after_panic() -> bool {
    std::thread::panicking() || DROPPING_AFTER_PANIC.with(Cell::get)
}

/// Drops `value`, telling whatever it holds that it is going down after a panic.
fn drop_after_panic<T>(value: T) {
    DROPPING_AFTER_PANIC.with(|f| f.set(true));
    // A second panic from a `Drop` must not escape either.
    let _ = catch_unwind(AssertUnwindSafe(|| drop(value)));
    DROPPING_AFTER_PANIC.with(|f| f.set(false));
}

/// What a panic said, for the log (`&str` and `String` payloads; others are unnamed).
fn message(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a panic")
}

/// A future whose panic becomes `Err(())` (after the future is dropped and the panic is
/// logged) instead of unwinding into the connection.
pub struct Caught<F> {
    inner: Option<Pin<Box<F>>>,
}

impl<F: Future> Caught<F> {
    pub fn new(inner: F) -> Caught<F> {
        Caught {
            inner: Some(Box::pin(inner)),
        }
    }
}

impl<F: Future> Future for Caught<F> {
    type Output = Result<F::Output, ()>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(inner) = self.inner.as_mut() else {
            return Poll::Ready(Err(()));
        };
        match catch_unwind(AssertUnwindSafe(|| inner.as_mut().poll(cx))) {
            Ok(Poll::Ready(out)) => {
                self.inner = None;
                Poll::Ready(Ok(out))
            }
            Ok(Poll::Pending) => Poll::Pending,
            Err(payload) => {
                tracing::error!(
                    panic = message(&*payload),
                    "a request handler panicked; answering 500"
                );
                drop_after_panic(self.inner.take());
                Poll::Ready(Err(()))
            }
        }
    }
}

/// Polls a response body, turning a panic into a body error: the response is cut (its
/// connection or stream reset) and the call recorded as failed, other streams unharmed.
pub fn poll_caught<B: http_body::Body + Unpin>(
    body: &mut Option<B>,
    cx: &mut Context<'_>,
) -> Poll<Option<Result<http_body::Frame<B::Data>, crate::http::BoxError>>>
where
    B::Error: Into<crate::http::BoxError>,
{
    let Some(inner) = body.as_mut() else {
        return Poll::Ready(None);
    };
    match catch_unwind(AssertUnwindSafe(|| Pin::new(inner).poll_frame(cx))) {
        Ok(poll) => poll.map(|frame| frame.map(|r| r.map_err(Into::into))),
        Err(payload) => {
            tracing::error!(
                panic = message(&*payload),
                "a response body panicked; cutting it"
            );
            drop_after_panic(body.take());
            Poll::Ready(Some(Err(
                "internal error while relaying the response".into()
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Witness(std::sync::Arc<std::sync::atomic::AtomicBool>);

    impl Drop for Witness {
        fn drop(&mut self) {
            self.0
                .store(dropping_after_panic(), std::sync::atomic::Ordering::SeqCst);
        }
    }

    #[tokio::test]
    async fn what_a_panicking_future_held_is_dropped_as_such() {
        let seen = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let witness = Witness(seen.clone());
        let out = Caught::new(async move {
            let _held = witness;
            tokio::task::yield_now().await;
            panic!("boom");
        })
        .await;
        assert!(out.is_err());
        assert!(seen.load(std::sync::atomic::Ordering::SeqCst));
        assert!(!dropping_after_panic());
        assert_eq!(Caught::new(async { 7 }).await, Ok(7));
    }

    /// A body that panics holds its guard in a field: dropped after the unwinding.
    struct Panicky {
        _held: Witness,
    }

    impl http_body::Body for Panicky {
        type Data = bytes::Bytes;
        type Error = crate::http::BoxError;

        fn poll_frame(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<http_body::Frame<bytes::Bytes>, Self::Error>>> {
            panic!("boom")
        }
    }

    #[test]
    fn a_panicking_body_is_cut_and_dropped_as_such() {
        let seen = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut body = Some(Panicky {
            _held: Witness(seen.clone()),
        });
        let mut cx = Context::from_waker(std::task::Waker::noop());
        assert!(matches!(
            poll_caught(&mut body, &mut cx),
            Poll::Ready(Some(Err(_)))
        ));
        assert!(body.is_none());
        assert!(seen.load(std::sync::atomic::Ordering::SeqCst));
        assert!(!dropping_after_panic());
    }
}
