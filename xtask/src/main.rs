//! Build automation (`cargo xtask <command>`), so the repository needs no Makefile or scripts
//! beyond `.ci/run`.
//!
//! - `build`: install the wasm target if missing, build the component and the host.
//! - `test`: `build`, then run every test of the workspace against those artifacts.
//! - `demo`: `build`, then run every operation and a sync through the host against a simulated
//!   CloudPe, and print what happened.
//! - `dist`: the component (with its metadata, signed with `--signing-key`) and a static,
//!   stripped release host (`x86_64-unknown-linux-musl`), laid out as `dist/hostbill/`, the tree a
//!   provider copies into HostBill; then checks the shipped binary is static and runs the bundled
//!   component, verified against the bundled public key.
//! - `keygen`: a new signing key pair.
//! - `bench`: release build, then the sync benchmark (new sync vs the old module's algorithm);
//!   `--static` benchmarks the static host that `dist` ships (`bench-startup` too).
//! - `bench-startup`: release build, then one operation cold, warm and against a bare curl (with
//!   `-- --baseline-host FILE`, another host binary timed in the same run, interleaved).

use std::path::{Path, PathBuf};
use std::process::Command;

mod dist;
mod elf;
#[cfg(test)]
mod layering;
mod sign;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};

/// The component's rustc target.
const WASM_TARGET: &str = "wasm32-wasip2";
/// The cargo profile the component is built with (opt-level 3, LTO, strip).
const COMPONENT_PROFILE: &str = "component";
/// The shipped host's rustc target: static, so it starts whatever the C library of the system.
const MUSL_TARGET: &str = "x86_64-unknown-linux-musl";
/// The variable telling the `cc` crate (`ring`'s build script) which C compiler targets musl.
const MUSL_CC_VAR: &str = "CC_x86_64_unknown_linux_musl";
/// Test-only components (under `tests/components/`), built for the end-to-end tests.
const TEST_COMPONENTS: &[&str] =
    &["egress-probe", "future-module", "contract-2-0", "wrong-world", "hostile", "hostile-lifecycle"];

#[derive(Parser)]
#[command(about = "Build, test and demo the HostBill CloudPe module")]
struct Xtask {
    #[command(subcommand)]
    command: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Build the component and the host (debug host unless --release).
    Build {
        #[arg(long)]
        release: bool,
    },
    /// Build, then run all tests (unit, end-to-end) against the built component and host.
    Test {
        /// Extra arguments for `cargo test` (after `--`).
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Build, then run every operation and a sync against a simulated CloudPe.
    Demo {
        #[arg(long)]
        release: bool,
    },
    /// Build in release, then time the sync of 10,000 accounts against the old algorithm.
    Bench {
        /// Benchmark the static (musl) host that `dist` ships instead of the glibc release host.
        #[arg(long = "static")]
        static_host: bool,
        /// Extra arguments for the benchmark (after `--`; see `cloudpe-bench --help`).
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Build the component and a static release host (x86_64-unknown-linux-musl, needs
    /// musl-gcc), lay out dist/hostbill/ (the tree a provider copies into HostBill's root) with the
    /// component signed and the public key to verify it, and check the shipped host is static
    /// and runs the component, verified.
    Dist {
        /// The vendor's private signing key (PKCS#8 PEM, from `cargo xtask keygen`). Without it
        /// the bundle is signed with a development key kept in target/dev-signing-key.
        #[arg(long, env = "CLOUDPE_SIGNING_KEY", value_name = "FILE")]
        signing_key: Option<PathBuf>,
    },
    /// Make a signing key pair: DIR/signing.key (private, 0600: keep it off the servers) and
    /// DIR/signing.pub (ship it; the host trusts it with --trusted-keys).
    Keygen {
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Build in release, then time one operation cold, warm and against a bare curl.
    BenchStartup {
        /// Time the static (musl) host that `dist` ships instead of the glibc release host.
        #[arg(long = "static")]
        static_host: bool,
        /// Extra arguments for the benchmark (after `--`; see `cloudpe-startup-bench --help`).
        #[arg(last = true)]
        args: Vec<String>,
    },
}

fn main() -> Result<()> {
    let root = workspace_root();
    std::env::set_current_dir(&root)?;
    match Xtask::parse().command {
        Task::Build { release } => {
            build(&root, release, false)?;
        }
        Task::Test { args } => {
            // xtask's own tests link a small program for musl, as `dist` does the host, and
            // host/fastmem is tested for musl.
            ensure_target(MUSL_TARGET)?;
            let artifacts = build(&root, false, true)?;
            let mut tests = cargo();
            tests.args(["test", "--workspace"]).args(&args);
            artifacts.export(&mut tests);
            run(&mut tests)?;
            // The static host's memcpy and memmove (host/fastmem), built as they ship: for musl.
            run(cargo().args(["test", "-p", "fastmem", "--target", MUSL_TARGET]))?;
            php_tests(&root, &artifacts)?;
        }
        Task::Demo { release } => {
            let artifacts = build(&root, release, false)?;
            let mut demo = Command::new(artifacts.bin("cloudpe-demo"));
            artifacts.export(&mut demo);
            run(&mut demo)?;
        }
        Task::Dist { signing_key } => {
            let component = build_component(&root, false)?;
            let host = build_static_host(&root)?;
            let key = match signing_key {
                Some(key) => key,
                None => {
                    let (key, _) = sign::local_key(&target_dir(&root), "dev-signing-key")?;
                    eprintln!(
                        "xtask: WARNING: no --signing-key: the bundle is signed with the DEVELOPMENT key {} \
                         (make a release key with `cargo xtask keygen`)",
                        key.display()
                    );
                    key
                }
            };
            let out = dist::dist(&root, &component, &host, &key)?;
            eprintln!("xtask: checking the shipped host");
            let verdict = dist::verify(&out)?;
            println!("{}:", out.display());
            for file in dist::list(&out) {
                println!("  {file}");
            }
            println!("bin/hostbill-module-host: {verdict}");
            println!("Copy its contents into HostBill's root folder (see INSTALL in README.md).");
        }
        Task::Keygen { out } => {
            let (private, public) = sign::keygen(&out)?;
            println!("private key: {} (keep it secret, off the servers)", private.display());
            println!("public key:  {} (ship it: dist puts it in keys/vendor.pub)", public.display());
        }
        Task::Bench { static_host, args } => bench(&root, "cloudpe-bench", static_host, &args)?,
        Task::BenchStartup { static_host, args } => bench(&root, "cloudpe-startup-bench", static_host, &args)?,
    }
    Ok(())
}

/// The HostBill module's PHPUnit suite, its end-to-end tests against the built host, component
/// and simulator included.
fn php_tests(root: &Path, artifacts: &Artifacts) -> Result<()> {
    // `build(.., for_tests = true)` built the simulator with the workspace's binaries.
    let mut phpunit = Command::new("phpunit");
    phpunit
        .args(["-c", "hostbill-module/tests/phpunit.xml"])
        .env("CLOUDPE_SIM_BIN", target_dir(root).join("debug/cloudpe-sim"));
    artifacts.export(&mut phpunit);
    eprintln!("xtask: running the PHP tests (phpunit)");
    match phpunit.status() {
        Ok(status) if status.success() => Ok(()),
        Ok(status) => bail!("the PHP tests failed ({status})"),
        Err(err) => Err(err).context(
            "cannot run phpunit: the PHP tests need php-cli and phpunit \
             (Debian: apt-get install php-cli phpunit php-xml php-mbstring)",
        ),
    }
}

/// Builds in release and runs the benchmark binary `bin` of the tests crate; with `static_host`,
/// against the static host `dist` ships.
fn bench(root: &Path, bin: &str, static_host: bool, args: &[String]) -> Result<()> {
    let mut artifacts = build(root, true, false)?;
    if static_host {
        artifacts.host = build_static_host(root)?;
    }
    // Signed, with the key exported: the startup benchmark verifies it, as a HostBill install does.
    artifacts.trusted_keys = Some(sign_test_components(root, &artifacts.test_components)?);
    let mut bench = Command::new(artifacts.bin(bin));
    bench.args(args);
    artifacts.export(&mut bench);
    run(&mut bench)
}

/// Paths of the built component and host.
struct Artifacts {
    component: PathBuf,
    host: PathBuf,
    /// Folder of the workspace's built binaries (the demo, the simulator, the benchmarks).
    bins: PathBuf,
    /// Folder of the built test-only components.
    test_components: PathBuf,
    /// Public key that signed the built components (test builds).
    trusted_keys: Option<PathBuf>,
}

impl Artifacts {
    /// The workspace's built binary `name`.
    fn bin(&self, name: &str) -> PathBuf {
        self.bins.join(name)
    }

    /// Tells tests and the demo where the artifacts are.
    fn export(&self, cmd: &mut Command) {
        cmd.env("CLOUDPE_COMPONENT", &self.component)
            .env("HOSTBILL_MODULE_HOST_BIN", &self.host)
            .env("HOSTBILL_TEST_COMPONENTS", &self.test_components);
        if let Some(keys) = &self.trusted_keys {
            cmd.env("CLOUDPE_TRUSTED_KEYS", keys);
        }
    }
}

/// Builds the component and the workspace's binaries (the host, the simulator, the demo, the
/// benchmarks); with `for_tests`, also the tests and the test-only components.
fn build(root: &Path, release: bool, for_tests: bool) -> Result<Artifacts> {
    let component = build_component(root, for_tests)?;
    let profile = if release { "release" } else { "debug" };
    let what = if for_tests { "the workspace's binaries and tests" } else { "the workspace's binaries" };
    eprintln!("xtask: building {what} ({profile})");
    let mut host = cargo();
    // Cargo unifies features over the packages it is asked to build, so `-p hostbill-module-host`
    // alone resolves wasmtime's dependencies differently from the workspace (anyhow without its
    // `default` feature, indexmap's too in the proc-macro graph) and `demo` then `test` compiled
    // wasmtime twice. Every build is of the workspace's binaries, with `for_tests` its tests too
    // (their dev-dependencies add features only outside wasmtime's dependencies), and the demo
    // and benchmarks run the binaries built here rather than through `cargo run -p`, which would
    // resolve the tests crate's dependencies once more.
    host.args(["build", "--workspace", "--bins"]);
    if for_tests {
        host.arg("--tests");
    }
    if release {
        host.arg("--release");
    }
    run(&mut host)?;
    let test_components = component.parent().expect("the component is in a folder").to_path_buf();
    let trusted_keys = if for_tests { Some(sign_test_components(root, &test_components)?) } else { None };
    let bins = target_dir(root).join(profile);
    let artifacts =
        Artifacts { test_components, component, host: bins.join("hostbill-module-host"), bins, trusted_keys };
    exists(&artifacts.host)?;
    Ok(artifacts)
}

/// Builds the CloudPe component (with `for_tests`, also the test-only components and the
/// variant); returns the `.wasm` file.
fn build_component(root: &Path, for_tests: bool) -> Result<PathBuf> {
    ensure_target(WASM_TARGET)?;
    eprintln!("xtask: building the component ({WASM_TARGET}, profile {COMPONENT_PROFILE})");
    let mut component = cargo();
    component.args(["build", "--target", WASM_TARGET, "--profile", COMPONENT_PROFILE, "-p", "cloudpe-guest"]);
    if for_tests {
        for name in TEST_COMPONENTS {
            component.args(["-p", name]);
        }
    }
    run(&mut component)?;
    let version = sign::crate_version(&root.join("guest/Cargo.toml"))?;
    if for_tests {
        build_variant(root, &version)?;
    }
    let component = target_dir(root).join(WASM_TARGET).join(COMPONENT_PROFILE).join("cloudpe_guest.wasm");
    exists(&component)?;
    sign::embed_metadata(root, &component, &version)?;
    Ok(component)
}

/// Signs every built component in `dir` with the test key (made once under target/); returns the
/// public key file that verifies them.
fn sign_test_components(root: &Path, dir: &Path) -> Result<PathBuf> {
    let (private, public) = sign::local_key(&target_dir(root), "test-signing-key")?;
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|x| x == "wasm") {
            sign::sign(&path, &private)?;
        }
    }
    Ok(public)
}

/// Builds the release host for musl, statically linked and stripped: the binary `dist` ships.
/// `ring` (rustls) compiles C, so this needs a musl C compiler (`musl-gcc`, from musl-tools);
/// `CC_x86_64_unknown_linux_musl` names it unless already set.
fn build_static_host(root: &Path) -> Result<PathBuf> {
    ensure_target(MUSL_TARGET)?;
    let mut host = cargo();
    if std::env::var_os(MUSL_CC_VAR).is_none() {
        let found = Command::new("musl-gcc").arg("--version").output().is_ok_and(|out| out.status.success());
        if !found {
            bail!(
                "the static host ({MUSL_TARGET}) needs musl-gcc, a C compiler for musl (ring, \
                 used by rustls, compiles C): install musl-tools (Debian/Ubuntu: \
                 `apt-get install musl-tools`; Fedora/EPEL: `dnf install musl-gcc`), or set \
                 {MUSL_CC_VAR} to another musl C compiler"
            );
        }
        host.env(MUSL_CC_VAR, "musl-gcc");
    }
    eprintln!("xtask: building the static host (release, {MUSL_TARGET}, stripped)");
    host.args(["build", "--release", "--target", MUSL_TARGET, "-p", "hostbill-module-host"])
        .env("CARGO_PROFILE_RELEASE_STRIP", "symbols");
    run(&mut host)?;
    let bin = target_dir(root).join(MUSL_TARGET).join("release/hostbill-module-host");
    exists(&bin)?;
    Ok(bin)
}

fn exists(path: &Path) -> Result<()> {
    if !path.is_file() {
        bail!("the build did not produce {}", path.display());
    }
    Ok(())
}

/// The CloudPe component's `test-variant` build, for the swap test: built in its own target
/// folder (so neither build invalidates the other) and copied beside the test components as
/// `cloudpe_guest_variant.wasm`.
fn build_variant(root: &Path, version: &str) -> Result<()> {
    let variant_target = target_dir(root).join("variant");
    run(cargo()
        .args(["build", "--target", WASM_TARGET, "--profile", COMPONENT_PROFILE, "-p", "cloudpe-guest"])
        .args(["--features", "cloudpe-guest/test-variant", "--target-dir"])
        .arg(&variant_target))?;
    let built = variant_target.join(WASM_TARGET).join(COMPONENT_PROFILE).join("cloudpe_guest.wasm");
    let copy = target_dir(root).join(WASM_TARGET).join(COMPONENT_PROFILE).join("cloudpe_guest_variant.wasm");
    std::fs::copy(&built, &copy).with_context(|| format!("cannot copy {} to {}", built.display(), copy.display()))?;
    sign::embed_metadata(root, &copy, &format!("{version}+test-variant"))
}

/// Installs a rustc target through rustup (for the pinned toolchain) when it is missing (a no-op
/// otherwise).
fn ensure_target(target: &str) -> Result<()> {
    let installed = Command::new("rustup").args(["target", "list", "--installed"]).output();
    match installed {
        Ok(out) if String::from_utf8_lossy(&out.stdout).lines().any(|l| l.trim() == target) => Ok(()),
        Ok(_) => {
            eprintln!("xtask: installing the {target} target");
            run(Command::new("rustup").args(["target", "add", target]))
                .with_context(|| format!("cannot install the {target} target; try `rustup target add {target}`"))
        }
        Err(_) => {
            eprintln!("xtask: rustup not found; assuming the {target} target is installed");
            Ok(())
        }
    }
}

fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

fn run(cmd: &mut Command) -> Result<()> {
    let status = cmd.status().with_context(|| format!("cannot run {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed with {status}");
    }
    Ok(())
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the workspace").to_path_buf()
}

fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target"))
}
