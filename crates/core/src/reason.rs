//! Why a call was not served: one reason code per cause, shared by every protocol.
//! Adapters render a [`Denial`] in their clients' error shape; the code itself never changes.

use crate::event::Outcome;

/// A machine-readable cause for a denial or failure. `code()` is the wire string.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    BadRequest,
    TooLarge,
    Unauthorized,
    UnknownModel,
    NotFound,
    UpstreamUnavailable,
    UpstreamTimeout,
    UpstreamError,
    ClientClosed,
    CountersUnavailable,
    BudgetExceeded,
    RateLimited,
    LoopDetected,
    DlpBlocked,
    NotAllowed,
    ToolChanged,
    ToolFlagged,
    /// A tool result or remote agent's reply carried instructions aimed at the agent, and
    /// `guards.injection.action` is `block`.
    InjectionBlocked,
    PrivateAddress,
    Suspended,
    /// The request was slower than `limits.header_timeout` / `limits.body_timeout` allow.
    RequestTimeout,
    /// Airlock cut the call at shutdown, after the grace period.
    Shutdown,
    /// No price covers the model (config, table, family or `pricing.default`) and the agent
    /// is under a USD budget (`pricing.unpriced: refuse`).
    UnpricedModel,
    /// A bug caught while serving: the call failed, the connection was not dropped.
    Internal,
}

impl Reason {
    pub fn code(self) -> &'static str {
        match self {
            Reason::BadRequest => "bad_request",
            Reason::TooLarge => "too_large",
            Reason::Unauthorized => "unauthorized",
            Reason::UnknownModel => "unknown_model",
            Reason::NotFound => "not_found",
            Reason::UpstreamUnavailable => "upstream_unavailable",
            Reason::UpstreamTimeout => "upstream_timeout",
            Reason::UpstreamError => "upstream_error",
            Reason::ClientClosed => "client_closed",
            Reason::CountersUnavailable => "counters_unavailable",
            Reason::BudgetExceeded => "budget_exceeded",
            Reason::RateLimited => "rate_limited",
            Reason::LoopDetected => "loop_detected",
            Reason::DlpBlocked => "dlp_blocked",
            Reason::NotAllowed => "not_allowed",
            Reason::ToolChanged => "tool_changed",
            Reason::ToolFlagged => "tool_flagged",
            Reason::InjectionBlocked => "injection_blocked",
            Reason::PrivateAddress => "private_address",
            Reason::Suspended => "suspended",
            Reason::RequestTimeout => "request_timeout",
            Reason::Shutdown => "shutdown",
            Reason::UnpricedModel => "unpriced_model",
            Reason::Internal => "internal",
        }
    }

    /// The HTTP status the official SDKs expect for this reason.
    pub fn status(self) -> u16 {
        match self {
            Reason::BadRequest => 400,
            Reason::TooLarge => 413,
            Reason::Unauthorized => 401,
            Reason::UnknownModel | Reason::NotFound => 404,
            Reason::UpstreamUnavailable | Reason::UpstreamError => 502,
            Reason::UpstreamTimeout => 504,
            Reason::ClientClosed => 499,
            Reason::CountersUnavailable | Reason::Shutdown => 503,
            Reason::RequestTimeout => 408,
            Reason::Internal => 500,
            Reason::BudgetExceeded
            | Reason::RateLimited
            | Reason::LoopDetected
            | Reason::Suspended => 429,
            Reason::DlpBlocked
            | Reason::NotAllowed
            | Reason::ToolChanged
            | Reason::ToolFlagged
            | Reason::InjectionBlocked
            | Reason::PrivateAddress
            | Reason::UnpricedModel => 403,
        }
    }

    /// Whether an SDK should retry. The SDKs retry every 429 unless told otherwise, which
    /// would turn a budget or loop denial into three identical refused calls.
    pub fn retryable(self) -> bool {
        matches!(
            self,
            Reason::RateLimited
                | Reason::UpstreamUnavailable
                | Reason::UpstreamTimeout
                | Reason::CountersUnavailable
        )
    }

    /// Policy said no (`denied`) versus the call could not be served (`failed`).
    pub fn outcome(self) -> Outcome {
        match self {
            Reason::BudgetExceeded
            | Reason::RateLimited
            | Reason::LoopDetected
            | Reason::DlpBlocked
            | Reason::NotAllowed
            | Reason::ToolChanged
            | Reason::ToolFlagged
            | Reason::InjectionBlocked
            | Reason::PrivateAddress
            | Reason::UnpricedModel
            | Reason::Suspended => Outcome::Denied,
            Reason::ClientClosed | Reason::Shutdown => Outcome::Cancelled,
            _ => Outcome::Failed,
        }
    }
}

/// A refusal: the reason code and a sentence a person understands. Never carries secrets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Denial {
    pub reason: Reason,
    pub message: String,
    /// Seconds until a retry may succeed (`Retry-After`).
    pub retry_after_secs: Option<u64>,
    /// Extra response headers that explain the refusal (`x-ratelimit-*`, budget left).
    pub hints: Vec<(&'static str, String)>,
}

impl Denial {
    pub fn new(reason: Reason, message: impl Into<String>) -> Self {
        Denial {
            reason,
            message: message.into(),
            retry_after_secs: None,
            hints: Vec::new(),
        }
    }

    pub fn hint(&mut self, header: &'static str, value: String) {
        self.hints.push((header, value));
    }

    pub fn retry_after(&mut self, secs: u64) {
        self.retry_after_secs = Some(secs.max(1));
    }
}

impl std::fmt::Display for Denial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.reason.code(), self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdk_facing_statuses_follow_the_contract() {
        assert_eq!(Reason::RateLimited.status(), 429);
        assert!(Reason::RateLimited.retryable());
        for r in [
            Reason::BudgetExceeded,
            Reason::LoopDetected,
            Reason::Suspended,
        ] {
            assert_eq!(r.status(), 429);
            assert!(!r.retryable(), "{r:?} must tell SDKs not to retry");
        }
        for r in [Reason::NotAllowed, Reason::DlpBlocked, Reason::ToolChanged] {
            assert_eq!(r.status(), 403);
        }
        assert_eq!(Reason::UpstreamUnavailable.status(), 502);
        assert_eq!(Reason::UpstreamTimeout.status(), 504);
        assert_eq!(Reason::TooLarge.status(), 413);
        assert_eq!(Reason::NotAllowed.outcome(), Outcome::Denied);
        assert_eq!(Reason::BadRequest.outcome(), Outcome::Failed);
        assert_eq!(Reason::Internal.status(), 500);
        assert_eq!(Reason::Internal.outcome(), Outcome::Failed);
        assert_eq!(Reason::Shutdown.outcome(), Outcome::Cancelled);
        assert_eq!(Reason::RequestTimeout.status(), 408);
    }
}
