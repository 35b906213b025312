import { describe, expect, it } from "vitest";

import { imageUrl, seats, when } from "../src/format";

describe("seats", () => {
  it("counts what is left, then the waitlist once full", () => {
    expect(seats(10, 7, 0)).toBe("3 of 10 seats left");
    expect(seats(10, 10, 0)).toBe("Full · join the waitlist");
    expect(seats(10, 10, 4)).toBe("Full · 4 on the waitlist");
  });

  it("reads an unlimited event as how many go", () => {
    expect(seats(0, 12, 0)).toBe("12 going");
  });
});

describe("when", () => {
  it("shows the time in the event's own zone", () => {
    const start = new Date("2026-12-12T18:30:00Z");
    expect(when(start, "Europe/Berlin")).toContain("19:30");
    expect(when(start, "America/New_York")).toContain("13:30");
  });

  it("falls back to UTC for a zone it does not know", () => {
    expect(when(new Date("2026-12-12T18:30:00Z"), "Not/AZone")).toContain("2026-12-12T18:30");
  });
});

describe("imageUrl", () => {
  it("puts the API's links on the API's origin", () => {
    expect(imageUrl("/media/abc/card.webp?sig=1", "http://127.0.0.1:8080/")).toBe("http://127.0.0.1:8080/media/abc/card.webp?sig=1");
    expect(imageUrl("https://cdn.example.org/x.webp", "http://api")).toBe("https://cdn.example.org/x.webp");
  });
});
