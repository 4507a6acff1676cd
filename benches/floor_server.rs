//! The floor for `make bench`: a bare actix-web server that answers
//! `POST /log` with a 202 and a fixed body, parsing and storing nothing.
//! The load generator puts the single-log load on it too, so the table shows
//! what this machine, actix-web and the generator allow before any work of
//! ours. Usage: `floor_server PORT` (loopback only).

use actix_web::{App, HttpResponse, HttpServer, web};

const ACCEPTED: &str = r#"{"status":"accepted","id":"0190a5dc-ac96-774b-bcce-b302099a8057"}"#;

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = match std::env::args().nth(1).map(|p| p.parse()) {
        Some(Ok(port)) => port,
        _ => {
            eprintln!("usage: floor_server PORT");
            std::process::exit(2);
        }
    };
    HttpServer::new(|| {
        App::new()
            .route(
                "/log",
                web::post().to(|_body: web::Bytes| async {
                    HttpResponse::Accepted()
                        .content_type("application/json")
                        .body(ACCEPTED)
                }),
            )
            .route(
                "/health",
                web::get().to(|| async {
                    HttpResponse::Ok().json(serde_json::json!({"status": "healthy"}))
                }),
            )
    })
    .bind(("127.0.0.1", port))?
    .run()
    .await
}
