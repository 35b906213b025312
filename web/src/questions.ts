// Registration questions: the answers a joiner's form gives, checked as
// the API will check them (so a missing answer is named next to its field
// before any call), and the organizer's choice lists.
import type { MessageInitShape } from "@bufbuild/protobuf";

import { type Question, QuestionKind } from "./gen/cityevents/event/v1/event_pb";
import type { Answer, AnswerSchema } from "./gen/cityevents/join/v1/join_pb";

export type AnswerInit = MessageInitShape<typeof AnswerSchema>;

/** A form's raw values: text for text, choice and number fields, a flag for checkboxes. */
export type Values = Record<string, string | boolean | undefined>;

/** The answers for `questions` from `values`, or the first field's problem. */
export function answers(questions: Question[], values: Values):
  { ok: true; answers: AnswerInit[] } | { ok: false; questionId: string; message: string } {
  const out: AnswerInit[] = [];
  for (const q of questions) {
    const raw = values[q.id];
    switch (q.kind) {
      case QuestionKind.CHECKBOX:
        if (q.required && raw !== true) return { ok: false, questionId: q.id, message: "Please tick this box to join." };
        out.push({ questionId: q.id, value: { case: "checked", value: raw === true } });
        break;
      case QuestionKind.NUMBER: {
        const text = typeof raw === "string" ? raw.trim() : "";
        if (!text) {
          if (q.required) return { ok: false, questionId: q.id, message: "Please give a number." };
          break;
        }
        const n = Number(text.replace(",", "."));
        if (!Number.isFinite(n)) return { ok: false, questionId: q.id, message: "Please give a number, like 2." };
        out.push({ questionId: q.id, value: { case: "number", value: n } });
        break;
      }
      case QuestionKind.CHOICE: {
        const text = typeof raw === "string" ? raw : "";
        if (!text) {
          if (q.required) return { ok: false, questionId: q.id, message: "Please choose one." };
          break;
        }
        if (!q.choices.includes(text)) return { ok: false, questionId: q.id, message: "Please choose one of the options." };
        out.push({ questionId: q.id, value: { case: "choice", value: text } });
        break;
      }
      default: {
        const text = typeof raw === "string" ? raw.trim() : "";
        if (!text) {
          if (q.required) return { ok: false, questionId: q.id, message: "Please answer this question." };
          break;
        }
        if ([...text].length > 1000) return { ok: false, questionId: q.id, message: "Please keep it under 1,000 characters." };
        out.push({ questionId: q.id, value: { case: "text", value: text } });
      }
    }
  }
  return { ok: true, answers: out };
}

/** "Red, green\nblue" → ["Red", "green", "blue"]: commas or lines, blanks and repeats dropped. */
export function choiceList(text: string): string[] {
  return [...new Set(text.split(/[,\n]/).map((c) => c.trim()).filter(Boolean))];
}

/** An answer as the organizer's list shows it. */
export function answerText(a: Answer): string {
  const v = a.value;
  if (v.case === undefined) return "";
  if (v.case === "checked") return v.value ? "yes" : "no";
  return String(v.value);
}

/** A price in words: 0 → "Free", 1250 EUR → "€12.50". */
export function price(cents: bigint | number, currency: string, locale = "en-GB"): string {
  const n = Number(cents);
  if (!n) return "Free";
  try {
    return new Intl.NumberFormat(locale, { style: "currency", currency: currency || "EUR" }).format(n / 100);
  } catch {
    return `${(n / 100).toFixed(2)} ${currency}`;
  }
}
