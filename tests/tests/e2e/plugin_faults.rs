//! Each fault fixture fails its own call with its own error, and a
//! well-behaved plugin in the same runtime keeps working before and after.

use crate::harness::{Receiver, install, loopback_policy, runtime_with};
use herald::plugins::{AlertRequest, CallError, PluginPolicy, PluginRuntime};
use serde_json::json;

fn alert() -> AlertRequest {
    AlertRequest {
        event_id: "evt_fault".into(),
        event_type: "logs".into(),
        payload: json!({"details": {"message": "x"}}),
        is_test: false,
        attempt: 1,
    }
}

/// A runtime with every fixture installed and tight limits for the faulty ones.
async fn fault_runtime(dir: &std::path::Path) -> PluginRuntime {
    for fixture in [
        "noop",
        "spin_loop",
        "memory_bomb",
        "panic",
        "forbidden_host",
        "huge_response",
    ] {
        install(
            dir,
            &format!("fixture_{fixture}"),
            &format!("{fixture}.wasm"),
        );
    }
    let tight_cpu = PluginPolicy {
        cpu_time_ms: Some(300),
        ..PluginPolicy::default()
    };
    let small_memory = PluginPolicy {
        memory_limit_mb: Some(48),
        ..PluginPolicy::default()
    };
    let small_responses = PluginPolicy {
        max_response_bytes: Some(1 << 20),
        ..loopback_policy()
    };
    runtime_with(
        dir,
        &[
            ("spin-loop", tight_cpu),
            ("memory-bomb", small_memory),
            ("huge-response", small_responses),
            ("forbidden-host", loopback_policy()),
        ],
    )
    .await
}

async fn assert_noop_works(runtime: &PluginRuntime) {
    let report = runtime.deliver("noop", &json!({}), &alert()).await;
    let delivery = report.result.expect("the well-behaved plugin still works");
    assert_eq!(delivery.summary, "noop evt_fault");
}

#[tokio::test(flavor = "multi_thread")]
async fn infinite_loop_hits_the_cpu_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = fault_runtime(dir.path()).await;
    assert_noop_works(&runtime).await;
    let report = runtime.deliver("spin-loop", &json!({}), &alert()).await;
    match report.result {
        Err(CallError::DeadlineExceeded { plugin, limit }) => {
            assert_eq!(plugin, "spin-loop");
            assert_eq!(limit.as_millis(), 300);
        }
        other => panic!("expected a deadline error, got {other:?}"),
    }
    assert!(
        report.duration.as_millis() < 5_000,
        "stopped promptly: {:?}",
        report.duration
    );
    assert_noop_works(&runtime).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn memory_bomb_hits_the_memory_limit() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = fault_runtime(dir.path()).await;
    let report = runtime.deliver("memory-bomb", &json!({}), &alert()).await;
    match &report.result {
        Err(CallError::MemoryLimitExceeded {
            plugin,
            limit_bytes,
        }) => {
            assert_eq!(plugin, "memory-bomb");
            assert_eq!(*limit_bytes, 48 << 20);
        }
        other => panic!("expected a memory limit error, got {other:?}"),
    }
    assert!(
        report.peak_memory_bytes <= 48 << 20,
        "peak {} stayed under the cap",
        report.peak_memory_bytes
    );
    assert!(
        report
            .result
            .unwrap_err()
            .to_string()
            .contains("memory limit of 48 MiB")
    );
    assert_noop_works(&runtime).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn panic_is_a_trap_with_the_guest_message() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = fault_runtime(dir.path()).await;
    let report = runtime.deliver("panic", &json!({}), &alert()).await;
    match report.result {
        Err(CallError::Trap {
            plugin, message, ..
        }) => {
            assert_eq!(plugin, "panic");
            assert!(
                message.contains("fixture panic while delivering evt_fault"),
                "the guest's panic message is in the error: {message}"
            );
        }
        other => panic!("expected a trap, got {other:?}"),
    }
    assert!(
        report
            .logs
            .iter()
            .any(|l| l.message.contains("fixture panic")),
        "stderr is captured in the call's log: {:?}",
        report.logs
    );
    assert_noop_works(&runtime).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn call_to_a_host_outside_the_allow_list_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = fault_runtime(dir.path()).await;
    let receiver = Receiver::start().await;
    // `localhost` resolves to loopback (allowed in these tests) but only
    // 127.0.0.1 and localhost are on the list: use a name that is not.
    let config = json!({"url": "http://not-allowed.invalid/hook"});
    let report = runtime.deliver("forbidden-host", &config, &alert()).await;
    match report.result {
        Err(CallError::HostNotAllowed { plugin, host }) => {
            assert_eq!(plugin, "forbidden-host");
            assert_eq!(host, "not-allowed.invalid");
        }
        other => panic!("expected host-not-allowed, got {other:?}"),
    }
    // The same plugin reaches an allowed host.
    let config = json!({"url": format!("{}/ok", receiver.url)});
    let report = runtime.deliver("forbidden-host", &config, &alert()).await;
    assert_eq!(
        report.result.expect("allowed host works").status_code,
        Some(200)
    );
    assert_eq!(receiver.requests().len(), 1);
    assert_noop_works(&runtime).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn huge_response_is_cut_off_at_the_cap() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = fault_runtime(dir.path()).await;
    let receiver = Receiver::start().await;
    let config = json!({"url": format!("{}/huge", receiver.url)});
    let report = runtime.deliver("huge-response", &config, &alert()).await;
    match report.result {
        Err(CallError::Failed {
            message, retryable, ..
        }) => {
            assert_eq!(message, "response larger than 1048576 bytes");
            assert!(!retryable);
        }
        other => panic!("expected a response-too-large failure, got {other:?}"),
    }
    // Nothing of the 64 MiB body reached the guest.
    assert!(
        report.peak_memory_bytes < 16 << 20,
        "guest memory stayed small: {}",
        report.peak_memory_bytes
    );
    assert_noop_works(&runtime).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn faults_in_parallel_do_not_disturb_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = fault_runtime(dir.path()).await;
    let calls = ["spin-loop", "memory-bomb", "panic", "noop", "noop"].map(|name| {
        let runtime = runtime.clone();
        tokio::spawn(async move {
            (
                name,
                runtime.deliver(name, &json!({}), &alert()).await.result,
            )
        })
    });
    for call in calls {
        let (name, result) = call.await.unwrap();
        match (name, result) {
            ("spin-loop", Err(CallError::DeadlineExceeded { .. })) => {}
            ("memory-bomb", Err(CallError::MemoryLimitExceeded { .. })) => {}
            ("panic", Err(CallError::Trap { .. })) => {}
            ("noop", Ok(_)) => {}
            (name, other) => panic!("{name}: unexpected {other:?}"),
        }
    }
}
