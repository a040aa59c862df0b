//! `cargo xtask dist`: the exact tree a provider copies into HostBill's root.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// Where the module lives inside HostBill.
const MODULE_DIR: &str = "includes/modules/Hosting/cloudpe";

/// Builds `dist/hostbill/` from the PHP module, the component and the host binary; returns it.
pub fn dist(root: &Path, component: &Path, host: &Path) -> Result<PathBuf> {
    let out = root.join("dist").join("hostbill");
    if out.exists() {
        fs::remove_dir_all(&out).with_context(|| format!("cannot clear {}", out.display()))?;
    }
    let module = out.join(MODULE_DIR);
    copy_tree(&root.join("hostbill-module").join(MODULE_DIR), &module)?;
    fs::copy(component, module.join("cloudpe.wasm")).context("cannot copy the component")?;
    fs::create_dir_all(module.join("bin"))?;
    let bin = module.join("bin/hostbill-module-host");
    fs::copy(host, &bin).context("cannot copy the host")?;
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&bin, fs::Permissions::from_mode(0o755))?;
    Ok(out)
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
