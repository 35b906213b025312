// A little DOM building: elements with text (never HTML from data), and the
// notices every page shows.
import { describe as describeError, type Problem } from "./errors";

type Child = Node | string | null | undefined | false;

/** `<tag attrs…>children</tag>`; strings become text nodes. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string | boolean | ((e: Event) => void)> = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (typeof v === "function") el.addEventListener(k.replace(/^on/, ""), v);
    else if (v === true) el.setAttribute(k, "");
    else if (v !== false) el.setAttribute(k, v);
  }
  for (const c of children) if (c) el.append(c);
  return el;
}

/** An error notice, announced to screen readers. */
export function problemNotice(p: Problem): HTMLElement {
  return h("p", { class: "notice error", role: "alert" }, p.message);
}

/** A status line (loading, empty), announced politely. */
export function status(text: string): HTMLElement {
  return h("p", { class: "notice", role: "status" }, text);
}

/** Replaces `parent`'s content. */
export function show(parent: HTMLElement, ...children: Child[]): void {
  parent.replaceChildren(...children.filter((c): c is Node | string => !!c));
}

/** Keeps `button` disabled for the `secs` the API asked to wait (a rate
 *  limit's retry-after), its label counting down, so nobody hammers it. */
export function holdFor(button: HTMLButtonElement, secs: number): void {
  const label = button.dataset.label ?? button.textContent ?? "";
  button.dataset.label = label;
  const until = Date.now() + secs * 1000;
  button.disabled = true;
  const tick = () => {
    const left = Math.ceil((until - Date.now()) / 1000);
    if (left <= 0 || !button.isConnected) {
      button.disabled = false;
      button.textContent = label;
      delete button.dataset.label;
      return;
    }
    button.textContent = `${label} (wait ${left} s)`;
    setTimeout(tick, 1000);
  };
  tick();
}

/** The "More" button of a paged list, in `slot`: shown while there is a
 *  next page, it loads it (`load`, which calls `more` again) and shows a
 *  failure in its place. */
export function more(slot: HTMLElement, nextPageToken: string, load: (token: string) => Promise<unknown>, text = "More"): void {
  show(slot, nextPageToken
    ? h("button", { type: "button", class: "secondary", onclick: (e: Event) => {
      (e.currentTarget as HTMLButtonElement).disabled = true;
      void load(nextPageToken).catch((err) => show(slot, problemNotice(describeError(err))));
    } }, text)
    : null);
}

/** A folded form that asks why before it acts (remove someone, cancel or
 *  report an event): an empty reason is refused in words, the API's
 *  answer shown below. `act` gets the trimmed reason. */
export function reasonForm(o: {
  id: string; summary: string; label: string; button: string; empty: string;
  act: (reason: string) => Promise<string | void>; className?: string;
}): HTMLElement {
  const reason = h("input", { id: o.id, required: true });
  const result = h("div", { "aria-live": "assertive" });
  const submit = async (e: Event) => {
    e.preventDefault();
    const why = reason.value.trim();
    if (!why) {
      result.replaceChildren(problemNotice({ reason: "INVALID_ARGUMENT", message: o.empty }));
      return;
    }
    try {
      const done = await o.act(why);
      reason.value = "";
      result.replaceChildren(done ? h("p", { class: "notice", role: "status" }, done) : "");
    } catch (err) {
      result.replaceChildren(problemNotice(describeError(err)));
    }
  };
  return h("details", o.className ? { class: o.className } : {}, h("summary", {}, o.summary),
    h("form", { onsubmit: (e: Event) => void submit(e) },
      h("label", { for: o.id }, o.label), reason, h("button", { type: "submit", class: "secondary" }, o.button), result));
}
