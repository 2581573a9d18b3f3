//! `refbook-cli chat --isbn …`: a conversation in the terminal. Interactive on a terminal
//! (prompt, spinner, dim reasoning, slash commands, Ctrl-C stops an answer); plain when
//! piped (each input line a question, each answer printed; a failed question is reported and
//! the rest still asked; exit 0 at EOF when every one was answered).

use std::io::BufRead;
use std::time::Duration;

use refbook_core::books::{Book, Isbn};
use refbook_core::chat::{Conversation, ReplyEvent, Source};
use refbook_core::{Error, Language, Refbook};
use rustyline::error::ReadlineError;
use tokio::runtime::Runtime;

use crate::failure::Failure;
use crate::local_user::local_user;
use crate::render;
use crate::terminal::{out, Style, SPINNER};
use refbook_core::domain::{ConversationId, PersonaId, ReadingMark, UserId};

/// What `chat` was asked for.
pub struct ChatArgs {
    /// The book.
    pub isbn: String,
    /// A persona key (`librarian`, `author`) or id.
    pub persona: Option<String>,
    /// A conversation to continue.
    pub conversation: Option<ConversationId>,
    /// How far the reader has read (`--progress`): a section index, or `off`.
    pub progress: Option<String>,
}

struct Session<'a> {
    refbook: &'a Refbook,
    runtime: &'a Runtime,
    user_id: UserId,
    book: Book,
    conversation: Conversation,
    style: Style,
    language: Language,
    /// The passages of the book's text the last answer was given.
    last_sources: std::cell::RefCell<Vec<Source>>,
}

/// Runs the chat until `/quit`, Ctrl-D or the end of piped input.
pub fn run(
    refbook: &Refbook,
    runtime: &Runtime,
    args: ChatArgs,
    language: Language,
) -> Result<(), Failure> {
    let style = Style::detect();
    let fail = |e: Error| Failure::from_error(&e, language);
    let (user_id, book, conversation) = runtime.block_on(async {
        let user = local_user(refbook).await?;
        let conversations = refbook.conversations();
        let conversation = match args.conversation {
            Some(id) => conversations
                .conversation(user.id, id)
                .await
                .map_err(fail)?,
            None => {
                let isbn = Isbn::parse(&args.isbn).map_err(|e| fail(e.into()))?;
                let persona = match &args.persona {
                    Some(p) => Some(resolve_persona(refbook, user.id, p).await?),
                    None => None,
                };
                conversations
                    .create_conversation(user.id, &isbn, None, persona)
                    .await
                    .map_err(fail)?
            }
        };
        let book = refbook
            .books()
            .get(&conversation.isbn)
            .await
            .map_err(fail)?;
        Ok::<_, Failure>((user.id, book, conversation))
    })?;
    let mut session = Session {
        refbook,
        runtime,
        user_id,
        book,
        conversation,
        style,
        language,
        last_sources: std::cell::RefCell::default(),
    };
    if let Some(wanted) = &args.progress {
        session.progress(wanted)?;
    }
    if style.interactive {
        session.interactive()
    } else {
        session.piped()
    }
}

async fn resolve_persona(
    refbook: &Refbook,
    user_id: UserId,
    wanted: &str,
) -> Result<PersonaId, Failure> {
    let personas = refbook
        .conversations()
        .personas(user_id)
        .await
        .map_err(|e| Failure::plain(e.message().en.to_string()))?;
    personas
        .iter()
        .find(|p| p.key.as_deref() == Some(wanted) || p.id.to_string() == wanted)
        .map(|p| p.id)
        .ok_or_else(|| {
            let known: Vec<String> = personas
                .iter()
                .map(|p| p.key.clone().unwrap_or_else(|| p.id.to_string()))
                .collect();
            Failure::plain(format!("no persona `{wanted}`"))
                .hint(format!("choose one of: {}", known.join(", ")))
        })
}

impl Session<'_> {
    /// Answers every line it can: a failed question is reported on stderr and the next
    /// one asked; the run fails at the end if any did.
    fn piped(&mut self) -> Result<(), Failure> {
        let (mut asked, mut failed) = (0, 0);
        for line in std::io::stdin().lock().lines() {
            let line = line.map_err(|e| Failure::plain(format!("cannot read input: {e}")))?;
            let question = line.trim();
            if question.is_empty() {
                continue;
            }
            asked += 1;
            if let Err(failure) = self.ask(question) {
                failure.print();
                failed += 1;
            }
        }
        if failed > 0 {
            return Err(Failure::plain(format!(
                "{failed} of {asked} questions were not answered"
            )));
        }
        Ok(())
    }

    fn interactive(&mut self) -> Result<(), Failure> {
        out(&format!("{}\n", self.header()));
        out(&self
            .style
            .dim("/help 查看命令 · Ctrl-C 停止回答 · Ctrl-D 退出\n\n"));
        let mut editor = rustyline::DefaultEditor::new()
            .map_err(|e| Failure::plain(format!("cannot open the terminal: {e}")))?;
        let history = history_file();
        if let Some(path) = &history {
            let _ = editor.load_history(path);
        }
        loop {
            match editor.readline("你> ") {
                Ok(line) => {
                    let line = line.trim().to_owned();
                    if line.is_empty() {
                        continue;
                    }
                    let _ = editor.add_history_entry(line.as_str());
                    if line.starts_with('/') {
                        if !self.command(&line)? {
                            break;
                        }
                        continue;
                    }
                    if let Err(failure) = self.ask(&line) {
                        // One failed answer does not end the session.
                        failure.print();
                    }
                }
                Err(ReadlineError::Interrupted) => continue,
                Err(ReadlineError::Eof) => break,
                Err(err) => return Err(Failure::plain(format!("terminal error: {err}"))),
            }
        }
        if let Some(path) = &history {
            let _ = editor.save_history(path);
        }
        Ok(())
    }

    fn header(&self) -> String {
        let book = &self.book;
        let mut line = self.style.bold(&format!("《{}》", book.title));
        if !book.authors.is_empty() {
            line.push_str(&format!(" {}", book.author_line()));
        }
        line.push_str(&self.style.dim(&format!(
            "  ISBN {} · 对话 #{}",
            book.isbn, self.conversation.id
        )));
        line
    }

    /// Handles a slash command; `false` to leave.
    fn command(&mut self, line: &str) -> Result<bool, Failure> {
        let mut words = line.split_whitespace();
        let name = words.next().unwrap_or("");
        let rest: Vec<&str> = words.collect();
        let conversations = self.refbook.conversations();
        let fail = |e: Error| Failure::from_error(&e, self.language);
        match name {
            "/quit" | "/exit" | "/q" => return Ok(false),
            "/help" => out(HELP),
            "/book" => out(&render::book(&self.book, self.language)),
            "/stop" => out("没有正在生成的回答（回答时按 Ctrl-C 停止）。\n"),
            "/progress" => self.progress(rest.first().copied().unwrap_or(""))?,
            "/sources" => {
                let sources = self.last_sources.borrow();
                if sources.is_empty() {
                    out("上一个回答没有引用书中的段落（这本书没有原文，或还没有提问）。\n");
                } else {
                    out(&render::sources(&sources.iter().collect::<Vec<_>>()));
                }
            }
            "/new" => {
                let isbn = self.book.isbn.clone();
                let persona = self.conversation.persona_id;
                self.conversation = self
                    .runtime
                    .block_on(conversations.create_conversation(self.user_id, &isbn, None, persona))
                    .map_err(fail)?;
                out(&format!("新对话 #{}\n", self.conversation.id));
            }
            "/history" => {
                let (_, messages) = self
                    .runtime
                    .block_on(
                        conversations
                            .conversation_with_messages(self.user_id, self.conversation.id),
                    )
                    .map_err(fail)?;
                out(&render::messages(&messages, self.style));
            }
            "/persona" => match rest.first() {
                None => {
                    let personas = self
                        .runtime
                        .block_on(conversations.personas(self.user_id))
                        .map_err(fail)?;
                    for p in personas {
                        let current = self.conversation.persona_id == Some(p.id)
                            || (self.conversation.persona_id.is_none()
                                && p.key.as_deref() == Some("librarian"));
                        out(&format!(
                            "{} {:>4}  {:<10} {}\n",
                            if current { "*" } else { " " },
                            p.id,
                            p.key.unwrap_or_default(),
                            p.name
                        ));
                    }
                }
                Some(wanted) => {
                    let id = self.runtime.block_on(resolve_persona(
                        self.refbook,
                        self.user_id,
                        wanted,
                    ))?;
                    self.conversation = self
                        .runtime
                        .block_on(conversations.update_conversation(
                            self.user_id,
                            self.conversation.id,
                            None,
                            Some(Some(id)),
                        ))
                        .map_err(fail)?;
                    out("已切换角色。\n");
                }
            },
            other => out(&format!("未知命令 {other}，输入 /help 查看命令。\n")),
        }
        Ok(true)
    }

    /// `/progress`: shows how far the reader has read (no argument), sets it (a section
    /// index) or clears it (`off`); said on stderr so piped answers stay clean.
    fn progress(&self, wanted: &str) -> Result<(), Failure> {
        let texts = self.refbook.books().texts();
        let isbn = &self.book.isbn;
        let fail = |e: Error| Failure::from_error(&e, self.language);
        let progress = match wanted {
            "" => self
                .runtime
                .block_on(texts.progress(isbn, self.user_id))
                .map_err(fail)?,
            "off" => {
                self.runtime
                    .block_on(texts.clear_progress(isbn, self.user_id))
                    .map_err(fail)?;
                None
            }
            number => {
                let section = number.parse::<u32>().map_err(|_| {
                    Failure::plain(format!("`{number}` is not a section index"))
                        .hint("give the index of the last section read (see `refbook-cli books text list`), or `off`")
                })?;
                Some(
                    self.runtime
                        .block_on(texts.set_progress(
                            isbn,
                            self.user_id,
                            ReadingMark::Section(section),
                        ))
                        .map_err(fail)?,
                )
            }
        };
        eprint!("{}", render::progress(progress.as_ref(), self.language));
        Ok(())
    }

    /// Asks and prints the answer as it streams.
    fn ask(&self, question: &str) -> Result<(), Failure> {
        let style = self.style;
        let language = self.language;
        let answering = self.refbook.answering();
        self.runtime.block_on(async {
            let started = answering
                .ask(self.user_id, self.conversation.id, question)
                .await
                .map_err(|e| Failure::from_error(&e, language))?;
            let reply = started.reply;
            let mut listener = reply.listen(0);
            let mut spinner = tokio::time::interval(Duration::from_millis(90));
            let (mut frame, mut waiting, mut in_reasoning) = (0usize, style.interactive, false);
            let mut failed = None;
            let (mut sources, mut citations): (Vec<Source>, Vec<u32>) = Default::default();
            let ctrl_c = tokio::signal::ctrl_c();
            tokio::pin!(ctrl_c);
            let mut stopping = false;
            loop {
                tokio::select! {
                    next = listener.next() => {
                        let Some(events) = next else { break };
                        for (_, event) in events {
                            let text = match event {
                                ReplyEvent::Reasoning(text) => {
                                    if !style.interactive {
                                        continue; // piped output is the answer only
                                    }
                                    let lead = if in_reasoning { "" } else { in_reasoning = true; "\n" };
                                    format!("{lead}{}", style.dim(&text))
                                }
                                ReplyEvent::Content(text) => {
                                    let lead = if in_reasoning { in_reasoning = false; "\n\n" } else { "" };
                                    format!("{lead}{text}")
                                }
                                ReplyEvent::Error { message, .. } => {
                                    failed = Some(message);
                                    continue;
                                }
                                ReplyEvent::Sources(given) => {
                                    sources = given.to_vec();
                                    continue;
                                }
                                ReplyEvent::Finish { citations: Some(cited), .. } => {
                                    citations = cited.to_vec();
                                    continue;
                                }
                                ReplyEvent::Start | ReplyEvent::Finish { .. } => continue,
                            };
                            if waiting {
                                out("\r\x1b[K");
                                waiting = false;
                            }
                            out(&text);
                        }
                    }
                    _ = spinner.tick(), if waiting => {
                        out(&format!("\r{} ", style.dim(SPINNER[frame % SPINNER.len()])));
                        frame += 1;
                    }
                    _ = &mut ctrl_c, if !stopping => {
                        stopping = true;
                        reply.stop();
                    }
                }
            }
            if waiting {
                out("\r\x1b[K");
            }
            out("\n");
            let cited: Vec<&Source> = sources.iter().filter(|s| citations.contains(&s.n)).collect();
            if !cited.is_empty() {
                out(&style.dim(&render::sources(&cited)));
            }
            *self.last_sources.borrow_mut() = sources;
            if stopping {
                out(&style.dim("（已停止，已保存的部分回答保留在对话中）\n"));
            }
            if style.interactive {
                out("\n");
            }
            match failed {
                Some(message) => Err(Failure::plain(message.to_string()).hint("the partial answer is kept; try again or check REFBOOK_LLM_BASE_URL")),
                None => Ok(()),
            }
        })
    }
}

const HELP: &str = "\
/help             这份说明
/new              就这本书开始新对话
/book             显示书目信息
/sources          上一个回答依据的书中段落
/progress [N|off] 显示、设置（读完的最后一个部分的编号）或清除阅读进度：回答不会透露之后的内容
/history          显示本对话的消息
/persona [KEY|ID] 列出或切换角色（librarian、author 或自定义角色的编号）
/stop 或 Ctrl-C   停止正在生成的回答（保留已生成的部分）
/quit 或 Ctrl-D   退出
";

/// rustyline's history file in the user's data folder.
fn history_file() -> Option<std::path::PathBuf> {
    let dir = dirs::data_dir()?.join("refbook");
    std::fs::create_dir_all(&dir).ok()?;
    Some(dir.join("cli_history.txt"))
}
