// What went wrong, in words a person can act on. The API's stable reason
// (the `x-cityevents-error` metadata, docs/errors.md) decides the words;
// the server's message is shown only where it names a field, and
// `retry-after` tells how long to wait.
import { Code, ConnectError } from "@connectrpc/connect";

export interface Problem {
  /** What to tell the person. */
  message: string;
  /** The request field the problem is about (`email`, `draft.title`). */
  field?: string;
  /** Seconds to wait before trying again, when the API says. */
  retryAfterSecs?: number;
  /** The API's stable reason, for code that branches on it. */
  reason: string;
}

const WORDS: Record<string, string> = {
  UNAUTHENTICATED: "Please sign in again.",
  PERMISSION_DENIED: "You are not allowed to do that.",
  NOT_FOUND: "We could not find that. It may have been removed.",
  EVENT_NOT_FOUND: "We could not find that event. It may have been removed.",
  ALREADY_EXISTS: "That already exists.",
  EVENT_CANCELLED: "This event has been cancelled.",
  WAITLIST_FULL: "The event and its waitlist are full.",
  TIER_REMOVED: "That ticket type is no longer offered.",
  TICKET_INVALID: "This is not a valid ticket.",
  CONFLICT: "Someone changed this at the same time. Reload and try again.",
  RESOURCE_EXHAUSTED: "Too many attempts.",
  OVERLOADED: "We are very busy right now.",
  FEED_BEHIND: "Search is catching up with the latest changes.",
  IMAGE_PROCESSING: "The image is still being prepared.",
  UNAVAILABLE: "We cannot reach the service right now. Please try again.",
  DEADLINE_EXCEEDED: "That took too long. Please try again.",
  INTERNAL: "Something went wrong on our side. Please try again later.",
};

const BY_CODE: Partial<Record<Code, string>> = {
  [Code.Unauthenticated]: "UNAUTHENTICATED",
  [Code.PermissionDenied]: "PERMISSION_DENIED",
  [Code.NotFound]: "NOT_FOUND",
  [Code.AlreadyExists]: "ALREADY_EXISTS",
  [Code.Aborted]: "CONFLICT",
  [Code.ResourceExhausted]: "RESOURCE_EXHAUSTED",
  [Code.Unavailable]: "UNAVAILABLE",
  [Code.DeadlineExceeded]: "DEADLINE_EXCEEDED",
  [Code.Internal]: "INTERNAL",
  [Code.Unknown]: "INTERNAL",
};

/** Turns any failure of an API call into a [`Problem`]. */
export function describe(err: unknown): Problem {
  // The request never got an answer (offline, DNS, a dropped connection):
  // fetch's TypeError, bare or wrapped by the transport.
  if (!(err instanceof ConnectError) || (err.code === Code.Unknown && err.cause instanceof TypeError)) {
    return { reason: "NETWORK", message: "We cannot reach CityEvents. Check your connection and try again." };
  }
  const reason = err.metadata.get("x-cityevents-error") ?? BY_CODE[err.code] ?? "INVALID_ARGUMENT";
  const retry = Number(err.metadata.get("retry-after"));
  const retryAfterSecs = Number.isFinite(retry) && retry > 0 ? retry : undefined;
  // A bad field is named first: "email: is not a valid email address".
  const named = /^([a-z_][a-z0-9_.\[\]]*): (.+)$/i.exec(err.rawMessage);
  if (named && (err.code === Code.InvalidArgument || err.code === Code.FailedPrecondition)) {
    // A finer reason has its own words ("This is not a valid ticket.").
    return { reason, field: named[1], message: WORDS[reason] ?? capitalise(named[2]) + ".", retryAfterSecs };
  }
  let message = WORDS[reason];
  if (message === undefined) {
    // Client errors carry a message meant for people (docs/errors.md).
    const fromServer = err.code === Code.InvalidArgument || err.code === Code.FailedPrecondition;
    message = fromServer && err.rawMessage ? capitalise(err.rawMessage) + "." : WORDS.INTERNAL;
  }
  if (retryAfterSecs !== undefined) {
    message += ` Try again in ${waitWords(retryAfterSecs)}.`;
  }
  return { reason, message, retryAfterSecs };
}

/** "5 seconds", "1 minute", "3 minutes". */
export function waitWords(secs: number): string {
  if (secs < 60) return secs === 1 ? "1 second" : `${Math.ceil(secs)} seconds`;
  const mins = Math.ceil(secs / 60);
  return mins === 1 ? "1 minute" : `${mins} minutes`;
}

function capitalise(text: string): string {
  const t = text.replace(/\.$/, "");
  return t.charAt(0).toUpperCase() + t.slice(1);
}
