//! `GET /summaries/unsubscribe?token=` shows one button in the guardian's language and changes
//! nothing (mail scanners follow links); `POST` applies it, from that button (the token in the
//! form) or as the one-click request of RFC 8058 (the token in the query, the body
//! `List-Unsubscribe=One-Click`).

use crate::app::{App, AppError};
use crate::domain::Locale;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use minijinja::Environment;
use serde::{Deserialize, Serialize};
use std::sync::OnceLock;

/// The token, wherever the request carries it.
#[derive(Debug, Default, Deserialize)]
pub(super) struct TokenField {
    token: Option<String>,
}

/// What a page says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Page {
    /// The question, with the button.
    Confirm,
    /// Done now.
    Done,
    /// Done before.
    AlreadyDone,
    /// No such link.
    Unknown,
    /// The database is away.
    Unavailable,
}

pub(super) async fn show(State(app): State<App>, Query(query): Query<TokenField>) -> Response {
    let token = query.token.unwrap_or_default();
    match app.unsubscribe_link(&token).await {
        Ok(link) if link.used => render(link.locale, Page::AlreadyDone, None),
        Ok(link) => render(link.locale, Page::Confirm, Some(&token)),
        Err(err) => failure(&err),
    }
}

pub(super) async fn apply(
    State(app): State<App>,
    Query(query): Query<TokenField>,
    form: Result<Form<TokenField>, axum::extract::rejection::FormRejection>,
) -> Response {
    let from_form = form.ok().and_then(|Form(f)| f.token);
    let token = query.token.or(from_form).unwrap_or_default();
    // The language (and whether it was used) before using it, for the page that follows.
    let link = match app.unsubscribe_link(&token).await {
        Ok(link) => link,
        Err(err) => return failure(&err),
    };
    if link.used {
        return render(link.locale, Page::AlreadyDone, None);
    }
    match app.unsubscribe(&token).await {
        Ok(_) => render(link.locale, Page::Done, None),
        // Used in between, by a second click or the mail provider's one-click request.
        Err(AppError::NotFound(_)) => render(link.locale, Page::AlreadyDone, None),
        Err(err) => failure(&err),
    }
}

/// The page of a link that cannot be shown: unknown (in both languages, since whose it is
/// is not known) or the database away.
fn failure(err: &AppError) -> Response {
    match err {
        AppError::NotFound(_) | AppError::Invalid(_) => render(Locale::En, Page::Unknown, None),
        other => {
            tracing::error!(error = %other, "the unsubscribe page could not be served");
            render(Locale::En, Page::Unavailable, None)
        }
    }
}

#[derive(Serialize)]
struct Context<'a> {
    lang: &'a str,
    title: &'a str,
    heading: &'a str,
    paragraphs: Vec<&'a str>,
    token: Option<&'a str>,
    button: &'a str,
}

fn render(locale: Locale, page: Page, token: Option<&str>) -> Response {
    let nl = locale == Locale::Nl;
    let pick = |en: &'static str, dutch: &'static str| if nl { dutch } else { en };
    let no_more = pick(
        "You will receive no more email summaries of your children's school work.",
        "U ontvangt geen e-mailoverzichten meer van het schoolwerk van uw kinderen.",
    );
    let (status, heading, paragraphs) = match page {
        Page::Confirm => (
            StatusCode::OK,
            pick("Stop email summaries?", "Geen e-mailoverzichten meer?"),
            vec![
                pick(
                    "You will no longer receive summaries of your children's missing work, upcoming work and class activity by email.",
                    "U ontvangt dan geen overzichten meer per e-mail van het ontbrekende werk, het komende werk en de klasactiviteit van uw kinderen.",
                ),
                pick(
                    "Your school can turn them on again for you.",
                    "Uw school kan ze weer voor u aanzetten.",
                ),
            ],
        ),
        Page::Done => (
            StatusCode::OK,
            pick("You are unsubscribed", "U bent afgemeld"),
            vec![no_more],
        ),
        Page::AlreadyDone => (
            StatusCode::OK,
            pick("You were already unsubscribed", "U was al afgemeld"),
            vec![no_more],
        ),
        Page::Unknown => (
            StatusCode::NOT_FOUND,
            "This link is not valid / Deze link is niet geldig",
            vec![
                "Check that you opened the whole link from the email.",
                "Controleer of u de hele link uit de e-mail hebt geopend.",
            ],
        ),
        Page::Unavailable => (
            StatusCode::SERVICE_UNAVAILABLE,
            "Please try again in a few minutes / Probeer het over een paar minuten opnieuw",
            Vec::new(),
        ),
    };
    let context = Context {
        lang: if nl { "nl" } else { "en" },
        title: pick("Email summaries", "E-mailoverzichten"),
        heading,
        paragraphs,
        token: if page == Page::Confirm { token } else { None },
        button: pick("Unsubscribe", "Afmelden"),
    };
    let body = match environment()
        .get_template("page.html")
        .and_then(|t| t.render(minijinja::value::Serde(&context)))
    {
        Ok(body) => body,
        Err(err) => {
            tracing::error!(error = %err, "the unsubscribe page did not render");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        // The token is in the URL: never cached, never sent on as a referrer.
        (header::CACHE_CONTROL, "no-store"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
        ),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

fn environment() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        // Part of the binary and rendered by the tests: a parse error is a build defect.
        if let Err(e) = env.add_template("page.html", include_str!("templates/page.html")) {
            panic!("the unsubscribe page template does not parse: {e}");
        }
        env
    })
}
