//! A mapped span's `metadata` field, written as JSON text.
//!
//! `metadata` merges several sources (the table in [`super::mapping`]):
//! keys mapped from GenAI and OpenInference attributes, overridden by the
//! span's `braintrust.metadata` object, overridden in turn by Herald's own
//! `operation` and `otel` keys. The `braintrust.metadata` object is the
//! large one (whatever the application logs), and the resource kept under
//! `otel.resource` is the same for every span of a request, so neither is
//! parsed into a tree per span: the first is split into its top-level
//! members as text ([`BraintrustMetadata`]), the second is serialised once
//! per resource ([`super::mapping::Context`]). [`ObjectText`] writes the
//! members, later sources shadowing earlier ones, so the text is what
//! merging the parsed objects in that order gives.
//!
//! Trade-off: the store scans the text once more when it validates the
//! field, which costs less than building and dropping the tree did.

use std::collections::BTreeMap;

use serde_json::Value;
use serde_json::value::RawValue;

/// A `braintrust.metadata` attribute's top-level members, borrowed from its
/// text (a later duplicate key wins, as in a parse).
pub struct BraintrustMetadata<'a> {
    members: BTreeMap<String, &'a RawValue>,
}

impl<'a> BraintrustMetadata<'a> {
    /// The members of `text`, or `None` when it is not a JSON object (such
    /// an attribute is not merged, as before; it is not lost either: the
    /// caller keeps it under `metadata.otel.attributes`).
    pub fn parse(text: &'a str) -> Option<Self> {
        serde_json::from_str(text)
            .ok()
            .map(|members| Self { members })
    }

    /// Whether the object has a top-level `key`.
    pub fn contains_key(&self, key: &str) -> bool {
        self.members.contains_key(key)
    }
}

/// A JSON object written member by member.
pub struct ObjectText {
    out: Vec<u8>,
}

impl Default for ObjectText {
    fn default() -> Self {
        Self::new()
    }
}

impl ObjectText {
    /// An empty object.
    pub fn new() -> Self {
        let mut out = Vec::with_capacity(512);
        out.push(b'{');
        Self { out }
    }

    fn key(&mut self, key: &str) {
        if self.out.len() > 1 {
            self.out.push(b',');
        }
        serde_json::to_writer(&mut self.out, key).expect("a string serialises");
        self.out.push(b':');
    }

    /// Adds `key: value`.
    pub fn value(&mut self, key: &str, value: &Value) {
        self.key(key);
        serde_json::to_writer(&mut self.out, value).expect("a JSON value serialises");
    }

    /// Adds `key: raw`, `raw` being JSON text.
    pub fn raw(&mut self, key: &str, raw: &RawValue) {
        self.key(key);
        self.out.extend_from_slice(raw.get().as_bytes());
    }

    /// The object's text.
    pub fn finish(mut self) -> Box<RawValue> {
        self.out.push(b'}');
        let text = String::from_utf8(self.out).expect("serde_json writes UTF-8");
        RawValue::from_string(text).expect("members are JSON text")
    }
}

/// `metadata` as text: `mapped`'s members, then `braintrust`'s, then
/// `own`'s, each shadowing the same key of the sources before it.
pub fn metadata_text(
    mapped: &serde_json::Map<String, Value>,
    braintrust: Option<&BraintrustMetadata<'_>>,
    own: &[(&str, &RawValue)],
) -> Box<RawValue> {
    let owned = |key: &str| own.iter().any(|(k, _)| *k == key);
    let in_braintrust = |key: &str| braintrust.is_some_and(|b| b.contains_key(key));
    let mut object = ObjectText::new();
    for (key, value) in mapped {
        if !owned(key) && !in_braintrust(key) {
            object.value(key, value);
        }
    }
    for (key, raw) in braintrust.map(|b| &b.members).into_iter().flatten() {
        if !owned(key) {
            object.raw(key, raw);
        }
    }
    for (key, raw) in own {
        object.raw(key, raw);
    }
    object.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The text equals the merge of the parsed objects, in order.
    #[test]
    fn later_sources_shadow_earlier_ones_as_a_merge_would() {
        let mapped = json!({"model": "gpt-4o", "temperature": 0.2, "otel": "mapped"});
        let text =
            r#"{ "model" : "mine", "user": {"id": 7}, "operation": "x", "user": {"id": 8} }"#;
        let braintrust = BraintrustMetadata::parse(text).expect("an object");
        let operation = RawValue::from_string(r#""chat""#.into()).unwrap();
        let otel = RawValue::from_string(r#"{"kind":"client"}"#.into()).unwrap();
        let written = metadata_text(
            mapped.as_object().unwrap(),
            Some(&braintrust),
            &[("operation", &operation), ("otel", &otel)],
        );
        let mut merged = mapped.as_object().unwrap().clone();
        merged.extend(serde_json::from_str::<serde_json::Map<String, Value>>(text).unwrap());
        merged.insert("operation".into(), json!("chat"));
        merged.insert("otel".into(), json!({"kind": "client"}));
        let written: Value = serde_json::from_str(written.get()).unwrap();
        assert_eq!(written, Value::Object(merged));
        assert_eq!(written["user"]["id"], 8, "the later duplicate wins");
    }

    #[test]
    fn text_that_is_not_an_object_is_not_merged() {
        for text in ["[1]", "\"s\"", "{not json", "3"] {
            assert!(BraintrustMetadata::parse(text).is_none(), "{text}");
        }
        let written = metadata_text(&serde_json::Map::new(), None, &[]);
        assert_eq!(written.get(), "{}");
    }
}
