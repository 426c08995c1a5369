// Debates (runs): the list of past runs, the form that starts one, and the live view.

import { api, models } from "./api.js";
import { field, guard, h, modelSelect } from "./dom.js";
import { usageLine } from "./format.js";
import { renderMarkdown } from "./markdown.js";
import { Follower } from "./stream.js";

const PAGE = 20;
const FINISHED = ["completed", "cancelled", "error", "interrupted"];

function statusBadge(status) {
  return h("span", { class: `badge status-${status}`, dataset: { status } }, status);
}

/** "branch", linking to the run it was branched from. */
function branchBadge(run) {
  return h(
    "a",
    { class: "badge branch", href: `#/run/${run.parent_id}`, title: `Branched from run ${run.parent_id} after turn ${run.branch_turn}` },
    `branch of ${run.parent_id.slice(0, 8)} after turn ${run.branch_turn}`,
  );
}

// ---------------------------------------------------------------- the list of past runs

export async function runsView(root, params) {
  const offset = Math.max(0, Number(params.get("offset") || 0));
  const data = await api("GET", `/api/runs?limit=${PAGE}&offset=${offset}`);
  const rows = data.items.map((run) =>
    h(
      "li",
      { class: "run-row", dataset: { runId: run.id } },
      h("a", { href: `#/run/${run.id}` }, run.topic),
      h(
        "span",
        { class: "meta" },
        statusBadge(run.status),
        run.parent_id ? [" ", branchBadge(run)] : null,
        ` ${run.policy} · ${run.turn_count}/${run.max_turns} turns · `,
        new Date(run.created_at).toLocaleString(),
      ),
    ),
  );
  const pager = h(
    "nav",
    { class: "pager", "aria-label": "Pages of runs" },
    offset > 0 ? h("a", { href: `#/?offset=${Math.max(0, offset - PAGE)}`, class: "button secondary" }, "Newer") : null,
    data.items.length === PAGE ? h("a", { href: `#/?offset=${offset + PAGE}`, class: "button secondary" }, "Older") : null,
  );
  root.append(
    h(
      "section",
      { class: "panel" },
      h("div", { class: "title-row" }, h("h1", {}, "Debates"), h("a", { href: "#/new", class: "button" }, "New debate")),
      rows.length ? h("ul", { class: "runs" }, rows) : h("p", { class: "empty" }, "No debates yet."),
      pager,
    ),
  );
}

// ---------------------------------------------------------------- the form

function botFieldset(index, ids, bot, onRemove) {
  // A run needs two bots: with two, there is nothing to remove (onRemove is null).
  const temperature = h("input", {
    type: "range", min: 0, max: 2, step: 0.1, value: bot.temperature ?? 0.7, name: "temperature",
  });
  const shown = h("output", {}, String(temperature.value));
  temperature.addEventListener("input", () => (shown.textContent = temperature.value));
  const set = h(
    "fieldset",
    { class: `bot-edit bot-${index % 8}` },
    h("legend", {}, `Bot ${index + 1}`),
    field("Name", h("input", { name: "name", value: bot.name ?? "", maxlength: 64, required: true })),
    field("Model", modelSelect(ids, bot.model, { name: "model" }, "server default")),
    field("System prompt", h("textarea", { name: "system_prompt", rows: 5 }, bot.system_prompt ?? bot.prompt ?? "")),
    h("div", { class: "field" }, h("label", {}, "Temperature ", temperature, " ", shown)),
    onRemove ? h("button", { type: "button", class: "secondary remove", onclick: onRemove }, `Remove bot ${index + 1}`) : null,
  );
  set.extra = { kind: bot.kind, description: bot.description, max_tokens: bot.max_tokens };
  return set;
}

function readBot(set) {
  const value = (name) => set.querySelector(`[name=${name}]`).value;
  const bot = {
    name: value("name").trim(),
    system_prompt: value("system_prompt"),
    temperature: Number(value("temperature")),
  };
  if (value("model")) bot.model = value("model");
  for (const [key, extra] of Object.entries(set.extra)) if (extra) bot[key] = extra;
  if (bot.kind === "human") {
    delete bot.model;
    delete bot.temperature;
  }
  return bot;
}

export async function newRunView(root) {
  const [ids, presets, policies] = await Promise.all([
    models(),
    api("GET", "/api/presets"),
    api("GET", "/api/policies"),
  ]);
  // The server's own default bots (names, roles, settings), as a run naming none gets.
  let bots = presets.default.body.bots.map((bot) => ({ ...bot }));
  const botsBox = h("div", { class: "bots" });
  const renderBots = () => {
    botsBox.replaceChildren(
      ...bots.map((bot, i) =>
        botFieldset(i, ids, bot, bots.length > 2 ? () => {
          bots = readAll();
          bots.splice(i, 1);
          renderBots();
        } : null),
      ),
    );
  };
  const readAll = () => [...botsBox.querySelectorAll("fieldset")].map(readBot);

  const topic = h("input", { name: "topic", required: true, maxlength: 10000, placeholder: "Should cities ban cars?" });
  const preset = h(
    "select",
    { name: "preset" },
    h("option", { value: "" }, "none: my own bots"),
    presets.items.map((p) => h("option", { value: p.name, title: p.description }, `${p.name}: ${p.description}`)),
  );
  const policy = h(
    "select",
    { name: "policy" },
    policies.items.map((p) => h("option", { value: p.name, selected: p.name === "round_robin", title: p.description }, p.name)),
  );
  const maxTurns = h("input", { name: "max_turns", type: "number", min: 1, value: 6, required: true });
  // Sent only when chosen (typed, or a preset's): left alone, the server's default applies,
  // which a policy with rounds raises to what its rounds need; a chosen one too few is refused.
  let turnsChosen = false;
  maxTurns.addEventListener("input", () => { turnsChosen = true; });
  preset.addEventListener("change", () => {
    const chosen = presets.items.find((p) => p.name === preset.value);
    if (!chosen) return;
    if (chosen.body.bots) bots = chosen.body.bots.map((bot) => ({ ...bot }));
    if (chosen.body.policy) policy.value = chosen.body.policy;
    if (chosen.body.max_turns) {
      maxTurns.value = chosen.body.max_turns;
      turnsChosen = true;
    }
    renderBots();
  });
  const addBot = h("button", { type: "button", class: "secondary" }, "Add bot");
  addBot.addEventListener("click", () => {
    bots = readAll();
    if (bots.length < 8) bots.push({ name: `Bot ${bots.length + 1}` });
    renderBots();
  });

  const form = h(
    "form",
    { class: "panel run-form", "aria-label": "New debate" },
    h("h1", {}, "New debate"),
    field("Topic", topic),
    h("div", { class: "row" }, field("Preset", preset), field("Policy", policy), field("Max turns", maxTurns)),
    botsBox,
    h("div", { class: "actions" }, addBot, h("button", { type: "submit" }, "Start debate")),
  );
  form.addEventListener(
    "submit",
    guard(async () => {
      const body = { topic: topic.value, policy: policy.value, bots: readAll() };
      if (turnsChosen) body.max_turns = Number(maxTurns.value);
      if (preset.value) body.preset = preset.value;
      const run = await api("POST", "/api/run", body);
      location.hash = `#/run/${run.id}`;
    }),
  );
  renderBots();
  root.append(form);
  topic.focus();
}

// ---------------------------------------------------------------- the live view

class LiveRun {
  constructor(root, run, ids) {
    this.root = root;
    this.run = run;
    this.ids = ids;
    this.turns = new Map();
    this.finished = FINISHED.includes(run.status);
    this.build();
  }

  build() {
    const run = this.run;
    this.status = h("span", { class: "status" }, statusBadge(run.status));
    this.ending = h("span", { class: "ending", "data-testid": "ending" });
    this.connection = h("span", { class: "connection", "aria-live": "polite" });
    this.now = h("p", { class: "now", "aria-live": "polite" });
    this.transcript = h("ol", { class: "transcript", "aria-label": "Transcript" });
    this.stopButton = h("button", { type: "button", class: "danger", onclick: guard(() => this.stop()) }, "Stop");
    const exports = h(
      "span",
      { class: "exports" },
      "Export: ",
      ["json", "md", "pdf"].map((ext) =>
        h("a", { href: `/api/export/${run.id}.${ext}`, download: `run-${run.id}.${ext}` }, ext.toUpperCase()),
      ),
    );
    const parent = run.parent_id
      ? h("p", { class: "meta branched" }, "Branched from ", h("a", { href: `#/run/${run.parent_id}` }, "this run"), ` after turn ${run.branch_turn}.`)
      : null;
    this.bots = h("div", { class: "bot-cards" }, run.bots.map((bot, i) => this.botCard(bot, i)));
    this.say = this.sayForm();
    this.view = h(
      "section",
      { class: "live", dataset: { runId: run.id, lastEventId: 0, eventsApplied: 0 } },
      h("h1", { class: "topic" }, run.topic),
      h("p", { class: "meta" }, this.status, " ", `${run.policy} · up to ${run.max_turns} turns `, this.ending, " ", this.connection),
      parent,
      h("div", { class: "toolbar" }, this.stopButton, exports),
      this.now,
      h(
        "div",
        { class: "columns" },
        // The say box follows the transcript (sticky at the bottom while it scrolls), not the bots.
        h("div", { class: "thread" }, this.transcript, this.say),
        h("aside", { class: "side" }, h("h2", {}, "Bots"), this.bots),
      ),
    );
    this.root.append(this.view);
    this.showEnding(run);
    this.setFinished(this.finished);
  }

  botCard(bot, index) {
    const color = `bot-${index % 8}`;
    if (bot.kind === "human") {
      return h("div", { class: `bot-card ${color}` }, h("h3", {}, `${bot.name} (a person)`));
    }
    const temperature = h("input", { type: "range", min: 0, max: 2, step: 0.1, value: bot.temperature, name: "temperature" });
    const shown = h("output", {}, String(bot.temperature));
    temperature.addEventListener("input", () => (shown.textContent = temperature.value));
    const model = modelSelect(this.ids, bot.model, { name: "model" });
    const prompt = h("textarea", { name: "system_prompt", rows: 3 }, bot.system_prompt);
    const form = h(
      "form",
      { class: `bot-card ${color}`, dataset: { bot: index }, "aria-label": `Edit ${bot.name}` },
      h("h3", {}, h("span", { class: "swatch", "aria-hidden": "true" }), bot.name),
      field("Model", model),
      h("div", { class: "field" }, h("label", {}, "Temperature ", temperature, " ", shown)),
      field("System prompt", prompt),
      h("button", { type: "submit", class: "apply" }, `Apply to ${bot.name}`),
      h("p", { class: "saved", "aria-live": "polite" }),
    );
    form.addEventListener(
      "submit",
      guard(async () => {
        const current = this.run.bots[index];
        const changes = {};
        if (model.value && model.value !== current.model) changes.model = model.value;
        if (Number(temperature.value) !== current.temperature) changes.temperature = Number(temperature.value);
        if (prompt.value !== current.system_prompt) changes.system_prompt = prompt.value;
        const note = form.querySelector(".saved");
        if (!Object.keys(changes).length) {
          note.textContent = "Nothing changed.";
          return;
        }
        const answer = await api("PATCH", `/api/run/${this.run.id}/bot/${index}`, changes);
        this.run.bots[index] = answer.bot;
        note.textContent = "Saved: the next turn uses it.";
      }),
    );
    return form;
  }

  sayForm() {
    const input = h("input", { name: "content", required: true, autocomplete: "off" });
    const form = h("form", { class: "say", "aria-label": "Speak in the debate" }, field("Your message", input), h("button", { type: "submit" }, "Send"));
    form.addEventListener(
      "submit",
      guard(async () => {
        await api("POST", `/api/run/${this.run.id}/messages`, { content: input.value });
        input.value = "";
      }),
    );
    return form;
  }

  /** A branch's messages copied from its parent (up to the branch point), shown before
   * its own turns and marked as inherited, each linking to the parent run. */
  showInherited(messages) {
    const parent = this.run.parent_id;
    for (const message of messages) {
      const from = h("a", { class: "inherited-from", href: `#/run/${parent}` }, "inherited from the parent run");
      const isTurn = message.bot_index !== null && message.bot_index !== undefined && message.turn !== null;
      const who = isTurn
        ? [h("strong", {}, message.author), message.model ? ` · ${message.model}` : "", ` · turn ${message.turn + 1} · `, from]
        : [h("strong", {}, message.author), " · ", from];
      const node = h(
        "li",
        {
          class: isTurn ? `turn inherited bot-${message.bot_index % 8}` : "person inherited",
          dataset: isTurn ? { inheritedTurn: message.turn, bot: message.bot_index } : { inherited: "1" },
        },
        h("div", { class: "who" }, who),
        h("div", { class: "text" }),
      );
      renderMarkdown(node.querySelector(".text"), message.content);
      const spent = isTurn ? usageLine(message.usage, message.cost_usd) : "";
      if (spent) node.append(h("div", { class: "turn-foot" }, h("span", { class: "usage" }, spent)));
      this.transcript.append(node);
    }
    if (messages.length) this.transcript.append(h("li", { class: "note branch-point" }, `This branch goes on from here (after turn ${this.run.branch_turn}).`));
  }

  async stop() {
    this.stopButton.disabled = true;
    await api("POST", `/api/run/${this.run.id}/stop`);
  }

  setFinished(finished) {
    this.finished = finished;
    this.stopButton.hidden = finished;
    this.say.hidden = finished;
    for (const button of this.bots.querySelectorAll("button")) button.disabled = finished;
    if (finished) this.now.textContent = "";
  }

  showEnding(data) {
    const why = data.ended_by || data.stop_reason || data.reason || data.error_message || data.error;
    if (why) this.ending.textContent = `· ended: ${typeof why === "string" ? why : JSON.stringify(why)}`;
  }

  setStatus(status) {
    this.status.replaceChildren(statusBadge(status));
  }

  turn(data) {
    let entry = this.turns.get(data.turn);
    if (!entry) {
      const text = h("div", { class: "text" });
      const node = h(
        "li",
        { class: `turn bot-${data.bot % 8}`, dataset: { turn: data.turn, bot: data.bot } },
        h("div", { class: "who" }, h("strong", {}, data.name), h("span", { class: "model" }), ` · turn ${data.turn + 1}`),
        text,
        h("div", { class: "turn-foot" }),
      );
      entry = { node, text, streamed: "" };
      this.turns.set(data.turn, entry);
      this.append(node);
    }
    if (data.model) entry.node.querySelector(".model").textContent = ` · ${data.model}`;
    return entry;
  }

  append(node) {
    this.transcript.append(node);
    if (this.view.isConnected) node.scrollIntoView?.({ block: "nearest" });
  }

  note(kind, ...children) {
    this.append(h("li", { class: `note ${kind}` }, ...children));
  }

  complete(data) {
    const entry = this.turn(data);
    // The tokens streamed must add up to the turn's text; a mismatch (a gap or a
    // duplicate) is repaired from the authoritative content and marked.
    if (entry.streamed && entry.streamed !== data.content) entry.node.dataset.repaired = "1";
    renderMarkdown(entry.text, data.content);
    entry.node.dataset.complete = "1";
    entry.node.dataset.status = data.status;
    if (data.message_id) entry.node.dataset.messageId = data.message_id;
    const foot = entry.node.querySelector(".turn-foot");
    const spent = usageLine(data.usage, data.cost_usd);
    foot.replaceChildren(
      spent ? h("span", { class: "usage" }, spent) : "",
      data.status === "partial" ? h("span", { class: "badge" }, "partial") : "",
      h(
        "button",
        { type: "button", class: "secondary small", onclick: guard(() => this.branch(data.turn + 1)) },
        `Branch after turn ${data.turn + 1}`,
      ),
    );
    if (this.now.dataset.turn === String(data.turn)) this.now.textContent = "";
  }

  async branch(atTurn) {
    const run = await api("POST", `/api/run/${this.run.id}/branch`, { at_turn: atTurn });
    location.hash = `#/run/${run.id}`;
  }

  apply(type, data, id) {
    switch (type) {
      case "run_status":
        this.setStatus(data.status);
        this.showEnding(data);
        if (data.status === "awaiting_input") this.now.textContent = "Waiting for a person…";
        break;
      case "turn_start": {
        const entry = this.turn(data);
        entry.node.dataset.startId = id;
        this.now.dataset.turn = data.turn;
        this.now.textContent = `${data.name} is speaking (turn ${data.turn + 1})`;
        break;
      }
      case "token": {
        const entry = this.turn(data);
        entry.streamed += data.delta;
        entry.text.textContent = entry.streamed;
        break;
      }
      case "turn_complete":
        this.complete(data);
        this.turns.get(data.turn).node.dataset.completeId = id;
        break;
      case "snapshot":
        for (const message of data.messages) {
          const entry = this.turn({ ...message, bot: message.bot ?? 0 });
          entry.streamed = message.content;
          entry.text.textContent = message.content;
        }
        break;
      case "person_message":
        this.append(h("li", { class: "person", dataset: { messageId: data.message_id } }, h("div", { class: "who" }, h("strong", {}, data.author)), h("div", { class: "text" }, data.content)));
        break;
      case "bot_updated": {
        Object.assign(this.run.bots[data.bot], data.changes);
        const fields = Object.entries(data.changes).map(([k, v]) => `${k} = ${k === "system_prompt" ? `"${v}"` : v}`);
        this.note("bot-updated", `${data.name} changed from turn ${data.turn + 1}: ${fields.join(", ")}`);
        this.syncCard(data.bot);
        break;
      }
      case "speaker_selected":
        this.note("routing", `Supervisor chose ${data.name}${data.fallback ? " (fallback)" : ""}${data.answer ? `: ${data.answer}` : ""}`);
        break;
      case "verdict":
        this.note("verdict", h("strong", {}, `Verdict (${data.method}): `), data.answer, data.winner ? ` · winner: ${data.winner}` : "", data.reason ? h("div", {}, data.reason) : "");
        break;
      case "awaiting_input":
        this.now.textContent = `Waiting for ${data.name} (until ${new Date(data.until).toLocaleTimeString()})`;
        break;
      case "interrupted":
        this.note("warning", `Interrupted (${data.reason}); it goes on from turn ${data.turn + 1}.`);
        break;
      case "resumed":
        this.note("info", `Resumed from turn ${data.turn + 1}.`);
        break;
      case "error":
        this.note("error", `Error: ${data.message}`);
        break;
      case "done":
        this.setStatus(data.status);
        this.showEnding(data);
        this.setFinished(true);
        this.refreshSummary();
        break;
      default:
        break;
    }
  }

  syncCard(index) {
    const card = this.bots.querySelector(`form[data-bot="${index}"]`);
    if (!card) return;
    const bot = this.run.bots[index];
    card.querySelector("[name=model]").value = bot.model;
    card.querySelector("[name=temperature]").value = bot.temperature;
    card.querySelector("output").textContent = String(bot.temperature);
    card.querySelector("[name=system_prompt]").value = bot.system_prompt;
  }

  async refreshSummary() {
    try {
      this.run = await api("GET", `/api/run/${this.run.id}`);
      this.showEnding(this.run);
    } catch {
      // The stream already said how it ended.
    }
  }
}

/** The messages a branch copied from its parent: its transcript's messages made before the
 * branch itself was (copies keep their times), the topic left out. */
async function inheritedMessages(run) {
  const transcript = await api("GET", `/api/export/${run.id}.json`);
  const made = Date.parse(run.created_at);
  return transcript.messages.filter((m) => Date.parse(m.created_at) < made && m.role !== "system");
}

export async function runView(root, runId) {
  const [run, ids] = await Promise.all([api("GET", `/api/run/${runId}`), models().catch(() => [])]);
  const live = new LiveRun(root, run, ids);
  if (run.parent_id) {
    try {
      live.showInherited(await inheritedMessages(run));
    } catch (error) {
      // The branch's own turns still show; say what is missing instead of failing the view.
      live.note("warning", `Could not load the turns inherited from the parent run: ${error.message}`);
    }
  }
  const follower = new Follower(`/api/stream/${runId}`, {
    onEvent: (type, data, id) => {
      live.apply(type, data, id);
      live.view.dataset.lastEventId = follower.last;
      live.view.dataset.eventsApplied = follower.applied;
    },
    onState: (state) => {
      live.connection.textContent = state === "reconnecting" ? "reconnecting…" : "";
      if (state === "reconnecting" && live.view.dataset.connection !== state) {
        live.view.dataset.reconnects = Number(live.view.dataset.reconnects || 0) + 1;
      }
      live.view.dataset.connection = state;
    },
    recover: async () => {
      const summary = await api("GET", `/api/run/${runId}`);
      if (FINISHED.includes(summary.status) && follower.failures > 2) {
        live.setStatus(summary.status);
        live.showEnding(summary);
        live.setFinished(true);
        return false;
      }
      return true;
    },
  }).start();
  return () => follower.close();
}
