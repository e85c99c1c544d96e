//! The API's multipart parsing: the first line of the input is the Content-Type, the rest the body. Any input
//! gives fields or a 400 message, never a crash; the fields never hold more bytes than the body.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|&b| b == b'\n').unwrap_or(data.len());
    let Ok(content_type) = std::str::from_utf8(&data[..split]) else { return };
    let body = data.get(split + 1..).unwrap_or_default().to_vec();
    let len = body.len();
    if let Ok(fields) = facewatch::api::parse_multipart(content_type, body) {
        assert!(fields.iter().map(|(_, n)| n).sum::<usize>() <= len);
    }
});
