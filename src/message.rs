//! Messages between proto JSON and the wire, through prost-reflect: build a
//! request from a fixture's JSON, render a response as canonical JSON,
//! compare with an expectation (exact or partial).

use prost::Message as _;
use prost_reflect::{DynamicMessage, MessageDescriptor, SerializeOptions};
use serde_json::Value;

/// Builds a message of type `desc` from proto JSON; the error is serde's
/// (field name and what was wrong).
pub fn from_json(desc: &MessageDescriptor, json: &Value) -> Result<DynamicMessage, String> {
    DynamicMessage::deserialize(desc.clone(), json).map_err(
        |e| match crate::suggest::unknown_field(desc, json) {
            Some(hint) => hint,
            None => e.to_string(),
        },
    )
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

/// `json` with its one top-level string field padded at its end with `x`, so
/// the encoded message (type `desc`) is exactly `size` bytes. Fails when the
/// message has no string field or several, or when no padding gives `size`
/// (smaller than the message, or a length prefix growing past it).
pub fn sized(desc: &MessageDescriptor, json: &Value, size: usize) -> Result<Value, String> {
    let strings: Vec<(&String, &str)> = json
        .as_object()
        .map(|o| {
            o.iter()
                .filter_map(|(k, v)| Some((k, v.as_str()?)))
                .collect()
        })
        .unwrap_or_default();
    let [(name, text)] = strings[..] else {
        return Err(format!(
            "`size` pads the message's one string field, but it has {}",
            strings.len()
        ));
    };
    let field = desc
        .get_field_by_json_name(name)
        .or_else(|| desc.get_field_by_name(name))
        .ok_or_else(|| format!("no field `{name}`"))?;
    // Computed, not searched: encoding a 4 MiB message several times is slow.
    let varint_len = |n: usize| prost::encoding::encoded_len_varint(n as u64);
    let tag_len = varint_len((field.number() as usize) << 3);
    let field_len = |n: usize| {
        if n == 0 {
            0
        } else {
            tag_len + varint_len(n) + n
        }
    };
    let rest = encode_json(desc, json)?.len() - field_len(text.len());
    let padded_len = (1..=10)
        .filter_map(|prefix| size.checked_sub(rest + tag_len + prefix))
        .find(|&n| n >= text.len() && n > 0 && rest + field_len(n) == size)
        .ok_or_else(|| format!("no padding of `{name}` makes the message exactly {size} bytes"))?;
    let mut padded = json.clone();
    padded[name.as_str()] = Value::String(format!("{text}{}", "x".repeat(padded_len - text.len())));
    Ok(padded)
}

/// Strings longer than this are shortened in transcripts (the order checks of
/// the corpus show a few hundred bytes in full).
const SHOWN_STRING: usize = 1024;

/// `json` with every string longer than 1 KiB shortened to its first 16
/// characters and its length, so a padded 4 MiB message is one short line.
fn shortened(json: &Value) -> Value {
    match json {
        Value::String(s) if s.len() > SHOWN_STRING => {
            let head: String = s.chars().take(16).collect();
            Value::String(format!("{head}…({} bytes)", s.len()))
        }
        Value::Array(items) => Value::Array(items.iter().map(shortened).collect()),
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), shortened(v))).collect())
        }
        other => other.clone(),
    }
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

/// Compact one-line JSON (serde_json keeps the order prost-reflect wrote);
/// strings over 1 KiB show their start and length.
pub fn one_line(json: &Value) -> String {
    serde_json::to_string(&shortened(json)).unwrap_or_else(|e| format!("<unprintable: {e}>"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sized_messages_are_exactly_the_size_asked() {
        let pool = crate::descriptors::Descriptors::contract().unwrap();
        let desc = pool.method("/Greeter/ClientStream").unwrap().input();
        for size in [3, 129, 131, 16_386, 4 * 1024 * 1024, 4 * 1024 * 1024 + 1] {
            let json = sized(&desc, &json!({"data": "a"}), size).unwrap();
            assert_eq!(encode_json(&desc, &json).unwrap().len(), size);
        }
        assert!(sized(&desc, &json!({"data": "abc"}), 2).is_err());
        let record = pool.method("/SensorService/Record").unwrap().input();
        let reading = json!({"device_id": "d", "timestamp": 5});
        let padded = sized(&record, &reading, 1000).unwrap();
        assert_eq!(encode_json(&record, &padded).unwrap().len(), 1000);
        // 129 bytes is a 127-byte text; 128 bytes of text need a 2-byte length.
        assert!(sized(&desc, &json!({"data": "a"}), 130).is_err());
        let two = pool.method("/ChatService/ChatStream").unwrap().input();
        assert!(sized(&two, &json!({"user": "u", "content": "c"}), 100).is_err());
    }

    #[test]
    fn long_strings_are_shortened_in_one_line() {
        let long = "y".repeat(1025);
        assert_eq!(
            one_line(&json!({"data": long, "n": [1]})),
            r#"{"data":"yyyyyyyyyyyyyyyy…(1025 bytes)","n":[1]}"#
        );
    }

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
