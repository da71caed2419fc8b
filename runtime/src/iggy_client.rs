//! Every use of the `iggy` client crate, in one place, so that moving to
//! another Iggy release is a change here and nowhere else.
//!
//! The crate is pinned to `=0.11.0-edge.4` (with `iggy_common` and
//! `iggy_binary_protocol` of the same version): the protocol of the newest
//! Iggy server that can be built from source today (`0.9.0-edge.5`). The
//! stable `iggy 0.11.0` does not talk to that server.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;
use iggy::prelude::{
    Client, Consumer, ConsumerGroupClient, ConsumerOffsetClient, HeaderKey, HeaderValue,
    Identifier, IggyClient, IggyError, IggyMessage, IggyTimestamp, MessageClient, Partitioning,
    PollingStrategy, StreamClient, SystemClient, TopicClient, TopicCreateOptions,
};

use crate::dlq::{DlqTransport, TransportError};

/// The largest message payload an Iggy server accepts.
pub const MAX_PAYLOAD_SIZE: usize = iggy::prelude::MAX_PAYLOAD_SIZE as usize;

/// A failure talking to Iggy, with what the runtime was doing.
#[derive(Debug, thiserror::Error)]
#[error("{context}: {source}")]
pub struct IggyClientError {
    context: String,
    #[source]
    source: IggyError,
}

/// What kind of failure an [`IggyClientError`] is, for callers that react
/// to each differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum IggyFailureKind {
    /// The server cannot be reached, or the connection was lost.
    Unreachable,
    /// The server refused the credentials, or the user may not do this.
    Unauthenticated,
    /// The stream, topic or partition does not exist.
    NotFound,
    /// Anything else the client or the server reported.
    Other,
}

impl IggyClientError {
    /// What kind of failure this is.
    pub fn kind(&self) -> IggyFailureKind {
        match self.source {
            IggyError::CannotEstablishConnection
            | IggyError::Disconnected
            | IggyError::NotConnected
            | IggyError::ConnectionClosed
            | IggyError::TcpError
            | IggyError::StaleClient
            | IggyError::EmptyResponse
            | IggyError::ClientShutdown => IggyFailureKind::Unreachable,
            IggyError::InvalidCredentials
            | IggyError::Unauthenticated
            | IggyError::Unauthorized => IggyFailureKind::Unauthenticated,
            IggyError::StreamIdNotFound(_)
            | IggyError::StreamNameNotFound(_)
            | IggyError::TopicIdNotFound(..)
            | IggyError::TopicNameNotFound(..)
            | IggyError::PartitionNotFound(..) => IggyFailureKind::NotFound,
            _ => IggyFailureKind::Other,
        }
    }

    /// Partition `partition_id` is not one of the `partitions` of
    /// `stream`/`topic` (a [`NotFound`](IggyFailureKind::NotFound) failure).
    pub fn partition_not_found(
        stream: &str,
        topic: &str,
        partition_id: u32,
        partitions: u32,
    ) -> Self {
        let id = |name: &str| {
            Identifier::named(name).unwrap_or_else(|_| Identifier::numeric(1).expect("1 is valid"))
        };
        IggyClientError {
            context: format!(
                "`{stream}/{topic}` has no partition {partition_id} (its partitions are 0 to {})",
                partitions.saturating_sub(1)
            ),
            source: IggyError::PartitionNotFound(partition_id as usize, id(topic), id(stream)),
        }
    }

    fn new(context: impl Into<String>) -> impl FnOnce(IggyError) -> Self {
        let context = context.into();
        move |source| IggyClientError { context, source }
    }
}

/// How to reach and log in to an Iggy server.
#[derive(Clone, Default)]
pub struct ConnectionSettings {
    /// `host:port` of the server's TCP endpoint.
    pub address: String,
    /// User name (with `password`), when no token is given.
    pub username: String,
    /// Password.
    pub password: String,
    /// A personal access token, instead of user name and password.
    pub token: String,
    /// Use TLS.
    pub tls: bool,
    /// CA certificate file for TLS.
    pub tls_ca_file: String,
    /// Server name to verify for TLS.
    pub tls_domain: String,
}

impl fmt::Debug for ConnectionSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionSettings")
            .field("address", &self.address)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field(
                "token",
                &if self.token.is_empty() {
                    ""
                } else {
                    "<redacted>"
                },
            )
            .field("tls", &self.tls)
            .finish()
    }
}

impl ConnectionSettings {
    /// Settings from a connection string `iggy://user:password@host:port`
    /// (or `iggy://token@host:port`, with `?tls=true&tls_ca_file=..`).
    ///
    /// # Errors
    ///
    /// When the string is not of that form.
    pub fn from_connection_string(s: &str) -> Result<Self, String> {
        let rest = s
            .strip_prefix("iggy://")
            .ok_or_else(|| "an Iggy connection string starts with iggy://".to_owned())?;
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (auth, address) = rest
            .rsplit_once('@')
            .ok_or_else(|| "expected iggy://user:password@host:port".to_owned())?;
        let mut settings = ConnectionSettings {
            address: address.to_owned(),
            ..Default::default()
        };
        match auth.split_once(':') {
            Some((user, password)) => {
                settings.username = user.to_owned();
                settings.password = password.to_owned();
            }
            None => settings.token = auth.to_owned(),
        }
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("tls", v)) => settings.tls = v == "true",
                Some(("tls_ca_file", v)) => settings.tls_ca_file = v.to_owned(),
                Some(("tls_domain", v)) => settings.tls_domain = v.to_owned(),
                _ => return Err(format!("unknown connection option `{pair}`")),
            }
        }
        if settings.address.is_empty() {
            return Err("the connection string has no host:port".into());
        }
        Ok(settings)
    }

    fn connection_string(&self, reconnect: bool) -> String {
        let auth = if self.token.is_empty() {
            format!("{}:{}", self.username, self.password)
        } else {
            self.token.clone()
        };
        let mut options = Vec::new();
        if self.tls {
            options.push("tls=true".to_owned());
            if !self.tls_ca_file.is_empty() {
                options.push(format!("tls_ca_file={}", self.tls_ca_file));
            }
            if !self.tls_domain.is_empty() {
                options.push(format!("tls_domain={}", self.tls_domain));
            }
        }
        if !reconnect {
            options.push("reconnection_retries=0".to_owned());
        }
        let mut s = format!("iggy://{auth}@{}", self.address);
        if !options.is_empty() {
            s.push('?');
            s.push_str(&options.join("&"));
        }
        s
    }
}

/// What [`IggyConnection::join_group`] did.
#[derive(Debug)]
#[must_use = "a repaired group is worth a log line"]
pub enum GroupJoin {
    /// Joined; the group has no stale members.
    Joined,
    /// Joined after recreating the group, which had stale members.
    Repaired(GroupRepair),
    /// Joined, but the group could not be checked for stale members
    /// (usually: no permission to list the server's clients).
    NotChecked(IggyClientError),
}

impl GroupJoin {
    /// Reports what the join found for `connector`: a repaired group as a
    /// warning and in `metrics`' `group_repairs`, one that could not be
    /// checked as a debug line.
    pub fn report(
        &self,
        connector: &str,
        stream: &str,
        topic: &str,
        group: &str,
        metrics: &crate::metrics::ConnectorMetrics,
    ) {
        match self {
            GroupJoin::Joined => {}
            GroupJoin::Repaired(repair) => {
                crate::metrics::ConnectorMetrics::add(&metrics.group_repairs, 1);
                tracing::warn!(
                connector,
                group,
                stream,
                topic,
                stale_members = repair.stale_members,
                restored_offsets = ?repair.restored_offsets,
                    "the consumer group kept members of sessions that no longer exist (left \
                     over from a server restart) and would never be given their partitions \
                     back; recreated it and stored its committed offsets again"
                );
            }
            GroupJoin::NotChecked(error) => tracing::debug!(
                connector,
                group,
                %error,
                "joined the consumer group without checking it for stale members"
            ),
        }
    }
}

/// A consumer group recreated by [`IggyConnection::join_group`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRepair {
    /// Members the server kept for sessions that no longer exist.
    pub stale_members: usize,
    /// The committed offsets stored again, as (partition, offset).
    pub restored_offsets: Vec<(u32, u64)>,
}

/// A member of a consumer group, as the server sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMember {
    /// The server's id of the member (its client session).
    pub id: u32,
    /// The partitions assigned to it.
    pub partitions: Vec<u32>,
}

/// One message polled from a topic, in the shape the plugin ABI needs.
#[derive(Debug, Clone)]
pub struct PolledMessage {
    /// The Iggy message id.
    pub id: u128,
    /// Offset in its partition.
    pub offset: u64,
    /// Iggy's checksum.
    pub checksum: u64,
    /// Server timestamp, microseconds.
    pub timestamp: u64,
    /// Producer timestamp, microseconds.
    pub origin_timestamp: u64,
    /// The user headers, or why they could not be decoded.
    pub headers: Result<Option<Headers>, String>,
    /// The payload.
    pub payload: Bytes,
}

/// Decoded Iggy user headers.
#[derive(Debug, Clone)]
pub struct Headers(BTreeMap<HeaderKey, HeaderValue>);

impl Headers {
    /// The headers in the plugin ABI's encoding: postcard of the map.
    ///
    /// # Errors
    ///
    /// When postcard cannot encode them.
    pub fn to_abi_bytes(&self) -> Result<Vec<u8>, String> {
        postcard::to_allocvec(&self.0).map_err(|e| e.to_string())
    }

    /// Decodes headers from the plugin ABI's encoding.
    ///
    /// # Errors
    ///
    /// When the bytes are not postcard of a header map.
    pub fn from_abi_bytes(bytes: &[u8]) -> Result<Self, String> {
        postcard::from_bytes(bytes)
            .map(Headers)
            .map_err(|e| e.to_string())
    }

    /// Headers from (key kind code, key bytes, value kind code, value bytes).
    ///
    /// # Errors
    ///
    /// When a kind code is unknown or a value does not fit its kind.
    pub fn from_raw_parts(parts: &[(u8, Bytes, u8, Bytes)]) -> Result<Self, String> {
        fn field<T>(kind: u8, value: &Bytes) -> Result<iggy_common::HeaderField<T>, String> {
            iggy::prelude::HeaderKind::from_code(kind)
                .and_then(|kind| iggy_common::HeaderField::from_raw(kind, value))
                .map_err(|e| e.to_string())
        }
        parts
            .iter()
            .map(|(kk, k, vk, v)| Ok((field::<iggy_common::KeyMarker>(*kk, k)?, field(*vk, v)?)))
            .collect::<Result<BTreeMap<_, _>, String>>()
            .map(Headers)
    }

    /// The headers the demo puts on its messages: a string and a `uint64`.
    pub fn demo_headers() -> Self {
        let mut map = BTreeMap::new();
        map.insert(
            HeaderKey::try_from("tenant").expect("a short string is a valid key"),
            HeaderValue::try_from("acme").expect("a short string is a valid value"),
        );
        map.insert(
            HeaderKey::try_from("schema_version").expect("a short string is a valid key"),
            HeaderValue::from(3u64),
        );
        Headers(map)
    }

    /// Each header as (key kind code, key bytes, value kind code, value bytes).
    pub fn raw_parts(&self) -> Vec<(u8, Bytes, u8, Bytes)> {
        self.0
            .iter()
            .map(|(k, v)| (k.kind().as_code(), k.value(), v.kind().as_code(), v.value()))
            .collect()
    }
}

/// What one poll returned.
#[derive(Debug, Clone)]
pub struct Polled {
    /// The partition the messages came from.
    pub partition_id: u32,
    /// The partition's current (last) offset.
    pub current_offset: u64,
    /// The messages, in offset order.
    pub messages: Vec<PolledMessage>,
}

/// What the runtime knows of a topic.
#[derive(Debug, Clone, Copy)]
pub struct TopicInfo {
    /// Numeric stream id.
    pub stream_id: u32,
    /// Numeric topic id.
    pub topic_id: u32,
    /// Partitions.
    pub partitions: u32,
}

/// A message to produce.
#[derive(Debug, Clone)]
pub struct OutgoingMessage {
    /// Message id; 0 lets the server choose.
    pub id: Option<u128>,
    /// Payload.
    pub payload: Bytes,
    /// User headers, in the plugin ABI's encoding, if any.
    pub headers: Option<Headers>,
}

/// A connected, logged-in Iggy client.
pub struct IggyConnection {
    client: IggyClient,
    address: String,
}

impl fmt::Debug for IggyConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IggyConnection({})", self.address)
    }
}

fn ident(name: &str) -> Result<Identifier, IggyClientError> {
    Identifier::named(name).map_err(IggyClientError::new(format!("invalid name `{name}`")))
}

impl IggyConnection {
    /// Connects and logs in.
    ///
    /// # Errors
    ///
    /// When the server cannot be reached or refuses the credentials.
    pub async fn connect(settings: &ConnectionSettings) -> Result<Self, IggyClientError> {
        Self::connect_with(settings, true).await
    }

    /// Connects and logs in, and fails at once, instead of retrying until
    /// the server is back, when the server cannot be reached now or later.
    /// What the DLQ producer needs: the client's default reconnects forever,
    /// so a send during an outage would hang instead of failing over to the
    /// spool.
    ///
    /// # Errors
    ///
    /// When the server cannot be reached or refuses the credentials.
    pub async fn connect_without_retries(
        settings: &ConnectionSettings,
    ) -> Result<Self, IggyClientError> {
        Self::connect_with(settings, false).await
    }

    async fn connect_with(
        settings: &ConnectionSettings,
        reconnect: bool,
    ) -> Result<Self, IggyClientError> {
        let context = format!("cannot connect to Iggy at {}", settings.address);
        let client =
            IggyClient::builder_from_connection_string(&settings.connection_string(reconnect))
                .and_then(|b| b.build())
                .map_err(IggyClientError::new(context.clone()))?;
        client
            .connect()
            .await
            .map_err(IggyClientError::new(context))?;
        Ok(IggyConnection {
            client,
            address: settings.address.clone(),
        })
    }

    /// Connects and logs in like [`connect`](Self::connect), but tries to
    /// reach the server at most `1 + retries` times, a second apart, and
    /// reconnects as often after a lost connection, instead of forever.
    /// For interactive tools, where an unreachable server should be an
    /// error soon.
    ///
    /// # Errors
    ///
    /// As [`connect`](Self::connect).
    pub async fn connect_with_retries(
        settings: &ConnectionSettings,
        retries: u32,
    ) -> Result<Self, IggyClientError> {
        let context = format!("cannot connect to Iggy at {}", settings.address);
        let mut connection_string = settings.connection_string(true);
        connection_string.push(if settings.tls { '&' } else { '?' });
        connection_string.push_str(&format!("reconnection_retries={retries}"));
        let client = IggyClient::builder_from_connection_string(&connection_string)
            .and_then(|b| b.build())
            .map_err(IggyClientError::new(context.clone()))?;
        client
            .connect()
            .await
            .map_err(IggyClientError::new(context))?;
        Ok(IggyConnection {
            client,
            address: settings.address.clone(),
        })
    }

    /// The server address.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Looks up `stream`/`topic`; creates what is missing when `create` is
    /// set, the topic with `partitions` partitions.
    ///
    /// # Errors
    ///
    /// When a part is missing and `create` is not set, or the server fails.
    pub async fn ensure_topic(
        &self,
        stream: &str,
        topic: &str,
        partitions: u32,
        create: bool,
    ) -> Result<TopicInfo, IggyClientError> {
        let stream_id = ident(stream)?;
        let stream_details =
            self.client
                .get_stream(&stream_id)
                .await
                .map_err(IggyClientError::new(format!(
                    "cannot look up stream `{stream}`"
                )))?;
        let numeric_stream = match stream_details {
            Some(details) => details.id,
            None if create => {
                self.client
                    .create_stream(stream)
                    .await
                    .map_err(IggyClientError::new(format!(
                        "cannot create stream `{stream}`"
                    )))?
                    .id
            }
            None => {
                return Err(IggyClientError {
                    context: format!("stream `{stream}` does not exist (and creating it is off)"),
                    source: IggyError::StreamNameNotFound(stream.to_owned()),
                });
            }
        };
        let topic_id = ident(topic)?;
        let topic_details =
            self.client
                .get_topic(&stream_id, &topic_id)
                .await
                .map_err(IggyClientError::new(format!(
                    "cannot look up topic `{stream}/{topic}`"
                )))?;
        let (numeric_topic, partition_count) = match topic_details {
            Some(details) => (details.id, details.partitions_count),
            None if create => {
                let options = TopicCreateOptions {
                    partitions_count: Some(partitions.max(1)),
                    ..Default::default()
                };
                let details = self
                    .client
                    .create_topic(&stream_id, topic, &options)
                    .await
                    .map_err(IggyClientError::new(format!(
                        "cannot create topic `{stream}/{topic}`"
                    )))?;
                (details.id, details.partitions_count)
            }
            None => {
                return Err(IggyClientError {
                    context: format!(
                        "topic `{stream}/{topic}` does not exist (and creating it is off)"
                    ),
                    source: IggyError::TopicNameNotFound(topic.to_owned(), stream.to_owned()),
                });
            }
        };
        Ok(TopicInfo {
            stream_id: numeric_stream,
            topic_id: numeric_topic,
            partitions: partition_count,
        })
    }

    /// Produces `messages` to `stream`/`topic`; all messages with the same
    /// `key` go to one partition, in order. Resolves once the server
    /// acknowledged them.
    ///
    /// # Errors
    ///
    /// When a message is invalid (empty, too large) or the server fails.
    pub async fn send(
        &self,
        stream: &str,
        topic: &str,
        key: u64,
        messages: &[OutgoingMessage],
    ) -> Result<(), IggyClientError> {
        self.send_with(stream, topic, Partitioning::messages_key_u64(key), messages)
            .await
    }

    /// Produces `messages` to `stream`/`topic`, spread over its partitions.
    ///
    /// # Errors
    ///
    /// As [`send`](Self::send).
    pub async fn send_balanced(
        &self,
        stream: &str,
        topic: &str,
        messages: &[OutgoingMessage],
    ) -> Result<(), IggyClientError> {
        self.send_with(stream, topic, Partitioning::balanced(), messages)
            .await
    }

    async fn send_with(
        &self,
        stream: &str,
        topic: &str,
        partitioning: Partitioning,
        messages: &[OutgoingMessage],
    ) -> Result<(), IggyClientError> {
        let context = || format!("cannot produce to `{stream}/{topic}`");
        let mut batch = messages
            .iter()
            .map(|m| {
                IggyMessage::builder()
                    .maybe_id(m.id)
                    .payload(m.payload.clone())
                    .maybe_user_headers(m.headers.as_ref().map(|h| h.0.clone()))
                    .build()
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(IggyClientError::new(context()))?;
        self.client
            .send_messages(&ident(stream)?, &ident(topic)?, &partitioning, &mut batch)
            .await
            .map_err(IggyClientError::new(context()))?;
        Ok(())
    }

    /// Produces `messages` to partition `partition_id` of `stream`/`topic`,
    /// in order.
    ///
    /// # Errors
    ///
    /// As [`send`](Self::send).
    pub async fn send_to_partition(
        &self,
        stream: &str,
        topic: &str,
        partition_id: u32,
        messages: &[OutgoingMessage],
    ) -> Result<(), IggyClientError> {
        self.send_with(
            stream,
            topic,
            Partitioning::partition_id(partition_id),
            messages,
        )
        .await
    }

    /// Joins consumer group `group` of `stream`/`topic`, creating the group
    /// when it does not exist, and repairs it when the server still counts
    /// members whose sessions are gone.
    ///
    /// A server restart leaves the consumer group members of the sessions
    /// from before it in place (Iggy 0.9.0-edge servers journal membership
    /// but not the disconnects a shutdown implies), and such a member keeps
    /// its partitions forever: a member that joins afresh is assigned none
    /// and polls nothing. When the group has more members than there are
    /// live clients in it (counted twice, 200 ms apart, and both times),
    /// this reads the group's committed offsets,
    /// recreates the group, joins it and stores the offsets again, and says
    /// so in the returned [`GroupRepair`]. Live members of other clients
    /// lose their membership too and must join again (the sink does on the
    /// next failed poll). A crash between the recreation and the restore
    /// loses the offsets, so the group starts again from the beginning:
    /// duplicates, never loss.
    ///
    /// Finding such members needs the permission to list the server's
    /// clients; without it, the group is joined as it is and the check is
    /// reported as not done.
    ///
    /// # Errors
    ///
    /// When the server fails.
    pub async fn join_group(
        &self,
        stream: &str,
        topic: &str,
        group: &str,
    ) -> Result<GroupJoin, IggyClientError> {
        let (s, t, g) = (ident(stream)?, ident(topic)?, ident(group)?);
        self.join_or_create(&s, &t, &g, group).await?;
        // Counted twice, a moment apart: the server gathers its clients
        // from every shard on a best-effort basis, and a live member that
        // one gather missed must not cost the group its members.
        let (mut stale, mut partitions) = (usize::MAX, 0);
        for attempt in 0..2 {
            if attempt > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
            match self.stale_members(&s, &t, &g, group).await {
                Ok(Some((0, _))) | Ok(None) => return Ok(GroupJoin::Joined),
                Ok(Some((n, count))) => (stale, partitions) = (stale.min(n), count),
                Err(error) => return Ok(GroupJoin::NotChecked(error)),
            }
        }
        let mut offsets = Vec::new();
        for partition in 0..partitions {
            if let Some(offset) = self
                .committed_offset(stream, topic, group, partition)
                .await?
            {
                offsets.push((partition, offset));
            }
        }
        self.client
            .delete_consumer_group(&s, &t, &g)
            .await
            .map_err(IggyClientError::new(format!(
                "cannot recreate consumer group `{group}`: deleting it failed"
            )))?;
        self.join_or_create(&s, &t, &g, group).await?;
        for &(partition, offset) in &offsets {
            self.commit(stream, topic, group, partition, offset).await?;
        }
        Ok(GroupJoin::Repaired(GroupRepair {
            stale_members: stale,
            restored_offsets: offsets,
        }))
    }

    async fn join_or_create(
        &self,
        s: &Identifier,
        t: &Identifier,
        g: &Identifier,
        group: &str,
    ) -> Result<(), IggyClientError> {
        let exists = self
            .client
            .get_consumer_group(s, t, g)
            .await
            .map_err(IggyClientError::new(format!(
                "cannot look up consumer group `{group}`"
            )))?
            .is_some();
        if !exists {
            self.client
                .create_consumer_group(s, t, group)
                .await
                .map_err(IggyClientError::new(format!(
                    "cannot create consumer group `{group}`"
                )))?;
        }
        self.client
            .join_consumer_group(s, t, g)
            .await
            .map_err(IggyClientError::new(format!(
                "cannot join consumer group `{group}`"
            )))
    }

    /// How many members of the group belong to no live client, and how many
    /// partitions its topic has; `None` when the group or its topic is gone.
    async fn stale_members(
        &self,
        s: &Identifier,
        t: &Identifier,
        g: &Identifier,
        group: &str,
    ) -> Result<Option<(usize, u32)>, IggyClientError> {
        let context = || format!("cannot check consumer group `{group}` for stale members");
        let Some(details) = self
            .client
            .get_consumer_group(s, t, g)
            .await
            .map_err(IggyClientError::new(context()))?
        else {
            return Ok(None);
        };
        let (Some(stream), Some(topic)) = (
            self.client
                .get_stream(s)
                .await
                .map_err(IggyClientError::new(context()))?,
            self.client
                .get_topic(s, t)
                .await
                .map_err(IggyClientError::new(context()))?,
        ) else {
            return Ok(None);
        };
        let mut live = 0;
        for client in self
            .client
            .get_clients()
            .await
            .map_err(IggyClientError::new(context()))?
        {
            if client.consumer_groups_count == 0 {
                continue;
            }
            let Some(client) = self
                .client
                .get_client(client.client_id)
                .await
                .map_err(IggyClientError::new(context()))?
            else {
                continue;
            };
            live += client
                .consumer_groups
                .iter()
                .filter(|m| {
                    m.stream_id == stream.id && m.topic_id == topic.id && m.group_id == details.id
                })
                .count();
        }
        Ok(Some((
            details.members.len().saturating_sub(live),
            topic.partitions_count,
        )))
    }

    /// The members of consumer group `group` and the partitions each is
    /// assigned, as the server sees them; `None` when there is no such group.
    ///
    /// # Errors
    ///
    /// When the server fails.
    pub async fn group_members(
        &self,
        stream: &str,
        topic: &str,
        group: &str,
    ) -> Result<Option<Vec<GroupMember>>, IggyClientError> {
        let details = self
            .client
            .get_consumer_group(&ident(stream)?, &ident(topic)?, &ident(group)?)
            .await
            .map_err(IggyClientError::new(format!(
                "cannot look up consumer group `{group}`"
            )))?;
        Ok(details.map(|d| {
            d.members
                .into_iter()
                .map(|m| GroupMember {
                    id: m.id,
                    partitions: m.partitions,
                })
                .collect()
        }))
    }

    /// Polls the next `count` messages for consumer group `group`, without
    /// committing: offsets are stored by [`commit`](Self::commit) only.
    ///
    /// # Errors
    ///
    /// When the server fails.
    pub async fn poll_group(
        &self,
        stream: &str,
        topic: &str,
        group: &str,
        count: u32,
    ) -> Result<Polled, IggyClientError> {
        let polled = self
            .client
            .poll_messages(
                &ident(stream)?,
                &ident(topic)?,
                None,
                &Consumer::group(ident(group)?),
                &PollingStrategy::next(),
                count,
                false,
            )
            .await
            .map_err(IggyClientError::new(format!(
                "cannot poll `{stream}/{topic}`"
            )))?;
        Ok(convert(polled))
    }

    /// Polls `count` messages of `partition_id` from `offset`, as a plain
    /// reader (no group, nothing stored).
    ///
    /// # Errors
    ///
    /// When the server fails.
    pub async fn poll_from(
        &self,
        stream: &str,
        topic: &str,
        partition_id: u32,
        offset: u64,
        count: u32,
    ) -> Result<Polled, IggyClientError> {
        self.read_partition(
            stream,
            topic,
            partition_id,
            PollingStrategy::offset(offset),
            count,
        )
        .await
    }

    /// Polls `count` messages of `partition_id`, the first one the first
    /// whose server timestamp is `timestamp_micros` or later, as a plain
    /// reader (no group, nothing stored).
    ///
    /// # Errors
    ///
    /// When the server fails.
    pub async fn poll_since(
        &self,
        stream: &str,
        topic: &str,
        partition_id: u32,
        timestamp_micros: u64,
        count: u32,
    ) -> Result<Polled, IggyClientError> {
        let strategy = PollingStrategy::timestamp(IggyTimestamp::from(timestamp_micros));
        self.read_partition(stream, topic, partition_id, strategy, count)
            .await
    }

    /// Polls one partition as a plain reader (no group, nothing stored).
    async fn read_partition(
        &self,
        stream: &str,
        topic: &str,
        partition_id: u32,
        strategy: PollingStrategy,
        count: u32,
    ) -> Result<Polled, IggyClientError> {
        let polled = self
            .client
            .poll_messages(
                &ident(stream)?,
                &ident(topic)?,
                Some(partition_id),
                &Consumer::new(ident("iggy-dlq-reader")?),
                &strategy,
                count,
                false,
            )
            .await
            .map_err(IggyClientError::new(format!(
                "cannot read `{stream}/{topic}`"
            )))?;
        Ok(convert(polled))
    }

    /// Stores `offset` as consumed by `group` in `partition_id`.
    ///
    /// # Errors
    ///
    /// When the server fails.
    pub async fn commit(
        &self,
        stream: &str,
        topic: &str,
        group: &str,
        partition_id: u32,
        offset: u64,
    ) -> Result<(), IggyClientError> {
        self.client
            .store_consumer_offset(
                &Consumer::group(ident(group)?),
                &ident(stream)?,
                &ident(topic)?,
                Some(partition_id),
                offset,
            )
            .await
            .map_err(IggyClientError::new(format!(
                "cannot commit offset {offset} of `{stream}/{topic}` partition {partition_id}"
            )))
    }

    /// The offset `group` last committed in `partition_id`, `None` when it
    /// committed none there.
    ///
    /// # Errors
    ///
    /// When the server fails.
    pub async fn committed_offset(
        &self,
        stream: &str,
        topic: &str,
        group: &str,
        partition_id: u32,
    ) -> Result<Option<u64>, IggyClientError> {
        let info = self
            .client
            .get_consumer_offset(
                &Consumer::group(ident(group)?),
                &ident(stream)?,
                &ident(topic)?,
                Some(partition_id),
            )
            .await
            .map_err(IggyClientError::new(format!(
                "cannot read the offset of `{group}` in `{stream}/{topic}` partition {partition_id}"
            )))?;
        Ok(info.map(|i| i.stored_offset))
    }

    /// Disconnects.
    pub async fn close(&self) {
        let _ = self.client.disconnect().await;
    }
}

fn convert(polled: iggy::prelude::PolledMessages) -> Polled {
    Polled {
        partition_id: polled.partition_id,
        current_offset: polled.current_offset,
        messages: polled
            .messages
            .into_iter()
            .map(|m| PolledMessage {
                id: m.header.id,
                offset: m.header.offset,
                checksum: m.header.checksum,
                timestamp: m.header.timestamp,
                origin_timestamp: m.header.origin_timestamp,
                headers: match &m.user_headers {
                    None => Ok(None),
                    Some(_) => m
                        .user_headers_map()
                        .map_err(|e| e.to_string())
                        .and_then(|h| {
                            h.map(Headers)
                                .map(Some)
                                .ok_or_else(|| "undecodable user headers".to_owned())
                        }),
                },
                payload: m.payload,
            })
            .collect(),
    }
}

/// Reads every message of every partition of `stream`/`topic` from the
/// start, partition by partition, in offset order.
///
/// # Errors
///
/// When the topic does not exist or the server fails.
pub async fn read_all(
    connection: &IggyConnection,
    stream: &str,
    topic: &str,
) -> Result<Vec<Bytes>, IggyClientError> {
    let info = connection.ensure_topic(stream, topic, 1, false).await?;
    let mut out = Vec::new();
    // Partition ids are zero-based in this protocol version.
    for partition_id in 0..info.partitions {
        let mut offset = 0;
        loop {
            let polled = connection
                .poll_from(stream, topic, partition_id, offset, 1000)
                .await?;
            let Some(last) = polled.messages.last().map(|m| m.offset) else {
                break;
            };
            out.extend(polled.messages.into_iter().map(|m| m.payload));
            offset = last + 1;
        }
    }
    Ok(out)
}

/// How long a sink or a source waits for one answer from Iggy (a poll, a
/// commit, a join, a produce) before it treats the request as failed: a
/// sink connects afresh and polls again, a source answers its batch with
/// `Nack` so that the plugin sends it again.
pub const IGGY_REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// How long the DLQ transport waits, by default, for a connection or an
/// acknowledgement before it counts the send as failed, so that the producer
/// retries and then spools instead of waiting on a server that is gone
/// (`[dlq] send_timeout`).
pub const DLQ_REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The DLQ topic as a [`DlqTransport`], reconnecting after a failure.
pub struct IggyDlqTransport {
    settings: ConnectionSettings,
    stream: String,
    topic: String,
    connection: Option<IggyConnection>,
    timeout: std::time::Duration,
}

impl IggyDlqTransport {
    /// A transport producing to `stream`/`topic`, on `connection` (or a new
    /// one when it is gone).
    pub fn new(
        settings: ConnectionSettings,
        stream: String,
        topic: String,
        connection: Option<IggyConnection>,
    ) -> Self {
        IggyDlqTransport {
            settings,
            stream,
            topic,
            connection,
            timeout: DLQ_REQUEST_TIMEOUT,
        }
    }

    /// Waits at most `timeout` (instead of [`DLQ_REQUEST_TIMEOUT`]) for a
    /// connection or an acknowledgement.
    #[must_use]
    pub fn with_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.timeout = timeout;
        self
    }

    async fn send_all(&mut self, batch: &[(u64, Bytes)]) -> Result<(), TransportError> {
        if self.connection.is_none() {
            let connection = tokio::time::timeout(
                self.timeout,
                IggyConnection::connect_without_retries(&self.settings),
            )
            .await
            .map_err(|_| {
                TransportError(format!(
                    "no answer from {} within {:?}",
                    self.settings.address, self.timeout
                ))
            })?
            .map_err(|e| TransportError(e.to_string()))?;
            self.connection = Some(connection);
        }
        let connection = self.connection.as_ref().expect("connected above");
        // Consecutive runs with one key keep their order in one partition.
        let mut start = 0;
        while start < batch.len() {
            let key = batch[start].0;
            let end = batch[start..]
                .iter()
                .position(|(k, _)| *k != key)
                .map_or(batch.len(), |n| start + n);
            let messages: Vec<OutgoingMessage> = batch[start..end]
                .iter()
                .map(|(_, bytes)| OutgoingMessage {
                    id: None,
                    payload: bytes.clone(),
                    headers: None,
                })
                .collect();
            let sent = tokio::time::timeout(
                self.timeout,
                connection.send(&self.stream, &self.topic, key, &messages),
            )
            .await;
            let error = match sent {
                Ok(Ok(())) => None,
                Ok(Err(error)) => Some(error.to_string()),
                Err(_) => Some(format!(
                    "no acknowledgement from {} within {:?}",
                    self.settings.address, self.timeout
                )),
            };
            if let Some(error) = error {
                // Start over with a fresh connection next time; a send that
                // timed out may or may not have landed (at least once).
                self.connection = None;
                return Err(TransportError(error));
            }
            start = end;
        }
        Ok(())
    }
}

impl DlqTransport for IggyDlqTransport {
    fn send<'a>(
        &'a mut self,
        batch: &'a [(u64, Bytes)],
    ) -> Pin<Box<dyn Future<Output = Result<(), TransportError>> + Send + 'a>> {
        Box::pin(self.send_all(batch))
    }

    fn describe(&self) -> String {
        format!(
            "iggy {} {}/{}",
            self.settings.address, self.stream, self.topic
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_strings_parse_and_secrets_stay_out_of_debug() {
        let s = ConnectionSettings::from_connection_string("iggy://admin:s3cret@127.0.0.1:8090")
            .unwrap();
        assert_eq!(
            (s.username.as_str(), s.password.as_str(), s.address.as_str()),
            ("admin", "s3cret", "127.0.0.1:8090")
        );
        assert!(!format!("{s:?}").contains("s3cret"));
        let t = ConnectionSettings::from_connection_string(
            "iggy://tok@h:1?tls=true&tls_ca_file=ca.pem",
        )
        .unwrap();
        assert_eq!(t.token, "tok");
        assert!(t.tls);
        assert!(ConnectionSettings::from_connection_string("http://x").is_err());
        assert!(ConnectionSettings::from_connection_string("iggy://a:b@h:1?bogus=1").is_err());
    }
}
