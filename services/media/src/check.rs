//! What an upload is, decided before anything is decoded: its real type
//! from its magic bytes (JPEG, PNG or WebP only), and its dimensions from
//! its header, so a small file claiming 100,000 × 100,000 pixels is refused
//! before a pixel buffer is allocated.

use std::io::Cursor;

use image::{ImageFormat, ImageReader};

use cityevents_runtime::{Error, Result};

/// Types accepted, as callers are told.
pub const ALLOWED: &str = "JPEG, PNG or WebP";

/// An upload that passed the checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checked {
    pub format: ImageFormat,
    pub width: u32,
    pub height: u32,
}

impl Checked {
    pub fn content_type(&self) -> &'static str {
        self.format.to_mime_type()
    }
}

/// The limits an upload is held to.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_pixels: u64,
    pub max_side: u32,
}

/// Bytes needed to tell the type.
pub const SNIFF_BYTES: usize = 16;

/// The type from the magic bytes (the first [`SNIFF_BYTES`]).
pub fn sniff(bytes: &[u8]) -> Result<ImageFormat> {
    match image::guess_format(bytes) {
        Ok(f @ (ImageFormat::Jpeg | ImageFormat::Png | ImageFormat::WebP)) => Ok(f),
        _ => Err(Error::invalid(
            "chunk",
            format!("is not an image this service takes: send {ALLOWED}"),
        )),
    }
}

/// Sniffs a whole file and reads the header's dimensions.
pub fn check(bytes: &[u8], limits: Limits) -> Result<Checked> {
    check_head(bytes, limits, true)?
        .ok_or_else(|| Error::internal(anyhow::anyhow!("a complete file left undecided")))
}

/// Sniffs the beginning of a file and reads the header's dimensions:
/// `None` while the header may still be coming (`complete` false).
pub fn check_head(bytes: &[u8], limits: Limits, complete: bool) -> Result<Option<Checked>> {
    let format = sniff(bytes)?;
    // Only the header is read here; the decoders' own allocation limits
    // would refuse a huge claim too, but with no word of why.
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    reader.no_limits();
    let (width, height) = match reader.into_dimensions() {
        Ok(d) => d,
        Err(_) if !complete => return Ok(None),
        Err(_) => {
            return Err(Error::invalid(
                "chunk",
                format!(
                    "is not a whole {} image (its header is damaged or cut off)",
                    name(format)
                ),
            ));
        }
    };
    if width == 0 || height == 0 {
        return Err(Error::invalid("chunk", "has no pixels"));
    }
    let pixels = u64::from(width) * u64::from(height);
    if width > limits.max_side || height > limits.max_side || pixels > limits.max_pixels {
        return Err(Error::invalid(
            "chunk",
            format!(
                "is {width} × {height} pixels; at most {} per side and {} megapixels are taken",
                limits.max_side,
                limits.max_pixels / 1_000_000
            ),
        ));
    }
    Ok(Some(Checked {
        format,
        width,
        height,
    }))
}

fn name(f: ImageFormat) -> &'static str {
    match f {
        ImageFormat::Jpeg => "JPEG",
        ImageFormat::Png => "PNG",
        _ => "WebP",
    }
}

/// Test inputs the unit and integration tests share.
#[doc(hidden)]
pub mod fixtures {
    /// A PNG whose header claims `w` × `h` and whose data is a few bytes.
    pub fn claiming_png(w: u32, h: u32) -> Vec<u8> {
        let mut ihdr = b"IHDR".to_vec();
        ihdr.extend(w.to_be_bytes());
        ihdr.extend(h.to_be_bytes());
        ihdr.extend([8, 6, 0, 0, 0]);
        let crc = crc32(&ihdr);
        let mut png = Vec::new();
        png.extend([0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n']);
        png.extend(13u32.to_be_bytes());
        png.extend(&ihdr);
        png.extend(crc.to_be_bytes());
        // An empty IDAT (decoders read the header up to the first one), IEND.
        png.extend([0, 0, 0, 0]);
        png.extend(b"IDAT");
        png.extend(crc32(b"IDAT").to_be_bytes());
        png.extend([0, 0, 0, 0, b'I', b'E', b'N', b'D', 0xae, 0x42, 0x60, 0x82]);
        png
    }

    fn crc32(data: &[u8]) -> u32 {
        let mut crc = 0xffff_ffffu32;
        for b in data {
            crc ^= u32::from(*b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xedb8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::claiming_png;
    use super::*;

    const LIMITS: Limits = Limits {
        max_pixels: 40_000_000,
        max_side: 12_000,
    };

    #[test]
    fn a_tiny_file_claiming_ten_gigapixels_is_refused_from_its_header() {
        let bomb = claiming_png(100_000, 100_000);
        assert!(bomb.len() < 100);
        let err = check(&bomb, LIMITS).unwrap_err();
        assert!(
            err.message().contains("100000 × 100000"),
            "{}",
            err.message()
        );
    }

    #[test]
    fn an_executable_is_not_an_image_whatever_its_name() {
        let elf = b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0";
        let err = check(elf, LIMITS).unwrap_err();
        assert!(
            err.message().contains("JPEG, PNG or WebP"),
            "{}",
            err.message()
        );
    }

    #[test]
    fn a_cut_off_header_is_refused() {
        let png = claiming_png(10, 10);
        let err = check(&png[..20], LIMITS).unwrap_err();
        assert!(err.message().contains("cut off"), "{}", err.message());
    }
}
