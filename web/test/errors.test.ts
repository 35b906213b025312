import { Code, ConnectError } from "@connectrpc/connect";
import { describe as suite, expect, it } from "vitest";

import { describe, waitWords } from "../src/errors";

function apiError(code: Code, message: string, meta: Record<string, string> = {}): ConnectError {
  return new ConnectError(message, code, new Headers(meta));
}

suite("describe", () => {
  it("puts a named field's problem next to that field", () => {
    const p = describe(apiError(Code.InvalidArgument, "email: is not a valid email address", { "x-cityevents-error": "INVALID_ARGUMENT" }));
    expect(p).toMatchObject({ field: "email", message: "Is not a valid email address." });
  });

  it("words a finer reason even when the API names the field", () => {
    const p = describe(apiError(Code.InvalidArgument, "ticket_code: is not a valid ticket", { "x-cityevents-error": "TICKET_INVALID" }));
    expect(p).toMatchObject({ field: "ticket_code", message: "This is not a valid ticket." });
  });

  it("words a finer reason from the service instead of its code", () => {
    const p = describe(apiError(Code.FailedPrecondition, "the waitlist is full", { "x-cityevents-error": "WAITLIST_FULL" }));
    expect(p.message).toBe("The event and its waitlist are full.");
  });

  it("tells how long to wait when rate limited", () => {
    const p = describe(apiError(Code.ResourceExhausted, "too many attempts; retry in 90 s", { "x-cityevents-error": "RESOURCE_EXHAUSTED", "retry-after": "90" }));
    expect(p).toMatchObject({ retryAfterSecs: 90, message: "Too many attempts. Try again in 2 minutes." });
  });

  it("never shows a server fault's own text", () => {
    const p = describe(apiError(Code.Internal, "internal error"));
    expect(p.message).toBe("Something went wrong on our side. Please try again later.");
  });

  it("calls a failed fetch a connection problem", () => {
    expect(describe(new TypeError("Failed to fetch")).reason).toBe("NETWORK");
  });
});

suite("waitWords", () => {
  it("counts seconds under a minute and whole minutes after", () => {
    expect([waitWords(1), waitWords(30), waitWords(60), waitWords(61)]).toEqual(["1 second", "30 seconds", "1 minute", "2 minutes"]);
  });

  it("tells a dropped network from a server fault", () => {
    const offline = ConnectError.from(new TypeError("Failed to fetch"));
    expect(describe(offline)).toMatchObject({ reason: "NETWORK", message: "We cannot reach CityEvents. Check your connection and try again." });
    expect(describe(apiError(Code.Unknown, "boom")).reason).toBe("INTERNAL");
  });
});
