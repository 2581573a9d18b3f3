//! `refbook-cli`: Refbook in a terminal, driving `refbook-core` in process.
//!
//! Configuration is the server's (`REFBOOK_*` variables, `--config FILE`), except that the
//! database defaults to a SQLite file in the user's data folder.

mod commands;
mod download_bar;
mod failure;
mod local_user;
mod render;
mod setup;
mod terminal;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::failure::Failure;
use refbook_core::domain::ConversationId;

/// Talk with a book, look books up, manage the local catalogue.
#[derive(Parser, Debug)]
#[command(name = "refbook-cli", version, about)]
struct Cli {
    /// TOML configuration file (the server's keys).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// sqlite://PATH or postgres://… (default: refbook.db in your data folder).
    #[arg(long, global = true)]
    database_url: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Look a book up by ISBN (stored copy, then the configured sources); `book guide ISBN`:
    /// the book's guide (深度解析), built first if it is not finished, cut at your progress.
    Book {
        /// ISBN-10 or ISBN-13, in any common form (or `guide` then the ISBN).
        #[arg(value_name = "ISBN | guide ISBN", num_args = 1..=2, required = true)]
        isbn: Vec<String>,
        /// Print the API's JSON instead of a readable summary.
        #[arg(long)]
        json: bool,
    },
    /// Chat about a book in the terminal (history kept in the same store as the server).
    Chat {
        /// The book's ISBN.
        #[arg(long, required_unless_present = "conversation")]
        isbn: Option<String>,
        /// Persona: `librarian` (default), `author`, or a custom persona's id.
        #[arg(long)]
        persona: Option<String>,
        /// Continue this conversation (see `refbook-cli history`).
        #[arg(long)]
        conversation: Option<ConversationId>,
        /// How far you have read: the index of the last section read (see `books text
        /// list`), or `off` for the whole book. Kept for the book; answers use nothing past it.
        #[arg(long, value_name = "SECTION|off")]
        progress: Option<String>,
    },
    /// List your conversations.
    History,
    /// Print one conversation.
    Show {
        /// The conversation's id.
        id: ConversationId,
    },
    /// Manage the local catalogue.
    Books {
        #[command(subcommand)]
        command: BooksCommand,
    },
}

#[derive(Subcommand, Debug)]
enum BooksCommand {
    /// Load a CSV or JSON catalogue into the local catalogue (all rows or none).
    Import {
        /// The file: `.json` (an array of books) or CSV with a header row.
        file: PathBuf,
    },
    /// Books' own texts, which answers are grounded in (the library's: every reader's).
    Text {
        #[command(subcommand)]
        command: commands::texts::TextCommand,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => return Failure::plain(format!("cannot start: {err}")).report(),
    };
    match run(cli, &runtime) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => failure.report(),
    }
}

fn run(cli: Cli, runtime: &tokio::runtime::Runtime) -> Result<(), Failure> {
    let config = setup::config(cli.config.as_deref(), cli.database_url.as_deref())?;
    setup::logging(&config.cli);
    let language = setup::language(&config.core);
    setup::note_unused(&config, language);
    let refbook = runtime.block_on(setup::refbook(config.core))?;
    match cli.command {
        Command::Book { isbn, json } => match isbn.as_slice() {
            [isbn] => runtime.block_on(commands::book::show(&refbook, isbn, json, language)),
            [word, isbn] if word == "guide" => {
                runtime.block_on(commands::guide::show(&refbook, isbn, json, language))
            }
            _ => Err(Failure::plain(
                "expected `book ISBN` or `book guide ISBN`".to_owned(),
            )),
        },
        Command::Books {
            command: BooksCommand::Import { file },
        } => runtime.block_on(commands::book::import(&refbook, &file, language)),
        Command::Books {
            command: BooksCommand::Text { command },
        } => runtime.block_on(commands::texts::run(&refbook, command, language)),
        Command::Chat {
            isbn,
            persona,
            conversation,
            progress,
        } => commands::chat::run(
            &refbook,
            runtime,
            commands::chat::ChatArgs {
                isbn: isbn.unwrap_or_default(),
                persona,
                conversation,
                progress,
            },
            language,
        ),
        Command::History => runtime.block_on(commands::history::list(&refbook, language)),
        Command::Show { id } => runtime.block_on(commands::history::show(&refbook, id, language)),
    }
}
