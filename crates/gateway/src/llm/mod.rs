//! The LLM adapter: OpenAI-compatible `/v1/chat/completions`, `/v1/responses`,
//! `/v1/embeddings`, `/v1/models`, and Anthropic `/v1/messages`. Request and response
//! bodies are relayed in the provider's own wire format; Airlock swaps the credentials,
//! renames the model, and meters usage on the way back.

pub mod classify;
pub mod errors;
mod estimate;
mod forward;
#[cfg(test)]
mod fuzz;
pub(crate) mod meter;

use std::borrow::Cow;
use std::sync::Arc;

use airlock_core::config::{Agent, Target, Unpriced};
use airlock_core::fingerprint::fingerprint;
use airlock_core::{Denial, Kind, Reason};
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body::Body as _;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde_json::json;

use crate::alerts::Alert;
use crate::content;
use crate::controls::{self, Estimate, Needs};
pub use crate::egress::Interception;
use crate::gateway::Gateway;
use crate::http::{
    Body, BodyLimits, content_length, content_type, drain_refused, json_response, read_body,
};
use crate::pipeline::{CallGuard, Ending, decide_model};
use crate::upstream::is_forwardable_response_header;
use classify::{Api, LlmRequest};
use errors::{ErrorStyle, render};
use meter::{MeteredBody, Tap};

/// How a request reached the LLM pipeline.
pub enum Entry {
    /// On the gateway's `/v1/...` routes, the agent's key in `Authorization`/`x-api-key`.
    BaseUrl,
    /// Inside an intercepted TLS connection to a provider's host (see `egress::intercept`).
    Intercepted(Arc<Interception>),
}

impl Entry {
    /// The agent's Airlock key: presented with the request, or given at `CONNECT`.
    fn key<'a>(&'a self, headers: &'a http::HeaderMap) -> Option<&'a str> {
        match self {
            Entry::BaseUrl => crate::identity::presented_key(headers),
            Entry::Intercepted(i) => Some(&i.key),
        }
    }
}

/// Answers one request on the gateway's `/v1/...` routes, or inside an intercepted
/// connection.
pub async fn handle(gateway: Arc<Gateway>, req: Request<Incoming>, entry: Entry) -> Response<Body> {
    let api = match (req.method(), req.uri().path().trim_end_matches('/')) {
        (&Method::POST, "/v1/chat/completions" | "/chat/completions") => Api::ChatCompletions,
        (&Method::POST, "/v1/responses" | "/responses") => Api::Responses,
        (&Method::POST, "/v1/embeddings" | "/embeddings") => Api::Embeddings,
        (&Method::POST, "/v1/messages") => Api::Messages,
        (&Method::GET, "/v1/models" | "/models") => return list_models(&gateway, &req, &entry),
        (_, path) => {
            let style = if path.ends_with("/messages") {
                ErrorStyle::Anthropic
            } else {
                ErrorStyle::OpenAi
            };
            let what = format!("no route for {} {}", req.method(), req.uri().path());
            return render(style, &Denial::new(Reason::NotFound, what));
        }
    };
    let mut guard =
        CallGuard::open(gateway.clone(), Kind::Llm, api.operation(), req.headers()).await;
    match serve(&mut guard, api, req, &entry).await {
        Ok(Served {
            response,
            tap,
            status,
            reason,
            prompt_estimate,
        }) => {
            guard.responding();
            let (parts, body) = response.into_parts();
            let body = MeteredBody::new(body, tap, guard, status, reason, prompt_estimate);
            relay(parts, body)
        }
        Err(denial) => {
            guard.responding();
            guard.finish(Ending::denied(&denial));
            render(api.style(), &denial)
        }
    }
}

struct Served {
    response: Response<Incoming>,
    tap: Tap,
    status: u16,
    reason: Option<Reason>,
    prompt_estimate: u64,
}

/// classify → identify → decide → forward; the caller settles.
async fn serve(
    guard: &mut CallGuard,
    api: Api,
    req: Request<Incoming>,
    entry: &Entry,
) -> Result<Served, Denial> {
    let (parts, body) = req.into_parts();
    let identified = match entry {
        Entry::BaseUrl => guard.identify(&parts.headers),
        Entry::Intercepted(i) => {
            let call = guard.call();
            call.extra.insert("intercepted".into(), json!(true));
            call.extra.insert("host".into(), json!(i.host));
            guard.identify_key(&i.key)
        }
    };
    // No key, a suspended agent, or one with too many calls open: refused before the
    // body is read.
    let agent = match identified {
        Ok(agent) => agent,
        Err(d) => {
            drain_refused(Request::from_parts(parts, body)).await;
            return Err(d);
        }
    };

    if let Some(essence) = content_type(&parts.headers)
        && essence != "application/json"
        && !essence.ends_with("+json")
    {
        return Err(Denial::new(
            Reason::BadRequest,
            format!("unsupported content type `{essence}`: send application/json"),
        ));
    }
    let limits = BodyLimits::of(&guard.runtime().config.limits);
    let body = read_body(body, content_length(&parts.headers), limits)
        .await
        .map_err(|e| guard.unread(e, limits))?;
    guard.call().bytes_in = body.len() as u64;
    let request = LlmRequest::classify(api, body)?;
    guard.call().model = Some(request.model.clone());

    let runtime = guard.runtime().clone();
    let targets = match entry {
        // The host maps to one provider; the model is the one the agent named.
        Entry::Intercepted(i) => Some(Cow::Owned(vec![Target {
            provider: i.rule.provider.clone(),
            model: request.model.clone(),
        }])),
        Entry::BaseUrl => runtime.config.resolve_model(&request.model),
    };
    let Some(targets) = targets else {
        decide_model(&agent, &request.model, &[])?;
        return Err(Denial::new(
            Reason::UnknownModel,
            format!(
                "the model `{}` does not exist or is not configured",
                request.model
            ),
        ));
    };
    // Allow and deny lists: a denied target is skipped, all denied is a refusal.
    let permitted = decide_model(&agent, &request.model, &targets)?;
    let usable: Vec<_> = permitted
        .into_iter()
        .filter(|t| {
            runtime
                .config
                .providers
                .get(&t.provider)
                .is_some_and(|p| api.served_by(p.kind))
        })
        .collect();
    let usable = priced(guard, &agent, &request.model, usable)?;
    if usable.is_empty() {
        let route = if api == Api::Messages {
            "/v1/chat/completions"
        } else {
            "/v1/messages"
        };
        return Err(Denial::new(
            Reason::BadRequest,
            format!(
                "the model `{}` is served through a different API: call POST {route} for it",
                request.model
            ),
        ));
    }

    // The content guard sees the prompt before anything is reserved for it; a redacted
    // prompt is what gets estimated, fingerprinted and sent.
    let mut request = match content::json_body(guard, &agent, request.original(), "").await? {
        Some(redacted) => LlmRequest::classify(api, redacted)?,
        None => request,
    };

    if let Some((root, items)) = ["messages", "input"]
        .into_iter()
        .find_map(|k| request.member(k).map(|v| (k, v.get())))
    {
        content::tool_results(guard, &agent, request.original(), root, items)?;
    }

    // Stage 3, shared by every protocol: kill switch, budgets, rate limits, loop guard.
    let needs = Needs::of(&runtime.config, &agent);
    let estimate = if needs.estimate {
        estimate::estimate(&mut request, &usable, &runtime.config)
    } else {
        Estimate::default()
    };
    let fingerprint = needs.fingerprint.then(|| {
        let body: Option<serde_json::Value> = serde_json::from_slice(request.original()).ok();
        fingerprint(
            &agent.id,
            Kind::Llm,
            &request.model,
            api.operation(),
            body.as_ref(),
        )
    });
    controls::admit(guard, &agent, fingerprint, estimate).await?;

    // The agent's own provider key goes upstream, unless what it sent is an Airlock key
    // (one agent setup puts it in OPENAI_API_KEY): that never leaves for a provider.
    let own_credentials = matches!(entry, Entry::Intercepted(i) if i.rule.pass_credentials)
        && crate::identity::presented_key(&parts.headers)
            .is_none_or(|k| runtime.keys.identify(k).is_none());
    let response =
        forward::forward(guard, &request, &parts.headers, &usable, own_credentials).await?;
    let status = response.status().as_u16();
    let is_sse = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("text/event-stream"));
    let (tap, reason) = if !response.status().is_success() {
        (Tap::Opaque, Some(Reason::UpstreamError))
    } else if is_sse {
        (Tap::sse(api.dialect(), request.injected_usage), None)
    } else {
        (Tap::json(api.dialect()), None)
    };
    Ok(Served {
        response,
        tap,
        status,
        reason,
        prompt_estimate: request.prompt_estimate(),
    })
}

/// The targets a call may go to as far as money goes: a target no price covers (config,
/// the built-in table, its family, `pricing.default`) is alerted on, and for an agent
/// under a USD budget skipped unless `pricing.unpriced: allow` — a budget nothing counts
/// against is no budget. All skipped is a refusal, `unpriced_model`.
fn priced(
    guard: &CallGuard,
    agent: &Agent,
    model: &str,
    targets: Vec<Target>,
) -> Result<Vec<Target>, Denial> {
    let config = &guard.runtime().config;
    let (priced, unpriced): (Vec<Target>, Vec<Target>) = targets
        .into_iter()
        .partition(|t| config.prices.lookup(&t.provider, &t.model).is_some());
    for target in &unpriced {
        // An agent names the model: bounded before it goes anywhere.
        let name: String = target.to_string().chars().take(200).collect();
        let alert = Alert {
            kind: "unpriced_model",
            agent: agent.id.clone(),
            message: format!(
                "`{name}` has no price (set one under pricing:, or pricing.default); calls to it cost 0 and count against no budget"
            ),
            detail: json!({ "target": name }),
        };
        let once = format!("unpriced:{name}");
        guard.gateway().alert(alert, once, UNPRICED_ALERT_EVERY_MS);
    }
    let refuse = config.unpriced == Unpriced::Refuse && controls::under_budget(config, agent);
    if !refuse || unpriced.is_empty() {
        return Ok(if refuse {
            priced
        } else {
            [priced, unpriced].concat()
        });
    }
    if priced.is_empty() {
        return Err(Denial::new(
            Reason::UnpricedModel,
            format!(
                "`{model}` has no known price and agent `{}` is under a USD budget: an operator must price it (pricing:) or allow unpriced models (pricing.unpriced: allow)",
                agent.id
            ),
        ));
    }
    Ok(priced)
}

/// How often the same unpriced target is alerted on.
const UNPRICED_ALERT_EVERY_MS: u64 = 24 * 3600 * 1000;

/// The upstream's status and headers around the metered body.
fn relay(parts: http::response::Parts, body: MeteredBody) -> Response<Body> {
    let streaming = body.size_hint().exact().is_none();
    let mut res = Response::new(body.boxed_unsync());
    *res.status_mut() = parts.status;
    for (name, value) in &parts.headers {
        if is_forwardable_response_header(name) && !(streaming && name == header::CONTENT_LENGTH) {
            res.headers_mut().append(name, value.clone());
        }
    }
    if parts.status.as_u16() >= 400 {
        errors::decorate(res.headers_mut(), Reason::UpstreamError);
    }
    // Reverse proxies in front of Airlock must not buffer streams either.
    res.headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    res
}

fn list_models(gateway: &Gateway, req: &Request<Incoming>, entry: &Entry) -> Response<Body> {
    let runtime = gateway.runtime();
    let key = entry.key(req.headers());
    let Some(agent) = key.and_then(|k| runtime.keys.identify(k)) else {
        return render(
            ErrorStyle::OpenAi,
            &Denial::new(
                Reason::Unauthorized,
                "the Airlock key is missing or not valid",
            ),
        );
    };
    let data: Vec<_> = runtime
        .config
        .public_models()
        .into_iter()
        .filter(|m| {
            let targets = runtime.config.resolve_model(m).unwrap_or_default();
            decide_model(&agent, m, &targets).is_ok()
        })
        .map(|m| json!({"id": m, "object": "model", "created": 0, "owned_by": "airlock"}))
        .collect();
    json_response(StatusCode::OK, &json!({"object": "list", "data": data}))
}
