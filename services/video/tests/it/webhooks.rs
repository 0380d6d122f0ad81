//! D-ID webhooks: a job finishes when its talk reports back, and forged or replayed deliveries
//! change nothing.

use std::collections::HashMap;
use std::time::Duration;

use nexus_kernel::WorkspaceId;
use nexus_proto::nexus::webhooks::v1::DeliverWebhookRequest;
use nexus_testkit::did::Completion;

use crate::support::{self, request};

fn delivery(query: &str, body: &serde_json::Value) -> DeliverWebhookRequest {
    DeliverWebhookRequest {
        provider: "d-id".into(),
        method: "POST".into(),
        query: query.into(),
        headers: HashMap::new(),
        body: serde_json::to_vec(body).unwrap(),
    }
}

#[tokio::test]
async fn a_webhook_finishes_the_job_and_forgeries_change_nothing() {
    // A long poll interval: only the webhook can finish the job within the test.
    let s = support::start_with(&[
        ("NEXUS_PIPELINE__TALK_POLL", "1h".into()),
        ("NEXUS_PIPELINE__WEBHOOK_BASE", "https://api.example.com/webhooks".into()),
    ])
    .await;
    let token = s.owner(WorkspaceId::new());
    s.did.set_completion(Completion::Webhook);
    let v = s.create(&token, request("Webhook me")).await.unwrap();
    assert!(nexus_testkit::eventually(Duration::from_secs(10), || async { s.did.talks_for(&v.id) == 1 }).await);
    s.wait_for(&token, &v.id, "rendering").await;
    let talk = s.did.talks()[0].clone();
    let secret: String =
        sqlx::query_scalar("SELECT webhook_token FROM video.videos").fetch_one(&s.admin().await).await.unwrap();

    // Forged: a wrong token, even with a body claiming success, changes nothing.
    let mut forged_body = talk.clone();
    forged_body["status"] = "done".into();
    forged_body["result_url"] = "https://evil.example.com/x.mp4".into();
    for query in [format!("video={}&token=wrong", v.id), format!("video={}", v.id), "token=x".into(), String::new()] {
        let answer = s.webhooks().deliver(delivery(&query, &forged_body)).await.unwrap().into_inner();
        assert_eq!(answer.status, 400, "{query}");
    }
    // A right token, but D-ID says the talk still runs: the body is not believed.
    let answer = s.webhooks().deliver(delivery(&format!("video={}&token={secret}", v.id), &forged_body)).await.unwrap();
    assert_eq!(answer.into_inner().status, 200);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(s.get(&token, &v.id).await.status, "rendering");

    // The real delivery (the fake posts to an address we do not serve; hand it over as the
    // gateway would) after D-ID finished the talk.
    s.did.finish(talk["id"].as_str().unwrap()).await;
    let real = s.did.talk(talk["id"].as_str().unwrap()).unwrap();
    let query = format!("video={}&token={secret}", v.id);
    let answer = s.webhooks().deliver(delivery(&query, &real)).await.unwrap().into_inner();
    assert_eq!(answer.status, 200);
    let done = s.wait_for(&token, &v.id, "done").await;
    assert_eq!(done.size_bytes, 64 * 1024, "the file D-ID made, not the forged URL");
    // Replayed: nothing changes.
    let answer = s.webhooks().deliver(delivery(&query, &real)).await.unwrap().into_inner();
    assert_eq!(answer.status, 200);
    let body: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(body["applied"], false);
    assert_eq!(s.get(&token, &v.id).await, done);
    assert_eq!(s.did.talks_for(&v.id), 1);
    // Other providers are not ours.
    let mut other = delivery(&query, &real);
    other.provider = "stripe".into();
    assert_eq!(s.webhooks().deliver(other).await.unwrap_err().code(), tonic::Code::NotFound);
}
