//! Where emails go: an SMTP server (STARTTLS or TLS, with credentials, via lettre), or by
//! default a folder of `.eml` files a newcomer can open. Both are keyed by the outbox row's
//! stable Message-ID, so a message resent after a crash is recognisable (and, in a folder,
//! simply overwritten).

use crate::domain::OutboxMessage;
use async_trait::async_trait;
use lettre::message::header::{ContentTransferEncoding, ContentType, HeaderName, HeaderValue};
use lettre::message::{Body, Mailbox, MultiPart, SinglePart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::path::PathBuf;

/// Why a send failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Worth retrying later (connection refused, 4xx).
    #[error("temporary: {0}")]
    Transient(String),
    /// Will not succeed as it is (5xx, an unusable address).
    #[error("permanent: {0}")]
    Permanent(String),
}

/// Delivers one message.
#[async_trait]
pub trait Transport: Send + Sync + std::fmt::Debug {
    /// Sends `message` from `from`.
    async fn send(&self, message: &OutboxMessage) -> Result<(), SendError>;
}

/// The RFC 5322 form of an outbox message, multipart text and HTML.
pub fn build(message: &OutboxMessage, from: &Mailbox) -> Result<Message, SendError> {
    let to: Mailbox = message
        .recipient
        .as_str()
        .parse()
        .map_err(|_| SendError::Permanent("unusable recipient address".into()))?;
    // The school's name on the service's own address: the address is what SPF and DKIM
    // vouch for, so only the display name changes.
    let from = match &message.from_name {
        Some(name) => Mailbox::new(Some(name.clone()), from.email.clone()),
        None => from.clone(),
    };
    let mut builder = Message::builder()
        .message_id(Some(format!("<{}@guardian-service>", message.message_id)))
        .from(from)
        .to(to)
        .subject(message.subject.clone());
    if let Some(office) = &message.reply_to {
        let office: Mailbox = office
            .as_str()
            .parse()
            .map_err(|_| SendError::Permanent("unusable Reply-To address".into()))?;
        builder = builder.reply_to(office);
    }
    if let Some(url) = &message.list_unsubscribe {
        // RFC 8058: the URL, and that a POST to it unsubscribes with one click.
        let header = |name: &'static str, value: String| {
            HeaderValue::new(HeaderName::new_from_ascii_str(name), value)
        };
        builder = builder
            .raw_header(header("List-Unsubscribe", format!("<{url}>")))
            .raw_header(header(
                "List-Unsubscribe-Post",
                "List-Unsubscribe=One-Click".to_owned(),
            ));
    }
    builder
        .multipart(
            MultiPart::alternative()
                .singlepart(part(ContentType::TEXT_PLAIN, &message.body_text)?)
                .singlepart(part(ContentType::TEXT_HTML, &message.body_html)?),
        )
        .map_err(|e| SendError::Permanent(format!("cannot build the message: {e}")))
}

/// One body part, always quoted-printable: the accept link is longer than a 7-bit line, and
/// left to itself lettre would pick quoted-printable or base64 depending on the random token.
fn part(kind: ContentType, body: &str) -> Result<SinglePart, SendError> {
    let body = Body::new_with_encoding(body.to_owned(), ContentTransferEncoding::QuotedPrintable)
        .map_err(|_| SendError::Permanent("cannot encode the body".into()))?;
    Ok(SinglePart::builder().header(kind).body(body))
}

/// Writes `<message_id>.eml` files into a folder, each with a `<message_id>.txt` beside it
/// holding the subject and the plain text as written, so that a person can copy a link.
#[derive(Debug, Clone)]
pub struct FolderTransport {
    dir: PathBuf,
    from: Mailbox,
}

impl FolderTransport {
    /// Writes into `dir` (created when needed).
    pub fn new(dir: PathBuf, from: Mailbox) -> Self {
        Self { dir, from }
    }
}

#[async_trait]
impl Transport for FolderTransport {
    async fn send(&self, message: &OutboxMessage) -> Result<(), SendError> {
        let eml = build(message, &self.from)?.formatted();
        let txt = format!(
            "To: {}\nSubject: {}\n\n{}\n",
            message.recipient, message.subject, message.body_text
        )
        .into_bytes();
        let dir = self.dir.clone();
        let id = message.message_id.clone();
        // Write then rename, so a reader never sees half a file.
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            std::fs::create_dir_all(&dir)?;
            for (ext, bytes) in [("txt", txt), ("eml", eml)] {
                let partial = dir.join(format!(".{id}.{ext}.partial"));
                std::fs::write(&partial, bytes)?;
                std::fs::rename(&partial, dir.join(format!("{id}.{ext}")))?;
            }
            Ok(())
        })
        .await
        .map_err(|e| SendError::Transient(e.to_string()))?
        .map_err(|e| SendError::Transient(format!("cannot write the message file: {e}")))
    }
}

/// Sends through an SMTP server.
#[derive(Debug, Clone)]
pub struct SmtpTransport {
    inner: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl SmtpTransport {
    /// From a URL such as `smtp://user:pass@host:587?tls=required` (see lettre's
    /// `from_url`: `smtps://` for implicit TLS, `tls=required|opportunistic` for STARTTLS).
    pub fn from_url(url: &str, from: Mailbox) -> Result<Self, String> {
        let inner = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| format!("bad GUARDIANS_SMTP_URL: {e}"))?
            .timeout(Some(std::time::Duration::from_secs(30)))
            .build();
        Ok(Self { inner, from })
    }
}

#[async_trait]
impl Transport for SmtpTransport {
    async fn send(&self, message: &OutboxMessage) -> Result<(), SendError> {
        let email = build(message, &self.from)?;
        match self.inner.send(email).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_permanent() => Err(SendError::Permanent(e.to_string())),
            Err(e) => Err(SendError::Transient(e.to_string())),
        }
    }
}
