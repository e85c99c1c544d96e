//! Reproducible repairs of published ONNX files, on the protobuf wire format (no ONNX library needed); the same
//! as `scripts/onnx_repair.py`, so that the binary's installer and set-up produce the same bytes, which the
//! manifest pins by their sha256.
//!
//! `initializers_from_inputs`: drop every graph input that is an initializer or that no node reads. Old exporters
//! listed weights as graph inputs, and a block-quantized copy of such a model keeps the names of the float weights
//! it replaced as inputs that nothing consumes: ONNX Runtime then sees 175 inputs where the network has one.
//! Weights, nodes and outputs are untouched.
//!
//! `free_input_size`: not a repair of a file but a change made in memory when a detector is loaded (the file stays
//! as pinned). YuNet's graph declares a fixed 1×3×640×640 input although every layer of it works on any multiple of
//! 32 (its reshapes use −1 and its upsampling a scale; OpenCV's `FaceDetectorYN::setInputSize` relies on it):
//! the input's height and width become named, free dimensions, and the declared shapes of the outputs and of the
//! intermediate values (`value_info`, all recorded at 640×640) are dropped, so that ONNX Runtime accepts the
//! frame's own aspect and infers the rest.

use std::collections::HashSet;

/// A repair that could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum RepairError {
    /// The manifest names a repair this build does not know.
    #[error("unknown repair `{0}`")]
    Unknown(String),
    /// The bytes are not the protobuf the repair expects.
    #[error("not an ONNX model: {0}")]
    NotOnnx(&'static str),
}

/// Applies the repair `name` to `model`.
pub fn repair(name: &str, model: &[u8]) -> Result<Vec<u8>, RepairError> {
    match name {
        "initializers_from_inputs" => initializers_from_inputs(model),
        other => Err(RepairError::Unknown(other.into())),
    }
}

/// The detector `model` with the height and width of its 4-dimensional input freed (module documentation).
pub fn free_input_size(model: &[u8]) -> Result<Vec<u8>, RepairError> {
    let mut found_input = false;
    let out = map_fields(model, |f| match (f.number, f.payload) {
        // ModelProto.graph = 7; GraphProto.input = 11, .output = 12.
        (7, Some(graph)) => Ok(Some(field(
            7,
            &map_fields(graph, |g| match (g.number, g.payload) {
                (11, Some(input)) => {
                    let freed = map_shape(input, |shape| {
                        let dims: Vec<Field<'_>> = fields(shape)?.into_iter().filter(|d| d.number == 1).collect();
                        if dims.len() != 4 {
                            return Ok(None);
                        }
                        found_input = true;
                        let mut out = Vec::new();
                        for (i, d) in dims.iter().enumerate() {
                            match i {
                                // TensorShapeProto.Dimension.dim_param = 2
                                2 => out.extend(field(1, &field(2, b"height"))),
                                3 => out.extend(field(1, &field(2, b"width"))),
                                _ => out.extend_from_slice(d.raw),
                            }
                        }
                        Ok(Some(out))
                    })?;
                    Ok(Some(field(11, &freed)))
                }
                (12, Some(output)) => Ok(Some(field(12, &map_shape(output, |_| Ok(Some(Vec::new())))?))),
                // GraphProto.value_info = 13: the exporter's record of every intermediate shape at 640×640.
                (13, _) => Ok(Some(Vec::new())),
                _ => Ok(None),
            })?,
        ))),
        _ => Ok(None),
    })?;
    if found_input {
        Ok(out)
    } else {
        Err(RepairError::NotOnnx("no 4-dimensional graph input"))
    }
}

/// `value_info` (a ValueInfoProto) with the payload of its tensor shape replaced by what `f` returns (`None`:
/// kept). ValueInfoProto.type = 2; TypeProto.tensor_type = 1; TypeProto.Tensor.shape = 2.
fn map_shape(value_info: &[u8], mut f: impl FnMut(&[u8]) -> Result<Option<Vec<u8>>, RepairError>) -> Result<Vec<u8>, RepairError> {
    map_fields(value_info, |v| match (v.number, v.payload) {
        (2, Some(ty)) => Ok(Some(field(
            2,
            &map_fields(ty, |t| match (t.number, t.payload) {
                (1, Some(tensor)) => Ok(Some(field(
                    1,
                    &map_fields(tensor, |s| match (s.number, s.payload) {
                        (2, Some(shape)) => Ok(f(shape)?.map(|p| if p.is_empty() { p } else { field(2, &p) })),
                        _ => Ok(None),
                    })?,
                ))),
                _ => Ok(None),
            })?,
        ))),
        _ => Ok(None),
    })
}

/// `message` with each field replaced by the encoded bytes `f` returns for it (`None`: kept as it was; empty:
/// dropped).
fn map_fields(message: &[u8], mut f: impl FnMut(&Field<'_>) -> Result<Option<Vec<u8>>, RepairError>) -> Result<Vec<u8>, RepairError> {
    let mut out = Vec::with_capacity(message.len());
    for x in fields(message)? {
        match f(&x)? {
            Some(bytes) => out.extend(bytes),
            None => out.extend_from_slice(x.raw),
        }
    }
    Ok(out)
}

/// A length-delimited field, encoded.
fn field(number: u64, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(payload.len() + 6);
    encode_varint((number << 3) | 2, &mut v);
    encode_varint(payload.len() as u64, &mut v);
    v.extend_from_slice(payload);
    v
}

/// One protobuf field: its number, wire type, length-delimited payload (if any) and raw bytes.
struct Field<'a> {
    number: u64,
    payload: Option<&'a [u8]>,
    raw: &'a [u8],
}

fn varint(buf: &[u8], i: &mut usize) -> Result<u64, RepairError> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*i).ok_or(RepairError::NotOnnx("a varint runs past the end"))?;
        *i += 1;
        value |= u64::from(b & 0x7F) << shift;
        if b < 0x80 {
            return Ok(value);
        }
    }
    Err(RepairError::NotOnnx("a varint longer than 64 bits"))
}

fn encode_varint(mut v: u64, out: &mut Vec<u8>) {
    loop {
        let b = (v & 0x7F) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

fn fields(buf: &[u8]) -> Result<Vec<Field<'_>>, RepairError> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < buf.len() {
        let start = i;
        let key = varint(buf, &mut i)?;
        let payload = match key & 7 {
            0 => {
                varint(buf, &mut i)?;
                None
            }
            1 => {
                i += 8;
                None
            }
            2 => {
                let n = usize::try_from(varint(buf, &mut i)?).map_err(|_| RepairError::NotOnnx("a field too long"))?;
                let p = buf.get(i..i.saturating_add(n)).ok_or(RepairError::NotOnnx("a field runs past the end"))?;
                i += n;
                Some(p)
            }
            5 => {
                i += 4;
                None
            }
            _ => return Err(RepairError::NotOnnx("an unsupported protobuf wire type")),
        };
        let raw = buf.get(start..i).ok_or(RepairError::NotOnnx("a field runs past the end"))?;
        out.push(Field { number: key >> 3, payload, raw });
    }
    Ok(out)
}

/// The length-delimited fields `number` of `message`, as UTF-8 strings.
fn strings(message: &[u8], number: u64) -> Result<Vec<String>, RepairError> {
    Ok(fields(message)?
        .into_iter()
        .filter(|f| f.number == number)
        .filter_map(|f| f.payload)
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect())
}

fn name(message: &[u8], number: u64) -> Result<Option<String>, RepairError> {
    Ok(strings(message, number)?.into_iter().next())
}

// ModelProto.graph = 7; GraphProto.node = 1, .initializer = 5, .input = 11, .output = 12; NodeProto.input = 1;
// TensorProto.name = 8; ValueInfoProto.name = 1.
fn initializers_from_inputs(model: &[u8]) -> Result<Vec<u8>, RepairError> {
    let mut out = Vec::with_capacity(model.len());
    let mut found_graph = false;
    for f in fields(model)? {
        let (7, Some(graph)) = (f.number, f.payload) else {
            out.extend_from_slice(f.raw);
            continue;
        };
        found_graph = true;
        let parts = fields(graph)?;
        let payloads = |n: u64| parts.iter().filter(move |f| f.number == n).filter_map(|f| f.payload);
        let mut inits = HashSet::new();
        for p in payloads(5) {
            inits.extend(name(p, 8)?);
        }
        let mut read = HashSet::new();
        for p in payloads(1) {
            read.extend(strings(p, 1)?);
        }
        for p in payloads(12) {
            read.extend(name(p, 1)?);
        }
        let mut kept = Vec::with_capacity(graph.len());
        for g in &parts {
            if let (11, Some(p)) = (g.number, g.payload) {
                let n = name(p, 1)?.unwrap_or_default();
                if inits.contains(&n) || !read.contains(&n) {
                    continue;
                }
            }
            kept.extend_from_slice(g.raw);
        }
        encode_varint((7 << 3) | 2, &mut out);
        encode_varint(kept.len() as u64, &mut out);
        out.extend_from_slice(&kept);
    }
    if found_graph {
        Ok(out)
    } else {
        Err(RepairError::NotOnnx("no graph"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_that_are_weights_or_unread_are_dropped_and_the_rest_kept_byte_for_byte() {
        let input = |n: &str| field(11, &field(1, n.as_bytes()));
        let node = [field(1, b"data"), field(1, b"w")].concat();
        let graph =
            [field(1, &node), field(5, &field(8, b"w")), input("data"), input("w"), input("unused"), field(12, &field(1, b"out"))].concat();
        let model = [vec![0x08, 0x07], field(7, &graph)].concat();
        let repaired = initializers_from_inputs(&model).expect("repair");
        let g = fields(&repaired).expect("fields").into_iter().find(|f| f.number == 7).and_then(|f| f.payload).expect("graph");
        let inputs: Vec<String> = fields(g)
            .expect("graph fields")
            .iter()
            .filter(|f| f.number == 11)
            .filter_map(|f| f.payload)
            .map(|p| name(p, 1).expect("name").expect("some"))
            .collect();
        assert_eq!(inputs, ["data"]);
        assert_eq!(&repaired[..2], [0x08, 0x07], "other fields untouched");
        assert!(matches!(initializers_from_inputs(b"\x08\x07"), Err(RepairError::NotOnnx(_))));
        assert!(matches!(repair("nope", &model), Err(RepairError::Unknown(_))));
    }

    fn dims(model: &[u8], graph_field: u64) -> Vec<String> {
        let g = fields(model).expect("model").into_iter().find(|f| f.number == 7).and_then(|f| f.payload).expect("graph");
        let vi = fields(g).expect("graph").into_iter().find(|f| f.number == graph_field).and_then(|f| f.payload).expect("value info");
        fn dig(m: &[u8], n: u64) -> Option<&[u8]> {
            fields(m).expect("fields").into_iter().find(|f| f.number == n).and_then(|f| f.payload)
        }
        let Some(shape) = dig(vi, 2).and_then(|t| dig(t, 1)).and_then(|t| dig(t, 2)) else { return Vec::new() };
        fields(shape)
            .expect("shape")
            .iter()
            .filter_map(|d| d.payload)
            .map(|d| {
                let f = fields(d).expect("dim").into_iter().next().expect("one");
                match f.payload {
                    Some(p) => String::from_utf8_lossy(p).into_owned(),
                    None => {
                        let mut i = 0;
                        let _key = varint(f.raw, &mut i).expect("key");
                        varint(f.raw, &mut i).expect("value").to_string()
                    }
                }
            })
            .collect()
    }

    #[test]
    fn a_fixed_detector_input_gets_free_height_and_width_and_the_outputs_lose_their_shapes() {
        let value = |v: u64| {
            let mut d = Vec::new();
            encode_varint(1 << 3, &mut d);
            encode_varint(v, &mut d);
            field(1, &d)
        };
        let shape = |dims: &[u64]| dims.iter().flat_map(|&v| value(v)).collect::<Vec<u8>>();
        let elem_type = [0x08, 0x01]; // TypeProto.Tensor.elem_type = FLOAT
        let typed = |name: &[u8], dims: &[u64]| {
            [field(1, name), field(2, &field(1, &[elem_type.to_vec(), field(2, &shape(dims))].concat()))].concat()
        };
        let graph = [
            field(1, &field(1, b"input")),
            field(11, &typed(b"input", &[1, 3, 640, 640])),
            field(12, &typed(b"cls_8", &[1, 6400, 1])),
            field(13, &typed(b"419", &[1, 16, 320, 320])),
        ]
        .concat();
        let model = [vec![0x08, 0x07], field(7, &graph)].concat();
        let freed = free_input_size(&model).expect("freed");
        assert_eq!(dims(&model, 11), ["1", "3", "640", "640"]);
        assert_eq!(dims(&freed, 11), ["1", "3", "height", "width"]);
        assert_eq!(dims(&model, 12), ["1", "6400", "1"]);
        assert!(dims(&freed, 12).is_empty(), "output shape dropped");
        let g = fields(&freed).expect("model").into_iter().find(|f| f.number == 7).and_then(|f| f.payload).expect("graph");
        assert!(fields(g).expect("graph").iter().all(|f| f.number != 13), "value_info dropped");
        assert_eq!(&freed[..2], [0x08, 0x07], "other fields untouched");
        let flat = [vec![0x08, 0x07], field(7, &[field(11, &typed(b"x", &[1, 512]))].concat())].concat();
        assert!(matches!(free_input_size(&flat), Err(RepairError::NotOnnx(_))), "no 4-d input: refused");
    }
}
