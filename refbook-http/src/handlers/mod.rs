//! Handlers, one module per part of the contract; [`handle`] picks one by route and method.

mod accounts;
mod books;
mod ops;
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
    }
}
