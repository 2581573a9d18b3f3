//! The browser face in a real browser: headless Chromium, driven through chromedriver
//! (WebDriver), plays the playground's whole flow against the mock model and renders
//! `/docs`. Skipped (with a note) when chromedriver is missing, unless
//! `REFBOOK_TEST_REQUIRE_BROWSER=1` (as in CI), which makes a missing browser a failure.
//! `REFBOOK_SCREENSHOTS=DIR` also saves a picture of each page there.

use std::process::Stdio;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use refbook_core::testing::{MockReply, TestBackend, TestDatabase};
use serde_json::{json, Value};
use wiremock::matchers::path;
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::{spawn_app, spawn_app_with, token, TestApp, SANTI};

/// How long any one thing may take to appear in the page.
const WAIT: Duration = Duration::from_secs(20);

/// chromedriver and a WebDriver session on headless Chromium; both end when dropped.
struct Browser {
    client: Client,
    driver: tokio::process::Child,
    _profile: tempfile_dir::Dir,
}

mod tempfile_dir {
    /// A fresh directory under the system's temp folder, removed when dropped.
    pub struct Dir(pub std::path::PathBuf);
    impl Dir {
        pub fn new(prefix: &str) -> Self {
            let path = std::env::temp_dir().join(format!("{prefix}-{}", uuid::Uuid::new_v4()));
            std::fs::create_dir_all(&path).expect("temp dir");
            Self(path)
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn find_program(name: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    })
}

impl Browser {
    /// Starts one, or `None` (a skip) when chromedriver or Chromium is not installed.
    async fn start() -> Option<Self> {
        let required = std::env::var("REFBOOK_TEST_REQUIRE_BROWSER").is_ok_and(|v| v == "1");
        let driver_path = find_program("chromedriver");
        let chromium = std::env::var("REFBOOK_TEST_CHROMIUM")
            .ok()
            .map(std::path::PathBuf::from)
            .or_else(|| find_program("chromium"))
            .or_else(|| find_program("chromium-browser"));
        let (Some(driver_path), Some(chromium)) = (driver_path, chromium) else {
            assert!(
                !required,
                "REFBOOK_TEST_REQUIRE_BROWSER=1 but chromium/chromedriver are not installed"
            );
            eprintln!("SKIPPED: browser test (install chromium and chromium-driver to run it)");
            return None;
        };
        let port = free_port();
        let driver = tokio::process::Command::new(driver_path)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn chromedriver");
        let profile = tempfile_dir::Dir::new("refbook-chromium");
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-quic", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--window-size=1280,900",
                    format!("--user-data-dir={}", profile.0.display()),
                ]
            }
        });
        let capabilities = match capabilities {
            Value::Object(map) => map,
            _ => unreachable!(),
        };
        let url = format!("http://127.0.0.1:{port}");
        let mut last_error = String::new();
        for _ in 0..100 {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(capabilities.clone())
                .connect(&url)
                .await
            {
                Ok(client) => {
                    return Some(Self {
                        client,
                        driver,
                        _profile: profile,
                    })
                }
                Err(err) => last_error = err.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no WebDriver session: {last_error}");
    }

    async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill().await;
    }

    /// Runs `script` (a function body) in the page and answers its value.
    async fn js(&self, script: &str) -> Value {
        self.client
            .execute(script, vec![])
            .await
            .expect("script ran")
    }

    /// Waits until `script` (a function body) answers something truthy; answers it.
    async fn until(&self, what: &str, script: &str) -> Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        // An element not there yet is a "not yet", not an error.
        let guarded = format!("try {{ {script} }} catch (e) {{ return null; }}");
        loop {
            let value = self.js(&guarded).await;
            let truthy = match &value {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::String(s) => !s.is_empty(),
                Value::Number(n) => n.as_f64() != Some(0.0),
                _ => true,
            };
            if truthy {
                return value;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}; page text: {}",
                self.js("return document.body.innerText").await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn testid(&self, id: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(&format!("[data-testid=\"{id}\"]")))
            .await
            .unwrap_or_else(|e| panic!("element {id}: {e}"))
    }

    async fn type_into(&self, id: &str, text: &str) {
        let element = self.testid(id).await;
        element.clear().await.expect("clear");
        element.send_keys(text).await.expect("type");
    }

    async fn click(&self, id: &str) {
        self.testid(id).await.click().await.expect("click");
    }

    /// Clicks the element `selector` finds, once it is there.
    async fn click_css(&self, selector: &str) {
        self.client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(selector))
            .await
            .unwrap_or_else(|e| panic!("{selector}: {e}"))
            .click()
            .await
            .unwrap_or_else(|e| panic!("click {selector}: {e}"));
    }

    async fn text(&self, id: &str) -> String {
        self.js(&format!(
            "const e = document.querySelector('[data-testid=\"{id}\"]'); return e ? e.textContent : null;"
        ))
        .await
        .as_str()
        .unwrap_or("")
        .to_owned()
    }

    async fn screenshot(&self, name: &str) {
        if let Ok(dir) = std::env::var("REFBOOK_SCREENSHOTS") {
            let png = self.client.screenshot().await.expect("screenshot");
            std::fs::write(std::path::Path::new(&dir).join(name), png).expect("save screenshot");
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Makes 三体 known to the book mock, with a cover image.
async fn mount_book(app: &TestApp) {
    app.mount_santi("/s1.png").await;
    Mock::given(path("/s1.png"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(tiny_png(), "image/png"))
        .mount(&app.books)
        .await;
}

/// A valid 2×3 PNG (one colour), built by hand: signature, IHDR, IDAT, IEND.
pub fn tiny_png() -> Vec<u8> {
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = 0xFFFF_FFFFu32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
    fn adler32(bytes: &[u8]) -> u32 {
        let (mut a, mut b) = (1u32, 0u32);
        for &x in bytes {
            a = (a + u32::from(x)) % 65521;
            b = (b + a) % 65521;
        }
        (b << 16) | a
    }
    fn chunk(out: &mut Vec<u8>, kind: &[u8], data: &[u8]) {
        out.extend_from_slice(&u32::try_from(data.len()).unwrap().to_be_bytes());
        let mut body = kind.to_vec();
        body.extend_from_slice(data);
        out.extend_from_slice(&body);
        out.extend_from_slice(&crc32(&body).to_be_bytes());
    }
    let (width, height) = (2u32, 3u32);
    // Each row: filter type 0 (none), then the pixels.
    let row: Vec<u8> = std::iter::once(0)
        .chain([0x2f, 0x6f, 0xdb].repeat(width as usize))
        .collect();
    let raw = row.repeat(height as usize);
    // zlib, one stored (uncompressed) block.
    let mut zlib = vec![0x78, 0x01, 0x01];
    let len = u16::try_from(raw.len()).unwrap();
    zlib.extend_from_slice(&len.to_le_bytes());
    zlib.extend_from_slice(&(!len).to_le_bytes());
    zlib.extend_from_slice(&raw);
    zlib.extend_from_slice(&adler32(&raw).to_be_bytes());
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]); // 8-bit RGB
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    chunk(&mut png, b"IHDR", &ihdr);
    chunk(&mut png, b"IDAT", &zlib);
    chunk(&mut png, b"IEND", &[]);
    png
}

/// A slow reply: `n` pieces `piece{i} ` a `pause` apart.
fn slow_reply(n: usize, pause: Duration) -> (MockReply, String) {
    let pieces: Vec<String> = (0..n).map(|i| format!("piece{i} ")).collect();
    let refs: Vec<&str> = pieces.iter().map(String::as_str).collect();
    (
        MockReply::answer(&["thinking"], &refs, pause),
        pieces.concat(),
    )
}

/// Sign up, open a book by an ISBN in another dressing, see its card and cover, pick a
/// persona, ask and watch the answer (reasoning dimmed), stop a reply, reload mid-answer
/// and see it resume, and find the conversation in the history.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_playground_talks_with_a_book() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let Some(db) = TestDatabase::create(TestBackend::Sqlite).await else {
        return;
    };
    let app = spawn_app(db).await;
    mount_book(&app).await;
    let base = app.url("");
    let b = &browser;

    b.client
        .goto(&format!("{base}/playground"))
        .await
        .expect("open the playground");
    b.type_into("username", "browser_reader").await;
    b.type_into("password", "a browser password").await;
    b.click("register").await;
    b.until(
        "the signed-in view",
        "return !document.getElementById('main').hidden",
    )
    .await;

    // Any ISBN dressing works; the card shows the stored book and its proxied cover.
    b.type_into("isbn", "ISBN 978-7-5366-9293-0").await;
    b.click("open-book").await;
    b.until(
        "the book card",
        "return document.querySelector('[data-testid=\"book-title\"]').textContent === '三体'",
    )
    .await;
    let cover = b
        .until(
            "the cover image",
            "const i = document.querySelector('[data-testid=\"cover\"]'); return i.complete && i.naturalWidth > 0 ? i.getAttribute('src') : null;",
        )
        .await;
    assert_eq!(cover, json!(format!("/api/books/{SANTI}/cover/")));

    // The persona list comes from the server; pick the author.
    let personas = b
        .js("return [...document.querySelectorAll('[data-testid=\"persona\"] option')].map(o => o.dataset.key)")
        .await;
    assert!(
        personas.as_array().unwrap().contains(&json!("author")),
        "{personas}"
    );
    b.js("const s = document.querySelector('[data-testid=\"persona\"]'); s.value = [...s.options].find(o => o.dataset.key === 'author').value;").await;

    // Ask: the answer streams in, the reasoning beside it, dimmed.
    app.llm.push(MockReply::answer(
        &["先想一想", "作者是谁。"],
        &["《三体》", "的作者", "是刘慈欣。"],
        Duration::from_millis(150),
    ));
    b.type_into("question", "这本书的作者是谁？").await;
    b.click("ask").await;
    b.until("the answer", "return document.querySelector('[data-testid=\"answer\"]').textContent === '《三体》的作者是刘慈欣。'").await;
    let reasoning = b
        .js("const r = document.querySelector('.message.assistant .reasoning'); return [r.textContent, Number(getComputedStyle(r).opacity)]")
        .await;
    assert_eq!(reasoning[0], "先想一想作者是谁。");
    assert!(
        reasoning[1].as_f64().unwrap() < 1.0,
        "reasoning is dimmed: {reasoning}"
    );
    b.until(
        "the ask button back",
        "return !document.querySelector('[data-testid=\"ask\"]').disabled",
    )
    .await;
    b.screenshot("playground.png").await;

    // The conversation was made with the chosen persona.
    let signed_in_token = b.js("return localStorage.getItem('refbook.token')").await;
    let token = signed_in_token.as_str().unwrap().to_owned();
    let list = app.get("/api/conversations/", Some(&token)).await;
    let conversation = list.assert_ok()["results"][0].clone();
    let id = conversation["id"].as_i64().unwrap();
    let personas = app.get("/api/personas/", Some(&token)).await;
    let author = personas
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["key"] == "author")
        .unwrap()["id"]
        .clone();
    assert_eq!(conversation["persona_id"], author);

    // Stop: a long reply is cut short and stored as partial.
    let (long, full) = slow_reply(200, Duration::from_millis(100));
    app.llm.push(long);
    b.type_into("question", "讲一个很长的故事").await;
    b.click("ask").await;
    b.until(
        "the first pieces",
        "return document.querySelector('[data-testid=\"answer\"]').textContent.includes('piece2 ')",
    )
    .await;
    b.click("stop").await;
    b.until(
        "the stop to land",
        "return document.querySelector('[data-testid=\"stop\"]').disabled",
    )
    .await;
    let shown = b.text("answer").await;
    assert!(shown.len() < full.len(), "the reply was cut short: {shown}");
    let detail = app
        .get(&format!("/api/conversations/{id}/"), Some(&token))
        .await;
    let last = detail.assert_ok()["messages"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["status"], "partial");
    assert_eq!(last["finish_reason"], "cancelled");
    assert_eq!(last["content"].as_str().unwrap(), shown);

    // Reload mid-answer: the page comes back to the same conversation and follows the
    // reply to its end, nothing missed or repeated.
    let (resumable, whole) = slow_reply(40, Duration::from_millis(100));
    app.llm.push(resumable);
    b.type_into("question", "再讲一个").await;
    b.click("ask").await;
    b.until(
        "the first pieces",
        "return document.querySelector('[data-testid=\"answer\"]').textContent.includes('piece3 ')",
    )
    .await;
    b.client.refresh().await.expect("reload");
    b.until(
        "the resumed answer",
        &format!(
            "const a = document.querySelector('[data-testid=\"answer\"]'); return a && a.textContent === {};",
            json!(whole)
        ),
    )
    .await;
    let messages = b
        .js("return document.querySelectorAll('.message').length")
        .await;
    assert_eq!(
        messages,
        json!(6),
        "three questions and three replies, once each"
    );

    // The history lists the conversation; clicking it opens it.
    let history = b.until("the history", "const h = document.querySelector('[data-testid=\"history\"]'); return h.children.length ? h.innerText : null;").await;
    assert!(history.as_str().unwrap().contains("三体"), "{history}");

    browser.close().await;
}

/// `/docs` renders every operation from the server's own document, loads nothing from
/// anywhere else, and "try it out" works with a bearer token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_docs_page_renders_the_api_offline() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let Some(db) = TestDatabase::create(TestBackend::Sqlite).await else {
        return;
    };
    let app = spawn_app(db).await;
    let user = app.register("docs_reader").await;
    let token = token(&user).to_owned();
    let base = app.url("");
    let b = &browser;

    let document = app.get("/api/openapi.json", None).await;
    let operations: usize = document.body["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|item| item.as_object().unwrap().len())
        .sum();

    b.client
        .goto(&format!("{base}/docs"))
        .await
        .expect("open the docs");
    let shown = b
        .until(
            "the operations",
            &format!("const n = document.querySelectorAll('.opblock').length; return n >= {operations} ? n : 0;"),
        )
        .await;
    assert_eq!(shown, json!(operations));
    b.screenshot("docs.png").await;

    // Try it out, as a reader would: authorize with the token, call GET /api/auth/me/.
    b.click_css(".auth-wrapper .authorize").await;
    b.client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css(".modal-ux input[type=text]"))
        .await
        .expect("the token field")
        .send_keys(&token)
        .await
        .expect("type the token");
    for selector in [
        ".modal-ux .auth-btn-wrapper .authorize",
        ".modal-ux .btn-done",
        "#operations-auth-getMe .opblock-summary",
        "#operations-auth-getMe .try-out__btn",
        "#operations-auth-getMe .execute",
    ] {
        b.click_css(selector).await;
    }
    let answer = b
        .until(
            "the live answer",
            "const r = document.querySelector('#operations-auth-getMe .live-responses-table tr.response .response-col_status'); return r ? r.textContent.trim() : null;",
        )
        .await;
    assert_eq!(answer, json!("200"));
    let body = b.js("return document.querySelector('#operations-auth-getMe .live-responses-table .microlight').textContent").await;
    assert!(body.as_str().unwrap().contains("docs_reader"), "{body}");

    // Nothing came from outside this server.
    let origins = b
        .js("return [...new Set(performance.getEntriesByType('resource').map(e => new URL(e.name).origin))]")
        .await;
    assert_eq!(
        origins,
        json!([base.trim_end_matches('/')]),
        "every request went to the server"
    );

    browser.close().await;
}

/// A cover host that sends HTML or SVG behind an image type (a list of types, SVG inside a
/// list, HTML under `image/png`): opened in the browser on the API's own origin, nothing
/// in it runs; an honest PNG opens as an image.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_cover_runs_nothing_in_the_browser() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let Some(db) = TestDatabase::create(TestBackend::Sqlite).await else {
        return;
    };
    let app = spawn_app(db).await;
    let covers = crate::books::hostile_covers(&app).await;
    let b = &browser;
    for (isbn, file) in covers {
        b.client
            .goto(&app.url(&format!("/api/books/{isbn}/cover/")))
            .await
            .expect("open the cover");
        let title = b.js("return document.title").await;
        assert_ne!(title, json!("pwned"), "the script of {file} ran");
        let script_ran = b
            .js("return document.documentElement.outerHTML.includes('pwned') && document.scripts.length > 0")
            .await;
        assert_eq!(script_ran, json!(false), "{file} was rendered as a page");
    }
    let honest = b
        .js("return document.images.length === 1 && document.images[0].naturalWidth === 2")
        .await;
    assert_eq!(honest, json!(true), "the honest PNG shows as an image");
    browser.close().await;
}

/// The book controls work only once signed in: an "Open the book" clicked while sign-up is
/// still on its way sends nothing without a token, and the page shows no error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_playground_shows_the_sources_and_takes_a_readers_copy() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let Some(db) = TestDatabase::create(TestBackend::Sqlite).await else {
        return;
    };
    let app = spawn_app(db).await;
    mount_book(&app).await;
    crate::grounding::add_library_text(&app).await;
    app.llm.push(MockReply::answer(
        &[],
        &["她负责监听和发射信号[1]。"],
        Duration::ZERO,
    ));
    let b = &browser;
    b.client.goto(&app.url("/playground")).await.expect("open");
    b.type_into("username", "chip_reader").await;
    b.type_into("password", "a chip password").await;
    b.click("register").await;
    b.until(
        "signed in",
        "return !document.getElementById('main').hidden",
    )
    .await;
    b.type_into("isbn", SANTI).await;
    b.click("open-book").await;
    b.until(
        "the book card",
        "return document.querySelector('[data-testid=\"book-title\"]').textContent === '三体'",
    )
    .await;
    b.type_into("question", "叶文洁在红岸基地做什么？").await;
    b.click("ask").await;
    b.until(
        "a cited source chip",
        "const c = document.querySelector('[data-testid=\"source-chip\"]'); \
         return !!c && c.classList.contains('cited') && c.textContent.startsWith('[1] 第二章 红岸')",
    )
    .await;
    assert_eq!(b.text("answer").await, "她负责监听和发射信号[1]。");
    let hidden = b
        .js("return document.querySelector('[data-testid=\"source-quote\"]').hidden")
        .await;
    assert_eq!(hidden, json!(true), "a passage opens on demand");
    b.click_css("[data-testid=\"source-chip\"]").await;
    let quote = b
        .until(
            "the opened passage",
            "const q = document.querySelector('[data-testid=\"source-quote\"]'); \
             return !q.hidden && q.textContent",
        )
        .await;
    assert!(
        quote.as_str().unwrap().contains("叶文洁在红岸基地负责监听"),
        "{quote}"
    );
    b.screenshot("playground-sources").await;

    // The reader's own copy, uploaded from the page.
    let mine = std::env::temp_dir().join(format!("refbook-mine-{}.md", std::process::id()));
    std::fs::write(&mine, "# 我的笔记\n\n面壁计划是人类对三体危机的回应。\n").unwrap();
    b.testid("text-file")
        .await
        .send_keys(mine.to_str().unwrap())
        .await
        .expect("choose the file");
    b.click("upload-text").await;
    b.until(
        "the upload's status",
        "return document.querySelector('[data-testid=\"text-status\"]').textContent.startsWith('Your copy: 1 sections')",
    )
    .await;
    let _ = std::fs::remove_file(&mine);
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_playground_shows_the_books_guide() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let Some(db) = TestDatabase::create(TestBackend::Sqlite).await else {
        return;
    };
    let app = spawn_app_with(db, |c| {
        c.core.books.guide = refbook_core::config::GuideMode::Auto;
    })
    .await;
    mount_book(&app).await;
    crate::grounding::add_library_text(&app).await;
    let b = &browser;
    b.client.goto(&app.url("/playground")).await.expect("open");
    b.type_into("username", "guide_reader").await;
    b.type_into("password", "a guide password").await;
    b.click("register").await;
    b.until(
        "signed in",
        "return !document.getElementById('main').hidden",
    )
    .await;
    b.type_into("isbn", SANTI).await;
    b.click("open-book").await;
    // Opening the book asks for its guide, which starts the writing; the panel follows it.
    let status = b
        .until(
            "the written guide",
            "const s = document.querySelector('[data-testid=\"guide-status\"]'); \
             return !document.getElementById('guide').hidden && s.textContent.includes('3 of 3') && s.textContent",
        )
        .await;
    assert!(
        status.as_str().unwrap().contains("3 of 3 sections"),
        "{status}"
    );
    let sections = b
        .js("return document.querySelectorAll('[data-testid=\"guide-section\"]').length")
        .await;
    assert_eq!(sections, json!(3));
    let book = b
        .js("return document.querySelector('[data-testid=\"guide-book\"]').textContent")
        .await;
    assert!(!book.as_str().unwrap().is_empty());
    b.click_css("#guide summary").await;
    b.screenshot("playground-guide").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_book_controls_wait_for_the_sign_in() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let Some(db) = TestDatabase::create(TestBackend::Sqlite).await else {
        return;
    };
    let app = spawn_app(db).await;
    mount_book(&app).await;
    let b = &browser;
    b.client
        .goto(&app.url("/playground"))
        .await
        .expect("open the playground");
    let disabled = b
        .js("return ['isbn', 'open-book', 'ask'].every((id) => document.getElementById(id).disabled)")
        .await;
    assert_eq!(disabled, json!(true), "book controls start disabled");
    b.type_into("username", "eager_reader").await;
    b.type_into("password", "an eager password").await;
    // Sign up, and at once (before the answer) try to open a book.
    b.js(&format!(
        "document.getElementById('isbn').value = '{SANTI}'; \
         document.getElementById('register').click(); \
         document.getElementById('open-book').click(); \
         document.getElementById('book-form').requestSubmit(); return true;"
    ))
    .await;
    b.until(
        "the signed-in view",
        "return !document.getElementById('main').hidden",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let error = b.text("error").await;
    assert!(error.is_empty(), "the page shows an error: {error}");
    // Signed in, the same controls work.
    b.type_into("isbn", SANTI).await;
    b.click("open-book").await;
    b.until(
        "the book card",
        "return document.querySelector('[data-testid=\"book-title\"]').textContent === '三体'",
    )
    .await;
    browser.close().await;
}

/// `REFBOOK_WEB=false` turns both pages off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pages_can_be_turned_off() {
    let Some(db) = TestDatabase::create(TestBackend::Sqlite).await else {
        return;
    };
    let on = spawn_app(db).await;
    for page in [
        "/docs",
        "/docs/",
        "/playground",
        "/docs/swagger-ui-bundle.js",
        "/playground/playground.js",
    ] {
        let reply = on.get(page, None).await;
        assert_eq!(reply.status, 200, "{page}");
        assert!(reply.header("cache-control").is_some(), "{page}");
    }
    let page = on.get("/playground", None).await;
    assert!(page
        .header("content-security-policy")
        .unwrap()
        .contains("default-src 'self'"));
    on.get("/docs/nothing.js", None)
        .await
        .assert_error(404, "NOT_FOUND");

    let Some(db) = TestDatabase::create(TestBackend::Sqlite).await else {
        return;
    };
    let off = spawn_app_with(db, |config| config.http.web = false).await;
    for page in [
        "/docs",
        "/playground",
        "/docs/swagger-ui.css",
        "/playground/playground.js",
    ] {
        off.get(page, None).await.assert_error(404, "NOT_FOUND");
    }
    // The API itself is unaffected.
    assert_eq!(off.get("/api/openapi.json", None).await.status, 200);
}
