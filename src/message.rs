//! Messages between proto JSON and the wire, through prost-reflect: build a
//! request from a fixture's JSON, render a response as canonical JSON,
//! compare with an expectation (exact or partial).

use prost::Message as _;
use prost_reflect::{DynamicMessage, MessageDescriptor, SerializeOptions};
use serde_json::Value;

/// Builds a message of type `desc` from proto JSON; the error is serde's
/// (field name and what was wrong).
pub fn from_json(desc: &MessageDescriptor, json: &Value) -> Result<DynamicMessage, String> {
    DynamicMessage::deserialize(desc.clone(), json).map_err(|e| e.to_string())
}

/// Encodes proto JSON of type `desc` to protobuf bytes.
pub fn encode_json(desc: &MessageDescriptor, json: &Value) -> Result<Vec<u8>, String> {
    Ok(from_json(desc, json)?.encode_to_vec())
}

/// Decodes protobuf bytes of type `desc` into canonical proto JSON (fields in
/// number order, defaults omitted, 64-bit integers as strings), which makes
/// the text the same whichever implementation produced the bytes.
pub fn decode_to_json(desc: &MessageDescriptor, bytes: &[u8]) -> Result<Value, String> {
    let message = DynamicMessage::decode(desc.clone(), bytes).map_err(|e| e.to_string())?;
    to_json(&message)
}

/// Canonical proto JSON of `message`.
pub fn to_json(message: &DynamicMessage) -> Result<Value, String> {
    let options = SerializeOptions::new().stringify_64_bit_integers(true);
    message
        .serialize_with_options(serde_json::value::Serializer, &options)
        .map_err(|e| e.to_string())
}

/// Canonical JSON of an expectation written in a fixture, so `1000` and
/// `"1000"` for an int64 compare equal.
pub fn canonical(desc: &MessageDescriptor, json: &Value) -> Result<Value, String> {
    to_json(&from_json(desc, json)?)
}

/// Replaces `{i}` in every string of `template` with `i`.
pub fn expand_template(template: &Value, i: u32) -> Value {
    match template {
        Value::String(s) => Value::String(s.replace("{i}", &i.to_string())),
        Value::Array(items) => Value::Array(items.iter().map(|v| expand_template(v, i)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), expand_template(v, i)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Whether `actual` has every field of `expected` with an equal value
/// (recursively for nested messages; lists and scalars must be equal).
/// Absent fields in `actual` are proto3 defaults, so an expected default
/// (`""`, `0`, `false`) matches an absent one.
pub fn partial_match(expected: &Value, actual: &Value) -> bool {
    match (expected, actual) {
        (Value::Object(exp), Value::Object(act)) => exp.iter().all(|(k, v)| match act.get(k) {
            Some(a) => partial_match(v, a),
            None => is_default(v),
        }),
        (e, a) => e == a,
    }
}

/// Whether `v` is what proto3 JSON omits.
fn is_default(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::String(s) => s.is_empty() || s == "0",
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}

/// Compact one-line JSON (serde_json keeps the order prost-reflect wrote).
pub fn one_line(json: &Value) -> String {
    serde_json::to_string(json).unwrap_or_else(|e| format!("<unprintable: {e}>"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn template_numbers_every_string() {
        let t = json!({"data": "m{i}", "n": {"x": ["{i}-{i}"]}, "k": 3});
        assert_eq!(
            expand_template(&t, 7),
            json!({"data": "m7", "n": {"x": ["7-7"]}, "k": 3})
        );
    }

    #[test]
    fn partial_ignores_extra_fields_and_accepts_omitted_defaults() {
        let actual = json!({"user": "server", "content": "echo: a"});
        assert!(partial_match(&json!({"content": "echo: a"}), &actual));
        assert!(partial_match(&json!({"timestamp": "0"}), &actual));
        assert!(!partial_match(&json!({"content": "echo: b"}), &actual));
    }

    #[test]
    fn redaction_only_touches_present_fields() {
        let mut v = json!({"user": "server", "timestamp": "17"});
        crate::normalise::volatile_fields(&mut v, &["timestamp".into(), "absent".into()]);
        assert_eq!(v, json!({"user": "server", "timestamp": "<volatile>"}));
    }
}
