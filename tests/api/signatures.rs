//! Signed bundles: OPA's JWT `.signatures.json`, verified against the
//! tenant's keys before a version can be stored or activated.

use reqwest::{Method, StatusCode};
use serde_json::json;
use warden::policy::signature::{Algorithm, SigningKey};

use crate::common::*;
use crate::on_both_backends;

on_both_backends!(
    signatures_are_verified_and_can_be_required,
    rs256_and_es256_bundles_signed_by_another_implementation_load_and_warden_signs_what_it_verifies,
);

fn signing_key(id: &str) -> (SigningKey, String) {
    let key = warden::keys::generate();
    let private = warden::keys::private_pem(&key).unwrap();
    let public = warden::keys::public_pem(&key).unwrap();
    (SigningKey::from_pem(id, Algorithm::EdDSA, &private).unwrap(), public)
}

async fn signatures_are_verified_and_can_be_required(backend: Backend) {
    let app = spawn_app(backend).await;
    let (key, public) = signing_key("compliance-2026");
    let (stranger, _) = signing_key("compliance-2026");

    let r = app
        .call(
            Method::POST,
            "/v1/keys",
            Some(&app.admin),
            Some(json!({"key_id": "compliance-2026", "algorithm": "EdDSA", "public_key": public})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = app
        .call(
            Method::POST,
            "/v1/keys",
            Some(&app.admin),
            Some(json!({"key_id": "junk", "algorithm": "EdDSA", "public_key": "not a pem"})),
        )
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::UNPROCESSABLE_ENTITY, "key_invalid"));
    let r = app
        .call(
            Method::PUT,
            "/v1/settings",
            Some(&app.admin),
            Some(json!({"require_signatures": true})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);

    // Unsigned: refused.
    let r = app.upload(&app.admin, "commissioning", commissioning_bundle("1")).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "signature_required")
    );
    // Signed with a key the tenant does not trust: refused.
    let forged = warden::cli::bundle::sign(&commissioning_bundle("1"), &stranger, None).unwrap();
    let r = app.upload(&app.admin, "commissioning", forged).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "signature_invalid")
    );
    // Signed, then a policy file altered: refused, naming the file.
    let signed = warden::cli::bundle::sign(&commissioning_bundle("1"), &key, None).unwrap();
    let mut files = warden::policy::archive::read(&signed, &Default::default()).unwrap();
    for f in files.iter_mut().filter(|f| f.path == "routing.rego") {
        f.bytes = String::from_utf8(f.bytes.clone())
            .unwrap()
            .replace("== 0", ">= 0")
            .into_bytes();
    }
    let tampered = warden::policy::archive::write(&files).unwrap();
    let r = app.upload(&app.admin, "commissioning", tampered).await;
    assert_eq!(r.code(), "signature_file_mismatch");
    assert!(r.body["detail"].as_str().unwrap().contains("routing.rego"));
    assert_eq!(app.stored_versions(&app.admin).await, 0, "nothing refused is stored");

    // Properly signed: stored with its signer, activated, answering.
    let r = app.upload(&app.admin, "commissioning", signed).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["signed_by"], "compliance-2026");
    assert_eq!(
        app.activate(&app.admin, "commissioning", "1").await.status,
        StatusCode::OK
    );
    let r = app
        .decide(
            &app.admin,
            json!({"path": "agento/commissioning/routing/allow", "input": ready_input()}),
        )
        .await;
    assert_eq!(r.body["result"], true);

    // A version uploaded unsigned before the requirement cannot be activated after it.
    let r = app
        .call(
            Method::PUT,
            "/v1/settings",
            Some(&app.admin),
            Some(json!({"require_signatures": false})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        app.upload(&app.admin, "commissioning", commissioning_bundle("2"))
            .await
            .status,
        StatusCode::CREATED
    );
    app.call(
        Method::PUT,
        "/v1/settings",
        Some(&app.admin),
        Some(json!({"require_signatures": true})),
    )
    .await;
    let r = app.activate(&app.admin, "commissioning", "2").await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "signature_required")
    );
    app.stop().await;
}

/// The signer beside this file (`tests/fixtures/opa_signer.py`): PyJWT and
/// `cryptography`, written from OPA's signing format, not from Warden's.
fn signer(args: &[&str]) -> String {
    let script = repo_path("tests/fixtures/opa_signer.py");
    let out = std::process::Command::new("python3")
        .arg(&script)
        .args(args)
        .output()
        .expect("python3 runs the signer");
    assert!(
        out.status.success(),
        "opa_signer.py {args:?} (needs: pip install pyjwt cryptography): {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// RS256 and ES256, both ways: a bundle signed by an independent
/// implementation of OPA's format is accepted, and refused once a file is
/// changed; a bundle `warden bundle sign --algorithm` signs verifies with
/// the independent verifier.
async fn rs256_and_es256_bundles_signed_by_another_implementation_load_and_warden_signs_what_it_verifies(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let dir = tempfile::tempdir().unwrap();
    for (n, alg) in ["RS256", "ES256"].into_iter().enumerate() {
        let at = |f: &str| dir.path().join(format!("{alg}-{f}"));
        let (private, public) = (at("key.pem"), at("pub.pem"));
        signer(&["keygen", alg, private.to_str().unwrap(), public.to_str().unwrap()]);
        let kid = format!("ci-{}", alg.to_lowercase());
        let r = app
            .call(
                Method::POST,
                "/v1/keys",
                Some(&app.admin),
                Some(json!({"key_id": kid, "algorithm": alg,
                    "public_key": std::fs::read_to_string(&public).unwrap()})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{alg}: {}", r.body);

        // Signed elsewhere.
        let root = format!("signed_{}", alg.to_lowercase());
        let tree = at("bundle");
        std::fs::create_dir_all(tree.join(&root)).unwrap();
        let rego = format!("package {root}\n\nallow if input.amount < 1000\n");
        std::fs::write(tree.join(&root).join("policy.rego"), &rego).unwrap();
        std::fs::write(
            tree.join(".manifest"),
            json!({"revision": format!("{n}"), "roots": [root]}).to_string(),
        )
        .unwrap();
        let signatures = signer(&["sign", alg, private.to_str().unwrap(), &kid, tree.to_str().unwrap()]);
        let bundle = |rego: &str| {
            warden::policy::archive::write(&[
                warden::policy::archive::ArchiveFile {
                    path: ".manifest".into(),
                    bytes: std::fs::read(tree.join(".manifest")).unwrap(),
                },
                warden::policy::archive::ArchiveFile {
                    path: format!("{root}/policy.rego"),
                    bytes: rego.as_bytes().to_vec(),
                },
                warden::policy::archive::ArchiveFile {
                    path: ".signatures.json".into(),
                    bytes: signatures.trim().as_bytes().to_vec(),
                },
            ])
            .unwrap()
        };
        let r = app
            .upload(&app.admin, &root, bundle(&rego.replace("1000", "1000000")))
            .await;
        assert_eq!(r.code(), "signature_file_mismatch", "{alg}: {}", r.body);
        let r = app.upload(&app.admin, &root, bundle(&rego)).await;
        assert_eq!(r.status, StatusCode::CREATED, "{alg}: {}", r.body);
        assert_eq!(r.body["signed_by"], kid.as_str());
        let revision = format!("{n}");
        assert_eq!(app.activate(&app.admin, &root, &revision).await.status, StatusCode::OK);
        let r = app
            .decide(
                &app.admin,
                json!({"path": format!("{root}/allow"), "input": {"amount": 10}}),
            )
            .await;
        assert_eq!(r.body["result"], true, "{alg}: {}", r.body);

        // Signed by `warden bundle sign`, verified elsewhere.
        let built = at("built.tar.gz");
        std::fs::write(&built, commissioning_bundle("9")).unwrap();
        let (ok, out) = crate::cli::run(
            &[
                "bundle",
                "sign",
                built.to_str().unwrap(),
                "--key",
                private.to_str().unwrap(),
                "--key-id",
                &kid,
                "--algorithm",
                alg,
            ],
            &[],
        );
        assert!(ok, "{alg}: {out}");
        let unpacked = at("unpacked");
        let files = warden::policy::archive::read(&std::fs::read(&built).unwrap(), &Default::default()).unwrap();
        for f in &files {
            let path = unpacked.join(f.path.trim_start_matches('/'));
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, &f.bytes).unwrap();
        }
        let said = signer(&["verify", alg, public.to_str().unwrap(), unpacked.to_str().unwrap()]);
        assert!(said.starts_with("ok: ") && said.contains(&kid), "{alg}: {said}");
    }
    app.stop().await;
}
