//! API Gateway HTTP API route matching: `/presales/{id}`, greedy `/files/{proxy+}`, method `ANY`,
//! `$default`; the most specific route wins (per segment: literal, then `{param}`, then
//! `{greedy+}`; then a named method over `ANY`; `$default` last).

use std::collections::HashMap;

use crate::template::{FunctionSpec, HttpRoute};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Literal(String),
    Param(String),
    Greedy(String),
}

impl Segment {
    fn rank(&self) -> u8 {
        match self {
            Segment::Literal(_) => 0,
            Segment::Param(_) => 1,
            Segment::Greedy(_) => 2,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutePattern {
    pub segments: Vec<Segment>,
}

impl RoutePattern {
    pub fn parse(path: &str) -> Result<Self, String> {
        let Some(rest) = path.strip_prefix('/') else {
            return Err(format!("path {path:?} must start with /"));
        };
        let mut segments = Vec::new();
        if !rest.is_empty() {
            let parts: Vec<&str> = rest.split('/').collect();
            for (i, part) in parts.iter().enumerate() {
                let segment = match part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                    Some(inner) => match inner.strip_suffix('+') {
                        Some(name) if i + 1 == parts.len() && valid_name(name) => Segment::Greedy(name.to_owned()),
                        Some(_) => {
                            return Err(format!("path {path:?}: a greedy {{name+}} must be the last segment"));
                        }
                        None if valid_name(inner) => Segment::Param(inner.to_owned()),
                        None => return Err(format!("path {path:?}: bad parameter name {inner:?}")),
                    },
                    None if part.contains(['{', '}']) => {
                        return Err(format!("path {path:?}: a parameter must be a whole segment"));
                    }
                    None => Segment::Literal((*part).to_owned()),
                };
                segments.push(segment);
            }
        }
        Ok(RoutePattern { segments })
    }

    /// The path with parameter names erased (`/presales/{}`), to detect conflicting routes.
    pub fn normalized(&self) -> String {
        let mut out = String::new();
        for s in &self.segments {
            out.push('/');
            match s {
                Segment::Literal(l) => out.push_str(l),
                Segment::Param(_) => out.push_str("{}"),
                Segment::Greedy(_) => out.push_str("{+}"),
            }
        }
        if out.is_empty() { "/".to_owned() } else { out }
    }

    /// Path parameters (percent-decoded) when `path` (raw, with leading `/`) matches.
    pub fn matches(&self, path: &str) -> Option<HashMap<String, String>> {
        let rest = path.strip_prefix('/')?;
        let parts: Vec<&str> = if rest.is_empty() {
            Vec::new()
        } else {
            rest.split('/').collect()
        };
        let mut params = HashMap::new();
        for (i, segment) in self.segments.iter().enumerate() {
            match segment {
                Segment::Literal(l) => {
                    if parts.get(i).is_none_or(|p| percent_decode(p) != *l) {
                        return None;
                    }
                }
                Segment::Param(name) => {
                    let part = parts.get(i).filter(|p| !p.is_empty())?;
                    params.insert(name.clone(), percent_decode(part));
                }
                Segment::Greedy(name) => {
                    let tail = parts.get(i..).filter(|t| !t.is_empty())?.join("/");
                    if tail.is_empty() {
                        return None;
                    }
                    params.insert(name.clone(), percent_decode(&tail));
                    return Some(params);
                }
            }
        }
        (parts.len() == self.segments.len()).then_some(params)
    }

    fn rank(&self) -> Vec<u8> {
        self.segments.iter().map(Segment::rank).collect()
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
}

/// Decodes `%XX` escapes (not `+`: paths keep it); invalid escapes are kept as they are.
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            if let Some(b) = hex {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[derive(Debug, Clone)]
pub struct RouteEntry {
    pub function: String,
    pub route: HttpRoute,
    /// `None` for `$default`.
    pub pattern: Option<RoutePattern>,
}

#[derive(Debug, Clone)]
pub struct RouteMatch<'a> {
    pub function: &'a str,
    pub route: &'a HttpRoute,
    pub path_parameters: HashMap<String, String>,
}

#[derive(Debug, Clone, Default)]
pub struct RouteTable {
    pub entries: Vec<RouteEntry>,
}

impl RouteTable {
    /// Routes whose path does not parse are left out (the template parser rejects them first).
    pub fn new(functions: &[FunctionSpec]) -> Self {
        let mut entries = Vec::new();
        for f in functions {
            for r in &f.http_routes {
                let pattern = if r.path == "$default" {
                    None
                } else {
                    match RoutePattern::parse(&r.path) {
                        Ok(p) => Some(p),
                        Err(_) => continue,
                    }
                };
                entries.push(RouteEntry {
                    function: f.logical_id.clone(),
                    route: r.clone(),
                    pattern,
                });
            }
        }
        RouteTable { entries }
    }

    /// The most specific route for `method` (any case) and the raw `path`.
    pub fn find(&self, method: &str, path: &str) -> Option<RouteMatch<'_>> {
        let method = method.to_ascii_uppercase();
        // (default route?, per-segment ranks, ANY?): smaller is more specific.
        type Specificity = (u8, Vec<u8>, u8);
        let mut best: Option<(Specificity, RouteMatch<'_>)> = None;
        for e in &self.entries {
            let method_rank = if e.route.method == method {
                0
            } else if e.route.method == "ANY" {
                1
            } else {
                continue;
            };
            let (key, params) = match &e.pattern {
                Some(p) => match p.matches(path) {
                    Some(params) => ((0, p.rank(), method_rank), params),
                    None => continue,
                },
                None => ((1, Vec::new(), method_rank), HashMap::new()),
            };
            if best.as_ref().is_none_or(|(k, _)| key < *k) {
                best = Some((
                    key,
                    RouteMatch {
                        function: &e.function,
                        route: &e.route,
                        path_parameters: params,
                    },
                ));
            }
        }
        best.map(|(_, m)| m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn spec(id: &str, routes: &[(&str, &str)]) -> FunctionSpec {
        FunctionSpec {
            logical_id: id.into(),
            binary: id.into(),
            timeout_secs: 3,
            memory_mb: 128,
            env: BTreeMap::new(),
            http_routes: routes
                .iter()
                .map(|(m, p)| HttpRoute {
                    method: (*m).into(),
                    path: (*p).into(),
                    auth_required: true,
                    authorization_scopes: vec![],
                    event: "e".into(),
                })
                .collect(),
            sqs_sources: vec![],
            schedules: vec![],
            unsupported_events: vec![],
            log_format: None,
            log_level: None,
        }
    }

    fn table() -> RouteTable {
        RouteTable::new(&[
            spec(
                "Presales",
                &[
                    ("POST", "/presales"),
                    ("GET", "/presales/{id}"),
                    ("GET", "/presales/mine"),
                    ("PATCH", "/presales/{id}"),
                ],
            ),
            spec(
                "Files",
                &[
                    ("ANY", "/files/{proxy+}"),
                    ("GET", "/files/{id}/meta"),
                    ("GET", "/files/{proxy+}"),
                ],
            ),
            spec("Root", &[("GET", "/")]),
            spec("Default", &[("ANY", "$default")]),
        ])
    }

    type Hit = (String, String, Vec<(String, String)>);

    fn hit(method: &str, path: &str) -> Option<Hit> {
        let t = table();
        let m = t.find(method, path)?;
        let mut params: Vec<(String, String)> = m.path_parameters.into_iter().collect();
        params.sort();
        Some((m.function.to_owned(), m.route.route_key(), params))
    }

    fn p(k: &str, v: &str) -> (String, String) {
        (k.into(), v.into())
    }

    #[test]
    fn literal_and_params() {
        assert_eq!(
            hit("post", "/presales"),
            Some(("Presales".into(), "POST /presales".into(), vec![]))
        );
        assert_eq!(
            hit("GET", "/presales/p-1"),
            Some(("Presales".into(), "GET /presales/{id}".into(), vec![p("id", "p-1")]))
        );
        assert_eq!(
            hit("GET", "/presales/a%20b"),
            Some(("Presales".into(), "GET /presales/{id}".into(), vec![p("id", "a b")]))
        );
        assert_eq!(hit("GET", "/"), Some(("Root".into(), "GET /".into(), vec![])));
    }

    #[test]
    fn literal_beats_parameter() {
        assert_eq!(
            hit("GET", "/presales/mine").map(|h| h.1),
            Some("GET /presales/mine".into())
        );
        assert_eq!(
            hit("PATCH", "/presales/mine").map(|h| h.1),
            Some("PATCH /presales/{id}".into())
        );
    }

    #[test]
    fn greedy_and_any() {
        assert_eq!(
            hit("GET", "/files/a/b/c"),
            Some(("Files".into(), "GET /files/{proxy+}".into(), vec![p("proxy", "a/b/c")]))
        );
        assert_eq!(
            hit("DELETE", "/files/a/b"),
            Some(("Files".into(), "ANY /files/{proxy+}".into(), vec![p("proxy", "a/b")]))
        );
        assert_eq!(
            hit("GET", "/files/x/meta").map(|h| h.1),
            Some("GET /files/{id}/meta".into()),
            "param beats greedy"
        );
    }

    #[test]
    fn default_route_last_and_no_match() {
        assert_eq!(hit("GET", "/nope").map(|h| h.1), Some("$default".into()));
        assert_eq!(
            hit("PUT", "/presales").map(|h| h.1),
            Some("$default".into()),
            "wrong method falls to $default"
        );
        let without_default = RouteTable::new(&[spec(
            "Presales",
            &[("GET", "/presales/{id}"), ("GET", "/files/{proxy+}")],
        )]);
        assert!(
            without_default.find("GET", "/presales").is_none(),
            "a parameter needs a segment"
        );
        assert!(
            without_default.find("GET", "/presales/").is_none(),
            "an empty segment is no parameter"
        );
        assert!(without_default.find("GET", "/presales/a/b").is_none());
        assert!(
            without_default.find("GET", "/files").is_none(),
            "greedy needs one segment"
        );
        assert!(without_default.find("POST", "/presales/a").is_none());
    }

    #[test]
    fn pattern_errors() {
        assert!(RoutePattern::parse("presales").is_err());
        assert!(RoutePattern::parse("/a/{proxy+}/b").is_err());
        assert!(RoutePattern::parse("/a{b}").is_err());
        assert!(RoutePattern::parse("/a/{}").is_err());
        assert_eq!(
            RoutePattern::parse("/a/{id}/{rest+}").map(|p| p.normalized()),
            Ok("/a/{}/{+}".into())
        );
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%2Fb%zz%4"), "a/b%zz%4");
        assert_eq!(percent_decode("%C3%A9+x"), "é+x");
    }
}
