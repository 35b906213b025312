// The link from the verification mail: `#/verify-email?token=…`.
import { account } from "../client";
import { h, problemNotice, show, status } from "../dom";
import { describe } from "../errors";
import { session } from "../session";

export async function verifyPage(main: HTMLElement, params: URLSearchParams): Promise<void> {
  const token = params.get("token") ?? "";
  show(main, h("h1", {}, "Confirm your email"), status("Confirming…"));
  try {
    const r = await account.verifyEmail({ token });
    // A fresh access token carries the confirmed email (creating events
    // needs it); the old one does not.
    const s = session.get();
    if (s) {
      const fresh = (await account.refreshSession({ refreshToken: s.refreshToken })).session;
      if (fresh) session.set({ ...s, accessToken: fresh.accessToken, refreshToken: fresh.refreshToken }, { quiet: true });
    }
    show(main, h("h1", {}, "Confirm your email"),
      h("p", { class: "notice", role: "status" }, `Thank you${r.user ? `, ${r.user.displayName}` : ""}: your email is confirmed.`),
      h("p", {}, h("a", { href: "#/new" }, "Create an event"), " or ", h("a", { href: "#/" }, "discover events"), "."));
  } catch (err) {
    show(main, h("h1", {}, "Confirm your email"), problemNotice(describe(err)));
  }
}
