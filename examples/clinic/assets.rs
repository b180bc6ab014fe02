//! The stylesheet and the script, compiled into the binary (no build step, no CDN).

use axum::extract::Path;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::failure::Failure;

const CSS: &str = include_str!("static/clinic.css");
const JS: &str = include_str!("static/clinic.js");

/// `GET /assets/{file}`.
pub async fn serve(Path(file): Path<String>) -> Response {
    let (body, content_type) = match file.as_str() {
        "clinic.css" => (CSS, "text/css; charset=utf-8"),
        "clinic.js" => (JS, "text/javascript; charset=utf-8"),
        _ => return Failure::not_found().into_page(None),
    };
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    response
}
