// The official TypeScript MCP client (@modelcontextprotocol/sdk, pinned in package.json),
// driven by the end-to-end tests:
//
//   node client.mjs URL KEY COMMAND...
//
// KEY is sent as `Authorization: Bearer KEY` on every request ("" or "-" sends none).
// The commands run in order in one session (one `initialize`, one Mcp-Session-Id), and
// each prints one JSON line on stdout:
//   list                 tools/list, all pages -> [{name, description}]
//   call NAME JSON_ARGS  tools/call -> the CallToolResult
//   resources            resources/list, all pages -> [Resource]
//   templates            resources/templates/list, all pages -> [ResourceTemplate]
//   read URI             resources/read -> the ReadResourceResult
//   prompts              prompts/list, all pages -> [Prompt]
//   prompt NAME JSON_ARGS  prompts/get -> the GetPromptResult
//   ping                 ping -> {}
// A command that fails prints {"error": {code, message, data}} (code/message/data of the
// JSON-RPC error; for a transport failure, code is the HTTP status or null) and the
// next command still runs. A failed connection (initialize) prints a message on stderr
// and exits 2; bad usage exits 64. At the end the session is ended with DELETE.

import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { McpError } from "@modelcontextprotocol/sdk/types.js";

const ARITY = { list: 0, call: 2, resources: 0, templates: 0, read: 1, prompts: 0, prompt: 2, ping: 0 };
const MAX_PAGES = 100;

function usage(msg) {
  process.stderr.write(`client.mjs: ${msg}\nusage: node client.mjs URL KEY COMMAND...\n`);
  process.exit(64);
}

function parseCommands(args) {
  const cmds = [];
  for (let i = 0; i < args.length; ) {
    const name = args[i];
    if (!(name in ARITY)) usage(`unknown command ${JSON.stringify(name)}`);
    const rest = args.slice(i + 1, i + 1 + ARITY[name]);
    if (rest.length < ARITY[name]) usage(`${name} needs ${ARITY[name]} argument(s)`);
    if (name === "call" || name === "prompt") {
      try {
        rest[1] = JSON.parse(rest[1]);
      } catch (e) {
        usage(`${name} ${rest[0]}: JSON_ARGS is not JSON: ${e.message}`);
      }
    }
    cmds.push([name, ...rest]);
    i += 1 + ARITY[name];
  }
  return cmds;
}

async function allPages(fetchPage, key) {
  const items = [];
  let cursor;
  for (let page = 0; page < MAX_PAGES; page++) {
    const res = await fetchPage(cursor === undefined ? {} : { cursor });
    items.push(...res[key]);
    cursor = res.nextCursor;
    if (cursor === undefined || cursor === null) return items;
  }
  throw new Error(`more than ${MAX_PAGES} pages of ${key}`);
}

function errorJson(e) {
  if (e instanceof McpError) {
    // McpError prefixes the message with "MCP error <code>: ".
    const prefix = `MCP error ${e.code}: `;
    const message = e.message.startsWith(prefix) ? e.message.slice(prefix.length) : e.message;
    return { error: { code: e.code, message, data: e.data ?? null } };
  }
  // Transport errors (StreamableHTTPError carries the HTTP status as `code`).
  return { error: { code: typeof e?.code === "number" ? e.code : null, message: String(e?.message ?? e), data: null, kind: e?.name ?? "Error" } };
}

async function run(client, [name, a, b]) {
  switch (name) {
    case "list":
      return (await allPages((p) => client.listTools(p), "tools")).map((t) => ({ name: t.name, description: t.description ?? null }));
    case "call":
      return await client.callTool({ name: a, arguments: b });
    case "resources":
      return await allPages((p) => client.listResources(p), "resources");
    case "templates":
      return await allPages((p) => client.listResourceTemplates(p), "resourceTemplates");
    case "read":
      return await client.readResource({ uri: a });
    case "prompts":
      return await allPages((p) => client.listPrompts(p), "prompts");
    case "prompt":
      return await client.getPrompt({ name: a, arguments: b });
    case "ping":
      return await client.ping();
  }
}

async function main() {
  const [url, key, ...rest] = process.argv.slice(2);
  if (!url || key === undefined) usage("URL and KEY are required");
  const cmds = parseCommands(rest);

  const headers = key && key !== "-" ? { Authorization: "Bearer " + key } : {};
  const transport = new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } });
  const client = new Client({ name: "airlock-e2e-ts", version: "1.0.0" });
  try {
    await client.connect(transport);
  } catch (e) {
    process.stderr.write(`client.mjs: cannot connect to ${url}: ${e?.message ?? e}\n`);
    process.exit(2);
  }

  for (const cmd of cmds) {
    let out;
    try {
      out = await run(client, cmd);
    } catch (e) {
      out = errorJson(e);
    }
    process.stdout.write(JSON.stringify(out) + "\n");
  }

  try {
    await transport.terminateSession();
  } catch (e) {
    process.stderr.write(`client.mjs: DELETE of the session failed: ${e?.message ?? e}\n`);
  }
  await client.close();
}

main().catch((e) => {
  process.stderr.write(`client.mjs: ${e?.stack ?? e}\n`);
  process.exit(1);
});
