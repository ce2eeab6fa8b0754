"""A real A2A server agent (Python `a2a-sdk` 1.x, Starlette + uvicorn) for the gateway's
end-to-end tests.

    python upstream.py [--port N] [--name NAME] [--token TOKEN] [--rpc-url URL]
                       [--card-path PATH]

Binds 127.0.0.1 only. `--port 0` (the default) picks a free port; once the server accepts
connections it prints one line, `listening on 127.0.0.1:PORT`, on stdout, as airlock-mock
does. Logs go to stderr.

The card is served at /.well-known/agent-card.json (or --card-path, e.g. the older
/.well-known/agent.json; 1.0 and 0.3 fields, as the SDK merges them), JSON-RPC at / for A2A 1.0 and, with the SDK's compatibility layer, 0.3. The card
carries a bearer security scheme of its own and a (dummy) signature, which the gateway must
replace and drop. With --token every request must carry `Authorization: Bearer TOKEN`
(401 otherwise), the card included. With --rpc-url the card sends JSON-RPC there instead
of to this server (to test that the gateway refuses a foreign origin).

What the agent does with the text of a message:
- `whoami`: answers with a Message (no task) whose text is a JSON object of the request
  headers it received that matter (host, authorization, a2a-version, the W3C trace
  context, x-*).
- `slow …`: a task that works for up to 30 s in small steps; CancelTask cancels it.
- anything else: a task that reports `working`, adds an artifact `echo: <text>` in two
  chunks, and completes with the message `done`.
The extended card (GetExtendedAgentCard) adds a skill `secret-echo`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys

import uvicorn
from a2a.helpers.proto_helpers import new_task_from_user_message, new_text_message, new_text_part
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events.event_queue_v2 import EventQueue
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes
from a2a.server.tasks import InMemoryTaskStore, TaskUpdater
from a2a.types.a2a_pb2 import (
    AgentCapabilities,
    AgentCard,
    AgentCardSignature,
    AgentInterface,
    AgentSkill,
    HTTPAuthSecurityScheme,
    Role,
    SecurityRequirement,
    SecurityScheme,
    StringList,
)
from starlette.applications import Starlette
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.responses import JSONResponse

SHOWN_HEADERS = ("host", "authorization", "a2a-version", "traceparent", "tracestate")


class EchoExecutor(AgentExecutor):
    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        text = context.get_user_input()
        if text == "whoami":
            headers = context.call_context.state.get("headers", {})
            seen = {
                k.lower(): v for k, v in headers.items() if k.lower() in SHOWN_HEADERS or k.lower().startswith("x-")
            }
            reply = new_text_message(json.dumps(seen), context_id=context.context_id, role=Role.ROLE_AGENT)
            await event_queue.enqueue_event(reply)
            return
        task = context.current_task or new_task_from_user_message(context.message)
        await event_queue.enqueue_event(task)
        updater = TaskUpdater(event_queue, task.id, task.context_id)
        await updater.start_work(updater.new_agent_message([new_text_part("working on it")]))
        if text.startswith("slow"):
            for _ in range(300):
                await asyncio.sleep(0.1)
        await updater.add_artifact([new_text_part("echo: ")], artifact_id="echo", name="echo")
        await updater.add_artifact([new_text_part(text)], artifact_id="echo", name="echo", append=True, last_chunk=True)
        await updater.complete(updater.new_agent_message([new_text_part("done")]))

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        updater = TaskUpdater(event_queue, context.task_id, context.context_id)
        await updater.cancel(updater.new_agent_message([new_text_part("canceled")]))


def card(name: str, rpc_url: str, extended: bool = False) -> AgentCard:
    skills = [AgentSkill(id="echo", name="echo", description="Echoes the text back.", tags=["echo"])]
    if extended:
        skills.append(AgentSkill(id="secret-echo", name="secret echo", description="Only for signed-in callers.", tags=["echo"]))
    return AgentCard(
        name=name,
        description=f"The {name} echo agent of Airlock's end-to-end tests.",
        version="1.0.0",
        supported_interfaces=[
            AgentInterface(url=rpc_url, protocol_binding="JSONRPC", protocol_version="1.0"),
            AgentInterface(url=rpc_url, protocol_binding="JSONRPC", protocol_version="0.3"),
        ],
        capabilities=AgentCapabilities(streaming=True, push_notifications=False, extended_agent_card=True),
        default_input_modes=["text/plain"],
        default_output_modes=["text/plain"],
        skills=skills,
        security_schemes={"upstream": SecurityScheme(http_auth_security_scheme=HTTPAuthSecurityScheme(scheme="Bearer"))},
        security_requirements=[SecurityRequirement(schemes={"upstream": StringList(list=[])})],
        signatures=[AgentCardSignature(protected="eyJhbGciOiJFUzI1NiJ9", signature="bm90LWEtcmVhbC1zaWduYXR1cmU")],
    )


class RequireToken(BaseHTTPMiddleware):
    def __init__(self, app, token: str):
        super().__init__(app)
        self.token = token

    async def dispatch(self, request, call_next):
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return JSONResponse({"error": "unauthorized"}, status_code=401, headers={"WWW-Authenticate": "Bearer"})
        return await call_next(request)


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--name", default="echo")
    p.add_argument("--token")
    p.add_argument("--rpc-url")
    p.add_argument("--card-path", default="/.well-known/agent-card.json")
    args = p.parse_args()

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    port = sock.getsockname()[1]
    rpc_url = args.rpc_url or f"http://127.0.0.1:{port}/"

    public = card(args.name, rpc_url)
    handler = DefaultRequestHandler(
        agent_executor=EchoExecutor(),
        task_store=InMemoryTaskStore(),
        agent_card=public,
        extended_agent_card=card(args.name, rpc_url, extended=True),
    )
    routes = create_agent_card_routes(public, card_url=args.card_path) + create_jsonrpc_routes(handler, "/", enable_v0_3_compat=True)
    app = Starlette(routes=routes)
    if args.token:
        app.add_middleware(RequireToken, token=args.token)

    config = uvicorn.Config(app, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if serving.done():
            serving.result()
            return
        await asyncio.sleep(0.02)
    print(f"listening on 127.0.0.1:{port}", flush=True)
    await serving


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
