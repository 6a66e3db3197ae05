//! A tenant's desk for the flow tests: register a pre-sale, upload its recording, review it,
//! follow the sale into shipments and invoices.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_s3::primitives::ByteStream;
use serde_json::{Value, json};

use crate::{Caller, Reply, TestEnv, caller, env, unique};

/// A stereo 16-bit WAV of `seconds` with alternating speakers (agent left, customer right).
pub use recording_analysis::testing::conversation_wav as wav;

/// One tenant's desk: a seeded client and campaign, and their agent.
pub struct Desk {
    pub env: TestEnv,
    pub client: String,
    pub campaign: String,
    pub agent: Caller,
}

pub async fn desk() -> Desk {
    let env = env().await;
    let client = unique("cli");
    let campaign = unique("camp");
    env.seed_campaign(&client, &campaign).await;
    Desk {
        agent: caller("agent-7", "agent", &[&client]),
        env,
        client,
        campaign,
    }
}

impl Desk {
    /// A validator of this desk's client. The user id is made unique per desk: a validator
    /// holds one claim across all clients, so tests must not share one.
    pub fn validator(&self, sub: &str) -> Caller {
        caller(&format!("{sub}.{}", self.client), "validator", &[&self.client])
    }

    /// Register a pre-sale and upload its recording; returns (id, recording bytes).
    pub async fn ready_presale(&self, seconds: u32) -> (String, Vec<u8>) {
        self.ready_presale_called_at(seconds, time::OffsetDateTime::now_utc())
            .await
    }

    /// A registration of this desk's campaign for `call_id`: a new customer (DNI, phone) buying
    /// FIB-300 and a router.
    pub fn presale_body(&self, call_id: &str, call_started_at: time::OffsetDateTime) -> Value {
        json!({
            "campaign_id": self.campaign, "call_id": call_id,
            "call_started_at": call_started_at.format(&time::format_description::well_known::Rfc3339).expect("format"),
            "customer": {"document": {"type": "DNI", "number": format!("{:08}", uuid::Uuid::new_v4().as_u128() % 100_000_000)},
                         "full_name": "Rosa Mamani Flores", "email": "rosa.mamani@example.com", "phone": format!("+5197{:07}", uuid::Uuid::new_v4().as_u128() % 10_000_000),
                         "address": {"line1": "Jr. Junín 455", "district": "Cercado", "province": "Lima", "region": "Lima"}},
            "items": [{"sku": "FIB-300", "quantity": 1}, {"sku": "ROUTER", "quantity": 1}]
        })
    }

    /// Where a dialer uploads `call_id`'s recording today (the key convention of
    /// docs/decisions/0005-recordings.md).
    pub fn recording_key(&self, call_id: &str) -> String {
        let now = time::OffsetDateTime::now_utc();
        format!(
            "calls/{}/{}/{}/{:02}/{:02}/{call_id}.wav",
            self.client,
            self.campaign,
            now.year(),
            u8::from(now.month()),
            now.day()
        )
    }

    /// [`Desk::ready_presale`] of a call that started at `call_started_at`.
    pub async fn ready_presale_called_at(
        &self,
        seconds: u32,
        call_started_at: time::OffsetDateTime,
    ) -> (String, Vec<u8>) {
        let call_id = unique("call");
        let body = self.presale_body(&call_id, call_started_at);
        let created = self
            .env
            .send(self.env.as_caller(&self.agent, "POST", "/presales").json(&body))
            .await;
        assert_eq!(created.status, 201, "{:?}", created.body);
        let id = created.body["id"].as_str().expect("id").to_owned();
        let bytes = wav(seconds, seconds);
        let key = self.recording_key(&call_id);
        let bucket = self.env.resource("RecordingsBucket").reference.clone();
        self.env
            .s3
            .put_object()
            .bucket(&bucket)
            .key(&key)
            .body(ByteStream::from(bytes.clone()))
            .metadata("agent-id", "agent-7")
            .send()
            .await
            .expect("upload");
        let started = Instant::now();
        loop {
            let read = self
                .env
                .send(self.env.as_caller(&self.agent, "GET", &format!("/presales/{id}")))
                .await;
            if read.body["status"] == "READY_FOR_REVIEW" {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "never READY_FOR_REVIEW: {:?}",
                read.body
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        (id, bytes)
    }

    pub async fn post(&self, who: &Caller, path: &str, body: Option<Value>) -> Reply {
        let mut request = self.env.as_caller(who, "POST", path);
        if let Some(body) = body {
            request = request.json(&body);
        }
        self.env.send(request).await
    }

    /// The shipment fulfillment-dispatch made of `sale_id`, once it exists.
    pub async fn wait_shipment(&self, sale_id: &str) -> std::collections::HashMap<String, AttributeValue> {
        let started = Instant::now();
        loop {
            let item = self
                .env
                .dynamodb
                .get_item()
                .table_name(self.env.table("ShipmentsTable"))
                .key("pk", AttributeValue::S(format!("SHIPMENT#SH-{sale_id}")))
                .key("sk", AttributeValue::S("META".into()))
                .consistent_read(true)
                .send()
                .await
                .expect("get shipment")
                .item;
            if let Some(item) = item {
                return item;
            }
            assert!(started.elapsed() < Duration::from_secs(60), "no shipment for {sale_id}");
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Make the pending outbox messages of `logical_table` that mention `needle` due now, as if
    /// their retry time (a minute or more after a failed send) had come.
    pub async fn rewind_outbox(&self, logical_table: &str, needle: &str) -> usize {
        let table = self.env.table(logical_table);
        let pending = self
            .env
            .dynamodb
            .query()
            .table_name(&table)
            .index_name("outbox-pending")
            .key_condition_expression("gsi6pk = :pk")
            .expression_attribute_values(":pk", AttributeValue::S("OUTBOX#PENDING".into()))
            .send()
            .await
            .expect("pending outbox");
        let mut rewound = 0;
        // The index holds keys only: the messages are read from the table.
        for item in self.env.read_whole(&table, pending.items()).await {
            let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
            if !text("body").contains(needle) {
                continue;
            }
            let id = text("message_id");
            self.env
                .dynamodb
                .update_item()
                .table_name(&table)
                .key("pk", AttributeValue::S(format!("OUTBOX#{id}")))
                .key("sk", AttributeValue::S("MESSAGE".into()))
                .update_expression("SET gsi6sk = :due")
                .expression_attribute_values(":due", AttributeValue::S(format!("{:020}#{id}", 0)))
                .send()
                .await
                .expect("rewind the retry time");
            rewound += 1;
        }
        rewound
    }

    /// The body of the one outbox message of `logical_table` that mentions `needle`, sent or
    /// not: exactly what went (or goes) to the queue, for redelivering it.
    pub async fn outbox_body(&self, logical_table: &str, needle: &str) -> String {
        let mut bodies = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .env
                .dynamodb
                .scan()
                .table_name(self.env.table(logical_table))
                .filter_expression("begins_with(pk, :outbox) AND contains(body, :needle)")
                .expression_attribute_values(":outbox", AttributeValue::S("OUTBOX#".into()))
                .expression_attribute_values(":needle", AttributeValue::S(needle.into()))
                .set_exclusive_start_key(start)
                .consistent_read(true)
                .send()
                .await
                .expect("scan the outbox");
            bodies.extend(
                page.items()
                    .iter()
                    .filter_map(|item| item.get("body").and_then(|v| v.as_s().ok()).cloned()),
            );
            start = page.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
        assert_eq!(
            bodies.len(),
            1,
            "one outbox message of {logical_table} mentions {needle}"
        );
        bodies.remove(0)
    }

    pub async fn sweep(&self) {
        let sweep = self
            .env
            .send(
                self.env
                    .request("POST", "/_local/functions/PresaleReviewFunction/invoke")
                    .json(&json!({"source": "aws.scheduler"})),
            )
            .await;
        assert_eq!(sweep.status, 200, "{:?}", sweep.body);
    }
}

/// Minimal join_all over boxed futures (no extra dependency).
pub async fn join_all<T, F: std::future::Future<Output = T>>(futures: Vec<F>) -> Vec<T> {
    let mut pinned: Vec<std::pin::Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut results: Vec<Option<T>> = (0..pinned.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, future) in pinned.iter_mut().enumerate() {
            if results[i].is_none() {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(r) => results[i] = Some(r),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    results.into_iter().flatten().collect()
}

impl Desk {
    /// Claim and approve pre-sale `id` as `validator`; the sale's id.
    pub async fn approve(&self, validator: &Caller, id: &str) -> String {
        let approved = self.approve_next(validator).await;
        assert_eq!(approved, id, "the validator was given another pre-sale");
        format!("S-{id}")
    }

    /// Claim the next waiting pre-sale as `validator` and approve it; its id.
    pub async fn approve_next(&self, validator: &Caller) -> String {
        let claimed = self.post(validator, "/reviews/next", None).await;
        assert_eq!(claimed.status, 200, "{:?}", claimed.body);
        let id = claimed.body["presale"]["id"]
            .as_str()
            .expect("a claimed pre-sale")
            .to_owned();
        let version = claimed.body["presale"]["version"].as_u64().expect("version");
        let decision = json!({"decision": "approve", "version": version, "override_reason": "revisado"});
        let approved = self
            .post(validator, &format!("/presales/{id}/review"), Some(decision))
            .await;
        assert_eq!(
            (approved.status, approved.body["status"].as_str()),
            (200, Some("APPROVED")),
            "{:?}",
            approved.body
        );
        id
    }

    /// Hand invoice-issue one CreditNoteRequested as the billing queue would; the ids of the
    /// messages it reports failed.
    pub async fn request_credit(&self, request_id: &str, invoice_id: &str, lines: Value) -> Vec<Value> {
        let body = json!({
            "type": "CreditNoteRequested", "id": format!("m-{request_id}"), "version": 1,
            "occurred_at": "2026-11-30T15:00:00Z", "correlation_id": request_id,
            "body": {"request_id": request_id, "client_id": self.client, "invoice_id": invoice_id, "reason": "07",
                     "description": "Devolución de un router", "lines": lines, "requested_by": "finance-1"},
        });
        let reply = self
            .env
            .send(
                self.env
                    .deliver_sqs("InvoiceIssueFunction", "BillingQueue", &body.to_string()),
            )
            .await;
        assert_eq!(reply.status, 200, "{:?}", reply.body);
        reply.body["batchItemFailures"].as_array().cloned().unwrap_or_default()
    }

    /// A courier event about the sale's shipment, signed as its courier signs (with the
    /// secret the stack gave it).
    pub async fn courier_report(&self, sale_id: &str, body: &Value) -> Reply {
        let item = self.wait_shipment(sale_id).await;
        let courier = item
            .get("plan")
            .and_then(|p| p.as_m().ok())
            .and_then(|p| p.get("courier_id"))
            .and_then(|c| c.as_s().ok())
            .cloned()
            .expect("the shipment's courier");
        let secret = self
            .env
            .info
            .courier_secrets
            .get(&courier)
            .cloned()
            .expect("the stack has this courier's secret");
        let path = format!("/shipments/SH-{sale_id}/events");
        let raw = body.to_string();
        let signed_at = time::OffsetDateTime::now_utc().unix_timestamp();
        let signature =
            backoffice_edge::http::webhook::sign(secret.as_bytes(), signed_at, "POST", &path, raw.as_bytes())
                .expect("sign");
        self.env
            .send(
                self.env
                    .request("POST", &path)
                    .header("content-type", "application/json")
                    .header("x-courier-id", &courier)
                    .header("x-courier-signature", signature)
                    .body(raw),
            )
            .await
    }

    /// The sale's invoice once its e-mail has gone out (the invoice item as JSON).
    pub async fn wait_invoice(&self, sale_id: &str) -> Value {
        let table = self.env.table("InvoicesTable");
        let started = Instant::now();
        loop {
            if let Some(invoice) = self.env.invoice_of_sale(sale_id).await
                && invoice.get("email").is_some()
            {
                return invoice;
            }
            assert!(
                started.elapsed() < Duration::from_secs(90),
                "sale {sale_id} was never invoiced and e-mailed ({table})"
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
}

impl TestEnv {
    /// The invoice of `sale_id` (as JSON), if it has one.
    pub async fn invoice_of_sale(&self, sale_id: &str) -> Option<Value> {
        let table = self.table("InvoicesTable");
        let get = |pk: String, sk: &'static str| {
            self.dynamodb
                .get_item()
                .table_name(&table)
                .key("pk", AttributeValue::S(pk))
                .key("sk", AttributeValue::S(sk.into()))
                .consistent_read(true)
                .send()
        };
        let guard = get(format!("SALE#{sale_id}"), "INVOICE")
            .await
            .expect("read the sale's invoice guard")
            .item?;
        let field = |name: &str| {
            guard
                .get(name)
                .and_then(|v| v.as_s().ok())
                .cloned()
                .unwrap_or_else(|| panic!("the guard has {name}"))
        };
        let item: HashMap<String, AttributeValue> = get(
            format!("INVOICE#{}#{}", field("client_id"), field("invoice_id")),
            "META",
        )
        .await
        .expect("read the invoice")
        .item
        .expect("the guard's invoice exists");
        Some(serde_dynamo::from_item(item).expect("invoice as JSON"))
    }

    /// Every invoice of a client, from the by-client index (which carries what listings filter
    /// on), each read whole.
    pub async fn invoices_of_client(&self, client: &str) -> Vec<Value> {
        let table = self.table("InvoicesTable");
        let mut entries = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .dynamodb
                .query()
                .table_name(self.table("InvoicesTable"))
                .index_name("by-client")
                .key_condition_expression("gsi1pk = :pk")
                .expression_attribute_values(":pk", AttributeValue::S(format!("CLIENT#{client}")))
                .set_exclusive_start_key(start)
                .send()
                .await
                .expect("query invoices by client");
            entries.extend(page.items.unwrap_or_default());
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => break,
            }
        }
        self.read_whole(&table, &entries)
            .await
            .into_iter()
            .map(|item| serde_dynamo::from_item(item).expect("invoice as JSON"))
            .collect()
    }

    /// The items of `table` that index `entries` name (their `pk` and `sk`), read whole and
    /// consistently, 100 to a `BatchGetItem`, in no particular order.
    pub async fn read_whole(
        &self,
        table: &str,
        entries: &[HashMap<String, AttributeValue>],
    ) -> Vec<HashMap<String, AttributeValue>> {
        let keys: Vec<HashMap<String, AttributeValue>> = entries
            .iter()
            .map(|entry| {
                ["pk", "sk"]
                    .iter()
                    .filter_map(|k| Some(((*k).to_owned(), entry.get(*k)?.clone())))
                    .collect()
            })
            .collect();
        let mut out = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(100) {
            let mut request = aws_sdk_dynamodb::types::KeysAndAttributes::builder()
                .set_keys(Some(chunk.to_vec()))
                .consistent_read(true)
                .build()
                .expect("keys");
            loop {
                let answer = self
                    .dynamodb
                    .batch_get_item()
                    .request_items(table, request)
                    .send()
                    .await
                    .expect("read items whole");
                out.extend(answer.responses.and_then(|mut r| r.remove(table)).unwrap_or_default());
                match answer.unprocessed_keys.and_then(|mut left| left.remove(table)) {
                    Some(left) if !left.keys().is_empty() => request = left,
                    _ => break,
                }
            }
        }
        out
    }
}
