//! `cargo xtask dist`: the exact tree a provider copies into HostBill's root.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail, ensure};

use crate::elf;

/// Where the module lives inside HostBill.
const MODULE_DIR: &str = "includes/modules/Hosting/cloudpe";

/// Builds `dist/hostbill/` from the PHP module, the component (signed with `signing_key`, whose
/// public key ships as `keys/vendor.pub`) and the host binary; returns it.
pub fn dist(root: &Path, component: &Path, host: &Path, signing_key: &Path) -> Result<PathBuf> {
    let out = root.join("dist").join("hostbill");
    if out.exists() {
        fs::remove_dir_all(&out).with_context(|| format!("cannot clear {}", out.display()))?;
    }
    let module = out.join(MODULE_DIR);
    copy_tree(&root.join("hostbill-module").join(MODULE_DIR), &module)?;
    fs::copy(component, module.join("cloudpe.wasm")).context("cannot copy the component")?;
    let key_id = crate::sign::sign(&module.join("cloudpe.wasm"), signing_key)?;
    fs::create_dir_all(module.join("keys"))?;
    fs::write(module.join("keys/vendor.pub"), crate::sign::public_key_of(signing_key)?)?;
    eprintln!("xtask: cloudpe.wasm signed by key {key_id}");
    fs::create_dir_all(module.join("bin"))?;
    let bin = module.join("bin/hostbill-module-host");
    fs::copy(host, &bin).context("cannot copy the host")?;
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&bin, fs::Permissions::from_mode(0o755))?;
    Ok(out)
}

/// Checks the host binary in the laid-out tree as shipped: a static, stripped x86_64 executable
/// (no dynamic loader, no shared library), that starts and runs the bundled component. Returns a
/// one-line description for the log.
pub fn verify(out: &Path) -> Result<String> {
    let module = out.join(MODULE_DIR);
    let bin = module.join("bin/hostbill-module-host");
    let elf = elf::check_static(&bin)?;

    let version = run_shipped(Command::new(&bin).arg("--version"))?;
    ensure!(
        version.starts_with("hostbill-module-host "),
        "{} --version printed {version:?}, not its name and version",
        bin.display()
    );
    let info = run_shipped(
        Command::new(&bin)
            .args(["--no-cache", "--component"])
            .arg(module.join("cloudpe.wasm"))
            .arg("--trusted-keys")
            .arg(module.join("keys"))
            .arg("info"),
    )?;
    let compact: String = info.chars().filter(|c| !c.is_whitespace()).collect();
    ensure!(
        compact.contains(r#""ok":true"#) && compact.contains(r#""name":"CloudPe""#),
        "`{} info` with the bundled component did not report the CloudPe module: {info}",
        bin.display()
    );
    ensure!(
        compact.contains(r#""verified":true"#) && compact.contains(r#""licenses":"Apache-2.0""#),
        "the bundled component is not verified against keys/vendor.pub, or carries no metadata: {info}"
    );
    let size = fs::metadata(&bin)?.len();
    Ok(format!("{elf}, {:.1} MiB, runs: {}", size as f64 / (1024.0 * 1024.0), version.trim()))
}

/// Runs the shipped binary with a clean environment; its stdout if it exits 0.
fn run_shipped(cmd: &mut Command) -> Result<String> {
    cmd.env_clear().env("PATH", "/usr/bin:/bin");
    let output = cmd.output().with_context(|| format!("cannot start {cmd:?}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        bail!("{cmd:?} exited with {}: {stdout}{}", output.status, String::from_utf8_lossy(&output.stderr));
    }
    Ok(stdout)
}

fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from).with_context(|| format!("cannot read {}", from.display()))? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else {
            fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// Every file under `dir`, relative, sorted.
pub fn list(dir: &Path) -> Vec<String> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        for entry in fs::read_dir(&current).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(relative) = path.strip_prefix(dir) {
                files.push(relative.display().to_string());
            }
        }
    }
    files.sort();
    files
}
