// Sign in, or sign up: one form, field errors next to their fields.
import { account } from "../client";
import { h, holdFor, problemNotice, show } from "../dom";
import { describe, type Problem } from "../errors";
import { session } from "../session";

export function signInPage(main: HTMLElement, params: URLSearchParams, mode: "signin" | "signup"): void {
  const next = params.get("next") ?? "#/";
  const field = (id: string, label: string, type: string, autocomplete: string) => {
    const input = h("input", { id, name: id, type, autocomplete, required: true, "aria-describedby": `${id}-error` });
    const error = h("p", { id: `${id}-error`, class: "field-error" });
    return { input, error, el: h("div", { class: "field" }, h("label", { for: id }, label), input, error) };
  };
  const name = field("displayName", "Your name", "text", "name");
  const email = field("email", "Email", "email", "email");
  const password = field("password", "Password", "password", mode === "signup" ? "new-password" : "current-password");
  const fields: Record<string, ReturnType<typeof field>> = { display_name: name, email, password };
  const problems = h("div", { "aria-live": "assertive" });
  const button = h("button", { type: "submit" }, mode === "signup" ? "Create account" : "Sign in");

  const showProblem = (p: Problem) => {
    Object.values(fields).forEach((f) => f.error.replaceChildren());
    const f = p.field ? fields[p.field] : undefined;
    if (f) {
      f.error.textContent = p.message;
      f.input.setAttribute("aria-invalid", "true");
      f.input.focus();
      problems.replaceChildren();
    } else {
      problems.replaceChildren(problemNotice(p));
    }
    if (p.retryAfterSecs) holdFor(button, p.retryAfterSecs);
  };

  const submit = async (e: Event) => {
    e.preventDefault();
    try {
      const creds = { email: email.input.value, password: password.input.value };
      const r = mode === "signup"
        ? await account.signUp({ ...creds, displayName: name.input.value })
        : await account.signIn(creds);
      if (!r.session) throw new Error("no session");
      session.set({
        accessToken: r.session.accessToken,
        refreshToken: r.session.refreshToken,
        displayName: r.user?.displayName ?? "",
        userId: r.user?.id ?? "",
      });
      location.hash = next;
    } catch (err) {
      showProblem(describe(err));
    }
  };

  const other = mode === "signup"
    ? h("p", {}, "Have an account? ", h("a", { href: `#/signin?next=${encodeURIComponent(next)}` }, "Sign in"))
    : h("p", {}, "New here? ", h("a", { href: `#/signup?next=${encodeURIComponent(next)}` }, "Create an account"),
      " · ", h("a", { href: "#/forgot" }, "Forgot your password?"));
  show(main,
    h("h1", {}, mode === "signup" ? "Create an account" : "Sign in"),
    h("form", { onsubmit: (e: Event) => void submit(e), novalidate: true },
      mode === "signup" ? name.el : null, email.el, password.el, problems, button),
    other);
}
