//! `Accounts::local_user`: the passwordless account a local front end (the CLI, an
//! embedding program) acts as, on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use refbook_core::accounts::Registration;
use refbook_core::backend_tests;
use refbook_core::testing::TestDatabase;
use refbook_core::{Config, ErrorKind, LlmProvider, Refbook};

async fn refbook(db: &TestDatabase) -> Refbook {
    let mut config = Config::default();
    config.database.url = db.url().to_owned();
    config.llm.provider = Some(LlmProvider::Off);
    Refbook::builder(config).build().await.expect("built")
}

async fn a_local_user_is_made_once_even_when_asked_at_once(db: TestDatabase) {
    let refbook = refbook(&db).await;
    let accounts = refbook.accounts();
    let (a, b) = tokio::join!(
        accounts.local_user("cli.local", "终端读者"),
        accounts.local_user("cli.local", "终端读者"),
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.id, b.id);
    assert_eq!(a.username.as_deref(), Some("cli.local"));
    assert_eq!(a.nickname, "终端读者");
    let again = accounts.local_user("cli.local", "ignored").await.unwrap();
    assert_eq!(again.id, a.id);
    // It has no password: it cannot sign in.
    let login = accounts.login("cli.local", "anything-at-all".into()).await;
    assert_eq!(login.unwrap_err().kind(), ErrorKind::Unauthorized);
}

async fn an_account_that_can_sign_in_is_never_taken_over(db: TestDatabase) {
    let refbook = refbook(&db).await;
    let accounts = refbook.accounts();
    accounts
        .register(Registration {
            username: "reader.one".into(),
            password: "a long password 1".into(),
            ..Registration::default()
        })
        .await
        .unwrap();
    let taken = accounts.local_user("Reader.One", "x").await.unwrap_err();
    assert_eq!(taken.kind(), ErrorKind::Conflict);
    let invalid = accounts.local_user("a", "x").await.unwrap_err();
    assert_eq!(invalid.kind(), ErrorKind::InvalidInput);
}

backend_tests!(
    a_local_user_is_made_once_even_when_asked_at_once,
    an_account_that_can_sign_in_is_never_taken_over,
);
