//! Still-image input and output: decode any photo a user has into a BGR [`Frame`], refusing bad files with a
//! message that names them, and write PNG crops.
//!
//! Checks before decoding: the file exists and is not empty, its header is a known image format, a JPEG or PNG
//! is complete (libjpeg would otherwise return a grey-filled image for a truncated file), and the pixel count
//! is bounded — a huge JPEG is decoded at 1/2, 1/4 or 1/8 scale by libjpeg's DCT scaling, other huge images are
//! refused. Grey, 16-bit and alpha images are converted to 8-bit BGR; EXIF orientation is applied.

use std::path::{Path, PathBuf};

use opencv::core::{Mat, MatTraitConst, MatTraitConstManual, Vector};
use opencv::imgcodecs;

use crate::base::Frame;

/// Errors reading or writing images.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The file does not exist.
    #[error("no such file: {0}")]
    NotFound(PathBuf),
    /// The file could not be read.
    #[error("failed to read {path}: {source}")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is empty.
    #[error("{0} is empty (0 bytes)")]
    Empty(PathBuf),
    /// The file's header is no image format.
    #[error("{0} is not an image (unknown file header)")]
    NotAnImage(PathBuf),
    /// The file ends before the image does.
    #[error("{0} is truncated: the {1} data ends before the image does")]
    Truncated(PathBuf, &'static str),
    /// Too many pixels to decode within the memory bound.
    #[error("{path} is {width}x{height} pixels, more than detect.max_image_pixels ({max}) allows for this format")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Width from the header.
        width: usize,
        /// Height from the header.
        height: usize,
        /// The configured bound.
        max: usize,
    },
    /// A JPEG holds less image data than its header declares: the decoder would fill the rest with grey.
    #[error("{path} is damaged: its JPEG data ends before the {width}x{height} image its header declares (the rest would decode as grey)")]
    ShortOfItsHeader {
        /// The file.
        path: PathBuf,
        /// Width from the header.
        width: usize,
        /// Height from the header.
        height: usize,
    },
    /// The decoder failed.
    #[error("failed to decode {path}: {source}")]
    Decode {
        /// The file.
        path: PathBuf,
        /// OpenCV's error.
        source: opencv::Error,
    },
    /// The decoder read nothing: a format it does not support, or corrupt data.
    #[error("failed to decode {0}: unsupported or corrupt image data")]
    Undecodable(PathBuf),
    /// The encoder failed or refused the image.
    #[error("failed to encode {path}: {}", .source.as_ref().map_or("the encoder refused the image".to_string(), ToString::to_string))]
    Encode {
        /// The file it was for.
        path: PathBuf,
        /// OpenCV's error, when it gave one.
        source: Option<opencv::Error>,
    },
    /// An image could not be written.
    #[error("failed to write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

impl crate::exit::Exit for ImageError {
    fn exit_code(&self) -> u8 {
        crate::exit::INPUT
    }
}

/// Reads and decodes an image file into a BGR frame, bounded by `max_pixels`.
pub fn load(path: &Path, max_pixels: usize) -> Result<Frame, ImageError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(ImageError::NotFound(path.into())),
        Err(source) => return Err(ImageError::Unreadable { path: path.into(), source }),
    };
    decode(&bytes, path, max_pixels)
}

/// Decodes image bytes; `path` names them in errors and becomes the frame's source.
pub fn decode(bytes: &[u8], path: &Path, max_pixels: usize) -> Result<Frame, ImageError> {
    if bytes.is_empty() {
        return Err(ImageError::Empty(path.into()));
    }
    let kind = imagesize::image_type(bytes).map_err(|_| ImageError::NotAnImage(path.into()))?;
    let jpeg = (kind == imagesize::ImageType::Jpeg).then(|| jpeg_structure(bytes));
    let truncated = match kind {
        imagesize::ImageType::Jpeg => jpeg.is_some_and(|j| j.ending == Ending::Truncated).then_some("JPEG"),
        imagesize::ImageType::Png => (!png_complete(bytes)).then_some("PNG"),
        _ => None,
    };
    if let Some(format) = truncated {
        // Before the size: a file cut inside its header has none to read.
        return Err(ImageError::Truncated(path.into(), format));
    }
    let size = imagesize::blob_size(bytes).map_err(|_| ImageError::Undecodable(path.into()))?;
    let (width, height) = (size.width, size.height);
    let mut flags = imgcodecs::IMREAD_COLOR;
    match jpeg {
        Some(info) => {
            let pixels = width.saturating_mul(height);
            if pixels > max_pixels {
                // libjpeg decodes a progressive JPEG through a whole-image coefficient buffer, so DCT scaling
                // would not bound memory there.
                let reduce = [
                    (2, imgcodecs::IMREAD_REDUCED_COLOR_2),
                    (4, imgcodecs::IMREAD_REDUCED_COLOR_4),
                    (8, imgcodecs::IMREAD_REDUCED_COLOR_8),
                ]
                .into_iter()
                .find(|(f, _)| pixels / (f * f) <= max_pixels)
                .filter(|_| !info.progressive);
                match reduce {
                    Some((_, f)) => flags = f,
                    None => return Err(ImageError::TooLarge { path: path.into(), width, height, max: max_pixels }),
                }
            }
        }
        None => {
            if width.saturating_mul(height) > max_pixels {
                return Err(ImageError::TooLarge { path: path.into(), width, height, max: max_pixels });
            }
        }
    }
    let decode_err = |source: opencv::Error| ImageError::Decode { path: path.into(), source };
    // A borrowed view of the bytes: no copy of a possibly large file before decoding.
    let buf = Mat::from_slice(bytes).map_err(decode_err)?;
    let mat: Mat = imgcodecs::imdecode(&buf, flags).map_err(decode_err)?;
    if mat.empty() {
        return Err(ImageError::Undecodable(path.into()));
    }
    if jpeg.is_some() && grey_filled_edge(&mat) {
        return Err(ImageError::ShortOfItsHeader { path: path.into(), width, height });
    }
    let mut frame = Frame::from_bgr(mat, path.to_string_lossy().as_ref(), 0);
    // EXIF orientation may swap the axes relative to the header: compare like with like.
    let (ow, oh) = if (frame.width() > frame.height()) == (width > height) { (width, height) } else { (height, width) };
    frame.original_width = ow as u32;
    frame.original_height = oh as u32;
    frame.scale = frame.width() as f32 / ow.max(1) as f32;
    Ok(frame)
}

/// Writes `mat` as a PNG file.
pub fn write_png(path: &Path, mat: &Mat) -> Result<(), ImageError> {
    let encode_err = |source: Option<opencv::Error>| ImageError::Encode { path: path.into(), source };
    match imgcodecs::imwrite(path.as_os_str(), mat, &Vector::new()) {
        Ok(true) => Ok(()),
        Ok(false) => Err(encode_err(None)),
        Err(e) => Err(encode_err(Some(e))),
    }
}

/// `mat` as a JPEG of `quality` (1–100).
pub fn encode_jpeg(mat: &Mat, quality: i32) -> Result<Vec<u8>, ImageError> {
    let encode_err = |source: Option<opencv::Error>| ImageError::Encode { path: PathBuf::from("(jpeg)"), source };
    let mut buf = Vector::<u8>::new();
    let params = Vector::from_slice(&[imgcodecs::IMWRITE_JPEG_QUALITY, quality.clamp(1, 100)]);
    match imgcodecs::imencode(".jpg", mat, &mut buf, &params) {
        Ok(true) => Ok(buf.as_slice().to_vec()),
        Ok(false) => Err(encode_err(None)),
        Err(e) => Err(encode_err(Some(e))),
    }
}

/// Writes `mat` as the PNG file `name` of the private folder `dir`, readable by its owner only (0600), replacing
/// what was there without following a link ([`crate::private::PrivateDir::write`]): face crops are biometric data.
pub fn write_png_private(dir: &crate::private::PrivateDir, name: &str, mat: &Mat) -> Result<PathBuf, ImageError> {
    let path = dir.path().join(name);
    let encode_err = |source: Option<opencv::Error>| ImageError::Encode { path: path.clone(), source };
    let mut buf = Vector::<u8>::new();
    match imgcodecs::imencode(".png", mat, &mut buf, &Vector::new()) {
        Ok(true) => {}
        Ok(false) => return Err(encode_err(None)),
        Err(e) => return Err(encode_err(Some(e))),
    }
    dir.write(name, buf.as_slice()).map_err(|source| ImageError::Write { path, source })
}

/// How the marker walk through a JPEG ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// At the EOI marker that ends the last scan.
    Complete,
    /// The data ran out first: the file was cut.
    Truncated,
    /// At bytes that are no marker where one must be: damaged data, for the decoder to recover from or refuse.
    Damaged,
}

/// libjpeg gives the blocks it has no data for zero coefficients, which decode to mid grey (128, 128, 128): a
/// JPEG whose header declares more image than its data holds decodes "successfully" with a grey band. A band of
/// exactly that grey along a whole edge (any edge: EXIF orientation may have turned the image) is taken for it;
/// a camera photo does not hold one.
fn grey_filled_edge(mat: &Mat) -> bool {
    let (w, h) = (mat.cols() as usize, mat.rows() as usize);
    let Ok(data) = mat.data_bytes() else { return false };
    if w < 8 || h < 8 || data.len() != w * h * 3 {
        return false;
    }
    let grey = |x: usize, y: usize| data[(y * w + x) * 3..(y * w + x) * 3 + 3] == [128, 128, 128];
    let band = 4;
    let rows = |ys: std::ops::Range<usize>| ys.clone().all(|y| (0..w).all(|x| grey(x, y)));
    let cols = |xs: std::ops::Range<usize>| (0..h).all(|y| xs.clone().all(|x| grey(x, y)));
    rows(h - band..h) || rows(0..band) || cols(w - band..w) || cols(0..band)
}

/// What the marker walk found in a JPEG.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct JpegInfo {
    /// Where the walk ended.
    ending: Ending,
    /// A progressive frame header (SOF2/SOF6/SOF10/SOF14) was seen.
    progressive: bool,
}

/// Walks JPEG markers from SOI to EOI. Entropy-coded data cannot contain a bare `FF xx` other than stuffing
/// (`FF 00`), fill (`FF FF`) and restarts (`FF D0`–`D7`), so the walk finds EOI or runs off the end of a
/// truncated file; bytes after EOI (camera trailers, motion-photo video) are ignored.
fn jpeg_structure(b: &[u8]) -> JpegInfo {
    let mut info = JpegInfo { ending: Ending::Truncated, progressive: false };
    if b.len() < 4 || b[0] != 0xFF || b[1] != 0xD8 {
        return info;
    }
    let mut i = 2;
    while i < b.len() {
        if b[i] != 0xFF {
            info.ending = Ending::Damaged;
            return info;
        }
        while i < b.len() && b[i] == 0xFF {
            i += 1;
        }
        let Some(&marker) = b.get(i) else { return info };
        i += 1;
        match marker {
            0xD9 => {
                info.ending = Ending::Complete;
                return info;
            }
            0xD0..=0xD7 | 0x01 => continue,
            _ => {}
        }
        let Some(len) = b.get(i..i + 2).map(|s| usize::from(u16::from_be_bytes([s[0], s[1]]))) else { return info };
        if len < 2 {
            info.ending = Ending::Damaged;
            return info;
        }
        if i + len > b.len() {
            return info;
        }
        if matches!(marker, 0xC2 | 0xC6 | 0xCA | 0xCE) {
            info.progressive = true;
        }
        i += len;
        if marker == 0xDA {
            // Skip entropy-coded data up to the next real marker.
            loop {
                let Some(&byte) = b.get(i) else { return info };
                if byte != 0xFF {
                    i += 1;
                    continue;
                }
                match b.get(i + 1) {
                    None => return info,
                    Some(0x00) | Some(0xD0..=0xD7) => i += 2,
                    Some(0xFF) => i += 1,
                    Some(_) => break,
                }
            }
        }
    }
    info
}

/// A PNG is complete when its IEND chunk is present at the end.
fn png_complete(b: &[u8]) -> bool {
    b.len() >= 12 && b[b.len() - 12..].windows(4).any(|w| w == b"IEND")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal marker skeleton: SOI, one segment, SOS with stuffed and restart bytes, EOI.
    fn skeleton() -> Vec<u8> {
        let mut v = vec![0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x04, 0x11, 0x22];
        v.extend_from_slice(&[0xFF, 0xDA, 0x00, 0x03, 0x01]);
        v.extend_from_slice(&[0x12, 0xFF, 0x00, 0x34, 0xFF, 0xD3, 0x56]);
        v.extend_from_slice(&[0xFF, 0xD9]);
        v
    }

    #[test]
    fn complete_jpeg_skeleton_is_complete() {
        assert_eq!(jpeg_structure(&skeleton()), JpegInfo { ending: Ending::Complete, progressive: false });
    }

    #[test]
    fn every_truncation_is_detected() {
        let full = skeleton();
        for cut in 0..full.len() - 1 {
            assert_eq!(jpeg_structure(&full[..cut]).ending, Ending::Truncated, "cut at {cut}");
        }
    }

    #[test]
    fn trailer_after_eoi_is_ignored() {
        let mut v = skeleton();
        v.extend_from_slice(b"ftypmp42 trailing video");
        assert_eq!(jpeg_structure(&v).ending, Ending::Complete);
    }

    #[test]
    fn a_broken_marker_is_damage_not_truncation() {
        let mut v = skeleton();
        v[8] = 0x00; // the FF of SOS
        assert_eq!(jpeg_structure(&v).ending, Ending::Damaged);
        let mut v = skeleton();
        v[5] = 0x01; // a segment length below 2
        assert_eq!(jpeg_structure(&v).ending, Ending::Damaged);
    }

    #[test]
    fn progressive_frame_is_flagged() {
        let mut v = vec![0xFF, 0xD8, 0xFF, 0xC2, 0x00, 0x03, 0x08];
        v.extend_from_slice(&[0xFF, 0xD9]);
        assert!(jpeg_structure(&v).progressive);
    }
}
