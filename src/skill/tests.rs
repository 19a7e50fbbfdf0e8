use serde_json::{Value, json};

use super::*;

fn manifest() -> Value {
    json!({
        "id": "bess_commissioning_retrieval",
        "version": "1.2.0",
        "description": "Retrieves BESS commissioning test data from ACC",
        "allowed_connectors": ["acc", "sharepoint"],
        "prompt_template": "Find the commissioning test sheets of {{ project }}.",
        "output_schema": {
            "type": "object",
            "required": ["documents"],
            "properties": {"documents": {"type": "array", "items": {"type": "string"}}}
        },
        "rbac_scope": "engineering.commissioning",
        "visibility": "published"
    })
}

fn faults(doc: &Value) -> Vec<(&'static str, String)> {
    from_value(doc)
        .expect_err("the manifest has faults")
        .into_iter()
        .map(|e| (e.code, e.at))
        .collect()
}

fn with(field: &str, value: Value) -> Value {
    let mut doc = manifest();
    doc[field] = value;
    doc
}

fn without(field: &str) -> Value {
    let mut doc = manifest();
    doc.as_object_mut().unwrap().remove(field);
    doc
}

#[test]
fn a_valid_manifest_parses_from_json_and_yaml_to_the_same_digest() {
    let json = serde_json::to_vec(&manifest()).unwrap();
    let from_json = parse(&json).unwrap();
    assert_eq!(from_json.id, "bess_commissioning_retrieval");
    assert_eq!(from_json.allowed_connectors, ["acc", "sharepoint"]);
    assert_eq!(from_json.visibility, Visibility::Published);
    let yaml = "id: bess_commissioning_retrieval\nversion: 1.2.0\n\
        description: Retrieves BESS commissioning test data from ACC\n\
        allowed_connectors: [acc, sharepoint]\n\
        prompt_template: 'Find the commissioning test sheets of {{ project }}.'\n\
        output_schema:\n  type: object\n  required: [documents]\n  properties:\n    documents:\n      type: array\n      items: {type: string}\n\
        rbac_scope: engineering.commissioning\nvisibility: published\n";
    let from_yaml = parse(yaml.as_bytes()).unwrap();
    assert_eq!(from_yaml, from_json);
    assert_eq!(digest(&from_yaml), digest(&from_json));
    assert_eq!(digest(&from_json).len(), 64);
    // The digest is of the canonical JSON: key order does not matter.
    let reordered: Value = serde_json::from_str(&serde_json::to_string(&manifest()).unwrap()).unwrap();
    assert_eq!(digest(&from_value(&reordered).unwrap()), digest(&from_json));
    // A stored manifest reads back with serde (unknown fields refused).
    let stored = serde_json::to_string(&from_json).unwrap();
    assert_eq!(serde_json::from_str::<SkillManifest>(&stored).unwrap(), from_json);
    assert!(serde_json::from_value::<SkillManifest>(with("extra", json!(1))).is_err());
}

#[test]
fn optional_fields_have_defaults_and_another_content_another_digest() {
    let mut doc = without("allowed_connectors");
    doc.as_object_mut().unwrap().remove("output_schema");
    let m = from_value(&doc).unwrap();
    assert!(m.allowed_connectors.is_empty());
    assert_eq!(m.output_schema, None);
    let explicit = from_value(&with("allowed_connectors", json!([]))).unwrap();
    assert_eq!(explicit.allowed_connectors, Vec::<String>::new());
    assert_ne!(digest(&m), digest(&explicit), "the schema differs");
    let other = from_value(&with("description", json!("Something else"))).unwrap();
    assert_ne!(digest(&other), digest(&from_value(&manifest()).unwrap()));
}

#[test]
fn every_fault_is_reported_in_one_pass() {
    let doc = json!({
        "id": "Bad Id",
        "version": "1.2",
        "description": 7,
        "allowed_connectors": ["acc", "ACC!", "acc"],
        "prompt_template": "",
        "output_schema": {"type": "strin"},
        "rbac_scope": "Engineering..x",
        "visibility": {"scoped": {"projects": [], "teams": ["a team"]}},
        "colour": "blue"
    });
    let got = faults(&doc);
    let expected = [
        (code::UNKNOWN_FIELD, "colour"),
        (code::INVALID_SKILL_ID, "id"),
        (code::INVALID_VERSION, "version"),
        (code::INVALID_VALUE, "description"),
        (code::INVALID_CONNECTOR, "allowed_connectors[1]"),
        (code::INVALID_CONNECTOR, "allowed_connectors[2]"),
        (code::INVALID_VALUE, "prompt_template"),
        (code::INVALID_OUTPUT_SCHEMA, "output_schema"),
        (code::INVALID_SCOPE, "rbac_scope"),
        (code::INVALID_VISIBILITY, "visibility.scoped.teams[0]"),
    ];
    let expected: Vec<(&str, String)> = expected.iter().map(|(c, a)| (*c, a.to_string())).collect();
    assert_eq!(got, expected);
}

#[test]
fn missing_fields_are_named() {
    let got = faults(&json!({}));
    for field in [
        "id",
        "version",
        "description",
        "prompt_template",
        "rbac_scope",
        "visibility",
    ] {
        assert!(
            got.contains(&(code::MISSING_FIELD, field.to_string())),
            "{field} in {got:?}"
        );
    }
    assert_eq!(got.len(), 6, "{got:?}");
    assert_eq!(faults(&json!([1]))[0], (code::INVALID_VALUE, String::new()));
}

#[test]
fn syntax_errors_and_size_are_refused() {
    let e = parse(b"{\"id\": ").unwrap_err();
    assert_eq!(e[0].code, code::INVALID_SYNTAX);
    assert!(e[0].message.contains("line 1"), "{}", e[0].message);
    let e = parse(b"id: a\nid: b\n").unwrap_err();
    assert_eq!(e[0].code, code::INVALID_SYNTAX);
    assert!(e[0].message.contains("duplicate"), "{}", e[0].message);
    assert_eq!(parse(b"  \n").unwrap_err()[0].code, code::INVALID_SYNTAX);
    let big = vec![b' '; MAX_MANIFEST_BYTES + 1];
    assert_eq!(parse(&big).unwrap_err()[0].code, code::TOO_LARGE);
}

#[test]
fn sizes_are_bounded() {
    let long = "x".repeat(MAX_PROMPT_TEMPLATE_BYTES + 1);
    assert_eq!(
        faults(&with("prompt_template", json!(long))),
        [(code::TOO_LARGE, "prompt_template".to_string())]
    );
    assert!(from_value(&with("prompt_template", json!("x".repeat(MAX_PROMPT_TEMPLATE_BYTES)))).is_ok());
    let connectors: Vec<String> = (0..=MAX_CONNECTORS).map(|i| format!("c{i}")).collect();
    assert_eq!(
        faults(&with("allowed_connectors", json!(connectors))),
        [(code::TOO_LARGE, "allowed_connectors".to_string())]
    );
    let description = "d".repeat(MAX_DESCRIPTION_CHARS + 1);
    assert_eq!(
        faults(&with("description", json!(description))),
        [(code::TOO_LARGE, "description".to_string())]
    );
    let mut deep = json!({"type": "object"});
    for _ in 0..MAX_OUTPUT_SCHEMA_DEPTH {
        deep = json!({"properties": {"a": deep}});
    }
    assert_eq!(
        faults(&with("output_schema", deep)),
        [(code::TOO_LARGE, "output_schema".to_string())]
    );
    let teams: Vec<String> = (0..=MAX_SCOPE_ENTRIES).map(|i| format!("t{i}")).collect();
    assert_eq!(
        faults(&with("visibility", json!({"scoped": {"teams": teams}}))),
        [(code::TOO_LARGE, "visibility.scoped.teams".to_string())]
    );
    // A flood of faults is cut short.
    let many: Vec<u32> = (0..1000).collect();
    let got = faults(&with("allowed_connectors", json!(many)));
    assert_eq!(got.len(), MAX_ERRORS);
    assert_eq!(got[MAX_ERRORS - 1].0, code::TOO_LARGE);
}

#[test]
fn skill_ids_follow_the_naming_rule() {
    for ok in [
        "a",
        "bess_commissioning_retrieval",
        "a.b-c_9",
        &"a".repeat(MAX_SKILL_ID_LEN),
    ] {
        assert!(check_skill_id(ok).is_ok(), "{ok}");
    }
    for bad in [
        "",
        "9a",
        "_a",
        "A",
        "a b",
        "a/b",
        "é",
        &"a".repeat(MAX_SKILL_ID_LEN + 1),
    ] {
        assert!(check_skill_id(bad).is_err(), "{bad}");
        assert_eq!(
            faults(&with("id", json!(bad))),
            [(code::INVALID_SKILL_ID, "id".to_string())]
        );
    }
}

#[test]
fn versions_are_strict_semver_without_build_metadata() {
    for ok in ["0.0.0", "1.2.3", "1.10.0", "2.0.0-rc.1", "1.0.0-alpha.beta"] {
        assert!(parse_version(ok).is_ok(), "{ok}");
    }
    for bad in [
        "1",
        "1.2",
        "v1.2.3",
        "01.2.3",
        "1.2.3+build",
        "1.2.3.4",
        " 1.2.3",
        "9223372036854775808.0.0",
    ] {
        assert!(parse_version(bad).is_err(), "{bad}");
    }
    assert_eq!(
        faults(&with("version", json!(1.2))),
        [(code::INVALID_VALUE, "version".to_string())]
    );
}

#[test]
fn scopes_are_dotted_names() {
    for ok in ["engineering", "engineering.commissioning", "a.b-c.d_9"] {
        assert!(check_scope(ok).is_ok(), "{ok}");
    }
    for bad in [
        "",
        ".a",
        "a.",
        "a..b",
        "Eng",
        "a.9b",
        "a b",
        &["a"; MAX_SCOPE_SEGMENTS + 1].join("."),
    ] {
        assert!(check_scope(bad).is_err(), "{bad}");
    }
}

#[test]
fn visibility_is_published_or_scoped_to_someone() {
    let scoped = from_value(&with(
        "visibility",
        json!({"scoped": {"projects": ["proj_abc123"], "teams": ["commissioning"]}}),
    ))
    .unwrap();
    assert_eq!(
        scoped.visibility,
        Visibility::Scoped(Audience {
            projects: vec!["proj_abc123".into()],
            teams: vec!["commissioning".into()],
        })
    );
    assert!(visible(&scoped, Some("proj_abc123"), None));
    assert!(visible(&scoped, None, Some("commissioning")));
    assert!(visible(&scoped, Some("other"), Some("commissioning")));
    assert!(!visible(&scoped, Some("other"), Some("other")));
    assert!(!visible(&scoped, None, None));
    let published = from_value(&manifest()).unwrap();
    assert!(visible(&published, None, None));
    assert!(visible(&published, Some("any"), Some("any")));

    let at = |s: &str| s.to_string();
    for (value, expected) in [
        (json!("public"), vec![(code::INVALID_VISIBILITY, at("visibility"))]),
        (json!("scoped"), vec![(code::INVALID_VISIBILITY, at("visibility"))]),
        (json!(true), vec![(code::INVALID_VISIBILITY, at("visibility"))]),
        (
            json!({"scoped": {}}),
            vec![(code::INVALID_VISIBILITY, at("visibility.scoped"))],
        ),
        (
            json!({"scoped": []}),
            vec![(code::INVALID_VISIBILITY, at("visibility.scoped"))],
        ),
        (
            json!({"scoped": {"teams": ["t"], "groups": ["g"]}}),
            vec![(code::UNKNOWN_FIELD, at("visibility.scoped.groups"))],
        ),
        (
            json!({"scoped": {"teams": "t"}}),
            vec![(code::INVALID_VISIBILITY, at("visibility.scoped.teams"))],
        ),
        (
            json!({"scoped": {"teams": ["t", "t"]}}),
            vec![(code::INVALID_VISIBILITY, at("visibility.scoped.teams[1]"))],
        ),
        (
            json!({"published": true}),
            vec![
                (code::UNKNOWN_FIELD, at("visibility.published")),
                (code::INVALID_VISIBILITY, at("visibility")),
            ],
        ),
    ] {
        assert_eq!(faults(&with("visibility", value.clone())), expected, "{value}");
    }
}

#[test]
fn output_schemas_must_compile_and_never_fetch() {
    for schema in [
        json!("object"),
        json!(true),
        json!({"type": "strin"}),
        json!({"$ref": "https://example.com/schema.json"}),
        json!({"$ref": "file:///etc/passwd"}),
        json!({"properties": {"a": {"pattern": "(unclosed"}}}),
    ] {
        let got = faults(&with("output_schema", schema.clone()));
        assert_eq!(
            got,
            [(code::INVALID_OUTPUT_SCHEMA, "output_schema".to_string())],
            "{schema}"
        );
    }
    // A reference inside the schema is fine.
    let local = json!({"$defs": {"n": {"type": "integer"}}, "properties": {"a": {"$ref": "#/$defs/n"}}});
    assert!(from_value(&with("output_schema", local)).is_ok());
    let e = from_value(&with("output_schema", json!({"type": "strin"}))).unwrap_err();
    assert!(
        e[0].message.starts_with("the output schema does not compile: "),
        "{}",
        e[0].message
    );
}

#[test]
fn outputs_are_validated_with_paths_and_schemas_compiled_once() {
    let schema = manifest()["output_schema"].clone();
    assert_eq!(validate_output(&schema, &json!({"documents": ["a.pdf"]})), Ok(()));
    let errors = validate_output(&schema, &json!({"documents": ["a.pdf", 7]})).unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].starts_with("/documents/1: "), "{errors:?}");
    let errors = validate_output(&schema, &json!([])).unwrap_err();
    assert!(errors[0].starts_with("(root): "), "{errors:?}");
    let errors = validate_output(&json!({"type": "strin"}), &json!(1)).unwrap_err();
    assert!(errors[0].starts_with("(schema): "), "{errors:?}");

    // Equal schemas share one compiled validator, whatever their key order.
    let a = json!({"type": "object", "title": "cache-test", "required": ["x"]});
    let b: Value = serde_json::from_str(r#"{"required": ["x"], "title": "cache-test", "type": "object"}"#).unwrap();
    validate_output(&a, &json!({})).unwrap_err();
    let first = compiled(&a).unwrap();
    let second = compiled(&b).unwrap();
    assert!(Arc::ptr_eq(&first, &second));
    // The cache stays bounded.
    for i in 0..SCHEMA_CACHE_ENTRIES + 10 {
        validate_output(&json!({"title": format!("bound-{i}")}), &json!(1)).unwrap();
    }
    assert!(cached_schemas() <= SCHEMA_CACHE_ENTRIES);
}

#[test]
fn codes_are_listed() {
    assert_eq!(code::ALL.len(), 11);
    let unique: BTreeSet<_> = code::ALL.iter().collect();
    assert_eq!(unique.len(), code::ALL.len());
}
