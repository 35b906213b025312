// The app: a hash router over the pages, and the account link.
import { h, show } from "./dom";
import { myEventsPage, settingsPage } from "./pages/account";
import { createPage, editPage } from "./pages/create";
import { discoverPage } from "./pages/discover";
import { eventPage } from "./pages/event";
import { managePage } from "./pages/manage";
import { forgotPage, resetPage } from "./pages/reset";
import { signInPage } from "./pages/signin";
import { ticketsPage } from "./pages/tickets";
import { unsubscribePage } from "./pages/unsubscribe";
import { verifyPage } from "./pages/verify";
import { session } from "./session";

const main = document.getElementById("main") as HTMLElement;
const accountSlot = document.getElementById("account") as HTMLElement;
let leave: (() => void) | undefined;

let current = 0;

/** Shows the page the hash names, in a view of its own: a page still
 *  loading when the person moves on renders into its detached view, never
 *  over the next page, and its live stream is stopped. */
async function route(): Promise<void> {
  leave?.();
  leave = undefined;
  const mine = ++current;
  const view = h("div");
  main.replaceChildren(view);
  const [path, query = ""] = location.hash.replace(/^#/, "").split("?");
  const params = new URLSearchParams(query);
  const event = /^\/events\/([0-9a-f-]{36})(?:\/(edit|manage))?$/.exec(path);
  const signedIn = () => {
    if (!session.get()) location.hash = `#/signin?next=${encodeURIComponent(location.hash)}`;
    return !!session.get();
  };
  if (event && event[2] === "edit") {
    if (signedIn()) await editPage(view, event[1]);
  } else if (event) {
    if (event[2] === "manage" && !signedIn()) return;
    const stop = await (event[2] === "manage" ? managePage : eventPage)(view, event[1]);
    if (mine === current) leave = stop;
    else stop();
  } else if (path === "/verify-email") {
    await verifyPage(view, params);
  } else if (path === "/forgot") {
    forgotPage(view);
  } else if (path === "/reset-password") {
    resetPage(view, params);
  } else if (path === "/tickets") {
    if (signedIn()) await ticketsPage(view);
  } else if (path === "/unsubscribe") {
    unsubscribePage(view, params);
  } else if (path === "/my-events") {
    if (signedIn()) await myEventsPage(view);
  } else if (path === "/settings") {
    if (signedIn()) await settingsPage(view);
  } else if (path === "/new") {
    if (signedIn()) createPage(view);
  } else if (path === "/signin" || path === "/signup") {
    signInPage(view, params, path === "/signin" ? "signin" : "signup");
  } else {
    await discoverPage(view, params);
  }
  if (mine === current) main.focus();
}

function renderAccount(): void {
  const s = session.get();
  show(accountSlot, s
    ? h("span", {}, h("a", { href: "#/tickets" }, "My tickets"), " · ", h("a", { href: "#/my-events" }, "My events"),
      " · ", h("a", { href: "#/new" }, "Create event"), " · ", h("a", { href: "#/settings" }, "Mail settings"),
      ` · ${s.displayName} · `,
      h("button", { class: "link", type: "button", onclick: () => session.set(null) }, "Sign out"))
    : h("a", { href: "#/signin" }, "Sign in"));
}

session.onChange(() => {
  renderAccount();
  void route();
});
window.addEventListener("hashchange", () => void route());
renderAccount();
void route();

// The app's files kept for offline use (public/sw.js); browsers allow it
// on https and localhost only.
if ("serviceWorker" in navigator && window.isSecureContext && import.meta.env.PROD) {
  void navigator.serviceWorker.register("sw.js").catch(() => undefined);
}
