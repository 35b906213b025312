// The web app in a real browser (Debian's Chromium, driven by
// playwright-core) against the running mesh, as people use it:
//   an organizer signs up, confirms their email from the link in the mail,
//   creates and publishes an event with a cover and a registration
//   question, and edits it (a stale second edit is refused, not lost);
//   a visitor is slowed down guessing a password (the button waits out the
//   API's retry-after), finds the event by a typo'd search, near a typed
//   city, near their own location and on the map, and keeps its page open;
//   a second person signs up (a bad email refused next to its field),
//   answers the question (a missing answer shown at it) and takes the only
//   seat: the visitor's page shows it go, live;
//   a third joins the waitlist; the second leaves and the third is
//   promoted on their open page; a concert with two ticket types, saved
//   as a draft and then published, gets the second person a seated
//   ticket, which the organizer removes with a reason; the organizer
//   finds both under "My events" and cancels the
//   concert, and the second person's open page says so live; the
//   organizer sees attendees, answers and the waitlist;
//   at the door, a second browser with a camera (a fake capture device
//   playing the ticket's QR code) downloads the list, loses the network,
//   scans the ticket in offline, refuses a forged code, and sends the
//   check-in when the network is back; the third sees it under "My
//   tickets", gets a calendar feed of their events, turns reminders off and
//   reports the event to the moderators;
//   the second resets a forgotten password from the mailed link and
//   unsubscribes with the link in a mail.
// Every page is scanned with axe-core (no serious or critical violations)
// and photographed at desktop and phone sizes.
//
//   node journey.mjs APP_URL MAILS_DIR SCREENSHOT_DIR
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { deflateSync } from "node:zlib";

import { chromium } from "playwright-core";
import QRCode from "qrcode";

const [appUrl, mailsDir, shots] = process.argv.slice(2);
const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");
mkdirSync(shots, { recursive: true });
const run = randomUUID().slice(0, 8);
const title = "Lantern walk";

const chromiumPath = process.env.CHROMIUM ?? "/usr/bin/chromium";
const browser = await chromium.launch({ executablePath: chromiumPath, args: ["--no-sandbox"] });
const scanned = [];
const scriptErrors = [];

async function person(viewport = { width: 1280, height: 900 }, options = {}, on = browser) {
  const page = await (await on.newContext({ viewport, ...options })).newPage();
  page.on("pageerror", (e) => scriptErrors.push(e.message));
  return page;
}

/** axe-core over the page as it is: fails on serious or critical findings. */
async function accessible(page, name) {
  await page.addScriptTag({ content: axeSource });
  const result = await page.evaluate(async () => await window.axe.run(document, { resultTypes: ["violations"] }));
  const bad = result.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  assert.deepEqual(bad.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target).join(", ")})`), [],
    `accessibility of ${name}`);
  scanned.push(name);
}

/** Desktop and phone pictures of the page. */
async function photograph(page, name) {
  const size = page.viewportSize();
  await page.setViewportSize({ width: 1280, height: 900 });
  await page.screenshot({ path: join(shots, `${name}-desktop.png`), fullPage: true });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.screenshot({ path: join(shots, `${name}-phone.png`), fullPage: true });
  await page.setViewportSize(size);
}

async function signUp(page, name, next, email = `${name.toLowerCase()}-${run}@example.org`) {
  await page.goto(`${appUrl}/#/signup?next=${encodeURIComponent(next)}`);
  await page.getByLabel("Your name").fill(name);
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill("browser journey password");
  await page.getByRole("button", { name: "Create account" }).click();
}

const seats = (page, text) => page.waitForFunction((t) => document.querySelector("#seats")?.textContent === t,
  text, { timeout: 15_000 });

/** The link in the newest mail to `to` that contains `path` (the SMTP catcher's files). */
async function linkInMail(to, path) {
  for (let i = 0; i < 100; i++) {
    for (const f of readdirSync(mailsDir).sort().reverse()) {
      // Quoted-printable: soft line breaks and `=3D` undone.
      const raw = readFileSync(join(mailsDir, f), "utf8").replace(/=\r?\n/g, "").replace(/=3D/g, "=");
      if (!raw.includes(to)) continue;
      const link = raw.match(new RegExp(`https?://[^\\s"<>]*${path}\\?token=[\\w-]+`));
      if (link) return link[0];
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`no mail to ${to} with a ${path} link`);
}

/** A 320×180 PNG (a gradient), written by hand: the cover to upload. */
function coverPng(file) {
  const [w, hgt] = [320, 180];
  const rows = Buffer.alloc((w * 3 + 1) * hgt);
  for (let y = 0; y < hgt; y++) {
    for (let x = 0; x < w; x++) rows.set([x % 256, (y * 2) % 256, 160], y * (w * 3 + 1) + 1 + x * 3);
  }
  const crc = (buf) => {
    let c = ~0;
    for (const b of buf) { c ^= b; for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1)); }
    return ~c >>> 0;
  };
  const chunk = (type, data) => {
    const out = Buffer.alloc(12 + data.length);
    out.writeUInt32BE(data.length, 0);
    out.write(type, 4, "ascii");
    data.copy(out, 8);
    out.writeUInt32BE(crc(out.subarray(4, 8 + data.length)), 8 + data.length);
    return out;
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(w, 0); header.writeUInt32BE(hgt, 4); header[8] = 8; header[9] = 2;
  writeFileSync(file, Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]),
    chunk("IHDR", header), chunk("IDAT", deflateSync(rows)), chunk("IEND", Buffer.alloc(0))]));
}

/** A one-frame Y4M video of `text` as a QR code: what the door's fake
 *  camera sees (Chromium's --use-file-for-fake-video-capture). */
function qrVideo(file, text) {
  const { size, data } = QRCode.create(text, { errorCorrectionLevel: "M" }).modules;
  const [w, hgt, scale] = [640, 480, Math.floor(440 / (size + 8))];
  const y = Buffer.alloc(w * hgt, 235);
  const x0 = Math.floor((w - size * scale) / 2);
  const y0 = Math.floor((hgt - size * scale) / 2);
  for (let r = 0; r < size; r++) {
    for (let c = 0; c < size; c++) {
      if (!data[r * size + c]) continue;
      for (let dy = 0; dy < scale; dy++) y.fill(16, (y0 + r * scale + dy) * w + x0 + c * scale, (y0 + r * scale + dy) * w + x0 + (c + 1) * scale);
    }
  }
  const chroma = Buffer.alloc((w / 2) * (hgt / 2) * 2, 128);
  writeFileSync(file, Buffer.concat([Buffer.from(`YUV4MPEG2 W${w} H${hgt} F10:1 Ip A1:1 C420jpeg\nFRAME\n`), y, chroma]));
}

/** Waits for the results of `hash` to be shown (`data-state=done`); an
 *  error in their place fails the journey. */
async function results(page, hash) {
  await page.goto(`${appUrl}/${hash}`);
  const section = page.locator(`section[data-state="done"][data-for="${hash}"]`);
  await section.waitFor();
  assert.equal(await section.locator("[role=alert]").count(), 0, `results of ${hash}: ${await section.innerText()}`);
}

// 1. The organizer signs up and confirms their email from the mail.
const organizer = await person();
await signUp(organizer, "Olga", "#/new");
await organizer.getByRole("heading", { name: "Create an event" }).waitFor();
const verify = await linkInMail(`olga-${run}@example.org`, "verify-email");
assert.ok(verify.startsWith(appUrl), `the mail links to the app: ${verify}`);
await organizer.goto(verify);
await organizer.getByText("your email is confirmed").waitFor();
await accessible(organizer, "email confirmed");
console.log("the organizer confirms their email from the link in the mail");

// 2. ... and creates and publishes an event with a cover.
await organizer.getByRole("link", { name: "Create an event" }).click();
await organizer.getByRole("heading", { name: "Create an event" }).waitFor();
await accessible(organizer, "create form");
const day = new Date(Date.now() + 3 * 86400_000).toISOString().slice(0, 10);
await organizer.getByLabel("Title").fill(title);
await organizer.getByLabel("Description").fill("Paper lanterns along the old harbour.");
await organizer.getByLabel("Starts").fill(`${day}T18:00`);
await organizer.getByLabel("Ends").fill(`${day}T20:00`);
await organizer.getByLabel("Venue").fill("Old harbour");
await organizer.getByLabel("City").fill("Hamburg");
await organizer.getByLabel("Latitude").fill("53.5413");
await organizer.getByLabel("Longitude").fill("9.9842");
await organizer.getByLabel(/^Seats/).fill("1");
await organizer.getByLabel("Category").selectOption("outdoors");
await organizer.getByRole("button", { name: "Add a question" }).click();
await organizer.locator("#q-label-0").fill("Which lantern colour?");
await organizer.locator("#q-kind-0").selectOption({ label: "One of a list" });
await organizer.getByLabel("Required").check();
await organizer.getByLabel("Choices (separated by commas)").fill("red, amber, blue");
coverPng(join(shots, "cover.png"));
await organizer.getByLabel("Cover image").setInputFiles(join(shots, "cover.png"));
await photograph(organizer, "create");
await organizer.getByRole("button", { name: "Create and publish" }).click();
await Promise.race([
  organizer.getByRole("heading", { name: title }).waitFor(),
  organizer.locator("[role=alert], .field-error:not(:empty)").first().waitFor()
    .then(async () => assert.fail(`creating the event failed: ${await organizer.locator("main").innerText()}`)),
]);
await organizer.locator("img.cover[src*='/media/']").waitFor();
const eventUrl = organizer.url();
console.log("the organizer publishes", JSON.stringify(title), "with a cover and a question:", eventUrl.replace(appUrl, ""));
const calendar = decodeURIComponent(await organizer.getByRole("link", { name: "Add to calendar" }).getAttribute("href"));
assert.match(calendar, /^data:text\/calendar;charset=utf-8,BEGIN:VCALENDAR\r\n/);
assert.match(calendar, new RegExp(`SUMMARY:${title}\r\n`));

// ... edits it, and a stale edit from another tab is refused, not lost.
const staleTab = await organizer.context().newPage();
await staleTab.goto(`${eventUrl}/edit`);
await staleTab.getByLabel("Description").waitFor();
await organizer.getByRole("link", { name: "Edit event" }).click();
await organizer.getByLabel("Description").fill("Paper lanterns along the old harbour. Bring a warm coat.");
await accessible(organizer, "edit form");
await organizer.getByRole("button", { name: "Save changes" }).click();
await organizer.getByText("Bring a warm coat.").waitFor();
await staleTab.getByLabel("Title").fill("Lantern walk (stale)");
await staleTab.getByRole("button", { name: "Save changes" }).click();
await staleTab.getByText("Someone changed this at the same time. Reload and try again.").waitFor();
await staleTab.close();
console.log("the organizer edits it; a stale edit from another tab is refused with words, not saved over it");

// 3. A visitor finds it by a typo'd search (the feed projects the stream
//    asynchronously: search again until it shows) and keeps the page open.
const visitor = await person(undefined, {
  geolocation: { latitude: 53.5450, longitude: 9.9700 }, permissions: ["geolocation"],
});
// Guessing a password is slowed down: the API's retry-after holds the button.
await visitor.goto(`${appUrl}/#/signin`);
for (let i = 0; i < 10 && !(await visitor.getByText("Try again in").count()); i++) {
  await visitor.getByLabel("Email").fill(`nobody-${run}@example.org`);
  await visitor.getByLabel("Password").fill(`guess ${i}`);
  await Promise.all([visitor.waitForEvent("requestfinished", (r) => r.url().endsWith("AccountService/SignIn")),
    visitor.getByRole("button", { name: "Sign in", exact: true }).click()]);
  await visitor.locator("[role=alert]").waitFor();
  await visitor.waitForTimeout(100); // the answer rendered
}
const held = visitor.getByRole("button", { name: /^Sign in \(wait \d+ s\)$/ });
assert.ok(await held.isDisabled(), "the sign-in button waits out the retry-after");
await accessible(visitor, "sign-in, rate limited");
console.log("guessing passwords is slowed:", await visitor.locator("[role=alert]").textContent(), "·", await held.textContent());
await results(visitor, "#/");
await accessible(visitor, "discover, trending");
// This run's event, whatever earlier runs left in the same database.
const eventHash = eventUrl.slice(eventUrl.indexOf("#"));
const found = visitor.locator(`ol.cards a[href="${eventHash}"]`);
for (let i = 0; i < 100 && !(await found.count()); i++) {
  if (i) await visitor.waitForTimeout(100);
  await results(visitor, `#/?q=lanten%20walk&n=${i}`);
}
assert.ok(await found.count(), "a typo'd search finds the event");
await accessible(visitor, "search results");
await photograph(visitor, "search");
console.log("a visitor finds it by searching “lanten walk”");
// Near a typed city, with filters, on the map.
await visitor.getByText("Filters").click();
await visitor.getByLabel("Category").selectOption("outdoors");
await visitor.getByLabel("Only events with free seats").check();
await visitor.getByRole("button", { name: "Search" }).click();
await visitor.locator(`section[data-state="done"][data-for*="free=1"]`).waitFor();
assert.ok(await found.count(), "the filters keep it");
await visitor.getByLabel("Near").fill("Hamburg");
await visitor.getByLabel("Within").selectOption("25");
await visitor.getByRole("button", { name: "Go" }).click();
await visitor.getByRole("heading", { name: "Events for “lanten walk”" }).waitFor();
await visitor.locator(`section[data-state="done"][data-for*="place=Hamburg"]`).waitFor();
await visitor.getByText("Within 25 km of Hamburg.").waitFor();
// The map's ground comes from a tile server (the build names one); this
// test serves every tile itself and notes which were asked for.
const tilesAsked = [];
await visitor.route("https://tiles.cityevents.test/**", (route) => {
  tilesAsked.push(new URL(route.request().url()).pathname);
  return route.fulfill({ contentType: "image/png", body: readFileSync(join(shots, "cover.png")) });
});
await visitor.getByRole("link", { name: "Map" }).click();
const pin = visitor.locator(`svg.map a[href="${eventHash}"]`);
await pin.waitFor();
await visitor.getByText("Map: test tiles served by the journey.").waitFor();
await visitor.waitForFunction(() => [...document.querySelectorAll("svg.map image")].length > 0);
const drawn = await visitor.locator("svg.map image").evaluateAll((imgs) => imgs.map((i) => new URL(i.getAttribute("href")).pathname));
for (let i = 0; i < 100 && new Set(tilesAsked).size < new Set(drawn).size; i++) await visitor.waitForTimeout(50);
assert.ok(drawn.length >= 4 && drawn.every((p) => /^\/\d+\/\d+\/\d+\.png$/.test(p)), `tiles drawn: ${drawn}`);
assert.deepEqual([...new Set(tilesAsked)].sort(), [...new Set(drawn)].sort(), "every tile drawn was fetched from the tile server");
await accessible(visitor, "results on the map");
await photograph(visitor, "map");
console.log("near a typed city (Hamburg, 25 km), filtered, it is on the map:", await pin.getAttribute("aria-label"),
  `over ${drawn.length} tiles at zoom ${drawn[0].split("/")[1]}`);
// Near the visitor's own location, nearest first.
await visitor.goto(`${appUrl}/#/?q=lantern%20walk&sort=distance`);
await visitor.getByRole("button", { name: "Use my location" }).click();
await visitor.getByText("Within 10 km of your location.").waitFor();
await visitor.locator(`section[data-state="done"][data-for*="lat=53.5450"]`).waitFor();
const away = await found.locator("xpath=ancestor::li").locator(".muted").textContent();
assert.match(away, / away$/, `the card says how far: ${away}`);
console.log("near the browser's location, nearest first:", away.split(" · ").pop());
await found.click();
await seats(visitor, "1 of 1 seats left");
await accessible(visitor, "event page");
await photograph(visitor, "event");

// 4. A second person signs up on a phone, a bad email first, and joins.
const joiner = await person({ width: 390, height: 844 });
await signUp(joiner, "Grace", "#/", "not an email");
await joiner.locator("#email-error").filter({ hasText: /./ }).waitFor();
await accessible(joiner, "sign-up form with an error");
await photograph(joiner, "signup-error");
console.log("a bad email is refused next to its field:", await joiner.locator("#email-error").textContent());
await signUp(joiner, "Grace", eventHash);
await joiner.getByRole("heading", { name: title }).waitFor();
await joiner.getByRole("button", { name: "Join" }).click();
await joiner.locator("#answer-0-error").filter({ hasText: "Please choose one." }).waitFor();
await accessible(joiner, "event page, a question unanswered");
await joiner.getByLabel("Which lantern colour?").selectOption("amber");
await joiner.getByRole("button", { name: "Join" }).click();
await joiner.getByText("You are going.").waitFor();
await seats(visitor, "Full · join the waitlist");
console.log("the second person takes the only seat; the visitor's page shows it go, live");

// 5. A third joins the waitlist; the second leaves; the third is promoted
//    on their open page.
const waiting = await person();
await signUp(waiting, "Hedy", eventHash);
await waiting.getByRole("heading", { name: title }).waitFor();
await waiting.getByLabel("Which lantern colour?").selectOption("blue");
await waiting.getByRole("button", { name: "Join" }).click();
await waiting.getByText("You are number 1 on the waitlist.").waitFor();
await seats(visitor, "Full · 1 on the waitlist");
await accessible(waiting, "event page, on the waitlist");
console.log("a third person is number 1 on the waitlist");
await joiner.getByRole("button", { name: "Leave" }).click();
await joiner.getByRole("button", { name: "Join" }).waitFor();
await waiting.getByText("You are going.").waitFor({ timeout: 15_000 });
const code = (await waiting.locator(".ticket-code").textContent()).trim();
await waiting.locator("img[alt='Your ticket as a QR code'][src^='data:image/png']").waitFor();
await accessible(waiting, "event page, promoted, with the ticket");
await photograph(waiting, "ticket");
console.log("the second leaves; the third is promoted on their open page, with a ticket and its QR code");

// 5b. Ticket types: the organizer drafts a concert with two, publishes the
//     draft, and the second person takes a seated ticket.
await organizer.getByRole("link", { name: "Create event" }).click();
await organizer.getByLabel("Title").fill("Harbour concert");
await organizer.getByLabel("Starts").fill(`${day}T20:00`);
await organizer.getByLabel("Ends").fill(`${day}T22:00`);
await organizer.getByLabel("Venue").fill("Fish market hall");
await organizer.getByLabel("City").fill("Hamburg");
for (const [n, [name, seatsLeft, cost]] of [["Standing", "1", "0"], ["Seated", "1", "12.50"]].entries()) {
  await organizer.getByRole("button", { name: "Add a ticket type" }).click();
  await organizer.locator(`#tier-name-${n}`).fill(name);
  await organizer.locator(`#tier-seats-${n}`).fill(seatsLeft);
  await organizer.locator(`#tier-price-${n}`).fill(cost);
}
await organizer.getByLabel("Keep it as a draft for now").check();
await photograph(organizer, "create-tiers");
await organizer.getByRole("button", { name: "Save the draft" }).click();
await organizer.getByText("A draft: only organizers see it until it is published.").waitFor();
await organizer.getByRole("link", { name: "Edit event" }).click();
await organizer.getByRole("button", { name: "Publish as it was saved" }).click();
await organizer.getByRole("heading", { name: "Harbour concert", exact: true }).waitFor();
assert.equal(await organizer.getByText("A draft:").count(), 0, "published");
const concertUrl = organizer.url();
await joiner.goto(concertUrl);
await joiner.getByLabel(/^Seated · €12\.50 · 1 left/).check();
await accessible(joiner, "event page, two ticket types");
await photograph(joiner, "tiers");
await joiner.getByRole("button", { name: "Join" }).click();
await joiner.getByText("You are going. (Seated)").waitFor();
console.log("a draft with two ticket types is published; the second person takes a seated ticket");
// The organizer removes that registration, with a reason; the seat is free again.
await organizer.goto(`${concertUrl}/manage`);
const graceRow = organizer.locator("#attendees li", { hasText: "Grace" });
await graceRow.getByText("Seated").waitFor();
await graceRow.getByText(/^Remove /).click();
await graceRow.getByLabel("Reason").fill("The seat is needed for the band.");
await graceRow.getByRole("button", { name: "Remove" }).click();
await organizer.getByText("Nobody has joined yet.").waitFor();
await joiner.getByLabel(/^Seated · €12\.50 · 1 left/).waitFor({ timeout: 15_000 });
console.log("the organizer removes it with a reason; the second person's open page offers the seat again");
// The organizer finds both under "My events" and cancels the concert: the
// second person's open page says so at once.
await organizer.getByRole("link", { name: "My events" }).click();
await organizer.locator("#my-events li", { hasText: "Harbour concert" }).getByText("Published").waitFor();
await organizer.locator("#my-events li", { hasText: title }).waitFor();
await accessible(organizer, "my events");
await organizer.locator("#my-events li", { hasText: "Harbour concert" }).getByRole("link", { name: "Edit" }).click();
await organizer.getByText("Cancel this event").click();
await organizer.getByLabel("Why (everyone who joined is told)").fill("The hall is flooded.");
await organizer.getByRole("button", { name: "Cancel the event" }).click();
await organizer.locator("#event-status", { hasText: "This event has been cancelled." }).waitFor();
await joiner.locator("#event-status", { hasText: "This event has been cancelled." }).waitFor({ timeout: 15_000 });
console.log("the organizer finds both under My events and cancels the concert; the second person's open page says so, live");

// 6. The organizer sees who comes, with their answers, and the waitlist;
//    a typed forged code is refused.
await organizer.goto(`${eventUrl}/manage`);
await organizer.locator("#attendees[data-state=done]").waitFor();
await organizer.locator("#waitlist[data-state=done]").waitFor();
await organizer.getByRole("heading", { name: "Attendees (1)" }).waitFor();
await organizer.locator("#attendees li", { hasText: "Hedy" }).locator("dd", { hasText: "blue" }).waitFor();
await organizer.getByText("Nobody is waiting.").waitFor();
await organizer.getByLabel("Ticket code").fill("not-a-ticket");
await organizer.getByRole("button", { name: "Check in" }).click();
await organizer.locator("#checkin-result [role=alert]", { hasText: "This is not a valid ticket." }).waitFor();
console.log("the organizer sees the attendee by name with their answer; a forged code is refused:",
  await organizer.locator("#checkin-result [role=alert]").textContent());
await accessible(organizer, "attendees and check-in");
await photograph(organizer, "manage");

// 7. The door: a second browser whose camera shows the ticket's QR code.
//    It downloads the list, the network drops, the ticket is scanned in
//    offline, and the check-in is sent when the network is back.
qrVideo(join(shots, "ticket.y4m"), code);
const doorBrowser = await chromium.launch({ executablePath: chromiumPath, args: ["--no-sandbox",
  "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream", `--use-file-for-fake-video-capture=${join(shots, "ticket.y4m")}`] });
const door = await person({ width: 390, height: 844 }, { permissions: ["camera"] }, doorBrowser);
await door.goto(`${appUrl}/#/signin?next=${encodeURIComponent(`${eventHash}/manage`)}`);
await door.getByLabel("Email").fill(`olga-${run}@example.org`);
await door.getByLabel("Password").fill("browser journey password");
await door.getByRole("button", { name: "Sign in" }).click();
await door.getByRole("button", { name: "Download for offline check-in" }).click();
await door.getByText("Ready offline: 1 attendee,").waitFor();
// The app's files are kept by its service worker: the page reloads offline.
await door.evaluate(async () => { await navigator.serviceWorker.ready; });
await door.context().setOffline(true);
await door.reload();
await door.getByRole("heading", { name: `Check-in · ${title}` }).waitFor();
await door.getByRole("button", { name: "Scan with the camera" }).click();
await door.getByText("Checked in. Welcome, Hedy! (Offline: sent when the network is back.)").waitFor({ timeout: 20_000 });
await door.getByText("1 check-in waiting to be sent.").waitFor();
await door.getByRole("button", { name: "Stop the camera" }).click();
await door.getByLabel("Ticket code").fill(code.slice(0, -2) + (code.endsWith("AA") ? "BB" : "AA"));
await door.getByRole("button", { name: "Check in" }).click();
await door.getByText("This is not a valid ticket.").waitFor();
await accessible(door, "the door, offline");
await photograph(door, "door-offline");
console.log("offline (the page reloaded from the service worker's cache), the door's camera reads the ticket's QR code",
  "and lets the third in from the downloaded list; a forged code is refused");
await door.context().setOffline(false);
await door.getByText("1 check-in sent.").waitFor({ timeout: 15_000 });
await door.reload();
await door.getByRole("heading", { name: "Attendees (1)" }).waitFor();
await door.locator("#attendees", { hasText: "Checked in" }).waitFor();
await doorBrowser.close();
await organizer.getByLabel("Ticket code").fill(code);
await organizer.getByRole("button", { name: "Check in" }).click();
await organizer.getByText("This ticket was already checked in.").waitFor();
console.log("back online, the door sends the check-in; the organizer's own scan now says the ticket was used");

// 8. The third finds the used ticket under "My tickets".
// Access tokens live minutes: one the API refuses is renewed with the
// refresh token and the call sent again, unseen.
await waiting.evaluate(() => {
  const s = JSON.parse(localStorage.getItem("cityevents.session"));
  localStorage.setItem("cityevents.session", JSON.stringify({ ...s, accessToken: `${s.accessToken.slice(0, -8)}AAAAAAAA` }));
});
await waiting.getByRole("link", { name: "My tickets" }).click();
await waiting.getByRole("heading", { name: "My tickets" }).waitFor();
await waiting.getByText("· Checked in").waitFor();
await waiting.getByRole("button", { name: "Get a calendar link" }).click();
const feed = (await waiting.locator(".feed-url").textContent()).trim();
const ics = await (await waiting.request.get(feed)).text();
assert.match(ics, new RegExp(`SUMMARY:${title}`), "the calendar feed holds the event");
await accessible(waiting, "my tickets");
await photograph(waiting, "my-tickets");
const renewed = await waiting.evaluate(() => JSON.parse(localStorage.getItem("cityevents.session")).accessToken);
assert.ok(!renewed.endsWith("AAAAAAAA"), "the refused access token was renewed");
console.log("the third's access token is refused and renewed unseen; they see the ticket checked in under My tickets,",
  "and their calendar feed holds the event");

// Mail settings: the third wants no reminders, and it stays so.
await waiting.getByRole("link", { name: "Mail settings" }).click();
await waiting.getByLabel("A reminder the day before").uncheck();
await waiting.getByRole("button", { name: "Save" }).click();
await waiting.getByText("Saved.").waitFor();
await waiting.reload();
await waiting.getByLabel("A reminder the day before").waitFor();
assert.equal(await waiting.getByLabel("A reminder the day before").isChecked(), false, "the setting was kept");
assert.equal(await waiting.getByLabel(/^Confirmations/).isChecked(), true, "the others untouched");
await accessible(waiting, "mail settings");
// Anyone may flag an event for the moderators.
await waiting.goto(eventUrl);
await waiting.getByText("Report this event").click();
await waiting.getByLabel("What is wrong with it?").fill("The lanterns are a fire risk.");
await waiting.getByRole("button", { name: "Report" }).click();
await waiting.getByText("Thank you. The moderators will look at it.").waitFor();
console.log("the third turns reminders off (kept after a reload) and reports the event to the moderators");

// For you: picked from what they joined.
await results(waiting, "#/?mode=for-you");
await accessible(waiting, "for you");
console.log("for you:", (await waiting.locator("section[data-state=done]").innerText()).split("\n")[0]);

// 9. The second forgot their password: a link by mail, a new password,
//    and signing in with it.
await joiner.getByRole("button", { name: "Sign out" }).click();
await joiner.goto(`${appUrl}/#/signin`);
await joiner.getByRole("link", { name: "Forgot your password?" }).click();
await accessible(joiner, "forgot password");
await joiner.getByLabel("Email").fill(`grace-${run}@example.org`);
await joiner.getByRole("button", { name: "Send me a link" }).click();
await joiner.getByText("a link to set a new password is on its way").waitFor();
await joiner.goto(await linkInMail(`grace-${run}@example.org`, "reset-password"));
await joiner.getByLabel("New password").fill("a brand new passphrase");
await joiner.getByRole("button", { name: "Set password" }).click();
await joiner.getByText("Your password is set.").waitFor();
await accessible(joiner, "new password set");
await joiner.getByRole("link", { name: "Sign in" }).last().click();
await joiner.getByLabel("Email").fill(`grace-${run}@example.org`);
await joiner.getByLabel("Password").fill("a brand new passphrase");
await joiner.getByRole("button", { name: "Sign in" }).click();
await joiner.getByRole("heading", { name: "Discover events" }).waitFor();
await joiner.getByText("Grace ·").waitFor();
console.log("the second resets a forgotten password from the mailed link and signs in with the new one");
// ... and stops the mails with the link at the foot of one.
await joiner.goto(await linkInMail(`grace-${run}@example.org`, "unsubscribe"));
await joiner.getByRole("button", { name: "Unsubscribe" }).click();
await joiner.getByText("Done: we will not send you reminders").waitFor();
await accessible(joiner, "unsubscribed");
console.log("the second unsubscribes with the link in a mail");

assert.deepEqual(scriptErrors, [], "no script errors on any page");
await browser.close();
console.log(`axe-core: no serious or critical violations on ${scanned.length} pages (${scanned.join(", ")})`);
console.log(`screenshots in ${shots}`);
