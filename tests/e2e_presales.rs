//! Pre-sale intake end to end: HTTP through the local gateway (JWT verified, API Gateway v2
//! events), the presale-intake binary under the Lambda Runtime API, DynamoDB in the emulator.

use e2e_tests::{Reply, TestEnv, caller, env, unique};
use serde_json::{Value, json};

fn presale_body(campaign: &str, call_id: &str) -> Value {
    json!({
        "campaign_id": campaign,
        "call_id": call_id,
        "call_started_at": "2026-11-20T10:15:00-05:00",
        "customer": {
            "document": {"type": "DNI", "number": "45678912"},
            "full_name": "María Quispe Huamán",
            "phone": "987 654 321",
            "email": "maria.quispe@example.pe",
            "address": {"line1": "Av. Arequipa 1234, Dpto 502", "district": "Lince", "province": "Lima", "region": "Lima", "postal_code": "15046"}
        },
        "items": [{"sku": "FIB-300", "quantity": 1}, {"sku": "ROUTER", "quantity": 2, "unit_price": {"amount": "19.99", "currency": "PEN"}}]
    })
}

struct Tenant {
    client: String,
    campaign: String,
}

async fn tenant(env: &TestEnv) -> Tenant {
    let client = unique("cli");
    let campaign = unique("camp");
    env.seed_campaign(&client, &campaign).await;
    Tenant { client, campaign }
}

async fn post(env: &TestEnv, who: &e2e_tests::Caller, body: &Value, key: Option<&str>) -> Reply {
    let mut request = env.as_caller(who, "POST", "/presales").json(body);
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    env.send(request).await
}

/// Items of the pre-sales table for one campaign, through its index (what a half-written
/// create would leave behind).
async fn campaign_items(env: &TestEnv, campaign: &str) -> usize {
    let output = env
        .dynamodb
        .query()
        .table_name(env.table("PresalesTable"))
        .index_name("by-campaign")
        .key_condition_expression("gsi1pk = :pk")
        .expression_attribute_values(
            ":pk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("CAMPAIGN#{campaign}")),
        )
        .send()
        .await
        .expect("query index");
    output.items.map(|i| i.len()).unwrap_or(0)
}

#[tokio::test]
async fn agent_creates_reads_and_lists_presales() {
    let env = env().await;
    let t = tenant(&env).await;
    let agent = caller("agent-7", "agent", &[&t.client]);
    let created = post(&env, &agent, &presale_body(&t.campaign, "call-0001"), None).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    let id = created.body["id"].as_str().expect("id").to_owned();
    assert_eq!(created.header("location"), Some(format!("/presales/{id}").as_str()));
    assert_eq!(created.body["status"], "PENDING_RECORDING");
    assert_eq!(created.body["customer"]["phone"], "+51987654321");
    assert_eq!(created.body["total"], json!({"amount": "189.88", "currency": "PEN"}));

    let read = env.send(env.as_caller(&agent, "GET", &format!("/presales/{id}"))).await;
    assert_eq!((read.status, &read.body), (200, &created.body));

    // What landed in DynamoDB: the pre-sale, its first audit record, the call id claim.
    let items = env.partition("PresalesTable", &format!("PRESALE#{id}")).await;
    let sks: Vec<&str> = items
        .iter()
        .filter_map(|i| i.get("sk").and_then(|v| v.as_s().ok()).map(String::as_str))
        .collect();
    assert_eq!(sks, vec!["AUDIT#0000000001", "META"]);
    assert_eq!(
        env.partition("PresalesTable", &format!("CALL#{}#call-0001", t.client))
            .await
            .len(),
        1
    );

    for i in 2..=4 {
        assert_eq!(
            post(&env, &agent, &presale_body(&t.campaign, &format!("call-000{i}")), None)
                .await
                .status,
            201
        );
    }
    let supervisor = caller("sup-1", "supervisor", &[&t.client]);
    let page1 = env
        .send(env.as_caller(
            &supervisor,
            "GET",
            &format!("/presales?campaign={}&limit=3", t.campaign),
        ))
        .await;
    assert_eq!(page1.status, 200, "{:?}", page1.body);
    let first: Vec<&str> = page1.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|p| p["call_id"].as_str())
        .collect();
    assert_eq!(first, vec!["call-0004", "call-0003", "call-0002"], "newest first");
    let cursor = page1.body["next_cursor"].as_str().expect("a next page");
    let page2 = env
        .send(env.as_caller(
            &supervisor,
            "GET",
            &format!("/presales?campaign={}&limit=3&cursor={cursor}", t.campaign),
        ))
        .await;
    let second: Vec<&str> = page2.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|p| p["call_id"].as_str())
        .collect();
    assert_eq!(second, vec!["call-0001"]);
    assert!(page2.body["next_cursor"].is_null());
    let by_status = env
        .send(env.as_caller(
            &supervisor,
            "GET",
            &format!("/presales?campaign={}&status=PENDING_RECORDING&limit=10", t.campaign),
        ))
        .await;
    assert_eq!(by_status.body["items"].as_array().map(Vec::len), Some(4));
    let none = env
        .send(env.as_caller(
            &supervisor,
            "GET",
            &format!("/presales?campaign={}&status=APPROVED", t.campaign),
        ))
        .await;
    assert_eq!(none.body["items"], json!([]));
    let tampered = env
        .send(env.as_caller(
            &supervisor,
            "GET",
            &format!("/presales?campaign={}&cursor=eyJwayI6IngifQ", t.campaign),
        ))
        .await;
    assert_eq!(
        (tampered.status, tampered.problem(), tampered.body["field"].as_str()),
        (400, "invalid-parameter", Some("cursor"))
    );
}

#[tokio::test]
async fn idempotent_retry_and_conflicting_retry() {
    let env = env().await;
    let t = tenant(&env).await;
    let agent = caller("agent-7", "agent", &[&t.client]);
    let key = unique("key");
    let body = presale_body(&t.campaign, "call-0100");
    let first = post(&env, &agent, &body, Some(&key)).await;
    assert_eq!(first.status, 201);
    let retry = post(&env, &agent, &body, Some(&key)).await;
    assert_eq!((retry.status, &retry.body), (201, &first.body));
    assert_eq!(retry.header("idempotent-replayed"), Some("true"));
    let other = post(&env, &agent, &presale_body(&t.campaign, "call-0101"), Some(&key)).await;
    assert_eq!((other.status, other.problem()), (422, "idempotency-key-reused"));
    assert_eq!(campaign_items(&env, &t.campaign).await, 1, "exactly one pre-sale");
    // Same call again under a new key: the call id is taken.
    let dup = post(&env, &agent, &body, Some(&unique("key"))).await;
    assert_eq!((dup.status, dup.problem()), (409, "duplicate-call-id"));
    assert_eq!(dup.body["current"]["presale_id"], first.body["id"]);
    assert_eq!(campaign_items(&env, &t.campaign).await, 1);
}

#[tokio::test]
async fn roles_and_tenants_are_enforced() {
    let env = env().await;
    let t = tenant(&env).await;
    let other = tenant(&env).await;
    let agent = caller("agent-7", "agent", &[&t.client]);
    let created = post(&env, &agent, &presale_body(&t.campaign, "call-0200"), None).await;
    let id = created.body["id"].as_str().expect("id").to_owned();

    let validator = caller("val-1", "validator", &[&t.client]);
    let refused = post(&env, &validator, &presale_body(&t.campaign, "call-0201"), None).await;
    assert_eq!((refused.status, refused.problem()), (403, "forbidden"));

    let stranger = caller("val-2", "validator", &[&other.client]);
    let hidden = env
        .send(env.as_caller(&stranger, "GET", &format!("/presales/{id}")))
        .await;
    assert_eq!((hidden.status, hidden.problem()), (404, "not-found"));
    let other_agent = caller("agent-8", "agent", &[&t.client]);
    assert_eq!(
        env.send(env.as_caller(&other_agent, "GET", &format!("/presales/{id}")))
            .await
            .status,
        404
    );
    let cross = post(
        &env,
        &caller("agent-9", "agent", &[&other.client]),
        &presale_body(&t.campaign, "call-0202"),
        None,
    )
    .await;
    assert_eq!(
        (cross.status, cross.problem(), cross.body["field"].as_str()),
        (422, "validation-error", Some("campaign_id"))
    );
    let list = env
        .send(env.as_caller(&stranger, "GET", &format!("/presales?campaign={}", t.campaign)))
        .await;
    assert_eq!(list.status, 404);

    // No token, a forged token: API Gateway's authorizer answers before any function runs.
    let anonymous = env.send(env.request("GET", &format!("/presales/{id}"))).await;
    assert_eq!(anonymous.status, 401);
    let forged = env
        .send(
            env.request("GET", &format!("/presales/{id}"))
                .bearer_auth("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"),
        )
        .await;
    assert_eq!(forged.status, 401);
    assert_eq!(campaign_items(&env, &t.campaign).await, 1);
    assert_eq!(campaign_items(&env, &other.campaign).await, 0);
}

#[tokio::test]
async fn bad_input_gets_exact_problems_and_writes_nothing() {
    let env = env().await;
    let t = tenant(&env).await;
    let agent = caller("agent-7", "agent", &[&t.client]);
    let good = presale_body(&t.campaign, "call-0300");
    let with = |f: &dyn Fn(&mut Value)| {
        let mut b = good.clone();
        f(&mut b);
        b.to_string()
    };
    let cases: Vec<(&str, String, u16, &str, Option<&str>)> = vec![
        (
            "malformed JSON",
            "{\"campaign_id\": \"x\",".into(),
            400,
            "malformed-json",
            None,
        ),
        ("not an object", "[]".into(), 422, "invalid-body", Some("")),
        (
            "unknown field",
            with(&|b| b["customer"]["nickname"] = json!("Mari")),
            422,
            "invalid-body",
            Some("customer.nickname"),
        ),
        (
            "wrong type",
            with(&|b| b["items"][0]["quantity"] = json!("one")),
            422,
            "invalid-body",
            Some("items[0].quantity"),
        ),
        (
            "missing field",
            with(&|b| {
                b.as_object_mut().map(|o| o.remove("call_id"));
            }),
            422,
            "invalid-body",
            Some("call_id"),
        ),
        (
            "bad DNI",
            with(&|b| b["customer"]["document"]["number"] = json!("4567891")),
            422,
            "validation-error",
            Some("customer.document.number"),
        ),
        (
            "bad RUC check digit",
            with(&|b| b["customer"]["document"] = json!({"type": "RUC", "number": "20100070971"})),
            422,
            "validation-error",
            Some("customer.document.number"),
        ),
        (
            "unknown SKU",
            with(&|b| b["items"][0]["sku"] = json!("NOPE")),
            422,
            "validation-error",
            Some("items[0].sku"),
        ),
        (
            "price differs from catalog",
            with(&|b| b["items"][1]["unit_price"]["amount"] = json!("9.99")),
            422,
            "validation-error",
            Some("items[1].unit_price"),
        ),
        (
            "oversize body",
            with(&|b| b["notes"] = json!("x".repeat(100 * 1024))),
            413,
            "payload-too-large",
            None,
        ),
    ];
    for (what, text, status, kind, field) in cases {
        let reply = env
            .send(
                env.as_caller(&agent, "POST", "/presales")
                    .header("content-type", "application/json")
                    .body(text),
            )
            .await;
        assert_eq!(
            (reply.status, reply.problem(), reply.body["field"].as_str()),
            (status, kind, field),
            "{what}: {:?}",
            reply.body
        );
        assert_eq!(reply.header("content-type"), Some("application/problem+json"), "{what}");
        assert_eq!(reply.body["status"], json!(status), "{what}");
        assert!(reply.body["detail"].as_str().is_some_and(|d| !d.is_empty()), "{what}");
    }
    let validation = env
        .send(env.as_caller(&agent, "POST", "/presales").json(&json!({
            "campaign_id": t.campaign, "call_id": "bad id", "customer": {"document": {"type": "DNI", "number": "1"}, "full_name": "X1",
            "phone": "12", "email": "no", "address": {"line1": "", "district": "L", "province": "Lima", "region": "Lima"}},
            "items": [{"sku": "FIB-300", "quantity": 0}]
        })))
        .await;
    let fields: Vec<&str> = validation.body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    assert_eq!(
        fields,
        vec![
            "call_id",
            "customer.document.number",
            "customer.full_name",
            "customer.phone",
            "customer.email",
            "customer.address.line1",
            "customer.address.district",
            "items[0].quantity"
        ]
    );
    assert_eq!(campaign_items(&env, &t.campaign).await, 0, "nothing half-written");
    assert!(
        env.partition("PresalesTable", &format!("CALL#{}#call-0300", t.client))
            .await
            .is_empty()
    );
}

/// The EMF documents presale-intake wrote that count registrations (one per invocation that
/// registered one).
fn registration_metrics(env: &TestEnv) -> Vec<Value> {
    let path = env.info.log_dir.join("PresaleIntakeFunction.log");
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|doc| doc.get("_aws").is_some() && doc.get("PresalesRegistered").is_some())
        .collect()
}

#[tokio::test]
async fn a_registration_is_counted_in_an_embedded_metric_format_document() {
    let env = env().await;
    let t = tenant(&env).await;
    let agent = caller("agent-emf", "agent", &[&t.client]);
    let before = registration_metrics(&env).len();
    let created = post(&env, &agent, &presale_body(&t.campaign, &unique("call")), None).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    // Written when the invocation ends; the gateway appends the function's stdout to its log.
    let started = std::time::Instant::now();
    let docs = loop {
        let docs = registration_metrics(&env);
        if docs.len() > before {
            break docs;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "no new EMF document after a registration"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    let doc = docs.last().expect("a document");
    let directive = &doc["_aws"]["CloudWatchMetrics"][0];
    let stage = env
        .resources
        .parameters
        .get("Stage")
        .and_then(Value::as_str)
        .unwrap_or("dev");
    assert_eq!(directive["Namespace"], format!("Backoffice/{stage}").as_str(), "{doc}");
    assert_eq!(directive["Dimensions"], json!([["Function"]]), "{doc}");
    assert!(
        directive["Metrics"]
            .as_array()
            .is_some_and(|m| m.iter().any(|m| m["Name"] == "PresalesRegistered")),
        "{doc}"
    );
    assert_eq!(
        (doc["Function"].as_str(), doc["PresalesRegistered"].as_u64()),
        (Some("presale-intake"), Some(1)),
        "{doc}"
    );
    assert!(doc["_aws"]["Timestamp"].as_u64().is_some(), "{doc}");
}

/// X-Ray as the local gateway's daemon receives it (what Lambda's daemon forwards on AWS): a
/// registration's subsegments carry the caller's correlation id, and its DynamoDB write is one
/// of them, under the request's subsegment and Lambda's trace.
#[tokio::test]
async fn a_registration_is_traced_under_its_correlation_id() {
    let env = env().await;
    let t = tenant(&env).await;
    let agent = caller("agent-traced", "agent", &[&t.client]);
    let correlation = unique("trace");
    let request = env
        .as_caller(&agent, "POST", "/presales")
        .header("X-Correlation-Id", &correlation)
        .json(&presale_body(&t.campaign, &unique("call")));
    let created = env.send(request).await;
    assert_eq!(created.status, 201, "{:?}", created.body);

    let mut ours: Vec<Value> = Vec::new();
    for _ in 0..50 {
        let all: Vec<Value> = env
            .request("GET", "/_local/xray/segments")
            .send()
            .await
            .expect("the gateway answers")
            .json()
            .await
            .expect("a JSON list");
        ours = all
            .into_iter()
            .filter(|d| d["annotations"]["correlation_id"] == correlation.as_str())
            .collect();
        if ours.iter().any(|d| d["name"] == "DynamoDB") && ours.iter().any(|d| d["name"] == "request") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let request = ours
        .iter()
        .find(|d| d["name"] == "request")
        .expect("the request's subsegment");
    let write = ours
        .iter()
        .find(|d| d["name"] == "DynamoDB" && d["aws"]["operation"] == "TransactWriteItems")
        .unwrap_or_else(|| panic!("the registration's transaction among {ours:#?}"));
    assert_eq!(request["type"], "subsegment");
    assert_eq!(write["namespace"], "aws");
    assert_eq!(write["trace_id"], request["trace_id"], "one trace");
    assert_eq!(write["parent_id"], request["id"], "the write under the request");
    let trace = request["trace_id"].as_str().unwrap_or_default();
    assert!(
        trace.starts_with("1-") && trace.len() == 35,
        "an X-Ray trace id: {trace}"
    );
    for d in &ours {
        let (start, end) = (d["start_time"].as_f64(), d["end_time"].as_f64());
        assert!(start.is_some_and(|s| end.is_some_and(|e| s <= e)), "{d}");
    }
}
