//! Integration tests of the server: one binary, one `spawn_app` helper (zero2prod style).
//! Requests go through the real router in process (no socket); the browser tests in `end2end/`
//! cover the real network and the hydrated page.

use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use bioviewer::import::import_bytes;
use bioviewer::store::sqlite::SqliteStore;
use bioviewer::store::{DocumentSource, Store};
use tower::ServiceExt;

struct TestApp {
    router: Router,
    store: Arc<dyn Store>,
}

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/ans-cr-bio")
}

/// A fresh app over its own in-memory database (nothing shared between tests).
async fn spawn_app() -> TestApp {
    bioviewer::telemetry::init("warn");
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open("sqlite::memory:").await.expect("in-memory SQLite"));
    let site = tempfile::tempdir().expect("temp site root").keep();
    let normaliser = Arc::new(bioviewer::history::Normaliser::load(None).expect("shipped tables"));
    let router = bioviewer::http::router(store.clone(), normaliser, &site);
    TestApp { router, store }
}

impl TestApp {
    async fn import_corpus_file(&self, name: &str) -> bioviewer::import::ImportOutcome {
        let raw = std::fs::read(corpus_dir().join(name)).expect("corpus file");
        import_bytes(self.store.as_ref(), name, raw, DocumentSource::File).await.expect("import")
    }

    async fn get(&self, path: &str) -> (StatusCode, String) {
        let response = self.router.clone().oneshot(Request::get(path).body(Body::empty()).unwrap()).await.expect("response");
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 16 * 1024 * 1024).await.expect("body");
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }
}

#[tokio::test]
async fn health_reports_the_schema_version() {
    let app = spawn_app().await;
    let (status, body) = app.get("/healthz").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("\"schema_version\":1"), "{body}");
}

#[tokio::test]
async fn patient_list_shows_imported_patient_in_french() {
    let app = spawn_app().await;
    app.import_corpus_file("BIO-CR-BIO_2024.01_TSH_1.xml").await;
    let (status, body) = app.get("/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains(r#"<html lang="fr""#), "French by default");
    assert!(body.contains("PAT-TROIS"), "the patient is listed");
    assert!(body.contains("279035121518989"), "with their INS");
    assert!(body.contains("INS de test"), "marked as a test INS");
}

#[tokio::test]
async fn patient_page_lists_documents_newest_first() {
    let app = spawn_app().await;
    let first = app.import_corpus_file("BIO-CR-BIO_2024.01_TSH_1.xml").await;
    app.import_corpus_file("BIO-CR-BIO_2024.01_TSH_2.xml").await;
    let patient = first.patient.expect("patient recorded");
    let (status, body) = app.get(&format!("/patients/{patient}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("Laboratoire des charmes") && body.contains("Laboratoire des SORTES"), "both laboratories' reports are listed");
    let documents = app.store.patient_documents(bioviewer::domain::PatientId::parse(&patient).unwrap()).await.unwrap();
    assert_eq!(documents.len(), 2);
    let times: Vec<_> = documents.iter().map(|d| d.index.as_ref().unwrap().effective_time.unwrap().epoch_seconds()).collect();
    assert!(times[0] >= times[1], "newest first");
}

#[tokio::test]
async fn same_bytes_are_stored_once() {
    let app = spawn_app().await;
    let first = app.import_corpus_file("BIO-CR-BIO_2024.01_TSH_1.xml").await;
    let second = app.import_corpus_file("BIO-CR-BIO_2024.01_TSH_1.xml").await;
    assert!(!first.already_present);
    assert!(second.already_present);
    assert_eq!(first.stored, second.stored);
    let raw =
        app.store.document_raw(bioviewer::domain::DocumentId::parse(first.stored.as_deref().unwrap()).unwrap()).await.unwrap().unwrap();
    assert_eq!(raw, std::fs::read(corpus_dir().join("BIO-CR-BIO_2024.01_TSH_1.xml")).unwrap(), "bytes kept verbatim");
}

#[tokio::test]
async fn unreadable_document_is_kept_with_its_reason() {
    let app = spawn_app().await;
    let outcome = import_bytes(app.store.as_ref(), "broken.xml", b"<ClinicalDocument><id".to_vec(), DocumentSource::File).await.unwrap();
    assert!(outcome.stored.is_some(), "stored despite the error");
    assert!(outcome.problem.as_deref().unwrap_or_default().contains("XML"), "{outcome:?}");
    assert_eq!(outcome.patient, None);
}

#[tokio::test]
async fn unknown_patient_is_a_clear_not_found() {
    let app = spawn_app().await;
    let (_, body) = app.get("/patients/00000000-0000-4000-8000-000000000000").await;
    assert!(body.contains("Patient introuvable"), "{body}");
    let (status, _) = app.get("/no/such/page").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn whole_corpus_imports_under_one_patient() {
    let app = spawn_app().await;
    let mut names: Vec<_> = std::fs::read_dir(corpus_dir()).unwrap().map(|e| e.unwrap().file_name()).collect();
    names.sort();
    for name in &names {
        let outcome = app.import_corpus_file(&name.to_string_lossy()).await;
        assert!(outcome.stored.is_some(), "{name:?}");
    }
    let patients = app.store.list_patients().await.unwrap();
    assert_eq!(patients.len(), 1, "the corpus has one fictitious patient");
    assert_eq!(patients[0].document_count as usize, names.len());
}

#[tokio::test]
async fn history_api_serves_the_normalised_structure() {
    let app = spawn_app().await;
    let first = app.import_corpus_file("BIO-CR-BIO_2024.01_TSH_1.xml").await;
    app.import_corpus_file("BIO-CR-BIO_2024.01_TSH_2.xml").await;
    app.import_corpus_file("BIO-CR-BIO_2024.01_CRP_non_LOINC.xml").await;
    let patient = first.patient.unwrap();
    let (status, body) = app.get(&format!("/api/patients/{patient}/history")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let history: serde_json::Value = serde_json::from_str(&body).unwrap();
    let tsh = history["series"].as_array().unwrap().iter().find(|s| s["analyte"] == "tsh").expect("a TSH series");
    assert_eq!(tsh["points"].as_array().unwrap().len(), 2, "TSH from two laboratories");
    assert!(history["series"].as_array().unwrap().iter().any(|s| s["analyte"] == "crp"), "the local-code CRP is mapped");
    let (status, _) = app.get("/api/patients/00000000-0000-4000-8000-000000000000/history").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app.get("/api/patients/not-a-uuid/history").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn history_exports_as_csv() {
    let app = spawn_app().await;
    let first = app.import_corpus_file("BIO-CR-BIO_2024.01_Glycémie deux unités principales_mole_masse.xml").await;
    let patient = first.patient.unwrap();
    let (status, body) = app.get(&format!("/api/patients/{patient}/history.csv?units=conventional")).await;
    assert_eq!(status, StatusCode::OK);
    let glucose: Vec<&str> = body.lines().filter(|l| l.starts_with("glucose_fasting,")).collect();
    assert_eq!(glucose.len(), 2, "one line per source of the dual-unit point: {body}");
    assert!(glucose.iter().all(|l| l.contains(",g/L,")), "in the requested unit system");
}

#[tokio::test]
async fn attachments_are_served_only_through_their_patient() {
    let app = spawn_app().await;
    let tsh = app.import_corpus_file("BIO-CR-BIO_2024.01_TSH_1.xml").await;
    let patient = tsh.patient.clone().unwrap();
    let document = tsh.stored.clone().unwrap();
    let response = app
        .router
        .clone()
        .oneshot(Request::get(format!("/api/patients/{patient}/documents/{document}/attachments/0")).body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/pdf");
    let bytes = axum::body::to_bytes(response.into_body(), 16 * 1024 * 1024).await.unwrap();
    assert!(bytes.starts_with(b"%PDF"));
    // The same document asked for under another patient id is not found.
    let other = "00000000-0000-4000-8000-000000000000";
    let (status, _) = app.get(&format!("/api/patients/{other}/documents/{document}/attachments/0")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app.get(&format!("/api/patients/{patient}/documents/{document}/attachments/9")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn history_exports_as_a_fhir_bundle() {
    let app = spawn_app().await;
    let first = app.import_corpus_file("BIO-CR-BIO_2024.01_TSH_2.xml").await;
    let patient = first.patient.unwrap();
    let response = app
        .router
        .clone()
        .oneshot(Request::get(format!("/api/patients/{patient}/history.fhir.json")).body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("application/fhir+json"));
    let bytes = axum::body::to_bytes(response.into_body(), 16 * 1024 * 1024).await.unwrap();
    let bundle: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(bundle["type"], "collection");
    assert!(bundle["entry"].as_array().unwrap().iter().any(|e| e["resource"]["code"]["coding"][0]["code"] == "29575-8"));
}
