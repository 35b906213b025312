//! Answers to an event's registration questions, checked against them.

use std::collections::HashSet;

use cityevents_proto::cityevents::event::v1 as ev;
use cityevents_proto::cityevents::join::v1::{Answer, answer::Value};
use cityevents_runtime::{Error, Result};

/// Checks `answers` against `questions`: known ids, one answer each, the
/// right kind, a listed choice, every required question answered.
pub fn validate(questions: &[ev::Question], answers: &[Answer]) -> Result<Vec<Answer>> {
    let mut seen = HashSet::new();
    for a in answers {
        let q = questions
            .iter()
            .find(|q| q.id == a.question_id)
            .ok_or_else(|| {
                Error::invalid(
                    "answers",
                    format!("no question {:?} on this event", a.question_id),
                )
            })?;
        if !seen.insert(a.question_id.as_str()) {
            return Err(Error::invalid(
                "answers",
                format!("question {:?} answered twice", q.label),
            ));
        }
        check_kind(q, a.value.as_ref())?;
    }
    if let Some(missing) = questions
        .iter()
        .find(|q| q.required && !seen.contains(q.id.as_str()))
    {
        return Err(Error::invalid(
            "answers",
            format!("{:?} is required", missing.label),
        ));
    }
    Ok(answers.to_vec())
}

fn check_kind(q: &ev::Question, value: Option<&Value>) -> Result<()> {
    let wrong = || {
        Error::invalid(
            "answers",
            format!("{:?} needs a {} answer", q.label, kind_name(q.kind())),
        )
    };
    match (q.kind(), value) {
        (ev::QuestionKind::Text, Some(Value::Text(t))) if t.chars().count() <= 1_000 => Ok(()),
        (ev::QuestionKind::Number, Some(Value::Number(n))) if n.is_finite() => Ok(()),
        (ev::QuestionKind::Checkbox, Some(Value::Checked(_))) => Ok(()),
        (ev::QuestionKind::Choice, Some(Value::Choice(c))) if q.choices.contains(c) => Ok(()),
        (ev::QuestionKind::Choice, Some(Value::Choice(_))) => Err(Error::invalid(
            "answers",
            format!("{:?} must be one of {:?}", q.label, q.choices),
        )),
        _ => Err(wrong()),
    }
}

fn kind_name(k: ev::QuestionKind) -> &'static str {
    match k {
        ev::QuestionKind::Text => "text (at most 1000 characters)",
        ev::QuestionKind::Number => "number",
        ev::QuestionKind::Checkbox => "checkbox",
        ev::QuestionKind::Choice => "choice",
        ev::QuestionKind::Unspecified => "known",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(id: &str, kind: ev::QuestionKind, required: bool) -> ev::Question {
        ev::Question {
            id: id.into(),
            label: id.into(),
            kind: kind.into(),
            required,
            choices: vec!["S".into(), "M".into()],
        }
    }

    fn a(id: &str, v: Value) -> Answer {
        Answer {
            question_id: id.into(),
            value: Some(v),
        }
    }

    #[test]
    fn answers_must_match_their_questions() {
        let qs = [
            q("size", ev::QuestionKind::Choice, true),
            q("age", ev::QuestionKind::Number, false),
        ];
        assert!(validate(&qs, &[a("size", Value::Choice("M".into()))]).is_ok());
        assert!(validate(&qs, &[]).is_err(), "required question missing");
        assert!(validate(&qs, &[a("size", Value::Choice("XL".into()))]).is_err());
        assert!(validate(&qs, &[a("size", Value::Text("M".into()))]).is_err());
        assert!(
            validate(
                &qs,
                &[
                    a("size", Value::Choice("M".into())),
                    a("nope", Value::Checked(true))
                ]
            )
            .is_err()
        );
        let twice = [
            a("size", Value::Choice("M".into())),
            a("size", Value::Choice("S".into())),
        ];
        assert!(validate(&qs, &twice).is_err());
        assert!(
            validate(
                &qs,
                &[
                    a("size", Value::Choice("S".into())),
                    a("age", Value::Number(f64::NAN))
                ]
            )
            .is_err()
        );
    }
}
