//! Shapes Atlas's specification allows must parse. From the response schemas of
//! `fixtures/atlas-openapi-schemas.json` (its `source` says which file and commit), objects are
//! generated with every optional field present, then each optional field absent in turn and
//! `null` in turn, every enum value, both booleans and every alternative of a `oneOf`, each array empty and
//! long, and unknown extra fields. The specification requires almost nothing; the exporter's
//! own minimum is `id`, `state` and `createdAt` for a job and `name` for a cluster, and an item
//! without it is skipped and counted, never a failure of the page.

use atlas_backup_exporter::atlas::ITEMS_PER_PAGE;
use atlas_backup_exporter::atlas::model::{
    ClusterItem, ClusterShape, Project, Unwatched, parse_job, parse_job_page, parse_page,
};
use serde_json::{Map, Value, json};

const SCHEMAS: &str = include_str!("fixtures/atlas-openapi-schemas.json");

/// Deeper than this, a generated object is left empty: the schemas nest a dozen levels at most.
const MAX_DEPTH: usize = 16;
/// Items in a "long" array.
const LONG: usize = 40;

fn schema(name: &str) -> Value {
    let all: Value = serde_json::from_str(SCHEMAS).unwrap();
    all["schemas"][name].clone()
}

/// A value for a string schema that its format and pattern accept.
fn string(schema: &Value) -> Value {
    let pattern = schema["pattern"].as_str().unwrap_or_default();
    let text = match schema["format"].as_str() {
        Some("date-time") => "2026-08-10T03:28:25Z",
        Some("date") => "2026-08-10",
        _ if pattern.contains("a-f0-9") => "6a7943462c88faeba59ccf60",
        _ => "Cluster0",
    };
    json!(text)
}

/// The alternatives of a `oneOf` (or `anyOf`), each with its discriminator value set.
fn alternatives(schema: &Value, depth: usize) -> Vec<Value> {
    let Some(options) = schema["oneOf"].as_array().or(schema["anyOf"].as_array()) else {
        return Vec::new();
    };
    let property = schema["discriminator"]["propertyName"].as_str();
    let mapping = schema["discriminator"]["mapping"].as_array();
    options
        .iter()
        .enumerate()
        .map(|(i, option)| {
            let mut value = full(option, depth + 1);
            if let (Some(property), Some(tag), Some(object)) = (
                property,
                mapping.and_then(|m| m.get(i)),
                value.as_object_mut(),
            ) {
                object.insert(property.to_owned(), tag.clone());
            }
            value
        })
        .collect()
}

/// An instance of `schema` with every property present. A `$ref` left by name (a schema used
/// again further in) gives an empty object.
fn full(schema: &Value, depth: usize) -> Value {
    if depth > MAX_DEPTH {
        return json!({});
    }
    if let Some(first) = schema["enum"].as_array().and_then(|e| e.first()) {
        return first.clone();
    }
    if let Some(first) = alternatives(schema, depth).into_iter().next() {
        return first;
    }
    if let Some(parts) = schema["allOf"].as_array() {
        let mut merged = Map::new();
        for part in parts {
            if let Value::Object(object) = full(part, depth + 1) {
                merged.extend(object);
            }
        }
        return Value::Object(merged);
    }
    match schema["type"].as_str() {
        Some("array") => json!([full(&schema["items"], depth + 1)]),
        Some("string") => string(schema),
        Some("integer") => json!(schema["minimum"].as_i64().unwrap_or(1).max(1)),
        Some("number") => json!(1.5),
        Some("boolean") => json!(true),
        _ => {
            let mut object = Map::new();
            for (name, property) in schema["properties"].as_object().into_iter().flatten() {
                object.insert(name.clone(), full(property, depth + 1));
            }
            if schema["additionalProperties"].is_object() {
                let extra = full(&schema["additionalProperties"], depth + 1);
                object.insert("someKey".into(), extra);
            }
            Value::Object(object)
        }
    }
}

/// The full instance of `schema`, then every instance that differs from it in one place.
fn variants(schema: &Value, depth: usize) -> Vec<Value> {
    let base = full(schema, depth);
    let mut out = vec![base.clone()];
    if depth > MAX_DEPTH {
        return out;
    }
    if let Some(values) = schema["enum"].as_array() {
        out.extend(values.iter().skip(1).cloned());
        return out;
    }
    let alternatives = alternatives(schema, depth);
    if !alternatives.is_empty() {
        out.extend(alternatives.into_iter().skip(1));
        return out;
    }
    match schema["type"].as_str() {
        Some("boolean") => out.push(json!(false)),
        Some("array") => {
            out.push(json!([]));
            let item = full(&schema["items"], depth + 1);
            out.push(Value::Array(vec![item; LONG]));
            for item in variants(&schema["items"], depth + 1).into_iter().skip(1) {
                out.push(json!([item]));
            }
        }
        Some("object") | None if schema["properties"].is_object() => {
            let required: Vec<&str> = schema["required"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            let with = |name: &str, value: Option<Value>| {
                let mut object = base.as_object().cloned().unwrap_or_default();
                match value {
                    Some(value) => object.insert(name.to_owned(), value),
                    None => object.remove(name),
                };
                Value::Object(object)
            };
            for (name, property) in schema["properties"].as_object().into_iter().flatten() {
                if !required.contains(&name.as_str()) {
                    out.push(with(name, None));
                    out.push(with(name, Some(Value::Null)));
                }
                for value in variants(property, depth + 1).into_iter().skip(1) {
                    out.push(with(name, Some(value)));
                }
            }
            out.push(with(
                "fieldAtlasAddsLater",
                Some(json!({"nested": [1, "two"]})),
            ));
        }
        _ => {}
    }
    out
}

/// Each generated item, alone on a page, and each generated page.
fn pages_of(name: &str) -> (Vec<Value>, Vec<Value>) {
    let page = schema(name);
    let items = variants(&page["properties"]["results"]["items"], 2);
    let pages = variants(&page, 0);
    (items, pages)
}

fn body(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).unwrap()
}

/// Whether `job` carries the exporter's own minimum: a string `id` and `state`, and a
/// `createdAt` it can read.
fn has_minimum(job: &Value) -> bool {
    job["id"].is_string() && job["state"].is_string() && job["createdAt"].is_string()
}

#[test]
fn every_export_job_and_page_the_spec_allows_parses() {
    let (items, pages) = pages_of("list_export_jobs");
    assert!(items.len() > 40, "{}", items.len());
    let mut skipped = 0;
    for item in &items {
        let page = json!({"results": [item], "totalCount": 1});
        let parsed =
            parse_job_page(&body(&page), ITEMS_PER_PAGE).unwrap_or_else(|e| panic!("{e}: {item}"));
        match &parsed.results[0] {
            Ok(job) => {
                assert!(has_minimum(item), "{item}");
                assert_eq!(job.id, item["id"].as_str().unwrap());
                assert_eq!(job.state, item["state"].as_str().unwrap());
                let components = item["components"].as_array().map_or(0, Vec::len);
                assert_eq!(job.components as usize, components, "{item}");
            }
            Err(invalid) => {
                assert!(!has_minimum(item), "{item}: {}", invalid.reason);
                skipped += 1;
            }
        }
        let alone = parse_job(&body(item)).unwrap_or_else(|e| panic!("{e}: {item}"));
        assert_eq!(alone.is_ok(), has_minimum(item), "{item}");
    }
    // id, state and createdAt, each absent and null.
    assert_eq!(skipped, 6);
    for page in &pages {
        let parsed =
            parse_job_page(&body(page), ITEMS_PER_PAGE).unwrap_or_else(|e| panic!("{e}: {page}"));
        let results = page["results"].as_array().unwrap();
        assert_eq!(parsed.results.len(), results.len());
        assert_eq!(parsed.total_count, page["totalCount"].as_u64(), "{page}");
    }
    // Every state of the spec's enum comes out as it went in.
    let states: Vec<String> = items
        .iter()
        .filter_map(|item| parse_job(&body(item)).ok()?.ok())
        .map(|job| job.state.to_string())
        .collect();
    for state in ["Cancelled", "Failed", "InProgress", "Queued", "Successful"] {
        assert!(states.iter().any(|s| s == state), "{state}");
    }
}

#[test]
fn every_project_and_page_of_projects_the_spec_allows_parses() {
    let (items, pages) = pages_of("list_projects");
    for item in items.iter().chain(&pages) {
        let page = if item.get("results").is_some() {
            item.clone()
        } else {
            json!({"results": [item]})
        };
        let parsed = parse_page::<Project>(&body(&page), ITEMS_PER_PAGE)
            .unwrap_or_else(|e| panic!("{e}: {page}"));
        for (project, raw) in parsed
            .results
            .iter()
            .zip(page["results"].as_array().unwrap())
        {
            assert_eq!(project.id.as_deref(), raw["id"].as_str(), "{raw}");
            assert_eq!(project.cluster_count, raw["clusterCount"].as_i64(), "{raw}");
        }
    }
}

#[test]
fn every_cluster_and_page_of_clusters_the_spec_allows_parses() {
    let (items, pages) = pages_of("list_clusters");
    assert!(items.len() > 200, "{}", items.len());
    let mut reasons = Vec::new();
    for item in &items {
        let page = json!({"results": [item], "totalCount": 1});
        let parsed = parse_page::<Value>(&body(&page), ITEMS_PER_PAGE)
            .unwrap_or_else(|e| panic!("{e}: {item}"));
        let cluster = ClusterItem::from_value(&parsed.results[0], ClusterShape::V2);
        match cluster {
            Some(cluster) => {
                assert_eq!(Some(cluster.name.as_str()), item["name"].as_str());
                reasons.push(cluster.unwatched);
            }
            None => assert!(!item["name"].is_string(), "{item}"),
        }
    }
    // The full cluster is watched; its TENANT alternative and backupEnabled false are not.
    assert_eq!(reasons[0], None);
    assert!(reasons.contains(&Some(Unwatched::Tenant)));
    assert!(reasons.contains(&Some(Unwatched::BackupDisabled)));
    for page in &pages {
        let parsed =
            parse_page::<Value>(&body(page), ITEMS_PER_PAGE).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            parsed.results.len(),
            page["results"].as_array().unwrap().len()
        );
    }
}
