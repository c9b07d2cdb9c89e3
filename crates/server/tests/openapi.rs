//! The OpenAPI document is a contract: any change to a route, a parameter or a schema shows
//! up here as a diff to review. After an intended change, regenerate the snapshot with
//! `UPDATE_SNAPSHOTS=1 cargo test -p safegpt --test openapi` and commit it.

use std::path::PathBuf;

#[test]
fn the_openapi_document_matches_its_snapshot() {
    let (_, document) = safegpt::web::api::router().split_for_parts();
    let actual = format!("{}\n", document.to_pretty_json().expect("the document serializes"));
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/openapi.json");
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, &actual).expect("write the snapshot");
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    if actual != expected {
        let first_difference = actual
            .lines()
            .zip(expected.lines())
            .enumerate()
            .find(|(_, (a, e))| a != e)
            .map(|(n, (a, e))| format!("line {}: now `{a}`, snapshot `{e}`", n + 1))
            .unwrap_or_else(|| "one document is a prefix of the other".into());
        panic!(
            "the OpenAPI document differs from tests/snapshots/openapi.json ({first_difference}); \
             if the change is intended, run UPDATE_SNAPSHOTS=1 cargo test -p safegpt --test openapi"
        );
    }
}
