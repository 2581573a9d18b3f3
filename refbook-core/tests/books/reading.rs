//! Reading alongside on SQLite and PostgreSQL: a reader's progress (set, changed, cleared,
//! theirs alone, gone with the account) is a hard limit on what their searches return,
//! and questions naming a section search that section.

use std::sync::Arc;

use refbook_core::backend_tests;
use refbook_core::books::{BookTexts, Found, Isbn, PassageQuery};
use refbook_core::domain::{ReadingMark, TextFormat, TextScope, UserId};
use refbook_core::store::Store;
use refbook_core::testing::TestDatabase;
use refbook_core::ErrorKind;

use crate::fixtures::SANTI;

/// Four chapters; every one mentions 叶文洁, so only the progress decides which are found.
const NOVEL: &str = "三体\n\n\
第一章 科学边界\n汪淼是纳米材料研究者。叶文洁的名字第一次出现在他听到的故事里。\n\n\
第二章 红岸\n叶文洁在红岸基地负责监听和发射信号。她按下了发射键，太阳放大了她的声音。\n\n\
第三章 三体游戏\n汪淼戴上V装具，进入了三体游戏。游戏里的叶文洁只是一个传说。\n\n\
第四章 结局\n叶文洁在最后承认了一切。真相大白，审判开始。\n";

fn santi() -> Isbn {
    Isbn::parse(SANTI).unwrap()
}

async fn setup(db: &TestDatabase) -> (BookTexts, Arc<dyn Store>, UserId, UserId) {
    let (texts, store) = crate::texts::texts(db).await;
    texts
        .add(
            &santi(),
            TextScope::Library,
            TextFormat::Plain,
            NOVEL.as_bytes().to_vec(),
        )
        .await
        .unwrap();
    let a = crate::texts::reader(&store, "reader_a").await;
    let b = crate::texts::reader(&store, "reader_b").await;
    (texts, store, a, b)
}

async fn find(texts: &BookTexts, reader: UserId, question: &str, whole_book: bool) -> Found {
    texts
        .find(PassageQuery {
            isbn: &santi(),
            reader: Some(reader),
            query: question,
            question,
            limit: 10,
            whole_book,
        })
        .await
        .unwrap()
        .unwrap()
}

fn sections_of(found: &Found) -> Vec<u32> {
    let mut sections: Vec<u32> = found.passages.iter().map(|p| p.section.index).collect();
    sections.sort_unstable();
    sections.dedup();
    sections
}

async fn progress_limits_what_a_reader_finds(db: TestDatabase) {
    let (texts, store, a, b) = setup(&db).await;
    assert_eq!(
        sections_of(&find(&texts, a, "叶文洁", false).await),
        [1, 2, 3, 4]
    );
    assert!(texts.progress(&santi(), a).await.unwrap().is_none());

    // Read up to the end of chapter two (section 2).
    let set = texts
        .set_progress(&santi(), a, ReadingMark::Section(2))
        .await
        .unwrap();
    let point = set.point.clone().unwrap();
    assert_eq!(point.section.title, "第二章 红岸");
    assert!(point.position < NOVEL.chars().count());
    let found = find(&texts, a, "叶文洁", false).await;
    assert_eq!(sections_of(&found), [1, 2], "nothing past the progress");
    assert!(found.passages.iter().all(|p| p.end <= point.position));
    assert_eq!(found.progress.as_ref(), Some(&point));
    assert_eq!(
        sections_of(&find(&texts, a, "叶文洁", true).await),
        [1, 2, 3, 4],
        "the whole book when asked for"
    );
    assert_eq!(
        sections_of(&find(&texts, b, "叶文洁", false).await),
        [1, 2, 3, 4],
        "another reader's progress never applies"
    );
    let stored = texts.progress(&santi(), a).await.unwrap().unwrap();
    assert_eq!(stored.mark, ReadingMark::Section(2));
    assert_eq!(stored.point, Some(point));

    // A position inside chapter three: its passage is cut there.
    let inside = NOVEL.find("游戏里").unwrap();
    let position = NOVEL[..inside].chars().count();
    texts
        .set_progress(&santi(), a, ReadingMark::Position(position))
        .await
        .unwrap();
    let found = find(&texts, a, "叶文洁 游戏", false).await;
    assert_eq!(sections_of(&found), [1, 2, 3]);
    let cut = found
        .passages
        .iter()
        .find(|p| p.section.index == 3)
        .unwrap();
    assert_eq!(cut.end, position);
    assert!(!cut.text.contains("传说"), "{}", cut.text);

    // Past the end: refused, and the stored progress stays.
    for mark in [
        ReadingMark::Section(5),
        ReadingMark::Position(NOVEL.chars().count() + 1),
    ] {
        let refused = texts.set_progress(&santi(), a, mark).await.unwrap_err();
        assert_eq!(refused.kind(), ErrorKind::InvalidInput);
    }
    assert_eq!(
        texts.progress(&santi(), a).await.unwrap().unwrap().mark,
        ReadingMark::Position(position)
    );

    // Cleared: the whole book again; clearing twice says there was none.
    assert!(texts.clear_progress(&santi(), a).await.unwrap());
    assert!(!texts.clear_progress(&santi(), a).await.unwrap());
    assert_eq!(
        sections_of(&find(&texts, a, "叶文洁", false).await),
        [1, 2, 3, 4]
    );

    // A book with no text takes no progress; a reader's progress goes with the account.
    let other = Isbn::parse("9787020002207").unwrap();
    let none = texts
        .set_progress(&other, a, ReadingMark::Section(0))
        .await
        .unwrap_err();
    assert_eq!(none.kind(), ErrorKind::NotFound);
    texts
        .set_progress(&santi(), b, ReadingMark::Section(1))
        .await
        .unwrap();
    assert!(store.delete_user(b).await.unwrap());
    assert!(store.progress(b, &santi()).await.unwrap().is_none());
}

async fn a_question_naming_a_section_searches_it(db: TestDatabase) {
    let (texts, _, a, _) = setup(&db).await;
    for question in [
        "第三章讲了什么？",
        "总结一下第3章",
        "三体游戏这一章讲了什么",
    ] {
        let found = find(&texts, a, question, false).await;
        assert_eq!(sections_of(&found), [3], "{question}");
        assert_eq!(found.named.len(), 1, "{question}");
        assert_eq!(found.named[0].title, "第三章 三体游戏");
        assert!(found.unread.is_empty());
    }
    let both = find(&texts, a, "比较第一章和第四章", false).await;
    assert_eq!(sections_of(&both), [1, 4]);

    // Past the progress: nothing from it, and the search says it is unread.
    texts
        .set_progress(&santi(), a, ReadingMark::Section(2))
        .await
        .unwrap();
    let ahead = find(&texts, a, "第四章讲了什么？", false).await;
    assert!(ahead.passages.is_empty());
    assert_eq!(ahead.unread.len(), 1);
    assert_eq!(ahead.unread[0].title, "第四章 结局");
}

backend_tests!(
    progress_limits_what_a_reader_finds,
    a_question_naming_a_section_searches_it,
);
