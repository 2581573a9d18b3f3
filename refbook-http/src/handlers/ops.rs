//! Liveness and readiness.

use std::time::Duration;

use http::{Response, StatusCode};
use serde_json::json;

use crate::api_error::ApiError;
use crate::body::{json_response, ok_json, Body};
use crate::ctx::Ctx;

/// `GET /healthz`: the process serves.
pub async fn healthz(_ctx: Ctx) -> Result<Response<Body>, ApiError> {
    Ok(ok_json(&json!({ "status": "ok" })))
}

/// `GET /readyz`: 200 while the database answers within 2 s, else 503.
pub async fn readyz(ctx: Ctx) -> Result<Response<Body>, ApiError> {
    let ping = tokio::time::timeout(Duration::from_secs(2), ctx.refbook().store().ping()).await;
    Ok(match ping {
        Ok(Ok(())) => ok_json(&json!({ "status": "ok", "database": "ok" })),
        Ok(Err(err)) => {
            tracing::warn!(error = %err, "readiness: database failed");
            json_response(
                StatusCode::SERVICE_UNAVAILABLE,
                &json!({ "status": "unavailable", "database": "error" }),
            )
        }
        Err(_) => json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({ "status": "unavailable", "database": "timeout" }),
        ),
    })
}

/// `GET /metrics`: Prometheus text.
pub async fn metrics(ctx: Ctx) -> Result<Response<Body>, ApiError> {
    let answering = ctx.refbook().answering();
    let local = answering.local_model_report();
    let text = ctx
        .app
        .metrics()
        .render(answering.generating(), local.as_ref());
    let mut response = Response::new(crate::body::full(text));
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        ),
    );
    Ok(response)
}

/// `GET /api/openapi.json`: the OpenAPI 3.1 document of the API.
pub async fn openapi(ctx: Ctx) -> Result<Response<Body>, ApiError> {
    Ok(ok_json(ctx.app.openapi_document()))
}
