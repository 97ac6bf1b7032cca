//! Header probing: format (magic numbers), dimensions and EXIF orientation without decoding pixels.
//!
//! Hand-written, bounds-checked parsers for the few header structures we need (JPEG segments up
//! to SOF, PNG IHDR/eXIf, GIF logical screen, WebP VP8/VP8L/VP8X/EXIF chunks). They never
//! allocate in proportion to the claimed image size, so a decompression bomb is rejected from its
//! header alone.

use image::metadata::Orientation;

use super::error::TransformError;

/// Source formats we can decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SourceFormat {
    Jpeg,
    Png,
    Webp,
    Gif,
}

impl SourceFormat {
    pub fn as_str(&self) -> &'static str {
        match self {
            SourceFormat::Jpeg => "jpeg",
            SourceFormat::Png => "png",
            SourceFormat::Webp => "webp",
            SourceFormat::Gif => "gif",
        }
    }

    pub(crate) fn image_format(&self) -> image::ImageFormat {
        match self {
            SourceFormat::Jpeg => image::ImageFormat::Jpeg,
            SourceFormat::Png => image::ImageFormat::Png,
            SourceFormat::Webp => image::ImageFormat::WebP,
            SourceFormat::Gif => image::ImageFormat::Gif,
        }
    }
}

/// What the header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceInfo {
    pub format: SourceFormat,
    /// Stored (pre-orientation) width and height, both >= 1.
    pub width: u32,
    pub height: u32,
    /// EXIF orientation (JPEG APP1, PNG eXIf, WebP EXIF); `NoTransforms` when absent.
    pub orientation: Orientation,
    /// Best-effort: PNG colour type / tRNS, WebP alpha flags. JPEG and GIF: false.
    pub has_alpha: bool,
}

impl SourceInfo {
    /// Dimensions as displayed, i.e. after applying the orientation.
    pub fn oriented_dimensions(&self) -> (u32, u32) {
        if swaps_axes(self.orientation) {
            (self.height, self.width)
        } else {
            (self.width, self.height)
        }
    }

    /// `width * height` without overflow.
    pub fn pixels(&self) -> u64 {
        u64::from(self.width) * u64::from(self.height)
    }
}

/// Whether the orientation exchanges width and height.
pub(crate) fn swaps_axes(o: Orientation) -> bool {
    matches!(
        o,
        Orientation::Rotate90 | Orientation::Rotate270 | Orientation::Rotate90FlipH | Orientation::Rotate270FlipH
    )
}

/// Detects the format from the first bytes (12 are enough) without looking further.
pub fn sniff(head: &[u8]) -> Option<SourceFormat> {
    if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(SourceFormat::Jpeg)
    } else if head.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some(SourceFormat::Png)
    } else if head.starts_with(b"GIF87a") || head.starts_with(b"GIF89a") {
        Some(SourceFormat::Gif)
    } else if head.len() >= 12 && &head[0..4] == b"RIFF" && &head[8..12] == b"WEBP" {
        Some(SourceFormat::Webp)
    } else {
        None
    }
}

/// Reads format, dimensions and orientation from the start of the file.
///
/// `head` may be the whole object or a prefix of it; 64 KiB holds the header of almost every
/// real file (a JPEG's SOF can sit behind large APP segments: if it is not within `head` the
/// result is `Corrupt("… header is incomplete …")`, so pass more bytes or the whole object).
pub fn probe(head: &[u8]) -> Result<SourceInfo, TransformError> {
    let format = sniff(head).ok_or_else(|| {
        TransformError::UnsupportedSource("not a supported image (expected JPEG, PNG, WebP or GIF)".into())
    })?;
    let info = match format {
        SourceFormat::Jpeg => probe_jpeg(head)?,
        SourceFormat::Png => probe_png(head)?,
        SourceFormat::Gif => probe_gif(head)?,
        SourceFormat::Webp => probe_webp(head)?,
    };
    if info.width == 0 || info.height == 0 {
        return Err(TransformError::Corrupt(format!(
            "{} header declares a zero dimension",
            format.as_str()
        )));
    }
    Ok(info)
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}
fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}
fn le16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes([*b.get(at)?, *b.get(at + 1)?]))
}
fn le24(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes([*b.get(at)?, *b.get(at + 1)?, *b.get(at + 2)?, 0]))
}
fn le32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn incomplete(fmt: &str) -> TransformError {
    TransformError::Corrupt(format!(
        "{fmt} header is incomplete (truncated file or prefix too short)"
    ))
}

fn orientation_from_tiff(tiff: &[u8]) -> Orientation {
    Orientation::from_exif_chunk(tiff).unwrap_or(Orientation::NoTransforms)
}

fn probe_jpeg(b: &[u8]) -> Result<SourceInfo, TransformError> {
    let mut pos = 2; // after SOI
    let mut orientation = Orientation::NoTransforms;
    let mut exif_seen = false;
    loop {
        // Markers may be preceded by any number of 0xFF fill bytes.
        if *b.get(pos).ok_or_else(|| incomplete("jpeg"))? != 0xFF {
            return Err(TransformError::Corrupt(
                "jpeg: expected a marker between segments".into(),
            ));
        }
        while b.get(pos) == Some(&0xFF) {
            pos += 1;
        }
        let marker = *b.get(pos).ok_or_else(|| incomplete("jpeg"))?;
        pos += 1;
        match marker {
            // Standalone markers: TEM, RSTn.
            0x01 | 0xD0..=0xD7 => continue,
            0xD8..=0xDA => {
                // SOI again, EOI or SOS before any SOF.
                return Err(TransformError::Corrupt(
                    "jpeg: no frame header (SOF) before image data".into(),
                ));
            }
            _ => {}
        }
        let len = usize::from(be16(b, pos).ok_or_else(|| incomplete("jpeg"))?);
        if len < 2 {
            return Err(TransformError::Corrupt("jpeg: segment length < 2".into()));
        }
        let seg_start = pos + 2;
        let seg_end = pos + len;
        let is_sof = matches!(marker, 0xC0..=0xCF) && !matches!(marker, 0xC4 | 0xC8 | 0xCC);
        if is_sof {
            let height = be16(b, seg_start + 1).ok_or_else(|| incomplete("jpeg"))?;
            let width = be16(b, seg_start + 3).ok_or_else(|| incomplete("jpeg"))?;
            if height == 0 {
                return Err(TransformError::Corrupt(
                    "jpeg: height 0 (DNL-defined height is not supported)".into(),
                ));
            }
            return Ok(SourceInfo {
                format: SourceFormat::Jpeg,
                width: u32::from(width),
                height: u32::from(height),
                orientation,
                has_alpha: false,
            });
        }
        if marker == 0xE1 && !exif_seen {
            if let Some(seg) = b.get(seg_start..seg_end) {
                if let Some(tiff) = seg.strip_prefix(b"Exif\0\0") {
                    exif_seen = true;
                    orientation = orientation_from_tiff(tiff);
                }
            }
        }
        pos = seg_end;
    }
}

fn probe_png(b: &[u8]) -> Result<SourceInfo, TransformError> {
    // Signature (8) + IHDR chunk: length(4) "IHDR" width(4) height(4) depth(1) colour(1) ...
    if b.get(12..16) != Some(b"IHDR") {
        return Err(if b.len() < 16 {
            incomplete("png")
        } else {
            TransformError::Corrupt("png: first chunk is not IHDR".into())
        });
    }
    let width = be32(b, 16).ok_or_else(|| incomplete("png"))?;
    let height = be32(b, 20).ok_or_else(|| incomplete("png"))?;
    let colour = *b.get(25).ok_or_else(|| incomplete("png"))?;
    if width > i32::MAX as u32 || height > i32::MAX as u32 {
        return Err(TransformError::Corrupt("png: dimension above 2^31-1".into()));
    }
    let mut has_alpha = matches!(colour, 4 | 6);
    let mut orientation = Orientation::NoTransforms;
    // Walk the chunks before IDAT for tRNS and eXIf (cheap: we skip by length).
    let mut pos = 8usize;
    while let (Some(len), Some(kind)) = (be32(b, pos), b.get(pos + 4..pos + 8)) {
        let data_start = pos + 8;
        let Some(data_end) = data_start.checked_add(len as usize) else {
            break;
        };
        match kind {
            b"IDAT" | b"IEND" => break,
            b"tRNS" => has_alpha = true,
            b"eXIf" => {
                if let Some(tiff) = b.get(data_start..data_end) {
                    orientation = orientation_from_tiff(tiff);
                }
            }
            _ => {}
        }
        // + 4 for the CRC
        let Some(next) = data_end.checked_add(4) else {
            break;
        };
        pos = next;
    }
    Ok(SourceInfo {
        format: SourceFormat::Png,
        width,
        height,
        orientation,
        has_alpha,
    })
}

fn probe_gif(b: &[u8]) -> Result<SourceInfo, TransformError> {
    let width = le16(b, 6).ok_or_else(|| incomplete("gif"))?;
    let height = le16(b, 8).ok_or_else(|| incomplete("gif"))?;
    Ok(SourceInfo {
        format: SourceFormat::Gif,
        width: u32::from(width),
        height: u32::from(height),
        orientation: Orientation::NoTransforms,
        has_alpha: false,
    })
}

fn probe_webp(b: &[u8]) -> Result<SourceInfo, TransformError> {
    let mut pos = 12usize;
    let mut dims: Option<(u32, u32)> = None;
    let mut has_alpha = false;
    let mut orientation = Orientation::NoTransforms;
    let mut extended = false;
    while let (Some(kind), Some(len)) = (b.get(pos..pos + 4), le32(b, pos + 4)) {
        let data = pos + 8;
        match kind {
            b"VP8X" => {
                extended = true;
                let flags = *b.get(data).ok_or_else(|| incomplete("webp"))?;
                has_alpha = flags & 0x10 != 0;
                let w = le24(b, data + 4).ok_or_else(|| incomplete("webp"))? + 1;
                let h = le24(b, data + 7).ok_or_else(|| incomplete("webp"))? + 1;
                dims = Some((w, h));
                if flags & 0x08 == 0 {
                    break; // no EXIF chunk to look for
                }
            }
            b"VP8 " if !extended => {
                // frame tag (3) + start code 9d 01 2a + 14-bit width + 14-bit height
                if b.get(data + 3..data + 6) != Some(&[0x9d, 0x01, 0x2a]) {
                    return Err(if b.len() < data + 6 {
                        incomplete("webp")
                    } else {
                        TransformError::Corrupt("webp: bad VP8 start code".into())
                    });
                }
                let w = u32::from(le16(b, data + 6).ok_or_else(|| incomplete("webp"))? & 0x3fff);
                let h = u32::from(le16(b, data + 8).ok_or_else(|| incomplete("webp"))? & 0x3fff);
                dims = Some((w, h));
                break;
            }
            b"VP8L" if !extended => {
                if b.get(data) != Some(&0x2f) {
                    return Err(if b.len() <= data {
                        incomplete("webp")
                    } else {
                        TransformError::Corrupt("webp: bad VP8L signature".into())
                    });
                }
                let bits = le32(b, data + 1).ok_or_else(|| incomplete("webp"))?;
                dims = Some(((bits & 0x3fff) + 1, ((bits >> 14) & 0x3fff) + 1));
                has_alpha = bits & (1 << 28) != 0;
                break;
            }
            b"EXIF" => {
                if let Some(exif) = b.get(data..data.saturating_add(len as usize)) {
                    // Some writers keep the JPEG-style "Exif\0\0" prefix.
                    let tiff = exif.strip_prefix(b"Exif\0\0").unwrap_or(exif);
                    orientation = orientation_from_tiff(tiff);
                }
                break;
            }
            _ if !extended => return Err(TransformError::Corrupt("webp: unexpected first chunk".into())),
            _ => {}
        }
        // Chunks are padded to an even size.
        let padded = (len as usize).saturating_add(len as usize & 1);
        pos = data.saturating_add(padded);
    }
    let (width, height) = dims.ok_or_else(|| incomplete("webp"))?;
    Ok(SourceInfo {
        format: SourceFormat::Webp,
        width,
        height,
        orientation,
        has_alpha,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(name: &str) -> Vec<u8> {
        let p = crate::transform::test_image_dir().join(name);
        std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    #[test]
    fn probes_every_shared_image() {
        let cases = [
            (
                "twowings-2560x1600.jpg",
                SourceFormat::Jpeg,
                2560,
                1600,
                Orientation::NoTransforms,
                false,
            ),
            (
                "storm-1920x1280.jpg",
                SourceFormat::Jpeg,
                1920,
                1280,
                Orientation::NoTransforms,
                false,
            ),
            (
                "gulp-alpha-1920x1200.png",
                SourceFormat::Png,
                1920,
                1200,
                Orientation::NoTransforms,
                true,
            ),
            (
                "coffee-600x400.png",
                SourceFormat::Png,
                600,
                400,
                Orientation::NoTransforms,
                false,
            ),
            (
                "hopper-exif-orientation6.jpg",
                SourceFormat::Jpeg,
                128,
                128,
                Orientation::Rotate90,
                false,
            ),
            (
                "hopper.gif",
                SourceFormat::Gif,
                128,
                128,
                Orientation::NoTransforms,
                false,
            ),
            (
                "flower-480x360.webp",
                SourceFormat::Webp,
                480,
                360,
                Orientation::NoTransforms,
                false,
            ),
        ];
        for (name, fmt, w, h, o, alpha) in cases {
            let bytes = read(name);
            let info = probe(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(
                (info.format, info.width, info.height, info.orientation, info.has_alpha),
                (fmt, w, h, o, alpha),
                "{name}"
            );
            // The header is near the start: a 64 KiB prefix is enough.
            let prefix = &bytes[..bytes.len().min(64 * 1024)];
            assert_eq!(probe(prefix).unwrap(), info, "{name} prefix");
        }
    }

    #[test]
    fn non_images_are_unsupported() {
        for data in [
            &b""[..],
            b"hello world",
            b"%PDF-1.7\n",
            b"\x00\x00\x00\x1cftypavif",
            b"BM\x00\x00",
        ] {
            assert!(
                matches!(probe(data), Err(TransformError::UnsupportedSource(_))),
                "{data:?}"
            );
        }
    }

    #[test]
    fn truncated_headers_are_corrupt() {
        for name in [
            "twowings-2560x1600.jpg",
            "coffee-600x400.png",
            "flower-480x360.webp",
            "hopper.gif",
        ] {
            let bytes = read(name);
            // Long enough to be recognised, too short for the dimensions.
            let cut = &bytes[..if name.ends_with("webp") { 14 } else { 8 }];
            assert!(
                matches!(probe(cut), Err(TransformError::Corrupt(_))),
                "{name}: {:?}",
                probe(cut)
            );
        }
    }

    #[test]
    fn zero_dimension_is_corrupt() {
        let mut png = read("coffee-600x400.png");
        png[16..20].copy_from_slice(&0u32.to_be_bytes());
        assert!(matches!(probe(&png), Err(TransformError::Corrupt(_))));
    }

    #[test]
    fn hostile_headers_do_not_panic() {
        // Random-ish garbage after each magic number must give an error or a value, never panic.
        let magics: [&[u8]; 4] = [
            b"\xFF\xD8\xFF",
            b"\x89PNG\r\n\x1a\n",
            b"GIF89a",
            b"RIFF\xff\xff\xff\xffWEBP",
        ];
        let mut s = 0x9E3779B97F4A7C15u64;
        for m in magics {
            for len in 0..300 {
                let mut v = m.to_vec();
                for _ in 0..len {
                    s ^= s << 13;
                    s ^= s >> 7;
                    s ^= s << 17;
                    v.push((s >> 24) as u8);
                }
                let _ = probe(&v);
            }
        }
    }
}
