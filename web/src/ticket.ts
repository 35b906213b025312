// A ticket for the door: its code as a QR image, and as text.
import { h } from "./dom";

export function ticket(code: string): HTMLElement {
  const img = h("img", { alt: "Your ticket as a QR code", width: "180", height: "180" });
  // The QR encoder is loaded with the first ticket shown.
  void import("qrcode").then((QRCode) => QRCode.toDataURL(code, { margin: 1, width: 180 }))
    .then((url) => img.setAttribute("src", url));
  return h("figure", { class: "ticket" }, img, h("figcaption", {}, "Ticket code: ", h("code", { class: "ticket-code" }, code)));
}
