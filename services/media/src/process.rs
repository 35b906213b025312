//! Making an image's variants, off the request path: decoded under limits
//! (in case a header lied), turned upright by its EXIF orientation, and
//! re-encoded from pixels — which leaves every EXIF (GPS included), XMP
//! and ICC block behind — at four sizes, each as WebP (lossless: the pure
//! Rust encoder has no lossy mode) and as JPEG (quality 85) for clients
//! without WebP.

use std::io::Cursor;

use image::codecs::jpeg::JpegEncoder;
use image::imageops::FilterType;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader};

use cityevents_proto::cityevents::media::v1::Variant;

/// Variants and the longest side each is fitted into.
pub const SIZES: [(Variant, u32); 4] = [
    (Variant::Thumbnail, 320),
    (Variant::Card, 800),
    (Variant::Cover, 1600),
    (Variant::Original, 4096),
];

/// The name a variant is stored and served under.
pub fn variant_name(v: Variant) -> &'static str {
    match v {
        Variant::Thumbnail => "thumbnail",
        Variant::Card => "card",
        Variant::Cover => "cover",
        _ => "original",
    }
}

/// One encoded variant.
pub struct Encoded {
    pub variant: Variant,
    pub webp: Vec<u8>,
    pub jpeg: Vec<u8>,
}

/// Decodes `bytes` (already checked to be `format` within the limits) and
/// encodes every variant. CPU-bound: run it on a blocking thread.
pub fn variants(
    bytes: &[u8],
    format: ImageFormat,
    max_pixels: u64,
) -> anyhow::Result<Vec<Encoded>> {
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = image::Limits::default();
    // Four bytes a pixel, and room for one resize alongside.
    limits.max_alloc = Some(max_pixels.saturating_mul(8));
    reader.limits(limits);
    let mut decoder = reader.into_decoder()?;
    let orientation = decoder.orientation()?;
    let mut img = DynamicImage::from_decoder(decoder)?;
    img.apply_orientation(orientation);
    let img = DynamicImage::ImageRgba8(img.to_rgba8());
    let mut out = Vec::with_capacity(SIZES.len());
    for (variant, side) in SIZES {
        let sized = if img.width() > side || img.height() > side {
            img.resize(side, side, FilterType::Triangle)
        } else {
            img.clone()
        };
        let mut webp = Cursor::new(Vec::new());
        sized.write_to(&mut webp, ImageFormat::WebP)?;
        let mut jpeg = Vec::new();
        JpegEncoder::new_with_quality(&mut jpeg, 85).encode_image(&sized.to_rgb8())?;
        out.push(Encoded {
            variant,
            webp: webp.into_inner(),
            jpeg,
        });
    }
    Ok(out)
}
