// Answers and turns as Markdown: markdown-it renders (raw HTML in the text is not markup:
// `html: false`), DOMPurify sanitises what it made, and only then is it put in the page.
// This is the one place the page sets innerHTML; everything else is textContent (dom.js).

import markdownit from "../vendor/markdown-it/markdown-it.js";
import DOMPurify from "../vendor/dompurify/purify.js";
import { h } from "./dom.js";

const md = markdownit({ html: false, linkify: true, typographer: false });
const COPIED_MS = 1500;

/** Copy `text` to the clipboard, saying so on `button` for a moment. */
export async function copyText(text, button) {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    // No clipboard API (plain http on another host): select-and-copy fallback.
    const area = h("textarea", { class: "offscreen", readonly: true });
    area.value = text;
    document.body.append(area);
    area.select();
    document.execCommand("copy");
    area.remove();
  }
  if (button) {
    const label = button.textContent;
    button.textContent = "Copied";
    setTimeout(() => (button.textContent = label), COPIED_MS);
  }
}

/** The sanitised HTML of `text` rendered as Markdown. */
export function markdownHtml(text) {
  return DOMPurify.sanitize(md.render(text ?? ""), { USE_PROFILES: { html: true } });
}

/** Render `text` as Markdown into `target`: links open apart, code blocks get a copy button. */
export function renderMarkdown(target, text) {
  target.classList.add("md");
  target.innerHTML = markdownHtml(text);
  for (const link of target.querySelectorAll("a[href]")) {
    link.target = "_blank";
    link.rel = "noopener noreferrer";
  }
  for (const pre of target.querySelectorAll("pre")) {
    const code = pre.querySelector("code");
    const copy = h("button", { type: "button", class: "secondary small copy-code", "aria-label": "Copy code" }, "Copy");
    copy.addEventListener("click", () => copyText(code ? code.textContent : pre.textContent, copy));
    pre.before(h("div", { class: "code-head" }, languageOf(code), copy));
  }
}

function languageOf(code) {
  const name = [...(code?.classList ?? [])].find((c) => c.startsWith("language-"));
  return h("span", { class: "lang" }, name ? name.slice("language-".length) : "code");
}

/**
 * Re-render a streaming text at most once a frame: tokens arrive faster than the page
 * needs to redraw, and each render is of the whole text so far.
 */
export class MarkdownStream {
  constructor(target) {
    this.target = target;
    this.text = "";
    this.pending = false;
  }

  append(delta) {
    this.set(this.text + delta);
  }

  set(text) {
    this.text = text;
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      renderMarkdown(this.target, this.text);
    });
  }

  /** Render now (the final text), dropping any frame still scheduled. */
  finish(text) {
    this.text = text;
    renderMarkdown(this.target, text); // a frame still scheduled renders the same text
  }
}
