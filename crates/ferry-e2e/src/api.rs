//! A small client of the admin API for what the browser does not show: logging in for the
//! fuzz pass, and checking a job's state behind the page's back.

use serde_json::{Value, json};

pub struct Api {
    pub base: String,
    pub token: Option<String>,
    http: reqwest::Client,
}

impl Api {
    pub fn new(base: &str) -> Self {
        Self {
            base: base.trim_end_matches('/').to_string(),
            token: None,
            http: reqwest::Client::new(),
        }
    }

    /// Logs in and keeps the bearer token; panics with the server's answer when refused.
    pub async fn login(&mut self, username: &str, password: &str) -> String {
        let (status, body) = self
            .send(
                reqwest::Method::POST,
                "/api/v1/auth/login",
                Some(json!({"username": username, "password": password})),
            )
            .await;
        assert_eq!(status, 200, "login as {username} refused: {body}");
        let token = body["data"]["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("login answer without data.access_token: {body}"))
            .to_string();
        self.token = Some(token.clone());
        token
    }

    /// One request; the status and the JSON body (`Value::Null` when there is none).
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("{path}: no answer from ferry serve: {e}"));
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, value)
    }

    /// The job with this id (the envelope's `data`).
    pub async fn job(&self, id: &str) -> Value {
        let (status, body) = self
            .send(
                reqwest::Method::GET,
                &format!("/api/v1/admin/migrations/{id}"),
                None,
            )
            .await;
        assert_eq!(status, 200, "GET job {id}: {body}");
        body["data"].clone()
    }
}
