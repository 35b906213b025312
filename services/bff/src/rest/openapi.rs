//! The OpenAPI 3 document of the REST API, generated from the same route
//! table and message descriptors the transcoder serves (`GET /openapi.json`),
//! so the document cannot drift from the routes.

use std::collections::BTreeMap;

use prost_reflect::{FieldDescriptor, Kind, MessageDescriptor};
use serde_json::{Value, json};

use super::routes::{BodyRule, Table};

/// The whole document.
pub fn document(table: &Table) -> Value {
    let mut schemas = BTreeMap::new();
    let mut paths: BTreeMap<String, serde_json::Map<String, Value>> = BTreeMap::new();
    for route in &table.routes {
        let method = &route.method;
        let input = method.input();
        let path_fields: Vec<&str> = route.path_fields().collect();
        let mut parameters: Vec<Value> = path_fields
            .iter()
            .map(|f| {
                json!({"name": f, "in": "path", "required": true, "schema": {"type": "string"}})
            })
            .collect();
        if route.body == BodyRule::None {
            for (name, schema) in query_fields(&input, "", 0) {
                if !path_fields.contains(&name.as_str()) {
                    parameters.push(
                        json!({"name": name, "in": "query", "required": false, "schema": schema}),
                    );
                }
            }
        }
        let mut op = json!({
            "operationId": format!("{}_{}", method.parent_service().name(), method.name()),
            "tags": [method.parent_service().name()],
            "summary": method.name(),
            "parameters": parameters,
            "responses": {
                "200": response(&method.output(), method.is_server_streaming(), &mut schemas),
                "default": {
                    "description": "An error (docs/api.md)",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
                }
            }
        });
        let body_schema = match &route.body {
            BodyRule::None => None,
            BodyRule::All => Some(reference(&input, &mut schemas)),
            BodyRule::Field(f) => input.get_field_by_name(f).and_then(|f| match f.kind() {
                Kind::Message(m) => Some(reference(&m, &mut schemas)),
                _ => None,
            }),
        };
        if let Some(schema) = body_schema {
            op["requestBody"] =
                json!({"required": true, "content": {"application/json": {"schema": schema}}});
        }
        paths
            .entry(route.template.clone())
            .or_default()
            .insert(route.http_method.as_str().to_ascii_lowercase(), op);
    }
    schemas.insert("Error".into(), error_schema());
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "CityEvents public API",
            "version": "v1",
            "description": "REST/JSON view of cityevents.api.v1 (proto3 JSON mapping). The same API is served over gRPC and gRPC-web on this port."
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}
        },
        "security": [{}, {"bearer": []}]
    })
}

fn response(
    output: &MessageDescriptor,
    streaming: bool,
    schemas: &mut BTreeMap<String, Value>,
) -> Value {
    // The one HttpBody answer is an iCalendar document.
    if output.full_name() == "google.api.HttpBody" {
        return json!({
            "description": "An iCalendar document (RFC 5545)",
            "content": {"text/calendar": {"schema": {"type": "string"}}}
        });
    }
    let schema = reference(output, schemas);
    if streaming {
        json!({
            "description": "Server-sent events: `event: update` with one JSON message per `data:` line",
            "content": {"text/event-stream": {"schema": {"type": "string"}}}
        })
    } else {
        json!({"description": "OK", "content": {"application/json": {"schema": schema}}})
    }
}

/// A `$ref` to `msg`'s schema, adding it (and what it uses) to `schemas`.
fn reference(msg: &MessageDescriptor, schemas: &mut BTreeMap<String, Value>) -> Value {
    if let Some(wkt) = well_known(msg) {
        return wkt;
    }
    let name = msg.full_name().to_owned();
    if !schemas.contains_key(&name) {
        schemas.insert(name.clone(), Value::Null);
        let mut props = serde_json::Map::new();
        for field in msg.fields() {
            props.insert(field.json_name().to_owned(), field_schema(&field, schemas));
        }
        schemas.insert(name.clone(), json!({"type": "object", "properties": props}));
    }
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn field_schema(field: &FieldDescriptor, schemas: &mut BTreeMap<String, Value>) -> Value {
    let one = kind_schema(&field.kind(), schemas);
    if field.is_map() {
        let value = match field.kind() {
            Kind::Message(entry) => entry
                .get_field_by_name("value")
                .map_or(json!({}), |v| kind_schema(&v.kind(), schemas)),
            _ => json!({}),
        };
        json!({"type": "object", "additionalProperties": value})
    } else if field.is_list() {
        json!({"type": "array", "items": one})
    } else {
        one
    }
}

fn kind_schema(kind: &Kind, schemas: &mut BTreeMap<String, Value>) -> Value {
    match kind {
        Kind::String => json!({"type": "string"}),
        Kind::Bool => json!({"type": "boolean"}),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
            json!({"type": "integer", "format": "int32"})
        }
        Kind::Uint32 | Kind::Fixed32 => json!({"type": "integer", "format": "int64", "minimum": 0}),
        // The proto3 JSON mapping writes 64-bit integers as strings.
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 | Kind::Uint64 | Kind::Fixed64 => {
            json!({"type": "string", "format": "int64"})
        }
        Kind::Double | Kind::Float => json!({"type": "number"}),
        Kind::Bytes => json!({"type": "string", "format": "byte"}),
        Kind::Enum(e) => {
            json!({"type": "string", "enum": e.values().map(|v| v.name().to_owned()).collect::<Vec<_>>()})
        }
        Kind::Message(m) => reference(m, schemas),
    }
}

fn well_known(msg: &MessageDescriptor) -> Option<Value> {
    Some(match msg.full_name() {
        "google.protobuf.Timestamp" => json!({"type": "string", "format": "date-time"}),
        "google.protobuf.Duration" => {
            json!({"type": "string", "pattern": "^-?[0-9]+(\\.[0-9]+)?s$"})
        }
        "google.protobuf.Empty" => json!({"type": "object"}),
        _ => return None,
    })
}

/// Query parameters of a GET: scalar fields, nested ones dotted (`near.city`).
fn query_fields(msg: &MessageDescriptor, prefix: &str, depth: usize) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for field in msg.fields() {
        let name = format!("{prefix}{}", field.name());
        match field.kind() {
            Kind::Message(m) if well_known(&m).is_some() => {
                out.push((name, well_known(&m).unwrap_or_default()));
            }
            Kind::Message(m) if depth < 2 && !field.is_list() && !field.is_map() => {
                out.extend(query_fields(&m, &format!("{name}."), depth + 1));
            }
            Kind::Message(_) | Kind::Bytes => {}
            kind => {
                let one = kind_schema(&kind, &mut BTreeMap::new());
                let schema = if field.is_list() {
                    json!({"type": "array", "items": one})
                } else {
                    one
                };
                out.push((name, schema));
            }
        }
    }
    out
}

fn error_schema() -> Value {
    json!({
        "type": "object",
        "required": ["code", "reason", "message", "field_violations"],
        "properties": {
            "code": {"type": "string", "description": "gRPC code name, e.g. NOT_FOUND"},
            "reason": {"type": "string", "description": "Stable reason (docs/errors.md), e.g. EVENT_NOT_FOUND"},
            "message": {"type": "string"},
            "field_violations": {
                "type": "array",
                "items": {"type": "object", "properties": {"field": {"type": "string"}, "description": {"type": "string"}}}
            },
            "retry_after": {"type": "integer", "nullable": true, "description": "Seconds to wait before retrying"}
        }
    })
}
