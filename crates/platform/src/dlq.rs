//! Operator access to dead letters: list what failed and why, and send messages back to their
//! original subject once the cause is fixed. Served by every binary as `nexus.ops.v1.DeadLetters`,
//! to service tokens only (an operator's tool exchanges a service credential): end-user tokens,
//! API keys and anonymous calls are refused.

use async_nats::jetstream::stream::Stream;
use nexus_proto::ops::dead_letters_server::{DeadLetters, DeadLettersServer};
use nexus_proto::ops::{
    DeadLetter, ListDeadLettersRequest, ListDeadLettersResponse, ReplayDeadLettersRequest, ReplayDeadLettersResponse,
};
use tonic::{Request, Response, Status};

use crate::bus::Bus;
use crate::consumer::{DLQ_CONSUMER, DLQ_DELIVERIES, DLQ_ERROR, DLQ_ORIGINAL_SUBJECT};

#[derive(Clone)]
pub struct DeadLetterOps {
    bus: Bus,
}

impl DeadLetterOps {
    pub fn new(bus: Bus) -> Self {
        Self { bus }
    }

    pub fn server(bus: Bus) -> DeadLettersServer<DeadLetterOps> {
        DeadLettersServer::new(DeadLetterOps { bus })
    }

    async fn stream(&self) -> Result<Stream, Status> {
        self.bus.ensure_dlq_stream().await.map_err(|e| Status::unavailable(e.to_string()))
    }

    /// Reads dead letters in sequence order, optionally for one consumer.
    pub async fn list(&self, consumer: &str, limit: usize) -> Result<Vec<DeadLetter>, Status> {
        let mut stream = self.stream().await?;
        let info = stream.info().await.map_err(|e| Status::unavailable(e.to_string()))?;
        let (first, last) = (info.state.first_sequence, info.state.last_sequence);
        let mut out = Vec::new();
        if info.state.messages == 0 {
            return Ok(out);
        }
        for seq in first..=last {
            if out.len() >= limit {
                break;
            }
            let Ok(msg) = stream.get_raw_message(seq).await else {
                continue;
            };
            let header = |k: &str| msg.headers.get(k).map(|v| v.as_str().to_owned()).unwrap_or_default();
            if !consumer.is_empty() && header(DLQ_CONSUMER) != consumer {
                continue;
            }
            let event_id = <nexus_proto::events::Envelope as prost::Message>::decode(msg.payload.as_ref())
                .map(|e| e.event_id)
                .unwrap_or_default();
            out.push(DeadLetter {
                sequence: seq,
                consumer: header(DLQ_CONSUMER),
                original_subject: header(DLQ_ORIGINAL_SUBJECT),
                event_id,
                error: header(DLQ_ERROR),
                deliveries: header(DLQ_DELIVERIES).parse().unwrap_or(0),
                failed_at: Some(prost_types::Timestamp {
                    seconds: msg.time.unix_timestamp(),
                    nanos: i32::try_from(msg.time.nanosecond()).unwrap_or(0),
                }),
            });
        }
        Ok(out)
    }

    /// Re-publishes dead letters to their original subject and removes them from the DLQ. The
    /// event keeps its id, so consumers that had applied it elsewhere skip it.
    pub async fn replay(&self, consumer: &str, sequences: &[u64]) -> Result<u32, Status> {
        let letters = self.list(consumer, usize::MAX).await?;
        let stream = self.stream().await?;
        let mut replayed = 0;
        for letter in letters.into_iter().filter(|l| sequences.is_empty() || sequences.contains(&l.sequence)) {
            let msg = stream.get_raw_message(letter.sequence).await.map_err(|e| Status::unavailable(e.to_string()))?;
            let mut headers = async_nats::HeaderMap::new();
            headers.insert("Nats-Msg-Id", format!("replay:{}:{}", letter.consumer, letter.sequence).as_str());
            let ack = self
                .bus
                .js
                .publish_with_headers(self.bus.subject(&letter.original_subject), headers, msg.payload.clone())
                .await
                .map_err(|e| Status::unavailable(e.to_string()))?;
            ack.await.map_err(|e| Status::unavailable(e.to_string()))?;
            stream.delete_message(letter.sequence).await.map_err(|e| Status::unavailable(e.to_string()))?;
            replayed += 1;
        }
        Ok(replayed)
    }
}

#[tonic::async_trait]
impl DeadLetters for DeadLetterOps {
    async fn list(&self, req: Request<ListDeadLettersRequest>) -> Result<Response<ListDeadLettersResponse>, Status> {
        crate::identity::principal(&req)?.require_internal()?;
        let r = req.into_inner();
        let limit = if r.limit == 0 { 100 } else { r.limit.min(1000) } as usize;
        Ok(Response::new(ListDeadLettersResponse { items: self.list(&r.consumer, limit).await? }))
    }

    async fn replay(
        &self,
        req: Request<ReplayDeadLettersRequest>,
    ) -> Result<Response<ReplayDeadLettersResponse>, Status> {
        crate::identity::principal(&req)?.require_internal()?;
        let r = req.into_inner();
        if r.consumer.is_empty() {
            return Err(Status::invalid_argument("consumer is required"));
        }
        Ok(Response::new(ReplayDeadLettersResponse { replayed: self.replay(&r.consumer, &r.sequences).await? }))
    }
}
