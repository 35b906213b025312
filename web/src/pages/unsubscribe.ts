// The unsubscribe link in every mail: `#/unsubscribe?token=…`. Asks
// first (a link opened by a mail scanner must not unsubscribe anyone).
import { account } from "../client";
import { h, problemNotice, show } from "../dom";
import { describe } from "../errors";

export function unsubscribePage(main: HTMLElement, params: URLSearchParams): void {
  const token = params.get("token") ?? "";
  const result = h("div", { "aria-live": "assertive" });
  const confirm = async () => {
    try {
      await account.unsubscribeFromMail({ token });
      result.replaceChildren(h("p", { class: "notice", role: "status" },
        "Done: we will not send you reminders or event news any more. Mails you ask for (sign-in links) still come."));
    } catch (err) {
      result.replaceChildren(problemNotice(describe(err)));
    }
  };
  show(main, h("h1", {}, "Stop CityEvents mails"),
    h("p", {}, "Reminders, confirmations and changes to events you joined will no longer be mailed to you."),
    h("button", { type: "button", onclick: () => void confirm() }, "Unsubscribe"), result);
}
