//! `GET /api/v1/openapi.json`: the API described for clients and for fuzzing (schemathesis).
//!
//! Written by hand as a `serde_json` document rather than derived with utoipa: the request
//! bodies are checked by hand-written validation (ranges, `additionalProperties: false`, one
//! path per job kind), and stating those constraints directly keeps the document exactly as
//! strict as the server, which is what lets a fuzzer tell valid requests from invalid ones.
//! A test in this module checks that every route the router serves is described.

use serde_json::{Value, json};

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    })
}

fn job_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/JobEnvelope"}}}
    })
}

fn start_operation(kind: &str, schema: &str, dry_run: bool) -> Value {
    let summary = if dry_run {
        format!("Start a {kind} migration as a dry run (writes nothing to the target)")
    } else {
        format!("Start a {kind} migration")
    };
    // Links let a stateful fuzzer follow a created job to its GET and DELETE.
    let mut created = job_response("The job, created (status pending)");
    created["links"] = json!({
        "GetMigration": {"operationId": "get_migration", "parameters": {"id": "$response.body#/data/id"}},
        "CancelMigration": {"operationId": "cancel_migration", "parameters": {"id": "$response.body#/data/id"}}
    });
    json!({
        "post": {
            "summary": summary,
            "operationId": format!("start_{kind}{}", if dry_run { "_dry_run" } else { "" }),
            "tags": ["migrations"],
            "security": [{"bearer": []}],
            "requestBody": {
                "required": true,
                "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}
            },
            "responses": {
                "201": created,
                "400": error_response("Malformed JSON, a missing field or a bad value (the message names the field)"),
                "401": error_response("No, an invalid or an expired token"),
                "403": error_response("The token is not an admin's"),
                "409": error_response("Another non-dry-run migration into the same target is pending or running"),
                "413": error_response("The body is larger than the server accepts"),
                "415": error_response("The body is not sent as Content-Type: application/json")
            }
        }
    })
}

fn cutover_operation(step: &str, summary: &str) -> Value {
    let mut created = job_response(
        "The job, created (status pending); its `cutover` field holds the summary when it completes",
    );
    created["links"] = json!({
        "GetMigration": {"operationId": "get_migration", "parameters": {"id": "$response.body#/data/id"}},
        "CancelMigration": {"operationId": "cancel_migration", "parameters": {"id": "$response.body#/data/id"}}
    });
    let mut responses = json!({
        "201": created,
        "400": error_response("Malformed JSON, a bad spec (unknown kind or parameter, bad locator), an only/skip entry that names no check, or sync of a copy spec without force (the message names the field)"),
        "401": error_response("No, an invalid or an expired token"),
        "403": error_response("The token is not an admin's"),
        "404": error_response("Not check or sync"),
        "413": error_response("The body is larger than the server accepts"),
        "415": error_response("The body is not sent as Content-Type: application/json")
    });
    if step == "sync" {
        responses["409"] = error_response("Another job into the same target is pending or running");
    }
    json!({
        "post": {
            "summary": summary,
            "operationId": format!("cutover_{step}"),
            "tags": ["cutover"],
            "security": [{"bearer": []}],
            "requestBody": {
                "required": true,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/CutoverRequest"}}}
            },
            "responses": responses
        }
    })
}

/// The request and result schemas of the cutover jobs.
fn cutover_schemas() -> Value {
    let side = json!({
        "type": "object", "additionalProperties": false, "required": ["database"],
        "properties": {
            "database": {"type": "string", "minLength": 1, "description": "a database locator"},
            "media": {"type": "string", "minLength": 1, "description": "a storage locator (file:///…, s3://…)"},
            "url": {"type": "string", "minLength": 1, "description": "the service's base URL: the http checks' default base"}
        }
    });
    let names = json!({"type": "array", "items": {"type": "string"}});
    json!({
        "CutoverSpec": {
            "type": "object", "additionalProperties": false, "required": ["source", "target"],
            "description": "cutover.toml as JSON (docs/cutover.md); state is kept by the server",
            "properties": {
                "source": side.clone(),
                "target": side,
                "job": {"type": "object", "additionalProperties": false, "properties": {
                    "kind": {"type": "string", "enum": ["copy", "profile"]},
                    "profile": {"type": "string"},
                    "tables": names.clone(), "exclude": names.clone(),
                    "manifest_sql": {"type": "string"}
                }},
                "vars": {"type": "object", "additionalProperties": {"type": "string"}},
                "check": {"type": "array", "items": {
                    "type": "object", "required": ["name", "kind"],
                    "description": "the kind's parameters are the other fields",
                    "properties": {
                        "name": {"type": "string", "minLength": 1},
                        "kind": {"type": "string", "enum": ["reconcile", "media", "frozen", "http", "backup", "rollback", "playable"]},
                        "severity": {"type": "string", "enum": ["blocker", "warning"]}
                    }
                }}
            }
        },
        "CutoverPreset": {
            "type": "object", "additionalProperties": false, "required": ["profile", "source", "target"],
            "description": "the built-in preset's parameters (ferry cutover check --profile …)",
            "properties": {
                "profile": {"type": "string", "enum": ["peertube"]},
                "source": {"type": "string", "minLength": 1}, "target": {"type": "string", "minLength": 1},
                "media_from": {"type": "string"}, "media_to": {"type": "string"},
                "platform_url": {"type": "string"}, "admin_user": {"type": "string"},
                "admin_password_env": {"type": "string", "default": "FERRY_CUTOVER_ADMIN_PASSWORD", "description": "the secrets entry (or server variable FERRY_CUTOVER_*) holding the admin's password"},
                "dump": {"type": "string", "description": "a pg_dump archive on the server"}
            }
        },
        "CutoverRequest": {
            "type": "object", "additionalProperties": false,
            "description": "spec or preset (exactly one)",
            "properties": {
                "spec": {"$ref": "#/components/schemas/CutoverSpec"},
                "preset": {"$ref": "#/components/schemas/CutoverPreset"},
                "only": names.clone(), "skip": names,
                "secrets": {"type": "object", "additionalProperties": {"type": "string"},
                    "description": "values of {env.NAME} placeholders (sealed in the job store, never shown); other names are read from the server's FERRY_CUTOVER_* variables"},
                "force": {"type": "boolean", "description": "sync of a copy spec: confirm erasing and re-copying the target's tables"}
            }
        },
        "CutoverCheck": {
            "type": "object", "required": ["name", "kind", "severity", "status", "evidence", "duration_s"],
            "properties": {
                "name": {"type": "string"}, "kind": {"type": "string"},
                "severity": {"type": "string", "enum": ["blocker", "warning"]},
                "status": {"type": "string", "enum": ["pass", "fail", "skipped"]},
                "evidence": {"type": "string"},
                "details": {"type": "array", "items": {"type": "string"}},
                "duration_s": {"type": "number"}
            }
        },
        "CutoverSummary": {
            "type": "object", "required": ["verdict", "checks"],
            "properties": {
                "verdict": {"type": "string", "enum": ["GO", "NO-GO"]},
                "source": {"type": "string"}, "target": {"type": "string"},
                "started_at": {"type": "integer"}, "elapsed_s": {"type": "number"},
                "window_s": {"type": "number", "description": "sync: start of the final pass to the verdict"},
                "sync": {"type": "object"},
                "checks": {"type": "array", "items": {"$ref": "#/components/schemas/CutoverCheck"}},
                "excluded": {"type": "array", "items": {"type": "string"}},
                "reconciliation": {"type": "object"},
                "rollback_steps": {"type": "array", "items": {"type": "string"}},
                "unreachable": {"type": "boolean"}
            }
        }
    })
}

/// The OpenAPI 3.0 document.
pub fn document() -> Value {
    let mut doc = document_without_cutover();
    if let (Some(schemas), Value::Object(more)) = (
        doc["components"]["schemas"].as_object_mut(),
        cutover_schemas(),
    ) {
        schemas.extend(more);
    }
    if let Some(paths) = doc["paths"].as_object_mut() {
        paths.insert(
            "/api/v1/admin/cutover/check".into(),
            cutover_operation("check", "Start a cutover check: the go/no-go checklist"),
        );
        paths.insert(
            "/api/v1/admin/cutover/sync".into(),
            cutover_operation(
                "sync",
                "Start a cutover sync: the final pass, then the checklist",
            ),
        );
    }
    doc
}

/// The migrations API, which the cutover routes and schemas are added to.
fn document_without_cutover() -> Value {
    let id_param = json!({
        "name": "id", "in": "path", "required": true,
        "schema": {"type": "string", "format": "uuid"}
    });
    let plain = |description: &str| json!({"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Status"}}}});
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "ferry serve",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Migrations as background jobs: start, watch, cancel. Every JSON answer is an envelope: {\"success\": true, \"data\": …} or {\"success\": false, \"error\": \"…\"}."
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {
                    "type": "object", "required": ["success", "error"],
                    "properties": {"success": {"type": "boolean", "enum": [false]}, "error": {"type": "string"}}
                },
                "Status": {
                    "type": "object", "required": ["success"],
                    "properties": {"success": {"type": "boolean"}, "data": {"type": "object"}, "error": {"type": "string"}}
                },
                "Login": {
                    "type": "object", "additionalProperties": false, "required": ["username", "password"],
                    "properties": {"username": {"type": "string"}, "password": {"type": "string"}}
                },
                "Token": {
                    "type": "object", "required": ["success", "data"],
                    "properties": {
                        "success": {"type": "boolean", "enum": [true]},
                        "data": {
                            "type": "object", "required": ["access_token", "token_type", "expires_in"],
                            "properties": {
                                "access_token": {"type": "string"},
                                "token_type": {"type": "string", "enum": ["Bearer"]},
                                "expires_in": {"type": "integer", "minimum": 0}
                            }
                        }
                    }
                },
                "CopyRequest": {
                    "type": "object", "additionalProperties": false, "required": ["source_url", "target_url"],
                    "properties": {
                        "source_url": {"type": "string", "minLength": 1, "pattern": "^(sqlite|postgres|postgresql|mysql|mariadb)://[^/?#]", "description": "sqlite:///path.db, postgres://user:pass@host/db, mysql://…"},
                        "target_url": {"type": "string", "minLength": 1, "pattern": "^(sqlite|postgres|postgresql|mysql|mariadb)://[^/?#]"},
                        "tables": {"type": "array", "items": {"type": "string"}, "description": "names or globs; default all"},
                        "exclude": {"type": "array", "items": {"type": "string"}},
                        "batch_size": {"type": "integer", "minimum": 1, "maximum": crate::kinds::copy::MAX_BATCH},
                        "workers": {"type": "integer", "minimum": 1, "maximum": crate::kinds::copy::MAX_WORKERS},
                        "force": {"type": "boolean", "description": "erase target tables that already hold rows"},
                        "ignore_errors": {"type": "boolean"},
                        "strict": {"type": "boolean", "description": "refuse, before writing, a run with any lossy step, translation or object not copied"},
                        "resume": {"type": "boolean", "description": "continue the copy recorded in the target's ferry_ledger: skip its done chunks and steps"},
                        "chunk_rows": {"type": "integer", "minimum": 1, "maximum": crate::kinds::copy::MAX_CHUNK_ROWS, "description": "rows per chunk, the unit a copy commits and resumes"},
                        "profile": {"type": "string", "enum": ["sample", "full"], "default": "sample", "description": "how a SQLite source's column types are found: a sample checked while copying, or every value before the copy"}
                    }
                },
                "MigrateRequest": {
                    "type": "object", "additionalProperties": false,
                    "description": "A migrate spec (ferry migrate --spec, as JSON): rows, then stored file locations rewritten, then files. Without metadata_only, blobs is required; without data_only, database is",
                    "properties": {
                        "database": {
                            "type": "object", "additionalProperties": false, "required": ["source", "target"],
                            "description": "the rows: a copy job, with a copy body's fields",
                            "properties": {
                                "source": {"type": "string", "minLength": 1, "pattern": "^(sqlite|postgres|postgresql|mysql|mariadb)://[^/?#]"},
                                "target": {"type": "string", "minLength": 1, "pattern": "^(sqlite|postgres|postgresql|mysql|mariadb)://[^/?#]"},
                                "tables": {"type": "array", "items": {"type": "string"}},
                                "exclude": {"type": "array", "items": {"type": "string"}},
                                "batch_size": {"type": "integer", "minimum": 1, "maximum": crate::kinds::copy::MAX_BATCH},
                                "workers": {"type": "integer", "minimum": 1, "maximum": crate::kinds::copy::MAX_WORKERS},
                                "force": {"type": "boolean"},
                                "ignore_errors": {"type": "boolean"},
                                "strict": {"type": "boolean"},
                                "resume": {"type": "boolean"},
                                "chunk_rows": {"type": "integer", "minimum": 1, "maximum": crate::kinds::copy::MAX_CHUNK_ROWS},
                                "profile": {"type": "string", "enum": ["sample", "full"]}
                            }
                        },
                        "blobs": {
                            "type": "object", "additionalProperties": false, "required": ["source", "target"],
                            "description": "the files; their stats entry is media",
                            "properties": {
                                "source": {"type": "string", "minLength": 1, "description": "file:///dir or s3://bucket/prefix?endpoint=…"},
                                "target": {"type": "string", "minLength": 1},
                                "manifest_sql": {"type": "string", "minLength": 1, "description": "the keys to copy, run against manifest_db (default: database.source)"},
                                "manifest_db": {"type": "string", "minLength": 1},
                                "workers": {"type": "integer", "minimum": 1, "maximum": crate::kinds::migrate::MAX_BLOB_WORKERS}
                            }
                        },
                        "rewrite": {
                            "type": "array", "description": "replace the prefix from by to in table.column of the target rows",
                            "items": {
                                "type": "object", "additionalProperties": false, "required": ["table", "column", "from", "to"],
                                "properties": {
                                    "table": {"type": "string"}, "column": {"type": "string"},
                                    "from": {"type": "string", "minLength": 1}, "to": {"type": "string"}
                                }
                            }
                        },
                        "metadata_only": {"type": "boolean", "description": "rows only"},
                        "data_only": {"type": "boolean", "description": "files only"},
                        "force": {"type": "boolean", "description": "erase target tables that already hold rows"},
                        "ignore_errors": {"type": "boolean"},
                        "strict": {"type": "boolean", "description": "refuse, before writing, a run with any lossy step, translation or object not copied"}
                    }
                },
                "BlobsRequest": {
                    "type": "object", "additionalProperties": false, "required": ["from", "to"],
                    "properties": {
                        "from": {"type": "string", "minLength": 1, "description": "file:///dir or s3://bucket/prefix?endpoint=…"},
                        "to": {"type": "string", "minLength": 1},
                        "manifest_db": {"type": "string", "minLength": 1, "description": "with manifest_sql: the database whose rows name the files"},
                        "manifest_sql": {"type": "string", "minLength": 1},
                        "workers": {"type": "integer", "minimum": 1, "maximum": 256},
                        "ignore_errors": {"type": "boolean"}
                    }
                },
                "PeertubeRequest": {
                    "type": "object", "additionalProperties": false,
                    "required": ["source_host", "source_db_host", "source_db_name", "source_db_user", "source_db_password"],
                    "description": "A PeerTube instance's database (read-only) into the server's --target-db; media into its --media-target",
                    "properties": {
                        "source_host": {"type": "string", "minLength": 1, "description": "the instance's public host, e.g. videos.example.com"},
                        "source_db_host": {"type": "string", "minLength": 1},
                        "source_db_port": {"type": "integer", "minimum": 1, "maximum": 65535, "default": 5432},
                        "source_db_name": {"type": "string", "minLength": 1},
                        "source_db_user": {"type": "string", "minLength": 1},
                        "source_db_password": {"type": "string"},
                        "source_media_path": {"type": "string", "minLength": 1, "description": "PeerTube's storage directory on this server, or any blobs locator"},
                        "source_media_stores": {"type": "object", "additionalProperties": false, "description": "PeerTube's object storage, each kind a blobs locator s3://bucket_name/prefix?endpoint=… (production.yaml object_storage.*)", "properties": {"web_videos": {"type": "string", "minLength": 1}, "streaming_playlists": {"type": "string", "minLength": 1}, "original_video_files": {"type": "string", "minLength": 1}}},
                        "resume": {"type": "boolean", "default": false, "description": "continue a stopped import of this source after the last page it wrote of each entity"}
                    }
                },
                "TableStats": {
                    "type": "object", "required": ["total", "migrated", "skipped", "failed", "errors"],
                    "properties": {
                        "total": {"type": "integer"}, "migrated": {"type": "integer"},
                        "skipped": {"type": "integer"}, "failed": {"type": "integer"},
                        "errors": {"type": "array", "items": {"type": "string"}},
                        "bytes": {"type": "integer"}, "elapsed_s": {"type": "number"}
                    }
                },
                "Job": {
                    "type": "object",
                    "required": ["id", "admin_user_id", "kind", "source_host", "status", "dry_run", "stats", "not_copied", "cutover", "error_message", "created_at", "updated_at", "started_at", "finished_at", "helpers"],
                    "properties": {
                        "id": {"type": "string", "format": "uuid"},
                        "admin_user_id": {"type": "integer"},
                        "kind": {"type": "string"},
                        "source_host": {"type": "string"},
                        "status": {"type": "string", "enum": ["pending", "validating", "running", "dry_run", "completed", "failed", "cancelled"]},
                        "dry_run": {"type": "boolean"},
                        "stats": {"type": "object", "additionalProperties": {"$ref": "#/components/schemas/TableStats"}},
                        "not_copied": {"type": "array", "description": "What the run left out, with why (and, for profile imports, the source's count and bytes)",
                            "items": {"type": "object", "required": ["kind", "name", "reason"], "properties": {
                                "kind": {"type": "string"}, "name": {"type": "string"}, "reason": {"type": "string"},
                                "count": {"type": "integer"}, "bytes": {"type": "integer"}}}},
                        "cutover": {"allOf": [{"$ref": "#/components/schemas/CutoverSummary"}], "nullable": true, "description": "cutover jobs: the summary, once the checks ran"},
                        "error_message": {"type": "string", "nullable": true},
                        "created_at": {"type": "string"},
                        "updated_at": {"type": "string"},
                        "started_at": {"type": "string", "nullable": true},
                        "finished_at": {"type": "string", "nullable": true},
                        "helpers": {"type": "array", "items": {"type": "string"}, "description": "copy jobs on a shared PostgreSQL store: the servers (ids) that joined to copy its chunks beside the one running it"}
                    }
                },
                "JobEnvelope": {
                    "type": "object", "required": ["success", "data"],
                    "properties": {"success": {"type": "boolean", "enum": [true]}, "data": {"$ref": "#/components/schemas/Job"}}
                },
                "JobPage": {
                    "type": "object", "required": ["success", "data"],
                    "properties": {
                        "success": {"type": "boolean", "enum": [true]},
                        "data": {
                            "type": "object", "required": ["total", "count", "start", "data"],
                            "properties": {
                                "total": {"type": "integer"}, "count": {"type": "integer"}, "start": {"type": "integer"},
                                "data": {"type": "array", "items": {"$ref": "#/components/schemas/Job"}}
                            }
                        }
                    }
                }
            }
        },
        "paths": {
            "/health": {"get": {"summary": "The process is up", "operationId": "health", "responses": {"200": plain("Up")}}},
            "/ready": {"get": {"summary": "The job store answers and the master key is loaded", "operationId": "ready",
                "responses": {"200": plain("Ready"), "503": error_response("Not ready")}}},
            "/metrics": {"get": {"summary": "Prometheus metrics", "operationId": "metrics",
                "responses": {"200": {"description": "Prometheus text format", "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
            "/api/v1/openapi.json": {"get": {"summary": "This document", "operationId": "openapi",
                "responses": {"200": {"description": "OpenAPI 3.0", "content": {"application/json": {"schema": {"type": "object"}}}}}}},
            "/api/v1/auth/login": {"post": {
                "summary": "Log in: a bearer token for the admin routes", "operationId": "login", "tags": ["auth"],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Login"}}}},
                "responses": {
                    "200": {"description": "A token", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Token"}}}},
                    "400": error_response("Malformed body"),
                    "401": error_response("Wrong user name or password. After 3 failures from one address or for one user name, the next attempt waits its turn: 0.5 s after the last failure, doubling up to 8 s (a right password never waits for its name's turn)"),
                    "413": error_response("Body too large"),
                    "415": error_response("The body is not sent as Content-Type: application/json"),
                    "429": {
                        "description": "This address's next login turn is too far ahead (more than 16 s): nothing was checked; try again after Retry-After",
                        "headers": {"Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer", "minimum": 1}}},
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
                    }
                }
            }},
            "/api/v1/admin/migrations": {"get": {
                "summary": "A page of jobs, newest first", "operationId": "list_migrations", "tags": ["migrations"],
                "security": [{"bearer": []}],
                "parameters": [
                    {"name": "count", "in": "query", "required": false, "schema": {"type": "integer", "minimum": 1, "maximum": crate::api::MAX_PAGE, "default": 20}},
                    {"name": "start", "in": "query", "required": false, "schema": {"type": "integer", "minimum": 0, "default": 0}}
                ],
                "responses": {
                    "200": {"description": "The page and the total", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/JobPage"}}}},
                    "400": error_response("Bad count or start"),
                    "401": error_response("No, an invalid or an expired token"),
                    "403": error_response("The token is not an admin's")
                }
            }},
            "/api/v1/admin/migrations/copy": start_operation("copy", "CopyRequest", false),
            "/api/v1/admin/migrations/copy/dry-run": start_operation("copy", "CopyRequest", true),
            "/api/v1/admin/migrations/blobs": start_operation("blobs", "BlobsRequest", false),
            "/api/v1/admin/migrations/blobs/dry-run": start_operation("blobs", "BlobsRequest", true),
            "/api/v1/admin/migrations/peertube": start_operation("peertube", "PeertubeRequest", false),
            "/api/v1/admin/migrations/peertube/dry-run": start_operation("peertube", "PeertubeRequest", true),
            "/api/v1/admin/migrations/migrate": start_operation("migrate", "MigrateRequest", false),
            "/api/v1/admin/migrations/migrate/dry-run": start_operation("migrate", "MigrateRequest", true),
            "/api/v1/admin/migrations/dry-run/dry-run": start_operation("dry-run", "PeertubeRequest", true),
            "/api/v1/admin/migrations/{id}": {
                "get": {
                    "summary": "One job", "operationId": "get_migration", "tags": ["migrations"],
                    "security": [{"bearer": []}], "parameters": [id_param.clone()],
                    "responses": {
                        "200": job_response("The job"),
                        "401": error_response("No, an invalid or an expired token"),
                        "403": error_response("The token is not an admin's"),
                        "404": error_response("No job with this id")
                    }
                },
                "delete": {
                    "summary": "Cancel a pending or running job", "operationId": "cancel_migration", "tags": ["migrations"],
                    "security": [{"bearer": []}], "parameters": [id_param],
                    "responses": {
                        "204": {"description": "Cancelled: the work stops within seconds"},
                        "400": error_response("The job already finished"),
                        "401": error_response("No, an invalid or an expired token"),
                        "403": error_response("The token is not an admin's"),
                        "404": error_response("No job with this id")
                    }
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_route_is_described() {
        let doc = super::document();
        let paths = doc["paths"].as_object().unwrap();
        for p in [
            "/health",
            "/ready",
            "/metrics",
            "/api/v1/openapi.json",
            "/api/v1/auth/login",
            "/api/v1/admin/migrations",
            "/api/v1/admin/migrations/copy",
            "/api/v1/admin/migrations/copy/dry-run",
            "/api/v1/admin/migrations/blobs",
            "/api/v1/admin/migrations/blobs/dry-run",
            "/api/v1/admin/migrations/peertube",
            "/api/v1/admin/migrations/peertube/dry-run",
            "/api/v1/admin/migrations/migrate",
            "/api/v1/admin/migrations/migrate/dry-run",
            "/api/v1/admin/migrations/dry-run/dry-run",
            "/api/v1/admin/migrations/{id}",
            "/api/v1/admin/cutover/check",
            "/api/v1/admin/cutover/sync",
        ] {
            assert!(paths.contains_key(p), "{p} is not described");
        }
        // Every operation with a JSON body says it refuses other bodies.
        for (path, item) in paths {
            if let Some(post) = item.get("post")
                && post.get("requestBody").is_some()
            {
                assert!(post["responses"]["415"].is_object(), "{path} lacks 415");
            }
        }
        assert!(
            paths["/api/v1/auth/login"]["post"]["responses"]["429"]["headers"]["Retry-After"]
                .is_object()
        );
        // Every $ref resolves.
        let text = doc.to_string();
        for part in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
            let name = part.split('"').next().unwrap();
            assert!(doc["components"]["schemas"].get(name).is_some(), "{name}");
        }
    }
}
