// Tool calls and their results in a chat, collapsed until opened. One shape for the calls a
// client runs (conversation tools: `tool_call` events, `tool_calls` on an answer, `tool`
// messages) and for those the server runs (MCP: `tool_call` and `tool_result` events).

import { h } from "./dom.js";

const PREVIEW_CHARS = 60;

function pretty(text) {
  if (typeof text !== "string") return JSON.stringify(text, null, 2);
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

function preview(text) {
  const flat = (typeof text === "string" ? text : JSON.stringify(text ?? "")).replace(/\s+/g, " ");
  return flat.length > PREVIEW_CHARS ? `${flat.slice(0, PREVIEW_CHARS)}…` : flat;
}

/**
 * A collapsed tool call: `call` is {id, name | tool | function, arguments}. Returns the
 * node and `setResult({id, content, is_error})` to show its result when it comes.
 */
export function toolCallView(call) {
  const name = call.name ?? call.tool ?? call.function ?? "tool";
  const state = h("span", { class: "tool-state" }, "waiting for the result");
  const result = h("div", { class: "tool-result", hidden: true });
  const node = h(
    "details",
    { class: "tool-call", dataset: { toolCallId: call.id ?? "" } },
    h("summary", {}, h("span", { class: "tool-name" }, `Tool call: ${name}`), h("code", { class: "tool-args" }, `(${preview(call.arguments)})`), state),
    h("div", { class: "tool-label" }, "Arguments"),
    h("pre", { class: "tool-arguments" }, pretty(call.arguments ?? "")),
    result,
  );
  function setResult(answer) {
    const failed = Boolean(answer.is_error);
    node.dataset.status = failed ? "error" : "done";
    state.textContent = failed ? "failed" : "done";
    result.replaceChildren(h("div", { class: "tool-label" }, failed ? "Error" : "Result"), h("pre", {}, pretty(answer.content ?? "")));
    result.hidden = false;
  }
  return { node, setResult };
}

/** The calls shown in one chat, by id, so a result finds its call. */
export class ToolCalls {
  constructor() {
    this.byId = new Map();
  }

  /** The node of `call`, made once per id. */
  add(call) {
    let view = call.id ? this.byId.get(call.id) : undefined;
    if (!view) {
      view = toolCallView(call);
      if (call.id) this.byId.set(call.id, view);
    }
    return view.node;
  }

  /** Show `result` on its call; false when no call of this chat has its id. */
  result(result) {
    const view = this.byId.get(result.id);
    if (!view) return false;
    view.setResult(result);
    return true;
  }
}
