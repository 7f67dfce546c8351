//! The registry through the API: versions, rollback and roll-forward, deprecation, docs,
//! manifests, search — and the errors of each.

use serde_json::{Value, json};

use crate::helpers::{TestApp, keys, spawn_app};

/// Two generations of the tool `mean`: versions 1.0.0 and 1.1.0.
async fn two_versions(app: &TestApp) -> String {
    for _ in 0..2 {
        let job = app
            .create_job(&["tool:mean computes the mean of numbers"])
            .await;
        let done = app
            .wait_until_finished(job["jobId"].as_str().expect("id"))
            .await;
        assert_eq!(done["status"], "completed", "{done}");
    }
    let tools = app.get("/api/v1/tools?q=mean").await.body;
    tools["items"][0]["toolId"]
        .as_str()
        .expect("tool")
        .to_owned()
}

#[tokio::test]
async fn versions_are_immutable_and_rollback_moves_only_the_pointer() {
    let app = spawn_app().await;
    let id = two_versions(&app).await;

    let tool = app.get(&format!("/api/v1/tools/{id}")).await;
    assert_eq!(tool.status, 200, "{}", tool.body);
    assert_eq!(tool.body["currentVersion"], "1.1.0");
    assert_eq!(tool.body["current"]["version"], "1.1.0");
    assert_eq!(tool.body["status"], "registered");
    assert_eq!(
        tool.body["current"]["changeReason"],
        "new generation of an existing tool"
    );
    let sha = tool.body["current"]["sha256"].as_str().unwrap_or("");
    assert!(
        sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit()),
        "{sha}"
    );

    let versions = app.get(&format!("/api/v1/tools/{id}/versions")).await.body;
    let listed: Vec<&str> = versions["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|v| v["version"].as_str())
        .collect();
    assert_eq!(listed, ["1.1.0", "1.0.0"]);
    let first_page = app
        .get(&format!("/api/v1/tools/{id}/versions?limit=1"))
        .await
        .body;
    assert_eq!(first_page["items"].as_array().map(Vec::len), Some(1));
    let cursor = first_page["nextCursor"].as_str().expect("more");
    let second_page = app
        .get(&format!(
            "/api/v1/tools/{id}/versions?limit=1&cursor={cursor}"
        ))
        .await
        .body;
    assert_eq!(second_page["items"][0]["version"], "1.0.0");
    assert_eq!(second_page["nextCursor"], Value::Null);
    let original = app
        .get(&format!("/api/v1/tools/{id}/versions/1.0.0"))
        .await
        .body;

    // Back one version (empty body), then forward again by name.
    let back = app
        .send(
            app.client
                .post(app.url(&format!("/api/v1/tools/{id}/rollback"))),
        )
        .await;
    assert_eq!(back.status, 200, "{}", back.body);
    assert_eq!(back.body["currentVersion"], "1.0.0");
    let forward = app
        .post_json(
            &format!("/api/v1/tools/{id}/rollback"),
            &json!({"version": "1.1.0"}),
        )
        .await;
    assert_eq!(forward.body["currentVersion"], "1.1.0");
    // The versions themselves did not change.
    let after = app
        .get(&format!("/api/v1/tools/{id}/versions/1.0.0"))
        .await
        .body;
    assert_eq!(after, original);

    let missing = app
        .post_json(
            &format!("/api/v1/tools/{id}/rollback"),
            &json!({"version": "9.9.9"}),
        )
        .await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.body["code"], "INVALID_REQUEST");
    assert_eq!(
        missing.body["details"],
        json!({"resource": "tool version", "id": "9.9.9"})
    );
    app.post_json(
        &format!("/api/v1/tools/{id}/rollback"),
        &json!({"version": "1.0.0"}),
    )
    .await;
    let no_earlier = app
        .send(
            app.client
                .post(app.url(&format!("/api/v1/tools/{id}/rollback"))),
        )
        .await;
    assert_eq!(no_earlier.status, 409, "{}", no_earlier.body);
    let bad = app
        .send(
            app.client
                .post(app.url(&format!("/api/v1/tools/{id}/rollback")))
                .header("content-type", "application/json")
                .body("{\"versoin\": 1}"),
        )
        .await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.body["code"], "INVALID_REQUEST");
}

#[tokio::test]
async fn deprecation_search_docs_and_manifest() {
    let app = spawn_app().await;
    let id = two_versions(&app).await;

    let listed = app.get("/api/v1/tools").await.body;
    assert_eq!(
        keys(&listed["items"][0]),
        [
            "createdAt",
            "currentVersion",
            "description",
            "name",
            "qualityScore",
            "status",
            "tags",
            "toolId",
            "updatedAt",
            "usageCount",
            "userId"
        ]
    );
    assert_eq!(listed["items"][0]["qualityScore"], 1.0);
    assert_eq!(
        app.get("/api/v1/tools?q=nothing-like-it").await.body["items"],
        json!([])
    );
    assert_eq!(app.get("/api/v1/tools?status=bogus").await.status, 400);
    assert_eq!(
        app.get("/api/v1/tools?user=anonymous").await.body["items"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );

    let deprecated = app
        .post_json(&format!("/api/v1/tools/{id}/deprecate"), &json!({}))
        .await;
    assert_eq!(deprecated.status, 200);
    assert_eq!(deprecated.body["status"], "deprecated");
    assert_eq!(
        app.get("/api/v1/tools?status=deprecated").await.body["items"][0]["toolId"],
        id.as_str()
    );
    assert_eq!(
        app.get("/api/v1/tools?status=registered").await.body["items"],
        json!([])
    );

    let docs = app
        .client
        .get(app.url(&format!("/api/v1/tools/{id}/docs")))
        .send()
        .await
        .expect("docs");
    assert_eq!(
        docs.headers()["content-type"],
        "text/markdown; charset=utf-8"
    );
    let text = docs.text().await.expect("text");
    for part in [
        "# mean",
        "Version 1.1.0",
        "## Usage",
        "from mean import mean",
        "## Parameters",
        "## Examples",
        "## Limitations",
        "## Provenance",
        "status deprecated",
    ] {
        assert!(text.contains(part), "{part} missing from:\n{text}");
    }

    let manifest = app.get(&format!("/api/v1/tools/{id}/manifest")).await.body;
    assert_eq!(manifest["name"], "mean");
    assert_eq!(manifest["version"], "1.1.0");
    assert_eq!(manifest["function"]["type"], "function");
    assert_eq!(manifest["function"]["function"]["name"], "mean");
    assert!(
        manifest["function"]["function"]["parameters"]
            .get("$schema")
            .is_none()
    );
    assert_eq!(manifest["signature"]["entryPoint"], "mean");
    assert_eq!(manifest["dependencies"], json!([]));

    for path in ["", "/versions", "/versions/1.0.0", "/docs", "/manifest"] {
        let reply = app
            .get(&format!("/api/v1/tools/0123456789abcdef01234567{path}"))
            .await;
        assert_eq!(reply.status, 404, "{path}");
        assert_eq!(reply.body["details"]["resource"], "tool", "{path}");
    }
    let unknown_version = app.get(&format!("/api/v1/tools/{id}/versions/3.0.0")).await;
    assert_eq!(unknown_version.status, 404);
    assert_eq!(unknown_version.body["details"]["resource"], "tool version");
    assert_eq!(
        app.post_json(
            "/api/v1/tools/0123456789abcdef01234567/deprecate",
            &json!({})
        )
        .await
        .status,
        404
    );
}
