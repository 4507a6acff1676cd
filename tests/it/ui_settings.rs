//! The dashboard's settings (`[ui]`, issue 25): `GET /api/ui` answers what
//! is set (and `null` for what is not), and a setting the dashboard could
//! not use stops the server at start with exit code 2, naming its key.

use crate::support::{Launch, Server, run_to_exit};
use awc::http::StatusCode;
use serde_json::json;

const TEMPO: &str = "https://tempo.example/explore?traceId={trace_id}&orgId=1";

#[actix_web::test]
async fn the_trace_url_reaches_the_dashboard_and_a_bad_one_stops_the_start() {
    let unset = Server::start().await;
    let (status, ui) = unset.get("/api/ui").await;
    assert_eq!(status, StatusCode::OK, "{ui}");
    assert_eq!(ui, json!({"trace_url": null}));
    drop(unset);

    let set = Server::launch(Launch::default().env("OGLOGSTREAM_UI__TRACE_URL", TEMPO)).await;
    let (status, ui) = set.get("/api/ui").await;
    assert_eq!(status, StatusCode::OK, "{ui}");
    assert_eq!(ui, json!({"trace_url": TEMPO}));
    drop(set);

    for bad in [
        "tempo.example/explore?traceId={trace_id}",
        "https://tempo.example/explore",
    ] {
        let output = run_to_exit(&[], &[("OGLOGSTREAM_UI__TRACE_URL", bad)]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{bad}: {stderr}");
        assert!(
            stderr.contains("ui.trace_url") && stderr.contains("OGLOGSTREAM_UI__TRACE_URL"),
            "{bad}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}
