//! Books' texts indexed in the background, on SQLite and PostgreSQL: the old text serves
//! until the new one is ready, a half-indexed text is never searched, an interrupted run
//! (a process that dies) is taken up by another and resumes where its vectors stop, and
//! vectors missing while the embedder was away are filled in when it comes back.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use refbook_core::backend_tests;
use refbook_core::books::{BookTexts, Isbn, WorkSettings};
use refbook_core::config::BookSettings;
use refbook_core::domain::{BookTextInfo, TextFormat, TextScope, TextState};
use refbook_core::embed::{EmbedRef, Embedder, EmbedderSource};
use refbook_core::store::{SqlStore, Store};
use refbook_core::testing::TestDatabase;

use crate::fixtures::SANTI;

/// A deterministic embedder: each word hashed into one of 64 dimensions. Counts the
/// passages it embeds, and can hold them at a gate (a batch of passages waits while the
/// gate is shut; a question — one text — passes).
struct WordEmbedder {
    embedded: AtomicUsize,
    /// Batches that may still pass (`None`: any number).
    gate: Arc<(Mutex<Option<usize>>, Condvar)>,
}

impl WordEmbedder {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            embedded: AtomicUsize::new(0),
            gate: Arc::new((Mutex::new(None), Condvar::new())),
        })
    }

    /// Lets `batches` more batches pass, then holds the rest (`None`: opens the gate).
    fn allow(&self, batches: Option<usize>) {
        *self.gate.0.lock().unwrap() = batches;
        self.gate.1.notify_all();
    }
}

impl Embedder for WordEmbedder {
    fn id(&self) -> &str {
        "words-64"
    }

    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, String> {
        if texts.len() > 1 {
            let (allowed, wake) = &*self.gate;
            let mut guard = allowed.lock().unwrap();
            while *guard == Some(0) {
                guard = wake.wait(guard).unwrap();
            }
            if let Some(left) = guard.as_mut() {
                *left -= 1;
            }
            drop(guard);
            self.embedded.fetch_add(texts.len(), Ordering::SeqCst);
        }
        Ok(texts
            .iter()
            .map(|text| {
                let mut v = vec![0.0f32; 64];
                for word in text.split_whitespace() {
                    let h = word
                        .bytes()
                        .fold(7usize, |h, b| h.wrapping_mul(31) ^ b as usize);
                    v[h % 64] += 1.0;
                }
                let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-6);
                v.iter().map(|x| x / norm).collect()
            })
            .collect())
    }

    fn known_share(&self, _text: &str) -> f32 {
        1.0
    }
}

/// `n` chapters of distinct sentences: many chunks.
fn long_text(word: &str, chapters: usize) -> String {
    (0..chapters)
        .map(|c| {
            let body: String = (0..20)
                .map(|s| format!("The {word} number {c} {s} walked along the shore of the lake. "))
                .collect();
            format!("Chapter {}\n\n{body}\n\n", c + 1)
        })
        .collect()
}

fn quick() -> WorkSettings {
    WorkSettings {
        lease: Duration::from_secs(1),
        poll: Duration::from_millis(100),
        batch: 4,
        readers_first_for: Duration::from_millis(500),
    }
}

async fn open(db: &TestDatabase, embedder: Arc<EmbedderSource>) -> (BookTexts, Arc<dyn Store>) {
    let store: Arc<dyn Store> = Arc::new(SqlStore::connect(db.url()).await.unwrap());
    let texts =
        BookTexts::with_work_settings(store.clone(), &BookSettings::default(), embedder, quick());
    (texts, store)
}

fn isbn() -> Isbn {
    Isbn::parse(SANTI).unwrap()
}

/// Waits until the library's newest text satisfies `done`.
async fn wait_for(texts: &BookTexts, done: impl Fn(&BookTextInfo) -> bool) -> BookTextInfo {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let info = texts.info(&isbn(), TextScope::Library).await.unwrap();
        if let Some(info) = info.filter(|i| done(i)) {
            return info;
        }
        assert!(Instant::now() < deadline, "timed out waiting for the text");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn add(texts: &BookTexts, text: &str) -> BookTextInfo {
    texts
        .add(
            &isbn(),
            TextScope::Library,
            TextFormat::Plain,
            text.as_bytes().to_vec(),
        )
        .await
        .unwrap()
        .info
}

async fn the_old_text_serves_until_the_new_one_is_indexed(db: TestDatabase) {
    let embedder = WordEmbedder::new();
    let (texts, store) = open(&db, Arc::new(EmbedderSource::provided(embedder.clone()))).await;
    let first = add(&texts, &long_text("heron", 3)).await;
    assert_eq!(
        first.state,
        TextState::Indexing,
        "indexed in the background"
    );
    let first = wait_for(&texts, |i| i.state == TextState::Ready).await;
    assert!(first.has_vectors_of(Some("words-64")), "{first:?}");

    embedder.allow(Some(0));
    let second = add(&texts, &long_text("otter", 4)).await;
    assert_eq!(second.state, TextState::Indexing);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let serving = texts.seen_by(&isbn(), None).await.unwrap().unwrap();
    assert_eq!(
        serving.id, first.id,
        "the old text serves while the new one is indexed"
    );
    let found = texts
        .search(&isbn(), None, "otter", 5)
        .await
        .unwrap()
        .unwrap();
    assert!(
        found.iter().all(|p| !p.text.contains("otter")),
        "the half-indexed text is never searched"
    );
    let status = texts
        .info(&isbn(), TextScope::Library)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((status.id, status.state), (second.id, TextState::Indexing));
    assert!(status.vectors < status.chunks);

    embedder.allow(None);
    let ready = wait_for(&texts, |i| i.id == second.id && i.state == TextState::Ready).await;
    assert!(ready.has_vectors_of(Some("words-64")));
    let found = texts
        .search(&isbn(), None, "otter shore", 5)
        .await
        .unwrap()
        .unwrap();
    assert!(found[0].text.contains("otter"), "{found:?}");
    let all = store.book_texts(TextScope::Library).await.unwrap();
    assert_eq!(all.len(), 1, "the old text is gone: {all:?}");
}

async fn an_interrupted_indexing_resumes_in_another_process(db: TestDatabase) {
    // The first "process": its own runtime, killed mid-way (as by SIGKILL: its tasks stop
    // at their next await; the database keeps what it wrote and its lease).
    let first = WordEmbedder::new();
    let dying = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let url = db.url().to_owned();
    let (first_in, total, dying) = {
        let first = first.clone();
        std::thread::spawn(move || {
            let got = dying.block_on(async move {
                let store: Arc<dyn Store> = Arc::new(SqlStore::connect(&url).await.unwrap());
                let texts = BookTexts::with_work_settings(
                    store,
                    &BookSettings::default(),
                    Arc::new(EmbedderSource::provided(first.clone())),
                    quick(),
                );
                first.allow(Some(2)); // two batches, then the process hangs mid-way
                let added = add(&texts, &long_text("crane", 10)).await;
                let partway = wait_for(&texts, |i| i.vectors >= 8).await;
                tokio::time::sleep(Duration::from_millis(200)).await;
                let at = texts
                    .info(&isbn(), TextScope::Library)
                    .await
                    .unwrap()
                    .unwrap();
                assert_eq!(at.state, TextState::Indexing);
                std::mem::forget(texts); // dies without cleaning up
                (at.vectors.max(partway.vectors), added.chunks)
            });
            (got.0, got.1, dying)
        })
        .join()
        .unwrap()
    };
    dying.shutdown_background();
    first.allow(None);
    assert!(first_in < total, "killed part-way: {first_in} of {total}");

    let second = WordEmbedder::new();
    let (texts, _store) = open(&db, Arc::new(EmbedderSource::provided(second.clone()))).await;
    let ready = wait_for(&texts, |i| i.state == TextState::Ready).await;
    assert_eq!(ready.vectors, total);
    assert_eq!(
        second.embedded.load(Ordering::SeqCst),
        total - first_in,
        "the second process embedded only what was missing"
    );
    let found = texts
        .search(&isbn(), None, "crane lake", 3)
        .await
        .unwrap()
        .unwrap();
    assert!(!found.is_empty());
}

async fn vectors_are_filled_in_when_the_embedder_comes_back(db: TestDatabase) {
    let away = EmbedderSource::new(
        EmbedRef::parse("/nonexistent/embedder").unwrap(),
        None,
        String::new(),
    );
    let (texts, _) = open(&db, Arc::new(away)).await;
    add(&texts, &long_text("swan", 2)).await;
    let served = wait_for(&texts, |i| i.state == TextState::Ready).await;
    assert_eq!(served.vectors, 0, "served on keywords alone meanwhile");
    let before = texts
        .search(&isbn(), None, "swan", 3)
        .await
        .unwrap()
        .unwrap();
    assert!(!before.is_empty());
    drop(texts);

    let embedder = WordEmbedder::new();
    let (texts, _) = open(&db, Arc::new(EmbedderSource::provided(embedder))).await;
    let filled = wait_for(&texts, |i| i.vectors == i.chunks).await;
    assert_eq!(filled.id, served.id, "the same text, now with vectors");
    assert!(filled.has_vectors_of(Some("words-64")));
}

/// The same text, with vectors, on SQLite and on PostgreSQL: every search ranks the same
/// passages with the same scores (chunks, vectors and their order round-trip alike).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_ranks_alike_on_sqlite_and_postgres() {
    use refbook_core::testing::TestBackend;
    let Some(postgres) = TestDatabase::create(TestBackend::Postgres).await else {
        return; // said by `create` (and a failure when PostgreSQL is required)
    };
    let sqlite = TestDatabase::create(TestBackend::Sqlite).await.unwrap();
    let text = format!(
        "{}{}",
        long_text("heron", 4),
        long_text("otter swam past the", 3)
    );
    let mut rankings = Vec::new();
    for db in [&sqlite, &postgres] {
        let (texts, _) = open(db, Arc::new(EmbedderSource::provided(WordEmbedder::new()))).await;
        add(&texts, &text).await;
        let ready = wait_for(&texts, |i| i.state == TextState::Ready).await;
        assert!(ready.has_vectors_of(Some("words-64")));
        let mut found = Vec::new();
        for query in [
            "heron number 2",
            "otter swam",
            "shore of the lake",
            "Chapter 5",
        ] {
            let passages = texts
                .search(&isbn(), None, query, 10)
                .await
                .unwrap()
                .unwrap();
            assert!(!passages.is_empty(), "{query}");
            found.push(passages);
        }
        rankings.push(found);
    }
    assert_eq!(rankings[0], rankings[1]);
}

backend_tests!(
    the_old_text_serves_until_the_new_one_is_indexed,
    an_interrupted_indexing_resumes_in_another_process,
    vectors_are_filled_in_when_the_embedder_comes_back,
);
