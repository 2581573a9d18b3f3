//! `refbook-cli book guide ISBN`: the book's guide (深度解析) — built here first if it is
//! not finished (with a progress bar), then printed as far as the local reader has read.

use indicatif::{ProgressBar, ProgressStyle};
use refbook_core::guide::{GuideStatus, GuideView};
use refbook_core::{Error, Language, Refbook};

use crate::failure::Failure;
use crate::local_user::local_user;

/// Builds what is missing of the book's guide, then prints it (as JSON with `json`).
pub async fn show(
    refbook: &Refbook,
    isbn: &str,
    json: bool,
    language: Language,
) -> Result<(), Failure> {
    let fail = |e: Error| Failure::from_error(&e, language);
    let isbn = super::book::parse_isbn(isbn, language)?;
    let user = local_user(refbook).await?;
    let guides = refbook.guides();
    let bar = ProgressBar::new(0);
    if let Ok(style) = ProgressStyle::with_template("guide [{bar:30}] {pos}/{len} sections") {
        bar.set_style(style.progress_chars("=> "));
    }
    // Build here, or watch the worker that holds it (this process's own, or a server's).
    let guide = loop {
        guides.build_now(&|_, _, _| {}).await.map_err(fail)?;
        let Some(guide) = guides
            .for_reader(&isbn, Some(user.id))
            .await
            .map_err(fail)?
        else {
            bar.finish_and_clear();
            return Err(Failure::plain(format!("{isbn} has no text, so no guide"))
                .hint("add one: refbook-cli books text add --isbn ISBN FILE"));
        };
        bar.set_length(u64::try_from(guide.total).unwrap_or(u64::MAX));
        bar.set_position(u64::try_from(guide.done).unwrap_or(u64::MAX));
        if guide.status != GuideStatus::Building {
            break guide;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    bar.finish_and_clear();
    if json {
        let text = serde_json::to_string_pretty(&guide)
            .map_err(|e| Failure::plain(format!("cannot encode the guide: {e}")))?;
        println!("{text}");
        return Ok(());
    }
    print!("{}", render(&guide));
    if guide.status == GuideStatus::Off {
        return Err(Failure::plain("guides are off here".to_owned()).hint(
            "set REFBOOK_GUIDE=auto and configure a model (REFBOOK_LLM_API_KEY or the local model)",
        ));
    }
    Ok(())
}

fn render(guide: &GuideView) -> String {
    let mut out = String::new();
    if let Some(book) = &guide.book {
        out.push_str(&format!("{}\n\n", book.summary));
    }
    for section in &guide.sections {
        out.push_str(&format!(
            "#{} {}\n{}\n\n",
            section.index, section.title, section.summary
        ));
    }
    let state = match guide.status {
        GuideStatus::Building => "building",
        GuideStatus::Ready => "ready",
        GuideStatus::Failed => "failed",
        GuideStatus::Off => "off",
    };
    out.push_str(&format!(
        "({state}: {}/{} sections summarised{})\n",
        guide.done,
        guide.total,
        guide
            .error
            .as_deref()
            .map(|e| format!("; {e}"))
            .unwrap_or_default()
    ));
    out
}
