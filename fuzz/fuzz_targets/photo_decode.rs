//! Photo decoding as uploads and `enroll` meet it: any bytes give a frame or an error, never a crash, a hang or
//! a frame beyond the pixel limit.
#![no_main]

use libfuzzer_sys::fuzz_target;

/// Small, so that a decompression bomb shows as a refusal rather than as memory.
const MAX_PIXELS: usize = 4_000_000;

fuzz_target!(|data: &[u8]| {
    if let Ok(frame) = facewatch::image::decode(data, std::path::Path::new("upload"), MAX_PIXELS) {
        let (w, h) = (frame.width() as usize, frame.height() as usize);
        assert!(w > 0 && h > 0 && w * h <= MAX_PIXELS, "{w}x{h} decoded under a {MAX_PIXELS}-pixel limit");
        assert!(frame.original_width > 0 && frame.original_height > 0);
    }
});
