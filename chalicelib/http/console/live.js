// One WebSocket to the service's push API, shared by the views. A view subscribes to an
// execution or a saga and is called with each event for it; the connection reopens by itself
// (a bounded number of times) and says its state in the header.
import { token } from "./api.js";

const MAX_RECONNECTS = 20;
const PING_MS = 5 * 60 * 1000; // API Gateway closes idle connections after 10 minutes

export class Live {
  constructor(url, indicator) {
    this.url = url;
    this.indicator = indicator;
    this.socket = null;
    this.handlers = new Map(); // topic -> Set of callbacks
    this.reconnects = 0;
    this.timer = null;
    this.ping = null;
    this.listeners = new Set(); // told when the connection opens or closes
  }

  get connected() { return this.socket !== null && this.socket.readyState === WebSocket.OPEN; }

  onState(callback) {
    this.listeners.add(callback);
    return () => this.listeners.delete(callback);
  }

  show(state, text) {
    this.indicator.dataset.state = state;
    this.indicator.textContent = text;
    for (const callback of this.listeners) callback(state);
  }

  open() {
    if (!this.url || this.socket) return;
    const url = new URL(this.url, location.href);
    // Without a topic $connect subscribes to everything; "subscribe" below names ours.
    url.searchParams.set("execution_id", "-");
    const bearer = token.get();
    if (bearer) url.searchParams.set("token", bearer); // browsers cannot set headers here
    this.show("connecting", "live: connecting");
    const socket = new WebSocket(url);
    this.socket = socket;
    socket.onopen = () => {
      this.reconnects = 0;
      this.show("on", "live: on");
      socket.send(JSON.stringify({ action: "unsubscribe", execution_id: "-" }));
      for (const topic of this.handlers.keys()) this.send("subscribe", topic);
      this.ping = setInterval(() => this.send("ping"), PING_MS);
    };
    socket.onmessage = (message) => this.dispatch(message.data);
    socket.onclose = () => {
      clearInterval(this.ping);
      this.socket = null;
      if (this.reconnects >= MAX_RECONNECTS) {
        this.show("off", "live: off (reload to retry)");
        return;
      }
      this.reconnects += 1;
      const delay = Math.min(30000, 500 * 2 ** Math.min(this.reconnects, 6));
      this.show("retrying", `live: reconnecting in ${Math.round(delay / 1000)} s`);
      this.timer = setTimeout(() => this.open(), delay);
    };
  }

  send(action, topic) {
    if (!this.connected) return;
    const [kind, id] = topic ? topic.split(/:(.*)/s) : [];
    const body = { action };
    if (kind === "all") body.all = true;
    else if (kind) body[`${kind}_id`] = id;
    this.socket.send(JSON.stringify(body));
  }

  dispatch(data) {
    let message;
    try { message = JSON.parse(data); } catch { return; }
    if (message.type !== "event" || !message.event) return;
    const event = message.event;
    const topics = ["all", `execution:${event.key}`];
    if (event.data && event.data.saga_id) topics.push(`saga:${event.data.saga_id}`);
    for (const topic of topics) {
      for (const callback of this.handlers.get(topic) || []) callback(event);
    }
  }

  // topic: "execution:<id>", "saga:<id>" or "all"; returns the unsubscribe function.
  subscribe(topic, callback) {
    if (!this.handlers.has(topic)) {
      this.handlers.set(topic, new Set());
      this.send("subscribe", topic);
    }
    this.handlers.get(topic).add(callback);
    return () => {
      const set = this.handlers.get(topic);
      if (!set) return;
      set.delete(callback);
      if (set.size === 0) {
        this.handlers.delete(topic);
        this.send("unsubscribe", topic);
      }
    };
  }
}
