//! Request templates: text with `{token}`, `{i}` (the request's number),
//! `{uuid}`, `{ip}` (a client address of its own per request, 10.0.0.0/8,
//! for `x-forwarded-for` through a trusted proxy, as traffic from many
//! people arrives) and `{name}` (from `--var name=value`, or from
//! `--round-var name=FILE`: the next line of FILE each time the tokens come
//! round again, so each person joins another event), filled in for every
//! request.

use std::collections::HashMap;
use std::sync::Arc;

/// A named value of the templates.
#[derive(Debug, Clone)]
pub enum Var {
    /// The same for every request.
    Fixed(String),
    /// Line `(i / per) % len` for request `i`.
    Round { lines: Arc<Vec<String>>, per: u64 },
}

#[derive(Debug, Clone)]
enum Part {
    Text(String),
    Token,
    Index,
    Uuid,
    Address,
    Round(Arc<Vec<String>>, u64),
}

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template(Vec<Part>);

impl Template {
    /// Parses `text`, resolving `--var` names now; an unknown `{name}` is an
    /// error (a typo would otherwise send the braces).
    pub fn parse(text: &str, vars: &HashMap<String, Var>) -> anyhow::Result<Self> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            let Some(close) = rest[open..].find('}') else {
                break;
            };
            let name = &rest[open + 1..open + close];
            let is_name =
                !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !is_name {
                // JSON braces: keep them as text.
                parts.push(Part::Text(rest[..open + 1].to_owned()));
                rest = &rest[open + 1..];
                continue;
            }
            parts.push(Part::Text(rest[..open].to_owned()));
            parts.push(match name {
                "token" => Part::Token,
                "i" => Part::Index,
                "uuid" => Part::Uuid,
                "ip" => Part::Address,
                other => match vars.get(other) {
                    Some(Var::Fixed(v)) => Part::Text(v.clone()),
                    Some(Var::Round { lines, per }) if !lines.is_empty() => {
                        Part::Round(lines.clone(), (*per).max(1))
                    }
                    _ => anyhow::bail!("{{{other}}} in {text:?} is not a --var or --round-var"),
                },
            });
            rest = &rest[open + close + 1..];
        }
        parts.push(Part::Text(rest.to_owned()));
        Ok(Self(parts))
    }

    /// The text of request number `i`, sent with `token`.
    pub fn render(&self, i: u64, token: &str) -> String {
        let mut out = String::new();
        for p in &self.0 {
            match p {
                Part::Text(t) => out.push_str(t),
                Part::Token => out.push_str(token),
                Part::Index => out.push_str(&i.to_string()),
                Part::Uuid => out.push_str(&uuid::Uuid::new_v4().to_string()),
                Part::Address => out.push_str(&address(i)),
                Part::Round(lines, per) => {
                    out.push_str(&lines[((i / per) % lines.len() as u64) as usize]);
                }
            }
        }
        out
    }
}

/// The client address of person `i`: one of their own in 10.0.0.0/8.
pub fn address(i: u64) -> String {
    let [_, a, b, c] = (i as u32 & 0x00ff_ffff).to_be_bytes();
    format!("10.{a}.{b}.{c}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_are_filled_and_json_braces_kept() {
        let vars = HashMap::from([("event".to_owned(), Var::Fixed("e1".to_owned()))]);
        let t = Template::parse(r#"{"event_id":"{event}","n":{i},"t":"{token}"}"#, &vars).unwrap();
        assert_eq!(t.render(7, "abc"), r#"{"event_id":"e1","n":7,"t":"abc"}"#);
        let ip = Template::parse("{ip}", &vars).unwrap();
        assert_eq!(ip.render(0x01_0203, ""), "10.1.2.3");
    }

    #[test]
    fn a_round_variable_moves_to_its_next_line_each_time_the_tokens_come_round() {
        let lines = Arc::new(vec!["a".to_owned(), "b".to_owned()]);
        let vars = HashMap::from([("event".to_owned(), Var::Round { lines, per: 3 })]);
        let t = Template::parse("/{event}", &vars).unwrap();
        let seen: Vec<String> = (0..7).map(|i| t.render(i, "")).collect();
        assert_eq!(seen, ["/a", "/a", "/a", "/b", "/b", "/b", "/a"]);
    }

    #[test]
    fn an_unknown_variable_is_an_error() {
        assert!(Template::parse("/v1/events/{evnet}", &HashMap::new()).is_err());
    }
}
