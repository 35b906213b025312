//! A REST request as a gRPC request message: the JSON body (proto3 JSON
//! mapping, unknown fields refused), then path variables, then query
//! parameters (`page_size=10`, `search.query=jazz`, repeated by repetition).

use prost_reflect::{
    DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, ReflectMessage, Value,
};

use super::routes::{BodyRule, Route, percent_decode};

/// Why a request could not become a message; the text names the field.
#[derive(Debug)]
pub struct BadRequest(pub String);

/// The request message of `route` from its parts.
pub fn message(
    route: &Route,
    body: &[u8],
    vars: &[(String, String)],
    query: Option<&str>,
) -> Result<DynamicMessage, BadRequest> {
    let input = route.method.input();
    let mut msg = DynamicMessage::new(input.clone());
    let has_body = !body.iter().all(u8::is_ascii_whitespace);
    match (&route.body, has_body) {
        (BodyRule::None, true) => {
            return Err(BadRequest(format!(
                "{} {} takes no body",
                route.http_method, route.template
            )));
        }
        (BodyRule::None, false) | (_, false) => {}
        (BodyRule::All, true) => msg = from_json(input, body, "body")?,
        (BodyRule::Field(name), true) => {
            let field = input
                .get_field_by_name(name)
                .ok_or_else(|| BadRequest(format!("no field {name}")))?;
            let Kind::Message(sub) = field.kind() else {
                return Err(BadRequest(format!("{name} is not a message")));
            };
            msg.set_field(&field, Value::Message(from_json(sub, body, name)?));
        }
    }
    for (path, value) in vars {
        set(&mut msg, path, value)?;
    }
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let (Some(k), Some(v)) = (percent_decode(k), percent_decode(v)) else {
            return Err(BadRequest(
                "the query string is not valid percent-encoded UTF-8".into(),
            ));
        };
        set(&mut msg, &k, &v)?;
    }
    Ok(msg)
}

fn from_json(
    desc: MessageDescriptor,
    body: &[u8],
    what: &str,
) -> Result<DynamicMessage, BadRequest> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let msg = DynamicMessage::deserialize(desc, &mut de)
        .and_then(|m| de.end().map(|()| m))
        .map_err(|e| {
            BadRequest(format!(
                "{what}: not a valid JSON request: {}",
                clip(&e.to_string())
            ))
        })?;
    Ok(msg)
}

/// Sets the field at dotted `path` (proto or JSON names) from text.
fn set(msg: &mut DynamicMessage, path: &str, raw: &str) -> Result<(), BadRequest> {
    let (head, rest) = match path.split_once('.') {
        Some((h, r)) => (h, Some(r)),
        None => (path, None),
    };
    let desc = msg.descriptor();
    let unknown = || BadRequest(format!("{}: no such field", clip(path)));
    let field = desc
        .get_field_by_name(head)
        .or_else(|| desc.get_field_by_json_name(head))
        .ok_or_else(unknown)?;
    if let Some(rest) = rest {
        let Value::Message(sub) = msg.get_field_mut(&field) else {
            return Err(unknown());
        };
        return set(sub, rest, raw);
    }
    if field.is_map() {
        return Err(BadRequest(format!(
            "{}: maps cannot be set from the URL",
            field.name()
        )));
    }
    let value = scalar(&field, raw)?;
    if field.is_list() {
        if let Value::List(items) = msg.get_field_mut(&field) {
            items.push(value);
        }
    } else {
        msg.set_field(&field, value);
    }
    Ok(())
}

fn scalar(field: &FieldDescriptor, raw: &str) -> Result<Value, BadRequest> {
    let bad = |what: &str| BadRequest(format!("{}: {what}", field.name()));
    Ok(match field.kind() {
        Kind::String => Value::String(raw.to_owned()),
        Kind::Bool => Value::Bool(raw.parse().map_err(|_| bad("must be true or false"))?),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
            Value::I32(raw.parse().map_err(|_| bad("must be a 32-bit integer"))?)
        }
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
            Value::I64(raw.parse().map_err(|_| bad("must be an integer"))?)
        }
        Kind::Uint32 | Kind::Fixed32 => Value::U32(
            raw.parse()
                .map_err(|_| bad("must be a non-negative integer"))?,
        ),
        Kind::Uint64 | Kind::Fixed64 => Value::U64(
            raw.parse()
                .map_err(|_| bad("must be a non-negative integer"))?,
        ),
        Kind::Double => Value::F64(raw.parse().map_err(|_| bad("must be a number"))?),
        Kind::Float => Value::F32(raw.parse().map_err(|_| bad("must be a number"))?),
        Kind::Enum(e) => {
            let v = e
                .get_value_by_name(raw)
                .or_else(|| raw.parse().ok().and_then(|n| e.get_value(n)))
                .ok_or_else(|| bad("not one of the allowed values"))?;
            Value::EnumNumber(v.number())
        }
        // Well-known types (Timestamp, Duration, wrappers) from their JSON text.
        Kind::Message(m) => {
            let json = serde_json::Value::String(raw.to_owned());
            Value::Message(
                DynamicMessage::deserialize(m, json).map_err(|_| bad("not a valid value"))?,
            )
        }
        Kind::Bytes => return Err(bad("bytes cannot be set from the URL")),
    })
}

/// At most 200 characters of a parser's message: never echo a whole body.
fn clip(s: &str) -> String {
    match s.char_indices().nth(200) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}
