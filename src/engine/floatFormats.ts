// Conversions between float32 and the 16-bit float formats model files use: IEEE half
// (float16: 1 sign, 5 exponent, 10 mantissa bits) and bfloat16 (the top 16 bits of a float32).
// Narrowing rounds to nearest, ties to even, like numpy and PyTorch.

const scratchFloat = new Float32Array(1);
const scratchBits = new Uint32Array(scratchFloat.buffer);

let float16Table: Float32Array | undefined;

/** The float32 value of every float16 bit pattern (65536 entries, built on first use). */
function float16ToFloat32Table(): Float32Array {
  if (!float16Table) {
    float16Table = new Float32Array(65536);
    for (let bits = 0; bits < 65536; bits++) {
      const sign = bits & 0x8000 ? -1 : 1;
      const exponent = (bits >> 10) & 0x1f;
      const mantissa = bits & 0x3ff;
      let value: number;
      if (exponent === 0) value = mantissa * 2 ** -24; // zero and subnormals
      else if (exponent === 0x1f) value = mantissa ? NaN : Infinity;
      else value = (1 + mantissa / 1024) * 2 ** (exponent - 15);
      float16Table[bits] = sign * value;
    }
  }
  return float16Table;
}

/** float16 bits [n] -> out [n] float32. */
export function float16ToFloat32(bits: Uint16Array, out: Float32Array): Float32Array {
  const table = float16ToFloat32Table();
  for (let i = 0; i < bits.length; i++) out[i] = table[bits[i]!]!;
  return out;
}

/** bfloat16 bits [n] -> out [n] float32: the bits are the high half of the float32. */
export function bfloat16ToFloat32(bits: Uint16Array, out: Float32Array): Float32Array {
  const outBits = new Uint32Array(out.buffer, out.byteOffset, out.length);
  for (let i = 0; i < bits.length; i++) outBits[i] = bits[i]! << 16;
  return out;
}

/** The float16 bit pattern nearest to x (ties to even); overflow gives ±Infinity. */
export function float32ToFloat16Bits(x: number): number {
  scratchFloat[0] = x;
  const bits = scratchBits[0]!;
  const sign = (bits >>> 16) & 0x8000;
  const exponent = (bits >>> 23) & 0xff;
  const mantissa = bits & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa ? 0x200 : 0); // Infinity or NaN
  const halfExponent = exponent - 127 + 15;
  if (halfExponent >= 0x1f) return sign | 0x7c00;
  if (halfExponent <= 0) {
    // A float16 subnormal m · 2^-24: shift the full 24-bit significand right by 14 - halfExponent.
    if (halfExponent < -10) return sign; // below half the smallest subnormal: rounds to zero
    const significand = mantissa | 0x800000;
    const shift = 14 - halfExponent;
    let half = significand >>> shift;
    const remainder = significand & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (remainder > halfway || (remainder === halfway && half & 1)) half++;
    return sign | half;
  }
  // Normal: keep 10 mantissa bits; a carry out of the mantissa correctly bumps the exponent.
  let half = (halfExponent << 10) | (mantissa >>> 13);
  const remainder = mantissa & 0x1fff;
  if (remainder > 0x1000 || (remainder === 0x1000 && half & 1)) half++;
  return sign | half;
}

/** The bfloat16 bit pattern nearest to x (ties to even); NaN stays NaN. */
export function float32ToBfloat16Bits(x: number): number {
  scratchFloat[0] = x;
  const bits = scratchBits[0]!;
  if ((bits & 0x7f800000) === 0x7f800000 && bits & 0x7fffff) return (bits >>> 16) | 0x40; // quiet NaN
  return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
}

/** values [n] -> out [n] float16 bits. */
export function float32ToFloat16(values: Float32Array, out: Uint16Array): Uint16Array {
  for (let i = 0; i < values.length; i++) out[i] = float32ToFloat16Bits(values[i]!);
  return out;
}

/** values [n] -> out [n] bfloat16 bits. */
export function float32ToBfloat16(values: Float32Array, out: Uint16Array): Uint16Array {
  for (let i = 0; i < values.length; i++) out[i] = float32ToBfloat16Bits(values[i]!);
  return out;
}
