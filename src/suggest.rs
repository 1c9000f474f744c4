//! "Did you mean" for names in fixtures: the closest known method or
//! message field to a misspelt one.

use prost_reflect::{Kind, MessageDescriptor};
use serde_json::Value;

/// How similar (Jaro-Winkler, 0..1) a candidate must be to be suggested.
const SIMILAR_ENOUGH: f64 = 0.8;

/// The candidate closest to `word`, if any is close enough.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(word, c), c))
        .filter(|(score, _)| *score >= SIMILAR_ENOUGH)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// The first key of `json` (depth first, into nested messages and lists of
/// them) that is no field of `desc`, as "unknown field `x` at `a.b`", with
/// the closest field name when one is close.
pub fn unknown_field(desc: &MessageDescriptor, json: &Value) -> Option<String> {
    unknown_field_at(desc, json, "")
}

fn unknown_field_at(desc: &MessageDescriptor, json: &Value, at: &str) -> Option<String> {
    let Value::Object(map) = json else {
        return None;
    };
    for (key, value) in map {
        let path = if at.is_empty() {
            key.clone()
        } else {
            format!("{at}.{key}")
        };
        let field = desc
            .get_field_by_json_name(key)
            .or_else(|| desc.get_field_by_name(key));
        let Some(field) = field else {
            let names: Vec<String> = desc.fields().map(|f| f.json_name().to_string()).collect();
            let hint = closest(key, names.iter().map(String::as_str))
                .map_or(String::new(), |c| format!("; did you mean `{c}`?"));
            return Some(format!(
                "unknown field `{path}` in {}{hint}",
                desc.full_name()
            ));
        };
        if let Kind::Message(inner) = field.kind() {
            let found = match value {
                Value::Array(items) => items
                    .iter()
                    .enumerate()
                    .find_map(|(i, item)| unknown_field_at(&inner, item, &format!("{path}[{i}]"))),
                other => unknown_field_at(&inner, other, &path),
            };
            if found.is_some() {
                return found;
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closest_picks_the_near_name_and_refuses_far_ones() {
        let methods = ["/Greeter/SayHello", "/Greeter/ClientStream"];
        assert_eq!(
            closest("/Greeter/SayHelo", methods),
            Some("/Greeter/SayHello")
        );
        assert_eq!(closest("/Billing/Charge", methods), None);
    }

    #[test]
    fn unknown_field_suggests_the_field() {
        let d = crate::descriptors::Descriptors::contract().unwrap();
        let input = d.method("/Greeter/SayHello").unwrap().input();
        let hint = unknown_field(&input, &serde_json::json!({"nmae": "x"})).unwrap();
        assert!(hint.contains("unknown field `nmae`"), "{hint}");
        assert!(hint.contains("did you mean `name`?"), "{hint}");
        assert!(unknown_field(&input, &serde_json::json!({"name": "x"})).is_none());
    }
}
