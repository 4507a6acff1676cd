//! The embedded dashboard: index at `/` and at client-side routes (SPA
//! fallback), hashed assets cached for a year, `index.html` never cached,
//! API paths never answered with HTML.

use crate::support::Server;
use awc::http::StatusCode;

const BROWSER_ACCEPT: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

async fn fetch(server: &Server, path: &str) -> (StatusCode, String, String, String) {
    // As a browser asks: without `text/html` in `Accept`, `GET /` answers
    // as an Elasticsearch cluster for the shippers' clients.
    let mut response = server
        .client
        .get(server.url(path))
        .insert_header(("Accept", BROWSER_ACCEPT))
        .send()
        .await
        .unwrap();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    };
    let (content_type, cache) = (header("content-type"), header("cache-control"));
    let body = response.body().limit(16 << 20).await.unwrap();
    (
        response.status(),
        content_type,
        cache,
        String::from_utf8_lossy(&body).into_owned(),
    )
}

#[actix_web::test]
async fn index_assets_and_spa_fallback() {
    let server = Server::start().await;
    let (status, content_type, cache, index) = fetch(&server, "/").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type, "text/html; charset=utf-8");
    assert_eq!(cache, "no-cache");

    let (status, _, _, deep_link) = fetch(&server, "/explorer?level=error").await;
    assert_eq!(
        (status, &deep_link),
        (StatusCode::OK, &index),
        "client-side routes get the app"
    );
    let (status, _, _, short_link) = fetch(&server, "/v/k3x9q2mw7h").await;
    assert_eq!(
        (status, &short_link),
        (StatusCode::OK, &index),
        "a saved view's short link is the app's route"
    );

    if let Some(start) = index.find("/assets/") {
        let end = start + index[start..].find('"').unwrap();
        let asset = &index[start..end];
        let (status, content_type, cache, _) = fetch(&server, asset).await;
        assert_eq!(status, StatusCode::OK, "{asset}");
        assert!(
            content_type.starts_with("text/javascript") || content_type.starts_with("text/css"),
            "{content_type}"
        );
        assert_eq!(cache, "public, max-age=31536000, immutable");
    } else {
        // Only a build without Node serves the placeholder page.
        assert!(index.contains("oglogstream placeholder"), "{index}");
    }

    let (status, content_type, _, _) = fetch(&server, "/assets/missing-0000.js").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(content_type.starts_with("application/json"));
    let (status, content_type, _, _) = fetch(&server, "/api/unknown").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        content_type.starts_with("application/json"),
        "API paths never get the app"
    );
}
