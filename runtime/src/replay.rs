//! Replaying dead letters: the original messages of chosen DLQ envelopes,
//! sent to an Iggy topic again, once whatever failed them is fixed.
//!
//! [`plan`] reads DLQ records and decides, for each, whether to replay it
//! and where; [`send`] produces the planned messages. A replayed message is
//! the original one: its payload, its user headers (kinds kept) and, unless
//! told otherwise, its message id, plus the
//! [`REPLAY_COUNT_HEADER`] with how
//! many times it has now been replayed. When it fails again, its new dead
//! letter carries that count, and replay refuses it once the count reaches
//! [`ReplayFilter::max_replays`], so a message that can never succeed does
//! not go round forever.
//!
//! Only what can be replayed faithfully is: an envelope whose payload was
//! cut or dropped to fit the DLQ topic is skipped, and so is one from a
//! source (it never was an Iggy message).
//!
//! ```
//! use bytes::Bytes;
//! use iggy_dlq_envelope::{
//!     Connector, DlqEnvelope, ErrorCode, Failure, FailureStage, PayloadSchema, SinkOrigin,
//! };
//! use iggy_dlq_runtime::replay::{Destination, ReplayFilter, plan};
//!
//! let envelope = DlqEnvelope::for_sink(SinkOrigin::new("shop", "orders", 0, 41, 7))
//!     .payload(Bytes::from_static(b"{\"amount\": 3}"), PayloadSchema::Json)
//!     .failure(Failure::new(
//!         FailureStage::ConnectorProcess,
//!         ErrorCode::MissingField,
//!         "required field `order_id` is missing",
//!     ))
//!     .connector(Connector::sink("orders", "Orders", "1.0.0"))
//!     .build()
//!     .unwrap();
//! let records = vec![envelope.encode_to_bytes()];
//! let plan = plan(&records, &ReplayFilter::default(), &Destination::default(), None);
//! assert_eq!(plan.replays.len(), 1);
//! assert_eq!(
//!     (plan.replays[0].stream.as_str(), plan.replays[0].topic.as_str()),
//!     ("shop", "orders")
//! );
//! ```

use std::collections::BTreeMap;
use std::fmt;

use bytes::Bytes;
use iggy_dlq_envelope::{
    Decoder, DlqEnvelope, ErrorCode, FailureStage, HeaderKind, REPLAY_COUNT_HEADER,
};

use crate::iggy_client::{Headers, IggyClientError, IggyConnection, OutgoingMessage};

/// Which dead letters to replay.
#[derive(Debug, Clone)]
pub struct ReplayFilter {
    /// Only these failure stages; all when empty.
    pub stages: Vec<FailureStage>,
    /// Only these error codes; all when empty.
    pub codes: Vec<ErrorCode>,
    /// Only the dead letters of this connector key.
    pub connector: Option<String>,
    /// Only the dead letters consumed from this stream and topic.
    pub origin: Option<(String, String)>,
    /// Refuse a message already replayed this many times.
    pub max_replays: u32,
}

impl Default for ReplayFilter {
    fn default() -> Self {
        ReplayFilter {
            stages: Vec::new(),
            codes: Vec::new(),
            connector: None,
            origin: None,
            max_replays: DEFAULT_MAX_REPLAYS,
        }
    }
}

/// How many times a message may be replayed, by default.
pub const DEFAULT_MAX_REPLAYS: u32 = 3;

/// Where replayed messages go. Every part left out is the origin's.
#[derive(Debug, Clone, Default)]
pub struct Destination {
    /// Stream; the origin stream when `None`.
    pub stream: Option<String>,
    /// Topic; the origin topic when `None`.
    pub topic: Option<String>,
    /// Partition; the origin partition when `None`.
    pub partition: Option<u32>,
    /// Let the server give the messages new ids instead of their own.
    pub new_ids: bool,
}

/// Why a dead letter is not replayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Skip {
    /// It does not match the filter.
    NotMatching,
    /// The record is not a valid envelope.
    Undecodable,
    /// It came from a source, so there is no Iggy message to replay.
    NotFromIggy,
    /// Its payload was cut or dropped to fit the DLQ topic.
    PayloadIncomplete,
    /// It was replayed [`ReplayFilter::max_replays`] times already.
    ReplayedTooOften,
    /// Its headers cannot be turned back into Iggy headers.
    BadHeaders,
}

impl fmt::Display for Skip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Skip::NotMatching => "do not match the filter",
            Skip::Undecodable => "are not valid envelopes",
            Skip::NotFromIggy => "come from a source, not from an Iggy topic",
            Skip::PayloadIncomplete => "have a payload cut or dropped to fit the DLQ",
            Skip::ReplayedTooOften => "were replayed too often already",
            Skip::BadHeaders => "have headers that are not valid Iggy headers",
        })
    }
}

/// One message to replay.
#[derive(Debug, Clone)]
pub struct Planned {
    /// Its record's index in the DLQ.
    pub dlq_index: usize,
    /// Destination stream.
    pub stream: String,
    /// Destination topic.
    pub topic: String,
    /// Destination partition.
    pub partition_id: u32,
    /// The message, with the replay count header set.
    pub message: OutgoingMessage,
    /// How many times it will have been replayed once sent.
    pub replay_count: u32,
}

/// What [`plan`] decided.
#[derive(Debug, Default)]
pub struct ReplayPlan {
    /// The messages to replay, in DLQ order.
    pub replays: Vec<Planned>,
    /// The dead letters not replayed, by reason.
    pub skipped: BTreeMap<Skip, usize>,
    /// The index of the first DLQ record not looked at: where a later
    /// replay goes on from.
    pub next_index: usize,
}

impl ReplayPlan {
    /// How many dead letters were skipped for `reason`.
    pub fn skipped(&self, reason: Skip) -> usize {
        self.skipped.get(&reason).copied().unwrap_or(0)
    }
}

/// Decides which of `records` (a DLQ from its start) to replay and where,
/// replaying at most `limit`.
pub fn plan(
    records: &[Bytes],
    filter: &ReplayFilter,
    destination: &Destination,
    limit: Option<usize>,
) -> ReplayPlan {
    plan_from(0, records, filter, destination, limit)
}

/// As [`plan`], for records that start at DLQ index `first_index`.
pub fn plan_from(
    first_index: usize,
    records: &[Bytes],
    filter: &ReplayFilter,
    destination: &Destination,
    limit: Option<usize>,
) -> ReplayPlan {
    let decoder = Decoder::new();
    let mut plan = ReplayPlan {
        next_index: first_index,
        ..ReplayPlan::default()
    };
    for (i, record) in records.iter().enumerate() {
        if limit.is_some_and(|limit| plan.replays.len() >= limit) {
            break;
        }
        plan.next_index = first_index + i + 1;
        match decide(first_index + i, record, &decoder, filter, destination) {
            Ok(planned) => plan.replays.push(planned),
            Err(skip) => *plan.skipped.entry(skip).or_default() += 1,
        }
    }
    plan
}

fn decide(
    dlq_index: usize,
    record: &Bytes,
    decoder: &Decoder,
    filter: &ReplayFilter,
    destination: &Destination,
) -> Result<Planned, Skip> {
    let envelope = decoder
        .decode(record.clone())
        .map_err(|_| Skip::Undecodable)?;
    if !matches(&envelope, filter) {
        return Err(Skip::NotMatching);
    }
    let origin = envelope.sink_origin().ok_or(Skip::NotFromIggy)?;
    if envelope
        .payload_integrity
        .as_ref()
        .is_some_and(|integrity| integrity.truncated)
    {
        return Err(Skip::PayloadIncomplete);
    }
    if envelope.replay_count >= filter.max_replays {
        return Err(Skip::ReplayedTooOften);
    }
    let replay_count = envelope.replay_count + 1;
    let mut parts: Vec<(u8, Bytes, u8, Bytes)> = Vec::with_capacity(envelope.headers.len() + 1);
    for header in &envelope.headers {
        if header.replay_count().is_some() {
            continue;
        }
        let (Some(key), Some(value)) = (&header.key, &header.value) else {
            return Err(Skip::BadHeaders);
        };
        let kind = |k: i32| u8::try_from(k).map_err(|_| Skip::BadHeaders);
        parts.push((
            kind(key.kind)?,
            key.value.clone(),
            kind(value.kind)?,
            value.value.clone(),
        ));
    }
    parts.push((
        HeaderKind::String as u8,
        Bytes::from_static(REPLAY_COUNT_HEADER.as_bytes()),
        HeaderKind::Uint32 as u8,
        Bytes::copy_from_slice(&replay_count.to_le_bytes()),
    ));
    let headers = Headers::from_raw_parts(&parts).map_err(|_| Skip::BadHeaders)?;
    let id = origin.message_id.map(u128::from).filter(|&id| id != 0);
    Ok(Planned {
        dlq_index,
        stream: destination
            .stream
            .clone()
            .unwrap_or_else(|| origin.stream.clone()),
        topic: destination
            .topic
            .clone()
            .unwrap_or_else(|| origin.topic.clone()),
        partition_id: destination.partition.unwrap_or(origin.partition_id),
        message: OutgoingMessage {
            id: if destination.new_ids { None } else { id },
            payload: envelope.payload.clone(),
            headers: Some(headers),
        },
        replay_count,
    })
}

fn matches(envelope: &DlqEnvelope, filter: &ReplayFilter) -> bool {
    let failure = envelope.failure.as_ref();
    if !filter.stages.is_empty() && !failure.is_some_and(|f| filter.stages.contains(&f.stage())) {
        return false;
    }
    if !filter.codes.is_empty() && !failure.is_some_and(|f| filter.codes.contains(&f.code())) {
        return false;
    }
    if let Some(key) = &filter.connector
        && envelope.connector.as_ref().is_none_or(|c| &c.key != key)
    {
        return false;
    }
    if let Some((stream, topic)) = &filter.origin
        && envelope
            .sink_origin()
            .is_none_or(|o| &o.stream != stream || &o.topic != topic)
    {
        return false;
    }
    true
}

/// Parses a failure stage as the CLI takes it: `connector_process`, or the
/// protobuf name `FAILURE_STAGE_CONNECTOR_PROCESS`, in any case.
///
/// # Errors
///
/// When it names no stage; the message lists the stages.
pub fn parse_stage(s: &str) -> Result<FailureStage, String> {
    FailureStage::from_str_name(&proto_name("FAILURE_STAGE_", s))
        .filter(|stage| *stage != FailureStage::Unspecified)
        .ok_or_else(|| {
            format!(
                "`{s}` is not a failure stage (runtime_decode, transform, connector_process, \
                 connector_write, source_conversion, runtime_produce)"
            )
        })
}

/// Parses an error code as the CLI takes it: `missing_field`, or the
/// protobuf name `ERROR_CODE_MISSING_FIELD`, in any case.
///
/// # Errors
///
/// When it names no code.
pub fn parse_code(s: &str) -> Result<ErrorCode, String> {
    ErrorCode::from_str_name(&proto_name("ERROR_CODE_", s))
        .filter(|code| *code != ErrorCode::Unspecified)
        .ok_or_else(|| format!("`{s}` is not an error code (see proto/iggy/dlq/v1/envelope.proto)"))
}

/// The protobuf enum value name of `s`, with or without its `prefix`.
fn proto_name(prefix: &str, s: &str) -> String {
    let upper = s.to_uppercase();
    if upper.starts_with(prefix) {
        upper
    } else {
        format!("{prefix}{upper}")
    }
}

/// What [`send`] produced.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReplayReport {
    /// Messages replayed, by destination stream, topic and partition.
    pub sent: BTreeMap<(String, String, u32), usize>,
}

impl ReplayReport {
    /// Messages replayed in all.
    pub fn total(&self) -> usize {
        self.sent.values().sum()
    }
}

/// Why a replay stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// A destination does not exist; nothing was sent.
    #[error("nothing replayed: {0}")]
    Destination(#[source] IggyClientError),
    /// Iggy failed in the middle.
    #[error(
        "replayed {} message(s), then Iggy failed at DLQ record {next_index} (go on from there \
         with --skip {next_index}): {source}", report.total()
    )]
    Send {
        /// What was replayed before the failure.
        report: ReplayReport,
        /// The DLQ index of the first record not known to be replayed.
        next_index: usize,
        /// The failure.
        #[source]
        source: IggyClientError,
    },
}

/// The most messages in one send.
const SEND_BATCH: usize = 1000;

/// Checks that every destination of `plan` exists: its stream, its topic
/// and the partition, so that a typo fails before anything is sent rather
/// than halfway.
///
/// # Errors
///
/// Naming the first destination that does not exist.
pub async fn check_destinations(
    connection: &IggyConnection,
    plan: &ReplayPlan,
) -> Result<(), IggyClientError> {
    let mut checked: BTreeMap<(&str, &str), u32> = BTreeMap::new();
    for planned in &plan.replays {
        let key = (planned.stream.as_str(), planned.topic.as_str());
        let partitions = match checked.get(&key) {
            Some(&partitions) => partitions,
            None => {
                let info = connection
                    .ensure_topic(&planned.stream, &planned.topic, 1, false)
                    .await?;
                checked.insert(key, info.partitions);
                info.partitions
            }
        };
        if planned.partition_id >= partitions {
            return Err(IggyClientError::partition_not_found(
                &planned.stream,
                &planned.topic,
                planned.partition_id,
                partitions,
            ));
        }
    }
    Ok(())
}

/// Produces the plan's messages in DLQ order, in batches of consecutive
/// messages with one destination, after [`check_destinations`].
///
/// # Errors
///
/// When a destination does not exist (nothing is sent then) or Iggy fails;
/// the error says how far the replay got. Messages of the failed batch may
/// or may not have landed (at least once).
pub async fn send(
    connection: &IggyConnection,
    plan: &ReplayPlan,
) -> Result<ReplayReport, ReplayError> {
    check_destinations(connection, plan)
        .await
        .map_err(ReplayError::Destination)?;
    let mut report = ReplayReport::default();
    let mut start = 0;
    while start < plan.replays.len() {
        let first = &plan.replays[start];
        let run = plan.replays[start..]
            .iter()
            .take(SEND_BATCH)
            .take_while(|p| {
                p.stream == first.stream
                    && p.topic == first.topic
                    && p.partition_id == first.partition_id
            })
            .count();
        let messages: Vec<OutgoingMessage> = plan.replays[start..start + run]
            .iter()
            .map(|p| p.message.clone())
            .collect();
        if let Err(source) = connection
            .send_to_partition(&first.stream, &first.topic, first.partition_id, &messages)
            .await
        {
            return Err(ReplayError::Send {
                report,
                next_index: first.dlq_index,
                source,
            });
        }
        *report
            .sent
            .entry((
                first.stream.clone(),
                first.topic.clone(),
                first.partition_id,
            ))
            .or_default() += run;
        start += run;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use iggy_dlq_envelope::{
        Connector, Failure, Header, HeaderValue, PayloadPolicy, PayloadSchema, SinkOrigin,
        SourceOrigin,
    };

    fn sink_letter(offset: u64, code: ErrorCode, connector: &str) -> DlqEnvelope {
        DlqEnvelope::for_sink(SinkOrigin::new(
            "shop",
            "orders",
            2,
            offset,
            1000 + u128::from(offset),
        ))
        .payload(
            Bytes::from(format!("payload {offset}")),
            PayloadSchema::Json,
        )
        .header(Header::new("tenant".into(), HeaderValue::Uint64(42)))
        .failure(Failure::new(FailureStage::ConnectorProcess, code, "failed"))
        .connector(Connector::sink(connector, "n", "1"))
        .build()
        .unwrap()
    }

    fn records(envelopes: &[DlqEnvelope]) -> Vec<Bytes> {
        envelopes.iter().map(DlqEnvelope::encode_to_bytes).collect()
    }

    #[test]
    fn a_replay_is_the_original_message_with_a_replay_count() {
        let plan = plan(
            &records(&[sink_letter(5, ErrorCode::MissingField, "orders")]),
            &ReplayFilter::default(),
            &Destination::default(),
            None,
        );
        let [planned] = &plan.replays[..] else {
            panic!("{plan:?}")
        };
        assert_eq!(
            (
                planned.stream.as_str(),
                planned.topic.as_str(),
                planned.partition_id
            ),
            ("shop", "orders", 2),
            "to the origin's stream, topic and partition"
        );
        assert_eq!(planned.message.id, Some(1005), "with its own id");
        assert_eq!(planned.message.payload, Bytes::from("payload 5"));
        assert_eq!(planned.replay_count, 1);
        let headers = planned.message.headers.as_ref().unwrap().raw_parts();
        assert_eq!(headers.len(), 2, "{headers:?}");
        let back: Vec<Header> = headers
            .into_iter()
            .map(|(kk, k, vk, v)| Header::from_raw_parts(kk, k, vk, v))
            .collect();
        assert!(back.contains(&Header::new("tenant".into(), HeaderValue::Uint64(42))));
        assert_eq!(back.iter().find_map(Header::replay_count), Some(1));
        assert_eq!(plan.next_index, 1);
    }

    #[test]
    fn a_replayed_letter_that_failed_again_counts_up_and_stops_at_the_limit() {
        let mut again = sink_letter(5, ErrorCode::MissingField, "orders");
        again.headers.push(Header::new(
            REPLAY_COUNT_HEADER.into(),
            HeaderValue::Uint32(2),
        ));
        again.replay_count = 2;
        let records = records(&[again]);
        let planned = plan(
            &records,
            &ReplayFilter::default(),
            &Destination::default(),
            None,
        );
        assert_eq!(planned.replays[0].replay_count, 3);
        let headers = planned.replays[0]
            .message
            .headers
            .as_ref()
            .unwrap()
            .raw_parts();
        assert_eq!(headers.len(), 2, "the old count is replaced, not repeated");

        let strict = ReplayFilter {
            max_replays: 2,
            ..ReplayFilter::default()
        };
        let refused = plan(&records, &strict, &Destination::default(), None);
        assert!(refused.replays.is_empty());
        assert_eq!(refused.skipped(Skip::ReplayedTooOften), 1);
    }

    #[test]
    fn filters_choose_and_skips_are_counted() {
        let mut cut = sink_letter(3, ErrorCode::MissingField, "orders");
        cut.payload = Bytes::from(vec![b'x'; 1000]);
        let cut = cut.fit_to(600, PayloadPolicy::Truncate).unwrap();
        assert!(cut.payload_integrity.as_ref().unwrap().truncated);
        let source = DlqEnvelope::for_source(SourceOrigin::new(
            "postgres",
            Bytes::from_static(b"lsn/1"),
            "shop",
            "orders",
        ))
        .payload(Bytes::from_static(b"row"), PayloadSchema::Raw)
        .failure(Failure::new(
            FailureStage::SourceConversion,
            ErrorCode::ConversionFailed,
            "bad row",
        ))
        .connector(Connector::source("pg", "n", "1"))
        .build()
        .unwrap();
        let mut records = records(&[
            sink_letter(0, ErrorCode::MissingField, "orders"),
            sink_letter(1, ErrorCode::MalformedPayload, "orders"),
            sink_letter(2, ErrorCode::MissingField, "billing"),
            cut,
            source,
        ]);
        records.push(Bytes::from_static(b"not an envelope"));

        let all = plan(
            &records,
            &ReplayFilter::default(),
            &Destination::default(),
            None,
        );
        assert_eq!(
            all.replays.iter().map(|p| p.dlq_index).collect::<Vec<_>>(),
            vec![0, 1, 2]
        );
        assert_eq!(all.skipped(Skip::PayloadIncomplete), 1);
        assert_eq!(all.skipped(Skip::NotFromIggy), 1);
        assert_eq!(all.skipped(Skip::Undecodable), 1);
        assert_eq!(all.next_index, 6);

        let missing = ReplayFilter {
            codes: vec![parse_code("missing_field").unwrap()],
            connector: Some("orders".into()),
            ..ReplayFilter::default()
        };
        let chosen = plan(&records, &missing, &Destination::default(), None);
        assert_eq!(
            chosen
                .replays
                .iter()
                .map(|p| p.dlq_index)
                .collect::<Vec<_>>(),
            vec![0]
        );
        assert_eq!(chosen.skipped(Skip::NotMatching), 3);
        assert_eq!(
            chosen.skipped(Skip::PayloadIncomplete),
            1,
            "the cut one matches, and is still not replayed"
        );
        assert_eq!(chosen.skipped(Skip::Undecodable), 1);

        let other_origin = ReplayFilter {
            origin: Some(("shop".into(), "payments".into())),
            stages: vec![parse_stage("CONNECTOR_PROCESS").unwrap()],
            ..ReplayFilter::default()
        };
        assert!(
            plan(&records, &other_origin, &Destination::default(), None)
                .replays
                .is_empty()
        );

        let limited = plan(
            &records,
            &ReplayFilter::default(),
            &Destination::default(),
            Some(2),
        );
        assert_eq!(limited.replays.len(), 2);
        assert_eq!(
            limited.next_index, 2,
            "a later replay goes on after the last one looked at"
        );
        let rest = plan_from(
            limited.next_index,
            &records[limited.next_index..],
            &ReplayFilter::default(),
            &Destination::default(),
            None,
        );
        assert_eq!(
            rest.replays.iter().map(|p| p.dlq_index).collect::<Vec<_>>(),
            vec![2]
        );
    }

    #[test]
    fn a_destination_redirects_and_new_ids_leave_the_id_to_the_server() {
        let destination = Destination {
            stream: Some("retry".into()),
            topic: Some("orders-retry".into()),
            partition: Some(0),
            new_ids: true,
        };
        let plan = plan(
            &records(&[sink_letter(5, ErrorCode::MissingField, "orders")]),
            &ReplayFilter::default(),
            &destination,
            None,
        );
        let planned = &plan.replays[0];
        assert_eq!(
            (
                planned.stream.as_str(),
                planned.topic.as_str(),
                planned.partition_id
            ),
            ("retry", "orders-retry", 0)
        );
        assert_eq!(planned.message.id, None);
    }

    #[test]
    fn stage_and_code_names_parse_or_say_what_they_may_be() {
        assert_eq!(
            parse_stage("connector_write").unwrap(),
            FailureStage::ConnectorWrite
        );
        assert_eq!(
            parse_stage("FAILURE_STAGE_RUNTIME_DECODE").unwrap(),
            FailureStage::RuntimeDecode
        );
        assert!(parse_stage("unspecified").is_err());
        let err = parse_stage("writing").unwrap_err();
        assert!(
            err.contains("writing") && err.contains("connector_write"),
            "{err}"
        );
        assert_eq!(
            parse_code("Missing_Field").unwrap(),
            ErrorCode::MissingField
        );
        assert!(parse_code("oops").unwrap_err().contains("oops"));
    }
}
