//! Authentication over real gRPC (quality.md R9): every bad token is UNAUTHENTICATED with
//! reason UNAUTHENTICATED; good tokens of every supported algorithm pass; health and reflection
//! need none.

use crate::helpers::{Bearer, reason, sign, spawn_app, spawn_with, test_config};
use guardian_service::auth::issue::TokenClaims;
use guardian_service::proto::{
    GetDomainSettingsRequest, settings_service_client::SettingsServiceClient,
};
use guardian_service::testing::{TempDir, TestDatabase};
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use std::time::Duration;
use tonic::Code;
use tonic::service::interceptor::InterceptedService;

fn admin_claims() -> TokenClaims {
    let mut c = TokenClaims::new("admin-1", "admin", Duration::from_secs(600));
    c.domain = Some("school.example".into());
    c
}

async fn get_settings(app: &crate::helpers::TestApp, bearer: Bearer) -> Result<(), tonic::Status> {
    let mut client =
        SettingsServiceClient::new(InterceptedService::new(app.channel.clone(), bearer));
    client
        .get_domain_settings(GetDomainSettingsRequest {
            domain: "school.example".into(),
        })
        .await
        .map(|_| ())
}

async fn assert_unauthenticated(app: &crate::helpers::TestApp, token: Option<&str>, case: &str) {
    let bearer = token.map(Bearer::new).unwrap_or_else(Bearer::none);
    let err = get_settings(app, bearer).await.expect_err(case);
    assert_eq!(err.code(), Code::Unauthenticated, "{case}");
    assert_eq!(reason(&err), "UNAUTHENTICATED", "{case}");
}

fn unsigned(claims: &TokenClaims, alg: &str) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header = b64.encode(format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#));
    let body = b64.encode(serde_json::to_vec(claims).unwrap());
    format!("{header}.{body}.")
}

#[tokio::test]
async fn bad_tokens_are_unauthenticated() {
    let app = spawn_app().await;
    assert!(
        get_settings(&app, Bearer::new(&sign(&admin_claims())))
            .await
            .is_ok()
    );

    assert_unauthenticated(&app, None, "no token").await;
    assert_unauthenticated(&app, Some("not-a-jwt"), "garbage").await;

    let mut expired = admin_claims();
    expired.exp = chrono::Utc::now().timestamp() - 120;
    assert_unauthenticated(&app, Some(&sign(&expired)), "expired beyond the leeway").await;

    let other = guardian_service::auth::issue::sign_hs256(
        &admin_claims(),
        b"another-secret-another-secret-0123456789",
    )
    .unwrap();
    assert_unauthenticated(&app, Some(&other), "signed with another secret").await;

    assert_unauthenticated(&app, Some(&unsigned(&admin_claims(), "none")), "alg none").await;
    assert_unauthenticated(&app, Some(&unsigned(&admin_claims(), "None")), "alg None").await;

    // Change the signature's first character: every bit of it counts (the last character of
    // a base64url signature carries padding bits, and may already be the replacement).
    let good = sign(&admin_claims());
    let at = good.rfind('.').expect("three parts") + 1;
    let first = good.as_bytes()[at];
    let replacement = if first == b'A' { "B" } else { "A" };
    let tampered = format!("{}{replacement}{}", &good[..at], &good[at + 1..]);
    assert_ne!(tampered, good);
    assert_unauthenticated(&app, Some(&tampered), "tampered signature").await;

    let mut not_yet = admin_claims();
    not_yet.nbf = Some(chrono::Utc::now().timestamp() + 600);
    assert_unauthenticated(&app, Some(&sign(&not_yet)), "not valid before ten minutes").await;

    let mut bad_role = admin_claims();
    bad_role.role = "superuser".into();
    assert_unauthenticated(&app, Some(&sign(&bad_role)), "unknown role").await;

    let mut no_domain = admin_claims();
    no_domain.domain = None;
    assert_unauthenticated(&app, Some(&sign(&no_domain)), "admin without domain").await;

    let mut guardian_without_email = admin_claims();
    guardian_without_email.role = "guardian".into();
    assert_unauthenticated(
        &app,
        Some(&sign(&guardian_without_email)),
        "guardian without email",
    )
    .await;
}

#[tokio::test]
async fn not_before_allows_sixty_seconds_of_clock_skew() {
    let app = spawn_app().await;
    let mut soon = admin_claims();
    soon.nbf = Some(chrono::Utc::now().timestamp() + 30);
    assert!(get_settings(&app, Bearer::new(&sign(&soon))).await.is_ok());
}

#[tokio::test]
async fn expiry_allows_sixty_seconds_of_clock_skew() {
    let app = spawn_app().await;
    let mut recent = admin_claims();
    recent.exp = chrono::Utc::now().timestamp() - 30;
    assert!(
        get_settings(&app, Bearer::new(&sign(&recent)))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn issuer_and_audience_are_checked_when_configured() {
    let db = TestDatabase::create_migrated().await;
    let config = guardian_service::config::ServeConfig {
        jwt_issuer: Some("https://idp.example".into()),
        jwt_audience: Some("guardian-service".into()),
        ..test_config(&db.url)
    };
    let app = spawn_with(config).await;
    let mut good = admin_claims();
    good.iss = Some("https://idp.example".into());
    good.aud = Some("guardian-service".into());
    assert!(get_settings(&app, Bearer::new(&sign(&good))).await.is_ok());

    let wrong_iss = TokenClaims {
        iss: Some("https://evil.example".into()),
        ..good.clone()
    };
    assert_unauthenticated(&app, Some(&sign(&wrong_iss)), "wrong issuer").await;
    let wrong_aud = TokenClaims {
        aud: Some("other-service".into()),
        ..good.clone()
    };
    assert_unauthenticated(&app, Some(&sign(&wrong_aud)), "wrong audience").await;
    let no_aud = TokenClaims {
        aud: None,
        ..good.clone()
    };
    assert_unauthenticated(&app, Some(&sign(&no_aud)), "missing audience").await;
    let no_iss = TokenClaims { iss: None, ..good };
    assert_unauthenticated(&app, Some(&sign(&no_iss)), "missing issuer").await;
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

#[tokio::test]
async fn public_keys_from_a_jwks_file_verify_rs256_es256_and_eddsa_with_rotation() {
    let keys = [
        (
            "rsa-1",
            Algorithm::RS256,
            EncodingKey::from_rsa_pem(&fixture("rsa-test-key.pem")).unwrap(),
        ),
        (
            "rsa-2",
            Algorithm::RS256,
            EncodingKey::from_rsa_pem(&fixture("rsa-test-key-2.pem")).unwrap(),
        ),
        (
            "ec-1",
            Algorithm::ES256,
            EncodingKey::from_ec_pem(&fixture("ec-test-key.pem")).unwrap(),
        ),
        (
            "ed-1",
            Algorithm::EdDSA,
            EncodingKey::from_ed_pem(&fixture("ed25519-test-key.pem")).unwrap(),
        ),
    ];
    let mut set = JwkSet { keys: Vec::new() };
    for (kid, alg, key) in &keys {
        let mut jwk = Jwk::from_encoding_key(key, *alg).unwrap();
        jwk.common.key_id = Some(kid.to_string());
        set.keys.push(jwk);
    }
    let dir = TempDir::new();
    let jwks_path = dir.path.join("jwks.json");
    std::fs::write(&jwks_path, serde_json::to_string(&set).unwrap()).unwrap();

    let db = TestDatabase::create_migrated().await;
    let config = guardian_service::config::ServeConfig {
        jwt_hs256_secret: None,
        jwks_file: Some(jwks_path),
        ..test_config(&db.url)
    };
    let app = spawn_with(config).await;
    for (kid, alg, key) in &keys {
        let mut header = Header::new(*alg);
        header.kid = Some(kid.to_string());
        let token = jsonwebtoken::encode(&header, &admin_claims(), key).unwrap();
        get_settings(&app, Bearer::new(&token))
            .await
            .unwrap_or_else(|e| panic!("{kid}: {e:?}"));
        // Without a kid, every key of the algorithm is tried: rotation without kids works too.
        let token = jsonwebtoken::encode(&Header::new(*alg), &admin_claims(), key).unwrap();
        get_settings(&app, Bearer::new(&token))
            .await
            .unwrap_or_else(|e| panic!("{kid} without kid: {e:?}"));
    }
    // A key named by kid but signed by another key of the set fails.
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("rsa-2".into());
    let token = jsonwebtoken::encode(&header, &admin_claims(), &keys[0].2).unwrap();
    assert_unauthenticated(&app, Some(&token), "kid of another key").await;
    // HS256 with the test secret is not configured on this server.
    assert_unauthenticated(&app, Some(&sign(&admin_claims())), "HS256 not configured").await;
}

#[tokio::test]
async fn health_and_reflection_need_no_token() {
    let app = spawn_app().await;
    let reply = app
        .health()
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap();
    assert_eq!(
        reply.into_inner().status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
}

#[tokio::test]
async fn development_mode_signs_with_a_generated_secret_and_stays_on_loopback() {
    let dir = TempDir::new();
    let db = TestDatabase::create_migrated().await;
    let config = guardian_service::config::ServeConfig {
        jwt_hs256_secret: None,
        data_dir: dir.path.clone(),
        ..test_config(&db.url)
    };
    // Refused on a non-loopback address.
    let public = tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
    let err = guardian_service::server::serve(config.clone(), public, async {})
        .await
        .unwrap_err();
    assert!(err.to_string().contains("loopback"), "{err}");

    let app = spawn_with(config).await;
    let secret = guardian_service::auth::dev::read_dev_secret(&dir.path).expect("secret created");
    let token = guardian_service::auth::issue::sign_hs256(&admin_claims(), &secret).unwrap();
    assert!(get_settings(&app, Bearer::new(&token)).await.is_ok());
    assert_unauthenticated(&app, Some(&sign(&admin_claims())), "another secret").await;
}
