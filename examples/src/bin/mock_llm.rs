//! A tiny OpenAI-compatible model server that streams an answer repeating the question —
//! enough to try the whole flow (server, CLI) without an API key.
//!
//! ```text
//! cargo run -p refbook-examples --features mock-llm --bin mock_llm   # listens on 127.0.0.1:11435
//! REFBOOK_LLM_BASE_URL=http://127.0.0.1:11435 REFBOOK_LLM_API_KEY=mock \
//!     cargo run -p refbook-cli -- chat --isbn 9787536692930
//! ```

use refbook_core::testing::MockLlm;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:11435".to_owned());
    let llm = MockLlm::start_on(addr.parse()?).await;
    println!(
        "mock OpenAI-compatible model at {} (Ctrl-C to stop)",
        llm.url()
    );
    println!(
        "use: REFBOOK_LLM_BASE_URL={} REFBOOK_LLM_API_KEY=mock",
        llm.url()
    );
    tokio::signal::ctrl_c().await?;
    Ok(())
}
