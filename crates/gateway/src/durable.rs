//! `state.durable: true`: a response does not end before its call's event is committed, so
//! a call the agent saw answered survives even a SIGKILL right after (a group commit: the
//! ledger's writer acknowledges a whole batch at once).
//!
//! Each request served under durability gets a [`Commits`] (a task-local while its handler
//! runs; call guards opened there keep a handle). A call settled under it adds its commit;
//! the connection holds back the response's last frame until every commit of the request
//! is acknowledged, at most [`LONGEST_WAIT`] (a ledger that is down must not hang clients).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use airlock_state::LedgerError;

/// How long a response's end waits for its commit before it goes anyway.
pub const LONGEST_WAIT: Duration = Duration::from_secs(10);

type Commit = Pin<Box<dyn Future<Output = Result<(), LedgerError>> + Send>>;

tokio::task_local! {
    static CURRENT: Option<Commits>;
}

/// The commits a request's response must wait for.
#[derive(Clone, Default)]
pub struct Commits(Arc<Mutex<Vec<Commit>>>);

impl Commits {
    /// Runs `handler` with `commits` as the request's (none: durability is off).
    pub fn scope<F: Future>(
        commits: Option<Commits>,
        handler: F,
    ) -> impl Future<Output = F::Output> {
        CURRENT.scope(commits, handler)
    }

    /// The commits of the request being handled, under durability.
    pub fn current() -> Option<Commits> {
        CURRENT.try_with(Clone::clone).ok().flatten()
    }

    pub fn add(&self, commit: impl Future<Output = Result<(), LedgerError>> + Send + 'static) {
        self.lock().push(Box::pin(commit));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Commit>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Ready once every commit added so far has resolved.
    pub fn poll_all(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut pending = self.lock();
        pending.retain_mut(|commit| match commit.as_mut().poll(cx) {
            Poll::Pending => true,
            Poll::Ready(Ok(())) => false,
            Poll::Ready(Err(e)) => {
                tracing::error!(error = %e, "a call's event was not committed");
                false
            }
        });
        if pending.is_empty() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_request_waits_for_every_commit_added_in_its_scope() {
        let commits = Commits::default();
        let (done, committed) = tokio::sync::oneshot::channel::<()>();
        Commits::scope(Some(commits.clone()), async {
            let here = Commits::current().expect("in scope");
            here.add(async move { committed.await.map_err(|_| LedgerError::Closed) });
        })
        .await;
        assert!(Commits::current().is_none());
        let mut cx = Context::from_waker(std::task::Waker::noop());
        assert!(commits.poll_all(&mut cx).is_pending());
        done.send(()).unwrap();
        assert!(commits.poll_all(&mut cx).is_ready());
        // Off: nothing to wait for.
        assert!(
            Commits::scope(None, async { Commits::current() })
                .await
                .is_none()
        );
    }
}
