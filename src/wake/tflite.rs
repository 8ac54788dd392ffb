//! Just enough of the TensorFlow Lite FlatBuffer schema to load microWakeWord models: a
//! bounds-checked FlatBuffer reader and an owned copy of the model (tensors, quantisation,
//! buffers, operators, subgraphs). Every offset is checked, so a truncated or hostile file is
//! an error, never a panic or an out-of-bounds read.

use super::WakeError;

/// Models are ~50–80 KB; anything far larger is not a wake-word model.
pub const MAX_MODEL_BYTES: usize = 16 << 20;
const MAX_TENSOR_ELEMENTS: usize = 1 << 22;
const MAX_VECTOR_LEN: usize = 1 << 22;

fn bad(msg: impl Into<String>) -> WakeError {
    WakeError::Model(msg.into())
}

/// A position in a FlatBuffer that is known to hold a table.
#[derive(Clone, Copy)]
struct Table<'a> {
    buf: &'a [u8],
    pos: usize,
    vtable: usize,
    vtable_len: usize,
}

fn read_u16(buf: &[u8], at: usize) -> Result<u16, WakeError> {
    buf.get(at..at + 2)
        .map(|b| u16::from_le_bytes([b[0], b[1]]))
        .ok_or_else(|| bad(format!("read past the end of the file at {at}")))
}

fn read_u32(buf: &[u8], at: usize) -> Result<u32, WakeError> {
    buf.get(at..at.checked_add(4).ok_or_else(|| bad("offset overflow"))?)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or_else(|| bad(format!("read past the end of the file at {at}")))
}

fn follow(buf: &[u8], at: usize) -> Result<usize, WakeError> {
    let off = read_u32(buf, at)? as usize;
    let target = at.checked_add(off).ok_or_else(|| bad("offset overflow"))?;
    if target >= buf.len() {
        return Err(bad(format!(
            "offset at {at} points past the end of the file"
        )));
    }
    Ok(target)
}

impl<'a> Table<'a> {
    fn at(buf: &'a [u8], pos: usize) -> Result<Table<'a>, WakeError> {
        let soff = read_u32(buf, pos)? as i32 as i64;
        let vtable = pos as i64 - soff;
        if vtable < 0 || vtable as usize + 4 > buf.len() {
            return Err(bad(format!(
                "table at {pos} has its vtable outside the file"
            )));
        }
        let vtable = vtable as usize;
        let vtable_len = read_u16(buf, vtable)? as usize;
        if vtable_len < 4 || vtable + vtable_len > buf.len() {
            return Err(bad(format!("bad vtable at {vtable}")));
        }
        Ok(Table {
            buf,
            pos,
            vtable,
            vtable_len,
        })
    }

    fn root(buf: &'a [u8]) -> Result<Table<'a>, WakeError> {
        let pos = follow(buf, 0)?;
        Table::at(buf, pos)
    }

    /// Absolute position of field `idx`, or None when absent.
    fn field(&self, idx: usize) -> Result<Option<usize>, WakeError> {
        let slot = 4 + 2 * idx;
        if slot + 2 > self.vtable_len {
            return Ok(None);
        }
        let off = read_u16(self.buf, self.vtable + slot)? as usize;
        if off == 0 {
            return Ok(None);
        }
        Ok(Some(self.pos + off))
    }

    fn scalar<const N: usize>(&self, idx: usize) -> Result<Option<[u8; N]>, WakeError> {
        match self.field(idx)? {
            None => Ok(None),
            Some(p) => self
                .buf
                .get(p..p + N)
                .map(|b| {
                    let mut a = [0u8; N];
                    a.copy_from_slice(b);
                    Some(a)
                })
                .ok_or_else(|| bad("scalar field past the end of the file")),
        }
    }

    fn i8(&self, idx: usize, default: i8) -> Result<i8, WakeError> {
        Ok(self.scalar::<1>(idx)?.map_or(default, |b| b[0] as i8))
    }

    fn u8(&self, idx: usize, default: u8) -> Result<u8, WakeError> {
        Ok(self.scalar::<1>(idx)?.map_or(default, |b| b[0]))
    }

    fn i32(&self, idx: usize, default: i32) -> Result<i32, WakeError> {
        Ok(self.scalar::<4>(idx)?.map_or(default, i32::from_le_bytes))
    }

    fn u32(&self, idx: usize, default: u32) -> Result<u32, WakeError> {
        Ok(self.scalar::<4>(idx)?.map_or(default, u32::from_le_bytes))
    }

    fn u64(&self, idx: usize, default: u64) -> Result<u64, WakeError> {
        Ok(self.scalar::<8>(idx)?.map_or(default, u64::from_le_bytes))
    }

    fn table(&self, idx: usize) -> Result<Option<Table<'a>>, WakeError> {
        match self.field(idx)? {
            None => Ok(None),
            Some(p) => Ok(Some(Table::at(self.buf, follow(self.buf, p)?)?)),
        }
    }

    /// (start of elements, element count) of a vector field, checked against `elem` bytes each.
    fn vector(&self, idx: usize, elem: usize) -> Result<Option<(usize, usize)>, WakeError> {
        let Some(p) = self.field(idx)? else {
            return Ok(None);
        };
        let v = follow(self.buf, p)?;
        let len = read_u32(self.buf, v)? as usize;
        if len > MAX_VECTOR_LEN {
            return Err(bad(format!("vector of {len} elements is too long")));
        }
        let start = v + 4;
        let end = start
            .checked_add(len * elem)
            .ok_or_else(|| bad("vector overflow"))?;
        if end > self.buf.len() {
            return Err(bad(format!("vector at {v} runs past the end of the file")));
        }
        Ok(Some((start, len)))
    }

    fn bytes(&self, idx: usize) -> Result<Option<&'a [u8]>, WakeError> {
        Ok(self.vector(idx, 1)?.map(|(s, n)| &self.buf[s..s + n]))
    }

    fn string(&self, idx: usize) -> Result<Option<String>, WakeError> {
        Ok(self
            .bytes(idx)?
            .map(|b| String::from_utf8_lossy(b).into_owned()))
    }

    fn i32s(&self, idx: usize) -> Result<Vec<i32>, WakeError> {
        Ok(match self.vector(idx, 4)? {
            None => Vec::new(),
            Some((s, n)) => (0..n)
                .map(|i| {
                    let b = &self.buf[s + 4 * i..s + 4 * i + 4];
                    i32::from_le_bytes([b[0], b[1], b[2], b[3]])
                })
                .collect(),
        })
    }

    fn f32s(&self, idx: usize) -> Result<Vec<f32>, WakeError> {
        Ok(self
            .i32s(idx)?
            .into_iter()
            .map(|v| f32::from_bits(v as u32))
            .collect())
    }

    fn i64s(&self, idx: usize) -> Result<Vec<i64>, WakeError> {
        Ok(match self.vector(idx, 8)? {
            None => Vec::new(),
            Some((s, n)) => (0..n)
                .map(|i| {
                    let mut a = [0u8; 8];
                    a.copy_from_slice(&self.buf[s + 8 * i..s + 8 * i + 8]);
                    i64::from_le_bytes(a)
                })
                .collect(),
        })
    }

    fn tables(&self, idx: usize) -> Result<Vec<Table<'a>>, WakeError> {
        let Some((s, n)) = self.vector(idx, 4)? else {
            return Ok(Vec::new());
        };
        (0..n)
            .map(|i| Table::at(self.buf, follow(self.buf, s + 4 * i)?))
            .collect()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TensorType {
    Float32,
    Int32,
    UInt8,
    Int64,
    Int8,
    Resource,
}

impl TensorType {
    fn from_code(code: i8) -> Result<TensorType, WakeError> {
        Ok(match code {
            0 => TensorType::Float32,
            2 => TensorType::Int32,
            3 => TensorType::UInt8,
            4 => TensorType::Int64,
            9 => TensorType::Int8,
            13 => TensorType::Resource,
            other => return Err(bad(format!("unsupported tensor type {other}"))),
        })
    }

    pub fn size(self) -> usize {
        match self {
            TensorType::UInt8 | TensorType::Int8 => 1,
            TensorType::Float32 | TensorType::Int32 => 4,
            TensorType::Int64 => 8,
            TensorType::Resource => 0,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Quantization {
    pub scale: Vec<f32>,
    pub zero_point: Vec<i64>,
    pub quantized_dimension: i32,
}

#[derive(Clone, Debug)]
pub struct Tensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub ty: TensorType,
    pub buffer: usize,
    pub quant: Quantization,
}

impl Tensor {
    pub fn elements(&self) -> usize {
        self.shape.iter().product()
    }

    /// Per-tensor scale and zero point (the first entry for per-channel tensors).
    pub fn scale_zp(&self) -> Result<(f32, i32), WakeError> {
        match (self.quant.scale.first(), self.quant.zero_point.first()) {
            // Zero points of 8- and 16-bit tensors; anything wider is a broken file (and would
            // overflow the kernels' offsets).
            (Some(&s), zp)
                if s > 0.0
                    && s.is_finite()
                    && (-65_536..=65_536).contains(&zp.copied().unwrap_or(0)) =>
            {
                Ok((s, zp.copied().unwrap_or(0) as i32))
            }
            _ => Err(bad(format!("tensor {} is not quantised", self.name))),
        }
    }
}

/// The builtin operators the interpreter runs; anything else is refused by name at load time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpKind {
    Concatenation,
    Conv2d,
    DepthwiseConv2d,
    FullyConnected,
    Logistic,
    Reshape,
    StridedSlice,
    SplitV,
    Quantize,
    CallOnce,
    VarHandle,
    ReadVariable,
    AssignVariable,
}

fn builtin_name(code: i32) -> &'static str {
    match code {
        0 => "ADD",
        1 => "AVERAGE_POOL_2D",
        2 => "CONCATENATION",
        3 => "CONV_2D",
        4 => "DEPTHWISE_CONV_2D",
        6 => "DEQUANTIZE",
        9 => "FULLY_CONNECTED",
        14 => "LOGISTIC",
        17 => "MAX_POOL_2D",
        18 => "MUL",
        19 => "RELU",
        21 => "RELU6",
        22 => "RESHAPE",
        25 => "SOFTMAX",
        28 => "TANH",
        34 => "PAD",
        39 => "TRANSPOSE",
        40 => "MEAN",
        41 => "SUB",
        43 => "SQUEEZE",
        45 => "STRIDED_SLICE",
        49 => "SPLIT",
        102 => "SPLIT_V",
        114 => "QUANTIZE",
        129 => "CALL_ONCE",
        142 => "VAR_HANDLE",
        143 => "READ_VARIABLE",
        144 => "ASSIGN_VARIABLE",
        _ => "",
    }
}

impl OpKind {
    fn from_code(code: i32, custom: Option<&str>) -> Result<OpKind, WakeError> {
        Ok(match code {
            2 => OpKind::Concatenation,
            3 => OpKind::Conv2d,
            4 => OpKind::DepthwiseConv2d,
            9 => OpKind::FullyConnected,
            14 => OpKind::Logistic,
            22 => OpKind::Reshape,
            45 => OpKind::StridedSlice,
            102 => OpKind::SplitV,
            114 => OpKind::Quantize,
            129 => OpKind::CallOnce,
            142 => OpKind::VarHandle,
            143 => OpKind::ReadVariable,
            144 => OpKind::AssignVariable,
            32 => {
                return Err(WakeError::UnsupportedOp(format!(
                    "CUSTOM ({})",
                    custom.unwrap_or("unnamed")
                )))
            }
            other => {
                let name = builtin_name(other);
                return Err(WakeError::UnsupportedOp(if name.is_empty() {
                    format!("builtin operator {other}")
                } else {
                    name.to_string()
                }));
            }
        })
    }
}

/// Builtin options as the interpreter needs them; fields default as in the schema.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Options {
    pub padding_same: bool,
    pub stride_w: i32,
    pub stride_h: i32,
    pub dilation_w: i32,
    pub dilation_h: i32,
    pub depth_multiplier: i32,
    /// 0 none, 1 relu, 2 relu_n1_to_1, 3 relu6
    pub activation: i8,
    pub axis: i32,
    pub begin_mask: i32,
    pub end_mask: i32,
    pub ellipsis_mask: i32,
    pub new_axis_mask: i32,
    pub shrink_axis_mask: i32,
    pub offset: bool,
    pub keep_num_dims: bool,
    pub weights_format: i8,
    pub init_subgraph: i32,
    pub container: String,
    pub shared_name: String,
}

#[derive(Clone, Debug)]
pub struct Operator {
    pub kind: OpKind,
    /// Tensor indices; -1 is an absent optional input.
    pub inputs: Vec<i32>,
    pub outputs: Vec<i32>,
    pub options: Options,
}

#[derive(Clone, Debug)]
pub struct Subgraph {
    pub name: String,
    pub tensors: Vec<Tensor>,
    pub inputs: Vec<usize>,
    pub outputs: Vec<usize>,
    pub operators: Vec<Operator>,
}

#[derive(Clone, Debug)]
pub struct Model {
    pub version: u32,
    pub subgraphs: Vec<Subgraph>,
    pub buffers: Vec<Vec<u8>>,
}

fn parse_options(kind: OpKind, t: Option<Table>) -> Result<Options, WakeError> {
    let mut o = Options {
        stride_w: 1,
        stride_h: 1,
        dilation_w: 1,
        dilation_h: 1,
        depth_multiplier: 1,
        ..Options::default()
    };
    let Some(t) = t else {
        return Ok(o);
    };
    match kind {
        OpKind::Conv2d => {
            o.padding_same = t.i8(0, 0)? == 0;
            o.stride_w = t.i32(1, 0)?;
            o.stride_h = t.i32(2, 0)?;
            o.activation = t.i8(3, 0)?;
            o.dilation_w = t.i32(4, 1)?;
            o.dilation_h = t.i32(5, 1)?;
        }
        OpKind::DepthwiseConv2d => {
            o.padding_same = t.i8(0, 0)? == 0;
            o.stride_w = t.i32(1, 0)?;
            o.stride_h = t.i32(2, 0)?;
            o.depth_multiplier = t.i32(3, 0)?;
            o.activation = t.i8(4, 0)?;
            o.dilation_w = t.i32(5, 1)?;
            o.dilation_h = t.i32(6, 1)?;
        }
        OpKind::FullyConnected => {
            o.activation = t.i8(0, 0)?;
            o.weights_format = t.i8(1, 0)?;
            o.keep_num_dims = t.u8(2, 0)? != 0;
        }
        OpKind::Concatenation => {
            o.axis = t.i32(0, 0)?;
            o.activation = t.i8(1, 0)?;
        }
        OpKind::StridedSlice => {
            o.begin_mask = t.i32(0, 0)?;
            o.end_mask = t.i32(1, 0)?;
            o.ellipsis_mask = t.i32(2, 0)?;
            o.new_axis_mask = t.i32(3, 0)?;
            o.shrink_axis_mask = t.i32(4, 0)?;
            o.offset = t.u8(5, 0)? != 0;
        }
        OpKind::CallOnce => o.init_subgraph = t.i32(0, 0)?,
        OpKind::VarHandle => {
            o.container = t.string(0)?.unwrap_or_default();
            o.shared_name = t.string(1)?.unwrap_or_default();
        }
        _ => {}
    }
    Ok(o)
}

impl Model {
    pub fn parse(data: &[u8]) -> Result<Model, WakeError> {
        if data.len() < 8 {
            return Err(bad("file too short for a TFLite model"));
        }
        if data.len() > MAX_MODEL_BYTES {
            return Err(bad(format!("model of {} bytes is too large", data.len())));
        }
        if &data[4..8] != b"TFL3" {
            return Err(bad("not a TFLite model (no TFL3 identifier)"));
        }
        let root = Table::root(data)?;
        let version = root.u32(0, 0)?;
        let mut kinds = Vec::new();
        for oc in root.tables(1)? {
            let deprecated = oc.i8(0, 0)? as i32;
            let code = oc.i32(3, 0)?.max(deprecated);
            let custom = oc.string(1)?;
            kinds.push((code, custom));
        }
        let mut buffers = Vec::new();
        for b in root.tables(4)? {
            if b.u64(1, 0)? > 1 || b.u64(2, 0)? > 0 {
                return Err(bad(
                    "buffers stored outside the FlatBuffer are not supported",
                ));
            }
            buffers.push(b.bytes(0)?.map(<[u8]>::to_vec).unwrap_or_default());
        }
        let mut subgraphs = Vec::new();
        for sg in root.tables(2)? {
            let mut tensors = Vec::new();
            for t in sg.tables(0)? {
                let shape = t
                    .i32s(0)?
                    .into_iter()
                    .map(|d| usize::try_from(d).map_err(|_| bad("negative tensor dimension")))
                    .collect::<Result<Vec<_>, _>>()?;
                let mut n: usize = 1;
                for &d in &shape {
                    n = n
                        .checked_mul(d)
                        .filter(|&n| n <= MAX_TENSOR_ELEMENTS)
                        .ok_or_else(|| bad("tensor too large"))?;
                }
                let ty = TensorType::from_code(t.i8(1, 0)?)?;
                let buffer = t.u32(2, 0)? as usize;
                if buffer >= buffers.len() {
                    return Err(bad(format!("tensor refers to missing buffer {buffer}")));
                }
                let name = t.string(3)?.unwrap_or_default();
                let quant = match t.table(4)? {
                    None => Quantization::default(),
                    Some(q) => Quantization {
                        scale: q.f32s(2)?,
                        zero_point: q.i64s(3)?,
                        quantized_dimension: q.i32(6, 0)?,
                    },
                };
                let data_len = buffers[buffer].len();
                if data_len != 0 && data_len != n * ty.size() {
                    return Err(bad(format!(
                        "tensor {name}: buffer holds {data_len} bytes, shape needs {}",
                        n * ty.size()
                    )));
                }
                tensors.push(Tensor {
                    name,
                    shape,
                    ty,
                    buffer,
                    quant,
                });
            }
            let index = |v: Vec<i32>| -> Result<Vec<usize>, WakeError> {
                v.into_iter()
                    .map(|i| {
                        usize::try_from(i)
                            .ok()
                            .filter(|&i| i < tensors.len())
                            .ok_or_else(|| bad(format!("tensor index {i} out of range")))
                    })
                    .collect()
            };
            let inputs = index(sg.i32s(1)?)?;
            let outputs = index(sg.i32s(2)?)?;
            let mut operators = Vec::new();
            for op in sg.tables(3)? {
                let oi = op.u32(0, 0)? as usize;
                let kind = match kinds.get(oi) {
                    Some((code, custom)) => OpKind::from_code(*code, custom.as_deref())?,
                    None => return Err(bad(format!("operator code {oi} out of range"))),
                };
                let ins = op.i32s(1)?;
                let outs = op.i32s(2)?;
                for &i in ins.iter().chain(outs.iter()) {
                    if i < -1 || i >= tensors.len() as i32 {
                        return Err(bad(format!("operator tensor index {i} out of range")));
                    }
                }
                let options = parse_options(kind, op.table(4)?)?;
                operators.push(Operator {
                    kind,
                    inputs: ins,
                    outputs: outs,
                    options,
                });
            }
            subgraphs.push(Subgraph {
                name: sg.string(4)?.unwrap_or_default(),
                tensors,
                inputs,
                outputs,
                operators,
            });
        }
        if subgraphs.is_empty() {
            return Err(bad("model has no subgraphs"));
        }
        Ok(Model {
            version,
            subgraphs,
            buffers,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OKAY_NABU: &[u8] = include_bytes!("../../models/wake/okay_nabu.tflite");

    #[test]
    fn parses_shipped_model() {
        let m = Model::parse(OKAY_NABU).expect("parse");
        assert_eq!(m.version, 3);
        assert_eq!(m.subgraphs.len(), 2);
        let sg = &m.subgraphs[0];
        let input = &sg.tensors[sg.inputs[0]];
        assert_eq!(input.shape, vec![1, 3, 40]);
        assert_eq!(input.ty, TensorType::Int8);
        assert_eq!(input.scale_zp().expect("quant").1, -128);
        assert_eq!(sg.tensors[sg.outputs[0]].ty, TensorType::UInt8);
        assert_eq!(sg.operators[0].kind, OpKind::CallOnce);
        assert_eq!(sg.operators[0].options.init_subgraph, 1);
    }

    #[test]
    fn truncated_and_garbage_files_are_errors() {
        for n in [0, 3, 7, 8, 16, 100, 1000, OKAY_NABU.len() / 2] {
            assert!(Model::parse(&OKAY_NABU[..n]).is_err(), "truncated at {n}");
        }
        for n in (0..OKAY_NABU.len()).step_by(61) {
            let _ = Model::parse(&OKAY_NABU[..n]);
        }
        let mut garbage = vec![0u8; 4096];
        let mut x: u32 = 12345;
        for b in garbage.iter_mut() {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            *b = (x >> 16) as u8;
        }
        assert!(Model::parse(&garbage).is_err());
        garbage[4..8].copy_from_slice(b"TFL3");
        assert!(Model::parse(&garbage).is_err());
        // Flipping bytes anywhere must never panic.
        for i in (0..OKAY_NABU.len()).step_by(97) {
            let mut m = OKAY_NABU.to_vec();
            m[i] ^= 0xA5;
            let _ = Model::parse(&m);
        }
    }

    #[test]
    fn unknown_operator_is_named() {
        match OpKind::from_code(25, None) {
            Err(WakeError::UnsupportedOp(name)) => assert_eq!(name, "SOFTMAX"),
            other => panic!("{other:?}"),
        }
    }
}
