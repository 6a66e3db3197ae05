//! Tipification end to end: contacts of one customer on three channels read back as one
//! history, a do-not-contact disposition stops the dialer, KPI counters stay exact under
//! concurrent and duplicated writes, and callbacks are superseded, done and cancelled, leave the
//! due list, page with a cursor and show up overdue for supervisors.

use e2e_tests::{Caller, TestEnv, caller, env, unique};
use serde_json::{Value, json};

struct Floor {
    env: TestEnv,
    campaign: String,
    agent: Caller,
    supervisor: Caller,
}

async fn floor() -> Floor {
    let env = env().await;
    let client = unique("cli");
    let campaign = unique("camp");
    env.seed_campaign(&client, &campaign).await;
    Floor {
        agent: caller("agent-7", "agent", &[&client]),
        supervisor: caller("sup-1", "supervisor", &[&client]),
        env,
        campaign,
    }
}

fn rfc3339(at: time::OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// A contact that ended a minute ago.
fn contact(campaign: &str, external: &str, channel: &str, key: &str, disposition: &str) -> Value {
    let now = time::OffsetDateTime::now_utc();
    json!({
        "channel": channel, "direction": "outbound", "external_id": external, "customer_key": key,
        "campaign_id": campaign, "disposition": disposition,
        "started_at": rfc3339(now - time::Duration::minutes(3)), "ended_at": rfc3339(now - time::Duration::minutes(1))
    })
}

fn encode(key: &str) -> String {
    key.replace('+', "%2B").replace(':', "%3A").replace('@', "%40")
}

#[tokio::test]
async fn one_customer_three_channels_one_history_then_do_not_contact() {
    let f = floor().await;
    let key = format!("phone:+5198{:07}", uuid::Uuid::new_v4().as_u128() % 10_000_000);
    let ask = f
        .env
        .send(f.env.as_caller(
            &f.agent,
            "GET",
            &format!("/customers/{}/contactability?campaign={}", encode(&key), f.campaign),
        ))
        .await;
    assert_eq!(ask.body["contactable"], true, "{:?}", ask.body);
    for (ext, channel, code) in [
        ("dial-1", "call", "NO_ANSWER"),
        ("wa-1", "whatsapp", "NOT_INTERESTED"),
        ("mail-1", "email", "BUSY"),
    ] {
        let body = contact(&f.campaign, ext, channel, &key, code);
        let reply = f
            .env
            .send(f.env.as_caller(&f.agent, "POST", "/contacts").json(&body))
            .await;
        assert_eq!(reply.status, 201, "{:?}", reply.body);
    }
    let resend = f
        .env
        .send(f.env.as_caller(&f.agent, "POST", "/contacts").json(&contact(
            &f.campaign,
            "dial-1",
            "call",
            &key,
            "NO_ANSWER",
        )))
        .await;
    assert_eq!(
        (resend.status, resend.header("idempotent-replayed")),
        (200, Some("true"))
    );

    let history = f
        .env
        .send(
            f.env
                .as_caller(&f.supervisor, "GET", &format!("/customers/{}/contacts", encode(&key))),
        )
        .await;
    assert_eq!(history.status, 200, "{:?}", history.body);
    let channels: Vec<&str> = history.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|c| c["channel"].as_str())
        .collect();
    let mut sorted = channels.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, vec!["call", "email", "whatsapp"]);

    // Three attempts today reach the campaign's daily limit (3).
    let ask = f
        .env
        .send(f.env.as_caller(
            &f.agent,
            "GET",
            &format!("/customers/{}/contactability?campaign={}", encode(&key), f.campaign),
        ))
        .await;
    assert_eq!(
        (ask.body["contactable"].as_bool(), ask.body["reasons"][0].as_str()),
        (Some(false), Some("DAILY_LIMIT: 3 of 3 attempts today"))
    );
    let dnc = f
        .env
        .send(f.env.as_caller(&f.agent, "POST", "/contacts").json(&contact(
            &f.campaign,
            "dial-2",
            "call",
            &key,
            "DO_NOT_CALL",
        )))
        .await;
    assert_eq!(dnc.status, 201);
    let ask = f
        .env
        .send(f.env.as_caller(
            &f.agent,
            "GET",
            &format!("/customers/{}/contactability?campaign={}", encode(&key), f.campaign),
        ))
        .await;
    assert_eq!(ask.body["contactable"], false);
    assert!(
        ask.body["reasons"].as_array().is_some_and(|r| r
            .iter()
            .any(|x| x.as_str().is_some_and(|s| s.starts_with("DO_NOT_CONTACT")))),
        "{:?}",
        ask.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn counters_are_exact_after_concurrent_and_duplicated_writes() {
    let f = floor().await;
    let token = f.env.token(&f.agent);
    let url = format!("{}/contacts", f.env.info.api_url);
    // Every contact starts at the same instant, so they all fall on one campaign-local day
    // (Lima's, not UTC's: between 00:00 and 05:00 UTC the two differ).
    let started = time::OffsetDateTime::now_utc() - time::Duration::minutes(3);
    let ended = started + time::Duration::minutes(2);
    let mut tasks = Vec::new();
    for task in 0..8 {
        let (http, token, url, campaign) = (f.env.http.clone(), token.clone(), url.clone(), f.campaign.clone());
        tasks.push(tokio::spawn(async move {
            let mut statuses = Vec::new();
            for i in 0..25 {
                let code = if i % 5 == 0 { "NOT_INTERESTED" } else { "NO_ANSWER" };
                let mut body = contact(
                    &campaign,
                    &format!("t{task}-{i}"),
                    "call",
                    &format!("doc:DNI:{:08}", task * 100 + i),
                    code,
                );
                body["started_at"] = json!(rfc3339(started));
                body["ended_at"] = json!(rfc3339(ended));
                // Every fifth one is sent twice, as a dialer retrying after a timeout would.
                let sends = if i % 5 == 1 { 2 } else { 1 };
                for _ in 0..sends {
                    // A 503 (storage busy) is retried, as dialers do: the external id makes it safe.
                    let mut status = 503;
                    for _ in 0..10 {
                        status = http
                            .post(&url)
                            .bearer_auth(&token)
                            .json(&body)
                            .send()
                            .await
                            .expect("send")
                            .status()
                            .as_u16();
                        if status != 503 {
                            break;
                        }
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    }
                    statuses.push(status);
                }
            }
            statuses
        }));
    }
    let mut created = 0;
    let mut replayed = 0;
    for task in tasks {
        for status in task.await.expect("task") {
            match status {
                201 => created += 1,
                200 => replayed += 1,
                other => panic!("unexpected status {other}"),
            }
        }
    }
    assert_eq!((created, replayed), (200, 40));
    let day = backoffice_domain::zone::CampaignZone::parse("America/Lima")
        .expect("the campaign's zone")
        .local_date(started);
    let counters = f
        .env
        .send(f.env.as_caller(
            &f.supervisor,
            "GET",
            &format!("/campaigns/{}/contact-counters?day={day}", f.campaign),
        ))
        .await;
    assert_eq!(counters.status, 200, "{:?}", counters.body);
    let total = &counters.body["total"];
    assert_eq!(
        (
            total["attempts"].as_i64(),
            total["effective"].as_i64(),
            total["no_contact"].as_i64()
        ),
        (Some(200), Some(40), Some(160)),
        "{total}"
    );
    assert_eq!(counters.body["agents"][0]["counters"]["attempts"], 200);
}

#[tokio::test]
async fn bad_input_gets_exact_statuses() {
    let f = floor().await;
    let other = floor().await;
    let key = "phone:+51987654321";
    let cases = [
        (
            contact(&f.campaign, "b1", "call", key, "UNKNOWN_CODE"),
            422,
            Some("disposition"),
        ),
        (
            contact(&f.campaign, "b2", "call", key, "HOLDER"),
            422,
            Some("disposition"),
        ),
        (
            contact(&other.campaign, "b3", "call", key, "NO_ANSWER"),
            422,
            Some("campaign_id"),
        ),
        (
            contact(&f.campaign, "b4", "call", "phone:12", "NO_ANSWER"),
            422,
            Some("customer_key"),
        ),
        (
            contact(&f.campaign, "b5", "telegram", key, "NO_ANSWER"),
            422,
            Some("channel"),
        ),
        (
            contact(&f.campaign, "b6", "call", key, "CALL_BACK"),
            422,
            Some("callback_at"),
        ),
    ];
    for (body, status, field) in cases {
        let reply = f
            .env
            .send(f.env.as_caller(&f.agent, "POST", "/contacts").json(&body))
            .await;
        assert_eq!(
            (reply.status, reply.body["field"].as_str()),
            (status, field),
            "{:?}",
            reply.body
        );
    }
    let malformed = f
        .env
        .send(f.env.as_caller(&f.agent, "GET", "/customers/nonsense/contacts"))
        .await;
    assert_eq!((malformed.status, malformed.body["field"].as_str()), (400, Some("key")));
    let hidden = f
        .env
        .send(
            f.env
                .as_caller(&f.agent, "GET", &format!("/campaigns/{}/dispositions", other.campaign)),
        )
        .await;
    assert_eq!(hidden.status, 404);
    let listed = f
        .env
        .send(
            f.env
                .as_caller(&f.agent, "GET", &format!("/campaigns/{}/dispositions", f.campaign)),
        )
        .await;
    assert_eq!((listed.status, listed.body["version"].as_u64()), (200, Some(0)));
}

// --- Callbacks --------------------------------------------------------------------------------

/// A contact started `minutes_ago`, scheduling a callback `callback_in` from now if given; the
/// recorded contact's id (which is its callback's id).
async fn contact_as(
    f: &Floor,
    who: &Caller,
    key: &str,
    minutes_ago: i64,
    callback_in: Option<time::Duration>,
) -> String {
    let now = time::OffsetDateTime::now_utc();
    let started = now - time::Duration::minutes(minutes_ago);
    let mut body = contact(
        &f.campaign,
        &unique("ext"),
        "call",
        key,
        if callback_in.is_some() {
            "CALL_BACK"
        } else {
            "NO_ANSWER"
        },
    );
    body["started_at"] = json!(rfc3339(started));
    body["ended_at"] = json!(rfc3339(started + time::Duration::seconds(30)));
    if let Some(after) = callback_in {
        body["callback_at"] = json!(rfc3339(now + after));
    }
    let reply = f.env.send(f.env.as_caller(who, "POST", "/contacts").json(&body)).await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    reply.body["id"].as_str().expect("an id").to_owned()
}

fn unique_phone() -> String {
    format!("phone:+5196{:07}", uuid::Uuid::new_v4().as_u128() % 10_000_000)
}

fn ids(reply: &e2e_tests::Reply) -> Vec<String> {
    reply.body["items"]
        .as_array()
        .unwrap_or_else(|| panic!("a list: {:?}", reply.body))
        .iter()
        .filter_map(|i| i["id"].as_str().map(str::to_owned))
        .collect()
}

/// The agent's due list up to a month ahead.
async fn due_list(f: &Floor) -> Vec<String> {
    let until = rfc3339(time::OffsetDateTime::now_utc() + time::Duration::days(30));
    let reply = f
        .env
        .send(
            f.env
                .as_caller(&f.agent, "GET", &format!("/callbacks?due_before={}", encode(&until))),
        )
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    ids(&reply)
}

/// A callback's items as stored: (status, on the index?) of its record, and whether its campaign
/// copy exists.
async fn stored_callback(f: &Floor, id: &str) -> (String, bool, bool, Value) {
    let items = f.env.partition("ContactsTable", &format!("CALLBACK#{id}")).await;
    let record = items
        .iter()
        .find(|i| i.get("sk").and_then(|v| v.as_s().ok()).map(String::as_str) == Some("META"))
        .unwrap_or_else(|| panic!("callback {id} has no record"));
    let closed: Value = record
        .get("closed")
        .map(|v| serde_dynamo::from_attribute_value(v.clone()).expect("closed"))
        .unwrap_or(Value::Null);
    (
        record
            .get("status")
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_default(),
        record.contains_key("gsi2pk"),
        items.len() == 2,
        closed,
    )
}

#[tokio::test]
async fn a_callback_is_superseded_then_done_by_a_later_contact_and_leaves_the_due_list() {
    let f = floor().await;
    let colleague = caller("agent-8", "agent", &[&f.agent.clients[0]]);
    let key = unique_phone();
    let first = contact_as(&f, &f.agent, &key, 10, Some(time::Duration::days(1))).await;
    assert_eq!(due_list(&f).await, vec![first.clone()]);
    assert_eq!(stored_callback(&f, &first).await.0, "SCHEDULED");

    // A new callback for the same customer and campaign replaces the pending one.
    let second = contact_as(&f, &f.agent, &key, 8, Some(time::Duration::days(2))).await;
    assert_eq!(due_list(&f).await, vec![second.clone()]);
    let (status, indexed, copy, closed) = stored_callback(&f, &first).await;
    assert_eq!(
        (status.as_str(), indexed, copy, closed["superseded_by"].as_str()),
        ("SUPERSEDED", false, false, Some(second.as_str()))
    );

    // A later contact by another agent, of a disposition that schedules nothing, completes it.
    let called_back = contact_as(&f, &colleague, &key, 6, None).await;
    assert_eq!(due_list(&f).await, Vec::<String>::new());
    let (status, indexed, copy, closed) = stored_callback(&f, &second).await;
    assert_eq!(
        (
            status.as_str(),
            indexed,
            copy,
            closed["contact_id"].as_str(),
            closed["by"].as_str()
        ),
        ("DONE", false, false, Some(called_back.as_str()), Some("agent-8"))
    );
    let campaign = f
        .env
        .send(
            f.env
                .as_caller(&f.supervisor, "GET", &format!("/callbacks?campaign={}", f.campaign)),
        )
        .await;
    assert_eq!((campaign.status, ids(&campaign)), (200, vec![]), "{:?}", campaign.body);
    let ask = f
        .env
        .send(f.env.as_caller(
            &f.agent,
            "GET",
            &format!("/customers/{}/contactability?campaign={}", encode(&key), f.campaign),
        ))
        .await;
    // No callback holds the customer any more (three attempts may have reached the day's limit).
    assert!(
        ask.body["reasons"].as_array().is_some_and(|r| !r
            .iter()
            .any(|x| x.as_str().is_some_and(|s| s.starts_with("CALLBACK_SCHEDULED")))),
        "{:?}",
        ask.body
    );
}

#[tokio::test]
async fn a_callback_is_cancelled_once_with_a_reason_and_a_retry_changes_nothing() {
    let f = floor().await;
    let client = f.agent.clients[0].clone();
    let key = unique_phone();
    let id = contact_as(&f, &f.agent, &key, 10, Some(time::Duration::days(1))).await;
    let path = format!("/callbacks/{id}/cancel");
    let body = json!({"reason": "El cliente pidió no ser llamado esta semana"});
    for (who, status) in [
        (caller("val-1", "validator", &[&client]), 403),
        (caller("agent-8", "agent", &[&client]), 404),
        (caller("sup-9", "supervisor", &["another-client"]), 404),
    ] {
        let refused = f.env.send(f.env.as_caller(&who, "POST", &path).json(&body)).await;
        assert_eq!(refused.status, status, "{}: {:?}", who.sub, refused.body);
    }
    let no_reason = f
        .env
        .send(f.env.as_caller(&f.agent, "POST", &path).json(&json!({"reason": " "})))
        .await;
    assert_eq!(
        (no_reason.status, no_reason.body["field"].as_str()),
        (422, Some("reason"))
    );
    assert_eq!(due_list(&f).await, vec![id.clone()], "refusals change nothing");

    let idempotency_key = unique("idem");
    let cancel = || {
        f.env
            .as_caller(&f.agent, "POST", &path)
            .header("idempotency-key", &idempotency_key)
            .json(&body)
    };
    let cancelled = f.env.send(cancel()).await;
    assert_eq!(
        (
            cancelled.status,
            cancelled.body["status"].as_str(),
            cancelled.body["closed"]["reason"].as_str()
        ),
        (200, Some("CANCELLED"), body["reason"].as_str()),
        "{:?}",
        cancelled.body
    );
    // The app retries (a timeout): the same answer, applied once.
    let retried = f.env.send(cancel()).await;
    assert_eq!(
        (retried.status, retried.header("idempotent-replayed")),
        (200, Some("true"))
    );
    assert_eq!(retried.body, cancelled.body);
    assert_eq!(due_list(&f).await, Vec::<String>::new());
    let (status, indexed, copy, closed) = stored_callback(&f, &id).await;
    assert_eq!(
        (status.as_str(), indexed, copy, closed["by"].as_str()),
        ("CANCELLED", false, false, Some("agent-7"))
    );

    // A done callback is not cancelled.
    let other = contact_as(&f, &f.agent, &unique_phone(), 10, Some(time::Duration::days(1))).await;
    let done_key = stored_key(&f, &other).await;
    contact_as(&f, &f.agent, &done_key, 5, None).await;
    let closed = f
        .env
        .send(
            f.env
                .as_caller(&f.supervisor, "POST", &format!("/callbacks/{other}/cancel"))
                .json(&body),
        )
        .await;
    assert_eq!(
        (
            closed.status,
            closed.problem(),
            closed.body["current"]["status"].as_str()
        ),
        (409, "callback-closed", Some("DONE"))
    );
}

/// The customer key a callback is for.
async fn stored_key(f: &Floor, id: &str) -> String {
    let items = f.env.partition("ContactsTable", &format!("CALLBACK#{id}")).await;
    items
        .iter()
        .find_map(|i| i.get("customer_key").and_then(|v| v.as_s().ok()).cloned())
        .expect("a customer key")
}

/// Make a callback due at `due` (in the past), as if its time had come: its record and its
/// campaign copy, due time and index position.
async fn make_due(f: &Floor, id: &str, due: time::OffsetDateTime) {
    use aws_sdk_dynamodb::types::AttributeValue;
    for sk in ["META", "CAMPAIGN"] {
        f.env
            .dynamodb
            .update_item()
            .table_name(f.env.table("ContactsTable"))
            .key("pk", AttributeValue::S(format!("CALLBACK#{id}")))
            .key("sk", AttributeValue::S(sk.into()))
            .update_expression("SET due_at = :due, gsi2sk = :position")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":due", AttributeValue::S(rfc3339(due)))
            .expression_attribute_values(
                ":position",
                AttributeValue::S(format!("{:020}#{id}", due.unix_timestamp_nanos())),
            )
            .send()
            .await
            .unwrap_or_else(|e| panic!("making {id} due: {e:?}"));
    }
}

/// Follow `next_cursor` from `path` (which has a `?`): the ids of each page.
async fn pages(f: &Floor, who: &Caller, path: &str) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let url = match &cursor {
            Some(c) => format!("{path}&cursor={c}"),
            None => path.to_owned(),
        };
        let page = f.env.send(f.env.as_caller(who, "GET", &url)).await;
        assert_eq!(page.status, 200, "{url}: {:?}", page.body);
        pages.push(ids(&page));
        match page.body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return pages,
        }
        assert!(pages.len() < 10, "paging does not end");
    }
}

#[tokio::test]
async fn callbacks_page_with_a_cursor_and_supervisors_list_the_overdue_oldest_first() {
    let f = floor().await;
    // Five customers, due in 5, 2, 4, 1 and 3 days.
    let mut by_due = Vec::new();
    for days in [5, 2, 4, 1, 3] {
        let id = contact_as(&f, &f.agent, &unique_phone(), 10, Some(time::Duration::days(days))).await;
        by_due.push((days, id));
    }
    by_due.sort();
    let soonest_first: Vec<String> = by_due.iter().map(|(_, id)| id.clone()).collect();
    let until = encode(&rfc3339(time::OffsetDateTime::now_utc() + time::Duration::days(30)));

    let agent_pages = pages(&f, &f.agent, &format!("/callbacks?limit=2&due_before={until}")).await;
    assert_eq!(agent_pages.iter().map(Vec::len).collect::<Vec<_>>(), vec![2, 2, 1]);
    assert_eq!(agent_pages.concat(), soonest_first);
    let campaign_pages = pages(
        &f,
        &f.supervisor,
        &format!("/callbacks?campaign={}&limit=2", f.campaign),
    )
    .await;
    assert_eq!(campaign_pages.concat(), soonest_first);
    let bad = f
        .env
        .send(f.env.as_caller(&f.agent, "GET", "/callbacks?cursor=bm9wZQ"))
        .await;
    assert_eq!((bad.status, bad.body["field"].as_str()), (400, Some("cursor")));

    // Nothing is overdue yet; then two come due in the past (written in the table: no waiting).
    let overdue_path = format!("/callbacks?campaign={}&overdue=true", f.campaign);
    let none = f.env.send(f.env.as_caller(&f.supervisor, "GET", &overdue_path)).await;
    assert_eq!((none.status, ids(&none)), (200, vec![]), "{:?}", none.body);
    let now = time::OffsetDateTime::now_utc();
    let (later, earlier) = (&by_due[3].1, &by_due[1].1);
    make_due(&f, later, now - time::Duration::hours(1)).await;
    make_due(&f, earlier, now - time::Duration::hours(2)).await;
    let overdue = f.env.send(f.env.as_caller(&f.supervisor, "GET", &overdue_path)).await;
    assert_eq!(
        (overdue.status, ids(&overdue)),
        (200, vec![earlier.clone(), later.clone()]),
        "{:?}",
        overdue.body
    );
    let in_pages = pages(&f, &f.supervisor, &format!("{overdue_path}&limit=1")).await;
    assert_eq!(in_pages, vec![vec![earlier.clone()], vec![later.clone()]]);
    // They are on the agent's due list now (due before now, its default).
    let due_now = f.env.send(f.env.as_caller(&f.agent, "GET", "/callbacks")).await;
    assert_eq!(ids(&due_now), vec![earlier.clone(), later.clone()]);
    // Agents do not list a campaign's.
    let refused = f.env.send(f.env.as_caller(&f.agent, "GET", &overdue_path)).await;
    assert_eq!(refused.status, 403);
    // Once called back, an overdue callback is no longer overdue.
    let key = stored_key(&f, earlier).await;
    contact_as(&f, &f.agent, &key, 1, None).await;
    let overdue = f.env.send(f.env.as_caller(&f.supervisor, "GET", &overdue_path)).await;
    assert_eq!(ids(&overdue), vec![later.clone()]);
}
