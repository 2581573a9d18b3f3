//! The store conformance suite: every case runs on SQLite and on PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use refbook_core::backend_tests;
use refbook_core::books::{BookFields, Isbn};
use refbook_core::chat::{FinishReason, MessageStatus, TokenUsage};
use refbook_core::domain::{ConversationId, UserId};
use refbook_core::store::{
    BookStore, ChatStore, ClaimRefused, FinalReply, NewUser, ProfileChange, RefreshOutcome,
    ReplyClaim, ReplyStore, SessionStore, SettingsStore, SqlStore, Store, StoreError, UsageStore,
    UserStore,
};
use refbook_core::testing::TestDatabase;
use refbook_core::timestamp::Timestamp;

async fn store(db: &TestDatabase) -> SqlStore {
    SqlStore::connect(db.url())
        .await
        .expect("connect and migrate")
}

fn new_user(name: &str) -> NewUser {
    NewUser {
        username: Some(name.to_owned()),
        email: Some(format!("{name}@Example.com")),
        nickname: name.to_owned(),
        password_hash: Some("$argon2id$fake".to_owned()),
        ..NewUser::default()
    }
}

async fn users_are_created_and_found_case_insensitively(db: TestDatabase) {
    let s = store(&db).await;
    let now = Timestamp::now();
    let alice = s.create_user(new_user("Alice"), now).await.unwrap();
    assert_eq!(alice.username.as_deref(), Some("Alice"));
    assert_eq!(alice.created_at, now);
    assert_eq!(s.user_by_id(alice.id).await.unwrap().unwrap(), alice);
    assert_eq!(
        s.user_by_username_key("alice").await.unwrap().unwrap().id,
        alice.id
    );
    assert_eq!(
        s.user_by_email_key("alice@example.com")
            .await
            .unwrap()
            .unwrap()
            .id,
        alice.id
    );
    assert!(s.user_by_username_key("bob").await.unwrap().is_none());
    assert!(s
        .user_by_id(UserId::new(alice.id.get() + 1000))
        .await
        .unwrap()
        .is_none());
}

async fn usernames_emails_and_openids_are_unique(db: TestDatabase) {
    let s = store(&db).await;
    let now = Timestamp::now();
    s.create_user(new_user("alice"), now).await.unwrap();
    let mut dup = new_user("ALICE");
    dup.email = None;
    assert!(matches!(
        s.create_user(dup, now).await,
        Err(StoreError::Conflict("username"))
    ));
    let mut dup_mail = new_user("alice2");
    dup_mail.email = Some("ALICE@example.COM".into());
    assert!(matches!(
        s.create_user(dup_mail, now).await,
        Err(StoreError::Conflict("email"))
    ));
    let wechat = || NewUser {
        nickname: "微信用户".into(),
        wechat_openid: Some("o-123".into()),
        ..NewUser::default()
    };
    s.create_user(wechat(), now).await.unwrap();
    assert!(matches!(
        s.create_user(wechat(), now).await,
        Err(StoreError::Conflict(_))
    ));
    // Several users without username or email are fine (NULLs are not equal).
    let mut other = wechat();
    other.wechat_openid = Some("o-456".into());
    s.create_user(other, now).await.unwrap();
}

async fn profiles_update_partially(db: TestDatabase) {
    let s = store(&db).await;
    let now = Timestamp::now();
    let u = s.create_user(new_user("carol"), now).await.unwrap();
    let changed = s
        .update_profile(
            u.id,
            ProfileChange {
                nickname: Some("卡罗尔".into()),
                avatar_url: Some(Some("https://img/x.png".into())),
                email: None,
            },
            now,
        )
        .await
        .unwrap();
    assert_eq!(changed.nickname, "卡罗尔");
    assert_eq!(changed.avatar_url.as_deref(), Some("https://img/x.png"));
    assert_eq!(changed.email, u.email, "untouched field stays");
    let cleared = s
        .update_profile(
            u.id,
            ProfileChange {
                email: Some(None),
                avatar_url: Some(None),
                ..ProfileChange::default()
            },
            now,
        )
        .await
        .unwrap();
    assert_eq!((cleared.email, cleared.avatar_url), (None, None));
    assert_eq!(cleared.nickname, "卡罗尔");
    assert!(s
        .user_by_email_key("carol@example.com")
        .await
        .unwrap()
        .is_none());
    assert!(matches!(
        s.update_profile(UserId::new(u.id.get() + 99), ProfileChange::default(), now)
            .await,
        Err(StoreError::NotFound)
    ));
}

async fn refresh_tokens_rotate_and_reuse_ends_the_session(db: TestDatabase) {
    let s = store(&db).await;
    let now = Timestamp::now();
    let u = s.create_user(new_user("dave"), now).await.unwrap();
    let later = now.plus_seconds(3600);
    let sid = s.create_session(u.id, "h1", later, now).await.unwrap();
    assert_eq!(s.session_user(sid, u.id).await.unwrap().unwrap().id, u.id);
    assert!(
        s.session_user(sid, UserId::new(u.id.get() + 1))
            .await
            .unwrap()
            .is_none(),
        "owner checked"
    );
    assert_eq!(
        s.session_of_refresh_token("h1").await.unwrap(),
        Some((sid, u.id))
    );

    let out = s
        .rotate_refresh_token("h1", "h2", later, now, 0)
        .await
        .unwrap();
    assert_eq!(
        out,
        RefreshOutcome::Rotated {
            session_id: sid,
            user_id: u.id
        }
    );
    assert_eq!(
        s.rotate_refresh_token("nope", "h3", later, now, 0)
            .await
            .unwrap(),
        RefreshOutcome::Invalid
    );
    // h1 again: theft. The whole session ends, h2 included.
    assert_eq!(
        s.rotate_refresh_token("h1", "h4", later, now, 0)
            .await
            .unwrap(),
        RefreshOutcome::Reused { user_id: u.id }
    );
    assert!(s.session_user(sid, u.id).await.unwrap().is_none());
    assert_eq!(
        s.rotate_refresh_token("h2", "h5", later, now, 0)
            .await
            .unwrap(),
        RefreshOutcome::Invalid
    );
}

async fn expired_refresh_tokens_do_not_rotate(db: TestDatabase) {
    let s = store(&db).await;
    let now = Timestamp::now();
    let u = s.create_user(new_user("erin"), now).await.unwrap();
    let sid = s
        .create_session(u.id, "old", now.plus_seconds(-1), now.plus_seconds(-100))
        .await
        .unwrap();
    assert_eq!(
        s.rotate_refresh_token("old", "new", now.plus_seconds(60), now, 0)
            .await
            .unwrap(),
        RefreshOutcome::Invalid
    );
    let live = s
        .create_session(u.id, "live", now.plus_seconds(60), now)
        .await
        .unwrap();
    assert_eq!(s.purge_expired_sessions(now).await.unwrap(), 1);
    assert!(s.session_user(sid, u.id).await.unwrap().is_none());
    assert!(s.session_user(live, u.id).await.unwrap().is_some());
}

async fn sessions_end_one_or_all_but_one(db: TestDatabase) {
    let s = store(&db).await;
    let now = Timestamp::now();
    let later = now.plus_seconds(60);
    let u = s.create_user(new_user("frank"), now).await.unwrap();
    let other = s.create_user(new_user("grace"), now).await.unwrap();
    let a = s.create_session(u.id, "a", later, now).await.unwrap();
    let b = s.create_session(u.id, "b", later, now).await.unwrap();
    let c = s.create_session(u.id, "c", later, now).await.unwrap();
    let g = s.create_session(other.id, "g", later, now).await.unwrap();
    assert!(
        !s.delete_session(g, u.id).await.unwrap(),
        "not frank's session"
    );
    assert!(s.delete_session(a, u.id).await.unwrap());
    assert_eq!(s.delete_user_sessions(u.id, Some(b)).await.unwrap(), 1);
    assert!(s.session_user(b, u.id).await.unwrap().is_some());
    assert!(s.session_user(c, u.id).await.unwrap().is_none());
    assert_eq!(s.delete_user_sessions(u.id, None).await.unwrap(), 1);
    assert!(s.session_user(g, other.id).await.unwrap().is_some());
}

async fn deleting_a_user_cascades(db: TestDatabase) {
    let s = store(&db).await;
    let now = Timestamp::now();
    let u = s.create_user(new_user("heidi"), now).await.unwrap();
    let sid = s
        .create_session(u.id, "hh", now.plus_seconds(60), now)
        .await
        .unwrap();
    s.add_usage(u.id, "2026-11-22", 10, 5).await.unwrap();
    assert!(s.delete_user(u.id).await.unwrap());
    assert!(!s.delete_user(u.id).await.unwrap());
    assert!(s.session_user(sid, u.id).await.unwrap().is_none());
    assert_eq!(s.session_of_refresh_token("hh").await.unwrap(), None);
    assert_eq!(s.usage_on(u.id, "2026-11-22").await.unwrap(), 0);
    // The name is free again.
    s.create_user(new_user("heidi"), now).await.unwrap();
}

async fn concurrent_writers_all_land(db: TestDatabase) {
    let s = Arc::new(store(&db).await);
    let now = Timestamp::now();
    let tasks: Vec<_> = (0..24)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move { s.create_user(new_user(&format!("user{i}")), now).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    for i in 0..24 {
        assert!(s
            .user_by_username_key(&format!("user{i}"))
            .await
            .unwrap()
            .is_some());
    }
    // Many tasks presenting one refresh token at once: exactly one rotates it.
    let u = s.user_by_username_key("user0").await.unwrap().unwrap();
    s.create_session(u.id, "shared", now.plus_seconds(60), now)
        .await
        .unwrap();
    let racers: Vec<_> = (0..8)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move {
                s.rotate_refresh_token("shared", &format!("next{i}"), now.plus_seconds(60), now, 0)
                    .await
            })
        })
        .collect();
    let mut rotated = 0;
    for r in racers {
        if matches!(r.await.unwrap().unwrap(), RefreshOutcome::Rotated { .. }) {
            rotated += 1;
        }
    }
    assert_eq!(rotated, 1);
    // Concurrent usage increments add up.
    let adds: Vec<_> = (0..20)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move { s.add_usage(u.id, "2026-11-22", 3, 2).await })
        })
        .collect();
    for a in adds {
        a.await.unwrap().unwrap();
    }
    assert_eq!(s.usage_on(u.id, "2026-11-22").await.unwrap(), 100);
}

async fn settings_keep_the_first_value(db: TestDatabase) {
    let s = store(&db).await;
    assert_eq!(
        s.setting_or_init("jwt_secret", "first").await.unwrap(),
        "first"
    );
    assert_eq!(
        s.setting_or_init("jwt_secret", "second").await.unwrap(),
        "first"
    );
    s.ping().await.unwrap();
    // Reconnecting (a restart) runs migrations again harmlessly and keeps data.
    drop(s);
    let again = store(&db).await;
    assert_eq!(
        again.setting_or_init("jwt_secret", "third").await.unwrap(),
        "first"
    );
}

/// A user with `n` conversations about one stored book: `(user id, conversation ids)`.
async fn user_with_conversations(
    s: &SqlStore,
    name: &str,
    n: usize,
) -> (UserId, Vec<ConversationId>) {
    let now = Timestamp::now();
    let isbn = Isbn::parse("9787536692930").unwrap();
    let book = BookFields {
        title: "三体".into(),
        ..Default::default()
    }
    .into_book(&isbn, "catalog", now);
    s.upsert_book(&book, now).await.unwrap();
    let user = s.create_user(new_user(name), now).await.unwrap();
    let mut ids = Vec::new();
    for _ in 0..n {
        let c = s
            .create_conversation(user.id, &isbn, "t", None, "api", now)
            .await
            .unwrap();
        ids.push(c.id);
    }
    (user.id, ids)
}

fn claim(
    conversation_id: ConversationId,
    user_id: UserId,
    owner: &str,
    lease_secs: i64,
) -> ReplyClaim {
    ReplyClaim {
        conversation_id,
        user_id,
        owner: owner.to_owned(),
        lease_until: Timestamp::now().plus_seconds(lease_secs),
        max_per_user: 2,
        question: Some("问".to_owned()),
    }
}

async fn reply_claims_lock_conversations_and_cap_users(db: TestDatabase) {
    let s = store(&db).await;
    let (user, convs) = user_with_conversations(&s, "claimer", 3).await;
    let now = Timestamp::now();
    let first = s
        .claim_reply(claim(convs[0], user, "a", 30), now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.reply.status, MessageStatus::Generating);
    assert_eq!(first.question.as_ref().unwrap().content, "问");
    // Another owner (another process) meets the same lock and the same cap.
    let busy = s
        .claim_reply(claim(convs[0], user, "b", 30), now)
        .await
        .unwrap();
    assert_eq!(busy.unwrap_err(), ClaimRefused::ConversationBusy);
    s.claim_reply(claim(convs[1], user, "b", 30), now)
        .await
        .unwrap()
        .unwrap();
    let capped = s
        .claim_reply(claim(convs[2], user, "a", 30), now)
        .await
        .unwrap();
    assert_eq!(capped.unwrap_err(), ClaimRefused::TooManyForUser);
    assert_eq!(
        s.messages(convs[2]).await.unwrap().len(),
        0,
        "refused claims store nothing"
    );
    // The final save releases the claim and counts usage once, however often retried.
    let done = FinalReply {
        reply_id: first.reply.id,
        user_id: user,
        content: "答",
        reasoning: None,
        finish_reason: FinishReason::Stop,
        status: MessageStatus::Complete,
        usage: TokenUsage::new(10, 5),
        sources: &[],
        citations: &[],
    };
    s.finish_reply(done, now).await.unwrap();
    s.finish_reply(done, now).await.unwrap();
    assert_eq!(s.usage_on(user, &now.utc_day()).await.unwrap(), 15);
    let stored = s.message(convs[0], first.reply.id).await.unwrap().unwrap();
    assert_eq!(
        (stored.status, stored.finish_reason),
        (MessageStatus::Complete, Some(FinishReason::Stop))
    );
    s.claim_reply(claim(convs[2], user, "a", 30), now)
        .await
        .unwrap()
        .unwrap();
    // Two live claims again (conversations 1 and 2): the cap holds.
    let again = s
        .claim_reply(claim(convs[0], user, "a", 30), now)
        .await
        .unwrap();
    assert_eq!(again.unwrap_err(), ClaimRefused::TooManyForUser);
}

async fn claims_and_final_saves_made_at_once_keep_every_rule(db: TestDatabase) {
    // Many claims at once (on SQLite the writer groups them into shared transactions):
    // per conversation exactly one wins, per user at most the cap, another user's
    // conversation is not found, and ids put each question before its reply.
    let s = store(&db).await;
    let (user, convs) = user_with_conversations(&s, "rusher", 4).await;
    let (stranger, _) = user_with_conversations(&s, "stranger", 1).await;
    let now = Timestamp::now();
    let mut attempts = Vec::new();
    for round in 0..3 {
        for &conversation in &convs {
            let owner = format!("p{round}");
            let store = s.clone();
            attempts.push(tokio::spawn(async move {
                let outcome = store
                    .claim_reply(claim(conversation, user, &owner, 30), now)
                    .await;
                (conversation, outcome)
            }));
        }
    }
    let foreign = {
        let store = s.clone();
        tokio::spawn(async move {
            store
                .claim_reply(
                    claim(convs_first(&store, stranger).await, user, "x", 30),
                    now,
                )
                .await
        })
    };
    let mut won = Vec::new();
    for attempt in attempts {
        let (conversation, outcome) = attempt.await.unwrap();
        if let Ok(claimed) = outcome.unwrap() {
            let question = claimed.question.as_ref().unwrap();
            assert!(question.id < claimed.reply.id);
            assert_eq!(claimed.reply.conversation_id, conversation);
            won.push((conversation, claimed));
        }
    }
    assert_eq!(won.len(), 2, "the cap of 2 holds across a batch");
    assert_ne!(won[0].0, won[1].0, "one claim per conversation");
    assert!(matches!(foreign.await.unwrap(), Err(StoreError::NotFound)));
    // Their final saves at once: each stored, usage counted once each.
    let saves: Vec<_> = won
        .iter()
        .map(|(_, claimed)| {
            let store = s.clone();
            let id = claimed.reply.id;
            tokio::spawn(async move {
                let done = FinalReply {
                    reply_id: id,
                    user_id: user,
                    content: "答",
                    reasoning: Some("想"),
                    finish_reason: FinishReason::Stop,
                    status: MessageStatus::Complete,
                    usage: TokenUsage::new(10, 5),
                    sources: &[],
                    citations: &[],
                };
                store.finish_reply(done, now).await
            })
        })
        .collect();
    for save in saves {
        save.await.unwrap().unwrap();
    }
    assert_eq!(s.usage_on(user, &now.utc_day()).await.unwrap(), 30);
    for (conversation, claimed) in &won {
        let stored = s
            .message(*conversation, claimed.reply.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (stored.content.as_str(), stored.reasoning.as_deref()),
            ("答", Some("想"))
        );
    }
    // Claims released: two more may be granted.
    for &conversation in &convs[..2] {
        s.claim_reply(claim(conversation, user, "again", 30), now)
            .await
            .unwrap()
            .unwrap();
    }
}

/// The first conversation of a user.
async fn convs_first(s: &SqlStore, user: UserId) -> ConversationId {
    s.conversations(user, None, 1, 0).await.unwrap().1[0].id
}

async fn expired_leases_are_settled_and_live_ones_never(db: TestDatabase) {
    let s = store(&db).await;
    let (user, mine) = user_with_conversations(&s, "leaser", 1).await;
    // Another user's live reply: a claim of the same user would settle the dead one itself.
    let (other, theirs) = user_with_conversations(&s, "living", 1).await;
    let convs = [mine[0], theirs[0]];
    let now = Timestamp::now();
    let dead = s
        .claim_reply(claim(convs[0], user, "dead", -1), now)
        .await
        .unwrap()
        .unwrap();
    let live = s
        .claim_reply(claim(convs[1], other, "live", 30), now)
        .await
        .unwrap()
        .unwrap();
    assert!(s
        .checkpoint_reply(
            live.reply.id,
            "live",
            Some(("部分", None)),
            now.plus_seconds(30)
        )
        .await
        .unwrap());
    assert!(!s
        .checkpoint_reply(live.reply.id, "someone-else", None, now.plus_seconds(30))
        .await
        .unwrap());
    assert_eq!(s.settle_expired_replies(Timestamp::now()).await.unwrap(), 1);
    let settled = s.message(convs[0], dead.reply.id).await.unwrap().unwrap();
    assert_eq!(
        (settled.status, settled.finish_reason),
        (MessageStatus::Partial, Some(FinishReason::Interrupted))
    );
    let running = s.message(convs[1], live.reply.id).await.unwrap().unwrap();
    assert_eq!(running.status, MessageStatus::Generating);
    assert_eq!(running.content, "部分");
    // The settled conversation is free; abandoning a claim removes question and reply.
    let next = s
        .claim_reply(claim(convs[0], user, "new", 30), now)
        .await
        .unwrap()
        .unwrap();
    s.abandon_reply(next.reply.id, next.question.as_ref().map(|q| q.id))
        .await
        .unwrap();
    assert_eq!(
        s.messages(convs[0]).await.unwrap().len(),
        2,
        "only the settled turn"
    );
    s.claim_reply(claim(convs[0], user, "new", 30), now)
        .await
        .unwrap()
        .unwrap();
}

backend_tests!(
    users_are_created_and_found_case_insensitively,
    usernames_emails_and_openids_are_unique,
    profiles_update_partially,
    refresh_tokens_rotate_and_reuse_ends_the_session,
    expired_refresh_tokens_do_not_rotate,
    sessions_end_one_or_all_but_one,
    deleting_a_user_cascades,
    concurrent_writers_all_land,
    settings_keep_the_first_value,
    reply_claims_lock_conversations_and_cap_users,
    claims_and_final_saves_made_at_once_keep_every_rule,
    expired_leases_are_settled_and_live_ones_never,
);
