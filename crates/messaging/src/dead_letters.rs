//! What an operator does with parked messages: list them, and replay them
//! to the subject they came from once the cause is fixed. Behind
//! `<service> dead-letters list [CONSUMER]` and
//! `<service> dead-letters replay SEQ|all [CONSUMER]`.
//!
//! A replay publishes the original envelope again (a new `Nats-Msg-Id`, so
//! publisher dedup lets it through) and then deletes the dead letter.
//! Consumers that had handled it find it in their inbox and skip it; the one
//! that parked it handles it (or parks it again).

use async_nats::jetstream::{self, message::PublishMessage};
use prost::Message;

use crate::{Envelope, NatsConfig, streams};

/// One parked message.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    /// Its sequence in the dead-letter stream (what `replay` takes).
    pub seq: u64,
    pub consumer: String,
    /// The subject it was consumed from.
    pub subject: String,
    pub error: String,
    pub envelope: Envelope,
}

fn header(msg: &jetstream::message::StreamMessage, name: &str) -> String {
    msg.headers
        .get(name)
        .map(|v| v.as_str().to_owned())
        .unwrap_or_default()
}

/// The parked messages, oldest first, of `consumer` (all when `None`).
pub async fn list(
    js: &jetstream::Context,
    prefix: &str,
    consumer: Option<&str>,
) -> anyhow::Result<Vec<DeadLetter>> {
    let stream = streams::ensure_dead_letters(js, prefix).await?;
    let mut info = stream.clone();
    let state = info.info().await?.state.clone();
    let mut out = Vec::new();
    if state.messages == 0 {
        return Ok(out);
    }
    for seq in state.first_sequence..=state.last_sequence {
        // Deleted (replayed) sequences leave gaps.
        let Ok(msg) = stream.get_raw_message(seq).await else {
            continue;
        };
        let letter = DeadLetter {
            seq,
            consumer: header(&msg, "CityEvents-Consumer"),
            subject: header(&msg, "CityEvents-Subject"),
            error: header(&msg, "CityEvents-Error"),
            envelope: Envelope::decode(msg.payload.as_ref()).unwrap_or_default(),
        };
        if consumer.is_none_or(|c| c == letter.consumer) {
            out.push(letter);
        }
    }
    Ok(out)
}

/// Publishes `letter` to its subject again, then deletes it from the
/// dead-letter stream.
pub async fn replay(
    js: &jetstream::Context,
    prefix: &str,
    letter: &DeadLetter,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        !letter.subject.is_empty(),
        "dead letter {} has no subject to replay to",
        letter.seq
    );
    let mut msg = PublishMessage::build()
        .payload(letter.envelope.encode_to_vec().into())
        .message_id(format!("{}:replay:{}", letter.envelope.id, letter.seq));
    if !letter.envelope.traceparent.is_empty() {
        msg = msg.header("traceparent", letter.envelope.traceparent.as_str());
    }
    js.send_publish(letter.subject.clone(), msg).await?.await?;
    let stream = streams::ensure_dead_letters(js, prefix).await?;
    stream.delete_message(letter.seq).await?;
    Ok(())
}

/// `dead-letters list [CONSUMER]` / `dead-letters replay SEQ|all [CONSUMER]`.
pub async fn command(nats: &NatsConfig, args: &[String]) -> anyhow::Result<()> {
    let js = crate::connect(nats).await?;
    let prefix = &nats.stream_prefix;
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["list"] | ["list", _] => {
            let letters = list(&js, prefix, args.get(1).copied()).await?;
            for l in &letters {
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}",
                    l.seq, l.consumer, l.subject, l.envelope.r#type, l.envelope.id, l.error
                );
            }
            eprintln!("{} dead letter(s)", letters.len());
            Ok(())
        }
        ["replay", which] | ["replay", which, _] => {
            let letters = list(&js, prefix, args.get(2).copied()).await?;
            let chosen: Vec<&DeadLetter> = match *which {
                "all" => letters.iter().collect(),
                seq => {
                    let seq: u64 = seq
                        .parse()
                        .map_err(|_| anyhow::anyhow!("replay takes a sequence number or `all`"))?;
                    letters.iter().filter(|l| l.seq == seq).collect()
                }
            };
            anyhow::ensure!(!chosen.is_empty(), "no such dead letter");
            for l in &chosen {
                replay(&js, prefix, l).await?;
            }
            eprintln!("{} dead letter(s) replayed", chosen.len());
            Ok(())
        }
        _ => anyhow::bail!(
            "usage: dead-letters list [CONSUMER] | dead-letters replay SEQ|all [CONSUMER]"
        ),
    }
}
