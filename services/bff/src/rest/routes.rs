//! The REST route table, read from the `google.api.http` rules in the
//! descriptor set: no route is written by hand.

use http::Method;
use prost_reflect::{DescriptorPool, MethodDescriptor, Value};

/// Where a REST request's body goes in the gRPC request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyRule {
    /// No body (`GET`, `DELETE`): fields come from the path and query.
    None,
    /// `body: "*"`: the body is the whole request message.
    All,
    /// `body: "draft"`: the body is that field.
    Field(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    /// A field path, e.g. `event_id`.
    Field(String),
}

/// One `google.api.http` rule.
#[derive(Debug, Clone)]
pub struct Route {
    pub http_method: Method,
    /// As written in the proto, e.g. `/v1/events/{event_id}:publish`.
    pub template: String,
    segments: Vec<Segment>,
    verb: Option<String>,
    /// `/cityevents.api.v1.EventsService/PublishEvent`.
    pub grpc_path: String,
    pub method: MethodDescriptor,
    pub body: BodyRule,
}

impl Route {
    /// The path's field names, in order.
    pub fn path_fields(&self) -> impl Iterator<Item = &str> {
        self.segments.iter().filter_map(|s| match s {
            Segment::Field(f) => Some(f.as_str()),
            Segment::Literal(_) => None,
        })
    }

    /// The path variables when `path` matches this route's template.
    fn matches(&self, path: &str) -> Option<Vec<(String, String)>> {
        let path = path.strip_prefix('/')?;
        let (path, verb) = split_verb(path);
        if verb != self.verb.as_deref() {
            return None;
        }
        let parts: Vec<&str> = path.split('/').collect();
        if parts.len() != self.segments.len() {
            return None;
        }
        let mut vars = Vec::new();
        for (part, seg) in parts.iter().zip(&self.segments) {
            match seg {
                Segment::Literal(l) if l == part => {}
                Segment::Literal(_) => return None,
                Segment::Field(f) => {
                    if part.is_empty() {
                        return None;
                    }
                    vars.push((f.clone(), percent_decode(part)?));
                }
            }
        }
        Some(vars)
    }
}

/// What a path and method found.
pub enum Found<'a> {
    Route(&'a Route, Vec<(String, String)>),
    /// The path exists with other methods.
    WrongMethod(Vec<Method>),
    Nothing,
}

/// Every rule of the served services.
#[derive(Debug, Clone, Default)]
pub struct Table {
    pub routes: Vec<Route>,
}

impl Table {
    /// The rules of `services` (full names) in `pool`.
    pub fn from_pool(pool: &DescriptorPool, services: &[&str]) -> anyhow::Result<Self> {
        let http = pool
            .get_extension_by_name("google.api.http")
            .ok_or_else(|| anyhow::anyhow!("google.api.http is not in the descriptor set"))?;
        let mut routes = Vec::new();
        for name in services {
            let service = pool
                .get_service_by_name(name)
                .ok_or_else(|| anyhow::anyhow!("service {name} is not in the descriptor set"))?;
            for method in service.methods() {
                let options = method.options();
                if !options.has_extension(&http) {
                    continue;
                }
                let Value::Message(rule) = options.get_extension(&http).into_owned() else {
                    continue;
                };
                let text = |f: &str| match rule.get_field_by_name(f).as_deref() {
                    Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
                    _ => None,
                };
                let Some((http_method, template)) = [
                    (Method::GET, "get"),
                    (Method::POST, "post"),
                    (Method::PUT, "put"),
                    (Method::DELETE, "delete"),
                    (Method::PATCH, "patch"),
                ]
                .into_iter()
                .find_map(|(m, f)| text(f).map(|t| (m, t))) else {
                    continue;
                };
                let body = match text("body").as_deref() {
                    None => BodyRule::None,
                    Some("*") => BodyRule::All,
                    Some(f) => BodyRule::Field(f.to_owned()),
                };
                routes.push(parse(http_method, &template, &method, body)?);
            }
        }
        Ok(Self { routes })
    }

    /// The route for `method` and `path`.
    pub fn find(&self, method: &Method, path: &str) -> Found<'_> {
        let mut allowed = Vec::new();
        for route in &self.routes {
            if let Some(vars) = route.matches(path) {
                if route.http_method == method {
                    return Found::Route(route, vars);
                }
                allowed.push(route.http_method.clone());
            }
        }
        if allowed.is_empty() {
            Found::Nothing
        } else {
            Found::WrongMethod(allowed)
        }
    }
}

fn parse(
    http_method: Method,
    template: &str,
    method: &MethodDescriptor,
    body: BodyRule,
) -> anyhow::Result<Route> {
    let path = template
        .strip_prefix('/')
        .ok_or_else(|| anyhow::anyhow!("{template}: a template starts with /"))?;
    let (path, verb) = split_verb(path);
    let segments = path
        .split('/')
        .map(
            |s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(field) => Segment::Field(field.to_owned()),
                None => Segment::Literal(s.to_owned()),
            },
        )
        .collect();
    let grpc_path = format!("/{}/{}", method.parent_service().full_name(), method.name());
    Ok(Route {
        http_method,
        template: template.to_owned(),
        segments,
        verb: verb.map(str::to_owned),
        grpc_path,
        method: method.clone(),
        body,
    })
}

/// `events/{id}:publish` → (`events/{id}`, `publish`): a verb follows the
/// last `:` that is not inside a variable.
fn split_verb(path: &str) -> (&str, Option<&str>) {
    let last = path.rsplit('/').next().unwrap_or(path);
    match last.rfind(':') {
        Some(i) if !last[i..].contains('}') => {
            let at = path.len() - last.len() + i;
            (&path[..at], Some(&path[at + 1..]))
        }
        _ => (path, None),
    }
}

/// `%2F` → `/`; `None` for broken escapes or text that is not UTF-8.
pub fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Table {
        let pool = DescriptorPool::decode(cityevents_proto::FILE_DESCRIPTOR_SET).unwrap();
        Table::from_pool(
            &pool,
            &[
                "cityevents.api.v1.EventsService",
                "cityevents.api.v1.RegistrationsService",
            ],
        )
        .unwrap()
    }

    #[test]
    fn routes_come_from_the_http_rules_with_their_variables_and_verbs() {
        let t = table();
        let Found::Route(r, vars) = t.find(&Method::POST, "/v1/events/e%2D1:publish") else {
            panic!("no route");
        };
        assert_eq!(r.grpc_path, "/cityevents.api.v1.EventsService/PublishEvent");
        assert_eq!(vars, vec![("event_id".into(), "e-1".into())]);
        let Found::Route(r, _) = t.find(&Method::GET, "/v1/events/abc") else {
            panic!("no route");
        };
        assert_eq!(r.method.name(), "GetEvent");
        let Found::Route(r, vars) = t.find(&Method::DELETE, "/v1/events/a/attendees/b") else {
            panic!("no route");
        };
        assert_eq!(r.method.name(), "RemoveAttendee");
        assert_eq!(vars.len(), 2);
        assert_eq!(
            t.find(&Method::POST, "/v1/events").body(),
            Some(BodyRule::Field("draft".into()))
        );
    }

    #[test]
    fn a_known_path_with_another_method_is_told_apart_from_an_unknown_path() {
        let t = table();
        assert!(
            matches!(t.find(&Method::PATCH, "/v1/events/abc"), Found::WrongMethod(m) if m.contains(&Method::GET))
        );
        assert!(matches!(
            t.find(&Method::GET, "/v1/nothing/here"),
            Found::Nothing
        ));
        assert!(matches!(
            t.find(&Method::GET, "/v1/events/"),
            Found::Nothing
        ));
        assert!(matches!(
            t.find(&Method::POST, "/v1/events/abc:nope"),
            Found::Nothing
        ));
    }

    impl Found<'_> {
        fn body(&self) -> Option<BodyRule> {
            match self {
                Found::Route(r, _) => Some(r.body.clone()),
                _ => None,
            }
        }
    }
}
