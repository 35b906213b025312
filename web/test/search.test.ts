import { describe, expect, it } from "vitest";

import { Attendance, Sort } from "../src/gen/cityevents/feed/v1/feed_pb";
import { filtersQuery, isSearch, parseFilters, searchRequest } from "../src/search";

const parse = (q: string) => parseFilters(new URLSearchParams(q));

describe("filters in the address", () => {
  it("come back as they went", () => {
    const q = "q=jazz&category=music&from=2026-12-10&to=2026-12-12&free=1&attend=in-person&sort=distance&lat=53.5500&lng=9.9900&km=5&place=Hamburg&view=map";
    const f = parse(q);
    expect(f).toMatchObject({
      query: "jazz", category: "music", from: "2026-12-10", to: "2026-12-12", freeSeatsOnly: true,
      attendance: "in-person", sort: "distance", view: "map",
      near: { latitude: 53.55, longitude: 9.99, radiusKm: 5, label: "Hamburg" },
    });
    expect(filtersQuery(f)).toBe(q);
  });

  it("ignore what they do not know", () => {
    const f = parse("category=weapons&from=yesterday&attend=space&sort=random&lat=91&lng=0&view=globe");
    expect(filtersQuery(f)).toBe("");
    expect(isSearch(f)).toBe(false);
  });

  it("keep a sane radius", () => {
    expect(parse("lat=1&lng=2&km=9999").near?.radiusKm).toBe(10);
  });
});

describe("the API's search", () => {
  it("reads dates in the visitor's zone and asks for distance only with a place", () => {
    const r = searchRequest(parse("q=run&from=2026-12-10&sort=distance&attend=online"), "Europe/Berlin");
    expect(r).toMatchObject({ query: "run", fromDate: "2026-12-10", dateTimeZone: "Europe/Berlin", attendance: Attendance.ONLINE });
    expect(r.sort).toBe(Sort.UNSPECIFIED);
    const near = searchRequest(parse("sort=distance&lat=53.55&lng=9.99&km=25"), "UTC");
    expect(near).toMatchObject({ sort: Sort.DISTANCE, near: { latitude: 53.55, longitude: 9.99, radiusKm: 25 }, dateTimeZone: "" });
  });
});
