// The app: a hash router over the pages, and the account link.
import { h, show } from "./dom";
import { createPage } from "./pages/create";
import { discoverPage } from "./pages/discover";
import { eventPage } from "./pages/event";
import { signInPage } from "./pages/signin";
import { unsubscribePage } from "./pages/unsubscribe";
import { verifyPage } from "./pages/verify";
import { session } from "./session";

const main = document.getElementById("main") as HTMLElement;
const accountSlot = document.getElementById("account") as HTMLElement;
let leave: (() => void) | undefined;

async function route(): Promise<void> {
  leave?.();
  leave = undefined;
  const [path, query = ""] = location.hash.replace(/^#/, "").split("?");
  const params = new URLSearchParams(query);
  const event = /^\/events\/([0-9a-f-]{36})$/.exec(path);
  if (event) {
    leave = await eventPage(main, event[1]);
  } else if (path === "/verify-email") {
    await verifyPage(main, params);
  } else if (path === "/unsubscribe") {
    unsubscribePage(main, params);
  } else if (path === "/new") {
    if (session.get()) createPage(main);
    else location.hash = `#/signin?next=${encodeURIComponent("#/new")}`;
  } else if (path === "/signin" || path === "/signup") {
    signInPage(main, params, path === "/signin" ? "signin" : "signup");
  } else {
    await discoverPage(main, params);
  }
  main.focus();
}

function renderAccount(): void {
  const s = session.get();
  show(accountSlot, s
    ? h("span", {}, h("a", { href: "#/new" }, "Create event"), ` · ${s.displayName} · `,
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
