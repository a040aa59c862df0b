//! A small reader of ELF64 headers, enough to tell whether a Linux x86_64 binary is static: the
//! shipped host must start on any x86_64 Linux, whatever its C library (glibc of any version, or
//! none), so it must have no program interpreter (`PT_INTERP`, the dynamic loader) and need no
//! shared library (`DT_NEEDED`).

use std::fmt;
use std::path::Path;

use anyhow::{Context, Result, bail, ensure};

const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;
const DT_NULL: u64 = 0;
const DT_NEEDED: u64 = 1;
const ET_EXEC: u16 = 2;
const ET_DYN: u16 = 3;
const EM_X86_64: u16 = 62;
const SHT_SYMTAB: u32 = 2;

/// How a binary is linked, as far as starting it is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Linkage {
    /// No interpreter, no dynamic section: a classic static executable.
    Static,
    /// Position-independent and self-relocating (`static-pie`): a dynamic section without
    /// `DT_NEEDED` and no interpreter. Needs nothing from the system either.
    StaticPie,
    /// Needs the named loader (and the C library it belongs to).
    Dynamic { interpreter: Option<String>, needed: usize },
}

/// What [`inspect`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Elf {
    pub linkage: Linkage,
    /// No symbol table (`.symtab`) left.
    pub stripped: bool,
}

impl fmt::Display for Elf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.linkage {
            Linkage::Static => write!(f, "static")?,
            Linkage::StaticPie => write!(f, "static-pie")?,
            Linkage::Dynamic { interpreter, needed } => {
                write!(f, "dynamically linked")?;
                if let Some(interpreter) = interpreter {
                    write!(f, " (loader {interpreter})")?;
                }
                if *needed > 0 {
                    write!(f, ", needs {needed} shared libraries")?;
                }
            }
        }
        write!(f, ", {}", if self.stripped { "stripped" } else { "not stripped" })
    }
}

/// Reads the ELF64 little-endian x86_64 executable `bytes`.
pub fn inspect(bytes: &[u8]) -> Result<Elf> {
    ensure!(bytes.len() >= 64 && bytes[..4] == *b"\x7fELF", "not an ELF file");
    ensure!(bytes[4] == 2, "not a 64-bit ELF file");
    ensure!(bytes[5] == 1, "not a little-endian ELF file");
    let e_type = u16_at(bytes, 16)?;
    ensure!(e_type == ET_EXEC || e_type == ET_DYN, "not an executable (ELF type {e_type})");
    let machine = u16_at(bytes, 18)?;
    ensure!(machine == EM_X86_64, "not an x86_64 binary (ELF machine {machine})");

    let (phoff, phentsize, phnum) = (u64_at(bytes, 32)?, u16_at(bytes, 54)?, u16_at(bytes, 56)?);
    ensure!(phnum > 0, "no program headers");
    ensure!(phnum != 0xffff, "too many program headers (PN_XNUM) for this reader");
    ensure!(phentsize >= 56, "program header entries of {phentsize} bytes are too small");
    let mut interpreter = None;
    let mut dynamic = None;
    for i in 0..u64::from(phnum) {
        let ph = offset(phoff, i, phentsize)?;
        let (offset, size) = (u64_at(bytes, ph + 8)?, u64_at(bytes, ph + 32)?);
        match u32_at(bytes, ph)? {
            PT_INTERP => {
                let raw = slice(bytes, offset, size).context("PT_INTERP points outside the file")?;
                let name = raw.split(|&b| b == 0).next().unwrap_or_default();
                interpreter = Some(String::from_utf8_lossy(name).into_owned());
            }
            PT_DYNAMIC => dynamic = Some(slice(bytes, offset, size).context("PT_DYNAMIC points outside the file")?),
            _ => {}
        }
    }
    let needed = match dynamic {
        Some(entries) => needed_count(entries)?,
        None => 0,
    };
    let linkage = match (interpreter, needed, dynamic.is_some()) {
        (None, 0, false) => Linkage::Static,
        (None, 0, true) => Linkage::StaticPie,
        (interpreter, needed, _) => Linkage::Dynamic { interpreter, needed },
    };
    Ok(Elf { linkage, stripped: !has_symtab(bytes)? })
}

/// Reads `path` and refuses it unless it is a stripped static x86_64 executable; returns what it
/// is, for the log.
pub fn check_static(path: &Path) -> Result<Elf> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let elf = inspect(&bytes).with_context(|| format!("{} is not a Linux x86_64 executable", path.display()))?;
    if let Linkage::Dynamic { .. } = elf.linkage {
        bail!(
            "{} is {elf}: it would start only on systems with that loader and a recent enough \
             glibc; the shipped host must be static (x86_64-unknown-linux-musl)",
            path.display()
        );
    }
    ensure!(elf.stripped, "{} is {elf}: the shipped host must be stripped", path.display());
    Ok(elf)
}

/// `DT_NEEDED` entries (shared libraries) in a dynamic section.
fn needed_count(entries: &[u8]) -> Result<usize> {
    let mut needed = 0;
    for entry in entries.chunks_exact(16) {
        match u64_at(entry, 0)? {
            DT_NULL => break,
            DT_NEEDED => needed += 1,
            _ => {}
        }
    }
    Ok(needed)
}

/// Whether a section header of type `SHT_SYMTAB` (a full symbol table) is present.
fn has_symtab(bytes: &[u8]) -> Result<bool> {
    let (shoff, shentsize, shnum) = (u64_at(bytes, 40)?, u16_at(bytes, 58)?, u16_at(bytes, 60)?);
    if shoff == 0 || shnum == 0 {
        return Ok(false);
    }
    ensure!(shentsize >= 64, "section header entries of {shentsize} bytes are too small");
    for i in 0..u64::from(shnum) {
        if u32_at(bytes, offset(shoff, i, shentsize)? + 4)? == SHT_SYMTAB {
            return Ok(true);
        }
    }
    Ok(false)
}

fn offset(table: u64, index: u64, entry_size: u16) -> Result<usize> {
    let at = index.checked_mul(u64::from(entry_size)).and_then(|o| o.checked_add(table));
    at.and_then(|o| usize::try_from(o).ok()).context("header table offset overflows")
}

fn slice(bytes: &[u8], offset: u64, size: u64) -> Option<&[u8]> {
    let start = usize::try_from(offset).ok()?;
    let end = start.checked_add(usize::try_from(size).ok()?)?;
    bytes.get(start..end)
}

fn array<const N: usize>(bytes: &[u8], at: usize) -> Result<[u8; N]> {
    let end = at.checked_add(N).context("offset overflows")?;
    let raw =
        bytes.get(at..end).with_context(|| format!("truncated ELF file (needs {end} bytes, has {})", bytes.len()))?;
    Ok(raw.try_into().expect("slice of N bytes"))
}

fn u16_at(bytes: &[u8], at: usize) -> Result<u16> {
    array(bytes, at).map(u16::from_le_bytes)
}

fn u32_at(bytes: &[u8], at: usize) -> Result<u32> {
    array(bytes, at).map(u32::from_le_bytes)
}

fn u64_at(bytes: &[u8], at: usize) -> Result<u64> {
    array(bytes, at).map(u64::from_le_bytes)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::process::Command;

    use super::*;

    const PT_LOAD: u32 = 1;

    /// A minimal ELF64 x86_64 file: the header, the program headers (each segment's bytes are
    /// appended after the table) and, with `symtab`, a section table holding one `SHT_SYMTAB`.
    fn elf(e_type: u16, segments: &[(u32, Vec<u8>)], symtab: bool) -> Vec<u8> {
        let mut out = vec![0u8; 64];
        out[..4].copy_from_slice(b"\x7fELF");
        out[4] = 2;
        out[5] = 1;
        out[6] = 1;
        out[16..18].copy_from_slice(&e_type.to_le_bytes());
        out[18..20].copy_from_slice(&EM_X86_64.to_le_bytes());
        out[32..40].copy_from_slice(&64u64.to_le_bytes());
        out[52..54].copy_from_slice(&64u16.to_le_bytes());
        out[54..56].copy_from_slice(&56u16.to_le_bytes());
        out[56..58].copy_from_slice(&(segments.len() as u16).to_le_bytes());
        let mut data_at = 64 + 56 * segments.len();
        for (p_type, data) in segments {
            let mut ph = [0u8; 56];
            ph[..4].copy_from_slice(&p_type.to_le_bytes());
            ph[8..16].copy_from_slice(&(data_at as u64).to_le_bytes());
            ph[32..40].copy_from_slice(&(data.len() as u64).to_le_bytes());
            ph[40..48].copy_from_slice(&(data.len() as u64).to_le_bytes());
            out.extend_from_slice(&ph);
            data_at += data.len();
        }
        for (_, data) in segments {
            out.extend_from_slice(data);
        }
        if symtab {
            let shoff = out.len() as u64;
            out[40..48].copy_from_slice(&shoff.to_le_bytes());
            out[58..60].copy_from_slice(&64u16.to_le_bytes());
            out[60..62].copy_from_slice(&2u16.to_le_bytes());
            out.extend_from_slice(&[0u8; 64]); // SHT_NULL
            let mut sh = [0u8; 64];
            sh[4..8].copy_from_slice(&SHT_SYMTAB.to_le_bytes());
            out.extend_from_slice(&sh);
        }
        out
    }

    fn dynamic(tags: &[u64]) -> Vec<u8> {
        tags.iter().chain([&DT_NULL]).flat_map(|tag| [tag.to_le_bytes(), 0u64.to_le_bytes()].concat()).collect()
    }

    #[test]
    fn a_static_executable_is_accepted() {
        let elf = inspect(&elf(ET_EXEC, &[(PT_LOAD, vec![0; 8])], false)).unwrap();
        assert_eq!(elf, Elf { linkage: Linkage::Static, stripped: true });
    }

    #[test]
    fn a_static_pie_is_accepted() {
        // A dynamic section (for self-relocation) without DT_NEEDED and no interpreter.
        let bytes = elf(ET_DYN, &[(PT_LOAD, vec![0; 8]), (PT_DYNAMIC, dynamic(&[5, 6]))], false);
        assert_eq!(inspect(&bytes).unwrap().linkage, Linkage::StaticPie);
    }

    #[test]
    fn an_interpreter_makes_it_dynamic() {
        let interp = b"/lib64/ld-linux-x86-64.so.2\0".to_vec();
        let bytes = elf(ET_DYN, &[(PT_INTERP, interp), (PT_DYNAMIC, dynamic(&[DT_NEEDED, DT_NEEDED]))], false);
        let found = inspect(&bytes).unwrap();
        assert_eq!(
            found.linkage,
            Linkage::Dynamic { interpreter: Some("/lib64/ld-linux-x86-64.so.2".into()), needed: 2 }
        );
        assert!(found.to_string().contains("loader /lib64/ld-linux-x86-64.so.2"), "{found}");
    }

    #[test]
    fn a_needed_library_without_interpreter_is_dynamic_too() {
        let bytes = elf(ET_DYN, &[(PT_DYNAMIC, dynamic(&[DT_NEEDED]))], false);
        assert_eq!(inspect(&bytes).unwrap().linkage, Linkage::Dynamic { interpreter: None, needed: 1 });
    }

    #[test]
    fn a_symbol_table_means_not_stripped() {
        let elf = inspect(&elf(ET_EXEC, &[(PT_LOAD, vec![0; 8])], true)).unwrap();
        assert!(!elf.stripped);
        assert_eq!(elf.to_string(), "static, not stripped");
    }

    #[test]
    fn malformed_or_foreign_files_are_refused() {
        assert!(inspect(b"#!/bin/sh\necho hello\n").is_err());
        let good = elf(ET_EXEC, &[(PT_LOAD, vec![0; 8])], false);
        let mut class32 = good.clone();
        class32[4] = 1;
        assert!(inspect(&class32).unwrap_err().to_string().contains("64-bit"));
        let mut arm = good.clone();
        arm[18..20].copy_from_slice(&183u16.to_le_bytes());
        assert!(inspect(&arm).unwrap_err().to_string().contains("x86_64"));
        let mut relocatable = good.clone();
        relocatable[16] = 1;
        assert!(inspect(&relocatable).is_err());
        // Program headers cut off, and a segment pointing past the end.
        assert!(inspect(&good[..80]).unwrap_err().to_string().contains("truncated"));
        let mut outside = elf(ET_DYN, &[(PT_INTERP, b"/lib/ld.so\0".to_vec())], false);
        outside.truncate(outside.len() - 4);
        assert!(inspect(&outside).is_err());
    }

    #[test]
    fn the_system_shell_is_refused() {
        let err = check_static(Path::new("/bin/sh")).unwrap_err().to_string();
        assert!(err.contains("dynamically linked") && err.contains("loader"), "{err}");
    }

    /// Real binaries from rustc: the same program linked for glibc (refused) and for musl, static
    /// and stripped as `cargo xtask dist` builds the host (accepted, and it runs).
    #[test]
    fn rustc_glibc_build_is_refused_and_musl_build_accepted() {
        let dir = std::env::temp_dir().join(format!("xtask-elf-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let source = dir.join("hello.rs");
        std::fs::write(&source, "fn main() { println!(\"hello from a static binary\"); }\n").unwrap();
        let compile = |target: &str| -> PathBuf {
            let out = dir.join(format!("hello-{target}"));
            let status = Command::new(std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into()))
                .args(["--edition", "2024", "-C", "strip=symbols", "--target", target, "-o"])
                .arg(&out)
                .arg(&source)
                .status()
                .expect("rustc runs");
            assert!(
                status.success(),
                "rustc --target {target} failed (is the target installed? `rustup target add {target}`)"
            );
            out
        };

        let glibc = compile("x86_64-unknown-linux-gnu");
        let err = check_static(&glibc).unwrap_err().to_string();
        assert!(err.contains("loader") && err.contains("x86_64-unknown-linux-musl"), "{err}");

        let musl = compile(crate::MUSL_TARGET);
        let elf = check_static(&musl).unwrap();
        assert!(matches!(elf.linkage, Linkage::Static | Linkage::StaticPie), "{elf}");
        let out = Command::new(&musl).output().unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "hello from a static binary\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
