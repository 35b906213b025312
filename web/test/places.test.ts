import { describe, expect, it } from "vitest";

import { type CalendarEvent, fileName, ics } from "../src/calendar";
import { around, centre, distanceWords, mapView, tileUrl } from "../src/geo";
import { QuestionKind, type Question } from "../src/gen/cityevents/event/v1/event_pb";
import { answers, choiceList, price } from "../src/questions";

describe("places", () => {
  it("take a typed city's centre from its events, skipping online ones", () => {
    expect(centre([{ latitude: 53, longitude: 9 }, { latitude: 54, longitude: 10 }, { latitude: 0, longitude: 0 }]))
      .toEqual({ latitude: 53.5, longitude: 9.5 });
    expect(centre([{ latitude: 0, longitude: 0 }])).toBeNull();
  });

  it("lay results out north up inside the map, at the closest zoom that fits", () => {
    const v = mapView([{ latitude: 53.60, longitude: 10.05 }, { latitude: 53.50, longitude: 9.90 }, { latitude: 0, longitude: 0 }], 800, 400, 20);
    const [north, south, none] = v.spots;
    expect(none).toBeNull();
    expect(north!.y).toBeLessThan(south!.y);
    expect(north!.x).toBeGreaterThan(south!.x);
    for (const p of [north!, south!]) {
      expect(p.x).toBeGreaterThan(19.999);
      expect(p.x).toBeLessThan(780.001);
      expect(p.y).toBeGreaterThan(19.999);
      expect(p.y).toBeLessThan(380.001);
    }
    // One zoom closer and they would not fit.
    const closer = mapView([{ latitude: 53.60, longitude: 10.05 }, { latitude: 53.50, longitude: 9.90 }], 800, 400, 20, v.zoom + 1);
    expect(closer.zoom).toBe(v.zoom);
    expect(v.zoom).toBe(11);
  });

  it("show one place alone at street level, in the middle", () => {
    const v = mapView([{ latitude: 48.137, longitude: 11.575 }], 800, 400);
    expect(v.zoom).toBe(15);
    expect(v.spots).toEqual([{ x: 400, y: 200 }]);
  });

  it("cover the view with tiles, each where it belongs", () => {
    const v = mapView([{ latitude: 53.55, longitude: 9.99 }], 800, 400);
    // 800×400 needs 4 or 5 tiles across and 2 or 3 down.
    expect(v.tiles.length).toBeGreaterThanOrEqual(8);
    expect(v.tiles.length).toBeLessThanOrEqual(15);
    for (const t of v.tiles) {
      expect(t.left).toBeGreaterThan(-256);
      expect(t.left).toBeLessThan(800);
      expect(t.top).toBeGreaterThan(-256);
      expect(t.top).toBeLessThan(400);
    }
    // Hamburg at zoom 15 is tile x 17293, y 10590 (OpenStreetMap's numbering).
    const spot = v.spots[0]!;
    const under = v.tiles.find((t) => spot.x >= t.left && spot.x < t.left + 256 && spot.y >= t.top && spot.y < t.top + 256);
    expect(under).toMatchObject({ z: 15, x: 17293, y: 10590 });
    expect(tileUrl("https://tile.example/{z}/{x}/{y}.png", under!)).toBe("https://tile.example/15/17293/10590.png");
  });

  it("bound a radius by its edges, as far north as east on the ground", () => {
    const [n, s, e, w] = around(53.55, 9.99, 10);
    expect(n.latitude - 53.55).toBeCloseTo(0.0898, 3);
    expect(s.latitude).toBeCloseTo(53.55 - 0.0898, 3);
    // A degree of longitude is shorter up north: more of them for 10 km.
    expect(e.longitude - 9.99).toBeCloseTo(0.0898 / Math.cos((53.55 * Math.PI) / 180), 3);
    expect(w.longitude).toBeLessThan(9.99);
  });

  it("word distances", () => {
    expect(distanceWords(0.42)).toBe("420 m");
    expect(distanceWords(2.44)).toBe("2.4 km");
    expect(distanceWords(35.4)).toBe("35 km");
  });
});

describe("add to calendar", () => {
  const event: CalendarEvent = {
    id: "e1", title: "Lantern walk; with friends, kids welcome", description: "Line one\nline two",
    startsAt: new Date("2026-12-12T17:00:00Z"), endsAt: new Date("2026-12-12T19:00:00Z"),
    location: "Old harbour, Hamburg", url: "https://cityevents.example/#/events/e1",
  };

  it("writes an RFC 5545 event in UTC with its text escaped", () => {
    const text = ics(event, new Date("2026-12-01T00:00:00Z"));
    expect(text).toContain("\r\nDTSTART:20261212T170000Z\r\n");
    expect(text).toContain("\r\nDTEND:20261212T190000Z\r\n");
    expect(text).toContain("SUMMARY:Lantern walk\\; with friends\\, kids welcome");
    expect(text).toContain("DESCRIPTION:Line one\\nline two");
    expect(text.endsWith("END:VCALENDAR\r\n")).toBe(true);
  });

  it("folds long lines at 75 octets without splitting a character", () => {
    const text = ics({ ...event, description: "é".repeat(100) });
    for (const line of text.split("\r\n")) expect(new TextEncoder().encode(line).length).toBeLessThanOrEqual(75);
    expect(text).toContain("\r\n é");
  });

  it("names the file after the event", () => {
    expect(fileName("Café & Jazz: Night!")).toBe("cafe-jazz-night.ics");
    expect(fileName("???")).toBe("event.ics");
  });
});

describe("registration answers", () => {
  const q = (id: string, kind: QuestionKind, required: boolean, choices: string[] = []) =>
    ({ id, label: id, kind, required, choices }) as unknown as Question;
  const questions = [q("diet", QuestionKind.TEXT, true), q("colour", QuestionKind.CHOICE, false, ["red", "blue"]),
    q("guests", QuestionKind.NUMBER, false), q("photos", QuestionKind.CHECKBOX, true)];

  it("names the first missing required answer", () => {
    expect(answers(questions, { photos: true })).toMatchObject({ ok: false, questionId: "diet" });
    expect(answers(questions, { diet: "vegan" })).toMatchObject({ ok: false, questionId: "photos" });
  });

  it("sends what was answered, in the API's shape", () => {
    const r = answers(questions, { diet: " vegan ", colour: "blue", guests: "2,5", photos: true });
    expect(r).toEqual({ ok: true, answers: [
      { questionId: "diet", value: { case: "text", value: "vegan" } },
      { questionId: "colour", value: { case: "choice", value: "blue" } },
      { questionId: "guests", value: { case: "number", value: 2.5 } },
      { questionId: "photos", value: { case: "checked", value: true } },
    ] });
  });

  it("refuses a number that is none and a choice not offered", () => {
    expect(answers(questions, { diet: "x", photos: true, guests: "two" })).toMatchObject({ ok: false, questionId: "guests" });
    expect(answers(questions, { diet: "x", photos: true, colour: "green" })).toMatchObject({ ok: false, questionId: "colour" });
  });

  it("reads choices and prices as organizers write them", () => {
    expect(choiceList("red, blue\nred,, green ")).toEqual(["red", "blue", "green"]);
    expect(price(0, "EUR")).toBe("Free");
    expect(price(1250, "EUR")).toBe("€12.50");
  });
});
