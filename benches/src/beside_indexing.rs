//! `refbook-model-bench --sections indexing`: readers' first tokens from the local model
//! while a book's text is being embedded on the same cores, in one run: the machine
//! otherwise idle, indexing as the server wires it (it waits for readers' answers between
//! its batches), and indexing that does not wait (an embedder source the model does not
//! announce its readers to).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use refbook_core::books::{BookTexts, Isbn};
use refbook_core::config::BookSettings;
use refbook_core::domain::{TextFormat, TextScope, TextState};
use refbook_core::embed::{EmbedRef, EmbedderSource};
use refbook_core::llm::ChatModel;
use refbook_core::store::{SqlStore, Store};

use crate::latency::Latencies;
use crate::model_runs;

/// One way of running beside the chat.
enum Beside {
    Nothing,
    /// Indexing with this embedder source (whose foreground the model may or may not
    /// announce readers to).
    Indexing(Arc<EmbedderSource>),
}

/// The embedder source in `folder` (loaded on first use).
pub fn embedder_source(folder: &Path) -> Arc<EmbedderSource> {
    Arc::new(EmbedderSource::new(
        EmbedRef::Folder(folder.to_path_buf()),
        None,
        String::new(),
    ))
}

/// Asks `runs` bare questions (64 tokens, greedy, each prompt new) of `model` three times:
/// idle, beside indexing through `linked` (the source whose foreground the model
/// announces its readers to) and beside indexing through `unlinked`; prints first
/// tokens, decoding rates and how far indexing got meanwhile.
///
/// # Errors
///
/// When the book cannot be read or stored, or a model fails.
pub async fn first_tokens_beside_indexing(
    model: &dyn ChatModel,
    linked: Arc<EmbedderSource>,
    unlinked: Arc<EmbedderSource>,
    book: &Path,
    runs: usize,
) -> anyhow::Result<()> {
    let markdown = std::fs::read(book).with_context(|| format!("reading {}", book.display()))?;
    println!(
        "\n## A reader's first token while {} ({} KB) is indexed (median of {runs})",
        book.display(),
        markdown.len() / 1024
    );
    // Both embedders loaded before anything is timed.
    for source in [&linked, &unlinked] {
        source
            .get()
            .await
            .context("the embedder could not be loaded")?;
    }
    let modes = [
        ("idle", Beside::Nothing),
        ("indexing, readers first", Beside::Indexing(linked)),
        ("indexing, not waiting", Beside::Indexing(unlinked)),
    ];
    for (seed, (name, beside)) in modes.into_iter().enumerate() {
        let dir = tempfile::tempdir()?;
        let url = format!("sqlite://{}", dir.path().join("beside.db").display());
        let store: Arc<dyn Store> = Arc::new(SqlStore::connect(&url).await?);
        let indexing = match beside {
            Beside::Nothing => None,
            Beside::Indexing(source) => {
                let texts = BookTexts::new(store, &BookSettings::default(), source);
                let isbn = Isbn::parse("9787536692930").map_err(|e| anyhow!("{e}"))?;
                texts
                    .add(
                        &isbn,
                        TextScope::Library,
                        TextFormat::Markdown,
                        markdown.clone(),
                    )
                    .await?;
                // Under way: the first vectors are stored.
                let deadline = Instant::now() + Duration::from_secs(120);
                while vectors(&texts, &isbn).await?.0 == 0 {
                    if Instant::now() > deadline {
                        bail!("indexing never started");
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Some((texts, isbn))
            }
        };
        let before = match &indexing {
            Some((texts, isbn)) => vectors(texts, isbn).await?.0,
            None => 0,
        };
        let started = Instant::now();
        let (mut first, mut rates) = (Latencies::default(), Vec::new());
        for run in 0..runs {
            let request = model_runs::chat(
                &model_runs::librarian(1000 * (seed + 1) + run),
                &[("Tell me about this book and why people like it.", None)],
                64,
            );
            let (timed, _) = model_runs::measure(model, request).await?;
            first.push(timed.first);
            rates.push(timed.rate);
            // A reader reads the answer before the next question: indexing's turn.
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let elapsed = started.elapsed().as_secs_f64();
        let progress = match &indexing {
            Some((texts, isbn)) => {
                let (done, total, ready) = vectors(texts, isbn).await?;
                format!(
                    "; indexing meanwhile {:.1} passages/s ({done}/{total}{})",
                    (done - before) as f64 / elapsed,
                    if ready {
                        ", finished: use a longer book"
                    } else {
                        ""
                    }
                )
            }
            None => String::new(),
        };
        rates.sort_by(f64::total_cmp);
        println!(
            "{name}: first token {}; decoding median {:.1} tokens/s{progress}",
            first.summary(),
            rates.get(rates.len() / 2).copied().unwrap_or(0.0)
        );
    }
    Ok(())
}

/// `(chunks with a vector, chunks, serving)` of the library's text of `isbn`.
async fn vectors(texts: &BookTexts, isbn: &Isbn) -> anyhow::Result<(usize, usize, bool)> {
    let info = texts
        .info(isbn, TextScope::Library)
        .await?
        .context("the text is gone")?;
    Ok((info.vectors, info.chunks, info.state == TextState::Ready))
}
