//! The lookup chain: order, caching, staleness, single flight, negative caching.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use refbook_core::backend_tests;
use refbook_core::books::{
    Book, BookFields, BookLookup, BookSource, Isbn, LookupPolicy, SourceError,
};
use refbook_core::store::{SqlStore, Store};
use refbook_core::testing::TestDatabase;
use refbook_core::timestamp::Timestamp;
use refbook_core::ErrorKind;

use crate::fixtures::SANTI;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Answer {
    Hit,
    Miss,
    Fail,
    Panic,
}

/// A source whose answer the test sets, counting its calls.
struct Scripted {
    name: &'static str,
    answer: Mutex<Answer>,
    calls: AtomicUsize,
    delay: Duration,
    local: bool,
}

impl Scripted {
    fn new(name: &'static str, answer: Answer) -> Arc<Self> {
        Self::slow(name, answer, Duration::ZERO)
    }

    fn slow(name: &'static str, answer: Answer, delay: Duration) -> Arc<Self> {
        Arc::new(Self {
            name,
            answer: Mutex::new(answer),
            calls: AtomicUsize::new(0),
            delay,
            local: false,
        })
    }

    fn local(name: &'static str, answer: Answer) -> Arc<Self> {
        Arc::new(Self {
            name,
            answer: Mutex::new(answer),
            calls: AtomicUsize::new(0),
            delay: Duration::ZERO,
            local: true,
        })
    }

    fn set(&self, answer: Answer) {
        *self.answer.lock().unwrap() = answer;
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl BookSource for Scripted {
    fn name(&self) -> &'static str {
        self.name
    }

    fn is_local(&self) -> bool {
        self.local
    }

    async fn lookup(&self, isbn: &Isbn) -> Result<Option<Book>, SourceError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(self.delay).await;
        let answer = *self.answer.lock().unwrap();
        match answer {
            Answer::Hit => Ok(Some(
                BookFields {
                    title: format!("title from {}", self.name),
                    ..BookFields::default()
                }
                .into_book(isbn, "ignored", Timestamp::now()),
            )),
            Answer::Miss => Ok(None),
            Answer::Fail => Err(SourceError::Status(503)),
            Answer::Panic => panic!("a book source with a bug"),
        }
    }
}

fn policy(fresh_for: Duration, miss_ttl: Duration) -> LookupPolicy {
    LookupPolicy {
        fresh_for,
        source_timeout: Duration::from_millis(500),
        miss_ttl,
    }
}

const DAY: Duration = Duration::from_secs(86_400);

async fn chain(
    db: &TestDatabase,
    sources: &[Arc<Scripted>],
    policy: LookupPolicy,
) -> (BookLookup, Arc<dyn Store>) {
    let store: Arc<dyn Store> = Arc::new(SqlStore::connect(db.url()).await.unwrap());
    let sources = sources
        .iter()
        .map(|s| s.clone() as Arc<dyn BookSource>)
        .collect();
    (BookLookup::new(store.clone(), sources, policy, None), store)
}

fn santi() -> Isbn {
    Isbn::parse(SANTI).unwrap()
}

async fn sources_are_asked_in_order_and_the_first_hit_is_stored(db: TestDatabase) {
    let (a, b, c) = (
        Scripted::new("a", Answer::Miss),
        Scripted::new("b", Answer::Hit),
        Scripted::new("c", Answer::Hit),
    );
    let (lookup, store) = chain(&db, &[a.clone(), b.clone(), c.clone()], policy(DAY, DAY)).await;
    let book = lookup.lookup(&santi()).await.unwrap();
    assert_eq!(book.title, "title from b");
    assert_eq!(book.source, "b", "the source's own name is recorded");
    assert_eq!(book.isbn10.as_deref(), Some("7536692935"));
    assert_eq!((a.calls(), b.calls(), c.calls()), (1, 1, 0));
    let stored = store.book(&santi()).await.unwrap().unwrap();
    assert_eq!(stored.book, book);

    // Fresh in the database: no source is asked again.
    let again = lookup.lookup(&santi()).await.unwrap();
    assert_eq!(again, book);
    assert_eq!((a.calls(), b.calls()), (1, 1));
}

async fn a_stale_copy_is_refreshed_or_served_when_sources_fail(db: TestDatabase) {
    let source = Scripted::new("s", Answer::Hit);
    // Fresh for zero time: every lookup asks the sources.
    let (lookup, store) = chain(
        &db,
        std::slice::from_ref(&source),
        policy(Duration::ZERO, DAY),
    )
    .await;
    let first = lookup.lookup(&santi()).await.unwrap();
    lookup.lookup(&santi()).await.unwrap();
    assert_eq!(source.calls(), 2, "stale copies are refreshed");

    source.set(Answer::Fail);
    let served = lookup.lookup(&santi()).await.unwrap();
    assert_eq!(
        served.title, first.title,
        "sources failing: the stale copy is served"
    );

    source.set(Answer::Miss);
    let kept = lookup.lookup(&santi()).await.unwrap();
    assert_eq!(kept.title, first.title, "a book we know does not vanish");
    assert!(store.book(&santi()).await.unwrap().is_some());
}

async fn failures_without_a_copy_are_unavailable_unless_someone_said_not_found(db: TestDatabase) {
    let (a, b) = (
        Scripted::new("a", Answer::Fail),
        Scripted::new("b", Answer::Fail),
    );
    let (lookup, _) = chain(&db, &[a.clone(), b.clone()], policy(DAY, DAY)).await;
    let err = lookup.lookup(&santi()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UpstreamUnavailable);
    // Failures are not remembered: the next lookup asks again.
    lookup.lookup(&santi()).await.unwrap_err();
    assert_eq!(a.calls(), 2);

    b.set(Answer::Miss);
    let err = lookup.lookup(&santi()).await.unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::NotFound,
        "one clean 'not found' and no copy: 404"
    );

    a.set(Answer::Hit);
    assert!(
        lookup.lookup(&santi()).await.is_ok(),
        "mixed outcomes are not cached as misses"
    );
}

async fn clean_misses_are_remembered_briefly(db: TestDatabase) {
    let source = Scripted::new("s", Answer::Miss);
    let (lookup, _) = chain(&db, std::slice::from_ref(&source), policy(DAY, DAY)).await;
    for _ in 0..5 {
        assert_eq!(
            lookup.lookup(&santi()).await.unwrap_err().kind(),
            ErrorKind::NotFound
        );
    }
    assert_eq!(
        source.calls(),
        1,
        "a hammered unknown ISBN does not hammer the sources"
    );

    let forgetful = Scripted::new("s", Answer::Miss);
    let (lookup, _) = chain(
        &db,
        std::slice::from_ref(&forgetful),
        policy(DAY, Duration::ZERO),
    )
    .await;
    lookup.lookup(&santi()).await.unwrap_err();
    lookup.lookup(&santi()).await.unwrap_err();
    assert_eq!(forgetful.calls(), 2);
}

async fn concurrent_lookups_share_one_upstream_call(db: TestDatabase) {
    let slow = Scripted::slow("slow", Answer::Hit, Duration::from_millis(300));
    let (lookup, _) = chain(&db, std::slice::from_ref(&slow), policy(DAY, DAY)).await;
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let lookup = lookup.clone();
            tokio::spawn(async move { lookup.lookup(&santi()).await })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap().title, "title from slow");
    }
    assert_eq!(slow.calls(), 1);

    // Concurrent misses and failures are shared too.
    let failing = Scripted::slow("failing", Answer::Fail, Duration::from_millis(300));
    let (lookup, _) = chain(&db, std::slice::from_ref(&failing), policy(DAY, DAY)).await;
    let other = Isbn::parse("9787020002207").unwrap();
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let (lookup, isbn) = (lookup.clone(), other.clone());
            tokio::spawn(async move { lookup.lookup(&isbn).await })
        })
        .collect();
    for task in tasks {
        assert_eq!(
            task.await.unwrap().unwrap_err().kind(),
            ErrorKind::UpstreamUnavailable
        );
    }
    assert_eq!(failing.calls(), 1);
}

/// A valid ISBN-13 `978 7 nnnnnnnn c` for a test number.
fn numbered_isbn(n: u32) -> Isbn {
    let body = format!("9787{n:08}");
    let sum: u32 = body
        .bytes()
        .enumerate()
        .map(|(i, b)| u32::from(b - b'0') * if i % 2 == 0 { 1 } else { 3 })
        .sum();
    Isbn::parse(&format!("{body}{}", (10 - sum % 10) % 10)).unwrap()
}

/// A source that says when it has answered (before the chain stores the book), so that
/// callers can arrive exactly while a lookup lands.
struct Landing {
    calls: AtomicUsize,
    answered: tokio::sync::watch::Sender<usize>,
}

#[async_trait]
impl BookSource for Landing {
    fn name(&self) -> &'static str {
        "landing"
    }

    async fn lookup(&self, isbn: &Isbn) -> Result<Option<Book>, SourceError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(5)).await;
        self.answered.send_modify(|n| *n += 1);
        Ok(Some(
            BookFields {
                title: "landed".to_owned(),
                ..BookFields::default()
            }
            .into_book(isbn, "ignored", Timestamp::now()),
        ))
    }
}

/// Callers arriving while a lookup lands (its answer in, the book being stored) still make
/// one upstream call: a caller whose reads missed the book but who then finds the flight
/// gone takes the book the flight left rather than flying again. Repeated over many ISBNs
/// to catch the window.
async fn callers_arriving_as_a_lookup_lands_share_its_call(db: TestDatabase) {
    let store: Arc<dyn Store> = Arc::new(SqlStore::connect(db.url()).await.unwrap());
    let (answered, watch) = tokio::sync::watch::channel(0usize);
    let source = Arc::new(Landing {
        calls: AtomicUsize::new(0),
        answered,
    });
    let lookup = BookLookup::new(
        store,
        vec![source.clone() as Arc<dyn BookSource>],
        policy(DAY, DAY),
        None,
    );
    let rounds = 60;
    for round in 0..rounds {
        let isbn = numbered_isbn(round);
        let late: Vec<_> = (0..8)
            .map(|_| {
                let (lookup, isbn, mut watch) = (lookup.clone(), isbn.clone(), watch.clone());
                let round = round as usize;
                tokio::spawn(async move {
                    watch.wait_for(|n| *n > round).await.unwrap();
                    lookup.lookup(&isbn).await
                })
            })
            .collect();
        assert_eq!(lookup.lookup(&isbn).await.unwrap().title, "landed");
        for caller in late {
            assert_eq!(caller.await.unwrap().unwrap().title, "landed");
        }
    }
    assert_eq!(
        source.calls.load(Ordering::SeqCst),
        rounds as usize,
        "one upstream call per ISBN"
    );
    drop(watch);
}

async fn a_slow_source_times_out_and_the_next_is_asked(db: TestDatabase) {
    let stuck = Scripted::slow("stuck", Answer::Hit, Duration::from_secs(5));
    let quick = Scripted::new("quick", Answer::Hit);
    let (lookup, _) = chain(&db, &[stuck.clone(), quick.clone()], policy(DAY, DAY)).await;
    let book = lookup.lookup(&santi()).await.unwrap();
    assert_eq!(book.source, "quick");
}

async fn a_caller_that_leaves_does_not_cancel_the_lookup(db: TestDatabase) {
    let slow = Scripted::slow("slow", Answer::Hit, Duration::from_millis(200));
    let (lookup, store) = chain(&db, std::slice::from_ref(&slow), policy(DAY, DAY)).await;
    // The caller leaves once the upstream call has begun.
    let caller = tokio::spawn({
        let lookup = lookup.clone();
        async move { lookup.lookup(&santi()).await }
    });
    for _ in 0..400 {
        if slow.calls() > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(slow.calls(), 1, "the lookup began");
    caller.abort();
    assert!(caller.await.unwrap_err().is_cancelled());
    // Nobody is waiting any more; the lookup still finishes and stores the book.
    let mut stored = false;
    for _ in 0..100 {
        if store.book(&santi()).await.unwrap().is_some() {
            stored = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(stored, "finished and stored anyway");
    lookup.lookup(&santi()).await.unwrap();
    assert_eq!(slow.calls(), 1);
}

async fn a_local_catalogue_miss_does_not_hide_an_outage(db: TestDatabase) {
    let catalog = Scripted::local("catalog", Answer::Miss);
    let remote = Scripted::new("remote", Answer::Fail);
    let (lookup, _) = chain(&db, &[catalog.clone(), remote.clone()], policy(DAY, DAY)).await;
    assert_eq!(
        lookup.lookup(&santi()).await.unwrap_err().kind(),
        ErrorKind::UpstreamUnavailable
    );
    remote.set(Answer::Miss);
    assert_eq!(
        lookup.lookup(&santi()).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    catalog.set(Answer::Hit);
    // The remembered miss holds until it expires: a fresh chain sees the catalogue entry.
    let (fresh, _) = chain(&db, &[catalog.clone(), remote.clone()], policy(DAY, DAY)).await;
    assert_eq!(fresh.lookup(&santi()).await.unwrap().source, "catalog");
}

async fn a_panicking_source_does_not_jam_its_isbn(db: TestDatabase) {
    let source = Scripted::new("buggy", Answer::Panic);
    let (lookup, _) = chain(&db, std::slice::from_ref(&source), policy(DAY, DAY)).await;
    let err = lookup.lookup(&santi()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Internal);
    // The flight was removed: the next lookup asks again and succeeds.
    source.set(Answer::Hit);
    assert_eq!(
        lookup.lookup(&santi()).await.unwrap().title,
        "title from buggy"
    );
    assert_eq!(source.calls(), 2);
}

backend_tests!(
    a_panicking_source_does_not_jam_its_isbn,
    a_local_catalogue_miss_does_not_hide_an_outage,
    sources_are_asked_in_order_and_the_first_hit_is_stored,
    a_stale_copy_is_refreshed_or_served_when_sources_fail,
    failures_without_a_copy_are_unavailable_unless_someone_said_not_found,
    clean_misses_are_remembered_briefly,
    concurrent_lookups_share_one_upstream_call,
    callers_arriving_as_a_lookup_lands_share_its_call,
    a_slow_source_times_out_and_the_next_is_asked,
    a_caller_that_leaves_does_not_cancel_the_lookup,
);
