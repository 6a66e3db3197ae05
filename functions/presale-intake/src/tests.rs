//! Handler tests with in-memory adapters: every route, role, tenant and error shape.

use backoffice_domain::catalog::CampaignCatalog;
use backoffice_domain::testing::{FixedClock, campaign_catalog};
use backoffice_edge::testing::{ApiEvent, LogCapture, Reply};
use backoffice_store::config::MemoryCampaignDirectory;
use backoffice_store::idempotency::MemoryIdempotencyStore;
use backoffice_store::presales::{AuditRead, CallLookup, MemoryPresaleStore, PresaleGet, WaitingRecordings};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::macros::datetime;

use super::*;

/// The instant every test of this module runs at.
const NOW: OffsetDateTime = datetime!(2026-11-23 15:00 UTC);

type TestIntake = Intake<MemoryPresaleStore, MemoryCampaignDirectory, MemoryIdempotencyStore, FixedClock>;

fn catalog(campaign_id: &str, client_id: &str, active: bool) -> CampaignCatalog {
    let mut catalog = campaign_catalog(campaign_id, client_id);
    catalog.campaign.active = active;
    catalog
}

fn intake() -> TestIntake {
    Intake {
        presales: MemoryPresaleStore::new(),
        campaigns: MemoryCampaignDirectory::with([
            catalog("acme-fibra", "acme", true),
            catalog("globex-tv", "globex", true),
            catalog("acme-old", "acme", false),
        ]),
        idempotency: MemoryIdempotencyStore::new(),
        clock: FixedClock::at(NOW),
    }
}

fn body(call_id: &str) -> Value {
    json!({
        "campaign_id": "acme-fibra",
        "call_id": call_id,
        "customer": {
            "document": {"type": "DNI", "number": "45678912"},
            "full_name": "María Quispe Huamán",
            "phone": "+51987654321",
            "address": {"line1": "Av. Arequipa 1234", "district": "Lince", "province": "Lima", "region": "Lima"}
        },
        "items": [{"sku": "FIB-300", "quantity": 1}]
    })
}

struct Call<'a> {
    route: &'a str,
    path: String,
    sub: &'a str,
    role: &'a str,
    clients: &'a str,
    body: Option<String>,
    headers: Vec<(&'a str, String)>,
    query: Vec<(&'a str, String)>,
    id: Option<String>,
}

fn call<'a>(route: &'a str, path: impl Into<String>) -> Call<'a> {
    Call {
        route,
        path: path.into(),
        sub: "agent-7",
        role: "agent",
        clients: "acme",
        body: None,
        headers: vec![],
        query: vec![],
        id: None,
    }
}

impl<'a> Call<'a> {
    fn who(mut self, sub: &'a str, role: &'a str, clients: &'a str) -> Self {
        (self.sub, self.role, self.clients) = (sub, role, clients);
        self
    }
    fn json(mut self, value: &Value) -> Self {
        self.body = Some(value.to_string());
        self
    }
    fn raw(mut self, text: &str) -> Self {
        self.body = Some(text.to_owned());
        self
    }
    fn header(mut self, name: &'a str, value: &str) -> Self {
        self.headers.push((name, value.to_owned()));
        self
    }
    fn query(mut self, name: &'a str, value: &str) -> Self {
        self.query.push((name, value.to_owned()));
        self
    }
    fn id(mut self, id: &str) -> Self {
        self.id = Some(id.to_owned());
        self
    }

    async fn send(self, intake: &TestIntake) -> (u16, Value, Vec<(String, String)>) {
        let mut event = ApiEvent::new(self.route)
            .path(&self.path)
            .who(self.sub, self.role, self.clients);
        for (name, value) in &self.headers {
            event = event.header(name, value);
        }
        for (name, value) in &self.query {
            event = event.query(name, value);
        }
        if let Some(id) = &self.id {
            event = event.param("id", id);
        }
        if let Some(body) = &self.body {
            event = event.raw(body);
        }
        let event = event.build();
        let invocation = Invocation::ending_after(NOW, 10);
        let response = intake.handle(event, &invocation).await;
        let reply = Reply::from(response);
        (reply.status, reply.body, reply.headers)
    }
}

fn problem_type(body: &Value) -> &str {
    body["type"]
        .as_str()
        .unwrap_or_default()
        .rsplit('/')
        .next()
        .unwrap_or_default()
}

async fn create(intake: &TestIntake, call_id: &str) -> Value {
    let (status, body, _) = call("POST /presales", "/presales")
        .json(&body(call_id))
        .send(intake)
        .await;
    assert_eq!(status, 201, "{body}");
    body
}

#[tokio::test]
async fn agent_registers_a_priced_presale_and_reads_it_back() {
    let intake = intake();
    let (status, created, headers) = call("POST /presales", "/presales")
        .json(&body("call-1"))
        .send(&intake)
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().expect("id");
    assert!(headers.contains(&("location".into(), format!("/presales/{id}"))));
    assert_eq!(created["status"], "PENDING_RECORDING");
    assert_eq!(created["agent_id"], "agent-7");
    assert_eq!(created["client_id"], "acme");
    assert_eq!(created["total"], json!({"amount": "149.90", "currency": "PEN"}));
    let (status, read, _) = call("GET /presales/{id}", format!("/presales/{id}"))
        .id(id)
        .send(&intake)
        .await;
    assert_eq!((status, &read), (200, &created));
    let trail = intake
        .presales
        .audit_trail(&PresaleId::parse(id).expect("id"))
        .await
        .expect("trail");
    assert_eq!(trail.len(), 1);
    assert_eq!(
        (trail[0].action.as_str(), trail[0].actor.as_str()),
        ("CREATED", "agent-7")
    );
}

#[tokio::test]
async fn the_agents_correlation_id_is_kept_with_the_presale_and_a_bad_one_is_refused() {
    let intake = intake();
    let (status, created, headers) = call("POST /presales", "/presales")
        .json(&body("call-corr"))
        .header("x-correlation-id", "agent-app:4711")
        .send(&intake)
        .await;
    assert_eq!(status, 201, "{created}");
    assert!(headers.contains(&("x-correlation-id".into(), "agent-app:4711".into())));
    let id = PresaleId::parse(created["id"].as_str().expect("id")).expect("a pre-sale id");
    let stored = intake.presales.get(&id).await.expect("read").expect("stored");
    assert_eq!(stored.presale.correlation_id(), "agent-app:4711");

    let (status, problem, _) = call("POST /presales", "/presales")
        .json(&body("call-corr-2"))
        .header("x-correlation-id", &"x".repeat(200))
        .send(&intake)
        .await;
    assert_eq!(
        (status, problem["field"].as_str()),
        (400, Some("X-Correlation-Id")),
        "{problem}"
    );
    assert!(
        intake
            .presales
            .find_by_call("acme", "call-corr-2")
            .await
            .expect("lookup")
            .is_none()
    );
}

#[tokio::test]
async fn a_refused_phone_never_reaches_the_logs() {
    let intake = intake();
    let logs = LogCapture::global();
    let mut bad_text = body("call-pii-1");
    bad_text["customer"]["phone"] = json!("+51 98765 4321x");
    let mut bad_type = body("call-pii-2");
    bad_type["customer"]["phone"] = json!(987654321_u64);
    for draft in [bad_text, bad_type] {
        let (status, problem, _) = call("POST /presales", "/presales")
            .json(&draft)
            .header("x-correlation-id", "pii-log-test")
            .send(&intake)
            .await;
        assert_eq!(status, 422, "{problem}");
        assert!(problem.to_string().contains("phone"), "{problem}");
    }
    let refused: Vec<Value> = logs
        .lines_where("correlation_id", "pii-log-test")
        .into_iter()
        .filter(|line| line["message"] == "request refused")
        .collect();
    assert_eq!(refused.len(), 2, "{}", logs.text());
    assert!(
        refused
            .iter()
            .all(|line| line["fields"].to_string().contains("customer.phone")),
        "{refused:?}"
    );
    // Nothing this process logged, by any test, carries those digits.
    let text = logs.text();
    assert!(
        !text.contains("98765") && !text.contains("4321"),
        "personal data in the logs: {text}"
    );
}

#[tokio::test]
async fn only_agents_register() {
    let intake = intake();
    for role in ["validator", "supervisor", "finance", "admin"] {
        let (status, body, _) = call("POST /presales", "/presales")
            .who("u1", role, "acme")
            .json(&body("c"))
            .send(&intake)
            .await;
        assert_eq!((status, problem_type(&body)), (403, "forbidden"), "{role}");
    }
    let (status, body, _) = call("POST /presales", "/presales")
        .who("u1", "", "acme")
        .json(&body("c"))
        .send(&intake)
        .await;
    assert_eq!((status, problem_type(&body)), (403, "forbidden"));
}

#[tokio::test]
async fn other_clients_and_inactive_campaigns_are_refused() {
    let intake = intake();
    let mut other = body("c1");
    other["campaign_id"] = json!("globex-tv");
    let (status, problem, _) = call("POST /presales", "/presales").json(&other).send(&intake).await;
    assert_eq!(
        (status, problem_type(&problem), problem["field"].as_str()),
        (422, "validation-error", Some("campaign_id"))
    );
    other["campaign_id"] = json!("acme-old");
    let (status, problem, _) = call("POST /presales", "/presales").json(&other).send(&intake).await;
    assert_eq!(
        (status, problem["errors"][0]["code"].as_str()),
        (422, Some("inactive_campaign"))
    );
}

#[tokio::test]
async fn bad_bodies_get_precise_problems() {
    let intake = intake();
    let cases: Vec<(String, u16, &str, Option<&str>)> = vec![
        ("{\"campaign_id\": ".into(), 400, "malformed-json", None),
        ("".into(), 400, "malformed-json", None),
        (
            {
                let mut b = body("c");
                b["surprise"] = json!(1);
                b.to_string()
            },
            422,
            "invalid-body",
            Some("surprise"),
        ),
        (
            {
                let mut b = body("c");
                b["items"][0]["quantity"] = json!("two");
                b.to_string()
            },
            422,
            "invalid-body",
            Some("items[0].quantity"),
        ),
        (
            {
                let mut b = body("c");
                b["customer"].as_object_mut().expect("object").remove("phone");
                b.to_string()
            },
            422,
            "invalid-body",
            Some("customer.phone"),
        ),
        (
            {
                let mut b = body("c");
                b["customer"]["document"]["number"] = json!("1234");
                b.to_string()
            },
            422,
            "validation-error",
            Some("customer.document.number"),
        ),
        (
            {
                let mut b = body("c");
                b["items"][0]["unit_price"] = json!({"amount": "100.00", "currency": "PEN"});
                b.to_string()
            },
            422,
            "validation-error",
            Some("items[0].unit_price"),
        ),
        (
            format!("{{\"notes\": \"{}\"}}", "x".repeat(70 * 1024)),
            413,
            "payload-too-large",
            None,
        ),
    ];
    for (text, status, kind, field) in cases {
        let (got, problem, headers) = call("POST /presales", "/presales").raw(&text).send(&intake).await;
        assert_eq!(
            (got, problem_type(&problem), problem["field"].as_str()),
            (status, kind, field),
            "{problem}"
        );
        assert!(headers.contains(&("content-type".into(), "application/problem+json".into())));
        assert_eq!(problem["status"], json!(status));
    }
    let (status, problem, _) = call("POST /presales", "/presales")
        .raw("{}")
        .header("content-type", "text/plain")
        .send(&intake)
        .await;
    assert_eq!((status, problem_type(&problem)), (415, "unsupported-media-type"));
    assert!(
        intake
            .presales
            .list(&PresaleQuery {
                campaign_id: "acme-fibra".into(),
                status: None,
                agent_id: None,
                created_before: None,
                limit: 100,
                cursor: None
            })
            .await
            .expect("list")
            .items
            .is_empty()
    );
}

#[tokio::test]
async fn idempotency_key_replays_and_refuses_other_bodies() {
    let intake = intake();
    let first = call("POST /presales", "/presales")
        .json(&body("call-9"))
        .header("idempotency-key", "k-1")
        .send(&intake)
        .await;
    assert_eq!(first.0, 201);
    let again = call("POST /presales", "/presales")
        .json(&body("call-9"))
        .header("idempotency-key", "k-1")
        .send(&intake)
        .await;
    assert_eq!((again.0, &again.1), (201, &first.1));
    assert!(again.2.contains(&("idempotent-replayed".into(), "true".into())));
    let (status, problem, _) = call("POST /presales", "/presales")
        .json(&body("call-10"))
        .header("idempotency-key", "k-1")
        .send(&intake)
        .await;
    assert_eq!((status, problem_type(&problem)), (422, "idempotency-key-reused"));
    // Without the key, the same call id is a conflict, not a second pre-sale.
    let (status, problem, _) = call("POST /presales", "/presales")
        .json(&body("call-9"))
        .send(&intake)
        .await;
    assert_eq!((status, problem_type(&problem)), (409, "duplicate-call-id"));
    assert_eq!(problem["current"]["presale_id"], first.1["id"]);
    let (status, problem, _) = call("POST /presales", "/presales")
        .json(&body("call-11"))
        .header("idempotency-key", "bad key with spaces")
        .send(&intake)
        .await;
    assert_eq!((status, problem["field"].as_str()), (400, Some("Idempotency-Key")));
}

#[tokio::test]
async fn an_idempotent_answer_is_never_replayed_to_a_token_for_other_clients() {
    let intake = intake();
    let first = call("POST /presales", "/presales")
        .json(&body("call-12"))
        .header("idempotency-key", "k-2")
        .send(&intake)
        .await;
    assert_eq!(first.0, 201);
    // The same agent, key and body, with a token that no longer lists acme.
    let (status, problem, headers) = call("POST /presales", "/presales")
        .json(&body("call-12"))
        .header("idempotency-key", "k-2")
        .who("agent-7", "agent", "globex")
        .send(&intake)
        .await;
    assert_eq!(
        (status, problem["field"].as_str()),
        (422, Some("campaign_id")),
        "the request runs, and its tenant check refuses it"
    );
    assert!(!headers.iter().any(|(name, _)| name == "idempotent-replayed"));
    assert!(
        problem.get("customer").is_none(),
        "nothing of the stored pre-sale leaks: {problem}"
    );
}

#[tokio::test]
async fn reads_are_scoped_to_client_and_agent() {
    let intake = intake();
    let created = create(&intake, "call-1").await;
    let id = created["id"].as_str().expect("id");
    let get = |sub, role, clients| {
        call("GET /presales/{id}", format!("/presales/{id}"))
            .id(id)
            .who(sub, role, clients)
    };
    assert_eq!(
        get("agent-8", "agent", "acme").send(&intake).await.0,
        404,
        "another agent"
    );
    assert_eq!(
        get("v-1", "validator", "globex").send(&intake).await.0,
        404,
        "another client"
    );
    assert_eq!(get("v-1", "validator", "acme").send(&intake).await.0, 200);
    assert_eq!(get("s-1", "supervisor", "globex acme").send(&intake).await.0, 200);
    let (status, problem, _) = call("GET /presales/{id}", "/presales/nope")
        .id("nope")
        .send(&intake)
        .await;
    assert_eq!((status, problem_type(&problem)), (404, "not-found"));
}

#[tokio::test]
async fn lists_by_campaign_and_status_with_a_cursor() {
    let intake = intake();
    for i in 0..5 {
        create(&intake, &format!("call-{i}")).await;
    }
    let list = |q: Vec<(&'static str, String)>| {
        let mut c = call("GET /presales", "/presales").who("s-1", "supervisor", "acme");
        for (k, v) in q {
            c = c.query(k, &v);
        }
        c
    };
    let (status, page1, _) = list(vec![("campaign", "acme-fibra".into()), ("limit", "3".into())])
        .send(&intake)
        .await;
    assert_eq!(status, 200);
    assert_eq!(page1["items"].as_array().map(Vec::len), Some(3));
    let cursor = page1["next_cursor"].as_str().expect("cursor").to_owned();
    let (_, page2, _) = list(vec![
        ("campaign", "acme-fibra".into()),
        ("limit", "3".into()),
        ("cursor", cursor),
    ])
    .send(&intake)
    .await;
    assert_eq!(page2["items"].as_array().map(Vec::len), Some(2));
    assert!(page2["next_cursor"].is_null());
    let (_, ready, _) = list(vec![
        ("campaign", "acme-fibra".into()),
        ("status", "READY_FOR_REVIEW".into()),
    ])
    .send(&intake)
    .await;
    assert_eq!(ready["items"], json!([]));
    for (query, field) in [
        (vec![], "campaign"),
        (
            vec![("campaign", "acme-fibra".to_owned()), ("status", "DONE".into())],
            "status",
        ),
        (
            vec![("campaign", "acme-fibra".to_owned()), ("limit", "0".into())],
            "limit",
        ),
        (
            vec![("campaign", "acme-fibra".to_owned()), ("stauts", "x".into())],
            "stauts",
        ),
    ] {
        let (status, problem, _) = list(query).send(&intake).await;
        assert_eq!((status, problem["field"].as_str()), (400, Some(field)));
    }
    let (status, _, _) = list(vec![("campaign", "globex-tv".into())]).send(&intake).await;
    assert_eq!(status, 404, "another client's campaign");
    let (_, own, _) = call("GET /presales", "/presales")
        .who("agent-8", "agent", "acme")
        .query("campaign", "acme-fibra")
        .send(&intake)
        .await;
    assert_eq!(own["items"], json!([]), "agents list only their own");
}

#[tokio::test]
async fn corrections_only_when_returned_and_only_by_the_agent() {
    let intake = intake();
    let created = create(&intake, "call-1").await;
    let id = created["id"].as_str().expect("id");
    let patch = json!({"items": [{"sku": "ROUTER", "quantity": 2}]});
    let correct = || {
        call("PATCH /presales/{id}", format!("/presales/{id}"))
            .id(id)
            .json(&patch)
    };
    let (status, problem, _) = correct().send(&intake).await;
    assert_eq!(
        (status, problem_type(&problem), &problem["current"]["status"]),
        (409, "invalid-state", &json!("PENDING_RECORDING"))
    );

    // Put it where a validator would have: returned for correction.
    let pid = PresaleId::parse(id).expect("id");
    let mut stored = intake.presales.get(&pid).await.expect("get").expect("exists");
    stored.presale.status = PresaleStatus::NeedsCorrection;
    stored.presale.version = 4;
    intake.presales.put_raw(stored);

    assert_eq!(
        correct().who("agent-8", "agent", "acme").send(&intake).await.0,
        404,
        "another agent"
    );
    assert_eq!(correct().who("v-1", "validator", "acme").send(&intake).await.0, 403);
    let (status, problem, _) = correct().header("if-match", "\"3\"").send(&intake).await;
    assert_eq!((status, problem_type(&problem)), (412, "precondition-failed"));
    let (status, problem, _) = call("PATCH /presales/{id}", format!("/presales/{id}"))
        .id(id)
        .json(&json!({}))
        .send(&intake)
        .await;
    assert_eq!(
        (status, problem["errors"][0]["code"].as_str()),
        (422, Some("empty_correction"))
    );
    let (status, body, headers) = correct().header("if-match", "\"4\"").send(&intake).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["status"].as_str(), body["version"].as_u64()),
        (Some("READY_FOR_REVIEW"), Some(5))
    );
    assert_eq!(body["total"]["amount"], "39.98");
    assert!(headers.contains(&("etag".into(), "\"5\"".into())));
    let (status, _, _) = correct().send(&intake).await;
    assert_eq!(status, 409, "a second correction finds it back in review");
}

#[tokio::test]
async fn a_correction_runs_every_check_again() {
    let intake = intake();
    // An earlier sale of the fibre to document 45678912.
    create(&intake, "call-earlier").await;
    // This call's recording is waiting when the pre-sale arrives, for another document.
    let recording = backoffice_domain::testing::clean_recording("acme", "acme-fibra", "call-20", NOW);
    intake.presales.put_recording(&recording).await.expect("stored");
    // As recording-ingest leaves it when no pre-sale holds the call yet.
    assert!(
        intake
            .presales
            .mark_waiting("acme", "call-20", NOW)
            .await
            .expect("marked")
    );
    let mut other = body("call-20");
    other["customer"]["document"]["number"] = json!("11223344");
    other["customer"]["phone"] = json!("+51911222333");
    let (status, created, _) = call("POST /presales", "/presales").json(&other).send(&intake).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["status"], "READY_FOR_REVIEW");
    assert!(
        created["findings"].as_array().is_none_or(|f| f.is_empty()),
        "another customer: nothing to flag: {created}"
    );

    // Returned for correction; the agent corrects the document to the earlier buyer's.
    let id = created["id"].as_str().expect("id");
    let pid = PresaleId::parse(id).expect("id");
    let mut stored = intake.presales.get(&pid).await.expect("get").expect("exists");
    stored.presale.status = PresaleStatus::NeedsCorrection;
    intake.presales.put_raw(stored);
    let mut customer = other["customer"].clone();
    customer["document"]["number"] = json!("45678912");
    let (status, corrected, _) = call("PATCH /presales/{id}", format!("/presales/{id}"))
        .id(id)
        .json(&json!({"customer": customer}))
        .send(&intake)
        .await;
    assert_eq!(status, 200, "{corrected}");
    let codes: Vec<&str> = corrected["findings"]
        .as_array()
        .map(|f| f.iter().filter_map(|f| f["code"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(
        codes,
        vec!["DUPLICATE_PURCHASE"],
        "the corrected customer is checked again"
    );
    assert!(corrected["risk_score"].as_u64().is_some_and(|r| r > 0));
    let trail = intake.presales.audit_trail(&pid).await.expect("trail");
    let last = trail.last().expect("records");
    assert_eq!(last.action, "CORRECTED");
    assert_eq!(last.details["findings"], json!(["DUPLICATE_PURCHASE"]));
}

#[tokio::test]
async fn presales_still_without_a_recording_after_the_allowance_are_listed_for_supervisors() {
    let intake = intake();
    let old = create(&intake, "call-old").await;
    // Forty minutes later, another one; an hour after the first, the first is stale.
    intake.clock.advance(time::Duration::minutes(40));
    let recent = create(&intake, "call-recent").await;
    intake.clock.advance(time::Duration::minutes(25));
    let stale = |who: (&'static str, &'static str)| {
        call("GET /presales", "/presales")
            .query("campaign", "acme-fibra")
            .query("stale", "true")
            .who(who.0, who.1, "acme")
    };
    let (status, body, _) = stale(("sup-1", "supervisor")).send(&intake).await;
    assert_eq!(status, 200, "{body}");
    let ids: Vec<&str> = body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|p| p["id"].as_str())
        .collect();
    assert_eq!(ids, vec![old["id"].as_str().expect("id")], "not {recent}");
    assert_eq!(stale(("agent-7", "agent")).send(&intake).await.0, 403);
    let (status, problem, _) = call("GET /presales", "/presales")
        .query("campaign", "acme-fibra")
        .query("stale", "yes")
        .who("sup-1", "supervisor", "acme")
        .send(&intake)
        .await;
    assert_eq!((status, problem["field"].as_str()), (400, Some("stale")));
}
