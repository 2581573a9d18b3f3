//! Looks a book up with the default chain (stored copy, then the configured sources) and
//! prints it as the API's JSON.
//!
//! `cargo run -p refbook-examples --bin lookup -- 9787536692930`

use refbook_core::books::Isbn;
use refbook_core::{Config, Refbook};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let isbn = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "9787536692930".to_owned());
    // The same REFBOOK_* variables as the server; a SQLite file here by default.
    let mut config = Config::from_env(None, &[])?;
    if std::env::var_os("REFBOOK_DATABASE_URL").is_none() {
        config.database.url = "sqlite://refbook-example.db".into();
    }
    let refbook = Refbook::builder(config).build().await?;
    let book = refbook.books().get(&Isbn::parse(&isbn)?).await?;
    println!("{}", serde_json::to_string_pretty(&book)?);
    Ok(())
}
