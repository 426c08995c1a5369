// The conversations beside a chat: newest first, filtered by title as you type.

import { api } from "./api.js";
import { h } from "./dom.js";

const LIMIT = 200;
export const NO_TITLE = "New conversation";
const PHONE = "(max-width: 760px)";

function row(conversation, current) {
  const link = h(
    "a",
    { href: `#/chat/${conversation.id}`, "aria-current": conversation.id === current ? "page" : null },
    conversation.title || NO_TITLE,
  );
  const when = new Date(conversation.updated_at).toLocaleDateString();
  const kind = conversation.panel ? "panel" : conversation.default_model;
  return h(
    "li",
    { class: "chat-row", dataset: { conversationId: conversation.id, title: (conversation.title || "").toLowerCase() } },
    link,
    h("span", { class: "meta" }, `${kind} · ${when}`),
  );
}

/**
 * The sidebar: returns {node, setTitle(id, title)}. On a phone it starts folded in a
 * chat (the chat is what matters there) and open on the chats page.
 */
export async function chatSidebar(current = null) {
  const data = await api("GET", `/api/conversations?limit=${LIMIT}`);
  const list = h("ul", { class: "chat-list" }, data.items.map((c) => row(c, current)));
  const empty = h("p", { class: "empty" }, data.items.length ? "No chat has that in its title." : "No chats yet.");
  const search = h("input", { type: "search", placeholder: "Search by title", "aria-label": "Search chats", autocomplete: "off" });
  const filter = () => {
    const words = search.value.trim().toLowerCase();
    let shown = 0;
    for (const item of list.children) {
      const match = !words || item.dataset.title.includes(words);
      item.hidden = !match;
      shown += match;
    }
    empty.hidden = shown > 0;
  };
  search.addEventListener("input", filter);
  const folded = current !== null && matchMedia(PHONE).matches;
  const node = h(
    "details",
    { class: "sidebar", open: !folded },
    h("summary", {}, h("h2", {}, "Chats"), h("span", { class: "meta count" }, ` ${data.items.length}`)),
    h("a", { class: "button new-chat-link", href: "#/chats" }, "+ New chat"),
    search,
    list,
    empty,
  );
  filter();
  function setTitle(id, title) {
    const item = [...list.children].find((li) => li.dataset.conversationId === id);
    if (!item) return;
    item.querySelector("a").textContent = title || NO_TITLE;
    item.dataset.title = (title || "").toLowerCase();
  }
  return { node, setTitle };
}
