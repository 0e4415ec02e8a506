//! Is a binary static? It is when its ELF program headers have no PT_INTERP: nothing asks the
//! kernel to load a dynamic linker first (a static-pie still has PT_DYNAMIC, for relocating
//! itself, but no interpreter).

use std::io;
use std::path::Path;

const PT_INTERP: u32 = 3;

/// The interpreter a binary names (`/lib64/ld-linux-x86-64.so.2`), or `None` for a static one.
/// Only 64-bit little-endian ELF, which is all this bench runs.
pub fn interpreter(path: &Path) -> io::Result<Option<String>> {
    let bytes = std::fs::read(path)?;
    interpreter_of(&bytes).ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "not a 64-bit little-endian ELF"))
}

fn interpreter_of(b: &[u8]) -> Option<Option<String>> {
    let u16_at = |o: usize| Some(u16::from_le_bytes(b.get(o..o + 2)?.try_into().ok()?));
    let u32_at = |o: usize| Some(u32::from_le_bytes(b.get(o..o + 4)?.try_into().ok()?));
    let u64_at = |o: usize| Some(u64::from_le_bytes(b.get(o..o + 8)?.try_into().ok()?));
    // e_ident: magic, ELFCLASS64 (2), ELFDATA2LSB (1).
    if b.get(..6)? != b"\x7fELF\x02\x01" {
        return None;
    }
    let phoff = usize::try_from(u64_at(0x20)?).ok()?;
    let phentsize = usize::from(u16_at(0x36)?);
    let phnum = usize::from(u16_at(0x38)?);
    for i in 0..phnum {
        let ph = phoff + i * phentsize;
        if u32_at(ph)? == PT_INTERP {
            let offset = usize::try_from(u64_at(ph + 0x08)?).ok()?;
            let size = usize::try_from(u64_at(ph + 0x20)?).ok()?;
            let name = b.get(offset..offset + size)?;
            let name = name.split(|&c| c == 0).next().unwrap_or(name);
            return Some(Some(String::from_utf8_lossy(name).into_owned()));
        }
    }
    Some(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dynamic_binary_names_its_interpreter() {
        // /bin/sh on any Debian-like system is dynamic.
        let interp = interpreter(Path::new("/bin/sh")).unwrap();
        assert!(interp.is_some_and(|i| i.contains("ld-")));
    }

    #[test]
    fn garbage_is_not_elf() {
        assert!(interpreter_of(b"#!/bin/sh\n").is_none());
        assert!(interpreter_of(b"").is_none());
    }
}
