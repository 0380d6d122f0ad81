//! Contact CSV import and export through the gateway, in front of the real messaging service:
//! the file streams in as the request body with its options in the query, refused rows are
//! listed in the caller's language, a dry run writes nothing, and the export streams the book
//! back. Wrong types, oversized files and other workspaces' imports are refused.

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE};
use serde_json::{Value, json};

use crate::auth::{PASSWORD, Stack, email, stack_messaging};
use crate::support::client;

/// A new user whose language setting is `locale`.
async fn signed_in_as(s: &Stack, tag: &str, locale: &str) -> String {
    let body = json!({"email": email(tag), "password": PASSWORD, "name": "Ana Silva", "locale": locale});
    let (status, signed) = s.post("/v1/auth/signup", None, body).await;
    assert_eq!(status, 201, "{signed}");
    signed["access_token"].as_str().unwrap().to_owned()
}

async fn read(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// POST a CSV import; `query` is appended to the path as it is.
async fn import(s: &Stack, token: &str, query: &[(&str, &str)], content_type: &str, csv: &str) -> (u16, Value) {
    let resp = client()
        .post(format!("{}/v1/contacts/imports", s.base))
        .query(query)
        .bearer_auth(token)
        .header("accept-language", "en")
        .header(CONTENT_TYPE, content_type)
        .body(csv.to_owned())
        .send()
        .await
        .unwrap();
    read(resp).await
}

async fn get(s: &Stack, token: &str, path: &str) -> (u16, Value) {
    let resp =
        client().get(format!("{}{path}", s.base)).bearer_auth(token).header("accept-language", "en").send().await;
    read(resp.unwrap()).await
}

async fn count(s: &Stack, sql: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned())).fetch_one(&s.db.admin_pool().await).await.unwrap()
}

#[tokio::test]
async fn a_csv_imports_with_its_bad_row_explained_and_exports_back() {
    let s = stack_messaging().await;
    let token = signed_in_as(&s, "importer", "es").await;

    // A dry run reports what the import would do and writes no contact.
    let csv = "Nome,Celular,E-mail\n\
               Ana Silva,+55 11 98765-4321,ana@example.com\n\
               Bruno Costa,12,bruno@example.com\n\
               Carla Dias,+55 21 99876-5432,carla@example.com\n";
    let mapping = r#"{"Nome":"name","Celular":"phone","E-mail":"email"}"#;
    let (status, dry) =
        import(&s, &token, &[("dry_run", "true"), ("mapping", mapping)], "text/csv; charset=utf-8", csv).await;
    assert_eq!(status, 201, "{dry}");
    assert_eq!((dry["dry_run"].as_bool(), dry["status"].as_str()), (Some(true), Some("succeeded")), "{dry}");
    assert_eq!(
        (dry["total_rows"].as_i64(), dry["created"].as_i64(), dry["failed"].as_i64()),
        (Some(3), Some(2), Some(1))
    );
    assert_eq!(count(&s, "SELECT count(*) FROM messaging.contacts").await, 0, "a dry run wrote contacts");

    // The real run, with tags and consent from the query.
    let query = [
        ("mapping", mapping),
        ("tags", "fair-2026, newsletter"),
        ("consent_channel", "whatsapp"),
        ("consent_purpose", "marketing"),
        ("consent_source", "fair-2026"),
    ];
    let (status, done) = import(&s, &token, &query, "text/csv", csv).await;
    assert_eq!(status, 201, "{done}");
    assert_eq!(done["dry_run"], false);
    assert_eq!(
        (done["total_rows"].as_i64(), done["created"].as_i64(), done["failed"].as_i64()),
        (Some(3), Some(2), Some(1))
    );
    assert!(done["finished_at"].is_string(), "{done}");
    let id = done["id"].as_str().unwrap();

    let (status, again) = get(&s, &token, &format!("/v1/contacts/imports/{id}")).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!((again["id"].as_str(), again["created"].as_i64()), (Some(id), Some(2)));

    // The bad row by line (the header is line 1), explained in the user's language (Spanish),
    // whatever the request's Accept-Language.
    let (status, errors) = get(&s, &token, &format!("/v1/contacts/imports/{id}/errors?limit=10")).await;
    assert_eq!(status, 200, "{errors}");
    let items = errors["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{errors}");
    let e = &items[0];
    assert_eq!(
        (e["line"].as_i64(), e["field"].as_str(), e["code"].as_str()),
        (Some(3), Some("phone"), Some("messaging.invalid_phone"))
    );
    assert!(e["message"].as_str().unwrap().starts_with("Este número de teléfono no es válido"), "{e}");
    assert!(errors["next_cursor"].is_null());

    let (status, found) = get(&s, &token, "/v1/contacts?q=ana%40example.com").await;
    assert_eq!(status, 200, "{found}");
    let ana = &found["items"][0];
    assert_eq!((ana["name"].as_str(), ana["phone"].as_str()), (Some("Ana Silva"), Some("+5511987654321")));
    assert_eq!(ana["tags"], json!(["fair-2026", "newsletter"]));
    assert_eq!(
        (ana["consents"][0]["channel"].as_str(), ana["consents"][0]["source"].as_str()),
        (Some("whatsapp"), Some("fair-2026"))
    );

    // The export streams the book back as a CSV attachment.
    let resp = client().get(format!("{}/v1/contacts/export", s.base)).bearer_auth(&token).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()[CONTENT_TYPE], "text/csv; charset=utf-8");
    let disposition = resp.headers()["content-disposition"].to_str().unwrap().to_owned();
    assert!(disposition.starts_with("attachment; filename=\"contacts-"), "{disposition}");
    let body = resp.text().await.unwrap();
    let lines: Vec<&str> = body.lines().collect();
    assert!(lines[0].starts_with("name,phone,email,language,tags,stage,source,owner_id"), "{body}");
    assert_eq!(lines.len(), 3, "header and the two imported contacts: {body}");
    // Cells starting with `+` are quoted for spreadsheets, which would run them as formulas.
    assert!(
        lines[1..].iter().any(|l| l.starts_with("Ana Silva,'+5511987654321,ana@example.com,,fair-2026; newsletter,")),
        "{body}"
    );
    assert!(lines[1..].iter().any(|l| l.starts_with("Carla Dias,'+5521998765432,carla@example.com,")), "{body}");
    assert!(!body.contains("bruno"), "{body}");

    // What was exported imports again as updates of the same contacts.
    let (status, back) = import(&s, &token, &[], "text/csv", &body).await;
    assert_eq!(status, 201, "{back}");
    assert_eq!(
        (back["created"].as_i64(), back["updated"].as_i64(), back["failed"].as_i64()),
        (Some(0), Some(2), Some(0))
    );

    // A segment's export holds only its contacts.
    let resp = client()
        .post(format!("{}/v1/contacts", s.base))
        .bearer_auth(&token)
        .json(&json!({"name": "Dora Lima", "email": "dora@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let resp = client()
        .post(format!("{}/v1/segments", s.base))
        .bearer_auth(&token)
        .json(&json!({"name": "Newsletter", "filter": {"tag": "newsletter"}}))
        .send()
        .await
        .unwrap();
    let (status, segment) = read(resp).await;
    assert_eq!(status, 201, "{segment}");
    let segment_id = segment["id"].as_str().unwrap();
    let resp = client()
        .get(format!("{}/v1/contacts/export?segment_id={segment_id}", s.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let part = resp.text().await.unwrap();
    assert_eq!(part.lines().count(), 3, "{part}");
    assert!(part.contains("ana@example.com") && !part.contains("dora@example.com"), "{part}");

    // Another workspace sees neither the import, the segment nor the contacts.
    let other = signed_in_as(&s, "outsider", "en").await;
    let (status, none) = get(&s, &other, &format!("/v1/contacts/export?segment_id={segment_id}")).await;
    assert_eq!(status, 404, "{none}");
    let (status, none) = get(&s, &other, &format!("/v1/contacts/imports/{id}")).await;
    assert_eq!((status, none["error"]["code"].as_str()), (404, Some("messaging.import_not_found")), "{none}");
    let (status, none) = get(&s, &other, &format!("/v1/contacts/imports/{id}/errors")).await;
    assert_eq!((status, none["error"]["code"].as_str()), (404, Some("messaging.import_not_found")), "{none}");
    let resp = client().get(format!("{}/v1/contacts/export", s.base)).bearer_auth(&other).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let theirs = resp.text().await.unwrap();
    assert_eq!(theirs.lines().count(), 1, "only the header: {theirs}");
}

#[tokio::test]
async fn wrong_types_oversized_files_and_bad_options_import_nothing() {
    let s = stack_messaging().await;
    let token = signed_in_as(&s, "careless", "en").await;
    let csv = "name,email\nAna,ana@example.com\n";

    for ct in ["application/json", "text/plain", "text/csv; charset=latin1"] {
        let (status, body) = import(&s, &token, &[], ct, csv).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (415, Some("request.unsupported_media_type")),
            "{ct}: {body}"
        );
    }
    let resp =
        client().post(format!("{}/v1/contacts/imports", s.base)).bearer_auth(&token).body(csv).send().await.unwrap();
    assert_eq!(resp.status(), 415, "no content type");

    // Bad options are refused before any row is read.
    for (query, code) in [
        (vec![("mapping", "{not json")], "request.invalid_query"),
        (vec![("dryrun", "true")], "request.invalid_query"),
        (vec![("dry_run", "maybe")], "request.invalid_query"),
        (vec![("mapping", r#"{"name":"fields.nope"}"#)], "messaging.unknown_field"),
        (vec![("consent_channel", "pigeon"), ("consent_purpose", "marketing")], "messaging.invalid_channel"),
    ] {
        let (status, body) = import(&s, &token, &query, "text/csv", csv).await;
        assert_eq!(status, 400, "{query:?}: {body}");
        assert_eq!(body["error"]["code"].as_str(), Some(code), "{query:?}: {body}");
    }

    // Declared over the limit: refused at once, before the body is read.
    let one_chunk = futures::stream::once(async { Ok::<_, std::io::Error>(Bytes::from_static(b"name\nAna\n")) })
        .chain(futures::stream::pending());
    let resp = tokio::time::timeout(
        Duration::from_secs(10),
        client()
            .post(format!("{}/v1/contacts/imports", s.base))
            .bearer_auth(&token)
            .header(CONTENT_TYPE, "text/csv")
            .header(CONTENT_LENGTH, (64 * 1024 * 1024 + 1).to_string())
            .body(reqwest::Body::wrap_stream(one_chunk))
            .send(),
    )
    .await
    .expect("a declared oversized body is answered without reading it")
    .unwrap();
    let (status, body) = read(resp).await;
    assert_eq!((status, body["error"]["code"].as_str()), (413, Some("messaging.import_too_large")), "{body}");

    // Sent without a length: the gateway passes the limit's worth and the service refuses the
    // file (one row whose only cell never ends).
    let big = futures::stream::once(async { Ok::<_, std::io::Error>(Bytes::from_static(b"name\n\"")) })
        .chain(futures::stream::iter((0..65).map(|_| Ok(Bytes::from(vec![b'a'; 1024 * 1024])))));
    let resp = client()
        .post(format!("{}/v1/contacts/imports", s.base))
        .bearer_auth(&token)
        .header(CONTENT_TYPE, "text/csv")
        .body(reqwest::Body::wrap_stream(big))
        .send()
        .await
        .unwrap();
    let (status, body) = read(resp).await;
    assert_eq!((status, body["error"]["code"].as_str()), (413, Some("messaging.import_too_large")), "{body}");

    // An upload that breaks off imports nothing, though its first rows arrived whole: a file
    // cut short is never taken for the whole file.
    let cut = futures::stream::once(async {
        Ok(Bytes::from_static(b"name,email\nAna,ana@example.com\nBia,bia@example.com\n"))
    })
    .chain(futures::stream::once(async {
        // Late enough for the rows to have reached the service.
        tokio::time::sleep(Duration::from_millis(500)).await;
        Err(std::io::Error::other("the client's disk failed"))
    }));
    let sent = client()
        .post(format!("{}/v1/contacts/imports", s.base))
        .bearer_auth(&token)
        .header(CONTENT_TYPE, "text/csv")
        .body(reqwest::Body::wrap_stream(cut))
        .send()
        .await;
    assert!(sent.is_err() || sent.is_ok_and(|r| r.status() == 400), "a broken upload is not a success");
    let mut failed = 0;
    for _ in 0..100 {
        failed = count(&s, "SELECT count(*) FROM messaging.imports WHERE status = 'failed'").await;
        if failed == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(failed, 2, "the oversized file and the broken upload are recorded as failed");

    assert_eq!(count(&s, "SELECT count(*) FROM messaging.contacts").await, 0);
    assert_eq!(
        count(&s, "SELECT count(*) FROM messaging.imports WHERE status <> 'failed'").await,
        0,
        "only the refused uploads were recorded, as failed"
    );

    // Unknown and malformed import ids.
    let (status, body) = get(&s, &token, "/v1/contacts/imports/0192f0c5-c2b8-7c31-a1f1-e4f2b1a0c9d7").await;
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("messaging.import_not_found")), "{body}");
    let (status, _) = get(&s, &token, "/v1/contacts/imports/nope/errors").await;
    assert_eq!(status, 404);
    let (status, body) = get(&s, &token, "/v1/contacts/export?segment_id=0192f0c5-c2b8-7c31-a1f1-e4f2b1a0c9d7").await;
    assert_eq!(status, 404, "{body}");

    // Nothing without a caller.
    let resp = client()
        .post(format!("{}/v1/contacts/imports", s.base))
        .header(CONTENT_TYPE, "text/csv")
        .body(csv)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
}
