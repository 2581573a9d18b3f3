//! Serves the HTTP API from your own program, on your own database.
//!
//! ```text
//! cargo run -p refbook-examples --bin serve -- sqlite://my-app.db 127.0.0.1:8080
//! cargo run -p refbook-examples --bin serve -- postgres://postgres@127.0.0.1/mydb
//! ```

use refbook_core::Refbook;
use refbook_http::ServerConfig;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let database_url = args
        .next()
        .unwrap_or_else(|| "sqlite://my-app.db".to_owned());
    let bind = args.next().unwrap_or_else(|| "127.0.0.1:8080".to_owned());
    // Start from the environment (REFBOOK_LLM_API_KEY, …) and set what this program owns.
    // The server's settings (address, limits) beside the core's, from one environment.
    let ServerConfig { core, http } =
        ServerConfig::from_env(None, &[("database_url", database_url), ("bind", bind)])?;
    refbook_http::telemetry::init(&http);
    let listener = tokio::net::TcpListener::bind(http.bind).await?;
    println!("serving on http://{}", listener.local_addr()?);
    let refbook = Refbook::builder(core).build().await?;
    refbook_http::serve(listener, refbook, http, refbook_http::shutdown_signal()).await?;
    Ok(())
}
