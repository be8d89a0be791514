//! The dashboard's static files, embedded in the binary and served at
//! `/ui/static/NAME` with their content types: the vendored htmx and
//! uPlot (`ui/static/vendor/`, with their licences and where they came
//! from) and the dashboard's own stylesheet and plot script. They hold
//! nothing of the edge's state, so they need no session (the sign-in page
//! uses the stylesheet too). Pages link them with `?v=<version>`, so they
//! may be cached for a day.

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

/// Name, content type, bytes.
const FILES: [(&str, &str, &[u8]); 5] = [
    (
        "htmx.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../ui/static/vendor/htmx/htmx.min.js"),
    ),
    (
        "uPlot.iife.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../ui/static/vendor/uplot/uPlot.iife.min.js"),
    ),
    (
        "uPlot.min.css",
        "text/css; charset=utf-8",
        include_bytes!("../../../ui/static/vendor/uplot/uPlot.min.css"),
    ),
    (
        "dashboard.css",
        "text/css; charset=utf-8",
        include_bytes!("../../../ui/static/dashboard.css"),
    ),
    (
        "traffic.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../ui/static/traffic.js"),
    ),
];

/// `GET /ui/static/{file}`.
pub(super) async fn serve(Path(file): Path<String>) -> Response {
    match FILES.iter().find(|(name, _, _)| *name == file) {
        Some((_, content_type, bytes)) => (
            [
                (header::CONTENT_TYPE, *content_type),
                (header::CACHE_CONTROL, "public, max-age=86400"),
            ],
            *bytes,
        )
            .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "the dashboard has no such static file",
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_is_there_with_a_type_that_matches_its_name() {
        for (name, content_type, bytes) in FILES {
            assert!(bytes.len() > 100, "{name} is nearly empty");
            let want = if name.ends_with(".js") {
                "text/javascript"
            } else {
                "text/css"
            };
            assert!(content_type.starts_with(want), "{name}: {content_type}");
        }
    }
}
