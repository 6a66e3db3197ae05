//! The routes in the template, in the handlers and in the OpenAPI document agree, and every
//! function the template declares is a binary of this workspace. No emulator needed.

use std::collections::{BTreeMap, BTreeSet};

use e2e_tests::repo_root;
use yaml_serde::Value;

/// Handlers' own route tables, by the binary that serves them.
fn handler_routes() -> BTreeMap<&'static str, &'static [&'static str]> {
    BTreeMap::from([
        ("presale-intake", presale_intake::ROUTES),
        ("presale-review", presale_review::ROUTES),
        ("contact-tipify", contact_tipify::ROUTES),
        ("shipment-tracking", shipment_tracking::ROUTES),
        ("receivables", receivables::ROUTES),
        ("kpi-reports", kpi_reports::ROUTES),
        ("client-billing", client_billing::ROUTES),
        ("console", console::ROUTES),
    ])
}

fn load(path: &str) -> Value {
    let text = std::fs::read_to_string(repo_root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
    yaml_serde::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// `(binary, "METHOD /path")` for every HttpApi event in the template.
fn template_routes() -> BTreeSet<(String, String)> {
    let template = load("infra/template.yaml");
    let mut routes = BTreeSet::new();
    let resources = template["Resources"].as_mapping().expect("Resources");
    for (_, resource) in resources {
        if resource["Type"].as_str() != Some("AWS::Serverless::Function") {
            continue;
        }
        let binary = resource["Metadata"]["BuildProperties"]["Binary"]
            .as_str()
            .expect("every function names its Binary")
            .to_owned();
        let Some(events) = resource["Properties"]["Events"].as_mapping() else {
            continue;
        };
        for (_, event) in events {
            if event["Type"].as_str() == Some("HttpApi") {
                let props = &event["Properties"];
                let method = props["Method"].as_str().expect("Method").to_ascii_uppercase();
                let path = props["Path"].as_str().expect("Path");
                routes.insert((binary.clone(), format!("{method} {path}")));
            }
        }
    }
    routes
}

fn openapi_routes() -> BTreeSet<String> {
    let doc = load("docs/openapi.yaml");
    let mut routes = BTreeSet::new();
    for (path, item) in doc["paths"].as_mapping().expect("paths") {
        let path = path.as_str().expect("path");
        for (method, _) in item.as_mapping().expect("path item") {
            let method = method.as_str().expect("method");
            if ["get", "put", "post", "patch", "delete", "head", "options"].contains(&method) {
                routes.insert(format!("{} {path}", method.to_ascii_uppercase()));
            }
        }
    }
    routes
}

#[test]
fn template_handlers_and_openapi_agree() {
    let template = template_routes();
    let handlers: BTreeSet<(String, String)> = handler_routes()
        .into_iter()
        .flat_map(|(bin, routes)| routes.iter().map(move |r| (bin.to_owned(), (*r).to_owned())))
        .collect();
    let documented = openapi_routes();
    let in_template: BTreeSet<String> = template.iter().map(|(_, r)| r.clone()).collect();
    // Functions whose handlers this test knows must match the template route for route.
    let known: BTreeSet<&str> = handler_routes().keys().copied().collect();
    let template_known: BTreeSet<(String, String)> = template
        .iter()
        .filter(|(b, _)| known.contains(b.as_str()))
        .cloned()
        .collect();
    assert_eq!(template_known, handlers, "template routes vs handlers' ROUTES");
    assert_eq!(in_template, documented, "template routes vs docs/openapi.yaml");
    let unknown: Vec<&String> = template
        .iter()
        .map(|(b, _)| b)
        .filter(|b| !known.contains(b.as_str()))
        .collect();
    assert!(
        unknown.is_empty(),
        "functions with routes but no ROUTES registered in this test: {unknown:?}"
    );
}

#[test]
fn every_template_function_is_a_workspace_binary() {
    let template = load("infra/template.yaml");
    let workspace = std::fs::read_to_string(repo_root().join("Cargo.toml")).expect("Cargo.toml");
    for (name, resource) in template["Resources"].as_mapping().expect("Resources") {
        if resource["Type"].as_str() != Some("AWS::Serverless::Function") {
            continue;
        }
        let binary = resource["Metadata"]["BuildProperties"]["Binary"]
            .as_str()
            .unwrap_or_default();
        assert_eq!(
            resource["Metadata"]["BuildMethod"].as_str(),
            Some("rust-cargolambda"),
            "{name:?}"
        );
        let manifest = repo_root().join("functions").join(binary).join("Cargo.toml");
        let text =
            std::fs::read_to_string(&manifest).unwrap_or_else(|e| panic!("{name:?}: {}: {e}", manifest.display()));
        assert!(
            text.contains(&format!("name = \"{binary}\"")),
            "{} declares no binary {binary}",
            manifest.display()
        );
        assert!(
            workspace.contains(&format!("\"functions/{binary}\"")),
            "functions/{binary} is not a workspace member"
        );
    }
}
