use super::*;
use crate::book_text::numbers::number;
use crate::book_text::sections;
use crate::domain::TextFormat;

fn cut(text: &str, format: TextFormat) -> Vec<TextSection> {
    let chars: Vec<char> = text.chars().collect();
    sections(&chars, format)
}

fn body() -> String {
    "正文正文正文正文正文正文正文正文正文正文正文正文正文正文。\n".to_owned()
}

fn novel() -> Vec<TextSection> {
    let mut text = String::from("红楼梦\n\n");
    for title in [
        "第一回 甄士隐梦幻识通灵　贾雨村风尘怀闺秀",
        "第二回 贾夫人仙逝扬州城　冷子兴演说荣国府",
        "第三回 托内兄如海荐西宾　接外孙贾母惜孤女",
        "第二十七回 滴翠亭杨妃戏彩蝶　埋香冢飞燕泣残红",
    ] {
        text.push_str(title);
        text.push('\n');
        text.push_str(&body());
    }
    cut(&text, TextFormat::Plain)
}

fn play() -> Vec<TextSection> {
    let mut text = String::from("# Hamlet\n\n");
    for act in ["I", "II"] {
        text.push_str(&format!("## ACT {act}\n\n"));
        for scene in [
            "I. Elsinore. A platform.",
            "II. A room of state in the castle.",
        ] {
            text.push_str(&format!(
                "### SCENE {scene}\n\nEnter BERNARDO and FRANCISCO, two sentinels, at their posts.\n\n"
            ));
        }
    }
    cut(&text, TextFormat::Markdown)
}

fn titles(sections: &[TextSection], named: &[Range<usize>]) -> Vec<String> {
    named
        .iter()
        .flat_map(|range| sections[range.clone()].iter().map(|s| s.title.clone()))
        .collect()
}

#[test]
fn numbers_in_every_notation() {
    assert_eq!(number("27"), Some(27));
    assert_eq!(number("２７"), Some(27));
    assert_eq!(number("二十七"), Some(27));
    assert_eq!(number("十"), Some(10));
    assert_eq!(number("一百零五"), Some(105));
    assert_eq!(number("一〇五"), Some(105));
    assert_eq!(number("两"), Some(2));
    assert_eq!(number("IV"), Some(4));
    assert_eq!(number("xii"), Some(12));
    assert_eq!(number("Third"), Some(3));
    assert_eq!(number("dog"), None);
}

#[test]
fn chinese_chapters_by_number_in_any_notation() {
    let sections = novel();
    for question in [
        "第三回讲了什么？",
        "第3回讲了什么",
        "请总结第 三 回",
        "第２７回里黛玉做了什么",
    ] {
        let named = named_sections(question, &sections);
        assert_eq!(named.len(), 1, "{question}");
        assert!(
            sections[named[0].start]
                .title
                .contains(if question.contains('２') {
                    "第二十七回"
                } else {
                    "第三回"
                }),
            "{question}: {:?}",
            titles(&sections, &named)
        );
    }
    assert!(
        named_sections("第三章讲了什么", &sections).len() == 1,
        "章 and 回 are both chapters"
    );
    assert!(named_sections("第九回讲了什么", &sections).is_empty());
    assert!(named_sections("黛玉为什么哭？", &sections).is_empty());
}

#[test]
fn chinese_chapters_by_title_or_half_a_title() {
    let sections = novel();
    let named = named_sections("滴翠亭杨妃戏彩蝶这一回写了什么？", &sections);
    assert_eq!(
        titles(&sections, &named),
        ["第二十七回 滴翠亭杨妃戏彩蝶　埋香冢飞燕泣残红"]
    );
    let named = named_sections("《冷子兴演说荣国府》讲了什么", &sections);
    assert_eq!(named.len(), 1);
    let named = named_sections("滴翠亭楊妃戲彩蝶這一回寫了什麼？", &sections);
    assert_eq!(
        titles(&sections, &named),
        ["第二十七回 滴翠亭杨妃戏彩蝶　埋香冢飞燕泣残红"],
        "a title asked in traditional characters"
    );
}

#[test]
fn acts_take_their_scenes_and_scenes_need_their_act() {
    let sections = play();
    let act = named_sections("What happens in Act II?", &sections);
    assert_eq!(
        titles(&sections, &act),
        [
            "ACT II",
            "SCENE I. Elsinore. A platform.",
            "SCENE II. A room of state in the castle."
        ]
    );
    for question in [
        "Summarise act 2, scene 1",
        "What happens in Act II Scene I?",
        "act two scene one",
    ] {
        let scene = named_sections(question, &sections);
        assert_eq!(scene.len(), 1, "{question}");
        assert_eq!(scene[0].start, act[0].start + 1, "{question}");
        assert_eq!(scene[0].len(), 1, "{question}");
    }
    assert!(
        named_sections("What happens in scene 2?", &sections).is_empty(),
        "every act has a scene 2"
    );
    assert!(
        named_sections("Who is Hamlet?", &sections).is_empty(),
        "the book's title heading is not a section question"
    );
}

#[test]
fn unnumbered_headings_of_one_kind_are_numbered_in_order() {
    let text = format!(
        "# 学而篇\n\n{}# 为政篇\n\n{}# 八佾篇\n\n{}",
        body(),
        body(),
        body()
    );
    let sections = cut(&text, TextFormat::Markdown);
    let named = named_sections("第二篇讲了什么？", &sections);
    assert_eq!(titles(&sections, &named), ["为政篇"]);
    let named = named_sections("八佾篇的主旨是什么", &sections);
    assert_eq!(titles(&sections, &named), ["八佾篇"]);
}

#[test]
fn latin_titles_only_when_quoted_and_english_chapters_by_number() {
    let text = "Chapter 1. The Ball\n\nThey danced at the ball all night long and talked.\n\nChapter 2. The Letter\n\nA letter came in the morning from the north country.\n";
    let sections = cut(text, TextFormat::Plain);
    assert!(named_sections("Who went to the ball?", &sections).is_empty());
    let named = named_sections("Summarise \"The Letter\"", &sections);
    assert_eq!(titles(&sections, &named), ["Chapter 2. The Letter"]);
    let named = named_sections("summarise chapter one", &sections);
    assert_eq!(titles(&sections, &named), ["Chapter 1. The Ball"]);
    let named = named_sections("Compare chapter 1 and chapter 2", &sections);
    assert_eq!(named.len(), 2);
}

#[test]
fn poems_by_their_own_name() {
    let text = format!(
        "# 国风·周南·关雎\n\n{}# 国风·周南·葛覃\n\n{}",
        body(),
        body()
    );
    let sections = cut(&text, TextFormat::Markdown);
    for question in [
        "《关雎》写的是什么？",
        "关雎这首诗写的是什么？",
        "《關雎》寫的是什麼？",
    ] {
        let named = named_sections(question, &sections);
        assert_eq!(titles(&sections, &named), ["国风·周南·关雎"], "{question}");
    }
    assert!(
        named_sections("关雎鸟是什么鸟？", &sections).is_empty(),
        "a short title said in passing is not a section question"
    );
}
