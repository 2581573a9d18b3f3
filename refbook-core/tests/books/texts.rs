//! Books' own texts on SQLite and PostgreSQL: stored whole, replaced at once, searched,
//! scoped to the library or one reader, and refused when bad with nothing stored.

use std::sync::Arc;

use refbook_core::backend_tests;
use refbook_core::books::{BookTexts, Isbn};
use refbook_core::config::BookSettings;
use refbook_core::domain::{TextFormat, TextScope, UserId};
use refbook_core::embed::EmbedderSource;
use refbook_core::store::{NewUser, SqlStore, Store};
use refbook_core::testing::TestDatabase;
use refbook_core::timestamp::Timestamp;
use refbook_core::ErrorKind;

use crate::fixtures::SANTI;

/// A short novel in three chapters.
const NOVEL: &str = "三体\n\n\
第一章 科学边界\n汪淼是纳米材料研究者。他在倒计时的幻觉里度过了许多天。\n\n\
第二章 红岸\n叶文洁在红岸基地负责监听和发射信号。她按下了发射键，太阳放大了她的声音。\n\n\
第三章 三体游戏\n汪淼戴上V装具，进入了三体游戏，看见了乱纪元与恒纪元。\n";

fn santi() -> Isbn {
    Isbn::parse(SANTI).unwrap()
}

pub(crate) async fn texts(db: &TestDatabase) -> (BookTexts, Arc<dyn Store>) {
    let store: Arc<dyn Store> = Arc::new(SqlStore::connect(db.url()).await.unwrap());
    (
        BookTexts::new(
            store.clone(),
            &BookSettings::default(),
            Arc::new(EmbedderSource::off()),
        ),
        store,
    )
}

pub(crate) async fn reader(store: &Arc<dyn Store>, name: &str) -> UserId {
    let user = NewUser {
        username: Some(name.to_owned()),
        email: None,
        nickname: name.to_owned(),
        password_hash: None,
        wechat_openid: None,
        wechat_unionid: None,
    };
    store.create_user(user, Timestamp::now()).await.unwrap().id
}

async fn a_text_is_stored_whole_searched_and_replaced(db: TestDatabase) {
    let (texts, store) = texts(&db).await;
    let added = texts
        .add(
            &santi(),
            TextScope::Library,
            TextFormat::Plain,
            NOVEL.as_bytes().to_vec(),
        )
        .await
        .unwrap();
    assert!(added.replaced);
    assert_eq!(added.info.chars, NOVEL.chars().count());
    let sections = texts.sections(&added.info).await.unwrap();
    let titles: Vec<&str> = sections.iter().map(|s| s.title.as_str()).collect();
    assert_eq!(
        titles,
        ["", "第一章 科学边界", "第二章 红岸", "第三章 三体游戏"]
    );

    let found = texts
        .search(&santi(), None, "叶文洁在红岸做什么？", 5)
        .await
        .unwrap()
        .expect("the book has a text");
    assert_eq!(found[0].section.title, "第二章 红岸");
    let chars: Vec<char> = NOVEL.chars().collect();
    assert_eq!(
        found[0].text,
        chars[found[0].start..found[0].end]
            .iter()
            .collect::<String>(),
        "positions are character offsets into the text"
    );

    // The same file again: nothing changes.
    let again = texts
        .add(
            &santi(),
            TextScope::Library,
            TextFormat::Plain,
            NOVEL.as_bytes().to_vec(),
        )
        .await
        .unwrap();
    assert!(!again.replaced);
    assert_eq!(again.info.id, added.info.id);

    // Another file replaces it whole: the old parts are gone, search reads the new text.
    let second = "第一回 新的开始\n罗辑成为了面壁者。\n";
    let replaced = texts
        .add(
            &santi(),
            TextScope::Library,
            TextFormat::Plain,
            second.as_bytes().to_vec(),
        )
        .await
        .unwrap();
    assert!(replaced.replaced && replaced.info.id != added.info.id);
    let (old_sections, old_chunks) = store.book_text_parts(added.info.id).await.unwrap();
    assert!(old_sections.is_empty() && old_chunks.is_empty());
    let found = texts
        .search(&santi(), None, "面壁者", 5)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found[0].section.title, "第一回 新的开始");
    assert!(texts
        .search(&santi(), None, "叶文洁", 5)
        .await
        .unwrap()
        .unwrap()
        .is_empty());
    assert_eq!(texts.list(TextScope::Library).await.unwrap().len(), 1);

    assert!(texts.remove(&santi(), TextScope::Library).await.unwrap());
    assert!(!texts.remove(&santi(), TextScope::Library).await.unwrap());
    assert_eq!(
        texts.search(&santi(), None, "面壁者", 5).await.unwrap(),
        None
    );
}

async fn a_readers_copy_is_theirs_wins_for_them_and_goes_with_the_account(db: TestDatabase) {
    let (texts, store) = texts(&db).await;
    let (me, other) = (reader(&store, "me").await, reader(&store, "other").await);
    texts
        .add(
            &santi(),
            TextScope::Library,
            TextFormat::Plain,
            NOVEL.as_bytes().to_vec(),
        )
        .await
        .unwrap();
    let mine = "# 我的笔记\n\n面壁计划是人类对三体危机的回应。\n";
    texts
        .add(
            &santi(),
            TextScope::Reader(me),
            TextFormat::Markdown,
            mine.as_bytes().to_vec(),
        )
        .await
        .unwrap();
    let for_me = texts
        .search(&santi(), Some(me), "面壁计划", 5)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(for_me[0].section.title, "我的笔记");
    let for_other = texts
        .search(&santi(), Some(other), "面壁计划", 5)
        .await
        .unwrap()
        .unwrap();
    assert!(
        for_other.iter().all(|p| p.section.title != "我的笔记"),
        "another reader never searches my copy"
    );
    assert!(!texts
        .search(&santi(), Some(other), "红岸", 5)
        .await
        .unwrap()
        .unwrap()
        .is_empty());
    assert_eq!(texts.list(TextScope::Reader(me)).await.unwrap().len(), 1);
    assert!(texts
        .list(TextScope::Reader(other))
        .await
        .unwrap()
        .is_empty());

    store.delete_user(me).await.unwrap();
    assert_eq!(
        texts.info(&santi(), TextScope::Reader(me)).await.unwrap(),
        None,
        "deleting the account removes the reader's copy"
    );
    assert!(texts
        .info(&santi(), TextScope::Library)
        .await
        .unwrap()
        .is_some());
}

async fn bad_texts_are_refused_and_the_stored_one_stays(db: TestDatabase) {
    let (_, store) = texts(&db).await;
    let settings = BookSettings {
        text_max_bytes: 1024,
        ..BookSettings::default()
    };
    let texts = BookTexts::new(store.clone(), &settings, Arc::new(EmbedderSource::off()));
    texts
        .add(
            &santi(),
            TextScope::Library,
            TextFormat::Plain,
            NOVEL.as_bytes().to_vec(),
        )
        .await
        .unwrap();
    let before = texts.info(&santi(), TextScope::Library).await.unwrap();
    let bad: [Vec<u8>; 4] = [
        vec![0x81, 0x20, 0xff, 0xfe, 0x00],
        b" \n\t\r\n ".to_vec(),
        Vec::new(),
        "长".repeat(400).into_bytes(),
    ];
    for bytes in bad {
        let err = texts
            .add(&santi(), TextScope::Library, TextFormat::Plain, bytes)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert_eq!(err.field(), Some("file"));
    }
    assert_eq!(
        texts.info(&santi(), TextScope::Library).await.unwrap(),
        before
    );
    // A copy for a reader who does not exist is refused, nothing stored.
    let ghost = texts
        .add(
            &santi(),
            TextScope::Reader(UserId::new(987_654)),
            TextFormat::Plain,
            b"text".to_vec(),
        )
        .await
        .unwrap_err();
    assert_eq!(ghost.kind(), ErrorKind::NotFound);
}

async fn gbk_files_are_read(db: TestDatabase) {
    let (texts, _) = texts(&db).await;
    // 第一回 甄士隐梦幻识通灵 in GBK.
    let gbk: Vec<u8> = vec![
        0xb5, 0xda, 0xd2, 0xbb, 0xbb, 0xd8, 0x20, 0xd5, 0xe7, 0xca, 0xbf, 0xd2, 0xfe, 0xc3, 0xce,
        0xbb, 0xc3, 0xca, 0xb6, 0xcd, 0xa8, 0xc1, 0xe9, 0x0a, 0xb5, 0xda, 0xd2, 0xbb, 0xbb, 0xd8,
        0xa1, 0xa3,
    ];
    let added = texts
        .add(&santi(), TextScope::Library, TextFormat::Plain, gbk)
        .await
        .unwrap();
    let sections = texts.sections(&added.info).await.unwrap();
    assert_eq!(sections[0].title, "第一回 甄士隐梦幻识通灵");
}

backend_tests!(
    a_text_is_stored_whole_searched_and_replaced,
    a_readers_copy_is_theirs_wins_for_them_and_goes_with_the_account,
    bad_texts_are_refused_and_the_stored_one_stays,
    gbk_files_are_read,
);
