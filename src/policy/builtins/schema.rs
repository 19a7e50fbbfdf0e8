//! `json.match_schema` and `json.verify_schema` as OPA answers them, after
//! the JSON Schema library OPA uses (drafts 4, 6 and 7 at once): an invalid
//! document gives `[false, errors]`, each error an object with `error`,
//! `type`, `field` and `desc` (`"a: Must be greater than or equal to 0"`,
//! `"number_gte"`, `"a"`); a valid one `[true, []]`. regorus answered one
//! error string instead of the list, and `null` for no errors, so a policy
//! reading `errors[_].field` or `count(errors)` failed.
//!
//! Errors come in the library's order: a node's combinators (`anyOf`,
//! `oneOf`, `allOf`, `not`, `dependencies`, `if`), then its own keywords
//! (object, array, string and number constraints, `const`, `enum`), then
//! its properties (here in key order; OPA's order among properties is not
//! fixed). Where no branch of `anyOf`/`oneOf`/`contains` holds, the
//! errors of the branch that went furthest are added, "furthest" scored as
//! the library scores it: one for each group of checks passed, each
//! required property present and each key a pattern property matched,
//! less two for each error, plus the score of every sub-validation whose
//! errors are merged. Compared with real OPA on 6,000 random schemas and
//! documents, and kept as the corpus category `json_schema_random`.

use regorus::Value;
use serde_json::{Map, Value as Json};

use super::Builtin;

pub(super) const BUILTINS: &[(&str, u8, Builtin)] = &[
    ("json.match_schema", 2, match_schema),
    ("json.verify_schema", 1, verify_schema),
];

/// Deepest nesting of schemas and documents followed (references
/// included), so that a cycle of `$ref` ends.
const MAX_DEPTH: usize = 128;
/// Most errors one validation lists.
const MAX_ERRORS: usize = 1_000;

const TYPES: [&str; 7] = ["array", "boolean", "integer", "number", "null", "object", "string"];

/// A schema or document argument: an object or array, or a string holding
/// JSON. A number, boolean or null is refused in OPA's words.
fn argument(name: &str, position: usize, v: &Value) -> anyhow::Result<Json> {
    match v {
        Value::String(s) => serde_json::from_str(s).map_err(|_| anyhow::anyhow!("{name}: invalid JSON string")),
        Value::Null | Value::Bool(_) | Value::Number(_) => {
            anyhow::bail!("{name}: wrong type, expected string or object")
        }
        Value::Object(_) | Value::Array(_) | Value::Set(_) => {
            let text = v.to_json_str()?;
            Ok(serde_json::from_str(&text)?)
        }
        other => Err(super::operand(name, position, "one of {object, string}", other)),
    }
}

fn verify_schema(args: &[Value]) -> anyhow::Result<Value> {
    let answer = match argument("json.verify_schema", 1, &args[0]) {
        Err(_) => Err("invalid JSON string".to_string()),
        Ok(schema) => check(&schema, &schema, 0),
    };
    Ok(match answer {
        Ok(()) => Value::from(vec![Value::from(true), Value::Null]),
        Err(e) => Value::from(vec![Value::from(false), Value::from(format!("jsonschema: {e}"))]),
    })
}

fn match_schema(args: &[Value]) -> anyhow::Result<Value> {
    let name = "json.match_schema";
    let document = argument(name, 1, &args[0])?;
    let schema = argument(name, 2, &args[1])?;
    check(&schema, &schema, 0).map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
    let mut v = Validation {
        root: &schema,
        errors: Vec::new(),
        score: 0,
    };
    v.node(&schema, &document, &mut Vec::new(), 0)
        .map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
    let errors: Vec<Value> = v
        .errors
        .into_iter()
        .map(|e| {
            let mut o = std::collections::BTreeMap::new();
            o.insert(Value::from("error"), Value::from(format!("{}: {}", e.field, e.desc)));
            o.insert(Value::from("type"), Value::from(e.kind));
            o.insert(Value::from("field"), Value::from(e.field));
            o.insert(Value::from("desc"), Value::from(e.desc));
            Value::from(o)
        })
        .collect();
    Ok(Value::from(vec![Value::from(errors.is_empty()), Value::from(errors)]))
}

/// The schema is one the library accepts: the keywords this checks have
/// values of the right kind, every `$ref` resolves within the schema.
fn check(root: &Json, s: &Json, depth: usize) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err("schema nested too deep".into());
    }
    let o = match s {
        Json::Bool(_) => return Ok(()),
        Json::Object(o) => o,
        _ => return Err("Invalid type. Expected: valid schema, given: Object or Boolean".into()),
    };
    if let Some(t) = o.get("type") {
        let names: Vec<&Json> = match t {
            Json::String(_) => vec![t],
            Json::Array(a) => a.iter().collect(),
            _ => return Err("Invalid type. Expected: type, given: string/Array Of Strings".into()),
        };
        for n in names {
            match n.as_str() {
                Some(n) if TYPES.contains(&n) => {}
                Some(n) => {
                    return Err(format!(
                        "has a primitive type that is NOT VALID -- given: /{n}/ Expected valid values are:[{}]",
                        TYPES.join(" ")
                    ));
                }
                None => return Err("Invalid type. Expected: type, given: string/Array Of Strings".into()),
            }
        }
    }
    for k in ["minimum", "maximum", "multipleOf"] {
        if o.get(k).is_some_and(|v| !v.is_number()) {
            return Err(format!("{k} must be of a Number"));
        }
    }
    for k in ["exclusiveMinimum", "exclusiveMaximum"] {
        if o.get(k).is_some_and(|v| !v.is_number() && !v.is_boolean()) {
            return Err(format!("{k} must be of a Number"));
        }
    }
    for k in [
        "minLength",
        "maxLength",
        "minItems",
        "maxItems",
        "minProperties",
        "maxProperties",
    ] {
        if o.get(k).is_some_and(|v| v.as_u64().is_none()) {
            return Err(format!("{k} must be of an integer"));
        }
    }
    // Bounds that cannot both hold (the library checks only these two).
    for (min, max) in [("minLength", "maxLength"), ("minProperties", "maxProperties")] {
        if let (Some(lo), Some(hi)) = (o.get(min).and_then(Json::as_u64), o.get(max).and_then(Json::as_u64))
            && lo > hi
        {
            return Err(format!("{min} cannot be greater than {max}"));
        }
    }
    if let Some(Json::Array(items)) = o.get("enum")
        && items
            .iter()
            .enumerate()
            .any(|(i, a)| items[i + 1..].iter().any(|b| same(a, b)))
    {
        return Err("enum items must be unique".into());
    }
    if o.get("required")
        .is_some_and(|v| !v.as_array().is_some_and(|a| a.iter().all(Json::is_string)))
    {
        return Err("required must be of an array of strings".into());
    }
    if let Some(p) = o.get("pattern") {
        let p = p.as_str().ok_or("pattern must be of a string")?;
        regex::Regex::new(p).map_err(|_| format!("Invalid regex pattern '{p}'"))?;
    }
    if let Some(Json::String(r)) = o.get("$ref") {
        resolve(root, r).ok_or_else(|| format!("Object has no key '{r}'"))?;
    }
    if let Some(Json::Object(deps)) = o.get("dependencies") {
        for sub in deps.values().filter(|d| d.is_object() || d.is_boolean()) {
            check(root, sub, depth + 1)?;
        }
    }
    for k in [
        "not",
        "if",
        "then",
        "else",
        "additionalProperties",
        "additionalItems",
        "contains",
        "propertyNames",
    ] {
        if let Some(sub) = o.get(k)
            && (sub.is_object() || sub.is_boolean())
        {
            check(root, sub, depth + 1)?;
        }
    }
    for k in ["allOf", "anyOf", "oneOf"] {
        if let Some(v) = o.get(k) {
            let a = v.as_array().ok_or_else(|| format!("{k} must be of an array"))?;
            for sub in a {
                check(root, sub, depth + 1)?;
            }
        }
    }
    for k in ["properties", "patternProperties", "definitions"] {
        if let Some(v) = o.get(k) {
            let m = v.as_object().ok_or_else(|| format!("{k} must be of an object"))?;
            for (key, sub) in m {
                if k == "patternProperties" {
                    regex::Regex::new(key).map_err(|_| format!("Invalid regex pattern '{key}'"))?;
                }
                check(root, sub, depth + 1)?;
            }
        }
    }
    match o.get("items") {
        Some(Json::Array(a)) => a.iter().try_for_each(|sub| check(root, sub, depth + 1))?,
        Some(sub) => check(root, sub, depth + 1)?,
        None => {}
    }
    Ok(())
}

/// A local reference: `#` or `#/a/b` (JSON pointer, `~0` `~1`, `%25`).
fn resolve<'a>(root: &'a Json, reference: &str) -> Option<&'a Json> {
    let pointer = reference.strip_prefix('#')?;
    if pointer.is_empty() {
        return Some(root);
    }
    let decoded = pointer.replace("%25", "%").replace("%22", "\"");
    root.pointer(&decoded)
}

struct Error {
    kind: &'static str,
    field: String,
    desc: String,
}

struct Validation<'s> {
    root: &'s Json,
    errors: Vec<Error>,
    /// How far validation went, counted as the library counts it: one for
    /// each node, its combinators and each group of keywords checked
    /// (common, number, string, array, object), plus what each merged
    /// sub-validation counted. Picks the branch whose errors are told when
    /// none holds.
    score: i64,
}

fn field(path: &[String]) -> String {
    if path.is_empty() {
        "(Root)".into()
    } else {
        path.join(".")
    }
}

fn type_of(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "boolean",
        Json::Number(n) if is_integer(n) => "integer",
        Json::Number(_) => "number",
        Json::String(_) => "string",
        Json::Array(_) => "array",
        Json::Object(_) => "object",
    }
}

fn is_integer(n: &serde_json::Number) -> bool {
    n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0)
}

/// A number as the library writes it in a message: `1000`, `0.5`.
fn number_text(n: &Json) -> String {
    match n.as_f64() {
        Some(f) if f.fract() == 0.0 && f.abs() < 1e21 => format!("{}", f as i128),
        Some(f) => format!("{f}"),
        None => n.to_string(),
    }
}

fn number(v: &Json) -> Option<f64> {
    v.as_f64()
}

/// Values equal as JSON Schema compares them (numbers by value).
fn same(a: &Json, b: &Json) -> bool {
    match (a, b) {
        (Json::Number(x), Json::Number(y)) => x.as_f64() == y.as_f64(),
        (Json::Array(x), Json::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q)),
        (Json::Object(x), Json::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

impl<'s> Validation<'s> {
    fn add(&mut self, kind: &'static str, path: &[String], desc: String) -> Result<(), String> {
        if self.errors.len() >= MAX_ERRORS {
            return Err(format!("more than {MAX_ERRORS} errors"));
        }
        self.errors.push(Error {
            kind,
            field: field(path),
            desc,
        });
        // Each error counts against how far validation went, as in the
        // library (a net -1 with the +1 of the check that found it).
        self.score -= 2;
        Ok(())
    }

    /// A sub-validation's errors taken in, with how far it went (the
    /// library adds both when it merges a result).
    fn merge(&mut self, result: Option<(Vec<Error>, i64)>) {
        if let Some((errors, score)) = result {
            self.errors.extend(errors);
            self.score += score;
        }
    }

    /// The errors `schema` finds in `doc`, apart from this validation's.
    fn sub(
        &mut self,
        schema: &'s Json,
        doc: &Json,
        path: &mut Vec<String>,
        depth: usize,
    ) -> Result<(Vec<Error>, i64), String> {
        let mut v = Validation {
            root: self.root,
            errors: Vec::new(),
            score: 0,
        };
        v.node(schema, doc, path, depth)?;
        Ok((v.errors, v.score))
    }

    fn node(&mut self, schema: &'s Json, doc: &Json, path: &mut Vec<String>, depth: usize) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err("schema or document nested too deep".into());
        }
        let s = match schema {
            Json::Bool(true) => return Ok(()),
            Json::Bool(false) => return self.add("false", path, "False always fails validation".into()),
            Json::Object(s) => s,
            _ => return Ok(()),
        };
        if let Some(Json::String(r)) = s.get("$ref") {
            let target = resolve(self.root, r).ok_or_else(|| format!("Object has no key '{r}'"))?;
            return self.node(target, doc, path, depth + 1);
        }
        if let Some(t) = s.get("type") {
            let allowed: Vec<&str> = match t {
                Json::String(n) => vec![n.as_str()],
                Json::Array(a) => a.iter().filter_map(Json::as_str).collect(),
                _ => Vec::new(),
            };
            let given = type_of(doc);
            let ok = allowed.contains(&given) || (given == "integer" && allowed.contains(&"number"));
            if !ok {
                let expected = if allowed.len() == 1 {
                    allowed[0].to_string()
                } else {
                    format!("[{}]", allowed.join(","))
                };
                return self.add(
                    "invalid_type",
                    path,
                    format!("Invalid type. Expected: {expected}, given: {given}"),
                );
            }
        }
        self.combinators(s, doc, path, depth)?;
        match doc {
            Json::Object(o) => {
                self.object(s, o, path, depth)?;
                self.common(s, doc, path)?;
                if let Some(Json::Object(props)) = s.get("properties") {
                    let mut keys: Vec<&String> = props.keys().collect();
                    keys.sort();
                    for k in keys {
                        if let Some(child) = o.get(k) {
                            path.push(k.clone());
                            self.node(&props[k], child, path, depth + 1)?;
                            path.pop();
                        }
                    }
                }
            }
            Json::Array(a) => {
                self.array(s, a, path, depth)?;
                self.common(s, doc, path)?;
            }
            Json::String(text) => {
                self.common(s, doc, path)?;
                self.string(s, text, path)?;
            }
            Json::Number(_) => {
                self.common(s, doc, path)?;
                self.number(s, doc, path)?;
            }
            Json::Bool(_) | Json::Null => self.common(s, doc, path)?,
        }
        self.score += 1;
        Ok(())
    }

    fn combinators(
        &mut self,
        s: &'s Map<String, Json>,
        doc: &Json,
        path: &mut Vec<String>,
        depth: usize,
    ) -> Result<(), String> {
        if let Some(Json::Array(branches)) = s.get("anyOf") {
            let mut best: Option<(Vec<Error>, i64)> = None;
            let mut valid = false;
            for b in branches {
                let (errors, score) = self.sub(b, doc, path, depth + 1)?;
                if errors.is_empty() {
                    valid = true;
                    break;
                }
                if best.as_ref().is_none_or(|(_, s)| score > *s) {
                    best = Some((errors, score));
                }
            }
            if !valid {
                self.add(
                    "number_any_of",
                    path,
                    "Must validate at least one schema (anyOf)".into(),
                )?;
                self.merge(best);
            }
        }
        if let Some(Json::Array(branches)) = s.get("oneOf") {
            let mut best: Option<(Vec<Error>, i64)> = None;
            let mut holding = 0;
            for b in branches {
                let (errors, score) = self.sub(b, doc, path, depth + 1)?;
                if errors.is_empty() {
                    holding += 1;
                } else if best.as_ref().is_none_or(|(_, s)| score > *s) {
                    best = Some((errors, score));
                }
            }
            if holding != 1 {
                self.add(
                    "number_one_of",
                    path,
                    "Must validate one and only one schema (oneOf)".into(),
                )?;
                if holding == 0 {
                    self.merge(best);
                }
            }
        }
        if let Some(Json::Array(branches)) = s.get("allOf") {
            let mut holding = 0;
            for b in branches {
                let (errors, score) = self.sub(b, doc, path, depth + 1)?;
                if errors.is_empty() {
                    holding += 1;
                }
                self.merge(Some((errors, score)));
            }
            if holding != branches.len() {
                self.add("number_all_of", path, "Must validate all the schemas (allOf)".into())?;
            }
        }
        if let Some(not) = s.get("not") {
            let (errors, _) = self.sub(not, doc, path, depth + 1)?;
            if errors.is_empty() {
                self.add("number_not", path, "Must not validate the schema (not)".into())?;
            }
        }
        if let (Some(Json::Object(deps)), Json::Object(o)) = (s.get("dependencies"), doc) {
            let mut keys: Vec<&String> = o.keys().filter(|k| deps.contains_key(*k)).collect();
            keys.sort();
            for k in keys {
                match &deps[k] {
                    Json::Array(needed) => {
                        for n in needed.iter().filter_map(Json::as_str) {
                            if !o.contains_key(n) {
                                self.add("missing_dependency", path, format!("Has a dependency on {n}"))?;
                            }
                        }
                    }
                    sub => self.node(sub, doc, path, depth + 1)?,
                }
            }
        }
        if let Some(cond) = s.get("if") {
            let (if_errors, _) = self.sub(cond, doc, path, depth + 1)?;
            let (branch, kind, desc) = if if_errors.is_empty() {
                ("then", "condition_then", "Must validate \"then\" as \"if\" was valid")
            } else {
                (
                    "else",
                    "condition_else",
                    "Must validate \"else\" as \"if\" was not valid",
                )
            };
            if let Some(b) = s.get(branch) {
                let (errors, score) = self.sub(b, doc, path, depth + 1)?;
                if !errors.is_empty() {
                    self.add(kind, path, desc.into())?;
                    self.merge(Some((errors, score)));
                }
            }
        }
        self.score += 1;
        Ok(())
    }

    fn common(&mut self, s: &Map<String, Json>, doc: &Json, path: &[String]) -> Result<(), String> {
        if let Some(c) = s.get("const")
            && !same(c, doc)
        {
            let f = field(path);
            self.add("const", path, format!("{f} does not match: {c}"))?;
        }
        if let Some(Json::Array(options)) = s.get("enum")
            && !options.iter().any(|o| same(o, doc))
        {
            let f = field(path);
            let allowed: Vec<String> = options.iter().map(Json::to_string).collect();
            self.add(
                "enum",
                path,
                format!("{f} must be one of the following: {}", allowed.join(", ")),
            )?;
        }
        self.score += 1;
        Ok(())
    }

    fn number(&mut self, s: &Map<String, Json>, doc: &Json, path: &[String]) -> Result<(), String> {
        let Some(x) = number(doc) else { return Ok(()) };
        if let Some(m) = s.get("multipleOf").and_then(number)
            && m != 0.0
        {
            let q = x / m;
            if (q - q.round()).abs() > 1e-9 * q.abs().max(1.0) {
                self.add(
                    "multiple_of",
                    path,
                    format!("Must be a multiple of {}", number_text(&s["multipleOf"])),
                )?;
            }
        }
        // Draft 4 writes `exclusiveMaximum: true` beside `maximum`; later
        // drafts give the bound itself.
        if let Some(max) = s.get("maximum").and_then(number) {
            let text = number_text(&s["maximum"]);
            if s.get("exclusiveMaximum") == Some(&Json::Bool(true)) {
                if x >= max {
                    self.add("number_lt", path, format!("Must be less than {text}"))?;
                }
            } else if x > max {
                self.add("number_lte", path, format!("Must be less than or equal to {text}"))?;
            }
        }
        if let Some(max) = s.get("exclusiveMaximum").and_then(number)
            && x >= max
        {
            let text = number_text(&s["exclusiveMaximum"]);
            self.add("number_lt", path, format!("Must be less than {text}"))?;
        }
        if let Some(min) = s.get("minimum").and_then(number) {
            let text = number_text(&s["minimum"]);
            if s.get("exclusiveMinimum") == Some(&Json::Bool(true)) {
                if x <= min {
                    self.add("number_gt", path, format!("Must be greater than {text}"))?;
                }
            } else if x < min {
                self.add("number_gte", path, format!("Must be greater than or equal to {text}"))?;
            }
        }
        if let Some(min) = s.get("exclusiveMinimum").and_then(number)
            && x <= min
        {
            let text = number_text(&s["exclusiveMinimum"]);
            self.add("number_gt", path, format!("Must be greater than {text}"))?;
        }
        self.score += 1;
        Ok(())
    }

    fn string(&mut self, s: &Map<String, Json>, text: &str, path: &[String]) -> Result<(), String> {
        let len = text.chars().count() as u64;
        if let Some(min) = s.get("minLength").and_then(Json::as_u64)
            && len < min
        {
            self.add(
                "string_gte",
                path,
                format!("String length must be greater than or equal to {min}"),
            )?;
        }
        if let Some(max) = s.get("maxLength").and_then(Json::as_u64)
            && len > max
        {
            self.add(
                "string_lte",
                path,
                format!("String length must be less than or equal to {max}"),
            )?;
        }
        if let Some(Json::String(p)) = s.get("pattern")
            && !super::with_regex(p, |re| re.is_match(text)).unwrap_or(true)
        {
            self.add("pattern", path, format!("Does not match pattern '{p}'"))?;
        }
        if let Some(Json::String(f)) = s.get("format")
            && !format_holds(f, text)
        {
            self.add("format", path, format!("Does not match format '{f}'"))?;
        }
        self.score += 1;
        Ok(())
    }

    fn array(
        &mut self,
        s: &'s Map<String, Json>,
        a: &[Json],
        path: &mut Vec<String>,
        depth: usize,
    ) -> Result<(), String> {
        match s.get("items") {
            Some(Json::Array(each)) => {
                for (i, (item, sub)) in a.iter().zip(each).enumerate() {
                    path.push(i.to_string());
                    self.node(sub, item, path, depth + 1)?;
                    path.pop();
                }
                if a.len() > each.len() {
                    match s.get("additionalItems") {
                        Some(Json::Bool(false)) => {
                            self.add(
                                "array_no_additional_items",
                                path,
                                "No additional items allowed on array".into(),
                            )?;
                        }
                        Some(extra @ Json::Object(_)) => {
                            for (i, item) in a.iter().enumerate().skip(each.len()) {
                                path.push(i.to_string());
                                self.node(extra, item, path, depth + 1)?;
                                path.pop();
                            }
                        }
                        _ => {}
                    }
                }
            }
            Some(sub) => {
                for (i, item) in a.iter().enumerate() {
                    path.push(i.to_string());
                    self.node(sub, item, path, depth + 1)?;
                    path.pop();
                }
            }
            None => {}
        }
        if let Some(min) = s.get("minItems").and_then(Json::as_u64)
            && (a.len() as u64) < min
        {
            self.add("array_min_items", path, format!("Array must have at least {min} items"))?;
        }
        if let Some(max) = s.get("maxItems").and_then(Json::as_u64)
            && (a.len() as u64) > max
        {
            self.add("array_max_items", path, format!("Array must have at most {max} items"))?;
        }
        if s.get("uniqueItems") == Some(&Json::Bool(true)) {
            // Each item equal to an earlier one, named with the latest
            // such earlier one, as the library reports them.
            for j in 1..a.len() {
                if let Some(i) = (0..j).rev().find(|&i| same(&a[i], &a[j])) {
                    self.add("unique", path, format!("array items[{i},{j}] must be unique"))?;
                }
            }
        }
        if let Some(contains) = s.get("contains") {
            let mut best: Option<(Vec<Error>, i64)> = None;
            let mut found = false;
            for (i, item) in a.iter().enumerate() {
                path.push(i.to_string());
                let (errors, score) = self.sub(contains, item, path, depth + 1)?;
                path.pop();
                if errors.is_empty() {
                    found = true;
                    break;
                }
                if best.as_ref().is_none_or(|(_, s)| score > *s) {
                    best = Some((errors, score));
                }
            }
            if !found {
                self.add("contains", path, "At least one of the items must match".into())?;
                self.merge(best);
            }
        }
        self.score += 1;
        Ok(())
    }

    fn object(
        &mut self,
        s: &'s Map<String, Json>,
        o: &Map<String, Json>,
        path: &mut Vec<String>,
        depth: usize,
    ) -> Result<(), String> {
        let n = o.len() as u64;
        if let Some(max) = s.get("maxProperties").and_then(Json::as_u64)
            && n > max
        {
            self.add(
                "array_max_properties",
                path,
                format!("Must have at most {max} properties"),
            )?;
        }
        if let Some(min) = s.get("minProperties").and_then(Json::as_u64)
            && n < min
        {
            self.add(
                "array_min_properties",
                path,
                format!("Must have at least {min} properties"),
            )?;
        }
        if let Some(Json::Array(required)) = s.get("required") {
            for r in required.iter().filter_map(Json::as_str) {
                if o.contains_key(r) {
                    // A required property present counts, as in the library.
                    self.score += 1;
                } else {
                    self.add("required", path, format!("{r} is required"))?;
                }
            }
        }
        let props = s.get("properties").and_then(Json::as_object);
        let patterns: Vec<(regex::Regex, &'s Json)> = s
            .get("patternProperties")
            .and_then(Json::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(p, sub)| super::compiled_regex(p).ok().map(|re| (re, sub)))
                    .collect()
            })
            .unwrap_or_default();
        let mut keys: Vec<&String> = o.keys().collect();
        keys.sort();
        for k in &keys {
            let matching: Vec<&'s Json> = patterns
                .iter()
                .filter(|(re, _)| re.is_match(k))
                .map(|(_, sub)| *sub)
                .collect();
            let declared = props.is_some_and(|p| p.contains_key(*k));
            if !declared && matching.is_empty() {
                match s.get("additionalProperties") {
                    Some(Json::Bool(false)) => {
                        self.add(
                            "additional_property_not_allowed",
                            path,
                            format!("Additional property {k} is not allowed"),
                        )?;
                    }
                    Some(extra @ Json::Object(_)) => {
                        path.push((*k).clone());
                        self.node(extra, &o[k.as_str()], path, depth + 1)?;
                        path.pop();
                    }
                    _ => {}
                }
            }
            if !matching.is_empty() {
                self.score += 1;
            }
            for sub in matching {
                path.push((*k).clone());
                self.node(sub, &o[k.as_str()], path, depth + 1)?;
                path.pop();
            }
        }
        if let Some(names) = s.get("propertyNames") {
            for k in &keys {
                let (errors, score) = self.sub(names, &Json::String((*k).clone()), path, depth + 1)?;
                if !errors.is_empty() {
                    self.add(
                        "invalid_property_name",
                        path,
                        format!("Property name of \"{k}\" does not match"),
                    )?;
                    self.merge(Some((errors, score)));
                }
            }
        }
        self.score += 1;
        Ok(())
    }
}

/// The formats the library checks; any other format holds.
fn format_holds(format: &str, s: &str) -> bool {
    use std::net::{Ipv4Addr, Ipv6Addr};
    match format {
        "email" | "idn-email" => {
            let Some((local, domain)) = s.rsplit_once('@') else {
                return false;
            };
            !local.is_empty() && !domain.is_empty() && !s.chars().any(char::is_whitespace)
        }
        "hostname" | "idn-hostname" => {
            s.len() <= 253
                && !s.is_empty()
                && s.split('.').all(|l| {
                    !l.is_empty()
                        && l.len() <= 63
                        && !l.starts_with('-')
                        && !l.ends_with('-')
                        && l.chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '-' || !c.is_ascii())
                })
        }
        "ipv4" => s.parse::<Ipv4Addr>().is_ok(),
        "ipv6" => s.parse::<Ipv6Addr>().is_ok(),
        "uri" | "iri" => reqwest::Url::parse(s).is_ok(),
        "uri-reference" | "iri-reference" => !s.chars().any(|c| c.is_whitespace() || c == '\\'),
        "uuid" => {
            let b = s.as_bytes();
            b.len() == 36
                && b.iter().enumerate().all(|(i, c)| {
                    if [8, 13, 18, 23].contains(&i) {
                        *c == b'-'
                    } else {
                        c.is_ascii_hexdigit()
                    }
                })
        }
        "date-time" => chrono::DateTime::parse_from_rfc3339(s).is_ok(),
        "date" => chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok() && s.len() == 10,
        "time" => chrono::DateTime::parse_from_rfc3339(&format!("1970-01-01T{s}")).is_ok(),
        "regex" => regex::Regex::new(s).is_ok(),
        "json-pointer" => s.is_empty() || s.starts_with('/'),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{eval, json};

    #[test]
    fn a_valid_document_has_an_empty_error_list() {
        assert_eq!(
            eval(r#"json.match_schema({"name": "a"}, {"required": ["name"]})"#).unwrap(),
            json("[true, []]")
        );
        assert_eq!(
            eval(r#"json.verify_schema({"type": "object"})"#).unwrap(),
            json("[true, null]")
        );
    }

    #[test]
    fn errors_carry_the_fields_types_and_words_opa_gives() {
        for (doc, schema, want) in [
            (
                r#"{"age": -1}"#,
                r#"{"properties": {"age": {"type": "integer", "minimum": 0}}, "required": ["name"]}"#,
                r#"[false, [{"desc": "name is required", "error": "(Root): name is required", "field": "(Root)", "type": "required"},
                            {"desc": "Must be greater than or equal to 0", "error": "age: Must be greater than or equal to 0", "field": "age", "type": "number_gte"}]]"#,
            ),
            (
                r#"{"a": [1, "x"]}"#,
                r#"{"properties": {"a": {"items": {"type": "integer"}}}}"#,
                r#"[false, [{"desc": "Invalid type. Expected: integer, given: string", "error": "a.1: Invalid type. Expected: integer, given: string", "field": "a.1", "type": "invalid_type"}]]"#,
            ),
            (
                r#"{"a": 1}"#,
                r#"{"properties": {"a": {"anyOf": [{"type": "string"}, {"type": "boolean"}]}}}"#,
                r#"[false, [{"desc": "Must validate at least one schema (anyOf)", "error": "a: Must validate at least one schema (anyOf)", "field": "a", "type": "number_any_of"},
                            {"desc": "Invalid type. Expected: string, given: integer", "error": "a: Invalid type. Expected: string, given: integer", "field": "a", "type": "invalid_type"}]]"#,
            ),
            (
                r#"{"a": "q"}"#,
                r#"{"properties": {"a": {"enum": ["x", 1, null]}}}"#,
                r#"[false, [{"desc": "a must be one of the following: \"x\", 1, null", "error": "a: a must be one of the following: \"x\", 1, null", "field": "a", "type": "enum"}]]"#,
            ),
            (
                r#"{"a": 5}"#,
                r#"{"properties": {"a": {"maximum": 5, "exclusiveMaximum": true}}}"#,
                r#"[false, [{"desc": "Must be less than 5", "error": "a: Must be less than 5", "field": "a", "type": "number_lt"}]]"#,
            ),
            (
                r#"{"a": 2.0, "b": 1, "c": 2}"#,
                r#"{"properties": {"a": {"type": "integer"}, "b": {}}, "additionalProperties": false}"#,
                r#"[false, [{"desc": "Additional property c is not allowed", "error": "(Root): Additional property c is not allowed", "field": "(Root)", "type": "additional_property_not_allowed"}]]"#,
            ),
        ] {
            assert_eq!(
                eval(&format!("json.match_schema({doc}, {schema})")).unwrap(),
                json(want),
                "{doc} against {schema}"
            );
        }
    }

    #[test]
    fn bad_schemas_are_told_apart_from_bad_documents() {
        assert_eq!(
            eval(r#"json.verify_schema({"type": "nonsense"})"#).unwrap(),
            json(
                r#"[false, "jsonschema: has a primitive type that is NOT VALID -- given: /nonsense/ Expected valid values are:[array boolean integer number null object string]"]"#
            )
        );
        assert_eq!(
            eval(r#"json.verify_schema({"minimum": "x"})"#).unwrap(),
            json(r#"[false, "jsonschema: minimum must be of a Number"]"#)
        );
        assert!(eval(r#"json.match_schema({"a": 1}, {"type": "nonsense"})"#).is_err());
        assert!(eval(r#"json.match_schema({"a": 1}, "{bad")"#).is_err());
        // A reference cycle ends.
        assert!(eval(r##"json.match_schema({"a": 1}, {"$ref": "#"})"##).is_err());
    }

    #[test]
    fn references_and_conditions_follow_the_schema() {
        let v = eval(
            r##"json.match_schema({"a": 1, "k": 2}, {"$ref": "#/definitions/x", "definitions": {"x": {
                "properties": {"a": {"type": "string"}},
                "if": {"required": ["k"]}, "then": {"required": ["z"]}}}})"##,
        )
        .unwrap();
        let text = serde_json::from_str::<serde_json::Value>(&v.to_json_str().unwrap())
            .unwrap()
            .to_string();
        for want in [
            r#""error":"a: Invalid type. Expected: string, given: integer""#,
            r#""error":"(Root): Must validate \"then\" as \"if\" was valid""#,
            r#""error":"(Root): z is required""#,
        ] {
            assert!(text.contains(want), "{want} in {text}");
        }
    }
}
