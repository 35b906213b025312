// Discover: search (typos forgiven by the API) with filters, near the
// browser's location or a typed city, "for you" for the signed-in, and the
// results as a list or on a map. Everything asked is in the address.
import { timestampDate } from "@bufbuild/protobuf/wkt";

import { apiBase, discovery } from "../client";
import { h, more, problemNotice, show, status } from "../dom";
import { describe } from "../errors";
import { imageUrl, when } from "../format";
import type { EventCard } from "../gen/cityevents/feed/v1/feed_pb";
import { around, centre, distanceWords, mapView, tileUrl } from "../geo";
import { CATEGORIES, type Filters, filtersQuery, isSearch, parseFilters, RADII_KM, searchRequest } from "../search";
import { session } from "../session";

const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
/** A tile server for the map's ground, e.g.
 *  `https://tile.openstreetmap.org/{z}/{x}/{y}.png`, and the credit it asks
 *  for; without one the map is plain. */
const TILES: string = import.meta.env.VITE_MAP_TILES ?? "";
const ATTRIBUTION: string = import.meta.env.VITE_MAP_ATTRIBUTION ?? "";

export async function discoverPage(main: HTMLElement, params: URLSearchParams): Promise<void> {
  const f = parseFilters(params);
  const go = (next: Filters) => {
    location.hash = `#/?${filtersQuery(next)}`;
  };
  const results = h("section", { "aria-live": "polite", "aria-label": "Results" });
  const notices = h("div", { "aria-live": "assertive" });
  show(main, h("h1", {}, heading(f)), tabs(f), f.mode === "search" ? searchForm(f, go, notices) : null,
    nearForm(f, go, notices), notices, viewSwitch(f), results);

  // Tests and tools wait for `data-state="done"` on the results of this
  // very address.
  results.dataset.for = location.hash;
  results.dataset.state = "loading";
  show(results, status("Loading events…"));
  if (f.mode === "for-you" && !session.get()) {
    show(results, h("p", {}, h("a", { href: `#/signin?next=${encodeURIComponent(location.hash)}` }, "Sign in"),
      " to see events picked for you from the ones you joined."));
    results.dataset.state = "done";
    return;
  }
  const list = h("ol", { class: "cards" });
  const moreSlot = h("div");
  const cards: EventCard[] = [];
  const load = async (pageToken: string) => {
    const page = f.mode === "for-you"
      ? await discovery.getForYou({ near: nearOf(f), pageSize: 24, pageToken })
      : isSearch(f)
        ? await discovery.searchEvents({ search: { ...searchRequest(f, zone), pageToken } })
        : { ...(await discovery.getTrending({ pageSize: 24 })), nextPageToken: "" };
    list.append(...page.events.map((c, i) => card(c, cards.length + i + 1)));
    cards.push(...page.events);
    more(moreSlot, page.nextPageToken, load, "More events");
    if (f.view === "map") show(mapSlot, map(cards, f));
  };
  const mapSlot = h("div");
  try {
    await load("");
    if (cards.length === 0) {
      show(results, status(f.mode === "for-you" ? "Nothing picked for you yet. Join an event and we learn what you like."
        : isSearch(f) ? "No events match. Try other words or fewer filters." : "No upcoming events yet."));
    } else {
      show(results, f.view === "map" ? mapSlot : null, list, moreSlot);
    }
  } catch (err) {
    show(results, problemNotice(describe(err)));
  }
  results.dataset.state = "done";
}

function heading(f: Filters): string {
  if (f.mode === "for-you") return "For you";
  if (f.query) return `Events for “${f.query}”`;
  return f.near ? `Events near ${f.near.label}` : "Discover events";
}

function tabs(f: Filters): HTMLElement {
  const link = (mode: Filters["mode"], text: string) => h("a", {
    href: `#/?${filtersQuery({ ...f, mode, query: mode === "search" ? f.query : "" })}`,
    ...(f.mode === mode ? { "aria-current": "page" } : {}),
  }, text);
  return h("nav", { class: "tabs", "aria-label": "Ways to discover" }, link("search", "Search"), link("for-you", "For you"));
}

function searchForm(f: Filters, go: (f: Filters) => void, notices: HTMLElement): HTMLElement {
  const q = h("input", { id: "q", name: "q", type: "search", value: f.query, placeholder: "Jazz, coffee, running…" });
  const category = h("select", { id: "category", name: "category" }, h("option", { value: "" }, "Any category"),
    ...CATEGORIES.map((c) => h("option", { value: c, ...(f.category === c ? { selected: true } : {}) }, cap(c))));
  const from = h("input", { id: "from", name: "from", type: "date", value: f.from });
  const to = h("input", { id: "to", name: "to", type: "date", value: f.to });
  const free = h("input", { id: "free", name: "free", type: "checkbox", ...(f.freeSeatsOnly ? { checked: true } : {}) });
  const attend = h("select", { id: "attend", name: "attend" },
    ...[["", "In person or online"], ["in-person", "In person"], ["online", "Online"]].map(([v, t]) =>
      h("option", { value: v, ...(f.attendance === v ? { selected: true } : {}) }, t)));
  const sort = h("select", { id: "sort", name: "sort" },
    ...[["", "Best match"], ["soonest", "Soonest"], ["relevance", "Relevance"], ["distance", "Nearest (needs a place)"]]
      .map(([v, t]) => h("option", { value: v, ...(f.sort === v ? { selected: true } : {}) }, t)));
  const field = (id: string, label: string, el: HTMLElement) => h("div", { class: "field" }, h("label", { for: id }, label), el);
  const filtersOn = !!(f.category || f.from || f.to || f.freeSeatsOnly || f.attendance || f.sort);
  return h("form", { class: "search", role: "search", onsubmit: (e: Event) => {
    e.preventDefault();
    if (from.value && to.value && to.value < from.value) {
      notices.replaceChildren(problemNotice({ reason: "INVALID_ARGUMENT", message: "The last day comes before the first." }));
      return;
    }
    go({
      ...f, query: q.value.trim(), category: category.value, from: from.value, to: to.value,
      freeSeatsOnly: free.checked, attendance: attend.value as Filters["attendance"], sort: sort.value as Filters["sort"],
    });
  } },
  h("div", { class: "search-row" }, h("label", { for: "q", class: "visually-hidden" }, "Search events"), q,
    h("button", { type: "submit" }, "Search")),
  h("details", { ...(filtersOn ? { open: true } : {}) }, h("summary", {}, "Filters"),
    h("div", { class: "filters" },
      field("category", "Category", category), field("from", "From", from), field("to", "Until", to),
      field("attend", "Where", attend), field("sort", "Order", sort),
      h("div", { class: "field check" }, free, h("label", { for: "free" }, "Only events with free seats")),
      h("a", { href: "#/" }, "Clear all"))));
}

/** Near me (the browser's location) or near a typed city (the centre of the
 *  events the API knows there), within a radius. */
function nearForm(f: Filters, go: (f: Filters) => void, notices: HTMLElement): HTMLElement {
  const place = h("input", { id: "near", name: "near", autocomplete: "address-level2", placeholder: "A city",
    value: f.near && f.near.label !== "your location" ? f.near.label : "" });
  const radius = h("select", { id: "radius", name: "radius" },
    ...RADII_KM.map((r) => h("option", { value: String(r), ...((f.near?.radiusKm ?? 10) === r ? { selected: true } : {}) }, `${r} km`)));
  const say = (message: string) => notices.replaceChildren(problemNotice({ reason: "NEAR", message }));
  const byCity = async (e: Event) => {
    e.preventDefault();
    const city = place.value.trim();
    if (!city) return say("Type a city, or use your location.");
    try {
      const known = await discovery.searchEvents({ search: { city, pageSize: 100 } });
      const mid = centre(known.events.filter((c) => !c.online));
      if (!mid) return say(`We know no events in ${city} yet. Check the spelling, or try a bigger city nearby.`);
      go({ ...f, near: { ...mid, radiusKm: Number(radius.value), label: city } });
    } catch (err) {
      notices.replaceChildren(problemNotice(describe(err)));
    }
  };
  const mine = () => {
    if (!("geolocation" in navigator)) return say("This browser cannot tell where you are. Type a city instead.");
    notices.replaceChildren(status("Finding where you are…"));
    navigator.geolocation.getCurrentPosition(
      (pos) => go({ ...f, near: { latitude: pos.coords.latitude, longitude: pos.coords.longitude,
        radiusKm: Number(radius.value), label: "your location" } }),
      (err) => say(err.code === err.PERMISSION_DENIED
        ? "Your browser did not share your location. Allow it, or type a city instead."
        : "We could not find where you are. Type a city instead."),
      { timeout: 10_000, maximumAge: 300_000 });
  };
  return h("form", { class: "near", onsubmit: (e: Event) => void byCity(e) },
    h("div", { class: "field" }, h("label", { for: "near" }, "Near"), place),
    h("div", { class: "field" }, h("label", { for: "radius" }, "Within"), radius),
    h("button", { type: "submit", class: "secondary" }, "Go"),
    h("button", { type: "button", class: "secondary", onclick: mine }, "Use my location"),
    f.near ? h("p", { class: "muted" }, `Within ${f.near.radiusKm} km of ${f.near.label}. `,
      h("a", { href: `#/?${filtersQuery({ ...f, near: undefined, sort: f.sort === "distance" ? "" : f.sort })}` }, "Anywhere")) : null);
}

function viewSwitch(f: Filters): HTMLElement {
  const link = (view: Filters["view"], text: string) => h("a", {
    href: `#/?${filtersQuery({ ...f, view })}`, ...(f.view === view ? { "aria-current": "page" } : {}),
  }, text);
  return h("nav", { class: "tabs", "aria-label": "Show results as" }, link("list", "List"), link("map", "Map"));
}

function nearOf(f: Filters) {
  return f.near ? { latitude: f.near.latitude, longitude: f.near.longitude, radiusKm: f.near.radiusKm } : undefined;
}

function card(c: EventCard, n: number): HTMLElement {
  const cover = c.cover?.cardUrl;
  const where = c.online ? "Online" : [c.venueName, c.city].filter(Boolean).join(", ");
  return h("li", { class: "card", id: `result-${n}` },
    cover ? h("img", { src: imageUrl(cover, apiBase), alt: "" }) : null,
    h("div", {},
      h("h3", {}, h("span", { class: "pin", "aria-hidden": "true" }, String(n)), h("a", { href: `#/events/${c.eventId}` }, c.title)),
      h("p", { class: "muted" },
        `${c.startsAt ? when(timestampDate(c.startsAt), c.timeZone) : ""} · ${where}`,
        c.distanceKm > 0 ? ` · ${distanceWords(c.distanceKm)} away` : ""),
      h("p", {}, c.remaining < 0 ? `${c.confirmed} going` : c.remaining === 1 ? "1 seat left"
        : c.remaining > 0 ? `${c.remaining} seats left` : "Full · waitlist open")));
}

/** The results on a plain map: numbered pins (the list's numbers), each a
 *  link to its event, and the centre of a "near" search. */
function map(cards: EventCard[], f: Filters): HTMLElement {
  const [w, ht] = [800, 420];
  const points = cards.map((c) => (c.online ? { latitude: 0, longitude: 0 } : c));
  const here = f.near ? { latitude: f.near.latitude, longitude: f.near.longitude } : null;
  // A "near" search shows its whole circle: its edge due north bounds the map.
  const edges = f.near ? around(f.near.latitude, f.near.longitude, f.near.radiusKm) : [];
  const view = mapView([...points, ...(here ? [here] : []), ...edges], w, ht, 32);
  const spots = view.spots;
  const ns = "http://www.w3.org/2000/svg";
  const el = (tag: string, attrs: Record<string, string | number>, ...kids: (Node | string)[]) => {
    const e = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
    e.append(...kids);
    return e;
  };
  const svg = el("svg", { viewBox: `0 0 ${w} ${ht}`, role: "group", "aria-label": "Map of the results", class: "map" },
    el("rect", { x: 0, y: 0, width: w, height: ht, class: "map-ground" }),
    ...(TILES ? view.tiles.map((t) => el("image", { href: tileUrl(TILES, t), x: t.left, y: t.top, width: 256, height: 256, "aria-hidden": "true" })) : []));
  const hereSpot = here ? spots[points.length] : null;
  const northEdge = edges.length ? spots[points.length + 1] : null;
  if (hereSpot && northEdge) {
    svg.append(el("circle", { cx: hereSpot.x, cy: hereSpot.y, r: Math.abs(hereSpot.y - northEdge.y), class: "map-radius" }));
  }
  if (hereSpot) {
    svg.append(el("g", { class: "map-here", transform: `translate(${hereSpot.x},${hereSpot.y})` },
      el("title", {}, `You searched near ${f.near?.label}`),
      el("path", { d: "M-10 0H10M0 -10V10", "stroke-width": 3 }),
      el("text", { x: 14, y: 5 }, f.near?.label ?? "")));
  }
  cards.forEach((c, i) => {
    const s = spots[i];
    if (!s) return;
    svg.append(el("a", { href: `#/events/${c.eventId}`, "aria-label": `${i + 1}. ${c.title}` },
      el("title", {}, c.title),
      el("circle", { cx: s.x, cy: s.y, r: 14, class: "map-pin" }),
      el("text", { x: s.x, y: s.y + 5, "text-anchor": "middle", class: "map-pin-number" }, String(i + 1))));
  });
  const online = cards.filter((c) => c.online).length;
  return h("figure", { class: "map-figure" }, svg as unknown as HTMLElement,
    h("figcaption", { class: "muted" }, "Numbers match the list below.", TILES && ATTRIBUTION ? ` Map: ${ATTRIBUTION}.` : "",
      online ? ` ${online} online ${online === 1 ? "event is" : "events are"} not on the map.` : ""));
}

function cap(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}
