//! End to end: module upgrades by swapping the component file, refusal of incompatible
//! components before anything runs, and the compiled-component cache.

use std::path::{Path, PathBuf};

use cloudpe_e2e::harness::{Host, HostRun, account, app};
use cloudpe_e2e::{Account, SimConfig, Simulator};
use serde_json::json;

const TOKEN: &str = "lifecycle-session-token-77ab";

/// A fresh folder under target/ for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = cloudpe_e2e::harness::target_dir().join("test-scratch").join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn with_cache(host: &Host, args: &[&str], stdin: &[u8], cache: &Path) -> HostRun {
    host.run_args(args, stdin, &[("HOSTBILL_MODULE_CACHE_DIR", cache.to_str().unwrap())])
}

fn cache_entries(dir: &Path) -> Vec<PathBuf> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "cwasm")).collect()
        })
        .unwrap_or_default();
    entries.sort();
    entries
}

#[test]
fn swapping_the_component_file_upgrades_the_module_without_rebuilding_the_host() {
    let base = Host::from_env();
    let variant = base.with_test_component("cloudpe-guest-variant");
    let sim = Simulator::start(SimConfig {
        session: TOKEN.into(),
        accounts: vec![Account::new(12, 1)],
        ..SimConfig::default()
    })
    .unwrap();
    let dir = scratch("swap");
    let installed = dir.join("cloudpe.wasm");
    let host = Host { bin: base.bin.clone(), component: installed.clone() };
    let request = json!({"app": app(&sim.api_url(), TOKEN), "account": account(1, 2, "Active", Some("12"))});

    std::fs::copy(&base.component, &installed).unwrap();
    let before = host.run("terminate", &request);
    assert_eq!(before.code, 0, "{}", before.all_output());
    let old_version = before.json["module"]["version"].as_str().unwrap().to_string();
    assert!(!before.json["outcome"]["message"].as_str().unwrap().contains("[test variant]"));

    // The provider replaces one file; the next operation runs the new version.
    std::fs::copy(&variant.component, &installed).unwrap();
    let after = host.run("terminate", &request);
    assert_eq!(after.code, 0, "{}", after.all_output());
    assert_eq!(after.json["module"]["version"], format!("{old_version}+test-variant"));
    assert!(after.json["outcome"]["message"].as_str().unwrap().ends_with("[test variant]"));

    // And back again.
    std::fs::copy(&base.component, &installed).unwrap();
    assert_eq!(host.run("terminate", &request).json["module"]["version"], old_version.as_str());
}

#[test]
fn incompatible_components_are_refused_before_anything_runs() {
    let base = Host::from_env();
    let sim = Simulator::start(SimConfig::default()).unwrap();
    let request = json!({"app": app(&sim.api_url(), TOKEN), "account": account(1, 2, "Active", Some("12"))});
    for (component, needle) in [
        (
            "future-module",
            "it targets hostbill:provisioning@2.0.0; this host runs hostbill:provisioning >=1.0.0, <1.1.0",
        ),
        ("wrong-world", "exports no hostbill:provisioning/module interface"),
    ] {
        let host = base.with_test_component(component);
        for op in ["info", "suspend"] {
            let run = host.run_args(&[op], request.to_string().as_bytes(), &[]);
            assert_eq!(run.code, 3, "{component} {op}: {}", run.all_output());
            assert_eq!(run.error_kind(), Some("module-refused"));
            assert!(run.error_message().contains(needle), "{component}: {}", run.error_message());
        }
    }
    assert_eq!(sim.request_count(), 0);
}

#[test]
fn info_names_the_targeted_wit_version_and_the_supported_range() {
    let run = Host::from_env().run_args(&["info"], b"", &[]);
    assert_eq!(run.json["info"]["wit_package"], "hostbill:provisioning@1.0.0");
    assert_eq!(run.json["info"]["host_supports"], "hostbill:provisioning >=1.0.0, <1.1.0");
}

#[test]
fn the_cache_is_filled_once_and_reused() {
    let host = Host::from_env();
    let cache = scratch("cache-warm");
    let cold = with_cache(&host, &["precompile"], b"", &cache);
    assert_eq!(cold.code, 0, "{}", cold.all_output());
    assert_eq!(cold.json["compiled"]["source"], "CompiledAndStored");
    let entries = cache_entries(&cache);
    assert_eq!(entries.len(), 1);
    let warm = with_cache(&host, &["precompile"], b"", &cache);
    assert_eq!(warm.json["compiled"]["source"], "Cache");
    // A different component gets its own entry.
    let other = host.with_test_component("cloudpe-guest-variant");
    assert_eq!(with_cache(&other, &["info"], b"", &cache).code, 0);
    assert_eq!(cache_entries(&cache).len(), 2);
}

#[test]
fn a_corrupt_or_foreign_cache_entry_is_recompiled() {
    let host = Host::from_env();
    let cache = scratch("cache-corrupt");
    assert_eq!(with_cache(&host, &["precompile"], b"", &cache).code, 0);
    let entry = cache_entries(&cache).pop().unwrap();
    let good = std::fs::read(&entry).unwrap();
    let mut flipped = good.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x40;
    let corruptions: Vec<(&str, Vec<u8>)> = vec![
        ("truncated", good[..good.len() / 3].to_vec()),
        ("a flipped bit", flipped),
        ("garbage", b"not an artifact at all".to_vec()),
        ("empty", vec![]),
    ];
    for (what, bytes) in corruptions {
        std::fs::write(&entry, bytes).unwrap();
        let run = with_cache(&host, &["precompile"], b"", &cache);
        assert_eq!(run.code, 0, "{what}: {}", run.all_output());
        assert_eq!(run.json["compiled"]["source"], "CompiledAndStored", "{what}");
        assert!(run.stderr.contains("recompiling"), "{what}: {}", run.stderr);
        assert_eq!(std::fs::read(&entry).unwrap(), good, "{what}: the entry was rewritten whole");
    }
}

#[test]
fn concurrent_cold_starts_all_succeed() {
    let host = Host::from_env();
    let cache = scratch("cache-race");
    let runs: Vec<HostRun> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..6).map(|_| s.spawn(|| with_cache(&host, &["info"], b"", &cache))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for run in &runs {
        assert_eq!(run.code, 0, "{}", run.all_output());
    }
    assert_eq!(cache_entries(&cache).len(), 1);
    let leftovers: Vec<_> = std::fs::read_dir(&cache)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left behind");
    assert_eq!(with_cache(&host, &["precompile"], b"", &cache).json["compiled"]["source"], "Cache");
}

#[test]
fn without_a_writable_cache_the_host_still_works() {
    let host = Host::from_env();
    let dir = scratch("cache-unwritable");
    let file = dir.join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let run = with_cache(&host, &["info"], b"", &file.join("cache"));
    assert_eq!(run.code, 0, "{}", run.all_output());
    assert!(run.stderr.contains("not cached"), "{}", run.stderr);
    let no_cache = host.run_args(&["info", "--no-cache"], b"", &[]);
    assert_eq!(no_cache.code, 0);
}
