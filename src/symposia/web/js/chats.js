// Chats: the conversations list, and one conversation with a model picker and streamed replies.

import { api, models } from "./api.js";
import { field, guard, h, modelSelect } from "./dom.js";
import { Follower } from "./stream.js";

const PAGE = 200;
const ASKING = ["user", "tool"];

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

export async function chatsView(root) {
  const [data, ids] = await Promise.all([api("GET", "/api/conversations?limit=100"), models().catch(() => [])]);
  const title = h("input", { name: "title", maxlength: 500, placeholder: "Untitled" });
  const model = modelSelect(ids, null, { name: "default_model" }, "server default");
  const form = h(
    "form",
    { class: "panel new-chat", "aria-label": "New chat" },
    h("h2", {}, "New chat"),
    h("div", { class: "row" }, field("Title", title), field("Model", model)),
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Start chat")),
  );
  form.addEventListener(
    "submit",
    guard(async () => {
      const body = {};
      if (title.value.trim()) body.title = title.value.trim();
      if (model.value) body.default_model = model.value;
      const conversation = await api("POST", "/api/conversations", body);
      location.hash = `#/chat/${conversation.id}`;
    }),
  );
  const rows = data.items.map((c) =>
    h(
      "li",
      { class: "chat-row", dataset: { conversationId: c.id } },
      h("a", { href: `#/chat/${c.id}` }, c.title || "Untitled"),
      h("span", { class: "meta" }, ` ${c.default_model} · ${c.message_count} messages · ${new Date(c.updated_at).toLocaleString()}`),
    ),
  );
  root.append(
    h(
      "section",
      { class: "panel" },
      h("h1", {}, "Chats"),
      rows.length ? h("ul", { class: "chats" }, rows) : h("p", { class: "empty" }, "No chats yet."),
    ),
    form,
  );
}

function messageNode(message) {
  const text = h("div", { class: "text" }, message.content);
  const modelTag = h("span", { class: "model" }, message.model ? ` · ${message.model}` : "");
  const node = h(
    "li",
    { class: `msg ${message.role}`, dataset: { messageId: message.id ?? "" } },
    h("div", { class: "who" }, h("strong", {}, message.author || message.role), modelTag),
    text,
  );
  return { node, text, modelTag };
}

class ChatView {
  constructor(root, conversation, ids) {
    this.root = root;
    this.conversation = conversation;
    this.ids = ids;
    this.follower = null;
    this.build();
  }

  build() {
    const c = this.conversation;
    const title = h("input", { name: "title", value: c.title ?? "", maxlength: 500, "aria-label": "Title" });
    const rename = h("form", { class: "rename", "aria-label": "Rename" }, title, h("button", { type: "submit", class: "secondary" }, "Rename"));
    rename.addEventListener(
      "submit",
      guard(async () => {
        this.conversation = await api("PATCH", `/api/conversations/${c.id}`, { title: title.value });
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
    this.list = h("ol", { class: "messages", "aria-label": "Messages" });
    this.state = h("p", { class: "now", "aria-live": "polite" });
    const message = enterSubmits(h("textarea", { name: "message", rows: 2, required: true, placeholder: "Message (Enter sends, Shift+Enter for a new line)" }));
    const override = modelSelect(this.ids, null, { name: "model" }, "conversation default");
    this.compose = h(
      "form",
      { class: "compose", "aria-label": "Send a message" },
      field("Message", message),
      h("div", { class: "row" }, field("Model for this message", override), h("button", { type: "submit" }, "Send")),
    );
    this.compose.addEventListener(
      "submit",
      guard(async () => {
        const body = { message: message.value };
        if (override.value) body.model = override.value;
        const saved = await api("POST", `/api/conversations/${c.id}/messages`, body);
        message.value = "";
        this.list.append(messageNode(saved).node);
        this.follow();
      }),
    );
    this.view = h(
      "section",
      { class: "chat", dataset: { conversationId: c.id } },
      h("div", { class: "chat-head" }, rename, field("Default model", defaultModel), remove),
      this.list,
      this.state,
      this.compose,
    );
    this.root.append(this.view);
    message.focus();
  }

  render(messages) {
    this.list.replaceChildren(...messages.map((m) => messageNode(m).node));
    this.list.lastElementChild?.scrollIntoView?.({ block: "nearest" });
  }

  /** Stream the reply to the latest user message: started, or joined where it is. */
  follow() {
    this.follower?.close();
    let reply = null;
    this.compose.querySelector("button[type=submit]").disabled = true;
    const follower = new Follower(`/api/conversations/${this.conversation.id}/stream`, {
      onEvent: (type, data) => {
        if (type === "routing") {
          this.list.append(h("li", { class: "note routing" }, `Routed to ${data.agent}${data.reason ? `: ${data.reason}` : ""}`));
        } else if (type === "turn_start") {
          reply ??= messageNode({ role: "assistant", author: data.name, content: "", model: data.model });
          reply.node.classList.add("streaming");
          this.list.append(reply.node);
          this.state.textContent = `${data.name} is answering…`;
        } else if (type === "token" && reply) {
          reply.text.textContent += data.delta;
        } else if (type === "turn_complete" && reply) {
          reply.text.textContent = data.content;
          reply.modelTag.textContent = data.model ? ` · ${data.model}` : "";
          reply.node.dataset.messageId = data.message_id ?? "";
          reply.node.dataset.status = data.status;
          reply.node.classList.remove("streaming");
        } else if (type === "error") {
          this.list.append(h("li", { class: "note error" }, `Error: ${data.message}`));
        } else if (type === "done") {
          this.state.textContent = "";
          this.compose.querySelector("button[type=submit]").disabled = false;
        }
      },
      onState: (state) => {
        this.view.dataset.connection = state;
        if (state === "closed") this.compose.querySelector("button[type=submit]").disabled = false;
      },
      // Refused (answered meanwhile, or nothing to answer): show what is stored.
      recover: async () => {
        await this.reload();
        return false;
      },
    });
    this.follower = follower.start();
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
  const [conversation, ids] = await Promise.all([api("GET", `/api/conversations/${id}`), models().catch(() => [])]);
  const view = new ChatView(root, conversation, ids);
  const messages = await view.reload();
  const last = messages.at(-1);
  if (last && ASKING.includes(last.role)) view.follow(); // a reply on its way, or still to start
  return () => view.follower?.close();
}
