// Discover: search (typos forgiven by the API), with trending events
// before the first search.
import { timestampDate } from "@bufbuild/protobuf/wkt";

import { apiBase, discovery } from "../client";
import { h, problemNotice, show, status } from "../dom";
import { describe } from "../errors";
import { imageUrl, when } from "../format";
import type { EventCard } from "../gen/cityevents/feed/v1/feed_pb";

export async function discoverPage(main: HTMLElement, params: URLSearchParams): Promise<void> {
  const query = params.get("q") ?? "";
  const results = h("section", { "aria-live": "polite", "aria-label": "Results" });
  const input = h("input", { id: "q", name: "q", type: "search", value: query, placeholder: "Jazz, coffee, running…" });
  const form = h("form", { class: "search", role: "search", onsubmit: (e: Event) => {
    e.preventDefault();
    location.hash = `#/?q=${encodeURIComponent(input.value.trim())}`;
  } }, h("label", { for: "q", class: "visually-hidden" }, "Search events"), input, h("button", { type: "submit" }, "Search"));
  show(main, h("h1", {}, query ? `Events for “${query}”` : "Discover events"), form, results);

  // Tests and tools wait for `data-state="done"` on the results of this
  // very address.
  results.dataset.for = location.hash;
  results.dataset.state = "loading";
  show(results, status("Loading events…"));
  try {
    const cards = query
      ? (await discovery.searchEvents({ search: { query, pageSize: 24 } })).events
      : (await discovery.getTrending({ pageSize: 24 })).events;
    if (cards.length === 0) {
      show(results, status(query ? "No events match. Try other words or fewer filters." : "No upcoming events yet."));
    } else {
      show(results, h("ul", { class: "cards" }, ...cards.map(card)));
    }
  } catch (err) {
    show(results, problemNotice(describe(err)));
  }
  results.dataset.state = "done";
}

function card(c: EventCard): HTMLElement {
  const cover = c.cover?.cardUrl;
  return h("li", { class: "card" },
    cover ? h("img", { src: imageUrl(cover, apiBase), alt: "" }) : null,
    h("div", {},
      h("h3", {}, h("a", { href: `#/events/${c.eventId}` }, c.title)),
      h("p", { class: "muted" },
        `${c.startsAt ? when(timestampDate(c.startsAt), c.timeZone) : ""} · ${c.online ? "Online" : c.city}`),
      h("p", {}, c.remaining < 0 ? `${c.confirmed} going` : c.remaining > 0 ? `${c.remaining} seats left` : "Full · waitlist open")));
}
