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
