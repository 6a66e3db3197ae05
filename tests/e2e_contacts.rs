//! Tipification end to end: contacts of one customer on three channels read back as one
//! history, a do-not-contact disposition stops the dialer, and KPI counters stay exact under
//! concurrent and duplicated writes.

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

#[tokio::test]
async fn counters_are_exact_after_concurrent_and_duplicated_writes() {
    let f = floor().await;
    let token = f.env.token(&f.agent);
    let url = format!("{}/contacts", f.env.info.api_url);
    let mut tasks = Vec::new();
    for task in 0..8 {
        let (http, token, url, campaign) = (f.env.http.clone(), token.clone(), url.clone(), f.campaign.clone());
        tasks.push(tokio::spawn(async move {
            let mut statuses = Vec::new();
            for i in 0..25 {
                let code = if i % 5 == 0 { "NOT_INTERESTED" } else { "NO_ANSWER" };
                let body = contact(
                    &campaign,
                    &format!("t{task}-{i}"),
                    "call",
                    &format!("doc:DNI:{:08}", task * 100 + i),
                    code,
                );
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
    let day = (time::OffsetDateTime::now_utc() - time::Duration::minutes(3)).date();
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
