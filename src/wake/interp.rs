//! int8 interpreter for the operators microWakeWord's streaming models use. Arithmetic follows
//! TensorFlow Lite's integer kernels (QuantizeMultiplier, MultiplyByQuantizedMultiplier with
//! its double rounding, the float lookup table for LOGISTIC) so the outputs match the
//! reference library. Streaming state lives in resource variables that persist between
//! invocations, initialised once by the CALL_ONCE subgraph.

use std::collections::HashMap;

use super::tflite::{Model, OpKind, Operator, Subgraph, Tensor, TensorType};
use super::WakeError;

fn bad(msg: impl Into<String>) -> WakeError {
    WakeError::Model(msg.into())
}

/// TFLite's QuantizeMultiplier: m = q * 2^shift with q a Q31 in [0.5, 1).
pub fn quantize_multiplier(m: f64) -> (i32, i32) {
    if m <= 0.0 || !m.is_finite() {
        return (0, 0);
    }
    let (frac, mut shift) = frexp(m);
    let mut q = (frac * (1i64 << 31) as f64).round() as i64;
    if q == 1i64 << 31 {
        q /= 2;
        shift += 1;
    }
    if shift < -31 {
        return (0, 0);
    }
    (q as i32, shift)
}

fn frexp(x: f64) -> (f64, i32) {
    let bits = x.to_bits();
    let exp = ((bits >> 52) & 0x7ff) as i32;
    if exp == 0 {
        // Subnormal: scale into the normal range first.
        let (f, e) = frexp(x * (1u64 << 54) as f64);
        return (f, e - 54);
    }
    let frac = f64::from_bits((bits & !(0x7ffu64 << 52)) | (1022u64 << 52));
    (frac, exp - 1022)
}

fn saturating_rounding_doubling_high_mul(a: i32, b: i32) -> i32 {
    if a == b && a == i32::MIN {
        return i32::MAX;
    }
    let ab = a as i64 * b as i64;
    let nudge: i64 = if ab >= 0 { 1 << 30 } else { 1 - (1 << 30) };
    ((ab + nudge) / (1i64 << 31)) as i32
}

fn rounding_divide_by_pot(x: i32, exponent: i32) -> i32 {
    if exponent <= 0 {
        return x;
    }
    let mask = ((1i64 << exponent) - 1) as i32;
    let remainder = x & mask;
    let threshold = (mask >> 1) + i32::from(x < 0);
    (x >> exponent) + i32::from(remainder > threshold)
}

pub fn multiply_by_quantized_multiplier(x: i32, q: i32, shift: i32) -> i32 {
    // A real model's multipliers are below 2^30 (and above 2^-31, see quantize_multiplier); a
    // broken one's scales must not overflow the shifts.
    let left = shift.clamp(0, 30);
    let right = (-shift).clamp(0, 31);
    rounding_divide_by_pot(
        saturating_rounding_doubling_high_mul(x.wrapping_mul(1 << left), q),
        right,
    )
}

fn type_range(ty: TensorType) -> Result<(i32, i32), WakeError> {
    match ty {
        TensorType::Int8 => Ok((-128, 127)),
        TensorType::UInt8 => Ok((0, 255)),
        other => Err(bad(format!("expected an 8-bit tensor, found {other:?}"))),
    }
}

fn activation_range(act: i8, scale: f32, zp: i32, ty: TensorType) -> Result<(i32, i32), WakeError> {
    let (qmin, qmax) = type_range(ty)?;
    // Float-to-int casts saturate; the add must too (a hostile scale makes them huge).
    let q = |f: f32| zp.saturating_add((f / scale).round() as i32);
    Ok(match act {
        0 => (qmin, qmax),
        1 => (qmin.max(zp), qmax),
        2 => (qmin.max(q(-1.0)), qmax.min(q(1.0))),
        3 => (qmin.max(zp), qmax.min(q(6.0))),
        other => return Err(bad(format!("unsupported fused activation {other}"))),
    })
}

#[derive(Clone, Debug)]
struct ConvParams {
    in_off: i32,
    w_off: i32,
    out_off: i32,
    act_min: i32,
    act_max: i32,
    mult: Vec<(i32, i32)>,
    bias: Vec<i32>,
    pad_h: usize,
    pad_w: usize,
}

#[derive(Clone, Debug)]
enum Prep {
    None,
    Conv(ConvParams),
    Lut(Box<[u8; 256]>),
    Requant {
        mult: i32,
        shift: i32,
        in_zp: i32,
        out_zp: i32,
        min: i32,
        max: i32,
    },
    Concat {
        axis: usize,
        /// (scale, zero point) per input when they differ from the output's.
        rescale: Vec<Option<(f32, i32)>>,
        out_zp: i32,
        out_scale: f32,
        min: i32,
        max: i32,
    },
    Slice {
        starts: Vec<i64>,
        stops: Vec<i64>,
        strides: Vec<i64>,
    },
    Split {
        axis: usize,
        sizes: Vec<usize>,
    },
    Var(usize),
}

fn i32_data(buf: &[u8]) -> Vec<i32> {
    buf.chunks_exact(4)
        .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

fn padding(same: bool, input: usize, k: usize, stride: usize, dil: usize) -> (usize, usize) {
    let eff = (k - 1) * dil + 1;
    if same {
        let out = input.div_ceil(stride);
        let total = ((out - 1) * stride + eff).saturating_sub(input);
        (out, total / 2)
    } else {
        ((input + stride).saturating_sub(eff) / stride, 0)
    }
}

pub struct Interpreter {
    subgraphs: Vec<Subgraph>,
    /// Tensor bytes per subgraph (constants copied from their buffers).
    data: Vec<Vec<Vec<u8>>>,
    prep: Vec<Vec<Prep>>,
    /// Resource variable per (subgraph, tensor) once its VAR_HANDLE ran.
    handles: Vec<Vec<Option<usize>>>,
    variables: Vec<Option<Vec<u8>>>,
    called_once: Vec<bool>,
}

impl Interpreter {
    pub fn new(model: Model) -> Result<Interpreter, WakeError> {
        let mut data = Vec::new();
        let mut handles = Vec::new();
        for sg in &model.subgraphs {
            let mut tensors = Vec::new();
            for (ti, t) in sg.tensors.iter().enumerate() {
                let b = &model.buffers[t.buffer];
                let need = t.elements() * t.ty.size();
                // Every kernel indexes by shape: data of another length is a broken model.
                if !b.is_empty() && b.len() != need {
                    return Err(bad(format!(
                        "tensor {ti} holds {} bytes, its shape needs {need}",
                        b.len()
                    )));
                }
                tensors.push(if b.is_empty() {
                    vec![0u8; need]
                } else {
                    b.clone()
                });
            }
            data.push(tensors);
            handles.push(vec![None; sg.tensors.len()]);
        }
        let mut var_ids: HashMap<(String, String), usize> = HashMap::new();
        let mut prep = Vec::new();
        for (si, sg) in model.subgraphs.iter().enumerate() {
            let mut p = Vec::new();
            for op in &sg.operators {
                p.push(prepare(
                    sg,
                    &data[si],
                    op,
                    &mut var_ids,
                    model.subgraphs.len(),
                )?);
            }
            prep.push(p);
        }
        let n_sub = model.subgraphs.len();
        Ok(Interpreter {
            subgraphs: model.subgraphs,
            data,
            prep,
            handles,
            variables: vec![None; var_ids.len()],
            called_once: vec![false; n_sub],
        })
    }

    pub fn input_tensor(&self) -> Result<&Tensor, WakeError> {
        let sg = &self.subgraphs[0];
        sg.inputs
            .first()
            .map(|&i| &sg.tensors[i])
            .ok_or_else(|| bad("model has no input"))
    }

    pub fn output_tensor(&self) -> Result<&Tensor, WakeError> {
        let sg = &self.subgraphs[0];
        sg.outputs
            .first()
            .map(|&i| &sg.tensors[i])
            .ok_or_else(|| bad("model has no output"))
    }

    pub fn input_mut(&mut self) -> Result<&mut [u8], WakeError> {
        let i = *self.subgraphs[0]
            .inputs
            .first()
            .ok_or_else(|| bad("model has no input"))?;
        Ok(&mut self.data[0][i])
    }

    pub fn output(&self) -> Result<&[u8], WakeError> {
        let i = *self.subgraphs[0]
            .outputs
            .first()
            .ok_or_else(|| bad("model has no output"))?;
        Ok(&self.data[0][i])
    }

    /// Back to the state after load: variables unset, CALL_ONCE pending. Activation tensors
    /// need no clearing, every op writes its output before anything reads it.
    pub fn reset(&mut self) {
        for v in &mut self.variables {
            *v = None;
        }
        for h in &mut self.handles {
            h.iter_mut().for_each(|x| *x = None);
        }
        self.called_once.iter_mut().for_each(|c| *c = false);
    }

    pub fn invoke(&mut self) -> Result<(), WakeError> {
        self.run(0, 0)
    }

    fn run(&mut self, si: usize, depth: usize) -> Result<(), WakeError> {
        if depth > 4 {
            return Err(bad("CALL_ONCE nesting too deep"));
        }
        for oi in 0..self.subgraphs[si].operators.len() {
            let op = &self.subgraphs[si].operators[oi];
            let kind = op.kind;
            match kind {
                OpKind::CallOnce => {
                    let init = op.options.init_subgraph as usize;
                    if !self.called_once[init] {
                        self.called_once[init] = true;
                        self.run(init, depth + 1)?;
                    }
                }
                OpKind::VarHandle => {
                    let Prep::Var(id) = self.prep[si][oi] else {
                        return Err(bad("VAR_HANDLE not prepared"));
                    };
                    let out = op.outputs[0] as usize;
                    self.handles[si][out] = Some(id);
                }
                OpKind::AssignVariable => {
                    let h = op.inputs[0] as usize;
                    let v = op.inputs[1] as usize;
                    let id = self.handles[si][h]
                        .ok_or_else(|| bad("ASSIGN_VARIABLE before its VAR_HANDLE"))?;
                    let value = self.data[si][v].clone();
                    self.variables[id] = Some(value);
                }
                OpKind::ReadVariable => {
                    let h = op.inputs[0] as usize;
                    let out = op.outputs[0] as usize;
                    let id = self.handles[si][h]
                        .ok_or_else(|| bad("READ_VARIABLE before its VAR_HANDLE"))?;
                    let value = self.variables[id]
                        .as_ref()
                        .ok_or_else(|| bad("READ_VARIABLE of an unassigned variable"))?;
                    if value.len() != self.data[si][out].len() {
                        return Err(bad("variable size does not match READ_VARIABLE output"));
                    }
                    self.data[si][out].copy_from_slice(value);
                }
                _ => self.compute(si, oi)?,
            }
        }
        Ok(())
    }

    fn compute(&mut self, si: usize, oi: usize) -> Result<(), WakeError> {
        let sg = &self.subgraphs[si];
        let op = &sg.operators[oi];
        let prep = &self.prep[si][oi];
        let tensors = &mut self.data[si];
        if let Prep::Split { axis, sizes } = prep {
            let it = &sg.tensors[op.inputs[0] as usize];
            let esz = it.ty.size();
            let outer: usize = it.shape[..*axis].iter().product();
            let inner: usize = it.shape[*axis + 1..].iter().product::<usize>() * esz;
            let total = it.shape[*axis];
            let mut start = 0;
            for (k, &n) in sizes.iter().enumerate() {
                let mut dst = std::mem::take(&mut tensors[op.outputs[k] as usize]);
                let src = &tensors[op.inputs[0] as usize];
                let len = n * inner;
                for o in 0..outer {
                    let s = (o * total + start) * inner;
                    dst[o * len..(o + 1) * len].copy_from_slice(&src[s..s + len]);
                }
                start += n;
                tensors[op.outputs[k] as usize] = dst;
            }
            return Ok(());
        }
        let out_idx = op.outputs[0] as usize;
        let mut out = std::mem::take(&mut tensors[out_idx]);
        let t = |i: usize| -> &Tensor { &sg.tensors[op.inputs[i] as usize] };
        let input = |i: usize| -> &[u8] { &tensors[op.inputs[i] as usize] };
        match (op.kind, prep) {
            (OpKind::Conv2d, Prep::Conv(p)) => conv2d(
                p,
                &op.options,
                t(0),
                input(0),
                t(1),
                input(1),
                &sg.tensors[out_idx],
                &mut out,
            ),
            (OpKind::DepthwiseConv2d, Prep::Conv(p)) => depthwise(
                p,
                &op.options,
                t(0),
                input(0),
                t(1),
                input(1),
                &sg.tensors[out_idx],
                &mut out,
            ),
            (OpKind::FullyConnected, Prep::Conv(p)) => {
                fully_connected(p, t(1), input(0), input(1), &mut out)
            }
            (OpKind::Logistic, Prep::Lut(lut)) => {
                for (o, &i) in out.iter_mut().zip(input(0)) {
                    *o = lut[i as usize];
                }
            }
            (
                OpKind::Quantize,
                &Prep::Requant {
                    mult,
                    shift,
                    in_zp,
                    out_zp,
                    min,
                    max,
                },
            ) => {
                let in_signed = t(0).ty == TensorType::Int8;
                for (o, &i) in out.iter_mut().zip(input(0)) {
                    let v = if in_signed { i as i8 as i32 } else { i as i32 };
                    let r = multiply_by_quantized_multiplier(v - in_zp, mult, shift)
                        .wrapping_add(out_zp);
                    *o = r.clamp(min, max) as u8;
                }
            }
            (OpKind::Reshape, _) => {
                let src = input(0);
                if src.len() != out.len() {
                    return Err(bad("RESHAPE changes the number of elements"));
                }
                out.copy_from_slice(src);
            }
            (
                OpKind::Concatenation,
                Prep::Concat {
                    axis,
                    rescale,
                    out_zp,
                    out_scale,
                    min,
                    max,
                },
            ) => {
                let shape = &sg.tensors[out_idx].shape;
                let outer: usize = shape[..*axis].iter().product();
                let mut pos = 0;
                for o in 0..outer {
                    for (k, &ti) in op.inputs.iter().enumerate() {
                        let it = &sg.tensors[ti as usize];
                        let inner: usize = it.shape[*axis..].iter().product();
                        let src = &tensors[ti as usize][o * inner..(o + 1) * inner];
                        match rescale[k] {
                            None => out[pos..pos + inner].copy_from_slice(src),
                            Some((s, zp)) => {
                                let scale = s / out_scale;
                                let bias = -(zp as f32) * scale;
                                for (d, &v) in out[pos..pos + inner].iter_mut().zip(src) {
                                    let q = ((v as i8 as f32 * scale + bias).round() as i32)
                                        .saturating_add(*out_zp);
                                    *d = q.clamp(*min, *max) as i8 as u8;
                                }
                            }
                        }
                        pos += inner;
                    }
                }
            }
            (
                OpKind::StridedSlice,
                Prep::Slice {
                    starts,
                    stops,
                    strides,
                },
            ) => {
                let it = t(0);
                let src = input(0);
                let esz = it.ty.size();
                let rank = it.shape.len();
                let mut dim_stride = vec![1usize; rank];
                for d in (0..rank.saturating_sub(1)).rev() {
                    dim_stride[d] = dim_stride[d + 1] * it.shape[d + 1];
                }
                let counts: Vec<usize> = (0..rank)
                    .map(|d| slice_count(starts[d], stops[d], strides[d]))
                    .collect();
                let total: usize = counts.iter().product();
                if total * esz != out.len() {
                    return Err(bad("STRIDED_SLICE output size mismatch"));
                }
                for flat in 0..total {
                    let mut rem = flat;
                    let mut off = 0usize;
                    for d in (0..rank).rev() {
                        let k = (rem % counts[d]) as i64;
                        rem /= counts[d];
                        off += (starts[d] + k * strides[d]) as usize * dim_stride[d];
                    }
                    out[flat * esz..flat * esz + esz]
                        .copy_from_slice(&src[off * esz..off * esz + esz]);
                }
            }
            (kind, _) => return Err(bad(format!("operator {kind:?} not prepared"))),
        }
        tensors[out_idx] = out;
        Ok(())
    }
}

fn slice_count(start: i64, stop: i64, stride: i64) -> usize {
    let n = if stride > 0 {
        (stop - start + stride - 1) / stride
    } else {
        (start - stop - stride - 1) / -stride
    };
    n.max(0) as usize
}

fn tensor<'a>(sg: &'a Subgraph, op: &Operator, i: usize) -> Result<&'a Tensor, WakeError> {
    op.inputs
        .get(i)
        .and_then(|&t| usize::try_from(t).ok())
        .and_then(|t| sg.tensors.get(t))
        .ok_or_else(|| bad(format!("{:?}: missing input {i}", op.kind)))
}

fn out_tensor<'a>(sg: &'a Subgraph, op: &Operator, i: usize) -> Result<&'a Tensor, WakeError> {
    op.outputs
        .get(i)
        .and_then(|&t| usize::try_from(t).ok())
        .and_then(|t| sg.tensors.get(t))
        .ok_or_else(|| bad(format!("{:?}: missing output {i}", op.kind)))
}

fn require(cond: bool, what: &str) -> Result<(), WakeError> {
    if cond {
        Ok(())
    } else {
        Err(bad(what.to_string()))
    }
}

fn prepare(
    sg: &Subgraph,
    data: &[Vec<u8>],
    op: &Operator,
    var_ids: &mut HashMap<(String, String), usize>,
    n_subgraphs: usize,
) -> Result<Prep, WakeError> {
    let o = &op.options;
    // Kernels read their inputs while they write their outputs (taken out of the tensor list
    // meanwhile): an operator writing a tensor it reads is a broken model.
    require(
        op.outputs.iter().all(|o| *o < 0 || !op.inputs.contains(o)),
        "an operator's output is also its input",
    )?;
    Ok(match op.kind {
        OpKind::CallOnce => {
            require(
                o.init_subgraph > 0 && (o.init_subgraph as usize) < n_subgraphs,
                "CALL_ONCE init subgraph out of range",
            )?;
            Prep::None
        }
        OpKind::VarHandle => {
            out_tensor(sg, op, 0)?;
            let key = (o.container.clone(), o.shared_name.clone());
            let n = var_ids.len();
            Prep::Var(*var_ids.entry(key).or_insert(n))
        }
        OpKind::AssignVariable => {
            tensor(sg, op, 0)?;
            tensor(sg, op, 1)?;
            Prep::None
        }
        OpKind::ReadVariable => {
            tensor(sg, op, 0)?;
            out_tensor(sg, op, 0)?;
            Prep::None
        }
        OpKind::Reshape => {
            let i = tensor(sg, op, 0)?;
            let out = out_tensor(sg, op, 0)?;
            require(
                i.elements() * i.ty.size() == out.elements() * out.ty.size(),
                "RESHAPE changes the number of elements",
            )?;
            Prep::None
        }
        OpKind::Conv2d | OpKind::DepthwiseConv2d | OpKind::FullyConnected => {
            let i = tensor(sg, op, 0)?;
            let w = tensor(sg, op, 1)?;
            let out = out_tensor(sg, op, 0)?;
            require(
                i.ty == TensorType::Int8 && w.ty == TensorType::Int8 && out.ty == TensorType::Int8,
                "only int8 convolutions and fully-connected layers are supported",
            )?;
            let (in_s, in_zp) = i.scale_zp()?;
            let (out_s, out_zp) = out.scale_zp()?;
            let channels = match op.kind {
                OpKind::DepthwiseConv2d => w.shape.last().copied().unwrap_or(0),
                _ => w.shape.first().copied().unwrap_or(0),
            };
            require(!w.quant.scale.is_empty(), "unquantised weights")?;
            let mult = (0..channels)
                .map(|c| {
                    let ws = if w.quant.scale.len() > 1 {
                        w.quant.scale.get(c).copied().unwrap_or(0.0)
                    } else {
                        w.quant.scale[0]
                    };
                    quantize_multiplier(in_s as f64 * ws as f64 / out_s as f64)
                })
                .collect();
            if w.quant.scale.len() > 1 {
                require(w.quant.scale.len() == channels, "per-channel scale count")?;
            }
            let w_zp = w.quant.zero_point.first().copied().unwrap_or(0) as i32;
            let bias = match op.inputs.get(2) {
                Some(&b) if b >= 0 => {
                    let bt = &sg.tensors[b as usize];
                    require(bt.ty == TensorType::Int32, "bias must be int32")?;
                    let v = i32_data(&data[b as usize]);
                    require(v.len() == channels, "bias length")?;
                    v
                }
                _ => vec![0; channels],
            };
            let (act_min, act_max) = activation_range(o.activation, out_s, out_zp, out.ty)?;
            let (mut pad_h, mut pad_w) = (0, 0);
            match op.kind {
                OpKind::FullyConnected => {
                    require(w.shape.len() == 2, "FULLY_CONNECTED weights must be 2-D")?;
                    require(o.weights_format == 0, "shuffled FULLY_CONNECTED weights")?;
                    require(
                        w.shape[1] > 0 && i.elements() % w.shape[1] == 0,
                        "FULLY_CONNECTED input size",
                    )?;
                    require(
                        out.elements() == i.elements() / w.shape[1] * channels,
                        "FULLY_CONNECTED output size",
                    )?;
                }
                _ => {
                    require(
                        i.shape.len() == 4 && w.shape.len() == 4 && out.shape.len() == 4,
                        "convolutions need 4-D tensors",
                    )?;
                    require(
                        o.stride_h >= 1
                            && o.stride_w >= 1
                            && o.dilation_h >= 1
                            && o.dilation_w >= 1,
                        "bad stride or dilation",
                    )?;
                    let (oh, ph) = padding(
                        o.padding_same,
                        i.shape[1],
                        w.shape[1],
                        o.stride_h as usize,
                        o.dilation_h as usize,
                    );
                    let (ow, pw) = padding(
                        o.padding_same,
                        i.shape[2],
                        w.shape[2],
                        o.stride_w as usize,
                        o.dilation_w as usize,
                    );
                    require(
                        out.shape[0] == i.shape[0] && out.shape[1] == oh && out.shape[2] == ow,
                        "convolution output shape",
                    )?;
                    require(out.shape[3] == channels, "convolution channel count")?;
                    if op.kind == OpKind::Conv2d {
                        require(w.shape[3] == i.shape[3], "CONV_2D input depth")?;
                    } else {
                        require(
                            o.depth_multiplier >= 1
                                && i.shape[3] * o.depth_multiplier as usize == channels,
                            "DEPTHWISE_CONV_2D depth multiplier",
                        )?;
                    }
                    pad_h = ph;
                    pad_w = pw;
                }
            }
            Prep::Conv(ConvParams {
                in_off: -in_zp,
                w_off: -w_zp,
                out_off: out_zp,
                act_min,
                act_max,
                mult,
                bias,
                pad_h,
                pad_w,
            })
        }
        OpKind::Logistic => {
            let i = tensor(sg, op, 0)?;
            let out = out_tensor(sg, op, 0)?;
            require(
                i.ty == TensorType::Int8 && out.ty == TensorType::Int8,
                "only int8 LOGISTIC is supported",
            )?;
            let (in_s, in_zp) = i.scale_zp()?;
            let (out_s, out_zp) = out.scale_zp()?;
            let inv = 1.0 / out_s;
            let mut lut = Box::new([0u8; 256]);
            for v in -128i32..=127 {
                let deq = in_s * (v - in_zp) as f32;
                let y = 1.0f32 / (1.0 + (-deq).exp());
                let q = ((y * inv).round() as i32).saturating_add(out_zp);
                lut[(v as i8 as u8) as usize] = q.clamp(-128, 127) as i8 as u8;
            }
            Prep::Lut(lut)
        }
        OpKind::Quantize => {
            let i = tensor(sg, op, 0)?;
            let out = out_tensor(sg, op, 0)?;
            type_range(i.ty)?;
            let (min, max) = type_range(out.ty)?;
            require(i.elements() == out.elements(), "QUANTIZE size")?;
            let (in_s, in_zp) = i.scale_zp()?;
            let (out_s, out_zp) = out.scale_zp()?;
            let (mult, shift) = quantize_multiplier(in_s as f64 / out_s as f64);
            Prep::Requant {
                mult,
                shift,
                in_zp,
                out_zp,
                min,
                max,
            }
        }
        OpKind::Concatenation => {
            let out = out_tensor(sg, op, 0)?;
            let rank = out.shape.len() as i32;
            let axis = if o.axis < 0 { o.axis + rank } else { o.axis };
            require(axis >= 0 && axis < rank, "CONCATENATION axis")?;
            require(o.activation == 0, "fused activation on CONCATENATION")?;
            let axis = axis as usize;
            let (out_s, out_zp) = out.scale_zp()?;
            let (min, max) = type_range(out.ty)?;
            let mut total = 0;
            let mut rescale = Vec::new();
            for k in 0..op.inputs.len() {
                let it = tensor(sg, op, k)?;
                require(it.ty == out.ty, "CONCATENATION input types")?;
                require(it.shape.len() == out.shape.len(), "CONCATENATION ranks")?;
                for d in 0..out.shape.len() {
                    if d != axis {
                        require(it.shape[d] == out.shape[d], "CONCATENATION shapes")?;
                    }
                }
                total += it.shape[axis];
                let q = it.scale_zp()?;
                rescale.push(if q == (out_s, out_zp) {
                    None
                } else {
                    require(out.ty == TensorType::Int8, "rescaling uint8 CONCATENATION")?;
                    Some(q)
                });
            }
            require(total == out.shape[axis], "CONCATENATION output size")?;
            Prep::Concat {
                axis,
                rescale,
                out_zp,
                out_scale: out_s,
                min,
                max,
            }
        }
        OpKind::StridedSlice => {
            let i = tensor(sg, op, 0)?;
            let out = out_tensor(sg, op, 0)?;
            require(
                o.ellipsis_mask == 0 && o.new_axis_mask == 0,
                "STRIDED_SLICE ellipsis/new-axis masks",
            )?;
            let rank = i.shape.len();
            let mut vals = Vec::new();
            for k in 1..4 {
                let t = tensor(sg, op, k)?;
                require(
                    t.ty == TensorType::Int32,
                    "STRIDED_SLICE indices must be int32",
                )?;
                let v = i32_data(&data[op.inputs[k] as usize]);
                require(v.len() == rank, "STRIDED_SLICE index length")?;
                vals.push(v);
            }
            let (mut starts, mut stops, mut strides) = (Vec::new(), Vec::new(), Vec::new());
            let mut count = 1usize;
            #[allow(clippy::needless_range_loop)]
            for d in 0..rank {
                let dim = i.shape[d] as i64;
                let stride = vals[2][d] as i64;
                require(stride != 0, "STRIDED_SLICE stride 0")?;
                let start = if o.begin_mask & (1 << d) != 0 {
                    if stride > 0 {
                        0
                    } else {
                        dim - 1
                    }
                } else {
                    let mut s = vals[0][d] as i64;
                    if s < 0 {
                        s += dim;
                    }
                    if stride > 0 {
                        s.clamp(0, dim)
                    } else {
                        s.clamp(-1, dim - 1)
                    }
                };
                let stop = if o.shrink_axis_mask & (1 << d) != 0 {
                    start + 1
                } else if o.end_mask & (1 << d) != 0 {
                    if stride > 0 {
                        dim
                    } else {
                        -1
                    }
                } else {
                    let mut e = vals[1][d] as i64;
                    if o.offset {
                        e += vals[0][d] as i64;
                    }
                    if e < 0 {
                        e += dim;
                    }
                    if stride > 0 {
                        e.clamp(0, dim)
                    } else {
                        e.clamp(-1, dim - 1)
                    }
                };
                count *= slice_count(start, stop, stride);
                starts.push(start);
                stops.push(stop);
                strides.push(stride);
            }
            require(count == out.elements(), "STRIDED_SLICE output size")?;
            require(out.ty == i.ty, "STRIDED_SLICE types")?;
            Prep::Slice {
                starts,
                stops,
                strides,
            }
        }
        OpKind::SplitV => {
            let i = tensor(sg, op, 0)?;
            let sizes_t = tensor(sg, op, 1)?;
            let axis_t = tensor(sg, op, 2)?;
            require(
                sizes_t.ty == TensorType::Int32 && axis_t.ty == TensorType::Int32,
                "SPLIT_V parameters must be int32",
            )?;
            let rank = i.shape.len() as i32;
            let axis = *i32_data(&data[op.inputs[2] as usize])
                .first()
                .ok_or_else(|| bad("SPLIT_V axis missing"))?;
            let axis = if axis < 0 { axis + rank } else { axis };
            require(axis >= 0 && axis < rank, "SPLIT_V axis")?;
            let axis = axis as usize;
            let raw = i32_data(&data[op.inputs[1] as usize]);
            require(raw.len() == op.outputs.len(), "SPLIT_V output count")?;
            let known: i64 = raw.iter().filter(|&&s| s >= 0).map(|&s| s as i64).sum();
            let unknown = raw.iter().filter(|&&s| s < 0).count();
            require(
                unknown <= 1 && raw.iter().all(|&s| s >= -1),
                "SPLIT_V sizes",
            )?;
            let dim = i.shape[axis] as i64;
            require(known <= dim, "SPLIT_V sizes exceed the dimension")?;
            let sizes: Vec<usize> = raw
                .iter()
                .map(|&s| {
                    if s < 0 {
                        (dim - known) as usize
                    } else {
                        s as usize
                    }
                })
                .collect();
            require(sizes.iter().sum::<usize>() == dim as usize, "SPLIT_V sizes")?;
            for (k, &n) in sizes.iter().enumerate() {
                let ot = out_tensor(sg, op, k)?;
                require(
                    ot.ty == i.ty && ot.elements() == i.elements() / i.shape[axis].max(1) * n,
                    "SPLIT_V output shape",
                )?;
            }
            Prep::Split { axis, sizes }
        }
    })
}

#[inline]
fn requant(p: &ConvParams, c: usize, acc: i32) -> u8 {
    let (m, s) = p.mult[c];
    let v = multiply_by_quantized_multiplier(acc, m, s).wrapping_add(p.out_off);
    v.clamp(p.act_min, p.act_max) as i8 as u8
}

#[allow(clippy::too_many_arguments)]
fn conv2d(
    p: &ConvParams,
    o: &super::tflite::Options,
    it: &Tensor,
    input: &[u8],
    wt: &Tensor,
    w: &[u8],
    ot: &Tensor,
    out: &mut [u8],
) {
    let (ih, iw, ic) = (it.shape[1] as isize, it.shape[2] as isize, it.shape[3]);
    let (kh, kw) = (wt.shape[1], wt.shape[2]);
    let (oh, ow, oc) = (ot.shape[1], ot.shape[2], ot.shape[3]);
    let (sh, sw) = (o.stride_h as isize, o.stride_w as isize);
    let (dh, dw) = (o.dilation_h as isize, o.dilation_w as isize);
    for b in 0..ot.shape[0] {
        for y in 0..oh {
            for x in 0..ow {
                let y0 = y as isize * sh - p.pad_h as isize;
                let x0 = x as isize * sw - p.pad_w as isize;
                for c in 0..oc {
                    let mut acc: i32 = 0;
                    for ky in 0..kh {
                        let iy = y0 + ky as isize * dh;
                        if iy < 0 || iy >= ih {
                            continue;
                        }
                        for kx in 0..kw {
                            let ix = x0 + kx as isize * dw;
                            if ix < 0 || ix >= iw {
                                continue;
                            }
                            let ib =
                                ((b * ih as usize + iy as usize) * iw as usize + ix as usize) * ic;
                            let wb = ((c * kh + ky) * kw + kx) * ic;
                            let irow = &input[ib..ib + ic];
                            let wrow = &w[wb..wb + ic];
                            for (a, bb) in irow.iter().zip(wrow) {
                                acc = acc.wrapping_add(
                                    (*a as i8 as i32)
                                        .wrapping_add(p.in_off)
                                        .wrapping_mul((*bb as i8 as i32).wrapping_add(p.w_off)),
                                );
                            }
                        }
                    }
                    acc = acc.wrapping_add(p.bias[c]);
                    let (m, s) = p.mult[c];
                    let v = multiply_by_quantized_multiplier(acc, m, s).wrapping_add(p.out_off);
                    out[((b * oh + y) * ow + x) * oc + c] =
                        v.clamp(p.act_min, p.act_max) as i8 as u8;
                }
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn depthwise(
    p: &ConvParams,
    o: &super::tflite::Options,
    it: &Tensor,
    input: &[u8],
    wt: &Tensor,
    w: &[u8],
    ot: &Tensor,
    out: &mut [u8],
) {
    let (ih, iw, ic) = (it.shape[1] as isize, it.shape[2] as isize, it.shape[3]);
    let (kh, kw) = (wt.shape[1], wt.shape[2]);
    let (oh, ow, oc) = (ot.shape[1], ot.shape[2], ot.shape[3]);
    let dm = o.depth_multiplier.max(1) as usize;
    let (sh, sw) = (o.stride_h as isize, o.stride_w as isize);
    let (dh, dw) = (o.dilation_h as isize, o.dilation_w as isize);
    for b in 0..ot.shape[0] {
        for y in 0..oh {
            for x in 0..ow {
                let y0 = y as isize * sh - p.pad_h as isize;
                let x0 = x as isize * sw - p.pad_w as isize;
                for c in 0..oc {
                    let icn = c / dm;
                    let mut acc: i32 = 0;
                    for ky in 0..kh {
                        let iy = y0 + ky as isize * dh;
                        if iy < 0 || iy >= ih {
                            continue;
                        }
                        for kx in 0..kw {
                            let ix = x0 + kx as isize * dw;
                            if ix < 0 || ix >= iw {
                                continue;
                            }
                            let iv = input[((b * ih as usize + iy as usize) * iw as usize
                                + ix as usize)
                                * ic
                                + icn] as i8 as i32;
                            let wv = w[(ky * kw + kx) * oc + c] as i8 as i32;
                            acc = acc.wrapping_add(
                                iv.wrapping_add(p.in_off)
                                    .wrapping_mul(wv.wrapping_add(p.w_off)),
                            );
                        }
                    }
                    acc = acc.wrapping_add(p.bias[c]);
                    let (m, s) = p.mult[c];
                    let v = multiply_by_quantized_multiplier(acc, m, s).wrapping_add(p.out_off);
                    out[((b * oh + y) * ow + x) * oc + c] =
                        v.clamp(p.act_min, p.act_max) as i8 as u8;
                }
            }
        }
    }
}

fn fully_connected(p: &ConvParams, wt: &Tensor, input: &[u8], w: &[u8], out: &mut [u8]) {
    let units = wt.shape[0];
    let depth = wt.shape[1];
    let batches = input.len() / depth;
    for b in 0..batches {
        let irow = &input[b * depth..(b + 1) * depth];
        for u in 0..units {
            let wrow = &w[u * depth..(u + 1) * depth];
            let mut acc: i32 = 0;
            for (a, bb) in irow.iter().zip(wrow) {
                acc = acc.wrapping_add(
                    (*a as i8 as i32)
                        .wrapping_add(p.in_off)
                        .wrapping_mul((*bb as i8 as i32).wrapping_add(p.w_off)),
                );
            }
            out[b * units + u] = requant(p, u, acc.wrapping_add(p.bias[u]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantize_multiplier_matches_tflite() {
        assert_eq!(quantize_multiplier(1.0), (1 << 30, 1));
        assert_eq!(quantize_multiplier(0.5), (1 << 30, 0));
        assert_eq!(quantize_multiplier(0.75), (1_610_612_736, 0));
        assert_eq!(quantize_multiplier(0.0), (0, 0));
        let (q, s) = quantize_multiplier(0.001);
        assert_eq!(s, -9);
        assert_eq!(q, (0.001f64 * 512.0 * 2f64.powi(31)).round() as i32);
    }

    #[test]
    fn multiply_by_quantized_multiplier_rounds_like_tflite() {
        // 0.5 is (2^30, 0): the doubling high multiply rounds -1.5 up to -1, +1.5 up to 2.
        let (q, s) = quantize_multiplier(0.5);
        assert_eq!(multiply_by_quantized_multiplier(3, q, s), 2);
        assert_eq!(multiply_by_quantized_multiplier(-3, q, s), -1);
        assert_eq!(multiply_by_quantized_multiplier(5, q, s), 3);
        let (q, s) = quantize_multiplier(0.25);
        assert_eq!(multiply_by_quantized_multiplier(6, q, s), 2);
        assert_eq!(multiply_by_quantized_multiplier(-6, q, s), -2);
        assert_eq!(multiply_by_quantized_multiplier(-5, q, s), -1);
        let (q, s) = quantize_multiplier(3.0);
        assert_eq!(multiply_by_quantized_multiplier(7, q, s), 21);
        assert_eq!(rounding_divide_by_pot(-7, 1), -4);
        assert_eq!(rounding_divide_by_pot(7, 1), 4);
        assert_eq!(
            saturating_rounding_doubling_high_mul(i32::MIN, i32::MIN),
            i32::MAX
        );
    }

    fn t(shape: &[usize], ty: TensorType, scale: &[f32], zp: i64) -> Tensor {
        Tensor {
            name: String::new(),
            shape: shape.to_vec(),
            ty,
            buffer: 0,
            quant: super::super::tflite::Quantization {
                scale: scale.to_vec(),
                zero_point: vec![zp; scale.len()],
                quantized_dimension: 0,
            },
        }
    }

    fn opts() -> super::super::tflite::Options {
        super::super::tflite::Options {
            stride_w: 1,
            stride_h: 1,
            dilation_w: 1,
            dilation_h: 1,
            depth_multiplier: 1,
            ..Default::default()
        }
    }

    fn params(
        mult: f64,
        n: usize,
        in_zp: i32,
        out_zp: i32,
        bias: Vec<i32>,
        relu: bool,
    ) -> ConvParams {
        ConvParams {
            in_off: -in_zp,
            w_off: 0,
            out_off: out_zp,
            act_min: if relu { out_zp } else { -128 },
            act_max: 127,
            mult: vec![quantize_multiplier(mult); n],
            bias,
            pad_h: 0,
            pad_w: 0,
        }
    }

    fn bytes(v: &[i8]) -> Vec<u8> {
        v.iter().map(|&x| x as u8).collect()
    }

    #[test]
    fn conv2d_valid_by_hand() {
        // input 1x3x1x2 (zp 1), filter 1 channel 2x1x2, bias 10, multiplier 0.5, out zp -1
        let it = t(&[1, 3, 1, 2], TensorType::Int8, &[1.0], 1);
        let wt = t(&[1, 2, 1, 2], TensorType::Int8, &[1.0], 0);
        let ot = t(&[1, 2, 1, 1], TensorType::Int8, &[1.0], -1);
        let input = bytes(&[2, 3, 4, 5, 6, 7]); // minus zp: 1 2 3 4 5 6
        let w = bytes(&[1, -1, 2, 1]);
        let p = params(0.5, 1, 1, -1, vec![10], false);
        let mut out = vec![0u8; 2];
        conv2d(&p, &opts(), &it, &input, &wt, &w, &ot, &mut out);
        // y0: 1*1 - 2 + 3*2 + 4 = 9, +10 = 19, *0.5 = 9.5 -> 10, -1 = 9
        // y1: 3 - 4 + 10 + 6 = 15, +10 = 25 -> 12.5 -> 13, -1 = 12
        assert_eq!(out, bytes(&[9, 12]));
    }

    #[test]
    fn depthwise_and_relu_by_hand() {
        let it = t(&[1, 2, 1, 2], TensorType::Int8, &[1.0], 0);
        let wt = t(&[1, 2, 1, 2], TensorType::Int8, &[1.0], 0);
        let ot = t(&[1, 1, 1, 2], TensorType::Int8, &[1.0], 0);
        let input = bytes(&[1, 2, 3, 4]);
        let w = bytes(&[1, -1, 1, -1]);
        let p = params(1.0, 2, 0, 0, vec![0, 0], true);
        let mut out = vec![0u8; 2];
        depthwise(&p, &opts(), &it, &input, &wt, &w, &ot, &mut out);
        // c0: 1 + 3 = 4; c1: -2 - 4 = -6 -> relu 0
        assert_eq!(out, bytes(&[4, 0]));
    }

    #[test]
    fn fully_connected_by_hand() {
        let wt = t(&[2, 3], TensorType::Int8, &[1.0], 0);
        let input = bytes(&[1, 2, 3]);
        let w = bytes(&[1, 1, 1, -1, 0, 2]);
        let p = params(2.0, 2, 0, 0, vec![1, -1], false);
        let mut out = vec![0u8; 2];
        fully_connected(&p, &wt, &input, &w, &mut out);
        // u0: 6 + 1 = 7 -> 14; u1: -1 + 6 - 1 = 4 -> 8
        assert_eq!(out, bytes(&[14, 8]));
    }

    #[test]
    fn padding_same_and_valid() {
        assert_eq!(padding(false, 5, 5, 1, 1), (1, 0));
        assert_eq!(padding(false, 3, 1, 1, 1), (3, 0));
        assert_eq!(padding(true, 5, 3, 1, 1), (5, 1));
        assert_eq!(padding(true, 5, 3, 2, 1), (3, 1));
    }
}
