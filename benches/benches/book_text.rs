//! Criterion benchmarks of a book's text: preparing it (decode, sections, chunks), building
//! its BM25 index, and searching it — on a generated 1 MB Chinese text (chapters of
//! sentences drawn from a fixed vocabulary with a Zipf-like skew, so term statistics look
//! like prose) and on a 1 MB English one.
//!
//! Run: `cargo bench -p refbook-benches --bench book_text`

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use refbook_core::book_text::{prepare, Bm25Index};
use refbook_core::domain::TextFormat;

/// A deterministic text of about `bytes` bytes: chapters of sentences of words drawn from
/// `words`, the first ones far more often than the last.
fn generated(
    bytes: usize,
    words: &[&str],
    chapter: &dyn Fn(usize) -> String,
    stop: &str,
    space: &str,
) -> String {
    let mut text = String::new();
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut n = 0;
    while text.len() < bytes {
        if n % 400 == 0 {
            text.push_str(&chapter(n / 400 + 1));
            text.push('\n');
        }
        let length = 6 + (next() % 14) as usize;
        for i in 0..length {
            // Zipf-like: the square of a uniform draw favours the first words.
            let u = (next() % 10_000) as f64 / 10_000.0;
            let word = words[((u * u) * words.len() as f64) as usize];
            if i > 0 {
                text.push_str(space);
            }
            text.push_str(word);
        }
        text.push_str(stop);
        n += 1;
        if n % 6 == 0 {
            text.push('\n');
        }
    }
    text
}

const CHINESE_WORDS: &[&str] = &[
    "的",
    "了",
    "他",
    "说",
    "我们",
    "一个",
    "没有",
    "什么",
    "知道",
    "自己",
    "宝玉",
    "黛玉",
    "姑娘",
    "太太",
    "老爷",
    "丫头",
    "屋里",
    "出去",
    "进来",
    "听见",
    "笑道",
    "只见",
    "如今",
    "这里",
    "那边",
    "红岸",
    "基地",
    "信号",
    "宇宙",
    "文明",
    "三体",
    "星空",
    "科学",
    "边界",
    "纳米",
    "倒计时",
    "幻觉",
    "叶文洁",
    "汪淼",
    "史强",
    "罗辑",
    "面壁者",
    "破壁人",
    "智子",
    "舰队",
    "末日",
    "黑暗",
    "森林",
    "春风",
    "明月",
    "江南",
    "长安",
    "将军",
    "书生",
    "皇帝",
    "诗人",
    "酒杯",
    "梅花",
    "杨柳",
    "归去",
];

const ENGLISH_WORDS: &[&str] = &[
    "the", "and", "of", "to", "a", "in", "that", "is", "my", "you", "lord", "king", "queen",
    "Hamlet", "Polonius", "Ophelia", "Laertes", "ghost", "father", "mother", "castle", "night",
    "sword", "poison", "players", "madness", "revenge", "grave", "skull", "Denmark", "crown",
    "sleep", "dream", "death", "heaven", "earth", "honour", "truth", "love", "letter", "ship",
];

fn texts(c: &mut Criterion) {
    let chinese = generated(
        1 << 20,
        CHINESE_WORDS,
        &|n| format!("第{n}回 故事"),
        "。",
        "",
    );
    let english = generated(
        1 << 20,
        ENGLISH_WORDS,
        &|n| format!("CHAPTER {n}"),
        ".",
        " ",
    );
    for (name, text) in [("chinese", &chinese), ("english", &english)] {
        let mut group = c.benchmark_group(format!("book text ({name}, 1 MB)"));
        group.sample_size(10);
        group.throughput(Throughput::Bytes(text.len() as u64));
        group.bench_function("prepare (decode, sections, chunks)", |b| {
            b.iter(|| prepare(text.as_bytes(), TextFormat::Plain).unwrap());
        });
        let prepared = prepare(text.as_bytes(), TextFormat::Plain).unwrap();
        group.bench_function("build the BM25 index", |b| {
            b.iter(|| Bm25Index::build(prepared.chunks.iter().map(|c| c.text.as_str())));
        });
        group.finish();
        let index = Bm25Index::build(prepared.chunks.iter().map(|c| c.text.as_str()));
        println!(
            "{name}: {} chunks, index {:.1} MB in memory per MB of text",
            index.len(),
            index.memory_bytes() as f64 / text.len() as f64
        );
        let question = if name == "chinese" {
            "叶文洁在红岸基地收到了什么信号？"
        } else {
            "Who poisoned the king, and what did Laertes do?"
        };
        c.bench_function(&format!("book text ({name}, 1 MB): search top 5"), |b| {
            b.iter(|| index.search(question, 5));
        });
    }
}

criterion_group!(benches, texts);
criterion_main!(benches);
