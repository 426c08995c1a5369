// Panels in a chat: presets a new chat can start from (a supervisor, the chat's model,
// routing each message to one of a few specialists), and how a reply's routing is shown.

import { h } from "./dom.js";

/** Specialists by preset; each agent gets the model the person picks for them. */
export const PANEL_PRESETS = [
  {
    name: "support",
    label: "Support desk: billing and tech",
    agents: [
      { name: "billing", description: "Invoices, refunds, payment methods, prices.", system_prompt: "You answer billing questions: invoices, refunds, payment methods. Be precise and brief." },
      { name: "tech", description: "Installation, errors, configuration, troubleshooting.", system_prompt: "You solve technical problems step by step: installation, errors, configuration." },
    ],
  },
  {
    name: "study",
    label: "Study group: explainer and quizzer",
    agents: [
      { name: "explainer", description: "Explains a concept simply, with an example.", system_prompt: "You explain concepts simply, step by step, with one concrete example." },
      { name: "quizzer", description: "Asks questions to test understanding, checks answers.", system_prompt: "You test understanding: ask one short question at a time and check the answer." },
    ],
  },
  {
    name: "writing",
    label: "Writing room: editor and researcher",
    agents: [
      { name: "editor", description: "Improves a text: clarity, grammar, structure.", system_prompt: "You edit texts for clarity, grammar and structure; show the improved text." },
      { name: "researcher", description: "Facts, background and context on a topic.", system_prompt: "You give facts and background on a topic, saying what is uncertain." },
    ],
  },
];

/** A <select> of the presets, with a first "no panel" option. */
export function panelPresetSelect(attrs = {}) {
  return h(
    "select",
    attrs,
    h("option", { value: "" }, "No panel: one model answers"),
    PANEL_PRESETS.map((p) => h("option", { value: p.name }, p.label)),
  );
}

/** The `panel` of preset `name` for `PATCH /api/conversations/{id}`, every agent on `model`. */
export function panelOf(name, model) {
  const preset = PANEL_PRESETS.find((p) => p.name === name);
  if (!preset) return null;
  return { agents: preset.agents.map((agent) => ({ ...agent, model })) };
}

/** A reply's routing (the `routing` event, or an answer's stored `routing`): who and why. */
export function routingNote(routing) {
  const who = routing.agent === "supervisor" ? "the supervisor itself" : routing.agent;
  const parts = [h("strong", {}, `Routed to ${who}`)];
  if (routing.reason) parts.push(`: ${routing.reason}`);
  const details = [];
  if (routing.model) details.push(`decided by ${routing.model}`);
  if (routing.attempts > 1) details.push(`${routing.attempts} attempts`);
  if (routing.fallback) details.push("fallback");
  if (routing.error) details.push(`supervisor failed: ${routing.error}`);
  if (details.length) parts.push(h("span", { class: "meta" }, ` (${details.join(", ")})`));
  return h("div", { class: "routing", dataset: { agent: routing.agent } }, parts);
}

/** The panel of a chat, as a line under its head: who may answer. */
export function panelSummary(panel) {
  const names = panel.agents.map((a) => `${a.name} (${a.model})`).join(", ");
  return h("p", { class: "panel-summary meta" }, `Panel: the supervisor routes each message to ${names}, or answers itself.`);
}
