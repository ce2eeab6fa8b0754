//! A2A (Agent2Agent) as the gateway needs it, for both wire versions in use (1.0 and
//! 0.3): which methods exist and what they do, who may call them, what a task result or
//! stream event says about the task, and how a card is rewritten ([`card`]).
//! Plain functions over JSON values; the gateway relays everything else untouched.

pub mod card;

use serde_json::Value;

use crate::config::Agent;
use crate::{Denial, Reason, glob};

/// The protocol version a method name belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    V1_0,
    V0_3,
}

impl Version {
    pub fn as_str(self) -> &'static str {
        match self {
            Version::V1_0 => "1.0",
            Version::V0_3 => "0.3",
        }
    }
}

/// What a method is for, as far as policy and metering care.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// Sends a message: starts or continues a task.
    Message,
    /// Reads, cancels or subscribes to one task.
    Task,
    ListTasks,
    /// Creates a push-notification config: the remote agent will call a URL the caller chose.
    SetPushConfig,
    /// Reads or deletes push-notification configs.
    PushConfig,
    /// The authenticated (extended) card: rewritten like the public one.
    ExtendedCard,
}

/// One JSON-RPC method of A2A.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Method {
    pub version: Version,
    pub purpose: Purpose,
    /// Answered with an SSE stream of JSON-RPC responses.
    pub streams: bool,
}

const METHODS: &[(&str, Version, Purpose, bool)] = {
    use Purpose::*;
    use Version::*;
    &[
        ("SendMessage", V1_0, Message, false),
        ("SendStreamingMessage", V1_0, Message, true),
        ("GetTask", V1_0, Task, false),
        ("ListTasks", V1_0, ListTasks, false),
        ("CancelTask", V1_0, Task, false),
        ("SubscribeToTask", V1_0, Task, true),
        (
            "CreateTaskPushNotificationConfig",
            V1_0,
            SetPushConfig,
            false,
        ),
        ("GetTaskPushNotificationConfig", V1_0, PushConfig, false),
        ("ListTaskPushNotificationConfig", V1_0, PushConfig, false),
        ("ListTaskPushNotificationConfigs", V1_0, PushConfig, false),
        ("DeleteTaskPushNotificationConfig", V1_0, PushConfig, false),
        ("GetExtendedAgentCard", V1_0, ExtendedCard, false),
        ("message/send", V0_3, Message, false),
        ("message/stream", V0_3, Message, true),
        ("tasks/get", V0_3, Task, false),
        ("tasks/cancel", V0_3, Task, false),
        ("tasks/resubscribe", V0_3, Task, true),
        (
            "tasks/pushNotificationConfig/set",
            V0_3,
            SetPushConfig,
            false,
        ),
        ("tasks/pushNotificationConfig/get", V0_3, PushConfig, false),
        ("tasks/pushNotificationConfig/list", V0_3, PushConfig, false),
        (
            "tasks/pushNotificationConfig/delete",
            V0_3,
            PushConfig,
            false,
        ),
        (
            "agent/getAuthenticatedExtendedCard",
            V0_3,
            ExtendedCard,
            false,
        ),
    ]
};

/// The method called `name`, in either version; `None` for anything A2A does not define.
pub fn method(name: &str) -> Option<Method> {
    METHODS
        .iter()
        .find(|(n, ..)| *n == name)
        .map(|&(_, version, purpose, streams)| Method {
            version,
            purpose,
            streams,
        })
}

/// Stage 3 for A2A: may `agent` call `method` on the remote agent `remote`? On success,
/// the push-notification URL the request would make the remote agent call, if any: the
/// caller must hold it to the egress rules before forwarding.
pub fn decide(
    agent: &Agent,
    remote: &str,
    method: Method,
    params: &Value,
) -> Result<Option<String>, Denial> {
    if !glob::allowed(agent.allow.agents.as_deref(), remote)
        || agent.deny.agents.iter().any(|g| glob::matches(g, remote))
    {
        return Err(Denial::new(
            Reason::NotAllowed,
            format!("agent `{}` may not call remote agent `{remote}`", agent.id),
        ));
    }
    // A push config makes the remote agent call a URL of the caller's choosing: that URL
    // must pass the egress rules, as if the agent called it itself.
    let pushed = match method.purpose {
        Purpose::SetPushConfig => Some(params),
        Purpose::Message => params.get("configuration").and_then(|c| {
            c.get("taskPushNotificationConfig")
                .or_else(|| c.get("pushNotificationConfig"))
        }),
        _ => None,
    };
    let Some(pushed) = pushed else {
        return Ok(None);
    };
    let url = ["/url", "/pushNotificationConfig/url", "/config/url"]
        .iter()
        .find_map(|p| pushed.pointer(p).and_then(Value::as_str));
    // A config whose URL we cannot find is refused rather than guessed at.
    url.map(|u| Some(u.to_string())).ok_or_else(|| {
        Denial::new(
            Reason::NotAllowed,
            format!("a push-notification config for remote agent `{remote}` must carry its `url`"),
        )
    })
}

/// What is known of the task a call concerns: from the request, then from each result or
/// stream event, the last one winning (so `state` is the final state seen).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TaskFacts {
    pub task_id: Option<String>,
    pub context_id: Option<String>,
    /// Version-neutral: `submitted`, `working`, `input-required`, `auth-required`,
    /// `completed`, `failed`, `canceled`, `rejected` (1.0's `TASK_STATE_*` names mapped).
    pub state: Option<String>,
}

impl TaskFacts {
    /// The task and context a request names (a message's `taskId`/`contextId`, a task
    /// method's `id`, a push config's `taskId`).
    pub fn of_request(params: &Value) -> TaskFacts {
        let mut facts = TaskFacts::default();
        let message = &params["message"];
        facts.set_ids(
            message["taskId"]
                .as_str()
                .or(params["id"].as_str())
                .or(params["taskId"].as_str()),
            message["contextId"].as_str(),
        );
        facts
    }

    /// Learns from one `result`: a Task, a Message, or a stream event, in either
    /// version's shape (1.0 wraps them as `{task}`, `{message}`, `{statusUpdate}`,
    /// `{artifactUpdate}`; 0.3 tags them with `kind`).
    pub fn observe(&mut self, result: &Value) {
        let kind = result["kind"].as_str();
        if let Some(task) = result.get("task").filter(|t| t.is_object()) {
            self.observe_task(task);
        } else if let Some(update) = result
            .get("statusUpdate")
            .or_else(|| result.get("artifactUpdate"))
            .filter(|u| u.is_object())
        {
            self.observe_update(update);
        } else if let Some(message) = result.get("message").filter(|m| m.is_object()) {
            self.observe_update(message);
        } else if matches!(kind, Some("status-update" | "artifact-update" | "message")) {
            self.observe_update(result);
        } else if result.get("id").is_some() && result["status"].is_object() {
            self.observe_task(result);
        }
    }

    fn observe_task(&mut self, task: &Value) {
        self.set_ids(task["id"].as_str(), task["contextId"].as_str());
        self.set_state(&task["status"]);
    }

    /// A status or artifact update, or a message: ids, and a status if it has one.
    fn observe_update(&mut self, update: &Value) {
        self.set_ids(update["taskId"].as_str(), update["contextId"].as_str());
        self.set_state(&update["status"]);
    }

    fn set_ids(&mut self, task: Option<&str>, context: Option<&str>) {
        if let Some(t) = task.filter(|t| !t.is_empty()) {
            self.task_id = Some(t.to_string());
        }
        if let Some(c) = context.filter(|c| !c.is_empty()) {
            self.context_id = Some(c.to_string());
        }
    }

    fn set_state(&mut self, status: &Value) {
        if let Some(s) = status["state"].as_str().filter(|s| !s.is_empty()) {
            self.state = Some(state_name(s));
        }
    }
}

/// `TASK_STATE_INPUT_REQUIRED` (1.0) and `input-required` (0.3) both become `input-required`.
pub fn state_name(state: &str) -> String {
    state
        .strip_prefix("TASK_STATE_")
        .unwrap_or(state)
        .to_ascii_lowercase()
        .replace('_', "-")
}

/// A URL's origin: scheme, host (lowercase) and port (the scheme's default if omitted).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    pub scheme: String,
    pub host: String,
    pub port: u16,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}:{}", self.scheme, self.host, self.port)
    }
}

/// The origin of an absolute `http://` or `https://` URL; `None` for anything else
/// (`crate::http_url` decides what is a URL).
pub fn origin(url: &str) -> Option<Origin> {
    let uri = crate::http_url::parse(url).ok()?;
    let scheme = uri.scheme_str()?.to_string();
    let port = uri
        .port_u16()
        .unwrap_or(if scheme == "https" { 443 } else { 80 });
    Some(Origin {
        host: uri.host()?.to_ascii_lowercase(),
        scheme,
        port,
    })
}

#[cfg(test)]
mod tests;
