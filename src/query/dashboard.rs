//! The dashboard: web/dist embedded into the binary and served at `/` with
//! SPA fallback. Hashed assets (`/assets/*`) are cached for a year;
//! `index.html` is never cached, so a new release is picked up at once.
//! (Debug builds read web/dist from disk, so a fresh `npm run build` shows
//! without recompiling.)

use crate::http::error::ApiError;
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::{HttpRequest, HttpResponse};
use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "web/dist/"]
struct Assets;

/// Paths that belong to the API: never answered with the SPA's index.
const API_PREFIXES: &[&str] = &["/api/", "/ws/", "/log/"];
const API_PATHS: &[&str] = &["/log", "/health", "/metrics"];

pub async fn serve(request: HttpRequest) -> Result<HttpResponse, ApiError> {
    let path = request.path();
    if !matches!(*request.method(), Method::GET | Method::HEAD)
        || API_PREFIXES.iter().any(|prefix| path.starts_with(prefix))
        || API_PATHS.contains(&path)
    {
        return crate::http::not_found(request).await;
    }
    let wanted = path.trim_start_matches('/');
    let (name, file) = match Assets::get(wanted).filter(|_| !wanted.is_empty()) {
        Some(file) => (wanted, file),
        // Client-side routes (/explorer, /live?...) get the app; a missing
        // hashed asset is a real 404.
        None if wanted.starts_with("assets/") => {
            return Err(ApiError::not_found(format!("no asset {path}")));
        }
        None => match Assets::get("index.html") {
            Some(file) => ("index.html", file),
            None => {
                return Err(ApiError::not_found(
                    "the dashboard is not built into this binary",
                ));
            }
        },
    };
    let etag = format!("\"{}\"", hex(&file.metadata.sha256_hash()[..12]));
    let cache = if name.starts_with("assets/") {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let not_modified = request
        .headers()
        .get(header::IF_NONE_MATCH)
        .is_some_and(|value| value.as_bytes() == etag.as_bytes());
    let mut response = if not_modified {
        HttpResponse::build(StatusCode::NOT_MODIFIED)
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static(content_type(name)),
        ))
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static(cache)))
        .insert_header((header::ETAG, etag))
        .insert_header(("X-Content-Type-Options", "nosniff"));
    if not_modified {
        return Ok(response.finish());
    }
    // For HEAD, actix drops the body but keeps its Content-Length.
    Ok(response.body(file.data.into_owned()))
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
