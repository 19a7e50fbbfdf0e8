//! What the gateway policy may ask of an allowed call's result: fields
//! redacted (by dotted path, from `structuredContent` and from text content
//! that is a JSON object) and text cut to a length.

use serde_json::{Map, Value};

/// The obligations of a decision, as the policy set them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Obligations {
    pub redact: Vec<String>,
    pub max_text_chars: Option<usize>,
}

impl Obligations {
    /// Reads `obligations` of a decision's result; a malformed entry is an
    /// error (the call is then denied, not forwarded unredacted).
    pub fn of(result: &Value) -> Result<Self, String> {
        let Some(o) = result.get("obligations") else {
            return Ok(Self::default());
        };
        let Some(o) = o.as_object() else {
            return Err("obligations must be an object".into());
        };
        let mut out = Self::default();
        match o.get("redact") {
            None | Some(Value::Null) => {}
            Some(Value::Array(paths)) => {
                for p in paths {
                    match p.as_str() {
                        Some(s) if !s.is_empty() && s.len() <= 256 => out.redact.push(s.to_string()),
                        _ => return Err(format!("obligations.redact holds {p}, not a dotted path")),
                    }
                }
            }
            Some(other) => return Err(format!("obligations.redact must be an array of paths, not {other}")),
        }
        match o.get("max_text_chars") {
            None | Some(Value::Null) => {}
            Some(n) => match n.as_u64() {
                Some(n) => out.max_text_chars = Some(n as usize),
                None => return Err(format!("obligations.max_text_chars must be a whole number, not {n}")),
            },
        }
        Ok(out)
    }

    pub fn is_empty(&self) -> bool {
        self.redact.is_empty() && self.max_text_chars.is_none()
    }

    /// Applies the obligations to an upstream's `CallToolResult`; returns
    /// the paths actually removed and whether any text was cut.
    pub fn apply(&self, result: &mut Value) -> (Vec<String>, bool) {
        let mut removed = Vec::new();
        if let Some(sc) = result.get_mut("structuredContent") {
            for p in &self.redact {
                if remove_path(sc, p) {
                    removed.push(format!("structuredContent.{p}"));
                }
            }
        }
        let mut cut = false;
        if let Some(Value::Array(items)) = result.get_mut("content") {
            for (i, item) in items.iter_mut().enumerate() {
                if item.get("type").and_then(Value::as_str) != Some("text") {
                    continue;
                }
                let Some(Value::String(text)) = item.get_mut("text") else {
                    continue;
                };
                if !self.redact.is_empty()
                    && let Ok(mut doc @ Value::Object(_)) = serde_json::from_str::<Value>(text)
                {
                    let mut any = false;
                    for p in &self.redact {
                        if remove_path(&mut doc, p) {
                            removed.push(format!("content[{i}].{p}"));
                            any = true;
                        }
                    }
                    if any {
                        *text = doc.to_string();
                    }
                }
                if let Some(max) = self.max_text_chars
                    && let Some((at, _)) = text.char_indices().nth(max)
                {
                    text.truncate(at);
                    cut = true;
                }
            }
        }
        (removed, cut)
    }
}

/// Removes the member at dotted `path` (`card.number`); true when it was there.
fn remove_path(v: &mut Value, path: &str) -> bool {
    let mut parts: Vec<&str> = path.split('.').collect();
    let Some(last) = parts.pop() else {
        return false;
    };
    let mut at: &mut Map<String, Value> = match v.as_object_mut() {
        Some(m) => m,
        None => return false,
    };
    for p in parts {
        at = match at.get_mut(p).and_then(Value::as_object_mut) {
            Some(m) => m,
            None => return false,
        };
    }
    at.remove(last).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn redaction_reaches_structured_content_and_json_text_and_cuts_text() {
        let o =
            Obligations::of(&json!({"obligations": {"redact": ["card.number", "ssn"], "max_text_chars": 50}})).unwrap();
        let mut r = json!({
            "content": [
                {"type": "text", "text": "{\"card\":{\"number\":\"4111\",\"expiry\":\"12/29\"},\"ssn\":\"1\",\"owner\":\"Zoë\"}"},
                {"type": "text", "text": "plain words that are longer than forty characters, surely"},
                {"type": "image", "data": "AAAA", "mimeType": "image/png"}
            ],
            "structuredContent": {"card": {"number": "4111", "expiry": "12/29"}, "ssn": "1", "owner": "Zoë"}
        });
        let (removed, cut) = o.apply(&mut r);
        assert_eq!(
            r["structuredContent"],
            json!({"card": {"expiry": "12/29"}, "owner": "Zoë"})
        );
        let text0: Value = serde_json::from_str(r["content"][0]["text"].as_str().unwrap()).unwrap();
        assert_eq!(text0, json!({"card": {"expiry": "12/29"}, "owner": "Zoë"}));
        assert_eq!(r["content"][1]["text"].as_str().unwrap().chars().count(), 50);
        assert!(cut);
        assert_eq!(
            removed,
            [
                "structuredContent.card.number",
                "structuredContent.ssn",
                "content[0].card.number",
                "content[0].ssn"
            ]
        );
    }

    #[test]
    fn malformed_obligations_are_refused_not_ignored() {
        assert!(Obligations::of(&json!({"obligations": {"redact": "ssn"}})).is_err());
        assert!(Obligations::of(&json!({"obligations": {"max_text_chars": -1}})).is_err());
        assert!(Obligations::of(&json!({"obligations": []})).is_err());
        assert!(Obligations::of(&json!({"outcome": "allow"})).unwrap().is_empty());
    }
}
