// What a discover page asks for, kept in the address (`#/?q=…&city=…`) so
// a search can be shared, bookmarked and taken back with the back button;
// and the same filters as the API's SearchRequest.
import type { MessageInitShape } from "@bufbuild/protobuf";

import { Attendance, type SearchRequestSchema, Sort } from "./gen/cityevents/feed/v1/feed_pb";

export type View = "list" | "map";
export type Mode = "search" | "for-you";

export interface Filters {
  mode: Mode;
  query: string;
  category: string;
  city: string;
  /** Local dates, YYYY-MM-DD, read in the visitor's own zone. */
  from: string;
  to: string;
  freeSeatsOnly: boolean;
  attendance: "" | "in-person" | "online";
  sort: "" | "soonest" | "relevance" | "distance";
  /** Near a place: the browser's location, or the centre of a typed city's events. */
  near?: { latitude: number; longitude: number; radiusKm: number; label: string };
  view: View;
}

/** The categories the create form offers and discover filters by. */
export const CATEGORIES = ["community", "music", "sports", "food", "arts", "tech", "outdoors", "family"] as const;

export const RADII_KM = [2, 5, 10, 25, 50] as const;

const empty: Filters = {
  mode: "search", query: "", category: "", city: "", from: "", to: "", freeSeatsOnly: false,
  attendance: "", sort: "", view: "list",
};

/** Reads the filters from the address's query; anything unknown is ignored. */
export function parseFilters(params: URLSearchParams): Filters {
  const f: Filters = { ...empty };
  f.mode = params.get("mode") === "for-you" ? "for-you" : "search";
  f.query = params.get("q")?.trim() ?? "";
  f.category = CATEGORIES.find((c) => c === params.get("category")) ?? "";
  f.city = params.get("city")?.trim() ?? "";
  f.from = isDate(params.get("from")) ? (params.get("from") as string) : "";
  f.to = isDate(params.get("to")) ? (params.get("to") as string) : "";
  f.freeSeatsOnly = params.get("free") === "1";
  const attend = params.get("attend");
  f.attendance = attend === "in-person" || attend === "online" ? attend : "";
  const sort = params.get("sort");
  f.sort = sort === "soonest" || sort === "relevance" || sort === "distance" ? sort : "";
  const lat = Number(params.get("lat"));
  const lng = Number(params.get("lng"));
  const radius = Number(params.get("km"));
  if (params.has("lat") && params.has("lng") && Math.abs(lat) <= 90 && Math.abs(lng) <= 180) {
    f.near = {
      latitude: lat, longitude: lng,
      radiusKm: radius > 0 && radius <= 500 ? radius : 10,
      label: params.get("place")?.trim() || "your location",
    };
  }
  f.view = params.get("view") === "map" ? "map" : "list";
  return f;
}

/** The address query for `f`: only what differs from the defaults. */
export function filtersQuery(f: Filters): string {
  const p = new URLSearchParams();
  if (f.mode === "for-you") p.set("mode", "for-you");
  if (f.query) p.set("q", f.query);
  if (f.category) p.set("category", f.category);
  if (f.city) p.set("city", f.city);
  if (f.from) p.set("from", f.from);
  if (f.to) p.set("to", f.to);
  if (f.freeSeatsOnly) p.set("free", "1");
  if (f.attendance) p.set("attend", f.attendance);
  if (f.sort) p.set("sort", f.sort);
  if (f.near) {
    p.set("lat", f.near.latitude.toFixed(4));
    p.set("lng", f.near.longitude.toFixed(4));
    p.set("km", String(f.near.radiusKm));
    p.set("place", f.near.label);
  }
  if (f.view === "map") p.set("view", "map");
  return p.toString();
}

/** True when the person asked for anything beyond the first page. */
export function isSearch(f: Filters): boolean {
  return !!(f.query || f.category || f.city || f.from || f.to || f.freeSeatsOnly || f.attendance || f.near || f.sort);
}

/** The API's search for `f`; dates are the visitor's local days. */
export function searchRequest(f: Filters, timeZone: string, pageSize = 24): MessageInitShape<typeof SearchRequestSchema> {
  return {
    query: f.query,
    categories: f.category ? [f.category] : [],
    city: f.city,
    fromDate: f.from,
    toDate: f.to,
    dateTimeZone: f.from || f.to ? timeZone : "",
    freeSeatsOnly: f.freeSeatsOnly,
    attendance: f.attendance === "in-person" ? Attendance.IN_PERSON : f.attendance === "online" ? Attendance.ONLINE : Attendance.UNSPECIFIED,
    sort: f.sort === "soonest" ? Sort.SOONEST : f.sort === "relevance" ? Sort.RELEVANCE
      : f.sort === "distance" && f.near ? Sort.DISTANCE : Sort.UNSPECIFIED,
    near: f.near ? { latitude: f.near.latitude, longitude: f.near.longitude, radiusKm: f.near.radiusKm } : undefined,
    pageSize,
  };
}

function isDate(s: string | null): boolean {
  return !!s && /^\d{4}-\d{2}-\d{2}$/.test(s) && !Number.isNaN(Date.parse(s));
}
