//! PE/COFF section appender: the unified kernel image (UKI) of a Secure Boot flash is systemd's
//! EFI stub with the kernel, the initramfs, the command line and an os-release added as
//! sections, then signed as a whole (`sbsign`), so the firmware's check covers all four.
//!
//! Layout, as systemd's `ukify` places them: each new section header goes right after the last
//! one (inside `SizeOfHeaders`: refused when there is no room, never moving the stub's code);
//! each section's memory address follows the previous section's end, rounded up to
//! `SectionAlignment`; its bytes follow the previous section's bytes in the file, rounded up to
//! `FileAlignment` and zero-padded. The stub's COFF symbol table (after its last section, never
//! loaded) is dropped, so no unsigned gap is left between signed sections. `NumberOfSections`,
//! `SizeOfImage`, `SizeOfInitializedData` and `CheckSum` are brought up to date. The same inputs
//! give the same bytes (no time stamp is written). An image that is already signed is refused:
//! sections come first, the signature last.
//!
//! Every offset is read with bounds checks and every sum is checked: a broken stub is an error,
//! never a panic.

/// The section characteristics of added data: initialized data, readable.
pub const DATA_SECTION: u32 = 0x4000_0040;

const SECTION_HEADER: usize = 40;
const PE32_PLUS: u16 = 0x20b;
const DIR_SECURITY: usize = 4;

fn u16_at(b: &[u8], off: usize) -> Option<u16> {
    let s = b.get(off..off.checked_add(2)?)?;
    Some(u16::from_le_bytes([s[0], s[1]]))
}

fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    let s = b.get(off..off.checked_add(4)?)?;
    Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

fn put_u16(b: &mut [u8], off: usize, v: u16) -> Option<()> {
    b.get_mut(off..off.checked_add(2)?)?.copy_from_slice(&v.to_le_bytes());
    Some(())
}

fn put_u32(b: &mut [u8], off: usize, v: u32) -> Option<()> {
    b.get_mut(off..off.checked_add(4)?)?.copy_from_slice(&v.to_le_bytes());
    Some(())
}

/// `v` rounded up to `a` (a power of two), or None on overflow.
fn align_up(v: u64, a: u64) -> Option<u64> {
    Some(v.checked_add(a - 1)? & !(a - 1))
}

/// The parsed headers of a PE32+ image (offsets into the file).
#[derive(Debug)]
struct Headers {
    coff: usize,
    opt: usize,
    sections: usize,
    nsections: usize,
    section_align: u64,
    file_align: u64,
    size_of_headers: u64,
}

fn parse(img: &[u8]) -> Result<Headers, String> {
    let short = || "too short for its PE headers".to_owned();
    if img.get(0..2) != Some(b"MZ") {
        return Err("not a PE image (no MZ signature)".into());
    }
    let pe = u32_at(img, 0x3c).ok_or_else(short)? as usize;
    if img.get(pe..pe.checked_add(4).ok_or_else(short)?) != Some(b"PE\0\0") {
        return Err("not a PE image (no PE signature where e_lfanew points)".into());
    }
    let coff = pe + 4;
    let nsections = u16_at(img, coff + 2).ok_or_else(short)? as usize;
    let opt_size = u16_at(img, coff + 16).ok_or_else(short)? as usize;
    let opt = coff + 20;
    if u16_at(img, opt).ok_or_else(short)? != PE32_PLUS {
        return Err("not a PE32+ (64-bit) image".into());
    }
    // The fields used below end with the security data directory (112 + 5 * 8).
    if opt_size < 112 + (DIR_SECURITY + 1) * 8 {
        return Err(format!("optional header of {opt_size} bytes: too small"));
    }
    let section_align = u32_at(img, opt + 32).ok_or_else(short)? as u64;
    let file_align = u32_at(img, opt + 36).ok_or_else(short)? as u64;
    for (what, a) in [("SectionAlignment", section_align), ("FileAlignment", file_align)] {
        if !a.is_power_of_two() {
            return Err(format!("{what} {a:#x}: not a power of two"));
        }
    }
    let size_of_headers = u32_at(img, opt + 60).ok_or_else(short)? as u64;
    let sections = opt + opt_size;
    let end = sections + nsections * SECTION_HEADER;
    if end > img.len() || end as u64 > size_of_headers {
        return Err("section headers beyond the headers or the file".into());
    }
    Ok(Headers { coff, opt, sections, nsections, section_align, file_align, size_of_headers })
}

/// One section header's fields that matter here.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SectionInfo {
    pub name: [u8; 8],
    pub virtual_size: u32,
    pub virtual_address: u32,
    pub raw_size: u32,
    pub raw_pointer: u32,
    pub characteristics: u32,
}

fn section(img: &[u8], h: &Headers, i: usize) -> Option<SectionInfo> {
    let o = h.sections + i * SECTION_HEADER;
    let mut name = [0u8; 8];
    name.copy_from_slice(img.get(o..o + 8)?);
    Some(SectionInfo {
        name,
        virtual_size: u32_at(img, o + 8)?,
        virtual_address: u32_at(img, o + 12)?,
        raw_size: u32_at(img, o + 16)?,
        raw_pointer: u32_at(img, o + 20)?,
        characteristics: u32_at(img, o + 36)?,
    })
}

/// The sections of a PE32+ image, in header order.
pub fn sections(img: &[u8]) -> Result<Vec<SectionInfo>, String> {
    let h = parse(img)?;
    (0..h.nsections).map(|i| section(img, &h, i).ok_or_else(|| format!("section header {i}: beyond the file"))).collect()
}

/// The bytes of the section called `name` (its first one): as many as both its sizes say and the
/// file holds. None when there is no such section or the image is not PE32+.
pub fn section_data<'a>(img: &'a [u8], name: &str) -> Option<&'a [u8]> {
    let s = sections(img).ok()?.into_iter().find(|s| name_str(&s.name) == name)?;
    let start = s.raw_pointer as usize;
    let len = s.raw_size.min(s.virtual_size) as usize;
    img.get(start..start.checked_add(len)?)
}

/// The PE checksum (the algorithm of Windows' CheckSumMappedFile): 16-bit one's-complement-style
/// sum of the file with the CheckSum field read as zero, plus the file's length.
pub fn checksum(img: &[u8], checksum_off: usize) -> u32 {
    let mut sum: u64 = 0;
    for (i, w) in img.chunks(2).enumerate() {
        let off = i * 2;
        let v = if off >= checksum_off && off < checksum_off + 4 {
            0
        } else {
            w[0] as u64 | (w.get(1).copied().unwrap_or(0) as u64) << 8
        };
        sum += v;
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum = (sum & 0xffff) + (sum >> 16);
    (sum as u32).wrapping_add(img.len() as u32)
}

/// `img` with `add` (name, bytes) appended as readable data sections, in that order.
/// Errors are the reason only; the caller names the file.
pub fn append_sections(img: &[u8], add: &[(&str, &[u8])]) -> Result<Vec<u8>, String> {
    let h = parse(img)?;
    let opt = h.opt;
    let security = opt + 112 + DIR_SECURITY * 8;
    if u32_at(img, security).unwrap_or(0) != 0 || u32_at(img, security + 4).unwrap_or(0) != 0 {
        return Err("already signed (add sections first, then sign)".into());
    }
    let mut existing = Vec::with_capacity(h.nsections);
    for i in 0..h.nsections {
        existing.push(section(img, &h, i).ok_or_else(|| format!("section header {i}: beyond the file"))?);
    }
    // Where the stub's loaded image and its bytes in the file end.
    let (mut va_end, mut raw_end) = (0u64, h.size_of_headers);
    for s in &existing {
        let vsize = if s.virtual_size == 0 { s.raw_size } else { s.virtual_size };
        va_end = va_end.max(s.virtual_address as u64 + vsize as u64);
        if s.raw_size != 0 {
            let end = s.raw_pointer as u64 + s.raw_size as u64;
            if end > img.len() as u64 {
                return Err(format!("section {}: its bytes end beyond the file", name_str(&s.name)));
            }
            raw_end = raw_end.max(end);
        }
    }
    if raw_end > img.len() as u64 {
        return Err("SizeOfHeaders beyond the file".into());
    }
    // Anything after the last section's bytes must be the COFF symbol table (dropped).
    let symtab = u32_at(img, h.coff + 8).unwrap_or(0) as u64;
    if (img.len() as u64) > raw_end && (symtab == 0 || symtab < raw_end) {
        return Err(format!("{} bytes after the last section that are not its symbol table", img.len() as u64 - raw_end));
    }
    let headers_end = h.sections + (h.nsections + add.len()) * SECTION_HEADER;
    let first_raw = existing.iter().filter(|s| s.raw_size != 0).map(|s| s.raw_pointer as u64).min().unwrap_or(u64::MAX);
    if headers_end as u64 > h.size_of_headers || headers_end as u64 > first_raw {
        return Err(format!(
            "no room for {} more section headers (they would end at {headers_end:#x}, SizeOfHeaders is {:#x})",
            add.len(),
            h.size_of_headers
        ));
    }
    let nsections = u16::try_from(h.nsections + add.len()).map_err(|_| "too many sections".to_owned())?;

    let overflow = || "the image would exceed 4 GiB".to_owned();
    let raw_end = usize::try_from(raw_end).map_err(|_| overflow())?;
    let mut out = img.get(..raw_end).ok_or_else(overflow)?.to_vec();
    let mut va = align_up(va_end, h.section_align).ok_or_else(overflow)?;
    let mut initialized = u32_at(img, opt + 8).unwrap_or(0) as u64;
    let mut image_end = va_end;
    for (i, (name, data)) in add.iter().enumerate() {
        if name.is_empty() || name.len() > 8 {
            return Err(format!("section name {name:?}: 1 to 8 bytes"));
        }
        if existing.iter().any(|s| name_str(&s.name) == *name) || add[..i].iter().any(|(n, _)| n == name) {
            return Err(format!("section {name}: already there"));
        }
        if data.is_empty() {
            return Err(format!("section {name}: empty"));
        }
        let ptr = align_up(out.len() as u64, h.file_align).ok_or_else(overflow)?;
        let raw_size = align_up(data.len() as u64, h.file_align).ok_or_else(overflow)?;
        let fits = |v: u64| u32::try_from(v).map_err(|_| overflow());
        let mut hdr = [0u8; SECTION_HEADER];
        hdr[..name.len()].copy_from_slice(name.as_bytes());
        hdr[8..12].copy_from_slice(&fits(data.len() as u64)?.to_le_bytes());
        hdr[12..16].copy_from_slice(&fits(va)?.to_le_bytes());
        hdr[16..20].copy_from_slice(&fits(raw_size)?.to_le_bytes());
        hdr[20..24].copy_from_slice(&fits(ptr)?.to_le_bytes());
        hdr[36..40].copy_from_slice(&DATA_SECTION.to_le_bytes());
        let at = h.sections + (h.nsections + i) * SECTION_HEADER;
        out.get_mut(at..at + SECTION_HEADER).ok_or_else(overflow)?.copy_from_slice(&hdr);
        out.resize(usize::try_from(ptr).map_err(|_| overflow())?, 0);
        out.extend_from_slice(data);
        out.resize(usize::try_from(ptr + raw_size).map_err(|_| overflow())?, 0);
        fits(out.len() as u64)?;
        image_end = va + data.len() as u64;
        initialized = initialized.checked_add(raw_size).ok_or_else(overflow)?;
        va = align_up(image_end, h.section_align).ok_or_else(overflow)?;
    }
    let size_of_image = align_up(image_end, h.section_align).ok_or_else(overflow)?;
    let size_of_image = u32::try_from(size_of_image).map_err(|_| overflow())?;
    let initialized = u32::try_from(initialized).map_err(|_| overflow())?;
    let set = |out: &mut Vec<u8>, off: usize, v: u32| put_u32(out, off, v).ok_or_else(overflow);
    put_u16(&mut out, h.coff + 2, nsections).ok_or_else(overflow)?;
    // The symbol table was dropped with the bytes after the last section.
    set(&mut out, h.coff + 8, 0)?;
    set(&mut out, h.coff + 12, 0)?;
    set(&mut out, opt + 8, initialized)?;
    set(&mut out, opt + 56, size_of_image)?;
    let sum = checksum(&out, opt + 64);
    set(&mut out, opt + 64, sum)?;
    Ok(out)
}

fn name_str(n: &[u8; 8]) -> &str {
    let len = n.iter().position(|&b| b == 0).unwrap_or(8);
    std::str::from_utf8(&n[..len]).unwrap_or("")
}

/// The unified kernel image: `stub` (systemd's linuxx64.efi.stub) with `.osrel`, `.cmdline`,
/// `.initrd` and, last, `.linux` (last: the kernel may use memory past its file size while it
/// starts, and nothing of the image lies there).
pub fn uki(stub: &[u8], osrel: &[u8], cmdline: &[u8], linux: &[u8], initrd: &[u8]) -> Result<Vec<u8>, String> {
    append_sections(stub, &[(".osrel", osrel), (".cmdline", cmdline), (".initrd", initrd), (".linux", linux)])
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A PE32+ image: headers in 0x400 bytes (room for `room` section headers after .text),
    /// .text at 0x1000 (0x300 bytes of 0xcc in 0x400 at file offset 0x400), SectionAlignment
    /// 0x1000, FileAlignment 0x200, `trailing` bytes of symbol table after it.
    pub(crate) fn stub(trailing: usize) -> Vec<u8> {
        let mut b = vec![0u8; 0x800];
        b[0..2].copy_from_slice(b"MZ");
        b[0x3c..0x40].copy_from_slice(&0x80u32.to_le_bytes());
        b[0x80..0x84].copy_from_slice(b"PE\0\0");
        let coff = 0x84;
        put_u16(&mut b, coff, 0x8664).unwrap();
        put_u16(&mut b, coff + 2, 1).unwrap();
        put_u16(&mut b, coff + 16, 240).unwrap();
        let opt = coff + 20;
        put_u16(&mut b, opt, PE32_PLUS).unwrap();
        put_u32(&mut b, opt + 4, 0x400).unwrap(); // SizeOfCode
        put_u32(&mut b, opt + 8, 0).unwrap(); // SizeOfInitializedData
        put_u32(&mut b, opt + 32, 0x1000).unwrap();
        put_u32(&mut b, opt + 36, 0x200).unwrap();
        put_u32(&mut b, opt + 56, 0x2000).unwrap(); // SizeOfImage
        put_u32(&mut b, opt + 60, 0x400).unwrap(); // SizeOfHeaders
        put_u32(&mut b, opt + 108, 16).unwrap();
        let s = opt + 240;
        b[s..s + 5].copy_from_slice(b".text");
        put_u32(&mut b, s + 8, 0x300).unwrap();
        put_u32(&mut b, s + 12, 0x1000).unwrap();
        put_u32(&mut b, s + 16, 0x400).unwrap();
        put_u32(&mut b, s + 20, 0x400).unwrap();
        put_u32(&mut b, s + 36, 0x6000_0020).unwrap();
        b[0x400..0x700].fill(0xcc);
        if trailing > 0 {
            put_u32(&mut b, coff + 8, 0x800).unwrap();
            put_u32(&mut b, coff + 12, 3).unwrap();
            b.extend(std::iter::repeat(0x55).take(trailing));
        }
        b
    }

    #[test]
    fn sections_are_placed_after_the_last_one() {
        let img = stub(100);
        let out = append_sections(&img, &[(".osrel", b"ID=x\n"), (".linux", &[7u8; 0x1234])]).unwrap();
        let s = sections(&out).unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!(&s[1].name, b".osrel\0\0");
        assert_eq!((s[1].virtual_address, s[1].virtual_size, s[1].raw_pointer, s[1].raw_size), (0x2000, 5, 0x800, 0x200));
        assert_eq!(s[1].characteristics, DATA_SECTION);
        assert_eq!((s[2].virtual_address, s[2].virtual_size, s[2].raw_pointer, s[2].raw_size), (0x3000, 0x1234, 0xa00, 0x1400));
        // The file: the stub up to its last section, then the data, zero-padded; the symbol
        // table dropped.
        assert_eq!(out.len(), 0xa00 + 0x1400);
        assert_eq!(&out[..0x400], &{
            let mut h = img[..0x400].to_vec();
            h[0x84 + 2] = 3;
            h[0x84 + 8..0x84 + 16].fill(0);
            h[0x98 + 8..0x98 + 12].copy_from_slice(&0x1600u32.to_le_bytes());
            h[0x98 + 56..0x98 + 60].copy_from_slice(&0x5000u32.to_le_bytes());
            h[0x98 + 64..0x98 + 68].copy_from_slice(&out[0x98 + 64..0x98 + 68]);
            let at = 0x98 + 240 + 40;
            h[at..at + 80].copy_from_slice(&out[at..at + 80]);
            h
        }[..]);
        assert_eq!(&out[0x400..0x800], &img[0x400..0x800]);
        assert_eq!(&out[0x800..0x805], b"ID=x\n");
        assert!(out[0x805..0xa00].iter().all(|&b| b == 0));
        assert!(out[0xa00..0xa00 + 0x1234].iter().all(|&b| b == 7));
        assert!(out[0xa00 + 0x1234..].iter().all(|&b| b == 0));
        // NumberOfSections, SizeOfInitializedData (0x200 + 0x1400), SizeOfImage, checksum.
        assert_eq!(u16_at(&out, 0x86), Some(3));
        assert_eq!(u32_at(&out, 0x98 + 8), Some(0x1600));
        assert_eq!(u32_at(&out, 0x98 + 56), Some(0x5000));
        assert_eq!(u32_at(&out, 0x98 + 64), Some(checksum(&out, 0x98 + 64)));
        // Deterministic.
        assert_eq!(out, append_sections(&img, &[(".osrel", b"ID=x\n"), (".linux", &[7u8; 0x1234])]).unwrap());
    }

    #[test]
    fn checksum_known_answer() {
        // Words 0x0201, 0x0403 (the checksum field at 4..8 reads as zero), odd byte 0x09, + length.
        let b = [1u8, 2, 3, 4, 0xff, 0xff, 0xff, 0xff, 9];
        assert_eq!(checksum(&b, 4), 0x0201 + 0x0403 + 9 + 9);
        // Carries fold back into 16 bits.
        let b = [0xffu8, 0xff, 0x02, 0x00, 0, 0, 0, 0];
        assert_eq!(checksum(&b, 4), 0x0002 + 8);
    }

    #[test]
    fn refusals() {
        let img = stub(0);
        assert!(append_sections(&img[..0x50], &[(".a", b"x")]).unwrap_err().contains("PE"));
        assert!(append_sections(b"ELF", &[(".a", b"x")]).unwrap_err().contains("MZ"));
        // 0x400 - (0x98 + 240) = 0x278 bytes: room for 15 headers, .text's and 14 more.
        let many: Vec<(String, Vec<u8>)> = (0..15).map(|i| (format!(".s{i}"), vec![1u8])).collect();
        let many: Vec<(&str, &[u8])> = many.iter().map(|(n, d)| (n.as_str(), d.as_slice())).collect();
        assert!(append_sections(&img, &many).unwrap_err().contains("no room for 15"));
        assert!(append_sections(&img, &many[..14]).is_ok());
        assert!(append_sections(&img, &[(".text", b"x")]).unwrap_err().contains("already there"));
        assert!(append_sections(&img, &[(".a", b"x"), (".a", b"y")]).unwrap_err().contains("already there"));
        assert!(append_sections(&img, &[(".toolongname", b"x")]).unwrap_err().contains("1 to 8"));
        assert!(append_sections(&img, &[(".a", b"")]).unwrap_err().contains("empty"));
        let mut signed = img.clone();
        put_u32(&mut signed, 0x98 + 112 + 32, 0x800).unwrap();
        assert!(append_sections(&signed, &[(".a", b"x")]).unwrap_err().contains("already signed"));
        let mut junk = img.clone();
        junk.extend_from_slice(b"junk");
        assert!(append_sections(&junk, &[(".a", b"x")]).unwrap_err().contains("not its symbol table"));
        let mut badalign = img.clone();
        put_u32(&mut badalign, 0x98 + 36, 0x300).unwrap();
        assert!(append_sections(&badalign, &[(".a", b"x")]).unwrap_err().contains("power of two"));
        let mut pe32 = img.clone();
        put_u16(&mut pe32, 0x98, 0x10b).unwrap();
        assert!(append_sections(&pe32, &[(".a", b"x")]).unwrap_err().contains("PE32+"));
        // Every truncation is an error, never a panic.
        for n in 0..img.len() {
            let _ = append_sections(&img[..n], &[(".a", b"x")]);
        }
    }

    #[test]
    fn uki_puts_the_kernel_last() {
        let out = uki(&stub(0), b"ID=liveroot\n", b"root=live:LABEL=LIVE", b"MZkernel", b"cpio").unwrap();
        let names: Vec<String> = sections(&out).unwrap().iter().map(|s| name_str(&s.name).to_owned()).collect();
        assert_eq!(names, [".text", ".osrel", ".cmdline", ".initrd", ".linux"]);
        assert_eq!(section_data(&out, ".cmdline"), Some(b"root=live:LABEL=LIVE".as_slice()), "read back as written");
        assert_eq!(section_data(&out, ".linux"), Some(b"MZkernel".as_slice()));
        for n in 0..out.len() {
            let _ = section_data(&out[..n], ".linux");
        }
        assert_eq!(section_data(&out, ".nothere"), None);
    }
}
