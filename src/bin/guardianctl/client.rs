//! The connection to the server: one channel, every call carrying the operator's token.

use guardian_service::proto::{
    directory_service_client::DirectoryServiceClient,
    guardian_service_client::GuardianServiceClient, privacy_service_client::PrivacyServiceClient,
    settings_service_client::SettingsServiceClient, summary_service_client::SummaryServiceClient,
};
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::{Interceptor, interceptor::InterceptedService};
use tonic::transport::Channel;

/// Adds `authorization: Bearer <token>`.
#[derive(Clone)]
pub(crate) struct Bearer(MetadataValue<Ascii>);

impl Interceptor for Bearer {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        request
            .metadata_mut()
            .insert("authorization", self.0.clone());
        Ok(request)
    }
}

/// A channel with the token.
pub(crate) type Authed = InterceptedService<Channel, Bearer>;

/// Clients of the server.
#[derive(Clone)]
pub(crate) struct Client {
    channel: Authed,
}

impl Client {
    /// Connects to `server` with `token`.
    pub(crate) async fn connect(server: &str, token: &str) -> Result<Self, String> {
        let bearer = format!("Bearer {}", token.trim())
            .parse()
            .map_err(|_| "the token holds characters a header cannot".to_string())?;
        let channel = connect_channel(server).await?;
        Ok(Self {
            channel: InterceptedService::new(channel, Bearer(bearer)),
        })
    }

    /// GuardianService.
    pub(crate) fn guardians(&self) -> GuardianServiceClient<Authed> {
        GuardianServiceClient::new(self.channel.clone()).max_decoding_message_size(64 << 20)
    }

    /// SummaryService.
    pub(crate) fn summaries(&self) -> SummaryServiceClient<Authed> {
        SummaryServiceClient::new(self.channel.clone())
    }

    /// DirectoryService.
    pub(crate) fn directory(&self) -> DirectoryServiceClient<Authed> {
        DirectoryServiceClient::new(self.channel.clone()).max_decoding_message_size(64 << 20)
    }

    /// PrivacyService.
    pub(crate) fn privacy(&self) -> PrivacyServiceClient<Authed> {
        PrivacyServiceClient::new(self.channel.clone()).max_decoding_message_size(64 << 20)
    }

    /// SettingsService.
    pub(crate) fn settings(&self) -> SettingsServiceClient<Authed> {
        SettingsServiceClient::new(self.channel.clone())
    }
}

/// The server's URI from what an operator typed: `host:port` means plain HTTP/2 (h2c).
pub(crate) fn server_uri(raw: &str) -> Result<String, String> {
    let raw = raw.trim();
    match raw.split_once("://") {
        None => Ok(format!("http://{raw}")),
        Some(("http", _)) => Ok(raw.to_owned()),
        Some(("https", _)) => Err(format!(
            "{raw}: guardianctl speaks plain HTTP/2 only; reach a TLS endpoint through a \
             port-forward (e.g. kubectl port-forward) and use http://127.0.0.1:<port>"
        )),
        Some((scheme, _)) => Err(format!("{raw}: unknown scheme {scheme:?}; use host:port")),
    }
}

/// A channel to `server`, or what went wrong in words an operator can act on.
pub(crate) async fn connect_channel(server: &str) -> Result<Channel, String> {
    let uri = server_uri(server)?;
    let endpoint = Channel::from_shared(uri.clone())
        .map_err(|_| format!("{server} is not a server address; use host:port"))?
        .connect_timeout(std::time::Duration::from_secs(10));
    endpoint
        .connect()
        .await
        .map_err(|err| format!("cannot connect to {uri}: {}", connect_cause(&err)))
}

const TIMED_OUT: &str = "timed out: check the address, and any firewall in between";

/// The cause of a failed connection, named: refused, timed out, unknown host, or the innermost
/// error's own words.
fn connect_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut innermost = err;
    let mut source = Some(err);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind;
            match io.kind() {
                ErrorKind::ConnectionRefused => {
                    return "connection refused: is guardian-service running at that address?"
                        .into();
                }
                ErrorKind::TimedOut => return TIMED_OUT.into(),
                _ if io.to_string().contains("lookup address") => {
                    return "unknown host: check the name (DNS found no address)".into();
                }
                _ => {}
            }
        }
        innermost = e;
        source = e.source();
    }
    if innermost.to_string().contains("timed out") {
        return TIMED_OUT.into();
    }
    innermost.to_string()
}

/// A status as an operator reads it: code, reason, message.
pub(crate) fn describe(status: &tonic::Status) -> String {
    use tonic_types::StatusExt;
    let reason = status
        .get_details_error_info()
        .map(|i| i.reason)
        .unwrap_or_default();
    format!("{:?} {reason}: {}", status.code(), status.message())
}
