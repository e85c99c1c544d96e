//! V4L2 cameras through `nokhwa`: device by index or path, requested resolution, rate and pixel format.
//!
//! nokhwa hands over the camera's raw buffer; [`bgr_from_camera_buffer`] turns it into BGR with OpenCV
//! (`imdecode` for MJPEG, `cvtColor` for YUYV, NV12, grey and RGB), so no second decoder is linked.

use nokhwa::pixel_format::RgbFormat;
use nokhwa::utils::{ApiBackend, CameraFormat, CameraIndex, FrameFormat, RequestedFormat, RequestedFormatType};
use nokhwa::Camera;
use opencv::core::{Mat, MatTraitConst, Vector};
use opencv::{imgcodecs, imgproc};
use tracing::info;

use super::config::{CaptureConfig, PixelFormat};
use super::{CaptureError, FrameSource};

/// A V4L2 camera.
pub struct CameraSource {
    path: String,
    index: u32,
    requested: CameraFormat,
    camera: Option<Camera>,
}

fn frame_format(p: PixelFormat) -> FrameFormat {
    match p {
        PixelFormat::Mjpeg => FrameFormat::MJPEG,
        PixelFormat::Yuyv => FrameFormat::YUYV,
        PixelFormat::Nv12 => FrameFormat::NV12,
        PixelFormat::Gray => FrameFormat::GRAY,
        PixelFormat::Rgb => FrameFormat::RAWRGB,
    }
}

/// The V4L2 index of `source`: a number, or a `/dev/video<N>` path (symlinks such as `/dev/v4l/by-id/…` resolved).
pub fn device_index(source: &str) -> Result<u32, CaptureError> {
    if let Ok(i) = source.parse::<u32>() {
        return Ok(i);
    }
    let err = |message: String| CaptureError::Open { source_name: source.to_string(), message };
    let real = std::fs::canonicalize(source).map_err(|e| err(format!("no such device ({e})")))?;
    real.to_str()
        .and_then(|p| p.strip_prefix("/dev/video"))
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| err(format!("{} is not a /dev/videoN device", real.display())))
}

impl CameraSource {
    /// Opens the camera and starts its stream.
    pub fn open(cfg: &CaptureConfig) -> Result<Self, CaptureError> {
        let index = device_index(&cfg.source)?;
        let requested = CameraFormat::new_from(cfg.width, cfg.height, frame_format(cfg.pixel_format), cfg.fps);
        let mut s = Self { path: cfg.source.clone(), index, requested, camera: None };
        s.reopen()?;
        Ok(s)
    }
}

impl FrameSource for CameraSource {
    fn describe(&self) -> String {
        if self.path.parse::<u32>().is_ok() {
            super::camera_device(&self.path).display().to_string()
        } else {
            self.path.clone()
        }
    }

    fn read(&mut self) -> Result<Option<Mat>, CaptureError> {
        let name = self.describe();
        let lost = |message: String| CaptureError::Lost { source_name: name.clone(), message };
        let camera = self.camera.as_mut().ok_or_else(|| lost("not open".into()))?;
        let buffer = camera.frame().map_err(|e| lost(e.to_string()))?;
        let res = buffer.resolution();
        let bgr = bgr_from_camera_buffer(buffer.buffer(), res.width(), res.height(), buffer.source_frame_format())
            .map_err(|e| lost(format!("undecodable {} frame: {e}", buffer.source_frame_format())))?;
        Ok(Some(bgr))
    }

    fn reopen(&mut self) -> Result<(), CaptureError> {
        // Release the device first: V4L2 allows one streaming reader.
        self.camera = None;
        let err = |message: String| CaptureError::Open { source_name: self.describe(), message };
        let formats = [self.requested.format()];
        let request = RequestedFormat::with_formats(RequestedFormatType::Closest(self.requested), &formats);
        let mut camera = Camera::with_backend(CameraIndex::Index(self.index), request, ApiBackend::Video4Linux)
            .or_else(|_| {
                // The camera may not offer the requested pixel format: take its closest colour format.
                let any = RequestedFormat::new::<RgbFormat>(RequestedFormatType::Closest(self.requested));
                Camera::with_backend(CameraIndex::Index(self.index), any, ApiBackend::Video4Linux)
            })
            .map_err(|e| err(e.to_string()))?;
        camera.open_stream().map_err(|e| err(e.to_string()))?;
        let f = camera.camera_format();
        info!(device = %self.describe(), width = f.width(), height = f.height(), fps = f.frame_rate(), format = %f.format(), "Camera opened.");
        self.camera = Some(camera);
        Ok(())
    }

    fn is_live(&self) -> bool {
        true
    }

    fn frame_size(&self) -> Option<(u32, u32)> {
        self.camera.as_ref().map(|c| (c.camera_format().width(), c.camera_format().height()))
    }
}

/// Why a camera buffer could not be turned into a picture.
#[derive(Debug, thiserror::Error)]
pub enum BufferError {
    /// Fewer bytes than the format and size need.
    #[error("{got} bytes, {width}×{height} needs {need}")]
    Short {
        /// Bytes there.
        got: usize,
        /// Width.
        width: u32,
        /// Height.
        height: u32,
        /// Bytes needed.
        need: usize,
    },
    /// An MJPEG buffer that does not decode.
    #[error("not a JPEG")]
    NotJpeg,
    /// OpenCV failed on the buffer.
    #[error(transparent)]
    OpenCv(#[from] opencv::Error),
}

/// Converts one raw camera buffer of `width`×`height` pixels to an owned 8-bit BGR `Mat`.
pub fn bgr_from_camera_buffer(bytes: &[u8], width: u32, height: u32, format: FrameFormat) -> Result<Mat, BufferError> {
    let (w, h) = (width as i32, height as i32);
    let need = |n: usize| {
        if bytes.len() < n {
            Err(BufferError::Short { got: bytes.len(), width, height, need: n })
        } else {
            Ok(())
        }
    };
    let px = width as usize * height as usize;
    let mut out = Mat::default();
    let cvt = |src: &Mat, out: &mut Mat, code: i32| imgproc::cvt_color_def(src, out, code);
    match format {
        FrameFormat::MJPEG => {
            out = imgcodecs::imdecode(&Vector::<u8>::from_slice(bytes), imgcodecs::IMREAD_COLOR)?;
            if out.empty() {
                return Err(BufferError::NotJpeg);
            }
        }
        FrameFormat::YUYV => {
            need(px * 2)?;
            let src = wrap_packed(bytes, h, w, 2)?;
            cvt(&src, &mut out, imgproc::COLOR_YUV2BGR_YUYV)?;
        }
        FrameFormat::NV12 => {
            need(px * 3 / 2)?;
            let src = wrap_packed(bytes, h * 3 / 2, w, 1)?;
            cvt(&src, &mut out, imgproc::COLOR_YUV2BGR_NV12)?;
        }
        FrameFormat::GRAY => {
            need(px)?;
            let src = wrap_packed(bytes, h, w, 1)?;
            cvt(&src, &mut out, imgproc::COLOR_GRAY2BGR)?;
        }
        FrameFormat::RAWRGB => {
            need(px * 3)?;
            cvt(&wrap_packed(bytes, h, w, 3)?, &mut out, imgproc::COLOR_RGB2BGR)?;
        }
        FrameFormat::RAWBGR => {
            need(px * 3)?;
            out = wrap_packed(bytes, h, w, 3)?;
        }
    }
    Ok(out)
}

/// Copies `rows`×`cols` pixels of `channels` interleaved bytes into an owned `Mat`.
fn wrap_packed(bytes: &[u8], rows: i32, cols: i32, channels: i32) -> Result<Mat, opencv::Error> {
    let len = rows as usize * cols as usize * channels as usize;
    let flat = Mat::new_rows_cols_with_data(rows, cols * channels, &bytes[..len])?;
    let shaped = flat.reshape(channels, rows)?;
    shaped.try_clone()
}

#[cfg(test)]
mod tests {
    use super::*;
    use opencv::core::{MatTraitConstManual, Scalar, CV_8UC3};

    #[test]
    fn yuyv_grey_and_rgb_buffers_become_bgr() {
        // A mid-grey YUYV frame (Y=128, U=V=128) is grey in BGR.
        let yuyv = vec![128u8; 8 * 4 * 2];
        let m = bgr_from_camera_buffer(&yuyv, 8, 4, FrameFormat::YUYV).expect("yuyv");
        assert_eq!((m.cols(), m.rows(), m.channels()), (8, 4, 3));
        assert!(m.data_bytes().expect("bytes").iter().all(|&v| (126..=130).contains(&v)));
        // Pure red in RGB is (0, 0, 255) in BGR.
        let rgb: Vec<u8> = (0..8 * 4).flat_map(|_| [255u8, 0, 0]).collect();
        let m = bgr_from_camera_buffer(&rgb, 8, 4, FrameFormat::RAWRGB).expect("rgb");
        assert_eq!(&m.data_bytes().expect("bytes")[..3], &[0, 0, 255]);
        let m = bgr_from_camera_buffer(&[7u8; 32], 8, 4, FrameFormat::GRAY).expect("grey");
        assert_eq!(&m.data_bytes().expect("bytes")[..3], &[7, 7, 7]);
    }

    #[test]
    fn short_buffers_and_bad_jpeg_are_errors() {
        assert!(bgr_from_camera_buffer(&[0u8; 10], 8, 4, FrameFormat::YUYV).expect_err("too short").to_string().contains("needs 64"));
        assert!(bgr_from_camera_buffer(&[0u8; 10], 8, 4, FrameFormat::MJPEG).is_err());
    }

    #[test]
    fn mjpeg_buffers_decode() {
        let img = Mat::new_rows_cols_with_default(16, 16, CV_8UC3, Scalar::new(10.0, 200.0, 30.0, 0.0)).expect("mat");
        let mut jpeg = Vector::<u8>::new();
        imgcodecs::imencode(".jpg", &img, &mut jpeg, &Vector::new()).expect("encode");
        let m = bgr_from_camera_buffer(jpeg.as_slice(), 16, 16, FrameFormat::MJPEG).expect("mjpeg");
        assert_eq!((m.cols(), m.rows()), (16, 16));
    }

    #[test]
    fn device_paths_resolve_to_indices() {
        assert_eq!(device_index("3").expect("index"), 3);
        let e = device_index("/dev/video-missing").expect_err("absent");
        assert!(e.to_string().contains("no such device"), "{e}");
    }
}
