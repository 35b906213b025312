// Forgotten password: ask for the mail (`#/forgot`), then set a new one
// from its link (`#/reset-password?token=…`).
import { account } from "../client";
import { h, problemNotice, show } from "../dom";
import { describe } from "../errors";

export function forgotPage(main: HTMLElement): void {
  const email = h("input", { id: "email", name: "email", type: "email", autocomplete: "email", required: true });
  const result = h("div", { "aria-live": "assertive" });
  const submit = async (e: Event) => {
    e.preventDefault();
    try {
      await account.requestPasswordReset({ email: email.value.trim() });
      // The same answer whether or not the address has an account.
      result.replaceChildren(h("p", { class: "notice", role: "status" },
        "If that address has an account, a link to set a new password is on its way."));
    } catch (err) {
      result.replaceChildren(problemNotice(describe(err)));
    }
  };
  show(main, h("h1", {}, "Forgot your password?"),
    h("form", { onsubmit: (e: Event) => void submit(e) },
      h("div", { class: "field" }, h("label", { for: "email" }, "Email"), email),
      h("button", { type: "submit" }, "Send me a link")), result);
}

export function resetPage(main: HTMLElement, params: URLSearchParams): void {
  const token = params.get("token") ?? "";
  const password = h("input", { id: "password", name: "password", type: "password", autocomplete: "new-password",
    required: true, "aria-describedby": "password-error" });
  const error = h("p", { id: "password-error", class: "field-error" });
  const result = h("div", { "aria-live": "assertive" });
  const submit = async (e: Event) => {
    e.preventDefault();
    error.replaceChildren();
    try {
      await account.resetPassword({ token, newPassword: password.value });
      result.replaceChildren(h("p", { class: "notice", role: "status" }, "Your password is set. ",
        h("a", { href: "#/signin" }, "Sign in")));
    } catch (err) {
      const p = describe(err);
      if (p.field === "new_password") error.textContent = p.message;
      else result.replaceChildren(problemNotice(p));
    }
  };
  show(main, h("h1", {}, "Set a new password"),
    h("form", { onsubmit: (e: Event) => void submit(e) },
      h("div", { class: "field" }, h("label", { for: "password" }, "New password"), password, error),
      h("button", { type: "submit" }, "Set password")), result);
}
