// Chats: the sidebar of conversations, a new chat (with a panel from a preset), and one
// conversation with a model picker and streamed replies: Markdown answers, copy,
// regenerate with the earlier answers to switch between, stop, tool calls and routing.

import { api, models } from "./api.js";
import { field, guard, h, modelSelect } from "./dom.js";
import { MarkdownStream, copyText, renderMarkdown } from "./markdown.js";
import { panelOf, panelPresetSelect, panelSummary, routingNote } from "./panels.js";
import { NO_TITLE, chatSidebar } from "./sidebar.js";
import { Follower } from "./stream.js";
import { ToolCalls } from "./tools.js";

const PAGE = 200;
const ASKING = ["user", "tool"];
const TITLE_POLL_MS = 1000;
const TITLE_POLLS = 20;
const EXPORTS = [["json", "JSON"], ["md", "Markdown"], ["pdf", "PDF"]];

/** Enter sends, Shift+Enter is a new line. */
function enterSubmits(textarea) {
  textarea.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      textarea.form.requestSubmit();
    }
  });
  return textarea;
}

function layout(root, sidebar, ...content) {
  root.append(h("div", { class: "chat-layout" }, sidebar.node, h("div", { class: "chat-main" }, content)));
}

export async function chatsView(root) {
  const [sidebar, ids] = await Promise.all([chatSidebar(), models().catch(() => [])]);
  const title = h("input", { name: "title", maxlength: 500, placeholder: "Made from your first message" });
  const model = modelSelect(ids, null, { name: "default_model" }, "server default");
  const preset = panelPresetSelect({ name: "panel" });
  const agentsModel = modelSelect(ids, null, { name: "agents_model" }, "same as the chat's model");
  const agentsField = field("Specialists answer with", agentsModel);
  agentsField.hidden = true;
  preset.addEventListener("change", () => (agentsField.hidden = !preset.value));
  const form = h(
    "form",
    { class: "panel new-chat", "aria-label": "New chat" },
    h("h2", {}, "New chat"),
    h("div", { class: "row" }, field("Title", title), field("Model", model)),
    h("div", { class: "row" }, field("Panel", preset), agentsField),
    h("p", { class: "meta" }, "With a panel, the chat's model is a supervisor: it routes each message to the specialist best suited to it, and the chat shows who answered and why."),
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Start chat")),
  );
  form.addEventListener(
    "submit",
    guard(async () => {
      const body = {};
      if (title.value.trim()) body.title = title.value.trim();
      if (model.value) body.default_model = model.value;
      const conversation = await api("POST", "/api/conversations", body);
      if (preset.value) {
        // The agents' model defaults to the chat's, which the server chose when unset.
        const panel = panelOf(preset.value, agentsModel.value || conversation.default_model);
        await api("PATCH", `/api/conversations/${conversation.id}`, { panel });
      }
      location.hash = `#/chat/${conversation.id}`;
    }),
  );
  layout(root, sidebar, form);
}

/** The answers a question had, oldest first: its stored alternatives and the one shown. */
function answersOf(question, shown) {
  return [...(question?.alternatives ?? []), shown].sort((a, b) => a.created_at.localeCompare(b.created_at));
}

class ChatView {
  constructor(root, conversation, ids, sidebar) {
    this.root = root;
    this.conversation = conversation;
    this.ids = ids;
    this.sidebar = sidebar;
    this.follower = null;
    this.tools = new ToolCalls();
    this.build();
  }

  build() {
    const c = this.conversation;
    this.title = h("input", { name: "title", value: c.title ?? "", placeholder: NO_TITLE, maxlength: 500, "aria-label": "Title" });
    const rename = h("form", { class: "rename", "aria-label": "Rename" }, this.title, h("button", { type: "submit", class: "secondary" }, "Rename"));
    rename.addEventListener(
      "submit",
      guard(async () => {
        this.conversation = await api("PATCH", `/api/conversations/${c.id}`, { title: this.title.value });
        this.sidebar.setTitle(c.id, this.conversation.title);
      }),
    );
    const defaultModel = modelSelect(this.ids, c.default_model, { name: "default_model" });
    defaultModel.addEventListener(
      "change",
      guard(async () => {
        this.conversation = await api("PATCH", `/api/conversations/${c.id}`, { default_model: defaultModel.value });
      }),
    );
    const remove = h("button", { type: "button", class: "danger" }, "Delete chat");
    remove.addEventListener(
      "click",
      guard(async () => {
        if (!confirm("Delete this chat and its messages?")) return;
        await api("DELETE", `/api/conversations/${c.id}`);
        location.hash = "#/chats";
      }),
    );
    const exports = h(
      "span",
      { class: "exports" },
      "Export: ",
      EXPORTS.map(([ext, label]) => h("a", { href: `/api/conversations/${c.id}/export.${ext}`, download: "" }, label)),
    );
    this.list = h("ol", { class: "messages", "aria-label": "Messages" });
    this.state = h("p", { class: "now", "aria-live": "polite" });
    this.message = enterSubmits(h("textarea", { name: "message", rows: 2, required: true, placeholder: "Message (Enter sends, Shift+Enter for a new line)" }));
    this.send = h("button", { type: "submit" }, "Send");
    this.stopButton = h("button", { type: "button", class: "danger", hidden: true, onclick: guard(() => this.stop()) }, "Stop");
    const controls = [this.send, this.stopButton];
    let override = null;
    if (!c.panel) {
      override = modelSelect(this.ids, null, { name: "model" }, "conversation default");
      controls.unshift(field("Model for this message", override));
    }
    this.compose = h("form", { class: "compose", "aria-label": "Send a message" }, field("Message", this.message), h("div", { class: "row" }, controls));
    this.compose.addEventListener(
      "submit",
      guard(async () => {
        const body = { message: this.message.value };
        if (override?.value) body.model = override.value;
        const saved = await api("POST", `/api/conversations/${c.id}/messages`, body);
        this.message.value = "";
        this.list.append(this.messageNode(saved).node);
        this.follow();
      }),
    );
    this.view = h(
      "section",
      { class: "chat", dataset: { conversationId: c.id } },
      h("div", { class: "chat-head" }, rename, field(c.panel ? "Supervisor model" : "Default model", defaultModel), exports, remove),
      c.panel ? panelSummary(c.panel) : "",
      this.list,
      this.state,
      this.compose,
    );
    layout(this.root, this.sidebar, this.view);
    this.message.focus();
  }

  /** One message's node; answers are Markdown, with their routing, tool calls and actions. */
  messageNode(message) {
    const text = h("div", { class: "text" });
    const modelTag = h("span", { class: "model" }, message.model ? ` · ${message.model}` : "");
    const node = h(
      "li",
      { class: `msg ${message.role}`, dataset: { messageId: message.id ?? "", status: message.status ?? "" } },
      h("div", { class: "who" }, h("strong", {}, message.author || message.role), modelTag),
    );
    if (message.routing) node.append(routingNote(message.routing));
    node.append(text);
    if (message.role === "assistant") renderMarkdown(text, message.content);
    else text.textContent = message.content;
    const calls = h("div", { class: "tool-calls" }, (message.tool_calls ?? []).map((call) => this.tools.add(call)));
    node.append(calls);
    if (message.status === "partial") node.append(h("span", { class: "badge" }, "stopped"));
    const actions = h("div", { class: "msg-actions" });
    node.append(actions);
    return { node, text, modelTag, calls, actions };
  }

  /** Copy on every answer; on the last one, regenerate and the switch between its answers. */
  addActions(entry, message, question, last) {
    const copy = h("button", { type: "button", class: "secondary small" }, "Copy");
    copy.addEventListener("click", () => copyText(message.content, copy));
    entry.actions.replaceChildren(copy);
    if (!last) return;
    if (question?.role === "user") {
      const again = h("button", { type: "button", class: "secondary small", onclick: guard(() => this.regenerate()) }, "Regenerate");
      entry.actions.append(again);
    }
    const answers = answersOf(question, message);
    if (answers.length < 2) return;
    const at = answers.findIndex((a) => a.id === message.id);
    const go = (index) => guard(() => this.choose(answers[index].id));
    entry.actions.append(
      h(
        "span",
        { class: "alternatives", role: "group", "aria-label": "Answers" },
        h("button", { type: "button", class: "secondary small", "aria-label": "Previous answer", disabled: at === 0, onclick: go(at - 1) }, "‹"),
        h("span", { class: "meta", dataset: { position: at + 1 } }, ` ${at + 1} / ${answers.length} `),
        h("button", { type: "button", class: "secondary small", "aria-label": "Next answer", disabled: at === answers.length - 1, onclick: go(at + 1) }, "›"),
      ),
    );
  }

  render(messages) {
    this.tools = new ToolCalls();
    const nodes = [];
    const lastAnswer = messages.findLastIndex((m) => m.role === "assistant");
    messages.forEach((message, index) => {
      if (message.role === "tool" && this.tools.result({ id: message.tool_call_id, content: message.content })) return;
      const entry = this.messageNode(message);
      if (message.role === "assistant") {
        const question = messages[index - 1];
        this.addActions(entry, message, question, index === lastAnswer && index === messages.length - 1);
      }
      nodes.push(entry.node);
    });
    this.list.replaceChildren(...nodes);
    this.list.lastElementChild?.scrollIntoView?.({ block: "nearest" });
  }

  setBusy(busy) {
    this.send.disabled = busy;
    this.stopButton.hidden = !busy;
    this.stopButton.disabled = false;
    for (const button of this.list.querySelectorAll(".msg-actions button")) button.disabled = busy;
  }

  /** Stream the reply to the latest user message: started, or joined where it is. */
  follow() {
    this.follower?.close();
    let reply = null;
    let stream = null;
    let routing = null;
    const errors = [];
    this.setBusy(true);
    const follower = new Follower(`/api/conversations/${this.conversation.id}/stream`, {
      onEvent: (type, data) => {
        if (type === "routing") {
          routing = data;
          this.list.append(h("li", { class: "note routing-live" }, routingNote(data)));
        } else if (type === "turn_start") {
          if (!reply) {
            reply = this.messageNode({ role: "assistant", author: data.name, content: "", model: data.model, routing });
            stream = new MarkdownStream(reply.text);
            this.list.querySelector(".routing-live")?.remove();
            this.list.append(reply.node);
          }
          reply.node.classList.add("streaming");
          this.state.textContent = `${data.name} is answering…`;
        } else if (type === "token" && reply) {
          stream.append(data.delta);
        } else if (type === "tool_call" && reply) {
          reply.calls.append(this.tools.add({ id: data.id, name: data.function ?? data.name ?? data.tool, arguments: data.arguments }));
        } else if (type === "tool_result") {
          this.tools.result(data);
        } else if (type === "turn_complete" && reply) {
          stream.finish(data.content);
          reply.modelTag.textContent = data.model ? ` · ${data.model}` : "";
          reply.node.dataset.messageId = data.message_id ?? "";
          reply.node.dataset.status = data.status;
          reply.node.classList.remove("streaming");
        } else if (type === "error") {
          errors.push(data.message);
          this.list.append(h("li", { class: "note error" }, `Error: ${data.message}`));
        } else if (type === "done") {
          this.state.textContent = "";
          this.finished(errors).catch(() => this.setBusy(false));
        }
      },
      onState: (state) => {
        this.view.dataset.connection = state;
        if (state === "closed" && !this.follower?.done) this.setBusy(false);
      },
      // Refused (answered meanwhile, or nothing to answer): show what is stored.
      recover: async () => {
        await this.reload();
        this.setBusy(false);
        return false;
      },
    });
    this.follower = follower.start();
  }

  /** A reply ended: show it as stored (with its actions), keep its errors, title the chat. */
  async finished(errors) {
    const messages = await this.reload();
    for (const message of errors) this.list.append(h("li", { class: "note error" }, `Error: ${message}`));
    if (errors.length && messages.at(-1)?.role === "user") {
      // Nothing was said: the question can be asked again as it is.
      const retry = h("button", { type: "button", class: "secondary small", onclick: guard(() => this.regenerate()) }, "Try again");
      this.list.lastElementChild.append(" ", retry);
    }
    this.setBusy(false);
    this.view.dataset.replied = String(Number(this.view.dataset.replied ?? 0) + 1);
    if (!this.conversation.title) this.awaitTitle();
  }

  /** The title the server makes from the first exchange, in the background: shown when it comes. */
  async awaitTitle() {
    for (let i = 0; i < TITLE_POLLS && this.view.isConnected; i += 1) {
      await new Promise((resolve) => setTimeout(resolve, TITLE_POLL_MS));
      const now = await api("GET", `/api/conversations/${this.conversation.id}`).catch(() => null);
      if (now?.title) {
        this.conversation.title = now.title;
        if (!this.title.value) this.title.value = now.title;
        this.sidebar.setTitle(now.id, now.title);
        return;
      }
    }
  }

  async stop() {
    this.stopButton.disabled = true;
    await api("POST", `/api/conversations/${this.conversation.id}/stop`);
  }

  async regenerate() {
    await api("POST", `/api/conversations/${this.conversation.id}/regenerate`, {});
    await this.reload();
    this.follow();
  }

  async choose(answerId) {
    await api("POST", `/api/conversations/${this.conversation.id}/alternatives/${answerId}`);
    await this.reload();
  }

  async reload() {
    const messages = await allMessages(this.conversation.id);
    this.render(messages);
    return messages;
  }
}

async function allMessages(id) {
  const messages = [];
  for (let offset = 0; ; offset += PAGE) {
    const page = await api("GET", `/api/conversations/${id}/messages?limit=${PAGE}&offset=${offset}`);
    messages.push(...page.items);
    if (page.items.length < PAGE) return messages;
  }
}

export async function chatView(root, id) {
  const [conversation, ids, sidebar] = await Promise.all([
    api("GET", `/api/conversations/${id}`),
    models().catch(() => []),
    chatSidebar(id),
  ]);
  const view = new ChatView(root, conversation, ids, sidebar);
  const messages = await view.reload();
  const last = messages.at(-1);
  if (last && ASKING.includes(last.role)) view.follow(); // a reply on its way, or still to start
  return () => view.follower?.close();
}
