// A little DOM building: elements with text (never HTML from data), and the
// notices every page shows.
import type { Problem } from "./errors";

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
