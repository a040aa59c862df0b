//! End to end: module upgrades by swapping the component file, refusal of incompatible
//! components before anything runs, and the compiled-component cache.

use std::path::{Path, PathBuf};

use cloudpe_e2e::harness::{Host, HostRun, account, app, scratch};
use cloudpe_e2e::{Account, SimConfig, Simulator};
use serde_json::json;

const TOKEN: &str = "lifecycle-session-token-77ab";

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
            "it targets hostbill:provisioning@3.0.0; this host runs hostbill:provisioning >=2.0.0, <2.5.0",
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
fn a_module_built_for_an_older_minor_contract_still_runs() {
    // contract-2-0 imports `log@2.0.0` and exports `module@2.0.0`; this host defines 2.2.0 (2.1.0
    // added `budget`). Semver matching must link it, and its operations must work unchanged.
    let host = Host::from_env().with_test_component("contract-2-0");
    let sim = Simulator::start(SimConfig::default()).unwrap();
    let request = json!({"app": app(&sim.api_url(), TOKEN), "account": account(7, 2, "Active", Some("12"))});
    let run = host.run_args(&["suspend"], request.to_string().as_bytes(), &[]);
    assert_eq!(run.code, 0, "{}", run.all_output());
    assert_eq!(run.json["outcome"]["message"], "suspended account 7 (2.0 module)", "{}", run.all_output());
    assert!(run.all_output().contains("2.0 module: suspend of account 7"), "{}", run.all_output());
    let info = host.run_args(&["info"], b"", &[]);
    assert_eq!(info.json["info"]["wit_package"], "hostbill:provisioning@2.0.0", "{}", info.all_output());
}

#[test]
fn info_names_the_targeted_wit_version_and_the_supported_range() {
    let run = Host::from_env().run_args(&["info"], b"", &[]);
    assert_eq!(run.json["info"]["wit_package"], "hostbill:provisioning@2.4.0");
    assert_eq!(run.json["info"]["host_supports"], "hostbill:provisioning >=2.0.0, <2.5.0");
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
    assert!(run.stderr.contains("not used: it is not a folder"), "{}", run.stderr);
    let no_cache = host.run_args(&["info", "--no-cache"], b"", &[]);
    assert_eq!(no_cache.code, 0);
}

/// Whether the tests run as root (CI does): a folder can then be given to another uid.
fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(2) == Some("0")))
        .unwrap_or(false)
}

fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[track_caller]
fn assert_compiled_in_memory(run: &HostRun, why: &str) {
    assert_eq!(run.code, 0, "{}", run.all_output());
    assert_eq!(run.json["compiled"]["source"], "CompiledOnly", "{}", run.all_output());
    assert!(run.stderr.contains(why), "expected {why:?} in:\n{}", run.stderr);
}

#[test]
fn a_cache_folder_others_can_write_or_that_is_a_link_is_not_used() {
    let host = Host::from_env();
    let base = scratch("cache-folders");

    // Anyone may write: an attacker could plant entries. Nothing is read from or written to it.
    let open = base.join("world-writable");
    std::fs::create_dir(&open).unwrap();
    chmod(&open, 0o777);
    assert_compiled_in_memory(&with_cache(&host, &["precompile"], b"", &open), "mode 0777 lets");
    assert!(cache_entries(&open).is_empty(), "an entry was written to a world-writable folder");
    chmod(&open, 0o770);
    assert_compiled_in_memory(&with_cache(&host, &["precompile"], b"", &open), "mode 0770 lets its group write");

    // A link to a folder (e.g. one another user made in /tmp).
    let real = base.join("real");
    std::fs::create_dir(&real).unwrap();
    chmod(&real, 0o700);
    let link = base.join("link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    assert_compiled_in_memory(&with_cache(&host, &["precompile"], b"", &link), "it is a symbolic link");
    assert!(cache_entries(&real).is_empty());

    if running_as_root() {
        let theirs = base.join("someone-elses");
        std::fs::create_dir(&theirs).unwrap();
        chmod(&theirs, 0o700);
        std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
        assert_compiled_in_memory(&with_cache(&host, &["precompile"], b"", &theirs), "belongs to uid 65534");
    } else {
        eprintln!("[cache] not root: the other-owner folder case is skipped");
    }

    // A proper folder is created 0700, with its key beside it (0600), not inside.
    let fresh = base.join("fresh");
    let run = with_cache(&host, &["precompile"], b"", &fresh);
    assert_eq!(run.json["compiled"]["source"], "CompiledAndStored", "{}", run.all_output());
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&fresh).unwrap().permissions().mode() & 0o777, 0o700);
    let key = base.join("fresh.key");
    assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(std::fs::metadata(&key).unwrap().len(), 32);
    // A key others can read is not used.
    chmod(&key, 0o644);
    assert_compiled_in_memory(&with_cache(&host, &["precompile"], b"", &fresh), "fresh.key: its mode 0644");
}

#[test]
fn cache_entries_that_are_links_fifos_oversized_or_writable_by_others_are_not_read() {
    let host = Host::from_env();
    let cache = scratch("cache-entries");
    assert_eq!(with_cache(&host, &["precompile"], b"", &cache).code, 0);
    let entry = cache_entries(&cache).pop().unwrap();
    let good = std::fs::read(&entry).unwrap();
    let elsewhere = cache.with_file_name("cache-entries-copy");
    std::fs::write(&elsewhere, &good).unwrap();

    type Plant<'a> = Box<dyn Fn(&Path) + 'a>;
    let cases: Vec<(&str, Plant, &str)> = vec![
        (
            "a symbolic link",
            Box::new(|e: &Path| std::os::unix::fs::symlink(&elsewhere, e).unwrap()),
            "it is a symbolic link",
        ),
        (
            "a FIFO",
            Box::new(|e: &Path| {
                let status = std::process::Command::new("mkfifo").arg(e).status().unwrap();
                assert!(status.success());
            }),
            "it is not a regular file",
        ),
        (
            "an oversized file",
            Box::new(|e: &Path| std::fs::File::create(e).unwrap().set_len(200 << 20).unwrap()),
            "209715200 bytes long",
        ),
        (
            "a group-writable file",
            Box::new(|e: &Path| {
                std::fs::write(e, &good).unwrap();
                chmod(e, 0o660);
            }),
            "mode 0660 lets its group write",
        ),
    ];
    for (what, plant, why) in cases {
        std::fs::remove_file(&entry).unwrap();
        plant(&entry);
        let run = with_cache(&host, &["precompile"], b"", &cache);
        assert_eq!(run.code, 0, "{what}: {}", run.all_output());
        assert!(run.stderr.contains(why), "{what}: expected {why:?} in:\n{}", run.stderr);
        assert!(run.elapsed < std::time::Duration::from_secs(20), "{what}: took {:?}", run.elapsed);
        // The folder is trusted, so the entry is replaced by a genuine one.
        assert_eq!(run.json["compiled"]["source"], "CompiledAndStored", "{what}");
        assert!(std::fs::symlink_metadata(&entry).unwrap().file_type().is_file(), "{what}");
    }
    assert_eq!(with_cache(&host, &["precompile"], b"", &cache).json["compiled"]["source"], "Cache");
}

#[test]
fn an_entry_copied_from_another_component_is_refused_and_the_genuine_module_runs() {
    let genuine = Host::from_env();
    let other = genuine.with_test_component("cloudpe-guest-variant");
    let cache = scratch("cache-copied");
    let sim = Simulator::start(SimConfig {
        session: TOKEN.into(),
        accounts: vec![Account::new(12, 1)],
        ..SimConfig::default()
    })
    .unwrap();
    let request = json!({"app": app(&sim.api_url(), TOKEN), "account": account(1, 2, "Active", Some("12"))});
    let stdin = request.to_string();
    assert_eq!(with_cache(&genuine, &["precompile"], b"", &cache).code, 0);
    let genuine_entry = cache_entries(&cache).pop().unwrap();
    assert_eq!(with_cache(&other, &["precompile"], b"", &cache).code, 0);
    let other_entry = cache_entries(&cache).into_iter().find(|e| *e != genuine_entry).unwrap();
    // A local user with write access to the folder swaps in the other component's native code.
    std::fs::copy(&other_entry, &genuine_entry).unwrap();

    let run = with_cache(&genuine, &["terminate"], stdin.as_bytes(), &cache);
    assert_eq!(run.code, 0, "{}", run.all_output());
    assert!(run.stderr.contains("authentication tag does not match"), "{}", run.stderr);
    let message = run.json["outcome"]["message"].as_str().unwrap();
    assert!(!message.ends_with("[test variant]"), "the copied entry ran: {message}");
    let expected = with_cache(&genuine, &["info"], b"", &cache);
    assert_eq!(run.json["module"]["version"], expected.json["info"]["version"]);
}

#[test]
fn without_a_cache_folder_or_home_the_host_compiles_in_memory_and_says_so() {
    let host = Host::from_env();
    let started = std::time::SystemTime::now();
    let output = std::process::Command::new(&host.bin)
        .args(["info", "--component"])
        .arg(&host.component)
        .env_remove("HOME")
        .env_remove("XDG_CACHE_HOME")
        .env_remove("HOSTBILL_MODULE_CACHE_DIR")
        .env("HOSTBILL_MODULE_ALLOW_UNSIGNED", "true")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert_eq!(stderr.matches("no compiled-component cache").count(), 1, "{stderr}");
    // No fallback into the shared temporary folder (the old default was `$TMPDIR/hostbill-module-host`).
    let fallback = std::env::temp_dir().join("hostbill-module-host");
    assert!(!stderr.contains(fallback.to_str().unwrap()), "{stderr}");
    assert!(
        !fallback.exists() || fallback.metadata().unwrap().modified().unwrap() < started,
        "the host wrote {fallback:?}"
    );
}
