//! A real headless browser for end-to-end tests: Debian's Chromium driven through its
//! ChromeDriver by the few WebDriver commands the tests need, and plain HTTP requests.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The HTTP client of the tests.
pub(crate) type HttpClient = Client<HttpConnector, Full<Bytes>>;

pub(crate) fn http_client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

/// Sends a request; the status, headers and body as text.
pub(crate) async fn send(
    client: &HttpClient,
    request: http::Request<Full<Bytes>>,
) -> (http::StatusCode, http::HeaderMap, String) {
    let response = client.request(request).await.expect("HTTP request");
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.expect("HTTP body").to_bytes();
    (
        parts.status,
        parts.headers,
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}

/// A ChromeDriver process with one headless Chromium session.
pub(crate) struct Browser {
    driver: Child,
    base: String,
    session: String,
    client: HttpClient,
    _profile: guardian_service::testing::TempDir,
}

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
/// Longest wait for the driver to start or a page to show what is awaited.
const PATIENCE: Duration = Duration::from_secs(60);

impl Browser {
    /// Starts ChromeDriver on a port it chooses and opens a session.
    pub(crate) async fn start() -> Self {
        for tool in [CHROMEDRIVER, CHROMIUM] {
            assert!(
                std::path::Path::new(tool).exists(),
                "{tool} is missing: the browser tests need Debian's chromium and chromium-driver \
                 packages (scripts/test.sh installs them)"
            );
        }
        // Its own process group, so that the browser it starts goes with it (below).
        let mut driver = Command::new(CHROMEDRIVER)
            .process_group(0)
            .arg("--port=0")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let port = announced_port(&mut driver);
        let base = format!("http://127.0.0.1:{port}");
        let client = http_client();
        let profile = guardian_service::testing::TempDir::new();
        // The flags this machine's closed network needs (no background connections) and a
        // fresh profile per run.
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([format!("--user-data-dir={}", profile.path.display())])
        .collect::<Vec<_>>();
        let capabilities = json!({
            "capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
            }}
        });
        let mut browser = Self {
            driver,
            base,
            session: String::new(),
            client,
            _profile: profile,
        };
        let created = browser
            .command("POST", "/session", Some(capabilities))
            .await;
        browser.session = created["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {created}"))
            .to_owned();
        browser
    }

    async fn command(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let request = http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(
                body.map(|b| b.to_string()).unwrap_or_default(),
            )))
            .expect("request");
        let (status, _, text) = send(&self.client, request).await;
        let value: Value = serde_json::from_str(&text).expect("WebDriver answers JSON");
        assert!(
            status.is_success(),
            "WebDriver {method} {path}: {status} {text}"
        );
        value["value"].clone()
    }

    fn at(&self, path: &str) -> String {
        format!("/session/{}{path}", self.session)
    }

    /// Opens `url` and waits for it to load.
    pub(crate) async fn open(&self, url: &str) {
        self.command("POST", &self.at("/url"), Some(json!({ "url": url })))
            .await;
    }

    /// The page's current HTML.
    pub(crate) async fn source(&self) -> String {
        self.command("GET", &self.at("/source"), None)
            .await
            .as_str()
            .expect("page source")
            .to_owned()
    }

    /// Waits until the page holds `text` (a click's navigation may still be loading), and
    /// returns the page.
    pub(crate) async fn wait_for(&self, text: &str) -> String {
        let start = Instant::now();
        loop {
            let page = self.source().await;
            if page.contains(text) {
                return page;
            }
            assert!(start.elapsed() < PATIENCE, "never showed {text:?}:\n{page}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Clicks the element `css` selects.
    pub(crate) async fn click(&self, css: &str) {
        let found = self
            .command(
                "POST",
                &self.at("/element"),
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        let id = found
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no element {css}: {found}"))
            .to_owned();
        self.command(
            "POST",
            &self.at(&format!("/element/{id}/click")),
            Some(json!({})),
        )
        .await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Killing the driver alone would leave its Chromium processes running: the whole
        // process group goes (the driver's pid is the group's id).
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.driver.id())])
            .status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// The port ChromeDriver says it started on ("... started successfully on port N.").
fn announced_port(driver: &mut Child) -> u16 {
    let stdout = driver.stdout.take().expect("chromedriver stdout");
    let mut lines = BufReader::new(stdout).lines();
    let port = loop {
        let line = lines
            .next()
            .expect("chromedriver exited before saying its port")
            .expect("chromedriver output");
        // The first line names the asked-for port (0); this one the port it took.
        if let Some(rest) = line.split("started successfully on port ").nth(1) {
            break rest
                .trim_end_matches(['.', ' '])
                .parse()
                .unwrap_or_else(|_| panic!("no port in {line:?}"));
        }
    };
    // Keep reading so that the driver never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    port
}
