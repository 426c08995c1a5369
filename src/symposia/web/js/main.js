// The page's router: the hash names the view, so a reload shows the same one.

import { loadSession, signOut } from "./api.js";
import { chatView, chatsView } from "./chats.js";
import { h, showError } from "./dom.js";
import { newRunView, runView, runsView } from "./debates.js";
import { usageView } from "./usage.js";

const main = document.getElementById("main");
let cleanup = null;

function parse() {
  const [path, query = ""] = location.hash.replace(/^#/, "").split("?");
  return { parts: path.split("/").filter(Boolean), params: new URLSearchParams(query) };
}

async function route() {
  cleanup?.();
  cleanup = null;
  main.replaceChildren();
  document.getElementById("notice").hidden = true;
  const { parts, params } = parse();
  const [section, id] = parts;
  for (const link of document.querySelectorAll("[data-nav]")) {
    const named = section === "chats" || section === "chat" ? "chats" : section === "usage" ? "usage" : "debates";
    const current = link.dataset.nav === named;
    if (current) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  try {
    if (section === "new") await newRunView(main);
    else if (section === "run" && id) cleanup = await runView(main, id);
    else if (section === "chats") await chatsView(main);
    else if (section === "chat" && id) cleanup = await chatView(main, id);
    else if (section === "usage") await usageView(main);
    else await runsView(main, params);
  } catch (error) {
    if (error.status === 401) return; // on the way to the sign-in page
    main.append(h("p", { class: "empty" }, error.status === 404 ? "Not found." : "Could not load this view."));
    showError(error);
  }
}

async function start() {
  const session = await loadSession();
  if (session.signed_in) {
    const who = session.principal;
    document.getElementById("account-name").textContent =
      typeof who === "string" ? who : (who?.name ?? who?.id ?? "signed in");
    document.getElementById("account").hidden = false;
    document.getElementById("signout").addEventListener("click", () => signOut().catch(showError));
  }
  window.addEventListener("hashchange", route);
  await route();
  document.body.dataset.ready = "1";
}

start();
