//! More cases for the record codec (`record.rs`), kept in a file of their own while that file
//! changes elsewhere: the payload limit at its exact edge, the dialect and the grant names kept
//! by a round trip, and a version-2 field ignored in a version-1 record. Each one kills a mutant
//! that the codec's own tests let live (scripts/mutants; docs/development.md, "Mutation
//! testing").

use super::frame;
use super::record::{self, Grant, HEADER_LEN, MAGIC, MAX_PAYLOAD, Record, TooLarge};
use crate::flow::dialect::Dialect;
use crate::secret::Secret;

/// The record format's tag of the grant (version 2): a file format, so pinned here.
const TAG_GRANT: u8 = 12;

fn sample(scope: &str) -> Record {
    Record {
        refresh_token: Secret::new("5Aep861TSESvWeug"),
        client_id: "3MVG9KEY".into(),
        dialect: Dialect::Salesforce,
        login_url: "https://login.salesforce.com".into(),
        token_url: "https://login.salesforce.com/services/oauth2/token".into(),
        revoke_url: None,
        instance_url: "https://acme.my.salesforce.com".into(),
        identity_url: String::new(),
        scope: scope.into(),
        issued_at_ms: 1,
        paired_at: 2,
        grant: Grant::Device,
    }
}

fn payload_len(record: &Record) -> usize {
    record::to_bytes(record, 1).unwrap().len() - HEADER_LEN - record::CRC_LEN
}

#[test]
fn a_payload_of_exactly_the_limit_is_stored_and_one_byte_more_is_refused() {
    let base = payload_len(&sample(""));
    let fits = sample(&"s".repeat(MAX_PAYLOAD - base));
    assert_eq!(payload_len(&fits), MAX_PAYLOAD);
    let bytes = record::to_bytes(&fits, 1).unwrap();
    assert_eq!(record::decode(&bytes).unwrap().record, fits);
    let over = sample(&"s".repeat(MAX_PAYLOAD - base + 1));
    let err = record::to_bytes(&over, 1).unwrap_err();
    assert_eq!(err, TooLarge(MAX_PAYLOAD + 1));
    assert_eq!(
        err.to_string(),
        format!("record of {} bytes exceeds 8192", MAX_PAYLOAD + 1)
    );
}

#[test]
fn the_dialect_survives_a_round_trip() {
    for dialect in [Dialect::Rfc8628, Dialect::Salesforce] {
        let record = Record {
            dialect,
            ..sample("api")
        };
        let bytes = record::to_bytes(&record, 7).unwrap();
        assert_eq!(record::decode(&bytes).unwrap().record.dialect, dialect);
    }
}

#[test]
fn grants_are_named_as_the_flow_option_names_them() {
    let jwt = Grant::jwt_bearer("u".into(), "/k.pem".into(), "https://a".into());
    assert_eq!(Grant::Device.name(), "device");
    assert_eq!(jwt.name(), "jwt-bearer");
    assert_eq!(Grant::client_credentials().name(), "client-credentials");
}

#[test]
fn a_version_1_record_ignores_a_grant_field_only_version_2_knows() {
    let bytes = record::to_bytes(&sample("api"), 3).unwrap();
    assert_eq!(
        bytes[4],
        record::VERSION_DEVICE,
        "a device record is version 1"
    );
    let mut payload = bytes[HEADER_LEN..bytes.len() - record::CRC_LEN].to_vec();
    let grant = b"client-credentials";
    payload.push(TAG_GRANT);
    payload.extend_from_slice(&(grant.len() as u16).to_le_bytes());
    payload.extend_from_slice(grant);
    let mut v1 = Vec::new();
    frame::encode(
        &mut v1,
        &MAGIC,
        record::VERSION_DEVICE,
        bytes[5],
        3,
        &payload,
    );
    assert_eq!(record::decode(&v1).unwrap().record.grant, Grant::Device);
    // The same field in a version-2 record is read.
    let mut v2 = Vec::new();
    frame::encode(
        &mut v2,
        &MAGIC,
        record::VERSION_HEADLESS,
        bytes[5],
        3,
        &payload,
    );
    assert_eq!(
        record::decode(&v2).unwrap().record.grant,
        Grant::client_credentials()
    );
}
