//! Handlers, one module per part of the contract; [`handle`] picks one by route and method.

mod accounts;
mod api_keys;
mod books;
mod chat;
mod collections;
mod conversations;
mod openai;
mod ops;
mod personas;
mod users;

use http::{Method, Response};

use crate::api_error::ApiError;
use crate::body::Body;
use crate::ctx::Ctx;
use crate::routes::Route;

/// Runs the handler of `route` for the request's method (already checked against the table).
pub async fn handle(route: Route, ctx: Ctx) -> Result<Response<Body>, ApiError> {
    let method = ctx.parts.method.clone();
    match route {
        Route::Healthz => ops::healthz(),
        Route::Readyz => ops::readyz(ctx).await,
        Route::Metrics => ops::metrics(ctx),
        Route::OpenApi => ops::openapi(&ctx),
        Route::Register => accounts::register(ctx).await,
        Route::Login => accounts::login(ctx).await,
        Route::Token => accounts::token(ctx).await,
        Route::WeChatLogin => accounts::login_wechat(ctx).await,
        Route::Refresh => accounts::refresh(ctx).await,
        Route::Logout => accounts::logout(ctx).await,
        Route::Me => accounts::me(ctx),
        Route::Profile if method == Method::GET => users::profile(ctx).await,
        Route::Profile => users::update_profile(ctx).await,
        Route::Password => users::change_password(ctx).await,
        Route::DeleteAccount => users::delete_account(ctx).await,
        Route::PublicProfile => users::public_profile(ctx).await,
        Route::Books => books::search(ctx).await,
        Route::Book => books::book(ctx).await,
        Route::BookCover => books::cover(ctx).await,
        Route::Personas if method == Method::GET => personas::list(ctx).await,
        Route::Personas => personas::create(ctx).await,
        Route::Persona if method == Method::GET => personas::get(ctx).await,
        Route::Persona => personas::delete(ctx).await,
        Route::Conversations if method == Method::GET => conversations::list(ctx).await,
        Route::History => conversations::list(ctx).await,
        Route::Conversations => conversations::create(ctx).await,
        Route::Conversation if method == Method::GET => conversations::get(ctx).await,
        Route::Conversation if method == Method::PATCH => conversations::update(ctx).await,
        Route::Conversation | Route::HistoryItem => conversations::delete(ctx).await,
        Route::Message => conversations::delete_message(ctx).await,
        Route::Messages => chat::post_message(ctx).await,
        Route::Regenerate => chat::regenerate(ctx).await,
        Route::Stop => chat::stop(ctx).await,
        Route::Stream => chat::stream(ctx).await,
        Route::ReplyPoll => chat::poll(ctx).await,
        Route::ChatStream => chat::stateless(ctx).await,
        Route::Collections if method == Method::GET => collections::list(ctx).await,
        Route::Collections => collections::add(ctx).await,
        Route::CollectionItem => collections::remove(ctx).await,
        Route::ApiKeys if method == Method::GET => api_keys::list(ctx).await,
        Route::ApiKeys => api_keys::create(ctx).await,
        Route::ApiKey => api_keys::revoke(ctx).await,
        Route::OpenAiModels => openai::models(ctx).await,
        Route::OpenAiModel => openai::model(ctx).await,
        Route::OpenAiChatCompletions => openai::chat_completions(ctx).await,
        Route::DocsPage => crate::web::docs_page(&ctx),
        Route::DocsAsset => crate::web::docs_asset(&ctx, ctx.params.get("file")),
        Route::Playground => crate::web::playground_page(&ctx),
        Route::PlaygroundAsset => crate::web::playground_asset(&ctx, ctx.params.get("file")),
    }
}
