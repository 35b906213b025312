// The web app in a real browser (Debian's Chromium, driven by
// playwright-core) against the running mesh:
//   a visitor finds the handed-off event by a typo'd search and opens it;
//   a second person signs up in another browser context, opens the same
//   event and joins; the visitor's page shows the seat count drop live
//   (LiveService.WatchEvent over gRPC-web); the joiner leaves again.
// Every page is scanned with axe-core (no serious or critical violations)
// and photographed at desktop and phone sizes.
//
//   node journey.mjs APP_URL HANDOFF.json SCREENSHOT_DIR
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { mkdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";

import { chromium } from "playwright-core";

const [appUrl, handoffFile, shots] = process.argv.slice(2);
const { browserEventId: eventId } = JSON.parse(readFileSync(handoffFile, "utf8"));
const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");
mkdirSync(shots, { recursive: true });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox"],
});
const scanned = [];

/** axe-core over the page as it is: fails on serious or critical findings. */
async function accessible(page, name) {
  await page.addScriptTag({ content: axeSource });
  const result = await page.evaluate(async () => await window.axe.run(document, { resultTypes: ["violations"] }));
  const bad = result.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  assert.deepEqual(bad.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target).join(", ")})`), [],
    `accessibility of ${name}`);
  scanned.push(`${name} (${result.violations.length} minor)`);
}

/** Desktop and phone pictures of the page. */
async function photograph(page, name) {
  await page.screenshot({ path: join(shots, `${name}-desktop.png`), fullPage: true });
  const size = page.viewportSize();
  await page.setViewportSize({ width: 390, height: 844 });
  await page.screenshot({ path: join(shots, `${name}-phone.png`), fullPage: true });
  await page.setViewportSize(size);
}

const visitor = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
const failures = [];
visitor.on("pageerror", (e) => failures.push(e.message));

// A typo'd search finds the event once the feed has it (it projects the
// stream asynchronously: search again until it shows).
/** Opens the discover page at `hash` and waits for its results. */
async function discover(hash) {
  await visitor.goto(`${appUrl}/${hash}`);
  await visitor.locator(`section[data-state="done"][data-for="${hash}"]`).waitFor();
}

await discover("#/");
await visitor.getByRole("heading", { name: "Discover events" }).waitFor();
await accessible(visitor, "discover");
await photograph(visitor, "discover");
const found = visitor.getByRole("link", { name: "Browser night" });
for (let i = 0; i < 100 && !(await found.count()); i++) {
  if (i) await visitor.waitForTimeout(100);
  await discover(`#/?q=browsr%20night&n=${i}`);
}
assert.ok(await found.count(), "a typo'd search finds the event");
await accessible(visitor, "search results");
await photograph(visitor, "search");
console.log("a visitor finds “Browser night” by searching “browsr night”");

await found.click();
await visitor.getByRole("heading", { name: "Browser night" }).waitFor();
const seatsOf = (page) => page.locator("#seats");
await visitor.waitForFunction(() => document.querySelector("#seats")?.textContent === "2 of 2 seats left");
await visitor.getByRole("link", { name: "Sign in to join" }).waitFor();
await accessible(visitor, "event page");
await photograph(visitor, "event");
console.log("the event page shows", await seatsOf(visitor).textContent());

// A second person signs up in a browser of their own and joins.
const joiner = await (await browser.newContext({ viewport: { width: 390, height: 844 } })).newPage();
joiner.on("pageerror", (e) => failures.push(e.message));
await joiner.goto(`${appUrl}/#/signup?next=${encodeURIComponent(`#/events/${eventId}`)}`);
await joiner.getByRole("heading", { name: "Create an account" }).waitFor();
await accessible(joiner, "sign-up form");
// A bad email is named next to its field.
await joiner.getByLabel("Your name").fill("Grace");
await joiner.getByLabel("Email").fill("not an email");
await joiner.getByLabel("Password").fill("browser journey password");
await joiner.getByRole("button", { name: "Create account" }).click();
await joiner.locator("#email-error").filter({ hasText: /./ }).waitFor();
console.log("a bad email is refused next to its field:", await joiner.locator("#email-error").textContent());
await accessible(joiner, "sign-up form with an error");
await photograph(joiner, "signup-error");
await joiner.getByLabel("Email").fill(`grace-${randomUUID().slice(0, 8)}@example.org`);
await joiner.getByRole("button", { name: "Create account" }).click();
await joiner.getByRole("heading", { name: "Browser night" }).waitFor();
await joiner.getByRole("button", { name: "Join" }).click();
await joiner.getByText("You are going.").waitFor();
console.log("the second person joins in their own browser");

// The visitor's page follows over the live stream, without a reload.
await visitor.waitForFunction(() => document.querySelector("#seats")?.textContent === "1 of 2 seats left",
  null, { timeout: 15_000 });
console.log("the visitor's page shows", await seatsOf(visitor).textContent(), "live");
await accessible(joiner, "event page, signed in and going");
await photograph(joiner, "event-going");

await joiner.getByRole("button", { name: "Leave" }).click();
await joiner.getByRole("button", { name: "Join" }).waitFor();
await visitor.waitForFunction(() => document.querySelector("#seats")?.textContent === "2 of 2 seats left",
  null, { timeout: 15_000 });
console.log("leaving gives the seat back, live on the visitor's page too");

assert.deepEqual(failures, [], "no script errors on any page");
await browser.close();
console.log(`axe-core: no serious or critical violations on ${scanned.join("; ")}`);
console.log(`screenshots in ${shots}`);
