//! `make bench` (media part): a 12-megapixel JPEG (4000 × 3000) checked
//! from its header and turned into every variant (four sizes, WebP and
//! JPEG each), on one core as one worker runs it. Prints images per second
//! and CPU per image; see docs/benchmarks.md.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Cursor;
use std::time::Instant;

use image::{DynamicImage, ImageFormat, RgbImage};

fn main() {
    let runs: usize = std::env::var("BENCH_IMAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    // A photo-like picture: gradients and noise, so the encoders have work.
    let mut seed = 0x2545_f491u32;
    let img = RgbImage::from_fn(4000, 3000, |x, y| {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        let n = (seed % 24) as u8;
        image::Rgb([(x / 16) as u8 ^ n, (y / 12) as u8 ^ n, ((x + y) / 28) as u8])
    });
    let mut jpeg = Cursor::new(Vec::new());
    DynamicImage::ImageRgb8(img)
        .write_to(&mut jpeg, ImageFormat::Jpeg)
        .unwrap();
    let jpeg = jpeg.into_inner();
    let limits = media::check::Limits {
        max_pixels: 40_000_000,
        max_side: 12_000,
    };
    let started = Instant::now();
    let mut out_bytes = 0;
    for _ in 0..runs {
        let checked = media::check::check(&jpeg, limits).unwrap();
        let variants = media::process::variants(&jpeg, checked.format, limits.max_pixels).unwrap();
        out_bytes += variants
            .iter()
            .map(|v| v.webp.len() + v.jpeg.len())
            .sum::<usize>();
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "12-megapixel JPEG ({} KiB) to 4 variants × (WebP + JPEG): {:.2} images/s on one core, {:.0} ms each, {} KiB of variants each",
        jpeg.len() / 1024,
        runs as f64 / secs,
        secs * 1000.0 / runs as f64,
        out_bytes / runs / 1024
    );
}
