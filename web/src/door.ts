// The door, online or not. Ticket codes are signed (GetTicketKey's
// Ed25519 key): a door that downloaded the key and the attendee list keeps
// checking people in when the network drops — the signature proves the
// code, the list says whether it holds a place — and keeps each check-in
// to send when the network is back (CheckIn is idempotent, so a resend is
// harmless; a ticket checked in at another door meanwhile is reported).

/** A ticket code: base64url(registration id ‖ event id ‖ signature) over
 *  "cityevents-ticket-v1" ‖ registration id ‖ event id (16-byte UUIDs). */
export interface TicketCode {
  registrationId: string;
  eventId: string;
  signed: Uint8Array;
  signature: Uint8Array;
}

export interface DoorList {
  eventId: string;
  /** The event's title, for a page opened offline. */
  title: string;
  /** The public key as a JWK (kty OKP, crv Ed25519, x). */
  key: { kty: string; crv: string; x: string };
  /** Registration id → checked in already when downloaded. */
  attendees: Record<string, { checkedIn: boolean; label: string }>;
  downloadedAt: string;
  /** Check-ins made offline, not yet sent. */
  pending: { code: string; registrationId: string; at: string }[];
}

export type Verdict =
  | { kind: "welcome"; registrationId: string; label: string }
  | { kind: "already"; registrationId: string; label: string }
  | { kind: "not-on-list"; registrationId: string }
  | { kind: "other-event" }
  | { kind: "forged" };

const PREFIX = new TextEncoder().encode("cityevents-ticket-v1");

/** Splits a code; null when it is not one (wrong length or alphabet). */
export function parseTicket(code: string): TicketCode | null {
  const bytes = fromBase64Url(code.trim());
  if (!bytes || bytes.length !== 96) return null;
  const signed = new Uint8Array(PREFIX.length + 32);
  signed.set(PREFIX);
  signed.set(bytes.subarray(0, 32), PREFIX.length);
  return {
    registrationId: uuid(bytes.subarray(0, 16)),
    eventId: uuid(bytes.subarray(16, 32)),
    signed,
    signature: bytes.slice(32),
  };
}

/** Decides at the door without the network: signature, event, list. Does
 *  not change `door`; `admit` does. */
export async function judge(door: DoorList, code: string): Promise<Verdict> {
  const t = parseTicket(code);
  if (!t) return { kind: "forged" };
  const key = await crypto.subtle.importKey("jwk", { kty: door.key.kty, crv: door.key.crv, x: door.key.x },
    { name: "Ed25519" }, false, ["verify"]);
  const genuine = await crypto.subtle.verify({ name: "Ed25519" }, key, t.signature as BufferSource, t.signed as BufferSource);
  if (!genuine) return { kind: "forged" };
  if (t.eventId !== door.eventId) return { kind: "other-event" };
  const who = door.attendees[t.registrationId];
  if (!who) return { kind: "not-on-list", registrationId: t.registrationId };
  const used = who.checkedIn || door.pending.some((p) => p.registrationId === t.registrationId);
  return { kind: used ? "already" : "welcome", registrationId: t.registrationId, label: who.label };
}

/** Records an offline check-in for sending later. */
export function admit(door: DoorList, code: string, registrationId: string, at = new Date()): DoorList {
  return { ...door, pending: [...door.pending, { code: code.trim(), registrationId, at: at.toISOString() }] };
}

/** What a sync did, in words: "2 check-ins sent; 1 had been checked in at another door." */
export function syncWords(sent: number, elsewhere: number): string {
  const s = sent === 1 ? "1 check-in sent" : `${sent} check-ins sent`;
  if (!elsewhere) return `${s}.`;
  return `${s}; ${elsewhere === 1 ? "1 had" : `${elsewhere} had`} already been checked in at another door.`;
}

/** A door list kept in this browser, one per event. */
export const doorStore = {
  key: (eventId: string) => `cityevents.door.${eventId}`,
  load(eventId: string): DoorList | null {
    try {
      return JSON.parse(localStorage.getItem(this.key(eventId)) ?? "null") as DoorList | null;
    } catch {
      return null;
    }
  },
  save(door: DoorList): void {
    localStorage.setItem(this.key(door.eventId), JSON.stringify(door));
  },
};

function fromBase64Url(s: string): Uint8Array | null {
  if (!/^[A-Za-z0-9_-]+$/.test(s)) return null;
  try {
    const bin = atob(s.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (s.length % 4)) % 4));
    return Uint8Array.from(bin, (c) => c.charCodeAt(0));
  } catch {
    return null;
  }
}

function uuid(b: Uint8Array): string {
  const hex = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
