//! End-to-end: the real binary brings up a local network (coordinator + real
//! providers on the real default model), then the CLI client and the official
//! OpenAI Python client ask it "What is the capital of France?" and receipts
//! are verified offline. Needs the model (`cargo xtask test` fetches it; these
//! tests fail, not skip, without it) and, for the Python test, the `openai`
//! package (`PROOFMESH_E2E_PYTHON` points at the venv xtask builds).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_proofmesh");

fn model() -> PathBuf {
    let p = proofmesh_engine::default_model_path();
    assert!(
        p.exists(),
        "the default model is missing at {} (set PROOFMESH_MODEL or run `cargo xtask fetch-model`)",
        p.display()
    );
    p
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Network {
    child: Child,
    dir: tempfile::TempDir,
    base_url: String,
    api_key: String,
}

impl Network {
    fn start(providers: u32) -> Network {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut child = Command::new(BIN)
            .args(["up", "--providers", &providers.to_string(), "--listen"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("--data-dir")
            .arg(dir.path())
            .arg("--model")
            .arg(model())
            .arg("--threads")
            .arg("1")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let (mut base_url, mut api_key) = (None, None);
        while base_url.is_none() || api_key.is_none() {
            let line = rx
                .recv_timeout(Duration::from_secs(120))
                .expect("proofmesh up did not print its banner");
            if let Some(v) = line.trim().strip_prefix("OPENAI_BASE_URL=") {
                base_url = Some(v.to_string());
            }
            if let Some(v) = line.trim().strip_prefix("OPENAI_API_KEY=") {
                api_key = Some(v.to_string());
            }
        }
        Network {
            child,
            dir,
            base_url: base_url.unwrap(),
            api_key: api_key.unwrap(),
        }
    }

    fn cli(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .args(args)
            .arg("--data-dir")
            .arg(self.dir.path())
            .output()
            .unwrap()
    }

    /// Sends SIGINT and asserts a clean exit.
    fn stop(mut self) {
        use nix::sys::signal::{kill, Signal};
        kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            Signal::SIGINT,
        )
        .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(
                    status.success(),
                    "proofmesh up exited with {status} after ctrl-c"
                );
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "proofmesh up did not stop after ctrl-c"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn verify(net: &Network, target: &str, save: Option<&Path>) -> Output {
    let mut args = vec!["receipt", "verify", target];
    let s;
    if let Some(p) = save {
        s = p.display().to_string();
        args.extend(["--save", &s]);
    }
    net.cli(&args)
}

#[test]
fn cli_chat_answers_paris_and_receipt_verifies() {
    let net = Network::start(2);
    let out = net.cli(&["chat", "What is the capital of France?"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "chat failed: {stderr}");
    assert!(stdout.contains("Paris"), "answer was {stdout:?}");
    let receipt_id = stderr
        .lines()
        .find_map(|l| l.strip_prefix("receipt: "))
        .expect("chat printed no receipt id")
        .trim()
        .to_string();

    let file = net.dir.path().join("receipt.json");
    let out = verify(&net, &receipt_id, Some(&file));
    let (stdout, _) = text(&out);
    assert!(
        out.status.success() && stdout.contains("VERIFIED"),
        "{stdout}"
    );
    assert!(stdout.contains("ok   log inclusion: entry"), "{stdout}");

    // The job was paid for: the balance is below the $100 `up` credited;
    // an operator credit lands once per reference, while the network runs.
    let out = net.cli(&["billing", "balance"]);
    let (stdout, _) = text(&out);
    assert!(out.status.success(), "{stdout}");
    let client = stdout
        .lines()
        .next()
        .unwrap()
        .strip_prefix("client ")
        .unwrap()
        .to_owned();
    let usd = |s: &str| -> f64 {
        s.lines()
            .find(|l| l.trim_end().ends_with(" USD"))
            .and_then(|l| l.split_whitespace().next())
            .unwrap()
            .parse()
            .unwrap()
    };
    let before = usd(&stdout);
    assert!(before < 100.0 && before > 99.0, "{stdout}");
    let coord_dir = net.dir.path().join("coordinator");
    let credit = || {
        Command::new(BIN)
            .args(["billing", "credit", "--client", &client, "--amount", "5.00"])
            .args(["--reference", "wire-42", "--data-dir"])
            .arg(&coord_dir)
            .output()
            .unwrap()
    };
    let (first, second) = (text(&credit()).0, text(&credit()).0);
    assert!(first.contains("credited 5.000000 USD"), "{first}");
    assert!(second.contains("already credited"), "{second}");
    let after = usd(&text(&net.cli(&["billing", "balance"])).0);
    assert!((after - before - 5.0).abs() < 1e-9, "{before} -> {after}");

    // Discovery and explanation: both providers are listed, and the job's
    // placement names the provider that served it.
    let out = net.cli(&["providers", "--json"]);
    let (stdout, _) = text(&out);
    let listed: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(listed["data"].as_array().unwrap().len(), 2, "{stdout}");
    let saved: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let job_id = saved["body"]["job_id"].as_str().unwrap();
    let out = net.cli(&["explain", job_id]);
    let (stdout, _) = text(&out);
    let served_by = saved["body"]["provider_key"].as_str().unwrap();
    assert!(
        out.status.success() && stdout.contains(&format!("chosen   {served_by}")),
        "{stdout}"
    );
    // The prompt was counted by the served model's tokenizer, not bounded.
    assert!(stdout.contains("tokens (tokenizer)"), "{stdout}");

    // The whole log recomputes from its tiles; save its checkpoint.
    let cp_file = net.dir.path().join("checkpoint.txt");
    let out = net.cli(&["log", "monitor", "--save", cp_file.to_str().unwrap()]);
    let (stdout, _) = text(&out);
    assert!(
        out.status.success() && stdout.contains("LOG VERIFIED"),
        "{stdout}"
    );
    assert!(stdout.contains("1 receipts"), "{stdout}");

    // A receipt whose inclusion proof names another leaf fails, with a reason.
    let saved: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let mut moved = saved.clone();
    moved["log"]["index"] = serde_json::json!(saved["log"]["tree_size"].as_u64().unwrap());
    let moved_file = net.dir.path().join("moved.json");
    std::fs::write(&moved_file, serde_json::to_vec(&moved).unwrap()).unwrap();
    let out = verify(&net, moved_file.to_str().unwrap(), None);
    let (stdout, _) = text(&out);
    assert!(
        !out.status.success() && stdout.contains("FAIL log inclusion"),
        "{stdout}"
    );

    // Tamper with one byte of the saved receipt: verification must fail, with a reason.
    let mut bytes = std::fs::read(&file).unwrap();
    let at = String::from_utf8_lossy(&bytes)
        .find("\"completion_tokens\":")
        .unwrap()
        + 20;
    bytes[at] ^= 0x01;
    let tampered = net.dir.path().join("tampered.json");
    std::fs::write(&tampered, &bytes).unwrap();
    let out = verify(&net, tampered.to_str().unwrap(), None);
    let (stdout, _) = text(&out);
    assert!(
        !out.status.success(),
        "tampered receipt verified:\n{stdout}"
    );
    assert!(stdout.contains("FAIL"), "no reason given:\n{stdout}");

    // Ask for verification "always": the network's verifier re-executes the
    // job, and the receipt comes to carry a passed, verifier-signed audit.
    let out = net.cli(&[
        "chat",
        "--verification",
        "always",
        "--temperature",
        "0.7",
        "--seed",
        "11",
        "Name a color.",
    ]);
    let (_, stderr) = text(&out);
    assert!(out.status.success(), "chat failed: {stderr}");
    let audited_id = stderr
        .lines()
        .find_map(|l| l.strip_prefix("receipt: "))
        .unwrap()
        .trim()
        .to_string();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let out = verify(&net, &audited_id, None);
        let (stdout, _) = text(&out);
        assert!(out.status.success(), "{stdout}");
        if stdout.contains("guarantee: audited") {
            assert!(stdout.contains("ok   audit report signature"), "{stdout}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no audit within 60 s:\n{stdout}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let out = net.cli(&[
        "receipt",
        "verify",
        &audited_id,
        "--reexecute",
        "--model",
        model().to_str().unwrap(),
    ]);
    let (stdout, _) = text(&out);
    assert!(
        out.status.success() && stdout.contains("RE-EXECUTION VERIFIED"),
        "{stdout}"
    );
    // The log grew (more receipts, the audit report) and still extends the
    // checkpoint saved earlier; the monitor verifies the audit entry too.
    let out = net.cli(&["log", "verify", "--from", cp_file.to_str().unwrap()]);
    let (stdout, _) = text(&out);
    assert!(
        out.status.success() && stdout.contains("LOG CONSISTENT"),
        "{stdout}"
    );
    // A witness cosigns twice (the second round checks consistency with the
    // first), and a client requires its cosignature on the saved checkpoint.
    let (wkey, wstate) = (net.dir.path().join("w.key"), net.dir.path().join("w"));
    let witness = |net: &Network| {
        net.cli(&[
            "witness",
            "--key",
            wkey.to_str().unwrap(),
            "--state",
            wstate.to_str().unwrap(),
        ])
    };
    let out = witness(&net);
    let (stdout, _) = text(&out);
    assert!(
        out.status.success() && stdout.contains("COSIGNED"),
        "{stdout}"
    );
    let vkey = stdout
        .lines()
        .find_map(|l| l.strip_prefix("witness key: "))
        .unwrap()
        .to_owned();
    let out = witness(&net);
    let (stdout, _) = text(&out);
    assert!(stdout.contains("is consistent with size"), "{stdout}");
    let cosigned = wstate.join("cosigned");
    let out = net.cli(&[
        "log",
        "verify",
        "--from",
        cosigned.to_str().unwrap(),
        "--witness",
        &vkey,
    ]);
    let (stdout, _) = text(&out);
    assert!(
        out.status.success() && stdout.contains("cosigned by witness"),
        "{stdout}"
    );
    // Not cosigned by the required witness: refused.
    let out = net.cli(&[
        "log",
        "verify",
        "--from",
        cp_file.to_str().unwrap(),
        "--witness",
        &vkey,
    ]);
    assert!(!out.status.success());
    // A zero-knowledge-proved inference; its receipt joins the log the
    // monitor checks next.
    zk_proved_inference(&net);
    let out = net.cli(&["log", "monitor", "--from", cp_file.to_str().unwrap()]);
    let (stdout, _) = text(&out);
    assert!(
        out.status.success() && stdout.contains("LOG VERIFIED"),
        "{stdout}"
    );
    assert!(
        stdout.contains(" audit reports parse") && !stdout.contains(" 0 audit reports"),
        "{stdout}"
    );
    net.stop();
}

/// `proofmesh zk infer` gets a proved classification of the sample 0 and
/// checks it offline; `zk verify` checks the saved bundle against the
/// operator's verifying key and the receipt, and refuses a tampered receipt.
fn zk_proved_inference(net: &Network) {
    let dir = net.dir.path();
    let (bundle, receipt) = (dir.join("zk-bundle.json"), dir.join("zk-receipt.json"));
    let out = net.cli(&[
        "zk",
        "infer",
        "--save-bundle",
        bundle.to_str().unwrap(),
        "--save-receipt",
        receipt.to_str().unwrap(),
    ]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "zk infer failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("class 0 (proved)"), "{stdout}");
    assert!(!stdout.contains("FAIL"), "{stdout}");
    let vk = dir.join("zk").join("digits-mlp.vk");
    let zk_verify = |receipt: &Path| {
        Command::new(BIN)
            .args(["zk", "verify"])
            .arg(&bundle)
            .arg("--vk")
            .arg(&vk)
            .arg("--receipt")
            .arg(receipt)
            .output()
            .unwrap()
    };
    let out = zk_verify(&receipt);
    let (stdout, _) = text(&out);
    assert!(
        out.status.success() && stdout.starts_with("OK: class 0"),
        "{stdout}"
    );
    // The receipt is an ordinary receipt too.
    let out = verify(net, receipt.to_str().unwrap(), None);
    assert!(out.status.success(), "{}", text(&out).0);
    // Another proof digest in the receipt: the signature breaks.
    let json = std::fs::read_to_string(&receipt).unwrap();
    let at = json.find("\"proof_digest\": \"sha256:").unwrap() + 24;
    let mut bytes = json.into_bytes();
    bytes[at] = if bytes[at] == b'0' { b'1' } else { b'0' };
    let tampered = dir.join("zk-tampered.json");
    std::fs::write(&tampered, bytes).unwrap();
    let out = zk_verify(&tampered);
    let (stdout, _) = text(&out);
    assert!(
        !out.status.success() && stdout.contains("FAILED: receipt"),
        "{stdout}"
    );
}

/// Runs `tests/e2e/<script>` with the official OpenAI Python client against
/// `net`, asserts it succeeded, verifies every receipt id it printed, and
/// returns its JSON report.
fn run_openai_script(net: &Network, script: &str) -> serde_json::Value {
    let python =
        proofmesh_ambient::env::var("PROOFMESH_E2E_PYTHON").unwrap_or_else(|| "python3".into());
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/e2e")
        .join(script);
    let out = Command::new(&python)
        .arg(&path)
        .env("OPENAI_BASE_URL", &net.base_url)
        .env("OPENAI_API_KEY", &net.api_key)
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(
        out.status.success(),
        "{script} failed (needs the `openai` package; `cargo xtask test` installs it):\n{stdout}\n{stderr}"
    );
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).expect("script prints JSON");
    for id in v["receipts"].as_array().unwrap() {
        let out = verify(net, id.as_str().unwrap(), None);
        assert!(
            out.status.success(),
            "receipt {id} did not verify: {}",
            text(&out).0
        );
    }
    v
}

#[test]
fn official_openai_python_client_gets_paris() {
    let net = Network::start(2);
    run_openai_script(&net, "openai_client.py");
    net.stop();
}

/// Issue 17: with the default configuration and 2 providers, the README's
/// example and a ~400-token prompt with a system message succeed at idle;
/// 100 concurrent requests through the official client (retries off) all
/// succeed, queued rather than refused; and a single request right after
/// the burst is served within seconds. Every receipt it saw verifies.
#[test]
fn official_client_is_served_at_idle_and_through_a_burst_of_100() {
    let net = Network::start(2);
    let v = run_openai_script(&net, "openai_serving.py");
    assert_eq!(v["burst_ok"], 100, "{v}");
    assert!(v["long_prompt_tokens"].as_u64() >= Some(300), "{v}");
    // The holds are all zero once the audits end (new providers are
    // audited at 50%, so the burst left dozens).
    let coord_dir = net.dir.path().join("coordinator");
    let deadline = std::time::Instant::now() + Duration::from_secs(180);
    let report = loop {
        let out = Command::new(BIN)
            .args(["billing", "check", "--grace-s", "0", "--json", "--data-dir"])
            .arg(&coord_dir)
            .output()
            .unwrap();
        let (stdout, stderr) = text(&out);
        let r: serde_json::Value = serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("billing check printed no JSON ({e}): {stdout}{stderr}"));
        if r["not_final"] == 0 || std::time::Instant::now() >= deadline {
            break r;
        }
        std::thread::sleep(Duration::from_secs(1));
    };
    assert_eq!(report["not_final"], 0, "audits still pending: {report}");
    assert_eq!(report["violations"], serde_json::json!([]), "{report}");
    net.stop();
}
