//! The Kafka sink against librdkafka's mock cluster (`rdkafka::mocking`):
//! real Kafka brokers in-process (Produce with idempotence, Metadata,
//! Fetch), with error injection, broker outages and delays. What was
//! delivered is read back with a consumer from the cluster's bootstrap
//! servers, so every assertion is on what a Kafka consumer sees.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Headers;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use serde_json::json;
use warden_sinks::kafka::{KafkaConfig, KafkaConfigError, KafkaSink, RECORD_OVERHEAD};
use warden_sinks::{Event, SendError, Sink, batching};

type Cluster = MockCluster<'static, DefaultProducerContext>;

/// A cluster of `brokers` with `topic` of `partitions` partitions.
fn cluster(brokers: i32, topic: &str, partitions: i32) -> Cluster {
    let cluster = MockCluster::new(brokers).expect("a mock cluster");
    cluster
        .create_topic(topic, partitions, brokers.min(3))
        .expect("a mock topic");
    cluster
}

/// Settings that only make the tests quicker to recover from outages.
fn quick() -> Vec<(String, String)> {
    [
        ("reconnect.backoff.ms", "50"),
        ("reconnect.backoff.max.ms", "300"),
        ("retry.backoff.ms", "50"),
        ("retry.backoff.max.ms", "300"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn sink_with(brokers: &str, topic: &str, extra: &[(&str, &str)], timeout: Option<Duration>) -> KafkaSink {
    let mut properties = quick();
    properties.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    KafkaSink::new(KafkaConfig {
        brokers: brokers.into(),
        topic: topic.into(),
        properties,
        timeout,
    })
    .expect("a Kafka sink")
}

fn sink(brokers: &str, topic: &str) -> KafkaSink {
    sink_with(brokers, topic, &[], None)
}

/// Event `i` of workflow `wf-{i % workflows}` (every tenth without a
/// workflow when `some_without` is set).
fn events(from: u64, n: u64, workflows: u64, some_without: bool) -> Vec<Event> {
    (from..from + n)
        .map(|i| {
            let workflow = (!(some_without && i % 10 == 9)).then(|| format!("wf-{}", i % workflows));
            Event {
                tenant_id: format!("ten_{}", i % 2),
                index: i,
                event_id: format!("evt_{i}"),
                workflow_id: workflow.clone(),
                timestamp_ms: 1_700_000_000_000 + i as i64,
                body: serde_json::to_vec(&json!({
                    "event_id": format!("evt_{i}"),
                    "workflow_id": workflow,
                    "seq": i,
                    "action": "document_read",
                }))
                .unwrap(),
            }
        })
        .collect()
}

/// One record as a consumer sees it.
#[derive(Debug, Clone)]
struct Record {
    partition: i32,
    offset: i64,
    key: String,
    event_id: String,
    tenant_id: String,
    body: Vec<u8>,
}

/// Every record of `topic`, read from the start of each partition up to
/// its high watermark (so duplicates are seen too).
async fn read_back(bootstrap: String, topic: String, partitions: i32) -> Vec<Record> {
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .set("group.id", "warden-sinks-test")
            .set("enable.auto.commit", "false")
            .create()
            .unwrap();
        let mut total = 0;
        let mut assignment = TopicPartitionList::new();
        for p in 0..partitions {
            let (low, high) = consumer.fetch_watermarks(&topic, p, Duration::from_secs(5)).unwrap();
            assert_eq!(low, 0);
            total += high;
            assignment.add_partition_offset(&topic, p, Offset::Beginning).unwrap();
        }
        consumer.assign(&assignment).unwrap();
        let deadline = Instant::now() + Duration::from_secs(15);
        let mut out = Vec::new();
        while (out.len() as i64) < total {
            assert!(Instant::now() < deadline, "read {} of {total} records", out.len());
            let Some(m) = consumer.poll(Duration::from_millis(100)) else {
                continue;
            };
            let m = m.unwrap();
            let mut headers = HashMap::new();
            if let Some(hs) = m.headers() {
                for h in hs.iter() {
                    headers.insert(h.key.to_string(), String::from_utf8(h.value.unwrap().to_vec()).unwrap());
                }
            }
            out.push(Record {
                partition: m.partition(),
                offset: m.offset(),
                key: String::from_utf8(m.key().unwrap().to_vec()).unwrap(),
                event_id: headers.remove("event_id").expect("an event_id header"),
                tenant_id: headers.remove("tenant_id").expect("a tenant_id header"),
                body: m.payload().unwrap().to_vec(),
            });
        }
        out
    })
    .await
    .unwrap()
}

/// The topic holds exactly `events`, each once, with its key, headers and
/// body; each workflow's events on one partition, in order.
fn assert_exactly(records: &[Record], events: &[Event]) {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for r in records {
        *seen.entry(r.event_id.as_str()).or_default() += 1;
    }
    let dupes: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(dupes.is_empty(), "duplicates: {dupes:?}");
    assert_eq!(records.len(), events.len(), "every event, nothing else");
    let by_id: HashMap<&str, &Record> = records.iter().map(|r| (r.event_id.as_str(), r)).collect();
    let mut workflows: BTreeMap<&str, Vec<(i32, i64, u64)>> = BTreeMap::new();
    for e in events {
        let r = by_id
            .get(e.event_id.as_str())
            .unwrap_or_else(|| panic!("{} missing", e.event_id));
        assert_eq!(r.key, e.workflow_id.clone().unwrap_or_else(|| e.event_id.clone()));
        assert_eq!(r.tenant_id, e.tenant_id);
        assert_eq!(r.body, e.body);
        if let Some(w) = &e.workflow_id {
            workflows.entry(w).or_default().push((r.partition, r.offset, e.index));
        }
    }
    for (w, mut recs) in workflows {
        assert!(recs.iter().all(|r| r.0 == recs[0].0), "{w} spread over partitions");
        recs.sort();
        assert!(recs.windows(2).all(|p| p[0].2 < p[1].2), "{w} out of order: {recs:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_arrives_once_with_its_key_and_headers_in_workflow_order() {
    let topic = "audit-all";
    let cluster = cluster(3, topic, 4);
    let bootstrap = cluster.bootstrap_servers();
    let kafka = sink(&bootstrap, topic);
    assert_eq!(kafka.kind(), "kafka");
    let events = events(0, 2_500, 17, true);
    let (batches, oversized) = batching::batches(&events, &kafka.limits());
    assert!(oversized.is_empty());
    assert_eq!(batches.len(), 3, "1,000 events per send");
    for b in batches {
        assert_eq!(kafka.send(&events[b]).await, Ok(Default::default()));
    }
    let records = read_back(bootstrap, topic.into(), 4).await;
    assert_exactly(&records, &events);
    let partitions: std::collections::BTreeSet<i32> = records.iter().map(|r| r.partition).collect();
    assert!(partitions.len() > 1, "workflows spread over the partitions");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_errors_are_retried_without_duplicates_and_lost_answers_without_loss() {
    let topic = "audit-retry";
    let cluster = cluster(1, topic, 2);
    let bootstrap = cluster.bootstrap_servers();
    let kafka = Arc::new(sink_with(&bootstrap, topic, &[("socket.timeout.ms", "700")], None));
    let first = events(0, 50, 5, false);
    kafka.send(&first).await.unwrap();

    // Produce requests refused with retriable errors, and a dropped
    // connection: the producer retries them.
    use RDKafkaRespErr::*;
    cluster.request_errors(
        RDKafkaApiKey::Produce,
        &[
            RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
            RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE,
            RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
            RD_KAFKA_RESP_ERR__TRANSPORT,
            RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
        ],
    );
    let second = events(50, 200, 5, false);
    kafka.send(&second).await.unwrap();

    let all: Vec<Event> = [first, second].concat();
    assert_exactly(&read_back(bootstrap.clone(), topic.into(), 2).await, &all);

    // Answers later than socket.timeout.ms: the broker wrote the records
    // but the producer saw no answer, and sends them again until an answer
    // comes in time. (Against Kafka, idempotence makes the broker take the
    // second copy as the first; the mock cluster checks sequence numbers of
    // transactional producers only, so here copies may be written twice:
    // only that nothing is lost is asserted.)
    cluster.broker_round_trip_time(1, Duration::from_millis(1_500)).unwrap();
    let third = events(250, 100, 5, false);
    let sending = {
        let (kafka, third) = (kafka.clone(), third.clone());
        tokio::spawn(async move { kafka.send(&third).await })
    };
    tokio::time::sleep(Duration::from_millis(2_000)).await;
    cluster.broker_round_trip_time(1, Duration::ZERO).unwrap();
    tokio::time::timeout(Duration::from_secs(15), sending)
        .await
        .expect("delivered once answers come in time")
        .unwrap()
        .unwrap();
    let records = read_back(bootstrap, topic.into(), 2).await;
    for e in all.iter().chain(&third) {
        assert!(records.iter().any(|r| r.event_id == e.event_id), "{} lost", e.event_id);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_waits_while_the_leader_is_down_and_completes_once_it_is_back() {
    let topic = "audit-outage";
    let cluster = cluster(2, topic, 2);
    for p in 0..2 {
        cluster.partition_leader(topic, p, Some(1)).unwrap();
    }
    let bootstrap = cluster.bootstrap_servers();
    let kafka = Arc::new(sink(&bootstrap, topic));
    let before = events(0, 20, 4, false);
    kafka.send(&before).await.unwrap();

    cluster.broker_down(1).unwrap();
    let during = events(20, 300, 4, false);
    let sending = {
        let (kafka, during) = (kafka.clone(), during.clone());
        tokio::spawn(async move { kafka.send(&during).await })
    };
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(
        !sending.is_finished(),
        "neither delivered nor failed while the leader is away"
    );

    cluster.broker_up(1).unwrap();
    let answer = tokio::time::timeout(Duration::from_secs(15), sending)
        .await
        .expect("delivered once the leader is back")
        .unwrap();
    assert_eq!(answer, Ok(Default::default()));
    let all: Vec<Event> = [before, during].concat();
    assert_exactly(&read_back(bootstrap, topic.into(), 2).await, &all);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_that_times_out_or_is_dropped_leaves_its_records_to_the_next_send() {
    let topic = "audit-timeout";
    let cluster = cluster(1, topic, 1);
    let bootstrap = cluster.bootstrap_servers();
    let kafka = sink_with(&bootstrap, topic, &[], Some(Duration::from_millis(1_500)));
    let before = events(0, 10, 3, false);
    kafka.send(&before).await.unwrap();
    let batch = events(10, 100, 3, false);

    cluster.broker_down(1).unwrap();
    let err = kafka.send(&batch).await.unwrap_err();
    assert!(
        matches!(&err, SendError::Retryable { reason, .. } if reason.contains("did not acknowledge")),
        "{err:?}"
    );
    // The engine stopping a send is the same as the timeout.
    assert!(
        tokio::time::timeout(Duration::from_millis(300), kafka.send(&batch))
            .await
            .is_err()
    );
    cluster.broker_up(1).unwrap();
    // The engine's retry: the same events, waiting for the queued records.
    assert_eq!(kafka.send(&batch).await, Ok(Default::default()));
    let all: Vec<Event> = [before, batch].concat();
    assert_exactly(&read_back(bootstrap, topic.into(), 1).await, &all);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_over_the_size_limit_is_rejected_and_the_rest_delivered() {
    let topic = "audit-size";
    let cluster = cluster(1, topic, 3);
    let bootstrap = cluster.bootstrap_servers();
    let kafka = sink_with(&bootstrap, topic, &[("message.max.bytes", "20000")], None);
    let limits = kafka.limits();
    assert_eq!(limits.max_event_bytes, 20_000 - RECORD_OVERHEAD);

    // Over the limit as an event: the engine sets it aside.
    let mut batch = events(0, 30, 4, false);
    batch[3].body = serde_json::to_vec(&json!({"blob": "x".repeat(25_000)})).unwrap();
    let (batches, oversized) = batching::batches(&batch, &limits);
    assert_eq!(oversized.len(), 1);
    assert_eq!(oversized[0].0, 3);
    assert_eq!(batches, vec![0..3, 4..30]);

    // Over it as a record (a body within the limit, with a key that makes
    // the record too large): refused by the producer, the rest delivered.
    let mut batch = events(100, 30, 4, false);
    batch[7].body = serde_json::to_vec(&json!({"blob": "x".repeat(limits.max_event_bytes - 20)})).unwrap();
    batch[7].workflow_id = Some(format!("wf-{}", "w".repeat(5_000)));
    let delivered = kafka.send(&batch).await.unwrap();
    assert_eq!(delivered.rejected.len(), 1, "{delivered:?}");
    assert_eq!(delivered.rejected[0].0, 7);
    assert!(delivered.rejected[0].1.contains("too large"), "{delivered:?}");

    // A broker that refuses a record as too large (a topic whose
    // max.message.bytes is below the producer's): rejected too.
    let alone = events(200, 1, 1, false);
    cluster.request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE],
    );
    let delivered = kafka.send(&alone).await.unwrap();
    assert_eq!(delivered.rejected.len(), 1, "{delivered:?}");
    assert!(delivered.rejected[0].1.contains("too large"), "{delivered:?}");

    // And the producer goes on.
    let after = events(300, 10, 2, false);
    assert_eq!(kafka.send(&after).await, Ok(Default::default()));

    let kept: Vec<Event> = batch
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 7)
        .map(|(_, e)| e.clone())
        .chain(after)
        .collect();
    assert_exactly(&read_back(bootstrap, topic.into(), 3).await, &kept);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_errors_are_retryable_and_a_fatal_error_makes_a_new_producer() {
    let topic = "audit-cluster";
    let cluster = cluster(1, topic, 1);
    let bootstrap = cluster.bootstrap_servers();
    let kafka = sink(&bootstrap, topic);
    let first = events(0, 5, 1, false);
    kafka.send(&first).await.unwrap();

    // A sequence desynchronisation is fatal to an idempotent producer: the
    // batch is retryable, and the next send has a new producer.
    cluster.request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER],
    );
    let second = events(5, 5, 1, false);
    let err = kafka.send(&second).await.unwrap_err();
    assert!(
        matches!(&err, SendError::Retryable { reason, .. } if reason.contains("fatal")),
        "{err:?}"
    );
    assert_eq!(kafka.send(&second).await, Ok(Default::default()));

    // Refused authorisation on the topic: the events wait for the operator.
    let denied = "audit-denied";
    cluster.create_topic(denied, 1, 1).unwrap();
    cluster
        .topic_error(denied, RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED)
        .unwrap();
    let other = sink(&bootstrap, denied);
    let err = tokio::time::timeout(Duration::from_secs(10), other.send(&events(10, 3, 1, false)))
        .await
        .expect("an answer")
        .unwrap_err();
    assert!(
        matches!(&err, SendError::Retryable { reason, .. } if reason.contains("not authorised to write to topic `audit-denied`")),
        "{err:?}"
    );

    // A topic that does not exist (and is not auto-created): the same.
    let missing = "audit-missing";
    cluster
        .topic_error(missing, RDKafkaRespErr::RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
        .unwrap();
    let nowhere = sink_with(
        &bootstrap,
        missing,
        &[("topic.metadata.propagation.max.ms", "500")],
        None,
    );
    let err = tokio::time::timeout(Duration::from_secs(10), nowhere.send(&events(20, 3, 1, false)))
        .await
        .expect("an answer")
        .unwrap_err();
    assert!(
        matches!(&err, SendError::Retryable { reason, .. } if reason.contains("topic `audit-missing` does not exist")),
        "{err:?}"
    );

    // The first topic holds each event once (the failed batch's records
    // never reached the log).
    let all: Vec<Event> = [first, second].concat();
    assert_exactly(&read_back(bootstrap, topic.into(), 1).await, &all);
}

#[test]
fn the_safety_settings_cannot_be_overridden() {
    let make = |props: &[(&str, &str)]| {
        KafkaSink::new(KafkaConfig {
            brokers: "127.0.0.1:1".into(),
            topic: "audit".into(),
            properties: props.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            timeout: None,
        })
    };
    for (name, value) in [
        ("acks", "1"),
        ("request.required.acks", "0"),
        ("topic.acks", "1"),
        ("enable.idempotence", "false"),
        ("message.timeout.ms", "300000"),
        ("delivery.timeout.ms", "5000"),
        ("topic.message.timeout.ms", "5000"),
        ("retries", "0"),
        ("message.send.max.retries", "3"),
        ("transactional.id", "warden"),
        ("queuing.strategy", "lifo"),
        ("delivery.report.only.error", "true"),
        ("partitioner", "random"),
        ("test.mock.num.brokers", "3"),
        ("bootstrap.servers", "elsewhere:9092"),
        (" Acks ", "all"),
    ] {
        let err = make(&[(name, value)]).unwrap_err();
        assert!(
            matches!(&err, KafkaConfigError::Reserved { property, .. } if property == name),
            "{name}={value}: {err:?}"
        );
        assert!(err.to_string().contains(name.trim()), "{err}");
    }
    // Everything else is librdkafka's to judge.
    make(&[
        ("partitioner", "murmur2_random"),
        ("compression.type", "lz4"),
        ("client.id", "warden"),
        ("security.protocol", "ssl"),
    ])
    .expect("allowed settings, TLS built in");
    assert!(matches!(
        make(&[("no.such.property", "1")]),
        Err(KafkaConfigError::Client(_))
    ));
    assert!(matches!(
        make(&[("message.max.bytes", "lots")]),
        Err(KafkaConfigError::Invalid(_))
    ));
    let limits = make(&[]).unwrap().limits();
    assert_eq!(
        (limits.max_events, limits.max_event_bytes),
        (1_000, 1_000_000 - RECORD_OVERHEAD)
    );
    let bad_topic = KafkaSink::new(KafkaConfig {
        brokers: "127.0.0.1:1".into(),
        topic: "audit events".into(),
        properties: vec![],
        timeout: None,
    });
    assert!(matches!(bad_topic, Err(KafkaConfigError::Invalid(_))));
}

fn tenant_sink(brokers: &str, topic: &str, egress: warden_sinks::egress::Egress) -> KafkaSink {
    KafkaSink::new_with_egress(
        KafkaConfig {
            brokers: brokers.into(),
            topic: topic.into(),
            properties: quick(),
            timeout: Some(Duration::from_secs(10)),
        },
        Some(Arc::new(egress)),
    )
    .expect("a tenant's Kafka sink")
}

/// A tenant's sink checks its brokers before it makes a client: the mock
/// cluster is on loopback, which only the operator's allowlist opens, and
/// the brokers the cluster advertises are held to the same policy as the
/// bootstrap list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_sink_reaches_only_the_brokers_its_egress_policy_allows() {
    use warden_sinks::egress::Egress;
    let c = cluster(1, "audit", 1);
    let bootstrap = c.bootstrap_servers();
    let batch = events(0, 5, 2, false);

    let refused = tenant_sink(&bootstrap, "audit", Egress::default());
    match refused.send(&batch).await {
        Err(SendError::Retryable { reason, .. }) => {
            assert_eq!(reason, "egress refused: 127.0.0.1 is loopback")
        }
        other => panic!("{other:?}"),
    }
    // The bootstrap name is allowed, but the brokers the cluster
    // advertises (loopback addresses) are not.
    let port = bootstrap.rsplit_once(':').unwrap().1;
    let by_name = tenant_sink(
        &format!("localhost:{port}"),
        "audit",
        Egress::new(&[], &["localhost".into()]).unwrap(),
    );
    match by_name.send(&batch).await {
        Err(SendError::Retryable { reason, .. }) => {
            assert!(reason.starts_with("egress refused: advertised broker "), "{reason}");
            assert!(reason.ends_with(" is loopback"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert!(
        read_back(bootstrap.clone(), "audit".into(), 1).await.is_empty(),
        "nothing was produced"
    );

    let allowed = tenant_sink(&bootstrap, "audit", Egress::new(&["127.0.0.0/8".into()], &[]).unwrap());
    assert_eq!(allowed.send(&batch).await, Ok(warden_sinks::Delivered::all()));
    assert_exactly(&read_back(bootstrap, "audit".into(), 1).await, &batch);
}
