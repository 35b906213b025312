// The web app in a real browser (Debian's Chromium, driven by
// playwright-core) against the running mesh, as people use it:
//   an organizer signs up, confirms their email from the link in the mail,
//   creates and publishes an event with a cover;
//   a visitor finds it by a typo'd search and keeps its page open;
//   a second person signs up (a bad email refused next to its field) and
//   takes the only seat: the visitor's page shows it go, live;
//   a third joins the waitlist; the second leaves and the third is
//   promoted on their open page; the organizer checks the third in by the
//   ticket code, and the third sees it under "My tickets";
//   the second resets a forgotten password from the mailed link.
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

const [appUrl, mailsDir, shots] = process.argv.slice(2);
const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");
mkdirSync(shots, { recursive: true });
const run = randomUUID().slice(0, 8);
const title = "Lantern walk";

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox"],
});
const scanned = [];
const scriptErrors = [];

async function person(viewport = { width: 1280, height: 900 }) {
  const page = await (await browser.newContext({ viewport })).newPage();
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
await organizer.getByRole("heading", { name: "Check-in" }).waitFor();
const eventUrl = organizer.url();
console.log("the organizer publishes", JSON.stringify(title), "with a cover:", eventUrl.replace(appUrl, ""));

// 3. A visitor finds it by a typo'd search (the feed projects the stream
//    asynchronously: search again until it shows) and keeps the page open.
const visitor = await person();
const found = visitor.getByRole("link", { name: title });
for (let i = 0; i < 100 && !(await found.count()); i++) {
  if (i) await visitor.waitForTimeout(100);
  const hash = `#/?q=lanten%20walk&n=${i}`;
  await visitor.goto(`${appUrl}/${hash}`);
  await visitor.locator(`section[data-state="done"][data-for="${hash}"]`).waitFor();
}
assert.ok(await found.count(), "a typo'd search finds the event");
await accessible(visitor, "search results");
await photograph(visitor, "search");
console.log("a visitor finds it by searching “lanten walk”");
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
await signUp(joiner, "Grace", eventUrl.slice(eventUrl.indexOf("#")));
await joiner.getByRole("heading", { name: title }).waitFor();
await joiner.getByRole("button", { name: "Join" }).click();
await joiner.getByText("You are going.").waitFor();
await seats(visitor, "Full · join the waitlist");
console.log("the second person takes the only seat; the visitor's page shows it go, live");

// 5. A third joins the waitlist; the second leaves; the third is promoted
//    on their open page.
const waiting = await person();
await signUp(waiting, "Hedy", eventUrl.slice(eventUrl.indexOf("#")));
await waiting.getByRole("heading", { name: title }).waitFor();
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

// 6. The organizer checks the third in at the door by the ticket code.
await organizer.reload();
await organizer.getByLabel("Ticket code").fill(code);
await organizer.getByRole("button", { name: "Check in" }).click();
await organizer.getByText("Checked in. Welcome!").waitFor();
await organizer.getByLabel("Ticket code").fill(code);
await organizer.getByRole("button", { name: "Check in" }).click();
await organizer.getByText("This ticket was already checked in.").waitFor();
await organizer.getByLabel("Ticket code").fill("not-a-ticket");
await organizer.getByRole("button", { name: "Check in" }).click();
await organizer.locator("[role=alert]").waitFor();
console.log("the organizer checks the ticket in; a second scan says it was used; a forged code is refused:",
  await organizer.locator("[role=alert]").textContent());
await accessible(organizer, "check-in");
await photograph(organizer, "check-in");

// 7. The third finds the used ticket under "My tickets".
await waiting.getByRole("link", { name: "My tickets" }).click();
await waiting.getByRole("heading", { name: "My tickets" }).waitFor();
await waiting.getByText("· Checked in").waitFor();
await accessible(waiting, "my tickets");
await photograph(waiting, "my-tickets");
console.log("the third sees the ticket checked in under My tickets");

// 8. The second forgot their password: a link by mail, a new password,
//    and signing in with it.
await joiner.getByRole("button", { name: "Sign out" }).click();
await joiner.goto(`${appUrl}/#/signin`);
await joiner.getByRole("link", { name: "Forgot your password?" }).click();
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

assert.deepEqual(scriptErrors, [], "no script errors on any page");
await browser.close();
console.log(`axe-core: no serious or critical violations on ${scanned.length} pages (${scanned.join(", ")})`);
console.log(`screenshots in ${shots}`);
