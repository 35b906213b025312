import { describe, expect, it } from "vitest";

import { admit, type DoorList, judge, parseTicket, syncWords } from "../src/door";

const REG = "0193a5b0-0000-7000-8000-00000000000a";
const EVENT = "0193a5b0-0000-7000-8000-0000000000ee";

const bytes = (uuid: string) => Uint8Array.from(uuid.replace(/-/g, "").match(/../g) as string[], (b) => parseInt(b, 16));
const b64url = (b: Uint8Array) => btoa(String.fromCharCode(...b)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");

/** A door key and the ticket codes it signs, as the join service makes them. */
async function issuer() {
  const pair = (await crypto.subtle.generateKey({ name: "Ed25519" }, true, ["sign", "verify"])) as CryptoKeyPair;
  const jwk = await crypto.subtle.exportKey("jwk", pair.publicKey);
  const code = async (reg: string, event: string) => {
    const ids = new Uint8Array([...bytes(reg), ...bytes(event)]);
    const message = new Uint8Array([...new TextEncoder().encode("cityevents-ticket-v1"), ...ids]);
    const sig = new Uint8Array(await crypto.subtle.sign({ name: "Ed25519" }, pair.privateKey, message));
    return b64url(new Uint8Array([...ids, ...sig]));
  };
  const door = (attendees: DoorList["attendees"]): DoorList => ({
    eventId: EVENT, title: "Lantern walk", key: { kty: "OKP", crv: "Ed25519", x: jwk.x as string }, attendees,
    downloadedAt: new Date().toISOString(), pending: [],
  });
  return { code, door };
}

describe("a ticket code", () => {
  it("names its registration and event", async () => {
    const { code } = await issuer();
    const t = parseTicket(await code(REG, EVENT));
    expect(t).toMatchObject({ registrationId: REG, eventId: EVENT });
    expect(t?.signature.length).toBe(64);
  });

  it("is refused when it is not one", () => {
    expect(parseTicket("not-a-ticket")).toBeNull();
    expect(parseTicket("a b c")).toBeNull();
    expect(parseTicket("")).toBeNull();
  });
});

describe("the door offline", () => {
  it("lets in a genuine ticket on the list once, then says it was used", async () => {
    const { code, door } = await issuer();
    const ticket = await code(REG, EVENT);
    let list = door({ [REG]: { checkedIn: false, label: "00000A" } });
    const first = await judge(list, ticket);
    expect(first.kind).toBe("welcome");
    list = admit(list, ticket, REG);
    expect(list.pending).toHaveLength(1);
    expect((await judge(list, ticket)).kind).toBe("already");
  });

  it("knows a ticket checked in before the list was downloaded", async () => {
    const { code, door } = await issuer();
    expect((await judge(door({ [REG]: { checkedIn: true, label: "" } }), await code(REG, EVENT))).kind).toBe("already");
  });

  it("refuses a forged or altered code", async () => {
    const { code, door } = await issuer();
    const list = door({ [REG]: { checkedIn: false, label: "" } });
    const genuine = await code(REG, EVENT);
    const altered = genuine.slice(0, 60) + (genuine[60] === "A" ? "B" : "A") + genuine.slice(61);
    expect((await judge(list, altered)).kind).toBe("forged");
    const other = await issuer();
    expect((await judge(list, await other.code(REG, EVENT))).kind).toBe("forged");
    expect((await judge(list, "junk")).kind).toBe("forged");
  });

  it("tells a ticket for another event, and one not on the list", async () => {
    const { code, door } = await issuer();
    const list = door({});
    expect((await judge(list, await code(REG, "0193a5b0-0000-7000-8000-0000000000ff"))).kind).toBe("other-event");
    expect(await judge(list, await code(REG, EVENT))).toEqual({ kind: "not-on-list", registrationId: REG });
  });

  it("reports a sync in words", () => {
    expect(syncWords(1, 0)).toBe("1 check-in sent.");
    expect(syncWords(3, 1)).toBe("3 check-ins sent; 1 had already been checked in at another door.");
  });
});
