// Follow one Server-Sent Events stream of the API, exactly once per event.
//
// Event ids are gap-free and mean one event forever, so the follower keeps the last id it
// applied and drops anything at or below it: a replay after a reload, the browser's own
// reconnection (it sends Last-Event-ID) and a manual reopen (`?last_event_id=`) can all
// overlap without a duplicate. The `done` event closes the EventSource, so a finished
// stream is not reconnected to every few seconds.

export const EVENT_TYPES = [
  "run_status", "turn_start", "token", "tool_call", "turn_complete", "error", "snapshot",
  "person_message", "bot_updated", "speaker_selected", "routing", "awaiting_input",
  "verdict", "interrupted", "resumed", "tool_result", "done",
];

const RETRY_MS = [500, 1000, 2000, 4000, 8000];

export class Follower {
  /**
   * @param {string} url the stream
   * @param {object} handlers onEvent(type, data, id), onState(state), recover(): called
   *   when the browser gave up (an HTTP error, or a 204): resolves false to stop following.
   */
  constructor(url, handlers) {
    this.url = url;
    this.handlers = handlers;
    this.last = 0;
    this.applied = 0;
    this.done = false;
    this.source = null;
    this.failures = 0;
    this.timer = null;
  }

  start(after = 0) {
    this.last = after;
    this.open();
    return this;
  }

  open() {
    const sep = this.url.includes("?") ? "&" : "?";
    const url = this.last > 0 ? `${this.url}${sep}last_event_id=${this.last}` : this.url;
    const source = new EventSource(url, { withCredentials: true });
    this.source = source;
    source.onopen = () => {
      this.failures = 0;
      this.handlers.onState?.("live");
    };
    for (const type of EVENT_TYPES) {
      source.addEventListener(type, (event) => this.receive(type, event));
    }
  }

  receive(type, event) {
    // "error" is both a server event (with data) and the EventSource's own failure signal.
    if (!(event instanceof MessageEvent)) {
      this.failed();
      return;
    }
    const id = Number(event.lastEventId || 0);
    if (id && id <= this.last) return; // already applied: a replay overlapping what we have
    const data = JSON.parse(event.data);
    if (id) {
      // A snapshot stands for the ids its ranges name (older ones: first_id to its own).
      const ranges = type === "snapshot" ? data.ranges || [[data.first_id || id, id]] : [[id, id]];
      for (const [first, last] of ranges) {
        if (last > this.last) this.applied += last - Math.max(first, this.last + 1) + 1;
      }
      this.last = id;
    }
    this.handlers.onEvent(type, data, id);
    if (type === "done") this.close();
  }

  failed() {
    if (this.done) return;
    if (this.source.readyState === EventSource.CONNECTING) {
      this.handlers.onState?.("reconnecting"); // the browser retries with Last-Event-ID
      return;
    }
    // CLOSED: an HTTP error or a 204; the browser will not retry by itself.
    this.source.close();
    this.handlers.onState?.("reconnecting");
    const delay = RETRY_MS[Math.min(this.failures, RETRY_MS.length - 1)];
    this.failures += 1;
    this.timer = setTimeout(async () => {
      const goOn = this.handlers.recover ? await this.handlers.recover().catch(() => true) : true;
      if (goOn && !this.done) this.open();
      else this.close();
    }, delay);
  }

  close() {
    this.done = true;
    clearTimeout(this.timer);
    this.source?.close();
    this.handlers.onState?.("closed");
  }
}
