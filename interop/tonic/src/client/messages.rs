//! Proto3 JSON <-> the prost-generated messages (through prost-reflect and
//! the descriptor set build.rs kept), `send_many` templates, and metadata
//! both ways.

use std::sync::OnceLock;

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, SerializeOptions};
use tonic::metadata::{
    AsciiMetadataKey, BinaryMetadataKey, KeyAndValueRef, MetadataMap, MetadataValue,
};

/// Base64 as `-bin` metadata may come: padded or not.
const LENIENT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

fn pool() -> &'static DescriptorPool {
    static POOL: OnceLock<DescriptorPool> = OnceLock::new();
    POOL.get_or_init(|| {
        DescriptorPool::decode(&include_bytes!(concat!(env!("OUT_DIR"), "/descriptors.bin"))[..])
            .expect("build.rs wrote a valid descriptor set")
    })
}

/// The descriptor of a message of the contract's protos (`HelloRequest`,
/// `conform.v1.CallQuery`, ...).
pub fn descriptor(full_name: &str) -> MessageDescriptor {
    pool()
        .get_message_by_name(full_name)
        .unwrap_or_else(|| panic!("{full_name} is not in ../../proto"))
}

/// Parses proto3 JSON of `descriptor` into the prost message `M`.
pub fn from_json<M: prost::Message + Default>(
    descriptor: &MessageDescriptor,
    json: &serde_json::Value,
) -> Result<M, String> {
    let dynamic = DynamicMessage::deserialize(descriptor.clone(), json).map_err(|e| {
        format!(
            "message {json} is not proto3 JSON of {}: {e}",
            descriptor.full_name()
        )
    })?;
    dynamic.transcode_to::<M>().map_err(|e| {
        format!(
            "message {json} does not fit {}: {e}",
            descriptor.full_name()
        )
    })
}

/// Proto3 JSON (proto field names, int64 as strings) of the prost message `M`.
pub fn to_json<M: prost::Message>(
    descriptor: &MessageDescriptor,
    message: &M,
) -> serde_json::Value {
    let mut dynamic = DynamicMessage::new(descriptor.clone());
    if let Err(e) = dynamic.transcode_from(message) {
        return serde_json::Value::String(format!(
            "undecodable as {}: {e}",
            descriptor.full_name()
        ));
    }
    let options = SerializeOptions::new().use_proto_field_name(true);
    // Through text: serde_json prints a float field as the shortest decimal
    // of its f32 (20.1), where its Value would hold the widened f64.
    let mut text = Vec::new();
    let printed =
        dynamic.serialize_with_options(&mut serde_json::Serializer::new(&mut text), &options);
    match printed
        .map_err(|e| e.to_string())
        .and_then(|()| serde_json::from_slice(&text).map_err(|e| e.to_string()))
    {
        Ok(json) => json,
        Err(e) => serde_json::Value::String(format!("unprintable: {e}")),
    }
}

/// `template` with every `{i}` in its strings replaced by `number`.
pub fn expand_template(template: &serde_json::Value, number: u32) -> serde_json::Value {
    match template {
        serde_json::Value::String(text) => {
            serde_json::Value::String(text.replace("{i}", &number.to_string()))
        }
        serde_json::Value::Array(items) => items
            .iter()
            .map(|item| expand_template(item, number))
            .collect(),
        serde_json::Value::Object(fields) => fields
            .iter()
            .map(|(name, value)| (name.clone(), expand_template(value, number)))
            .collect(),
        other @ (serde_json::Value::Null
        | serde_json::Value::Bool(_)
        | serde_json::Value::Number(_)) => other.clone(),
    }
}

/// Appends the plan's metadata pairs to `map`, `-bin` values decoded from base64.
pub fn append_metadata(map: &mut MetadataMap, pairs: &[(String, String)]) -> Result<(), String> {
    for (name, value) in pairs {
        if name.ends_with("-bin") {
            let bytes = LENIENT_BASE64
                .decode(value)
                .map_err(|e| format!("metadata {name}: value {value:?} is not base64: {e}"))?;
            let key = BinaryMetadataKey::from_bytes(name.as_bytes())
                .map_err(|e| format!("metadata name {name:?}: {e}"))?;
            map.append_bin(key, MetadataValue::from_bytes(&bytes));
        } else {
            let key: AsciiMetadataKey = name
                .parse()
                .map_err(|e| format!("metadata name {name:?}: {e}"))?;
            let value = value.parse().map_err(|e| {
                format!("metadata {name}: value {value:?} is not a header value: {e}")
            })?;
            map.append(key, value);
        }
    }
    Ok(())
}

/// The pairs of a `MetadataMap` in tonic's order; `-bin` values as padded
/// base64 of the bytes tonic decoded (or as they came when they do not decode).
pub fn metadata_pairs(map: &MetadataMap) -> Vec<(String, String)> {
    map.iter()
        .map(|entry| match entry {
            KeyAndValueRef::Ascii(key, value) => (
                key.as_str().to_owned(),
                value.to_str().map(str::to_owned).unwrap_or_else(|_| {
                    String::from_utf8_lossy(value.as_encoded_bytes()).into_owned()
                }),
            ),
            KeyAndValueRef::Binary(key, value) => (
                key.as_str().to_owned(),
                value
                    .to_bytes()
                    .map(|bytes| STANDARD.encode(bytes))
                    .unwrap_or_else(|_| {
                        String::from_utf8_lossy(value.as_encoded_bytes()).into_owned()
                    }),
            ),
        })
        .collect()
}
