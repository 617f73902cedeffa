//! The connection to the server: one channel, every call carrying the operator's token.

use guardian_service::proto::{
    guardian_service_client::GuardianServiceClient, settings_service_client::SettingsServiceClient,
};
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::{Interceptor, interceptor::InterceptedService};
use tonic::transport::Channel;

/// Adds `authorization: Bearer <token>`.
#[derive(Clone)]
pub(crate) struct Bearer(Option<MetadataValue<Ascii>>);

impl Interceptor for Bearer {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
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
    pub(crate) async fn connect(server: &str, token: Option<&str>) -> Result<Self, String> {
        let channel = Channel::from_shared(server.to_owned())
            .map_err(|e| format!("bad server address {server}: {e}"))?
            .connect()
            .await
            .map_err(|e| format!("cannot connect to {server}: {e}"))?;
        let bearer = match token {
            Some(t) => Some(
                format!("Bearer {}", t.trim())
                    .parse()
                    .map_err(|_| "the token holds characters a header cannot".to_string())?,
            ),
            None => None,
        };
        Ok(Self {
            channel: InterceptedService::new(channel, Bearer(bearer)),
        })
    }

    /// GuardianService.
    pub(crate) fn guardians(&self) -> GuardianServiceClient<Authed> {
        GuardianServiceClient::new(self.channel.clone()).max_decoding_message_size(64 << 20)
    }

    /// SettingsService.
    pub(crate) fn settings(&self) -> SettingsServiceClient<Authed> {
        SettingsServiceClient::new(self.channel.clone())
    }
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
